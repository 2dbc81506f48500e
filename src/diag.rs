//! Diagnostic function for protocol conformance tests. It is reachable only through a component.json that
//! names `"main": "diag"` (via `ELASTICIO_COMPONENT_PATH`); the shipped component.json does not.
//!
//! The incoming body is a script: `{"steps": [{"op": …}, …]}` with ops `data` (`message`), `echo`,
//! `snapshot`/`updateSnapshot` (`value`), `rebound` (`reason`), `httpReply` (`reply`), `updateKeys`
//! (`keys`), `sleep` (`ms`), `lateData` (`ms`, `message`: emitted after the execution ended), `error`
//! (`message`: emitted, execution goes on), `throw` (`message`: the execution fails), `hang` (never ends).
//! A body without `steps` is echoed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::function::Execution;
use crate::platform::emitter::ErrorReport;

/// The diagnostic function.
#[derive(Debug, Default)]
pub struct Diag {
    /// Whether `init` fails (main `diag_init_fail`).
    pub fail_init: bool,
}

impl Diag {
    /// Runs the script in the message body.
    ///
    /// # Errors
    /// A `throw` step, or an emit that failed.
    pub async fn process(&self, exec: Execution) -> Result<(), ErrorReport> {
        // Without a script the function echoes what it received.
        let steps = match exec.msg.pointer("/body/steps") {
            Some(v) => v.as_array().cloned().unwrap_or_default(),
            None => vec![json!({"op": "echo"})],
        };
        let e = &exec.emitter;
        for step in steps {
            let text = |k: &str| step.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            match step.get("op").and_then(Value::as_str).unwrap_or("") {
                "data" => e.data(step.get("message").cloned().unwrap_or(json!({"body": {}}))).await.map_err(ErrorReport::from)?,
                "echo" => e
                    .data(json!({ "body": { "msg": exec.msg, "cfg": exec.cfg, "snapshot": exec.snapshot, "variables": exec.variables } }))
                    .await
                    .map_err(ErrorReport::from)?,
                "snapshot" => e.snapshot(step.get("value").unwrap_or(&Value::Null), "snapshot").await.map_err(ErrorReport::from)?,
                "updateSnapshot" => e.update_snapshot(step.get("value").unwrap_or(&Value::Null)).await.map_err(ErrorReport::from)?,
                "rebound" => e.rebound(&text("reason")).await.map_err(ErrorReport::from)?,
                "httpReply" => e.http_reply(step.get("reply").unwrap_or(&Value::Null)).await.map_err(ErrorReport::from)?,
                "updateKeys" => e.update_keys(step.get("keys").unwrap_or(&Value::Null)).await.map_err(ErrorReport::from)?,
                "sleep" => tokio::time::sleep(Duration::from_millis(step.get("ms").and_then(Value::as_u64).unwrap_or(0))).await,
                "lateData" => {
                    let (emitter, ms) = (e.clone(), step.get("ms").and_then(Value::as_u64).unwrap_or(100));
                    let message = step.get("message").cloned().unwrap_or(json!({"body": {}}));
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        if let Err(err) = emitter.data(message).await {
                            tracing::error!(error = %err, "Late data failed.");
                        }
                    });
                }
                "error" => e.error(&ErrorReport::new("Error", text("message"))).await.map_err(ErrorReport::from)?,
                "throw" => return Err(ErrorReport::new("Error", text("message"))),
                "hang" => std::future::pending::<()>().await,
                other => return Err(ErrorReport::new("Error", format!("unknown diag op `{other}`"))),
            }
        }
        Ok(())
    }

    /// The init hook.
    ///
    /// # Errors
    /// When configured to fail.
    pub fn init(&self) -> Result<(), ErrorReport> {
        if self.fail_init {
            Err(ErrorReport::new("Error", "INIT HOOK failed on purpose"))
        } else {
            Ok(())
        }
    }
}
