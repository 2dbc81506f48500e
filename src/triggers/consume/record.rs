//! A Kafka record → the body of a data message (`value, key, partition, offset, topic, timestamp, headers`), and
//! the record's own bytes ([`RawRecord`]) while its message is in flight, for the dead-letter topic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use serde_json::{Value, json};

use super::pending::Position;

/// A record on its way into a data message: its place, its message body and, only when a dead-letter topic is
/// configured, its own bytes (kept until the message is confirmed, to be dead-lettered if it cannot be).
pub(super) type Batched = (Position, Value, Option<RawRecord>);

/// A record's key, value, headers and timestamp, exactly as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawRecord {
    pub(super) key: Option<Vec<u8>>,
    pub(super) value: Option<Vec<u8>>,
    /// In the record's order; a name may repeat; a value may be null.
    pub(super) headers: Vec<(String, Option<Vec<u8>>)>,
    /// Milliseconds since the epoch, when the record has a timestamp.
    pub(super) timestamp: Option<i64>,
}

impl RawRecord {
    /// A copy of `m`'s bytes.
    pub(super) fn of(m: &BorrowedMessage<'_>) -> Self {
        Self {
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default(),
            timestamp: m.timestamp().to_millis(),
        }
    }
}

/// `parseJson`: a JSON object or array becomes JSON; any other text (a number, `true`, `null`, a quoted string,
/// invalid JSON) stays the original string, so a value of `null` text is never mistaken for a tombstone.
fn parse_json_text(text: &str) -> Value {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return Value::String(text.to_owned());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// One record turned into the body of a data message.
pub(super) fn record_json(m: &BorrowedMessage<'_>, parse_json: bool) -> Value {
    let bytes = |b: Option<&[u8]>, parse: bool| -> Value {
        match b {
            None => Value::Null,
            Some(b) => match std::str::from_utf8(b) {
                Ok(text) if parse => parse_json_text(text),
                Ok(text) => Value::String(text.to_owned()),
                Err(_) => json!({ "base64": B64.encode(b) }),
            },
        }
    };
    let headers: Vec<Value> = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| json!([h.key, bytes(h.value, false)]))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "value": bytes(m.payload(), parse_json),
        "key": bytes(m.key(), false),
        // A string, as the original component's output metadata has it (Produce's `partition` too).
        "partition": m.partition().to_string(),
        "offset": m.offset(),
        "topic": m.topic(),
        "timestamp": m.timestamp().to_millis(),
        "headers": headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_json_turns_only_objects_and_arrays_into_json() {
        assert_eq!(
            parse_json_text(r#"{"orderId":1001,"amount":25.5}"#).to_string(),
            r#"{"orderId":1001,"amount":25.5}"#,
            "an object, its keys in the order they came"
        );
        assert_eq!(parse_json_text(" [1,2]"), json!([1, 2]));
        for text in [
            "123",
            "null",
            "true",
            r#""quoted""#,
            "{not json",
            "[1,",
            "",
            "plain",
        ] {
            assert_eq!(
                parse_json_text(text),
                Value::String(text.to_owned()),
                "{text:?}"
            );
        }
    }
}
