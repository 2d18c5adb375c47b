//! Faults: a worker killed mid-run, a worker stopped mid-run, Redis restarted and Redis losing
//! all its data while submissions stream in. Nothing accepted may be lost, and every
//! submission finishes exactly once (its callback arrives once).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Cluster, Options};

/// A callback receiver counting deliveries per token.
struct Callbacks {
    url: String,
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

impl Callbacks {
    fn start() -> Callbacks {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/done", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let counts = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counts = counts.clone();
                std::thread::spawn(move || {
                    let v = support::read_request_json(&stream);
                    if let Some(token) = v["token"].as_str() {
                        *counts.lock().unwrap().entry(token.to_owned()).or_default() += 1;
                    }
                    let _ = (&stream)
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                });
            }
        });
        Callbacks { url, seen }
    }

    fn count(&self, token: &str) -> usize {
        self.seen.lock().unwrap().get(token).copied().unwrap_or(0)
    }
}

/// The receivers of [`Callbacks`] listen on loopback, which callbacks reach only when allowed.
fn callbacks_to_loopback() -> (String, String) {
    ("CALLBACK_ALLOWED_HOSTS".into(), "127.0.0.1".into())
}

fn fast_recovery() -> Options {
    Options {
        servers: 1,
        workers: 2,
        concurrency: 1,
        env: vec![("WORKER_CLAIM_TIMEOUT".into(), "3".into()), callbacks_to_loopback()],
        ..Options::default()
    }
}

fn submit(cluster: &Cluster, body: &Value) -> String {
    let r = cluster.request(0, "POST", "/submissions", Some(body));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

/// Waits until a worker's heartbeat (in Redis) says it runs something; returns its name.
fn busy_worker(cluster: &Cluster) -> String {
    let redis = |args: &[&str]| cluster.redis.command(args);
    let mut name = None;
    let found = support::wait_until(Duration::from_secs(30), || {
        let Ok(xtask::services::probe::Reply::Array(Some(keys))) = redis(&["KEYS", "judge:worker:*"]) else {
            return false;
        };
        for key in keys {
            let xtask::services::probe::Reply::Bulk(Some(key)) = key else { continue };
            let key = String::from_utf8_lossy(&key).into_owned();
            if let Ok(xtask::services::probe::Reply::Bulk(Some(beat))) = redis(&["GET", &key]) {
                let beat: Value = serde_json::from_slice(&beat).unwrap_or_default();
                if beat["running"].as_u64() > Some(0) {
                    name = beat["name"].as_str().map(str::to_owned);
                }
            }
        }
        name.is_some()
    });
    assert!(found, "no worker picked the submission up:\n{}", cluster.logs());
    name.unwrap()
}

fn worker_index(name: &str) -> usize {
    name.trim_start_matches("test-worker-").parse().unwrap()
}

/// Seconds since boot.
fn uptime() -> f64 {
    let text = std::fs::read_to_string("/proc/uptime").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// A process as `/proc` shows it.
#[derive(Debug, Clone)]
struct Process {
    pid: u32,
    parent: u32,
    /// Clock ticks after boot: a pid reused by another process has another start.
    start: u64,
    state: char,
    cmdline: String,
}

impl Process {
    fn read(pid: u32) -> Option<Process> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces and parentheses: the other fields follow its last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        Some(Process {
            pid,
            state: fields.first()?.chars().next()?,
            parent: fields.get(1)?.parse().ok()?,
            start: fields.get(19)?.parse().ok()?,
            cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
        })
    }

    /// Every process descending from `root` (its children, theirs, ...).
    fn descendants(root: u32) -> Vec<Process> {
        let all: Vec<Process> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter_map(Process::read)
            .collect();
        let (mut found, mut parents) = (Vec::new(), vec![root]);
        while let Some(parent) = parents.pop() {
            for child in all.iter().filter(|p| p.parent == parent) {
                parents.push(child.pid);
                found.push(child.clone());
            }
        }
        found
    }

    /// Whether it still runs: neither gone nor a zombie. (Nothing reaps orphans on some
    /// machines, so a dead process may stay a zombie.)
    fn runs(&self) -> bool {
        Process::read(self.pid).is_some_and(|now| now.start == self.start && now.state != 'Z')
    }
}

#[test]
fn a_worker_killed_mid_run_loses_nothing_and_the_submission_finishes_once() {
    let mut cluster = Cluster::start(fast_recovery());
    let callbacks = Callbacks::start();
    let token = submit(
        &cluster,
        &json!({
            "language_id": 71,
            "source_code": "import time\ntime.sleep(3)\nprint('survived')",
            "callback_url": callbacks.url,
        }),
    );
    // The worker running the program, and everything it started: its boxes' keepers (its
    // children), and the program (a keeper's child).
    let workers = [cluster.worker_pid(0), cluster.worker_pid(1)];
    let mut found = None;
    let started = support::wait_until(Duration::from_secs(30), || {
        found = workers.iter().enumerate().find_map(|(i, &pid)| {
            let processes = Process::descendants(pid);
            let program = processes.iter().any(|p| p.cmdline.contains("script.py") && p.runs());
            program.then_some((i, processes))
        });
        found.is_some()
    });
    assert!(started, "no worker's box ran the program:\n{}", cluster.logs());
    let (victim, boxes) = found.unwrap();
    let program = boxes.iter().find(|p| p.cmdline.contains("script.py")).cloned();
    let program = program.unwrap_or_else(|| panic!("the program is not among {boxes:?}"));
    assert!(boxes.iter().any(|p| p.parent == workers[victim]), "no keeper among {boxes:?}");
    cluster.kill_worker(victim);
    // The killed worker's boxes died with it: its keepers, and the program, which would still be
    // sleeping had its box survived (a keeper outlives its runs; the program sleeps 3 s).
    let gone = support::wait_until(Duration::from_secs(10), || !boxes.iter().any(Process::runs));
    let left: Vec<&Process> = boxes.iter().filter(|p| p.runs()).collect();
    assert!(gone, "processes of the killed worker's boxes still run: {left:?}");
    // Killed, not finished: gone before its 3 s sleep could end (2.9: the clocks below step by
    // 10 ms; USER_HZ, the unit of start times in /proc, is 100 on Linux).
    let lived = uptime() - program.start as f64 / 100.0;
    assert!(lived < 2.9, "the program ended by itself ({lived:.2} s), not with its box");
    let done = cluster.await_token(&token, "status,stdout", Duration::from_secs(60));
    assert_eq!(
        (done["status"]["id"].clone(), done["stdout"].clone()),
        (json!(3), json!("survived\n")),
        "{done}"
    );
    assert!(support::wait_until(Duration::from_secs(10), || callbacks.count(&token) == 1));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(callbacks.count(&token), 1, "finished more than once");
}

#[test]
fn a_stopping_worker_finishes_its_submission_before_exiting() {
    let mut cluster = Cluster::start(fast_recovery());
    let token = submit(
        &cluster,
        &json!({"language_id": 71, "source_code": "import time\ntime.sleep(2)\nprint('finished')"}),
    );
    let busy = busy_worker(&cluster);
    let status = cluster.stop_worker(worker_index(&busy));
    assert!(status.success(), "worker exit: {status:?}\n{}", cluster.logs());
    // Finished by the stopping worker itself, before it exited: no takeover delay.
    let r = cluster.request(0, "GET", &format!("/submissions/{token}?fields=status,stdout"), None).json();
    assert_eq!((r["status"]["id"].clone(), r["stdout"].clone()), (json!(3), json!("finished\n")), "{r}");
}

#[test]
fn redis_restarting_and_losing_its_data_loses_no_accepted_submission() {
    let mut cluster = Cluster::start(Options {
        servers: 2,
        env: vec![("WORKER_CLAIM_TIMEOUT".into(), "3".into()), callbacks_to_loopback()],
        ..Options::default()
    });
    let callbacks = Callbacks::start();
    let body = |i: usize| json!({"language_id": 71, "source_code": format!("print({i} * 2)"), "callback_url": callbacks.url});
    let mut accepted: Vec<(usize, String)> = Vec::new();
    let mut post = |cluster: &Cluster, i: usize| {
        let r = cluster.request(i % 2, "POST", "/submissions", Some(&body(i)));
        if r.status == 201 {
            accepted.push((i, r.json()["token"].as_str().unwrap().to_owned()));
        }
    };
    for i in 0..15 {
        post(&cluster, i);
    }
    // A crash: Redis dies and comes back (its append-only file keeps most of the queue).
    let port = cluster.redis.port();
    cluster.redis.kill().unwrap();
    for i in 15..20 {
        post(&cluster, i);
    }
    cluster.redis = xtask::services::Redis::start(&cluster.dir.path().join("redis"), port).unwrap();
    for i in 20..35 {
        post(&cluster, i);
    }
    // Worse: Redis loses everything (queue, consumer group, heartbeats).
    cluster.redis.command(&["FLUSHALL"]).unwrap();
    for i in 35..50 {
        post(&cluster, i);
    }
    assert!(accepted.len() >= 45, "only {} of 50 accepted:\n{}", accepted.len(), cluster.logs());
    for (i, token) in &accepted {
        let done = cluster.await_token(token, "status,stdout", Duration::from_secs(120));
        assert_eq!(
            (done["status"]["id"].clone(), done["stdout"].clone()),
            (json!(3), json!(format!("{}\n", i * 2))),
            "{done}"
        );
    }
    assert!(support::wait_until(Duration::from_secs(15), || accepted
        .iter()
        .all(|(_, t)| callbacks.count(t) >= 1)));
    std::thread::sleep(Duration::from_secs(4));
    let twice: Vec<&String> = accepted.iter().map(|(_, t)| t).filter(|t| callbacks.count(t) != 1).collect();
    assert!(twice.is_empty(), "callbacks not exactly once for {twice:?}");
}
