//! The stall watchdog: a member that has assigned partitions and has received nothing for `stallTimeoutSec`
//! asks the broker, through a fresh client (the member's own connections may be the ones that hang), for the
//! partitions' high watermarks. If the broker has records past where the member fetches, the member is stalled:
//! it logs a warning naming the partitions and their lag and re-creates its consumer (see `member.rs`), which
//! resumes at the last confirmed offsets. Time spent paused or waiting under back-pressure, and assignment
//! changes, do not count as silence.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::progress::{Part, PartStats, query};
use crate::kafka::client::KafkaContext;
use crate::kafka::token::TokenSource;

/// How long the probe waits for each answer of the broker.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A partition the member is stalled on: where it fetches and where the partition ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stalled {
    pub part: Part,
    pub position: i64,
    pub high: i64,
}

impl Stalled {
    pub fn lag(&self) -> i64 {
        self.high - self.position
    }
}

/// The watchdog's state in the member loop.
pub(super) struct Watchdog {
    timeout: Option<Duration>,
    idle_since: Instant,
    probe: Option<(Instant, JoinHandle<BTreeMap<Part, PartStats>>)>,
    /// The probe client's settings: the member's connection and group, no subscription.
    client: ClientConfig,
    token: Option<Arc<TokenSource>>,
}

impl Watchdog {
    /// A watchdog for `timeout_sec` (0: off) that probes with `client` (the connection's settings and the group).
    pub fn new(timeout_sec: u64, client: ClientConfig, token: Option<Arc<TokenSource>>) -> Self {
        Self {
            timeout: (timeout_sec > 0).then(|| Duration::from_secs(timeout_sec)),
            idle_since: Instant::now(),
            probe: None,
            client,
            token,
        }
    }

    /// Something happened that is not a stall (a record, an assignment change, back-pressure, a recovery).
    pub fn active(&mut self) {
        self.idle_since = Instant::now();
    }

    /// When to probe, if the watchdog is on, no probe runs and the member has partitions.
    pub fn due(&self, has_partitions: bool) -> Option<Instant> {
        match (self.timeout, &self.probe) {
            (Some(t), None) if has_partitions => Some(self.idle_since + t),
            _ => None,
        }
    }

    /// Whether a probe runs.
    pub fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// How long the member has received nothing.
    pub fn idle(&self) -> Duration {
        self.idle_since.elapsed()
    }

    /// Starts asking the broker about `parts` on a blocking-pool thread.
    pub fn start_probe(&mut self, parts: BTreeSet<Part>) {
        let client = self.client.clone();
        let token = self.token.clone();
        let task = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer<KafkaContext> = match client
                .create_with_context(KafkaContext::with_token(token))
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "Stall watchdog: cannot create its probe client.");
                    return BTreeMap::new();
                }
            };
            query(&consumer, &parts, PROBE_TIMEOUT)
        });
        self.probe = Some((Instant::now(), task));
    }

    /// The running probe's answer (pending while none runs).
    pub async fn probe_done(&mut self) -> (Instant, BTreeMap<Part, PartStats>) {
        let Some((started, task)) = self.probe.as_mut() else {
            return std::future::pending().await;
        };
        let answer = task.await.unwrap_or_default();
        let started = *started;
        self.probe = None;
        (started, answer)
    }

    /// The partitions the member is stalled on, from the probe's answer (`started`: when it was asked) and where
    /// the member fetches (`positions`). Empty when something arrived meanwhile, or nothing is left to fetch;
    /// either way the watchdog waits another timeout before it asks again.
    pub fn verdict(
        &mut self,
        started: Instant,
        answer: &BTreeMap<Part, PartStats>,
        positions: &BTreeMap<Part, i64>,
    ) -> Vec<Stalled> {
        let quiet = self.idle_since <= started;
        self.active();
        if !quiet {
            return Vec::new();
        }
        if answer.values().all(|s| s.high < 0) {
            tracing::info!(
                "Stall watchdog: the broker did not answer its probe; librdkafka keeps retrying."
            );
            return Vec::new();
        }
        stalled(answer, positions)
    }
}

/// Partitions whose high watermark is past where the member fetches (its position, else the committed offset).
fn stalled(answer: &BTreeMap<Part, PartStats>, positions: &BTreeMap<Part, i64>) -> Vec<Stalled> {
    answer
        .iter()
        .filter_map(|(part, s)| {
            let position = positions
                .get(part)
                .copied()
                .filter(|p| *p >= 0)
                .unwrap_or(s.committed);
            (position >= 0 && s.high > position).then(|| Stalled {
                part: part.clone(),
                position,
                high: s.high,
            })
        })
        .collect()
}

/// Where the member fetches each partition: the later of librdkafka's position (the last record handed to
/// the member + 1) and its fetch position from the latest statistics (past control records, which are never
/// handed over). -1: not known.
pub(super) fn positions<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    consumer: &C,
    stats: &BTreeMap<Part, PartStats>,
) -> BTreeMap<Part, i64> {
    let mut out: BTreeMap<Part, i64> = stats.iter().map(|(k, s)| (k.clone(), s.next)).collect();
    if let Ok(tpl) = consumer.position() {
        for e in tpl.elements() {
            if let Offset::Offset(o) = e.offset() {
                let entry = out
                    .entry((e.topic().to_owned(), e.partition()))
                    .or_insert(-1);
                *entry = (*entry).max(o);
            }
        }
    }
    out
}

/// The warning's `partitions` field: `topic/partition lag N (position P, high watermark H)`, comma-separated.
pub(super) fn describe(stalled: &[Stalled]) -> String {
    stalled
        .iter()
        .map(|s| {
            format!(
                "{}/{} lag {} (position {}, high watermark {})",
                s.part.0,
                s.part.1,
                s.lag(),
                s.position,
                s.high
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(p: i32) -> Part {
        ("t".to_owned(), p)
    }

    #[test]
    fn a_partition_is_stalled_when_the_broker_has_records_past_where_the_member_fetches() {
        let answer: BTreeMap<Part, PartStats> = [
            (
                part(0),
                PartStats {
                    committed: 5,
                    high: 10,
                    ..PartStats::default()
                },
            ),
            (
                part(1),
                PartStats {
                    committed: 7,
                    high: 7,
                    ..PartStats::default()
                },
            ),
            (
                part(2),
                PartStats {
                    committed: 3,
                    high: 9,
                    ..PartStats::default()
                },
            ),
            (
                part(3),
                PartStats {
                    committed: -1,
                    high: 4,
                    ..PartStats::default()
                },
            ),
        ]
        .into();
        // p0 fetched to the end (position past the commit); p2 has no position: its commit counts; p3: nothing known.
        let positions: BTreeMap<Part, i64> = [(part(0), 10), (part(2), -1)].into();
        let s = stalled(&answer, &positions);
        assert_eq!(
            s,
            vec![Stalled {
                part: part(2),
                position: 3,
                high: 9
            }]
        );
        assert_eq!(describe(&s), "t/2 lag 6 (position 3, high watermark 9)");
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_received_during_the_probe_or_a_silent_broker_is_no_stall() {
        let mut w = Watchdog::new(5, ClientConfig::new(), None);
        assert!(w.due(false).is_none(), "no partitions, no watch");
        assert!(w.due(true).is_some());
        let answer: BTreeMap<Part, PartStats> = [(
            part(0),
            PartStats {
                committed: 0,
                high: 9,
                ..PartStats::default()
            },
        )]
        .into();
        let started = Instant::now();
        tokio::time::advance(Duration::from_millis(1)).await;
        w.active();
        assert!(w.verdict(started, &answer, &BTreeMap::new()).is_empty());
        let started = Instant::now();
        assert_eq!(w.verdict(started, &answer, &BTreeMap::new()).len(), 1);
        let silent: BTreeMap<Part, PartStats> = [(part(0), PartStats::default())].into();
        let started = Instant::now();
        assert!(w.verdict(started, &silent, &BTreeMap::new()).is_empty());
        assert!(
            Watchdog::new(0, ClientConfig::new(), None)
                .due(true)
                .is_none(),
            "0: off"
        );
    }
}
