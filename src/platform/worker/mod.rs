//! Message-processing mode (PROTOCOL.md 1.3, 1.8, 2.4): start up, consume the step queue, run one
//! execution per delivery, ack or reject it, and shut down gracefully.
//!
//! Owns the startup order, startup-failure reporting, delivery decoding, the ack/reject decision and the
//! shutdown order (stop intake → finish in-flight → stop the function → close AMQP). Does not own what a
//! function does with a message.

mod decode;
mod delivery;
mod envelope;
mod inflight;
mod reconnect;
mod startup;
mod summary;

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::options::BasicCancelOptions;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::decode::{Decoded, decode, decode_delivery, decode_error_input};
use self::delivery::handle_delivery;
use self::inflight::{InFlight, SETTLE_TIMEOUT};
use self::reconnect::reconnect;
use self::startup::{publish_startup_error, startup};
use self::summary::{SUMMARY_INTERVAL, Summary};
use super::amqp::{self, AmqpError, Publisher};
use super::api::ApiClient;
use super::crypto::Crypto;
use super::emitter::{EmitterShared, Encoding, Rules, SideChannels, Throttles, Transport};
use super::storage::ObjectStorage;
pub use crate::contract::error_chain;
use crate::contract::{Fatal, Function, Resolve};
use crate::settings::{AmqpSettings, Settings};

/// Why the worker stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Message mode needs the AMQP settings.
    #[error("AMQP settings are missing")]
    NoAmqpSettings,
    /// The crypto IV is unusable.
    #[error("ELASTICIO_MESSAGE_CRYPTO_IV must be 16 bytes, got {0}")]
    BadIv(usize),
    /// HTTP client construction failed.
    #[error("could not build the HTTP client")]
    Http(#[source] reqwest::Error),
    /// RabbitMQ unreachable (nothing was published).
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    /// Start-up failed after AMQP was open; the error was published.
    #[error("startup failed: {0}")]
    Startup(String),
    /// A function stopped the process (e.g. Kafka credentials that never worked).
    #[error("{0}")]
    Fatal(String),
    /// The broker closed the consumer.
    #[error("RabbitMQ consumer stopped")]
    ConsumerLost(#[source] Option<lapin::Error>),
}

/// State shared by all executions of this process.
#[derive(Debug)]
struct WorkerCtx {
    shared: Arc<EmitterShared>,
    settings: Settings,
    inflight: InFlight,
    auto_resolve: bool,
    function: Arc<dyn Function>,
    cfg: Value,
    variables: Value,
    shutdown: CancellationToken,
    fatal: Fatal,
    /// Finished executions since the last summary line.
    summary: Summary,
}

/// Runs message-processing mode until `shutdown` is cancelled or the consumer is lost.
///
/// # Errors
/// See [`WorkerError`]; every variant means exit code 1.
pub async fn run(
    settings: Settings,
    resolve: Resolve,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    let amqp_settings = settings.amqp.clone().ok_or(WorkerError::NoAmqpSettings)?;
    let Opened {
        shared,
        api,
        publisher,
        read_conn,
    } = open(&settings, &amqp_settings).await?;
    let started = startup(&settings, resolve, &api, &read_conn, &shared, &shutdown).await;
    let (ctx, channel, consumer) = match started {
        Ok(v) => v,
        Err(message) => {
            tracing::error!(error = %message, "Startup failed.");
            publish_startup_error(&shared, &settings, &message).await;
            publisher.close().await;
            if let Err(e) = read_conn.close(200, "startup failed".into()).await {
                tracing::debug!(error = %e, "Closing read connection failed.");
            }
            return Err(WorkerError::Startup(message));
        }
    };
    let ctx = Arc::new(ctx);
    tracing::info!(queue = %amqp_settings.listen_messages_on, prefetch = amqp_settings.prefetch, "Worker ready, consuming.");
    let tracker = TaskTracker::new();
    let stats = tokio::spawn(runtime_stats());
    let summary_stop = CancellationToken::new();
    let summary = tokio::spawn({
        let (ctx, stop) = (Arc::clone(&ctx), summary_stop.clone());
        async move { ctx.summary.run(SUMMARY_INTERVAL, stop).await }
    });
    let intake = Intake {
        channel,
        consumer,
        read_conn,
    };
    let (intake, lost) = consume(&ctx, &amqp_settings, intake, &tracker).await;
    stop(&ctx, intake, &tracker, &publisher).await;
    stats.abort();
    summary_stop.cancel();
    if let Err(e) = summary.await {
        tracing::debug!(error = %e, "Summary task failed.");
    }
    tracing::info!("Worker stopped.");
    if let Some(reason) = ctx.fatal.reason() {
        return Err(WorkerError::Fatal(reason));
    }
    lost.map_or(Ok(()), Err)
}

/// What message mode opens before the step starts.
struct Opened {
    shared: Arc<EmitterShared>,
    api: ApiClient,
    publisher: Publisher,
    read_conn: lapin::Connection,
}

/// Cipher, platform API, both AMQP connections (`-read` for the step queue, `-write` for the publisher) and
/// what every execution shares. Nothing is published yet, so a failure here only exits.
async fn open(settings: &Settings, amqp_settings: &AmqpSettings) -> Result<Opened, WorkerError> {
    let crypto = Crypto::new(
        amqp_settings.crypto_password.expose_secret(),
        amqp_settings.crypto_iv.expose_secret(),
    )
    .map_err(WorkerError::BadIv)?;
    let api = ApiClient::new(&settings.api).map_err(WorkerError::Http)?;
    let (read_conn, write_conn) = tokio::try_join!(
        amqp::connect(amqp_settings, "read"),
        amqp::connect(amqp_settings, "write")
    )?;
    let publisher = Publisher::new(write_conn, amqp_settings).await?;
    let storage = settings.object_storage.uri.clone().map(|uri| {
        ObjectStorage::new(
            // The API client's: built (with its timeouts) above, where a failure already stopped startup.
            api.http(),
            uri,
            settings.object_storage.token.clone(),
            format!("f:{};s:{};m:", settings.step.flow_id, settings.step.step_id),
        )
    });
    let shared = Arc::new(EmitterShared {
        transport: Transport::new(publisher.clone(), amqp_settings),
        encoding: Encoding {
            crypto,
            protocol_version: settings.protocol_version,
            size_limit: settings.outgoing_message_size_limit,
        },
        throttles: Throttles::new(&settings.throttles),
        side: SideChannels::new(api.clone(), storage, settings),
        rules: Rules::new(settings),
    });
    Ok(Opened {
        shared,
        api,
        publisher,
        read_conn,
    })
}

/// The consumer of the step queue, its channel and its connection.
struct Intake {
    channel: lapin::Channel,
    consumer: lapin::Consumer,
    read_conn: lapin::Connection,
}

/// Runs one execution per delivery until shutdown, reconnecting the consumer when the broker closes it.
/// Returns the consumer and, when it could not be restored, why.
async fn consume(
    ctx: &Arc<WorkerCtx>,
    amqp_settings: &AmqpSettings,
    mut intake: Intake,
    tracker: &TaskTracker,
) -> (Intake, Option<WorkerError>) {
    loop {
        let failure = tokio::select! {
            biased;
            () = ctx.shutdown.cancelled() => return (intake, None),
            next = intake.consumer.next() => match next {
                Some(Ok(delivery)) => {
                    if ctx.inflight.is_redelivery_of_running(&delivery) {
                        // Redelivered after a channel loss while its first copy still runs: the first copy's
                        // outcome will be applied to this delivery (no double processing).
                        continue;
                    }
                    let ctx = Arc::clone(ctx);
                    tracker.spawn(async move { handle_delivery(&ctx, delivery).await });
                    continue;
                }
                Some(Err(e)) => Some(e),
                None => None,
            }
        };
        let text = failure.as_ref().map(ToString::to_string);
        tracing::warn!(
            error = text.as_deref().unwrap_or(""),
            "RabbitMQ consumer stopped; reconnecting."
        );
        match reconnect(amqp_settings, &mut intake.read_conn, &ctx.shutdown).await {
            Ok((channel, consumer)) => {
                intake.channel = channel;
                intake.consumer = consumer;
                tracing::info!("Consuming again after reconnect.");
            }
            Err(e) => {
                tracing::error!(error = %e, "RabbitMQ consumer could not be restored.");
                return (intake, Some(WorkerError::ConsumerLost(failure)));
            }
        }
    }
}

/// The shutdown order: stop intake, finish in-flight executions (bounded), stop the function's background
/// work, close channels and connections (bounded).
async fn stop(ctx: &WorkerCtx, intake: Intake, tracker: &TaskTracker, publisher: &Publisher) {
    // Prefetched deliveries not yet started go back to the queue when the channel closes.
    let Intake {
        channel,
        consumer,
        read_conn,
    } = intake;
    let cancel = channel.basic_cancel(consumer.tag(), BasicCancelOptions::default());
    match tokio::time::timeout(SETTLE_TIMEOUT, cancel).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "basic.cancel failed."),
        Err(_) => tracing::debug!("basic.cancel did not complete in time."),
    }
    tracker.close();
    tracing::info!(
        in_flight = tracker.len(),
        "Stopping: waiting for in-flight messages."
    );
    let limit = ctx.settings.shutdown_timeout;
    if tokio::time::timeout(limit, tracker.wait()).await.is_err() {
        tracing::error!(
            timeout_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            "In-flight messages did not finish in time; their deliveries return to the queue."
        );
    }
    ctx.function.shutdown().await;
    // Bounded: a close on a connection that is dying may never complete, and the process exits anyway.
    let close = async {
        if let Err(e) = channel.close(200, "bye".into()).await {
            tracing::debug!(error = %e, "Closing consumer channel failed.");
        }
        if let Err(e) = read_conn.close(200, "bye".into()).await {
            tracing::debug!(error = %e, "Closing read connection failed.");
        }
        publisher.close().await;
    };
    if tokio::time::timeout(SETTLE_TIMEOUT, close).await.is_err() {
        tracing::warn!("Closing the RabbitMQ connections did not complete in time.");
    }
}

/// Logs the number of live async tasks every 10 s (debug level): a steady worker keeps it flat, so a
/// growing number is a task leak (the fault suite's long run checks it).
async fn runtime_stats() {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tick.tick().await;
        let alive_tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        tracing::debug!(alive_tasks, "Runtime stats.");
    }
}
