//! The STS check: a presigned `GetCallerIdentity` that tells expired, unknown or wrong keys apart.

use std::time::SystemTime;

use super::credentials::Credentials;
use super::env::AwsEnv;
use super::error::{AwsError, AwsErrorKind};
use super::http::{STS_TIMEOUT, host_and_path, http_detail, scrub, xml_error, xml_text};
use super::sigv4::{Presign, presign_query};

/// Asks STS `GetCallerIdentity` (a presigned GET to `https://sts.<region>.amazonaws.com`, or the
/// `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL` override, within 3 s) whether AWS accepts `creds`.
///
/// # Errors
/// [`AwsErrorKind::ExpiredToken`], [`AwsErrorKind::UnknownAccessKey`], [`AwsErrorKind::WrongSecretKey`],
/// [`AwsErrorKind::AccessDenied`], [`AwsErrorKind::ClockSkew`] from the XML error `Code`;
/// [`AwsErrorKind::StsUnreachable`] when STS does not answer or answers 5xx (nothing is known then);
/// [`AwsErrorKind::Other`] for anything else.
pub async fn check_credentials(
    creds: &Credentials,
    region: &str,
    env: &AwsEnv,
    http: &reqwest::Client,
) -> Result<(), AwsError> {
    let region = region.trim();
    let (url, host, path) = endpoint(env, region)?;
    let query = presign_query(
        creds,
        &Presign {
            host: &host,
            path: &path,
            service: "sts",
            region,
            params: &[("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
        },
        SystemTime::now(),
    );
    let origin = url.origin().ascii_serialization();
    let unreachable =
        |detail: String| AwsError::new(AwsErrorKind::StsUnreachable, format!("{origin}: {detail}"));
    let resp = http
        .get(format!("{origin}{path}?{query}"))
        .timeout(STS_TIMEOUT)
        .send()
        .await
        .map_err(|e| unreachable(http_detail(e)))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| unreachable(http_detail(e)))?;
    if status.is_success() {
        if let Some(arn) = xml_text(&body, "Arn") {
            tracing::debug!(%arn, "STS GetCallerIdentity accepted the AWS credentials");
        }
        return Ok(());
    }
    let Some((code, message)) = xml_error(&body) else {
        return Err(if status.is_server_error() {
            unreachable(format!("HTTP {status}"))
        } else {
            AwsError::new(
                AwsErrorKind::Other,
                format!("STS {origin} answered HTTP {status} without an AWS error"),
            )
        });
    };
    let message = scrub(&message, creds);
    let kind = error_kind(&code, &message, status);
    let detail = format!("STS {code}: {message}");
    let detail = if kind == AwsErrorKind::UnknownAccessKey {
        format!("{detail}; access key ID {}", creds.access_key_id)
    } else {
        detail
    };
    Err(AwsError::new(kind, detail))
}

/// The STS endpoint for `region` (not empty) as a URL, with the `host[:port]` and path SigV4 signs.
fn endpoint(env: &AwsEnv, region: &str) -> Result<(url::Url, String, String), AwsError> {
    if region.is_empty() {
        return Err(AwsError::new(
            AwsErrorKind::Other,
            "no AWS region to check the credentials in",
        ));
    }
    let endpoint = env.sts_endpoint(Some(region));
    let url = url::Url::parse(&endpoint).map_err(|e| {
        AwsError::new(
            AwsErrorKind::Other,
            format!("STS endpoint {endpoint} is not a URL: {e}"),
        )
    })?;
    let (host, path) = host_and_path(&url).ok_or_else(|| {
        AwsError::new(
            AwsErrorKind::Other,
            format!("STS endpoint {endpoint} has no host"),
        )
    })?;
    Ok((url, host, path))
}

/// What an STS error `Code` (and its scrubbed message, for signature errors) says about the credentials.
fn error_kind(code: &str, message: &str, status: reqwest::StatusCode) -> AwsErrorKind {
    let lower = message.to_ascii_lowercase();
    match code {
        "ExpiredToken" | "ExpiredTokenException" => AwsErrorKind::ExpiredToken,
        "InvalidClientTokenId" | "UnrecognizedClientException" | "InvalidAccessKeyId" => {
            AwsErrorKind::UnknownAccessKey
        }
        "SignatureDoesNotMatch"
            if lower.contains("signature expired") || lower.contains("not yet current") =>
        {
            AwsErrorKind::ClockSkew
        }
        "SignatureDoesNotMatch" => AwsErrorKind::WrongSecretKey,
        "RequestExpired" | "RequestTimeTooSkewed" => AwsErrorKind::ClockSkew,
        "AccessDenied" | "AccessDeniedException" => AwsErrorKind::AccessDenied,
        _ if status.is_server_error() => AwsErrorKind::StsUnreachable,
        _ => AwsErrorKind::Other,
    }
}
