//! Where log lines go: standard output, in batches. Every request writes an access line; a
//! `write` system call each, under the lock of standard output that the proxy's threads then
//! queue on, was a measurable part of a request's cost. Lines are gathered in memory instead and
//! written by a background thread every [`FLUSH_INTERVAL`] (as nginx's `access_log ... buffer=
//! flush=` does). Warnings and errors are written at once, after what came before them; a thread
//! that finds the buffer full writes it itself, which bounds the memory held.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

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
