//! Control groups, v1 and v2: one cgroup per keeper slot, reset between runs.
//!
//! A run's processes live in the cgroup of the keeper that starts them, so the memory limit,
//! the process limit and the memory peak cover every process and thread of the run. The cgroup
//! lives as long as its keeper: creating a memory cgroup and moving a process into it costs far
//! more than a run of `/bin/true`, so between runs the counters are reset instead (on cgroup v2
//! kernels that cannot reset `memory.peak`, the cgroup is replaced).
//!
//! What earlier runs left charged to the cgroup (page cache, files in the box such as a
//! compiled program, the keeper itself) is the run's *baseline*: the reported peak excludes
//! it, so a run is measured by what it adds, as in a fresh cgroup. The memory limit leaves room
//! on top of the limit only for the part of the baseline the run cannot free (the keeper):
//! page cache can be reclaimed and files deleted, and either would become memory for the
//! program. (Files a caller wants a run to find without paying for them are taken off the
//! box's account by rewriting them from the host: `Lease::checkpoint`.) A large baseline (after
//! a compiler ran) is reclaimed first.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sys;

/// The cgroup hierarchy this process can create slot cgroups in.
#[derive(Debug, Clone)]
pub(crate) enum Hierarchy {
    /// Parents named `verdict` in the memory, pids and cpuacct v1 hierarchies, and in the cpu
    /// hierarchy when there is one (it may be the cpuacct one, co-mounted).
    V1 { memory: PathBuf, pids: PathBuf, cpuacct: PathBuf, cpu: Option<PathBuf> },
    /// A parent named `verdict` in the unified hierarchy, with memory and pids enabled, and
    /// cpu when it is available.
    V2 { parent: PathBuf, cpu: bool },
}

/// One line of `/proc/self/mountinfo` that mounts a cgroup filesystem.
#[derive(Debug, PartialEq)]
struct CgroupMount {
    root: String,
    mount_point: PathBuf,
    v2: bool,
    controllers: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let super_options = right.next().unwrap_or("");
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            Some(CgroupMount {
                root: left.get(3)?.to_string(),
                mount_point: PathBuf::from(left.get(4)?.replace("\\040", " ")),
                v2,
                controllers: super_options.split(',').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// `/proc/self/cgroup` as (controllers, path); the v2 line has no controllers.
fn parse_proc_cgroup(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let controllers = controllers.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect();
            Some((controllers, path.to_owned()))
        })
        .collect()
}

/// Where this process's own cgroup is, as a directory, for a mount and a cgroup path.
fn own_dir(mount: &CgroupMount, path: &str) -> PathBuf {
    // With a host cgroup namespace inside a container, the mount's root is a prefix of the
    // path /proc/self/cgroup shows.
    let rel = if mount.root != "/" { path.strip_prefix(&mount.root).unwrap_or(path) } else { path };
    mount.mount_point.join(rel.trim_start_matches('/'))
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

fn with_path(e: io::Error, what: &str, path: &Path) -> String {
    format!("{what} {}: {e}", path.display())
}

impl Hierarchy {
    /// Finds a usable hierarchy, preferring v1 controllers on hybrid hosts (where the unified
    /// hierarchy has no controllers). The error says why none can be used.
    pub(crate) fn detect() -> Result<Self, String> {
        if sys::geteuid() != 0 {
            return Err("not running as root".into());
        }
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mounts = parse_mountinfo(&mountinfo);
        let own = parse_proc_cgroup(&own);
        let v1_dir = |controller: &str| -> Option<PathBuf> {
            let mount = mounts.iter().find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))?;
            let (_, path) = own.iter().find(|(cs, _)| cs.iter().any(|c| c == controller))?;
            Some(own_dir(mount, path))
        };
        if let (Some(memory), Some(pids), Some(cpuacct)) =
            (v1_dir("memory"), v1_dir("pids"), v1_dir("cpuacct"))
        {
            let parents = [memory.join("verdict"), pids.join("verdict"), cpuacct.join("verdict")];
            for dir in &parents {
                fs::create_dir_all(dir).map_err(|e| with_path(e, "cannot create", dir))?;
            }
            let [memory, pids, cpuacct] = parents;
            // Without CFS bandwidth control (a kernel option) there is no quota to set.
            let cpu =
                v1_dir("cpu").filter(|d| d.join("cpu.cfs_quota_us").exists()).map(|d| d.join("verdict"));
            if let Some(dir) = &cpu {
                fs::create_dir_all(dir).map_err(|e| with_path(e, "cannot create", dir))?;
            }
            return Ok(Hierarchy::V1 { memory, pids, cpuacct, cpu });
        }
        let mount = mounts
            .iter()
            .find(|m| m.v2)
            .ok_or("no cgroup v1 memory, pids and cpuacct controllers and no cgroup2 mount")?;
        let (_, path) =
            own.iter().find(|(cs, _)| cs.is_empty()).ok_or("no cgroup v2 entry in /proc/self/cgroup")?;
        let own = own_dir(mount, path);
        Self::prepare_v2(&own)
    }

    /// Makes `<own>/verdict` with memory and pids (and cpu, when delegated) available to its
    /// children, moving this process into a leaf first when its own cgroup may not have
    /// children with controllers (the "no internal processes" rule).
    fn prepare_v2(own: &Path) -> Result<Hierarchy, String> {
        let controllers = fs::read_to_string(own.join("cgroup.controllers"))
            .map_err(|e| with_path(e, "cannot read controllers of", own))?;
        for needed in ["memory", "pids"] {
            if !controllers.split_whitespace().any(|c| c == needed) {
                return Err(format!(
                    "the {needed} controller is not delegated to {} (enable it in the parent's cgroup.subtree_control)",
                    own.display()
                ));
            }
        }
        let cpu = controllers.split_whitespace().any(|c| c == "cpu");
        let wanted = if cpu { "+memory +pids +cpu" } else { "+memory +pids" };
        let enable = |dir: &Path| write(&dir.join("cgroup.subtree_control"), wanted);
        if let Err(e) = enable(own) {
            if e.raw_os_error() != Some(libc::EBUSY) {
                return Err(with_path(e, "cannot enable memory and pids in", own));
            }
            let leaf = own.join("verdict-supervisor");
            fs::create_dir_all(&leaf).map_err(|e| with_path(e, "cannot create", &leaf))?;
            write(&leaf.join("cgroup.procs"), &sys::getpid().to_string())
                .map_err(|e| with_path(e, "cannot move this process into", &leaf))?;
            enable(own).map_err(|e| {
                with_path(e, "other processes share this cgroup; cannot enable controllers in", own)
            })?;
        }
        let parent = own.join("verdict");
        fs::create_dir_all(&parent).map_err(|e| with_path(e, "cannot create", &parent))?;
        enable(&parent).map_err(|e| with_path(e, "cannot enable memory and pids in", &parent))?;
        Ok(Hierarchy::V2 { parent, cpu })
    }

    /// Creates (or takes over, after a crash) the cgroup of one slot. With `cpus`, its
    /// processes together may use that many CPUs at once (a quota over each 100 ms), so that
    /// no box starves the others.
    pub(crate) fn create_slot(&self, slot: u32, cpus: Option<f64>) -> io::Result<SlotCgroup> {
        let name = format!("slot-{slot}");
        match self {
            Hierarchy::V1 { memory, pids, cpuacct, cpu } => {
                let mut dirs = vec![memory.join(&name), pids.join(&name), cpuacct.join(&name)];
                let cpu_dir = cpu.as_ref().map(|c| c.join(&name));
                if let Some(dir) = cpu_dir.as_ref().filter(|d| !dirs.contains(d)) {
                    dirs.push(dir.clone());
                }
                for dir in &dirs {
                    make_fresh(dir)?;
                }
                if let Some(dir) = &cpu_dir {
                    // A slot taken over after a crash keeps no quota it should not have.
                    let quota = cpus.map_or("-1".to_owned(), |cpus| quota_us(cpus).to_string());
                    write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write(&dir.join("cpu.cfs_quota_us"), &quota)?;
                }
                let memsw = dirs[0].join("memory.memsw.limit_in_bytes");
                let open = |dir: &Path, file: &str| File::open(dir.join(file));
                Ok(SlotCgroup {
                    cpu: open(&dirs[2], "cpuacct.usage")?,
                    usage: open(&dirs[0], "memory.usage_in_bytes")?,
                    stat: open(&dirs[0], "memory.stat")?,
                    peak: OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(dirs[0].join("memory.max_usage_in_bytes"))?,
                    oom: open(&dirs[0], "memory.oom_control")?,
                    pids_events: open(&dirs[1], "pids.events")?,
                    v2_resettable: true,
                    has_memsw: memsw.exists(),
                    version: Version::V1,
                    dirs,
                    pids: None,
                    slot,
                    generation: 0,
                    v2_parent: None,
                    cpu_max: None,
                    shmem_base: 0,
                })
            }
            Hierarchy::V2 { parent, cpu } => {
                let cpu_max =
                    cpu.then(|| format!("{} {CPU_PERIOD_US}", cpus.map_or("max".into(), quota_us_string)));
                SlotCgroup::new_v2(parent, slot, 0, cpu_max)
            }
        }
    }

    /// Whether boxes get a CPU quota on this hierarchy.
    pub(crate) fn limits_cpu(&self) -> bool {
        match self {
            Hierarchy::V1 { cpu, .. } => cpu.is_some(),
            Hierarchy::V2 { cpu, .. } => *cpu,
        }
    }
}

/// The period of CPU quotas.
const CPU_PERIOD_US: u64 = 100_000;

fn quota_us_string(cpus: f64) -> String {
    quota_us(cpus).to_string()
}

/// The quota per period for `cpus` CPUs (at least a millisecond, the kernel's minimum).
fn quota_us(cpus: f64) -> u64 {
    ((cpus * CPU_PERIOD_US as f64) as u64).max(1_000)
}

/// Creates `dir`, or empties an existing one of leftover processes (a crashed previous owner).
fn make_fresh(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let procs = fs::read_to_string(dir.join("cgroup.procs"))?;
            for pid in procs.lines().filter_map(|l| l.trim().parse::<libc::pid_t>().ok()) {
                let _ = sys::kill(pid, libc::SIGKILL);
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Above this much memory left charged from earlier runs, reclaim before the next run.
const RECLAIM_ABOVE: u64 = 16 << 20;

/// Counters read at the start of a run, so that its own share can be told apart.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Baseline {
    memory: u64,
    cpu: Duration,
    oom_kills: u64,
    pids_max_hits: u64,
}

/// What the cgroup measured for one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub(crate) peak_bytes: u64,
    pub(crate) oom_kills: u64,
    pub(crate) pids_max_hits: u64,
}

/// The cgroup of one slot (in every v1 hierarchy we use, or one v2 directory).
#[derive(Debug)]
pub(crate) struct SlotCgroup {
    version: Version,
    /// Directories to remove on drop; for v1 ordered memory, pids, cpuacct.
    dirs: Vec<PathBuf>,
    cpu: File,
    usage: File,
    /// `memory.stat`: what of the usage is page cache or tmpfs.
    stat: File,
    peak: File,
    oom: File,
    pids_events: File,
    has_memsw: bool,
    /// Whether writing to `memory.peak` resets it (Linux 6.12+); always true on v1.
    v2_resettable: bool,
    pids: Option<u32>,
    slot: u32,
    generation: u32,
    v2_parent: Option<PathBuf>,
    /// What a replacement v2 cgroup's `cpu.max` gets.
    cpu_max: Option<String>,
    /// tmpfs memory charged when the keeper was ready: its own root and `/etc`, read-only
    /// from then on, so nothing a run can free.
    shmem_base: u64,
}

impl SlotCgroup {
    /// A v2 slot cgroup; `cpu_max` is what its `cpu.max` gets, when the cpu controller is
    /// enabled (always written: a slot taken over after a crash keeps no quota it should not
    /// have).
    fn new_v2(parent: &Path, slot: u32, generation: u32, cpu_max: Option<String>) -> io::Result<Self> {
        let dir = parent.join(format!("slot-{slot}-{generation}"));
        make_fresh(&dir)?;
        let _ = write(&dir.join("memory.swap.max"), "0");
        if let Some(value) = &cpu_max {
            write(&dir.join("cpu.max"), value)?;
        }
        let open = |file: &str| File::open(dir.join(file));
        let peak = OpenOptions::new().read(true).write(true).open(dir.join("memory.peak"));
        let (peak, v2_resettable) = match peak {
            Ok(f) => {
                let resettable = sys::pwrite0(f.as_fd(), b"reset\n").is_ok();
                (f, resettable)
            }
            Err(_) => (open("memory.peak")?, false),
        };
        Ok(SlotCgroup {
            version: Version::V2,
            cpu: open("cpu.stat")?,
            usage: open("memory.current")?,
            stat: open("memory.stat")?,
            oom: open("memory.events")?,
            pids_events: open("pids.events")?,
            peak,
            has_memsw: false,
            v2_resettable,
            dirs: vec![dir],
            pids: None,
            slot,
            generation,
            v2_parent: Some(parent.to_owned()),
            cpu_max,
            shmem_base: 0,
        })
    }

    /// Moves a process (the keeper) into this cgroup.
    pub(crate) fn add(&self, pid: libc::pid_t) -> io::Result<()> {
        let pid = pid.to_string();
        for dir in &self.dirs {
            write(&dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    /// Sets the limits for the next run and reads the counters it starts from. `keeper` is
    /// the process living in the cgroup, in case the cgroup has to be replaced.
    pub(crate) fn prepare_run(
        &mut self,
        memory_bytes: u64,
        pids: u32,
        keeper: libc::pid_t,
    ) -> io::Result<Baseline> {
        if !self.v2_resettable {
            self.replace(keeper)?;
        }
        let mut memory = self.memory_usage()?;
        if memory > RECLAIM_ABOVE {
            self.reclaim(memory);
            memory = self.memory_usage()?;
        }
        // The limit leaves room only for what the run cannot free: page cache can be reclaimed
        // and files in the box deleted, and either would otherwise become memory for the
        // program on top of its limit. (`box_charge` was brought to nothing before.)
        let stat = self.stat()?;
        let freeable = field(&stat, "active_file")?
            .saturating_add(field(&stat, "inactive_file")?)
            .saturating_add(field(&stat, "shmem")?.saturating_sub(self.shmem_base));
        self.set_memory(memory_bytes.saturating_add(memory.saturating_sub(freeable)))?;
        if self.pids != Some(pids) {
            self.set_pids(pids)?;
            self.pids = Some(pids);
        }
        if self.version == Version::V1 {
            sys::pwrite0(self.peak.as_fd(), b"0")?;
        } else if self.v2_resettable {
            sys::pwrite0(self.peak.as_fd(), b"reset\n")?;
        }
        Ok(Baseline {
            memory,
            cpu: self.cpu_usage()?,
            oom_kills: self.oom_kills()?,
            pids_max_hits: self.pids_max_hits()?,
        })
    }

    fn stat(&self) -> io::Result<String> {
        read_to(&self.stat, &mut [0u8; 8192])
    }

    /// Records the tmpfs memory charged now, once the keeper is ready, as the part no run can
    /// free.
    pub(crate) fn settle(&mut self) -> io::Result<()> {
        self.shmem_base = field(&self.stat()?, "shmem")?;
        Ok(())
    }

    /// tmpfs memory charged to the box by its runs and still there: files they left in `/box`.
    pub(crate) fn box_charge(&self) -> io::Result<u64> {
        Ok(field(&self.stat()?, "shmem")?.saturating_sub(self.shmem_base))
    }

    fn memory_usage(&self) -> io::Result<u64> {
        parse_u64(read_small(&self.usage)?.trim())
    }

    /// Asks the kernel to drop what it can of the cgroup's charges (page cache); what cannot
    /// go (files in the box, the keeper's memory) stays, and errors say only that.
    fn reclaim(&self, bytes: u64) {
        let _ = match self.version {
            Version::V1 => write(&self.dirs[0].join("memory.force_empty"), "0"),
            Version::V2 => write(&self.dirs[0].join("memory.reclaim"), &bytes.to_string()),
        };
    }

    fn set_memory(&self, bytes: u64) -> io::Result<()> {
        match self.version {
            Version::V1 => {
                let mem = &self.dirs[0];
                let memsw = mem.join("memory.memsw.limit_in_bytes");
                if self.has_memsw {
                    // memory.limit may never exceed memsw.limit: lift memsw, set, then match.
                    write(&memsw, "-1")?;
                }
                write(&mem.join("memory.limit_in_bytes"), &bytes.to_string())?;
                if self.has_memsw {
                    write(&memsw, &bytes.to_string())?;
                }
                Ok(())
            }
            Version::V2 => write(&self.dirs[0].join("memory.max"), &bytes.to_string()),
        }
    }

    fn set_pids(&self, pids: u32) -> io::Result<()> {
        let dir = match self.version {
            Version::V1 => &self.dirs[1],
            Version::V2 => &self.dirs[0],
        };
        write(&dir.join("pids.max"), &pids.to_string())
    }

    /// Swaps in a fresh v2 cgroup for kernels whose `memory.peak` cannot be reset.
    fn replace(&mut self, keeper: libc::pid_t) -> io::Result<()> {
        let parent = self.v2_parent.clone().ok_or(io::ErrorKind::Unsupported)?;
        let next = Self::new_v2(&parent, self.slot, self.generation.wrapping_add(1), self.cpu_max.clone())?;
        next.add(keeper)?;
        let old = std::mem::replace(self, next);
        drop(old);
        Ok(())
    }

    /// CPU time used by the processes of this cgroup since it was created.
    pub(crate) fn cpu_usage(&self) -> io::Result<Duration> {
        let text = read_small(&self.cpu)?;
        match self.version {
            Version::V1 => Ok(Duration::from_nanos(parse_u64(text.trim())?)),
            Version::V2 => Ok(Duration::from_micros(field(&text, "usage_usec")?)),
        }
    }

    /// CPU time used since `baseline`.
    pub(crate) fn cpu_since(&self, baseline: &Baseline) -> io::Result<Duration> {
        Ok(self.cpu_usage()?.saturating_sub(baseline.cpu))
    }

    fn oom_kills(&self) -> io::Result<u64> {
        // Both v1 `memory.oom_control` and v2 `memory.events` have an `oom_kill` line.
        field(&read_small(&self.oom)?, "oom_kill")
    }

    fn pids_max_hits(&self) -> io::Result<u64> {
        field(&read_small(&self.pids_events)?, "max")
    }

    /// What the run since `baseline` used.
    pub(crate) fn finish(&self, baseline: &Baseline) -> io::Result<Usage> {
        Ok(Usage {
            peak_bytes: parse_u64(read_small(&self.peak)?.trim())?.saturating_sub(baseline.memory),
            oom_kills: self.oom_kills()?.saturating_sub(baseline.oom_kills),
            pids_max_hits: self.pids_max_hits()?.saturating_sub(baseline.pids_max_hits),
        })
    }
}

impl Drop for SlotCgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            // The keeper may take a moment to leave after SIGKILL; a few tries are enough.
            for _ in 0..50 {
                match fs::remove_dir(dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    _ => break,
                }
            }
        }
    }
}

fn read_small(file: &File) -> io::Result<String> {
    read_to(file, &mut [0u8; 1024])
}

/// Reads a cgroup file from its start into `buf` (which must be larger than the file).
fn read_to(file: &File, buf: &mut [u8]) -> io::Result<String> {
    let n = sys::pread0(file.as_fd(), buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn parse_u64(s: &str) -> io::Result<u64> {
    s.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("not a number: {s:?}")))
}

/// The value of `key value` in a flat-keyed cgroup file.
fn field(text: &str, key: &str) -> io::Result<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ').map(str::trim)).map_or(Ok(0), parse_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
39 35 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
40 35 0:35 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu,cpuacct
41 35 0:36 /docker/abc /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids
";

    #[test]
    fn mountinfo_finds_v1_controllers_and_the_unified_mount() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(mounts.len(), 4);
        assert!(mounts[0].v2);
        assert_eq!(mounts[2].mount_point, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert!(mounts[2].controllers.iter().any(|c| c == "cpuacct"));
    }

    #[test]
    fn own_dir_strips_the_mount_root_of_a_host_namespace_container() {
        let mounts = parse_mountinfo(HYBRID);
        let pids = &mounts[3];
        assert_eq!(own_dir(pids, "/docker/abc/sub"), PathBuf::from("/sys/fs/cgroup/pids/sub"));
        let memory = &mounts[1];
        assert_eq!(own_dir(memory, "/a/b"), PathBuf::from("/sys/fs/cgroup/memory/a/b"));
    }

    #[test]
    fn proc_cgroup_lines_split_into_controllers_and_paths() {
        let parsed = parse_proc_cgroup("4:memory:/x/y\n2:cpu,cpuacct:/\n0::/user.slice\n");
        assert_eq!(parsed[0], (vec!["memory".to_owned()], "/x/y".to_owned()));
        assert_eq!(parsed[1].0, vec!["cpu".to_owned(), "cpuacct".to_owned()]);
        assert_eq!(parsed[2], (vec![], "/user.slice".to_owned()));
    }

    #[test]
    fn flat_keyed_fields_parse_in_v1_and_v2_formats() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(field(v1, "oom_kill").unwrap(), 3);
        let v2 = "low 0\nhigh 0\nmax 7\noom 1\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(field(v2, "oom_kill").unwrap(), 2);
        assert_eq!(field(v2, "max").unwrap(), 7);
        assert_eq!(field("usage_usec 1500\nuser_usec 1000\n", "usage_usec").unwrap(), 1500);
    }
}
