//! The step `cfg` (credentials + fields): lenient field types ([`fields`]), the connection model (`model.rs`),
//! `cfg` → [`KafkaConnection`] (`parse.rs`) and the one translation into librdkafka settings
//! ([`KafkaConnection::to_client_config`], `librdkafka.rs`).

pub mod fields;
mod librdkafka;
mod model;
mod parse;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

pub use fields::{ConfigError, Count, Flag, Secret, Text, TextOrNumber, read};
pub use model::{Auth, KafkaConnection, Mechanism, MskIam, OAuthClient, Sasl, Tls};
pub use parse::parse_brokers;
