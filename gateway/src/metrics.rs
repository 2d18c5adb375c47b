//! The gateway's Prometheus metrics: requests by route, pool and status; upstream latency;
//! backend health.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric of the gateway, in its own registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    upstream_latency: HistogramVec,
    backend_healthy: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers the metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("gateway_requests_total", "Requests answered, by route, pool and status."),
            &["route", "pool", "status"],
        )?;
        let upstream_latency = HistogramVec::new(
            HistogramOpts::new(
                "gateway_upstream_latency_seconds",
                "Seconds from choosing a backend to its response header.",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["pool"],
        )?;
        let backend_healthy = IntGaugeVec::new(
            Opts::new("gateway_backend_healthy", "1 when a backend passes its health check, else 0."),
            &["pool", "backend"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(upstream_latency.clone()))?;
        registry.register(Box::new(backend_healthy.clone()))?;
        Ok(Self { registry, requests, upstream_latency, backend_healthy })
    }

    /// The series of one route and its pool, which a request counts itself in through
    /// [`RouteMetrics`] without looking them up by label.
    pub fn route(&self, route: &str, pool: &str) -> RouteMetrics {
        RouteMetrics {
            requests: self.requests.clone(),
            upstream_latency: self.upstream_latency.clone(),
            route: route.to_owned(),
            pool: pool.to_owned(),
            by_status: (0..STATUSES).map(|_| OnceLock::new()).collect(),
            latency: OnceLock::new(),
        }
    }

    /// Records a backend's health.
    pub fn set_health(&self, pool: &str, backend: &str, healthy: bool) {
        self.backend_healthy.with_label_values(&[pool, backend]).set(i64::from(healthy));
    }

    /// Everything, in Prometheus text format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// Status codes below this have their counter kept at hand (HTTP's are 100 to 599; 0 stands for
/// no response).
const STATUSES: usize = 600;

/// One route's series, each looked up by label once (on first use, so that a series appears in
/// `/metrics` only once it has counted something, as with a lookup per request).
#[derive(Debug)]
pub struct RouteMetrics {
    requests: IntCounterVec,
    upstream_latency: HistogramVec,
    route: String,
    pool: String,
    by_status: Box<[OnceLock<IntCounter>]>,
    latency: OnceLock<Histogram>,
}

impl RouteMetrics {
    /// Counts an answered request.
    pub fn count_request(&self, status: u16) {
        let lookup = || self.requests.with_label_values(&[&self.route, &self.pool, &status.to_string()]);
        match self.by_status.get(usize::from(status)) {
            Some(slot) => slot.get_or_init(lookup).inc(),
            None => lookup().inc(),
        }
    }

    /// Records the pool's backend's time to its response header.
    pub fn observe_upstream(&self, took: Duration) {
        self.latency
            .get_or_init(|| self.upstream_latency.with_label_values(&[&self.pool]))
            .observe(took.as_secs_f64());
    }
}
