//! The functions this component offers (`produce`, `consume`) behind one dispatch point, and the
//! [`Execution`] each call receives. Functions never touch lapin: they emit through [`Emitter`].

use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::actions::produce::ProduceAction;
use crate::diag::Diag;
use crate::platform::component::FunctionDef;
use crate::platform::emitter::{Emitter, ErrorReport};
use crate::triggers::consume::ConsumeTrigger;

/// One call of a function for one incoming message.
#[derive(Debug)]
pub struct Execution {
    /// The decoded incoming message (`{id?, body, headers, ...}`).
    pub msg: Value,
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

/// A function of component.json, resolved to its handler.
#[derive(Debug, Clone)]
pub enum Function {
    /// The Produce action.
    Produce(Arc<ProduceAction>),
    /// The Consume trigger.
    Consume(Arc<ConsumeTrigger>),
    /// The diagnostic function of the conformance tests.
    Diag(Arc<Diag>),
}

impl Function {
    /// The handler named by a component.json entry's `main`.
    ///
    /// # Errors
    /// When this binary has no handler of that name.
    pub fn for_definition(def: &FunctionDef) -> Result<Self, String> {
        match def.main.as_str() {
            "produce" => Ok(Self::Produce(Arc::new(ProduceAction::default()))),
            "consume" => Ok(Self::Consume(Arc::new(ConsumeTrigger::default()))),
            "diag" => Ok(Self::Diag(Arc::default())),
            "diag_init_fail" => Ok(Self::Diag(Arc::new(Diag { fail_init: true }))),
            other => Err(format!(
                "Trigger or action '{}' is found, but can not be loaded: no handler named '{other}'",
                def.name
            )),
        }
    }

    /// The startup hook (`ELASTICIO_STARTUP_REQUIRED`): its result is stored by the platform.
    ///
    /// # Errors
    /// Never for the shipped functions.
    pub async fn startup(&self, _cfg: &Value) -> Result<Value, ErrorReport> {
        Ok(Value::Object(Default::default()))
    }

    /// The init hook, once before consuming.
    ///
    /// # Errors
    /// Never for the shipped functions: configuration problems are reported per message, where the flow
    /// designer sees them.
    pub async fn init(&self, _cfg: &Value) -> Result<(), ErrorReport> {
        match self {
            Self::Diag(d) => d.init(),
            _ => Ok(()),
        }
    }

    /// Processes one message.
    ///
    /// # Errors
    /// The report is published as the execution's error and the delivery is rejected.
    pub async fn process(&self, exec: Execution) -> Result<(), ErrorReport> {
        match self {
            Self::Produce(p) => p.process(exec).await,
            Self::Consume(c) => c.process(exec).await,
            Self::Diag(d) => d.process(exec).await,
        }
    }

    /// Stops background work: producers flush, consumers commit and leave their group.
    pub async fn shutdown(&self) {
        match self {
            Self::Produce(p) => p.shutdown().await,
            Self::Consume(c) => c.shutdown().await,
            Self::Diag(_) => {}
        }
    }
}
