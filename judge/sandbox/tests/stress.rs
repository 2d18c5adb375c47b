//! Many boxes created and used at once from many threads, while other threads of the same
//! process start threads and child processes: none may hang or go missing.
//!
//! Keepers are cloned from a multi-threaded process; this is the test that catches a keeper
//! calling into libc code that waits on a lock another thread held at the moment of the clone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use judge_sandbox::{RunSpec, Status};

#[test]
fn boxes_are_created_and_used_concurrently_while_the_process_churns() {
    // No reuse: every lease clones a new keeper.
    let sandbox = support::sandbox_with(|c| c.max_idle = 0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                std::thread::spawn(|| std::hint::black_box(vec![0u8; 4096])).join().unwrap();
                Command::new("true").status().unwrap();
            }
        });
        let workers: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    for i in 0..25 {
                        let mut lease =
                            sandbox.lease().unwrap_or_else(|e| panic!("thread {t} lease {i}: {e}"));
                        let spec = RunSpec::new("/bin/echo").args([format!("{t}-{i}")]);
                        let result = support::run(&mut lease, &spec);
                        assert_eq!(result.status, Status::Ok, "{}", result.message);
                        assert_eq!(result.stdout, format!("{t}-{i}\n").into_bytes());
                    }
                })
            })
            .collect();
        let outcome: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        stop.store(true, Ordering::Relaxed);
        for o in outcome {
            if let Err(panic) = o {
                std::panic::resume_unwind(panic);
            }
        }
    });
}
