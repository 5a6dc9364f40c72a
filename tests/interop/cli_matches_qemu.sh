#!/usr/bin/env bash
# The command line where it copies QEMU's tools (issue 14): `crashsim info --backing-chain` prints
# what `qemu-img info --backing-chain` prints (human and JSON, qcow2 and raw backing files, names
# relative to the image's directory, a chain that does not open); `crashsim convert` without -O
# writes raw, as qemu-img convert does; `crashsim io -c map` prints what `qemu-io -c map` prints
# on the same image; `crashsim io -c help` lists every command crashsim io runs.
source "$(dirname "$0")/lib.sh"

new() { run qemu-img create -q -f qcow2 "$@"; }

# same_stdout NAME "CRASHSIM ARGS" "QEMU CMD...": exit codes and stdout agree.
same_stdout() {
  local name=$1
  shift
  CASES=$((CASES + 1))
  local crashsim_args=$1
  shift
  "$@" >"$WORK/q.out" 2>"$WORK/q.err"
  local qrc=$?
  # shellcheck disable=SC2086
  "$CRASHSIM" $crashsim_args >"$WORK/c.out" 2>"$WORK/c.err"
  local crc=$?
  [ $qrc -eq $crc ] || { fail "$name: exit $crc, $1 exits $qrc: $crashsim_args" "$(cat "$WORK/c.err")"; return; }
  diff -u "$WORK/q.out" "$WORK/c.out" >"$WORK/diff" ||
    fail "$name: stdout differs from $1 (--- qemu, +++ crashsim): $crashsim_args" "$(cat "$WORK/diff")"
}

# info --backing-chain: a chain of three qcow2 images in a subdirectory, each naming the next
# relative to its own directory, over a raw base.
mkdir -p "$WORK/chain"
run qemu-img create -q -f raw "$WORK/chain/base.raw" 4M &&
  new -b base.raw -F raw "$WORK/chain/low.qcow2" &&
  new -b low.qcow2 -F qcow2 "$WORK/chain/mid.qcow2" &&
  new -o cluster_size=4k -b mid.qcow2 -F qcow2 "$WORK/chain/top.qcow2" &&
  new "$WORK/chain/alone.qcow2" 1M &&
  run qemu-io -c "write -P 0x11 0 64k" "$WORK/chain/mid.qcow2" &&
  run qemu-io -c "write -P 0x22 1M 8k" "$WORK/chain/top.qcow2" && {
  for output in human json; do
    same_stdout "info --backing-chain --output=$output" \
      "info --backing-chain --output=$output $WORK/chain/top.qcow2" \
      qemu-img info --backing-chain --output=$output "$WORK/chain/top.qcow2"
    # An image without a backing file: a chain of one (in JSON still an array, as qemu-img's).
    same_stdout "info --backing-chain --output=$output, no backing file" \
      "info --backing-chain --output=$output $WORK/chain/alone.qcow2" \
      qemu-img info --backing-chain --output=$output "$WORK/chain/alone.qcow2"
    # Without --backing-chain: the top image alone, as before.
    same_stdout "info --output=$output" "info --output=$output $WORK/chain/top.qcow2" \
      qemu-img info --output=$output "$WORK/chain/top.qcow2"
  done
  # A backing file that names no format: probed (qcow2 here). qemu-img 7.2 no longer writes
  # such an image; zeroing the type of the first header extension (the backing format, at
  # header_length 112) ends the extension list before it.
  new -b mid.qcow2 -F qcow2 "$WORK/chain/unnamed.qcow2" &&
    poke "$WORK/chain/unnamed.qcow2" 112 00000000 &&
    same_stdout "info --backing-chain, backing format probed" \
      "info --backing-chain $WORK/chain/unnamed.qcow2" \
      qemu-img info --backing-chain "$WORK/chain/unnamed.qcow2"
  # A chain with a missing image: both fail and print nothing on stdout.
  cp "$WORK/chain/top.qcow2" "$WORK/chain/mid.qcow2" "$WORK/" && rm -f "$WORK/low.qcow2" &&
    same_stdout "info --backing-chain, missing member" "info --backing-chain $WORK/top.qcow2" \
      qemu-img info --backing-chain "$WORK/top.qcow2"
}

# convert without -O: raw, byte for byte what qemu-img convert writes.
CASES=$((CASES + 1))
run qemu-img convert "$WORK/chain/top.qcow2" "$WORK/q.raw" &&
  run "$CRASHSIM" convert "$WORK/chain/top.qcow2" "$WORK/c.raw" &&
  same_file "$WORK/q.raw" "$WORK/c.raw" "convert without -O differs from qemu-img convert"

# io -c map: the same lines as qemu-io's map on images of several shapes.
same_map() {
  same_stdout "map: $1" "io -r -c map $2" qemu-io -r -c map "$2"
}
new "$WORK/empty.qcow2" 64M && same_map "an empty image" "$WORK/empty.qcow2"
new "$WORK/writes.qcow2" 64M &&
  run qemu-io -c "write 0 64k" -c "write 128k 192k" -c "write 1M 512" -c "write 63M 1M" \
    "$WORK/writes.qcow2" && same_map "data clusters" "$WORK/writes.qcow2"
new "$WORK/zeros.qcow2" 64M &&
  run qemu-io -c "write 0 1M" -c "write -z 64k 128k" -c "write -z -u 512k 64k" \
    -c "discard 768k 64k" -c "write -z 4M 64k" "$WORK/zeros.qcow2" &&
  same_map "zero, unmapped and discarded clusters" "$WORK/zeros.qcow2"
new -o compat=0.10 "$WORK/v2.qcow2" 8M &&
  run qemu-io -c "write 0 256k" -c "write -z 64k 64k" -c "discard 128k 64k" "$WORK/v2.qcow2" &&
  same_map "a v2 image" "$WORK/v2.qcow2"
new -o cluster_size=512 "$WORK/small-clusters.qcow2" 1M &&
  run qemu-io -c "write 0 1536" -c "write 100k 3k" "$WORK/small-clusters.qcow2" &&
  same_map "512-byte clusters" "$WORK/small-clusters.qcow2"
new "$WORK/odd-size.qcow2" 1000448 &&
  run qemu-io -c "write 983040 17408" "$WORK/odd-size.qcow2" &&
  same_map "a size that is not a multiple of the cluster size" "$WORK/odd-size.qcow2"
run qemu-img convert -c -O qcow2 "$WORK/writes.qcow2" "$WORK/compressed.qcow2" &&
  same_map "compressed clusters" "$WORK/compressed.qcow2"
same_map "an overlay (its own clusters only)" "$WORK/chain/top.qcow2"
new "$WORK/big.qcow2" 5T &&
  run qemu-io -c "write 2T 64k" -c "write 4398046445568 64k" "$WORK/big.qcow2" &&
  same_map "a 5 TiB image" "$WORK/big.qcow2"

# io -c help: every command crashsim io runs, in qemu-io's "NAME ARGS -- WHAT" form.
CASES=$((CASES + 1))
if run "$CRASHSIM" io -r -c help "$WORK/empty.qcow2"; then
  help=$OUT
  listed=$(awk '{print $1}' <<<"$help" | sort | tr '\n' ' ')
  [ "$listed" = "discard flush help map read sigraise truncate write " ] ||
    fail "io -c help lists '$listed'" "$help"
  grep -qv -- ' -- ' <<<"$help" && fail "io -c help: a line without ' -- '" "$help"
  qemu_help=$(qemu-io -c help "$WORK/empty.qcow2")
  for command in $listed; do
    grep -q "^$command " <<<"$qemu_help" || fail "io -c help lists '$command', which qemu-io has not"
    expect 0 "$CRASHSIM" io -r -c "help $command" "$WORK/empty.qcow2" &&
      [ "$OUT" = "$(grep "^$command " <<<"$help")" ] || fail "io -c 'help $command'" "$OUT"
  done
  expect 1 "$CRASHSIM" io -r -c "help frob" "$WORK/empty.qcow2"
fi

finish
