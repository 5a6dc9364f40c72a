#!/usr/bin/env bash
# Images made by qemu-img and qemu-io read back through crashsim identical to what QEMU reads
# (`crashsim convert -O raw` equals `qemu-img convert -O raw`, and `crashsim info` shows what
# `qemu-img info` shows): compressed clusters (zlib and
# zstd, several cluster sizes), zero clusters, internal snapshots, backing chains (qcow2 and raw,
# relative and absolute names, shorter backing files), persistent bitmaps, extended L2,
# preallocation=metadata, compat=0.10, refcount widths 1 and 64, a 4 TiB image.
# Then crashsim writes into a copy of each image while qemu-io gives another copy the same
# writes: the crashsim copy must pass `qemu-img check` and equal the qemu copy by
# `qemu-img compare` (COW out of compressed, snapshot-shared and backing clusters).
source "$(dirname "$0")/lib.sh"

DATA=(
  -c "write -P 0x01 0 64k" -c "write -P 0x02 100k 300k" -c "write -P 0x03 1M 1M"
  -c "write -P 0x04 30M 8k" -c "write -P 0x05 4194000 5000"
)
# The writes crashsim and qemu-io both apply in phase 2.
WRITES=(
  -c "write -P 0xe1 0 4k" -c "write -P 0xe2 1040384 200k" -c "write -z 1M 64k"
  -c "write -P 0xe3 30M 512" -c "write -z -u 2M 2M" -c "discard 28M 4M"
  -c "write -P 0xe4 33554431 1" -c "write -P 0xe5 4190000 9000"
)

# same_info NAME IMG: crashsim info and qemu-img info agree, human and JSON, but for the
# host allocation (disk size, actual-size). crashsim does not list persistent bitmaps.
same_info() {
  local name=$1 img=$2
  [ -n "$(qemu-img info "$img" | grep '^    bitmaps:')" ] && return 0
  local format filter
  for format in human json; do
    filter='^disk size:|"actual-size":'
    if ! diff -u <(qemu-img info --output=$format "$img" 2>&1 | grep -Ev "$filter") \
                 <("$CRASHSIM" info --output=$format "$img" 2>&1 | grep -Ev "$filter") >"$WORK/diff"; then
      fail "$name: crashsim info --output=$format differs from qemu-img info (--- qemu-img, +++ crashsim)" "$(cat "$WORK/diff")"
    fi
  done
}

# check_image NAME IMG: crashsim reads IMG exactly as qemu-img does; then phase 2.
check_image() {
  local name=$1 img=$2
  local failures_before=$FAILURES
  CASES=$((CASES + 1))
  same_info "$name" "$img"
  local expected="$WORK/$name.expected.raw" got="$WORK/$name.got.raw"
  if run qemu-img convert -O raw "$img" "$expected" &&
     run "$CRASHSIM" convert -O raw "$img" "$got"; then
    same_file "$got" "$expected" "$name: crashsim reads $img differently from qemu-img convert"
  fi
  # Phase 2: crashsim and qemu-io write the same requests into two copies.
  local dir ext by_crashsim by_qemu
  dir=$(dirname "$img")
  ext=${img##*.}
  by_crashsim="$dir/$name.by-crashsim.$ext"
  by_qemu="$dir/$name.by-qemu.$ext"
  cp "$img" "$by_crashsim" && cp "$img" "$by_qemu"
  if run "$CRASHSIM" io "${WRITES[@]}" "$by_crashsim" && run qemu-io "${WRITES[@]}" "$by_qemu"; then
    run qemu-img check "$by_crashsim"
    run "$CRASHSIM" check "$by_crashsim"
    run qemu-img compare "$by_crashsim" "$by_qemu"
  fi
  if [ "$FAILURES" -ne "$failures_before" ]; then
    echo "  case '$name' failed; phase-2 repro: $(q "$CRASHSIM" io "${WRITES[@]}" COPY_OF_IMAGE)"
  fi
}

new() { run qemu-img create -q -f qcow2 "$@"; }
fill() { run qemu-io "${DATA[@]}" "$@"; }

# Plain images: default, compat=0.10, refcount widths, lazy refcounts (closed cleanly), 4 TiB.
new "$WORK/plain.qcow2" 64M && fill "$WORK/plain.qcow2" && check_image plain "$WORK/plain.qcow2"
new -o compat=0.10 "$WORK/v2.qcow2" 64M && fill "$WORK/v2.qcow2" &&
  run qemu-io -c "write -z 100k 64k" "$WORK/v2.qcow2" && check_image v2 "$WORK/v2.qcow2"
for rb in 1 64; do
  new -o refcount_bits=$rb,cluster_size=4k "$WORK/rb$rb.qcow2" 64M && fill "$WORK/rb$rb.qcow2" &&
    check_image "refcount_bits_$rb" "$WORK/rb$rb.qcow2"
done
new -o lazy_refcounts=on "$WORK/lazy.qcow2" 64M && fill "$WORK/lazy.qcow2" &&
  check_image lazy_clean "$WORK/lazy.qcow2"
new "$WORK/huge.qcow2" 4T && fill "$WORK/huge.qcow2" &&
  run qemu-io -c "write -P 0x77 4398046445568 64k" "$WORK/huge.qcow2" &&
  run "$CRASHSIM" io -r -c "read -P 0x77 4398046445568 64k" -c "read -P 0 4398046380032 64k" "$WORK/huge.qcow2"

# Zero clusters: whole-cluster (ZERO flag), unmapped, partial.
new "$WORK/zero.qcow2" 64M && fill "$WORK/zero.qcow2" &&
  run qemu-io -c "write -z 0 64k" -c "write -z -u 1M 128k" -c "write -z 100k 4k" \
    -c "write -z 8M 64k" "$WORK/zero.qcow2" && check_image zero "$WORK/zero.qcow2"

# Compressed clusters: qemu-img convert -c (zlib at several cluster sizes, zstd), and
# qemu-io write -c. Half the source does not compress (random bytes), so normal clusters mix in.
run qemu-img create -q -f raw "$WORK/src.raw" 64M && fill -f raw "$WORK/src.raw"
head -c 300000 /dev/urandom | dd of="$WORK/src.raw" bs=1 seek=10485760 conv=notrunc status=none
for c in "zlib 512" "zlib 4k" "zlib 64k" "zlib 2M" "zstd 64k" "zstd 4k"; do
  set -- $c
  img="$WORK/compressed-$1-$2.qcow2"
  run qemu-img convert -c -O qcow2 -o "compression_type=$1,cluster_size=$2" "$WORK/src.raw" "$img" &&
    check_image "compressed_$1_$2" "$img"
done
new -o compression_type=zstd "$WORK/writec.qcow2" 64M &&
  run qemu-io -c "write -c -P 0x31 0 64k" -c "write -c -P 0x32 64k 64k" -c "write -c -P 0x33 1M 128k" \
    "$WORK/writec.qcow2" && check_image write_compressed "$WORK/writec.qcow2"

# Internal snapshots: the active layer after two snapshots, and after reverting to the first.
new "$WORK/snap.qcow2" 64M && fill "$WORK/snap.qcow2" &&
  run qemu-img snapshot -c s1 "$WORK/snap.qcow2" &&
  run qemu-io -c "write -P 0x41 0 128k" -c "write -P 0x42 3M 64k" "$WORK/snap.qcow2" &&
  run qemu-img snapshot -c s2 "$WORK/snap.qcow2" &&
  run qemu-io -c "write -P 0x43 64k 64k" "$WORK/snap.qcow2" && check_image snapshots "$WORK/snap.qcow2"
cp "$WORK/snap.qcow2" "$WORK/snap-reverted.qcow2" &&
  run qemu-img snapshot -a s1 "$WORK/snap-reverted.qcow2" &&
  check_image snapshot_reverted "$WORK/snap-reverted.qcow2"

# Backing chains: qcow2 <- qcow2 <- qcow2 with zero clusters hiding backing data; a raw backing
# file; a backing file in a subdirectory; an absolute backing name; a shorter backing file.
mkdir -p "$WORK/chain/sub"
new "$WORK/chain/sub/base.qcow2" 64M && fill "$WORK/chain/sub/base.qcow2" &&
  new -b sub/base.qcow2 -F qcow2 "$WORK/chain/mid.qcow2" &&
  run qemu-io -c "write -P 0x51 64k 64k" -c "write -P 0x52 1500k 100k" "$WORK/chain/mid.qcow2" &&
  new -b mid.qcow2 -F qcow2 "$WORK/chain/top.qcow2" &&
  run qemu-io -c "write -P 0x53 0 4k" -c "write -z 1M 64k" -c "write -z 30M 8k" \
    "$WORK/chain/top.qcow2" && check_image chain "$WORK/chain/top.qcow2"
new -o compat=0.10 -b "$WORK/chain/sub/base.qcow2" -F qcow2 "$WORK/chain/absolute-v2.qcow2" &&
  run qemu-io -c "write -P 0x54 2M 64k" "$WORK/chain/absolute-v2.qcow2" &&
  check_image absolute_backing_v2 "$WORK/chain/absolute-v2.qcow2"
cp "$WORK/src.raw" "$WORK/chain/base.raw" &&
  new -b base.raw -F raw "$WORK/chain/over-raw.qcow2" &&
  run qemu-io -c "write -P 0x55 60k 8k" "$WORK/chain/over-raw.qcow2" &&
  check_image raw_backing "$WORK/chain/over-raw.qcow2"
new "$WORK/chain/short.qcow2" 16M &&
  run qemu-io -c "write -P 0x57 0 1M" -c "write -P 0x58 16711680 64k" "$WORK/chain/short.qcow2" &&
  new -b short.qcow2 -F qcow2 "$WORK/chain/long.qcow2" 64M &&
  run qemu-io -c "write -P 0x56 16773120 8k" "$WORK/chain/long.qcow2" &&
  check_image short_backing "$WORK/chain/long.qcow2"

# Persistent bitmaps.
new "$WORK/bitmaps.qcow2" 64M && fill "$WORK/bitmaps.qcow2" &&
  run qemu-img bitmap --add "$WORK/bitmaps.qcow2" b0 &&
  run qemu-img bitmap --add -g 128k "$WORK/bitmaps.qcow2" b1 &&
  run qemu-io -c "write -P 0x61 5M 64k" "$WORK/bitmaps.qcow2" && check_image bitmaps "$WORK/bitmaps.qcow2"

# Extended L2: subcluster writes, partial zero writes, several cluster sizes; with a backing file
# and preallocation=metadata.
for cs in 16k 64k 2M; do
  img="$WORK/extl2-$cs.qcow2"
  new -o extended_l2=on,cluster_size=$cs "$img" 64M && fill "$img" &&
    run qemu-io -c "write -P 0x71 2099200 2k" -c "write -z 100k 2k" -c "write -z -u 1M 512k" "$img" &&
    check_image "extended_l2_$cs" "$img"
done
new -o extended_l2=on,preallocation=metadata -b sub/base.qcow2 -F qcow2 "$WORK/chain/ext-prealloc.qcow2" &&
  run qemu-io -c "write -P 0x72 0 2k" "$WORK/chain/ext-prealloc.qcow2" &&
  check_image extended_l2_backing_prealloc "$WORK/chain/ext-prealloc.qcow2"

# preallocation=metadata, v3 and v2.
for compat in 1.1 0.10; do
  img="$WORK/prealloc-$compat.qcow2"
  new -o preallocation=metadata,compat=$compat "$img" 64M && fill "$img" &&
    check_image "preallocation_metadata_$compat" "$img"
done
finish
