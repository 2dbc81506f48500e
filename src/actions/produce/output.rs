//! The outcome as the platform sees it: per partition written, one data message with where the records went
//! (`topicName, partition, errorCode, baseOffset, logAppendTime, logStartOffset, records`), split into
//! several when it would exceed the platform's message size limit.

use std::collections::{BTreeMap, VecDeque};

use futures_util::future::join_all;
use rdkafka::Timestamp;
use serde_json::Value;

use super::input::Record;
use super::producer::SharedProducer;
use super::send::Written;
use crate::contract::{Confirm, EmitError, Emitter, new_message};

/// The records written to one partition, in offset order, with the partition's low watermark.
pub(super) struct PartitionWritten<'a> {
    partition: i32,
    low: Option<i64>,
    written: Vec<&'a Written>,
}

/// The records written, grouped by partition, in partition order.
pub(super) async fn by_partition<'a>(
    producer: &SharedProducer,
    topic: &str,
    written: &'a [Written],
) -> Vec<PartitionWritten<'a>> {
    let mut groups: BTreeMap<i32, Vec<&Written>> = BTreeMap::new();
    for w in written {
        groups.entry(w.partition).or_default().push(w);
    }
    let lows = join_all(groups.keys().map(|&p| producer.low_watermark(topic, p))).await;
    groups
        .into_iter()
        .zip(lows)
        .map(|((partition, mut written), low)| {
            written.sort_by_key(|w| w.offset);
            PartitionWritten {
                partition,
                low,
                written,
            }
        })
        .collect()
}

/// The output object for a contiguous slice of one partition's records (its own `baseOffset`). With
/// `with_keys` false every record's `key` is `null` (a record whose key alone is larger than the outgoing limit).
fn partition_output(
    topic: &str,
    records: &[Record],
    part: &PartitionWritten<'_>,
    slice: &[&Written],
    with_keys: bool,
) -> Value {
    let base = slice.first().map_or(-1, |w| w.offset);
    let log_append = slice
        .iter()
        .find_map(|w| match w.timestamp {
            Timestamp::LogAppendTime(t) => Some(t),
            _ => None,
        })
        .map_or_else(|| "-1".to_owned(), |t| t.to_string());
    // Built as maps directly: `json!` runs every interpolated `Value` through a serializer (a deep
    // copy), which was a third of the instructions of a 100-record message.
    let recs: Vec<Value> = slice
        .iter()
        .map(|w| {
            let key = records
                .get(w.index)
                .filter(|_| with_keys)
                .map_or(Value::Null, |r| r.key_json.clone());
            object([
                ("index", Value::from(w.index)),
                ("key", key),
                ("offset", Value::from(w.offset)),
                (
                    "timestamp",
                    w.timestamp.to_millis().map_or(Value::Null, Value::from),
                ),
            ])
        })
        .collect();
    object([
        ("topicName", Value::from(topic)),
        ("partition", Value::from(part.partition.to_string())),
        ("errorCode", Value::from("0")),
        ("baseOffset", Value::from(base.to_string())),
        ("logAppendTime", Value::from(log_append)),
        (
            "logStartOffset",
            Value::from(part.low.map_or_else(|| "-1".to_owned(), |l| l.to_string())),
        ),
        ("records", Value::Array(recs)),
    ])
}

/// Sends one partition's output as data messages, in offset order, without waiting for their confirms. One
/// message when it fits the outgoing size limit; otherwise contiguous slices that each fit, every one with its
/// own `baseOffset`: records Kafka has accepted never turn into an error or a rebound (which would write them
/// again) because their report is large.
pub(super) async fn send_partition(
    emitter: &Emitter,
    topic: &str,
    records: &[Record],
    part: &PartitionWritten<'_>,
    confirms: &mut Vec<Confirm>,
) -> Result<(), EmitError> {
    let mut todo: VecDeque<&[&Written]> = VecDeque::from([part.written.as_slice()]);
    while let Some(slice) = todo.pop_front() {
        let out = partition_output(topic, records, part, slice, true);
        match emitter.data_send(new_message(out)).await {
            Ok(c) => confirms.push(c),
            Err(EmitError::TooLarge { size, limit }) if slice.len() > 1 => {
                // As many slices as the size says, with a tenth to spare; a slice that still does not fit is
                // split again.
                let parts = (size.saturating_mul(11) / limit.max(1) / 10 + 1).clamp(2, slice.len());
                let len = slice.len().div_ceil(parts);
                for chunk in slice.chunks(len).rev() {
                    todo.push_front(chunk);
                }
            }
            Err(EmitError::TooLarge { .. }) => {
                tracing::warn!(
                    partition = part.partition,
                    "A written record's report is larger than the outgoing limit with its key; reported without it."
                );
                let out = partition_output(topic, records, part, slice, false);
                confirms.push(emitter.data_send(new_message(out)).await?);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A JSON object of `pairs`, without the serializer round trip that `json!` makes for interpolated values.
fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}
