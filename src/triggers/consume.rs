//! The Consume trigger (real-time flows).

use crate::function::Execution;
use crate::platform::emitter::ErrorReport;

/// The Consume trigger.
#[derive(Debug, Default)]
pub struct ConsumeTrigger {}

impl ConsumeTrigger {
    /// Handles one scheduler tick.
    ///
    /// # Errors
    /// Always, until the trigger lands.
    pub async fn process(&self, _exec: Execution) -> Result<(), ErrorReport> {
        Err(ErrorReport::new(
            "Error",
            "the consume trigger is not available in this build",
        ))
    }

    /// Stops the consumers.
    pub async fn shutdown(&self) {}
}
