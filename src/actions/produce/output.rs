//! The outcome as the platform sees it: per partition written, one data message with where the records went
//! (`topicName, partition, errorCode, baseOffset, logAppendTime, logStartOffset, records`), split into
//! several when it would exceed the platform's message size limit.

use std::collections::{BTreeMap, VecDeque};

use futures_util::future::join_all;
use rdkafka::Timestamp;
use serde::{Serialize, Serializer};

use super::input::Record;
use super::producer::SharedProducer;
use super::send::Written;
use crate::contract::json::{self, WriteJson};
use crate::contract::{Confirm, Decimal, EmitError, Emitter};

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

/// The output object for a contiguous slice of one partition's records (its own `baseOffset`), serialized
/// in the order of `produce.out.json`. With `with_keys` false every record's `key` is `null` (a record whose
/// key alone is larger than the outgoing limit). Written straight to JSON: building a `Value` map per record
/// (seven allocations each) and serializing it was most of a 100-record message's output cost.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PartitionOutput<'a> {
    topic_name: &'a str,
    partition: Decimal,
    error_code: &'static str,
    base_offset: Decimal,
    log_append_time: Decimal,
    log_start_offset: Decimal,
    records: RecordsOutput<'a>,
}

impl<'a> PartitionOutput<'a> {
    fn new(
        topic: &'a str,
        records: &'a [Record],
        part: &PartitionWritten<'_>,
        slice: &'a [&'a Written],
        with_keys: bool,
    ) -> Self {
        let log_append = slice.iter().find_map(|w| match w.timestamp {
            Timestamp::LogAppendTime(t) => Some(t),
            _ => None,
        });
        Self {
            topic_name: topic,
            partition: Decimal(i64::from(part.partition)),
            error_code: "0",
            base_offset: Decimal(slice.iter().find_map(|w| w.offset).unwrap_or(-1)),
            log_append_time: Decimal(log_append.unwrap_or(-1)),
            log_start_offset: Decimal(part.low.unwrap_or(-1)),
            records: RecordsOutput {
                records,
                slice,
                with_keys,
            },
        }
    }
}

/// `records`: `{index, key, offset, timestamp}` per record of the slice.
struct RecordsOutput<'a> {
    records: &'a [Record],
    slice: &'a [&'a Written],
    with_keys: bool,
}

impl Serialize for RecordsOutput<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.slice.iter().map(|w| {
            RecordOutput {
                index: w.index,
                key: self
                    .records
                    .get(w.index)
                    .filter(|_| self.with_keys)
                    .map(reported_key),
                offset: w.offset,
                timestamp: w.timestamp.to_millis(),
            }
        }))
    }
}

/// One record's entry; a missing `key`, `offset` or `timestamp` is `null`.
impl WriteJson for PartitionOutput<'_> {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(br#"{"topicName":"#);
        json::str(out, self.topic_name)?;
        out.extend_from_slice(br#","partition":"#);
        json::decimal(out, self.partition.0);
        out.extend_from_slice(br#","errorCode":"#);
        json::str(out, self.error_code)?;
        out.extend_from_slice(br#","baseOffset":"#);
        json::decimal(out, self.base_offset.0);
        out.extend_from_slice(br#","logAppendTime":"#);
        json::decimal(out, self.log_append_time.0);
        out.extend_from_slice(br#","logStartOffset":"#);
        json::decimal(out, self.log_start_offset.0);
        out.extend_from_slice(br#","records":["#);
        let r = &self.records;
        for (i, w) in r.slice.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(br#"{"index":"#);
            json::int(out, w.index);
            out.extend_from_slice(br#","key":"#);
            match r.records.get(w.index).filter(|_| r.with_keys) {
                Some(record) => match &record.key_json {
                    serde_json::Value::String(k) => json::str(out, k)?,
                    other => json::value(out, other)?,
                },
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(br#","offset":"#);
            json::opt_int(out, w.offset);
            out.extend_from_slice(br#","timestamp":"#);
            json::opt_int(out, w.timestamp.to_millis());
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }

    fn size_hint(&self) -> usize {
        160 + self.records.slice.len() * 72
    }
}

#[derive(Serialize)]
struct RecordOutput<K> {
    index: usize,
    key: Option<K>,
    offset: Option<i64>,
    timestamp: Option<i64>,
}

/// The key a record's report shows: the input's key as given (`null` when it had none).
fn reported_key(record: &Record) -> impl Serialize + '_ {
    &record.key_json
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
        let out = PartitionOutput::new(topic, records, part, slice, true);
        match emitter.data_send_json(&out).await {
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
                let out = PartitionOutput::new(topic, records, part, slice, false);
                confirms.push(emitter.data_send_json(&out).await?);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
