//! Slots: host-wide numbers for concurrent boxes, each with its own host ids, cgroup and box.
//!
//! A slot is held through an exclusive `flock` on `<lock_dir>/<n>.lock`, so two sandboxes on one
//! host never share ids or cgroups, and a crashed worker's slots free themselves.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::sys;

/// A slot held by this process.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) id: u32,
    /// Host uid and gid of the keeper (uid 0 inside the box's user namespace).
    pub(crate) keeper_id: u32,
    /// Host uid and gid of programs (uid 1000 inside).
    pub(crate) user_id: u32,
    _lock: File,
}

/// Creates `dir` (and parents) with the given mode if it does not exist.
pub(crate) fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

impl Slot {
    /// Takes the first free slot below `max`; its lock lives in `lock_dir` (host-wide).
    pub(crate) fn acquire(lock_dir: &Path, max: u32, uid_base: u32) -> io::Result<Slot> {
        ensure_dir(lock_dir, 0o700)?;
        for id in 0..max {
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(lock_dir.join(format!("{id}.lock")))?;
            if sys::try_flock(lock.as_fd())? {
                let base = uid_base.checked_add(2 * id).ok_or(io::ErrorKind::InvalidInput)?;
                return Ok(Slot { id, keeper_id: base, user_id: base + 1, _lock: lock });
            }
        }
        Err(io::Error::other(format!("all {max} sandbox slots are in use")))
    }
}
