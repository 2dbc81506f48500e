//! The Produce action: writes `{"messages":[…]}` to the step's topic and emits, per partition written,
//! where the records went (`topicName, partition, errorCode, baseOffset, logAppendTime, logStartOffset,
//! records`).
//!
//! Owns input parsing, per-record size checks, sending with back-pressure, the per-partition output, and the
//! outcome: data for what was written, one error listing every failed record (→ reject), or a rebound when
//! the cluster was only temporarily unavailable. One producer per distinct connection + producer settings,
//! reused across messages and shared by concurrent executions.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::future::join_all;
use rdkafka::Timestamp;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::function::Execution;
use crate::kafka::classify::{Disposition, classify_code, describe};
use crate::kafka::client::{ClientState, KafkaContext};
use crate::kafka::config::{ConfigError, KafkaConnection, bool_field, str_field, u64_field};
use crate::kafka::token::{TokenError, TokenSource};
use crate::platform::amqp::Confirming;
use crate::platform::emitter::{EmitError, Emitter, ErrorReport, new_message};
use crate::schema;

const DEFAULT_TIMEOUT_MS: u64 = 30_000;
const DEFAULT_MESSAGE_MAX_BYTES: u64 = 1_048_576;
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Producer settings from the action's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceConfig {
    /// Target topic.
    pub topic: String,
    /// `none|gzip|snappy|lz4|zstd`.
    pub compression: String,
    /// Codec level, if set.
    pub compression_level: Option<u64>,
    /// `all`, `1` or `0`.
    pub acks: String,
    /// Idempotent producer.
    pub idempotence: bool,
    /// Per-request timeout.
    pub request_timeout_ms: u64,
    /// How long a record may take, retries included.
    pub delivery_timeout_ms: u64,
    /// Largest record accepted (checked before sending).
    pub message_max_bytes: u64,
    /// Key-less records: sticky batching or a random partition each.
    pub sticky_keyless: bool,
}

impl ProduceConfig {
    /// Parses the action's fields.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field.
    pub fn from_cfg(cfg: &Value) -> Result<Self, ConfigError> {
        let err = |field: &'static str, reason: String| ConfigError { field, reason };
        let topic = str_field(cfg, "topic")
            .ok_or_else(|| {
                err(
                    "topic",
                    "no topic given; enter the topic to write to".into(),
                )
            })?
            .to_owned();
        let compression = str_field(cfg, "compression")
            .unwrap_or("none")
            .to_ascii_lowercase();
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&compression.as_str()) {
            return Err(err(
                "compression",
                format!("unknown codec `{compression}`; use none, gzip, snappy, lz4 or zstd"),
            ));
        }
        let acks = match cfg.get("acks") {
            Some(Value::Number(n)) => n.to_string(),
            _ => str_field(cfg, "acks").unwrap_or("all").to_ascii_lowercase(),
        };
        let acks = match acks.as_str() {
            "all" | "-1" => "all".to_owned(),
            "1" | "0" => acks,
            other => {
                return Err(err(
                    "acks",
                    format!("`{other}` is not valid; use all, 1 or 0"),
                ));
            }
        };
        let idempotence_default = acks == "all";
        let idempotence = bool_field(cfg, "idempotence", idempotence_default)?;
        if idempotence && acks != "all" {
            return Err(err(
                "idempotence",
                format!(
                    "the idempotent producer needs acks=all (acks is {acks}); turn idempotence off or use acks=all"
                ),
            ));
        }
        let delivery_timeout_ms =
            u64_field(cfg, "deliveryTimeoutMs")?.unwrap_or(DEFAULT_TIMEOUT_MS);
        let request_timeout_ms = u64_field(cfg, "requestTimeoutMs")?
            .unwrap_or(DEFAULT_TIMEOUT_MS)
            .min(delivery_timeout_ms.max(1));
        let sticky_keyless = match str_field(cfg, "keylessPartitioning").unwrap_or("sticky") {
            "sticky" => true,
            "random" => false,
            other => {
                return Err(err(
                    "keylessPartitioning",
                    format!("`{other}` is not valid; use sticky or random"),
                ));
            }
        };
        let message_max_bytes =
            u64_field(cfg, "messageMaxBytes")?.unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
        if !(1000..=1_000_000_000).contains(&message_max_bytes) {
            return Err(err(
                "messageMaxBytes",
                "must be between 1000 and 1000000000".into(),
            ));
        }
        Ok(Self {
            topic,
            compression,
            compression_level: u64_field(cfg, "compressionLevel")?,
            acks,
            idempotence,
            request_timeout_ms,
            delivery_timeout_ms: delivery_timeout_ms.max(1),
            message_max_bytes,
            sticky_keyless,
        })
    }

    fn apply(&self, c: &mut rdkafka::ClientConfig) {
        c.set("partitioner", "murmur2_random");
        c.set("compression.codec", &self.compression);
        if let Some(level) = self.compression_level {
            c.set("compression.level", level.to_string());
        }
        c.set("acks", &self.acks);
        c.set("enable.idempotence", self.idempotence.to_string());
        c.set("request.timeout.ms", self.request_timeout_ms.to_string());
        c.set("message.timeout.ms", self.delivery_timeout_ms.to_string());
        // Our own pre-check decides record size; give librdkafka headroom for batch framing.
        c.set(
            "message.max.bytes",
            (self.message_max_bytes + 64 * 1024)
                .min(1_000_000_000)
                .to_string(),
        );
        c.set(
            "sticky.partitioning.linger.ms",
            if self.sticky_keyless { "10" } else { "0" },
        );
        c.set("linger.ms", "1");
    }

    fn cache_key(&self) -> String {
        format!(
            "{}|{}|{:?}|{}|{}|{}|{}|{}|{}",
            self.topic,
            self.compression,
            self.compression_level,
            self.acks,
            self.idempotence,
            self.request_timeout_ms,
            self.delivery_timeout_ms,
            self.message_max_bytes,
            self.sticky_keyless
        )
    }
}

/// One input record, ready to send.
#[derive(Debug)]
struct Record {
    index: usize,
    key: Option<Vec<u8>>,
    key_json: Value,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Vec<u8>)>,
    partition: Option<i32>,
    timestamp: Option<i64>,
}

impl Record {
    fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// Bytes of a key or value: strings as UTF-8, `{"base64": …}` decoded, anything else as compact JSON.
/// `path` (e.g. `/messages/3/key`) is only formatted for a problem.
fn payload_bytes(
    v: &Value,
    path: impl Fn() -> String,
    problems: &mut Vec<String>,
) -> Option<Vec<u8>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Object(o) if o.len() == 1 && o.contains_key("base64") => match o.get("base64") {
            Some(Value::String(b)) => match B64.decode(b.trim()) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    problems.push(format!("{}/base64: not valid base64 ({e})", path()));
                    None
                }
            },
            _ => {
                problems.push(format!("{}/base64: must be a string", path()));
                None
            }
        },
        other => Some(serde_json::to_vec(other).unwrap_or_default()),
    }
}

/// A non-negative integer given as a JSON number or as its decimal digits in a string (`"2"`), as the original
/// component's client library accepted both (the schema has refused anything else), converted to `T`; one that
/// does not fit is a problem at `path`, never silently dropped.
fn bounded_int<T: TryFrom<u64>>(
    v: &Value,
    path: impl Fn() -> String,
    problems: &mut Vec<String>,
) -> Option<T> {
    let parsed = match v {
        Value::String(s) => s.parse::<u64>().ok(),
        other => other.as_u64(),
    };
    match parsed.and_then(|n| T::try_from(n).ok()) {
        Some(n) => Some(n),
        None => {
            problems.push(format!("{}: {v} is too large", path()));
            None
        }
    }
}

/// Validates against `schemas/produce.in.json` and converts; every problem is listed with its JSON path.
fn parse_input(body: &Value) -> Result<Vec<Record>, Vec<String>> {
    let violations = schema::validate_produce_input(body);
    if !violations.is_empty() {
        return Err(violations.iter().map(ToString::to_string).collect());
    }
    let mut problems = Vec::new();
    let mut records = Vec::new();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    records.reserve(messages.len());
    for (index, m) in messages.iter().enumerate() {
        let key_json = m.get("key").cloned().unwrap_or(Value::Null);
        let key = payload_bytes(
            &key_json,
            || format!("/messages/{index}/key"),
            &mut problems,
        );
        let value = payload_bytes(
            m.get("value").unwrap_or(&Value::Null),
            || format!("/messages/{index}/value"),
            &mut problems,
        );
        let headers = match m.get("headers") {
            Some(Value::Object(o)) => o
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().unwrap_or_default().as_bytes().to_vec(),
                    )
                })
                .collect(),
            Some(Value::Array(pairs)) => pairs
                .iter()
                .filter_map(|p| {
                    let name = p.get(0)?.as_str()?;
                    let value = p.get(1)?.as_str()?;
                    Some((name.to_owned(), value.as_bytes().to_vec()))
                })
                .collect(),
            _ => Vec::new(),
        };
        let partition = m.get("partition").and_then(|v| {
            bounded_int::<i32>(v, || format!("/messages/{index}/partition"), &mut problems)
        });
        // Kafka timestamps are signed 64-bit milliseconds; a larger one must not silently become "now".
        let timestamp = m.get("timestamp").and_then(|v| {
            bounded_int::<i64>(v, || format!("/messages/{index}/timestamp"), &mut problems)
        });
        records.push(Record {
            index,
            key,
            key_json,
            value,
            headers,
            partition,
            timestamp,
        });
    }
    if problems.is_empty() {
        Ok(records)
    } else {
        Err(problems)
    }
}

/// A record that was not written.
#[derive(Debug, Clone)]
struct Failure {
    index: usize,
    disposition: Disposition,
    code: Option<RDKafkaErrorCode>,
    detail: Value,
}

/// Where a record landed.
#[derive(Debug, Clone)]
struct Written {
    index: usize,
    partition: i32,
    offset: i64,
    timestamp: Timestamp,
}

/// (topic, partition) → (low watermark, when it was read).
type LowWatermarks = HashMap<(String, i32), (i64, Instant)>;

/// A cached producer and the connection state its context reports into.
#[derive(Clone)]
struct SharedProducer {
    producer: FutureProducer<KafkaContext>,
    state: Arc<ClientState>,
    /// Recently read low watermarks: (topic, partition) → (value, when read).
    low_watermarks: Arc<std::sync::Mutex<LowWatermarks>>,
}

/// How long a partition's low watermark is reused. It only moves when retention deletes a segment, so a few
/// seconds of reuse keep `logStartOffset` true while saving a broker round trip per message.
const LOW_WATERMARK_TTL: Duration = Duration::from_secs(5);

/// Why no producer could be had.
enum NoProducer {
    /// Configuration the Kafka client refused.
    Report(ErrorReport),
    /// No SASL/OAUTHBEARER token.
    Token(TokenError),
}

/// A step configuration parsed once: every message of a step carries the same `cfg`.
struct Prepared {
    conn: KafkaConnection,
    pc: ProduceConfig,
    /// Producer cache key.
    key: String,
}

/// The Produce action with its producer cache.
#[derive(Default)]
pub struct ProduceAction {
    producers: Mutex<HashMap<String, SharedProducer>>,
    /// The last configuration parsed, and what it parsed into (comparing is cheaper than parsing and hashing).
    prepared: std::sync::Mutex<Option<(Value, Arc<Prepared>)>>,
}

impl std::fmt::Debug for ProduceAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProduceAction").finish_non_exhaustive()
    }
}

impl ProduceAction {
    /// The parsed configuration of `cfg`, from the cache when `cfg` is the one parsed last.
    fn prepare(&self, cfg: &Value) -> Result<Arc<Prepared>, ErrorReport> {
        if let Ok(last) = self.prepared.lock()
            && let Some((seen, prepared)) = last.as_ref()
            && seen == cfg
        {
            return Ok(Arc::clone(prepared));
        }
        let conn = KafkaConnection::from_cfg(cfg).map_err(ErrorReport::from)?;
        let pc = ProduceConfig::from_cfg(cfg).map_err(ErrorReport::from)?;
        let key = format!("{}|{}", conn.cache_key(), pc.cache_key());
        let prepared = Arc::new(Prepared { conn, pc, key });
        if let Ok(mut last) = self.prepared.lock() {
            *last = Some((cfg.clone(), Arc::clone(&prepared)));
        }
        Ok(prepared)
    }

    async fn producer(&self, prepared: &Prepared) -> Result<SharedProducer, NoProducer> {
        let (conn, pc, key) = (&prepared.conn, &prepared.pc, &prepared.key);
        let mut cache = self.producers.lock().await;
        if let Some(p) = cache.get(key) {
            return Ok(p.clone());
        }
        let mut cc = conn.to_client_config();
        pc.apply(&mut cc);
        // OAUTHBEARER: the first token before the producer exists, so its first connection has one.
        let token = TokenSource::start(conn).await.map_err(NoProducer::Token)?;
        let context = KafkaContext::with_token(token);
        let state = Arc::clone(&context.state);
        let producer = SharedProducer {
            producer: cc.create_with_context(context).map_err(|e| {
                NoProducer::Report(ErrorReport::new(
                    "ConfigurationError",
                    format!("cannot create the Kafka producer: {e}"),
                ))
            })?,
            state,
            low_watermarks: Arc::default(),
        };
        tracing::info!(brokers = %conn.brokers.join(","), topic = %pc.topic, "Kafka producer created.");
        cache.insert(key.clone(), producer.clone());
        Ok(producer)
    }

    async fn forget(&self, producer: &SharedProducer) {
        let mut cache = self.producers.lock().await;
        cache.retain(|_, p| !Arc::ptr_eq(&p.state, &producer.state));
    }

    /// Produces the message's records and emits the outcome.
    ///
    /// # Errors
    /// Invalid input or configuration, and failed records (all listed in one report).
    pub async fn process(&self, exec: Execution) -> Result<(), ErrorReport> {
        let prepared = self.prepare(&exec.cfg)?;
        let (conn, pc) = (&prepared.conn, &prepared.pc);
        let records =
            parse_input(exec.msg.get("body").unwrap_or(&Value::Null)).map_err(|problems| {
                ErrorReport::new(
                    "ValidationError",
                    format!(
                        "the input does not match the Produce input schema: {}",
                        problems.join("; ")
                    ),
                )
            })?;
        let producer = match self.producer(&prepared).await {
            Ok(p) => p,
            Err(NoProducer::Report(report)) => return Err(report),
            Err(NoProducer::Token(e)) if e.is_transient() => {
                // The identity provider is down or slow: like a broker that is, bring the message back later.
                tracing::warn!(error = %e, "No SASL/OAUTHBEARER token; rebounding the message.");
                exec.emitter
                    .rebound(&format!("token: {e}"))
                    .await
                    .map_err(ErrorReport::from)?;
                return Ok(());
            }
            Err(NoProducer::Token(e)) => {
                return Err(ErrorReport::new(
                    "AuthenticationError",
                    format!(
                        "Kafka authentication failed for {}: token: {e}",
                        conn.describe_auth()
                    ),
                ));
            }
        };
        let topic = pc.topic.as_str();
        let attempt_started = std::time::Instant::now();
        let (written, failures) = send_all(&producer, pc, &records).await;
        if !written.is_empty() {
            producer.state.mark_success();
        }
        let mut failures = failures;
        if !failures.is_empty()
            && failures
                .iter()
                .all(|f| f.disposition == Disposition::Transient)
            && topic_missing(&producer, topic).await
        {
            // A record for a topic that does not exist only times out; say what is really wrong.
            let text = describe(RDKafkaErrorCode::UnknownTopicOrPartition, topic);
            for f in &mut failures {
                f.disposition = Disposition::User;
                f.code = Some(RDKafkaErrorCode::UnknownTopicOrPartition);
                f.detail = json!({ "index": f.index, "error": text });
            }
        }

        let permanent: Vec<&Failure> = failures
            .iter()
            .filter(|f| f.disposition == Disposition::User)
            .collect();
        if let Some(auth) = failures
            .iter()
            .find(|f| matches!(f.code, Some(RDKafkaErrorCode::Authentication)))
        {
            self.forget(&producer).await;
            let reason = auth
                .detail
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("authentication failed");
            return Err(ErrorReport::new(
                "AuthenticationError",
                format!(
                    "Kafka authentication failed for {}: {reason}. {}",
                    conn.describe_auth(),
                    conn.auth.as_ref().map_or(
                        "Check the security settings of the credentials.",
                        crate::kafka::config::Auth::fix
                    ),
                ),
            ));
        }
        if !failures.is_empty() && permanent.is_empty() {
            // Only transient trouble: let the platform bring the whole message back later. Records that did
            // get written will be written again (at least once); no data is emitted now to avoid double output.
            let reason = format!(
                "{} of {} records could not be written to topic `{topic}` within {} ms: {}",
                failures.len(),
                records.len(),
                pc.delivery_timeout_ms,
                failures[0]
                    .detail
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("broker unavailable")
            );
            tracing::warn!(
                failed = failures.len(),
                "Kafka unavailable; rebounding the message."
            );
            // A producer that got nothing acknowledged for a whole delivery timeout (by any message) or that
            // librdkafka declared unusable is replaced, so the next attempt starts with fresh connections and a
            // new idempotent producer id instead of retrying through a session the broker keeps refusing.
            let fatal = producer.producer.client().fatal_error();
            if fatal.is_some()
                || (written.is_empty() && !producer.state.succeeded_since(attempt_started))
            {
                tracing::info!(
                    fatal = fatal.as_ref().map(|(_, reason)| reason.as_str()),
                    "Replacing the Kafka producer; the next message gets a new one."
                );
                self.forget(&producer).await;
            }
            exec.emitter
                .rebound(&reason)
                .await
                .map_err(ErrorReport::from)?;
            return Ok(());
        }

        // One data message per partition, sent in order without waiting for each confirm; every confirm is
        // awaited before the outcome is returned (and so before the delivery is acked).
        let mut confirms = Vec::new();
        let mut send_failed = None;
        for part in by_partition(&producer, topic, &written).await {
            if let Err(e) =
                send_partition(&exec.emitter, topic, &records, &part, &mut confirms).await
            {
                send_failed = Some(ErrorReport::from(e));
                break;
            }
        }
        for c in confirms {
            if let Err(e) = c.wait().await {
                send_failed.get_or_insert_with(|| ErrorReport::from(EmitError::from(e)));
            }
        }
        if let Some(report) = send_failed {
            return Err(report);
        }
        if failures.is_empty() {
            tracing::info!(records = records.len(), topic, "Records produced.");
            return Ok(());
        }
        let details: Vec<&Value> = failures.iter().map(|f| &f.detail).collect();
        let indexes: Vec<String> = failures.iter().map(|f| f.index.to_string()).collect();
        Err(ErrorReport::new(
            "ProduceError",
            format!(
                "{} of {} records were not written to topic `{topic}` (indexes {}); the other {} were written. Failed records: {}",
                failures.len(),
                records.len(),
                indexes.join(", "),
                written.len(),
                serde_json::to_string(&details).unwrap_or_default()
            ),
        ))
    }

    /// Flushes every producer (bounded); records still unacknowledged are logged as failed.
    pub async fn shutdown(&self) {
        let producers: Vec<SharedProducer> = self
            .producers
            .lock()
            .await
            .drain()
            .map(|(_, p)| p)
            .collect();
        for p in producers {
            let result = tokio::task::spawn_blocking(move || {
                let r = p.producer.flush(FLUSH_TIMEOUT);
                (r, p.producer.in_flight_count())
            })
            .await;
            match result {
                Ok((Ok(()), _)) => tracing::info!("Kafka producer flushed."),
                Ok((Err(e), left)) => {
                    tracing::error!(error = %e, unacknowledged = left, "Kafka producer flush did not finish; these records are reported as failed.")
                }
                Err(e) => tracing::error!(error = %e, "Kafka producer flush task failed."),
            }
        }
    }
}

fn failure(
    index: usize,
    code: Option<RDKafkaErrorCode>,
    disposition: Disposition,
    detail: Value,
) -> Failure {
    Failure {
        index,
        disposition,
        code,
        detail,
    }
}

/// Sends every record (too-large ones fail on their own), waits for all delivery reports.
async fn send_all(
    producer: &SharedProducer,
    pc: &ProduceConfig,
    records: &[Record],
) -> (Vec<Written>, Vec<Failure>) {
    let mut failures = Vec::new();
    let limit = usize::try_from(pc.message_max_bytes).unwrap_or(usize::MAX);
    let mut to_send = Vec::with_capacity(records.len());
    for r in records {
        let size = r.size();
        if size > limit {
            failures.push(failure(
                r.index,
                Some(RDKafkaErrorCode::MessageSizeTooLarge),
                Disposition::User,
                json!({ "index": r.index, "size": size, "limit": limit, "error": format!("record is {size} bytes, larger than the limit of {limit} bytes (messageMaxBytes)") }),
            ));
        } else {
            to_send.push(r);
        }
    }
    let (mut written, more, batch_rejected) = send_batch(producer, pc, &to_send).await;
    failures.extend(more);
    // The broker refuses a whole batch when it is larger than the topic's `max.message.bytes`, or when one of
    // its records has a timestamp the broker does not accept, so good records fail together with the bad one.
    // Like the Java producer, which splits a batch that is too large, send each of them again alone, one after
    // the other (so their order is kept): only the records that are refused by themselves fail.
    if batch_rejected.len() > 1 {
        failures.retain(|f| !batch_rejected.contains(&f.index));
        for index in batch_rejected {
            let Some(r) = records.iter().find(|r| r.index == index) else {
                continue;
            };
            let (w, f, _) = send_batch(producer, pc, &[r]).await;
            written.extend(w);
            failures.extend(f);
        }
        written.sort_by_key(|w| w.index);
    }
    failures.sort_by_key(|f| f.index);
    (written, failures)
}

/// Enqueues `records` and waits for every delivery report; also returns the indexes of records the broker
/// refused for something that may belong to another record of their batch (its size, a timestamp).
async fn send_batch(
    producer: &SharedProducer,
    pc: &ProduceConfig,
    records: &[&Record],
) -> (Vec<Written>, Vec<Failure>, Vec<usize>) {
    let mut failures = Vec::new();
    let mut batch_rejected = Vec::new();
    let mut pending = Vec::with_capacity(records.len());
    let deadline = Instant::now() + Duration::from_millis(pc.delivery_timeout_ms);
    for r in records {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&pc.topic);
        if !r.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            record = record.headers(headers);
        }
        if let Some(k) = &r.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            record = record.payload(v.as_slice());
        }
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        if let Some(t) = r.timestamp {
            record = record.timestamp(t);
        }
        loop {
            match producer.producer.send_result(record) {
                Ok(fut) => {
                    pending.push((r.index, fut));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now() < deadline =>
                {
                    // Back-pressure: librdkafka's queue is full; let it drain.
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => {
                    let code = e.rdkafka_error_code();
                    let disposition = code.map_or(Disposition::Transient, classify_code);
                    let text = code.map_or_else(|| e.to_string(), |c| describe(c, &pc.topic));
                    failures.push(failure(
                        r.index,
                        code,
                        disposition,
                        json!({ "index": r.index, "error": text }),
                    ));
                    break;
                }
            }
        }
    }
    let auth_watch = producer.state.auth_failed();
    let results = tokio::select! {
        results = join_all(pending.into_iter().map(|(i, f)| async move { (i, f.await) })) => results,
        reason = auth_watch => {
            // A credential that never worked: fail every record now instead of waiting for the timeout.
            for r in records {
                if !failures.iter().any(|f: &Failure| f.index == r.index) {
                    failures.push(failure(r.index, Some(RDKafkaErrorCode::Authentication), Disposition::User, json!({ "index": r.index, "error": reason })));
                }
            }
            return (Vec::new(), failures, Vec::new());
        }
    };
    let mut written = Vec::with_capacity(results.len());
    for (index, result) in results {
        match result {
            Ok(Ok(d)) => written.push(Written {
                index,
                partition: d.partition,
                offset: d.offset,
                timestamp: d.timestamp,
            }),
            Ok(Err((e, _))) => {
                let code = e.rdkafka_error_code();
                let mut disposition = code.map_or(Disposition::Transient, classify_code);
                let mut text = code.map_or_else(|| e.to_string(), |c| describe(c, &pc.topic));
                if let Some(reason) = producer
                    .state
                    .auth_error()
                    .filter(|_| !producer.state.ever_succeeded())
                {
                    disposition = Disposition::User;
                    text = reason;
                    failures.push(failure(
                        index,
                        Some(RDKafkaErrorCode::Authentication),
                        disposition,
                        json!({ "index": index, "error": text }),
                    ));
                    continue;
                }
                if code == Some(RDKafkaErrorCode::MessageSizeTooLarge) {
                    disposition = Disposition::User;
                }
                if matches!(
                    code,
                    Some(
                        RDKafkaErrorCode::MessageSizeTooLarge
                            | RDKafkaErrorCode::InvalidTimestamp
                            | RDKafkaErrorCode::InvalidRecord
                    )
                ) {
                    batch_rejected.push(index);
                }
                failures.push(failure(
                    index,
                    code,
                    disposition,
                    json!({ "index": index, "error": text }),
                ));
            }
            Err(_) => failures.push(failure(
                index,
                None,
                Disposition::Transient,
                json!({ "index": index, "error": "delivery report lost (producer closed)" }),
            )),
        }
    }
    (written, failures, batch_rejected)
}

/// The records written to one partition, in offset order, with the partition's low watermark.
struct PartitionWritten<'a> {
    partition: i32,
    low: Option<i64>,
    written: Vec<&'a Written>,
}

/// The records written, grouped by partition, in partition order.
async fn by_partition<'a>(
    producer: &SharedProducer,
    topic: &str,
    written: &'a [Written],
) -> Vec<PartitionWritten<'a>> {
    let mut groups: BTreeMap<i32, Vec<&Written>> = BTreeMap::new();
    for w in written {
        groups.entry(w.partition).or_default().push(w);
    }
    let lows = join_all(groups.keys().map(|&p| low_watermark(producer, topic, p))).await;
    groups
        .into_iter()
        .zip(lows)
        .map(|((partition, mut written), low)| {
            written.sort_by_key(|w| w.offset);
            PartitionWritten {
                partition,
                low,
                written,
            }
        })
        .collect()
}

/// The output object for a contiguous slice of one partition's records (its own `baseOffset`). With
/// `with_keys` false every record's `key` is `null` (a record whose key alone is larger than the outgoing limit).
fn partition_output(
    topic: &str,
    records: &[Record],
    part: &PartitionWritten<'_>,
    slice: &[&Written],
    with_keys: bool,
) -> Value {
    let base = slice.first().map_or(-1, |w| w.offset);
    let log_append = slice
        .iter()
        .find_map(|w| match w.timestamp {
            Timestamp::LogAppendTime(t) => Some(t),
            _ => None,
        })
        .map_or_else(|| "-1".to_owned(), |t| t.to_string());
    // Built as maps directly: `json!` runs every interpolated `Value` through a serializer (a deep
    // copy), which was a third of the instructions of a 100-record message.
    let recs: Vec<Value> = slice
        .iter()
        .map(|w| {
            let key = records
                .get(w.index)
                .filter(|_| with_keys)
                .map_or(Value::Null, |r| r.key_json.clone());
            object([
                ("index", Value::from(w.index)),
                ("key", key),
                ("offset", Value::from(w.offset)),
                (
                    "timestamp",
                    w.timestamp.to_millis().map_or(Value::Null, Value::from),
                ),
            ])
        })
        .collect();
    object([
        ("topicName", Value::from(topic)),
        ("partition", Value::from(part.partition.to_string())),
        ("errorCode", Value::from("0")),
        ("baseOffset", Value::from(base.to_string())),
        ("logAppendTime", Value::from(log_append)),
        (
            "logStartOffset",
            Value::from(part.low.map_or_else(|| "-1".to_owned(), |l| l.to_string())),
        ),
        ("records", Value::Array(recs)),
    ])
}

/// Sends one partition's output as data messages, in offset order, without waiting for their confirms. One
/// message when it fits the outgoing size limit; otherwise contiguous slices that each fit, every one with its
/// own `baseOffset`: records Kafka has accepted never turn into an error or a rebound (which would write them
/// again) because their report is large.
async fn send_partition(
    emitter: &Emitter,
    topic: &str,
    records: &[Record],
    part: &PartitionWritten<'_>,
    confirms: &mut Vec<Confirming>,
) -> Result<(), EmitError> {
    let mut todo: VecDeque<&[&Written]> = VecDeque::from([part.written.as_slice()]);
    while let Some(slice) = todo.pop_front() {
        let out = partition_output(topic, records, part, slice, true);
        match emitter.data_send(new_message(out)).await {
            Ok(c) => confirms.push(c),
            Err(EmitError::TooLarge { size, limit }) if slice.len() > 1 => {
                // As many slices as the size says, with a tenth to spare; a slice that still does not fit is
                // split again.
                let parts = (size.saturating_mul(11) / limit.max(1) / 10 + 1).clamp(2, slice.len());
                let len = slice.len().div_ceil(parts);
                for chunk in slice.chunks(len).rev() {
                    todo.push_front(chunk);
                }
            }
            Err(EmitError::TooLarge { .. }) => {
                tracing::warn!(
                    partition = part.partition,
                    "A written record's report is larger than the outgoing limit with its key; reported without it."
                );
                let out = partition_output(topic, records, part, slice, false);
                confirms.push(emitter.data_send(new_message(out)).await?);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A JSON object of `pairs`, without the serializer round trip that `json!` makes for interpolated values.
fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Whether the cluster answers that `topic` does not exist.
async fn topic_missing(producer: &SharedProducer, topic: &str) -> bool {
    let producer = producer.clone();
    let topic = topic.to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let md = match producer.producer.client().fetch_metadata(Some(&topic), Duration::from_secs(5)) {
            Ok(md) => md,
            Err(e) => {
                tracing::debug!(error = %e, "Topic metadata unavailable.");
                return None;
            }
        };
        let t = md.topics().first()?;
        tracing::debug!(topic = t.name(), error = ?t.error(), partitions = t.partitions().len(), "Topic metadata.");
        Some(matches!(
            t.error().map(RDKafkaErrorCode::from),
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic)
        ))
    })
    .await;
    matches!(answer, Ok(Some(true)))
}

/// The partition's low watermark (log start offset), or `None` when the broker does not answer in time.
async fn low_watermark(producer: &SharedProducer, topic: &str, partition: i32) -> Option<i64> {
    let key = (topic.to_owned(), partition);
    if let Ok(cache) = producer.low_watermarks.lock()
        && let Some((low, at)) = cache.get(&key)
        && at.elapsed() < LOW_WATERMARK_TTL
    {
        return Some(*low);
    }
    let client = producer.producer.clone();
    let t = topic.to_owned();
    let low = tokio::task::spawn_blocking(move || {
        client
            .client()
            .fetch_watermarks(&t, partition, Duration::from_secs(5))
            .map(|(low, _)| low)
    })
    .await
    .ok()?
    .map_err(|e| tracing::warn!(error = %e, partition, "Could not read the log start offset."))
    .ok()?;
    if let Ok(mut cache) = producer.low_watermarks.lock() {
        cache.insert(key, (low, Instant::now()));
    }
    Some(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_are_safe() {
        let pc = ProduceConfig::from_cfg(&json!({"topic": "t"})).unwrap();
        assert_eq!(pc.acks, "all");
        assert!(pc.idempotence);
        assert_eq!(pc.compression, "none");
        assert_eq!(pc.message_max_bytes, 1_048_576);
        let mut cc = rdkafka::ClientConfig::new();
        pc.apply(&mut cc);
        assert_eq!(cc.get("partitioner"), Some("murmur2_random"));
        assert_eq!(cc.get("enable.idempotence"), Some("true"));
        let pc = ProduceConfig::from_cfg(&json!({"topic": "t", "acks": "1"})).unwrap();
        assert!(!pc.idempotence, "idempotence follows acks when not set");
        let e = ProduceConfig::from_cfg(&json!({"topic": "t", "acks": "1", "idempotence": true}))
            .unwrap_err();
        assert_eq!(e.field, "idempotence");
        assert_eq!(
            ProduceConfig::from_cfg(&json!({})).unwrap_err().field,
            "topic"
        );
        assert_eq!(
            ProduceConfig::from_cfg(&json!({"topic": "t", "compression": "brotli"}))
                .unwrap_err()
                .field,
            "compression"
        );
    }

    #[test]
    fn input_conversion() {
        let recs = parse_input(&json!({"messages": [
            {"key": "k", "value": {"a": 1}, "headers": [["h", "1"], ["h", "2"]]},
            {"value": {"base64": "AAEC"}, "partition": 2, "timestamp": 1000},
            {"value": null}
        ]}))
        .unwrap();
        assert_eq!(recs[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(recs[0].value.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert_eq!(recs[0].headers.len(), 2);
        assert_eq!(recs[1].value.as_deref(), Some(&[0u8, 1, 2][..]));
        assert_eq!(
            (recs[1].partition, recs[1].timestamp),
            (Some(2), Some(1000))
        );
        assert!(recs[2].value.is_none(), "null value is a tombstone");
        let errs = parse_input(&json!({"messages": [{"value": {"base64": "@@"}}]})).unwrap_err();
        assert!(errs[0].starts_with("/messages/0/value/base64"), "{errs:?}");
        let errs = parse_input(
            &json!({"messages": [{"value": "v", "timestamp": 9_223_372_036_854_775_808_u64}]}),
        )
        .unwrap_err();
        assert_eq!(
            errs,
            ["/messages/0/timestamp: 9223372036854775808 is too large"]
        );
    }

    #[test]
    fn partition_and_timestamp_as_numeric_strings() {
        let recs = parse_input(&json!({"messages": [
            {"value": "v", "partition": "2", "timestamp": "1700000000000"}
        ]}))
        .unwrap();
        assert_eq!(
            (recs[0].partition, recs[0].timestamp),
            (Some(2), Some(1_700_000_000_000))
        );
        // Anything else stays a validation error naming the path.
        for (field, bad) in [
            ("partition", json!("two")),
            ("partition", json!("-1")),
            ("partition", json!(" 2")),
            ("timestamp", json!("1.5e12")),
            ("timestamp", json!("")),
            ("partition", json!(1.5)),
        ] {
            let mut m = json!({"value": "v"});
            m[field] = bad.clone();
            let errs = parse_input(&json!({ "messages": [m] })).unwrap_err();
            assert!(
                errs.iter()
                    .any(|e| e.starts_with(&format!("/messages/0/{field}"))),
                "{field}={bad}: {errs:?}"
            );
        }
        // Digits that do not fit are refused, not dropped.
        let errs = parse_input(&json!({"messages": [
            {"value": "v", "partition": "2147483648", "timestamp": "99999999999999999999"}
        ]}))
        .unwrap_err();
        assert_eq!(
            errs,
            [
                r#"/messages/0/partition: "2147483648" is too large"#,
                r#"/messages/0/timestamp: "99999999999999999999" is too large"#
            ]
        );
    }
}
