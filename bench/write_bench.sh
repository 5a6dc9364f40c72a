#!/usr/bin/env bash
# Benchmark (not a test): the cost of lazy refcounts for a writethrough guest, on a real file.
# The same guest workload (N first-touch 4 KiB writes, one per 64 KiB cluster, then N overwrites)
# runs through `crashsim io` and through `qemu-io`, both with -t writethrough (every write durable
# when it completes), on images created with lazy_refcounts=off and =on. Each of the four
# combinations runs R times, interleaved; the table gives the median wall time, the median
# fdatasync count (strace, when installed), and the ratios lazy/non-lazy and crashsim/qemu-io,
# all measured side by side in one run.
#
# Usage: bench/write_bench.sh [--writes N] [--runs R] [--crashsim PATH] [--dir DIR]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WRITES=256
RUNS=5
CRASHSIM=$REPO/build/bin/crashsim
DIR=${TMPDIR:-/tmp}/crashsim-write-bench
while [ $# -gt 0 ]; do
  case $1 in
    --writes) WRITES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --crashsim) CRASHSIM=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
done
[ -x "$CRASHSIM" ] || { echo "write_bench: $CRASHSIM missing (run ci/build)" >&2; exit 2; }
command -v qemu-io >/dev/null || { echo "write_bench: qemu-io missing (qemu-utils)" >&2; exit 2; }
mkdir -p "$DIR"
have_strace=0
command -v strace >/dev/null && have_strace=1

cmds=()
for ((i = 0; i < WRITES; i++)); do cmds+=(-c "write -P 0x5a $((i * 65536)) 4k"); done
for ((i = 0; i < WRITES; i++)); do cmds+=(-c "write -P 0xa5 $((i * 65536 + 8192)) 4k"); done

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

run_once() {  # tool lazy -> "seconds syncs"
  local tool=$1 lazy=$2 img=$DIR/img-$1-$2.qcow2
  qemu-img create -q -f qcow2 -o "compat=1.1,lazy_refcounts=$lazy" "$img" 1G
  local start end syncs=0
  if [ $have_strace = 1 ]; then
    start=$EPOCHREALTIME
    if [ "$tool" = crashsim ]; then
      strace -f -c -e trace=fdatasync,fsync -o "$DIR/strace.txt" "$CRASHSIM" io -t writethrough "$img" "${cmds[@]}" >/dev/null
    else
      strace -f -c -e trace=fdatasync,fsync -o "$DIR/strace.txt" qemu-io -t writethrough "$img" "${cmds[@]}" >/dev/null
    fi
    end=$EPOCHREALTIME
    syncs=$(awk '/fdatasync|fsync/ {s += $4} END {print s + 0}' "$DIR/strace.txt")
  else
    start=$EPOCHREALTIME
    if [ "$tool" = crashsim ]; then
      "$CRASHSIM" io -t writethrough "$img" "${cmds[@]}" >/dev/null
    else
      qemu-io -t writethrough "$img" "${cmds[@]}" >/dev/null
    fi
    end=$EPOCHREALTIME
  fi
  qemu-img check -q "$img" || { echo "write_bench: $img does not check clean" >&2; exit 1; }
  echo "$(echo "$end - $start" | bc) $syncs"
}

declare -A secs syncs
for ((r = 0; r < RUNS; r++)); do
  for tool in crashsim qemu-io; do
    for lazy in off on; do
      read -r s n < <(run_once "$tool" "$lazy")
      secs[$tool-$lazy]+="$s "
      syncs[$tool-$lazy]+="$n "
    done
  done
done

echo "writethrough, $WRITES first-touch + $WRITES overwrite 4 KiB writes, $RUNS runs each, medians"
printf '%-9s %-5s %10s %10s\n' tool lazy seconds syncs
declare -A med
for tool in crashsim qemu-io; do
  for lazy in off on; do
    med[$tool-$lazy]=$(tr ' ' '\n' <<<"${secs[$tool-$lazy]}" | grep . | median)
    n=$(tr ' ' '\n' <<<"${syncs[$tool-$lazy]}" | grep . | median)
    printf '%-9s %-5s %10.3f %10s\n' "$tool" "$lazy" "${med[$tool-$lazy]}" "$([ $have_strace = 1 ] && echo "$n" || echo -)"
  done
done
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "lazy/non-lazy time: crashsim $(ratio "${med[crashsim-on]}" "${med[crashsim-off]}"), qemu-io $(ratio "${med[qemu-io-on]}" "${med[qemu-io-off]}")"
echo "crashsim/qemu-io time: lazy off $(ratio "${med[crashsim-off]}" "${med[qemu-io-off]}"), lazy on $(ratio "${med[crashsim-on]}" "${med[qemu-io-on]}")"
