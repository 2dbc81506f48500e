//! The TLS stage: a handshake with librdkafka's trust settings, and a probe telling TLS ports from others.

use std::net::SocketAddr;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::X509VerifyResult;
use secrecy::ExposeSecret;

use super::network::host_of;
use super::verdict::Verdict;
use super::{PROBE_TIMEOUT, TCP_TIMEOUT, TLS_TIMEOUT};
use crate::kafka::config::Tls;

/// The TLS stage: a handshake with the first reachable broker, within `left` of the budget.
pub(super) async fn tls_stage(
    reachable: &(String, SocketAddr),
    tls: &Tls,
    left: Duration,
) -> Result<(), Verdict> {
    let (broker, addr) = reachable.clone();
    let tls = tls.clone();
    let handshake = tokio::task::spawn_blocking(move || tls_handshake(&broker, addr, &tls));
    let budget = (TLS_TIMEOUT + Duration::from_secs(1)).min(left);
    match tokio::time::timeout(budget, handshake).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) | Err(_) => Err(Verdict::fail(
            "TLS",
            "the TLS handshake did not finish in time",
            "Check that this port serves TLS.",
        )),
    }
}

fn internal(what: String) -> Verdict {
    Verdict::fail("TLS", what, "Check the certificates in the credentials.")
}

/// A blocking TLS handshake with the same trust settings librdkafka gets, to name certificate problems.
fn tls_handshake(broker: &str, addr: SocketAddr, tls: &Tls) -> Result<(), Verdict> {
    let connector = connector(tls)?;
    let stream = std::net::TcpStream::connect_timeout(&addr, TCP_TIMEOUT).map_err(|e| {
        Verdict::fail(
            "connection",
            format!("cannot connect to {broker} ({e})"),
            "Check the host and port.",
        )
    })?;
    let _ignored = stream.set_read_timeout(Some(TLS_TIMEOUT));
    let _ignored = stream.set_write_timeout(Some(TLS_TIMEOUT));
    let mut config = connector.configure().map_err(|e| internal(e.to_string()))?;
    config.set_verify_hostname(tls.verify_hostname && !tls.insecure_skip_verify);
    let host = host_of(broker);
    match config.connect(host, stream) {
        Ok(mut tls_stream) => {
            // With TLS 1.3 a server that requires a client certificate says so only after the handshake:
            // read briefly to catch that alert.
            let _ignored = tls_stream
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 1];
            match tls_stream.ssl_read(&mut buf) {
                Err(e) if e.ssl_error().is_some() => {
                    Err(tls_reason(broker, X509VerifyResult::OK, &e.to_string()))
                }
                _ => Ok(()),
            }
        }
        Err(openssl::ssl::HandshakeError::WouldBlock(_)) => Err(tls_silent(broker)),
        Err(openssl::ssl::HandshakeError::Failure(mid)) if read_timed_out(mid.error()) => {
            Err(tls_silent(broker))
        }
        Err(openssl::ssl::HandshakeError::Failure(mid)) => {
            let verify = mid.ssl().verify_result();
            let detail = mid.error().to_string();
            Err(tls_reason(broker, verify, &detail))
        }
        Err(openssl::ssl::HandshakeError::SetupFailure(e)) => Err(internal(e.to_string())),
    }
}

/// A connector trusting the credentials' CA (else the system's), with their client certificate.
fn connector(tls: &Tls) -> Result<SslConnector, Verdict> {
    let mut builder =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| internal(e.to_string()))?;
    if let Some(ca) = &tls.ca_pem {
        let certs = openssl::x509::X509::stack_from_pem(ca.as_bytes()).map_err(|_| {
            Verdict::fail(
                "TLS",
                "the CA certificate is not valid PEM",
                "Paste the CA certificate including the BEGIN/END lines.",
            )
        })?;
        let mut store =
            openssl::x509::store::X509StoreBuilder::new().map_err(|e| internal(e.to_string()))?;
        for c in certs {
            store.add_cert(c).map_err(|e| internal(e.to_string()))?;
        }
        builder
            .set_verify_cert_store(store.build())
            .map_err(|e| internal(e.to_string()))?;
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert_pem, &tls.client_key_pem) {
        client_certificate(&mut builder, cert, key.expose_secret())?;
    }
    if tls.insecure_skip_verify {
        builder.set_verify(SslVerifyMode::NONE);
    }
    Ok(builder.build())
}

/// Presents `cert` with its private `key`.
fn client_certificate(
    builder: &mut SslConnectorBuilder,
    cert: &str,
    key: &str,
) -> Result<(), Verdict> {
    let cert = openssl::x509::X509::from_pem(cert.as_bytes()).map_err(|_| {
        Verdict::fail(
            "TLS",
            "the client certificate is not valid PEM",
            "Paste the client certificate including the BEGIN/END lines.",
        )
    })?;
    let key = openssl::pkey::PKey::private_key_from_pem(key.as_bytes()).map_err(|_| {
        Verdict::fail(
            "TLS",
            "the client key is not a valid PEM private key",
            "Paste the unencrypted private key of the client certificate.",
        )
    })?;
    builder
        .set_certificate(&cert)
        .map_err(|e| internal(e.to_string()))?;
    builder.set_private_key(&key).map_err(|_| {
        Verdict::fail(
            "TLS",
            "the client key does not belong to the client certificate",
            "Use the key that matches the certificate.",
        )
    })
}

/// Whether a handshake failed because the socket's read timeout passed (the peer said nothing).
fn read_timed_out(e: &openssl::ssl::Error) -> bool {
    e.io_error().is_some_and(|e| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )
    })
}

/// A port that took the TCP connection and never answered the ClientHello.
fn tls_silent(broker: &str) -> Verdict {
    Verdict::fail(
        "TLS",
        format!(
            "{broker} accepted the connection but did not answer the TLS handshake within {} s",
            TLS_TIMEOUT.as_secs()
        ),
        "Check that the address is the broker's TLS listener and that no proxy or firewall holds the connection.",
    )
}

/// What a port answers to a TLS ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    /// A TLS server: the handshake completed or failed on TLS terms (a certificate, an alert).
    Tls,
    /// Not TLS: the port closed the connection or answered something else.
    NotTls,
    /// No answer within the probe's time.
    Silent,
}

/// Starts a TLS handshake (trusting anything: only whether the port speaks TLS matters).
pub(super) fn tls_probe(addr: SocketAddr) -> Probe {
    let Ok(stream) = std::net::TcpStream::connect_timeout(&addr, TCP_TIMEOUT) else {
        return Probe::NotTls;
    };
    let _ignored = stream.set_read_timeout(Some(PROBE_TIMEOUT));
    let _ignored = stream.set_write_timeout(Some(PROBE_TIMEOUT));
    let Ok(mut builder) = SslConnector::builder(SslMethod::tls_client()) else {
        return Probe::NotTls;
    };
    builder.set_verify(SslVerifyMode::NONE);
    let connector = builder.build();
    let Ok(mut config) = connector.configure() else {
        return Probe::NotTls;
    };
    config.set_verify_hostname(false);
    match config.connect("probe", stream) {
        Ok(_) => Probe::Tls,
        Err(openssl::ssl::HandshakeError::WouldBlock(_)) => Probe::Silent,
        Err(openssl::ssl::HandshakeError::Failure(mid)) => {
            let io_timeout = read_timed_out(mid.error());
            let detail = mid.error().to_string().to_ascii_lowercase();
            if io_timeout {
                Probe::Silent
            } else if detail.contains("alert") || detail.contains("certificate") {
                Probe::Tls
            } else {
                Probe::NotTls
            }
        }
        Err(openssl::ssl::HandshakeError::SetupFailure(_)) => Probe::NotTls,
    }
}

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
