//! Hostile submissions, through the Judge0 API only: archives and programs built to crash
//! workers, to outgrow their limits, or to carry state from one run to the next. None may harm
//! another submission or the cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Cluster, Options};

fn zip_of(entries: &[(&str, &[u8])]) -> String {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        for (name, body) in entries {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(body).unwrap();
        }
        zip.finish().unwrap();
    }
    judge::format::base64(buf.get_ref())
}

fn submit(cluster: &Cluster, body: &Value) -> String {
    let r = cluster.request(0, "POST", "/submissions", Some(body));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

fn all_alive(cluster: &mut Cluster, workers: usize) {
    for i in 0..workers {
        assert!(!cluster.worker_exited(i), "worker {i} died:\n{}", cluster.logs());
    }
}

#[test]
fn hostile_archives_and_programs_harm_no_worker() {
    let mut cluster =
        Cluster::start(Options { servers: 1, workers: 2, concurrency: 1, ..Options::default() });
    archives_of_unbounded_shape_are_refused(&cluster);
    deep_directory_chains_are_wiped_without_crashing(&mut cluster);
    output_is_capped_by_max_file_size(&cluster);
    no_run_starts_from_what_an_earlier_run_left(&cluster);
    the_memory_limit_holds_whatever_the_compile_step_left(&cluster);
    all_alive(&mut cluster, 2);
}

/// The poison pill of the hostile pass: one entry 16,000 directories deep. Refused at the
/// door with Judge0's shape of error, like the other archives no box should have to extract.
fn archives_of_unbounded_shape_are_refused(cluster: &Cluster) {
    let deep = format!("{}x", "d/".repeat(16_000));
    let nested = format!("{}x", "d/".repeat(64));
    let names: Vec<String> = (0..=4096).map(|i| format!("f{i}")).collect();
    let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    for (zip, expected) in [
        (zip_of(&[(&deep, b"x")]), "has a path longer than 1024 bytes"),
        (zip_of(&[(&nested, b"x")]), "is nested deeper than 64 levels"),
        (zip_of(&many), "has 4097 entries, more than 4096"),
        (zip_of(&[("../escape", b"x")]), "entry `../escape` has an unsafe path"),
        (judge::format::base64(b"not a zip"), "is not a zip archive"),
    ] {
        let body = json!({"language_id": 71, "source_code": "print(1)", "additional_files": zip});
        let r = cluster.request(0, "POST", "/submissions", Some(&body));
        assert_eq!(r.status, 422, "{}", r.text());
        let errors = r.json();
        let message = errors["additional_files"][0].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(expected), "{expected:?} not in {errors}");
        assert_eq!(errors.as_object().map(|o| o.len()), Some(1), "{errors}");
    }
}

/// The same chain built by a program, in /tmp and in /box: the worker wipes both after the
/// run, and goes on.
fn deep_directory_chains_are_wiped_without_crashing(cluster: &mut Cluster) {
    let chain = "import os\nfor top in ('/tmp', '/box'):\n    os.chdir(top)\n    for _ in range(16000):\n        os.mkdir('d'); os.chdir('d')\nprint('built')";
    for _ in 0..2 {
        let done = cluster.run(&json!({"language_id": 71, "source_code": chain}), "");
        assert_eq!(
            (done["status"]["id"].clone(), done["stdout"].clone()),
            (json!(3), json!("built\n")),
            "{done}"
        );
    }
    all_alive(cluster, 2);
    let done = cluster.run(&json!({"language_id": 71, "source_code": "print('after')"}), "");
    assert_eq!(done["stdout"], "after\n", "{done}");
}

/// Judge0 keeps at most `max_file_size` KB of each stream; so does Verdict, and says so.
fn output_is_capped_by_max_file_size(cluster: &Cluster) {
    let flood = "import sys\nsys.stdout.write('x' * (3 << 20))";
    let done = cluster.run(&json!({"language_id": 71, "source_code": flood}), "fields=stdout,status,message");
    assert_eq!(done["status"]["id"], 8, "{}", done["message"]);
    assert_eq!(done["stdout"].as_str().map(str::len), Some(1024 * 1024));
    assert_eq!(done["message"], "Output limit exceeded: stdout was cut at 1024 KB (max_file_size)");
    let body = json!({"language_id": 71, "source_code": flood, "max_file_size": 64});
    let done = cluster.run(&body, "fields=stdout,status");
    assert_eq!(
        (done["status"]["id"].clone(), done["stdout"].as_str().map(str::len)),
        (json!(8), Some(64 * 1024))
    );
    let quiet = json!({"language_id": 71, "source_code": "print('fits')", "max_file_size": 1});
    assert_eq!(cluster.run(&quiet, "")["stdout"], "fits\n");
}

/// `number_of_runs` cannot turn a time limit into an accepted run by checkpointing progress in
/// the box: every run starts from the box as the compile step left it.
fn no_run_starts_from_what_an_earlier_run_left(cluster: &Cluster) {
    let resumer = "import os\nif os.path.exists('progress'):\n    print('resumed')\nelse:\n    open('progress', 'w').write('half')\n    while True:\n        pass";
    let body = json!({"language_id": 71, "source_code": resumer, "number_of_runs": 3, "cpu_time_limit": 0.5});
    let done = cluster.run(&body, "fields=stdout,status,time");
    assert_eq!(done["status"]["id"], 5, "{done}");
    assert_eq!(done["stdout"], Value::Null, "{done}");
}

/// A multi-file program whose compile step leaves 200 MiB in the box, and whose run deletes it
/// to take the memory: the run's limit holds.
fn the_memory_limit_holds_whatever_the_compile_step_left(cluster: &Cluster) {
    let zip = zip_of(&[
        ("compile", b"head -c 104857600 /dev/zero > junk1\nhead -c 104857600 /dev/zero > junk2\n"),
        ("run", b"rm -f junk1 junk2\nexec python3 -c 'b = bytearray(200 << 20); print(len(b))'\n"),
    ]);
    let body = json!({"language_id": 89, "additional_files": zip, "memory_limit": 64000});
    let done = cluster.run(&body, "fields=stdout,status,message,compile_output");
    assert_eq!(
        (done["status"]["id"].clone(), done["message"].clone()),
        (json!(12), json!("Memory limit exceeded")),
        "{done}"
    );
}

#[test]
fn a_submission_that_crashes_its_workers_ends_after_a_bounded_number_of_tries() {
    let mut cluster = Cluster::start(Options {
        servers: 1,
        workers: 3,
        concurrency: 1,
        env: vec![
            ("WORKER_CLAIM_TIMEOUT".into(), "3".into()),
            ("VERDICT_FAULT_INJECTION".into(), "abort:ABORT-HERE,panic:PANIC-HERE".into()),
            ("COMPILE_MAX_PROCESSES_AND_OR_THREADS".into(), "1".into()),
        ],
        ..Options::default()
    });
    // A panic running it: contained, and after two the submission ends; no worker dies.
    let token = submit(&cluster, &json!({"language_id": 71, "source_code": "print('PANIC-HERE')"}));
    let done = cluster.await_token(&token, "status,message", Duration::from_secs(60));
    assert_eq!(done["status"]["id"], 13, "{done}");
    assert_eq!(
        done["message"],
        "Running this submission made its worker crash 2 times; it is not run again."
    );
    all_alive(&mut cluster, 3);

    // An abort: it kills two workers, then ends; the rest of the queue flows on the third.
    let pill = submit(&cluster, &json!({"language_id": 71, "source_code": "print('ABORT-HERE')"}));
    let others: Vec<(usize, String)> = (0..4)
        .map(|i| (i, submit(&cluster, &json!({"language_id": 71, "source_code": format!("print({i} * 7)")}))))
        .collect();
    let done = cluster.await_token(&pill, "status,message", Duration::from_secs(90));
    assert_eq!(done["status"]["id"], 13, "{done}");
    assert!(done["message"].as_str().unwrap_or_default().contains("crash 2 times"), "{done}");
    for (i, token) in others {
        let done = cluster.await_token(&token, "status,stdout", Duration::from_secs(60));
        assert_eq!(
            (done["status"]["id"].clone(), done["stdout"].clone()),
            (json!(3), json!(format!("{}\n", i * 7)))
        );
    }
    let dead = (0..3).filter(|&i| cluster.worker_exited(i)).count();
    assert_eq!(dead, 2, "{}", cluster.logs());

    // The compile step has limits of its own, not the maxima for running: one process, so
    // gcc cannot even start its compiler proper.
    let done = cluster.run(&json!({"language_id": 50, "source_code": "int main(void) { return 0; }"}), "");
    assert_eq!(done["status"]["id"], 6, "{done}");
}

/// A value of the server's `/metrics`.
fn metric(cluster: &Cluster, name: &str) -> f64 {
    let text = support::http("GET", &format!("{}/metrics", cluster.url()), &[], None).text();
    let line = text.lines().find(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ')));
    line.and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

/// Peak resident memory of a process, in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Clients that read large submissions, watch live output without reading it, or open stream
/// after stream: each costs the server a bounded amount, and Redis nothing.
#[test]
fn what_a_client_may_cost_the_server_is_bounded() {
    let cluster = Cluster::start(Options {
        servers: 1,
        workers: 1,
        concurrency: 2,
        env: vec![
            ("MAX_EVENT_STREAMS".into(), "3".into()),
            ("MAX_CONCURRENT_READS".into(), "2".into()),
            ("ANSWER_BUDGET_MB".into(), "40".into()),
        ],
        ..Options::default()
    });
    let auth = [("X-Auth-Token", cluster.authn.as_str())];

    // A large submission: 3 MiB each of source, stdin and expected output, and 4 MiB each of
    // stdout and stderr.
    let filler = "#".repeat(3 << 20);
    let source =
        format!("import sys\nsys.stdout.write('o' * (4 << 20))\nsys.stderr.write('e' * (4 << 20))\n{filler}");
    let big = json!({"language_id": 71, "source_code": source, "stdin": "i".repeat(3 << 20),
        "expected_output": "x".repeat(3 << 20), "max_file_size": 4096});
    let token = submit(&cluster, &big);
    let done = cluster.await_token(&token, "status", Duration::from_secs(60));
    assert_eq!(done["status"]["id"], 4, "{done}");
    let server = cluster.server_pid(0);
    let before = peak_kib(server);
    let url = format!("{}/submissions/{token}?fields=*&base64_encoded=true", cluster.url());
    let lengths: Vec<usize> = std::thread::scope(|s| {
        let readers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let r = support::http("GET", &url, &auth, None);
                    assert_eq!(r.status, 200, "{}", r.text());
                    r.body.len()
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert!(lengths.iter().all(|&n| n > 20 << 20 && n == lengths[0]), "{lengths:?}");
    let grown = peak_kib(server).saturating_sub(before);
    assert!(
        grown < 250 * 1024,
        "8 reads of a {} MiB answer grew the server by {} MiB",
        lengths[0] >> 20,
        grown / 1024
    );

    // Event streams: a bounded number, and none takes a Redis connection of its own.
    let clients = |r: xtask::services::probe::Reply| match r {
        xtask::services::probe::Reply::Bulk(Some(info)) => String::from_utf8_lossy(&info)
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:").map(|n| n.trim().parse::<u64>().unwrap()))
            .unwrap(),
        other => panic!("INFO: {other:?}"),
    };
    let slow = submit(
        &cluster,
        &json!({"language_id": 71, "source_code": "import time\nprint('a', flush=True)\ntime.sleep(4)"}),
    );
    let connections = clients(cluster.redis.command(&["INFO", "clients"]).unwrap());
    let events = format!("{}/submissions/{slow}/events", cluster.url());
    let mut streams: Vec<support::Sse> = (0..3).map(|_| support::sse(&events, &auth)).collect();
    for stream in &mut streams {
        assert_eq!(stream.status, 200);
        assert_eq!(stream.next().map(|e| e.event), Some("status".into()));
    }
    let refused = support::http("GET", &events, &auth, None);
    assert_eq!((refused.status, refused.json()), (503, json!({"error": "too many event streams"})));
    assert_eq!(clients(cluster.redis.command(&["INFO", "clients"]).unwrap()), connections);
    drop(streams);

    // A client that never reads: dropped once it is behind, not buffered without end.
    let flood = json!({"language_id": 71, "max_file_size": 4096, "source_code":
        "import sys, time\nfor i in range(64):\n    sys.stdout.write('o' * 65536); sys.stdout.flush()\n    sys.stderr.write('e' * 65536); sys.stderr.flush()\n    time.sleep(0.01)"});
    let token = submit(&cluster, &flood);
    let idle = format!("{}/submissions/{token}/events?base64_encoded=true", cluster.url());
    // The streams closed above leave once the server notices (at their next event).
    let left = support::wait_until(Duration::from_secs(30), || {
        metric(&cluster, "judge_server_event_streams") == 0.0
    });
    assert!(left, "closed event streams were never let go");
    let never_read = support::sse_small_window(&idle, &auth);
    assert_eq!(never_read.status, 200);
    let dropped = support::wait_until(Duration::from_secs(60), || {
        metric(&cluster, "judge_server_event_streams_dropped_total") >= 1.0
    });
    assert!(dropped, "a client that never reads was never dropped:\n{}", cluster.logs());
    assert_eq!(metric(&cluster, "judge_server_event_streams"), 0.0);
    drop(never_read);
    let done = cluster.await_token(&token, "status", Duration::from_secs(60));
    assert_eq!(done["status"]["id"], 3, "{done}");
}
