//! The gateway's configuration file (TOML): listeners, routes by path prefix, upstream pools
//! with their selection, health checks, timeouts and retries. Parsed and checked once at start;
//! every error names the key at fault.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, or a key of the wrong type or unknown.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value that parses but makes no sense.
    #[error("{path}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key at fault, e.g. `pools.judge.backends[1]`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// How a pool picks a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// In turn.
    RoundRobin,
    /// The one with the fewest requests in flight.
    LeastConnections,
    /// The same backend for the same key (the client address, or `hash_header`), moving as
    /// few keys as possible when backends come and go (rendezvous hashing).
    ConsistentHash,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: ServerSection,
    admin: AdminSection,
    #[serde(default)]
    limits: LimitsSection,
    listeners: Vec<ListenerSection>,
    routes: Vec<RouteSection>,
    pools: BTreeMap<String, PoolSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    #[serde(default = "default_threads")]
    threads: usize,
    #[serde(default = "default_work_stealing")]
    work_stealing: bool,
    #[serde(default = "default_listener_tasks")]
    listener_tasks_per_fd: usize,
    #[serde(default = "default_keepalive_pool")]
    upstream_keepalive_pool_size: usize,
    #[serde(default = "default_grace")]
    grace_period_seconds: u64,
    #[serde(default = "default_shutdown_timeout")]
    graceful_shutdown_timeout_seconds: u64,
    #[serde(default)]
    upgrade_sock: Option<String>,
    #[serde(default)]
    pid_file: Option<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            threads: default_threads(),
            work_stealing: default_work_stealing(),
            listener_tasks_per_fd: default_listener_tasks(),
            upstream_keepalive_pool_size: default_keepalive_pool(),
            grace_period_seconds: default_grace(),
            graceful_shutdown_timeout_seconds: default_shutdown_timeout(),
            upgrade_sock: None,
            pid_file: None,
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
fn default_work_stealing() -> bool {
    true
}
fn default_listener_tasks() -> usize {
    1
}
fn default_keepalive_pool() -> usize {
    128
}
fn default_grace() -> u64 {
    5
}
fn default_shutdown_timeout() -> u64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdminSection {
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    #[serde(default = "default_body_kb")]
    max_body_kb: u64,
    #[serde(default = "default_header_kb")]
    max_header_kb: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self { max_body_kb: default_body_kb(), max_header_kb: default_header_kb() }
    }
}

fn default_body_kb() -> u64 {
    16 * 1024
}
fn default_header_kb() -> u64 {
    64
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerSection {
    address: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSection {
    prefix: String,
    pool: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolSection {
    backends: Vec<String>,
    #[serde(default = "default_selection")]
    selection: Selection,
    #[serde(default)]
    hash_header: Option<String>,
    #[serde(default = "default_connect_ms")]
    connect_timeout_ms: u64,
    #[serde(default = "default_read_ms")]
    read_timeout_ms: u64,
    #[serde(default = "default_retries")]
    retries: u32,
    health_check: HealthSection,
}

fn default_selection() -> Selection {
    Selection::RoundRobin
}
fn default_connect_ms() -> u64 {
    1000
}
fn default_read_ms() -> u64 {
    60_000
}
fn default_retries() -> u32 {
    2
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthSection {
    path: String,
    #[serde(default = "default_interval_ms")]
    interval_ms: u64,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_failures")]
    unhealthy_after: u32,
    #[serde(default = "default_successes")]
    healthy_after: u32,
}

fn default_interval_ms() -> u64 {
    1000
}
fn default_timeout_ms() -> u64 {
    500
}
fn default_failures() -> u32 {
    2
}
fn default_successes() -> u32 {
    1
}

/// Process settings handed to pingora.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Worker threads of the proxy.
    pub threads: usize,
    /// Whether the worker threads share one work-stealing scheduler (else each thread runs
    /// its own, and a connection stays on the thread it was given).
    pub work_stealing: bool,
    /// Tasks accepting connections on each listener.
    pub listener_tasks_per_fd: usize,
    /// Idle keep-alive connections to backends kept for reuse, across all backends.
    pub upstream_keepalive_pool_size: usize,
    /// Seconds after SIGTERM during which requests in flight finish (no new connections are
    /// accepted); pingora waits this long before stopping.
    pub grace_period_seconds: u64,
    /// Seconds allowed for the last step of the shutdown.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Socket through which a new binary takes the listeners over (`--upgrade`).
    pub upgrade_sock: Option<String>,
    /// Where the pid is written.
    pub pid_file: Option<String>,
}

/// Health check of a pool's backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// `GET` this path; a 2xx or 3xx answer is a pass.
    pub path: String,
    /// Time between checks.
    pub interval: Duration,
    /// Time a check may take.
    pub timeout: Duration,
    /// Consecutive failures that take a backend out.
    pub unhealthy_after: u32,
    /// Consecutive passes that bring it back.
    pub healthy_after: u32,
}

/// One upstream pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// The pool's name.
    pub name: String,
    /// Backend addresses.
    pub backends: Vec<SocketAddr>,
    /// How a backend is picked.
    pub selection: Selection,
    /// For consistent hashing: the header whose value is the key (the client address when
    /// unset or absent).
    pub hash_header: Option<String>,
    /// Time allowed to connect to a backend.
    pub connect_timeout: Duration,
    /// Time allowed between two reads from a backend (long enough for event streams'
    /// keep-alives).
    pub read_timeout: Duration,
    /// Further backends tried after a failure (connect failures; idempotent requests whose
    /// backend failed before answering).
    pub retries: u32,
    /// The health check.
    pub health: HealthCheck,
}

/// One route: requests whose path starts with `prefix` go to `pool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Path prefix (longest match wins).
    pub prefix: String,
    /// The pool's name.
    pub pool: String,
}

/// A checked configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Process settings.
    pub server: ServerSettings,
    /// Where `/metrics` and `/healthz` of the gateway itself are served.
    pub admin: SocketAddr,
    /// Largest request body (bytes).
    pub max_body: u64,
    /// Largest request header block (bytes).
    pub max_header: u64,
    /// Addresses the proxy listens on.
    pub listeners: Vec<SocketAddr>,
    /// Routes, longest prefix first.
    pub routes: Vec<Route>,
    /// Pools, by name.
    pub pools: BTreeMap<String, PoolConfig>,
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and checks configuration text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text)
            .map_err(|e| ConfigError::Syntax { path: path.to_owned(), message: e.to_string() })?;
        let invalid = |key: String, message: &str| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message: message.to_owned(),
        };
        let addr = |key: String, value: &str| -> Result<SocketAddr, ConfigError> {
            value
                .parse()
                .map_err(|_| invalid(key, &format!("`{value}` is not an address like 127.0.0.1:2358")))
        };

        let s = file.server;
        if s.threads == 0 {
            return Err(invalid("server.threads".into(), "must be at least 1"));
        }
        if s.listener_tasks_per_fd == 0 {
            return Err(invalid("server.listener_tasks_per_fd".into(), "must be at least 1"));
        }
        let server = ServerSettings {
            threads: s.threads,
            work_stealing: s.work_stealing,
            listener_tasks_per_fd: s.listener_tasks_per_fd,
            upstream_keepalive_pool_size: s.upstream_keepalive_pool_size,
            grace_period_seconds: s.grace_period_seconds,
            graceful_shutdown_timeout_seconds: s.graceful_shutdown_timeout_seconds,
            upgrade_sock: s.upgrade_sock,
            pid_file: s.pid_file,
        };
        let admin = addr("admin.listen".into(), &file.admin.listen)?;
        if file.limits.max_body_kb == 0 {
            return Err(invalid("limits.max_body_kb".into(), "must be at least 1"));
        }
        if file.limits.max_header_kb == 0 {
            return Err(invalid("limits.max_header_kb".into(), "must be at least 1"));
        }

        if file.listeners.is_empty() {
            return Err(invalid("listeners".into(), "at least one listener is needed"));
        }
        let mut listeners = Vec::new();
        for (i, l) in file.listeners.iter().enumerate() {
            let a = addr(format!("listeners[{i}].address"), &l.address)?;
            if listeners.contains(&a) || a == admin {
                return Err(invalid(format!("listeners[{i}].address"), "is used twice"));
            }
            listeners.push(a);
        }

        let mut pools = BTreeMap::new();
        for (name, p) in file.pools {
            let key = |k: &str| format!("pools.{name}.{k}");
            if p.backends.is_empty() {
                return Err(invalid(key("backends"), "at least one backend is needed"));
            }
            let mut backends = Vec::new();
            for (i, b) in p.backends.iter().enumerate() {
                let a = addr(key(&format!("backends[{i}]")), b)?;
                if backends.contains(&a) {
                    return Err(invalid(key(&format!("backends[{i}]")), "is listed twice"));
                }
                backends.push(a);
            }
            if p.connect_timeout_ms == 0 {
                return Err(invalid(key("connect_timeout_ms"), "must be at least 1"));
            }
            if p.read_timeout_ms == 0 {
                return Err(invalid(key("read_timeout_ms"), "must be at least 1"));
            }
            if p.hash_header.is_some() && p.selection != Selection::ConsistentHash {
                return Err(invalid(key("hash_header"), "only applies to selection = \"consistent_hash\""));
            }
            let h = p.health_check;
            if !h.path.starts_with('/') {
                return Err(invalid(key("health_check.path"), "must start with `/`"));
            }
            if h.interval_ms == 0 || h.timeout_ms == 0 {
                return Err(invalid(
                    key("health_check.interval_ms"),
                    "interval and timeout must be at least 1 ms",
                ));
            }
            if h.timeout_ms > h.interval_ms {
                return Err(invalid(key("health_check.timeout_ms"), "must not exceed interval_ms"));
            }
            if h.unhealthy_after == 0 || h.healthy_after == 0 {
                return Err(invalid(key("health_check.unhealthy_after"), "thresholds must be at least 1"));
            }
            let pool = PoolConfig {
                name: name.clone(),
                backends,
                selection: p.selection,
                hash_header: p.hash_header,
                connect_timeout: Duration::from_millis(p.connect_timeout_ms),
                read_timeout: Duration::from_millis(p.read_timeout_ms),
                retries: p.retries,
                health: HealthCheck {
                    path: h.path,
                    interval: Duration::from_millis(h.interval_ms),
                    timeout: Duration::from_millis(h.timeout_ms),
                    unhealthy_after: h.unhealthy_after,
                    healthy_after: h.healthy_after,
                },
            };
            pools.insert(name, pool);
        }

        if file.routes.is_empty() {
            return Err(invalid("routes".into(), "at least one route is needed"));
        }
        let mut routes: Vec<Route> = Vec::new();
        for (i, r) in file.routes.iter().enumerate() {
            if !r.prefix.starts_with('/') {
                return Err(invalid(format!("routes[{i}].prefix"), "must start with `/`"));
            }
            if routes.iter().any(|other| other.prefix == r.prefix) {
                return Err(invalid(format!("routes[{i}].prefix"), "is routed twice"));
            }
            if !pools.contains_key(&r.pool) {
                let known: Vec<&str> = pools.keys().map(String::as_str).collect();
                return Err(invalid(
                    format!("routes[{i}].pool"),
                    &format!("no pool named `{}` (pools: {})", r.pool, known.join(", ")),
                ));
            }
            routes.push(Route { prefix: r.prefix.clone(), pool: r.pool.clone() });
        }
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(Config {
            server,
            admin,
            max_body: file.limits.max_body_kb * 1024,
            max_header: file.limits.max_header_kb * 1024,
            listeners,
            routes,
            pools,
        })
    }

    /// The route for a request path: the longest matching prefix. A prefix matches whole path
    /// segments: `/api` matches `/api` and `/api/x`, not `/apix`.
    pub fn route(&self, path: &str) -> Option<&Route> {
        route_for(&self.routes, path)
    }
}

/// The longest-prefix route of `path` among `routes` (sorted longest first).
pub fn route_for<'a>(routes: &'a [Route], path: &str) -> Option<&'a Route> {
    routes.iter().find(|r| prefix_matches(&r.prefix, path))
}

/// Whether `prefix` matches `path` on whole segments.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?']))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[admin]
listen = "127.0.0.1:9000"

[[listeners]]
address = "127.0.0.1:8080"

[[routes]]
prefix = "/"
pool = "client"

[[routes]]
prefix = "/api"
pool = "runner"

[[routes]]
prefix = "/ws"
pool = "runner"

[pools.runner]
backends = ["127.0.0.1:4000", "127.0.0.1:4001"]
selection = "least_connections"
[pools.runner.health_check]
path = "/healthz"

[pools.client]
backends = ["127.0.0.1:3000"]
[pools.client.health_check]
path = "/"
interval_ms = 2000
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("gateway.toml"))
    }

    #[test]
    fn a_public_gateway_configuration_parses_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.listeners, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(c.pools["runner"].selection, Selection::LeastConnections);
        assert_eq!(c.pools["client"].selection, Selection::RoundRobin);
        assert_eq!(c.pools["client"].health.interval, Duration::from_secs(2));
        assert_eq!(c.pools["runner"].retries, 2);
        assert_eq!(c.max_body, 16 << 20);
    }

    #[test]
    fn routes_match_the_longest_prefix_by_segments() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.route("/api/submissions").unwrap().pool, "runner");
        assert_eq!(c.route("/api").unwrap().pool, "runner");
        assert_eq!(c.route("/api?x=1").unwrap().pool, "runner");
        assert_eq!(c.route("/apix").unwrap().pool, "client");
        assert_eq!(c.route("/ws/live").unwrap().pool, "runner");
        assert_eq!(c.route("/index.html").unwrap().pool, "client");
    }

    #[test]
    fn errors_name_the_key_at_fault() {
        let cases = [
            (GOOD.replace("pool = \"client\"", "pool = \"nope\""), "routes[0].pool"),
            (GOOD.replace("127.0.0.1:4001", "localhost"), "pools.runner.backends[1]"),
            (GOOD.replace("\"127.0.0.1:4001\"", "\"127.0.0.1:4000\""), "pools.runner.backends[1]"),
            (GOOD.replace("path = \"/healthz\"", "path = \"healthz\""), "pools.runner.health_check.path"),
            (GOOD.replace("prefix = \"/ws\"", "prefix = \"/api\""), "routes[2].prefix"),
            (GOOD.replace("listen = \"127.0.0.1:9000\"", "listen = \"nine thousand\""), "admin.listen"),
        ];
        for (text, key) in cases {
            match parse(&text) {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("expected an error at {key}, got {other:?}"),
            }
        }
        let typo = GOOD.replace("selection = \"least_connections\"", "selction = \"least_connections\"");
        let err = parse(&typo).unwrap_err().to_string();
        assert!(err.contains("selction") && err.contains("gateway.toml"), "{err}");
        let bad_value = GOOD.replace("least_connections", "fastest");
        assert!(parse(&bad_value).unwrap_err().to_string().contains("fastest"));
        let empty = parse("listeners = []\nroutes = []\n[admin]\nlisten = \"127.0.0.1:1\"\n[pools]\n");
        assert!(
            matches!(empty, Err(ConfigError::Invalid { ref key, .. }) if key == "listeners"),
            "{empty:?}"
        );
    }
}
