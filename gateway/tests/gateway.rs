//! The gateway in front of real axum backends on loopback: load spreading, health checks,
//! failover under load, 503s, WebSocket and SSE pass-through, headers, limits, metrics,
//! configuration errors and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Backend, Gateway, PoolSpec, wait_until};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn pool<'a>(name: &'a str, backends: &[&Backend], selection: &'a str) -> PoolSpec<'a> {
    PoolSpec {
        name,
        backends: backends.iter().map(|b| b.addr).collect(),
        selection,
        interval_ms: 200,
        unhealthy_after: 2,
        healthy_after: 1,
    }
}

fn whoami(gw: &Gateway) -> String {
    let r = client().get(format!("{}/whoami", gw.url)).send().unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().unwrap()["backend"].as_str().unwrap().to_owned()
}

#[test]
fn round_robin_spreads_requests_over_every_backend() {
    let backends: Vec<Backend> = ["a", "b", "c"].map(Backend::start).into();
    let refs: Vec<&Backend> = backends.iter().collect();
    let gw = Gateway::start(&[("/", "p")], &[pool("p", &refs, "round_robin")], "");
    for _ in 0..30 {
        whoami(&gw);
    }
    let hits: Vec<usize> = backends.iter().map(Backend::hits).collect();
    assert_eq!(hits, vec![10, 10, 10], "round robin gives each backend its turn");
}

#[test]
fn an_unhealthy_backend_leaves_within_its_checks_and_comes_back() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let gw = Gateway::start(&[("/", "p")], &[pool("p", &[&a, &b], "round_robin")], "");
    assert!(wait_until(Duration::from_secs(5), || { (0..4).map(|_| whoami(&gw)).any(|n| n == "b") }));
    // interval 200 ms × 2 failures: out within about 400 ms (plus one interval of phase).
    let failed_at = Instant::now();
    b.healthy.store(false, Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(3), || (0..6).all(|_| whoami(&gw) == "a")));
    let out_after = failed_at.elapsed();
    assert!(out_after < Duration::from_millis(200 * 3 + 300), "took {out_after:?} to leave");
    let before = b.hits();
    for _ in 0..20 {
        assert_eq!(whoami(&gw), "a");
    }
    assert_eq!(b.hits(), before, "an unhealthy backend gets no new requests");
    let recovered_at = Instant::now();
    b.healthy.store(true, Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(3), || (0..4).any(|_| whoami(&gw) == "b")));
    assert!(
        recovered_at.elapsed() < Duration::from_millis(200 * 2 + 300),
        "took {:?} to return",
        recovered_at.elapsed()
    );
}

#[test]
fn a_backend_killed_under_load_fails_no_get() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let gw = Arc::new(Gateway::start(&[("/", "p")], &[pool("p", &[&a, &b], "round_robin")], ""));
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (gw, failures, done, stop) = (gw.clone(), failures.clone(), done.clone(), stop.clone());
            std::thread::spawn(move || {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    let ok = c
                        .get(format!("{}/whoami", gw.url))
                        .send()
                        .is_ok_and(|r| r.status() == 200 && r.bytes().is_ok());
                    let counter = if ok { &done } else { &failures };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let serving = wait_until(Duration::from_secs(10), || a.hits() > 10);
    let hits_before_kill = a.hits();
    a.kill();
    // The requests that matter are those between the kill and the health checks' verdict:
    // keep the load on until the pool has taken the dead backend out, and well past it.
    let done_at_kill = done.load(Ordering::Relaxed);
    let taken_out = wait_until(Duration::from_secs(10), || gw.healthy_backends("p") == Some(1));
    let done_at_verdict = done.load(Ordering::Relaxed);
    let more_load =
        wait_until(Duration::from_secs(10), || done.load(Ordering::Relaxed) > done_at_verdict + 200);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        serving && hits_before_kill > 10,
        "the killed backend was serving before it died: {hits_before_kill}"
    );
    assert!(taken_out, "the health checks never took the killed backend out:\n{}", gw.log());
    assert!(
        done_at_verdict > done_at_kill && more_load,
        "load was applied across the failover: {done_at_kill} at the kill, {done_at_verdict} when taken out, {} in all",
        done.load(Ordering::Relaxed)
    );
    assert!(done.load(Ordering::Relaxed) > 200, "load was applied: {}", done.load(Ordering::Relaxed));
    assert_eq!(failures.load(Ordering::Relaxed), 0, "failed GETs:\n{}", gw.log());
}

#[test]
fn no_healthy_backend_is_a_503_with_a_json_body() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let gw = Gateway::start(&[("/", "p")], &[pool("p", &[&a, &b], "round_robin")], "");
    // Dead backends: connect failures on every one of them.
    a.kill();
    b.kill();
    let r = client().get(format!("{}/whoami", gw.url)).send().unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.json::<Value>().unwrap(), serde_json::json!({"error": "no healthy backend", "pool": "p"}));
    // Once the checks have marked them down, the answer comes without trying.
    assert!(
        wait_until(Duration::from_secs(5), || gw.healthy_backends("p") == Some(0)),
        "the health checks never marked the dead backends down:\n{}",
        gw.log()
    );
    let started = Instant::now();
    let r = client().get(format!("{}/whoami", gw.url)).send().unwrap();
    assert_eq!(r.status(), 503);
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[test]
fn websockets_and_event_streams_pass_through() {
    let a = Backend::start("a");
    let gw = Gateway::start(&[("/", "p")], &[pool("p", &[&a], "round_robin")], "");
    // Server-Sent Events arrive as they are sent, not when the stream ends.
    let started = Instant::now();
    let mut r = client().get(format!("{}/events", gw.url)).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut first = [0u8; 64];
    let n = r.read(&mut first).unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first[..n]).contains("data: 0"));
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    let total = started.elapsed();
    assert!(rest.contains("data: 1") && rest.contains("data: 2"), "{rest}");
    assert!(first_at + Duration::from_millis(400) < total, "first event at {first_at:?}, end at {total:?}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use futures_util::{SinkExt, StreamExt};
        let url = format!("{}/ws", gw.url.replace("http://", "ws://"));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        for word in ["one", "two"] {
            ws.send(tokio_tungstenite::tungstenite::Message::Text(word.into())).await.unwrap();
            let reply = ws.next().await.unwrap().unwrap();
            assert_eq!(reply.into_text().unwrap().as_str(), format!("echo: {word}"));
        }
    });
}

#[test]
fn request_ids_and_forwarding_headers_are_set_and_hop_by_hop_headers_stripped() {
    let a = Backend::start("a");
    let gw = Gateway::start(&[("/", "p")], &[pool("p", &[&a], "round_robin")], "");
    let r = client()
        .get(format!("{}/whoami", gw.url))
        .header("Connection", "keep-alive, X-Secret")
        .header("X-Secret", "hop")
        .header("Keep-Alive", "timeout=5")
        .header("X-Forwarded-For", "203.0.113.7")
        .send()
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let seen: Value = r.json().unwrap();
    assert_eq!(uuid::Uuid::parse_str(&id).map(|u| u.get_version_num()), Ok(4));
    assert_eq!(seen["x-request-id"], id.as_str());
    assert_eq!(seen["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!((seen["x-secret"].clone(), seen["keep-alive"].clone()), (Value::Null, Value::Null));
    let r = client().get(format!("{}/whoami", gw.url)).header("X-Request-Id", "trace-42").send().unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-42");
    assert_eq!(r.json::<Value>().unwrap()["x-request-id"], "trace-42");
    // Each request leaves an access line, written out in batches within 100 ms.
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let log = gw.log();
        if let Some(line) = log.lines().find(|l| l.contains("request_id=trace-42")) {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "no access line for trace-42:\n{log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for field in [
        "access",
        "method=GET",
        "path=/whoami",
        "status=200",
        "pool=p",
        "tries=1",
        "upstream=127.0.0.1:",
        "client=127.0.0.1",
        "error=-",
    ] {
        assert!(line.contains(field), "{field} missing from {line}");
    }
    assert!(!line.contains('\u{1b}'), "colour codes in a log file: {line:?}");
}

#[test]
fn request_bodies_and_headers_are_bounded() {
    let a = Backend::start("a");
    let gw = Gateway::start(
        &[("/", "p")],
        &[pool("p", &[&a], "round_robin")],
        "[limits]\nmax_body_kb = 4\nmax_header_kb = 2\n",
    );
    let ok = client().post(format!("{}/echo", gw.url)).body(vec![b'x'; 4000]).send().unwrap();
    assert_eq!((ok.status().as_u16(), ok.bytes().unwrap().len()), (200, 4000));
    let big = client().post(format!("{}/echo", gw.url)).body(vec![b'x'; 5000]).send().unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(big.json::<Value>().unwrap()["error"], "request body is too large");
    // A chunked body (no Content-Length) is counted as it streams.
    let chunks = futures_util::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 1000])));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/echo", gw.url))
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    });
    assert!(status == 413 || status == 0, "chunked oversize body: {status}");
    let headers =
        client().get(format!("{}/whoami", gw.url)).header("X-Big", "z".repeat(3000)).send().unwrap();
    assert_eq!(headers.status(), 431);
}

#[test]
fn routes_take_the_longest_matching_prefix() {
    let (site, api) = (Backend::start("site"), Backend::start("api"));
    let gw = Gateway::start(
        &[("/", "site"), ("/api", "api")],
        &[pool("site", &[&site], "round_robin"), pool("api", &[&api], "least_connections")],
        "",
    );
    let get = |path: &str| {
        client().get(format!("{}{path}", gw.url)).send().unwrap().json::<Value>().unwrap()["backend"].clone()
    };
    assert_eq!(get("/api/whoami"), "api");
    assert_eq!(get("/whoami"), "site");
}

#[test]
fn metrics_and_health_live_on_the_admin_listener() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let gw = Gateway::start(&[("/", "p")], &[pool("p", &[&a, &b], "round_robin")], "");
    for _ in 0..4 {
        whoami(&gw);
    }
    b.healthy.store(false, Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(3), || {
        let m = client().get(format!("{}/metrics", gw.admin)).send().unwrap().text().unwrap();
        m.contains(&format!("gateway_backend_healthy{{backend=\"{}\",pool=\"p\"}} 0", b.addr))
    }));
    let m = client().get(format!("{}/metrics", gw.admin)).send().unwrap().text().unwrap();
    assert!(m.contains("gateway_requests_total{pool=\"p\",route=\"/\",status=\"200\"} 4"), "{m}");
    assert!(m.contains(&format!("gateway_backend_healthy{{backend=\"{}\",pool=\"p\"}} 1", a.addr)), "{m}");
    assert!(m.contains("gateway_upstream_latency_seconds_count{pool=\"p\"} 4"), "{m}");
    let h: Value = client().get(format!("{}/healthz", gw.admin)).send().unwrap().json().unwrap();
    assert_eq!(h, serde_json::json!({"status": "ok", "pools": {"p": {"healthy": 1, "backends": 2}}}));
}

#[test]
fn bad_configuration_files_are_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[admin]\nlisten = \"127.0.0.1:1\"\n[[listeners]]\naddress = \"127.0.0.1:2\"\n[[routes]]\nprefix = \"/\"\npool = \"missing\"\n[pools]\n",
            "routes[0].pool",
        ),
        (
            "[admin]\nlisten = \"127.0.0.1:1\"\n[[listeners]]\naddress = \"localhost\"\n[[routes]]\nprefix = \"/\"\npool = \"p\"\n[pools.p]\nbackends = [\"127.0.0.1:3\"]\n[pools.p.health_check]\npath = \"/\"\n",
            "listeners[0].address",
        ),
        (
            "[admin]\nlisten = \"127.0.0.1:1\"\n[[listeners]]\naddress = \"127.0.0.1:2\"\n[[routes]]\nprefix = \"/\"\npool = \"p\"\n[pools.p]\nbackends = [\"127.0.0.1:3\"]\nretrys = 3\n[pools.p.health_check]\npath = \"/\"\n",
            "retrys",
        ),
        ("not toml at all [", "gateway.toml"),
    ];
    for (text, mention) in cases {
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
            .arg("--config")
            .arg(&path)
            .arg("--check")
            .output()
            .unwrap();
        assert!(!out.status.success(), "accepted:\n{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(mention), "{mention} not in: {stderr}");
    }
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--config", "/no/such/file.toml"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read /no/such/file.toml"));
}

#[test]
fn sigterm_lets_requests_in_flight_finish() {
    let a = Backend::start("a");
    let gw = Gateway::start(&[("/", "p")], &[pool("p", &[&a], "round_robin")], "");
    let url = format!("{}/slow", gw.url);
    let slow = std::thread::spawn(move || {
        client().get(url).send().map(|r| (r.status().as_u16(), r.text().unwrap_or_default()))
    });
    assert!(
        wait_until(Duration::from_secs(5), || a.hits() == 1),
        "the slow request never reached the backend:\n{}",
        gw.log()
    );
    let status = gw.terminate();
    assert!(status.success(), "exit: {status:?}");
    assert_eq!(slow.join().unwrap().unwrap(), (200, "slow done".to_owned()));
}

#[test]
fn a_new_binary_takes_the_listeners_over_without_refusing_a_request() {
    let (a, b) = (Backend::start("a"), Backend::start("b"));
    let mut old = Gateway::start(&[("/", "p")], &[pool("p", &[&a, &b], "round_robin")], "");
    let url = old.url.clone();
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (failures, served, stop) = (failures.clone(), served.clone(), stop.clone());
        std::thread::spawn(move || {
            // A new connection per request: what the upgrade must guarantee is that the listening
            // socket never refuses one. (An idle keep-alive connection closed by the exiting
            // process is the ordinary HTTP/1.1 race clients retry, not an upgrade property.)
            let c = reqwest::blocking::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                match c.get(format!("{url}/whoami")).send() {
                    Ok(r) if r.status() == 200 => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        eprintln!("upgrade: request failed: {other:?}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let mut new = old.start_successor();
    // Signalled before the successor listens, the old gateway would retry only after a second;
    // and the load must be running when the listeners change hands.
    assert!(
        wait_until(Duration::from_secs(10), || {
            old.successor_is_listening() && served.load(Ordering::Relaxed) >= 10
        }),
        "the successor never listened on {} (or no load: {} served):\n{}",
        old.upgrade_sock().display(),
        served.load(Ordering::Relaxed),
        std::fs::read_to_string(old.dir.path().join("successor.log")).unwrap_or_default()
    );
    let before = served.load(Ordering::Relaxed);
    old.signal("QUIT");
    let status = old.wait();
    assert!(status.success(), "the old gateway exits cleanly: {status:?}");
    // The successor serves on the same port.
    assert!(wait_until(Duration::from_secs(5), || served.load(Ordering::Relaxed) > before + 50));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(new.try_wait().unwrap().is_none(), "the new gateway runs");
    let _ = new.kill();
    let _ = new.wait();
    assert_eq!(failures.load(Ordering::Relaxed), 0, "requests failed during the upgrade:\n{}", old.log());
}

#[test]
fn cors_preflights_reach_the_backend_and_its_headers_come_back() {
    let backend = Backend::start("judge");
    let gw = Gateway::start(&[("/", "p")], &[pool("p", &[&backend], "round_robin")], "");
    // A browser's preflight: OPTIONS, no credentials, no body. The gateway neither answers
    // it nor changes it; the backend's answer, empty headers included, comes back whole.
    let send = |base: &str| {
        client()
            .request(reqwest::Method::OPTIONS, format!("{base}/cors"))
            .header("Origin", "http://page.example")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "x-auth-token, content-type")
            .send()
            .unwrap()
    };
    let cors_headers = |r: &reqwest::blocking::Response| -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| {
                k.as_str().starts_with("access-control-") || *k == "vary" || *k == "x-backend-saw"
            })
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        h.sort();
        h
    };
    let direct = send(&format!("http://{}", backend.addr));
    let expected = cors_headers(&direct);
    assert!(
        expected
            .iter()
            .any(|(k, v)| k == "x-backend-saw" && v.starts_with("OPTIONS origin=http://page.example"))
    );
    let before = backend.hits();
    let through = send(&gw.url);
    assert_eq!(through.status(), 200, "{}", gw.log());
    assert_eq!(backend.hits(), before + 1, "the preflight reached the backend once");
    assert_eq!(cors_headers(&through), expected, "the backend's answer, unchanged");
    assert!(through.headers().contains_key("x-request-id"));
    assert!(through.bytes().unwrap().is_empty());
    // The request that follows carries its credentials; the answer its CORS headers.
    let r = client()
        .post(format!("{}/cors", gw.url))
        .header("Origin", "http://page.example")
        .header("X-Auth-Token", "secret")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "http://page.example");
    assert_eq!(r.headers()["vary"], "Origin");
    assert_eq!(r.json::<Value>().unwrap()["backend"], "judge");
}
