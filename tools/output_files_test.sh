#!/usr/bin/env bash
# Issue 13, finding 4: a command that writes a new file never leaves a half-written one. Each
# output is written under a temporary name beside the target and renamed over it on success, so
# a command that fails on a full file system leaves no file at the target name, no temporary
# file, and a file that was already there untouched. A full file system is simulated with
# RLIMIT_FSIZE (`ulimit -f`, in KiB), with SIGXFSZ ignored so that writes past the limit fail
# with EFBIG instead of killing the process. Run by ctest with CRASHSIM set.
set -uo pipefail
CRASHSIM=${CRASHSIM:?set CRASHSIM to the crashsim binary}
SRC=$(cd "$(dirname "$0")/.." && pwd)
TRACE=$SRC/traces/regressions/lazy-refcounts-dirty-bit-not-written.cstrace
FAILURES=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1

fail() { FAILURES=$((FAILURES + 1)); echo "FAIL: $1"; [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/    | /' | head -30; }

# limited KIB CMD...: runs crashsim with files limited to KIB KiB; prints its stderr and stdout
# (through a pipe, which the limit does not apply to) and returns its exit code.
limited() {
  local kib=$1
  shift
  (trap '' XFSZ; ulimit -f "$kib"; exec "$CRASHSIM" "$@") 2>&1
}

# no_leftovers WHAT: no temporary file is left in the work directory.
no_leftovers() {
  local left
  left=$(find . -name '*.tmp-*')
  [ -z "$left" ] || fail "$1 left a temporary file" "$left"
}

# expect_failed_output WHAT FILE EXIT OUTPUT: the command failed with a message naming FILE,
# and left no FILE.
expect_failed_output() {
  local what=$1 file=$2 code=$3 out=$4
  [ "$code" -ne 0 ] || fail "$what exited 0 on a full file system" "$out"
  grep -qF "$file" <<<"$out" || fail "$what: the error does not name $file" "$out"
  [ ! -e "$file" ] || fail "$what left $file ($(stat -c %s "$file") bytes)" "$out"
  no_leftovers "$what"
}

# expect_untouched WHAT FILE: FILE still has the bytes of precious.orig.
expect_untouched() {
  cmp -s "$2" precious.orig ||
    fail "$1 damaged the file that was at $2" "$(cmp "$2" precious.orig 2>&1)"
  no_leftovers "$1"
}

head -c 8192 /dev/urandom >precious.orig

# The file system is full from the first byte: create must leave nothing behind.
out=$(limited 0 create -q new.qcow2 64M); code=$?
expect_failed_output "create" new.qcow2 "$code" "$out"

# Full after 1 MiB of a preallocated image (the issue's 35 MB image of leaked clusters).
out=$(limited 1024 create -q -o preallocation=metadata prealloc.qcow2 4G); code=$?
expect_failed_output "create -o preallocation=metadata" prealloc.qcow2 "$code" "$out"

# A file at the target name survives a failed create whole (qemu-img create would overwrite it
# on success; a failure must not have started on it).
cp precious.orig target.qcow2
out=$(limited 64 create -q -o preallocation=metadata target.qcow2 1G); code=$?
[ "$code" -ne 0 ] || fail "create over an existing file exited 0 on a full file system" "$out"
expect_untouched "create" target.qcow2

# convert -O raw: a source with data at both ends, exported into a full file system.
"$CRASHSIM" create -q src.qcow2 64M >/dev/null || fail "create src.qcow2"
"$CRASHSIM" io -c 'write -P 0x5a 0 64k' -c 'write -P 0xa5 63M 64k' src.qcow2 >/dev/null ||
  fail "io on src.qcow2"
out=$(limited 1024 convert -O raw src.qcow2 out.raw); code=$?
expect_failed_output "convert -O raw" out.raw "$code" "$out"
cp precious.orig target.raw
out=$(limited 1024 convert -O raw src.qcow2 target.raw); code=$?
[ "$code" -ne 0 ] || fail "convert over an existing file exited 0 on a full file system" "$out"
expect_untouched "convert" target.raw

# Trace outputs: the SVG timeline, the crashed image and the rebuilt trace.
out=$(limited 0 show --svg timeline.svg "$TRACE"); code=$?
expect_failed_output "show --svg" timeline.svg "$code" "$out"
out=$(limited 0 replay -q --image crashed.qcow2 "$TRACE"); code=$?
expect_failed_output "replay --image" crashed.qcow2 "$code" "$out"
cp precious.orig target.cstrace
out=$(limited 0 replay -q --write-trace target.cstrace "$TRACE"); code=$?
[ "$code" -ne 0 ] || fail "replay --write-trace exited 0 on a full file system" "$out"
expect_untouched "replay --write-trace" target.cstrace

# With room, the same commands write their outputs whole and overwrite an existing file, as
# qemu-img create and convert do, keeping its permissions.
cp precious.orig target.qcow2
chmod 600 target.qcow2
out=$("$CRASHSIM" create -q target.qcow2 64M 2>&1) || fail "create over an existing file" "$out"
"$CRASHSIM" check target.qcow2 >/dev/null 2>&1 || fail "the overwritten image does not check clean"
[ "$(stat -c %a target.qcow2)" = 600 ] || fail "create changed the mode of the file it replaced"
out=$("$CRASHSIM" convert -O raw src.qcow2 target.raw 2>&1) ||
  fail "convert over an existing file" "$out"
[ "$(stat -c %s target.raw)" = $((64 << 20)) ] ||
  fail "convert wrote $(stat -c %s target.raw) bytes"
[ "$(head -c 1 target.raw | od -An -tx1 | tr -d ' ')" = 5a ] || fail "convert lost the first write"
out=$("$CRASHSIM" show --svg timeline.svg "$TRACE" 2>&1) || fail "show --svg" "$out"
grep -q '<svg' timeline.svg || fail "show --svg wrote no SVG"
no_leftovers "the successful commands"
# The timeline is well-formed XML and renders (librsvg: what viewers and converters use) to a
# PNG as tall as the SVG says; the picture itself was looked at when the layout changed.
xmllint --noout timeline.svg || fail "show --svg wrote malformed XML"
if out=$(rsvg-convert timeline.svg -o timeline.png 2>&1); then
  [ "$(head -c 8 timeline.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "rsvg-convert wrote no PNG"
  svg_h=$(grep -o -m1 'height="[0-9]*"' timeline.svg | tr -dc 0-9)
  png_h=$(od -An -tu1 -j 20 -N 4 timeline.png | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')
  [ "$png_h" = "$svg_h" ] || fail "the PNG is $png_h px tall, the SVG says $svg_h"
else
  fail "rsvg-convert cannot render the timeline" "$out"
fi
rm -f timeline.png

# An output that is not a regular file is written in place: there is nothing to rename over.
out=$("$CRASHSIM" show --svg /dev/stdout "$TRACE" 2>&1) || fail "show --svg /dev/stdout" "$out"
grep -q '<svg' <<<"$out" || fail "show --svg /dev/stdout wrote no SVG" "$out"

# A directory at the target name is refused before any work, with its name.
mkdir adir
out=$("$CRASHSIM" create -q adir 64M 2>&1) && fail "create onto a directory exited 0" "$out"
grep -qF adir <<<"$out" || fail "create onto a directory: the error does not name it" "$out"
no_leftovers "create onto a directory"

if [ "$FAILURES" -ne 0 ]; then
  echo "$FAILURES failure(s)"
  exit 1
fi
echo "all output-file checks passed"
