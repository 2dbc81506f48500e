//! The Consume trigger for real-time flows (PROTOCOL.md 5): the first scheduler tick starts one
//! consumer-group member per distinct connection + topics + group; later ticks start nothing. Every record
//! is emitted as a data message with the first tick's headers.
//!
//! At least once, never lost: `enable.auto.offset.store=false`; a record's offset is stored only after the
//! publisher confirm of that record **and of every earlier record of its partition**; stored offsets are
//! committed periodically (auto-commit of stored offsets), on partition revoke and on shutdown. In-flight
//! records are bounded (at the limit the member waits for confirms, and pauses its partitions while polling
//! continues if that lasts), and librdkafka's fetch queue is capped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::function::{Execution, Fatal};
use crate::kafka::client::{ClientState, log_to_tracing, oauth_token};
use crate::kafka::config::{ConfigError, KafkaConnection, bool_field, str_field, u64_field};
use crate::kafka::token::TokenSource;
use crate::platform::emitter::{EmitError, Emitter, ErrorReport, new_message};

/// Default for records emitted but not yet confirmed, across all partitions, before fetching pauses.
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// How long shutdown waits for outstanding publisher confirms.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on the final commit and on leaving the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a batch waits to fill up.
const BATCH_LINGER: Duration = Duration::from_millis(50);
/// How long the member stops taking records at the in-flight limit before it pauses its partitions. Not
/// taking records for this long is harmless (far below `max.poll.interval.ms`) and keeps librdkafka's
/// prefetched records, which a pause throws away and fetches again; only a downstream that stays slow
/// gets the partitions paused (and the member keeps polling, so it stays in its group).
const PAUSE_AFTER: Duration = Duration::from_millis(500);

/// Where a new group starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// Oldest retained record.
    Earliest,
    /// Only records written from now on.
    Latest,
    /// First record at or after this time (ms since the epoch).
    Timestamp(i64),
}

/// The trigger's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumeConfig {
    /// Topics to subscribe to.
    pub topics: Vec<String>,
    /// Consumer group.
    pub group_id: String,
    /// Start position when the group has no committed offset.
    pub start_from: StartFrom,
    /// Records per data message.
    pub batch_size: usize,
    /// Emit JSON values as JSON instead of strings.
    pub parse_json: bool,
    /// How long the group waits for a silent member before reassigning its partitions.
    pub session_timeout_ms: u64,
    /// Records emitted but not yet confirmed before fetching pauses (back-pressure).
    pub max_in_flight: usize,
}

impl ConsumeConfig {
    /// Parses the trigger's fields.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field.
    pub fn from_cfg(cfg: &Value) -> Result<Self, ConfigError> {
        let err = |field: &'static str, reason: String| ConfigError { field, reason };
        let topics: Vec<String> = str_field(cfg, "topic")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        if topics.is_empty() {
            return Err(err(
                "topic",
                "no topic given; enter one topic or several separated by commas".into(),
            ));
        }
        let group_id = str_field(cfg, "groupId")
            .ok_or_else(|| {
                err(
                    "groupId",
                    "no consumer group given; enter a group id".into(),
                )
            })?
            .to_owned();
        let start_from = match str_field(cfg, "startFrom")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("earliest") => StartFrom::Earliest,
            Some("latest") => StartFrom::Latest,
            Some(other) => match other.parse::<i64>() {
                Ok(ts) if ts >= 0 => StartFrom::Timestamp(ts),
                _ => {
                    return Err(err(
                        "startFrom",
                        format!(
                            "`{other}` is not valid; use earliest, latest or a time in ms since the epoch"
                        ),
                    ));
                }
            },
        };
        let session_timeout_ms = u64_field(cfg, "sessionTimeoutMs")?.unwrap_or(45_000);
        if !(1_000..=3_600_000).contains(&session_timeout_ms) {
            return Err(err(
                "sessionTimeoutMs",
                "must be between 1000 and 3600000".into(),
            ));
        }
        let batch_size = u64_field(cfg, "batchSize")?.unwrap_or(1);
        if !(1..=10_000).contains(&batch_size) {
            return Err(err("batchSize", "must be between 1 and 10000".into()));
        }
        Ok(Self {
            topics,
            group_id,
            start_from,
            batch_size: usize::try_from(batch_size).unwrap_or(1),
            parse_json: bool_field(cfg, "parseJson", false)?,
            session_timeout_ms,
            max_in_flight: match u64_field(cfg, "maxInFlight")? {
                None => DEFAULT_MAX_IN_FLIGHT,
                Some(v) if (1..=100_000).contains(&v) => {
                    usize::try_from(v).unwrap_or(DEFAULT_MAX_IN_FLIGHT)
                }
                Some(_) => return Err(err("maxInFlight", "must be between 1 and 100000".into())),
            },
        })
    }
}

/// Consumer context: logs and errors into tracing, start-by-timestamp on assignment, commit on revoke.
struct ConsumeContext {
    state: Arc<ClientState>,
    token: Option<Arc<TokenSource>>,
    start_timestamp: Option<i64>,
    revoked: Mutex<Vec<(String, i32)>>,
    /// Per assigned partition, the offset last stored (every earlier record confirmed on AMQP).
    stored: Mutex<HashMap<(String, i32), i64>>,
    /// Per partition whose commit on revoke failed, the offset it had stored: when the partition comes back,
    /// the member resumes there instead of at the older committed offset. Without it a member whose
    /// assignment was lost while the broker was down (librdkafka revokes it after `session.timeout.ms`
    /// without a heartbeat answer) emitted again every record it had emitted during the outage.
    resume_at: Mutex<HashMap<(String, i32), i64>>,
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
}

impl ConsumerContext for ConsumeContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
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
                } else if resumed.count() > 0 {
                    // Stored, so the next commit makes them durable even before a new record is confirmed.
                    if let Err(e) = consumer.store_offsets(&resumed) {
                        tracing::warn!(error = %e, "Storing the resumed offsets failed.");
                    }
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
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
                if let (Ok(mut stored), Ok(mut resume)) =
                    (self.stored.lock(), self.resume_at.lock())
                {
                    for part in &parts {
                        if let Some(next) = stored.remove(part)
                            && failed
                        {
                            resume.insert(part.clone(), next);
                        }
                    }
                }
                if let Ok(mut r) = self.revoked.lock() {
                    r.extend(parts);
                }
                if let Err(e) = consumer.incremental_unassign(tpl) {
                    tracing::error!(error = %e, "Partition unassignment failed.");
                }
            }
            other => tracing::error!(error = ?other, "Rebalance error."),
        }
    }
}

impl ConsumeContext {
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

/// One running group member.
struct Member {
    task: JoinHandle<()>,
}

/// The Consume trigger: a registry of running members.
#[derive(Default)]
pub struct ConsumeTrigger {
    members: AsyncMutex<HashMap<String, Member>>,
}

impl std::fmt::Debug for ConsumeTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumeTrigger").finish_non_exhaustive()
    }
}

impl ConsumeTrigger {
    /// Handles one scheduler tick: starts the member on the first tick, nothing afterwards. Returns at once.
    ///
    /// # Errors
    /// Invalid configuration, or a consumer that cannot be created.
    pub async fn process(&self, exec: Execution) -> Result<(), ErrorReport> {
        let conn = KafkaConnection::from_cfg(&exec.cfg).map_err(ErrorReport::from)?;
        let cc = ConsumeConfig::from_cfg(&exec.cfg).map_err(ErrorReport::from)?;
        let key = format!(
            "{}|{}|{}",
            conn.cache_key(),
            cc.topics.join(","),
            cc.group_id
        );
        let mut members = self.members.lock().await;
        if members.contains_key(&key) {
            tracing::info!(group = %cc.group_id, "Consumer already running; tick acknowledged.");
            return Ok(());
        }
        // OAUTHBEARER: the first token before the consumer exists, so its first connection has one.
        let token = TokenSource::start(&conn).await.map_err(|e| {
            ErrorReport::new(
                "AuthenticationError",
                format!(
                    "Kafka authentication failed for {}: token: {e}",
                    conn.describe_auth()
                ),
            )
        })?;
        let state = Arc::new(ClientState::default());
        let context = ConsumeContext {
            state: Arc::clone(&state),
            token,
            start_timestamp: match cc.start_from {
                StartFrom::Timestamp(ts) => Some(ts),
                _ => None,
            },
            revoked: Mutex::new(Vec::new()),
            stored: Mutex::new(HashMap::new()),
            resume_at: Mutex::new(HashMap::new()),
        };
        let mut client = conn.to_client_config();
        client
            .set("group.id", &cc.group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                if cc.start_from == StartFrom::Latest {
                    "latest"
                } else {
                    "earliest"
                },
            )
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", cc.session_timeout_ms.to_string())
            // At most a third of the session, so a slow heartbeat never expires the member.
            .set(
                "heartbeat.interval.ms",
                (cc.session_timeout_ms / 3).clamp(100, 3000).to_string(),
            )
            .set("max.poll.interval.ms", "300000")
            // Memory budget for prefetched records: librdkafka's default is ~1 GB per consumer.
            .set("queued.max.messages.kbytes", "16384")
            .set("queued.min.messages", "2000")
            .set("fetch.max.bytes", "8388608")
            // When the local queue is full librdkafka postpones the next fetch by this long (default 1 s, which
            // shows up as one-second stalls between fetches).
            .set("fetch.queue.backoff.ms", "20");
        let consumer: StreamConsumer<ConsumeContext> =
            client.create_with_context(context).map_err(|e| {
                ErrorReport::new(
                    "ConfigurationError",
                    format!("cannot create the Kafka consumer: {e}"),
                )
            })?;
        let topics: Vec<&str> = cc.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|e| {
            ErrorReport::new(
                "ConfigurationError",
                format!("cannot subscribe to {}: {e}", cc.topics.join(", ")),
            )
        })?;
        tracing::info!(topics = %cc.topics.join(","), group = %cc.group_id, brokers = %conn.brokers.join(","), "Consumer group member started.");
        let run = MemberRun {
            consumer: Arc::new(consumer),
            state,
            emitter: exec.emitter.clone(),
            config: cc,
            auth: (
                conn.describe_auth(),
                conn.auth.as_ref().map_or(
                    "Check the security settings of the credentials.",
                    crate::kafka::config::Auth::fix,
                ),
            ),
            stop: exec.shutdown.clone(),
            fatal: exec.fatal.clone(),
        };
        members.insert(
            key,
            Member {
                task: tokio::spawn(run.run()),
            },
        );
        Ok(())
    }

    /// Stops every member: no more fetching, outstanding confirms awaited, offsets committed, group left.
    pub async fn shutdown(&self) {
        let members: Vec<Member> = self.members.lock().await.drain().map(|(_, m)| m).collect();
        for m in members {
            match tokio::time::timeout(DRAIN_TIMEOUT + 2 * CLOSE_TIMEOUT, m.task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "Consumer task failed."),
                Err(_) => tracing::error!(
                    "Consumer did not stop in time; uncommitted records will be read again."
                ),
            }
        }
    }
}

/// A record's place: topic, partition, offset.
type Position = (String, i32, i64);

/// Per-partition bookkeeping of records emitted but not yet stored.
#[derive(Debug, Default)]
struct Pending {
    /// topic/partition → offset → confirmed?
    partitions: HashMap<(String, i32), BTreeMap<i64, bool>>,
    in_flight: usize,
}

impl Pending {
    fn add(&mut self, (topic, partition, offset): &Position) {
        self.partitions
            .entry((topic.clone(), *partition))
            .or_default()
            .insert(*offset, false);
        self.in_flight += 1;
    }

    /// Marks positions confirmed; returns, per partition, the next offset to store (all earlier confirmed).
    fn confirm(&mut self, positions: &[Position]) -> Vec<(String, i32, i64)> {
        let mut touched = Vec::new();
        for (topic, partition, offset) in positions {
            let key = (topic.clone(), *partition);
            if let Some(map) = self.partitions.get_mut(&key)
                && let Some(done) = map.get_mut(offset)
                && !*done
            {
                *done = true;
                self.in_flight = self.in_flight.saturating_sub(1);
                if !touched.contains(&key) {
                    touched.push(key);
                }
            }
        }
        let mut store = Vec::new();
        for key in touched {
            let Some(map) = self.partitions.get_mut(&key) else {
                continue;
            };
            let mut last = None;
            while let Some((&offset, &true)) = map.first_key_value() {
                map.pop_first();
                last = Some(offset);
            }
            if let Some(last) = last {
                store.push((key.0.clone(), key.1, last + 1));
            }
        }
        store
    }

    /// Forgets revoked partitions (their unconfirmed records will be read again by the next owner).
    fn forget(&mut self, topic: &str, partition: i32) {
        if let Some(map) = self.partitions.remove(&(topic.to_owned(), partition)) {
            let unconfirmed = map.values().filter(|c| !**c).count();
            self.in_flight = self.in_flight.saturating_sub(unconfirmed);
        }
    }
}

/// The running member's loop.
struct MemberRun {
    consumer: Arc<StreamConsumer<ConsumeContext>>,
    state: Arc<ClientState>,
    emitter: Emitter,
    config: ConsumeConfig,
    /// Who authenticates and how, and what to check when the broker refuses it (for the error text).
    auth: (String, &'static str),
    stop: CancellationToken,
    fatal: Fatal,
}

/// `parseJson`: a JSON object or array becomes JSON; any other text (a number, `true`, `null`, a quoted string,
/// invalid JSON) stays the original string, so a value of `null` text is never mistaken for a tombstone.
fn parse_json_text(text: &str) -> Value {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return Value::String(text.to_owned());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// One record turned into the body of a data message.
fn record_json(m: &BorrowedMessage<'_>, parse_json: bool) -> Value {
    let bytes = |b: Option<&[u8]>, parse: bool| -> Value {
        match b {
            None => Value::Null,
            Some(b) => match std::str::from_utf8(b) {
                Ok(text) if parse => parse_json_text(text),
                Ok(text) => Value::String(text.to_owned()),
                Err(_) => json!({ "base64": B64.encode(b) }),
            },
        }
    };
    let headers: Vec<Value> = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| json!([h.key, bytes(h.value, false)]))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "value": bytes(m.payload(), parse_json),
        "key": bytes(m.key(), false),
        // A string, as the original component's output metadata has it (Produce's `partition` too).
        "partition": m.partition().to_string(),
        "offset": m.offset(),
        "topic": m.topic(),
        "timestamp": m.timestamp().to_millis(),
        "headers": headers,
    })
}

type EmitResult = (Vec<Position>, Result<(), EmitError>);
type ConfirmWait = std::pin::Pin<Box<dyn std::future::Future<Output = EmitResult> + Send>>;

impl MemberRun {
    async fn run(self) {
        let mut pending = Pending::default();
        let mut emits: FuturesUnordered<ConfirmWait> = FuturesUnordered::new();
        let mut batch: Vec<(Position, Value)> = Vec::new();
        let mut paused = false;
        let mut full_since: Option<tokio::time::Instant> = None;
        let mut linger = Box::pin(tokio::time::sleep(Duration::from_secs(3600)));
        let auth_state = Arc::clone(&self.state);
        let auth_failed = auth_state.auth_failed();
        tokio::pin!(auth_failed);
        loop {
            self.apply_revocations(&mut pending);
            // At the limit, stop taking records and wait for confirms; pause only if that lasts PAUSE_AFTER,
            // then resume at half the limit. librdkafka drops a paused partition's prefetched records and
            // fetches them again after the resume, so pausing at every record past the limit spent most of
            // the time refetching.
            let in_flight = pending.in_flight + batch.len();
            let at_limit = in_flight >= self.config.max_in_flight;
            if at_limit && full_since.is_none() {
                tracing::debug!(
                    in_flight,
                    "Back-pressure: in-flight limit reached; waiting for confirms."
                );
                full_since = Some(tokio::time::Instant::now());
            } else if !at_limit && !paused {
                full_since = None;
            }
            let pause = if paused {
                in_flight > self.config.max_in_flight / 2
            } else {
                at_limit && full_since.is_some_and(|t| t.elapsed() >= PAUSE_AFTER)
            };
            if pause != paused {
                self.set_paused(pause);
                paused = pause;
                if !pause {
                    full_since = None;
                }
            }
            let waiting = at_limit && !paused;
            let pause_at = full_since.map_or_else(tokio::time::Instant::now, |t| t + PAUSE_AFTER);
            tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                Some((positions, result)) = emits.next() => self.finish(&mut pending, &positions, result).await,
                reason = &mut auth_failed => {
                    let (who, fix) = &self.auth;
                    let text = format!("Kafka authentication failed for {who}: {reason}. {fix}");
                    if let Err(e) = self.emitter.error(&ErrorReport::new("AuthenticationError", &text)).await {
                        tracing::error!(error = %e, "Could not publish the authentication error.");
                    }
                    self.fatal.raise(text);
                    break;
                }
                () = &mut linger, if !batch.is_empty() => {
                    let wait = self.emit(std::mem::take(&mut batch)).await;
                    emits.push(wait);
                    linger.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(3600));
                }
                () = tokio::time::sleep_until(pause_at), if waiting => {}
                // Polled except while waiting briefly at the limit, and also while paused: that keeps the member
                // in its group and serves callbacks.
                msg = self.consumer.recv(), if !waiting => match msg {
                    Ok(m) => {
                        self.state.mark_success();
                        let pos: Position = (m.topic().to_owned(), m.partition(), m.offset());
                        pending.add(&pos);
                        let body = record_json(&m, self.config.parse_json);
                        if batch.is_empty() {
                            linger.as_mut().reset(tokio::time::Instant::now() + BATCH_LINGER);
                        }
                        batch.push((pos, body));
                        if batch.len() >= self.config.batch_size {
                            let wait = self.emit(std::mem::take(&mut batch)).await;
                    emits.push(wait);
                        }
                    }
                    Err(e) => self.report_consumer_error(&e).await,
                },
            }
        }
        self.close(pending, emits, batch).await;
    }

    /// Sends one data message for `batch` (a single record's body when the batch size is 1) in order, and
    /// returns the wait for its confirm.
    async fn emit(&self, batch: Vec<(Position, Value)>) -> ConfirmWait {
        let positions: Vec<Position> = batch.iter().map(|(p, _)| p.clone()).collect();
        let body = if self.config.batch_size == 1 && batch.len() == 1 {
            batch
                .into_iter()
                .next()
                .map(|(_, b)| b)
                .unwrap_or(Value::Null)
        } else {
            let records: Vec<Value> = batch.into_iter().map(|(_, b)| b).collect();
            json!({ "count": records.len(), "records": records })
        };
        match self.emitter.data_send(new_message(body)).await {
            Ok(confirming) => {
                // The wait (and its retries, which may reconnect) runs as its own task: if it only progressed
                // when this loop polls it, a retry holding the publisher's connection lock would deadlock with
                // this loop's next send waiting for that lock.
                let wait = tokio::spawn(async move { confirming.wait().await });
                Box::pin(async move {
                    let result = match wait.await {
                        Ok(r) => r.map_err(EmitError::from),
                        Err(e) => {
                            tracing::error!(error = %e, "Publisher confirm task failed.");
                            Err(EmitError::from(
                                crate::platform::amqp::AmqpError::ConfirmTimeout,
                            ))
                        }
                    };
                    (positions, result)
                })
            }
            Err(e) => Box::pin(std::future::ready((positions, Err(e)))),
        }
    }

    /// A confirmed (or unsendable) message: store offsets that are now safe.
    async fn finish(
        &self,
        pending: &mut Pending,
        positions: &[Position],
        result: Result<(), EmitError>,
    ) {
        if let Err(e) = result {
            // Cannot become a message (e.g. larger than the outgoing limit): report and skip, never block.
            let places: Vec<String> = positions
                .iter()
                .map(|(t, p, o)| format!("{t}/{p}@{o}"))
                .collect();
            let text = format!(
                "record(s) {} could not be emitted and were skipped: {e}",
                places.join(", ")
            );
            tracing::error!(error = %text, "Skipping records.");
            if let Err(pe) = self
                .emitter
                .error(&ErrorReport::new("RecordSkipped", &text))
                .await
            {
                tracing::error!(error = %pe, "Could not publish the skip report.");
            }
        }
        let store = pending.confirm(positions);
        if store.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in &store {
            let _ignored = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next));
        }
        match self.consumer.store_offsets(&tpl) {
            Ok(()) => {
                if let Ok(mut stored) = self.consumer.context().stored.lock() {
                    for (topic, partition, next) in store {
                        stored.insert((topic, partition), next);
                    }
                }
            }
            // Happens for partitions revoked meanwhile: the next owner reads them again.
            Err(e) => tracing::debug!(error = %e, "Offset store skipped."),
        }
    }

    fn apply_revocations(&self, pending: &mut Pending) {
        let revoked: Vec<(String, i32)> = self
            .consumer
            .context()
            .revoked
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default();
        for (t, p) in revoked {
            pending.forget(&t, p);
        }
    }

    fn set_paused(&self, pause: bool) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let result = if pause {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        match result {
            Ok(()) => tracing::debug!(
                paused = pause,
                "Back-pressure: fetching {}.",
                if pause { "paused" } else { "resumed" }
            ),
            Err(e) => tracing::warn!(error = %e, "Pause/resume failed."),
        }
    }

    async fn report_consumer_error(&self, e: &KafkaError) {
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                let text = format!(
                    "{e}: a subscribed topic does not exist (yet); create it or correct the Topic field. Consumption continues once it exists."
                );
                tracing::error!(error = %text, "Subscribed topic missing.");
                if let Err(pe) = self
                    .emitter
                    .error(&ErrorReport::new("TopicMissing", &text))
                    .await
                {
                    tracing::error!(error = %pe, "Could not publish the error.");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Some(RDKafkaErrorCode::InvalidSessionTimeout) => {
                // The broker refuses the member's JoinGroup on every retry: without this the member would stay
                // outside its group forever with only a warning in the log.
                let text = format!(
                    "invalid configuration field `sessionTimeoutMs`: the broker refuses a session timeout of {} ms; Apache Kafka accepts `group.min.session.timeout.ms` (default 6000) to `group.max.session.timeout.ms` (default 1800000)",
                    self.config.session_timeout_ms
                );
                tracing::error!(error = %text, "Consumer group join refused.");
                if let Err(pe) = self
                    .emitter
                    .error(&ErrorReport::new("ConfigurationError", &text))
                    .await
                {
                    tracing::error!(error = %pe, "Could not publish the error.");
                }
                self.fatal.raise(text);
            }
            _ => {
                tracing::warn!(error = %e, "Kafka consumer error; librdkafka retries.");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Drains in-flight confirms, commits, leaves the group; every step bounded.
    async fn close(
        self,
        mut pending: Pending,
        mut emits: FuturesUnordered<ConfirmWait>,
        batch: Vec<(Position, Value)>,
    ) {
        if !batch.is_empty() && self.fatal.reason().is_none() {
            let wait = self.emit(batch).await;
            emits.push(wait);
        }
        tracing::info!(
            in_flight = emits.len(),
            "Consumer stopping: waiting for publisher confirms."
        );
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some((positions, result)) = emits.next().await {
                self.finish(&mut pending, &positions, result).await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::error!(
                "Publisher confirms did not all arrive; those records will be read again."
            );
        }
        let consumer = Arc::clone(&self.consumer);
        drop(self);
        let closing = tokio::task::spawn_blocking(move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!("Offsets committed."),
                Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
                Err(e) => tracing::warn!(error = %e, "Final commit failed."),
            }
            consumer.unsubscribe();
            // Dropping the last reference closes the consumer and leaves the group.
            drop(consumer);
        });
        match tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
            Ok(_) => tracing::info!("Consumer left the group."),
            Err(_) => tracing::error!(
                "Leaving the consumer group timed out; the broker will expire the member."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_json_turns_only_objects_and_arrays_into_json() {
        assert_eq!(
            parse_json_text(r#"{"orderId":1001,"amount":25.5}"#).to_string(),
            r#"{"orderId":1001,"amount":25.5}"#,
            "an object, its keys in the order they came"
        );
        assert_eq!(parse_json_text(" [1,2]"), json!([1, 2]));
        for text in [
            "123",
            "null",
            "true",
            r#""quoted""#,
            "{not json",
            "[1,",
            "",
            "plain",
        ] {
            assert_eq!(
                parse_json_text(text),
                Value::String(text.to_owned()),
                "{text:?}"
            );
        }
    }

    fn pos(p: i32, o: i64) -> Position {
        ("t".to_owned(), p, o)
    }

    #[test]
    fn offsets_are_stored_only_when_every_earlier_record_is_confirmed() {
        let mut pending = Pending::default();
        for o in 0..4 {
            pending.add(&pos(0, o));
        }
        pending.add(&pos(1, 10));
        assert!(
            pending.confirm(&[pos(0, 2)]).is_empty(),
            "0 and 1 still in flight"
        );
        assert!(pending.confirm(&[pos(0, 1)]).is_empty());
        assert_eq!(pending.confirm(&[pos(0, 0)]), vec![("t".to_owned(), 0, 3)]);
        assert_eq!(pending.confirm(&[pos(1, 10), pos(0, 3)]).len(), 2);
        assert_eq!(pending.in_flight, 0);
        pending.add(&pos(2, 5));
        pending.forget("t", 2);
        assert_eq!(pending.in_flight, 0);
        assert!(
            pending.confirm(&[pos(2, 5)]).is_empty(),
            "late confirm of a revoked partition is ignored"
        );
    }

    #[test]
    fn config_parsing() {
        let c = ConsumeConfig::from_cfg(&json!({"topic": "a, b", "groupId": "g"})).unwrap();
        assert_eq!(c.topics, vec!["a", "b"]);
        assert_eq!(
            (c.start_from, c.batch_size, c.parse_json),
            (StartFrom::Earliest, 1, false)
        );
        let c = ConsumeConfig::from_cfg(&json!({"topic": "a", "groupId": "g", "startFrom": "1700000000000", "batchSize": "100"})).unwrap();
        assert_eq!(
            (c.start_from, c.batch_size),
            (StartFrom::Timestamp(1_700_000_000_000), 100)
        );
        assert_eq!(
            ConsumeConfig::from_cfg(&json!({"topic": "a"}))
                .unwrap_err()
                .field,
            "groupId"
        );
        assert_eq!(
            ConsumeConfig::from_cfg(&json!({"topic": "a", "groupId": "g", "startFrom": "soon"}))
                .unwrap_err()
                .field,
            "startFrom"
        );
        assert_eq!(
            ConsumeConfig::from_cfg(&json!({"topic": " , ", "groupId": "g"}))
                .unwrap_err()
                .field,
            "topic"
        );
    }
}
