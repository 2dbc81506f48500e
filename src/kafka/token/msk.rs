//! AWS MSK IAM tokens: credentials from the chain (cached until shortly before they expire), signed locally.

use std::time::{Duration, SystemTime};

use secrecy::SecretString;

use super::error::TokenError;
use super::source::{Token, TokenSource, now_ms};
use crate::kafka::aws::{self, AwsEnv};
use crate::kafka::config::MskIam;

/// AWS credentials are renewed this long before they expire.
pub(super) const AWS_CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);

impl TokenSource {
    pub(super) async fn credentials(
        &self,
        cfg: &MskIam,
        env: &AwsEnv,
    ) -> Result<aws::Credentials, TokenError> {
        let mut cached = self.aws_credentials.lock().await;
        let fresh = |c: &aws::Credentials| {
            c.expires_at
                .is_none_or(|t| t > SystemTime::now() + AWS_CREDENTIALS_MARGIN)
        };
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let (creds, source) = aws::resolve_credentials(cfg.keys.as_ref(), env, &self.http).await?;
        tracing::debug!(source = ?source, "AWS credentials resolved.");
        *cached = Some(creds.clone());
        Ok(creds)
    }

    pub(super) async fn sign_msk(&self, cfg: &MskIam, env: &AwsEnv) -> Result<Token, TokenError> {
        let creds = self.credentials(cfg, env).await?;
        let fetched_at_ms = now_ms();
        let signed = aws::msk_token(&creds, &cfg.region, SystemTime::now(), aws::USER_AGENT);
        Ok(Token {
            value: SecretString::from(signed.token),
            principal: creds.access_key_id.clone(),
            expires_at_ms: signed.expires_at_ms,
            fetched_at_ms,
        })
    }
}
