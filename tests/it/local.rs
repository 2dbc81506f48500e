//! The local runner `kafka-component exec` (issue: newcomer): no RabbitMQ, no platform API.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("event").is_some())
        .collect()
}

async fn run(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kafka-component"))
        .args(args)
        .env("LOG_LEVEL", "warn")
        .output()
        .await
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn exec_produce_prints_each_emitted_message_and_consume_streams_until_interrupted() {
    let topic = Topic::new("exec", 2);
    let group = rand_name("g");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.json");
    let input = dir.path().join("msg.json");
    std::fs::write(
        &cfg,
        json!({"brokers": kafka(), "topic": topic.name, "groupId": group}).to_string(),
    )
    .unwrap();
    std::fs::write(
        &input,
        json!({"messages": [{"key": "a", "value": "one"}, {"key": "b", "value": "two"}]})
            .to_string(),
    )
    .unwrap();
    let (code, out) = run(&[
        "exec",
        "produce",
        "--config",
        cfg.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    let events = lines(&out);
    let records: usize = events
        .iter()
        .map(|e| {
            assert_eq!(e["event"], "data");
            e["message"]["body"]["records"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(records, 2);

    // Invalid input → the error is printed and the exit code is 1.
    std::fs::write(&input, json!({"records": []}).to_string()).unwrap();
    let (code, out) = run(&[
        "exec",
        "produce",
        "--config",
        cfg.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 1);
    assert_eq!(lines(&out)[0]["event"], "error");

    // consume streams until Ctrl-C.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_kafka-component"))
        .args(["exec", "consume", "--config", cfg.to_str().unwrap()])
        .env("LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut got = Vec::new();
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    while got.len() < 2 {
        line.clear();
        tokio::time::timeout(Duration::from_secs(20), stdout.read_line(&mut line))
            .await
            .expect("records streamed")
            .unwrap();
        got.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    let mut values: Vec<String> = got
        .iter()
        .map(|e| e["message"]["body"]["value"].as_str().unwrap().to_owned())
        .collect();
    values.sort();
    assert_eq!(values, vec!["one", "two"]);
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        committed_offsets(&kafka(), &group, &topic.name, 2)
            .into_iter()
            .flatten()
            .sum::<i64>(),
        2,
        "the streamed records were committed on Ctrl-C"
    );
    delete_group(&kafka(), &group);
}

#[tokio::test]
async fn exec_reports_a_bad_config_file_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.json");
    std::fs::write(&cfg, "{\"brokers\": ").unwrap();
    let (code, out) = run(&["exec", "produce", "--config", cfg.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("is not valid JSON") && out.contains("line 1"),
        "{out}"
    );
    let (code, out) = run(&["exec", "produce", "--config", "/nonexistent/cfg.json"]).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("cannot read config file `/nonexistent/cfg.json`"),
        "{out}"
    );
    let (code, out) = run(&["exec", "nope", "--config", cfg.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(
        out.contains("is not valid JSON") || out.contains("not found in component.json"),
        "{out}"
    );
    let (code, out) = run(&["--help"]).await;
    assert_eq!(code, 0);
    for sub in ["run", "service", "exec"] {
        assert!(out.contains(sub), "--help lists {sub}");
    }
}
