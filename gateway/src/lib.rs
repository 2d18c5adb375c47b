//! The gateway: a pingora load balancer that routes requests by path prefix to pools of
//! backends, keeps their health by active HTTP checks, retries where it is safe, passes
//! WebSocket and Server-Sent Events through, and exports Prometheus metrics. The same binary
//! is the cluster's public balancer and its private one; only the configuration differs.

pub mod admin;
pub mod config;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod pool;
pub mod proxy;

use std::sync::Arc;

use pingora::apps::http_app::HttpServer;
use pingora::server::Server;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::services::listening::Service;

use crate::config::Config;
use crate::pool::Pool;

/// Builds the pingora server for `config`: the proxy on every listener, the admin endpoints,
/// and the health checks. `upgrade` takes the listeners over from a running gateway.
pub fn build(config: &Config, upgrade: bool) -> anyhow::Result<Server> {
    let mut conf = ServerConf {
        threads: config.server.threads,
        work_stealing: config.server.work_stealing,
        listener_tasks_per_fd: config.server.listener_tasks_per_fd,
        upstream_keepalive_pool_size: config.server.upstream_keepalive_pool_size,
        grace_period_seconds: Some(config.server.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(config.server.graceful_shutdown_timeout_seconds),
        ..ServerConf::default()
    };
    if let Some(sock) = &config.server.upgrade_sock {
        conf.upgrade_sock = sock.clone();
    }
    if let Some(pid) = &config.server.pid_file {
        conf.pid_file = pid.clone();
    }
    let opt = Opt { upgrade, ..Opt::default() };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let metrics = Arc::new(metrics::Metrics::new()?);
    let pools: Vec<Arc<Pool>> = config.pools.values().map(|p| Arc::new(Pool::new(p.clone()))).collect();

    let gateway = proxy::Gateway::new(config, &pools, metrics.clone());
    let mut proxy = pingora::proxy::http_proxy_service_with_name(&server.configuration, gateway, "gateway");
    for addr in &config.listeners {
        proxy.add_tcp(&addr.to_string());
    }

    let mut admin = Service::new(
        "gateway admin".into(),
        HttpServer::new_app(admin::Admin { metrics: metrics.clone(), pools: pools.clone() }),
    );
    admin.add_tcp(&config.admin.to_string());
    // Scrapes and health probes are light: a thread of its own is plenty.
    admin.threads = Some(1);

    let checks = pingora::services::background::background_service(
        "health checks",
        health::HealthChecks { pools, metrics },
    );

    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(checks);
    Ok(server)
}
