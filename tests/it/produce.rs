//! Produce action end to end (issue: produce): worker process, real RabbitMQ, the shared Apache Kafka broker
//! (`scripts/kafka.sh`: PLAINTEXT, SASL and SASL_SSL listeners). The librdkafka mock cluster stays only where
//! its fault injection is the point (request errors, a broker taken down, a topic error).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{Value, json};

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

fn cfg(brokers: &str, topic: &str) -> Value {
    json!({ "brokers": brokers, "clientId": "it-produce", "topic": topic })
}

fn out_validator() -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_str(include_str!("../../schemas/produce.out.json")).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// Starts a worker for `cfg` (data throttle 1000) and returns it ready.
async fn start(
    rb: &Rabbit,
    cfg: Value,
    extra_env: &[(&str, &str)],
) -> (Worker, wiremock::MockServer) {
    let env = [&[("ELASTICIO_DATA_RATE_LIMIT", "1000")], extra_env].concat();
    start_worker(rb, "produce", cfg, &env).await
}

#[tokio::test]
async fn keyed_records_land_where_the_output_says_with_keys_values_and_headers() {
    let topic = Topic::new("keyed", 4);
    let rb = Rabbit::setup("keyed").await;
    let before_ms = now_ms();
    let (worker, _api) = start(&rb, cfg(&kafka(), &topic.name), &[]).await;
    let messages: Vec<Value> = (0..20)
        .map(|i| {
            json!({
                "key": format!("key-{}", i % 7),
                // Keys deliberately out of alphabetical order: they must reach Kafka as the flow sent them.
                "value": if i % 2 == 0 { json!(format!("value-{i}")) } else { json!({"n": i, "amount": 25.5}) },
                "headers": [["trace", format!("t{i}")], ["trace", "again"]],
            })
        })
        .collect();
    rb.publish_input(
        &json!({"body": {"messages": messages}}),
        &[("messageId", "in-1")],
    )
    .await;

    // One data message per partition written, collected until every record is accounted for.
    let validator = out_validator();
    let mut by_index: BTreeMap<u64, (i32, i64, Value)> = BTreeMap::new();
    let (mut ids, mut partitions) = (HashSet::new(), HashSet::new());
    while by_index.len() < 20 {
        let m = rb.next("data", T).await.expect("data message");
        // Each partition's result its own message id, in the reference library's envelope (PROTOCOL.md Q10).
        assert!(
            ids.insert(assert_reference_envelope(&m)),
            "a distinct messageId per data message"
        );
        let body = m.decrypted()["body"].clone();
        assert!(
            partitions.insert(body["partition"].clone()),
            "one message per partition: {body}"
        );
        assert!(
            validator.is_valid(&body),
            "output matches schemas/produce.out.json: {body}"
        );
        assert_eq!(body["topicName"], topic.name);
        assert_eq!(body["errorCode"], "0");
        // A topic with the default CreateTime: the broker keeps the producer's timestamps and reports no
        // LogAppendTime (-1, as the Java producer's RecordMetadata does).
        assert_eq!(body["logAppendTime"], "-1", "{body}");
        for r in body["records"].as_array().unwrap() {
            let ts = r["timestamp"].as_i64().expect("CreateTime of each record");
            assert!(
                ts >= before_ms && ts <= now_ms(),
                "timestamp {ts} is the producer's clock: {body}"
            );
        }
        // A new topic: nothing deleted by retention yet.
        assert_eq!(body["logStartOffset"], "0");
        let partition: i32 = body["partition"].as_str().unwrap().parse().unwrap();
        let records = body["records"].as_array().unwrap();
        assert_eq!(
            body["baseOffset"].as_str().unwrap(),
            records[0]["offset"].to_string(),
            "baseOffset = first record's offset"
        );
        for r in records {
            by_index.insert(
                r["index"].as_u64().unwrap(),
                (partition, r["offset"].as_i64().unwrap(), r["key"].clone()),
            );
        }
    }
    let read = read_records(&kafka(), &topic.name, 4, 20, T);
    assert_eq!(
        read.len(),
        20,
        "all records readable by an independent consumer"
    );
    for rec in &read {
        let value = String::from_utf8(rec.value.clone().unwrap()).unwrap();
        let index: u64 = if let Some(i) = value.strip_prefix("value-") {
            i.parse().unwrap()
        } else {
            serde_json::from_str::<Value>(&value).unwrap()["n"]
                .as_u64()
                .unwrap()
        };
        let (partition, offset, key) = &by_index[&index];
        assert_eq!(
            (rec.partition, rec.offset),
            (*partition, *offset),
            "record {index} is where the output says"
        );
        assert_eq!(
            rec.key.as_deref(),
            Some(format!("key-{}", index % 7).as_bytes())
        );
        assert_eq!(key, &json!(format!("key-{}", index % 7)));
        // The input's headers in order, then the step's trace headers (`headers_*` tests).
        let input_headers: Vec<_> = rec
            .headers
            .iter()
            .filter(|(n, _)| !n.starts_with("x-eio-"))
            .cloned()
            .collect();
        assert_eq!(
            input_headers,
            vec![
                ("trace".to_owned(), format!("t{index}").into_bytes()),
                ("trace".to_owned(), b"again".to_vec())
            ]
        );
        if index % 2 == 1 {
            assert_eq!(
                value,
                format!("{{\"n\":{index},\"amount\":25.5}}"),
                "JSON values are sent as compact JSON, keys in the order the flow sent them"
            );
        }
    }
    let written_to: HashSet<i32> = read.iter().map(|r| r.partition).collect();
    assert!(
        written_to.len() >= 3,
        "the keys spread over 3 or more partitions: {written_to:?}"
    );
    assert_eq!(
        ids.len(),
        written_to.len(),
        "one data message, with its own messageId, per partition written"
    );
    // Same key → same partition.
    let mut key_partition: HashMap<Vec<u8>, i32> = HashMap::new();
    for rec in &read {
        let p = *key_partition
            .entry(rec.key.clone().unwrap())
            .or_insert(rec.partition);
        assert_eq!(p, rec.partition);
    }
    assert_eq!(
        rb.unsettled_inputs().await + u64::from(rb.count("dead").await),
        0,
        "acked"
    );
    finish(rb, worker).await;
}

/// Java's `Utils.murmur2` values from Apache Kafka's `UtilsTest.testMurmur2`.
const JAVA_MURMUR2: [(&str, i32); 6] = [
    ("21", -973_932_308),
    ("foobar", -790_332_482),
    ("a-little-bit-long-string", -985_981_536),
    ("a-little-bit-longer-string", -1_486_304_829),
    (
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
        -58_897_971,
    ),
    ("abc", 479_470_107),
];

#[tokio::test]
async fn same_key_lands_in_the_partition_java_would_pick() {
    let partitions = 12;
    let topic = Topic::new("murmur", partitions);
    let rb = Rabbit::setup("murmur").await;
    let (worker, _api) = start(&rb, cfg(&kafka(), &topic.name), &[]).await;
    let messages: Vec<Value> = JAVA_MURMUR2
        .iter()
        .map(|(k, _)| json!({"key": k, "value": k}))
        .collect();
    rb.publish_input(&json!({"body": {"messages": messages}}), &[])
        .await;
    let read = read_records(&kafka(), &topic.name, partitions, JAVA_MURMUR2.len(), T);
    assert_eq!(read.len(), JAVA_MURMUR2.len());
    for (key, hash) in JAVA_MURMUR2 {
        let expected = ((hash as u32) & 0x7fff_ffff) % partitions as u32;
        let rec = read
            .iter()
            .find(|r| r.key.as_deref() == Some(key.as_bytes()))
            .unwrap();
        assert_eq!(rec.partition as u32, expected, "key {key:?}");
    }
    finish(rb, worker).await;
}

#[tokio::test]
async fn oversized_record_fails_alone_and_the_others_are_written() {
    let topic = Topic::new("big", 1);
    let rb = Rabbit::setup("big").await;
    let mut c = cfg(&kafka(), &topic.name);
    c["messageMaxBytes"] = json!("2000");
    let (worker, _api) = start(&rb, c, &[]).await;
    let big = "x".repeat(5000);
    let content = rb
        .publish_input(&json!({"body": {"messages": [{"value": "small-0"}, {"key": "k", "value": big}, {"value": "small-2"}]}}), &[])
        .await;
    let data = rb
        .next("data", T)
        .await
        .expect("data for the written records");
    let body = data.decrypted()["body"].clone();
    let indexes: Vec<u64> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![0, 2]);
    let err = rb.next("error", T).await.expect("error");
    let text = error_of(&err)["message"].as_str().unwrap().to_owned();
    assert!(text.contains("indexes 1"), "{text}");
    assert!(
        text.contains("\"index\":1")
            // key + value (5001) + the default trace headers: exec, step and flow ids from the worker's
            // settings (18 + 19 + 18 bytes) and a generated thread id (15 + 36); the input has no messageId.
            && text.contains("\"size\":5107")
            && text.contains("\"limit\":2000"),
        "{text}"
    );
    let dead = rb.next("dead", T).await.expect("rejected");
    assert_eq!(dead.data, content);
    let read = read_records(&kafka(), &topic.name, 1, 3, Duration::from_secs(3));
    let values: Vec<Vec<u8>> = read.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, vec![b"small-0".to_vec(), b"small-2".to_vec()]);
    finish(rb, worker).await;
}

#[tokio::test]
async fn invalid_input_lists_every_problem_with_its_path() {
    let topic = Topic::new("invalid", 1);
    let rb = Rabbit::setup("invalid").await;
    let (worker, _api) = start(&rb, cfg(&kafka(), &topic.name), &[]).await;
    rb.publish_input(
        &json!({"body": {"messages": [{"key": "no value"}, {"value": "ok", "partition": "one", "headers": {"h": 5}}, {"value": {"base64": "%%%"}}]}}),
        &[],
    )
    .await;
    let errs = rb.take("error", 2, Duration::from_secs(5)).await;
    assert_eq!(errs.len(), 1, "one error message");
    let text = error_of(&errs[0])["message"].as_str().unwrap().to_owned();
    for path in [
        "/messages/0: \"value\" is a required property",
        "/messages/1/partition",
        "/messages/1/headers/h",
    ] {
        assert!(text.contains(path), "{path} missing in: {text}");
    }
    assert_eq!(rb.take("dead", 1, T).await.len(), 1);
    // No messages key at all.
    rb.publish_input(&json!({"body": {"records": []}}), &[])
        .await;
    let text = error_of(&rb.next("error", T).await.unwrap())["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains("/: \"messages\" is a required property"),
        "{text}"
    );
    // base64 problems surface after the schema passes.
    rb.publish_input(
        &json!({"body": {"messages": [{"value": {"base64": "%%%"}}]}}),
        &[],
    )
    .await;
    let text = error_of(&rb.next("error", T).await.unwrap())["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("/messages/0/value/base64"), "{text}");
    assert_eq!(rb.count("data").await, 0);
    assert_eq!(
        watermarks(&kafka(), &topic.name, 0),
        (0, 0),
        "nothing written"
    );
    finish(rb, worker).await;
}

#[tokio::test]
async fn transient_broker_errors_are_retried_and_delivered_once() {
    // Mock cluster: the injected Produce errors are the point.
    let mock = MockCluster::new(1).unwrap();
    let topic = rand_name("flaky");
    mock.create_topic(&topic, 1, 1).unwrap();
    let rb = Rabbit::setup("flaky").await;
    let (worker, _api) = start(&rb, cfg(&mock.bootstrap_servers(), &topic), &[]).await;
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    rb.publish_input(
        &json!({"body": {"messages": [{"value": "a"}, {"value": "b"}]}}),
        &[],
    )
    .await;
    let data = rb
        .next("data", T)
        .await
        .expect("delivered despite transient errors");
    assert_eq!(
        data.decrypted()["body"]["records"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let read = read_records(
        &mock.bootstrap_servers(),
        &topic,
        1,
        3,
        Duration::from_secs(3),
    );
    assert_eq!(read.len(), 2, "idempotent retries wrote each record once");
    assert_eq!(
        rb.count("rebound").await + rb.count("error").await + rb.count("dead").await,
        0
    );
    finish(rb, worker).await;
}

#[tokio::test]
async fn broker_down_past_the_delivery_timeout_rebounds_and_nothing_is_lost() {
    // Mock cluster: broker_down/up in process (the fault suite does the same to Apache Kafka with SIGKILL).
    let mock = MockCluster::new(1).unwrap();
    let topic = rand_name("down");
    mock.create_topic(&topic, 1, 1).unwrap();
    let rb = Rabbit::setup("down").await;
    let mut c = cfg(&mock.bootstrap_servers(), &topic);
    c["deliveryTimeoutMs"] = json!(1500);
    let (worker, _api) = start(&rb, c, &[]).await;
    // Warm up so the producer knows the topic, then take the broker away.
    rb.publish_input(&json!({"body": {"messages": [{"value": "warm"}]}}), &[])
        .await;
    assert!(rb.next("data", T).await.is_some());
    mock.broker_down(1).unwrap();
    let content = rb
        .publish_input(
            &json!({"body": {"messages": [{"value": "precious"}]}}),
            &[("messageId", "p1")],
        )
        .await;
    let rebound = rb
        .next("rebound", T)
        .await
        .expect("rebound instead of failure");
    assert_eq!(rebound.data, content, "original bytes");
    assert_eq!(rebound.header_int("reboundIteration"), Some(1));
    assert_eq!(
        rebound.props.expiration().as_ref().map(|s| s.as_str()),
        Some("15000")
    );
    assert!(
        rebound
            .header_str("reboundReason")
            .unwrap()
            .contains("could not be written")
    );
    assert_eq!(
        rebound.header_str("messageId").as_deref(),
        Some("p1"),
        "original headers kept"
    );
    assert_eq!(rb.unsettled_inputs().await, 0, "the input is settled");
    assert_eq!(
        rb.count("dead").await + rb.count("error").await,
        0,
        "rebound is not an error: acked"
    );
    // The platform's delay queue brings it back once the broker is up: it is written then.
    mock.broker_up(1).unwrap();
    rb.publish_raw(
        &rebound.data,
        &[("messageId", "p1"), ("reboundIteration", "1")],
    )
    .await;
    let data = rb.next("data", T).await.expect("written on the retry");
    assert_eq!(data.decrypted()["body"]["topicName"], topic);
    let read = read_records(
        &mock.bootstrap_servers(),
        &topic,
        1,
        3,
        Duration::from_secs(5),
    );
    assert!(
        read.iter().any(|r| r.value.as_deref() == Some(b"precious")),
        "nothing lost"
    );
    finish(rb, worker).await;
}

#[tokio::test]
async fn authorization_error_is_reported_and_rejected() {
    // Mock cluster: the shared broker has no authorizer; the injected TOPIC_AUTHORIZATION_FAILED is the point.
    let mock = MockCluster::new(1).unwrap();
    let topic = rand_name("denied");
    mock.create_topic(&topic, 1, 1).unwrap();
    let rb = Rabbit::setup("denied").await;
    let mut c = cfg(&mock.bootstrap_servers(), &topic);
    c["idempotence"] = json!("false");
    let (worker, _api) = start(&rb, c, &[]).await;
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    rb.publish_input(&json!({"body": {"messages": [{"value": "x"}]}}), &[])
        .await;
    let err = rb.next("error", T).await.expect("error");
    let text = error_of(&err)["message"].as_str().unwrap().to_owned();
    assert!(text.contains("not authorized to write to topic"), "{text}");
    assert!(rb.next("dead", T).await.is_some(), "rejected");
    assert_eq!(rb.count("rebound").await, 0);
    finish(rb, worker).await;
}

#[tokio::test]
async fn unknown_topic_is_a_clear_error() {
    // Mock cluster: the shared broker auto-creates topics (`auto.create.topics.enable`, Kafka's default), so
    // the metadata error UNKNOWN_TOPIC_OR_PART is injected.
    let mock = MockCluster::new(1).unwrap();
    let topic = rand_name("missing");
    mock.topic_error(
        &topic,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
    )
    .unwrap();
    let rb = Rabbit::setup("missing").await;
    let mut c = cfg(&mock.bootstrap_servers(), &topic);
    c["deliveryTimeoutMs"] = json!(3000);
    let (worker, _api) = start(&rb, c, &[]).await;
    rb.publish_input(&json!({"body": {"messages": [{"value": "x"}]}}), &[])
        .await;
    let err = rb.next("error", T).await.expect("error");
    let text = error_of(&err)["message"].as_str().unwrap().to_owned();
    assert!(
        text.contains(&format!("topic `{topic}` does not exist")),
        "{text}"
    );
    assert!(rb.next("dead", T).await.is_some());
    finish(rb, worker).await;
}

#[tokio::test]
async fn concurrent_executions_share_one_producer() {
    let topic = Topic::new("many", 3);
    let rb = Rabbit::setup("many").await;
    let (worker, _api) = start(
        &rb,
        cfg(&kafka(), &topic.name),
        &[("ELASTICIO_RABBITMQ_PREFETCH_SAILOR", "8")],
    )
    .await;
    for i in 0..40 {
        rb.publish_input(
            &json!({"body": {"messages": [{"key": format!("k{i}"), "value": format!("v{i}")}]}}),
            &[],
        )
        .await;
    }
    let data = rb.take("data", 40, T).await;
    assert_eq!(data.len(), 40);
    let read = read_records(&kafka(), &topic.name, 3, 40, T);
    assert_eq!(read.len(), 40);
    let logs = worker.logs();
    assert_eq!(
        logs.matches("Kafka producer created.").count(),
        1,
        "one producer for one connection config"
    );
    finish(rb, worker).await;
}

/// SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN on Kafka's SASL_PLAINTEXT listener: each writes; the same user with a
/// wrong password gets an `AuthenticationError` naming the user and the mechanism at once (not after the
/// delivery timeout), the message is rejected, and the password shows nowhere.
#[tokio::test]
async fn sasl_scram_512_256_and_plain_produce_and_a_wrong_password_on_each_is_an_authentication_error()
 {
    let brokers = kafka_var("KC_KAFKA_SCRAM_BROKERS");
    let topic = Topic::new("sasl", 1);
    let writes = SASL_USERS.map(|(user, pass, mech, _)| {
        let (brokers, topic) = (brokers.clone(), topic.name.clone());
        async move {
            let rb = Rabbit::setup("sasl").await;
            let c = json!({"brokers": brokers, "username": user, "password": pass, "mechanism": mech, "topic": topic});
            let (worker, _api) = start(&rb, c, &[]).await;
            rb.publish_input(
                &json!({"body": {"messages": [{"key": user, "value": format!("via {mech}")}]}}),
                &[],
            )
            .await;
            let data = rb
                .next("data", T)
                .await
                .unwrap_or_else(|| panic!("{mech}: no data; logs:\n{}", worker.logs()));
            assert_eq!(data.decrypted()["body"]["errorCode"], "0", "{mech}");
            assert_eq!(rb.count("error").await + rb.count("dead").await, 0, "{mech}");
            finish(rb, worker).await;
        }
    });
    futures_util::future::join_all(writes).await;
    let read = read_records(&kafka(), &topic.name, 1, 3, T);
    let mut got: Vec<(Vec<u8>, Vec<u8>)> = read
        .into_iter()
        .map(|r| (r.key.unwrap(), r.value.unwrap()))
        .collect();
    got.sort();
    let mut want: Vec<(Vec<u8>, Vec<u8>)> = SASL_USERS
        .iter()
        .map(|(user, _, mech, _)| (user.as_bytes().to_vec(), format!("via {mech}").into_bytes()))
        .collect();
    want.sort();
    assert_eq!(got, want, "one record per mechanism, on the topic");

    let secret = "definitely-wrong-password-123";
    let refused = SASL_USERS.map(|(user, _, mech, librdkafka_name)| {
        let (brokers, topic) = (brokers.clone(), topic.name.clone());
        async move {
            let rb = Rabbit::setup("badpass").await;
            let c = json!({"brokers": brokers, "username": user, "password": secret, "mechanism": mech,
                           "topic": topic, "deliveryTimeoutMs": 60000});
            let (worker, _api) = start(&rb, c, &[]).await;
            let started = std::time::Instant::now();
            let content = rb
                .publish_input(&json!({"body": {"messages": [{"value": "never"}]}}), &[])
                .await;
            let err = rb
                .next("error", T)
                .await
                .unwrap_or_else(|| panic!("{mech}: no authentication error; logs:\n{}", worker.logs()));
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{mech}: reported before the 60 s delivery timeout ({:?})",
                started.elapsed()
            );
            let text = authentication_error(&err, user, librdkafka_name);
            assert!(
                text.ends_with("Check the username, password and mechanism of the credentials."),
                "{mech}: {text}"
            );
            assert!(!text.contains(secret));
            let dead = rb.next("dead", T).await.expect("rejected");
            assert_eq!(dead.data, content, "{mech}: the original is dead-lettered");
            assert_eq!(rb.count("data").await + rb.count("rebound").await, 0, "{mech}");
            assert!(!worker.logs().contains(secret), "{mech}: password never logged");
            finish(rb, worker).await;
            text
        }
    });
    for text in futures_util::future::join_all(refused).await {
        eprintln!("wrong password: {text}");
    }
    assert_eq!(
        watermarks(&kafka(), &topic.name, 0).1,
        3,
        "nothing written with a wrong password"
    );
}

/// 100 000 one-byte records to a one-partition topic, with an outgoing limit far below the report's size: the
/// records are written once, and their report arrives as several data messages, each within the limit, each a
/// contiguous slice of offsets with its own `baseOffset` and its own `messageId`; no error, no rebound, acked.
#[tokio::test]
async fn a_report_larger_than_the_outgoing_limit_is_split_never_an_error_after_the_write() {
    const N: u64 = 100_000;
    const LIMIT: usize = 256 * 1024;
    let topic = Topic::new("split", 1);
    let rb = Rabbit::setup("psplit").await;
    let (worker, _api) = start(
        &rb,
        cfg(&kafka(), &topic.name),
        &[
            ("ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT", &LIMIT.to_string()),
            ("ELASTICIO_DATA_RATE_LIMIT", "100000"),
        ],
    )
    .await;
    let messages: Vec<Value> = (0..N).map(|_| json!({"value": "x"})).collect();
    rb.publish_input(
        &json!({"body": {"messages": messages}}),
        &[("messageId", "in-split")],
    )
    .await;
    let mut next_offset = 0i64;
    let mut next_index = 0u64;
    let mut ids = HashSet::new();
    while next_index < N {
        let m = rb
            .next("data", Duration::from_secs(60))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "report stopped at index {next_index}; logs:\n{}",
                    worker.logs()
                )
            });
        assert!(
            m.data.len() <= LIMIT,
            "a slice of {} bytes, over the limit",
            m.data.len()
        );
        assert!(
            ids.insert(assert_reference_envelope(&m)),
            "its own messageId"
        );
        let b = m.decrypted()["body"].clone();
        assert_eq!(
            (b["partition"].as_str(), b["errorCode"].as_str()),
            (Some("0"), Some("0"))
        );
        assert_eq!(
            b["baseOffset"],
            next_offset.to_string(),
            "each slice starts where the last ended"
        );
        for r in b["records"].as_array().unwrap() {
            assert_eq!(
                (r["index"].as_u64(), r["offset"].as_i64()),
                (Some(next_index), Some(next_offset))
            );
            next_index += 1;
            next_offset += 1;
        }
    }
    assert!(ids.len() > 1, "split over several messages");
    assert_eq!(
        watermarks(&kafka(), &topic.name, 0),
        (0, N as i64),
        "each record written once"
    );
    assert!(
        rb.next("error", Duration::from_millis(500)).await.is_none(),
        "no error after a successful write"
    );
    assert_eq!(
        rb.unsettled_inputs().await
            + u64::from(rb.count("dead").await)
            + u64::from(rb.count("rebound").await),
        0,
        "acked: not rejected, not rebounded"
    );
    assert!(
        rb.next("data", Duration::from_millis(300)).await.is_none(),
        "nothing reported twice"
    );
    finish(rb, worker).await;
}

/// Header name → value of a record read back (a name the step adds appears once).
fn header_map(rec: &KafkaRecord) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (name, value) in &rec.headers {
        let value = String::from_utf8(value.clone()).unwrap();
        assert!(
            map.insert(name.clone(), value).is_none(),
            "`{name}` written twice: {rec:?}"
        );
    }
    map
}

#[tokio::test]
async fn headers_static_and_trace_on_every_record_and_the_input_ones_win() {
    let topic = Topic::new("headers", 1);
    let rb = Rabbit::setup("headers").await;
    let mut c = cfg(&kafka(), &topic.name);
    // As a form's text area sends it: the JSON text of an object. `traceHeaders` is left at its default (on).
    c["staticHeaders"] = json!(r#"{"source": "crm", "region": "eu"}"#);
    let (worker, _api) = start(&rb, c, &[]).await;
    rb.publish_input(
        &json!({"body": {"messages": [
            {"value": "plain"},
            {"value": "own", "headers": {"source": "input", "x-eio-step-id": "from-input"}}
        ]}}),
        &[("messageId", "in-42"), ("threadId", "thread-7")],
    )
    .await;
    rb.next("data", T).await.expect("data");
    let read = read_records(&kafka(), &topic.name, 1, 2, T);
    assert_eq!(read.len(), 2);
    let trace = [
        ("x-eio-exec-id", "exec1"),
        ("x-eio-message-id", "in-42"),
        ("x-eio-step-id", "step_1"),
        ("x-eio-flow-id", "flow1"),
        ("x-eio-thread-id", "thread-7"),
    ];
    let want = |extra: &[(&str, &str)]| -> BTreeMap<String, String> {
        trace
            .iter()
            .chain(extra)
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        header_map(&read[0]),
        want(&[("source", "crm"), ("region", "eu")])
    );
    // The input's `source` and `x-eio-step-id` win; the record carries them once.
    assert_eq!(
        header_map(&read[1]),
        want(&[
            ("source", "input"),
            ("region", "eu"),
            ("x-eio-step-id", "from-input")
        ])
    );
    assert_eq!(
        rb.unsettled_inputs().await + u64::from(rb.count("dead").await),
        0
    );
    finish(rb, worker).await;
}

#[tokio::test]
async fn headers_trace_off_adds_none_and_added_headers_count_toward_the_record_size() {
    let topic = Topic::new("headers-off", 1);
    let rb = Rabbit::setup("headers-off").await;
    let mut c = cfg(&kafka(), &topic.name);
    c["traceHeaders"] = json!("false");
    c["messageMaxBytes"] = json!("1000");
    c["staticHeaders"] = json!({ "pad": "p".repeat(100) });
    let (worker, _api) = start(&rb, c, &[]).await;
    // 950 bytes of value fit the limit alone, not with the static header (950 + 3 + 100 = 1053).
    let content = rb
        .publish_input(
            &json!({"body": {"messages": [{"value": "small"}, {"value": "v".repeat(950)}]}}),
            &[("messageId", "in-43")],
        )
        .await;
    let data = rb.next("data", T).await.expect("data for the small record");
    let indexes: Vec<u64> = data.decrypted()["body"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![0]);
    let err = rb.next("error", T).await.expect("error");
    let text = error_of(&err)["message"].as_str().unwrap().to_owned();
    assert!(
        text.contains("\"index\":1")
            && text.contains("\"size\":1053")
            && text.contains("\"limit\":1000"),
        "{text}"
    );
    assert_eq!(rb.next("dead", T).await.expect("rejected").data, content);
    let read = read_records(&kafka(), &topic.name, 1, 2, Duration::from_secs(3));
    assert_eq!(read.len(), 1);
    assert_eq!(
        header_map(&read[0]),
        BTreeMap::from([("pad".to_owned(), "p".repeat(100))]),
        "no trace headers"
    );
    finish(rb, worker).await;
}

#[tokio::test]
async fn headers_invalid_static_headers_are_a_configuration_error_naming_the_field() {
    let topic = Topic::new("headers-bad", 1);
    let rb = Rabbit::setup("headers-bad").await;
    let mut c = cfg(&kafka(), &topic.name);
    c["staticHeaders"] = json!({"n": 1});
    let (worker, _api) = start(&rb, c, &[]).await;
    rb.publish_input(&json!({"body": {"messages": [{"value": "x"}]}}), &[])
        .await;
    let err = rb.next("error", T).await.expect("error");
    let text = error_of(&err)["message"].as_str().unwrap().to_owned();
    assert!(
        text.contains("`staticHeaders`")
            && text.contains("the value of header `n` must be a string"),
        "{text}"
    );
    rb.next("dead", T).await.expect("rejected");
    assert!(read_records(&kafka(), &topic.name, 1, 1, Duration::from_secs(2)).is_empty());
    finish(rb, worker).await;
}
