//! The connection model shared by every function: brokers, client id, SASL and TLS.
//!
//! Secrets are [`SecretString`]s, exposed only at the `ClientConfig::set` call (see `librdkafka.rs`).

use std::fmt;

use secrecy::SecretString;

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

impl KafkaConnection {
    /// Who authenticates and how, for error texts ("no SASL" without authentication).
    pub fn describe_auth(&self) -> String {
        self.auth
            .as_ref()
            .map_or_else(|| "no SASL".to_owned(), Auth::describe)
    }
}
