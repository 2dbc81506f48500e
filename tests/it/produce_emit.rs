//! Produce's data messages are serialized from typed structs and sent as JSON bytes; the emitter falls back to
//! the `Value` of the message where it must edit it (lightweight bodies, passthrough). Both give the same bytes:
//! the same input through a worker on each path, compared byte for byte on the wire.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

/// Explicit timestamps, binary, number, object and missing keys: everything of the output but `id` and the
/// offsets is the same on every run.
fn input() -> Value {
    json!({"body": {"messages": [
        {"key": "a", "value": "0", "timestamp": 1_700_000_000_001_i64},
        {"key": {"base64": "AAEC/w=="}, "value": "1", "timestamp": 1_700_000_000_002_i64},
        {"key": {"z": [1.5, null], "a": "é \" \\ 😀"}, "value": "2", "timestamp": 1_700_000_000_003_i64},
        {"value": "3", "timestamp": 1_700_000_000_004_i64},
        {"key": 42, "value": null, "timestamp": 1_700_000_000_005_i64}
    ]}})
}

/// A platform API serving a Produce step on `topic`, with passthrough `passthrough`.
async fn api(topic: &str, passthrough: bool) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tasks/flow1/steps/step_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "step_1", "comp_id": "comp1", "function": "produce",
            "config": {"brokers": kafka(), "clientId": "it-produce-emit", "topic": topic},
            "snapshot": {}, "is_passthrough": passthrough, "variables": {}
        })))
        .mount(&server)
        .await;
    server
}

/// The plaintext of the one data message a worker with `env` and passthrough `passthrough` sends for
/// [`input`] (published with the previous step's passthrough).
async fn run(name: &str, topic: &str, passthrough: bool, env: &[(&str, &str)]) -> Vec<u8> {
    let rb = Rabbit::setup(name).await;
    let api = api(topic, passthrough).await;
    let env = [&[("ELASTICIO_DATA_RATE_LIMIT", "1000")], env].concat();
    let worker = spawn_ready(&step_env(&rb, &api.uri(), "produce", &env)).await;
    let mut msg = input();
    msg["passthrough"] = json!({"step_0": {"body": {"first": true}}});
    rb.publish_input(&msg, &[("stepId", "step_0")]).await;
    let m = rb.next("data", T).await.expect("data message");
    let version = u8::try_from(m.header_int("protocolVersion").unwrap_or(1)).unwrap();
    let plain = crypto().decode(&m.data, version).unwrap();
    finish(rb, worker).await;
    plain
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// `message` as it would be after `shift` more records on the partition and with the `id` of `other`.
fn shifted(message: &[u8], shift: i64, other: &Value) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(message).unwrap();
    v["id"] = other["id"].clone();
    let base = v["body"]["baseOffset"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .unwrap();
    v["body"]["baseOffset"] = json!((base + shift).to_string());
    for r in v["body"]["records"].as_array_mut().unwrap() {
        r["offset"] = json!(r["offset"].as_i64().unwrap() + shift);
    }
    serde_json::to_vec(&v).unwrap()
}

#[tokio::test]
async fn the_output_is_the_same_bytes_on_the_fast_and_the_value_path() {
    // Kept for good: the records' 2023 timestamps are past the default retention, which would move
    // `logStartOffset` between the runs.
    let topic = Topic::on(&kafka(), "emit-paths", 1, &[("retention.ms", "-1")]);
    // The fast path (no passthrough, no lightweight bodies).
    let fast = run("emit-fast", &topic.name, false, &[]).await;
    let fast_v: Value = serde_json::from_slice(&fast).unwrap();
    assert_eq!(
        keys(&fast_v),
        ["id", "body", "headers", "attachments", "metadata"]
    );
    assert_eq!(
        keys(&fast_v["body"]),
        [
            "topicName",
            "partition",
            "errorCode",
            "baseOffset",
            "logAppendTime",
            "logStartOffset",
            "records"
        ]
    );
    let records = fast_v["body"]["records"].as_array().unwrap();
    assert_eq!(keys(&records[0]), ["index", "key", "offset", "timestamp"]);
    let input = input();
    for (r, m) in records
        .iter()
        .zip(input["body"]["messages"].as_array().unwrap())
    {
        assert_eq!(
            r["key"],
            m.get("key").cloned().unwrap_or(Value::Null),
            "the key as given"
        );
        assert_eq!(r["timestamp"], m["timestamp"]);
    }
    assert_eq!(
        fast,
        serde_json::to_vec(&fast_v).unwrap(),
        "serde_json's own bytes"
    );

    // The Value path: lightweight bodies on, with a threshold the output stays under (nothing offloaded).
    let value = run(
        "emit-value",
        &topic.name,
        false,
        &[("ELASTICIO_EMIT_LIGHTWEIGHT_MESSAGE", "true")],
    )
    .await;
    let value_v: Value = serde_json::from_slice(&value).unwrap();
    assert_eq!(
        String::from_utf8(shifted(&fast, 5, &value_v)).unwrap(),
        String::from_utf8(value).unwrap()
    );

    // Passthrough: the Value path adds the step's entry after the envelope, the output unchanged.
    let pt = run("emit-pt", &topic.name, true, &[]).await;
    let mut pt_v: Value = serde_json::from_slice(&pt).unwrap();
    assert_eq!(
        keys(&pt_v),
        [
            "id",
            "body",
            "headers",
            "attachments",
            "metadata",
            "passthrough"
        ]
    );
    assert_eq!(
        pt_v["passthrough"]["step_0"]["body"],
        json!({"first": true})
    );
    assert_eq!(pt_v["passthrough"]["step_1"]["body"], pt_v["body"]);
    pt_v.as_object_mut().unwrap().shift_remove("passthrough");
    assert_eq!(
        String::from_utf8(shifted(&fast, 10, &pt_v)).unwrap(),
        serde_json::to_string(&pt_v).unwrap()
    );
}
