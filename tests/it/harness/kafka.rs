//! Apache Kafka (scripts/kafka.sh). `scripts/test.sh` starts one broker and exports its listeners; a test that
//! needs a broker of its own (to kill or restart it) starts one with `KafkaBroker::start` or a cluster with
//! `KafkaCluster::start` (brokers.rs).

use std::collections::BTreeMap;
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

/// An admin client on `brokers` with extra client settings (e.g. SASL) applied.
fn admin(
    brokers: &str,
    extra: &[(&str, &str)],
) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().unwrap()
}

/// Runs a future to completion on a runtime of its own, on a thread of its own, so that it may be called from
/// synchronous code, from `spawn_blocking` and from `Drop` inside an async test alike.
pub fn block_on<F: std::future::Future + Send + 'static>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .unwrap()
}

/// How the replicas of a new topic are placed.
enum Replicas<'a> {
    /// `partitions` partitions of this many replicas each, placed by the broker.
    Fixed(i32, i32),
    /// One replica list (node ids) per partition; the first replica leads.
    Assigned(&'a [Vec<i32>]),
}

/// Sends CreateTopics for `topic` with topic `configs` and asserts that the broker created it.
fn send_create_topic(
    brokers: &str,
    topic: &str,
    replicas: Replicas<'_>,
    configs: &[(&str, &str)],
    client: &[(&str, &str)],
) {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    let admin = admin(brokers, client);
    let owned: Vec<(String, String)> = configs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let (fixed, assigned) = match replicas {
        Replicas::Fixed(partitions, replication) => (Some((partitions, replication)), Vec::new()),
        Replicas::Assigned(a) => (None, a.to_vec()),
    };
    let t = topic.to_owned();
    let res = block_on(async move {
        let refs: Vec<&[i32]> = assigned.iter().map(Vec::as_slice).collect();
        let mut nt = match fixed {
            Some((partitions, replication)) => {
                NewTopic::new(&t, partitions, TopicReplication::Fixed(replication))
            }
            None => NewTopic::new(
                &t,
                i32::try_from(refs.len()).unwrap(),
                TopicReplication::Variable(&refs),
            ),
        };
        for (k, v) in &owned {
            nt = nt.set(k, v);
        }
        admin
            .create_topics(
                &[nt],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
    })
    .unwrap();
    assert!(res.iter().all(Result::is_ok), "create {topic}: {res:?}");
}

/// Creates `topic` with `partitions` partitions, replication factor `replication` and topic `configs`; waits
/// until every partition has a leader that answers metadata.
pub fn create_topic_with(
    brokers: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&str, &str)],
    client: &[(&str, &str)],
) {
    send_create_topic(
        brokers,
        topic,
        Replicas::Fixed(partitions, replication),
        configs,
        client,
    );
    wait_topic_ready(brokers, topic, partitions, client);
}

/// Creates `topic` with one replica list (node ids) per partition, the first replica leading, and topic
/// `configs`. Does not wait: the caller knows what state of the cluster it needs.
pub fn create_topic_assigned(
    brokers: &str,
    topic: &str,
    assignment: &[Vec<i32>],
    configs: &[(&str, &str)],
) {
    send_create_topic(brokers, topic, Replicas::Assigned(assignment), configs, &[]);
}

/// Waits until metadata shows every partition of `topic` with a leader.
pub fn wait_topic_ready(brokers: &str, topic: &str, partitions: i32, client: &[(&str, &str)]) {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in client {
        c.set(*k, *v);
    }
    let consumer: BaseConsumer = c.create().unwrap();
    let what = format!("every partition of topic {topic} to have a leader");
    wait_until_blocking(Duration::from_secs(30), &what, || {
        consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .is_ok_and(|md| {
                md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            })
            .then_some(())
    });
}

/// Creates a topic on the shared broker (replication 1).
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    create_topic_with(brokers, topic, partitions, 1, &[], &[]);
}

/// Deletes topics (best effort: a test that already failed must not panic again here).
pub fn delete_topics(brokers: &str, topics: &[&str], client: &[(&str, &str)]) {
    use rdkafka::admin::AdminOptions;
    let admin = admin(brokers, client);
    let names: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
    let _ = block_on(async move {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        admin
            .delete_topics(
                &refs,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
    });
}

/// A topic of one test on the shared Apache Kafka broker, deleted when dropped.
pub struct Topic {
    pub name: String,
    pub brokers: String,
    pub partitions: i32,
}

impl Topic {
    /// A new uniquely named topic on the shared broker (`KC_KAFKA_BROKERS`).
    pub fn new(prefix: &str, partitions: i32) -> Self {
        Self::on(&kafka(), prefix, partitions, &[])
    }

    /// A new uniquely named topic on `brokers`, with topic `configs`.
    pub fn on(brokers: &str, prefix: &str, partitions: i32, configs: &[(&str, &str)]) -> Self {
        let name = rand_name(prefix);
        create_topic_with(brokers, &name, partitions, 1, configs, &[]);
        Self {
            name,
            brokers: brokers.to_owned(),
            partitions,
        }
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        delete_topics(&self.brokers, &[&self.name], &[]);
    }
}

/// Deletes a consumer group (best effort), for tests that name their own groups.
pub fn delete_group(brokers: &str, group: &str) {
    use rdkafka::admin::AdminOptions;
    let admin = admin(brokers, &[]);
    let g = group.to_owned();
    let _ = block_on(async move {
        admin
            .delete_groups(
                &[g.as_str()],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
    });
}

/// Committed offsets of `group` for partitions `0..partitions` of `topic` (`None`: nothing committed).
pub fn committed_offsets(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect()
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

/// Committed offsets of `group` for partitions `0..partitions` of `topic`, by partition (-1: nothing committed).
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    committed_offsets(brokers, group, topic, partitions)
        .into_iter()
        .zip(0..)
        .map(|(o, p)| (p, o.unwrap_or(-1)))
        .collect()
}

/// A consumer group of one test, deleted from the shared broker when dropped (after its members stopped).
pub struct Group(pub String);

impl Group {
    pub fn new() -> Self {
        Self(rand_name("group"))
    }
}

impl std::ops::Deref for Group {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        delete_group(&kafka(), &self.0);
    }
}

/// A consumer group as its coordinator describes it (DescribeGroups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty` or `Dead`.
    pub state: String,
    /// The partitions each member owns (classic consumer protocol assignment), sorted.
    pub members: Vec<Vec<(String, i32)>>,
}

impl GroupView {
    /// How many partitions each member owns.
    pub fn owned(&self) -> Vec<usize> {
        self.members.iter().map(Vec::len).collect()
    }
}

/// Describes `group` (`None` when the coordinator does not answer).
pub fn describe_group(brokers: &str, group: &str) -> Option<GroupView> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let list = c
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .ok()?;
    let g = list.groups().iter().find(|g| g.name() == group)?;
    Some(GroupView {
        state: g.state().to_owned(),
        members: g
            .members()
            .iter()
            .map(|m| m.assignment().map(decode_assignment).unwrap_or_default())
            .collect(),
    })
}

/// Decodes a classic consumer protocol `Assignment`: version (i16), [topic (string), [partition (i32)]],
/// user data.
fn decode_assignment(b: &[u8]) -> Vec<(String, i32)> {
    let mut at = 2; // version
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = b.get(at..at + n)?;
        at += n;
        Some(s)
    };
    let mut out = Vec::new();
    let mut parse = || -> Option<()> {
        let topics = i32::from_be_bytes(take(4)?.try_into().ok()?);
        for _ in 0..topics.max(0) {
            let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
            let topic = String::from_utf8_lossy(take(usize::try_from(len).ok()?)?).into_owned();
            let n = i32::from_be_bytes(take(4)?.try_into().ok()?);
            for _ in 0..n.max(0) {
                out.push((topic.clone(), i32::from_be_bytes(take(4)?.try_into().ok()?)));
            }
        }
        Some(())
    };
    parse();
    out.sort();
    out
}

/// Waits until `group` is `Stable` with `members` members that each own some partitions and together own
/// `partitions` partitions (a settled rebalance, as the coordinator sees it); returns the view.
pub async fn wait_group_settled(
    brokers: &str,
    group: &str,
    members: usize,
    partitions: usize,
    timeout: Duration,
) -> GroupView {
    let last = std::sync::Mutex::new(None);
    wait_until_or(
        timeout,
        || async {
            let (b, g) = (brokers.to_owned(), group.to_owned());
            let view = tokio::task::spawn_blocking(move || describe_group(&b, &g))
                .await
                .unwrap()?;
            let owned = view.owned();
            let settled = view.state == "Stable"
                && owned.len() == members
                && owned.iter().all(|n| *n > 0)
                && owned.iter().sum::<usize>() == partitions;
            let done = settled.then(|| view.clone());
            *last.lock().unwrap() = Some(view);
            done
        },
        || {
            format!(
                "group {group} to settle with {members} members owning {partitions} partitions; last seen {:?}",
                last.lock().unwrap()
            )
        },
    )
    .await
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

/// [`create_topic`] from async code (the admin calls block, so they run on a blocking thread).
pub async fn create_topic_async(brokers: &str, topic: &str, partitions: i32) {
    let (b, t) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || create_topic(&b, &t, partitions))
        .await
        .unwrap();
}
