//! Steps 3–7 of PROTOCOL.md 1.3 (step, function, startup hook, init hook, consumer), and the error message a
//! failed startup publishes.

use std::sync::Arc;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::super::amqp::{self, Outgoing};
use super::super::api::ApiClient;
use super::super::component;
use super::super::emitter::EmitterShared;
use super::super::headers::ExecutionHeaders;
use super::WorkerCtx;
use super::inflight::InFlight;
use crate::contract::{Fatal, Resolve, error_chain};
use crate::settings::Settings;

/// Steps 3–7 of PROTOCOL.md 1.3. Errors are the text of the startup error message.
pub(super) async fn startup(
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
    let consumer = amqp::consume_queue(&channel, &amqp.listen_messages_on)
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
        summary: super::Summary::default(),
    };
    Ok((ctx, channel, consumer))
}

/// One error message for a failure before any delivery (no `errorInput`).
pub(super) async fn publish_startup_error(
    shared: &EmitterShared,
    settings: &Settings,
    message: &str,
) {
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
