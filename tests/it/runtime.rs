//! The platform runtime on the wire (issue: runtime): a worker process against the real RabbitMQ, a fake
//! platform API and the shared Apache Kafka broker (the librdkafka mock cluster only where a test injects
//! broker latency).

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

const T: Duration = Duration::from_secs(20);

fn produce_cfg(brokers: &str, topic: &str) -> serde_json::Value {
    json!({ "brokers": brokers, "clientId": "it", "topic": topic, "_account": "acc1" })
}

#[tokio::test]
async fn data_message_carries_the_reference_headers_and_the_delivery_is_acked() {
    let topic = Topic::new("headers", 1);
    let rb = Rabbit::setup("headers").await;
    let (worker, api) = start_step(
        &rb,
        "produce",
        produce_cfg(&kafka(), &topic.name),
        &[
            (
                "ELASTICIO_ADDITIONAL_VARS_FOR_HEADERS",
                "ELASTICIO_EXTRA_ONE",
            ),
            ("ELASTICIO_EXTRA_ONE", "x1"),
        ],
    )
    .await;

    rb.publish_input(
        &json!({"id": "m1", "body": {"messages": [{"key": "k1", "value": "v1"}]}}),
        &[
            ("messageId", "in-msg-1"),
            ("parentMessageId", "parent-0"),
            ("threadId", "thread-1"),
            ("stepId", "step_0"),
            ("execId", "execX"),
            ("X-EIO-META-Foo", "bar"),
            ("reply_to", &rb.rk("reply")),
        ],
    )
    .await;
    let data = rb.next("data", T).await.expect("data message");
    let names: BTreeSet<String> = data.headers().keys().cloned().collect();
    let expected: BTreeSet<String> = [
        "stepId",
        "x-eio-meta-foo",
        "threadId",
        "messageId",
        "parentMessageId",
        "reply_to",
        "extraOne",
        "execId",
        "taskId",
        "workspaceId",
        "containerId",
        "userId",
        "compId",
        "function",
        "start",
        "end",
        "protocolVersion",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(names, expected);
    assert_eq!(data.header_str("stepId").as_deref(), Some("step_1"));
    assert_eq!(
        data.header_str("execId").as_deref(),
        Some("exec1"),
        "identity comes from the environment"
    );
    assert_eq!(data.header_str("taskId").as_deref(), Some("flow1"));
    assert_eq!(data.header_str("threadId").as_deref(), Some("thread-1"));
    assert_eq!(
        data.header_str("parentMessageId").as_deref(),
        Some("in-msg-1")
    );
    assert_eq!(data.header_str("x-eio-meta-foo").as_deref(), Some("bar"));
    assert_eq!(data.header_str("extraOne").as_deref(), Some("x1"));
    assert_eq!(data.header_str("function").as_deref(), Some("produce"));
    assert_eq!(data.header_int("protocolVersion"), Some(1));
    let message_id = data.header_str("messageId").unwrap();
    assert!(
        uuid::Uuid::parse_str(&message_id).is_ok(),
        "messageId is a UUID: {message_id}"
    );
    let (start, end) = (
        data.header_int("start").unwrap(),
        data.header_int("end").unwrap(),
    );
    assert!(
        start > 1_600_000_000_000 && end >= start,
        "start {start} end {end}"
    );
    assert_eq!(
        data.props.content_type().as_ref().map(|s| s.as_str()),
        Some("application/json")
    );
    assert_eq!(
        data.props.content_encoding().as_ref().map(|s| s.as_str()),
        Some("utf8")
    );
    assert_eq!(*data.props.delivery_mode(), Some(1));
    let body = data.decrypted();
    assert_eq!(body["body"]["topicName"], topic.name);
    assert_eq!(body["body"]["partition"], "0");
    assert_eq!(body["body"]["errorCode"], "0");
    assert_eq!(body["body"]["baseOffset"], "0");
    assert_eq!(body["body"]["records"][0]["key"], "k1");

    assert_eq!(rb.unsettled_inputs().await, 0, "acked");
    assert_eq!(rb.count("dead").await, 0, "not rejected");
    assert_eq!(rb.count("error").await, 0);
    assert_eq!(worker.stop().await, 0);
    let steps = api.received_requests().await.unwrap();
    assert_eq!(steps.len(), 1, "exactly one step call");
    let auth = steps[0]
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        auth, "Basic YXBpdXNlcjphcGlrZXktc2VjcmV0LXZhbHVl",
        "Basic apiuser:apikey-secret-value"
    );
    rb.teardown().await;
}

#[tokio::test]
async fn item_26_failed_execution_publishes_the_error_wrapper_and_rejects() {
    let topic = Topic::new("error", 1);
    let rb = Rabbit::setup("error").await;
    let (worker, _api) = start_step(&rb, "produce", produce_cfg(&kafka(), &topic.name), &[]).await;
    let content = rb
        .publish_input(
            &json!({"body": {"records": []}}),
            &[("messageId", "in-2"), ("reply_to", &rb.rk("reply"))],
        )
        .await;
    let err = rb.next("error", T).await.expect("error message");
    let body = err.json();
    assert_eq!(
        body["errorInput"].as_str().unwrap().as_bytes(),
        &content[..],
        "errorInput = incoming content"
    );
    let e = error_of(&err);
    assert_eq!(e["name"], "ValidationError");
    assert_eq!(e["stack"], "Not Available");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("\"messages\" is a required property"),
        "{e}"
    );
    assert!(err.header_int("end").is_some() && err.header_int("protocolVersion").is_none());
    assert_eq!(err.header_str("parentMessageId").as_deref(), Some("in-2"));
    // Copy to reply_to with the encrypted error only.
    let reply = rb.next("reply", T).await.expect("error reply");
    assert_eq!(reply.data, body["error"].as_str().unwrap().as_bytes());
    assert!(matches!(
        reply.headers().get("x-eio-error-response"),
        Some(lapin::types::AMQPValue::Boolean(true))
    ));
    let dead = rb
        .next("dead", T)
        .await
        .expect("rejected into the dead-letter queue");
    assert_eq!(dead.data, content);
    assert_eq!(rb.count("data").await, 0);
    finish(rb, worker).await;
}

#[tokio::test]
async fn item_14_undecryptable_and_non_json_input_is_rejected_with_nothing_published() {
    let topic = Topic::new("garbage", 1);
    let rb = Rabbit::setup("garbage").await;
    let (worker, _api) = start_step(&rb, "produce", produce_cfg(&kafka(), &topic.name), &[]).await;
    rb.publish_raw(b"this is not base64 ciphertext", &[("messageId", "bad-1")])
        .await;
    let not_json = crypto().encode(b"not json at all", 1);
    rb.publish_raw(&not_json, &[("messageId", "bad-2")]).await;
    let other_key = kafka_component::platform::crypto::Crypto::new("another password", IV).unwrap();
    rb.publish_raw(
        &other_key.encode(br#"{"body":{}}"#, 1),
        &[("messageId", "bad-3")],
    )
    .await;
    let dead = rb.take("dead", 3, T).await;
    assert_eq!(dead.len(), 3, "all three rejected");
    rb.assert_nothing_on(&KINDS, Duration::from_millis(300))
        .await;
    finish(rb, worker).await;
}

#[tokio::test]
async fn item_06_step_api_down_publishes_one_startup_error_and_exits_1() {
    let rb = Rabbit::setup("apidown").await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tasks/flow1/steps/step_1"))
        .and(header("connection", "Keep-Alive"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&api)
        .await;
    let mut worker = Worker::spawn(&rb.env(&api.uri(), "produce"));
    assert_eq!(worker.exit_code(T).await, 1);
    assert_eq!(
        api.received_requests().await.unwrap().len(),
        3,
        "3 attempts on 5xx"
    );
    let errs = rb.take("error", 2, Duration::from_secs(2)).await;
    assert_eq!(errs.len(), 1, "exactly one error message");
    let e = &errs[0];
    assert!(e.json().get("errorInput").is_none());
    assert!(error_of(e)["message"].as_str().unwrap().contains("503"));
    let names: BTreeSet<String> = e.headers().keys().cloned().collect();
    for h in [
        "execId",
        "taskId",
        "workspaceId",
        "containerId",
        "userId",
        "stepId",
        "compId",
        "function",
        "messageId",
    ] {
        assert!(names.contains(h), "startup error lacks {h}: {names:?}");
    }
    rb.teardown().await;
}

#[tokio::test]
async fn step_api_4xx_fails_at_once() {
    let rb = Rabbit::setup("api404").await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&api)
        .await;
    let mut worker = Worker::spawn(&rb.env(&api.uri(), "produce"));
    assert_eq!(worker.exit_code(T).await, 1);
    assert_eq!(
        api.received_requests().await.unwrap().len(),
        1,
        "no retry on 4xx"
    );
    assert_eq!(rb.take("error", 1, T).await.len(), 1);
    rb.teardown().await;
}

#[tokio::test]
async fn item_07_unknown_function_fails_startup_with_an_error_message() {
    let rb = Rabbit::setup("nofn").await;
    let api = fake_api(json!({})).await;
    let mut worker = Worker::spawn(&rb.env(&api.uri(), "nope"));
    assert_eq!(worker.exit_code(T).await, 1);
    let e = rb.next("error", T).await.expect("error");
    assert_eq!(
        error_of(&e)["message"],
        "Trigger or action \"nope\" is not found in component.json!"
    );
    rb.teardown().await;
}

#[tokio::test]
async fn missing_settings_are_all_named_and_nothing_connects() {
    let api = MockServer::start().await;
    let env = vec![
        ("ELASTICIO_FLOW_ID".to_owned(), "f".to_owned()),
        ("ELASTICIO_API_URI".to_owned(), api.uri()),
        ("ELASTICIO_STEP_ID".to_owned(), String::new()),
    ];
    let mut worker = Worker::spawn(&env);
    assert_eq!(worker.exit_code(T).await, 1);
    let logs = worker.logs();
    for name in [
        "ELASTICIO_STEP_ID",
        "ELASTICIO_EXEC_ID",
        "ELASTICIO_AMQP_URI",
        "ELASTICIO_MESSAGE_CRYPTO_IV",
        "ELASTICIO_API_KEY",
    ] {
        assert!(logs.contains(name), "{name} not named in:\n{logs}");
    }
    assert!(
        !logs.contains("ELASTICIO_FLOW_ID,"),
        "present variables are not reported"
    );
    assert!(
        api.received_requests().await.unwrap().is_empty(),
        "nothing contacted"
    );
}

#[tokio::test]
async fn item_11_missing_listen_queue_fails_startup() {
    let rb = Rabbit::setup("noqueue").await;
    let api = fake_api(json!({})).await;
    let mut env = rb.env(&api.uri(), "produce");
    for (k, v) in &mut env {
        if k == "ELASTICIO_LISTEN_MESSAGES_ON" {
            *v = rand_name("absent");
        }
    }
    let mut worker = Worker::spawn(&env);
    assert_eq!(worker.exit_code(T).await, 1);
    let e = rb.next("error", T).await.expect("startup error");
    assert!(
        error_of(&e)["message"]
            .as_str()
            .unwrap()
            .contains("cannot consume queue")
    );
    rb.teardown().await;
}

#[tokio::test]
async fn item_50_51_sigterm_finishes_the_in_flight_message_and_leaves_the_next_queued() {
    // Mock cluster: its injected 1.5 s round trip keeps the first message in flight when SIGTERM arrives.
    let mock = MockCluster::new(1).unwrap();
    let topic = rand_name("topic");
    mock.create_topic(&topic, 1, 1).unwrap();
    let rb = Rabbit::setup("sigterm").await;
    let (worker, _api) = start_step(
        &rb,
        "produce",
        produce_cfg(&mock.bootstrap_servers(), &topic),
        &[],
    )
    .await;
    // Warm the producer so the slow part is only the broker round trip below.
    rb.publish_input(
        &json!({"body": {"messages": [{"value": "warm"}]}}),
        &[("messageId", "w")],
    )
    .await;
    assert!(rb.next("data", T).await.is_some());
    mock.broker_round_trip_time(1, Duration::from_millis(1500))
        .unwrap();
    rb.publish_input(
        &json!({"body": {"messages": [{"value": "first"}]}}),
        &[("messageId", "m1")],
    )
    .await;
    rb.publish_input(
        &json!({"body": {"messages": [{"value": "second"}]}}),
        &[("messageId", "m2")],
    )
    .await;
    // Prefetch 1: the first message is in the worker's hands (its produce held by the 1.5 s round trip) once
    // only the second is ready in the queue.
    rb.wait_count("messages", 1, T).await;
    worker.signal("TERM");
    // The first signal was handled once the worker cancelled its consumer (intake stopped).
    rb.wait_consumers("messages", 0, T).await;
    worker.signal("TERM"); // a second signal changes nothing
    let logs_handle = worker.output.clone();
    let code = worker.stop().await;
    assert_eq!(code, 0, "logs:\n{}", logs_handle.lock().unwrap());
    let data = rb.take("data", 2, Duration::from_secs(2)).await;
    assert_eq!(data.len(), 1, "only the in-flight message produced output");
    assert_eq!(data[0].decrypted()["body"]["records"][0]["index"], 0);
    assert_eq!(
        rb.count("messages").await,
        1,
        "the second message stays queued"
    );
    assert_eq!(rb.count("dead").await, 0);
    rb.teardown().await;
}

/// At info level the worker writes no line per message (two JSON lines per message were a fifth of a one-record
/// Produce's cost): one summary line per 30 s and one at shutdown count what finished, rejected ones included.
/// A failed execution still logs its own line.
#[tokio::test]
async fn info_level_logs_a_summary_instead_of_lines_per_message() {
    let topic = Topic::new("summary", 1);
    let rb = Rabbit::setup("summary").await;
    let (worker, _api) = start_step(
        &rb,
        "produce",
        produce_cfg(&kafka(), &topic.name),
        &[("LOG_LEVEL", "info")],
    )
    .await;
    for (i, body) in [
        json!({"messages": [{"value": "a"}]}),
        json!({"messages": "not an array"}),
        json!({"messages": [{"value": "b"}]}),
    ]
    .into_iter()
    .enumerate()
    {
        rb.publish_input(
            &json!({"id": format!("m{i}"), "body": body}),
            &[("messageId", &format!("sum-{i}"))],
        )
        .await;
    }
    for kind in ["data", "error", "data"] {
        rb.next(kind, T)
            .await
            .unwrap_or_else(|| panic!("{kind} message"));
    }
    let output = std::sync::Arc::clone(&worker.output);
    assert_eq!(worker.stop().await, 0);
    let logs = output.lock().unwrap().clone();
    let lines = |needle: &str| -> Vec<serde_json::Value> {
        logs.lines()
            .filter(|l| l.contains(needle))
            .map(|l| serde_json::from_str(l).expect("JSON log line"))
            .collect()
    };
    assert!(lines("Message received.").is_empty(), "{logs}");
    assert!(lines("\"Message processed.\"").is_empty(), "{logs}");
    assert_eq!(lines("Execution failed.").len(), 1, "{logs}");
    let summary = lines("Messages processed.");
    assert_eq!(summary.len(), 1, "{logs}");
    assert_eq!(summary[0]["processed"], 3, "{logs}");
    assert_eq!(summary[0]["rejected"], 1, "{logs}");
    assert_eq!(summary[0]["level"], "INFO", "{logs}");
    rb.teardown().await;
}
