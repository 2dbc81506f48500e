//! The policies' numbers and the retry loop, on paused time.

use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::*;

/// Runs `policy` with an operation that fails `fail` times (then succeeds) and records when each attempt
/// started, relative to the start.
async fn run(policy: Policy, fail: u32) -> (Result<u32, GaveUp<u32>>, Vec<Duration>) {
    let start = Instant::now();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let result = policy
        .retry(
            |attempt| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().unwrap().push(start.elapsed());
                    if attempt < fail {
                        Err(Attempt::Retry(attempt))
                    } else {
                        Ok(attempt)
                    }
                }
            },
            |_, _, _| {},
        )
        .await;
    let seen = seen.lock().unwrap().clone();
    (result, seen)
}

fn ms(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|m| Duration::from_millis(*m)).collect()
}

#[tokio::test(start_paused = true)]
async fn amqp_connect_tries_four_times_100_ms_apart() {
    let (result, at) = run(Policy::AMQP_CONNECT, u32::MAX).await;
    let gave_up = result.unwrap_err();
    assert_eq!((gave_up.error, gave_up.attempts), (3, 4));
    assert_eq!(at, ms(&[0, 100, 200, 300]));
}

#[tokio::test(start_paused = true)]
async fn amqp_consumer_reconnect_tries_21_times_with_linear_delays_capped_at_3_s() {
    let (result, at) = run(Policy::AMQP_CONSUMER_RECONNECT, u32::MAX).await;
    assert_eq!(result.unwrap_err().attempts, 21);
    // 200, 400, …, 3000 ms between the attempts, then 3 s: 39 s in all.
    assert_eq!(
        at,
        ms(&[
            0, 200, 600, 1200, 2000, 3000, 4200, 5600, 7200, 9000, 11000, 13200, 15600, 18200,
            21000, 24000, 27000, 30000, 33000, 36000, 39000
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn amqp_publish_doubles_from_100_ms_up_to_5_min_without_limit() {
    let p = Policy::AMQP_PUBLISH;
    assert_eq!(p.attempts(), None);
    let delays: Vec<_> = (1..=14).map(|a| p.delay_before(a).unwrap()).collect();
    assert_eq!(
        delays,
        ms(&[
            100, 200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 51_200, 102_400, 204_800,
            300_000, 300_000
        ])
    );
    assert_eq!(p.delay_before(u32::MAX), Some(Duration::from_secs(300)));
    // Succeeds on the 21st attempt: still retrying, and the sleeps add up.
    let (result, at) = run(p, 20).await;
    assert_eq!(result.unwrap(), 20);
    assert_eq!(at.len(), 21);
    let expected: u64 = delays.iter().map(|d| d.as_millis() as u64).sum::<u64>() + 6 * 300_000;
    assert_eq!(at[20], Duration::from_millis(expected));
}

#[tokio::test(start_paused = true)]
async fn publish_attempts_setting_counts_retries_after_the_first() {
    // AMQP_PUBLISH_RETRY_ATTEMPTS=5: the first publish and 5 retries (headers retry: 1..=5).
    let p = Policy::AMQP_PUBLISH.with_retries(Some(5));
    let (result, at) = run(p, u32::MAX).await;
    assert_eq!(result.unwrap_err().attempts, 6);
    assert_eq!(at, ms(&[0, 100, 300, 700, 1500, 3100]));
}

#[tokio::test(start_paused = true)]
async fn platform_api_tries_three_times_one_second_apart() {
    let (result, at) = run(Policy::PLATFORM_API, u32::MAX).await;
    assert_eq!(result.unwrap_err().attempts, 3);
    assert_eq!(at, ms(&[0, 1000, 2000]));
    // Success on the second attempt stops the loop.
    let (result, at) = run(Policy::PLATFORM_API, 1).await;
    assert_eq!(result.unwrap(), 1);
    assert_eq!(at, ms(&[0, 1000]));
}

#[tokio::test(start_paused = true)]
async fn hooks_and_service_result_try_three_times_100_ms_apart() {
    for p in [Policy::PLATFORM_HOOKS, Policy::SERVICE_RESULT] {
        let (result, at) = run(p, u32::MAX).await;
        assert_eq!(result.unwrap_err().attempts, 3, "{}", p.name);
        assert_eq!(at, ms(&[0, 100, 200]), "{}", p.name);
    }
    let one = Policy::SERVICE_RESULT.with_attempts(1);
    let (result, at) = run(one, u32::MAX).await;
    assert_eq!(result.unwrap_err().attempts, 1);
    assert_eq!(at, ms(&[0]));
}

#[tokio::test(start_paused = true)]
async fn stop_returns_at_once_and_on_retry_sees_every_retry() {
    let start = Instant::now();
    let mut retries = Vec::new();
    let result: Result<(), _> = Policy::PLATFORM_API
        .retry(
            |attempt| async move {
                if attempt == 0 {
                    Err(Attempt::Retry("5xx"))
                } else {
                    Err(Attempt::Stop("4xx"))
                }
            },
            |e, next, delay| retries.push((*e, next, delay)),
        )
        .await;
    let gave_up = result.unwrap_err();
    assert_eq!((gave_up.error, gave_up.attempts), ("4xx", 2));
    assert_eq!(retries, vec![("5xx", 1, Duration::from_secs(1))]);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn retry_after_continues_the_numbering() {
    let start = Instant::now();
    let mut seen = Vec::new();
    let result: Result<(), GaveUp<u32>> = Policy::AMQP_PUBLISH
        .with_retries(Some(2))
        .retry_after(
            0,
            1,
            |attempt| {
                seen.push((attempt, start.elapsed()));
                async move { Err(Attempt::Retry(attempt)) }
            },
            |_, _, _| {},
        )
        .await;
    assert_eq!(result.unwrap_err().attempts, 3);
    assert_eq!(
        seen,
        vec![
            (1, Duration::from_millis(100)),
            (2, Duration::from_millis(300))
        ]
    );
    // No retry allowed at all: gives up with the first error, without sleeping.
    let result: Result<(), GaveUp<&str>> = Policy::AMQP_PUBLISH
        .with_retries(Some(0))
        .retry_after("nack", 1, |_| async { Ok(()) }, |_, _, _| {})
        .await;
    let gave_up = result.unwrap_err();
    assert_eq!((gave_up.error, gave_up.attempts), ("nack", 1));
}
