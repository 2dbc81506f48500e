#!/usr/bin/env bash
# The test command: installs/starts what the tests need (RabbitMQ, Apache Kafka 4.4.0), then runs every test
# (unit, integration, property tests, the fault suite). Extra arguments go to `cargo test` (e.g. scripts/test.sh
# runtime::). Tests that need a broker of their own (faults, cluster) start it through scripts/kafka.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Every broker of this run (the shared one and those the fault suite starts) lives under one folder, so that the
# cleanup stops them all, even one whose test process was killed.
export KC_KAFKA_ROOT; KC_KAFKA_ROOT=$(mktemp -d /tmp/kc-test-run.XXXXXX)
trap 'scripts/kafka.sh stop-all; rm -rf "$KC_KAFKA_ROOT"' EXIT
eval "$(scripts/kafka.sh start)"
export KC_KAFKA_BROKERS KC_KAFKA_SCRAM_BROKERS KC_KAFKA_SSL_BROKERS KC_KAFKA_MTLS_BROKERS KC_KAFKA_SASL_SSL_BROKERS \
  KC_KAFKA_CA KC_KAFKA_CLIENT_CERT KC_KAFKA_CLIENT_KEY KC_KAFKA_PID KC_KAFKA_DIR KC_KAFKA_LIBS \
  KC_KAFKA_OAUTH_BROKERS KC_OAUTH_TOKEN_URL KC_OAUTH_CLIENT_ID KC_OAUTH_CLIENT_SECRET KC_OAUTH_AUDIENCE \
  KC_OAUTH_SHORT_CLIENT_ID KC_OAUTH_NOACCESS_CLIENT_ID
cargo test --all-targets -- "$@"
