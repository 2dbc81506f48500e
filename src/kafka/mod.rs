//! Everything Kafka-specific that produce, consume and verifyCredentials share.

pub mod classify;
pub mod client;
pub mod config;
