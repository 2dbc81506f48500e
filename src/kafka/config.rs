//! The connection model shared by every function: brokers, client id, SASL and TLS, parsed from the step's
//! `cfg` and translated into librdkafka settings in exactly one place, [`KafkaConnection::to_client_config`].
//!
//! Secrets are [`SecretString`]s, exposed only at the `ClientConfig::set` call.

use std::fmt;

use rdkafka::ClientConfig;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// A problem with the step configuration, named by its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration field `{field}`: {reason}")]
pub struct ConfigError {
    /// The cfg field (component.json id).
    pub field: &'static str,
    /// What is wrong and what to do.
    pub reason: String,
}

impl From<ConfigError> for crate::platform::emitter::ErrorReport {
    fn from(e: ConfigError) -> Self {
        Self::new(
            "ConfigurationError",
            format!("{e}. Fix the step or credentials configuration."),
        )
    }
}

fn cfg_err(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

/// SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512 (the default).
    ScramSha512,
    /// PLAIN.
    Plain,
}

impl Mechanism {
    /// librdkafka's name.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::Plain => "PLAIN",
        }
    }
}

/// SASL credentials.
#[derive(Clone)]
pub struct Sasl {
    /// User name.
    pub username: String,
    /// Password (never printed).
    pub password: SecretString,
    /// Mechanism.
    pub mechanism: Mechanism,
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sasl")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

/// TLS settings (off unless `tls` is on or a CA/client certificate is given).
#[derive(Clone, Default)]
pub struct Tls {
    /// PEM CA certificate(s) to trust instead of the system roots.
    pub ca_pem: Option<String>,
    /// PEM client certificate for mutual TLS.
    pub client_cert_pem: Option<String>,
    /// PEM client key for mutual TLS (secret).
    pub client_key_pem: Option<SecretString>,
    /// Check that the broker certificate names the broker host (default on).
    pub verify_hostname: bool,
    /// Skip certificate verification entirely (dangerous, loudly logged).
    pub insecure_skip_verify: bool,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "[pem]"))
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "[pem]"),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "[redacted]"),
            )
            .field("verify_hostname", &self.verify_hostname)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// How to reach and authenticate to the cluster.
#[derive(Debug, Clone)]
pub struct KafkaConnection {
    /// `host:port` list.
    pub brokers: Vec<String>,
    /// Kafka client id.
    pub client_id: String,
    /// SASL, when a username is set.
    pub sasl: Option<Sasl>,
    /// TLS, when enabled.
    pub tls: Option<Tls>,
}

/// A string field; empty counts as absent.
pub fn str_field<'a>(cfg: &'a Value, field: &str) -> Option<&'a str> {
    cfg.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A boolean field: JSON booleans, or `"true"/"false"/"on"/"off"/"yes"/"no"/"1"/"0"` strings.
///
/// # Errors
/// Any other value.
pub fn bool_field(cfg: &Value, field: &'static str, default: bool) -> Result<bool, ConfigError> {
    match cfg.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(default),
            "true" | "on" | "yes" | "1" => Ok(true),
            "false" | "off" | "no" | "0" => Ok(false),
            other => Err(cfg_err(
                field,
                format!("expected true or false, got `{other}`"),
            )),
        },
        Some(other) => Err(cfg_err(
            field,
            format!("expected true or false, got {other}"),
        )),
    }
}

/// An unsigned integer field given as a number or a numeric string.
///
/// # Errors
/// Anything that is not a non-negative integer.
pub fn u64_field(cfg: &Value, field: &'static str) -> Result<Option<u64>, ConfigError> {
    match cfg.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| cfg_err(field, format!("expected a non-negative integer, got {n}"))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| cfg_err(field, format!("expected a non-negative integer, got `{s}`"))),
        Some(other) => Err(cfg_err(
            field,
            format!("expected a non-negative integer, got {other}"),
        )),
    }
}

/// Splits `"a:1, b:2 c:3"` on commas and whitespace and checks each `host:port`.
///
/// # Errors
/// Empty list, missing or bad port.
pub fn parse_brokers(raw: &str) -> Result<Vec<String>, ConfigError> {
    let brokers: Vec<String> = raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if brokers.is_empty() {
        return Err(cfg_err(
            "brokers",
            "no broker given; enter one or more host:port separated by commas or spaces",
        ));
    }
    for b in &brokers {
        let Some((host, port)) = b.rsplit_once(':') else {
            return Err(cfg_err(
                "brokers",
                format!("`{b}` has no port; write it as host:port, e.g. {b}:9092"),
            ));
        };
        if host.is_empty() {
            return Err(cfg_err("brokers", format!("`{b}` has no host name")));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => {
                return Err(cfg_err(
                    "brokers",
                    format!("`{b}` has an invalid port `{port}`; use a number from 1 to 65535"),
                ));
            }
        }
    }
    Ok(brokers)
}

impl KafkaConnection {
    /// Parses the connection part of `cfg`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad field.
    pub fn from_cfg(cfg: &Value) -> Result<Self, ConfigError> {
        let brokers = parse_brokers(str_field(cfg, "brokers").unwrap_or(""))?;
        let client_id = str_field(cfg, "clientId")
            .unwrap_or("kafka-component")
            .to_owned();
        let sasl = match str_field(cfg, "username") {
            None => None,
            Some(username) => {
                let mechanism = match str_field(cfg, "mechanism")
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    None | Some("scram-sha-512") => Mechanism::ScramSha512,
                    Some("scram-sha-256") => Mechanism::ScramSha256,
                    Some("plain") => Mechanism::Plain,
                    Some(other) => {
                        return Err(cfg_err(
                            "mechanism",
                            format!(
                                "unknown SASL mechanism `{other}`; use scram-sha-512, scram-sha-256 or plain"
                            ),
                        ));
                    }
                };
                let password = cfg.get("password").and_then(Value::as_str).unwrap_or("");
                Some(Sasl {
                    username: username.to_owned(),
                    password: SecretString::from(password.to_owned()),
                    mechanism,
                })
            }
        };
        let ca_pem = str_field(cfg, "caCert").map(str::to_owned);
        let client_cert_pem = str_field(cfg, "clientCert").map(str::to_owned);
        let client_key_pem = str_field(cfg, "clientKey").map(|k| SecretString::from(k.to_owned()));
        if client_cert_pem.is_some() != client_key_pem.is_some() {
            return Err(cfg_err(
                "clientCert",
                "mutual TLS needs both a client certificate and its key",
            ));
        }
        let tls_on =
            bool_field(cfg, "tls", false)? || ca_pem.is_some() || client_cert_pem.is_some();
        let tls = if tls_on {
            Some(Tls {
                ca_pem,
                client_cert_pem,
                client_key_pem,
                verify_hostname: bool_field(cfg, "tlsVerifyHostname", true)?,
                insecure_skip_verify: bool_field(cfg, "tlsInsecureSkipVerify", false)?,
            })
        } else {
            None
        };
        Ok(Self {
            brokers,
            client_id,
            sasl,
            tls,
        })
    }

    /// The librdkafka settings for this connection; the only place auth maps onto `security.protocol`.
    pub fn to_client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.brokers.join(","));
        c.set("client.id", &self.client_id);
        let protocol = match (&self.sasl, &self.tls) {
            (None, None) => "plaintext",
            (None, Some(_)) => "ssl",
            (Some(_), None) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if let Some(sasl) = &self.sasl {
            c.set("sasl.mechanism", sasl.mechanism.as_librdkafka());
            c.set("sasl.username", &sasl.username);
            c.set("sasl.password", sasl.password.expose_secret());
        }
        if let Some(tls) = &self.tls {
            if let Some(ca) = &tls.ca_pem {
                c.set("ssl.ca.pem", ca);
            }
            if let (Some(cert), Some(key)) = (&tls.client_cert_pem, &tls.client_key_pem) {
                c.set("ssl.certificate.pem", cert);
                c.set("ssl.key.pem", key.expose_secret());
            }
            c.set(
                "ssl.endpoint.identification.algorithm",
                if tls.verify_hostname && !tls.insecure_skip_verify {
                    "https"
                } else {
                    "none"
                },
            );
            if tls.insecure_skip_verify {
                tracing::warn!(
                    "TLS certificate verification is DISABLED (tlsInsecureSkipVerify); the connection is not protected against impersonation."
                );
                c.set("enable.ssl.certificate.verification", "false");
            }
        }
        c
    }

    /// A stable key for caching clients per distinct connection (the password enters only as a hash).
    pub fn cache_key(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.brokers.join(",").as_bytes());
        h.update([0]);
        h.update(self.client_id.as_bytes());
        if let Some(s) = &self.sasl {
            h.update([1]);
            h.update(s.username.as_bytes());
            h.update([0]);
            h.update(s.password.expose_secret().as_bytes());
            h.update(s.mechanism.as_librdkafka().as_bytes());
        }
        if let Some(t) = &self.tls {
            h.update([2]);
            for part in [&t.ca_pem, &t.client_cert_pem] {
                h.update(part.as_deref().unwrap_or("").as_bytes());
                h.update([0]);
            }
            h.update(
                t.client_key_pem
                    .as_ref()
                    .map_or("", |k| k.expose_secret())
                    .as_bytes(),
            );
            h.update([
                u8::from(t.verify_hostname),
                u8::from(t.insecure_skip_verify),
            ]);
        }
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brokers_split_on_commas_and_spaces() {
        assert_eq!(
            parse_brokers("a:1, b:2  c:3").unwrap(),
            vec!["a:1", "b:2", "c:3"]
        );
        assert_eq!(parse_brokers("  ").unwrap_err().field, "brokers");
        assert!(
            parse_brokers("host")
                .unwrap_err()
                .reason
                .contains("no port")
        );
        assert!(
            parse_brokers("host:99999")
                .unwrap_err()
                .reason
                .contains("invalid port")
        );
        assert!(parse_brokers("host:x").is_err());
    }

    #[test]
    fn sasl_defaults_to_scram_sha_512_and_maps_to_security_protocol() {
        let c = KafkaConnection::from_cfg(
            &json!({"brokers": "k:9092", "username": "u", "password": "p"}),
        )
        .unwrap();
        let cc = c.to_client_config();
        assert_eq!(cc.get("security.protocol"), Some("sasl_plaintext"));
        assert_eq!(cc.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        let c = KafkaConnection::from_cfg(&json!({"brokers": "k:9092", "username": "u", "mechanism": "scram-sha-256", "tls": true})).unwrap();
        let cc = c.to_client_config();
        assert_eq!(cc.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(cc.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(
            cc.get("ssl.endpoint.identification.algorithm"),
            Some("https")
        );
        let c = KafkaConnection::from_cfg(&json!({"brokers": "k:9092"})).unwrap();
        assert_eq!(
            c.to_client_config().get("security.protocol"),
            Some("plaintext")
        );
        let err = KafkaConnection::from_cfg(
            &json!({"brokers": "k:9092", "username": "u", "mechanism": "gssapi"}),
        )
        .unwrap_err();
        assert_eq!(err.field, "mechanism");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = KafkaConnection::from_cfg(&json!({"brokers": "k:9092", "username": "u", "password": "hunter2-secret", "clientKey": "KEYDATA", "clientCert": "CERT"})).unwrap();
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2-secret") && !dbg.contains("KEYDATA"),
            "{dbg}"
        );
        assert!(!c.cache_key().contains("hunter2"));
    }
}
