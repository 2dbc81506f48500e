//! HTTP plumbing of the chain and the STS check: the client, timeouts, error details without URLs or
//! secrets, and the little XML reading AWS answers need.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::credentials::Credentials;
use super::error::{AwsError, AwsErrorKind, clip};
use super::sigv4::enc;

/// Bound of each instance metadata request (connect included): IMDS that is absent must fail fast.
pub(super) const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound of each container credentials request.
pub(super) const CONTAINER_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound of each STS request.
pub(super) const STS_TIMEOUT: Duration = Duration::from_secs(3);
/// An HTTP client suited to the chain and the STS check: 1 s connect timeout, 3 s per request, no redirects.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client, AwsError> {
    crate::http::client_builder()
        .connect_timeout(Duration::from_secs(1))
        .timeout(STS_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| AwsError::new(AwsErrorKind::Other, http_detail(e)))
}

/// A reqwest error without its URL (a presigned URL carries the session token), with its causes.
pub(super) fn http_detail(e: reqwest::Error) -> String {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    if timeout {
        out.push_str(" (timed out)");
    }
    out
}

/// Removes the secret parts of `creds` from a remote text, then clips it.
pub(super) fn scrub(s: &str, creds: &Credentials) -> String {
    let mut s = s.to_owned();
    let secret = creds.secret_access_key.expose_secret();
    if !secret.is_empty() {
        s = s.replace(secret, "[redacted]");
    }
    if let Some(token) = &creds.session_token {
        let token = token.expose_secret();
        if !token.is_empty() {
            s = s
                .replace(token, "[redacted]")
                .replace(&enc(token), "[redacted]");
        }
    }
    clip(&s)
}

/// The text of the first `<tag>…</tag>`, XML entities decoded.
pub(super) fn xml_text(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    Some(
        body[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// `Code: Message` of an AWS XML error body.
pub(super) fn xml_error(body: &str) -> Option<(String, String)> {
    let code = xml_text(body, "Code")?;
    let message = xml_text(body, "Message").unwrap_or_default();
    Some((code, message))
}

/// `host[:port]` and path of an endpoint URL, as SigV4 signs them.
pub(super) fn host_and_path(url: &url::Url) -> Option<(String, String)> {
    let host = url.host_str()?.to_ascii_lowercase();
    let host = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    let path = if url.path().is_empty() {
        "/".to_owned()
    } else {
        url.path().to_owned()
    };
    Some((host, path))
}
