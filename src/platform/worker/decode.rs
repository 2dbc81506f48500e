//! A delivery's content → the message handed to the function (decryption, JSON, the error input format), or
//! `None` when it must be rejected. Pure functions of their inputs (the fuzz target `decode_message` calls them).

use lapin::types::FieldTable;
use serde_json::{Value, json};

use super::super::crypto::Crypto;
use super::super::headers;
use super::envelope;
use crate::settings::InputFormat;

/// The log line of a rejected message whose content is not JSON (here, or found by the function's reading).
pub(super) const NOT_JSON: &str = "Rejecting a message whose content is not JSON.";

/// A delivery decoded for the function.
#[derive(Debug)]
pub struct Decoded {
    /// The message handed to the function; without `body` when `body_in_text`.
    pub msg: Value,
    /// The decrypted content (the error input format: the content as received).
    pub plaintext: Vec<u8>,
    /// The incoming protocol version (1 or 2).
    pub version: u8,
    /// `body` was left in `plaintext`, not parsed into `msg` (asked for, and possible).
    pub body_in_text: bool,
}

/// Decodes a delivery's `content` (with its AMQP headers `incoming`) into the message handed to the function,
/// its plaintext and its protocol version, or `None` when it must be rejected (logged at warn).
pub fn decode(
    crypto: &Crypto,
    input_format: InputFormat,
    content: &[u8],
    incoming: &FieldTable,
) -> Option<(Value, Vec<u8>, u8)> {
    decode_delivery(crypto, input_format, content, incoming, false)
        .map(|d| (d.msg, d.plaintext, d.version))
}

/// [`decode`], leaving the message's `body` in the plaintext when `body_in_text` asks for it: the message is then
/// parsed with its body skipped, not built; the body's strict check is the function's reading
/// ([`crate::contract::Execution::text`]), and with it the verdict is the same (a message a `Value` parse refuses
/// is rejected with the same log line). The error input format always builds the whole message.
pub fn decode_delivery(
    crypto: &Crypto,
    input_format: InputFormat,
    content: &[u8],
    incoming: &FieldTable,
    body_in_text: bool,
) -> Option<Decoded> {
    let version = headers::get_num(incoming, "protocolVersion")
        .map_or(1, |v| u8::try_from(v.clamp(1, 2)).unwrap_or(1));
    let decoded = |msg, plaintext, body_in_text| Decoded {
        msg,
        plaintext,
        version,
        body_in_text,
    };
    if input_format == InputFormat::Error {
        return decode_error_input(crypto, content, incoming)
            .map(|m| decoded(m, content.to_vec(), false));
    }
    let plaintext = match crypto.decode(content, version) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, size = content.len(), protocol_version = version, "Rejecting a message that cannot be decrypted.");
            return None;
        }
    };
    if body_in_text && let Some(fields) = envelope::without_body(&plaintext) {
        return Some(decoded(Value::Object(fields), plaintext, true));
    }
    match serde_json::from_slice::<Value>(&plaintext) {
        Ok(msg @ Value::Object(_)) => Some(decoded(msg, plaintext, false)),
        Ok(_) => {
            tracing::warn!("Rejecting a message whose content is not a JSON object.");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "{}", NOT_JSON);
            None
        }
    }
}

/// `ELASTICIO_INPUT_FORMAT=error`: `{error, errorInput}` wrappers of another step (PROTOCOL.md 3.7).
pub fn decode_error_input(crypto: &Crypto, content: &[u8], incoming: &FieldTable) -> Option<Value> {
    let outer: Value = serde_json::from_slice(content).ok()?;
    let decrypt = |field: &str| -> Option<Value> {
        let text = outer.get(field)?.as_str()?;
        let plain = crypto.decode(text.as_bytes(), 1).ok()?;
        serde_json::from_slice(&plain).ok()
    };
    let Some(error) = decrypt("error") else {
        tracing::warn!("Rejecting an error-format message without a decryptable `error` field.");
        return None;
    };
    let mut body = json!({ "error": error });
    if let Some(input) = decrypt("errorInput") {
        body["errorInput"] = input;
    }
    let hdrs: serde_json::Map<String, Value> = incoming
        .inner()
        .keys()
        .filter_map(|k| {
            Some((
                k.as_str().to_owned(),
                Value::String(headers::get_str(incoming, k.as_str())?),
            ))
        })
        .collect();
    Some(json!({ "body": body, "headers": hdrs }))
}
