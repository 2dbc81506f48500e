//! Deliveries being processed, and settling one (ack or reject) even when its channel was lost meanwhile.

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};

use super::super::headers;

/// Deliveries being processed, by `messageId`, to recognise broker redeliveries after a channel loss.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    slots: std::sync::Mutex<std::collections::HashMap<String, Option<lapin::Acker>>>,
    arrived: tokio::sync::Notify,
}

impl InFlight {
    fn message_id(delivery: &Delivery) -> Option<String> {
        let h = delivery.properties.headers().as_ref()?;
        headers::get_str(h, "messageId")
    }

    /// Records a redelivery of a message still being processed; returns true when it is one.
    pub(super) fn is_redelivery_of_running(&self, delivery: &Delivery) -> bool {
        if !delivery.redelivered {
            return false;
        }
        let Some(id) = Self::message_id(delivery) else {
            return false;
        };
        let Ok(mut slots) = self.slots.lock() else {
            return false;
        };
        match slots.get_mut(&id) {
            Some(slot) => {
                *slot = Some(delivery.acker.clone());
                self.arrived.notify_waiters();
                true
            }
            None => false,
        }
    }

    pub(super) fn start(&self, delivery: &Delivery) -> Option<String> {
        let id = Self::message_id(delivery)?;
        if let Ok(mut slots) = self.slots.lock() {
            slots.insert(id.clone(), None);
        }
        Some(id)
    }

    fn finish(&self, id: &str) -> Option<lapin::Acker> {
        self.slots
            .lock()
            .ok()
            .and_then(|mut s| s.remove(id))
            .flatten()
    }

    fn redelivered(&self, id: &str) -> Option<lapin::Acker> {
        self.slots
            .lock()
            .ok()
            .and_then(|s| s.get(id).cloned())
            .flatten()
    }
}

/// Bound on one ack or reject.
pub(super) const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Acks or rejects; when the delivery's channel is gone, applies the outcome to the redelivered copy.
pub(super) async fn settle(
    inflight: &InFlight,
    id: Option<&str>,
    acker: &lapin::Acker,
    reject: bool,
) -> Result<(), lapin::Error> {
    // Ok(false): the acker's channel is closed (or it was used already). Bounded like a publish: an ack queued
    // while the connection dies may never be written nor fail; the delivery then comes back on the new channel.
    let apply = |a: lapin::Acker| async move {
        let settle = async {
            if reject {
                a.reject(BasicRejectOptions { requeue: false }).await
            } else {
                a.ack(BasicAckOptions::default()).await
            }
        };
        tokio::time::timeout(SETTLE_TIMEOUT, settle)
            .await
            .unwrap_or(Ok(false))
    };
    let first = apply(acker.clone()).await;
    let Some(id) = id else { return first.map(drop) };
    if matches!(first, Ok(true)) {
        inflight.finish(id);
        return Ok(());
    }
    // The channel of this delivery is gone: wait (bounded) for the broker to redeliver it on the new one.
    tracing::warn!(
        message_id = id,
        "Delivery channel closed during processing; waiting for the redelivery."
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let notified = inflight.arrived.notified();
        if let Some(a) = inflight.redelivered(id) {
            inflight.finish(id);
            tracing::info!(message_id = id, "Outcome applied to the redelivered copy.");
            return apply(a).await.map(drop);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            inflight.finish(id);
            tracing::warn!(
                message_id = id,
                "No redelivery arrived; the broker will deliver the message again."
            );
            return first.map(drop);
        }
    }
}
