#!/usr/bin/env bash
# Installs and starts what the tests and the demo need. Idempotent: each step is skipped when done.
#  - Debian packages to build the vendored librdkafka (cmake, libssl-dev, libcurl4-openssl-dev)
#  - RabbitMQ: installed if missing, started if not running
#  - tansu 0.6.0 (Kafka-compatible broker with SCRAM), built once into a cache (~12 min cold);
#    skipped with --no-tansu (the demo does not need it)
set -euo pipefail
TANSU_ROOT="${TANSU_ROOT:-$HOME/.cache/kafka-component/tansu}"

log() { printf '[setup] %s\n' "$*" >&2; }

need_pkgs=()
command -v cmake >/dev/null || need_pkgs+=(cmake)
dpkg -s libssl-dev >/dev/null 2>&1 || need_pkgs+=(libssl-dev)
dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || need_pkgs+=(libcurl4-openssl-dev)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
command -v stunnel >/dev/null || need_pkgs+=(stunnel4)   # TLS-terminating proxy for the TLS tests
command -v openssl >/dev/null || need_pkgs+=(openssl)    # test CA and certificates
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

if [ "${1:-}" = "--no-tansu" ]; then exit 0; fi
if ! "$TANSU_ROOT/bin/tansu" --version >/dev/null 2>&1; then
  log "building tansu 0.6.0 into $TANSU_ROOT (once, about 12 minutes)"
  cargo install tansu --version 0.6.0 --locked --no-default-features --features dynostore,libsql --root "$TANSU_ROOT" >&2
fi
log "tansu: $("$TANSU_ROOT/bin/tansu" --version)"
