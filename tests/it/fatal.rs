//! A producer that hit a librdkafka fatal error is replaced, and the error says whose fault it is (issue 15).
//! Runs the Produce action in process against librdkafka's mock cluster, whose request-error injection makes
//! an idempotent producer fatal (librdkafka 2.12: `rdkafka_request.c` raises a fatal error for an
//! out-of-order sequence on the oldest in-flight request, `rdkafka_idempotence.c` for a refused
//! InitProducerId). The emitter is the `exec` runner's, collecting what the action emits.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_component::actions::produce::ProduceAction;
use kafka_component::contract::{
    Action, Emit, Emitter, Execution, ExecutionIds, Fatal, Fault, Function, FunctionError,
};
use kafka_component::local::{LocalEmitter, LocalEvent};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::harness::{rand_name, watermarks};

/// Runs one Produce execution of `records` values; returns its outcome and what it emitted.
async fn produce(
    action: &ProduceAction,
    cfg: &Value,
    values: &[&str],
) -> (Result<(), FunctionError>, Vec<LocalEvent>) {
    let events: Arc<Mutex<Vec<LocalEvent>>> = Arc::default();
    let sink = Arc::clone(&events);
    let local = LocalEmitter::new(move |e| sink.lock().unwrap().push(e));
    let token = CancellationToken::new();
    let messages: Vec<Value> = values.iter().map(|v| json!({ "value": v })).collect();
    let exec = Execution {
        msg: json!({ "body": { "messages": messages }, "headers": {} }),
        text: None,
        cfg: cfg.clone(),
        snapshot: json!({}),
        variables: json!({}),
        emitter: Emitter::new(Arc::new(local) as Arc<dyn Emit>),
        shutdown: token.clone(),
        fatal: Fatal::new(token),
        ids: ExecutionIds::default(),
    };
    let outcome = tokio::time::timeout(Duration::from_secs(30), action.process(exec))
        .await
        .expect("the Produce action hangs");
    let emitted = std::mem::take(&mut *events.lock().unwrap());
    (outcome, emitted)
}

fn config(mock: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>, topic: &str) -> Value {
    json!({
        "brokers": mock.bootstrap_servers(),
        "topic": topic,
        "clientId": "fatal-test",
        "deliveryTimeoutMs": 5000,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_producer_is_replaced_and_the_message_comes_back() {
    let mock = MockCluster::new(1).unwrap();
    let topic = rand_name("fatal-oos");
    mock.create_topic(&topic, 1, 1).unwrap();
    let cfg = config(&mock, &topic);
    let action = ProduceAction::default();
    // One out-of-order sequence on the first ProduceRequest: the idempotent producer becomes fatal.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    let (outcome, emitted) = produce(&action, &cfg, &["first"]).await;
    let error = outcome.expect_err("the record was not written");
    assert_eq!(
        (error.fault, error.action),
        (Fault::Remote, Action::Rebound),
        "not the user's fault, the message comes back: {error:?}"
    );
    assert!(
        error.message.contains("sequence desynchronization"),
        "{}",
        error.message
    );
    assert!(
        emitted.is_empty(),
        "nothing is reported as written: {emitted:?}"
    );
    // The next messages get a new producer and are written; the fatal one would refuse every record.
    for (i, value) in ["second", "third"].into_iter().enumerate() {
        let (outcome, emitted) = produce(&action, &cfg, &[value]).await;
        outcome.unwrap_or_else(|e| panic!("message {value} after the fatal error: {e:?}"));
        assert_eq!(emitted.len(), 1, "{emitted:?}");
        assert_eq!(emitted[0].event, "data");
        let out = &emitted[0].message["body"];
        assert_eq!(out["baseOffset"], json!(i.to_string()), "{out}");
    }
    let (low, high) = tokio::task::spawn_blocking({
        let (b, t) = (mock.bootstrap_servers(), topic.clone());
        move || watermarks(&b, &t, 0)
    })
    .await
    .unwrap();
    assert_eq!((low, high), (0, 2), "the failed attempt stored nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fatal_authorization_error_is_the_users_and_names_the_fix() {
    let mock = MockCluster::new(1).unwrap();
    let topic = rand_name("fatal-auth");
    mock.create_topic(&topic, 1, 1).unwrap();
    let cfg = config(&mock, &topic);
    let action = ProduceAction::default();
    // The cluster refuses the idempotent producer id: the user lacks IDEMPOTENT_WRITE.
    mock.request_errors(
        RDKafkaApiKey::InitProducerId,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED],
    );
    let (outcome, emitted) = produce(&action, &cfg, &["first"]).await;
    let error = outcome.expect_err("the record was not written");
    assert_eq!(
        (error.fault, error.action),
        (Fault::Configuration, Action::Reject),
        "{error:?}"
    );
    assert_eq!(error.name, "ProduceError");
    assert!(
        error.message.contains("IDEMPOTENT_WRITE"),
        "names the permission, not a purged queue: {}",
        error.message
    );
    assert!(emitted.is_empty(), "{emitted:?}");
    // Replaced: once the cluster grants it (the injected error is used up), the next message is written.
    let (outcome, emitted) = produce(&action, &cfg, &["second"]).await;
    outcome.unwrap_or_else(|e| panic!("after the fatal error: {e:?}"));
    assert_eq!(emitted.len(), 1, "{emitted:?}");
}

/// After a broker failover librdkafka may retry a request the old leader had already written; the new leader
/// answers DUPLICATE_SEQUENCE_NUMBER and librdkafka reports the records delivered at offset -1001 (seen in the
/// rolling-restart fault case). The output must say "unknown" (`null`), not claim offset -1001, and the
/// message is done: no error, no rebound (which would write the records again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_confirmed_without_its_offset_is_reported_as_unknown() {
    let mock = MockCluster::new(1).unwrap();
    let topic = rand_name("dupseq");
    mock.create_topic(&topic, 1, 1).unwrap();
    let cfg = config(&mock, &topic);
    let action = ProduceAction::default();
    // A known offset first, so that the unknown one is not mistaken for an empty partition.
    let (outcome, emitted) = produce(&action, &cfg, &["first"]).await;
    outcome.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(emitted[0].message["body"]["records"][0]["offset"], json!(0));
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_DUPLICATE_SEQUENCE_NUMBER],
    );
    let (outcome, emitted) = produce(&action, &cfg, &["second"]).await;
    outcome.unwrap_or_else(|e| panic!("a confirmed write is not a failure: {e:?}"));
    assert_eq!(emitted.len(), 1, "{emitted:?}");
    assert_eq!(emitted[0].event, "data");
    let out = &emitted[0].message["body"];
    assert_eq!(
        (&out["records"][0]["index"], &out["records"][0]["offset"]),
        (&json!(0), &Value::Null),
        "never -1001: {out}"
    );
    assert_eq!(out["baseOffset"], json!("-1"), "{out}");
    assert_eq!(out["partition"], json!("0"), "{out}");
}
