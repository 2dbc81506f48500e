//! Kafka brokers of a test's own: one process (`KafkaBroker`) or a cluster (`KafkaCluster`), to kill and restart.

use std::process::Stdio;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::*;

/// One Apache Kafka broker process of a test's own (its own ports and data directory), for faults that stop
/// or kill the broker. `restart` brings it back on the same ports with the same data.
pub struct KafkaBroker {
    /// The folder `scripts/kafka.sh start` made (start.sh, pid, server.log, data).
    pub dir: std::path::PathBuf,
    pub pid: u32,
    vars: std::collections::HashMap<String, String>,
}

fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Parses the `export A=B C=D` line that scripts/kafka.sh prints.
fn parse_exports(out: &str) -> std::collections::HashMap<String, String> {
    out.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn kafka_script(args: &[&str], env: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    let out = std::process::Command::new(repo_root().join("scripts/kafka.sh"))
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/kafka.sh");
    assert!(out.status.success(), "scripts/kafka.sh {args:?} failed");
    parse_exports(&String::from_utf8_lossy(&out.stdout))
}

/// Sends SIGKILL (or another signal) to a process.
pub fn kill_pid(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

/// Starts a broker from its folder's `start.sh` and waits until it serves `port` again.
fn start_node(dir: &std::path::Path, port: &str) -> u32 {
    let log = dir.join("server.log");
    let before = std::fs::read_to_string(&log)
        .map(|s| s.matches("Kafka Server started").count())
        .unwrap_or(0);
    let child = std::process::Command::new("setsid")
        .arg(dir.join("start.sh"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start.sh");
    let pid = child.id();
    // Reap it in the background so it never lingers as a zombie.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    std::fs::write(dir.join("pid"), pid.to_string()).unwrap();
    let what = format!("the broker in {} to serve port {port}", dir.display());
    wait_every_blocking(METADATA_POLL, Duration::from_secs(60), &what, || {
        let started = std::fs::read_to_string(&log)
            .map(|s| s.matches("Kafka Server started").count())
            .unwrap_or(0);
        if started > before && std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok() {
            return Some(pid);
        }
        assert!(
            pid_alive(pid),
            "broker in {} exited; see server.log",
            dir.display()
        );
        None
    })
}

/// Waits (up to `timeout`) until process `pid` is gone; whether it is.
fn wait_exit(pid: u32, timeout: Duration) -> bool {
    poll_until_blocking(timeout, || (!pid_alive(pid)).then_some(())).is_some()
}

impl KafkaBroker {
    /// `scripts/kafka.sh start` with extra broker properties (`key=value`).
    pub fn start(props: &[&str]) -> Self {
        let joined = props.join(" ");
        let vars = kafka_script(&["start"], &[("KC_KAFKA_PROPS", &joined)]);
        Self {
            dir: vars["KC_KAFKA_DIR"].clone().into(),
            pid: vars["KC_KAFKA_PID"].parse().unwrap(),
            vars,
        }
    }

    /// PLAINTEXT `host:port`.
    pub fn brokers(&self) -> String {
        self.vars["KC_KAFKA_BROKERS"].clone()
    }

    /// Any variable `scripts/kafka.sh start` exported for this broker.
    pub fn var(&self, name: &str) -> String {
        self.vars[name].clone()
    }

    fn port(&self) -> String {
        self.brokers().rsplit(':').next().unwrap().to_owned()
    }

    /// SIGKILL: no clean shutdown, no flush.
    pub fn kill(&mut self) {
        kill_pid(self.pid, "KILL");
        assert!(
            wait_exit(self.pid, Duration::from_secs(30)),
            "broker {} still alive 30 s after SIGKILL",
            self.pid
        );
    }

    /// Starts it again on the same ports and data; returns when it serves clients.
    pub fn restart(&mut self) {
        self.pid = start_node(&self.dir, &self.port());
    }
}

/// `KC_KAFKA_KEEP_DIR` for `scripts/kafka.sh stop` when a test failed: its broker's data and `server.log` stay for
/// a look (the path is printed).
fn keep_dir_if_failed(dir: &std::path::Path) -> &'static str {
    if std::thread::panicking() {
        eprintln!(
            "[kafka] the test failed: broker data and server.log kept in {}",
            dir.display()
        );
        "1"
    } else {
        ""
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo_root().join("scripts/kafka.sh"))
            .arg("stop")
            .env("KC_KAFKA_PID", self.pid.to_string())
            .env("KC_KAFKA_DIR", &self.dir)
            .env("KC_KAFKA_KEEP_DIR", keep_dir_if_failed(&self.dir))
            .env_remove("KC_KAFKA_CLUSTER_DIR")
            .status();
    }
}

/// A three-broker Apache Kafka cluster of a test's own (`scripts/kafka.sh cluster 3`): replication factor 3,
/// `min.insync.replicas=2`.
pub struct KafkaCluster {
    pub dir: std::path::PathBuf,
    /// PLAINTEXT `host:port` of node 1, 2, 3 (node ids 1..=3).
    pub nodes: Vec<String>,
    pub pids: Vec<u32>,
}

impl KafkaCluster {
    pub fn start(n: usize, props: &[&str]) -> Self {
        let joined = props.join(" ");
        let vars = kafka_script(&["cluster", &n.to_string()], &[("KC_KAFKA_PROPS", &joined)]);
        Self {
            dir: vars["KC_KAFKA_CLUSTER_DIR"].clone().into(),
            nodes: vars["KC_KAFKA_CLUSTER"]
                .split(',')
                .map(str::to_owned)
                .collect(),
            pids: vars["KC_KAFKA_CLUSTER_PIDS"]
                .split(',')
                .map(|p| p.parse().unwrap())
                .collect(),
        }
    }

    /// All nodes, comma-separated (the bootstrap list a user would configure).
    pub fn brokers(&self) -> String {
        self.nodes.join(",")
    }

    /// SIGKILL node `id` (1-based, the broker's `node.id`).
    pub fn kill(&mut self, id: i32) {
        let pid = self.pids[(id - 1) as usize];
        kill_pid(pid, "KILL");
        assert!(
            wait_exit(pid, Duration::from_secs(30)),
            "node {id} still alive 30 s after SIGKILL"
        );
    }

    /// SIGTERM node `id` and wait for its clean shutdown (a rolling restart's first half).
    pub fn stop(&mut self, id: i32) {
        let pid = self.pids[(id - 1) as usize];
        kill_pid(pid, "TERM");
        if !wait_exit(pid, Duration::from_secs(60)) {
            self.kill(id);
        }
    }

    /// Starts node `id` again (same ports, same data).
    pub fn restart(&mut self, id: i32) {
        let port = self.nodes[(id - 1) as usize]
            .rsplit(':')
            .next()
            .unwrap()
            .to_owned();
        let dir = self.dir.join(format!("node{id}"));
        self.pids[(id - 1) as usize] = start_node(&dir, &port);
    }

    /// The node id that leads `topic`/`partition` now, as metadata reports it.
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .create()
            .unwrap();
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .unwrap();
        md.topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .unwrap()
            .leader()
    }

    /// The node id of `group`'s coordinator: the leader of the group's `__consumer_offsets` partition,
    /// `(javaHash(group) & 0x7fffffff) % offsets.topic.num.partitions` (5 in scripts/kafka.sh).
    pub fn coordinator(&self, group: &str) -> i32 {
        let p = (java_string_hash(group) & 0x7fff_ffff) % 5;
        self.leader("__consumer_offsets", p)
    }
}

/// Java's `String.hashCode` (for the group → __consumer_offsets partition mapping).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
        let _ = std::process::Command::new(repo_root().join("scripts/kafka.sh"))
            .arg("stop")
            .env("KC_KAFKA_CLUSTER_DIR", &self.dir)
            .env("KC_KAFKA_CLUSTER_PIDS", pids.join(","))
            .env("KC_KAFKA_KEEP_DIR", keep_dir_if_failed(&self.dir))
            .env_remove("KC_KAFKA_PID")
            .env_remove("KC_KAFKA_DIR")
            .status();
    }
}
