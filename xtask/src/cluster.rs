//! `cargo xtask start-all`, `stop-all`, `status`, `logs <part>`: the whole cluster on this
//! machine as processes on loopback. Everything it keeps is under `.data/` at the workspace
//! root: each service's files in `.data/<service>/`, output in `.data/logs/<part>.log`, pids in
//! `.data/run/<part>.pid`, dev tokens in `.data/tokens.env`, Redis's and PostgreSQL's
//! passwords in `.data/<service>/password`, and what clients need in `.data/cluster.env` (mode
//! 0600: its URLs carry the passwords).
//!
//! Parts run in sessions of their own, so they outlive the command that started them.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use xtask::process::{self, Signal};
use xtask::services::probe::{self, Reply};
use xtask::services::{self, Launch, Postgres, Redis};

use crate::packages;

/// What a part is, which decides how it starts, how its health shows and how it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Redis,
    Postgres,
    JudgeServer,
    JudgeWorker,
    Gateway,
}

impl Kind {
    /// The process name (`/proc/<pid>/comm`) a live part of this kind has, to tell it from an
    /// unrelated process that reused a pid from an old pid file.
    fn program(self) -> &'static str {
        match self {
            Kind::Redis => "redis-server",
            Kind::Postgres => "postgres",
            Kind::JudgeServer | Kind::JudgeWorker => "judge",
            Kind::Gateway => "gateway",
        }
    }

    fn stop_signal(self) -> Signal {
        match self {
            // PostgreSQL's SIGTERM waits for every client to leave; SIGINT is its fast shutdown.
            Kind::Postgres => Signal::Int,
            _ => Signal::Term,
        }
    }
}

/// One process of the cluster.
#[derive(Debug)]
struct Part {
    name: &'static str,
    kind: Kind,
    port: Option<u16>,
}

const fn part(name: &'static str, kind: Kind, port: Option<u16>) -> Part {
    Part { name, kind, port }
}

/// The cluster, in start order; `stop-all` goes in reverse. A new part is a new row (and, for
/// a new kind, its start and health check).
const PARTS: &[Part] = &[
    // 6380 and 5433, not the defaults, so that a system Redis or PostgreSQL does not clash.
    part("redis", Kind::Redis, Some(6380)),
    part("postgres", Kind::Postgres, Some(5433)),
    part("judge-server-1", Kind::JudgeServer, Some(2359)),
    part("judge-server-2", Kind::JudgeServer, Some(2360)),
    part("judge-worker-1", Kind::JudgeWorker, None),
    part("judge-worker-2", Kind::JudgeWorker, None),
    // The cluster's Judge0 endpoint, in front of both judge servers.
    part("gateway-private", Kind::Gateway, Some(2358)),
];

/// The private gateway's configuration, relative to the workspace.
const PRIVATE_GATEWAY_CONFIG: &str = "gateway/configs/private.toml";
/// Its admin listener (`/healthz`, `/metrics`), as that file sets it.
const PRIVATE_GATEWAY_ADMIN: u16 = 9358;

/// The judge's database.
const DATABASE: &str = "judge";

/// How long each part may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a worker may take to publish its first heartbeat before we warn (and go on).
const HEARTBEAT_GRACE: Duration = Duration::from_secs(10);

/// How long `stop-all` waits after its polite signal before `SIGKILL`.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

fn port_of(kind: Kind) -> u16 {
    PARTS.iter().find(|p| p.kind == kind).and_then(|p| p.port).unwrap_or(0)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The directory of the part of kind `kind` (Redis's or PostgreSQL's files).
fn dir_of(layout: &Layout, kind: Kind) -> PathBuf {
    let name = PARTS.iter().find(|p| p.kind == kind).map_or("", |p| p.name);
    layout.data.join(name)
}

/// The password Redis's first start made.
fn redis_password(layout: &Layout) -> Result<String> {
    services::read_password(&dir_of(layout, Kind::Redis)).context(RESTART_HINT)
}

/// Said when a store runs without the password file a start by this version makes.
const RESTART_HINT: &str =
    "a store started before passwords were required may still run: `cargo xtask stop-all`, then start again";

fn redis_url(layout: &Layout) -> Result<String> {
    Ok(format!("redis://:{}@127.0.0.1:{}", redis_password(layout)?, port_of(Kind::Redis)))
}

fn database_url(layout: &Layout) -> Result<String> {
    let password = services::read_password(&dir_of(layout, Kind::Postgres)).context(RESTART_HINT)?;
    Ok(format!("postgres://postgres:{password}@127.0.0.1:{}/{DATABASE}", port_of(Kind::Postgres)))
}

fn server_urls() -> Vec<String> {
    PARTS
        .iter()
        .filter(|p| p.kind == Kind::JudgeServer)
        .filter_map(|p| p.port)
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect()
}

/// Where things are: the workspace and its `.data/`.
#[derive(Debug)]
struct Layout {
    workspace: PathBuf,
    data: PathBuf,
}

impl Layout {
    fn find() -> Result<Layout> {
        // At run time under `cargo xtask`; the build-time value when run directly.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        let workspace = manifest_dir.parent().context("xtask has no parent directory")?.to_owned();
        let data = workspace.join(".data");
        Ok(Layout { workspace, data })
    }

    fn log(&self, part: &Part) -> PathBuf {
        self.data.join("logs").join(format!("{}.log", part.name))
    }

    fn pid_file(&self, part: &Part) -> PathBuf {
        self.data.join("run").join(format!("{}.pid", part.name))
    }

    fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.workspace).unwrap_or(path)
    }

    /// The pid of `part` if it runs: its pid file names a live process with the right name.
    fn running(&self, part: &Part) -> Option<u32> {
        let pid = fs::read_to_string(self.pid_file(part)).ok()?.trim().parse().ok()?;
        (process::command_name(pid).as_deref() == Some(part.kind.program())).then_some(pid)
    }

    fn write_pid(&self, part: &Part, pid: u32) -> Result<()> {
        let file = self.pid_file(part);
        fs::write(&file, format!("{pid}\n")).with_context(|| format!("cannot write {}", file.display()))
    }
}

/// The dev tokens, kept in `.data/tokens.env` so that every start reuses them.
#[derive(Debug)]
struct Tokens {
    authn: String,
    authz: String,
}

impl Tokens {
    fn load_or_create(layout: &Layout) -> Result<Tokens> {
        let file = layout.data.join("tokens.env");
        let text = fs::read_to_string(&file).unwrap_or_default();
        let get = |key: &str| {
            text.lines()
                .filter_map(|line| line.split_once('='))
                .find(|(k, v)| k.trim() == key && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_owned())
        };
        if let (Some(authn), Some(authz)) = (get("AUTHN_TOKEN"), get("AUTHZ_TOKEN")) {
            return Ok(Tokens { authn, authz });
        }
        let tokens = Tokens { authn: services::random_hex()?, authz: services::random_hex()? };
        let mut out = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&file)
            .with_context(|| format!("cannot write {}", file.display()))?;
        write!(out, "AUTHN_TOKEN={}\nAUTHZ_TOKEN={}\n", tokens.authn, tokens.authz)?;
        Ok(tokens)
    }
}

/// `cargo xtask start-all`.
pub(crate) fn start_all(build: bool, languages: packages::Languages) -> Result<()> {
    let layout = Layout::find()?;
    for dir in ["logs", "run", "sandbox"] {
        let dir = layout.data.join(dir);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    packages::ensure(&[packages::BUILD, packages::CLUSTER, packages::TOOLS], languages)?;
    if !process::is_root() {
        eprintln!("xtask: warning: judge workers run the sandbox, which needs root; they will likely fail");
    }
    let bin = binaries(&layout, build)?;
    let tokens = Tokens::load_or_create(&layout)?;

    // Redis and PostgreSQL are ready when their start returns; the rest start together and
    // are waited for together.
    let mut waiting = Vec::new();
    for part in PARTS {
        if let Some(pid) = layout.running(part) {
            eprintln!("xtask: {} is already up (pid {pid})", part.name);
            // Check it, but do not give a worker's heartbeat time again.
            let started = Instant::now().checked_sub(HEARTBEAT_GRACE).unwrap_or_else(Instant::now);
            waiting.push(Waiting { part, pid, log_start: 0, started, warned: false });
            continue;
        }
        eprintln!("xtask: starting {}", part.name);
        let log = layout.log(part);
        let log_start = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let pid = start(&layout, part, &bin, &tokens).with_context(|| {
            format!("cannot start {}; see {}", part.name, layout.relative(&log).display())
        })?;
        layout.write_pid(part, pid)?;
        waiting.push(Waiting { part, pid, log_start, started: Instant::now(), warned: false });
    }
    wait_healthy(&layout, waiting)?;

    let env_file = write_cluster_env(&layout, &tokens)?;
    print_status(&layout);
    println!("\nEndpoints and dev tokens: {}", layout.relative(&env_file).display());
    Ok(())
}

/// The cluster's own programs.
#[derive(Debug)]
struct Binaries {
    judge: PathBuf,
    gateway: PathBuf,
}

/// Builds the judge and the gateway (unless `build` is false) and finds their binaries in
/// cargo's target directory.
fn binaries(layout: &Layout, build: bool) -> Result<Binaries> {
    let cargo = env!("CARGO");
    if build {
        eprintln!("xtask: cargo build --release -p judge -p gateway");
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "judge", "-p", "gateway"])
            .current_dir(&layout.workspace)
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("cargo build --release -p judge -p gateway failed");
        }
    }
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(&layout.workspace)
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).context("cargo metadata")?;
    let target = metadata["target_directory"].as_str().context("no target_directory in cargo metadata")?;
    let release = Path::new(target).join("release");
    let found = |name: &str| -> Result<PathBuf> {
        let path = release.join(name);
        if !path.is_file() {
            bail!("no {name} binary at {} (build it: cargo build --release -p {name})", path.display());
        }
        Ok(path)
    };
    Ok(Binaries { judge: found("judge")?, gateway: found("gateway")? })
}

/// Starts one part, detached; returns its pid.
fn start(layout: &Layout, part: &Part, bin: &Binaries, tokens: &Tokens) -> Result<u32> {
    let port = part.port.unwrap_or(0);
    if part.port.is_some() && probe::tcp(loopback(port)) {
        // Else another process would answer its health checks.
        bail!("something else already listens on {} (not this cluster's {})", loopback(port), part.name);
    }
    let launch = Launch { log: Some(layout.log(part)), new_session: true };
    match part.kind {
        Kind::Redis => Ok(Redis::start_with(&layout.data.join(part.name), port, &launch)?.detach()),
        Kind::Postgres => {
            Ok(Postgres::start_with(&layout.data.join(part.name), port, DATABASE, &launch)?.detach())
        }
        Kind::JudgeServer => {
            let mut cmd = process::command(&bin.judge, true);
            cmd.args(["server", "--listen", &loopback(port).to_string()])
                .env("AUTHN_TOKEN", &tokens.authn)
                .env("AUTHZ_TOKEN", &tokens.authz);
            spawn_judge(layout, part, cmd)
        }
        Kind::JudgeWorker => {
            let mut cmd = process::command(&bin.judge, true);
            cmd.args(["worker", "--name", part.name])
                .env("VERDICT_SANDBOX_RUN_DIR", layout.data.join("sandbox"));
            spawn_judge(layout, part, cmd)
        }
        Kind::Gateway => {
            let mut cmd = process::command(&bin.gateway, true);
            cmd.arg("--config").arg(layout.workspace.join(PRIVATE_GATEWAY_CONFIG)).env("NO_COLOR", "1");
            let (child, _) = process::spawn_logged(&mut cmd, &layout.log(part))?;
            Ok(child.id())
        }
    }
}

fn spawn_judge(layout: &Layout, part: &Part, mut cmd: Command) -> Result<u32> {
    cmd.env("DATABASE_URL", database_url(layout)?)
        .env("REDIS_URL", redis_url(layout)?)
        // Its output goes to a file: no terminal colours (tracing-subscriber honours NO_COLOR).
        .env("NO_COLOR", "1")
        .current_dir(&layout.workspace);
    // The child is not waited for: it lives on in its own session.
    let (child, _) = process::spawn_logged(&mut cmd, &layout.log(part))?;
    Ok(child.id())
}

/// A part that was started (or found running) and is not yet known healthy.
#[derive(Debug)]
struct Waiting<'a> {
    part: &'a Part,
    pid: u32,
    /// Where this run's output begins in the part's log.
    log_start: u64,
    started: Instant,
    warned: bool,
}

/// What a look at a part found.
#[derive(Debug, PartialEq, Eq)]
enum Health {
    Up,
    /// Alive but not answering yet; says what is missing.
    Pending(String),
    Down,
}

fn health(layout: &Layout, part: &Part, pid: u32) -> Health {
    if process::command_name(pid).as_deref() != Some(part.kind.program()) {
        return Health::Down;
    }
    let addr = loopback(part.port.unwrap_or(0));
    let redis_password = redis_password(layout);
    let redis_password = redis_password.as_deref().ok();
    match part.kind {
        Kind::Redis if probe::redis_ping(addr, redis_password) => Health::Up,
        Kind::Redis => Health::Pending("no PONG".into()),
        Kind::Postgres => match probe::postgres_ready(addr.port()) {
            Ok(true) => Health::Up,
            Ok(false) => Health::Pending("not accepting connections".into()),
            Err(error) => Health::Pending(format!("{error:#}")),
        },
        Kind::JudgeServer => match probe::http_status(addr, "/healthz", Duration::from_secs(2)) {
            Ok(200) => Health::Up,
            Ok(code) => Health::Pending(format!("GET /healthz: {code}")),
            Err(error) => Health::Pending(format!("GET /healthz: {error:#}")),
        },
        Kind::Gateway => {
            match probe::http_status(loopback(PRIVATE_GATEWAY_ADMIN), "/healthz", Duration::from_secs(2)) {
                Ok(200) if probe::tcp(addr) => Health::Up,
                Ok(code) => Health::Pending(format!("GET /healthz on its admin port: {code}")),
                Err(error) => Health::Pending(format!("GET /healthz on its admin port: {error:#}")),
            }
        }
        Kind::JudgeWorker => {
            let key = format!("judge:worker:{}", part.name);
            let redis = loopback(port_of(Kind::Redis));
            match probe::redis_command(redis, redis_password, &["EXISTS", &key], Duration::from_secs(1)) {
                Ok(Reply::Integer(1)) => Health::Up,
                _ => Health::Pending(format!("no heartbeat ({key} missing in Redis)")),
            }
        }
    }
}

/// Polls every waiting part until all are healthy; fails on the first that dies or times out.
fn wait_healthy(layout: &Layout, mut waiting: Vec<Waiting<'_>>) -> Result<()> {
    while !waiting.is_empty() {
        let mut still = Vec::with_capacity(waiting.len());
        for mut w in waiting {
            let log = layout.log(w.part);
            let failure = |message: String| {
                anyhow!(
                    "{message}; see {} (`cargo xtask logs {}`):\n{}",
                    layout.relative(&log).display(),
                    w.part.name,
                    process::tail(&log, w.log_start, 20)
                )
            };
            match health(layout, w.part, w.pid) {
                Health::Up => {}
                Health::Down => return Err(failure(format!("{} (pid {}) exited", w.part.name, w.pid))),
                Health::Pending(why) if w.part.kind == Kind::JudgeWorker => {
                    // A live worker without heartbeat is running; the heartbeat is a bonus.
                    if w.started.elapsed() < HEARTBEAT_GRACE {
                        still.push(w);
                    } else if !w.warned {
                        w.warned = true;
                        eprintln!("xtask: warning: {} (pid {}) is running but {why}", w.part.name, w.pid);
                    }
                }
                Health::Pending(why) => {
                    if w.started.elapsed() > START_TIMEOUT {
                        return Err(failure(format!(
                            "{} (pid {}) did not become healthy within {START_TIMEOUT:?} ({why})",
                            w.part.name, w.pid
                        )));
                    }
                    still.push(w);
                }
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Writes `.data/cluster.env`: what a client of the cluster needs, `KEY=VALUE` per line.
fn write_cluster_env(layout: &Layout, tokens: &Tokens) -> Result<PathBuf> {
    let servers = server_urls();
    let entries = [
        // Judge0 clients talk to the private gateway, which balances over the servers.
        ("JUDGE_URL", format!("http://127.0.0.1:{}", port_of(Kind::Gateway))),
        ("JUDGE_SERVER_URLS", servers.join(",")),
        ("AUTHN_TOKEN", tokens.authn.clone()),
        ("AUTHZ_TOKEN", tokens.authz.clone()),
        ("DATABASE_URL", database_url(layout)?),
        ("REDIS_URL", redis_url(layout)?),
        ("GATEWAY_ADMIN_URL", format!("http://127.0.0.1:{PRIVATE_GATEWAY_ADMIN}")),
    ];
    let text: String = entries.iter().map(|(key, value)| format!("{key}={value}\n")).collect();
    let file = layout.data.join("cluster.env");
    // Whole or not at all: readers may be polling for it. Private: it holds the passwords.
    let tmp = layout.data.join("cluster.env.tmp");
    let _ = fs::remove_file(&tmp);
    let mut out = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    out.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, &file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(file)
}

/// `cargo xtask stop-all`: parts in reverse start order, each kind together (workers before
/// servers before the stores they use).
pub(crate) fn stop_all() -> Result<()> {
    let layout = Layout::find()?;
    let mut rest = PARTS;
    while let Some(last) = rest.last() {
        let split = rest.iter().rposition(|p| p.kind != last.kind).map_or(0, |i| i + 1);
        let (before, group) = rest.split_at(split);
        rest = before;
        let running: Vec<(&Part, u32)> =
            group.iter().rev().filter_map(|part| layout.running(part).map(|pid| (part, pid))).collect();
        for (part, pid) in &running {
            process::signal(*pid, part.kind.stop_signal())?;
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for (part, pid) in &running {
            let mut how = "stopped".to_owned();
            if !process::wait_gone(*pid, deadline.saturating_duration_since(Instant::now())) {
                process::signal(*pid, Signal::Kill)?;
                if !process::wait_gone(*pid, Duration::from_secs(5)) {
                    bail!("{} (pid {pid}) survived SIGKILL", part.name);
                }
                how = format!("killed after {STOP_TIMEOUT:?}");
            }
            println!("{:<16} {how} (pid {pid})", part.name);
        }
        for part in group {
            let file = layout.pid_file(part);
            if file.exists() {
                fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
            }
        }
    }
    Ok(())
}

/// `cargo xtask status`.
pub(crate) fn status() -> Result<()> {
    let layout = Layout::find()?;
    print_status(&layout);
    Ok(())
}

fn print_status(layout: &Layout) {
    println!("{:<16} {:<24} {:>8} {:>6}", "part", "state", "pid", "port");
    for part in PARTS {
        let pid = layout.running(part);
        let state = match pid.map(|pid| health(layout, part, pid)) {
            None | Some(Health::Down) => "down".to_owned(),
            Some(Health::Up) => "up".to_owned(),
            Some(Health::Pending(_)) if part.kind == Kind::JudgeWorker => "up (no heartbeat)".to_owned(),
            Some(Health::Pending(_)) => "unhealthy".to_owned(),
        };
        let pid = pid.map_or_else(|| "-".to_owned(), |pid| pid.to_string());
        let port = part.port.map_or_else(|| "-".to_owned(), |port| port.to_string());
        println!("{:<16} {state:<24} {pid:>8} {port:>6}", part.name);
    }
}

/// `cargo xtask logs <part>`: the last `lines` lines of the part's log, then, with `follow`,
/// what it writes next until interrupted.
pub(crate) fn logs(name: &str, lines: usize, follow: bool) -> Result<()> {
    let layout = Layout::find()?;
    let Some(part) = PARTS.iter().find(|p| p.name == name) else {
        let names: Vec<&str> = PARTS.iter().map(|p| p.name).collect();
        bail!("no part named {name:?}; the parts are {}", names.join(", "));
    };
    let log = layout.log(part);
    if !log.exists() && !follow {
        bail!("{} has no log yet ({})", part.name, log.display());
    }
    let text = process::tail(&log, 0, lines);
    if !text.is_empty() {
        println!("{text}");
    }
    if !follow {
        return Ok(());
    }
    let mut offset = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut stdout = std::io::stdout();
    loop {
        thread::sleep(Duration::from_millis(200));
        let Ok(mut file) = fs::File::open(&log) else { continue };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < offset {
            // Truncated or replaced: start again from its beginning.
            offset = 0;
        }
        if len == offset {
            continue;
        }
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_end(&mut bytes)?;
        offset += bytes.len() as u64;
        stdout.write_all(&bytes)?;
        stdout.flush()?;
    }
}
