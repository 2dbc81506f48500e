//! The member's progress line: every `progressIntervalSec` and at each assignment change, one structured log
//! line with the assigned partitions and, per partition, the committed offset, the high watermark and the lag,
//! plus records in flight and records/s since the previous line.
//!
//! The periodic numbers come from librdkafka's statistics callback (`statistics.interval.ms`), which costs no
//! request: librdkafka already knows each partition's high watermark from its fetch responses and its committed
//! offset from its commits. Only the line at an assignment change, when librdkafka knows nothing yet about the
//! new partitions, asks the broker (committed offsets and watermarks, on a blocking-pool thread).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

/// A partition: topic, partition.
pub(super) type Part = (String, i32);

/// What is known about one assigned partition (-1: not known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PartStats {
    /// The group's committed offset.
    pub committed: i64,
    /// The high watermark (offset of the next record written).
    pub high: i64,
    /// The low watermark (the oldest record kept).
    pub low: i64,
    /// The next offset this member fetches (librdkafka's fetch position).
    pub next: i64,
}

impl Default for PartStats {
    fn default() -> Self {
        Self {
            committed: -1,
            high: -1,
            low: -1,
            next: -1,
        }
    }
}

impl PartStats {
    /// Records between the committed offset and the high watermark. Before the group's first commit: from the
    /// low watermark (where a new group starting at `earliest` begins). `None`: not known.
    pub fn lag(&self) -> Option<i64> {
        let from = [self.committed, self.low].into_iter().find(|o| *o >= 0)?;
        (self.high >= 0).then(|| (self.high - from).max(0))
    }
}

/// The parts of librdkafka's statistics JSON the line uses.
#[derive(Deserialize)]
struct RawStats {
    #[serde(default)]
    topics: HashMap<String, RawTopic>,
}

#[derive(Deserialize)]
struct RawTopic {
    #[serde(default)]
    partitions: HashMap<String, RawPartition>,
}

#[derive(Deserialize)]
struct RawPartition {
    partition: i32,
    #[serde(default = "unknown")]
    committed_offset: i64,
    #[serde(default = "unknown")]
    hi_offset: i64,
    #[serde(default = "unknown")]
    lo_offset: i64,
    #[serde(default = "unknown")]
    next_offset: i64,
}

const fn unknown() -> i64 {
    -1
}

/// Per partition, what librdkafka's statistics JSON says (the internal partition -1 left out).
pub(super) fn parse_stats(json: &[u8]) -> Option<BTreeMap<Part, PartStats>> {
    let raw: RawStats = serde_json::from_slice(json).ok()?;
    let mut out = BTreeMap::new();
    for (topic, t) in raw.topics {
        for p in t.partitions.into_values().filter(|p| p.partition >= 0) {
            out.insert(
                (topic.clone(), p.partition),
                PartStats {
                    committed: p.committed_offset,
                    high: p.hi_offset,
                    low: p.lo_offset,
                    next: p.next_offset,
                },
            );
        }
    }
    Some(out)
}

/// Asks the broker, through `consumer`, for the committed offsets and high watermarks of `parts`. Blocking
/// (a request per partition): call it on a blocking-pool thread. A value the broker did not give stays -1.
pub(super) fn query<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    consumer: &C,
    parts: &BTreeSet<Part>,
    timeout: Duration,
) -> BTreeMap<Part, PartStats> {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition(t, *p);
    }
    let committed = consumer.committed_offsets(tpl, timeout).ok();
    parts
        .iter()
        .map(|(t, p)| {
            let committed = committed
                .as_ref()
                .and_then(|c| c.find_partition(t, *p))
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(-1);
            let (low, high) = consumer
                .fetch_watermarks(t, *p, timeout)
                .unwrap_or((-1, -1));
            let stats = PartStats {
                committed,
                high,
                low,
                next: -1,
            };
            ((t.clone(), *p), stats)
        })
        .collect()
}

/// Why a line is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    Interval,
    Assignment,
}

/// The member's counters between two lines.
#[derive(Debug)]
pub(super) struct Progress {
    /// Records received since the last line.
    records: u64,
    /// Records received since the member started.
    pub total: u64,
    since: Instant,
    /// How often a periodic line is due (`None`: only at assignment changes).
    pub every: Option<Duration>,
}

impl Progress {
    pub fn new(every_sec: u64) -> Self {
        Self {
            records: 0,
            total: 0,
            since: Instant::now(),
            every: (every_sec > 0).then(|| Duration::from_secs(every_sec)),
        }
    }

    /// A record was received.
    pub fn received(&mut self) {
        self.records += 1;
        self.total += 1;
    }

    /// Whether a periodic line is due.
    pub fn due(&self) -> bool {
        self.every.is_some_and(|e| self.since.elapsed() >= e)
    }

    /// Logs one line and starts the next period; returns the total lag (`None` if any partition's is unknown).
    pub fn log(
        &mut self,
        reason: Reason,
        assigned: &BTreeSet<Part>,
        stats: &BTreeMap<Part, PartStats>,
        in_flight: usize,
    ) -> Option<i64> {
        let secs = self.since.elapsed().as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // a count of records in one period
        let rate = if secs > 0.0 {
            self.records as f64 / secs
        } else {
            0.0
        };
        let (parts, lag) = describe(assigned, stats);
        let reason = match reason {
            Reason::Interval => "interval",
            Reason::Assignment => "assignment",
        };
        tracing::info!(
            reason,
            assigned = assigned.len(),
            partitions = %parts,
            lag = lag.map_or(-1, |l| l),
            in_flight,
            records = self.records,
            records_per_sec = (rate * 10.0).round() / 10.0,
            "Consumer progress."
        );
        self.records = 0;
        self.since = Instant::now();
        lag
    }
}

/// The `partitions` field (a JSON array, one object per assigned partition) and the total lag.
fn describe(assigned: &BTreeSet<Part>, stats: &BTreeMap<Part, PartStats>) -> (Value, Option<i64>) {
    let mut total = Some(0i64);
    let known = |v: i64| (v >= 0).then_some(v);
    let list: Vec<Value> = assigned
        .iter()
        .map(|part| {
            let s = stats.get(part).copied().unwrap_or_default();
            let lag = s.lag();
            total = total.zip(lag).map(|(a, b)| a + b);
            json!({
                "topic": part.0,
                "partition": part.1,
                "committed": known(s.committed),
                "high_watermark": known(s.high),
                "lag": lag,
            })
        })
        .collect();
    (Value::Array(list), total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_give_committed_offset_high_watermark_and_lag_per_partition() {
        let raw = br#"{"name":"c","topics":{"orders":{"topic":"orders","partitions":{
            "0":{"partition":0,"committed_offset":10,"hi_offset":25,"next_offset":20,"fetch_state":"active"},
            "1":{"partition":1,"committed_offset":-1001,"hi_offset":-1,"next_offset":-1},
            "2":{"partition":2,"committed_offset":-1001,"hi_offset":9,"lo_offset":2,"next_offset":-1001},
            "-1":{"partition":-1,"committed_offset":-1,"hi_offset":-1}}}}}"#;
        let stats = parse_stats(raw).unwrap();
        assert_eq!(stats.len(), 3, "the internal partition -1 is left out");
        assert_eq!(
            stats[&("orders".to_owned(), 2)].lag(),
            Some(7),
            "no commit yet: from the low watermark"
        );
        let p0 = stats[&("orders".to_owned(), 0)];
        assert_eq!(
            (p0.committed, p0.high, p0.next, p0.lag()),
            (10, 25, 20, Some(15))
        );
        assert_eq!(stats[&("orders".to_owned(), 1)].lag(), None);
        let assigned: BTreeSet<Part> = [("orders".to_owned(), 0)].into();
        let (parts, lag) = describe(&assigned, &stats);
        assert_eq!(lag, Some(15));
        assert_eq!(
            parts,
            json!([{"topic": "orders", "partition": 0, "committed": 10, "high_watermark": 25, "lag": 15}])
        );
        let both: BTreeSet<Part> = [("orders".to_owned(), 0), ("orders".to_owned(), 1)].into();
        assert_eq!(describe(&both, &stats).1, None, "one partition unknown");
        assert!(parse_stats(b"not json").is_none());
    }
}
