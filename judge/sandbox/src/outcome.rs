//! What a run produced: its verdict, measurements and captured output.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a run ended, most specific reason first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The program exited with code 0 within every limit.
    Ok,
    /// CPU time went over the limit.
    TimeLimit,
    /// Real time went over the limit (the program slept or blocked).
    WallTimeLimit,
    /// The memory limit was hit and the kernel killed a process of the run.
    MemoryLimit,
    /// The program was killed by a signal (see `signal`).
    Signalled,
    /// The program exited with a non-zero code (see `exit_code`).
    NonZeroExit,
    /// stdout or stderr went over the output limit; the run was stopped.
    OutputLimit,
    /// The sandbox could not run the command (see `message`); not the program's fault.
    InternalError,
    /// The caller stopped the run.
    Cancelled,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Status::Ok => "ok",
            Status::TimeLimit => "time limit exceeded",
            Status::WallTimeLimit => "wall time limit exceeded",
            Status::MemoryLimit => "memory limit exceeded",
            Status::Signalled => "killed by a signal",
            Status::NonZeroExit => "non-zero exit code",
            Status::OutputLimit => "output limit exceeded",
            Status::InternalError => "internal error",
            Status::Cancelled => "cancelled",
        };
        f.write_str(text)
    }
}

/// Which mechanism enforced memory and process limits in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "reason")]
pub enum Enforcement {
    /// A cgroup v1 hierarchy (memory, pids, cpuacct).
    CgroupV1,
    /// The unified cgroup v2 hierarchy.
    CgroupV2,
    /// No cgroup could be used; rlimits only (address space, process count per user). The
    /// string says why.
    Rlimits(String),
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// The verdict.
    pub status: Status,
    /// Exit code, when the program exited normally.
    pub exit_code: Option<i32>,
    /// Signal number, when the program was killed by a signal.
    pub signal: Option<i32>,
    /// CPU time (user + system) of every process of the run.
    #[serde(with = "secs")]
    pub cpu_time: Duration,
    /// Real time from start to the end of the main process.
    #[serde(with = "secs")]
    pub wall_time: Duration,
    /// Peak memory in KiB (cgroup peak, or the largest process's peak RSS without a cgroup).
    pub memory_kb: u64,
    /// Captured stdout, at most the output limit.
    #[serde(with = "lossy")]
    pub stdout: Vec<u8>,
    /// Captured stderr, at most the output limit.
    #[serde(with = "lossy")]
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the output limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the output limit.
    pub stderr_truncated: bool,
    /// A sentence for people: what happened, which limit, why it failed.
    pub message: String,
    /// Which mechanism enforced the limits.
    pub enforcement: Enforcement,
}

impl RunResult {
    /// A result for a run the sandbox could not carry out.
    pub fn internal_error(message: impl Into<String>, enforcement: Enforcement) -> Self {
        Self {
            status: Status::InternalError,
            exit_code: None,
            signal: None,
            cpu_time: Duration::ZERO,
            wall_time: Duration::ZERO,
            memory_kb: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            message: message.into(),
            enforcement,
        }
    }
}

/// Serde helpers: a `Duration` as fractional seconds with microsecond precision.
pub(crate) mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_micros() as f64) / 1e6)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// Serde helpers: bytes as a string, invalid UTF-8 replaced (the library keeps the bytes).
mod lossy {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(b))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}
