//! The confirm-mode publisher: sends in order, waits for confirms later, retries a nacked or lost publish with
//! the publish policy, and never waits behind a lock (see [`Publisher`]).

use std::sync::Arc;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::link::{Link, LinkState, reconnector};
use super::{AmqpError, CONFIRM_TIMEOUT, confirm_channel};
use crate::platform::headers::{self, OutgoingHeaders};
use crate::retry::{Attempt, Policy};
use crate::settings::AmqpSettings;

/// One message to publish (owned: a publish may be retried after its first send).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Routing key on the platform exchange.
    pub routing_key: String,
    /// Content bytes.
    pub payload: Vec<u8>,
    /// Header table (built at each publish attempt).
    pub headers: OutgoingHeaders,
    /// Per-message TTL in ms (rebound).
    pub expiration: Option<String>,
    /// Base properties to keep (rebound republishes the original properties); `None` = the standard ones.
    pub base_properties: Option<BasicProperties>,
}

impl Outgoing {
    /// A message with the standard properties.
    pub fn new(
        routing_key: impl Into<String>,
        payload: Vec<u8>,
        headers: impl Into<OutgoingHeaders>,
    ) -> Self {
        Self {
            routing_key: routing_key.into(),
            payload,
            headers: headers.into(),
            expiration: None,
            base_properties: None,
        }
    }
}

/// A message sent to the broker whose confirm has not been awaited yet. Sending in order and awaiting
/// confirms later keeps the order of messages while several are in flight.
#[derive(Debug)]
#[must_use = "a publish is only safe once its confirm was awaited"]
pub struct Confirming {
    inner: Option<(
        Publisher,
        Outgoing,
        Result<lapin::PublisherConfirm, AmqpError>,
    )>,
}

impl Confirming {
    /// Waits for the broker's confirm; a nack or failure is retried (see [`Publisher::publish`]).
    ///
    /// # Errors
    /// [`AmqpError::NotConfirmed`] when the attempts are exhausted.
    pub async fn wait(self) -> Result<(), AmqpError> {
        let Some((publisher, out, first)) = self.inner else {
            return Ok(());
        };
        let first = match first {
            Ok(confirm) => publisher.confirmed(&out.routing_key, confirm).await,
            Err(e) => Err(e),
        };
        match first {
            Ok(true) => Ok(()),
            Ok(false) => publisher.retry(&out, Failure::Nacked).await,
            Err(e) => publisher.retry(&out, Failure::Error(e)).await,
        }
    }
}

/// Why a publish attempt did not succeed.
#[derive(Debug)]
enum Failure {
    /// The broker nacked it.
    Nacked,
    /// It was not sent, or its confirm failed or did not come.
    Error(AmqpError),
}

/// The confirm-mode publisher on the `-write` connection, shared by every execution.
///
/// Publishing never waits behind a lock: the current channel is read from a `watch` snapshot. When it is
/// closed, the publish wakes the publisher's one reconnect task and waits (without a lock) for the next
/// [`Link`]; publishes that find the same closed channel share that one reconnect. Progress therefore does not
/// depend on which caller's future is polled (a parked confirm wait cannot stall another caller's send).
#[derive(Debug, Clone)]
pub struct Publisher {
    inner: Arc<PublisherInner>,
}

#[derive(Debug)]
struct PublisherInner {
    link: watch::Receiver<Link>,
    /// Wakes the reconnect task (a stored permit: a request made while it is busy is not lost).
    wake: Arc<Notify>,
    /// Stops the reconnect task, which then closes the channel and the connection.
    stop: CancellationToken,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
    exchange: String,
    retry: Policy,
    delivery_mode: u8,
}

impl Drop for PublisherInner {
    fn drop(&mut self) {
        // Without `close()`, the reconnect task still ends (and closes its connection) with the last handle.
        self.stop.cancel();
    }
}

fn publisher_closed() -> AmqpError {
    AmqpError::Channel {
        op: "publish",
        source: lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(
            lapin::ConnectionState::Closed,
        )),
    }
}

impl Publisher {
    /// Opens the publish channel on `conn` and starts the reconnect task.
    ///
    /// # Errors
    /// [`AmqpError::Channel`].
    pub async fn new(conn: Connection, settings: &AmqpSettings) -> Result<Self, AmqpError> {
        let channel = confirm_channel(&conn).await?;
        let (tx, rx) = watch::channel(Link {
            round: 0,
            state: LinkState::Up(channel),
        });
        let wake = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let task = tokio::spawn(reconnector(
            settings.clone(),
            conn,
            tx,
            Arc::clone(&wake),
            stop.clone(),
        ));
        Ok(Self {
            inner: Arc::new(PublisherInner {
                link: rx,
                wake,
                stop,
                task: std::sync::Mutex::new(Some(task)),
                exchange: settings.publish_messages_to.clone(),
                retry: Policy::AMQP_PUBLISH
                    .with_initial(settings.publish_retry_delay)
                    .with_cap(settings.publish_max_retry_delay)
                    .with_retries(settings.publish_retry_attempts),
                delivery_mode: if settings.persistent_messages { 2 } else { 1 },
            }),
        })
    }

    /// Reconnects of the publish channel started so far (diagnostics and tests).
    pub fn reconnects(&self) -> u64 {
        self.inner.link.borrow().round
    }

    /// A usable confirm channel: the current one, or the one the reconnect task opens next (or its error).
    async fn channel(&self) -> Result<Channel, AmqpError> {
        let mut rx = self.inner.link.clone();
        // The round in which this caller asked for (or joined) a reconnect: a later round is its answer.
        let mut asked: Option<u64> = None;
        loop {
            // A snapshot: the borrow ends at the end of this statement, before any await.
            let link = rx.borrow_and_update().clone();
            let answered = asked.is_some_and(|r| link.round > r);
            match link.state {
                LinkState::Up(ch) if answered || ch.status().connected() => return Ok(ch),
                LinkState::Failed(e) if answered => return Err(e),
                LinkState::Closed => return Err(publisher_closed()),
                LinkState::Reconnecting => {
                    asked.get_or_insert(link.round.saturating_sub(1));
                }
                LinkState::Up(_) | LinkState::Failed(_) => {
                    self.inner.wake.notify_one();
                    asked = Some(link.round);
                }
            }
            if rx.changed().await.is_err() {
                return Err(publisher_closed());
            }
        }
    }

    fn properties(&self, out: &Outgoing, headers: FieldTable) -> BasicProperties {
        let mut props = match &out.base_properties {
            Some(base) => base.clone(),
            None => BasicProperties::default()
                .with_content_type("application/json".into())
                .with_content_encoding("utf8".into()),
        };
        props = props
            .with_delivery_mode(self.inner.delivery_mode)
            .with_headers(headers);
        if let Some(exp) = &out.expiration {
            props = props.with_expiration(exp.as_str().into());
        }
        props
    }

    /// Publishes with `mandatory` and waits for the broker's confirm; a nack or a channel failure is retried
    /// ([`Policy::AMQP_PUBLISH`]: `min(delay·2^i, max)` backoff, header `retry: i`) until confirmed or the
    /// attempts run out.
    ///
    /// # Errors
    /// [`AmqpError::NotConfirmed`] when the attempts are exhausted.
    pub async fn publish(&self, out: Outgoing) -> Result<(), AmqpError> {
        self.send(out).await.wait().await
    }

    /// Sends without waiting for the confirm; call [`Confirming::wait`]. With a healthy channel this returns
    /// as soon as lapin has written the publish, so sends of one caller reach the channel in call order.
    pub async fn send(&self, out: Outgoing) -> Confirming {
        let props = self.properties(&out, out.headers.table());
        let first = self.send_once(&out.routing_key, &out.payload, props).await;
        Confirming {
            inner: Some((self.clone(), out, first)),
        }
    }

    /// The retry loop after the first attempt failed.
    async fn retry(&self, out: &Outgoing, first: Failure) -> Result<(), AmqpError> {
        let attempt = |iteration: u32| async move {
            let mut table = out.headers.table();
            headers::set(&mut table, "retry", headers::int(i64::from(iteration)));
            let props = self.properties(out, table);
            let outcome = match self.send_once(&out.routing_key, &out.payload, props).await {
                Ok(confirm) => self.confirmed(&out.routing_key, confirm).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(true) => Ok(()),
                Ok(false) => Err(Attempt::Retry(Failure::Nacked)),
                Err(e) => Err(Attempt::Retry(Failure::Error(e))),
            }
        };
        let routing_key = out.routing_key.as_str();
        let log = |failure: &Failure, next: u32, delay: Duration| {
            let (iteration, delay_ms) = (next - 1, delay.as_millis() as u64);
            match failure {
                Failure::Nacked => tracing::warn!(
                    routing_key,
                    iteration,
                    delay_ms,
                    "Publish nacked by the broker, retrying."
                ),
                Failure::Error(e) => {
                    tracing::warn!(routing_key, iteration, delay_ms, error = %e, "Publish failed, retrying.")
                }
            }
        };
        self.inner
            .retry
            .retry_after(first, 1, attempt, log)
            .await
            .map_err(|gave_up| AmqpError::NotConfirmed {
                routing_key: out.routing_key.clone(),
                attempts: gave_up.attempts,
            })
    }

    /// Sends one publish.
    async fn send_once(
        &self,
        routing_key: &str,
        payload: &[u8],
        props: BasicProperties,
    ) -> Result<lapin::PublisherConfirm, AmqpError> {
        let channel = self.channel().await?;
        // lapin checks the channel, then queues the frames and waits until its I/O loop wrote them. When the
        // connection dies between the two, nothing ever resolves that wait (seen after a RabbitMQ restart: an
        // execution hung for good): bounded, the retry loop publishes it again on a new channel.
        let send = channel.basic_publish(
            self.inner.exchange.as_str().into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            payload,
            props,
        );
        tokio::time::timeout(CONFIRM_TIMEOUT, send)
            .await
            .map_err(|_| AmqpError::SendTimeout)?
            .map_err(|source| AmqpError::Channel {
                op: "basic.publish",
                source,
            })
    }

    /// Awaits one confirm; `Ok(true)` = acked, `Ok(false)` = nacked. Returned (unroutable) messages are logged.
    async fn confirmed(
        &self,
        routing_key: &str,
        confirm: lapin::PublisherConfirm,
    ) -> Result<bool, AmqpError> {
        // A confirm that never comes (its channel died with the connection) must not block forever: after
        // CONFIRM_TIMEOUT the message is published again (at least once).
        let confirm = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
            .await
            .map_err(|_| AmqpError::ConfirmTimeout)?
            .map_err(|source| AmqpError::Channel {
                op: "publisher confirm",
                source,
            })?;
        if confirm.is_nack() {
            return Ok(false);
        }
        if let Some(returned) = confirm.take_message() {
            tracing::warn!(
                routing_key,
                exchange = %self.inner.exchange,
                reply_code = returned.reply_code,
                reply_text = %returned.reply_text,
                "Message returned by RabbitMQ as unroutable (no queue bound to this routing key)."
            );
        }
        Ok(true)
    }

    /// Stops the reconnect task, which closes the channel and the connection; waits for it.
    pub async fn close(&self) {
        self.inner.stop.cancel();
        let task = self.inner.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "Publish reconnect task failed.");
        }
    }
}
