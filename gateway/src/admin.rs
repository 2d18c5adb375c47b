//! The admin listener: `/metrics` (Prometheus) and `/healthz` (the gateway itself).

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;

use crate::metrics::Metrics;
use crate::pool::Pool;

/// Serves the admin endpoints.
#[derive(Debug)]
pub struct Admin {
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// The pools, for health.
    pub pools: Vec<Arc<Pool>>,
}

fn response(status: u16, content_type: &str, body: Vec<u8>) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        match session.req_header().uri.path() {
            "/metrics" => response(200, "text/plain; version=0.0.4", self.metrics.render()),
            "/healthz" => {
                let pools: serde_json::Map<String, serde_json::Value> = self
                    .pools
                    .iter()
                    .map(|p| {
                        (
                            p.config.name.clone(),
                            json!({"healthy": p.healthy_count(), "backends": p.backends.len()}),
                        )
                    })
                    .collect();
                let body = json!({"status": "ok", "pools": pools});
                response(200, "application/json", body.to_string().into_bytes())
            }
            _ => response(404, "application/json", br#"{"error":"not found"}"#.to_vec()),
        }
    }
}
