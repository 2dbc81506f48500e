//! librdkafka clients with a [`KafkaContext`] that bridges librdkafka logs and errors into `tracing` and
//! remembers authentication failures, so a credential that never worked is reported instead of retried forever.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::Notify;

use crate::kafka::token::TokenSource;

/// What a client has learned about its connection; shared between the librdkafka context and our code
/// (librdkafka wraps the context, so callers keep this `Arc`).
#[derive(Debug, Default)]
pub struct ClientState {
    auth_error: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
    auth_notify: Notify,
    /// When the client last worked, as [`stamp`] (0: never). One atomic: a consumer marks every record.
    last_success: AtomicU64,
}

/// The process's reference instant for [`stamp`].
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// `t` as nanoseconds since [`EPOCH`], plus one so that 0 can mean "never".
fn stamp(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(*EPOCH).as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// Client context shared by producers and consumers.
#[derive(Debug, Default, Clone)]
pub struct KafkaContext {
    /// Shared connection state.
    pub state: std::sync::Arc<ClientState>,
    /// SASL/OAUTHBEARER tokens, for OAuth and AWS MSK IAM connections.
    pub token: Option<std::sync::Arc<TokenSource>>,
}

impl KafkaContext {
    /// A context that serves `token`'s tokens to librdkafka.
    pub fn with_token(token: Option<std::sync::Arc<TokenSource>>) -> Self {
        Self {
            state: std::sync::Arc::default(),
            token,
        }
    }
}

/// librdkafka's OAUTHBEARER refresh callback, for every context: the cached token of `token`. It never blocks
/// (see `kafka::token`); an error makes librdkafka try again in 10 s.
///
/// # Errors
/// No token source, or no valid token cached.
pub fn oauth_token(
    token: Option<&std::sync::Arc<TokenSource>>,
) -> Result<OAuthToken, Box<dyn std::error::Error>> {
    match token {
        Some(t) => t.oauth_token().map_err(Into::into),
        None => Err("OAUTHBEARER needs the `oauthbearer` or `aws-msk-iam` mechanism".into()),
    }
}

impl ClientState {
    /// Records that the client talked to the cluster successfully (a delivery or a fetch worked).
    pub fn mark_success(&self) {
        self.last_success
            .store(stamp(Instant::now()), Ordering::SeqCst);
    }

    /// Whether the client worked at or after `t`.
    pub fn succeeded_since(&self, t: Instant) -> bool {
        self.last_success.load(Ordering::SeqCst) >= stamp(t)
    }

    /// Whether the client ever worked.
    pub fn ever_succeeded(&self) -> bool {
        self.last_success.load(Ordering::SeqCst) != 0
    }

    /// The broker's reason of the last authentication failure, if any.
    pub fn auth_error(&self) -> Option<String> {
        self.auth_error.lock().ok().and_then(|g| g.clone())
    }

    /// Resolves when an authentication failure happens on a client that never worked.
    pub async fn auth_failed(&self) -> String {
        loop {
            let notified = self.auth_notify.notified();
            if !self.ever_succeeded()
                && let Some(reason) = self.auth_error()
            {
                return reason;
            }
            notified.await;
        }
    }
}

/// librdkafka log lines → `tracing` events under target `librdkafka`.
pub fn log_to_tracing(level: RDKafkaLogLevel, fac: &str, log_message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", facility = fac, "{log_message}");
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", facility = fac, "{log_message}")
        }
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", facility = fac, "{log_message}");
        }
        RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", facility = fac, "{log_message}")
        }
    }
}

impl ClientContext for KafkaContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        oauth_token(self.token.as_ref())
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.state.record_error(&error, reason);
    }
}

impl ClientState {
    /// The reason of the last client error of any kind.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    /// Records a client error reported by librdkafka.
    pub fn record_error(&self, error: &KafkaError, reason: &str) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(reason.to_owned());
        }
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication) {
            if self.ever_succeeded() {
                // e.g. a broker that limits session lifetime: librdkafka reconnects by itself.
                tracing::warn!(
                    reason,
                    "Kafka re-authentication failed on a session that worked; reconnecting."
                );
            } else {
                tracing::error!(reason, "Kafka authentication failed.");
            }
            if let Ok(mut g) = self.auth_error.lock() {
                *g = Some(reason.to_owned());
            }
            self.auth_notify.notify_waiters();
        } else {
            tracing::warn!(error = %error, reason, "Kafka client error.");
        }
    }
}

impl ConsumerContext for KafkaContext {}
