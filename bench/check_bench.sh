#!/usr/bin/env bash
# Benchmark (not a test): `crashsim check` against `qemu-img check` on large allocated images with
# 64 KiB clusters. Each tool runs N times (default 5), alternating, after one untimed warm-up
# run each. Wall time and peak RSS come from `/usr/bin/time -f '%e %M'`; since %e has only 10 ms
# resolution, the wall time is also taken from bash's EPOCHREALTIME around the same command. The
# table gives the medians for both tools side by side and the ratio ours/qemu-img. The script also
# checks that both tools exit alike and print the same `--output=json` counters on each image.
#
# Images, built once and cached in --cache (default ${TMPDIR:-/tmp}/crashsim-check-bench):
#   prealloc  qemu-img create -o preallocation=metadata, 8 GiB: all 131072 clusters mapped by 16
#             L2 tables, each followed by the 8192 data clusters it maps, contiguous and sparse on
#             disk (~1.5 MiB really used). The metadata-only shape `qemu-img create` makes for VM
#             templates.
#   aged      8 GiB of real data written by qemu-io in 64 KiB writes in a scrambled cluster order
#             (so L2 tables sit among the data and 99.99% of clusters are fragmented), then an
#             internal snapshot, then 1 GiB (every 8th cluster, scrambled) rewritten after it, so
#             the check also walks a snapshot L1, refcounts of 2, and COWed L2 tables and clusters.
#             About 9 GiB on disk; built in about a minute.
#   huge      like prealloc but 1 TiB (16.8M clusters, 2048 L2 tables, 128 MiB of L2): a scaling
#             check, where start-up no longer hides the per-cluster costs. 160 MiB on disk, ~15 s.
#
# Targets: on huge, crashsim check must take at most half qemu-img check's wall time (median
# ratio <= 0.50) and no more peak RSS (median ratio <= 1.00). When huge is measured, a PASS or
# MISS line says whether both hold, and a MISS sets the exit status.
#
# Without --crashsim the script measures a Release (-O3) build of the current source, configured
# in build-release/ and brought up to date with ninja on every run (a no-op when nothing changed).
#
# Usage: bench/check_bench.sh [--runs N] [--images prealloc,aged,huge] [--crashsim PATH] [--cache DIR]
# Exit status: 0 when both tools agreed on every image (and huge, if measured, met its targets),
# 1 when they disagreed, 2 on a setup error, 3 when they agreed but huge missed a target.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUNS=5
IMAGES=prealloc,aged,huge
CRASHSIM=${CRASHSIM:-}
CACHE=${TMPDIR:-/tmp}/crashsim-check-bench
RECIPE_VERSION=2  # bump when an image recipe changes, so cached images are rebuilt

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }
die() { echo "check_bench: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --runs=*) RUNS=${1#*=}; shift ;;
    --images) IMAGES=$2; shift 2 ;;
    --images=*) IMAGES=${1#*=}; shift ;;
    --crashsim) CRASHSIM=$2; shift 2 ;;
    --crashsim=*) CRASHSIM=${1#*=}; shift ;;
    --cache) CACHE=$2; shift 2 ;;
    --cache=*) CACHE=${1#*=}; shift ;;
    -h|--help) usage 0 ;;
    *) usage ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs wants a positive integer, got '$RUNS'"

# --- Tools -------------------------------------------------------------------------------------
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null ||
  die "qemu-img and qemu-io are needed (Debian package qemu-utils)"
if [ ! -x /usr/bin/time ]; then
  echo "check_bench: installing /usr/bin/time (Debian package time)" >&2
  if [ "$(id -u)" = 0 ]; then
    { apt-get install -y -q time || { apt-get update -q && apt-get install -y -q time; }; } >/dev/null ||
      die "could not install the 'time' package"
  else
    die "/usr/bin/time is missing: apt-get install time"
  fi
fi
if [ -z "$CRASHSIM" ]; then
  # Timings are for an optimised build: RelWithDebInfo (what CI builds) is -O2 with assertions.
  RELEASE=$REPO/build-release
  CRASHSIM=$RELEASE/bin/crashsim
  if [ ! -f "$RELEASE/build.ninja" ]; then
    echo "check_bench: configuring a Release (-O3) build in $RELEASE" >&2
    cmake -S "$REPO" -B "$RELEASE" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null ||
      die "configuring $RELEASE failed"
  fi
  ninja -C "$RELEASE" -j2 crashsim >/dev/null || die "building $CRASHSIM failed"
fi
[ -x "$CRASHSIM" ] || die "no crashsim binary at $CRASHSIM"

# --- Images ------------------------------------------------------------------------------------
mkdir -p "$CACHE"
N_CLUSTERS=131072  # 8 GiB / 64 KiB

build_prealloc() {
  qemu-img create -q -f qcow2 -o cluster_size=64k,preallocation=metadata "$1" 8G
}

build_huge() {
  qemu-img create -q -f qcow2 -o cluster_size=64k,preallocation=metadata "$1" 1T
}

# Clusters in a scrambled order: c(i) = (i * 8191 + 12345) mod 2^17 is a bijection (8191 is odd).
scrambled_writes() {  # FIRST STEP COUNT PATTERN_BASE
  awk -v first="$1" -v step="$2" -v count="$3" -v base="$4" -v n=$N_CLUSTERS 'BEGIN {
    for (k = 0; k < count; k++) {
      i = first + k * step
      c = (i * 8191 + 12345) % n
      printf "write -q -P %d %.0f 64k\n", (c + base) % 251, c * 65536  # %d is 32-bit in mawk
    }
  }'
}

build_aged() {
  qemu-img create -q -f qcow2 -o cluster_size=64k "$1" 8G
  # -t unsafe: no flush per allocation; qemu-io flushes once when it closes the image.
  scrambled_writes 0 1 $N_CLUSTERS 0 | qemu-io -t unsafe "$1" >/dev/null
  qemu-img snapshot -c base "$1"
  scrambled_writes 3 8 $((N_CLUSTERS / 8)) 7 | qemu-io -t unsafe "$1" >/dev/null
}

image_path() {  # NAME -> cached image, built if missing or built by another recipe version
  local name=$1 img=$CACHE/$1.qcow2 stamp=$CACHE/$1.stamp
  if [ ! -f "$img" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$RECIPE_VERSION" ]; then
    rm -f "$img" "$stamp"
    echo "check_bench: building the $name image in $CACHE (once)" >&2
    "build_$name" "$img.tmp" || die "building the $name image failed"
    mv "$img.tmp" "$img"
    echo "$RECIPE_VERSION" >"$stamp"
  fi
  echo "$img"
}

# --- Measuring ---------------------------------------------------------------------------------
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# measure OUT_PREFIX CMD...: appends "wall_ms time_e rss_kib" to OUT_PREFIX.samples; remembers
# the exit code in OUT_PREFIX.rc.
measure() {
  local out=$1
  shift
  local t0=$EPOCHREALTIME rc=0
  /usr/bin/time -o "$TMP/time" -f '%e %M' "$@" >/dev/null 2>"$TMP/stderr" || rc=$?
  local t1=$EPOCHREALTIME
  local wall_ms
  wall_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
  # /usr/bin/time writes "Command exited with non-zero status N" first when the command fails.
  echo "$wall_ms $(tail -n 1 "$TMP/time")" >>"$out.samples"
  echo "$rc" >>"$out.rc"
}

median() {  # FILE COLUMN
  awk -v c="$2" '{ print $c }' "$1" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

AGREED=1
ROWS=()
HUGE_MEDIANS=""  # ours_ms qemu_ms ours_KiB qemu_KiB, when huge is measured
for name in ${IMAGES//,/ }; do
  declare -F "build_$name" >/dev/null || die "unknown image '$name' (prealloc, aged, huge)"
  img=$(image_path "$name")
  info=$(qemu-img check --output=json "$img" 2>/dev/null | tr -d ' \n')
  alloc=$(sed -n 's/.*"allocated-clusters":\([0-9]*\).*/\1/p' <<<"$info")
  frag=$(sed -n 's/.*"fragmented-clusters":\([0-9]*\).*/\1/p' <<<"$info")
  disk_mib=$(( $(stat -c %b "$img") * $(stat -c %B "$img") / 1048576 ))
  file_mib=$(( $(stat -c %s "$img") / 1048576 ))

  # Warm-up (page cache, binaries), untimed.
  qemu-img check "$img" >/dev/null 2>&1 || true
  "$CRASHSIM" check "$img" >/dev/null 2>&1 || true
  for ((r = 0; r < RUNS; r++)); do
    measure "$TMP/$name.ours" "$CRASHSIM" check "$img"
    measure "$TMP/$name.qemu" qemu-img check "$img"
  done

  # Same verdict: exit codes of every run, and the JSON counters.
  if [ "$(sort -u "$TMP/$name.ours.rc")" != "$(sort -u "$TMP/$name.qemu.rc")" ]; then
    echo "MISMATCH $name: crashsim check exited $(sort -u "$TMP/$name.ours.rc" | tr '\n' ' ')," \
      "qemu-img check $(sort -u "$TMP/$name.qemu.rc" | tr '\n' ' ')" >&2
    AGREED=0
  fi
  json_same=yes
  "$CRASHSIM" check --output=json "$img" >"$TMP/ours.json" 2>/dev/null || true
  qemu-img check --output=json "$img" >"$TMP/qemu.json" 2>/dev/null || true
  if ! diff -u "$TMP/qemu.json" "$TMP/ours.json" >"$TMP/json.diff"; then
    json_same=NO
    AGREED=0
    echo "MISMATCH $name: --output=json differs (--- qemu-img, +++ crashsim):" >&2
    cat "$TMP/json.diff" >&2
  fi

  ow=$(median "$TMP/$name.ours.samples" 1); qw=$(median "$TMP/$name.qemu.samples" 1)
  oe=$(median "$TMP/$name.ours.samples" 2); qe=$(median "$TMP/$name.qemu.samples" 2)
  om=$(median "$TMP/$name.ours.samples" 3); qm=$(median "$TMP/$name.qemu.samples" 3)
  ROWS+=("$(printf '%-9s %9s %9s %6s   %6s %6s   %9s %9s %6s   %s' "$name" \
    "$ow" "$qw" "$(ratio "$ow" "$qw")" "$oe" "$qe" "$om" "$qm" "$(ratio "$om" "$qm")" "$json_same")")
  if [ "$name" = huge ]; then HUGE_MEDIANS="$ow $qw $om $qm"; fi
  DESC+=("  $name: ${alloc:-?} allocated clusters of 64 KiB, ${frag:-0} fragmented; file ${file_mib} MiB, ${disk_mib} MiB on disk; exit $(sort -u "$TMP/$name.ours.rc" | paste -sd,)")
done

echo "crashsim check vs qemu-img check: medians of $RUNS alternating runs each (after one warm-up)"
echo "  crashsim: $CRASHSIM"
echo "  qemu-img: $(qemu-img --version | head -n 1)"
echo "  images in $CACHE:"
printf '%s\n' "${DESC[@]}"
echo
printf '%-9s %9s %9s %6s   %6s %6s   %9s %9s %6s   %s\n' image "ours_ms" "qemu_ms" ratio \
  "ours_e" "qemu_e" "ours_KiB" "qemu_KiB" ratio "json=="
for row in "${ROWS[@]}"; do echo "$row"; done
echo
echo "ms: wall time from EPOCHREALTIME; _e: /usr/bin/time %e (s, 10 ms resolution);"
echo "KiB: /usr/bin/time %M peak RSS; ratio: ours / qemu-img; json==: --output=json identical."

# The 1 TiB targets, judged on the unrounded ratios of the medians above.
MET=1
if [ -n "$HUGE_MEDIANS" ]; then
  read -r ow qw om qm <<<"$HUGE_MEDIANS"
  verdict() {  # OURS QEMU LIMIT -> PASS|MISS
    awk -v a="$1" -v b="$2" -v l="$3" 'BEGIN { print (b > 0 && a / b <= l) ? "PASS" : "MISS" }'
  }
  wall_verdict=$(verdict "$ow" "$qw" 0.50)
  rss_verdict=$(verdict "$om" "$qm" 1.00)
  overall=PASS
  [ "$wall_verdict" = PASS ] && [ "$rss_verdict" = PASS ] || { overall=MISS; MET=0; }
  echo
  echo "$overall 1 TiB targets (huge): wall ratio $(ratio "$ow" "$qw") (limit 0.50) $wall_verdict," \
    "RSS ratio $(ratio "$om" "$qm") (limit 1.00) $rss_verdict"
fi
[ $AGREED = 1 ] || { echo "crashsim check and qemu-img check DISAGREE (see above)"; exit 1; }
[ $MET = 1 ] || exit 3
