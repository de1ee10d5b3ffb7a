#!/usr/bin/env bash
# Corpora of any size: peak memory, time to the first training step and the time of each
# in-training validation, for generated texts of 200 MB and 2 GB (issue: "Corpora of any size").
#
#   bench/big_corpus.sh [SIZES_MB]        (default "200 2000")
#
# Each text is War and Peace (../shared/data/warpeace.txt; tiny Shakespeare from data/ when
# that is absent) repeated to the size, in a temporary folder removed afterwards. The run is
#   charrnn train big.txt --hidden 128 --steps 20 --eval-every 10 --threads 2
# timed by /usr/bin/time (peak RSS) and read line by line (when the model line appears, the
# steps start). Writes bench/results/big-corpus-DATE-COMMIT.md. A benchmark, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${1:-200 2000}
cargo build --release --quiet
BIN=$PWD/target/release/charrnn
SRC=../shared/data/warpeace.txt
[ -f "$SRC" ] || SRC=data/tinyshakespeare.txt
source bench/common.sh
out=bench/results/big-corpus-$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD).md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  header "charrnn on large corpora" 1
  echo
  echo "command: \`charrnn train big.txt --hidden 128 --steps 20 --eval-every 10 --threads 2\`; text: $(basename "$SRC") repeated"
  echo
  echo "| text | characters | peak RSS | reading (to the first step) | each validation | run in all |"
  echo "|---|---|---|---|---|---|"
  for mb in $SIZES; do
    python3 - "$SRC" "$tmp/big.txt" "$mb" <<'PY'
import sys
src, dst, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
block = open(src, "rb").read()
with open(dst, "wb") as f:
    left = mb * 1_000_000
    while left > 0:
        f.write(block[:left]); left -= len(block)
PY
    python3 - "$BIN" "$tmp/big.txt" "$tmp/run" "$mb" <<'PY'
import re, subprocess, sys, time
bin, text, out, mb = sys.argv[1:5]
t0 = time.perf_counter()
p = subprocess.Popen(["/usr/bin/time", "-f", "%e %M", bin, "train", text, "--hidden", "128", "--steps", "20",
                      "--eval-every", "10", "--threads", "2", "--out", out, "--sample-every", "0"],
                     stderr=subprocess.PIPE, text=True)
first_step, evals, chars, last = None, [], "?", ""
for line in p.stderr:
    if line.startswith("charrnn: LSTM") and first_step is None:
        first_step = time.perf_counter() - t0
    m = re.search(r"\[eval ([0-9.]+)s\]", line)
    if m:
        evals.append(float(m.group(1)))
    m = re.search(r": (\d+) characters, vocabulary", line)
    if m:
        chars = f"{int(m.group(1)):,}"
    last = line.strip() or last
p.wait()
wall, rss_kb = last.split()
print(f"| {mb} MB | {chars} | {int(rss_kb) / 1024:.0f} MB | {first_step:.1f} s | "
      f"{' / '.join(f'{e:.1f} s' for e in evals)} | {float(wall):.1f} s |")
PY
    rm -rf "$tmp/run" "$tmp/big.txt"
  done
} | tee "$out"
echo "wrote $out" >&2
