//! The platform's emit throttles (PROTOCOL.md 2.3): at most N data, error and snapshot messages per interval.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::settings;

/// At most `limit` events in any window of `interval` (the reference throttles, PROTOCOL.md 2.3).
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    interval: Duration,
    recent: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` events per `interval`.
    pub fn new(limit: u64, interval: Duration) -> Self {
        Self {
            limit: usize::try_from(limit.max(1)).unwrap_or(usize::MAX),
            interval,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until one more event fits in the window, then records it.
    pub async fn acquire(&self) {
        let mut recent = self.recent.lock().await;
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.interval)
        {
            recent.pop_front();
        }
        if recent.len() >= self.limit
            && let Some(oldest) = recent.pop_front()
        {
            // Holding the lock while sleeping keeps emits in order.
            tokio::time::sleep_until(oldest + self.interval).await;
        }
        recent.push_back(Instant::now());
    }
}

/// The three throttles of one process.
#[derive(Debug)]
pub struct Throttles {
    /// `data` messages.
    pub data: RateLimiter,
    /// `error` messages.
    pub error: RateLimiter,
    /// `snapshot` messages.
    pub snapshot: RateLimiter,
}

impl Throttles {
    /// The throttles the settings ask for.
    pub fn new(t: &settings::Throttles) -> Self {
        Self {
            data: RateLimiter::new(t.data, t.interval),
            error: RateLimiter::new(t.error, t.interval),
            snapshot: RateLimiter::new(t.snapshot, t.interval),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_events_by_the_interval() {
        let limiter = RateLimiter::new(2, Duration::from_millis(100));
        let t0 = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        limiter.acquire().await;
        assert!(t0.elapsed() >= Duration::from_millis(100));
        let limiter = RateLimiter::new(1, Duration::from_millis(110));
        let t1 = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert!(t1.elapsed() >= Duration::from_millis(110));
    }
}
