//! `X-Auth-Token` (authentication, every API route) and `X-Auth-User` (authorization, listing
//! and deleting). Tokens come in the header or as a query parameter of the same name; each
//! setting may list several tokens separated by spaces; comparison is constant-time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::params::form_pairs;

/// The value of `name`, from the header or else the query string.
fn credential(headers: &HeaderMap, query: Option<&str>, name: &str) -> Option<String> {
    if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
        return Some(v.to_owned());
    }
    form_pairs(query.unwrap_or("").as_bytes()).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn matches(configured: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    // No short-circuit: every configured token is compared.
    configured
        .split_whitespace()
        .fold(false, |found, token| found | bool::from(token.as_bytes().ct_eq(given.as_bytes())))
}

/// Whether the request carries a valid `X-Auth-Token` (always, when none is configured).
pub(crate) fn authenticated(state: &AppState, headers: &HeaderMap, query: Option<&str>) -> bool {
    let configured = &state.config.authn_token;
    configured.trim().is_empty() || matches(configured, credential(headers, query, "X-Auth-Token").as_deref())
}

/// Whether the request carries a valid `X-Auth-User` (never, when none is configured).
pub(crate) fn authorized(state: &AppState, headers: &HeaderMap, query: Option<&str>) -> bool {
    let configured = &state.config.authz_token;
    !configured.trim().is_empty() && matches(configured, credential(headers, query, "X-Auth-User").as_deref())
}

/// Refuses unauthenticated requests with 401 and an empty body.
pub(crate) async fn authenticate_layer(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if authenticated(&state, req.headers(), req.uri().query()) {
        next.run(req).await
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

/// `POST /authenticate`: 200 when the token is good (the layer has already checked).
pub(crate) async fn authenticate() -> StatusCode {
    StatusCode::OK
}

/// `POST /authorize`: 200 when `X-Auth-User` is good, 403 otherwise.
pub(crate) async fn authorize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> StatusCode {
    if authorized(&state, &headers, query.as_deref()) { StatusCode::OK } else { StatusCode::FORBIDDEN }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_of_several_tokens_matches() {
        assert!(matches("a b c", Some("b")));
        assert!(!matches("a b c", Some("d")));
        assert!(!matches("a", None));
        assert!(!matches("abc", Some("ab")));
    }

    #[test]
    fn credentials_come_from_the_header_or_the_query() {
        let mut h = HeaderMap::new();
        assert_eq!(credential(&h, Some("X-Auth-Token=q&x=1"), "X-Auth-Token").as_deref(), Some("q"));
        h.insert("x-auth-token", "h".parse().unwrap());
        assert_eq!(credential(&h, Some("X-Auth-Token=q"), "X-Auth-Token").as_deref(), Some("h"));
    }
}
