//! The mandatory variables of each mode, and why settings cannot be built.

/// Variables required in every mode that talks to the platform (PROTOCOL.md 1.2.2).
pub const ALWAYS_REQUIRED: [&str; 11] = [
    "FLOW_ID",
    "EXEC_ID",
    "STEP_ID",
    "CONTAINER_ID",
    "WORKSPACE_ID",
    "USER_ID",
    "COMP_ID",
    "FUNCTION",
    "API_URI",
    "API_USERNAME",
    "API_KEY",
];

/// Variables required for message processing, not in shutdown-hook mode (PROTOCOL.md 1.2.3).
pub const AMQP_REQUIRED: [&str; 9] = [
    "AMQP_URI",
    "LISTEN_MESSAGES_ON",
    "PUBLISH_MESSAGES_TO",
    "DATA_ROUTING_KEY",
    "ERROR_ROUTING_KEY",
    "REBOUND_ROUTING_KEY",
    "SNAPSHOT_ROUTING_KEY",
    "MESSAGE_CRYPTO_PASSWORD",
    "MESSAGE_CRYPTO_IV",
];

/// Why the settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// One or more mandatory variables are absent or empty; all of them are listed.
    #[error("missing required environment variables: {}", .0.join(", "))]
    Missing(Vec<String>),
    /// A variable is present but unusable.
    #[error("invalid environment variable {name}: {reason}")]
    Invalid {
        /// Full variable name, e.g. `ELASTICIO_MESSAGE_CRYPTO_IV`.
        name: String,
        /// What is wrong with it (never its value when it is a secret).
        reason: String,
    },
}
