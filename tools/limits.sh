#!/usr/bin/env bash
# Runs the large resource-limit checks of SECURITY.md (tests/limits_big.rs, ignored in the
# normal test run) against the real binary and prints wall time and peak RSS of each.
#
#   tools/limits.sh [GARBAGE_GB] [CATALOG_RULES]      (defaults: 10 GB, 1000000 rules)
#
# GARBAGE_GB of generated garbage is streamed into `shadowscope import --format squid -`;
# a CSV user catalog of CATALOG_RULES rules is loaded by `shadowscope --catalog F catalog lookup`.
# SHADOWSCOPE_BIN=target/release/shadowscope measures a release build instead of the debug one.
set -euo pipefail
cd "$(dirname "$0")/.."
export SHADOWSCOPE_GARBAGE_GB="${1:-10}"
export SHADOWSCOPE_RULES="${2:-1000000}"
cargo test --test limits_big -- --ignored --nocapture --test-threads 1 2>&1 |
  grep -E '^(garbage|catalog):|^test |panicked|assertion|left|right'
