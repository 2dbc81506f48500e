//! Platform HTTP API client (PROTOCOL.md 1.5): step retrieval, account keys, startup-hook data,
//! and the service-mode result POST.
//!
//! Owns retries and timeouts: [`Policy::PLATFORM_API`] (3 attempts 1 s apart) for step and account calls and
//! [`Policy::PLATFORM_HOOKS`] (the `API_REQUEST_RETRY_*` settings) for startup-hook data, on network errors and
//! 5xx; immediate failure on 4xx; 15 s per request. Does not own what is done with the answers.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::retry::{Attempt, Policy};
use crate::settings::ApiSettings;

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
    /// The server's TLS certificate was not accepted (not retried: another attempt would meet the same one).
    #[error("TLS certificate of the platform API at {host} is not trusted")]
    UntrustedCertificate {
        /// Host (and port) of the platform API URL.
        host: String,
        /// The handshake error (without the URL; the host is above).
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
    /// Step and account calls (the reference client ignores the env settings here, Q6).
    api_policy: Policy,
    /// Startup-hook data calls.
    hooks_policy: Policy,
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
            api_policy: Policy::PLATFORM_API,
            hooks_policy: Policy::PLATFORM_HOOKS
                .with_attempts(api.retry_attempts.max(1))
                .with_initial(api.retry_delay),
        })
    }

    /// The HTTP client of the platform calls (same timeouts), for other platform services (object storage).
    pub fn http(&self) -> reqwest::Client {
        self.http.clone()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        policy: &Policy,
        accept_4xx: &[StatusCode],
    ) -> Result<reqwest::Response, ApiError> {
        let url = format!("{}{path}", self.base);
        let attempt = |_attempt: u32| {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .basic_auth(&self.username, Some(self.key.expose_secret()))
                .header(header::CONNECTION, "Keep-Alive");
            if let Some(body) = body {
                req = req.json(body);
            }
            async move { outcome(req.send().await, accept_4xx) }
        };
        let log = |failure: &CallFailure, next: u32, _delay: Duration| {
            let reason = match failure {
                CallFailure::Status(status) => format!("HTTP {status}"),
                CallFailure::Network(e) | CallFailure::Certificate(e) => format!("{e}"),
            };
            tracing::warn!(%method, path, attempt = next, reason = %reason, "Platform API call failed, retrying.");
        };
        policy
            .retry(attempt, log)
            .await
            .map_err(|gave_up| match gave_up.error {
                CallFailure::Status(status) => ApiError::Status {
                    method: method.clone(),
                    path: path.to_owned(),
                    status,
                },
                CallFailure::Network(source) => ApiError::Network {
                    method: method.clone(),
                    path: path.to_owned(),
                    attempts: u32::try_from(gave_up.attempts).unwrap_or(u32::MAX),
                    source,
                },
                CallFailure::Certificate(source) => untrusted(&self.base, source),
            })
    }

    /// `GET /v1/tasks/{flow}/steps/{step}`.
    ///
    /// # Errors
    /// [`ApiError`] after the retries described in the module docs.
    pub async fn retrieve_step(&self, flow_id: &str, step_id: &str) -> Result<Step, ApiError> {
        let path = format!("/v1/tasks/{flow_id}/steps/{step_id}");
        let resp = self
            .call(Method::GET, &path, None, &self.api_policy, &[])
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
        self.call(Method::PUT, &path, Some(&body), &self.api_policy, &[])
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
        let policy = &self.hooks_policy;
        let resp = self
            .call(
                Method::POST,
                &path,
                Some(state),
                policy,
                &[StatusCode::CONFLICT],
            )
            .await?;
        if resp.status() == StatusCode::CONFLICT {
            self.delete_startup_state(flow_id).await?;
            self.call(Method::POST, &path, Some(state), policy, &[])
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
            .call(Method::GET, &path, None, &self.hooks_policy, &[])
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
        self.call(Method::DELETE, &path, None, &self.hooks_policy, &[])
            .await
            .map(drop)
    }
}

/// Why one attempt of a platform call failed.
#[derive(Debug)]
enum CallFailure {
    /// An error status (5xx is retried, 4xx is not).
    Status(StatusCode),
    /// Transport failure or timeout.
    Network(reqwest::Error),
    /// The server's TLS certificate was rejected.
    Certificate(reqwest::Error),
}

/// One attempt's answer: success (or an accepted 4xx), a retry (5xx, network) or a stop (other 4xx, a rejected
/// certificate).
fn outcome(
    sent: Result<reqwest::Response, reqwest::Error>,
    accept_4xx: &[StatusCode],
) -> Result<reqwest::Response, Attempt<CallFailure>> {
    match sent {
        Ok(resp) if resp.status().is_success() || accept_4xx.contains(&resp.status()) => Ok(resp),
        Ok(resp) if resp.status().is_server_error() => {
            Err(Attempt::Retry(CallFailure::Status(resp.status())))
        }
        Ok(resp) => Err(Attempt::Stop(CallFailure::Status(resp.status()))),
        Err(e) if crate::http::certificate_error(&e).is_some() => {
            Err(Attempt::Stop(CallFailure::Certificate(e)))
        }
        Err(e) => Err(Attempt::Retry(CallFailure::Network(e))),
    }
}

/// The error of a rejected certificate: the host is said, the URL left out of the transport error.
fn untrusted(base: &str, source: reqwest::Error) -> ApiError {
    ApiError::UntrustedCertificate {
        host: host_of(base),
        source: source.without_url(),
    }
}

/// `host[:port]` of `base`, or `base` itself when it does not parse (it has no credentials: those are separate
/// settings).
fn host_of(base: &str) -> String {
    match url::Url::parse(base) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => base.to_owned(),
        },
        Err(_) => base.to_owned(),
    }
}

/// The HTTP client every platform call uses: rustls ([`crate::http`]), bounded timeouts, no redirects.
///
/// # Errors
/// When the TLS backend cannot be initialised.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    crate::http::client_builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}
