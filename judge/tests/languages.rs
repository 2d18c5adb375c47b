//! The language matrix: every language the judge lists (each alias under its own id) reaches
//! Accepted with its stdin echoed, Wrong Answer, Compilation Error (compiled languages), Runtime
//! Error and Time Limit Exceeded, with the commands of `judge/languages.toml`. The programs are
//! in `tests/languages/<id>.toml`; a listed language without a file fails the test, so no
//! language is offered untested. All cases are submitted at once and judged by two workers.
//!
//! `VERDICT_LANGUAGES=45,56` runs only those ids (for working on a language); the full matrix
//! runs otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use judge::languages::Languages;
use serde::Deserialize;
use serde_json::{Value, json};
use support::{Cluster, Expected, Options};

/// One language's programs. Each is a whole source file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Programs {
    /// Another id's file holds the programs (aliases share their language's).
    same_as: Option<i32>,
    /// Reads one word from stdin and prints `hello, <word>` and a newline.
    echo: Option<String>,
    /// Fails to compile (compiled languages only).
    compile_error: Option<String>,
    /// Fails at run time, exiting with status 3 where the language can choose its status.
    runtime_error: Option<String>,
    /// The status the runtime error gets (default 11, "Runtime Error (NZEC)").
    runtime_error_status: Option<i32>,
    /// The message it gets, when the language decides it ("Exited with error status 3").
    runtime_error_message: Option<String>,
    /// Never ends, using the CPU.
    time_limit: Option<String>,
    /// The programs are C, built here with the host's gcc and sent as the base64-encoded
    /// binary (Judge0's "Executable").
    #[serde(default)]
    executable: bool,
}

/// Languages whose cases are special and live in `verdicts.rs`: Plain Text prints its source,
/// the multi-file program is a zip.
const SPECIAL: [i32; 2] = [43, 89];

const AC: i32 = 3;
const WA: i32 = 4;
const TLE: i32 = 5;
const CE: i32 = 6;
const NZEC: i32 = 11;

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/languages")
}

fn read_programs(id: i32) -> Option<Programs> {
    let path = programs_dir().join(format!("{id}.toml"));
    let text = std::fs::read_to_string(&path).ok()?;
    let programs: Programs = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match programs.same_as {
        Some(other) => {
            let shared = read_programs(other).unwrap_or_else(|| panic!("{id}.toml: no {other}.toml"));
            Some(Programs { same_as: None, ..shared })
        }
        None => Some(programs),
    }
}

/// The ids `VERDICT_LANGUAGES` selects, if set.
fn selected() -> Option<Vec<i32>> {
    let list = std::env::var("VERDICT_LANGUAGES").ok()?;
    Some(list.split(',').map(|s| s.trim().parse().expect("VERDICT_LANGUAGES: ids and commas")).collect())
}

/// A C program built by the host's gcc, base64-encoded.
fn executable(source: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.c"), source).unwrap();
    let out = Command::new("/usr/bin/gcc")
        .args(["-O1", "-o", "a.out", "main.c"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "gcc: {}", String::from_utf8_lossy(&out.stderr));
    judge::format::base64(&std::fs::read(dir.path().join("a.out")).unwrap())
}

fn cases(id: i32, compiled: bool, p: &Programs) -> Vec<Expected> {
    let source = |s: &str| -> Value {
        if p.executable {
            json!({"language_id": id, "source_code": executable(s), "base64_encoded": true})
        } else {
            json!({"language_id": id, "source_code": s})
        }
    };
    let with = |mut body: Value, extra: Value| {
        if let (Value::Object(b), Value::Object(extra)) = (&mut body, extra) {
            b.extend(extra);
        }
        body
    };
    let label = |name: &str| format!("language {id} {name}");
    let echo = p.echo.as_deref().unwrap_or_else(|| panic!("{id}.toml: no echo program"));
    let mut v = vec![
        Expected {
            label: label("stdin echo"),
            body: with(source(echo), json!({"stdin": "verdict", "expected_output": "hello, verdict"})),
            status: AC,
            stdout: Some("hello, verdict\n".into()),
            message: None,
        },
        Expected {
            label: label("wrong answer"),
            body: with(source(echo), json!({"stdin": "verdict", "expected_output": "hello, judge"})),
            status: WA,
            stdout: Some("hello, verdict\n".into()),
            message: None,
        },
    ];
    match (&p.compile_error, compiled) {
        (Some(src), true) => v.push(Expected {
            label: label("compilation error"),
            body: source(src),
            status: CE,
            stdout: None,
            message: None,
        }),
        (None, true) => panic!("{id}.toml: a compiled language needs a compile_error program"),
        (Some(_), false) => panic!("{id}.toml: compile_error for a language that does not compile"),
        (None, false) => {}
    }
    let runtime_error = p.runtime_error.as_deref().unwrap_or_else(|| panic!("{id}.toml: no runtime_error"));
    v.push(Expected {
        label: label("runtime error"),
        body: source(runtime_error),
        status: p.runtime_error_status.unwrap_or(NZEC),
        stdout: None,
        message: p.runtime_error_message.clone(),
    });
    let time_limit = p.time_limit.as_deref().unwrap_or_else(|| panic!("{id}.toml: no time_limit"));
    v.push(Expected {
        label: label("time limit"),
        // A generous wall limit: on a loaded machine the CPU limit must still be the one that hits.
        body: with(
            source(time_limit),
            json!({"cpu_time_limit": 1, "cpu_extra_time": 0.5, "wall_time_limit": 20}),
        ),
        status: TLE,
        stdout: None,
        message: Some("Time limit exceeded".into()),
    });
    v
}

#[test]
fn every_listed_language_has_programs_and_every_program_a_language() {
    let languages = Languages::load(None).unwrap();
    let listed: BTreeMap<i32, bool> = languages
        .defs()
        .iter()
        .filter(|d| !d.is_archived)
        .flat_map(|d| d.ids().map(move |id| (id, d.compile_cmd.is_some())))
        .collect();
    let mut missing = Vec::new();
    for &id in listed.keys().filter(|id| !SPECIAL.contains(id)) {
        if read_programs(id).is_none() {
            missing.push(id);
        }
    }
    assert!(missing.is_empty(), "languages without programs in tests/languages: {missing:?}");
    for entry in std::fs::read_dir(programs_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let id: i32 =
            name.strip_suffix(".toml").and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{name}"));
        assert!(listed.contains_key(&id) && !SPECIAL.contains(&id), "{name}: no such listed language");
    }
}

#[test]
fn every_language_reaches_every_verdict() {
    let languages = Languages::load(None).unwrap();
    let only = selected();
    let mut all = Vec::new();
    for def in languages.defs().iter().filter(|d| !d.is_archived) {
        for id in def.ids() {
            if SPECIAL.contains(&id) || only.as_ref().is_some_and(|o| !o.contains(&id)) {
                continue;
            }
            let Some(programs) = read_programs(id) else { continue }; // The test above says so.
            all.extend(
                cases(id, def.compile_cmd.is_some(), &programs)
                    .into_iter()
                    .map(|c| Expected { body: encode(&c.body), ..c }),
            );
        }
    }
    assert!(!all.is_empty(), "no language selected");

    // Every program compiles at once on a small machine: the compile step's wall-clock limit is
    // not what the matrix tests, its CPU limit still applies.
    let cluster = Cluster::start(Options {
        env: vec![("COMPILE_WALL_TIME_LIMIT".into(), "120".into())],
        ..Options::default()
    });
    cluster.judge_all("base64_encoded=true", &all, Duration::from_secs(600));
}

/// The body with `source_code`, `stdin` and `expected_output` base64-encoded (an executable's
/// source already is), so every program travels byte for byte.
fn encode(body: &Value) -> Value {
    let mut body = body.clone();
    let already = body.get("base64_encoded").is_some();
    if let Value::Object(b) = &mut body {
        b.remove("base64_encoded");
        for key in ["source_code", "stdin", "expected_output"] {
            if key == "source_code" && already {
                continue;
            }
            if let Some(Value::String(s)) = b.get_mut(key) {
                *s = judge::format::base64(s.as_bytes());
            }
        }
    }
    body
}
