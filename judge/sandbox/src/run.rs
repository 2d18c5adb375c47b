//! One run, seen from the host: send the request, capture output into bounded buffers, enforce
//! CPU and wall time, and turn what the keeper and the cgroup measured into a verdict.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::keeper::proto::{self, Done, HEADER_BYTES, MAX_STRINGS, REQUEST_MAX, Rlimits, RunHeader};
use crate::keeper::{INNER_USER, Keeper};
use crate::outcome::{Enforcement, RunResult, Status};
use crate::{Limits, SandboxError, sys};

/// The `PATH` a [`RunSpec`] starts with.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How often CPU time is checked while a program runs.
const CPU_TICK: Duration = Duration::from_millis(10);
/// How long the keeper may take to report after being told to kill.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// Where a program's stdin comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Stdin {
    /// `/dev/null`.
    #[default]
    Null,
    /// These bytes (from an in-memory file, so a program can seek and never blocks).
    Bytes(Vec<u8>),
    /// A host file, opened by the host read-only.
    File(PathBuf),
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One command to run in a box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// Program to execute: a path inside the box, or a name looked up in the `PATH` of `env`.
    pub program: String,
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// The program's entire environment; nothing of the host's is added.
    pub env: Vec<(String, String)>,
    /// Standard input.
    pub stdin: Stdin,
    /// Limits of the run.
    pub limits: Limits,
    /// Send stderr into the stdout buffer (Judge0's `redirect_stderr_to_stdout`).
    pub stderr_to_stdout: bool,
}

impl RunSpec {
    /// A command with default limits, no stdin, and an environment of just `PATH`.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: vec![("PATH".to_owned(), DEFAULT_PATH.to_owned())],
            stdin: Stdin::Null,
            limits: Limits::default(),
            stderr_to_stdout: false,
        }
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets (or replaces) one environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets stdin.
    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// Encodes the request the keeper receives.
    fn encode(&self, rlimits: Rlimits) -> Result<Vec<u8>, SandboxError> {
        let bad = |why: String| Err(SandboxError::Command(why));
        if self.program.is_empty() {
            return bad("the program name is empty".into());
        }
        if self.args.len() + 1 > MAX_STRINGS || self.env.len() > MAX_STRINGS {
            return bad(format!(
                "at most {} arguments and {MAX_STRINGS} environment variables",
                MAX_STRINGS - 1
            ));
        }
        let header = RunHeader { rlimits, argc: self.args.len() as u64 + 1, envc: self.env.len() as u64 };
        let mut buf = vec![0u8; HEADER_BYTES];
        proto::write_words(&mut buf, proto::RUN, &header.to_words());
        let strings = std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str));
        for s in strings {
            if s.contains('\0') {
                return bad(format!("argument {s:?} contains a NUL byte"));
            }
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return bad(format!("invalid environment variable name or value: {k:?}"));
            }
            buf.extend_from_slice(k.as_bytes());
            buf.push(b'=');
            buf.extend_from_slice(v.as_bytes());
            buf.push(0);
        }
        if buf.len() > REQUEST_MAX {
            return bad(format!("arguments and environment exceed {} KiB", REQUEST_MAX / 1024));
        }
        Ok(buf)
    }
}

/// Why the host stopped a run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Wall,
    Cpu,
    Output,
    Cancelled,
}

/// A bounded buffer filled from one pipe.
struct Capture {
    stream: Stream,
    pipe: Option<OwnedFd>,
    data: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Capture {
    fn new(stream: Stream, pipe: Option<OwnedFd>, limit: usize) -> io::Result<Self> {
        if let Some(p) = &pipe {
            sys::set_nonblocking(p.as_fd(), true)?;
        }
        Ok(Self { stream, pipe, data: Vec::new(), limit, truncated: false })
    }

    /// Reads what is available; the excess over the limit is read and dropped so the program
    /// never blocks on a full pipe.
    fn pump(&mut self, observer: &mut dyn FnMut(Stream, &[u8])) -> io::Result<()> {
        let Some(pipe) = &self.pipe else {
            return Ok(());
        };
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match sys::read(pipe.as_fd(), &mut chunk) {
                Ok(0) => {
                    self.pipe = None;
                    return Ok(());
                }
                Ok(n) => {
                    let keep = n.min(self.limit - self.data.len());
                    if keep > 0 {
                        self.data.extend_from_slice(&chunk[..keep]);
                        observer(self.stream, &chunk[..keep]);
                    }
                    if keep < n {
                        self.truncated = true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> SandboxError {
    move |source| SandboxError::Io { what: what.to_owned(), source }
}

/// The rlimits the keeper applies for `limits`.
fn rlimits(limits: &Limits, with_cgroup: bool) -> Rlimits {
    let kib = |k: u64| k.saturating_mul(1024);
    // With a cgroup the host enforces CPU time precisely and the rlimit is only a backstop.
    let precise = with_cgroup && !limits.cpu_per_process;
    let cpu = limits.cpu_kill_after().as_secs_f64().ceil() as u64 + u64::from(precise);
    let per_process_memory = !with_cgroup || limits.memory_per_process;
    Rlimits {
        cpu_secs: cpu,
        address_space: if per_process_memory { kib(limits.memory_kb) } else { u64::MAX },
        stack: if limits.stack_kb == 0 { u64::MAX } else { kib(limits.stack_kb) },
        file_size: kib(limits.file_size_kb),
        open_files: u64::from(limits.open_files),
        processes: u64::from(limits.processes),
    }
}

/// Runs `spec` in `keeper`'s box.
pub(crate) fn execute(
    keeper: &mut Keeper,
    spec: &RunSpec,
    enforcement: &Enforcement,
    observer: &mut dyn FnMut(Stream, &[u8]),
    cancel: Option<&AtomicBool>,
) -> Result<RunResult, SandboxError> {
    let limits = &spec.limits;
    limits.validate()?;
    let request = spec.encode(rlimits(limits, keeper.cgroup.is_some()))?;
    let stdin: OwnedFd = match &spec.stdin {
        Stdin::Null => File::open("/dev/null").map_err(io_err("open /dev/null"))?.into(),
        Stdin::Bytes(bytes) => sys::memfd_with(bytes).map_err(io_err("store stdin"))?,
        Stdin::File(path) => File::open(path)
            .map_err(|source| SandboxError::Io {
                what: format!("open stdin file {}", path.display()),
                source,
            })?
            .into(),
    };
    let (out_r, out_w) = sys::pipe().map_err(io_err("create an output pipe"))?;
    let (err_r, err_w) = if spec.stderr_to_stdout {
        (None, None)
    } else {
        let (r, w) = sys::pipe().map_err(io_err("create an output pipe"))?;
        (Some(r), Some(w))
    };
    let limit = usize::try_from(limits.output_kb.saturating_mul(1024)).unwrap_or(usize::MAX);
    let mut stdout = Capture::new(Stream::Stdout, Some(out_r), limit).map_err(io_err("set up output"))?;
    let mut stderr = Capture::new(Stream::Stderr, err_r, limit).map_err(io_err("set up output"))?;

    // What earlier runs wrote into /box is charged to the box's cgroup; rewritten by the host
    // it is not, and then the program's limit holds whatever the box holds.
    keeper.reown_box().map_err(io_err("take the box's files off its memory account"))?;
    let keeper_pid = keeper.pid();
    let baseline = match &mut keeper.cgroup {
        Some(cg) => Some(
            cg.prepare_run(
                limits.memory_kb.saturating_mul(1024),
                limits.processes.saturating_add(1),
                keeper_pid,
            )
            .map_err(io_err("set the cgroup's limits"))?,
        ),
        None => None,
    };
    let err_fd = err_w.as_ref().unwrap_or(&out_w).as_raw_fd();
    keeper.broken = true;
    keeper
        .send_run(&request, [stdin.as_raw_fd(), out_w.as_raw_fd(), err_fd])
        .map_err(io_err("send the run"))?;
    // Only the program may hold the write ends now, so end of file means it is gone.
    drop((stdin, out_w, err_w));

    let start = Instant::now();
    let mut stop: Option<(Stop, Instant)> = None;
    let done = loop {
        let now = Instant::now();
        if stop.is_none() {
            let over_cpu = match (&keeper.cgroup, &baseline) {
                (Some(cg), Some(base)) if !limits.cpu_per_process => {
                    cg.cpu_since(base).map_err(io_err("read CPU usage"))? > limits.cpu_kill_after()
                }
                _ => false,
            };
            let reason = if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                Some(Stop::Cancelled)
            } else if over_cpu {
                Some(Stop::Cpu)
            } else if now.duration_since(start) >= limits.wall_time {
                Some(Stop::Wall)
            } else if stdout.truncated || stderr.truncated {
                Some(Stop::Output)
            } else {
                None
            };
            if let Some(reason) = reason {
                keeper.send_kill().map_err(io_err("stop the run"))?;
                stop = Some((reason, now));
            }
        }
        let timeout = match stop {
            Some((_, at)) => {
                if now.duration_since(at) > KILL_GRACE {
                    return Err(SandboxError::KeeperLost("no report after the kill request"));
                }
                KILL_GRACE
            }
            None => {
                let wall_left = limits.wall_time.saturating_sub(now.duration_since(start));
                if baseline.is_some() { wall_left.min(CPU_TICK) } else { wall_left }
            }
        };
        let mut fds = vec![libc::pollfd { fd: keeper.sock().as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        for capture in [&stdout, &stderr] {
            if let Some(p) = &capture.pipe {
                fds.push(libc::pollfd { fd: p.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            }
        }
        sys::poll(&mut fds, Some(timeout)).map_err(io_err("wait for the run"))?;
        stdout.pump(observer).map_err(io_err("read stdout"))?;
        stderr.pump(observer).map_err(io_err("read stderr"))?;
        if fds[0].revents != 0 {
            break keeper.read_done().map_err(|_| SandboxError::KeeperLost("no report of the run"))?;
        }
    };
    // Nothing a run leaves in /tmp reaches the next one.
    keeper.wipe_tmp().map_err(io_err("empty /tmp"))?;
    keeper.broken = false;

    // Every process of the run is gone, so the pipes end soon; bounded anyway.
    let drain_until = Instant::now() + Duration::from_secs(2);
    while (stdout.pipe.is_some() || stderr.pipe.is_some()) && Instant::now() < drain_until {
        let mut fds: Vec<libc::pollfd> = [&stdout, &stderr]
            .iter()
            .filter_map(|c| c.pipe.as_ref())
            .map(|p| libc::pollfd { fd: p.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        sys::poll(&mut fds, Some(Duration::from_millis(100))).map_err(io_err("drain output"))?;
        stdout.pump(observer).map_err(io_err("read stdout"))?;
        stderr.pump(observer).map_err(io_err("read stderr"))?;
    }
    if stop.is_none() && (stdout.truncated || stderr.truncated) {
        stop = Some((Stop::Output, Instant::now()));
    }

    let usage = match (&keeper.cgroup, &baseline) {
        (Some(cg), Some(base)) => Some(cg.finish(base).map_err(io_err("read the cgroup's counters"))?),
        _ => None,
    };
    Ok(verdict(spec, &done, stop.map(|(s, _)| s), usage, stdout, stderr, enforcement))
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "signal",
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Turns measurements into the result, most specific reason first.
fn verdict(
    spec: &RunSpec,
    done: &Done,
    stop: Option<Stop>,
    usage: Option<crate::cgroup::Usage>,
    stdout: Capture,
    stderr: Capture,
    enforcement: &Enforcement,
) -> RunResult {
    let limits = &spec.limits;
    let cpu = Duration::from_micros(done.cpu_us);
    let wall = Duration::from_nanos(done.wall_ns);
    let status_word = done.wait_status;
    let signal = libc::WIFSIGNALED(status_word).then(|| libc::WTERMSIG(status_word));
    let exit_code = libc::WIFEXITED(status_word).then(|| libc::WEXITSTATUS(status_word));
    let oom = usage.is_some_and(|u| u.oom_kills > 0);
    // The cgroup's growth over the run's baseline counts every process; for a tiny program it
    // can stay within the pages the cgroup had already charged, so the largest process's peak
    // RSS is the floor.
    let memory_kb = match usage {
        Some(u) => (u.peak_bytes / 1024).max(done.max_rss_kb),
        None => done.max_rss_kb,
    };
    let (status, mut message) = if done.failed_step != 0 {
        let err = io::Error::from_raw_os_error(done.errno);
        let what = match done.failed_step {
            proto::step::EXEC => format!("execute `{}`", spec.program),
            step => proto::step::describe(step).to_owned(),
        };
        (Status::InternalError, format!("Could not {what}: {err}."))
    } else if stop == Some(Stop::Cancelled) {
        (Status::Cancelled, "Cancelled.".to_owned())
    } else if stop == Some(Stop::Wall) && cpu <= limits.cpu_time {
        (
            Status::WallTimeLimit,
            format!("Wall time limit exceeded: ran {}, limit {}.", secs(wall), secs(limits.wall_time)),
        )
    } else if (cpu > limits.cpu_time && !limits.cpu_per_process)
        || stop == Some(Stop::Cpu)
        || signal == Some(libc::SIGXCPU)
    {
        (
            Status::TimeLimit,
            format!("Time limit exceeded: used {} of CPU time, limit {}.", secs(cpu), secs(limits.cpu_time)),
        )
    } else if oom {
        (Status::MemoryLimit, format!("Memory limit exceeded: the limit is {} KiB.", limits.memory_kb))
    } else if stop == Some(Stop::Output) {
        let which = if stdout.truncated { "stdout" } else { "stderr" };
        (Status::OutputLimit, format!("Output limit exceeded: {which} went over {} KiB.", limits.output_kb))
    } else if let Some(sig) = signal {
        let mut m = format!("Killed by signal {sig} ({}).", signal_name(sig));
        if sig == libc::SIGXFSZ {
            m.push_str(&format!(" File size limit exceeded: the limit is {} KiB.", limits.file_size_kb));
        }
        (Status::Signalled, m)
    } else if let Some(code) = exit_code.filter(|&c| c != 0) {
        (Status::NonZeroExit, format!("Exited with code {code}."))
    } else {
        (Status::Ok, "Exited with code 0.".to_owned())
    };
    if usage.is_some_and(|u| u.pids_max_hits > 0) {
        message.push_str(&format!(" The process limit ({}) was reached.", limits.processes));
    }
    debug_assert_eq!(INNER_USER, 1000);
    RunResult {
        status,
        exit_code,
        signal,
        cpu_time: cpu,
        wall_time: wall,
        memory_kb,
        stdout_truncated: stdout.truncated,
        stderr_truncated: stderr.truncated,
        stdout: stdout.data,
        stderr: stderr.data,
        message,
        enforcement: enforcement.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_reject_nul_bytes_and_bad_names() {
        let r = Rlimits::default();
        assert!(RunSpec::new("a\0b").encode(r).is_err());
        assert!(RunSpec::new("").encode(r).is_err());
        assert!(RunSpec::new("x").env("A=B", "1").encode(r).is_err());
        assert!(RunSpec::new("x").args(["y"]).env("A", "1").encode(r).is_ok());
        let many = RunSpec::new("x").args(vec!["y"; MAX_STRINGS]);
        assert!(many.encode(r).is_err());
    }

    #[test]
    fn cpu_rlimit_is_a_backstop_with_a_cgroup() {
        let limits = Limits {
            cpu_time: Duration::from_millis(1500),
            extra_time: Duration::from_millis(200),
            ..Limits::default()
        };
        assert_eq!(rlimits(&limits, false).cpu_secs, 2);
        assert_eq!(rlimits(&limits, true).cpu_secs, 3);
        assert_eq!(rlimits(&limits, true).address_space, u64::MAX);
        assert_eq!(rlimits(&limits, false).address_space, limits.memory_kb * 1024);
    }
}
