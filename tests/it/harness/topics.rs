//! Topics: created (waiting for their leaders), deleted with the test, and the admin client behind them.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::*;

/// An admin client on `brokers` with extra client settings (e.g. SASL) applied.
pub(super) fn admin(
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
    wait_every_blocking(METADATA_POLL, Duration::from_secs(30), &what, || {
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

/// [`create_topic`] from async code (the admin calls block, so they run on a blocking thread).
pub async fn create_topic_async(brokers: &str, topic: &str, partitions: i32) {
    let (b, t) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || create_topic(&b, &t, partitions))
        .await
        .unwrap();
}
