//! The other spellings of a path that Judge0's router (Rails) sends to the same action, so
//! clients written against Judge0 reach ours: doubled and trailing slashes
//! (`/submissions/`, `//languages`) and a format suffix on the last segment
//! (`/languages.json`, `/submissions/<token>.json`, `/submissions/batch.json`). Rails routes
//! every format to the action, which answers JSON whatever was asked.

use axum::extract::Request;
use axum::http::Uri;
use axum::http::uri::PathAndQuery;

/// The plain form of `path`, when it is another: slashes squeezed, none at the end, and the
/// last segment's `.format` dropped (a segment of `name.format`, both parts without dots, as
/// Rails' `(.:format)`; `/` has no format).
pub(crate) fn plain(path: &str) -> Option<String> {
    let mut out = String::with_capacity(path.len() + 1);
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    let last = out.rfind('/').map_or(0, |i| i + 1);
    if let Some((name, format)) = out[last..].split_once('.')
        && !name.is_empty()
        && !format.is_empty()
        && !format.contains('.')
    {
        out.truncate(last + name.len());
    }
    (out != path).then_some(out)
}

/// Rewrites the request's path to its plain form before routing.
pub(crate) async fn rewrite(mut req: Request) -> Request {
    if let Some(path) = plain(req.uri().path()) {
        let with_query = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = PathAndQuery::try_from(with_query) {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rails_spellings_become_the_plain_path() {
        let token = "2d2ea9e4-3c53-4b8e-8d8b-7b8d47e1d6b5";
        let cases = [
            ("/submissions/", "/submissions"),
            ("/submissions//", "/submissions"),
            ("//languages", "/languages"),
            ("/languages.json", "/languages"),
            ("/languages/.json", "/languages/.json"),
            ("/languages/all.json", "/languages/all"),
            ("/languages/71.json/", "/languages/71"),
            ("/about/", "/about"),
            ("/submissions/batch.json", "/submissions/batch"),
            ("/a.b.c", "/a.b.c"),
            ("/a.", "/a."),
            ("/.json", "/.json"),
            ("//", "/"),
            ("", "/"),
        ];
        for (given, expected) in cases {
            assert_eq!(plain(given).as_deref().unwrap_or(given), expected, "{given}");
        }
        let show = format!("/submissions/{token}.json");
        assert_eq!(plain(&show), Some(format!("/submissions/{token}")));
        for unchanged in ["/", "/submissions", "/languages/71", "/submissions/batch"] {
            assert_eq!(plain(unchanged), None, "{unchanged}");
        }
    }
}
