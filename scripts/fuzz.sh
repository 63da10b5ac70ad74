#!/usr/bin/env bash
# `make fuzz`: the fuzzers of `make test`, run much longer, with a summary.
#   FUZZ_CASES   cases per parser property (default 100000)
#   API_FUZZ_EXAMPLES  examples per API operation (default 300)
#   FUZZ_SEED    seed for both (default: random, printed)
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${FUZZ_SEED:-$((RANDOM * 32768 + RANDOM))}
export TENANTRY_FUZZ_CASES=${FUZZ_CASES:-100000}
export TENANTRY_FUZZ_SEED=$seed
export API_FUZZ_SEED=$seed
export API_FUZZ_EXAMPLES=${API_FUZZ_EXAMPLES:-300}
export API_FUZZ=1
echo "fuzz: seed $seed, $TENANTRY_FUZZ_CASES cases per parser property, $API_FUZZ_EXAMPLES examples per API operation" >&2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
scripts/test.sh -E 'binary(it) & test(/^parsers::/)' --no-capture 2>&1 | tee "$out" || rc=$?
echo
echo "== fuzz summary (seed $seed) =="
grep -E '^fuzz ' "$out" | sed 's/^/  /' || true
grep -E '^(tenant-plane|admin-plane): ' "$out" | sed 's/^/  /' || true
failures=$(grep -cE 'panicked|FAIL ' "$out" || true)
echo "  parser properties with failures: $failures"
exit "$rc"
