#!/usr/bin/env bash
# Metadata overlap (issue 13, finding 2):
#  1. a damaged image (4 KiB clusters, the L1 table offset one cluster past the end of the file,
#     reserved bits in a refcount-table entry): `check -r all` rebuilds the refcounts without
#     placing the new refcount table on the L1 table, the result checks clean in crashsim and
#     qemu-img, and both read back what crashsim then writes;
#  2. the layout the old repair left (the refcount table at the L1 table's offset): a write is
#     refused ("Preventing invalid write on metadata"), the image marked corrupt and a second
#     read-write open refused, as qemu-io does on the same bytes;
#  3. the bitmap directory class (bitmaps come from qemu-img): an L2 table the allocator puts on
#     the directory is refused by crashsim and by qemu-io, naming the bitmap directory;
#  4. --image-opts with QEMU's option names: overlap-check=none lets that write through in both.
source "$(dirname "$0")/lib.sh"

# damaged FILE: the finding's input, made from a qemu-img image with 8 KiB of data at 0.
damaged() {
  run qemu-img create -q -f qcow2 -o cluster_size=4096 "$1" 1M
  run qemu-io -c "write -P 0x11 0 8k" "$1"
  # 7 clusters (header, refcount table and block, L1, L2, two data): the L1 goes to cluster 8.
  [ "$(stat -c %s "$1")" = 28672 ] || fail "setup: $1 is not 7 clusters long"
  poke "$1" 40 0000000000008000          # l1_table_offset
  poke "$1" 4096 00000000000021ff        # refcount table entry 0: 0x2000 with reserved bits
}

header_u64() { od -An -tx1 -j "$2" -N 8 "$1" | tr -d ' \n'; }

# 1. The repair places nothing on the L1 table.
CASES=$((CASES + 1))
img="$WORK/damaged.qcow2"
damaged "$img"
expect 2 "$CRASHSIM" check "$img"
run "$CRASHSIM" check -r all "$img"
run "$CRASHSIM" check "$img"
run qemu-img check "$img"
[ "$(header_u64 "$img" 40)" != "$(header_u64 "$img" 48)" ] ||
  fail "check -r all put the refcount table on the L1 table" "$(od -An -tx1 -j 40 -N 16 "$img")"
run "$CRASHSIM" io -c "write -P 0x77 0 4k" -c "read -P 0x77 0 4k" "$img"
run qemu-io -c "read -P 0x77 0 4k" "$img"
run qemu-img check "$img"

# 2. What the old repair left: a write is refused and the image marked corrupt, as QEMU does.
CASES=$((CASES + 1))
old="$WORK/old-repair.qcow2"
damaged "$old"
poke "$old" 48 0000000000008000            # the refcount table moved onto the L1 table
truncate -s 36864 "$old"
poke "$old" $((0x7000)) 0001               # refcount block 0 at cluster 7: clusters 0, 7, 8
poke "$old" $((0x700e)) 0001
poke "$old" $((0x7010)) 0001
cp "$old" "$WORK/old-repair-qemu.qcow2"
if expect 1 "$CRASHSIM" io -c "write -P 0x77 0 4k" "$old"; then
  grep -q "Preventing invalid write on metadata (overlaps with " <<<"$OUT" ||
    fail "crashsim io: no overlap message" "$OUT"
fi
run "$CRASHSIM" info "$old"
grep -q "corrupt: true" <<<"$OUT" || fail "crashsim did not mark the image corrupt" "$OUT"
if expect 1 "$CRASHSIM" io -c "write -P 0x77 0 4k" "$old"; then
  grep -q "Image is corrupt; cannot be opened read/write" <<<"$OUT" ||
    fail "a corrupt image opened read-write" "$OUT"
fi
expect 1 qemu-io -c "write -P 0x77 0 4k" "$WORK/old-repair-qemu.qcow2"
run qemu-img info "$WORK/old-repair-qemu.qcow2"
grep -q "corrupt: true" <<<"$OUT" || fail "qemu-io did not mark its copy corrupt (the reference)" "$OUT"
run qemu-img info "$old"
grep -q "corrupt: true" <<<"$OUT" || fail "qemu-img does not see crashsim's corrupt flag" "$OUT"

# 3. The bitmap directory: qemu-img puts it in cluster 5 of a fresh 4 KiB-cluster image.
CASES=$((CASES + 1))
bm="$WORK/bitmap.qcow2"
run qemu-img create -q -f qcow2 -o cluster_size=4096 "$bm" 1M
run qemu-img bitmap --add "$bm" b0
poke "$bm" $((0x2000 + 5 * 2)) 0000        # its refcount lost: the allocator hands it out
cp "$bm" "$WORK/bitmap-qemu.qcow2"
if expect 1 "$CRASHSIM" io -c "write -P 0x77 0 4k" "$bm"; then
  grep -q "overlaps with bitmap directory" <<<"$OUT" || fail "crashsim io: not the bitmap directory" "$OUT"
fi
if expect 1 qemu-io -c "write -P 0x77 0 4k" "$WORK/bitmap-qemu.qcow2"; then
  grep -q "overlaps with bitmap directory" <<<"$OUT" ||
    fail "qemu-io (the reference) refused for another reason" "$OUT"
fi

# 4. The same image opened with overlap-check=none, as qemu-io takes it.
CASES=$((CASES + 1))
run qemu-img create -q -f qcow2 -o cluster_size=4096 "$bm" 1M
run qemu-img bitmap --add "$bm" b0
poke "$bm" $((0x2000 + 5 * 2)) 0000
cp "$bm" "$WORK/bitmap-qemu.qcow2"
run "$CRASHSIM" io --image-opts -c "write -P 0x77 0 4k" \
  "driver=qcow2,file.filename=$bm,overlap-check=none"
run qemu-io --image-opts -c "write -P 0x77 0 4k" \
  "driver=qcow2,file.filename=$WORK/bitmap-qemu.qcow2,overlap-check=none"
expect 1 "$CRASHSIM" io --image-opts -c "read 0 4k" "driver=qcow2,file.filename=$bm,overlap-check=most"
grep -q "overlap-check=most" <<<"$OUT" || fail "a bad overlap-check value is not named" "$OUT"

finish
