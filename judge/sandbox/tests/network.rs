//! Network access: a box given it reaches what the operator allowed (and, out there, the public
//! internet), and nothing of the host's: not its loopback, not its addresses, not a private
//! network it is attached to, not another box, nothing over IPv6.
//!
//! Traffic goes only to the host's own addresses and to a network namespace the test creates
//! (and removes, even when a check fails): a private `10.66.<n>.0/29` with two addresses, one
//! of them on the sandbox's allow-list.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use judge_sandbox::{NetworkConfig, RunSpec, Sandbox, Status, Stdin};

/// The private network of this test process: `10.66.<n>.0/29`, with `n` from the pid so that
/// test processes running at once do not collide.
fn subnet() -> u8 {
    (std::process::id() % 250) as u8
}

fn private(last: u8) -> IpAddr {
    IpAddr::from([10, 66, subnet(), last])
}

/// The one sandbox of this binary: network access, with `.2` of the test's network allowed.
fn sandbox() -> &'static Sandbox {
    support::sandbox_with(|config| {
        let allowed = NetworkConfig::parse_allowed(&format!("{}/32", private(2))).unwrap();
        config.network = Some(NetworkConfig { allowed, ..NetworkConfig::default() });
    })
}

/// Runs `ip args`, panicking with its stderr on failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

const NETNS_PREFIX: &str = "verdict-nt-";

/// A network namespace of the test's own, linked to the host by a veth pair: the host side
/// `10.66.<n>.1/29` and `fd42:66::1/64`, the namespace side `.2`, `.3` and `fd42:66::2`.
/// Dropping it removes both, so they go even when an assertion fails.
struct TestNet {
    name: String,
    host_link: String,
}

impl TestNet {
    fn create() -> TestNet {
        // What test processes that died without cleaning up left behind.
        for entry in std::fs::read_dir("/run/netns").into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let owner = name.strip_prefix(NETNS_PREFIX).and_then(|pid| pid.parse::<u32>().ok());
            if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = Command::new("ip").args(["netns", "del", &name]).status();
                let _ =
                    Command::new("ip").args(["link", "del", &format!("vnt{}", owner.unwrap_or(0))]).status();
            }
        }
        let pid = std::process::id();
        let net = TestNet { name: format!("{NETNS_PREFIX}{pid}"), host_link: format!("vnt{pid}") };
        let (ns, link) = (net.name.as_str(), net.host_link.as_str());
        ip(&["netns", "add", ns]);
        ip(&["link", "add", link, "type", "veth", "peer", "name", "peer", "netns", ns]);
        ip(&["addr", "add", &format!("{}/29", private(1)), "dev", link]);
        ip(&["-6", "addr", "add", "fd42:66::1/64", "dev", link, "nodad"]);
        ip(&["link", "set", link, "up"]);
        for last in [2, 3] {
            ip(&["-n", ns, "addr", "add", &format!("{}/29", private(last)), "dev", "peer"]);
        }
        ip(&["-n", ns, "-6", "addr", "add", "fd42:66::2/64", "dev", "peer", "nodad"]);
        ip(&["-n", ns, "link", "set", "peer", "up"]);
        ip(&["-n", ns, "link", "set", "lo", "up"]);
        net
    }

    /// Listeners on port 0 of `addrs`, opened inside the namespace.
    fn listen(&self, addrs: Vec<IpAddr>) -> Vec<TcpListener> {
        let ns = std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap();
        // A thread of its own enters the namespace; its sockets stay there after it ends.
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: setns with a descriptor and a flag; it changes only this thread.
            #[allow(unsafe_code)]
            let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            addrs.into_iter().map(|a| TcpListener::bind(SocketAddr::new(a, 0)).unwrap()).collect()
        })
        .join()
        .unwrap()
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Deleting the namespace takes its end of the pair, and with it the host's end.
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
        let _ = Command::new("ip").args(["link", "del", &self.host_link]).status();
    }
}

/// Tries a TCP connect to each `label host port` line of stdin; prints `label result`, then the
/// box's interfaces. A refusal by the host's rules shows as EHOSTUNREACH, quickly.
const PROBE: &str = r#"
import errno, socket, sys
gateway = None
for line in open('/proc/net/route').read().splitlines()[1:]:
    f = line.split()
    if f[1] == '00000000':
        gateway = socket.inet_ntoa(bytes.fromhex(f[2])[::-1])
targets = [line.split() for line in sys.stdin.read().splitlines() if line.strip()]
for label, host, port in targets:
    host = gateway if host == 'GATEWAY' else host
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        result = 'connected'
    except socket.timeout:
        result = 'timeout'
    except OSError as e:
        result = errno.errorcode.get(e.errno, str(e.errno))
    print(label, result)
print('route', gateway)
print('interfaces', ','.join(sorted(name for _, name in socket.if_nameindex())))
"#;

/// The host's IPv4 addresses, every interface's (loopback included).
fn host_addresses() -> Vec<IpAddr> {
    let out = Command::new("ip").args(["-4", "-o", "addr", "show"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .filter_map(|cidr| cidr.split('/').next()?.parse().ok())
        .collect()
}

fn port(listener: &TcpListener) -> u16 {
    listener.local_addr().unwrap().port()
}

/// Whether the host itself can connect to `addr` (a control: a refusal in the box must come
/// from the box's confinement, not from a destination that is not there).
fn host_reaches(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Accepts one connection within `timeout`; returns the peer's address.
fn accepted(listener: &TcpListener, timeout: Duration) -> Option<SocketAddr> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((_, peer)) => return Some(peer),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(_) => return None,
        }
    }
}

#[test]
fn a_network_box_reaches_what_is_allowed_and_nothing_of_the_host() {
    let sandbox = sandbox();
    let net = TestNet::create();
    let inside = net.listen(vec![private(2), private(3), "fd42:66::2".parse().unwrap()]);
    let (allowed, refused, v6) = (&inside[0], &inside[1], &inside[2]);
    // The host's own listeners: on its loopback (both families) and on every address.
    let loopback = TcpListener::bind("127.0.0.1:0").unwrap();
    let loopback6 = TcpListener::bind("[::1]:0").unwrap();
    let any = TcpListener::bind("0.0.0.0:0").unwrap();

    let mut targets = vec![
        ("allowed".to_owned(), private(2).to_string(), port(allowed)),
        ("private".to_owned(), private(3).to_string(), port(refused)),
        ("private-v6".to_owned(), "fd42:66::2".to_owned(), port(v6)),
        ("host-loopback".to_owned(), "127.0.0.1".to_owned(), port(&loopback)),
        ("host-loopback-v6".to_owned(), "::1".to_owned(), port(&loopback6)),
        ("gateway".to_owned(), "GATEWAY".to_owned(), port(&any)),
    ];
    for addr in host_addresses() {
        assert!(host_reaches(SocketAddr::new(addr, port(&any))), "control: the host reaches {addr}");
        targets.push((format!("host-{addr}"), addr.to_string(), port(&any)));
    }
    for (listener, what) in [(refused, "the private address"), (v6, "the IPv6 address")] {
        assert!(host_reaches(listener.local_addr().unwrap()), "control: the host reaches {what}");
    }
    // The controls connected to these; only the box's attempts should be seen from here on.
    for listener in [refused, v6, &any] {
        while accepted(listener, Duration::from_millis(50)).is_some() {}
    }

    let stdin: String =
        targets.iter().map(|(label, host, port)| format!("{label} {host} {port}\n")).collect();
    let mut lease = sandbox.lease().unwrap();
    let spec = RunSpec::new("python3").args(["-c", PROBE]).stdin(Stdin::Bytes(stdin.into_bytes()));
    let result = support::run(&mut lease, &spec);
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    assert_eq!(result.status, Status::Ok, "{stdout}{}", String::from_utf8_lossy(&result.stderr));
    let seen: BTreeMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once(' ')).collect();

    assert_eq!(seen.get("interfaces"), Some(&"eth0,lo"), "{stdout}");
    assert_eq!(seen.get("allowed"), Some(&"connected"), "outbound works where allowed:\n{stdout}");
    let peer = accepted(allowed, Duration::from_secs(5)).expect("the allowed listener saw the box");
    assert_eq!(peer.ip(), private(1), "the box's traffic leaves masqueraded as the host");
    for (label, _, _) in &targets[1..] {
        let result = seen.get(label.as_str()).copied().unwrap_or("missing");
        assert!(
            result != "connected" && result != "missing",
            "the box reached {label} ({result}):\n{stdout}"
        );
    }
    for (listener, what) in [(refused, "private"), (v6, "IPv6"), (&loopback, "loopback"), (&any, "host")] {
        assert_eq!(accepted(listener, Duration::ZERO), None, "the {what} listener saw a connection");
    }
    assert!(seen.get("route").is_some_and(|g| g.starts_with("10.254.")), "{stdout}");
}

#[test]
fn boxes_cannot_reach_each_other() {
    let sandbox = sandbox();
    // Box A listens and says so through a file; box B then tries to connect to it.
    let mut a = sandbox.lease().unwrap();
    let ready = a.box_dir().join("ready");
    let listen = "import socket\n\
                  s = socket.socket(); s.bind(('0.0.0.0', 0)); s.listen()\n\
                  u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect(('192.0.2.1', 9))\n\
                  open('/box/ready.tmp', 'w').write('%s %d' % (u.getsockname()[0], s.getsockname()[1]))\n\
                  import os; os.rename('/box/ready.tmp', '/box/ready')\n\
                  s.settimeout(4)\n\
                  try:\n    s.accept(); print('accepted')\n\
                  except OSError:\n    print('nothing')\n";
    let server = std::thread::spawn(move || {
        let spec = RunSpec::new("python3").args(["-c", listen]);
        let result = support::run(&mut a, &spec);
        String::from_utf8_lossy(&result.stdout).into_owned() + &String::from_utf8_lossy(&result.stderr)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut address = String::new();
    while address.is_empty() {
        assert!(Instant::now() < deadline, "box A never listened");
        if let Ok(mut f) = std::fs::File::open(&ready) {
            f.read_to_string(&mut address).unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (host, port) = address.split_once(' ').unwrap();
    assert!(host.starts_with("10.254."), "box A's address: {host}");

    let mut b = sandbox.lease().unwrap();
    let probe = format!(
        "import socket\ns = socket.socket(); s.settimeout(3)\n\
         try:\n    s.connect(('{host}', {port})); print('connected')\n\
         except OSError as e:\n    print('refused', e.errno)\n"
    );
    let result = support::run(&mut b, &RunSpec::new("python3").args(["-c", probe.as_str()]));
    let said = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(said.starts_with("refused"), "box B reached box A: {said}");
    assert_eq!(server.join().unwrap(), "nothing\n");
}
