//! `cargo xtask`: the developer's commands. See `cargo xtask --help`.

mod bench;
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
    /// Install the system packages builds and tests need (as root).
    Setup,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Task::Test { no_lint, cargo_args } => test::run(!no_lint, &cargo_args),
        Task::Bench { target } => bench::run(target),
        Task::Setup => packages::ensure(packages::ALL),
    }
}
