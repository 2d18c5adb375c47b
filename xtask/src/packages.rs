//! System packages: find what is missing and install it with apt when running as root.

use std::collections::HashSet;
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

/// What workers use besides the languages' toolchains, and the tests with them: network-enabled
/// boxes' links and the host's rules for them (`judge_sandbox`'s `net`), and SysV IPC tools the
/// sandbox's tests use. The judge's compilers and interpreters come from `judge/languages.toml`
/// ([`Languages`]).
pub(crate) const TOOLS: &[Need] = &[
    need("/usr/bin/ipcmk", "util-linux"),
    need("/usr/sbin/nft", "nftables"),
    need("/usr/sbin/ip", "iproute2"),
];

/// What only the tests use: a real browser for the browser clients' tests, and `venv` for the
/// Python client libraries' throwaway environments.
pub(crate) const TEST_ONLY: &[Need] = &[
    need("/usr/bin/chromium", "chromium"),
    need("/usr/lib/python3.11/ensurepip/__init__.py", "python3-venv"),
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

/// Which of the judge's languages (`judge/languages.toml`) a task needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Languages {
    /// None (tasks that run no program).
    None,
    /// The languages marked `core = true`.
    Core,
    /// Every language.
    All,
}

/// The packages of the selected languages that are not installed, and all the packages of a
/// selected language that lacks a path its commands name: the install list is read from the same
/// file, the same way, as the workers that run the commands. (A package can be needed without
/// owning a path the commands name, such as the JVM a compiler's script starts.)
fn language_packages(selection: Languages) -> Result<Vec<String>> {
    if selection == Languages::None {
        return Ok(Vec::new());
    }
    let languages = judge_languages::Languages::load(None).context("cannot read judge/languages.toml")?;
    let selected: Vec<_> = languages
        .defs()
        .iter()
        .filter(|d| !d.is_archived && !d.worker_toolchain && (selection == Languages::All || d.core))
        .collect();
    let mut wanted: Vec<String> = selected.iter().flat_map(|d| d.packages.iter().cloned()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let have = installed(&wanted)?;
    let have = &have;
    Ok(selected
        .iter()
        .flat_map(|d| {
            let lacks_a_path = d.paths().iter().any(|p| !present(p));
            d.packages.iter().filter(move |p| lacks_a_path || !have.contains(*p)).cloned()
        })
        .collect())
}

/// Which of `packages` dpkg says are installed.
fn installed(packages: &[String]) -> Result<HashSet<String>> {
    if packages.is_empty() {
        return Ok(HashSet::new());
    }
    // Exits non-zero when a package is unknown to dpkg; the others are still listed.
    let out = Command::new("dpkg-query")
        .args(["--show", "--showformat=${Package} ${db:Status-Abbrev}\\n"])
        .args(packages)
        .output()
        .context("cannot run dpkg-query")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, status)| status.starts_with("ii"))
        .map(|(package, _)| package.to_owned())
        .collect())
}

/// Installs the packages of every missing program of `lists` and of the selected languages
/// (one apt run), or explains what to install.
pub(crate) fn ensure(lists: &[&[Need]], languages: Languages) -> Result<()> {
    let mut missing: Vec<String> = lists
        .iter()
        .flat_map(|l| l.iter())
        .filter(|n| !present(n.path))
        .map(|n| n.package.to_owned())
        .chain(language_packages(languages)?)
        .collect();
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
    install.extend(missing.iter().map(String::as_str));
    apt(&install)
}
