//! The record fields of the typed reading that are not payloads: `headers`, `partition` and `timestamp`, each
//! accepted only in the shapes the schema allows (anything else gives up, see `typed`).

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::compact::{Text, not_typed};

/// `headers`: an object of string values (each name once), or an array of `[name, value]` string pairs.
pub(super) struct Headers;

impl<'de> DeserializeSeed<'de> for Headers {
    type Value = Vec<(Cow<'de, str>, Cow<'de, str>)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Headers {
    type Value = Vec<(Cow<'de, str>, Cow<'de, str>)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("headers")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut headers: Self::Value = Vec::new();
        while let Some(name) = map.next_key_seed(Text)? {
            // A repeated name is one entry of a `Value` (its last value in its first place): left to it.
            if headers.len() >= 64 || headers.iter().any(|(n, _)| *n == name) {
                return Err(not_typed());
            }
            let value = map.next_value_seed(Text)?;
            headers.push((name, value));
        }
        Ok(headers)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut headers = Vec::new();
        while let Some(pair) = seq.next_element_seed(Pair)? {
            headers.push(pair);
        }
        Ok(headers)
    }
}

/// `[name, value]`: exactly two strings.
struct Pair;

impl<'de> DeserializeSeed<'de> for Pair {
    type Value = (Cow<'de, str>, Cow<'de, str>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Pair {
    type Value = (Cow<'de, str>, Cow<'de, str>);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a [name, value] pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let name = seq.next_element_seed(Text)?.ok_or_else(not_typed)?;
        let value = seq.next_element_seed(Text)?.ok_or_else(not_typed)?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(not_typed());
        }
        Ok((name, value))
    }
}

/// `partition` or `timestamp`: a non-negative integer, or its decimal digits as a string.
pub(super) struct Digits;

impl<'de> DeserializeSeed<'de> for Digits {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Digits {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a non-negative integer")
    }

    fn visit_u64<E>(self, n: u64) -> Result<u64, E> {
        Ok(n)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_typed());
        }
        s.parse().map_err(|_| not_typed())
    }
}
