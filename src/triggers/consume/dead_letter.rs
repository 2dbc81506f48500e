//! The dead-letter topic (`deadLetterTopic`): a record that cannot become a data message (for example larger
//! than `ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT`) is written there, with its key, value and headers plus the
//! `x-eio-dlt-*` headers below, and only once Kafka has acknowledged that write (acks=all, idempotent
//! producer) may the record's offset be stored. This file owns the producer and the headers; `outcome.rs` what
//! a data message's records came to; the member loop when offsets are stored.
//!
//! When the write fails (topic missing, not authorized, brokers unreachable for [`DELIVERY_TIMEOUT`]) the
//! offsets are **not** stored and the member reports a `DeadLetterError` with [`Action::Crash`]: the worker
//! commits what was confirmed before the record, leaves its group and exits 1; the platform restarts it and the
//! group reads the record again from the last commit, so the write is tried again. Staying up and retrying in
//! place would have to hold every later record of the partition unstored (their offsets cannot pass the stuck
//! one) with no bound on memory or on what a crash would replay; a restart keeps both bounded, reports the
//! problem loudly, and is the model the member already uses for conditions it cannot fix itself.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::pending::Position;
use super::record::RawRecord;
use crate::contract::{ExecutionIds, FunctionError};
use crate::kafka::client::KafkaContext;
use crate::kafka::config::KafkaConnection;
use crate::kafka::token::TokenSource;

/// Header: the topic the record was consumed from.
pub const HEADER_TOPIC: &str = "x-eio-dlt-topic";
/// Header: its partition (decimal text).
pub const HEADER_PARTITION: &str = "x-eio-dlt-partition";
/// Header: its offset (decimal text).
pub const HEADER_OFFSET: &str = "x-eio-dlt-offset";
/// Header: its timestamp in ms since the epoch (decimal text), when it had one. The dead-letter record's own
/// timestamp is the time of the write, so that the dead-letter topic's retention counts from then.
pub const HEADER_TIMESTAMP: &str = "x-eio-dlt-timestamp";
/// Header: why it could not become a data message.
pub const HEADER_REASON: &str = "x-eio-dlt-reason";
/// Header: the consumer group that read it.
pub const HEADER_GROUP: &str = "x-eio-dlt-group";
/// Header: the flow step that read it (when the runtime has one; `exec` runs have none).
pub const HEADER_STEP_ID: &str = "x-eio-dlt-step-id";
/// Header: the flow of that step (when the runtime has one).
pub const HEADER_FLOW_ID: &str = "x-eio-dlt-flow-id";

/// How long one dead-letter write may take, librdkafka's retries included (`message.timeout.ms`).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a dead-letter topic the cluster says does not exist is waited for before the write fails
/// (librdkafka's `topic.metadata.propagation.max.ms`, default 30 s): a missing topic is a configuration
/// problem, reported sooner than a broker that does not answer.
const MISSING_TOPIC_AFTER: Duration = Duration::from_secs(10);

/// The producer of one member's dead-letter topic.
pub(super) struct DeadLetter {
    topic: String,
    producer: FutureProducer<KafkaContext>,
    /// Headers naming who dead-lettered (group, step, flow), added to every record.
    origin: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetter {
    /// The dead-letter producer of a member, on the consumer's connection (and its OAUTHBEARER token);
    /// `None` without a dead-letter topic.
    ///
    /// # Errors
    /// A producer librdkafka refuses to create (a `ConfigurationError`).
    pub(super) fn start(
        topic: Option<&str>,
        conn: &KafkaConnection,
        token: Option<Arc<TokenSource>>,
        (group, ids): (&str, &ExecutionIds),
    ) -> Result<Option<Arc<Self>>, FunctionError> {
        let Some(topic) = topic else {
            return Ok(None);
        };
        let mut client = conn.to_client_config();
        client
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            // The topic is created on purpose (retention, access) or not at all: a misspelt name must fail,
            // not create a topic nobody watches on a cluster that auto-creates.
            .set("allow.auto.create.topics", "false")
            .set(
                "topic.metadata.propagation.max.ms",
                MISSING_TOPIC_AFTER.as_millis().to_string(),
            )
            // The records are as large as the consumed topic allows; the dead-letter topic's broker decides.
            .set("message.max.bytes", "1000000000")
            // As Produce: a key lands where the Java producer would put it.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5");
        let producer = client
            .create_with_context(KafkaContext::with_token(token))
            .map_err(|e| {
                FunctionError::config(
                    "ConfigurationError",
                    format!("cannot create the dead-letter producer for topic `{topic}`: {e}"),
                )
            })?;
        let mut origin = vec![(HEADER_GROUP, group.to_owned())];
        origin.extend(ids.step_id.clone().map(|s| (HEADER_STEP_ID, s)));
        origin.extend(ids.flow_id.clone().map(|f| (HEADER_FLOW_ID, f)));
        tracing::info!(topic, "Dead-letter producer created.");
        Ok(Some(Arc::new(Self {
            topic: topic.to_owned(),
            producer,
            origin,
        })))
    }

    /// The dead-letter topic.
    pub(super) fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes `records` (each at its place in `positions`, one record per position) and waits until Kafka
    /// acknowledged every one; returns their (partition, offset) in the dead-letter topic.
    pub(super) async fn write(
        &self,
        positions: &[Position],
        records: &[RawRecord],
        reason: &str,
    ) -> Result<Vec<(i32, i64)>, KafkaError> {
        let sends = positions.iter().zip(records).map(|(pos, r)| {
            let mut record =
                FutureRecord::<[u8], [u8]>::to(&self.topic).headers(self.headers(pos, r, reason));
            if let Some(k) = &r.key {
                record = record.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                record = record.payload(v.as_slice());
            }
            self.producer.send(record, DELIVERY_TIMEOUT)
        });
        let mut places = Vec::with_capacity(records.len());
        for (result, (topic, partition, offset)) in futures_util::future::join_all(sends)
            .await
            .into_iter()
            .zip(positions)
        {
            let delivery = result.map_err(|(e, _)| e)?;
            tracing::info!(
                source = %format!("{topic}/{partition}@{offset}"),
                dead_letter = %format!("{}/{}@{}", self.topic, delivery.partition, delivery.offset),
                "Record written to the dead-letter topic."
            );
            places.push((delivery.partition, delivery.offset));
        }
        Ok(places)
    }

    /// The record's own headers, then where it came from, why, and who dead-lettered it.
    fn headers(
        &self,
        (topic, partition, offset): &Position,
        r: &RawRecord,
        reason: &str,
    ) -> OwnedHeaders {
        let mut added: Vec<(&str, String)> = vec![
            (HEADER_TOPIC, topic.clone()),
            (HEADER_PARTITION, partition.to_string()),
            (HEADER_OFFSET, offset.to_string()),
        ];
        added.extend(r.timestamp.map(|t| (HEADER_TIMESTAMP, t.to_string())));
        added.push((HEADER_REASON, reason.to_owned()));
        added.extend(self.origin.iter().map(|(k, v)| (*k, v.clone())));
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len() + added.len());
        for (key, value) in &r.headers {
            headers = headers.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        for (key, value) in &added {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;

    fn raw() -> RawRecord {
        RawRecord {
            key: Some(b"k".to_vec()),
            value: Some(vec![0xff, 0x00]),
            headers: vec![
                ("a".to_owned(), Some(b"1".to_vec())),
                ("a".to_owned(), None),
            ],
            timestamp: Some(1_700_000_000_000),
        }
    }

    fn dead_letter() -> DeadLetter {
        let conn =
            KafkaConnection::from_cfg(&serde_json::json!({"brokers": "127.0.0.1:1"})).unwrap();
        let ids = ExecutionIds {
            step_id: Some("step_1".to_owned()),
            ..ExecutionIds::default()
        };
        let dl = DeadLetter::start(Some("dlt"), &conn, None, ("g", &ids))
            .unwrap()
            .unwrap();
        Arc::into_inner(dl).unwrap()
    }

    #[test]
    fn headers_keep_the_records_own_then_name_source_reason_and_origin() {
        let dl = dead_letter();
        let h = dl.headers(&("orders".to_owned(), 3, 41), &raw(), "too large");
        let got: Vec<(String, Option<String>)> = h
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    h.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                )
            })
            .collect();
        let s = |k: &str, v: Option<&str>| (k.to_owned(), v.map(str::to_owned));
        assert_eq!(
            got,
            vec![
                s("a", Some("1")),
                s("a", None),
                s(HEADER_TOPIC, Some("orders")),
                s(HEADER_PARTITION, Some("3")),
                s(HEADER_OFFSET, Some("41")),
                s(HEADER_TIMESTAMP, Some("1700000000000")),
                s(HEADER_REASON, Some("too large")),
                s(HEADER_GROUP, Some("g")),
                s(HEADER_STEP_ID, Some("step_1")),
            ],
            "no flow id: the runtime had none"
        );
    }
}
