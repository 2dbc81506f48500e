#!/usr/bin/env bash
# The fault suite's long run for longer: a produce and a consume worker on one topic with a fault every 30 s.
# Usage: scripts/long-run.sh [SECONDS]   (default 1200 = 20 minutes; CI runs the 180 s version)
# The RSS / file-descriptor / thread / task curve is printed and written to target/long-run.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
KC_LONG_RUN_SECS="${1:-1200}" cargo test --test faults long_run -- --nocapture
