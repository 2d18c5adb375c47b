//! Slots: host-wide numbers for concurrent boxes, each with its own host ids, cgroup and box.
//!
//! A slot is held through an exclusive `flock` on `<lock_dir>/<n>.lock`, so two sandboxes on one
//! host never share ids or cgroups, and a crashed worker's slots free themselves.

use std::ffi::{CStr, CString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, lchown};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

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

/// Visits every entry below `dir`, depth first: `visit` sees each entry (its directory, name
/// and type) when its directory is read, `leave` sees each subdirectory (its parent and name)
/// once everything below it was visited.
///
/// A tree may be as deep as its filesystem has inodes (a box's tmpfs allows 16,384), so the walk
/// neither recurses on the stack nor keeps a descriptor per level: it holds one directory open
/// and climbs back up through `..`, checking that it is the directory it came from. No symlink
/// is ever followed.
fn walk(
    dir: &Path,
    mut visit: impl FnMut(BorrowedFd<'_>, &CStr, FileType) -> io::Result<()>,
    mut leave: impl FnMut(BorrowedFd<'_>, &CStr) -> io::Result<()>,
) -> io::Result<()> {
    struct Frame {
        /// This directory's name in its parent (`None` for `dir` itself).
        name: Option<CString>,
        /// The parent's device and inode, to recognise it through `..`.
        parent: (u64, u64),
        /// Subdirectories not visited yet.
        pending: Vec<CString>,
    }
    let open_dir = |at: BorrowedFd<'_>, name: &CStr| {
        rfs::openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let mut scan = |fd: BorrowedFd<'_>| -> io::Result<Vec<CString>> {
        let mut entries = Vec::new();
        for entry in rfs::Dir::read_from(fd)? {
            let entry = entry?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => {
                    FileType::from_raw_mode(rfs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)?.st_mode)
                }
                known => known,
            };
            entries.push((name.to_owned(), kind));
        }
        let mut subdirs = Vec::new();
        for (name, kind) in entries {
            visit(fd, &name, kind)?;
            if kind == FileType::Directory {
                subdirs.push(name);
            }
        }
        Ok(subdirs)
    };
    let mut current: OwnedFd = open_dir(rfs::CWD, &sys::cstring(dir)?)?;
    let pending = scan(current.as_fd())?;
    let mut frames = vec![Frame { name: None, parent: (0, 0), pending }];
    while let Some(top) = frames.last_mut() {
        if let Some(sub) = top.pending.pop() {
            let child = match open_dir(current.as_fd(), &sub) {
                Ok(child) => child,
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            let here = rfs::fstat(&current)?;
            let pending = scan(child.as_fd())?;
            frames.push(Frame { name: Some(sub), parent: (here.st_dev, here.st_ino), pending });
            current = child;
        } else {
            let Some(Frame { name: Some(name), parent, .. }) = frames.pop() else { break };
            let up = open_dir(current.as_fd(), c"..")?;
            let st = rfs::fstat(&up)?;
            if (st.st_dev, st.st_ino) != parent {
                return Err(io::Error::other("the directory tree changed while it was walked"));
            }
            current = up;
            leave(current.as_fd(), &name)?;
        }
    }
    Ok(())
}

/// `Ok` for success and for an entry that is already gone.
fn gone_is_fine(r: rustix::io::Result<()>) -> io::Result<()> {
    match r {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes everything inside `dir`, however deep, without following symlinks.
pub(crate) fn wipe(dir: &Path) -> io::Result<()> {
    walk(
        dir,
        |at, name, kind| {
            if kind == FileType::Directory {
                Ok(())
            } else {
                gone_is_fine(rfs::unlinkat(at, name, AtFlags::empty()))
            }
        },
        |at, name| gone_is_fine(rfs::unlinkat(at, name, AtFlags::REMOVEDIR)),
    )
}

/// Gives a directory tree to `uid`/`gid` without following symlinks.
pub(crate) fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    lchown(path, Some(uid), Some(gid))?;
    let (uid, gid) = (rfs::Uid::from_raw(uid), rfs::Gid::from_raw(gid));
    walk(
        path,
        |at, name, _| Ok(rfs::chownat(at, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?),
        |_, _| Ok(()),
    )
}

/// How a box's root directory (`/box`) looks when the box is new: what a program can change
/// on it (its mode, times, extended attributes and inode flags, as its owner) and what must not
/// reach the next lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RootState {
    uid: u32,
    gid: u32,
    mode: u32,
    atime: (i64, i64),
    mtime: (i64, i64),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    flags: u32,
}

fn open_root(dir: &Path) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rfs::open(dir, flags, Mode::empty())?)
}

/// The names of `fd`'s extended attributes.
fn xattr_names(fd: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let size = rfs::flistxattr_query(fd)?;
    let mut buf = vec![0u8; size];
    let n = rfs::flistxattr(fd, &mut buf[..])?;
    Ok(buf[..n.min(size)].split(|b| *b == 0).filter(|n| !n.is_empty()).map(<[u8]>::to_vec).collect())
}

fn xattrs(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in xattr_names(fd)? {
        let cname = CString::new(name.clone()).map_err(|_| io::ErrorKind::InvalidData)?;
        let size = rfs::fgetxattr_query(fd, &cname)?;
        let mut value = vec![0u8; size];
        let n = rfs::fgetxattr(fd, &cname, &mut value[..])?;
        value.truncate(n);
        out.push((name, value));
    }
    out.sort();
    Ok(out)
}

/// Inode flags (`chattr`); filesystems without them have none.
fn inode_flags(fd: BorrowedFd<'_>) -> io::Result<u32> {
    match rfs::ioctl_getflags(fd) {
        Ok(flags) => Ok(flags.bits()),
        Err(rustix::io::Errno::NOTTY | rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

impl RootState {
    /// Reads the state of the directory `dir`.
    pub(crate) fn read(dir: &Path) -> io::Result<Self> {
        Self::of(open_root(dir)?.as_fd())
    }

    fn of(fd: BorrowedFd<'_>) -> io::Result<Self> {
        let st = rfs::fstat(fd)?;
        Ok(Self {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            atime: (st.st_atime, st.st_atime_nsec as i64),
            mtime: (st.st_mtime, st.st_mtime_nsec as i64),
            xattrs: xattrs(fd)?,
            flags: inode_flags(fd)?,
        })
    }

    /// Puts the directory `dir` back into this state. Fails when any part cannot be put back,
    /// so that the caller destroys the box instead of handing it out.
    pub(crate) fn restore(&self, dir: &Path) -> io::Result<()> {
        let fd = open_root(dir)?;
        let fd = fd.as_fd();
        for name in xattr_names(fd)? {
            if !self.xattrs.iter().any(|(n, _)| *n == name) {
                let name = CString::new(name).map_err(|_| io::ErrorKind::InvalidData)?;
                rfs::fremovexattr(fd, &name)?;
            }
        }
        for (name, value) in &self.xattrs {
            let name = CString::new(name.clone()).map_err(|_| io::ErrorKind::InvalidData)?;
            rfs::fsetxattr(fd, &name, value, rfs::XattrFlags::empty())?;
        }
        if inode_flags(fd)? != self.flags {
            rfs::ioctl_setflags(fd, rfs::IFlags::from_bits_retain(self.flags))?;
        }
        // chown first: it clears set-id bits that the mode then sets as they were.
        rfs::fchown(fd, Some(rfs::Uid::from_raw(self.uid)), Some(rfs::Gid::from_raw(self.gid)))?;
        rfs::fchmod(fd, Mode::from_raw_mode(self.mode))?;
        let time = |(sec, nsec): (i64, i64)| rfs::Timespec { tv_sec: sec, tv_nsec: nsec as _ };
        let times = rfs::Timestamps { last_access: time(self.atime), last_modification: time(self.mtime) };
        rfs::futimens(fd, &times)?;
        let now = Self::of(fd)?;
        if now != *self {
            return Err(io::Error::other(format!("the box's root stayed changed: {now:?}, fresh {self:?}")));
        }
        Ok(())
    }
}
