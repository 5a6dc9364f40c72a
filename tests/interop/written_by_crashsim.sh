#!/usr/bin/env bash
# Images created and written by crashsim pass `qemu-img check` (exit 0) and equal, by
# `qemu-img compare` and by crashsim's own read-back, a raw file given the same writes by
# `qemu-io -f raw`. Matrix: compat 0.10 / 1.1, lazy refcounts off / on (1.1 only), cluster size
# 512 / 4k / 64k / 2M, refcount_bits 1 / 16 / 64 (1 and 64 only with 1.1), and extended_l2=on
# where the cluster size is at least 16k. Two io sessions per image (the second reopens it), with
# cache modes cycled across the matrix.
source "$(dirname "$0")/lib.sh"

SIZE=64M
# Aligned, unaligned, cross-cluster, overwrite, large, zero writes inside data, end of image.
SESSION1=(
  "write -P 0x11 0 4k"
  "write -P 0x22 1000 3000"
  "write -P 0x33 65000 70000"
  "write -P 0x44 0 512"
  "write -P 0x55 2097052 200"
  "write -P 0x66 5M 3M"
  "write -z 5246976 8k"
  "write -P 0x88 67104768 4k"
)
# After a reopen: unmapping zero writes, a whole-2M-cluster discard, overwrites of shared ranges.
SESSION2=(
  "write -z -u 6M 1M"
  "write -P 0x77 8M 2M"
  "flush"
  "discard 8M 2M"
  "write -P 0x99 8392704 4k"
  "write -z 100 1000"
  "write -P 0xab 3M 1M"
  "write -P 0xcd 65000 1"
  "read -P 0x88 67104768 4k"
)
CACHE_MODES=(writethrough writeback unsafe none directsync)

# io_args SESSION...: "-c CMD" pairs.
io_args() { for c in "$@"; do printf '%s\0' -c "$c"; done; }

run_case() {
  local opts=$1 n=$2
  local img="$WORK/case$n.qcow2" raw="$WORK/case$n.raw" out="$WORK/case$n.out.raw"
  local cache=${CACHE_MODES[$((n % ${#CACHE_MODES[@]}))]}
  local failures_before=$FAILURES
  CASES=$((CASES + 1))
  mapfile -d '' s1 < <(io_args "${SESSION1[@]}")
  mapfile -d '' s2 < <(io_args "${SESSION2[@]}")
  if run "$CRASHSIM" create -q -o "$opts" "$img" $SIZE &&
     run qemu-img create -q -f raw "$raw" $SIZE &&
     run "$CRASHSIM" io -t "$cache" "${s1[@]}" "$img" &&
     run "$CRASHSIM" io "${s2[@]}" "$img" &&
     run qemu-io -f raw "${s1[@]}" "${s2[@]}" "$raw"; then
    run qemu-img check "$img"
    run "$CRASHSIM" check "$img"
    run qemu-img compare -f qcow2 -F raw "$img" "$raw"
    run "$CRASHSIM" convert -O raw "$img" "$out" && same_file "$out" "$raw" "crashsim read-back of $img"
    run "$CRASHSIM" info --output=json "$img"
    grep -q '"dirty-flag": false' <<<"$OUT" || fail "$img still dirty after a clean close" "$OUT"
  fi
  if [ "$FAILURES" -ne "$failures_before" ]; then
    echo "  case $n: -o $opts (session 1 with -t $cache); repro:"
    echo "    $(q "$CRASHSIM" create -o "$opts" img.qcow2 $SIZE)"
    echo "    $(q "$CRASHSIM" io -t "$cache" "${s1[@]}" img.qcow2)"
    echo "    $(q "$CRASHSIM" io "${s2[@]}" img.qcow2)"
    echo "    qemu-img check img.qcow2"
  fi
}

# CRASHSIM_REDUCED_TESTS=1 (set by ci/test --sanitize; properties/property_env.h lists what else
# it shrinks): 512-byte clusters with refcount_bits=16 only. Those are the dearest cases by far
# (the sessions allocate some 12,000 clusters: 8 s of CPU each under ASan, 0.1 s at 4 KiB), and
# widths 1 and 64 still run with every other cluster size.
reduced=0
if [ "${CRASHSIM_REDUCED_TESTS:-0}" = 1 ]; then
  reduced=1
  echo "CRASHSIM_REDUCED_TESTS=1: 512-byte clusters with refcount_bits=16 only"
fi
n=0
for cs in 512 4k 64k 2M; do
  run_case "compat=0.10,cluster_size=$cs" $((n++))
  for lazy in off on; do
    for rb in 1 16 64; do
      # (A skipped case keeps its number: every other case has the cache mode of the full run.)
      [ $reduced = 0 ] || [ "$cs" != 512 ] || [ "$rb" = 16 ] || { n=$((n + 1)); continue; }
      run_case "compat=1.1,lazy_refcounts=$lazy,cluster_size=$cs,refcount_bits=$rb" $((n++))
      if [ "$cs" = 64k ] || [ "$cs" = 2M ]; then
        run_case "compat=1.1,lazy_refcounts=$lazy,cluster_size=$cs,refcount_bits=$rb,extended_l2=on" $((n++))
      fi
    done
  done
done
# zstd and preallocation=metadata are create-time options worth one pass each.
run_case "compat=1.1,compression_type=zstd" $((n++))
run_case "compat=1.1,preallocation=metadata,cluster_size=64k" $((n++))
run_case "compat=0.10,preallocation=metadata,cluster_size=4k" $((n++))
finish
