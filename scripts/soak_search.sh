#!/usr/bin/env bash
# Fault soak of `ember search --parallel 2`: kill -9 a seeded grid search at random moments
# (while two trials train, validate, write checkpoints, or the search writes trials.json),
# run the same command again each time (which resumes it), and check that every trial's
# metrics equal those of an uninterrupted search, that trials.json stays valid JSON and that
# results.csv and best.toml are written. Prints one JSON line; docs/reliability.md has results.
#
#   scripts/soak_search.sh [KILLS] [WORKDIR]        (KILLS defaults to 20)
#
# Uses EMBER_BIN if set, else builds `ember` in release. Offline: the MNIST subset the repo ships.
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS="${1:-20}"
WORK="$(realpath -m "${2:-$(mktemp -d /tmp/ember-soak-search.XXXXXX)}")"
export EMBER_OFFLINE=1 EMBER_NO_TUI=1
if [ -z "${EMBER_BIN:-}" ]; then
  cargo build --release -p ember-cli --bin ember >&2
  EMBER_BIN="${CARGO_TARGET_DIR:-target}/release/ember"
fi
mkdir -p "$WORK"

# Four trials (2 learning rates x 2 optimizers) of 4 short epochs each, two at a time.
cat > "$WORK/space.toml" <<TOML
[base]
model = "lenet5_modern"
dataset = "mnist"
data_dir = "$(pwd)/data/mnist-subset"
val_split = 0.1
train_limit = 1024
epochs = 4
batch_size = 64
schedule = "cosine"
workers = 1
seed = 7
backend = "flex"
log_every_secs = 600.0

[space.lr]
type = "float"
low = 0.01
high = 0.05
log = true
steps = 2

[space.optimizer]
type = "choice"
values = ["momentum", "adam"]
TOML
# Called directly (not through a shell function) so that `$!` is the search's own pid.
args=(search --space "$WORK/space.toml" --strategy grid --trials 4 --parallel 2)

# What a resumed trial must reproduce exactly (not the timings), and a search's outcome.
metrics() { cut -d, -f1-8 "$1/metrics.csv"; }
outcome() {
  local t
  for t in "$1"/trial-*/; do echo "== $(basename "$t")"; metrics "$t"; done
  cut -d, -f1-6,8- "$1/results.csv"     # all but the seconds column
}

rm -rf "$WORK/ref" "$WORK/soak"
start=$(date +%s.%N)
"$EMBER_BIN" "${args[@]}" --out "$WORK/ref" >/dev/null 2>&1
ref_seconds=$(echo "$(date +%s.%N) - $start" | bc)

kills=0 restarts=0 completed_early=0 refused=0 bad_json=0
while [ "$kills" -lt "$KILLS" ]; do
  "$EMBER_BIN" "${args[@]}" --out "$WORK/soak" >>"$WORK/soak.log" 2>&1 &
  pid=$!
  delay=$(python3 -c "import random; print(random.uniform(0.05, $ref_seconds))")
  sleep "$delay"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    # trials.json must be valid whenever a kill lands (atomic writes).
    if [ -f "$WORK/soak/trials.json" ] && ! python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$WORK/soak/trials.json" 2>/dev/null; then
      bad_json=$((bad_json + 1))
    fi
    restarts=$((restarts + 1))
  else
    # The search finished before the kill: start a new one so that every kill lands.
    if wait "$pid"; then completed_early=$((completed_early + 1)); else refused=$((refused + 1)); fi
    rm -rf "$WORK/soak"
  fi
done
# The last restart runs to the end.
"$EMBER_BIN" "${args[@]}" --out "$WORK/soak" >>"$WORK/soak.log" 2>&1 || true

failed=$(python3 -c "import json,sys; print(sum(1 for t in json.load(open(sys.argv[1])) if t.get('state') != 'complete'))" "$WORK/soak/trials.json" 2>/dev/null || echo -1)
if diff <(outcome "$WORK/ref") <(outcome "$WORK/soak") >"$WORK/diff.txt" 2>&1; then same=true; else same=false; fi
[ -f "$WORK/soak/best.toml" ] && best=true || best=false
panics=$(grep -c "internal error" "$WORK/soak.log" || true)
trial_resumes=$(grep -c "^resuming $WORK/soak/trial-" "$WORK/soak.log" || true)
printf '{"kills":%d,"restarts":%d,"searches_finished_before_a_kill":%d,"searches_that_failed":%d,"trial_resumes":%d,"trials_not_completed":%s,"invalid_trials_json":%d,"panics":%d,"best_toml":%s,"metrics_identical":%s,"ref_seconds":%.1f,"work":"%s","date":"%s"}\n' \
  "$kills" "$restarts" "$completed_early" "$refused" "$trial_resumes" "$failed" "$bad_json" "$panics" "$best" "$same" "$ref_seconds" "$WORK" "$(date -u +%F)"
[ "$same" = true ] && [ "$panics" = 0 ] && [ "$refused" = 0 ] && [ "$bad_json" = 0 ] && [ "$failed" = 0 ] && [ "$best" = true ]
