//! The typed reading against the `Value` reading, on texts chosen for their edges (escapes, number forms, repeated
//! keys, every wrong shape). `tests/it/props_input.rs` does the same on generated texts.

use serde_json::Value;

use super::{parse_input, parse_message_text, typed_records};

/// What the `Value` reading gives for the message `text` (as the worker used to hand it over).
fn reference(text: &str) -> String {
    let msg: Value = serde_json::from_str(text).unwrap();
    format!("{:?}", parse_input(msg.get("body").unwrap_or(&Value::Null)))
}

/// Both readings agree; returns whether the typed one accepted the input itself.
fn agree(text: &str) -> bool {
    let got = format!("{:?}", parse_message_text(text.as_bytes()));
    assert_eq!(got, reference(text), "{text}");
    typed_records(text.as_bytes()).is_some()
}

fn message(records: &str) -> String {
    format!(r#"{{"id": "m", "body": {{"messages": [{records}]}}, "headers": {{"a": "b"}}}}"#)
}

#[test]
fn valid_input_is_typed_and_gives_the_same_records() {
    let records = [
        r#"{"value": "plain"}"#,
        r#"{"value": null, "key": null}"#,
        r#"{"key": "k", "value": {"orderId": 1001, "amount": 25.5}}"#,
        r#"{ "value" : { "z" : 1 , "a" : [ 1 , 2.0 , -0 , -0.0 , 1e2 , 1E+2 , 2.50 , 1e-7 , 0.1e1 ] } }"#,
        r#"{"value": [18446744073709551615, -9223372036854775808, 18446744073709551616, 123456789012345678901234567890]}"#,
        r#"{"value": "\u00e9\/\"\\\n\t\ud83d\ude00 plain", "key": "caf\u00e9"}"#,
        r#"{"value": {"k\u00e9y": "\u0001", "\"": "/"}}"#,
        r#"{"value": true, "key": false}"#,
        r#"{"value": 7, "key": -7.25}"#,
        r#"{"value": [], "key": {}}"#,
        r#"{"value": {"base64": "AAEC"}, "key": {"base64": " AAEC\n"}}"#,
        r#"{"value": {"base64": ""}}"#,
        r#"{"value": {"base64": "AAEC", "more": 1}, "key": {"more": 1, "base64": "AAEC"}}"#,
        r#"{"value": {"base64": {"base64": "AA=="}, "x": null}}"#,
        r#"{"value": {"base64": null, "x": [{"base64": 1}]}}"#,
        r#"{"value": "v", "headers": {"h": "1", "g": ""}}"#,
        r#"{"value": "v", "headers": [["h", "1"], ["h", "2"]]}"#,
        r#"{"value": "v", "headers": []}"#,
        r#"{"value": "v", "headers": {}}"#,
        r#"{"value": "v", "partition": 2, "timestamp": 1700000000000}"#,
        r#"{"value": "v", "partition": "007", "timestamp": "9223372036854775807"}"#,
        r#"{"value": "v", "partition": 2147483647, "extra": {"deep": [1, {"x": "\ud800\udc00"}]}}"#,
        r#"{"val\u0075e": "escaped field name"}"#,
    ];
    for r in records {
        assert!(agree(&message(r)), "not typed: {r}");
    }
    assert!(agree(&message(&records.join(", "))));
    assert!(agree(&message("")));
    assert!(agree(
        r#"{"body": {"messages": [], "other": [1, {"a": null}]}}"#
    ));
}

#[test]
fn anything_else_is_left_to_the_schema_with_the_same_problems() {
    let records = [
        r#"{"key": "k"}"#,
        r#"["k", "v"]"#,
        r#""v""#,
        r#"{"value": "a", "value": "b"}"#,
        r#"{"value": "a", "key": "k", "key": null}"#,
        r#"{"value": {"a": 1, "a": 2}}"#,
        r#"{"value": [{"a": 1, "b": {"c": 1, "c": 1}}]}"#,
        r#"{"value": {"base64": "AA", "base64": "AAEC"}}"#,
        r#"{"value": {"base64": "@@"}}"#,
        r#"{"value": {"base64": 1}}"#,
        r#"{"value": {"base64": null}}"#,
        r#"{"value": {"base64": {"base64": "AA=="}}}"#,
        r#"{"value": "v", "headers": {"h": "1", "h": "2"}}"#,
        r#"{"value": "v", "headers": {"h": 1}}"#,
        r#"{"value": "v", "headers": [["h"]]}"#,
        r#"{"value": "v", "headers": [["h", "1", "x"]]}"#,
        r#"{"value": "v", "headers": [["h", 1]]}"#,
        r#"{"value": "v", "headers": ["h", "1"]}"#,
        r#"{"value": "v", "headers": null}"#,
        r#"{"value": "v", "headers": "h"}"#,
        r#"{"value": "v", "partition": -1}"#,
        r#"{"value": "v", "partition": 1.0}"#,
        r#"{"value": "v", "partition": 1.5}"#,
        r#"{"value": "v", "partition": null}"#,
        r#"{"value": "v", "partition": "2147483648"}"#,
        r#"{"value": "v", "partition": 4294967296}"#,
        r#"{"value": "v", "partition": " 2"}"#,
        r#"{"value": "v", "partition": ""}"#,
        r#"{"value": "v", "partition": "1e3"}"#,
        r#"{"value": "v", "partition": 1, "partition": 2}"#,
        r#"{"value": "v", "timestamp": 9223372036854775808}"#,
        r#"{"value": "v", "timestamp": "99999999999999999999"}"#,
        r#"{"value": "v", "timestamp": 1e12}"#,
        r#"{"value": "v", "timestamp": true}"#,
    ];
    for r in records {
        assert!(!agree(&message(r)), "typed: {r}");
        assert!(!agree(&message(&format!(r#"{{"value": "ok"}}, {r}"#))));
    }
    let messages = [
        r#"{}"#,
        r#"{"body": null}"#,
        r#"{"body": []}"#,
        r#"{"body": {}}"#,
        r#"{"body": {"messages": {}}}"#,
        r#"{"body": {"messages": null}}"#,
        r#"{"body": {"messages": [], "messages": [{"value": "x"}]}}"#,
        r#"{"body": {"messages": [{"value": "x"}]}, "body": {"messages": []}}"#,
        r#"{"body": "text"}"#,
    ];
    for m in messages {
        assert!(!agree(m), "typed: {m}");
    }
}

#[test]
fn objects_with_many_keys_are_typed_and_a_late_repeat_is_still_found() {
    let keys: Vec<String> = (0..40).map(|i| format!(r#""k{i}": {i}"#)).collect();
    assert!(agree(&message(&format!(
        r#"{{"value": {{{}}}}}"#,
        keys.join(", ")
    ))));
    assert!(!agree(&message(&format!(
        r#"{{"value": {{{}, "k3": 0}}}}"#,
        keys.join(", ")
    ))));
}
