//! Outbound network access for boxes that are allowed it, and nothing else.
//!
//! Every box has a network namespace of its own (a keeper is always cloned with
//! `CLONE_NEWNET`); a box without network access has only its loopback there. A network box
//! also gets one end of a veth pair as its `eth0`, the other end (`vbx<slot>`) staying on the
//! host, a point-to-point `/30` of the sandbox's pool, and a default route through the host.
//! The host routes what the box sends and masquerades it, and a table of nftables rules of its
//! own (`inet verdict_sandbox`) decides what may pass:
//!
//! - nothing from a box reaches the host itself, whatever the destination address (the link's
//!   host side, the host's other addresses, its loopback through a forged packet);
//! - nothing new reaches a box: not from another box, not from outside;
//! - from a box, IPv4 to a destination the operator allowed passes, to any other non-public
//!   address ([`addresses::NON_PUBLIC`](crate::addresses::NON_PUBLIC)) is refused, to the
//!   rest of the internet passes; IPv6 is dropped (boxes have IPv4 only);
//! - replies to what a box opened pass back.
//!
//! Why routed veth pairs: each box sits on a link of its own, so every packet it sends crosses
//! the host's IP layer, where one rule set sees it, box-to-box traffic included. A bridge for
//! all boxes would put them on one segment, where box-to-box traffic bypasses IP filtering
//! unless `br_netfilter` is loaded; user-mode networking (slirp4netns, pasta) costs a process
//! per box and, by default, maps the host's loopback into the box, the very hole this closes.
//! Sharing the host's namespace, as network boxes once did, let a program talk to the judge's
//! own Redis and PostgreSQL on loopback (and through PostgreSQL's `COPY … FROM PROGRAM`, run
//! commands on the host).
//!
//! The host sets everything up between the keeper's `clone` and its `GO`: one `ip link add`
//! creates the pair with the box's end already in the box's namespace, then ioctls configure
//! both ends (the box's end from a thread that enters the box's namespace), so the keeper's
//! own code is unchanged. The pair disappears with the box's namespace when the keeper dies.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;

use crate::config::NetworkConfig;
use crate::error::SandboxError;

/// The nftables table that holds every rule of the sandbox's, and nothing else.
const TABLE: &str = "verdict_sandbox";
/// Host-side names of box links: `vbx<slot>`. The rules match every interface so named.
const LINK_PREFIX: &str = "vbx";
/// The box's end of its link.
const BOX_INTERFACE: &str = "eth0";
/// Addresses per box link: network, host side, box side, broadcast.
const LINK_ADDRESSES: u32 = 4;
/// Prefix length of a box link.
const LINK_PREFIX_LEN: u8 = 30;
/// How long a dead box's link may take to disappear before its slot is used again.
const STALE_LINK_TIMEOUT: Duration = Duration::from_secs(2);

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// The host's side of network access: the pool and the programs that set links up.
#[derive(Debug)]
pub(crate) struct Network {
    pool: Ipv4Net,
    ip: PathBuf,
}

/// The addresses of one box's link.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    /// The host side's interface name.
    name: String,
    /// The host side's address: the box's gateway.
    host: Ipv4Addr,
    /// The box's address.
    inside: Ipv4Addr,
}

impl Network {
    /// Makes the host ready for network boxes: checks the pool holds `max_slots` links, turns
    /// IPv4 forwarding on, and (re)writes the rule table.
    pub(crate) fn prepare(config: &NetworkConfig, max_slots: u32) -> Result<Network, SandboxError> {
        let pool = config.pool.trunc();
        let room = capacity(pool);
        if room < u64::from(max_slots) {
            return Err(SandboxError::Io {
                what: "set up network access".into(),
                source: io::Error::other(format!(
                    "the network pool {pool} holds {room} box links, fewer than the sandbox's {max_slots} \
                     slots (a link takes a /30)"
                )),
            });
        }
        let ip = find_program("ip", &["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"], "iproute2")?;
        let nft = find_program("nft", &["/usr/sbin/nft", "/sbin/nft"], "nftables")?;
        enable_forwarding()?;
        install_rules(&nft, &ruleset(pool, &config.allowed))?;
        Ok(Network { pool, ip })
    }

    /// The link of slot `slot`: the slot's `/30` of the pool.
    fn link(&self, slot: u32) -> Result<Link, SandboxError> {
        link_in(self.pool, slot).ok_or_else(|| SandboxError::Io {
            what: "number a box's network link".into(),
            source: io::Error::other(format!("slot {slot} lies beyond the network pool {}", self.pool)),
        })
    }

    /// Gives the box whose keeper is `pid` (in its own, still empty network namespace) its
    /// link for slot `slot`, configured on both ends with a default route through the host.
    pub(crate) fn attach(&self, slot: u32, pid: libc::pid_t) -> Result<(), SandboxError> {
        let link = self.link(slot)?;
        self.remove_stale(&link.name)?;
        let pid_text = pid.to_string();
        let args =
            ["link", "add", &link.name, "type", "veth", "peer", "name", BOX_INTERFACE, "netns", &pid_text];
        run(&self.ip, &args).map_err(io_err(format!("create the box's network link {}", link.name)))?;
        // No IPv6 on either end: the host side then drops whatever IPv6 a box sends, before
        // the rules see it.
        disable_ipv6(&link.name).map_err(io_err(format!("turn IPv6 off on {}", link.name)))?;
        kernel::configure(&link.name, link.host, LINK_PREFIX_LEN)
            .map_err(io_err(format!("configure {}", link.name)))?;
        let ns = fs::File::open(format!("/proc/{pid}/ns/net"))
            .map_err(io_err("open the box's network namespace"))?;
        // A thread of its own enters the box's namespace, so this thread never leaves the
        // host's; the namespace goes with the thread.
        let inside = std::thread::scope(|scope| {
            scope
                .spawn(|| -> io::Result<()> {
                    kernel::enter_network_namespace(ns.as_raw_fd())?;
                    disable_ipv6(BOX_INTERFACE)?;
                    kernel::configure(BOX_INTERFACE, link.inside, LINK_PREFIX_LEN)?;
                    kernel::add_default_route(link.host)
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the configuring thread panicked")))
        });
        inside.map_err(io_err("configure the box's eth0"))
    }

    /// Removes the host side of a link left by a box of the same slot: its namespace may still
    /// be on its way out (the kernel dismantles dead namespaces in the background).
    fn remove_stale(&self, name: &str) -> Result<(), SandboxError> {
        let sys = Path::new("/sys/class/net").join(name);
        if !sys.exists() {
            return Ok(());
        }
        // It may vanish by itself meanwhile, so a failure here is judged by what follows.
        let _ = run(&self.ip, &["link", "del", name]);
        let deadline = Instant::now() + STALE_LINK_TIMEOUT;
        while sys.exists() {
            if Instant::now() > deadline {
                return Err(SandboxError::Io {
                    what: format!("remove the stale network link {name}"),
                    source: io::Error::other(format!("it still exists after {STALE_LINK_TIMEOUT:?}")),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

/// How many `/30` links `pool` holds.
fn capacity(pool: Ipv4Net) -> u64 {
    (1u64 << (32 - u32::from(pool.prefix_len()))) / u64::from(LINK_ADDRESSES)
}

/// The `slot`-th `/30` of `pool`, if it holds that many.
fn link_in(pool: Ipv4Net, slot: u32) -> Option<Link> {
    if u64::from(slot) >= capacity(pool) {
        return None;
    }
    let base = u32::from(pool.network()).checked_add(slot.checked_mul(LINK_ADDRESSES)?)?;
    Some(Link {
        name: format!("{LINK_PREFIX}{slot}"),
        host: Ipv4Addr::from(base + 1),
        inside: Ipv4Addr::from(base + 2),
    })
}

/// The whole rule table, replacing any earlier version of it in one transaction (declaring
/// the table first makes the deletion succeed when there is none). Other tables are never
/// touched. Non-public ranges come from [`addresses::non_public`](crate::addresses::non_public).
fn ruleset(pool: Ipv4Net, allowed: &[Ipv4Net]) -> String {
    let list = |nets: &[Ipv4Net]| nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let non_public: Vec<Ipv4Net> = crate::addresses::non_public()
        .into_iter()
        .filter_map(|net| match net {
            ipnet::IpNet::V4(net) => Some(net),
            ipnet::IpNet::V6(_) => None,
        })
        .collect();
    let non_public = list(&non_public);
    // nft refuses overlapping intervals, which an operator's list may well have.
    let allowed = list(&Ipv4Net::aggregate(&allowed.to_vec()));
    let allowed_elements =
        if allowed.is_empty() { String::new() } else { format!(" elements = {{ {allowed} }};") };
    let boxes = format!("\"{LINK_PREFIX}*\"");
    let refuse = "reject with icmpx type admin-prohibited";
    format!(
        "table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n\
         \tset non_public {{ type ipv4_addr; flags interval; elements = {{ {non_public} }}; }}\n\
         \tset allowed {{ type ipv4_addr; flags interval;{allowed_elements} }}\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter; policy accept;\n\
         \t\tiifname {boxes} counter {refuse}\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\toifname {boxes} ct state established,related accept\n\
         \t\toifname {boxes} counter {refuse}\n\
         \t\tiifname {boxes} meta nfproto ipv6 counter drop\n\
         \t\tiifname {boxes} ip daddr @allowed counter accept\n\
         \t\tiifname {boxes} ip daddr @non_public counter {refuse}\n\
         \t\tiifname {boxes} accept\n\
         \t}}\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {pool} oifname != {boxes} masquerade\n\
         \t}}\n\
         }}\n"
    )
}

/// Loads `rules` with `nft -f -`.
fn install_rules(nft: &Path, rules: &str) -> Result<(), SandboxError> {
    let what = format!("install the sandbox's nftables rules (table inet {TABLE})");
    let mut child = Command::new(nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(what.clone()))?;
    let written = child.stdin.take().map(|mut stdin| io::Write::write_all(&mut stdin, rules.as_bytes()));
    let out = child.wait_with_output().map_err(io_err(what.clone()))?;
    if let Some(Err(e)) = written {
        return Err(SandboxError::Io { what, source: e });
    }
    if !out.status.success() {
        let detail = format!("nft failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        return Err(SandboxError::Io { what, source: io::Error::other(detail) });
    }
    Ok(())
}

/// Turns IPv4 forwarding on (routing boxes' traffic needs it), or says how to.
fn enable_forwarding() -> Result<(), SandboxError> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    if fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    fs::write(path, "1").map_err(|e| SandboxError::Io {
        what: "turn on IPv4 forwarding, which network access needs".into(),
        source: io::Error::new(
            e.kind(),
            format!("{e}; set net.ipv4.ip_forward=1 on the host (sysctl -w net.ipv4.ip_forward=1)"),
        ),
    })
}

/// Turns IPv6 off on interface `name` of the calling thread's network namespace (nothing to
/// do where the kernel has no IPv6).
fn disable_ipv6(name: &str) -> io::Result<()> {
    match fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1") {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// `program` at the first of `candidates` that exists.
fn find_program(name: &str, candidates: &[&str], package: &str) -> Result<PathBuf, SandboxError> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| SandboxError::Io {
        what: "set up network access".into(),
        source: io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "`{name}` is not installed (looked in {}): install the Debian package {package}",
                candidates.join(", ")
            ),
        ),
    })
}

/// Runs `program args`, turning a failure into an error that quotes its stderr.
fn run(program: &Path, args: &[&str]) -> io::Result<()> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{} {} failed ({}): {}",
        program.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// The few ioctls and system calls that configure an interface, which `std` lacks.
#[allow(unsafe_code)]
mod kernel {
    use std::io;
    use std::net::Ipv4Addr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    use crate::sys::cvt;

    /// The kernel's `struct rtentry` (`<linux/route.h>`), which the libc crate lacks for glibc.
    #[repr(C)]
    struct RtEntry {
        rt_pad1: libc::c_ulong,
        rt_dst: libc::sockaddr,
        rt_gateway: libc::sockaddr,
        rt_genmask: libc::sockaddr,
        rt_flags: libc::c_ushort,
        rt_pad2: libc::c_short,
        rt_pad3: libc::c_ulong,
        rt_pad4: *mut libc::c_void,
        rt_metric: libc::c_short,
        rt_dev: *mut libc::c_char,
        rt_mtu: libc::c_ulong,
        rt_window: libc::c_ulong,
        rt_irtt: libc::c_ushort,
    }

    fn inet_socket() -> io::Result<OwnedFd> {
        // SAFETY: socket creation with integer arguments.
        let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: the descriptor was just created and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// `addr` as a generic `sockaddr` (an AF_INET one: same size, as the kernel reads it).
    fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr { s_addr: u32::from(addr).to_be() },
            sin_zero: [0; 8],
        };
        // SAFETY: sockaddr_in and sockaddr are both 16-byte plain-data C structures; every bit
        // pattern is a valid sockaddr.
        unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
    }

    fn request(name: &str) -> io::Result<libc::ifreq> {
        // SAFETY: an all-zero ifreq is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        let bytes = name.as_bytes();
        if bytes.len() >= ifr.ifr_name.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "interface name too long"));
        }
        for (dst, &src) in ifr.ifr_name.iter_mut().zip(bytes) {
            *dst = src as libc::c_char;
        }
        Ok(ifr)
    }

    fn ioctl(fd: RawFd, request: libc::c_ulong, arg: *mut libc::c_void) -> io::Result<()> {
        // SAFETY: every caller passes a pointer to the structure `request` reads or writes.
        cvt(unsafe { libc::ioctl(fd, request, arg) }).map(drop)
    }

    /// Gives interface `name` the address `addr`/`prefix_len` and brings it up.
    pub(super) fn configure(name: &str, addr: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
        let sock = inet_socket()?;
        let fd = sock.as_raw_fd();
        let mut ifr = request(name)?;
        ifr.ifr_ifru.ifru_addr = sockaddr(addr);
        ioctl(fd, libc::SIOCSIFADDR, (&raw mut ifr).cast())?;
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0);
        ifr.ifr_ifru.ifru_netmask = sockaddr(Ipv4Addr::from(mask));
        ioctl(fd, libc::SIOCSIFNETMASK, (&raw mut ifr).cast())?;
        ioctl(fd, libc::SIOCGIFFLAGS, (&raw mut ifr).cast())?;
        // SAFETY: SIOCGIFFLAGS just filled the flags member of the union.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        ioctl(fd, libc::SIOCSIFFLAGS, (&raw mut ifr).cast())
    }

    /// Adds a default route through `gateway`.
    pub(super) fn add_default_route(gateway: Ipv4Addr) -> io::Result<()> {
        let sock = inet_socket()?;
        let any = sockaddr(Ipv4Addr::UNSPECIFIED);
        let mut route = RtEntry {
            rt_pad1: 0,
            rt_dst: any,
            rt_gateway: sockaddr(gateway),
            rt_genmask: any,
            rt_flags: libc::RTF_UP | libc::RTF_GATEWAY,
            rt_pad2: 0,
            rt_pad3: 0,
            rt_pad4: std::ptr::null_mut(),
            rt_metric: 0,
            rt_dev: std::ptr::null_mut(),
            rt_mtu: 0,
            rt_window: 0,
            rt_irtt: 0,
        };
        ioctl(sock.as_raw_fd(), libc::SIOCADDRT, (&raw mut route).cast())
    }

    /// Moves the calling thread into the network namespace `ns` (a `/proc/<pid>/ns/net`).
    pub(super) fn enter_network_namespace(ns: RawFd) -> io::Result<()> {
        // SAFETY: setns with a descriptor and a flag; it changes only this thread.
        cvt(unsafe { libc::setns(ns, libc::CLONE_NEWNET) }).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn each_slot_has_its_own_link_within_the_pool() {
        let pool = net("10.254.0.0/16");
        assert_eq!(
            link_in(pool, 0),
            Some(Link { name: "vbx0".into(), host: [10, 254, 0, 1].into(), inside: [10, 254, 0, 2].into() })
        );
        let last = link_in(pool, 16_383).unwrap();
        assert_eq!(
            (last.name.as_str(), last.host, last.inside),
            ("vbx16383", [10, 254, 255, 253].into(), [10, 254, 255, 254].into())
        );
        assert_eq!(link_in(pool, 16_384), None);
        assert_eq!(capacity(net("10.0.0.0/30")), 1);
        assert_eq!(capacity(net("10.0.0.0/21")), 512);
        assert!(link_in(net("10.0.0.0/30"), 1).is_none());
    }

    #[test]
    fn the_rules_come_from_the_one_list_of_non_public_ranges() {
        let rules =
            ruleset(net("10.254.0.0/16"), &[net("10.1.0.0/16"), net("10.1.2.0/24"), net("192.0.2.7/32")]);
        assert!(
            rules.starts_with("table inet verdict_sandbox\ndelete table inet verdict_sandbox\n"),
            "{rules}"
        );
        for v4 in crate::addresses::NON_PUBLIC.iter().filter(|r| !r.contains(':')) {
            assert!(rules.contains(v4), "{v4} missing:\n{rules}");
        }
        assert!(!rules.contains("fc00::"), "IPv6 is dropped whole, not listed");
        // Overlapping entries are merged (nft refuses overlapping intervals).
        assert!(rules.contains("elements = { 10.1.0.0/16, 192.0.2.7/32 }"), "{rules}");
        assert!(rules.contains("ip saddr 10.254.0.0/16 oifname != \"vbx*\" masquerade"), "{rules}");
        assert!(rules.contains("iifname \"vbx*\" counter reject"), "{rules}");
        let none = ruleset(net("10.254.0.0/16"), &[]);
        assert!(none.contains("set allowed { type ipv4_addr; flags interval; }"), "{none}");
    }
}
