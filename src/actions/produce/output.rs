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

/// The records written to one partition, in offset order (unknown offsets last), with the partition's low
/// watermark.
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
            in_report_order(partition, &mut written);
            PartitionWritten {
                partition,
                low,
                written,
            }
        })
        .collect()
}

/// Known offsets in order, then the records written at an unknown offset, in input order (with a warning).
fn in_report_order(partition: i32, written: &mut [&Written]) {
    written.sort_by_key(|w| (w.offset.is_none(), w.offset, w.index));
    let unknown = written.iter().filter(|w| w.offset.is_none()).count();
    if unknown > 0 {
        tracing::warn!(
            partition,
            records = unknown,
            "Kafka confirmed records without their offsets (a retried request it had already written); reported with offset null."
        );
    }
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
    let base = slice.iter().find_map(|w| w.offset).unwrap_or(-1);
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
                ("offset", w.offset.map_or(Value::Null, Value::from)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::produce::input::parse_input;
    use serde_json::json;

    #[test]
    fn unknown_offsets_are_null_last_and_not_the_base() {
        let records = parse_input(&json!({"messages": [
            {"key": "a", "value": "0"}, {"key": "b", "value": "1"}, {"key": "c", "value": "2"}
        ]}))
        .unwrap();
        let ts = Timestamp::CreateTime(7);
        let written = [
            Written {
                index: 0,
                partition: 1,
                offset: None,
                timestamp: ts,
            },
            Written {
                index: 1,
                partition: 1,
                offset: Some(12),
                timestamp: ts,
            },
            Written {
                index: 2,
                partition: 1,
                offset: Some(11),
                timestamp: ts,
            },
        ];
        let mut refs: Vec<&Written> = written.iter().collect();
        in_report_order(1, &mut refs);
        let part = PartitionWritten {
            partition: 1,
            low: Some(3),
            written: refs,
        };
        let out = partition_output("t", &records, &part, &part.written, true);
        assert_eq!(out["baseOffset"], json!("11"));
        assert_eq!(
            out["records"],
            json!([
                {"index": 2, "key": "c", "offset": 11, "timestamp": 7},
                {"index": 1, "key": "b", "offset": 12, "timestamp": 7},
                {"index": 0, "key": "a", "offset": null, "timestamp": 7}
            ])
        );
        let only_unknown = partition_output("t", &records, &part, &part.written[2..], true);
        assert_eq!(only_unknown["baseOffset"], json!("-1"));
    }
}
