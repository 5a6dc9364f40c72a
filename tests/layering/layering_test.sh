#!/usr/bin/env bash
# The module layering README.md ("What is here") states, checked on the source tree (ctest:
# layering):
#   - the trace format depends on the exploration settings, not on the explorer: no traces/
#     header includes properties/explorer.h, directly or through another header, and the
#     format's files never name ExploreOptions;
#   - settings/ sits below properties, traces, validate and tools and includes none of them;
#   - simdisk builds on the I/O seam only (crashsim_base's headers), never on the qcow2 engine;
#   - rapidcheck is for tests: only test sources, test helpers and the generators include it;
#   - one cache-mode enum, one crash-kind enum, one settings struct, one process runner.
# Every check fails if what it reads is missing, so none can pass on an empty list.
set -u
cd "$(dirname "$0")/../.." || exit 1
failed=0
fail() {
  echo "FAIL: $1"
  [ $# -lt 2 ] || sed 's/^/    /' <<<"$2"
  failed=1
}

sources=$(git ls-files --cached --others --exclude-standard '*.h' '*.cc')
[ -n "$sources" ] || { echo "FAIL: no sources listed (not a git checkout?)"; exit 1; }
in_dir() { grep -E "^$1/[^/]+\.($2)\$" <<<"$sources"; }

# forbid WHAT PATTERN FILE...: every file exists and no line of them matches the extended regex.
forbid() {
  local what=$1 pattern=$2 file hits
  shift 2
  [ $# -gt 0 ] || { fail "$what: no files to check"; return; }
  for file in "$@"; do [ -f "$file" ] || fail "$what: $file is missing"; done
  hits=$(grep -nE -- "$pattern" "$@")
  [ -z "$hits" ] || fail "$what" "$hits"
}
# only_in WHAT PATTERN FILE: the one source file that matches.
only_in() {
  local what=$1 pattern=$2 expected=$3 files
  files=$(xargs grep -lE -- "$pattern" <<<"$sources")
  [ "$files" = "$expected" ] || fail "$what: expected only in $expected, found in" "$files"
}

# shellcheck disable=SC2046
forbid "a traces/ header includes the explorer" '#include "properties/explorer.h"' \
  $(in_dir traces h)
command -v g++ >/dev/null || fail "g++ is needed to follow includes"
for header in $(in_dir traces h); do
  deps=$(g++ -std=c++20 -I. -MM -x c++ "$header" 2>&1) || { fail "g++ -MM $header" "$deps"; continue; }
  grep -q 'properties/explorer\.h' <<<"$deps" && fail "$header includes properties/explorer.h indirectly"
done
forbid "the trace format names the explorer's options" 'ExploreOptions' \
  traces/trace.h traces/trace.cc traces/trace_settings.h traces/trace_settings.cc \
  traces/line_reader.h traces/line_reader.cc traces/blob.h traces/blob.cc
# shellcheck disable=SC2046
forbid "settings/ includes a module above it" '#include "(properties|traces|validate|tools|process)/' \
  $(in_dir settings 'h|cc')

base_headers='engine/(status|block_device|memory_device|posix_device|cache_mode|number_text|coding|invariant|all_zero)\.h'
simdisk_files=$(in_dir simdisk 'h|cc')
[ -n "$simdisk_files" ] || fail "no simdisk sources"
# shellcheck disable=SC2086
simdisk_engine=$(grep -hoE '#include "engine/[a-z0-9_/]+\.h"' $simdisk_files | sort -u |
                   grep -vE "$base_headers")
[ -z "$simdisk_engine" ] || fail "simdisk includes engine headers beyond the I/O seam" "$simdisk_engine"

non_test=$(grep -vE '(_test\.cc|/test_util\.(h|cc)|^properties/(workload_gen\.(h|cc)|property_main\.cc|property_env\.h))$' <<<"$sources")
# shellcheck disable=SC2086
forbid "rapidcheck in a non-test source" '#include [<"]rapidcheck' $non_test

only_in "the cache-mode enum" 'enum class CacheMode\b' engine/cache_mode.h
only_in "the crash-kind enum" 'enum class CrashKind\b' simdisk/crash_state.h
only_in "the exploration settings struct" 'struct ExploreSettings \{' settings/explore_settings.h
# shellcheck disable=SC2086
process_calls=$(grep -nE '\b(execv|execvp|execve|execl|execlp|posix_spawnp?|popen|system)\(' $non_test |
                  grep -v '^process/subprocess\.cc:')
[ -z "$process_calls" ] || fail "a child process started outside process/subprocess.cc" "$process_calls"

[ "$failed" -eq 0 ] || exit 1
echo "layering: ok"
