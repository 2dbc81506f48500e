//! The platform around a worker: a fake platform API (wiremock) and the worker binary as a child process
//! with captured output.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

/// A fake platform API answering the step call with `config`.
pub async fn fake_api(config: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/tasks/flow1/steps/step_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "step_1", "comp_id": "comp1", "function": "produce",
            "config": config, "snapshot": {}, "is_passthrough": false, "variables": {}
        })))
        .mount(&server)
        .await;
    server
}

/// The environment of `kafka-component service …`: the result goes to `result_url`, the platform API is
/// `api` (user `u`, key `api_key`), with `extra` settings.
pub fn service_env(
    result_url: &str,
    api: &str,
    api_key: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let base = [
        ("ELASTICIO_POST_RESULT_URL", result_url),
        ("ELASTICIO_API_URI", api),
        ("ELASTICIO_API_USERNAME", "u"),
        ("ELASTICIO_API_KEY", api_key),
    ];
    with_env(with_env(Vec::new(), &base), extra)
}

/// A fake platform endpoint for service mode's result POST (`/result`, answered 200).
pub async fn result_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/result"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// The worker binary as a child process.
pub struct Worker {
    pub child: Child,
    pub output: Arc<Mutex<String>>,
    /// The tasks copying stdout/stderr into `output`; awaited after exit so no line is missed.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(env: &[(String, String)]) -> Self {
        Self::spawn_args(&[], env)
    }

    pub fn spawn_args(args: &[&str], env: &[(String, String)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kafka-component"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_LEVEL", "debug")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn worker");
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let out = Arc::clone(&output);
            readers.push(tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if std::env::var("TEST_LOG").is_ok() {
                        eprintln!("worker: {line}");
                    }
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
            }));
        }
        Self {
            child,
            output,
            readers,
        }
    }

    pub fn logs(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the logs contain `needle`.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) {
        wait_until_or(
            timeout,
            || async { self.logs().contains(needle).then_some(()) },
            || format!("the worker to log {needle:?}; logs:\n{}", self.logs()),
        )
        .await;
    }

    /// Whether the process has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    pub async fn ready(&self) {
        self.wait_log("Worker ready", Duration::from_secs(20)).await;
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for exit and returns the exit code.
    pub async fn exit_code(&mut self, timeout: Duration) -> i32 {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => {
                // The pipes close with the process: let the readers copy the last lines.
                for r in std::mem::take(&mut self.readers) {
                    let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
                }
                status.unwrap().code().unwrap_or(-1)
            }
            Err(_) => panic!(
                "worker did not exit within {timeout:?}; {}",
                diagnostic_logs(&self.logs())
            ),
        }
    }

    pub async fn stop(mut self) -> i32 {
        if self.child.id().is_some() {
            self.signal("TERM");
        }
        self.exit_code(Duration::from_secs(30)).await
    }
}
/// A failed test's view of a worker's logs: the whole log goes to a file (CI prints only the end of a test's
/// output), the message holds its warnings and errors and its last lines.
pub fn diagnostic_logs(logs: &str) -> String {
    let path = std::env::temp_dir().join(format!("kc-worker-{}.log", rand_name("log")));
    let saved = match std::fs::write(&path, logs) {
        Ok(()) => format!("whole log in {}", path.display()),
        Err(e) => format!("whole log not saved: {e}"),
    };
    let lines: Vec<&str> = logs.lines().collect();
    let notable: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .collect();
    let notable = &notable[notable.len().saturating_sub(60)..];
    let last = &lines[lines.len().saturating_sub(40)..];
    format!(
        "{saved}\nits last {} warnings and errors:\n{}\nits last {} lines:\n{}",
        notable.len(),
        notable.join("\n"),
        last.len(),
        last.join("\n")
    )
}

/// `env` with each of `settings` set (replacing a variable of that name).
pub fn with_env(
    mut env: Vec<(String, String)>,
    settings: &[(&str, &str)],
) -> Vec<(String, String)> {
    for (k, v) in settings {
        env.retain(|(name, _)| name != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

/// The environment of a worker running `function` on `rb` against the platform API at `api`, with `extra`
/// settings.
pub fn step_env(
    rb: &Rabbit,
    api: &str,
    function: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    with_env(rb.env(api, function), extra)
}

/// Spawns a worker and waits until it is ready.
pub async fn spawn_ready(env: &[(String, String)]) -> Worker {
    let worker = Worker::spawn(env);
    worker.ready().await;
    worker
}

/// Starts a worker running `function` for the step config `cfg` (served by a fake platform API) on `rb`, with
/// `extra` settings (the platform's defaults otherwise); returns it ready.
pub async fn start_step(
    rb: &Rabbit,
    function: &str,
    cfg: Value,
    extra: &[(&str, &str)],
) -> (Worker, MockServer) {
    let api = fake_api(cfg).await;
    let worker = spawn_ready(&step_env(rb, &api.uri(), function, extra)).await;
    (worker, api)
}

/// Like [`start_step`], with the data throttle raised (before `extra`). For a trigger, also publishes the tick.
pub async fn start_worker(
    rb: &Rabbit,
    function: &str,
    cfg: Value,
    extra: &[(&str, &str)],
) -> (Worker, MockServer) {
    let settings = [&[("ELASTICIO_DATA_RATE_LIMIT", "100000")], extra].concat();
    let (worker, api) = start_step(rb, function, cfg, &settings).await;
    if function == "consume" {
        rb.publish_input(&json!({"body": {}}), &[("messageId", "tick-1")])
            .await;
    }
    (worker, api)
}

/// The end of a test: the worker stops cleanly (SIGTERM, exit 0) and the topology is deleted.
pub async fn finish(rb: Rabbit, worker: Worker) {
    let output = Arc::clone(&worker.output);
    let code = worker.stop().await;
    assert_eq!(
        code,
        0,
        "worker exit code; {}",
        diagnostic_logs(&output.lock().unwrap())
    );
    rb.teardown().await;
}
