//! Fault suite (issue: reliability): streams through the worker while RabbitMQ connections are force-closed,
//! RabbitMQ is stopped and started, the Kafka broker process is killed and restarted, or the worker is killed.
//! Afterwards nothing may be missing. Each case starts its own RabbitMQ node (own port and data directory)
//! and its own Apache Kafka broker (`KafkaBroker`, scripts/kafka.sh; survives a restart with its data), so the
//! faults never touch the machine's brokers and the suite runs in the normal `scripts/test.sh` run.
//!
//! Cases that restart a broker run on a multi-thread runtime: a broker restart (about 10 s on 2 cores) blocks
//! its thread (`blocking`), while the worker's log readers keep running on the other.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::let_underscore_must_use,
    missing_debug_implementations,
    dead_code
)]

mod backlog;
mod cluster;
mod consume_case;
mod group;
#[path = "../it/harness/mod.rs"]
mod harness;
mod long_run;
mod protocol;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueuePurgeOptions};
use protocol::Protocol;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    CloseConnections,
    RabbitRestart,
    KafkaRestart,
    WorkerKill,
}

/// A RabbitMQ node of the suite's own (own port, own data directory, own Erlang node name), so the
/// faults here never touch the machine's RabbitMQ and the suite runs alongside the other tests.
struct RabbitNode {
    node: String,
    port: u16,
    dir: std::path::PathBuf,
}

/// A free port below the kernel's ephemeral range, so that no outgoing connection (the tests open many) can take
/// it between this check and the node's bind, which a port from `bind(0)` allows.
fn free_port() -> u16 {
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768);
    loop {
        let port = 10_000 + (uuid::Uuid::new_v4().as_u128() % u128::from(low - 10_000)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl RabbitNode {
    /// Starts a node; a start that fails (a port taken meanwhile by another test's broker, say) is retried with
    /// new ports, a new node name and a new folder, and the third failure shows the node's log.
    fn start() -> Self {
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::try_start() {
                Ok(node) => return node,
                Err(log) => last_log = log,
            }
        }
        panic!(
            "a RabbitMQ node of the fault suite did not start three times; last log:\n{last_log}"
        );
    }

    fn try_start() -> Result<Self, String> {
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
        if me.ctl_ok(&["wait", &me.dir.join("pid").to_string_lossy()])
            && me.ctl_ok(&["await_startup"])
        {
            return Ok(me);
        }
        let mut log = String::new();
        if let Ok(entries) = std::fs::read_dir(me.dir.join("log")) {
            for e in entries.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                log.push_str(&format!("{}:\n", e.path().display()));
                for l in tail.into_iter().rev() {
                    log.push_str(l);
                    log.push('\n');
                }
            }
        }
        eprintln!(
            "RabbitMQ node {} did not start; retrying with other ports",
            me.node
        );
        Err(log) // `me` is dropped: the node is stopped and its folder removed.
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
        assert!(self.ctl_ok(args), "rabbitmqctl -n {} {args:?}", self.node);
    }

    fn ctl_ok(&self, args: &[&str]) -> bool {
        Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
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

/// Runs blocking work (a broker restart takes about 10 s, `rabbitmqctl` a second or two) without stalling the
/// test's other tasks (the worker's log readers): the cases run on the multi-thread runtime.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// Applies a fault of the brokers: closes the connections of the workers named `hostnames`, stops RabbitMQ
/// for 5 s, or kills Kafka (SIGKILL) and starts it again after `kafka_down` (the restart itself adds about
/// 10 s on 2 cores, so Kafka serves nothing for `kafka_down` + the restart). A worker kill is the caller's.
/// Returns how long the fault lasted.
pub(crate) async fn break_brokers(
    fault: Fault,
    rabbit: &RabbitNode,
    kafka: &mut KafkaBroker,
    hostnames: &[&str],
    kafka_down: Duration,
) -> Duration {
    let started = Instant::now();
    match fault {
        Fault::CloseConnections => {
            for h in hostnames {
                blocking(|| rabbit.close_worker_connections(h));
            }
        }
        Fault::RabbitRestart => {
            blocking(|| rabbit.ctl(&["stop_app"]));
            // The fault under test: RabbitMQ is down for 5 s.
            tokio::time::sleep(Duration::from_secs(5)).await;
            blocking(|| {
                rabbit.ctl(&["start_app"]);
                rabbit.ctl(&["await_startup"]);
            });
        }
        Fault::KafkaRestart => {
            blocking(|| kafka.kill());
            // The fault under test: Kafka stays down for `kafka_down` (then the restart's own time).
            tokio::time::sleep(kafka_down).await;
            blocking(|| kafka.restart());
            eprintln!(
                "Kafka was down for {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Fault::WorkerKill => unreachable!("a worker kill is not a broker fault"),
    }
    started.elapsed()
}

/// Consume's default `maxInFlight` (src/triggers/consume.rs): records emitted but not yet confirmed.
pub(crate) const MAX_IN_FLIGHT: usize = 1024;

/// The produce step's `deliveryTimeoutMs` in the fault cases.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(4);

pub(crate) async fn inject(
    fault: Fault,
    rabbit: &RabbitNode,
    kafka: &mut KafkaBroker,
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
        // Kafka stays down longer than the produce step's deliveryTimeoutMs: messages in flight then are
        // rebounded, not acked.
        let lasted = break_brokers(
            fault,
            rabbit,
            kafka,
            &[hostname],
            DELIVERY_TIMEOUT + Duration::from_secs(1),
        )
        .await;
        if fault == Fault::KafkaRestart {
            assert!(
                lasted > DELIVERY_TIMEOUT,
                "Kafka must stay down longer than deliveryTimeoutMs"
            );
        }
    }
}

/// A worker's environment for the fault cases: `HOSTNAME` names its AMQP connections (so that a fault can close
/// them), its messages are persistent.
fn worker_env(
    rb: &Rabbit,
    api: &str,
    function: &str,
    hostname: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let base = step_env(
        rb,
        api,
        function,
        &[
            ("HOSTNAME", hostname),
            ("ELASTICIO_AMQP_PERSISTENT_MESSAGES", "true"),
        ],
    );
    with_env(base, extra)
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

/// Where the worker said each key's record went: key → every (partition, offset) reported in a data message;
/// `None` where the output said the offset is unknown (`null`: Kafka confirmed the write without it).
type Reported = HashMap<String, Vec<(i64, Option<i64>)>>;

/// Records where the Produce result `body` (a data message's body) said each of its records went.
fn record_reported(body: &Value, reported: &mut Reported) {
    let partition = i64::from(partition_of(body));
    for r in body["records"].as_array().into_iter().flatten() {
        reported
            .entry(r["key"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push((partition, reported_offset(r)));
    }
}

/// A result record's `offset`: a non-negative integer, or `null` for unknown; anything else fails the test.
fn reported_offset(record: &Value) -> Option<i64> {
    match &record["offset"] {
        Value::Null => None,
        v => Some(v.as_i64().filter(|o| *o >= 0).unwrap_or_else(|| {
            panic!("a reported offset is neither an offset nor null: {record}")
        })),
    }
}

/// Takes every result waiting on the data queue and records where each record went.
async fn drain_results(rb: &Rabbit, reported: &mut Reported) {
    while let Some(m) = rb.next("data", Duration::ZERO).await {
        record_reported(&m.decrypted()["body"], reported);
    }
}

/// A numeric field of `/proc/<pid>/status` (e.g. `VmRSS:` in kB, `Threads:`), 0 when it cannot be read.
fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A private RabbitMQ node and an Apache Kafka broker, started side by side.
pub(crate) async fn start_brokers() -> (RabbitNode, KafkaBroker) {
    start_brokers_with(&[]).await
}

/// Like `start_brokers`, with extra Kafka broker properties (`key=value`).
pub(crate) async fn start_brokers_with(props: &[&str]) -> (RabbitNode, KafkaBroker) {
    let props: Vec<String> = props.iter().map(|p| (*p).to_owned()).collect();
    let rabbit = tokio::task::spawn_blocking(RabbitNode::start);
    let kafka = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = props.iter().map(String::as_str).collect();
        KafkaBroker::start(&refs)
    });
    (rabbit.await.unwrap(), kafka.await.unwrap())
}

async fn produce_under(fault: Fault) {
    let (rabbit, mut kafka) = start_brokers().await;
    let topic = rand_name("fp");
    create_topic_async(&kafka.brokers(), &topic, 3).await;
    let rb = Rabbit::setup_on(&rabbit.addr(), "fp", true).await;
    let api =
        fake_api(json!({"brokers": kafka.brokers(), "topic": topic, "deliveryTimeoutMs": DELIVERY_TIMEOUT.as_millis()}))
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
    wait_until(
        Duration::from_secs(60),
        "400 results before the fault",
        || async { (rb.count("data").await >= 400).then_some(()) },
    )
    .await;
    let waiting = rb.count("messages").await;
    assert!(
        waiting > 0,
        "the fault must land mid-stream (inputs still waiting)"
    );
    eprintln!("injecting with {waiting} inputs waiting");
    let mut reported = Reported::new();
    inject(fault, &rabbit, &mut kafka, &mut worker, &env, &hostname).await;
    let rb = if fault == Fault::RabbitRestart {
        Rabbit::attach_on(&rabbit.addr(), &rb.prefix, true).await
    } else {
        rb
    };
    // Drain: bring rebounds back (the platform's delay queue, without the delay) until the input queue stays empty.
    // Settled: ten checks in a row, 500 ms apart, find both queues empty (the counts below say what is missing).
    let deadline =
        Deadline::new(Duration::from_secs(180), "queues drained").every(Duration::from_millis(500));
    let mut rebounded = 0;
    let mut quiet = 0;
    while quiet < 10 {
        rebounded += return_rebounds(&rb).await;
        drain_results(&rb, &mut reported).await;
        if rb.count("messages").await == 0 && rb.count("rebound").await == 0 {
            quiet += 1;
        } else {
            quiet = 0;
        }
        if !deadline.tick_unless_passed().await {
            break;
        }
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
        let b = kafka.brokers();
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
                        .find(|r| i64::from(r.partition) == *p && Some(r.offset) == *o)
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

/// The worker's consumer-group log lines (assignments, revocations, commits, rebalance errors, librdkafka's
/// group and consumer-group facilities), for explaining duplicates.
pub(crate) fn group_events(logs: &str) -> Vec<String> {
    logs.lines()
        .filter(|l| {
            [
                "Partitions assigned",
                "Partitions revoked",
                "Commit on revoke",
                "Rebalance error",
                "Offsets committed",
                "Final commit",
                "\"CGRP",
                "REBALANCE",
                "ASSIGN",
                "Kafka consumer error",
                "FAIL",
                "OFFSET",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .map(str::to_owned)
        .collect()
}

pub(crate) fn tail(logs: &str) -> String {
    harness::diagnostic_logs(logs)
}

fn fill(brokers: &str, topic: &str, n: usize) {
    fill_partitions(brokers, topic, n, 3);
}

/// Writes records `k{i}`/`c{i}` for `i` in `0..n`, record `i` to partition `i % partitions`.
pub(crate) fn fill_partitions(brokers: &str, topic: &str, n: usize, partitions: usize) {
    fill_range(brokers, topic, 0..n, partitions);
}

/// Writes records `k{i}`/`c{i}` for `i` in `range`, record `i` to partition `i % partitions`.
pub(crate) fn fill_range(
    brokers: &str,
    topic: &str,
    range: std::ops::Range<usize>,
    partitions: usize,
) {
    let partitions = i32::try_from(partitions).unwrap();
    produce_bulk(brokers, topic, partitions, range, ("k", "c"), 0);
}

/// What a Consume worker emitted, as the test saw it on the data queue (single records or batches).
#[derive(Default)]
pub(crate) struct Emitted {
    /// Record value → how many times it was emitted.
    pub(crate) seen: HashMap<String, usize>,
    /// Partition → offsets emitted (confirmed on AMQP, since the test read them from the queue).
    pub(crate) positions: BTreeMap<i32, HashSet<i64>>,
    /// (partition, offset) in the order the data messages arrived.
    pub(crate) order: Vec<(i32, i64)>,
    /// Data messages read.
    pub(crate) messages: usize,
}

impl Emitted {
    /// Adds one data message: a record body, or a batch `{count, records}`.
    pub(crate) fn add(&mut self, m: &Got) {
        let body: Value = m.decrypted()["body"].clone();
        self.messages += 1;
        match body["records"].as_array() {
            Some(records) => records.iter().for_each(|r| self.add_record(r)),
            None => self.add_record(&body),
        }
    }

    fn add_record(&mut self, r: &Value) {
        *self
            .seen
            .entry(r["value"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
        let (p, o) = (partition_of(r), r["offset"].as_i64().unwrap());
        self.positions.entry(p).or_default().insert(o);
        self.order.push((p, o));
    }

    /// Reads every data message that arrives until none came for `quiet`.
    pub(crate) async fn drain(&mut self, rb: &Rabbit, quiet: Duration) {
        while let Some(m) = rb.next("data", quiet).await {
            self.add(&m);
        }
    }

    /// Records `c{i}`, `i` in `0..n`, never emitted.
    pub(crate) fn missing(&self, n: usize) -> Vec<usize> {
        (0..n)
            .filter(|i| !self.seen.contains_key(&format!("c{i}")))
            .collect()
    }

    pub(crate) fn duplicates(&self) -> usize {
        self.seen.values().map(|c| c - 1).sum()
    }

    /// Where a partition went back: each time a partition's offset is at or below the last one emitted, the
    /// member resumed there (a rebalance, a restart, or a refetch): "partition p: from offset a back to b
    /// (n records again)".
    pub(crate) fn resumes(&self) -> Vec<String> {
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        let mut out = Vec::new();
        for &(p, o) in &self.order {
            if let Some(&l) = last.get(&p)
                && o <= l
            {
                out.push(format!(
                    "partition {p}: from offset {l} back to {o} ({} records again)",
                    l - o + 1
                ));
            }
            last.insert(p, o);
        }
        out
    }

    /// Every committed offset of `topic` passes only records that were emitted (confirmed on AMQP).
    pub(crate) fn assert_commits_confirmed(&self, committed: &[Option<i64>]) {
        for (p, next) in committed.iter().enumerate() {
            let p = i32::try_from(p).unwrap();
            for o in 0..next.unwrap_or(0) {
                assert!(
                    self.positions.get(&p).is_some_and(|s| s.contains(&o)),
                    "partition {p}: offset {o} committed but never confirmed on AMQP"
                );
            }
        }
    }
}

/// The Consume stream under `fault`, its member of `protocol`'s group (a worker kill and a broker restart are
/// rebalances: those cases run with both protocols).
async fn consume_under(fault: Fault, protocol: Protocol) {
    let session = Duration::from_secs(6);
    let props = protocol.broker_props(session);
    let props: Vec<&str> = props.iter().map(String::as_str).collect();
    let (rabbit, mut kafka) = start_brokers_with(&props).await;
    let (topic, group) = (rand_name("fc"), rand_name("g"));
    // 5000 records before the fault (all of them fit in the member's prefetch queue), 1000 written after it:
    // the member must fetch again after the fault, not only empty what it had prefetched.
    let (before, n) = (5000, 6000);
    {
        let (b, t) = (kafka.brokers(), topic.clone());
        tokio::task::spawn_blocking(move || {
            create_topic(&b, &t, 3);
            fill(&b, &t, before);
        })
        .await
        .unwrap();
    }
    let rb = Rabbit::setup_on(&rabbit.addr(), "fc", true).await;
    let cfg = merge(
        json!({"brokers": kafka.brokers(), "topic": topic, "groupId": group}),
        protocol.cfg(session),
    );
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
    let mut got = Emitted::default();
    while got.seen.len() < 1000 {
        let m = rb
            .next("data", Duration::from_secs(60))
            .await
            .expect("stream started");
        got.add(&m);
    }
    assert!(got.seen.len() < before, "the fault must land mid-stream");
    let before_fault = got.order.len();
    let committed_before = {
        let (b, g, t) = (kafka.brokers(), group.clone(), topic.clone());
        tokio::task::spawn_blocking(move || committed_offsets(&b, &g, &t, 3))
            .await
            .unwrap()
    };
    inject(fault, &rabbit, &mut kafka, &mut worker, &env, &hostname).await;
    let rb = if fault == Fault::RabbitRestart {
        Rabbit::attach_on(&rabbit.addr(), &rb.prefix, true).await
    } else {
        rb
    };
    if fault == Fault::WorkerKill {
        rb.publish_input(&json!({"body": {}}), &[("messageId", "tick-2")])
            .await;
    }
    {
        let (b, t) = (kafka.brokers(), topic.clone());
        tokio::task::spawn_blocking(move || fill_range(&b, &t, before..n, 3))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while got.seen.len() < n && Instant::now() < deadline {
        if let Some(m) = rb.next("data", Duration::from_secs(5)).await {
            got.add(&m);
        }
    }
    let logs = worker.as_ref().unwrap().logs();
    assert_eq!(
        worker.take().unwrap().stop().await,
        0,
        "worker logs:\n{}",
        tail(&logs)
    );
    got.drain(&rb, Duration::from_millis(500)).await;
    let missing = got.missing(n).len();
    let duplicates = got.duplicates();
    eprintln!(
        "consume under {fault:?} ({}): {n} records, {} distinct delivered, {duplicates} duplicates, {missing} missing; {before_fault} emitted before the fault, committed then {committed_before:?}",
        protocol.name(),
        got.seen.len()
    );
    for r in got.resumes() {
        eprintln!("  {r}");
    }
    if duplicates > 0 {
        eprintln!(
            "  worker's group events:\n{}",
            group_events(&logs).join("\n")
        );
    }
    if let Ok(dir) = std::env::var("KC_FAULT_LOGS") {
        let path =
            std::path::Path::new(&dir).join(format!("consume-{fault:?}-{}.log", protocol.name()));
        let _ = std::fs::write(&path, &logs);
        eprintln!("  worker log: {}", path.display());
    }
    assert_eq!(
        missing, 0,
        "every record reached the data queue at least once"
    );
    // Records come again only if they were in flight (emitted, not confirmed) when the member lost them, or,
    // after a kill, confirmed since the last commit (auto-commit every second, at about 1000 records/s). A
    // member whose assignment was lost while Kafka was down resumes at its last confirmed offsets (before that
    // fix it resumed at the last commit before the outage and emitted every record of the outage again).
    let bound = if fault == Fault::WorkerKill {
        MAX_IN_FLIGHT + 2000
    } else {
        MAX_IN_FLIGHT
    };
    assert!(
        duplicates <= bound,
        "{duplicates} duplicates, more than the {bound} that can be in flight or uncommitted: {:#?}\n{}",
        got.resumes(),
        group_events(&logs).join("\n")
    );
    let c = {
        let (b, g, t) = (kafka.brokers(), group.clone(), topic.clone());
        tokio::task::spawn_blocking(move || committed_offsets(&b, &g, &t, 3))
            .await
            .unwrap()
    };
    got.assert_commits_confirmed(&c);
    rb.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_stream_survives_forced_connection_close() {
    produce_under(Fault::CloseConnections).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_stream_survives_rabbitmq_restart() {
    produce_under(Fault::RabbitRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_stream_survives_kafka_broker_restart() {
    produce_under(Fault::KafkaRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_stream_survives_worker_sigkill() {
    produce_under(Fault::WorkerKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_stream_survives_forced_connection_close() {
    consume_under(Fault::CloseConnections, Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_stream_survives_rabbitmq_restart() {
    consume_under(Fault::RabbitRestart, Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_stream_survives_kafka_broker_restart_classic() {
    consume_under(Fault::KafkaRestart, Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_stream_survives_kafka_broker_restart_consumer() {
    consume_under(Fault::KafkaRestart, Protocol::Consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_stream_survives_worker_sigkill_classic() {
    consume_under(Fault::WorkerKill, Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_stream_survives_worker_sigkill_consumer() {
    consume_under(Fault::WorkerKill, Protocol::Consumer).await;
}
