//! `GET /submissions/:token/events`: Server-Sent Events as a submission runs: its status, its
//! output as produced, and the final result.
//!
//! A stream takes one of the server's `MAX_EVENT_STREAMS` places (503 when none is left) and
//! follows the submission through the server's one live subscription (`LiveHub`), whose
//! bounded buffer drops it when it falls behind: a client that never reads costs little, and
//! no stream costs Redis a connection.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use judge_wire::{Envelope, Event, OutputStream, Status};
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;

use super::answer::Rendered;
use super::error::ApiError;
use super::params::Params;
use super::{AppState, view};
use crate::db::{self, Submission};
use crate::events::{LiveMessage, LiveSubscription};
use crate::format;

/// How the client wants things shown.
#[derive(Debug, Clone)]
struct Shape {
    base64: bool,
    fields: Vec<&'static str>,
}

/// Where a stream is.
enum Phase {
    /// The status as first read, then the result or the live events.
    Start(Box<Submission>),
    /// Live events until the end.
    Follow,
    /// The result, then the end.
    Done,
    /// Nothing more.
    End,
}

/// One open stream.
struct Live {
    state: Arc<AppState>,
    token: Uuid,
    shape: Shape,
    subscription: LiveSubscription,
    phase: Phase,
    /// The stream's place among `MAX_EVENT_STREAMS`.
    _place: OwnedSemaphorePermit,
    /// The answer budget's share a large result holds until the stream ends.
    _share: Option<OwnedSemaphorePermit>,
}

/// Opens the event stream.
pub(crate) async fn events(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let token = Uuid::parse_str(&token).map_err(|_| ApiError::NotFound)?;
    let p = Params::from_query(query.as_deref());
    let shape = Shape {
        base64: p.is_true("base64_encoded"),
        fields: view::parse_fields(p.string("fields").as_deref())?,
    };
    let place = state
        .event_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Unavailable("too many event streams".into()))?;
    // Subscribe before reading the row, so nothing between the two is missed.
    let subscription = state.live.subscribe(&token.to_string()).await;
    let status = db::get(&state.db, token, &[]).await?.ok_or(ApiError::NotFound)?;
    let live = Live {
        state,
        token,
        shape,
        subscription,
        phase: Phase::Start(Box::new(status)),
        _place: place,
        _share: None,
    };
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        let event = live.next().await?;
        Some((Ok::<_, Infallible>(event), live))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

fn status_event(status_id: i32) -> SseEvent {
    let status = Status::from_id(status_id).map(|s| json!({"id": s.id(), "description": s.description()}));
    SseEvent::default().event("status").data(status.unwrap_or_default().to_string())
}

fn is_final(status_id: i32) -> bool {
    Status::from_id(status_id).is_some_and(Status::is_final)
}

impl Live {
    /// The stream's next event; `None` ends it.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            match std::mem::replace(&mut self.phase, Phase::End) {
                Phase::Start(sub) => {
                    self.phase = if is_final(sub.status_id) { Phase::Done } else { Phase::Follow };
                    return Some(status_event(sub.status_id));
                }
                Phase::Done => return self.done_event().await,
                Phase::End => return None,
                Phase::Follow => {
                    // `None`: dropped for falling behind. The client sees the stream end
                    // without a result, and can open another.
                    let message = self.subscription.next().await?;
                    self.phase = Phase::Follow;
                    let payload = match message {
                        LiveMessage::Gap => {
                            // Events may have been missed: the end among them?
                            match db::status(&self.state.db, self.token).await {
                                Ok(Some(status)) if is_final(status) => self.phase = Phase::Done,
                                _ => {}
                            }
                            continue;
                        }
                        LiveMessage::Event(payload) => payload,
                    };
                    let Ok(envelope) = serde_json::from_str::<Envelope>(&payload) else { continue };
                    match envelope.event {
                        Event::Status { status } => return Some(status_event(status.id())),
                        Event::Output { stream, data, run } => {
                            return Some(self.output_event(stream, data, run));
                        }
                        Event::Done { .. } => self.phase = Phase::Done,
                    }
                }
            }
        }
    }

    fn output_event(&self, stream: OutputStream, data: String, run: u32) -> SseEvent {
        let name = match stream {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
            OutputStream::Compile => "compile_output",
        };
        let shown = if self.shape.base64 {
            data
        } else {
            String::from_utf8_lossy(&format::unbase64(&data)).into_owned()
        };
        SseEvent::default().event(name).data(json!({"run": run, "data": shown}).to_string())
    }

    /// The result, read and rendered under the server's bounds; the stream ends after it.
    async fn done_event(&mut self) -> Option<SseEvent> {
        let (state, token, shape) = (self.state.clone(), self.token, self.shape.clone());
        let read = async move {
            let sub = db::get(&state.db, token, &shape.fields).await?.ok_or(ApiError::NotFound)?;
            let languages = state.languages();
            // Output that is not UTF-8 comes base64-encoded rather than not at all.
            Ok(view::render(&sub, &shape.fields, shape.base64, &languages)
                .or_else(|_| view::render(&sub, &shape.fields, true, &languages))
                .unwrap_or_default())
        };
        let Rendered { bytes, share } = self.state.bounds.render(read).await.ok()?;
        self._share = share;
        Some(SseEvent::default().event("done").data(String::from_utf8_lossy(&bytes)))
    }
}
