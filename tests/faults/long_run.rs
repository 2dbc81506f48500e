//! The long run: a produce worker and a consume worker on one topic, fed at a moderate rate for
//! `KC_LONG_RUN_SECS` (default 180; `scripts/long-run.sh` runs it for 20 minutes), with a fault every
//! 30 s (connections closed, Kafka broker killed and restarted, RabbitMQ stopped and started).
//! Afterwards nothing may be missing, and the workers' RSS, open file descriptors, threads and live
//! async tasks must not grow. The curve goes to stderr and to `target/long-run.csv`.

use super::*;

/// One sample of a worker process.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    secs: u64,
    rss_kb: u64,
    fds: usize,
    threads: u64,
    tasks: Option<u64>,
}

/// The last `alive_tasks` the worker logged (every 10 s, see `worker::runtime_stats`; events are flattened).
fn last_tasks(logs: &str) -> Option<u64> {
    logs.lines().rev().find_map(|l| {
        let v: Value = serde_json::from_str(l).ok()?;
        v["alive_tasks"].as_u64()
    })
}

fn sample(w: &Worker, secs: u64) -> Sample {
    let pid = w.child.id().expect("worker running");
    Sample {
        secs,
        rss_kb: proc_status(pid, "VmRSS:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count),
        threads: proc_status(pid, "Threads:"),
        tasks: last_tasks(&w.logs()),
    }
}

/// Checks a curve for growth: the steady state is the samples after the first fifth (connections,
/// caches and librdkafka buffers warm up there); the end of the run may not exceed it by more than slack.
fn assert_flat(name: &str, curve: &[Sample]) {
    let warm = curve.len() / 5;
    let (early, late) = curve[warm..].split_at((curve.len() - warm) / 2);
    let max_rss = |s: &[Sample]| s.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let (e, l) = (max_rss(early), max_rss(late));
    assert!(
        l <= e + e / 5 + 4096,
        "{name}: RSS grew from {e} kB (first half of the steady state) to {l} kB (second half)"
    );
    let first = curve[warm];
    let last = curve[curve.len() - 1];
    assert!(
        last.fds <= first.fds + 4,
        "{name}: open file descriptors grew from {} to {}",
        first.fds,
        last.fds
    );
    assert!(
        last.threads <= first.threads + 4,
        "{name}: threads grew from {} to {}",
        first.threads,
        last.threads
    );
    let (Some(a), Some(b)) = (first.tasks, last.tasks) else {
        panic!("{name}: the worker logged no `Runtime stats.` line with alive_tasks");
    };
    assert!(b <= a + 8, "{name}: live async tasks grew from {a} to {b}");
}

/// Counts the record value of a Consume data message.
fn count_value(m: &Got, seen: &mut HashMap<String, usize>) {
    let v = m.decrypted()["body"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    *seen.entry(v).or_default() += 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_run_mixed_stream_with_periodic_faults_stays_flat() {
    let secs: u64 = std::env::var("KC_LONG_RUN_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let (rabbit, mut kafka) = start_brokers().await;
    let (topic, group) = (rand_name("lr"), rand_name("lrg"));
    create_topic_async(&kafka.brokers(), &topic, 3).await;
    let rp = Rabbit::setup_on(&rabbit.addr(), "lrp", true).await;
    let rc = Rabbit::setup_on(&rabbit.addr(), "lrc", true).await;
    let api_p =
        fake_api(json!({"brokers": kafka.brokers(), "topic": topic, "deliveryTimeoutMs": DELIVERY_TIMEOUT.as_millis()}))
            .await;
    let api_c = fake_api(json!({"brokers": kafka.brokers(), "topic": topic, "groupId": group, "sessionTimeoutMs": "6000"})).await;
    let env_p = worker_env(
        &rp,
        &api_p.uri(),
        "produce",
        &rp.prefix,
        &[
            ("ELASTICIO_RABBITMQ_PREFETCH_SAILOR", "8"),
            ("ELASTICIO_DATA_RATE_LIMIT", "100000"),
        ],
    );
    let env_c = worker_env(
        &rc,
        &api_c.uri(),
        "consume",
        &rc.prefix,
        &[("ELASTICIO_DATA_RATE_LIMIT", "100000")],
    );
    let wp = Worker::spawn(&env_p);
    let wc = Worker::spawn(&env_c);
    wp.ready().await;
    wc.ready().await;
    rc.publish_input(&json!({"body": {}}), &[("messageId", "tick")])
        .await;

    // Feed: 20 messages/s of 5 records each, values unique.
    let per_msg = 5;
    let started = Instant::now();
    let mut sent = 0usize;
    let mut next_fault = 30;
    let faults = [
        Fault::CloseConnections,
        Fault::KafkaRestart,
        Fault::RabbitRestart,
    ];
    let mut fault_no = 0;
    let (mut curve_p, mut curve_c) = (Vec::new(), Vec::new());
    let mut next_sample = 0;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut rp = rp;
    let mut rc = rc;
    let mut rebounded = 0;
    while started.elapsed().as_secs() < secs {
        let el = started.elapsed().as_secs();
        if el >= next_sample {
            curve_p.push(sample(&wp, el));
            curve_c.push(sample(&wc, el));
            next_sample += 5;
        }
        if el >= next_fault {
            let fault = faults[fault_no % faults.len()];
            fault_no += 1;
            next_fault += 30;
            eprintln!("long run: {el} s: injecting {fault:?}");
            break_brokers(
                fault,
                &rabbit,
                &mut kafka,
                &[&rp.prefix, &rc.prefix],
                Duration::from_secs(3),
            )
            .await;
            if fault == Fault::RabbitRestart {
                rp = Rabbit::attach_on(&rabbit.addr(), &rp.prefix, true).await;
                rc = Rabbit::attach_on(&rabbit.addr(), &rc.prefix, true).await;
            }
        }
        // Publish up to the rate's budget for the elapsed time.
        let due = usize::try_from(started.elapsed().as_millis() / 50).unwrap_or(usize::MAX);
        while sent < due {
            let messages: Vec<Value> = (0..per_msg)
                .map(|j| json!({"key": format!("k{sent}"), "value": format!("L{sent}-{j}")}))
                .collect();
            rp.publish_input(
                &json!({"body": {"messages": messages}}),
                &[("messageId", &format!("lr-{sent}"))],
            )
            .await;
            sent += 1;
        }
        rebounded += return_rebounds(&rp).await;
        while let Some(m) = rc.next("data", Duration::ZERO).await {
            count_value(&m, &mut seen);
        }
        let _ = rp
            .ch
            .queue_purge(rp.q("data").into(), QueuePurgeOptions::default())
            .await;
        // The load's pace under test: the feeder runs every 50 ms and sends what is due by then.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Drain: every record produced must reach the consume side.
    let expected = sent * per_msg;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < expected && Instant::now() < deadline {
        rebounded += return_rebounds(&rp).await;
        if let Some(m) = rc.next("data", Duration::from_millis(200)).await {
            count_value(&m, &mut seen);
        }
    }
    // The behaviour under test: resources after a quiet period of 11 s (connections settled, nothing in
    // flight), sampled at its end.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let el = started.elapsed().as_secs();
    curve_p.push(sample(&wp, el));
    curve_c.push(sample(&wc, el));

    let mut csv = String::from(
        "secs,produce_rss_kb,produce_fds,produce_threads,produce_tasks,consume_rss_kb,consume_fds,consume_threads,consume_tasks\n",
    );
    for (p, c) in curve_p.iter().zip(&curve_c) {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            p.secs,
            p.rss_kb,
            p.fds,
            p.threads,
            p.tasks.map_or(String::new(), |t| t.to_string()),
            c.rss_kb,
            c.fds,
            c.threads,
            c.tasks.map_or(String::new(), |t| t.to_string()),
        ));
    }
    eprint!("long run curve ({secs} s):\n{csv}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/long-run.csv");
    let _ = std::fs::write(out, &csv);

    let missing: Vec<String> = (0..sent)
        .flat_map(|i| (0..per_msg).map(move |j| format!("L{i}-{j}")))
        .filter(|v| !seen.contains_key(v))
        .collect();
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    eprintln!(
        "long run: {sent} inputs, {expected} records, {} delivered by the consumer, {duplicates} duplicates, {} missing, {rebounded} rebounds, {fault_no} faults",
        seen.len(),
        missing.len()
    );
    let (logs_p, logs_c) = (wp.logs(), wc.logs());
    assert!(
        missing.is_empty(),
        "missing: {:?}\nproduce worker:\n{}\nconsume worker:\n{}",
        &missing[..missing.len().min(20)],
        tail(&logs_p),
        tail(&logs_c)
    );
    assert_flat("produce worker", &curve_p);
    assert_flat("consume worker", &curve_c);
    assert_eq!(wp.stop().await, 0, "produce worker:\n{}", tail(&logs_p));
    assert_eq!(wc.stop().await, 0, "consume worker:\n{}", tail(&logs_c));
    assert_eq!(rp.count("messages").await, 0, "every input acked");
    assert_eq!(rp.count("dead").await, 0, "nothing rejected");
    assert_eq!(rp.count("error").await, 0, "no error emitted");
    let _ = rc
        .ch
        .queue_purge(rc.q("data").into(), QueuePurgeOptions::default())
        .await;
    rp.teardown().await;
    rc.teardown().await;
}
