//! Where the platform API is and how to call it (credentials, retries).

use std::time::Duration;

use secrecy::SecretString;

use super::env::{Env, clamp_u32, ms};

/// Platform API location and credentials.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `ELASTICIO_API_URI` without a trailing `/`.
    pub uri: String,
    /// `ELASTICIO_API_USERNAME`.
    pub username: String,
    /// `ELASTICIO_API_KEY`.
    pub key: SecretString,
    /// `ELASTICIO_API_REQUEST_RETRY_ATTEMPTS` (hooks data calls).
    pub retry_attempts: u32,
    /// `ELASTICIO_API_REQUEST_RETRY_DELAY`.
    pub retry_delay: Duration,
}

impl ApiSettings {
    /// The API settings; absent mandatory variables are pushed onto `missing`.
    pub(super) fn from_env(env: &Env, missing: &mut Vec<String>) -> Self {
        Self {
            uri: env
                .required("API_URI", missing)
                .trim_end_matches('/')
                .to_owned(),
            username: env.required("API_USERNAME", missing),
            key: env.required("API_KEY", missing).into(),
            retry_attempts: clamp_u32(env.number("API_REQUEST_RETRY_ATTEMPTS", 3)),
            retry_delay: ms(env.number("API_REQUEST_RETRY_DELAY", 100)),
        }
    }
}
