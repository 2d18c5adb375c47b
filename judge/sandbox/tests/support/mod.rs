//! Shared helpers for the sandbox's integration tests: one sandbox per test binary, C programs
//! compiled once on the host, and a scan for processes left behind.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use judge_sandbox::{Bind, Lease, RunResult, RunSpec, Sandbox, SandboxConfig};

/// Tests exercise real namespaces and cgroups: they need root, and say so instead of passing.
pub fn require_root() {
    // SAFETY: geteuid cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "the sandbox tests must run as root (they create namespaces and cgroups)");
}

/// A directory of the test binary's own. Statics are never dropped, so instead of removing it
/// at exit, each test binary removes those left by test processes that are gone.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let prefix = "verdict-sandbox-test-";
        let tmp = std::env::temp_dir();
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let owner =
                name.strip_prefix(prefix).and_then(|rest| rest.split('-').next()?.parse::<u32>().ok());
            if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = tmp.join(format!(
            "{prefix}{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        dir
    })
}

/// The sandbox shared by a test binary's tests, configured with `configure`.
pub fn sandbox_with(configure: impl FnOnce(&mut SandboxConfig)) -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        require_root();
        let mut config = SandboxConfig { run_dir: scratch().join("run"), ..SandboxConfig::default() };
        configure(&mut config);
        Sandbox::new(config).expect("sandbox")
    })
}

/// Compiles a C program on the host once per test binary; returns the binary's path.
pub fn compile_c(name: &str, source: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap();
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let dir = scratch().join("c");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let out = Command::new("gcc").args(["-O1", "-pthread", "-o"]).arg(&bin).arg(&src).output().expect("gcc");
    assert!(out.status.success(), "gcc failed for {name}: {}", String::from_utf8_lossy(&out.stderr));
    built.insert(name.to_owned(), bin.clone());
    bin
}

/// Copies a host binary into the box as an executable.
pub fn install(lease: &Lease, host: &Path, name: &str) {
    let bytes = std::fs::read(host).unwrap();
    lease.write_file(Path::new(name), &bytes, true).unwrap();
}

/// Live host processes (pids) whose real uid is `uid`.
pub fn processes_of(uid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        // Zombies hold their uid until reaped, and this machine's init reaps nobody.
        if status.lines().any(|l| l.starts_with("State:") && l.contains("zombie")) {
            continue;
        }
        let real_uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        if real_uid == Some(uid) {
            found.push(pid);
        }
    }
    found
}

/// Runs and returns the result, failing the test on a sandbox error.
pub fn run(lease: &mut Lease, spec: &RunSpec) -> RunResult {
    lease.run(spec).unwrap_or_else(|e| panic!("sandbox error running {}: {e}", spec.program))
}

/// Polls `done` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A bind for the tests' extra directory.
pub fn bind(source: &Path, target: &str) -> Bind {
    Bind { source: source.to_owned(), target: target.into(), writable: false }
}
