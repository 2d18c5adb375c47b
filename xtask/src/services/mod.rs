//! Real local services for tests and the dev cluster: Redis and PostgreSQL started from the
//! machine's own binaries as plain processes on 127.0.0.1, with their files under a directory
//! the caller gives. No containers, no mocks.
//!
//! Each handle owns its process: dropping a [`Redis`] kills it, dropping a [`Postgres`] stops it
//! (fast shutdown). [`Redis::detach`] and [`Postgres::detach`] leave the process running, for
//! `cargo xtask start-all`.
//!
//! Both require a password, even on loopback: a program that reaches the machine's loopback
//! (a sandbox escape, a misconfigured network box) must not get a database for free. Each
//! service's directory keeps its own random password in `<dir>/password` (mode 0600), made at
//! the first start and used by every later one, and the handles' URLs carry it.

mod postgres;
pub mod probe;
mod redis;

use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

pub use postgres::Postgres;
pub use redis::Redis;

use crate::process::{self, Signal};

/// How long a service may take to answer after its start (loading a large AOF or replaying
/// WAL after a crash takes a while).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a polite stop may take before `SIGKILL`.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How a service's process is launched. The default suits tests: output in the service's
/// directory, the process in the caller's session (a Ctrl-C on the test run reaches it too).
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The file the server's stdout and stderr are appended to; `None` for `<dir>/redis.log`
    /// or `<dir>/postgres.log`.
    pub log: Option<PathBuf>,
    /// Run the server in a session of its own, so that it survives the caller and its terminal
    /// (for `cargo xtask start-all`, with `detach`).
    pub new_session: bool,
}

/// 32 hex characters from the kernel's random source: tokens and passwords that need no
/// quoting in URLs, configuration files or SQL.
pub fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(bytes.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    }))
}

/// Where the password of the service whose files are in `dir` is kept.
pub fn password_file(dir: &Path) -> PathBuf {
    dir.join("password")
}

/// The password of the service whose files are in `dir`, as its first start stored it.
pub fn read_password(dir: &Path) -> Result<String> {
    let file = password_file(dir);
    let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let password = text.trim();
    if password.is_empty() || !password.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bail!("{} holds no usable password (letters and digits only)", file.display());
    }
    Ok(password.to_owned())
}

/// The password of the service whose files are in `dir`, made (random, mode 0600) when there
/// is none yet; the flag says it was just made.
fn password(dir: &Path) -> Result<(String, bool)> {
    if password_file(dir).exists() {
        return Ok((read_password(dir)?, false));
    }
    let password = random_hex()?;
    write_private(&password_file(dir), &format!("{password}\n"))?;
    Ok((password, true))
}

/// Writes `text` to `file`, readable by its owner only, whole or not at all.
fn write_private(file: &Path, text: &str) -> Result<()> {
    let tmp = file.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut out = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    out.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until a TCP connect to addr succeeds, or errors after `timeout`.
pub fn wait_for_tcp(addr: SocketAddr, timeout: Duration) -> Result<()> {
    let connected = process::poll_until(timeout, || Ok(probe::tcp(addr)))?;
    if !connected {
        bail!("nothing accepted connections on {addr} within {timeout:?}");
    }
    Ok(())
}

/// `127.0.0.1:port`.
fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Fails when something already listens on `addr`: a server that cannot bind would otherwise
/// look ready for a moment, answering through the other one.
fn ensure_port_free(what: &str, addr: SocketAddr) -> Result<()> {
    if probe::tcp(addr) {
        return Err(anyhow::Error::new(PortBusy)
            .context(format!("cannot start {what}: something already listens on {addr}")));
    }
    Ok(())
}

/// The cause of a start that failed because its port was taken: when we picked the port
/// ([`free_port`]), someone may have taken it since, and another pick will do.
#[derive(Debug)]
struct PortBusy;

impl std::fmt::Display for PortBusy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("port in use")
    }
}

impl std::error::Error for PortBusy {}

/// How many ports a start tries when it picks them itself.
const PORT_PICKS: usize = 3;

/// Runs `start` on `port`, or, for port 0, on a free port, picking again when the one picked
/// turns out taken (tests that start servers in parallel race for ports).
fn on_port<T>(port: u16, mut start: impl FnMut(u16) -> Result<T>) -> Result<T> {
    if port != 0 {
        return start(port);
    }
    let mut picks = 1;
    loop {
        match start(free_port()?) {
            Err(error) if picks < PORT_PICKS && error.downcast_ref::<PortBusy>().is_some() => picks += 1,
            result => return result,
        }
    }
}

/// `path` made absolute against the current directory, so that a server started elsewhere
/// (its own working directory, another user) finds it.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot make {} absolute", path.display()))
}

/// A program at the first of `candidates` that exists, or on `PATH` by its file name.
fn find_program(name: &str, candidates: &[&str], install: &str) -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    on_path.chain(candidates.iter().map(PathBuf::from)).find(|p| p.is_file()).ok_or_else(|| {
        anyhow!(
            "{name} is not installed (not on PATH nor in {}): install the Debian package \
                 {install}, or run `cargo xtask setup` as root",
            candidates.join(", ")
        )
    })
}

/// A server process this crate started and still owns, with the log that explains its end.
#[derive(Debug)]
struct Server {
    /// What it is, for messages: "redis-server", "postgres".
    what: &'static str,
    child: Child,
    log: PathBuf,
    /// The log's length when this process started: what it wrote comes after.
    log_start: u64,
}

impl Server {
    fn spawn(what: &'static str, cmd: &mut Command, log: &Path) -> Result<Server> {
        let (child, log_start) = process::spawn_logged(cmd, log)?;
        Ok(Server { what, child, log: log.to_owned(), log_start })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if the process has exited.
    fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(self.failure(&format!("{} exited ({status})", self.what))),
        }
    }

    /// `message`, pointing at the log and quoting what this run wrote at its end.
    fn failure(&self, message: &str) -> anyhow::Error {
        let tail = process::tail(&self.log, self.log_start, 20);
        let error = anyhow!("{message}; see {}:\n{tail}", self.log.display());
        // Both Redis and PostgreSQL say so when they cannot bind.
        if tail.contains("Address already in use") { error.context(PortBusy) } else { error }
    }

    /// Polls `ready` until it says true, failing early if the process exits and after
    /// `START_TIMEOUT`.
    fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) -> Result<()> {
        let started = Instant::now();
        let ok = process::poll_until(START_TIMEOUT, || {
            self.check_running()?;
            Ok(ready())
        })?;
        if !ok {
            let message = format!("{} did not become ready within {:?}", self.what, started.elapsed());
            return Err(self.failure(&message));
        }
        Ok(())
    }

    /// Sends `first`, waits up to `STOP_TIMEOUT`, then kills; reaps the process.
    fn stop(mut self, first: Signal) -> Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        process::signal(self.pid(), first)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(process::POLL);
        }
        eprintln!("{} (pid {}) outlived {first} by {STOP_TIMEOUT:?}; killing it", self.what, self.pid());
        self.kill()
    }

    /// `SIGKILL`, then reaps the process.
    fn kill(mut self) -> Result<ExitStatus> {
        // `Child::kill` only errors when the process was already reaped, which `wait` reports.
        let _ = self.child.kill();
        Ok(self.child.wait()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picked_port_that_turns_out_busy_is_picked_again() {
        let mut tries = Vec::new();
        let port = on_port(0, |port| {
            tries.push(port);
            if tries.len() < PORT_PICKS {
                Err(anyhow::Error::new(PortBusy).context("taken"))
            } else {
                Ok(port)
            }
        })
        .unwrap();
        assert_eq!(tries.len(), PORT_PICKS);
        assert_eq!(tries.last(), Some(&port));

        let mut calls = 0;
        let busy = on_port(4321, |_| -> Result<()> {
            calls += 1;
            Err(anyhow::Error::new(PortBusy))
        });
        assert!(busy.is_err());
        assert_eq!(calls, 1, "a port the caller chose is not replaced");
    }
}
