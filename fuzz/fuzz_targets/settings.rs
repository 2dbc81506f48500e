//! `ELASTICIO_*` settings parsing: `Settings::from_env` on an environment the fuzzer builds from the known variable
//! names (and a few others) with chosen values (`Input`, read with `arbitrary`). An input that starts with `#env\n`
//! is an env file instead (`NAME=VALUE` lines), so that the seed corpus can hold readable environments, e.g. a full
//! one. It must return `Ok` or `Err`, never panic, and:
//! - `Ok`: the protocol version is 1 or 2; the AMQP part is there unless `HOOK_SHUTDOWN` is set, with a 16-byte IV;
//!   the API URI has no trailing `/`.
//! - `Err(Missing)`: names at least one variable, each `ELASTICIO_*` and absent or empty in the environment.
//! - Neither the error text nor the `Debug` of the settings shows a secret: compared with the same environment whose
//!   secret values are replaced by `x`s of the same length, a secret found in the text must be found there too
//!   (so it came from elsewhere, e.g. another variable with the same value). A secret variable that
//!   `ADDITIONAL_VARS_FOR_HEADERS` lists is forwarded as a header by configuration, and so is exempt.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use kafka_component::settings::{ALWAYS_REQUIRED, AMQP_REQUIRED, Env, Settings, SettingsError};
use libfuzzer_sys::fuzz_target;
use secrecy::ExposeSecret;

/// The optional variables `Settings::from_env` reads (without the `ELASTICIO_` prefix).
const OPTIONAL: [&str; 30] = [
    "HOOK_SHUTDOWN",
    "API_REQUEST_RETRY_ATTEMPTS",
    "API_REQUEST_RETRY_DELAY",
    "RABBITMQ_PREFETCH_SAILOR",
    "AMQP_PUBLISH_RETRY_DELAY",
    "AMQP_PUBLISH_RETRY_ATTEMPTS",
    "AMQP_PUBLISH_MAX_RETRY_DELAY",
    "AMQP_PERSISTENT_MESSAGES",
    "AMQP_RECONNECT_ATTEMPTS",
    "AMQP_RECONNECT_TIMEOUT",
    "PROCESS_AMQP_DRAIN",
    "PROTOCOL_VERSION",
    "INPUT_FORMAT",
    "COMPONENT_PATH",
    "STARTUP_REQUIRED",
    "REBOUND_INITIAL_EXPIRATION",
    "REBOUND_LIMIT",
    "DATA_RATE_LIMIT",
    "ERROR_RATE_LIMIT",
    "SNAPSHOT_RATE_LIMIT",
    "RATE_INTERVAL",
    "OUTGOING_MESSAGE_SIZE_LIMIT",
    "NO_SELF_PASSTRHOUGH",
    "NO_ERROR_REPLIES",
    "OBJECT_STORAGE_URI",
    "OBJECT_STORAGE_TOKEN",
    "OBJECT_STORAGE_SIZE_THRESHOLD",
    "EMIT_LIGHTWEIGHT_MESSAGE",
    "ADDITIONAL_VARS_FOR_HEADERS",
    "SHUTDOWN_TIMEOUT",
];

/// Values that must never appear in an error or in `Debug` output.
const SECRETS: [&str; 5] = [
    "ELASTICIO_API_KEY",
    "ELASTICIO_AMQP_URI",
    "ELASTICIO_MESSAGE_CRYPTO_PASSWORD",
    "ELASTICIO_MESSAGE_CRYPTO_IV",
    "ELASTICIO_OBJECT_STORAGE_TOKEN",
];

#[derive(Arbitrary, Debug)]
struct Input {
    base: Base,
    vars: Vec<(Name, Val)>,
}

/// What the environment holds before `vars` are applied (later pairs win).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Base {
    /// Every mandatory variable, valid (variant 0, so an empty input is a complete environment).
    Full,
    /// Nothing.
    Empty,
    /// The mandatory variables of shutdown-hook mode only.
    HookShutdown,
}

#[derive(Arbitrary, Debug)]
enum Name {
    /// One of the names `from_env` reads, by index into mandatory ++ optional.
    Known(u8),
    /// `ELASTICIO_` + anything (e.g. the extra variables that `ADDITIONAL_VARS_FOR_HEADERS` lists).
    Prefixed(String),
    /// Not an `ELASTICIO_*` name: `HOSTNAME`.
    Hostname,
    /// Any name.
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Val {
    Text(String),
    Int(i64),
    /// Digits followed by anything (`parseInt` semantics read the leading digits).
    Digits(u64, String),
    Bool(bool),
    Empty,
    /// A comma-separated list of variable names (for `ADDITIONAL_VARS_FOR_HEADERS`).
    Names(Vec<u8>),
    /// Exactly 16 bytes (a valid IV) when ASCII.
    Sixteen([u8; 16]),
}

fn known(i: u8) -> &'static str {
    let all: Vec<&'static str> = ALWAYS_REQUIRED
        .iter()
        .chain(AMQP_REQUIRED.iter())
        .chain(OPTIONAL.iter())
        .copied()
        .collect();
    all[usize::from(i) % all.len()]
}

impl Name {
    fn render(&self) -> String {
        match self {
            Name::Known(i) => format!("ELASTICIO_{}", known(*i)),
            Name::Prefixed(s) => format!("ELASTICIO_{s}"),
            Name::Hostname => "HOSTNAME".to_owned(),
            Name::Other(s) => s.clone(),
        }
    }
}

impl Val {
    fn render(&self) -> String {
        match self {
            Val::Text(s) => s.clone(),
            Val::Int(n) => n.to_string(),
            Val::Digits(n, rest) => format!("{n}{rest}"),
            Val::Bool(b) => b.to_string(),
            Val::Empty => String::new(),
            Val::Names(picks) => picks
                .iter()
                .map(|&i| format!("ELASTICIO_{}", known(i)))
                .collect::<Vec<_>>()
                .join(","),
            Val::Sixteen(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }
}

fn base_pairs(base: Base) -> Vec<(String, String)> {
    let names: Vec<&str> = match base {
        Base::Empty => return Vec::new(),
        Base::HookShutdown => ALWAYS_REQUIRED.to_vec(),
        Base::Full => ALWAYS_REQUIRED
            .iter()
            .chain(AMQP_REQUIRED.iter())
            .copied()
            .collect(),
    };
    let mut pairs: Vec<(String, String)> = names
        .into_iter()
        .map(|n| {
            let v = match n {
                "MESSAGE_CRYPTO_IV" => "iv=any16_symbols".to_owned(),
                "API_URI" => "http://127.0.0.1:9000/".to_owned(),
                other => format!("v-{}", other.to_lowercase()),
            };
            (format!("ELASTICIO_{n}"), v)
        })
        .collect();
    if matches!(base, Base::HookShutdown) {
        pairs.push(("ELASTICIO_HOOK_SHUTDOWN".into(), "true".into()));
    }
    pairs
}

fn env_of(pairs: &[(String, String)]) -> Env {
    // Later pairs win, as when a variable is set twice.
    Env::from_pairs(pairs.iter().cloned())
}

/// The text that `from_env` produced: the error's message, or the `Debug` of the settings.
fn outcome_text(result: &Result<Settings, SettingsError>) -> String {
    match result {
        Ok(s) => format!("{s:?}"),
        Err(e) => format!("{e} {e:?}"),
    }
}

/// `NAME=VALUE` lines (a line without `=` is a name with an empty value).
fn env_file(text: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(text)
        .lines()
        .map(|line| match line.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (line.to_owned(), String::new()),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let pairs = if let Some(text) = data.strip_prefix(b"#env\n") {
        env_file(text)
    } else {
        let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
            return;
        };
        let mut pairs = base_pairs(input.base);
        pairs.extend(input.vars.iter().map(|(n, v)| (n.render(), v.render())));
        pairs
    };
    let env = env_of(&pairs);
    let lookup = |name: &str| -> Option<&str> {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let result = Settings::from_env(&env);
    match &result {
        Ok(s) => {
            assert!(
                matches!(s.protocol_version, 1 | 2),
                "{}",
                s.protocol_version
            );
            assert_eq!(s.amqp.is_none(), s.hook_shutdown);
            if let Some(amqp) = &s.amqp {
                assert_eq!(amqp.crypto_iv.expose_secret().len(), 16);
                assert!(amqp.prefetch >= 1, "0 means the default");
            }
            assert!(!s.api.uri.ends_with('/'), "{}", s.api.uri);
            assert!(s.throttles.data >= 1 && s.throttles.error >= 1 && s.throttles.snapshot >= 1);
        }
        Err(SettingsError::Missing(names)) => {
            assert!(!names.is_empty(), "a Missing error names something");
            for name in names {
                assert!(name.starts_with("ELASTICIO_"), "{name}");
                assert!(
                    lookup(name).is_none_or(str::is_empty),
                    "{name} is reported missing but is set"
                );
            }
        }
        Err(SettingsError::Invalid { name, reason }) => {
            assert!(name.starts_with("ELASTICIO_"), "{name}");
            assert!(!reason.is_empty());
        }
    }

    // A variable listed in ADDITIONAL_VARS_FOR_HEADERS is sent as a header on purpose, so its value is in the settings.
    let forwarded = lookup("ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS").unwrap_or_default();
    // Secrets: rerun with each secret value replaced by as many `x`s (same emptiness, same IV length). A forwarded
    // secret keeps its value: it is in the output on purpose, and another secret's value may occur inside it (the
    // fuzzer found an AMQP URI whose text contained the IV).
    let masked: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| {
            if SECRETS.contains(&k.as_str()) && !forwarded.contains(k.as_str()) {
                (k.clone(), "x".repeat(v.len()))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let masked_result = Settings::from_env(&env_of(&masked));
    assert_eq!(
        result.is_ok(),
        masked_result.is_ok(),
        "a secret's value changed the outcome"
    );
    let text = outcome_text(&result);
    let masked_text = outcome_text(&masked_result);
    for name in SECRETS {
        if forwarded.contains(name) {
            continue;
        }
        let Some(secret) = lookup(name) else { continue };
        // Short values (e.g. "1") occur in any text by chance.
        if secret.len() >= 4 && text.contains(secret) {
            assert!(
                masked_text.contains(secret),
                "the value of {name} shows in the output: {text}"
            );
        }
    }
});
