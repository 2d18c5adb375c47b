//! Request parameters as Judge0 (Rails) sees them: query and body merged (the body wins), the
//! body JSON or form-encoded, and values cast leniently (`"4"` is 4, `"true"` is true).

use serde_json::{Map, Value};

use super::error::ApiError;

/// Merged parameters of one request.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

/// Why a parameter's value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cast {
    /// Not a number.
    NotANumber,
}

impl Params {
    /// Parameters of a query string.
    pub fn from_query(query: Option<&str>) -> Self {
        let mut map = Map::new();
        for (k, v) in form_pairs(query.unwrap_or("").as_bytes()) {
            map.insert(k, Value::String(v));
        }
        Params(map)
    }

    /// Adds the body's parameters (JSON object, or form-encoded), replacing query values.
    pub fn merge_body(&mut self, body: &[u8], content_type: Option<&str>) -> Result<(), ApiError> {
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        let trimmed = body.iter().position(|b| !b.is_ascii_whitespace());
        let Some(start) = trimmed else { return Ok(()) };
        if ct.starts_with("application/x-www-form-urlencoded")
            || (!ct.contains("json") && body[start] != b'{')
        {
            for (k, v) in form_pairs(body) {
                self.0.insert(k, Value::String(v));
            }
            return Ok(());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => {
                self.0.extend(obj);
                Ok(())
            }
            Ok(_) => Err(ApiError::BadRequest("request body must be a JSON object".into())),
            Err(e) => Err(ApiError::BadRequest(format!("request body is not valid JSON: {e}"))),
        }
    }

    /// The raw value, treating JSON null as absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A string parameter; numbers and booleans are turned into their text. Empty is absent.
    pub fn string(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => Some(other.to_string()),
        }
    }

    /// A number; `Ok(None)` when absent or blank.
    pub fn number(&self, key: &str) -> Result<Option<f64>, Cast> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(Cast::NotANumber),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => {
                s.trim().parse::<f64>().ok().filter(|v| v.is_finite()).map(Some).ok_or(Cast::NotANumber)
            }
            Some(_) => Err(Cast::NotANumber),
        }
    }

    /// A boolean cast as Rails casts it: false, 0, "0", "f", "false", "off" (any case) are
    /// false, blank is absent, anything else is true.
    pub fn boolean(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => Some(n.as_f64() != Some(0.0)),
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) => {
                Some(!matches!(s.trim().to_ascii_lowercase().as_str(), "0" | "f" | "false" | "off"))
            }
            _ => Some(true),
        }
    }

    /// Whether a flag is the string (or boolean) `true`: Judge0 enables `wait` and
    /// `base64_encoded` only for exactly that.
    pub fn is_true(&self, key: &str) -> bool {
        match self.get(key) {
            Some(Value::String(s)) => s == "true",
            Some(Value::Bool(b)) => *b,
            _ => false,
        }
    }
}

/// `application/x-www-form-urlencoded` pairs, percent-decoded, `+` as space.
pub fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    bytes
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = decode(it.next().unwrap_or_default());
            let v = decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

fn decode(part: &[u8]) -> String {
    let mut out = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        match part[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < part.len() => {
                let hex = std::str::from_utf8(&part[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_body_merge_with_the_body_winning() {
        let mut p = Params::from_query(Some("a=1&b=x%20y&c=p+q"));
        p.merge_body(br#"{"a": 2, "d": null}"#, Some("application/json")).unwrap();
        assert_eq!(p.number("a"), Ok(Some(2.0)));
        assert_eq!(p.string("b").as_deref(), Some("x y"));
        assert_eq!(p.string("c").as_deref(), Some("p q"));
        assert_eq!(p.get("d"), None);
        let mut f = Params::default();
        f.merge_body(
            b"language_id=71&source_code=print%28%22hi%22%29",
            Some("application/x-www-form-urlencoded"),
        )
        .unwrap();
        assert_eq!(f.string("source_code").as_deref(), Some("print(\"hi\")"));
        assert_eq!(f.number("language_id"), Ok(Some(71.0)));
        assert!(Params::default().merge_body(b"[1]", Some("application/json")).is_err());
        assert!(Params::default().merge_body(b"{", Some("application/json")).is_err());
    }

    #[test]
    fn values_cast_like_rails() {
        let mut p = Params::default();
        p.merge_body(
            br#"{"n":"4","f":" 2.5 ","x":"abc","b1":"true","b2":"0","b3":"yes","b4":"","t":true}"#,
            None,
        )
        .unwrap();
        assert_eq!(p.number("n"), Ok(Some(4.0)));
        assert_eq!(p.number("f"), Ok(Some(2.5)));
        assert_eq!(p.number("x"), Err(Cast::NotANumber));
        assert_eq!(p.number("b4"), Ok(None));
        assert_eq!(p.boolean("b1"), Some(true));
        assert_eq!(p.boolean("b2"), Some(false));
        assert_eq!(p.boolean("b3"), Some(true));
        assert_eq!(p.boolean("b4"), None);
        assert!(p.is_true("b1") && p.is_true("t") && !p.is_true("b3"));
    }

    #[test]
    fn percent_decoding_tolerates_junk() {
        assert_eq!(
            form_pairs(b"a=%zz&b=%4&c=100%25"),
            vec![("a".into(), "%zz".into()), ("b".into(), "%4".into()), ("c".into(), "100%".into())]
        );
    }
}
