//! Issue 17: the Consume dead-letter topic (`deadLetterTopic`) on the shared Apache Kafka broker. A record that
//! cannot become a data message (here: larger than `ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT`) is written to the
//! dead-letter topic with its key, value, headers and `x-eio-dlt-*` headers before its offset is committed; when
//! that write fails, nothing is committed past the record, the worker exits 1, and a restart writes it.
//! Without `deadLetterTopic` the record is skipped (`consume::oversized_record_is_reported_with_its_position_and_skipped`).

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

use crate::harness::*;

const T: Duration = Duration::from_secs(30);
/// The outgoing limit of these workers: the 20 000-byte record is over it, the others far below.
const LIMIT: &str = "5000";

/// The oversized record: a key, a value that is not UTF-8, and headers with a repeated name and a null value.
const KEY: &[u8] = b"big-key";
const HEADERS: [(&str, Option<&[u8]>); 3] = [
    ("trace", Some(b"t-1")),
    ("trace", Some(b"t-2")),
    ("empty", None),
];

fn big_value() -> Vec<u8> {
    let mut v = vec![0xff, 0xfe, 0x00];
    v.resize(20_000, b'z');
    v
}

fn cfg(brokers: &str, topic: &str, group: &str, dead_letter: &str) -> Value {
    json!({ "brokers": brokers, "clientId": "it-consume-dlt", "topic": topic, "groupId": group,
            "sessionTimeoutMs": "6000", "deadLetterTopic": dead_letter })
}

/// Writes records 0 and 1 (small), 2 (the oversized one, with key and headers), 3 and 4 (small) to partition 0.
fn produce_with_oversized_at_2(brokers: &str, topic: &str) {
    produce_records(brokers, topic, 1, 2, 10);
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .create()
        .unwrap();
    let t = topic.to_owned();
    let delivered = block_on(async move {
        let mut headers = OwnedHeaders::new();
        for (key, value) in HEADERS {
            headers = headers.insert(Header { key, value });
        }
        let value = big_value();
        let record = FutureRecord::to(&t)
            .partition(0)
            .key(KEY)
            .payload(&value)
            .headers(headers);
        producer.send(record, T).await.map_err(|(e, _)| e).unwrap()
    });
    assert_eq!(delivered.offset, 2);
    produce_bulk(brokers, topic, 1, 3..5, ("k", "v"), 10);
}

/// (offset, value) of each single-record data message.
fn offsets_of(msgs: &[Got]) -> Vec<i64> {
    msgs.iter()
        .map(|m| m.decrypted()["body"]["offset"].as_i64().unwrap())
        .collect()
}

/// The dead-letter place `{dlt}/{partition}@{offset}` that a `RecordSkipped` text names for `{topic}/0@2`.
fn dead_letter_place(text: &str, topic: &str, dlt: &str) -> (i32, i64) {
    let arrow = format!("{topic}/0@2 -> {dlt}/");
    let rest = &text[text
        .find(&arrow)
        .unwrap_or_else(|| panic!("{arrow} in {text}"))
        + arrow.len()..];
    let (p, rest) = rest.split_once('@').unwrap();
    let o: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (p.parse().unwrap(), o.parse().unwrap())
}

/// Checks the dead-letter record at `place` of `dlt`: the oversized record's bytes and headers, then the source
/// headers (topic, partition 0, offset 2, timestamp, reason, group, step, flow); and that it is the only one.
fn assert_dead_lettered(brokers: &str, dlt: &str, place: (i32, i64), topic: &str, group: &str) {
    let got = read_records(brokers, dlt, 1, 2, Duration::from_secs(5));
    assert_eq!(got.len(), 1, "exactly one record in the dead-letter topic");
    let r = &got[0];
    assert_eq!((r.partition, r.offset), place, "where the error said");
    assert_eq!(r.key.as_deref(), Some(KEY));
    assert_eq!(
        r.value.as_deref(),
        Some(big_value().as_slice()),
        "value byte for byte"
    );
    let own: Vec<(String, Vec<u8>)> = HEADERS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.unwrap_or_default().to_vec()))
        .collect();
    assert_eq!(
        &r.headers[..3],
        own.as_slice(),
        "its own headers first, in order"
    );
    let added: Vec<(&str, String)> = r.headers[3..]
        .iter()
        .map(|(k, v)| (k.as_str(), String::from_utf8(v.clone()).unwrap()))
        .collect();
    let names: Vec<&str> = added.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "x-eio-dlt-topic",
            "x-eio-dlt-partition",
            "x-eio-dlt-offset",
            "x-eio-dlt-timestamp",
            "x-eio-dlt-reason",
            "x-eio-dlt-group",
            "x-eio-dlt-step-id",
            "x-eio-dlt-flow-id"
        ]
    );
    assert_eq!(added[0].1, topic);
    assert_eq!((added[1].1.as_str(), added[2].1.as_str()), ("0", "2"));
    let ts: i64 = added[3].1.parse().unwrap();
    assert!(
        (now_ms() - ts).abs() < 600_000,
        "the record's own time: {ts}"
    );
    assert!(
        added[4].1.contains("exceeds limit of 5000"),
        "{}",
        added[4].1
    );
    assert_eq!(
        (
            added[5].1.as_str(),
            added[6].1.as_str(),
            added[7].1.as_str()
        ),
        (group, "step_1", "flow1")
    );
}

/// Whether the cluster lists `topic` (all topics are listed, so asking does not auto-create it).
fn topic_listed(brokers: &str, topic: &str) -> bool {
    reader(brokers)
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap()
        .topics()
        .iter()
        .any(|t| t.name() == topic)
}

#[tokio::test]
async fn an_oversized_record_goes_to_the_dead_letter_topic_with_its_headers_and_the_offset_moves_past_it()
 {
    let brokers = kafka();
    let (t, dlt) = (Topic::new("dlt-src", 1), Topic::new("dlt", 1));
    let (topic, group) = (t.name.clone(), Group::new());
    produce_with_oversized_at_2(&brokers, &topic);
    let rb = Rabbit::setup("dlt").await;
    let (worker, _api) = start_worker(
        &rb,
        "consume",
        cfg(&brokers, &topic, &group, &dlt.name),
        &[("ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT", LIMIT)],
    )
    .await;
    let msgs = rb.take("data", 4, T).await;
    assert_eq!(offsets_of(&msgs), vec![0, 1, 3, 4], "the others, in order");
    let e = error_of(&rb.next("error", T).await.expect("the record reported"));
    assert_eq!(e["name"], "RecordSkipped", "{e}");
    let text = e["message"].as_str().unwrap();
    assert!(text.contains("exceeds limit of 5000"), "{text}");
    let place = dead_letter_place(text, &topic, &dlt.name);
    assert_dead_lettered(&brokers, &dlt.name, place, &topic, &group);
    rb.assert_nothing_on(&["error"], Duration::from_millis(300))
        .await;
    assert_eq!(worker.stop().await, 0);
    assert_eq!(
        committed(&brokers, &group, &topic, 1)[&0],
        5,
        "committed past every record, the dead-lettered one included"
    );
    rb.teardown().await;
}

#[tokio::test]
async fn a_failed_dead_letter_write_commits_nothing_past_the_record_and_after_a_restart_it_is_written()
 {
    let brokers = kafka();
    let t = Topic::new("dlt-src", 1);
    let (topic, group) = (t.name.clone(), Group::new());
    // Not created: the shared broker auto-creates topics, but the dead-letter producer never asks it to.
    let dlt = rand_name("dlt-missing");
    produce_with_oversized_at_2(&brokers, &topic);
    let rb = Rabbit::setup("dlt-fail").await;
    let settings = [("ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT", LIMIT)];
    let config = cfg(&brokers, &topic, &group, &dlt);
    let (mut first, _api) = start_worker(&rb, "consume", config.clone(), &settings).await;
    let e = error_of(
        &rb.next("error", Duration::from_secs(60))
            .await
            .expect("the failed write reported"),
    );
    assert_eq!(e["name"], "DeadLetterError", "{e}");
    let text = e["message"].as_str().unwrap();
    assert!(
        text.contains(&format!("{topic}/0@2"))
            && text.contains(&format!("topic `{dlt}` does not exist")),
        "{text}"
    );
    assert_eq!(
        first.exit_code(T).await,
        1,
        "the worker stops; logs:\n{}",
        first.logs()
    );
    assert_eq!(
        committed(&brokers, &group, &topic, 1)[&0],
        2,
        "committed up to the record, not past it"
    );
    assert!(
        !topic_listed(&brokers, &dlt),
        "the dead-letter topic was not auto-created"
    );
    // The worker has exited: what it published is on the queue.
    let mut seen: BTreeSet<i64> = offsets_of(&rb.take("data", 4, Duration::ZERO).await)
        .into_iter()
        .collect();
    assert!(seen.contains(&0) && seen.contains(&1), "{seen:?}");

    // The condition fixed: the topic exists. The restarted worker reads the record again and writes it.
    create_topic_async(&brokers, &dlt, 1).await;
    let _dlt = Topic {
        name: dlt.clone(),
        brokers: brokers.clone(),
        partitions: 1,
    };
    let (second, _api2) = start_worker(&rb, "consume", config, &settings).await;
    let e = error_of(&rb.next("error", T).await.expect("the record reported"));
    assert_eq!(e["name"], "RecordSkipped", "{e}");
    let place = dead_letter_place(e["message"].as_str().unwrap(), &topic, &dlt);
    assert_dead_lettered(&brokers, &dlt, place, &topic, &group);
    let deadline = Deadline::new(T, "records 3 and 4 from the restarted worker");
    while !(seen.contains(&3) && seen.contains(&4)) {
        seen.extend(offsets_of(&rb.take("data", 1, Duration::ZERO).await));
        deadline.tick().await;
    }
    assert_eq!(seen, BTreeSet::from([0, 1, 3, 4]), "nothing lost");
    assert_eq!(second.stop().await, 0);
    assert_eq!(committed(&brokers, &group, &topic, 1)[&0], 5, "now past it");
    rb.teardown().await;
}

#[tokio::test]
async fn in_batch_mode_every_record_of_a_batch_that_cannot_be_emitted_is_dead_lettered_once_in_order()
 {
    let brokers = kafka();
    let (t, dlt) = (Topic::new("dlt-batch-src", 1), Topic::new("dlt-batch", 1));
    let (topic, group) = (t.name.clone(), Group::new());
    produce_with_oversized_at_2(&brokers, &topic);
    let rb = Rabbit::setup("dlt-batch").await;
    let mut config = cfg(&brokers, &topic, &group, &dlt.name);
    config["batchSize"] = json!("5");
    let (worker, _api) = start_worker(
        &rb,
        "consume",
        config,
        &[("ELASTICIO_OUTGOING_MESSAGE_SIZE_LIMIT", LIMIT)],
    )
    .await;
    // How the five records fall into batches depends on fetch timing; the batch holding record 2 is too large.
    let e = error_of(&rb.next("error", T).await.expect("the batch reported"));
    assert_eq!(e["name"], "RecordSkipped", "{e}");
    let text = e["message"].as_str().unwrap();
    let place = dead_letter_place(text, &topic, &dlt.name);
    let moved = text.matches(" -> ").count();
    let in_dlt = read_records(&brokers, &dlt.name, 1, moved, T);
    assert_eq!(in_dlt.len(), moved, "every record the error names is there");
    let source_offsets: Vec<i64> = in_dlt
        .iter()
        .map(|r| {
            let h = r
                .headers
                .iter()
                .find(|(k, _)| k == "x-eio-dlt-offset")
                .unwrap();
            String::from_utf8(h.1.clone()).unwrap().parse().unwrap()
        })
        .collect();
    assert!(
        source_offsets.windows(2).all(|w| w[0] < w[1]) && source_offsets.contains(&2),
        "in source order: {source_offsets:?}"
    );
    let big = &in_dlt[source_offsets.iter().position(|o| *o == 2).unwrap()];
    assert_eq!((big.partition, big.offset), place);
    assert_eq!(big.value.as_deref(), Some(big_value().as_slice()));
    let mut emitted: Vec<i64> = Vec::new();
    let deadline = Deadline::new(T, "the records not dead-lettered as data");
    while emitted.len() + moved < 5 {
        for m in rb.take("data", 5, Duration::ZERO).await {
            let body = m.decrypted()["body"].clone();
            emitted.extend(
                body["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["offset"].as_i64().unwrap()),
            );
        }
        deadline.tick().await;
    }
    let mut all: Vec<i64> = emitted.iter().chain(&source_offsets).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        vec![0, 1, 2, 3, 4],
        "each record once: as data or dead-lettered"
    );
    assert_eq!(worker.stop().await, 0);
    assert_eq!(committed(&brokers, &group, &topic, 1)[&0], 5);
    rb.teardown().await;
}
