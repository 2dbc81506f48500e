//! RabbitMQ connections (PROTOCOL.md 2): a `-read` connection for consuming and a `-write` connection with a
//! confirm-mode channel for publishing.
//!
//! Owns connecting with the reference retry policy, the publisher (mandatory flag, returned-message logging,
//! publisher confirms, retry with backoff and the `retry` header, channel re-creation) and nothing else.
//! The worker never declares exchanges or queues.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use secrecy::ExposeSecret;
use tokio::sync::Mutex;

use super::headers;
use crate::settings::AmqpSettings;

/// An AMQP failure.
#[derive(Debug, thiserror::Error)]
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

/// Opens one named connection with `1 + reconnect_attempts` tries.
///
/// # Errors
/// [`AmqpError::Connect`] after the last attempt.
pub async fn connect(settings: &AmqpSettings, name: &'static str) -> Result<Connection, AmqpError> {
    let attempts = settings.reconnect_attempts.saturating_add(1);
    let uri = settings.uri.expose_secret();
    // Unparsable: lapin reports the error on the attempt.
    let parsed = with_frame_max(uri);
    let mut last = None;
    for attempt in 1..=attempts {
        let props = ConnectionProperties::default()
            .with_connection_name(format!("{}-{name}", settings.hostname).into());
        // lapin leaves a task (and its connection state) behind for every handshake that fails, so while the
        // broker is down (a restart, an outage) a retry or a reconnect first checks that its port accepts at
        // all. The very first attempt of the process skips the check (no needless connection in the broker's log).
        let probe_first = attempt > 1 || EVER_CONNECTED.load(std::sync::atomic::Ordering::Relaxed);
        match connect_once(uri, parsed.as_ref(), props, probe_first).await {
            Ok(conn) => {
                EVER_CONNECTED.store(true, std::sync::atomic::Ordering::Relaxed);
                return Ok(conn);
            }
            Err(e) => {
                tracing::warn!(connection = name, attempt, error = %e, "RabbitMQ connection failed.");
                last = Some(e);
                if attempt < attempts {
                    tokio::time::sleep(settings.reconnect_timeout).await;
                }
            }
        }
    }
    Err(AmqpError::Connect {
        name,
        attempts,
        source: last.unwrap_or(lapin::Error::from(
            lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed),
        )),
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
    parsed: Option<&lapin::uri::AMQPUri>,
    props: ConnectionProperties,
    probe_first: bool,
) -> Result<Connection, lapin::Error> {
    if probe_first && let Some(p) = parsed {
        let addr = (p.authority.host.as_str(), p.authority.port);
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_stream)) => {}
            Ok(Err(e)) => return Err(lapin::Error::from(e)),
            Err(_) => return Err(timed_out()),
        }
    }
    // A broker that is starting may accept TCP and never finish the handshake, and parts of the handshake
    // block their thread: run it on the blocking pool and bound it, so a hung attempt cannot stall the runtime.
    let (uri, parsed) = (uri.to_owned(), parsed.cloned());
    let handle = tokio::runtime::Handle::current();
    let task = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            match parsed {
                Some(parsed) => Connection::connect_uri(parsed, props).await,
                None => Connection::connect(&uri, props).await,
            }
        })
    });
    match tokio::time::timeout(CONNECT_TIMEOUT, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) | Err(_) => Err(timed_out()),
    }
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
    /// A message that needs no confirm (local sink).
    pub fn done() -> Self {
        Self { inner: None }
    }

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
            other => {
                publisher.log_failure(&out.routing_key, 0, other);
                publisher.retry(&out, 0).await
            }
        }
    }
}

/// A message emitted by a function, in readable form (for the local runner).
#[derive(Debug, Clone)]
pub struct LocalMessage {
    /// `data`, `error`, `errorReply`, `rebound`, `snapshot`, `updateSnapshot`.
    pub event: &'static str,
    /// The decrypted message.
    pub message: serde_json::Value,
}

/// Where emitted messages go: the platform exchange, or a local channel (the `exec` runner).
#[derive(Debug, Clone)]
pub enum Sink {
    /// Publish to RabbitMQ with confirms.
    Amqp(Publisher),
    /// Hand readable copies to a local receiver; nothing is encrypted or published.
    Local(tokio::sync::mpsc::UnboundedSender<LocalMessage>),
}

impl Sink {
    /// Sends `out` (AMQP) or `readable()` (local); await [`Confirming::wait`] for delivery.
    pub async fn send(
        &self,
        event: &'static str,
        out: Outgoing,
        readable: impl FnOnce() -> serde_json::Value,
    ) -> Confirming {
        match self {
            Self::Amqp(p) => p.send(out).await,
            Self::Local(tx) => {
                let _ignored = tx.send(LocalMessage {
                    event,
                    message: readable(),
                });
                Confirming::done()
            }
        }
    }
}

/// Publishing policy from the settings.
#[derive(Debug, Clone)]
struct RetryPolicy {
    delay: Duration,
    max_delay: Duration,
    attempts: Option<u64>,
}

impl RetryPolicy {
    /// `min(delay · 2^i, max_delay)`.
    fn backoff(&self, iteration: u32) -> Duration {
        let factor = 2u32.saturating_pow(iteration.min(31));
        self.delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// The confirm-mode publisher on the `-write` connection, shared by every execution.
#[derive(Debug, Clone)]
pub struct Publisher {
    inner: Arc<PublisherInner>,
}

#[derive(Debug)]
struct PublisherInner {
    settings: AmqpSettings,
    conn: Mutex<Connection>,
    channel: Mutex<Channel>,
    exchange: String,
    retry: RetryPolicy,
    delivery_mode: u8,
}

impl Publisher {
    /// Opens the publish channel on `conn`.
    ///
    /// # Errors
    /// [`AmqpError::Channel`].
    pub async fn new(conn: Connection, settings: &AmqpSettings) -> Result<Self, AmqpError> {
        let channel = confirm_channel(&conn).await?;
        Ok(Self {
            inner: Arc::new(PublisherInner {
                settings: settings.clone(),
                conn: Mutex::new(conn),
                channel: Mutex::new(channel),
                exchange: settings.publish_messages_to.clone(),
                retry: RetryPolicy {
                    delay: settings.publish_retry_delay,
                    max_delay: settings.publish_max_retry_delay,
                    attempts: settings.publish_retry_attempts,
                },
                delivery_mode: if settings.persistent_messages { 2 } else { 1 },
            }),
        })
    }

    /// A usable confirm channel: the current one, or a new one (and a new connection if it is gone).
    async fn channel(&self) -> Result<Channel, AmqpError> {
        let mut guard = self.inner.channel.lock().await;
        if guard.status().connected() {
            return Ok(guard.clone());
        }
        tracing::warn!("Publish channel closed, opening a new connection and channel.");
        // Always a fresh connection: after a broker restart the old one can still look connected, and opening a
        // channel on it never completes.
        let mut conn = self.inner.conn.lock().await;
        *conn = connect(&self.inner.settings, "write").await?;
        let channel = bounded(confirm_channel(&conn)).await?;
        *guard = channel;
        Ok(guard.clone())
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
    /// with `min(delay·2^i, max)` backoff and header `retry: i` until confirmed or the attempts run out.
    ///
    /// # Errors
    /// [`AmqpError::NotConfirmed`] when the attempts are exhausted.
    pub async fn publish(&self, out: Outgoing) -> Result<(), AmqpError> {
        self.send(out).await.wait().await
    }

    /// Sends without waiting for the confirm; call [`Confirming::wait`].
    pub async fn send(&self, out: Outgoing) -> Confirming {
        let props = self.properties(&out, out.headers.clone());
        let first = self.send_once(&out.routing_key, &out.payload, props).await;
        Confirming {
            inner: Some((self.clone(), out, first)),
        }
    }

    fn log_failure(&self, routing_key: &str, iteration: u32, outcome: Result<bool, AmqpError>) {
        match outcome {
            Ok(_) => tracing::warn!(
                routing_key,
                iteration,
                "Publish nacked by the broker, retrying."
            ),
            Err(e) => {
                tracing::warn!(routing_key, iteration, error = %e, "Publish failed, retrying.")
            }
        }
    }

    /// The retry loop after a failed attempt number `iteration`.
    async fn retry(&self, out: &Outgoing, mut iteration: u32) -> Result<(), AmqpError> {
        loop {
            let attempts_made = u64::from(iteration) + 1;
            if self
                .inner
                .retry
                .attempts
                .is_some_and(|max| attempts_made > max)
            {
                return Err(AmqpError::NotConfirmed {
                    routing_key: out.routing_key.clone(),
                    attempts: attempts_made,
                });
            }
            tokio::time::sleep(self.inner.retry.backoff(iteration)).await;
            iteration = iteration.saturating_add(1);
            let mut table = out.headers.clone();
            headers::set(&mut table, "retry", headers::int(i64::from(iteration)));
            let props = self.properties(out, table);
            let outcome = match self.send_once(&out.routing_key, &out.payload, props).await {
                Ok(confirm) => self.confirmed(&out.routing_key, confirm).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(true) => return Ok(()),
                other => self.log_failure(&out.routing_key, iteration, other),
            }
        }
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

    /// Closes the channel and the connection.
    pub async fn close(&self) {
        let channel = self.inner.channel.lock().await.clone();
        if channel.status().connected()
            && let Err(e) = channel.close(200, "bye".into()).await
        {
            tracing::debug!(error = %e, "Closing publish channel failed.");
        }
        let conn = self.inner.conn.lock().await;
        if conn.status().connected()
            && let Err(e) = conn.close(200, "bye".into()).await
        {
            tracing::debug!(error = %e, "Closing publish connection failed.");
        }
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

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(300),
            attempts: None,
        };
        assert_eq!(p.backoff(0), Duration::from_millis(100));
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(800));
        assert_eq!(p.backoff(40), Duration::from_secs(300));
    }
}
