//! Waiting on observable state with a deadline. Every wait of the suites goes through here: a test states
//! what it waits for (a queue count, a committed offset, an assignment, a process exit) and how long that may
//! take, and a timeout names it. Nothing else in the suites pauses for a fixed time, except where the pause
//! is the behaviour under test (each such place says so).

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is checked again.
pub const POLL: Duration = Duration::from_millis(20);

/// How often a broker is asked again about itself (metadata, a restarted process's port): each check is a
/// request to a JVM that may be busy starting.
pub const METADATA_POLL: Duration = Duration::from_millis(100);

/// The pause between two checks of a condition: the suites' one poll interval. It never decides when something
/// has happened; the check after it does.
async fn pause(d: Duration) {
    tokio::time::sleep(d).await;
}

/// Polls `check` until it returns `Some`, at most `timeout`; `None` when the deadline passed. The condition is
/// checked once more at the deadline, so a zero timeout checks exactly once.
pub async fn poll_until<T, F, Fut>(timeout: Duration, check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_every(POLL, timeout, check).await
}

/// [`poll_until`] with another interval, for checks that are costly themselves (a `rabbitmqctl` call).
pub async fn poll_every<T, F, Fut>(every: Duration, timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return None;
        }
        pause(every.min(deadline - now)).await;
    }
}

/// Polls `check` until it returns `Some` and returns the value; panics naming `what` when `timeout` passed.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_until(timeout, check).await {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Like [`wait_until`], but `what` is built at the timeout (to show the state that was last seen).
pub async fn wait_until_or<T, F, Fut>(
    timeout: Duration,
    check: F,
    what: impl FnOnce() -> String,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_until(timeout, check).await {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for {}", what()),
    }
}

/// Checks `bad` repeatedly for `window`: panics with its message as soon as it returns `Some`. For the
/// assertions "nothing (more) happens", where waiting out the window is the behaviour under test.
pub async fn assert_stays<F, Fut>(window: Duration, bad: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    if let Some(msg) = poll_until(window, bad).await {
        panic!("{msg}");
    }
}

/// [`poll_until`] for synchronous code (threads, `spawn_blocking`, `Drop`).
pub fn poll_until_blocking<T>(timeout: Duration, check: impl FnMut() -> Option<T>) -> Option<T> {
    poll_every_blocking(POLL, timeout, check)
}

/// [`poll_every`] for synchronous code.
pub fn poll_every_blocking<T>(
    every: Duration,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        // The blocking twin of `pause`: the poll interval of synchronous checks.
        std::thread::sleep(every.min(deadline - now));
    }
}

/// [`wait_until`] for synchronous code.
pub fn wait_until_blocking<T>(
    timeout: Duration,
    what: &str,
    check: impl FnMut() -> Option<T>,
) -> T {
    wait_every_blocking(POLL, timeout, what, check)
}

/// [`wait_until_blocking`] with another interval (checks that are costly, or timings sampled at a set rate).
pub fn wait_every_blocking<T>(
    every: Duration,
    timeout: Duration,
    what: &str,
    check: impl FnMut() -> Option<T>,
) -> T {
    match poll_every_blocking(every, timeout, check) {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// A deadline for a polling loop that keeps state between checks (a drain, a collector):
/// `while !done { deadline.tick().await }`. [`Deadline::tick`] waits one poll interval and panics naming what
/// was awaited once the deadline has passed.
#[derive(Debug)]
pub struct Deadline {
    at: tokio::time::Instant,
    timeout: Duration,
    every: Duration,
    what: String,
}

impl Deadline {
    pub fn new(timeout: Duration, what: impl Into<String>) -> Self {
        Self {
            at: tokio::time::Instant::now() + timeout,
            timeout,
            every: POLL,
            what: what.into(),
        }
    }

    /// Another poll interval (for checks that are costly themselves, or a loop that must not spin).
    pub fn every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    pub fn passed(&self) -> bool {
        tokio::time::Instant::now() >= self.at
    }

    /// Waits one poll interval; panics if the deadline has passed.
    pub async fn tick(&self) {
        self.tick_or(String::new).await;
    }

    /// Like [`Deadline::tick`], the panic message extended with `state()` (what was seen last).
    pub async fn tick_or(&self, state: impl FnOnce() -> String) {
        let now = tokio::time::Instant::now();
        if now >= self.at {
            let state = state();
            let sep = if state.is_empty() { "" } else { "; " };
            panic!(
                "timed out after {:?} waiting for {}{sep}{state}",
                self.timeout, self.what
            );
        }
        pause(self.every.min(self.at - now)).await;
    }

    /// Waits one poll interval, or returns false once the deadline has passed (for loops that end on their own
    /// terms at the deadline).
    pub async fn tick_unless_passed(&self) -> bool {
        let now = tokio::time::Instant::now();
        if now >= self.at {
            return false;
        }
        pause(self.every.min(self.at - now)).await;
        true
    }
}
