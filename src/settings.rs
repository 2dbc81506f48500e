//! Process settings: every `ELASTICIO_*` variable read once at start-up into typed [`Settings`].
//!
//! Owns the parsing rules of the reference runtime (PROTOCOL.md 1.2.1): mandatory variables that are absent
//! or empty are all reported together; optional numbers fall back to their default when unparsable **or 0**
//! (kept for compatibility, see the README's protocol notes); optional booleans are false only for `""` and
//! `"false"`. Code past `main` never reads `std::env`; it gets a `Settings`.
//! Does not own the step configuration (`cfg`), which comes from the platform API.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

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

/// Raw environment snapshot with the reference parsing helpers.
#[derive(Clone)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The environment holds secrets: list names only.
        let mut names: Vec<_> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// Snapshot of the real process environment.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// Environment from explicit pairs (tests, local runner).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(&format!("ELASTICIO_{name}"))
            .map(String::as_str)
    }

    /// A variable by its full name (used for `ADDITIONAL_VARS_FOR_HEADERS`).
    pub fn get_full(&self, full_name: &str) -> Option<&str> {
        self.vars.get(full_name).map(String::as_str)
    }

    /// The value of a mandatory variable, or its name pushed onto `missing`.
    fn required(&self, name: &str, missing: &mut Vec<String>) -> String {
        match self.raw(name) {
            Some(v) if !v.is_empty() => v.to_owned(),
            _ => {
                missing.push(format!("ELASTICIO_{name}"));
                String::new()
            }
        }
    }

    /// Optional integer with `parseInt` semantics: leading digits count, unparsable or 0 means default.
    pub fn number(&self, name: &str, default: u64) -> u64 {
        self.raw(name)
            .and_then(parse_int_prefix)
            .filter(|v| *v != 0)
            .map_or(default, |v| u64::try_from(v).unwrap_or(default))
    }

    /// Optional boolean: unset → default, `""`/`"false"` → false, anything else → true.
    pub fn boolean(&self, name: &str, default: bool) -> bool {
        match self.raw(name) {
            None => default,
            Some("") | Some("false") => false,
            Some(_) => true,
        }
    }

    /// Optional string; an empty value counts as unset.
    pub fn string(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|v| !v.is_empty()).map(str::to_owned)
    }
}

/// JavaScript `parseInt(value)` for base 10: optional whitespace and sign, then the leading digits.
fn parse_int_prefix(value: &str) -> Option<i64> {
    let s = value.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    let n: i64 = digits[..end].parse().ok()?;
    Some(if neg { -n } else { n })
}

/// Identity of this step, copied into outgoing headers.
#[derive(Debug, Clone)]
pub struct StepIdentity {
    /// `ELASTICIO_FLOW_ID` (outgoing `taskId`).
    pub flow_id: String,
    /// `ELASTICIO_EXEC_ID`.
    pub exec_id: String,
    /// `ELASTICIO_STEP_ID`.
    pub step_id: String,
    /// `ELASTICIO_CONTAINER_ID`.
    pub container_id: String,
    /// `ELASTICIO_WORKSPACE_ID`.
    pub workspace_id: String,
    /// `ELASTICIO_USER_ID`.
    pub user_id: String,
    /// `ELASTICIO_COMP_ID`.
    pub comp_id: String,
    /// `ELASTICIO_FUNCTION`: the trigger or action this process runs.
    pub function: String,
}

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

/// Where messages come from and go to, and how they are encrypted.
#[derive(Debug, Clone)]
pub struct AmqpSettings {
    /// `ELASTICIO_AMQP_URI` (holds a password: never logged).
    pub uri: SecretString,
    /// `ELASTICIO_LISTEN_MESSAGES_ON`: the queue consumed.
    pub listen_messages_on: String,
    /// `ELASTICIO_PUBLISH_MESSAGES_TO`: the exchange every message is published to.
    pub publish_messages_to: String,
    /// `ELASTICIO_DATA_ROUTING_KEY`.
    pub data_routing_key: String,
    /// `ELASTICIO_ERROR_ROUTING_KEY`.
    pub error_routing_key: String,
    /// `ELASTICIO_REBOUND_ROUTING_KEY`.
    pub rebound_routing_key: String,
    /// `ELASTICIO_SNAPSHOT_ROUTING_KEY`.
    pub snapshot_routing_key: String,
    /// `ELASTICIO_MESSAGE_CRYPTO_PASSWORD`.
    pub crypto_password: SecretString,
    /// `ELASTICIO_MESSAGE_CRYPTO_IV` (exactly 16 bytes).
    pub crypto_iv: SecretString,
    /// `ELASTICIO_RABBITMQ_PREFETCH_SAILOR` (default 1).
    pub prefetch: u16,
    /// `ELASTICIO_AMQP_PUBLISH_RETRY_DELAY` (default 100 ms).
    pub publish_retry_delay: Duration,
    /// `ELASTICIO_AMQP_PUBLISH_RETRY_ATTEMPTS` (default unlimited).
    pub publish_retry_attempts: Option<u64>,
    /// `ELASTICIO_AMQP_PUBLISH_MAX_RETRY_DELAY` (default 5 min).
    pub publish_max_retry_delay: Duration,
    /// `ELASTICIO_AMQP_PERSISTENT_MESSAGES`: delivery mode 2 instead of 1.
    pub persistent_messages: bool,
    /// `ELASTICIO_AMQP_RECONNECT_ATTEMPTS` (default 3 extra attempts).
    pub reconnect_attempts: u32,
    /// `ELASTICIO_AMQP_RECONNECT_TIMEOUT` (default 100 ms).
    pub reconnect_timeout: Duration,
    /// `ELASTICIO_PROCESS_AMQP_DRAIN` (accepted for compatibility; lapin always applies back-pressure).
    pub process_amqp_drain: bool,
    /// Host name for the connection names `<hostname>-read` / `<hostname>-write` (`HOSTNAME`, else
    /// `/etc/hostname`).
    pub hostname: String,
}

/// Input format of the listened queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// Ordinary encrypted flow messages.
    Default,
    /// Error messages of another step (custom error handler, PROTOCOL.md 3.7).
    Error,
}

/// Emit throttles (PROTOCOL.md 2.3).
#[derive(Debug, Clone, Copy)]
pub struct Throttles {
    /// `ELASTICIO_DATA_RATE_LIMIT` (default 10).
    pub data: u64,
    /// `ELASTICIO_ERROR_RATE_LIMIT` (default 2).
    pub error: u64,
    /// `ELASTICIO_SNAPSHOT_RATE_LIMIT` (default 2).
    pub snapshot: u64,
    /// `ELASTICIO_RATE_INTERVAL` (default 100 ms).
    pub interval: Duration,
}

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

const fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
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
        let step = StepIdentity {
            flow_id: env.required("FLOW_ID", &mut missing),
            exec_id: env.required("EXEC_ID", &mut missing),
            step_id: env.required("STEP_ID", &mut missing),
            container_id: env.required("CONTAINER_ID", &mut missing),
            workspace_id: env.required("WORKSPACE_ID", &mut missing),
            user_id: env.required("USER_ID", &mut missing),
            comp_id: env.required("COMP_ID", &mut missing),
            function: env.required("FUNCTION", &mut missing),
        };
        let api = ApiSettings {
            uri: env
                .required("API_URI", &mut missing)
                .trim_end_matches('/')
                .to_owned(),
            username: env.required("API_USERNAME", &mut missing),
            key: env.required("API_KEY", &mut missing).into(),
            retry_attempts: clamp_u32(env.number("API_REQUEST_RETRY_ATTEMPTS", 3)),
            retry_delay: ms(env.number("API_REQUEST_RETRY_DELAY", 100)),
        };
        let amqp = if hook_shutdown {
            None
        } else {
            Some(AmqpSettings {
                uri: env.required("AMQP_URI", &mut missing).into(),
                listen_messages_on: env.required("LISTEN_MESSAGES_ON", &mut missing),
                publish_messages_to: env.required("PUBLISH_MESSAGES_TO", &mut missing),
                data_routing_key: env.required("DATA_ROUTING_KEY", &mut missing),
                error_routing_key: env.required("ERROR_ROUTING_KEY", &mut missing),
                rebound_routing_key: env.required("REBOUND_ROUTING_KEY", &mut missing),
                snapshot_routing_key: env.required("SNAPSHOT_ROUTING_KEY", &mut missing),
                crypto_password: env.required("MESSAGE_CRYPTO_PASSWORD", &mut missing).into(),
                crypto_iv: env.required("MESSAGE_CRYPTO_IV", &mut missing).into(),
                prefetch: u16::try_from(env.number("RABBITMQ_PREFETCH_SAILOR", 1))
                    .unwrap_or(u16::MAX),
                publish_retry_delay: ms(env.number("AMQP_PUBLISH_RETRY_DELAY", 100)),
                publish_retry_attempts: env
                    .raw("AMQP_PUBLISH_RETRY_ATTEMPTS")
                    .and_then(parse_int_prefix)
                    .filter(|v| *v > 0)
                    .and_then(|v| u64::try_from(v).ok()),
                publish_max_retry_delay: ms(env.number("AMQP_PUBLISH_MAX_RETRY_DELAY", 300_000)),
                persistent_messages: env.boolean("AMQP_PERSISTENT_MESSAGES", false),
                reconnect_attempts: clamp_u32(env.number("AMQP_RECONNECT_ATTEMPTS", 3)),
                reconnect_timeout: ms(env.number("AMQP_RECONNECT_TIMEOUT", 100)),
                process_amqp_drain: env.boolean("PROCESS_AMQP_DRAIN", true),
                hostname: env
                    .get_full("HOSTNAME")
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned)
                    .or_else(|| {
                        std::fs::read_to_string("/etc/hostname")
                            .ok()
                            .map(|h| h.trim().to_owned())
                            .filter(|h| !h.is_empty())
                    })
                    .unwrap_or_else(|| "kafka-component".to_owned()),
            })
        };
        if !missing.is_empty() {
            return Err(SettingsError::Missing(missing));
        }
        if let Some(amqp) = &amqp {
            use secrecy::ExposeSecret;
            let iv_len = amqp.crypto_iv.expose_secret().len();
            if iv_len != 16 {
                return Err(SettingsError::Invalid {
                    name: "ELASTICIO_MESSAGE_CRYPTO_IV".into(),
                    reason: format!("must be exactly 16 bytes, got {iv_len}"),
                });
            }
        }
        let protocol_version = match env.number("PROTOCOL_VERSION", 1) {
            1 => 1,
            2 => 2,
            other => {
                return Err(SettingsError::Invalid {
                    name: "ELASTICIO_PROTOCOL_VERSION".into(),
                    reason: format!("must be 1 or 2, got {other}"),
                });
            }
        };
        let input_format = match env.string("INPUT_FORMAT").as_deref() {
            None | Some("default") => InputFormat::Default,
            Some("error") => InputFormat::Error,
            Some(other) => {
                return Err(SettingsError::Invalid {
                    name: "ELASTICIO_INPUT_FORMAT".into(),
                    reason: format!("must be `default` or `error`, got `{other}`"),
                });
            }
        };
        Ok(Self {
            step,
            api,
            amqp,
            component_path: env.string("COMPONENT_PATH").unwrap_or_default(),
            startup_required: env.boolean("STARTUP_REQUIRED", false),
            hook_shutdown,
            rebound_initial_expiration: ms(env.number("REBOUND_INITIAL_EXPIRATION", 15_000)),
            rebound_limit: clamp_u32(env.number("REBOUND_LIMIT", 20)),
            throttles: Throttles {
                data: env.number("DATA_RATE_LIMIT", 10),
                error: env.number("ERROR_RATE_LIMIT", 2),
                snapshot: env.number("SNAPSHOT_RATE_LIMIT", 2),
                interval: ms(env.number("RATE_INTERVAL", 100)),
            },
            outgoing_message_size_limit: usize::try_from(
                env.number("OUTGOING_MESSAGE_SIZE_LIMIT", 10_485_760),
            )
            .unwrap_or(usize::MAX),
            no_self_passthrough: env.boolean("NO_SELF_PASSTRHOUGH", false),
            protocol_version,
            no_error_replies: env.boolean("NO_ERROR_REPLIES", false),
            input_format,
            object_storage: ObjectStorageSettings {
                uri: env
                    .string("OBJECT_STORAGE_URI")
                    .map(|u| u.trim_end_matches('/').to_owned()),
                token: env.string("OBJECT_STORAGE_TOKEN").map(Into::into),
                size_threshold: env.number("OBJECT_STORAGE_SIZE_THRESHOLD", 1_048_576),
                emit_lightweight_message: env.boolean("EMIT_LIGHTWEIGHT_MESSAGE", false),
            },
            additional_headers: additional_headers(env),
            shutdown_timeout: ms(env.number("SHUTDOWN_TIMEOUT", 30_000)),
        })
    }
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// `ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS=ELASTICIO_EXTRA_ONE,FOO` → `[("extraOne", …), ("foo", …)]`.
fn additional_headers(env: &Env) -> Vec<(String, String)> {
    let Some(list) = env.string("ADDITIONAL_VARS_FOR_HEADERS") else {
        return Vec::new();
    };
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .filter_map(|name| {
            let value = env.get_full(name)?;
            Some((header_name(name), value.to_owned()))
        })
        .collect()
}

/// `ELASTICIO_EXTRA_ONE` → `extraOne`: drop the prefix, lower-case, camel-case at `_`.
fn header_name(var: &str) -> String {
    let bare = var.strip_prefix("ELASTICIO_").unwrap_or(var);
    let mut out = String::with_capacity(bare.len());
    let mut upper_next = false;
    for ch in bare.chars() {
        if ch == '_' {
            upper_next = !out.is_empty();
        } else if upper_next {
            out.extend(ch.to_uppercase());
            upper_next = false;
        } else {
            out.extend(ch.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    pub(crate) fn full_env() -> Vec<(String, String)> {
        ALWAYS_REQUIRED
            .iter()
            .chain(AMQP_REQUIRED.iter())
            .map(|n| {
                let v = match *n {
                    "MESSAGE_CRYPTO_IV" => "0123456789abcdef".to_owned(),
                    "API_URI" => "http://127.0.0.1:1/".to_owned(),
                    other => format!("v-{other}"),
                };
                (format!("ELASTICIO_{n}"), v)
            })
            .collect()
    }

    fn env_with(extra: &[(&str, &str)]) -> Env {
        let mut pairs = full_env();
        for (k, v) in extra {
            pairs.push(((*k).to_owned(), (*v).to_owned()));
        }
        Env::from_pairs(pairs)
    }

    #[test]
    fn reports_every_missing_variable_at_once() {
        let env = Env::from_pairs([("ELASTICIO_FLOW_ID", "f"), ("ELASTICIO_STEP_ID", "")]);
        let err = Settings::from_env(&env).unwrap_err();
        let SettingsError::Missing(names) = &err else {
            panic!("{err}")
        };
        assert_eq!(names.len(), 19, "{names:?}");
        assert!(
            names.contains(&"ELASTICIO_STEP_ID".to_owned()),
            "empty counts as missing"
        );
        assert!(!names.contains(&"ELASTICIO_FLOW_ID".to_owned()));
        let text = err.to_string();
        assert!(text.contains("ELASTICIO_AMQP_URI") && text.contains("ELASTICIO_API_KEY"));
    }

    #[test]
    fn shutdown_hook_mode_needs_no_amqp_variables() {
        let pairs: Vec<_> = full_env()
            .into_iter()
            .filter(|(k, _)| !AMQP_REQUIRED.iter().any(|n| k.ends_with(n)))
            .chain([("ELASTICIO_HOOK_SHUTDOWN".to_owned(), "1".to_owned())])
            .collect();
        let s = Settings::from_env(&Env::from_pairs(pairs)).unwrap();
        assert!(s.hook_shutdown && s.amqp.is_none());
    }

    #[test]
    fn defaults_match_the_reference_runtime() {
        let s = Settings::from_env(&env_with(&[])).unwrap();
        let a = s.amqp.as_ref().unwrap();
        assert_eq!(a.prefetch, 1);
        assert_eq!(s.rebound_initial_expiration, ms(15_000));
        assert_eq!(s.rebound_limit, 20);
        assert_eq!(s.throttles.data, 10);
        assert_eq!(s.throttles.error, 2);
        assert_eq!(s.throttles.snapshot, 2);
        assert_eq!(s.throttles.interval, ms(100));
        assert_eq!(a.publish_retry_delay, ms(100));
        assert_eq!(a.publish_retry_attempts, None);
        assert_eq!(a.publish_max_retry_delay, ms(300_000));
        assert!(!a.persistent_messages);
        assert!(a.process_amqp_drain);
        assert_eq!(a.reconnect_attempts, 3);
        assert_eq!(s.outgoing_message_size_limit, 10_485_760);
        assert_eq!(s.protocol_version, 1);
        assert_eq!(s.input_format, InputFormat::Default);
        assert_eq!(s.object_storage.size_threshold, 1_048_576);
        assert_eq!(s.api.uri, "http://127.0.0.1:1", "trailing slash stripped");
        assert_eq!(s.api.retry_attempts, 3);
        assert!(!s.startup_required && !s.no_error_replies && !s.no_self_passthrough);
        assert_eq!(s.shutdown_timeout, ms(30_000));
    }

    #[test]
    fn numbers_follow_parse_int_and_zero_means_default() {
        let s = Settings::from_env(&env_with(&[
            ("ELASTICIO_RABBITMQ_PREFETCH_SAILOR", "12abc"),
            ("ELASTICIO_REBOUND_LIMIT", "0"),
            ("ELASTICIO_DATA_RATE_LIMIT", "x"),
            ("ELASTICIO_RATE_INTERVAL", " 250"),
            ("ELASTICIO_AMQP_PUBLISH_RETRY_ATTEMPTS", "5"),
        ]))
        .unwrap();
        assert_eq!(s.amqp.as_ref().unwrap().prefetch, 12);
        assert_eq!(s.rebound_limit, 20, "0 falls back to the default");
        assert_eq!(s.throttles.data, 10, "unparsable falls back to the default");
        assert_eq!(s.throttles.interval, ms(250));
        assert_eq!(s.amqp.as_ref().unwrap().publish_retry_attempts, Some(5));
        assert_eq!(parse_int_prefix("-7x"), Some(-7));
        assert_eq!(parse_int_prefix(""), None);
    }

    #[test]
    fn booleans_are_false_only_for_empty_and_false() {
        for (value, expected) in [
            ("", false),
            ("false", false),
            ("true", true),
            ("0", true),
            ("no", true),
        ] {
            let s = Settings::from_env(&env_with(&[("ELASTICIO_AMQP_PERSISTENT_MESSAGES", value)]))
                .unwrap();
            assert_eq!(
                s.amqp.unwrap().persistent_messages,
                expected,
                "value {value:?}"
            );
        }
        let s =
            Settings::from_env(&env_with(&[("ELASTICIO_PROCESS_AMQP_DRAIN", "false")])).unwrap();
        assert!(!s.amqp.unwrap().process_amqp_drain);
    }

    #[test]
    fn additional_vars_become_camel_case_headers() {
        let s = Settings::from_env(&env_with(&[
            (
                "ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS",
                "ELASTICIO_EXTRA_ONE, OTHER_VAR,ELASTICIO_ABSENT",
            ),
            ("ELASTICIO_EXTRA_ONE", "x1"),
            ("OTHER_VAR", "o"),
        ]))
        .unwrap();
        assert_eq!(
            s.additional_headers,
            vec![
                ("extraOne".to_owned(), "x1".to_owned()),
                ("otherVar".to_owned(), "o".to_owned())
            ]
        );
    }

    #[test]
    fn bad_iv_and_protocol_version_are_reported_without_the_secret() {
        let err = Settings::from_env(&env_with(&[(
            "ELASTICIO_MESSAGE_CRYPTO_IV",
            "short-secret",
        )]))
        .unwrap_err();
        assert!(err.to_string().contains("16 bytes"));
        assert!(!err.to_string().contains("short-secret"));
        let err =
            Settings::from_env(&env_with(&[("ELASTICIO_PROTOCOL_VERSION", "3")])).unwrap_err();
        assert!(err.to_string().contains("ELASTICIO_PROTOCOL_VERSION"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let s = Settings::from_env(&env_with(&[])).unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("v-API_KEY") && !dbg.contains("v-MESSAGE_CRYPTO_PASSWORD"));
        assert_eq!(s.api.key.expose_secret(), "v-API_KEY");
    }
}
