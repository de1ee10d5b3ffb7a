# Shared by the bench scripts (sourced, not run): reading `charrnn bench --json` fields, medians,
# and the header line naming the date, commit and machine.
json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
# header TITLE ROUNDS: the title line, then the machine line.
header() {
  echo "# $1, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)"
  echo
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; rounds: $2 (alternating), medians"
  echo
  echo "CPU flags the kernels use: $(cpu_flags)"
}
# cpu_flags: the instruction sets the kernels pick from that this CPU has (none: portable only).
cpu_flags() {
  local f
  f=$(grep -o -w 'avx2\|fma\|avx512f\|avx512_bf16\|avx512_vnni\|amx_tile\|amx_bf16\|amx_int8\|asimd\|neon' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' ')
  echo "${f:-none found}"
}
