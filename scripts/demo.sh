#!/usr/bin/env bash
# The demo: a Produce step and a Consume step of one flow on the local RabbitMQ and an embedded Kafka.
# Options go to the demo (--messages N, --records N, --partitions N, --brokers host:port). With --brokers it runs on a
# real cluster (no authentication), e.g. Apache Kafka: eval "$(scripts/kafka.sh start)"; scripts/demo.sh --brokers
# "$KC_KAFKA_BROKERS"; scripts/kafka.sh stop.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-kafka
cargo run --quiet --release --example demo -- "$@"
