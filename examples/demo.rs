//! End-to-end demo on embedded defaults: a Produce step and a Consume step of one flow, each a real worker
//! (in this process), talking to the local RabbitMQ, a platform emulator (the fake API the tests use), and an
//! embedded Kafka (librdkafka's mock cluster) unless `--brokers` points at a real cluster (e.g. Apache Kafka from
//! `eval "$(scripts/kafka.sh start)"`, then `--brokers $KC_KAFKA_BROKERS`), where the demo creates its own topic and
//! deletes it and its consumer group at the end.
//!
//! Run it with `scripts/demo.sh` (installs/starts RabbitMQ first) or `cargo run --release --example demo`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use kafka_component::platform::crypto::Crypto;
use kafka_component::platform::worker;
use kafka_component::settings::{Env, Settings};
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use rdkafka::mocking::MockCluster;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Produce a few thousand messages through the Produce step and read them back with the Consume step.
#[derive(Debug, Parser)]
struct Args {
    /// Flow messages sent to the Produce step.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Kafka records per flow message.
    #[arg(long, default_value_t = 5)]
    records: usize,
    /// Partitions of the demo topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// A real Kafka cluster (host:port,…) instead of the embedded one (no authentication).
    #[arg(long)]
    brokers: Option<String>,
    /// RabbitMQ address.
    #[arg(
        long,
        env = "AMQP_ADDR",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp: String,
}

const PASSWORD: &str = "demo-crypto-password";
const IV: &str = "demo-iv-16-bytes";

fn step_env(amqp: &str, api: &str, prefix: &str, step: &str, function: &str) -> Settings {
    let q = |k: &str| format!("{prefix}:{step}:{k}");
    let pairs = vec![
        ("FLOW_ID", "demo-flow".to_owned()),
        ("EXEC_ID", "demo-exec".to_owned()),
        ("STEP_ID", step.to_owned()),
        ("CONTAINER_ID", format!("{step}-container")),
        ("WORKSPACE_ID", "demo-ws".to_owned()),
        ("USER_ID", "demo-user".to_owned()),
        ("COMP_ID", "kafka".to_owned()),
        ("FUNCTION", function.to_owned()),
        ("API_URI", api.to_owned()),
        ("API_USERNAME", "demo".to_owned()),
        ("API_KEY", "demo-key".to_owned()),
        ("AMQP_URI", amqp.to_owned()),
        ("LISTEN_MESSAGES_ON", q("messages")),
        ("PUBLISH_MESSAGES_TO", format!("{prefix}:exchange")),
        ("DATA_ROUTING_KEY", q("data")),
        ("ERROR_ROUTING_KEY", q("error")),
        ("REBOUND_ROUTING_KEY", q("rebound")),
        ("SNAPSHOT_ROUTING_KEY", q("snapshot")),
        ("MESSAGE_CRYPTO_PASSWORD", PASSWORD.to_owned()),
        ("MESSAGE_CRYPTO_IV", IV.to_owned()),
        ("RABBITMQ_PREFETCH_SAILOR", "32".to_owned()),
        // The platform's default throttle is 10 data messages per 100 ms; a demo wants to be quick.
        ("DATA_RATE_LIMIT", "100000".to_owned()),
    ];
    let env = Env::from_pairs(
        pairs
            .into_iter()
            .map(|(k, v)| (format!("ELASTICIO_{k}"), v)),
    );
    Settings::from_env(&env).unwrap()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let log = std::fs::File::create("target/demo-workers.log")
        .or_else(|_| std::fs::File::create("/tmp/kafka-component-demo.log"))?;
    kafka_component::telemetry::init("warn", Mutex::new(log));
    let started = Instant::now();
    let prefix = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let topic = format!("{prefix}-orders");

    // Kafka: embedded mock cluster unless --brokers.
    let mock;
    let brokers = match &args.brokers {
        Some(b) => {
            create_topic(b, &topic, args.partitions).await?;
            b.clone()
        }
        None => {
            mock = MockCluster::new(3)?;
            mock.create_topic(&topic, args.partitions, 1)?;
            mock.bootstrap_servers()
        }
    };

    // RabbitMQ topology the platform would own.
    let conn = Connection::connect(&args.amqp, ConnectionProperties::default())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "RabbitMQ at {}: {e} (scripts/setup.sh starts it)",
                args.amqp
            )
        })?;
    let ch = conn.create_channel().await?;
    ch.exchange_declare(
        format!("{prefix}:exchange").into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    let mut queues = Vec::new();
    for step in ["produce_step", "consume_step"] {
        for kind in ["messages", "data", "error", "rebound", "snapshot"] {
            let name = format!("{prefix}:{step}:{kind}");
            let mut args_t = FieldTable::default();
            args_t.insert("x-expires".into(), AMQPValue::LongInt(600_000));
            ch.queue_declare(name.as_str().into(), QueueDeclareOptions::default(), args_t)
                .await?;
            if kind != "messages" {
                ch.queue_bind(
                    name.as_str().into(),
                    format!("{prefix}:exchange").into(),
                    name.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            }
            queues.push(name);
        }
    }

    // Platform emulator: the step API.
    let api = MockServer::start().await;
    let creds = json!({ "brokers": brokers, "clientId": "kafka-component-demo" });
    for (step, extra) in [
        ("produce_step", json!({ "topic": topic })),
        (
            "consume_step",
            json!({ "topic": topic, "groupId": format!("{prefix}-group"), "startFrom": "earliest" }),
        ),
    ] {
        let mut config = creds.clone();
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Mock::given(method("GET"))
            .and(path(format!("/v1/tasks/demo-flow/steps/{step}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": step, "config": config, "snapshot": {}, "is_passthrough": false, "variables": {} })))
            .mount(&api)
            .await;
    }

    // The two steps, each a full worker.
    let token = CancellationToken::new();
    let mut workers = Vec::new();
    for (step, function) in [("produce_step", "produce"), ("consume_step", "consume")] {
        let settings = step_env(&args.amqp, &api.uri(), &prefix, step, function);
        let t = token.clone();
        workers.push(tokio::spawn(async move {
            worker::run(settings, kafka_component::resolve, t).await
        }));
    }

    let crypto = Crypto::new(PASSWORD, IV).unwrap();
    let publish = {
        let (ch, crypto) = (ch.clone(), crypto.clone());
        move |queue: String, body: Value, id: String| {
            let ch = ch.clone();
            let content = crypto.encode(&serde_json::to_vec(&body).unwrap(), 1);
            async move {
                let mut h = FieldTable::default();
                h.insert("messageId".into(), AMQPValue::LongString(id.into()));
                ch.basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &content,
                    BasicProperties::default().with_headers(h),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            }
        }
    };
    // Scheduler tick for the real-time Consume step.
    publish(
        format!("{prefix}:consume_step:messages"),
        json!({ "body": {} }),
        "tick-1".into(),
    )
    .await;

    let total_records = args.messages * args.records;
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {per_sec}")
        .unwrap()
        .progress_chars("=> ");
    let produced = bars.add(
        ProgressBar::new(total_records as u64)
            .with_style(style.clone())
            .with_prefix("produced"),
    );
    let consumed = bars.add(
        ProgressBar::new(total_records as u64)
            .with_style(style)
            .with_prefix("consumed"),
    );

    let sender = {
        let publish = publish.clone();
        let (prefix, messages, records) = (prefix.clone(), args.messages, args.records);
        tokio::spawn(async move {
            for m in 0..messages {
                let recs: Vec<Value> = (0..records).map(|r| json!({ "key": format!("customer-{}", (m * records + r) % 97), "value": { "id": format!("m{m}-r{r}"), "amount": m * 10 + r } })).collect();
                publish(
                    format!("{prefix}:produce_step:messages"),
                    json!({ "body": { "messages": recs } }),
                    format!("msg-{m}"),
                )
                .await;
            }
        })
    };

    // Read results: Produce step outputs (where records went) and Consume step outputs (records read back).
    let out_ch = conn.create_channel().await?;
    out_ch.basic_qos(1000, BasicQosOptions::default()).await?;
    let mut produce_out = out_ch
        .basic_consume(
            format!("{prefix}:produce_step:data").into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut consume_out = out_ch
        .basic_consume(
            format!("{prefix}:consume_step:data").into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut written: HashMap<String, (i32, i64)> = HashMap::new();
    let mut read_back: HashMap<String, u32> = HashMap::new();
    let mut partitions: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    let mut produce_messages = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60 + (total_records as u64) / 100);
    let decode = |data: &[u8]| -> Value {
        serde_json::from_slice(&crypto.decode(data, 1).unwrap()).unwrap()
    };
    while (written.len() < total_records || read_back.len() < total_records)
        && Instant::now() < deadline
    {
        tokio::select! {
            Some(Ok(d)) = produce_out.next() => {
                produce_messages += 1;
                let body = decode(&d.data)["body"].clone();
                let p: i32 = body["partition"].as_str().unwrap_or("-1").parse().unwrap_or(-1);
                for r in body["records"].as_array().into_iter().flatten() {
                    let idx = r["index"].as_u64().unwrap_or(0);
                    written.insert(format!("{}#{idx}", d.delivery_tag), (p, r["offset"].as_i64().unwrap_or(-1)));
                    produced.inc(1);
                }
            }
            Some(Ok(d)) = consume_out.next() => {
                let body = decode(&d.data)["body"].clone();
                let value: Value = serde_json::from_str(body["value"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
                let id = value["id"].as_str().unwrap_or("?").to_owned();
                let (p, o) = (body["partition"].as_str().and_then(|p| p.parse().ok()).unwrap_or(-1), body["offset"].as_i64().unwrap_or(-1));
                let e = partitions.entry(p).or_insert((o, o));
                e.0 = e.0.min(o);
                e.1 = e.1.max(o);
                *read_back.entry(id).or_default() += 1;
                consumed.inc(1);
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    produced.finish();
    consumed.finish();
    sender.await?;
    let elapsed = started.elapsed();
    token.cancel();
    for w in workers {
        if let Ok(Err(e)) = w.await {
            println!("worker error: {e}");
        }
    }
    for q in &queues {
        let _ignored = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ignored = conn.close(200, "bye".into()).await;
    // On a real cluster the demo leaves nothing behind: its topic and consumer group go.
    if args.brokers.is_some()
        && let Err(e) = remove_topic_and_group(&brokers, &topic, &format!("{prefix}-group")).await
    {
        println!("cleanup: {e:#}");
    }

    let duplicates: u32 = read_back.values().map(|c| c - 1).sum();
    let missing = (0..args.messages)
        .flat_map(|m| (0..args.records).map(move |r| format!("m{m}-r{r}")))
        .filter(|id| !read_back.contains_key(id))
        .count();
    let rate = total_records as f64 / elapsed.as_secs_f64();
    println!();
    println!(
        "  {:<28} {}",
        "Kafka",
        if args.brokers.is_some() {
            brokers.as_str()
        } else {
            "embedded (librdkafka mock cluster)"
        }
    );
    println!("  {:<28} {}", "topic", topic);
    println!("  {:<28} {}", "flow messages produced", args.messages);
    println!("  {:<28} {}", "records written (Produce)", written.len());
    println!("  {:<28} {}", "Produce output messages", produce_messages);
    println!(
        "  {:<28} {}",
        "records read back (Consume)",
        read_back.len()
    );
    for (p, (lo, hi)) in &partitions {
        println!("  {:<28} offsets {lo}..={hi}", format!("partition {p}"));
    }
    println!(
        "  {:<28} {:.0} records/s end to end ({:.1} s)",
        "rate",
        rate,
        elapsed.as_secs_f64()
    );
    println!("  {:<28} {duplicates}", "duplicates");
    println!("  {:<28} {missing}", "missing");
    // A record whose partition could not be read (-1) means the output format is not what the README says.
    let ok = missing == 0
        && duplicates == 0
        && written.len() == total_records
        && !partitions.contains_key(&-1);
    println!(
        "demo: {} messages={} records={} partitions={} duplicates={duplicates} missing={missing} seconds={:.1}",
        if ok { "OK" } else { "FAILED" },
        args.messages,
        total_records,
        partitions.len(),
        elapsed.as_secs_f64()
    );
    if ok {
        Ok(())
    } else {
        anyhow::bail!("demo failed (worker logs: target/demo-workers.log)")
    }
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let res = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    for r in res {
        if let Err((t, e)) = r {
            anyhow::bail!("cannot create topic {t}: {e}");
        }
    }
    Ok(())
}

async fn remove_topic_and_group(brokers: &str, topic: &str, group: &str) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin.delete_groups(&[group], &opts).await? {
        if let Err((g, e)) = r {
            anyhow::bail!("cannot delete consumer group {g}: {e}");
        }
    }
    for r in admin.delete_topics(&[topic], &opts).await? {
        if let Err((t, e)) = r {
            anyhow::bail!("cannot delete topic {t}: {e}");
        }
    }
    Ok(())
}
