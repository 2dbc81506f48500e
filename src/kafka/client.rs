//! librdkafka clients with a [`KafkaContext`] that bridges librdkafka logs and errors into `tracing` and
//! remembers authentication failures, so a credential that never worked is reported instead of retried forever.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::Notify;

/// What a client has learned about its connection; shared between the librdkafka context and our code
/// (librdkafka wraps the context, so callers keep this `Arc`).
#[derive(Debug, Default)]
pub struct ClientState {
    auth_error: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
    auth_notify: Notify,
    succeeded: AtomicBool,
    last_success: Mutex<Option<std::time::Instant>>,
}

/// Client context shared by producers and consumers.
#[derive(Debug, Default, Clone)]
pub struct KafkaContext {
    /// Shared connection state.
    pub state: std::sync::Arc<ClientState>,
}

impl ClientState {
    /// Records that the client talked to the cluster successfully (a delivery or a fetch worked).
    pub fn mark_success(&self) {
        self.succeeded.store(true, Ordering::SeqCst);
        if let Ok(mut g) = self.last_success.lock() {
            *g = Some(std::time::Instant::now());
        }
    }

    /// Whether the client worked at or after `t`.
    pub fn succeeded_since(&self, t: std::time::Instant) -> bool {
        self.last_success
            .lock()
            .ok()
            .and_then(|g| *g)
            .is_some_and(|s| s >= t)
    }

    /// Whether the client ever worked.
    pub fn ever_succeeded(&self) -> bool {
        self.succeeded.load(Ordering::SeqCst)
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
