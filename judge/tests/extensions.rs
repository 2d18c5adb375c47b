//! Verdict's additions to the Judge0 API: live events, cancel, health and metrics; and
//! callbacks as Judge0 sends them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Cluster, Options};

fn submit(cluster: &Cluster, body: &Value) -> String {
    let r = cluster.request(0, "POST", "/submissions", Some(body));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

#[test]
fn extensions() {
    // The callback receiver listens on loopback, which callbacks reach only when allowed.
    let env = vec![("CALLBACK_ALLOWED_HOSTS".into(), "127.0.0.1".into())];
    let cluster =
        Cluster::start(Options { servers: 1, workers: 1, concurrency: 1, env, ..Options::default() });
    live_events_stream_status_output_and_the_result(&cluster);
    events_of_a_finished_submission_are_its_result(&cluster);
    cancelling_stops_running_and_queued_submissions(&cluster);
    callbacks_put_the_default_fields_base64_encoded(&cluster);
    health_and_metrics_need_no_token_and_describe_the_cluster(&cluster);
}

fn live_events_stream_status_output_and_the_result(cluster: &Cluster) {
    let token = submit(
        cluster,
        &json!({
            "language_id": 71,
            "source_code": "import time\nprint('first', flush=True)\ntime.sleep(0.5)\nprint('second', flush=True)",
        }),
    );
    let url = format!("{}/submissions/{token}/events", cluster.url());
    let stream = support::sse(&url, &[("X-Auth-Token", &cluster.authn)]);
    assert_eq!(stream.status, 200);
    let events: Vec<support::SseEvent> = stream.collect();
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"status"), "{events:?}");
    assert_eq!(names.last(), Some(&"done"), "{events:?}");
    let stdout: String = events
        .iter()
        .filter(|e| e.event == "stdout")
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap()["data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stdout, "first\nsecond\n", "output arrives live, in order: {events:?}");
    let first_chunk = names.iter().position(|n| *n == "stdout").unwrap();
    assert!(first_chunk < names.len() - 1, "output before the result");
    let done: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!((done["status"]["id"].clone(), done["stdout"].clone()), (json!(3), json!("first\nsecond\n")));
    let processing = events.iter().any(|e| e.event == "status" && e.data.contains("\"id\":2"));
    assert!(processing, "a Processing status event: {events:?}");
}

fn events_of_a_finished_submission_are_its_result(cluster: &Cluster) {
    let done = cluster.run(&json!({"language_id": 71, "source_code": "print('over')"}), "");
    let token = done["token"].as_str().unwrap();
    let url = format!("{}/submissions/{token}/events?base64_encoded=true", cluster.url());
    let events: Vec<support::SseEvent> = support::sse(&url, &[("X-Auth-Token", &cluster.authn)]).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].event, "status");
    let result: Value = serde_json::from_str(&events[1].data).unwrap();
    assert_eq!(result["stdout"], "b3Zlcgo=\n");
    let missing = support::http(
        "GET",
        &format!("{}/submissions/00000000-0000-4000-8000-000000000000/events", cluster.url()),
        &[("X-Auth-Token", &cluster.authn)],
        None,
    );
    assert_eq!(missing.status, 404);
}

fn cancelling_stops_running_and_queued_submissions(cluster: &Cluster) {
    let running = submit(cluster, &json!({"language_id": 71, "source_code": "import time\ntime.sleep(30)"}));
    // With one worker slot, the second waits in the queue.
    let queued = submit(cluster, &json!({"language_id": 71, "source_code": "print('never')"}));
    assert!(support::wait_until(Duration::from_secs(20), || {
        cluster.request(0, "GET", &format!("/submissions/{running}?fields=status_id"), None).json()["status_id"]
            == 2
    }));
    let r = cluster.request(0, "POST", &format!("/submissions/{queued}/cancel"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"]["id"], 13);
    assert_eq!(r.json()["message"], "Cancelled");
    let started = Instant::now();
    let r = cluster.request(0, "POST", &format!("/submissions/{running}/cancel"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let done = cluster.await_token(&running, "status,message", Duration::from_secs(10));
    assert_eq!(
        (done["status"]["id"].clone(), done["message"].clone()),
        (json!(13), json!("Cancelled")),
        "{done}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "cancel took {:?}", started.elapsed());
    let again = cluster.request(0, "POST", &format!("/submissions/{running}/cancel"), None);
    assert_eq!(again.status, 400, "{}", again.text());
    // The queued one never ran, and the worker goes on serving.
    let q = cluster.request(0, "GET", &format!("/submissions/{queued}?fields=status_id,stdout"), None).json();
    assert_eq!(q, json!({"status_id": 13, "stdout": null}));
    let next = cluster.run(&json!({"language_id": 71, "source_code": "print('after')"}), "");
    assert_eq!(next["stdout"], "after\n");
}

fn callbacks_put_the_default_fields_base64_encoded(cluster: &Cluster) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook?x=1", listener.local_addr().unwrap());
    let token =
        submit(cluster, &json!({"language_id": 71, "source_code": "print('hi')", "callback_url": url}));
    listener.set_nonblocking(false).unwrap();
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut length = 0;
    let mut content_type = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 2 {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if let Some(v) = lower.strip_prefix("content-type:") {
            content_type = v.trim().to_owned();
        }
        line.clear();
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (&stream).write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(request_line.trim_end(), "PUT /hook?x=1 HTTP/1.1");
    assert_eq!(content_type, "application/json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["stdout", "time", "memory", "stderr", "token", "compile_output", "message", "status"]);
    assert_eq!(
        (v["stdout"].clone(), v["token"].clone(), v["status"]["id"].clone()),
        (json!("aGkK\n"), json!(token), json!(3))
    );
}

fn health_and_metrics_need_no_token_and_describe_the_cluster(cluster: &Cluster) {
    let health = support::http("GET", &format!("{}/healthz", cluster.url()), &[], None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok", "redis": "ok", "postgres": "ok"}));
    let metrics = support::http("GET", &format!("{}/metrics", cluster.url()), &[], None);
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    for needle in [
        "judge_queue_depth 0\n",
        "judge_workers 1\n",
        "judge_submissions_finished_total{status_id=\"3\",status=\"Accepted\"} ",
        "judge_submissions_finished_total{status_id=\"13\",status=\"Internal Error\"} 2\n",
        "judge_run_seconds_bucket{le=\"+Inf\"} ",
        "judge_queue_wait_seconds_count ",
        "judge_server_wait_seconds_count ",
        "judge_server_submissions_created_total ",
    ] {
        assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
    }
    let accepted: u64 = text
        .lines()
        .find(|l| l.starts_with("judge_submissions_finished_total{status_id=\"3\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(accepted >= 4, "{accepted} accepted");
    let api = support::http("GET", &format!("{}/statuses", cluster.url()), &[], None);
    assert_eq!((api.status, api.body.len()), (401, 0), "the API itself still needs the token");
}

/// What a program sees of the network: its interfaces, then whether it can connect to each of
/// the judge's stores and to the test's own listener, on loopback and on the host's side of
/// its link (its default gateway), one `what host result` line each.
fn network_probe(ports: &[(&str, u16)]) -> String {
    let targets: Vec<String> = ports.iter().map(|(what, port)| format!("('{what}', {port})")).collect();
    format!(
        "import errno, socket\n\
         gateway = None\n\
         for line in open('/proc/net/route').read().splitlines()[1:]:\n\
         \x20   f = line.split()\n\
         \x20   if f[1] == '00000000':\n\
         \x20       gateway = socket.inet_ntoa(bytes.fromhex(f[2])[::-1])\n\
         print('interfaces', ','.join(sorted(name for _, name in socket.if_nameindex())))\n\
         for what, port in [{}]:\n\
         \x20   for host in ['127.0.0.1'] + ([gateway] if gateway else []):\n\
         \x20       try:\n\
         \x20           socket.create_connection((host, port), timeout=3).close()\n\
         \x20           result = 'connected'\n\
         \x20       except socket.timeout:\n\
         \x20           result = 'timeout'\n\
         \x20       except OSError as e:\n\
         \x20           result = errno.errorcode.get(e.errno, str(e.errno))\n\
         \x20       print(what, host, result)\n",
        targets.join(", ")
    )
}

#[test]
fn a_network_enabled_program_reaches_nothing_of_the_judge_host() {
    let cluster = Cluster::start(Options {
        servers: 1,
        workers: 1,
        env: vec![("ALLOW_ENABLE_NETWORK".into(), "true".into())],
        ..Options::default()
    });
    // The test's own listener, on every address of the host, loopback included.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let ports = [
        ("redis", cluster.redis.port()),
        ("postgres", cluster.postgres.port()),
        ("listener", listener.local_addr().unwrap().port()),
    ];
    let program = network_probe(&ports);

    let isolated = cluster.run(&json!({"language_id": 71, "source_code": program}), "");
    let stdout = isolated["stdout"].as_str().unwrap_or_default();
    assert!(stdout.starts_with("interfaces lo\n"), "{isolated}");

    let networked =
        cluster.run(&json!({"language_id": 71, "source_code": program, "enable_network": true}), "");
    let stdout = networked["stdout"].as_str().unwrap_or_default();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"interfaces eth0,lo"), "a network box has a link out: {networked}");
    assert_eq!(
        lines.len(),
        1 + 2 * ports.len(),
        "every store tried on loopback and the gateway: {networked}"
    );
    for line in &lines[1..] {
        assert!(!line.ends_with(" connected"), "a network-enabled program reached {line}:\n{stdout}");
    }
    assert!(listener.accept().is_err(), "the test's listener saw a connection");
}
