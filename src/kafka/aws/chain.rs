//! The credential chain: form keys → environment → web identity → container endpoint → IMDS.

use super::container::container;
use super::credentials::{CredentialSource, Credentials};
use super::env::AwsEnv;
use super::error::{AwsError, AwsErrorKind};
use super::imds::imds;
use super::web_identity::web_identity;

/// Finds credentials: `static_keys` (the form) → `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
/// (+ `AWS_SESSION_TOKEN`) → web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`
/// (+ `AWS_ROLE_SESSION_NAME`), STS `AssumeRoleWithWebIdentity`) → container credentials
/// (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `_FULL_URI`, `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`) →
/// IMDSv2 (unless `AWS_EC2_METADATA_DISABLED=true`).
///
/// A configured source that fails is an error (like botocore); an absent or silent IMDS is not, it ends the
/// chain with [`AwsErrorKind::NoCredentials`] within about a second.
///
/// # Errors
/// [`AwsErrorKind::NoCredentials`] (nothing found, or half of the environment keys), [`AwsErrorKind::WebIdentity`],
/// [`AwsErrorKind::Container`], [`AwsErrorKind::Imds`].
pub async fn resolve_credentials(
    static_keys: Option<&Credentials>,
    env: &AwsEnv,
    http: &reqwest::Client,
) -> Result<(Credentials, CredentialSource), AwsError> {
    if let Some(keys) = static_keys {
        return Ok((keys.clone(), CredentialSource::Form));
    }
    match (
        env.var("AWS_ACCESS_KEY_ID"),
        env.var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => {
            let creds =
                Credentials::new(id, secret, env.var("AWS_SESSION_TOKEN").map(str::to_owned));
            return Ok((creds, CredentialSource::Environment));
        }
        (Some(_), None) => {
            return Err(AwsError::new(
                AwsErrorKind::NoCredentials,
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
            ));
        }
        (None, Some(_)) => {
            return Err(AwsError::new(
                AwsErrorKind::NoCredentials,
                "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
            ));
        }
        (None, None) => {}
    }
    if let (Some(token_file), Some(role_arn)) = (
        env.var("AWS_WEB_IDENTITY_TOKEN_FILE"),
        env.var("AWS_ROLE_ARN"),
    ) {
        let creds = web_identity(env, http, token_file, role_arn).await?;
        return Ok((creds, CredentialSource::WebIdentity));
    }
    if env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
    {
        let creds = container(env, http).await?;
        return Ok((creds, CredentialSource::Container));
    }
    let imds_note = if env.imds_disabled() {
        "instance metadata disabled by AWS_EC2_METADATA_DISABLED".to_owned()
    } else {
        match imds(env, http).await? {
            Ok(creds) => return Ok((creds, CredentialSource::InstanceMetadata)),
            Err(why) => why,
        }
    };
    Err(AwsError::new(
        AwsErrorKind::NoCredentials,
        format!(
            "none in the form, the environment (AWS_ACCESS_KEY_ID), web identity (AWS_ROLE_ARN + \
             AWS_WEB_IDENTITY_TOKEN_FILE) or the container endpoint (AWS_CONTAINER_CREDENTIALS_*); {imds_note}"
        ),
    ))
}
