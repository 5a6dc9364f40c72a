#!/usr/bin/env bash
# The module layering README.md ("What is here") and issue-level claims rest on, checked on the
# source tree (ctest: layering):
#   - the trace format depends on the exploration settings, not on the explorer: no traces/
#     header includes properties/explorer.h, and the format's files never name ExploreOptions;
#   - settings/ sits below properties, traces, validate and tools and includes none of them;
#   - simdisk builds on the I/O seam only (crashsim_base's headers), never on the qcow2 engine;
#   - rapidcheck is for tests: only test sources, test helpers and the generators include it;
#   - one cache-mode enum, one crash-kind enum, one settings struct, one subprocess runner.
set -u
cd "$(dirname "$0")/../.." || exit 1
failed=0

# forbid WHAT PATTERN FILE...: no line of the files matches the extended regex.
forbid() {
  local what=$1 pattern=$2 hits
  shift 2
  hits=$(grep -nE -- "$pattern" "$@" 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "FAIL: $what"
    sed 's/^/    /' <<<"$hits"
    failed=1
  fi
}
# defined_once WHAT PATTERN: exactly one source file in the tree matches.
defined_once() {
  local what=$1 pattern=$2 files
  files=$(git ls-files --cached --others --exclude-standard '*.h' '*.cc' | xargs grep -lE -- "$pattern")
  if [ "$(wc -l <<<"$files")" -ne 1 ] || [ -z "$files" ]; then
    echo "FAIL: $what is defined in $(wc -w <<<"$files") places:"
    sed 's/^/    /' <<<"$files"
    failed=1
  fi
}

forbid "a traces/ header includes the explorer" '#include "properties/explorer.h"' traces/*.h
forbid "the trace format names the explorer's options" 'ExploreOptions' \
  traces/trace.h traces/trace.cc traces/trace_settings.h traces/trace_settings.cc \
  traces/line_reader.h traces/line_reader.cc traces/blob.h traces/blob.cc
forbid "settings/ includes a module above it" '#include "(properties|traces|validate|tools)/' \
  settings/*.h settings/*.cc
base_headers='engine/(status|block_device|memory_device|posix_device|cache_mode|number_text|coding|invariant|all_zero)\.h'
simdisk_engine=$(grep -hoE '#include "engine/[a-z_/]+\.h"' simdisk/*.h simdisk/*.cc | sort -u |
                   grep -vE "$base_headers")
if [ -n "$simdisk_engine" ]; then
  echo "FAIL: simdisk includes engine headers beyond the I/O seam:"
  sed 's/^/    /' <<<"$simdisk_engine"
  failed=1
fi
non_test=$(git ls-files --cached --others --exclude-standard '*.h' '*.cc' | grep -vE '(_test\.cc|/test_util\.(h|cc)|^properties/(workload_gen\.(h|cc)|property_main\.cc|property_env\.h))$')
# shellcheck disable=SC2086
forbid "rapidcheck in a non-test source" '#include <rapidcheck' $non_test
defined_once "the cache-mode enum" 'enum class CacheMode\b'
defined_once "the crash-kind enum" 'enum class CrashKind\b'
defined_once "the exploration settings struct" 'struct ExploreSettings \{'
defined_once "fork/exec of child processes" '\bexecv\('

if [ "$failed" -ne 0 ]; then exit 1; fi
echo "layering: ok"
