//! The SASL and metadata stage: a librdkafka client lists the cluster; its errors become verdicts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openssl::x509::X509VerifyResult;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};

use super::PROBE_TIMEOUT;
use super::reasons::{auth_reason, plaintext_reason};
use super::tls::tls_reason;
use super::tls::{Probe, tls_probe};
use super::verdict::Verdict;
use crate::kafka::client::{ClientState, KafkaContext};
use crate::kafka::config::KafkaConnection;
use crate::kafka::token::TokenSource;

/// SASL and metadata: connect with librdkafka and list the cluster's topics, within `budget`.
pub(super) async fn kafka_stage(
    conn: &KafkaConnection,
    token: Option<Arc<TokenSource>>,
    reachable: &[(String, SocketAddr)],
    budget: Duration,
) -> Verdict {
    let context = KafkaContext::with_token(token);
    let state: Arc<ClientState> = Arc::clone(&context.state);
    let mut cc = conn.to_client_config();
    cc.set("socket.connection.setup.timeout.ms", "5000");
    // A producer client: its background thread serves librdkafka's error events (authentication failures)
    // while the metadata request waits.
    let client: FutureProducer<KafkaContext> = match cc.create_with_context(context) {
        Ok(c) => c,
        Err(e) => {
            return Verdict::fail(
                "configuration",
                format!("the Kafka client rejected the settings ({e})"),
                "Correct the credentials form.",
            );
        }
    };
    // The answer is sent before the client is dropped: closing a client whose brokers never answered waits for
    // their connection attempts, and the verdict must not.
    let (tx, metadata) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let r = client
            .client()
            .fetch_metadata(None, budget)
            .map(|md| (md.topics().len(), md.brokers().len()));
        let _ignored = tx.send(r);
        drop(client);
    });
    let auth = conn.auth.as_ref();
    // An authentication failure is final: answer at once instead of waiting for the metadata timeout.
    let result = tokio::select! {
        r = metadata => r,
        reason = state.auth_failed() => return auth_reason(&reason, auth),
    };
    if let Some(reason) = state.auth_error() {
        return auth_reason(&reason, auth);
    }
    match result {
        Ok(Ok((topics, brokers))) => {
            tracing::info!(topics, brokers, "Cluster metadata read.");
            Verdict::ok()
        }
        Ok(Err(e)) => metadata_failed(conn, &state, reachable, budget, &e).await,
        Err(e) => Verdict::fail("metadata", format!("the check failed ({e})"), "Try again."),
    }
}

/// The metadata request failed: a TLS alert, a plaintext connection a TLS probe explains, missing rights, or
/// no answer in time.
async fn metadata_failed(
    conn: &KafkaConnection,
    state: &ClientState,
    reachable: &[(String, SocketAddr)],
    budget: Duration,
    e: &KafkaError,
) -> Verdict {
    let last = state.last_error().unwrap_or_default();
    let text = if last.is_empty() { e.to_string() } else { last };
    let lower = text.to_ascii_lowercase();
    if conn.tls.is_some() && (lower.contains("certificate required") || lower.contains("alert")) {
        return tls_reason(&conn.brokers[0], X509VerifyResult::OK, &text);
    }
    // A plaintext connection that ends without an answer: a TLS port closes it, a SASL port refuses the
    // requests of a client that did not authenticate, an address that is not Kafka may hold it open.
    // librdkafka reports each as a disconnect or a transport failure; a TLS probe tells them apart.
    if conn.tls.is_none()
        && (lower.contains("disconnected")
            || lower.contains("connection reset")
            || lower.contains("transport failure"))
        && let Some((broker, addr)) = reachable.first().cloned()
    {
        let probe = tokio::task::spawn_blocking(move || tls_probe(addr));
        let probe = tokio::time::timeout(PROBE_TIMEOUT + Duration::from_secs(1), probe)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Probe::Silent);
        return plaintext_reason(&broker, probe, conn.auth.is_some(), &text);
    }
    if matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
        )
    ) {
        return Verdict::fail(
            "metadata",
            format!("not authorized to describe the cluster ({text})"),
            "Grant the user DESCRIBE on the cluster/topics.",
        );
    }
    Verdict::fail(
        "metadata",
        format!(
            "no cluster metadata within {:.0} s ({text})",
            budget.as_secs_f64()
        ),
        "Check that the address is a Kafka broker and that it is healthy.",
    )
}
