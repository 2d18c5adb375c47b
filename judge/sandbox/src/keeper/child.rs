//! Code that runs after `clone`, inside the box's namespaces: the keeper (pid 1 of the box)
//! and, for each run, the process that becomes the program.
//!
//! The keeper is a child of a multi-threaded process, so nothing here may allocate, take a
//! lock or panic: only system calls, fixed buffers, and data the host prepared before `clone`
//! (the keeper sees a copy-on-write copy of it at the same addresses). Failures are reported to
//! the host as a (step, errno) pair.

#![allow(unsafe_code)]

use core::ffi::{c_char, c_int, c_void};
use core::ptr;
use std::io;

use super::proto::{
    self, DONE_BYTES, Done, HEADER_BYTES, HEADER_WORDS, MAX_STRINGS, Rlimits, RunHeader, step,
};
use crate::rootfs::{MountPlan, Op};

/// The keeper's control socket, moved to a fixed number.
const SOCK: c_int = 3;
/// Most bind mounts a box may have.
const MAX_BINDS: usize = 64;

/// Everything the keeper needs, prepared by the host before `clone`.
#[derive(Debug)]
pub(crate) struct Init<'a> {
    /// The keeper's end of the control socket (any number; moved to `SOCK`).
    pub(crate) sock: c_int,
    /// How to build the root.
    pub(crate) plan: &'a MountPlan,
    /// The seccomp program, installed on the keeper and inherited by every run.
    pub(crate) filter: &'a libc::sock_fprog,
    /// Buffer for run requests, `proto::REQUEST_MAX` bytes.
    pub(crate) request: *mut u8,
    /// Top of the stack the program's process starts on (16-byte aligned).
    pub(crate) stack_top: *mut u8,
    /// Highest capability number of this kernel.
    pub(crate) cap_last: c_int,
    /// The program's uid and gid inside the box.
    pub(crate) user: u32,
}

/// A failed step.
#[derive(Debug, Clone, Copy)]
struct Fail {
    step: u32,
    errno: c_int,
}

fn errno() -> c_int {
    // SAFETY: __errno_location always returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// `setresuid` as the bare system call. glibc's wrapper (like those of `setresgid` and
/// `setgroups`) applies the change to every thread it believes the process has, taking locks
/// and signalling threads; in a `clone` of a multi-threaded process that can wait forever on a
/// lock another thread held at the moment of the clone. The kernel call changes only the
/// calling thread, which here is the whole process.
fn raw_setresuid(r: u32, e: u32, s: u32) -> c_int {
    // SAFETY: a system call with integer arguments.
    unsafe { libc::syscall(libc::SYS_setresuid, r, e, s) as c_int }
}

/// Drops supplementary groups and sets every uid and gid to `id`, with bare system calls (see
/// `raw_setresuid`). Returns -1 on failure, with errno set.
fn set_ids(id: u32) -> c_int {
    // SAFETY: system calls with integer arguments and a null group list of length 0.
    unsafe {
        if libc::syscall(libc::SYS_setgroups, 0usize, ptr::null::<libc::gid_t>()) != 0
            || libc::syscall(libc::SYS_setresgid, id, id, id) != 0
        {
            return -1;
        }
    }
    raw_setresuid(id, id, id)
}

/// `-1` → the step failed with errno.
fn check(step: u32, r: c_int) -> Result<c_int, Fail> {
    if r == -1 { Err(Fail { step, errno: errno() }) } else { Ok(r) }
}

fn check_long(step: u32, r: libc::c_long) -> Result<(), Fail> {
    if r == -1 { Err(Fail { step, errno: errno() }) } else { Ok(()) }
}

/// Starts a keeper in new user, mount, pid, ipc, uts, network and cgroup namespaces. Returns
/// its pid; the keeper waits for `proto::GO` before doing anything.
pub(crate) fn clone_keeper(init: &Init<'_>) -> io::Result<libc::pid_t> {
    // A network namespace of its own even for a box with network access: the host links it
    // to the outside (`crate::net`), never to the host's own network.
    let flags = (libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWNET) as libc::c_ulong
        | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: with a null stack, clone behaves like fork: the child continues on a
    // copy-on-write copy of this thread's stack and of the process's memory, so `init` and
    // everything it points to stay valid in the child. The child runs only `keeper_main`,
    // which never returns, never allocates and never unwinds.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        keeper_main(init);
    }
    Ok(pid as libc::pid_t)
}

fn send(bytes: &[u8]) {
    // SAFETY: `bytes` is a valid buffer; a failed send means the host is gone, which the next
    // receive notices.
    unsafe { libc::send(SOCK, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
}

fn keeper_main(init: &Init<'_>) -> ! {
    let code = match setup(init) {
        Ok(fds) => {
            send(&[proto::READY]);
            serve(init, fds);
            0
        }
        Err(fail) => {
            let mut buf = [0u8; 24];
            let n =
                proto::write_words(&mut buf, proto::FAILED, &[fail.step as u64, fail.errno as u32 as u64]);
            // Before the socket is moved to SOCK, report on the original descriptor.
            let fd = if fail.step == step::FDS { init.sock } else { SOCK };
            // SAFETY: `buf[..n]` is a valid buffer.
            unsafe { libc::send(fd, buf.as_ptr().cast(), n, libc::MSG_NOSIGNAL) };
            1
        }
    };
    // SAFETY: _exit ends this process without running anything of the host's.
    unsafe { libc::_exit(code) }
}

/// Closes every descriptor from `first` up.
fn close_from(first: c_int) {
    // SAFETY: close_range only closes descriptors.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first as u32, u32::MAX, 0u32) };
    if r != 0 {
        for fd in first..65_536 {
            // SAFETY: closing a descriptor number, open or not, is harmless here: nothing in
            // this process uses the host's descriptors.
            unsafe { libc::close(fd) };
        }
    }
}

/// Descriptors the keeper serves runs with.
#[derive(Clone, Copy)]
struct KeeperFds {
    /// SIGCHLD notifications.
    sigfd: c_int,
    /// `/proc/sys/kernel/ns_last_pid` of the box's pid namespace, or -1 where the kernel does
    /// not let the keeper write it.
    last_pid: c_int,
}

/// Prepares the keeper: descriptors, signals, ids, the new root.
fn setup(init: &Init<'_>) -> Result<KeeperFds, Fail> {
    if init.sock != SOCK {
        // SAFETY: plain descriptor duplication.
        check(step::FDS, unsafe { libc::dup3(init.sock, SOCK, libc::O_CLOEXEC) })?;
    }
    close_from(SOCK + 1);
    // SAFETY: the path is a NUL-terminated literal.
    let null = check(step::FDS, unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) })?;
    for fd in 0..3 {
        if null != fd {
            // SAFETY: plain descriptor duplication over the inherited stdio.
            check(step::FDS, unsafe { libc::dup2(null, fd) })?;
        }
    }
    if null > 2 {
        // SAFETY: `null` is ours.
        unsafe { libc::close(null) };
    }

    for sig in 1..libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: restoring default dispositions; errors (reserved signals) are harmless.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset to initialise.
    let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
    }
    // SAFETY: `set` is initialised; the old mask is not wanted.
    check(step::SIGNALS, unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, ptr::null_mut()) })?;
    // SAFETY: `set` is initialised.
    let sigfd =
        check(step::SIGNALS, unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;

    // The host maps our ids and moves us into our cgroup, then says go.
    let mut go = [0u8; 8];
    // SAFETY: `go` is a valid buffer.
    let n = unsafe { libc::recv(SOCK, go.as_mut_ptr().cast(), go.len(), 0) };
    if n != 1 || go[0] != proto::GO {
        // SAFETY: the host is gone; nothing to report to.
        unsafe { libc::_exit(1) };
    }
    // A cgroup namespace rooted at the slot's cgroup, now that we are in it.
    // SAFETY: unshare has no memory-safety preconditions.
    check(step::CGROUP_NS, unsafe { libc::unshare(libc::CLONE_NEWCGROUP) })?;
    // Open every bind source now, while our file access is still that of the host user who
    // started us (so a source under a private directory such as /root is reachable), and from
    // inside our own mount namespace (so the kernel lets us bind it).
    let mut sources = [-1 as c_int; MAX_BINDS];
    let mut count = 0;
    for (i, (op, _)) in init.plan.ops.iter().enumerate() {
        if let Op::Bind { source, .. } = op {
            let fail = Fail { step: i as u32, errno: libc::E2BIG };
            let slot = sources.get_mut(count).ok_or(fail)?;
            // SAFETY: `source` is a NUL-terminated CString owned by the plan.
            *slot = check(i as u32, unsafe { libc::open(source.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) })?;
            count += 1;
        }
    }
    check(step::IDS, set_ids(0))?;

    let mut next = sources.iter();
    for (i, (op, _)) in init.plan.ops.iter().enumerate() {
        let fd = if matches!(op, Op::Bind { .. }) { next.next().copied().unwrap_or(-1) } else { -1 };
        apply(op, fd).map_err(|errno| Fail { step: i as u32, errno })?;
    }
    for fd in sources.into_iter().take(count) {
        // SAFETY: descriptors opened above.
        unsafe { libc::close(fd) };
    }
    pivot(init.plan)?;

    // SAFETY: the name is a valid buffer of the given length.
    check(step::HOSTNAME, unsafe { libc::sethostname(c"sandbox".as_ptr(), 7) })?;
    loopback_up()?;
    // SAFETY: prctl with integer arguments.
    check(step::DUMPABLE, unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) })?;
    // Opened while the keeper still has every capability of its namespace; writing it later
    // needs CAP_CHECKPOINT_RESTORE, which `lockdown` keeps where the kernel has it.
    // SAFETY: the path is a NUL-terminated literal.
    let last_pid =
        unsafe { libc::open(c"/proc/sys/kernel/ns_last_pid".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    lockdown(init)?;
    Ok(KeeperFds { sigfd, last_pid })
}

/// Capabilities the keeper keeps after setup: to switch a new process to the program's ids,
/// to kill the run's processes, and to remove the IPC objects a run left behind.
const KEEPER_CAPS: u64 = {
    const CAP_KILL: u32 = 5;
    const CAP_SETGID: u32 = 6;
    const CAP_SETUID: u32 = 7;
    const CAP_IPC_OWNER: u32 = 15;
    (1 << CAP_KILL) | (1 << CAP_SETGID) | (1 << CAP_SETUID) | (1 << CAP_IPC_OWNER)
};

/// Kept too where the kernel has it (5.9+): to restart the box's pid numbering before each
/// run (`ns_last_pid`), so pids say nothing about earlier runs.
const CAP_CHECKPOINT_RESTORE: c_int = 40;

/// Gives the keeper no more power than serving runs needs, once, so runs inherit it instead of
/// paying for it: an empty bounding set, the seccomp filter (compiled by the kernel once here
/// rather than at every run), and only `KEEPER_CAPS`.
fn lockdown(init: &Init<'_>) -> Result<(), Fail> {
    for cap in 0..=init.cap_last {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 && errno() != libc::EINVAL {
            return Err(Fail { step: step::LOCKDOWN, errno: errno() });
        }
    }
    // SAFETY: `filter` points at the host-built program, valid in this process's memory.
    check_long(step::LOCKDOWN, unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            init.filter as *const libc::sock_fprog,
        )
    })?;
    let mut caps = KEEPER_CAPS;
    if init.cap_last >= CAP_CHECKPOINT_RESTORE {
        caps |= 1 << CAP_CHECKPOINT_RESTORE;
    }
    set_caps(caps).map_err(|errno| Fail { step: step::LOCKDOWN, errno })
}

/// Sets the permitted and effective capability sets to `caps` (inheritable: none).
fn set_caps(caps: u64) -> Result<(), c_int> {
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: c_int,
    }
    #[repr(C)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = CapHeader { version: 0x2008_0522, pid: 0 };
    let (low, high) = (caps as u32, (caps >> 32) as u32);
    let data = [
        CapData { effective: low, permitted: low, inheritable: 0 },
        CapData { effective: high, permitted: high, inheritable: 0 },
    ];
    // SAFETY: a version-3 header and two data words, as capset expects.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// Removes every System V shared memory segment, semaphore set and message queue in the box's
/// IPC namespace, so nothing a run created reaches the next one. (POSIX message queues cannot
/// be created: seccomp denies mq_open.)
///
/// Only the program's user creates objects here, and a creator may always remove its objects,
/// so the keeper does this as that user (effective uid only, for the moment) rather than keep
/// CAP_SYS_ADMIN. The `*_STAT_ANY` commands list objects whatever their permissions.
fn clean_ipc(user: u32) {
    const SHM_STAT_ANY: c_int = 15;
    const SHM_INFO: c_int = 14;
    const SEM_STAT_ANY: c_int = 20;
    const MSG_STAT_ANY: c_int = 13;
    // SAFETY: id changes and *ctl calls, each given a buffer at least as large as the
    // structure the command writes (the *_ds structures are larger than the *_info ones);
    // IPC_RMID takes none.
    unsafe {
        if raw_setresuid(u32::MAX, user, u32::MAX) != 0 {
            return;
        }
        let mut shm: libc::shmid_ds = core::mem::zeroed();
        let top = libc::shmctl(0, SHM_INFO, &mut shm);
        for index in 0..=top {
            let id = libc::shmctl(index, SHM_STAT_ANY, &mut shm);
            if id >= 0 {
                libc::shmctl(id, libc::IPC_RMID, ptr::null_mut());
            }
        }
        let mut sem: libc::semid_ds = core::mem::zeroed();
        let top = libc::semctl(0, 0, libc::SEM_INFO, &mut sem as *mut libc::semid_ds);
        for index in 0..=top {
            let id = libc::semctl(index, 0, SEM_STAT_ANY, &mut sem as *mut libc::semid_ds);
            if id >= 0 {
                libc::semctl(id, 0, libc::IPC_RMID);
            }
        }
        let mut msg: libc::msqid_ds = core::mem::zeroed();
        let top = libc::msgctl(0, libc::MSG_INFO, &mut msg);
        for index in 0..=top {
            let id = libc::msgctl(index, MSG_STAT_ANY, &mut msg);
            if id >= 0 {
                libc::msgctl(id, libc::IPC_RMID, ptr::null_mut());
            }
        }
        // Back to uid 0, which restores the effective capabilities from the permitted set.
        raw_setresuid(u32::MAX, 0, u32::MAX);
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `/proc/self/fd/<fd>` as a C string in `buf`.
fn fd_path(buf: &mut [u8; 32], fd: c_int) -> *const c_char {
    let prefix = b"/proc/self/fd/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut v = fd.max(0) as u32;
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 || len == digits.len() {
            break;
        }
    }
    for i in 0..len {
        buf[prefix.len() + i] = digits[len - 1 - i];
    }
    buf[prefix.len() + len] = 0;
    buf.as_ptr().cast()
}

/// Applies `attrs` (`ATTR_*`) to the mount at `target` and everything under it, or on kernels
/// without `mount_setattr` (before 5.12) remounts the top mount with `remount_flags`.
fn restrict(target: &core::ffi::CStr, attrs: u64, remount_flags: libc::c_ulong) -> Result<(), c_int> {
    let attr = MountAttr { attr_set: attrs, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: `target` is NUL-terminated and `attr` a valid mount_attr of the size given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            core::mem::size_of::<MountAttr>(),
        )
    };
    match (r, errno()) {
        (0, _) => Ok(()),
        (_, libc::ENOSYS) => {
            // SAFETY: as above; a remount with integer flags and no data.
            let r =
                unsafe { libc::mount(ptr::null(), target.as_ptr(), ptr::null(), remount_flags, ptr::null()) };
            if r == -1 { Err(errno()) } else { Ok(()) }
        }
        (_, e) => Err(e),
    }
}

/// Performs one operation of the mount plan; the error is an errno. `source_fd` is the
/// `O_PATH` descriptor of a bind's source.
fn apply(op: &Op, source_fd: c_int) -> Result<(), c_int> {
    let ok = |r: c_int| if r == -1 { Err(errno()) } else { Ok(()) };
    let null = ptr::null::<c_char>();
    // SAFETY: every pointer is a NUL-terminated CString owned by the plan, which outlives this
    // call, or a pointer to a local; the other arguments are plain integers.
    unsafe {
        match op {
            Op::MakePrivate => {
                ok(libc::mount(null, c"/".as_ptr(), null, libc::MS_REC | libc::MS_PRIVATE, ptr::null()))
            }
            Op::Mount { source, target, fstype, flags, data } => ok(libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                *flags,
                data.as_ptr().cast(),
            )),
            Op::Mkdir { path } => match ok(libc::mkdir(path.as_ptr(), 0o755)) {
                Err(libc::EEXIST) => Ok(()),
                other => other,
            },
            Op::Touch { path } => {
                let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
                ok(fd)?;
                libc::close(fd);
                Ok(())
            }
            Op::Symlink { target, path } => ok(libc::symlink(target.as_ptr(), path.as_ptr())),
            Op::WriteFile { path, data, mode } => {
                let flags =
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
                let fd = libc::open(path.as_ptr(), flags, *mode);
                ok(fd)?;
                let mut written = 0;
                let mut result = Ok(());
                while written < data.len() {
                    let rest = &data[written..];
                    let n = libc::write(fd, rest.as_ptr().cast(), rest.len());
                    if n <= 0 {
                        result = Err(if n < 0 { errno() } else { libc::EIO });
                        break;
                    }
                    written += n as usize;
                }
                if result.is_ok() {
                    // The mode as given, whatever the umask inherited from the host.
                    result = ok(libc::fchmod(fd, *mode));
                }
                libc::close(fd);
                result
            }
            Op::Bind { source: _, target, attrs, remount_flags } => {
                let mut path = [0u8; 32];
                let source = fd_path(&mut path, source_fd);
                ok(libc::mount(source, target.as_ptr(), null, libc::MS_BIND | libc::MS_REC, ptr::null()))?;
                restrict(target, *attrs, *remount_flags)
            }
            Op::BindWithin { source, target, attrs, remount_flags } => {
                ok(libc::mount(source.as_ptr(), target.as_ptr(), null, libc::MS_BIND, ptr::null()))?;
                restrict(target, *attrs, *remount_flags)
            }
            Op::Remount { target, flags, data } => {
                ok(libc::mount(null, target.as_ptr(), null, *flags, data.as_ptr().cast()))
            }
        }
    }
}

/// Makes the plan's root the process's root and drops the old one.
fn pivot(plan: &MountPlan) -> Result<(), Fail> {
    // SAFETY: NUL-terminated paths; the pivot_root(".", ".") idiom stacks the old root on the
    // new one, and the detach below removes it.
    unsafe {
        check(step::PIVOT, libc::chdir(plan.root.as_ptr()))?;
        check_long(step::PIVOT, libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()))?;
        check(step::PIVOT, libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
        check(step::PIVOT, libc::chdir(c"/".as_ptr()))?;
        let ro = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
        check(step::ROOT_RO, libc::mount(ptr::null(), c"/".as_ptr(), ptr::null(), ro, ptr::null()))?;
    }
    Ok(())
}

/// Brings up `lo` in the box's network namespace (a box with network access also has an
/// `eth0`, which the host configures).
fn loopback_up() -> Result<(), Fail> {
    // SAFETY: socket creation with integer arguments.
    let fd = check(step::LOOPBACK, unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: an all-zero ifreq is valid; the name "lo" fits in IFNAMSIZ.
    let mut ifr: libc::ifreq = unsafe { core::mem::zeroed() };
    ifr.ifr_name[0] = b'l' as c_char;
    ifr.ifr_name[1] = b'o' as c_char;
    // SAFETY: `ifr` is a valid ifreq for both ioctls; the union field written is the flags.
    let result = unsafe {
        check(step::LOOPBACK, libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr)).and_then(|_| {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            check(step::LOOPBACK, libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr))
        })
    };
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
    result.map(drop)
}

/// Receives one message and up to three descriptors. Returns the length (0 = host gone).
fn recv_with_fds(buf: &mut [u8], fds: &mut [c_int; 3]) -> isize {
    let mut cmsg_buf = [0u64; 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.as_mut_ptr().cast();
    msg.msg_controllen = core::mem::size_of_val(&cmsg_buf);
    let n = loop {
        // SAFETY: `msg` points at live buffers.
        let n = unsafe { libc::recvmsg(SOCK, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 || errno() != libc::EINTR {
            break n;
        }
    };
    *fds = [-1; 3];
    if n <= 0 {
        return n;
    }
    // SAFETY: walking the control messages the kernel wrote into `cmsg_buf`, within
    // msg_controllen, reading at most the descriptors each header says it carries.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        let mut next = 0;
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg) as *const c_int;
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    let fd = ptr::read_unaligned(data.add(i));
                    match fds.get_mut(next) {
                        Some(slot) => *slot = fd,
                        None => {
                            libc::close(fd);
                        }
                    }
                    next += 1;
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    n
}

/// Answers run requests until the host goes away.
fn serve(init: &Init<'_>, keeper_fds: KeeperFds) {
    loop {
        // SAFETY: the host allocated `request` with REQUEST_MAX bytes before clone; this
        // process owns its copy and nothing else refers to it while we receive.
        let buf = unsafe { core::slice::from_raw_parts_mut(init.request, proto::REQUEST_MAX) };
        let mut fds = [-1; 3];
        let n = recv_with_fds(buf, &mut fds);
        if n <= 0 {
            return;
        }
        let msg = &buf[..n as usize];
        if msg.first() == Some(&proto::RUN) {
            let done = run(init, keeper_fds, msg, fds);
            let mut out = [0u8; DONE_BYTES];
            let len = done.encode(&mut out);
            send(&out[..len]);
        }
        for fd in fds {
            if fd >= 0 {
                // SAFETY: descriptors received for this run are ours.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// What the program's process needs; lives on the keeper's stack during `clone`.
struct Exec {
    argv: *const *const c_char,
    envp: *const *const c_char,
    stdio: [c_int; 3],
    rlimits: Rlimits,
    user: u32,
    report: c_int,
}

fn now_ns() -> u64 {
    // SAFETY: an all-zero timespec is valid storage.
    let mut ts: libc::timespec = unsafe { core::mem::zeroed() };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// Fills `out` with pointers to `count` NUL-terminated strings starting at `*pos` in `msg`,
/// then a null pointer.
fn split_strings(msg: &[u8], pos: &mut usize, count: usize, out: &mut [*const c_char]) -> bool {
    if count >= out.len() {
        return false;
    }
    for slot in out.iter_mut().take(count) {
        let Some(rest) = msg.get(*pos..) else {
            return false;
        };
        let Some(len) = rest.iter().position(|&b| b == 0) else {
            return false;
        };
        *slot = rest.as_ptr().cast();
        *pos += len + 1;
    }
    out[count] = ptr::null();
    true
}

fn failed(step: u32, errno: c_int) -> Done {
    Done { failed_step: step, errno, ..Done::default() }
}

/// Runs one command: start the program, reap everything, measure, remove its IPC objects.
fn run(init: &Init<'_>, keeper: KeeperFds, msg: &[u8], stdio: [c_int; 3]) -> Done {
    let sigfd = keeper.sigfd;
    let Some(words) = proto::read_words::<HEADER_WORDS>(msg) else {
        return failed(step::EXEC, libc::EINVAL);
    };
    let header = RunHeader::from_words(words);
    if stdio.contains(&-1) {
        return failed(step::STDIO, libc::EBADF);
    }
    let mut argv = [ptr::null::<c_char>(); MAX_STRINGS + 1];
    let mut envp = [ptr::null::<c_char>(); MAX_STRINGS + 1];
    let mut pos = HEADER_BYTES;
    if header.argc == 0
        || !split_strings(msg, &mut pos, header.argc as usize, &mut argv)
        || !split_strings(msg, &mut pos, header.envc as usize, &mut envp)
    {
        return failed(step::EXEC, libc::E2BIG);
    }

    drain(sigfd);
    if keeper.last_pid >= 0 {
        // Every process of the last run is reaped, so numbering restarts after the keeper: the
        // program is pid 2 in every run, whatever ran before. Best effort: a failure only
        // leaves the numbering where it was.
        // SAFETY: a one-byte buffer written to a descriptor we own.
        unsafe { libc::pwrite(keeper.last_pid, b"1".as_ptr().cast(), 1, 0) };
    }
    let mut report = [0 as c_int; 2];
    // SAFETY: `report` is a valid array of two ints.
    if unsafe { libc::pipe2(report.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return failed(step::CLONE, errno());
    }
    let exec = Exec {
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        stdio,
        rlimits: header.rlimits,
        user: init.user,
        report: report[1],
    };
    let start = now_ns();
    // SAFETY: the child shares our memory (CLONE_VM) and we are suspended until it calls
    // execve or exits (CLONE_VFORK), so `exec`, `argv`, `envp` and the request buffer stay
    // valid and unchanged while it reads them. It runs on its own stack, which the host
    // reserved for this purpose and nothing else uses.
    let pid = unsafe {
        libc::clone(
            program_main,
            init.stack_top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &exec as *const Exec as *mut c_void,
        )
    };
    let clone_errno = errno();
    // SAFETY: the write end is ours; the child's copy is gone by now (exec or exit).
    unsafe { libc::close(report[1]) };
    let mut done = if pid < 0 { failed(step::CLONE, clone_errno) } else { supervise(pid, sigfd, start) };
    clean_ipc(init.user);
    let mut why = [0u8; 8];
    // SAFETY: `why` is a valid buffer; the pipe holds 8 bytes only if the program failed to
    // start.
    let n = unsafe { libc::read(report[0], why.as_mut_ptr().cast(), why.len()) };
    // SAFETY: the read end is ours.
    unsafe { libc::close(report[0]) };
    if n == 8 {
        let mut step_bytes = [0u8; 4];
        let mut errno_bytes = [0u8; 4];
        step_bytes.copy_from_slice(&why[..4]);
        errno_bytes.copy_from_slice(&why[4..]);
        done.failed_step = u32::from_ne_bytes(step_bytes);
        done.errno = i32::from_ne_bytes(errno_bytes);
    }
    done
}

/// Empties the signalfd of stale SIGCHLD notifications.
fn drain(sigfd: c_int) {
    let mut info = [0u8; 128];
    // SAFETY: `info` is a valid buffer of one signalfd_siginfo; the fd is non-blocking.
    while unsafe { libc::read(sigfd, info.as_mut_ptr().cast(), info.len()) } > 0 {}
}

/// CPU and memory of the processes reaped so far.
#[derive(Default)]
struct Tally {
    cpu_us: u64,
    max_rss_kb: u64,
}

impl Tally {
    fn add(&mut self, ru: &libc::rusage) {
        let us =
            |tv: libc::timeval| (tv.tv_sec as u64).wrapping_mul(1_000_000).wrapping_add(tv.tv_usec as u64);
        self.cpu_us = self.cpu_us.wrapping_add(us(ru.ru_utime)).wrapping_add(us(ru.ru_stime));
        self.max_rss_kb = self.max_rss_kb.max(ru.ru_maxrss as u64);
    }
}

/// Waits for the program's process, reaping every other process of the run on the way (we
/// are their init), then kills and reaps whatever is left.
fn supervise(pid: libc::pid_t, sigfd: c_int, start: u64) -> Done {
    let mut tally = Tally::default();
    let mut status = None;
    let mut end = 0;
    while status.is_none() {
        loop {
            let mut st = 0;
            // SAFETY: an all-zero rusage is valid storage.
            let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
            // SAFETY: valid out-pointers.
            let r = unsafe { libc::wait4(-1, &mut st, libc::WNOHANG | libc::__WALL, &mut ru) };
            if r <= 0 {
                break;
            }
            tally.add(&ru);
            if r == pid {
                status = Some(st);
                end = now_ns();
            }
        }
        if status.is_some() {
            break;
        }
        let mut fds = [
            libc::pollfd { fd: SOCK, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sigfd, events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: `fds` is a valid array of two pollfds.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if fds[1].revents != 0 {
            drain(sigfd);
        }
        if fds[0].revents != 0 {
            let mut cmd = [0u8; 8];
            // SAFETY: `cmd` is a valid buffer.
            let n = unsafe { libc::recv(SOCK, cmd.as_mut_ptr().cast(), cmd.len(), libc::MSG_DONTWAIT) };
            if n == 0 || (n < 0 && errno() != libc::EAGAIN && errno() != libc::EINTR) {
                // The host is gone: end the box. Every process in it dies with us, pid 1.
                // SAFETY: signalling and exiting have no memory-safety preconditions.
                unsafe {
                    libc::kill(-1, libc::SIGKILL);
                    libc::_exit(1);
                }
            }
            if n > 0 && cmd[0] == proto::KILL {
                // SAFETY: kill(-1) from pid 1 reaches every other process of the box.
                unsafe { libc::kill(-1, libc::SIGKILL) };
            }
        }
    }
    // Whatever the program left behind (daemons, double forks) dies now.
    // SAFETY: as above.
    unsafe { libc::kill(-1, libc::SIGKILL) };
    loop {
        let mut st = 0;
        // SAFETY: an all-zero rusage is valid storage.
        let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
        // SAFETY: valid out-pointers.
        let r = unsafe { libc::wait4(-1, &mut st, libc::__WALL, &mut ru) };
        if r > 0 {
            tally.add(&ru);
        } else if errno() != libc::EINTR {
            break;
        }
    }
    Done {
        wait_status: status.unwrap_or(0),
        failed_step: 0,
        errno: 0,
        cpu_us: tally.cpu_us,
        max_rss_kb: tally.max_rss_kb,
        wall_ns: end.wrapping_sub(start),
    }
}

/// The program's process: limits, stdio, ids, capabilities, seccomp, then `execve`.
extern "C" fn program_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Exec` on the suspended keeper's stack (see `run`).
    let exec = unsafe { &*(arg as *const Exec) };
    let fail = match prepare_program(exec) {
        Ok(()) => execute(exec),
        Err(fail) => fail,
    };
    let mut why = [0u8; 8];
    why[..4].copy_from_slice(&fail.step.to_ne_bytes());
    why[4..].copy_from_slice(&fail.errno.to_ne_bytes());
    // SAFETY: `why` is a valid buffer; then leave without running anything else.
    unsafe {
        libc::write(exec.report, why.as_ptr().cast(), why.len());
        libc::_exit(127)
    }
}

fn set_rlimit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> Result<(), Fail> {
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `current` is a valid out-pointer.
    check(step::RLIMIT, unsafe { libc::getrlimit(resource, &mut current) })?;
    // Only the initial namespace's CAP_SYS_RESOURCE may raise a hard limit: stay under it.
    let max = hard.min(current.rlim_max);
    let limit = libc::rlimit { rlim_cur: soft.min(max), rlim_max: max };
    // SAFETY: `limit` is a valid rlimit.
    check(step::RLIMIT, unsafe { libc::setrlimit(resource, &limit) }).map(drop)
}

fn prepare_program(exec: &Exec) -> Result<(), Fail> {
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset.
    let mut empty: libc::sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `empty` is valid; unblocks every signal the keeper blocked.
    unsafe {
        libc::sigemptyset(&mut empty);
        check(step::SIGNALS, libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut()))?;
    }
    let r = exec.rlimits;
    set_rlimit(libc::RLIMIT_CPU, r.cpu_secs, r.cpu_secs.saturating_add(1))?;
    set_rlimit(libc::RLIMIT_AS, r.address_space, r.address_space)?;
    set_rlimit(libc::RLIMIT_STACK, r.stack, r.stack)?;
    set_rlimit(libc::RLIMIT_FSIZE, r.file_size, r.file_size)?;
    set_rlimit(libc::RLIMIT_NOFILE, r.open_files, r.open_files)?;
    set_rlimit(libc::RLIMIT_NPROC, r.processes, r.processes)?;
    set_rlimit(libc::RLIMIT_CORE, 0, 0)?;
    set_rlimit(libc::RLIMIT_MSGQUEUE, 0, 0)?;

    for (fd, &from) in exec.stdio.iter().enumerate() {
        // SAFETY: plain descriptor duplication; dup2 clears close-on-exec on the copy.
        check(step::STDIO, unsafe { libc::dup2(from, fd as c_int) })?;
    }
    // Everything else closes at exec (all our descriptors are close-on-exec already; this is
    // the belt to those braces). Old kernels without the flag keep the braces.
    // SAFETY: close_range only changes descriptor flags.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    let id = exec.user;
    check(step::SET_IDS, set_ids(id))?;
    // Leaving uid 0 already cleared them; say so explicitly. The bounding set is empty and the
    // seccomp filter in place since the keeper's setup.
    set_caps(0).map_err(|errno| Fail { step: step::CAPS, errno })?;
    // As the program's user: the box is its own (mode 0700).
    // SAFETY: NUL-terminated literal.
    check(step::CHDIR, unsafe { libc::chdir(c"/box".as_ptr()) })?;
    // SAFETY: prctl with integer arguments; old kernels without ambient caps fail harmlessly.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    // SAFETY: prctl with integer arguments.
    check(step::NO_NEW_PRIVS, unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(())
}

/// `execve` the program, searching `PATH` (from its environment, or a default) when the name
/// has no slash. Returns only on failure.
fn execute(exec: &Exec) -> Fail {
    // SAFETY: argv has at least one entry (checked in `run`) and is NULL-terminated.
    let name_ptr = unsafe { *exec.argv };
    // SAFETY: every argv entry points at a NUL-terminated string in the request buffer.
    let name = unsafe { core::ffi::CStr::from_ptr(name_ptr) }.to_bytes();
    if name.contains(&b'/') {
        // SAFETY: NULL-terminated arrays of NUL-terminated strings.
        unsafe { libc::execve(name_ptr, exec.argv, exec.envp) };
        return Fail { step: step::EXEC, errno: errno() };
    }
    let mut path: &[u8] = b"/usr/local/bin:/usr/bin:/bin";
    let mut i = 0;
    loop {
        // SAFETY: envp is NULL-terminated; each entry is a NUL-terminated string.
        let entry = unsafe { *exec.envp.add(i) };
        if entry.is_null() {
            break;
        }
        // SAFETY: as above.
        let bytes = unsafe { core::ffi::CStr::from_ptr(entry) }.to_bytes();
        if let Some(value) = bytes.strip_prefix(b"PATH=") {
            path = value;
            break;
        }
        i += 1;
    }
    let mut best = libc::ENOENT;
    let mut full = [0u8; 4096];
    for dir in path.split(|&b| b == b':') {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let len = dir.len() + 1 + name.len();
        let Some(out) = full.get_mut(..len + 1) else {
            continue;
        };
        out[..dir.len()].copy_from_slice(dir);
        out[dir.len()] = b'/';
        out[dir.len() + 1..len].copy_from_slice(name);
        out[len] = 0;
        // SAFETY: `full` holds a NUL-terminated path; arrays as above.
        unsafe { libc::execve(full.as_ptr().cast(), exec.argv, exec.envp) };
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => best = libc::EACCES,
            other => {
                return Fail { step: step::EXEC, errno: other };
            }
        }
    }
    Fail { step: step::EXEC, errno: best }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_paths_are_formatted_without_allocating() {
        let mut buf = [0u8; 32];
        let p = fd_path(&mut buf, 1234);
        // SAFETY: fd_path writes a NUL-terminated string into `buf`.
        assert_eq!(unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes(), b"/proc/self/fd/1234");
        let p = fd_path(&mut buf, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes(), b"/proc/self/fd/0");
    }

    #[test]
    fn strings_split_into_null_terminated_pointer_arrays() {
        let msg = b"HEADERab\0c\0X=1\0";
        let mut pos = 6;
        let mut argv = [ptr::null::<c_char>(); 4];
        assert!(split_strings(msg, &mut pos, 2, &mut argv));
        assert!(argv[2].is_null());
        // SAFETY: pointers into `msg`, NUL-terminated.
        let first = unsafe { core::ffi::CStr::from_ptr(argv[0]) };
        assert_eq!(first.to_bytes(), b"ab");
        let mut envp = [ptr::null::<c_char>(); 2];
        assert!(split_strings(msg, &mut pos, 1, &mut envp));
        assert!(!split_strings(msg, &mut pos, 1, &mut envp), "no strings left");
        assert!(!split_strings(msg, &mut 6, 4, &mut argv), "too many for the array");
    }
}
