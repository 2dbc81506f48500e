//! Produce input (`{"messages":[{key?, value, headers?, partition?, timestamp?}]}`) → records to send.
//!
//! Two readings with one result: [`parse_input`] validates a `Value` against the schema and converts it;
//! [`parse_message_text`] reads the message's JSON text straight into records (`typed`) and leaves to
//! `parse_input` whatever that reading does not accept, so that problems are reported the one way.

mod compact;
#[cfg(test)]
mod differential;
mod fields;
mod typed;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use crate::schema;

/// One input record, ready to send.
#[derive(Debug, PartialEq)]
pub struct Record {
    /// Position in `messages`.
    pub index: usize,
    /// Key bytes (`None`: no key).
    pub key: Option<Vec<u8>>,
    /// The key as given, for the output.
    pub key_json: Value,
    /// Value bytes (`None`: a tombstone).
    pub value: Option<Vec<u8>>,
    /// Record headers in order (a name may repeat).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Explicit partition.
    pub partition: Option<i32>,
    /// Explicit timestamp (ms).
    pub timestamp: Option<i64>,
}

impl Record {
    /// Bytes of key, value and headers (what `messageMaxBytes` limits).
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// Bytes of a key or value: strings as UTF-8, `{"base64": …}` decoded, anything else as compact JSON.
/// `path` (e.g. `/messages/3/key`) is only formatted for a problem.
fn payload_bytes(
    v: &Value,
    path: impl Fn() -> String,
    problems: &mut Vec<String>,
) -> Option<Vec<u8>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Object(o) if o.len() == 1 && o.contains_key("base64") => match o.get("base64") {
            Some(Value::String(b)) => match B64.decode(b.trim()) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    problems.push(format!("{}/base64: not valid base64 ({e})", path()));
                    None
                }
            },
            _ => {
                problems.push(format!("{}/base64: must be a string", path()));
                None
            }
        },
        // `Display` of a `Value` is its compact JSON and cannot fail.
        other => Some(other.to_string().into_bytes()),
    }
}

/// A non-negative integer given as a JSON number or as its decimal digits in a string (`"2"`), as the original
/// component's client library accepted both (the schema has refused anything else), converted to `T`; one that
/// does not fit is a problem at `path`, never silently dropped.
fn bounded_int<T: TryFrom<u64>>(
    v: &Value,
    path: impl Fn() -> String,
    problems: &mut Vec<String>,
) -> Option<T> {
    let parsed = match v {
        Value::String(s) => s.parse::<u64>().ok(),
        other => other.as_u64(),
    };
    match parsed.and_then(|n| T::try_from(n).ok()) {
        Some(n) => Some(n),
        None => {
            problems.push(format!("{}: {v} is too large", path()));
            None
        }
    }
}

/// Validates against `schemas/produce.in.json` and converts; every problem is listed with its JSON path.
///
/// # Errors
/// Every problem, each with its JSON path.
pub fn parse_input(body: &Value) -> Result<Vec<Record>, Vec<String>> {
    let violations = schema::validate_produce_input(body);
    if !violations.is_empty() {
        return Err(violations.iter().map(ToString::to_string).collect());
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let mut problems = Vec::new();
    let records: Vec<Record> = messages
        .iter()
        .enumerate()
        .map(|(index, m)| parse_record(index, m, &mut problems))
        .collect();
    if problems.is_empty() {
        Ok(records)
    } else {
        Err(problems)
    }
}

/// Why a message text gave no records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    /// The text is not JSON a `serde_json::Value` parse accepts (the parser's error). The runtime leaves the
    /// body's strict check to Produce ([`crate::contract::Execution::text`]): such a message is rejected as the
    /// runtime rejects any content that is not JSON, not answered with an error.
    NotJson(String),
    /// JSON, but not valid Produce input: every problem, each with its JSON path (as [`parse_input`]).
    Invalid(Vec<String>),
}

/// The records of the `body` of a message given as its JSON text (the platform's plaintext, `{"body": …, …}`):
/// the same result as [`parse_input`] on that body, records or problems, when the text is JSON. Typed straight
/// from the text when the input is valid; anything else goes through [`parse_input`].
///
/// # Errors
/// [`Unread`]: not JSON, or the problems.
pub fn read_message_text(text: &[u8]) -> Result<Vec<Record>, Unread> {
    if let Some(records) = typed_records(text) {
        return Ok(records);
    }
    match serde_json::from_slice::<Value>(text) {
        Ok(msg) => parse_input(msg.get("body").unwrap_or(&Value::Null)).map_err(Unread::Invalid),
        Err(e) => Err(Unread::NotJson(e.to_string())),
    }
}

/// [`read_message_text`] with text that is not JSON said as a problem of the whole input (the form
/// [`parse_input`] gives, for the differential tests).
///
/// # Errors
/// Every problem, each with its JSON path (as [`parse_input`]).
pub fn parse_message_text(text: &[u8]) -> Result<Vec<Record>, Vec<String>> {
    read_message_text(text).map_err(|unread| match unread {
        Unread::Invalid(problems) => problems,
        Unread::NotJson(e) => vec![format!("/: the message is not JSON ({e})")],
    })
}

/// The typed reading of [`parse_message_text`] alone: the records when it accepts the input (exactly those
/// [`parse_input`] gives), `None` when it leaves the input to [`parse_input`]. Public for the differential tests.
pub fn typed_records(text: &[u8]) -> Option<Vec<Record>> {
    typed::records(text)
}

/// One message (already schema-valid) → a record; problems are added with their paths.
fn parse_record(index: usize, m: &Value, problems: &mut Vec<String>) -> Record {
    let key_json = m.get("key").cloned().unwrap_or(Value::Null);
    let key = payload_bytes(&key_json, || format!("/messages/{index}/key"), problems);
    let value = payload_bytes(
        m.get("value").unwrap_or(&Value::Null),
        || format!("/messages/{index}/value"),
        problems,
    );
    let partition = m
        .get("partition")
        .and_then(|v| bounded_int::<i32>(v, || format!("/messages/{index}/partition"), problems));
    // Kafka timestamps are signed 64-bit milliseconds; a larger one must not silently become "now".
    let timestamp = m
        .get("timestamp")
        .and_then(|v| bounded_int::<i64>(v, || format!("/messages/{index}/timestamp"), problems));
    Record {
        index,
        key,
        key_json,
        value,
        headers: headers(m.get("headers")),
        partition,
        timestamp,
    }
}

/// Headers as an object (`{"name": "value"}`) or as pairs (`[["name", "value"], …]`, names may repeat).
fn headers(v: Option<&Value>) -> Vec<(String, Vec<u8>)> {
    match v {
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().unwrap_or_default().as_bytes().to_vec(),
                )
            })
            .collect(),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .filter_map(|p| {
                let name = p.get(0)?.as_str()?;
                let value = p.get(1)?.as_str()?;
                Some((name.to_owned(), value.as_bytes().to_vec()))
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_conversion() {
        let recs = parse_input(&json!({"messages": [
            {"key": "k", "value": {"a": 1}, "headers": [["h", "1"], ["h", "2"]]},
            {"value": {"base64": "AAEC"}, "partition": 2, "timestamp": 1000},
            {"value": null}
        ]}))
        .unwrap();
        assert_eq!(recs[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(recs[0].value.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(recs[0].headers.len(), 2);
        assert_eq!(recs[1].value.as_deref(), Some(&[0u8, 1, 2][..]));
        assert_eq!(
            (recs[1].partition, recs[1].timestamp),
            (Some(2), Some(1000))
        );
        assert!(recs[2].value.is_none(), "null value is a tombstone");
        let errs = parse_input(&json!({"messages": [{"value": {"base64": "@@"}}]})).unwrap_err();
        assert!(errs[0].starts_with("/messages/0/value/base64"), "{errs:?}");
        let errs = parse_input(
            &json!({"messages": [{"value": "v", "timestamp": 9_223_372_036_854_775_808_u64}]}),
        )
        .unwrap_err();
        assert_eq!(
            errs,
            ["/messages/0/timestamp: 9223372036854775808 is too large"]
        );
    }

    #[test]
    fn partition_and_timestamp_as_numeric_strings() {
        let recs = parse_input(&json!({"messages": [
            {"value": "v", "partition": "2", "timestamp": "1700000000000"}
        ]}))
        .unwrap();
        assert_eq!(
            (recs[0].partition, recs[0].timestamp),
            (Some(2), Some(1_700_000_000_000))
        );
        // Anything else stays a validation error naming the path.
        for (field, bad) in [
            ("partition", json!("two")),
            ("partition", json!("-1")),
            ("partition", json!(" 2")),
            ("timestamp", json!("1.5e12")),
            ("timestamp", json!("")),
            ("partition", json!(1.5)),
        ] {
            let mut m = json!({"value": "v"});
            m[field] = bad.clone();
            let errs = parse_input(&json!({ "messages": [m] })).unwrap_err();
            assert!(
                errs.iter()
                    .any(|e| e.starts_with(&format!("/messages/0/{field}"))),
                "{field}={bad}: {errs:?}"
            );
        }
        // Digits that do not fit are refused, not dropped.
        let errs = parse_input(&json!({"messages": [
            {"value": "v", "partition": "2147483648", "timestamp": "99999999999999999999"}
        ]}))
        .unwrap_err();
        assert_eq!(
            errs,
            [
                r#"/messages/0/partition: "2147483648" is too large"#,
                r#"/messages/0/timestamp: "99999999999999999999" is too large"#
            ]
        );
    }
}
