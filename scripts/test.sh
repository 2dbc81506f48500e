#!/usr/bin/env bash
# The test command: installs/starts what the tests need, then runs every test (unit + integration).
# Extra arguments go to `cargo test` (e.g. scripts/test.sh runtime::).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
eval "$(scripts/tansu.sh start)"
trap 'scripts/tansu.sh stop' EXIT
export KC_TANSU_BROKERS
export KC_TANSU_BIN="${TANSU_ROOT:-$HOME/.cache/kafka-component/tansu}/bin/tansu"
cargo test --all-targets -- "$@"
