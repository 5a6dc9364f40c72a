#!/usr/bin/env bash
# Malformed headers: each edit of a valid image (bad magic, version 4, cluster_bits 8 and 22,
# l1_size past 4194304, unknown incompatible bit 5, l1_table_offset past the end of the file,
# a file truncated to 50 bytes) makes every crashsim command that opens the image (info, io
# read-only and read-write, convert, and check when it exists) exit 1 with a message that names
# the file and the problem, and leaves the file byte-for-byte unchanged.
source "$(dirname "$0")/lib.sh"

# poke FILE OFFSET HEX: writes the bytes HEX (e.g. 00000004) at OFFSET.
poke() {
  printf "$(sed 's/../\\x&/g' <<<"$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

run qemu-img create -q -f qcow2 "$WORK/good.qcow2" 64M
run qemu-io -c "write -P 0x5a 0 64k" "$WORK/good.qcow2"
# The baseline must open, or every case below would pass for the wrong reason.
run "$CRASHSIM" info "$WORK/good.qcow2"
run "$CRASHSIM" io -r -c "read -P 0x5a 0 64k" "$WORK/good.qcow2"

HAVE_CHECK=0
"$CRASHSIM" --help 2>/dev/null | grep -q "^  check " && HAVE_CHECK=1

# malformed NAME EXPECTED_TEXT EDIT...: applies the edit to a copy, then runs every command.
malformed() {
  local name=$1 want=$2
  shift 2
  local img="$WORK/$name.qcow2"
  cp "$WORK/good.qcow2" "$img"
  "$@" "$img"
  local before
  before=$(md5sum <"$img")
  local -a commands=(
    "info"
    "info --output=json"
    "io -r -c read_0_512"
    "io -c write_-P_0x11_0_512"
    "io -t writeback -c write_-P_0x11_0_512 -c flush"
    "convert -O raw"
  )
  [ $HAVE_CHECK = 1 ] && commands+=("check" "check --output=json" "check -r leaks" "check -r all")
  for c in "${commands[@]}"; do
    CASES=$((CASES + 1))
    local -a argv=()
    for word in $c; do argv+=("${word//_/ }"); done
    local -a extra=()
    [ "${argv[0]}" = convert ] && extra=("$WORK/$name.out.raw")
    if expect 1 "$CRASHSIM" "${argv[@]}" "$img" "${extra[@]}"; then
      grep -q "$name.qcow2" <<<"$OUT" || fail "$name: '$c' does not name the file" "$OUT"
      grep -qF "$want" <<<"$OUT" || fail "$name: '$c' does not say '$want'" "$OUT"
      grep -qi "invariant\|abort\|terminate" <<<"$OUT" && fail "$name: '$c' crashed" "$OUT"
    fi
    [ "$(md5sum <"$img")" = "$before" ] || fail "$name: '$c' modified the file"
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

malformed bad_magic "magic" bad_magic
malformed version4 "version 4" version4
malformed cluster_bits8 "2^8" cluster_bits8
malformed cluster_bits22 "2^22" cluster_bits22
malformed l1_size "L1 table too large" l1_size_too_large
malformed incompatible_bit5 "Unknown incompatible feature: 20" incompatible_bit5
malformed l1_offset "L1 table" l1_offset_past_eof
malformed truncated "truncated" truncated50
finish
