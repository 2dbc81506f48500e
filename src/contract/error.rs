//! How a function fails: one error type that says whose fault it is and what the runtime does about it,
//! decided where the error is born. The runtime settles the delivery and picks the log level from it; it
//! never reads the error's text.

use std::borrow::Cow;

/// Whose fault a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The step's configuration (credentials, fields): the flow designer fixes it.
    Configuration,
    /// The incoming message or a record: the sender of the data fixes it.
    Data,
    /// Kafka, the identity provider or another remote system: it recovers or its operator fixes it.
    Remote,
    /// This component or the platform's transport: ours to fix.
    Internal,
}

/// What the runtime does with a failed execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Publish the error and reject the delivery (the platform's error handling takes over).
    Reject,
    /// Bring the message back later (a `rebound`, the delivery is acked); no error is published.
    Rebound,
    /// Publish the error and go on: the function keeps working and retries by itself (a running trigger's
    /// skipped record or missing topic). An execution that returns it is settled like [`Action::Reject`].
    Retry,
    /// Publish the error, reject the delivery and stop the process with exit code 1 so that the platform
    /// restarts the container (work that cannot go on in this process).
    Crash,
    /// Reject the delivery without publishing anything, as the runtime rejects content that is not JSON: the
    /// function found that the message text it was given ([`super::Execution::text`]) is not JSON after all.
    NotJson,
}

/// A failure of a function: the `{name, message}` the platform shows, plus its fault and action.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{name}: {message}")]
pub struct FunctionError {
    /// Error class shown on the platform, e.g. `ValidationError` (kept from the Node.js component).
    pub name: Cow<'static, str>,
    /// Human-readable, actionable text.
    pub message: String,
    /// Whose fault it is.
    pub fault: Fault,
    /// What the runtime does.
    pub action: Action,
}

impl FunctionError {
    /// A failure with every part given.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        fault: Fault,
        action: Action,
    ) -> Self {
        Self {
            name: name.into(),
            message: message.into(),
            fault,
            action,
        }
    }

    /// The step's configuration is wrong: rejected.
    pub fn config(name: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(name, message, Fault::Configuration, Action::Reject)
    }

    /// The incoming data is wrong: rejected.
    pub fn data(name: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(name, message, Fault::Data, Action::Reject)
    }

    /// A remote system is unavailable for now: the message comes back later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new("Error", message, Fault::Remote, Action::Rebound)
    }

    /// Our side failed (e.g. the platform did not take a message): rejected.
    pub fn internal(name: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(name, message, Fault::Internal, Action::Reject)
    }

    /// The message text handed to the function is not JSON a `serde_json::Value` parse accepts (`detail`: the
    /// parser's error): the delivery is rejected as the runtime rejects any such message.
    pub fn not_json(detail: impl Into<String>) -> Self {
        Self::new("Error", detail, Fault::Data, Action::NotJson)
    }

    /// The same failure with another action.
    #[must_use]
    pub fn with_action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// The log level this failure deserves: ours and crashes are errors; the user's and a remote system's
    /// are warnings (the process is fine; the platform shows the error to the flow's owner).
    pub fn level(&self) -> tracing::Level {
        match (self.fault, self.action) {
            (Fault::Internal, _) | (_, Action::Crash) => tracing::Level::ERROR,
            _ => tracing::Level::WARN,
        }
    }
}

/// `error: cause: cause` text of an error and its sources.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_follows_fault_and_action() {
        assert_eq!(
            FunctionError::config("E", "x").level(),
            tracing::Level::WARN
        );
        assert_eq!(
            FunctionError::unavailable("x").level(),
            tracing::Level::WARN
        );
        assert_eq!(
            FunctionError::internal("E", "x").level(),
            tracing::Level::ERROR
        );
        let crash = FunctionError::config("E", "x").with_action(Action::Crash);
        assert_eq!(crash.level(), tracing::Level::ERROR);
    }
}
