//! What only a real Apache Kafka broker shows (issue: Apache Kafka): the broker's own size limit, real
//! watermarks after retention, and interoperability with the Java client.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

/// Runs tests/java/Interop.java on the Kafka classpath that scripts/kafka.sh cached.
fn java_produce(
    brokers: &str,
    topic: &str,
    compression: &str,
    n: usize,
) -> Vec<(String, i32, i64)> {
    let libs = kafka_var("KC_KAFKA_LIBS");
    let out = std::process::Command::new("java")
        .args([
            "-cp",
            &format!("{libs}/*"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/java/Interop.java"),
            "produce",
            brokers,
            topic,
            compression,
            &n.to_string(),
        ])
        .output()
        .expect("java (scripts/setup.sh installs Java 17)");
    assert!(
        out.status.success(),
        "Java producer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_owned(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn keyed_records_land_in_the_partition_the_java_producer_picks() {
    let ours = Topic::new("interop-ours", 6);
    let java = Topic::new("interop-java", 6);
    let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();

    let rb = Rabbit::setup("interop").await;
    let (worker, _api) = start_worker(
        &rb,
        "produce",
        json!({"brokers": kafka(), "topic": ours.name}),
        &[],
    )
    .await;
    let messages: Vec<Value> = keys
        .iter()
        .map(|k| json!({"key": k, "value": format!("v-{k}")}))
        .collect();
    rb.publish_input(&json!({"body": {"messages": messages}}), &[])
        .await;
    let outs = rb.take("data", 6, T).await;
    let written: usize = outs
        .iter()
        .map(|o| o.decrypted()["body"]["records"].as_array().unwrap().len())
        .sum();
    assert_eq!(written, 200, "logs:\n{}", worker.logs());
    finish(rb, worker).await;

    let (b, t) = (kafka(), ours.name.clone());
    let read = tokio::task::spawn_blocking(move || read_records(&b, &t, 6, 200, T))
        .await
        .unwrap();
    let our_partition: BTreeMap<String, i32> = read
        .iter()
        .map(|r| {
            (
                String::from_utf8(r.key.clone().unwrap()).unwrap(),
                r.partition,
            )
        })
        .collect();
    let (b, t) = (kafka(), java.name.clone());
    let theirs = tokio::task::spawn_blocking(move || java_produce(&b, &t, "none", 200))
        .await
        .unwrap();
    assert_eq!(theirs.len(), 200);
    let mut used = std::collections::BTreeSet::new();
    for (key, partition, _) in &theirs {
        assert_eq!(
            our_partition.get(key),
            Some(partition),
            "key {key}: the Java producer picked partition {partition}"
        );
        used.insert(*partition);
    }
    assert_eq!(used.len(), 6, "200 keys should spread over all partitions");
}

#[tokio::test]
async fn records_the_java_producer_compressed_with_each_codec_are_consumed() {
    let topic = Topic::new("interop-codecs", 3);
    let codecs = ["gzip", "snappy", "lz4", "zstd"];
    let mut expected = std::collections::BTreeSet::new();
    for codec in codecs {
        let (b, t) = (kafka(), topic.name.clone());
        let sent = tokio::task::spawn_blocking(move || java_produce(&b, &t, codec, 50))
            .await
            .unwrap();
        for (key, partition, offset) in sent {
            let i = key.trim_start_matches("key-").to_owned();
            expected.insert((partition, offset, key, format!("{codec}-value-{i}")));
        }
    }
    assert_eq!(expected.len(), 200);

    let group = rand_name("codecs");
    let rb = Rabbit::setup("codecs").await;
    let (worker, _api) = start_worker(
        &rb,
        "consume",
        json!({"brokers": kafka(), "topic": topic.name, "groupId": group, "startFrom": "earliest"}),
        &[],
    )
    .await;
    let got = rb.take("data", 200, Duration::from_secs(60)).await;
    let mut seen = std::collections::BTreeSet::new();
    for m in &got {
        let b = m.decrypted()["body"].clone();
        assert_eq!(b["headers"], json!([["src", "java"]]), "{b}");
        seen.insert((
            partition_of(&b),
            b["offset"].as_i64().unwrap(),
            b["key"].as_str().unwrap().to_owned(),
            b["value"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(seen, expected, "logs:\n{}", worker.logs());
    finish(rb, worker).await;
    delete_group(&kafka(), &group);
}

/// Sends three records to a one-partition `topic`, of which the broker refuses the middle one (`bad`), and checks
/// that only that record fails (with `error_text` in the error), the others are written and reported, and the
/// producer still writes the next message.
async fn only_the_refused_record_fails(topic: &Topic, bad: Value, error_text: &str) {
    let rb = Rabbit::setup("refused").await;
    let (worker, _api) = start_worker(
        &rb,
        "produce",
        json!({"brokers": kafka(), "topic": topic.name}),
        &[],
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    rb.publish_input(
        &json!({"body": {"messages": [
            {"key": "a", "value": "good-0"},
            bad,
            {"key": "c", "value": "good-2", "timestamp": now}
        ]}}),
        &[],
    )
    .await;
    let err = rb
        .next("error", T)
        .await
        .unwrap_or_else(|| panic!("no error; logs:\n{}", worker.logs()));
    let text = error_of(&err)["message"].as_str().unwrap().to_owned();
    assert!(
        text.contains("1 of 3 records") && text.contains("indexes 1") && text.contains(error_text),
        "{text}"
    );
    let data = rb.take("data", 1, T).await;
    let body = data[0].decrypted()["body"].clone();
    let indexes: Vec<i64> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, vec![0, 2], "{body}");
    let (b, t) = (kafka(), topic.name.clone());
    let read =
        tokio::task::spawn_blocking(move || read_records(&b, &t, 1, 3, Duration::from_secs(5)))
            .await
            .unwrap();
    let values: Vec<String> = read
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(values, vec!["good-0", "good-2"]);
    // The producer is still usable after the broker's refusal: the next message is written.
    rb.publish_input(&json!({"body": {"messages": [{"value": "next"}]}}), &[])
        .await;
    let next = rb
        .next("data", T)
        .await
        .expect("the next message is produced");
    assert_eq!(next.decrypted()["body"]["errorCode"], "0");
    finish(rb, worker).await;
}

#[tokio::test]
async fn a_record_the_topic_refuses_as_too_large_fails_alone_and_the_others_are_written() {
    // Our own pre-check allows 1 MiB; the topic accepts batches of at most 4 000 bytes, and the broker refuses
    // the whole batch that holds a larger record.
    let topic = Topic::on(&kafka(), "maxbytes", 1, &[("max.message.bytes", "4000")]);
    let big = "x".repeat(10_000);
    only_the_refused_record_fails(
        &topic,
        json!({"key": "b", "value": big}),
        "max.message.bytes",
    )
    .await;
}

#[tokio::test]
async fn log_start_offset_is_the_low_watermark_after_retention_deleted_the_head() {
    // Segments roll every 200 ms (on the next append) and are deleted 1.5 s after their newest record.
    let topic = Topic::on(
        &kafka(),
        "retention",
        1,
        &[("segment.ms", "200"), ("retention.ms", "1500")],
    );
    let b = kafka();
    let t = topic.name.clone();
    let low = tokio::task::spawn_blocking(move || {
        let head: Vec<(Option<i32>, Option<&str>, &[u8])> =
            (0..10).map(|_| (Some(0), None, &b"old"[..])).collect();
        produce_plain(&b, &t, &head);
        // Appends roll the segment (one every 300 ms, each older than segment.ms); the retention check (every
        // second) deletes the rolled ones. Wait until the low watermark passed the head.
        poll_every_blocking(Duration::from_millis(300), Duration::from_secs(60), || {
            produce_plain(&b, &t, &[(Some(0), None, &b"newer"[..])]);
            let (low, _) = watermarks(&b, &t, 0);
            (low >= 10).then_some(low)
        })
        .expect("retention deleted the head (low watermark >= 10) within 60 s")
    })
    .await
    .unwrap();

    let rb = Rabbit::setup("retention").await;
    let (worker, _api) = start_worker(
        &rb,
        "produce",
        json!({"brokers": kafka(), "topic": topic.name}),
        &[],
    )
    .await;
    rb.publish_input(
        &json!({"body": {"messages": [{"value": "after retention", "partition": 0}]}}),
        &[],
    )
    .await;
    let data = rb
        .next("data", T)
        .await
        .unwrap_or_else(|| panic!("no data; logs:\n{}", worker.logs()));
    let body = data.decrypted()["body"].clone();
    let (now_low, high) = watermarks(&kafka(), &topic.name, 0);
    let start: i64 = body["logStartOffset"].as_str().unwrap().parse().unwrap();
    // Retention may have deleted more since we looked; the reported start lies between the two observations.
    assert!(
        start >= low && start <= now_low.max(low),
        "logStartOffset {start}, low watermark {low}..{now_low}: {body}"
    );
    assert!(start > 0);
    assert_eq!(
        body["baseOffset"].as_str().unwrap().parse::<i64>().unwrap(),
        high - 1,
        "{body}"
    );
    finish(rb, worker).await;
}

#[tokio::test]
async fn a_timestamp_the_broker_refuses_fails_only_its_own_record() {
    // Apache Kafka refuses timestamps more than an hour ahead (log.message.timestamp.after.max.ms) and
    // refuses the whole batch that holds one; the good records of the batch must still be written.
    let topic = Topic::new("future-ts", 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let future = json!({"key": "b", "value": "future", "timestamp": now + 3 * 3_600_000});
    only_the_refused_record_fails(&topic, future, "timestamp").await;
}
