#!/usr/bin/env bash
# charrnn serve under load beside the engine's own speed, one sitting: for each precision, a
# 2×256 LSTM (V=65) served to 1, 8, 32 and 64 concurrent streaming clients (500 characters
# each, back to back), and `charrnn bench --streams` 1, 8, 32 and 64 on the same shape (the
# sampler alone: feed and pick, no HTTP), in alternating rounds. Reports the served characters
# per second beside the engine's and their ratio, the time to the first character (p50, p99),
# the p99 gap between chunks, peak RSS, and RSS before and after 10,000 requests; then the
# issue's targets: served at 32 clients >= 70 % of the engine at 32 streams, p99 time to first
# character <= 100 ms at 32 clients. Writes bench/results/serve-DATE-COMMIT.md.
#
# A benchmark, not a test: nothing else heavy should run meanwhile. The load generator is
# examples/serve_load.rs (ureq, one thread per client), so clients share the 2 cores with the
# server: served figures are a floor. Server and bench both run on every core (their default).
#
#   bench/serve.sh [ROUNDS]          (default 2 rounds; medians)
#   PRECISIONS="f32 bf16"            the precisions to measure, each with its server (also int8)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
PRECISIONS=${PRECISIONS:-f32 bf16}
CLIENTS=(1 8 32 64)
cargo build --release --quiet --bin charrnn --example serve_load
BIN=$PWD/target/release/charrnn
LOAD=$PWD/target/release/examples/serve_load
source bench/common.sh
tmp=$(mktemp -d)
srv=""
trap 'rm -rf "$tmp"' EXIT
out=bench/results/serve-$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD).md
# A 2×256 model: a few steps on tiny Shakespeare (speed does not depend on training).
$BIN train data/tinyshakespeare.txt --hidden 256 --steps 20 --eval-every 20 --out "$tmp/m" --sample-every 0 >/dev/null 2>&1

# start_server PRECISION: serves the model on a free port; sets srv (its pid) and url.
start_server() {
  : >"$tmp/serve.log"
  $BIN serve "model=$tmp/m/last.safetensors" --port 0 --precision "$1" --max-streams 64 2>"$tmp/serve.log" &
  srv=$!
  for _ in $(seq 100); do grep -q "serving" "$tmp/serve.log" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/.* on \(http:\/\/[^/]*\)\/.*/\1/p' "$tmp/serve.log" | head -1)
}
stop_server() { kill "$srv"; wait "$srv" 2>/dev/null || true; srv=""; }
rss() { awk -v k="$1" '$1 == k":" {print int($2 / 1024)}' "/proc/$srv/status"; }
# engine STREAMS PRECISION: the sampler's characters per second over STREAMS streams (the
# training step it also times is cut to one step of one character).
engine() {
  json_field "$($BIN bench --hidden 256 --layers 2 --vocab 65 --streams "$1" --precision "$2" \
    --batch 1 --seq 1 --steps 1 --warmup 0 --sample-chars 64000 --json)" sample_chars_per_s
}
# served CLIENTS: serve_load's JSON for CLIENTS clients (enough requests for a few seconds).
served() { $LOAD "$url" model "$1" $(($1 >= 32 ? 2 : 8 / $1 + 2)) 500; }
pct() { python3 -c "print(f'{100 * $1 / $2:.0f} %')"; }

{
  # This block is a subshell (it feeds tee): its own trap stops the server it starts.
  trap 'if [ -n "$srv" ]; then kill "$srv" 2>/dev/null; fi' EXIT
  header "charrnn serve under load, beside the engine" "$ROUNDS"
  echo
  echo "model: 2×256 LSTM, V=65, $(nproc) threads; each client streams 500-character completions back to back; engine: \`charrnn bench --streams N\` on the same shape"
  for P in $PRECISIONS; do
    start_server "$P"
    declare -A cps=() eng=() p50=() p99=() gap=() per=() errs=() reqs=()
    for ((r = 0; r < ROUNDS; r++)); do
      for c in "${CLIENTS[@]}"; do
        j=$(served "$c")
        cps[$c]+=" $(json_field "$j" chars_per_s)"; p50[$c]+=" $(json_field "$j" ttfc_p50_ms)"
        p99[$c]+=" $(json_field "$j" ttfc_p99_ms)"; gap[$c]+=" $(json_field "$j" gap_p99_ms)"
        per[$c]+=" $(json_field "$j" chars_per_chunk)"; errs[$c]=$((${errs[$c]:-0} + $(json_field "$j" errors)))
        reqs[$c]=$(json_field "$j" requests)
        eng[$c]+=" $(engine "$c" "$P")"
      done
    done
    echo
    echo "## --precision $P"
    echo
    echo "| clients | requests | served chars/s | engine chars/s (--streams) | served / engine | TTFC p50 | TTFC p99 | gap p99 | chars per chunk | errors |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for c in "${CLIENTS[@]}"; do
      s=$(median ${cps[$c]}); e=$(median ${eng[$c]})
      printf '| %s | %s | %.0f | %.0f | %s | %.1f ms | %.1f ms | %.1f ms | %.1f | %s |\n' "$c" "${reqs[$c]}" "$s" "$e" \
        "$(pct "$s" "$e")" "$(median ${p50[$c]})" "$(median ${p99[$c]})" "$(median ${gap[$c]})" "$(median ${per[$c]})" "${errs[$c]}"
    done
    s32=$(median ${cps[32]}); e32=$(median ${eng[32]}); t32=$(median ${p99[32]})
    echo
    echo "targets at 32 clients: served $(pct "$s32" "$e32") of the engine (wanted >= 70 %): $(python3 -c "print('met' if $s32 >= 0.7 * $e32 else 'NOT met')"); TTFC p99 $(printf '%.1f' "$t32") ms (wanted <= 100 ms): $(python3 -c "print('met' if $t32 <= 100 else 'NOT met')")"
    before=$(rss VmRSS)
    j=$($LOAD "$url" model 16 625 20)
    after=$(rss VmRSS)
    echo
    echo "memory: peak RSS $(rss VmHWM) MB; RSS $before MB before and $after MB after 10,000 more requests (16 clients, 20 characters each; errors: $(json_field "$j" errors))"
    stop_server
    unset cps eng p50 p99 gap per errs reqs
  done
} | tee "$out"
echo "wrote $out" >&2
