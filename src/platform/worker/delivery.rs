//! One delivery: decode it, run the function, publish what its outcome asks for, settle the delivery.

use std::sync::Arc;

use lapin::message::Delivery;
use lapin::types::FieldTable;
use serde_json::{Value, json};
use tracing::Instrument;

use super::super::emitter::{EmitterShared, IncomingRaw, PlatformEmitter};
use super::super::headers::{self, ExecutionHeaders};
use super::WorkerCtx;
use super::decode::{Decoded, NOT_JSON, decode_delivery};
use super::inflight::settle;
use crate::contract::{Action, Emit, Emitter, Execution, ExecutionIds, FunctionError};

/// Runs one delivery to its end: decoded, executed, its outcome published, settled.
pub(super) async fn handle_delivery(ctx: &WorkerCtx, mut delivery: Delivery) {
    let start = headers::now_ms();
    let started = std::time::Instant::now();
    let inflight_id = ctx.inflight.start(&delivery);
    let incoming = delivery.properties.headers().clone().unwrap_or_default();
    let Some(Decoded {
        mut msg,
        plaintext,
        version,
        body_in_text,
    }) = decode_for(ctx, &delivery.data, &incoming)
    else {
        if let Err(e) = settle(&ctx.inflight, inflight_id.as_deref(), &delivery.acker, true).await {
            tracing::error!(error = %e, "Reject failed.");
        }
        ctx.summary.record(started.elapsed(), true);
        return;
    };
    let exec_headers = ExecutionHeaders::for_delivery(&ctx.settings, &incoming, start);
    add_reply_to(&mut msg, exec_headers.reply_to.as_deref());
    let span = tracing::info_span!(
        "execution",
        message_id = %exec_headers.message_id,
        parent_message_id = exec_headers.parent_message_id.as_deref().unwrap_or(""),
        thread_id = %exec_headers.thread_id,
        step_id = %ctx.settings.step.step_id,
    );
    let ids = execution_ids(ctx, &exec_headers);
    async {
        tracing::debug!(size = delivery.data.len(), "Message received.");
        // The content and the plaintext move on, not copied (a 100-record message is tens of KB).
        let text = body_in_text.then_some(plaintext);
        let raw = IncomingRaw {
            content: std::mem::take(&mut delivery.data),
            protocol_version: version,
            properties: std::mem::take(&mut delivery.properties),
        };
        let emitter = PlatformEmitter::new(Arc::clone(&ctx.shared), exec_headers, raw).with_context(
            // Only passthrough reads the incoming message back; do not copy it otherwise.
            if ctx.shared.side.passthrough() { msg.clone() } else { Value::Null },
            ctx.cfg.get("_account").and_then(Value::as_str).map(str::to_owned),
        );
        let outcome = execute(ctx, &emitter, msg, text, ids).await;
        let reject = apply_outcome(ctx, &emitter, outcome).await;
        let result = settle(&ctx.inflight, inflight_id.as_deref(), &delivery.acker, reject).await;
        ctx.summary.record(started.elapsed(), reject);
        match result {
            Ok(()) => tracing::debug!(
                errors = emitter.error_count(),
                reject,
                "Message processed."
            ),
            Err(e) => tracing::error!(error = %e, "Ack/reject failed; the broker will redeliver the message."),
        }
    }
    .instrument(span)
    .await;
}

/// The delivery decoded for this worker's function: with the body left in the text when the function reads it
/// from there, unless passthrough is on (it copies the incoming message, body included, into every data message).
fn decode_for(ctx: &WorkerCtx, content: &[u8], incoming: &FieldTable) -> Option<Decoded> {
    let body_in_text = ctx.function.reads_body_from_text() && !ctx.shared.side.passthrough();
    let crypto = &ctx.shared.encoding.crypto;
    decode_delivery(
        crypto,
        ctx.settings.input_format,
        content,
        incoming,
        body_in_text,
    )
}

/// This execution's identifiers: the step's from the settings, the incoming message's and thread's from its
/// headers.
fn execution_ids(ctx: &WorkerCtx, h: &ExecutionHeaders) -> ExecutionIds {
    let step = &ctx.settings.step;
    let given = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    ExecutionIds {
        exec_id: given(&step.exec_id),
        message_id: h.parent_message_id.clone(),
        step_id: given(&step.step_id),
        flow_id: given(&step.flow_id),
        thread_id: given(&h.thread_id),
        container_id: given(&step.container_id),
    }
}

/// The message's `headers` is an object and carries the incoming `reply_to`.
fn add_reply_to(msg: &mut Value, reply_to: Option<&str>) {
    if let Some(obj) = msg.as_object_mut() {
        let h = obj.entry("headers").or_insert_with(|| json!({}));
        if !h.is_object() {
            *h = json!({});
        }
        if let (Some(reply_to), Some(h)) = (reply_to, h.as_object_mut()) {
            h.insert("reply_to".into(), Value::String(reply_to.to_owned()));
        }
    }
}

/// Fetches a lightweight body when the function wants it, then runs the function. `text`: the message's JSON
/// text when its `body` is not in `msg` ([`Execution::text`]).
async fn execute(
    ctx: &WorkerCtx,
    emitter: &PlatformEmitter,
    mut msg: Value,
    mut text: Option<Vec<u8>>,
    ids: ExecutionIds,
) -> Result<(), FunctionError> {
    if ctx.auto_resolve {
        match resolve_lightweight(&ctx.shared, &mut msg).await {
            Err(error) => {
                tracing::warn!(error = %error, "Lightweight body could not be fetched.");
                return Err(FunctionError::internal("Error", error));
            }
            // The body is the object store's now, in `msg`; the message text does not have it.
            Ok(true) => text = None,
            Ok(false) => {}
        }
    }
    let exec = Execution {
        msg,
        text,
        cfg: ctx.cfg.clone(),
        snapshot: ctx.shared.side.snapshot(),
        variables: ctx.variables.clone(),
        emitter: Emitter::new(Arc::new(emitter.clone()) as Arc<dyn Emit>),
        shutdown: ctx.shutdown.clone(),
        fatal: ctx.fatal.clone(),
        ids,
    };
    ctx.function.process(exec).await
}

/// Publishes what a failed execution's [`Action`] asks for; returns whether the delivery is rejected (any
/// error emitted during the execution rejects it too).
async fn apply_outcome(
    ctx: &WorkerCtx,
    emitter: &PlatformEmitter,
    outcome: Result<(), FunctionError>,
) -> bool {
    let Err(error) = outcome else {
        return emitter.error_count() > 0;
    };
    if error.action == Action::NotJson {
        // The verdict and log line of a message the decode refuses (`decode::decode_delivery`).
        tracing::warn!(error = %error.message, "{}", NOT_JSON);
        return true;
    }
    match error.level() {
        tracing::Level::ERROR => {
            tracing::error!(error_name = %error.name, fault = ?error.fault, action = ?error.action, error = %error.message, "Execution failed.")
        }
        _ => {
            tracing::warn!(error_name = %error.name, fault = ?error.fault, action = ?error.action, error = %error.message, "Execution failed.")
        }
    }
    let published = match error.action {
        Action::Rebound => match emitter.rebound(&error.message).await {
            Ok(()) => return emitter.error_count() > 0,
            // The message could not be brought back later: fail it instead of losing it silently.
            Err(e) => emitter.error(&FunctionError::from(e)).await,
        },
        Action::Reject | Action::Retry => emitter.error(&error).await,
        Action::Crash => {
            let published = emitter.error(&error).await;
            ctx.fatal.raise(error.message.clone());
            published
        }
        // Settled above, without the "Execution failed." line.
        Action::NotJson => Ok(()),
    };
    if let Err(e) = published {
        tracing::error!(error = %e, "Could not publish the execution's error.");
    }
    true
}

/// Replaces `body` by the object-store body when the message is lightweight (PROTOCOL.md 3.8); returns whether
/// it did.
async fn resolve_lightweight(shared: &EmitterShared, msg: &mut Value) -> Result<bool, String> {
    let Some(id) = msg
        .pointer("/headers/x-ipaas-object-storage-id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Ok(false);
    };
    let storage = shared
        .side
        .storage
        .as_ref()
        .ok_or("lightweight message received but ELASTICIO_OBJECT_STORAGE_URI is not set")?;
    let encrypted = storage.download(&id).await.map_err(|e| e.to_string())?;
    let plain = shared
        .encoding
        .crypto
        .decrypt(&encrypted)
        .map_err(|e| format!("object {id}: {e}"))?;
    let body: Value =
        serde_json::from_slice(&plain).map_err(|e| format!("object {id} is not JSON: {e}"))?;
    msg["body"] = body;
    Ok(true)
}
