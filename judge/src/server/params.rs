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
        let mut params = Params::default();
        for (k, v) in form_pairs(query.unwrap_or("").as_bytes()) {
            params.insert_form(k, v);
        }
        params
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
                self.insert_form(k, v);
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

    /// One form pair. `name[][key]=value` builds an array of objects as Rails does (a batch sent
    /// as a form): a key already in the last object starts the next one.
    fn insert_form(&mut self, key: String, value: String) {
        let nested = key.split_once("[][").and_then(|(name, rest)| Some((name, rest.strip_suffix(']')?)));
        let Some((name, field)) =
            nested.filter(|(n, f)| !n.is_empty() && !f.is_empty() && !f.contains(['[', ']']))
        else {
            self.0.insert(key, Value::String(value));
            return;
        };
        let entry = self.0.entry(name.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
        if !entry.is_array() {
            *entry = Value::Array(Vec::new());
        }
        let Value::Array(items) = entry else { return };
        match items.last_mut() {
            Some(Value::Object(last)) if !last.contains_key(field) => {
                last.insert(field.to_owned(), Value::String(value));
            }
            _ => items.push(Value::Object(Map::from_iter([(field.to_owned(), Value::String(value))]))),
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

    /// Whether a flag is the string `true`: Judge0 enables `wait` and `base64_encoded` only for
    /// exactly that (not for `1`, `TRUE`, nor a JSON `true` in the body).
    pub fn is_true(&self, key: &str) -> bool {
        matches!(self.get(key), Some(Value::String(s)) if s == "true")
    }

    /// An integer as Ruby's `to_i` reads the parameter (Judge0's `page`, `per_page`): the
    /// leading integer of its text, 0 when there is none; `None` when absent.
    pub fn ruby_integer(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => Some(ruby_to_i(s).into()),
            _ => Some(0),
        }
    }
}

/// Ruby's `String#to_i`: leading whitespace, an optional sign, digits (underscores between
/// them allowed); anything else ends the number. `"12abc"` is 12, `"abc"` is 0. Saturates.
pub fn ruby_to_i(s: &str) -> i32 {
    let s = s.trim_start();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut value: i64 = 0;
    let mut previous_digit = false;
    for b in digits.bytes() {
        match b {
            b'0'..=b'9' => {
                value = (value * 10 + i64::from(b - b'0')).min(i64::from(i32::MAX) + 1);
                previous_digit = true;
            }
            b'_' if previous_digit => previous_digit = false,
            _ => break,
        }
    }
    let value = if negative { -value } else { value };
    value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
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
    fn forms_carry_arrays_of_objects_as_rails_reads_them() {
        let mut p = Params::default();
        p.merge_body(
            b"submissions[][language_id]=71&submissions[][source_code]=a&submissions[][language_id]=50&x[]=1&y[][]=2",
            Some("application/x-www-form-urlencoded"),
        )
        .unwrap();
        assert_eq!(
            p.get("submissions"),
            Some(&serde_json::json!([{"language_id": "71", "source_code": "a"}, {"language_id": "50"}]))
        );
        assert_eq!(p.string("x[]").as_deref(), Some("1"));
        assert_eq!(p.string("y[][]").as_deref(), Some("2"));
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
        assert!(p.is_true("b1") && !p.is_true("t") && !p.is_true("b3"));
    }

    #[test]
    fn integers_read_like_rubys_to_i() {
        for (text, value) in [
            ("71", 71),
            (" 71abc", 71),
            ("abc", 0),
            ("", 0),
            ("-2", -2),
            ("+3", 3),
            ("1_000", 1000),
            ("1__0", 1),
            ("4.9", 4),
            ("99999999999", i32::MAX),
        ] {
            assert_eq!(ruby_to_i(text), value, "{text:?}");
        }
        let p = Params::from_query(Some("page=abc&per_page=-1&n="));
        assert_eq!((p.ruby_integer("page"), p.ruby_integer("per_page")), (Some(0), Some(-1)));
        assert_eq!((p.ruby_integer("n"), p.ruby_integer("absent")), (Some(0), None));
    }

    #[test]
    fn percent_decoding_tolerates_junk() {
        assert_eq!(
            form_pairs(b"a=%zz&b=%4&c=100%25"),
            vec![("a".into(), "%zz".into()), ("b".into(), "%4".into()), ("c".into(), "100%".into())]
        );
    }
}
