//! Where log lines go: standard output, in batches. Every request writes an access line; a
//! `write` system call each, under the lock of standard output that the proxy's threads then
//! queue on, was a measurable part of a request's cost. Lines are gathered in memory instead and
//! written by a background thread every [`FLUSH_INTERVAL`] (as nginx's `access_log ... buffer=
//! flush=` does). Warnings and errors are written at once, after what came before them; a thread
//! that finds the buffer full writes it itself, which bounds the memory held.
//!
//! Lines are logfmt ([`Logfmt`]): `2026-11-23T04:49:04.123456Z  INFO access: Request.
//! request_id=… status=200 …`, values quoted only where they need it, the time's date and
//! second worked out once a second.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// How long a line may wait in memory.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Buffered bytes past which the thread logging writes them out itself.
const LIMIT: usize = 512 * 1024;

/// The writer for `tracing_subscriber::fmt`: [`Self::start`] it once, keep a [`FlushOnDrop`]
/// for as long as the process runs.
#[derive(Debug, Clone)]
pub struct BatchedStdout {
    pending: Arc<Mutex<Vec<u8>>>,
}

/// Writes out what is buffered when dropped (at the end of `main`, on any path).
#[derive(Debug)]
pub struct FlushOnDrop(BatchedStdout);

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.0.flush();
    }
}

impl BatchedStdout {
    /// The writer, and the thread that flushes it every [`FLUSH_INTERVAL`].
    pub fn start() -> io::Result<(Self, FlushOnDrop)> {
        let writer = Self { pending: Arc::new(Mutex::new(Vec::with_capacity(64 * 1024))) };
        let flusher = writer.clone();
        std::thread::Builder::new().name("log flusher".into()).spawn(move || {
            loop {
                std::thread::sleep(FLUSH_INTERVAL);
                flusher.flush();
            }
        })?;
        Ok((writer.clone(), FlushOnDrop(writer)))
    }

    fn pending(&self) -> MutexGuard<'_, Vec<u8>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes out what is buffered, then `line` if given.
    fn write_out(&self, line: &[u8]) {
        // Standard output's lock is taken first and held while writing, so that batches leave
        // in the order they were made; the buffer's lock only while taking it.
        let mut out = io::stdout().lock();
        let batch = {
            let mut pending = self.pending();
            pending.extend_from_slice(line);
            std::mem::replace(&mut *pending, Vec::with_capacity(64 * 1024))
        };
        // Nowhere left to report a failure to write the log.
        let _ = out.write_all(&batch);
        let _ = out.flush();
    }

    /// Writes out what is buffered.
    pub fn flush(&self) {
        if !self.pending().is_empty() {
            self.write_out(&[]);
        }
    }
}

/// One log line on its way.
#[derive(Debug)]
pub struct Line<'a> {
    to: &'a BatchedStdout,
    urgent: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        if self.urgent {
            self.to.write_out(line);
            return Ok(line.len());
        }
        let full = {
            let mut pending = self.to.pending();
            pending.extend_from_slice(line);
            pending.len() >= LIMIT
        };
        if full {
            self.to.flush();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStdout {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line { to: self, urgent: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line { to: self, urgent: *meta.level() <= Level::WARN }
    }
}

/// The event formatter: one logfmt line per event (time, level, target, message, fields).
#[derive(Debug, Clone, Copy, Default)]
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut out: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write_time(&mut out, SystemTime::now())?;
        // Records of the `log` crate (pingora logs with it) arrive with target `log` and their
        // own target, module and place as `log.*` fields: shown under their own target.
        let mut target = LogTarget(None);
        if meta.target() == "log" {
            event.record(&mut target);
        }
        write!(out, " {:>5} {}:", meta.level(), target.0.as_deref().unwrap_or(meta.target()))?;
        let mut fields = Fields { out: &mut out, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        out.write_char('\n')
    }
}

/// Writes an event's fields: the message bare, the others `name=value`.
struct Fields<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        self.result = if field.name() == "message" {
            write!(self.out, " {value}")
        } else if !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=') {
            write!(self.out, " {}={value}", field.name())
        } else {
            write!(self.out, " {}={value:?}", field.name())
        };
    }
}

/// Finds a `log` record's own target.
struct LogTarget(Option<String>);

impl Visit for LogTarget {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "log.target" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_ok() && !field.name().starts_with("log.") {
            self.result = write!(self.out, " {}={value}", field.name());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.result.is_ok() {
            self.result = write!(self.out, " {}={value}", field.name());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.result.is_ok() {
            self.result = write!(self.out, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` and `?value` fields arrive here: formatted once, then quoted if need be.
        thread_local!(static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) });
        SCRATCH.with_borrow_mut(|text| {
            text.clear();
            if write!(text, "{value:?}").is_err() {
                text.clear();
                text.push_str("<unprintable>");
            }
            self.write(field, text);
        });
    }
}

/// Writes `t` as RFC 3339 UTC with microseconds; the part up to the second is kept per thread
/// and remade when the second changes.
fn write_time(out: &mut Writer<'_>, t: SystemTime) -> fmt::Result {
    thread_local!(static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) });
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            *cached = secs;
            text.clear();
            let (year, month, day) = civil_date(secs / 86_400);
            let rest = secs % 86_400;
            // Writing to a String cannot fail.
            let _ = write!(
                text,
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
                rest / 3600,
                rest / 60 % 60,
                rest % 60
            );
        }
        write!(out, "{text}.{:06}Z", since.subsec_micros())
    })
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_the_calendar_ones() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(59), (1970, 3, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(11_017), (2000, 3, 1));
        assert_eq!(civil_date(20_415), (2025, 11, 23));
        assert_eq!(civil_date(20_780), (2026, 11, 23));
        assert_eq!(civil_date(47_540), (2100, 2, 28));
        assert_eq!(civil_date(47_541), (2100, 3, 1));
    }

    /// The lines a subscriber with [`Logfmt`] writes for `log`.
    fn lines(log: impl FnOnce()) -> String {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber =
            tracing_subscriber::fmt().event_format(Logfmt).with_writer(move || Sink(sink.clone())).finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.lock().unwrap_or_else(PoisonError::into_inner).clone();
        String::from_utf8(bytes).unwrap_or_default()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_crate_records_show_their_own_target_and_no_log_fields() {
        let text = lines(|| {
            let _ = tracing_log::LogTracer::init();
            log::logger().log(
                &log::Record::builder()
                    .level(log::Level::Info)
                    .target("pingora_core::server")
                    .module_path(Some("pingora_core::server"))
                    .file(Some("server/mod.rs"))
                    .line(Some(754))
                    .args(format_args!("Starting service: gateway"))
                    .build(),
            );
        });
        let line = text.lines().next().unwrap_or_default();
        assert!(line.ends_with(" INFO pingora_core::server: Starting service: gateway"), "{line:?}");
    }

    #[test]
    fn events_are_logfmt_lines_quoted_where_needed() {
        let text = lines(|| {
            let id = String::from("abc-1");
            tracing::info!(target: "access", request_id = id.as_str(), status = 200u64, tries = 1usize,
                shown = %"two words", empty = "", eq = "a=b", neg = -3i64, ok = true, "Request.");
        });
        let line = text.strip_suffix('\n').unwrap_or_else(|| panic!("one line: {text:?}"));
        let (time, rest) = line.split_once(' ').unwrap_or_default();
        assert_eq!(time.len(), "2026-11-23T04:49:04.123456Z".len(), "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        assert_eq!(
            rest,
            " INFO access: Request. request_id=abc-1 status=200 tries=1 shown=\"two words\" empty=\"\" \
             eq=\"a=b\" neg=-3 ok=true"
        );
    }
}
