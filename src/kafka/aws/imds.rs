//! EC2 instance metadata credentials (instance profile), IMDSv2 with the IMDSv1 fallback.

use super::credentials::{Credentials, JsonCredentials};
use super::env::AwsEnv;
use super::error::{AwsError, AwsErrorKind};
use super::http::{IMDS_TIMEOUT, http_detail};
use super::sigv4::enc;

fn fail(detail: String) -> AwsError {
    AwsError::new(AwsErrorKind::Imds, detail)
}

fn absent(base: &str, e: reqwest::Error) -> String {
    format!("no instance metadata at {base} ({})", http_detail(e))
}

/// IMDSv2. `Ok(Err(why))`: no instance metadata here (absent, silent, no role): the chain just ends.
pub(super) async fn imds(
    env: &AwsEnv,
    http: &reqwest::Client,
) -> Result<Result<Credentials, String>, AwsError> {
    let base = env.imds_base();
    let token = match session_token(http, base).await? {
        Ok(token) => token,
        Err(why) => return Ok(Err(why)),
    };
    let session = Session { http, base, token };
    let role = match session.role().await? {
        Ok(role) => role,
        Err(why) => return Ok(Err(why)),
    };
    session.credentials(&role).await.map(Ok)
}

/// The IMDSv2 session token; `Ok(Ok(None))` when the endpoint only speaks IMDSv1.
async fn session_token(
    http: &reqwest::Client,
    base: &str,
) -> Result<Result<Option<String>, String>, AwsError> {
    match http
        .put(format!("{base}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "21600")
        .timeout(IMDS_TIMEOUT)
        .send()
        .await
    {
        Err(e) => Ok(Err(absent(base, e))),
        Ok(resp) if resp.status().is_success() => match resp.text().await {
            Ok(t) if !t.trim().is_empty() => Ok(Ok(Some(t.trim().to_owned()))),
            Ok(_) => Err(fail("empty IMDSv2 token".to_owned())),
            Err(e) => Ok(Err(absent(base, e))),
        },
        // IMDSv1-only endpoints (or proxies in front of them); botocore falls back the same way.
        Ok(resp) if matches!(resp.status().as_u16(), 403..=405) => Ok(Ok(None)),
        Ok(resp) => Ok(Err(format!(
            "instance metadata at {base} refused a session token (HTTP {})",
            resp.status()
        ))),
    }
}

/// Requests to the instance metadata service, with the session token when there is one.
struct Session<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    token: Option<String>,
}

impl Session<'_> {
    async fn get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .timeout(IMDS_TIMEOUT);
        if let Some(t) = &self.token {
            req = req.header("X-aws-ec2-metadata-token", t);
        }
        req.send().await
    }

    /// The instance's IAM role; `Ok(Err(why))` when there is none.
    async fn role(&self) -> Result<Result<String, String>, AwsError> {
        let resp = match self
            .get("/latest/meta-data/iam/security-credentials/")
            .await
        {
            Err(e) => return Ok(Err(absent(self.base, e))),
            Ok(r) => r,
        };
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(Err(
                "the instance has no IAM role (instance profile)".to_owned()
            ));
        }
        if !resp.status().is_success() {
            return Err(fail(format!(
                "listing the instance's role answered HTTP {}",
                resp.status()
            )));
        }
        let roles = resp
            .text()
            .await
            .map_err(|e| fail(format!("listing the instance's role: {}", http_detail(e))))?;
        Ok(roles
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| "the instance has no IAM role (instance profile)".to_owned()))
    }

    /// The credentials of `role`.
    async fn credentials(&self, role: &str) -> Result<Credentials, AwsError> {
        let role_path = format!("/latest/meta-data/iam/security-credentials/{}", enc(role));
        let resp = self
            .get(&role_path)
            .await
            .map_err(|e| fail(format!("role {role}: {}", http_detail(e))))?;
        if !resp.status().is_success() {
            return Err(fail(format!(
                "credentials of role {role} answered HTTP {}",
                resp.status()
            )));
        }
        let body: JsonCredentials = resp.json().await.map_err(|e| {
            fail(format!(
                "credentials of role {role}: not a credentials JSON: {}",
                http_detail(e)
            ))
        })?;
        body.into_credentials()
            .map_err(|why| fail(format!("credentials of role {role}: {why}")))
    }
}
