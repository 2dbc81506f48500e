//! The wording of failures: TLS, plaintext connections, SASL; each names the problem and what to do.

use super::tls::Probe;
use super::verdict::Verdict;
use crate::kafka::config::Auth;

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
