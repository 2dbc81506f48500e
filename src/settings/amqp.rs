//! The message broker settings: queues, routing keys, message encryption, publishing and reconnecting.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::env::{Env, clamp_u32, ms, parse_int_prefix};
use super::required::SettingsError;

/// Where messages come from and go to, and how they are encrypted.
#[derive(Debug, Clone)]
pub struct AmqpSettings {
    /// `ELASTICIO_AMQP_URI` (holds a password: never logged).
    pub uri: SecretString,
    /// `ELASTICIO_LISTEN_MESSAGES_ON`: the queue consumed.
    pub listen_messages_on: String,
    /// `ELASTICIO_PUBLISH_MESSAGES_TO`: the exchange every message is published to.
    pub publish_messages_to: String,
    /// `ELASTICIO_DATA_ROUTING_KEY`.
    pub data_routing_key: String,
    /// `ELASTICIO_ERROR_ROUTING_KEY`.
    pub error_routing_key: String,
    /// `ELASTICIO_REBOUND_ROUTING_KEY`.
    pub rebound_routing_key: String,
    /// `ELASTICIO_SNAPSHOT_ROUTING_KEY`.
    pub snapshot_routing_key: String,
    /// `ELASTICIO_MESSAGE_CRYPTO_PASSWORD`.
    pub crypto_password: SecretString,
    /// `ELASTICIO_MESSAGE_CRYPTO_IV` (exactly 16 bytes).
    pub crypto_iv: SecretString,
    /// `ELASTICIO_RABBITMQ_PREFETCH_SAILOR` (default 1).
    pub prefetch: u16,
    /// `ELASTICIO_AMQP_PUBLISH_RETRY_DELAY` (default 100 ms).
    pub publish_retry_delay: Duration,
    /// `ELASTICIO_AMQP_PUBLISH_RETRY_ATTEMPTS` (default unlimited).
    pub publish_retry_attempts: Option<u64>,
    /// `ELASTICIO_AMQP_PUBLISH_MAX_RETRY_DELAY` (default 5 min).
    pub publish_max_retry_delay: Duration,
    /// `ELASTICIO_AMQP_PERSISTENT_MESSAGES`: delivery mode 2 instead of 1.
    pub persistent_messages: bool,
    /// `ELASTICIO_AMQP_RECONNECT_ATTEMPTS` (default 3 extra attempts).
    pub reconnect_attempts: u32,
    /// `ELASTICIO_AMQP_RECONNECT_TIMEOUT` (default 100 ms).
    pub reconnect_timeout: Duration,
    /// `ELASTICIO_PROCESS_AMQP_DRAIN` (accepted for compatibility; lapin always applies back-pressure).
    pub process_amqp_drain: bool,
    /// Host name for the connection names `<hostname>-read` / `<hostname>-write` (`HOSTNAME`, else
    /// `/etc/hostname`).
    pub hostname: String,
}

impl AmqpSettings {
    /// The AMQP settings; absent mandatory variables are pushed onto `missing`.
    pub(super) fn from_env(env: &Env, missing: &mut Vec<String>) -> Self {
        Self {
            uri: env.required("AMQP_URI", missing).into(),
            listen_messages_on: env.required("LISTEN_MESSAGES_ON", missing),
            publish_messages_to: env.required("PUBLISH_MESSAGES_TO", missing),
            data_routing_key: env.required("DATA_ROUTING_KEY", missing),
            error_routing_key: env.required("ERROR_ROUTING_KEY", missing),
            rebound_routing_key: env.required("REBOUND_ROUTING_KEY", missing),
            snapshot_routing_key: env.required("SNAPSHOT_ROUTING_KEY", missing),
            crypto_password: env.required("MESSAGE_CRYPTO_PASSWORD", missing).into(),
            crypto_iv: env.required("MESSAGE_CRYPTO_IV", missing).into(),
            prefetch: u16::try_from(env.number("RABBITMQ_PREFETCH_SAILOR", 1)).unwrap_or(u16::MAX),
            publish_retry_delay: ms(env.number("AMQP_PUBLISH_RETRY_DELAY", 100)),
            publish_retry_attempts: env
                .raw("AMQP_PUBLISH_RETRY_ATTEMPTS")
                .and_then(parse_int_prefix)
                .filter(|v| *v > 0)
                .and_then(|v| u64::try_from(v).ok()),
            publish_max_retry_delay: ms(env.number("AMQP_PUBLISH_MAX_RETRY_DELAY", 300_000)),
            persistent_messages: env.boolean("AMQP_PERSISTENT_MESSAGES", false),
            reconnect_attempts: clamp_u32(env.number("AMQP_RECONNECT_ATTEMPTS", 3)),
            reconnect_timeout: ms(env.number("AMQP_RECONNECT_TIMEOUT", 100)),
            process_amqp_drain: env.boolean("PROCESS_AMQP_DRAIN", true),
            hostname: hostname(env),
        }
    }

    /// The encryption IV must be exactly 16 bytes (its value is never reported).
    pub(super) fn check_iv(&self) -> Result<(), SettingsError> {
        let iv_len = self.crypto_iv.expose_secret().len();
        if iv_len != 16 {
            return Err(SettingsError::Invalid {
                name: "ELASTICIO_MESSAGE_CRYPTO_IV".into(),
                reason: format!("must be exactly 16 bytes, got {iv_len}"),
            });
        }
        Ok(())
    }
}

/// `HOSTNAME`, else `/etc/hostname`, else `kafka-component`.
fn hostname(env: &Env) -> String {
    env.get_full("HOSTNAME")
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "kafka-component".to_owned())
}
