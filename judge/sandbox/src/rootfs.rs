//! The box's root filesystem: what the host prepares once, and the list of mount operations a
//! keeper performs to build its new root.
//!
//! The plan is computed on the host, where allocation is fine; the keeper walks it after
//! `clone` without allocating.
//!
//! Nothing of the root lives on the host's disk: the keeper mounts a tmpfs (in its own mount
//! namespace) and writes `/etc` into it from copies the host read once. A bind mount would show
//! its host source path in the box's `/proc/self/mountinfo`; files written into the box's own
//! tmpfs show nothing of the host.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Bind;
use crate::sys;

/// Mount-setattr flags (`MOUNT_ATTR_*`).
pub(crate) const ATTR_RDONLY: u64 = 0x1;
pub(crate) const ATTR_NOSUID: u64 = 0x2;
pub(crate) const ATTR_NODEV: u64 = 0x4;
pub(crate) const ATTR_NOEXEC: u64 = 0x8;

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
    /// A new file with these contents (shared with the `RootFs`: every keeper's plan writes the
    /// same `/etc`) and mode.
    WriteFile { path: CString, data: Arc<[u8]>, mode: u32 },
    /// A bind mount of a host path (opened by the keeper before it takes its box's ids);
    /// `attrs` (`ATTR_*`) are applied to it and everything under it, with `remount_flags` as
    /// the fallback on kernels without `mount_setattr`.
    Bind { source: CString, target: CString, attrs: u64, remount_flags: libc::c_ulong },
    /// A bind mount of a path inside the new root onto another one, restricted the same way.
    BindWithin { source: CString, target: CString, attrs: u64, remount_flags: libc::c_ulong },
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

/// One entry of the box's `/etc`, relative to it.
#[derive(Debug)]
enum EtcEntry {
    Dir(PathBuf),
    File(PathBuf, Arc<[u8]>, u32),
    Link(PathBuf, PathBuf),
}

/// What the host prepares once per sandbox: the contents of the box's `/etc` and of the fake
/// `/proc` files, read into memory, and where the keeper mounts its new root.
#[derive(Debug)]
pub(crate) struct RootFs {
    /// The directory each keeper mounts its new root's tmpfs on, in its own mount namespace
    /// only (so the host sees nothing there).
    mount_point: PathBuf,
    etc: Vec<EtcEntry>,
    /// Host-wide `/proc` files replaced by static ones: (name, contents).
    proc_fakes: Vec<(&'static str, Arc<[u8]>)>,
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
sandbox:x:1000:1000:sandbox:/box:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost\n";
/// `dns` after `files`: a network box resolves names through the `resolv.conf` it is given; a box
/// without network fails its lookups at once (nothing answers on its loopback).
const NSSWITCH: &str = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n";

/// Files of `/proc` hidden from programs: kernel internals, and host-wide activity (devices,
/// interrupts, memory zones, file locks, swap) that tells one box about the others.
const PROC_MASKED: [&str; 24] = [
    "kcore",
    "keys",
    "key-users",
    "kallsyms",
    "timer_list",
    "sched_debug",
    "sysrq-trigger",
    "kmsg",
    "interrupts",
    "softirqs",
    "diskstats",
    "vmstat",
    "zoneinfo",
    "schedstat",
    "buddyinfo",
    "pagetypeinfo",
    "locks",
    "swaps",
    "partitions",
    "slabinfo",
    "vmallocinfo",
    "kpagecount",
    "kpageflags",
    "kpagecgroup",
];

/// Where the fake `/proc` files live inside the box (read-only, like the rest of `/etc`).
const PROC_FAKES_DIR: &str = "sandbox/proc";

/// Static stand-ins for the `/proc` files that show host-wide load and memory, as lxcfs
/// gives containers: the same for every box and every run, so they tell nothing of the host's
/// other work. (`sysinfo(2)` still reports host totals; only files are faked.)
fn proc_fakes() -> Vec<(&'static str, Arc<[u8]>)> {
    let cpus = sys::online_cpus();
    let mut stat = String::from("cpu  0 0 0 0 0 0 0 0 0 0\n");
    for cpu in 0..cpus {
        stat.push_str(&format!("cpu{cpu} 0 0 0 0 0 0 0 0 0 0\n"));
    }
    stat.push_str("intr 0\nctxt 0\nbtime 0\nprocesses 1\nprocs_running 1\nprocs_blocked 0\nsoftirq 0\n");
    // The machine's size is no secret (sysinfo tells it); how much of it is in use is.
    let total_kb = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned())))
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let mut meminfo = String::new();
    for (key, kb) in [
        ("MemTotal", total_kb),
        ("MemFree", total_kb),
        ("MemAvailable", total_kb),
        ("Buffers", 0),
        ("Cached", 0),
        ("SwapCached", 0),
        ("Active", 0),
        ("Inactive", 0),
        ("SwapTotal", 0),
        ("SwapFree", 0),
        ("Dirty", 0),
        ("Shmem", 0),
    ] {
        meminfo.push_str(&format!("{:<16}{kb:>8} kB\n", format!("{key}:")));
    }
    vec![
        ("loadavg", Arc::from(&b"0.00 0.00 0.00 1/1 1\n"[..])),
        ("stat", Arc::from(stat.into_bytes())),
        ("meminfo", Arc::from(meminfo.into_bytes())),
    ]
}

/// Top-level host directories a program may need, bound read-only (or recreated as the same
/// symlinks on merged-/usr systems).
const SYSTEM_DIRS: [&str; 7] = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

impl RootFs {
    /// Reads the box's `/etc` (generated files plus the wanted host entries) into memory; the
    /// keepers' roots are mounted on `run_dir`, each in its own mount namespace.
    pub(crate) fn prepare(run_dir: &Path, etc_entries: &[String]) -> io::Result<Self> {
        let mut etc = Vec::new();
        for (name, text) in [
            ("passwd", PASSWD),
            ("group", GROUP),
            ("hosts", HOSTS),
            ("hostname", "sandbox\n"),
            ("nsswitch.conf", NSSWITCH),
        ] {
            etc.push(EtcEntry::File(name.into(), Arc::from(text.as_bytes()), 0o644));
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
                read_tree(&entry.path(), Path::new(&*name), &mut etc)?;
            }
        }
        Ok(Self { mount_point: run_dir.to_owned(), etc, proc_fakes: proc_fakes() })
    }

    fn root(&self) -> PathBuf {
        self.mount_point.clone()
    }

    /// Size and inodes the root's tmpfs needs for `/etc`, the fakes and mount points.
    fn root_options(&self) -> String {
        let page = |len: usize| len.div_ceil(4096).max(1) * 4;
        let files = self.etc.iter().map(|e| match e {
            EtcEntry::File(_, data, _) => page(data.len()),
            _ => 4,
        });
        let fakes = self.proc_fakes.iter().map(|(_, data)| page(data.len()));
        let kb = 1024 + files.chain(fakes).sum::<usize>();
        let inodes = 256 + self.etc.len() + self.proc_fakes.len();
        format!("size={kb}k,nr_inodes={inodes},mode=0755")
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
        p.mount("tmpfs", &root, "tmpfs", libc::MS_NOSUID | libc::MS_NODEV, &self.root_options())?;
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
        let etc = root.join("etc");
        p.mkdir(&etc)?;
        for entry in &self.etc {
            match entry {
                EtcEntry::Dir(rel) => p.mkdir(&etc.join(rel))?,
                EtcEntry::File(rel, data, mode) => p.write_file(&etc.join(rel), data, *mode)?,
                EtcEntry::Link(rel, target) => p.symlink(target, &etc.join(rel))?,
            }
        }
        let fakes = etc.join(PROC_FAKES_DIR);
        p.mkdir(fakes.parent().unwrap_or(&etc))?;
        p.mkdir(&fakes)?;
        for (name, data) in &self.proc_fakes {
            p.write_file(&fakes.join(name), data, 0o444)?;
        }
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
        for (name, _) in &self.proc_fakes {
            if Path::new("/proc").join(name).exists() {
                p.bind_within(&fakes.join(name), &root.join("proc").join(name))?;
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

    fn write_file(&mut self, path: &Path, data: &Arc<[u8]>, mode: u32) -> io::Result<()> {
        let op = Op::WriteFile { path: sys::cstring(path)?, data: data.clone(), mode };
        self.push(op, format!("write {}", path.display()));
        Ok(())
    }

    /// Covers `target` with `source`, both paths in the new root (host paths of the keeper's
    /// view before the pivot), read-only, nosuid, nodev and noexec.
    fn bind_within(&mut self, source: &Path, target: &Path) -> io::Result<()> {
        let op = Op::BindWithin {
            source: sys::cstring(source)?,
            target: sys::cstring(target)?,
            attrs: ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV | ATTR_NOEXEC,
            remount_flags: libc::MS_REMOUNT
                | libc::MS_BIND
                | libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC,
        };
        self.push(op, format!("bind {} at {}", source.display(), target.display()));
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

/// Reads a host file, directory or symlink (kept as a link) into `out`, at `rel` in `/etc`.
/// Set-id bits are dropped; other kinds of files are skipped.
fn read_tree(from: &Path, rel: &Path, out: &mut Vec<EtcEntry>) -> io::Result<()> {
    let meta = fs::symlink_metadata(from)?;
    if meta.file_type().is_symlink() {
        out.push(EtcEntry::Link(rel.to_owned(), fs::read_link(from)?));
    } else if meta.is_dir() {
        out.push(EtcEntry::Dir(rel.to_owned()));
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            read_tree(&entry.path(), &rel.join(entry.file_name()), out)?;
        }
    } else if meta.is_file() {
        out.push(EtcEntry::File(
            rel.to_owned(),
            Arc::from(fs::read(from)?),
            meta.permissions().mode() & 0o777,
        ));
    }
    Ok(())
}
