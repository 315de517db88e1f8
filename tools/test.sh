#!/bin/sh
# Every test of the project, in order: formatting, lint and types; the C tests, plain and
# under AddressSanitizer/UBSan; the Deno tests (unit and integration, through FFI and
# against real QEMU) and the @example blocks of src/ and ffi/; the policy test cases. Ends with
# one line "N passed, N failed".
# Extra arguments go to `deno test` (e.g. a file or --filter).
set -u
cd "$(dirname "$0")/.."
# Plain summary lines to count (Deno colours its output even into a pipe).
export NO_COLOR=1

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# stage NAME PATTERN CMD...: runs CMD, shows its output, and adds the counts its summary line
# gives (PATTERN: a sed -E expression printing "passed failed"); a stage without such a line
# counts as one test, passed when CMD succeeded.
stage() {
  name=$1 pattern=$2
  shift 2
  echo "== $name" >&2
  "$@" 2>&1 | tee "$log"
  rc=$(cat "$log.rc" 2>/dev/null || echo 0)
  counts=$(sed -nE "$pattern" "$log" | tail -n 1)
  if [ -n "$counts" ]; then
    set -- $counts
    passed=$((passed + $1))
    failed=$((failed + $2))
  elif [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
}

# Runs "$@" and records its exit code beside the log (a pipeline's status is tee's).
run() {
  "$@"
  echo $? >"$log.rc"
}

c_counts='s/^C tests: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p'
deno_counts='s/^(ok|FAILED) \| ([0-9]+) passed.*\| ([0-9]+) failed.*/\2 \3/p'
policy_counts='s/^policy cases: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p'

if ! sh tools/deps.sh test; then
  echo "0 passed, 1 failed"
  exit 1
fi
stage "build (native library, engine bundle)" '' run sh tools/build.sh
stage "deno fmt --check" '' run deno fmt --check
stage "deno lint" '' run deno lint
stage "deno check" '' run deno check mod.ts src ffi tests bench tools
stage "C tests" "$c_counts" run make -s -C native test
stage "C tests under ASan/UBSan" "$c_counts" run make -s -C native test-sanitize
stage "deno test" "$deno_counts" run deno test --allow-all "$@"
# The libvirt hook's tests again, on the hook built with ASan/UBSan (its memory at exit is the
# process's end, not a leak).
stage "libvirt hook under ASan/UBSan" "$deno_counts" run sh -c \
  'make -s -C native build/vasp-hook-sanitize &&
   ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 VASP_HOOK_BINARY=native/build/vasp-hook-sanitize \
     deno test --allow-all tests/hook_libvirt_test.ts'

# Every @example block of src/ and ffi/ (a block that cannot run is `ts ignore` with its reason);
# the modules are named one by one so that their unit tests, run above, do not run twice.
stage "deno test --doc" "$deno_counts" run sh -c \
  'deno test --doc --allow-all $(find src ffi -name "*.ts" ! -name "*_test.ts" | sort)'
stage "policy cases" "$policy_counts" run deno run --allow-all src/cli/main.ts policy test
rm -f "$log.rc"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
