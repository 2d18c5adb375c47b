//! Throughput and latency of the gateway next to nginx: the same loopback backend behind each,
//! the same load generator (wrk) with the same parameters, rounds rotated so that machine
//! noise hits all alike, medians of the rounds reported. The barest pingora proxy
//! (`examples/pingora_floor.rs`) runs too: the floor the gateway stands on, so that what
//! pingora costs and what the gateway adds to it are told apart.
//!
//! `cargo xtask bench gateway` runs this (it installs nginx and wrk, and builds the release
//! binaries). Settings, from the environment: `BENCH_CONNECTIONS` (default 64),
//! `BENCH_SECONDS` per round (default 10), `BENCH_ROUNDS` per proxy (default 3),
//! `BENCH_WRK_THREADS` (default 1), `BENCH_BACKEND_THREADS` (default 2), `BENCH_GATEWAY_LOG`
//! (the gateway's `RUST_LOG`; default its own) and `BENCH_GATEWAY_SERVER` (lines added to the
//! gateway's `[server]` section, to try settings).
//!
//! Everything shares this machine's CPUs: wrk, the proxy and the backend compete for them, and
//! that is true for every proxy. The CPU time each part spent per request is printed too, so
//! that a difference comes with its cause.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails by panicking.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::get;

/// What the backend answers to `GET /`.
const BODY: &str = "hello, world\n";
/// Worker threads of each proxy (nginx's `worker_processes`, the gateway's `server.threads`):
/// one per CPU, as each would be deployed.
const PROXY_THREADS: usize = 2;
/// Idle keep-alive connections each proxy keeps to the backend (nginx's `keepalive`, per
/// worker; the gateway's pool holds up to 128 across threads).
const KEEPALIVE: usize = 128;
const NGINX: &str = "/usr/sbin/nginx";
const WRK: &str = "/usr/bin/wrk";
/// Clock ticks per second in `/proc` (USER_HZ, 100 on every Linux ABI).
const TICKS: f64 = 100.0;

/// wrk prints one line the benchmark parses: its own percentiles are exact, its text output is
/// rounded.
const WRK_SCRIPT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
"#;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).filter(|n| *n > 0).unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The backend both proxies forward to: axum on its own runtime in this process.
fn start_backend(threads: usize) -> (tokio::runtime::Runtime, SocketAddr) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("backend")
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/", get(|| async { BODY })).route("/healthz", get(|| async { "ok" }));
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (runtime, addr)
}

/// A proxy under test, running as a child process.
struct Proxy {
    name: &'static str,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Proxy {
    /// Runs `command`, its output to `log`, and waits until it answers on `port`.
    fn start(name: &'static str, port: u16, mut command: Command, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let child =
            command.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out).spawn().unwrap_or_else(
                |e| panic!("cannot start {name} ({e}); cargo xtask bench gateway installs nginx"),
            );
        let mut proxy = Self { name, port, child, log };
        proxy.wait_ready();
        proxy
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The proxy's processes: the child and, for nginx, its workers.
    fn pids(&self) -> Vec<u32> {
        let pid = self.child.id();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        std::iter::once(pid).chain(children.split_whitespace().filter_map(|p| p.parse().ok())).collect()
    }

    /// CPU ticks used so far by every process of the proxy.
    fn cpu(&self) -> u64 {
        self.pids().into_iter().filter_map(own_ticks).sum()
    }

    fn wait_ready(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        if let Err(e) = xtask::services::wait_for_tcp(addr, Duration::from_secs(20)) {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("{} did not start: {e:#}\n{log}", self.name);
        }
        // The health check may take a moment to pass; the answer must be the backend's.
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match client.get(self.url()).send() {
                Ok(r) if r.status() == 200 => {
                    assert_eq!(r.text().unwrap(), BODY, "{} answers something else", self.name);
                    return;
                }
                other if std::time::Instant::now() > deadline => {
                    panic!("{} does not answer 200: {other:?}", self.name)
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // nginx's master stops its workers on SIGTERM (killed, it would leave them running); a
        // pingora process has nothing to drain here and would wait out its grace period.
        if self.name != "nginx" {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User and system ticks of one process (all its threads).
fn own_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// This process's own ticks (the backend, mostly) and those of its reaped children (wrk).
fn self_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest.split_whitespace().skip(11).take(4).map(|s| s.parse().unwrap()).collect();
    (f[0] + f[1], f[2] + f[3])
}

fn start_nginx(dir: &Path, backend: SocketAddr) -> Proxy {
    let dir = dir.join("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    let port = xtask::services::free_port().unwrap();
    let d = dir.display();
    // What the gateway does to a request, nginx does too: a request id (kept from the client
    // or made), forwarding headers, keep-alive to the backend, an access log line written in
    // batches (the gateway's goes to standard output, gathered for up to 100 ms).
    let config = format!(
        "daemon off;
worker_processes {PROXY_THREADS};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format access '$rid $request_method $uri $status $upstream_addr $request_time $remote_addr';
    access_log {d}/access.log access buffer=64k flush=100ms;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_x_request_id $rid {{ default $http_x_request_id; \"\" $request_id; }}
    upstream backend {{
        server {backend};
        keepalive {KEEPALIVE};
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header X-Request-Id $rid;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            add_header X-Request-Id $rid always;
        }}
    }}
}}
"
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config).unwrap();
    let mut command = Command::new(NGINX);
    command.arg("-c").arg(&conf).arg("-p").arg(&dir);
    Proxy::start("nginx", port, command, dir.join("stderr.log"))
}

fn start_gateway(dir: &Path, backend: SocketAddr, server_settings: &str) -> Proxy {
    let dir = dir.join("gateway");
    std::fs::create_dir_all(&dir).unwrap();
    let (port, admin) = (xtask::services::free_port().unwrap(), xtask::services::free_port().unwrap());
    let d = dir.display();
    // The shipped configuration (configs/private.toml) with this machine's addresses.
    let config = format!(
        "[server]
threads = {PROXY_THREADS}
{server_settings}
upgrade_sock = \"{d}/upgrade.sock\"
pid_file = \"{d}/gateway.pid\"

[admin]
listen = \"127.0.0.1:{admin}\"

[[listeners]]
address = \"127.0.0.1:{port}\"

[[routes]]
prefix = \"/\"
pool = \"backend\"

[pools.backend]
backends = [\"{backend}\"]
selection = \"least_connections\"

[pools.backend.health_check]
path = \"/healthz\"
"
    );
    let conf = dir.join("gateway.toml");
    std::fs::write(&conf, config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    command.arg("--config").arg(&conf);
    // The logging it ships with, whatever this shell says, unless the bench is told otherwise.
    match std::env::var("BENCH_GATEWAY_LOG") {
        Ok(filter) => command.env("RUST_LOG", filter),
        Err(_) => command.env_remove("RUST_LOG"),
    };
    Proxy::start("gateway", port, command, dir.join("gateway.log"))
}

/// The load generator's settings, the same for every target.
struct Load {
    connections: usize,
    seconds: usize,
    threads: usize,
    script: PathBuf,
}

/// One round against one target.
#[derive(Debug, Clone, Copy)]
struct Round {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU microseconds per request: the proxy, the backend, wrk.
    cpu_proxy_us: f64,
    cpu_backend_us: f64,
    cpu_wrk_us: f64,
}

fn run_wrk(load: &Load, url: &str, seconds: usize, proxy: Option<&Proxy>) -> Round {
    let before_proxy = proxy.map_or(0, Proxy::cpu);
    let (before_self, before_children) = self_ticks();
    let out = Command::new(WRK)
        .args(["-t", &load.threads.to_string(), "-c", &load.connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "--timeout", "5s", "-s"])
        .arg(&load.script)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("wrk (apt-get install wrk, or cargo xtask bench gateway)");
    let (after_self, after_children) = self_ticks();
    let cpu_proxy = proxy.map_or(0, Proxy::cpu) - before_proxy;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("wrk's RESULT line");
    let n: Vec<u64> = line.split_whitespace().map(|s| s.parse().unwrap()).collect();
    let (requests, duration_us, p50_us, p99_us, io_errors, bad_status) = (n[0], n[1], n[2], n[3], n[4], n[5]);
    assert!(requests > 0, "no request answered by {url}: {stdout}");
    assert_eq!((io_errors, bad_status), (0, 0), "errors from {url}: {stdout}");
    let per_request_us = |ticks: u64| ticks as f64 / TICKS * 1e6 / requests as f64;
    Round {
        per_second: requests as f64 / (duration_us as f64 / 1e6),
        p50_ms: p50_us as f64 / 1e3,
        p99_ms: p99_us as f64 / 1e3,
        cpu_proxy_us: per_request_us(cpu_proxy),
        cpu_backend_us: per_request_us(after_self - before_self),
        cpu_wrk_us: per_request_us(after_children - before_children),
    }
}

/// The medians of a target's rounds.
fn summary(rounds: &[Round]) -> Round {
    let m = |f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    Round {
        per_second: m(|r| r.per_second),
        p50_ms: m(|r| r.p50_ms),
        p99_ms: m(|r| r.p99_ms),
        cpu_proxy_us: m(|r| r.cpu_proxy_us),
        cpu_backend_us: m(|r| r.cpu_backend_us),
        cpu_wrk_us: m(|r| r.cpu_wrk_us),
    }
}

/// The barest pingora proxy (`examples/pingora_floor.rs`), built beside this benchmark.
fn start_floor(dir: &Path, backend: SocketAddr) -> Proxy {
    // This benchmark runs from target/<profile>/deps; examples are built to target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join("examples/pingora_floor");
    assert!(
        bin.exists(),
        "{} is missing: cargo build --release -p gateway --example pingora_floor",
        bin.display()
    );
    let port = xtask::services::free_port().unwrap();
    let mut command = Command::new(bin);
    command.args([format!("127.0.0.1:{port}"), backend.to_string(), PROXY_THREADS.to_string()]);
    Proxy::start("pingora", port, command, dir.join("pingora_floor.log"))
}

fn main() {
    let connections = env_number("BENCH_CONNECTIONS", 64);
    let seconds = env_number("BENCH_SECONDS", 10);
    let rounds = env_number("BENCH_ROUNDS", 3);
    let threads = env_number("BENCH_WRK_THREADS", 1);
    let backend_threads = env_number("BENCH_BACKEND_THREADS", 2);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("report.lua");
    std::fs::write(&script, WRK_SCRIPT).unwrap();
    let load = Load { connections, seconds, threads, script };

    let (_backend_runtime, backend) = start_backend(backend_threads);
    let server_settings = std::env::var("BENCH_GATEWAY_SERVER").unwrap_or_default();
    // nginx is the baseline; the bare pingora proxy is the floor the gateway is built on.
    let proxies = [
        start_nginx(dir.path(), backend),
        start_gateway(dir.path(), backend, &server_settings),
        start_floor(dir.path(), backend),
    ];
    let version = Command::new(NGINX).arg("-v").output().unwrap();
    println!(
        "GET / ({} bytes) from an axum backend on loopback ({backend_threads} threads), through {}, \
         the gateway and the barest pingora proxy ({PROXY_THREADS} workers each, keep-alive to the backend)",
        BODY.len(),
        String::from_utf8_lossy(&version.stderr).trim().trim_start_matches("nginx version: "),
    );
    println!(
        "wrk: {threads} thread(s), {connections} connections, {seconds} s per round, {rounds} rounds per \
         proxy, order rotated; medians of rounds"
    );
    println!(
        "{} CPUs shared by wrk, the proxy and the backend, for every proxy alike",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();

    // Warm every proxy (connections to the backend, caches, the CPU's frequency).
    for proxy in &proxies {
        run_wrk(&load, &proxy.url(), 2, None);
    }
    let direct = run_wrk(&load, &format!("http://{backend}/"), load.seconds, None);

    println!(
        "{:<10} {:>8} {:>12} {:>9} {:>9} {:>11} {:>11} {:>9}",
        "round", "proxy", "requests/s", "p50 ms", "p99 ms", "proxy µs/r", "backend µs", "wrk µs"
    );
    let row = |round: &str, who: &str, r: &Round| {
        println!(
            "{:<10} {:>8} {:>12.0} {:>9.3} {:>9.3} {:>11.1} {:>11.1} {:>9.1}",
            round, who, r.per_second, r.p50_ms, r.p99_ms, r.cpu_proxy_us, r.cpu_backend_us, r.cpu_wrk_us
        );
    };
    let mut results: Vec<Vec<Round>> = proxies.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        // Rotate who goes first, so that a drift over the run favours none.
        for k in 0..proxies.len() {
            let i = (round + k) % proxies.len();
            let r = run_wrk(&load, &proxies[i].url(), load.seconds, Some(&proxies[i]));
            row(&(round + 1).to_string(), proxies[i].name, &r);
            results[i].push(r);
        }
    }
    let [n, g, f] = [0, 1, 2].map(|i| summary(&results[i]));
    println!();
    row("direct", "none", &direct);
    for (proxy, median) in proxies.iter().zip([&n, &g, &f]) {
        row("median", proxy.name, median);
    }
    println!();

    let ratios = |who: &str, x: &Round| {
        println!(
            "{who}/nginx: requests/s {:.2}, p50 {:.2}, p99 {:.2}, proxy CPU per request {:.2}",
            x.per_second / n.per_second,
            x.p50_ms / n.p50_ms,
            x.p99_ms / n.p99_ms,
            x.cpu_proxy_us / n.cpu_proxy_us,
        );
    };
    ratios("pingora", &f);
    ratios("gateway", &g);
    println!(
        "gateway/pingora: requests/s {:.2}, proxy CPU per request {:.2} (what the gateway adds to pingora)",
        g.per_second / f.per_second,
        g.cpu_proxy_us / f.cpu_proxy_us,
    );
    let throughput = g.per_second / n.per_second;
    let p99 = g.p99_ms / n.p99_ms;
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!("throughput: gateway/nginx = {throughput:.2} (goal >= 1.00: {})", verdict(throughput >= 1.0));
    println!("p99 latency: gateway/nginx = {p99:.2} (goal <= 1.00: {})", verdict(p99 <= 1.0));
}
