//! Fault suite (issue: reliability): streams through the worker while RabbitMQ connections are force-closed,
//! RabbitMQ is stopped and started, the Kafka broker process is killed and restarted, or the worker is killed.
//! Afterwards nothing may be missing. Each case starts its own RabbitMQ node (own port and data directory)
//! and its own tansu broker (SQLite storage, survives a restart), so the faults never touch the machine's
//! RabbitMQ and the suite runs in the normal `scripts/test.sh` run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::let_underscore_must_use,
    missing_debug_implementations,
    dead_code
)]

#[path = "../it/helpers.rs"]
mod helpers;
mod long_run;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use helpers::*;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueuePurgeOptions};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    CloseConnections,
    RabbitRestart,
    KafkaRestart,
    WorkerKill,
}

/// tansu with SQLite storage (survives a restart), no authentication, on a fixed port.
struct Tansu {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Tansu {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut t = Self {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            port,
        };
        t.spawn();
        t
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let bin = std::env::var("KC_TANSU_BIN").unwrap_or_else(|_| {
            format!(
                "{}/.cache/kafka-component/tansu/bin/tansu",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
                "--silent",
            ])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu (scripts/setup.sh builds it; KC_TANSU_BIN)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let res = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .unwrap();
    assert!(res.iter().all(Result::is_ok), "{res:?}");
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A RabbitMQ node of the suite's own (own port, own data directory, own Erlang node name), so the
/// faults here never touch the machine's RabbitMQ and the suite runs alongside the other tests.
struct RabbitNode {
    node: String,
    port: u16,
    dir: std::path::PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RabbitNode {
    fn start() -> Self {
        let port = free_port();
        let id = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let node = format!("kcf{id}@localhost");
        let dir = std::env::temp_dir().join(format!("kc-faults-rabbit-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        // rabbitmq-server drops to the `rabbitmq` user when started as root.
        let _ = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(&dir)
            .status();
        let node_env = Self::env_of(&node, port, &dir);
        let ok = Command::new("rabbitmq-server")
            .arg("-detached")
            .envs(node_env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("rabbitmq-server (scripts/setup.sh installs it)")
            .success();
        assert!(ok, "rabbitmq-server -detached failed for {node}");
        let me = Self { node, port, dir };
        me.ctl(&["wait", &me.dir.join("pid").to_string_lossy()]);
        me.ctl(&["await_startup"]);
        me
    }

    fn env_of(node: &str, port: u16, dir: &std::path::Path) -> Vec<(String, String)> {
        let d = dir.to_string_lossy();
        vec![
            ("RABBITMQ_NODENAME".into(), node.to_owned()),
            ("RABBITMQ_NODE_PORT".into(), port.to_string()),
            ("RABBITMQ_DIST_PORT".into(), free_port().to_string()),
            ("RABBITMQ_CONFIG_FILE".into(), format!("{d}/rabbitmq.conf")),
            ("RABBITMQ_MNESIA_BASE".into(), format!("{d}/mnesia")),
            ("RABBITMQ_LOG_BASE".into(), format!("{d}/log")),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE".into(),
                format!("{d}/enabled_plugins"),
            ),
            ("RABBITMQ_PID_FILE".into(), format!("{d}/pid")),
        ]
    }

    fn addr(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn ctl(&self, args: &[&str]) {
        let ok = Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "rabbitmqctl -n {} {args:?}", self.node);
    }

    /// Closes every connection of the worker (named `<HOSTNAME>-read` / `-write`).
    fn close_worker_connections(&self, hostname: &str) {
        let out = Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node])
            .args([
                "list_connections",
                "pid",
                "client_properties",
                "--no-table-headers",
            ])
            .output()
            .unwrap();
        let mut closed = 0;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.contains(&format!("\"{hostname}-read\""))
                || line.contains(&format!("\"{hostname}-write\""))
            {
                let pid = line.split('\t').next().unwrap();
                let _ = Command::new("rabbitmqctl")
                    .args([
                        "-q",
                        "-n",
                        &self.node,
                        "close_connection",
                        pid,
                        "fault suite",
                    ])
                    .stdout(Stdio::null())
                    .status();
                closed += 1;
            }
        }
        assert!(closed >= 2, "found the worker's connections to close");
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Applies a fault of the brokers: closes the connections of the workers named `hostnames`, stops RabbitMQ
/// for 5 s, or keeps Kafka down for `kafka_down`. A worker kill is the caller's.
async fn break_brokers(
    fault: Fault,
    rabbit: &RabbitNode,
    tansu: &mut Tansu,
    hostnames: &[&str],
    kafka_down: Duration,
) {
    match fault {
        Fault::CloseConnections => {
            for h in hostnames {
                rabbit.close_worker_connections(h);
            }
        }
        Fault::RabbitRestart => {
            rabbit.ctl(&["stop_app"]);
            tokio::time::sleep(Duration::from_secs(5)).await;
            rabbit.ctl(&["start_app"]);
            rabbit.ctl(&["await_startup"]);
        }
        Fault::KafkaRestart => {
            tansu.kill();
            tokio::time::sleep(kafka_down).await;
            tansu.spawn();
        }
        Fault::WorkerKill => unreachable!("a worker kill is not a broker fault"),
    }
}

async fn inject(
    fault: Fault,
    rabbit: &RabbitNode,
    tansu: &mut Tansu,
    worker: &mut Option<Worker>,
    env: &[(String, String)],
    hostname: &str,
) {
    eprintln!("injecting {fault:?}");
    if fault == Fault::WorkerKill {
        let mut w = worker.take().unwrap();
        w.signal("KILL");
        let _ = w.exit_code(Duration::from_secs(10)).await;
        let w2 = Worker::spawn(env);
        w2.ready().await;
        *worker = Some(w2);
    } else {
        // Kafka stays down longer than the produce step's deliveryTimeoutMs (4 s): messages in flight then
        // are rebounded, not acked.
        break_brokers(fault, rabbit, tansu, &[hostname], Duration::from_secs(6)).await;
    }
}

fn worker_env(
    rb: &Rabbit,
    api: &str,
    function: &str,
    hostname: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = rb.env(api, function);
    env.push(("HOSTNAME".into(), hostname.into()));
    env.push(("ELASTICIO_AMQP_PERSISTENT_MESSAGES".into(), "true".into()));
    for (k, v) in extra {
        env.push(((*k).into(), (*v).into()));
    }
    env
}

/// Moves every rebounded message back to the input queue (the platform's delay queue, without the delay).
async fn return_rebounds(rb: &Rabbit) -> usize {
    let mut n = 0;
    while let Ok(Some(m)) = rb
        .ch
        .basic_get(rb.q("rebound").into(), BasicGetOptions { no_ack: true })
        .await
    {
        // PROTOCOL.md §4.6: the original content with `reboundIteration`, `reboundReason` and a delay.
        let got = Got {
            data: m.delivery.data.clone(),
            props: m.delivery.properties.clone(),
            routing_key: String::new(),
        };
        assert!(
            got.header_int("reboundIteration").is_some_and(|i| i >= 1),
            "a rebound carries reboundIteration: {:?}",
            got.headers()
        );
        assert!(
            got.header_str("reboundReason").is_some(),
            "a rebound carries reboundReason"
        );
        assert!(
            m.delivery.properties.expiration().is_some(),
            "a rebound has an expiration (the platform's delay)"
        );
        let props = m.delivery.properties.clone().with_expiration("".into());
        let props = lapin::BasicProperties::default()
            .with_headers(props.headers().clone().unwrap_or_default())
            .with_delivery_mode(2);
        rb.ch
            .basic_publish(
                "".into(),
                rb.q("messages").into(),
                BasicPublishOptions::default(),
                &m.delivery.data,
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        n += 1;
    }
    n
}

/// Where the worker said each key's record went: key → every (partition, offset) reported in a data message.
type Reported = HashMap<String, Vec<(i64, i64)>>;

/// Takes every result waiting on the data queue and records where each record went.
async fn drain_results(rb: &Rabbit, reported: &mut Reported) {
    while let Some(m) = rb.next("data", Duration::ZERO).await {
        let body = m.decrypted()["body"].clone();
        let partition = body["partition"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .or_else(|| body["partition"].as_i64())
            .unwrap_or(-1);
        for r in body["records"].as_array().into_iter().flatten() {
            reported
                .entry(r["key"].as_str().unwrap_or_default().to_owned())
                .or_default()
                .push((partition, r["offset"].as_i64().unwrap_or(-1)));
        }
    }
}

/// A private RabbitMQ node and a tansu broker, started side by side.
async fn start_brokers() -> (RabbitNode, Tansu) {
    let rabbit = tokio::task::spawn_blocking(RabbitNode::start);
    let tansu = tokio::task::spawn_blocking(Tansu::start);
    (rabbit.await.unwrap(), tansu.await.unwrap())
}

async fn produce_under(fault: Fault) {
    let (rabbit, mut tansu) = start_brokers().await;
    let topic = rand_name("fp");
    let (b, t) = (tansu.brokers(), topic.clone());
    tokio::task::spawn_blocking(move || create_topic(&b, &t, 3))
        .await
        .unwrap();
    let rb = Rabbit::setup_on(&rabbit.addr(), "fp", true).await;
    let api =
        fake_api(json!({"brokers": tansu.brokers(), "topic": topic, "deliveryTimeoutMs": 4000}))
            .await;
    let hostname = rb.prefix.clone();
    let env = worker_env(
        &rb,
        &api.uri(),
        "produce",
        &hostname,
        &[
            ("ELASTICIO_RABBITMQ_PREFETCH_SAILOR", "8"),
            ("ELASTICIO_DATA_RATE_LIMIT", "100000"),
        ],
    );
    // The whole stream waits in the queue before the worker starts, so the fault lands mid-stream however
    // fast the worker is.
    let n = 2000;
    for i in 0..n {
        rb.publish_input(
            &json!({"body": {"messages": [{"key": format!("k{i}"), "value": format!("p{i}")}]}}),
            &[("messageId", &format!("in-{i}"))],
        )
        .await;
    }
    let mut worker = Some(Worker::spawn(&env));
    worker.as_ref().unwrap().ready().await;
    // Let part of the stream through, then inject the fault while inputs are still waiting.
    let deadline = Instant::now() + Duration::from_secs(60);
    while rb.count("data").await < 400 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiting = rb.count("messages").await;
    assert!(
        waiting > 0,
        "the fault must land mid-stream (inputs still waiting)"
    );
    eprintln!("injecting with {waiting} inputs waiting");
    let mut reported = Reported::new();
    inject(fault, &rabbit, &mut tansu, &mut worker, &env, &hostname).await;
    let rb = if fault == Fault::RabbitRestart {
        Rabbit::attach_on(&rabbit.addr(), &rb.prefix, true).await
    } else {
        rb
    };
    // Drain: bring rebounds back (the platform's delay queue, without the delay) until the input queue stays empty.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut rebounded = 0;
    let mut quiet = 0;
    while quiet < 10 && Instant::now() < deadline {
        rebounded += return_rebounds(&rb).await;
        drain_results(&rb, &mut reported).await;
        if rb.count("messages").await == 0 && rb.count("rebound").await == 0 {
            quiet += 1;
        } else {
            quiet = 0;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let logs = worker.as_ref().unwrap().logs();
    assert_eq!(
        worker.take().unwrap().stop().await,
        0,
        "worker logs:\n{}",
        tail(&logs)
    );
    drain_results(&rb, &mut reported).await;
    assert_eq!(
        rb.count("messages").await,
        0,
        "every input was acked (none left unacked)"
    );
    assert_eq!(rb.count("dead").await, 0, "nothing rejected");
    assert_eq!(rb.count("error").await, 0, "no error emitted");
    let read = {
        let b = tansu.brokers();
        let t = topic.clone();
        tokio::task::spawn_blocking(move || {
            read_records(&b, &t, 3, usize::MAX, Duration::from_secs(15))
        })
        .await
        .unwrap()
    };
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    for r in &read {
        *counts
            .entry(r.value.clone().unwrap_or_default())
            .or_default() += 1;
    }
    let missing: Vec<usize> = (0..n)
        .filter(|i| !counts.contains_key(format!("p{i}").as_bytes()))
        .collect();
    let unreported: Vec<usize> = (0..n)
        .filter(|i| !reported.contains_key(&format!("k{i}")))
        .collect();
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "produce under {fault:?}: {n} inputs, {} records in Kafka, {duplicates} duplicates, {} missing, {rebounded} rebounds, {} results",
        read.len(),
        missing.len(),
        reported.values().map(Vec::len).sum::<usize>()
    );
    // For a missing record: where the worker said it went, and what the broker holds there.
    let explain: Vec<String> = missing
        .iter()
        .take(10)
        .map(|i| {
            let at = reported.get(&format!("k{i}")).cloned().unwrap_or_default();
            let there: Vec<String> = at
                .iter()
                .map(|(p, o)| {
                    read.iter()
                        .find(|r| i64::from(r.partition) == *p && r.offset == *o)
                        .map(|r| {
                            String::from_utf8_lossy(r.value.as_deref().unwrap_or_default())
                                .into_owned()
                        })
                        .unwrap_or_else(|| "nothing".into())
                })
                .collect();
            format!("p{i}: reported at {at:?}, broker holds {there:?} there")
        })
        .collect();
    assert!(missing.is_empty(), "missing records: {explain:#?}");
    if fault == Fault::KafkaRestart {
        assert!(
            rebounded > 0,
            "Kafka was down longer than deliveryTimeoutMs: the messages in flight were rebounded"
        );
    }
    assert!(
        unreported.is_empty(),
        "inputs without a result message: {:?}",
        &unreported[..unreported.len().min(20)]
    );
    let _ = rb
        .ch
        .queue_purge(rb.q("data").into(), QueuePurgeOptions::default())
        .await;
    rb.teardown().await;
}

fn tail(logs: &str) -> String {
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn fill(brokers: &str, topic: &str, n: usize) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for i in 0..n {
        let (k, v) = (format!("k{i}"), format!("c{i}"));
        let part = i32::try_from(i % 3).unwrap();
        while p
            .send(BaseRecord::to(topic).partition(part).key(&k).payload(&v))
            .is_err()
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    p.flush(Duration::from_secs(30)).unwrap();
}

fn committed(brokers: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition(topic, p);
    }
    c.committed_offsets(tpl, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .map(|e| {
            (
                e.partition(),
                if let Offset::Offset(o) = e.offset() {
                    o
                } else {
                    0
                },
            )
        })
        .collect()
}

async fn consume_under(fault: Fault) {
    let (rabbit, mut tansu) = start_brokers().await;
    let (topic, group) = (rand_name("fc"), rand_name("g"));
    let n = 5000;
    {
        let (b, t) = (tansu.brokers(), topic.clone());
        tokio::task::spawn_blocking(move || {
            create_topic(&b, &t, 3);
            fill(&b, &t, n);
        })
        .await
        .unwrap();
    }
    let rb = Rabbit::setup_on(&rabbit.addr(), "fc", true).await;
    let cfg = json!({"brokers": tansu.brokers(), "topic": topic, "groupId": group, "sessionTimeoutMs": "6000"});
    let api = fake_api(cfg).await;
    let hostname = rb.prefix.clone();
    let env = worker_env(
        &rb,
        &api.uri(),
        "consume",
        &hostname,
        &[
            ("ELASTICIO_DATA_RATE_LIMIT", "100"),
            ("ELASTICIO_RATE_INTERVAL", "100"),
        ],
    );
    let mut worker = Some(Worker::spawn(&env));
    worker.as_ref().unwrap().ready().await;
    rb.publish_input(&json!({"body": {}}), &[("messageId", "tick-1")])
        .await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut positions: BTreeMap<i32, HashSet<i64>> = BTreeMap::new();
    let collect = |m: &Got,
                   seen: &mut HashMap<String, usize>,
                   positions: &mut BTreeMap<i32, HashSet<i64>>| {
        let b: Value = m.decrypted()["body"].clone();
        *seen
            .entry(b["value"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
        positions
            .entry(b["partition"].as_i64().unwrap() as i32)
            .or_default()
            .insert(b["offset"].as_i64().unwrap());
    };
    while seen.len() < 1000 {
        let m = rb
            .next("data", Duration::from_secs(60))
            .await
            .expect("stream started");
        collect(&m, &mut seen, &mut positions);
    }
    assert!(seen.len() < n, "the fault must land mid-stream");
    inject(fault, &rabbit, &mut tansu, &mut worker, &env, &hostname).await;
    let rb = if fault == Fault::RabbitRestart {
        Rabbit::attach_on(&rabbit.addr(), &rb.prefix, true).await
    } else {
        rb
    };
    if fault == Fault::WorkerKill {
        rb.publish_input(&json!({"body": {}}), &[("messageId", "tick-2")])
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < n && Instant::now() < deadline {
        if let Some(m) = rb.next("data", Duration::from_secs(5)).await {
            collect(&m, &mut seen, &mut positions);
        }
    }
    let logs = worker.as_ref().unwrap().logs();
    assert_eq!(
        worker.take().unwrap().stop().await,
        0,
        "worker logs:\n{}",
        tail(&logs)
    );
    while let Some(m) = rb.next("data", Duration::from_millis(500)).await {
        collect(&m, &mut seen, &mut positions);
    }
    let missing = (0..n)
        .filter(|i| !seen.contains_key(&format!("c{i}")))
        .count();
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    eprintln!(
        "consume under {fault:?}: {n} records, {} distinct delivered, {duplicates} duplicates, {missing} missing",
        seen.len()
    );
    assert_eq!(
        missing, 0,
        "every record reached the data queue at least once"
    );
    let c = {
        let (b, g, t) = (tansu.brokers(), group.clone(), topic.clone());
        tokio::task::spawn_blocking(move || committed(&b, &g, &t))
            .await
            .unwrap()
    };
    for (p, next) in &c {
        for o in 0..*next {
            assert!(
                positions.get(p).is_some_and(|s| s.contains(&o)),
                "partition {p}: offset {o} committed but never confirmed on AMQP"
            );
        }
    }
    rb.teardown().await;
}

#[tokio::test]
async fn produce_stream_survives_forced_connection_close() {
    produce_under(Fault::CloseConnections).await;
}

#[tokio::test]
async fn produce_stream_survives_rabbitmq_restart() {
    produce_under(Fault::RabbitRestart).await;
}

#[tokio::test]
async fn produce_stream_survives_kafka_broker_restart() {
    produce_under(Fault::KafkaRestart).await;
}

#[tokio::test]
async fn produce_stream_survives_worker_sigkill() {
    produce_under(Fault::WorkerKill).await;
}

#[tokio::test]
async fn consume_stream_survives_forced_connection_close() {
    consume_under(Fault::CloseConnections).await;
}

#[tokio::test]
async fn consume_stream_survives_rabbitmq_restart() {
    consume_under(Fault::RabbitRestart).await;
}

#[tokio::test]
async fn consume_stream_survives_kafka_broker_restart() {
    consume_under(Fault::KafkaRestart).await;
}

#[tokio::test]
async fn consume_stream_survives_worker_sigkill() {
    consume_under(Fault::WorkerKill).await;
}
