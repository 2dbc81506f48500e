#!/usr/bin/env bash
# Installs and starts what the tests and the demo need. Idempotent: each step is skipped when done.
#  - Debian packages to build the vendored librdkafka (cmake, libssl-dev, libcurl4-openssl-dev)
#  - RabbitMQ: installed if missing, started if not running
#  - Java 17 and Maven (Apache Kafka runs from its Maven Central jars, see scripts/kafka.sh), and the Kafka jars
#    fetched once into ~/.cache/kafka-component; skipped with --no-kafka (the demo on embedded defaults needs none)
#  - the PyPI package aws-msk-iam-sasl-signer-python 1.0.2 (AWS's MSK IAM token signer, the tests' reference for
#    ours), for the `python3` on PATH; also skipped with --no-kafka
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
command -v python3 >/dev/null || need_pkgs+=(python3)   # free ports and the identity provider in scripts/kafka.sh
MSK_SIGNER=aws-msk-iam-sasl-signer-python==1.0.2
have_signer() { python3 -c 'import aws_msk_iam_sasl_signer' >/dev/null 2>&1; }
if [ "${1:-}" != "--no-kafka" ] && command -v python3 >/dev/null && ! have_signer; then
  python3 -m pip --version >/dev/null 2>&1 || need_pkgs+=(python3-pip)
fi
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

if ! have_signer; then
  log "installing $MSK_SIGNER from PyPI"
  pip=(python3 -m pip install -q --disable-pip-version-check --no-warn-script-location --root-user-action=ignore
    "$MSK_SIGNER")
  if ! out=$("${pip[@]}" 2>&1); then
    # A distribution's own Python (PEP 668) refuses; install for this user instead, beside its packages.
    if grep -q externally-managed <<<"$out"; then
      "${pip[@]}" --user --break-system-packages >&2
    else
      printf '%s\n' "$out" >&2; exit 1
    fi
  fi
  have_signer || { log "$MSK_SIGNER installed, but python3 cannot import aws_msk_iam_sasl_signer"; exit 1; }
fi
"$(dirname "$0")/kafka.sh" fetch
log "Apache Kafka jars: ${KC_KAFKA_CACHE:-$HOME/.cache/kafka-component/kafka-4.4.0}/libs"
