//! How a function emits: the [`Emitter`] handle over the runtime's [`Emit`] implementation (the platform's
//! AMQP publisher, or the local runner's stdout). Functions see only this interface.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use super::error::FunctionError;
use super::json::WriteJson;
use super::message::RawMessage;

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The encoded message is larger than the platform's outgoing limit.
    #[error("Outgoing message size {size} exceeds limit of {limit}.")]
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// `httpReply` without a `reply_to` header on the incoming message.
    #[error("Component emitted 'httpReply' event but 'reply_to' was not found in AMQP headers")]
    NoReplyTo,
    /// updateKeys without `cfg._account`.
    #[error("updateKeys needs the credential id (`_account`) in the step configuration")]
    NoAccount,
    /// The platform did not take the message (publish, confirm, API or object store failure); the text
    /// carries the cause chain.
    #[error("{0}")]
    Platform(String),
}

impl EmitError {
    /// A message that could not be serialized (a bug of ours, never published as an empty payload).
    pub fn serialize(e: &serde_json::Error) -> Self {
        Self::Platform(format!("cannot serialize the message: {e}"))
    }
}

/// The wait for the runtime to have a sent message for good (the broker's publisher confirm). Sending in
/// order and waiting later keeps several messages in flight without reordering them.
#[must_use = "a message is only delivered once its confirm was awaited"]
pub struct Confirm(BoxFuture<'static, Result<(), EmitError>>);

impl Confirm {
    /// A confirm that is `wait`.
    pub fn new(wait: impl Future<Output = Result<(), EmitError>> + Send + 'static) -> Self {
        Self(Box::pin(wait))
    }

    /// A message that needed no confirm.
    pub fn done() -> Self {
        Self::new(std::future::ready(Ok(())))
    }

    /// Waits until the message is delivered.
    ///
    /// # Errors
    /// The message was not delivered.
    pub async fn wait(self) -> Result<(), EmitError> {
        self.0.await
    }
}

impl fmt::Debug for Confirm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Confirm")
    }
}

impl From<EmitError> for FunctionError {
    fn from(e: EmitError) -> Self {
        let text = super::error::error_chain(&e);
        match e {
            // The message the function built is too large for the platform: the data's size is the cause.
            EmitError::TooLarge { .. } => Self::data("Error", text),
            EmitError::NoReplyTo | EmitError::NoAccount => Self::config("Error", text),
            EmitError::Platform(_) => Self::internal("Error", text),
        }
    }
}

/// A boxed emit future.
pub type EmitFuture<'a, T> = BoxFuture<'a, Result<T, EmitError>>;

/// What a runtime does with each event of one execution (PROTOCOL.md 4).
pub trait Emit: Send + Sync + fmt::Debug {
    /// Sends a `data` message (a full message object `{id?, body, headers?, ...}`) in order.
    fn data_send(&self, message: Value) -> EmitFuture<'_, Confirm>;
    /// Sends a `data` message that is already JSON, in order, exactly as [`Emit::data_send`] sends the same
    /// message as a `Value`. This default turns it into that `Value`; a runtime that can use the bytes as they
    /// are overrides it.
    fn data_send_raw(&self, message: RawMessage) -> EmitFuture<'_, Confirm> {
        match message.to_value() {
            Ok(value) => self.data_send(value),
            Err(e) => Box::pin(std::future::ready(Err(EmitError::serialize(&e)))),
        }
    }
    /// Publishes an `error`; the execution will be rejected.
    fn error<'a>(&'a self, error: &'a FunctionError) -> EmitFuture<'a, ()>;
    /// Brings the incoming message back later.
    fn rebound<'a>(&'a self, reason: &'a str) -> EmitFuture<'a, ()>;
    /// Replaces the step's snapshot.
    fn snapshot<'a>(&'a self, snapshot: &'a Value) -> EmitFuture<'a, ()>;
    /// Merges into the step's snapshot.
    fn update_snapshot<'a>(&'a self, partial: &'a Value) -> EmitFuture<'a, ()>;
    /// Answers the incoming request (`reply_to`).
    fn http_reply<'a>(&'a self, reply: &'a Value) -> EmitFuture<'a, ()>;
    /// Replaces the credential's keys.
    fn update_keys<'a>(&'a self, keys: &'a Value) -> EmitFuture<'a, ()>;
    /// A trigger's progress (not an event: nothing is sent). The platform ignores it; the local runner shows
    /// it on a terminal.
    fn progress(&self, _progress: &Progress) {}
}

/// A trigger's progress, as the last progress line of its member logged it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Records the member is behind the partitions' ends, summed over its partitions (`None`: not known yet).
    pub lag: Option<i64>,
    /// Records emitted but not yet confirmed.
    pub in_flight: usize,
}

/// A handle to emit the events of one execution. Cheap to clone; valid after the execution ended (a
/// real-time trigger keeps emitting with its first tick's emitter).
#[derive(Debug, Clone)]
pub struct Emitter(Arc<dyn Emit>);

impl Emitter {
    /// The handle of a runtime's emitter.
    pub fn new(inner: Arc<dyn Emit>) -> Self {
        Self(inner)
    }

    /// Emits `data` and returns once the runtime has it for good.
    ///
    /// # Errors
    /// [`EmitError`].
    pub async fn data(&self, message: Value) -> Result<(), EmitError> {
        self.0.data_send(message).await?.wait().await
    }

    /// Sends `data` in order without waiting for the confirm; await [`Confirm::wait`] before treating it
    /// as delivered.
    ///
    /// # Errors
    /// [`EmitError::TooLarge`] and other failures known before sending.
    pub async fn data_send(&self, message: Value) -> Result<Confirm, EmitError> {
        self.0.data_send(message).await
    }

    /// Sends the data message of `body` ([`new_message`](super::new_message) of it, but serialized once from
    /// the typed body, without a `Value` tree) in order without waiting for the confirm, like
    /// [`Emitter::data_send`].
    ///
    /// # Errors
    /// As [`Emitter::data_send`]; [`EmitError::Platform`] when `body` cannot be serialized.
    pub fn data_send_body<T: Serialize + ?Sized>(
        &self,
        body: &T,
    ) -> impl Future<Output = Result<Confirm, EmitError>> + Send + '_ {
        // Serialized before the future, which so does not hold `body`.
        let message = RawMessage::new(body).map_err(|e| EmitError::serialize(&e));
        async move { self.0.data_send_raw(message?).await }
    }

    /// [`Emitter::data_send_body`] for a body that writes its own JSON (the per-record bodies).
    ///
    /// # Errors
    /// As [`Emitter::data_send_body`].
    pub fn data_send_json<T: WriteJson + ?Sized>(
        &self,
        body: &T,
    ) -> impl Future<Output = Result<Confirm, EmitError>> + Send + '_ {
        let message = RawMessage::of_json(body).map_err(|e| EmitError::serialize(&e));
        async move { self.0.data_send_raw(message?).await }
    }

    /// Emits `error`; the execution will be rejected.
    ///
    /// # Errors
    /// [`EmitError`]; the error still counts.
    pub async fn error(&self, error: &FunctionError) -> Result<(), EmitError> {
        self.0.error(error).await
    }

    /// Emits `rebound`.
    ///
    /// # Errors
    /// [`EmitError`].
    pub async fn rebound(&self, reason: &str) -> Result<(), EmitError> {
        self.0.rebound(reason).await
    }

    /// Emits `snapshot`.
    ///
    /// # Errors
    /// [`EmitError`].
    pub async fn snapshot(&self, snapshot: &Value) -> Result<(), EmitError> {
        self.0.snapshot(snapshot).await
    }

    /// Emits `updateSnapshot`.
    ///
    /// # Errors
    /// [`EmitError`].
    pub async fn update_snapshot(&self, partial: &Value) -> Result<(), EmitError> {
        self.0.update_snapshot(partial).await
    }

    /// Emits `httpReply`.
    ///
    /// # Errors
    /// [`EmitError`].
    pub async fn http_reply(&self, reply: &Value) -> Result<(), EmitError> {
        self.0.http_reply(reply).await
    }

    /// Emits `updateKeys`.
    ///
    /// # Errors
    /// [`EmitError`].
    pub async fn update_keys(&self, keys: &Value) -> Result<(), EmitError> {
        self.0.update_keys(keys).await
    }

    /// Tells the runtime the trigger's progress (see [`Emit::progress`]).
    pub fn progress(&self, progress: &Progress) {
        self.0.progress(progress);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_errors_say_whose_fault() {
        let too_large = FunctionError::from(EmitError::TooLarge { size: 2, limit: 1 });
        assert_eq!(
            (too_large.fault, too_large.action),
            (
                super::super::error::Fault::Data,
                super::super::error::Action::Reject
            )
        );
        let lost = FunctionError::from(EmitError::Platform("confirm timed out".into()));
        assert_eq!(lost.fault, super::super::error::Fault::Internal);
        assert!(lost.message.contains("confirm timed out"));
    }
}
