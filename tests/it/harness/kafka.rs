//! Records on Apache Kafka (scripts/kafka.sh; `scripts/test.sh` starts the shared broker and exports its
//! listeners): writing them, reading them back, watermarks.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::*;

/// A `KC_KAFKA_*` variable that `scripts/kafka.sh start` exports. Panics (never skips) when it is missing.
pub fn kafka_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with scripts/test.sh, or start Apache Kafka with \
             `eval \"$(scripts/kafka.sh start)\"`"
        )
    })
}

/// PLAINTEXT `host:port` of the shared Apache Kafka broker.
pub fn kafka() -> String {
    kafka_var("KC_KAFKA_BROKERS")
}

/// The SASL users `scripts/kafka.sh` creates on `KC_KAFKA_SCRAM_BROKERS` and `KC_KAFKA_SASL_SSL_BROKERS`:
/// (username, password, `mechanism` as the credentials name it, the mechanism as librdkafka and the errors
/// name it).
pub const SASL_USERS: [(&str, &str, &str, &str); 3] = [
    (
        "scram512",
        "scram512-pass",
        "scram-sha-512",
        "SCRAM-SHA-512",
    ),
    (
        "scram256",
        "scram256-pass",
        "scram-sha-256",
        "SCRAM-SHA-256",
    ),
    ("plain", "plain-pass", "plain", "PLAIN"),
];

/// A consumer of a fresh group that commits nothing, to read a topic back.
pub fn reader(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", rand_name("verify"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

/// Reads `n` records from `topic` (all partitions, from the beginning).
pub fn read_records(
    brokers: &str,
    topic: &str,
    partitions: i32,
    n: usize,
    timeout: Duration,
) -> Vec<KafkaRecord> {
    let consumer = reader(brokers);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(KafkaRecord::of(&m));
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl KafkaRecord {
    pub fn of(m: &impl Message) -> Self {
        Self {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// (low, high) watermarks of one partition.
pub fn watermarks(brokers: &str, topic: &str, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap()
}
/// Writes records with a plain rdkafka producer (acks=all) and waits for every delivery; returns their offsets.
pub fn produce_plain(
    brokers: &str,
    topic: &str,
    records: &[(Option<i32>, Option<&str>, &[u8])],
) -> Vec<(i32, i64)> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let owned: Vec<(Option<i32>, Option<String>, Vec<u8>)> = records
        .iter()
        .map(|(p, k, v)| (*p, k.map(str::to_owned), v.to_vec()))
        .collect();
    let t = topic.to_owned();
    block_on(async move {
        let sends = owned.iter().map(|(p, k, v)| {
            let mut r: FutureRecord<'_, String, Vec<u8>> = FutureRecord::to(&t).payload(v);
            if let Some(k) = k {
                r = r.key(k);
            }
            if let Some(p) = p {
                r = r.partition(*p);
            }
            producer.send(r, Duration::from_secs(30))
        });
        futures_util::future::join_all(sends)
            .await
            .into_iter()
            .map(|r| {
                let d = r.map_err(|(e, _)| e).unwrap();
                (d.partition, d.offset)
            })
            .collect()
    })
}

/// Writes `n` records round-robin over `partitions` with a plain rdkafka producer: key `{prefix}{i}`, value
/// `{value_prefix}{i}` padded with `x` to `value_len` bytes; waits for every delivery.
pub fn produce_bulk(
    brokers: &str,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<usize>,
    (key_prefix, value_prefix): (&str, &str),
    value_len: usize,
) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for i in range {
        let key = format!("{key_prefix}{i}");
        let mut value = format!("{value_prefix}{i}");
        if value.len() < value_len {
            value.push_str(&"x".repeat(value_len - value.len()));
        }
        let p = i32::try_from(i).unwrap() % partitions;
        // A full local queue (QueueFull): wait until deliveries made room, then send again.
        while producer
            .send(BaseRecord::to(topic).partition(p).key(&key).payload(&value))
            .is_err()
        {
            let _ = producer.flush(Duration::from_millis(100));
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Writes `n` records round-robin over `partitions`: key `k{i}`, value `v{i}` padded to `value_len`.
pub fn produce_records(brokers: &str, topic: &str, partitions: i32, n: usize, value_len: usize) {
    produce_bulk(brokers, topic, partitions, 0..n, ("k", "v"), value_len);
}
