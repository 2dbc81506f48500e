//! Process settings: every `ELASTICIO_*` variable read once at start-up into typed [`Settings`].
//!
//! Owns the parsing rules of the reference runtime (PROTOCOL.md 1.2.1): mandatory variables that are absent
//! or empty are all reported together; optional numbers fall back to their default when unparsable **or 0**
//! (kept for compatibility, see the README's protocol notes); optional booleans are false only for `""` and
//! `"false"`. Code past `main` never reads `std::env`; it gets a `Settings`.
//! Does not own the step configuration (`cfg`), which comes from the platform API.

mod amqp;
mod api;
mod env;
mod headers;
mod required;
mod step;
mod storage;
mod throttles;
mod worker;

#[cfg(test)]
mod tests;

pub use amqp::AmqpSettings;
pub use api::ApiSettings;
pub use env::Env;
pub use required::{ALWAYS_REQUIRED, AMQP_REQUIRED, SettingsError};
pub use step::StepIdentity;
pub use storage::ObjectStorageSettings;
pub use throttles::Throttles;
pub use worker::{InputFormat, Settings};
