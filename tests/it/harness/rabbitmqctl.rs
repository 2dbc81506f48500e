//! What only the broker's own tooling shows about a queue (`rabbitmqctl`): unacknowledged deliveries and the
//! prefetch applied to a consumer. Each call takes about 2 s.

use std::time::Duration;

use super::*;

impl Rabbit {
    /// Input messages not settled yet: ready in the queue, or delivered to a worker and neither acked nor
    /// rejected. A passive `queue.declare` counts ready messages only, so a check built on [`Rabbit::count`] alone
    /// would pass against a worker that never acks; `rabbitmqctl` asks the queue for both numbers.
    pub async fn unsettled_now(&self, kind: &str) -> u64 {
        let name = self.q(kind);
        let out = tokio::task::spawn_blocking(|| {
            std::process::Command::new("rabbitmqctl")
                .args([
                    "list_queues",
                    "-q",
                    "--no-table-headers",
                    "name",
                    "messages_ready",
                    "messages_unacknowledged",
                ])
                .output()
                .expect("rabbitmqctl")
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "rabbitmqctl list_queues: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let row = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cols| cols.first() == Some(&name.as_str()))
            .unwrap_or_else(|| panic!("queue {name} not listed by rabbitmqctl:\n{text}"));
        row[1..]
            .iter()
            .map(|n| n.parse::<u64>().expect("a count"))
            .sum()
    }

    /// The prefetch count of each consumer on queue `kind`, as the broker applies it (`rabbitmqctl`).
    pub async fn consumer_prefetch(&self, kind: &str) -> Vec<u64> {
        let name = self.q(kind);
        let out = tokio::task::spawn_blocking(|| {
            std::process::Command::new("rabbitmqctl")
                .args([
                    "list_consumers",
                    "-q",
                    "--no-table-headers",
                    "queue_name",
                    "prefetch_count",
                ])
                .output()
                .expect("rabbitmqctl")
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "rabbitmqctl list_consumers: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|cols| cols.first() == Some(&name.as_str()))
            .map(|cols| cols[1].parse().expect("a prefetch count"))
            .collect()
    }

    /// Waits (up to 15 s) until every input is settled (acked or rejected, see [`Rabbit::unsettled_now`]) and
    /// returns how many are not.
    pub async fn unsettled_inputs(&self) -> u64 {
        let settled = poll_every(
            Duration::from_millis(100),
            Duration::from_secs(15),
            || async { (self.unsettled_now("messages").await == 0).then_some(()) },
        )
        .await;
        match settled {
            Some(()) => 0,
            None => self.unsettled_now("messages").await,
        }
    }
}
