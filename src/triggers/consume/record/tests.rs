use super::*;
use serde_json::json;

#[test]
fn parse_json_turns_only_objects_and_arrays_into_json() {
    assert_eq!(
        serde_json::to_string(&parse_json_text(r#"{"orderId":1001,"amount":25.5}"#)).unwrap(),
        r#"{"orderId":1001,"amount":25.5}"#,
        "an object, its keys in the order they came"
    );
    assert_eq!(parse_json_text(" [1,2]"), Payload::Json(json!([1, 2])));
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
            Payload::Text(text.to_owned()),
            "{text:?}"
        );
    }
}

/// The body as the `Value` builder before the typed one made it, from the same record parts.
fn old_body(
    value: Option<&[u8]>,
    key: Option<&[u8]>,
    headers: &[(&str, Option<&[u8]>)],
    timestamp: Option<i64>,
    parse_json: bool,
) -> Value {
    let bytes = |b: Option<&[u8]>, parse: bool| -> Value {
        match b {
            None => Value::Null,
            Some(b) => match std::str::from_utf8(b) {
                Ok(text) if parse => {
                    let t = text.trim_start();
                    if t.starts_with('{') || t.starts_with('[') {
                        serde_json::from_str(text)
                            .unwrap_or_else(|_| Value::String(text.to_owned()))
                    } else {
                        Value::String(text.to_owned())
                    }
                }
                Ok(text) => Value::String(text.to_owned()),
                Err(_) => json!({ "base64": B64.encode(b) }),
            },
        }
    };
    let headers: Vec<Value> = headers
        .iter()
        .map(|(k, v)| json!([k, bytes(*v, false)]))
        .collect();
    json!({
        "value": bytes(value, parse_json),
        "key": bytes(key, false),
        "partition": 7.to_string(),
        "offset": 1_234_567_890_123_i64,
        "topic": "orders.\"eu\"",
        "timestamp": timestamp,
        "headers": headers,
    })
}

/// Value, key, headers, timestamp, `parseJson`.
type Case<'a> = (
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    Vec<(&'a str, Option<&'a [u8]>)>,
    Option<i64>,
    bool,
);

/// JSON objects and arrays with `parseJson`, text, binary, escapes, repeated and null headers, timestamps.
fn cases() -> [Case<'static>; 6] {
    [
        (
            Some(b"{\"b\":1,\"a\":[1.5,\"x\"]}"),
            Some(b"k"),
            vec![],
            Some(1_700_000_000_123),
            true,
        ),
        (
            Some(b"{\"b\":1}"),
            None,
            vec![("h", Some(b"v")), ("h", None)],
            None,
            false,
        ),
        (
            None,
            Some(&[0xff, 0x00, 0x01]),
            vec![("bin", Some(&[0xc3, 0x28]))],
            Some(0),
            true,
        ),
        (
            Some("line\nbreak \u{1F600} \"q\"".as_bytes()),
            Some(b""),
            vec![],
            Some(-1),
            true,
        ),
        (
            Some(b"[1,"),
            Some(b"null"),
            vec![("\u{e9}", Some(b"\\"))],
            None,
            true,
        ),
        (Some(&[0x80]), None, vec![], None, false),
    ]
}

#[test]
fn typed_bodies_serialize_as_the_value_builder_did() {
    let topic: Arc<str> = Arc::from("orders.\"eu\"");
    for (value, key, headers, timestamp, parse) in cases() {
        let typed = RecordBody {
            value: Payload::of(value, parse),
            key: Payload::of(key, false),
            partition: 7,
            offset: 1_234_567_890_123,
            topic: Arc::clone(&topic),
            timestamp,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Payload::of(*v, false)))
                .collect(),
        };
        let old = old_body(value, key, &headers, timestamp, parse);
        assert_eq!(
            serde_json::to_string(&typed).unwrap(),
            serde_json::to_string(&old).unwrap(),
            "{value:?} {key:?}"
        );
        let mut written = Vec::new();
        typed.write_json(&mut written).unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string(&old).unwrap(),
            "the body's own writer, {value:?} {key:?}"
        );
        let batch = [typed.clone(), typed];
        let old_batch = json!({ "count": 2, "records": [old.clone(), old] });
        assert_eq!(
            serde_json::to_string(&BatchBody { records: &batch }).unwrap(),
            serde_json::to_string(&old_batch).unwrap()
        );
        let mut written = Vec::new();
        BatchBody { records: &batch }
            .write_json(&mut written)
            .unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string(&old_batch).unwrap()
        );
    }
}
