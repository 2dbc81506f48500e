//! Shutdown-hook mode (`ELASTICIO_HOOK_SHUTDOWN`, PROTOCOL.md 1.4): read the step and the stored startup
//! state, run the function's shutdown hook, delete the state. No AMQP connection at all.

use super::api::{ApiClient, ApiError};
use super::component;
use crate::settings::Settings;

/// Why the hook run failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// HTTP client construction failed.
    #[error("could not build the HTTP client")]
    Http(#[source] reqwest::Error),
    /// A platform call failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The function is not in component.json.
    #[error("{0}")]
    Function(String),
}

/// Runs the shutdown hook once.
///
/// # Errors
/// [`HookError`].
pub async fn run_shutdown_hook(settings: &Settings) -> Result<(), HookError> {
    let api = ApiClient::new(&settings.api).map_err(HookError::Http)?;
    let flow = &settings.step.flow_id;
    let _step = api.retrieve_step(flow, &settings.step.step_id).await?;
    component::find_function_at(&settings.component_path, &settings.step.function)
        .map_err(HookError::Function)?;
    let state = api.read_startup_state(flow).await?;
    // The shipped functions keep no external state to clean up: consumers leave their group on SIGTERM.
    tracing::info!(
        state_keys = state.as_object().map_or(0, serde_json::Map::len),
        "Shutdown hook: nothing to clean up."
    );
    api.delete_startup_state(flow).await?;
    Ok(())
}
