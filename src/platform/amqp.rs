//! RabbitMQ connections (PROTOCOL.md 2): a `-read` connection for consuming and a `-write` connection with a
//! confirm-mode channel for publishing.
//!
//! Owns connecting ([`Policy::AMQP_CONNECT`], async handshake under a timeout), the publisher (mandatory flag,
//! returned-message logging, publisher confirms, retry with [`Policy::AMQP_PUBLISH`] and the `retry` header,
//! channel re-creation by one reconnect task), the local runner's bounded sink, and nothing else.
//! The worker never declares exchanges or queues.
//!
//! Locking: no lock is held across an await. A publish reads the current channel from a `watch` snapshot;
//! when it is closed, the publish wakes the reconnect task and waits for its outcome on the same `watch`.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use secrecy::ExposeSecret;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::headers;
use crate::retry::{Attempt, Policy};
use crate::settings::AmqpSettings;

/// An AMQP failure (`Clone`: the outcome of one reconnect is handed to every publish that waited for it).
#[derive(Debug, Clone, thiserror::Error)]
pub enum AmqpError {
    /// Could not connect after all attempts.
    #[error("could not connect to RabbitMQ ({name}) after {attempts} attempts")]
    Connect {
        /// `read` or `write`.
        name: &'static str,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        #[source]
        source: lapin::Error,
    },
    /// A channel operation failed.
    #[error("RabbitMQ {op} failed")]
    Channel {
        /// What was attempted.
        op: &'static str,
        /// Cause.
        #[source]
        source: lapin::Error,
    },
    /// No confirm arrived in time (the channel was probably lost).
    #[error("no publisher confirm within {} s", CONFIRM_TIMEOUT.as_secs())]
    ConfirmTimeout,
    /// A publish was not even handed to the connection in time (the connection died while it was queued).
    #[error("RabbitMQ basic.publish was not sent within {} s (the connection was lost)", CONFIRM_TIMEOUT.as_secs())]
    SendTimeout,
    /// The broker did not confirm a publish within the configured attempts.
    #[error("publish to routing key `{routing_key}` was not confirmed after {attempts} attempts")]
    NotConfirmed {
        /// Routing key.
        routing_key: String,
        /// Attempts made.
        attempts: u64,
    },
}

/// Opens one named connection with `1 + reconnect_attempts` tries ([`Policy::AMQP_CONNECT`]).
///
/// # Errors
/// [`AmqpError::Connect`] after the last attempt.
pub async fn connect(settings: &AmqpSettings, name: &'static str) -> Result<Connection, AmqpError> {
    let policy = Policy::AMQP_CONNECT
        .with_retries(Some(u64::from(settings.reconnect_attempts)))
        .with_initial(settings.reconnect_timeout);
    let uri = settings.uri.expose_secret();
    // Unparsable: lapin reports the error on the attempt.
    let parsed = with_frame_max(uri);
    let attempt = |attempt: u32| {
        let props = ConnectionProperties::default()
            .with_connection_name(format!("{}-{name}", settings.hostname).into());
        // lapin leaves a task (and its connection state) behind for every handshake that fails, so while the
        // broker is down (a restart, an outage) a retry or a reconnect first checks that its port accepts at
        // all. The very first attempt of the process skips the check (no needless connection in the broker's log).
        let probe_first = attempt > 0 || EVER_CONNECTED.load(std::sync::atomic::Ordering::Relaxed);
        let parsed = parsed.clone();
        async move {
            match connect_once(uri, parsed, props, probe_first).await {
                Ok(conn) => {
                    EVER_CONNECTED.store(true, std::sync::atomic::Ordering::Relaxed);
                    Ok(conn)
                }
                Err(e) => {
                    tracing::warn!(connection = name, attempt = attempt + 1, error = %e, "RabbitMQ connection failed.");
                    Err(Attempt::Retry(e))
                }
            }
        }
    };
    policy
        .retry(attempt, |_, _, _| {})
        .await
        .map_err(|gave_up| AmqpError::Connect {
            name,
            attempts: u32::try_from(gave_up.attempts).unwrap_or(u32::MAX),
            source: gave_up.error,
        })
}

/// Whether any connection of this process has been opened (later connects are reconnects).
static EVER_CONNECTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn timed_out() -> lapin::Error {
    lapin::Error::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "AMQP connection attempt timed out",
    ))
}

/// One connection attempt: optionally a TCP check of the broker's port, then the AMQP handshake, each bounded
/// by [`CONNECT_TIMEOUT`].
async fn connect_once(
    uri: &str,
    parsed: Option<lapin::uri::AMQPUri>,
    props: ConnectionProperties,
    probe_first: bool,
) -> Result<Connection, lapin::Error> {
    if probe_first && let Some(p) = &parsed {
        let addr = (p.authority.host.as_str(), p.authority.port);
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_stream)) => {}
            Ok(Err(e)) => return Err(lapin::Error::from(e)),
            Err(_) => return Err(timed_out()),
        }
    }
    // A broker that is starting may accept TCP and never finish the handshake: bound it. lapin's connect is
    // async on the tokio runtime (its I/O loop runs on its own thread), so a timeout drops the attempt and no
    // thread of ours is left waiting for it. TLS (amqps) uses the native-tls defaults, as `connect_uri` does.
    let parsed = match parsed {
        Some(p) => p,
        None => uri.parse::<lapin::uri::AMQPUri>().map_err(|e| {
            lapin::Error::from(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid AMQP URI: {e}"),
            ))
        })?,
    };
    let runtime = lapin::runtime::default_runtime()?;
    let handshake =
        Connection::connect_uri_with_config(parsed, props, OwnedTLSConfig::default(), runtime);
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

/// Largest AMQP frame the worker proposes (RabbitMQ's default is 128 KiB). lapin keeps a receive and a send buffer
/// of 32 frames per connection, zero-filled up front: 4 MiB each with 128 KiB frames, 16 MiB resident for the
/// two connections of an idle worker. Larger messages are split into more body frames; nothing else changes.
const FRAME_MAX: u32 = 16 * 1024;

/// The URI with `frame_max` set to [`FRAME_MAX`] unless the URI sets it itself; `None` when it does not parse.
fn with_frame_max(uri: &str) -> Option<lapin::uri::AMQPUri> {
    let mut parsed: lapin::uri::AMQPUri = uri.parse().ok()?;
    parsed.query.frame_max.get_or_insert(FRAME_MAX);
    Some(parsed)
}

/// Opens the consumer channel with `basic.qos(prefetch)`.
///
/// # Errors
/// [`AmqpError::Channel`].
pub async fn consumer_channel(conn: &Connection, prefetch: u16) -> Result<Channel, AmqpError> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|source| AmqpError::Channel {
            op: "channel open",
            source,
        })?;
    ch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(|source| AmqpError::Channel {
            op: "basic.qos",
            source,
        })?;
    Ok(ch)
}

/// Bounds a channel operation: a half-dead connection can leave it pending forever.
async fn bounded<T>(
    fut: impl std::future::Future<Output = Result<T, AmqpError>>,
) -> Result<T, AmqpError> {
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .unwrap_or(Err(AmqpError::ConfirmTimeout))
}

async fn confirm_channel(conn: &Connection) -> Result<Channel, AmqpError> {
    let ch = conn
        .create_channel()
        .await
        .map_err(|source| AmqpError::Channel {
            op: "channel open",
            source,
        })?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|source| AmqpError::Channel {
            op: "confirm.select",
            source,
        })?;
    Ok(ch)
}

/// Bound on one connection attempt (TCP + AMQP handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a publisher confirm may take before the message is published again.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// One message to publish (owned: a publish may be retried after its first send).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Routing key on the platform exchange.
    pub routing_key: String,
    /// Content bytes.
    pub payload: Vec<u8>,
    /// Header table.
    pub headers: FieldTable,
    /// Per-message TTL in ms (rebound).
    pub expiration: Option<String>,
    /// Base properties to keep (rebound republishes the original properties); `None` = the standard ones.
    pub base_properties: Option<BasicProperties>,
}

impl Outgoing {
    /// A message with the standard properties.
    pub fn new(routing_key: impl Into<String>, payload: Vec<u8>, headers: FieldTable) -> Self {
        Self {
            routing_key: routing_key.into(),
            payload,
            headers,
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

/// The publish channel as every publisher sees it. Published through a `watch` channel by the reconnect task,
/// so a publish takes a snapshot (a clone of the channel handle) and holds no lock while it sends.
#[derive(Debug, Clone)]
struct Link {
    /// Reconnects started so far; a waiter knows the answer to its request by a higher round.
    round: u64,
    state: LinkState,
}

#[derive(Debug, Clone)]
enum LinkState {
    /// A channel (it may have been closed since; publishers check its status).
    Up(Channel),
    /// The reconnect task is opening a new connection and channel.
    Reconnecting,
    /// The last reconnect failed; the next publish asks for another.
    Failed(AmqpError),
    /// The publisher was closed.
    Closed,
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
        let props = self.properties(&out, out.headers.clone());
        let first = self.send_once(&out.routing_key, &out.payload, props).await;
        Confirming {
            inner: Some((self.clone(), out, first)),
        }
    }

    /// The retry loop after the first attempt failed.
    async fn retry(&self, out: &Outgoing, first: Failure) -> Result<(), AmqpError> {
        let attempt = |iteration: u32| async move {
            let mut table = out.headers.clone();
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

/// The publisher's reconnect task: owns the `-write` connection; when woken and the current channel is closed
/// (or the last reconnect failed), opens a fresh connection and confirm channel ([`connect`] with its retry
/// policy) and publishes the outcome. Closes the channel and the connection when stopped.
async fn reconnector(
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
        let round = {
            let current = link.borrow();
            let needed = match &current.state {
                LinkState::Up(ch) => !ch.status().connected(),
                LinkState::Failed(_) => true,
                LinkState::Reconnecting | LinkState::Closed => false,
            };
            if !needed {
                // A request that an earlier reconnect already answered.
                continue;
            }
            current.round + 1
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_max_is_proposed_unless_the_uri_sets_it() {
        let uri = with_frame_max("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(uri.query.frame_max, Some(FRAME_MAX));
        let uri = with_frame_max("amqp://h/%2f?frame_max=131072&heartbeat=5").unwrap();
        assert_eq!(uri.query.frame_max, Some(131_072));
        assert_eq!(uri.query.heartbeat, Some(5));
    }
}
