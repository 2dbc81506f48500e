//! [`Settings`]: everything the worker needs, built from the groups, with the checks across them.

use std::time::Duration;

use super::amqp::AmqpSettings;
use super::api::ApiSettings;
use super::env::{Env, clamp_u32, ms};
use super::headers::additional_headers;
use super::required::SettingsError;
use super::step::StepIdentity;
use super::storage::ObjectStorageSettings;
use super::throttles::Throttles;

/// Input format of the listened queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Ordinary encrypted flow messages.
    Default,
    /// Error messages of another step (custom error handler, PROTOCOL.md 3.7).
    Error,
}

/// Everything the worker needs from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Who this step is.
    pub step: StepIdentity,
    /// Platform API.
    pub api: ApiSettings,
    /// AMQP and crypto; `None` in shutdown-hook mode.
    pub amqp: Option<AmqpSettings>,
    /// `ELASTICIO_COMPONENT_PATH`.
    pub component_path: String,
    /// `ELASTICIO_STARTUP_REQUIRED`.
    pub startup_required: bool,
    /// `ELASTICIO_HOOK_SHUTDOWN`.
    pub hook_shutdown: bool,
    /// `ELASTICIO_REBOUND_INITIAL_EXPIRATION` (default 15 s).
    pub rebound_initial_expiration: Duration,
    /// `ELASTICIO_REBOUND_LIMIT` (default 20).
    pub rebound_limit: u32,
    /// Emit throttles.
    pub throttles: Throttles,
    /// `ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT` (default 10 MiB).
    pub outgoing_message_size_limit: usize,
    /// `ELASTICIO_NO_SELF_PASSTRHOUGH` (sic).
    pub no_self_passthrough: bool,
    /// `ELASTICIO_PROTOCOL_VERSION` for outgoing data (1 = base64, 2 = raw).
    pub protocol_version: u8,
    /// `ELASTICIO_NO_ERROR_REPLIES`.
    pub no_error_replies: bool,
    /// `ELASTICIO_INPUT_FORMAT`.
    pub input_format: InputFormat,
    /// Object storage.
    pub object_storage: ObjectStorageSettings,
    /// `ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS`: (header name, value) pairs.
    pub additional_headers: Vec<(String, String)>,
    /// How long graceful shutdown waits for in-flight executions (`ELASTICIO_SHUTDOWN_TIMEOUT`, ms, default 30 s).
    pub shutdown_timeout: Duration,
}

impl Settings {
    /// Builds the settings from an environment snapshot.
    ///
    /// # Errors
    /// [`SettingsError::Missing`] naming every absent mandatory variable, or
    /// [`SettingsError::Invalid`] for a present but unusable one.
    pub fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let mut missing = Vec::new();
        let hook_shutdown = env.boolean("HOOK_SHUTDOWN", false);
        let step = StepIdentity::from_env(env, &mut missing);
        let api = ApiSettings::from_env(env, &mut missing);
        let amqp = if hook_shutdown {
            None
        } else {
            Some(AmqpSettings::from_env(env, &mut missing))
        };
        if !missing.is_empty() {
            return Err(SettingsError::Missing(missing));
        }
        if let Some(amqp) = &amqp {
            amqp.check_iv()?;
        }
        let protocol_version = protocol_version(env)?;
        let input_format = input_format(env)?;
        Ok(Self {
            step,
            api,
            amqp,
            component_path: env.string("COMPONENT_PATH").unwrap_or_default(),
            startup_required: env.boolean("STARTUP_REQUIRED", false),
            hook_shutdown,
            rebound_initial_expiration: ms(env.number("REBOUND_INITIAL_EXPIRATION", 15_000)),
            rebound_limit: clamp_u32(env.number("REBOUND_LIMIT", 20)),
            throttles: Throttles::from_env(env),
            outgoing_message_size_limit: usize::try_from(
                env.number("OUTGOING_MESSAGE_SIZE_LIMIT", 10_485_760),
            )
            .unwrap_or(usize::MAX),
            no_self_passthrough: env.boolean("NO_SELF_PASSTRHOUGH", false),
            protocol_version,
            no_error_replies: env.boolean("NO_ERROR_REPLIES", false),
            input_format,
            object_storage: ObjectStorageSettings::from_env(env),
            additional_headers: additional_headers(env),
            shutdown_timeout: ms(env.number("SHUTDOWN_TIMEOUT", 30_000)),
        })
    }
}

/// `ELASTICIO_PROTOCOL_VERSION`: 1 (the default) or 2.
fn protocol_version(env: &Env) -> Result<u8, SettingsError> {
    match env.number("PROTOCOL_VERSION", 1) {
        1 => Ok(1),
        2 => Ok(2),
        other => Err(SettingsError::Invalid {
            name: "ELASTICIO_PROTOCOL_VERSION".into(),
            reason: format!("must be 1 or 2, got {other}"),
        }),
    }
}

/// `ELASTICIO_INPUT_FORMAT`: `default` (the default) or `error`.
fn input_format(env: &Env) -> Result<InputFormat, SettingsError> {
    match env.string("INPUT_FORMAT").as_deref() {
        None | Some("default") => Ok(InputFormat::Default),
        Some("error") => Ok(InputFormat::Error),
        Some(other) => Err(SettingsError::Invalid {
            name: "ELASTICIO_INPUT_FORMAT".into(),
            reason: format!("must be `default` or `error`, got `{other}`"),
        }),
    }
}
