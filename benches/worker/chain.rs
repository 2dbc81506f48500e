//! The serial chain: the least a one-record Produce at prefetch 1 must do, with nothing else in the loop. One
//! delivery (prefetch 1) → decrypt → one record with `acks=all` (idempotent, no linger), delivery report awaited
//! → encrypt → one publish with its confirm awaited → ack. Closed loop: the next input is published when the
//! previous result arrived, as in Produce (a), so its latency is the chain's service time.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kafka_component::platform::crypto::Crypto;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

use super::{IV, PASSWORD, Row, Topo, amqp_addr, percentile};

/// The chain's rate and latency over `n` messages (after one warm-up message).
pub async fn serial_chain_limit(
    conn: &Connection,
    brokers: &str,
    topic: &str,
    broker: &str,
    n: usize,
) -> Row {
    let topo = Topo::new(conn).await;
    let crypto = Crypto::new(PASSWORD, IV).unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let worker_conn = Connection::connect(&amqp_addr(), ConnectionProperties::default())
        .await
        .unwrap();
    let in_ch = worker_conn.create_channel().await.unwrap();
    in_ch
        .basic_qos(1, BasicQosOptions::default())
        .await
        .unwrap();
    let out_ch = worker_conn.create_channel().await.unwrap();
    out_ch
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut deliveries = in_ch
        .basic_consume(
            topo.q("in").into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let (exchange, rk, topic_owned, c) = (
        format!("{}:x", topo.prefix),
        topo.q("data"),
        topic.to_owned(),
        crypto.clone(),
    );
    let chain = tokio::spawn(async move {
        for _ in 0..=n {
            let d = deliveries.next().await.unwrap().unwrap();
            let plain = c.decode(&d.data, 1).unwrap();
            let input: serde_json::Value = serde_json::from_slice(&plain).unwrap();
            let value = input["body"]["messages"][0]["value"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let delivered = producer
                .send(
                    FutureRecord::<(), _>::to(&topic_owned).payload(&value),
                    Duration::from_secs(30),
                )
                .await
                .unwrap();
            let out = c.encode(
                &serde_json::to_vec(&json!({"body": {"partition": delivered.partition, "offset": delivered.offset}}))
                    .unwrap(),
                1,
            );
            out_ch
                .basic_publish(
                    exchange.as_str().into(),
                    rk.as_str().into(),
                    BasicPublishOptions::default(),
                    &out,
                    BasicProperties::default(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            d.acker.ack(BasicAckOptions::default()).await.unwrap();
        }
    });
    let cons_ch = conn.create_channel().await.unwrap();
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
    let input = crypto.encode(
        &serde_json::to_vec(&json!({"body": {"messages": [{"value": "x".repeat(100)}]}})).unwrap(),
        1,
    );
    let mut latencies = Vec::with_capacity(n);
    let mut started = Instant::now();
    for i in 0..=n {
        if i == 1 {
            // The first message (producer connection, metadata) is the warm-up.
            started = Instant::now();
        }
        let t0 = Instant::now();
        topo.ch
            .basic_publish(
                "".into(),
                topo.q("in").as_str().into(),
                BasicPublishOptions::default(),
                &input,
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        results.next().await.unwrap().unwrap();
        if i > 0 {
            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    chain.await.unwrap();
    let _ = worker_conn.close(200, "bye".into()).await;
    topo.drop_all().await;
    latencies.sort_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / secs;
    Row {
        case: "limit: serial chain (delivery, acks=all record, confirmed publish, ack), prefetch 1"
            .into(),
        broker: broker.into(),
        messages: n,
        records: n,
        seconds: secs,
        msgs_per_s: rate,
        records_per_s: rate,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        peak_rss_mb: None,
        idle_rss_mb: None,
        cpu_s: None,
    }
}
