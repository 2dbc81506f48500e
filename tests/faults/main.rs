//! Fault suite (issue: reliability): streams through the worker while RabbitMQ connections are force-closed,
//! RabbitMQ is stopped and started, the Kafka broker process is killed and restarted, or the worker is killed.
//! Afterwards nothing may be missing. It runs after the main suite and one test at a time
//! (`--test-threads=1`), because it stops the machine's RabbitMQ.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::let_underscore_must_use,
    missing_debug_implementations,
    dead_code
)]

#[path = "../it/helpers.rs"]
mod helpers;

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

fn rabbitmqctl(args: &[&str]) {
    let ok = Command::new("rabbitmqctl")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "rabbitmqctl {args:?}");
}

/// Closes every connection of the worker (named `<HOSTNAME>-read` / `-write`).
fn close_worker_connections(hostname: &str) {
    let out = Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "pid",
            "client_properties",
            "-q",
            "--no-table-headers",
        ])
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.contains(&format!("\"{hostname}-read\""))
            || line.contains(&format!("\"{hostname}-write\""))
        {
            let pid = line.split('\t').next().unwrap();
            let _ = Command::new("rabbitmqctl")
                .args(["close_connection", pid, "fault suite"])
                .stdout(Stdio::null())
                .status();
        }
    }
}

async fn inject(
    fault: Fault,
    tansu: &mut Tansu,
    worker: &mut Option<Worker>,
    env: &[(String, String)],
    hostname: &str,
) {
    eprintln!("injecting {fault:?}");
    match fault {
        Fault::CloseConnections => close_worker_connections(hostname),
        Fault::RabbitRestart => {
            rabbitmqctl(&["stop_app"]);
            tokio::time::sleep(Duration::from_secs(5)).await;
            rabbitmqctl(&["start_app"]);
            rabbitmqctl(&["await_startup"]);
        }
        Fault::KafkaRestart => {
            tansu.kill();
            tokio::time::sleep(Duration::from_secs(3)).await;
            tansu.spawn();
        }
        Fault::WorkerKill => {
            let mut w = worker.take().unwrap();
            w.signal("KILL");
            let _ = w.exit_code(Duration::from_secs(10)).await;
            let w2 = Worker::spawn(env);
            w2.ready().await;
            *worker = Some(w2);
        }
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

async fn produce_under(fault: Fault) {
    let mut tansu = Tansu::start();
    let topic = rand_name("fp");
    let (b, t) = (tansu.brokers(), topic.clone());
    tokio::task::spawn_blocking(move || create_topic(&b, &t, 3))
        .await
        .unwrap();
    let rb = Rabbit::setup_opts("fp", true).await;
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
    let mut worker = Some(Worker::spawn(&env));
    worker.as_ref().unwrap().ready().await;
    let n = 2000;
    for i in 0..n {
        rb.publish_input(
            &json!({"body": {"messages": [{"key": format!("k{i}"), "value": format!("p{i}")}]}}),
            &[("messageId", &format!("in-{i}"))],
        )
        .await;
    }
    // Let part of the stream through, then inject the fault.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rb.count("data").await < 400 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    inject(fault, &mut tansu, &mut worker, &env, &hostname).await;
    let rb = if fault == Fault::RabbitRestart {
        Rabbit::attach(&rb.prefix, true).await
    } else {
        rb
    };
    // Drain: bring rebounds back until the input queue stays empty.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut rebounded = 0;
    let mut quiet = 0;
    while quiet < 10 && Instant::now() < deadline {
        rebounded += return_rebounds(&rb).await;
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
    assert_eq!(
        rb.count("messages").await,
        0,
        "every input was acked (none left unacked)"
    );
    assert_eq!(rb.count("dead").await, 0, "nothing rejected");
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
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "produce under {fault:?}: {n} inputs, {} records in Kafka, {duplicates} duplicates, {} missing, {rebounded} rebounds",
        read.len(),
        missing.len()
    );
    assert!(
        missing.is_empty(),
        "missing records: {:?}",
        &missing[..missing.len().min(20)]
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
    let mut tansu = Tansu::start();
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
    let rb = Rabbit::setup_opts("fc", true).await;
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
    inject(fault, &mut tansu, &mut worker, &env, &hostname).await;
    let rb = if fault == Fault::RabbitRestart {
        Rabbit::attach(&rb.prefix, true).await
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
#[ignore = "stops the machine's RabbitMQ: run alone with `cargo test --test faults -- --ignored --test-threads=1`"]
async fn produce_stream_survives_forced_connection_close() {
    produce_under(Fault::CloseConnections).await;
}

#[tokio::test]
#[ignore = "stops the machine's RabbitMQ: run alone with `cargo test --test faults -- --ignored --test-threads=1`"]
async fn produce_stream_survives_rabbitmq_restart() {
    produce_under(Fault::RabbitRestart).await;
}

#[tokio::test]
#[ignore = "stops the machine's RabbitMQ: run alone with `cargo test --test faults -- --ignored --test-threads=1`"]
async fn produce_stream_survives_kafka_broker_restart() {
    produce_under(Fault::KafkaRestart).await;
}

#[tokio::test]
#[ignore = "stops the machine's RabbitMQ: run alone with `cargo test --test faults -- --ignored --test-threads=1`"]
async fn produce_stream_survives_worker_sigkill() {
    produce_under(Fault::WorkerKill).await;
}

#[tokio::test]
#[ignore = "stops the machine's RabbitMQ: run alone with `cargo test --test faults -- --ignored --test-threads=1`"]
async fn consume_stream_survives_forced_connection_close() {
    consume_under(Fault::CloseConnections).await;
}

#[tokio::test]
#[ignore = "stops the machine's RabbitMQ: run alone with `cargo test --test faults -- --ignored --test-threads=1`"]
async fn consume_stream_survives_rabbitmq_restart() {
    consume_under(Fault::RabbitRestart).await;
}

#[tokio::test]
#[ignore = "stops the machine's RabbitMQ: run alone with `cargo test --test faults -- --ignored --test-threads=1`"]
async fn consume_stream_survives_kafka_broker_restart() {
    consume_under(Fault::KafkaRestart).await;
}

#[tokio::test]
#[ignore = "stops the machine's RabbitMQ: run alone with `cargo test --test faults -- --ignored --test-threads=1`"]
async fn consume_stream_survives_worker_sigkill() {
    consume_under(Fault::WorkerKill).await;
}
