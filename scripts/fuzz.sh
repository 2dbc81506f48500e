#!/usr/bin/env bash
# Fuzzing: builds the cargo-fuzz targets of fuzz/ and runs each for a bounded time from its committed seed corpus
# (fuzz/corpus/<target>/, copied to a temporary folder first so that runs do not grow the committed corpus).
#
#   scripts/fuzz.sh [seconds per target, default 60] [target ...]      (default: every target in fuzz/fuzz_targets/)
#
# Exits non-zero when a target crashes (panic, failed assertion, an input that runs over 10 s, out of memory), after
# printing the input that did it (path, and base64 so that it survives a CI log) and the command that reproduces it.
#
# Stable toolchain: cargo-fuzz builds with RUSTFLAGS of its own. With its default `--sanitizer address` they include
# `-Zsanitizer=address`, which stable rustc refuses ("the option `Z` is only accepted on the nightly compiler").
# Two ways round that were tried on rustc 1.95.0 with cargo-fuzz 0.13.2 (2026-12-03), and both build and run:
# - `RUSTC_BOOTSTRAP=1`: stable accepts -Z flags (the ASan runtime ships with stable's rust-std), but it unlocks
#   every nightly feature on a stable compiler, and ASan slows each execution about 2x.
# - `--sanitizer none` (used here): what remains are stable -C flags (-Cpasses=sancov-module,
#   -Cllvm-args=-sanitizer-coverage-*, -Cdebug-assertions), so coverage-guided fuzzing with overflow checks on works
#   on stable as it is. ASan would add little: the crate forbids unsafe code, and librdkafka's C code is not
#   instrumented by cargo-fuzz in either mode.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${1:-60}
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

if ! cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# Beside the main build, so that a CI cache of the target dir keeps it. Its own folder because the fuzz build
# uses other RUSTFLAGS (everything, librdkafka's C build included, is built once more there).
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-target}")/fuzz"
opts=(--sanitizer none --target-dir "$target_dir")

cargo fmt --check --manifest-path fuzz/Cargo.toml
start=$SECONDS
cargo fuzz build "${opts[@]}"
echo "fuzz: built the fuzz targets in $((SECONDS - start)) s ($target_dir)"

work=$(mktemp -d /tmp/kc-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  cp -R "fuzz/corpus/$t/." "$work/$t/"
  log="$target_dir/$t.log"
  start=$SECONDS
  # -timeout: an input that runs longer is a failure (libFuzzer's default is 20 minutes).
  if cargo fuzz run "${opts[@]}" "$t" "$work/$t" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz: $t ok: ${execs:-?} inputs in $((SECONDS - start)) s, ${cov:-cov: ?}, corpus $(find "$work/$t" -type f | wc -l) files (log $log)"
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "fuzz: $t FAILED after $((SECONDS - start)) s; from its log ($log):"
    # The panic message, the backtrace's frames in this project's code, then libFuzzer's verdict.
    awk '/panicked at/ { p = 1 } p && /^stack backtrace:/ { p = 0; bt = 1; print; next } p { print }
         bt && /^ +[0-9]+: / { keep = ($0 ~ /kafka_component|fuzz_targets|__libfuzzer_sys_run/) }
         bt && keep && /^ +([0-9]+: | at )/ { print } /^==[0-9]+== ERROR/ { bt = 0 }' "$log" | head -60
    grep -E '^(==[0-9]+== ERROR|SUMMARY|MS: )' "$log" || tail -20 "$log"
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [ -n "$artifact" ] && [ -f "$artifact" ]; then
      echo "fuzz: $t: the input is $artifact ($(wc -c <"$artifact") bytes); reproduce with:"
      echo "  cargo fuzz run ${opts[*]} $t $artifact"
      echo "fuzz: or, from this log (base64 of the input):"
      echo "  mkdir -p fuzz/artifacts/$t && echo '$(head -c 65536 "$artifact" | base64 -w0)' | base64 -d > fuzz/artifacts/$t/input"
      echo "  cargo fuzz run ${opts[*]} $t fuzz/artifacts/$t/input"
    fi
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
