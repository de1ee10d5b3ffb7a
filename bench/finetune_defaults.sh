#!/usr/bin/env bash
# The fine-tuning defaults of `train --init-from` (the learning rate, warm-up and dropout used
# when the flags leave them open): fine-tunes one base model on one small text for a fixed
# number of steps (the same work whatever else the machine does) with each setting of a grid,
# one thread each, one after the other, and prints a Markdown table of the best validation
# loss (nats/char) of each, beside the base before any step (--steps 0).
#
#   bench/finetune_defaults.sh BASE TEXT STEPS "LR WARMUP DROPOUT" ["LR WARMUP DROPOUT"]...
#
# e.g. (the measurement in docs/commands.md, Fine-tuning):
#   bench/finetune_defaults.sh base.safetensors en50k.txt 400 \
#     "0.0005 50 0.2" "0.001 50 0.2" "0.002 50 0.2" "0.004 50 0.2"
# CHARRNN (default target/release/charrnn) is the binary; SEEDS (default 1) the seeds.
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,14p' "$0"; exit 2; }
base=$1 text=$2 steps=$3
shift 3
bin=${CHARRNN:-target/release/charrnn}
seeds=${SEEDS:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

best() { # the best validation loss of a run folder
    grep '"kind":"val"' "$1/metrics.jsonl" | sed 's/.*"loss":\([0-9.]*\).*/\1/' | sort -g | head -1
}

"$bin" train "$text" --init-from "$base" --steps 0 --out "$work/zero" --threads 1 \
    --sample-every 0 2>/dev/null
echo "base $base on $text ($steps steps of 32 × 32, 1 thread, seeds $seeds)"
echo
echo "| lr | warm-up | dropout | best validation loss (nats/char), by seed |"
echo "| --- | --- | --- | --- |"
echo "| (no step) | | | $(best "$work/zero") |"
for setting in "$@"; do
    read -r lr warmup dropout <<<"$setting"
    losses=()
    for seed in $seeds; do
        out="$work/$lr-$warmup-$dropout-$seed"
        "$bin" train "$text" --init-from "$base" --steps "$steps" --lr "$lr" --warmup "$warmup" \
            --dropout "$dropout" --seed "$seed" --out "$out" --threads 1 --sample-every 0 \
            2>/dev/null
        losses+=("$(best "$out")")
    done
    echo "| $lr | $warmup | $dropout | ${losses[*]} |"
done
