//! `GET /submissions/:token/events`: Server-Sent Events as a submission runs: its status, its
//! output as produced, and the final result.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::StreamExt;
use judge_wire::{Envelope, Event, OutputStream, Status};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use super::error::ApiError;
use super::params::Params;
use super::{AppState, view};
use crate::db::{self, Submission};
use crate::format;
use crate::queue::live_channel;

type Tx = mpsc::Sender<Result<SseEvent, Infallible>>;

/// How the client wants things shown.
#[derive(Debug, Clone)]
struct Shape {
    base64: bool,
    fields: Vec<&'static str>,
}

/// Opens the event stream.
pub(crate) async fn events(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let token = Uuid::parse_str(&token).map_err(|_| ApiError::NotFound)?;
    let p = Params::from_query(query.as_deref());
    let shape = Shape {
        base64: p.is_true("base64_encoded"),
        fields: view::parse_fields(p.string("fields").as_deref())?,
    };
    // Subscribe before reading the row, so nothing between the two is missed.
    let mut pubsub = state.redis.pubsub().await?;
    pubsub.subscribe(live_channel(&token.to_string())).await.map_err(crate::queue::QueueError::from)?;
    let sub = db::get(&state.db, token).await?.ok_or(ApiError::NotFound)?;
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(forward(state, sub, pubsub, tx, shape));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn status_event(status_id: i32) -> SseEvent {
    let status = Status::from_id(status_id).map(|s| json!({"id": s.id(), "description": s.description()}));
    SseEvent::default().event("status").data(status.unwrap_or_default().to_string())
}

async fn done_event(state: &AppState, sub: &Submission, shape: &Shape) -> SseEvent {
    let languages = state.languages();
    // Output that is not UTF-8 comes base64-encoded rather than not at all.
    let body = view::render(sub, &shape.fields, shape.base64, &languages)
        .or_else(|_| view::render(sub, &shape.fields, true, &languages))
        .unwrap_or_default();
    SseEvent::default().event("done").data(body.to_string())
}

/// Relays the submission's events to the client until it is finished or the client leaves.
async fn forward(state: Arc<AppState>, sub: Submission, pubsub: redis::aio::PubSub, tx: Tx, shape: Shape) {
    let token = sub.token;
    let _ = tx.send(Ok(status_event(sub.status_id))).await;
    if Status::from_id(sub.status_id).is_some_and(Status::is_final) {
        let _ = tx.send(Ok(done_event(&state, &sub, &shape).await)).await;
        return;
    }
    let mut messages = pubsub.into_on_message();
    loop {
        let msg = tokio::select! {
            msg = messages.next() => msg,
            _ = tx.closed() => return,
        };
        let Some(msg) = msg else {
            // Redis went away: resubscribe, then make sure we did not miss the end.
            match resubscribe(&state, token, &tx).await {
                Some(again) => {
                    messages = again.into_on_message();
                    if let Ok(Some(now)) = db::get(&state.db, token).await
                        && Status::from_id(now.status_id).is_some_and(Status::is_final)
                    {
                        let _ = tx.send(Ok(done_event(&state, &now, &shape).await)).await;
                        return;
                    }
                    continue;
                }
                None => return,
            }
        };
        let Ok(payload) = msg.get_payload::<String>() else { continue };
        let Ok(envelope) = serde_json::from_str::<Envelope>(&payload) else { continue };
        let event = match envelope.event {
            Event::Status { status } => status_event(status.id()),
            Event::Output { stream, data, run } => {
                let name = match stream {
                    OutputStream::Stdout => "stdout",
                    OutputStream::Stderr => "stderr",
                    OutputStream::Compile => "compile_output",
                };
                let bytes = format::unbase64(&data).unwrap_or_default();
                let shown = if shape.base64 { data } else { String::from_utf8_lossy(&bytes).into_owned() };
                SseEvent::default().event(name).data(json!({"run": run, "data": shown}).to_string())
            }
            Event::Done { .. } => {
                if let Ok(Some(now)) = db::get(&state.db, token).await {
                    let _ = tx.send(Ok(done_event(&state, &now, &shape).await)).await;
                }
                return;
            }
        };
        if tx.send(Ok(event)).await.is_err() {
            return;
        }
    }
}

async fn resubscribe(state: &AppState, token: Uuid, tx: &Tx) -> Option<redis::aio::PubSub> {
    let mut pause = Duration::from_millis(100);
    loop {
        if tx.is_closed() {
            return None;
        }
        if let Ok(mut pubsub) = state.redis.pubsub().await
            && pubsub.subscribe(live_channel(&token.to_string())).await.is_ok()
        {
            return Some(pubsub);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
