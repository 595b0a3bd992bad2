#!/usr/bin/env bash
# Fuzzes every target for RUNS executions (default 1,000,000) or MAX_SECONDS (default 900)
# each, then merges what found new coverage into the committed corpus (fuzz/corpus/<target>,
# minimised by libFuzzer's -merge). Crashes land in fuzz/artifacts/<target>/: copy each into
# fuzz/corpus/<target>/ once fixed, so that CI replays it. Prints one JSON line per target.
#
#   fuzz/run.sh [TARGET ...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 lets it
# build without a sanitizer (-s none), which is how docs/reliability.md's figures were made.
set -euo pipefail
cd "$(dirname "$0")"
RUNS="${RUNS:-1000000}"
MAX_SECONDS="${MAX_SECONDS:-900}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ember-fuzz-target}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(idx cifar image archive config run_json space trials weights)
RUSTC_BOOTSTRAP=1 cargo fuzz build -s none --fuzz-dir . >&2
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
work="$(mktemp -d /tmp/ember-fuzz.XXXXXX)"
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "artifacts/$t"
  cp corpus/"$t"/* "$work/$t/"
  start=$(date +%s)
  set +e
  "$bin/$t" "$work/$t" -runs="$RUNS" -max_total_time="$MAX_SECONDS" -rss_limit_mb=4096 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$work/$t.log" 2>&1
  rc=$?
  set -e
  seconds=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo 0)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  # Keep only the inputs that add coverage, beside the seeds.
  "$bin/$t" -merge=1 "corpus/$t" "$work/$t" >/dev/null 2>&1 || true
  printf '{"target":"%s","executions":%s,"seconds":%d,"exit":%d,"artifacts":%d,"corpus":%d,"date":"%s"}\n' \
    "$t" "${execs:-0}" "$seconds" "$rc" "$crashes" "$(ls "corpus/$t" | wc -l)" "$(date -u +%F)"
done
