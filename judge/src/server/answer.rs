//! Answers that show submissions, under bounds on what they may cost the server.
//!
//! A submission can be large (source, stdin and expected output up to the request body limit,
//! output up to `max_file_size` per stream), and a read holds it twice while rendering (the
//! row, then the JSON). So at most `MAX_CONCURRENT_READS` reads fetch and render at once, and
//! a large answer (over [`LARGE_ANSWER`]) is sent only while the answer budget
//! (`ANSWER_BUDGET_MB`) has room for it, holding its share until it is sent. A read that
//! cannot get either within [`WAIT`] is refused with 503, never queued without end.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Answers up to this size are sent without taking from the budget.
pub const LARGE_ANSWER: usize = 1 << 20;
/// Longest a read waits for its turn or for room in the budget.
pub const WAIT: Duration = Duration::from_secs(30);

/// The server's bounds on reads of submissions.
#[derive(Debug)]
pub struct Bounds {
    reads: std::sync::Arc<Semaphore>,
    /// KiB of large answers being sent.
    budget: std::sync::Arc<Semaphore>,
    budget_kib: u32,
}

fn busy() -> ApiError {
    ApiError::Unavailable("server is busy, try again later".into())
}

impl Bounds {
    /// `reads` reads at once, `budget_mb` MiB of large answers in flight.
    pub fn new(reads: usize, budget_mb: u32) -> Self {
        let budget_kib = budget_mb.saturating_mul(1024).max(1);
        Self {
            reads: std::sync::Arc::new(Semaphore::new(reads.max(1))),
            budget: std::sync::Arc::new(Semaphore::new(budget_kib as usize)),
            budget_kib,
        }
    }

    /// Runs `read` (fetching submissions and rendering them) in its turn, and answers with
    /// what it made.
    pub async fn answer(
        &self,
        status: StatusCode,
        read: impl Future<Output = Result<Value, ApiError>>,
    ) -> Result<Response, ApiError> {
        Ok(self.render(read).await?.into_response(status))
    }

    /// Runs `read` in its turn and serializes what it made, with the budget's share for a
    /// large result (to keep until it is sent).
    pub async fn render(
        &self,
        read: impl Future<Output = Result<Value, ApiError>>,
    ) -> Result<Rendered, ApiError> {
        let rendered = self.try_render(async { read.await.map(Some) }).await?;
        rendered.ok_or_else(|| ApiError::Internal("a read made nothing".into()))
    }

    /// [`Bounds::render`] for a read that may find nothing to show yet (`None`).
    pub async fn try_render(
        &self,
        read: impl Future<Output = Result<Option<Value>, ApiError>>,
    ) -> Result<Option<Rendered>, ApiError> {
        let turn = tokio::time::timeout(WAIT, self.reads.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let Some(value) = read.await? else { return Ok(None) };
        let bytes = serde_json::to_vec(&value).map_err(|e| ApiError::Internal(e.to_string()))?;
        drop(value);
        let share = if bytes.len() > LARGE_ANSWER {
            // An answer larger than the whole budget goes alone.
            let kib = u32::try_from(bytes.len().div_ceil(1024)).unwrap_or(u32::MAX).min(self.budget_kib);
            let share = tokio::time::timeout(WAIT, self.budget.clone().acquire_many_owned(kib))
                .await
                .map_err(|_| busy())?
                .map_err(|_| busy())?;
            Some(share)
        } else {
            None
        };
        drop(turn);
        Ok(Some(Rendered { bytes: Bytes::from(bytes), share }))
    }
}

/// A serialized answer and the budget's share it holds.
#[derive(Debug)]
pub struct Rendered {
    /// The JSON.
    pub bytes: Bytes,
    /// Held until the answer is sent (large answers only).
    pub share: Option<OwnedSemaphorePermit>,
}

impl Rendered {
    /// The answer: JSON, its body keeping the budget's share until it has been sent (or the
    /// client is gone).
    pub fn into_response(self, status: StatusCode) -> Response {
        let Rendered { bytes, share } = self;
        let length = HeaderValue::from(bytes.len());
        let body = match share {
            None => Body::from(bytes),
            Some(share) => {
                enum Step {
                    Send(Bytes, OwnedSemaphorePermit),
                    /// Holds the share (dropped with the step) until the connection asks again.
                    Hold(#[allow(dead_code)] OwnedSemaphorePermit),
                }
                // The connection asks for the next chunk once it has taken the first: then the
                // share goes.
                let chunks =
                    futures_util::stream::unfold(Some(Step::Send(bytes, share)), |step| async move {
                        match step? {
                            Step::Send(bytes, share) => {
                                Some((Ok::<_, Infallible>(bytes), Some(Step::Hold(share))))
                            }
                            Step::Hold(_) => None,
                        }
                    });
                Body::from_stream(chunks)
            }
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CONTENT_LENGTH, length);
        response
    }
}
