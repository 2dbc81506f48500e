//! The verdict of verifyCredentials and its JSON shape.

use serde_json::{Value, json};

/// The outcome of a credentials check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the credentials work.
    pub verified: bool,
    /// `<stage>: <what failed>. <what to do>` when not verified.
    pub reason: Option<String>,
}

impl Verdict {
    pub(super) fn ok() -> Self {
        Self {
            verified: true,
            reason: None,
        }
    }

    pub(super) fn fail(stage: &str, what: impl AsRef<str>, todo: &str) -> Self {
        Self {
            verified: false,
            reason: Some(format!(
                "{stage}: {}. {todo}",
                what.as_ref().trim_end_matches('.')
            )),
        }
    }

    /// The platform's JSON shape.
    pub fn to_json(&self) -> Value {
        match &self.reason {
            None => json!({ "verified": self.verified }),
            Some(r) => json!({ "verified": self.verified, "reason": r }),
        }
    }
}

/// The token stage's verdict; `text` is "<what>. <what to do>".
pub(super) fn token_verdict(text: &str) -> Verdict {
    Verdict {
        verified: false,
        reason: Some(format!("token: {text}")),
    }
}
