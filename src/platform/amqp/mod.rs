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

use std::time::Duration;

use lapin::options::{BasicQosOptions, ConfirmSelectOptions};
use lapin::tcp::OwnedTLSConfig;
use lapin::{Channel, Connection, ConnectionProperties};
use secrecy::ExposeSecret;

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

/// Opens a channel on `conn`.
async fn open_channel(conn: &Connection) -> Result<Channel, AmqpError> {
    conn.create_channel()
        .await
        .map_err(|source| AmqpError::Channel {
            op: "channel open",
            source,
        })
}

/// Starts consuming `queue` on `channel` (server-named consumer tag, default options).
///
/// # Errors
/// The broker's refusal.
pub async fn consume_queue(
    channel: &Channel,
    queue: &str,
) -> Result<lapin::Consumer, lapin::Error> {
    channel
        .basic_consume(
            queue.into(),
            "".into(),
            lapin::options::BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
}

/// Opens the consumer channel with `basic.qos(prefetch)`.
///
/// # Errors
/// [`AmqpError::Channel`].
pub async fn consumer_channel(conn: &Connection, prefetch: u16) -> Result<Channel, AmqpError> {
    let ch = open_channel(conn).await?;
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
    let ch = open_channel(conn).await?;
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

mod link;
mod publisher;

pub use publisher::{Confirming, Outgoing, Publisher};

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
