#!/usr/bin/env bash
# Dirty images (lazy refcounts, writer killed):
#  1. left dirty by qemu-io (`write -P 0x5a 0 512`, `sigraise 9`): crashsim info reports
#     dirty-flag true, crashsim reads the data read-only (io -r, convert), and the file is
#     byte-for-byte unchanged afterwards;
#  2. a read-write crashsim open of that image repairs it first, as QEMU's does: the write lands,
#     the dirty bit is clear, qemu-img check is clean and the old and new data read back;
#  3. left dirty by crashsim itself: QEMU sees the dirty bit, repairs it with check -r all, and
#     reads the data crashsim wrote in writethrough mode;
#  4. a crashsim writer without lazy refcounts killed mid-run leaves a clean image (check exit
#     0, or 3 for leaks only);
#  5. the corrupt bit: shown by info, read-only reads work, read-write open refused.
source "$(dirname "$0")/lib.sh"

# killed_by_9 CMD...: the command must die of SIGKILL (exit 137 as the shell reports it).
killed_by_9() { expect 137 "$@"; }
sum() { md5sum "$1" | cut -d' ' -f1; }

# 1. qemu-io leaves the image dirty.
CASES=$((CASES + 1))
img="$WORK/qemu-dirty.qcow2"
run qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=on "$img" 64M
killed_by_9 qemu-io -c "write -P 0x5a 0 512" -c "sigraise 9" "$img"
run qemu-img info --output=json "$img"
grep -q '"dirty-flag": true' <<<"$OUT" || fail "setup: qemu-io did not leave $img dirty" "$OUT"
before=$(sum "$img")
if run "$CRASHSIM" info --output=json "$img"; then
  grep -q '"dirty-flag": true' <<<"$OUT" || fail "crashsim info --output=json: not dirty" "$OUT"
  grep -q '"lazy-refcounts": true' <<<"$OUT" || fail "crashsim info: lazy-refcounts not true" "$OUT"
fi
if run "$CRASHSIM" info "$img"; then
  grep -q '^cleanly shut down: no$' <<<"$OUT" || fail "crashsim info: no 'cleanly shut down: no'" "$OUT"
fi
run "$CRASHSIM" io -r -c "read -P 0x5a 0 512" -c "read -P 0 512 65024" "$img"
run "$CRASHSIM" convert -O raw "$img" "$WORK/got.raw"
run qemu-img convert -O raw "$img" "$WORK/expected.raw"
same_file "$WORK/got.raw" "$WORK/expected.raw" "crashsim reads the dirty image differently"
[ "$(sum "$img")" = "$before" ] || fail "read-only crashsim commands modified $img"
expect 2 qemu-img check "$img"  # still dirty, still inconsistent: nothing repaired it

# 2. A read-write open of the dirty image repairs it (QEMU's qcow2 driver runs check -r all on a
#    read-write open of a dirty image; the engine does the same).
CASES=$((CASES + 1))
cp "$img" "$WORK/rw.qcow2"
run "$CRASHSIM" io -c "write -P 0x6b 64k 4k" "$WORK/rw.qcow2"
run qemu-img info --output=json "$WORK/rw.qcow2"
grep -q '"dirty-flag": false' <<<"$OUT" || fail "read-write open left the dirty bit set" "$OUT"
run qemu-img check "$WORK/rw.qcow2"
run qemu-io -r -c "read -P 0x5a 0 512" -c "read -P 0x6b 64k 4k" -c "read -P 0 512 65024" \
  "$WORK/rw.qcow2"

# 3. crashsim leaves the image dirty; QEMU repairs it and reads the data.
CASES=$((CASES + 1))
img="$WORK/crashsim-dirty.qcow2"
run "$CRASHSIM" create -q -o compat=1.1,lazy_refcounts=on "$img" 64M
killed_by_9 "$CRASHSIM" io -c "write -P 0x5a 0 128k" -c "write -P 0xa5 1M 4k" -c "sigraise 9" "$img"
run qemu-img info --output=json "$img"
grep -q '"dirty-flag": true' <<<"$OUT" || fail "crashsim's killed lazy writer left $img clean" "$OUT"
run qemu-io -r -c "read -P 0x5a 0 128k" -c "read -P 0xa5 1M 4k" "$img"
OUT=$(qemu-img check "$img" 2>&1)
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 2 ] || [ $rc -eq 3 ] || fail "qemu-img check on crashsim's dirty image exited $rc" "$OUT"
run qemu-img check -r all "$img"
run qemu-img check "$img"
run qemu-io -r -c "read -P 0x5a 0 128k" -c "read -P 0xa5 1M 4k" "$img"

# 4. Without lazy refcounts a killed crashsim writer leaves a clean image: leaks at most.
for cache in writethrough writeback unsafe; do
  CASES=$((CASES + 1))
  img="$WORK/crashsim-killed-$cache.qcow2"
  run "$CRASHSIM" create -q -o compat=1.1,lazy_refcounts=off "$img" 64M
  killed_by_9 "$CRASHSIM" io -t $cache -c "write -P 0x5a 0 128k" -c "write -P 0xa5 3M 4k" \
    -c "sigraise 9" "$img"
  OUT=$(qemu-img check "$img" 2>&1)
  rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 3 ] || fail "non-lazy $cache writer killed: qemu-img check exit $rc" "$OUT"
  run "$CRASHSIM" info --output=json "$img"
  grep -q '"dirty-flag": false' <<<"$OUT" || fail "non-lazy writer left the dirty bit set" "$OUT"
  if [ $cache = writethrough ]; then
    run qemu-io -r -c "read -P 0x5a 0 128k" -c "read -P 0xa5 3M 4k" "$img"
  fi
done

# 5. The corrupt bit (qcow2.md §9 E5): info shows it, a read-only open reads, a read-write open
#    is refused (exit 1, file unchanged).
CASES=$((CASES + 1))
img="$WORK/corrupt.qcow2"
run qemu-img create -q -f qcow2 "$img" 64M
run qemu-io -c "write -P 0x5a 0 64k" "$img"
printf '\x02' | dd of="$img" bs=1 seek=79 conv=notrunc status=none
before=$(sum "$img")
run "$CRASHSIM" info --output=json "$img"
grep -q '"corrupt": true' <<<"$OUT" || fail "crashsim info does not show the corrupt bit" "$OUT"
run "$CRASHSIM" io -r -c "read -P 0x5a 0 64k" "$img"
if expect 1 "$CRASHSIM" io -c "write -P 0x11 0 512" "$img"; then
  grep -q "corrupt" <<<"$OUT" || fail "read-write refusal does not say the image is corrupt" "$OUT"
fi
[ "$(sum "$img")" = "$before" ] || fail "crashsim modified the corrupt image"
finish
