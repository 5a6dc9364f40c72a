#!/usr/bin/env bash
# `crashsim explore` as the README describes it: the built-in default workload's geometry, a
# capped run that still covers every crash point, the same report for any -j, sparse disks of
# any size, and clear errors for bad flags. Run by ctest with CRASHSIM set.
set -uo pipefail
CRASHSIM=${CRASHSIM:?set CRASHSIM to the crashsim binary}
FAILURES=0

fail() { FAILURES=$((FAILURES + 1)); echo "FAIL: $1"; [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/    | /' | head -30; }
# The report without its timing line, which is the only part allowed to differ between runs.
report() { "$CRASHSIM" explore -q "$@" 2>&1 | grep -v ' states/s; run cost '; }
# covered_all REPORT: the report's "crash points covered X of Y" has X == Y > 0.
covered_all() {
  local line
  line=$(grep -o 'crash points covered [0-9]* of [0-9]*' <<<"$1") || return 1
  set -- $line
  [ "$4" -gt 0 ] && [ "$4" = "$6" ]
}

# The default workload: 200 guest ops on a 1 GiB disk with 64 KiB clusters; capped at 100
# states it still checks a state at every crash point (so the clean close is among them).
out=$(report --max-states 100)
grep -q '^workload: 200 guest ops on a 1073741824-byte disk; image .*cluster_size=65536' <<<"$out" ||
  fail "the default workload is not 200 ops on 1 GiB with 64 KiB clusters" "$out"
covered_all "$out" || fail "--max-states 100 left crash points uncovered" "$out"
grep -q 'FAILURE          0' <<<"$out" || fail "the default workload fails" "$out"

# One job or two: the same report, byte for byte.
one=$(report --ops 40 --seed 7 -o lazy_refcounts=on -j 1)
two=$(report --ops 40 --seed 7 -o lazy_refcounts=on -j 2)
[ "$one" = "$two" ] || fail "-j 1 and -j 2 reports differ" "$(diff <(echo "$one") <(echo "$two"))"
covered_all "$one" || fail "an uncapped run left crash points uncovered" "$one"

# A sparse 1 TiB disk takes the same ops and covers every point.
out=$(report --ops 20 --disk-size 1T)
grep -q '^workload: 20 guest ops on a 1099511627776-byte disk' <<<"$out" &&
  covered_all "$out" || fail "--disk-size 1T" "$out"

# --coverage on the default workload, every configuration of --matrix: a row per protocol
# step and per structure, and the steps no state crashed after are exactly those README.md
# names (what the built-in workload cannot reach yet).
out=$("$CRASHSIM" explore -q --matrix --max-states 100 --coverage 2>&1)
grep -q '^coverage of the six configurations together' <<<"$out" &&
  grep -Eq '^l2-writeback +[1-9][0-9]* +[1-9]' <<<"$out" &&
  grep -Eq '^\[refcount-block\] +[1-9]' <<<"$out" ||
  fail "--matrix --coverage: no table" "$out"
never='steps no state crashed after: create, refblock-alloc, reftable-entry, reftable-write, reftable-switch, preallocate, repair'
grep -qx "$never" <<<"$out" || fail "--coverage: unreached steps differ from README.md" "$out"

# Bad flags: a message naming the flag, exit 1.
for bad in "--disk-size 3x" "--disk-size 1000" "-j 0" "--crash flood" "--fault write#3" \
           "--fault scribble#1:EIO" "--fault-sweep --matrix" "--fault-sweep --coverage"; do
  # shellcheck disable=SC2086
  msg=$("$CRASHSIM" explore -q $bad 2>&1)
  rc=$?
  flag=${bad%% *}
  [ "$rc" -eq 1 ] && grep -q -- "$flag" <<<"$msg" || fail "explore $bad: exit $rc" "$msg"
done

# The I/O-error sweep: every device op of a short run fails once with EIO and once with ENOSPC;
# each error reaches its caller and nothing fails (issue 13). One fault alone names the guest op
# it hit. (Seed 2: its first six ops write; seed 1's resize and read.)
out=$(report --ops 6 --seed 2 --fault-sweep --max-states 1 -o lazy_refcounts=on)
injected=$(grep -o 'I/O-error sweep: [0-9]* faults injected' <<<"$out" | grep -o '[0-9]*')
reached=$(grep -o '[0-9]* reached the caller' <<<"$out" | grep -o '[0-9]*')
{ [ "${injected:-0}" -gt 20 ] && [ "$injected" = "$reached" ] && grep -q ', 0 failures' <<<"$out"; } ||
  fail "--fault-sweep on 6 ops" "$out"
# The same sweep with one job and two: the same report (the faults swept never depend on
# which thread checked what).
one=$(report --ops 6 --seed 2 --fault-sweep --max-states 1 -o lazy_refcounts=on -j 1 | grep 'sweep:')
two=$(report --ops 6 --seed 2 --fault-sweep --max-states 1 -o lazy_refcounts=on -j 2 | grep 'sweep:')
[ "$one" = "$two" ] || fail "--fault-sweep -j 1 and -j 2 differ" "$one
$two"
out=$(report --ops 6 --seed 2 --fault write#3:ENOSPC -o lazy_refcounts=on)
grep -q '^injected write#3:ENOSPC: it hit guest op #[0-9]* (.*), which returned: no space' \
  <<<"$out" && grep -q 'FAILURE          0' <<<"$out" || fail "--fault write#3:ENOSPC" "$out"

# A bad workload file: a message naming the file and line, exit 1, no crash. A second disk line
# once shrank the disk under earlier ops and crashed explore (issue 13, finding 1).
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
printf 'disk 4096\nread 0 7\ndisk 512\n' >"$WORK/two-disks.txt"
msg=$("$CRASHSIM" explore -q --workload "$WORK/two-disks.txt" 2>&1)
rc=$?
[ "$rc" -eq 1 ] && grep -q "two-disks.txt: workload line 3: a second 'disk' line" <<<"$msg" ||
  fail "explore --workload with a second disk line: exit $rc" "$msg"

[ "$FAILURES" -eq 0 ] && echo PASS && exit 0
echo "FAILED: $FAILURES"
exit 1
