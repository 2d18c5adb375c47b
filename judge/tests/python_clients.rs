//! Judge0 clients other people wrote, from PyPI, unchanged but for the base URL and the tokens:
//! the official `judge0` SDK, `judge0-client`, `judge0api` and `judge0-api-wrapper`, installed
//! at pinned versions (`python_clients/requirements.txt`) into a throwaway virtualenv and run
//! by `python_clients/clients.py` against a real cluster. Each submits Python and C++ the way
//! its README shows and reads the result back; the outcomes are asserted here.
//!
//! Needs `python3` with `venv` and PyPI; without them the test fails and says why.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::{Cluster, Options};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python_clients");

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A virtualenv in `dir` with the pinned clients installed.
fn virtualenv(dir: &Path) -> std::path::PathBuf {
    run(
        Command::new("python3").args(["-m", "venv"]).arg(dir),
        "python3 -m venv (is python3-venv installed?)",
    );
    let pip = dir.join("bin/pip");
    run(
        Command::new(&pip)
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--timeout",
                "30",
                "-r",
            ])
            .arg(Path::new(DIR).join("requirements.txt")),
        "pip install of the Judge0 clients from PyPI (is PyPI reachable?)",
    );
    dir.join("bin/python")
}

#[test]
fn python_judge0_clients_work_unchanged() {
    let venv = tempfile::Builder::new().prefix("verdict-python-clients-").tempdir().unwrap();
    let python = virtualenv(venv.path());
    let c = Cluster::start(Options { servers: 1, workers: 2, ..Options::default() });
    let out = run(
        Command::new(python)
            .arg(Path::new(DIR).join("clients.py"))
            .env("JUDGE_URL", c.url())
            .env("JUDGE_AUTHN", &c.authn)
            .env("JUDGE_AUTHZ", &c.authz)
            // No `.env` file or preview client of Judge0's cloud: only what the script sets.
            .env_remove("JUDGE0_CE_ENDPOINT")
            .env_remove("JUDGE0_CE_AUTH_HEADERS")
            .current_dir(venv.path()),
        "clients.py",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results: Value =
        stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
            panic!("no results from clients.py:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr))
        });

    let reversed = json!({"stdout": "hello\n", "status": 3});
    let sum = json!({"stdout": "5\n", "status": 3});
    let expected = json!({
        "judge0 python": reversed,
        "judge0 cpp": sum,
        "judge0 test cases": [{"stdout": "hello\n", "status": 3}, {"stdout": "cba\n", "status": 4}],
        "judge0-client python": reversed,
        "judge0-client cpp": sum,
        "judge0api python": reversed,
        "judge0api cpp": sum,
        "judge0api get": reversed,
        "judge0-api-wrapper python": reversed,
        "judge0-api-wrapper cpp": sum,
        "judge0-api-wrapper batch": [{"stdout": "hello\n", "status": 3}, {"stdout": "5\n", "status": 4}],
    });
    let mut failures = Vec::new();
    for (case, want) in expected.as_object().unwrap() {
        let got = &results[case];
        if got != want {
            let shown =
                got.get("error").and_then(Value::as_str).map_or_else(|| got.to_string(), str::to_owned);
            failures.push(format!("{case}: expected {want}, got:\n{shown}"));
        }
    }
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n\n"), c.logs());
}
