//! Shared helpers for the judge's integration tests: a real cluster (Redis and PostgreSQL from
//! local binaries, judge servers and workers as processes on loopback) and a small blocking
//! HTTP client, including Server-Sent Events.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use xtask::services::{Postgres, Redis, free_port, probe};

/// Tests run real sandboxes: they need root, and say so instead of passing.
pub fn require_root() {
    assert!(xtask::process::is_root(), "the judge's tests must run as root (workers use the sandbox)");
}

/// How to shape a test cluster.
#[derive(Debug, Clone)]
pub struct Options {
    pub servers: usize,
    pub workers: usize,
    /// Extra environment for every judge process (Judge0 settings, timeouts).
    pub env: Vec<(String, String)>,
    /// Submissions each worker runs at once.
    pub concurrency: usize,
    /// Run the release build of `judge` (benchmarks) instead of the test build.
    pub release: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { servers: 2, workers: 2, env: Vec::new(), concurrency: 2, release: false }
    }
}

/// A running judge cluster; dropping it stops everything.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub redis: Redis,
    pub postgres: Postgres,
    servers: Vec<Child>,
    workers: Vec<Option<(String, Child)>>,
    pub server_urls: Vec<String>,
    pub authn: String,
    pub authz: String,
    options: Options,
    next_worker: usize,
}

fn judge_binary(release: bool) -> PathBuf {
    let test_build = PathBuf::from(env!("CARGO_BIN_EXE_judge"));
    if !release {
        return test_build;
    }
    // target/<profile>/judge → target/release/judge
    let target = test_build.parent().and_then(Path::parent).expect("target dir");
    target.join("release").join("judge")
}

impl Cluster {
    /// Starts Redis, PostgreSQL, the servers and the workers, and waits until all are ready.
    pub fn start(options: Options) -> Cluster {
        require_root();
        let dir = tempfile::Builder::new().prefix("verdict-judge-test-").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let redis = Redis::start(&dir.path().join("redis"), 0).expect("redis");
        let postgres = Postgres::start(&dir.path().join("postgres"), 0, "judge").expect("postgres");
        let mut cluster = Cluster {
            redis,
            postgres,
            servers: Vec::new(),
            workers: Vec::new(),
            server_urls: Vec::new(),
            authn: "test-authn-token".into(),
            authz: "test-authz-token".into(),
            options: options.clone(),
            next_worker: 0,
            dir,
        };
        for _ in 0..options.servers {
            cluster.spawn_server(&[]);
        }
        for _ in 0..options.workers {
            cluster.start_worker();
        }
        for i in 0..options.servers {
            cluster.wait_for_server(i);
        }
        for i in 0..options.workers {
            cluster.wait_for_worker(i);
        }
        cluster
    }

    /// Starts one more server on the cluster's Redis and PostgreSQL with `env` added to the
    /// cluster's (settings only it has), waits until it is healthy, and returns its index.
    pub fn add_server(&mut self, env: &[(&str, &str)]) -> usize {
        let i = self.spawn_server(env);
        self.wait_for_server(i);
        i
    }

    /// Starts a server process with `env` added to the cluster's, and returns its index.
    fn spawn_server(&mut self, env: &[(&str, &str)]) -> usize {
        let i = self.servers.len();
        let port = free_port().unwrap();
        let log = self.dir.path().join(format!("server-{i}.log"));
        let mut cmd = self.command();
        cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")]);
        cmd.envs(env.iter().copied());
        self.servers.push(spawn(&mut cmd, &log));
        self.server_urls.push(format!("http://127.0.0.1:{port}"));
        i
    }

    /// Waits until server `i` answers its health check.
    fn wait_for_server(&self, i: usize) {
        let addr: SocketAddr = self.server_urls[i].trim_start_matches("http://").parse().unwrap();
        let ready = wait_until(Duration::from_secs(60), || {
            probe::http_status(addr, "/healthz", Duration::from_secs(1)).is_ok_and(|s| s == 200)
        });
        assert!(ready, "server {i} never became healthy:\n{}", self.logs());
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(judge_binary(self.options.release));
        cmd.env("DATABASE_URL", self.postgres.url())
            .env("REDIS_URL", self.redis.url())
            .env("AUTHN_TOKEN", &self.authn)
            .env("AUTHZ_TOKEN", &self.authz)
            .env("VERDICT_SANDBOX_RUN_DIR", self.dir.path().join("sandbox"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1");
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts one more worker; returns its index.
    pub fn start_worker(&mut self) -> usize {
        let i = self.next_worker;
        self.next_worker += 1;
        let name = format!("test-worker-{i}");
        let log = self.dir.path().join(format!("worker-{i}.log"));
        let mut cmd = self.command();
        cmd.args(["worker", "--name", &name, "--concurrency", &self.options.concurrency.to_string()]);
        self.workers.push(Some((name, spawn(&mut cmd, &log))));
        i
    }

    /// Waits until worker `i` has published a heartbeat.
    pub fn wait_for_worker(&self, i: usize) {
        let name = self.workers[i].as_ref().map(|(n, _)| n.clone()).expect("worker");
        let key = format!("judge:worker:{name}");
        let up = wait_until(Duration::from_secs(60), || {
            matches!(self.redis.command(&["EXISTS", &key]), Ok(probe::Reply::Integer(1)))
        });
        assert!(up, "worker {i} never published a heartbeat:\n{}", self.logs());
    }

    /// The pid of worker `i`.
    pub fn worker_pid(&self, i: usize) -> u32 {
        self.workers[i].as_ref().map(|(_, c)| c.id()).expect("worker")
    }

    /// Kills worker `i` with SIGKILL, as a crash would.
    pub fn kill_worker(&mut self, i: usize) {
        if let Some((_, mut child)) = self.workers[i].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Stops worker `i` with SIGTERM and waits for it to exit.
    pub fn stop_worker(&mut self, i: usize) -> std::process::ExitStatus {
        let (_, mut child) = self.workers[i].take().expect("worker");
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        child.wait().unwrap()
    }

    /// What worker `i` has logged so far.
    /// The pid of server `i`.
    pub fn server_pid(&self, i: usize) -> u32 {
        self.servers[i].id()
    }

    /// Whether worker `i` has exited (crashed), reaping it if so.
    pub fn worker_exited(&mut self, i: usize) -> bool {
        match &mut self.workers[i] {
            Some((_, child)) => child.try_wait().unwrap().is_some(),
            None => true,
        }
    }

    pub fn worker_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("worker-{i}.log"))).unwrap_or_default()
    }

    /// The first server's URL.
    pub fn url(&self) -> &str {
        &self.server_urls[0]
    }

    /// The last lines of every log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "log")).collect()
            })
            .unwrap_or_default();
        files.sort();
        for f in files {
            out.push_str(&format!("--- {}\n{}\n", f.display(), xtask::process::tail(&f, 0, 40)));
        }
        out
    }

    /// Authenticated request to server `server`.
    pub fn request(&self, server: usize, method: &str, path: &str, body: Option<&Value>) -> Response {
        let body = body.map(|b| serde_json::to_vec(b).unwrap());
        let mut headers = vec![("X-Auth-Token", self.authn.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        http(method, &format!("{}{path}", self.server_urls[server]), &headers, body.as_deref())
    }

    /// `POST /submissions?wait=true` on the first server; returns the finished submission.
    pub fn run(&self, submission: &Value, query: &str) -> Value {
        let sep = if query.is_empty() { "" } else { "&" };
        let r = self.request(0, "POST", &format!("/submissions?wait=true{sep}{query}"), Some(submission));
        assert_eq!(r.status, 201, "{}\n{}", r.text(), self.logs());
        r.json()
    }

    /// Polls `GET /submissions/:token` until it is finished (for tests that must not use wait).
    pub fn await_token(&self, token: &str, fields: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.request(0, "GET", &format!("/submissions/{token}?fields={fields},status_id"), None);
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            if v["status_id"].as_i64().is_some_and(|s| s > 2) {
                return v;
            }
            assert!(Instant::now() < deadline, "submission {token} unfinished: {v}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The gateway in front of a cluster's servers, as the private gateway (Judge0's port) stands
/// in front of them; dropping it stops it.
pub struct Gateway {
    pub url: String,
    child: Child,
    dir: PathBuf,
}

impl Gateway {
    /// What the gateway has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway binary of this build. Cargo builds another package's binary only for that
/// package's tests, so it comes from the same target directory: `cargo test --workspace` (and
/// `cargo xtask test`) builds it first; alone, build it with `cargo build -p gateway`.
fn gateway_binary() -> PathBuf {
    let judge = PathBuf::from(env!("CARGO_BIN_EXE_judge"));
    let gateway = judge.with_file_name("gateway");
    assert!(
        gateway.exists(),
        "no gateway binary at {} (build it with `cargo build -p gateway` in the same target directory)",
        gateway.display()
    );
    gateway
}

impl Cluster {
    /// Starts a gateway routing everything to the cluster's `servers` (indices), and waits
    /// until it sees every one of them healthy.
    pub fn start_gateway(&self, servers: &[usize]) -> Gateway {
        let dir = self.dir.path().join(format!("gateway-{}", free_port().unwrap()));
        std::fs::create_dir_all(&dir).unwrap();
        let (port, admin) = (free_port().unwrap(), free_port().unwrap());
        let backends: Vec<String> = servers
            .iter()
            .map(|&i| format!("\"{}\"", self.server_urls[i].trim_start_matches("http://")))
            .collect();
        let config = format!(
            "[server]\nthreads = 1\ngrace_period_seconds = 1\ngraceful_shutdown_timeout_seconds = 2\n\
             upgrade_sock = \"{dir}/upgrade.sock\"\npid_file = \"{dir}/gateway.pid\"\n\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n\n[[listeners]]\naddress = \"127.0.0.1:{port}\"\n\n\
             [[routes]]\nprefix = \"/\"\npool = \"judge\"\n\n\
             [pools.judge]\nbackends = [{backends}]\nselection = \"least_connections\"\nread_timeout_ms = 330000\n\n\
             [pools.judge.health_check]\npath = \"/healthz\"\ninterval_ms = 200\ntimeout_ms = 200\n\
             unhealthy_after = 2\nhealthy_after = 1\n",
            dir = dir.display(),
            backends = backends.join(", ")
        );
        let config_path = dir.join("gateway.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join("gateway.log");
        let mut cmd = Command::new(gateway_binary());
        cmd.arg("--config").arg(&config_path).env("RUST_LOG", "info");
        let mut gateway =
            Gateway { url: format!("http://127.0.0.1:{port}"), child: spawn(&mut cmd, &log), dir };
        let admin_addr: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
        let every = servers.len() as u64;
        let ready = wait_until(Duration::from_secs(30), || {
            // `http` panics on a refused connection: the admin listener may not be up yet.
            if gateway.child.try_wait().is_ok_and(|exit| exit.is_some()) {
                return true; // gone: said below
            }
            if TcpStream::connect(admin_addr).is_err() {
                return false;
            }
            let health = http("GET", &format!("http://{admin_addr}/healthz"), &[], None);
            serde_json::from_slice::<Value>(&health.body)
                .is_ok_and(|v| v["pools"]["judge"]["healthy"].as_u64() == Some(every))
        });
        let running = gateway.child.try_wait().is_ok_and(|exit| exit.is_none());
        assert!(ready && running, "the gateway never saw the servers healthy:\n{}", gateway.log());
        gateway
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.servers.iter_mut().chain(self.workers.iter_mut().flatten().map(|(_, c)| c)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(cmd: &mut Command, log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null()).stdout(file.try_clone().unwrap()).stderr(file).spawn().expect("judge binary")
}

/// Polls `done` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A submission a test makes and what it must end as: its status id, and its stdout and
/// message where given (a compilation error must also show the compiler's output).
pub struct Expected {
    pub label: String,
    pub body: Value,
    pub status: i32,
    pub stdout: Option<String>,
    pub message: Option<String>,
}

impl Expected {
    fn mismatches(&self, got: &Value) -> Vec<String> {
        let mut wrong = Vec::new();
        if got["status"]["id"] != self.status {
            wrong.push(format!("status {} (expected {})", got["status"], self.status));
        }
        if let Some(out) = &self.stdout
            && got["stdout"] != out.as_str()
        {
            wrong.push(format!("stdout {}", got["stdout"]));
        }
        if let Some(m) = &self.message
            && got["message"] != m.as_str()
        {
            wrong.push(format!("message {} (expected {m:?})", got["message"]));
        }
        if self.status == 6 && got["compile_output"].as_str().is_none_or(str::is_empty) {
            wrong.push("no compile_output".into());
        }
        wrong
    }
}

impl Cluster {
    /// Submits every case at once (with `query` on the POST, e.g. `base64_encoded=true`), waits
    /// for each to finish and fails listing every case that ended otherwise than expected.
    pub fn judge_all(&self, query: &str, cases: &[Expected], timeout: Duration) {
        let tokens: Vec<String> = cases
            .iter()
            .map(|case| {
                let r = self.request(0, "POST", &format!("/submissions?{query}"), Some(&case.body));
                assert_eq!(r.status, 201, "{}: {}", case.label, r.text());
                r.json()["token"].as_str().unwrap().to_owned()
            })
            .collect();
        let fields = "status,stdout,stderr,compile_output,message,exit_code,exit_signal,time";
        let failures: Vec<String> = cases
            .iter()
            .zip(&tokens)
            .filter_map(|(case, token)| {
                let got = self.await_token(token, fields, timeout);
                let wrong = case.mismatches(&got);
                (!wrong.is_empty()).then(|| format!("{}: {}\n    {got}", case.label, wrong.join(", ")))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }
}

/// Reads one HTTP request from `stream` (as a callback receiver does) and returns its body
/// as JSON (`Null` when it is not JSON).
pub fn read_request_json(stream: &TcpStream) -> Value {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 2 {
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    serde_json::from_slice(&body).unwrap_or_default()
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn connect(url: &str, method: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> BufReader<TcpStream> {
    connect_with(url, method, headers, body, |_| {})
}

fn connect_with(
    url: &str,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    prepare: impl FnOnce(&TcpStream),
) -> BufReader<TcpStream> {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    prepare(&stream);
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.map_or(0, <[u8]>::len)));
    stream.write_all(req.as_bytes()).unwrap();
    if let Some(b) = body {
        stream.write_all(b).unwrap();
    }
    BufReader::new(stream)
}

fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

/// One HTTP/1.1 request (`Connection: close`).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
    let mut reader = connect(url, method, headers, body);
    let (status, headers) = read_head(&mut reader);
    let chunked =
        headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        Chunked { inner: reader, left: 0, done: false }.read_to_end(&mut body).unwrap();
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    Response { status, headers, body }
}

/// Reads a chunked body.
struct Chunked {
    inner: BufReader<TcpStream>,
    left: usize,
    done: bool,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line.is_empty() {
                self.done = true;
                return Ok(0);
            }
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            if size == 0 {
                self.done = true;
                return Ok(0);
            }
            self.left = size;
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

/// A Server-Sent Events stream.
pub struct Sse {
    pub status: u16,
    lines: BufReader<Chunked>,
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Opens an event stream.
pub fn sse(url: &str, headers: &[(&str, &str)]) -> Sse {
    sse_with(url, headers, |_| {})
}

/// Sets a socket's receive buffer (which bounds the window the peer may fill).
fn set_receive_buffer(stream: &TcpStream, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on an open socket with a valid int option value.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt SO_RCVBUF");
}

/// Opens an event stream on a connection whose receive window stays a few KiB: a client that
/// does not read soon leaves what the server sends in the server's buffers. (Call
/// [`Sse::widen`] before reading much: through such a window a transfer crawls.)
pub fn sse_small_window(url: &str, headers: &[(&str, &str)]) -> Sse {
    sse_with(url, headers, |stream| set_receive_buffer(stream, 4096))
}

impl Sse {
    /// Lets the server fill a normal window again.
    pub fn widen(&self) {
        set_receive_buffer(self.lines.get_ref().inner.get_ref(), 4 << 20);
    }
}

fn sse_with(url: &str, headers: &[(&str, &str)], prepare: impl FnOnce(&TcpStream)) -> Sse {
    let mut reader = connect_with(url, "GET", headers, None, prepare);
    let (status, _) = read_head(&mut reader);
    Sse { status, lines: BufReader::new(Chunked { inner: reader, left: 0, done: false }) }
}

impl Iterator for Sse {
    type Item = SseEvent;

    fn next(&mut self) -> Option<SseEvent> {
        let mut event = String::from("message");
        let mut data = Vec::new();
        loop {
            let mut line = String::new();
            if self.lines.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                if data.is_empty() {
                    continue; // a keep-alive comment ended
                }
                return Some(SseEvent { event, data: data.join("\n") });
            }
            if let Some(v) = l.strip_prefix("event:") {
                event = v.trim().to_owned();
            } else if let Some(v) = l.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
            }
        }
    }
}
