//! The incoming message without its `body` tree, for a function that reads the body from the message text
//! itself ([`crate::contract::Function::reads_body_from_text`]).
//!
//! It accepts exactly what a [`Value`] parse of the whole message accepts, so that a message the worker used to
//! reject as "not JSON" is still rejected: every field but `body` becomes a [`Value`] as before, and `body` is
//! walked through the very parser calls a [`Value`] parse makes (the same string, escape, number range and nesting
//! checks, at the same depth) without building anything.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The message's fields other than `body` when `plaintext` is a JSON object that a [`Value`] parse accepts;
/// `None` otherwise (the caller parses it as a [`Value`] then, for the verdict and log line it always gave).
pub fn without_body(plaintext: &[u8]) -> Option<Map<String, Value>> {
    // UTF-8 checked once for the whole text, not string by string (the verdict is the same: JSON text that is not
    // UTF-8 is refused either way).
    let text = std::str::from_utf8(plaintext).ok()?;
    serde_json::from_str::<WithoutBody>(text).ok().map(|w| w.0)
}

/// A JSON object's fields but `body` (which is checked, not kept).
struct WithoutBody(Map<String, Value>);

impl<'de> Deserialize<'de> for WithoutBody {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(WithoutBody(Map::new()))
    }
}

impl<'de> Visitor<'de> for WithoutBody {
    type Value = Self;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self, A::Error> {
        // As a `Value` parse: the keys as strings, a repeated key's last value in its first place.
        while let Some(key) = map.next_key::<String>()? {
            if key == "body" {
                map.next_value_seed(Checked)?;
            } else {
                let value = map.next_value::<Value>()?;
                self.0.insert(key, value);
            }
        }
        Ok(self)
    }
}

/// Any JSON value, checked as a [`Value`] parse checks it (through `deserialize_any`, never the lenient skipping
/// of `deserialize_ignored_any`) and not kept.
struct Checked;

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

/// An object key, read as a string as a [`Value`] parse reads it (unescaped and checked), not kept.
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

    /// What a `Value` parse of the whole message gives, without `body`, when it is an object.
    fn reference(text: &[u8]) -> Option<Map<String, Value>> {
        match serde_json::from_slice::<Value>(text) {
            Ok(Value::Object(mut m)) => {
                m.shift_remove("body");
                Some(m)
            }
            _ => None,
        }
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn accepts_exactly_what_a_value_parse_accepts() {
        let mut cases: Vec<String> = [
            r#"{"body": {"messages": [{"value": "v"}]}, "headers": {"a": 1}, "id": "x"}"#,
            r#"{"id": 1, "body": 2, "body": {"x": [1, 2.5, -3, true, null, "s\u00e9\n"]}, "id": 3}"#,
            r#"{}"#,
            r#"[]"#,
            r#""body""#,
            r#"{"body": "\ud800"}"#,
            r#"{"body": "\ud83d\ude00"}"#,
            r#"{"body": {"\udc00": 1}}"#,
            r#"{"body": 1e400}"#,
            r#"{"body": -1e400}"#,
            r#"{"body": 1e-400}"#,
            r#"{"body": 18446744073709551616}"#,
            r#"{"body": -9223372036854775809}"#,
            r#"{"body": 01}"#,
            r#"{"body": "a\x"}"#,
            r#"{"body": "tab	here"}"#,
            r#"{"body": [1,]}"#,
            r#"{"body": {"a" 1}}"#,
            r#"{"body": {}} x"#,
            r#"{"body": {}"#,
            "{\"body\": \"\u{7f}\"}",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // Nesting: the limit counts from the message's root, not from the body.
        for depth in [120, 125, 126, 127, 128, 200] {
            cases.push(format!(r#"{{"body": {}}}"#, nested(depth)));
            cases.push(format!(r#"{{"headers": {}}}"#, nested(depth)));
        }
        for text in &cases {
            assert_eq!(
                without_body(text.as_bytes()),
                reference(text.as_bytes()),
                "{text}"
            );
        }
        let mut bad_utf8 = br#"{"body": ""#.to_vec();
        bad_utf8.extend([0xff, b'"', b'}']);
        assert_eq!(without_body(&bad_utf8), None);
        assert_eq!(reference(&bad_utf8), None);
    }

    #[test]
    fn keeps_every_other_field_in_order() {
        let text = br#"{"id": "m1", "body": {"messages": []}, "headers": {"reply_to": "q"}, "metadata": {}}"#;
        let fields = without_body(text).unwrap();
        let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "headers", "metadata"]);
        assert_eq!(fields["headers"]["reply_to"], "q");
    }
}
