//! verifyCredentials: a staged diagnosis that names the first thing that is wrong and what to do.
//!
//! Stages, each bounded: parse → DNS → TCP → TLS handshake (when TLS is on) → token (OAUTHBEARER, AWS MSK IAM;
//! fetched from t0 on, beside the network stages) → SASL + cluster metadata.
//! The verdict is `{"verified":true}` or `{"verified":false,"reason":"<stage>: <what failed>. <what to do>"}`.
//! Owns the stages and the wording; does not own how the verdict is delivered (see `service`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509VerifyResult;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, Producer};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::kafka::client::{ClientState, KafkaContext};
use crate::kafka::config::{Auth, KafkaConnection, Tls};
use crate::kafka::token::{FETCH_TIMEOUT, TokenSource};

const DNS_TIMEOUT: Duration = Duration::from_secs(3);
const TCP_TIMEOUT: Duration = Duration::from_secs(3);
const TLS_TIMEOUT: Duration = Duration::from_secs(4);
/// Budget for SASL + metadata.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(6);
/// The whole check, every stage together: the platform's form waits for the verdict.
const TOTAL_BUDGET: Duration = Duration::from_secs(14);
/// The token stage: an OAuth request may be sent twice (Basic, then the secret in the form).
const TOKEN_TIMEOUT: Duration = Duration::from_secs(FETCH_TIMEOUT.as_secs() + 3);
/// A TLS probe of a port that dropped a plaintext connection (is it a TLS port?).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of a credentials check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the credentials work.
    pub verified: bool,
    /// `<stage>: <what failed>. <what to do>` when not verified.
    pub reason: Option<String>,
}

impl Verdict {
    fn ok() -> Self {
        Self {
            verified: true,
            reason: None,
        }
    }

    fn fail(stage: &str, what: impl AsRef<str>, todo: &str) -> Self {
        Self {
            verified: false,
            reason: Some(format!(
                "{stage}: {}. {todo}",
                what.as_ref().trim_end_matches('.')
            )),
        }
    }

    /// The platform's JSON shape.
    pub fn to_json(&self) -> Value {
        match &self.reason {
            None => json!({ "verified": self.verified }),
            Some(r) => json!({ "verified": self.verified, "reason": r }),
        }
    }
}

/// Runs every stage against `cfg` (credentials fields).
pub async fn verify_credentials(cfg: &Value) -> Verdict {
    let started = Instant::now();
    let verdict = run_stages(cfg).await;
    tracing::info!(
        verified = verdict.verified,
        reason = verdict.reason.as_deref().unwrap_or(""),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Credentials checked."
    );
    verdict
}

async fn run_stages(cfg: &Value) -> Verdict {
    let deadline = Instant::now() + TOTAL_BUDGET;
    let conn = match KafkaConnection::from_cfg(cfg) {
        Ok(c) => c,
        Err(e) => {
            return Verdict::fail(
                "configuration",
                e.to_string(),
                "Correct the credentials form.",
            );
        }
    };
    // The token is fetched beside the network stages and judged after them.
    let token_source = match TokenSource::for_connection(&conn) {
        Ok(t) => t,
        Err(e) => return token_verdict(&e.to_string()),
    };
    let token_check = token_source
        .clone()
        .map(|source| AbortOnDrop(tokio::spawn(async move { source.check().await })));
    // DNS
    let lookups = futures_util::future::join_all(conn.brokers.iter().map(|b| async move {
        let r = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host(b.clone())).await;
        (b.clone(), r)
    }))
    .await;
    let mut resolved: Vec<(String, Vec<SocketAddr>)> = Vec::new();
    let mut dns_errors = Vec::new();
    for (broker, r) in lookups {
        match r {
            Ok(Ok(addrs)) => resolved.push((broker, addrs.collect())),
            Ok(Err(e)) => dns_errors.push(format!("`{}` ({e})", host_of(&broker))),
            Err(_) => dns_errors.push(format!(
                "`{}` (no answer within {} s)",
                host_of(&broker),
                DNS_TIMEOUT.as_secs()
            )),
        }
    }
    if resolved.is_empty() {
        return Verdict::fail(
            "DNS",
            format!("cannot resolve {}", dns_errors.join(", ")),
            "Check the broker host names and that this network can resolve them.",
        );
    }
    // TCP: every address of every broker at once, so the time does not grow with their number.
    let attempts = futures_util::future::join_all(resolved.iter().flat_map(|(broker, addrs)| {
        addrs.iter().map(move |addr| async move {
            let r = match tokio::time::timeout(TCP_TIMEOUT, tokio::net::TcpStream::connect(addr))
                .await
            {
                Ok(Ok(_)) => Ok(*addr),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} s", TCP_TIMEOUT.as_secs())),
            };
            (broker.as_str(), r)
        })
    }))
    .await;
    let mut reachable: Vec<(String, SocketAddr)> = Vec::new();
    let mut errs: Vec<String> = Vec::new();
    for (broker, addrs) in &resolved {
        let mine = attempts.iter().filter(|(b, _)| b == broker);
        if let Some(addr) = mine.clone().find_map(|(_, r)| r.as_ref().ok()) {
            reachable.push((broker.clone(), *addr));
        } else {
            let last = mine
                .filter_map(|(_, r)| r.as_ref().err())
                .next_back()
                .cloned()
                .unwrap_or_else(|| format!("no address ({} resolved)", addrs.len()));
            errs.push(format!("{broker} ({last})"));
        }
    }
    if reachable.is_empty() {
        return Verdict::fail(
            "connection",
            format!("cannot connect to {}", errs.join(", ")),
            "Check the host and port, that the brokers are running, and that a firewall allows the connection.",
        );
    }
    // TLS
    if let Some(tls) = &conn.tls {
        let (broker, addr) = reachable[0].clone();
        let tls = tls.clone();
        let handshake = tokio::task::spawn_blocking(move || tls_handshake(&broker, addr, &tls));
        let budget = (TLS_TIMEOUT + Duration::from_secs(1)).min(left(deadline));
        match tokio::time::timeout(budget, handshake).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(verdict))) => return verdict,
            Ok(Err(_)) | Err(_) => {
                return Verdict::fail(
                    "TLS",
                    "the TLS handshake did not finish in time",
                    "Check that this port serves TLS.",
                );
            }
        }
    }
    // Token
    if let Some(mut check) = token_check {
        let budget = TOKEN_TIMEOUT.min(left(deadline).saturating_sub(Duration::from_secs(3)));
        match tokio::time::timeout(budget, &mut check.0).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return token_verdict(&e.to_string()),
            Ok(Err(e)) => {
                return token_verdict(&format!("the token check failed ({e}). Try again"));
            }
            Err(_) => {
                return token_verdict(&format!(
                    "no token within {} s. Check `Token URL` (or the AWS credential sources) and any proxy between this step and them",
                    budget.as_secs()
                ));
            }
        }
    }
    // SASL + metadata through librdkafka, in what is left of the budget (a probe may follow it).
    let budget = KAFKA_TIMEOUT.min(left(deadline).saturating_sub(PROBE_TIMEOUT));
    kafka_stage(
        &conn,
        token_source,
        &reachable,
        budget.max(Duration::from_secs(1)),
    )
    .await
}

/// The token stage's verdict; `text` is "<what>. <what to do>".
fn token_verdict(text: &str) -> Verdict {
    Verdict {
        verified: false,
        reason: Some(format!("token: {text}")),
    }
}

/// A spawned check that stops when the verdict no longer needs it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Time until `deadline`.
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

fn host_of(broker: &str) -> &str {
    broker.rsplit_once(':').map_or(broker, |(h, _)| h)
}

/// A blocking TLS handshake with the same trust settings librdkafka gets, to name certificate problems.
fn tls_handshake(broker: &str, addr: SocketAddr, tls: &Tls) -> Result<(), Verdict> {
    let internal =
        |what: String| Verdict::fail("TLS", what, "Check the certificates in the credentials.");
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
        let cert = openssl::x509::X509::from_pem(cert.as_bytes()).map_err(|_| {
            Verdict::fail(
                "TLS",
                "the client certificate is not valid PEM",
                "Paste the client certificate including the BEGIN/END lines.",
            )
        })?;
        let key = openssl::pkey::PKey::private_key_from_pem(key.expose_secret().as_bytes())
            .map_err(|_| {
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
        })?;
    }
    if tls.insecure_skip_verify {
        builder.set_verify(SslVerifyMode::NONE);
    }
    let connector = builder.build();
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

fn tls_reason(broker: &str, verify: X509VerifyResult, detail: &str) -> Verdict {
    let code = verify.as_raw();
    // X509_V_ERR_* codes from OpenSSL's x509_vfy.h.
    match code {
        0 => {
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

/// SASL and metadata: connect with librdkafka and list the cluster's topics, within `budget`.
async fn kafka_stage(
    conn: &KafkaConnection,
    token: Option<Arc<TokenSource>>,
    reachable: &[(String, SocketAddr)],
    budget: Duration,
) -> Verdict {
    let context = KafkaContext::with_token(token);
    let state: Arc<ClientState> = Arc::clone(&context.state);
    let mut cc = conn.to_client_config();
    cc.set("socket.connection.setup.timeout.ms", "5000");
    // A producer client: its background thread serves librdkafka's error events (authentication failures)
    // while the metadata request waits.
    let client: FutureProducer<KafkaContext> = match cc.create_with_context(context) {
        Ok(c) => c,
        Err(e) => {
            return Verdict::fail(
                "configuration",
                format!("the Kafka client rejected the settings ({e})"),
                "Correct the credentials form.",
            );
        }
    };
    // The answer is sent before the client is dropped: closing a client whose brokers never answered waits for
    // their connection attempts, and the verdict must not.
    let (tx, metadata) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let r = client
            .client()
            .fetch_metadata(None, budget)
            .map(|md| (md.topics().len(), md.brokers().len()));
        let _ignored = tx.send(r);
        drop(client);
    });
    let auth = conn.auth.as_ref();
    // An authentication failure is final: answer at once instead of waiting for the metadata timeout.
    let result = tokio::select! {
        r = metadata => r,
        reason = state.auth_failed() => return auth_reason(&reason, auth),
    };
    if let Some(reason) = state.auth_error() {
        return auth_reason(&reason, auth);
    }
    match result {
        Ok(Ok((topics, brokers))) => {
            tracing::info!(topics, brokers, "Cluster metadata read.");
            Verdict::ok()
        }
        Ok(Err(e)) => {
            let last = state.last_error().unwrap_or_default();
            let text = if last.is_empty() { e.to_string() } else { last };
            let lower = text.to_ascii_lowercase();
            if conn.tls.is_some()
                && (lower.contains("certificate required") || lower.contains("alert"))
            {
                return tls_reason(&conn.brokers[0], X509VerifyResult::OK, &text);
            }
            // A plaintext connection that ends without an answer: a TLS port closes it, a SASL port refuses the
            // requests of a client that did not authenticate, an address that is not Kafka may hold it open.
            // librdkafka reports each as a disconnect or a transport failure; a TLS probe tells them apart.
            if conn.tls.is_none()
                && (lower.contains("disconnected")
                    || lower.contains("connection reset")
                    || lower.contains("transport failure"))
                && let Some((broker, addr)) = reachable.first().cloned()
            {
                let probe = tokio::task::spawn_blocking(move || tls_probe(addr));
                let probe = tokio::time::timeout(PROBE_TIMEOUT + Duration::from_secs(1), probe)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or(Probe::Silent);
                return plaintext_reason(&broker, probe, conn.auth.is_some(), &text);
            }
            if matches!(
                e.rdkafka_error_code(),
                Some(
                    RDKafkaErrorCode::ClusterAuthorizationFailed
                        | RDKafkaErrorCode::TopicAuthorizationFailed
                )
            ) {
                return Verdict::fail(
                    "metadata",
                    format!("not authorized to describe the cluster ({text})"),
                    "Grant the user DESCRIBE on the cluster/topics.",
                );
            }
            Verdict::fail(
                "metadata",
                format!(
                    "no cluster metadata within {:.0} s ({text})",
                    budget.as_secs_f64()
                ),
                "Check that the address is a Kafka broker and that it is healthy.",
            )
        }
        Err(e) => Verdict::fail("metadata", format!("the check failed ({e})"), "Try again."),
    }
}

/// What a port answers to a TLS ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// A TLS server: the handshake completed or failed on TLS terms (a certificate, an alert).
    Tls,
    /// Not TLS: the port closed the connection or answered something else.
    NotTls,
    /// No answer within the probe's time.
    Silent,
}

/// Starts a TLS handshake (trusting anything: only whether the port speaks TLS matters).
fn tls_probe(addr: SocketAddr) -> Probe {
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

/// The verdict for a plaintext connection that ended without an answer, from what the TLS probe saw.
fn plaintext_reason(broker: &str, probe: Probe, sasl: bool, text: &str) -> Verdict {
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
fn auth_reason(reason: &str, auth: Option<&Auth>) -> Verdict {
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

fn sasl_reason(reason: &str, mechanism: Option<&str>) -> Verdict {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
