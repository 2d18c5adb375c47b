//! Resource limits of one run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits that apply to one run: to the program and every process or thread it starts.
///
/// Sizes are in KiB, as in Judge0 and isolate. The defaults are Judge0 CE's defaults where it
/// has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// CPU time (user + system, all processes) after which the run is a time limit.
    #[serde(with = "crate::outcome::secs")]
    pub cpu_time: Duration,
    /// Extra CPU time the run may use past `cpu_time` before it is killed, so that a run just
    /// over the limit is measured rather than cut off.
    #[serde(with = "crate::outcome::secs")]
    pub extra_time: Duration,
    /// Real time after which the run is killed (catches sleeping and blocked programs).
    #[serde(with = "crate::outcome::secs")]
    pub wall_time: Duration,
    /// Memory of all processes together (cgroup), or address space per process when no
    /// cgroup is available.
    pub memory_kb: u64,
    /// Processes and threads that may exist at once.
    pub processes: u32,
    /// Largest file the program may write (per file; writing past it raises SIGXFSZ).
    pub file_size_kb: u64,
    /// Open file descriptors per process.
    pub open_files: u32,
    /// Stack size per process; 0 means unlimited (memory still bounds it).
    pub stack_kb: u64,
    /// Bytes kept of each of stdout and stderr; more output ends the run as an output limit.
    pub output_kb: u64,
    /// Apply the CPU time limit to each process on its own (isolate's and Judge0's
    /// "per process and thread" mode) instead of to the run as a whole.
    #[serde(default)]
    pub cpu_per_process: bool,
    /// Apply the memory limit to each process's address space as well (isolate's and Judge0's
    /// "per process and thread" mode).
    #[serde(default)]
    pub memory_per_process: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_time: Duration::from_secs(5),
            extra_time: Duration::from_secs(1),
            wall_time: Duration::from_secs(10),
            memory_kb: 128_000,
            processes: 60,
            file_size_kb: 1024,
            open_files: 256,
            stack_kb: 64_000,
            output_kb: 8 * 1024,
            cpu_per_process: false,
            memory_per_process: false,
        }
    }
}

/// Why a set of limits cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid limit `{field}`: {reason}")]
pub struct LimitError {
    /// The limit's field name.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Limits {
    /// Checks that every limit is usable: nothing zero that must not be, nothing absurd.
    pub fn validate(&self) -> Result<(), LimitError> {
        let bad = |field, reason| Err(LimitError { field, reason });
        if self.cpu_time.is_zero() {
            return bad("cpu_time", "must be greater than zero");
        }
        if self.wall_time.is_zero() {
            return bad("wall_time", "must be greater than zero");
        }
        if self.cpu_time > Duration::from_secs(3600) || self.wall_time > Duration::from_secs(3600) {
            return bad("wall_time", "must be at most one hour");
        }
        if self.memory_kb < 1024 {
            return bad("memory_kb", "must be at least 1024 KiB");
        }
        if self.memory_kb > 1 << 40 {
            return bad("memory_kb", "is too large");
        }
        if self.processes == 0 || self.processes > 100_000 {
            return bad("processes", "must be between 1 and 100000");
        }
        if self.open_files < 4 || self.open_files > 1 << 20 {
            return bad("open_files", "must be between 4 and 1048576");
        }
        if self.output_kb > 1 << 20 {
            return bad("output_kb", "must be at most 1 GiB");
        }
        if self.file_size_kb > 1 << 40 || self.stack_kb > 1 << 40 {
            return bad("file_size_kb", "is too large");
        }
        Ok(())
    }

    /// CPU time after which the run is killed.
    pub fn cpu_kill_after(&self) -> Duration {
        self.cpu_time + self.extra_time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_cpu_is_not() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let zero = Limits { cpu_time: Duration::ZERO, ..Limits::default() };
        assert_eq!(zero.validate().unwrap_err().field, "cpu_time");
        let tiny = Limits { memory_kb: 10, ..Limits::default() };
        assert_eq!(tiny.validate().unwrap_err().field, "memory_kb");
    }
}
