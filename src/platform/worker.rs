//! Message-processing mode (PROTOCOL.md 1.3, 1.8, 2.4): start up, consume the step queue, run one
//! execution per delivery, ack or reject it, and shut down gracefully.
//!
//! Owns the startup order, startup-failure reporting, delivery decoding, the ack/reject decision and the
//! shutdown order (stop intake → finish in-flight → stop the function → close AMQP). Does not own what a
//! function does with a message.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::amqp::{self, AmqpError, Outgoing, Publisher};
use super::api::ApiClient;
use super::component;
use super::crypto::Crypto;
use super::emitter::{
    EmitterShared, Encoding, IncomingRaw, PlatformEmitter, Rules, SideChannels, Throttles,
    Transport,
};
use super::headers::{self, ExecutionHeaders};
use super::storage::ObjectStorage;
pub use crate::contract::error_chain;
use crate::contract::{Action, Emit, Emitter, Execution, Fatal, Function, FunctionError, Resolve};
use crate::retry::{Attempt, Policy};
use crate::settings::{InputFormat, Settings};

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
    let crypto = Crypto::new(
        amqp_settings.crypto_password.expose_secret(),
        amqp_settings.crypto_iv.expose_secret(),
    )
    .map_err(WorkerError::BadIv)?;
    let api = ApiClient::new(&settings.api).map_err(WorkerError::Http)?;
    let (read_conn, write_conn) = tokio::try_join!(
        amqp::connect(&amqp_settings, "read"),
        amqp::connect(&amqp_settings, "write")
    )?;
    let publisher = Publisher::new(write_conn, &amqp_settings).await?;
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
        transport: Transport::new(publisher.clone(), &amqp_settings),
        encoding: Encoding {
            crypto,
            protocol_version: settings.protocol_version,
            size_limit: settings.outgoing_message_size_limit,
        },
        throttles: Throttles::new(&settings.throttles),
        side: SideChannels::new(api.clone(), storage, &settings),
        rules: Rules::new(&settings),
    });

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
    let mut lost = None;
    let (mut channel, mut consumer, mut read_conn) = (channel, consumer, read_conn);
    loop {
        let failure = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    if ctx.inflight.is_redelivery_of_running(&delivery) {
                        // Redelivered after a channel loss while its first copy still runs: the first copy's
                        // outcome will be applied to this delivery (no double processing).
                        continue;
                    }
                    let ctx = Arc::clone(&ctx);
                    tracker.spawn(async move { handle_delivery(&ctx, delivery).await });
                    continue;
                }
                Some(Err(e)) => Some(e),
                None => None,
            }
        };
        tracing::warn!(
            error = failure
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            "RabbitMQ consumer stopped; reconnecting."
        );
        match reconnect(&amqp_settings, &mut read_conn, &shutdown).await {
            Ok((ch, cons)) => {
                channel = ch;
                consumer = cons;
                tracing::info!("Consuming again after reconnect.");
            }
            Err(e) => {
                tracing::error!(error = %e, "RabbitMQ consumer could not be restored.");
                lost = Some(WorkerError::ConsumerLost(failure));
                break;
            }
        }
    }

    // 1. Stop intake. Prefetched deliveries not yet started go back to the queue when the channel closes.
    match tokio::time::timeout(
        SETTLE_TIMEOUT,
        channel.basic_cancel(consumer.tag(), BasicCancelOptions::default()),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "basic.cancel failed."),
        Err(_) => tracing::debug!("basic.cancel did not complete in time."),
    }
    // 2. Finish in-flight executions (bounded).
    tracker.close();
    let in_flight = tracker.len();
    tracing::info!(in_flight, "Stopping: waiting for in-flight messages.");
    if tokio::time::timeout(settings.shutdown_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::error!(
            timeout_ms = settings.shutdown_timeout.as_millis() as u64,
            "In-flight messages did not finish in time; their deliveries return to the queue."
        );
    }
    // 3. Stop the function's background work (consumers commit, producers flush).
    ctx.function.shutdown().await;
    // 4. Close channels, then connections.
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
    stats.abort();
    tracing::info!("Worker stopped.");
    if let Some(reason) = ctx.fatal.reason() {
        return Err(WorkerError::Fatal(reason));
    }
    lost.map_or(Ok(()), Err)
}

/// Re-opens the consumer after the broker closed its channel or connection (PROTOCOL.md 2.5), with
/// [`Policy::AMQP_CONSUMER_RECONNECT`]; gives up at once when shutdown has begun.
async fn reconnect(
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
            let result = async {
                if !fresh.as_ref().unwrap_or(original).status().connected() {
                    fresh = Some(amqp::connect(amqp, "read").await?);
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
                let consumer = ch
                    .basic_consume(
                        amqp.listen_messages_on.as_str().into(),
                        "".into(),
                        BasicConsumeOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|source| AmqpError::Channel {
                        op: "basic.consume",
                        source,
                    })?;
                Ok::<_, AmqpError>((ch, consumer))
            }
            .await;
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

/// Deliveries being processed, by `messageId`, to recognise broker redeliveries after a channel loss.
#[derive(Debug, Default)]
struct InFlight {
    slots: std::sync::Mutex<std::collections::HashMap<String, Option<lapin::Acker>>>,
    arrived: tokio::sync::Notify,
}

impl InFlight {
    fn message_id(delivery: &Delivery) -> Option<String> {
        let h = delivery.properties.headers().as_ref()?;
        headers::get_str(h, "messageId")
    }

    /// Records a redelivery of a message still being processed; returns true when it is one.
    fn is_redelivery_of_running(&self, delivery: &Delivery) -> bool {
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

    fn start(&self, delivery: &Delivery) -> Option<String> {
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
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Acks or rejects; when the delivery's channel is gone, applies the outcome to the redelivered copy.
async fn settle(
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

/// Steps 3–7 of PROTOCOL.md 1.3. Errors are the text of the startup error message.
async fn startup(
    settings: &Settings,
    resolve: Resolve,
    api: &ApiClient,
    read_conn: &lapin::Connection,
    shared: &Arc<EmitterShared>,
    shutdown: &CancellationToken,
) -> Result<(WorkerCtx, lapin::Channel, lapin::Consumer), String> {
    let step = api
        .retrieve_step(&settings.step.flow_id, &settings.step.step_id)
        .await
        .map_err(|e| error_chain(&e))?;
    let def = component::find_function_at(&settings.component_path, &settings.step.function)?;
    let function = resolve(&def.main).ok_or_else(|| {
        format!(
            "Trigger or action '{}' is found, but can not be loaded: no handler named '{}'",
            def.name, def.main
        )
    })?;
    let cfg = step.cfg();
    shared.side.set_snapshot(step.initial_snapshot());
    shared.side.set_passthrough(step.passthrough());
    if settings.startup_required {
        let state = function.startup(&cfg).await.map_err(|r| r.message)?;
        api.store_startup_state(&settings.step.flow_id, &state)
            .await
            .map_err(|e| error_chain(&e))?;
    }
    function.init(&cfg).await.map_err(|r| r.message)?;
    let amqp = settings.amqp.as_ref().ok_or("AMQP settings are missing")?;
    let channel = amqp::consumer_channel(read_conn, amqp.prefetch)
        .await
        .map_err(|e| error_chain(&e))?;
    let consumer = channel
        .basic_consume(
            amqp.listen_messages_on.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("cannot consume queue `{}`: {e}", amqp.listen_messages_on))?;
    let ctx = WorkerCtx {
        inflight: InFlight::default(),
        shared: Arc::clone(shared),
        settings: settings.clone(),
        auto_resolve: def.auto_resolve_object_references,
        function,
        cfg,
        variables: step.variables.clone().unwrap_or(json!({})),
        shutdown: shutdown.clone(),
        fatal: Fatal::new(shutdown.clone()),
    };
    Ok((ctx, channel, consumer))
}

/// One error message for a failure before any delivery (no `errorInput`).
async fn publish_startup_error(shared: &EmitterShared, settings: &Settings, message: &str) {
    let err = json!({ "name": "Error", "message": message, "stack": "Not Available" });
    // Serializing a `Value` cannot fail; `Display` is its JSON.
    let body = json!({ "error": shared.encoding.crypto.encode_base64(err.to_string().as_bytes()) });
    let out = Outgoing::new(
        shared.transport.error_key.as_str(),
        body.to_string().into_bytes(),
        ExecutionHeaders::for_startup(settings),
    );
    if let Err(e) = shared.transport.publisher.send(out).await.wait().await {
        tracing::error!(error = %e, "Could not publish the startup error.");
    }
}

/// Decodes a delivery into the message handed to the function, or `None` when it must be rejected.
fn decode(
    crypto: &Crypto,
    input_format: InputFormat,
    delivery: &Delivery,
    incoming: &FieldTable,
) -> Option<(Value, Vec<u8>, u8)> {
    let version = headers::get_num(incoming, "protocolVersion")
        .map_or(1, |v| u8::try_from(v.clamp(1, 2)).unwrap_or(1));
    if input_format == InputFormat::Error {
        return decode_error_input(crypto, delivery, incoming)
            .map(|m| (m, delivery.data.clone(), version));
    }
    let plaintext = match crypto.decode(&delivery.data, version) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, size = delivery.data.len(), protocol_version = version, "Rejecting a message that cannot be decrypted.");
            return None;
        }
    };
    match serde_json::from_slice::<Value>(&plaintext) {
        Ok(msg @ Value::Object(_)) => Some((msg, plaintext, version)),
        Ok(_) => {
            tracing::warn!("Rejecting a message whose content is not a JSON object.");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "Rejecting a message whose content is not JSON.");
            None
        }
    }
}

/// `ELASTICIO_INPUT_FORMAT=error`: `{error, errorInput}` wrappers of another step (PROTOCOL.md 3.7).
fn decode_error_input(
    crypto: &Crypto,
    delivery: &Delivery,
    incoming: &FieldTable,
) -> Option<Value> {
    let outer: Value = serde_json::from_slice(&delivery.data).ok()?;
    let decrypt = |field: &str| -> Option<Value> {
        let text = outer.get(field)?.as_str()?;
        let plain = crypto.decode(text.as_bytes(), 1).ok()?;
        serde_json::from_slice(&plain).ok()
    };
    let Some(error) = decrypt("error") else {
        tracing::warn!("Rejecting an error-format message without a decryptable `error` field.");
        return None;
    };
    let mut body = json!({ "error": error });
    if let Some(input) = decrypt("errorInput") {
        body["errorInput"] = input;
    }
    let hdrs: serde_json::Map<String, Value> = incoming
        .inner()
        .keys()
        .filter_map(|k| {
            Some((
                k.as_str().to_owned(),
                Value::String(headers::get_str(incoming, k.as_str())?),
            ))
        })
        .collect();
    Some(json!({ "body": body, "headers": hdrs }))
}

async fn handle_delivery(ctx: &WorkerCtx, delivery: Delivery) {
    let start = headers::now_ms();
    let inflight_id = ctx.inflight.start(&delivery);
    let incoming = delivery.properties.headers().clone().unwrap_or_default();
    let shared = &ctx.shared;
    let decoded = decode(
        &shared.encoding.crypto,
        ctx.settings.input_format,
        &delivery,
        &incoming,
    );
    let Some((mut msg, plaintext, version)) = decoded else {
        if let Err(e) = settle(&ctx.inflight, inflight_id.as_deref(), &delivery.acker, true).await {
            tracing::error!(error = %e, "Reject failed.");
        }
        return;
    };
    let exec_headers = ExecutionHeaders::for_delivery(&ctx.settings, &incoming, start);
    if let Some(obj) = msg.as_object_mut() {
        let h = obj.entry("headers").or_insert_with(|| json!({}));
        if !h.is_object() {
            *h = json!({});
        }
        if let (Some(reply_to), Some(h)) = (&exec_headers.reply_to, h.as_object_mut()) {
            h.insert("reply_to".into(), Value::String(reply_to.clone()));
        }
    }
    let span = tracing::info_span!(
        "execution",
        message_id = %exec_headers.message_id,
        parent_message_id = exec_headers.parent_message_id.as_deref().unwrap_or(""),
        thread_id = %exec_headers.thread_id,
        step_id = %ctx.settings.step.step_id,
    );
    async {
        tracing::info!(size = delivery.data.len(), "Message received.");
        let emitter = PlatformEmitter::new(
            Arc::clone(shared),
            exec_headers,
            IncomingRaw {
                content: delivery.data.clone(),
                plaintext,
                protocol_version: version,
                properties: delivery.properties.clone(),
            },
        )
        .with_context(
            // Only passthrough reads the incoming message back; do not copy it otherwise.
            if shared.side.passthrough() { msg.clone() } else { Value::Null },
            ctx.cfg.get("_account").and_then(Value::as_str).map(str::to_owned),
        );
        let outcome = if ctx.auto_resolve
            && let Err(text) = resolve_lightweight(shared, &mut msg).await
        {
            tracing::warn!(error = %text, "Lightweight body could not be fetched.");
            Err(FunctionError::internal("Error", text))
        } else {
            let exec = Execution {
                msg,
                cfg: ctx.cfg.clone(),
                snapshot: shared.side.snapshot(),
                variables: ctx.variables.clone(),
                emitter: Emitter::new(Arc::new(emitter.clone()) as Arc<dyn Emit>),
                shutdown: ctx.shutdown.clone(),
                fatal: ctx.fatal.clone(),
            };
            ctx.function.process(exec).await
        };
        let reject = apply_outcome(ctx, &emitter, outcome).await;
        let result = settle(&ctx.inflight, inflight_id.as_deref(), &delivery.acker, reject).await;
        match result {
            Ok(()) => tracing::info!(errors = emitter.error_count(), "Message processed."),
            Err(e) => tracing::error!(error = %e, "Ack/reject failed; the broker will redeliver the message."),
        }
    }
    .instrument(span)
    .await;
}

/// Publishes what a failed execution's [`Action`] asks for; returns whether the delivery is rejected (any
/// error emitted during the execution rejects it too).
async fn apply_outcome(
    ctx: &WorkerCtx,
    emitter: &PlatformEmitter,
    outcome: Result<(), FunctionError>,
) -> bool {
    let Err(error) = outcome else {
        return emitter.error_count() > 0;
    };
    match error.level() {
        tracing::Level::ERROR => {
            tracing::error!(error_name = %error.name, fault = ?error.fault, action = ?error.action, error = %error.message, "Execution failed.")
        }
        _ => {
            tracing::warn!(error_name = %error.name, fault = ?error.fault, action = ?error.action, error = %error.message, "Execution failed.")
        }
    }
    let published = match error.action {
        Action::Rebound => match emitter.rebound(&error.message).await {
            Ok(()) => return emitter.error_count() > 0,
            // The message could not be brought back later: fail it instead of losing it silently.
            Err(e) => emitter.error(&FunctionError::from(e)).await,
        },
        Action::Reject | Action::Retry => emitter.error(&error).await,
        Action::Crash => {
            let published = emitter.error(&error).await;
            ctx.fatal.raise(error.message.clone());
            published
        }
    };
    if let Err(e) = published {
        tracing::error!(error = %e, "Could not publish the execution's error.");
    }
    true
}

/// Replaces `body` by the object-store body when the message is lightweight (PROTOCOL.md 3.8).
async fn resolve_lightweight(shared: &EmitterShared, msg: &mut Value) -> Result<(), String> {
    let Some(id) = msg
        .pointer("/headers/x-ipaas-object-storage-id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Ok(());
    };
    let storage = shared
        .side
        .storage
        .as_ref()
        .ok_or("lightweight message received but ELASTICIO_OBJECT_STORAGE_URI is not set")?;
    let encrypted = storage.download(&id).await.map_err(|e| e.to_string())?;
    let plain = shared
        .encoding
        .crypto
        .decrypt(&encrypted)
        .map_err(|e| format!("object {id}: {e}"))?;
    let body: Value =
        serde_json::from_slice(&plain).map_err(|e| format!("object {id} is not JSON: {e}"))?;
    msg["body"] = body;
    Ok(())
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
