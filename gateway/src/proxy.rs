//! The proxy: route by path, pick a healthy backend, forward with request ids and forwarding
//! headers, retry where it is safe, answer errors as JSON, log and count every request.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use serde_json::json;

use crate::config::{Config, Route, Selection};
use crate::metrics::{Metrics, RouteMetrics};
use crate::pool::{Lease, Pool};

/// Hop-by-hop headers (RFC 9110 §7.6.1) that never cross the proxy. `Connection` and
/// `Upgrade` cross only for protocol upgrades (WebSocket); pingora frames bodies itself.
const HOP_BY_HOP: [&str; 6] =
    ["keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer"];

/// The gateway's proxy logic.
#[derive(Debug)]
pub struct Gateway {
    routes: Vec<(Route, Arc<Pool>, RouteMetrics)>,
    /// The series of requests no route takes.
    unrouted: RouteMetrics,
    max_body: u64,
    max_header: u64,
}

/// What a request carries through the filters.
#[derive(Debug)]
pub struct Ctx {
    /// Kept from the client or made here; cloned into both headers without copying.
    request_id: HeaderValue,
    route: Option<usize>,
    /// The client's address, read once.
    client: Option<IpAddr>,
    tried: Vec<usize>,
    current: Option<Lease>,
    body_bytes: u64,
    started: Instant,
    upstream_started: Option<Instant>,
}

impl Gateway {
    /// The proxy for `config`, with the pools it routes to.
    pub fn new(config: &Config, pools: &[Arc<Pool>], metrics: Arc<Metrics>) -> Self {
        let routes = config
            .routes
            .iter()
            .filter_map(|r| {
                let pool = pools.iter().find(|p| p.config.name == r.pool)?;
                Some((r.clone(), pool.clone(), metrics.route(&r.prefix, &pool.config.name)))
            })
            .collect();
        Self {
            routes,
            unrouted: metrics.route("none", "none"),
            max_body: config.max_body,
            max_header: config.max_header,
        }
    }

    /// The route of `path` (routes are kept longest prefix first).
    fn route_of(&self, path: &str) -> Option<usize> {
        self.routes.iter().position(|(r, _, _)| crate::config::prefix_matches(&r.prefix, path))
    }

    /// The request's route, its pool and its metrics, once routed.
    fn route(&self, ctx: &Ctx) -> Option<&(Route, Arc<Pool>, RouteMetrics)> {
        ctx.route.and_then(|i| self.routes.get(i))
    }

    fn pool(&self, ctx: &Ctx) -> Option<&Arc<Pool>> {
        self.route(ctx).map(|(_, p, _)| p)
    }
}

/// A fresh request id: a random (version 4) UUID.
fn new_request_id() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn valid_request_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= 128 && v.iter().all(u8::is_ascii_graphic)
}

/// Writes a JSON error response.
async fn respond_json(
    session: &mut Session,
    code: u16,
    body: serde_json::Value,
    request_id: &HeaderValue,
) -> Result<()> {
    let body = Bytes::from(body.to_string());
    let mut resp = ResponseHeader::build(code, Some(4))?;
    resp.insert_header("Content-Type", "application/json")?;
    resp.insert_header("Content-Length", body.len().to_string())?;
    resp.insert_header("X-Request-Id", request_id.clone())?;
    session.set_keepalive(None);
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await
}

/// Shows the value, or `-` for none: a log field without a string made for it.
struct OrDash<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for OrDash<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}

fn client_ip(session: &Session) -> Option<IpAddr> {
    session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip())
}

/// The hop-by-hop headers present in `headers`: the fixed ones, those `Connection` lists, and
/// `Upgrade` unless this is an upgrade. Runs twice per request: allocates only for what it finds.
fn hop_by_hop(headers: &http::HeaderMap, keep_upgrade: bool) -> Vec<String> {
    let mut found: Vec<String> = HOP_BY_HOP
        .iter()
        .filter(|name| headers.contains_key(**name))
        .map(|name| (*name).to_owned())
        .collect();
    let listed = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(str::trim))
        .filter(|t| {
            !t.is_empty()
                && !["upgrade", "close", "keep-alive"].iter().any(|kept| t.eq_ignore_ascii_case(kept))
                && headers.contains_key(*t)
        })
        .map(str::to_ascii_lowercase);
    found.extend(listed);
    if !keep_upgrade && headers.contains_key(http::header::UPGRADE) {
        found.push("upgrade".to_owned());
    }
    found
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {
        // Pingora's default adds its response compression module, disabled: it would do
        // nothing but cost every request an allocation and its filters.
    }

    fn new_ctx(&self) -> Ctx {
        Ctx {
            request_id: HeaderValue::from_static(""),
            route: None,
            client: None,
            tried: Vec::new(),
            current: None,
            body_bytes: 0,
            started: Instant::now(),
            upstream_started: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let req = session.req_header();
        ctx.request_id = req
            .headers
            .get("x-request-id")
            .filter(|v| valid_request_id(v.as_bytes()))
            .map_or_else(new_request_id, HeaderValue::clone);
        ctx.client = client_ip(session);
        let header_bytes: u64 =
            req.headers.iter().map(|(k, v)| (k.as_str().len() + v.len() + 4) as u64).sum();
        if header_bytes > self.max_header {
            let body = json!({"error": "request headers are too large"});
            respond_json(session, 431, body, &ctx.request_id).await?;
            return Ok(true);
        }
        let declared =
            req.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body) {
            respond_json(session, 413, json!({"error": "request body is too large"}), &ctx.request_id)
                .await?;
            return Ok(true);
        }
        ctx.route = self.route_of(req.uri.path());
        if ctx.route.is_none() {
            respond_json(session, 404, json!({"error": "no route for this path"}), &ctx.request_id).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        ctx.body_bytes += body.as_ref().map_or(0, |b| b.len() as u64);
        if ctx.body_bytes > self.max_body {
            return Error::e_explain(HTTPStatus(413), "request body is too large");
        }
        Ok(())
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let Some(pool) = self.pool(ctx) else {
            return Error::e_explain(HTTPStatus(404), "no route");
        };
        // Only consistent hashing looks at the key.
        let key = if pool.config.selection == Selection::ConsistentHash {
            match &pool.config.hash_header {
                Some(h) => session.req_header().headers.get(h.as_str()).map(|v| v.as_bytes().to_vec()),
                None => None,
            }
            .or_else(|| ctx.client.map(|ip| ip.to_string().into_bytes()))
            .unwrap_or_default()
        } else {
            Vec::new()
        };
        // A retry goes elsewhere: the backends already tried are excluded.
        let Some(i) = pool.pick(&key, &ctx.tried) else {
            return Error::e_explain(HTTPStatus(503), "no healthy backend");
        };
        ctx.tried.push(i);
        ctx.current = Some(pool.lease(i));
        ctx.upstream_started = Some(Instant::now());
        let mut peer = HttpPeer::new(pool.backends[i].addr, false, String::new());
        peer.options.connection_timeout = Some(pool.config.connect_timeout);
        peer.options.read_timeout = Some(pool.config.read_timeout);
        peer.options.write_timeout = Some(pool.config.read_timeout);
        peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let upgrade = session.is_upgrade_req();
        for name in hop_by_hop(&upstream.headers, upgrade) {
            upstream.remove_header(name.as_str());
        }
        if !upgrade {
            upstream.remove_header("connection");
        }
        upstream.insert_header("X-Request-Id", ctx.request_id.clone())?;
        let forwarded =
            match (upstream.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()), ctx.client) {
                (Some(prior), Some(ip)) => format!("{prior}, {ip}"),
                (None, Some(ip)) => ip.to_string(),
                (Some(prior), None) => prior.to_owned(),
                (None, None) => String::new(),
            };
        if !forwarded.is_empty() {
            upstream.insert_header("X-Forwarded-For", forwarded)?;
        }
        upstream.insert_header("X-Forwarded-Proto", HeaderValue::from_static("http"))?;
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let (Some((_, _, metrics)), Some(start)) = (self.route(ctx), ctx.upstream_started) {
            metrics.observe_upstream(start.elapsed());
        }
        let upgrade = upstream.status == http::StatusCode::SWITCHING_PROTOCOLS && session.is_upgrade_req();
        for name in hop_by_hop(&upstream.headers, upgrade) {
            upstream.remove_header(name.as_str());
        }
        upstream.insert_header("X-Request-Id", ctx.request_id.clone())?;
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing went upstream: trying another backend is always safe.
        ctx.current = None;
        let retries = self.pool(ctx).map_or(0, |p| p.config.retries as usize);
        e.set_retry(ctx.tried.len() <= retries);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        _client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        ctx.current = None;
        // The request went upstream. Send it again only if that cannot do harm: an idempotent
        // method, no body, and nothing of the answer sent to the client yet.
        let retries = self.pool(ctx).map_or(0, |p| p.config.retries as usize);
        let req = session.req_header();
        let safe = req.method.is_idempotent()
            && ctx.body_bytes == 0
            && !session.is_upgrade_req()
            && session.response_written().is_none()
            && ctx.tried.len() <= retries;
        e.set_retry(safe);
        e
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let (code, message) = match e.etype() {
            HTTPStatus(503) => (503, "no healthy backend".to_owned()),
            HTTPStatus(code) => (*code, e.to_string()),
            ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError => {
                (502, "the backend could not be reached".to_owned())
            }
            ReadTimedout | WriteTimedout => (504, "the backend did not answer in time".to_owned()),
            _ => match e.esource() {
                ErrorSource::Upstream => (502, "the backend failed".to_owned()),
                ErrorSource::Downstream => (400, "bad request".to_owned()),
                _ => (500, "internal error".to_owned()),
            },
        };
        let downstream_gone = matches!(e.esource(), ErrorSource::Downstream)
            && matches!(e.etype(), WriteError | ReadError | ConnectionClosed);
        if !downstream_gone && session.response_written().is_none() {
            let pool = self.pool(ctx).map(|p| p.config.name.clone());
            let body = json!({"error": message, "pool": pool});
            let _ = respond_json(session, code, body, &ctx.request_id).await;
        }
        FailToProxy { error_code: if downstream_gone { 0 } else { code }, can_reuse_downstream: false }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        ctx.current = None;
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let (pool, metrics) = match self.route(ctx) {
            Some((_, p, m)) => (p.config.name.as_str(), m),
            None => ("none", &self.unrouted),
        };
        metrics.count_request(status);
        let req = session.req_header();
        // The values are worked out only when the line is written.
        tracing::info!(
            target: "access",
            request_id = ctx.request_id.to_str().unwrap_or("-"),
            method = req.method.as_str(),
            path = req.uri.path(),
            status,
            pool,
            upstream = %OrDash(ctx.tried.last().zip(self.pool(ctx)).map(|(i, p)| p.backends[*i].addr)),
            tries = ctx.tried.len(),
            millis = ctx.started.elapsed().as_millis() as u64,
            client = %OrDash(ctx.client.or_else(|| client_ip(session))),
            error = %OrDash(e),
            "Request."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        assert!(valid_request_id(b"abc-123"));
        assert!(!valid_request_id(b""));
        assert!(!valid_request_id(b"has space"));
        assert!(!valid_request_id("x".repeat(129).as_bytes()));
    }

    #[test]
    fn hop_by_hop_headers_are_stripped_but_upgrades_survive() {
        let mut h = http::HeaderMap::new();
        h.insert("connection", "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("upgrade", "websocket".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        let mut gone = hop_by_hop(&h, false);
        gone.sort();
        assert_eq!(gone, ["keep-alive", "te", "upgrade", "x-secret"]);
        assert!(!hop_by_hop(&h, true).contains(&"upgrade".to_owned()));
    }
}
