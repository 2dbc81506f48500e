//! A running group member: fetch records, emit them as data messages with several in flight, store each
//! partition's offset once every earlier record is confirmed, pause under back-pressure, and leave the group
//! cleanly. Progress lines and the stall watchdog are in `observe.rs`; re-creating a stalled consumer in
//! `member/recover.rs`.

mod flow;
mod recover;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::flow::Flow;
use super::config::{ConsumeConfig, GroupProtocol};
use super::context::ConsumeContext;
use super::dead_letter::DeadLetter;
use super::observe::Observer;
use super::outcome::{Outcome, settle};
use super::pending::{Pending, Position};
use super::record::{BatchBody, Batched, RawRecord, record_body};
use super::{CLOSE_TIMEOUT, DRAIN_TIMEOUT};
use crate::contract::{Action, Emitter, Execution, Fatal, FunctionError};
use crate::kafka::client::ClientState;
use crate::kafka::config::KafkaConnection;

/// How long a batch waits to fill up.
const BATCH_LINGER: Duration = Duration::from_millis(50);
/// How long the member stops taking records at the in-flight limit before it pauses its partitions. Not
/// taking records for this long is harmless (far below `max.poll.interval.ms`) and keeps librdkafka's
/// prefetched records, which a pause throws away and fetches again; only a downstream that stays slow
/// gets the partitions paused (and the member keeps polling, so it stays in its group).
const PAUSE_AFTER: Duration = Duration::from_millis(500);
/// The linger timer's position while no batch is open.
const NO_LINGER: Duration = Duration::from_secs(3600);

/// The running member's loop.
pub(super) struct MemberRun {
    consumer: Arc<StreamConsumer<ConsumeContext>>,
    state: Arc<ClientState>,
    emitter: Emitter,
    config: ConsumeConfig,
    /// Who authenticates and how, and what to check when the broker refuses it (for the error text).
    auth: (String, &'static str),
    stop: CancellationToken,
    fatal: Fatal,
    /// Where records that cannot be emitted go, when `deadLetterTopic` is set.
    dead_letter: Option<Arc<DeadLetter>>,
    /// The connection, for a new consumer when the watchdog finds this one stalled.
    conn: KafkaConnection,
    /// Consumers replaced by the watchdog, still closing.
    closing: Vec<tokio::task::JoinHandle<()>>,
}

/// A sent data message's records and what became of them (confirmed, skipped, dead-lettered).
type EmitResult = (Vec<Position>, Outcome);
type ConfirmWait = futures_util::future::BoxFuture<'static, EmitResult>;

impl MemberRun {
    pub(super) fn new(
        consumer: Arc<StreamConsumer<ConsumeContext>>,
        state: Arc<ClientState>,
        exec: &Execution,
        (conn, config): (KafkaConnection, ConsumeConfig),
        auth: (String, &'static str),
        dead_letter: Option<Arc<DeadLetter>>,
    ) -> Self {
        Self {
            consumer,
            state,
            emitter: exec.emitter.clone(),
            config,
            auth,
            stop: exec.shutdown.clone(),
            fatal: exec.fatal.clone(),
            dead_letter,
            conn,
            closing: Vec::new(),
        }
    }

    // size: one select over stop, confirms, authentication, linger, back-pressure, observation and records.
    pub(super) async fn run(mut self) {
        let mut pending = Pending::default();
        let mut emits: FuturesUnordered<ConfirmWait> = FuturesUnordered::new();
        let mut batch: Vec<Batched> = Vec::new();
        let mut topic: Option<Arc<str>> = None;
        let mut flow = Flow::default();
        let mut linger = Box::pin(tokio::time::sleep(NO_LINGER));
        let auth_state = Arc::clone(&self.state);
        let auth_failed = auth_state.auth_failed();
        tokio::pin!(auth_failed);
        let mut observer = Observer::new(&self.config, &self.conn, &self.consumer);
        loop {
            self.apply_revocations(&mut pending);
            let step = flow.step(pending.in_flight + batch.len(), self.config.max_in_flight);
            if let Some(pause) = step.set_paused {
                self.set_paused(pause);
            }
            if step.waiting || flow.paused {
                observer.holding();
            }
            let mut stalled = Vec::new();
            tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                Some((positions, result)) = emits.next() => self.finish(&mut pending, &positions, result).await,
                reason = &mut auth_failed => {
                    let (who, fix) = &self.auth;
                    let text = format!("Kafka authentication failed for {who}: {reason}. {fix}");
                    self.report(FunctionError::config("AuthenticationError", text).with_action(Action::Crash)).await;
                    break;
                }
                () = &mut linger, if !batch.is_empty() => {
                    let wait = self.emit(std::mem::take(&mut batch)).await;
                    emits.push(wait);
                    linger.as_mut().reset(Instant::now() + NO_LINGER);
                }
                () = tokio::time::sleep_until(step.until), if step.waiting => {}
                event = observer.next(&self.consumer.context().observed) => {
                    let in_flight = pending.in_flight + batch.len();
                    stalled = observer.handle(event, &self.consumer, in_flight, &self.emitter);
                }
                // Polled except while waiting briefly at the limit, and also while paused: that keeps the member
                // in its group and serves callbacks.
                msg = self.consumer.recv(), if !step.waiting => match msg {
                    Ok(m) => {
                        self.state.mark_success();
                        observer.received();
                        let pos: Position = (m.topic().to_owned(), m.partition(), m.offset());
                        pending.add(&pos);
                        if batch.is_empty() {
                            linger.as_mut().reset(Instant::now() + BATCH_LINGER);
                        }
                        let raw = self.dead_letter.as_ref().map(|_| RawRecord::of(&m));
                        let topic = shared_topic(&mut topic, m.topic());
                        batch.push((pos, record_body(&m, topic, self.config.parse_json), raw));
                        if batch.len() >= self.config.batch_size {
                            let wait = self.emit(std::mem::take(&mut batch)).await;
                            emits.push(wait);
                        }
                    }
                    Err(e) => self.report_consumer_error(&e).await,
                },
            }
            if !stalled.is_empty() {
                self.recover(&mut pending, &mut emits, &mut batch).await;
                flow = Flow::default();
                observer.recovered();
            }
        }
        self.close(pending, emits, batch).await;
    }

    /// Publishes an error of the running member; one that stops it also stops the process.
    async fn report(&self, error: FunctionError) {
        if let Err(e) = self.emitter.error(&error).await {
            tracing::error!(error = %e, "Could not publish the error.");
        }
        if error.action == Action::Crash {
            self.fatal.raise(error.message);
        }
    }

    /// Sends one data message for `batch` (a single record's body when the batch size is 1) in order, and
    /// returns the wait for its confirm. The wait is polled by the loop with the others; the publisher never
    /// makes a send wait behind a confirm that is not being polled.
    /// With a dead-letter topic, the wait also writes the records there if the message cannot be emitted.
    async fn emit(&self, mut batch: Vec<Batched>) -> ConfirmWait {
        let positions: Vec<Position> = batch.iter().map(|(p, _, _)| p.clone()).collect();
        let kept: Vec<RawRecord> = batch.iter_mut().filter_map(|(_, _, r)| r.take()).collect();
        let sent = if self.config.batch_size == 1 && batch.len() == 1 {
            self.emitter.data_send_json(&batch[0].1).await
        } else {
            let records: Vec<_> = batch.into_iter().map(|(_, b, _)| b).collect();
            self.emitter
                .data_send_json(&BatchBody { records: &records })
                .await
        };
        let dead_letter = self.dead_letter.clone();
        Box::pin(async move {
            let result = match sent {
                Ok(confirm) => confirm.wait().await,
                Err(e) => Err(e),
            };
            let outcome = settle(dead_letter, &positions, kept, result).await;
            (positions, outcome)
        })
    }

    /// A confirmed (or unsendable) message: store offsets that are now safe.
    async fn finish(&self, pending: &mut Pending, positions: &[Position], outcome: Outcome) {
        // Cannot become a message (e.g. larger than the outgoing limit): report and skip (or dead-letter), never
        // block. Records whose dead-letter write failed are never stored: the worker stops (see dead_letter.rs).
        if let Some(error) = outcome.report(positions) {
            self.report(error).await;
        }
        if !outcome.may_store() {
            return;
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
                self.report(FunctionError::config("TopicMissing", text).with_action(Action::Retry))
                    .await;
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
                self.report(
                    FunctionError::config("ConfigurationError", text).with_action(Action::Crash),
                )
                .await;
            }
            Some(
                RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::UnsupportedVersion
                | RDKafkaErrorCode::UnsupportedFeature,
            ) if self.config.group_protocol == GroupProtocol::Consumer
                && self.group_protocol_unsupported() =>
            {
                // librdkafka makes a refused ConsumerGroupHeartbeat a fatal error: the member can never join.
                let text = format!(
                    "invalid configuration field `groupProtocol`: the broker does not support the consumer group protocol `consumer` (KIP-848; {e}); set groupProtocol to classic, or enable it on the brokers (Apache Kafka 4.0 or later, `group.coordinator.rebalance.protocols` including consumer)"
                );
                tracing::error!(error = %text, "Consumer group protocol refused.");
                self.report(
                    FunctionError::config("ConfigurationError", text).with_action(Action::Crash),
                )
                .await;
            }
            _ => {
                tracing::warn!(error = %e, "Kafka consumer error; librdkafka retries.");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Whether the client's fatal error (if any) is the broker refusing the consumer group protocol.
    fn group_protocol_unsupported(&self) -> bool {
        match self.consumer.client().fatal_error() {
            Some((code, _)) => matches!(
                code,
                RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::UnsupportedFeature
            ),
            // Not fatal: the error itself was the refusal.
            None => true,
        }
    }

    /// Drains in-flight confirms, commits, leaves the group; every step bounded.
    async fn close(
        mut self,
        mut pending: Pending,
        mut emits: FuturesUnordered<ConfirmWait>,
        batch: Vec<Batched>,
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
        let replaced = std::mem::take(&mut self.closing);
        drop(self);
        recover::closed(replaced).await;
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

/// The member's shared name of `name` (records of one topic share one allocation; a new topic replaces it).
fn shared_topic<'a>(cache: &'a mut Option<Arc<str>>, name: &str) -> &'a Arc<str> {
    if cache.as_deref() != Some(name) {
        *cache = Some(Arc::from(name));
    }
    // Always set by now; the closure only satisfies the borrow checker (no `expect` in product code).
    cache.get_or_insert_with(|| Arc::from(name))
}
