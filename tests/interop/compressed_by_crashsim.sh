#!/usr/bin/env bash
# Compressed clusters written by crashsim (`crashsim io -c 'write -c ...'`, Image::WriteCompressed)
# pass `qemu-img check` and equal, by `qemu-img compare`, a raw file given the same writes. The
# sequence writes several clusters compressed (packed into shared host clusters, so a host
# cluster holds several references), the last cluster of a disk that ends inside it, overwrites
# part of a compressed cluster with a plain write (copy on write through the decompressed data),
# discards one, and writes more compressed clusters into space that frees. Deflate and zstd, v2
# and v3, lazy refcounts, extended L2, 512 B to 2 MiB clusters. Then: a compressed write over an
# allocated cluster is refused (as QEMU refuses it) and leaves the image writable, and QEMU's own
# compressed clusters are overwritten and discarded by crashsim. (engine/compressed_write_test.cc
# covers data that does not compress.)
source "$(dirname "$0")/lib.sh"

io_args() { for c in "$@"; do printf '%s\0' -c "$c"; done; }

# compressed_case OPTS CLUSTER N
compressed_case() {
  local opts=$1 cs=$2 n=$3
  # The disk ends half way into its last cluster (sizes are 512-byte multiples: not with 512 B).
  local tail=$((cs > 512 ? cs / 2 : cs))
  local img="$WORK/case$n.qcow2" raw="$WORK/case$n.raw" size=$((cs * 15 + tail))
  local failures_before=$FAILURES
  CASES=$((CASES + 1))
  local c=(
    "write -c -P 0x11 0 $((cs * 3))"
    "write -c -P 0x22 $((cs * 4)) $cs"
    "write -P 0x33 $((cs * 4 + 512)) 1024"
    "discard $cs $cs"
    "write -c -P 0x44 $((cs * 8)) $((cs * 2))"
    "write -c -P 0x55 $((cs * 15)) $tail"
  )
  # The raw twin gets the same bytes by plain writes (a discard reads as zeros there).
  local r=(
    "write -P 0x11 0 $((cs * 3))"
    "write -P 0x22 $((cs * 4)) $cs"
    "write -P 0x33 $((cs * 4 + 512)) 1024"
    "write -z $cs $cs"
    "write -P 0x44 $((cs * 8)) $((cs * 2))"
    "write -P 0x55 $((cs * 15)) $tail"
  )
  mapfile -d '' cargs < <(io_args "${c[@]}")
  mapfile -d '' rargs < <(io_args "${r[@]}")
  if run "$CRASHSIM" create -q -o "$opts" "$img" "$size" &&
     run qemu-img create -q -f raw "$raw" "$size" &&
     run "$CRASHSIM" io "${cargs[@]}" "$img" && run qemu-io -f raw "${rargs[@]}" "$raw"; then
    run qemu-img check "$img"
    run "$CRASHSIM" check "$img"
    run qemu-img compare -f qcow2 -F raw "$img" "$raw"
    run qemu-img check --output=json "$img"
    grep -q '"compressed-clusters": [1-9]' <<<"$OUT" || fail "$img: no compressed clusters" "$OUT"
  fi
  if [ "$FAILURES" -ne "$failures_before" ]; then
    echo "  case $n: -o $opts; repro:"
    echo "    $(q "$CRASHSIM" create -o "$opts" img.qcow2 "$size")"
    echo "    $(q "$CRASHSIM" io "${cargs[@]}" img.qcow2); qemu-img check img.qcow2"
  fi
}

n=0
for cs in 512 4096 65536 2097152; do
  compressed_case "compat=1.1,cluster_size=$cs" "$cs" $((n++))
done
compressed_case "compat=0.10,cluster_size=65536" 65536 $((n++))
compressed_case "compat=1.1,lazy_refcounts=on,cluster_size=4096" 4096 $((n++))
compressed_case "compat=1.1,compression_type=zstd,cluster_size=65536" 65536 $((n++))
compressed_case "compat=1.1,compression_type=zstd,cluster_size=512" 512 $((n++))
compressed_case "compat=1.1,extended_l2=on,cluster_size=65536" 65536 $((n++))
compressed_case "compat=1.1,refcount_bits=64,cluster_size=4096" 4096 $((n++))

# A compressed write over an allocated cluster: refused with a clear message, exit 1, and the
# image stays writable and clean.
CASES=$((CASES + 1))
img="$WORK/refuse.qcow2"
if run "$CRASHSIM" create -q "$img" 1M && run "$CRASHSIM" io -c "write -P 1 0 64k" "$img"; then
  expect 1 "$CRASHSIM" io -c "write -c -P 2 0 64k" -c "write -P 3 64k 4k" "$img" &&
    { grep -q "cannot overwrite" <<<"$OUT" || fail "no reason for the refusal" "$OUT"; }
  expect 1 "$CRASHSIM" io -c "write -c -P 2 100 64k" "$img" &&
    { grep -q "whole clusters" <<<"$OUT" || fail "no reason for the unaligned refusal" "$OUT"; }
  run qemu-img check "$img"
  run qemu-io -c "read -P 1 0 64k" -c "read -P 3 64k 4k" "$img"
  grep -q "Pattern verification failed" <<<"$OUT" && fail "data changed by a refused write" "$OUT"
  run "$CRASHSIM" io -c "write -c -P 9 128k 64k" "$img"
  run qemu-img check --output=json "$img"
  grep -q '"compressed-clusters": 1' <<<"$OUT" || fail "pattern data not compressed" "$OUT"
fi

# QEMU's compressed clusters, overwritten in part and discarded by crashsim.
CASES=$((CASES + 1))
img="$WORK/qemu.qcow2"
raw="$WORK/qemu.raw"
if run qemu-img create -q -f qcow2 "$img" 1M && run qemu-img create -q -f raw "$raw" 1M &&
   run qemu-io -c "write -c -P 7 0 192k" "$img" && run qemu-io -f raw -c "write -P 7 0 192k" "$raw" &&
   run "$CRASHSIM" io -c "write -P 8 70000 1000" -c "discard 128k 64k" -c "write -c -P 6 256k 64k" "$img" &&
   run qemu-io -f raw -c "write -P 8 70000 1000" -c "write -z 128k 64k" -c "write -P 6 256k 64k" "$raw"; then
  run qemu-img check "$img"
  run qemu-img compare -f qcow2 -F raw "$img" "$raw"
fi
finish
