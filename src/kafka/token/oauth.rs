//! OAuth 2.0 client credentials tokens: the token request, its transport errors, the token's lifetime.

use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::error::{TokenError, TokenErrorKind, root_cause};
use super::refusal::refusal;
use super::source::{FETCH_TIMEOUT, Token, TokenSource, now_ms};
use crate::kafka::config::OAuthClient;

/// A token whose answer names no lifetime (`expires_in` or a JWT `exp`) is used for this long.
pub(super) const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

impl TokenSource {
    pub(super) async fn fetch_oauth(&self, client: &OAuthClient) -> Result<Token, TokenError> {
        // HTTP Basic first (what Kafka's own Java client sends), then the secret in the form, which some
        // providers require instead.
        match self.request_oauth(client, ClientAuth::Basic).await {
            Err(e) if e.kind == TokenErrorKind::ClientRefused => {
                self.request_oauth(client, ClientAuth::Form).await
            }
            other => other,
        }
    }

    /// One token request with the client authenticated `how`.
    async fn request_oauth(&self, c: &OAuthClient, how: ClientAuth) -> Result<Token, TokenError> {
        let secret = c.client_secret.expose_secret();
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &c.scope {
            form.push(("scope", scope));
        }
        if let Some(audience) = &c.audience {
            form.push(("audience", audience));
        }
        let mut request = self
            .http
            .post(c.token_url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match how {
            ClientAuth::Basic => request = request.basic_auth(&c.client_id, Some(secret)),
            ClientAuth::Form => {
                form.push(("client_id", &c.client_id));
                form.push(("client_secret", secret));
            }
        }
        let fetched_at_ms = now_ms();
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| transport_error(&c.token_url, &e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&c.token_url, &e))?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            return Err(refusal(status, json.as_ref(), secret));
        }
        token_from_answer(c, status, json.as_ref(), fetched_at_ms)
    }
}

/// The token of a successful answer, its lifetime from `expires_in` or the JWT's `exp` (else
/// [`DEFAULT_LIFETIME`]), its principal from the JWT's `sub` (else the client id).
fn token_from_answer(
    c: &OAuthClient,
    status: reqwest::StatusCode,
    json: Option<&Value>,
    fetched_at_ms: i64,
) -> Result<Token, TokenError> {
    let access_token = json
        .and_then(|j| j.get("access_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            TokenError::new(
                TokenErrorKind::NoAccessToken,
                format!(
                    "the token URL answered HTTP {} without an `access_token`{}",
                    status.as_u16(),
                    if json.is_some() { "" } else { " (not JSON)" }
                ),
                "Check that `Token URL` is the provider's OAuth 2.0 token endpoint and that the client is allowed the client credentials grant.",
            )
        })?;
    let claims = jwt_claims(access_token);
    let expires_in = json
        .and_then(|j| j.get("expires_in"))
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()));
    let expires_at_ms = match (expires_in, claims.as_ref().and_then(|c| c.get("exp"))) {
        (Some(s), _) => fetched_at_ms.saturating_add(s.saturating_mul(1000)),
        (None, Some(exp)) => exp.as_i64().map_or(0, |e| e.saturating_mul(1000)),
        (None, None) => fetched_at_ms + DEFAULT_LIFETIME.as_millis() as i64,
    };
    if expires_at_ms <= now_ms() {
        return Err(TokenError::new(
            TokenErrorKind::Expired,
            "the identity provider issued a token that had already expired",
            "Check the clocks of this machine and of the identity provider, and the client's token lifetime.",
        ));
    }
    let principal = claims
        .as_ref()
        .and_then(|c| c.get("sub"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(&c.client_id)
        .to_owned();
    Ok(Token {
        value: SecretString::from(access_token.to_owned()),
        principal,
        expires_at_ms,
        fetched_at_ms,
    })
}

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy)]
pub(super) enum ClientAuth {
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Form,
}

pub(super) fn endpoint(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

pub(super) fn transport_error(url: &url::Url, e: &reqwest::Error) -> TokenError {
    if e.is_timeout() {
        TokenError::new(
            TokenErrorKind::Timeout,
            format!(
                "no answer from the token URL at `{}` within {} s",
                endpoint(url),
                FETCH_TIMEOUT.as_secs()
            ),
            "Check `Token URL` and any proxy or firewall between this step and the identity provider.",
        )
    } else {
        TokenError::new(
            TokenErrorKind::Unreachable,
            format!(
                "cannot reach the token URL at `{}` ({})",
                endpoint(url),
                root_cause(e)
            ),
            "Check `Token URL` and that this network reaches the identity provider.",
        )
    }
}

/// The claims of a JWT access token, read without verifying it (only for its lifetime and subject; the broker
/// verifies).
pub(super) fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
