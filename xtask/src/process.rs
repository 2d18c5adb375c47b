//! Processes by pid, without `unsafe`: liveness from `/proc`, signals through the `kill`
//! command, waiting by polling, and spawning long-running programs with their output in a file.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How often the waits of this crate look again.
pub(crate) const POLL: Duration = Duration::from_millis(25);

/// A signal sent by [`signal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGTERM`: the usual polite stop (Redis saves and exits; our servers drain).
    Term,
    /// `SIGINT`: PostgreSQL's fast shutdown (roll back sessions, checkpoint, exit).
    Int,
    /// `SIGKILL`.
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Int => "INT",
            Signal::Kill => "KILL",
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

/// Whether `pid` is a live process: it is in `/proc` and is not a zombie. A zombie counts as
/// gone because nobody may ever reap it (a container's pid 1 often does not).
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].trim_start().chars().next());
    !matches!(state, Some('Z' | 'X' | 'x') | None)
}

/// The command name of a live process (`/proc/<pid>/comm`: the executable's file name, cut
/// to 15 bytes), to tell our process from an unrelated one that reused its pid.
pub fn command_name(pid: u32) -> Option<String> {
    if !alive(pid) {
        return None;
    }
    fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim_end().to_owned())
}

/// Sends `signal` to `pid` with the `kill` command. A process that is already gone is not an
/// error.
pub fn signal(pid: u32, signal: Signal) -> Result<()> {
    let kill = if Path::new("/bin/kill").exists() { "/bin/kill" } else { "kill" };
    let out = Command::new(kill)
        .args(["-s", signal.name(), &pid.to_string()])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {kill}"))?;
    if !out.status.success() && alive(pid) {
        bail!("kill -s {} {pid} failed: {}", signal.name(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Polls `done` every few milliseconds until it says true (`Ok(true)`) or `timeout` passes
/// (`Ok(false)`); an error from `done` ends the wait at once.
pub fn poll_until(timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        thread::sleep(POLL);
    }
}

/// Waits until `pid` is gone; false if it still lives after `timeout`. For a process that is
/// not our child (our children are reaped with [`Child::wait`]).
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    poll_until(timeout, || Ok(!alive(pid))).unwrap_or(false)
}

/// Stops `pid`: sends `first`, waits up to `grace`, then sends `SIGKILL` and waits a little
/// more. Returns whether the process needed the `SIGKILL`.
pub fn terminate(pid: u32, first: Signal, grace: Duration) -> Result<bool> {
    if !alive(pid) {
        return Ok(false);
    }
    signal(pid, first)?;
    if wait_gone(pid, grace) {
        return Ok(false);
    }
    signal(pid, Signal::Kill)?;
    if !wait_gone(pid, Duration::from_secs(5)) {
        bail!("process {pid} survived SIGKILL");
    }
    Ok(true)
}

/// A command for `program`; with `new_session`, one that runs in a session of its own (through
/// `setsid`, which execs in place, so the pid stays the program's), so it outlives the caller
/// and the caller's terminal.
pub fn command(program: &Path, new_session: bool) -> Command {
    if !new_session {
        return Command::new(program);
    }
    match ["/usr/bin/setsid", "/bin/setsid"].into_iter().find(|p| Path::new(p).exists()) {
        Some(setsid) => {
            let mut cmd = Command::new(setsid);
            cmd.arg(program);
            cmd
        }
        None => {
            // Without setsid a process group of its own at least keeps the terminal's Ctrl-C away.
            let mut cmd = Command::new(program);
            cmd.process_group(0);
            cmd
        }
    }
}

/// Spawns `cmd` with stdin from `/dev/null` and stdout and stderr appended to `log` (created,
/// with its directory, if missing). Returns the child and the log's length before the spawn, so
/// that [`tail`] can show only what this run wrote.
pub fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<(Child, u64)> {
    let out = open_log(log)?;
    let start = out.metadata().map(|m| m.len()).unwrap_or(0);
    let err = out.try_clone()?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    Ok((child, start))
}

/// Opens `log` for appending, creating it and its directory.
pub fn open_log(log: &Path) -> Result<File> {
    if let Some(parent) = log.parent() {
        fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))
}

/// The last `lines` lines of `path` from byte `from` on (lossy UTF-8; empty when unreadable).
pub fn tail(path: &Path, from: u64, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    // Enough for that many lines of a log, without reading a huge log whole.
    let window = u64::try_from(lines).unwrap_or(u64::MAX).saturating_mul(2048).max(64 * 1024);
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = from.max(len.saturating_sub(window));
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The effective user id of this process (from `/proc/self/status`).
pub fn effective_uid() -> Result<u32> {
    let status = fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .context("no effective uid in /proc/self/status")
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    effective_uid().is_ok_and(|uid| uid == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_named() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(command_name(me).is_some());
        assert!(!alive(u32::MAX));
    }

    #[test]
    fn a_reaped_child_is_gone_and_an_unreaped_one_is_a_zombie() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        assert!(wait_gone(pid, Duration::from_secs(5)), "the exited child is a zombie, not alive");
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn terminate_stops_a_sleeper() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(alive(pid));
        assert!(!terminate(pid, Signal::Term, Duration::from_secs(5)).unwrap());
        child.wait().unwrap();
    }

    #[test]
    fn tail_shows_the_last_lines_after_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        fs::write(&log, "old\na\nb\nc\n").unwrap();
        assert_eq!(tail(&log, 0, 2), "b\nc");
        assert_eq!(tail(&log, 4, 10), "a\nb\nc");
        assert_eq!(tail(&dir.path().join("none"), 0, 2), "");
    }
}
