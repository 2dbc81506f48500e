//! The AMQP side: a uniquely named topology per test on the real RabbitMQ (direct exchange, a listen queue
//! that dead-letters into `dead`, one queue per routing key), and the messages read back from it.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_component::platform::crypto::Crypto;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;

use super::*;

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
        poll_until(timeout, || async {
            self.ch
                .basic_get(self.q(kind).into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
                .map(|m| Got {
                    data: m.delivery.data.clone(),
                    props: m.delivery.properties.clone(),
                    routing_key: m.delivery.routing_key.as_str().to_owned(),
                })
        })
        .await
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

    /// Ready messages in queue `kind` (a passive `queue.declare`).
    pub async fn count(&self, kind: &str) -> u32 {
        self.declare_passive(kind).await.message_count()
    }

    /// Consumers on queue `kind`: the worker's intake (1 while it consumes the listen queue, 0 once it cancelled).
    pub async fn consumers(&self, kind: &str) -> u32 {
        self.declare_passive(kind).await.consumer_count()
    }

    async fn declare_passive(&self, kind: &str) -> lapin::Queue {
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
    }

    /// Waits until queue `kind` holds `n` ready messages.
    pub async fn wait_count(&self, kind: &str, n: u32, timeout: Duration) {
        let what = format!("{n} messages in queue {kind}");
        wait_until(timeout, &what, || async {
            (self.count(kind).await == n).then_some(())
        })
        .await;
    }

    /// Waits until `n` consumers consume queue `kind` (0: the worker cancelled its intake).
    pub async fn wait_consumers(&self, kind: &str, n: u32, timeout: Duration) {
        let what = format!("{n} consumers on queue {kind}");
        wait_until(timeout, &what, || async {
            (self.consumers(kind).await == n).then_some(())
        })
        .await;
    }

    /// Asserts that nothing is published to any of `kinds` during `window` (checked throughout, failing at the
    /// first message). Waiting out the window is the behaviour under test: "nothing (more) is published".
    pub async fn assert_nothing_on(&self, kinds: &[&str], window: Duration) {
        assert_stays(window, || async {
            for kind in kinds {
                let n = self.count(kind).await;
                if n > 0 {
                    return Some(format!("{n} unexpected messages on {kind}"));
                }
            }
            None
        })
        .await;
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
