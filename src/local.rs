//! The local runner (`kafka-component exec`): runs one function without RabbitMQ or the platform API and
//! prints every emitted message as a JSON line on stdout (`{"event":"data","message":{…}}`). Logs go to
//! stderr. `consume` streams until Ctrl-C.

use std::path::Path;
use std::sync::Arc;

use lapin::types::FieldTable;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::function::{Execution, Fatal, Function};
use crate::platform::amqp::{LocalSender, Sink};
use crate::platform::component::{self, FunctionKind};
use crate::platform::crypto::Crypto;
use crate::platform::emitter::{Emitter, EmitterShared, IncomingRaw};
use crate::platform::headers::{ExecutionHeaders, now_ms};
use crate::settings::{Env, Settings};

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
    /// Internal setup failure.
    #[error("{0}")]
    Setup(String),
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

/// Settings for a run without a platform: placeholder identity, no throttling.
fn local_settings(function: &str) -> Result<Settings, LocalError> {
    let mut pairs: Vec<(String, String)> = crate::settings::ALWAYS_REQUIRED
        .iter()
        .chain(crate::settings::AMQP_REQUIRED.iter())
        .map(|n| {
            (
                format!("ELASTICIO_{n}"),
                format!("local-{}", n.to_ascii_lowercase()),
            )
        })
        .collect();
    pairs.push(("ELASTICIO_FUNCTION".into(), function.into()));
    pairs.push((
        "ELASTICIO_MESSAGE_CRYPTO_IV".into(),
        "local-runner-iv!".into(),
    ));
    pairs.push(("ELASTICIO_DATA_RATE_LIMIT".into(), "1000000".into()));
    pairs.push(("ELASTICIO_ERROR_RATE_LIMIT".into(), "1000000".into()));
    Settings::from_env(&Env::from_pairs(pairs)).map_err(|e| LocalError::Setup(e.to_string()))
}

/// Runs `function` once with `config` (and `input` for actions); returns whether it emitted no error.
///
/// # Errors
/// [`LocalError`] when the files or the function name are unusable.
pub async fn exec(
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
    let handler = Function::for_definition(&def).map_err(LocalError::Function)?;
    let settings = local_settings(function)?;
    let amqp = settings
        .amqp
        .clone()
        .ok_or_else(|| LocalError::Setup("no AMQP settings".into()))?;
    let crypto =
        Crypto::new("local", "local-runner-iv!").map_err(|_| LocalError::Setup("IV".into()))?;
    let (tx, mut rx) = LocalSender::channel();
    let shared = Arc::new(EmitterShared::new(
        Sink::Local(tx),
        crypto,
        settings.clone(),
        amqp,
    ));
    let printer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            println!("{}", json!({ "event": m.event, "message": m.message }));
        }
    });
    let headers = ExecutionHeaders::for_delivery(&settings, &FieldTable::default(), now_ms());
    let plaintext = serde_json::to_vec(&msg).unwrap_or_default();
    let emitter = Emitter::new(
        Arc::clone(&shared),
        headers,
        IncomingRaw {
            content: plaintext.clone(),
            plaintext,
            protocol_version: 2,
            properties: Default::default(),
        },
    );
    let exec = Execution {
        msg,
        cfg,
        snapshot: json!({}),
        variables: json!({}),
        emitter: emitter.clone(),
        shutdown: shutdown.clone(),
        fatal: Fatal::new(shutdown.clone()),
    };
    if let Err(report) = handler.process(exec).await
        && let Err(e) = emitter.error(&report).await
    {
        tracing::error!(error = %e, "Could not emit the error.");
    }
    if def.kind == FunctionKind::Trigger {
        tracing::info!("Trigger running; press Ctrl-C to stop.");
        shutdown.cancelled().await;
    }
    handler.shutdown().await;
    let ok = emitter.error_count() == 0;
    drop(emitter);
    drop(shared);
    // The printer ends when the last emitter handle is gone.
    let _ignored = tokio::time::timeout(std::time::Duration::from_secs(5), printer).await;
    Ok(ok)
}
