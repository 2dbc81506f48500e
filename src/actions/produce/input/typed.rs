//! The typed reading of Produce input: the message's JSON text (`{"body": {"messages": [...]}, ...}`) straight
//! into records, with no `Value` tree, strings borrowed from the text where they have no escapes.
//!
//! It accepts only input that the schema accepts and that converts without a problem, and gives exactly the
//! records [`super::parse_input`] gives for it. Everything else (wrong types, a missing `value`, a repeated key,
//! invalid base64, a number out of range or not a plain non-negative integer, ...) makes it give up with `None`,
//! and the caller reads the input as a `Value` and validates it, so that invalid input gets the schema's own
//! problem list. Fields it does not use are checked as a `Value` parse checks them, not built
//! ([`crate::contract::json::Checked`]): the runtime leaves the body's check to this reading
//! ([`crate::contract::Execution::text`]), so whatever it accepts is JSON a `Value` parse accepts.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::Record;
use super::compact::{Compact, Keys, Text, not_typed, write_json, write_rest};
use super::fields::{Digits, Headers};
use crate::contract::json::Checked;

/// The records of the message text's `body`, or `None` where the typed reading gives up.
pub(super) fn records(text: &[u8]) -> Option<Vec<Record>> {
    // UTF-8 checked once for the whole text, not string by string.
    let text = std::str::from_utf8(text).ok()?;
    let body = serde_json::from_str::<Message<'_>>(text).ok()?.0;
    // Sized up front (a collect into `Option<Vec>` grows it step by step, copying the records each time).
    let mut records = Vec::with_capacity(body.len());
    for (index, entry) in body.into_iter().enumerate() {
        records.push(entry.into_record(index)?);
    }
    Some(records)
}

/// Reads an object with `visit_map` only (a derived struct would also take an array of its fields).
macro_rules! object_visitor {
    ($name:ident) => {
        impl<'de> Deserialize<'de> for $name<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map(Of::<$name<'de>>(std::marker::PhantomData))
            }
        }
    };
}

/// The visitor of an object type (its `visit_map` is the type's `from_map`).
struct Of<T>(std::marker::PhantomData<T>);

/// A type read from a JSON object's entries.
trait FromMap<'de>: Sized {
    const EXPECTING: &'static str;
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

impl<'de, T: FromMap<'de>> Visitor<'de> for Of<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_map(map)
    }
}

/// The whole message: only its `body` (the `messages` of it).
struct Message<'de>(Vec<Entry<'de>>);
object_visitor!(Message);

impl<'de> FromMap<'de> for Message<'de> {
    const EXPECTING: &'static str = "a JSON object";

    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut body = None;
        while let Some(key) = map.next_key_seed(Text)? {
            if key == "body" && body.is_none() {
                body = Some(map.next_value::<Body<'de>>()?.0);
            } else if key == "body" {
                return Err(not_typed());
            } else {
                map.next_value_seed(Checked)?;
            }
        }
        body.map(Message).ok_or_else(not_typed)
    }
}

/// `{"messages": [...]}`, other fields ignored (the schema allows them).
struct Body<'de>(Vec<Entry<'de>>);
object_visitor!(Body);

impl<'de> FromMap<'de> for Body<'de> {
    const EXPECTING: &'static str = "a JSON object";

    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut messages = None;
        while let Some(key) = map.next_key_seed(Text)? {
            if key == "messages" && messages.is_none() {
                messages = Some(map.next_value_seed(Entries)?);
            } else if key == "messages" {
                return Err(not_typed());
            } else {
                map.next_value_seed(Checked)?;
            }
        }
        messages.map(Body).ok_or_else(not_typed)
    }
}

/// The `messages` array.
struct Entries;

impl<'de> DeserializeSeed<'de> for Entries {
    type Value = Vec<Entry<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries {
    type Value = Vec<Entry<'de>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = seq.next_element::<Entry<'de>>()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}

/// One entry of `messages`, each field at most once.
struct Entry<'de> {
    key: Option<Payload<'de>>,
    value: Option<Payload<'de>>,
    headers: Option<Vec<(Cow<'de, str>, Cow<'de, str>)>>,
    partition: Option<u64>,
    timestamp: Option<u64>,
}
object_visitor!(Entry);

/// Sets a field that must not be given twice.
fn once<T, E: de::Error>(slot: &mut Option<T>, v: T) -> Result<(), E> {
    if slot.replace(v).is_some() {
        return Err(not_typed());
    }
    Ok(())
}

impl<'de> FromMap<'de> for Entry<'de> {
    const EXPECTING: &'static str = "a record object";

    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut e = Entry {
            key: None,
            value: None,
            headers: None,
            partition: None,
            timestamp: None,
        };
        while let Some(name) = map.next_key_seed(Text)? {
            match &*name {
                "key" => once(&mut e.key, map.next_value()?)?,
                "value" => once(&mut e.value, map.next_value()?)?,
                "headers" => once(&mut e.headers, map.next_value_seed(Headers)?)?,
                "partition" => once(&mut e.partition, map.next_value_seed(Digits)?)?,
                "timestamp" => once(&mut e.timestamp, map.next_value_seed(Digits)?)?,
                _ => {
                    map.next_value_seed(Checked)?;
                }
            }
        }
        Ok(e)
    }
}

impl Entry<'_> {
    /// The record, as `parse_record` makes it from the same entry; `None` where that would report a problem.
    fn into_record(self, index: usize) -> Option<Record> {
        let (key, key_json) = self.key.unwrap_or(Payload::Null).into_key()?;
        Some(Record {
            index,
            key,
            key_json,
            value: self.value?.into_bytes()?,
            headers: self
                .headers
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| (name.into_owned(), value.into_owned().into_bytes()))
                .collect(),
            partition: self.partition.map(i32::try_from).transpose().ok()?,
            timestamp: self.timestamp.map(i64::try_from).transpose().ok()?,
        })
    }
}

/// A key or value as given.
enum Payload<'de> {
    Null,
    /// A string: its UTF-8 bytes.
    Text(Cow<'de, str>),
    /// `{"base64": "…"}`, the only entry: the decoded bytes.
    Base64(Cow<'de, str>),
    /// Anything else, as its compact JSON.
    Json(Vec<u8>),
}

impl Payload<'_> {
    /// The bytes to send (`None` inside: no key, or a tombstone); `None` for base64 that does not decode.
    fn into_bytes(self) -> Option<Option<Vec<u8>>> {
        Some(match self {
            Self::Null => None,
            Self::Text(s) => Some(s.into_owned().into_bytes()),
            Self::Base64(b) => Some(B64.decode(b.trim()).ok()?),
            Self::Json(j) => Some(j),
        })
    }

    /// As a key: its bytes and the key as given (for the output).
    fn into_key(self) -> Option<(Option<Vec<u8>>, Value)> {
        Some(match self {
            Self::Null => (None, Value::Null),
            Self::Text(s) => (Some(s.as_bytes().to_vec()), Value::String(s.into_owned())),
            Self::Base64(b) => {
                let bytes = B64.decode(b.trim()).ok()?;
                let mut o = serde_json::Map::new();
                o.insert("base64".to_owned(), Value::String(b.into_owned()));
                (Some(bytes), Value::Object(o))
            }
            // Compact JSON of a `Value` parses back into that `Value` (floats are written round-trip exact).
            Self::Json(j) => {
                let value = serde_json::from_slice(&j).ok()?;
                (Some(j), value)
            }
        })
    }

    /// Appends this payload's compact JSON.
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.extend_from_slice(b"null"),
            Self::Text(s) => write_json(out, &**s),
            Self::Base64(b) => {
                out.extend_from_slice(br#"{"base64":"#);
                write_json(out, &**b);
                out.push(b'}');
            }
            Self::Json(j) => out.extend_from_slice(j),
        }
    }
}

impl<'de> Deserialize<'de> for Payload<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Payload::Null)
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Payload::Text(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Payload::Text(Cow::Owned(s.to_owned())))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        compact(|c| c.visit_bool(b))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        compact(|c| c.visit_u64(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        compact(|c| c.visit_i64(n))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        compact(|c| c.visit_f64(n))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        compact(|c| c.visit_seq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(first) = map.next_key_seed(Text)? else {
            return Ok(Payload::Json(b"{}".to_vec()));
        };
        let mut out = vec![b'{'];
        let mut keys = Keys::default();
        if first == "base64" {
            let inner = map.next_value::<Payload<'de>>()?;
            let Some(second) = map.next_key_seed(Text)? else {
                // The only entry: raw bytes when it is a string (anything else is a problem to report).
                return match inner {
                    Payload::Text(b) => Ok(Payload::Base64(b)),
                    _ => Err(not_typed()),
                };
            };
            keys.write(first, &mut out)?;
            inner.write_json(&mut out);
            keys.write(second, &mut out)?;
        } else {
            keys.write(first, &mut out)?;
        }
        map.next_value_seed(Compact(&mut out))?;
        write_rest(&mut map, &mut keys, &mut out)?;
        Ok(Payload::Json(out))
    }
}

/// A payload that is written as compact JSON by `write`.
fn compact<E>(write: impl FnOnce(Compact<'_>) -> Result<(), E>) -> Result<Payload<'static>, E> {
    let mut out = Vec::new();
    write(Compact(&mut out))?;
    Ok(Payload::Json(out))
}
