//! The `judge-sandbox` command: flags, JSON output, exit codes, and what happens to a box when
//! the process that owns it dies.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn cli() -> Command {
    support::require_root();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_judge-sandbox"));
    cmd.arg("run");
    cmd
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_run_prints_one_json_object_with_every_field() {
    let out = cli().args(["--", "/bin/echo", "hello"]).output().unwrap();
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["signal"], Value::Null);
    assert_eq!(v["stdout"], "hello\n");
    assert_eq!(v["stderr"], "");
    assert_eq!(v["stdout_truncated"], false);
    assert_eq!(v["stderr_truncated"], false);
    assert_eq!(v["enforcement"]["kind"], "cgroup_v1");
    assert!(v["cpu_time"].as_f64().unwrap() >= 0.0);
    assert!(v["wall_time"].as_f64().unwrap() > 0.0);
    assert!(v["memory_kb"].as_u64().unwrap() > 0);
    assert_eq!(v["message"], "Exited with code 0.");
}

#[test]
fn limits_from_flags_are_enforced() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--time", "0.3", "--extra-time", "0.1", "--", "/bin/sh", "-c", "while :; do :; done"],
            "time_limit",
        ),
        (&["--wall-time", "0.5", "--", "/bin/sleep", "5"], "wall_time_limit"),
        (&["--memory", "40000", "--", "/usr/bin/python3", "-c", "b = bytearray(100 << 20)"], "memory_limit"),
        (&["--output-limit", "1", "--", "/usr/bin/yes"], "output_limit"),
        (&["--file-size", "10", "--", "/bin/sh", "-c", "head -c 100000 /dev/zero > f"], "non_zero_exit"),
        (&["--processes", "3", "--", "/bin/sh", "-c", "sleep 1 & sleep 1 & sleep 1 & wait"], "non_zero_exit"),
    ];
    for (args, status) in cases {
        let out = cli().args(*args).output().unwrap();
        let v = json(&out);
        assert_eq!(v["status"], *status, "{args:?}: {v}");
    }
}

#[test]
fn stdin_env_box_and_bind_flags() {
    let dir = support::scratch().join("cli-box");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("input.txt"), "from the box\n").unwrap();
    let stdin = support::scratch().join("cli-stdin.txt");
    std::fs::write(&stdin, "from stdin\n").unwrap();
    let shared = support::scratch().join("cli-shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("data"), "from a bind\n").unwrap();
    let out = cli()
        .arg("--stdin")
        .arg(&stdin)
        .arg("--box")
        .arg(&dir)
        .arg("--bind")
        .arg(format!("{}:/srv/shared", shared.display()))
        .args(["--env", "GREETING=hi", "--", "/bin/sh", "-c"])
        .arg("cat; cat input.txt; cat /srv/shared/data; echo $GREETING $PATH; echo made > output.txt; touch /srv/shared/x 2>/dev/null || echo read-only")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(
        v["stdout"], "from stdin\nfrom the box\nfrom a bind\nhi /usr/local/bin:/usr/bin:/bin\nread-only\n",
        "{v}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("output.txt")).unwrap(), "made\n");
    assert!(!shared.join("x").exists());
}

#[test]
fn bad_flags_are_usage_errors_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--time", "abc", "--", "/bin/true"], "--time"),
        (&["--time", "-1", "--", "/bin/true"], "--time"),
        (&["--memory", "lots", "--", "/bin/true"], "--memory"),
        (&["--bind", "/usr:relative", "--", "/bin/true"], "absolute"),
        (&["--bind", "/usr:/tmp/x", "--", "/bin/true"], "/tmp"),
        (&["--env", "NOEQUALS", "--", "/bin/true"], "KEY=VALUE"),
        (&["--no-such-flag", "--", "/bin/true"], "--no-such-flag"),
        (&[], "PROGRAM"),
    ];
    for (args, mention) in cases {
        let out = cli().args(*args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(mention), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_program_that_cannot_start_is_an_internal_error_with_exit_code_1() {
    let out = cli().args(["--", "/no/such/program"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["status"], "internal_error");
    assert!(v["message"].as_str().unwrap().contains("No such file or directory"), "{v}");
}

#[test]
fn without_cgroups_limits_fall_back_to_rlimits_and_say_so() {
    let out = cli()
        .args(["--no-cgroups", "--memory", "60000", "--", "/usr/bin/python3", "-c"])
        .arg("try:\n    b = bytearray(200 << 20)\nexcept MemoryError:\n    print('refused')")
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["enforcement"]["kind"], "rlimits", "{v}");
    assert_eq!(v["enforcement"]["reason"], "disabled by configuration");
    assert_eq!(v["stdout"], "refused\n", "{v}");
    let out = cli()
        .args(["--no-cgroups", "--time", "0.5", "--", "/bin/sh", "-c", "while :; do :; done"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["status"], "time_limit");
}

/// Host pids whose command line is exactly `argv`.
fn find(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn when_the_owning_process_dies_every_process_of_its_box_dies() {
    let mut owner = cli()
        .args(["--wall-time", "60", "--", "/bin/sh", "-c", "setsid sleep 7771 & sleep 7772"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the box's processes run", || {
        !find(&["sleep", "7771"]).is_empty() && !find(&["sleep", "7772"]).is_empty()
    });
    owner.kill().unwrap();
    owner.wait().unwrap();
    wait_until("the box's processes are gone", || {
        find(&["sleep", "7771"]).is_empty() && find(&["sleep", "7772"]).is_empty()
    });
    assert!(Path::new("/proc/self").exists());
}
