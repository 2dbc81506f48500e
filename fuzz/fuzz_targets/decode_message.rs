//! The path an incoming AMQP delivery takes before the function sees it: decryption of protocol version 1 (base64
//! text) and 2 (raw bytes) content with `Crypto::decode`, then the JSON parse (src/platform/worker.rs `decode` and
//! `decode_error_input`). The worker's own `platform::worker::decode` runs on every input (the protocol version in
//! its header table, as a delivery carries it), and its verdict must match these checked steps.
//!
//! Input: the first byte selects, the rest is the delivery's content.
//! - `selector & 0x0f`: the protocol version given to `Crypto::decode`. The worker clamps the header to 1..=2, but
//!   the decoder takes any `u8` and must be safe for each.
//! - `selector & 0x10`: 0 = an ordinary flow message, 1 = an `ELASTICIO_INPUT_FORMAT=error` wrapper
//!   (`{"error": "<v1>", "errorInput": "<v1>"}`).
//!
//! The worker's decode that leaves the body in the plaintext (`decode_delivery` with `body_in_text`, for Produce),
//! followed by Produce's reading of that text (the body's strict check), must give the same verdict as `decode`,
//! and the same message without its `body`.
//!
//! Every input also goes the other way: the content as plaintext, encoded and decoded, must come back unchanged.
//! The seed corpus is encrypted with the reference runtime's test key (the known-answer vector in crypto.rs).
#![no_main]

use kafka_component::actions::produce::input;
use kafka_component::platform::crypto::Crypto;
use kafka_component::platform::headers::{int, set};
use kafka_component::platform::worker;
use kafka_component::settings::InputFormat;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const PASSWORD: &str = "testCryptoPassword";
const IV: &str = "iv=any16_symbols";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, content)) = data.split_first() else {
        return;
    };
    let Ok(crypto) = Crypto::new(PASSWORD, IV) else {
        unreachable!("the IV constant is 16 bytes");
    };
    let version = selector & 0x0f;
    let mut headers = Default::default();
    set(&mut headers, "protocolVersion", int(i64::from(version)));
    // The worker reads the header leniently and clamps it to the versions it knows.
    let clamped = version.clamp(1, 2);
    if selector & 0x10 == 0 {
        decode_default(&crypto, content, version);
        let real = worker::decode(&crypto, InputFormat::Default, content, &headers);
        let checked = decode_default(&crypto, content, clamped);
        assert_eq!(
            real.is_some(),
            checked.is_some(),
            "the worker's decode disagrees (v{clamped})"
        );
        let lean = worker::decode_delivery(&crypto, InputFormat::Default, content, &headers, true);
        // The worker skips the body; Produce's reading of the text is its strict check.
        let accepted = lean.as_ref().is_some_and(|l| {
            !matches!(
                input::read_message_text(&l.plaintext),
                Err(input::Unread::NotJson(_))
            )
        });
        assert_eq!(
            real.is_some(),
            accepted,
            "leaving the body to Produce's reading changes the verdict"
        );
        if let (Some((mut msg, plain, v)), Some(lean)) = (real, lean) {
            assert_eq!(v, clamped);
            assert!(msg.is_object());
            assert_eq!(crypto.decode(content, v).ok().as_ref(), Some(&plain));
            assert_eq!((&lean.plaintext, lean.version), (&plain, v));
            if let Some(m) = msg.as_object_mut() {
                m.shift_remove("body");
            }
            assert_eq!(
                format!("{:?}", lean.msg),
                format!("{msg:?}"),
                "the message without body"
            );
        }
    } else {
        let checked = decode_error_input(&crypto, content);
        let real = worker::decode(&crypto, InputFormat::Error, content, &headers);
        assert_eq!(
            real.is_some(),
            checked.is_some(),
            "the worker's error-format decode disagrees"
        );
    }
    round_trip(&crypto, content, version);
});

/// worker.rs `decode` for `ELASTICIO_INPUT_FORMAT=default`: decrypt, then accept a JSON object only.
fn decode_default(crypto: &Crypto, content: &[u8], version: u8) -> Option<Value> {
    let plain = crypto.decode(content, version).ok()?;
    if content.is_empty() {
        assert!(plain.is_empty(), "empty content decodes to empty plaintext");
    } else {
        // The cipher is deterministic (fixed IV) and the padding check is strict, so anything that decrypts is
        // exactly the encoding of its plaintext: a decoder that accepted something else would be lenient about
        // tampering.
        let wire = crypto.encode(&plain, version);
        if version >= 2 {
            assert_eq!(
                wire, content,
                "v{version}: decrypted, but is not the encoding of its plaintext"
            );
            assert!(plain.len() < content.len(), "PKCS#7 adds at least one byte");
        } else {
            assert_eq!(
                wire,
                content.trim_ascii(),
                "v{version}: decoded, but is not the canonical encoding"
            );
        }
    }
    match serde_json::from_slice::<Value>(&plain) {
        Ok(msg @ Value::Object(_)) => Some(with_headers(msg)),
        _ => None,
    }
}

/// worker.rs `decode_error_input`: a JSON wrapper whose `error` (required) and `errorInput` fields are v1 strings.
fn decode_error_input(crypto: &Crypto, content: &[u8]) -> Option<Value> {
    let outer: Value = serde_json::from_slice(content).ok()?;
    let decrypt = |field: &str| -> Option<Value> {
        let text = outer.get(field)?.as_str()?;
        let plain = crypto.decode(text.as_bytes(), 1).ok()?;
        serde_json::from_slice(&plain).ok()
    };
    let error = decrypt("error")?;
    let mut body = serde_json::json!({ "error": error });
    if let Some(input) = decrypt("errorInput") {
        body["errorInput"] = input;
    }
    Some(serde_json::json!({ "body": body, "headers": {} }))
}

/// worker.rs `handle_delivery`: the message always has an object under `headers`.
fn with_headers(mut msg: Value) -> Value {
    if let Some(obj) = msg.as_object_mut() {
        let h = obj
            .entry("headers")
            .or_insert_with(|| serde_json::json!({}));
        if !h.is_object() {
            *h = serde_json::json!({});
        }
    }
    assert!(msg["headers"].is_object());
    msg
}

/// Encode → decode gives the plaintext back; a truncated or padded encoding does not decrypt.
fn round_trip(crypto: &Crypto, plain: &[u8], version: u8) {
    let wire = crypto.encode(plain, version);
    assert_eq!(
        crypto.decode(&wire, version).as_deref(),
        Ok(plain),
        "v{version} round trip"
    );
    if version < 2 {
        assert!(wire.is_ascii(), "v1 is base64 text");
        assert_eq!(crypto.encode_base64(plain).as_bytes(), wire);
        // The worker trims the text before decoding it (a trailing newline from a shell, for example).
        let mut spaced = b" \n".to_vec();
        spaced.extend_from_slice(&wire);
        spaced.extend_from_slice(b"\r\n");
        assert_eq!(crypto.decode(&spaced, version).as_deref(), Ok(plain));
    } else {
        assert_eq!(wire.len() % 16, 0, "whole AES blocks");
    }
    assert!(
        crypto.decode(&wire[..wire.len() - 1], version).is_err(),
        "v{version}: a truncated encoding must not decrypt"
    );
    // The plaintext reaches the JSON parse like any decrypted content.
    if let Ok(msg @ Value::Object(_)) = serde_json::from_slice::<Value>(plain) {
        with_headers(msg);
    }
}
