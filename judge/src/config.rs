//! Configuration of the server and the worker: parsed once at start from flags and environment
//! variables. The Judge0 settings keep Judge0's variable names, so a Judge0 configuration
//! carries over.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use ipnet::Ipv4Net;
use judge_sandbox::NetworkConfig;

use crate::worker::callback::Allowance;

/// `judge server` or `judge worker`.
#[derive(Debug, Parser)]
#[command(
    name = "judge",
    version,
    about = "Verdict's judge: a Judge0 CE 1.13.1-compatible API and its workers."
)]
pub struct Cli {
    /// Which part to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The parts of the judge.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Judge0 API.
    Server(ServerConfig),
    /// Run submissions from the queue.
    Worker(WorkerConfig),
}

/// Where the judge's state lives.
#[derive(Debug, Clone, Args)]
pub struct Connections {
    /// PostgreSQL URL: the truth about submissions.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/judge")]
    pub database_url: String,
    /// Connections in the PostgreSQL pool.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 16)]
    pub database_pool_size: usize,
    /// Redis URL: the queue, live events, worker heartbeats.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Connections in the Redis pool.
    #[arg(long, env = "REDIS_POOL_SIZE", default_value_t = 16)]
    pub redis_pool_size: usize,
    /// Language definitions (TOML); the built-in `judge/languages.toml` when unset.
    #[arg(long, env = "LANGUAGES_FILE")]
    pub languages_file: Option<PathBuf>,
}

/// Judge0's settings: defaults, maxima and feature switches (see `/config_info`).
#[derive(Debug, Clone, Args)]
pub struct Judge0Config {
    /// Refuse new submissions (503) while maintenance is going on.
    #[arg(long, env = "MAINTENANCE_MODE", default_value_t = false, action = ArgAction::Set)]
    pub maintenance_mode: bool,
    /// The message of maintenance mode.
    #[arg(long, env = "MAINTENANCE_MESSAGE", default_value = "Judge0 is currently in maintenance.")]
    pub maintenance_message: String,
    /// Allow `wait=true`.
    #[arg(long, env = "ENABLE_WAIT_RESULT", default_value_t = true, action = ArgAction::Set)]
    pub enable_wait_result: bool,
    /// Allow `compiler_options`.
    #[arg(long, env = "ENABLE_COMPILER_OPTIONS", default_value_t = true, action = ArgAction::Set)]
    pub enable_compiler_options: bool,
    /// Languages that may take compiler options, separated by spaces (or commas); empty = all. As
    /// in Judge0, an entry is the start of a language's name (`C C++` allows `C (GCC 12.2.0)` and
    /// `C++ (GCC 12.2.0)`); an entry may also be a language id.
    #[arg(long, env = "ALLOWED_LANGUAGES_FOR_COMPILE_OPTIONS", default_value = "", value_parser = parse_languages)]
    pub allowed_languages_for_compile_options: AllowedLanguages,
    /// Allow `command_line_arguments`.
    #[arg(long, env = "ENABLE_COMMAND_LINE_ARGUMENTS", default_value_t = true, action = ArgAction::Set)]
    pub enable_command_line_arguments: bool,
    /// Allow `DELETE /submissions/:token`.
    #[arg(long, env = "ENABLE_SUBMISSION_DELETE", default_value_t = false, action = ArgAction::Set)]
    pub enable_submission_delete: bool,
    /// Allow `callback_url`.
    #[arg(long, env = "ENABLE_CALLBACKS", default_value_t = true, action = ArgAction::Set)]
    pub enable_callbacks: bool,
    /// Tries per callback (connection errors only).
    #[arg(long, env = "CALLBACKS_MAX_TRIES", default_value_t = 3)]
    pub callbacks_max_tries: u32,
    /// Seconds a callback may take.
    #[arg(long, env = "CALLBACKS_TIMEOUT", default_value_t = 5.0)]
    pub callbacks_timeout: f64,
    /// Allow `additional_files`.
    #[arg(long, env = "ENABLE_ADDITIONAL_FILES", default_value_t = true, action = ArgAction::Set)]
    pub enable_additional_files: bool,
    /// Submissions that may wait in the queue.
    #[arg(long, env = "MAX_QUEUE_SIZE", default_value_t = 10_000)]
    pub max_queue_size: u64,
    /// Default CPU time limit (s).
    #[arg(long, env = "CPU_TIME_LIMIT", default_value_t = 5.0)]
    pub cpu_time_limit: f64,
    /// Largest CPU time limit (s).
    #[arg(long, env = "MAX_CPU_TIME_LIMIT", default_value_t = 15.0)]
    pub max_cpu_time_limit: f64,
    /// Default extra CPU time (s).
    #[arg(long, env = "CPU_EXTRA_TIME", default_value_t = 1.0)]
    pub cpu_extra_time: f64,
    /// Largest extra CPU time (s).
    #[arg(long, env = "MAX_CPU_EXTRA_TIME", default_value_t = 5.0)]
    pub max_cpu_extra_time: f64,
    /// Default wall time limit (s).
    #[arg(long, env = "WALL_TIME_LIMIT", default_value_t = 10.0)]
    pub wall_time_limit: f64,
    /// Largest wall time limit (s).
    #[arg(long, env = "MAX_WALL_TIME_LIMIT", default_value_t = 20.0)]
    pub max_wall_time_limit: f64,
    /// Default memory limit (KB).
    #[arg(long, env = "MEMORY_LIMIT", default_value_t = 128_000)]
    pub memory_limit: i64,
    /// Largest memory limit (KB).
    #[arg(long, env = "MAX_MEMORY_LIMIT", default_value_t = 512_000)]
    pub max_memory_limit: i64,
    /// Default stack limit (KB).
    #[arg(long, env = "STACK_LIMIT", default_value_t = 64_000)]
    pub stack_limit: i64,
    /// Largest stack limit (KB).
    #[arg(long, env = "MAX_STACK_LIMIT", default_value_t = 128_000)]
    pub max_stack_limit: i64,
    /// Default number of processes and threads.
    #[arg(long, env = "MAX_PROCESSES_AND_OR_THREADS", default_value_t = 60)]
    pub max_processes_and_or_threads: i64,
    /// Largest number of processes and threads.
    #[arg(long, env = "MAX_MAX_PROCESSES_AND_OR_THREADS", default_value_t = 120)]
    pub max_max_processes_and_or_threads: i64,
    /// Default for per-process CPU time limits.
    #[arg(long, env = "ENABLE_PER_PROCESS_AND_THREAD_TIME_LIMIT", default_value_t = false, action = ArgAction::Set)]
    pub enable_per_process_and_thread_time_limit: bool,
    /// Whether submissions may ask for per-process CPU time limits.
    #[arg(long, env = "ALLOW_ENABLE_PER_PROCESS_AND_THREAD_TIME_LIMIT", default_value_t = true, action = ArgAction::Set)]
    pub allow_enable_per_process_and_thread_time_limit: bool,
    /// Default for per-process memory limits.
    #[arg(long, env = "ENABLE_PER_PROCESS_AND_THREAD_MEMORY_LIMIT", default_value_t = false, action = ArgAction::Set)]
    pub enable_per_process_and_thread_memory_limit: bool,
    /// Whether submissions may ask for per-process memory limits.
    #[arg(long, env = "ALLOW_ENABLE_PER_PROCESS_AND_THREAD_MEMORY_LIMIT", default_value_t = true, action = ArgAction::Set)]
    pub allow_enable_per_process_and_thread_memory_limit: bool,
    /// Default largest file (KB).
    #[arg(long, env = "MAX_FILE_SIZE", default_value_t = 1024)]
    pub max_file_size: i64,
    /// Largest `max_file_size` (KB).
    #[arg(long, env = "MAX_MAX_FILE_SIZE", default_value_t = 4096)]
    pub max_max_file_size: i64,
    /// Default number of runs.
    #[arg(long, env = "NUMBER_OF_RUNS", default_value_t = 1)]
    pub number_of_runs: i64,
    /// Largest number of runs.
    #[arg(long, env = "MAX_NUMBER_OF_RUNS", default_value_t = 20)]
    pub max_number_of_runs: i64,
    /// Default for `redirect_stderr_to_stdout`.
    #[arg(long, env = "REDIRECT_STDERR_TO_STDOUT", default_value_t = false, action = ArgAction::Set)]
    pub redirect_stderr_to_stdout: bool,
    /// Largest size of extracted `additional_files` (KB).
    #[arg(long, env = "MAX_EXTRACT_SIZE", default_value_t = 10_240)]
    pub max_extract_size: i64,
    /// Allow `POST/GET /submissions/batch`.
    #[arg(long, env = "ENABLE_BATCHED_SUBMISSIONS", default_value_t = true, action = ArgAction::Set)]
    pub enable_batched_submissions: bool,
    /// Largest batch.
    #[arg(long, env = "MAX_SUBMISSION_BATCH_SIZE", default_value_t = 20)]
    pub max_submission_batch_size: usize,
    /// Seconds a finished submission may be cached by clients (reported only).
    #[arg(long, env = "SUBMISSION_CACHE_DURATION", default_value_t = 1.0)]
    pub submission_cache_duration: f64,
    /// Reported only: Verdict serves no documentation page.
    #[arg(long, env = "USE_DOCS_AS_HOMEPAGE", default_value_t = false, action = ArgAction::Set)]
    pub use_docs_as_homepage: bool,
    /// Whether submissions may ask for network access.
    #[arg(long, env = "ALLOW_ENABLE_NETWORK", default_value_t = false, action = ArgAction::Set)]
    pub allow_enable_network: bool,
    /// Default for `enable_network`.
    #[arg(long, env = "ENABLE_NETWORK", default_value_t = false, action = ArgAction::Set)]
    pub enable_network: bool,
}

impl Judge0Config {
    /// `MAX_EXTRACT_SIZE` in bytes.
    pub fn max_extract_bytes(&self) -> u64 {
        u64::try_from(self.max_extract_size).unwrap_or(0).saturating_mul(1024)
    }
}

/// The languages that may take compiler options (`ALLOWED_LANGUAGES_FOR_COMPILE_OPTIONS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct AllowedLanguages(pub Vec<String>);

impl AllowedLanguages {
    /// Whether a language, by its id or its display name, may take compiler options.
    pub fn allows(&self, id: i32, name: &str) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|entry| {
                entry.parse::<i32>().is_ok_and(|allowed| allowed == id)
                    || name.strip_prefix(entry.as_str()).is_some_and(|rest| rest.starts_with(' '))
            })
    }

    /// The list as Judge0 words it in messages: `C`, `C and C++`, `C, C++ and Rust`.
    pub fn describe(&self) -> String {
        match self.0.as_slice() {
            [] => String::new(),
            [only] => only.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }
}

/// `SANDBOX_NETWORK_ALLOWED`: the private destinations network-enabled programs may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkAllowed(pub Vec<Ipv4Net>);

fn parse_network_allowed(s: &str) -> Result<NetworkAllowed, String> {
    NetworkConfig::parse_allowed(s).map(NetworkAllowed).map_err(|e| format!("SANDBOX_NETWORK_ALLOWED: {e}"))
}

fn parse_network_pool(s: &str) -> Result<Ipv4Net, String> {
    NetworkConfig::parse_pool(s).map_err(|e| format!("SANDBOX_NETWORK_POOL: {e}"))
}

fn parse_languages(s: &str) -> Result<AllowedLanguages, String> {
    let entries = s.split(|c: char| c.is_whitespace() || c == ',').filter(|e| !e.is_empty());
    Ok(AllowedLanguages(entries.map(str::to_owned).collect()))
}

/// `judge server`.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "JUDGE_LISTEN", default_value = "127.0.0.1:2358")]
    pub listen: SocketAddr,
    /// Tokens accepted in `X-Auth-Token` (space-separated); empty = no authentication.
    #[arg(long, env = "AUTHN_TOKEN", default_value = "")]
    pub authn_token: String,
    /// Tokens accepted in `X-Auth-User` for listing and deleting; empty = those are refused.
    #[arg(long, env = "AUTHZ_TOKEN", default_value = "")]
    pub authz_token: String,
    /// Origins whose pages may call the API, separated by spaces (Judge0's `ALLOW_ORIGIN`): a
    /// host name allows that host under any scheme and without a port (`judge0.com` allows
    /// `https://judge0.com`), an entry starting `http://` or `https://` exactly that origin,
    /// `*` every origin. Empty with `DISALLOW_ORIGIN` empty: every origin.
    #[arg(long, env = "ALLOW_ORIGIN", default_value = "")]
    pub allow_origin: String,
    /// Origins whose pages may not call the API, separated by spaces (Judge0's
    /// `DISALLOW_ORIGIN`): an origin containing any entry (`evil.example` refuses
    /// `https://x.evil.example:8080`) is refused, unless `ALLOW_ORIGIN` allows it.
    #[arg(long, env = "DISALLOW_ORIGIN", default_value = "")]
    pub disallow_origin: String,
    /// Largest request body (KB).
    #[arg(long, env = "MAX_REQUEST_BODY_KB", default_value_t = 16 * 1024)]
    pub max_request_body_kb: usize,
    /// Longest `wait=true` (s); then the submission is returned as it stands.
    #[arg(long, env = "MAX_WAIT_SECONDS", default_value_t = 300.0)]
    pub max_wait_seconds: f64,
    /// Reads of submissions (fetching and rendering them) at once; each may hold a large
    /// submission twice in memory while it renders.
    #[arg(long, env = "MAX_CONCURRENT_READS", default_value_t = 4)]
    pub max_concurrent_reads: usize,
    /// MiB of large answers (over 1 MiB each) being sent at once; more wait, then get 503.
    #[arg(long, env = "ANSWER_BUDGET_MB", default_value_t = 256)]
    pub answer_budget_mb: u32,
    /// Live event streams (`/submissions/:token/events`) open at once; more get 503.
    #[arg(long, env = "MAX_EVENT_STREAMS", default_value_t = 1024)]
    pub max_event_streams: usize,
    /// Where the judge keeps its state.
    #[command(flatten)]
    pub connections: Connections,
    /// Judge0's settings.
    #[command(flatten)]
    pub judge0: Judge0Config,
}

/// The compile step's limits (compilers, and the `compile` script of a multi-file program):
/// its own, not the maxima a submission may ask for, since compiler options can make it run
/// any code (`-wrapper`, plugins).
#[derive(Debug, Clone, Args)]
pub struct CompileLimits {
    /// CPU time (s).
    #[arg(
        id = "compile_cpu_time_limit",
        long = "compile-cpu-time-limit",
        env = "COMPILE_CPU_TIME_LIMIT",
        default_value_t = 10.0
    )]
    pub cpu_time_limit: f64,
    /// Extra CPU time before the compiler is killed (s).
    #[arg(
        id = "compile_cpu_extra_time",
        long = "compile-cpu-extra-time",
        env = "COMPILE_CPU_EXTRA_TIME",
        default_value_t = 1.0
    )]
    pub cpu_extra_time: f64,
    /// Wall time (s).
    #[arg(
        id = "compile_wall_time_limit",
        long = "compile-wall-time-limit",
        env = "COMPILE_WALL_TIME_LIMIT",
        default_value_t = 20.0
    )]
    pub wall_time_limit: f64,
    /// Memory of all its processes (KB).
    #[arg(
        id = "compile_memory_limit",
        long = "compile-memory-limit",
        env = "COMPILE_MEMORY_LIMIT",
        default_value_t = 512_000
    )]
    pub memory_limit: u64,
    /// Stack per process (KB; 0 = bounded by memory only).
    #[arg(
        id = "compile_stack_limit",
        long = "compile-stack-limit",
        env = "COMPILE_STACK_LIMIT",
        default_value_t = 128_000
    )]
    pub stack_limit: u64,
    /// Processes and threads.
    #[arg(
        id = "compile_max_processes_and_or_threads",
        long = "compile-max-processes-and-or-threads",
        env = "COMPILE_MAX_PROCESSES_AND_OR_THREADS",
        default_value_t = 128
    )]
    pub max_processes_and_or_threads: u32,
    /// Largest file it may write (KB): a compiled program may be larger than anything a
    /// submission may write.
    #[arg(id = "compile_max_file_size", long = "compile-max-file-size", env = "COMPILE_MAX_FILE_SIZE", default_value_t = 128 * 1024)]
    pub max_file_size: u64,
    /// Compiler output kept (KB); more ends the step as a compilation error.
    #[arg(
        id = "compile_max_output_size",
        long = "compile-max-output-size",
        env = "COMPILE_MAX_OUTPUT_SIZE",
        default_value_t = 1024
    )]
    pub max_output_size: u64,
}

/// `judge worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerConfig {
    /// Submissions run at once (default: the number of CPUs).
    #[arg(long, env = "WORKER_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// This worker's name in heartbeats and logs (default: host name and pid).
    #[arg(long, env = "WORKER_NAME")]
    pub name: Option<String>,
    /// The sandbox's run directory (slot locks, boxes).
    #[arg(long, env = "VERDICT_SANDBOX_RUN_DIR", default_value = "/run/verdict-sandbox")]
    pub sandbox_run_dir: PathBuf,
    /// First host uid of the sandbox's range.
    #[arg(long, env = "VERDICT_SANDBOX_UID_BASE", default_value_t = 60_000)]
    pub sandbox_uid_base: u32,
    /// The Rust toolchain shown at /opt/rust in boxes (default: `rustc --print sysroot`).
    #[arg(long, env = "RUST_SYSROOT")]
    pub rust_sysroot: Option<PathBuf>,
    /// Seconds after which work held by a silent worker is taken over.
    #[arg(long, env = "WORKER_CLAIM_TIMEOUT", default_value_t = 15)]
    pub claim_timeout_secs: u64,
    /// Seconds a stopping worker waits for its runs before handing them back.
    #[arg(long, env = "WORKER_SHUTDOWN_GRACE", default_value_t = 60)]
    pub shutdown_grace_secs: u64,
    /// Destinations callbacks may reach although they are not public addresses: host names,
    /// IP addresses and CIDR ranges, separated by spaces or commas (`127.0.0.1 10.0.0.0/8
    /// hooks.internal`). By default callbacks reach only public addresses.
    #[arg(long, env = "CALLBACK_ALLOWED_HOSTS", default_value = "", value_parser = Allowance::parse)]
    pub callback_allowed_hosts: Allowance,
    /// Times a submission may be taken over from a worker that died (or panicked) running it
    /// before it ends as Internal Error instead of being run again: a submission that crashes
    /// whatever runs it must not take the cluster down one worker after another.
    #[arg(long, env = "WORKER_MAX_CRASHES", default_value_t = 2, value_parser = clap::value_parser!(i32).range(1..))]
    pub max_crashes: i32,
    /// The compile step's limits.
    #[command(flatten)]
    pub compile: CompileLimits,
    /// Testing only, and only in debug builds (release builds ignore it): `abort:MARK` or
    /// `panic:MARK` (several separated by commas) makes the worker abort, or panic, while
    /// running a submission whose source contains MARK, to exercise crash containment.
    #[arg(long, env = "VERDICT_FAULT_INJECTION", hide = true)]
    pub fault_injection: Option<String>,
    /// With `ALLOW_ENABLE_NETWORK`: private IPv4 destinations network-enabled programs may
    /// reach besides the public internet, as CIDRs separated by spaces or commas (a resolver,
    /// an internal service). The worker host itself and other boxes stay unreachable.
    #[arg(long, env = "SANDBOX_NETWORK_ALLOWED", default_value = "", value_parser = parse_network_allowed)]
    pub sandbox_network_allowed: NetworkAllowed,
    /// With `ALLOW_ENABLE_NETWORK`: the IPv4 range network-enabled boxes' links are numbered
    /// from (a /30 per box); it must overlap no network the host talks to.
    #[arg(long, env = "SANDBOX_NETWORK_POOL", default_value_t = judge_sandbox::DEFAULT_NETWORK_POOL, value_parser = parse_network_pool)]
    pub sandbox_network_pool: Ipv4Net,
    /// CPUs the processes of one box may use at once (a cgroup CPU quota), so that a program
    /// full of busy threads cannot starve the boxes next to it; 0 for no quota.
    #[arg(long, env = "SANDBOX_BOX_CPUS", default_value_t = 1.0)]
    pub sandbox_box_cpus: f64,
    /// Where the judge keeps its state.
    #[command(flatten)]
    pub connections: Connections,
    /// Judge0's settings.
    #[command(flatten)]
    pub judge0: Judge0Config,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judge0_defaults_and_variable_names() {
        let cli = Cli::try_parse_from(["judge", "server"]).unwrap();
        let Command::Server(server) = cli.command else { panic!("not a server") };
        assert_eq!(server.judge0.memory_limit, 128_000);
        assert_eq!(server.judge0.max_cpu_time_limit, 15.0);
        assert!(server.judge0.enable_wait_result);
        let cli = Cli::try_parse_from([
            "judge",
            "server",
            "--enable-wait-result",
            "false",
            "--allowed-languages-for-compile-options",
            " C  C++ 73",
        ])
        .unwrap();
        let Command::Server(server) = cli.command else { panic!("not a server") };
        assert!(!server.judge0.enable_wait_result);
        let allowed = &server.judge0.allowed_languages_for_compile_options;
        assert_eq!(allowed, &AllowedLanguages(vec!["C".into(), "C++".into(), "73".into()]));
        assert!(allowed.allows(50, "C (GCC 12.2.0)") && allowed.allows(54, "C++ (GCC 12.2.0)"));
        assert!(allowed.allows(73, "Rust (1.95.0)") && !allowed.allows(71, "Python (3.11.2)"));
        assert!(!allowed.allows(1, "Clojure (1.10)"), "a name's start, up to a space");
        assert_eq!(allowed.describe(), "C, C++ and 73");
        assert!(AllowedLanguages::default().allows(71, "Python (3.11.2)"));
        let cli = Cli::try_parse_from(["judge", "worker", "--compile-cpu-time-limit", "3"]).unwrap();
        let Command::Worker(worker) = cli.command else { panic!("not a worker") };
        assert_eq!((worker.compile.cpu_time_limit, worker.compile.max_processes_and_or_threads), (3.0, 128));
        assert_eq!((worker.judge0.max_cpu_time_limit, worker.max_crashes), (15.0, 2));
        let err = Cli::try_parse_from(["judge", "server", "--memory-limit", "lots"]).unwrap_err();
        assert!(err.to_string().contains("--memory-limit"));
    }

    #[test]
    fn callback_allowance_is_parsed_at_start() {
        let cli = Cli::try_parse_from(["judge", "worker"]).unwrap();
        let Command::Worker(worker) = cli.command else { panic!("not a worker") };
        assert_eq!(worker.callback_allowed_hosts, Allowance::default());
        let cli =
            Cli::try_parse_from(["judge", "worker", "--callback-allowed-hosts", "127.0.0.1 hooks.internal"])
                .unwrap();
        let Command::Worker(worker) = cli.command else { panic!("not a worker") };
        assert_eq!(worker.callback_allowed_hosts, Allowance::parse("hooks.internal,127.0.0.1/32").unwrap());
        let err = Cli::try_parse_from(["judge", "worker", "--callback-allowed-hosts", "10.0.0.0/40"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("CALLBACK_ALLOWED_HOSTS") && err.contains("10.0.0.0/40"), "{err}");
    }

    #[test]
    fn sandbox_network_settings_are_checked_and_named() {
        let cli = Cli::try_parse_from(["judge", "worker"]).unwrap();
        let Command::Worker(worker) = cli.command else { panic!("not a worker") };
        assert_eq!(worker.sandbox_network_pool, judge_sandbox::DEFAULT_NETWORK_POOL);
        assert!(worker.sandbox_network_allowed.0.is_empty());
        let cli = Cli::try_parse_from([
            "judge",
            "worker",
            "--sandbox-network-allowed",
            "10.0.0.0/8 192.168.1.53",
            "--sandbox-network-pool",
            "172.30.0.0/20",
        ])
        .unwrap();
        let Command::Worker(worker) = cli.command else { panic!("not a worker") };
        assert_eq!(worker.sandbox_network_allowed.0.len(), 2);
        assert_eq!(worker.sandbox_network_pool.to_string(), "172.30.0.0/20");
        for (flag, bad) in
            [("--sandbox-network-allowed", "10.0.0.0/33"), ("--sandbox-network-pool", "nowhere")]
        {
            let err = Cli::try_parse_from(["judge", "worker", flag, bad]).unwrap_err().to_string();
            let variable = flag.trim_start_matches("--").replace('-', "_").to_uppercase();
            assert!(err.contains(&variable) && err.contains(bad), "{err}");
        }
    }
}
