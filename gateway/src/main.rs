//! `gateway --config FILE`: run the load balancer until SIGTERM (graceful shutdown); start a new
//! binary with `--upgrade` and send the old one SIGQUIT to hand the listeners over.

use std::path::PathBuf;

use clap::Parser;
use gateway::logging::{BatchedStdout, Logfmt};
use pingora::server::RunArgs;
use tracing_subscriber::EnvFilter;

/// Every request allocates and frees buffers and headers on the proxy's threads, often freeing
/// on another thread than the one that allocated; glibc's allocator spent a tenth of the
/// gateway's CPU on that (`cargo xtask bench gateway`), mimalloc much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let (log, _flush_on_exit) = BatchedStdout::start()?;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .event_format(Logfmt)
        .with_writer(log)
        .init();
    let cli = Cli::parse();
    let config = gateway::config::Config::load(&cli.config)?;
    if cli.check {
        println!("{}: ok", cli.config.display());
        return Ok(());
    }
    let server = gateway::build(&config, cli.upgrade)?;
    tracing::info!(listeners = ?config.listeners, admin = %config.admin, "Gateway starting.");
    // Returns once shut down; the log is written out on the way out of `main`.
    server.run(RunArgs::default());
    Ok(())
}
