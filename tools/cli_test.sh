#!/usr/bin/env bash
# The crashsim command line itself (issue 14): --help shows each option's default, an unknown
# command or option is named in a one-line error with exit 1, and a failing command says what
# went wrong once, in plain words: no status-code name ("invalid argument: ", "not found: ") and
# no sentence said twice. Run by ctest with CRASHSIM set.
set -uo pipefail
CRASHSIM=${CRASHSIM:?set CRASHSIM to the crashsim binary}
FAILURES=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fail() { FAILURES=$((FAILURES + 1)); echo "FAIL: $1"; [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/    | /' | head -30; }

# --help, top level and every subcommand's: exit 0.
top=$("$CRASHSIM" --help 2>&1) || fail "crashsim --help exits non-zero" "$top"
commands=$(sed -n '/^Subcommands:/,$p' <<<"$top" | awk 'NR > 1 && /^  [a-z]/ {print $1}')
[ "$(wc -w <<<"$commands")" -ge 10 ] || fail "crashsim --help lists too few commands" "$top"
for command in $commands; do
  out=$("$CRASHSIM" "$command" --help 2>&1) || fail "crashsim $command --help exits non-zero" "$out"
  grep -qF '=[]' <<<"$out" && fail "crashsim $command --help shows an empty list as a default" "$out"
done
# Known defaults appear on their option's line, as CLI11 shows them: "--repair-crashes UINT=4".
has_default() {
  local command=$1 option=$2 value=$3 line
  line=$("$CRASHSIM" "$command" --help 2>&1 | grep -E -- "^ +(-[a-z],)?$option ")
  grep -qE -- "$option [A-Z]+(:\{[^}]*\})?=$value( |$)" <<<"$line" ||
    fail "crashsim $command --help: $option does not show its default $value" "$line"
}
has_default explore --repair-crashes 4
has_default explore --crash power-loss
has_default explore --seed 1
has_default validate --budget 2
has_default validate --max-states 60
has_default explore --shard 0/1
has_default io --cache writethrough
has_default info --output human
has_default replay --max-states 4096

# An unknown command: named, with where to look; exit 1; nothing on stdout.
out=$("$CRASHSIM" frobnicate 2>"$WORK/err")
rc=$?
err=$(cat "$WORK/err")
[ "$rc" -eq 1 ] && [ -z "$out" ] && [ "$err" = "crashsim: unknown command 'frobnicate'; see crashsim --help" ] ||
  fail "crashsim frobnicate: exit $rc" "$err"
out=$("$CRASHSIM" 2>&1)
rc=$?
[ "$rc" -eq 1 ] && grep -q "no command given" <<<"$out" || fail "crashsim (no command): exit $rc" "$out"
# An unknown option of a subcommand: named, with the subcommand's help to look at.
for command in info check io explore; do
  image=("$WORK/x.qcow2")
  [ "$command" != explore ] || image=()  # explore takes no image
  out=$("$CRASHSIM" "$command" --frob "${image[@]}" 2>&1)
  rc=$?
  [ "$rc" -eq 1 ] && [ "$(wc -l <<<"$out")" -eq 1 ] &&
    grep -qF "crashsim $command: unknown option '--frob'; see crashsim $command --help" <<<"$out" ||
    fail "crashsim $command --frob: exit $rc" "$out"
done
# A bad option value: named, and the command.
out=$("$CRASHSIM" info --output xml "$WORK/x.qcow2" 2>&1)
rc=$?
[ "$rc" -eq 1 ] && grep -q "^crashsim info: .*--output" <<<"$out" || fail "info --output xml: exit $rc" "$out"

# plain_error WHAT NEEDLE CMD...: CMD fails (exit 1) and its stderr names NEEDLE once, carries no
# status-code name, and says no ': '-separated part of a line twice.
plain_error() {
  local what=$1 needle=$2
  shift 2
  "$@" >/dev/null 2>"$WORK/err"
  local rc=$? err
  err=$(cat "$WORK/err")
  [ "$rc" -ne 0 ] || fail "$what: exit 0" "$err"
  [ -n "$err" ] || fail "$what: nothing on stderr"
  if grep -Eq '(^|: )(invalid argument|not found|corruption|not supported|read-only|no space|I/O error|ok): ' \
       <<<"$err"; then
    fail "$what: a status-code name in the message" "$err"
  fi
  [ "$(grep -oF -- "$needle" <<<"$err" | wc -l)" -eq 1 ] || fail "$what: '$needle' not said exactly once" "$err"
  local repeated
  repeated=$(sed 's/: /\n/g' <<<"$err" | sed 's/^ *//; /^$/d' | sort | uniq -d)
  [ -z "$repeated" ] || fail "$what: said twice: $repeated" "$err"
}

"$CRASHSIM" create -q "$WORK/base.qcow2" 1M >/dev/null || fail "create base"
"$CRASHSIM" create -q -b base.qcow2 -F qcow2 "$WORK/orphan.qcow2" >/dev/null || fail "create overlay"
rm -f "$WORK/base.qcow2"
plain_error "check, missing backing file" "base.qcow2'" "$CRASHSIM" check "$WORK/orphan.qcow2"
plain_error "io, missing backing file" "base.qcow2'" "$CRASHSIM" io -c 'read 0 4k' "$WORK/orphan.qcow2"
plain_error "convert, missing backing file" "base.qcow2'" "$CRASHSIM" convert "$WORK/orphan.qcow2" "$WORK/out.raw"
plain_error "info --backing-chain, missing backing file" "base.qcow2'" \
  "$CRASHSIM" info --backing-chain "$WORK/orphan.qcow2"
plain_error "info, missing image" missing.qcow2 "$CRASHSIM" info "$WORK/missing.qcow2"
plain_error "check, missing image" missing.qcow2 "$CRASHSIM" check "$WORK/missing.qcow2"
plain_error "create, bad option" frob "$CRASHSIM" create -o frob=1 "$WORK/new.qcow2" 1M
plain_error "io, bad cache mode" bogus "$CRASHSIM" io -t bogus -c flush "$WORK/orphan.qcow2"
plain_error "explore, bad crash kind" flood "$CRASHSIM" explore -q --crash flood
plain_error "explore, bad disk size" 3x "$CRASHSIM" explore -q --disk-size 3x
plain_error "explore, bad atomic unit" "--atomic-unit 1000:" "$CRASHSIM" explore -q --atomic-unit 1000
plain_error "explore, k out of range" "-k 65 " "$CRASHSIM" explore -q -k 65
plain_error "validate, bad cache mode" bogus "$CRASHSIM" validate -q -t bogus
plain_error "validate, a size in the create options" "--create-options" "$CRASHSIM" validate -q \
  --create-options size=1M
plain_error "validate, unknown create option" "frob" "$CRASHSIM" validate -q --create-options frob=1
plain_error "validate, disk size not a sector multiple" "--disk-size 1000" "$CRASHSIM" validate -q \
  --disk-size 1000
plain_error "conformance, unknown reader" "qemu-imgx" "$CRASHSIM" conformance -q --reader qemu-imgx
# qemu-img is the qemu reader's other name, not a command template missing its {image}.
if command -v qemu-img >/dev/null; then
  out=$("$CRASHSIM" conformance -q --reader qemu-img --dir "$WORK/conformance" 2>&1) ||
    fail "conformance --reader qemu-img" "$out"
fi
printf 'not a trace\n' >"$WORK/bad.cstrace"
plain_error "replay, bad trace" bad.cstrace "$CRASHSIM" replay "$WORK/bad.cstrace"
"$CRASHSIM" create -q "$WORK/small.qcow2" 1M >/dev/null || fail "create small"
plain_error "io, request past the end" "write" "$CRASHSIM" io -c 'write 2M 4k' "$WORK/small.qcow2"

# Progress (tools/progress.h; the meter's own tests are tools_test): on a terminal, a line
# redrawn in place with done/total, rate and a bar; -q silences it; off a terminal a short run
# (under the plain style's 5 s) writes nothing to a log.
small=(explore --ops 100 -j 1)
tty_err=$(script -qec "$(printf '%q ' "$CRASHSIM" "${small[@]}") 2>&1 >/dev/null" /dev/null)
grep -qE $'\r''explore \[[#.]+\] [0-9]+/[0-9]+ states \([0-9]+%\), [0-9]+/s' <<<"$tty_err" ||
  fail "explore on a terminal shows no progress bar" "$(tr '\r' '\n' <<<"$tty_err" | head -5)"
tty_quiet=$(script -qec "$(printf '%q ' "$CRASHSIM" "${small[@]}" -q) 2>&1 >/dev/null" /dev/null)
[ -z "$tty_quiet" ] || fail "explore -q on a terminal still shows progress" "$tty_quiet"
"$CRASHSIM" explore --ops 10 -j 1 >/dev/null 2>"$WORK/err" || fail "explore --ops 10"
[ ! -s "$WORK/err" ] || fail "a short explore off a terminal wrote progress" "$(cat "$WORK/err")"

[ "$FAILURES" -eq 0 ] && echo PASS && exit 0
echo "FAILED: $FAILURES"
exit 1
