#!/usr/bin/env bash
# The repository's base model (models/english.safetensors), rebuilt from its texts with one
# fixed command: a 2×256 LSTM trained by charrnn on tiny Shakespeare, the Project Gutenberg
# fairy tales (#27200) and War and Peace (the Maude translation, as in #2600), all public
# domain, then exported as f32 weights alone (3.6 MB). models/README.md is its card.
#
#   scripts/base_model.sh                  # the real thing: 12,000 steps, about 20 minutes of training on 2 cores
#   STEPS=20 OUT=/tmp/b MODEL=/tmp/b/m.safetensors scripts/base_model.sh   # a smoke test
#
# Settings (environment):
#   DATA   folder of fairy-tales.txt and warpeace.txt [../shared/data]; tiny Shakespeare is
#          the repository's data/tinyshakespeare.txt. Each text's sha256 is checked; a
#          different text (say, a fresh `charrnn fetch gutenberg 27200`, whose licence header
#          and footer are stripped differently) is refused unless ANY_TEXT=1.
#   STEPS  optimiser steps [12000: about 2.2 passes over the 5.7 M training characters]
#   OUT    the run folder [runs/base-english]; MODEL the exported file [models/english.safetensors]
#   BIN    a built charrnn [target/release/charrnn, built if missing]
#
# Reproducible: a run is a function of its text, flags, seed and thread count (and of the
# products' precision, pinned here to bf16: on CPUs without AMX it runs as rounded f32
# products, no faster and with the same rounding, but not promised bit for bit).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
STEPS=${STEPS:-12000}
OUT=${OUT:-runs/base-english}
MODEL=${MODEL:-models/english.safetensors}
BIN=${BIN:-target/release/charrnn}

# The texts and their sha256 (see models/README.md for where each comes from).
TEXTS=(
  "data/tinyshakespeare.txt 86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
  "$DATA/fairy-tales.txt 1417da59cd0b64149f7597a2ad1b2f94133f0a5139776e5b81eec0d9b169470c"
  "$DATA/warpeace.txt b0fc81c399971eaf738c8be89809e6a0d95c151749112b04f06b6af648d8a39f"
)
files=()
for entry in "${TEXTS[@]}"; do
  read -r file sum <<<"$entry"
  if [ ! -f "$file" ]; then
    echo "base_model.sh: $file is missing; set DATA to the folder of fairy-tales.txt and warpeace.txt" >&2
    exit 2
  fi
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$sum" ] && [ "${ANY_TEXT:-0}" != 1 ]; then
    echo "base_model.sh: $file has sha256 $got, not $sum (the text the model card names); ANY_TEXT=1 trains on it anyway" >&2
    exit 2
  fi
  files+=("$file")
done
[ -x "$BIN" ] || cargo build --release

# The command the model card quotes (the defaults of this charrnn spelled out, so that a later
# change of a default does not change the model).
"$BIN" train "${files[@]}" --out "$OUT" \
  --cell lstm --layers 2 --hidden 256 --dropout 0 \
  --batch 32 --seq 32 --lr 0.004 --lr-schedule cosine --warmup 0 --clip 5 \
  --val-frac 0.1 --steps "$STEPS" --seed 1 --threads 2 --precision bf16 --sample-every 0

mkdir -p "$(dirname "$MODEL")"
"$BIN" export "$OUT/best.safetensors" "$MODEL" --precision f32
echo
echo "== for models/README.md =="
echo "file: $MODEL, $(stat -c %s "$MODEL") bytes, sha256 $(sha256sum "$MODEL" | cut -d' ' -f1)"
echo "charrnn: $("$BIN" --version), commit $(git rev-parse --short HEAD)"
"$BIN" info "$MODEL" | grep -E '^(model|training|validation loss|regularisation and schedule|settings|corpus):'
echo "sample (seed 1, temperature 0.8):"
"$BIN" sample "$MODEL" --prime "Once upon a time" --length 300 --temperature 0.8 --seed 1
echo
