//! The stages in order, within one time budget: parse, DNS, TCP, TLS, token, then SASL and metadata.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::PROBE_TIMEOUT;
use super::kafka::kafka_stage;
use super::network::{connect, resolve};
use super::tls::tls_stage;
use super::verdict::{Verdict, token_verdict};
use crate::kafka::config::KafkaConnection;
use crate::kafka::token::{FETCH_TIMEOUT, TokenError, TokenSource};

/// Budget for SASL + metadata.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(6);
/// The whole check, every stage together: the platform's form waits for the verdict.
const TOTAL_BUDGET: Duration = Duration::from_secs(14);
/// The token stage: an OAuth request may be sent twice (Basic, then the secret in the form).
const TOKEN_TIMEOUT: Duration = Duration::from_secs(FETCH_TIMEOUT.as_secs() + 3);

/// Runs every stage against `cfg` (credentials fields).
pub async fn verify_credentials(cfg: &Value) -> Verdict {
    let started = Instant::now();
    let verdict = stages(cfg).await.unwrap_or_else(|failed| failed);
    tracing::info!(
        verified = verdict.verified,
        reason = verdict.reason.as_deref().unwrap_or(""),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Credentials checked."
    );
    verdict
}

/// Every stage; `Err` is the first failure's verdict.
async fn stages(cfg: &Value) -> Result<Verdict, Verdict> {
    let deadline = Instant::now() + TOTAL_BUDGET;
    let conn = KafkaConnection::from_cfg(cfg).map_err(|e| {
        Verdict::fail(
            "configuration",
            e.to_string(),
            "Correct the credentials form.",
        )
    })?;
    // The token is fetched beside the network stages and judged after them.
    let token_source =
        TokenSource::for_connection(&conn).map_err(|e| token_verdict(&e.to_string()))?;
    let token_check = token_source
        .clone()
        .map(|source| AbortOnDrop(tokio::spawn(async move { source.check().await })));
    let resolved = resolve(&conn.brokers).await?;
    let reachable: Vec<(String, SocketAddr)> = connect(&resolved).await?;
    if let Some(tls) = &conn.tls {
        tls_stage(&reachable[0], tls, left(deadline)).await?;
    }
    if let Some(check) = token_check {
        token_stage(check, deadline).await?;
    }
    // SASL + metadata through librdkafka, in what is left of the budget (a probe may follow it).
    let budget = KAFKA_TIMEOUT.min(left(deadline).saturating_sub(PROBE_TIMEOUT));
    Ok(kafka_stage(
        &conn,
        token_source,
        &reachable,
        budget.max(Duration::from_secs(1)),
    )
    .await)
}

/// The token stage: the spawned check's answer, in what is left of the budget but the Kafka stage's minimum.
async fn token_stage(
    mut check: AbortOnDrop<Result<(), TokenError>>,
    deadline: Instant,
) -> Result<(), Verdict> {
    let budget = TOKEN_TIMEOUT.min(left(deadline).saturating_sub(Duration::from_secs(3)));
    match tokio::time::timeout(budget, &mut check.0).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(token_verdict(&e.to_string())),
        Ok(Err(e)) => Err(token_verdict(&format!(
            "the token check failed ({e}). Try again"
        ))),
        Err(_) => Err(token_verdict(&format!(
            "no token within {} s. Check `Token URL` (or the AWS credential sources) and any proxy between this step and them",
            budget.as_secs()
        ))),
    }
}

/// A spawned check that stops when the verdict no longer needs it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Time until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
