//! The cluster harness itself, and one submission through it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use serde_json::json;
use support::{Cluster, Options};

#[test]
fn a_cluster_starts_and_judges_a_submission() {
    let cluster = Cluster::start(Options::default());
    let done = cluster.run(&json!({"source_code": "print(input())", "language_id": 71, "stdin": "hi"}), "");
    assert_eq!(done["status"]["id"], 3, "{done}");
    assert_eq!(done["stdout"], "hi\n");
}
