//! Logging: structured JSON lines on stdout through `tracing`, fields first. Level from `LOG_LEVEL`
//! (default `info`) or `RUST_LOG`. The writer is injectable so tests can capture output.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global JSON subscriber writing to `writer`.
pub fn init<W>(level: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},lapin=warn,amq_protocol=warn")));
    let _ignored = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
}
