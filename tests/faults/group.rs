//! Consume-worker faults that users of other connectors lost data or hung on (issue 13, items 3 and 5). In each a
//! rebalance or the group session is at stake, so each runs with both group protocols (issue 17: `…_classic`,
//! `…_consumer`): a member killed and restarted at once while its dead self is still in the group; a second
//! member joining mid-stream (single records and a partly sent batch); a member idle longer than the broker's
//! `connections.max.idle.ms`; SIGTERM while the broker comes back from a bounce. Each case has its own RabbitMQ
//! node and Apache Kafka broker. Under the consumer protocol the broker owns the session and the heartbeat:
//! `Protocol::broker_props` gives it the classic member's (6 s, 2 s), so both protocols see the same timing
//! and every assertion is the same.

use super::consume_case::{ConsumeCase, assignments, count_lines};
use super::*;

/// Issue 13 §3: a Consume worker killed with SIGKILL and restarted at once, while its dead member is still
/// registered in the group (restart well inside `sessionTimeoutMs`): the group waits for the dead member's
/// session to expire, then the new member must get the partitions and consume every record.
///
/// Under the consumer protocol the dead member keeps its partitions until the broker's
/// `group.consumer.session.timeout.ms` (set to `session`) fences it, and the broker's assignor then gives them to
/// the new member.
async fn sigkilled_and_restarted_at_once(protocol: Protocol) {
    let session = Duration::from_secs(6);
    let c = ConsumeCase::start(
        (protocol, session),
        &[],
        3,
        json!({}),
        &[
            ("ELASTICIO_DATA_RATE_LIMIT", "30"),
            ("ELASTICIO_RATE_INTERVAL", "100"),
        ],
    )
    .await;
    let n = 3000;
    c.fill(0..n).await;
    let mut w1 = c.worker("tick-1").await;
    let mut got = Emitted::default();
    c.collect(&mut got, 1000, Duration::from_secs(60)).await;
    w1.signal("KILL");
    let killed = Instant::now();
    let _ = w1.exit_code(Duration::from_secs(10)).await;
    // Restart at once: the dead member is still in the group for up to `session`.
    let w2 = Worker::spawn(&c.env);
    w2.ready().await;
    c.rb.publish_input(&json!({"body": {}}), &[("messageId", "tick-2")])
        .await;
    let restarted = killed.elapsed();
    assert!(restarted < session, "restarted inside the session timeout");
    // What the dead member left: everything it emitted is on the queue now; the group resumes from the
    // committed offsets, so at most the records past them come again.
    let committed = c.committed().await;
    let first_emitted = got.order.len() + c.rb.count("data").await as usize;
    c.collect(&mut got, first_emitted, Duration::from_secs(10))
        .await;
    let (by_first, distinct_first) = (got.order.len(), got.seen.len());
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for &(p, o) in &got.order {
        let e = last.entry(p).or_insert(o);
        *e = (*e).max(o);
    }
    let uncommitted: i64 = (0..3)
        .map(|p| {
            let high = last.get(&p).map_or(-1, |o| *o);
            let from = committed[usize::try_from(p).unwrap()].unwrap_or(0);
            (high + 1 - from).max(0)
        })
        .sum();
    assert!(
        got.seen.len() < n,
        "the kill must land mid-stream: the first worker emitted {} of {n}",
        got.seen.len()
    );
    let resumed_at = Instant::now();
    c.collect(&mut got, n, session + Duration::from_secs(60))
        .await;
    let took = resumed_at.elapsed();
    let logs = w2.logs();
    let missing = got.missing(n);
    let duplicates = got.duplicates();
    eprintln!(
        "sigkill + immediate restart ({}, {:.1} s after the kill): first worker emitted {by_first} records ({distinct_first} distinct), committed then {committed:?} ({uncommitted} past the commits); second worker: {:.1} s to finish, assignments {:?}; {} missing, {duplicates} duplicates",
        protocol.name(),
        restarted.as_secs_f64(),
        took.as_secs_f64(),
        assignments(&logs),
        missing.len(),
    );
    for r in got.resumes() {
        eprintln!("  {r}");
    }
    assert!(
        assignments(&logs).iter().any(|a| !a.is_empty()),
        "the restarted member got partitions; its group events:\n{}",
        group_events(&logs).join("\n")
    );
    assert!(
        missing.is_empty(),
        "{} records never emitted (e.g. {:?}); the restarted member's group events:\n{}",
        missing.len(),
        &missing[..missing.len().min(10)],
        group_events(&logs).join("\n")
    );
    assert!(
        duplicates <= usize::try_from(uncommitted).unwrap(),
        "duplicates ({duplicates}) are bounded by what the dead member emitted past its commits ({uncommitted})"
    );
    assert_eq!(w2.stop().await, 0, "{}", tail(&logs));
    got.drain(&c.rb, Duration::from_millis(500)).await;
    got.assert_commits_confirmed(&c.committed().await);
    c.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_worker_sigkilled_and_restarted_at_once_resumes_classic() {
    sigkilled_and_restarted_at_once(Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_worker_sigkilled_and_restarted_at_once_resumes_consumer() {
    sigkilled_and_restarted_at_once(Protocol::Consumer).await;
}

/// Issue 13 §5: a second Consume worker (same step, same group) joins while the first is mid-stream. With
/// `batchSize` 100 the first member has a partly filled batch when the cooperative rebalance revokes half of
/// its partitions. Nothing is lost; duplicates are bounded by what was in flight at the revoke. Under the
/// consumer protocol the broker computes the new assignment and the first member gives up its share when its
/// next heartbeat tells it (the same incremental revoke, then the new member's assign).
async fn second_member_joins_mid_stream(batch: usize, protocol: Protocol) {
    // Both members throttled to about 300 records/s, so both are mid-stream when the second joins.
    let (limit, interval) = if batch == 1 {
        ("30", "100")
    } else {
        ("1", "333")
    };
    let c = ConsumeCase::start(
        (protocol, Duration::from_secs(6)),
        &[],
        6,
        json!({"batchSize": batch.to_string()}),
        &[
            ("ELASTICIO_DATA_RATE_LIMIT", limit),
            ("ELASTICIO_RATE_INTERVAL", interval),
        ],
    )
    .await;
    let n = 6000;
    c.fill(0..n).await;
    let started = Instant::now();
    let w1 = c.worker("tick-1").await;
    let mut got = Emitted::default();
    c.collect(&mut got, 1000, Duration::from_secs(60)).await;
    let w2 = c.worker("tick-2").await;
    let joined_at = got.seen.len();
    c.collect(&mut got, n, Duration::from_secs(120)).await;
    let (l1, l2) = (w1.logs(), w2.logs());
    assert_eq!(w1.stop().await, 0, "{}", tail(&l1));
    assert_eq!(w2.stop().await, 0, "{}", tail(&l2));
    got.drain(&c.rb, Duration::from_millis(500)).await;
    let missing = got.missing(n);
    let duplicates = got.duplicates();
    let missing_by_partition: BTreeMap<usize, usize> =
        missing.iter().fold(BTreeMap::new(), |mut m, i| {
            *m.entry(i % 6).or_default() += 1;
            m
        });
    eprintln!(
        "batchSize {batch} ({}): second member joined after {joined_at} records; {:.1} s; {} data messages; first member's assignments {:?}, second's {:?}; {} missing {missing_by_partition:?}, {duplicates} duplicates",
        protocol.name(),
        started.elapsed().as_secs_f64(),
        got.messages,
        assignments(&l1),
        assignments(&l2),
        missing.len(),
    );
    for r in got.resumes() {
        eprintln!("  {r}");
    }
    assert!(
        joined_at < n / 2,
        "the second member joined mid-stream ({joined_at} of {n} emitted)"
    );
    assert!(
        assignments(&l2).iter().any(|a| !a.is_empty()),
        "the second member got partitions"
    );
    assert!(
        missing.is_empty(),
        "{} records never emitted, by partition {missing_by_partition:?}; first member:\n{}\nsecond member:\n{}",
        missing.len(),
        group_events(&l1).join("\n"),
        group_events(&l2).join("\n")
    );
    // At the revoke at most MAX_IN_FLIGHT records (plus one partial batch) were emitted but not confirmed.
    assert!(
        duplicates <= MAX_IN_FLIGHT + batch,
        "duplicates ({duplicates}) bounded by what was in flight"
    );
    got.assert_commits_confirmed(&c.committed().await);
    c.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_member_joins_mid_stream_batch_1_classic() {
    second_member_joins_mid_stream(1, Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_member_joins_mid_stream_batch_1_consumer() {
    second_member_joins_mid_stream(1, Protocol::Consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_member_joins_mid_stream_batch_100_classic() {
    second_member_joins_mid_stream(100, Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_member_joins_mid_stream_batch_100_consumer() {
    second_member_joins_mid_stream(100, Protocol::Consumer).await;
}

/// A member idle for three times the broker's `connections.max.idle.ms` (5 s here), then records arrive:
/// all are consumed, and the member is assigned once (no rejoin storm). Under the consumer protocol the member's
/// heartbeats (every 2 s) keep its coordinator connection busy; the fetch connection is the idle one.
async fn idle_past_connections_max_idle(protocol: Protocol) {
    let idle_ms = 5000;
    let c = ConsumeCase::start(
        (protocol, Duration::from_secs(6)),
        &[&format!("connections.max.idle.ms={idle_ms}")],
        3,
        json!({}),
        &[("ELASTICIO_DATA_RATE_LIMIT", "100000")],
    )
    .await;
    // A produce step too: its producer has no request to send while idle, so its connection is the one the
    // broker closes.
    // Its own topic, so its records do not mix with the consumed ones.
    let produce_topic = format!("{}-p", c.topic);
    create_topic_async(&c.kafka.brokers(), &produce_topic, 1).await;
    let rp = Rabbit::setup_on(&c.rabbit.addr(), "fi", true).await;
    let api_p = fake_api(
        json!({"brokers": c.kafka.brokers(), "topic": produce_topic, "deliveryTimeoutMs": DELIVERY_TIMEOUT.as_millis()}),
    )
    .await;
    let wp = Worker::spawn(&worker_env(&rp, &api_p.uri(), "produce", &rp.prefix, &[]));
    wp.ready().await;
    let produce_one = |i: usize| {
        let rp = &rp;
        async move {
            rp.publish_input(
                &json!({"body": {"messages": [{"key": format!("i{i}"), "value": format!("i{i}")}]}}),
                &[],
            )
            .await;
            rp.next("data", Duration::from_secs(30)).await.is_some()
        }
    };
    assert!(produce_one(0).await, "produced before the idle time");
    c.fill(0..300).await;
    let w = c.worker("tick-1").await;
    let mut got = Emitted::default();
    c.collect(&mut got, 300, Duration::from_secs(60)).await;
    assert_eq!(got.seen.len(), 300, "the first records were consumed");
    let idle = Duration::from_millis(3 * idle_ms);
    // The behaviour under test: the member stays idle for three times `connections.max.idle.ms`.
    tokio::time::sleep(idle).await;
    let before_idle_end = w.logs();
    let produced_at = Instant::now();
    assert!(produce_one(1).await, "produced after the idle time");
    let produce_took = produced_at.elapsed();
    assert_eq!(rp.count("rebound").await, 0, "nothing rebounded");
    assert_eq!(rp.count("error").await, 0, "no produce error");
    c.fill(300..600).await;
    let arrived = Instant::now();
    c.collect(&mut got, 600, Duration::from_secs(30)).await;
    let took = arrived.elapsed();
    let logs = w.logs();
    let disconnects = count_lines(&before_idle_end, "Disconnected");
    let logs_p = wp.logs();
    eprintln!(
        "idle {} s past connections.max.idle.ms={idle_ms} ({}): produce after the idle time acked in {:.2} s ({} disconnects in the produce worker's log); consume: {} of 600 consumed, the last 300 in {:.1} s; {} assignments, {} revocations, {disconnects} disconnects logged, {} duplicates",
        idle.as_secs(),
        protocol.name(),
        produce_took.as_secs_f64(),
        count_lines(&logs_p, "Disconnected"),
        got.seen.len(),
        took.as_secs_f64(),
        assignments(&logs).len(),
        count_lines(&logs, "\"Partitions revoked"),
        got.duplicates()
    );
    assert_eq!(
        got.missing(600),
        Vec::<usize>::new(),
        "records after the idle time were consumed"
    );
    assert_eq!(
        assignments(&logs).len(),
        1,
        "one assignment, no rejoin: {}",
        group_events(&logs).join("\n")
    );
    assert_eq!(
        count_lines(&logs, "\"Partitions revoked"),
        0,
        "no revocation"
    );
    assert_eq!(got.duplicates(), 0);
    assert_eq!(w.stop().await, 0, "{}", tail(&logs));
    assert_eq!(wp.stop().await, 0, "{}", tail(&logs_p));
    rp.teardown().await;
    c.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_idle_past_connections_max_idle_then_consumes_classic() {
    idle_past_connections_max_idle(Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_idle_past_connections_max_idle_then_consumes_consumer() {
    idle_past_connections_max_idle(Protocol::Consumer).await;
}

/// SIGTERM while the broker comes back from a bounce (killed, restarted; the signal lands during the restart):
/// a Consume worker and a Produce worker exit 0 within their documented bounds (README, Q8 and Consume:
/// consumer confirms 20 s, then commit and leave 10 s; producer: in-flight executions
/// `ELASTICIO_SHUTDOWN_TIMEOUT` 30 s, then flush 10 s), and do not hang. Under the consumer protocol the member
/// leaves with a ConsumerGroupHeartbeat of epoch −1 instead of LeaveGroup, to a coordinator that is restarting.
async fn sigterm_after_broker_bounce(protocol: Protocol) {
    let c = ConsumeCase::start(
        (protocol, Duration::from_secs(6)),
        &[],
        3,
        json!({}),
        &[
            ("ELASTICIO_DATA_RATE_LIMIT", "10"),
            ("ELASTICIO_RATE_INTERVAL", "100"),
        ],
    )
    .await;
    c.fill(0..5000).await;
    let wc = c.worker("tick-1").await;
    // A produce step on the same broker with its stream waiting in its queue.
    let rp = Rabbit::setup_on(&c.rabbit.addr(), "fs", true).await;
    let api_p = fake_api(
        json!({"brokers": c.kafka.brokers(), "topic": c.topic, "deliveryTimeoutMs": DELIVERY_TIMEOUT.as_millis()}),
    )
    .await;
    let env_p = worker_env(
        &rp,
        &api_p.uri(),
        "produce",
        &rp.prefix,
        &[("ELASTICIO_RABBITMQ_PREFETCH_SAILOR", "8")],
    );
    for i in 0..3000 {
        rp.publish_input(
            &json!({"body": {"messages": [{"key": format!("s{i}"), "value": format!("s{i}")}]}}),
            &[],
        )
        .await;
    }
    let wp = Worker::spawn(&env_p);
    wp.ready().await;
    let mut got = Emitted::default();
    c.collect(&mut got, 200, Duration::from_secs(30)).await;
    assert!(
        rp.count("messages").await > 0,
        "the produce stream is running"
    );
    // The bounce: SIGKILL, then the restart runs on its own thread while the signal lands.
    let mut kafka = c.kafka;
    kafka.kill();
    let bounce = std::thread::spawn(move || {
        kafka.restart();
        kafka
    });
    // The fault's timing under test: the signals land 2 s into the outage, while the broker restarts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut wc, mut wp) = (wc, wp);
    let signalled = Instant::now();
    wc.signal("TERM");
    wp.signal("TERM");
    let consume_bound = Duration::from_secs(20 + 10 + 5);
    let produce_bound = Duration::from_secs(30 + 10 + 5);
    let (code_c, code_p) = tokio::join!(
        async {
            let code = wc.exit_code(consume_bound).await;
            (code, signalled.elapsed())
        },
        async {
            let code = wp.exit_code(produce_bound).await;
            (code, signalled.elapsed())
        }
    );
    let broker_back = bounce.join().unwrap();
    eprintln!(
        "SIGTERM during the broker's restart ({}): consume worker exited {} after {:.1} s (bound {} s), produce worker exited {} after {:.1} s (bound {} s)",
        protocol.name(),
        code_c.0,
        code_c.1.as_secs_f64(),
        consume_bound.as_secs(),
        code_p.0,
        code_p.1.as_secs_f64(),
        produce_bound.as_secs()
    );
    assert_eq!(code_c.0, 0, "consume worker:\n{}", tail(&wc.logs()));
    assert_eq!(code_p.0, 0, "produce worker:\n{}", tail(&wp.logs()));
    // Nothing committed past a record that was not confirmed.
    got.drain(&c.rb, Duration::from_millis(500)).await;
    let (b, g, t) = (broker_back.brokers(), c.group.clone(), c.topic.clone());
    let committed = tokio::task::spawn_blocking(move || committed_offsets(&b, &g, &t, 3))
        .await
        .unwrap();
    got.assert_commits_confirmed(&committed);
    let _ = rp
        .ch
        .queue_purge(rp.q("data").into(), QueuePurgeOptions::default())
        .await;
    rp.teardown().await;
    let _ =
        c.rb.ch
            .queue_purge(c.rb.q("data").into(), QueuePurgeOptions::default())
            .await;
    c.rb.teardown().await;
    drop(broker_back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_a_broker_bounce_exits_in_bound_classic() {
    sigterm_after_broker_bounce(Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_a_broker_bounce_exits_in_bound_consumer() {
    sigterm_after_broker_bounce(Protocol::Consumer).await;
}
