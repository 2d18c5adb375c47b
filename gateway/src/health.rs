//! Active health checks: every pool's backends checked in parallel, on the pool's interval.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::metrics::Metrics;
use crate::pool::Pool;

/// The background service that keeps backends' health current.
#[derive(Debug)]
pub struct HealthChecks {
    /// The pools to check.
    pub pools: Vec<Arc<Pool>>,
    /// Where health is published.
    pub metrics: Arc<Metrics>,
}

impl HealthChecks {
    fn publish(&self) {
        for pool in &self.pools {
            for b in &pool.backends {
                self.metrics.set_health(&pool.config.name, &b.addr.to_string(), b.is_healthy());
            }
        }
    }
}

#[async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        self.publish();
        let mut due: Vec<Instant> = self.pools.iter().map(|_| Instant::now()).collect();
        loop {
            let now = Instant::now();
            let checks = self.pools.iter().zip(due.iter_mut()).filter(|(_, at)| **at <= now).map(|(pool, at)| {
                *at = now + pool.config.health.interval;
                let pool = pool.clone();
                async move {
                    for (addr, healthy) in pool.check_all().await {
                        if healthy {
                            tracing::info!(pool = %pool.config.name, backend = %addr, "Backend is healthy again.");
                        } else {
                            tracing::warn!(pool = %pool.config.name, backend = %addr, "Backend failed its health checks; no new requests go to it.");
                        }
                    }
                }
            });
            futures_util::future::join_all(checks).await;
            self.publish();
            let next = due.iter().min().copied().unwrap_or(now);
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
