#!/usr/bin/env bash
# What starting from the base model buys on a small text: fine-tuned (`train TEXT --init-from
# BASE --minutes M`) against trained from nothing (`train TEXT --minutes M`, sized for the
# budget as any run), the same minutes of training, the same seeds, in the same sitting; the
# best validation loss (nats/char, last 10 % of the text) of each, and the base alone before
# any step (`--steps 0`). Three small texts (about SIZE characters each):
#
# - English the base has not seen: --english FILE. Pass a slice of a book outside the base
#   (tiny Shakespeare, the fairy tales and War and Peace are in it), e.g. Pride and Prejudice
#   from `charrnn fetch gutenberg 1342` where the network reaches Project Gutenberg. Without
#   it, the Book of Genesis of the King James Bible (public domain; Debian's bible-kjv,
#   `apt-get install bible-kjv`, through its `bible` command, verse numbers removed): a book
#   of English narrative prose outside the base, older English than the fairy tales'. Without
#   that, the GNU and Apache licence texts of /usr/share/common-licenses, which every Debian
#   machine has: legal English, not a book, so its gain is not a book's.
# - A names list: --names FILE, one name a line; without it the proper names (people and
#   places) of /usr/share/dict/american-english (`apt-get install wamerican`), shuffled with a
#   fixed seed.
# - German, with ä ö ü ß the base never saw: --german FILE; without it a slice of the German
#   quotations of /usr/share/games/fortunes/de/zitate (`apt-get install fortunes-de`).
#
#   bench/init_from.sh BASE [--english FILE] [--names FILE] [--german FILE]
#
# Each fine-tuned run and its from-nothing twin run at the same time, one thread each (so the
# two cores are used, and the pair sees the same machine). With the defaults (0.5 and 1 minute
# at seeds 1 2 3, 5 minutes at seed 1) that is 28.5 minutes of training; with the validation
# and the checkpoint after every pass over a small text (not counted in --minutes) and the
# sizing probes, about 40 minutes in all. SEEDS5="1 2 3" gives three seeds at 5 minutes too,
# about 70 minutes. Nothing else should run meanwhile.
#
# Settings (environment): MINUTES ["0.5 1 5"], SEEDS ["1 2 3"] for budgets under 5 minutes,
# SEEDS5 ["1"] for 5 minutes and more, SIZE [50000] characters per text, BIN
# [target/release/charrnn, built if missing], OUT [bench/results/init-from-DATE-COMMIT.md],
# KEEP (a folder to keep the runs in; default: a temporary one, removed).
set -euo pipefail
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 2; }
[ $# -ge 1 ] || usage
BASE=$(realpath "$1")
shift
english="" names="" german="" given=""
while [ $# -gt 0 ]; do
  case $1 in
    --english) english=$(realpath "$2"); given+=" --english $2"; shift 2 ;;
    --names) names=$(realpath "$2"); given+=" --names $2"; shift 2 ;;
    --german) german=$(realpath "$2"); given+=" --german $2"; shift 2 ;;
    *) usage ;;
  esac
done
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-0.5 1 5}
SEEDS=${SEEDS:-1 2 3}
SEEDS5=${SEEDS5:-1}
SIZE=${SIZE:-50000}
BIN=${BIN:-target/release/charrnn}
OUT=${OUT:-bench/results/init-from-$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD).md}
[ -x "$BIN" ] || cargo build --release
BIN=$(realpath "$BIN")
if [ -n "${KEEP:-}" ]; then
  work=$(realpath -m "$KEEP"); mkdir -p "$work"
else
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fi

# The three texts, SIZE characters each, into $work.
need() { [ -f "$1" ] || { echo "init_from.sh: $1 is missing: $2" >&2; exit 2; }; }
if [ -z "$english" ] && command -v bible >/dev/null; then
  english=$work/genesis.txt english_source="Genesis, King James Bible, from Debian's bible-kjv"
  bible -f "Genesis 1:1-50:26" | sed 's/^[A-Za-z0-9]*:[0-9]* //' >"$english"
  [ -s "$english" ] || { echo "init_from.sh: bible printed no Genesis: pass --english FILE" >&2; exit 2; }
fi
if [ -z "$english" ]; then
  english=$work/licences.txt english_source="the licence texts, not a book"
  need /usr/share/common-licenses/GPL-3 "pass --english FILE"
  cat /usr/share/common-licenses/{GPL-3,GPL-2,LGPL-2.1,Apache-2.0,MPL-2.0,Artistic} >"$english"
fi
if [ -z "$names" ]; then
  need /usr/share/dict/american-english "apt-get install wamerican, or pass --names FILE"
  names=/usr/share/dict/american-english
  names_filter=proper
fi
if [ -z "$german" ]; then
  need /usr/share/games/fortunes/de/zitate "apt-get install fortunes-de, or pass --german FILE"
  german=/usr/share/games/fortunes/de/zitate
fi
python3 - "$work" "$SIZE" "$english" "$names" "${names_filter:-}" "$german" <<'EOF'
import random, re, sys
work, size, english, names, names_filter, german = sys.argv[1:]
size = int(size)
def read(p): return open(p, encoding="utf-8").read()
def middle(text):  # SIZE characters from the middle, from a line start
    start = max(0, len(text) // 2 - size // 2)
    start = text.find("\n", start) + 1 if start else 0
    return text[start:start + size]
open(f"{work}/english.txt", "w", encoding="utf-8").write(middle(read(english)))
lines = [l for l in read(names).splitlines() if l.strip()]
if names_filter == "proper":
    lines = [l for l in lines if re.fullmatch(r"[A-Z][a-z]+", l)]
    random.Random(1).shuffle(lines)
out, n = [], 0
for l in lines:
    if n + len(l) + 1 > size: break
    out.append(l); n += len(l) + 1
open(f"{work}/names.txt", "w", encoding="utf-8").write("\n".join(out) + "\n")
open(f"{work}/german.txt", "w", encoding="utf-8").write(middle(read(german)))
EOF

best() { # the best validation loss of a run folder
  grep '"kind":"val"' "$1/metrics.jsonl" | sed 's/.*"loss":\([0-9.]*\).*/\1/' | sort -g | head -1
}
mean() { python3 -c "import sys; v=[float(x) for x in sys.argv[1:]]; print(f'{sum(v)/len(v):.4f}')" "$@"; }
f4() { printf '%.4f' "$1"; }

{
  echo "# Fine-tuned from a base model vs trained from nothing, on small texts, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)"
  echo
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
  echo
  echo "base: $(basename "$BASE"), sha256 $(sha256sum "$BASE" | cut -d' ' -f1); $("$BIN" info "$BASE" | sed -n 's/^model: //p')"
  echo
  echo "Each pair (fine-tuned, from nothing) trained at the same time, one thread each, for the"
  echo "same minutes of training (\`--minutes\`); best validation loss in nats/char on the last"
  echo "10 % of the text; mean over the seeds, each seed's in brackets. From nothing is sized for"
  echo "the budget (the size in its column); fine-tuned has the base's size and the fine-tuning"
  echo "defaults. Gain: from nothing − fine-tuned."
  echo
  echo "| text | characters | sha256 | base shares |"
  echo "| --- | --- | --- | --- |"
} >"$OUT"
for t in english names german; do
  f=$work/$t.txt
  "$BIN" train "$f" --init-from "$BASE" --steps 0 --out "$work/$t-zero" --threads 1 --sample-every 0 \
    2>"$work/$t-zero.log"
  read -r kept new < <(sed -n 's/.*vocabulary [0-9]*: \([0-9]*\) of the text.s characters keep the base.s rows, \([0-9]*\) new.*/\1 \2/p' "$work/$t-zero.log")
  shares="$kept of its $((kept + new)) distinct characters"
  echo "| $t | $(python3 -c "import sys; print(len(open(sys.argv[1], encoding='utf-8').read()))" "$f") | \`$(sha256sum "$f" | cut -c1-16)…\` | $shares |" >>"$OUT"
done
{
  echo
  echo "| text | minutes | base, no step | fine-tuned | from nothing | size from nothing | gain |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
} >>"$OUT"
for t in english names german; do
  f=$work/$t.txt
  zero=$(f4 "$(best "$work/$t-zero")")
  for m in $MINUTES; do
    if python3 -c "import sys; sys.exit(float(sys.argv[1]) < 5)" "$m"; then seeds=$SEEDS5; else seeds=$SEEDS; fi
    [ -n "$seeds" ] || continue
    ft=() fresh=() size=""
    for s in $seeds; do
      a=$work/$t-$m-$s-ft b=$work/$t-$m-$s-fresh
      echo "init_from.sh: $t, $m minutes, seed $s" >&2
      "$BIN" train "$f" --init-from "$BASE" --minutes "$m" --seed "$s" --threads 1 --out "$a" \
        --sample-every 0 2>"$a.log" &
      "$BIN" train "$f" --minutes "$m" --seed "$s" --threads 1 --out "$b" --sample-every 0 \
        2>"$b.log" &
      wait
      ft+=("$(best "$a")")
      fresh+=("$(best "$b")")
      size=$(sed -n 's/.* \(LSTM [0-9]*×[0-9]*\) (.*/\1/p' "$b.log" | head -1)
    done
    mf=$(mean "${ft[@]}") mr=$(mean "${fresh[@]}")
    show() { local out=() x; for x in "$@"; do out+=("$(f4 "$x")"); done; echo "${out[*]}"; }
    echo "| $t | $m | $zero | $mf ($(show "${ft[@]}")) | $mr ($(show "${fresh[@]}")) | $size | $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):+.4f}')" "$mf" "$mr") |" >>"$OUT"
  done
done
{
  echo
  echo "Command: \`MINUTES=\"$MINUTES\" SEEDS=\"$SEEDS\" SEEDS5=\"$SEEDS5\" SIZE=$SIZE bench/init_from.sh $(basename "$BASE")$given\`; the texts: ${given:-the defaults named in the header of bench/init_from.sh (English: ${english_source:-given})}."
} >>"$OUT"
cat "$OUT"
