//! Re-creating a stalled member's consumer (the watchdog's recovery, see `watchdog.rs`).
//!
//! Order, so that no record is lost or skipped: (1) the partial batch is sent and every outstanding publisher
//! confirm awaited (bounded), so the offsets stored are exactly the confirmed ones; (2) a new consumer is made
//! with the same connection state and token, and those stored offsets as its resume points: when it gets a
//! partition back it starts at the later of the group's committed offset and the one confirmed here (the same
//! rule as after a failed commit on revoke, `context.rs`), and stores it so the next commit makes it durable; a
//! commit through the stalled connections would not arrive; (3) the old consumer is closed on a blocking-pool
//! thread, which may take until librdkafka's own request timeouts end, so the member does not wait for it
//! (shutdown does, bounded). The new consumer joins the group over new connections; the broker gives it the
//! old member's partitions once that member left or its session expired.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rdkafka::consumer::{Consumer, StreamConsumer};
use tokio::task::JoinHandle;

use super::super::context::ConsumeContext;
use super::super::pending::Pending;
use super::super::record::Batched;
use super::super::{CLOSE_TIMEOUT, DRAIN_TIMEOUT, create_consumer};
use super::{ConfirmWait, MemberRun};

impl MemberRun {
    /// Replaces the stalled consumer (see the file's opening comment).
    pub(super) async fn recover(
        &mut self,
        pending: &mut Pending,
        emits: &mut FuturesUnordered<ConfirmWait>,
        batch: &mut Vec<Batched>,
    ) {
        if !batch.is_empty() {
            let wait = self.emit(std::mem::take(batch)).await;
            emits.push(wait);
        }
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some((positions, result)) = emits.next().await {
                self.finish(pending, &positions, result).await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "Publisher confirms did not all arrive before the consumer was re-created; those records will be read again."
            );
        }
        // What is still unconfirmed is read again by the new consumer.
        *emits = FuturesUnordered::new();
        *pending = Pending::default();
        let next = match successor(&self.consumer, &self.conn, &self.config) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e.message, "Could not re-create the Kafka consumer; keeping the stalled one.");
                return;
            }
        };
        let old = std::mem::replace(&mut self.consumer, Arc::new(next));
        self.closing.retain(|h| !h.is_finished());
        self.closing.push(tokio::task::spawn_blocking(move || {
            old.unsubscribe();
            // The last reference: closes the consumer (leaving the group if the broker can still be reached).
            drop(old);
        }));
        tracing::info!(
            "Kafka consumer re-created; it rejoins the group and resumes at the last confirmed offsets."
        );
    }
}

/// A new consumer for the member of `old`: same connection state, token and start rule; its resume points are
/// the offsets `old` stored (every earlier record confirmed) and those it still kept from a failed commit.
fn successor(
    old: &StreamConsumer<ConsumeContext>,
    conn: &crate::kafka::config::KafkaConnection,
    cc: &super::super::config::ConsumeConfig,
) -> Result<StreamConsumer<ConsumeContext>, crate::contract::FunctionError> {
    let ctx = old.context();
    let next = ConsumeContext::new(
        Arc::clone(&ctx.state),
        ctx.token.clone(),
        ctx.start_timestamp,
    );
    if let (Ok(stored), Ok(kept), Ok(mut resume)) = (
        ctx.stored.lock(),
        ctx.resume_at.lock(),
        next.resume_at.lock(),
    ) {
        for (part, offset) in kept.iter().chain(stored.iter()) {
            let at = resume.entry(part.clone()).or_insert(*offset);
            *at = (*at).max(*offset);
        }
    }
    create_consumer(conn, cc, next)
}

/// Waits (bounded) for consumers the watchdog replaced to finish closing.
pub(super) async fn closed(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        if tokio::time::timeout(CLOSE_TIMEOUT, h).await.is_err() {
            tracing::warn!("A replaced Kafka consumer did not finish closing; leaving it.");
        }
    }
}
