//! SASL/OAUTHBEARER access tokens for librdkafka: fetched from an OAuth 2.0 token endpoint (client credentials
//! grant) or signed for AWS MSK IAM, cached, and kept fresh by a background task.
//!
//! librdkafka asks for a token through the client context's `generate_oauth_token` callback, on its own thread
//! or inside a consumer poll on a runtime thread. That callback only reads the cache ([`TokenSource::oauth_token`]);
//! the first token is fetched before the client is created ([`TokenSource::start`]) and later ones by the
//! refresher at 75 % of each token's lifetime, ahead of librdkafka's own refresh at 80 %. A failed refresh keeps
//! the current token while it is valid and retries with a growing delay.
//!
//! Neither the client secret, the AWS keys nor a token is ever logged or put in an error text.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rdkafka::client::OAuthToken;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::kafka::aws::{self, AwsEnv, AwsErrorKind};
use crate::kafka::config::{Auth, KafkaConnection, MskIam, OAuthClient};

/// Connecting to the token endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One token request, end to end.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Share of a token's lifetime after which the refresher fetches the next one.
const REFRESH_AT: f64 = 0.75;
/// Delays between failed refreshes.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// A token whose answer names no lifetime (`expires_in` or a JWT `exp`) is used for this long.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// AWS credentials are renewed this long before they expire.
const AWS_CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);
/// Longest provider text (`error_description`) quoted in an error.
const MAX_DETAIL: usize = 200;

/// Why no token could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenErrorKind {
    /// The token endpoint could not be reached (DNS, connection, TLS).
    Unreachable,
    /// The token endpoint did not answer in time.
    Timeout,
    /// The URL answered, but is not a token endpoint (404, 405, HTML).
    NotTokenEndpoint,
    /// The provider refused the client id or secret.
    ClientRefused,
    /// The client may not use the client credentials grant.
    GrantRefused,
    /// The provider refused the scope or audience.
    ScopeRefused,
    /// The provider refused the request for another reason.
    Refused,
    /// The answer carried no `access_token`.
    NoAccessToken,
    /// The token had expired when it arrived.
    Expired,
    /// The provider failed (5xx).
    ProviderFailed,
    /// AWS credentials: missing, expired or refused.
    Aws(AwsErrorKind),
}

/// A failed token fetch: what happened and what to do, in one sentence pair, without secrets.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TokenError {
    /// The cause.
    pub kind: TokenErrorKind,
    message: String,
}

impl TokenError {
    fn new(kind: TokenErrorKind, what: impl fmt::Display, todo: &str) -> Self {
        Self {
            kind,
            message: format!("{what}. {todo}"),
        }
    }

    /// Whether trying again later may succeed without changing the configuration.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            TokenErrorKind::Unreachable
                | TokenErrorKind::Timeout
                | TokenErrorKind::ProviderFailed
                | TokenErrorKind::Aws(AwsErrorKind::StsUnreachable)
        )
    }
}

impl From<aws::AwsError> for TokenError {
    fn from(e: aws::AwsError) -> Self {
        Self {
            kind: TokenErrorKind::Aws(e.kind),
            message: e.to_string(),
        }
    }
}

/// A token and when it stops being valid.
#[derive(Clone)]
struct Token {
    value: SecretString,
    principal: String,
    /// Epoch milliseconds.
    expires_at_ms: i64,
    fetched_at_ms: i64,
}

enum Provider {
    OAuth(OAuthClient),
    MskIam { cfg: MskIam, env: AwsEnv },
}

/// The tokens of one Kafka client (or of the clients of one connection): a cache, a refresher, the callback's
/// reader.
pub struct TokenSource {
    provider: Provider,
    http: reqwest::Client,
    current: Mutex<Option<Token>>,
    /// The last refresh's failure, cleared by a success.
    last_error: Mutex<Option<TokenError>>,
    aws_credentials: tokio::sync::Mutex<Option<aws::Credentials>>,
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

fn now_ms() -> i64 {
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
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        // A private identity provider is often signed by the same CA as the brokers.
        if let Some(ca) = conn.tls.as_ref().and_then(|t| t.ca_pem.as_deref()) {
            for cert in reqwest::Certificate::from_pem_bundle(ca.as_bytes()).unwrap_or_default() {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| {
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

    /// Keeps the cache fresh while the source is in use (the task holds only a weak reference).
    fn spawn_refresher(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = RETRY_MIN;
            loop {
                let wait = match weak.upgrade() {
                    Some(source) => source.next_refresh_in(backoff),
                    None => return,
                };
                tokio::time::sleep(wait).await;
                let Some(source) = weak.upgrade() else {
                    return;
                };
                match source.refresh().await {
                    Ok(()) => backoff = RETRY_MIN,
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            retry_in_s = backoff.as_secs(),
                            "Refreshing the SASL/OAUTHBEARER token failed; the current token is used while it is valid."
                        );
                        backoff = (backoff * 2).min(RETRY_MAX);
                    }
                }
            }
        });
    }

    /// How long until the next refresh: at [`REFRESH_AT`] of the current token's life, or `backoff` after a
    /// failure.
    fn next_refresh_in(&self, backoff: Duration) -> Duration {
        let failing = self.last_error.lock().map_or(true, |e| e.is_some());
        let current = self.current.lock().ok().and_then(|c| c.clone());
        match current {
            Some(t) if !failing => {
                let life = (t.expires_at_ms - t.fetched_at_ms).max(0);
                #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
                let at = t.fetched_at_ms + (life as f64 * REFRESH_AT) as i64;
                Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))
            }
            _ => backoff,
        }
    }

    async fn fetch_oauth(&self, client: &OAuthClient) -> Result<Token, TokenError> {
        // HTTP Basic first (what Kafka's own Java client sends), then the secret in the form, which some
        // providers require instead.
        match self.request_oauth(client, ClientAuth::Basic).await {
            Err(e) if e.kind == TokenErrorKind::ClientRefused => {
                self.request_oauth(client, ClientAuth::Form).await
            }
            other => other,
        }
    }

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
        let access_token = json
            .as_ref()
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
            .as_ref()
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

    async fn credentials(
        &self,
        cfg: &MskIam,
        env: &AwsEnv,
    ) -> Result<aws::Credentials, TokenError> {
        let mut cached = self.aws_credentials.lock().await;
        let fresh = |c: &aws::Credentials| {
            c.expires_at
                .is_none_or(|t| t > SystemTime::now() + AWS_CREDENTIALS_MARGIN)
        };
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        let (creds, source) = aws::resolve_credentials(cfg.keys.as_ref(), env, &self.http).await?;
        tracing::debug!(source = ?source, "AWS credentials resolved.");
        *cached = Some(creds.clone());
        Ok(creds)
    }

    async fn sign_msk(&self, cfg: &MskIam, env: &AwsEnv) -> Result<Token, TokenError> {
        let creds = self.credentials(cfg, env).await?;
        let fetched_at_ms = now_ms();
        let signed = aws::msk_token(&creds, &cfg.region, SystemTime::now(), aws::USER_AGENT);
        Ok(Token {
            value: SecretString::from(signed.token),
            principal: creds.access_key_id.clone(),
            expires_at_ms: signed.expires_at_ms,
            fetched_at_ms,
        })
    }
}

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy)]
enum ClientAuth {
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Form,
}

/// The innermost cause of an error (reqwest's own text names the whole URL).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn endpoint(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

fn transport_error(url: &url::Url, e: &reqwest::Error) -> TokenError {
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

/// A non-2xx answer of the token endpoint, classified by status and OAuth `error` code (RFC 6749 5.2).
fn refusal(status: reqwest::StatusCode, json: Option<&Value>, secret: &str) -> TokenError {
    let code = json
        .and_then(|j| j.get("error"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let description = json
        .and_then(|j| j.get("error_description"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut detail: String = format!(
        "{code}{}{description}",
        if code.is_empty() || description.is_empty() {
            ""
        } else {
            ": "
        }
    )
    .chars()
    .take(MAX_DETAIL)
    .collect();
    if !secret.is_empty() && detail.contains(secret) {
        detail = detail.replace(secret, "[redacted]");
    }
    let what = |text: &str| {
        if detail.is_empty() {
            format!("{text} (HTTP {})", status.as_u16())
        } else {
            format!("{text} (HTTP {}, {detail})", status.as_u16())
        }
    };
    let s = status.as_u16();
    match code {
        "invalid_client" => TokenError::new(
            TokenErrorKind::ClientRefused,
            what("the identity provider refused the client id or secret"),
            "Check `OAuth client ID` and `OAuth client secret`.",
        ),
        "unauthorized_client" | "unsupported_grant_type" => TokenError::new(
            TokenErrorKind::GrantRefused,
            what("the client may not use the client credentials grant"),
            "Allow the client credentials grant (a service account) for this client at the identity provider.",
        ),
        "invalid_scope" | "invalid_target" => TokenError::new(
            TokenErrorKind::ScopeRefused,
            what("the identity provider refused the scope or audience"),
            "Check `Scope` and `Audience`.",
        ),
        _ if s == 401 => TokenError::new(
            TokenErrorKind::ClientRefused,
            what("the identity provider refused the client id or secret"),
            "Check `OAuth client ID` and `OAuth client secret`.",
        ),
        _ if s >= 500 => TokenError::new(
            TokenErrorKind::ProviderFailed,
            what("the identity provider failed"),
            "Try again later; if it persists, check the identity provider.",
        ),
        _ if json.is_none() || s == 404 || s == 405 => TokenError::new(
            TokenErrorKind::NotTokenEndpoint,
            what("`Token URL` is not an OAuth 2.0 token endpoint"),
            "Use the provider's token endpoint, e.g. https://<host>/oauth2/token or https://<host>/realms/<realm>/protocol/openid-connect/token.",
        ),
        _ => TokenError::new(
            TokenErrorKind::Refused,
            what("the identity provider refused the token request"),
            "Check `OAuth client ID`, `OAuth client secret`, `Scope` and `Audience`.",
        ),
    }
}

/// The claims of a JWT access token, read without verifying it (only for its lifetime and subject; the broker
/// verifies).
fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{body_string_contains, header_exists, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn jwt(claims: &Value) -> String {
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!("{}.{}.c2ln", b64(&json!({"alg":"RS256"})), b64(claims))
    }

    fn source(url: &str) -> Arc<TokenSource> {
        let conn = KafkaConnection::from_cfg(&json!({
            "brokers": "k:9092", "mechanism": "oauthbearer", "tokenUrl": url,
            "oauthClientId": "app", "oauthClientSecret": "s3cret-value", "scope": "kafka"
        }))
        .unwrap();
        TokenSource::for_connection(&conn).unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_token_is_fetched_with_basic_auth_and_its_lifetime_and_subject_are_used() {
        let idp = MockServer::start().await;
        let token = jwt(&json!({"sub": "svc-app", "exp": 4_102_444_800_i64}));
        Mock::given(method("POST"))
            .and(path("/token"))
            .and(header_exists("authorization"))
            .and(body_string_contains("grant_type=client_credentials"))
            .and(body_string_contains("scope=kafka"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"access_token": token, "expires_in": 120})),
            )
            .expect(1)
            .mount(&idp)
            .await;
        let s = source(&format!("{}/token", idp.uri()));
        s.refresh().await.unwrap();
        let t = s.oauth_token().unwrap();
        assert_eq!(t.token, token);
        assert_eq!(t.principal_name, "svc-app");
        let left = t.lifetime_ms - now_ms();
        assert!((110_000..=120_000).contains(&left), "{left}");
        // The refresher would come back at 75 % of the lifetime.
        let next = s.next_refresh_in(RETRY_MIN);
        assert!(
            (Duration::from_secs(85)..=Duration::from_secs(90)).contains(&next),
            "{next:?}"
        );
    }

    #[tokio::test]
    async fn a_refused_basic_login_is_retried_with_the_secret_in_the_form() {
        let idp = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_string_contains("client_secret=s3cret-value"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"access_token": "opaque"})),
            )
            .mount(&idp)
            .await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})),
            )
            .mount(&idp)
            .await;
        let s = source(&format!("{}/token", idp.uri()));
        s.refresh().await.unwrap();
        let t = s.oauth_token().unwrap();
        // Opaque token: the client id is the principal, the default lifetime applies.
        assert_eq!(t.principal_name, "app");
        assert!(t.lifetime_ms - now_ms() > 290_000);
    }

    #[tokio::test]
    async fn each_refusal_is_named_without_the_secret() {
        let cases = [
            (
                ResponseTemplate::new(401).set_body_json(
                    json!({"error": "invalid_client", "error_description": "bad s3cret-value"}),
                ),
                TokenErrorKind::ClientRefused,
                "refused the client id or secret",
            ),
            (
                ResponseTemplate::new(400).set_body_json(json!({"error": "unauthorized_client"})),
                TokenErrorKind::GrantRefused,
                "client credentials grant",
            ),
            (
                ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_scope"})),
                TokenErrorKind::ScopeRefused,
                "scope or audience",
            ),
            (
                ResponseTemplate::new(404).set_body_string("<html>nope</html>"),
                TokenErrorKind::NotTokenEndpoint,
                "not an OAuth 2.0 token endpoint",
            ),
            (
                ResponseTemplate::new(503).set_body_string("down"),
                TokenErrorKind::ProviderFailed,
                "identity provider failed",
            ),
            (
                ResponseTemplate::new(200).set_body_json(json!({"token_type": "Bearer"})),
                TokenErrorKind::NoAccessToken,
                "without an `access_token`",
            ),
            (
                ResponseTemplate::new(200)
                    .set_body_json(json!({"access_token": "x", "expires_in": -5})),
                TokenErrorKind::Expired,
                "already expired",
            ),
        ];
        for (response, kind, text) in cases {
            let idp = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(response)
                .mount(&idp)
                .await;
            let s = source(&format!("{}/token", idp.uri()));
            let e = s.refresh().await.unwrap_err();
            assert_eq!(e.kind, kind, "{e}");
            let msg = e.to_string();
            assert!(msg.contains(text), "{msg}");
            assert!(!msg.contains("s3cret-value"), "{msg}");
            // The callback reports the failure instead of a token.
            assert!(s.oauth_token().err().unwrap().starts_with("token: "));
        }
    }

    #[tokio::test]
    async fn an_unreachable_or_silent_token_url_is_named_within_the_timeout() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let e = source(&format!("http://127.0.0.1:{port}/token"))
            .refresh()
            .await
            .unwrap_err();
        assert_eq!(e.kind, TokenErrorKind::Unreachable, "{e}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        assert!(e.is_transient());

        let idp = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(8)))
            .mount(&idp)
            .await;
        let started = std::time::Instant::now();
        let e = source(&format!("{}/token", idp.uri()))
            .refresh()
            .await
            .unwrap_err();
        assert_eq!(e.kind, TokenErrorKind::Timeout, "{e}");
        assert!(started.elapsed() < Duration::from_secs(7));
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_valid_token_and_backs_off() {
        let idp = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"access_token": "first", "expires_in": 100})),
            )
            .up_to_n_times(1)
            .mount(&idp)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&idp)
            .await;
        let s = source(&format!("{}/token", idp.uri()));
        s.refresh().await.unwrap();
        assert!(s.refresh().await.is_err());
        assert_eq!(s.oauth_token().unwrap().token, "first");
        assert_eq!(
            s.next_refresh_in(Duration::from_secs(4)),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn no_token_source_for_password_or_no_sasl() {
        for cfg in [
            json!({"brokers": "k:9092"}),
            json!({"brokers": "k:9092", "username": "u", "password": "p"}),
        ] {
            let conn = KafkaConnection::from_cfg(&cfg).unwrap();
            assert!(TokenSource::for_connection(&conn).unwrap().is_none());
        }
    }
}
