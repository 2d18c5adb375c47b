//! A native Linux sandbox for running untrusted programs.
//!
//! Each box is a set of fresh namespaces (user, mount, pid, ipc, uts, network, cgroup) around a
//! minimal read-only root with a private `/box`, `/tmp`, `/proc` and `/dev`. Programs run as an
//! unprivileged user with no capabilities, `no_new_privs`, a seccomp filter, rlimits, and a
//! cgroup (v1 or v2) that bounds and measures memory, processes and CPU time. A sandbox may
//! give its boxes outbound network access ([`NetworkConfig`]): to public addresses only, never
//! to the host or to other boxes.
//!
//! Boxes are kept by a *keeper*, the box's pid 1, and reused between runs, so a run costs about
//! as much as spawning the program directly. See `ARCHITECTURE.md` for the design.
//!
//! This crate knows nothing about HTTP, queues or Judge0.

pub mod addresses;
mod cgroup;
mod config;
mod error;
mod keeper;
mod limits;
mod net;
mod outcome;
mod rootfs;
mod run;
mod sandbox;
mod seccomp;
mod slots;
#[allow(unsafe_code)]
mod sys;
mod tree;

pub use config::{Bind, BindError, DEFAULT_NETWORK_POOL, NetworkConfig, SandboxConfig};
pub use error::SandboxError;
pub use limits::{LimitError, Limits};
pub use outcome::{Enforcement, RunResult, Status};
pub use run::{DEFAULT_PATH, RunSpec, Stdin, Stream};
pub use sandbox::{Lease, Sandbox};
