//! The backoff policies every retry of the worker uses, and the one loop that applies them.
//!
//! Owns the numbers (attempts, first delay, growth, cap) of each named [`Policy`] and the retry loop
//! ([`Policy::retry`], [`Policy::retry_after`]). Does not own what is retried, which errors are worth a retry
//! (the caller answers [`Attempt::Retry`] or [`Attempt::Stop`]) nor the error reported when the attempts run out.
//!
//! Conventions shared by every policy: attempts are counted from 0; a delay is slept only *between* two
//! attempts (never after the last one); `retries` is the number of attempts after the first (`None` = no limit).
//!
//! We do not use the `backon` crate (already in the tree through lapin): one of today's policies grows linearly,
//! the publish retry needs the attempt number inside the operation (the `retry` header) and callers need the
//! number of attempts made for their errors. With backon each of these is a custom builder or a captured
//! counter; the loop below is short and lets the policies be `const`.

use std::future::Future;
use std::time::Duration;

/// How the delay grows from one retry to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    /// Always the first delay.
    Constant,
    /// `initial · n` before the n-th retry (n = 1, 2, …).
    Linear,
    /// `initial · factor^(n-1)` before the n-th retry.
    Exponential(u32),
}

/// A named backoff policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Shown in logs.
    pub name: &'static str,
    /// Attempts after the first; `None` retries until success.
    pub retries: Option<u64>,
    /// Delay before the first retry.
    pub initial: Duration,
    /// How the delay grows.
    pub growth: Growth,
    /// Upper bound of any delay.
    pub cap: Duration,
}

impl Policy {
    /// Opening an AMQP connection (PROTOCOL.md 2.5): `1 + AMQP_RECONNECT_ATTEMPTS` tries (default 3 → 4),
    /// `AMQP_RECONNECT_TIMEOUT` apart (default 100 ms). Override with [`Policy::with_retries`] /
    /// [`Policy::with_initial`] from the settings.
    pub const AMQP_CONNECT: Self = Self {
        name: "amqp connect",
        retries: Some(3),
        initial: Duration::from_millis(100),
        growth: Growth::Constant,
        cap: Duration::MAX,
    };

    /// Re-opening the consumer after the broker closed it: 21 attempts, `min(200 ms · n, 3 s)` before the n-th
    /// retry, about 40 s in all: long enough to ride out a RabbitMQ restart on a loaded node (10 s was not, in
    /// the fault suite); after that the worker exits 1 and the platform restarts it.
    pub const AMQP_CONSUMER_RECONNECT: Self = Self {
        name: "amqp consumer reconnect",
        retries: Some(20),
        initial: Duration::from_millis(200),
        growth: Growth::Linear,
        cap: Duration::from_secs(3),
    };

    /// A publish that was nacked or failed (PROTOCOL.md 2.3): `min(AMQP_PUBLISH_RETRY_DELAY · 2^i,
    /// AMQP_PUBLISH_MAX_RETRY_DELAY)` (100 ms, 5 min), `AMQP_PUBLISH_RETRY_ATTEMPTS` retries (unlimited).
    pub const AMQP_PUBLISH: Self = Self {
        name: "amqp publish",
        retries: None,
        initial: Duration::from_millis(100),
        growth: Growth::Exponential(2),
        cap: Duration::from_secs(300),
    };

    /// Step and account calls of the platform API: 3 attempts 1 s apart (the reference client ignores the
    /// `API_REQUEST_RETRY_*` settings here).
    pub const PLATFORM_API: Self = Self {
        name: "platform api",
        retries: Some(2),
        initial: Duration::from_secs(1),
        growth: Growth::Constant,
        cap: Duration::MAX,
    };

    /// Startup-hook calls of the platform API: `API_REQUEST_RETRY_ATTEMPTS` attempts (default 3, at least 1),
    /// `API_REQUEST_RETRY_DELAY` apart (default 100 ms).
    pub const PLATFORM_HOOKS: Self = Self {
        name: "platform hooks",
        retries: Some(2),
        initial: Duration::from_millis(100),
        growth: Growth::Constant,
        cap: Duration::MAX,
    };

    /// The service-mode result POST: `API_REQUEST_RETRY_ATTEMPTS` attempts (default 3, clamped to 1..=10),
    /// `API_REQUEST_RETRY_DELAY` apart (default 100 ms).
    pub const SERVICE_RESULT: Self = Self {
        name: "service result",
        retries: Some(2),
        initial: Duration::from_millis(100),
        growth: Growth::Constant,
        cap: Duration::MAX,
    };

    /// Refreshing a SASL/OAUTHBEARER token that failed: 1 s, doubling, at most 30 s apart, until it works (the
    /// current token is used while it is valid).
    pub const TOKEN_REFRESH: Self = Self {
        name: "token refresh",
        retries: None,
        initial: Duration::from_secs(1),
        growth: Growth::Exponential(2),
        cap: Duration::from_secs(30),
    };

    /// The same policy with `retries` attempts after the first (`None` = unlimited).
    #[must_use]
    pub const fn with_retries(mut self, retries: Option<u64>) -> Self {
        self.retries = retries;
        self
    }

    /// The same policy with `attempts` attempts in all (at least one).
    #[must_use]
    pub const fn with_attempts(self, attempts: u32) -> Self {
        self.with_retries(Some(attempts.saturating_sub(1) as u64))
    }

    /// The same policy with another first delay.
    #[must_use]
    pub const fn with_initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// The same policy with another cap.
    #[must_use]
    pub const fn with_cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// Attempts in all, `None` when unlimited.
    pub fn attempts(&self) -> Option<u64> {
        self.retries.map(|r| r.saturating_add(1))
    }

    /// The delay before attempt number `attempt` (0-based) after `attempt` failures; `None` when the policy
    /// allows no further attempt (or for attempt 0, which has no delay).
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || self.retries.is_some_and(|max| u64::from(attempt) > max) {
            return None;
        }
        let n = attempt - 1;
        let delay = match self.growth {
            Growth::Constant => self.initial,
            Growth::Linear => self.initial.saturating_mul(attempt),
            Growth::Exponential(factor) => self
                .initial
                .saturating_mul(factor.saturating_pow(n.min(31))),
        };
        Some(delay.min(self.cap))
    }

    /// Runs `op(attempt)` (attempt = 0, 1, …) until it succeeds, answers [`Attempt::Stop`] or the attempts run
    /// out. `on_retry(error, next_attempt, delay)` is called before each sleep (for logging).
    ///
    /// # Errors
    /// [`GaveUp`] with the last error and the number of attempts made.
    pub async fn retry<T, E, Fut>(
        &self,
        mut op: impl FnMut(u32) -> Fut,
        on_retry: impl FnMut(&E, u32, Duration),
    ) -> Result<T, GaveUp<E>>
    where
        Fut: Future<Output = Result<T, Attempt<E>>>,
    {
        match op(0).await {
            Ok(v) => Ok(v),
            Err(Attempt::Stop(error)) => Err(GaveUp { error, attempts: 1 }),
            Err(Attempt::Retry(error)) => self.retry_after(error, 1, op, on_retry).await,
        }
    }

    /// Continues after `failed` attempts already failed with `last` (the publisher makes its first attempt
    /// before the caller waits for its confirm). The next attempt is number `failed`.
    ///
    /// # Errors
    /// [`GaveUp`] with the last error and the number of attempts made.
    pub async fn retry_after<T, E, Fut>(
        &self,
        mut last: E,
        mut failed: u32,
        mut op: impl FnMut(u32) -> Fut,
        mut on_retry: impl FnMut(&E, u32, Duration),
    ) -> Result<T, GaveUp<E>>
    where
        Fut: Future<Output = Result<T, Attempt<E>>>,
    {
        loop {
            let Some(delay) = self.delay_before(failed) else {
                return Err(GaveUp {
                    error: last,
                    attempts: u64::from(failed),
                });
            };
            on_retry(&last, failed, delay);
            tokio::time::sleep(delay).await;
            match op(failed).await {
                Ok(v) => return Ok(v),
                Err(Attempt::Stop(error)) => {
                    return Err(GaveUp {
                        error,
                        attempts: u64::from(failed) + 1,
                    });
                }
                Err(Attempt::Retry(error)) => {
                    last = error;
                    failed = failed.saturating_add(1);
                }
            }
        }
    }
}

/// How one attempt failed.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Worth another attempt (if the policy allows one).
    Retry(E),
    /// Not worth retrying (a 4xx answer, shutdown): return at once.
    Stop(E),
}

/// The last error once a retry loop gave up.
#[derive(Debug)]
pub struct GaveUp<E> {
    /// The error of the last attempt.
    pub error: E,
    /// Attempts made.
    pub attempts: u64,
}

#[cfg(test)]
mod tests;
