#!/usr/bin/env bash
# Starts a tansu broker with SCRAM users on a free loopback port and prints `export` lines for the tests:
#   eval "$(scripts/tansu.sh start)"   → KC_TANSU_BROKERS, KC_TANSU_PID, KC_TANSU_DIR
#   scripts/tansu.sh stop              → stops the broker started above
# Users: scram512/scram512-pass (SCRAM-SHA-512), scram256/scram256-pass (SCRAM-SHA-256).
set -euo pipefail
TANSU="${TANSU_ROOT:-$HOME/.cache/kafka-component/tansu}/bin/tansu"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

case "${1:-start}" in
start)
  dir=$(mktemp -d /tmp/kc-tansu.XXXXXX)
  port=$(free_port)
  url="tcp://127.0.0.1:$port"
  common=(broker --listener-url "$url" --advertised-listener-url "$url" --storage-engine "sqlite://tansu.db" --silent)
  # 1. without authentication, to create the users
  # tansu resolves the sqlite path relative to its working directory
  (cd "$dir" && exec "$TANSU" "${common[@]}") >"$dir/setup.log" 2>&1 &
  pid=$!
  wait_port "$port" || { echo "tansu did not start, see $dir/setup.log" >&2; exit 1; }
  "$TANSU" user create scram512 scram512-pass --mechanism scram512 --broker "$url" >>"$dir/setup.log" 2>&1 || \
    "$TANSU" user create scram512 scram512-pass --mechanism scram512 >>"$dir/setup.log" 2>&1
  "$TANSU" user create scram256 scram256-pass --mechanism scram256 --broker "$url" >>"$dir/setup.log" 2>&1 || \
    "$TANSU" user create scram256 scram256-pass --mechanism scram256 >>"$dir/setup.log" 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # 2. again on the same file, with SCRAM required
  (cd "$dir" && exec "$TANSU" "${common[@]}" --authentication) >"$dir/broker.log" 2>&1 &
  pid=$!
  wait_port "$port" || { echo "tansu did not restart, see $dir/broker.log" >&2; exit 1; }
  echo "$pid" >"$dir/pid"
  echo "export KC_TANSU_BROKERS=127.0.0.1:$port KC_TANSU_PID=$pid KC_TANSU_DIR=$dir"
  ;;
stop)
  [ -n "${KC_TANSU_PID:-}" ] && kill "$KC_TANSU_PID" 2>/dev/null || true
  [ -n "${KC_TANSU_DIR:-}" ] && rm -rf "$KC_TANSU_DIR"
  ;;
esac
