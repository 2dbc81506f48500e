//! Back-pressure of the member loop: when to stop taking records, when to pause the partitions, when to resume.

use tokio::time::Instant;

use super::PAUSE_AFTER;

/// Back-pressure: at the in-flight limit, stop taking records and wait for confirms; pause the partitions
/// only if that lasts [`PAUSE_AFTER`], then resume at half the limit. librdkafka drops a paused partition's
/// prefetched records and fetches them again after the resume, so pausing at every record past the limit
/// spent most of the time refetching.
#[derive(Debug, Default)]
pub(super) struct Flow {
    pub(super) paused: bool,
    full_since: Option<Instant>,
}

/// What the loop does next under back-pressure.
pub(super) struct FlowStep {
    /// Switch fetching to paused (`Some(true)`) or resumed (`Some(false)`).
    pub(super) set_paused: Option<bool>,
    /// Do not take records until `until` (waiting briefly at the limit).
    pub(super) waiting: bool,
    pub(super) until: Instant,
}

impl Flow {
    pub(super) fn step(&mut self, in_flight: usize, limit: usize) -> FlowStep {
        let at_limit = in_flight >= limit;
        if at_limit && self.full_since.is_none() {
            tracing::debug!(
                in_flight,
                "Back-pressure: in-flight limit reached; waiting for confirms."
            );
            self.full_since = Some(Instant::now());
        } else if !at_limit && !self.paused {
            self.full_since = None;
        }
        let pause = if self.paused {
            in_flight > limit / 2
        } else {
            at_limit && self.full_since.is_some_and(|t| t.elapsed() >= PAUSE_AFTER)
        };
        let set_paused = (pause != self.paused).then_some(pause);
        if set_paused.is_some() {
            self.paused = pause;
            if !pause {
                self.full_since = None;
            }
        }
        FlowStep {
            set_paused,
            waiting: at_limit && !self.paused,
            until: self
                .full_since
                .map_or_else(Instant::now, |t| t + PAUSE_AFTER),
        }
    }
}
