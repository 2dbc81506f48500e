//! Consume trigger (issue 17): pattern (`^…`) subscriptions and the KIP-848 consumer group protocol, end to end
//! on the shared Apache Kafka 4.4 broker (`scripts/kafka.sh`). Every test names its own topics and group.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

fn cfg(brokers: &str, topic: &str, group: &str) -> Value {
    json!({ "brokers": brokers, "clientId": "it-subscribe", "topic": topic, "groupId": group, "sessionTimeoutMs": "6000" })
}

/// (topic, value) of every single-record data message.
fn topic_values(msgs: &[Got]) -> Vec<(String, String)> {
    msgs.iter()
        .map(|m| {
            let b = m.decrypted()["body"].clone();
            (
                b["topic"].as_str().unwrap().to_owned(),
                b["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn count_by_topic(msgs: &[Got]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for (t, _) in topic_values(msgs) {
        *by.entry(t).or_insert(0) += 1;
    }
    by
}

/// A pattern plus a plain name in one `topic` list: the existing matching topics and the named one are read,
/// a matching topic created while the member runs is found (within `patternRefreshMs`) and read, and a topic
/// that does not match is not.
#[tokio::test]
async fn a_pattern_consumes_matching_topics_including_one_created_mid_run() {
    pattern_case("classic").await;
}

/// The same with the KIP-848 protocol (the broker resolves the pattern).
#[tokio::test]
async fn a_pattern_with_the_consumer_protocol_picks_up_a_topic_created_mid_run() {
    pattern_case("consumer").await;
}

async fn pattern_case(protocol: &str) {
    let brokers = kafka();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let a = Topic::new(&format!("pat{tag}-a"), 2);
    let b = Topic::new(&format!("pat{tag}-b"), 1);
    let named = Topic::new("patnamed", 1);
    let other = Topic::new(&format!("pat{tag}x"), 1);
    for (t, p, n) in [(&a, 2, 20), (&b, 1, 10), (&named, 1, 5), (&other, 1, 7)] {
        produce_records(&brokers, &t.name, p, n, 4);
    }
    let group = Group::new();
    let rb = Rabbit::setup("pattern").await;
    let mut c = cfg(
        &brokers,
        &format!("^kc-test-pat{tag}-.*, {}", named.name),
        &group,
    );
    c["patternRefreshMs"] = json!("1000");
    c["groupProtocol"] = json!(protocol);
    let (worker, _api) = start_worker(&rb, "consume", c, &[]).await;
    let msgs = rb.take("data", 35, T).await;
    let by = count_by_topic(&msgs);
    let want: BTreeMap<String, usize> = [(&a, 20), (&b, 10), (&named, 5)]
        .into_iter()
        .map(|(t, n)| (t.name.clone(), n))
        .collect();
    assert_eq!(by, want, "existing matching topics and the named one");
    let late = Topic::new(&format!("pat{tag}-late"), 3);
    produce_records(&brokers, &late.name, 3, 12, 4);
    let msgs = rb.take("data", 12, Duration::from_secs(45)).await;
    assert_eq!(
        count_by_topic(&msgs),
        BTreeMap::from([(late.name.clone(), 12)]),
        "the topic created mid-run, every record once"
    );
    let values: HashSet<(String, String)> = topic_values(&msgs).into_iter().collect();
    assert_eq!(values.len(), 12);
    // Nothing else arrives: the non-matching topic's 7 records stay unread (waiting out the window is the check).
    rb.assert_nothing_on(&["data", "error"], Duration::from_secs(2))
        .await;
    assert_eq!(
        committed(&brokers, &group, &other.name, 1),
        BTreeMap::from([(0, -1)]),
        "the group never read the topic that does not match"
    );
    finish(rb, worker).await;
}

/// librdkafka never reports a pattern it cannot compile (it matches nothing, silently): the trigger checks it
/// and answers with a `ConfigurationError` naming `topic`.
#[tokio::test]
async fn an_invalid_pattern_is_a_configuration_error_naming_the_topic_field() {
    let brokers = kafka();
    let group = Group::new();
    let rb = Rabbit::setup("badpattern").await;
    let c = cfg(&brokers, "ok-name, ^orders-(", &group);
    let (worker, _api) = start_worker(&rb, "consume", c, &[]).await;
    let e = error_of(&rb.next("error", T).await.expect("error published"));
    assert_eq!(e["name"], "ConfigurationError", "{e}");
    let text = e["message"].as_str().unwrap();
    assert!(
        text.contains("invalid configuration field `topic`")
            && text.contains("`^orders-(` is not a valid pattern"),
        "{text}"
    );
    assert_eq!(rb.count("data").await, 0);
    finish(rb, worker).await;
}

/// `groupProtocol` `consumer` (KIP-848) on Apache Kafka 4.4: every record once, offsets committed, and two
/// workers of one group split the partitions (as the members' own assignment logs and the records show).
#[tokio::test]
async fn the_consumer_group_protocol_consumes_once_commits_and_splits_partitions() {
    let brokers = kafka();
    let t = Topic::new("kip848", 4);
    let (topic, group) = (t.name.clone(), Group::new());
    produce_records(&brokers, &topic, 4, 200, 6);
    let rb = Rabbit::setup("kip848").await;
    let mut c = cfg(&brokers, &topic, &group);
    c["groupProtocol"] = json!("consumer");
    let api = fake_api(c).await;
    let env = step_env(
        &rb,
        &api.uri(),
        "consume",
        &[("ELASTICIO_DATA_RATE_LIMIT", "100000")],
    );
    let w1 = spawn_ready(&env).await;
    rb.publish_input(&json!({"body": {}}), &[("messageId", "tick-1")])
        .await;
    let msgs = rb.take("data", 200, Duration::from_secs(60)).await;
    let values: HashSet<(String, String)> = topic_values(&msgs).into_iter().collect();
    assert_eq!(values.len(), 200, "every record once");
    wait_committed(&brokers, &group, &topic, vec![50, 50, 50, 50]).await;
    // A second worker joins the group: the broker gives it some of the four partitions.
    let w2 = spawn_ready(&env).await;
    poll_every(Duration::from_millis(300), T, || async {
        rb.publish_input(&json!({"body": {}}), &[]).await;
        (w2.logs().contains("Partitions assigned")).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the second member got partitions; logs:\n{}", w2.logs()));
    // The coordinator's view: one consumer-protocol group (DescribeGroups, the classic API, does not know it),
    // stable, two members that own the four partitions between them, each some.
    let last = std::sync::Mutex::new(None);
    wait_until_or(
        T,
        || async {
            let (b, g) = (brokers.clone(), group.to_string());
            let view = tokio::task::spawn_blocking(move || describe_consumer_group(&b, &g))
                .await
                .unwrap();
            *last.lock().unwrap() = view.clone();
            let (state, owned) = view?;
            (state == "Stable" && owned.len() == 2 && owned.iter().all(|n| *n > 0) && owned.iter().sum::<usize>() == 4)
                .then_some(())
        },
        || format!("a stable consumer-protocol group of two members owning 4 partitions; last seen {:?}", last.lock().unwrap()),
    )
    .await;
    assert_eq!(
        describe_group(&brokers, &group).map(|g| g.state).as_deref(),
        Some("Dead"),
        "not a classic group"
    );
    produce_records(&brokers, &topic, 4, 200, 7);
    let msgs = rb.take("data", 200, Duration::from_secs(60)).await;
    let values: HashSet<(String, String)> = topic_values(&msgs).into_iter().collect();
    assert_eq!(values.len(), 200, "the second 200 records once");
    rb.assert_nothing_on(&["data"], Duration::from_millis(800))
        .await;
    wait_committed(&brokers, &group, &topic, vec![100, 100, 100, 100]).await;
    assert_eq!(w1.stop().await, 0);
    finish(rb, w2).await;
}

async fn wait_committed(brokers: &str, group: &str, topic: &str, want: Vec<i64>) {
    let last = std::sync::Mutex::new(Vec::new());
    wait_until_or(
        T,
        || async {
            let (b, g, t) = (brokers.to_owned(), group.to_owned(), topic.to_owned());
            let got: Vec<i64> = tokio::task::spawn_blocking(move || committed(&b, &g, &t, 4))
                .await
                .unwrap()
                .into_values()
                .collect();
            *last.lock().unwrap() = got.clone();
            (got == want).then_some(())
        },
        || {
            format!(
                "committed offsets {want:?}; last seen {:?}",
                last.lock().unwrap()
            )
        },
    )
    .await;
}

/// A broker without the consumer group protocol (`group.coordinator.rebalance.protocols=classic`): the member
/// can never join, so the worker reports a `ConfigurationError` naming `groupProtocol` and exits 1.
#[tokio::test]
async fn the_consumer_protocol_on_a_broker_without_it_is_a_configuration_error() {
    let broker = tokio::task::spawn_blocking(|| {
        KafkaBroker::start(&["group.coordinator.rebalance.protocols=classic"])
    })
    .await
    .unwrap();
    let brokers = broker.brokers();
    let t = Topic::on(&brokers, "classic-only", 1, &[]);
    produce_records(&brokers, &t.name, 1, 3, 1);
    let rb = Rabbit::setup("classic-only").await;
    let mut c = cfg(&brokers, &t.name, "kc-test-classic-only");
    c["groupProtocol"] = json!("consumer");
    let (mut worker, _api) = start_worker(&rb, "consume", c, &[]).await;
    assert_eq!(
        worker.exit_code(T).await,
        1,
        "exits non-zero; logs:\n{}",
        worker.logs()
    );
    let e = error_of(&rb.next("error", T).await.expect("error published"));
    assert_eq!(e["name"], "ConfigurationError", "{e}");
    let text = e["message"].as_str().unwrap();

    assert!(
        text.contains("invalid configuration field `groupProtocol`")
            && text.contains("set groupProtocol to classic"),
        "{text}"
    );
    assert_eq!(rb.count("data").await, 0);
    rb.teardown().await;
}
