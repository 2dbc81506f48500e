//! The Consume trigger for real-time flows (PROTOCOL.md 5): the first scheduler tick starts one
//! consumer-group member per distinct connection + topics + group; later ticks start nothing. Every record
//! is emitted as a data message with the first tick's headers.
//!
//! At least once, never lost: `enable.auto.offset.store=false`; a record's offset is stored only after the
//! publisher confirm of that record **and of every earlier record of its partition**; stored offsets are
//! committed periodically (auto-commit of stored offsets), on partition revoke and on shutdown. In-flight
//! records are bounded (at the limit the member waits for confirms, and pauses its partitions while polling
//! continues if that lasts), and librdkafka's fetch queue is capped.

pub mod config;
mod context;
mod dead_letter;
mod member;
mod observe;
mod outcome;
mod pending;
mod progress;
mod record;
mod watchdog;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::sync::Mutex as AsyncMutex;
use tokio::task::JoinHandle;

use self::config::{ConsumeConfig, GroupProtocol, StartFrom};
use self::context::ConsumeContext;
use self::dead_letter::DeadLetter;
use self::member::MemberRun;
use crate::contract::{Execution, Function, FunctionError};
use crate::kafka::client::ClientState;
use crate::kafka::config::{Auth, KafkaConnection};
use crate::kafka::token::TokenSource;

/// How long shutdown waits for outstanding publisher confirms.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on the final commit and on leaving the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

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

impl Function for ConsumeTrigger {
    fn process(&self, exec: Execution) -> BoxFuture<'_, Result<(), FunctionError>> {
        Box::pin(self.tick(exec))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.stop_members())
    }
}

impl ConsumeTrigger {
    /// Handles one scheduler tick: starts the member on the first tick, nothing afterwards. Returns at once.
    ///
    /// # Errors
    /// Invalid configuration, or a consumer that cannot be created.
    async fn tick(&self, exec: Execution) -> Result<(), FunctionError> {
        let conn = KafkaConnection::from_cfg(&exec.cfg)?;
        let cc = ConsumeConfig::from_cfg(&exec.cfg)?;
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
        let (consumer, state) = start_consumer(&conn, &cc).await?;
        let dead_letter = DeadLetter::start(
            cc.dead_letter_topic.as_deref(),
            &conn,
            consumer.context().token.clone(),
            (&cc.group_id, &exec.ids),
        )?;
        tracing::info!(topics = %cc.topics.join(","), group = %cc.group_id, brokers = %conn.brokers.join(","), "Consumer group member started.");
        let run = MemberRun::new(
            Arc::new(consumer),
            state,
            &exec,
            (conn.clone(), cc),
            (
                conn.describe_auth(),
                conn.auth
                    .as_ref()
                    .map_or("Check the security settings of the credentials.", Auth::fix),
            ),
            dead_letter,
        );
        members.insert(
            key,
            Member {
                task: tokio::spawn(run.run()),
            },
        );
        Ok(())
    }

    /// Stops every member: no more fetching, outstanding confirms awaited, offsets committed, group left.
    async fn stop_members(&self) {
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

/// The member's librdkafka settings: the connection's, plus group membership, manual offset store with
/// periodic commits, and a bounded prefetch.
fn client_config(conn: &KafkaConnection, cc: &ConsumeConfig) -> ClientConfig {
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
        .set("max.poll.interval.ms", "300000")
        // Memory budget for prefetched records: librdkafka's default is ~1 GB per consumer.
        .set("queued.max.messages.kbytes", "16384")
        .set("queued.min.messages", "2000")
        .set("fetch.max.bytes", "8388608")
        // When the local queue is full librdkafka postpones the next fetch by this long (default 1 s, which
        // shows up as one-second stalls between fetches).
        .set("fetch.queue.backoff.ms", "20");
    match cc.group_protocol {
        GroupProtocol::Classic => {
            client
                .set("partition.assignment.strategy", "cooperative-sticky")
                .set("session.timeout.ms", cc.session_timeout_ms.to_string())
                // At most a third of the session, so a slow heartbeat never expires the member.
                .set(
                    "heartbeat.interval.ms",
                    (cc.session_timeout_ms / 3).clamp(100, 3000).to_string(),
                );
        }
        // KIP-848: the broker assigns and owns the session timeout and heartbeat interval (its group
        // config); librdkafka refuses these three client settings with this protocol.
        GroupProtocol::Consumer => {
            client.set("group.protocol", "consumer");
        }
    }
    if let Some(ms) = statistics_interval_ms(cc) {
        // librdkafka's statistics feed the progress line and the watchdog's view of the fetch position.
        client.set("statistics.interval.ms", ms.to_string());
    }
    if cc.has_pattern() {
        // How soon a topic created later that matches a pattern is found (librdkafka's default: 5 min).
        client.set(
            "topic.metadata.refresh.interval.ms",
            cc.pattern_refresh_ms.to_string(),
        );
    }
    client
}

/// How often librdkafka sends its statistics: every progress interval, and at least twice per stall timeout
/// (the watchdog compares the broker's end with the fetch position they report). `None`: both are off.
fn statistics_interval_ms(cc: &ConsumeConfig) -> Option<u64> {
    let progress = cc.progress_interval_sec * 1000;
    let stall = cc.stall_timeout_sec * 500;
    [progress, stall]
        .into_iter()
        .filter(|ms| *ms > 0)
        .min()
        .map(|ms| ms.max(1000))
}

/// A subscribed consumer of `cc`'s group with its connection state (the OAUTHBEARER token fetched first, so
/// its first connection has one).
async fn start_consumer(
    conn: &KafkaConnection,
    cc: &ConsumeConfig,
) -> Result<(StreamConsumer<ConsumeContext>, Arc<ClientState>), FunctionError> {
    // OAUTHBEARER: the first token before the consumer exists, so its first connection has one.
    let token = TokenSource::start(conn).await.map_err(|e| {
        FunctionError::config(
            "AuthenticationError",
            format!(
                "Kafka authentication failed for {}: token: {e}",
                conn.describe_auth()
            ),
        )
    })?;
    let state = Arc::new(ClientState::default());
    let start_timestamp = match cc.start_from {
        StartFrom::Timestamp(ts) => Some(ts),
        _ => None,
    };
    let context = ConsumeContext::new(Arc::clone(&state), token, start_timestamp);
    Ok((create_consumer(conn, cc, context)?, state))
}

/// A consumer of `cc`'s group with `context`, subscribed.
///
/// # Errors
/// librdkafka refuses the settings or the subscription.
fn create_consumer(
    conn: &KafkaConnection,
    cc: &ConsumeConfig,
    context: ConsumeContext,
) -> Result<StreamConsumer<ConsumeContext>, FunctionError> {
    let consumer: StreamConsumer<ConsumeContext> = client_config(conn, cc)
        .create_with_context(context)
        .map_err(|e| {
            FunctionError::config(
                "ConfigurationError",
                format!("cannot create the Kafka consumer: {e}"),
            )
        })?;
    let topics: Vec<&str> = cc.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).map_err(|e| {
        FunctionError::config(
            "ConfigurationError",
            format!(
                "invalid configuration field `topic`: cannot subscribe to {}: {e}",
                cc.topics.join(", ")
            ),
        )
    })?;
    Ok(consumer)
}
