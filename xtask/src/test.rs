//! `cargo xtask test`: lints, then every test of the workspace.

use std::process::Command;

use anyhow::{Result, bail};

use crate::packages;

fn cargo(args: &[&str]) -> Result<()> {
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO")).args(args).status()?;
    if !status.success() {
        bail!("cargo {} failed", args.join(" "));
    }
    Ok(())
}

pub(crate) fn run(lint: bool, extra: &[String]) -> Result<()> {
    // Integration tests start real Redis and PostgreSQL (`xtask::services`).
    // The verdict matrix covers every language.
    packages::ensure(
        &[packages::BUILD, packages::TOOLS, packages::TEST_ONLY, packages::CLUSTER],
        packages::Languages::All,
    )?;
    if lint {
        cargo(&["fmt", "--all", "--check"])?;
        cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    }
    let mut args = vec!["test", "--workspace"];
    if !extra.is_empty() {
        args.push("--");
        args.extend(extra.iter().map(String::as_str));
    }
    cargo(&args)
}
