//! The host's work on a box's files: walking trees of any depth, emptying them, putting the
//! box's root back as it was, and images of `/box` to start runs from.
//!
//! A program decides what its box holds, so nothing here trusts it: no symlink is followed, no
//! recursion happens on the host's stack (a chain of directories may be as deep as the box has
//! inodes), and the size of what is read is bounded.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::lchown;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};

use crate::sys;

/// What a walk does at each step.
trait Visitor {
    /// An entry of the directory `at`, seen when that directory is read.
    fn entry(&mut self, at: BorrowedFd<'_>, name: &CStr, kind: FileType) -> io::Result<()>;
    /// The walk goes down into the subdirectory `dir` (named `name` in its parent).
    fn enter(&mut self, _dir: BorrowedFd<'_>, _name: &CStr) -> io::Result<()> {
        Ok(())
    }
    /// The walk is back in `parent` after everything below its subdirectory `name`.
    fn leave(&mut self, _parent: BorrowedFd<'_>, _name: &CStr) -> io::Result<()> {
        Ok(())
    }
}

fn open_dir(at: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<OwnedFd> {
    rfs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The directory's parent, checked to be the directory whose device and inode are `expected`
/// (a walk climbs through `..` instead of keeping a descriptor per level).
fn climb(dir: BorrowedFd<'_>, expected: (u64, u64)) -> io::Result<OwnedFd> {
    let up = open_dir(dir, c"..")?;
    let st = rfs::fstat(&up)?;
    if (st.st_dev, st.st_ino) != expected {
        return Err(io::Error::other("the directory tree changed while it was walked"));
    }
    Ok(up)
}

fn id_of(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rfs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// Visits every entry below `dir`, depth first, holding one directory open at a time.
fn walk(dir: &Path, visitor: &mut dyn Visitor) -> io::Result<()> {
    struct Frame {
        /// This directory's name in its parent (`None` for `dir` itself).
        name: Option<CString>,
        /// The parent's device and inode, to recognise it through `..`.
        parent: (u64, u64),
        /// Subdirectories not visited yet.
        pending: Vec<CString>,
    }
    let scan = |fd: BorrowedFd<'_>, visitor: &mut dyn Visitor| -> io::Result<Vec<CString>> {
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
            visitor.entry(fd, &name, kind)?;
            if kind == FileType::Directory {
                subdirs.push(name);
            }
        }
        Ok(subdirs)
    };
    let mut current = open_dir(rfs::CWD, &sys::cstring(dir)?)?;
    let pending = scan(current.as_fd(), visitor)?;
    let mut frames = vec![Frame { name: None, parent: (0, 0), pending }];
    while let Some(top) = frames.last_mut() {
        if let Some(sub) = top.pending.pop() {
            let child = match open_dir(current.as_fd(), &sub) {
                Ok(child) => child,
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            let parent = id_of(current.as_fd())?;
            visitor.enter(child.as_fd(), &sub)?;
            let pending = scan(child.as_fd(), visitor)?;
            frames.push(Frame { name: Some(sub), parent, pending });
            current = child;
        } else {
            let Some(Frame { name: Some(name), parent, .. }) = frames.pop() else { break };
            current = climb(current.as_fd(), parent)?;
            visitor.leave(current.as_fd(), &name)?;
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
    struct Wipe;
    impl Visitor for Wipe {
        fn entry(&mut self, at: BorrowedFd<'_>, name: &CStr, kind: FileType) -> io::Result<()> {
            if kind == FileType::Directory {
                Ok(())
            } else {
                gone_is_fine(rfs::unlinkat(at, name, AtFlags::empty()))
            }
        }
        fn leave(&mut self, parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
            gone_is_fine(rfs::unlinkat(parent, name, AtFlags::REMOVEDIR))
        }
    }
    walk(dir, &mut Wipe)
}

/// Gives a directory tree to `uid`/`gid` without following symlinks.
pub(crate) fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    struct Chown(rfs::Uid, rfs::Gid);
    impl Visitor for Chown {
        fn entry(&mut self, at: BorrowedFd<'_>, name: &CStr, _: FileType) -> io::Result<()> {
            Ok(rfs::chownat(at, name, Some(self.0), Some(self.1), AtFlags::SYMLINK_NOFOLLOW)?)
        }
    }
    lchown(path, Some(uid), Some(gid))?;
    walk(path, &mut Chown(rfs::Uid::from_raw(uid), rfs::Gid::from_raw(gid)))
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
    Ok(open_dir(rfs::CWD, &sys::cstring(dir)?)?)
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

/// One step of recreating a tree, depth first.
#[derive(Debug)]
enum Step {
    File {
        name: CString,
        data: Vec<u8>,
        mode: u32,
    },
    Link {
        name: CString,
        target: CString,
    },
    /// Create the directory `name` and go into it.
    Enter {
        name: CString,
    },
    /// Back to the parent; the directory left gets `mode` now that it is filled.
    Leave {
        mode: u32,
    },
}

/// A copy of what `/box` holds (regular files, directories and symlinks; nothing else), in
/// the host's memory, to recreate it as it was.
#[derive(Debug, Default)]
pub(crate) struct BoxImage {
    steps: Vec<Step>,
}

fn too_big(limit: u64) -> io::Error {
    io::Error::new(io::ErrorKind::FileTooLarge, format!("the box holds more than {} KiB", limit / 1024))
}

impl BoxImage {
    /// Reads everything below `dir`, refusing more than `limit` bytes of file contents (files'
    /// apparent sizes: a sparse file counts whole).
    pub(crate) fn capture(dir: &Path, limit: u64) -> io::Result<Self> {
        struct Capture {
            steps: Vec<Step>,
            left: u64,
            modes: Vec<u32>,
        }
        impl Visitor for Capture {
            fn entry(&mut self, at: BorrowedFd<'_>, name: &CStr, kind: FileType) -> io::Result<()> {
                match kind {
                    FileType::RegularFile => {
                        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
                        let fd = rfs::openat(at, name, flags, Mode::empty())?;
                        let st = rfs::fstat(&fd)?;
                        let size = u64::try_from(st.st_size).unwrap_or(u64::MAX);
                        if size > self.left {
                            return Err(too_big(self.left));
                        }
                        let mut data = Vec::with_capacity(size as usize);
                        let read = io::Read::read_to_end(
                            &mut io::Read::take(std::fs::File::from(fd), size),
                            &mut data,
                        )?;
                        self.left -= read as u64;
                        self.steps.push(Step::File {
                            name: name.to_owned(),
                            data,
                            mode: st.st_mode & 0o7777,
                        });
                    }
                    FileType::Symlink => {
                        let target = rfs::readlinkat(at, name, Vec::new())?;
                        self.steps.push(Step::Link { name: name.to_owned(), target });
                    }
                    // Directories come with `enter`; fifos, sockets and devices are not kept.
                    _ => {}
                }
                Ok(())
            }
            fn enter(&mut self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
                let mode = rfs::fstat(dir)?.st_mode & 0o7777;
                self.steps.push(Step::Enter { name: name.to_owned() });
                self.modes.push(mode);
                Ok(())
            }
            fn leave(&mut self, _: BorrowedFd<'_>, _: &CStr) -> io::Result<()> {
                let mode = self.modes.pop().unwrap_or(0o700);
                self.steps.push(Step::Leave { mode });
                Ok(())
            }
        }
        let mut capture = Capture { steps: Vec::new(), left: limit, modes: Vec::new() };
        walk(dir, &mut capture)?;
        Ok(Self { steps: capture.steps })
    }

    /// Recreates the image in the empty directory `dir`, as `uid`/`gid` (whose files these
    /// become, and whose memory accounting they join: the caller's, not the box's).
    pub(crate) fn replay(&self, dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
        let mut current = open_root(dir)?;
        let _ids = sys::FsIds::become_(uid, gid);
        // Device and inode of each directory above the current one.
        let mut parents: Vec<(u64, u64)> = Vec::new();
        for step in &self.steps {
            match step {
                Step::File { name, data, mode } => {
                    let flags =
                        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    let fd = rfs::openat(&current, name, flags, Mode::from_raw_mode(0o600))?;
                    rfs::fchmod(&fd, Mode::from_raw_mode(*mode))?;
                    io::Write::write_all(&mut std::fs::File::from(fd), data)?;
                }
                Step::Link { name, target } => rfs::symlinkat(target, &current, name)?,
                Step::Enter { name } => {
                    rfs::mkdirat(&current, name, Mode::from_raw_mode(0o700))?;
                    let child = open_dir(current.as_fd(), name)?;
                    parents.push(id_of(current.as_fd())?);
                    current = child;
                }
                Step::Leave { mode } => {
                    let parent = parents.pop().ok_or_else(|| io::Error::other("unbalanced box image"))?;
                    let up = climb(current.as_fd(), parent)?;
                    // Only now: a mode without search permission would have kept us from `..`.
                    rfs::fchmod(&current, Mode::from_raw_mode(*mode))?;
                    current = up;
                }
            }
        }
        Ok(())
    }
}
