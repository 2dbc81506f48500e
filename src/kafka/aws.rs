//! TEMPORARY STUB (replaced by the real module from branch `aws`).
#![allow(missing_docs, dead_code, clippy::unused_async)]
use secrecy::SecretString;
use std::time::SystemTime;

#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
    pub expires_at: Option<SystemTime>,
}
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials")
    }
}
#[derive(Debug, Clone, Default)]
pub struct AwsEnv;
impl AwsEnv {
    pub fn from_process() -> Self {
        Self
    }
}
#[derive(Debug, Clone)]
pub struct MskToken {
    pub token: String,
    pub expires_at_ms: i64,
}
pub const USER_AGENT: &str = "kafka-component";
pub fn msk_token(_c: &Credentials, _r: &str, _at: SystemTime, _ua: &str) -> MskToken {
    MskToken {
        token: String::new(),
        expires_at_ms: 0,
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Static,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    NoCredentials,
    StsUnreachable,
    Other,
}
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct AwsError {
    pub kind: AwsErrorKind,
    pub detail: String,
}
pub async fn resolve_credentials(
    s: Option<&Credentials>,
    _e: &AwsEnv,
    _h: &reqwest::Client,
) -> Result<(Credentials, CredentialSource), AwsError> {
    s.cloned()
        .map(|c| (c, CredentialSource::Static))
        .ok_or(AwsError {
            kind: AwsErrorKind::NoCredentials,
            detail: String::new(),
        })
}
pub async fn check_credentials(
    _c: &Credentials,
    _r: &str,
    _e: &AwsEnv,
    _h: &reqwest::Client,
) -> Result<(), AwsError> {
    Ok(())
}
pub fn region_from_brokers(_b: &[String]) -> Option<String> {
    None
}
