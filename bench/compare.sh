#!/usr/bin/env bash
# Side-by-side speed: the PyTorch peer (charrnn_batched.py) and `charrnn bench`, run
# alternately for several rounds; prints a Markdown table of medians and ratios.
#
#   bench/compare.sh [ROUNDS]            (default 3 rounds)
#   HIDDENS="128 256 512" THREADS="1 2"  which configurations (defaults shown)
#   PEER_DIR=../shared/peers/pytorch     where the peer lives (relative to the repo root)
#   STEPS=30                             timed steps per run (after 5 warm-up steps)
#   CELL=lstm                            charrnn's cell (the peer is an LSTM: compare lstm)
#   TEXT=data/tinyshakespeare.txt        the peer's text; charrnn is told its vocabulary size
#   EMBED=0                              input embedding width for both (0 = one-hot)
#   TRAIN_ONLY=1                         only the training table
#   SAMPLE_HIDDENS="256 512 1024"        the batch-1 sampling table's sizes (every --precision)
#
# Training is timed in both precisions: charrnn --precision f32 and bf16, the peer in f32 and
# with its forward under torch.autocast("cpu", dtype=torch.bfloat16) (bench/peer_bf16.py).
#
# A large vocabulary: python3 bench/make_large_vocab.py large-vocab.txt
#   TEXT=large-vocab.txt EMBED=128 HIDDENS=256 THREADS=2 TRAIN_ONLY=1 bench/compare.sh 3
#
# Needs a release build (it runs `cargo build --release` first). Where torch is missing it
# says so and shows charrnn's figures alone. Nothing else heavy should run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
HIDDENS=${HIDDENS:-128 256 512}
THREADS=${THREADS:-1 2}
STEPS=${STEPS:-30}
PEER_DIR=${PEER_DIR:-../shared/peers/pytorch}
TEXT=${TEXT:-data/tinyshakespeare.txt}
CELL=${CELL:-lstm}
EMBED=${EMBED:-0}
BIN=target/release/charrnn
VOCAB=$(python3 -c "import sys; print(len(set(open(sys.argv[1], encoding='utf-8').read().lstrip(chr(0xfeff)))))" "$TEXT")
cargo build --release --quiet
have_torch=0
if [ -f "$PEER_DIR/charrnn_batched.py" ] && python3 -c "import torch" 2>/dev/null; then
  have_torch=1
else
  echo "note: PyTorch peer not available (need $PEER_DIR and 'pip install torch==2.15.0'); charrnn only" >&2
fi

source bench/common.sh

header "charrnn vs PyTorch peer" "$ROUNDS"
echo "workload: 2-layer $CELL (peer: LSTM), $TEXT: V=$VOCAB, embedding $EMBED (0 = one-hot), B=50, T=50, training chars/s (forward, backward, clip, Adam)"
echo "precisions: f32; bf16 = charrnn --precision bf16 and the peer's forward under torch.autocast(cpu, bfloat16) (bench/peer_bf16.py)"
echo "machine flags: AMX $(grep -qw amx_bf16 /proc/cpuinfo && echo yes || echo no), AVX512_BF16 $(grep -qw avx512_bf16 /proc/cpuinfo && echo yes || echo no); CHARRNN_KERNELS=${CHARRNN_KERNELS:-unset}"
echo "charrnn kernels: $($BIN bench --hidden 32 --steps 1 --warmup 0 --sample-chars 10 --threads 1 | grep '^kernels' || echo unknown)"
echo
echo "| H | threads | PyTorch f32 | PyTorch bf16 | charrnn f32 | charrnn bf16 | f32 / PyTorch f32 | bf16 / PyTorch f32 | bf16 / PyTorch bf16 | f32 share of f32 peak |"
echo "|---|---|---|---|---|---|---|---|---|---|"
ratio() { python3 -c "print(f'{$1/$2:.2f}x')"; }
for H in $HIDDENS; do
  for TH in $THREADS; do
    peer=(); peer16=(); ours=(); ours16=(); share=()
    for ((r = 0; r < ROUNDS; r++)); do
      if [ $have_torch = 1 ]; then
        flags=(--text "$TEXT" --hidden "$H" --layers 2 --batch 50 --seq 50 --embed "$EMBED" --threads "$TH"
          --steps $((STEPS + 5)) --warmup 5 --no-eval --sample-len 0)
        line=$(python3 "$PEER_DIR/charrnn_batched.py" "${flags[@]}" | grep '^RESULT ' | cut -c8-)
        peer+=("$(json_field "$line" steady_chars_per_s)")
        line=$(python3 bench/peer_bf16.py "$PEER_DIR" "${flags[@]}" | grep '^RESULT ' | cut -c8-)
        peer16+=("$(json_field "$line" steady_chars_per_s)")
      fi
      for P in f32 bf16; do
        j=$($BIN bench --cell "$CELL" --hidden "$H" --vocab "$VOCAB" --embed "$EMBED" --threads "$TH" \
          --steps "$STEPS" --warmup 5 --sample-chars 200 --precision $P --json)
        if [ $P = f32 ]; then ours+=("$(json_field "$j" train_chars_per_s)"); share+=("$(json_field "$j" share_of_peak)")
        else ours16+=("$(json_field "$j" train_chars_per_s)"); fi
      done
    done
    o=$(median "${ours[@]}"); o16=$(median "${ours16[@]}")
    if [ $have_torch = 1 ]; then
      p=$(median "${peer[@]}"); p16=$(median "${peer16[@]}")
      cols="$(printf '%.0f' "$p") | $(printf '%.0f' "$p16") | $(printf '%.0f' "$o") | $(printf '%.0f' "$o16") | $(ratio "$o" "$p") | $(ratio "$o16" "$p") | $(ratio "$o16" "$p16")"
    else
      cols="n/a | n/a | $(printf '%.0f' "$o") | $(printf '%.0f' "$o16") | n/a | n/a | n/a"
    fi
    printf '| %s | %s | %s | %.0f%% |\n' "$H" "$TH" "$cols" "$(python3 -c "print(100*$(median "${share[@]}"))")"
  done
done

[ "${TRAIN_ONLY:-0}" = 1 ] && exit 0

echo
echo "Batch-1 sampling, 2 layers, chars/s (the ratio to the peer in brackets; charrnn's weights in each --precision):"
echo
echo "| H | threads | PyTorch | charrnn f32 | charrnn bf16 | charrnn int8 |"
echo "|---|---|---|---|---|---|"
for H in ${SAMPLE_HIDDENS:-256 512 1024}; do
  for TH in $THREADS; do
    peer=(); s_f32=(); s_bf16=(); s_int8=()
    for ((r = 0; r < ROUNDS; r++)); do
      if [ $have_torch = 1 ]; then
        line=$(python3 "$PEER_DIR/charrnn_batched.py" --text "$TEXT" --hidden "$H" --layers 2 --threads "$TH" \
          --seconds 0 --no-eval --sample-chars 3000 --sample-len 0 | grep '^RESULT ' | cut -c8-)
        peer+=("$(json_field "$line" sample_chars_per_s)")
      fi
      for P in f32 bf16 int8; do
        j=$($BIN bench --hidden "$H" --vocab "$VOCAB" --threads "$TH" --steps 1 --warmup 0 --sample-chars 5000 \
          --precision $P --json)
        v=$(json_field "$j" sample_chars_per_s)
        case $P in f32) s_f32+=("$v") ;; bf16) s_bf16+=("$v") ;; int8) s_int8+=("$v") ;; esac
      done
    done
    p=""
    [ $have_torch = 1 ] && p=$(median "${peer[@]}")
    cell() {
      local o; o=$(median "$@")
      if [ -n "$p" ]; then printf '%.0f (%s)' "$o" "$(python3 -c "print(f'{$o/$p:.1f}x')")"; else printf '%.0f' "$o"; fi
    }
    printf '| %s | %s | %s | %s | %s | %s |\n' "$H" "$TH" "$([ -n "$p" ] && printf '%.0f' "$p" || echo n/a)" \
      "$(cell "${s_f32[@]}")" "$(cell "${s_bf16[@]}")" "$(cell "${s_int8[@]}")"
  done
done

echo "Memory and start-up (H=512, 2 layers, tiny Shakespeare; one run each):"
echo
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rss_ours=$(/usr/bin/time -f '%M' $BIN train "$TEXT" --hidden 512 --steps 20 --eval-every 1000 --threads 2 --precision f32 --out "$tmp/h512" 2>&1 >/dev/null | tail -1)
rss_ours16=$(/usr/bin/time -f '%M' $BIN train "$TEXT" --hidden 512 --steps 20 --eval-every 1000 --threads 2 --precision bf16 --out "$tmp/h512b" 2>&1 >/dev/null | tail -1)
first_ours=$(python3 - "$BIN" "$tmp/h512/last.safetensors" <<'PY'
import statistics, subprocess, sys, time
ts = []
for _ in range(11):
    t = time.perf_counter()
    p = subprocess.Popen([sys.argv[1], "sample", sys.argv[2], "--length", "100000", "--seed", "1"], stdout=subprocess.PIPE)
    p.stdout.read(1)
    ts.append(time.perf_counter() - t)
    p.kill(); p.wait()
print(f"{1e3 * statistics.median(ts):.0f}")
PY
)
if [ $have_torch = 1 ]; then
  rss_peer=$(/usr/bin/time -f '%M' python3 "$PEER_DIR/charrnn_batched.py" --text "$TEXT" --hidden 512 --layers 2 \
    --threads 2 --steps 20 --sample-len 0 2>&1 >/dev/null | tail -1)
  import_peer=$(python3 -c "import time; t=time.perf_counter(); import torch; print(f'{1e3*(time.perf_counter()-t):.0f}')")
  rss_peer="$((rss_peer / 1024)) MB"; import_peer="≥ $import_peer ms (import torch alone)"
else
  rss_peer="n/a"; import_peer="n/a"
fi
echo "| measure | PyTorch | charrnn |"
echo "|---|---|---|"
echo "| peak RSS, 20 training steps + validation | $rss_peer | f32 $((rss_ours / 1024)) MB, bf16 $((rss_ours16 / 1024)) MB |"
echo "| start to first sampled character | $import_peer | $first_ours ms |"
