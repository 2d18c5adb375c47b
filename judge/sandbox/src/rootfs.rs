//! The box's root filesystem: what the host prepares once, and the list of mount operations a
//! keeper performs to build its new root.
//!
//! The plan is computed on the host, where allocation is fine; the keeper walks it after
//! `clone` without allocating.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::config::Bind;
use crate::sys;

/// Mount-setattr flags (`MOUNT_ATTR_*`).
pub(crate) const ATTR_RDONLY: u64 = 0x1;
pub(crate) const ATTR_NOSUID: u64 = 0x2;
pub(crate) const ATTR_NODEV: u64 = 0x4;

/// One step of building the root.
#[derive(Debug)]
pub(crate) enum Op {
    /// Stop mount events propagating between the keeper and the host.
    MakePrivate,
    /// `mount(2)` a fresh filesystem.
    Mount { source: CString, target: CString, fstype: CString, flags: libc::c_ulong, data: CString },
    /// A directory (existing ones are fine).
    Mkdir { path: CString },
    /// An empty file to bind a file onto.
    Touch { path: CString },
    /// A symbolic link.
    Symlink { target: CString, path: CString },
    /// A bind mount; `attrs` (`ATTR_*`) are applied to it and everything under it, with
    /// `remount_flags` as the fallback on kernels without `mount_setattr`.
    Bind { source: CString, target: CString, attrs: u64, remount_flags: libc::c_ulong },
    /// A remount of an existing mount point with new flags.
    Remount { target: CString, flags: libc::c_ulong, data: CString },
}

/// The operations that build a keeper's root, each with a description for error messages.
#[derive(Debug)]
pub(crate) struct MountPlan {
    pub(crate) ops: Vec<(Op, String)>,
    /// The directory the new root is built on (a tmpfs mounted by the first operations).
    pub(crate) root: CString,
}

/// What the host prepares once per sandbox: a directory for the new root to be mounted on and
/// a minimal `/etc`. Both are removed when the sandbox is dropped.
#[derive(Debug)]
pub(crate) struct RootFs {
    dir: tempfile::TempDir,
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
sandbox:x:1000:1000:sandbox:/box:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost\n";
/// `dns` after `files`: a network box resolves names through the `resolv.conf` it is given; a box
/// without network fails its lookups at once (nothing answers on its loopback).
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n";

/// Files of `/proc` hidden from programs.
const PROC_MASKED: [&str; 8] =
    ["kcore", "keys", "key-users", "kallsyms", "timer_list", "sched_debug", "sysrq-trigger", "kmsg"];

/// Top-level host directories a program may need, bound read-only (or recreated as the same
/// symlinks on merged-/usr systems).
const SYSTEM_DIRS: [&str; 7] = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

impl RootFs {
    /// Prepares the root mount point and `/etc` under `run_dir`.
    pub(crate) fn prepare(run_dir: &Path, etc_entries: &[String]) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("root-")
            .permissions(fs::Permissions::from_mode(0o755))
            .tempdir_in(run_dir)?;
        let root = dir.path().join("root");
        let etc = dir.path().join("etc");
        fs::create_dir(&root)?;
        fs::create_dir(&etc)?;
        for (name, text) in [
            ("passwd", PASSWD),
            ("group", GROUP),
            ("hosts", HOSTS),
            ("hostname", "sandbox\n"),
            ("nsswitch.conf", NSSWITCH),
        ] {
            fs::write(etc.join(name), text)?;
        }
        for entry in fs::read_dir("/etc")? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let wanted = etc_entries.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => *p == name,
            });
            if wanted {
                copy_tree(&entry.path(), &etc.join(&*name))?;
            }
        }
        fs::set_permissions(&etc, fs::Permissions::from_mode(0o755))?;
        Ok(Self { dir })
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The mount plan of a keeper whose `/box` is `box_source`, or (when `None`) a fresh tmpfs
    /// of `box_kb` KiB that lives and dies with the keeper.
    pub(crate) fn plan(
        &self,
        box_source: Option<&Path>,
        box_kb: u64,
        tmp_kb: u64,
        binds: &[Bind],
    ) -> io::Result<MountPlan> {
        let root = self.root();
        let mut p = Planner { root: root.clone(), ops: Vec::new() };
        p.push(Op::MakePrivate, "make mounts private".into());
        p.mount(
            "tmpfs",
            &root,
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            "size=1m,nr_inodes=256,mode=0755",
        )?;
        for name in SYSTEM_DIRS {
            let host = Path::new("/").join(name);
            match fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = fs::read_link(&host)?;
                    p.symlink(&target, &root.join(name))?;
                }
                Ok(m) if m.is_dir() => p.bind(&host, Path::new("/").join(name).as_path(), false, false)?,
                _ => {}
            }
        }
        p.bind(&self.dir.path().join("etc"), Path::new("/etc"), false, false)?;
        match box_source {
            Some(dir) => p.bind(dir, Path::new("/box"), true, false)?,
            None => {
                p.mkdir(&root.join("box"))?;
                // Owned by the program's user inside (uid 1000 in the keeper's namespace).
                let opts = format!("size={box_kb}k,nr_inodes=16384,mode=0700,uid=1000,gid=1000");
                p.mount("tmpfs", &root.join("box"), "tmpfs", libc::MS_NOSUID | libc::MS_NODEV, &opts)?;
            }
        }
        p.mkdir(&root.join("tmp"))?;
        let tmp_opts = format!("size={tmp_kb}k,nr_inodes=16384,mode=1777");
        p.mount("tmpfs", &root.join("tmp"), "tmpfs", libc::MS_NOSUID | libc::MS_NODEV, &tmp_opts)?;
        p.mkdir(&root.join("proc"))?;
        // hidepid=2: the program cannot see the keeper (pid 1), which runs as another user.
        p.mount(
            "proc",
            &root.join("proc"),
            "proc",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            "hidepid=2",
        )?;
        // Kernel internals no program needs, covered as Docker and nsjail do: reading them
        // through the mask fails (a nodev /dev/null).
        for name in PROC_MASKED {
            let path = Path::new("/proc").join(name);
            if path.exists() {
                p.mask(&root.join("proc").join(name))?;
            }
        }
        let dev = root.join("dev");
        p.mkdir(&dev)?;
        let dev_opts = "size=64k,nr_inodes=64,mode=0755";
        p.mount("tmpfs", &dev, "tmpfs", libc::MS_NOSUID | libc::MS_NOEXEC, dev_opts)?;
        for node in ["null", "zero", "random", "urandom"] {
            p.bind(&Path::new("/dev").join(node), &Path::new("/dev").join(node), true, true)?;
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("shm", "/tmp"),
        ] {
            p.symlink(Path::new(target), &dev.join(name))?;
        }
        p.push(
            Op::Remount {
                target: sys::cstring(&dev)?,
                flags: libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC,
                data: CString::new(dev_opts)?,
            },
            "make /dev read-only".into(),
        );
        for bind in binds {
            p.bind(&bind.source, &bind.target, bind.writable, false)?;
        }
        Ok(MountPlan { ops: p.ops, root: sys::cstring(&root)? })
    }
}

struct Planner {
    root: PathBuf,
    ops: Vec<(Op, String)>,
}

impl Planner {
    fn push(&mut self, op: Op, what: String) {
        self.ops.push((op, what));
    }

    fn mount(
        &mut self,
        source: &str,
        target: &Path,
        fstype: &str,
        flags: libc::c_ulong,
        data: &str,
    ) -> io::Result<()> {
        let op = Op::Mount {
            source: CString::new(source)?,
            target: sys::cstring(target)?,
            fstype: CString::new(fstype)?,
            flags,
            data: CString::new(data)?,
        };
        self.push(op, format!("mount {fstype} on {}", target.display()));
        Ok(())
    }

    fn mkdir(&mut self, path: &Path) -> io::Result<()> {
        self.push(Op::Mkdir { path: sys::cstring(path)? }, format!("create {}", path.display()));
        Ok(())
    }

    fn symlink(&mut self, target: &Path, path: &Path) -> io::Result<()> {
        let op = Op::Symlink { target: sys::cstring(target)?, path: sys::cstring(path)? };
        self.push(op, format!("link {} to {}", path.display(), target.display()));
        Ok(())
    }

    /// Covers an existing file (`target`, a host path under the new root) with a read-only,
    /// nodev `/dev/null`, so opening it fails.
    fn mask(&mut self, target: &Path) -> io::Result<()> {
        let remount_flags = libc::MS_REMOUNT
            | libc::MS_BIND
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC;
        let op = Op::Bind {
            source: CString::new("/dev/null")?,
            target: sys::cstring(target)?,
            attrs: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
            remount_flags,
        };
        self.push(op, format!("mask {}", target.display()));
        Ok(())
    }

    /// Binds host `source` at `inside` (absolute, in the box), creating the mount point and
    /// its parents. Device nodes keep device access; everything else is nosuid and nodev.
    fn bind(&mut self, source: &Path, inside: &Path, writable: bool, device: bool) -> io::Result<()> {
        let meta = fs::metadata(source)
            .map_err(|e| io::Error::new(e.kind(), format!("bind source {}: {e}", source.display())))?;
        let target = self.root.join(inside.strip_prefix("/").unwrap_or(inside));
        let mut parent = self.root.clone();
        let rel = target.strip_prefix(&self.root).map_err(|_| io::ErrorKind::InvalidInput)?;
        let depth = rel.components().count();
        for component in rel.components().take(depth.saturating_sub(1)) {
            parent.push(component);
            self.mkdir(&parent)?;
        }
        if meta.is_dir() {
            self.mkdir(&target)?;
        } else {
            self.push(Op::Touch { path: sys::cstring(&target)? }, format!("create {}", target.display()));
        }
        let mut attrs = ATTR_NOSUID;
        if !writable {
            attrs |= ATTR_RDONLY;
        }
        if !device {
            attrs |= ATTR_NODEV;
        }
        // The fallback remount must repeat the flags the kernel locks on the source mount.
        let st = sys::statvfs_flags(source)?;
        let mut remount_flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID;
        for (st_flag, ms_flag) in [
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_NOATIME, libc::MS_NOATIME),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (libc::ST_RELATIME, libc::MS_RELATIME),
        ] {
            if st & st_flag != 0 {
                remount_flags |= ms_flag;
            }
        }
        if !writable || st & libc::ST_RDONLY != 0 {
            remount_flags |= libc::MS_RDONLY;
        }
        if !device || st & libc::ST_NODEV != 0 {
            remount_flags |= libc::MS_NODEV;
        }
        let op =
            Op::Bind { source: sys::cstring(source)?, target: sys::cstring(&target)?, attrs, remount_flags };
        let mode = if writable { "read-write" } else { "read-only" };
        self.push(op, format!("bind {} {mode} at {}", source.display(), inside.display()));
        Ok(())
    }
}

/// Copies a file, directory or symlink, keeping symlinks as links.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        symlink(fs::read_link(from)?, to)
    } else if meta.is_dir() {
        fs::create_dir(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        fs::set_permissions(to, meta.permissions())
    } else if meta.is_file() {
        fs::copy(from, to).map(drop)
    } else {
        Ok(())
    }
}
