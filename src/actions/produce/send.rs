//! Sending a message's records: size pre-check, enqueueing with back-pressure, waiting for every delivery
//! report, and classifying each failure (the user's, or transient).

use std::time::Duration;

use rdkafka::Timestamp;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::config::ProduceConfig;
use super::headers::{self, Added};
use super::input::Record;
use super::producer::SharedProducer;
use crate::kafka::classify::{Disposition, classify_code, describe};

/// A record that was not written.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub(super) index: usize,
    pub(super) disposition: Disposition,
    pub(super) code: Option<RDKafkaErrorCode>,
    /// What went wrong, as the error message lists it.
    pub(super) error: String,
    /// The record's size and the limit, when it was too large.
    pub(super) size: Option<(usize, usize)>,
}

impl Failure {
    fn new(
        index: usize,
        code: Option<RDKafkaErrorCode>,
        disposition: Disposition,
        error: &str,
    ) -> Self {
        Self {
            index,
            disposition,
            code,
            error: error.to_owned(),
            size: None,
        }
    }

    /// `{index, size?, limit?, error}` as the error message lists it.
    pub(super) fn detail(&self) -> Value {
        match self.size {
            Some((size, limit)) => {
                json!({ "index": self.index, "size": size, "limit": limit, "error": self.error })
            }
            None => json!({ "index": self.index, "error": self.error }),
        }
    }
}

/// Where a record landed.
#[derive(Debug, Clone)]
pub(super) struct Written {
    pub(super) index: usize,
    pub(super) partition: i32,
    /// `None` when Kafka confirmed the write without its position: librdkafka reports a retried request that
    /// the broker had already written (DUPLICATE_SEQUENCE_NUMBER, seen in a rolling restart) as delivered with
    /// offset -1001. The record is in Kafka once; only where is unknown.
    pub(super) offset: Option<i64>,
    pub(super) timestamp: Timestamp,
}

/// Sends every record (too-large ones fail on their own), waits for all delivery reports.
pub(super) async fn send_all(
    producer: &SharedProducer,
    pc: &ProduceConfig,
    records: &[Record],
    added: &Added,
) -> (Vec<Written>, Vec<Failure>) {
    let mut failures = Vec::new();
    let limit = usize::try_from(pc.message_max_bytes).unwrap_or(usize::MAX);
    let mut to_send = Vec::with_capacity(records.len());
    for r in records {
        let size = headers::size_with(r, added);
        if size > limit {
            failures.push(Failure {
                size: Some((size, limit)),
                ..Failure::new(
                    r.index,
                    Some(RDKafkaErrorCode::MessageSizeTooLarge),
                    Disposition::User,
                    &format!("record is {size} bytes, larger than the limit of {limit} bytes (messageMaxBytes)"),
                )
            });
        } else {
            to_send.push(r);
        }
    }
    let (mut written, more, batch_rejected) = send_batch(producer, pc, &to_send, added).await;
    failures.extend(more);
    // The broker refuses a whole batch when it is larger than the topic's `max.message.bytes`, or when one of
    // its records has a timestamp the broker does not accept, so good records fail together with the bad one.
    // Like the Java producer, which splits a batch that is too large, send each of them again alone, one after
    // the other (so their order is kept): only the records that are refused by themselves fail.
    // Not in a transaction: a refused batch makes it abortable, nothing more can be sent in it, and it is aborted.
    if batch_rejected.len() > 1 && !pc.exactly_once {
        failures.retain(|f| !batch_rejected.contains(&f.index));
        for index in batch_rejected {
            let Some(r) = records.iter().find(|r| r.index == index) else {
                continue;
            };
            let (w, f, _) = send_batch(producer, pc, &[r], added).await;
            written.extend(w);
            failures.extend(f);
        }
        written.sort_by_key(|w| w.index);
    }
    failures.sort_by_key(|f| f.index);
    (written, failures)
}

/// Enqueues `records` and waits for every delivery report; also returns the indexes of records the broker
/// refused for something that may belong to another record of their batch (its size, a timestamp).
async fn send_batch(
    producer: &SharedProducer,
    pc: &ProduceConfig,
    records: &[&Record],
    added: &Added,
) -> (Vec<Written>, Vec<Failure>, Vec<usize>) {
    let (pending, mut failures) = enqueue(producer, pc, records, added).await;
    let auth_watch = producer.state.auth_failed();
    let results = tokio::select! {
        results = delivered(pending) => results,
        reason = auth_watch => {
            // A credential that never worked: fail every record now instead of waiting for the timeout.
            for r in records {
                if !failures.iter().any(|f| f.index == r.index) {
                    failures.push(Failure::new(r.index, Some(RDKafkaErrorCode::Authentication), Disposition::User, &reason));
                }
            }
            return (Vec::new(), failures, Vec::new());
        }
    };
    let mut written = Vec::with_capacity(results.len());
    let mut batch_rejected = Vec::new();
    for (index, result) in results {
        match result {
            Ok(Ok(d)) => written.push(Written {
                index,
                partition: d.partition,
                offset: (d.offset >= 0).then_some(d.offset),
                timestamp: d.timestamp,
            }),
            Ok(Err((e, _))) => {
                let failure = refused(producer, pc, index, &e);
                if matches!(
                    failure.code,
                    Some(
                        RDKafkaErrorCode::MessageSizeTooLarge
                            | RDKafkaErrorCode::InvalidTimestamp
                            | RDKafkaErrorCode::InvalidRecord
                    )
                ) {
                    batch_rejected.push(index);
                }
                failures.push(failure);
            }
            Err(_) => failures.push(Failure::new(
                index,
                None,
                Disposition::Transient,
                "delivery report lost (producer closed)",
            )),
        }
    }
    (written, failures, batch_rejected)
}

/// Every record's delivery report, in enqueue order. Awaited one after the other: every record is already
/// with librdkafka, so this takes as long as the slowest, and needs no task per record (`join_all` over 100
/// records built a `FuturesOrdered` with a task per record and grew its output: 0.15 M instructions per
/// 100-record message).
async fn delivered(
    pending: Vec<(usize, DeliveryFuture)>,
) -> Vec<(usize, <DeliveryFuture as std::future::IntoFuture>::Output)> {
    let mut results = Vec::with_capacity(pending.len());
    for (index, report) in pending {
        results.push((index, report.await));
    }
    results
}

/// A record librdkafka reported as not written, classified.
fn refused(producer: &SharedProducer, pc: &ProduceConfig, index: usize, e: &KafkaError) -> Failure {
    // A credential that never worked explains every failure of this producer.
    if let Some(reason) = producer
        .state
        .auth_error()
        .filter(|_| !producer.state.ever_succeeded())
    {
        return Failure::new(
            index,
            Some(RDKafkaErrorCode::Authentication),
            Disposition::User,
            &reason,
        );
    }
    let code = e.rdkafka_error_code();
    let mut disposition = code.map_or(Disposition::Transient, classify_code);
    if code == Some(RDKafkaErrorCode::MessageSizeTooLarge) {
        disposition = Disposition::User;
    }
    let text = code.map_or_else(|| e.to_string(), |c| describe(c, &pc.topic));
    Failure::new(index, code, disposition, &text)
}

/// Hands every record to librdkafka, waiting (bounded by the delivery timeout) while its queue is full.
async fn enqueue(
    producer: &SharedProducer,
    pc: &ProduceConfig,
    records: &[&Record],
    added: &Added,
) -> (Vec<(usize, DeliveryFuture)>, Vec<Failure>) {
    let mut failures = Vec::new();
    let mut pending = Vec::with_capacity(records.len());
    let deadline = Instant::now() + Duration::from_millis(pc.delivery_timeout_ms);
    for r in records {
        let mut record = to_record(&pc.topic, r, added);
        loop {
            match producer.producer.send_result(record) {
                Ok(fut) => {
                    pending.push((r.index, fut));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    // Back-pressure: librdkafka's queue is full; let it drain.
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    let code = e.rdkafka_error_code();
                    let disposition = code.map_or(Disposition::Transient, classify_code);
                    let text = code.map_or_else(|| e.to_string(), |c| describe(c, &pc.topic));
                    failures.push(Failure::new(r.index, code, disposition, &text));
                    break;
                }
            }
        }
    }
    (pending, failures)
}

/// The librdkafka record of an input record.
fn to_record<'a>(topic: &'a str, r: &'a Record, added: &'a Added) -> FutureRecord<'a, [u8], [u8]> {
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
    if !r.headers.is_empty() || !added.is_empty() {
        let mut list = OwnedHeaders::new_with_capacity(r.headers.len() + added.len());
        for (key, value) in headers::of(r, added) {
            list = list.insert(Header {
                key,
                value: Some(value),
            });
        }
        record = record.headers(list);
    }
    if let Some(k) = &r.key {
        record = record.key(k.as_slice());
    }
    if let Some(v) = &r.value {
        record = record.payload(v.as_slice());
    }
    if let Some(p) = r.partition {
        record = record.partition(p);
    }
    if let Some(t) = r.timestamp {
        record = record.timestamp(t);
    }
    record
}
