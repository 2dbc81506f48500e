//! One Consume case of the group faults (`group.rs`, `backlog.rs`): its own RabbitMQ node and Apache Kafka
//! broker, a topic, a group of the chosen protocol, and workers of the step; plus the worker-log helpers the
//! cases assert with.

use super::*;

/// One Consume case: brokers, a topic, a group, the step's AMQP topology and fake API, and the worker env.
pub(crate) struct ConsumeCase {
    pub(crate) rabbit: RabbitNode,
    pub(crate) kafka: KafkaBroker,
    pub(crate) rb: Rabbit,
    _api: wiremock::MockServer,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) topic: String,
    pub(crate) group: String,
    pub(crate) partitions: i32,
}

impl ConsumeCase {
    /// Brokers (`props` for Kafka, plus what `protocol` needs for a session of `session`), a topic of
    /// `partitions`, and a consume step of `protocol`'s group with a session of `session` and `cfg` merged into
    /// `{brokers, topic, groupId}`, and `env` added to the worker's environment.
    pub(crate) async fn start(
        (protocol, session): (Protocol, Duration),
        props: &[&str],
        partitions: i32,
        cfg: Value,
        env: &[(&str, &str)],
    ) -> Self {
        let mut all = protocol.broker_props(session);
        all.extend(props.iter().map(|p| (*p).to_owned()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let (rabbit, kafka) = start_brokers_with(&all).await;
        let (topic, group) = (rand_name("fg"), rand_name("gg"));
        create_topic_async(&kafka.brokers(), &topic, partitions).await;
        let rb = Rabbit::setup_on(&rabbit.addr(), "fg", true).await;
        let mut step = merge(
            json!({"brokers": kafka.brokers(), "topic": topic, "groupId": group}),
            protocol.cfg(session),
        );
        for (k, v) in cfg.as_object().into_iter().flatten() {
            step[k] = v.clone();
        }
        let api = fake_api(step).await;
        let hostname = rb.prefix.clone();
        let env = worker_env(&rb, &api.uri(), "consume", &hostname, env);
        Self {
            rabbit,
            kafka,
            rb,
            _api: api,
            env,
            topic,
            group,
            partitions,
        }
    }

    /// Writes records `c{i}` for `i` in `range`, round-robin over the partitions.
    pub(crate) async fn fill(&self, range: std::ops::Range<usize>) {
        let (b, t, p) = (
            self.kafka.brokers(),
            self.topic.clone(),
            usize::try_from(self.partitions).unwrap(),
        );
        tokio::task::spawn_blocking(move || fill_range(&b, &t, range, p))
            .await
            .unwrap();
    }

    /// A new worker of the step that has received a tick (started its group member).
    pub(crate) async fn worker(&self, tick: &str) -> Worker {
        let w = Worker::spawn(&self.env);
        w.ready().await;
        self.tick_until_started(&w, tick).await;
        w
    }

    /// Publishes ticks (several containers compete on one step queue) until `w` started its member. The
    /// worker's log line is the signal: the cases' timing starts when the member starts, before it has joined
    /// the group, which is the first thing the coordinator could show.
    pub(crate) async fn tick_until_started(&self, w: &Worker, tick: &str) {
        let deadline = Deadline::new(Duration::from_secs(30), "a tick to reach the worker")
            .every(Duration::from_millis(300));
        let mut i = 0;
        while !w.logs().contains("Consumer group member started") {
            self.rb
                .publish_input(
                    &json!({"body": {}}),
                    &[("messageId", &format!("{tick}-{i}"))],
                )
                .await;
            i += 1;
            deadline.tick().await;
        }
    }

    pub(crate) async fn committed(&self) -> Vec<Option<i64>> {
        let (b, g, t, p) = (
            self.kafka.brokers(),
            self.group.clone(),
            self.topic.clone(),
            self.partitions,
        );
        tokio::task::spawn_blocking(move || committed_offsets(&b, &g, &t, p))
            .await
            .unwrap()
    }

    /// Reads data messages until `n` distinct records arrived or `timeout` passed.
    pub(crate) async fn collect(&self, got: &mut Emitted, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while got.seen.len() < n && Instant::now() < deadline {
            if let Some(m) = self.rb.next("data", Duration::from_secs(1)).await {
                got.add(&m);
            }
        }
    }

    pub(crate) async fn teardown(self) {
        let _ = self
            .rb
            .ch
            .queue_purge(self.rb.q("data").into(), QueuePurgeOptions::default())
            .await;
        self.rb.teardown().await;
        drop(self.kafka);
        drop(self.rabbit);
    }
}

/// "Partitions assigned." lines of a worker: the partition list of each.
pub(crate) fn assignments(logs: &str) -> Vec<String> {
    logs.lines()
        .filter(|l| l.contains("\"Partitions assigned.\""))
        .map(|l| {
            serde_json::from_str::<Value>(l).map_or_else(
                |_| l.to_owned(),
                |v| v["partitions"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

pub(crate) fn count_lines(logs: &str, needle: &str) -> usize {
    logs.lines().filter(|l| l.contains(needle)).count()
}
