#!/usr/bin/env bash
# Internal snapshots created, reverted to and deleted by crashsim (`crashsim snapshot -c/-a/-d`)
# match the same operations done by qemu-img on a twin image: both pass `qemu-img check`, `qemu-img snapshot -l`
# lists the same ids and tags (dates aside: crashsim writes date 0), `crashsim snapshot -l` prints
# what `qemu-img snapshot -l` prints for the same image, and the active layer and every
# remaining snapshot read the same (`qemu-img compare`, `qemu-img convert -l`). Deleting a
# snapshot frees its clusters: a later write of fresh clusters does not grow the file. Also the
# refusals: an unknown name, mixed actions, a v2 image.
source "$(dirname "$0")/lib.sh"

# ids_and_tags IMG: `qemu-img snapshot -l` without the date, clock and size columns.
ids_and_tags() { qemu-img snapshot -l "$1" | awk 'NR > 2 { print $1, $2 }'; }

snapshot_case() {
  local opts=$1 n=$2
  local ours="$WORK/ours$n.qcow2" theirs="$WORK/theirs$n.qcow2"
  local failures_before=$FAILURES
  CASES=$((CASES + 1))
  run "$CRASHSIM" create -q -o "$opts" "$ours" 4M && run qemu-img create -q -f qcow2 -o "$opts" "$theirs" 4M || return
  # step TOOL_ARGS...: the same io or snapshot step on both images.
  step() {
    local what=$1
    shift
    if [ "$what" = io ]; then
      run "$CRASHSIM" io -c "$*" "$ours" && run qemu-io -c "$*" "$theirs"
    else
      run "$CRASHSIM" snapshot "$@" "$ours" && run qemu-img snapshot "$@" "$theirs"
    fi
  }
  step io "write -P 0x11 0 1M" && step snapshot -c s1 &&
    step io "write -P 0x22 512k 1M" && step snapshot -c s2 &&
    step io "write -P 0x33 3M 64k" && step snapshot -c s3 &&
    step io "write -P 0x44 0 64k" && step snapshot -d s2 || return
  for img in "$ours" "$theirs"; do run qemu-img check "$img"; done
  [ "$(ids_and_tags "$ours")" = "$(ids_and_tags "$theirs")" ] ||
    fail "snapshot lists differ" "$(ids_and_tags "$ours"; echo ---; ids_and_tags "$theirs")"
  run "$CRASHSIM" snapshot -l "$ours" && [ "$OUT" = "$(qemu-img snapshot -l "$ours")" ] ||
    fail "crashsim snapshot -l differs from qemu-img snapshot -l" "$OUT"
  run qemu-img compare "$ours" "$theirs"
  for s in s1 s3; do
    run qemu-img convert -O raw -l "snapshot.name=$s" "$ours" "$WORK/o-$s.raw" &&
      run qemu-img convert -O raw -l "snapshot.name=$s" "$theirs" "$WORK/t-$s.raw" &&
      same_file "$WORK/o-$s.raw" "$WORK/t-$s.raw" "snapshot $s ($opts)"
  done
  # Reverting (by name, by id, and to a snapshot of another disk size after a resize) reads as
  # qemu-img's revert does, and checks clean.
  step snapshot -a s1 && run qemu-img check "$ours" && run qemu-img compare "$ours" "$theirs"
  step io "write -P 0x66 2M 64k" && step snapshot -a 3 && run qemu-img check "$ours" &&
    run qemu-img compare "$ours" "$theirs"
  run "$CRASHSIM" resize -q "$ours" 6M && run qemu-img resize -q "$theirs" 6M &&
    step io "write -P 0x77 5M 64k" && step snapshot -a s1 && run qemu-img check "$ours" &&
    run qemu-img compare "$ours" "$theirs"
  # Deleting the rest frees every cluster they alone held: fresh writes fit in the file.
  step snapshot -d s1 && step snapshot -d s3 || return
  run qemu-img check "$ours"
  local size_before
  size_before=$(stat -c %s "$ours")
  run "$CRASHSIM" io -c "write -P 0x55 2M 512k" "$ours" && run qemu-io -c "write -P 0x55 2M 512k" "$theirs"
  [ "$(stat -c %s "$ours")" -le "$size_before" ] ||
    fail "writes after deleting every snapshot grew $ours from $size_before bytes"
  run qemu-img check "$ours"
  run qemu-img compare "$ours" "$theirs"
  if [ "$FAILURES" -ne "$failures_before" ]; then
    echo "  case $n: -o $opts; kept in $WORK"
  fi
}

n=0
for opts in "compat=1.1,cluster_size=64k" "compat=1.1,cluster_size=4k,lazy_refcounts=on" \
            "compat=1.1,cluster_size=512,refcount_bits=64" "compat=1.1,cluster_size=64k,extended_l2=on"; do
  snapshot_case "$opts" $((n++))
done

# Refusals: a clear message, exit 1, the image unchanged.
CASES=$((CASES + 1))
img="$WORK/refuse.qcow2"
if run "$CRASHSIM" create -q "$img" 1M && run "$CRASHSIM" snapshot -c keep "$img"; then
  before=$(md5sum <"$img")
  expect 1 "$CRASHSIM" snapshot -d nosuch "$img" && { grep -q "Could not delete snapshot 'nosuch': snapshot not found" <<<"$OUT" || fail "unknown name" "$OUT"; }
  expect 1 "$CRASHSIM" snapshot -a nosuch "$img" && { grep -q "Could not apply snapshot 'nosuch': snapshot not found" <<<"$OUT" || fail "unknown snapshot" "$OUT"; }
  expect 1 "$CRASHSIM" snapshot -c a -d keep "$img" && { grep -q "Cannot mix" <<<"$OUT" || fail "mixed actions" "$OUT"; }
  [ "$(md5sum <"$img")" = "$before" ] || fail "a refused snapshot command changed $img"
fi
v2="$WORK/v2.qcow2"
if run qemu-img create -q -f qcow2 -o compat=0.10 "$v2" 1M && run qemu-img snapshot -c s "$v2"; then
  expect 1 "$CRASHSIM" snapshot -d s "$v2" && { grep -q "v3" <<<"$OUT" || fail "v2 refusal" "$OUT"; }
  run "$CRASHSIM" snapshot -l "$v2" && [ "$OUT" = "$(qemu-img snapshot -l "$v2")" ] || fail "v2 list" "$OUT"
fi
finish
