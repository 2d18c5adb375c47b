//! `/submissions`: create (one or a batch, optionally waiting), show, list, delete, cancel.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use judge_wire::{Envelope, Event, Status};

use crate::events::Waiter;
use serde_json::{Value, json};
use uuid::Uuid;

use super::answer::Rendered;
use super::error::ApiError;
use super::params::Params;
use super::view::{self, DEFAULT_FIELDS, NOT_UTF8, NOT_UTF8_MANY};
use super::{AppState, Submission, auth, validate};
use crate::db::{self, NewSubmission};

fn params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Params, ApiError> {
    let mut p = Params::from_query(query);
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    p.merge_body(body, ct)?;
    Ok(p)
}

fn parse_token(token: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(token).map_err(|_| ApiError::NotFound)
}

/// Largest page of `GET /submissions`.
const MAX_PER_PAGE: i64 = 1000;

/// Refuses changes in maintenance mode: 503 with the maintenance message.
fn not_in_maintenance(state: &AppState) -> Result<(), ApiError> {
    let cfg = &state.config.judge0;
    if cfg.maintenance_mode {
        return Err(ApiError::Unavailable(cfg.maintenance_message.clone()));
    }
    Ok(())
}

/// Several submissions rendered for one answer (lists, batches); `None` shows as `null`.
fn render_many<'a>(
    subs: impl IntoIterator<Item = Option<&'a Submission>>,
    fields: &[&str],
    base64: bool,
    languages: &crate::languages::Languages,
) -> Result<Vec<Value>, ApiError> {
    subs.into_iter()
        .map(|sub| sub.map_or(Ok(Value::Null), |s| view::render(s, fields, base64, languages)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::BadRequest(NOT_UTF8_MANY.into()))
}

/// Refuses new work when the queue cannot take `adding` more.
async fn queue_has_room(state: &AppState, adding: u64) -> Result<(), ApiError> {
    let cfg = &state.config.judge0;
    match state.redis.depth().await {
        Ok(depth) if depth + adding > cfg.max_queue_size => {
            Err(ApiError::Unavailable("queue is full".into()))
        }
        Ok(_) => Ok(()),
        // Redis is away for a moment: PostgreSQL is the truth and the sweeper queues what we
        // accept now, so keep accepting.
        Err(error) => {
            tracing::warn!(%error, "Cannot read the queue depth; accepting anyway.");
            Ok(())
        }
    }
}

/// Stores and queues submissions. A failure to queue is not fatal: the row is the truth and
/// the sweeper queues it again. With `wait`, the (single) submission's waiter is registered
/// before it is queued, so its finish cannot be missed.
async fn accept(
    state: &AppState,
    subs: &[NewSubmission],
    wait: bool,
) -> Result<(Vec<Uuid>, Option<Waiter>), ApiError> {
    let tokens = db::insert(&state.db, subs).await?;
    let names: Vec<String> = tokens.iter().map(Uuid::to_string).collect();
    let waiter = match names.as_slice() {
        [name] if wait => Some(state.waiters.register(name)),
        _ => None,
    };
    if let Err(error) = state.redis.enqueue(&names).await {
        tracing::warn!(%error, "Could not queue accepted submissions; the sweeper will.");
    }
    state.metrics.created.fetch_add(tokens.len() as u64, Ordering::Relaxed);
    Ok((tokens, waiter))
}

/// Longest a `wait=true` request waits for `sub`: its own limits, plus compiling, plus slack.
fn wait_budget(state: &AppState, sub: &NewSubmission) -> Duration {
    let cfg = &state.config.judge0;
    let runs = sub.wall_time_limit * f64::from(sub.number_of_runs.max(1));
    let secs = (runs + cfg.max_wall_time_limit + 30.0).min(state.config.max_wait_seconds);
    Duration::from_secs_f64(secs.max(1.0))
}

/// Waits until the submission is finished (or the deadline), woken by the workers'
/// notifications, never by polling, and renders it with `fields`. `waiter` was registered
/// before the submission was queued.
async fn wait_final(
    state: &AppState,
    token: Uuid,
    mut waiter: Waiter,
    deadline: Instant,
    fields: &[&'static str],
    base64: bool,
) -> Result<Rendered, ApiError> {
    let name = token.to_string();
    let languages = state.languages();
    loop {
        tokio::select! {
            _ = waiter.notified() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        // Register again before looking, so a finish between the two is not missed.
        waiter = state.waiters.register(&name);
        let last = Instant::now() >= deadline;
        let read = async {
            let sub = db::get(&state.db, token, fields).await?.ok_or(ApiError::NotFound)?;
            if !last && !Status::from_id(sub.status_id).is_some_and(Status::is_final) {
                return Ok(None);
            }
            Ok(Some(
                view::render(&sub, fields, base64, &languages)
                    // Still 201, with the token: the client can fetch the result in base64.
                    .unwrap_or_else(|_| json!({"error": NOT_UTF8, "token": name.clone()})),
            ))
        };
        if let Some(rendered) = state.bounds.try_render(read).await? {
            return Ok(rendered);
        }
    }
}

/// `POST /submissions`.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let p = params(query.as_deref(), &headers, &body)?;
    // Judge0's order: maintenance, wait, queue, fields.
    not_in_maintenance(&state)?;
    let wait = p.is_true("wait");
    if wait && !state.config.judge0.enable_wait_result {
        return Err(ApiError::BadRequest("wait not allowed".into()));
    }
    queue_has_room(&state, 1).await?;
    let fields = view::parse_fields(p.string("fields").as_deref())?;
    let base64 = p.is_true("base64_encoded");
    let languages = state.languages();
    let new =
        validate::new_submission(&p, base64, &state.config.judge0, &languages).map_err(ApiError::Invalid)?;
    let budget = wait_budget(&state, &new);
    let (tokens, waiter) = accept(&state, std::slice::from_ref(&new), wait).await?;
    let token = tokens[0];
    let Some(waiter) = waiter else {
        return Ok((StatusCode::CREATED, Json(json!({ "token": token.to_string() }))).into_response());
    };
    let rendered = wait_final(&state, token, waiter, Instant::now() + budget, &fields, base64).await?;
    state.metrics.wait_latency.observe(started.elapsed().as_secs_f64());
    Ok(rendered.into_response(StatusCode::CREATED))
}

/// `GET /submissions/:token`.
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_query(query.as_deref());
    let fields = view::parse_fields(p.string("fields").as_deref())?;
    let token = parse_token(&token)?;
    let read = async {
        let sub = db::get(&state.db, token, &fields).await?.ok_or(ApiError::NotFound)?;
        Ok(view::render(&sub, &fields, p.is_true("base64_encoded"), &state.languages())?)
    };
    state.bounds.answer(StatusCode::OK, read).await
}

/// `GET /submissions?page=&per_page=` (needs `X-Auth-User`).
pub(crate) async fn index(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !auth::authorized(&state, &headers, query.as_deref()) {
        return Err(ApiError::Forbidden);
    }
    let p = Params::from_query(query.as_deref());
    let fields = view::parse_fields(p.string("fields").as_deref())?;
    // Read as Judge0 reads them (Ruby's `to_i`), refused as it refuses them.
    let page = p.ruby_integer("page").unwrap_or(1);
    let per_page = p.ruby_integer("per_page").unwrap_or(20);
    if page <= 0 {
        return Err(ApiError::BadRequest(format!("invalid page: {page}")));
    }
    if per_page < 0 {
        return Err(ApiError::BadRequest(format!("invalid per_page: {per_page}")));
    }
    let per_page = per_page.clamp(1, MAX_PER_PAGE);
    let read = async {
        let (subs, total) = db::list(&state.db, page, per_page, &fields).await?;
        let base64 = p.is_true("base64_encoded");
        let rendered = render_many(subs.iter().map(Some), &fields, base64, &state.languages())?;
        let total_pages = (total + per_page - 1) / per_page;
        Ok(json!({
            "submissions": rendered,
            "meta": {
                "current_page": page,
                "next_page": if page < total_pages { Some(page + 1) } else { None },
                "prev_page": if page > 1 { Some(page - 1) } else { None },
                "total_pages": total_pages,
                "total_count": total,
            }
        }))
    };
    state.bounds.answer(StatusCode::OK, read).await
}

/// `DELETE /submissions/:token` (needs `X-Auth-User` and deletion enabled).
pub(crate) async fn destroy(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    if !auth::authorized(&state, &headers, query.as_deref()) {
        return Err(ApiError::Forbidden);
    }
    not_in_maintenance(&state)?;
    let p = Params::from_query(query.as_deref());
    let fields = view::parse_fields(p.string("fields").as_deref())?;
    if !state.config.judge0.enable_submission_delete {
        return Err(ApiError::BadRequest("delete not allowed".into()));
    }
    match db::delete(&state.db, parse_token(&token)?).await? {
        // Always base64: what was deleted may not be UTF-8, and there is no second chance.
        Ok(sub) => Ok(Json(view::render(&sub, &fields, true, &state.languages())?)),
        Err(Some(status)) => {
            let description = Status::from_id(status).map_or("", Status::description);
            Err(ApiError::BadRequest(format!(
                "submission cannot be deleted because its status is {status} ({description})"
            )))
        }
        Err(None) => Err(ApiError::NotFound),
    }
}

/// Judge0's bounds on a batch: at least one submission, at most the configured size.
fn batch_size_allowed(n: usize, cfg: &crate::config::Judge0Config) -> Result<(), ApiError> {
    if n > cfg.max_submission_batch_size {
        return Err(ApiError::BadRequest(format!(
            "number of submissions in a batch should be less than or equal to {}",
            cfg.max_submission_batch_size
        )));
    }
    if n == 0 {
        return Err(ApiError::BadRequest("there should be at least one submission in a batch".into()));
    }
    Ok(())
}

/// `POST /submissions/batch`.
pub(crate) async fn create_batch(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let cfg = &state.config.judge0;
    if !cfg.enable_batched_submissions {
        return Err(ApiError::BadRequest("batched submissions are not allowed".into()));
    }
    let p = params(query.as_deref(), &headers, &body)?;
    let items = match p.get("submissions") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    // Judge0 checks the queue before the batch's size (an empty batch counts as one).
    not_in_maintenance(&state)?;
    queue_has_room(&state, items.len().max(1) as u64).await?;
    batch_size_allowed(items.len(), cfg)?;
    let base64 = p.is_true("base64_encoded");
    let languages = state.languages();
    let checked: Vec<Result<NewSubmission, Value>> = items
        .iter()
        .map(|item| {
            let mut ip = Params::default();
            match item {
                Value::Object(obj) => ip.0 = obj.clone(),
                _ => return Err(json!({"submission": ["must be an object"]})),
            }
            validate::new_submission(&ip, base64, cfg, &languages).map_err(|e| e.to_json())
        })
        .collect();
    let valid: Vec<NewSubmission> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    let mut tokens =
        if valid.is_empty() { Vec::new() } else { accept(&state, &valid, false).await?.0 }.into_iter();
    let answers: Vec<Value> = checked
        .into_iter()
        .map(|c| match c {
            Ok(_) => json!({ "token": tokens.next().map(|t| t.to_string()) }),
            Err(errors) => errors,
        })
        .collect();
    if valid.is_empty() {
        return Err(ApiError::InvalidBatch(Value::Array(answers)));
    }
    Ok((StatusCode::CREATED, Json(Value::Array(answers))).into_response())
}

/// The tokens of a batch GET, split as Judge0 splits them (Ruby's `split(",")`: empty entries
/// kept, trailing ones dropped).
fn batch_tokens(list: &str) -> Vec<String> {
    let mut names: Vec<String> = list.trim().split(',').map(|t| t.trim().to_owned()).collect();
    while names.last().is_some_and(String::is_empty) {
        names.pop();
    }
    names
}

/// `GET /submissions/batch?tokens=a,b,c` (or the tokens in a `tokens` header, as Judge0 allows).
pub(crate) async fn show_batch(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let cfg = &state.config.judge0;
    if !cfg.enable_batched_submissions {
        return Err(ApiError::BadRequest("batched submissions are not allowed".into()));
    }
    let p = Params::from_query(query.as_deref());
    let fields = view::parse_fields(p.string("fields").as_deref())?;
    let header = headers.get("tokens").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let names = batch_tokens(&header.or_else(|| p.string("tokens")).unwrap_or_default());
    batch_size_allowed(names.len(), cfg)?;
    let tokens: Vec<Option<Uuid>> = names.iter().map(|n| Uuid::parse_str(n).ok()).collect();
    let wanted: Vec<Uuid> = tokens.iter().flatten().copied().collect();
    let read = async {
        let found = db::get_many(&state.db, &wanted, &fields).await?;
        let in_order = tokens.iter().map(|t| t.and_then(|t| found.iter().find(|s| s.token == t)));
        let out = render_many(in_order, &fields, p.is_true("base64_encoded"), &state.languages())?;
        Ok(json!({ "submissions": out }))
    };
    state.bounds.answer(StatusCode::OK, read).await
}

/// `POST /submissions/:token/cancel`: a queued submission finishes at once as cancelled; a
/// running one is stopped by its worker.
pub(crate) async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let token = parse_token(&token)?;
    let p = Params::from_query(query.as_deref());
    let base64 = p.is_true("base64_encoded");
    match db::request_cancel(&state.db, token).await? {
        Some(1) => {
            if let Some(sub) = db::finish_cancelled(&state.db, token, true).await? {
                announce(&state, &sub, base64).await;
            }
        }
        Some(_) => state.redis.request_cancel(&token.to_string()).await?,
        None => {
            let status = db::status(&state.db, token).await?.ok_or(ApiError::NotFound)?;
            return Err(ApiError::BadRequest(format!(
                "submission cannot be cancelled because its status is {} ({})",
                status,
                Status::from_id(status).map_or("", Status::description)
            )));
        }
    }
    let sub = db::get(&state.db, token, &DEFAULT_FIELDS).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(view::render(&sub, &DEFAULT_FIELDS, base64, &state.languages())?))
}

/// Tells waiters and live listeners that `sub` is finished (used when the server itself
/// finishes one: a cancelled queued submission).
async fn announce(state: &AppState, sub: &Submission, base64: bool) {
    let token = sub.token.to_string();
    if let Ok(submission) = view::render(sub, &DEFAULT_FIELDS, base64, &state.languages()) {
        let _ =
            state.redis.publish(&Envelope { token: token.clone(), event: Event::Done { submission } }).await;
    }
    if let Err(error) = state.redis.announce_done(&token, sub.status_id).await {
        tracing::warn!(%error, token, "Could not announce a cancelled submission.");
    }
}
