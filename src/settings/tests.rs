//! Tests of the settings: missing variables, defaults, parsing rules, headers, secrets.

use secrecy::ExposeSecret;

use super::env::{ms, parse_int_prefix};
use super::*;

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
    let s = Settings::from_env(&env_with(&[("ELASTICIO_PROCESS_AMQP_DRAIN", "false")])).unwrap();
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
    let err = Settings::from_env(&env_with(&[("ELASTICIO_PROTOCOL_VERSION", "3")])).unwrap_err();
    assert!(err.to_string().contains("ELASTICIO_PROTOCOL_VERSION"));
}

#[test]
fn debug_output_hides_secrets() {
    let s = Settings::from_env(&env_with(&[])).unwrap();
    let dbg = format!("{s:?}");
    assert!(!dbg.contains("v-API_KEY") && !dbg.contains("v-MESSAGE_CRYPTO_PASSWORD"));
    assert_eq!(s.api.key.expose_secret(), "v-API_KEY");
}
