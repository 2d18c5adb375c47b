//! `judge-sandbox`: run one command in the sandbox and print the result as JSON.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use judge_sandbox::{Bind, Limits, RunSpec, Sandbox, SandboxConfig, Status, Stdin};

#[derive(Parser)]
#[command(name = "judge-sandbox", version, about = "Runs untrusted commands in Verdict's native sandbox.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run PROGRAM once in a fresh box and print one JSON object with the result.
    Run(RunArgs),
}

#[derive(Args)]
#[command(allow_negative_numbers = true)]
struct RunArgs {
    /// CPU time limit in seconds.
    #[arg(long, default_value_t = 5.0, value_parser = seconds)]
    time: f64,
    /// Extra CPU seconds before the program is killed.
    #[arg(long, default_value_t = 1.0, value_parser = seconds)]
    extra_time: f64,
    /// Wall-clock limit in seconds.
    #[arg(long, default_value_t = 10.0, value_parser = seconds)]
    wall_time: f64,
    /// Memory limit in KiB (all processes together).
    #[arg(long, default_value_t = 128_000)]
    memory: u64,
    /// Processes and threads that may exist at once.
    #[arg(long, default_value_t = 60)]
    processes: u32,
    /// Largest file the program may write, in KiB.
    #[arg(long, default_value_t = 1024)]
    file_size: u64,
    /// Open file descriptors per process.
    #[arg(long, default_value_t = 256)]
    open_files: u32,
    /// Stack size per process in KiB (0 = unlimited).
    #[arg(long, default_value_t = 64_000)]
    stack: u64,
    /// File to use as stdin (default: empty).
    #[arg(long)]
    stdin: Option<PathBuf>,
    /// Host directory to use as /box (default: a fresh empty box). It is given to the box's user.
    #[arg(long = "box")]
    box_dir: Option<PathBuf>,
    /// Extra host path to show inside: SRC[:DST][:rw]. Repeatable.
    #[arg(long = "bind", value_parser = parse_bind)]
    binds: Vec<Bind>,
    /// Environment variable K=V for the program. Repeatable. Without a PATH, PATH is
    /// /usr/local/bin:/usr/bin:/bin.
    #[arg(long = "env", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Bytes kept of stdout and of stderr, in KiB.
    #[arg(long, default_value_t = 8192)]
    output_limit: u64,
    /// Size of /tmp in KiB.
    #[arg(long, default_value_t = 65_536)]
    tmp_size: u64,
    /// Do not use cgroups even where available (rlimits only).
    #[arg(long)]
    no_cgroups: bool,
    /// The program and its arguments.
    #[arg(required = true, last = true, value_name = "PROGRAM")]
    command: Vec<String>,
}

fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(v > 0.0 && v <= 3600.0) {
        return Err(format!("`{s}` must be more than 0 and at most 3600 seconds"));
    }
    Ok(v)
}

fn parse_bind(s: &str) -> Result<Bind, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not of the form KEY=VALUE")),
    }
}

impl RunArgs {
    fn spec(&self) -> RunSpec {
        let limits = Limits {
            cpu_time: Duration::from_secs_f64(self.time),
            extra_time: Duration::from_secs_f64(self.extra_time),
            wall_time: Duration::from_secs_f64(self.wall_time),
            memory_kb: self.memory,
            processes: self.processes,
            file_size_kb: self.file_size,
            open_files: self.open_files,
            stack_kb: self.stack,
            output_kb: self.output_limit,
            cpu_per_process: false,
            memory_per_process: false,
        };
        let (program, args) =
            self.command.split_first().map_or((String::new(), &[][..]), |(p, a)| (p.clone(), a));
        let mut spec = RunSpec::new(program).args(args.iter().cloned()).limits(limits);
        for (k, v) in &self.env {
            spec = spec.env(k.clone(), v.clone());
        }
        if let Some(path) = &self.stdin {
            spec = spec.stdin(Stdin::File(path.clone()));
        }
        spec
    }
}

fn run(args: &RunArgs) -> anyhow::Result<judge_sandbox::RunResult> {
    let config = SandboxConfig {
        binds: args.binds.clone(),
        use_cgroups: !args.no_cgroups,
        tmp_kb: args.tmp_size,
        max_idle: 0,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::new(config).context("cannot set up the sandbox")?;
    let mut lease = match &args.box_dir {
        Some(dir) => sandbox.lease_with_box(dir),
        None => sandbox.lease(),
    }
    .context("cannot create a box")?;
    Ok(lease.run(&args.spec())?)
}

fn main() -> ExitCode {
    let Command::Run(args) = Cli::parse().command;
    match run(&args) {
        Ok(result) => {
            println!("{}", serde_json::to_string(&result).unwrap_or_default());
            if result.status == Status::InternalError { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(error) => {
            let message = format!("{error:#}");
            let result = judge_sandbox::RunResult::internal_error(
                message,
                judge_sandbox::Enforcement::Rlimits("not started".into()),
            );
            println!("{}", serde_json::to_string(&result).unwrap_or_default());
            ExitCode::FAILURE
        }
    }
}
