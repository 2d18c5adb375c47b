//! Boxes as a shared resource: slots unique across sandboxes, keepers that die while idle,
//! cancelling a run, memory measured per run, and the per-process limit modes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use judge_sandbox::{Limits, RunSpec, Sandbox, SandboxConfig, Status};

fn sandbox(name: &str, max_idle: usize) -> Sandbox {
    support::require_root();
    let run_dir = support::scratch().join(name);
    Sandbox::new(SandboxConfig { run_dir, max_idle, ..SandboxConfig::default() }).unwrap()
}

#[test]
fn sandboxes_with_different_run_dirs_never_share_a_slot() {
    let a = sandbox("pool-a", 2);
    let b = sandbox("pool-b", 2);
    let mut lease_a = a.lease().unwrap();
    let mut lease_b = b.lease().unwrap();
    assert_ne!(lease_a.host_uid(), lease_b.host_uid(), "two boxes alive at once share host ids");
    // Tearing one sandbox down must leave the other's box alone.
    support::run(&mut lease_a, &RunSpec::new("/bin/true"));
    drop(lease_a);
    drop(a);
    let result = support::run(&mut lease_b, &RunSpec::new("/bin/echo").args(["still fine"]));
    assert_eq!((result.status, result.stdout.as_slice()), (Status::Ok, &b"still fine\n"[..]));
}

#[test]
fn a_keeper_killed_while_idle_is_replaced_on_the_next_lease() {
    let sb = sandbox("pool-dead", 1);
    let keeper_uid = {
        let mut lease = sb.lease().unwrap();
        support::run(&mut lease, &RunSpec::new("/bin/true"));
        lease.host_uid() - 1
    };
    let keepers = support::processes_of(keeper_uid);
    assert_eq!(keepers.len(), 1, "one idle keeper");
    Command::new("kill").arg("-9").arg(keepers[0].to_string()).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !support::processes_of(keeper_uid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut lease = sb.lease().unwrap();
    let result = support::run(&mut lease, &RunSpec::new("/bin/echo").args(["new keeper"]));
    assert_eq!(result.stdout, b"new keeper\n");
}

#[test]
fn a_cancelled_run_stops_promptly() {
    let sb = sandbox("pool-cancel", 1);
    let mut lease = sb.lease().unwrap();
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            cancel.store(true, Ordering::SeqCst);
        });
        lease.run_controlled(&RunSpec::new("/bin/sleep").args(["30"]), &mut |_, _| {}, Some(&cancel)).unwrap()
    });
    assert_eq!(result.status, Status::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}

/// 200 MiB of files left in the box by an earlier run (a compile step, say).
fn fill_box(lease: &mut judge_sandbox::Lease) {
    let fill = RunSpec::new("/bin/sh").args(["-c", "head -c 209715200 /dev/zero > big"]).limits(Limits {
        file_size_kb: 256 * 1024,
        memory_kb: 400 * 1024,
        ..Limits::default()
    });
    let result = support::run(lease, &fill);
    assert_eq!(result.status, Status::Ok, "{}", result.message);
}

/// Deletes the box's files and takes their memory for itself.
fn cheat() -> RunSpec {
    RunSpec::new("python3")
        .args(["-c", "import os\nos.remove('big')\nb = bytearray(200 << 20)\nprint(len(b))"])
        .limits(Limits { memory_kb: 64 * 1024, ..Limits::default() })
}

#[test]
fn the_memory_limit_holds_whatever_the_box_holds() {
    let sb = sandbox("pool-memory", 1);
    let mut lease = sb.lease().unwrap();
    fill_box(&mut lease);
    // The box's files cost a run nothing, and the program gets its whole limit for itself...
    let small = support::run(&mut lease, &RunSpec::new("/bin/true"));
    assert!(small.memory_kb < 8 * 1024, "a trivial run measured {} KiB", small.memory_kb);
    let alloc = RunSpec::new("python3")
        .args(["-c", "b = bytearray(50 << 20); print(len(b))"])
        .limits(Limits { memory_kb: 64 * 1024, ..Limits::default() });
    let result = support::run(&mut lease, &alloc);
    assert_eq!(result.status, Status::Ok, "{}", result.message);
    assert!((50 * 1024..64 * 1024).contains(&result.memory_kb), "measured {} KiB", result.memory_kb);
    // ... and no more, even by deleting them.
    assert!(lease.box_dir().join("big").exists());
    let result = support::run(&mut lease, &cheat());
    assert_eq!(
        result.status,
        Status::MemoryLimit,
        "200 MiB under a 64 MiB limit: {:?} {}",
        result.status,
        result.message
    );
}

#[test]
fn restore_returns_the_box_to_its_checkpoint() {
    let sb = sandbox("pool-restore", 1);
    let mut lease = sb.lease().unwrap();
    lease.write_file(Path::new("src/main.txt"), b"source", false).unwrap();
    let build = RunSpec::new("/bin/sh").args([
        "-c",
        "mkdir -p out/deep/er && echo built > out/deep/er/prog && chmod 751 out/deep/er/prog && \
         chmod 500 out/deep && ln -s deep/er/prog out/link && mkfifo pipe",
    ]);
    assert_eq!(support::run(&mut lease, &build).status, Status::Ok);
    lease.checkpoint().unwrap();
    let look = RunSpec::new("/bin/sh").args([
        "-c",
        "find . -path ./proc -prune -o -print | sort; stat -c '%n %a' out/deep out/deep/er/prog; \
         readlink out/link; cat out/deep/er/prog src/main.txt",
    ]);
    let before = support::run(&mut lease, &look).stdout;
    let vandal = RunSpec::new("/bin/sh").args([
        "-c",
        "chmod 700 out/deep; echo changed > out/deep/er/prog; rm -r src; echo new > extra; \
         mkdir -p a/b/c; chmod 000 a",
    ]);
    assert_eq!(support::run(&mut lease, &vandal).status, Status::Ok);
    lease.restore().unwrap();
    let after = support::run(&mut lease, &look).stdout;
    assert_eq!(String::from_utf8_lossy(&after), String::from_utf8_lossy(&before));
    assert!(String::from_utf8_lossy(&before).contains("out/deep 500\nout/deep/er/prog 751\n"));
    assert!(!String::from_utf8_lossy(&before).contains("pipe"), "fifos are not kept");
}

#[test]
fn a_checkpoint_refuses_more_than_the_box_holds() {
    let sb = sandbox("pool-sparse", 1);
    let mut lease = sb.lease().unwrap();
    // A sparse file takes no memory in the box but would take its whole size in a copy.
    let sparse = RunSpec::new("/usr/bin/truncate")
        .args(["-s", "100G", "huge"])
        .limits(Limits { file_size_kb: 200 << 20, ..Limits::default() });
    assert_eq!(support::run(&mut lease, &sparse).status, Status::Ok);
    let err = lease.checkpoint().unwrap_err().to_string();
    assert!(err.contains("more than"), "{err}");
}

#[test]
fn per_process_memory_limits_refuse_allocations_instead_of_killing() {
    let sb = sandbox("pool-per-process", 1);
    let mut lease = sb.lease().unwrap();
    let spec = RunSpec::new("python3")
        .args(["-c", "try:\n    b = bytearray(200 << 20)\nexcept MemoryError:\n    print('refused')"])
        .limits(Limits { memory_kb: 100 * 1024, memory_per_process: true, ..Limits::default() });
    let result = support::run(&mut lease, &spec);
    assert_eq!(
        (result.status, result.stdout.as_slice()),
        (Status::Ok, &b"refused\n"[..]),
        "{}",
        result.message
    );
}
