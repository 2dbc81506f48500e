//! `cfg` → [`KafkaConnection`]: the credentials fields read at once into `Fields`, then checked field by field
//! in the order below, so the first problem reported is always the same one.

use serde::Deserialize;
use serde_json::Value;

use super::fields::{ConfigError, Flag, Secret, Text, read};
use super::{Auth, KafkaConnection, Mechanism, MskIam, OAuthClient, Sasl, Tls};

/// The credentials fields (component.json ids); every other key of `cfg` is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Fields {
    brokers: Text,
    client_id: Text,
    username: Text,
    password: Secret,
    mechanism: Text,
    token_url: Text,
    oauth_client_id: Text,
    oauth_client_secret: Secret,
    scope: Text,
    audience: Text,
    aws_region: Text,
    aws_access_key_id: Text,
    aws_secret_access_key: Secret,
    aws_session_token: Secret,
    tls: Flag,
    ca_cert: Text,
    client_cert: Text,
    client_key: Secret,
    tls_verify_hostname: Flag,
    tls_insecure_skip_verify: Flag,
}

impl KafkaConnection {
    /// Parses the connection part of `cfg`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad field.
    pub fn from_cfg(cfg: &Value) -> Result<Self, ConfigError> {
        let f: Fields = read(cfg);
        let brokers = parse_brokers(f.brokers.get().unwrap_or(""))?;
        let client_id = f.client_id.get().unwrap_or("kafka-component").to_owned();
        let auth = parse_auth(&f, &brokers)?;
        let tls = parse_tls(&f, &auth)?;
        Ok(Self {
            brokers,
            client_id,
            auth,
            tls,
        })
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
        return Err(ConfigError::new(
            "brokers",
            "no broker given; enter one or more host:port separated by commas or spaces",
        ));
    }
    for b in &brokers {
        let Some((host, port)) = b.rsplit_once(':') else {
            return Err(ConfigError::new(
                "brokers",
                format!("`{b}` has no port; write it as host:port, e.g. {b}:9092"),
            ));
        };
        if host.is_empty() {
            return Err(ConfigError::new(
                "brokers",
                format!("`{b}` has no host name"),
            ));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => {
                return Err(ConfigError::new(
                    "brokers",
                    format!("`{b}` has an invalid port `{port}`; use a number from 1 to 65535"),
                ));
            }
        }
    }
    Ok(brokers)
}

/// The SASL part: `mechanism` chooses OAUTHBEARER or AWS MSK IAM; otherwise a username turns on a password
/// mechanism (SCRAM-SHA-512 unless `mechanism` says otherwise).
fn parse_auth(f: &Fields, brokers: &[String]) -> Result<Option<Auth>, ConfigError> {
    let mechanism = f.mechanism.get().map(str::to_ascii_lowercase);
    match mechanism.as_deref() {
        Some("oauthbearer") => return parse_oauth(f).map(|o| Some(Auth::OAuth(o))),
        Some("aws-msk-iam") => return parse_msk_iam(f, brokers).map(|m| Some(Auth::MskIam(m))),
        _ => {}
    }
    let Some(username) = f.username.get() else {
        return Ok(None);
    };
    let mechanism = match mechanism.as_deref() {
        None | Some("scram-sha-512") => Mechanism::ScramSha512,
        Some("scram-sha-256") => Mechanism::ScramSha256,
        Some("plain") => Mechanism::Plain,
        Some(other) => {
            return Err(ConfigError::new(
                "mechanism",
                format!(
                    "unknown SASL mechanism `{other}`; use scram-sha-512, scram-sha-256, plain, oauthbearer or aws-msk-iam"
                ),
            ));
        }
    };
    Ok(Some(Auth::Password(Sasl {
        username: username.to_owned(),
        // The password as given: not trimmed, and empty when missing.
        password: f.password.as_given().unwrap_or_default(),
        mechanism,
    })))
}

/// OAUTHBEARER fields; `username`/`password` stand in for the client id/secret (the platform's Node.js
/// component took the client id as the username).
fn parse_oauth(f: &Fields) -> Result<OAuthClient, ConfigError> {
    let raw_url = f.token_url.get().ok_or_else(|| {
        ConfigError::new(
            "tokenUrl",
            "OAUTHBEARER needs the identity provider's token endpoint, e.g. https://idp.example.com/oauth2/token",
        )
    })?;
    let token_url = url::Url::parse(raw_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            ConfigError::new(
                "tokenUrl",
                format!("`{raw_url}` is not an http(s) URL; enter the token endpoint, e.g. https://idp.example.com/oauth2/token"),
            )
        })?;
    let client_id = f
        .oauth_client_id
        .get()
        .or_else(|| f.username.get())
        .ok_or_else(|| ConfigError::new("oauthClientId", "OAUTHBEARER needs the OAuth client id"))?
        .to_owned();
    let client_secret = [&f.oauth_client_secret, &f.password]
        .into_iter()
        .find_map(Secret::non_empty)
        .ok_or_else(|| {
            ConfigError::new(
                "oauthClientSecret",
                "OAUTHBEARER needs the OAuth client secret (client credentials grant)",
            )
        })?;
    Ok(OAuthClient {
        token_url,
        client_id,
        client_secret,
        scope: f.scope.get().map(str::to_owned),
        audience: f.audience.get().map(str::to_owned),
    })
}

/// AWS MSK IAM fields: the region (from the form, else from an MSK broker host name) and optional keys.
fn parse_msk_iam(f: &Fields, brokers: &[String]) -> Result<MskIam, ConfigError> {
    let region = match f.aws_region.get() {
        Some(r) => r.to_owned(),
        None => crate::kafka::aws::region_from_brokers(brokers).ok_or_else(|| {
            ConfigError::new(
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
        return Err(ConfigError::new(
            "awsRegion",
            format!("`{region}` is not an AWS region name; use e.g. eu-west-1"),
        ));
    }
    let key_id = f.aws_access_key_id.get();
    let secret = f.aws_secret_access_key.trimmed();
    let session = f.aws_session_token.trimmed();
    let keys = match (key_id, secret) {
        (Some(id), Some(secret)) => Some(crate::kafka::aws::Credentials {
            access_key_id: id.to_owned(),
            secret_access_key: secret,
            session_token: session,
            expires_at: None,
        }),
        (None, None) if session.is_none() => None,
        (None, None) => {
            return Err(ConfigError::new(
                "awsSessionToken",
                "a session token needs its access key id and secret access key",
            ));
        }
        (Some(_), None) => {
            return Err(ConfigError::new(
                "awsSecretAccessKey",
                "the access key id needs its secret access key (or leave both empty to use the container's AWS role)",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "awsAccessKeyId",
                "the secret access key needs its access key id (or leave both empty to use the container's AWS role)",
            ));
        }
    };
    Ok(MskIam { region, keys })
}

/// TLS: on when `tls` is, when a CA or client certificate is given, and always for AWS MSK IAM.
fn parse_tls(f: &Fields, auth: &Option<Auth>) -> Result<Option<Tls>, ConfigError> {
    let ca_pem = f.ca_cert.get().map(str::to_owned);
    let client_cert_pem = f.client_cert.get().map(str::to_owned);
    let client_key_pem = f.client_key.trimmed();
    if client_cert_pem.is_some() != client_key_pem.is_some() {
        return Err(ConfigError::new(
            "clientCert",
            "mutual TLS needs both a client certificate and its key",
        ));
    }
    // MSK's IAM listeners are TLS only (ports 9098/9198): IAM always uses TLS, whatever `tls` says.
    let tls_on = f.tls.get("tls", false)?
        || ca_pem.is_some()
        || client_cert_pem.is_some()
        || matches!(auth, Some(Auth::MskIam(_)));
    if !tls_on {
        return Ok(None);
    }
    Ok(Some(Tls {
        ca_pem,
        client_cert_pem,
        client_key_pem,
        verify_hostname: f.tls_verify_hostname.get("tlsVerifyHostname", true)?,
        insecure_skip_verify: f
            .tls_insecure_skip_verify
            .get("tlsInsecureSkipVerify", false)?,
    }))
}
