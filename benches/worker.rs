//! Benchmark of the worker against the transport's own limits, in one run:
//!
//! - Produce path: N encrypted flow messages on the worker's queue → results on the data queue; messages/s,
//!   records/s, latency p50/p99 (publish → result) for (a) 1 record/message prefetch 1, (b) 1 record/message
//!   prefetch 64, (c) 100 records/message prefetch 8.
//! - Consume path: a topic pre-filled with N records of 1 KB → time until N data messages are on the queue, with
//!   batch size 1 and 100.
//! - Limits: a plain lapin loop doing the same AMQP work without Kafka (consume + publish-with-confirm + ack), plain
//!   publish-with-confirm, and a plain rdkafka producer/consumer on the same broker.
//! - Peak RSS and CPU seconds of the worker process per case, and its idle RSS.
//!
//! Brokers: Apache Kafka 4.4 (`kafka`): the broker at `KC_KAFKA_BROKERS` when that is set, else a broker of the
//! bench's own started with `scripts/kafka.sh start` and stopped at the end; and, for comparison, librdkafka's mock
//! cluster in the bench process (`mock`: no disk, no network stack between processes, so an upper bound for what
//! the worker's own code allows). Topics the bench creates on Kafka are deleted at the end. The data throttle is
//! raised (`ELASTICIO_DATA_RATE_LIMIT=1000000`): the platform default of 10 per 100 ms would measure only the
//! throttle.
//!
//! Run: `cargo bench --bench worker -- [--messages N] [--json target/bench.json] [--quick] [--only kafka|mock]
//! [--cases a,b,c,c1,c100,limits,ae,be,ce]`: `ae`, `be`, `ce` are (a), (b), (c) with `deliveryGuarantee`
//! exactlyOnce, on Apache Kafka only, and run by default too. Profiling: `BENCH_PERF=1` (perf, see `Profiler`) or
//! `BENCH_WORKER_WRAP="valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=target/cg.%p"`.
//! Instruction counts per message and their regression check: `--instructions` (see `instructions.rs`; a whole
//! run without `--cases`/`--only` ends with it), `--update-baseline` to accept new counts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::let_underscore_must_use,
    missing_debug_implementations
)]

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use kafka_component::platform::crypto::Crypto;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[path = "worker/chain.rs"]
mod chain;
#[path = "worker/instructions.rs"]
mod instructions;

const PASSWORD: &str = "bench-password";

/// The profiler command the worker runs under: `BENCH_WORKER_WRAP`, or the one the instruction check sets.
static WRAP: Mutex<Option<String>> = Mutex::new(None);

fn set_wrap(wrap: Option<String>) {
    *WRAP.lock().unwrap() = wrap;
}

fn wrap() -> Option<String> {
    WRAP.lock()
        .unwrap()
        .clone()
        .or_else(|| std::env::var("BENCH_WORKER_WRAP").ok())
}
const IV: &str = "bench-iv-16bytes";

#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    case: String,
    broker: String,
    messages: usize,
    records: usize,
    seconds: f64,
    msgs_per_s: f64,
    records_per_s: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    peak_rss_mb: Option<f64>,
    idle_rss_mb: Option<f64>,
    cpu_s: Option<f64>,
}

fn amqp_addr() -> String {
    std::env::var("AMQP_ADDR").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn uniq(p: &str) -> String {
    format!("bench-{p}-{}", uuid::Uuid::new_v4().simple())
}

/// Process statistics from /proc: (VmHWM MB, VmRSS MB, utime+stime s).
fn proc_stats(pid: u32) -> Option<(f64, f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((
        kb("VmHWM:")? / 1024.0,
        kb("VmRSS:")? / 1024.0,
        ticks / 100.0,
    ))
}

/// `BENCH_SMAPS=DIR` keeps the idle worker's `/proc/PID/smaps` (and thread list) per case, for the RSS breakdown.
fn save_smaps(pid: u32, case: &str) {
    let Ok(dir) = std::env::var("BENCH_SMAPS") else {
        return;
    };
    let name: String = case
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let _ = std::fs::create_dir_all(&dir);
    for what in ["smaps", "status"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/{what}")) {
            let _ = std::fs::write(format!("{dir}/{name}.{what}"), text);
        }
    }
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .collect();
    let _ = std::fs::write(format!("{dir}/{name}.threads"), threads.join("\n"));
}

/// One step's AMQP topology (as the platform would declare it).
struct Topo {
    ch: Channel,
    prefix: String,
}

impl Topo {
    async fn new(conn: &Connection) -> Self {
        let ch = conn.create_channel().await.unwrap();
        let prefix = uniq("q");
        ch.exchange_declare(
            format!("{prefix}:x").into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        for k in ["in", "data", "error", "rebound", "snapshot"] {
            let mut a = FieldTable::default();
            a.insert("x-expires".into(), AMQPValue::LongInt(600_000));
            ch.queue_declare(
                format!("{prefix}:{k}").into(),
                QueueDeclareOptions::default(),
                a,
            )
            .await
            .unwrap();
            if k != "in" {
                ch.queue_bind(
                    format!("{prefix}:{k}").into(),
                    format!("{prefix}:x").into(),
                    format!("{prefix}:{k}").into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            }
        }
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Self { ch, prefix }
    }

    fn q(&self, k: &str) -> String {
        format!("{}:{k}", self.prefix)
    }

    async fn drop_all(&self) {
        for k in ["in", "data", "error", "rebound", "snapshot"] {
            let _ = self
                .ch
                .queue_delete(self.q(k).into(), QueueDeleteOptions::default())
                .await;
        }
    }

    /// Publishes payloads to the input queue with pipelined confirms; returns the publish instants by id.
    async fn publish_inputs(
        &self,
        payloads: Vec<Vec<u8>>,
        times: Arc<Mutex<HashMap<String, Instant>>>,
    ) {
        let mut pending = FuturesUnordered::new();
        for (i, p) in payloads.into_iter().enumerate() {
            let mut h = FieldTable::default();
            h.insert(
                "messageId".into(),
                AMQPValue::LongString(format!("m{i}").into()),
            );
            times
                .lock()
                .unwrap()
                .insert(format!("m{i}"), Instant::now());
            pending.push(
                self.ch
                    .basic_publish(
                        "".into(),
                        self.q("in").into(),
                        BasicPublishOptions::default(),
                        &p,
                        BasicProperties::default().with_headers(h),
                    )
                    .await
                    .unwrap(),
            );
            if pending.len() > 256 {
                pending.next().await.unwrap().unwrap();
            }
        }
        while let Some(c) = pending.next().await {
            c.unwrap();
        }
    }
}

struct WorkerProc {
    child: tokio::process::Child,
    ready: tokio::sync::watch::Receiver<bool>,
}

impl WorkerProc {
    fn spawn(env: Vec<(String, String)>) -> Self {
        // BENCH_WORKER_WRAP runs the worker under a profiler, e.g.
        // `valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=target/cg.%p`
        // (collection is switched on for the measured part only, see `Profiler`).
        let wrap: Vec<String> = wrap()
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let bin = env!("CARGO_BIN_EXE_kafka-component");
        let mut cmd = match wrap.split_first() {
            Some((prog, args)) => {
                let mut c = tokio::process::Command::new(prog);
                c.args(args).arg(bin);
                c
            }
            None => tokio::process::Command::new(bin),
        };
        cmd.env_clear();
        if !wrap.is_empty() {
            cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        }
        let mut child = cmd
            .envs(env)
            .env(
                "LOG_LEVEL",
                std::env::var("BENCH_WORKER_LOG")
                    .unwrap_or_else(|_| "warn,kafka_component::platform::worker=info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(if std::env::var("BENCH_WORKER_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let out = child.stdout.take().unwrap();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if std::env::var("BENCH_WORKER_LOG").is_ok() {
                    eprintln!("worker: {l}");
                }
                if l.contains("Worker ready") {
                    let _ = tx.send(true);
                }
            }
        });
        Self { child, ready: rx }
    }

    async fn ready(&mut self) {
        let wait = if wrap().is_some() { 300 } else { 30 };
        tokio::time::timeout(Duration::from_secs(wait), self.ready.wait_for(|r| *r))
            .await
            .expect("worker ready")
            .unwrap();
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

/// Profiles the measured part of a case: `BENCH_PERF=1` samples the worker with `perf record -e cpu-clock -g`
/// into `target/perf.<case>.data`; under a callgrind `BENCH_WORKER_WRAP` (start it with `--instr-atstart=no`)
/// instrumentation is switched on for the measured part and dumped into a numbered file at its end.
struct Profiler {
    pid: u32,
    perf: Option<std::process::Child>,
    callgrind: bool,
}

impl Profiler {
    fn start(pid: u32, case: &str) -> Self {
        let callgrind = wrap().is_some_and(|w| w.contains("callgrind"));
        if callgrind {
            let _ = std::process::Command::new("callgrind_control")
                .args(["-i", "on", &pid.to_string()])
                .stdout(Stdio::null())
                .status();
            let _ = std::process::Command::new("callgrind_control")
                .args(["-z", &pid.to_string()])
                .stdout(Stdio::null())
                .status();
        }
        let perf = std::env::var("BENCH_PERF").is_ok().then(|| {
            let name: String = case
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            std::process::Command::new("perf")
                .args(["record", "-q", "-e", "cpu-clock", "-g", "-p"])
                .arg(pid.to_string())
                .arg("-o")
                .arg(format!("target/perf.{name}.data"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        });
        Self {
            pid,
            perf,
            callgrind,
        }
    }

    fn stop(self) {
        if self.callgrind {
            let _ = std::process::Command::new("callgrind_control")
                .args(["-d", &self.pid.to_string()])
                .stdout(Stdio::null())
                .status();
        }
        if let Some(mut perf) = self.perf {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &perf.id().to_string()])
                .status();
            let _ = perf.wait();
        }
    }
}

fn worker_env(topo: &Topo, api: &str, function: &str, prefetch: u16) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("FLOW_ID", "f"),
        ("EXEC_ID", "e"),
        ("STEP_ID", "s"),
        ("CONTAINER_ID", "c"),
        ("WORKSPACE_ID", "w"),
        ("USER_ID", "u"),
        ("COMP_ID", "k"),
        ("API_USERNAME", "u"),
        ("API_KEY", "k"),
        ("MESSAGE_CRYPTO_PASSWORD", PASSWORD),
        ("MESSAGE_CRYPTO_IV", IV),
        ("DATA_RATE_LIMIT", "1000000"),
    ]
    .iter()
    .map(|(k, v)| (format!("ELASTICIO_{k}"), (*v).to_owned()))
    .collect();
    env.extend([
        ("ELASTICIO_FUNCTION".into(), function.into()),
        ("ELASTICIO_API_URI".into(), api.into()),
        ("ELASTICIO_AMQP_URI".into(), amqp_addr()),
        ("ELASTICIO_LISTEN_MESSAGES_ON".into(), topo.q("in")),
        (
            "ELASTICIO_PUBLISH_MESSAGES_TO".into(),
            format!("{}:x", topo.prefix),
        ),
        ("ELASTICIO_DATA_ROUTING_KEY".into(), topo.q("data")),
        ("ELASTICIO_ERROR_ROUTING_KEY".into(), topo.q("error")),
        ("ELASTICIO_REBOUND_ROUTING_KEY".into(), topo.q("rebound")),
        ("ELASTICIO_SNAPSHOT_ROUTING_KEY".into(), topo.q("snapshot")),
        (
            "ELASTICIO_RABBITMQ_PREFETCH_SAILOR".into(),
            prefetch.to_string(),
        ),
    ]);
    env
}

async fn fake_api(config: Value) -> MockServer {
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tasks/f/steps/s"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "s", "config": config, "snapshot": {}})),
        )
        .mount(&api)
        .await;
    api
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    Some(sorted[idx])
}

/// Produce path: `n` messages of `r` records each.
/// Shape of a produce case: messages, records per message, prefetch, and `deliveryGuarantee` exactlyOnce.
#[derive(Clone, Copy)]
struct Shape {
    n: usize,
    r: usize,
    prefetch: u16,
    eos: bool,
    /// `traceHeaders` (five headers on every record; on by default).
    trace: bool,
}

async fn produce_case(
    conn: &Connection,
    brokers: &str,
    topic: &str,
    (name, broker): (&str, &str),
    Shape {
        n,
        r,
        prefetch,
        eos,
        trace,
    }: Shape,
) -> Row {
    let topo = Topo::new(conn).await;
    let mut cfg = json!({"brokers": brokers, "topic": topic});
    if eos {
        // One transaction per message.
        cfg["deliveryGuarantee"] = json!("exactlyOnce");
    }
    if !trace {
        cfg["traceHeaders"] = json!("false");
    }
    let api = fake_api(cfg).await;
    let mut env = worker_env(&topo, &api.uri(), "produce", prefetch);
    if eos {
        // A container id of its own: no earlier run's transactional id is fenced.
        env.retain(|(k, _)| k != "ELASTICIO_CONTAINER_ID");
        env.push(("ELASTICIO_CONTAINER_ID".into(), uniq("c")));
    }
    let mut w = WorkerProc::spawn(env);
    w.ready().await;
    // Warm-up message (producer creation, metadata) outside the measurement.
    let crypto = Crypto::new(PASSWORD, IV).unwrap();
    let warm = crypto.encode(
        &serde_json::to_vec(&json!({"body": {"messages": [{"value": "warm"}]}})).unwrap(),
        1,
    );
    topo.publish_inputs(vec![warm], Arc::default()).await;
    let cons_ch = conn.create_channel().await.unwrap();
    cons_ch
        .basic_qos(2000, BasicQosOptions::default())
        .await
        .unwrap();
    let mut results = cons_ch
        .basic_consume(
            topo.q("data").into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    results.next().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, idle_rss, cpu0) = proc_stats(w.pid()).unwrap_or_default();
    save_smaps(w.pid(), &format!("{broker} {name}"));
    let value = "x".repeat(100);
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let recs: Vec<Value> = (0..r)
                .map(|j| json!({"key": format!("k{}", (i * r + j) % 1000), "value": value}))
                .collect();
            crypto.encode(
                &serde_json::to_vec(&json!({"body": {"messages": recs}})).unwrap(),
                1,
            )
        })
        .collect();
    let times: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let profiler = Profiler::start(w.pid(), &format!("{broker} {name}"));
    let started = Instant::now();
    // Closed loop: at most `prefetch` messages outstanding, so latency is the worker's service time, not the
    // time a message waited in the queue behind the others.
    let window = Arc::new(tokio::sync::Semaphore::new(usize::from(prefetch)));
    let publisher = {
        let (times, ch, q, window) = (
            Arc::clone(&times),
            topo.ch.clone(),
            topo.q("in"),
            Arc::clone(&window),
        );
        tokio::spawn(async move {
            for (i, p) in payloads.into_iter().enumerate() {
                window.acquire().await.unwrap().forget();
                let mut h = FieldTable::default();
                h.insert(
                    "messageId".into(),
                    AMQPValue::LongString(format!("m{i}").into()),
                );
                times
                    .lock()
                    .unwrap()
                    .insert(format!("m{i}"), Instant::now());
                let _confirm = ch
                    .basic_publish(
                        "".into(),
                        q.as_str().into(),
                        BasicPublishOptions::default(),
                        &p,
                        BasicProperties::default().with_headers(h),
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let mut remaining: HashMap<String, usize> = HashMap::new();
    let mut latencies = Vec::with_capacity(n);
    let mut done_records = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while done_records < n * r && Instant::now() < deadline {
        let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(30), results.next()).await
        else {
            break;
        };
        let parent = d
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("parentMessageId").cloned());
        let Some(AMQPValue::LongString(parent)) = parent else {
            continue;
        };
        let parent = String::from_utf8_lossy(parent.as_bytes()).into_owned();
        let body: Value = serde_json::from_slice(&crypto.decode(&d.data, 1).unwrap()).unwrap();
        let k = body["body"]["records"].as_array().map_or(0, Vec::len);
        done_records += k;
        let left = remaining.entry(parent.clone()).or_insert(r);
        *left = left.saturating_sub(k);
        if *left == 0
            && let Some(t0) = times.lock().unwrap().get(&parent)
        {
            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
            window.add_permits(1);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    publisher.await.unwrap();
    let (peak, _, cpu1) = proc_stats(w.pid()).unwrap_or_default();
    profiler.stop();
    w.stop().await;
    topo.drop_all().await;
    latencies.sort_by(f64::total_cmp);
    Row {
        case: name.into(),
        broker: broker.into(),
        messages: latencies.len(),
        records: done_records,
        seconds: secs,
        msgs_per_s: latencies.len() as f64 / secs,
        records_per_s: done_records as f64 / secs,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        peak_rss_mb: Some(peak),
        idle_rss_mb: Some(idle_rss),
        cpu_s: Some(cpu1 - cpu0),
    }
}

fn fill_topic(brokers: &str, topic: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let value = "v".repeat(1024);
    rt.block_on(async {
        let mut pending = FuturesUnordered::new();
        for i in 0..n {
            let key = format!("k{i}");
            pending.push(
                p.send_result(FutureRecord::to(topic).key(&key).payload(&value))
                    .map_err(|(e, _)| e)
                    .unwrap(),
            );
            if pending.len() >= 10_000 {
                pending.next().await.unwrap().unwrap().unwrap();
            }
        }
        while let Some(r) = pending.next().await {
            r.unwrap().unwrap();
        }
    });
}

/// Consume path: a topic with `n` records → all data messages.
async fn consume_case(
    conn: &Connection,
    brokers: &str,
    topic: &str,
    name: &str,
    broker: &str,
    n: usize,
    batch: usize,
) -> Row {
    let topo = Topo::new(conn).await;
    let mut cfg = json!({"brokers": brokers, "topic": topic, "groupId": uniq("g"), "batchSize": batch.to_string()});
    if let Ok(v) = std::env::var("BENCH_MAX_IN_FLIGHT") {
        cfg["maxInFlight"] = json!(v);
    }
    let api = fake_api(cfg).await;
    let mut w = WorkerProc::spawn(worker_env(&topo, &api.uri(), "consume", 1));
    w.ready().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, idle_rss, cpu0) = proc_stats(w.pid()).unwrap_or_default();
    save_smaps(w.pid(), &format!("{broker} {name}"));
    let crypto = Crypto::new(PASSWORD, IV).unwrap();
    let cons_ch = conn.create_channel().await.unwrap();
    cons_ch
        .basic_qos(2000, BasicQosOptions::default())
        .await
        .unwrap();
    let mut results = cons_ch
        .basic_consume(
            topo.q("data").into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let profiler = Profiler::start(w.pid(), &format!("{broker} {name}"));
    let started = Instant::now();
    topo.publish_inputs(vec![crypto.encode(br#"{"body":{}}"#, 1)], Arc::default())
        .await;
    let (mut records, mut messages) = (0, 0);
    let mut first = None;
    while records < n {
        let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_secs(30), results.next()).await
        else {
            break;
        };
        first.get_or_insert_with(Instant::now);
        messages += 1;
        if batch == 1 {
            records += 1;
        } else {
            let body: Value = serde_json::from_slice(&crypto.decode(&d.data, 1).unwrap()).unwrap();
            records += body["body"]["count"].as_u64().unwrap_or(0) as usize;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // Rates exclude joining the group (tick → first record), reported as `first_ms`.
    let first = first.unwrap_or(started);
    let steady = first.elapsed().as_secs_f64().max(1e-6);
    let (peak, _, cpu1) = proc_stats(w.pid()).unwrap_or_default();
    profiler.stop();
    w.stop().await;
    topo.drop_all().await;
    Row {
        case: name.into(),
        broker: broker.into(),
        messages,
        records,
        seconds: secs,
        msgs_per_s: messages as f64 / steady,
        records_per_s: records as f64 / steady,
        p50_ms: Some((first - started).as_secs_f64() * 1000.0),
        p99_ms: None,
        peak_rss_mb: Some(peak),
        idle_rss_mb: Some(idle_rss),
        cpu_s: Some(cpu1 - cpu0),
    }
}

/// Limit 1: the same AMQP work without Kafka: consume (prefetch 64) → publish with confirm → ack.
async fn lapin_loop_limit(conn: &Connection, n: usize) -> Row {
    let topo = Topo::new(conn).await;
    let crypto = Crypto::new(PASSWORD, IV).unwrap();
    let payload = crypto.encode(
        &serde_json::to_vec(&json!({"body": {"messages": [{"value": "x".repeat(100)}]}})).unwrap(),
        1,
    );
    let worker_conn = Connection::connect(&amqp_addr(), ConnectionProperties::default())
        .await
        .unwrap();
    let in_ch = worker_conn.create_channel().await.unwrap();
    in_ch
        .basic_qos(64, BasicQosOptions::default())
        .await
        .unwrap();
    let out_ch = worker_conn.create_channel().await.unwrap();
    out_ch
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut consumer = in_ch
        .basic_consume(
            topo.q("in").into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (exchange, rk) = (format!("{}:x", topo.prefix), topo.q("data"));
    let looper = tokio::spawn(async move {
        let mut handled = 0;
        // Every ack is awaited before the connection closes (the last results arrive before their acks are sent).
        let mut acks = Vec::with_capacity(n);
        while handled < n {
            let d = consumer.next().await.unwrap().unwrap();
            let (out_ch, exchange, rk) = (out_ch.clone(), exchange.clone(), rk.clone());
            let c = crypto.clone();
            acks.push(tokio::spawn(async move {
                let plain = c.decode(&d.data, 1).unwrap();
                let out = c.encode(&plain, 1);
                out_ch
                    .basic_publish(
                        exchange.as_str().into(),
                        rk.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        },
                        &out,
                        BasicProperties::default(),
                    )
                    .await
                    .unwrap()
                    .await
                    .unwrap();
                d.acker.ack(BasicAckOptions::default()).await.unwrap();
            }));
            handled += 1;
        }
        for a in acks {
            a.await.unwrap();
        }
    });
    let cons_ch = conn.create_channel().await.unwrap();
    cons_ch
        .basic_qos(2000, BasicQosOptions::default())
        .await
        .unwrap();
    let mut results = cons_ch
        .basic_consume(
            topo.q("data").into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let t = Topo {
        ch: topo.ch.clone(),
        prefix: topo.prefix.clone(),
    };
    let pubs =
        tokio::spawn(async move { t.publish_inputs(vec![payload; n], Arc::default()).await });
    for _ in 0..n {
        results.next().await.unwrap().unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    pubs.await.unwrap();
    looper.await.unwrap();
    let _ = worker_conn.close(200, "bye".into()).await;
    topo.drop_all().await;
    Row {
        case: "limit: lapin consume+publish-with-confirm+ack, prefetch 64".into(),
        broker: "-".into(),
        messages: n,
        records: n,
        seconds: secs,
        msgs_per_s: n as f64 / secs,
        records_per_s: n as f64 / secs,
        p50_ms: None,
        p99_ms: None,
        peak_rss_mb: None,
        idle_rss_mb: None,
        cpu_s: None,
    }
}

/// Limit 2: publish-with-confirm, sequential and with 512 in flight.
async fn lapin_publish_limit(conn: &Connection, n: usize, window: usize) -> Row {
    let topo = Topo::new(conn).await;
    let payload = vec![b'x'; 1400];
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    for _ in 0..n {
        pending.push(
            topo.ch
                .basic_publish(
                    format!("{}:x", topo.prefix).into(),
                    topo.q("data").into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &payload,
                    BasicProperties::default(),
                )
                .await
                .unwrap(),
        );
        if pending.len() >= window {
            pending.next().await.unwrap().unwrap();
        }
    }
    while let Some(c) = pending.next().await {
        c.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    topo.drop_all().await;
    Row {
        case: format!("limit: lapin publish-with-confirm, {window} in flight"),
        broker: "-".into(),
        messages: n,
        records: n,
        seconds: secs,
        msgs_per_s: n as f64 / secs,
        records_per_s: n as f64 / secs,
        p50_ms: None,
        p99_ms: None,
        peak_rss_mb: None,
        idle_rss_mb: None,
        cpu_s: None,
    }
}

/// Limit 3: plain rdkafka producer (100-byte records to `topic`) and consumer (1 KB records of `consume_topic`).
fn rdkafka_limits(
    brokers: &str,
    broker: &str,
    n: usize,
    (topic, consume_topic): (&str, &str),
) -> Vec<Row> {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "1")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let value = "x".repeat(100);
    rt.block_on(async {
        let mut pending = FuturesUnordered::new();
        for i in 0..n {
            let key = format!("k{}", i % 1000);
            pending.push(
                p.send_result(FutureRecord::to(topic).key(&key).payload(&value))
                    .map_err(|(e, _)| e)
                    .unwrap(),
            );
            if pending.len() >= 10_000 {
                pending.next().await.unwrap().unwrap().unwrap();
            }
        }
        while let Some(r) = pending.next().await {
            r.unwrap().unwrap();
        }
    });
    let psecs = started.elapsed().as_secs_f64();
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", uniq("g"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(consume_topic), Duration::from_secs(10))
        .unwrap();
    let parts = md.topics()[0].partitions().len() as i32;
    let mut tpl = TopicPartitionList::new();
    for part in 0..parts {
        tpl.add_partition_offset(consume_topic, part, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let started = Instant::now();
    let mut got = 0;
    while got < n && started.elapsed() < Duration::from_secs(120) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let _ = m.payload();
            got += 1;
        }
    }
    let csecs = started.elapsed().as_secs_f64();
    let rows = vec![
        Row {
            case: "limit: rdkafka producer (100 B records)".into(),
            broker: broker.into(),
            messages: n,
            records: n,
            seconds: psecs,
            msgs_per_s: n as f64 / psecs,
            records_per_s: n as f64 / psecs,
            p50_ms: None,
            p99_ms: None,
            peak_rss_mb: None,
            idle_rss_mb: None,
            cpu_s: None,
        },
        Row {
            case: "limit: rdkafka consumer (1 KB records)".into(),
            broker: broker.into(),
            messages: got,
            records: got,
            seconds: csecs,
            msgs_per_s: got as f64 / csecs,
            records_per_s: got as f64 / csecs,
            p50_ms: None,
            p99_ms: None,
            peak_rss_mb: None,
            idle_rss_mb: None,
            cpu_s: None,
        },
    ];
    rows
}

/// A new 3-partition topic named after `prefix`: on the mock cluster when given, else on Apache Kafka at `brokers`
/// (remembered in `kafka_topics`, deleted at the end).
async fn bench_topic(
    mock: Option<&MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
    brokers: &str,
    prefix: &str,
    kafka_topics: &mut Vec<String>,
) -> String {
    let topic = uniq(prefix);
    if let Some(m) = mock {
        m.create_topic(&topic, 3, 1).unwrap();
    } else {
        let (b, t) = (brokers.to_owned(), topic.clone());
        tokio::task::spawn_blocking(move || create_topic(&b, &t, 3))
            .await
            .unwrap();
        kafka_topics.push(topic.clone());
    }
    topic
}

/// Creates a topic on Apache Kafka (replication 1) and waits until metadata shows a leader for every partition. (The
/// mock cluster's topics are made with `MockCluster::create_topic`.)
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
    let created = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .unwrap();
    assert!(
        created.iter().all(Result::is_ok),
        "create {topic}: {created:?}"
    );
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|md| {
                md.topics().iter().find(|t| t.name() == topic).map(|t| {
                    t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            })
            .unwrap_or(false);
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} on {brokers} has no leaders after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deletes the bench's topics (best effort).
fn delete_topics(brokers: &str, topics: &[String]) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    if topics.is_empty() {
        return;
    }
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    let _ = rt.block_on(admin.delete_topics(
        &refs,
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ));
}

/// Apache Kafka for the bench: the broker at `KC_KAFKA_BROKERS` when set, else one of its own
/// (`scripts/kafka.sh start`), stopped when this is dropped.
struct Kafka {
    brokers: String,
    /// `KC_KAFKA_PID` and `KC_KAFKA_DIR` of the bench's own broker.
    own: Option<(String, String)>,
}

impl Kafka {
    fn start() -> Self {
        if let Ok(brokers) = std::env::var("KC_KAFKA_BROKERS") {
            println!("Apache Kafka: {brokers} (KC_KAFKA_BROKERS)");
            return Self { brokers, own: None };
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh");
        let out = std::process::Command::new(script)
            .arg("start")
            .env_remove("KC_KAFKA_PROPS")
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/kafka.sh");
        assert!(
            out.status.success(),
            "`scripts/kafka.sh start` failed (its messages are above); scripts/setup.sh installs Java and Maven"
        );
        let vars: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let brokers = vars["KC_KAFKA_BROKERS"].clone();
        println!(
            "Apache Kafka: {brokers} (a broker of the bench's own, {})",
            vars["KC_KAFKA_DIR"]
        );
        Self {
            brokers,
            own: Some((vars["KC_KAFKA_PID"].clone(), vars["KC_KAFKA_DIR"].clone())),
        }
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some((pid, dir)) = &self.own {
            let _ = std::process::Command::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/kafka.sh"
            ))
            .arg("stop")
            .env("KC_KAFKA_PID", pid)
            .env("KC_KAFKA_DIR", dir)
            .env_remove("KC_KAFKA_CLUSTER_DIR")
            .env_remove("KC_KAFKA_CLUSTER_PIDS")
            .status();
        }
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it: do nothing then.
    if !args.iter().any(|a| a == "--bench") {
        println!("benchmark skipped (run it with `cargo bench --bench worker`)");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let n: usize = arg(&args, "--messages")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 500 } else { 5000 });
    let json_path = arg(&args, "--json").unwrap_or_else(|| "target/bench.json".into());
    let conn = Connection::connect(&amqp_addr(), ConnectionProperties::default())
        .await
        .expect("RabbitMQ (scripts/setup.sh)");
    let update = args.iter().any(|a| a == "--update-baseline");
    if args.iter().any(|a| a == "--instructions") || update {
        let ok = instructions::check(&conn, update).await;
        let _ = conn.close(200, "bye".into()).await;
        std::process::exit(if ok { 0 } else { 1 });
    }
    let mut rows = Vec::new();
    // `--cases a,b,c,c1,c100,limits` runs only those cases (for profiling); default all.
    let cases = arg(&args, "--cases");
    let want = |c: &str| {
        cases
            .as_deref()
            .is_none_or(|l| l.split(',').any(|x| x == c))
    };

    if want("limits") {
        rows.push(lapin_loop_limit(&conn, n).await);
        rows.push(lapin_publish_limit(&conn, n, 1).await);
        rows.push(lapin_publish_limit(&conn, n, 512).await);
    }

    let only = arg(&args, "--only");
    let measure = |b: &str| only.as_deref().is_none_or(|o| o == b);
    let kafka = if measure("kafka") {
        Some(tokio::task::spawn_blocking(Kafka::start).await.unwrap())
    } else {
        None
    };
    let mock = measure("mock").then(|| MockCluster::new(1).unwrap());
    let mut brokers: Vec<(String, String)> = Vec::new();
    if let Some(k) = &kafka {
        brokers.push(("kafka".into(), k.brokers.clone()));
    }
    if let Some(m) = &mock {
        brokers.push(("mock".into(), m.bootstrap_servers()));
    }
    assert!(!brokers.is_empty(), "--only takes kafka or mock");
    // Topics made on Apache Kafka, deleted at the end.
    let mut kafka_topics: Vec<String> = Vec::new();
    for (bname, b) in &brokers {
        let topic = bench_topic(
            mock.as_ref().filter(|_| bname == "mock"),
            b,
            "produce",
            &mut kafka_topics,
        )
        .await;
        if want("a") {
            rows.push(
                produce_case(
                    &conn,
                    b,
                    &topic,
                    ("produce (a) 1 rec/msg, prefetch 1", bname),
                    Shape {
                        n: n / 5,
                        r: 1,
                        prefetch: 1,
                        eos: false,
                        trace: true,
                    },
                )
                .await,
            );
        }
        if want("b") {
            rows.push(
                produce_case(
                    &conn,
                    b,
                    &topic,
                    ("produce (b) 1 rec/msg, prefetch 64", bname),
                    Shape {
                        n,
                        r: 1,
                        prefetch: 64,
                        eos: false,
                        trace: true,
                    },
                )
                .await,
            );
        }
        if want("c") {
            rows.push(
                produce_case(
                    &conn,
                    b,
                    &topic,
                    ("produce (c) 100 rec/msg, prefetch 8", bname),
                    Shape {
                        n: (n / 10).max(10),
                        r: 100,
                        prefetch: 8,
                        eos: false,
                        trace: true,
                    },
                )
                .await,
            );
        }
        // The same cases with `deliveryGuarantee` exactlyOnce (a transaction per message), on Apache Kafka
        // only: the mock cluster's transactions are not the real thing.
        let eos_cases = [
            (
                "ae",
                "produce (a) 1 rec/msg, prefetch 1, exactlyOnce",
                n / 5,
                1,
                1,
            ),
            (
                "be",
                "produce (b) 1 rec/msg, prefetch 64, exactlyOnce",
                n,
                1,
                64,
            ),
            (
                "ce",
                "produce (c) 100 rec/msg, prefetch 8, exactlyOnce",
                (n / 10).max(10),
                100,
                8,
            ),
        ];
        for (case, name, n, r, prefetch) in eos_cases {
            if bname == "kafka" && want(case) {
                let shape = Shape {
                    n,
                    r,
                    prefetch,
                    eos: true,
                    trace: true,
                };
                rows.push(produce_case(&conn, b, &topic, (name, bname), shape).await);
            }
        }
        if !(want("c1") || want("c100") || want("limits")) {
            continue;
        }
        let ctopic = bench_topic(
            mock.as_ref().filter(|_| bname == "mock"),
            b,
            "consume",
            &mut kafka_topics,
        )
        .await;
        let (bb, ct) = (b.clone(), ctopic.clone());
        tokio::task::spawn_blocking(move || fill_topic(&bb, &ct, n))
            .await
            .unwrap();
        if want("c1") {
            rows.push(consume_case(&conn, b, &ctopic, "consume, batch 1", bname, n, 1).await);
        }
        if want("c100") {
            rows.push(consume_case(&conn, b, &ctopic, "consume, batch 100", bname, n, 100).await);
        }
        if want("limits") {
            let ptopic = bench_topic(
                mock.as_ref().filter(|_| bname == "mock"),
                b,
                "plain",
                &mut kafka_topics,
            )
            .await;
            rows.push(chain::serial_chain_limit(&conn, b, &ptopic, bname, (n / 5).max(1)).await);
            let (bb, ct, bn) = (b.clone(), ctopic.clone(), bname.clone());
            rows.extend(
                tokio::task::spawn_blocking(move || rdkafka_limits(&bb, &bn, n, (&ptopic, &ct)))
                    .await
                    .unwrap(),
            );
        }
    }
    drop(mock);
    if let Some(k) = kafka {
        tokio::task::spawn_blocking(move || {
            delete_topics(&k.brokers, &kafka_topics);
            drop(k);
        })
        .await
        .unwrap();
    }

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    println!(
        "\nmachine: {} cores, {cpu}; messages per case: {n}\n",
        std::thread::available_parallelism().map_or(0, |p| p.get())
    );
    println!(
        "| case | broker | msgs | records | s | msgs/s | records/s | p50 ms (consume: join) | p99 ms | peak RSS MB | idle RSS MB | CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let f = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.0} | {} | {} | {} | {} | {} |",
            r.case,
            r.broker,
            r.messages,
            r.records,
            r.seconds,
            r.msgs_per_s,
            r.records_per_s,
            f(r.p50_ms),
            f(r.p99_ms),
            f(r.peak_rss_mb),
            f(r.idle_rss_mb),
            f(r.cpu_s)
        );
    }
    let limit_rate = |prefix: &str| {
        rows.iter()
            .find(|r| r.case.starts_with(prefix))
            .map_or(f64::NAN, |r| r.msgs_per_s)
    };
    let loop_rate = limit_rate("limit: lapin consume");
    let pub_rate = limit_rate("limit: lapin publish-with-confirm, 512");
    println!("\nratios (worker / limit):");
    // Produce (a) against the serial chain on the same broker: the rate ratio and the latency the worker adds.
    for a in rows.iter().filter(|r| r.case.starts_with("produce (a)")) {
        if let Some(c) = rows
            .iter()
            .find(|r| r.case.starts_with("limit: serial chain") && r.broker == a.broker)
        {
            let added = |x: Option<f64>, y: Option<f64>| {
                x.zip(y)
                    .map_or("-".to_owned(), |(x, y)| format!("{:.2}", x - y))
            };
            println!(
                "  {} [{}]: {:.0}% of the serial chain; added latency p50 {} ms, p99 {} ms",
                a.case,
                a.broker,
                100.0 * a.msgs_per_s / c.msgs_per_s,
                added(a.p50_ms, c.p50_ms),
                added(a.p99_ms, c.p99_ms)
            );
        }
    }
    for r in rows
        .iter()
        .filter(|r| r.case.starts_with("produce (b)") || r.case.starts_with("consume, batch 1"))
    {
        let limit = if r.case.starts_with("produce") {
            loop_rate
        } else {
            pub_rate
        };
        println!(
            "  {} [{}]: {:.0}% of the lapin limit",
            r.case,
            r.broker,
            100.0 * r.msgs_per_s / limit
        );
    }
    let out = json!({"machine": {"cores": std::thread::available_parallelism().map_or(0, |p| p.get()), "cpu": cpu}, "messages": n, "rows": rows});
    let _ = std::fs::create_dir_all("target");
    std::fs::write(&json_path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    println!("\nJSON: {json_path}");
    // The whole run (no case selected) ends with the instruction-count regression check.
    let ok = cases.is_some() || only.is_some() || instructions::check(&conn, false).await;
    let _ = conn.close(200, "bye".into()).await;
    if !ok {
        std::process::exit(1);
    }
}
