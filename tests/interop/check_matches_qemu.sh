#!/usr/bin/env bash
# `crashsim check` says what `qemu-img check` says: the same exit code, the same stdout and
# stderr text (human and --output=json), on clean images of many shapes and on damaged ones
# (dirty after a killed lazy writer, a leaked cluster, the corrupt bit, a refcount overflow, an
# active L1 table at offset 0). And `check -r all` repairs a copy to the same verdict as
# qemu-img's repair of another copy, with the guest data unchanged (where qemu-img's repair
# cannot reach a clean image, crashsim's must, reading what qemu-img's reads). A check that
# fails (an image or backing file that does not open, -r leaks on an image that needs a
# rebuild) fails as qemu-img's does, and says why once.
source "$(dirname "$0")/lib.sh"

poke() { printf "$(sed 's/../\\x&/g' <<<"$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# same_output NAME ARGS...: crashsim check ARGS and qemu-img check ARGS agree.
same_output() {
  local name=$1
  shift
  local img=${*: -1}
  CASES=$((CASES + 1))
  qemu-img check "$@" >"$WORK/q.out" 2>"$WORK/q.err"
  local qrc=$?
  "$CRASHSIM" check "$@" >"$WORK/c.out" 2>"$WORK/c.err"
  local crc=$?
  if [ $qrc -ne $crc ]; then
    fail "$name: exit $crc, qemu-img check exits $qrc: $(q "$CRASHSIM" check "$@")" "$(cat "$WORK/c.err" "$WORK/c.out")"
    return
  fi
  for stream in out err; do
    if ! diff -u "$WORK/q.$stream" "$WORK/c.$stream" >"$WORK/diff" 2>&1; then
      fail "$name: std$stream differs from qemu-img check (--- qemu-img, +++ crashsim): $(q "$CRASHSIM" check "$@")" "$(cat "$WORK/diff")"
    fi
  done
}

# same_failure NAME TEXT ARGS...: both tools fail the check (exit 1) with the same stdout, the
# same finding lines on stderr, and then one error line, "<program>: TEXT...", said once.
same_failure() {
  local name=$1 text=$2
  shift 2
  CASES=$((CASES + 1))
  qemu-img check "$@" >"$WORK/q.out" 2>"$WORK/q.err"
  local qrc=$?
  "$CRASHSIM" check "$@" >"$WORK/c.out" 2>"$WORK/c.err"
  local crc=$?
  if [ $qrc -ne 1 ] || [ $crc -ne 1 ]; then
    fail "$name: exit $crc, qemu-img check exits $qrc (both should fail, 1): $(q "$CRASHSIM" check "$@")" "$(cat "$WORK/c.err" "$WORK/c.out")"
    return
  fi
  sed -i '$d' "$WORK/q.err"  # qemu-img's error line: its wording differs, checked below
  local last
  last=$(tail -n 1 "$WORK/c.err")
  sed -i '$d' "$WORK/c.err"
  for stream in out err; do
    diff -u "$WORK/q.$stream" "$WORK/c.$stream" >"$WORK/diff" 2>&1 ||
      fail "$name: std$stream differs from qemu-img check (--- qemu-img, +++ crashsim): $(q "$CRASHSIM" check "$@")" "$(cat "$WORK/diff")"
  done
  [[ $last == "crashsim: $text"* ]] || fail "$name: the last line is not 'crashsim: $text...'" "$last"
}

# compare_check NAME IMG: human and JSON output on the image, then -r all on two copies.
compare_check() {
  local name=$1 img=$2
  same_output "$name" "$img"
  same_output "$name (json)" --output=json "$img"
  cp "$img" "$WORK/$name.q-repaired.qcow2"
  cp "$img" "$WORK/$name.c-repaired.qcow2"
  CASES=$((CASES + 1))
  qemu-img check -r all "$WORK/$name.q-repaired.qcow2" >/dev/null 2>&1
  local qrc=$?
  OUT=$("$CRASHSIM" check -r all "$WORK/$name.c-repaired.qcow2" 2>&1)
  local crc=$?
  [ $qrc -eq $crc ] || fail "$name: check -r all exits $crc, qemu-img's exits $qrc" "$OUT"
  if [ $crc -eq 0 ]; then
    run qemu-img check "$WORK/$name.c-repaired.qcow2"
    run qemu-img compare "$WORK/$name.c-repaired.qcow2" "$WORK/$name.q-repaired.qcow2"
  fi
}

new() { run qemu-img create -q -f qcow2 "$@"; }
DATA=(-c "write -P 0x01 0 64k" -c "write -P 0x02 1M 64k" -c "write -P 0x03 100k 300k")

new "$WORK/plain.qcow2" 64M && run qemu-io "${DATA[@]}" "$WORK/plain.qcow2" &&
  compare_check plain "$WORK/plain.qcow2"
new -o compat=0.10 "$WORK/v2.qcow2" 64M && run qemu-io "${DATA[@]}" "$WORK/v2.qcow2" &&
  compare_check v2 "$WORK/v2.qcow2"
for rb in 1 64; do
  new -o refcount_bits=$rb,cluster_size=4k "$WORK/rb$rb.qcow2" 64M &&
    run qemu-io "${DATA[@]}" "$WORK/rb$rb.qcow2" && compare_check "refcount_bits_$rb" "$WORK/rb$rb.qcow2"
done
run qemu-img create -q -f raw "$WORK/src.raw" 64M && run qemu-io -f raw "${DATA[@]}" "$WORK/src.raw"
for t in zlib zstd; do
  run qemu-img convert -c -O qcow2 -o compression_type=$t "$WORK/src.raw" "$WORK/comp-$t.qcow2" &&
    compare_check "compressed_$t" "$WORK/comp-$t.qcow2"
done
new "$WORK/snap.qcow2" 64M && run qemu-io "${DATA[@]}" "$WORK/snap.qcow2" &&
  run qemu-img snapshot -c s1 "$WORK/snap.qcow2" && run qemu-io -c "write -P 0x09 0 4k" "$WORK/snap.qcow2" &&
  compare_check snapshots "$WORK/snap.qcow2"
new "$WORK/bitmaps.qcow2" 64M && run qemu-img bitmap --add "$WORK/bitmaps.qcow2" b0 &&
  run qemu-io "${DATA[@]}" "$WORK/bitmaps.qcow2" && compare_check bitmaps "$WORK/bitmaps.qcow2"
new -o extended_l2=on "$WORK/extl2.qcow2" 64M && run qemu-io "${DATA[@]}" -c "write -z 2M 2k" "$WORK/extl2.qcow2" &&
  compare_check extended_l2 "$WORK/extl2.qcow2"
new -o preallocation=metadata "$WORK/prealloc.qcow2" 16M && compare_check preallocation "$WORK/prealloc.qcow2"
run "$CRASHSIM" create -q -o cluster_size=4k "$WORK/by-crashsim.qcow2" 64M &&
  run "$CRASHSIM" io "${DATA[@]}" "$WORK/by-crashsim.qcow2" && compare_check by_crashsim "$WORK/by-crashsim.qcow2"

# Damaged: dirty after a killed lazy writer (qcow2.md §9 E1), a leaked cluster (E6), the
# corrupt bit (E5).
new -o lazy_refcounts=on "$WORK/dirty.qcow2" 64M &&
  expect 137 qemu-io -c "write -P 0xaa 0 128k" -c "sigraise 9" "$WORK/dirty.qcow2" &&
  compare_check dirty "$WORK/dirty.qcow2"
new "$WORK/leak.qcow2" 64M && run qemu-io "${DATA[@]}" "$WORK/leak.qcow2" &&
  poke "$WORK/leak.qcow2" $((0x40000 + 16 * 8)) 0000000000000000 &&
  compare_check leak "$WORK/leak.qcow2"
new "$WORK/corrupt.qcow2" 64M && run qemu-io "${DATA[@]}" "$WORK/corrupt.qcow2" &&
  poke "$WORK/corrupt.qcow2" 79 02 && compare_check corrupt_bit "$WORK/corrupt.qcow2"
# issue 13, finding 3. A refcount overflow (refcount_bits=1, a cluster mapped twice): the same
# lines, with qemu-img's hint to widen the refcounts, and -r all leaves it as qemu-img does.
new -o refcount_bits=1 "$WORK/overflow.qcow2" 64M &&
  run qemu-io -c "write -P 0xaa 0 64k" -c "write -P 0xbb 64k 64k" "$WORK/overflow.qcow2" &&
  poke "$WORK/overflow.qcow2" $((0x40008)) 8000000000050000 &&
  compare_check refcount_overflow "$WORK/overflow.qcow2"
# A failed check says why once: -r leaks on an image that needs a rebuild, and an image that
# does not open.
cp "$WORK/dirty.qcow2" "$WORK/dirty-leaks.qcow2" &&
  same_failure dirty_repair_leaks "Check failed" -r leaks "$WORK/dirty-leaks.qcow2"
cp "$WORK/plain.qcow2" "$WORK/version4.qcow2" && poke "$WORK/version4.qcow2" 4 00000004 &&
  same_failure version4 "Could not open '$WORK/version4.qcow2': " "$WORK/version4.qcow2"
# An overlay whose backing file is gone does not open, so it is not checked or repaired.
new "$WORK/gone-base.qcow2" 64M &&
  new -b "$WORK/gone-base.qcow2" -F qcow2 "$WORK/orphan.qcow2" &&
  run qemu-io -c "write -P 0x66 64k 64k" "$WORK/orphan.qcow2" && rm "$WORK/gone-base.qcow2" && {
  for r in "" "-r leaks" "-r all"; do
    cp "$WORK/orphan.qcow2" "$WORK/orphan-before.qcow2"
    # shellcheck disable=SC2086
    same_failure "orphan $r" "Could not open '$WORK/orphan.qcow2': Could not open backing file" \
      $r "$WORK/orphan.qcow2"
    same_file "$WORK/orphan.qcow2" "$WORK/orphan-before.qcow2" "check $r wrote to an image it could not open"
  done
  expect 1 "$CRASHSIM" check "$WORK/orphan.qcow2"
  grep -qF "gone-base.qcow2" <<<"$OUT" || fail "orphan: the error does not name the missing backing file" "$OUT"
}
# An active L1 table at offset 0: both read the header as L1 entries and report the same.
# qemu-img's -r all cannot move the table (it exits 2); crashsim's moves it off the header, and
# the result checks clean in both tools and reads what qemu-img's repaired image reads.
cp "$WORK/plain.qcow2" "$WORK/l1zero.qcow2" && poke "$WORK/l1zero.qcow2" 40 0000000000000000 && {
  same_output l1_offset_0 "$WORK/l1zero.qcow2"
  same_output "l1_offset_0 (json)" --output=json "$WORK/l1zero.qcow2"
  cp "$WORK/l1zero.qcow2" "$WORK/l1zero.q-repaired.qcow2"
  cp "$WORK/l1zero.qcow2" "$WORK/l1zero.c-repaired.qcow2"
  CASES=$((CASES + 1))
  expect 2 qemu-img check -r all "$WORK/l1zero.q-repaired.qcow2"
  run "$CRASHSIM" check -r all "$WORK/l1zero.c-repaired.qcow2" &&
    run qemu-img check "$WORK/l1zero.c-repaired.qcow2" &&
    run "$CRASHSIM" check "$WORK/l1zero.c-repaired.qcow2" &&
    run qemu-img compare "$WORK/l1zero.c-repaired.qcow2" "$WORK/l1zero.q-repaired.qcow2"
}
finish
