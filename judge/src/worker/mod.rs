//! `judge worker`: takes submissions from the queue, runs them in the sandbox, records the
//! results, tells the waiting servers and the callback URLs.

pub mod callback;
pub mod execute;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{FutureExt, StreamExt};
use judge_sandbox::{Bind, NetworkConfig, Sandbox, SandboxConfig};
use judge_wire::{Envelope, Event, OutputStream, Status};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::WorkerConfig;
use crate::db::{self, Outcome, Submission};
use crate::languages::{self, Languages};
use crate::queue::{self, CANCEL_CHANNEL, Entry, Heartbeat, Redis};
use crate::server::view;
use crate::startup;

/// How long a blocking queue read waits before checking for shutdown.
const READ_BLOCK: Duration = Duration::from_secs(2);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
const HEARTBEAT_TTL: Duration = Duration::from_secs(10);

/// A submission this worker is running.
#[derive(Debug)]
struct InFlight {
    entry: String,
    cancel: Arc<AtomicBool>,
}

/// Everything the worker's tasks share.
struct Worker {
    config: WorkerConfig,
    name: String,
    concurrency: usize,
    db: deadpool_postgres::Pool,
    redis: Redis,
    languages: Languages,
    /// The language ids (aliases included) whose toolchains this host has.
    runnable: Vec<i32>,
    sandbox: Sandbox,
    network_sandbox: Option<Sandbox>,
    inflight: Mutex<HashMap<Uuid, InFlight>>,
    /// When a slot last looked for work abandoned by silent workers.
    last_reclaim: Mutex<Instant>,
    stopping: AtomicBool,
    /// Sends callbacks; it connects only where `callback_allowance` permits.
    http: reqwest::Client,
    callback_allowance: Arc<callback::Allowance>,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "worker".into())
}

/// Warns when network-enabled programs could not use the host's resolvers: a box reaches only
/// public addresses and those the operator allowed, never the host's loopback (where
/// systemd-resolved and dnsmasq often answer).
fn warn_about_unreachable_resolvers(allowed: &[ipnet::Ipv4Net]) {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    for line in text.lines() {
        let Some(server) = line.trim().strip_prefix("nameserver") else { continue };
        let Ok(ip) = server.trim().parse::<std::net::IpAddr>() else { continue };
        let reachable = match ip {
            std::net::IpAddr::V4(v4) => {
                judge_sandbox::addresses::is_public(ip) || allowed.iter().any(|net| net.contains(&v4))
            }
            // Boxes have IPv4 only.
            std::net::IpAddr::V6(_) => false,
        };
        if !reachable {
            tracing::warn!(
                resolver = %ip,
                "Network-enabled programs cannot reach this resolver of /etc/resolv.conf: name lookups \
                 will fail unless it is public or listed in SANDBOX_NETWORK_ALLOWED."
            );
        }
    }
}

/// The ids of the languages whose every named path is on this host (the box sees the host's
/// system directories), warning about the others: `/languages` lists only what some live
/// worker can run, and an operator must know why one is missing.
fn runnable_languages(languages: &Languages, rust_present: bool) -> Vec<i32> {
    let mut runnable = Vec::new();
    let mut missing = Vec::new();
    for def in languages.defs().iter().filter(|d| !d.is_archived) {
        if def.runnable(|p| Path::new(p).exists(), rust_present) {
            runnable.extend(def.ids());
        } else {
            missing.push(format!("{} ({})", def.id, def.packages.join(" ")));
        }
    }
    if !missing.is_empty() {
        tracing::warn!(
            languages = %missing.join(", "),
            "This worker lacks the toolchains of some languages (their Debian packages in parentheses); \
             it does not offer them."
        );
    }
    runnable.sort_unstable();
    runnable
}

/// Read-only binds of the host directories outside the system ones that some language's
/// toolchain reads (those that exist here).
fn toolchain_binds(languages: &Languages) -> Vec<Bind> {
    let mut dirs: Vec<&String> = languages.defs().iter().flat_map(|d| d.binds.iter()).collect();
    dirs.sort_unstable();
    dirs.dedup();
    dirs.into_iter()
        .filter(|d| Path::new(d.as_str()).exists())
        .map(|d| Bind { source: d.into(), target: d.into(), writable: false })
        .collect()
}

fn rust_sysroot(configured: Option<PathBuf>) -> Option<PathBuf> {
    configured.or_else(|| {
        let out = std::process::Command::new("rustc").args(["--print", "sysroot"]).output().ok()?;
        out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    })
}

/// Runs the worker until `shutdown` completes, then finishes (or hands back) its work.
pub async fn run(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (db, redis, mut languages) = startup::connect(&config.connections, db::Durability::Relaxed).await?;
    let name = config.name.clone().unwrap_or_else(|| format!("{}-{}", host_name(), std::process::id()));
    let concurrency = config
        .concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);

    let sysroot = rust_sysroot(config.rust_sysroot.clone());
    let versions = {
        let (langs, root) = (languages.clone(), sysroot.clone());
        tokio::task::spawn_blocking(move || languages::detect_versions(&langs, root.as_deref())).await?
    };
    redis.set_language_versions(&versions).await?;
    languages.set_versions(versions);
    let runnable = runnable_languages(&languages, sysroot.is_some());

    let sandbox_config = |network: Option<NetworkConfig>| {
        let mut sandbox = SandboxConfig {
            run_dir: config.sandbox_run_dir.clone(),
            uid_base: config.sandbox_uid_base,
            max_idle: concurrency,
            box_cpus: config.sandbox_box_cpus.max(0.0),
            binds: sysroot
                .iter()
                .map(|s| Bind { source: s.clone(), target: "/opt/rust".into(), writable: false })
                .chain(toolchain_binds(&languages))
                .collect(),
            ..SandboxConfig::default()
        };
        for def in languages.defs() {
            for entry in &def.etc {
                if !sandbox.etc_entries.contains(entry) {
                    sandbox.etc_entries.push(entry.clone());
                }
            }
        }
        if network.is_some() {
            // The host's resolver, which must be public or allowed to be of use.
            sandbox.etc_entries.push("resolv.conf".into());
        }
        sandbox.network = network;
        sandbox
    };
    let sandbox = Sandbox::new(sandbox_config(None)).context("cannot set up the sandbox")?;
    let network_sandbox = if config.judge0.allow_enable_network {
        let network = NetworkConfig {
            pool: config.sandbox_network_pool,
            allowed: config.sandbox_network_allowed.0.clone(),
        };
        warn_about_unreachable_resolvers(&network.allowed);
        Some(Sandbox::new(sandbox_config(Some(network))).context("cannot set up the networked sandbox")?)
    } else {
        None
    };
    tracing::info!(
        worker = %name,
        concurrency,
        enforcement = ?sandbox.enforcement(),
        cpu_quota = sandbox.limits_cpu(),
        "Judge worker starting."
    );
    {
        let warm = sandbox.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(error) = warm.warm(concurrency) {
                tracing::warn!(%error, "Could not prepare boxes ahead of time.");
            }
        });
    }

    let callback_allowance = Arc::new(config.callback_allowed_hosts.clone());
    let worker = Arc::new(Worker {
        http: callback::client(
            callback_allowance.clone(),
            Duration::from_secs_f64(config.judge0.callbacks_timeout.max(0.1)),
        )
        .context("cannot build the callback client")?,
        callback_allowance,
        config,
        name,
        concurrency,
        db,
        redis,
        languages,
        runnable,
        sandbox,
        network_sandbox,
        inflight: Mutex::new(HashMap::new()),
        last_reclaim: Mutex::new(Instant::now()),
        stopping: AtomicBool::new(false),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        tasks.spawn(consume(worker.clone(), stop_rx.clone()));
    }
    tasks.spawn(heartbeat(worker.clone(), stop_rx.clone()));
    tasks.spawn(sweep(worker.clone(), stop_rx.clone()));
    tasks.spawn(listen_for_cancels(worker.clone(), stop_rx.clone()));

    shutdown.await;
    tracing::info!(worker = %worker.name, "Stopping: finishing the submissions in progress.");
    worker.stopping.store(true, Ordering::SeqCst);
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(worker.config.shutdown_grace_secs);
    let deadline = Instant::now() + grace;
    while !worker.inflight.lock().unwrap_or_else(PoisonError::into_inner).is_empty()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hand_back(&worker).await;
    let _ =
        tokio::time::timeout(Duration::from_secs(10), async { while tasks.join_next().await.is_some() {} })
            .await;
    let _ = worker.redis.forget_worker(&worker.name).await;
    tracing::info!(worker = %worker.name, "Worker stopped.");
    Ok(())
}

/// After the grace period: stop what still runs and put it back in the queue for others.
async fn hand_back(worker: &Worker) {
    let left: Vec<(Uuid, String)> = {
        let inflight = worker.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        for f in inflight.values() {
            f.cancel.store(true, Ordering::SeqCst);
        }
        inflight.iter().map(|(t, f)| (*t, f.entry.clone())).collect()
    };
    for (token, entry) in left {
        tracing::warn!(%token, "Handing a submission back to the queue.");
        // Whichever of our own finish and this happens first, the other is a no-op.
        let _ = db::requeued(&worker.db, token, false).await;
        let _ = worker.redis.enqueue(&[token.to_string()]).await;
        let _ = worker.redis.ack(&entry).await;
    }
}

/// Whether it is this slot's turn to look for abandoned work (a few times per claim timeout,
/// by one slot of the worker at a time).
fn reclaim_due(worker: &Worker) -> bool {
    let period = Duration::from_secs(worker.config.claim_timeout_secs.max(1)) / 3;
    let mut last = worker.last_reclaim.lock().unwrap_or_else(PoisonError::into_inner);
    if last.elapsed() < period {
        return false;
    }
    *last = Instant::now();
    true
}

/// Takes over one entry a silent worker held, if there is one.
async fn reclaim_one(worker: &Worker) -> Option<Entry> {
    let timeout = Duration::from_secs(worker.config.claim_timeout_secs.max(1));
    match worker.redis.reclaim(&worker.name, timeout, 1).await {
        Ok(entries) => {
            let entry = entries.into_iter().next()?;
            tracing::info!(token = entry.token, "Taking over a submission from a silent worker.");
            Some(entry)
        }
        Err(error) => {
            tracing::warn!(%error, "Cannot look for abandoned submissions.");
            None
        }
    }
}

/// One slot: take over abandoned work if any, else read a new entry; run it; repeat.
async fn consume(worker: Arc<Worker>, mut stop: watch::Receiver<bool>) {
    let mut conn = None;
    let mut pause = Duration::from_millis(100);
    while !*stop.borrow() {
        if reclaim_due(&worker)
            && let Some(entry) = reclaim_one(&worker).await
        {
            process_contained(&worker, entry).await;
            continue;
        }
        if conn.is_none() {
            match worker.redis.dedicated(READ_BLOCK + Duration::from_secs(5)).await {
                Ok(c) => conn = Some(c),
                Err(error) => {
                    tracing::warn!(%error, "Cannot reach the queue; retrying.");
                    tokio::select! { _ = tokio::time::sleep(pause) => {}, _ = stop.changed() => return }
                    pause = (pause * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let read = tokio::select! {
            r = queue::read_one(c, &worker.name, READ_BLOCK) => r,
            _ = stop.changed() => return,
        };
        match read {
            Ok(Some(entry)) => {
                pause = Duration::from_millis(100);
                process_contained(&worker, entry).await;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "Queue read failed; reconnecting.");
                conn = None;
                tokio::select! { _ = tokio::time::sleep(pause) => {}, _ = stop.changed() => return }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Publishes a live event; losing one is acceptable (the result is in PostgreSQL).
async fn publish(redis: &Redis, token: &str, event: Event) {
    let _ = redis.publish(&Envelope { token: token.to_owned(), event }).await;
}

/// [`process`], surviving a panic: the slot goes on with the next entry, and the entry in hand
/// stays pending, to be taken over (and counted as a crash) after the claim timeout.
async fn process_contained(worker: &Arc<Worker>, entry: Entry) {
    let token = entry.token.clone();
    if std::panic::AssertUnwindSafe(process(worker, entry)).catch_unwind().await.is_err() {
        tracing::error!(token, "Processing a submission panicked; it will be taken over.");
        if let Ok(token) = Uuid::parse_str(&token) {
            worker.inflight.lock().unwrap_or_else(PoisonError::into_inner).remove(&token);
        }
    }
}

/// Runs one queued submission to the end and acknowledges it.
async fn process(worker: &Arc<Worker>, entry: Entry) {
    let Ok(token) = Uuid::parse_str(&entry.token) else {
        let _ = worker.redis.ack(&entry.id).await;
        return;
    };
    let sub = match db::claim(&worker.db, token, &worker.name).await {
        Ok(Some(sub)) => sub,
        Ok(None) => {
            // Finished already, deleted, or cancelled before anyone ran it.
            if let Ok(Some(done)) = db::finish_cancelled(&worker.db, token, false).await {
                announce(worker, &done).await;
            }
            let _ = worker.redis.ack(&entry.id).await;
            return;
        }
        Err(error) => {
            // Left pending: another worker (or we) will take it again after the claim timeout.
            tracing::warn!(%error, %token, "Cannot claim a submission.");
            return;
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    worker
        .inflight
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(token, InFlight { entry: entry.id.clone(), cancel: cancel.clone() });
    // Best effort, off the submission's path.
    let (redis, name) = (worker.redis.clone(), token.to_string());
    let queued = sub.started_at.map(|s| (s - sub.created_at).as_seconds_f64()).unwrap_or(0.0);
    tokio::spawn(async move {
        publish(&redis, &name, Event::Status { status: Status::Processing }).await;
        let _ = redis.observe_latency("queue_wait", queued.max(0.0)).await;
    });

    let started = Instant::now();
    let outcome = if sub.crashes >= worker.config.max_crashes {
        tracing::error!(token = %sub.token, crashes = sub.crashes, "Not running again a submission that crashed its workers.");
        Outcome {
            status_id: Status::InternalError.id(),
            message: Some(format!(
                "Running this submission made its worker crash {} times; it is not run again.",
                sub.crashes
            )),
            ..Outcome::default()
        }
    } else {
        match run_submission(worker, &sub, cancel).await {
            Some(outcome) => outcome,
            None => {
                // As if this worker had died: the entry stays pending, is taken over after the
                // claim timeout, and counts as a crash then.
                tracing::error!(token = %sub.token, "Running a submission panicked; it will be taken over.");
                worker.inflight.lock().unwrap_or_else(PoisonError::into_inner).remove(&token);
                return;
            }
        }
    };
    let recorded = record(worker, &sub, &outcome).await;
    let run_seconds = started.elapsed().as_secs_f64();
    let redis = worker.redis.clone();
    tokio::spawn(async move {
        let _ = redis.observe_latency("run", run_seconds).await;
    });
    match recorded {
        Recorded::Finished(done) => {
            announce(worker, &done).await;
            if let Some(url) = done.new.callback_url.clone() {
                let w = worker.clone();
                tokio::spawn(async move {
                    let tries = w.config.judge0.callbacks_max_tries;
                    callback::send(&w.http, &w.callback_allowance, &url, &done, &w.languages, tries).await;
                });
            }
            let _ = worker.redis.ack(&entry.id).await;
        }
        Recorded::Superseded => {
            let _ = worker.redis.ack(&entry.id).await;
        }
        // Not acknowledged: the entry stays pending and is run again once it times out.
        Recorded::Failed => {}
    }
    worker.inflight.lock().unwrap_or_else(PoisonError::into_inner).remove(&token);
}

/// What became of an attempt's result.
enum Recorded {
    /// It is the submission's result.
    Finished(Box<Submission>),
    /// Another attempt finished the submission first (or it was deleted).
    Superseded,
    /// PostgreSQL stayed unreachable.
    Failed,
}

/// Runs the submission on a blocking thread, relaying its output live. `None` when the run
/// panicked.
async fn run_submission(worker: &Arc<Worker>, sub: &Submission, cancel: Arc<AtomicBool>) -> Option<Outcome> {
    let Some(language) = worker.languages.get(sub.new.language_id) else {
        return Some(Outcome {
            status_id: Status::InternalError.id(),
            message: Some(format!(
                "language with id {} is not available on this worker",
                sub.new.language_id
            )),
            ..Outcome::default()
        });
    };
    let sandbox = match (&worker.network_sandbox, sub.new.enable_network) {
        (Some(net), true) => net.clone(),
        _ => worker.sandbox.clone(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(OutputStream, Vec<u8>, u32)>(256);
    let redis = worker.redis.clone();
    let name = sub.token.to_string();
    let relay = tokio::spawn(async move {
        while let Some((stream, bytes, run)) = rx.recv().await {
            let data = crate::format::base64(&bytes);
            publish(&redis, &name, Event::Output { stream, data, run }).await;
        }
    });
    let (sub, judge0) = (sub.clone(), worker.config.judge0.clone());
    let (compile, fault) = (worker.config.compile.clone(), worker.config.fault_injection.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        // Live output is best effort: a slow subscriber loses chunks, never the result.
        let live = move |stream: OutputStream, bytes: &[u8], run: u32| {
            let _ = tx.try_send((stream, bytes.to_vec(), run));
        };
        let ctx = execute::Context {
            sandbox: &sandbox,
            judge0: &judge0,
            compile: &compile,
            cancel: &cancel,
            live: &live,
        };
        inject_fault(fault.as_deref(), &sub);
        execute::execute(&ctx, &sub, &language)
    })
    .await;
    let _ = relay.await;
    match outcome {
        Ok(outcome) => Some(outcome),
        Err(error) if error.is_panic() => None,
        Err(error) => Some(Outcome {
            status_id: Status::InternalError.id(),
            message: Some(format!("the run failed: {error}")),
            ..Outcome::default()
        }),
    }
}

/// Testing only, in debug builds: see `WorkerConfig::fault_injection`.
fn inject_fault(fault: Option<&str>, sub: &Submission) {
    #[cfg(debug_assertions)]
    for (kind, mark) in fault.into_iter().flat_map(|f| f.split(',')).filter_map(|f| f.split_once(':')) {
        let source = sub.new.source_code.as_deref().unwrap_or_default();
        if mark.is_empty() || !source.windows(mark.len()).any(|w| w == mark.as_bytes()) {
            continue;
        }
        match kind {
            "abort" => std::process::abort(),
            "panic" => panic!("injected fault"),
            _ => {}
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (fault, sub);
}

/// Commits the outcome, retrying while PostgreSQL is unreachable.
async fn record(worker: &Worker, sub: &Submission, outcome: &Outcome) -> Recorded {
    let mut pause = Duration::from_millis(100);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match db::finish(&worker.db, sub.token, sub.attempts, outcome).await {
            Ok(Some(done)) => return Recorded::Finished(Box::new(done)),
            Ok(None) => return Recorded::Superseded,
            Err(error) if Instant::now() < deadline => {
                tracing::warn!(%error, token = %sub.token, "Cannot record a result yet; retrying.");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(error) => {
                tracing::error!(%error, token = %sub.token, "Giving up recording a result; it will run again.");
                return Recorded::Failed;
            }
        }
    }
}

/// Tells waiting servers and live listeners that a submission is finished (the servers
/// first: a `wait=true` request is waiting on it).
async fn announce(worker: &Worker, done: &Submission) {
    let token = done.token.to_string();
    if let Err(error) = worker.redis.announce_done(&token, done.status_id).await {
        tracing::warn!(%error, token, "Cannot announce a finished submission.");
    }
    if let Ok(submission) = view::render(done, &view::DEFAULT_FIELDS, true, &worker.languages) {
        publish(&worker.redis, &token, Event::Done { submission }).await;
    }
}

/// Says this worker is alive, and renews the entries it holds.
async fn heartbeat(worker: Arc<Worker>, mut stop: watch::Receiver<bool>) {
    loop {
        let held: Vec<String> = worker
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|f| f.entry.clone())
            .collect();
        let beat = Heartbeat {
            name: worker.name.clone(),
            concurrency: worker.concurrency,
            running: held.len(),
            stopping: worker.stopping.load(Ordering::SeqCst),
            languages: worker.runnable.clone(),
        };
        if let Err(error) = worker.redis.heartbeat(&beat, HEARTBEAT_TTL).await {
            tracing::warn!(%error, "Cannot publish the heartbeat.");
        }
        let _ = worker.redis.touch(&worker.name, &held).await;
        tokio::select! { _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}, _ = stop.changed() => return }
    }
}

/// Queues again what PostgreSQL says is unfinished but the queue no longer holds (Redis lost
/// it, or a server could not queue it). One worker of the cluster sweeps at a time.
async fn sweep(worker: Arc<Worker>, mut stop: watch::Receiver<bool>) {
    let idle = worker.config.claim_timeout_secs.max(1) as f64;
    loop {
        tokio::select! { _ = tokio::time::sleep(Duration::from_secs(5)) => {}, _ = stop.changed() => return }
        match worker.redis.try_sweep_lock(&worker.name, Duration::from_secs(4)).await {
            Ok(true) => {}
            _ => continue,
        }
        let stale = match db::stale(&worker.db, idle, 500).await {
            Ok(s) if !s.is_empty() => s,
            _ => continue,
        };
        let Ok(present) = worker.redis.tokens_in_stream().await else { continue };
        for (token, status) in stale {
            let name = token.to_string();
            if present.contains(&name) {
                continue;
            }
            if status == Status::Processing.id()
                && let Ok(Some(host)) = db::execution_host(&worker.db, token).await
                && worker.redis.worker_alive(&host).await.unwrap_or(true)
            {
                // Still being run by a live worker whose queue entry Redis lost: let it finish.
                continue;
            }
            tracing::info!(%token, "Queueing a submission the queue had lost.");
            // Processing by a worker that is gone: it died running it.
            let crashed = status == Status::Processing.id();
            if db::requeued(&worker.db, token, crashed).await.is_ok() {
                let _ = worker.redis.enqueue(&[name]).await;
            }
        }
    }
}

/// Stops submissions this worker runs when someone cancels them.
async fn listen_for_cancels(worker: Arc<Worker>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Ok(mut pubsub) = worker.redis.pubsub().await
            && pubsub.subscribe(CANCEL_CHANNEL).await.is_ok()
        {
            let mut messages = pubsub.into_on_message();
            loop {
                let msg = tokio::select! { m = messages.next() => m, _ = stop.changed() => return };
                let Some(msg) = msg else { break };
                let Some(token) = msg.get_payload::<String>().ok().and_then(|t| Uuid::parse_str(&t).ok())
                else {
                    continue;
                };
                if let Some(f) = worker.inflight.lock().unwrap_or_else(PoisonError::into_inner).get(&token) {
                    f.cancel.store(true, Ordering::SeqCst);
                }
            }
        }
        tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => {}, _ = stop.changed() => return }
    }
}
