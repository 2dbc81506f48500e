//! Platform HTTP API client (PROTOCOL.md 1.5): step retrieval, account keys, startup-hook data,
//! and the service-mode result POST.
//!
//! Owns retries and timeouts: 3 attempts 1 s apart on network errors and 5xx, immediate failure on 4xx,
//! 15 s per request. Does not own what is done with the answers.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::settings::ApiSettings;

/// Attempts for step and account calls (the reference client ignores the env settings here, Q6).
const ATTEMPTS: u32 = 3;
const RETRY_DELAY: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A failed platform API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status (4xx immediately, 5xx after the last attempt).
    #[error("platform API {method} {path} answered HTTP {status}")]
    Status {
        /// HTTP method.
        method: Method,
        /// Path (no host, no credentials).
        path: String,
        /// Response status.
        status: StatusCode,
    },
    /// Network failure or timeout after the last attempt.
    #[error("platform API {method} {path} failed after {attempts} attempts")]
    Network {
        /// HTTP method.
        method: Method,
        /// Path.
        path: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The response body is not the expected JSON.
    #[error("platform API {path} returned an unexpected body")]
    Body {
        /// Path.
        path: String,
        /// Decoding error.
        #[source]
        source: reqwest::Error,
    },
}

/// The step object returned by `GET /v1/tasks/{flow}/steps/{step}`.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Step {
    /// Step id.
    #[serde(default)]
    pub id: Option<String>,
    /// Merged credentials and fields.
    #[serde(default)]
    pub config: Option<Value>,
    /// Initial snapshot.
    #[serde(default)]
    pub snapshot: Option<Value>,
    /// Passthrough switch (strictly `true` enables it).
    #[serde(default)]
    pub is_passthrough: Option<Value>,
    /// Flow variables.
    #[serde(default)]
    pub variables: Option<Value>,
}

impl Step {
    /// `config` as an object (default `{}`).
    pub fn cfg(&self) -> Value {
        match &self.config {
            Some(v @ Value::Object(_)) => v.clone(),
            _ => Value::Object(Default::default()),
        }
    }

    /// `snapshot` as an object (default `{}`).
    pub fn initial_snapshot(&self) -> Value {
        match &self.snapshot {
            Some(v @ Value::Object(_)) => v.clone(),
            _ => Value::Object(Default::default()),
        }
    }

    /// Whether passthrough is on (`is_passthrough === true`).
    pub fn passthrough(&self) -> bool {
        matches!(self.is_passthrough, Some(Value::Bool(true)))
    }
}

/// Client of the platform API for one flow step.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    username: String,
    key: SecretString,
    hooks_attempts: u32,
    hooks_delay: Duration,
}

impl ApiClient {
    /// Builds the client.
    ///
    /// # Errors
    /// When the HTTP client cannot be constructed (TLS backend failure).
    pub fn new(api: &ApiSettings) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: http_client()?,
            base: api.uri.clone(),
            username: api.username.clone(),
            key: api.key.clone(),
            hooks_attempts: api.retry_attempts.max(1),
            hooks_delay: api.retry_delay,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        attempts: u32,
        delay: Duration,
        accept_4xx: &[StatusCode],
    ) -> Result<reqwest::Response, ApiError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .basic_auth(&self.username, Some(self.key.expose_secret()))
                .header(header::CONNECTION, "Keep-Alive");
            if let Some(body) = body {
                req = req.json(body);
            }
            let retry_reason = match req.send().await {
                Ok(resp) if resp.status().is_success() || accept_4xx.contains(&resp.status()) => {
                    return Ok(resp);
                }
                Ok(resp) if resp.status().is_server_error() && attempt < attempts => {
                    format!("HTTP {}", resp.status())
                }
                Ok(resp) => {
                    return Err(ApiError::Status {
                        method,
                        path: path.to_owned(),
                        status: resp.status(),
                    });
                }
                Err(source) if attempt >= attempts => {
                    return Err(ApiError::Network {
                        method,
                        path: path.to_owned(),
                        attempts,
                        source,
                    });
                }
                Err(e) => format!("{e}"),
            };
            tracing::warn!(%method, path, attempt, reason = %retry_reason, "Platform API call failed, retrying.");
            tokio::time::sleep(delay).await;
        }
    }

    /// `GET /v1/tasks/{flow}/steps/{step}`.
    ///
    /// # Errors
    /// [`ApiError`] after the retries described in the module docs.
    pub async fn retrieve_step(&self, flow_id: &str, step_id: &str) -> Result<Step, ApiError> {
        let path = format!("/v1/tasks/{flow_id}/steps/{step_id}");
        let resp = self
            .call(Method::GET, &path, None, ATTEMPTS, RETRY_DELAY, &[])
            .await?;
        resp.json()
            .await
            .map_err(|source| ApiError::Body { path, source })
    }

    /// `PUT /v1/accounts/{id}` with `{"keys": keys}`.
    ///
    /// # Errors
    /// [`ApiError`] after retries.
    pub async fn update_keys(&self, account_id: &str, keys: &Value) -> Result<(), ApiError> {
        let path = format!("/v1/accounts/{account_id}");
        let body = serde_json::json!({ "keys": keys });
        self.call(Method::PUT, &path, Some(&body), ATTEMPTS, RETRY_DELAY, &[])
            .await
            .map(drop)
    }

    fn hooks_path(flow_id: &str) -> String {
        format!("/sailor-support/hooks/task/{flow_id}/startup/data")
    }

    /// Stores the startup-hook state; on 409 deletes the old state and stores again.
    ///
    /// # Errors
    /// [`ApiError`] after retries.
    pub async fn store_startup_state(&self, flow_id: &str, state: &Value) -> Result<(), ApiError> {
        let path = Self::hooks_path(flow_id);
        let (a, d) = (self.hooks_attempts, self.hooks_delay);
        let resp = self
            .call(
                Method::POST,
                &path,
                Some(state),
                a,
                d,
                &[StatusCode::CONFLICT],
            )
            .await?;
        if resp.status() == StatusCode::CONFLICT {
            self.delete_startup_state(flow_id).await?;
            self.call(Method::POST, &path, Some(state), a, d, &[])
                .await?;
        }
        Ok(())
    }

    /// Reads the startup-hook state (`{}` when none was stored).
    ///
    /// # Errors
    /// [`ApiError`] after retries.
    pub async fn read_startup_state(&self, flow_id: &str) -> Result<Value, ApiError> {
        let path = Self::hooks_path(flow_id);
        let resp = self
            .call(
                Method::GET,
                &path,
                None,
                self.hooks_attempts,
                self.hooks_delay,
                &[],
            )
            .await?;
        Ok(resp
            .json()
            .await
            .unwrap_or(Value::Object(Default::default())))
    }

    /// Deletes the startup-hook state.
    ///
    /// # Errors
    /// [`ApiError`] after retries.
    pub async fn delete_startup_state(&self, flow_id: &str) -> Result<(), ApiError> {
        let path = Self::hooks_path(flow_id);
        self.call(
            Method::DELETE,
            &path,
            None,
            self.hooks_attempts,
            self.hooks_delay,
            &[],
        )
        .await
        .map(drop)
    }
}

/// The HTTP client every platform call uses: bounded timeouts, no redirects.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}
