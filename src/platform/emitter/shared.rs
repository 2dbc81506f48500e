//! What every execution of the process shares, split by role.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::super::amqp::Publisher;
use super::super::api::ApiClient;
use super::super::crypto::Crypto;
use super::super::storage::ObjectStorage;
use super::throttle::Throttles;
use crate::contract::EmitError;
use crate::settings::{AmqpSettings, Settings};

/// Where emits go: the confirm-mode publisher and the routing keys of each event.
#[derive(Debug)]
pub struct Transport {
    /// The confirm-mode publisher.
    pub publisher: Publisher,
    /// `ELASTICIO_DATA_ROUTING_KEY`.
    pub data_key: String,
    /// `ELASTICIO_ERROR_ROUTING_KEY`.
    pub error_key: String,
    /// `ELASTICIO_REBOUND_ROUTING_KEY`.
    pub rebound_key: String,
    /// `ELASTICIO_SNAPSHOT_ROUTING_KEY`.
    pub snapshot_key: String,
}

impl Transport {
    /// The publisher with the routes of `amqp`.
    pub fn new(publisher: Publisher, amqp: &AmqpSettings) -> Self {
        Self {
            publisher,
            data_key: amqp.data_routing_key.clone(),
            error_key: amqp.error_routing_key.clone(),
            rebound_key: amqp.rebound_routing_key.clone(),
            snapshot_key: amqp.snapshot_routing_key.clone(),
        }
    }
}

/// How messages are encoded: the cipher, the outgoing protocol version and the size limit.
#[derive(Debug)]
pub struct Encoding {
    /// The message cipher.
    pub crypto: Crypto,
    /// `ELASTICIO_PROTOCOL_VERSION` of outgoing data.
    pub protocol_version: u8,
    /// `ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT`.
    pub size_limit: usize,
}

impl Encoding {
    /// Encrypts `message` for `version`; refuses it above the size limit.
    pub(super) fn seal(&self, message: &Value, version: u8) -> Result<Vec<u8>, EmitError> {
        let payload = self.crypto.encode(&to_json(message)?, version);
        if payload.len() > self.size_limit {
            return Err(EmitError::TooLarge {
                size: payload.len(),
                limit: self.size_limit,
            });
        }
        Ok(payload)
    }
}

/// JSON bytes of a value; a failure is ours and is reported, never published as an empty payload.
pub(super) fn to_json(value: &Value) -> Result<Vec<u8>, EmitError> {
    serde_json::to_vec(value)
        .map_err(|e| EmitError::Platform(format!("cannot serialize the message: {e}")))
}

/// The platform's side channels: the API (updateKeys), the object store (lightweight messages), the
/// step's snapshot and its passthrough switch.
#[derive(Debug)]
pub struct SideChannels {
    /// Platform API.
    pub api: ApiClient,
    /// Object store for lightweight messages, when configured.
    pub storage: Option<ObjectStorage>,
    /// `ELASTICIO_EMIT_LIGHTWEIGHT_MESSAGE`.
    pub emit_lightweight: bool,
    /// `ELASTICIO_OBJECT_STORAGE_SIZE_THRESHOLD`.
    pub size_threshold: u64,
    snapshot: std::sync::Mutex<Value>,
    passthrough: AtomicBool,
}

impl SideChannels {
    /// The API and object store of `settings`.
    pub fn new(api: ApiClient, storage: Option<ObjectStorage>, settings: &Settings) -> Self {
        Self {
            api,
            storage,
            emit_lightweight: settings.object_storage.emit_lightweight_message,
            size_threshold: settings.object_storage.size_threshold,
            snapshot: std::sync::Mutex::new(json!({})),
            passthrough: AtomicBool::new(false),
        }
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
        self.snapshot
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Replaces the in-memory snapshot.
    pub fn set_snapshot(&self, value: Value) {
        match self.snapshot.lock() {
            Ok(mut s) => *s = value,
            Err(p) => *p.into_inner() = value,
        }
    }
}

/// The step's emit rules.
#[derive(Debug, Clone)]
pub struct Rules {
    /// This step's id (passthrough key).
    pub step_id: String,
    /// `ELASTICIO_NO_SELF_PASSTRHOUGH`.
    pub no_self_passthrough: bool,
    /// `ELASTICIO_NO_ERROR_REPLIES`.
    pub no_error_replies: bool,
    /// `ELASTICIO_REBOUND_LIMIT`.
    pub rebound_limit: u32,
    /// `ELASTICIO_REBOUND_INITIAL_EXPIRATION`.
    pub rebound_initial_expiration: Duration,
}

impl Rules {
    /// The rules of `settings`.
    pub fn new(settings: &Settings) -> Self {
        Self {
            step_id: settings.step.step_id.clone(),
            no_self_passthrough: settings.no_self_passthrough,
            no_error_replies: settings.no_error_replies,
            rebound_limit: settings.rebound_limit,
            rebound_initial_expiration: settings.rebound_initial_expiration,
        }
    }
}

/// What every execution of the process shares.
#[derive(Debug)]
pub struct EmitterShared {
    /// Publisher and routes.
    pub transport: Transport,
    /// Cipher, version, size limit.
    pub encoding: Encoding,
    /// Emit throttles.
    pub throttles: Throttles,
    /// API, object store, snapshot, passthrough.
    pub side: SideChannels,
    /// The step's emit rules.
    pub rules: Rules,
}
