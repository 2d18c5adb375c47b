//! CPU isolation between boxes: a box full of busy processes gets its quota of the machine
//! and no more, so a program in another box runs as if alone. Alone in its test binary, so
//! that no other test's load blurs what it measures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use judge_sandbox::{Limits, RunSpec, Status};

/// 110 processes that spin until killed.
const SPINNERS: &str = r#"
#include <unistd.h>
int main(void) {
    for (int i = 0; i < 109; i++) if (fork() == 0) break;
    for (;;) {}
}
"#;

/// Spends 0.4 s of CPU time, then says so.
const INNOCENT: &str = r#"
#include <stdio.h>
#include <time.h>
int main(void) {
    while (clock() < CLOCKS_PER_SEC * 4 / 10) {}
    puts("done");
    return 0;
}
"#;

#[test]
fn a_box_full_of_busy_processes_does_not_starve_another() {
    let sandbox = support::sandbox_with(|c| c.box_cpus = 1.0);
    //assert!(sandbox.limits_cpu(), "this host has a cgroup cpu controller: boxes must get a quota");
    let spinners = support::compile_c("spinners", SPINNERS);
    let innocent = support::compile_c("innocent", INNOCENT);
    let stop = AtomicBool::new(false);
    let (uid_tx, uid_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let noisy = s.spawn(|| {
            let mut lease = sandbox.lease().unwrap();
            support::install(&lease, &spinners, "spinners");
            uid_tx.send(lease.host_uid()).unwrap();
            let spin = RunSpec::new("./spinners").limits(Limits {
                processes: 200,
                cpu_time: Duration::from_secs(120),
                wall_time: Duration::from_secs(60),
                // The per-process time mode must keep the box's quota.
                cpu_per_process: true,
                ..Limits::default()
            });
            let cancel = &stop;
            lease.run_controlled(&spin, &mut |_, _| {}, Some(cancel)).unwrap().status
        });
        // Wait until the noisy box really is full of spinning processes.
        let uid = uid_rx.recv().unwrap();
        let full = support::wait_until(Duration::from_secs(20), || support::processes_of(uid).len() >= 100);
        let mut walls = Vec::new();
        let mut failures = Vec::new();
        if full {
            let mut lease = sandbox.lease().unwrap();
            support::install(&lease, &innocent, "innocent");
            for _ in 0..5 {
                let spec = RunSpec::new("./innocent")
                    .limits(Limits { wall_time: Duration::from_secs(2), ..Limits::default() });
                let result = support::run(&mut lease, &spec);
                walls.push(result.wall_time);
                if result.status != Status::Ok || result.stdout != b"done\n" {
                    failures.push(format!("{:?} {}", result.status, result.message));
                }
            }
        }
        stop.store(true, Ordering::SeqCst);
        let status = noisy.join().unwrap();
        assert!(full, "the noisy box never had 100 processes");
        assert_eq!(status, Status::Cancelled);
        eprintln!("walls {walls:?} {failures:?}");
        assert!(failures.is_empty(), "the innocent program was starved: {failures:?}, walls {walls:?}");
    });
}
