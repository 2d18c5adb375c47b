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
    /// p50/p99 latency and throughput at concurrency 1 and 32, against the sandbox alone; then
    /// C++, Java and Kotlin hello worlds beside Python's, Java and Kotlin with and without their
    /// compilers' start-up options.
    Judge {
        /// Submissions at concurrency 1; concurrency 32 and the sandbox alone run twice as many.
        #[arg(long, default_value_t = 300)]
        runs: usize,
    },
    /// `GET /` of one loopback backend through nginx (keep-alive upstream), the gateway and the
    /// barest pingora proxy, with wrk, rounds rotated: requests/s, p50, p99 and CPU per request
    /// of each, and their ratios to nginx.
    Gateway {
        /// wrk's connections.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds per round.
        #[arg(long, default_value_t = 10)]
        seconds: usize,
        /// Rounds per proxy.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

pub(crate) fn run(target: Target) -> Result<()> {
    match target {
        Target::Sandbox { runs } => {
            packages::ensure(
                &[packages::BUILD, packages::BENCH_SANDBOX, packages::TOOLS],
                packages::Languages::Core,
            )?;
            cargo_bench("judge-sandbox", "spawn", &[("BENCH_RUNS", runs)], "the sandbox benchmark")
        }
        Target::Judge { runs } => {
            if !xtask::process::is_root() {
                bail!("the judge benchmark runs sandboxes: run it as root");
            }
            // Java, Kotlin, C++ and Python are measured: Kotlin is not a core language.
            packages::ensure(
                &[packages::BUILD, packages::TOOLS, packages::CLUSTER],
                packages::Languages::All,
            )?;
            // The cluster runs target/release/judge (the harness's `release: true`), built as `start-all` does.
            eprintln!("xtask: cargo build --release -p judge");
            let status = Command::new(env!("CARGO")).args(["build", "--release", "-p", "judge"]).status()?;
            if !status.success() {
                bail!("cargo build --release -p judge failed");
            }
            cargo_bench("judge", "judge", &[("BENCH_RUNS", runs)], "the judge benchmark")
        }
        Target::Gateway { connections, seconds, rounds } => {
            packages::ensure(&[packages::BUILD, packages::BENCH_GATEWAY], packages::Languages::None)?;
            // The bench runs target/release/gateway, the binary that ships, and the bare pingora
            // proxy it is measured against.
            eprintln!("xtask: cargo build --release -p gateway --bin gateway --example pingora_floor");
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--release",
                    "-p",
                    "gateway",
                    "--bin",
                    "gateway",
                    "--example",
                    "pingora_floor",
                ])
                .status()?;
            if !status.success() {
                bail!("cargo build --release -p gateway failed");
            }
            let settings =
                [("BENCH_CONNECTIONS", connections), ("BENCH_SECONDS", seconds), ("BENCH_ROUNDS", rounds)];
            cargo_bench("gateway", "gateway", &settings, "the gateway benchmark")
        }
    }
}

fn cargo_bench(package: &str, bench: &str, settings: &[(&str, usize)], what: &str) -> Result<()> {
    let status = Command::new(env!("CARGO"))
        .args(["bench", "-p", package, "--bench", bench])
        .envs(settings.iter().map(|(k, v)| (*k, v.to_string())))
        .status()?;
    if !status.success() {
        bail!("{what} failed");
    }
    Ok(())
}
