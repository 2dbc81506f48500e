//! The incoming message without its `body` tree, for a function that reads the body from the message text
//! itself ([`crate::contract::Function::reads_body_from_text`]).
//!
//! Every field but `body` becomes a [`Value`] as a [`Value`] parse of the whole message makes it; `body` is only
//! skipped (its syntax checked, nothing built). The function's own reading of the text is the strict check of
//! the body: when the body is not JSON a [`Value`] parse accepts (a number out of range, a lone surrogate, nesting
//! past the limit), the function says so ([`crate::contract::FunctionError::not_json`]) and the delivery is
//! rejected as any message that is not JSON is. Skipping the body instead of walking it (a second strict parse
//! beside the function's) saved 0.06 M instructions of a 100-record Produce message.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The message's fields other than `body` when `plaintext` is a JSON object whose other fields a [`Value`] parse
/// accepts and whose `body` is well-formed; `None` otherwise (the caller parses it as a [`Value`] then, for the
/// verdict and log line it always gave).
pub fn without_body(plaintext: &[u8]) -> Option<Map<String, Value>> {
    // UTF-8 checked once for the whole text, not string by string (the verdict is the same: JSON text that is not
    // UTF-8 is refused either way).
    let text = std::str::from_utf8(plaintext).ok()?;
    serde_json::from_str::<WithoutBody>(text).ok().map(|w| w.0)
}

/// A JSON object's fields but `body` (which is skipped, not kept).
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
                map.next_value::<IgnoredAny>()?;
            } else {
                let value = map.next_value::<Value>()?;
                self.0.insert(key, value);
            }
        }
        Ok(self)
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

    /// Bodies a `Value` parse refuses although they are well-formed: left to the function's strict reading.
    const WELL_FORMED_BUT_REFUSED: [&str; 4] = [
        r#"{"body": 1e400}"#,
        r#"{"body": -1e400}"#,
        r#"{"body": "\ud800"}"#,
        r#"{"body": {"\udc00": 1}}"#,
    ];

    #[test]
    fn accepts_what_a_value_parse_accepts_and_leaves_the_body_to_the_function() {
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
            let got = without_body(text.as_bytes());
            match reference(text.as_bytes()) {
                Some(fields) => assert_eq!(got, Some(fields), "{text}"),
                // Refused by a `Value` parse: refused here too, unless what it refuses is inside the body.
                None => assert!(
                    got.is_none()
                        || WELL_FORMED_BUT_REFUSED.contains(&text.as_str())
                        || text.starts_with(r#"{"body": [[["#),
                    "{text}"
                ),
            }
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
