use rdkafka::Timestamp;
use serde_json::{Value, json};

use super::*;
use crate::actions::produce::input::parse_input;

/// The output as it was built before it was serialized from typed structs: a `Value` map per record and per
/// partition. The typed output must give the same bytes.
fn value_output(
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

fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn written(index: usize, partition: i32, offset: Option<i64>, timestamp: Timestamp) -> Written {
    Written {
        index,
        partition,
        offset,
        timestamp,
    }
}

/// `written` grouped as `by_partition` groups them, with the low watermark `low`.
fn part(partition: i32, low: Option<i64>, written: &[Written]) -> PartitionWritten<'_> {
    let mut refs: Vec<&Written> = written.iter().collect();
    in_report_order(partition, &mut refs);
    PartitionWritten {
        partition,
        low,
        written: refs,
    }
}

fn typed_json(
    topic: &str,
    records: &[Record],
    part: &PartitionWritten<'_>,
    slice: &[&Written],
    with_keys: bool,
) -> String {
    let out = PartitionOutput::new(topic, records, part, slice, with_keys);
    serde_json::to_string(&out).unwrap()
}

/// Every slice (whole, each half, each record, none) with and without keys: the same bytes as the `Value`.
fn assert_same_bytes(topic: &str, records: &[Record], part: &PartitionWritten<'_>) {
    let all = part.written.as_slice();
    let mid = all.len() / 2;
    let mut slices = vec![all, &all[..mid], &all[mid..], &all[..0]];
    slices.extend(all.chunks(1));
    for slice in slices {
        for with_keys in [true, false] {
            let value = value_output(topic, records, part, slice, with_keys);
            assert_eq!(
                typed_json(topic, records, part, slice, with_keys),
                serde_json::to_string(&value).unwrap(),
            );
            let mut written = Vec::new();
            PartitionOutput::new(topic, records, part, slice, with_keys)
                .write_json(&mut written)
                .unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string(&value).unwrap(),
                "the output's own writer"
            );
        }
    }
}

#[test]
fn unknown_offsets_are_null_last_and_not_the_base() {
    let records = parse_input(&json!({"messages": [
        {"key": "a", "value": "0"}, {"key": "b", "value": "1"}, {"key": "c", "value": "2"}
    ]}))
    .unwrap();
    let ts = Timestamp::CreateTime(7);
    let written = [
        written(0, 1, None, ts),
        written(1, 1, Some(12), ts),
        written(2, 1, Some(11), ts),
    ];
    let part = part(1, Some(3), &written);
    let out = serde_json::to_value(PartitionOutput::new(
        "t",
        &records,
        &part,
        &part.written,
        true,
    ))
    .unwrap();
    assert_eq!(out["baseOffset"], json!("11"));
    assert_eq!(
        out["records"],
        json!([
            {"index": 2, "key": "c", "offset": 11, "timestamp": 7},
            {"index": 1, "key": "b", "offset": 12, "timestamp": 7},
            {"index": 0, "key": "a", "offset": null, "timestamp": 7}
        ])
    );
    let only_unknown = PartitionOutput::new("t", &records, &part, &part.written[2..], true);
    assert_eq!(
        serde_json::to_value(only_unknown).unwrap()["baseOffset"],
        json!("-1")
    );
    assert_same_bytes("t", &records, &part);
}

#[test]
fn typed_output_is_the_value_output_byte_for_byte() {
    let records = parse_input(&json!({"messages": [
        {"key": {"base64": "AAEC/w=="}, "value": "binary key"},
        {"key": 42, "value": "number key"},
        {"key": {"id": 1, "z": [1.5, true, null], "a": "é \" \\ \n 😀 </"}, "value": "object key"},
        {"value": "no key"},
        {"key": null, "value": null},
        {"key": "quote \" backslash \\ control \u{1} tab \t", "value": "escapes"},
        {"key": -7.25e-3, "value": "float key"},
        {"key": ["a", 1], "value": "array key", "partition": 3, "timestamp": 1_700_000_000_000_i64}
    ]}))
    .unwrap();
    let create = Timestamp::CreateTime(1_700_000_000_123);
    let append = Timestamp::LogAppendTime(1_700_000_000_456);
    // Offsets known and unknown (null), log-append, create and missing timestamps, an index past the input
    // (no record: key null), a partition number and offsets beyond 32 bits.
    let written = [
        written(0, 2, Some(17), create),
        written(1, 2, None, append),
        written(2, 2, Some(5_000_000_000), Timestamp::NotAvailable),
        written(3, 2, Some(18), create),
        written(4, 2, None, create),
        written(5, 2, Some(16), append),
        written(6, 2, Some(19), create),
        written(7, 2, Some(20), Timestamp::NotAvailable),
        written(9, 2, Some(21), create),
    ];
    for (topic, partition, low) in [
        ("orders", 2, Some(0)),
        ("topic.with-\"odd\"_name é", i32::MAX, None),
        ("t", 0, Some(4_999_999_999)),
    ] {
        assert_same_bytes(topic, &records, &part(partition, low, &written));
    }
    // Every offset unknown: baseOffset -1, every record null.
    let unknown: Vec<Written> = written
        .iter()
        .map(|w| Written {
            offset: None,
            ..w.clone()
        })
        .collect();
    assert_same_bytes("orders", &records, &part(2, Some(3), &unknown));
}
