//! A Consume worker under a 1 GB backlog of 100 KB records: its RSS stays bounded (issue 13, item 12). Its own
//! RabbitMQ node and Apache Kafka broker.

use super::consume_case::ConsumeCase;
use super::*;

/// Writes `n` records of `size` bytes (value `b{i}:` then padding), round-robin over `partitions`.
fn fill_large(brokers: &str, topic: &str, n: usize, size: usize, partitions: usize) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("compression.type", "none")
        .set("queue.buffering.max.kbytes", "131072")
        .create()
        .unwrap();
    let pad = "x".repeat(size);
    for i in 0..n {
        let mut v = format!("b{i}:");
        v.push_str(&pad[v.len()..]);
        let part = i32::try_from(i % partitions).unwrap();
        while p
            .send(BaseRecord::<(), str>::to(topic).partition(part).payload(&v))
            .is_err()
        {
            p.poll(Duration::from_millis(10));
        }
    }
    p.flush(Duration::from_secs(120)).unwrap();
}

/// A backlog of 1 GB (10 000 records of 100 KB) on a topic: the Consume worker drains it for at most
/// `KC_BACKLOG_SECS` (default 30) and its RSS stays under `RSS_BOUND_KB`: librdkafka's prefetch is capped
/// (`queued.max.messages.kbytes` 16 MiB, plus one fetch of at most `fetch.max.bytes` 8 MiB) whatever the lag,
/// so the bound is the idle worker (about 30 MB) + 24 MiB of prefetch + what is in flight to RabbitMQ.
/// The test's worker is the unoptimized test build: it emits only 10-20 records of 100 KB per second
/// (AES-CBC and base64 of each body), so the drain is bounded in time and needs 100 records (10 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gb_backlog_of_100_kb_records_keeps_rss_bounded() {
    const RSS_BOUND_KB: u64 = 128 * 1024;
    let (n, size) = (10_000, 100 * 1024);
    let secs: u64 = std::env::var("KC_BACKLOG_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let c = ConsumeCase::start(
        (Protocol::Classic, Duration::from_secs(10)),
        &[],
        3,
        json!({}),
        &[("ELASTICIO_DATA_RATE_LIMIT", "100000")],
    )
    .await;
    let filling = Instant::now();
    {
        let (b, t) = (c.kafka.brokers(), c.topic.clone());
        tokio::task::spawn_blocking(move || fill_large(&b, &t, n, size, 3))
            .await
            .unwrap();
    }
    eprintln!(
        "backlog: {n} records of {} KB written in {:.1} s",
        size / 1024,
        filling.elapsed().as_secs_f64()
    );
    let w = c.worker("tick-1").await;
    let pid = w.child.id().unwrap();
    let started = Instant::now();
    let mut emitted = 0u64;
    let mut curve: Vec<(f64, u64, u64)> = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) && emitted < n as u64 {
        // The measurement's sampling period: one RSS sample per second of the drain.
        tokio::time::sleep(Duration::from_secs(1)).await;
        // The data queue is emptied as the worker fills it (RabbitMQ would page a 1.4 GB queue to disk).
        emitted += u64::from(
            c.rb.ch
                .queue_purge(c.rb.q("data").into(), QueuePurgeOptions::default())
                .await
                .unwrap(),
        );
        let rss = proc_status(pid, "VmRSS:");
        curve.push((started.elapsed().as_secs_f64(), rss, emitted));
    }
    let took = started.elapsed();
    let logs = w.logs();
    let peak = curve.iter().map(|s| s.1).max().unwrap_or(0);
    eprintln!(
        "backlog drain: {emitted} of {n} records ({} MB) emitted in {:.1} s ({:.0} records/s); RSS peak {} MB (bound {} MB)",
        emitted * 100 / 1024,
        took.as_secs_f64(),
        emitted as f64 / took.as_secs_f64(),
        peak / 1024,
        RSS_BOUND_KB / 1024
    );
    eprintln!("  secs,rss_kb,emitted");
    for (t, rss, e) in &curve {
        eprintln!("  {t:.0},{rss},{e}");
    }
    assert_eq!(c.rb.count("error").await, 0, "no error emitted");
    assert!(
        emitted >= 100,
        "drained a good part of the backlog ({emitted} of {n})"
    );
    assert!(
        peak <= RSS_BOUND_KB,
        "RSS {peak} kB over the bound {RSS_BOUND_KB} kB:\n{}",
        tail(&logs)
    );
    assert_eq!(w.stop().await, 0, "{}", tail(&logs));
    c.teardown().await;
}
