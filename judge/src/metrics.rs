//! Prometheus metrics: counters and histograms kept in process, rendered as text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of latency buckets.
pub const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// A histogram from per-bucket counts (not cumulative; `counts[i]` holds observations in
    /// bucket `i` only), the total count and the sum.
    pub fn from_counts(counts: &[u64; BUCKETS.len()], count: u64, sum_seconds: f64) -> Self {
        let h = Histogram::default();
        let mut running = 0;
        for (cell, n) in h.counts.iter().zip(counts) {
            running += n;
            cell.store(running, Ordering::Relaxed);
        }
        h.count.store(count, Ordering::Relaxed);
        h.sum_micros.store((sum_seconds * 1e6) as u64, Ordering::Relaxed);
        h
    }

    /// Appends the histogram in Prometheus text format.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", count.load(Ordering::Relaxed));
        }
        let total = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {total}");
    }
}

/// Appends a gauge or counter line with its header.
pub fn render_value(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_cumulatively() {
        let h = Histogram::default();
        h.observe(0.003);
        h.observe(0.2);
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "test");
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(out.contains("x_seconds_bucket{le=\"0.25\"} 2\n"));
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(out.contains("x_seconds_count 2\n"));
    }
}
