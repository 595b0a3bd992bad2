#!/usr/bin/env bash
# Fault soak: kill -9 a seeded training run at random moments (during training, validation and
# checkpoint writing), resume it each time, and check that its final metrics equal those of an
# uninterrupted run with the same seed. Prints one JSON line; docs/reliability.md has results.
#
#   scripts/soak.sh [KILLS] [WORKDIR]        (KILLS defaults to 20)
#
# Uses EMBER_BIN if set, else builds `ember` in release. Offline: the MNIST subset the repo ships.
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS="${1:-20}"
WORK="${2:-$(mktemp -d /tmp/ember-soak.XXXXXX)}"
export EMBER_OFFLINE=1 EMBER_NO_TUI=1
if [ -z "${EMBER_BIN:-}" ]; then
  cargo build --release -p ember-cli --bin ember >&2
  EMBER_BIN="${CARGO_TARGET_DIR:-target}/release/ember"
fi

# Short epochs, so that a kill lands in every phase of many epochs: 1,536 images, 8 epochs,
# a checkpoint per epoch. Deterministic: one loader worker, a fixed seed.
args=(train --model lenet5_modern --dataset mnist --data-dir data/mnist-subset
      --train-limit 1536 --val-split 0.1 --epochs 8 --batch-size 64 --optimizer momentum
      --lr 0.05 --schedule cosine --workers 1 --seed 7 --backend flex)

# Whether the run has a checkpoint whose three files are all there (what --resume needs).
complete_checkpoint() {
  local m n
  for m in "$WORK"/soak/checkpoint/model-*.bpk; do
    n=${m##*model-}; n=${n%.bpk}
    [ -f "$WORK/soak/checkpoint/optim-$n.bpk" ] && [ -f "$WORK/soak/checkpoint/scheduler-$n.bpk" ] && return 0
  done
  return 1
}

# The columns a resumed run must reproduce exactly (not the timings).
metrics() { cut -d, -f1-8 "$1/metrics.csv"; }

rm -rf "$WORK/ref" "$WORK/soak"
mkdir -p "$WORK"
start=$(date +%s.%N)
"$EMBER_BIN" "${args[@]}" --out "$WORK/ref" >/dev/null
ref_seconds=$(echo "$(date +%s.%N) - $start" | bc)

kills=0 resumes=0 refused=0
first=1
while [ "$kills" -lt "$KILLS" ]; do
  if [ "$first" = 1 ]; then
    "$EMBER_BIN" "${args[@]}" --out "$WORK/soak" >>"$WORK/soak.log" 2>&1 &
  else
    "$EMBER_BIN" train --resume "$WORK/soak" >>"$WORK/soak.log" 2>&1 &
  fi
  pid=$!
  # A random moment within the reference run's length.
  delay=$(python3 -c "import random; print(random.uniform(0.05, $ref_seconds))")
  sleep "$delay"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    if [ "$first" = 0 ]; then resumes=$((resumes + 1)); fi
    # Killed before the first checkpoint (nothing to resume), or after the run wrote its
    # report (it had finished: a resume rightly refuses): start again.
    if ! complete_checkpoint || [ -f "$WORK/soak/report.json" ]; then
      rm -rf "$WORK/soak"; first=1; continue
    fi
    first=0
  else
    # It finished before the kill: start over so that every kill lands in a running process.
    wait "$pid" || refused=$((refused + 1))
    rm -rf "$WORK/soak"; first=1
  fi
done
# The last resume runs to the end.
if [ "$first" = 1 ]; then
  "$EMBER_BIN" "${args[@]}" --out "$WORK/soak" >>"$WORK/soak.log" 2>&1
else
  "$EMBER_BIN" train --resume "$WORK/soak" >>"$WORK/soak.log" 2>&1
  resumes=$((resumes + 1))
fi

if diff <(metrics "$WORK/ref") <(metrics "$WORK/soak") >"$WORK/diff.txt"; then same=true; else same=false; fi
panics=$(grep -c "internal error" "$WORK/soak.log" || true)
printf '{"kills":%d,"resumes":%d,"failed_runs":%d,"panics":%d,"metrics_identical":%s,"ref_seconds":%.1f,"work":"%s","date":"%s"}\n' \
  "$kills" "$resumes" "$refused" "$panics" "$same" "$ref_seconds" "$WORK" "$(date -u +%F)"
[ "$same" = true ] && [ "$panics" = 0 ] && [ "$refused" = 0 ]
