//! Callbacks: `PUT callback_url` with the finished submission (default fields, base64), as
//! Judge0 sends them. Tried again only when the connection itself failed.

use std::time::Duration;

use crate::db::Submission;
use crate::languages::Languages;
use crate::server::view;

/// Delivers the callback for `sub`; failures are logged, never retried past `max_tries`.
pub(crate) async fn send(
    http: &reqwest::Client,
    url: &str,
    sub: &Submission,
    languages: &Languages,
    max_tries: u32,
) {
    let Ok(body) = view::render(sub, &view::DEFAULT_FIELDS, true, languages) else { return };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let token = sub.token;
    for attempt in 1..=max_tries.max(1) {
        let sent = http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                tracing::debug!(%token, status = %response.status(), "Callback delivered.");
                return;
            }
            Err(error) if error.is_connect() && attempt < max_tries => {
                tracing::warn!(%error, %token, attempt, "Callback connection failed; trying again.");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(error) => {
                tracing::warn!(%error, %token, attempt, "Callback failed.");
                return;
            }
        }
    }
}
