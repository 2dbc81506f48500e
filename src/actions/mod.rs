//! Actions: functions that process one incoming message and emit its result.

pub mod produce;
