//! AWS credentials, where the chain found them, and the credentials JSON of the container endpoint and IMDS.

use std::fmt;
use std::time::SystemTime;

use secrecy::SecretString;

use super::error::clip;
use super::time::parse_iso8601;

/// AWS credentials (secret parts redacted in Debug).
#[derive(Clone)]
pub struct Credentials {
    /// Access key id (`AKIA…`, `ASIA…` for temporary keys); not a secret, but not logged either.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: SecretString,
    /// Session token of temporary credentials.
    pub session_token: Option<SecretString>,
    /// When temporary credentials expire (from STS, the container endpoint or IMDS).
    pub expires_at: Option<SystemTime>,
}

impl Credentials {
    /// Long-term or temporary keys without a known expiry.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: SecretString::from(secret_access_key.into()),
            session_token: session_token.map(SecretString::from),
            expires_at: None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where [`resolve_credentials`] found the credentials (for logs; never secrets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialSource {
    /// The access keys entered in the step's credentials form.
    Form,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` [/ `AWS_SESSION_TOKEN`].
    Environment,
    /// STS `AssumeRoleWithWebIdentity` with `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` (EKS IRSA).
    WebIdentity,
    /// The container credentials endpoint (ECS task role, EKS Pod Identity).
    Container,
    /// The EC2 instance metadata service (instance profile), IMDSv2.
    InstanceMetadata,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Form => "access keys from the credentials form",
            Self::Environment => "environment variables AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            Self::WebIdentity => "web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE)",
            Self::Container => "container credentials endpoint",
            Self::InstanceMetadata => "EC2 instance metadata (instance profile)",
        })
    }
}

/// The JSON of the container endpoint and IMDS.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct JsonCredentials {
    code: Option<String>,
    message: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
}

impl JsonCredentials {
    /// Credentials, or what is missing.
    pub(super) fn into_credentials(self) -> Result<Credentials, String> {
        if let Some(code) = self.code.filter(|c| c != "Success") {
            return Err(format!(
                "Code {code}: {}",
                clip(self.message.as_deref().unwrap_or(""))
            ));
        }
        let (Some(id), Some(secret)) = (
            self.access_key_id.filter(|s| !s.is_empty()),
            self.secret_access_key.filter(|s| !s.is_empty()),
        ) else {
            return Err("answer without AccessKeyId/SecretAccessKey".to_owned());
        };
        Ok(Credentials {
            access_key_id: id,
            secret_access_key: SecretString::from(secret),
            session_token: self.token.filter(|t| !t.is_empty()).map(SecretString::from),
            expires_at: self.expiration.as_deref().and_then(parse_iso8601),
        })
    }
}
