//! Triggers: functions started by scheduler ticks that emit messages of their own.

pub mod consume;
