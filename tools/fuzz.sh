#!/usr/bin/env bash
# Runs the property-based fuzz targets (tests/fuzz_parsers.rs) with many more cases than the
# normal test run, each for a bounded time, and prints the time each took.
#
#   tools/fuzz.sh [CASES] [SECONDS_PER_TARGET]     (defaults: 20000 cases, 300 s)
#
# cargo-fuzz needs nightly and a network install; proptest runs offline on stable and shrinks
# failures to a minimal input, which it prints. A target that hits its time limit counts as
# passed (no failure found in the cases it reached) and is reported as "time limit".
set -euo pipefail
cd "$(dirname "$0")/.."
CASES="${1:-20000}"
LIMIT="${2:-300}"
TARGETS=(
  arbitrary_bytes_never_panic_any_parser
  arbitrary_text_never_panics_any_parser
  mutated_samples_never_panic_any_parser
  catalog_matcher_never_panics
  catalog_matcher_on_mutated_hosts
)
cargo test --test fuzz_parsers --no-run >/dev/null 2>&1 || cargo test --test fuzz_parsers --no-run
failed=0
for t in "${TARGETS[@]}"; do
  start=$(date +%s)
  set +e
  PROPTEST_CASES="$CASES" timeout "$LIMIT" cargo test -q --test fuzz_parsers -- --exact "$t" >"/tmp/fuzz-$t.log" 2>&1
  rc=$?
  set -e
  took=$(( $(date +%s) - start ))
  case $rc in
    0) echo "ok          $t: $CASES cases in ${took}s" ;;
    124) echo "time limit  $t: stopped after ${took}s without a failure" ;;
    *) echo "FAILED      $t after ${took}s (see /tmp/fuzz-$t.log)"; grep -E "minimal failing input|panicked" "/tmp/fuzz-$t.log" | head -5; failed=1 ;;
  esac
done
exit $failed
