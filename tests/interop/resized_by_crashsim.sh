#!/usr/bin/env bash
# Images resized by crashsim (`crashsim resize` and `crashsim io -c truncate`) pass `qemu-img
# check` and equal, by `qemu-img compare`, a raw file given the same writes and size changes by
# qemu-io/qemu-img; `qemu-img info` reports the new size. The sequence grows past what one L1
# cluster covers (a new L1 table with 512-byte clusters), writes at the far end, shrinks to a size
# that is not a cluster multiple, writes, and grows again: the area past the shrunken end must
# read as zeros. Also: a resize by crashsim of an image qemu-img wrote, qemu-img's resize of an
# image crashsim wrote, v2 and v3 images over a backing file longer than the image (the grown
# area must not show the backing file), and the refusals (shrink without --shrink, a size not a
# multiple of 512).
#
# QEMU 7.2 itself fails the regrow step: it leaves the tail of the last cluster past an
# unaligned shrink as it was, and a later grow shows it (docs/findings.md F3). The last case
# shows that, so the finding stays reproduced.
source "$(dirname "$0")/lib.sh"

# io_args SESSION...: "-c CMD" pairs.
io_args() { for c in "$@"; do printf '%s\0' -c "$c"; done; }

# resize_case OPTS N: the sequence on a crashsim image and on a raw twin.
resize_case() {
  local opts=$1 n=$2
  local img="$WORK/case$n.qcow2" raw="$WORK/case$n.raw"
  local failures_before=$FAILURES
  CASES=$((CASES + 1))
  mapfile -d '' s1 < <(io_args "write -P 0x11 0 1M" "write -P 0x22 1000 3000")
  mapfile -d '' s2 < <(io_args "write -P 0x33 5M 1M" "write -P 0x44 6275072 4096")
  mapfile -d '' s3 < <(io_args "write -P 0x55 300k 8k" "truncate 7M" "write -P 0x66 6M 4k")
  if run "$CRASHSIM" create -q -o "$opts" "$img" 1M &&
     run qemu-img create -q -f raw "$raw" 1M &&
     run "$CRASHSIM" io "${s1[@]}" "$img" && run qemu-io -f raw "${s1[@]}" "$raw" &&
     run "$CRASHSIM" resize "$img" +5M && run qemu-img resize -q -f raw "$raw" +5M &&
     run "$CRASHSIM" io "${s2[@]}" "$img" && run qemu-io -f raw "${s2[@]}" "$raw" &&
     run "$CRASHSIM" resize -q --shrink "$img" 400896 &&
     run qemu-img resize -q -f raw --shrink "$raw" 400896 &&
     run qemu-img check "$img" &&
     run "$CRASHSIM" io "${s3[@]}" "$img" && run qemu-io -f raw "${s3[@]}" "$raw"; then
    run qemu-img check "$img"
    run "$CRASHSIM" check "$img"
    run qemu-img compare -f qcow2 -F raw "$img" "$raw"
    run qemu-img info --output=json "$img"
    grep -q '"virtual-size": 7340032' <<<"$OUT" || fail "$img: qemu-img info's size is not 7M" "$OUT"
  fi
  if [ "$FAILURES" -ne "$failures_before" ]; then
    echo "  case $n: -o $opts; repro:"
    echo "    $(q "$CRASHSIM" create -o "$opts" img.qcow2 1M)"
    echo "    $(q "$CRASHSIM" io "${s1[@]}" img.qcow2); crashsim resize img.qcow2 +5M"
    echo "    $(q "$CRASHSIM" io "${s2[@]}" img.qcow2); crashsim resize --shrink img.qcow2 400896"
    echo "    $(q "$CRASHSIM" io "${s3[@]}" img.qcow2); qemu-img check img.qcow2"
  fi
}

n=0
for cs in 512 4k 64k; do
  resize_case "compat=0.10,cluster_size=$cs" $((n++))
  for lazy in off on; do
    resize_case "compat=1.1,lazy_refcounts=$lazy,cluster_size=$cs" $((n++))
  done
done
resize_case "compat=1.1,cluster_size=64k,extended_l2=on" $((n++))
resize_case "compat=1.1,cluster_size=4k,refcount_bits=64" $((n++))

# Each tool resizes the other's image: the same content as a raw twin, and both checks clean.
CASES=$((CASES + 1))
a="$WORK/by-qemu.qcow2" b="$WORK/by-crashsim.qcow2" r="$WORK/cross.raw"
if run qemu-img create -q -f qcow2 -o cluster_size=512 "$a" 1M &&
   run "$CRASHSIM" create -q -o cluster_size=512 "$b" 1M && run qemu-img create -q -f raw "$r" 1M &&
   run qemu-io -c "write -P 0x71 0 1M" "$a" && run qemu-io -c "write -P 0x71 0 1M" "$b" &&
   run qemu-io -f raw -c "write -P 0x71 0 1M" "$r" &&
   run "$CRASHSIM" resize "$a" 3M && run qemu-img resize -q "$b" 3M &&
   run qemu-img resize -q -f raw "$r" 3M; then
  for img in "$a" "$b"; do
    run qemu-img check "$img"
    run "$CRASHSIM" check "$img"
    run qemu-img compare -f qcow2 -F raw "$img" "$r"
  done
fi

# An image over a longer backing file: the grown area reads as zeros, as a raw file would (zero
# clusters on v3; explicit zeros on v2, where qemu-img refuses: "Failed to zero out new
# clusters"). The size is not a cluster multiple, so the old last cluster's tail is zeroed too.
base="$WORK/base.qcow2" want="$WORK/top.raw"
if run qemu-img create -q -f qcow2 "$base" 2M && run qemu-io -c "write -P 0x5b 0 2M" "$base" &&
   run qemu-img create -q -f raw "$want" 2M &&
   run qemu-io -f raw -c "write -P 0x5b 0 525824" "$want"; then
  for compat in 1.1 0.10; do
    CASES=$((CASES + 1))
    top="$WORK/top-$compat.qcow2"
    run "$CRASHSIM" create -q -o compat=$compat,cluster_size=4k -b base.qcow2 -F qcow2 "$top" 525824 &&
      run "$CRASHSIM" resize "$top" 2M && run qemu-img check "$top" &&
      run qemu-img compare -f qcow2 -F raw "$top" "$want"
  done
fi

# Refusals: a clear message, exit 1, and the image unchanged.
CASES=$((CASES + 1))
img="$WORK/refuse.qcow2"
if run "$CRASHSIM" create -q "$img" 1M; then
  before=$(md5sum <"$img")
  expect 1 "$CRASHSIM" resize "$img" 512k && { grep -q -- "--shrink" <<<"$OUT" || fail "no --shrink hint" "$OUT"; }
  expect 1 "$CRASHSIM" resize "$img" 2000001 && { grep -q "multiple of 512" <<<"$OUT" || fail "no 512 hint" "$OUT"; }
  expect 1 "$CRASHSIM" resize "$img" -- -2M && { grep -q "must be positive" <<<"$OUT" || fail "no positive hint" "$OUT"; }
  expect 1 "$CRASHSIM" resize "$img" 1Q
  [ "$(md5sum <"$img")" = "$before" ] || fail "a refused resize changed $img"
fi

# F3: QEMU shows the bytes past an unaligned shrink again after a grow; crashsim reads zeros.
CASES=$((CASES + 1))
for tool in qemu crashsim; do
  img="$WORK/f3-$tool.qcow2"
  run qemu-img create -q -f qcow2 "$img" 1M && run qemu-io -c "write -P 0x5a 0 1M" "$img" || continue
  if [ $tool = qemu ]; then
    run qemu-img resize -q --shrink "$img" 66048 && run qemu-img resize -q "$img" 1M
  else
    run "$CRASHSIM" resize -q --shrink "$img" 66048 && run "$CRASHSIM" resize -q "$img" 1M
  fi
  shown=$(qemu-io -c "read -P 0 66048 64000" "$img" 2>&1)
  if grep -q "Pattern verification failed" <<<"$shown"; then
    [ $tool = qemu ] || fail "crashsim's regrown area shows the old bytes"
  else
    [ $tool = crashsim ] || echo "NOTE: this QEMU no longer shows F3 (docs/findings.md): update it"
  fi
done
finish
