//! The Produce action: writes `{"messages":[…]}` to the step's topic and emits, per partition written,
//! where the records went.
//!
//! - [`config`]: the action's fields → producer settings.
//! - [`input`]: the input message → records.
//! - [`headers`]: the headers the step adds to every record (`staticHeaders`, `traceHeaders`).
//! - `producer`: the producer cache (one per connection + settings, replaced when unusable).
//! - `send`: enqueueing with back-pressure, delivery reports, failure classification.
//! - `output`: the per-partition data messages.
//! - `txn`, `exactly_once`: `deliveryGuarantee` `exactlyOnce`: each message in one Kafka transaction (the
//!   transactional producers, one per message in flight) and its outcome.
//!
//! This file decides the outcome: data for what was written, one error listing every failed record
//! (rejected), or a rebound when the cluster was only temporarily unavailable.

pub mod config;
mod exactly_once;
pub mod headers;
pub mod input;
mod output;
mod producer;
mod rate;
mod send;
mod txn;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use rdkafka::error::RDKafkaErrorCode;
use serde_json::Value;

use self::config::ProduceConfig;
use self::input::{Record, Unread, parse_input, read_message_text};
use self::producer::{NoProducer, Producers, SharedProducer};
use self::send::{Failure, Written, send_all};
use crate::contract::{Execution, Fault, Function, FunctionError};
use crate::kafka::classify::{Disposition, classify_code, describe};
use crate::kafka::config::{Auth, KafkaConnection};

/// A step configuration parsed once: every message of a step carries the same `cfg`.
struct Prepared {
    conn: KafkaConnection,
    pc: ProduceConfig,
    /// Producer cache key.
    key: String,
}

/// The Produce action with its producer cache.
#[derive(Default)]
pub struct ProduceAction {
    producers: Producers,
    /// Records/s and rebounds, logged once per interval (`rate.rs`).
    rate: rate::Rate,
    /// The transactional producers of `exactlyOnce` (one pool per configuration).
    transactional: txn::Pools,
    /// The last configuration parsed, and what it parsed into (comparing is cheaper than parsing and hashing).
    prepared: std::sync::Mutex<Option<(Value, Arc<Prepared>)>>,
}

impl std::fmt::Debug for ProduceAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProduceAction").finish_non_exhaustive()
    }
}

impl Function for ProduceAction {
    fn reads_body_from_text(&self) -> bool {
        true
    }

    fn process(&self, exec: Execution) -> BoxFuture<'_, Result<(), FunctionError>> {
        Box::pin(async move {
            let outcome = self.produce(exec).await;
            let rebounded =
                matches!(&outcome, Err(e) if e.action == crate::contract::Action::Rebound);
            self.rate.handled(rebounded);
            outcome
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.rate.flush();
        Box::pin(self.producers.flush_all())
    }
}

impl ProduceAction {
    /// The parsed configuration of `cfg`, from the cache when `cfg` is the one parsed last.
    fn prepare(&self, cfg: &Value) -> Result<Arc<Prepared>, FunctionError> {
        if let Ok(last) = self.prepared.lock()
            && let Some((seen, prepared)) = last.as_ref()
            && seen == cfg
        {
            return Ok(Arc::clone(prepared));
        }
        let conn = KafkaConnection::from_cfg(cfg)?;
        let pc = ProduceConfig::from_cfg(cfg)?;
        let key = format!("{}|{}", conn.cache_key(), pc.cache_key());
        let prepared = Arc::new(Prepared { conn, pc, key });
        if let Ok(mut last) = self.prepared.lock() {
            *last = Some((cfg.clone(), Arc::clone(&prepared)));
        }
        Ok(prepared)
    }

    /// Produces the message's records and emits where they went.
    ///
    /// # Errors
    /// Invalid input or configuration, failed records (all listed in one error), or a cluster that is
    /// unavailable for now (rebound).
    async fn produce(&self, exec: Execution) -> Result<(), FunctionError> {
        let prepared = self.prepare(&exec.cfg)?;
        let (conn, pc) = (&prepared.conn, &prepared.pc);
        let records = records_of(&exec)?;
        let added = step_headers(pc, &exec);
        if pc.exactly_once {
            return self.exactly_once(&exec, &prepared, &records, &added).await;
        }
        let producer = self
            .producers
            .get(&prepared.key, conn, pc)
            .await
            .map_err(|e| no_producer(e, conn))?;
        let attempt_started = std::time::Instant::now();
        let (written, mut failures) = send_all(&producer, pc, &records, &added).await;
        self.rate.written(written.len());
        if !written.is_empty() {
            producer.state.mark_success();
        }
        self.explain(&producer, &pc.topic, &mut failures).await;
        if let Some(auth) = failures
            .iter()
            .find(|f| f.code == Some(RDKafkaErrorCode::Authentication))
        {
            self.producers.forget(&producer).await;
            return Err(authentication_failed(conn, &auth.error));
        }
        if !failures.is_empty()
            && failures
                .iter()
                .all(|f| f.disposition == Disposition::Transient)
        {
            // A producer that got nothing acknowledged for a whole delivery timeout (by any message) is
            // replaced, so the next attempt starts with fresh connections and a new idempotent producer id
            // instead of retrying through a session the broker keeps refusing.
            if written.is_empty() && !producer.state.succeeded_since(attempt_started) {
                tracing::info!("Replacing the Kafka producer; the next message gets a new one.");
                self.producers.forget(&producer).await;
            }
            return Err(unavailable(pc, records.len(), &failures));
        }
        self.emit_written(&exec, &producer, pc, &records, &written)
            .await?;
        if failures.is_empty() {
            tracing::debug!(records = records.len(), topic = %pc.topic, "Records produced.");
            return Ok(());
        }
        Err(not_written(pc, records.len(), written.len(), &failures))
    }

    /// Makes failures say what is really wrong: a fatal producer error (the producer is replaced and its
    /// cause decides whose fault the records' failure is), or a topic that does not exist (which only shows
    /// as timeouts).
    async fn explain(&self, producer: &SharedProducer, topic: &str, failures: &mut [Failure]) {
        if let Some((cause, reason)) = producer.fatal_error() {
            tracing::warn!(code = ?cause, reason = %reason, "The Kafka producer hit a fatal error; replacing it.");
            self.producers.forget(producer).await;
            // The records that failed because of it: the cause itself, records refused at enqueue
            // (`Fatal`) and records purged from the queue when it was raised.
            let consequence = |code: Option<RDKafkaErrorCode>| {
                code.is_none_or(|c| {
                    c == cause
                        || matches!(c, RDKafkaErrorCode::Fatal | RDKafkaErrorCode::PurgeQueue)
                })
            };
            for f in failures.iter_mut().filter(|f| consequence(f.code)) {
                f.disposition = classify_code(cause);
                f.code = Some(cause);
                let text = format!("{} ({reason})", describe(cause, topic));
                f.error = text;
            }
        }
        if !failures.is_empty()
            && failures
                .iter()
                .all(|f| f.disposition == Disposition::Transient)
            && producer.topic_missing(topic).await
        {
            let text = describe(RDKafkaErrorCode::UnknownTopicOrPartition, topic);
            for f in failures.iter_mut() {
                f.disposition = Disposition::User;
                f.code = Some(RDKafkaErrorCode::UnknownTopicOrPartition);
                f.error.clone_from(&text);
                f.size = None;
            }
        }
    }

    /// One data message per partition, sent in order without waiting for each confirm; every confirm is
    /// awaited before returning (and so before the delivery is acked).
    async fn emit_written(
        &self,
        exec: &Execution,
        producer: &SharedProducer,
        pc: &ProduceConfig,
        records: &[Record],
        written: &[Written],
    ) -> Result<(), FunctionError> {
        let topic = pc.topic.as_str();
        let mut confirms = Vec::new();
        let mut failed = None;
        for part in output::by_partition(producer, topic, written).await {
            if let Err(e) =
                output::send_partition(&exec.emitter, topic, records, &part, &mut confirms).await
            {
                failed = Some(e);
                break;
            }
        }
        for c in confirms {
            if let Err(e) = c.wait().await {
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), |e| Err(FunctionError::from(e)))
    }
}

/// The input message's records: typed from the message text when the runtime left the body in it, otherwise
/// from `msg.body` (the same records, and the same problems, either way).
fn records_of(exec: &Execution) -> Result<Vec<Record>, FunctionError> {
    let invalid = |problems: Vec<String>| {
        FunctionError::data(
            "ValidationError",
            format!(
                "the input does not match the Produce input schema: {}",
                problems.join("; ")
            ),
        )
    };
    match &exec.text {
        // The runtime left the body's strict check to this reading (`Execution::text`).
        Some(text) => read_message_text(text).map_err(|unread| match unread {
            Unread::Invalid(problems) => invalid(problems),
            Unread::NotJson(detail) => FunctionError::not_json(detail),
        }),
        None => parse_input(exec.msg.get("body").unwrap_or(&Value::Null)).map_err(invalid),
    }
}

/// The step's static headers and, when on, the execution's trace headers, for every record (the size check
/// counts them).
fn step_headers(pc: &ProduceConfig, exec: &Execution) -> Vec<(String, Vec<u8>)> {
    let trace = if pc.trace_headers {
        headers::trace_headers(&exec.ids)
    } else {
        Vec::new()
    };
    headers::step_headers(&pc.static_headers, trace)
}

/// The error when no producer could be had.
fn no_producer(e: NoProducer, conn: &KafkaConnection) -> FunctionError {
    match e {
        NoProducer::Config(text) => FunctionError::config("ConfigurationError", text),
        // The identity provider is down or slow: like a broker that is, bring the message back later.
        NoProducer::Token(e) if e.is_transient() => {
            tracing::warn!(error = %e, "No SASL/OAUTHBEARER token; rebounding the message.");
            FunctionError::unavailable(format!("token: {e}"))
        }
        NoProducer::Token(e) => FunctionError::config(
            "AuthenticationError",
            format!(
                "Kafka authentication failed for {}: token: {e}",
                conn.describe_auth()
            ),
        ),
    }
}

/// Credentials the cluster refused.
fn authentication_failed(conn: &KafkaConnection, reason: &str) -> FunctionError {
    FunctionError::config(
        "AuthenticationError",
        format!(
            "Kafka authentication failed for {}: {reason}. {}",
            conn.describe_auth(),
            conn.auth
                .as_ref()
                .map_or("Check the security settings of the credentials.", Auth::fix),
        ),
    )
}

/// Only transient trouble: the platform brings the whole message back later. Records that did get written
/// will be written again (at least once); no data is emitted now to avoid double output.
fn unavailable(pc: &ProduceConfig, total: usize, failures: &[Failure]) -> FunctionError {
    tracing::warn!(
        failed = failures.len(),
        "Kafka unavailable; rebounding the message."
    );
    FunctionError::unavailable(format!(
        "{} of {total} records could not be written to topic `{}` within {} ms: {}",
        failures.len(),
        pc.topic,
        pc.delivery_timeout_ms,
        failures
            .first()
            .map_or("broker unavailable", |f| f.error.as_str())
    ))
}

/// Records the cluster refused for good; the others were written and reported.
fn not_written(
    pc: &ProduceConfig,
    total: usize,
    written: usize,
    failures: &[Failure],
) -> FunctionError {
    let details: Vec<Value> = failures.iter().map(Failure::detail).collect();
    let indexes: Vec<String> = failures.iter().map(|f| f.index.to_string()).collect();
    FunctionError::new(
        "ProduceError",
        format!(
            "{} of {total} records were not written to topic `{}` (indexes {}); the other {written} were written. Failed records: {}",
            failures.len(),
            pc.topic,
            indexes.join(", "),
            Value::from(details)
        ),
        fault_of(failures),
        crate::contract::Action::Reject,
    )
}

/// Refused for a permission or a topic that does not exist: the step's configuration; otherwise the data.
fn fault_of(failures: &[Failure]) -> Fault {
    use RDKafkaErrorCode as C;
    let config = failures.iter().any(|f| {
        matches!(
            f.code,
            Some(
                C::TopicAuthorizationFailed
                    | C::ClusterAuthorizationFailed
                    | C::UnknownTopicOrPartition
                    | C::UnknownTopic
                    | C::InvalidTopic
            )
        )
    });
    if config {
        Fault::Configuration
    } else {
        Fault::Data
    }
}
