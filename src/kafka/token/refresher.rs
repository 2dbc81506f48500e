//! The background refresher: a new token at 75 % of the current one's life, backing off after failures.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::source::{TokenSource, now_ms};
use crate::retry::Policy;

/// Share of a token's lifetime after which the refresher fetches the next one.
pub(super) const REFRESH_AT: f64 = 0.75;
/// Delays between failed refreshes.
const BACKOFF: Policy = Policy::TOKEN_REFRESH;

impl TokenSource {
    /// Keeps the cache fresh while the source is in use (the task holds only a weak reference).
    pub(super) fn spawn_refresher(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                let backoff = BACKOFF.delay_before(failures.max(1)).unwrap_or(BACKOFF.cap);
                let wait = match weak.upgrade() {
                    Some(source) => source.next_refresh_in(backoff),
                    None => return,
                };
                tokio::time::sleep(wait).await;
                let Some(source) = weak.upgrade() else {
                    return;
                };
                match source.refresh().await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let backoff = BACKOFF.delay_before(failures).unwrap_or(BACKOFF.cap);
                        tracing::warn!(
                            error = %e,
                            retry_in_s = backoff.as_secs(),
                            "Refreshing the SASL/OAUTHBEARER token failed; the current token is used while it is valid."
                        );
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
