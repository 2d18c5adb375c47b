//! Keepers: one long-lived process per box, living in the box's namespaces as its pid 1.
//!
//! A keeper builds the box's root once, then serves runs: for each it mounts a fresh `/tmp`,
//! starts the program (which drops every privilege and installs seccomp before `execve`),
//! reaps every process of the run, kills what is left, and reports. Reusing the keeper makes a
//! run cost about as much as a plain `posix_spawn`; nothing of one run survives into the next
//! (processes are killed, `/tmp` and the IPC namespace are new, the cgroup counters reset).

mod child;
pub(crate) mod proto;

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use crate::cgroup::{Hierarchy, SlotCgroup};
use crate::error::SandboxError;
use crate::net::Network;
use crate::rootfs::RootFs;
use crate::seccomp::Filter;
use crate::slots::Slot;
use crate::tree::{BoxImage, RootState};
use crate::{Bind, sys};

/// The program's uid and gid inside every box.
pub(crate) const INNER_USER: u32 = 1000;
/// Stack of the program's process between `clone` and `execve`.
const STACK_BYTES: usize = 256 * 1024;
/// How long a keeper may take to build its root.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// What every keeper of a sandbox shares.
#[derive(Debug)]
pub(crate) struct Blueprint<'a> {
    pub(crate) rootfs: &'a RootFs,
    pub(crate) binds: &'a [Bind],
    pub(crate) tmp_kb: u64,
    pub(crate) box_kb: u64,
    pub(crate) filter: &'a Filter,
    pub(crate) hierarchy: Option<&'a Hierarchy>,
    pub(crate) cap_last: libc::c_int,
    /// Outbound network access, for sandboxes that give it.
    pub(crate) network: Option<&'a Network>,
    /// CPUs each box may use at once (0: no quota).
    pub(crate) box_cpus: f64,
}

/// The host's handle on a keeper.
#[derive(Debug)]
pub(crate) struct Keeper {
    pid: libc::pid_t,
    sock: OwnedFd,
    /// The slot's cgroup, when cgroups are in use.
    pub(crate) cgroup: Option<SlotCgroup>,
    /// The slot: ids, lock.
    pub(crate) slot: Slot,
    /// Where the host reaches `/box`: a caller's directory bound there, or the keeper's own
    /// tmpfs through `/proc/<pid>/root/box`.
    pub(crate) box_dir: PathBuf,
    /// How `/box` looked when the box was new (boxes of their own only: those are reused).
    fresh_box: Option<RootState>,
    /// The most `/box` may hold (bytes), as far as the host ever copies it.
    box_bytes: u64,
    /// Set when the keeper failed to answer; it is then never reused.
    pub(crate) broken: bool,
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io { what: what.to_owned(), source }
}

impl Keeper {
    /// Starts a keeper for `slot` and waits until it is ready. Its `/box` is `box_source`, or
    /// a tmpfs of its own (gone with the keeper) when `None`.
    pub(crate) fn spawn(
        blueprint: &Blueprint<'_>,
        slot: Slot,
        box_source: Option<PathBuf>,
    ) -> Result<Keeper, SandboxError> {
        let plan = blueprint
            .rootfs
            .plan(box_source.as_deref(), blueprint.box_kb, blueprint.tmp_kb, blueprint.binds)
            .map_err(io_err("plan the box's root"))?;
        let cgroup = match blueprint.hierarchy {
            Some(h) => {
                let cpus = (blueprint.box_cpus > 0.0).then_some(blueprint.box_cpus);
                Some(h.create_slot(slot.id, cpus).map_err(io_err("create the slot's cgroup"))?)
            }
            None => None,
        };
        let (host, child) = sys::seqpacket_pair().map_err(io_err("create a control socket"))?;
        let mut request = vec![0u8; proto::REQUEST_MAX];
        let mut stack = vec![0u8; STACK_BYTES];
        let end = stack.as_mut_ptr().wrapping_add(stack.len());
        let stack_top = end.wrapping_sub(end as usize % 16);
        let fprog = blueprint.filter.as_fprog();
        let init = child::Init {
            sock: child.as_raw_fd(),
            plan: &plan,
            filter: &fprog,
            request: request.as_mut_ptr(),
            stack_top,
            cap_last: blueprint.cap_last,
            user: INNER_USER,
        };
        let pid = child::clone_keeper(&init).map_err(io_err("start a keeper (clone with new namespaces)"))?;
        drop(child);
        // The keeper has its own copies of the buffers now.
        drop((request, stack));
        let own_box = box_source.is_none();
        let box_dir = box_source.unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}/root/box")));
        let box_bytes = blueprint.box_kb.saturating_mul(1024);
        let keeper =
            Keeper { pid, sock: host, cgroup, slot, box_dir, fresh_box: None, box_bytes, broken: true };
        keeper.map_ids().map_err(io_err("map the box's user ids"))?;
        if let Some(cgroup) = &keeper.cgroup {
            cgroup.add(pid).map_err(io_err("move the keeper into its cgroup"))?;
        }
        if let Some(network) = blueprint.network {
            network.attach(keeper.slot.id, pid)?;
        }
        sys::send(keeper.sock.as_fd(), &[proto::GO]).map_err(io_err("start the keeper"))?;
        let mut keeper = keeper.wait_ready(&plan)?;
        if let Some(cgroup) = &mut keeper.cgroup {
            cgroup.settle().map_err(io_err("read the slot's cgroup"))?;
        }
        if own_box {
            keeper.fresh_box =
                Some(RootState::read(&keeper.box_dir).map_err(io_err("read the new box's root"))?);
        }
        Ok(keeper)
    }

    /// Maps inside uid/gid 0 to the keeper's host id and 1000 to the program's.
    fn map_ids(&self) -> io::Result<()> {
        let map = format!("0 {} 1\n{INNER_USER} {} 1\n", self.slot.keeper_id, self.slot.user_id);
        fs::write(format!("/proc/{}/uid_map", self.pid), &map)?;
        fs::write(format!("/proc/{}/gid_map", self.pid), &map)
    }

    fn wait_ready(mut self, plan: &crate::rootfs::MountPlan) -> Result<Keeper, SandboxError> {
        let mut pfd = [libc::pollfd { fd: self.sock.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        if sys::poll(&mut pfd, Some(SETUP_TIMEOUT)).map_err(io_err("wait for the keeper"))? == 0 {
            return Err(SandboxError::KeeperLost("not ready within the setup timeout"));
        }
        let mut buf = [0u8; 64];
        let n = sys::recv(self.sock.as_fd(), &mut buf).map_err(io_err("read from the keeper"))?;
        match buf.first() {
            Some(&proto::READY) if n == 1 => {
                self.broken = false;
                Ok(self)
            }
            Some(&proto::FAILED) => {
                let [step, errno]: [u64; 2] =
                    proto::read_words(&buf[..n]).ok_or(SandboxError::KeeperLost("garbled setup report"))?;
                let step = step as u32;
                let what = match plan.ops.get(step as usize) {
                    Some((_, what)) => what.clone(),
                    None => proto::step::describe(step).to_owned(),
                };
                Err(SandboxError::Setup { step: what, source: io::Error::from_raw_os_error(errno as i32) })
            }
            _ if n == 0 => Err(SandboxError::KeeperLost("exited during setup")),
            _ => Err(SandboxError::KeeperLost("garbled setup report")),
        }
    }

    /// Whether the keeper still answers: its socket is open and has nothing unexpected
    /// waiting (an idle keeper never speaks first, so anything readable means it is gone).
    pub(crate) fn is_alive(&self) -> bool {
        let mut pfd = [libc::pollfd { fd: self.sock.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        matches!(sys::poll(&mut pfd, Some(Duration::ZERO)), Ok(0))
    }

    /// The control socket, for polling.
    pub(crate) fn sock(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The keeper's pid on the host.
    pub(crate) fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Sends a run request with stdin, stdout and stderr attached.
    pub(crate) fn send_run(&self, request: &[u8], stdio: [RawFd; 3]) -> io::Result<()> {
        sys::send_with_fds(self.sock.as_fd(), request, &stdio)
    }

    /// Asks the keeper to kill every process of the current run.
    pub(crate) fn send_kill(&self) -> io::Result<()> {
        sys::send(self.sock.as_fd(), &[proto::KILL])
    }

    /// Reads the keeper's report of a finished run.
    pub(crate) fn read_done(&self) -> io::Result<proto::Done> {
        let mut buf = [0u8; proto::DONE_BYTES];
        let n = sys::recv(self.sock.as_fd(), &mut buf)?;
        proto::Done::decode(&buf[..n])
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "the keeper went away"))
    }

    /// Empties `/tmp` after a run, through the keeper's root (no symlink is followed).
    pub(crate) fn wipe_tmp(&self) -> io::Result<()> {
        crate::tree::wipe(&PathBuf::from(format!("/proc/{}/root/tmp", self.pid)))
    }

    /// Empties `/box` and recreates `image` in it (as the box's user, so the memory its files
    /// take is charged to this process, not to the box); a box of its own gets its root back
    /// as it was when new.
    pub(crate) fn rebuild_box(&self, image: &BoxImage) -> io::Result<()> {
        crate::tree::wipe(&self.box_dir)?;
        image.replay(&self.box_dir, self.slot.user_id, self.slot.user_id)?;
        match &self.fresh_box {
            Some(fresh) => fresh.restore(&self.box_dir),
            None => Ok(()),
        }
    }

    /// A copy of what `/box` holds now.
    pub(crate) fn capture_box(&self) -> io::Result<BoxImage> {
        BoxImage::capture(&self.box_dir, self.box_bytes)
    }

    /// Takes the files earlier runs left in `/box` off the box's memory account (rewriting
    /// them from the host), so that a run cannot free them to allocate past its limit.
    pub(crate) fn reown_box(&self) -> io::Result<()> {
        let charged = self.cgroup.as_ref().map_or(Ok(0), SlotCgroup::box_charge)?;
        if charged == 0 {
            return Ok(());
        }
        self.rebuild_box(&self.capture_box()?)
    }

    /// Empties the box and puts its root back as it was when new, for its next user. Fails
    /// when that cannot be done (or the box is a caller's directory): the keeper must then not
    /// be reused.
    pub(crate) fn reset_box(&self) -> io::Result<()> {
        let fresh = self.fresh_box.as_ref().ok_or(io::ErrorKind::Unsupported)?;
        crate::tree::wipe(&self.box_dir)?;
        fresh.restore(&self.box_dir)
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        // The keeper is pid 1 of the box: when it dies, the kernel kills everything in it.
        let _ = sys::kill(self.pid, libc::SIGKILL);
        let _ = sys::waitpid(self.pid);
    }
}
