#!/usr/bin/env bash
# Every SIMD intrinsic of the release binary is inlined into its kernel. An intrinsic left
# out of line (a `core::core_arch::x86::…::_mm…` function in the symbol table) is one the
# compiler called through memory: a closure inside a `#[target_feature]` kernel does not
# inherit its features, and `[0, 1, 2, 3].map(|r| load16(…))` so made sampling at 8 streams
# 4× slower (8a74166 to 1d9c129: code elsewhere changed the inlining) without any test noticing. _xgetbv (the start-up feature
# check) may stay out of line.
#
#   scripts/simd_inlined.sh [BINARY]      (default target/release/charrnn, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/charrnn}
[ -x "$BIN" ] || cargo build --release --locked --bin charrnn
command -v nm >/dev/null || { echo "simd_inlined.sh: nm (binutils) is missing" >&2; exit 2; }
out=$(nm -C "$BIN" | grep -E 'core::core_arch::x86(_64)?::[a-z0-9_]+::_(mm|tile)' | grep -v '_xgetbv' || true)
if [ -n "$out" ]; then
  echo "simd_inlined.sh: SIMD intrinsics called out of line in $BIN (a closure or a function without #[target_feature] in a kernel):" >&2
  echo "$out" | sed 's/^/  /' | head -20 >&2
  exit 1
fi
echo "simd_inlined.sh: every SIMD intrinsic of $BIN is inlined"
