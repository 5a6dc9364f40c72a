#!/usr/bin/env bash
# Malformed headers: each edit of a valid image (bad magic, version 4, cluster_bits 8 and 22,
# l1_size past 4194304, unknown incompatible bit 5, l1_table_offset past the end of the file,
# a file truncated to 50 bytes) makes every crashsim command that opens the image (info, io
# read-only and read-write, convert, and check when it exists) exit 1 with a message that names
# the file and the problem, and leaves the file byte-for-byte unchanged. `check` follows
# qemu-img check: 63 for a bad magic unless -f qcow2 is given, and an L1 table past the end of
# the file is a corruption it reports (exit 2) rather than a refusal; `check -r` must not crash
# and must not write to an image it could not open.
source "$(dirname "$0")/lib.sh"


run qemu-img create -q -f qcow2 "$WORK/good.qcow2" 64M
run qemu-io -c "write -P 0x5a 0 64k" "$WORK/good.qcow2"
# The baseline must open, or every case below would pass for the wrong reason.
run "$CRASHSIM" info "$WORK/good.qcow2"
run "$CRASHSIM" io -r -c "read -P 0x5a 0 64k" "$WORK/good.qcow2"

# run_malformed NAME WANT_RC WANT_TEXT MAY_MODIFY IMG ARGS...: one crashsim command on a bad image.
run_malformed() {
  local name=$1 want_rc=$2 want=$3 may_modify=$4 img=$5
  shift 5
  CASES=$((CASES + 1))
  local before
  before=$(md5sum <"$img")
  if expect "$want_rc" "$CRASHSIM" "$@"; then
    # A refusal names the file; a completed check reports like qemu-img check (which does not).
    if [ "$want_rc" = 1 ] || [ "$want_rc" = 63 ]; then
      grep -q "$name.qcow2" <<<"$OUT" || fail "$name: '$*' does not name the file" "$OUT"
    fi
    grep -qF "$want" <<<"$OUT" || fail "$name: '$*' does not say '$want'" "$OUT"
  fi
  grep -qi "invariant\|abort\|terminate" <<<"$OUT" && fail "$name: '$*' crashed" "$OUT"
  [ "$may_modify" = yes ] || [ "$(md5sum <"$img")" = "$before" ] || fail "$name: '$*' modified the file"
}

# malformed NAME EXPECTED_TEXT EDIT [CHECK_RC CHECK_TEXT]: applies EDIT to a copy of the good
# image, then runs every command. CHECK_RC/CHECK_TEXT: what `check` says where qemu-img check
# opens the image and reports a corruption instead of refusing it.
malformed() {
  local name=$1 want=$2 edit=$3 check_rc=${4:-1} check_text=${5:-$2}
  local img="$WORK/$name.qcow2" out="$WORK/$name.out.raw"
  cp "$WORK/good.qcow2" "$img"
  "$edit" "$img"
  run_malformed "$name" 1 "$want" no "$img" info "$img"
  run_malformed "$name" 1 "$want" no "$img" info --output=json "$img"
  run_malformed "$name" 1 "$want" no "$img" io -r -c "read 0 512" "$img"
  run_malformed "$name" 1 "$want" no "$img" io -c "write -P 0x11 0 512" "$img"
  run_malformed "$name" 1 "$want" no "$img" io -t writeback -c "write -P 0x11 0 512" -c flush "$img"
  run_malformed "$name" 1 "$want" no "$img" convert -O raw "$img" "$out"
  # As qemu-img, check without -f says "does not support checks" (63) for a non-qcow2 file.
  local probe_rc=$check_rc
  [ "$name" = bad_magic ] && probe_rc=63
  run_malformed "$name" "$probe_rc" "$check_text" no "$img" check "$img"
  run_malformed "$name" "$probe_rc" "$check_text" no "$img" check --output=json "$img"
  run_malformed "$name" "$check_rc" "$check_text" no "$img" check -f qcow2 "$img"
  # A repair may write only to an image it could open.
  local may_modify=no
  [ "$check_rc" = 1 ] || may_modify=yes
  local rc
  for r in leaks all; do
    cp "$img" "$img.repair"
    OUT=$("$CRASHSIM" check -r $r "$img.repair" 2>&1)
    rc=$?
    CASES=$((CASES + 1))
    case $rc in 0|1|2|3|63) ;; *) fail "$name: check -r $r exited $rc" "$OUT" ;; esac
    grep -qi "invariant\|abort\|terminate" <<<"$OUT" && fail "$name: check -r $r crashed" "$OUT"
    [ $may_modify = yes ] || cmp -s "$img" "$img.repair" || fail "$name: check -r $r modified an image it could not open"
  done
}

bad_magic() { poke "$1" 0 58585858; }
version4() { poke "$1" 4 00000004; }
cluster_bits() { poke "$2" 20 "$1"; }
cluster_bits8() { cluster_bits 00000008 "$1"; }
cluster_bits22() { cluster_bits 00000016 "$1"; }
l1_size_too_large() { poke "$1" 36 00400001; }
incompatible_bit5() { poke "$1" 72 0000000000000020; }
l1_offset_past_eof() { poke "$1" 40 0000000040000000; }
truncated50() { truncate -s 50 "$1"; }

malformed bad_magic "qcow2" bad_magic
malformed version4 "version 4" version4
malformed cluster_bits8 "2^8" cluster_bits8
malformed cluster_bits22 "2^22" cluster_bits22
malformed l1_size "L1 table too large" l1_size_too_large
malformed incompatible_bit5 "Unknown incompatible feature: 20" incompatible_bit5
malformed l1_offset "L1 table" l1_offset_past_eof 2 "exceeding the end of the file"
malformed truncated "truncated" truncated50
finish
