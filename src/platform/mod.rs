//! The platform runtime: settings-driven AMQP transport, message crypto, platform API, executions.

pub mod amqp;
pub mod api;
pub mod component;
pub mod crypto;
pub mod emitter;
pub mod headers;
pub mod hooks;
pub mod storage;
pub mod worker;
