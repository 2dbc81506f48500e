//! The container credentials endpoint (ECS task role, EKS Pod Identity).

use super::credentials::{Credentials, JsonCredentials};
use super::env::AwsEnv;
use super::error::{AwsError, AwsErrorKind};
use super::http::{CONTAINER_TIMEOUT, http_detail};

/// Whether botocore would let a full container URI through: https, loopback, or the ECS/EKS link-local hosts.
pub(super) fn container_uri_allowed(url: &url::Url) -> bool {
    if url.scheme() == "https" {
        return true;
    }
    if url.scheme() != "http" {
        return false;
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback()
                || ip == std::net::Ipv4Addr::new(169, 254, 170, 2)
                || ip == std::net::Ipv4Addr::new(169, 254, 170, 23)
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
        }
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn fail(detail: String) -> AwsError {
    AwsError::new(AwsErrorKind::Container, detail)
}

/// The container credentials endpoint (ECS task role, EKS Pod Identity).
pub(super) async fn container(
    env: &AwsEnv,
    http: &reqwest::Client,
) -> Result<Credentials, AwsError> {
    let url = endpoint(env)?;
    let auth = authorization(env)?;
    let mut req = http
        .get(&url)
        .header("Accept", "application/json")
        .timeout(CONTAINER_TIMEOUT);
    if let Some(auth) = &auth {
        req = req.header("Authorization", auth);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| fail(format!("{url}: {}", http_detail(e))))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(format!("{url} answered HTTP {status}")));
    }
    let body: JsonCredentials = resp
        .json()
        .await
        .map_err(|e| fail(format!("{url}: not a credentials JSON: {}", http_detail(e))))?;
    body.into_credentials()
        .map_err(|why| fail(format!("{url}: {why}")))
}

/// The endpoint URL: the relative URI under the container base, or an allowed full URI.
fn endpoint(env: &AwsEnv) -> Result<String, AwsError> {
    if let Some(rel) = env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        let rel = if rel.starts_with('/') {
            rel.to_owned()
        } else {
            format!("/{rel}")
        };
        Ok(format!("{}{rel}", env.container_base()))
    } else if let Some(full) = env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        let parsed = url::Url::parse(full).map_err(|e| {
            fail(format!(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL: {e}"
            ))
        })?;
        if !container_uri_allowed(&parsed) {
            return Err(fail(format!(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI host {} is not allowed over http (only https, loopback or \
                 169.254.170.2/169.254.170.23)",
                parsed.host_str().unwrap_or("")
            )));
        }
        Ok(full.to_owned())
    } else {
        Err(fail("no container credentials URI".to_owned()))
    }
}

/// The `Authorization` header value, from the token file or the variable; never with a line break.
fn authorization(env: &AwsEnv) -> Result<Option<String>, AwsError> {
    let auth = if let Some(file) = env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        let token = env.read(file).map_err(|e| {
            fail(format!(
                "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {file}: {e}"
            ))
        })?;
        Some(token.trim().to_owned())
    } else {
        env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .map(str::to_owned)
    };
    if auth.as_deref().is_some_and(|a| a.contains(['\r', '\n'])) {
        return Err(fail(
            "the container authorization token contains a line break".to_owned(),
        ));
    }
    Ok(auth)
}
