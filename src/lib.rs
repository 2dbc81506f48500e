//! kafka-component: the Kafka step of an elastic.io-style integration platform.
//!
//! Layout:
//! - [`settings`]: `ELASTICIO_*` environment → typed settings (read once, in `main`).
//! - [`platform`]: the runtime that speaks the platform's wire protocol: AMQP transport with publisher
//!   confirms, message crypto, platform API client, executions, the [`platform::emitter::Emitter`] handle.
//! - [`function`]: dispatch to the functions of `component.json`.
//! - [`actions`] (`produce`) and [`triggers`] (`consume`): the Kafka functions. They emit through the
//!   emitter and never touch lapin.
//! - [`kafka`]: connection model (SASL, TLS) → librdkafka settings, client context, error classification.
//! - [`schema`]: JSON Schema validators compiled from `schemas/`.
//! - [`local`]: the `exec` runner (one function, no RabbitMQ, no platform).
//! - [`service`], [`verify`]: service mode (verifyCredentials, getMetaModel, selectModel).
//! - [`retry`]: the named backoff policies every retry uses.
//! - [`telemetry`], [`shutdown`]: logging and signals.

pub mod actions;
pub mod diag;
pub mod function;
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
