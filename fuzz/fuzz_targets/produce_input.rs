//! Produce input conversion (src/actions/produce/input.rs): `parse_input` (schema validation of the message body,
//! then records) and `parse_message_text` (the typed reading of the message text the worker uses, falling back to
//! `parse_input`). Bytes that are JSON are used as the body as they are (the seed corpus is plain JSON files), and
//! also written into a message text as they are (`{"body":<bytes>}`, so the typed reading sees the fuzzer's own
//! whitespace, escapes and number forms); other bytes drive a builder of bodies close to the schema, so that the
//! fuzzer reaches the conversion past the validator. It must never panic, and:
//! - `Ok(n)`: `messages` is an array of exactly `n` entries (one record per entry, never more);
//! - `Err(problems)`: at least one problem, none of them empty;
//! - the result is the same when asked twice (the validator is compiled once and shared);
//! - the message text gives the very same records, or the very same problems, as the body.
#![no_main]

use arbitrary::{Result, Unstructured};
use kafka_component::actions::produce::input::{parse_input, parse_message_text};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// The number of records, or every problem found.
fn produce_input(body: &Value) -> std::result::Result<usize, Vec<String>> {
    parse_input(body).map(|records| records.len())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<Value>(data) {
        check(&body);
        let mut text = br#"{"body":"#.to_vec();
        text.extend_from_slice(data);
        text.push(b'}');
        // One level deeper than `data`: past the parser's nesting limit it is not JSON any more.
        if let Ok(msg) = serde_json::from_slice::<Value>(&text) {
            same_as_body(&text, &msg["body"]);
        }
        return;
    }
    let mut u = Unstructured::new(data);
    if let Ok(body) = body(&mut u) {
        check(&body);
    }
});

/// The typed reading of the message `text` gives what `parse_input` gives for its `body`.
fn same_as_body(text: &[u8], body: &Value) {
    let typed = format!("{:?}", parse_message_text(text));
    assert_eq!(
        typed,
        format!("{:?}", parse_input(body)),
        "the two readings differ"
    );
}

fn check(body: &Value) {
    let result = produce_input(body);
    match &result {
        Ok(n) => {
            let messages = body.get("messages").and_then(Value::as_array);
            assert_eq!(
                messages.map(Vec::len),
                Some(*n),
                "one record per entry of `messages`"
            );
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "an error lists its problems");
            assert!(
                problems.iter().all(|p| !p.trim().is_empty()),
                "{problems:?}"
            );
        }
    }
    assert_eq!(produce_input(body), result, "same input, same result");
    if let Ok(text) = serde_json::to_vec(&json!({ "body": body, "headers": {} })) {
        same_as_body(&text, body);
    }
}

/// `{"messages": [...]}`, sometimes with something else around it.
fn body(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut messages = Vec::new();
    for _ in 0..u.int_in_range(0..=8)? {
        messages.push(message(u)?);
    }
    Ok(match u.int_in_range(0..=9)? {
        0 => json!({ "messages": messages, "extra": any(u, 2)? }),
        1 => json!({ "messages": any(u, 3)? }),
        2 => any(u, 4)?,
        _ => json!({ "messages": messages }),
    })
}

fn message(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut m = Map::new();
    if u.ratio(7, 8)? {
        m.insert("value".into(), payload(u)?);
    }
    if u.arbitrary()? {
        m.insert("key".into(), payload(u)?);
    }
    if u.ratio(1, 3)? {
        m.insert("headers".into(), headers(u)?);
    }
    if u.ratio(1, 3)? {
        m.insert("partition".into(), number(u)?);
    }
    if u.ratio(1, 3)? {
        m.insert("timestamp".into(), number(u)?);
    }
    if u.ratio(1, 8)? {
        m.insert(u.arbitrary()?, any(u, 2)?);
    }
    Ok(if u.ratio(1, 16)? {
        any(u, 2)?
    } else {
        Value::Object(m)
    })
}

/// A key or value: text, `{"base64": …}` (valid or not), null, or any JSON.
fn payload(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=5)? {
        0 => Value::String(u.arbitrary()?),
        1 => json!({ "base64": base64ish(u)? }),
        2 => json!({ "base64": any(u, 1)? }),
        3 => Value::Null,
        _ => any(u, 3)?,
    })
}

/// Text made of base64's alphabet, padding and spaces, so that it is valid now and then.
fn base64ish(u: &mut Unstructured<'_>) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= -_";
    let len = u.int_in_range(0..=24)?;
    (0..len)
        .map(|_| Ok(char::from(*u.choose(ALPHABET)?)))
        .collect()
}

fn headers(u: &mut Unstructured<'_>) -> Result<Value> {
    let n = u.int_in_range(0..=4)?;
    Ok(match u.int_in_range(0..=2)? {
        0 => {
            let mut o = Map::new();
            for _ in 0..n {
                let v = if u.ratio(7, 8)? {
                    Value::String(u.arbitrary()?)
                } else {
                    any(u, 1)?
                };
                o.insert(u.arbitrary()?, v);
            }
            Value::Object(o)
        }
        1 => Value::Array(
            (0..n)
                .map(|_| {
                    Ok(if u.ratio(7, 8)? {
                        json!([u.arbitrary::<String>()?, u.arbitrary::<String>()?])
                    } else {
                        any(u, 2)?
                    })
                })
                .collect::<Result<_>>()?,
        ),
        _ => any(u, 2)?,
    })
}

/// A partition or timestamp: small, negative, at the edges of i32/i64/u64, fractional, or digits in a string.
fn number(u: &mut Unstructured<'_>) -> Result<Value> {
    const EDGES: [u64; 7] = [
        0,
        2_147_483_647,
        2_147_483_648,
        9_223_372_036_854_775_807,
        9_223_372_036_854_775_808,
        u64::MAX,
        1_700_000_000_000,
    ];
    Ok(match u.int_in_range(0..=6)? {
        0 => json!(u.int_in_range(0..=64u32)?),
        1 => json!(*u.choose(&EDGES)?),
        2 => json!(u.arbitrary::<i64>()?),
        3 => json!(u.arbitrary::<f64>()?),
        4 => Value::String(u.choose(&EDGES)?.to_string()),
        5 => Value::String(u.arbitrary()?),
        _ => any(u, 1)?,
    })
}

/// Any JSON value, nested at most `depth` levels.
fn any(u: &mut Unstructured<'_>, depth: u32) -> Result<Value> {
    let kinds = if depth == 0 { 4 } else { 6 };
    Ok(match u.int_in_range(0..=kinds - 1)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => match serde_json::Number::from_f64(u.arbitrary()?) {
            Some(n) if u.arbitrary()? => Value::Number(n),
            _ => json!(u.arbitrary::<i64>()?),
        },
        3 => Value::String(u.arbitrary()?),
        4 => Value::Array(
            (0..u.int_in_range(0..=4)?)
                .map(|_| any(u, depth - 1))
                .collect::<Result<_>>()?,
        ),
        _ => {
            let mut o = Map::new();
            for _ in 0..u.int_in_range(0..=4)? {
                o.insert(u.arbitrary()?, any(u, depth - 1)?);
            }
            Value::Object(o)
        }
    })
}
