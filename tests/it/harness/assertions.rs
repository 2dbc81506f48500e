//! Checks shared by the modules: envelope and schema of emitted messages, error messages, credentials JSON.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;

/// A record's `partition` in Consume output: a string of digits, as the original component's output has it.
pub fn partition_of(record: &Value) -> i32 {
    let p = &record["partition"];
    p.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("`partition` must be a string of digits, got {p} in {record}"))
}

/// Checks a data message as the reference library builds one (`newMessageWithBody`): exactly the keys `id`,
/// `body`, `headers`, `attachments` and `metadata`, the last two empty, and the `messageId` header equal to `id`.
/// Returns the id.
pub fn assert_reference_envelope(m: &Got) -> String {
    let d = m.decrypted();
    let keys: BTreeSet<&str> = d
        .as_object()
        .unwrap_or_else(|| panic!("a data message is an object: {d}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["attachments", "body", "headers", "id", "metadata"]),
        "{d}"
    );
    assert_eq!(d["attachments"], json!({}), "{d}");
    assert_eq!(d["metadata"], json!({}), "{d}");
    let id = d["id"].as_str().expect("id is a string").to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "id is a UUID: {id}");
    assert_eq!(
        m.header_str("messageId").as_deref(),
        Some(id.as_str()),
        "messageId header = id"
    );
    id
}

/// Validates `body` against one of the files in `schemas/` (e.g. `consume.out.json`).
pub fn assert_matches_schema(file: &str, body: &Value) {
    let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{file}: {problems:?} in {body}");
}
/// Milliseconds since the Unix epoch (the clock of the worker's `start`/`end` headers and Kafka timestamps).
pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Decrypts the `error` field of an error message.
pub fn error_of(got: &Got) -> Value {
    let body = got.json();
    let plain = crypto()
        .decode(body["error"].as_str().unwrap().as_bytes(), 1)
        .unwrap();
    serde_json::from_slice(&plain).unwrap()
}
/// `a` with every field of the object `b` set (overwriting).
pub fn merge(mut a: Value, b: Value) -> Value {
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

/// `cfg` with the SASL credentials fields `username`, `password` and `mechanism` set.
pub fn with_login(mut cfg: Value, user: &str, password: &str, mechanism: &str) -> Value {
    cfg["username"] = json!(user);
    cfg["password"] = json!(password);
    cfg["mechanism"] = json!(mechanism);
    cfg
}

/// The text of the `AuthenticationError` in the error message `err`, checked to name `user` and `mechanism`
/// (as librdkafka names it, e.g. `SCRAM-SHA-512`) and to pass on the broker's reason.
pub fn authentication_error(err: &Got, user: &str, mechanism: &str) -> String {
    let e = error_of(err);
    assert_eq!(e["name"], "AuthenticationError", "{mechanism}: {e}");
    let text = e["message"].as_str().unwrap().to_owned();
    assert!(
        text.starts_with(&format!(
            "Kafka authentication failed for user `{user}` with {mechanism}: "
        )),
        "{mechanism}: {text}"
    );
    assert!(
        text.contains("SASL authentication error: Authentication failed"),
        "{mechanism}: the broker's reason is passed on: {text}"
    );
    text
}
