//! Consume trigger (issue 17): the stall watchdog, against a silent network. A broker of the test's own
//! advertises a loopback proxy (`harness/proxy.rs`) as its address, so every connection of the worker goes
//! through the proxy; mid-run the proxy turns every open connection into a black hole (sockets open, nothing
//! forwarded, no error) while new connections work. librdkafka alone notices only when its requests time out
//! (`socket.timeout.ms`, 60 s); the watchdog (`stallTimeoutSec` 4) must see that the partitions have lag and
//! nothing arrives, say so, and re-create the consumer, which rejoins over new connections and resumes at the
//! last confirmed offsets: every record once, in order, no gap, and the committed offsets at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

const PARTITIONS: i32 = 2;

/// Per partition, the offsets of the data messages in the order they arrived.
fn offsets_by_partition(msgs: &[Got]) -> BTreeMap<i32, Vec<i64>> {
    let mut by: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for m in msgs {
        let body = m.decrypted()["body"].clone();
        by.entry(partition_of(&body))
            .or_default()
            .push(body["offset"].as_i64().unwrap());
    }
    by
}

#[tokio::test]
async fn a_member_whose_connections_go_silent_is_recreated_and_loses_nothing() {
    let proxy = Proxy::start();
    let advertised = format!("advertised.listeners=PLAINTEXT://{}", proxy.address());
    let cluster = KafkaCluster::start(1, &[advertised.as_str()]);
    proxy.forward_to(&cluster.nodes[0]);
    let brokers = proxy.address();
    let topic = Topic::on(&brokers, "stall", PARTITIONS, &[]);
    produce_records(&brokers, &topic.name, PARTITIONS, 100, 8);
    let group = Group::new();
    let rb = Rabbit::setup("stall").await;
    let cfg = json!({"brokers": brokers, "topic": topic.name, "groupId": group.0,
        "stallTimeoutSec": "4", "progressIntervalSec": "1", "sessionTimeoutMs": "6000"});
    let (worker, _api) = start_worker(&rb, "consume", cfg, &[]).await;
    let mut msgs = rb.take("data", 100, Duration::from_secs(60)).await;
    assert_eq!(msgs.len(), 100, "before the stall");
    wait_until(
        Duration::from_secs(30),
        "the first 100 committed",
        || async {
            (committed(&brokers, &group, &topic.name, PARTITIONS)
                == BTreeMap::from([(0, 50), (1, 50)]))
            .then_some(())
        },
    )
    .await;
    assert!(
        !worker.logs().contains("Consumer stalled"),
        "no stall while records flow"
    );

    let silenced = proxy.black_hole_existing();
    assert!(
        silenced > 0,
        "the worker's connections go through the proxy"
    );
    let stalled_at = Instant::now();
    // Written over new connections (which still forward) while the worker's own are silent.
    produce_bulk(&brokers, &topic.name, PARTITIONS, 100..200, ("k", "v"), 8);
    worker
        .wait_log("Consumer stalled", Duration::from_secs(40))
        .await;
    let warning = worker
        .logs()
        .lines()
        .find(|l| l.contains("Consumer stalled"))
        .unwrap()
        .to_owned();
    let warning: serde_json::Value = serde_json::from_str(&warning).unwrap();
    assert_eq!(warning["level"], "WARN", "{warning}");
    let named = warning["partitions"].as_str().unwrap();
    assert!(
        named.contains(&format!("{}/0 lag 50", topic.name))
            || named.contains(&format!("{}/1 lag 50", topic.name)),
        "the warning names the partitions and their lag: {warning}"
    );
    msgs.extend(rb.take("data", 100, Duration::from_secs(60)).await);
    let recovered_in = stalled_at.elapsed();
    let by = offsets_by_partition(&msgs);
    let want: Vec<i64> = (0..100).collect();
    for p in 0..PARTITIONS {
        assert_eq!(
            by.get(&p),
            Some(&want),
            "partition {p}: every record once, in order, no gap"
        );
    }
    wait_until(
        Duration::from_secs(30),
        "committed offsets at the end",
        || async {
            (committed(&brokers, &group, &topic.name, PARTITIONS)
                == BTreeMap::from([(0, 100), (1, 100)]))
            .then_some(())
        },
    )
    .await;
    // librdkafka's own recovery would take its 60 s request timeout; the watchdog's is the 4 s of silence plus
    // the rejoin (the old member's 6 s session).
    assert!(
        recovered_in < Duration::from_secs(45),
        "recovered in {recovered_in:?}"
    );
    rb.assert_nothing_on(&["data", "error"], Duration::from_secs(1))
        .await;
    finish(rb, worker).await;
    drop(topic);
    drop(cluster);
}
