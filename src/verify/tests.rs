//! Tests of the verdicts' wording.

use openssl::x509::X509VerifyResult;
use serde_json::json;

use super::reasons::sasl_reason;
use super::tls::tls_reason;
use super::verdict::Verdict;

#[test]
fn reasons_name_stage_problem_and_action() {
    let v = sasl_reason(
        "SASL PLAIN mechanism handshake failed: Broker: Unsupported SASL mechanism: broker's supported mechanisms: SCRAM-SHA-256,SCRAM-SHA-512",
        Some("PLAIN"),
    );
    assert_eq!(
        v.reason.as_deref(),
        Some(
            "SASL: the broker does not accept PLAIN; it accepts SCRAM-SHA-256,SCRAM-SHA-512. Choose one of the mechanisms the broker accepts."
        )
    );
    let v = sasl_reason(
        "SASL authentication error: Authentication failed",
        Some("SCRAM-SHA-512"),
    );
    assert!(
        v.reason
            .unwrap()
            .starts_with("SASL: authentication with SCRAM-SHA-512 failed")
    );
    assert_eq!(Verdict::ok().to_json(), json!({"verified": true}));
    let v = sasl_reason(
        "sasl_plaintext://127.0.0.1:9092/bootstrap: SASL SCRAM-SHA-512 mechanism handshake failed: Broker: Request not valid in current SASL state: broker's supported mechanisms:  (after 0ms in state AUTH_HANDSHAKE)",
        Some("SCRAM-SHA-512"),
    );
    assert!(
        v.reason
            .unwrap()
            .starts_with("SASL: the broker's listener does not use SASL")
    );
    let v = tls_reason(
        "localhost:9093",
        X509VerifyResult::OK,
        "error:0A000416:SSL routines:ssl3_read_bytes:sslv3 alert certificate unknown",
    );
    assert!(
        v.reason
            .unwrap()
            .starts_with("TLS: localhost:9093 refused the client certificate")
    );
}
