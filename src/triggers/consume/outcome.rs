//! What became of the records of one data message ([`Outcome`]): confirmed, skipped, written to the dead-letter
//! topic, or not written anywhere; the error each outcome publishes, and whether its offsets may be stored.

use std::sync::Arc;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::dead_letter::DeadLetter;
use super::pending::Position;
use super::record::RawRecord;
use crate::contract::{Action, EmitError, Fault, FunctionError};
use crate::kafka::classify::{Disposition, classify, describe};

/// What became of the records of one data message.
#[derive(Debug)]
pub(super) enum Outcome {
    /// The data message is confirmed.
    Delivered,
    /// No data message and no dead-letter topic: reported and skipped.
    Skipped(EmitError),
    /// No data message; each record written to `topic` at (partition, offset), in order.
    DeadLettered {
        error: EmitError,
        topic: String,
        places: Vec<(i32, i64)>,
    },
    /// No data message, and the dead-letter write failed: the offsets must not be stored.
    Failed {
        error: EmitError,
        topic: String,
        fault: Fault,
        cause: String,
    },
}

/// What became of a data message's records: `result` is its emit's outcome; a message that could not be
/// emitted has its records (`kept`, one per position) written to the dead-letter topic when there is one.
pub(super) async fn settle(
    dead_letter: Option<Arc<DeadLetter>>,
    positions: &[Position],
    kept: Vec<RawRecord>,
    result: Result<(), EmitError>,
) -> Outcome {
    let error = match result {
        Ok(()) => return Outcome::Delivered,
        Err(e) => e,
    };
    let Some(dl) = dead_letter else {
        return Outcome::Skipped(error);
    };
    if kept.len() != positions.len() {
        // Every record is kept while a dead-letter topic is set, so this is a bug; storing the offsets of
        // records written nowhere would lose them.
        return Outcome::Failed {
            error,
            topic: dl.topic().to_owned(),
            fault: Fault::Internal,
            cause: "the records' bytes were not kept (a bug)".to_owned(),
        };
    }
    match dl.write(positions, &kept, &error.to_string()).await {
        Ok(places) => Outcome::DeadLettered {
            error,
            topic: dl.topic().to_owned(),
            places,
        },
        Err(e) => {
            let (fault, cause) = failure(&e, dl.topic());
            tracing::warn!(error = %e, topic = %dl.topic(), "Dead-letter write failed.");
            Outcome::Failed {
                error,
                topic: dl.topic().to_owned(),
                fault,
                cause,
            }
        }
    }
}

impl Outcome {
    /// Whether the records' offsets may be stored: not when they went nowhere.
    pub(super) fn may_store(&self) -> bool {
        !matches!(self, Self::Failed { .. })
    }

    /// The error to publish about the records at `positions`, if any, logged.
    pub(super) fn report(&self, positions: &[Position]) -> Option<FunctionError> {
        let error = self.error(positions)?;
        match self {
            Self::DeadLettered { .. } => {
                tracing::warn!(error = %error.message, "Records dead-lettered.");
            }
            Self::Failed { .. } => {
                tracing::error!(error = %error.message, "Dead-letter write failed; stopping.");
            }
            _ => tracing::error!(error = %error.message, "Skipping records."),
        }
        Some(error)
    }

    fn error(&self, positions: &[Position]) -> Option<FunctionError> {
        let places = |ps: &[Position]| -> String {
            ps.iter()
                .map(|(t, p, o)| format!("{t}/{p}@{o}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Self::Delivered => None,
            Self::Skipped(e) => Some(
                FunctionError::data(
                    "RecordSkipped",
                    format!(
                        "record(s) {} could not be emitted and were skipped: {e}",
                        places(positions)
                    ),
                )
                // The member goes on: the next records are emitted as usual.
                .with_action(Action::Retry),
            ),
            Self::DeadLettered {
                error,
                topic,
                places: written,
            } => {
                let moved: Vec<String> = positions
                    .iter()
                    .zip(written)
                    .map(|((t, p, o), (dp, doff))| format!("{t}/{p}@{o} -> {topic}/{dp}@{doff}"))
                    .collect();
                Some(FunctionError::data(
                    "RecordSkipped",
                    format!(
                        "record(s) {} could not be emitted and were written to the dead-letter topic instead ({}): {error}",
                        places(positions),
                        moved.join(", ")
                    ),
                )
                .with_action(Action::Retry))
            }
            Self::Failed {
                error,
                topic,
                fault,
                cause,
            } => Some(FunctionError::new(
                "DeadLetterError",
                format!(
                    "record(s) {} could not be emitted ({error}) and writing them to the dead-letter topic `{topic}` failed: {cause}. Their offsets are not committed: the worker stops and, once restarted, reads them again and retries",
                    places(positions)
                ),
                *fault,
                Action::Crash,
            )),
        }
    }
}

/// Whose fault a failed dead-letter write is, and an actionable sentence.
fn failure(e: &KafkaError, topic: &str) -> (Fault, String) {
    use RDKafkaErrorCode as C;
    let text = match e.rdkafka_error_code() {
        Some(C::UnknownTopicOrPartition | C::UnknownTopic) => format!(
            "topic `{topic}` does not exist (or this user may not see it); create it (the worker does not create it) or correct the field `deadLetterTopic`"
        ),
        Some(C::MessageSizeTooLarge | C::InvalidMessageSize) => format!(
            "the record is larger than topic `{topic}` accepts; give it a `max.message.bytes` at least that of the consumed topic, plus 1 KB for the added headers"
        ),
        Some(c) => describe(c, topic),
        None => e.to_string(),
    };
    let fault = match classify(e) {
        Disposition::User => Fault::Configuration,
        Disposition::Transient => Fault::Remote,
    };
    (fault, format!("{text} ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_failed_write_keeps_the_offsets_and_stops_the_worker() {
        let too_large = || EmitError::TooLarge { size: 9, limit: 5 };
        let pos = vec![("t".to_owned(), 0, 2)];
        assert!(Outcome::Delivered.may_store() && Outcome::Delivered.report(&pos).is_none());
        let skipped = Outcome::Skipped(too_large()).report(&pos).unwrap();
        assert_eq!(
            (skipped.name.as_ref(), skipped.action),
            ("RecordSkipped", Action::Retry)
        );
        assert!(
            skipped
                .message
                .contains("t/0@2 could not be emitted and were skipped")
        );
        let moved = Outcome::DeadLettered {
            error: too_large(),
            topic: "dlt".to_owned(),
            places: vec![(1, 7)],
        };
        assert!(moved.may_store());
        let e = moved.report(&pos).unwrap();
        assert_eq!(
            (e.name.as_ref(), e.action),
            ("RecordSkipped", Action::Retry)
        );
        assert!(e.message.contains("(t/0@2 -> dlt/1@7)"), "{}", e.message);
        let (fault, cause) = failure(
            &KafkaError::MessageProduction(RDKafkaErrorCode::UnknownTopic),
            "dlt",
        );
        let failed = Outcome::Failed {
            error: too_large(),
            topic: "dlt".to_owned(),
            fault,
            cause,
        };
        assert!(!failed.may_store());
        let e = failed.report(&pos).unwrap();
        assert_eq!(
            (e.name.as_ref(), e.fault, e.action),
            ("DeadLetterError", Fault::Configuration, Action::Crash)
        );
        assert!(
            e.message.contains("topic `dlt` does not exist"),
            "{}",
            e.message
        );
        let (fault, _) = failure(
            &KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
            "dlt",
        );
        assert_eq!(fault, Fault::Remote, "a timeout is the cluster's");
    }

    #[tokio::test]
    async fn settle_dead_letters_only_failed_messages_and_never_stores_records_it_did_not_keep() {
        let pos = vec![("t".to_owned(), 0, 2)];
        let too_large = || Err(EmitError::TooLarge { size: 9, limit: 5 });
        assert!(matches!(
            settle(None, &pos, Vec::new(), Ok(())).await,
            Outcome::Delivered
        ));
        assert!(matches!(
            settle(None, &pos, Vec::new(), too_large()).await,
            Outcome::Skipped(_)
        ));
        let conn = crate::kafka::config::KafkaConnection::from_cfg(
            &serde_json::json!({"brokers": "127.0.0.1:1"}),
        )
        .unwrap();
        let ids = crate::contract::ExecutionIds::default();
        let dl = DeadLetter::start(Some("dlt"), &conn, None, ("g", &ids)).unwrap();
        let outcome = settle(dl, &pos, Vec::new(), too_large()).await;
        assert!(
            matches!(
                outcome,
                Outcome::Failed {
                    fault: Fault::Internal,
                    ..
                }
            ) && !outcome.may_store(),
            "{outcome:?}"
        );
    }
}
