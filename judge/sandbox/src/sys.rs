//! Safe wrappers over the few system calls the host side needs and `std` does not offer.
//!
//! Everything that runs inside the sandbox after `clone` lives in `keeper::child` instead:
//! that code may not allocate, and these wrappers may.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

/// Turns a `-1`-on-error return value into an `io::Result`.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn cvt_isize(r: isize) -> io::Result<usize> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
}

/// Retries a call while it fails with `EINTR`.
pub(crate) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

pub(crate) fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// A connected pair of `SOCK_SEQPACKET` sockets (message boundaries kept), close-on-exec.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe {
        libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr())
    })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// An anonymous in-memory file holding `data`, positioned at its start.
pub(crate) fn memfd_with(data: &[u8]) -> io::Result<OwnedFd> {
    // SAFETY: the name is a NUL-terminated literal.
    let fd = cvt(unsafe { libc::memfd_create(c"stdin".as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: `fd` was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut written = 0;
    while written < data.len() {
        let rest = &data[written..];
        let n = retry(|| {
            // SAFETY: `rest` is a valid buffer of `rest.len()` bytes.
            cvt_isize(unsafe { libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) })
        })?;
        written += n;
    }
    // SAFETY: plain lseek on a descriptor we own.
    if unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Sets or clears `O_NONBLOCK`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller keeps open.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let flags = if on { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) })?;
    Ok(())
}

/// Sends one message with up to four descriptors attached (`SCM_RIGHTS`).
pub(crate) fn send_with_fds(sock: BorrowedFd<'_>, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    const MAX_FDS: usize = 4;
    assert!(fds.len() <= MAX_FDS, "at most {MAX_FDS} descriptors per message");
    // An aligned control buffer big enough for MAX_FDS descriptors.
    let mut cmsg_buf = [0u64; 8];
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut _, iov_len: data.len() };
    // SAFETY: an all-zero msghdr is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let fd_bytes = std::mem::size_of_val(fds);
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(fd_bytes as u32) } as usize;
        msg.msg_control = cmsg_buf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: msg_control points at `cmsg_buf`, which is larger than `space`, so the first
        // header and its data fit; we write exactly `fd_bytes` bytes of data.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), fds.len());
        }
    }
    // SAFETY: `msg` points at live buffers for the duration of the call.
    let n = retry(|| cvt_isize(unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) }))?;
    if n != data.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short send on control socket"));
    }
    Ok(())
}

/// Sends one message without descriptors.
pub(crate) fn send(sock: BorrowedFd<'_>, data: &[u8]) -> io::Result<()> {
    send_with_fds(sock, data, &[])
}

/// Receives one message; `Ok(0)` means the peer is gone.
pub(crate) fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes.
        cvt_isize(unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
    })
}

/// Reads what is available; `Ok(0)` is end of file.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes.
    retry(|| cvt_isize(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }))
}

/// Reads from offset 0 of a descriptor (cgroup files are re-read this way without reopening).
pub(crate) fn pread0(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes.
        cvt_isize(unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
    })
}

/// Writes all of `data` at offset 0.
pub(crate) fn pwrite0(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<()> {
    let n = retry(|| {
        // SAFETY: `data` is a valid buffer of `data.len()` bytes.
        cvt_isize(unsafe { libc::pwrite(fd.as_raw_fd(), data.as_ptr().cast(), data.len(), 0) })
    })?;
    if n != data.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

/// Waits until one of `fds` is ready or `timeout` passes; returns how many are ready.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up so that a short timeout never becomes a busy loop of zero-length polls.
        Some(t) => t.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int,
    };
    // SAFETY: `fds` is a valid slice of pollfd structures.
    let n = cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) });
    match n {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        other => other.map(|n| n as usize),
    }
}

/// Sends a signal to a process.
pub(crate) fn kill(pid: libc::pid_t, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    cvt(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// Waits for a child to end and returns its wait status.
pub(crate) fn waitpid(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    // SAFETY: `status` is a valid int for the kernel to fill.
    retry(|| cvt(unsafe { libc::waitpid(pid, &mut status, libc::__WALL) }))?;
    Ok(status)
}

/// Takes an exclusive `flock` without waiting; `Ok(false)` when someone else holds it.
pub(crate) fn try_flock(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: flock has no memory-safety preconditions.
    match cvt(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Restores the thread's filesystem ids when dropped.
pub(crate) struct FsIds {
    uid: u32,
    gid: u32,
}

impl FsIds {
    /// Makes this thread create files as `uid`/`gid` (and lose root's file access meanwhile).
    pub(crate) fn become_(uid: u32, gid: u32) -> FsIds {
        // SAFETY: setfsgid/setfsuid change only this thread's filesystem ids; they return the
        // previous ones, restored on drop.
        unsafe { FsIds { gid: libc::setfsgid(gid) as u32, uid: libc::setfsuid(uid) as u32 } }
    }
}

impl Drop for FsIds {
    fn drop(&mut self) {
        // SAFETY: as above, putting back what was there.
        unsafe {
            libc::setfsuid(self.uid);
            libc::setfsgid(self.gid);
        }
    }
}

/// Creates or replaces the file `relative` under `dir` with `data`, owned by `uid`/`gid`
/// (created as that user: the box may be a tmpfs of the keeper's user namespace, where only
/// its ids can own files), creating missing parent directories (mode 0755). No symlink is
/// followed: a program that planted one in the box cannot make the host write elsewhere.
pub(crate) fn write_beneath(
    dir: &Path,
    relative: &Path,
    data: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> io::Result<()> {
    use std::path::Component;
    let invalid =
        || io::Error::new(io::ErrorKind::InvalidInput, format!("invalid box path {}", relative.display()));
    let names: Vec<CString> = relative
        .components()
        .map(|c| match c {
            Component::Normal(name) => CString::new(name.as_bytes()).map_err(|_| invalid()),
            _ => Err(invalid()),
        })
        .collect::<io::Result<_>>()?;
    let (file, parents) = names.split_last().ok_or_else(invalid)?;
    let dir = cstring(dir)?;
    let nofollow_dir = libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_RDONLY;
    // Opened as root (reaching /proc/<keeper>/root needs it); everything below as the user.
    // SAFETY: `dir` is NUL-terminated; the descriptor is owned right away.
    let mut current = unsafe { OwnedFd::from_raw_fd(cvt(libc::open(dir.as_ptr(), nofollow_dir))?) };
    let _ids = FsIds::become_(uid, gid);
    for name in parents {
        // SAFETY: `name` is NUL-terminated; `current` is an open directory.
        match cvt(unsafe { libc::mkdirat(current.as_raw_fd(), name.as_ptr(), 0o755) }) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        // SAFETY: as above; O_NOFOLLOW refuses a symlink in place of the directory.
        let next = cvt(unsafe { libc::openat(current.as_raw_fd(), name.as_ptr(), nofollow_dir) })?;
        // SAFETY: `next` was just opened and is owned by nobody else.
        current = unsafe { OwnedFd::from_raw_fd(next) };
    }
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: as above.
    let fd = cvt(unsafe { libc::openat(current.as_raw_fd(), file.as_ptr(), flags, mode) })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: a plain call on a descriptor we own; O_CREAT's mode is masked by the umask.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })?;
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, data)
}

/// The `ST_*` flags of the filesystem mounted at or containing `path`.
pub(crate) fn statvfs_flags(path: &Path) -> io::Result<libc::c_ulong> {
    let c = cstring(path)?;
    // SAFETY: an all-zero statvfs is a valid buffer for the kernel to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is a valid out-pointer.
    cvt(unsafe { libc::statvfs(c.as_ptr(), &mut st) })?;
    Ok(st.f_flag)
}

/// The effective user id of this process.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The process id of this process.
pub(crate) fn getpid() -> libc::pid_t {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

/// Ticks of `sysconf(_SC_NPROCESSORS_ONLN)`: the number of online CPUs.
pub(crate) fn online_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n < 1 { 1 } else { n as usize }
}
