//! The step `cfg` (credentials + fields): lenient field types ([`fields`]), the connection model ([`model`]),
//! `cfg` → [`KafkaConnection`] ([`parse`]) and the one translation into librdkafka settings, [`librdkafka`]
//! ([`KafkaConnection::to_client_config`]).

pub mod fields;
mod librdkafka;
mod model;
mod parse;
#[cfg(test)]
mod tests;

pub use fields::{ConfigError, Count, Flag, Secret, Text, TextOrNumber, read};
pub use model::{Auth, KafkaConnection, Mechanism, MskIam, OAuthClient, Sasl, Tls};
pub use parse::parse_brokers;
