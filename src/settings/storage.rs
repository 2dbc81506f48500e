//! Object storage (maester) for lightweight messages.

use secrecy::SecretString;

use super::env::Env;

/// Object storage (maester) for lightweight messages.
#[derive(Debug, Clone)]
pub struct ObjectStorageSettings {
    /// `ELASTICIO_OBJECT_STORAGE_URI`.
    pub uri: Option<String>,
    /// `ELASTICIO_OBJECT_STORAGE_TOKEN`.
    pub token: Option<SecretString>,
    /// `ELASTICIO_OBJECT_STORAGE_SIZE_THRESHOLD` (default 1 MiB).
    pub size_threshold: u64,
    /// `ELASTICIO_EMIT_LIGHTWEIGHT_MESSAGE`.
    pub emit_lightweight_message: bool,
}

impl ObjectStorageSettings {
    pub(super) fn from_env(env: &Env) -> Self {
        Self {
            uri: env
                .string("OBJECT_STORAGE_URI")
                .map(|u| u.trim_end_matches('/').to_owned()),
            token: env.string("OBJECT_STORAGE_TOKEN").map(Into::into),
            size_threshold: env.number("OBJECT_STORAGE_SIZE_THRESHOLD", 1_048_576),
            emit_lightweight_message: env.boolean("EMIT_LIGHTWEIGHT_MESSAGE", false),
        }
    }
}
