# Shared helpers for the interop scripts (sourced). Each script gets a scratch directory, a
# failure counter and helpers that print the exact command to reproduce any failure.
# Exit codes: 0 pass, 1 fail, 77 skipped (qemu-utils missing; ctest's SKIP_RETURN_CODE).
set -uo pipefail

for program in qemu-img qemu-io; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "SKIP: $program not found (install qemu-utils; ci/setup does)"
    exit 77
  fi
done
CRASHSIM=${CRASHSIM:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/bin/crashsim}
if [ ! -x "$CRASHSIM" ]; then
  echo "FAIL: crashsim binary not found at $CRASHSIM (set CRASHSIM=...)"
  exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/crashsim-interop.XXXXXX")
FAILURES=0
CASES=0
keep_on_failure() {
  if [ "$FAILURES" -eq 0 ]; then
    rm -rf "$WORK"
  else
    echo "kept the scratch directory for inspection: $WORK"
  fi
}
trap keep_on_failure EXIT

# q CMD...: a command line, shell-quoted, for repro messages.
q() { printf '%q ' "$@"; }

# fail MESSAGE [OUTPUT]: records a failure.
fail() {
  FAILURES=$((FAILURES + 1))
  echo "FAIL: $1"
  if [ $# -ge 2 ] && [ -n "$2" ]; then printf '%s\n' "$2" | sed 's/^/    | /' | head -40; fi
}

# expect RC CMD...: runs CMD; records a failure unless it exits with RC. Output in $OUT.
expect() {
  local want=$1
  shift
  OUT=$("$@" 2>&1)
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    fail "exit $rc (expected $want): $(q "$@")" "$OUT"
    return 1
  fi
  return 0
}

# run CMD...: expect exit 0.
run() { expect 0 "$@"; }

# same_file A B WHAT: records a failure unless A and B have the same bytes.
same_file() {
  if ! cmp -s "$1" "$2"; then
    fail "$3: $(q cmp "$1" "$2")" "$(cmp "$1" "$2" 2>&1 | head -3)"
    return 1
  fi
  return 0
}

# poke FILE OFFSET HEX: writes the bytes HEX (e.g. 00000004) at OFFSET.
poke() {
  printf "$(sed 's/../\\x&/g' <<<"$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# finish: prints the summary and exits with the test's status.
finish() {
  if [ "$FAILURES" -eq 0 ]; then
    echo "PASS: $CASES cases"
    exit 0
  fi
  echo "FAILED: $FAILURES failures in $CASES cases"
  exit 1
}
