//! The sandbox's error type.

use std::io;

use crate::config::BindError;
use crate::limits::LimitError;

/// Why the sandbox could not carry out a request. A program that misbehaves is not an error:
/// that is a [`RunResult`](crate::RunResult) with its status.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The sandbox maps user ids and manages cgroups, which needs root.
    #[error("the sandbox must run as root (it maps user ids and manages cgroups)")]
    NotRoot,
    /// The limits are unusable.
    #[error(transparent)]
    Limits(#[from] LimitError),
    /// The command cannot be passed to a program (NUL bytes, too many arguments, ...).
    #[error("invalid command: {0}")]
    Command(String),
    /// A bind is unusable.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A host operation failed.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The system error.
        source: io::Error,
    },
    /// The box could not be built.
    #[error("box setup failed: cannot {step}: {source}")]
    Setup {
        /// The setup step that failed.
        step: String,
        /// The system error.
        source: io::Error,
    },
    /// The box's keeper process stopped answering; the box is discarded.
    #[error("the box's keeper process stopped responding: {0}")]
    KeeperLost(&'static str),
}
