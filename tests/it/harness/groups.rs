//! Consumer groups: committed offsets, and the group as its coordinator describes it (members, assignment).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::topics::admin;
use super::*;

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

/// The rows of `kafka-consumer-groups --describe --group GROUP WHAT` (Apache Kafka's own tool) that belong to
/// `group`, split into columns; `None` when the tool fails.
fn group_tool_rows(brokers: &str, group: &str, what: &str) -> Option<Vec<Vec<String>>> {
    let out = std::process::Command::new("java")
        .arg("-cp")
        .arg(format!("{}/*", kafka_var("KC_KAFKA_LIBS")))
        .arg("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand")
        .args([
            "--bootstrap-server",
            brokers,
            "--describe",
            "--group",
            group,
            what,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|cols| cols.first().map(String::as_str) == Some(group))
        .collect();
    out.status.success().then_some(rows)
}

/// A consumer group of the KIP-848 protocol as its coordinator describes it (ConsumerGroupDescribe, through
/// Apache Kafka's own `kafka-consumer-groups` tool: DescribeGroups answers `Dead` for such a group): the
/// state (`--state`) and how many partitions each member owns (`--members`). `None` when the tool fails.
pub fn describe_consumer_group(brokers: &str, group: &str) -> Option<(String, Vec<usize>)> {
    let state = group_tool_rows(brokers, group, "--state")?
        .first()?
        .get(4)?
        .clone();
    let owned = group_tool_rows(brokers, group, "--members")?
        .iter()
        .filter_map(|cols| cols.get(4)?.parse().ok())
        .collect();
    Some((state, owned))
}

/// Like `describe_consumer_group`, with one start of the tool (`--state` also gives the number of members): the
/// state and the number of members, for a test that must not wait for two JVM starts. `None` when it fails.
pub fn consumer_group_state(brokers: &str, group: &str) -> Option<(String, usize)> {
    // GROUP, COORDINATOR (ID) (two words), ASSIGNMENT-STRATEGY, STATE, #MEMBERS.
    let rows = group_tool_rows(brokers, group, "--state")?;
    let cols = rows.first()?;
    Some((cols.get(4)?.clone(), cols.get(5)?.parse().ok()?))
}
