//! Slots: host-wide numbers for concurrent boxes, each with its own host ids, cgroup and box.
//!
//! A slot is held through an exclusive `flock` on `<run_dir>/slots/<n>.lock`, so two workers on
//! one host never share ids or cgroups, and a crashed worker's slots free themselves.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use crate::sys;

/// A slot held by this process.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) id: u32,
    /// Host uid and gid of the keeper (uid 0 inside the box's user namespace).
    pub(crate) keeper_id: u32,
    /// Host uid and gid of programs (uid 1000 inside).
    pub(crate) user_id: u32,
    /// The slot's own box directory on the host.
    pub(crate) box_dir: PathBuf,
    _lock: File,
}

/// Creates `dir` (and parents) with the given mode if it does not exist.
pub(crate) fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

impl Slot {
    /// Takes the first free slot below `max`; its lock lives in `lock_dir` (host-wide), its
    /// box under `run_dir`.
    pub(crate) fn acquire(lock_dir: &Path, run_dir: &Path, max: u32, uid_base: u32) -> io::Result<Slot> {
        let slots = run_dir.join("slots");
        ensure_dir(&slots, 0o711)?;
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
                return Ok(Slot {
                    id,
                    keeper_id: base,
                    user_id: base + 1,
                    box_dir: slots.join(id.to_string()).join("box"),
                    _lock: lock,
                });
            }
        }
        Err(io::Error::other(format!("all {max} sandbox slots are in use")))
    }

    /// Makes the slot's box an empty, size-limited tmpfs owned by the program's user. Where
    /// mounting is not allowed the box is a plain directory, and the result says so.
    pub(crate) fn prepare_box(&self, size_kb: u64) -> io::Result<BoxKind> {
        let parent = self.box_dir.parent().ok_or(io::ErrorKind::InvalidInput)?;
        ensure_dir(parent, 0o711)?;
        fs::create_dir_all(&self.box_dir)?;
        let opts = format!("size={size_kb}k,nr_inodes=16384,mode=0700,uid={0},gid={0}", self.user_id);
        let flags = libc::MS_NOSUID | libc::MS_NODEV;
        let kind = if is_mount_point(&self.box_dir)? {
            sys::mount("tmpfs", &self.box_dir, "tmpfs", flags | libc::MS_REMOUNT, &opts)?;
            wipe(&self.box_dir)?;
            BoxKind::Tmpfs
        } else {
            match sys::mount("tmpfs", &self.box_dir, "tmpfs", flags, &opts) {
                Ok(()) => BoxKind::Tmpfs,
                Err(_) => {
                    wipe(&self.box_dir)?;
                    BoxKind::Directory
                }
            }
        };
        lchown(&self.box_dir, Some(self.user_id), Some(self.user_id))?;
        fs::set_permissions(&self.box_dir, fs::Permissions::from_mode(0o700))?;
        Ok(kind)
    }
}

/// What backs a box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoxKind {
    /// A tmpfs of bounded size.
    Tmpfs,
    /// A plain host directory: file sizes are bounded, the number of files is not.
    Directory,
}

fn is_mount_point(dir: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let parent = dir.parent().ok_or(io::ErrorKind::InvalidInput)?;
    Ok(fs::metadata(dir)?.dev() != fs::metadata(parent)?.dev())
}

/// Removes everything inside `dir` without following symlinks.
pub(crate) fn wipe(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Gives a directory tree to `uid`/`gid` without following symlinks.
pub(crate) fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    lchown(path, Some(uid), Some(gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}
