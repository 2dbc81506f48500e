//! A Kafka record → the body of a data message (`value, key, partition, offset, topic, timestamp, headers`), and
//! the record's own bytes ([`RawRecord`]) while its message is in flight, for the dead-letter topic.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use rdkafka::message::{BorrowedMessage, Headers, Message};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::pending::Position;
use crate::contract::Decimal;
use crate::contract::json::{self, WriteJson};

/// A record on its way into a data message: its place, its message body and, only when a dead-letter topic is
/// configured, its own bytes (kept until the message is confirmed, to be dead-lettered if it cannot be).
pub(super) type Batched = (Position, RecordBody, Option<RawRecord>);

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
fn parse_json_text(text: &str) -> Payload {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return Payload::Text(text.to_owned());
    }
    serde_json::from_str(text).map_or_else(|_| Payload::Text(text.to_owned()), Payload::Json)
}

/// A key, value or header value as the data message shows it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Payload {
    /// No bytes (a tombstone, no key, a null header value).
    Null,
    /// UTF-8 text.
    Text(String),
    /// Text that `parseJson` read as a JSON object or array.
    Json(Value),
    /// Bytes that are not UTF-8: `{"base64": …}`.
    Base64(Vec<u8>),
}

impl Payload {
    fn of(b: Option<&[u8]>, parse: bool) -> Self {
        match b {
            None => Self::Null,
            Some(b) => match std::str::from_utf8(b) {
                Ok(text) if parse => parse_json_text(text),
                Ok(text) => Self::Text(text.to_owned()),
                Err(_) => Self::Base64(b.to_vec()),
            },
        }
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => s.serialize_unit(),
            Self::Text(t) => s.serialize_str(t),
            Self::Json(v) => v.serialize(s),
            Self::Base64(b) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("base64", &B64.encode(b))?;
                map.end()
            }
        }
    }
}

/// The body of a data message for one record: `{value, key, partition, offset, topic, timestamp, headers}`,
/// serialized in that order without a `Value` tree (the emit path's largest cost per record was building one).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RecordBody {
    pub(super) value: Payload,
    pub(super) key: Payload,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) topic: Arc<str>,
    pub(super) timestamp: Option<i64>,
    /// `[name, value]` pairs in the record's order.
    pub(super) headers: Vec<(String, Payload)>,
}

impl Serialize for RecordBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(7))?;
        map.serialize_entry("value", &self.value)?;
        map.serialize_entry("key", &self.key)?;
        // A string, as the original component's output metadata has it (Produce's `partition` too).
        map.serialize_entry("partition", &Decimal(i64::from(self.partition)))?;
        map.serialize_entry("offset", &self.offset)?;
        map.serialize_entry("topic", &*self.topic)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        map.serialize_entry("headers", &self.headers)?;
        map.end()
    }
}

impl Payload {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Self::Null => {
                out.extend_from_slice(b"null");
                Ok(())
            }
            Self::Text(t) => json::str(out, t),
            Self::Json(v) => json::value(out, v),
            Self::Base64(_) => json::value(out, self),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Text(t) => t.len(),
            Self::Base64(b) => b.len() * 4 / 3,
            Self::Null | Self::Json(_) => 0,
        }
    }
}

impl WriteJson for RecordBody {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(br#"{"value":"#);
        self.value.write_json(out)?;
        out.extend_from_slice(br#","key":"#);
        self.key.write_json(out)?;
        out.extend_from_slice(br#","partition":"#);
        json::decimal(out, i64::from(self.partition));
        out.extend_from_slice(br#","offset":"#);
        json::int(out, self.offset);
        out.extend_from_slice(br#","topic":"#);
        json::str(out, &self.topic)?;
        out.extend_from_slice(br#","timestamp":"#);
        json::opt_int(out, self.timestamp);
        out.extend_from_slice(br#","headers":["#);
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            json::str(out, name)?;
            out.push(b',');
            value.write_json(out)?;
            out.push(b']');
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }

    fn size_hint(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 8)
            .sum();
        self.value.len() + self.key.len() + self.topic.len() + headers + 128
    }
}

/// The body of a batch's data message: `{count, records}`.
pub(super) struct BatchBody<'a> {
    pub(super) records: &'a [RecordBody],
}

impl Serialize for BatchBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("count", &self.records.len())?;
        map.serialize_entry("records", self.records)?;
        map.end()
    }
}

impl WriteJson for BatchBody<'_> {
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(br#"{"count":"#);
        json::int(out, self.records.len());
        out.extend_from_slice(br#","records":["#);
        for (i, r) in self.records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            r.write_json(out)?;
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }

    fn size_hint(&self) -> usize {
        self.records.iter().map(WriteJson::size_hint).sum::<usize>() + 32
    }
}

/// One record turned into the body of a data message; `topic` is the record's topic, shared by the records of a
/// member (one allocation per topic, not per record).
pub(super) fn record_body(
    m: &BorrowedMessage<'_>,
    topic: &Arc<str>,
    parse_json: bool,
) -> RecordBody {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_owned(), Payload::of(h.value, false)))
                .collect()
        })
        .unwrap_or_default();
    RecordBody {
        value: Payload::of(m.payload(), parse_json),
        key: Payload::of(m.key(), false),
        partition: m.partition(),
        offset: m.offset(),
        topic: Arc::clone(topic),
        timestamp: m.timestamp().to_millis(),
        headers,
    }
}

#[cfg(test)]
mod tests;
