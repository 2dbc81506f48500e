//! The data message envelope (`{id, body, headers, attachments, metadata}`), in two forms that give the same
//! bytes: [`new_message`], a `Value` a runtime may edit, and [`RawMessage`], the same message already serialized
//! from a typed body (no `Value` tree is built: what a function emitting many messages sends).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::json::{self, WriteJson};

/// A data message as the reference library's `newMessageWithBody` builds it: a fresh UUID `id` (which becomes the
/// message's `messageId` header, PROTOCOL.md 3.2 and Q10), the body, and empty `headers`, `attachments` and
/// `metadata`. Every data message gets its own `id`: a next step on the reference runtime acks and deduplicates by
/// `messageId` (Q1), so two messages sharing one could leave one of them unacked.
#[must_use]
pub fn new_message(body: Value) -> Value {
    message_with_id(new_id(), body)
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn message_with_id(id: String, body: Value) -> Value {
    let mut m = serde_json::Map::with_capacity(5);
    m.insert("id".into(), Value::String(id));
    m.insert("body".into(), body);
    m.insert("headers".into(), Value::Object(serde_json::Map::new()));
    m.insert("attachments".into(), Value::Object(serde_json::Map::new()));
    m.insert("metadata".into(), Value::Object(serde_json::Map::new()));
    Value::Object(m)
}

/// A data message that is already JSON: the bytes `serde_json` writes for [`new_message`] of the same body and
/// `id` (same keys, same order), and its `id`. A runtime that needs to edit the message (passthrough, a body in
/// the object store) turns it into the `Value` with [`RawMessage::to_value`].
#[derive(Debug, Clone)]
pub struct RawMessage {
    id: String,
    json: Vec<u8>,
}

impl RawMessage {
    /// The data message of `body`, with a fresh `id` (see [`new_message`]).
    ///
    /// # Errors
    /// `body`'s `Serialize` failed (a map with non-string keys, a custom error).
    pub fn new<T: Serialize + ?Sized>(body: &T) -> Result<Self, serde_json::Error> {
        Self::with_id(new_id(), body)
    }

    /// The data message of a body that writes its own JSON ([`WriteJson`]): the same bytes as [`RawMessage::new`].
    ///
    /// # Errors
    /// As the body's [`WriteJson::write_json`].
    pub fn of_json<T: WriteJson + ?Sized>(body: &T) -> Result<Self, serde_json::Error> {
        let id = new_id();
        let mut json = Vec::with_capacity(128 + body.size_hint());
        json.extend_from_slice(b"{\"id\":");
        json::str(&mut json, &id)?;
        json.extend_from_slice(b",\"body\":");
        body.write_json(&mut json)?;
        json.extend_from_slice(br#","headers":{},"attachments":{},"metadata":{}}"#);
        Ok(Self { id, json })
    }

    fn with_id<T: Serialize + ?Sized>(id: String, body: &T) -> Result<Self, serde_json::Error> {
        let mut json = Vec::with_capacity(256);
        let envelope = Envelope {
            id: &id,
            body,
            headers: Empty,
            attachments: Empty,
            metadata: Empty,
        };
        serde_json::to_writer(&mut json, &envelope)?;
        Ok(Self { id, json })
    }

    /// The message's `id`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The message's JSON bytes.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The message as a `Value` (equal to [`new_message`] of the body, with this `id`).
    ///
    /// # Errors
    /// Never for a message built here (its bytes are JSON).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.json)
    }
}

/// The envelope's fields in [`new_message`]'s order.
#[derive(serde::Serialize)]
struct Envelope<'a, T: ?Sized> {
    id: &'a str,
    body: &'a T,
    headers: Empty,
    attachments: Empty,
    metadata: Empty,
}

/// `{}`.
struct Empty;

impl Serialize for Empty {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_map(Some(0))?.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn raw_messages_are_the_bytes_of_the_value_messages() {
        let bodies = [
            json!({}),
            json!(null),
            json!([]),
            json!({"topicName": "t", "records": [{"index": 0, "key": null, "offset": null, "timestamp": 7}]}),
            json!({"s": "quote \" backslash \\ newline \n tab \t nul \u{0} é 😀 </script>", "n": -1, "u": u64::MAX}),
            json!({"f": 1.5, "e": 1e300, "small": 5e-324, "neg": -0.0, "arr": [1, "2", {"3": [true, false]}]}),
            json!({"z": 1, "a": 2, "m": {"y": 1, "b": 2}}),
        ];
        for body in bodies {
            let raw = RawMessage::new(&body).unwrap();
            let value = message_with_id(raw.id().to_owned(), body.clone());
            assert_eq!(
                String::from_utf8_lossy(raw.json()),
                serde_json::to_string(&value).unwrap(),
                "{body}"
            );
            assert_eq!(raw.to_value().unwrap(), value);
        }
    }

    /// A body whose own writer is serde_json's, to check the envelope `of_json` writes around it.
    #[derive(serde::Serialize)]
    struct Plain(Value);

    impl WriteJson for Plain {
        fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
            json::value(out, &self.0)
        }
    }

    #[test]
    fn messages_of_bodies_that_write_their_own_json_are_the_same_bytes() {
        for body in [json!({}), json!({"s": "quote \" é", "n": [1, null]})] {
            let raw = RawMessage::of_json(&Plain(body.clone())).unwrap();
            let value = message_with_id(raw.id().to_owned(), body);
            assert_eq!(
                String::from_utf8_lossy(raw.json()),
                serde_json::to_string(&value).unwrap()
            );
        }
    }

    #[test]
    fn every_message_gets_its_own_id() {
        let (a, b) = (
            RawMessage::new(&json!({})).unwrap(),
            RawMessage::new(&json!({})).unwrap(),
        );
        assert_ne!(a.id(), b.id());
        assert_eq!(
            uuid::Uuid::parse_str(a.id())
                .map(|u| u.get_version_num())
                .ok(),
            Some(4)
        );
        assert_ne!(new_message(json!({}))["id"], new_message(json!({}))["id"]);
    }
}

/// A number written as a JSON string of its decimal digits (`"17"`), without an intermediate `String`: the
/// original component's output metadata gives partitions and offsets as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal(pub i64);

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}
