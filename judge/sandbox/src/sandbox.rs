//! The public entry point: a [`Sandbox`] hands out [`Lease`]s on boxes and keeps used boxes
//! warm for the next caller.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::cgroup::Hierarchy;
use crate::config::SandboxConfig;
use crate::keeper::{Blueprint, Keeper};
use crate::net::Network;
use crate::outcome::{Enforcement, RunResult};
use crate::rootfs::RootFs;
use crate::run::{self, RunSpec, Stream};
use crate::seccomp::Filter;
use crate::slots::{self, Slot};
use crate::tree::BoxImage;
use crate::{SandboxError, sys};

/// A source of isolated boxes. Cheap to clone; every clone shares one pool of ready boxes.
///
/// ```no_run
/// use judge_sandbox::{RunSpec, Sandbox, SandboxConfig, Status, Stdin};
///
/// let sandbox = Sandbox::new(SandboxConfig::default())?;
/// let mut lease = sandbox.lease()?;
/// lease.write_file("main.py".as_ref(), b"print(input())", false)?;
/// let spec = RunSpec::new("python3").args(["main.py"]).stdin(Stdin::Bytes(b"hi\n".to_vec()));
/// let result = lease.run(&spec)?;
/// assert_eq!(result.status, Status::Ok);
/// assert_eq!(result.stdout, b"hi\n");
/// # Ok::<(), judge_sandbox::SandboxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    // Fields drop in order: the idle keepers go before the /etc and root they bind.
    idle: Mutex<Vec<Keeper>>,
    config: SandboxConfig,
    rootfs: RootFs,
    filter: Filter,
    hierarchy: Result<Hierarchy, String>,
    cap_last: libc::c_int,
    network: Option<Network>,
}

fn io_err(what: &'static str) -> impl FnOnce(std::io::Error) -> SandboxError {
    move |source| SandboxError::Io { what: what.to_owned(), source }
}

impl Sandbox {
    /// Prepares a sandbox: checks privileges, finds the cgroup hierarchy, prepares the shared
    /// root filesystem pieces. No box exists until the first lease.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        if sys::geteuid() != 0 {
            return Err(SandboxError::NotRoot);
        }
        for bind in &config.binds {
            bind.check()?;
        }
        slots::ensure_dir(&config.run_dir, 0o711).map_err(io_err("create the run directory"))?;
        let hierarchy = if config.use_cgroups {
            Hierarchy::detect()
        } else {
            Err("disabled by configuration".to_owned())
        };
        let network = match &config.network {
            Some(network) => Some(Network::prepare(network, config.max_slots)?),
            None => None,
        };
        let rootfs = RootFs::prepare(&config.run_dir, &config.etc_entries)
            .map_err(io_err("prepare the box's /etc"))?;
        let cap_last = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(63);
        Ok(Self {
            shared: Arc::new(Shared {
                idle: Mutex::new(Vec::new()),
                config,
                rootfs,
                filter: Filter::new(),
                hierarchy,
                cap_last,
                network,
            }),
        })
    }

    /// Which mechanism enforces memory and process limits on this host.
    pub fn enforcement(&self) -> Enforcement {
        match &self.shared.hierarchy {
            Ok(Hierarchy::V1 { .. }) => Enforcement::CgroupV1,
            Ok(Hierarchy::V2 { .. }) => Enforcement::CgroupV2,
            Err(why) => Enforcement::Rlimits(why.clone()),
        }
    }

    /// Whether each box gets a CPU quota (`SandboxConfig::box_cpus`): there is a cgroup
    /// hierarchy with the cpu controller, and a quota is configured.
    pub fn limits_cpu(&self) -> bool {
        self.shared.config.box_cpus > 0.0 && self.shared.hierarchy.as_ref().is_ok_and(Hierarchy::limits_cpu)
    }

    fn blueprint(&self) -> Blueprint<'_> {
        let s = &*self.shared;
        Blueprint {
            rootfs: &s.rootfs,
            binds: &s.config.binds,
            tmp_kb: s.config.tmp_kb,
            box_kb: s.config.box_kb,
            filter: &s.filter,
            hierarchy: s.hierarchy.as_ref().ok(),
            cap_last: s.cap_last,
            network: s.network.as_ref(),
            box_cpus: s.config.box_cpus,
        }
    }

    fn acquire_slot(&self) -> Result<Slot, SandboxError> {
        let c = &self.shared.config;
        Slot::acquire(&c.lock_dir, c.max_slots, c.uid_base).map_err(io_err("take a sandbox slot"))
    }

    fn spawn_pooled(&self) -> Result<Keeper, SandboxError> {
        let slot = self.acquire_slot()?;
        Keeper::spawn(&self.blueprint(), slot, None)
    }

    /// Takes a box with an empty `/box`: a warm one when available, a new one otherwise.
    pub fn lease(&self) -> Result<Lease, SandboxError> {
        let keeper = loop {
            let warm = self.shared.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            match warm {
                // A keeper that died while idle (killed from outside) is dropped, not handed out.
                Some(k) if !k.is_alive() => continue,
                Some(k) => break k,
                None => break self.spawn_pooled()?,
            }
        };
        Ok(Lease { sandbox: self.clone(), keeper: Some(keeper), pooled: true, image: None })
    }

    /// Takes a new box whose `/box` is the host directory `dir`. The directory (and all it
    /// holds) is given to the box's user so the program can write there; the box is not
    /// reused.
    pub fn lease_with_box(&self, dir: &Path) -> Result<Lease, SandboxError> {
        let slot = self.acquire_slot()?;
        crate::tree::chown_tree(dir, slot.user_id, slot.user_id)
            .map_err(io_err("give the box directory to the sandbox user"))?;
        let keeper = Keeper::spawn(&self.blueprint(), slot, Some(dir.to_owned()))?;
        Ok(Lease { sandbox: self.clone(), keeper: Some(keeper), pooled: false, image: None })
    }

    /// Starts boxes until `n` are ready for reuse (at most the configured idle count).
    pub fn warm(&self, n: usize) -> Result<(), SandboxError> {
        let n = n.min(self.shared.config.max_idle);
        loop {
            if self.shared.idle.lock().unwrap_or_else(PoisonError::into_inner).len() >= n {
                return Ok(());
            }
            let keeper = self.spawn_pooled()?;
            self.shared.idle.lock().unwrap_or_else(PoisonError::into_inner).push(keeper);
        }
    }

    /// Runs one command in a fresh (or warm and emptied) box.
    pub fn run(&self, spec: &RunSpec) -> Result<RunResult, SandboxError> {
        self.lease()?.run(spec)
    }

    fn release(&self, keeper: Keeper) {
        // A box that cannot be made as new again is destroyed (dropping its keeper), not reused.
        if keeper.broken || keeper.reset_box().is_err() {
            return;
        }
        let mut idle = self.shared.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.shared.config.max_idle {
            idle.push(keeper);
        }
    }
}

/// One box held by one caller: files written with [`Lease::write_file`] stay between runs
/// (compile, then run); processes, `/tmp` and IPC objects do not. [`Lease::checkpoint`] and
/// [`Lease::restore`] make runs start from one state of `/box`. Dropping the lease empties the
/// box and returns it to the pool.
#[derive(Debug)]
pub struct Lease {
    sandbox: Sandbox,
    keeper: Option<Keeper>,
    pooled: bool,
    /// `/box` at the last checkpoint.
    image: Option<BoxImage>,
}

impl Lease {
    fn keeper(&self) -> Result<&Keeper, SandboxError> {
        self.keeper.as_ref().ok_or(SandboxError::KeeperLost("an earlier run lost it"))
    }

    /// The host directory that is `/box` inside.
    pub fn box_dir(&self) -> &Path {
        self.keeper.as_ref().map_or(Path::new(""), |k| k.box_dir.as_path())
    }

    /// The host uid (and gid) programs in this box run as; no other box uses it while this
    /// lease lives.
    pub fn host_uid(&self) -> u32 {
        self.keeper.as_ref().map_or(0, |k| k.slot.user_id)
    }

    /// Writes a file into the box (parents created), owned by the box's user. Symlinks the
    /// program may have planted are never followed.
    pub fn write_file(&self, relative: &Path, contents: &[u8], executable: bool) -> Result<(), SandboxError> {
        let k = self.keeper()?;
        let id = k.slot.user_id;
        let mode = if executable { 0o755 } else { 0o644 };
        sys::write_beneath(&k.box_dir, relative, contents, mode, id, id).map_err(|source| SandboxError::Io {
            what: format!("write {} into the box", relative.display()),
            source,
        })
    }

    /// Makes what `/box` holds now the state [`Lease::restore`] returns to (after a compile
    /// step, say), and takes the memory of those files off the box's account: they are
    /// rewritten by this process, so the cgroup's memory limit holds for a later run whatever
    /// the box holds (a program deleting them frees nothing it could use). Fails when the box
    /// holds more than its configured size (a sparse file counts whole).
    pub fn checkpoint(&mut self) -> Result<(), SandboxError> {
        let keeper = self.keeper()?;
        let image = keeper.capture_box().map_err(io_err("read the box"))?;
        keeper.rebuild_box(&image).map_err(io_err("rewrite the box"))?;
        self.image = Some(image);
        Ok(())
    }

    /// Puts `/box` back as it was at the last [`Lease::checkpoint`] (empty without one), so
    /// that a run starts from there whatever earlier runs left.
    pub fn restore(&mut self) -> Result<(), SandboxError> {
        let empty = BoxImage::default();
        let image = self.image.as_ref().unwrap_or(&empty);
        self.keeper()?.rebuild_box(image).map_err(io_err("restore the box"))
    }

    /// Runs a command in this box.
    pub fn run(&mut self, spec: &RunSpec) -> Result<RunResult, SandboxError> {
        self.run_observed(spec, &mut |_, _| {})
    }

    /// Runs a command, handing each chunk of output to `observer` as it arrives.
    pub fn run_observed(
        &mut self,
        spec: &RunSpec,
        observer: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<RunResult, SandboxError> {
        self.run_controlled(spec, observer, None)
    }

    /// Runs a command, handing output to `observer`, and stops it (status `Cancelled`) soon
    /// after `cancel` becomes true.
    pub fn run_controlled(
        &mut self,
        spec: &RunSpec,
        observer: &mut dyn FnMut(Stream, &[u8]),
        cancel: Option<&std::sync::atomic::AtomicBool>,
    ) -> Result<RunResult, SandboxError> {
        let enforcement = self.sandbox.enforcement();
        let keeper = self.keeper.as_mut().ok_or(SandboxError::KeeperLost("an earlier run lost it"))?;
        let result = run::execute(keeper, spec, &enforcement, observer, cancel);
        if keeper.broken {
            // A keeper that stopped answering is killed (and its box with it) right away.
            self.keeper = None;
        }
        result
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.take()
            && self.pooled
        {
            self.sandbox.release(keeper);
        }
    }
}
