//! HTTPS endpoints (rustls, system roots). The platform API: a certificate the worker does not trust stops it at
//! once with an error naming the API's host; one signed by a CA in the system roots (`SSL_CERT_FILE`) works. The
//! token URL: trusted when signed by the credentials' `CA certificate`. The HTTPS server is a TLS front
//! (tokio-rustls) for a wiremock server. Uses the diag component, so no Kafka.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

/// A certificate for `cn`, signed by `issuer` (self-signed when `None`).
fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, ca: bool) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |(c, _)| c.subject_name()))
        .unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    } else {
        let san = SubjectAlternativeName::new()
            .ip("127.0.0.1")
            .dns("localhost")
            .build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    b.sign(issuer.map_or(key, |(_, k)| k), MessageDigest::sha256())
        .unwrap();
    b.build()
}

/// A CA (its PEM) and a server certificate for 127.0.0.1 it signed, with the server's key.
struct Pki {
    ca_pem: Vec<u8>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let (ca_key, leaf_key) = (key(), key());
    let ca = cert("kc-test-ca", &ca_key, None, true);
    let leaf = cert("127.0.0.1", &leaf_key, Some((&ca, &ca_key)), false);
    Pki {
        ca_pem: ca.to_pem().unwrap(),
        chain: vec![CertificateDer::from(leaf.to_der().unwrap())],
        key: PrivatePkcs8KeyDer::from(leaf_key.private_key_to_pkcs8().unwrap()).into(),
    }
}

/// An HTTPS front for `backend` (plain HTTP) with `pki`'s server certificate; returns its address.
async fn tls_front(pki: &Pki, backend: SocketAddr) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.chain.clone(), pki.key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake: nothing to forward then.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    addr
}

/// The diag step's platform API (plain HTTP).
async fn api() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tasks/flow1/steps/step_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "step_1", "comp_id": "comp1", "function": "diag", "config": {"_account": "acc1"},
            "snapshot": {}, "is_passthrough": false, "variables": {}
        })))
        .mount(&server)
        .await;
    server
}

fn env(rb: &Rabbit, api: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let dir = format!("{}/tests/fixtures/diag", env!("CARGO_MANIFEST_DIR"));
    let env = step_env(rb, api, "diag", &[("ELASTICIO_COMPONENT_PATH", &dir)]);
    with_env(env, extra)
}

#[tokio::test]
async fn untrusted_platform_api_certificate_stops_the_worker_with_a_clear_error() {
    let rb = Rabbit::setup("tls-untrusted").await;
    let (pki, api) = (pki(), api().await);
    let front = tls_front(&pki, *api.address()).await;
    // No `SSL_CERT_FILE`: the test CA is in no root store, whichever the system has.
    let mut w = Worker::spawn(&env(&rb, &format!("https://{front}"), &[]));
    let code = w.exit_code(Duration::from_secs(30)).await;
    let logs = w.logs();
    assert_ne!(code, 0, "{}", diagnostic_logs(&logs));
    let expected = format!("TLS certificate of the platform API at {front} is not trusted");
    assert!(logs.contains(&expected), "{}", diagnostic_logs(&logs));
    // Rejected at the first attempt: a certificate is not a transient failure.
    assert!(
        !logs.contains("Platform API call failed, retrying."),
        "{}",
        diagnostic_logs(&logs)
    );
    assert!(!logs.contains("apikey-secret-value"), "the API key leaked");
    assert!(
        api.received_requests().await.unwrap_or_default().is_empty(),
        "no request may pass an untrusted certificate"
    );
    rb.teardown().await;
}

#[tokio::test]
async fn platform_api_certificate_signed_by_a_system_root_is_trusted() {
    let rb = Rabbit::setup("tls-trusted").await;
    let (pki, api) = (pki(), api().await);
    let front = tls_front(&pki, *api.address()).await;
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("roots.pem");
    std::fs::write(&roots, &pki.ca_pem).unwrap();
    // `SSL_CERT_FILE` replaces the system's bundle for the platform verifier (rustls-native-certs).
    let roots = roots.to_str().unwrap();
    let w = spawn_ready(&env(
        &rb,
        &format!("https://{front}"),
        &[("SSL_CERT_FILE", roots)],
    ))
    .await;
    assert_eq!(api.received_requests().await.unwrap().len(), 1);
    finish(rb, w).await;
}

/// The same TLS for the token URL of OAUTHBEARER credentials, whose `CA certificate` is trusted besides the system's
/// roots (a private identity provider is often signed by the brokers' CA).
#[tokio::test]
async fn token_url_signed_by_the_credentials_ca_is_trusted() {
    use kafka_component::kafka::config::KafkaConnection;
    use kafka_component::kafka::token::TokenSource;
    let (pki, idp) = (pki(), MockServer::start().await);
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "opaque-token", "token_type": "Bearer", "expires_in": 300}),
        ))
        .mount(&idp)
        .await;
    let front = tls_front(&pki, *idp.address()).await;
    let ca = String::from_utf8(pki.ca_pem.clone()).unwrap();
    let source = |ca: Option<&str>| {
        let mut cfg = json!({"brokers": "127.0.0.1:1", "mechanism": "oauthbearer",
            "tokenUrl": format!("https://{front}/token"), "oauthClientId": "id", "oauthClientSecret": "secret"});
        if let Some(ca) = ca {
            cfg["caCert"] = json!(ca);
        }
        let conn = KafkaConnection::from_cfg(&cfg).unwrap();
        TokenSource::for_connection(&conn).unwrap().unwrap()
    };
    source(Some(&ca)).refresh().await.unwrap();
    assert_eq!(idp.received_requests().await.unwrap().len(), 1);
    let err = source(None).refresh().await.unwrap_err().to_string();
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert_eq!(idp.received_requests().await.unwrap().len(), 1);
}
