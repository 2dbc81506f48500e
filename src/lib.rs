//! kafka-component: the Kafka step of an elastic.io-style integration platform.
//!
//! Layers (arrows point at what a module may use; ARCHITECTURE.md has the picture):
//! - [`contract`]: what a function receives, how it emits and how it fails. Depends on nothing here.
//! - [`actions`] (`produce`), [`triggers`] (`consume`): the functions. They use [`contract`] and [`kafka`],
//!   never the platform runtime.
//! - [`kafka`]: connection model (SASL, OAUTHBEARER, MSK IAM, TLS) → librdkafka settings, client context,
//!   error classification.
//! - [`platform`]: the runtime that speaks the platform's wire protocol (AMQP with confirms, crypto, the
//!   platform API, the worker loop). Uses [`contract`], never a function.
//! - [`local`]: the `exec` runtime (one function, no RabbitMQ, no platform).
//! - [`service`], [`verify`]: service mode (verifyCredentials, getMetaModel, selectModel).
//! - [`retry`]: the one backoff helper and its named policies.
//! - [`settings`], [`schema`], [`telemetry`], [`shutdown`], [`http`] (TLS of the HTTP clients): shared plumbing.
//! - [`resolve`] (here, at the top): the one place that knows every function.

pub mod actions;
pub mod contract;
#[cfg(feature = "diag")]
pub mod diag;
pub mod http;
pub mod kafka;
pub mod local;
pub mod platform;
pub mod retry;
pub mod schema;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod triggers;
pub mod verify;

use std::sync::Arc;

use contract::Function;

/// The handler named by a `component.json` entry's `main` (a [`contract::Resolve`]).
pub fn resolve(main: &str) -> Option<Arc<dyn Function>> {
    match main {
        "produce" => Some(Arc::new(actions::produce::ProduceAction::default())),
        "consume" => Some(Arc::new(triggers::consume::ConsumeTrigger::default())),
        #[cfg(feature = "diag")]
        "diag" => Some(Arc::new(diag::Diag::default())),
        #[cfg(feature = "diag")]
        "diag_init_fail" => Some(Arc::new(diag::Diag { fail_init: true })),
        _ => None,
    }
}
