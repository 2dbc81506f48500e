//! The token source: the cache librdkafka's callback reads, the first fetch, and the verifyCredentials check.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::client::OAuthToken;
use secrecy::{ExposeSecret, SecretString};

use super::error::{TokenError, TokenErrorKind, root_cause};
use crate::kafka::aws::{self, AwsEnv, AwsErrorKind};
use crate::kafka::config::{Auth, KafkaConnection, MskIam, OAuthClient};

/// Connecting to the token endpoint.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One token request, end to end.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A token and when it stops being valid.
#[derive(Clone)]
pub(super) struct Token {
    pub(super) value: SecretString,
    pub(super) principal: String,
    /// Epoch milliseconds.
    pub(super) expires_at_ms: i64,
    pub(super) fetched_at_ms: i64,
}

pub(super) enum Provider {
    OAuth(OAuthClient),
    MskIam { cfg: MskIam, env: AwsEnv },
}

/// The tokens of one Kafka client (or of the clients of one connection): a cache, a refresher, the callback's
/// reader.
pub struct TokenSource {
    pub(super) provider: Provider,
    pub(super) http: reqwest::Client,
    pub(super) current: Mutex<Option<Token>>,
    /// The last refresh's failure, cleared by a success.
    pub(super) last_error: Mutex<Option<TokenError>>,
    pub(super) aws_credentials: tokio::sync::Mutex<Option<aws::Credentials>>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.provider {
            Provider::OAuth(_) => "oauth",
            Provider::MskIam { .. } => "aws-msk-iam",
        };
        f.debug_struct("TokenSource")
            .field("provider", &kind)
            .finish_non_exhaustive()
    }
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl TokenSource {
    /// A source for `conn` when it authenticates with tokens (OAUTHBEARER, AWS MSK IAM), else `None`.
    ///
    /// # Errors
    /// An HTTP client that cannot be built (e.g. a CA certificate that is not PEM).
    pub fn for_connection(conn: &KafkaConnection) -> Result<Option<Arc<Self>>, TokenError> {
        let provider = match &conn.auth {
            Some(Auth::OAuth(o)) => Provider::OAuth(o.clone()),
            Some(Auth::MskIam(m)) => Provider::MskIam {
                cfg: m.clone(),
                env: AwsEnv::from_process(),
            },
            _ => return Ok(None),
        };
        // A private identity provider is often signed by the same CA as the brokers.
        let extra_roots = conn
            .tls
            .as_ref()
            .and_then(|t| t.ca_pem.as_deref())
            .map(|ca| crate::http::pem_certificates(ca.as_bytes()))
            .unwrap_or_default();
        let http = crate::http::client_builder_with_roots(extra_roots)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                TokenError::new(
                    TokenErrorKind::Unreachable,
                    format!(
                        "cannot set up the HTTP client for the token URL ({})",
                        root_cause(&e)
                    ),
                    "Check `CA certificate`.",
                )
            })?;
        Ok(Some(Arc::new(Self {
            provider,
            http,
            current: Mutex::new(None),
            last_error: Mutex::new(None),
            aws_credentials: tokio::sync::Mutex::new(None),
        })))
    }

    /// [`Self::for_connection`], with its first token fetched and its refresher running: the client created next
    /// finds a token at its first request.
    ///
    /// # Errors
    /// The first token could not be had.
    pub async fn start(conn: &KafkaConnection) -> Result<Option<Arc<Self>>, TokenError> {
        let Some(source) = Self::for_connection(conn)? else {
            return Ok(None);
        };
        source.refresh().await?;
        source.spawn_refresher();
        Ok(Some(source))
    }

    /// Fetches (or signs) a new token and caches it.
    ///
    /// # Errors
    /// The token could not be had; the cached one (if any) stays.
    pub async fn refresh(&self) -> Result<(), TokenError> {
        let result = match &self.provider {
            Provider::OAuth(client) => self.fetch_oauth(client).await,
            Provider::MskIam { cfg, env } => self.sign_msk(cfg, env).await,
        };
        match result {
            Ok(token) => {
                // One line per token (every few minutes): when the broker refuses a token, this says which.
                tracing::info!(
                    principal = %token.principal,
                    expires_in_s = (token.expires_at_ms - now_ms()) / 1000,
                    "SASL/OAUTHBEARER token refreshed."
                );
                if let Ok(mut c) = self.current.lock() {
                    *c = Some(token);
                }
                if let Ok(mut e) = self.last_error.lock() {
                    *e = None;
                }
                Ok(())
            }
            Err(e) => {
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(e.clone());
                }
                Err(e)
            }
        }
    }

    /// verifyCredentials' `token` stage: a token can be had and, for AWS, AWS accepts the credentials (an STS
    /// `GetCallerIdentity` signed with them; an unreachable STS leaves the verdict to the broker).
    ///
    /// # Errors
    /// What is wrong with the token's source.
    pub async fn check(&self) -> Result<(), TokenError> {
        self.refresh().await?;
        if let Provider::MskIam { cfg, env } = &self.provider {
            let creds = self.credentials(cfg, env).await?;
            match aws::check_credentials(&creds, &cfg.region, env, &self.http).await {
                Ok(()) => {}
                Err(e) if e.kind == AwsErrorKind::StsUnreachable => {
                    tracing::info!(error = %e, "AWS STS not reachable; the broker decides on the credentials.");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The cached token for librdkafka's callback; never blocks.
    ///
    /// # Errors
    /// No valid token is cached (the text names the last failure; librdkafka retries in 10 s).
    pub fn oauth_token(&self) -> Result<OAuthToken, String> {
        let now = now_ms();
        let current = self.current.lock().ok().and_then(|c| c.clone());
        if let Some(t) = current.filter(|t| t.expires_at_ms > now + 1000) {
            return Ok(OAuthToken {
                token: t.value.expose_secret().to_owned(),
                principal_name: t.principal,
                lifetime_ms: t.expires_at_ms,
            });
        }
        let last = self.last_error.lock().ok().and_then(|e| e.clone());
        Err(match last {
            Some(e) => format!("token: {e}"),
            None => "token: no valid token yet".to_owned(),
        })
    }
}
