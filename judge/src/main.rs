//! `judge server` and `judge worker`: parse the configuration, start, run until SIGTERM or
//! Ctrl-C, drain.

use clap::Parser;
use judge::config::{Cli, Command};
use tracing_subscriber::EnvFilter;

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    match Cli::parse().command {
        Command::Server(config) => {
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            judge::server::run(listener, config, shutdown_signal()).await
        }
        Command::Worker(config) => judge::worker::run(config, shutdown_signal()).await,
    }
}
