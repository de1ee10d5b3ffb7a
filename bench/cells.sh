#!/usr/bin/env bash
# Training speed of the three cells side by side: `charrnn bench --cell lstm|gru|rnn`, run
# alternately for several rounds; prints a Markdown table of medians (chars/s and GFLOP/s by
# each cell's own FLOP count), with the GRU and RNN as a share of the LSTM's time per char.
#
#   bench/cells.sh [ROUNDS]                   (default 3)
#   HIDDENS="256 512" THREADS="2"             which configurations (defaults shown)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
HIDDENS=${HIDDENS:-256 512}
THREADS=${THREADS:-2}
BIN=target/release/charrnn
cargo build --release --quiet
source bench/common.sh

header "charrnn cells" "$ROUNDS"
echo "workload: 2 layers, V=65 one-hot, B=50, T=50, training chars/s (forward, backward, clip, Adam)"
echo
echo "| H | threads | cell | chars/s | GFLOP/s | time per char vs LSTM |"
echo "|---|---|---|---|---|---|"
for H in $HIDDENS; do
  for TH in $THREADS; do
    declare -A cps=() gf=()
    for ((r = 0; r < ROUNDS; r++)); do
      for C in lstm gru rnn; do
        j=$($BIN bench --cell "$C" --hidden "$H" --threads "$TH" --steps 30 --warmup 5 --sample-chars 200 --json)
        cps[$C]="${cps[$C]:-} $(json_field "$j" train_chars_per_s)"
        gf[$C]="${gf[$C]:-} $(json_field "$j" gflops)"
      done
    done
    lstm=$(median ${cps[lstm]})
    for C in lstm gru rnn; do
      c=$(median ${cps[$C]})
      printf '| %s | %s | %s | %.0f | %.1f | %s |\n' "$H" "$TH" "$C" "$c" "$(median ${gf[$C]})" \
        "$(python3 -c "print(f'{$lstm/$c:.2f}')")"
    done
  done
done
