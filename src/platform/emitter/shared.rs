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
    /// Encrypts the JSON bytes `plain` for `version`; refuses them above the size limit.
    pub(super) fn seal(&self, plain: &[u8], version: u8) -> Result<Vec<u8>, EmitError> {
        let payload = self.crypto.encode(plain, version);
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
    serde_json::to_vec(value).map_err(|e| EmitError::serialize(&e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{RawMessage, new_message};

    /// A typed body, as a function emits it without building a `Value`.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Report<'a> {
        topic_name: &'a str,
        base_offset: &'a str,
        records: Vec<(usize, Option<i64>, Option<&'a Value>)>,
    }

    fn encoding(protocol_version: u8, size_limit: usize) -> Encoding {
        Encoding {
            crypto: Crypto::new("testCryptoPassword", "iv=any16_symbols").unwrap(),
            protocol_version,
            size_limit,
        }
    }

    /// The data message of a typed body sealed as it is (the fast path) and sealed through its `Value` (the
    /// path of passthrough and lightweight bodies, and of every `Value` message): the same plaintext, the same
    /// payload, the same size refusal.
    #[test]
    fn raw_and_value_messages_seal_to_the_same_bytes() {
        let key = serde_json::json!({"base64": "AAEC/w==", "é": "\"\\\n😀"});
        let bodies = [
            serde_json::to_value(Report {
                topic_name: "orders",
                base_offset: "17",
                records: vec![(0, Some(17), Some(&key)), (1, None, None)],
            })
            .unwrap(),
            serde_json::json!({"value": "{\"orderId\":1001}", "key": null, "headers": [], "n": 1.5}),
            serde_json::json!({}),
        ];
        for body in bodies {
            let raw = RawMessage::new(&body).unwrap();
            let value = raw.to_value().unwrap();
            assert_eq!(value["body"], body);
            assert_eq!(to_json(&value).unwrap(), raw.json());
            let fresh = new_message(body.clone());
            assert_eq!(
                fresh.as_object().map(|m| m.keys().collect::<Vec<_>>()),
                value.as_object().map(|m| m.keys().collect::<Vec<_>>())
            );
            for version in [1, 2] {
                let enc = encoding(version, usize::MAX);
                let sealed = enc.seal(raw.json(), version).unwrap();
                assert_eq!(
                    sealed,
                    enc.seal(&to_json(&value).unwrap(), version).unwrap()
                );
                assert_eq!(enc.crypto.decode(&sealed, version).unwrap(), raw.json());
                let small = encoding(version, sealed.len() - 1);
                let refused = |r: Result<Vec<u8>, EmitError>| match r {
                    Err(EmitError::TooLarge { size, limit }) => (size, limit),
                    other => panic!("not refused: {other:?}"),
                };
                assert_eq!(
                    refused(small.seal(raw.json(), version)),
                    refused(small.seal(&to_json(&value).unwrap(), version))
                );
            }
        }
    }
}
