//! Secrets scan (issue: reliability): every function runs with recognisable secret values, on good and on
//! failing paths, with debug logging; then everything the processes wrote and sent is searched for those
//! values: stdout/stderr, every AMQP message (raw content, decrypted bodies, the error wrapper's encrypted
//! fields, headers) and every HTTP request the fake platform received (URL and body).
//!
//! Kafka is the shared Apache Kafka broker: its SASL listener with the test's (wrong) password runs the real
//! authentication-failure paths, a real SCRAM user the successful ones; SASL against its PLAINTEXT listener,
//! SASL_SSL with the test CA, and a closed port run the connection-error and timeout paths.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::FutureExt as _;
use futures_util::future::join_all;
use kafka_component::platform::crypto::Crypto;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::*;

const T: Duration = Duration::from_secs(30);

const SASL_PASSWORD: &str = "SASLPW-s3cr3t-7f1a";
const API_KEY: &str = "APIKEY-s3cr3t-9c2b";
const CRYPTO_PASSWORD: &str = "CRYPTOPW-s3cr3t-4d8e";
/// Exactly 16 bytes, as the cipher needs.
const CRYPTO_IV: &str = "IVs3cr3t-0123456";
const AMQP_PASSWORD: &str = "AMQPPW-s3cr3t-1b3c";
const STORAGE_TOKEN: &str = "OSTOKEN-s3cr3t-5e6f";
const RESULT_PASSWORD: &str = "RESULTPW-s3cr3t-2a4c";
const KEY_MARKER: &str = "CLIENTKEYs3cr3tMIIEvQIBADANBgkq";
/// The password of the SCRAM-SHA-512 user `scripts/kafka.sh` creates: a login that works, scanned for too.
const KAFKA_SASL_PASSWORD: &str = "scram512-pass";
/// Shown on purpose (user names are not secret): proves the scan sees the error texts.
const SASL_USER: &str = "visible-user-name";

/// An OAuth client secret the identity provider refuses, and AWS keys (no AWS here: signing and the failure
/// paths run, the broker refuses them).
const OAUTH_WRONG_SECRET: &str = "OAUTHSECRET-s3cr3t-6a7b";
const AWS_SECRET_KEY: &str = "AWSSECRET-s3cr3t-8c9d/+x";
const AWS_SESSION_TOKEN: &str = "AWSSESSION-s3cr3t-0e1f";

const SECRETS: [&str; 12] = [
    OAUTH_WRONG_SECRET,
    AWS_SECRET_KEY,
    AWS_SESSION_TOKEN,
    KAFKA_SASL_PASSWORD,
    SASL_PASSWORD,
    API_KEY,
    CRYPTO_PASSWORD,
    CRYPTO_IV,
    AMQP_PASSWORD,
    STORAGE_TOKEN,
    RESULT_PASSWORD,
    KEY_MARKER,
];

fn secret_crypto() -> Crypto {
    Crypto::new(CRYPTO_PASSWORD, CRYPTO_IV).unwrap()
}

fn client_key() -> String {
    format!("-----BEGIN PRIVATE KEY-----\n{KEY_MARKER}\n-----END PRIVATE KEY-----\n")
}

/// Everything captured, by where it came from.
#[derive(Default)]
struct Capture {
    texts: Vec<(String, Vec<u8>)>,
}

impl Capture {
    fn merge(&mut self, others: Vec<Capture>) {
        for o in others {
            self.texts.extend(o.texts);
        }
    }

    fn add(&mut self, origin: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.texts.push((origin.into(), bytes.into()));
    }

    /// A published message: raw content, headers, and whatever of it decrypts.
    fn add_amqp(&mut self, origin: &str, got: &Got) {
        let c = secret_crypto();
        self.add(format!("{origin} content"), got.data.clone());
        self.add(format!("{origin} headers"), format!("{:?}", got.props));
        for version in [1, 2] {
            if let Ok(plain) = c.decode(&got.data, version) {
                self.add(format!("{origin} decrypted v{version}"), plain);
            }
        }
        if let Ok(Value::Object(wrapper)) = serde_json::from_slice::<Value>(&got.data) {
            for (field, v) in wrapper {
                if let Some(text) = v.as_str()
                    && let Ok(plain) = c.decode(text.as_bytes(), 1)
                {
                    self.add(format!("{origin} decrypted `{field}`"), plain);
                }
            }
        }
    }

    async fn add_queues(&mut self, rb: &Rabbit, label: &str) {
        for kind in KINDS.iter().chain(["dead"].iter()) {
            for m in rb.take(kind, 10_000, Duration::from_millis(300)).await {
                self.add_amqp(&format!("{label}: AMQP {kind}"), &m);
            }
        }
    }

    async fn add_http(&mut self, server: &MockServer, label: &str) {
        for r in server.received_requests().await.unwrap_or_default() {
            self.add(
                format!("{label}: HTTP {} {} (URL)", r.method, r.url),
                r.url.to_string(),
            );
            self.add(
                format!("{label}: HTTP {} {} (body)", r.method, r.url),
                r.body.clone(),
            );
        }
    }

    fn contains(&self, needle: &str) -> bool {
        self.texts.iter().any(|(_, t)| find(t, needle.as_bytes()))
    }

    fn assert_clean(&self) {
        if std::env::var("TEST_LOG").is_ok() {
            for (origin, text) in &self.texts {
                eprintln!("scanned {:>9} bytes: {origin}", text.len());
            }
        }
        let mut leaks = Vec::new();
        // Also the secret of the OAuth client that works, the header every token it is issued starts with, and
        // the start of every AWS MSK IAM token (base64url of the signed URL).
        let msk_url =
            "https://kafka.eu-west-1.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-";
        let msk_prefix = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(&msk_url[..msk_url.len() / 3 * 3]);
        let dynamic = [
            kafka_var("KC_OAUTH_CLIENT_SECRET"),
            crate::oauth::token_prefix(),
            msk_prefix,
        ];
        for secret in SECRETS
            .iter()
            .copied()
            .chain(dynamic.iter().map(String::as_str))
        {
            let b64 = B64.encode(secret);
            for (origin, text) in &self.texts {
                if find(text, secret.as_bytes()) || find(text, b64.as_bytes()) {
                    leaks.push(format!(
                        "{secret} in {origin}:\n{}",
                        String::from_utf8_lossy(text)
                    ));
                }
            }
        }
        assert!(
            leaks.is_empty(),
            "secrets leaked:\n{}",
            leaks.join("\n---\n")
        );
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The message-mode environment with every secret in place; debug logs of every crate.
fn env(rb: &Rabbit, api: &str, function: &str) -> Vec<(String, String)> {
    step_env(
        rb,
        api,
        function,
        &[
            ("ELASTICIO_API_KEY", API_KEY),
            ("ELASTICIO_MESSAGE_CRYPTO_PASSWORD", CRYPTO_PASSWORD),
            ("ELASTICIO_MESSAGE_CRYPTO_IV", CRYPTO_IV),
            ("ELASTICIO_OBJECT_STORAGE_TOKEN", STORAGE_TOKEN),
            ("ELASTICIO_DATA_RATE_LIMIT", "1000"),
            ("RUST_LOG", "debug"),
        ],
    )
}

async fn publish(rb: &Rabbit, msg: &Value) {
    let content = secret_crypto().encode(&serde_json::to_vec(msg).unwrap(), 1);
    rb.publish_raw(&content, &[("reply_to", &rb.rk("reply"))])
        .await;
}

fn sasl(brokers: &str, mechanism: &str) -> Value {
    json!({
        "brokers": brokers, "username": SASL_USER, "password": SASL_PASSWORD, "mechanism": mechanism,
        "deliveryTimeoutMs": 2000, "requestTimeoutMs": 2000,
    })
}

fn oauth(secret: &str) -> Value {
    json!({
        "brokers": kafka_var("KC_KAFKA_OAUTH_BROKERS"), "mechanism": "oauthbearer",
        "tokenUrl": kafka_var("KC_OAUTH_TOKEN_URL"), "oauthClientId": kafka_var("KC_OAUTH_CLIENT_ID"),
        "oauthClientSecret": secret, "deliveryTimeoutMs": 5000,
    })
}

/// AWS MSK IAM with keys from the form, against the SASL_SSL listener (which does not offer OAUTHBEARER).
fn msk_iam(brokers: &str, ca: &str) -> Value {
    json!({
        "brokers": brokers, "mechanism": "aws-msk-iam", "awsRegion": "eu-west-1", "caCert": ca,
        "awsAccessKeyId": "AKIDVISIBLEEXAMPLE", "awsSecretAccessKey": AWS_SECRET_KEY,
        "awsSessionToken": AWS_SESSION_TOKEN, "deliveryTimeoutMs": 2000, "requestTimeoutMs": 2000,
    })
}

/// Runs one message-mode worker for `cfg`, sends `inputs` (each waited for until something is published or
/// a short time passed), stops it and captures everything.
async fn message_mode(label: &str, function: &str, cfg: Value, inputs: Vec<Value>) -> Capture {
    let mut capture = Capture::default();
    let cap = &mut capture;
    let rb = Rabbit::setup("secrets").await;
    let api = fake_api(cfg).await;
    let worker = spawn_ready(&env(&rb, &api.uri(), function)).await;
    for input in &inputs {
        publish(&rb, input).await;
        // Let the execution finish (data, error, or a rebound after the delivery timeout); what is captured
        // then is checked, whether or not it finished.
        let _ = poll_until(Duration::from_secs(12), || async {
            let out = rb.count("data").await
                + rb.count("error").await
                + rb.count("rebound").await
                + rb.count("dead").await;
            (rb.count("messages").await == 0 && out > 0).then_some(())
        })
        .await;
    }
    if function == "consume" {
        // Let the member connect and fetch the topic's three records, or fail: until it emitted all three or an
        // error (a member that only retries, against a closed port, is captured after 10 s).
        let _ = poll_until(Duration::from_secs(10), || async {
            (rb.count("data").await >= 3 || rb.count("error").await > 0).then_some(())
        })
        .await;
    }
    let output = std::sync::Arc::clone(&worker.output);
    worker.stop().await;
    let logs = output.lock().unwrap().clone();
    cap.add(format!("{label}: stdout/stderr"), logs);
    cap.add_queues(&rb, label).await;
    cap.add_http(&api, label).await;
    rb.teardown().await;
    capture
}

#[tokio::test]
async fn no_secret_appears_in_any_output_message_or_request() {
    let brokers = kafka();
    let sasl_brokers = kafka_var("KC_KAFKA_SCRAM_BROKERS");
    let sasl_ssl_brokers = kafka_var("KC_KAFKA_SASL_SSL_BROKERS");
    let ca = std::fs::read_to_string(kafka_var("KC_KAFKA_CA")).unwrap();
    let oauth_secret = kafka_var("KC_OAUTH_CLIENT_SECRET");
    let t = Topic::new("secrets", 1);
    let topic = t.name.clone();
    // A login that works (debug logs of a real SASL session).
    let scram_ok = json!({"brokers": sasl_brokers, "username": "scram512", "password": KAFKA_SASL_PASSWORD,
                          "mechanism": "scram-sha-512", "deliveryTimeoutMs": 5000});
    let mut cap = Capture::default();
    let good = json!({"body": {"messages": [{"key": "k", "value": "v"}]}});
    let invalid = json!({"body": {"messages": [{"key": "no value"}]}});
    let closed = "127.0.0.1:1";

    // Produce: good, invalid input (error wrapper with errorInput, error reply), a SASL login that works, wrong
    // passwords on Kafka's SASL and SASL_SSL listeners (authentication errors), SASL against the PLAINTEXT
    // listener and a closed port (connection errors, timeouts, rebound), a broken client key, a bad mechanism.
    let plain = json!({"brokers": brokers, "topic": topic});
    // Records for the consumers to read.
    produce_records(&brokers, &topic, 1, 3, 10);
    let mut runs = vec![
        message_mode(
            "produce ok",
            "produce",
            plain.clone(),
            vec![good.clone(), invalid.clone()],
        )
        .boxed(),
    ];
    for (label, cfg) in [
        (
            "produce SCRAM ok",
            merge(scram_ok.clone(), json!({"topic": topic})),
        ),
        (
            "produce SCRAM wrong password",
            merge(
                sasl(&sasl_brokers, "scram-sha-512"),
                json!({"topic": topic}),
            ),
        ),
        (
            "produce PLAIN wrong password",
            merge(sasl(&sasl_brokers, "plain"), json!({"topic": topic})),
        ),
        (
            "produce SASL_SSL wrong password",
            merge(
                sasl(&sasl_ssl_brokers, "scram-sha-256"),
                json!({"topic": topic, "caCert": ca}),
            ),
        ),
        (
            "produce SASL on the PLAINTEXT listener",
            merge(sasl(&brokers, "scram-sha-512"), json!({"topic": topic})),
        ),
        (
            "produce SASL closed port",
            merge(sasl(closed, "scram-sha-256"), json!({"topic": topic})),
        ),
        (
            "produce broken client key",
            merge(
                plain.clone(),
                json!({"clientCert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "clientKey": client_key()}),
            ),
        ),
        (
            "produce bad mechanism",
            merge(sasl(&brokers, "kerberos"), json!({"topic": topic})),
        ),
        (
            "produce OAuth ok",
            merge(oauth(&oauth_secret), json!({"topic": topic})),
        ),
        (
            "produce OAuth wrong secret",
            merge(oauth(OAUTH_WRONG_SECRET), json!({"topic": topic})),
        ),
        (
            "produce OAuth token URL down",
            merge(
                oauth(&oauth_secret),
                json!({"topic": topic, "tokenUrl": "http://127.0.0.1:1/token"}),
            ),
        ),
        (
            "produce MSK IAM refused",
            merge(msk_iam(&sasl_ssl_brokers, &ca), json!({"topic": topic})),
        ),
    ] {
        runs.push(message_mode(label, "produce", cfg, vec![good.clone()]).boxed());
    }

    // Consume: records from Kafka with and without SASL; a wrong password; SASL against a closed port.
    let tick = json!({"body": {}});
    let groups: Vec<String> = (0..6).map(|_| rand_name("g")).collect();
    for (label, cfg) in [
        (
            "consume ok",
            json!({"brokers": brokers, "topic": topic, "groupId": groups[0]}),
        ),
        (
            "consume SCRAM ok",
            merge(
                scram_ok.clone(),
                json!({"topic": topic, "groupId": groups[1]}),
            ),
        ),
        (
            "consume SCRAM wrong password",
            merge(
                sasl(&sasl_brokers, "scram-sha-512"),
                json!({"topic": topic, "groupId": groups[2]}),
            ),
        ),
        (
            "consume SASL closed port",
            merge(
                sasl(closed, "plain"),
                json!({"topic": topic, "groupId": groups[3]}),
            ),
        ),
        (
            "consume OAuth ok",
            merge(
                oauth(&oauth_secret),
                json!({"topic": topic, "groupId": groups[4]}),
            ),
        ),
        (
            "consume OAuth wrong secret",
            merge(
                oauth(OAUTH_WRONG_SECRET),
                json!({"topic": topic, "groupId": groups[5]}),
            ),
        ),
    ] {
        runs.push(message_mode(label, "consume", cfg, vec![tick.clone()]).boxed());
    }
    // All workers at once (each has its own queues, API and consumer group).
    cap.merge(join_all(runs).await);

    // Startup failure after AMQP is open (step API down): the startup error message.
    {
        let rb = Rabbit::setup("secrets-apidown").await;
        let api = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503).set_body_string("down"))
            .mount(&api)
            .await;
        let mut w = Worker::spawn(&env(&rb, &api.uri(), "produce"));
        assert_eq!(w.exit_code(T).await, 1);
        cap.add("startup API down: stdout/stderr", w.logs());
        cap.add_queues(&rb, "startup API down").await;
        cap.add_http(&api, "startup API down").await;
        // AMQP unreachable with a password in the URI.
        let mut e = env(&rb, &api.uri(), "produce");
        e.retain(|(k, _)| k != "ELASTICIO_AMQP_URI");
        e.push((
            "ELASTICIO_AMQP_URI".into(),
            format!("amqp://guest:{AMQP_PASSWORD}@127.0.0.1:1/%2f"),
        ));
        e.push(("ELASTICIO_AMQP_RECONNECT_TIMEOUT".into(), "10".into()));
        let mut w = Worker::spawn(&e);
        assert_eq!(w.exit_code(T).await, 1);
        cap.add("AMQP unreachable: stdout/stderr", w.logs());
        rb.teardown().await;
    }

    // Service mode: verifyCredentials and selectModel getTopics, good and failing.
    let mut runs = Vec::new();
    for (label, method_name, cfg) in [
        (
            "verify plain",
            "verifyCredentials",
            json!({"brokers": brokers}),
        ),
        ("verify SCRAM ok", "verifyCredentials", scram_ok.clone()),
        (
            "verify SCRAM wrong password",
            "verifyCredentials",
            sasl(&sasl_brokers, "scram-sha-512"),
        ),
        (
            "verify PLAIN wrong password",
            "verifyCredentials",
            sasl(&sasl_brokers, "plain"),
        ),
        (
            "verify SASL closed port",
            "verifyCredentials",
            sasl(closed, "plain"),
        ),
        (
            "verify bad mechanism",
            "verifyCredentials",
            sasl(&brokers, "md5"),
        ),
        (
            "verify broken client key",
            "verifyCredentials",
            json!({"brokers": brokers, "clientCert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "clientKey": client_key()}),
        ),
        ("verify OAuth ok", "verifyCredentials", oauth(&oauth_secret)),
        (
            "verify OAuth wrong secret",
            "verifyCredentials",
            oauth(OAUTH_WRONG_SECRET),
        ),
        (
            "verify MSK IAM refused",
            "verifyCredentials",
            msk_iam(&sasl_ssl_brokers, &ca),
        ),
        ("topics OAuth ok", "selectModel", oauth(&oauth_secret)),
        ("topics plain", "selectModel", json!({"brokers": brokers})),
        ("topics SCRAM ok", "selectModel", scram_ok.clone()),
        (
            "topics SCRAM wrong password",
            "selectModel",
            sasl(&sasl_brokers, "scram-sha-256"),
        ),
        (
            "topics SASL closed port",
            "selectModel",
            sasl(closed, "scram-sha-512"),
        ),
    ] {
        runs.push(service(label, method_name, cfg).boxed());
    }
    cap.merge(join_all(runs).await);

    // The local runner: output lines on stdout, logs on stderr.
    for (label, cfg, input) in [
        (
            "exec produce",
            json!({"brokers": brokers, "topic": topic}),
            good["body"].clone(),
        ),
        (
            "exec produce invalid",
            json!({"brokers": brokers, "topic": topic}),
            invalid["body"].clone(),
        ),
        (
            "exec produce SCRAM wrong password",
            merge(
                sasl(&sasl_brokers, "scram-sha-512"),
                json!({"topic": topic}),
            ),
            good["body"].clone(),
        ),
        (
            "exec produce SCRAM ok",
            merge(scram_ok.clone(), json!({"topic": topic})),
            good["body"].clone(),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (c, i) = (dir.path().join("cfg.json"), dir.path().join("in.json"));
        std::fs::write(&c, cfg.to_string()).unwrap();
        std::fs::write(&i, input.to_string()).unwrap();
        let out = tokio::time::timeout(
            T,
            tokio::process::Command::new(env!("CARGO_BIN_EXE_kafka-component"))
                .args([
                    "exec",
                    "produce",
                    "--config",
                    c.to_str().unwrap(),
                    "--input",
                    i.to_str().unwrap(),
                ])
                .env("RUST_LOG", "debug")
                .output(),
        )
        .await
        .expect("exec finishes")
        .unwrap();
        cap.add(format!("{label}: stdout"), out.stdout);
        cap.add(format!("{label}: stderr"), out.stderr);
    }

    // The scan saw what it should: logs, data, errors with the (visible) user name, posted results.
    assert!(cap.contains("Worker ready"), "worker logs captured");
    assert!(cap.contains("\"topicName\""), "decrypted data captured");
    assert!(cap.contains("ValidationError"), "decrypted errors captured");
    assert!(cap.contains(SASL_USER), "SASL error texts captured");
    assert!(
        cap.contains("SASL/OAUTHBEARER token refreshed."),
        "OAuth logins captured"
    );
    assert!(
        cap.contains("AWS MSK IAM (region eu-west-1)"),
        "AWS MSK IAM error texts captured"
    );
    assert!(cap.contains("\"verified\""), "service results captured");
    assert!(cap.contains(&topic), "selectModel result captured");
    for g in &groups {
        delete_group(&brokers, g);
    }
    cap.assert_clean();
}

/// Runs `kafka-component service <method>` with every service-mode secret and captures its output and the
/// posted result.
async fn service(label: &str, method_name: &str, cfg: Value) -> Capture {
    let mut capture = Capture::default();
    let cap = &mut capture;
    let server = result_server().await;
    let addr = server.address();
    let env = service_env(
        &format!("http://svc:{RESULT_PASSWORD}@{addr}/result"),
        &server.uri(),
        API_KEY,
        &[
            ("ELASTICIO_CFG", &cfg.to_string()),
            ("ELASTICIO_ACTION_OR_TRIGGER", "produce"),
            ("ELASTICIO_GET_MODEL_METHOD", "getTopics"),
            ("RUST_LOG", "debug"),
        ],
    );
    let mut w = Worker::spawn_args(&["service", method_name], &env);
    let code = w.exit_code(Duration::from_secs(40)).await;
    assert_eq!(code, 0, "{label}: {}", w.logs());
    let posted = server.received_requests().await.unwrap();
    assert_eq!(posted.len(), 1, "{label}: one result");
    cap.add(format!("{label}: stdout/stderr"), w.logs());
    cap.add_http(&server, label).await;
    capture
}
