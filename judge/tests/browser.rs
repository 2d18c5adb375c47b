//! A page on another origin calls the judge from real Chromium, as Judge0's IDE and its dummy
//! client page do: the page's JavaScript sends `X-Auth-Token` and a JSON body with fetch(), so
//! the browser asks with a CORS preflight first and reads nothing the CORS headers do not allow.
//! Directly and through the gateway (over two servers); and a judge whose `DISALLOW_ORIGIN`
//! names the page's host is refused by the browser.
//!
//! The driver (`browser/driver.mjs`, playwright-core from `browser/package-lock.json`, installed
//! with `npm ci` when missing) serves the page and drives `/usr/bin/chromium`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::{Cluster, Options};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

/// Installs the driver's dependencies as locked, once.
fn npm_ci() {
    if Path::new(DIR).join("node_modules/playwright-core/package.json").exists() {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(DIR)
        .output()
        .expect("npm (nodejs) must be installed");
    assert!(
        out.status.success(),
        "npm ci failed (is the npm registry reachable?):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_page_on_another_origin_runs_code_in_chromium() {
    npm_ci();
    let mut c = Cluster::start(Options { servers: 2, workers: 1, ..Options::default() });
    // The page is served from 127.0.0.1: this server refuses it.
    let refusing = c.add_server(&[("DISALLOW_ORIGIN", "127.0.0.1")]);
    let gateway = c.start_gateway(&[0, 1]);
    let direct = c.url().to_owned();
    let out = Command::new("node")
        .arg(Path::new(DIR).join("driver.mjs"))
        .env("JUDGE_URLS", format!("{direct} {}", gateway.url))
        .env("JUDGE_REFUSING_URL", &c.server_urls[refusing])
        .env("JUDGE_TOKEN", &c.authn)
        .output()
        .expect("node must be installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the driver failed:\n{stdout}\n{stderr}\n{}\n{}", c.logs(), gateway.log());
    let report: Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no report from the driver:\n{stdout}\n{stderr}"));

    assert!(
        report["origin"].as_str().is_some_and(|o| o.starts_with("http://127.0.0.1:") && o != direct),
        "the page has an origin of its own: {report}"
    );
    let expected = json!({"created": 201, "stdout": "hello\n", "status": {"id": 3, "description": "Accepted"},
        "anonymous": 401});
    for url in [&direct, &gateway.url] {
        assert_eq!(report["results"][url.as_str()], expected, "through {url}: {report}");
    }
    assert_eq!(report["refused"], "TypeError", "a refused origin is blocked by the browser: {report}");
}
