#!/bin/sh
# `deno task fuzz [SCALE]`: the suite's fuzz targets, run longer and with a fresh seed — the
# state loader, the importer and the page walker under ASan/UBSan (native/tests/fuzz_test.c),
# the DER, binding and quote readers, and the audit log's decoding (tests/fuzz_*_test.ts), the
# QMP gate's JSON reader (src/hypervisor/_qmp_json_fuzz_test.ts) and the API's request
# validation through the real app (tests/fuzz_api_test.ts).
# SCALE is VASP_FUZZ_ITERATIONS: 1000 is the suite's few seconds per target; the default here,
# 100000, is a hundred times that. VASP_FUZZ_SEED=N reruns a seed a failure named.
set -eu
cd "$(dirname "$0")/.."
scale=${1:-${VASP_FUZZ_ITERATIONS:-100000}}
seed=${VASP_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
export VASP_FUZZ_ITERATIONS="$scale" VASP_FUZZ_SEED="$seed"
echo "fuzz: VASP_FUZZ_ITERATIONS=$scale VASP_FUZZ_SEED=$seed" >&2
make -s -C native build/test_vasp_sanitize
# From native/, where the C targets find their corpus (tests/corpus/).
(cd native && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ./build/test_vasp_sanitize fuzz_)
deno test --allow-all tests/fuzz_der_test.ts tests/fuzz_audit_test.ts \
  src/hypervisor/_qmp_json_fuzz_test.ts tests/fuzz_api_test.ts
