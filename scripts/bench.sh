#!/usr/bin/env bash
# Runs the McGrpc benchmark (bench/McGrpc.Bench); arguments go to it.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/setup.sh"
exec dotnet run -c Release --project "$repo/bench/McGrpc.Bench" --no-build -- "$@"
