#!/usr/bin/env bash
# --junit FILE on explore, validate and conformance: the file is JUnit XML that the schema CI
# systems read accepts (tests/junit/junit.xsd, xmllint), with one test case per configuration;
# a failing case carries each trace's path and a replay command that, run as written,
# reproduces the failure. Run by ctest with CRASHSIM set.
set -uo pipefail
CRASHSIM=${CRASHSIM:?set CRASHSIM to the crashsim binary}
XSD=$(cd "$(dirname "$0")" && pwd)/junit.xsd
FAILURES=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { FAILURES=$((FAILURES + 1)); echo "FAIL: $1"; [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/    | /' | head -30; }

# valid FILE WHAT TESTS FAILURES: FILE passes the schema and counts TESTS cases, FAILURES failed.
valid() {
  local file=$1 what=$2 tests=$3 failures=$4 out
  out=$(xmllint --noout --schema "$XSD" "$file" 2>&1) || { fail "$what: not valid JUnit XML" "$out"; return; }
  grep -q "<testsuite name=\"[^\"]*\" tests=\"$tests\" failures=\"$failures\"" "$file" ||
    fail "$what: expected $tests cases, $failures failed" "$(head -4 "$file")"
  [ "$(grep -c '<testcase ' "$file")" -eq "$tests" ] || fail "$what: not $tests <testcase>s"
}

"$CRASHSIM" explore -q --ops 10 --junit "$WORK/explore.xml" >/dev/null ||
  fail "explore --junit exited non-zero"
valid "$WORK/explore.xml" "explore" 1 0
grep -q 'name="writethrough lazy_refcounts=off power-loss"' "$WORK/explore.xml" ||
  fail "explore: the case is not named by its configuration" "$(cat "$WORK/explore.xml")"

"$CRASHSIM" explore -q --matrix --ops 6 --junit "$WORK/matrix.xml" >/dev/null ||
  fail "explore --matrix --junit exited non-zero"
valid "$WORK/matrix.xml" "explore --matrix" 6 0

# A writer that ignores flushes (docs/guide.md's planted bug): validate finds lost data. Without
# image operations, as the guide's target: qemu-img's snapshot runs flush, and would close most of
# the windows the bug leaves.
sed 's/-t {cache}/-t unsafe/g' "$(dirname "$0")/../../validate/targets/qemu.target" |
  grep -v -E '^op\.(resize|snapshot|delete-snapshot|apply-snapshot) ' >"$WORK/bad.target"
"$CRASHSIM" validate -q --target "$WORK/bad.target" -t writethrough --lazy off --crash power \
  --max-states 24 --trace-dir "$WORK/findings" --junit "$WORK/validate.xml" >/dev/null
rc=$?
[ $rc -eq 2 ] || fail "validate of a writer that ignores flushes exited $rc, not 2 (findings)"
valid "$WORK/validate.xml" "validate" 1 1
grep -q '<failure message="[0-9]* finding(s); the first, at power-loss@' "$WORK/validate.xml" ||
  fail "validate: no failure message naming the first finding" "$(cat "$WORK/validate.xml")"
text=$(xmllint --xpath 'string(//failure[1])' "$WORK/validate.xml")
replay=$(grep -m1 -o "replay: crashsim replay '[^']*'" <<<"$text" | sed 's/^replay: //')
trace=$(sed "s/^crashsim replay '\(.*\)'$/\1/" <<<"$replay")
[ -n "$replay" ] && [ -f "$trace" ] && [ "${trace:0:1}" = / ] ||
  fail "validate: no replay command for an existing trace, by absolute path" "$text"
# The command as written, from another directory, with this build's crashsim: the failure
# reproduces (exit 0).
out=$(cd / && PATH="$(dirname "$CRASHSIM"):$PATH" bash -c "$replay -q" 2>&1) ||
  fail "the JUnit file's replay command does not reproduce the failure" "$out"

"$CRASHSIM" conformance -q --reader qemu --junit "$WORK/conformance.xml" >/dev/null ||
  fail "conformance --reader qemu --junit exited non-zero"
cases=$(grep -c '<testcase ' "$WORK/conformance.xml")
[ "$cases" -ge 20 ] || fail "conformance: $cases cases, expected one per corpus image (20+)"
valid "$WORK/conformance.xml" "conformance" "$cases" 0

# Markup in a name stays data: a trace directory with '<&"' in it.
mkdir -p "$WORK/a<&\"b"
"$CRASHSIM" validate -q --target "$WORK/bad.target" -t writethrough --lazy off --crash power \
  --max-states 6 --trace-dir "$WORK/a<&\"b" --junit "$WORK/markup.xml" >/dev/null
xmllint --noout --schema "$XSD" "$WORK/markup.xml" 2>/dev/null ||
  fail "a path with markup characters breaks the XML" "$(grep -m2 'trace:' "$WORK/markup.xml")"

# A file that cannot be written: a clear error, exit 1.
out=$("$CRASHSIM" explore -q --ops 4 --junit "$WORK/no/such/dir/x.xml" 2>&1)
rc=$?
[ $rc -eq 1 ] && grep -q "no/such/dir" <<<"$out" || fail "--junit into a missing directory: exit $rc" "$out"

[ "$FAILURES" -eq 0 ] && echo PASS && exit 0
echo "FAILED: $FAILURES"
exit 1
