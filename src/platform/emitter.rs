//! The emitter handle that actions and triggers use to emit `data`, `error`, `rebound` and `snapshot`
//! (PROTOCOL.md 4). Every emit returns after the broker confirmed the publish.
//!
//! Owns the wire format of each event (encryption, error wrapper, headers, routing keys, size limit,
//! throttles) and the execution's error count. Does not own acking: the worker acks or rejects once
//! the function returned, from [`Emitter::error_count`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lapin::BasicProperties;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::amqp::{AmqpError, Confirming, Outgoing, Sink};
use super::crypto::Crypto;
use super::headers::{self, ExecutionHeaders};
use crate::settings::{AmqpSettings, Settings};

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The encrypted message is larger than `ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT`.
    #[error("Outgoing message size {size} exceeds limit of {limit}.")]
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Publishing failed.
    #[error(transparent)]
    Publish(#[from] AmqpError),
    /// `httpReply` without a `reply_to` header on the incoming message.
    #[error("Component emitted 'httpReply' event but 'reply_to' was not found in AMQP headers")]
    NoReplyTo,
    /// A platform API call failed (updateKeys).
    #[error(transparent)]
    Api(#[from] super::api::ApiError),
    /// The object store failed (lightweight messages).
    #[error("Lightweight message/passthrough body upload error: {0}")]
    Storage(#[from] super::storage::StorageError),
    /// updateKeys without `cfg._account`.
    #[error("updateKeys needs the credential id (`_account`) in the step configuration")]
    NoAccount,
}

/// At most `limit` events in any window of `interval` (the reference throttles, PROTOCOL.md 2.3).
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    interval: Duration,
    recent: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// A limiter allowing `limit` events per `interval`.
    pub fn new(limit: u64, interval: Duration) -> Self {
        Self {
            limit: usize::try_from(limit.max(1)).unwrap_or(usize::MAX),
            interval,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until one more event fits in the window, then records it.
    pub async fn acquire(&self) {
        let mut recent = self.recent.lock().await;
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.interval)
        {
            recent.pop_front();
        }
        if recent.len() >= self.limit
            && let Some(oldest) = recent.pop_front()
        {
            // Holding the lock while sleeping keeps emits in order.
            tokio::time::sleep_until(oldest + self.interval).await;
        }
        recent.push_back(Instant::now());
    }
}

/// What every execution shares: publisher, cipher, settings, throttles.
#[derive(Debug)]
pub struct EmitterShared {
    /// Where messages go (the confirm-mode publisher in message mode).
    pub sink: Sink,
    /// The message cipher.
    pub crypto: Crypto,
    /// Process settings.
    pub settings: Settings,
    /// AMQP part of the settings (always present in message mode).
    pub amqp: AmqpSettings,
    data_limit: RateLimiter,
    error_limit: RateLimiter,
    snapshot_limit: RateLimiter,
    snapshot_state: std::sync::Mutex<Value>,
    /// Platform API (updateKeys); `None` in the local runner.
    pub api: Option<super::api::ApiClient>,
    /// Object store for lightweight messages, when configured.
    pub storage: Option<super::storage::ObjectStorage>,
    passthrough: std::sync::atomic::AtomicBool,
}

impl EmitterShared {
    /// Adds the platform API (updateKeys) and the object store (lightweight messages).
    #[must_use]
    pub fn with_platform(
        mut self,
        api: Option<super::api::ApiClient>,
        storage: Option<super::storage::ObjectStorage>,
    ) -> Self {
        self.api = api;
        self.storage = storage;
        self
    }

    /// Turns passthrough on (the step's `is_passthrough`).
    pub fn set_passthrough(&self, on: bool) {
        self.passthrough.store(on, Ordering::SeqCst);
    }

    /// Whether emits carry passthrough (and so need the incoming message).
    pub fn passthrough(&self) -> bool {
        self.passthrough.load(Ordering::SeqCst)
    }

    /// The in-memory snapshot handed to the next execution.
    pub fn snapshot(&self) -> Value {
        self.snapshot_state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the in-memory snapshot.
    pub fn set_snapshot(&self, value: Value) {
        match self.snapshot_state.lock() {
            Ok(mut s) => *s = value,
            Err(p) => *p.into_inner() = value,
        }
    }

    /// Builds the shared part.
    pub fn new(sink: Sink, crypto: Crypto, settings: Settings, amqp: AmqpSettings) -> Self {
        let t = settings.throttles;
        Self {
            sink,
            crypto,
            amqp,
            data_limit: RateLimiter::new(t.data, t.interval),
            error_limit: RateLimiter::new(t.error, t.interval),
            snapshot_limit: RateLimiter::new(t.snapshot, t.interval),
            snapshot_state: std::sync::Mutex::new(Value::Object(Default::default())),
            api: None,
            storage: None,
            passthrough: std::sync::atomic::AtomicBool::new(false),
            settings,
        }
    }
}

/// The incoming delivery an execution belongs to (for `errorInput` and rebound).
#[derive(Debug, Clone, Default)]
pub struct IncomingRaw {
    /// Content bytes exactly as received.
    pub content: Vec<u8>,
    /// Decrypted plaintext.
    pub plaintext: Vec<u8>,
    /// Incoming `protocolVersion`.
    pub protocol_version: u8,
    /// Incoming AMQP properties (headers included).
    pub properties: BasicProperties,
}

/// A data message as the reference library's `newMessageWithBody` builds it: a fresh UUID `id` (which becomes the
/// message's `messageId` header, PROTOCOL.md 3.2 and Q10), the body, and empty `headers`, `attachments` and
/// `metadata`. Every data message gets its own `id`: a next step on the reference runtime acks and deduplicates by
/// `messageId` (Q1), so two messages sharing one could leave one of them unacked.
#[must_use]
pub fn new_message(body: Value) -> Value {
    let mut m = serde_json::Map::with_capacity(5);
    m.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    m.insert("body".into(), body);
    m.insert("headers".into(), Value::Object(serde_json::Map::new()));
    m.insert("attachments".into(), Value::Object(serde_json::Map::new()));
    m.insert("metadata".into(), Value::Object(serde_json::Map::new()));
    Value::Object(m)
}

/// A handle to emit the events of one execution. Cheap to clone; valid after the execution ended
/// (a real-time trigger keeps emitting with its first tick's headers).
#[derive(Debug, Clone)]
pub struct Emitter {
    shared: Arc<EmitterShared>,
    headers: Arc<ExecutionHeaders>,
    incoming: Arc<IncomingRaw>,
    errors: Arc<AtomicUsize>,
    /// The decoded incoming message (passthrough) and the credential id (updateKeys).
    context: Arc<(Value, Option<String>)>,
}

/// An error as published: `{name, message, stack}`.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// Error class, e.g. `ValidationError`.
    pub name: String,
    /// Human-readable, actionable text.
    pub message: String,
}

impl ErrorReport {
    /// A report named `name`.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
        }
    }
}

impl Emitter {
    /// The emitter of one delivery.
    pub fn new(
        shared: Arc<EmitterShared>,
        headers: ExecutionHeaders,
        incoming: IncomingRaw,
    ) -> Self {
        Self {
            shared,
            headers: Arc::new(headers),
            incoming: Arc::new(incoming),
            errors: Arc::new(AtomicUsize::new(0)),
            context: Arc::new((Value::Null, None)),
        }
    }

    /// Attaches the decoded incoming message and the credential id (`cfg._account`).
    #[must_use]
    pub fn with_context(mut self, incoming_msg: Value, account: Option<String>) -> Self {
        self.context = Arc::new((incoming_msg, account));
        self
    }

    /// How many `error` events this execution emitted.
    pub fn error_count(&self) -> usize {
        self.errors.load(Ordering::SeqCst)
    }

    /// The execution's header set.
    pub fn headers(&self) -> &ExecutionHeaders {
        &self.headers
    }

    /// Emits `data`: `message` is a full message object (`{id?, body, headers?, ...}`). Returns once the
    /// broker confirmed it.
    ///
    /// # Errors
    /// [`EmitError::TooLarge`] above the outgoing size limit; [`EmitError::Publish`].
    pub async fn data(&self, message: Value) -> Result<(), EmitError> {
        self.data_send(message).await?.wait().await?;
        Ok(())
    }

    /// Sends `data` in order and returns without waiting for the confirm, so a stream of records can keep
    /// several messages in flight; the caller must await [`Confirming::wait`] before treating it as delivered.
    ///
    /// # Errors
    /// [`EmitError::TooLarge`] above the outgoing size limit.
    pub async fn data_send(&self, mut message: Value) -> Result<Confirming, EmitError> {
        let s = &self.shared;
        let mut routing_key = s.amqp.data_routing_key.clone();
        if let Some(obj) = message.as_object_mut() {
            let hdrs = obj.entry("headers").or_insert_with(|| json!({}));
            if let Some(h) = hdrs.as_object_mut() {
                let key = h
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case("x-eio-routing-key"))
                    .cloned();
                if let Some(key) = key
                    && let Some(Value::String(rk)) = h.remove(&key)
                {
                    routing_key = rk;
                }
            }
        }
        if s.passthrough() {
            self.add_passthrough(&mut message);
        }
        if s.settings.object_storage.emit_lightweight_message {
            self.offload_bodies(&mut message).await?;
        }
        let id = message.get("id").and_then(Value::as_str).map(str::to_owned);
        let plain = serde_json::to_vec(&message).unwrap_or_default();
        let readable = message;
        let version = s.settings.protocol_version;
        let payload = s.crypto.encode(&plain, version);
        let limit = s.settings.outgoing_message_size_limit;
        if payload.len() > limit {
            return Err(EmitError::TooLarge {
                size: payload.len(),
                limit,
            });
        }
        s.data_limit.acquire().await;
        let headers = self.headers.data(id.as_deref(), version);
        Ok(s.sink
            .send("data", Outgoing::new(routing_key, payload, headers), || {
                readable
            })
            .await)
    }

    /// Passthrough (PROTOCOL.md 3.5): incoming passthrough plus this step's entry.
    fn add_passthrough(&self, message: &mut Value) {
        let s = &self.shared;
        let incoming = &self.context.0;
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
        if s.settings.no_self_passthrough {
            let empty = lapin::types::FieldTable::default();
            let hdrs = self
                .incoming
                .properties
                .headers()
                .as_ref()
                .unwrap_or(&empty);
            if let Some(prev) = headers::get_str(hdrs, "stepId") {
                pt[prev] = without_pt(incoming);
            }
        } else {
            pt[s.settings.step.step_id.clone()] = without_pt(message);
        }
        message["passthrough"] = pt;
    }

    /// Lightweight messages (PROTOCOL.md 3.8): bodies above the threshold go to the object store.
    async fn offload_bodies(&self, message: &mut Value) -> Result<(), EmitError> {
        let s = &self.shared;
        let size = |v: &Value| serde_json::to_vec(v).map_or(0, |b| b.len());
        let mut total = message.get("body").map_or(0, size);
        if let Some(pt) = message.get("passthrough").and_then(Value::as_object) {
            total += pt
                .values()
                .filter_map(|e| e.get("body"))
                .map(size)
                .sum::<usize>();
        }
        if u64::try_from(total).unwrap_or(u64::MAX) <= s.settings.object_storage.size_threshold {
            return Ok(());
        }
        let storage = s
            .storage
            .as_ref()
            .ok_or(super::storage::StorageError::NotConfigured)?;
        let upload = |body: &Value| {
            storage.upload(
                s.crypto
                    .encrypt(&serde_json::to_vec(body).unwrap_or_default()),
            )
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

    /// Emits `httpReply` to the incoming `reply_to` (encrypted, base64, `protocolVersion: 1`).
    ///
    /// # Errors
    /// [`EmitError::NoReplyTo`], [`EmitError::TooLarge`], [`EmitError::Publish`].
    pub async fn http_reply(&self, reply: &Value) -> Result<(), EmitError> {
        let s = &self.shared;
        let reply_to = self.headers.reply_to.clone().ok_or(EmitError::NoReplyTo)?;
        let payload = s
            .crypto
            .encode(&serde_json::to_vec(reply).unwrap_or_default(), 1);
        let limit = s.settings.outgoing_message_size_limit;
        if payload.len() > limit {
            return Err(EmitError::TooLarge {
                size: payload.len(),
                limit,
            });
        }
        let out = Outgoing::new(reply_to, payload, self.headers.http_reply());
        s.sink
            .send("httpReply", out, || reply.clone())
            .await
            .wait()
            .await?;
        Ok(())
    }

    /// Emits `updateKeys`: `PUT /v1/accounts/{cfg._account}` with `{"keys": keys}`.
    ///
    /// # Errors
    /// [`EmitError::NoAccount`], [`EmitError::Api`].
    pub async fn update_keys(&self, keys: &Value) -> Result<(), EmitError> {
        let account = self.context.1.clone().ok_or(EmitError::NoAccount)?;
        match &self.shared.api {
            Some(api) => api.update_keys(&account, keys).await?,
            None => {
                if let Sink::Local(tx) = &self.shared.sink {
                    tx.deliver(super::amqp::LocalMessage {
                        event: "updateKeys",
                        message: keys.clone(),
                    })
                    .await;
                }
            }
        }
        Ok(())
    }

    /// Emits `updateSnapshot`: a shallow merge into the in-memory snapshot, published as the partial object.
    /// Non-objects are logged and ignored; an object with `$set` is ignored with a warning (reference behaviour).
    ///
    /// # Errors
    /// [`EmitError::Publish`].
    pub async fn update_snapshot(&self, partial: &Value) -> Result<(), EmitError> {
        let Some(obj) = partial.as_object() else {
            tracing::warn!("updateSnapshot with a non-object value: ignored.");
            return Ok(());
        };
        if obj.contains_key("$set") {
            tracing::warn!("updateSnapshot with `$set` is not supported: ignored.");
            return Ok(());
        }
        let mut current = self.shared.snapshot();
        if !current.is_object() {
            current = json!({});
        }
        if let Some(c) = current.as_object_mut() {
            for (k, v) in obj {
                c.insert(k.clone(), v.clone());
            }
        }
        self.shared.set_snapshot(current);
        self.snapshot(partial, "updateSnapshot").await
    }

    /// Emits `error` (and its copy to `reply_to`); the execution will be rejected.
    ///
    /// # Errors
    /// [`EmitError::Publish`]; the error still counts for the reject.
    pub async fn error(&self, report: &ErrorReport) -> Result<(), EmitError> {
        self.errors.fetch_add(1, Ordering::SeqCst);
        self.publish_error(report).await
    }

    /// Publishes an error message (and its `reply_to` copy) without counting it towards the reject.
    async fn publish_error(&self, report: &ErrorReport) -> Result<(), EmitError> {
        tracing::info!(error_name = %report.name, error = %report.message, "Execution emitted an error.");
        let s = &self.shared;
        let encrypted = self.encrypted_error(report);
        let mut body = json!({ "error": encrypted });
        if !self.incoming.content.is_empty() {
            body["errorInput"] = Value::String(self.error_input());
        }
        let payload = serde_json::to_vec(&body).unwrap_or_default();
        s.error_limit.acquire().await;
        let readable = || json!({ "name": report.name, "message": report.message });
        s.sink
            .send(
                "error",
                Outgoing::new(
                    s.amqp.error_routing_key.as_str(),
                    payload,
                    self.headers.error(),
                ),
                readable,
            )
            .await
            .wait()
            .await?;
        if let Some(reply_to) = &self.headers.reply_to
            && !s.settings.no_error_replies
        {
            let mut table = self.headers.error();
            headers::set(
                &mut table,
                "x-eio-error-response",
                lapin::types::AMQPValue::Boolean(true),
            );
            s.sink
                .send(
                    "errorReply",
                    Outgoing::new(reply_to.as_str(), encrypted.into_bytes(), table),
                    readable,
                )
                .await
                .wait()
                .await?;
        }
        Ok(())
    }

    fn encrypted_error(&self, report: &ErrorReport) -> String {
        let err =
            json!({ "name": report.name, "message": report.message, "stack": "Not Available" });
        self.shared
            .crypto
            .encode_base64(&serde_json::to_vec(&err).unwrap_or_default())
    }

    /// `errorInput`: the incoming content as base64 ciphertext.
    fn error_input(&self) -> String {
        if self.incoming.protocol_version < 2 {
            String::from_utf8_lossy(&self.incoming.content).into_owned()
        } else {
            self.shared.crypto.encode_base64(&self.incoming.plaintext)
        }
    }

    /// Emits `rebound`: the original message comes back after a growing delay, up to the rebound limit
    /// (then an error "Rebound limit exceeded" is published instead). Does not count as an error.
    ///
    /// # Errors
    /// [`EmitError::Publish`].
    pub async fn rebound(&self, reason: &str) -> Result<(), EmitError> {
        let s = &self.shared;
        let empty = lapin::types::FieldTable::default();
        let incoming_headers = self
            .incoming
            .properties
            .headers()
            .as_ref()
            .unwrap_or(&empty);
        let iteration = headers::get_num(incoming_headers, "reboundIteration").map_or(1, |n| n + 1);
        if iteration > i64::from(s.settings.rebound_limit) {
            let report = ErrorReport::new("Error", "Rebound limit exceeded");
            // Reference behaviour (Q4): the error is published but the delivery is still acked.
            return self.publish_error(&report).await;
        }
        let exponent = u32::try_from(iteration - 1).unwrap_or(u32::MAX).min(31);
        let expiration = s
            .settings
            .rebound_initial_expiration
            .saturating_mul(2u32.saturating_pow(exponent))
            .as_millis();
        let mut table = incoming_headers.clone();
        headers::set(&mut table, "end", headers::int(headers::now_ms()));
        headers::set(&mut table, "reboundReason", headers::string(reason));
        headers::set(&mut table, "reboundIteration", headers::int(iteration));
        tracing::info!(iteration, expiration_ms = %expiration, "Rebounding message.");
        let out = Outgoing {
            routing_key: s.amqp.rebound_routing_key.clone(),
            payload: self.incoming.content.clone(),
            headers: table,
            expiration: Some(expiration.to_string()),
            base_properties: Some(self.incoming.properties.clone()),
        };
        let readable = || json!({ "reason": reason, "iteration": iteration, "expirationMs": expiration.to_string() });
        s.sink.send("rebound", out, readable).await.wait().await?;
        Ok(())
    }

    /// Emits `snapshot` (plain JSON, `snapshotEvent: snapshot`).
    ///
    /// # Errors
    /// [`EmitError::Publish`].
    pub async fn snapshot(&self, snapshot: &Value, event: &str) -> Result<(), EmitError> {
        let s = &self.shared;
        if event == "snapshot" {
            s.set_snapshot(snapshot.clone());
            s.snapshot_limit.acquire().await;
        }
        let payload = serde_json::to_vec(snapshot).unwrap_or_default();
        let out = Outgoing::new(
            s.amqp.snapshot_routing_key.as_str(),
            payload,
            self.headers.snapshot(event),
        );
        let name = if event == "snapshot" {
            "snapshot"
        } else {
            "updateSnapshot"
        };
        s.sink
            .send(name, out, || snapshot.clone())
            .await
            .wait()
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_events_by_the_interval() {
        let limiter = RateLimiter::new(2, Duration::from_millis(100));
        let t0 = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        limiter.acquire().await;
        assert!(t0.elapsed() >= Duration::from_millis(100));
        let limiter = RateLimiter::new(1, Duration::from_millis(110));
        let t1 = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert!(t1.elapsed() >= Duration::from_millis(110));
    }
}
