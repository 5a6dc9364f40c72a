#!/usr/bin/env bash
# Benchmark (not a test): what a crash state costs `crashsim explore`, against a naive harness.
#
# The default workload (seed 1, 200 guest ops over a 1 GiB disk, 64 KiB clusters) in
# writethrough and writeback, lazy refcounts off and on, each explored N times (default 3) on
# one core (-j 1), alternating with the naive harness on the same states:
#   ours   `crashsim explore -q -j 1`: every crash state checked (check, repair, guest data, writes
#          after repair, crashes during repair); CPU time (user + sys) and peak RSS from
#          /usr/bin/time. states/cpu-s = crash states covered per CPU-second; distinct/cpu-s =
#          distinct images checked per CPU-second; chk/verdict = checks and repairs run per
#          verdict computed (a clean image's verdict runs 2, a dirty one's ~15 with its repair
#          study); us/chk = CPU microseconds per such run, all other work included.
#   naive  properties/naive_harness_bench: the same recording and enumeration; for an evenly
#          spaced sample of the states (default 40), the crashed image built, written out as a
#          file and checked by `qemu-img check` (no repair, no data check: a lower bound on what a
#          naive harness pays). Its median CPU time per state (ours + qemu-img's) is the baseline.
#          x naive = naive CPU per state / ours CPU per state.
# Targets (per core): >= 100,000 states/cpu-s, >= 2,000 distinct/cpu-s, >= 1,000x naive, peak RSS
# <= 256 MiB. A PASS or MISS line per target says whether every configuration meets it.
#
# Then two scaling tables (writethrough, lazy refcounts off, one run each):
#   disk  the same 200 ops (drawn on a 1 MiB disk, so every op fits) on a 1 MiB, 1 GiB and 1 TiB
#         (sparse) disk: CPU per state within 1.5x of each other (PASS/MISS); then the same ops
#         without their internal snapshots (a snapshot copies the L1 table, which is 16 B at
#         1 GiB and 16 KiB at 1 TiB, so its torn copies are more distinct images to repair);
#   ops   10, 100 and 1,000 seeded ops on the 1 GiB disk: CPU per state (figures only).
#
# Timings are for a Release (-O3) build of the current source in build-release/, configured if
# missing and brought up to date with ninja on every run.
#
# Usage: bench/explore_bench.sh [--runs N] [--sample N] [--no-scaling]
# Exit status: 0 every target met, 1 a run found a failure or disagreed, 2 setup error, 3 a
# target missed.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=3
SAMPLE=40
SCALING=1

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "explore_bench: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --sample) SAMPLE=$2; shift 2 ;;
    --sample=*) SAMPLE=${1#*=}; shift ;;
    --no-scaling) SCALING=0; shift ;;
    -h|--help) usage 0 ;;
    *) usage ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive integer, got '$RUNS'"
[[ $SAMPLE =~ ^[1-9][0-9]*$ ]] || die "--sample wants a positive integer, got '$SAMPLE'"

# --- Tools -------------------------------------------------------------------------------------
command -v qemu-img >/dev/null || die "qemu-img is needed (Debian package qemu-utils)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install time"
RELEASE=$REPO/build-release
if [ ! -f "$RELEASE/build.ninja" ]; then
  echo "explore_bench: configuring a Release (-O3) build in $RELEASE" >&2
  cmake -S "$REPO" -B "$RELEASE" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null ||
    die "configuring $RELEASE failed"
fi
cmake --build "$RELEASE" --target crashsim naive_harness_bench >/dev/null ||
  die "building $RELEASE failed"
CRASHSIM=$RELEASE/bin/crashsim
NAIVE=$RELEASE/bin/naive_harness_bench
WORK=$(mktemp -d "${TMPDIR:-/tmp}/crashsim-explore-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# ours ARGS...: one `explore -q -j 1` run; prints
# "states distinct cpu_s wall_s rss_kib verdicts_computed checker_runs".
ours() {
  local out
  out=$(/usr/bin/time -f 'TIME %e %U %S %M' "$CRASHSIM" explore -q -j 1 "$@" 2>&1) ||
    { echo "explore_bench: crashsim explore $* failed:" >&2; echo "$out" >&2; exit 1; }
  grep -q '^  FAILURE          0$' <<<"$out" ||
    { echo "explore_bench: crashsim explore $* reported failures:" >&2; echo "$out" >&2; exit 1; }
  awk '/crash points covered/ { n = $NF }
       /^  distinct images/ { d = $3; sub(",", "", d); v = $6; sub(",", "", v) }
       /^  checks and repairs run/ { r = $5 }
       /^TIME/ { t = sprintf("%.3f %s %s", $3 + $4, $2, $5) }
       END { printf "%s %s %s %s %s\n", n, d, t, v, r }' <<<"$out"
}

# --- Configurations ----------------------------------------------------------------------------
echo "crashsim explore vs a naive harness: default workload (seed 1, 200 ops, 1 GiB disk, 64 KiB"
echo "clusters), -j 1, medians of $RUNS runs; naive: $SAMPLE sampled states per configuration"
echo "commit $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD || echo '+changes'), $(date -u '+%F %H:%M UTC'), $(nproc) cores"
echo
printf '%-14s %8s %8s %8s %8s %12s %14s %8s %10s %9s %12s %7s\n' config states distinct cpu_s wall_s \
  states/cpu-s distinct/cpu-s rss_MiB naive_ms x_naive chk/verdict us/chk
MIN_RATE='' MIN_DISTINCT='' MIN_X='' MAX_RSS=0
for config in writethrough:off writethrough:on writeback:off writeback:on; do
  cache=${config%:*} lazy=${config#*:}
  : >"$WORK/ours"
  naive_line=''
  for ((run = 0; run < RUNS; run++)); do
    ours -t "$cache" -o "lazy_refcounts=$lazy" >>"$WORK/ours"
    if [ "$run" -eq 0 ]; then  # side by side: between our runs
      naive_line=$("$NAIVE" --cache "$cache" --lazy "$lazy" --sample "$SAMPLE" --dir "$WORK") ||
        die "the naive harness failed"
    fi
  done
  states=$(awk '{ print $1 }' "$WORK/ours" | sort -u)
  [ "$(wc -l <<<"$states")" = 1 ] || { echo "explore_bench: runs disagree on the state count" >&2; exit 1; }
  distinct=$(awk '{ print $2 }' "$WORK/ours" | sort -u | head -1)
  cpu=$(awk '{ print $3 }' "$WORK/ours" | median)
  wall=$(awk '{ print $4 }' "$WORK/ours" | median)
  rss=$(awk '{ print $5 }' "$WORK/ours" | sort -g | tail -1)
  verdicts=$(awk '{ print $6 }' "$WORK/ours" | head -1)
  checks=$(awk '{ print $7 }' "$WORK/ours" | head -1)
  naive_states=$(sed -n 's/.* states=\([0-9]*\) .*/\1/p' <<<"$naive_line")
  naive_ms=$(sed -n 's/.*median_cpu_ms=\([0-9.]*\).*/\1/p' <<<"$naive_line")
  [ "$naive_states" = "$states" ] ||
    { echo "explore_bench: the naive harness enumerated $naive_states states, explore $states" >&2; exit 1; }
  read -r rate drate x rss_mib per_verdict us_check < <(awk -v n="$states" -v d="$distinct" -v c="$cpu" \
    -v m="$naive_ms" -v r="$rss" -v v="$verdicts" -v k="$checks" \
    'BEGIN { printf "%.0f %.0f %.1f %.1f %.1f %.1f\n", n / c, d / c, m / (c * 1000 / n), r / 1024, k / v, c * 1e6 / k }')
  printf '%-14s %8s %8s %8s %8s %12s %14s %8s %10s %9s %12s %7s\n' "$(sed 's/writethrough/wt/; s/writeback/wb/' <<<"$cache")/lazy-$lazy" \
    "$states" "$distinct" "$cpu" "$wall" "$rate" "$drate" "$rss_mib" "$naive_ms" "$x" "$per_verdict" "$us_check"
  echo "  naive: $naive_line" >>"$WORK/naive-lines"
  MIN_RATE=$(awk -v a="${MIN_RATE:-$rate}" -v b="$rate" 'BEGIN { print (a < b ? a : b) }')
  MIN_DISTINCT=$(awk -v a="${MIN_DISTINCT:-$drate}" -v b="$drate" 'BEGIN { print (a < b ? a : b) }')
  MIN_X=$(awk -v a="${MIN_X:-$x}" -v b="$x" 'BEGIN { print (a < b ? a : b) }')
  MAX_RSS=$(awk -v a="$MAX_RSS" -v b="$rss_mib" 'BEGIN { print (a > b ? a : b) }')
done
cat "$WORK/naive-lines"
echo

MISSED=0
target() {  # target NAME VALUE OP LIMIT
  local verdict
  verdict=$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { ok = op == ">=" ? v >= l : v <= l; print ok ? "PASS" : "MISS" }')
  [ "$verdict" = PASS ] || MISSED=1
  printf '%s %-38s %12s (target %s %s)\n' "$verdict" "$1" "$2" "$3" "$4"
}
target "states/cpu-s (slowest configuration)" "$MIN_RATE" ">=" 100000
target "distinct/cpu-s (slowest configuration)" "$MIN_DISTINCT" ">=" 2000
target "x naive (lowest configuration)" "$MIN_X" ">=" 1000
target "peak RSS MiB (highest configuration)" "$MAX_RSS" "<=" 256

# --- Scaling -----------------------------------------------------------------------------------
if [ "$SCALING" = 1 ]; then
  echo
  echo "scaling (writethrough, lazy refcounts off, one run each)"
  printf '%-24s %8s %8s %8s %12s %10s\n' run states distinct cpu_s us/state rss_MiB
  "$NAIVE" --ops 200 --disk-size 1048576 --workload-text >"$WORK/ops-1m"
  PER_STATE=()
  grep -v '^snapshot' "$WORK/ops-1m" >"$WORK/ops-1m-nosnap"
  PER_STATE_NOSNAP=()
  for variant in ops-1m ops-1m-nosnap; do
    for disk in 1M:1048576 1G:1073741824 1T:1099511627776; do
      sed "1s/.*/disk ${disk#*:}/" "$WORK/$variant" >"$WORK/w"
      read -r n d c _ r _ < <(ours --workload "$WORK/w")
      us=$(awk -v n="$n" -v c="$c" 'BEGIN { printf "%.1f", c * 1e6 / n }')
      if [ "$variant" = ops-1m ]; then
        PER_STATE+=("$us")
        label="same 200 ops, ${disk%:*} disk"
      else
        PER_STATE_NOSNAP+=("$us")
        label="  no snapshot ops, ${disk%:*}"
      fi
      printf '%-24s %8s %8s %8s %12s %10.1f\n' "$label" "$n" "$d" "$c" "$us" \
        "$(awk -v r="$r" 'BEGIN { print r / 1024 }')"
    done
  done
  for ops in 10 100 1000; do
    read -r n d c _ r _ < <(ours --ops "$ops")
    printf '%-24s %8s %8s %8s %12s %10.1f\n' "$ops seeded ops, 1G disk" "$n" "$d" "$c" \
      "$(awk -v n="$n" -v c="$c" 'BEGIN { printf "%.1f", c * 1e6 / n }')" \
      "$(awk -v r="$r" 'BEGIN { print r / 1024 }')"
  done
  spread() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", v[NR] / v[1] }'; }
  echo
  target "per-state CPU, max/min over 1M/1G/1T" "$(spread "${PER_STATE[@]}")" "<=" 1.5
  target "  the same without snapshot ops" "$(spread "${PER_STATE_NOSNAP[@]}")" "<=" 1.5
fi
[ "$MISSED" = 0 ] || exit 3
