//! What a function is to the runtime ([`Function`]) and what one call of it receives ([`Execution`]).

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::emit::Emitter;
use super::error::FunctionError;

/// One call of a function for one incoming message.
#[derive(Debug)]
pub struct Execution {
    /// The decoded incoming message (`{id?, body, headers, ...}`). Without `body` when [`Execution::text`] is
    /// given.
    pub msg: Value,
    /// The incoming message as JSON text (the decrypted content), given only to a function whose
    /// [`Function::reads_body_from_text`] is true, and then `msg` has no `body`: the function reads the top-level
    /// `body` of this text itself. The runtime has checked that the text is a well-formed JSON object whose
    /// fields other than `body` a [`serde_json::Value`] parse accepts; the body's strict check is the function's
    /// (one parse, not two): when its reading finds that the text is not JSON a `Value` parse accepts, it
    /// returns [`FunctionError::not_json`] and the delivery is rejected as any message that is not JSON.
    /// `None`: `msg` has the `body`, as usual.
    pub text: Option<Vec<u8>>,
    /// Step configuration: credentials and fields.
    pub cfg: Value,
    /// The in-memory snapshot.
    pub snapshot: Value,
    /// Flow variables.
    pub variables: Value,
    /// Where to emit.
    pub emitter: Emitter,
    /// Cancelled when the process shuts down.
    pub shutdown: CancellationToken,
    /// Stops the process with a failure (background work that cannot go on).
    pub fatal: Fatal,
    /// Who is executing: the runtime's identifiers of this execution, each absent where the runtime has none.
    pub ids: ExecutionIds,
}

/// The identifiers a runtime knows about one execution (for tracing what a function wrote back to it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionIds {
    /// The flow execution.
    pub exec_id: Option<String>,
    /// The incoming message (its `messageId`).
    pub message_id: Option<String>,
    /// The step of the flow.
    pub step_id: Option<String>,
    /// The flow.
    pub flow_id: Option<String>,
    /// The thread of messages this one belongs to.
    pub thread_id: Option<String>,
    /// The container (process instance) running the step: stable across restarts of that container,
    /// distinct between two containers of the same step.
    pub container_id: Option<String>,
}

/// A way for background work to stop the whole process with a non-zero exit (the platform restarts it).
#[derive(Debug, Clone)]
pub struct Fatal {
    reason: Arc<std::sync::Mutex<Option<String>>>,
    token: CancellationToken,
}

impl Fatal {
    /// A fatal signal that cancels `token` (the process shutdown token).
    pub fn new(token: CancellationToken) -> Self {
        Self {
            reason: Arc::default(),
            token,
        }
    }

    /// Records the first reason and starts a graceful shutdown.
    pub fn raise(&self, reason: impl Into<String>) {
        if let Ok(mut r) = self.reason.lock()
            && r.is_none()
        {
            *r = Some(reason.into());
        }
        self.token.cancel();
    }

    /// The reason, when raised.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }
}

/// A function of `component.json` as the runtime drives it.
pub trait Function: Send + Sync + fmt::Debug {
    /// The startup hook (`ELASTICIO_STARTUP_REQUIRED`): its result is stored by the platform.
    fn startup<'a>(&'a self, _cfg: &'a Value) -> BoxFuture<'a, Result<Value, FunctionError>> {
        Box::pin(std::future::ready(Ok(Value::Object(Default::default()))))
    }

    /// The init hook, once before consuming. The shipped functions report configuration problems per
    /// message, where the flow designer sees them.
    fn init<'a>(&'a self, _cfg: &'a Value) -> BoxFuture<'a, Result<(), FunctionError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Whether this function reads the message `body` from [`Execution::text`] when it is given (parsing it
    /// into its own types is cheaper than a [`Value`] tree). The runtime may then leave `body` out of
    /// [`Execution::msg`]; it still hands over `body` in `msg` when it needs the tree itself (passthrough, a
    /// lightweight body fetched from the object store, the error input format).
    fn reads_body_from_text(&self) -> bool {
        false
    }

    /// Processes one message. An error is settled by its [`super::Action`].
    fn process(&self, exec: Execution) -> BoxFuture<'_, Result<(), FunctionError>>;

    /// Stops background work: producers flush, consumers commit and leave their group.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Finds the handler named by a `component.json` entry's `main` (`None`: this binary has none).
pub type Resolve = fn(main: &str) -> Option<Arc<dyn Function>>;
