//! The platform's emitter (PROTOCOL.md 4): the [`Emit`] implementation that encrypts each event, adds its
//! headers, routes it, throttles it, publishes it with confirms and counts the execution's errors.
//!
//! What every execution shares is split by role: [`Transport`] (publisher, routes), [`Encoding`] (cipher,
//! protocol version, size limit), [`Throttles`], [`SideChannels`] (platform API, object store, snapshot,
//! passthrough) and [`Rules`] (rebound, passthrough and error-reply rules of the step). Does not own acking:
//! the worker settles the delivery from the function's outcome and [`PlatformEmitter::error_count`].

mod body;
mod shared;
pub mod throttle;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lapin::BasicProperties;
use serde_json::{Value, json};

use self::shared::to_json;
pub use self::shared::{EmitterShared, Encoding, Rules, SideChannels, Transport};
pub use self::throttle::{RateLimiter, Throttles};
use super::amqp::{AmqpError, Outgoing};
use super::crypto::Crypto;
use super::headers::{self, ExecutionHeaders};
use crate::contract::{
    Confirm, Emit, EmitError, EmitFuture, FunctionError, RawMessage, error_chain,
};

impl From<AmqpError> for EmitError {
    fn from(e: AmqpError) -> Self {
        Self::Platform(error_chain(&e))
    }
}

impl From<super::api::ApiError> for EmitError {
    fn from(e: super::api::ApiError) -> Self {
        Self::Platform(error_chain(&e))
    }
}

impl From<super::storage::StorageError> for EmitError {
    fn from(e: super::storage::StorageError) -> Self {
        Self::Platform(format!(
            "Lightweight message/passthrough body upload error: {}",
            error_chain(&e)
        ))
    }
}

/// The incoming delivery an execution belongs to (for `errorInput` and rebound).
#[derive(Debug, Clone, Default)]
pub struct IncomingRaw {
    /// Content bytes exactly as received.
    pub content: Vec<u8>,
    /// Incoming `protocolVersion`.
    pub protocol_version: u8,
    /// Incoming AMQP properties (headers included).
    pub properties: BasicProperties,
}

/// The emitter of one delivery. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PlatformEmitter {
    shared: Arc<EmitterShared>,
    headers: Arc<ExecutionHeaders>,
    incoming: Arc<IncomingRaw>,
    errors: Arc<AtomicUsize>,
    /// The decoded incoming message (passthrough) and the credential id (updateKeys).
    context: Arc<(Value, Option<String>)>,
}

impl PlatformEmitter {
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

    /// A data message as a `Value`: its `x-eio-routing-key` header, passthrough and lightweight bodies applied.
    async fn send_data(&self, mut message: Value) -> Result<Confirm, EmitError> {
        let s = &self.shared;
        let routing_key =
            body::take_routing_key(&mut message).unwrap_or_else(|| s.transport.data_key.clone());
        if s.side.passthrough() {
            body::add_passthrough(
                &mut message,
                &self.context.0,
                &self.incoming.properties,
                &s.rules,
            );
        }
        if s.side.emit_lightweight {
            body::offload_bodies(&mut message, s).await?;
        }
        let id = message.get("id").and_then(Value::as_str).map(str::to_owned);
        let payload = s
            .encoding
            .seal(&to_json(&message)?, s.encoding.protocol_version)?;
        self.publish_data(routing_key, payload, id.as_deref()).await
    }

    /// A data message that is already JSON: sealed as it is (it has no headers, so no routing key of its own),
    /// unless passthrough or lightweight bodies edit it, which take the `Value` path (the same bytes).
    async fn send_data_raw(&self, message: RawMessage) -> Result<Confirm, EmitError> {
        let s = &self.shared;
        if s.side.passthrough() || s.side.emit_lightweight {
            let value = message.to_value().map_err(|e| EmitError::serialize(&e))?;
            return self.send_data(value).await;
        }
        let payload = s
            .encoding
            .seal(message.json(), s.encoding.protocol_version)?;
        let routing_key = s.transport.data_key.clone();
        self.publish_data(routing_key, payload, Some(message.id()))
            .await
    }

    /// Publishes a sealed data message (after the data throttle) with the data headers of `id`.
    async fn publish_data(
        &self,
        routing_key: String,
        payload: Vec<u8>,
        id: Option<&str>,
    ) -> Result<Confirm, EmitError> {
        let s = &self.shared;
        s.throttles.data.acquire().await;
        let headers = self.headers.data(id, s.encoding.protocol_version);
        let confirming = s
            .transport
            .publisher
            .send(Outgoing::new(routing_key, payload, headers))
            .await;
        Ok(Confirm::new(async move {
            confirming.wait().await.map_err(EmitError::from)
        }))
    }

    async fn send_error(&self, error: &FunctionError) -> Result<(), EmitError> {
        self.errors.fetch_add(1, Ordering::SeqCst);
        self.publish_error(error).await
    }

    /// Publishes an error message (and its `reply_to` copy) without counting it towards the reject.
    async fn publish_error(&self, error: &FunctionError) -> Result<(), EmitError> {
        tracing::info!(error_name = %error.name, error = %error.message, "Execution emitted an error.");
        let s = &self.shared;
        let err = json!({ "name": error.name, "message": error.message, "stack": "Not Available" });
        let encrypted = s.encoding.crypto.encode_base64(&to_json(&err)?);
        let mut body = json!({ "error": encrypted });
        if !self.incoming.content.is_empty() {
            body["errorInput"] = Value::String(self.error_input());
        }
        let payload = to_json(&body)?;
        s.throttles.error.acquire().await;
        let out = Outgoing::new(
            s.transport.error_key.as_str(),
            payload,
            self.headers.error(),
        );
        s.transport.publisher.send(out).await.wait().await?;
        if let Some(reply_to) = &self.headers.reply_to
            && !s.rules.no_error_replies
        {
            let table = self.headers.error().with(
                "x-eio-error-response",
                lapin::types::AMQPValue::Boolean(true),
            );
            let out = Outgoing::new(reply_to.as_str(), encrypted.into_bytes(), table);
            s.transport.publisher.send(out).await.wait().await?;
        }
        Ok(())
    }

    /// `errorInput`: the incoming content as base64 ciphertext. A version 2 content is the raw ciphertext, which
    /// is what encrypting its plaintext again gives (fixed key and IV, and the padding it decrypted with).
    fn error_input(&self) -> String {
        if self.incoming.protocol_version < 2 {
            String::from_utf8_lossy(&self.incoming.content).into_owned()
        } else {
            Crypto::raw_to_base64(&self.incoming.content)
        }
    }

    /// `rebound`: the original message comes back after a growing delay, up to the rebound limit (then an
    /// error "Rebound limit exceeded" is published instead). Does not count as an error.
    async fn send_rebound(&self, reason: &str) -> Result<(), EmitError> {
        let s = &self.shared;
        let empty = lapin::types::FieldTable::default();
        let incoming_headers = self
            .incoming
            .properties
            .headers()
            .as_ref()
            .unwrap_or(&empty);
        let iteration = headers::get_num(incoming_headers, "reboundIteration").map_or(1, |n| n + 1);
        if iteration > i64::from(s.rules.rebound_limit) {
            let error = FunctionError::unavailable("Rebound limit exceeded");
            // Reference behaviour (Q4): the error is published but the delivery is still acked.
            return self.publish_error(&error).await;
        }
        let exponent = u32::try_from(iteration - 1).unwrap_or(u32::MAX).min(31);
        let expiration = s
            .rules
            .rebound_initial_expiration
            .saturating_mul(2u32.saturating_pow(exponent))
            .as_millis();
        let mut table = incoming_headers.clone();
        headers::set(&mut table, "end", headers::int(headers::now_ms()));
        headers::set(&mut table, "reboundReason", headers::string(reason));
        headers::set(&mut table, "reboundIteration", headers::int(iteration));
        tracing::info!(iteration, expiration_ms = %expiration, "Rebounding message.");
        let out = Outgoing {
            routing_key: s.transport.rebound_key.clone(),
            payload: self.incoming.content.clone(),
            headers: table.into(),
            expiration: Some(expiration.to_string()),
            base_properties: Some(self.incoming.properties.clone()),
        };
        s.transport.publisher.send(out).await.wait().await?;
        Ok(())
    }

    /// `snapshot` (event `snapshot`, replacing it) or `updateSnapshot` (the partial object): plain JSON.
    async fn send_snapshot(&self, snapshot: &Value, event: &str) -> Result<(), EmitError> {
        let s = &self.shared;
        if event == "snapshot" {
            s.side.set_snapshot(snapshot.clone());
            s.throttles.snapshot.acquire().await;
        }
        let out = Outgoing::new(
            s.transport.snapshot_key.as_str(),
            to_json(snapshot)?,
            self.headers.snapshot(event),
        );
        s.transport.publisher.send(out).await.wait().await?;
        Ok(())
    }

    /// `updateSnapshot`: a shallow merge into the in-memory snapshot, published as the partial object.
    /// Non-objects are logged and ignored; an object with `$set` is ignored with a warning (reference behaviour).
    async fn merge_snapshot(&self, partial: &Value) -> Result<(), EmitError> {
        let Some(obj) = partial.as_object() else {
            tracing::warn!("updateSnapshot with a non-object value: ignored.");
            return Ok(());
        };
        if obj.contains_key("$set") {
            tracing::warn!("updateSnapshot with `$set` is not supported: ignored.");
            return Ok(());
        }
        let mut current = self.shared.side.snapshot();
        if !current.is_object() {
            current = json!({});
        }
        if let Some(c) = current.as_object_mut() {
            for (k, v) in obj {
                c.insert(k.clone(), v.clone());
            }
        }
        self.shared.side.set_snapshot(current);
        self.send_snapshot(partial, "updateSnapshot").await
    }

    /// `httpReply` to the incoming `reply_to` (encrypted, base64, `protocolVersion: 1`).
    async fn send_http_reply(&self, reply: &Value) -> Result<(), EmitError> {
        let s = &self.shared;
        let reply_to = self.headers.reply_to.clone().ok_or(EmitError::NoReplyTo)?;
        let payload = s.encoding.seal(&to_json(reply)?, 1)?;
        let out = Outgoing::new(reply_to, payload, self.headers.http_reply());
        s.transport.publisher.send(out).await.wait().await?;
        Ok(())
    }

    /// `updateKeys`: `PUT /v1/accounts/{cfg._account}` with `{"keys": keys}`.
    async fn send_update_keys(&self, keys: &Value) -> Result<(), EmitError> {
        let account = self.context.1.clone().ok_or(EmitError::NoAccount)?;
        self.shared.side.api.update_keys(&account, keys).await?;
        Ok(())
    }
}

impl Emit for PlatformEmitter {
    fn data_send(&self, message: Value) -> EmitFuture<'_, Confirm> {
        Box::pin(self.send_data(message))
    }

    fn data_send_raw(&self, message: RawMessage) -> EmitFuture<'_, Confirm> {
        Box::pin(self.send_data_raw(message))
    }

    fn error<'a>(&'a self, error: &'a FunctionError) -> EmitFuture<'a, ()> {
        Box::pin(self.send_error(error))
    }

    fn rebound<'a>(&'a self, reason: &'a str) -> EmitFuture<'a, ()> {
        Box::pin(self.send_rebound(reason))
    }

    fn snapshot<'a>(&'a self, snapshot: &'a Value) -> EmitFuture<'a, ()> {
        Box::pin(self.send_snapshot(snapshot, "snapshot"))
    }

    fn update_snapshot<'a>(&'a self, partial: &'a Value) -> EmitFuture<'a, ()> {
        Box::pin(self.merge_snapshot(partial))
    }

    fn http_reply<'a>(&'a self, reply: &'a Value) -> EmitFuture<'a, ()> {
        Box::pin(self.send_http_reply(reply))
    }

    fn update_keys<'a>(&'a self, keys: &'a Value) -> EmitFuture<'a, ()> {
        Box::pin(self.send_update_keys(keys))
    }
}
