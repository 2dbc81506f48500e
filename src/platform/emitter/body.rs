//! What a data message's body goes through before it is encrypted: the `x-eio-routing-key` header,
//! passthrough (PROTOCOL.md 3.5) and lightweight bodies in the object store (PROTOCOL.md 3.8).

use lapin::BasicProperties;
use serde_json::{Value, json};

use super::super::headers;
use super::super::storage::StorageError;
use super::shared::to_json;
use super::{EmitterShared, Rules};
use crate::contract::EmitError;

/// Removes an `x-eio-routing-key` header (any case) and returns its value.
pub(super) fn take_routing_key(message: &mut Value) -> Option<String> {
    let obj = message.as_object_mut()?;
    let hdrs = obj.entry("headers").or_insert_with(|| json!({}));
    let h = hdrs.as_object_mut()?;
    let key = h
        .keys()
        .find(|k| k.eq_ignore_ascii_case("x-eio-routing-key"))
        .cloned()?;
    match h.remove(&key) {
        Some(Value::String(rk)) => Some(rk),
        _ => None,
    }
}

/// Passthrough: the incoming passthrough plus this step's entry (or the previous step's, with
/// `no_self_passthrough`).
pub(super) fn add_passthrough(
    message: &mut Value,
    incoming: &Value,
    properties: &BasicProperties,
    rules: &Rules,
) {
    let mut pt = incoming
        .get("passthrough")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let without_pt = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("passthrough");
        }
        v
    };
    if rules.no_self_passthrough {
        let empty = lapin::types::FieldTable::default();
        let hdrs = properties.headers().as_ref().unwrap_or(&empty);
        if let Some(prev) = headers::get_str(hdrs, "stepId") {
            pt[prev] = without_pt(incoming);
        }
    } else {
        pt[rules.step_id.clone()] = without_pt(message);
    }
    message["passthrough"] = pt;
}

/// Bodies above the threshold go to the object store; the message keeps their object ids.
pub(super) async fn offload_bodies(
    message: &mut Value,
    s: &EmitterShared,
) -> Result<(), EmitError> {
    let size = |v: &Value| to_json(v).map_or(0, |b| b.len());
    let mut total = message.get("body").map_or(0, size);
    if let Some(pt) = message.get("passthrough").and_then(Value::as_object) {
        total += pt
            .values()
            .filter_map(|e| e.get("body"))
            .map(size)
            .sum::<usize>();
    }
    if u64::try_from(total).unwrap_or(u64::MAX) <= s.side.size_threshold {
        return Ok(());
    }
    let storage = s.side.storage.as_ref().ok_or(StorageError::NotConfigured)?;
    let upload = |body: &Value| {
        let plain = to_json(body);
        async move {
            let id = storage.upload(s.encoding.crypto.encrypt(&plain?)).await?;
            Ok::<String, EmitError>(id)
        }
    };
    let id = upload(message.get("body").unwrap_or(&Value::Null)).await?;
    message["body"] = json!({});
    message["headers"]["x-ipaas-object-storage-id"] = Value::String(id);
    if let Some(pt) = message
        .get_mut("passthrough")
        .and_then(Value::as_object_mut)
    {
        for entry in pt.values_mut() {
            let has_id = entry
                .pointer("/headers/x-ipaas-object-storage-id")
                .is_some();
            let body = entry.get("body").cloned().unwrap_or(Value::Null);
            if has_id || body.as_object().is_some_and(serde_json::Map::is_empty) {
                continue;
            }
            let id = upload(&body).await?;
            entry["body"] = json!({});
            entry["headers"]["x-ipaas-object-storage-id"] = Value::String(id);
        }
    }
    Ok(())
}
