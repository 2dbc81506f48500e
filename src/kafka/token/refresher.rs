//! The background refresher: a new token at 75 % of the current one's life, backing off after failures.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::source::{TokenSource, now_ms};

/// Share of a token's lifetime after which the refresher fetches the next one.
pub(super) const REFRESH_AT: f64 = 0.75;
/// Delays between failed refreshes.
pub(super) const RETRY_MIN: Duration = Duration::from_secs(1);
pub(super) const RETRY_MAX: Duration = Duration::from_secs(30);

impl TokenSource {
    /// Keeps the cache fresh while the source is in use (the task holds only a weak reference).
    pub(super) fn spawn_refresher(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = RETRY_MIN;
            loop {
                let wait = match weak.upgrade() {
                    Some(source) => source.next_refresh_in(backoff),
                    None => return,
                };
                tokio::time::sleep(wait).await;
                let Some(source) = weak.upgrade() else {
                    return;
                };
                match source.refresh().await {
                    Ok(()) => backoff = RETRY_MIN,
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            retry_in_s = backoff.as_secs(),
                            "Refreshing the SASL/OAUTHBEARER token failed; the current token is used while it is valid."
                        );
                        backoff = (backoff * 2).min(RETRY_MAX);
                    }
                }
            }
        });
    }

    /// How long until the next refresh: at [`REFRESH_AT`] of the current token's life, or `backoff` after a
    /// failure.
    pub(super) fn next_refresh_in(&self, backoff: Duration) -> Duration {
        let failing = self.last_error.lock().map_or(true, |e| e.is_some());
        let current = self.current.lock().ok().and_then(|c| c.clone());
        match current {
            Some(t) if !failing => {
                let life = (t.expires_at_ms - t.fetched_at_ms).max(0);
                #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
                let at = t.fetched_at_ms + (life as f64 * REFRESH_AT) as i64;
                Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))
            }
            _ => backoff,
        }
    }
}
