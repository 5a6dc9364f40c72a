#!/usr/bin/env bash
# docs/guide.md as a test: every ```sh block, in order, in one bash process with -euo pipefail,
# started at the top of the checkout with CRASHSIM_BUILD naming the build under test. A block
# that fails (or a command the guide shows that no longer exists) fails the test, naming the
# block's line in the guide.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: guide_test.sh BUILD_DIR}
guide=$src/docs/guide.md
scratch=$(mktemp -d "${TMPDIR:-/tmp}/crashsim-guide.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
script=$scratch/guide.sh
awk -v guide="$guide" '
  /^```sh$/ { on = 1; blocks++; printf "echo \"guide_test: block at %s:%d\"\n", guide, NR; next }
  /^```$/   { on = 0; next }
  on        { print }
  END       { if (blocks == 0) exit 1 }' "$guide" > "$script" ||
  { echo "guide_test: no sh blocks in $guide"; exit 1; }
echo "guide_test: $(grep -c '^```sh$' "$guide") blocks from $guide"
cd "$src"
# The guide's own scratch directories (mktemp -d) go under this test's, removed at exit.
CRASHSIM_BUILD=$build TMPDIR=$scratch bash -euo pipefail "$script"
echo "guide_test: every block ran"
