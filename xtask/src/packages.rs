//! System packages: find what is missing and install it with apt when running as root.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A program some task needs, by absolute path (the sandbox only sees `/usr`, so a copy
/// elsewhere on `PATH` does not count; one `*` component matches any directory, for versioned
/// installs), and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Need {
    pub(crate) path: &'static str,
    pub(crate) package: &'static str,
}

const fn need(path: &'static str, package: &'static str) -> Need {
    Need { path, package }
}

/// What building the workspace needs besides the Rust toolchain: pingora's zlib-ng builds with
/// cmake. Every task that builds (`setup`, `test`, `start-all`, `bench`) ensures it.
pub(crate) const BUILD: &[Need] = &[need("/usr/bin/cmake", "cmake")];

/// What the tests run: the judge's compilers and interpreters, and what workers need.
pub(crate) const TEST: &[Need] = &[
    need("/usr/bin/gcc", "gcc"),
    need("/usr/bin/g++", "g++"),
    need("/usr/bin/javac", "openjdk-17-jdk-headless"),
    need("/usr/bin/go", "golang-go"),
    need("/usr/bin/node", "nodejs"),
    need("/usr/bin/tsc", "node-typescript"),
    need("/usr/bin/python3", "python3"),
    need("/usr/bin/ipcmk", "util-linux"),
    // Network-enabled boxes: their links and the host's rules for them (`judge_sandbox`'s `net`).
    need("/usr/sbin/nft", "nftables"),
    need("/usr/sbin/ip", "iproute2"),
];

/// The services `cargo xtask start-all` runs besides the judge (which also needs [`TEST`]'s
/// compilers), and that `xtask::services` starts for integration tests.
pub(crate) const CLUSTER: &[Need] = &[
    need("/usr/bin/redis-server", "redis-server"),
    need("/usr/lib/postgresql/*/bin/postgres", "postgresql"),
];

/// What the sandbox benchmark compares against.
pub(crate) const BENCH_SANDBOX: &[Need] = &[need("/usr/bin/bwrap", "bubblewrap")];

/// What the gateway benchmark compares against (nginx) and loads both with (wrk).
pub(crate) const BENCH_GATEWAY: &[Need] = &[need("/usr/sbin/nginx", "nginx"), need("/usr/bin/wrk", "wrk")];

/// Whether `path` exists, a `*` component standing for any directory entry.
fn present(path: &str) -> bool {
    match path.split_once("/*/") {
        None => Path::new(path).exists(),
        Some((parent, rest)) => std::fs::read_dir(parent)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| entry.path().join(rest).exists()),
    }
}

/// Installs the packages of every missing program of `lists` (one apt run), or explains what
/// to install.
pub(crate) fn ensure(lists: &[&[Need]]) -> Result<()> {
    let mut missing: Vec<&str> =
        lists.iter().flat_map(|l| l.iter()).filter(|n| !present(n.path)).map(|n| n.package).collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    if !xtask::process::is_root() {
        bail!(
            "missing system packages: {} (run as root to install them, or `sudo apt-get install {}`)",
            missing.join(", "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let apt = |args: &[&str]| -> Result<()> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("cannot run apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)
}
