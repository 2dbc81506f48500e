//! Produce's rate line: at most one structured log line per [`INTERVAL`], and only when something happened,
//! with the records Kafka acknowledged, records/s, the flow messages handled and how many were rebounded. The
//! line is written by the first message that ends after the interval (a worker that sits idle writes none) and
//! at shutdown.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the line is written at most.
pub const INTERVAL: Duration = Duration::from_secs(30);

/// The counts of the current period.
#[derive(Debug)]
struct Period {
    since: Instant,
    records: u64,
    messages: u64,
    rebounds: u64,
}

impl Period {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            records: 0,
            messages: 0,
            rebounds: 0,
        }
    }
}

/// The action's counters (shared by concurrent executions).
#[derive(Debug)]
pub struct Rate {
    period: Mutex<Period>,
    every: Duration,
}

impl Default for Rate {
    fn default() -> Self {
        Self::every(INTERVAL)
    }
}

impl Rate {
    /// Counters whose line is due every `every`.
    pub fn every(every: Duration) -> Self {
        Self {
            period: Mutex::new(Period::new()),
            every,
        }
    }

    /// Kafka acknowledged `n` records.
    pub fn written(&self, n: usize) {
        if let Ok(mut p) = self.period.lock() {
            p.records += n as u64;
        }
    }

    /// A flow message was handled (`rebounded`: brought back for later); logs the line when it is due.
    pub fn handled(&self, rebounded: bool) {
        if let Ok(mut p) = self.period.lock() {
            p.messages += 1;
            p.rebounds += u64::from(rebounded);
            if p.since.elapsed() >= self.every {
                log(&mut p);
            }
        }
    }

    /// Logs what the period has so far (at shutdown).
    pub fn flush(&self) {
        if let Ok(mut p) = self.period.lock() {
            log(&mut p);
        }
    }
}

/// Logs the period if anything happened in it, and starts the next one. Returns whether it logged.
fn log(p: &mut Period) -> bool {
    let logged = p.messages > 0 || p.records > 0;
    if logged {
        let secs = p.since.elapsed().as_secs_f64().max(0.001);
        #[allow(clippy::cast_precision_loss)] // a count of records in one period
        let rate = p.records as f64 / secs;
        tracing::info!(
            records = p.records,
            records_per_sec = (rate * 10.0).round() / 10.0,
            messages = p.messages,
            rebounds = p.rebounds,
            seconds = secs.round(),
            "Produce progress."
        );
    }
    *p = Period::new();
    logged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_per_period_only_when_something_happened() {
        let rate = Rate::every(Duration::ZERO);
        let mut p = Period::new();
        assert!(!log(&mut p), "nothing happened: no line");
        rate.written(5);
        rate.handled(true);
        let p = rate.period.lock().unwrap();
        assert_eq!(
            (p.records, p.messages, p.rebounds),
            (0, 0, 0),
            "logged and reset"
        );
        drop(p);
        let slow = Rate::every(Duration::from_secs(3600));
        slow.written(3);
        slow.handled(false);
        assert_eq!(slow.period.lock().unwrap().records, 3, "not due yet");
        slow.flush();
        assert_eq!(slow.period.lock().unwrap().messages, 0, "flushed");
    }
}
