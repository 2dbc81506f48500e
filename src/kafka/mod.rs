//! Everything Kafka-specific that produce, consume and verifyCredentials share.

pub mod aws;
pub mod classify;
pub mod client;
pub mod config;
pub mod token;
