//! Cross-origin requests, answered as Judge0 1.13.1 answers them: its `Rack::Cors` (rack-cors
//! 1.1.1) sits first in its middleware stack, before routing and authentication, with one rule:
//! any path, any header, any method, from the origins `ALLOW_ORIGIN` and `DISALLOW_ORIGIN`
//! leave (every origin when both are empty). Without this no page on another origin (Judge0's
//! IDE, its dummy client) can call the API: a browser sends `X-Auth-Token` or a JSON body only
//! after a preflight `OPTIONS` that names them has been answered.
//!
//! What rack-cors does, and so what this does:
//! - a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) never reaches the
//!   API: 200, empty, with the CORS headers when the origin and method are allowed, without
//!   them otherwise;
//! - any other request from an allowed origin gets `Access-Control-Allow-Origin` (and the
//!   methods, an empty expose list and the max age) on whatever the API answers, 401 included;
//! - every answer but a preflight says `Vary: Origin`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// rack-cors' `methods: :any`, in its order.
const METHODS: [&str; 7] = ["get", "head", "post", "put", "patch", "delete", "options"];
/// The same, as rack-cors writes them in `Access-Control-Allow-Methods`.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
/// rack-cors' default `max_age` (s).
const MAX_AGE: &str = "7200";
/// Where rack-cors also looks for the origin when `Origin` is missing.
const X_ORIGIN: HeaderName = HeaderName::from_static("x-origin");

/// One entry of the origins the rule allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origins {
    /// Judge0 turns `DISALLOW_ORIGIN` into one regular expression matching the origins that
    /// contain none of its entries anywhere. It escapes only the dots, so an entry's other
    /// characters would be pattern syntax; host names and ports have none, and the entries are
    /// matched here as the plain text they are.
    ContainingNone(Vec<Vec<u8>>),
    /// An entry starting with `http://` or `https://`, or exactly `file://`: that origin only.
    Exactly(Vec<u8>),
    /// A bare entry (`judge0.com`): that host under any scheme, nothing after it (no port).
    Host(Vec<u8>),
}

impl Origins {
    fn allows(&self, origin: &[u8]) -> bool {
        match self {
            Origins::ContainingNone(refused) => {
                !refused.iter().any(|r| origin.windows(r.len().max(1)).any(|w| w == r.as_slice()))
            }
            Origins::Exactly(o) => origin == o.as_slice(),
            Origins::Host(host) => {
                // `^[a-z][a-z0-9.+-]*://HOST$`
                let Some(at) = origin.windows(3).position(|w| w == b"://") else { return false };
                let (scheme, rest) = (&origin[..at], &origin[at + 3..]);
                scheme.first().is_some_and(u8::is_ascii_lowercase)
                    && scheme
                        .iter()
                        .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b".+-".contains(&c))
                    && rest == host.as_slice()
            }
        }
    }
}

/// The CORS rule, built once from `ALLOW_ORIGIN` and `DISALLOW_ORIGIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `*` is among the origins: every origin is allowed and answered with `*`.
    public: bool,
    origins: Vec<Origins>,
}

impl Cors {
    /// The rule Judge0 builds from its two settings (space-separated lists). Entries of
    /// `DISALLOW_ORIGIN` that `ALLOW_ORIGIN` also lists are not refused; with both set, an
    /// origin passes when either lets it (Judge0 calls them mutually exclusive and keeps that).
    pub fn new(allow_origin: &str, disallow_origin: &str) -> Self {
        let allowed: Vec<&str> = allow_origin.split_whitespace().collect();
        let refused: Vec<Vec<u8>> = disallow_origin
            .split_whitespace()
            .filter(|d| !allowed.contains(d))
            .map(|d| d.as_bytes().to_vec())
            .collect();
        let mut origins = Vec::new();
        if !refused.is_empty() {
            origins.push(Origins::ContainingNone(refused));
        }
        let entries = if allowed.is_empty() && origins.is_empty() { vec!["*"] } else { allowed };
        let mut public = false;
        for entry in entries {
            if entry == "*" {
                public = true;
            } else if entry.starts_with("http://") || entry.starts_with("https://") || entry == "file://" {
                origins.push(Origins::Exactly(entry.as_bytes().to_vec()));
            } else {
                origins.push(Origins::Host(entry.as_bytes().to_vec()));
            }
        }
        Cors { public, origins }
    }

    /// Whether a page of `origin` may read the API's answers.
    pub fn allows(&self, origin: &[u8]) -> bool {
        self.public || self.origins.iter().any(|o| o.allows(origin))
    }

    /// The headers every allowed cross-origin answer carries.
    fn headers(&self, origin: &HeaderValue) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(5);
        let allowed = if self.public { HeaderValue::from_static("*") } else { origin.clone() };
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        h.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(""));
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        h
    }

    /// The headers of a preflight's answer: none when the origin or the method is not allowed;
    /// the requested headers, whatever they are, are allowed by echoing them.
    pub fn preflight(&self, origin: &HeaderValue, request: &HeaderMap) -> HeaderMap {
        let method_allowed = request.get(ACCESS_CONTROL_REQUEST_METHOD).is_some_and(|m| {
            METHODS.iter().any(|allowed| m.as_bytes().eq_ignore_ascii_case(allowed.as_bytes()))
        });
        if !self.allows(origin.as_bytes()) || !method_allowed {
            return HeaderMap::new();
        }
        let mut h = self.headers(origin);
        if let Some(asked) = request.get(ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        h
    }
}

/// The middleware around the whole API (routing included, so that a preflight for any path is
/// answered and no answer escapes the headers).
pub(crate) async fn layer(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let origin = headers.get(ORIGIN).or_else(|| headers.get(X_ORIGIN)).cloned();
    let mut added = None;
    if let Some(origin) = &origin {
        if req.method() == Method::OPTIONS && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
            if has_nul(req.uri().path()) {
                return StatusCode::BAD_REQUEST.into_response();
            }
            return (StatusCode::OK, cors.preflight(origin, headers)).into_response();
        }
        added = cors.allows(origin.as_bytes()).then(|| cors.headers(origin));
    }
    let mut response = next.run(req).await;
    let out = response.headers_mut();
    for (name, value) in added.into_iter().flatten() {
        if let Some(name) = name {
            // The API's own header of that name, were there one, would win.
            out.entry(name).or_insert(value);
        }
    }
    vary_on_origin(out);
    response
}

/// Adds `Origin` to `Vary`, keeping what is there (rack-cors writes one header, the listed
/// names without repeats).
fn vary_on_origin(headers: &mut HeaderMap) {
    let mut names: Vec<String> = Vec::new();
    for value in headers.get_all(VARY) {
        for name in String::from_utf8_lossy(value.as_bytes()).split(',').map(str::trim) {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    if !names.iter().any(|n| n == "Origin") {
        names.push("Origin".to_owned());
    }
    if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
        headers.insert(VARY, value);
    }
}

/// Whether the percent-decoded path holds a NUL byte, which rack-cors answers (for a
/// preflight) with 400.
fn has_nul(path: &str) -> bool {
    let b = path.as_bytes();
    b.contains(&0) || b.windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(cors: &Cors, origin: &str) -> bool {
        cors.allows(origin.as_bytes())
    }

    #[test]
    fn without_settings_every_origin_is_allowed_and_answered_with_a_star() {
        let cors = Cors::new("", "");
        assert!(cors.public);
        assert!(allows(&cors, "https://ide.judge0.com") && allows(&cors, "null") && allows(&cors, ""));
        let h = cors.headers(&HeaderValue::from_static("http://a.example"));
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[test]
    fn allow_origin_names_hosts_under_any_scheme_or_exact_origins() {
        let cors = Cors::new("judge0.com  https://ide.example:8443", "");
        assert!(!cors.public);
        assert!(allows(&cors, "https://judge0.com") && allows(&cors, "http://judge0.com"));
        assert!(allows(&cors, "chrome-extension://judge0.com"));
        assert!(!allows(&cors, "https://judge0.com:8443"), "a host entry has no port");
        assert!(!allows(&cors, "https://www.judge0.com") && !allows(&cors, "https://judge0.com.evil"));
        assert!(!allows(&cors, "HTTPS://judge0.com") && !allows(&cors, "judge0.com"));
        assert!(allows(&cors, "https://ide.example:8443") && !allows(&cors, "http://ide.example:8443"));
        let origin = HeaderValue::from_static("https://judge0.com");
        assert_eq!(cors.headers(&origin)[ACCESS_CONTROL_ALLOW_ORIGIN], "https://judge0.com");
        assert!(Cors::new("a.example *", "").public);
    }

    #[test]
    fn disallow_origin_refuses_origins_containing_an_entry() {
        let cors = Cors::new("", "evil.example bad.test");
        assert!(!cors.public);
        assert!(!allows(&cors, "https://evil.example") && !allows(&cors, "http://x.evil.example:81"));
        assert!(!allows(&cors, "http://bad.test"));
        assert!(allows(&cors, "https://good.example") && allows(&cors, "http://evilxexample"));
        // An entry in both lists is not refused; with both set, either lets an origin pass.
        let both = Cors::new("evil.example", "evil.example bad.test");
        assert!(allows(&both, "https://evil.example") && allows(&both, "https://other.example"));
        assert!(!allows(&both, "https://bad.test"));
        let same = Cors::new("evil.example", "evil.example");
        assert!(allows(&same, "https://evil.example") && !allows(&same, "https://other.example"));
    }

    #[test]
    fn preflights_allow_any_header_and_the_usual_methods() {
        let cors = Cors::new("", "");
        let origin = HeaderValue::from_static("http://page.example");
        let mut request = HeaderMap::new();
        request.insert(ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("post"));
        request
            .insert(ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_static("x-auth-token, content-type"));
        let h = cors.preflight(&origin, &request);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "x-auth-token, content-type");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], ALLOW_METHODS);
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], MAX_AGE);
        assert_eq!(h[ACCESS_CONTROL_EXPOSE_HEADERS], "");
        request.insert(ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("TRACE"));
        assert!(cors.preflight(&origin, &request).is_empty());
        let narrow = Cors::new("other.example", "");
        request.insert(ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("GET"));
        assert!(narrow.preflight(&origin, &request).is_empty());
    }

    #[test]
    fn vary_gains_origin_once() {
        let mut h = HeaderMap::new();
        vary_on_origin(&mut h);
        assert_eq!(h[VARY], "Origin");
        vary_on_origin(&mut h);
        assert_eq!(h[VARY], "Origin");
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding,Accept"));
        vary_on_origin(&mut h);
        assert_eq!(h[VARY], "Accept-Encoding, Accept, Origin");
    }

    #[test]
    fn a_nul_in_the_path_is_found_encoded_or_not() {
        assert!(has_nul("/submissions%00") && !has_nul("/submissions%0A") && !has_nul("/languages"));
    }
}
