//! `gateway --config FILE`: run the load balancer until SIGTERM (graceful shutdown); start a new
//! binary with `--upgrade` and send the old one SIGQUIT to hand the listeners over.

use std::path::PathBuf;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "gateway", version, about = "Verdict's load balancer (pingora).")]
struct Cli {
    /// The configuration file (TOML).
    #[arg(long, env = "GATEWAY_CONFIG")]
    config: PathBuf,
    /// Take the listeners over from a running gateway (graceful binary upgrade).
    #[arg(long)]
    upgrade: bool,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let cli = Cli::parse();
    let config = gateway::config::Config::load(&cli.config)?;
    if cli.check {
        println!("{}: ok", cli.config.display());
        return Ok(());
    }
    let server = gateway::build(&config, cli.upgrade)?;
    tracing::info!(listeners = ?config.listeners, admin = %config.admin, "Gateway starting.");
    server.run_forever()
}
