//! The consumer's librdkafka context: logs and errors into tracing, OAUTHBEARER tokens, and the rebalance
//! callback (start by timestamp on assignment, resume after a lost commit, commit on revoke).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::CLOSE_TIMEOUT;
use super::progress::{Part, PartStats, parse_stats};
use crate::kafka::client::{ClientState, log_to_tracing, oauth_token};
use crate::kafka::token::TokenSource;

/// Consumer context: logs and errors into tracing, start-by-timestamp on assignment, commit on revoke.
pub(super) struct ConsumeContext {
    pub(super) state: Arc<ClientState>,
    pub(super) token: Option<Arc<TokenSource>>,
    pub(super) start_timestamp: Option<i64>,
    /// Partitions revoked since the member loop last looked.
    pub(super) revoked: Mutex<Vec<(String, i32)>>,
    /// Per assigned partition, the offset last stored (every earlier record confirmed on AMQP).
    pub(super) stored: Mutex<HashMap<(String, i32), i64>>,
    /// Per partition whose commit on revoke failed, the offset it had stored: when the partition comes back,
    /// the member resumes there instead of at the older committed offset. Without it a member whose
    /// assignment was lost while the broker was down (librdkafka revokes it after `session.timeout.ms`
    /// without a heartbeat answer) emitted again every record it had emitted during the outage.
    pub(super) resume_at: Mutex<HashMap<(String, i32), i64>>,
    /// What the member looks at for its progress line and its watchdog (see [`Observed`]).
    pub(super) observed: Observed,
}

/// What the callbacks tell the member loop about its partitions: the assignment, librdkafka's latest
/// statistics, and a wake-up when either changed.
#[derive(Debug, Default)]
pub(super) struct Observed {
    /// The partitions assigned now.
    pub(super) assigned: Mutex<BTreeSet<Part>>,
    /// Set by every assignment change, cleared by the member when it logs the change.
    pub(super) assignment_changed: AtomicBool,
    /// Per partition, the latest statistics (`statistics.interval.ms`).
    pub(super) stats: Mutex<BTreeMap<Part, PartStats>>,
    /// Set by every statistics callback, cleared by the member.
    pub(super) stats_fresh: AtomicBool,
    /// Wakes the member loop after either.
    pub(super) wake: tokio::sync::Notify,
}

impl Observed {
    fn assignment(&self, add: &[Part], remove: &[Part]) {
        if let Ok(mut a) = self.assigned.lock() {
            a.extend(add.iter().cloned());
            for part in remove {
                a.remove(part);
            }
        }
        self.assignment_changed.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// The partitions assigned now.
    pub(super) fn assigned(&self) -> BTreeSet<Part> {
        self.assigned.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// The latest statistics.
    pub(super) fn stats(&self) -> BTreeMap<Part, PartStats> {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl ClientContext for ConsumeContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        oauth_token(self.token.as_ref())
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_tracing(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.state.record_error(&error, reason);
    }

    // Runs inside the member's poll: parse and keep, nothing blocking.
    fn stats_raw(&self, statistics: &[u8]) {
        if let Some(stats) = parse_stats(statistics)
            && let Ok(mut s) = self.observed.stats.lock()
        {
            *s = stats;
            self.observed.stats_fresh.store(true, Ordering::SeqCst);
            self.observed.wake.notify_one();
        }
    }
}

impl ConsumerContext for ConsumeContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        // The callback runs inside the member's poll, on an async worker thread, and its commits and offset
        // look-ups block for up to CLOSE_TIMEOUT each: tell the runtime, so that it moves this worker's other
        // tasks to another thread meanwhile (a current-thread runtime, as in some tests, cannot).
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(|| self.rebalance_now(consumer, err, tpl));
        } else {
            self.rebalance_now(consumer, err, tpl);
        }
    }
}

impl ConsumeContext {
    /// The context of a new member.
    pub(super) fn new(
        state: Arc<ClientState>,
        token: Option<Arc<TokenSource>>,
        start_timestamp: Option<i64>,
    ) -> Self {
        Self {
            state,
            token,
            start_timestamp,
            revoked: Mutex::new(Vec::new()),
            stored: Mutex::new(HashMap::new()),
            resume_at: Mutex::new(HashMap::new()),
            observed: Observed::default(),
        }
    }

    fn rebalance_now(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.on_assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.on_revoke(consumer, tpl),
            other => tracing::error!(error = ?other, "Rebalance error."),
        }
    }

    /// New partitions: place each at its start (timestamp, or past a lost commit), then assign them.
    fn on_assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        self.state.mark_success();
        if let Some(ts) = self.start_timestamp {
            self.position_by_timestamp(consumer, tpl, ts);
        }
        let resumed = self.position_after_lost_commit(consumer, tpl);
        let parts: Vec<String> = tpl
            .elements()
            .iter()
            .map(|e| format!("{}/{}", e.topic(), e.partition()))
            .collect();
        tracing::info!(partitions = %parts.join(","), "Partitions assigned.");
        if let Err(e) = consumer.incremental_assign(tpl) {
            tracing::error!(error = %e, "Partition assignment failed.");
            return;
        }
        let added: Vec<Part> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        self.observed.assignment(&added, &[]);
        if resumed.count() > 0 {
            // Stored, so the next commit makes them durable even before a new record is confirmed.
            if let Err(e) = consumer.store_offsets(&resumed) {
                tracing::warn!(error = %e, "Storing the resumed offsets failed.");
            }
        }
    }

    /// Partitions taken away: commit what is confirmed, keep it when the commit fails, then unassign.
    fn on_revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        tracing::info!(
            count = parts.len(),
            "Partitions revoked: committing confirmed offsets."
        );
        // Only offsets of confirmed records are stored, so committing them here is safe; records
        // still in flight will be read again by the next owner (at least once).
        let failed = match consumer.commit_consumer_state(CommitMode::Sync) {
            Err(e) if e.rdkafka_error_code() != Some(RDKafkaErrorCode::NoOffset) => {
                tracing::warn!(error = %e, "Commit on revoke failed; the confirmed offsets are kept for when the partitions come back.");
                true
            }
            _ => false,
        };
        if let (Ok(mut stored), Ok(mut resume)) = (self.stored.lock(), self.resume_at.lock()) {
            for part in &parts {
                if let Some(next) = stored.remove(part)
                    && failed
                {
                    resume.insert(part.clone(), next);
                }
            }
        }
        self.observed.assignment(&[], &parts);
        if let Ok(mut r) = self.revoked.lock() {
            r.extend(parts);
        }
        if let Err(e) = consumer.incremental_unassign(tpl) {
            tracing::error!(error = %e, "Partition unassignment failed.");
        }
    }

    /// Partitions of `tpl` whose commit on revoke failed start at the offset the member had stored then, when
    /// that is past the committed one (every record before it was confirmed on AMQP, so nothing is skipped).
    /// Returns those partitions with their offsets.
    fn position_after_lost_commit(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
    ) -> TopicPartitionList {
        let mut resumed = TopicPartitionList::new();
        let kept: Vec<((String, i32), i64)> = match self.resume_at.lock() {
            Ok(mut r) => tpl
                .elements()
                .iter()
                .filter_map(|e| {
                    let key = (e.topic().to_owned(), e.partition());
                    r.remove(&key).map(|o| (key, o))
                })
                .collect(),
            Err(_) => return resumed,
        };
        if kept.is_empty() {
            return resumed;
        }
        let mut query = TopicPartitionList::new();
        for ((t, p), _) in &kept {
            query.add_partition(t, *p);
        }
        // If the committed offsets cannot be read, the kept ones are still safe (at worst records another
        // member committed meanwhile are emitted again).
        let committed = consumer.committed_offsets(query, CLOSE_TIMEOUT).ok();
        for ((t, p), next) in kept {
            let done = committed
                .as_ref()
                .and_then(|c| c.find_partition(&t, p))
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            if done.is_some_and(|c| c >= next) {
                continue;
            }
            tracing::info!(
                partition = %format!("{t}/{p}"),
                offset = next,
                committed = done,
                "Resuming at the last confirmed offset (its commit on revoke had failed)."
            );
            let _ignored = tpl.set_partition_offset(&t, p, Offset::Offset(next));
            let _ignored = resumed.add_partition_offset(&t, p, Offset::Offset(next));
            if let Ok(mut stored) = self.stored.lock() {
                stored.insert((t, p), next);
            }
        }
        resumed
    }

    /// For partitions without a committed offset, start at the first record at or after `ts`.
    fn position_by_timestamp(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
        ts: i64,
    ) {
        let Ok(committed) = consumer.committed_offsets(tpl.clone(), CLOSE_TIMEOUT) else {
            return;
        };
        let mut query = TopicPartitionList::new();
        for e in committed.elements() {
            if !matches!(e.offset(), Offset::Offset(_)) {
                let _ignored =
                    query.add_partition_offset(e.topic(), e.partition(), Offset::Offset(ts));
            }
        }
        if query.count() == 0 {
            return;
        }
        match consumer.offsets_for_times(query, CLOSE_TIMEOUT) {
            Ok(found) => {
                for e in found.elements() {
                    let offset = match e.offset() {
                        Offset::Offset(o) => Offset::Offset(o),
                        _ => Offset::End,
                    };
                    let _ignored = tpl.set_partition_offset(e.topic(), e.partition(), offset);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Could not look up offsets for the start time; using earliest.")
            }
        }
    }
}
