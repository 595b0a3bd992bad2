#!/usr/bin/env bash
# Issue 15's accuracy parity on the CPU: the same CIFAR-10 recipe trained by Ember and by
# PyTorch (benches/torch_cifar_parity.py) on the same training images and the same held-out
# 5,000, for each seed; plus Ember's previous recipe on the same seeds. Results: docs/results.md.
#
#   scripts/cifar_parity.sh OUT_DIR [SEEDS...]        (seeds default to 1 2)
#   taskset -c 1 env THREADS=1 scripts/cifar_parity.sh OUT_DIR    (both on one core)
#
# Needs the release `ember` (EMBER_BIN), python3 with torch + PIL, and the JPEG CIFAR-10 at
# ../shared/data/cifar10/cifar10-train-jpg.tar.gz (extracted once into OUT_DIR for PyTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$(realpath -m "${1:?usage: scripts/cifar_parity.sh OUT_DIR [SEEDS...]}")"; shift
SEEDS=("$@"); [ ${#SEEDS[@]} -eq 0 ] && SEEDS=(1 2)
EMBER_BIN="${EMBER_BIN:-${CARGO_TARGET_DIR:-target}/release/ember}"
ARCHIVE="$(realpath ../shared/data/cifar10/cifar10-train-jpg.tar.gz)"
EPOCHS="${EPOCHS:-10}" LIMIT="${LIMIT:-15000}"
export EMBER_NO_TUI=1
mkdir -p "$OUT"
[ -d "$OUT/jpg/cifar10/train" ] || { mkdir -p "$OUT/jpg"; tar xzf "$ARCHIVE" -C "$OUT/jpg"; }

# The recipe (examples/resnet_cifar.rs's at the time, with cutout 16, since lowered to 8; on a
# ResNet-18 of width 16) and the previous one (no cutout, no label smoothing, decay on every
# parameter, Kaiming fan-in init).
recipe() {
  cat <<TOML
model = "resnet18_cifar"
dataset = "folder:$ARCHIVE"
val_split = 0.1
train_limit = $LIMIT
epochs = $EPOCHS
batch_size = 128
optimizer = "momentum"
lr = 0.1
momentum = 0.9
nesterov = true
weight_decay = 5e-4
schedule = "one-cycle"
augment = "cifar"
monitor = "val_accuracy"
backend = "flex"
workers = 1
log_every_secs = 600.0
diagnostics = false
TOML
  if [ "$1" = new ]; then
    printf 'cutout = 16\nlabel_smoothing = 0.1\nno_decay_norm_bias = true\n\n[model_options]\nbase_channels = 16\n'
  else
    printf '\n[model_options]\nbase_channels = 16\ninit = "kaiming"\n'
  fi
}

for seed in "${SEEDS[@]}"; do
  for r in new old; do
    run="$OUT/ember-$r-s$seed"
    [ -f "$run/report.json" ] && continue
    rm -rf "$run"
    recipe "$r" > "$OUT/$r.toml"
    start=$(date +%s.%N)
    "$EMBER_BIN" train --config "$OUT/$r.toml" --seed "$seed" --out "$run" > "$run.log" 2>&1
    echo "{\"framework\":\"ember\",\"recipe\":\"$r\",\"seed\":$seed,\"wall_s\":$(echo "$(date +%s.%N) - $start" | bc)}" | tee -a "$OUT/wall.jsonl"
    if [ "$r" = new ] && [ ! -f "$OUT/torch-new-s$seed.jsonl" ]; then
      python3 benches/torch_cifar_parity.py --images "$OUT/jpg/cifar10/train" --ember-run "$run" \
        --epochs "$EPOCHS" --seed "$seed" --train-limit "$LIMIT" --no-decay-norm-bias --threads "${THREADS:-2}" \
        > "$OUT/torch-new-s$seed.jsonl.part" && mv "$OUT/torch-new-s$seed.jsonl.part" "$OUT/torch-new-s$seed.jsonl"
    fi
  done
done
echo "done: $OUT"
