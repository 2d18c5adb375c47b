//! Judge0's value formats: decimals as strings, millisecond UTC timestamps, MIME-style base64.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use time::OffsetDateTime;
use time::macros::format_description;

/// A decimal the way Judge0 (Rails' BigDecimal) prints it: `5.0`, `0.012`, `10.5`.
pub fn decimal(v: f64) -> String {
    let s = format!("{v}");
    if s.contains(['.', 'e', 'E']) || !v.is_finite() { s } else { format!("{s}.0") }
}

/// Seconds rounded to milliseconds, as isolate reports them.
pub fn round_ms(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

/// `2026-01-02T03:04:05.678Z`.
pub fn timestamp(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    utc.format(&fmt).unwrap_or_default()
}

/// Base64 in the MIME style Ruby's `Base64.encode64` writes: a newline after every 60
/// characters and one at the end.
pub fn base64_mime(bytes: &[u8]) -> String {
    let plain = STANDARD.encode(bytes);
    let mut out = String::with_capacity(plain.len() + plain.len() / 60 + 1);
    for chunk in plain.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Plain base64 (for live events).
pub fn base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes base64 leniently: whitespace (the MIME line breaks) ignored, padding optional.
/// `None` when it is not base64 at all.
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    LENIENT.decode(compact.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_look_like_rails_big_decimals() {
        assert_eq!(decimal(5.0), "5.0");
        assert_eq!(decimal(0.012), "0.012");
        assert_eq!(decimal(10.5), "10.5");
        assert_eq!(decimal(round_ms(0.0123456)), "0.012");
        assert_eq!(decimal(0.0), "0.0");
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.678901 +02:00);
        assert_eq!(timestamp(t), "2026-01-02T01:04:05.678Z");
    }

    #[test]
    fn base64_is_mime_style_out_and_lenient_in() {
        assert_eq!(base64_mime(b"hello\n"), "aGVsbG8K\n");
        let long = vec![b'a'; 100];
        let encoded = base64_mime(&long);
        let lines: Vec<&str> = encoded.split_terminator('\n').collect();
        assert_eq!(lines.iter().map(|l| l.len()).collect::<Vec<_>>(), vec![60, 60, 16]);
        assert!(encoded.ends_with('\n'));
        assert_eq!(unbase64(&encoded).unwrap(), long);
        assert_eq!(unbase64("aGVsbG8K").unwrap(), b"hello\n");
        assert_eq!(unbase64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(unbase64("not base64!"), None);
    }
}
