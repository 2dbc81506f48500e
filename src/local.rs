//! The local runner (`kafka-component exec`): runs one function without RabbitMQ or the platform API and
//! prints every emitted message as a JSON line on stdout (`{"event":"data","message":{…}}`). Logs go to
//! stderr. `consume` streams until Ctrl-C; when stderr is a terminal, a trigger also shows a live progress line
//! there (records, records/s, lag), never on stdout.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::contract::{
    Action, Confirm, Emit, EmitFuture, Emitter, Execution, ExecutionIds, Fatal, FunctionError,
    Progress, Resolve,
};
use crate::platform::component::{self, FunctionKind};

/// Why the local run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A file could not be read.
    #[error("cannot read {what} file `{path}`: {source}")]
    Read {
        /// `config` or `input`.
        what: &'static str,
        /// The path given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not JSON.
    #[error("{what} file `{path}` is not valid JSON: {source}")]
    Json {
        /// `config` or `input`.
        what: &'static str,
        /// The path given.
        path: String,
        /// Where and what.
        #[source]
        source: serde_json::Error,
    },
    /// The config is not a JSON object.
    #[error(
        "config file `{0}` must contain a JSON object of credentials and fields, e.g. {{\"brokers\": \"localhost:9092\", \"topic\": \"orders\"}}"
    )]
    NotObject(String),
    /// Unknown function.
    #[error("{0}")]
    Function(String),
}

fn read_json(what: &'static str, path: &Path) -> Result<Value, LocalError> {
    let text = std::fs::read_to_string(path).map_err(|source| LocalError::Read {
        what,
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| LocalError::Json {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// An emitted event as the local runner shows it: `{"event": …, "message": …}`.
#[derive(Debug, Clone)]
pub struct LocalEvent {
    /// `data`, `error`, `rebound`, `snapshot`, `updateSnapshot`, `httpReply`, `updateKeys`.
    pub event: &'static str,
    /// The message in readable form (nothing is encrypted locally).
    pub message: Value,
}

/// The local runner's emitter: hands each event, readable, to `out`; counts errors; keeps the snapshot.
pub struct LocalEmitter {
    out: Box<dyn Fn(LocalEvent) + Send + Sync>,
    errors: AtomicUsize,
    snapshot: Mutex<Value>,
    /// The live progress line, when it is shown.
    status: Option<Mutex<StatusLine>>,
}

/// The live progress line on stderr: records emitted, records/s over the last second or more, and the lag the
/// trigger last reported.
#[derive(Debug)]
struct StatusLine {
    records: u64,
    lag: Option<i64>,
    window: (Instant, u64),
    rate: f64,
    drawn: Option<Instant>,
}

/// How often the line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(200);

impl StatusLine {
    fn new() -> Self {
        Self {
            records: 0,
            lag: None,
            window: (Instant::now(), 0),
            rate: 0.0,
            drawn: None,
        }
    }

    /// The line's text.
    fn text(&mut self) -> String {
        let (since, at) = self.window;
        let secs = since.elapsed().as_secs_f64();
        if secs >= 1.0 {
            #[allow(clippy::cast_precision_loss)] // records in about a second
            let n = (self.records - at) as f64;
            self.rate = n / secs;
            self.window = (Instant::now(), self.records);
        }
        let lag = self.lag.map_or_else(|| "?".to_owned(), |l| l.to_string());
        format!(
            "consume: {} records, {:.1} records/s, lag {lag}",
            self.records, self.rate
        )
    }

    /// Redraws the line on stderr unless it was drawn within [`REDRAW`] (`force`: draw anyway).
    fn draw(&mut self, force: bool) {
        if !force && self.drawn.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        self.drawn = Some(Instant::now());
        let text = self.text();
        let mut err = std::io::stderr().lock();
        // Carriage return and "erase line": the line replaces itself.
        let _ignored = write!(err, "\r\x1b[2K{text}").and_then(|()| err.flush());
    }
}

/// Records in a data message: a batch's `count`, otherwise one.
fn records_in(message: &Value) -> u64 {
    message
        .pointer("/body/count")
        .and_then(Value::as_u64)
        .unwrap_or(1)
}

impl std::fmt::Debug for LocalEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmitter")
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl LocalEmitter {
    /// An emitter that hands every event to `out`.
    pub fn new(out: impl Fn(LocalEvent) + Send + Sync + 'static) -> Self {
        Self {
            out: Box::new(out),
            errors: AtomicUsize::new(0),
            snapshot: Mutex::new(json!({})),
            status: None,
        }
    }

    /// Shows the live progress line on stderr, if `on` and stderr is a terminal.
    #[must_use]
    pub fn with_status_line(mut self, on: bool) -> Self {
        if on && std::io::stderr().is_terminal() {
            self.status = Some(Mutex::new(StatusLine::new()));
        }
        self
    }

    /// Ends the progress line (so what follows starts on a line of its own).
    fn end_status_line(&self) {
        if let Some(status) = &self.status
            && let Ok(mut s) = status.lock()
        {
            s.draw(true);
            let _ignored = writeln!(std::io::stderr());
        }
    }

    /// An emitter that prints every event as a JSON line on stdout.
    pub fn stdout() -> Self {
        Self::new(|e| {
            let line = json!({ "event": e.event, "message": e.message });
            let mut out = std::io::stdout().lock();
            if let Err(err) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                tracing::error!(error = %err, "Cannot write to stdout.");
            }
        })
    }

    /// How many `error` events were emitted.
    pub fn error_count(&self) -> usize {
        self.errors.load(Ordering::SeqCst)
    }

    fn emit(&self, event: &'static str, message: Value) -> EmitFuture<'_, ()> {
        (self.out)(LocalEvent { event, message });
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Emit for LocalEmitter {
    fn data_send(&self, message: Value) -> EmitFuture<'_, Confirm> {
        if let Some(status) = &self.status
            && let Ok(mut s) = status.lock()
        {
            s.records += records_in(&message);
            s.draw(false);
        }
        (self.out)(LocalEvent {
            event: "data",
            message,
        });
        Box::pin(std::future::ready(Ok(Confirm::done())))
    }

    fn error<'a>(&'a self, error: &'a FunctionError) -> EmitFuture<'a, ()> {
        self.errors.fetch_add(1, Ordering::SeqCst);
        self.emit(
            "error",
            json!({ "name": error.name, "message": error.message }),
        )
    }

    fn rebound<'a>(&'a self, reason: &'a str) -> EmitFuture<'a, ()> {
        self.emit("rebound", json!({ "reason": reason }))
    }

    fn snapshot<'a>(&'a self, snapshot: &'a Value) -> EmitFuture<'a, ()> {
        if let Ok(mut s) = self.snapshot.lock() {
            *s = snapshot.clone();
        }
        self.emit("snapshot", snapshot.clone())
    }

    fn update_snapshot<'a>(&'a self, partial: &'a Value) -> EmitFuture<'a, ()> {
        if let (Ok(mut s), Some(p)) = (self.snapshot.lock(), partial.as_object())
            && let Some(current) = s.as_object_mut()
        {
            current.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        self.emit("updateSnapshot", partial.clone())
    }

    fn http_reply<'a>(&'a self, reply: &'a Value) -> EmitFuture<'a, ()> {
        self.emit("httpReply", reply.clone())
    }

    fn update_keys<'a>(&'a self, keys: &'a Value) -> EmitFuture<'a, ()> {
        self.emit("updateKeys", keys.clone())
    }

    fn progress(&self, progress: &Progress) {
        if let Some(status) = &self.status
            && let Ok(mut s) = status.lock()
        {
            s.lag = progress.lag;
            s.draw(true);
        }
    }
}

/// Runs `function` once with `config` (and `input` for actions); returns whether it emitted no error.
///
/// # Errors
/// [`LocalError`] when the files or the function name are unusable.
pub async fn exec(
    resolve: Resolve,
    function: &str,
    config: &Path,
    input: Option<&Path>,
    shutdown: CancellationToken,
) -> Result<bool, LocalError> {
    let cfg = read_json("config", config)?;
    if !cfg.is_object() {
        return Err(LocalError::NotObject(config.display().to_string()));
    }
    let msg = match input {
        Some(p) => {
            let v = read_json("input", p)?;
            if v.get("body").is_some() {
                v
            } else {
                json!({ "body": v })
            }
        }
        None => json!({ "body": {} }),
    };
    let def = component::find_function(function).map_err(LocalError::Function)?;
    let handler = resolve(&def.main).ok_or_else(|| {
        LocalError::Function(format!(
            "Trigger or action '{}' is found, but can not be loaded: no handler named '{}'",
            def.name, def.main
        ))
    })?;
    let local =
        Arc::new(LocalEmitter::stdout().with_status_line(def.kind == FunctionKind::Trigger));
    let emitter = Emitter::new(Arc::clone(&local) as Arc<dyn Emit>);
    let exec = Execution {
        msg,
        text: None,
        cfg,
        snapshot: json!({}),
        variables: json!({}),
        emitter: emitter.clone(),
        shutdown: shutdown.clone(),
        fatal: Fatal::new(shutdown.clone()),
        ids: ExecutionIds::default(), // a local run has no flow, step or incoming message identifiers
    };
    if let Err(error) = handler.process(exec).await {
        let shown = match error.action {
            Action::Rebound => emitter.rebound(&error.message).await,
            _ => emitter.error(&error).await,
        };
        if let Err(e) = shown {
            tracing::error!(error = %e, "Could not emit the outcome.");
        }
    }
    if def.kind == FunctionKind::Trigger {
        tracing::info!("Trigger running; press Ctrl-C to stop.");
        shutdown.cancelled().await;
    }
    handler.shutdown().await;
    local.end_status_line();
    Ok(local.error_count() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_counts_batches_and_shows_the_last_lag() {
        assert_eq!(records_in(&json!({"body": {"count": 7, "records": []}})), 7);
        assert_eq!(records_in(&json!({"body": {"value": "x"}})), 1);
        let mut line = StatusLine::new();
        line.records = 12;
        assert_eq!(line.text(), "consume: 12 records, 0.0 records/s, lag ?");
        line.lag = Some(9);
        assert!(line.text().ends_with("lag 9"), "{}", line.text());
        // A test's stderr is a pipe, not a terminal: no line at all.
        let local = LocalEmitter::new(|_| {}).with_status_line(true);
        assert!(local.status.is_none() || std::io::stderr().is_terminal());
    }

    /// The local runner has no fast path: a data message of a typed body takes the trait's default, which
    /// prints the same message as the `Value` of that body.
    #[tokio::test]
    async fn typed_bodies_print_as_their_value_messages() {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let local = LocalEmitter::new(move |e| {
            if let Ok(mut v) = sink.lock() {
                v.push(e);
            }
        });
        let emitter = Emitter::new(Arc::new(local));
        let body = json!({"topicName": "t", "records": [{"index": 0, "key": {"base64": "AA=="}, "offset": null}]});
        emitter
            .data_send_body(&body)
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        let events = events.lock().unwrap();
        let [LocalEvent { event, message }] = events.as_slice() else {
            panic!("one event expected");
        };
        assert_eq!(*event, "data");
        let mut expected = crate::contract::new_message(body);
        expected["id"] = message["id"].clone();
        assert_eq!(message.to_string(), expected.to_string());
        assert!(message["id"].as_str().is_some_and(|id| id.len() == 36));
    }
}
