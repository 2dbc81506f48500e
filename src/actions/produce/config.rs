//! The Produce action's fields → producer settings.

use serde_json::Value;

use crate::kafka::config::{ConfigError, bool_field, str_field, u64_field};

const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MESSAGE_MAX_BYTES: u64 = 1_048_576;

/// Producer settings from the action's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceConfig {
    /// Target topic.
    pub topic: String,
    /// `none|gzip|snappy|lz4|zstd`.
    pub compression: String,
    /// Codec level, if set.
    pub compression_level: Option<u64>,
    /// `all`, `1` or `0`.
    pub acks: String,
    /// Idempotent producer.
    pub idempotence: bool,
    /// Per-request timeout.
    pub request_timeout_ms: u64,
    /// How long a record may take, retries included.
    pub delivery_timeout_ms: u64,
    /// Largest record accepted (checked before sending).
    pub message_max_bytes: u64,
    /// Key-less records: sticky batching or a random partition each.
    pub sticky_keyless: bool,
}

impl ProduceConfig {
    /// Parses the action's fields.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field.
    pub fn from_cfg(cfg: &Value) -> Result<Self, ConfigError> {
        let err = |field: &'static str, reason: String| ConfigError { field, reason };
        let topic = str_field(cfg, "topic")
            .ok_or_else(|| {
                err(
                    "topic",
                    "no topic given; enter the topic to write to".into(),
                )
            })?
            .to_owned();
        let compression = str_field(cfg, "compression")
            .unwrap_or("none")
            .to_ascii_lowercase();
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&compression.as_str()) {
            return Err(err(
                "compression",
                format!("unknown codec `{compression}`; use none, gzip, snappy, lz4 or zstd"),
            ));
        }
        let acks = match cfg.get("acks") {
            Some(Value::Number(n)) => n.to_string(),
            _ => str_field(cfg, "acks").unwrap_or("all").to_ascii_lowercase(),
        };
        let acks = match acks.as_str() {
            "all" | "-1" => "all".to_owned(),
            "1" | "0" => acks,
            other => {
                return Err(err(
                    "acks",
                    format!("`{other}` is not valid; use all, 1 or 0"),
                ));
            }
        };
        let idempotence_default = acks == "all";
        let idempotence = bool_field(cfg, "idempotence", idempotence_default)?;
        if idempotence && acks != "all" {
            return Err(err(
                "idempotence",
                format!(
                    "the idempotent producer needs acks=all (acks is {acks}); turn idempotence off or use acks=all"
                ),
            ));
        }
        let delivery_timeout_ms =
            u64_field(cfg, "deliveryTimeoutMs")?.unwrap_or(DEFAULT_TIMEOUT_MS);
        let request_timeout_ms = u64_field(cfg, "requestTimeoutMs")?
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .min(delivery_timeout_ms.max(1));
        let sticky_keyless = match str_field(cfg, "keylessPartitioning").unwrap_or("sticky") {
            "sticky" => true,
            "random" => false,
            other => {
                return Err(err(
                    "keylessPartitioning",
                    format!("`{other}` is not valid; use sticky or random"),
                ));
            }
        };
        let message_max_bytes =
            u64_field(cfg, "messageMaxBytes")?.unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
        if !(1000..=1_000_000_000).contains(&message_max_bytes) {
            return Err(err(
                "messageMaxBytes",
                "must be between 1000 and 1000000000".into(),
            ));
        }
        Ok(Self {
            topic,
            compression,
            compression_level: u64_field(cfg, "compressionLevel")?,
            acks,
            idempotence,
            request_timeout_ms,
            delivery_timeout_ms: delivery_timeout_ms.max(1),
            message_max_bytes,
            sticky_keyless,
        })
    }

    pub(super) fn apply(&self, c: &mut rdkafka::ClientConfig) {
        c.set("partitioner", "murmur2_random");
        c.set("compression.codec", &self.compression);
        if let Some(level) = self.compression_level {
            c.set("compression.level", level.to_string());
        }
        c.set("acks", &self.acks);
        c.set("enable.idempotence", self.idempotence.to_string());
        c.set("request.timeout.ms", self.request_timeout_ms.to_string());
        c.set("message.timeout.ms", self.delivery_timeout_ms.to_string());
        // Our own pre-check decides record size; give librdkafka headroom for batch framing.
        c.set(
            "message.max.bytes",
            (self.message_max_bytes + 64 * 1024)
                .min(1_000_000_000)
                .to_string(),
        );
        c.set(
            "sticky.partitioning.linger.ms",
            if self.sticky_keyless { "10" } else { "0" },
        );
        c.set("linger.ms", "1");
    }

    pub(super) fn cache_key(&self) -> String {
        format!(
            "{}|{}|{:?}|{}|{}|{}|{}|{}|{}",
            self.topic,
            self.compression,
            self.compression_level,
            self.acks,
            self.idempotence,
            self.request_timeout_ms,
            self.delivery_timeout_ms,
            self.message_max_bytes,
            self.sticky_keyless
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_defaults_are_safe() {
        let pc = ProduceConfig::from_cfg(&json!({"topic": "t"})).unwrap();
        assert_eq!(pc.acks, "all");
        assert!(pc.idempotence);
        assert_eq!(pc.compression, "none");
        assert_eq!(pc.message_max_bytes, 1_048_576);
        let mut cc = rdkafka::ClientConfig::new();
        pc.apply(&mut cc);
        assert_eq!(cc.get("partitioner"), Some("murmur2_random"));
        assert_eq!(cc.get("enable.idempotence"), Some("true"));
        let pc = ProduceConfig::from_cfg(&json!({"topic": "t", "acks": "1"})).unwrap();
        assert!(!pc.idempotence, "idempotence follows acks when not set");
        let e = ProduceConfig::from_cfg(&json!({"topic": "t", "acks": "1", "idempotence": true}))
            .unwrap_err();
        assert_eq!(e.field, "idempotence");
        assert_eq!(
            ProduceConfig::from_cfg(&json!({})).unwrap_err().field,
            "topic"
        );
        assert_eq!(
            ProduceConfig::from_cfg(&json!({"topic": "t", "compression": "brotli"}))
                .unwrap_err()
                .field,
            "compression"
        );
    }
}
