//! Cost of one run: bare `posix_spawn`, our sandbox, and bubblewrap, measured in one process
//! in the same session, interleaved so that machine noise hits all three alike. Then the cost
//! of starting a box, with and without network access.
//!
//! `cargo xtask bench sandbox` runs this. `BENCH_RUNS` sets the number of runs per case.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails by panicking.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use judge_sandbox::{NetworkConfig, RunSpec, Sandbox, SandboxConfig, Status};

fn median_and_p90(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 9 / 10])
}

fn bare(argv: &[&str]) {
    let status = Command::new(argv[0])
        .args(&argv[1..])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    assert!(status.success(), "{argv:?} failed bare");
}

fn bwrap(argv: &[&str]) {
    let mut cmd = Command::new("bwrap");
    cmd.args(["--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]);
    for dir in ["bin", "sbin", "lib", "lib64"] {
        let host = format!("/{dir}");
        match std::fs::read_link(&host) {
            Ok(target) => cmd.args(["--symlink", target.to_str().expect("utf-8 link"), &host]),
            Err(_) if std::path::Path::new(&host).is_dir() => cmd.args(["--ro-bind", &host, &host]),
            Err(_) => &mut cmd,
        };
    }
    cmd.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--"]);
    let status =
        cmd.args(argv).env_clear().stdin(Stdio::null()).stdout(Stdio::null()).status().expect("bwrap");
    assert!(status.success(), "{argv:?} failed under bwrap");
}

fn ours(sandbox: &Sandbox, spec: &RunSpec) {
    let result = sandbox.run(spec).expect("sandbox run");
    assert_eq!(result.status, Status::Ok, "{}", result.message);
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    sandbox.warm(1).expect("warm");
    println!("sandbox enforcement: {:?}; {runs} runs per case", sandbox.enforcement());
    println!();
    println!("{:<22} {:>12} {:>12} {:>12} {:>12}", "case", "median", "p90", "vs bare", "vs bwrap");
    let cases: [(&str, Vec<&str>); 2] =
        [("/bin/true", vec!["/bin/true"]), ("python3 -c pass", vec!["/usr/bin/python3", "-c", "pass"])];
    let mut goals = Vec::new();
    for (name, argv) in cases {
        let spec = RunSpec::new(argv[0]).args(argv[1..].iter().copied());
        // Warm caches for all three.
        for _ in 0..5 {
            bare(&argv);
            bwrap(&argv);
            ours(&sandbox, &spec);
        }
        let (mut t_bare, mut t_ours, mut t_bwrap) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            bare(&argv);
            t_bare.push(t.elapsed());
            let t = Instant::now();
            ours(&sandbox, &spec);
            t_ours.push(t.elapsed());
            let t = Instant::now();
            bwrap(&argv);
            t_bwrap.push(t.elapsed());
        }
        let (bare_med, bare_p90) = median_and_p90(t_bare);
        let (ours_med, ours_p90) = median_and_p90(t_ours);
        let (bwrap_med, bwrap_p90) = median_and_p90(t_bwrap);
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        let row = |who: &str, med: Duration, p90: Duration| {
            println!(
                "{:<22} {:>10.3}ms {:>10.3}ms {:>11.2}x {:>11.2}x",
                format!("{name} {who}"),
                med.as_secs_f64() * 1e3,
                p90.as_secs_f64() * 1e3,
                ratio(med, bare_med),
                ratio(med, bwrap_med)
            );
        };
        row("bare", bare_med, bare_p90);
        row("verdict", ours_med, ours_p90);
        row("bwrap", bwrap_med, bwrap_p90);
        goals.push((name, ratio(ours_med, bare_med), ratio(ours_med, bwrap_med)));
    }
    println!();
    for (name, vs_bare, vs_bwrap) in goals {
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        println!(
            "{name}: verdict/bare = {vs_bare:.2} (goal <= 1.5: {}), verdict/bwrap = {vs_bwrap:.2} (goal <= 1.0: {})",
            verdict(vs_bare <= 1.5),
            verdict(vs_bwrap <= 1.0)
        );
    }
    println!();
    new_boxes((runs / 10).clamp(10, 50));
}

/// What starting a box costs (paid when no warm box is idle), plain and with network access
/// (a veth pair, its addresses, a route), interleaved. Boxes are held until the end, so each
/// takes a slot no box used a moment before; then again on slots just freed, whose network
/// link the kernel may still be dismantling.
fn new_boxes(n: usize) {
    let sandbox = |network| {
        Sandbox::new(SandboxConfig { max_idle: 0, network, ..SandboxConfig::default() }).expect("sandbox")
    };
    let plain = sandbox(None);
    let networked = sandbox(Some(NetworkConfig::default()));
    let (mut held, mut t_plain, mut t_net) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        for (sandbox, times) in [(&plain, &mut t_plain), (&networked, &mut t_net)] {
            let t = Instant::now();
            held.push(sandbox.lease().expect("lease"));
            times.push(t.elapsed());
        }
    }
    drop(held);
    let (mut r_plain, mut r_net) = (Vec::new(), Vec::new());
    for _ in 0..n {
        for (sandbox, times) in [(&plain, &mut r_plain), (&networked, &mut r_net)] {
            let t = Instant::now();
            let lease = sandbox.lease().expect("lease");
            times.push(t.elapsed());
            drop(lease);
        }
    }
    println!("{:<34} {:>12} {:>12}", "new box", "median", "p90");
    for (name, times) in [
        ("plain, fresh slot", t_plain),
        ("network, fresh slot", t_net),
        ("plain, slot just freed", r_plain),
        ("network, slot just freed", r_net),
    ] {
        let (med, p90) = median_and_p90(times);
        println!("{name:<34} {:>10.3}ms {:>10.3}ms", med.as_secs_f64() * 1e3, p90.as_secs_f64() * 1e3);
    }
}
