#!/usr/bin/env bash
# charrnn serve under load: 1, 8, 32 and 64 concurrent streaming clients, 500 characters each,
# on a 2×256 LSTM (V=65): total characters per second, time to the first character (p50,
# p99), the p99 gap between chunks, peak RSS, and RSS before and after 10,000 requests.
# Writes bench/results/serve-DATE-COMMIT.md. A benchmark, not a test; nothing else heavy
# should run meanwhile. The load generator is examples/serve_load.rs (ureq, one thread per
# client), so the client shares the 2 cores with the server: figures are a floor.
#
#   bench/serve.sh [ROUNDS]        (default 2 rounds per client count; medians)
#   PRECISION=f32                   the server's --precision (f32, bf16, int8)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
PRECISION=${PRECISION:-f32}
cargo build --release --quiet --bin charrnn --example serve_load
BIN=$PWD/target/release/charrnn
LOAD=$PWD/target/release/examples/serve_load
source bench/common.sh
tmp=$(mktemp -d)
trap 'kill $srv 2>/dev/null; rm -rf "$tmp"' EXIT
out=bench/results/serve-$PRECISION-$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD).md
# A 2×256 model: a few steps on tiny Shakespeare (speed does not depend on training).
$BIN train data/tinyshakespeare.txt --hidden 256 --steps 20 --eval-every 20 --out "$tmp/m" --sample-every 0 >/dev/null 2>&1
$BIN serve "model=$tmp/m/last.safetensors" --port 0 --precision "$PRECISION" 2>"$tmp/serve.log" &
srv=$!
for _ in $(seq 100); do grep -q "serving" "$tmp/serve.log" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/.* on \(http:\/\/[^/]*\)\/.*/\1/p' "$tmp/serve.log" | head -1)
rss() { awk -v k="$1" '$1 == k":" {print int($2 / 1024)}' /proc/$srv/status; }
{
  header "charrnn serve under load" "$ROUNDS"
  echo
  echo "model: 2×256 LSTM, V=65, --precision $PRECISION, 2 threads; each client streams 500-character completions back to back"
  echo
  echo "| clients | requests | total chars/s | ratio to 1 client | TTFC p50 | TTFC p99 | gap p99 | chars per chunk | errors |"
  echo "|---|---|---|---|---|---|---|---|---|"
  one=""
  for c in 1 8 32 64; do
    cps=(); p50=(); p99=(); gap=(); per=(); errs=0
    for ((r = 0; r < ROUNDS; r++)); do
      n=$(( c >= 32 ? 2 : 8 / c + 2 ))
      j=$($LOAD "$url" model "$c" "$n" 500)
      cps+=("$(json_field "$j" chars_per_s)"); p50+=("$(json_field "$j" ttfc_p50_ms)"); p99+=("$(json_field "$j" ttfc_p99_ms)")
      gap+=("$(json_field "$j" gap_p99_ms)"); per+=("$(json_field "$j" chars_per_chunk)")
      errs=$((errs + $(json_field "$j" errors)))
      reqs=$(json_field "$j" requests)
    done
    m=$(median "${cps[@]}")
    [ -z "$one" ] && one=$m
    printf '| %s | %s | %.0f | %.1fx | %.1f ms | %.1f ms | %.1f ms | %.1f | %s |\n' "$c" "$reqs" "$m" \
      "$(python3 -c "print($m/$one)")" "$(median "${p50[@]}")" "$(median "${p99[@]}")" "$(median "${gap[@]}")" \
      "$(median "${per[@]}")" "$errs"
  done
  echo
  before=$(rss VmRSS)
  j=$($LOAD "$url" model 16 625 20)
  after=$(rss VmRSS)
  echo "memory: peak RSS $(rss VmHWM) MB; RSS $before MB before and $after MB after 10,000 more requests (16 clients, 20 characters each; errors: $(json_field "$j" errors))"
} | tee "$out"
echo "wrote $out" >&2
