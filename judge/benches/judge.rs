//! End-to-end cost of a submission: a Python hello world sent to one judge server with
//! `POST /submissions?wait=true`, one at a time and 32 at a time, next to the same work done by
//! the sandbox alone (a fresh lease, the script written into it, `/usr/bin/python3 script.py`
//! with Judge0's default limits, as a worker does), measured in the same run.
//!
//! `cargo xtask bench judge` runs this after building `target/release/judge`. `BENCH_RUNS` sets
//! the submissions at concurrency 1 (default 300); concurrency 32 sends twice as many, and the
//! sandbox alone runs as many as that. `BENCH_WORKER_CONCURRENCY` sets each of the two workers'
//! concurrency (default 2, a worker's default on this 2-CPU machine).
//!
//! Besides the goals it prints where the time of one submission goes (from the timestamps the
//! judge records in PostgreSQL) and where the CPU goes (from `/proc`), so that a missed goal
//! comes with its first clue.
//!
//! Last, hello worlds whose cost is mostly a runtime's start-up, at concurrency 1 through the
//! same cluster: C++ (a native compile), Java and Kotlin (a JVM compiler, then the JVM) beside
//! Python's. Java and Kotlin also run as copies of their languages without the start-up options
//! `judge/languages.toml` gives their compilers (ids 1062 and 1078, from a languages file the
//! benchmark writes), and Java as a copy without class-data sharing (id 2062: `-Xshare:off` for
//! javac and java; the JDK's own archive of its classes is otherwise mapped, in boxes too), so
//! each gain is measured in the same run. `BENCH_LANGUAGE_RUNS` sets the
//! submissions per language (default 10).

#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark fails by panicking.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use judge_sandbox::{Limits, RunSpec, Sandbox, SandboxConfig, Status, Stdin};
use support::{Cluster, Options};

const SOURCE: &str = "print(\"hello, world\")";
const EXPECTED: &str = "hello, world\n";
/// Judge0's Python 3 id.
const PYTHON: i64 = 71;
/// Clients at once in the concurrent case.
const CLIENTS: usize = 32;
const WORKERS: usize = 2;
/// What the judge's languages file says for language 71: the file, and the command, which the
/// worker runs directly (it has no shell syntax).
const SCRIPT: &str = "script.py";
const RUN_CMD: [&str; 2] = ["/usr/bin/python3", "script.py"];
/// Output a worker keeps per stream (KiB).
const OUTPUT_KB: u64 = 16 * 1024;
/// Clock ticks per second in `/proc` (USER_HZ, 100 on every Linux ABI).
const TICKS: f64 = 100.0;

/// Judge0's ids of the languages measured beside Python, and their hello worlds.
const CPP: i64 = 54;
const JAVA: i64 = 62;
const KOTLIN: i64 = 78;
const CPP_SOURCE: &str = "#include <iostream>\nint main() { std::cout << \"hello, world\\n\"; }\n";
const JAVA_SOURCE: &str =
    "public class Main { public static void main(String[] a) { System.out.println(\"hello, world\"); } }\n";
const KOTLIN_SOURCE: &str = "fun main() { println(\"hello, world\") }\n";
/// Added to a language's id for its copy without start-up options.
const WITHOUT_STARTUP: i64 = 1000;
/// The options `judge/languages.toml` gives JVM compilers for start-up alone: the copies drop them.
const STARTUP_OPTIONS: [&str; 1] = ["-J-XX:TieredStopAtLevel=1"];
/// Added to Java's id for its copy without class-data sharing.
const WITHOUT_CDS: i64 = 2000;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).filter(|n| *n > 0).unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One answered submission, as the client saw it.
struct Sample {
    token: String,
    latency: Duration,
    sent: SystemTime,
    received: SystemTime,
}

/// Sends the Python hello world (see [`submit_program`]).
fn submit(cluster: &Cluster) -> Sample {
    submit_program(cluster, PYTHON, SOURCE)
}

/// Sends a hello world and checks the verdict: anything but Accepted with the right output
/// fails the benchmark.
fn submit_program(cluster: &Cluster, language: i64, source: &str) -> Sample {
    let url = format!("{}/submissions?wait=true", cluster.url());
    let body = serde_json::json!({ "source_code": source, "language_id": language }).to_string();
    let headers = [("X-Auth-Token", cluster.authn.as_str()), ("Content-Type", "application/json")];
    let sent = SystemTime::now();
    let start = Instant::now();
    let response = support::http("POST", &url, &headers, Some(body.as_bytes()));
    let latency = start.elapsed();
    let received = SystemTime::now();
    assert_eq!(response.status, 201, "{}", response.text());
    let done = response.json();
    assert_eq!(done["status"]["id"], 3, "language {language} not Accepted: {done}");
    assert_eq!(done["stdout"], EXPECTED, "language {language}: wrong output: {done}");
    let token = done["token"].as_str().expect("a token").to_owned();
    Sample { token, latency, sent, received }
}

/// The sandbox alone doing what a worker does for this submission.
struct Baseline {
    sandbox: Sandbox,
    spec: RunSpec,
}

impl Baseline {
    fn new(run_dir: PathBuf, boxes: usize) -> Baseline {
        let config = SandboxConfig { run_dir, max_idle: boxes, ..SandboxConfig::default() };
        let sandbox = Sandbox::new(config).expect("sandbox");
        sandbox.warm(boxes).expect("warm boxes");
        // Judge0's default limits are the sandbox's defaults; the worker keeps more output.
        let limits = Limits { output_kb: OUTPUT_KB, ..Limits::default() };
        let spec = RunSpec::new(RUN_CMD[0]).args([RUN_CMD[1]]).limits(limits).stdin(Stdin::Bytes(Vec::new()));
        Baseline { sandbox, spec }
    }

    /// One submission's worth of sandbox work; returns its duration.
    fn run(&self) -> Duration {
        let cancel = AtomicBool::new(false);
        let start = Instant::now();
        let mut lease = self.sandbox.lease().expect("lease");
        lease.write_file(Path::new(SCRIPT), SOURCE.as_bytes(), false).expect("write the script");
        let result = lease.run_controlled(&self.spec, &mut |_, _| {}, Some(&cancel)).expect("run");
        drop(lease);
        let took = start.elapsed();
        assert_eq!(result.status, Status::Ok, "{}", result.message);
        assert_eq!(result.stdout, EXPECTED.as_bytes(), "wrong output in the sandbox alone");
        took
    }
}

/// Runs `job` `n` times on `threads` threads; returns every result and the wall time of all.
fn concurrently<T: Send>(n: usize, threads: usize, job: impl Fn() -> T + Sync) -> (Vec<T>, Duration) {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(n));
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let r = job();
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    (results.into_inner().unwrap(), start.elapsed())
}

/// Latency percentiles and throughput of one case.
struct Figures {
    p50: Duration,
    p99: Duration,
    per_second: f64,
}

fn figures(mut latencies: Vec<Duration>, wall: Duration) -> Figures {
    latencies.sort();
    Figures {
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
        per_second: latencies.len() as f64 / wall.as_secs_f64(),
    }
}

/// A throughput case measured in parts: its latencies, wall time and CPU time.
#[derive(Default)]
struct Load {
    latencies: Vec<Duration>,
    wall: Duration,
    cpu: Cpu,
}

impl Load {
    fn figures(&self) -> Figures {
        figures(self.latencies.clone(), self.wall)
    }

    /// CPU milliseconds per submission or run.
    fn per_item_ms(&self, ticks: u64) -> f64 {
        ticks as f64 / TICKS * 1e3 / self.latencies.len() as f64
    }
}

/// Runs one part of `load`, adding its latencies, wall time and the CPU it used.
fn measure(pids: &Pids, load: &mut Load, part: impl FnOnce() -> (Vec<Duration>, Duration)) {
    let before = cpu_now(pids);
    let (latencies, wall) = part();
    load.cpu = load.cpu + (cpu_now(pids) - before);
    load.latencies.extend(latencies);
    load.wall += wall;
}

/// CPU time, in clock ticks, by role, plus the machine's busy time.
#[derive(Debug, Default, Clone, Copy)]
struct Cpu {
    /// Keepers and the programs they ran (python), in the cluster and in the baseline.
    boxes: u64,
    server: u64,
    /// The workers' own threads (queue, database, leases, the host side of runs).
    workers: u64,
    postgres: u64,
    redis: u64,
    /// This process: HTTP clients, the baseline's host side, the bookkeeping.
    client: u64,
    /// Every CPU's non-idle time.
    busy: u64,
}

impl Cpu {
    /// What no process we know of used: the kernel's own work, and anything else running.
    fn rest(&self) -> u64 {
        self.busy.saturating_sub(
            self.boxes + self.workers + self.server + self.postgres + self.redis + self.client,
        )
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;

    fn sub(self, o: Cpu) -> Cpu {
        Cpu {
            boxes: self.boxes - o.boxes,
            server: self.server - o.server,
            workers: self.workers - o.workers,
            postgres: self.postgres - o.postgres,
            redis: self.redis - o.redis,
            client: self.client - o.client,
            busy: self.busy - o.busy,
        }
    }
}

impl std::ops::Add for Cpu {
    type Output = Cpu;

    fn add(self, o: Cpu) -> Cpu {
        Cpu {
            boxes: self.boxes + o.boxes,
            server: self.server + o.server,
            workers: self.workers + o.workers,
            postgres: self.postgres + o.postgres,
            redis: self.redis + o.redis,
            client: self.client + o.client,
            busy: self.busy + o.busy,
        }
    }
}

/// The processes whose CPU time we attribute.
struct Pids {
    me: u32,
    redis: u32,
    postgres: u32,
    workers: HashSet<u32>,
}

/// `(ppid, [utime, stime, cutime, cstime])` of a process.
fn proc_times(pid: u32) -> Option<(u32, [u64; 4])> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((u32::try_from(field(1)?).ok()?, [field(11)?, field(12)?, field(13)?, field(14)?]))
}

fn judge_role(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    cmdline.split(|b| *b == 0).nth(1).map(|r| String::from_utf8_lossy(r).into_owned())
}

/// CPU time so far. A process that exits is counted by the parent that reaps it (its
/// `cutime`), which sits in the same role: programs in their keeper, keepers in their worker
/// (counted as boxes), PostgreSQL backends in the postmaster.
fn cpu_now(pids: &Pids) -> Cpu {
    let mut cpu = Cpu::default();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Some((ppid, [u, s, cu, cs])) = proc_times(pid) else { continue };
        if pid == pids.me {
            cpu.client += u + s;
            cpu.boxes += cu + cs;
        } else if pid == pids.redis {
            cpu.redis += u + s + cu + cs;
        } else if pid == pids.postgres || ppid == pids.postgres {
            cpu.postgres += u + s + cu + cs;
        } else if pids.workers.contains(&pid) {
            cpu.workers += u + s;
            cpu.boxes += cu + cs;
        } else if pids.workers.contains(&ppid) {
            cpu.boxes += u + s + cu + cs;
        } else if ppid == pids.me {
            match judge_role(pid).as_deref() {
                Some("server") => cpu.server += u + s + cu + cs,
                // The baseline's keepers.
                _ => cpu.boxes += u + s + cu + cs,
            }
        }
    }
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let line = stat.lines().next().unwrap();
    let t: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().unwrap()).collect();
    // user nice system idle iowait irq softirq steal
    cpu.busy = t[0] + t[1] + t[2] + t[5] + t[6] + t.get(7).copied().unwrap_or(0);
    cpu
}

/// `(created, started, finished)` of every submission, in seconds since the epoch.
fn timestamps(cluster: &Cluster) -> HashMap<String, (f64, f64, f64)> {
    let psql = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("bin/psql"))
        .filter(|p| p.exists())
        .max()
        .expect("psql");
    let sql = "SELECT token, extract(epoch FROM created_at), extract(epoch FROM started_at), \
               extract(epoch FROM finished_at) FROM submissions WHERE finished_at IS NOT NULL";
    let out = Command::new(psql)
        .args(["-X", "-q", "-t", "-A", "-d", &cluster.postgres.url(), "-c", sql])
        .output()
        .expect("run psql");
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let n = |i: usize| f.get(i)?.parse::<f64>().ok();
            Some((f.first()?.to_string(), (n(1)?, n(2)?, n(3)?)))
        })
        .collect()
}

/// The built-in languages plus copies of Java and Kotlin without [`STARTUP_OPTIONS`] (ids
/// `WITHOUT_STARTUP` + theirs) and of Java without class-data sharing (`WITHOUT_CDS` + its),
/// written to `dir`; the cluster's `LANGUAGES_FILE`.
fn languages_file(dir: &Path) -> PathBuf {
    let languages = judge::languages::Languages::load(None).expect("the built-in languages");
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut text = judge::languages::BUILTIN.to_owned();
    let mut copy = |id: i64, copy_id: i64, what: &str, change: &dyn Fn(&str) -> String| {
        let def = languages.get(i32::try_from(id).unwrap()).expect("the language").def;
        assert!(
            def.env.is_empty() && def.files.is_empty(),
            "language {id}: the copy needs its env and files"
        );
        let compile = def.compile_cmd.clone().expect("a compiled language");
        let (compile_copy, run_copy) = (change(&compile), change(&def.run_cmd));
        assert_ne!((&compile_copy, &run_copy), (&compile, &def.run_cmd), "language {id}: no copy {what}");
        text.push_str(&format!(
            "\n[[language]]\nid = {copy_id}\nname = {}\nsource_file = {}\ncompile_cmd = {}\nrun_cmd = {}\n",
            quote(&format!("{} {what}", def.name)),
            quote(def.source_file.as_deref().expect("a source file")),
            quote(&compile_copy),
            quote(&run_copy),
        ));
    };
    let without_startup =
        |cmd: &str| STARTUP_OPTIONS.iter().fold(cmd.to_owned(), |c, o| c.replace(&format!(" {o}"), ""));
    for id in [JAVA, KOTLIN] {
        copy(id, WITHOUT_STARTUP + id, "without start-up options", &without_startup);
    }
    let without_cds = |cmd: &str| {
        cmd.replace("/usr/bin/javac ", "/usr/bin/javac -J-Xshare:off ")
            .replace("/usr/bin/java ", "/usr/bin/java -Xshare:off ")
    };
    copy(JAVA, WITHOUT_CDS + JAVA, "without class-data sharing", &without_cds);
    let path = dir.join("languages.toml");
    std::fs::write(&path, text).expect("write the languages file");
    path
}

/// Hello worlds at concurrency 1, the languages in turn so that machine noise hits all alike:
/// p50 and p99 of each, and what the start-up options gain.
fn startup(cluster: &Cluster, runs: usize) {
    let cases = [
        ("Python", PYTHON, SOURCE),
        ("C++", CPP, CPP_SOURCE),
        ("Java", JAVA, JAVA_SOURCE),
        ("Java without start-up options", WITHOUT_STARTUP + JAVA, JAVA_SOURCE),
        ("Java without class-data sharing", WITHOUT_CDS + JAVA, JAVA_SOURCE),
        ("Kotlin", KOTLIN, KOTLIN_SOURCE),
        ("Kotlin without start-up options", WITHOUT_STARTUP + KOTLIN, KOTLIN_SOURCE),
    ];
    // Warm up: page caches, and each JVM's first start.
    for (_, language, source) in cases {
        submit_program(cluster, language, source);
    }
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); cases.len()];
    for _ in 0..runs {
        for ((_, language, source), samples) in cases.iter().zip(&mut latencies) {
            samples.push(submit_program(cluster, *language, source).latency);
        }
    }
    let p50s: Vec<Duration> = latencies
        .iter_mut()
        .map(|samples| {
            samples.sort();
            percentile(samples, 50)
        })
        .collect();
    println!();
    println!(
        "hello worlds at concurrency 1, compile and run ({runs} each, the languages in turn; the JVM's \
         start-up options are {}):",
        STARTUP_OPTIONS.join(" ")
    );
    println!("  {:<44} {:>10} {:>10}", "language", "p50", "p99");
    for ((name, language, _), samples) in cases.iter().zip(&latencies) {
        println!(
            "  {:<44} {:>8.0}ms {:>8.0}ms",
            format!("{name} ({language})"),
            ms(percentile(samples, 50)),
            ms(percentile(samples, 99))
        );
    }
    for (name, with, without, what) in [
        ("Java", 2, 3, "the start-up options"),
        ("Java", 2, 4, "class-data sharing"),
        ("Kotlin", 5, 6, "the start-up options"),
    ] {
        println!("  {name}: p50 without {what} / with it = {:.2}x", ms(p50s[without]) / ms(p50s[with]));
    }
}

fn main() {
    let runs = env_number("BENCH_RUNS", 300);
    let language_runs = env_number("BENCH_LANGUAGE_RUNS", 10);
    let per_worker = env_number("BENCH_WORKER_CONCURRENCY", 2);
    let boxes = WORKERS * per_worker;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

    let languages_dir = tempfile::tempdir().expect("a temporary directory");
    let languages = languages_file(languages_dir.path());
    let cluster = Cluster::start(Options {
        servers: 1,
        workers: WORKERS,
        env: vec![
            ("RUST_LOG".into(), "warn".into()),
            ("LANGUAGES_FILE".into(), languages.display().to_string()),
        ],
        concurrency: per_worker,
        release: true,
    });
    let baseline = Baseline::new(cluster.dir.path().join("sandbox-only"), boxes);
    let pids = Pids {
        me: std::process::id(),
        redis: cluster.redis.pid(),
        postgres: cluster.postgres.pid(),
        workers: (0..WORKERS).map(|i| cluster.worker_pid(i)).collect(),
    };

    let default = if per_worker == cpus { " (a worker's default: one per CPU)" } else { "" };
    println!(
        "cluster: 1 server, {WORKERS} workers x concurrency {per_worker}{default} = {boxes} boxes on {cpus} CPUs"
    );
    println!(
        "fairness: the sandbox alone runs {boxes} boxes at once too (the same programs in flight on the same \
         CPUs), so the\n  throughput ratio is the cost of the cluster's own work: HTTP, PostgreSQL, Redis, the \
         workers' bookkeeping"
    );
    println!(
        "program: {SOURCE} (language {PYTHON}); {runs} submissions at concurrency 1, {} at {CLIENTS}",
        2 * runs
    );
    println!();

    // Warm up: every worker slot, the server's and workers' connection pools, page caches.
    for _ in 0..10 {
        submit(&cluster);
        baseline.run();
    }
    concurrently(2 * CLIENTS, CLIENTS, || submit(&cluster));
    concurrently(4 * boxes, boxes, || baseline.run());

    // Concurrency 1, interleaved with the sandbox alone so that machine noise hits both alike.
    let (mut serial, mut serial_wall) = (Vec::with_capacity(runs), Duration::ZERO);
    let (mut alone, mut alone_wall) = (Vec::with_capacity(runs), Duration::ZERO);
    for _ in 0..runs {
        let t = Instant::now();
        serial.push(submit(&cluster));
        serial_wall += t.elapsed();
        let took = baseline.run();
        alone_wall += took;
        alone.push(took);
    }

    // Concurrency 32, between two halves of the sandbox alone at the same number of boxes, and
    // of the sandbox alone at one box per CPU (a reference, when that differs).
    let per_cpu_case = cpus != boxes;
    let (mut same, mut per_cpu, mut burst) = (Load::default(), Load::default(), Load::default());
    let baseline = &baseline;
    let alone_at = |n: usize, threads: usize| move || concurrently(n, threads, || baseline.run());
    measure(&pids, &mut same, alone_at(runs, boxes));
    if per_cpu_case {
        measure(&pids, &mut per_cpu, alone_at(runs / 2, cpus));
    }
    measure(&pids, &mut burst, || {
        let (samples, wall) = concurrently(2 * runs, CLIENTS, || submit(&cluster));
        (samples.into_iter().map(|s| s.latency).collect(), wall)
    });
    if per_cpu_case {
        measure(&pids, &mut per_cpu, alone_at(runs - runs / 2, cpus));
    }
    measure(&pids, &mut same, alone_at(runs, boxes));

    let f_serial = figures(serial.iter().map(|s| s.latency).collect(), serial_wall);
    let f_alone = figures(alone, alone_wall);
    let f_burst = burst.figures();
    let f_same = same.figures();

    println!("{:<34} {:>10} {:>10} {:>14}", "case", "p50", "p99", "throughput");
    let row = |name: &str, f: &Figures| {
        println!("{name:<34} {:>8.2}ms {:>8.2}ms {:>12.1}/s", ms(f.p50), ms(f.p99), f.per_second);
    };
    row("judge, concurrency 1", &f_serial);
    row("sandbox alone, 1 at once", &f_alone);
    row(&format!("judge, concurrency {CLIENTS}"), &f_burst);
    row(&format!("sandbox alone, {boxes} at once"), &f_same);
    let f_per_cpu = per_cpu_case.then(|| per_cpu.figures());
    if let Some(f) = &f_per_cpu {
        row(&format!("sandbox alone, {cpus} at once (1/CPU)"), f);
    }
    let ratio = f_burst.per_second / f_same.per_second;
    println!(
        "{:<34} {:>8.2}x {:>9} {:>13.2}x",
        format!("judge / sandbox alone ({boxes} boxes)"),
        ms(f_serial.p50) / ms(f_alone.p50),
        "",
        ratio
    );
    println!(
        "(the sandbox alone: {} runs at {boxes} at once, half before and half after the judge at \
         concurrency {CLIENTS}{})",
        same.latencies.len(),
        if per_cpu_case {
            format!("; {} at {cpus} at once, likewise", per_cpu.latencies.len())
        } else {
            String::new()
        }
    );

    // Where one submission's time goes, at concurrency 1.
    let stamps = timestamps(&cluster);
    let mut steps: [Vec<f64>; 4] = Default::default();
    for s in &serial {
        let &(created, started, finished) = stamps.get(&s.token).expect("the submission's row");
        let (sent, received) = (epoch(s.sent), epoch(s.received));
        for (step, secs) in
            steps.iter_mut().zip([created - sent, started - created, finished - started, received - finished])
        {
            step.push(secs * 1e3);
        }
    }
    let [to_created, to_started, to_finished, to_answer] = steps.map(median);
    println!();
    println!(
        "where one submission's time goes at concurrency 1 (medians, from its timestamps in PostgreSQL):"
    );
    let step = |what: &str, v: f64| println!("  {what:<92} {v:>7.2}ms");
    step("request sent -> row created (HTTP, admission check, validation, BEGIN)", to_created);
    step(
        "row created -> claimed (INSERT + COMMIT, XADD, a worker's XREADGROUP wakes, claim UPDATE)",
        to_started,
    );
    step(
        "claimed -> result being recorded (claim COMMIT, events, lease, write, run, output relay)",
        to_finished,
    );
    step("  of which the same work in the sandbox alone (median)", ms(f_alone.p50));
    step("result being recorded -> answer received (COMMIT, announce, wake-up, SELECT, render)", to_answer);
    step("sum of the medians", to_created + to_started + to_finished + to_answer);

    // Where the CPU goes at full load.
    println!();
    println!("where the CPU goes at full load (CPU ms per submission or run, from /proc):");
    let mut columns = vec![(format!("judge c={CLIENTS}"), &burst), (format!("alone {boxes}"), &same)];
    if per_cpu_case {
        columns.push((format!("alone {cpus}"), &per_cpu));
    }
    print!("  {:<44}", "");
    for (name, _) in &columns {
        print!(" {name:>14}");
    }
    println!();
    let cpu_row = |what: &str, ticks: &dyn Fn(&Cpu) -> u64| {
        print!("  {what:<44}");
        for (_, load) in &columns {
            print!(" {:>12.2}ms", load.per_item_ms(ticks(&load.cpu)));
        }
        println!();
    };
    cpu_row("boxes (keepers, python)", &|c| c.boxes);
    cpu_row("judge workers, outside the boxes", &|c| c.workers);
    cpu_row("judge server", &|c| c.server);
    cpu_row("PostgreSQL", &|c| c.postgres);
    cpu_row("Redis", &|c| c.redis);
    cpu_row("this benchmark (clients, baseline host side)", &|c| c.client);
    cpu_row("kernel and the rest of the machine", &|c| c.rest());
    cpu_row("all CPUs busy", &|c| c.busy);
    print!("  {:<44}", "machine busy");
    for (_, load) in &columns {
        let share = load.cpu.busy as f64 / TICKS / load.wall.as_secs_f64() / cpus as f64;
        print!(" {:>13.0}%", share * 100.0);
    }
    println!();
    let disturbed = columns.iter().any(|(_, load)| load.per_item_ms(load.cpu.rest()) > 2.0);
    if disturbed {
        println!(
            "  warning: other processes used the CPUs during this run (\"the rest of the machine\"); \
             the figures are disturbed, rerun on a quiet machine"
        );
    }

    println!();
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let p50 = ms(f_serial.p50);
    println!("judge at concurrency 1: p50 = {p50:.2} ms (goal < 30 ms: {})", verdict(p50 < 30.0));
    println!(
        "judge at concurrency {CLIENTS}: {:.1}/s = {ratio:.2} of the sandbox alone's {:.1}/s (goal >= 0.70: {})",
        f_burst.per_second,
        f_same.per_second,
        verdict(ratio >= 0.70)
    );
    if let Some(f) = &f_per_cpu {
        println!(
            "  for reference, against the sandbox alone at one box per CPU ({:.1}/s): {:.2} (not the goal's \
             comparison: that uses the same number of boxes)",
            f.per_second,
            f_burst.per_second / f.per_second
        );
    }
    println!("(Judge0 CE takes about 500 ms from creation to result for a hello world.)");

    startup(&cluster, language_runs);
}
