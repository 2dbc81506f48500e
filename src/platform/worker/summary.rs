//! What the worker logs about its executions at info level: one summary line per interval in which anything
//! happened, and one at shutdown, instead of lines per message. Per-message lines are at debug; a failed
//! execution still logs its own line (warn or error) where its outcome is applied.
//!
//! Two JSON lines per message were a fifth of a one-record Produce's instructions (README, Profile).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often the summary line is written (only when executions finished in the interval).
pub(super) const SUMMARY_INTERVAL: Duration = Duration::from_secs(30);

/// Counters of finished executions since the last summary line.
#[derive(Debug, Default)]
pub(super) struct Summary {
    processed: AtomicU64,
    rejected: AtomicU64,
    busy_us: AtomicU64,
    max_us: AtomicU64,
}

/// The counters taken (and reset) for one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) processed: u64,
    pub(super) rejected: u64,
    pub(super) busy_us: u64,
    pub(super) max_us: u64,
}

impl Summary {
    /// One finished execution (acked or rejected) that took `elapsed`.
    pub(super) fn record(&self, elapsed: Duration, rejected: bool) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.processed.fetch_add(1, Ordering::Relaxed);
        if rejected {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        self.busy_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// The counts since the previous call, resetting them. An execution finishing meanwhile may land in
    /// either line, never in none.
    pub(super) fn take(&self) -> Counts {
        Counts {
            processed: self.processed.swap(0, Ordering::Relaxed),
            rejected: self.rejected.swap(0, Ordering::Relaxed),
            busy_us: self.busy_us.swap(0, Ordering::Relaxed),
            max_us: self.max_us.swap(0, Ordering::Relaxed),
        }
    }

    /// Writes the line for the counts since the previous one, if any execution finished; `window` is the time
    /// they cover (for the rate).
    pub(super) fn log(&self, window: Duration) {
        let c = self.take();
        if c.processed == 0 {
            return;
        }
        #[allow(clippy::cast_precision_loss)] // counts and microseconds far below 2^52
        let (per_s, mean_ms) = (
            c.processed as f64 / window.as_secs_f64().max(0.001),
            c.busy_us as f64 / c.processed as f64 / 1000.0,
        );
        tracing::info!(
            processed = c.processed,
            rejected = c.rejected,
            per_s = (per_s * 10.0).round() / 10.0,
            mean_ms = (mean_ms * 100.0).round() / 100.0,
            max_ms = c.max_us / 1000,
            window_s = window.as_secs(),
            "Messages processed."
        );
    }

    /// Logs every `interval` until `stop` is cancelled, then once more for what finished since the last line.
    pub(super) async fn run(&self, interval: Duration, stop: CancellationToken) {
        let mut last = tokio::time::Instant::now();
        let mut tick = tokio::time::interval_at(last + interval, interval);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                now = tick.tick() => {
                    self.log(now - last);
                    last = now;
                }
            }
        }
        self.log(last.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_returns_the_counts_since_the_last_take_and_resets_them() {
        let s = Summary::default();
        s.record(Duration::from_millis(3), false);
        s.record(Duration::from_millis(9), true);
        s.record(Duration::from_micros(1500), false);
        assert_eq!(
            s.take(),
            Counts {
                processed: 3,
                rejected: 1,
                busy_us: 13_500,
                max_us: 9_000
            }
        );
        assert_eq!(s.take().processed, 0);
        assert_eq!(s.take().max_us, 0);
    }
}
