#!/usr/bin/env bash
# An active L1 table that starts inside the file and reaches far past its end: the fuzz_repair
# finding "check -r all grows a 77 KiB image to 30 MiB where qemu-img refuses" (docs/fuzzing.md).
# make_image builds the images from qemu-img: 4 KiB clusters, 2 MiB virtual size, l1_size
# 3,801,089 (the finding's: 30,408,712 bytes of table) with the table where it was, plus one
# variant's damage. For each variant:
#  - crashsim check prints what qemu-img check prints and exits as it does (2);
#  - crashsim check -r all exits 0 in a file that covers the table and little more (its end
#    + 8 clusters at most), which crashsim and qemu-img then check clean, whose guest content is
#    the original's (qemu-img convert; the l2-inside variant: but for the ranges the repair
#    names as dropped), and which qemu-io and crashsim io then write to;
#  - qemu-img check -r all, the reference: exits 1 at its own overlap check, naming the class
#    given (docs/fuzzing.md says which write of QEMU's that is), or exits 2 with the table still
#    uncounted, and in "moved" with the guest's data lost.
# Then -r leaks, which cannot rebuild: it leaves the table's cluster in the file allocated.
source "$(dirname "$0")/lib.sh"

L1_SIZE=3801089

# make_image FILE VARIANT
#   finding    L1 entries 1-8 full of reserved bits (their offset is 0: QEMU walks the header as
#              an L2 table), a word in the header's free space that reads as a preallocated L2
#              entry at an unaligned offset, and reserved bits in refcount table entry 0
#   plain      nothing else
#   rebuild    refcount 0 on the refcount table's cluster (a rebuild, nothing else)
#   reftable   reserved bits in refcount table entry 0 (a rebuild; the old block looks free)
#   moved      56 KiB of guest data, then the L1 table copied to a cluster at the end of the
#              file (as a grown table is), its refcount 1: the data lies before the table
#   l2-inside  512 bytes of guest data: its L2 table and data cluster lie inside the table's range
make_image() {
  local f=$1 variant=$2
  run qemu-img create -q -f qcow2 -o cluster_size=4096 "$f" 2M
  case $variant in
    moved) run qemu-io -c "write -P 0x5a 0 56k" "$f" ;;
    # One data cluster: its 64 entries' worth of data are L1 entries the repair drops (each an
    # 8-byte write and a flush, as QEMU writes L1 entries).
    l2-inside) run qemu-io -c "write -P 0x5a 0 512" "$f" ;;
  esac
  # Header, refcount table, refcount block, L1 table: the layout the variants below assume.
  [ "$(od -An -tx1 -j 40 -N 8 "$f" | tr -d ' \n')" = 0000000000003000 ] ||
    fail "setup: $f: the L1 table is not at 0x3000"
  poke "$f" 36 "$(printf %08x $L1_SIZE)"
  case $variant in
    finding)
      for i in 1 2 3 4 5 6 7 8; do poke "$f" $((0x3000 + 8 * i)) 7f000000000001ff; done
      poke "$f" $((0xff8)) 0000000000000a01
      poke "$f" 4096 00000000000021ff ;;
    rebuild) poke "$f" $((0x2000 + 2)) 0000 ;;
    reftable) poke "$f" 4096 00000000000021ff ;;
    moved)
      # 19 clusters: the table goes to cluster 19, the old one (cluster 3) becomes a leak.
      dd if="$f" of="$f" bs=4096 skip=3 seek=19 count=1 conv=notrunc status=none
      poke "$f" 40 0000000000013000
      poke "$f" $((0x2000 + 19 * 2)) 0001 ;;
  esac
  # The finding's file was about 77 KiB.
  [ "$(stat -c %s "$f")" -ge 77824 ] || truncate -s 78848 "$f"
}

l1_end() { echo $(($(od -An -tu8 --endian=big -j 40 -N 8 "$1") + L1_SIZE * 8)); }

# variant QEMU_RC QEMU_TEXT: one variant through both tools.
variant() {
  local v=$1 qemu_rc=$2 qemu_text=$3
  local img="$WORK/$v.qcow2" ours="$WORK/$v.ours.qcow2" theirs="$WORK/$v.qemu.qcow2"
  CASES=$((CASES + 1))
  make_image "$img" "$v"
  run qemu-img convert -O raw "$img" "$WORK/$v.raw"
  local end
  end=$(l1_end "$img")

  # The check, as qemu-img's.
  local want got
  want=$(qemu-img check "$img" 2>&1)
  local want_rc=$?
  got=$("$CRASHSIM" check "$img" 2>&1)
  local got_rc=$?
  [ "$want_rc" = 2 ] || fail "$v: qemu-img check exited $want_rc (the reference expects 2)" "$want"
  [ "$got_rc" = "$want_rc" ] || fail "$v: crashsim check exited $got_rc, qemu-img $want_rc" "$got"
  [ "$got" = "$want" ] ||
    fail "$v: crashsim check does not print what qemu-img check prints" "$(diff <(echo "$want") <(echo "$got") | head -20)"

  # Our repair.
  cp "$img" "$ours"
  expect 0 "$CRASHSIM" check -r all "$ours" || return
  local report=$OUT size
  size=$(stat -c %s "$ours")
  [ "$size" -ge "$end" ] || fail "$v: the repaired file ($size) ends inside the L1 table ($end)"
  [ "$size" -le $(((end + 4095) / 4096 * 4096 + 8 * 4096)) ] ||
    fail "$v: the repaired file ($size) is larger than the table (ending at $end) needs"
  run "$CRASHSIM" check "$ours"
  run qemu-img check "$ours"
  run qemu-img convert -O raw "$ours" "$WORK/$v.ours.raw"
  if [ "$v" = l2-inside ]; then
    # The L2 table at 0x4000 is also the L1 table's entries 512-1023: the repair trusts the
    # table's extent, drops the entry naming it and says so; the guest reads zeros there.
    grep -qF "dropped guest range [0x0, 0x200000): L2 table 0x4000 overlaps the active L1 table" <<<"$report" ||
      fail "$v: the repair does not name the range it dropped" "$report"
    cmp -s "$WORK/$v.ours.raw" <(head -c 2M /dev/zero) || fail "$v: the dropped range does not read as zeros"
  else
    same_file "$WORK/$v.raw" "$WORK/$v.ours.raw" "$v: the repair changed the guest's content"
  fi
  cp "$ours" "$ours.io"
  run qemu-io -c "write -P 0x77 1M 4k" -c "read -P 0x77 1M 4k" "$ours"
  run qemu-img check "$ours"
  run "$CRASHSIM" io -c "write -P 0x77 1M 4k" -c "read -P 0x77 1M 4k" "$ours.io"
  run qemu-img check "$ours.io"

  # The reference: what qemu-img check -r all does with the same bytes.
  cp "$img" "$theirs"
  if expect "$qemu_rc" qemu-img check -r all "$theirs"; then
    grep -qF "$qemu_text" <<<"$OUT" || fail "$v: qemu-img check -r all (the reference) did not say '$qemu_text'" "$OUT"
  fi
  if [ "$v" = moved ]; then
    run qemu-img convert -O raw "$theirs" "$WORK/$v.qemu.raw"
    cmp -s "$WORK/$v.raw" "$WORK/$v.qemu.raw" &&
      fail "$v: qemu-img's repair kept the guest's data (the reference frees and discards the table's cluster)"
  fi
}

variant finding 1 "Preventing invalid write on metadata (overlaps with qcow2_header)"
variant plain 2 "counting reference for region exceeding the end of the file"
variant rebuild 1 "Preventing invalid write on metadata (overlaps with active L1 table)"
variant reftable 1 "Preventing invalid write on metadata (overlaps with refcount block)"
variant moved 2 "Repairing cluster 19 refcount=1 reference=0"
variant l2-inside 1 "Preventing invalid write on metadata (overlaps with active L1 table)"

# -r leaks cannot rebuild: the table stays uncounted (exit 2, as qemu-img's), but its cluster in
# the file keeps its refcount; qemu-img's -r leaks frees and discards it, losing the guest's data.
CASES=$((CASES + 1))
img="$WORK/moved-leaks.qcow2"
make_image "$img" moved
run qemu-img convert -O raw "$img" "$WORK/moved-leaks.raw"
cp "$img" "$img.qemu"
expect 2 "$CRASHSIM" check -r leaks "$img"
[ "$(od -An -tx1 -j $((0x2000 + 19 * 2)) -N 2 "$img" | tr -d ' \n')" = 0001 ] ||
  fail "moved: check -r leaks freed the L1 table's cluster"
run qemu-img convert -O raw "$img" "$WORK/moved-leaks.ours.raw"
same_file "$WORK/moved-leaks.raw" "$WORK/moved-leaks.ours.raw" "moved: check -r leaks changed the guest's content"
run "$CRASHSIM" check -r all "$img"
run qemu-img check "$img"
expect 2 qemu-img check -r leaks "$img.qemu"
run qemu-img convert -O raw "$img.qemu" "$WORK/moved-leaks.qemu.raw"
cmp -s "$WORK/moved-leaks.raw" "$WORK/moved-leaks.qemu.raw" &&
  fail "moved: qemu-img check -r leaks kept the guest's data (the reference discards the table's cluster)"

finish
