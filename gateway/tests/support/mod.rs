//! Test helpers: axum backends on loopback (each in its own runtime, so one can be killed
//! abruptly), and the gateway binary started with a generated configuration.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::sse::{Event, Sse};
use axum::routing::{any, get};
use serde_json::json;

/// One backend: a name, a health switch, a counter of requests to `/whoami` and `/slow`.
#[derive(Clone)]
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub healthy: Arc<AtomicBool>,
    pub hits: Arc<AtomicUsize>,
    runtime: Arc<Mutex<Option<tokio::runtime::Runtime>>>,
}

#[derive(Clone)]
struct AppState {
    name: String,
    healthy: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

async fn healthz(State(s): State<AppState>) -> StatusCode {
    if s.healthy.load(Ordering::SeqCst) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

async fn whoami(State(s): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    // A little work, so that requests are in flight when a backend dies.
    tokio::time::sleep(Duration::from_millis(3)).await;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    axum::Json(json!({
        "backend": s.name,
        "x-request-id": header("x-request-id"),
        "x-forwarded-for": header("x-forwarded-for"),
        "x-forwarded-proto": header("x-forwarded-proto"),
        "x-secret": header("x-secret"),
        "keep-alive": header("keep-alive"),
    }))
}

async fn echo(body: axum::body::Bytes) -> axum::body::Bytes {
    body
}

async fn events() -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold(0u32, |i| async move {
        if i == 3 {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Some((Ok(Event::default().event("tick").data(i.to_string())), i + 1))
    });
    Sse::new(stream)
}

async fn ws(upgrade: WebSocketUpgrade) -> impl IntoResponse {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            if let Message::Text(t) = msg {
                let _ = socket.send(Message::Text(format!("echo: {t}").into())).await;
            }
        }
    })
}

/// A backend that answers CORS itself, as the judge does: a preflight gets the permission
/// headers built from what it asked (an empty `Access-Control-Expose-Headers` among them), and
/// `X-Backend-Saw` tells the test what reached the backend. Counted in `hits`.
async fn cors(
    State(s): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> impl IntoResponse {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let saw = format!(
        "{method} origin={} method={} headers={}",
        header("origin"),
        header("access-control-request-method"),
        header("access-control-request-headers")
    );
    let mut out = vec![
        ("x-backend-saw".to_owned(), saw),
        ("access-control-allow-origin".to_owned(), header("origin")),
        ("vary".to_owned(), "Origin".to_owned()),
    ];
    if method == axum::http::Method::OPTIONS {
        out.push(("access-control-allow-methods".to_owned(), "GET, POST, OPTIONS".to_owned()));
        out.push(("access-control-allow-headers".to_owned(), header("access-control-request-headers")));
        out.push(("access-control-expose-headers".to_owned(), String::new()));
        out.push(("access-control-max-age".to_owned(), "7200".to_owned()));
    }
    let mut response = HeaderMap::new();
    for (k, v) in out {
        response.insert(axum::http::HeaderName::try_from(k).unwrap(), v.parse().unwrap());
    }
    let body = if method == axum::http::Method::OPTIONS {
        String::new()
    } else {
        format!("{{\"backend\":\"{}\"}}", s.name)
    };
    (StatusCode::OK, response, body)
}

async fn slow(State(s): State<AppState>) -> &'static str {
    // Counted on arrival, so a test can tell the request is in flight.
    s.hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    "slow done"
}

impl Backend {
    /// Starts a backend on a free port.
    pub fn start(name: &str) -> Backend {
        let healthy = Arc::new(AtomicBool::new(true));
        let hits = Arc::new(AtomicUsize::new(0));
        let state = AppState { name: name.to_owned(), healthy: healthy.clone(), hits: hits.clone() };
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/healthz", get(healthz))
            .route("/whoami", get(whoami))
            .route("/api/whoami", get(whoami))
            .route("/echo", any(echo))
            .route("/events", get(events))
            .route("/ws", get(ws))
            .route("/slow", get(slow))
            .route("/cors", any(cors))
            .with_state(state);
        runtime.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Backend { name: name.to_owned(), addr, healthy, hits, runtime: Arc::new(Mutex::new(Some(runtime))) }
    }

    /// Kills the backend abruptly: its listener and every connection close at once.
    pub fn kill(&self) {
        if let Some(rt) = self.runtime.lock().unwrap().take() {
            rt.shutdown_background();
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A pool for the generated configuration.
pub struct PoolSpec<'a> {
    pub name: &'a str,
    pub backends: Vec<SocketAddr>,
    pub selection: &'a str,
    pub interval_ms: u64,
    pub unhealthy_after: u32,
    pub healthy_after: u32,
}

/// A running gateway process.
pub struct Gateway {
    pub url: String,
    pub admin: String,
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts the gateway with `routes` (prefix, pool) over `pools`.
    pub fn start(routes: &[(&str, &str)], pools: &[PoolSpec<'_>], extra: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let (port, admin) = (free_port(), free_port());
        let mut text = format!(
            "[server]\nthreads = 2\ngrace_period_seconds = 2\ngraceful_shutdown_timeout_seconds = 5\n\
             upgrade_sock = \"{}\"\npid_file = \"{}\"\n\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\n{extra}\n\
             [[listeners]]\naddress = \"127.0.0.1:{port}\"\n\n",
            dir.path().join("upgrade.sock").display(),
            dir.path().join("gateway.pid").display()
        );
        for (prefix, pool) in routes {
            text.push_str(&format!("[[routes]]\nprefix = \"{prefix}\"\npool = \"{pool}\"\n\n"));
        }
        for p in pools {
            let backends: Vec<String> = p.backends.iter().map(|b| format!("\"{b}\"")).collect();
            text.push_str(&format!(
                "[pools.{}]\nbackends = [{}]\nselection = \"{}\"\nconnect_timeout_ms = 500\nread_timeout_ms = 10000\nretries = 2\n\
                 [pools.{}.health_check]\npath = \"/healthz\"\ninterval_ms = {}\ntimeout_ms = {}\nunhealthy_after = {}\nhealthy_after = {}\n\n",
                p.name,
                backends.join(", "),
                p.selection,
                p.name,
                p.interval_ms,
                p.interval_ms.min(500),
                p.unhealthy_after,
                p.healthy_after
            ));
        }
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, text).unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let gateway = Gateway {
            url: format!("http://127.0.0.1:{port}"),
            admin: format!("http://127.0.0.1:{admin}"),
            child,
            dir,
        };
        let up = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok()
        });
        assert!(up, "the gateway did not start:\n{}", gateway.log());
        gateway
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        self.child.wait().unwrap()
    }

    /// How many backends of `pool` pass their health checks, as the admin `/healthz` reports
    /// it (the pool's own state, which request routing reads).
    pub fn healthy_backends(&self, pool: &str) -> Option<u64> {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().ok()?;
        let health: serde_json::Value =
            client.get(format!("{}/healthz", self.admin)).send().ok()?.json().ok()?;
        health["pools"][pool]["healthy"].as_u64()
    }

    /// The socket a successor (`--upgrade`) listens on for the listeners to be handed over.
    pub fn upgrade_sock(&self) -> PathBuf {
        self.dir.path().join("upgrade.sock")
    }

    /// Whether a successor is listening on the upgrade socket, read from `/proc/net/unix`:
    /// connecting to find out would take the one connection the successor accepts.
    pub fn successor_is_listening(&self) -> bool {
        // Columns: Num RefCount Protocol Flags Type St Inode Path; Flags has __SO_ACCEPTCON
        // (0x10000) once listen(2) was called.
        let sock = self.upgrade_sock().display().to_string();
        std::fs::read_to_string("/proc/net/unix").unwrap().lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() == 8
                && fields[7] == sock
                && u32::from_str_radix(fields[3], 16).is_ok_and(|flags| flags & 0x10000 != 0)
        })
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gateway.toml")
    }

    /// Starts a second gateway process with the same configuration and `--upgrade`: it waits
    /// for this one (sent SIGQUIT) to hand its listeners over.
    pub fn start_successor(&self) -> Child {
        let log = std::fs::File::create(self.dir.path().join("successor.log")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("--config")
            .arg(self.config_path())
            .arg("--upgrade")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Sends a signal to the gateway process.
    pub fn signal(&self, signal: &str) {
        Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status().unwrap();
    }

    /// Waits for the gateway process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}
