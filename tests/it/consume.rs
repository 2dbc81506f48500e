//! Consume trigger end to end (issue: consume): worker processes, real RabbitMQ, the shared Apache Kafka broker
//! (`scripts/kafka.sh`: PLAINTEXT, SASL and SASL_SSL listeners). Every test names its own topic and consumer
//! group and deletes both.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

fn cfg(brokers: &str, topic: &str, group: &str) -> Value {
    json!({ "brokers": brokers, "clientId": "it-consume", "topic": topic, "groupId": group, "sessionTimeoutMs": "6000" })
}

/// (partition, offset, value) of every data message body (single-record bodies).
fn records_of(msgs: &[Got]) -> Vec<(i32, i64, String)> {
    msgs.iter()
        .map(|m| {
            let b = m.decrypted()["body"].clone();
            (
                partition_of(&b),
                b["offset"].as_i64().unwrap(),
                b["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_partition_order(records: &[(i32, i64, String)]) {
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o, _) in records {
        if let Some(prev) = last.insert(*p, *o) {
            assert!(*o > prev, "partition {p}: offset {o} after {prev}");
        }
    }
}

#[tokio::test]
async fn thousand_records_arrive_once_in_partition_order_and_offsets_are_committed() {
    let brokers = kafka();
    let t = Topic::new("c1000", 3);
    let (topic, group) = (t.name.clone(), Group::new());
    produce_records(&brokers, &topic, 3, 1000, 10);
    let rb = Rabbit::setup("c1000").await;
    let (worker, _api) = start_worker(&rb, "consume", cfg(&brokers, &topic, &group), &[]).await;
    let msgs = rb.take("data", 1000, Duration::from_secs(60)).await;
    assert_eq!(msgs.len(), 1000);
    let records = records_of(&msgs);
    assert_partition_order(&records);
    let values: HashSet<&str> = records.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(values.len(), 1000, "no duplicates, none missing");
    // Every record its own message id, in the reference library's envelope (PROTOCOL.md Q10), shaped as the
    // schema says.
    let ids: HashSet<String> = msgs.iter().map(assert_reference_envelope).collect();
    assert_eq!(
        ids.len(),
        1000,
        "1 000 records, 1 000 distinct messageId headers"
    );
    for m in &msgs {
        assert_matches_schema("consume.out.json", &m.decrypted()["body"]);
    }
    let first = msgs[0].decrypted()["body"].clone();
    assert_eq!(first["topic"], topic);
    assert!(first["key"].as_str().unwrap().starts_with('k'));
    assert!(first["timestamp"].as_i64().unwrap() > 0);
    assert_eq!(
        msgs[0].header_str("parentMessageId").as_deref(),
        Some("tick-1"),
        "emitted with the first tick's headers"
    );
    // Exactly 1000: nothing more arrives (waiting out the window is the check).
    rb.assert_nothing_on(&["data"], Duration::from_millis(800))
        .await;
    assert_eq!(
        rb.unsettled_inputs().await + u64::from(rb.count("dead").await),
        0,
        "tick acked"
    );
    assert_eq!(worker.stop().await, 0);
    let c = committed(&brokers, &group, &topic, 3);
    assert_eq!(
        c.values().copied().collect::<Vec<_>>(),
        vec![334, 333, 333],
        "committed = end offsets"
    );
    rb.teardown().await;
}

#[tokio::test]
async fn later_ticks_start_nothing_and_are_acked_promptly() {
    let brokers = kafka();
    let t = Topic::new("ticks", 1);
    let (topic, group) = (t.name.clone(), Group::new());
    let rb = Rabbit::setup("ticks").await;
    let (worker, _api) = start_worker(&rb, "consume", cfg(&brokers, &topic, &group), &[]).await;
    for i in 2..5 {
        rb.publish_input(&json!({"body": {}}), &[("messageId", &format!("tick-{i}"))])
            .await;
    }
    assert_eq!(rb.unsettled_inputs().await, 0, "every tick acked");
    produce_records(&brokers, &topic, 1, 5, 1);
    let msgs = rb.take("data", 5, T).await;
    assert_eq!(msgs.len(), 5);
    // The later ticks started no member: the group settles with the first one alone.
    let group_now = wait_group_settled(&brokers, &group, 1, 1, T).await;
    assert_eq!(group_now.members.len(), 1, "{group_now:?}");
    assert!(
        msgs.iter()
            .all(|m| m.header_str("parentMessageId").as_deref() == Some("tick-1"))
    );
    finish(rb, worker).await;
}

#[tokio::test]
async fn kill_9_mid_stream_then_restart_loses_nothing() {
    let brokers = kafka();
    let t = Topic::new("kill", 3);
    let (topic, group) = (t.name.clone(), Group::new());
    produce_records(&brokers, &topic, 3, 1500, 10);
    let rb = Rabbit::setup("kill").await;
    // A slow data rate keeps the stream going long enough to kill it in the middle.
    let (mut worker, _api) = start_worker(
        &rb,
        "consume",
        cfg(&brokers, &topic, &group),
        &[
            ("ELASTICIO_DATA_RATE_LIMIT", "50"),
            ("ELASTICIO_RATE_INTERVAL", "100"),
        ],
    )
    .await;
    let seen = rb.take("data", 200, T).await;
    assert_eq!(seen.len(), 200);
    // Confirmed offsets are committed periodically (auto-commit of stored offsets), not only on shutdown.
    wait_until(
        Duration::from_secs(10),
        "an offset committed while the worker runs",
        || async {
            let periodic: i64 = committed(&brokers, &group, &topic, 3)
                .values()
                .map(|o| (*o).max(0))
                .sum();
            (periodic > 0).then_some(())
        },
    )
    .await;
    worker.signal("KILL");
    assert_ne!(worker.exit_code(T).await, 0);
    let (worker2, _api2) = start_worker(&rb, "consume", cfg(&brokers, &topic, &group), &[]).await;
    let mut values: HashSet<String> = records_of(&seen).into_iter().map(|r| r.2).collect();
    let mut total = seen.len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while values.len() < 1500 && tokio::time::Instant::now() < deadline {
        if let Some(m) = rb.next("data", Duration::from_secs(5)).await {
            values.extend(
                records_of(std::slice::from_ref(&m))
                    .into_iter()
                    .map(|r| r.2),
            );
            total += 1;
        }
    }
    assert_eq!(values.len(), 1500, "every record at least once");
    let dups = total - 1500;
    eprintln!("kill -9: {dups} duplicates after restart");
    finish(rb, worker2).await;
}

#[tokio::test]
async fn sigterm_mid_stream_exits_0_and_commits_nothing_unconfirmed() {
    let brokers = kafka();
    let t = Topic::new("term", 3);
    let (topic, group) = (t.name.clone(), Group::new());
    produce_records(&brokers, &topic, 3, 1500, 10);
    let rb = Rabbit::setup("term").await;
    let (worker, _api) = start_worker(
        &rb,
        "consume",
        cfg(&brokers, &topic, &group),
        &[
            ("ELASTICIO_DATA_RATE_LIMIT", "50"),
            ("ELASTICIO_RATE_INTERVAL", "100"),
        ],
    )
    .await;
    let mut all = rb.take("data", 100, T).await;
    assert_eq!(all.len(), 100);
    let started = std::time::Instant::now();
    assert_eq!(worker.stop().await, 0);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded shutdown"
    );
    // Everything that reached the data queue was confirmed; committed offsets must not pass it.
    while let Some(m) = rb.next("data", Duration::from_millis(300)).await {
        all.push(m);
    }
    let mut confirmed: BTreeMap<i32, HashSet<i64>> = BTreeMap::new();
    let taken = records_of(&all);
    for (p, o, _) in &taken {
        confirmed.entry(*p).or_default().insert(*o);
    }
    let c = committed(&brokers, &group, &topic, 3);
    let mut total_committed = 0;
    for (p, next) in &c {
        for o in 0..*next {
            assert!(
                confirmed.get(p).is_some_and(|s| s.contains(&o)),
                "partition {p}: offset {o} committed but never published"
            );
        }
        total_committed += (*next).max(0);
    }
    assert!(
        total_committed >= 100,
        "progress was committed on shutdown: {c:?}"
    );
    rb.teardown().await;
}

#[tokio::test]
async fn two_workers_in_one_group_share_the_partitions() {
    let brokers = kafka();
    let t = Topic::new("share", 4);
    let (topic, group) = (t.name.clone(), Group::new());
    let rb = Rabbit::setup("share").await;
    let api = fake_api(cfg(&brokers, &topic, &group)).await;
    let env = step_env(
        &rb,
        &api.uri(),
        "consume",
        &[("ELASTICIO_DATA_RATE_LIMIT", "100000")],
    );
    let (w1, w2) = (Worker::spawn(&env), Worker::spawn(&env));
    w1.ready().await;
    w2.ready().await;
    // Both containers compete on one step queue; each starts its member on the first tick it gets: tick until
    // the coordinator lists two members.
    poll_every(Duration::from_millis(200), T, || async {
        rb.publish_input(&json!({"body": {}}), &[]).await;
        describe_group(&brokers, &group)
            .filter(|g| g.members.len() == 2)
            .map(|_| ())
    })
    .await
    .expect("ticks reached both workers: two members in the group");
    // The cooperative rebalance settles in two rounds (the first member gives partitions up, then the second
    // gets them): wait until the group is stable and the two members own all four between them, each some.
    wait_group_settled(&brokers, &group, 2, 4, T).await;
    produce_records(&brokers, &topic, 4, 400, 5);
    let msgs = rb.take("data", 400, Duration::from_secs(60)).await;
    let values: HashSet<String> = records_of(&msgs).into_iter().map(|r| r.2).collect();
    assert_eq!(values.len(), 400);
    let partitions_of = |m: &Got| partition_of(&m.decrypted()["body"]);
    let spread: HashSet<i32> = msgs.iter().map(partitions_of).collect();
    assert_eq!(spread.len(), 4);
    assert_eq!(w1.stop().await, 0);
    finish(rb, w2).await;
}

#[tokio::test]
async fn oversized_record_is_reported_with_its_position_and_skipped() {
    let brokers = kafka();
    let t = Topic::new("skip", 1);
    let (topic, group) = (t.name.clone(), Group::new());
    produce_records(&brokers, &topic, 1, 2, 10);
    produce_records(&brokers, &topic, 1, 1, 20_000);
    produce_records(&brokers, &topic, 1, 2, 10);
    let rb = Rabbit::setup("skip").await;
    let (worker, _api) = start_worker(
        &rb,
        "consume",
        cfg(&brokers, &topic, &group),
        &[("ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT", "5000")],
    )
    .await;
    let msgs = rb.take("data", 4, T).await;
    assert_eq!(
        records_of(&msgs).iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![0, 1, 3, 4]
    );
    let err = rb.next("error", T).await.expect("skip reported");
    let text = error_of(&err)["message"].as_str().unwrap().to_owned();
    assert!(
        text.contains(&format!("{topic}/0@2")) && text.contains("exceeds limit of 5000"),
        "{text}"
    );
    assert_eq!(worker.stop().await, 0);
    assert_eq!(
        committed(&brokers, &group, &topic, 1)[&0],
        5,
        "the partition moved on past the skipped record"
    );
    rb.teardown().await;
}

#[tokio::test]
async fn batches_carry_up_to_batch_size_records() {
    let brokers = kafka();
    let t = Topic::new("batch", 2);
    let (topic, group) = (t.name.clone(), Group::new());
    produce_records(&brokers, &topic, 2, 250, 10);
    let rb = Rabbit::setup("batch").await;
    let mut c = cfg(&brokers, &topic, &group);
    c["batchSize"] = json!("100");
    let (worker, _api) = start_worker(&rb, "consume", c, &[]).await;
    let mut values = HashSet::new();
    let mut ids = HashSet::new();
    let mut messages = 0;
    while values.len() < 250 {
        let m = rb.next("data", T).await.expect("batch");
        assert!(
            ids.insert(assert_reference_envelope(&m)),
            "a batch's own messageId"
        );
        let body = m.decrypted()["body"].clone();
        assert_matches_schema("consume.out.json", &body);
        let recs = body["records"].as_array().unwrap();
        assert!(!recs.is_empty() && recs.len() <= 100 && body["count"] == recs.len());
        for r in recs {
            values.insert(r["value"].as_str().unwrap().to_owned());
        }
        messages += 1;
    }
    assert!(messages < 250, "records were batched ({messages} messages)");
    assert_eq!(worker.stop().await, 0);
    assert_eq!(
        committed(&brokers, &group, &topic, 2).values().sum::<i64>(),
        250
    );
    rb.teardown().await;
}

/// SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN on Kafka's SASL_PLAINTEXT listener: each consumes every record and
/// commits; the same user with a wrong password publishes an `AuthenticationError` naming the user and the
/// mechanism and exits 1 (so the platform restarts it), and the password shows nowhere.
#[tokio::test]
async fn sasl_scram_512_256_and_plain_consume_and_a_wrong_password_on_each_exits_non_zero() {
    let brokers = kafka_var("KC_KAFKA_SCRAM_BROKERS");
    let t = Topic::new("sasl-c", 2);
    produce_records(&kafka(), &t.name, 2, 20, 1);
    let runs = SASL_USERS.map(|(user, pass, mech, _)| {
        let (brokers, topic) = (brokers.clone(), t.name.clone());
        async move {
            let group = Group::new();
            let rb = Rabbit::setup("sasl-c").await;
            let c = with_login(cfg(&brokers, &topic, &group), user, pass, mech);
            let (worker, _api) = start_worker(&rb, "consume", c, &[]).await;
            let msgs = rb.take("data", 20, T).await;
            assert_eq!(msgs.len(), 20, "{mech}: logs:\n{}", worker.logs());
            let values: HashSet<String> = records_of(&msgs).into_iter().map(|r| r.2).collect();
            assert_eq!(values.len(), 20, "{mech}: every record once");
            assert_eq!(worker.stop().await, 0);
            assert_eq!(
                committed(&kafka(), &group, &topic, 2).values().sum::<i64>(),
                20,
                "{mech}: committed on shutdown"
            );
            rb.teardown().await;
        }
    });
    futures_util::future::join_all(runs).await;

    let secret = "wrong-password-for-consume";
    let refused = SASL_USERS.map(|(user, _, mech, librdkafka_name)| {
        let (brokers, topic) = (brokers.clone(), t.name.clone());
        async move {
            let group = Group::new();
            let rb = Rabbit::setup("sasl-bad").await;
            let c = with_login(cfg(&brokers, &topic, &group), user, secret, mech);
            let (mut worker, _api) = start_worker(&rb, "consume", c, &[]).await;
            assert_eq!(
                worker.exit_code(T).await,
                1,
                "{mech}: exits non-zero so the platform restarts it; logs:\n{}",
                worker.logs()
            );
            let err = rb
                .next("error", T)
                .await
                .expect("authentication error published");
            let text = authentication_error(&err, user, librdkafka_name);
            assert!(!text.contains(secret) && !worker.logs().contains(secret));
            assert_eq!(rb.count("data").await, 0, "{mech}");
            assert!(
                committed(&kafka(), &group, &topic, 2)
                    .values()
                    .all(|o| *o < 0),
                "{mech}: nothing committed"
            );
            rb.teardown().await;
        }
    });
    futures_util::future::join_all(refused).await;
}

/// SASL_SSL end to end: the Produce action writes and the Consume trigger reads over Kafka's SASL_SSL listener,
/// trusting the test CA given as `caCert` (hostname verified: the listener is advertised as `localhost`).
#[tokio::test]
async fn sasl_ssl_produce_then_consume_with_the_ca_certificate() {
    let brokers = kafka_var("KC_KAFKA_SASL_SSL_BROKERS");
    let ca = std::fs::read_to_string(kafka_var("KC_KAFKA_CA")).unwrap();
    let t = Topic::new("sasl-ssl", 2);
    let group = Group::new();
    let mut c = cfg(&brokers, &t.name, &group);
    c["username"] = json!("scram512");
    c["password"] = json!("scram512-pass");
    c["caCert"] = json!(ca);

    let rb = Rabbit::setup("sasl-ssl-p").await;
    let (producer, _api) = start_step(&rb, "produce", c.clone(), &[]).await;
    let messages: Vec<Value> = (0..10)
        .map(|i| json!({"key": format!("k{i}"), "value": format!("tls-{i}"), "partition": i % 2}))
        .collect();
    rb.publish_input(&json!({"body": {"messages": messages}}), &[])
        .await;
    let written: usize = rb
        .take("data", 2, T)
        .await
        .iter()
        .map(|m| m.decrypted()["body"]["records"].as_array().unwrap().len())
        .sum();
    assert_eq!(written, 10, "logs:\n{}", producer.logs());
    finish(rb, producer).await;

    let rb = Rabbit::setup("sasl-ssl-c").await;
    let (consumer, _api) = start_worker(&rb, "consume", c, &[]).await;
    let msgs = rb.take("data", 10, T).await;
    let records = records_of(&msgs);
    assert_partition_order(&records);
    let mut values: Vec<String> = records.into_iter().map(|r| r.2).collect();
    values.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("tls-{i}")).collect();
    want.sort();
    assert_eq!(values, want, "logs:\n{}", consumer.logs());
    assert_eq!(consumer.stop().await, 0);
    assert_eq!(
        committed(&kafka(), &group, &t.name, 2)
            .values()
            .collect::<Vec<_>>(),
        vec![&5, &5]
    );
    rb.teardown().await;
}
#[tokio::test]
async fn back_pressure_pauses_and_resumes_without_losing_records() {
    let brokers = kafka();
    let t = Topic::new("bp", 3);
    let (topic, group) = (t.name.clone(), Group::new());
    produce_records(&brokers, &topic, 3, 1200, 100);
    let rb = Rabbit::setup("bp").await;
    let mut c = cfg(&brokers, &topic, &group);
    c["maxInFlight"] = json!("4");
    let (worker, _api) = start_worker(&rb, "consume", c, &[]).await;
    let msgs = rb.take("data", 1200, Duration::from_secs(60)).await;
    let records = records_of(&msgs);
    assert_partition_order(&records);
    let values: HashSet<&str> = records.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        values.len(),
        1200,
        "every record, across many pause/resume cycles"
    );
    assert!(
        worker.logs().contains("in-flight limit reached"),
        "back-pressure engaged"
    );
    finish(rb, worker).await;
}

fn rabbitmqctl(args: &[&str]) {
    let ok = std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("rabbitmqctl")
        .success();
    assert!(ok, "rabbitmqctl {args:?}");
}

/// A downstream that stops confirming: the data queue refuses every publish (a policy on this test's queue
/// only), so the member reaches its in-flight limit, pauses its partitions while it keeps polling, and
/// resumes once the queue accepts messages again; every record arrives.
#[tokio::test]
async fn stalled_downstream_pauses_fetching_then_resumes_without_losing_records() {
    let brokers = kafka();
    let t = Topic::new("stall", 3);
    let (topic, group) = (t.name.clone(), Group::new());
    produce_records(&brokers, &topic, 3, 300, 100);
    let rb = Rabbit::setup("stall").await;
    let policy = rb.prefix.clone();
    let pattern = format!("^{}$", regex_escape(&rb.q("data")));
    rabbitmqctl(&[
        "set_policy",
        &policy,
        &pattern,
        r#"{"max-length":0,"overflow":"reject-publish"}"#,
        "--apply-to",
        "queues",
    ]);
    let mut c = cfg(&brokers, &topic, &group);
    c["maxInFlight"] = json!("8");
    let (worker, _api) = start_worker(&rb, "consume", c, &[]).await;
    worker
        .wait_log("Back-pressure: fetching paused.", Duration::from_secs(30))
        .await;
    assert_eq!(rb.count("data").await, 0, "nothing got through the stall");
    rabbitmqctl(&["clear_policy", &policy]);
    let msgs = rb.take("data", 300, Duration::from_secs(60)).await;
    let records = records_of(&msgs);
    // No order check: a refused publish is retried after later ones went out (README, Guarantees: Order).
    let values: HashSet<&str> = records.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(values.len(), 300, "every record after the stall");
    assert!(
        worker.logs().contains("Back-pressure: fetching resumed."),
        "fetching resumed"
    );
    finish(rb, worker).await;
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

/// Apache Kafka refuses a session timeout below `group.min.session.timeout.ms` (6 s by default) on every
/// JoinGroup; the mock cluster accepted it. The member must not wait outside its group forever: a
/// `ConfigurationError` naming the field, and exit 1.
#[tokio::test]
async fn a_session_timeout_the_broker_refuses_is_a_configuration_error_and_exits_non_zero() {
    let brokers = kafka();
    let t = Topic::new("short-session", 1);
    let (topic, group) = (t.name.clone(), Group::new());
    produce_records(&brokers, &topic, 1, 5, 1);
    let rb = Rabbit::setup("short-session").await;
    let mut c = cfg(&brokers, &topic, &group);
    c["sessionTimeoutMs"] = json!("3000");
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
        text.contains("invalid configuration field `sessionTimeoutMs`")
            && text.contains("3000 ms")
            && text.contains("group.min.session.timeout.ms"),
        "{text}"
    );
    assert_eq!(rb.count("data").await, 0);
    rb.teardown().await;
}
