#!/usr/bin/env bash
# run-all.sh: runs checksrc, unit tests, fuzz corpus replay and integration tests; sums results.
# Usage: tests/run-all.sh [BUILD_DIR]   (binaries already built by `make test`)
set -u
cd "$(dirname "$0")/.." || exit 2
build=${1:-build}
passed=0
failed=0
logdir=$build/test-logs
mkdir -p "$logdir"

part() { printf '\n=== %s ===\n' "$1"; }

part "checksrc"
if tests/checksrc.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

part "unit tests"
"$build/tests/unit-tests" | tee "$logdir/unit.log"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logdir/unit.log" | tail -1)
if [ -n "$line" ]; then
	set -- $line
	passed=$((passed + $1))
	failed=$((failed + $3))
else
	echo "unit tests did not finish (crash?)"
	failed=$((failed + 1))
fi

part "fuzz corpus replay"
for h in build/fuzz/fuzz_*; do
	[ -x "$h" ] || continue
	n=${h##*/fuzz_}
	if "$h" -runs=0 -artifact_prefix=build/fuzz/ "tests/fuzz/corpus/$n" >"$logdir/fuzz-$n.log" 2>&1; then
		echo "ok   fuzz replay $n ($(ls "tests/fuzz/corpus/$n" | wc -l) inputs)"
		passed=$((passed + 1))
	else
		echo "FAIL fuzz replay $n"; tail -20 "$logdir/fuzz-$n.log"
		failed=$((failed + 1))
	fi
done

part "integration tests"
(cd tests/integration && CANOPY_BIN_DIR="$PWD/../../$build/bin" /usr/bin/python3 -m pytest -q \
	-p no:cacheprovider ${PYTEST_ARGS:-}) 2>&1 | tee "$logdir/integration.log"
summary=$(grep -E '[0-9]+ (passed|failed|error)' "$logdir/integration.log" | tail -1)
p=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
f=$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
e=$(echo "$summary" | grep -oE '[0-9]+ errors?' | grep -oE '[0-9]+')
if [ -z "$summary" ] || [ -z "${p:-}${f:-}" ]; then
	echo "integration tests ran no test"
	failed=$((failed + 1))
fi
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0} + ${e:-0}))

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
