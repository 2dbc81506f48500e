//! The wording of failures: TLS, plaintext connections, SASL; each names the problem and what to do.

use openssl::x509::X509VerifyResult;

use super::network::host_of;
use super::tls::Probe;
use super::verdict::Verdict;
use crate::kafka::config::Auth;

/// A failed handshake: by the certificate verification result, else by OpenSSL's text.
pub(super) fn tls_reason(broker: &str, verify: X509VerifyResult, detail: &str) -> Verdict {
    let code = verify.as_raw();
    // X509_V_ERR_* codes from OpenSSL's x509_vfy.h.
    match code {
        0 => handshake_reason(broker, detail),

        2 | 18 | 19 | 20 | 21 => Verdict::fail(
            "TLS",
            format!(
                "the certificate of {broker} is signed by an unknown CA ({})",
                verify.error_string()
            ),
            "Paste the cluster's CA certificate into `CA certificate`, or fix the broker's certificate chain.",
        ),
        62 | 64 => Verdict::fail(
            "TLS",
            format!(
                "the certificate of {broker} does not name host `{}` (hostname mismatch)",
                host_of(broker)
            ),
            "Connect with a host name listed in the broker certificate, or fix the certificate.",
        ),
        10 => Verdict::fail(
            "TLS",
            format!("the certificate of {broker} has expired"),
            "Renew the broker certificate.",
        ),
        9 => Verdict::fail(
            "TLS",
            format!("the certificate of {broker} is not yet valid"),
            "Check the clocks, or the certificate's validity dates.",
        ),
        _ => Verdict::fail(
            "TLS",
            format!(
                "the certificate of {broker} was rejected: {}",
                verify.error_string()
            ),
            "Check the broker certificate and the CA in the credentials.",
        ),
    }
}

/// A handshake that failed without a certificate verdict: not a TLS port, a refused client certificate, or
/// something else.
fn handshake_reason(broker: &str, detail: &str) -> Verdict {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("wrong version number")
        || lower.contains("unexpected eof")
        || lower.contains("packet length too long")
    {
        Verdict::fail(
            "TLS",
            format!("{broker} did not answer the TLS handshake ({detail})"),
            "The port does not use TLS: turn off `Use TLS`, or use the broker's TLS port.",
        )
    } else if lower.contains("certificate required")
        || lower.contains("alert handshake failure")
        || lower.contains("alert bad certificate")
        || lower.contains("alert unknown ca")
        // Java brokers (Apache Kafka) answer a client certificate of a CA they do not trust so.
        || lower.contains("alert certificate unknown")
    {
        Verdict::fail(
            "TLS",
            format!("{broker} refused the client certificate ({detail})"),
            "The broker requires mutual TLS: add a client certificate and key that its CA trusts.",
        )
    } else {
        Verdict::fail(
            "TLS",
            format!("handshake with {broker} failed ({detail})"),
            "Check the TLS settings of the credentials.",
        )
    }
}

/// The verdict for a plaintext connection that ended without an answer, from what the TLS probe saw.
pub(super) fn plaintext_reason(broker: &str, probe: Probe, sasl: bool, text: &str) -> Verdict {
    match probe {
        Probe::Tls => Verdict::fail(
            "connection",
            format!("{broker} is a TLS listener, and `Use TLS` is off ({text})"),
            "Turn on `Use TLS` (and paste the CA certificate if the cluster uses a private CA).",
        ),
        Probe::NotTls if !sasl => Verdict::fail(
            "connection",
            format!(
                "{broker} closed the connection before answering, and it is not a TLS listener ({text})"
            ),
            "The listener probably requires SASL: fill in username, password and mechanism.",
        ),
        Probe::NotTls => Verdict::fail(
            "connection",
            format!("{broker} closed the connection before answering ({text})"),
            "Check that the port is the broker's listener for these settings.",
        ),
        Probe::Silent => Verdict::fail(
            "connection",
            format!("{broker} accepted the connection but never answered ({text})"),
            "Check that the address is a Kafka broker's listener and that no proxy or firewall holds the connection.",
        ),
    }
}

/// A refused authentication: token mechanisms name the token's identity and what the cluster checks.
pub(super) fn auth_reason(reason: &str, auth: Option<&Auth>) -> Verdict {
    match auth {
        Some(a @ (Auth::OAuth(_) | Auth::MskIam(_))) => {
            let lower = reason.to_ascii_lowercase();
            if lower.contains("unsupported sasl mechanism")
                || lower.contains("unsupportedsaslmechanism")
                || lower.contains("sasl state")
            {
                return sasl_reason(reason, Some("OAUTHBEARER"));
            }
            Verdict::fail(
                "SASL",
                format!(
                    "the broker refused the token of {} ({reason})",
                    a.describe()
                ),
                a.fix(),
            )
        }
        other => sasl_reason(reason, other.map(Auth::sasl_mechanism)),
    }
}

pub(super) fn sasl_reason(reason: &str, mechanism: Option<&str>) -> Verdict {
    let mech = mechanism.unwrap_or("no SASL");
    let lower = reason.to_ascii_lowercase();
    if lower.contains("unsupported sasl mechanism") || lower.contains("unsupportedsaslmechanism") {
        let enabled = reason
            .split("supported mechanisms:")
            .nth(1)
            .map(|s| s.trim().trim_end_matches(')').to_owned());
        let what = match &enabled {
            Some(list) => format!("the broker does not accept {mech}; it accepts {list}"),
            None => format!("the broker does not accept {mech} ({reason})"),
        };
        return Verdict::fail(
            "SASL",
            what,
            "Choose one of the mechanisms the broker accepts.",
        );
    }
    // Apache Kafka answers a SASL handshake on a listener without SASL with ILLEGAL_SASL_STATE.
    if lower.contains("not valid in current sasl state") || lower.contains("illegal sasl state") {
        return Verdict::fail(
            "SASL",
            format!("the broker's listener does not use SASL ({reason})"),
            "Clear username and password, or use the broker's SASL port.",
        );
    }
    if mechanism.is_none() {
        return Verdict::fail(
            "SASL",
            format!("the broker requires authentication ({reason})"),
            "Fill in username, password and mechanism.",
        );
    }
    Verdict::fail(
        "SASL",
        format!("authentication with {mech} failed: {reason}"),
        "Check the username and password, and that the user exists for this mechanism.",
    )
}
