//! Exactly-once Produce (`deliveryGuarantee` `exactlyOnce`): each flow message's records in one Kafka
//! transaction, so a `read_committed` reader sees all of them once, or none.
//!
//! **Transactional ids.** `kafka-component.<stepId>.<containerId>.<slot>`: the step and the container come from
//! the platform (`ELASTICIO_STEP_ID`, `ELASTICIO_CONTAINER_ID`), so two containers of one step never share an
//! id, and a container that restarts (same container id) takes its ids back: its first `init_transactions`
//! fences the producer of its previous life and aborts that producer's open transaction at once. Runs without
//! a platform (`exec`) use `local` and the process id. A second producer configuration in one process (only
//! possible outside the platform, which runs one step per process) gets `.c<n>` before the slot.
//!
//! **Serialization.** A producer has at most one open transaction, and that transaction takes every record
//! the producer sends while it is open: two messages sharing one producer would commit or abort each other's
//! records. So a transaction owns its producer from `begin_transaction` to the commit or abort: a pool of up to
//! [`SLOTS`] transactional producers, one per message in flight, each behind an async mutex. A message takes
//! the lowest free slot (so a restarted container reuses, and fences, the same ids) and waits when all are
//! busy. With prefetch 1 (the platform default) that is one producer; with a larger prefetch up to [`SLOTS`]
//! transactions run side by side. One shared producer behind one mutex would be as correct, but would run
//! the messages one commit round trip after the other (see the benchmark in the README).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::config::ProduceConfig;
use super::headers::Added;
use super::input::Record;
use super::producer::{NoProducer, SharedProducer};
use super::send::{Failure, Written, send_all};
use crate::contract::ExecutionIds;
use crate::kafka::client::KafkaContext;
use crate::kafka::config::KafkaConnection;

/// Transactions in flight at most per producer configuration (one producer each).
pub(super) const SLOTS: usize = 8;

/// Why a message's transaction was not committed. The slot's producer was dropped after any of these: the
/// next message gets a new one, whose `init_transactions` starts a new epoch (and aborts whatever the old one
/// left open; when an abort was not confirmed, that producer is started at once, see [`end_left_open`]).
/// (A producer kept after an abort was seen on Apache Kafka 4.4 to fail its next transaction
/// with OUT_OF_ORDER_SEQUENCE_NUMBER when the broker had refused a record: librdkafka keeps the refused
/// partition's sequence past the gap. A new producer costs one `init_transactions` round trip, only after a
/// failure.)
pub(super) enum TxnError {
    /// No producer could be created.
    NoProducer(NoProducer),
    /// Credentials that never worked (the broker's reason).
    Authentication(String),
    /// Records were refused (for good or for now); the transaction was aborted.
    Records(SharedProducer, Vec<Failure>),
    /// Transient trouble outside the records (coordinator unreachable, a commit that timed out).
    Transient(String),
    /// The producer cannot go on: fenced by another producer with its id, not authorized, or another fatal
    /// error. `.2` is the transactional id.
    Fatal(RDKafkaErrorCode, String, String),
}

/// One slot's producer, or none yet.
type Slot = Arc<Mutex<Option<SharedProducer>>>;

/// The transactional producers of one configuration.
pub(super) struct Pool {
    /// The transactional id without the slot number.
    base: String,
    permits: Arc<Semaphore>,
    slots: Vec<Slot>,
}

/// Pools by producer cache key.
#[derive(Default)]
pub(super) struct Pools(std::sync::Mutex<HashMap<String, Arc<Pool>>>);

impl Pools {
    /// The pool for `key`, created on first use with ids derived from `ids`.
    pub(super) fn get(&self, key: &str, ids: &ExecutionIds) -> Arc<Pool> {
        let Ok(mut pools) = self.0.lock() else {
            return Arc::new(Pool::new(base_id(ids, usize::MAX)));
        };
        let n = pools.len();
        Arc::clone(
            pools
                .entry(key.to_owned())
                .or_insert_with(|| Arc::new(Pool::new(base_id(ids, n)))),
        )
    }
}

/// `kafka-component.<step>.<container>` (and `.c<n>` for the n-th further configuration of the process).
fn base_id(ids: &ExecutionIds, n: usize) -> String {
    let step = ids.step_id.as_deref().unwrap_or("local");
    let container = ids
        .container_id
        .clone()
        .unwrap_or_else(|| format!("pid{}", std::process::id()));
    match n {
        0 => format!("kafka-component.{step}.{container}"),
        n => format!("kafka-component.{step}.{container}.c{n}"),
    }
}

impl Pool {
    fn new(base: String) -> Self {
        Self {
            base,
            permits: Arc::new(Semaphore::new(SLOTS)),
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
        }
    }

    /// Writes `records` in one transaction on a free slot's producer (waiting for one when all are busy).
    ///
    /// # Errors
    /// See [`TxnError`]; the transaction is aborted, or, when the abort is not confirmed, ended in the background
    /// by a new producer with the slot's id ([`end_left_open`]).
    pub(super) async fn produce(
        &self,
        conn: &KafkaConnection,
        pc: &ProduceConfig,
        records: &[Record],
        added: &Added,
    ) -> Result<(SharedProducer, Vec<Written>), TxnError> {
        // Never closed; a slot is free once a permit is held (every other holder has at most one slot).
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok();
        let (index, mut slot) = self.free_slot().await;
        let id = format!("{}.{index}", self.base);
        let producer = match slot.as_ref() {
            Some(p) => p.clone(),
            None => {
                let p = init(conn, pc, &id).await?;
                *slot = Some(p.clone());
                p
            }
        };
        match transaction(&producer, pc, records, added, &id).await {
            Ok(written) => Ok((producer, written)),
            Err(Failed { error, left_open }) => {
                *slot = None;
                drop(producer);
                if left_open {
                    // The slot (and its permit) stay taken until the transaction is ended.
                    tokio::spawn(end_left_open(slot, permit, conn.clone(), pc.clone(), id));
                } else {
                    tracing::info!(transactional_id = %id, "Replacing the transactional Kafka producer; the next message gets a new one.");
                }
                Err(error)
            }
        }
    }

    /// The lowest free slot (locked), so a container reuses the same ids.
    async fn free_slot(&self) -> (usize, OwnedMutexGuard<Option<SharedProducer>>) {
        for (i, s) in self.slots.iter().enumerate() {
            if let Ok(guard) = Arc::clone(s).try_lock_owned() {
                return (i, guard);
            }
        }
        // Not reached while the permits bound the holders; wait for slot 0 rather than fail.
        let first = self.slots.first().map_or_else(Slot::default, Arc::clone);
        (0, first.lock_owned().await)
    }
}

/// Ends the transaction that a failed transaction left open on the slot's id (its abort was not confirmed, the
/// coordinator being unreachable), so that `read_committed` readers are not held at it: a `read_committed`
/// reader of a partition stops at the first open transaction's records (the last stable offset) until it
/// ends. A new producer's `init_transactions` on the id aborts it; asked until the coordinator answers, at
/// most until the coordinator aborts the transaction by itself (`transaction.timeout.ms`). Leaving it to the
/// next message on this slot would wait as long when no message comes (a burst at prefetch 8 that is over).
/// The new producer stays in the slot for the next message.
async fn end_left_open(
    mut slot: OwnedMutexGuard<Option<SharedProducer>>,
    _permit: Option<OwnedSemaphorePermit>,
    conn: KafkaConnection,
    pc: ProduceConfig,
    id: String,
) {
    let deadline = tokio::time::Instant::now() + pc.transaction_timeout();
    tracing::info!(transactional_id = %id, "Ending the transaction left open: a new producer with this id aborts it once the transaction coordinator answers.");
    let p = match SharedProducer::create(&conn, &pc, Some(&id)).await {
        Ok(p) => p,
        Err(_) => {
            tracing::warn!(transactional_id = %id, "No producer to end the transaction left open; the transaction coordinator aborts it after transaction.timeout.ms.");
            return;
        }
    };
    let timeout = Duration::from_millis(pc.delivery_timeout_ms);
    loop {
        match blocking(&p, timeout, |p, t| p.init_transactions(t)).await {
            Ok(()) => {
                tracing::info!(transactional_id = %id, "The transaction left open is aborted; Kafka transactional producer ready.");
                p.state.mark_success();
                *slot = Some(p);
                return;
            }
            Err(e)
                if matches!(kind(&e), Kind::Retriable)
                    && tokio::time::Instant::now() < deadline =>
            {
                tracing::debug!(transactional_id = %id, error = %e, "init_transactions not done yet; asking again.");
            }
            Err(e) => {
                tracing::warn!(transactional_id = %id, error = %e, "Could not end the transaction left open; the transaction coordinator aborts it after transaction.timeout.ms.");
                return;
            }
        }
    }
}

/// A new transactional producer with `init_transactions` done (which fences an older producer with this id
/// and aborts its open transaction).
async fn init(
    conn: &KafkaConnection,
    pc: &ProduceConfig,
    id: &str,
) -> Result<SharedProducer, TxnError> {
    let p = SharedProducer::create(conn, pc, Some(id))
        .await
        .map_err(TxnError::NoProducer)?;
    let timeout = Duration::from_millis(pc.delivery_timeout_ms);
    let auth_watch = p.state.auth_failed();
    let done = tokio::select! {
        done = blocking(&p, timeout, |p, t| p.init_transactions(t)) => done,
        reason = auth_watch => return Err(TxnError::Authentication(reason)),
    };
    match done {
        Ok(()) => {
            p.state.mark_success();
            tracing::info!(transactional_id = %id, "Kafka transactional producer ready.");
            Ok(p)
        }
        Err(e) => Err(match kind(&e) {
            Kind::Fatal(code) => TxnError::Fatal(code, e.to_string(), id.to_owned()),
            _ => TxnError::Transient(format!("init_transactions: {e}")),
        }),
    }
}

/// How librdkafka says a transactional call failed.
enum Kind {
    /// The producer is unusable.
    Fatal(RDKafkaErrorCode),
    /// The transaction must be aborted.
    Abort,
    /// May be called again (a timeout).
    Retriable,
}

fn kind(e: &KafkaError) -> Kind {
    match e {
        KafkaError::Transaction(r) if r.is_fatal() => Kind::Fatal(r.code()),
        KafkaError::Transaction(r) if r.txn_requires_abort() => Kind::Abort,
        _ => Kind::Retriable,
    }
}

/// Runs a blocking transactional call of librdkafka off the async threads.
async fn blocking(
    p: &SharedProducer,
    timeout: Duration,
    call: fn(&FutureProducer<KafkaContext>, Duration) -> KafkaResult<()>,
) -> KafkaResult<()> {
    let producer = p.producer.clone();
    tokio::task::spawn_blocking(move || call(&producer, timeout))
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}

/// A transaction that was not committed.
struct Failed {
    error: TxnError,
    /// Whether it may still be open at the coordinator (its abort was not confirmed).
    left_open: bool,
}

impl Failed {
    /// A transaction whose end was not confirmed: open unless the producer is done for (fatal, or fenced, when
    /// the id is another's).
    fn unconfirmed(error: TxnError) -> Self {
        let left_open = !matches!(error, TxnError::Fatal(..));
        Self { error, left_open }
    }
}

impl From<TxnError> for Failed {
    fn from(error: TxnError) -> Self {
        Self {
            error,
            left_open: false,
        }
    }
}

/// begin, send every record, commit; abort on any failure.
async fn transaction(
    p: &SharedProducer,
    pc: &ProduceConfig,
    records: &[Record],
    added: &Added,
    id: &str,
) -> Result<Vec<Written>, Failed> {
    let timeout = Duration::from_millis(pc.delivery_timeout_ms);
    if let Err(e) = p.producer.begin_transaction() {
        let text = format!("begin_transaction: {e}");
        return Err(fatal_or(p, id, TxnError::Transient(text)).into());
    }
    let (written, failures) = send_all(p, pc, records, added).await;
    if !failures.is_empty() {
        if !written.is_empty() {
            p.state.mark_success();
        }
        return Err(abort(p, id, timeout, TxnError::Records(p.clone(), failures)).await);
    }
    let committed = commit(p, timeout, id).await;
    match committed {
        Ok(()) => {
            p.state.mark_success();
            Ok(written)
        }
        Err(e) => match kind(&e) {
            Kind::Abort => {
                let text = format!("commit_transaction: {e}");
                Err(abort(p, id, timeout, TxnError::Transient(text)).await)
            }
            // Fatal (this producer can do nothing more; when fenced, the id is another's), or refused in a
            // way librdkafka calls neither abortable nor retriable: the transaction may still be open.
            _ => {
                let text = format!("commit_transaction: {e}");
                Err(Failed::unconfirmed(fatal_or(
                    p,
                    id,
                    TxnError::Transient(text),
                )))
            }
        },
    }
}

/// `commit_transaction`, called again for as long as its outcome is unknown.
///
/// A commit that timed out (the coordinator unreachable, or its answer late) may have reached the
/// coordinator: once the coordinator has the commit request it completes the commit, also after a restart,
/// and also when a new producer with this id starts (its `init_transactions` aborts only a transaction that
/// was still open). Giving up here and rebounding would therefore write the message a second time, visible
/// to `read_committed` readers. So the worker keeps the message and asks again (librdkafka resumes the same
/// commit) until the coordinator answers: committed, or refused (then it is aborted). A shutdown meanwhile
/// returns the message to the queue unacknowledged, the limit documented for a crash after the commit.
async fn commit(p: &SharedProducer, timeout: Duration, id: &str) -> KafkaResult<()> {
    let started = std::time::Instant::now();
    let mut attempts = 1u32;
    loop {
        let result = blocking(p, timeout, |p, t| p.commit_transaction(t)).await;
        match &result {
            Err(KafkaError::Transaction(e))
                if e.is_retriable() && !e.is_fatal() && !e.txn_requires_abort() =>
            {
                tracing::warn!(
                    transactional_id = %id,
                    attempts,
                    waited_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    error = %e,
                    "Transaction commit not confirmed; asking again (the message stays in flight until the coordinator answers)."
                );
                attempts += 1;
            }
            _ => return result,
        }
    }
}

/// Aborts the open transaction; `err` is why.
async fn abort(p: &SharedProducer, id: &str, timeout: Duration, err: TxnError) -> Failed {
    if p.fatal_error().is_some() {
        return fatal_or(p, id, err).into();
    }
    match blocking(p, timeout, |p, t| p.abort_transaction(t)).await {
        Ok(()) => {
            tracing::info!(transactional_id = %id, "Transaction aborted; none of its records is visible to read_committed readers.");
            err.into()
        }
        Err(e) => {
            tracing::warn!(transactional_id = %id, error = %e, "Transaction abort not confirmed; a new producer with this transactional id ends it.");
            Failed::unconfirmed(fatal_or(p, id, err))
        }
    }
}

/// The producer's fatal error when it has one, otherwise `err`.
fn fatal_or(p: &SharedProducer, id: &str, err: TxnError) -> TxnError {
    match p.fatal_error() {
        Some((code, reason)) => TxnError::Fatal(code, reason, id.to_owned()),
        None => err,
    }
}
