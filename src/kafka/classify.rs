//! Kafka errors → who is at fault and whether to retry, in one explicit table.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What to do about a failed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The user's data or configuration is wrong: report it, never retry.
    User,
    /// The cluster is (probably temporarily) unavailable: retry later (rebound).
    Transient,
}

/// Classifies a produce/delivery error code.
pub fn classify_code(code: RDKafkaErrorCode) -> Disposition {
    use RDKafkaErrorCode as C;
    match code {
        C::MessageSizeTooLarge
        | C::InvalidMessageSize
        | C::MessageBatchTooLarge
        | C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::UnknownPartition
        | C::InvalidTopic
        | C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::Authentication
        | C::InvalidRecord
        | C::InvalidRequiredAcks
        | C::InvalidArgument
        | C::PolicyViolation
        | C::UnsupportedVersion
        | C::UnsupportedCompressionType
        | C::InvalidTimestamp => Disposition::User,
        // `Fatal` (the producer is unusable) is not the record's fault: the producer is replaced, and the
        // underlying cause (`fatal_error()`) decides whose fault it is.
        _ => Disposition::Transient,
    }
}

/// Classifies any Kafka error (codes first; errors without a code are transient).
pub fn classify(error: &KafkaError) -> Disposition {
    error
        .rdkafka_error_code()
        .map_or(Disposition::Transient, classify_code)
}

/// An actionable sentence for a record error.
pub fn describe(code: RDKafkaErrorCode, topic: &str) -> String {
    use RDKafkaErrorCode as C;
    match code {
        C::UnknownTopicOrPartition | C::UnknownTopic => format!(
            "topic `{topic}` does not exist (or this user may not see it); create it or correct the Topic field"
        ),
        C::UnknownPartition => format!("the requested partition does not exist in topic `{topic}`"),
        C::TopicAuthorizationFailed => format!(
            "not authorized to write to topic `{topic}`; grant the user WRITE (and DESCRIBE) on it"
        ),
        C::ClusterAuthorizationFailed => "not authorized on the cluster; the idempotent producer needs IDEMPOTENT_WRITE, or set Idempotent producer to off".to_owned(),
        C::MessageSizeTooLarge | C::InvalidMessageSize => "record is larger than the broker or topic accepts (max.message.bytes); make it smaller or raise the limit".to_owned(),
        C::MessageTimedOut => "record was not acknowledged within the delivery timeout (brokers unreachable or overloaded)".to_owned(),
        C::AllBrokersDown => "all brokers are down or unreachable".to_owned(),
        C::Authentication | C::SaslAuthenticationFailed => "authentication failed; check username, password and mechanism".to_owned(),
        C::InvalidRecord => "the broker refused the record batch as invalid (for example a record timestamp it cannot accept, or a record without a key for a compacted topic)".to_owned(),
        C::InvalidTimestamp => "the broker refused the record timestamp: Apache Kafka accepts at most `message.timestamp.after.max.ms` (default one hour) ahead of its clock and `message.timestamp.before.max.ms` behind it; omit the timestamp or correct it".to_owned(),
        other => format!("{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use RDKafkaErrorCode as C;
        for c in [
            C::MessageSizeTooLarge,
            C::UnknownTopicOrPartition,
            C::TopicAuthorizationFailed,
            C::InvalidRecord,
            C::Authentication,
        ] {
            assert_eq!(classify_code(c), Disposition::User, "{c:?}");
        }
        for c in [
            C::QueueFull,
            C::MessageTimedOut,
            C::AllBrokersDown,
            C::RequestTimedOut,
            C::NotEnoughReplicas,
            C::LeaderNotAvailable,
            C::NotLeaderForPartition,
            C::BrokerTransportFailure,
            C::Fatal,
        ] {
            assert_eq!(classify_code(c), Disposition::Transient, "{c:?}");
        }
        assert!(describe(C::UnknownTopicOrPartition, "orders").contains("`orders` does not exist"));
        assert!(describe(C::InvalidTimestamp, "orders").contains("message.timestamp.after.max.ms"));
        assert!(describe(C::InvalidRecord, "orders").contains("compacted topic"));
    }
}
