//! verifyCredentials and service mode (issue: credentials): the binary in service mode against the listeners of the
//! shared Apache Kafka broker (`scripts/kafka.sh start`: SASL_PLAINTEXT with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN,
//! SSL, mTLS and SASL_SSL, signed by the test CA in `KC_KAFKA_CA`), and a fake result endpoint.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

/// Runs `kafka-component service <method>` and returns (exit code, posted body, auth header, logs).
pub async fn service(
    method_name: &str,
    cfg: Option<Value>,
    extra: &[(&str, String)],
) -> (i32, Option<Value>, Option<String>, String) {
    let (code, body, auth, logs, _) = service_timed(method_name, cfg, extra).await;
    (code, body, auth, logs)
}

/// Like [`service`], also returning how long the process lived on after it had delivered its result.
pub async fn service_timed(
    method_name: &str,
    cfg: Option<Value>,
    extra: &[(&str, String)],
) -> (i32, Option<Value>, Option<String>, String, Option<Duration>) {
    let server = result_server().await;
    let addr = server.address();
    let mut env = service_env(
        &format!("http://svc%40user:p%3Ass@{addr}/result"),
        &server.uri(),
        "k",
        &[],
    );
    if let Some(cfg) = cfg {
        env.push(("ELASTICIO_CFG".to_owned(), cfg.to_string()));
    }
    for (k, v) in extra {
        env.push(((*k).to_owned(), v.clone()));
    }
    let mut w = Worker::spawn_args(&["service", method_name], &env);
    // The result is delivered once the result endpoint has the POST; the process exit is awaited alongside.
    let mut delivered = None;
    {
        let posted = poll_until(Duration::from_secs(40), || async {
            (!server.received_requests().await.unwrap().is_empty()).then(Instant::now)
        });
        tokio::pin!(posted);
        let exit = tokio::time::timeout(Duration::from_secs(40), w.child.wait());
        tokio::pin!(exit);
        let mut watching = true;
        loop {
            tokio::select! {
                _ = &mut exit => break,
                at = &mut posted, if watching => {
                    watching = false;
                    delivered = at;
                }
            }
        }
    }
    let exited = Instant::now();
    let code = w.exit_code(Duration::from_secs(1)).await;
    let reqs = server.received_requests().await.unwrap();
    // Delivered and gone before the poll saw the POST: it exited at once.
    let lingered = match delivered {
        Some(t) => Some(exited - t),
        None => (!reqs.is_empty()).then_some(Duration::ZERO),
    };
    let body = reqs
        .first()
        .map(|r| serde_json::from_slice(&r.body).unwrap());
    let auth = reqs.first().and_then(|r| {
        r.headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
    });
    (code, body, auth, w.logs(), lingered)
}

async fn verify(cfg: Value) -> (Value, Duration) {
    let started = Instant::now();
    let (code, body, _, logs, lingered) =
        service_timed("verifyCredentials", Some(cfg.clone()), &[]).await;
    assert_eq!(code, 0, "logs:\n{logs}");
    // Once the platform has the verdict the process ends: it does not wait for a Kafka client still busy with
    // a check that the verdict made moot (that wait was 2 s after every refused password).
    let lingered = lingered.expect("result delivered");
    assert!(
        lingered < Duration::from_millis(1000),
        "exited {lingered:?} after delivering the verdict"
    );
    let body = body.expect("result posted");
    assert_eq!(body["status"], "success", "{body}");
    if let Some(pw) = cfg.get("password").and_then(Value::as_str) {
        assert!(!logs.contains(pw), "password in logs");
        assert!(!body.to_string().contains(pw), "password in result");
    }
    (body["data"].clone(), started.elapsed())
}

fn reason(data: &Value) -> String {
    assert_eq!(data["verified"], false, "{data}");
    data["reason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn service_mode_posts_with_basic_auth_from_userinfo() {
    let (code, body, auth, _) = service(
        "verifyCredentials",
        Some(json!({"brokers": "bad host"})),
        &[],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        auth.as_deref(),
        Some("Basic c3ZjQHVzZXI6cDpzcw=="),
        "svc@user:p:ss, percent-decoded"
    );
    let body = body.unwrap();
    assert_eq!(body["status"], "success");
    assert!(
        reason(&body["data"]).starts_with("configuration: invalid configuration field `brokers`")
    );

    let (code, body, _, _) = service(
        "verifyCredentials",
        None,
        &[("ELASTICIO_CFG", "{not json".into())],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        body.unwrap(),
        json!({"status": "error", "data": {"message": "Unable to parse CFG"}})
    );

    let (code, body, _, _) = service(
        "getMetaModel",
        Some(json!({})),
        &[("ELASTICIO_ACTION_OR_TRIGGER", "produce".into())],
    )
    .await;
    assert_eq!(code, 0);
    let body = body.unwrap();
    assert_eq!(body["data"]["in"]["required"], json!(["messages"]));
    assert_eq!(
        body["data"]["out"]["properties"]["topicName"]["type"],
        "string"
    );

    let (code, body, _, _) = service(
        "getMetaModel",
        Some(json!({})),
        &[("ELASTICIO_ACTION_OR_TRIGGER", "nope".into())],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(body.unwrap()["status"], "error");
}

#[tokio::test]
async fn service_mode_without_result_url_exits_non_zero_and_posts_nothing() {
    let mut w = Worker::spawn_args(
        &["service", "verifyCredentials"],
        &[("ELASTICIO_CFG".into(), "{}".into())],
    );
    assert_eq!(w.exit_code(Duration::from_secs(10)).await, 1);
}

#[tokio::test]
async fn service_mode_exit_code_follows_the_result_post() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let env = vec![
        (
            "ELASTICIO_POST_RESULT_URL".to_owned(),
            format!("{}/result", server.uri()),
        ),
        ("ELASTICIO_API_URI".to_owned(), server.uri()),
        ("ELASTICIO_API_USERNAME".to_owned(), "u".to_owned()),
        ("ELASTICIO_API_KEY".to_owned(), "k".to_owned()),
        ("ELASTICIO_CFG".to_owned(), "{}".to_owned()),
    ];
    let mut w = Worker::spawn_args(&["service", "verifyCredentials"], &env);
    assert_eq!(w.exit_code(Duration::from_secs(20)).await, 1);
}

#[tokio::test]
async fn nothing_listening_names_the_connection_and_bad_host_names_dns() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (data, took) = verify(json!({"brokers": format!("127.0.0.1:{port}")})).await;
    let r = reason(&data);
    assert!(
        r.starts_with(&format!("connection: cannot connect to 127.0.0.1:{port}")),
        "{r}"
    );
    assert!(took < Duration::from_secs(15));
    let (data, took) = verify(json!({"brokers": "no-such-broker.invalid:9092"})).await;
    let r = reason(&data);
    assert!(
        r.starts_with("DNS: cannot resolve `no-such-broker.invalid`"),
        "{r}"
    );
    assert!(took < Duration::from_secs(15));
}

// ---------------------------------------------------------------------------------------------------------
// SASL on the shared broker: SASL_PLAINTEXT (`KC_KAFKA_SCRAM_BROKERS`) and SASL_SSL (`KC_KAFKA_SASL_SSL_BROKERS`).

/// The PEM text of the test CA that signed every listener's certificate.
fn kafka_ca() -> String {
    std::fs::read_to_string(kafka_var("KC_KAFKA_CA")).expect("KC_KAFKA_CA is readable")
}

/// Every mechanism verifies with its password and names authentication with a wrong one, on `base` (brokers and
/// TLS fields).
async fn each_mechanism_verifies_and_refuses_a_wrong_password(base: &Value) {
    for (user, pass, mech, named) in SASL_USERS {
        let (data, took) = verify(with_login(base.clone(), user, pass, mech)).await;
        assert_eq!(data, json!({"verified": true}), "{user} on {base}");
        assert!(took < Duration::from_secs(15), "{user}: {took:?}");

        let wrong = format!("{pass}-wrong");
        let (data, took) = verify(with_login(base.clone(), user, &wrong, mech)).await;
        let r = reason(&data);
        assert!(
            r.starts_with(&format!("SASL: authentication with {named} failed")),
            "{user} on {base}: {r}"
        );
        assert!(
            r.ends_with(
                "Check the username and password, and that the user exists for this mechanism."
            ),
            "{r}"
        );
        assert!(
            took < Duration::from_secs(15),
            "{user} wrong password: {took:?}"
        );
    }
}

#[tokio::test]
async fn sasl_plaintext_each_mechanism_verifies_and_a_wrong_password_names_authentication() {
    let brokers = kafka_var("KC_KAFKA_SCRAM_BROKERS");
    each_mechanism_verifies_and_refuses_a_wrong_password(&json!({"brokers": brokers})).await;
    // The mechanism defaults to SCRAM-SHA-512.
    let (data, _) =
        verify(json!({"brokers": brokers, "username": "scram512", "password": "scram512-pass"}))
            .await;
    assert_eq!(data, json!({"verified": true}));
    let (data, took) =
        verify(json!({"brokers": brokers, "username": "nobody", "password": "whatever-pw"})).await;
    assert!(
        reason(&data).starts_with("SASL: authentication with SCRAM-SHA-512 failed"),
        "{data}"
    );
    assert!(took < Duration::from_secs(15));
    // A SCRAM-SHA-256 user tried with SCRAM-SHA-512: the mechanism is named.
    let (data, _) =
        verify(json!({"brokers": brokers, "username": "scram256", "password": "scram256-pass"}))
            .await;
    let r = reason(&data);
    assert!(r.starts_with("SASL:") && r.contains("SCRAM-SHA-512"), "{r}");
    // The PLAIN user does not exist for SCRAM.
    let (data, _) = verify(json!({"brokers": brokers, "username": "plain", "password": "plain-pass", "mechanism": "scram-sha-256"})).await;
    assert!(
        reason(&data).starts_with("SASL: authentication with SCRAM-SHA-256 failed"),
        "{data}"
    );
    // SASL credentials against the PLAINTEXT listener: named as such, not as a wrong password.
    let (data, took) =
        verify(json!({"brokers": kafka(), "username": "scram512", "password": "scram512-pass"}))
            .await;
    let r = reason(&data);
    assert!(
        r.starts_with("SASL: the broker's listener does not use SASL"),
        "{r}"
    );
    assert!(took < Duration::from_secs(15));
}

#[tokio::test]
async fn sasl_ssl_each_mechanism_verifies_and_a_wrong_password_names_authentication() {
    let brokers = kafka_var("KC_KAFKA_SASL_SSL_BROKERS");
    let base = json!({"brokers": brokers, "tls": true, "caCert": kafka_ca()});
    each_mechanism_verifies_and_refuses_a_wrong_password(&base).await;
    // TLS is checked before SASL: the wrong CA is named even with the right password.
    let (data, _) = verify(json!({"brokers": brokers, "tls": true, "caCert": other_ca().pem, "username": "scram512", "password": "scram512-pass"})).await;
    let r = reason(&data);
    assert!(r.starts_with("TLS:") && r.contains("unknown CA"), "{r}");
    // Without TLS the SASL_SSL port closes the connection: TLS is suggested.
    let (data, took) =
        verify(json!({"brokers": brokers, "username": "scram512", "password": "scram512-pass"}))
            .await;
    let r = reason(&data);
    assert!(
        r.starts_with(&format!(
            "connection: {brokers} is a TLS listener, and `Use TLS` is off"
        )) && r.ends_with(
            "Turn on `Use TLS` (and paste the CA certificate if the cluster uses a private CA)."
        ),
        "{r}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[tokio::test]
async fn a_mechanism_the_listener_does_not_offer_is_named_with_the_ones_it_does() {
    // A broker of this test's own whose SASL_PLAINTEXT listener offers only SCRAM.
    let broker = tokio::task::spawn_blocking(|| {
        KafkaBroker::start(&[
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256",
        ])
    })
    .await
    .unwrap();
    let brokers = broker.var("KC_KAFKA_SCRAM_BROKERS");
    let (data, took) = verify(json!({"brokers": brokers, "username": "plain", "password": "plain-pass", "mechanism": "plain"})).await;
    let r = reason(&data);
    assert!(
        r.starts_with("SASL: the broker does not accept PLAIN; it accepts ")
            && r.contains("SCRAM-SHA-512")
            && r.contains("SCRAM-SHA-256"),
        "{r}"
    );
    assert!(took < Duration::from_secs(15));
    let (data, _) = verify(json!({"brokers": brokers, "username": "scram256", "password": "scram256-pass", "mechanism": "scram-sha-256"})).await;
    assert_eq!(data, json!({"verified": true}));
    tokio::task::spawn_blocking(move || drop(broker))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------------------
// TLS on the shared broker's SSL listener (`KC_KAFKA_SSL_BROKERS`, certificate for DNS:localhost only) and its mTLS
// listener (`KC_KAFKA_MTLS_BROKERS`, client certificate required).

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA the broker does not know, with a client certificate it signed.
struct OtherCa {
    pem: String,
    client_cert: String,
    client_key: String,
}

fn other_ca() -> OtherCa {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=kc test other ca",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=client",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.pem",
            "-days",
            "2",
        ],
    );
    let read = |f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    OtherCa {
        pem: read("ca.pem"),
        client_cert: read("client.pem"),
        client_key: read("client.key"),
    }
}

#[tokio::test]
async fn tls_right_ca_verifies_unknown_ca_and_hostname_mismatch_are_named() {
    let ssl = kafka_var("KC_KAFKA_SSL_BROKERS");
    assert!(ssl.starts_with("localhost:"), "{ssl}");
    let port = ssl.rsplit_once(':').unwrap().1.to_owned();
    let ca = kafka_ca();
    let (data, _) = verify(json!({"brokers": ssl, "tls": true, "caCert": ca})).await;
    assert_eq!(data, json!({"verified": true}));
    let (data, _) = verify(json!({"brokers": ssl, "tls": true, "caCert": other_ca().pem})).await;
    let r = reason(&data);
    assert!(
        r.starts_with("TLS: the certificate of localhost") && r.contains("unknown CA"),
        "{r}"
    );
    // Without a CA the system trust store does not know the test CA either.
    let (data, _) = verify(json!({"brokers": ssl, "tls": true})).await;
    let r = reason(&data);
    assert!(r.starts_with("TLS:") && r.contains("unknown CA"), "{r}");
    let (data, _) =
        verify(json!({"brokers": format!("127.0.0.1:{port}"), "tls": true, "caCert": ca})).await;
    let r = reason(&data);
    assert!(
        r.contains("hostname mismatch") && r.contains("127.0.0.1"),
        "{r}"
    );
    // The loudly named escape hatch.
    let (data, _) = verify(
        json!({"brokers": format!("127.0.0.1:{port}"), "tls": true, "tlsInsecureSkipVerify": true}),
    )
    .await;
    assert_eq!(data, json!({"verified": true}));
    // TLS on the PLAINTEXT listener: the port does not speak TLS.
    let (data, took) = verify(json!({"brokers": kafka(), "tls": true, "caCert": ca})).await;
    let r = reason(&data);
    assert!(
        r.starts_with("TLS:")
            && r.contains("did not answer the TLS handshake")
            && r.ends_with(
                "The port does not use TLS: turn off `Use TLS`, or use the broker's TLS port."
            ),
        "{r}"
    );
    assert!(took < Duration::from_secs(15));
    // TLS off on the TLS listener: the setting to turn on is named (not SASL).
    let (data, _) = verify(json!({"brokers": ssl})).await;
    let r = reason(&data);
    assert!(
        r.starts_with(&format!(
            "connection: {ssl} is a TLS listener, and `Use TLS` is off"
        )),
        "{r}"
    );
    // No credentials on the SASL_PLAINTEXT listener: not a TLS listener, so SASL is named.
    let scram = kafka_var("KC_KAFKA_SCRAM_BROKERS");
    let (data, _) = verify(json!({"brokers": scram})).await;
    let r = reason(&data);
    assert!(
        r.starts_with("connection: ")
            && r.contains("not a TLS listener")
            && r.contains("requires SASL"),
        "{r}"
    );
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let mtls = kafka_var("KC_KAFKA_MTLS_BROKERS");
    let base = json!({"brokers": mtls, "tls": true, "caCert": kafka_ca()});
    let (data, _) = verify(base.clone()).await;
    let r = reason(&data);
    assert!(
        r.starts_with("TLS:") && r.contains("client certificate"),
        "{r}"
    );
    // A client certificate of a CA the broker does not trust is refused too.
    let other = other_ca();
    let mut foreign = base.clone();
    foreign["clientCert"] = json!(other.client_cert);
    foreign["clientKey"] = json!(other.client_key);
    let (data, _) = verify(foreign).await;
    let r = reason(&data);
    assert!(
        r.starts_with("TLS:") && r.contains("client certificate"),
        "{r}"
    );
    let read = |var: &str| std::fs::read_to_string(kafka_var(var)).unwrap();
    let mut with_cert = base;
    with_cert["clientCert"] = json!(read("KC_KAFKA_CLIENT_CERT"));
    with_cert["clientKey"] = json!(read("KC_KAFKA_CLIENT_KEY"));
    let (data, _) = verify(with_cert).await;
    assert_eq!(data, json!({"verified": true}));
}

#[tokio::test]
async fn select_model_lists_the_topics() {
    let topic = tokio::task::spawn_blocking(|| Topic::new("listed", 1))
        .await
        .unwrap();
    let cfg = json!({"brokers": kafka_var("KC_KAFKA_SCRAM_BROKERS"), "username": "scram512", "password": "scram512-pass"});
    let (code, body, _, _) = service(
        "selectModel",
        Some(cfg),
        &[
            ("ELASTICIO_ACTION_OR_TRIGGER", "produce".into()),
            ("ELASTICIO_GET_MODEL_METHOD", "getTopics".into()),
        ],
    )
    .await;
    assert_eq!(code, 0);
    let body = body.unwrap();
    assert_eq!(body["status"], "success", "{body}");
    assert_eq!(body["data"][&topic.name], topic.name.as_str());
    assert!(
        body["data"]
            .as_object()
            .unwrap()
            .keys()
            .all(|t| !t.starts_with("__")),
        "internal topics listed: {body}"
    );
    tokio::task::spawn_blocking(move || drop(topic))
        .await
        .unwrap();
}

/// A loopback endpoint that drops connection attempts, like an unroutable address: a listener with a backlog of
/// 0 whose one slot is taken, so the kernel ignores every further SYN and a connect waits for its timeout.
fn blackhole() -> (tokio::net::TcpListener, std::net::TcpStream) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let filler = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    (listener, filler)
}

/// Five brokers that never complete a TCP handshake, then five that accept TCP and never answer Kafka: every
/// address is tried at once, so each verdict arrives within the 15 s budget whatever the number of brokers.
#[tokio::test]
async fn five_unreachable_brokers_get_a_verdict_within_15_s() {
    let holes: Vec<_> = (0..5).map(|_| blackhole()).collect();
    let brokers: Vec<String> = holes
        .iter()
        .map(|(l, _)| l.local_addr().unwrap().to_string())
        .collect();
    let (data, took) = verify(json!({"brokers": brokers.join(",")})).await;
    let r = reason(&data);
    assert!(r.starts_with("connection: cannot connect to "), "{r}");
    for b in &brokers {
        assert!(r.contains(b.as_str()), "{b} named: {r}");
    }
    assert!(took < Duration::from_secs(15), "{took:?}");

    // Silent: the TCP handshake completes (the listeners' backlog has room), nothing is ever answered.
    let silent: Vec<std::net::TcpListener> = (0..5)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let brokers: Vec<String> = silent
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let (data, took) = verify(json!({"brokers": brokers.join(",")})).await;
    let r = reason(&data);
    assert!(
        r.starts_with("connection: ") && r.contains("accepted the connection but never answered"),
        "{r}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    let (data, took) = verify(json!({"brokers": brokers.join(","), "tls": true})).await;
    let r = reason(&data);
    assert!(
        r.starts_with("TLS: ")
            && r.contains("accepted the connection but did not answer the TLS handshake"),
        "{r}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
}

/// AWS MSK IAM (no AWS here): the broker is the shared SASL_SSL listener, AWS STS is a fake that answers as
/// AWS does. Keys that STS calls expired, unknown or wrongly signed, and no credentials anywhere, each get a
/// `token:` verdict naming the cause; keys STS accepts reach the broker, which does not offer OAUTHBEARER.
#[tokio::test]
async fn aws_msk_iam_token_stage_names_expired_unknown_and_missing_credentials() {
    let brokers = kafka_var("KC_KAFKA_SASL_SSL_BROKERS");
    let ca = std::fs::read_to_string(kafka_var("KC_KAFKA_CA")).unwrap();
    let sts_error = |code: &str| {
        ResponseTemplate::new(403).set_body_string(format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
             <Code>{code}</Code><Message>as AWS says it</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        ))
    };
    let ok = ResponseTemplate::new(200).set_body_string(
        "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/kc</Arn>\
         <UserId>AIDA</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let imds = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let keys = json!({"brokers": brokers, "caCert": ca, "mechanism": "aws-msk-iam", "awsRegion": "eu-west-1",
                      "awsAccessKeyId": "AKIDEXAMPLE", "awsSecretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                      "awsSessionToken": "FwoGZXIvYXdzEXAMPLE"});
    let mut no_keys = keys.clone();
    for k in ["awsAccessKeyId", "awsSecretAccessKey", "awsSessionToken"] {
        no_keys.as_object_mut().unwrap().remove(k);
    }
    let cases = [
        (
            "expired",
            keys.clone(),
            Some(sts_error("ExpiredToken")),
            "token: the AWS session token has expired",
        ),
        (
            "unknown key",
            keys.clone(),
            Some(sts_error("InvalidClientTokenId")),
            "token: ",
        ),
        (
            "wrong secret",
            keys.clone(),
            Some(sts_error("SignatureDoesNotMatch")),
            "token: ",
        ),
        ("no credentials", no_keys, None, "token: "),
        (
            "accepted keys",
            keys,
            Some(ok),
            "SASL: the broker does not accept OAUTHBEARER",
        ),
    ];
    let runs = cases.into_iter().map(|(label, cfg, answer, prefix)| {
        let imds = imds.clone();
        async move {
            let sts = MockServer::start().await;
            if let Some(answer) = answer {
                Mock::given(method("GET"))
                    .respond_with(answer)
                    .mount(&sts)
                    .await;
            }
            let env = [
                ("AWS_ENDPOINT_URL_STS", sts.uri()),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds),
                ("AWS_ACCESS_KEY_ID", String::new()),
                ("AWS_SECRET_ACCESS_KEY", String::new()),
                ("AWS_SESSION_TOKEN", String::new()),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", String::new()),
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", String::new()),
                ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", String::new()),
            ];
            let started = Instant::now();
            let (code, body, _, logs) = service("verifyCredentials", Some(cfg), &env).await;
            let took = started.elapsed();
            assert_eq!(code, 0, "{label}: {logs}");
            let data = body.unwrap()["data"].clone();
            let r = reason(&data);
            assert!(r.starts_with(prefix), "{label}: {r}");
            for secret in [
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "FwoGZXIvYXdzEXAMPLE",
            ] {
                assert!(
                    !r.contains(secret) && !logs.contains(secret),
                    "{label}: secret leaked"
                );
            }
            assert!(took < Duration::from_secs(15), "{label}: {took:?}");
            (label, r)
        }
    });
    let verdicts = futures_util::future::join_all(runs).await;
    for (label, r) in &verdicts {
        eprintln!("{label}: {r}");
    }
    let by = |l: &str| verdicts.iter().find(|(x, _)| *x == l).unwrap().1.clone();
    assert!(
        by("unknown key").starts_with("token: AWS does not recognise the access key ID"),
        "{}",
        by("unknown key")
    );
    assert!(
        by("wrong secret").starts_with("token: the AWS secret access key does not match"),
        "{}",
        by("wrong secret")
    );
    assert!(
        by("no credentials").starts_with("token: no AWS credentials found"),
        "{}",
        by("no credentials")
    );
}
