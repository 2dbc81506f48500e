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

impl From<ConfigError> for crate::contract::FunctionError {
    fn from(e: ConfigError) -> Self {
        Self::config(
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

/// A password SASL mechanism.
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

/// How the client authenticates (SASL), chosen by the `mechanism` field.
#[derive(Debug, Clone)]
pub enum Auth {
    /// SCRAM or PLAIN: a username and a password.
    Password(Sasl),
    /// OAUTHBEARER with access tokens from an OAuth 2.0 token endpoint (client credentials grant).
    OAuth(OAuthClient),
    /// OAUTHBEARER with AWS MSK IAM tokens (a SigV4-signed `kafka-cluster:Connect` request), always over TLS.
    MskIam(MskIam),
}

impl Auth {
    /// librdkafka's `sasl.mechanism`.
    pub fn sasl_mechanism(&self) -> &'static str {
        match self {
            Self::Password(s) => s.mechanism.as_librdkafka(),
            Self::OAuth(_) | Self::MskIam(_) => "OAUTHBEARER",
        }
    }

    /// Who is authenticating and how, for error texts: "user `u` with SCRAM-SHA-512".
    pub fn describe(&self) -> String {
        match self {
            Self::Password(s) => {
                format!("user `{}` with {}", s.username, s.mechanism.as_librdkafka())
            }
            Self::OAuth(o) => format!("OAuth client `{}` with OAUTHBEARER", o.client_id),
            Self::MskIam(m) => format!("AWS MSK IAM (region {})", m.region),
        }
    }

    /// What to check when the broker refuses this authentication.
    pub fn fix(&self) -> &'static str {
        match self {
            Self::Password(_) => "Check the username, password and mechanism of the credentials.",
            Self::OAuth(_) => {
                "Check `Audience` and `Scope` against what the cluster expects, and that the cluster trusts this identity provider (issuer and signing keys)."
            }
            Self::MskIam(_) => {
                "Check that the IAM policy of these AWS credentials allows `kafka-cluster:Connect` on this cluster and that `AWS region` is the cluster's region."
            }
        }
    }
}

/// OAuth 2.0 client credentials for SASL/OAUTHBEARER.
#[derive(Clone)]
pub struct OAuthClient {
    /// The identity provider's token endpoint.
    pub token_url: url::Url,
    /// Client id (also the principal when the token names none).
    pub client_id: String,
    /// Client secret (never printed).
    pub client_secret: SecretString,
    /// Optional `scope` form parameter.
    pub scope: Option<String>,
    /// Optional `audience` form parameter.
    pub audience: Option<String>,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scope", &self.scope)
            .field("audience", &self.audience)
            .finish()
    }
}

/// AWS MSK IAM: the region, and keys from the form (else the container's credential chain).
#[derive(Debug, Clone)]
pub struct MskIam {
    /// The cluster's AWS region.
    pub region: String,
    /// Keys from the credentials form, if given.
    pub keys: Option<crate::kafka::aws::Credentials>,
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
    /// SASL: a password mechanism when a username is set, or OAUTHBEARER (OAuth, AWS MSK IAM) when chosen.
    pub auth: Option<Auth>,
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

/// The SASL part of `cfg`: `mechanism` chooses OAUTHBEARER or AWS MSK IAM; otherwise a username turns on a
/// password mechanism (SCRAM-SHA-512 unless `mechanism` says otherwise).
fn parse_auth(cfg: &Value, brokers: &[String]) -> Result<Option<Auth>, ConfigError> {
    let mechanism = str_field(cfg, "mechanism").map(str::to_ascii_lowercase);
    match mechanism.as_deref() {
        Some("oauthbearer") => return parse_oauth(cfg).map(|o| Some(Auth::OAuth(o))),
        Some("aws-msk-iam") => return parse_msk_iam(cfg, brokers).map(|m| Some(Auth::MskIam(m))),
        _ => {}
    }
    let Some(username) = str_field(cfg, "username") else {
        return Ok(None);
    };
    let mechanism = match mechanism.as_deref() {
        None | Some("scram-sha-512") => Mechanism::ScramSha512,
        Some("scram-sha-256") => Mechanism::ScramSha256,
        Some("plain") => Mechanism::Plain,
        Some(other) => {
            return Err(cfg_err(
                "mechanism",
                format!(
                    "unknown SASL mechanism `{other}`; use scram-sha-512, scram-sha-256, plain, oauthbearer or aws-msk-iam"
                ),
            ));
        }
    };
    let password = cfg.get("password").and_then(Value::as_str).unwrap_or("");
    Ok(Some(Auth::Password(Sasl {
        username: username.to_owned(),
        password: SecretString::from(password.to_owned()),
        mechanism,
    })))
}

/// OAUTHBEARER fields; `username`/`password` stand in for the client id/secret (the platform's Node.js
/// component took the client id as the username).
fn parse_oauth(cfg: &Value) -> Result<OAuthClient, ConfigError> {
    let raw_url = str_field(cfg, "tokenUrl").ok_or_else(|| {
        cfg_err(
            "tokenUrl",
            "OAUTHBEARER needs the identity provider's token endpoint, e.g. https://idp.example.com/oauth2/token",
        )
    })?;
    let token_url = url::Url::parse(raw_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            cfg_err(
                "tokenUrl",
                format!("`{raw_url}` is not an http(s) URL; enter the token endpoint, e.g. https://idp.example.com/oauth2/token"),
            )
        })?;
    let client_id = str_field(cfg, "oauthClientId")
        .or_else(|| str_field(cfg, "username"))
        .ok_or_else(|| cfg_err("oauthClientId", "OAUTHBEARER needs the OAuth client id"))?
        .to_owned();
    let secret = [cfg.get("oauthClientSecret"), cfg.get("password")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|s| !s.is_empty())
        .ok_or_else(|| {
            cfg_err(
                "oauthClientSecret",
                "OAUTHBEARER needs the OAuth client secret (client credentials grant)",
            )
        })?;
    Ok(OAuthClient {
        token_url,
        client_id,
        client_secret: SecretString::from(secret.to_owned()),
        scope: str_field(cfg, "scope").map(str::to_owned),
        audience: str_field(cfg, "audience").map(str::to_owned),
    })
}

/// AWS MSK IAM fields: the region (from the form, else from an MSK broker host name) and optional keys.
fn parse_msk_iam(cfg: &Value, brokers: &[String]) -> Result<MskIam, ConfigError> {
    let region = match str_field(cfg, "awsRegion") {
        Some(r) => r.to_owned(),
        None => crate::kafka::aws::region_from_brokers(brokers).ok_or_else(|| {
            cfg_err(
                "awsRegion",
                "enter the cluster's AWS region, e.g. eu-west-1 (it could not be read from the broker host names)",
            )
        })?,
    };
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(cfg_err(
            "awsRegion",
            format!("`{region}` is not an AWS region name; use e.g. eu-west-1"),
        ));
    }
    let key_id = str_field(cfg, "awsAccessKeyId");
    let secret = str_field(cfg, "awsSecretAccessKey");
    let session = str_field(cfg, "awsSessionToken");
    let keys = match (key_id, secret) {
        (Some(id), Some(secret)) => Some(crate::kafka::aws::Credentials {
            access_key_id: id.to_owned(),
            secret_access_key: SecretString::from(secret.to_owned()),
            session_token: session.map(|t| SecretString::from(t.to_owned())),
            expires_at: None,
        }),
        (None, None) if session.is_none() => None,
        (None, None) => {
            return Err(cfg_err(
                "awsSessionToken",
                "a session token needs its access key id and secret access key",
            ));
        }
        (Some(_), None) => {
            return Err(cfg_err(
                "awsSecretAccessKey",
                "the access key id needs its secret access key (or leave both empty to use the container's AWS role)",
            ));
        }
        (None, Some(_)) => {
            return Err(cfg_err(
                "awsAccessKeyId",
                "the secret access key needs its access key id (or leave both empty to use the container's AWS role)",
            ));
        }
    };
    Ok(MskIam { region, keys })
}

impl KafkaConnection {
    /// Who authenticates and how, for error texts ("no SASL" without authentication).
    pub fn describe_auth(&self) -> String {
        self.auth
            .as_ref()
            .map_or_else(|| "no SASL".to_owned(), Auth::describe)
    }

    /// Parses the connection part of `cfg`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad field.
    pub fn from_cfg(cfg: &Value) -> Result<Self, ConfigError> {
        let brokers = parse_brokers(str_field(cfg, "brokers").unwrap_or(""))?;
        let client_id = str_field(cfg, "clientId")
            .unwrap_or("kafka-component")
            .to_owned();
        let auth = parse_auth(cfg, &brokers)?;
        let ca_pem = str_field(cfg, "caCert").map(str::to_owned);
        let client_cert_pem = str_field(cfg, "clientCert").map(str::to_owned);
        let client_key_pem = str_field(cfg, "clientKey").map(|k| SecretString::from(k.to_owned()));
        if client_cert_pem.is_some() != client_key_pem.is_some() {
            return Err(cfg_err(
                "clientCert",
                "mutual TLS needs both a client certificate and its key",
            ));
        }
        // MSK's IAM listeners are TLS only (ports 9098/9198): IAM always uses TLS, whatever `tls` says.
        let tls_on = bool_field(cfg, "tls", false)?
            || ca_pem.is_some()
            || client_cert_pem.is_some()
            || matches!(auth, Some(Auth::MskIam(_)));
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
            auth,
            tls,
        })
    }

    /// The librdkafka settings for this connection; the only place auth maps onto `security.protocol`.
    pub fn to_client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.brokers.join(","));
        c.set("client.id", &self.client_id);
        let protocol = match (&self.auth, &self.tls) {
            (None, None) => "plaintext",
            (None, Some(_)) => "ssl",
            (Some(_), None) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if let Some(auth) = &self.auth {
            c.set("sasl.mechanism", auth.sasl_mechanism());
            // OAUTHBEARER tokens come from the client context's callback (see `kafka::token`).
            if let Auth::Password(sasl) = auth {
                c.set("sasl.username", &sasl.username);
                c.set("sasl.password", sasl.password.expose_secret());
            }
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
        match &self.auth {
            None => {}
            Some(Auth::Password(s)) => {
                h.update([1]);
                h.update(s.username.as_bytes());
                h.update([0]);
                h.update(s.password.expose_secret().as_bytes());
                h.update(s.mechanism.as_librdkafka().as_bytes());
            }
            Some(Auth::OAuth(o)) => {
                h.update([3]);
                for part in [
                    o.token_url.as_str(),
                    &o.client_id,
                    o.client_secret.expose_secret(),
                    o.scope.as_deref().unwrap_or(""),
                    o.audience.as_deref().unwrap_or(""),
                ] {
                    h.update(part.as_bytes());
                    h.update([0]);
                }
            }
            Some(Auth::MskIam(m)) => {
                h.update([4]);
                h.update(m.region.as_bytes());
                h.update([0]);
                if let Some(k) = &m.keys {
                    for part in [
                        k.access_key_id.as_str(),
                        k.secret_access_key.expose_secret(),
                        k.session_token.as_ref().map_or("", |t| t.expose_secret()),
                    ] {
                        h.update(part.as_bytes());
                        h.update([0]);
                    }
                }
            }
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
    fn oauthbearer_takes_its_fields_or_the_username_and_password() {
        let c = KafkaConnection::from_cfg(&json!({"brokers": "k:9092", "mechanism": "OAUTHBEARER",
            "tokenUrl": "https://idp.example.com/oauth2/token", "oauthClientId": "app",
            "oauthClientSecret": "s3cret", "scope": "kafka", "audience": ""}))
        .unwrap();
        let Some(Auth::OAuth(o)) = &c.auth else {
            panic!("{c:?}")
        };
        assert_eq!(
            (
                o.client_id.as_str(),
                o.scope.as_deref(),
                o.audience.as_deref()
            ),
            ("app", Some("kafka"), None)
        );
        let cc = c.to_client_config();
        assert_eq!(cc.get("security.protocol"), Some("sasl_plaintext"));
        assert_eq!(cc.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(cc.get("sasl.password"), None);
        assert!(!format!("{c:?}").contains("s3cret"));
        // The Node.js component's way: client id as username, secret as password.
        let c = KafkaConnection::from_cfg(&json!({"brokers": "k:9092", "mechanism": "oauthbearer",
            "tokenUrl": "http://127.0.0.1:1/token", "username": "app2", "password": "p", "tls": true}))
        .unwrap();
        assert!(matches!(&c.auth, Some(Auth::OAuth(o)) if o.client_id == "app2"));
        assert_eq!(
            c.to_client_config().get("security.protocol"),
            Some("sasl_ssl")
        );
        for (cfg, field) in [
            (
                json!({"brokers": "k:9092", "mechanism": "oauthbearer", "oauthClientId": "a", "oauthClientSecret": "s"}),
                "tokenUrl",
            ),
            (
                json!({"brokers": "k:9092", "mechanism": "oauthbearer", "tokenUrl": "ftp://x/t", "oauthClientId": "a", "oauthClientSecret": "s"}),
                "tokenUrl",
            ),
            (
                json!({"brokers": "k:9092", "mechanism": "oauthbearer", "tokenUrl": "https://x/t", "oauthClientSecret": "s"}),
                "oauthClientId",
            ),
            (
                json!({"brokers": "k:9092", "mechanism": "oauthbearer", "tokenUrl": "https://x/t", "oauthClientId": "a"}),
                "oauthClientSecret",
            ),
        ] {
            assert_eq!(
                KafkaConnection::from_cfg(&cfg).unwrap_err().field,
                field,
                "{cfg}"
            );
        }
    }

    #[test]
    fn aws_msk_iam_always_uses_tls_and_wants_keys_in_pairs() {
        let c = KafkaConnection::from_cfg(
            &json!({"brokers": "b-1.c.kafka.eu-west-1.amazonaws.com:9098",
            "mechanism": "aws-msk-iam", "awsRegion": "eu-west-1", "tls": false,
            "awsAccessKeyId": "AKIDEXAMPLE", "awsSecretAccessKey": "secret/key+x"}),
        )
        .unwrap();
        let cc = c.to_client_config();
        assert_eq!(cc.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(cc.get("sasl.mechanism"), Some("OAUTHBEARER"));
        assert!(
            matches!(&c.auth, Some(Auth::MskIam(m)) if m.region == "eu-west-1" && m.keys.is_some())
        );
        assert!(!format!("{c:?}").contains("secret/key+x"));
        // The region from an MSK host name.
        let c = KafkaConnection::from_cfg(
            &json!({"brokers": "b-2.prod.abc123.c3.kafka.ap-southeast-2.amazonaws.com:9098",
            "mechanism": "aws-msk-iam"}),
        )
        .unwrap();
        assert!(matches!(&c.auth, Some(Auth::MskIam(m)) if m.region == "ap-southeast-2"));
        // No keys: the container's credential chain.
        let c = KafkaConnection::from_cfg(
            &json!({"brokers": "k:9098", "mechanism": "aws-msk-iam", "awsRegion": "us-east-1"}),
        )
        .unwrap();
        assert!(matches!(&c.auth, Some(Auth::MskIam(m)) if m.keys.is_none()));
        for (cfg, field) in [
            (
                json!({"brokers": "k:9098", "mechanism": "aws-msk-iam"}),
                "awsRegion",
            ),
            (
                json!({"brokers": "k:9098", "mechanism": "aws-msk-iam", "awsRegion": "EU West"}),
                "awsRegion",
            ),
            (
                json!({"brokers": "k:9098", "mechanism": "aws-msk-iam", "awsRegion": "eu-west-1", "awsAccessKeyId": "A"}),
                "awsSecretAccessKey",
            ),
            (
                json!({"brokers": "k:9098", "mechanism": "aws-msk-iam", "awsRegion": "eu-west-1", "awsSecretAccessKey": "S"}),
                "awsAccessKeyId",
            ),
            (
                json!({"brokers": "k:9098", "mechanism": "aws-msk-iam", "awsRegion": "eu-west-1", "awsSessionToken": "T"}),
                "awsSessionToken",
            ),
        ] {
            assert_eq!(
                KafkaConnection::from_cfg(&cfg).unwrap_err().field,
                field,
                "{cfg}"
            );
        }
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
