//! The outcome of an exactly-once message (`deliveryGuarantee` `exactlyOnce`, transactions in [`super::txn`]):
//! data for every record once the transaction is committed; otherwise nothing is written (the transaction
//! was aborted) and the message is rebounded (transient trouble, a fenced producer) or rejected (records the
//! cluster refuses for good, a missing permission).

use rdkafka::error::RDKafkaErrorCode;
use serde_json::Value;

use super::config::ProduceConfig;
use super::headers::Added;
use super::input::Record;
use super::send::Failure;
use super::txn::TxnError;
use super::{Prepared, ProduceAction};
use crate::contract::{Action, Execution, FunctionError};
use crate::kafka::classify::Disposition;

impl ProduceAction {
    /// Writes the message's records in one transaction and emits where they went.
    ///
    /// # Errors
    /// As [`TxnError`] says; none of the records is visible to a `read_committed` reader then.
    pub(super) async fn exactly_once(
        &self,
        exec: &Execution,
        prepared: &Prepared,
        records: &[Record],
        added: &Added,
    ) -> Result<(), FunctionError> {
        let (conn, pc) = (&prepared.conn, &prepared.pc);
        let pool = self.transactional.get(&prepared.key, &exec.ids);
        match pool.produce(conn, pc, records, added).await {
            Ok((producer, written)) => {
                self.emit_written(exec, &producer, pc, records, &written)
                    .await?;
                tracing::debug!(records = records.len(), topic = %pc.topic, "Records produced in one transaction.");
                Ok(())
            }
            Err(TxnError::NoProducer(e)) => Err(super::no_producer(e, conn)),
            Err(TxnError::Authentication(reason)) => {
                Err(super::authentication_failed(conn, &reason))
            }
            Err(TxnError::Records(producer, mut failures)) => {
                self.explain(&producer, &pc.topic, &mut failures).await;
                if let Some(auth) = failures
                    .iter()
                    .find(|f| f.code == Some(RDKafkaErrorCode::Authentication))
                {
                    return Err(super::authentication_failed(conn, &auth.error));
                }
                if failures
                    .iter()
                    .all(|f| f.disposition == Disposition::Transient)
                {
                    return Err(super::unavailable(pc, records.len(), &failures));
                }
                Err(aborted(pc, records.len(), &failures))
            }
            Err(TxnError::Transient(reason)) => {
                tracing::warn!(reason = %reason, "Transaction not committed; rebounding the message.");
                Err(FunctionError::unavailable(format!(
                    "the transaction for {} records to topic `{}` was not committed (none is visible to read_committed readers): {reason}",
                    records.len(),
                    pc.topic
                )))
            }
            Err(TxnError::Fatal(code, reason, id)) => Err(fatal(pc, code, &reason, &id)),
        }
    }
}

/// Records the cluster refused for good: the transaction was aborted, so none was written.
fn aborted(pc: &ProduceConfig, total: usize, failures: &[Failure]) -> FunctionError {
    let details: Vec<Value> = failures.iter().map(Failure::detail).collect();
    let indexes: Vec<String> = failures.iter().map(|f| f.index.to_string()).collect();
    FunctionError::new(
        "ProduceError",
        format!(
            "{} of {total} records were refused by topic `{}` (indexes {}); the transaction was aborted, so none of the {total} records was written (deliveryGuarantee exactlyOnce). Failed records: {}",
            failures.len(),
            pc.topic,
            indexes.join(", "),
            Value::from(details)
        ),
        super::fault_of(failures),
        Action::Reject,
    )
}

/// A producer that cannot go on (it was replaced): a missing permission is the configuration's fault; a
/// fenced producer (another producer took its transactional id) or another fatal error brings the message
/// back, to be written by the new producer.
fn fatal(pc: &ProduceConfig, code: RDKafkaErrorCode, reason: &str, id: &str) -> FunctionError {
    use RDKafkaErrorCode as C;
    match code {
        C::TransactionalIdAuthorizationFailed => FunctionError::config(
            "AuthorizationError",
            format!(
                "not authorized to use the transactional id `{id}` (deliveryGuarantee exactlyOnce): grant the user WRITE on TransactionalId `{id}` (or on the prefix `kafka-component.`, which covers every step; WRITE implies DESCRIBE), besides WRITE on topic `{}`; or use deliveryGuarantee atLeastOnce ({reason})",
                pc.topic
            ),
        ),
        C::ClusterAuthorizationFailed => FunctionError::config(
            "AuthorizationError",
            format!(
                "not authorized on the cluster to start a transactional producer (deliveryGuarantee exactlyOnce): brokers before Apache Kafka 3.0 need IDEMPOTENT_WRITE on the Cluster; or use deliveryGuarantee atLeastOnce ({reason})"
            ),
        ),
        C::ProducerFenced | C::Fenced | C::InvalidProducerEpoch => {
            tracing::warn!(transactional_id = %id, reason = %reason, "The transactional producer was fenced: another producer (a restarted or second container with the same container id) took its transactional id. Its transaction was aborted; the producer is replaced and the message rebounded.");
            FunctionError::unavailable(format!(
                "the transactional producer `{id}` was fenced by another producer with the same transactional id (same step and container id); this attempt was aborted and will be written again by a new producer ({reason})"
            ))
        }
        other => {
            tracing::warn!(transactional_id = %id, code = ?other, reason = %reason, "The transactional producer hit a fatal error; it is replaced and the message rebounded.");
            FunctionError::unavailable(format!(
                "the transactional producer `{id}` hit a fatal error and was replaced; this attempt was aborted ({reason})"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Fault;

    #[test]
    fn fatal_errors_say_whose_fault_and_what_to_grant() {
        let pc = ProduceConfig::from_cfg(
            &serde_json::json!({"topic": "orders", "deliveryGuarantee": "exactlyOnce"}),
        )
        .unwrap();
        let e = fatal(
            &pc,
            RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
            "denied",
            "kafka-component.s.c.0",
        );
        assert_eq!((e.fault, e.action), (Fault::Configuration, Action::Reject));
        assert!(
            e.message
                .contains("WRITE on TransactionalId `kafka-component.s.c.0`"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("WRITE on topic `orders`"),
            "{}",
            e.message
        );
        for code in [RDKafkaErrorCode::ProducerFenced, RDKafkaErrorCode::Fenced] {
            let e = fatal(&pc, code, "fenced", "kafka-component.s.c.0");
            assert_eq!((e.fault, e.action), (Fault::Remote, Action::Rebound));
            assert!(e.message.contains("fenced"), "{}", e.message);
        }
        let e = fatal(&pc, RDKafkaErrorCode::OutOfOrderSequenceNumber, "x", "id");
        assert_eq!(e.action, Action::Rebound);
    }
}
