#!/usr/bin/env bash
# Installs and starts what the tests and the demo need. Idempotent: each step is skipped when done.
#  - Debian packages to build the vendored librdkafka (cmake, libssl-dev, libcurl4-openssl-dev)
#  - RabbitMQ: installed if missing, started if not running
#  - Java 17 and Maven (Apache Kafka runs from its Maven Central jars, see scripts/kafka.sh), and the Kafka jars
#    fetched once into ~/.cache/kafka-component; skipped with --no-kafka (the demo on embedded defaults needs none)
set -euo pipefail

log() { printf '[setup] %s\n' "$*" >&2; }

need_pkgs=()
command -v cmake >/dev/null || need_pkgs+=(cmake)
dpkg -s libssl-dev >/dev/null 2>&1 || need_pkgs+=(libssl-dev)
dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || need_pkgs+=(libcurl4-openssl-dev)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
command -v openssl >/dev/null || need_pkgs+=(openssl)    # test CA and certificates
command -v java >/dev/null || need_pkgs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_pkgs+=(maven)
command -v python3 >/dev/null || need_pkgs+=(python3)   # free ports in scripts/kafka.sh
command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || need_pkgs+=(rabbitmq-server)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  log "starting RabbitMQ"
  rabbitmq-server -detached
  for _ in $(seq 1 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
fi
rabbitmqctl -q await_startup >/dev/null
log "RabbitMQ is running"

if [ "${1:-}" = "--no-kafka" ]; then exit 0; fi
"$(dirname "$0")/kafka.sh" fetch
log "Apache Kafka jars: ${KC_KAFKA_CACHE:-$HOME/.cache/kafka-component/kafka-4.4.0}/libs"
