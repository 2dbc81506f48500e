//! Web identity credentials (EKS IRSA): STS `AssumeRoleWithWebIdentity` with a token file.

use std::time::SystemTime;

use secrecy::SecretString;

use super::credentials::Credentials;
use super::env::AwsEnv;
use super::error::clip;
use super::error::{AwsError, AwsErrorKind};
use super::http::{STS_TIMEOUT, http_detail, xml_error, xml_text};
use super::sigv4::enc;
use super::time::{parse_iso8601, unix_secs};

fn fail(detail: String) -> AwsError {
    AwsError::new(AwsErrorKind::WebIdentity, detail)
}

/// STS `AssumeRoleWithWebIdentity` (unsigned POST, XML answer).
pub(super) async fn web_identity(
    env: &AwsEnv,
    http: &reqwest::Client,
    token_file: &str,
    role_arn: &str,
) -> Result<Credentials, AwsError> {
    let token = read_token(env, token_file)?;
    let session_name = env.var("AWS_ROLE_SESSION_NAME").map_or_else(
        || format!("kafka-component-{}", unix_secs(SystemTime::now())),
        str::to_owned,
    );
    let endpoint = env.sts_endpoint(env.region());
    let body = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name.as_str()),
        ("WebIdentityToken", token.as_str()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", enc(v)))
    .collect::<Vec<_>>()
    .join("&");
    let resp = http
        .post(&endpoint)
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("Accept", "text/xml")
        .timeout(STS_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(|e| fail(format!("STS {endpoint}: {}", http_detail(e))))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| fail(format!("STS {endpoint}: {}", http_detail(e))))?;
    if !status.is_success() {
        return Err(fail(match xml_error(&text) {
            Some((code, message)) => format!("STS {code}: {}", clip(&message)),
            None => format!("STS {endpoint} answered HTTP {status}"),
        }));
    }
    credentials_from_xml(&text)
}

/// The trimmed, non-empty web identity token of `token_file`.
fn read_token(env: &AwsEnv, token_file: &str) -> Result<String, AwsError> {
    let token = env.read(token_file).map_err(|e| {
        fail(format!(
            "cannot read AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: {e}"
        ))
    })?;
    let token = token.trim();
    if token.is_empty() {
        return Err(fail(format!(
            "AWS_WEB_IDENTITY_TOKEN_FILE {token_file} is empty"
        )));
    }
    Ok(token.to_owned())
}

/// The credentials of a successful `AssumeRoleWithWebIdentity` answer.
fn credentials_from_xml(text: &str) -> Result<Credentials, AwsError> {
    let field = |tag: &str| {
        xml_text(text, tag)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail(format!("STS answer without <{tag}>")))
    };
    Ok(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: SecretString::from(field("SecretAccessKey")?),
        session_token: Some(SecretString::from(field("SessionToken")?)),
        expires_at: xml_text(text, "Expiration").and_then(|e| parse_iso8601(&e)),
    })
}
