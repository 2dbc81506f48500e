//! verifyCredentials and service mode (issue: credentials): the binary in service mode against tansu (SCRAM),
//! a TLS-terminating stunnel in front of tansu (test CA made here), and a fake result endpoint.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

/// Runs `kafka-component service <method>` and returns (exit code, posted body, auth header, logs).
pub async fn service(
    method_name: &str,
    cfg: Option<Value>,
    extra: &[(&str, String)],
) -> (i32, Option<Value>, Option<String>, String) {
    let server = result_server().await;
    let addr = server.address();
    let mut env = vec![
        (
            "ELASTICIO_POST_RESULT_URL".to_owned(),
            format!("http://svc%40user:p%3Ass@{addr}/result"),
        ),
        ("ELASTICIO_API_URI".to_owned(), server.uri()),
        ("ELASTICIO_API_USERNAME".to_owned(), "u".to_owned()),
        ("ELASTICIO_API_KEY".to_owned(), "k".to_owned()),
    ];
    if let Some(cfg) = cfg {
        env.push(("ELASTICIO_CFG".to_owned(), cfg.to_string()));
    }
    for (k, v) in extra {
        env.push(((*k).to_owned(), v.clone()));
    }
    let mut w = Worker::spawn_args(&["service", method_name], &env);
    let code = w.exit_code(Duration::from_secs(40)).await;
    let reqs = server.received_requests().await.unwrap();
    let body = reqs
        .first()
        .map(|r| serde_json::from_slice(&r.body).unwrap());
    let auth = reqs.first().and_then(|r| {
        r.headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
    });
    (code, body, auth, w.logs())
}

async fn verify(cfg: Value) -> (Value, Duration) {
    let started = Instant::now();
    let (code, body, _, logs) = service("verifyCredentials", Some(cfg.clone()), &[]).await;
    assert_eq!(code, 0, "logs:\n{logs}");
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

fn tansu() -> String {
    std::env::var("KC_TANSU_BROKERS")
        .expect("KC_TANSU_BROKERS is not set: run the tests with scripts/test.sh")
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
async fn right_passwords_verify_and_wrong_ones_name_authentication() {
    let brokers = tansu();
    for (user, pass, mech) in [
        ("scram512", "scram512-pass", ""),
        ("scram256", "scram256-pass", "scram-sha-256"),
    ] {
        let (data, took) = verify(
            json!({"brokers": brokers, "username": user, "password": pass, "mechanism": mech}),
        )
        .await;
        assert_eq!(data, json!({"verified": true}), "{user}");
        assert!(took < Duration::from_secs(15));
    }
    let (data, took) =
        verify(json!({"brokers": brokers, "username": "scram512", "password": "nope-wrong-pw"}))
            .await;
    let r = reason(&data);
    assert!(
        r.starts_with("SASL: authentication with SCRAM-SHA-512 failed"),
        "{r}"
    );
    assert!(took < Duration::from_secs(15));
    let (data, _) =
        verify(json!({"brokers": brokers, "username": "nobody", "password": "whatever-pw"})).await;
    assert!(reason(&data).starts_with("SASL: authentication with SCRAM-SHA-512 failed"));
    // A SCRAM-SHA-256 user tried with SCRAM-SHA-512: the mechanism is named.
    let (data, _) =
        verify(json!({"brokers": brokers, "username": "scram256", "password": "scram256-pass"}))
            .await;
    assert!(reason(&data).contains("SCRAM-SHA-512"));
    // A mechanism the broker does not offer.
    let (data, _) = verify(json!({"brokers": brokers, "username": "scram512", "password": "scram512-pass", "mechanism": "plain"})).await;
    let r = reason(&data);
    assert!(r.starts_with("SASL:") && r.contains("PLAIN"), "{r}");
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
// TLS: a test CA, a broker certificate for `localhost`, stunnel in front of a tansu of its own.

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.path(f)).unwrap()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for ca in ["ca", "other-ca"] {
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=kc test {ca}"),
            ],
        );
    }
    std::fs::write(d.join("server.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    for (name, ext) in [("server", Some("server.ext")), ("client", None)] {
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        let mut args = vec!["x509", "-req", "-in", &*format!("{name}.csr")]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        args.extend(
            [
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
            ]
            .map(str::to_owned),
        );
        if let Some(ext) = ext {
            args.extend(["-extfile".to_owned(), ext.to_owned()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(d, &refs);
    }
    Pki { dir }
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tansu_bin() -> String {
    std::env::var("KC_TANSU_BIN").unwrap_or_else(|_| {
        format!(
            "{}/.cache/kafka-component/tansu/bin/tansu",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

/// tansu (no auth) advertising `localhost:<proxy>`, and stunnel terminating TLS on `<proxy>`.
fn tls_cluster(pki: &Pki, mutual: bool) -> (u16, Proc, Proc) {
    let (kafka, proxy) = (free_port(), free_port());
    let broker = Command::new(tansu_bin())
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{kafka}"),
            "--advertised-listener-url",
            &format!("tcp://localhost:{proxy}"),
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu binary (scripts/setup.sh builds it)");
    let broker = Proc(broker);
    wait_port(kafka);
    let mut conf = format!(
        "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{proxy}\nconnect = 127.0.0.1:{kafka}\ncert = {}\nkey = {}\n",
        pki.path("server.pem").display(),
        pki.path("server.key").display()
    );
    if mutual {
        conf.push_str(&format!(
            "CAfile = {}\nverifyChain = yes\nrequireCert = yes\n",
            pki.path("ca.pem").display()
        ));
    }
    let conf_path = pki.path(&format!("stunnel-{proxy}.conf"));
    std::fs::write(&conf_path, conf).unwrap();
    let tunnel = Proc(
        Command::new("stunnel")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("stunnel (scripts/setup.sh installs it)"),
    );
    wait_port(proxy);
    (proxy, broker, tunnel)
}

#[tokio::test]
async fn tls_right_ca_verifies_unknown_ca_and_hostname_mismatch_are_named() {
    let pki = make_pki();
    let (proxy, _broker, _tunnel) = tls_cluster(&pki, false);
    let ca = pki.read("ca.pem");
    let (data, _) =
        verify(json!({"brokers": format!("localhost:{proxy}"), "tls": true, "caCert": ca})).await;
    assert_eq!(data, json!({"verified": true}));
    let (data, _) = verify(json!({"brokers": format!("localhost:{proxy}"), "tls": true, "caCert": pki.read("other-ca.pem")})).await;
    let r = reason(&data);
    assert!(
        r.starts_with("TLS: the certificate of localhost") && r.contains("unknown CA"),
        "{r}"
    );
    let (data, _) =
        verify(json!({"brokers": format!("127.0.0.1:{proxy}"), "tls": true, "caCert": ca})).await;
    let r = reason(&data);
    assert!(
        r.contains("hostname mismatch") && r.contains("127.0.0.1"),
        "{r}"
    );
    // The loudly named escape hatch.
    let (data, _) = verify(json!({"brokers": format!("127.0.0.1:{proxy}"), "tls": true, "tlsInsecureSkipVerify": true})).await;
    assert_eq!(data, json!({"verified": true}));
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let pki = make_pki();
    let (proxy, _broker, _tunnel) = tls_cluster(&pki, true);
    let ca = pki.read("ca.pem");
    let base = json!({"brokers": format!("localhost:{proxy}"), "tls": true, "caCert": ca});
    let (data, _) = verify(base.clone()).await;
    let r = reason(&data);
    assert!(
        r.starts_with("TLS:") && r.contains("client certificate"),
        "{r}"
    );
    let mut with_cert = base;
    with_cert["clientCert"] = json!(pki.read("client.pem"));
    with_cert["clientKey"] = json!(pki.read("client.key"));
    let (data, _) = verify(with_cert).await;
    assert_eq!(data, json!({"verified": true}));
}

#[tokio::test]
async fn select_model_lists_the_topics() {
    let brokers = tansu();
    let topic = rand_name("listed");
    {
        let (b, t) = (brokers.clone(), topic.clone());
        tokio::task::spawn_blocking(move || crate::produce::tansu_create_topic(&b, &t, 1))
            .await
            .unwrap();
    }
    let cfg = json!({"brokers": brokers, "username": "scram512", "password": "scram512-pass"});
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
    assert_eq!(body["data"][&topic], topic);
}
