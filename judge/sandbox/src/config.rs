//! Configuration of a [`Sandbox`](crate::Sandbox): where boxes live, which host ids and extra
//! paths it uses.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipnet::Ipv4Net;

/// A host path made visible inside every box of a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// Host path (a directory or a file).
    pub source: PathBuf,
    /// Absolute path inside the box.
    pub target: PathBuf,
    /// Whether the program may write to it; read-only otherwise.
    pub writable: bool,
}

/// Why a `--bind` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// The source path is empty.
    #[error("bind source is empty")]
    EmptySource,
    /// The target is not an absolute path.
    #[error("bind target `{0}` must be an absolute path")]
    RelativeTarget(String),
    /// The target would hide a path the sandbox itself manages.
    #[error("bind target `{0}` would cover a path the sandbox manages (/, /box, /tmp, /proc, /dev)")]
    ReservedTarget(String),
    /// The target contains `..` components.
    #[error("bind target `{0}` must not contain `..`")]
    DotDot(String),
}

impl FromStr for Bind {
    type Err = BindError;

    /// Parses `SRC[:DST][:rw]`, as the CLI's `--bind` takes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (rest, writable) = match s.strip_suffix(":rw") {
            Some(rest) => (rest, true),
            None => (s.strip_suffix(":ro").unwrap_or(s), false),
        };
        let (source, target) = match rest.split_once(':') {
            Some((src, dst)) => (src, dst),
            None => (rest, rest),
        };
        if source.is_empty() {
            return Err(BindError::EmptySource);
        }
        let bind = Bind { source: source.into(), target: target.into(), writable };
        bind.check()?;
        Ok(bind)
    }
}

impl Bind {
    /// Checks that the target is a plain absolute path outside the sandbox's own mounts.
    pub fn check(&self) -> Result<(), BindError> {
        let shown = self.target.display().to_string();
        if !self.target.is_absolute() {
            return Err(BindError::RelativeTarget(shown));
        }
        if self.target.components().any(|c| c == std::path::Component::ParentDir) {
            return Err(BindError::DotDot(shown));
        }
        let reserved = ["/box", "/tmp", "/proc", "/dev"];
        if self.target == Path::new("/") || reserved.iter().any(|r| self.target.starts_with(r)) {
            return Err(BindError::ReservedTarget(shown));
        }
        Ok(())
    }
}

/// How boxes with network access reach out: each gets a point-to-point IPv4 link to the host,
/// which routes and masquerades its traffic to public addresses only (see
/// [`addresses`](crate::addresses)). The host itself, other boxes, IPv6, and every non-public
/// range stay out of reach unless listed in [`NetworkConfig::allowed`]; the host and other
/// boxes stay out of reach even then.
///
/// The host needs `nft` and `ip` (Debian packages `nftables`, `iproute2`) and IPv4
/// forwarding, which the sandbox turns on. The rules live in the nftables table
/// `inet verdict_sandbox`, one per host: the sandbox started last writes it, so every network
/// sandbox of a host should share one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The IPv4 range box links are numbered from: slot `k` takes the `k`-th `/30` (host side
    /// `.1`, box `.2`). It must hold four addresses per slot
    /// ([`SandboxConfig::max_slots`]) and overlap no network the host talks to.
    pub pool: Ipv4Net,
    /// Destinations boxes may reach although they are not public, as IPv4 ranges (an
    /// organisation's own services, a private resolver).
    pub allowed: Vec<Ipv4Net>,
}

/// The default [`NetworkConfig::pool`]: room for 16,384 boxes (the default 512 slots use its
/// first /21), in a range that Docker, Podman and common Kubernetes networks do not take by
/// default. Any range that overlaps a network of the host's must be replaced.
pub const DEFAULT_NETWORK_POOL: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 254, 0, 0), 16);

impl Default for NetworkConfig {
    fn default() -> Self {
        Self { pool: DEFAULT_NETWORK_POOL, allowed: Vec::new() }
    }
}

impl NetworkConfig {
    /// Parses a pool: one IPv4 range of at most `/30`.
    pub fn parse_pool(text: &str) -> Result<Ipv4Net, String> {
        let pool: Ipv4Net = text
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not an IPv4 range (such as 10.254.0.0/16)", text.trim()))?;
        if pool.prefix_len() > 30 {
            return Err(format!("`{pool}` is too small: a box's link needs a /30"));
        }
        Ok(pool.trunc())
    }

    /// Parses an allow-list: IPv4 ranges or addresses, separated by spaces or commas (see
    /// [`addresses::parse_cidrs`](crate::addresses::parse_cidrs)). Boxes have IPv4 only, so an
    /// IPv6 entry is refused rather than silently useless.
    pub fn parse_allowed(text: &str) -> Result<Vec<Ipv4Net>, String> {
        crate::addresses::parse_cidrs(text)?
            .into_iter()
            .map(|net| match net {
                ipnet::IpNet::V4(net) => Ok(net),
                ipnet::IpNet::V6(net) => Err(format!("`{net}` is IPv6, and boxes have IPv4 only")),
            })
            .collect()
    }
}

/// How a sandbox is set up. [`SandboxConfig::default`] suits a judge worker running as root.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where boxes and the prepared `/etc` live. Must be reachable (execute permission) by
    /// the sandbox's host ids; it is created with mode 0711.
    pub run_dir: PathBuf,
    /// Where slot locks live. A slot number decides host ids and the cgroup's name, so every
    /// sandbox on a host (whatever its `run_dir`) must lock in the same place: keep the
    /// default unless the host runs nothing else that uses this sandbox.
    pub lock_dir: PathBuf,
    /// First host uid/gid of the sandbox's range. Slot `k` maps the keeper to `uid_base + 2k`
    /// and programs to `uid_base + 2k + 1`; none of them is ever host root.
    pub uid_base: u32,
    /// How many slots (concurrent boxes on this host, across processes) may exist.
    pub max_slots: u32,
    /// How many ready boxes to keep for reuse.
    pub max_idle: usize,
    /// Size of each box's private filesystem (`/box`), in KiB.
    pub box_kb: u64,
    /// Size of each box's `/tmp`, in KiB. Emptied after every run.
    pub tmp_kb: u64,
    /// CPUs the processes of one box may use at once (a cgroup CPU quota, where the cpu
    /// controller is available), so that a box full of busy processes cannot starve the others;
    /// 0 for no quota. CPU *time* limits are per run and separate.
    pub box_cpus: f64,
    /// Extra host paths made visible in every box.
    pub binds: Vec<Bind>,
    /// Whether to use cgroups when available. Without them, limits fall back to rlimits.
    pub use_cgroups: bool,
    /// Outbound network access for every box of this sandbox; `None` (the default) leaves a
    /// box with nothing but its own loopback. Either way a box has a network namespace of its
    /// own and never sees the host's loopback. Boxes that should resolve names need
    /// `resolv.conf` in [`SandboxConfig::etc_entries`] and a resolver they may reach.
    pub network: Option<NetworkConfig>,
    /// Names under the host's `/etc` copied into the box's `/etc` (besides a generated
    /// passwd, group, hosts and nsswitch.conf). A trailing `*` matches a prefix.
    pub etc_entries: Vec<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            run_dir: PathBuf::from("/run/verdict-sandbox"),
            lock_dir: PathBuf::from("/run/verdict-sandbox-slots"),
            uid_base: 60_000,
            max_slots: 512,
            max_idle: 2 * crate::sys::online_cpus(),
            box_kb: 256 * 1024,
            tmp_kb: 64 * 1024,
            box_cpus: 1.0,
            binds: Vec::new(),
            use_cgroups: true,
            network: None,
            etc_entries: [
                "alternatives",
                "ld.so.cache",
                "ld.so.conf",
                "ld.so.conf.d",
                "localtime",
                "timezone",
                "os-release",
                "protocols",
                "services",
                "java-*",
            ]
            .map(str::to_owned)
            .to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_syntax() {
        let b: Bind = "/opt/rust".parse().unwrap();
        assert_eq!(
            (b.source.as_path(), b.target.as_path(), b.writable),
            (Path::new("/opt/rust"), Path::new("/opt/rust"), false)
        );
        let b: Bind = "/srv/data:/data:rw".parse().unwrap();
        assert_eq!(
            (b.source.as_path(), b.target.as_path(), b.writable),
            (Path::new("/srv/data"), Path::new("/data"), true)
        );
        let b: Bind = "/a:/b:ro".parse().unwrap();
        assert!(!b.writable);
        assert_eq!("/a:b".parse::<Bind>(), Err(BindError::RelativeTarget("b".into())));
        assert_eq!("/a:/tmp/x".parse::<Bind>(), Err(BindError::ReservedTarget("/tmp/x".into())));
        assert_eq!("/a:/".parse::<Bind>(), Err(BindError::ReservedTarget("/".into())));
        assert_eq!("/a:/x/../box".parse::<Bind>(), Err(BindError::DotDot("/x/../box".into())));
    }

    #[test]
    fn network_settings() {
        assert_eq!(NetworkConfig::default().pool.to_string(), "10.254.0.0/16");
        assert_eq!(NetworkConfig::parse_pool(" 10.1.2.3/24 ").unwrap().to_string(), "10.1.2.0/24");
        assert!(NetworkConfig::parse_pool("10.1.2.0/31").unwrap_err().contains("/30"));
        assert!(NetworkConfig::parse_pool("fd00::/64").unwrap_err().contains("IPv4"));
        let allowed = NetworkConfig::parse_allowed("10.0.0.0/8, 192.168.1.5").unwrap();
        assert_eq!(
            allowed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.0.0.0/8", "192.168.1.5/32"]
        );
        assert!(NetworkConfig::parse_allowed("").unwrap().is_empty());
        assert!(NetworkConfig::parse_allowed("fd00::/8").unwrap_err().contains("IPv6"));
        assert!(NetworkConfig::parse_allowed("10.0.0.0/40").unwrap_err().contains("10.0.0.0/40"));
    }
}
