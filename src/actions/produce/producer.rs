//! The producer cache: one producer per distinct connection + producer settings, reused across messages and
//! shared by concurrent executions, replaced when it became unusable; and the metadata look-ups that the
//! outcome needs (does the topic exist, a partition's log start offset).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::ProduceConfig;
use crate::kafka::client::{ClientState, KafkaContext};
use crate::kafka::config::KafkaConnection;
use crate::kafka::token::{TokenError, TokenSource};

const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a partition's low watermark is reused. It only moves when retention deletes a segment, so a few
/// seconds of reuse keep `logStartOffset` true while saving a broker round trip per message.
const LOW_WATERMARK_TTL: Duration = Duration::from_secs(5);

/// (topic, partition) → (low watermark, when it was read).
type LowWatermarks = HashMap<(String, i32), (i64, Instant)>;

/// A cached producer and the connection state its context reports into.
#[derive(Clone)]
pub(super) struct SharedProducer {
    pub(super) producer: FutureProducer<KafkaContext>,
    pub(super) state: Arc<ClientState>,
    /// Recently read low watermarks: (topic, partition) → (value, when read).
    low_watermarks: Arc<std::sync::Mutex<LowWatermarks>>,
}

/// Why no producer could be had.
pub(super) enum NoProducer {
    /// Configuration the Kafka client refused.
    Config(String),
    /// No SASL/OAUTHBEARER token.
    Token(TokenError),
}

/// Producers by cache key.
#[derive(Default)]
pub(super) struct Producers(Mutex<HashMap<String, SharedProducer>>);

impl Producers {
    /// The producer for `key`, created on first use.
    pub(super) async fn get(
        &self,
        key: &str,
        conn: &KafkaConnection,
        pc: &ProduceConfig,
    ) -> Result<SharedProducer, NoProducer> {
        let mut cache = self.0.lock().await;
        if let Some(p) = cache.get(key) {
            return Ok(p.clone());
        }
        let producer = SharedProducer::create(conn, pc, None).await?;
        cache.insert(key.to_owned(), producer.clone());
        Ok(producer)
    }

    /// Drops `producer` from the cache: the next message gets a new one.
    pub(super) async fn forget(&self, producer: &SharedProducer) {
        let mut cache = self.0.lock().await;
        cache.retain(|_, p| !Arc::ptr_eq(&p.state, &producer.state));
    }

    /// Flushes every producer (bounded); records still unacknowledged are logged as failed.
    pub(super) async fn flush_all(&self) {
        let producers: Vec<SharedProducer> = self.0.lock().await.drain().map(|(_, p)| p).collect();
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

impl SharedProducer {
    /// A new producer for `conn` and `pc`; a transactional one when `transactional_id` is given.
    pub(super) async fn create(
        conn: &KafkaConnection,
        pc: &ProduceConfig,
        transactional_id: Option<&str>,
    ) -> Result<Self, NoProducer> {
        let mut cc = conn.to_client_config();
        pc.apply(&mut cc);
        if let Some(id) = transactional_id {
            cc.set("transactional.id", id);
        }
        // OAUTHBEARER: the first token before the producer exists, so its first connection has one.
        let token = TokenSource::start(conn).await.map_err(NoProducer::Token)?;
        let context = KafkaContext::with_token(token);
        let state = Arc::clone(&context.state);
        let producer = Self {
            producer: cc.create_with_context(context).map_err(|e| {
                NoProducer::Config(format!("cannot create the Kafka producer: {e}"))
            })?,
            state,
            low_watermarks: Arc::default(),
        };
        tracing::info!(brokers = %conn.brokers.join(","), topic = %pc.topic, transactional_id, "Kafka producer created.");
        Ok(producer)
    }

    /// librdkafka's fatal error, when this producer hit one: it cannot produce any more.
    pub(super) fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.producer.client().fatal_error()
    }

    /// Whether the cluster answers that `topic` does not exist.
    pub(super) async fn topic_missing(&self, topic: &str) -> bool {
        let producer = self.clone();
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
    pub(super) async fn low_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let key = (topic.to_owned(), partition);
        if let Ok(cache) = self.low_watermarks.lock()
            && let Some((low, at)) = cache.get(&key)
            && at.elapsed() < LOW_WATERMARK_TTL
        {
            return Some(*low);
        }
        let client = self.producer.clone();
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
        if let Ok(mut cache) = self.low_watermarks.lock() {
            cache.insert(key, (low, Instant::now()));
        }
        Some(low)
    }
}
