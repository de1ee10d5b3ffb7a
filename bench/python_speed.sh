#!/usr/bin/env bash
# Training speed from Python against the command line (issue 32: within 2 %): the same run
# (text, model, steps, threads, seed) by `charrnn train` and by `charrnn.train(...)` with its
# progress bar on, alternately for several rounds. Speed is training characters over training
# seconds from metrics.jsonl's lines (validation and saving excluded, as the status line
# counts), after the first WARMUP steps. Prints a Markdown table of the medians and the ratio.
#
#   bench/python_speed.sh [ROUNDS]                   (default 5)
#   PY=venv/bin/python      a Python with the package installed from this commit (pip install .)
#   BIN=target/release/charrnn   the command line, built from the same commit (cargo build --release)
#   TEXT=data/tinyshakespeare.txt HIDDEN=256 STEPS=800 WARMUP=100 THREADS=2
#
# Nothing else heavy should run meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
PY=${PY:-python3}
BIN=${BIN:-target/release/charrnn}
TEXT=${TEXT:-data/tinyshakespeare.txt}
HIDDEN=${HIDDEN:-256}
STEPS=${STEPS:-800}
WARMUP=${WARMUP:-100}
THREADS=${THREADS:-2}
source bench/common.sh
"$PY" -c "import charrnn" || { echo "no charrnn package for $PY: pip install . first" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export CHARRNN_CACHE="$WORK/cache"
FLAGS=(--steps "$STEPS" --hidden "$HIDDEN" --dropout 0 --threads "$THREADS" --seed 1 --sample-every 0
  --eval-every "$STEPS" --log-every 10)

# chars/s of a run folder: characters over seconds of its training lines after WARMUP steps.
speed() {
  python3 - "$1/metrics.jsonl" "$WARMUP" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in lines if r["kind"] == "train" and r["step"] > int(sys.argv[2])]
# Each line covers the steps since the previous one: its mean speed times their count.
chars = secs = 0.0
prev = int(sys.argv[2])
for r in train:
    n_chars = (r["chars"] / r["step"]) * (r["step"] - prev)
    chars += n_chars
    secs += n_chars / r["chars_per_s"]
    prev = r["step"]
print(chars / secs)
PY
}

cli=(); py=()
for ((r = 0; r < ROUNDS; r++)); do
  rm -rf "$WORK/cli" "$WORK/py"
  "$BIN" train "$TEXT" "${FLAGS[@]}" --out "$WORK/cli" 2>/dev/null
  cli+=("$(speed "$WORK/cli")")
  "$PY" - "$TEXT" "$WORK/py" "${FLAGS[@]}" >/dev/null 2>&1 <<'PY'
import sys, charrnn
text, out, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
kw = {flags[i][2:].replace("-", "_"): flags[i + 1] for i in range(0, len(flags), 2)}
charrnn.train(text, out=out, **kw)
PY
  py+=("$(speed "$WORK/py")")
done
header "Training from Python against the command line" "$ROUNDS"
echo "workload: $TEXT, LSTM 2×$HIDDEN, batch 32 × seq 32, $STEPS steps (speed after step $WARMUP), $THREADS thread(s); Python with its tqdm bar ($("$PY" -c 'import tqdm; print("tqdm", tqdm.__version__)' 2>/dev/null || echo 'no tqdm: plain lines'))"
echo
echo "| | chars/s, each round | median |"
echo "|---|---|---|"
mc=$(median "${cli[@]}"); mp=$(median "${py[@]}")
printf '| charrnn train | %s | %.0f |\n' "$(printf '%.0f ' "${cli[@]}")" "$mc"
printf '| charrnn.train | %s | %.0f |\n' "$(printf '%.0f ' "${py[@]}")" "$mp"
echo
python3 -c "print(f'Python / command line: {$mp / $mc:.4f}')"
