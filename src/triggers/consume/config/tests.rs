use super::*;
use serde_json::json;

#[test]
fn config_parsing() {
    let c = ConsumeConfig::from_cfg(&json!({"topic": "a, b", "groupId": "g"})).unwrap();
    assert_eq!(c.topics, vec!["a", "b"]);
    assert_eq!(
        (c.start_from, c.batch_size, c.parse_json),
        (StartFrom::Earliest, 1, false)
    );
    let c = ConsumeConfig::from_cfg(
        &json!({"topic": "a", "groupId": "g", "startFrom": "1700000000000", "batchSize": "100"}),
    )
    .unwrap();
    assert_eq!(
        (c.start_from, c.batch_size),
        (StartFrom::Timestamp(1_700_000_000_000), 100)
    );
    assert_eq!(
        ConsumeConfig::from_cfg(&json!({"topic": "a"}))
            .unwrap_err()
            .field,
        "groupId"
    );
    assert_eq!(
        ConsumeConfig::from_cfg(&json!({"topic": "a", "groupId": "g", "startFrom": "soon"}))
            .unwrap_err()
            .field,
        "startFrom"
    );
    assert_eq!(
        ConsumeConfig::from_cfg(&json!({"topic": " , ", "groupId": "g"}))
            .unwrap_err()
            .field,
        "topic"
    );
}

#[test]
fn patterns_and_names_mix_and_an_invalid_pattern_names_the_field() {
    let c =
        ConsumeConfig::from_cfg(&json!({"topic": "^orders-.*, audit", "groupId": "g"})).unwrap();
    assert_eq!(c.topics, vec!["^orders-.*", "audit"]);
    assert!(c.has_pattern());
    assert_eq!(c.pattern_refresh_ms, DEFAULT_PATTERN_REFRESH_MS);
    let plain = ConsumeConfig::from_cfg(&json!({"topic": "a.b", "groupId": "g"})).unwrap();
    assert!(!plain.has_pattern(), "a dot in a name is no pattern");
    let e = ConsumeConfig::from_cfg(&json!({"topic": "a, ^orders-(", "groupId": "g"})).unwrap_err();
    assert_eq!(e.field, "topic");
    assert!(
        e.to_string().contains("`^orders-(` is not a valid pattern"),
        "{e}"
    );
    let c = ConsumeConfig::from_cfg(
        &json!({"topic": "^a", "groupId": "g", "patternRefreshMs": "2000"}),
    )
    .unwrap();
    assert_eq!(c.pattern_refresh_ms, 2000);
    for bad in ["999", "x", "3600001"] {
        let e = ConsumeConfig::from_cfg(
            &json!({"topic": "^a", "groupId": "g", "patternRefreshMs": bad}),
        )
        .unwrap_err();
        assert_eq!(e.field, "patternRefreshMs", "{bad}");
    }
}

#[test]
fn group_protocol_is_classic_unless_consumer_is_chosen() {
    let base = json!({"topic": "a", "groupId": "g"});
    assert_eq!(
        ConsumeConfig::from_cfg(&base).unwrap().group_protocol,
        GroupProtocol::Classic
    );
    for (v, want) in [
        ("classic", GroupProtocol::Classic),
        ("Consumer", GroupProtocol::Consumer),
    ] {
        let c = ConsumeConfig::from_cfg(&merge(&base, "groupProtocol", v)).unwrap();
        assert_eq!(c.group_protocol, want);
    }
    let e = ConsumeConfig::from_cfg(&merge(&base, "groupProtocol", "kip848")).unwrap_err();
    assert_eq!(e.field, "groupProtocol");
}

#[test]
fn dead_letter_topic_is_optional_valid_and_not_consumed() {
    let base = json!({"topic": "orders, ^audit-.*", "groupId": "g"});
    assert_eq!(
        ConsumeConfig::from_cfg(&base).unwrap().dead_letter_topic,
        None
    );
    let c = ConsumeConfig::from_cfg(&merge(&base, "deadLetterTopic", " orders.dlt ")).unwrap();
    assert_eq!(c.dead_letter_topic.as_deref(), Some("orders.dlt"));
    let long = "d".repeat(250);
    for bad in ["has space", "a/b", "..", long.as_str()] {
        let e = ConsumeConfig::from_cfg(&merge(&base, "deadLetterTopic", bad)).unwrap_err();
        assert_eq!(e.field, "deadLetterTopic", "{bad}");
        assert!(e.reason.contains("not a valid topic name"), "{e}");
    }
    for consumed in ["orders", "audit-dlt"] {
        let e = ConsumeConfig::from_cfg(&merge(&base, "deadLetterTopic", consumed)).unwrap_err();
        assert_eq!(e.field, "deadLetterTopic", "{consumed}");
        assert!(e.reason.contains("consumed by this step"), "{e}");
    }
}

#[test]
fn progress_interval_and_stall_timeout_default_and_zero_turns_them_off() {
    let base = json!({"topic": "a", "groupId": "g"});
    let c = ConsumeConfig::from_cfg(&base).unwrap();
    assert_eq!((c.progress_interval_sec, c.stall_timeout_sec), (30, 300));
    let c = ConsumeConfig::from_cfg(&merge(
        &merge(&base, "progressIntervalSec", "0"),
        "stallTimeoutSec",
        "5",
    ))
    .unwrap();
    assert_eq!((c.progress_interval_sec, c.stall_timeout_sec), (0, 5));
    for (field, bad) in [("progressIntervalSec", "86401"), ("stallTimeoutSec", "-1")] {
        let e = ConsumeConfig::from_cfg(&merge(&base, field, bad)).unwrap_err();
        assert_eq!(e.field, field, "{bad}");
    }
}

fn merge(base: &Value, k: &str, v: &str) -> Value {
    let mut c = base.clone();
    c[k] = json!(v);
    c
}

#[test]
fn the_fields_struct_reads_exactly_the_component_json_fields() {
    let (read, declared) = crate::kafka::config::testing::struct_and_component_fields::<Fields>(
        "/triggers/consume/fields",
    );
    assert_eq!(read, declared);
}
