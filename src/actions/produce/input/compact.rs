//! Any JSON value straight from the parser to the compact JSON text that `Value::to_string()` gives for it, and
//! strings borrowed from the input where it has no escapes.
//!
//! The parser hands every scalar to the visitor exactly as it hands it to a `Value` (`u64`, `i64`, `f64`, the
//! unescaped string), and it is written with serde_json's own serializer, as a `Value` writes it: the same digits,
//! the same float format, the same escapes. An object keeps its keys in input order, as a `Value` with
//! `preserve_order` does; one that repeats a key (a `Value` keeps one entry for it) is refused, and the caller
//! then falls back to the `Value` reading.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The error of the typed reading giving up (the caller falls back to the `Value` reading; never shown).
pub(super) fn not_typed<E: de::Error>() -> E {
    E::custom("not for the typed reading")
}

/// Writes one scalar as serde_json writes it (a `Vec` cannot fail to take it).
pub(super) fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    if serde_json::to_writer(&mut *out, v).is_err() {
        // Unreachable for the scalars and strings written here; a visible mark rather than a silent gap.
        out.extend_from_slice(b"null");
    }
}

/// A string, borrowed from the input when it has no escapes.
pub(super) struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

/// The keys of one object being written: a repeated key is refused.
#[derive(Default)]
pub(super) struct Keys<'de> {
    few: Vec<Cow<'de, str>>,
    /// Past [`Keys::FEW`] keys, a set instead of comparing with each.
    many: HashSet<Cow<'de, str>>,
}

impl<'de> Keys<'de> {
    const FEW: usize = 16;

    /// Writes `key` and its colon (after a comma unless it is the first).
    pub(super) fn write<E: de::Error>(
        &mut self,
        key: Cow<'de, str>,
        out: &mut Vec<u8>,
    ) -> Result<(), E> {
        let first = self.few.is_empty() && self.many.is_empty();
        if !first {
            out.push(b',');
        }
        write_json(out, &*key);
        out.push(b':');
        let repeated = if self.many.is_empty() && self.few.len() < Self::FEW {
            let repeated = self.few.contains(&key);
            self.few.push(key);
            repeated
        } else {
            self.many.extend(self.few.drain(..));
            !self.many.insert(key)
        };
        if repeated {
            return Err(not_typed());
        }
        Ok(())
    }
}

/// Writes the entries of an object that are still to come in `map` (its opening brace and any entries
/// before are written already), then the closing brace.
pub(super) fn write_rest<'de, A: MapAccess<'de>>(
    map: &mut A,
    keys: &mut Keys<'de>,
    out: &mut Vec<u8>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key_seed(Text)? {
        keys.write(key, out)?;
        map.next_value_seed(Compact(out))?;
    }
    out.push(b'}');
    Ok(())
}

/// Any JSON value, appended to the buffer as compact JSON.
pub(super) struct Compact<'o>(pub(super) &'o mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Compact<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Compact<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.0
            .extend_from_slice(if b { &b"true"[..] } else { &b"false"[..] });
        Ok(())
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        write_json(self.0, &n);
        Ok(())
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        write_json(self.0, &n);
        Ok(())
    }

    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        write_json(self.0, &n);
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        write_json(self.0, s);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let out = self.0;
        out.push(b'[');
        let mut first = true;
        loop {
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            if seq.next_element_seed(Compact(&mut *out))?.is_none() {
                out.truncate(mark);
                break;
            }
            first = false;
        }
        out.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push(b'{');
        write_rest(&mut map, &mut Keys::default(), self.0)
    }
}
