//! Test harness: a uniquely named AMQP topology on the real RabbitMQ (exchange, listen queue with a
//! dead-letter queue, one queue per routing key), a fake platform API (wiremock), the worker binary as a
//! child process with captured output, and Kafka helpers.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_component::platform::crypto::Crypto;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const PASSWORD: &str = "testCryptoPassword";
pub const IV: &str = "iv=any16_symbols";

pub fn amqp_addr() -> String {
    std::env::var("AMQP_ADDR").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn rand_name(prefix: &str) -> String {
    format!("kc-test-{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub fn crypto() -> Crypto {
    Crypto::new(PASSWORD, IV).unwrap()
}

/// Queues the harness binds to the worker's routing keys.
pub const KINDS: [&str; 5] = ["data", "error", "snapshot", "rebound", "reply"];

/// One test's AMQP topology.
pub struct Rabbit {
    /// The broker this topology lives on (the worker is pointed at it too).
    pub addr: String,
    pub conn: Connection,
    pub ch: Channel,
    pub prefix: String,
    /// Durable exchange and queues, persistent input messages (survive a broker restart).
    pub durable: bool,
}

/// A message read from a queue.
#[derive(Debug, Clone)]
pub struct Got {
    pub data: Vec<u8>,
    pub props: BasicProperties,
    pub routing_key: String,
}

impl Got {
    pub fn headers(&self) -> BTreeMap<String, AMQPValue> {
        self.props
            .headers()
            .as_ref()
            .map(|t| {
                t.inner()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn header_str(&self, k: &str) -> Option<String> {
        match self.headers().get(k)? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
            _ => None,
        }
    }

    pub fn header_int(&self, k: &str) -> Option<i64> {
        match self.headers().get(k)? {
            AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
            AMQPValue::ShortInt(v) => Some(i64::from(*v)),
            AMQPValue::LongInt(v) => Some(i64::from(*v)),
            AMQPValue::LongLongInt(v) => Some(*v),
            _ => None,
        }
    }

    /// Decrypts an encrypted message (protocol version from its header).
    pub fn decrypted(&self) -> Value {
        let v = self.header_int("protocolVersion").unwrap_or(1) as u8;
        let plain = crypto().decode(&self.data, v).expect("decrypt");
        serde_json::from_slice(&plain).expect("json")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.data).expect("plain json")
    }
}

impl Rabbit {
    pub async fn setup(name: &str) -> Self {
        Self::setup_opts(name, false).await
    }

    /// Re-attaches to an existing topology (after a broker restart).
    pub async fn attach(prefix: &str, durable: bool) -> Self {
        Self::attach_on(&amqp_addr(), prefix, durable).await
    }

    /// Re-attaches to an existing topology on the broker at `addr`.
    pub async fn attach_on(addr: &str, prefix: &str, durable: bool) -> Self {
        let conn = Connection::connect(addr, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        Self {
            addr: addr.to_owned(),
            conn,
            ch,
            prefix: prefix.to_owned(),
            durable,
        }
    }

    pub async fn setup_opts(name: &str, durable: bool) -> Self {
        Self::setup_on(&amqp_addr(), name, durable).await
    }

    /// A new topology on the broker at `addr`.
    pub async fn setup_on(addr: &str, name: &str, durable: bool) -> Self {
        let conn = Connection::connect(addr, ConnectionProperties::default())
            .await
            .expect("RabbitMQ must run at AMQP_ADDR (scripts/setup.sh starts it)");
        let ch = conn.create_channel().await.unwrap();
        let prefix = rand_name(name);
        let rb = Self {
            addr: addr.to_owned(),
            conn,
            ch,
            prefix,
            durable,
        };
        rb.ch
            .exchange_declare(
                rb.exchange().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        rb.declare(&rb.q("dead"), FieldTable::default()).await;
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(rb.q("dead").into()),
        );
        rb.declare(&rb.q("messages"), args).await;
        for kind in KINDS {
            rb.declare(&rb.q(kind), FieldTable::default()).await;
            rb.ch
                .queue_bind(
                    rb.q(kind).into(),
                    rb.exchange().into(),
                    rb.rk(kind).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
        rb
    }

    async fn declare(&self, name: &str, mut args: FieldTable) {
        // Leftovers of a crashed test vanish on their own.
        args.insert("x-expires".into(), AMQPValue::LongInt(600_000));
        self.ch
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    durable: self.durable,
                    ..Default::default()
                },
                args,
            )
            .await
            .unwrap();
    }

    pub fn exchange(&self) -> String {
        format!("{}:exchange", self.prefix)
    }
    pub fn q(&self, kind: &str) -> String {
        format!("{}:{kind}", self.prefix)
    }
    pub fn rk(&self, kind: &str) -> String {
        format!("{}:rk:{kind}", self.prefix)
    }

    /// The worker's ELASTICIO_* environment (API at `api`).
    pub fn env(&self, api: &str, function: &str) -> Vec<(String, String)> {
        let pairs = [
            ("FLOW_ID", "flow1"),
            ("EXEC_ID", "exec1"),
            ("STEP_ID", "step_1"),
            ("CONTAINER_ID", "cont1"),
            ("WORKSPACE_ID", "ws1"),
            ("USER_ID", "user1"),
            ("COMP_ID", "comp1"),
            ("FUNCTION", function),
            ("API_URI", api),
            ("API_USERNAME", "apiuser"),
            ("API_KEY", "apikey-secret-value"),
            ("MESSAGE_CRYPTO_PASSWORD", PASSWORD),
            ("MESSAGE_CRYPTO_IV", IV),
        ];
        let mut env: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (format!("ELASTICIO_{k}"), (*v).to_owned()))
            .collect();
        env.push(("ELASTICIO_AMQP_URI".into(), self.addr.clone()));
        env.push(("ELASTICIO_LISTEN_MESSAGES_ON".into(), self.q("messages")));
        env.push(("ELASTICIO_PUBLISH_MESSAGES_TO".into(), self.exchange()));
        for (var, kind) in [
            ("DATA", "data"),
            ("ERROR", "error"),
            ("REBOUND", "rebound"),
            ("SNAPSHOT", "snapshot"),
        ] {
            env.push((format!("ELASTICIO_{var}_ROUTING_KEY"), self.rk(kind)));
        }
        env
    }

    /// Publishes an encrypted input message to the listen queue.
    pub async fn publish_input(&self, msg: &Value, headers: &[(&str, &str)]) -> Vec<u8> {
        let content = crypto().encode(&serde_json::to_vec(msg).unwrap(), 1);
        self.publish_raw(&content, headers).await;
        content
    }

    pub async fn publish_raw(&self, content: &[u8], headers: &[(&str, &str)]) {
        let mut t = FieldTable::default();
        for (k, v) in headers {
            t.insert(
                ShortString::from(*k),
                AMQPValue::LongString(LongString::from(*v)),
            );
        }
        self.publish_with(content, t).await;
    }

    /// Publishes `content` with any AMQP header values to the listen queue and waits for the confirm.
    pub async fn publish_with(&self, content: &[u8], t: FieldTable) {
        self.ch
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .ok();
        self.ch
            .basic_publish(
                "".into(),
                self.q("messages").into(),
                BasicPublishOptions::default(),
                content,
                BasicProperties::default()
                    .with_headers(t)
                    .with_delivery_mode(if self.durable { 2 } else { 1 }),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Next message of queue `kind`, waiting up to `timeout`.
    pub async fn next(&self, kind: &str, timeout: Duration) -> Option<Got> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(m) = self
                .ch
                .basic_get(self.q(kind).into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                return Some(Got {
                    data: m.delivery.data.clone(),
                    props: m.delivery.properties.clone(),
                    routing_key: m.delivery.routing_key.as_str().to_owned(),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Collects `n` messages of queue `kind`.
    pub async fn take(&self, kind: &str, n: usize, timeout: Duration) -> Vec<Got> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(kind, left).await {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out
    }

    pub async fn count(&self, kind: &str) -> u32 {
        self.ch
            .queue_declare(
                self.q(kind).into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count()
    }

    /// Input messages not settled yet: ready in the queue, or delivered to a worker and neither acked nor
    /// rejected. A passive `queue.declare` counts ready messages only, so a check built on [`Rabbit::count`] alone
    /// would pass against a worker that never acks; `rabbitmqctl` asks the queue for both numbers.
    pub async fn unsettled_now(&self, kind: &str) -> u64 {
        let name = self.q(kind);
        let out = tokio::task::spawn_blocking(|| {
            std::process::Command::new("rabbitmqctl")
                .args([
                    "list_queues",
                    "-q",
                    "--no-table-headers",
                    "name",
                    "messages_ready",
                    "messages_unacknowledged",
                ])
                .output()
                .expect("rabbitmqctl")
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "rabbitmqctl list_queues: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let row = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cols| cols.first() == Some(&name.as_str()))
            .unwrap_or_else(|| panic!("queue {name} not listed by rabbitmqctl:\n{text}"));
        row[1..]
            .iter()
            .map(|n| n.parse::<u64>().expect("a count"))
            .sum()
    }

    /// Waits (up to 15 s) until every input is settled (acked or rejected, see [`Rabbit::unsettled_now`]) and
    /// returns how many are not.
    pub async fn unsettled_inputs(&self) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let n = self.unsettled_now("messages").await;
            if n == 0 || tokio::time::Instant::now() > deadline {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn teardown(self) {
        for kind in KINDS.iter().chain(["messages", "dead"].iter()) {
            let _ = self
                .ch
                .queue_delete(self.q(kind).into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = self
            .ch
            .exchange_delete(self.exchange().into(), ExchangeDeleteOptions::default())
            .await;
        let _ = self.conn.close(200, "bye".into()).await;
    }
}

/// A fake platform API answering the step call with `config`.
pub async fn fake_api(config: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tasks/flow1/steps/step_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "step_1", "comp_id": "comp1", "function": "produce",
            "config": config, "snapshot": {}, "is_passthrough": false, "variables": {}
        })))
        .mount(&server)
        .await;
    server
}

/// A fake platform endpoint for service mode's result POST (`/result`, answered 200).
pub async fn result_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/result"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// The worker binary as a child process.
pub struct Worker {
    pub child: Child,
    pub output: Arc<Mutex<String>>,
    /// The tasks copying stdout/stderr into `output`; awaited after exit so no line is missed.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(env: &[(String, String)]) -> Self {
        Self::spawn_args(&[], env)
    }

    pub fn spawn_args(args: &[&str], env: &[(String, String)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kafka-component"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_LEVEL", "debug")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn worker");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let out = Arc::clone(&output);
            readers.push(tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if std::env::var("TEST_LOG").is_ok() {
                        eprintln!("worker: {line}");
                    }
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            }));
        }
        Self {
            child,
            output,
            readers,
        }
    }

    pub fn logs(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the logs contain `needle`.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.logs().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "worker never logged {needle:?}; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn ready(&self) {
        self.wait_log("Worker ready", Duration::from_secs(20)).await;
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit and returns the exit code.
    pub async fn exit_code(&mut self, timeout: Duration) -> i32 {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => {
                // The pipes close with the process: let the readers copy the last lines.
                for r in std::mem::take(&mut self.readers) {
                    let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
                }
                status.unwrap().code().unwrap_or(-1)
            }
            Err(_) => panic!(
                "worker did not exit within {timeout:?}; {}",
                diagnostic_logs(&self.logs())
            ),
        }
    }

    pub async fn stop(mut self) -> i32 {
        if self.child.id().is_some() {
            self.signal("TERM");
        }
        self.exit_code(Duration::from_secs(30)).await
    }
}

/// A record's `partition` in Consume output: a string of digits, as the original component's output has it.
pub fn partition_of(record: &Value) -> i32 {
    let p = &record["partition"];
    p.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("`partition` must be a string of digits, got {p} in {record}"))
}

/// Checks a data message as the reference library builds one (`newMessageWithBody`): exactly the keys `id`,
/// `body`, `headers`, `attachments` and `metadata`, the last two empty, and the `messageId` header equal to `id`.
/// Returns the id.
pub fn assert_reference_envelope(m: &Got) -> String {
    let d = m.decrypted();
    let keys: BTreeSet<&str> = d
        .as_object()
        .unwrap_or_else(|| panic!("a data message is an object: {d}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["attachments", "body", "headers", "id", "metadata"]),
        "{d}"
    );
    assert_eq!(d["attachments"], json!({}), "{d}");
    assert_eq!(d["metadata"], json!({}), "{d}");
    let id = d["id"].as_str().expect("id is a string").to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "id is a UUID: {id}");
    assert_eq!(
        m.header_str("messageId").as_deref(),
        Some(id.as_str()),
        "messageId header = id"
    );
    id
}

/// Validates `body` against one of the files in `schemas/` (e.g. `consume.out.json`).
pub fn assert_matches_schema(file: &str, body: &Value) {
    let path = format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{file}: {problems:?} in {body}");
}

/// A failed test's view of a worker's logs: the whole log goes to a file (CI prints only the end of a test's
/// output), the message holds its warnings and errors and its last lines.
pub fn diagnostic_logs(logs: &str) -> String {
    let path = std::env::temp_dir().join(format!("kc-worker-{}.log", rand_name("log")));
    let saved = match std::fs::write(&path, logs) {
        Ok(()) => format!("whole log in {}", path.display()),
        Err(e) => format!("whole log not saved: {e}"),
    };
    let lines: Vec<&str> = logs.lines().collect();
    let notable: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .collect();
    let notable = &notable[notable.len().saturating_sub(60)..];
    let last = &lines[lines.len().saturating_sub(40)..];
    format!(
        "{saved}\nits last {} warnings and errors:\n{}\nits last {} lines:\n{}",
        notable.len(),
        notable.join("\n"),
        last.len(),
        last.join("\n")
    )
}

/// A consumer of a fresh group that commits nothing, to read a topic back.
pub fn reader(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", rand_name("verify"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

/// Reads `n` records from `topic` (all partitions, from the beginning).
pub fn read_records(
    brokers: &str,
    topic: &str,
    partitions: i32,
    n: usize,
    timeout: Duration,
) -> Vec<KafkaRecord> {
    let consumer = reader(brokers);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(KafkaRecord::of(&m));
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl KafkaRecord {
    pub fn of(m: &impl Message) -> Self {
        Self {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// Milliseconds since the Unix epoch (the clock of the worker's `start`/`end` headers and Kafka timestamps).
pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Decrypts the `error` field of an error message.
pub fn error_of(got: &Got) -> Value {
    let body = got.json();
    let plain = crypto()
        .decode(body["error"].as_str().unwrap().as_bytes(), 1)
        .unwrap();
    serde_json::from_slice(&plain).unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// Apache Kafka (scripts/kafka.sh). `scripts/test.sh` starts one broker and exports its listeners; a test that
// needs a broker of its own (to kill or restart it) starts one with `KafkaBroker::start` or a cluster with
// `KafkaCluster::start`.

/// A `KC_KAFKA_*` variable that `scripts/kafka.sh start` exports. Panics (never skips) when it is missing.
pub fn kafka_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run the tests with scripts/test.sh, or start Apache Kafka with \
             `eval \"$(scripts/kafka.sh start)\"`"
        )
    })
}

/// PLAINTEXT `host:port` of the shared Apache Kafka broker.
pub fn kafka() -> String {
    kafka_var("KC_KAFKA_BROKERS")
}

/// The SASL users `scripts/kafka.sh` creates on `KC_KAFKA_SCRAM_BROKERS` and `KC_KAFKA_SASL_SSL_BROKERS`:
/// (username, password, `mechanism` as the credentials name it, the mechanism as librdkafka and the errors
/// name it).
pub const SASL_USERS: [(&str, &str, &str, &str); 3] = [
    (
        "scram512",
        "scram512-pass",
        "scram-sha-512",
        "SCRAM-SHA-512",
    ),
    (
        "scram256",
        "scram256-pass",
        "scram-sha-256",
        "SCRAM-SHA-256",
    ),
    ("plain", "plain-pass", "plain", "PLAIN"),
];

/// `a` with every field of the object `b` set (overwriting).
pub fn merge(mut a: Value, b: Value) -> Value {
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

/// `cfg` with the SASL credentials fields `username`, `password` and `mechanism` set.
pub fn with_login(mut cfg: Value, user: &str, password: &str, mechanism: &str) -> Value {
    cfg["username"] = json!(user);
    cfg["password"] = json!(password);
    cfg["mechanism"] = json!(mechanism);
    cfg
}

/// The text of the `AuthenticationError` in the error message `err`, checked to name `user` and `mechanism`
/// (as librdkafka names it, e.g. `SCRAM-SHA-512`) and to pass on the broker's reason.
pub fn authentication_error(err: &Got, user: &str, mechanism: &str) -> String {
    let e = error_of(err);
    assert_eq!(e["name"], "AuthenticationError", "{mechanism}: {e}");
    let text = e["message"].as_str().unwrap().to_owned();
    assert!(
        text.starts_with(&format!(
            "Kafka authentication failed for user `{user}` with {mechanism}: "
        )),
        "{mechanism}: {text}"
    );
    assert!(
        text.contains("SASL authentication error: Authentication failed"),
        "{mechanism}: the broker's reason is passed on: {text}"
    );
    text
}

/// An admin client on `brokers` with extra client settings (e.g. SASL) applied.
fn admin(
    brokers: &str,
    extra: &[(&str, &str)],
) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().unwrap()
}

/// Runs a future to completion on a runtime of its own, on a thread of its own, so that it may be called from
/// synchronous code, from `spawn_blocking` and from `Drop` inside an async test alike.
pub fn block_on<F: std::future::Future + Send + 'static>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .unwrap()
}

/// How the replicas of a new topic are placed.
enum Replicas<'a> {
    /// `partitions` partitions of this many replicas each, placed by the broker.
    Fixed(i32, i32),
    /// One replica list (node ids) per partition; the first replica leads.
    Assigned(&'a [Vec<i32>]),
}

/// Sends CreateTopics for `topic` with topic `configs` and asserts that the broker created it.
fn send_create_topic(
    brokers: &str,
    topic: &str,
    replicas: Replicas<'_>,
    configs: &[(&str, &str)],
    client: &[(&str, &str)],
) {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
    let admin = admin(brokers, client);
    let owned: Vec<(String, String)> = configs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let (fixed, assigned) = match replicas {
        Replicas::Fixed(partitions, replication) => (Some((partitions, replication)), Vec::new()),
        Replicas::Assigned(a) => (None, a.to_vec()),
    };
    let t = topic.to_owned();
    let res = block_on(async move {
        let refs: Vec<&[i32]> = assigned.iter().map(Vec::as_slice).collect();
        let mut nt = match fixed {
            Some((partitions, replication)) => {
                NewTopic::new(&t, partitions, TopicReplication::Fixed(replication))
            }
            None => NewTopic::new(
                &t,
                i32::try_from(refs.len()).unwrap(),
                TopicReplication::Variable(&refs),
            ),
        };
        for (k, v) in &owned {
            nt = nt.set(k, v);
        }
        admin
            .create_topics(
                &[nt],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            )
            .await
    })
    .unwrap();
    assert!(res.iter().all(Result::is_ok), "create {topic}: {res:?}");
}

/// Creates `topic` with `partitions` partitions, replication factor `replication` and topic `configs`; waits
/// until every partition has a leader that answers metadata.
pub fn create_topic_with(
    brokers: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
    configs: &[(&str, &str)],
    client: &[(&str, &str)],
) {
    send_create_topic(
        brokers,
        topic,
        Replicas::Fixed(partitions, replication),
        configs,
        client,
    );
    wait_topic_ready(brokers, topic, partitions, client);
}

/// Creates `topic` with one replica list (node ids) per partition, the first replica leading, and topic
/// `configs`. Does not wait: the caller knows what state of the cluster it needs.
pub fn create_topic_assigned(
    brokers: &str,
    topic: &str,
    assignment: &[Vec<i32>],
    configs: &[(&str, &str)],
) {
    send_create_topic(brokers, topic, Replicas::Assigned(assignment), configs, &[]);
}

/// Waits until metadata shows every partition of `topic` with a leader.
pub fn wait_topic_ready(brokers: &str, topic: &str, partitions: i32, client: &[(&str, &str)]) {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    for (k, v) in client {
        c.set(*k, *v);
    }
    let consumer: BaseConsumer = c.create().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .is_ok_and(|md| {
                md.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            });
        if ready {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "topic {topic} has no leaders after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Creates a topic on the shared broker (replication 1).
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    create_topic_with(brokers, topic, partitions, 1, &[], &[]);
}

/// Deletes topics (best effort: a test that already failed must not panic again here).
pub fn delete_topics(brokers: &str, topics: &[&str], client: &[(&str, &str)]) {
    use rdkafka::admin::AdminOptions;
    let admin = admin(brokers, client);
    let names: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
    let _ = block_on(async move {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        admin
            .delete_topics(
                &refs,
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
    });
}

/// A topic of one test on the shared Apache Kafka broker, deleted when dropped.
pub struct Topic {
    pub name: String,
    pub brokers: String,
    pub partitions: i32,
}

impl Topic {
    /// A new uniquely named topic on the shared broker (`KC_KAFKA_BROKERS`).
    pub fn new(prefix: &str, partitions: i32) -> Self {
        Self::on(&kafka(), prefix, partitions, &[])
    }

    /// A new uniquely named topic on `brokers`, with topic `configs`.
    pub fn on(brokers: &str, prefix: &str, partitions: i32, configs: &[(&str, &str)]) -> Self {
        let name = rand_name(prefix);
        create_topic_with(brokers, &name, partitions, 1, configs, &[]);
        Self {
            name,
            brokers: brokers.to_owned(),
            partitions,
        }
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        delete_topics(&self.brokers, &[&self.name], &[]);
    }
}

/// Deletes a consumer group (best effort), for tests that name their own groups.
pub fn delete_group(brokers: &str, group: &str) {
    use rdkafka::admin::AdminOptions;
    let admin = admin(brokers, &[]);
    let g = group.to_owned();
    let _ = block_on(async move {
        admin
            .delete_groups(
                &[g.as_str()],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
    });
}

/// Committed offsets of `group` for partitions `0..partitions` of `topic` (`None`: nothing committed).
pub fn committed_offsets(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .unwrap();
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect()
}

/// (low, high) watermarks of one partition.
pub fn watermarks(brokers: &str, topic: &str, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .unwrap()
}

/// One Apache Kafka broker process of a test's own (its own ports and data directory), for faults that stop
/// or kill the broker. `restart` brings it back on the same ports with the same data.
pub struct KafkaBroker {
    /// The folder `scripts/kafka.sh start` made (start.sh, pid, server.log, data).
    pub dir: std::path::PathBuf,
    pub pid: u32,
    vars: std::collections::HashMap<String, String>,
}

fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Parses the `export A=B C=D` line that scripts/kafka.sh prints.
fn parse_exports(out: &str) -> std::collections::HashMap<String, String> {
    out.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn kafka_script(args: &[&str], env: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    let out = std::process::Command::new(repo_root().join("scripts/kafka.sh"))
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/kafka.sh");
    assert!(out.status.success(), "scripts/kafka.sh {args:?} failed");
    parse_exports(&String::from_utf8_lossy(&out.stdout))
}

/// Sends SIGKILL (or another signal) to a process.
pub fn kill_pid(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

/// Starts a broker from its folder's `start.sh` and waits until it serves `port` again.
fn start_node(dir: &std::path::Path, port: &str) -> u32 {
    let log = dir.join("server.log");
    let before = std::fs::read_to_string(&log)
        .map(|s| s.matches("Kafka Server started").count())
        .unwrap_or(0);
    let child = std::process::Command::new("setsid")
        .arg(dir.join("start.sh"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start.sh");
    let pid = child.id();
    // Reap it in the background so it never lingers as a zombie.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    std::fs::write(dir.join("pid"), pid.to_string()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let started = std::fs::read_to_string(&log)
            .map(|s| s.matches("Kafka Server started").count())
            .unwrap_or(0);
        if started > before && std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok() {
            return pid;
        }
        assert!(
            pid_alive(pid),
            "broker in {} exited; see server.log",
            dir.display()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "broker in {} not ready after 60 s",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl KafkaBroker {
    /// `scripts/kafka.sh start` with extra broker properties (`key=value`).
    pub fn start(props: &[&str]) -> Self {
        let joined = props.join(" ");
        let vars = kafka_script(&["start"], &[("KC_KAFKA_PROPS", &joined)]);
        Self {
            dir: vars["KC_KAFKA_DIR"].clone().into(),
            pid: vars["KC_KAFKA_PID"].parse().unwrap(),
            vars,
        }
    }

    /// PLAINTEXT `host:port`.
    pub fn brokers(&self) -> String {
        self.vars["KC_KAFKA_BROKERS"].clone()
    }

    /// Any variable `scripts/kafka.sh start` exported for this broker.
    pub fn var(&self, name: &str) -> String {
        self.vars[name].clone()
    }

    fn port(&self) -> String {
        self.brokers().rsplit(':').next().unwrap().to_owned()
    }

    /// SIGKILL: no clean shutdown, no flush.
    pub fn kill(&mut self) {
        kill_pid(self.pid, "KILL");
        while pid_alive(self.pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same ports and data; returns when it serves clients.
    pub fn restart(&mut self) {
        self.pid = start_node(&self.dir, &self.port());
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo_root().join("scripts/kafka.sh"))
            .arg("stop")
            .env("KC_KAFKA_PID", self.pid.to_string())
            .env("KC_KAFKA_DIR", &self.dir)
            .env_remove("KC_KAFKA_CLUSTER_DIR")
            .status();
    }
}

/// A three-broker Apache Kafka cluster of a test's own (`scripts/kafka.sh cluster 3`): replication factor 3,
/// `min.insync.replicas=2`.
pub struct KafkaCluster {
    pub dir: std::path::PathBuf,
    /// PLAINTEXT `host:port` of node 1, 2, 3 (node ids 1..=3).
    pub nodes: Vec<String>,
    pub pids: Vec<u32>,
}

impl KafkaCluster {
    pub fn start(n: usize, props: &[&str]) -> Self {
        let joined = props.join(" ");
        let vars = kafka_script(&["cluster", &n.to_string()], &[("KC_KAFKA_PROPS", &joined)]);
        Self {
            dir: vars["KC_KAFKA_CLUSTER_DIR"].clone().into(),
            nodes: vars["KC_KAFKA_CLUSTER"]
                .split(',')
                .map(str::to_owned)
                .collect(),
            pids: vars["KC_KAFKA_CLUSTER_PIDS"]
                .split(',')
                .map(|p| p.parse().unwrap())
                .collect(),
        }
    }

    /// All nodes, comma-separated (the bootstrap list a user would configure).
    pub fn brokers(&self) -> String {
        self.nodes.join(",")
    }

    /// SIGKILL node `id` (1-based, the broker's `node.id`).
    pub fn kill(&mut self, id: i32) {
        let pid = self.pids[(id - 1) as usize];
        kill_pid(pid, "KILL");
        while pid_alive(pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM node `id` and wait for its clean shutdown (a rolling restart's first half).
    pub fn stop(&mut self, id: i32) {
        let pid = self.pids[(id - 1) as usize];
        kill_pid(pid, "TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while pid_alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if pid_alive(pid) {
            self.kill(id);
        }
    }

    /// Starts node `id` again (same ports, same data).
    pub fn restart(&mut self, id: i32) {
        let port = self.nodes[(id - 1) as usize]
            .rsplit(':')
            .next()
            .unwrap()
            .to_owned();
        let dir = self.dir.join(format!("node{id}"));
        self.pids[(id - 1) as usize] = start_node(&dir, &port);
    }

    /// The node id that leads `topic`/`partition` now, as metadata reports it.
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .create()
            .unwrap();
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        md.topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .unwrap()
            .leader()
    }

    /// The node id of `group`'s coordinator: the leader of the group's `__consumer_offsets` partition,
    /// `(javaHash(group) & 0x7fffffff) % offsets.topic.num.partitions` (5 in scripts/kafka.sh).
    pub fn coordinator(&self, group: &str) -> i32 {
        let p = (java_string_hash(group) & 0x7fff_ffff) % 5;
        self.leader("__consumer_offsets", p)
    }
}

/// Java's `String.hashCode` (for the group → __consumer_offsets partition mapping).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
        let _ = std::process::Command::new(repo_root().join("scripts/kafka.sh"))
            .arg("stop")
            .env("KC_KAFKA_CLUSTER_DIR", &self.dir)
            .env("KC_KAFKA_CLUSTER_PIDS", pids.join(","))
            .env_remove("KC_KAFKA_PID")
            .env_remove("KC_KAFKA_DIR")
            .status();
    }
}

/// Starts a worker running `function` for the step config `cfg` (served by a fake platform API) on `rb`, with
/// the data throttle raised and `extra` settings; returns it ready. For a trigger, also publishes the tick.
pub async fn start_worker(
    rb: &Rabbit,
    function: &str,
    cfg: Value,
    extra: &[(&str, &str)],
) -> (Worker, MockServer) {
    let api = fake_api(cfg).await;
    let mut env = rb.env(&api.uri(), function);
    env.push(("ELASTICIO_DATA_RATE_LIMIT".into(), "100000".into()));
    for (k, v) in extra {
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    let worker = Worker::spawn(&env);
    worker.ready().await;
    if function == "consume" {
        rb.publish_input(&json!({"body": {}}), &[("messageId", "tick-1")])
            .await;
    }
    (worker, api)
}

/// Writes records with a plain rdkafka producer (acks=all) and waits for every delivery; returns their offsets.
pub fn produce_plain(
    brokers: &str,
    topic: &str,
    records: &[(Option<i32>, Option<&str>, &[u8])],
) -> Vec<(i32, i64)> {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let owned: Vec<(Option<i32>, Option<String>, Vec<u8>)> = records
        .iter()
        .map(|(p, k, v)| (*p, k.map(str::to_owned), v.to_vec()))
        .collect();
    let t = topic.to_owned();
    block_on(async move {
        let sends = owned.iter().map(|(p, k, v)| {
            let mut r: FutureRecord<'_, String, Vec<u8>> = FutureRecord::to(&t).payload(v);
            if let Some(k) = k {
                r = r.key(k);
            }
            if let Some(p) = p {
                r = r.partition(*p);
            }
            producer.send(r, Duration::from_secs(30))
        });
        futures_util::future::join_all(sends)
            .await
            .into_iter()
            .map(|r| {
                let d = r.map_err(|(e, _)| e).unwrap();
                (d.partition, d.offset)
            })
            .collect()
    })
}
