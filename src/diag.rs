//! Diagnostic function for protocol conformance tests. It exists only in builds with the `diag` feature (the
//! tests' builds) and is reached through a component.json that names `"main": "diag"` (via
//! `ELASTICIO_COMPONENT_PATH`); the shipped component.json does not.
//!
//! The incoming body is a script: `{"steps": [{"op": …}, …]}` with ops `data` (`message`), `echo`,
//! `snapshot`/`updateSnapshot` (`value`), `rebound` (`reason`), `httpReply` (`reply`), `updateKeys`
//! (`keys`), `sleep` (`ms`), `lateData` (`ms`, `message`: emitted after the execution ended), `error`
//! (`message`: emitted, execution goes on), `throw` (`message`: the execution fails), `hang` (never ends).
//! A body without `steps` is echoed.

use std::time::Duration;

use serde_json::{Value, json};

use futures_util::future::BoxFuture;

use crate::contract::{Execution, Function, FunctionError};

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
    pub async fn run(&self, exec: Execution) -> Result<(), FunctionError> {
        // Without a script the function echoes what it received.
        let steps = match exec.msg.pointer("/body/steps") {
            Some(v) => v.as_array().cloned().unwrap_or_default(),
            None => vec![json!({"op": "echo"})],
        };
        let e = &exec.emitter;
        for step in steps {
            let text = |k: &str| step.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            match step.get("op").and_then(Value::as_str).unwrap_or("") {
                "data" => e.data(step.get("message").cloned().unwrap_or(json!({"body": {}}))).await.map_err(FunctionError::from)?,
                "echo" => e
                    .data(json!({ "body": { "msg": exec.msg, "cfg": exec.cfg, "snapshot": exec.snapshot, "variables": exec.variables } }))
                    .await
                    .map_err(FunctionError::from)?,
                "snapshot" => e.snapshot(step.get("value").unwrap_or(&Value::Null)).await.map_err(FunctionError::from)?,
                "updateSnapshot" => e.update_snapshot(step.get("value").unwrap_or(&Value::Null)).await.map_err(FunctionError::from)?,
                "rebound" => e.rebound(&text("reason")).await.map_err(FunctionError::from)?,
                "httpReply" => e.http_reply(step.get("reply").unwrap_or(&Value::Null)).await.map_err(FunctionError::from)?,
                "updateKeys" => e.update_keys(step.get("keys").unwrap_or(&Value::Null)).await.map_err(FunctionError::from)?,
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
                "error" => e.error(&FunctionError::internal("Error", text("message"))).await.map_err(FunctionError::from)?,
                "throw" => return Err(FunctionError::internal("Error", text("message"))),
                "hang" => std::future::pending::<()>().await,
                other => return Err(FunctionError::internal("Error", format!("unknown diag op `{other}`"))),
            }
        }
        Ok(())
    }
}

impl Function for Diag {
    fn init<'a>(&'a self, _cfg: &'a Value) -> BoxFuture<'a, Result<(), FunctionError>> {
        let result = if self.fail_init {
            Err(FunctionError::internal(
                "Error",
                "INIT HOOK failed on purpose",
            ))
        } else {
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }

    fn process(&self, exec: Execution) -> BoxFuture<'_, Result<(), FunctionError>> {
        Box::pin(self.run(exec))
    }
}
