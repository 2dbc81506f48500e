//! Why no token could be had: a kind, and one message saying what happened and what to do.

use std::fmt;

use crate::kafka::aws::{self, AwsErrorKind};

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
    pub(super) fn new(kind: TokenErrorKind, what: impl fmt::Display, todo: &str) -> Self {
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

/// The innermost cause of an error (reqwest's own text names the whole URL).
pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
