//! What the member loop does besides consuming: its progress lines (`progress.rs`) and its stall watchdog
//! (`watchdog.rs`), driven by one future, [`Observer::next`], that the loop polls beside its other work, and
//! one handler, [`Observer::handle`]. Nothing here blocks the loop: broker look-ups run on blocking-pool
//! threads and their answers come back as events.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use super::CLOSE_TIMEOUT;
use super::config::ConsumeConfig;
use super::context::{ConsumeContext, Observed};
use super::progress::{Part, PartStats, Progress, Reason, query};
use super::watchdog::{Stalled, Watchdog, describe, positions};
use crate::contract::{Emitter, Progress as Shown};
use crate::kafka::config::KafkaConnection;

/// The member's consumer.
type Shared = Arc<StreamConsumer<ConsumeContext>>;

/// Something the observer has to look at.
pub(super) enum Event {
    /// A callback changed the assignment or brought statistics.
    Wake,
    /// The committed offsets and watermarks of a new assignment arrived.
    Looked(BTreeMap<Part, PartStats>),
    /// The watchdog's timer went off.
    ProbeDue,
    /// The watchdog's probe answered (when it was asked, and what).
    Probed(Instant, BTreeMap<Part, PartStats>),
}

/// The member's progress lines and watchdog.
pub(super) struct Observer {
    progress: Progress,
    watchdog: Watchdog,
    lookup: Option<JoinHandle<BTreeMap<Part, PartStats>>>,
    /// The assignment changed again while a look-up ran.
    lookup_again: bool,
    has_partitions: bool,
    /// The watchdog's timer; re-armed only when it goes off (records push the deadline, not the timer).
    probe_timer: Pin<Box<Sleep>>,
}

impl Observer {
    pub fn new(cc: &ConsumeConfig, conn: &KafkaConnection, consumer: &Shared) -> Self {
        let mut probe = conn.to_client_config();
        probe.set("group.id", &cc.group_id);
        let token = consumer.context().token.clone();
        Self {
            progress: Progress::new(cc.progress_interval_sec),
            watchdog: Watchdog::new(cc.stall_timeout_sec, probe, token),
            lookup: None,
            lookup_again: false,
            has_partitions: false,
            probe_timer: Box::pin(tokio::time::sleep_until(Instant::now())),
        }
    }

    /// A record arrived.
    pub fn received(&mut self) {
        self.progress.received();
        self.watchdog.active();
    }

    /// The member is not taking records on purpose (back-pressure): not a stall.
    pub fn holding(&mut self) {
        self.watchdog.active();
    }

    /// The member has a new consumer: it starts without partitions.
    pub fn recovered(&mut self) {
        self.watchdog.active();
        self.has_partitions = false;
        self.lookup = None;
        self.lookup_again = false;
    }

    /// The next event.
    pub async fn next(&mut self, observed: &Observed) -> Event {
        let armed = self.watchdog.due(self.has_partitions).is_some();
        let Self {
            lookup,
            watchdog,
            probe_timer,
            ..
        } = self;
        let looking = lookup.is_some();
        let probing = watchdog.probing();
        let looked = async {
            match lookup.as_mut() {
                Some(task) => task.await.unwrap_or_default(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = observed.wake.notified() => Event::Wake,
            answer = looked, if looking => {
                self.lookup = None;
                Event::Looked(answer)
            }
            () = probe_timer.as_mut(), if armed => Event::ProbeDue,
            (started, answer) = watchdog.probe_done(), if probing => Event::Probed(started, answer),
        }
    }

    /// Handles `event`; returns the partitions the member is stalled on (non-empty: re-create the consumer).
    pub fn handle(
        &mut self,
        event: Event,
        consumer: &Shared,
        in_flight: usize,
        emitter: &Emitter,
    ) -> Vec<Stalled> {
        let observed = &consumer.context().observed;
        match event {
            Event::Wake => {
                if observed.assignment_changed.swap(false, Ordering::SeqCst) {
                    self.assignment_changed(consumer, in_flight, emitter);
                }
                if observed.stats_fresh.swap(false, Ordering::SeqCst) && self.progress.due() {
                    let assigned = observed.assigned();
                    let lag = self.progress.log(
                        Reason::Interval,
                        &assigned,
                        &observed.stats(),
                        in_flight,
                    );
                    show(emitter, lag, in_flight);
                }
            }
            Event::Looked(answer) => {
                let assigned = observed.assigned();
                let lag = self
                    .progress
                    .log(Reason::Assignment, &assigned, &answer, in_flight);
                show(emitter, lag, in_flight);
                if std::mem::take(&mut self.lookup_again) {
                    self.start_lookup(consumer);
                }
            }
            Event::ProbeDue => {
                let due = self.watchdog.due(self.has_partitions);
                match due {
                    Some(at) if at <= Instant::now() => {
                        self.watchdog.start_probe(observed.assigned());
                    }
                    Some(at) => self.probe_timer.as_mut().reset(at),
                    None => {}
                }
            }
            Event::Probed(started, answer) => return self.probed(started, &answer, consumer),
        }
        Vec::new()
    }

    /// The watchdog's probe answered: the partitions the member is stalled on, warned about.
    fn probed(
        &mut self,
        started: Instant,
        answer: &BTreeMap<Part, PartStats>,
        consumer: &Shared,
    ) -> Vec<Stalled> {
        let at = positions(consumer.as_ref(), &consumer.context().observed.stats());
        let idle_sec = self.watchdog.idle().as_secs();
        let stalled = self.watchdog.verdict(started, answer, &at);
        self.rearm();
        if !stalled.is_empty() {
            tracing::warn!(
                partitions = %describe(&stalled),
                idle_sec,
                "Consumer stalled: partitions with lag received nothing for stallTimeoutSec; re-creating the Kafka consumer."
            );
        }
        stalled
    }

    /// Points the watchdog's timer at its next deadline.
    fn rearm(&mut self) {
        if let Some(at) = self.watchdog.due(true) {
            self.probe_timer.as_mut().reset(at);
        }
    }

    fn assignment_changed(&mut self, consumer: &Shared, in_flight: usize, emitter: &Emitter) {
        let assigned = consumer.context().observed.assigned();
        let had = self.has_partitions;
        self.has_partitions = !assigned.is_empty();
        self.watchdog.active();
        if self.has_partitions && !had {
            self.rearm();
        }
        if assigned.is_empty() {
            let lag = self
                .progress
                .log(Reason::Assignment, &assigned, &BTreeMap::new(), in_flight);
            show(emitter, lag, in_flight);
        } else if self.lookup.is_some() {
            self.lookup_again = true;
        } else {
            self.start_lookup(consumer);
        }
    }

    /// Asks the broker, through the member's consumer, about the assigned partitions (blocking-pool thread).
    fn start_lookup(&mut self, consumer: &Shared) {
        let consumer = Arc::clone(consumer);
        self.lookup = Some(tokio::task::spawn_blocking(move || {
            let parts = consumer.context().observed.assigned();
            query(consumer.as_ref(), &parts, CLOSE_TIMEOUT)
        }));
    }
}

/// Tells the runtime (the local runner shows it) the lag and the records in flight.
fn show(emitter: &Emitter, lag: Option<i64>, in_flight: usize) {
    emitter.progress(&Shown { lag, in_flight });
}
