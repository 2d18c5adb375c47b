//! The Judge0 CE 1.13.1 contract (`shared/JUDGE0_API.md`), checked over the wire against real
//! clusters: every endpoint, parameter, default, limit, value format, error shape and status
//! code, with exact bodies.
//!
//! One main cluster (two servers, two workers, default settings) walks most of the contract;
//! three small ones cover what needs other settings: deletion enabled, maintenance mode, and
//! a cluster with no tokens, no waiting, no batches, a queue of one and a custom language file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use support::{Cluster, Options, Response, http, wait_until};

// ---------------------------------------------------------------------------------------------
// What the contract fixes, written out once.

/// `fields=*`, in Judge0's serializer order.
const ALL_FIELDS: [&str; 35] = [
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

const DEFAULT_FIELDS: [&str; 8] =
    ["stdout", "time", "memory", "stderr", "token", "compile_output", "message", "status"];

const STATUSES: [&str; 14] = [
    "In Queue",
    "Processing",
    "Accepted",
    "Wrong Answer",
    "Time Limit Exceeded",
    "Compilation Error",
    "Runtime Error (SIGSEGV)",
    "Runtime Error (SIGXFSZ)",
    "Runtime Error (SIGFPE)",
    "Runtime Error (SIGABRT)",
    "Runtime Error (NZEC)",
    "Runtime Error (Other)",
    "Internal Error",
    "Exec Format Error",
];

const NOT_UTF8: &str = "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter";
const NOT_UTF8_MANY: &str = "some attributes for one or more submissions cannot be converted to UTF-8, use base64_encoded=true query parameter";
const BATCH_EMPTY: &str = "there should be at least one submission in a batch";
const BATCH_TOO_BIG: &str = "number of submissions in a batch should be less than or equal to 20";

/// A C program whose whole output is the byte 0xff: not UTF-8.
const NOT_UTF8_PROGRAM: &str = "#include <stdio.h>\nint main(void) { putchar(255); return 0; }\n";

/// `/config_info` with Judge0's defaults (and ours where the contract allows: the queue size).
fn default_config_info() -> Value {
    json!({
        "maintenance_mode": false,
        "enable_wait_result": true,
        "enable_compiler_options": true,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": true,
        "enable_submission_delete": false,
        "enable_callbacks": true,
        "callbacks_max_tries": 3,
        "callbacks_timeout": 5.0,
        "enable_additional_files": true,
        "max_queue_size": 10000,
        "cpu_time_limit": 5.0,
        "max_cpu_time_limit": 15.0,
        "cpu_extra_time": 1.0,
        "max_cpu_extra_time": 5.0,
        "wall_time_limit": 10.0,
        "max_wall_time_limit": 20.0,
        "memory_limit": 128000,
        "max_memory_limit": 512000,
        "stack_limit": 64000,
        "max_stack_limit": 128000,
        "max_processes_and_or_threads": 60,
        "max_max_processes_and_or_threads": 120,
        "enable_per_process_and_thread_time_limit": false,
        "allow_enable_per_process_and_thread_time_limit": true,
        "enable_per_process_and_thread_memory_limit": false,
        "allow_enable_per_process_and_thread_memory_limit": true,
        "max_file_size": 1024,
        "max_max_file_size": 4096,
        "number_of_runs": 1,
        "max_number_of_runs": 20,
        "redirect_stderr_to_stdout": false,
        "max_extract_size": 10240,
        "enable_batched_submissions": true,
        "max_submission_batch_size": 20,
        "submission_cache_duration": 1.0,
        "use_docs_as_homepage": false,
        "allow_enable_network": false,
        "enable_network": false,
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers: requests and exact comparisons.

/// Same values, same key order, same number formats (`5.0` is not `5`).
#[track_caller]
fn assert_same(actual: &Value, expected: &Value, context: &str) {
    assert_eq!(actual.to_string(), expected.to_string(), "{context}");
}

/// The status and the exact JSON body.
#[track_caller]
fn expect_json(r: &Response, status: u16, expected: &Value, context: &str) {
    assert_eq!(r.status, status, "{context}: {}", r.text());
    assert_same(&r.json(), expected, context);
}

/// The status and an empty body.
#[track_caller]
fn expect_empty(r: &Response, status: u16, context: &str) {
    assert_eq!(r.status, status, "{context}: {}", r.text());
    assert!(r.body.is_empty(), "{context}: body should be empty, got {:?}", r.text());
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect()
}

fn is_uuid_v4(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 4 && u.hyphenated().to_string() == s)
}

/// `2026-01-02T03:04:05.678Z`.
fn is_timestamp(s: &str) -> bool {
    let pattern = "dddd-dd-ddTdd:dd:dd.dddZ";
    s.len() == pattern.len()
        && s.bytes().zip(pattern.bytes()).all(|(c, p)| if p == b'd' { c.is_ascii_digit() } else { c == p })
}

/// A JSON string holding a decimal: `"0.012"`, `"5.0"`.
fn is_decimal(v: &Value) -> bool {
    v.as_str().and_then(|s| s.split_once('.')).is_some_and(|(int, frac)| {
        !int.is_empty()
            && !frac.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Ruby's `Base64.encode64`: a newline after every 60 characters and one at the end.
fn mime(bytes: &[u8]) -> String {
    let plain = STANDARD.encode(bytes);
    plain.as_bytes().chunks(60).map(|c| format!("{}\n", std::str::from_utf8(c).unwrap())).collect()
}

fn token_of(r: &Response) -> String {
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    assert_eq!(keys(&body), ["token"], "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(is_uuid_v4(&token), "not a UUID v4: {token}");
    token
}

fn python(source: &str) -> Value {
    json!({"source_code": source, "language_id": 71})
}

/// `base` with `extra`'s keys added or replaced.
fn with(base: &Value, extra: &Value) -> Value {
    let mut out = base.clone();
    for (k, v) in extra.as_object().unwrap() {
        out[k] = v.clone();
    }
    out
}

/// A JSON request with only a `Content-Type`: no credentials.
fn anonymous(method: &str, url: &str, body: Option<&Value>) -> Response {
    let body = body.map(|b| serde_json::to_vec(b).unwrap());
    let headers: &[(&str, &str)] = if body.is_some() { &[("Content-Type", "application/json")] } else { &[] };
    http(method, url, headers, body.as_deref())
}

/// Polls a submission until its status id satisfies `done`.
fn await_status(c: &Cluster, server: usize, token: &str, done: impl Fn(i64) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.request(server, "GET", &format!("/submissions/{token}?fields=*&base64_encoded=true"), None);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        if v["status_id"].as_i64().is_some_and(&done) {
            return v;
        }
        assert!(Instant::now() < deadline, "submission {token} stuck at {v}\n{}", c.logs());
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------------------------------------
// The main cluster: default settings, two servers, two workers.

#[test]
fn judge0_contract_with_default_settings() {
    let c = Cluster::start(Options::default());
    workers_before_any_work(&c);
    info_endpoints(&c);
    authentication(&c);
    submission_formats(&c);
    parameters(&c);
    base64(&c);
    not_utf8(&c);
    verdicts_and_aliases(&c);
    validation(&c);
    show(&c);
    batches(&c);
    listing(&c);
    deletion_disabled(&c);
    languages_carry_versions(&c);
    statistics(&c);
    servers_agree(&c);
}

/// `GET /workers` as Judge0 shows it: `[{queue,size,available,idle,working,paused,failed}]`.
///
/// The server also adds a `workers` list (each worker's heartbeat) that the contract does not
/// allow; `tests/faults.rs` reads it. It is checked for being last and then set aside here.
#[track_caller]
fn expect_workers(r: &Response, expected: &Value, context: &str) {
    assert_eq!(r.status, 200, "{context}: {}", r.text());
    assert_same(&r.json(), expected, context);
}

/// `/workers` with `size` queued and `available` idle workers.
fn judge0_workers(size: u64, available: u64) -> Value {
    json!([{"queue": "1.13.1", "size": size, "available": available, "idle": available, "working": 0,
        "paused": 0, "failed": 0}])
}

fn workers_before_any_work(c: &Cluster) {
    let r = c.request(0, "GET", "/workers", None);
    let expected = judge0_workers(0, 2);
    expect_workers(&r, &expected, "/workers with two idle workers");
}

fn info_endpoints(c: &Cluster) {
    let r = c.request(0, "GET", "/about", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let about = r.json();
    assert_eq!(keys(&about), ["version", "homepage", "source_code", "maintainer"]);
    assert_eq!(about["version"], "1.13.1", "SDKs map language ids by this version");
    assert!(["homepage", "source_code", "maintainer"].iter().all(|k| about[k].is_string()), "{about}");

    let r = c.request(0, "GET", "/version", None);
    assert_eq!((r.status, r.text().trim()), (200, "1.13.1"));
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain")), "{:?}", r.headers);
    for path in ["/license", "/isolate"] {
        let r = c.request(0, "GET", path, None);
        assert_eq!(r.status, 200, "{path}");
        assert!(!r.text().trim().is_empty(), "{path} is empty");
        assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/plain")), "{path}");
    }

    let statuses: Vec<Value> =
        STATUSES.iter().zip(1..).map(|(d, id)| json!({"id": id, "description": d})).collect();
    expect_json(&c.request(0, "GET", "/statuses", None), 200, &Value::Array(statuses), "/statuses");

    let r = c.request(0, "GET", "/config_info", None);
    expect_json(&r, 200, &default_config_info(), "/config_info: the 39 keys, in order, with defaults");
    assert_eq!(keys(&r.json()).len(), 39);

    let r = c.request(0, "GET", "/system_info", None);
    assert_eq!(r.status, 200);
    let info = r.json();
    let cpus = std::thread::available_parallelism().unwrap().get().to_string();
    assert_eq!(info["CPU(s)"], cpus.as_str(), "{info}");
    for key in ["Architecture", "Model name", "Mem", "Swap"] {
        assert!(info[key].is_string(), "/system_info lacks {key}: {info}");
    }

    // Languages: active ones that a live worker runs, sorted by name, aliases under their own ids.
    let r = c.request(0, "GET", "/languages", None);
    assert_eq!(r.status, 200);
    let list = r.json();
    let list = list.as_array().unwrap();
    assert!(list.iter().all(|l| keys(l) == ["id", "name"]), "{list:?}");
    let names: Vec<&str> = list.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "not sorted by name: {names:?}");
    for (id, prefix) in [
        (50, "C (GCC "),
        (54, "C++ (GCC "),
        (62, "Java (OpenJDK "),
        (63, "JavaScript (Node.js "),
        (71, "Python ("),
        (60, "Go ("),
        (73, "Rust ("),
        (74, "TypeScript ("),
        (46, "Bash ("),
        (43, "Plain Text"),
        (89, "Multi-file program"),
    ] {
        let l = list.iter().find(|l| l["id"] == id).unwrap_or_else(|| panic!("language {id} missing"));
        assert!(l["name"].as_str().unwrap().starts_with(prefix), "{l}");
    }
    for (alias, prefix) in [(48, "C (GCC "), (49, "C (GCC "), (52, "C++ (GCC "), (53, "C++ (GCC ")] {
        let l = list.iter().find(|l| l["id"] == alias).unwrap_or_else(|| panic!("alias {alias} not listed"));
        assert!(l["name"].as_str().unwrap().starts_with(prefix), "{l}");
    }
    let r = c.request(0, "GET", "/languages/all", None);
    assert_eq!(r.status, 200);
    let all = r.json();
    let all = all.as_array().unwrap();
    assert!(all.iter().all(|l| keys(l) == ["id", "name", "is_archived"]), "{all:?}");
    let archived: Vec<i64> =
        all.iter().filter(|l| l["is_archived"] == true).map(|l| l["id"].as_i64().unwrap()).collect();
    assert_eq!(archived.iter().copied().collect::<std::collections::BTreeSet<_>>(), (1..=42).collect());
    for l in list {
        assert!(
            all.iter().any(|a| a["id"] == l["id"] && a["is_archived"] == false),
            "{l} not in /languages/all"
        );
    }
    let r = c.request(0, "POST", "/submissions", Some(&json!({"source_code": "x", "language_id": 37})));
    expect_json(
        &r,
        422,
        &json!({"language_id": ["language with id 37 is archived and cannot be used anymore"]}),
        "an archived built-in language",
    );

    let r = c.request(0, "GET", "/languages/71", None);
    assert_eq!(r.status, 200);
    let python = r.json();
    assert_eq!(keys(&python), ["id", "name", "is_archived", "source_file", "compile_cmd", "run_cmd"]);
    assert_eq!((&python["id"], &python["is_archived"]), (&json!(71), &json!(false)));
    assert_eq!((&python["source_file"], &python["compile_cmd"]), (&json!("script.py"), &Value::Null));
    assert!(python["run_cmd"].as_str().is_some_and(|c| c.contains("script.py")), "{python}");
    let c_lang = c.request(0, "GET", "/languages/50", None).json();
    assert_eq!(c_lang["source_file"], "main.c");
    assert!(c_lang["compile_cmd"].as_str().is_some_and(|c| c.contains("main.c")), "{c_lang}");
    for alias in [48, 49] {
        let l = c.request(0, "GET", &format!("/languages/{alias}"), None).json();
        assert_eq!((&l["id"], &l["source_file"]), (&json!(alias), &json!("main.c")), "{l}");
    }
    for path in ["/languages/999", "/languages/0", "/languages/abc"] {
        expect_json(&c.request(0, "GET", path, None), 404, &json!({"error": "not found"}), path);
    }
}

/// `X-Auth-Token` on every endpoint, `X-Auth-User` where it applies.
fn authentication(c: &Cluster) {
    let url = c.url();
    let some_token = "00000000-0000-4000-8000-000000000000";
    // Every endpoint, and what it answers once the token is given as a query parameter.
    let endpoints: &[(&str, String, u16)] = &[
        ("GET", "/about".into(), 200),
        ("GET", "/version".into(), 200),
        ("GET", "/license".into(), 200),
        ("GET", "/isolate".into(), 200),
        ("GET", "/statuses".into(), 200),
        ("GET", "/languages".into(), 200),
        ("GET", "/languages/all".into(), 200),
        ("GET", "/languages/71".into(), 200),
        ("GET", "/config_info".into(), 200),
        ("GET", "/system_info".into(), 200),
        ("GET", "/statistics".into(), 200),
        ("GET", "/workers".into(), 200),
        ("POST", "/authenticate".into(), 200),
        ("POST", "/authorize".into(), 403),
        ("POST", "/submissions".into(), 201),
        ("GET", "/submissions".into(), 403),
        ("GET", format!("/submissions/{some_token}"), 404),
        ("DELETE", format!("/submissions/{some_token}"), 403),
        ("POST", "/submissions/batch".into(), 400), // The body is one submission, not a batch.
        ("GET", format!("/submissions/batch?tokens={some_token}"), 200),
    ];
    let body = serde_json::to_vec(&python("print(1)")).unwrap();
    for (method, path, status) in endpoints {
        let full = format!("{url}{path}");
        let body = (*method == "POST").then_some(&body[..]);
        let json = ("Content-Type", "application/json");
        let context = format!("{method} {path}");
        expect_empty(&http(method, &full, &[json], body), 401, &format!("{context} without a token"));
        let wrong = [json, ("X-Auth-Token", "wrong")];
        expect_empty(&http(method, &full, &wrong, body), 401, &format!("{context} with a wrong token"));
        let prefix = [json, ("X-Auth-Token", &c.authn[..4])];
        expect_empty(&http(method, &full, &prefix, body), 401, &format!("{context} with a token's prefix"));
        let sep = if path.contains('?') { '&' } else { '?' };
        let in_query = format!("{full}{sep}X-Auth-Token={}", c.authn);
        let r = http(method, &in_query, &[json], body);
        assert_eq!(r.status, *status, "{context} with the token as a query parameter: {}", r.text());
    }

    // The endpoints themselves.
    expect_empty(&c.request(0, "POST", "/authenticate", None), 200, "POST /authenticate");
    let authn = ("X-Auth-Token", c.authn.as_str());
    let authorize = format!("{url}/authorize");
    expect_empty(&http("POST", &authorize, &[authn], None), 403, "POST /authorize without X-Auth-User");
    let wrong = [authn, ("X-Auth-User", "wrong")];
    expect_empty(&http("POST", &authorize, &wrong, None), 403, "POST /authorize, wrong X-Auth-User");
    let good = [authn, ("X-Auth-User", c.authz.as_str())];
    expect_empty(&http("POST", &authorize, &good, None), 200, "POST /authorize");
    let in_query = format!("{authorize}?X-Auth-User={}", c.authz);
    expect_empty(&http("POST", &in_query, &[authn], None), 200, "POST /authorize, X-Auth-User in the query");
    // The authentication token is not an authorization token.
    let swapped = [authn, ("X-Auth-User", c.authn.as_str())];
    expect_empty(&http("POST", &authorize, &swapped, None), 403, "X-Auth-User with the authn token");

    // X-Auth-User guards listing and deleting: 403 with an empty body.
    for (method, path) in
        [("GET", "/submissions".to_owned()), ("DELETE", format!("/submissions/{some_token}"))]
    {
        let full = format!("{url}{path}");
        expect_empty(
            &http(method, &full, &[authn], None),
            403,
            &format!("{method} {path} without X-Auth-User"),
        );
        let wrong = [authn, ("X-Auth-User", "wrong")];
        expect_empty(&http(method, &full, &wrong, None), 403, &format!("{method} {path}, wrong X-Auth-User"));
    }
    let list = format!("{url}/submissions?per_page=1&X-Auth-User={}", c.authz);
    assert_eq!(http("GET", &list, &[authn], None).status, 200, "X-Auth-User as a query parameter");
}

/// Creation, `wait=true`, `fields`, and the formats of every value.
fn submission_formats(c: &Cluster) {
    // Without wait: 201 and only the token.
    let token = token_of(&c.request(0, "POST", "/submissions", Some(&python("print('later')"))));
    let done = await_status(c, 1, &token, |s| s > 2);
    assert_eq!(done["stdout"], mime(b"later\n"), "{done}");

    // wait=true: the finished submission, the 8 default fields in order.
    let source = "import sys\nprint(input())\n";
    let r =
        c.request(0, "POST", "/submissions?wait=true", Some(&with(&python(source), &json!({"stdin": "hi"}))));
    assert_eq!(r.status, 201, "{}", r.text());
    let sub = r.json();
    assert_eq!(keys(&sub), DEFAULT_FIELDS, "{sub}");
    assert!(is_uuid_v4(sub["token"].as_str().unwrap()), "{sub}");
    assert!(is_decimal(&sub["time"]), "time: {sub}");
    assert!(sub["memory"].is_u64(), "memory: {sub}");
    let expected = json!({
        "stdout": "hi\n",
        "time": sub["time"],
        "memory": sub["memory"],
        "stderr": null,
        "token": sub["token"],
        "compile_output": null,
        "message": null,
        "status": {"id": 3, "description": "Accepted"},
    });
    assert_same(&sub, &expected, "wait=true, default fields");

    // fields=*: exactly the 35 keys, in order, in Judge0's formats.
    let body = with(&python(source), &json!({"stdin": "hi"}));
    let r = c.request(0, "POST", "/submissions?wait=true&fields=*", Some(&body));
    assert_eq!(r.status, 201, "{}", r.text());
    let all = r.json();
    assert_eq!(keys(&all), ALL_FIELDS);
    for key in ["time", "wall_time", "cpu_time_limit", "cpu_extra_time", "wall_time_limit"] {
        assert!(is_decimal(&all[key]), "{key} is not a decimal string: {all}");
    }
    for key in ["created_at", "finished_at"] {
        assert!(all[key].as_str().is_some_and(is_timestamp), "{key}: {all}");
    }
    assert!(all["created_at"].as_str() <= all["finished_at"].as_str(), "{all}");
    let name = all["language"]["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("Python ("), "{all}");
    let expected = json!({
        "source_code": source,
        "language_id": 71,
        "stdin": "hi",
        "expected_output": null,
        "stdout": "hi\n",
        "status_id": 3,
        "created_at": all["created_at"],
        "finished_at": all["finished_at"],
        "time": all["time"],
        "memory": all["memory"],
        "stderr": null,
        "token": all["token"],
        "number_of_runs": 1,
        "cpu_time_limit": "5.0",
        "cpu_extra_time": "1.0",
        "wall_time_limit": "10.0",
        "memory_limit": 128000,
        "stack_limit": 64000,
        "max_processes_and_or_threads": 60,
        "enable_per_process_and_thread_time_limit": false,
        "enable_per_process_and_thread_memory_limit": false,
        "max_file_size": 1024,
        "compile_output": null,
        "exit_code": 0,
        "exit_signal": null,
        "message": null,
        "wall_time": all["wall_time"],
        "compiler_options": null,
        "command_line_arguments": null,
        "redirect_stderr_to_stdout": false,
        "callback_url": null,
        "additional_files": null,
        "enable_network": false,
        "status": {"id": 3, "description": "Accepted"},
        "language": {"id": 71, "name": name},
    });
    assert_same(&all, &expected, "fields=*, defaults");

    // Chosen fields come in Judge0's serializer order, whatever the order asked.
    let token = all["token"].as_str().unwrap();
    for fields in ["token,status", "status,token", "status,%20token", "token,status,token"] {
        let r = c.request(0, "GET", &format!("/submissions/{token}?fields={fields}"), None);
        let expected = json!({"token": token, "status": {"id": 3, "description": "Accepted"}});
        expect_json(&r, 200, &expected, &format!("fields={fields}"));
    }
    let r = c.request(0, "GET", &format!("/submissions/{token}?fields=message,stdout,time,exit_code"), None);
    assert_eq!(keys(&r.json()), ["stdout", "time", "exit_code", "message"]);
    let r = c.request(0, "POST", "/submissions?wait=true&fields=status_id,stdout", Some(&python("print(2)")));
    expect_json(&r, 201, &json!({"stdout": "2\n", "status_id": 3}), "POST with fields");

    // Unknown fields: 400 naming them, on every endpoint that takes fields.
    let invalid = json!({"error": "invalid fields: [x, y]"});
    let r = c.request(0, "POST", "/submissions?wait=true&fields=x,token,y", Some(&python("print(1)")));
    expect_json(&r, 400, &invalid, "POST fields=x,token,y");
    let r = c.request(0, "POST", "/submissions?fields=stdout,x,y", Some(&python("print(1)")));
    expect_json(&r, 400, &invalid, "POST (no wait) fields=stdout,x,y");
    let r = c.request(0, "GET", &format!("/submissions/{token}?fields=x,y"), None);
    expect_json(&r, 400, &invalid, "GET fields=x,y");
    let r = c.request(0, "GET", &format!("/submissions/batch?tokens={token}&fields=x,status,y"), None);
    expect_json(&r, 400, &invalid, "GET batch fields=x,status,y");
    let r = http(
        "GET",
        &format!("{}/submissions?fields=x,y", c.url()),
        &[("X-Auth-Token", &c.authn), ("X-Auth-User", &c.authz)],
        None,
    );
    expect_json(&r, 400, &invalid, "list fields=x,y");

    // Empty output is null, never "".
    let r = c.request(
        0,
        "POST",
        "/submissions?wait=true&fields=stdout,stderr,stdin,compile_output,message,status_id",
        Some(&with(&python("pass"), &json!({"stdin": ""}))),
    );
    let expected = json!({"stdin": null, "stdout": null, "status_id": 3, "stderr": null,
        "compile_output": null, "message": null});
    expect_json(&r, 201, &expected, "empty output");
}

/// Bodies (JSON, form), query and body merged, values cast as Rails casts them.
fn parameters(c: &Cluster) {
    let url = c.url();
    let authn = ("X-Auth-Token", c.authn.as_str());
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let fields = "fields=stdout,stdin,language_id,redirect_stderr_to_stdout,cpu_time_limit,memory_limit";

    // Form-encoded body.
    let body = b"language_id=71&source_code=import+sys%0Aprint(%22form%22%2C+sys.argv%5B1%3A%5D)\
        &command_line_arguments=a+b";
    let r = http("POST", &format!("{url}/submissions?wait=true&fields=stdout"), &[authn, form], Some(body));
    expect_json(&r, 201, &json!({"stdout": "form ['a', 'b']\n"}), "form-encoded body");

    // Query and body merge; the body wins where both have a key.
    let r = c.request(
        0,
        "POST",
        &format!("/submissions?wait=true&{fields}&stdin=from+query&language_id=999&memory_limit=64000"),
        Some(&python("print(input())")),
    );
    let expected = json!({"language_id": 71, "stdin": "from query", "stdout": "from query\n",
        "cpu_time_limit": "5.0", "memory_limit": 64000, "redirect_stderr_to_stdout": false});
    expect_json(&r, 201, &expected, "query and body merge");
    let r = http(
        "POST",
        &format!("{url}/submissions?wait=true&fields=stdout&source_code=print(%22query%22)"),
        &[authn, form],
        Some(b"language_id=71"),
    );
    expect_json(&r, 201, &json!({"stdout": "query\n"}), "form body and query merge");

    // Strings where numbers and booleans are expected.
    let body = json!({"source_code": "import sys; sys.stderr.write('e')", "language_id": "71",
        "redirect_stderr_to_stdout": "true", "cpu_time_limit": "2.5", "memory_limit": "64000"});
    let r = c.request(0, "POST", &format!("/submissions?wait=true&{fields}"), Some(&body));
    let expected = json!({"language_id": 71, "stdin": null, "stdout": "e", "cpu_time_limit": "2.5",
        "memory_limit": 64000, "redirect_stderr_to_stdout": true});
    expect_json(&r, 201, &expected, "strings for numbers and booleans");
    for falsy in [json!(false), json!("false"), json!("0"), json!(0), json!("f"), json!("off")] {
        let body = with(&python("print(1)"), &json!({"redirect_stderr_to_stdout": falsy}));
        let r = c.request(0, "POST", "/submissions?wait=true&fields=redirect_stderr_to_stdout", Some(&body));
        expect_json(&r, 201, &json!({"redirect_stderr_to_stdout": false}), &format!("{falsy} is false"));
    }

    // wait and base64_encoded: only the string "true" enables them.
    for not_true in ["1", "yes", "TRUE", "True"] {
        let r = c.request(0, "POST", &format!("/submissions?wait={not_true}"), Some(&python("print(1)")));
        token_of(&r);
    }
    let r = c.request(0, "POST", "/submissions", Some(&with(&python("print(1)"), &json!({"wait": true}))));
    token_of(&r);
    let r = c.request(0, "POST", "/submissions", Some(&with(&python("print(1)"), &json!({"wait": "true"}))));
    assert_eq!(keys(&r.json()), DEFAULT_FIELDS, "wait=true in the body: {}", r.text());
    for not_true in ["1", "TRUE", "yes"] {
        let r = c.request(
            0,
            "POST",
            &format!("/submissions?wait=true&base64_encoded={not_true}&fields=stdout,source_code"),
            Some(&python("print('plain')")),
        );
        let expected = json!({"source_code": "print('plain')", "stdout": "plain\n"});
        expect_json(&r, 201, &expected, &format!("base64_encoded={not_true} is not base64"));
    }

    // Broken bodies.
    let json_type = ("Content-Type", "application/json");
    let r = http("POST", &format!("{url}/submissions"), &[authn, json_type], Some(b"[1]"));
    assert_eq!(r.status, 400, "a JSON array body: {}", r.text());
    assert!(r.json()["error"].is_string());
    let r = http("POST", &format!("{url}/submissions"), &[authn, json_type], Some(b"{"));
    assert_eq!(r.status, 400, "broken JSON: {}", r.text());
    assert!(r.json()["error"].is_string());
}

/// `base64_encoded=true` in and out.
fn base64(c: &Cluster) {
    let source = "import sys\nprint('x' * 100)\nprint(input())\nsys.exit(3)\n";
    // Input is decoded leniently: MIME line breaks or none, padding or none.
    for encoded in
        [mime(source.as_bytes()), STANDARD.encode(source), mime(source.as_bytes()).replace('\n', "\r\n")]
    {
        let body = json!({"source_code": encoded, "language_id": 71, "stdin": STANDARD.encode("in"),
            "expected_output": STANDARD.encode("nope")});
        let r = c.request(
            0,
            "POST",
            "/submissions?wait=true&base64_encoded=true&fields=source_code,stdin,expected_output,stdout,\
             stderr,compile_output,message,status",
            Some(&body),
        );
        let stdout = format!("{}\nin\n", "x".repeat(100));
        let expected = json!({
            "source_code": mime(source.as_bytes()),
            "stdin": mime(b"in"),
            "expected_output": mime(b"nope"),
            "stdout": mime(stdout.as_bytes()),
            "stderr": null,
            "compile_output": null,
            "message": mime(b"Exited with error status 3"),
            "status": {"id": 11, "description": "Runtime Error (NZEC)"},
        });
        expect_json(&r, 201, &expected, "base64 in and out");
        let out = r.json()["stdout"].as_str().unwrap().to_owned();
        let lines: Vec<usize> = out.split_terminator('\n').map(str::len).collect();
        assert_eq!(lines, [60, 60, 20], "MIME lines: {out:?}");
        assert!(out.ends_with('\n'));
    }
    let r = c.request(
        0,
        "POST",
        "/submissions?wait=true&base64_encoded=true&fields=stdout",
        Some(&json!({"source_code": STANDARD.encode("print('ok', end='')"), "language_id": 71})),
    );
    expect_json(&r, 201, &json!({"stdout": "b2s=\n"}), "short output: one line and a newline");

    // Nothing is refused: Judge0 decodes with Ruby's `Base64.decode64`, which skips what is
    // outside the alphabet, so "@@@" is blank and "a*b" is "i".
    let body = json!({"source_code": "@@@", "language_id": 71, "stdin": "!!", "expected_output": "$"});
    let r = c.request(0, "POST", "/submissions?base64_encoded=true", Some(&body));
    expect_json(&r, 422, &json!({"source_code": ["can't be blank"]}), "base64 that decodes to nothing");
    let body = json!({"source_code": STANDARD.encode("print(input())"), "language_id": 71, "stdin": "a*b"});
    let r =
        c.request(0, "POST", "/submissions?wait=true&base64_encoded=true&fields=stdin,stdout", Some(&body));
    expect_json(&r, 201, &json!({"stdin": mime(b"i"), "stdout": mime(b"i\n")}), "stdin a*b is i");
}

/// Output that is not UTF-8.
fn not_utf8(c: &Cluster) {
    let program = json!({"source_code": NOT_UTF8_PROGRAM, "language_id": 50});
    // wait=true: still 201 and the token, so the client can fetch it in base64.
    let r = c.request(0, "POST", "/submissions?wait=true", Some(&program));
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    assert_eq!(keys(&body), ["error", "token"], "{body}");
    assert_eq!(body["error"], NOT_UTF8);
    let token = body["token"].as_str().unwrap().to_owned();

    let r = c.request(0, "GET", &format!("/submissions/{token}"), None);
    expect_json(&r, 400, &json!({"error": NOT_UTF8}), "GET of non-UTF-8 output");
    let r = c.request(
        1,
        "GET",
        &format!("/submissions/{token}?fields=stdout,status_id&base64_encoded=true"),
        None,
    );
    expect_json(&r, 200, &json!({"stdout": "/w==\n", "status_id": 3}), "GET in base64");
    let r = c.request(0, "GET", &format!("/submissions/{token}?fields=token,status_id"), None);
    expect_json(&r, 200, &json!({"status_id": 3, "token": token}), "only the fields asked are converted");
    let r = c.request(0, "GET", &format!("/submissions/batch?tokens={token}"), None);
    expect_json(&r, 400, &json!({"error": NOT_UTF8_MANY}), "batch GET of non-UTF-8 output");
    let r = c.request(
        0,
        "GET",
        &format!("/submissions/batch?tokens={token}&fields=stdout&base64_encoded=true"),
        None,
    );
    expect_json(&r, 200, &json!({"submissions": [{"stdout": "/w==\n"}]}), "batch GET in base64");
}

/// `fields=stdout,exit_code,message,status` of a finished submission.
fn verdict(stdout: &str, exit_code: i32, message: Option<&str>, id: i32, description: &str) -> Value {
    json!({"stdout": stdout, "exit_code": exit_code, "message": message,
        "status": {"id": id, "description": description}})
}

/// The verdicts the server shows, and Judge0's other ids for C and C++.
fn verdicts_and_aliases(c: &Cluster) {
    let cases: &[(Value, Value)] = &[
        (
            json!({"source_code": "print('a ')\nprint()", "language_id": 71, "expected_output": "a\n\n\n"}),
            verdict("a \n\n", 0, None, 3, "Accepted"),
        ),
        (
            json!({"source_code": "print('b')", "language_id": 71, "expected_output": "a"}),
            verdict("b\n", 0, None, 4, "Wrong Answer"),
        ),
        (
            json!({"source_code": "print(' a')", "language_id": 71, "expected_output": "a"}),
            verdict(" a\n", 0, None, 4, "Wrong Answer"),
        ),
        (
            json!({"source_code": "import sys\nprint(1)\nsys.exit(3)", "language_id": 71}),
            json!({"stdout": "1\n", "exit_code": 3, "message": "Exited with error status 3",
                "status": {"id": 11, "description": "Runtime Error (NZEC)"}}),
        ),
    ];
    for (body, expected) in cases {
        let r =
            c.request(0, "POST", "/submissions?wait=true&fields=stdout,exit_code,message,status", Some(body));
        expect_json(&r, 201, expected, &format!("verdict of {body}"));
    }

    let r = c.request(
        0,
        "POST",
        "/submissions?wait=true&fields=stdout,compile_output,status",
        Some(&json!({"source_code": "int main( {", "language_id": 50})),
    );
    assert_eq!(r.status, 201);
    let ce = r.json();
    assert_eq!(ce["status"], json!({"id": 6, "description": "Compilation Error"}), "{ce}");
    assert!(ce["compile_output"].as_str().is_some_and(|o| o.contains("error")), "{ce}");
    assert_eq!(ce["stdout"], Value::Null);

    for (id, source, prefix) in [
        (48, "#include <stdio.h>\nint main(void) { printf(\"c\"); }", "C (GCC "),
        (49, "#include <stdio.h>\nint main(void) { printf(\"c\"); }", "C (GCC "),
        (52, "#include <cstdio>\nint main() { std::printf(\"c\"); }", "C++ (GCC "),
        (53, "#include <cstdio>\nint main() { std::printf(\"c\"); }", "C++ (GCC "),
    ] {
        let r = c.request(
            0,
            "POST",
            "/submissions?wait=true&fields=stdout,status_id,language_id,language",
            Some(&json!({"source_code": source, "language_id": id})),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        let sub = r.json();
        assert_eq!(keys(&sub), ["language_id", "stdout", "status_id", "language"]);
        assert_eq!(
            (&sub["stdout"], &sub["status_id"], &sub["language_id"]),
            (&json!("c"), &json!(3), &json!(id))
        );
        assert_eq!(sub["language"]["id"], id, "{sub}");
        assert!(sub["language"]["name"].as_str().unwrap().starts_with(prefix), "{sub}");
    }
}

/// 422 `{"field": ["message"]}` with Judge0's messages, fields in Judge0's order.
fn validation(c: &Cluster) {
    let ok = python("print(1)");
    let cases: Vec<(Value, Value)> = vec![
        (
            json!({"source_code": "x", "language_id": 999}),
            json!({"language_id": ["language with id 999 doesn't exist"]}),
        ),
        (
            json!({"source_code": "x", "language_id": "999"}),
            json!({"language_id": ["language with id 999 doesn't exist"]}),
        ),
        (json!({"language_id": 71}), json!({"source_code": ["can't be blank"]})),
        (json!({"language_id": 71, "source_code": ""}), json!({"source_code": ["can't be blank"]})),
        (json!({"language_id": 71, "source_code": " \n\t"}), json!({"source_code": ["can't be blank"]})),
        (json!({"language_id": 71, "source_code": null}), json!({"source_code": ["can't be blank"]})),
        // Judge0 looks up a missing language all the same, and says so with an empty id.
        (
            json!({"source_code": "x"}),
            json!({"language_id": ["can't be blank", "language with id  doesn't exist"]}),
        ),
        (
            json!({}),
            json!({"source_code": ["can't be blank"],
                "language_id": ["can't be blank", "language with id  doesn't exist"]}),
        ),
        // Rails reads an id as Ruby's `to_i` does.
        (
            json!({"source_code": "x", "language_id": "abc"}),
            json!({"language_id": ["language with id 0 doesn't exist"]}),
        ),
        (
            json!({"source_code": "x", "language_id": "999abc"}),
            json!({"language_id": ["language with id 999 doesn't exist"]}),
        ),
        (
            json!({"language_id": 999, "cpu_time_limit": 99}),
            json!({"source_code": ["can't be blank"], "cpu_time_limit": ["must be less than or equal to 15.0"],
                "language_id": ["language with id 999 doesn't exist"]}),
        ),
        (json!({"language_id": 89}), json!({"additional_files": ["can't be blank"]})),
        // Every limit, above its maximum and below its minimum.
        (
            with(&ok, &json!({"cpu_time_limit": 15.5})),
            json!({"cpu_time_limit": ["must be less than or equal to 15.0"]}),
        ),
        (
            with(&ok, &json!({"cpu_time_limit": -0.5})),
            json!({"cpu_time_limit": ["must be greater than or equal to 0"]}),
        ),
        (
            with(&ok, &json!({"cpu_extra_time": "5.5"})),
            json!({"cpu_extra_time": ["must be less than or equal to 5.0"]}),
        ),
        (
            with(&ok, &json!({"cpu_extra_time": -1})),
            json!({"cpu_extra_time": ["must be greater than or equal to 0"]}),
        ),
        (
            with(&ok, &json!({"wall_time_limit": 21})),
            json!({"wall_time_limit": ["must be less than or equal to 20.0"]}),
        ),
        (
            with(&ok, &json!({"wall_time_limit": 0.5})),
            json!({"wall_time_limit": ["must be greater than or equal to 1"]}),
        ),
        (
            with(&ok, &json!({"memory_limit": 512001})),
            json!({"memory_limit": ["must be less than or equal to 512000"]}),
        ),
        (
            with(&ok, &json!({"memory_limit": "2047"})),
            json!({"memory_limit": ["must be greater than or equal to 2048"]}),
        ),
        (
            with(&ok, &json!({"stack_limit": 128001})),
            json!({"stack_limit": ["must be less than or equal to 128000"]}),
        ),
        (
            with(&ok, &json!({"stack_limit": -1})),
            json!({"stack_limit": ["must be greater than or equal to 0"]}),
        ),
        (
            with(&ok, &json!({"max_processes_and_or_threads": 121})),
            json!({"max_processes_and_or_threads": ["must be less than or equal to 120"]}),
        ),
        (
            with(&ok, &json!({"max_processes_and_or_threads": 0})),
            json!({"max_processes_and_or_threads": ["must be greater than 0"]}),
        ),
        (
            with(&ok, &json!({"max_file_size": 4097})),
            json!({"max_file_size": ["must be less than or equal to 4096"]}),
        ),
        (
            with(&ok, &json!({"max_file_size": -1})),
            json!({"max_file_size": ["must be greater than or equal to 0"]}),
        ),
        (
            with(&ok, &json!({"number_of_runs": 21})),
            json!({"number_of_runs": ["must be less than or equal to 20"]}),
        ),
        (with(&ok, &json!({"number_of_runs": 0})), json!({"number_of_runs": ["must be greater than 0"]})),
        // Text and arguments.
        (
            json!({"source_code": "x", "language_id": 50, "compiler_options": "-O2 ".repeat(128) + "x"}),
            json!({"compiler_options": ["is too long (maximum is 512 characters)"]}),
        ),
        (
            with(&ok, &json!({"command_line_arguments": "a".repeat(513)})),
            json!({"command_line_arguments": ["is too long (maximum is 512 characters)"]}),
        ),
        (
            with(&ok, &json!({"compiler_options": "-O2"})),
            json!({"compiler_options": ["setting compiler options is only allowed for compiled languages"]}),
        ),
        (
            with(&ok, &json!({"enable_network": true})),
            json!({"enable_network": ["enabling network is not allowed"]}),
        ),
        (
            with(&ok, &json!({"enable_network": "true"})),
            json!({"enable_network": ["enabling network is not allowed"]}),
        ),
        (with(&ok, &json!({"callback_url": "not a url"})), json!({"callback_url": ["is not a valid URL"]})),
        (
            with(&ok, &json!({"callback_url": "ftp://example.com/x"})),
            json!({"callback_url": ["is not a valid URL"]}),
        ),
        (with(&ok, &json!({"callback_url": "http://"})), json!({"callback_url": ["is not a valid URL"]})),
        // Several at once, in Judge0's order (its validators' order, not the request's).
        (
            json!({"language_id": 71, "memory_limit": 10, "number_of_runs": "abc", "cpu_time_limit": 100,
                "command_line_arguments": "a".repeat(600), "enable_network": true}),
            json!({
                "source_code": ["can't be blank"],
                "number_of_runs": ["is not a number"],
                "cpu_time_limit": ["must be less than or equal to 15.0"],
                "memory_limit": ["must be greater than or equal to 2048"],
                "command_line_arguments": ["is too long (maximum is 512 characters)"],
                "enable_network": ["enabling network is not allowed"],
            }),
        ),
    ];
    // Shell metacharacters in compiler options.
    let metachars: Vec<(Value, Value)> =
        [";", "|", "&", "$(id)", "`id`", ">", "<", "\n", "'", "\"", "\\", "*"]
            .iter()
            .map(|m| {
                (
                    json!({"source_code": "int main(){}", "language_id": 50,
                    "compiler_options": format!("-O2 {m} -g")}),
                    json!({"compiler_options": ["compiler options contain characters that are not allowed"]}),
                )
            })
            .collect();
    // Values that are not numbers.
    let not_numbers: Vec<(Value, Value)> = [
        "cpu_time_limit",
        "cpu_extra_time",
        "wall_time_limit",
        "memory_limit",
        "stack_limit",
        "max_processes_and_or_threads",
        "max_file_size",
        "number_of_runs",
    ]
    .iter()
    .flat_map(|field| {
        [json!("abc"), json!("12abc"), json!("1,5"), json!(true)]
            .map(|bad| (with(&ok, &json!({*field: bad})), json!({*field: ["is not a number"]})))
    })
    .collect();
    for (body, expected) in cases.iter().chain(&metachars).chain(&not_numbers) {
        let r = c.request(0, "POST", "/submissions", Some(body));
        expect_json(&r, 422, expected, &format!("validation of {body}"));
    }
    // A batch shows the same errors per item.
    let items: Vec<Value> = cases.iter().chain(&metachars).step_by(5).map(|(body, _)| body.clone()).collect();
    let errors: Vec<Value> = cases.iter().chain(&metachars).step_by(5).map(|(_, e)| e.clone()).collect();
    assert!(items.len() > 5 && items.len() <= 20);
    let r = c.request(0, "POST", "/submissions/batch", Some(&json!({ "submissions": items })));
    expect_json(&r, 422, &Value::Array(errors), "batch of invalid submissions");

    // Just inside the limits is fine; the values are stored and shown in Judge0's formats.
    let at_max = with(
        &ok,
        &json!({"cpu_time_limit": 15, "cpu_extra_time": 5, "wall_time_limit": 20,
        "memory_limit": 512000, "stack_limit": 128000, "max_processes_and_or_threads": 120,
        "max_file_size": 4096, "number_of_runs": 20, "compiler_options": null,
        "command_line_arguments": "a".repeat(512), "enable_network": false, "callback_url": null}),
    );
    let at_min = with(
        &ok,
        &json!({"cpu_time_limit": 0, "cpu_extra_time": 0, "wall_time_limit": 1,
        "memory_limit": 2048, "stack_limit": 0, "max_processes_and_or_threads": 1, "max_file_size": 0,
        "number_of_runs": 1, "enable_network": "false"}),
    );
    let limits = "fields=number_of_runs,cpu_time_limit,cpu_extra_time,wall_time_limit,memory_limit,\
        stack_limit,max_processes_and_or_threads,max_file_size";
    for (body, expected) in [
        (
            at_max,
            json!({"number_of_runs": 20, "cpu_time_limit": "15.0", "cpu_extra_time": "5.0",
            "wall_time_limit": "20.0", "memory_limit": 512000, "stack_limit": 128000,
            "max_processes_and_or_threads": 120, "max_file_size": 4096}),
        ),
        (
            at_min,
            json!({"number_of_runs": 1, "cpu_time_limit": "0.0", "cpu_extra_time": "0.0",
            "wall_time_limit": "1.0", "memory_limit": 2048, "stack_limit": 0,
            "max_processes_and_or_threads": 1, "max_file_size": 0}),
        ),
    ] {
        let token = token_of(&c.request(0, "POST", "/submissions", Some(&body)));
        let r = c.request(0, "GET", &format!("/submissions/{token}?{limits}"), None);
        expect_json(&r, 200, &expected, "limits at their bounds");
    }
    let longest = json!({"source_code": "int main(void) { return 0; }", "language_id": 50,
        "compiler_options": format!("{}-O2", " ".repeat(509)), "callback_url": "http://127.0.0.1:9/callback"});
    token_of(&c.request(0, "POST", "/submissions", Some(&longest)));
}

/// `GET /submissions/:token`.
fn show(c: &Cluster) {
    let not_found = json!({"error": "not found"});
    for token in
        ["00000000-0000-4000-8000-000000000000", "nonsense", "123", "00000000-0000-4000-8000-00000000000g"]
    {
        let r = c.request(0, "GET", &format!("/submissions/{token}"), None);
        expect_json(&r, 404, &not_found, &format!("GET /submissions/{token}"));
    }
    // Created on one server, read on the other.
    let token = token_of(&c.request(1, "POST", "/submissions", Some(&python("print('both')"))));
    await_status(c, 0, &token, |s| s > 2);
    let a = c.request(0, "GET", &format!("/submissions/{token}?fields=*"), None);
    let b = c.request(1, "GET", &format!("/submissions/{token}?fields=*"), None);
    assert_eq!(a.status, 200);
    assert_same(&a.json(), &b.json(), "both servers show the same submission");
    assert_eq!(a.json()["stdout"], "both\n");
}

fn batches(c: &Cluster) {
    // Create: one answer per item, in order.
    let items = json!({"submissions": [
        python("print('one')"),
        {"source_code": "x", "language_id": 999},
        {"language_id": 71},
        with(&python("print(input())"), &json!({"stdin": "two"})),
    ]});
    let r = c.request(0, "POST", "/submissions/batch", Some(&items));
    assert_eq!(r.status, 201, "{}", r.text());
    let answers = r.json();
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 4);
    let t1 = answers[0]["token"].as_str().unwrap().to_owned();
    let t2 = answers[3]["token"].as_str().unwrap().to_owned();
    assert!(is_uuid_v4(&t1) && is_uuid_v4(&t2) && keys(&answers[0]) == ["token"], "{answers:?}");
    assert_same(&answers[1], &json!({"language_id": ["language with id 999 doesn't exist"]}), "batch item 2");
    assert_same(&answers[2], &json!({"source_code": ["can't be blank"]}), "batch item 3");

    // Only failures: 422 with the errors.
    let r = c.request(0, "POST", "/submissions/batch", Some(&json!({"submissions": [{"language_id": 71}]})));
    expect_json(&r, 422, &json!([{"source_code": ["can't be blank"]}]), "batch of one invalid item");

    // Sizes: 1..=20.
    let many = |n: usize| json!({"submissions": vec![python("print(1)"); n]});
    let r = c.request(0, "POST", "/submissions/batch", Some(&many(20)));
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json().as_array().unwrap().iter().all(|a| a["token"].as_str().is_some_and(is_uuid_v4)));
    let too_big = json!({"error": BATCH_TOO_BIG});
    expect_json(&c.request(0, "POST", "/submissions/batch", Some(&many(21))), 400, &too_big, "batch of 21");
    let empty = json!({"error": BATCH_EMPTY});
    expect_json(&c.request(0, "POST", "/submissions/batch", Some(&many(0))), 400, &empty, "batch of 0");
    expect_json(&c.request(0, "POST", "/submissions/batch", Some(&json!({}))), 400, &empty, "no submissions");

    // A batch as a form, the way Rails reads `name[][key]`.
    let form = b"submissions[][language_id]=71&submissions[][source_code]=print(%22f1%22)\
        &submissions[][source_code]=print(%22f2%22)&submissions[][language_id]=71&submissions[][source_code]=";
    let r = http(
        "POST",
        &format!("{}/submissions/batch", c.url()),
        &[("X-Auth-Token", &c.authn), ("Content-Type", "application/x-www-form-urlencoded")],
        Some(form),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let answers = r.json();
    assert_same(
        &answers[2],
        &json!({"source_code": ["can't be blank"], "language_id": ["can't be blank",
        "language with id  doesn't exist"]}),
        "a form batch's third item",
    );
    for (i, out) in [(0, "f1\n"), (1, "f2\n")] {
        let token = answers[i]["token"].as_str().unwrap();
        assert_eq!(
            await_status(c, 0, token, |s| s > 2)["stdout"],
            mime(out.as_bytes()),
            "form batch item {i}"
        );
    }

    // base64_encoded applies to every item.
    let encoded =
        json!({"submissions": [{"source_code": STANDARD.encode("print('b64')"), "language_id": 71}]});
    let r = c.request(0, "POST", "/submissions/batch?base64_encoded=true", Some(&encoded));
    let t3 = r.json()[0]["token"].as_str().unwrap().to_owned();
    assert_eq!(await_status(c, 0, &t3, |s| s > 2)["stdout"], mime(b"b64\n"));

    // Show: in token order, null for unknown or malformed tokens.
    for t in [&t1, &t2] {
        await_status(c, 0, t, |s| s > 2);
    }
    let unknown = "00000000-0000-4000-8000-000000000000";
    let r = c.request(
        1,
        "GET",
        &format!("/submissions/batch?tokens={t2},{unknown},{t1},junk&fields=stdout,token"),
        None,
    );
    let expected = json!({"submissions": [{"stdout": "two\n", "token": t2}, null, {"stdout": "one\n", "token": t1}, null]});
    expect_json(&r, 200, &expected, "batch GET");
    // Judge0 keeps empty entries (null), drops trailing ones, and takes the list from a header too.
    let r = http(
        "GET",
        &format!("{}/submissions/batch?fields=token", c.url()),
        &[("X-Auth-Token", &c.authn), ("tokens", &format!("{t1},,{t2},"))],
        None,
    );
    expect_json(&r, 200, &json!({"submissions": [{"token": t1}, null, {"token": t2}]}), "tokens in a header");
    let r = c.request(0, "GET", &format!("/submissions/batch?tokens={t1}"), None);
    assert_eq!(r.status, 200);
    let subs = r.json()["submissions"].clone();
    assert_eq!(keys(&subs[0]), DEFAULT_FIELDS, "batch GET, default fields");
    let r = c.request(
        0,
        "GET",
        &format!("/submissions/batch?tokens={t3}&base64_encoded=true&fields=stdout"),
        None,
    );
    expect_json(&r, 200, &json!({"submissions": [{"stdout": mime(b"b64\n")}]}), "batch GET in base64");
    for query in ["", "?tokens=", "?tokens=,"] {
        let r = c.request(0, "GET", &format!("/submissions/batch{query}"), None);
        expect_json(&r, 400, &empty, &format!("batch GET {query:?}"));
    }
    let tokens = vec![unknown; 21].join(",");
    let r = c.request(0, "GET", &format!("/submissions/batch?tokens={tokens}"), None);
    expect_json(&r, 400, &too_big, "batch GET of 21");
}

/// A list's `meta`, as will_paginate words it.
fn meta(current: i64, next: Option<i64>, prev: Option<i64>, pages: i64, total: i64) -> Value {
    json!({"current_page": current, "next_page": next, "prev_page": prev, "total_pages": pages,
        "total_count": total})
}

/// `GET /submissions`: pages, newest first.
fn listing(c: &Cluster) {
    let authz = |path: &str| {
        http(
            "GET",
            &format!("{}{path}", c.url()),
            &[("X-Auth-Token", &c.authn), ("X-Auth-User", &c.authz)],
            None,
        )
    };
    let mut newest = Vec::new();
    for i in 0..3 {
        newest.insert(0, token_of(&c.request(i % 2, "POST", "/submissions", Some(&python("print(3)")))));
    }
    let r = authz("/submissions?per_page=1&fields=token");
    assert_eq!(r.status, 200, "{}", r.text());
    let total = r.json()["meta"]["total_count"].as_i64().unwrap();
    assert!(total > 40, "the suite has made more than 40 submissions by now: {total}");

    let r = authz("/submissions?per_page=3&fields=token");
    let expected = json!({
        "submissions": newest.iter().map(|t| json!({"token": t})).collect::<Vec<_>>(),
        "meta": meta(1, Some(2), None, (total + 2) / 3, total),
    });
    expect_json(&r, 200, &expected, "first page of three, newest first");

    let r = authz("/submissions?per_page=2&page=2&fields=token");
    assert_eq!(r.status, 200);
    let page = r.json();
    assert_same(&page["submissions"][0], &json!({"token": newest[2]}), "second page starts after the first");
    assert_same(&page["meta"], &meta(2, Some(3), Some(1), (total + 1) / 2, total), "second page's meta");

    // Default: 20 per page, default fields.
    let r = authz("/submissions");
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.json();
    assert_eq!(keys(&page), ["submissions", "meta"]);
    let subs = page["submissions"].as_array().unwrap();
    assert_eq!(subs.len(), 20);
    assert!(subs.iter().all(|s| keys(s) == DEFAULT_FIELDS));
    assert_eq!(subs[0]["token"], newest[0].as_str());
    assert_same(&page["meta"], &meta(1, Some(2), None, (total + 19) / 20, total), "default page meta");

    // The last page, and past it.
    let last = (total + 19) / 20;
    let r = authz(&format!("/submissions?page={last}&fields=token"));
    let page = r.json();
    assert_eq!(page["meta"]["next_page"], Value::Null);
    assert_eq!(page["meta"]["prev_page"], last - 1);
    assert_eq!(page["submissions"].as_array().unwrap().len() as i64, total - (last - 1) * 20);
    let r = authz(&format!("/submissions?page={}&fields=token", last + 1));
    let page = r.json();
    assert_same(&page["submissions"], &json!([]), "past the last page");
    assert_eq!(page["meta"]["current_page"], last + 1);

    for (query, error) in [
        ("page=0", "invalid page: 0"),
        ("page=-2", "invalid page: -2"),
        ("page=abc", "invalid page: 0"),
        ("per_page=-1", "invalid per_page: -1"),
    ] {
        expect_json(&authz(&format!("/submissions?{query}")), 400, &json!({"error": error}), query);
    }

    // Output that is not UTF-8 needs base64 here too.
    let r = c.request(
        0,
        "POST",
        "/submissions?wait=true&fields=token",
        Some(&json!({"source_code": NOT_UTF8_PROGRAM, "language_id": 50})),
    );
    let token = r.json()["token"].as_str().unwrap().to_owned();
    expect_json(
        &authz("/submissions?per_page=1"),
        400,
        &json!({"error": NOT_UTF8_MANY}),
        "list of non-UTF-8 output",
    );
    let r = authz("/submissions?per_page=1&base64_encoded=true&fields=token,stdout");
    expect_json(
        &r,
        200,
        &json!({"submissions": [{"stdout": "/w==\n", "token": token}],
        "meta": meta(1, Some(2), None, total + 1, total + 1)}),
        "list in base64",
    );
}

fn deletion_disabled(c: &Cluster) {
    let token = token_of(&c.request(0, "POST", "/submissions", Some(&python("print(1)"))));
    let url = format!("{}/submissions/{token}", c.url());
    expect_empty(
        &http("DELETE", &url, &[("X-Auth-Token", &c.authn)], None),
        403,
        "DELETE without X-Auth-User",
    );
    let r = http("DELETE", &url, &[("X-Auth-Token", &c.authn), ("X-Auth-User", &c.authz)], None);
    expect_json(&r, 400, &json!({"error": "delete not allowed"}), "DELETE when deletion is disabled");
    assert_eq!(c.request(0, "GET", &format!("/submissions/{token}"), None).status, 200, "still there");
}

/// Names carry the versions the workers report: `Python (3.11.2)`.
fn languages_carry_versions(c: &Cluster) {
    let three_part = |name: &str| {
        name.strip_prefix("Python (").and_then(|r| r.strip_suffix(')')).is_some_and(|v| {
            v.split('.').count() == 3
                && v.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    for server in 0..2 {
        let reported = wait_until(Duration::from_secs(15), || {
            let r = c.request(server, "GET", "/languages/71", None);
            r.status == 200 && r.json()["name"].as_str().is_some_and(three_part)
        });
        let name = c.request(server, "GET", "/languages/71", None).json()["name"].clone();
        assert!(reported, "server {server} still shows {name}");
        let list = c.request(server, "GET", "/languages", None).json();
        let listed = list.as_array().unwrap().iter().find(|l| l["id"] == 71).unwrap()["name"].clone();
        assert_eq!(listed, name);
    }
}

/// Counts by language and status. Server 0 cached its answer while authentication was checked,
/// before any submission (Judge0 caches it too); server 1 has not been asked yet.
fn statistics(c: &Cluster) {
    let r = c.request(1, "GET", "/statistics", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let stats = r.json();
    assert!(stats["now"].as_str().is_some_and(is_timestamp), "{stats}");
    let python = stats["languages"].as_array().unwrap().iter().find(|l| l["language"]["id"] == 71).cloned();
    let python = python.unwrap_or_else(|| panic!("no Python in {stats}"));
    assert!(python["count"].as_i64().is_some_and(|n| n > 30), "{python}");
    assert!(python["language"]["name"].as_str().unwrap().starts_with("Python ("));
    let accepted = stats["statuses"].as_array().unwrap().iter().find(|s| s["status"]["id"] == 3).cloned();
    let accepted = accepted.unwrap_or_else(|| panic!("no Accepted in {stats}"));
    assert_eq!(accepted["status"], json!({"id": 3, "description": "Accepted"}));
    assert!(accepted["count"].as_i64().is_some_and(|n| n > 10), "{accepted}");
    assert!(stats["database"]["size_in_bytes"].as_i64().is_some_and(|n| n > 0), "{stats}");
    assert!(stats["database"]["size_pretty"].is_string(), "{stats}");
}

fn servers_agree(c: &Cluster) {
    for path in
        ["/about", "/statuses", "/config_info", "/languages", "/languages/all", "/languages/54", "/version"]
    {
        let a = c.request(0, "GET", path, None);
        let b = c.request(1, "GET", path, None);
        assert_eq!((a.status, a.text()), (b.status, b.text()), "{path} differs between servers");
    }
}

// ---------------------------------------------------------------------------------------------
// Deletion enabled.

#[test]
fn deletion_when_enabled() {
    let c = Cluster::start(Options {
        servers: 1,
        workers: 1,
        concurrency: 1,
        env: vec![("ENABLE_SUBMISSION_DELETE".into(), "true".into())],
        ..Options::default()
    });
    let authz = [("X-Auth-Token", c.authn.as_str()), ("X-Auth-User", c.authz.as_str())];
    let delete = |token: &str, query: &str| {
        http("DELETE", &format!("{}/submissions/{token}{query}", c.url()), &authz, None)
    };

    // Finished: 200 with the submission, always base64, then gone.
    let done = c.run(&with(&python("print(input())"), &json!({"stdin": "bye"})), "fields=token");
    let token = done["token"].as_str().unwrap().to_owned();
    let url = format!("{}/submissions/{token}", c.url());
    expect_empty(
        &http("DELETE", &url, &[("X-Auth-Token", &c.authn)], None),
        403,
        "DELETE without X-Auth-User",
    );
    let wrong = [("X-Auth-Token", c.authn.as_str()), ("X-Auth-User", "wrong")];
    expect_empty(&http("DELETE", &url, &wrong, None), 403, "DELETE, wrong X-Auth-User");
    let r = delete(&token, "?fields=x,y");
    expect_json(&r, 400, &json!({"error": "invalid fields: [x, y]"}), "DELETE fields=x,y");
    let r = delete(&token, "");
    assert_eq!(r.status, 200, "{}", r.text());
    let deleted = r.json();
    let expected = json!({
        "stdout": mime(b"bye\n"),
        "time": deleted["time"],
        "memory": deleted["memory"],
        "stderr": null,
        "token": token,
        "compile_output": null,
        "message": null,
        "status": {"id": 3, "description": "Accepted"},
    });
    assert_same(&deleted, &expected, "DELETE answers in base64");
    assert!(is_decimal(&deleted["time"]), "{deleted}");
    let not_found = json!({"error": "not found"});
    expect_json(
        &c.request(0, "GET", &format!("/submissions/{token}"), None),
        404,
        &not_found,
        "GET after DELETE",
    );
    expect_json(&delete(&token, ""), 404, &not_found, "DELETE twice");
    expect_json(&delete("nonsense", ""), 404, &not_found, "DELETE of a malformed token");

    // fields apply; the query parameter carries X-Auth-User too.
    let done = c.run(&with(&python("print(input())"), &json!({"stdin": "x"})), "fields=token");
    let token = done["token"].as_str().unwrap().to_owned();
    let r = http(
        "DELETE",
        &format!("{}/submissions/{token}?fields=stdin,stdout,language_id&X-Auth-User={}", c.url(), c.authz),
        &[("X-Auth-Token", &c.authn)],
        None,
    );
    expect_json(
        &r,
        200,
        &json!({"language_id": 71, "stdin": "eA==\n", "stdout": "eAo=\n"}),
        "DELETE with fields",
    );

    // Not while it runs or waits: one worker running one submission at a time.
    let sleeper = python("import time\ntime.sleep(3)\nprint('slept')");
    let running = token_of(&c.request(0, "POST", "/submissions", Some(&sleeper)));
    await_status(&c, 0, &running, |s| s == 2);
    let queued = token_of(&c.request(0, "POST", "/submissions", Some(&sleeper)));
    let r = delete(&queued, "");
    expect_json(
        &r,
        400,
        &json!({"error": "submission cannot be deleted because its status is 1 (In Queue)"}),
        "DELETE while queued",
    );
    let r = delete(&running, "");
    expect_json(
        &r,
        400,
        &json!({"error": "submission cannot be deleted because its status is 2 (Processing)"}),
        "DELETE while running",
    );
    await_status(&c, 0, &running, |s| s > 2);
    let r = delete(&running, "?fields=stdout");
    expect_json(&r, 200, &json!({"stdout": mime(b"slept\n")}), "DELETE once finished");
    // Not UTF-8: base64 makes it deletable all the same.
    let r = c.request(
        0,
        "POST",
        "/submissions?wait=true&fields=token",
        Some(&json!({"source_code": NOT_UTF8_PROGRAM, "language_id": 50})),
    );
    let token = r.json()["token"].as_str().unwrap().to_owned();
    expect_json(
        &delete(&token, "?fields=stdout"),
        200,
        &json!({"stdout": "/w==\n"}),
        "DELETE of non-UTF-8 output",
    );
    let r = c.request(0, "GET", "/config_info", None);
    assert_eq!(r.json()["enable_submission_delete"], true);
}

// ---------------------------------------------------------------------------------------------
// Maintenance mode, several authentication tokens, no workers.

#[test]
fn maintenance_mode_and_several_tokens() {
    let c = Cluster::start(Options {
        servers: 1,
        workers: 0,
        env: vec![
            ("MAINTENANCE_MODE".into(), "true".into()),
            ("ENABLE_SUBMISSION_DELETE".into(), "true".into()),
            ("AUTHN_TOKEN".into(), "tok-one  tok-two".into()),
        ],
        ..Options::default()
    });
    let url = c.url();
    let about = format!("{url}/about");
    for good in ["tok-one", "tok-two"] {
        assert_eq!(http("GET", &about, &[("X-Auth-Token", good)], None).status, 200, "{good}");
        assert_eq!(
            http("GET", &format!("{about}?X-Auth-Token={good}"), &[], None).status,
            200,
            "{good} in the query"
        );
    }
    for bad in ["tok-one  tok-two", "tok-one tok-two", "tok", "tok-one2", "", "test-authn-token"] {
        expect_empty(&http("GET", &about, &[("X-Auth-Token", bad)], None), 401, &format!("token {bad:?}"));
    }

    let authn = ("X-Auth-Token", "tok-two");
    let json_type = ("Content-Type", "application/json");
    let maintenance = json!({"error": "Judge0 is currently in maintenance."});
    let body = serde_json::to_vec(&python("print(1)")).unwrap();
    for path in ["/submissions", "/submissions?wait=true", "/submissions?fields=bogus"] {
        let r = http("POST", &format!("{url}{path}"), &[authn, json_type], Some(&body));
        expect_json(&r, 503, &maintenance, &format!("POST {path} in maintenance"));
    }
    let batch = serde_json::to_vec(&json!({"submissions": [python("print(1)")]})).unwrap();
    let r = http("POST", &format!("{url}/submissions/batch"), &[authn, json_type], Some(&batch));
    expect_json(&r, 503, &maintenance, "POST batch in maintenance");
    let some = format!("{url}/submissions/00000000-0000-4000-8000-000000000000");
    expect_empty(&http("DELETE", &some, &[authn], None), 403, "DELETE without X-Auth-User in maintenance");
    let r = http("DELETE", &some, &[authn, ("X-Auth-User", &c.authz)], None);
    expect_json(&r, 503, &maintenance, "DELETE in maintenance");
    // Reading still works.
    let r = http("GET", &some, &[authn], None);
    expect_json(&r, 404, &json!({"error": "not found"}), "GET in maintenance");
    let r = http("GET", &format!("{url}/config_info"), &[authn], None);
    let expected =
        with(&default_config_info(), &json!({"maintenance_mode": true, "enable_submission_delete": true}));
    expect_json(&r, 200, &expected, "/config_info in maintenance");
    let r = http("GET", &format!("{url}/workers"), &[authn], None);
    let expected = judge0_workers(0, 0);
    expect_workers(&r, &expected, "/workers with no workers");
}

// ---------------------------------------------------------------------------------------------
// No tokens, no waiting, no batches, a queue of one, other limits and switches, and a language
// file with an archived language. No workers: what is queued stays queued.

#[test]
fn other_settings() {
    let dir = tempfile::tempdir().unwrap();
    let languages = dir.path().join("languages.toml");
    let builtin = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/languages.toml")).unwrap();
    let archived = r#"
[[language]]
id = 1000
name = "Old Python (2.7)"
is_archived = true
source_file = "script.py"
run_cmd = "/usr/bin/python2 script.py"
"#;
    std::fs::write(&languages, builtin + archived).unwrap();
    let settings = [
        ("AUTHN_TOKEN", ""),
        ("AUTHZ_TOKEN", ""),
        ("ENABLE_WAIT_RESULT", "false"),
        ("ENABLE_BATCHED_SUBMISSIONS", "false"),
        ("MAX_QUEUE_SIZE", "1"),
        ("CPU_TIME_LIMIT", "2"),
        ("MAX_CPU_TIME_LIMIT", "3"),
        ("MAX_MEMORY_LIMIT", "256000"),
        ("ALLOWED_LANGUAGES_FOR_COMPILE_OPTIONS", "C++ Rust"),
        ("ENABLE_COMMAND_LINE_ARGUMENTS", "false"),
        ("ENABLE_CALLBACKS", "false"),
        ("ENABLE_ADDITIONAL_FILES", "false"),
        ("ALLOW_ENABLE_PER_PROCESS_AND_THREAD_TIME_LIMIT", "false"),
        ("ALLOW_ENABLE_PER_PROCESS_AND_THREAD_MEMORY_LIMIT", "false"),
        ("ALLOW_ENABLE_NETWORK", "true"),
        ("LANGUAGES_FILE", languages.to_str().unwrap()),
    ];
    let c = Cluster::start(Options {
        servers: 1,
        workers: 0,
        env: settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..Options::default()
    });
    let url = c.url();
    let get = |path: &str| anonymous("GET", &format!("{url}{path}"), None);
    let post = |path: &str, body: &Value| anonymous("POST", &format!("{url}{path}"), Some(body));

    // No tokens configured: no authentication; listing and deleting are refused all the same.
    assert_eq!(get("/about").status, 200);
    expect_empty(&anonymous("POST", &format!("{url}/authenticate"), None), 200, "POST /authenticate");
    expect_empty(
        &anonymous("POST", &format!("{url}/authorize"), None),
        403,
        "POST /authorize, no AUTHZ_TOKEN",
    );
    let r = http("POST", &format!("{url}/authorize"), &[("X-Auth-User", "")], None);
    expect_empty(&r, 403, "POST /authorize with an empty X-Auth-User");
    expect_empty(&get("/submissions"), 403, "GET /submissions, no AUTHZ_TOKEN");
    let r = http("GET", &format!("{url}/submissions"), &[("X-Auth-User", "anything")], None);
    expect_empty(&r, 403, "GET /submissions with some X-Auth-User, no AUTHZ_TOKEN");

    let expected = with(
        &default_config_info(),
        &json!({
            "enable_wait_result": false,
            "allowed_languages_for_compile_options": ["C++", "Rust"],
            "enable_command_line_arguments": false,
            "enable_callbacks": false,
            "enable_additional_files": false,
            "max_queue_size": 1,
            "cpu_time_limit": 2.0,
            "max_cpu_time_limit": 3.0,
            "max_memory_limit": 256000,
            "allow_enable_per_process_and_thread_time_limit": false,
            "allow_enable_per_process_and_thread_memory_limit": false,
            "enable_batched_submissions": false,
            "allow_enable_network": true,
        }),
    );
    expect_json(&get("/config_info"), 200, &expected, "/config_info with other settings");

    // An archived language: listed in /languages/all only, shown, refused.
    let listed = get("/languages").json();
    assert!(listed.as_array().unwrap().iter().all(|l| l["id"] != 1000), "archived language listed");
    let all = get("/languages/all").json();
    let old = all.as_array().unwrap().iter().find(|l| l["id"] == 1000).cloned();
    assert_same(
        &old.unwrap(),
        &json!({"id": 1000, "name": "Old Python (2.7)", "is_archived": true}),
        "/languages/all",
    );
    let r = get("/languages/1000");
    let expected = json!({"id": 1000, "name": "Old Python (2.7)", "is_archived": true, "source_file": "script.py",
        "compile_cmd": null, "run_cmd": "/usr/bin/python2 script.py"});
    expect_json(&r, 200, &expected, "/languages/1000");

    // Switches and limits as configured.
    let ok = python("print(1)");
    let cpp = json!({"source_code": "int main() {}", "language_id": 54});
    let cases = [
        (
            with(&ok, &json!({"language_id": 1000})),
            json!({"language_id": ["language with id 1000 is archived and cannot be used anymore"]}),
        ),
        (
            with(&ok, &json!({"cpu_time_limit": 3.5})),
            json!({"cpu_time_limit": ["must be less than or equal to 3.0"]}),
        ),
        (
            with(&ok, &json!({"memory_limit": 256001})),
            json!({"memory_limit": ["must be less than or equal to 256000"]}),
        ),
        (
            json!({"source_code": "int main(void) {}", "language_id": 50, "compiler_options": "-O2"}),
            json!({"compiler_options": ["setting compiler options is only allowed for C++ and Rust"]}),
        ),
        (
            with(&ok, &json!({"command_line_arguments": "a b"})),
            json!({"command_line_arguments": ["setting command line arguments is not allowed"]}),
        ),
        (
            with(&ok, &json!({"callback_url": "http://example.com/cb"})),
            json!({"callback_url": ["setting callback is not allowed"]}),
        ),
        (
            with(&ok, &json!({"additional_files": STANDARD.encode("zip")})),
            json!({"additional_files": ["setting additional files is not allowed"]}),
        ),
        (
            with(&ok, &json!({"enable_per_process_and_thread_time_limit": true})),
            json!({"enable_per_process_and_thread_time_limit": ["this option cannot be enabled"]}),
        ),
        (
            with(&ok, &json!({"enable_per_process_and_thread_memory_limit": "true"})),
            json!({"enable_per_process_and_thread_memory_limit": ["this option cannot be enabled"]}),
        ),
    ];
    for (body, expected) in &cases {
        expect_json(&post("/submissions", body), 422, expected, &format!("validation of {body}"));
    }

    // No waiting, no batches.
    let no_wait = json!({"error": "wait not allowed"});
    expect_json(&post("/submissions?wait=true", &ok), 400, &no_wait, "wait=true when waiting is disabled");
    let batch = json!({"submissions": [ok]});
    let no_batch = json!({"error": "batched submissions are not allowed"});
    expect_json(&post("/submissions/batch", &batch), 400, &no_batch, "POST batch when disabled");
    expect_json(&get("/submissions/batch?tokens=x"), 400, &no_batch, "GET batch when disabled");

    // One submission fills the queue (nothing takes it): the next is refused.
    let accepted = with(&cpp, &json!({"compiler_options": "-O2", "enable_network": true}));
    let token = token_of(&post("/submissions?wait=false", &accepted));
    let r = get(&format!(
        "/submissions/{token}?fields=status,cpu_time_limit,enable_network,compiler_options,language_id"
    ));
    let expected = json!({"language_id": 54, "cpu_time_limit": "2.0", "compiler_options": "-O2",
        "enable_network": true, "status": {"id": 1, "description": "In Queue"}});
    expect_json(&r, 200, &expected, "a queued submission");
    let full = json!({"error": "queue is full"});
    expect_json(&post("/submissions", &ok), 503, &full, "queue full");
    expect_json(&post("/submissions?fields=bogus", &ok), 503, &full, "queue full comes before fields");
    expect_json(&post("/submissions?wait=true", &ok), 400, &no_wait, "wait is checked before the queue");
    let r = get("/workers");
    let expected = judge0_workers(1, 0);
    expect_workers(&r, &expected, "/workers with one queued submission");
}

// ---------------------------------------------------------------------------------------------
// Browsers and Rails: CORS as Judge0's Rack::Cors answers it (before routing and
// authentication), the paths Rails also routes (`/submissions/`, `/languages.json`), `GET /`,
// and base64 decoded as Ruby decodes it. One cluster: a server with the default settings
// (tokens configured), one with no token, one with ALLOW_ORIGIN, one with DISALLOW_ORIGIN.

/// rack-cors' `methods: :any`.
const CORS_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// The CORS headers of a response, by their names; `Vary` too.
fn cors_headers(r: &Response) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| {
            k.to_ascii_lowercase().starts_with("access-control-") || k.eq_ignore_ascii_case("vary")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    h.sort();
    h
}

/// What an allowed preflight's answer carries: `allow_origin`, and the asked headers echoed.
fn preflight_headers(allow_origin: &str, asked: Option<&str>) -> Vec<(String, String)> {
    let mut h = vec![
        ("access-control-allow-methods".to_owned(), CORS_METHODS.to_owned()),
        ("access-control-allow-origin".to_owned(), allow_origin.to_owned()),
        ("access-control-expose-headers".to_owned(), String::new()),
        ("access-control-max-age".to_owned(), "7200".to_owned()),
    ];
    if let Some(asked) = asked {
        h.push(("access-control-allow-headers".to_owned(), asked.to_owned()));
    }
    h.sort();
    h
}

/// What any other answer to an allowed origin carries.
fn simple_headers(allow_origin: &str) -> Vec<(String, String)> {
    let mut h = preflight_headers(allow_origin, None);
    h.push(("vary".to_owned(), "Origin".to_owned()));
    h.sort();
    h
}

fn preflight(url: &str, path: &str, origin: &str, method: &str, asked: Option<&str>) -> Response {
    let mut headers = vec![("Origin", origin), ("Access-Control-Request-Method", method)];
    if let Some(asked) = asked {
        headers.push(("Access-Control-Request-Headers", asked));
    }
    http("OPTIONS", &format!("{url}{path}"), &headers, None)
}

#[test]
fn browsers_rails_paths_and_root() {
    let mut c = Cluster::start(Options { servers: 1, workers: 1, ..Options::default() });
    let open =
        c.add_server(&[("AUTHN_TOKEN", ""), ("AUTHZ_TOKEN", ""), ("ENABLE_ADDITIONAL_FILES", "false")]);
    let narrow = c.add_server(&[("ALLOW_ORIGIN", "page.example https://exact.example:8443")]);
    let refusing = c.add_server(&[("DISALLOW_ORIGIN", "evil.example bad.test")]);
    let url = c.server_urls[0].clone();
    let token = token_of(&c.request(0, "POST", "/submissions", Some(&python("print('hi')"))));
    let finished = await_status(&c, 0, &token, |s| s > 2);
    assert_eq!(finished["stdout"], json!(mime(b"hi\n")), "{finished}");

    // Preflights are answered before authentication and routing: no token, any path, any
    // origin, any header, any of rack-cors' methods; the asked headers are echoed.
    let asked = "X-Auth-Token, Content-Type, X-Whatever";
    for server in [0, open] {
        let url = &c.server_urls[server];
        for path in [
            "/submissions",
            "/submissions/",
            &format!("/submissions/{token}"),
            "/submissions/batch",
            "/languages.json",
            "/",
            "/no/such/route",
            "/healthz",
        ] {
            for (origin, method) in [
                ("http://page.example", "POST"),
                ("https://ide.judge0.com", "get"),
                ("null", "DELETE"),
                ("http://127.0.0.1:9", "PATCH"),
            ] {
                let r = preflight(url, path, origin, method, Some(asked));
                let context = format!("preflight {method} {path} from {origin} on server {server}");
                expect_empty(&r, 200, &context);
                assert_eq!(cors_headers(&r), preflight_headers("*", Some(asked)), "{context}");
            }
        }
        let r = preflight(url, "/submissions", "http://page.example", "PUT", None);
        expect_empty(&r, 200, "preflight without asked headers");
        assert_eq!(cors_headers(&r), preflight_headers("*", None), "preflight without asked headers");
        // A method outside rack-cors' list: answered, but without permission.
        let r = preflight(url, "/submissions", "http://page.example", "TRACE", Some(asked));
        expect_empty(&r, 200, "preflight for TRACE");
        assert_eq!(cors_headers(&r), [], "preflight for TRACE");
        // `X-Origin` stands in for a missing `Origin`.
        let r = http(
            "OPTIONS",
            &format!("{url}/about"),
            &[("X-Origin", "http://page.example"), ("Access-Control-Request-Method", "GET")],
            None,
        );
        assert_eq!((r.status, cors_headers(&r)), (200, preflight_headers("*", None)), "X-Origin");
    }
    // Without `Origin` an OPTIONS is no preflight: it goes on to the API like any request.
    let r =
        http("OPTIONS", &format!("{url}/submissions"), &[("Access-Control-Request-Method", "POST")], None);
    assert_ne!(r.status, 200, "OPTIONS without Origin");
    assert_eq!(cors_headers(&r), [("vary".to_owned(), "Origin".to_owned())], "OPTIONS without Origin");

    // Every other answer carries the headers, errors included; `Vary: Origin` always.
    let page = ("Origin", "http://page.example");
    let r = http("GET", &format!("{url}/languages"), &[page], None);
    expect_empty(&r, 401, "no token, from a page");
    assert_eq!(cors_headers(&r), simple_headers("*"), "a 401 carries the CORS headers");
    let authn = ("X-Auth-Token", c.authn.as_str());
    let r = http("GET", &format!("{url}/submissions/{token}?fields=stdout"), &[page, authn], None);
    expect_json(&r, 200, &json!({"stdout": "hi\n"}), "a submission, from a page");
    assert_eq!(cors_headers(&r), simple_headers("*"), "a 200 carries the CORS headers");
    let r =
        http("GET", &format!("{url}/submissions/00000000-0000-4000-8000-000000000000"), &[page, authn], None);
    assert_eq!((r.status, cors_headers(&r)), (404, simple_headers("*")), "a 404");
    let body = serde_json::to_vec(&json!({"source_code": "x", "language_id": 999})).unwrap();
    let r = http(
        "POST",
        &format!("{url}/submissions"),
        &[page, authn, ("Content-Type", "application/json")],
        Some(&body),
    );
    assert_eq!((r.status, cors_headers(&r)), (422, simple_headers("*")), "a 422");
    let r = http("GET", &format!("{url}/about"), &[authn], None);
    assert_eq!(cors_headers(&r), [("vary".to_owned(), "Origin".to_owned())], "no Origin, no CORS headers");

    // ALLOW_ORIGIN: its hosts under any scheme, its exact origins; the origin is echoed.
    let narrow_url = &c.server_urls[narrow];
    for origin in ["http://page.example", "https://page.example", "https://exact.example:8443"] {
        let r = preflight(narrow_url, "/submissions", origin, "POST", Some(asked));
        assert_eq!((r.status, cors_headers(&r)), (200, preflight_headers(origin, Some(asked))), "{origin}");
        let r = http("GET", &format!("{narrow_url}/about"), &[("Origin", origin)], None);
        let (status, headers) = (r.status, cors_headers(&r));
        assert_eq!((status, headers), (401, simple_headers(origin)), "{origin}");
    }
    for origin in [
        "http://other.example",
        "http://page.example:8080",
        "http://exact.example:8443",
        "https://www.page.example",
    ] {
        let r = preflight(narrow_url, "/submissions", origin, "POST", Some(asked));
        assert_eq!((r.status, cors_headers(&r)), (200, vec![]), "preflight from {origin}, not allowed");
        let r = http("GET", &format!("{narrow_url}/about"), &[("Origin", origin), authn], None);
        let vary = vec![("vary".to_owned(), "Origin".to_owned())];
        assert_eq!((r.status, cors_headers(&r)), (200, vary), "{origin}, not allowed");
    }

    // DISALLOW_ORIGIN: origins containing an entry are refused, any other is echoed.
    let refusing_url = &c.server_urls[refusing];
    for origin in
        ["https://evil.example", "http://www.evil.example:81", "http://bad.test", "http://evil.example.org"]
    {
        let r = preflight(refusing_url, "/submissions", origin, "POST", Some(asked));
        assert_eq!((r.status, cors_headers(&r)), (200, vec![]), "preflight from {origin}, refused");
    }
    let r = preflight(refusing_url, "/submissions", "http://page.example", "POST", Some(asked));
    let expected = preflight_headers("http://page.example", Some(asked));
    assert_eq!((r.status, cors_headers(&r)), (200, expected), "DISALLOW_ORIGIN lets others in");

    // `GET /`: 200, empty, no token, on every server.
    for server_url in &c.server_urls {
        expect_empty(&http("GET", &format!("{server_url}/"), &[], None), 200, "GET /");
        expect_empty(&http("GET", server_url, &[], None), 200, "GET without a path");
    }
    let r = http("GET", &format!("{url}/"), &[page], None);
    assert_eq!((r.status, cors_headers(&r)), (200, simple_headers("*")), "GET / from a page");

    // Rails' other spellings of every route reach the same action. (Compared once the names
    // carry the versions the worker detects, which would otherwise change in between.)
    languages_carry_versions(&c);
    let same = |plain: &str, others: &[String]| {
        let expected = c.request(0, "GET", plain, None);
        assert_eq!(expected.status, 200, "{plain}: {}", expected.text());
        for other in others {
            let r = c.request(0, "GET", other, None);
            assert_eq!((r.status, r.text()), (200, expected.text()), "{other} is {plain}");
        }
    };
    for plain in [
        "/languages",
        "/languages/all",
        "/languages/71",
        "/statuses",
        "/about",
        "/version",
        "/license",
        "/isolate",
        "/config_info",
        "/system_info",
        "/statistics",
    ] {
        let others = [
            format!("{plain}/"),
            format!("{plain}.json"),
            format!("/{plain}//"),
            format!("{plain}.json/"),
            format!("{plain}.xml"),
        ];
        same(plain, &others);
    }
    let shown = format!("/submissions/{token}?fields=stdout,status,language_id");
    let others: Vec<String> = [
        format!("/submissions/{token}/"),
        format!("/submissions/{token}.json"),
        format!("/submissions//{token}.json/"),
    ]
    .iter()
    .map(|p| format!("{p}?fields=stdout,status,language_id"))
    .collect();
    same(&shown, &others);
    let batch = format!("/submissions/batch?tokens={token}&fields=stdout");
    same(
        &batch,
        &[
            format!("/submissions/batch.json?tokens={token}&fields=stdout"),
            format!("/submissions/batch/?tokens={token}&fields=stdout"),
        ],
    );
    assert_eq!(c.request(0, "GET", "/workers.json/", None).status, 200, "/workers.json/");
    let r = http(
        "GET",
        &format!("{url}/submissions.json/?per_page=1"),
        &[authn, ("X-Auth-User", &c.authz)],
        None,
    );
    assert_eq!(r.status, 200, "listing as /submissions.json/: {}", r.text());
    for path in ["/submissions/", "/submissions.json", "//submissions"] {
        let r = c.request(0, "POST", &format!("{path}?wait=true&fields=stdout"), Some(&python("print(2)")));
        expect_json(&r, 201, &json!({"stdout": "2\n"}), &format!("POST {path}"));
    }
    for path in ["/submissions/batch/", "/submissions/batch.json"] {
        let body = json!({"submissions": [python("print(3)")]});
        let r = c.request(0, "POST", path, Some(&body));
        assert_eq!(r.status, 201, "POST {path}: {}", r.text());
        assert!(is_uuid_v4(r.json()[0]["token"].as_str().unwrap_or("")), "POST {path}: {}", r.text());
    }
    expect_empty(&c.request(0, "POST", "/authenticate/", None), 200, "POST /authenticate/");
    let r = http("POST", &format!("{url}/authorize.json"), &[authn, ("X-Auth-User", &c.authz)], None);
    expect_empty(&r, 200, "POST /authorize.json");
    // What Rails would not route stays unknown; the token still guards the spellings.
    for path in ["/languages/.json", "/.json", "/languages/71.json.json"] {
        assert_eq!(c.request(0, "GET", path, None).status, 404, "{path}");
    }
    expect_empty(&anonymous("GET", &format!("{url}/languages.json"), None), 401, "/languages.json, no token");

    // Base64 input as Ruby decodes it: strangers skipped anywhere, padding optional, a `=`
    // where a group's third or fourth character belongs ends the input.
    let noisy = |s: &str| STANDARD.encode(s).chars().flat_map(|c| [c, '*']).collect::<String>();
    let body = json!({"source_code": noisy("print(input())"), "language_id": 71,
        "stdin": format!("{}{}", STANDARD.encode("ab"), STANDARD.encode("ignored")),
        "expected_output": format!("  {}\t", STANDARD.encode("ab").trim_end_matches('='))});
    let r = c.request(
        0,
        "POST",
        "/submissions/?wait=true&base64_encoded=true&fields=stdin,stdout,status",
        Some(&body),
    );
    let expected = json!({"stdin": mime(b"ab"), "stdout": mime(b"ab\n"),
        "status": {"id": 3, "description": "Accepted"}});
    expect_json(&r, 201, &expected, "lenient base64 in, MIME base64 out");
    // additional_files that decode to nothing are no files, even where files are refused.
    let nothing = with(&python("print(4)"), &json!({"additional_files": "@@@"}));
    let open_url = &c.server_urls[open];
    let r = anonymous("POST", &format!("{open_url}/submissions?wait=true&fields=stdout"), Some(&nothing));
    expect_json(&r, 201, &json!({"stdout": "4\n"}), "additional_files of nothing");
}
