//! Re-opening the consumer after the broker closed its channel or connection (PROTOCOL.md 2.5).

use tokio_util::sync::CancellationToken;

use super::super::amqp::{self, AmqpError};
use crate::retry::{Attempt, Policy};

/// Re-opens the consumer after the broker closed its channel or connection (PROTOCOL.md 2.5), with
/// [`Policy::AMQP_CONSUMER_RECONNECT`]; gives up at once when shutdown has begun.
pub(super) async fn reconnect(
    amqp: &crate::settings::AmqpSettings,
    conn: &mut lapin::Connection,
    shutdown: &CancellationToken,
) -> Result<(lapin::Channel, lapin::Consumer), AmqpError> {
    // A connection opened by an attempt, kept for the next attempt and handed back at the end. Only taken and
    // put back between awaits (attempts run one after the other), never held across one.
    let opened: std::sync::Mutex<Option<lapin::Connection>> = std::sync::Mutex::new(None);
    let original: &lapin::Connection = conn;
    let attempt = |_attempt: u32| {
        let opened = &opened;
        async move {
            let mut fresh = opened.lock().ok().and_then(|mut o| o.take());
            let result = open_consumer(&mut fresh, original, amqp).await;
            if let Ok(mut o) = opened.lock() {
                *o = fresh;
            }
            result.map_err(|e| {
                if shutdown.is_cancelled() {
                    Attempt::Stop(e)
                } else {
                    Attempt::Retry(e)
                }
            })
        }
    };
    let result = Policy::AMQP_CONSUMER_RECONNECT
        .retry(attempt, |e, next, delay| {
            tracing::warn!(attempt = next, delay_ms = delay.as_millis() as u64, error = %e, "Reconnect failed, retrying.");
        })
        .await
        .map_err(|gave_up| gave_up.error);
    if let Some(fresh) = opened.into_inner().ok().flatten() {
        *conn = fresh;
    }
    result
}

/// One attempt: a consumer on `fresh` (or on `original` while no fresh connection was needed); a connection
/// that is gone, or alive but unable to open a channel, is replaced by a fresh one.
async fn open_consumer(
    fresh: &mut Option<lapin::Connection>,
    original: &lapin::Connection,
    amqp: &crate::settings::AmqpSettings,
) -> Result<(lapin::Channel, lapin::Consumer), AmqpError> {
    if !fresh.as_ref().unwrap_or(original).status().connected() {
        *fresh = Some(amqp::connect(amqp, "read").await?);
    }
    let ch = match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        amqp::consumer_channel(fresh.as_ref().unwrap_or(original), amqp.prefetch),
    )
    .await
    {
        Ok(Ok(ch)) => ch,
        _ => {
            // The connection looked alive but cannot open a channel: replace it.
            let replaced = fresh.insert(amqp::connect(amqp, "read").await?);
            amqp::consumer_channel(replaced, amqp.prefetch).await?
        }
    };
    let consumer = amqp::consume_queue(&ch, &amqp.listen_messages_on)
        .await
        .map_err(|source| AmqpError::Channel {
            op: "basic.consume",
            source,
        })?;
    Ok((ch, consumer))
}
