#!/usr/bin/env bash
# Installs what McGrpc needs on a fresh Debian 12 machine (as root) and builds
# the solution and the test guest. Safe to run again: installs only what is missing.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '[setup] %s\n' "$*"; }

packages=(qemu-system-x86 qemu-utils busybox-static cpio gcc libc6-dev xz-utils iproute2 openssl procps curl)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v dotnet >/dev/null 2>&1; then
    say "the .NET 10 SDK is required (dotnet on PATH); install it and run again"
    exit 3
fi

say "building the test guest (cached)"
"$repo/tests/guest/build.sh" >/dev/null

say "building McGrpc (Release)"
dotnet build "$repo/McGrpc.sln" -c Release -nologo -v quiet -clp:ErrorsOnly
say "ready"
