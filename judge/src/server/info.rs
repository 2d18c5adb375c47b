//! Everything that describes the judge rather than a submission: languages, statuses, about,
//! configuration, system, statistics, workers, health and metrics.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use judge_wire::Status;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::{db, format, metrics};

/// The Judge0 version this API speaks; SDKs choose behaviour by it.
pub(crate) const JUDGE0_VERSION: &str = "1.13.1";

/// `GET /`: 200 and nothing else, with no token (load balancers ask it). Judge0 would show its
/// documentation with `USE_DOCS_AS_HOMEPAGE`; Verdict has none to show.
pub(crate) async fn home() -> StatusCode {
    StatusCode::OK
}

/// `GET /languages`: the active languages that at least one live worker can run (its
/// heartbeat lists them), sorted by name. A cluster whose workers lack a toolchain does not
/// offer its languages; one with no live worker offers none.
pub(crate) async fn languages(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let runnable: HashSet<i32> = state.redis.workers().await?.into_iter().flat_map(|w| w.languages).collect();
    let list: Vec<Value> = state
        .languages()
        .all()
        .into_iter()
        .filter(|l| !l.def.is_archived && runnable.contains(&l.id))
        .map(|l| json!({"id": l.id, "name": l.name}))
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `GET /languages/all`.
pub(crate) async fn all_languages(State(state): State<Arc<AppState>>) -> Json<Value> {
    let list: Vec<Value> = state
        .languages()
        .all()
        .into_iter()
        .map(|l| json!({"id": l.id, "name": l.name, "is_archived": l.def.is_archived}))
        .collect();
    Json(Value::Array(list))
}

/// `GET /languages/:id`.
pub(crate) async fn language(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i32 = id.parse().map_err(|_| ApiError::NotFound)?;
    let l = state.languages().get(id).ok_or(ApiError::NotFound)?;
    Ok(Json(json!({
        "id": l.id,
        "name": l.name,
        "is_archived": l.def.is_archived,
        "source_file": l.def.source_file,
        "compile_cmd": l.def.compile_cmd,
        "run_cmd": l.def.run_cmd,
    })))
}

/// `GET /statuses`.
pub(crate) async fn statuses() -> Json<Value> {
    Json(Value::Array(
        Status::ALL.iter().map(|s| json!({"id": s.id(), "description": s.description()})).collect(),
    ))
}

/// `GET /about`.
pub(crate) async fn about() -> Json<Value> {
    Json(json!({
        "version": JUDGE0_VERSION,
        "homepage": "https://judge0.com",
        "source_code": "https://github.com/judge0/judge0",
        "maintainer": "Verdict, a Judge0 CE 1.13.1-compatible judge",
    }))
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// `GET /version`.
pub(crate) async fn version() -> Response {
    text(JUDGE0_VERSION.to_owned())
}

/// `GET /license`.
pub(crate) async fn license() -> Response {
    text("Verdict is licensed under the Apache License, Version 2.0.\n".to_owned())
}

/// `GET /isolate`: what isolates programs here.
pub(crate) async fn isolate() -> Response {
    text(format!("verdict-sandbox {} (namespaces, cgroups v1/v2, seccomp)\n", env!("CARGO_PKG_VERSION")))
}

/// `GET /config_info`: the 39 keys of Judge0's configuration.
pub(crate) async fn config_info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let c = &state.config.judge0;
    Json(json!({
        "maintenance_mode": c.maintenance_mode,
        "enable_wait_result": c.enable_wait_result,
        "enable_compiler_options": c.enable_compiler_options,
        "allowed_languages_for_compile_options": c.allowed_languages_for_compile_options,
        "enable_command_line_arguments": c.enable_command_line_arguments,
        "enable_submission_delete": c.enable_submission_delete,
        "enable_callbacks": c.enable_callbacks,
        "callbacks_max_tries": c.callbacks_max_tries,
        "callbacks_timeout": c.callbacks_timeout,
        "enable_additional_files": c.enable_additional_files,
        "max_queue_size": c.max_queue_size,
        "cpu_time_limit": c.cpu_time_limit,
        "max_cpu_time_limit": c.max_cpu_time_limit,
        "cpu_extra_time": c.cpu_extra_time,
        "max_cpu_extra_time": c.max_cpu_extra_time,
        "wall_time_limit": c.wall_time_limit,
        "max_wall_time_limit": c.max_wall_time_limit,
        "memory_limit": c.memory_limit,
        "max_memory_limit": c.max_memory_limit,
        "stack_limit": c.stack_limit,
        "max_stack_limit": c.max_stack_limit,
        "max_processes_and_or_threads": c.max_processes_and_or_threads,
        "max_max_processes_and_or_threads": c.max_max_processes_and_or_threads,
        "enable_per_process_and_thread_time_limit": c.enable_per_process_and_thread_time_limit,
        "allow_enable_per_process_and_thread_time_limit": c.allow_enable_per_process_and_thread_time_limit,
        "enable_per_process_and_thread_memory_limit": c.enable_per_process_and_thread_memory_limit,
        "allow_enable_per_process_and_thread_memory_limit": c.allow_enable_per_process_and_thread_memory_limit,
        "max_file_size": c.max_file_size,
        "max_max_file_size": c.max_max_file_size,
        "number_of_runs": c.number_of_runs,
        "max_number_of_runs": c.max_number_of_runs,
        "redirect_stderr_to_stdout": c.redirect_stderr_to_stdout,
        "max_extract_size": c.max_extract_size,
        "enable_batched_submissions": c.enable_batched_submissions,
        "max_submission_batch_size": c.max_submission_batch_size,
        "submission_cache_duration": c.submission_cache_duration,
        "use_docs_as_homepage": c.use_docs_as_homepage,
        "allow_enable_network": c.allow_enable_network,
        "enable_network": c.enable_network,
    }))
}

/// `GET /system_info`: the host, in `lscpu`-like keys as Judge0 shows them.
pub(crate) async fn system_info() -> Json<Value> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| {
                l.split_once(':').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    Json(json!({
        "Architecture": std::env::consts::ARCH,
        "CPU(s)": cpus.to_string(),
        "Model name": field(&cpuinfo, "model name"),
        "Kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "Mem": field(&meminfo, "MemTotal"),
        "Swap": field(&meminfo, "SwapTotal"),
    }))
}

/// `GET /statistics`: counts by language and status and the database size (cached briefly).
pub(crate) async fn statistics(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let mut cache = state.statistics.lock().await;
    if let Some((at, body)) = cache.as_ref()
        && at.elapsed() < Duration::from_secs(30)
    {
        return Ok(Json(body.clone()));
    }
    let stats = db::statistics(&state.db).await?;
    let languages = state.languages();
    let body = json!({
        "now": format::timestamp(time::OffsetDateTime::now_utc()),
        "languages": stats.by_language.iter().map(|(id, count)| json!({
            "language": {"id": id, "name": languages.get(*id).map(|l| l.name)},
            "count": count,
        })).collect::<Vec<_>>(),
        "statuses": stats.by_status.iter().filter_map(|(id, count)| Status::from_id(*id).map(|s| json!({
            "status": {"id": s.id(), "description": s.description()},
            "count": count,
        }))).collect::<Vec<_>>(),
        "database": {"size_pretty": stats.database_size_pretty, "size_in_bytes": stats.database_size},
    });
    *cache = Some((Instant::now(), body.clone()));
    Ok(Json(body))
}

/// `GET /workers`: the queue and the workers serving it, in Judge0's shape. The `workers`
/// detail list is not Judge0's (the contract allows only the seven keys before it); the fault
/// tests read it, so it stays until they find a worker's detail elsewhere.
pub(crate) async fn workers(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let size = state.redis.depth().await?;
    let beats = state.redis.workers().await?;
    let working = beats.iter().filter(|b| b.running > 0).count();
    let paused = beats.iter().filter(|b| b.stopping).count();
    Ok(Json(json!([{
        "queue": JUDGE0_VERSION,
        "size": size,
        "available": beats.len(),
        "idle": beats.len() - working,
        "working": working,
        "paused": paused,
        "failed": 0,
    }])))
}

/// `GET /healthz`: this server and whether it reaches Redis and PostgreSQL.
pub(crate) async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let timeout = Duration::from_secs(2);
    let redis = tokio::time::timeout(timeout, state.redis.ping()).await;
    let postgres = tokio::time::timeout(timeout, db::ping(&state.db)).await;
    let show = |ok: bool| if ok { "ok" } else { "unreachable" };
    let redis_ok = matches!(redis, Ok(Ok(())));
    let postgres_ok = matches!(postgres, Ok(Ok(())));
    let code = if redis_ok && postgres_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if code == StatusCode::OK { "ok" } else { "degraded" },
        "redis": show(redis_ok),
        "postgres": show(postgres_ok),
    });
    (code, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text. Queue, finished submissions and run latencies are the
/// cluster's (from Redis); requests and waits are this server's.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut out = String::new();
    if let Ok(depth) = state.redis.depth().await {
        metrics::render_value(
            &mut out,
            "judge_queue_depth",
            "gauge",
            "Submissions queued or running.",
            depth,
        );
    }
    if let Ok(beats) = state.redis.workers().await {
        metrics::render_value(
            &mut out,
            "judge_workers",
            "gauge",
            "Workers with a current heartbeat.",
            beats.len(),
        );
    }
    if let Ok(counts) = state.redis.finished_counts().await {
        out.push_str("# HELP judge_submissions_finished_total Submissions finished, by status.\n");
        out.push_str("# TYPE judge_submissions_finished_total counter\n");
        for s in Status::ALL {
            let n = counts.get(&s.id()).copied().unwrap_or(0);
            out.push_str(&format!(
                "judge_submissions_finished_total{{status_id=\"{}\",status=\"{}\"}} {n}\n",
                s.id(),
                s.description()
            ));
        }
    }
    for (name, help) in [
        ("run", "Seconds from a worker taking a submission to its result."),
        ("queue_wait", "Seconds a submission waited in the queue."),
    ] {
        if let Ok(h) = state.redis.latency(name).await {
            h.render(&mut out, &format!("judge_{name}_seconds"), help);
        }
    }
    metrics::render_value(
        &mut out,
        "judge_server_submissions_created_total",
        "counter",
        "Submissions accepted by this server.",
        state.metrics.created.load(Ordering::Relaxed),
    );
    metrics::render_value(
        &mut out,
        "judge_server_waiting_requests",
        "gauge",
        "Requests waiting for a submission to finish (wait=true).",
        state.waiters.len(),
    );
    metrics::render_value(
        &mut out,
        "judge_server_event_streams",
        "gauge",
        "Live event streams open on this server.",
        state.live.len(),
    );
    metrics::render_value(
        &mut out,
        "judge_server_event_streams_dropped_total",
        "counter",
        "Live event streams dropped for falling behind.",
        state.live.dropped(),
    );
    state.metrics.wait_latency.render(
        &mut out,
        "judge_server_wait_seconds",
        "Seconds from accepting a wait=true submission to answering it.",
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
