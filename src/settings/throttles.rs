//! Emit throttles: how many data, error and snapshot messages per interval.

use std::time::Duration;

use super::env::{Env, ms};

/// Emit throttles (PROTOCOL.md 2.3).
#[derive(Debug, Clone, Copy)]
pub struct Throttles {
    /// `ELASTICIO_DATA_RATE_LIMIT` (default 10).
    pub data: u64,
    /// `ELASTICIO_ERROR_RATE_LIMIT` (default 2).
    pub error: u64,
    /// `ELASTICIO_SNAPSHOT_RATE_LIMIT` (default 2).
    pub snapshot: u64,
    /// `ELASTICIO_RATE_INTERVAL` (default 100 ms).
    pub interval: Duration,
}

impl Throttles {
    pub(super) fn from_env(env: &Env) -> Self {
        Self {
            data: env.number("DATA_RATE_LIMIT", 10),
            error: env.number("ERROR_RATE_LIMIT", 2),
            snapshot: env.number("SNAPSHOT_RATE_LIMIT", 2),
            interval: ms(env.number("RATE_INTERVAL", 100)),
        }
    }
}
