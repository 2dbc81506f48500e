//! The Produce action's fields → producer settings.

use serde::Deserialize;
use serde_json::Value;

use crate::kafka::config::{ConfigError, Count, Flag, Text, TextOrNumber, read};

const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MESSAGE_MAX_BYTES: u64 = 1_048_576;
/// `transaction.timeout.ms` is the delivery timeout plus this (the default gives librdkafka's 60 s).
const TRANSACTION_MARGIN_MS: u64 = 30_000;

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
    /// `staticHeaders`: added to every record (name → value).
    pub static_headers: Vec<(String, String)>,
    /// `traceHeaders`: add the execution's identifiers to every record.
    pub trace_headers: bool,
    /// `deliveryGuarantee` `exactlyOnce`: each message's records in one Kafka transaction.
    pub exactly_once: bool,
}

/// The action's fields (component.json ids); every other key of `cfg` is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Fields {
    topic: Text,
    compression: Text,
    compression_level: Count,
    acks: TextOrNumber,
    idempotence: Flag,
    request_timeout_ms: Count,
    delivery_timeout_ms: Count,
    message_max_bytes: Count,
    keyless_partitioning: Text,
    /// An object, or its JSON text; checked by [`super::headers::static_headers`].
    static_headers: Value,
    trace_headers: Flag,
    delivery_guarantee: Text,
}

impl ProduceConfig {
    /// Parses the action's fields, checking them in a fixed order (the first problem is reported).
    ///
    /// # Errors
    /// [`ConfigError`] naming the field.
    pub fn from_cfg(cfg: &Value) -> Result<Self, ConfigError> {
        let f: Fields = read(cfg);
        let topic = f
            .topic
            .get()
            .ok_or_else(|| {
                ConfigError::new("topic", "no topic given; enter the topic to write to")
            })?
            .to_owned();
        let compression = compression(&f)?;
        let (acks, idempotence) = acks_and_idempotence(&f)?;
        let exactly_once = delivery_guarantee(&f, &acks, idempotence)?;
        let delivery_timeout_ms = f
            .delivery_timeout_ms
            .get("deliveryTimeoutMs")?
            .unwrap_or(DEFAULT_TIMEOUT_MS);
        let request_timeout_ms = f
            .request_timeout_ms
            .get("requestTimeoutMs")?
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .min(delivery_timeout_ms.max(1));
        let sticky_keyless = match f.keyless_partitioning.get().unwrap_or("sticky") {
            "sticky" => true,
            "random" => false,
            other => {
                return Err(ConfigError::new(
                    "keylessPartitioning",
                    format!("`{other}` is not valid; use sticky or random"),
                ));
            }
        };
        let message_max_bytes = f
            .message_max_bytes
            .get("messageMaxBytes")?
            .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
        if !(1000..=1_000_000_000).contains(&message_max_bytes) {
            return Err(ConfigError::new(
                "messageMaxBytes",
                "must be between 1000 and 1000000000",
            ));
        }
        let static_headers = super::headers::static_headers(&f.static_headers)?;
        let trace_headers = f.trace_headers.get("traceHeaders", true)?;
        Ok(Self {
            topic,
            compression,
            compression_level: f.compression_level.get("compressionLevel")?,
            acks,
            idempotence,
            request_timeout_ms,
            delivery_timeout_ms: delivery_timeout_ms.max(1),
            message_max_bytes,
            sticky_keyless,
            static_headers,
            trace_headers,
            exactly_once,
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
        // No linger: a one-record message is sent at once (1 ms of linger was most of the gap to the serial
        // chain at prefetch 1); the records of a larger message are enqueued together and still share batches,
        // as librdkafka fills the next request while one is in flight.
        c.set("linger.ms", "0");
        if self.exactly_once {
            // A transaction takes at most the delivery timeout for its records plus the commit; the broker
            // aborts one that is open longer (and read_committed readers wait at most this long for the
            // transaction of a worker that died). librdkafka wants message.timeout.ms <= this.
            c.set(
                "transaction.timeout.ms",
                self.transaction_timeout().as_millis().to_string(),
            );
        }
    }

    /// `transaction.timeout.ms` (exactly once): the broker aborts a transaction open longer than this.
    pub(super) fn transaction_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.delivery_timeout_ms + TRANSACTION_MARGIN_MS)
    }

    pub(super) fn cache_key(&self) -> String {
        format!(
            "{}|{}|{:?}|{}|{}|{}|{}|{}|{}|{}",
            self.topic,
            self.compression,
            self.compression_level,
            self.acks,
            self.idempotence,
            self.request_timeout_ms,
            self.delivery_timeout_ms,
            self.message_max_bytes,
            self.sticky_keyless,
            self.exactly_once
        )
    }
}

/// `compression`, lower-cased; `none` when not given.
fn compression(f: &Fields) -> Result<String, ConfigError> {
    let compression = f.compression.get().unwrap_or("none").to_ascii_lowercase();
    if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&compression.as_str()) {
        return Err(ConfigError::new(
            "compression",
            format!("unknown codec `{compression}`; use none, gzip, snappy, lz4 or zstd"),
        ));
    }
    Ok(compression)
}

/// `acks` (`all` when not given; `-1` means `all`) and `idempotence`, which defaults to on exactly when acks is
/// `all` and needs it.
fn acks_and_idempotence(f: &Fields) -> Result<(String, bool), ConfigError> {
    let acks = f.acks.get().unwrap_or("all").to_ascii_lowercase();
    let acks = match acks.as_str() {
        "all" | "-1" => "all".to_owned(),
        "1" | "0" => acks,
        other => {
            return Err(ConfigError::new(
                "acks",
                format!("`{other}` is not valid; use all, 1 or 0"),
            ));
        }
    };
    let idempotence = f.idempotence.get("idempotence", acks == "all")?;
    if idempotence && acks != "all" {
        return Err(ConfigError::new(
            "idempotence",
            format!(
                "the idempotent producer needs acks=all (acks is {acks}); turn idempotence off or use acks=all"
            ),
        ));
    }
    Ok((acks, idempotence))
}

/// `deliveryGuarantee`: `atLeastOnce` (default) or `exactlyOnce`, which needs `acks=all` and the idempotent
/// producer (a transactional producer is idempotent).
fn delivery_guarantee(f: &Fields, acks: &str, idempotence: bool) -> Result<bool, ConfigError> {
    let exactly_once = match f.delivery_guarantee.get().unwrap_or("atLeastOnce") {
        "atLeastOnce" => false,
        "exactlyOnce" => true,
        other => {
            return Err(ConfigError::new(
                "deliveryGuarantee",
                format!("`{other}` is not valid; use atLeastOnce or exactlyOnce"),
            ));
        }
    };
    if exactly_once && !(acks == "all" && idempotence) {
        return Err(ConfigError::new(
            "deliveryGuarantee",
            format!(
                "exactlyOnce needs acks=all and the idempotent producer (acks is {acks}, idempotence {}); use acks=all and leave idempotence on",
                if idempotence { "on" } else { "off" }
            ),
        ));
    }
    Ok(exactly_once)
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
        assert!(pc.trace_headers, "trace headers are on by default");
        assert!(pc.static_headers.is_empty());
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
        let pc = ProduceConfig::from_cfg(
            &json!({"topic": "t", "traceHeaders": "off", "staticHeaders": "{\"a\": \"b\"}"}),
        )
        .unwrap();
        assert!(!pc.trace_headers);
        assert_eq!(pc.static_headers, [("a".to_owned(), "b".to_owned())]);
        let e =
            ProduceConfig::from_cfg(&json!({"topic": "t", "staticHeaders": {"a": 1}})).unwrap_err();
        assert_eq!(e.field, "staticHeaders");
    }

    #[test]
    fn delivery_guarantee_is_at_least_once_unless_exactly_once_is_chosen() {
        let pc = ProduceConfig::from_cfg(&json!({"topic": "t"})).unwrap();
        assert!(!pc.exactly_once);
        let mut cc = rdkafka::ClientConfig::new();
        pc.apply(&mut cc);
        assert_eq!(cc.get("transaction.timeout.ms"), None);
        let pc =
            ProduceConfig::from_cfg(&json!({"topic": "t", "deliveryGuarantee": "exactlyOnce"}))
                .unwrap();
        assert!(pc.exactly_once);
        assert_ne!(
            pc.cache_key(),
            ProduceConfig::from_cfg(&json!({"topic": "t"}))
                .unwrap()
                .cache_key()
        );
        let mut cc = rdkafka::ClientConfig::new();
        pc.apply(&mut cc);
        assert_eq!(cc.get("transaction.timeout.ms"), Some("60000"));
        for bad in [
            json!({"topic": "t", "deliveryGuarantee": "exactly-once"}),
            json!({"topic": "t", "deliveryGuarantee": "exactlyOnce", "acks": "1"}),
            json!({"topic": "t", "deliveryGuarantee": "exactlyOnce", "idempotence": false}),
        ] {
            let e = ProduceConfig::from_cfg(&bad).unwrap_err();
            assert_eq!(e.field, "deliveryGuarantee", "{bad}");
        }
    }

    #[test]
    fn the_fields_struct_reads_exactly_the_component_json_fields() {
        let (read, declared) = crate::kafka::config::testing::struct_and_component_fields::<Fields>(
            "/actions/produce/fields",
        );
        assert_eq!(read, declared);
    }
}
