//! Judge0's value formats: decimals as strings, millisecond UTC timestamps, MIME-style base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
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

/// The value of a base64 character, `None` for anything outside the alphabet.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes base64 exactly as Ruby's `Base64.decode64` (`unpack1("m")`), which Judge0 applies
/// to every base64 input: clients that worked against Judge0 send what it took, so nothing
/// is refused. Characters outside the alphabet are skipped (line breaks, spaces, anything);
/// padding is optional; a `=` where the third or fourth character of a group belongs ends the
/// input (one before that is skipped like any other stranger); a group cut short still yields
/// its whole bytes, and leftover bits are dropped.
pub fn unbase64(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut group = [0u8; 4];
    let mut held = 0;
    for &c in text.as_bytes() {
        match sextet(c) {
            Some(v) => {
                group[held] = v;
                held += 1;
                if held == 4 {
                    out.extend_from_slice(&[
                        group[0] << 2 | group[1] >> 4,
                        group[1] << 4 | group[2] >> 2,
                        group[2] << 6 | group[3],
                    ]);
                    held = 0;
                }
            }
            None if c == b'=' && held >= 2 => break,
            None => {}
        }
    }
    match held {
        2 => out.push(group[0] << 2 | group[1] >> 4),
        3 => out.extend_from_slice(&[group[0] << 2 | group[1] >> 4, group[1] << 4 | group[2] >> 2]),
        _ => {}
    }
    out
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
        assert_eq!(unbase64(&encoded), long);
        assert_eq!(unbase64("aGVsbG8K"), b"hello\n");
    }

    /// What Ruby 2.7 (Judge0 1.13.1's) answers for `Base64.decode64(input)`.
    #[test]
    fn base64_input_is_decoded_as_ruby_does() {
        let cases: &[(&str, &[u8])] = &[
            ("aGVsbG8=", b"hello"),
            ("aGVsbG8", b"hello"),
            ("aGVsbA==", b"hell"),
            ("aGVsbA", b"hell"),
            ("aGVsbA=", b"hell"),
            ("aGVs\nbG8K\r\n", b"hello\n"),
            (" a G V s b G 8 K ", b"hello\n"),
            // Strangers are skipped wherever they are, also inside a group.
            ("aG*Vs!bG8K", b"hello\n"),
            ("aGVsbG8K\u{e9}", b"hello\n"),
            ("not base64!", b"\x9e\x8b[j\xc7\xba"),
            ("@@@", b""),
            ("", b""),
            ("====", b""),
            // `=` as a group's first or second character is skipped...
            ("=aGVs", b"hel"),
            ("a=GVs", b"hel"),
            ("aGVs=bG8K", b"hello\n"),
            // ...as its third or fourth, it ends the input.
            ("YQ==YWJj", b"a"),
            ("YWI=YWJj", b"ab"),
            ("aGVsbG8=IQ==", b"hello"),
            // A lone last character yields nothing; leftover bits are dropped.
            ("aGVsbG8Ka", b"hello\n"),
            ("YR", b"a"),
            ("YWJ", b"ab"),
            ("-_-_", b""),
        ];
        for (input, expected) in cases {
            assert_eq!(unbase64(input), *expected, "Base64.decode64({input:?})");
        }
        let every_byte: Vec<u8> = (0..=255).collect();
        assert_eq!(unbase64(&base64_mime(&every_byte)), every_byte);
        assert_eq!(unbase64(&base64(&every_byte[..254])), &every_byte[..254]);
    }
}
