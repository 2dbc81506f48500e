//! The bad-input catalogue (issue: reliability): every kind of broken input a Produce worker can be handed,
//! one after the other, against one worker process (real RabbitMQ, the shared Apache Kafka broker). For each: what
//! the user sees (an error message with a clear text, or the documented silent reject of PROTOCOL.md 2.4),
//! the worker stays up, and a good message sent right after is written to Kafka and its result emitted.
//! Then the startup faults (garbled `ELASTICIO_*` values) and broken step configurations from the platform.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kafka_component::platform::crypto::Crypto;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

/// What the worker must do with one bad input.
#[derive(Debug, Clone)]
enum Outcome {
    /// Rejected (dead-lettered) without publishing anything; the log says why (PROTOCOL.md 2.4).
    SilentReject(&'static str),
    /// One error message named `name` whose text contains every fragment; the delivery is rejected.
    Error(&'static str, Vec<String>),
    /// Like `Error`, after data messages reporting `written` records.
    PartialError(usize, &'static str, Vec<String>),
    /// Acked with data messages reporting this many records.
    Written(usize),
}

struct Case {
    name: &'static str,
    content: Vec<u8>,
    headers: FieldTable,
    outcome: Outcome,
}

fn enc(plain: &[u8]) -> Vec<u8> {
    crypto().encode(plain, 1)
}

fn enc_json(v: &Value) -> Vec<u8> {
    enc(&serde_json::to_vec(v).unwrap())
}

fn body(messages: Value) -> Vec<u8> {
    enc_json(&json!({ "body": { "messages": messages } }))
}

fn table(pairs: Vec<(&str, AMQPValue)>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(ShortString::from(k), v);
    }
    t
}

fn lstr(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

fn validation(fragments: &[&str]) -> Outcome {
    let mut v = vec!["the input does not match the Produce input schema".to_owned()];
    v.extend(fragments.iter().map(|s| (*s).to_owned()));
    Outcome::Error("ValidationError", v)
}

fn catalogue() -> Vec<Case> {
    let none = FieldTable::default;
    let good_v1 = enc_json(&json!({"body": {"messages": [{"value": "x"}]}}));
    let mut cases = vec![
        Case {
            name: "undecryptable body (other key)",
            content: Crypto::new("not the step's password", IV)
                .unwrap()
                .encode(br#"{"body":{"messages":[{"value":"x"}]}}"#, 1),
            headers: none(),
            outcome: Outcome::SilentReject("Rejecting a message that cannot be decrypted."),
        },
        Case {
            name: "truncated base64",
            content: good_v1[..good_v1.len() - 3].to_vec(),
            headers: none(),
            outcome: Outcome::SilentReject("Rejecting a message that cannot be decrypted."),
        },
        Case {
            name: "base64 truncated at a block boundary",
            content: {
                let raw = B64.decode(&good_v1).unwrap();
                B64.encode(&raw[..raw.len() - 16]).into_bytes()
            },
            headers: none(),
            outcome: Outcome::SilentReject("Rejecting a message"),
        },
        Case {
            name: "not base64 at all",
            content: b"{\"body\": {\"messages\": []}} sent in the clear".to_vec(),
            headers: none(),
            outcome: Outcome::SilentReject("Rejecting a message that cannot be decrypted."),
        },
        Case {
            name: "empty content",
            content: Vec::new(),
            headers: none(),
            outcome: Outcome::SilentReject("Rejecting a message whose content is not JSON."),
        },
        Case {
            name: "protocolVersion 2 header on base64 content",
            content: good_v1.clone(),
            headers: table(vec![("protocolVersion", AMQPValue::ShortShortInt(2))]),
            outcome: Outcome::SilentReject("Rejecting a message"),
        },
        Case {
            name: "non-JSON plaintext",
            content: enc(b"messages: [value: x]"),
            headers: none(),
            outcome: Outcome::SilentReject("Rejecting a message whose content is not JSON."),
        },
        Case {
            name: "invalid UTF-8 bytes inside a JSON key string",
            content: enc(b"{\"body\":{\"messages\":[{\"key\":\"\xff\xfe\",\"value\":\"x\"}]}}"),
            headers: none(),
            outcome: Outcome::SilentReject("Rejecting a message whose content is not JSON."),
        },
        Case {
            name: "lone UTF-16 surrogate escape as key",
            content: enc(br#"{"body":{"messages":[{"key":"\ud800","value":"x"}]}}"#),
            headers: none(),
            outcome: Outcome::SilentReject("Rejecting a message whose content is not JSON."),
        },
    ];
    for (name, text) in [
        ("JSON array", "[1,2,3]"),
        ("JSON string", "\"messages\""),
        ("JSON number", "42"),
        ("JSON null", "null"),
    ] {
        cases.push(Case {
            name,
            content: enc(text.as_bytes()),
            headers: none(),
            outcome: Outcome::SilentReject(
                "Rejecting a message whose content is not a JSON object.",
            ),
        });
    }
    cases.extend([
        Case {
            name: "message without body",
            content: enc_json(&json!({"headers": {}})),
            headers: none(),
            outcome: validation(&["/: null is not of type \"object\""]),
        },
        Case {
            name: "body that is not an object",
            content: enc_json(&json!({"body": [{"value": "x"}]})),
            headers: none(),
            outcome: validation(&["is not of type \"object\""]),
        },
        Case {
            name: "body without messages",
            content: enc_json(&json!({"body": {"records": [{"value": "x"}]}})),
            headers: none(),
            outcome: validation(&["/: \"messages\" is a required property"]),
        },
        Case {
            name: "messages not an array",
            content: body(json!({"value": "x"})),
            headers: none(),
            outcome: validation(&["/messages: ", "is not of type \"array\""]),
        },
        Case {
            name: "messages with 0 records",
            content: body(json!([])),
            headers: none(),
            outcome: Outcome::Written(0),
        },
        Case {
            name: "record without value",
            content: body(json!([{"key": "k"}])),
            headers: none(),
            outcome: validation(&["/messages/0: \"value\" is a required property"]),
        },
        Case {
            name: "key that is not UTF-8 (base64 bytes)",
            content: body(json!([{"key": {"base64": "//79AA=="}, "value": "x"}])),
            headers: none(),
            outcome: Outcome::Written(1),
        },
        Case {
            name: "keys that are not strings (number, bool, object, array)",
            content: body(json!([
                {"key": 42, "value": "a"}, {"key": true, "value": "b"},
                {"key": {"id": 1}, "value": "c"}, {"key": [1, "x"], "value": "d"}
            ])),
            headers: none(),
            outcome: Outcome::Written(4),
        },
        Case {
            name: "key {base64} that is not base64",
            content: body(json!([{"key": {"base64": "not*base64"}, "value": "x"}])),
            headers: none(),
            outcome: validation(&["/messages/0/key/base64: not valid base64"]),
        },
        Case {
            name: "key {base64} that is not a string",
            content: body(json!([{"key": {"base64": 7}, "value": "x"}])),
            headers: none(),
            outcome: validation(&["/messages/0/key/base64: must be a string"]),
        },
        Case {
            name: "header value of the wrong type (object form)",
            content: body(json!([{"value": "x", "headers": {"h": 5, "i": null, "j": {"a": 1}}}])),
            headers: none(),
            outcome: validation(&[
                "/messages/0/headers/h",
                "/messages/0/headers/i",
                "/messages/0/headers/j",
            ]),
        },
        Case {
            name: "header pair of the wrong shape or type (array form)",
            content: body(json!([{"value": "x", "headers": [["a"], ["b", 1], ["c", "d", "e"]]}])),
            headers: none(),
            outcome: validation(&[
                "/messages/0/headers/0",
                "/messages/0/headers/1/1",
                "/messages/0/headers/2",
            ]),
        },
        Case {
            name: "headers that are a string",
            content: body(json!([{"value": "x", "headers": "h=v"}])),
            headers: none(),
            outcome: validation(&["/messages/0/headers"]),
        },
        Case {
            name: "partition and timestamp of the wrong type or range",
            content: body(
                json!([{"value": "x", "partition": -1, "timestamp": "yesterday"}, {"value": "y", "partition": 1.5}]),
            ),
            headers: none(),
            outcome: validation(&[
                "/messages/0/partition",
                "/messages/0/timestamp",
                "/messages/1/partition",
            ]),
        },
        Case {
            name: "partition too large for Kafka",
            content: body(json!([{"value": "x", "partition": 4_294_967_296_u64}])),
            headers: none(),
            outcome: validation(&["/messages/0/partition: 4294967296 is too large"]),
        },
        Case {
            name: "partition the topic does not have",
            content: body(json!([{"value": "a"}, {"value": "b", "partition": 7}])),
            headers: none(),
            outcome: Outcome::PartialError(
                1,
                "ProduceError",
                vec!["1 of 2 records were not written".into(), "indexes 1".into()],
            ),
        },
        Case {
            name: "AMQP headers of the wrong type (protocolVersion, messageId, threadId, reboundIteration, x-eio-meta, reply_to)",
            content: body(json!([{"value": "amqp-headers"}])),
            headers: table(vec![
                ("protocolVersion", lstr("one")),
                ("messageId", AMQPValue::LongLongInt(12345)),
                ("threadId", AMQPValue::Double(1.5)),
                ("reboundIteration", AMQPValue::Boolean(true)),
                (
                    "x-eio-meta-trace",
                    AMQPValue::FieldTable(table(vec![("a", lstr("b"))])),
                ),
                ("parentMessageId", AMQPValue::FieldArray(Default::default())),
                ("stepId", AMQPValue::Void),
            ]),
            outcome: Outcome::Written(1),
        },
    ]);
    cases
}

/// Publishes `content` with arbitrary AMQP header values to the listen queue.
async fn publish(rb: &Rabbit, content: &[u8], headers: FieldTable) {
    rb.publish_with(content, headers).await;
}

/// Record indexes reported by data messages until `n` are seen.
async fn data_indexes(rb: &Rabbit, n: usize, timeout: Duration) -> BTreeSet<u64> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = BTreeSet::new();
    while seen.len() < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(m) = rb.next("data", left).await else {
            break;
        };
        for r in m.decrypted()["body"]["records"].as_array().unwrap() {
            assert!(
                seen.insert(r["index"].as_u64().unwrap()),
                "index reported twice"
            );
        }
    }
    seen
}

fn assert_alive(worker: &mut Worker, after: &str) {
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "worker exited after {after}; logs:\n{}",
        worker.logs()
    );
}

/// Sends a good message and checks that its record is written and reported.
async fn good_message_goes_through(rb: &Rabbit, marker: &str) {
    publish(
        rb,
        &body(json!([{"key": marker, "value": marker}])),
        FieldTable::default(),
    )
    .await;
    let m = rb
        .next("data", T)
        .await
        .unwrap_or_else(|| panic!("no data for the good message after {marker:?}"));
    assert_eq!(m.decrypted()["body"]["records"][0]["key"], marker);
}

/// Sum over partitions of (high watermark): records on the topic.
fn topic_records(brokers: &str, topic: &str, partitions: i32) -> i64 {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(5))
                .unwrap()
                .1
        })
        .sum()
}

#[tokio::test]
async fn each_bad_input_gets_its_outcome_and_the_next_good_message_is_still_produced() {
    let brokers = kafka();
    let t = Topic::new("bad-input", 2);
    let topic = t.name.clone();
    let rb = Rabbit::setup("badinput").await;
    let (mut worker, _api) = start_step(
        &rb,
        "produce",
        json!({"brokers": brokers, "topic": topic, "deliveryTimeoutMs": 3000}),
        &[("ELASTICIO_DATA_RATE_LIMIT", "1000")],
    )
    .await;

    let mut expected_records = 0;
    for case in catalogue() {
        let name = case.name;
        let logs_before = worker.logs().len();
        publish(&rb, &case.content, case.headers).await;
        match &case.outcome {
            Outcome::SilentReject(log) => {
                let dead = rb
                    .next("dead", T)
                    .await
                    .unwrap_or_else(|| panic!("{name}: not rejected"));
                assert_eq!(
                    dead.data, case.content,
                    "{name}: the original is dead-lettered"
                );
                worker.wait_log(log, T).await;
                assert!(
                    worker.logs()[logs_before..].contains(log),
                    "{name}: log {log:?}"
                );
            }
            Outcome::Error(kind, fragments) | Outcome::PartialError(_, kind, fragments) => {
                if let Outcome::PartialError(n, ..) = &case.outcome {
                    assert_eq!(
                        data_indexes(&rb, *n, T).await.len(),
                        *n,
                        "{name}: data first"
                    );
                    expected_records += *n as i64;
                }
                let err = rb
                    .next("error", T)
                    .await
                    .unwrap_or_else(|| panic!("{name}: no error"));
                let e = error_of(&err);
                assert_eq!(e["name"], *kind, "{name}: {e}");
                let text = e["message"].as_str().unwrap();
                for f in fragments {
                    assert!(text.contains(f.as_str()), "{name}: {f:?} not in {text}");
                }
                assert!(rb.next("dead", T).await.is_some(), "{name}: rejected");
            }
            Outcome::Written(n) => {
                let seen = data_indexes(&rb, *n, T).await;
                assert_eq!(
                    seen,
                    (0..*n as u64).collect(),
                    "{name}: every record reported"
                );
                expected_records += *n as i64;
            }
        }
        // Nothing else came out of it.
        for kind in ["data", "error", "rebound", "dead"] {
            assert!(
                rb.next(kind, Duration::from_millis(50)).await.is_none(),
                "{name}: extra {kind}"
            );
        }
        assert_alive(&mut worker, name);
        good_message_goes_through(&rb, &format!("good after {name}")).await;
        expected_records += 1;
    }
    assert_eq!(rb.unsettled_inputs().await, 0, "every input settled");
    let on_kafka = tokio::task::spawn_blocking({
        let (b, t) = (brokers.clone(), topic.clone());
        move || topic_records(&b, &t, 2)
    })
    .await
    .unwrap();
    assert_eq!(
        on_kafka, expected_records,
        "exactly the accepted records are on Kafka"
    );
    // The non-UTF-8 key went out as raw bytes.
    let read = read_records(&brokers, &topic, 2, on_kafka as usize, T);
    assert!(
        read.iter()
            .any(|r| r.key.as_deref() == Some(&[0xff, 0xfe, 0xfd, 0x00][..]))
    );
    assert!(
        read.iter()
            .any(|r| r.key.as_deref() == Some(&b"{\"id\":1}"[..]))
    );
    finish(rb, worker).await;
}

/// Big inputs: 100 000 records in one message, a message over the 10 MiB outgoing limit, a record over
/// `messageMaxBytes`, and an output that would be over the outgoing limit.
#[tokio::test]
async fn huge_messages_are_written_or_fail_with_the_size_named_and_nothing_else_is_lost() {
    let brokers = kafka();
    let t = Topic::new("huge", 4);
    let topic = t.name.clone();
    let rb = Rabbit::setup("huge").await;
    let (mut worker, _api) = start_step(
        &rb,
        "produce",
        json!({"brokers": brokers, "topic": topic}),
        &[("ELASTICIO_DATA_RATE_LIMIT", "1000")],
    )
    .await;
    let mut expected = 0i64;

    // 100 000 records (keyless, so sticky partitioning spreads them in batches).
    let many: Vec<Value> = (0..100_000)
        .map(|i| json!({"value": format!("r{i}")}))
        .collect();
    publish(&rb, &body(Value::Array(many)), FieldTable::default()).await;
    let seen = data_indexes(&rb, 100_000, Duration::from_secs(120)).await;
    assert_eq!(seen.len(), 100_000, "every one of 100 000 records reported");
    expected += 100_000;
    assert_alive(&mut worker, "100 000 records");
    good_message_goes_through(&rb, "good after 100k").await;
    expected += 1;

    // A 12 MB message (over the 10 MiB outgoing limit) of records under messageMaxBytes: all written, the
    // output is small.
    let chunk = "v".repeat(900_000);
    let big: Vec<Value> = (0..12).map(|_| json!({"value": chunk})).collect();
    publish(&rb, &body(Value::Array(big)), FieldTable::default()).await;
    assert_eq!(
        data_indexes(&rb, 12, T).await.len(),
        12,
        "12 MB message written"
    );
    expected += 12;
    good_message_goes_through(&rb, "good after 12 MB").await;
    expected += 1;

    // One record over messageMaxBytes (1 MiB): that record fails with its size, the others are written.
    let over = "o".repeat(1_100_000);
    publish(
        &rb,
        &body(json!([{"value": "small"}, {"value": over}])),
        FieldTable::default(),
    )
    .await;
    assert_eq!(data_indexes(&rb, 1, T).await.len(), 1);
    expected += 1;
    let e = error_of(&rb.next("error", T).await.expect("size error"));
    assert_eq!(e["name"], "ProduceError");
    let text = e["message"].as_str().unwrap();
    assert!(
        // The value plus the default trace headers (exec, step and flow ids from the worker's settings and a
        // generated thread id: 106 bytes), which the size check counts.
        text.contains("\"size\":1100106")
            && text.contains("\"limit\":1048576")
            && text.contains("messageMaxBytes"),
        "{text}"
    );
    assert!(rb.next("dead", T).await.is_some());
    good_message_goes_through(&rb, "good after oversized record").await;
    expected += 1;

    // Keys are echoed in the output: 12 keys of 900 KB make an output over the 10 MiB limit. The records are
    // written, so their report must not become an error or a rebound: it is split over several data messages,
    // each a contiguous slice of the partition with its own baseOffset, each within the limit.
    let key = "k".repeat(900_000);
    let keyed: Vec<Value> = (0..12)
        .map(|i| json!({"key": format!("{key}{i}"), "value": "v", "partition": 0}))
        .collect();
    publish(&rb, &body(Value::Array(keyed)), FieldTable::default()).await;
    let mut reported = BTreeSet::new();
    let mut slices = 0;
    while reported.len() < 12 {
        let m = rb.next("data", T).await.expect("a slice of the output");
        assert!(
            m.data.len() <= 10_485_760,
            "within the outgoing limit: {}",
            m.data.len()
        );
        let b = m.decrypted()["body"].clone();
        let recs = b["records"].as_array().unwrap();
        let offsets: Vec<i64> = recs.iter().map(|r| r["offset"].as_i64().unwrap()).collect();
        assert_eq!(
            b["baseOffset"],
            offsets[0].to_string(),
            "each slice its own baseOffset"
        );
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "contiguous: {offsets:?}"
        );
        for r in recs {
            assert!(
                reported.insert(r["index"].as_u64().unwrap()),
                "index reported twice"
            );
            assert_eq!(
                r["key"].as_str().map(str::len),
                Some(900_000 + 1 + usize::from(r["index"].as_u64().unwrap() >= 10))
            );
        }
        slices += 1;
    }
    assert!(slices >= 2, "split: {slices} messages");
    expected += 12;
    assert!(
        rb.next("error", Duration::from_millis(500)).await.is_none(),
        "no error after a successful write"
    );
    assert_eq!(rb.count("dead").await, 0, "not rejected");
    assert_eq!(rb.count("rebound").await, 0, "not rebounded");
    good_message_goes_through(&rb, "good after big output").await;
    expected += 1;

    assert_alive(&mut worker, "huge messages");
    let on_kafka = tokio::task::spawn_blocking({
        let (b, t) = (brokers.clone(), topic.clone());
        move || topic_records(&b, &t, 4)
    })
    .await
    .unwrap();
    assert_eq!(on_kafka, expected);
    finish(rb, worker).await;
}

/// Garbled `ELASTICIO_*` values: the ones the worker cannot run with stop it before it connects (exit 1,
/// the variable named, its value not shown); garbled optional numbers and booleans fall back and it runs.
#[tokio::test]
async fn garbled_environment_values_stop_startup_with_the_variable_named_or_fall_back() {
    let rb = Rabbit::setup("garbled-env").await;
    let api = fake_api(json!({"brokers": "127.0.0.1:9092", "topic": "t"})).await;
    let base = rb.env(&api.uri(), "produce");
    let with = |changes: &[(&str, &str)]| {
        let mut env = base.clone();
        for (k, v) in changes {
            env.retain(|(name, _)| name != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        env
    };
    // (changes, fragments the error must contain, a value that must not appear)
    type Fatal<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>, Option<&'a str>);
    let fatal: Vec<Fatal> = vec![
        (
            vec![("ELASTICIO_MESSAGE_CRYPTO_IV", "IVSECRET-too-long-for-aes")],
            vec![
                "ELASTICIO_MESSAGE_CRYPTO_IV",
                "must be exactly 16 bytes, got 25",
            ],
            Some("IVSECRET"),
        ),
        (
            vec![("ELASTICIO_PROTOCOL_VERSION", "3")],
            vec!["ELASTICIO_PROTOCOL_VERSION", "must be 1 or 2, got 3"],
            None,
        ),
        (
            vec![("ELASTICIO_INPUT_FORMAT", "xml")],
            vec!["ELASTICIO_INPUT_FORMAT", "must be `default` or `error`"],
            None,
        ),
        (
            vec![("ELASTICIO_API_KEY", ""), ("ELASTICIO_AMQP_URI", "")],
            vec![
                "missing required environment variables: ",
                "ELASTICIO_API_KEY",
                "ELASTICIO_AMQP_URI",
            ],
            None,
        ),
    ];
    for (changes, fragments, hidden) in fatal {
        let mut w = Worker::spawn(&with(&changes));
        assert_eq!(w.exit_code(T).await, 1, "{changes:?}");
        let logs = w.logs();
        for f in fragments {
            assert!(logs.contains(f), "{changes:?}: {f:?} not in:\n{logs}");
        }
        if let Some(h) = hidden {
            assert!(!logs.contains(h), "{changes:?}: value shown in:\n{logs}");
        }
        assert!(logs.contains("nothing was started"), "{logs}");
    }
    assert!(
        api.received_requests().await.unwrap().is_empty(),
        "no API call before the settings are valid"
    );
    for kind in KINDS {
        assert_eq!(rb.count(kind).await, 0, "nothing published on {kind}");
    }

    // An AMQP URI that cannot be reached (password inside): exit 1 after the reconnect attempts, the
    // password never shown, nothing to publish a startup error through.
    let mut w = Worker::spawn(&with(&[
        (
            "ELASTICIO_AMQP_URI",
            "amqp://guest:AMQPSECRET@127.0.0.1:1/%2f",
        ),
        ("ELASTICIO_AMQP_RECONNECT_TIMEOUT", "10"),
    ]));
    assert_eq!(w.exit_code(T).await, 1);
    let logs = w.logs();
    assert!(logs.contains("Worker failed."), "{logs}");
    assert!(!logs.contains("AMQPSECRET"), "AMQP password in:\n{logs}");
    // Garbage instead of an URI.
    let mut w = Worker::spawn(&with(&[("ELASTICIO_AMQP_URI", "not a uri at all")]));
    assert_eq!(w.exit_code(T).await, 1);
    // An API URI that is not a URL: AMQP is open, so one startup error is published, then exit 1.
    let mut w = Worker::spawn(&with(&[("ELASTICIO_API_URI", "::not a url::")]));
    assert_eq!(w.exit_code(T).await, 1);
    let e = rb.next("error", T).await.expect("startup error");
    assert!(e.json().get("errorInput").is_none());
    assert!(!error_of(&e)["message"].as_str().unwrap().is_empty());

    // Garbled optional numbers and booleans: defaults, and the worker runs.
    let w = Worker::spawn(&with(&[
        ("ELASTICIO_RABBITMQ_PREFETCH_SAILOR", "lots"),
        ("ELASTICIO_REBOUND_LIMIT", "-5"),
        ("ELASTICIO_DATA_RATE_LIMIT", "1e3"),
        ("ELASTICIO_AMQP_PERSISTENT_MESSAGES", "nope"),
        ("ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT", "0x10"),
        ("ELASTICIO_SHUTDOWN_TIMEOUT", ""),
    ]));
    w.ready().await;
    assert_eq!(
        rb.consumer_prefetch("messages").await,
        vec![1],
        "the default prefetch applies to the worker's consumer"
    );
    finish(rb, w).await;
}

/// Broken step configuration from the platform: the worker starts (configuration is checked per message,
/// where the flow designer sees it), each message is rejected with a `ConfigurationError` naming the field,
/// and the worker stays up.
#[tokio::test]
async fn broken_component_config_is_a_configuration_error_per_message_and_the_worker_stays_up() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"brokers": "127.0.0.1:9092", "topic": "t", "username": "u", "password": "p", "mechanism": "GSSAPI"}),
            "mechanism",
            "unknown SASL mechanism `gssapi`; use scram-sha-512, scram-sha-256, plain, oauthbearer or aws-msk-iam",
        ),
        (
            json!({"brokers": "", "topic": "t"}),
            "brokers",
            "no broker given",
        ),
        (
            json!({"brokers": " , ", "topic": "t"}),
            "brokers",
            "no broker given",
        ),
        (json!({"topic": "t"}), "brokers", "no broker given"),
        (
            json!({"brokers": "127.0.0.1:99999", "topic": "t"}),
            "brokers",
            "`127.0.0.1:99999` has an invalid port `99999`; use a number from 1 to 65535",
        ),
        (
            json!({"brokers": "kafka:0", "topic": "t"}),
            "brokers",
            "has an invalid port `0`",
        ),
        (
            json!({"brokers": "kafka", "topic": "t"}),
            "brokers",
            "`kafka` has no port",
        ),
        (
            json!({"brokers": "127.0.0.1:9092"}),
            "topic",
            "no topic given",
        ),
        (
            json!({"brokers": "127.0.0.1:9092", "topic": "t", "messageMaxBytes": "big"}),
            "messageMaxBytes",
            "expected a non-negative integer, got `big`",
        ),
        (
            json!({"brokers": "127.0.0.1:9092", "topic": "t", "tls": "maybe"}),
            "tls",
            "expected true or false, got `maybe`",
        ),
        (
            json!({"brokers": "127.0.0.1:9092", "topic": "t", "clientCert": "-----BEGIN CERTIFICATE-----"}),
            "clientCert",
            "mutual TLS needs both a client certificate and its key",
        ),
    ];
    let rb = Rabbit::setup("badcfg").await;
    for (cfg, field, reason) in cases {
        let (mut w, _api) = start_step(&rb, "produce", cfg.clone(), &[]).await;
        for i in 0..2 {
            publish(
                &rb,
                &body(json!([{"value": format!("v{i}")}])),
                FieldTable::default(),
            )
            .await;
            let e = error_of(
                &rb.next("error", T)
                    .await
                    .unwrap_or_else(|| panic!("{cfg}: no error")),
            );
            assert_eq!(e["name"], "ConfigurationError", "{cfg}: {e}");
            let text = e["message"].as_str().unwrap();
            assert!(
                text.contains(&format!("invalid configuration field `{field}`"))
                    && text.contains(reason),
                "{cfg}: {text}"
            );
            assert!(rb.next("dead", T).await.is_some(), "{cfg}: rejected");
            assert_alive(&mut w, field);
        }
        assert_eq!(rb.count("data").await, 0);
        assert_eq!(w.stop().await, 0, "{cfg}");
    }
    rb.teardown().await;
}
