//! The publisher's link: the current publish channel, shared through a `watch`, and the one task that reopens
//! it (a fresh connection and confirm channel) when a publish finds it closed.

use std::sync::Arc;

use lapin::{Channel, Connection};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::{AmqpError, bounded, confirm_channel, connect};
use crate::settings::AmqpSettings;

/// The publish channel as every publisher sees it. Published through a `watch` channel by the reconnect task,
/// so a publish takes a snapshot (a clone of the channel handle) and holds no lock while it sends.
#[derive(Debug, Clone)]
pub(super) struct Link {
    /// Reconnects started so far; a waiter knows the answer to its request by a higher round.
    pub(super) round: u64,
    pub(super) state: LinkState,
}

#[derive(Debug, Clone)]
pub(super) enum LinkState {
    /// A channel (it may have been closed since; publishers check its status).
    Up(Channel),
    /// The reconnect task is opening a new connection and channel.
    Reconnecting,
    /// The last reconnect failed; the next publish asks for another.
    Failed(AmqpError),
    /// The publisher was closed.
    Closed,
}

/// The publisher's reconnect task: owns the `-write` connection; when woken and the current channel is closed
/// (or the last reconnect failed), opens a fresh connection and confirm channel ([`connect`] with its retry
/// policy) and publishes the outcome. Closes the channel and the connection when stopped.
pub(super) async fn reconnector(
    settings: AmqpSettings,
    mut conn: Connection,
    link: watch::Sender<Link>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = wake.notified() => {}
        }
        let Some(round) = next_round(&link.borrow()) else {
            // A request that an earlier reconnect already answered.
            continue;
        };
        link.send_replace(Link {
            round,
            state: LinkState::Reconnecting,
        });
        tracing::warn!(
            round,
            "Publish channel closed, opening a new connection and channel."
        );
        // Always a fresh connection: after a broker restart the old one can still look connected, and opening a
        // channel on it never completes.
        let opened = async {
            let conn = connect(&settings, "write").await?;
            let channel = bounded(confirm_channel(&conn)).await?;
            Ok::<_, AmqpError>((conn, channel))
        };
        let state = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            opened = opened => match opened {
                Ok((new_conn, channel)) => {
                    conn = new_conn;
                    tracing::info!(round, "Publish channel open again.");
                    LinkState::Up(channel)
                }
                Err(e) => {
                    tracing::warn!(round, error = %e, "Publish channel could not be reopened.");
                    LinkState::Failed(e)
                }
            }
        };
        link.send_replace(Link { round, state });
    }
    shut(&link, conn).await;
}

/// The round of the reconnect `current` needs, or `None` when its channel is fine (or one is being opened).
fn next_round(current: &Link) -> Option<u64> {
    let needed = match &current.state {
        LinkState::Up(ch) => !ch.status().connected(),
        LinkState::Failed(_) => true,
        LinkState::Reconnecting | LinkState::Closed => false,
    };
    needed.then_some(current.round + 1)
}

/// Marks the link closed, then closes its channel and the connection.
async fn shut(link: &watch::Sender<Link>, conn: Connection) {
    let round = link.borrow().round;
    let last = link.send_replace(Link {
        round,
        state: LinkState::Closed,
    });
    if let LinkState::Up(channel) = last.state
        && channel.status().connected()
        && let Err(e) = channel.close(200, "bye".into()).await
    {
        tracing::debug!(error = %e, "Closing publish channel failed.");
    }
    if conn.status().connected()
        && let Err(e) = conn.close(200, "bye".into()).await
    {
        tracing::debug!(error = %e, "Closing publish connection failed.");
    }
}
