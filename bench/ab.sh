#!/usr/bin/env bash
# Two charrnn builds side by side: `charrnn bench` of each, run alternately for several rounds;
# prints a Markdown table of medians and the ratio B/A. For a change to the engine or the
# house: build the old commit somewhere, then
#
#   bench/ab.sh OLD_BINARY target/release/charrnn [ROUNDS]      (default 3 rounds)
#   HIDDENS="128 256 512" THREADS="1 2"                          which configurations
#   STEPS=30                                                     timed steps per run
#   PRECISION=bf16                                               the products' precision (f32)
#
# Nothing else heavy should run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1; B=$2; ROUNDS=${3:-3}
HIDDENS=${HIDDENS:-128 256 512}
THREADS=${THREADS:-1 2}
STEPS=${STEPS:-30}
PRECISION=${PRECISION:-f32}
source bench/common.sh
header "charrnn A/B: A=$A, B=$B" "$ROUNDS"
echo "workload: 2-layer LSTM, V=65, B=50, T=50, $PRECISION; training chars/s and batch-1 sampling chars/s"
echo
echo "| H | threads | A train | B train | B/A | A sample | B sample | B/A |"
echo "|---|---|---|---|---|---|---|---|"
for H in $HIDDENS; do
  for TH in $THREADS; do
    at=(); bt=(); as=(); bs=()
    for ((r = 0; r < ROUNDS; r++)); do
      for side in A B; do
        bin=$A; [ $side = B ] && bin=$B
        j=$($bin bench --hidden "$H" --threads "$TH" --steps "$STEPS" --warmup 5 --sample-chars 2000 --precision "$PRECISION" --json)
        if [ $side = A ]; then
          at+=("$(json_field "$j" train_chars_per_s)"); as+=("$(json_field "$j" sample_chars_per_s)")
        else
          bt+=("$(json_field "$j" train_chars_per_s)"); bs+=("$(json_field "$j" sample_chars_per_s)")
        fi
      done
    done
    mat=$(median "${at[@]}"); mbt=$(median "${bt[@]}"); mas=$(median "${as[@]}"); mbs=$(median "${bs[@]}")
    printf '| %s | %s | %.0f | %.0f | %s | %.0f | %.0f | %s |\n' "$H" "$TH" "$mat" "$mbt" \
      "$(python3 -c "print(f'{$mbt/$mat:.2f}')")" "$mas" "$mbs" "$(python3 -c "print(f'{$mbs/$mas:.2f}')")"
  done
done
