#!/usr/bin/env bash
# Runs every McGrpc test and prints, as its last line, "N passed, N failed, N skipped".
#   scripts/test.sh              unit + real-QEMU integration tests + compose end-to-end tests
#   scripts/test.sh --no-compose skip the compose tests (they need Debian's Docker engine)
#   scripts/test.sh --filter X   only tests whose name contains X (implies --no-compose)
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
compose=1
filter=
while [ $# -gt 0 ]; do
    case "$1" in
        --no-compose) compose=0 ;;
        --filter) filter=$2; compose=0; shift ;;
        *) echo "unknown option $1" >&2; exit 64 ;;
    esac
    shift
done

passed=0 failed=0 skipped=0
summary() { echo "$passed passed, $failed failed, $skipped skipped"; }
trap 'summary' EXIT
say() { printf '[test] %s\n' "$*"; }

if ! scripts/setup.sh; then
    say "setup failed"
    failed=$((failed + 1))
    exit 1
fi

# Leftovers of a killed earlier run (only McGrpc's own test files and processes).
pkill -f 'mcgrpc-test-.*\.ram' 2>/dev/null || true
rm -f /dev/shm/mcgrpc-test-*.ram /dev/shm/mcgrpc-tracking-*.ram

results=$repo/TestResults/run
rm -rf "$results"
args=(test tests/McGrpc.Tests -c Release --no-build --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" --results-directory "$results")
[ -n "$filter" ] && args+=(--filter "FullyQualifiedName~$filter")
say "dotnet ${args[*]}"
dotnet "${args[@]}"
trx=$(ls "$results"/*.trx 2>/dev/null | head -1)
if [ -n "$trx" ]; then
    counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
    get() { echo "$counters" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*'; }
    passed=$((passed + $(get passed)))
    failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
    skipped=$((skipped + $(get notExecuted)))
else
    say "no test results were written"
    failed=$((failed + 1))
fi

if [ "$compose" = 1 ]; then
    say "compose end-to-end: protect, docker kill the primary, verify the guest on the backup"
    if deploy/compose-test.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    say "compose with a deliberately broken setup must fail with a readable reason"
    log=$(mktemp)
    if deploy/compose-test.sh --broken-ram-size >"$log" 2>&1; then
        say "the broken setup passed: the compose test cannot fail"
        failed=$((failed + 1))
    elif grep -q "Hello refused: the primary has RAM size" "$log"; then
        passed=$((passed + 1))
    else
        say "the broken setup failed without the expected reason:"
        tail -20 "$log"
        failed=$((failed + 1))
    fi
    rm -f "$log"
fi

[ "$failed" -eq 0 ]
