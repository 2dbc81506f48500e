//! The consumer group protocols the rebalance cases run under (issue 17: "the fault suite's rebalance cases run
//! with both group protocols"): each such case is one function taking a `Protocol`, with a `…_classic` and a
//! `…_consumer` test.

use std::time::Duration;

use serde_json::{Value, json};

/// The Consume step's `groupProtocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// `classic`: JoinGroup/SyncGroup with cooperative-sticky assignment; the member's `sessionTimeoutMs` is
    /// its session, its heartbeat a third of it.
    Classic,
    /// `consumer` (KIP-848): the broker assigns, and the broker's group config owns the session timeout and the
    /// heartbeat interval (the step's `sessionTimeoutMs` is not used).
    Consumer,
}

impl Protocol {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Consumer => "consumer",
        }
    }

    /// The step's group fields: `groupProtocol`, and `sessionTimeoutMs` = `session` (which only the classic
    /// member uses; `broker_props` gives the consumer protocol the same session).
    pub(crate) fn cfg(self, session: Duration) -> Value {
        json!({"groupProtocol": self.name(), "sessionTimeoutMs": session.as_millis().to_string()})
    }

    /// The Kafka broker properties the case's broker needs so that a member of this protocol has the session
    /// `session` and the heartbeat interval the classic member derives from it (a third, clamped to
    /// 100–3000 ms, as the worker does). Nothing for classic. For the consumer protocol the broker's defaults
    /// (a 45 s session, and 45 s its minimum; 5 s heartbeats) would let a killed member keep its partitions for
    /// 45 s instead of the classic case's 6 s, and make every assignment step wait up to 5 s: the cases would
    /// measure another timing, not another protocol. So the minimums are lowered and both values set.
    pub(crate) fn broker_props(self, session: Duration) -> Vec<String> {
        match self {
            Self::Classic => Vec::new(),
            Self::Consumer => {
                let session = session.as_millis();
                let heartbeat = (session / 3).clamp(100, 3000);
                vec![
                    format!("group.consumer.min.session.timeout.ms={session}"),
                    format!("group.consumer.session.timeout.ms={session}"),
                    format!("group.consumer.min.heartbeat.interval.ms={heartbeat}"),
                    format!("group.consumer.heartbeat.interval.ms={heartbeat}"),
                ]
            }
        }
    }
}
