//! `cargo xtask bench <target>`: release-build benchmarks that print their own figures.

use std::process::Command;

use anyhow::{Result, bail};
use clap::Subcommand;

use crate::packages;

#[derive(Subcommand)]
pub(crate) enum Target {
    /// Median cost of `/bin/true` and `python3 -c pass`: bare, in our sandbox, in bubblewrap.
    Sandbox {
        /// Runs per case.
        #[arg(long, default_value_t = 300)]
        runs: usize,
    },
    /// Python hello worlds through a local cluster (1 server, 2 workers) with `wait=true`:
    /// p50/p99 latency and throughput at concurrency 1 and 32, against the sandbox alone.
    Judge {
        /// Submissions at concurrency 1; concurrency 32 and the sandbox alone run twice as many.
        #[arg(long, default_value_t = 300)]
        runs: usize,
    },
}

pub(crate) fn run(target: Target) -> Result<()> {
    match target {
        Target::Sandbox { runs } => {
            packages::ensure(packages::BENCH_SANDBOX)?;
            packages::ensure(packages::TEST)?;
            cargo_bench("judge-sandbox", "spawn", runs, "the sandbox benchmark")
        }
        Target::Judge { runs } => {
            if !xtask::process::is_root() {
                bail!("the judge benchmark runs sandboxes: run it as root");
            }
            packages::ensure(packages::TEST)?;
            packages::ensure(packages::CLUSTER)?;
            // The cluster runs target/release/judge (the harness's `release: true`), built as `start-all` does.
            eprintln!("xtask: cargo build --release -p judge");
            let status = Command::new(env!("CARGO")).args(["build", "--release", "-p", "judge"]).status()?;
            if !status.success() {
                bail!("cargo build --release -p judge failed");
            }
            cargo_bench("judge", "judge", runs, "the judge benchmark")
        }
    }
}

fn cargo_bench(package: &str, bench: &str, runs: usize, what: &str) -> Result<()> {
    let status = Command::new(env!("CARGO"))
        .args(["bench", "-p", package, "--bench", bench])
        .env("BENCH_RUNS", runs.to_string())
        .status()?;
    if !status.success() {
        bail!("{what} failed");
    }
    Ok(())
}
