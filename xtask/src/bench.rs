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
}

pub(crate) fn run(target: Target) -> Result<()> {
    match target {
        Target::Sandbox { runs } => {
            packages::ensure(packages::BENCH_SANDBOX)?;
            packages::ensure(packages::TEST)?;
            let status = Command::new(env!("CARGO"))
                .args(["bench", "-p", "judge-sandbox", "--bench", "spawn"])
                .env("BENCH_RUNS", runs.to_string())
                .status()?;
            if !status.success() {
                bail!("the sandbox benchmark failed");
            }
            Ok(())
        }
    }
}
