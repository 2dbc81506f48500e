//! Property tests (issue: reliability, "fuzzing"): message decoding and decryption, `ELASTICIO_*` settings
//! parsing, and Produce input validation and conversion. `cargo fuzz` needs a nightly toolchain, so these
//! bounded proptest runs stand in for it in CI: arbitrary and garbled inputs never panic, are rejected with
//! an error, and valid generated inputs round-trip.
//!
//! The Produce properties run the real action (`ProduceAction::process`) in process, against the shared
//! Apache Kafka broker, with the `exec` runner's emitter collecting what it emits.
//!
//! Every property runs from a fixed RNG seed, so a run is the same on every machine and in CI (a coverage
//! check cannot pass on one run and fail on the next); `PROPTEST_RNG_SEED=<n>` explores another seed, and a
//! failure is reproduced by running again with the seed its output prints.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kafka_component::actions::produce::ProduceAction;
use kafka_component::contract::{
    Emit, Emitter, Execution, ExecutionIds, Fatal, Function, FunctionError,
};
use kafka_component::local::{LocalEmitter, LocalEvent};
use kafka_component::platform::crypto::{Crypto, CryptoError};
use kafka_component::schema::validate_produce_input;
use kafka_component::settings::{ALWAYS_REQUIRED, AMQP_REQUIRED, Env, Settings, SettingsError};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, RngSeed};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::harness::{IV, PASSWORD, Topic, kafka, read_records};

/// The seed every property runs from unless `PROPTEST_RNG_SEED` names another.
const SEED: u64 = 0x6b61_666b_6131_3301;

pub(crate) fn config(cases: u32) -> ProptestConfig {
    // `ProptestConfig::default()` reads the PROPTEST_* variables; without PROPTEST_RNG_SEED it would be random.
    let base = ProptestConfig::default();
    let seed = match base.rng_seed {
        RngSeed::Fixed(s) => s,
        RngSeed::Random => SEED,
    };
    // Shown with a failure (the test harness prints a failed test's output): the run to reproduce it.
    eprintln!("proptest: {cases} cases from seed {seed} (reproduce with PROPTEST_RNG_SEED={seed})");
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        // Regressions are reported in the failure message; no files are written into the source tree.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..base
    }
}

fn cipher() -> Crypto {
    Crypto::new(PASSWORD, IV).unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// Message decoding and decryption
// ---------------------------------------------------------------------------------------------------------

#[test]
fn decoding_arbitrary_bytes_never_panics_and_misaligned_ciphertext_is_an_error() {
    let c = cipher();
    proptest!(config(256), |(bytes in prop::collection::vec(any::<u8>(), 0..600), version in any::<u8>())| {
        let result = c.decode(&bytes, version);
        if bytes.is_empty() {
            prop_assert_eq!(result, Ok(Vec::new()), "empty content decrypts to nothing");
        } else if version >= 2 && bytes.len() % 16 != 0 {
            prop_assert_eq!(result, Err(CryptoError::Cipher));
        }
        // Raw decryption of anything either fails or yields fewer bytes than it was given.
        match c.decrypt(&bytes) {
            Ok(plain) => prop_assert!(bytes.len() % 16 == 0 && plain.len() < bytes.len()),
            Err(e) => prop_assert_eq!(e, CryptoError::Cipher),
        }
    });
}

#[test]
fn text_that_is_not_base64_is_a_base64_error() {
    let c = cipher();
    // At least one character outside the base64 alphabet (whitespace is trimmed only at the ends).
    proptest!(config(256), |(
        prefix in "[A-Za-z0-9+/]{0,40}",
        bad in "[^A-Za-z0-9+/=\\s]",
        suffix in ".{0,40}",
    )| {
        let text = format!("{prefix}{bad}{suffix}");
        prop_assert_eq!(c.decode(text.as_bytes(), 1), Err(CryptoError::Base64));
        prop_assert_eq!(c.decode(text.as_bytes(), 0), Err(CryptoError::Base64), "version 0 reads as 1");
    });
}

#[test]
fn encode_then_decode_round_trips_for_both_protocol_versions() {
    let c = cipher();
    proptest!(config(256), |(plain in prop::collection::vec(any::<u8>(), 0..2048), v2 in any::<bool>(), ws in "[ \t\r\n]{0,3}")| {
        let version = if v2 { 2 } else { 1 };
        let wire = c.encode(&plain, version);
        prop_assert_eq!(&c.decode(&wire, version).unwrap(), &plain);
        if version == 1 {
            // Version 1 is base64 text; surrounding whitespace (a trailing newline) is tolerated.
            prop_assert_eq!(&B64.encode(c.encrypt(&plain)).into_bytes(), &wire);
            let padded = [ws.as_bytes(), &wire, ws.as_bytes()].concat();
            prop_assert_eq!(&c.decode(&padded, 1).unwrap(), &plain);
        } else {
            prop_assert_eq!(wire.len() % 16, 0);
            prop_assert!(wire.len() > plain.len());
        }
        // Another key never gives the plaintext back.
        let other = Crypto::new("another password", IV).unwrap();
        prop_assert_ne!(other.decode(&wire, version).ok(), Some(plain.clone()));
    });
}

#[test]
fn truncated_content_is_an_error_or_a_strict_prefix_never_the_message() {
    let c = cipher();
    proptest!(config(256), |(
        plain in prop::collection::vec(any::<u8>(), 1..512),
        v2 in any::<bool>(),
        cut in any::<prop::sample::Index>(),
    )| {
        let version = if v2 { 2 } else { 1 };
        let wire = c.encode(&plain, version);
        let keep = cut.index(wire.len()); // 0..len: always shorter than the full content
        let truncated = &wire[..keep];
        match c.decode(truncated, version) {
            Ok(p) => {
                // CBC without a MAC: cutting at a block boundary can leave a decryptable prefix. It is never
                // the whole message.
                prop_assert!(p.len() < plain.len() && plain.starts_with(&p), "not a prefix");
            }
            Err(CryptoError::Base64) => prop_assert_eq!(version, 1),
            Err(CryptoError::Cipher) => {}
        }
        if version == 1 && keep % 4 != 0 {
            prop_assert_eq!(c.decode(truncated, 1), Err(CryptoError::Base64));
        }
        if version == 2 && keep % 16 != 0 {
            prop_assert_eq!(c.decode(truncated, 2), Err(CryptoError::Cipher));
        }
    });
}

#[test]
fn cipher_setup_accepts_exactly_16_byte_ivs() {
    proptest!(config(256), |(password in ".{0,40}", iv in ".{0,24}")| {
        let built = Crypto::new(&password, &iv);
        if iv.len() == 16 {
            prop_assert!(built.is_ok());
        } else {
            prop_assert_eq!(built.err(), Some(iv.len()));
        }
    });
}

// ---------------------------------------------------------------------------------------------------------
// Settings parsing
// ---------------------------------------------------------------------------------------------------------

/// The optional numeric variables with their defaults and a reader from `Settings`.
type NumberReader = fn(&Settings) -> u64;

fn numeric_vars() -> Vec<(&'static str, u64, NumberReader)> {
    fn ms(d: Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap()
    }
    vec![
        ("REBOUND_LIMIT", 20, |s| u64::from(s.rebound_limit)),
        ("REBOUND_INITIAL_EXPIRATION", 15_000, |s| {
            ms(s.rebound_initial_expiration)
        }),
        ("DATA_RATE_LIMIT", 10, |s| s.throttles.data),
        ("ERROR_RATE_LIMIT", 2, |s| s.throttles.error),
        ("SNAPSHOT_RATE_LIMIT", 2, |s| s.throttles.snapshot),
        ("RATE_INTERVAL", 100, |s| ms(s.throttles.interval)),
        ("OUTGOING_MESSAGE_SIZE_LIMIT", 10_485_760, |s| {
            s.outgoing_message_size_limit as u64
        }),
        ("OBJECT_STORAGE_SIZE_THRESHOLD", 1_048_576, |s| {
            s.object_storage.size_threshold
        }),
        ("API_REQUEST_RETRY_ATTEMPTS", 3, |s| {
            u64::from(s.api.retry_attempts)
        }),
        ("API_REQUEST_RETRY_DELAY", 100, |s| ms(s.api.retry_delay)),
        ("SHUTDOWN_TIMEOUT", 30_000, |s| ms(s.shutdown_timeout)),
        ("RABBITMQ_PREFETCH_SAILOR", 1, |s| {
            u64::from(s.amqp.as_ref().unwrap().prefetch)
        }),
        ("AMQP_RECONNECT_ATTEMPTS", 3, |s| {
            u64::from(s.amqp.as_ref().unwrap().reconnect_attempts)
        }),
        ("AMQP_RECONNECT_TIMEOUT", 100, |s| {
            ms(s.amqp.as_ref().unwrap().reconnect_timeout)
        }),
        ("AMQP_PUBLISH_RETRY_DELAY", 100, |s| {
            ms(s.amqp.as_ref().unwrap().publish_retry_delay)
        }),
        ("AMQP_PUBLISH_MAX_RETRY_DELAY", 300_000, |s| {
            ms(s.amqp.as_ref().unwrap().publish_max_retry_delay)
        }),
    ]
}

/// Optional boolean variables and their readers.
type BoolReader = fn(&Settings) -> bool;

fn boolean_vars() -> Vec<(&'static str, BoolReader)> {
    vec![
        ("STARTUP_REQUIRED", |s| s.startup_required),
        ("NO_SELF_PASSTRHOUGH", |s| s.no_self_passthrough),
        ("NO_ERROR_REPLIES", |s| s.no_error_replies),
        ("EMIT_LIGHTWEIGHT_MESSAGE", |s| {
            s.object_storage.emit_lightweight_message
        }),
        ("AMQP_PERSISTENT_MESSAGES", |s| {
            s.amqp.as_ref().unwrap().persistent_messages
        }),
        ("PROCESS_AMQP_DRAIN", |s| {
            s.amqp.as_ref().unwrap().process_amqp_drain
        }),
    ]
}

/// Every mandatory variable with a usable value.
fn good_env() -> BTreeMap<String, String> {
    ALWAYS_REQUIRED
        .iter()
        .chain(AMQP_REQUIRED.iter())
        .map(|n| {
            let v = match *n {
                "MESSAGE_CRYPTO_IV" => IV.to_owned(),
                "API_URI" => "http://127.0.0.1:1".to_owned(),
                other => format!("value-of-{other}"),
            };
            (format!("ELASTICIO_{n}"), v)
        })
        .collect()
}

fn parse(env: &BTreeMap<String, String>) -> Result<Settings, SettingsError> {
    Settings::from_env(&Env::from_pairs(env.clone()))
}

/// Any value, biased towards the shapes that trip parsers.
fn garbled_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("false".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999999999".to_owned()),
        "[ \t]*[+-]?[0-9]{0,25}[a-z.]{0,3}",
        ".{0,30}",
        any::<String>(),
    ]
}

#[test]
fn garbled_environment_values_never_panic() {
    let names: Vec<String> = ALWAYS_REQUIRED
        .iter()
        .chain(AMQP_REQUIRED.iter())
        .map(|n| (*n).to_owned())
        .chain(numeric_vars().into_iter().map(|(n, _, _)| n.to_owned()))
        .chain(boolean_vars().into_iter().map(|(n, _)| n.to_owned()))
        .chain(
            [
                "HOOK_SHUTDOWN",
                "PROTOCOL_VERSION",
                "INPUT_FORMAT",
                "AMQP_PUBLISH_RETRY_ATTEMPTS",
                "ADDITIONAL_VARS_FOR_HEADERS",
                "COMPONENT_PATH",
                "OBJECT_STORAGE_URI",
                "OBJECT_STORAGE_TOKEN",
            ]
            .map(str::to_owned),
        )
        .collect();
    let names = Arc::new(names);
    proptest!(config(256), |(
        picks in prop::collection::vec((any::<prop::sample::Index>(), garbled_value()), 0..24),
    )| {
        let mut env = good_env();
        for (which, value) in &picks {
            env.insert(format!("ELASTICIO_{}", which.get(&names)), value.clone());
        }
        // Also name garbage in ADDITIONAL_VARS_FOR_HEADERS: it must not matter.
        match parse(&env) {
            Ok(s) => {
                prop_assert!(s.protocol_version == 1 || s.protocol_version == 2);
                if let Some(a) = &s.amqp {
                    prop_assert!(a.prefetch >= 1);
                }
            }
            Err(SettingsError::Missing(missing)) => {
                // Exactly the mandatory variables that are now empty.
                for m in &missing {
                    prop_assert_eq!(env.get(m).map(String::as_str), Some(""), "{} reported", m);
                }
            }
            Err(SettingsError::Invalid { name, reason }) => {
                prop_assert!(
                    ["ELASTICIO_MESSAGE_CRYPTO_IV", "ELASTICIO_PROTOCOL_VERSION", "ELASTICIO_INPUT_FORMAT"]
                        .contains(&name.as_str()),
                    "unexpected invalid variable {} ({})", name, reason
                );
                if name == "ELASTICIO_MESSAGE_CRYPTO_IV" {
                    let iv = &env["ELASTICIO_MESSAGE_CRYPTO_IV"];
                    prop_assert_ne!(iv.len(), 16);
                    prop_assert!(reason.contains("16 bytes"));
                }
            }
        }
    });
}

#[test]
fn every_missing_mandatory_variable_is_named_in_the_one_error() {
    let all: Vec<&str> = ALWAYS_REQUIRED
        .iter()
        .chain(AMQP_REQUIRED.iter())
        .copied()
        .collect();
    proptest!(config(256), |(
        gone in prop::collection::vec(any::<bool>(), 20),
        emptied in prop::collection::vec(any::<bool>(), 20),
        hook_shutdown in any::<bool>(),
    )| {
        let mut env = good_env();
        let mut expected = BTreeSet::new();
        for (i, name) in all.iter().enumerate() {
            let full = format!("ELASTICIO_{name}");
            if gone[i] {
                env.remove(&full);
            } else if emptied[i] {
                env.insert(full.clone(), String::new());
            } else {
                continue;
            }
            if !(hook_shutdown && AMQP_REQUIRED.contains(name)) {
                expected.insert(full);
            }
        }
        if hook_shutdown {
            env.insert("ELASTICIO_HOOK_SHUTDOWN".into(), "1".into());
        }
        match parse(&env) {
            Ok(s) => {
                prop_assert!(expected.is_empty(), "missing {:?} accepted", expected);
                prop_assert_eq!(s.amqp.is_none(), hook_shutdown);
            }
            Err(e @ SettingsError::Missing(_)) => {
                let text = e.to_string();
                let SettingsError::Missing(names) = e else { unreachable!() };
                let got: BTreeSet<String> = names.into_iter().collect();
                prop_assert_eq!(&got, &expected);
                prop_assert!(text.starts_with("missing required environment variables: "));
                for name in &expected {
                    prop_assert!(text.contains(name.as_str()), "{} not in {}", name, text);
                }
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    });
}

/// What `parseInt` with the README's fallback rules gives for `text`: the leading integer if it is positive,
/// else the default.
fn expected_number(ws: &str, sign: &str, digits: &str, default: u64) -> u64 {
    if digits.is_empty() || sign == "-" {
        return default;
    }
    let _ = ws; // leading whitespace is skipped
    match digits.parse::<u64>() {
        Ok(0) | Err(_) => default,
        Ok(n) => n,
    }
}

#[test]
fn garbled_numbers_keep_their_leading_digits_or_fall_back_to_the_default() {
    let vars = Arc::new(numeric_vars());
    proptest!(config(256), |(
        which in any::<prop::sample::Index>(),
        ws in "[ \t]{0,2}",
        sign in "[+-]?",
        digits in "[0-9]{0,9}",
        // The tail starts with something that ends the number (not a digit, sign or space).
        tail in "([^0-9+\\-\\s].{0,8})?",
    )| {
        let (name, default, read) = which.get(&vars);
        let text = format!("{ws}{sign}{digits}{tail}");
        let mut env = good_env();
        env.insert(format!("ELASTICIO_{name}"), text.clone());
        let s = parse(&env).unwrap();
        let mut expected = expected_number(&ws, &sign, &digits, *default);
        if *name == "RABBITMQ_PREFETCH_SAILOR" {
            expected = expected.min(u64::from(u16::MAX));
        }
        prop_assert_eq!(read(&s), expected, "{}={:?}", name, text);
    });
}

#[test]
fn booleans_are_false_only_for_empty_and_false() {
    let vars = Arc::new(boolean_vars());
    proptest!(config(256), |(which in any::<prop::sample::Index>(), value in garbled_value())| {
        let (name, read) = which.get(&vars);
        let mut env = good_env();
        env.insert(format!("ELASTICIO_{name}"), value.clone());
        let s = parse(&env).unwrap();
        prop_assert_eq!(read(&s), !(value.is_empty() || value == "false"), "{}={:?}", name, value);
    });
}

#[test]
fn protocol_version_and_iv_errors_name_the_variable_and_hide_the_value() {
    proptest!(config(256), |(version in garbled_value(), iv_tail in "[a-zA-Z0-9]{0,30}")| {
        let mut env = good_env();
        env.insert("ELASTICIO_PROTOCOL_VERSION".into(), version.clone());
        match parse(&env) {
            Ok(s) => prop_assert!(s.protocol_version == 1 || s.protocol_version == 2),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.contains("ELASTICIO_PROTOCOL_VERSION") && text.contains("must be 1 or 2"), "{}", text);
            }
        }
        let iv = format!("IVSECRET{iv_tail}");
        let mut env = good_env();
        env.insert("ELASTICIO_MESSAGE_CRYPTO_IV".into(), iv.clone());
        let result = parse(&env);
        if iv.len() == 16 {
            prop_assert!(result.is_ok());
        } else {
            let text = result.unwrap_err().to_string();
            prop_assert!(text.contains("ELASTICIO_MESSAGE_CRYPTO_IV"), "{}", text);
            prop_assert!(!text.contains("IVSECRET"), "the IV leaks into {}", text);
        }
    });
}

// ---------------------------------------------------------------------------------------------------------
// Produce input: schema validation and conversion into records
// ---------------------------------------------------------------------------------------------------------

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "messages", "value", "key", "headers", "partition", "timestamp", "base64", "body",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

/// Any JSON value.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        ".{0,12}".prop_map(Value::String),
        "[A-Za-z0-9+/=%@]{0,12}".prop_map(|s| json!({ "base64": s })),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(json_key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for record field `name`: usually of the right type, sometimes anything.
fn field_value(name: &'static str) -> BoxedStrategy<Value> {
    let right: BoxedStrategy<Value> = match name {
        "key" | "value" => payload().prop_map(|(v, _)| v).boxed(),
        "headers" => prop_oneof![
            prop::collection::btree_map("[a-z]{1,3}", ".{0,4}", 0..3).prop_map(|m| json!(m)),
            prop::collection::vec(("[a-z]{1,3}", ".{0,4}"), 0..3)
                .prop_map(|p| Value::Array(p.into_iter().map(|(k, v)| json!([k, v])).collect())),
        ]
        .boxed(),
        "partition" => (0u64..5).prop_map(|p| json!(p)).boxed(),
        _ => (0u64..u64::MAX).prop_map(|t| json!(t)).boxed(),
    };
    prop_oneof![4 => right, 1 => arb_json()].boxed()
}

/// A body shaped like produce input, with field values that are often right and sometimes wrong.
fn produce_shaped() -> impl Strategy<Value = Value> {
    let record = (
        prop::option::weighted(0.9, field_value("value")),
        prop::option::of(field_value("key")),
        prop::option::of(field_value("headers")),
        prop::option::weighted(0.2, field_value("partition")),
        prop::option::weighted(0.2, field_value("timestamp")),
    )
        .prop_map(|(value, key, headers, partition, timestamp)| {
            let mut r = serde_json::Map::new();
            for (name, v) in [
                ("value", value),
                ("key", key),
                ("headers", headers),
                ("partition", partition),
                ("timestamp", timestamp),
            ] {
                if let Some(v) = v {
                    r.insert(name.to_owned(), v);
                }
            }
            Value::Object(r)
        });
    prop_oneof![
        4 => prop::collection::vec(record, 0..6).prop_map(|r| json!({ "messages": r })),
        1 => arb_json().prop_map(|m| json!({ "messages": m })),
        1 => arb_json(),
    ]
}

/// A key or value the schema allows, with the bytes it must become on Kafka.
fn payload() -> impl Strategy<Value = (Value, Option<Vec<u8>>)> {
    prop_oneof![
        ".{0,20}".prop_map(|s| (json!(s), Some(s.into_bytes()))),
        Just((Value::Null, None)),
        prop::collection::vec(any::<u8>(), 0..24)
            .prop_map(|b| (json!({ "base64": B64.encode(&b) }), Some(b))),
        any::<i64>().prop_map(|n| (json!(n), Some(n.to_string().into_bytes()))),
        any::<bool>().prop_map(|b| (json!(b), Some(b.to_string().into_bytes()))),
        ("[a-z]{1,6}", any::<i32>()).prop_map(|(k, n)| {
            let v = json!({ k: n, "list": [1, "two", null] });
            let bytes = serde_json::to_vec(&v).unwrap();
            (v, Some(bytes))
        }),
    ]
}

/// One valid record and what must be on Kafka for it.
#[derive(Debug, Clone)]
struct Expected {
    input: Value,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    partition: Option<i32>,
}

const PARTITIONS: i32 = 3;

/// Record headers as the input may give them.
#[derive(Debug, Clone)]
enum Hdrs {
    Absent,
    /// An object of string values (names unique).
    Object(BTreeMap<String, String>),
    /// `[name, value]` pairs (names may repeat; order kept).
    Pairs(Vec<(String, String)>),
}

fn valid_record() -> impl Strategy<Value = Expected> {
    let headers = prop_oneof![
        Just(Hdrs::Absent),
        prop::collection::btree_map("[a-z]{1,5}", ".{0,8}", 0..4).prop_map(Hdrs::Object),
        prop::collection::vec(("[a-c]{1,2}", ".{0,8}"), 0..4).prop_map(Hdrs::Pairs),
    ];
    (
        prop::option::of(payload()),
        payload(),
        headers,
        prop::option::of(0..PARTITIONS),
        // Up to half an hour ahead: Apache Kafka refuses more than an hour (see TIMESTAMP_AFTER_MAX_MS).
        prop::option::of(1u64..now_ms() + TIMESTAMP_AFTER_MAX_MS / 2),
    )
        .prop_map(
            |(key, (value_json, value), headers, partition, timestamp)| {
                let mut input = json!({ "value": value_json });
                let key_bytes = match key {
                    Some((k, bytes)) => {
                        input["key"] = k;
                        bytes
                    }
                    None => None,
                };
                let hdrs = match headers {
                    Hdrs::Absent => Vec::new(),
                    Hdrs::Object(h) => {
                        input["headers"] = json!(h);
                        h.into_iter().map(|(k, v)| (k, v.into_bytes())).collect()
                    }
                    Hdrs::Pairs(p) => {
                        input["headers"] =
                            Value::Array(p.iter().map(|(k, v)| json!([k, v])).collect());
                        p.into_iter().map(|(k, v)| (k, v.into_bytes())).collect()
                    }
                };
                if let Some(p) = partition {
                    input["partition"] = json!(p);
                }
                if let Some(t) = timestamp {
                    input["timestamp"] = json!(t);
                }
                Expected {
                    input,
                    key: key_bytes,
                    value,
                    headers: hdrs,
                    partition,
                }
            },
        )
}

/// Runs the Produce action in process on `body`; returns its result and every emitted message.
struct Harness {
    rt: tokio::runtime::Runtime,
    action: ProduceAction,
    events: Arc<std::sync::Mutex<Vec<LocalEvent>>>,
    cfg: Value,
}

impl Harness {
    fn new(cfg: Value) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Self {
            rt,
            action: ProduceAction::default(),
            events: Arc::default(),
            cfg,
        }
    }

    fn run(&self, body: &Value) -> (Result<(), FunctionError>, Vec<LocalEvent>) {
        let msg = json!({ "body": body, "headers": {} });
        let events = Arc::clone(&self.events);
        let local = LocalEmitter::new(move |e| events.lock().unwrap().push(e));
        let token = CancellationToken::new();
        let exec = Execution {
            msg,
            text: None,
            cfg: self.cfg.clone(),
            snapshot: json!({}),
            variables: json!({}),
            emitter: Emitter::new(Arc::new(local) as Arc<dyn Emit>),
            shutdown: token.clone(),
            fatal: Fatal::new(token),
            ids: ExecutionIds::default(),
        };
        let result = self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(20), self.action.process(exec))
                .await
                .expect("the Produce action hangs")
        });
        let out = std::mem::take(&mut *self.events.lock().unwrap());
        (result, out)
    }
}

#[test]
fn schema_validation_of_arbitrary_json_never_panics() {
    proptest!(config(512), |(body in prop_oneof![arb_json(), produce_shaped()])| {
        let violations = validate_produce_input(&body);
        if violations.is_empty() {
            // Accepted input has the documented shape: an array of records, each with a value.
            let messages = body.get("messages").and_then(Value::as_array);
            prop_assert!(messages.is_some(), "accepted without a messages array: {}", body);
            for r in messages.unwrap() {
                prop_assert!(r.is_object() && r.get("value").is_some(), "accepted record {}", r);
            }
        }
        if !body.is_object() {
            prop_assert!(violations.iter().any(|v| v.path.is_empty()), "non-object accepted: {}", body);
        }
        for v in &violations {
            prop_assert!(v.path.is_empty() || v.path.starts_with('/'), "{:?}", v);
            prop_assert!(!v.message.is_empty());
        }
    });
}

/// Apache Kafka refuses a record whose timestamp is more than `message.timestamp.after.max.ms` (default one
/// hour) ahead of the broker's clock with INVALID_TIMESTAMP; the schema cannot know the topic's setting.
const TIMESTAMP_AFTER_MAX_MS: u64 = 3_600_000;

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A topic for the Produce properties. `retention.ms=-1`: generated records carry timestamps back to 1970, and
/// time-based retention (checked every second on the test broker) would delete such a partition's records
/// before they are read back.
fn props_topic(prefix: &str) -> Topic {
    Topic::on(&kafka(), prefix, PARTITIONS, &[("retention.ms", "-1")])
}

/// A body of 1..6 valid records: the arbitrary-input property always reaches the write path with it.
fn valid_body() -> impl Strategy<Value = Value> {
    prop::collection::vec(valid_record(), 1..6)
        .prop_map(|rs| json!({ "messages": rs.into_iter().map(|r| r.input).collect::<Vec<_>>() }))
}

#[test]
fn produce_action_on_arbitrary_input_never_panics_and_invalid_input_emits_nothing() {
    let topic = props_topic("props-any");
    let h = Harness::new(json!({
        "brokers": kafka(), "topic": topic.name, "deliveryTimeoutMs": 2000
    }));
    let (rejected, written, refused) = (Cell::new(0), Cell::new(0), Cell::new(0));
    // One case in four is a valid body, so the write side is always reached (about 64 of 256 cases from that
    // branch alone, besides the valid bodies the other generators hit); the rest is mostly invalid.
    proptest!(config(256), |(body in prop_oneof![2 => produce_shaped(), 1 => arb_json(), 1 => valid_body()])| {
        let schema_ok = validate_produce_input(&body).is_empty();
        let records = body["messages"].as_array().cloned().unwrap_or_default();
        // Valid input can still fail on Kafka in two ways: an explicit partition the topic does not have, and
        // a timestamp further ahead than the broker accepts.
        let bad_partition = records
            .iter()
            .any(|r| r.get("partition").and_then(Value::as_u64).is_some_and(|p| p >= PARTITIONS as u64));
        let now = now_ms();
        let future_timestamp = records.iter().any(|r| {
            r.get("timestamp").and_then(Value::as_u64).is_some_and(|t| t > now + TIMESTAMP_AFTER_MAX_MS)
        });
        let (result, emitted) = h.run(&body);
        match result {
            Err(report) if report.name == "ValidationError" => {
                prop_assert!(report.message.starts_with("the input does not match the Produce input schema: "));
                prop_assert!(emitted.is_empty(), "nothing emitted for invalid input");
                rejected.set(rejected.get() + 1);
                if schema_ok {
                    // Past the schema only {"base64": …} payloads and huge partitions or timestamps can still
                    // be wrong, named by their path.
                    prop_assert!(
                        ["/base64", "/partition", "/timestamp"].iter().any(|p| report.message.contains(p)),
                        "{}", report.message
                    );
                }
            }
            Err(report) => {
                prop_assert_eq!(&report.name, "ProduceError", "{}", report.message);
                prop_assert!(schema_ok && (bad_partition || future_timestamp), "{}", report.message);
                if !bad_partition {
                    // INVALID_TIMESTAMP, or INVALID_RECORD for some batches of far-off timestamps: both named.
                    prop_assert!(report.message.contains("record timestamp"), "the timestamp is named: {}", report.message);
                    if refused.get() == 0 {
                        eprintln!("refused by Kafka: {}", report.message);
                    }
                    refused.set(refused.get() + 1);
                }
            }
            Ok(()) => {
                prop_assert!(schema_ok);
                let events: Vec<&str> = emitted.iter().map(|m| m.event).collect();
                if events == ["rebound"] {
                    prop_assert!(bad_partition);
                } else {
                    prop_assert!(!future_timestamp, "a timestamp Kafka refuses was reported written: {}", body);
                    prop_assert!(events.iter().all(|e| *e == "data"), "{:?}", events);
                    let reported: usize = emitted
                        .iter()
                        .map(|m| m.message["body"]["records"].as_array().map_or(0, Vec::len))
                        .sum();
                    prop_assert_eq!(reported, records.len(), "every record reported once");
                    if reported > 0 {
                        written.set(written.get() + 1);
                    }
                }
            }
        }
    });
    // The generators reach both sides of the schema (and writes of at least one record).
    eprintln!(
        "rejected {} written {} refused by Kafka {}",
        rejected.get(),
        written.get(),
        refused.get()
    );
    assert!(
        rejected.get() > 40 && written.get() > 40,
        "rejected {} written {}",
        rejected.get(),
        written.get()
    );
    // And Kafka's own refusal, whatever the seed: a timestamp two hours ahead is refused by the broker and
    // reported for that record, with what to do.
    let late = now_ms() + 2 * TIMESTAMP_AFTER_MAX_MS;
    let (result, emitted) = h.run(&json!({"messages": [{"value": "late", "timestamp": late}]}));
    let report = result.expect_err("a timestamp two hours ahead is refused");
    assert_eq!(report.name, "ProduceError", "{}", report.message);
    assert!(
        report.message.contains("\"index\":0")
            && report.message.contains("message.timestamp.after.max.ms"),
        "{}",
        report.message
    );
    assert!(emitted.is_empty(), "nothing reported written");
}

#[test]
fn valid_generated_inputs_are_written_in_order_and_reported_once_per_record() {
    let topic = props_topic("props");
    let brokers = kafka();
    let h = Harness::new(json!({ "brokers": brokers, "topic": topic.name, "clientId": "props" }));
    // (partition, offset) → (key, value, headers, header order matters) of every reported record.
    type Written = BTreeMap<
        (i32, i64),
        (
            Option<Vec<u8>>,
            Option<Vec<u8>>,
            Vec<(String, Vec<u8>)>,
            bool,
        ),
    >;
    let written: RefCell<Written> = RefCell::default();
    proptest!(config(48), |(records in prop::collection::vec(valid_record(), 0..12))| {
        let body = json!({ "messages": records.iter().map(|r| r.input.clone()).collect::<Vec<_>>() });
        prop_assert_eq!(validate_produce_input(&body), vec![], "generated input is valid");
        let (result, emitted) = h.run(&body);
        prop_assert!(result.is_ok(), "{:?}", result.err());
        // One data message per partition written; every index exactly once.
        let mut seen: BTreeMap<usize, (i32, i64)> = BTreeMap::new();
        let mut partitions_seen = HashSet::new();
        for m in &emitted {
            prop_assert_eq!(m.event, "data");
            let out = &m.message["body"];
            prop_assert_eq!(out["topicName"].as_str(), Some(topic.name.as_str()));
            let partition: i32 = out["partition"].as_str().unwrap().parse().unwrap();
            prop_assert!(partitions_seen.insert(partition), "one message per partition");
            let mut last: Option<(u64, i64)> = None;
            for r in out["records"].as_array().unwrap() {
                let index = usize::try_from(r["index"].as_u64().unwrap()).unwrap();
                let offset = r["offset"].as_i64().unwrap();
                prop_assert_eq!(&r["key"], records[index].input.get("key").unwrap_or(&Value::Null));
                if let Some(t) = records[index].input.get("timestamp") {
                    // CreateTime topic: the broker keeps the timestamp the input gave.
                    prop_assert_eq!(&r["timestamp"], t, "timestamp of record {}", index);
                }
                if let Some((pi, po)) = last {
                    // Input order is kept within a partition.
                    prop_assert!(pi < index as u64 && po < offset, "order: {} after {}", index, pi);
                }
                last = Some((index as u64, offset));
                prop_assert!(seen.insert(index, (partition, offset)).is_none(), "index {} twice", index);
            }
        }
        prop_assert_eq!(seen.len(), records.len(), "every record reported");
        for (i, r) in records.iter().enumerate() {
            if let Some(p) = r.partition {
                prop_assert_eq!(seen[&i].0, p, "explicit partition honoured");
            }
        }
        for (i, r) in records.iter().enumerate() {
            let mut headers = r.headers.clone();
            if !r.input["headers"].is_array() {
                headers.sort();
            }
            written.borrow_mut().insert(seen[&i], (r.key.clone(), r.value.clone(), headers, r.input["headers"].is_array()));
        }
    });
    // What the outputs said is on Kafka, byte for byte (read once for all cases).
    let written = written.into_inner();
    let read = read_records(
        &brokers,
        &topic.name,
        PARTITIONS,
        written.len() + 1,
        Duration::from_secs(5),
    );
    assert_eq!(
        read.len(),
        written.len(),
        "exactly the reported records are on the topic"
    );
    for got in read {
        let (key, value, headers, ordered) = &written[&(got.partition, got.offset)];
        let mut have = got.headers.clone();
        if !ordered {
            have.sort();
        }
        assert_eq!(
            (&got.key, &got.value, &have),
            (key, value, headers),
            "record at {}@{}",
            got.partition,
            got.offset
        );
    }
}
