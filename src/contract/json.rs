//! A small JSON writer for the bodies emitted once per record (Consume's data messages, Produce's output):
//! the same bytes `serde_json` writes for their `Serialize` impls, without its byte-by-byte escaping of text
//! that needs none (a 1 KB record value cost ~10 k instructions to escape; checking it costs a few hundred).
//! Every type here keeps its `Serialize` impl as the reference, and its tests compare the two. Also
//! [`Checked`]: a value read as strictly as a `serde_json::Value` parse reads it, without building it.

use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A body that writes its own JSON, byte for byte what `serde_json::to_writer` writes for its `Serialize`.
pub trait WriteJson: Serialize {
    /// Appends the JSON of `self` to `out`.
    ///
    /// # Errors
    /// As its `Serialize` through `serde_json` (a custom error, a map with non-string keys).
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;

    /// About how many bytes the JSON takes (a capacity hint; 0 when unknown).
    fn size_hint(&self) -> usize {
        0
    }
}

/// Whether `serde_json` would write `b` unchanged inside a string: no control character, quote or backslash.
/// Branch-free over fixed chunks, so the compiler vectorises it.
fn plain(b: &[u8]) -> bool {
    b.chunks(32).all(|c| {
        !c.iter().fold(false, |bad, &x| {
            bad | (x < 0x20) | (x == b'"') | (x == b'\\')
        })
    })
}

/// Appends `s` as a JSON string.
///
/// # Errors
/// Never in practice (writing to a `Vec`); kept so callers use `?` rather than a panic.
pub fn str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if plain(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, s)
    }
}

/// Appends an integer.
pub fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends an integer as a JSON string of its digits ([`Decimal`](super::Decimal)).
pub fn decimal(out: &mut Vec<u8>, n: i64) {
    out.push(b'"');
    int(out, n);
    out.push(b'"');
}

/// Appends an optional integer (`null` for none).
pub fn opt_int(out: &mut Vec<u8>, n: Option<i64>) {
    match n {
        Some(n) => int(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends any value through `serde_json` (the rare shapes: parsed JSON, base64 objects).
///
/// # Errors
/// As `serde_json::to_writer`.
pub fn value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> serde_json::Result<()> {
    serde_json::to_writer(out, v)
}

/// Any JSON value, checked as a `serde_json::Value` parse checks it (through `deserialize_any`, never the lenient
/// skipping of `deserialize_ignored_any`) and not kept.
#[derive(Debug, Clone, Copy)]
pub struct Checked;

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Checked)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(CheckedKey)?.is_some() {
            map.next_value_seed(Checked)?;
        }
        Ok(())
    }
}

/// An object key, read as a string as a `serde_json::Value` parse reads it (unescaped and checked), not kept.
struct CheckedKey;

impl<'de> DeserializeSeed<'de> for CheckedKey {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for CheckedKey {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_the_bytes_serde_json_writes() {
        let mut every: String = (0u8..128).map(char::from).collect();
        every.push_str("é 😀 \u{2028} \u{7f}");
        let long_plain = "x".repeat(1000);
        let late_quote = format!("{}\"", "y".repeat(70));
        for s in [
            "",
            "plain",
            "quote \" backslash \\ newline \n tab \t nul \u{0}",
            &every,
            &long_plain,
            &late_quote,
            "\u{1f}",
        ] {
            let mut out = b"[".to_vec();
            str(&mut out, s).unwrap();
            assert_eq!(
                String::from_utf8(out[1..].to_vec()).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn numbers_are_the_bytes_serde_json_writes() {
        for n in [0, -1, 7, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            int(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n).unwrap());
            let mut out = Vec::new();
            decimal(&mut out, n);
            assert_eq!(out, serde_json::to_vec(&n.to_string()).unwrap());
        }
        let mut out = Vec::new();
        opt_int(&mut out, None);
        assert_eq!(out, b"null");
    }
}
