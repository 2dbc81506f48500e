//! Consume trigger (issue 17): the member's progress line, on the shared Apache Kafka broker. One structured line
//! at each assignment change and every `progressIntervalSec`, with the assigned partitions and per partition the
//! committed offset, high watermark and lag, plus records in flight and records/s.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

/// The worker's "Consumer progress." log lines, parsed, with their `partitions` field parsed too.
fn progress_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "Consumer progress.")
        .map(|mut v| {
            let parts: Value =
                serde_json::from_str(v["partitions"].as_str().expect("partitions is text"))
                    .unwrap();
            v["partitions"] = parts;
            v
        })
        .collect()
}

/// 600 records on 3 partitions, emitted at about 100 records/s (the platform's default throttle), with
/// `progressIntervalSec` 1: the member logs an assignment line when it joins (3 partitions, lag 600 before the
/// group's first commit), then interval lines whose lag only goes down, to 0, with the committed offsets and
/// high watermarks at 200 per partition; every line has every field, and none carries a record's key or value.
#[tokio::test]
async fn progress_lines_show_the_assignment_and_a_lag_that_falls_to_zero() {
    let brokers = kafka();
    let topic = Topic::new("observe", 3);
    produce_records(&brokers, &topic.name, 3, 600, 16);
    let group = Group::new();
    let rb = Rabbit::setup("observe").await;
    let cfg = json!({"brokers": brokers, "topic": topic.name, "groupId": group.0,
        "progressIntervalSec": "1", "sessionTimeoutMs": "6000"});
    // The default data throttle (10 per 100 ms), so that draining the backlog spans several lines.
    let (worker, _api) = start_step(&rb, "consume", cfg, &[]).await;
    rb.publish_input(&json!({"body": {}}), &[("messageId", "tick-1")])
        .await;
    let lines = wait_until_or(
        Duration::from_secs(60),
        || async {
            let lines = progress_lines(&worker.logs());
            lines
                .iter()
                .any(|l| l["reason"] == "interval" && l["lag"] == 0 && l["assigned"] == 3)
                .then_some(lines)
        },
        || format!("a progress line with lag 0; logs:\n{}", worker.logs()),
    )
    .await;
    let join = lines
        .iter()
        .find(|l| l["reason"] == "assignment")
        .expect("an assignment line");
    assert_eq!(join["assigned"], 3, "{join}");
    assert_eq!(
        join["lag"], 600,
        "nothing committed yet: from the low watermark; {join}"
    );
    for p in join["partitions"].as_array().unwrap() {
        assert_eq!(p["topic"], topic.name.as_str());
        assert_eq!(p["high_watermark"], 200, "{join}");
        assert_eq!(p["committed"], Value::Null, "{join}");
    }
    let intervals: Vec<&Value> = lines.iter().filter(|l| l["reason"] == "interval").collect();
    let lags: Vec<i64> = intervals
        .iter()
        .map(|l| l["lag"].as_i64().unwrap())
        .collect();
    assert!(
        lags.windows(2).all(|w| w[1] <= w[0]),
        "the lag only falls: {lags:?}"
    );
    assert!(
        lags.iter().any(|l| *l > 0 && *l < 600),
        "a line while draining: {lags:?}"
    );
    let last = intervals.last().unwrap();
    for p in last["partitions"].as_array().unwrap() {
        assert_eq!(
            (&p["committed"], &p["high_watermark"], &p["lag"]),
            (&json!(200), &json!(200), &json!(0)),
            "{last}"
        );
    }
    let draining = intervals
        .iter()
        .find(|l| l["records"].as_u64().unwrap() > 0)
        .expect("a line that counted records");
    assert!(
        draining["records_per_sec"].as_f64().unwrap() > 0.0,
        "{draining}"
    );
    for l in &lines {
        for field in [
            "assigned",
            "partitions",
            "lag",
            "in_flight",
            "records",
            "records_per_sec",
        ] {
            assert!(!l[field].is_null(), "{field} missing: {l}");
        }
        assert!(!l.to_string().contains("xxxxxxxx"), "a record value in {l}");
    }
    rb.take("data", 600, Duration::from_secs(30)).await;
    finish(rb, worker).await;
}

/// A second member joining makes the first log an assignment line with its smaller share, and the second one an
/// assignment line of its own; `progressIntervalSec` 0 turns the periodic lines off.
#[tokio::test]
async fn each_assignment_change_logs_a_line_and_zero_turns_the_interval_off() {
    let brokers = kafka();
    let topic = Topic::new("observe2", 4);
    produce_records(&brokers, &topic.name, 4, 8, 4);
    let group = Group::new();
    let rb = Rabbit::setup("observe2").await;
    let cfg = json!({"brokers": brokers, "topic": topic.name, "groupId": group.0,
        "progressIntervalSec": "0", "sessionTimeoutMs": "6000"});
    let (first, _api) = start_worker(&rb, "consume", cfg.clone(), &[]).await;
    let assigned_lines = |w: &Worker| -> Vec<i64> {
        progress_lines(&w.logs())
            .iter()
            .filter(|l| l["reason"] == "assignment")
            .map(|l| l["assigned"].as_i64().unwrap())
            .collect()
    };
    wait_until_or(
        Duration::from_secs(30),
        || async { assigned_lines(&first).contains(&4).then_some(()) },
        || {
            format!(
                "the first member's line with 4 partitions; logs:\n{}",
                first.logs()
            )
        },
    )
    .await;
    rb.take("data", 8, Duration::from_secs(30)).await;
    // The second container on a step queue of its own (so that its tick reaches it), in the same group.
    let rb2 = Rabbit::setup("observe2b").await;
    let (second, _api2) = start_worker(&rb2, "consume", cfg, &[]).await;
    wait_until_or(
        Duration::from_secs(60),
        || async {
            let (a, b) = (assigned_lines(&first), assigned_lines(&second));
            (a.last() == Some(&2) && b.last() == Some(&2)).then_some(())
        },
        || {
            format!(
                "both members to log 2 partitions: {:?} {:?}; logs:\n{}",
                assigned_lines(&first),
                assigned_lines(&second),
                second.logs()
            )
        },
    )
    .await;
    assert!(
        progress_lines(&first.logs())
            .iter()
            .all(|l| l["reason"] == "assignment"),
        "no interval lines with progressIntervalSec 0"
    );
    finish(rb2, second).await;
    finish(rb, first).await;
}
