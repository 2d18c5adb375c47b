//! `cargo xtask`: the developer's commands. See `cargo xtask --help`.

mod bench;
mod cluster;
mod packages;
mod test;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Verdict's developer tasks.")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run every test the repository has (formatting, lints, unit, integration), installing
    /// the system packages the tests need when they are missing and this runs as root.
    Test {
        /// Skip `cargo fmt --check` and `cargo clippy`.
        #[arg(long)]
        no_lint: bool,
        /// Extra arguments for `cargo test` (after `--`), e.g. a test name filter.
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Run a benchmark and print its figures and ratios against a baseline measured in the
    /// same run.
    Bench {
        #[command(subcommand)]
        target: bench::Target,
    },
    /// Install the system packages builds, tests, the local cluster and the sandbox benchmark
    /// need (as root), with every language's toolchain unless told otherwise; `bench gateway`
    /// installs nginx and wrk itself.
    Setup {
        /// Which of the judge's languages to install (see `start-all`).
        #[arg(long, value_enum, default_value = "all")]
        languages: packages::Languages,
    },
    /// Start the whole cluster on this machine (Redis, PostgreSQL, judge servers and workers)
    /// as processes on loopback, data under `.data/`; parts already up are left alone. Waits
    /// until every part is healthy and writes endpoints and dev tokens to `.data/cluster.env`.
    StartAll {
        /// Use the judge binary already built instead of `cargo build --release -p judge`.
        #[arg(long)]
        no_build: bool,
        /// Which of the judge's languages to install: the core set (C, C++, Java, JavaScript,
        /// Python, Go, Rust, TypeScript, Bash, plain text, multi-file programs) or all of them.
        #[arg(long, value_enum, default_value = "core")]
        languages: packages::Languages,
    },
    /// Stop every part of the cluster (SIGTERM, SIGKILL after 15 s), last started first.
    StopAll,
    /// Each part of the cluster: state, pid, port.
    Status,
    /// Print a part's log (`.data/logs/<part>.log`).
    Logs {
        /// The part: redis, postgres, judge-server-1, judge-worker-1, ...
        part: String,
        /// How many lines from the end.
        #[arg(long, short = 'n', default_value_t = 200)]
        lines: usize,
        /// Keep printing what the part writes, until interrupted.
        #[arg(long, short)]
        follow: bool,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Task::Test { no_lint, cargo_args } => test::run(!no_lint, &cargo_args),
        Task::Bench { target } => bench::run(target),
        Task::Setup { languages } => packages::ensure(
            &[
                packages::BUILD,
                packages::TOOLS,
                packages::TEST_ONLY,
                packages::CLUSTER,
                packages::BENCH_SANDBOX,
            ],
            languages,
        ),
        Task::StartAll { no_build, languages } => cluster::start_all(!no_build, languages),
        Task::StopAll => cluster::stop_all(),
        Task::Status => cluster::status(),
        Task::Logs { part, lines, follow } => cluster::logs(&part, lines, follow),
    }
}
