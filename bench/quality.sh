#!/usr/bin/env bash
# Quality for a budget, side by side: charrnn's defaults (`charrnn train TEXT --minutes M`,
# nothing else but --seed and --threads) against the PyTorch LSTM peer (2×256, one-hot, Adam
# 2e-3, `peers/pytorch/charrnn_batched.py`) and the nanoGPT peer (config (c) of its README:
# 4 layers, 128 wide, block 64, batch 12, lr 2e-3 to 2e-4), each given the same seconds of
# training and the same threads, run one after another. The loss is the exact validation loss
# (nats/char, last 10 % of the text, every character predicted from all before it).
#
#   bench/quality.sh TEXT [SECONDS] [SEEDS]     (defaults: 300 s, seeds "1 2 3")
#   THREADS=2                                   threads for all three
#   PEER_SEEDS="1"                              seeds for the peers (default: one run each)
#   PEERS=1                                     0: charrnn only
#   CHARRNN_FLAGS="--precision f32"             extra flags for charrnn (default: none)
#   BIN=path/to/charrnn  OUT=results.md         a built binary (no build), another results file
#   KEEP=dir                                    keep each charrnn run's log and metrics.jsonl there
#
# Appends a table row to bench/results/quality-DATE-COMMIT.md (and prints it). Needs torch for
# the peers (`pip install torch==2.15.0`), ../shared for them; nothing else heavy should run.
set -euo pipefail
# The text as an absolute path: the script runs from the repository's root and nanoGPT's
# peer from its own folder.
TEXT=$(realpath "$1")
cd "$(dirname "$0")/.."
SECONDS_=${2:-300}
SEEDS=${3:-1 2 3}
THREADS=${THREADS:-2}
PEER_SEEDS=${PEER_SEEDS:-1}
PEERS=${PEERS:-1}
CHARRNN_FLAGS=${CHARRNN_FLAGS:-}
SHARED=${SHARED:-../shared}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/charrnn
fi
source bench/common.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=${OUT:-bench/results/quality-$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD).md}
minutes=$(python3 -c "print($SECONDS_ / 60)")
name=$(basename "$TEXT")

ours=(); chose=()
for seed in $SEEDS; do
  $BIN train "$TEXT" --minutes "$minutes" --seed "$seed" --threads "$THREADS" --out "$tmp/c$seed" \
    --sample-every 0 $CHARRNN_FLAGS >"$tmp/c$seed.log" 2>&1
  v=$(python3 - "$tmp/c$seed/metrics.jsonl" <<'PY'
import json, sys
vals = [json.loads(l) for l in open(sys.argv[1]) if '"kind":"val"' in l]
print(min(v["loss"] for v in vals))
PY
)
  ours+=("$(printf '%.4f' "$v")")
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    cp "$tmp/c$seed.log" "$KEEP/${name%.txt}-${SECONDS_}s-t$THREADS-s$seed.log"
    cp "$tmp/c$seed/metrics.jsonl" "$KEEP/${name%.txt}-${SECONDS_}s-t$THREADS-s$seed.metrics.jsonl"
  fi
  c=$(sed -n 's/^charrnn: \(LSTM\|GRU\|RNN\) \([0-9]*×[0-9]*\).*/\2/p' "$tmp/c$seed.log" | head -1)
  d=$(python3 -c "import json; t=json.load(open('$tmp/c$seed/config.json'))['train']; print(t['dropout'], t['precision'])")
  chose+=("${c} dropout ${d% *} ${d#* }")
  echo "charrnn seed $seed: $v ($c, dropout $d)" >&2
done

lstm="n/a"; nano="n/a"
if [ "$PEERS" = 1 ] && python3 -c "import torch" 2>/dev/null; then
  l=(); g=()
  # nanoGPT's schedule length: the steps its budget allows on this machine (a 15 s timing).
  cal=$(cd "$SHARED/peers/nanogpt" && python3 run_nanogpt_peer.py --text "$TEXT" --n-layer 4 --n-head 4 \
    --n-embd 128 --block-size 64 --batch-size 12 --lr 2e-3 --min-lr 2e-4 --max-iters 1000 --threads "$THREADS" \
    --seconds 15 --no-eval --sample-len 0 | grep '^RESULT ' | cut -c8-)
  iters=$(python3 -c "print(int($(json_field "$cal" steps) * $SECONDS_ / 15))")
  for seed in $PEER_SEEDS; do
    r=$(python3 "$SHARED/peers/pytorch/charrnn_batched.py" --text "$TEXT" --hidden 256 --layers 2 --threads "$THREADS" \
      --seconds "$SECONDS_" --seed "$seed" --sample-len 0 | grep '^RESULT ' | cut -c8-)
    l+=("$(json_field "$r" val_loss_nats)")
    r=$(cd "$SHARED/peers/nanogpt" && python3 run_nanogpt_peer.py --text "$TEXT" --n-layer 4 --n-head 4 --n-embd 128 \
      --block-size 64 --batch-size 12 --lr 2e-3 --min-lr 2e-4 --max-iters "$iters" --threads "$THREADS" \
      --seconds "$SECONDS_" --seed "$seed" --eval-every 0 --sample-len 0 | grep '^RESULT ' | cut -c8-)
    g+=("$(json_field "$r" val_loss_nats)")
    echo "peers seed $seed: LSTM ${l[-1]}, nanoGPT ${g[-1]} ($iters iters)" >&2
  done
  lstm=$(median "${l[@]}"); nano=$(median "${g[@]}")
fi

med=$(median "${ours[@]}")
# One entry when every seed chose the same model, else each seed's choice in seed order.
chosen=$(printf '%s\n' "${chose[@]}" | sort -u)
if [ "$(printf '%s\n' "$chosen" | wc -l)" = 1 ]; then chosen="$chosen (every seed)"
else chosen=$(printf '%s; ' "${chose[@]}"); chosen=${chosen%; }; fi
margin=$(python3 -c "
b=[x for x in ['$lstm','$nano'] if x!='n/a']
print(f'{min(map(float,b))-$med:+.4f}' if b else 'n/a')")
if [ ! -f "$out" ]; then
  {
    header "Quality for a budget: charrnn's defaults against both peers" "1"
    echo
    echo "Validation loss, nats/char (lower is better), exact, last 10 % of the text; charrnn: median over its seeds"
    echo "(each seed's best validation), the peers: one run each unless stated. The margin is the better peer's loss"
    echo "minus charrnn's (positive: charrnn ahead). Command: \`bench/quality.sh TEXT SECONDS \"SEEDS\"\` with THREADS."
    echo
    echo "| corpus | budget | threads | charrnn (seeds: loss) | sizing chose | LSTM peer 2×256 | nanoGPT (c) | margin |"
    echo "|---|---|---|---|---|---|---|---|"
  } >"$out"
fi
row="| $name | ${SECONDS_} s | $THREADS | $(printf '%.4f' "$med") ($(echo "${ours[@]}" | sed 's/ /, /g')) | $chosen | $lstm | $nano | $margin |"
echo "$row" | tee -a "$out"
