#!/bin/bash
# McGrpc compose end-to-end test: a primary host and a backup host as
# containers (docker-compose.yml), a tester that protects the guest, runs
# verified traffic, kills the primary container and checks that the guest
# carries on from the backup. See docs/compose.md.
#
# Usage: deploy/compose-test.sh [options]
#   --broken-ram-size     give the backup QEMU a different RAM size: the backup
#                         must refuse the primary and the test must FAIL (exit 1)
#   --output-buffer MODE  mc-primary --output-buffer (none, userspace, kernel);
#                         default $MC_OUTPUT_BUFFER or userspace
#   --keep                leave the containers and the Docker engine running
#                         (prints how to reach them); tear down with --down
#   --down                only tear down what an earlier --keep left
#   -h, --help            this text
#
# It runs as root: it installs docker.io, docker-compose and debootstrap with
# apt-get when missing, starts its own dockerd (own data root, exec root, pid
# file and socket; the default engine and socket are not touched), builds a
# Debian base image with debootstrap + docker import (tarball cached), publishes
# mc-primary, mc-backup and the tester self-contained, builds the test guest,
# runs the compose test, always tears down, and exits with the tester's code:
#   0 passed, 1 a check failed (the tester's RESULT line says why),
#   2 bad settings, 3 the environment could not be set up.
#
# Environment (defaults in brackets):
#   MC_CACHE_DIR [/var/cache/mcgrpc]  base tarball, Docker data root, KVM probe
#   MC_ACCEL [auto]       tcg, kvm, or auto (KVM if a guest boots under it here)
#   MC_OUTPUT_BUFFER [userspace]   see --output-buffer
#   MC_TLS [on]           on: mutual TLS between the daemons with a CA and host
#                         certificates made by tools/make-certs.sh in
#                         deploy/.stage/pki; off: --insecure-plaintext
#   MC_NET [172.31.77]    the compose network's /24 (first three octets)
#   MC_TIMEOUT_SCALE [1]  stretch the tester's timeouts on slow machines
#   MC_SUITE [bookworm]   Debian suite of the images
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MC_CACHE_DIR:-/var/cache/mcgrpc}
STAGE=$REPO/deploy/.stage
SUITE=${MC_SUITE:-bookworm}
PROJECT=${MC_COMPOSE_PROJECT:-mcgrpc-compose}
DOCKER_ROOT=$CACHE/docker
EXEC_ROOT=/run/mcgrpc-docker
SOCK=/run/mcgrpc-docker.sock
PIDFILE=/run/mcgrpc-docker.pid
DOCKERD_LOG=$CACHE/dockerd.log
BASE_IMAGE=localhost/mcgrpc-base:$SUITE
HOST_IMAGE=localhost/mcgrpc-host:latest

BROKEN_RAM=0
KEEP=0
DOWN_ONLY=0
OUTPUT_BUFFER=${MC_OUTPUT_BUFFER:-userspace}
START=$SECONDS

say() { printf '[compose-test %4ds] %s\n' "$((SECONDS - START))" "$*"; }
fail() {
    local code=$1
    shift
    say "FAILED: $*"
    exit "$code"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
    --broken-ram-size) BROKEN_RAM=1 ;;
    --output-buffer)
        [ $# -ge 2 ] || fail 2 "--output-buffer needs a value"
        OUTPUT_BUFFER=$2
        shift
        ;;
    --output-buffer=*) OUTPUT_BUFFER=${1#*=} ;;
    --keep) KEEP=1 ;;
    --down) DOWN_ONLY=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) fail 2 "unknown option '$1' (see --help)" ;;
    esac
    shift
done
case "$OUTPUT_BUFFER" in none | userspace | kernel) ;; *) fail 2 "--output-buffer must be none, userspace or kernel" ;; esac
[ "$(id -u)" = 0 ] || fail 3 "run as root: it starts its own dockerd and creates bridges and taps"

DOCKER=docker
[ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
export DOCKER_HOST=unix://$SOCK
export COMPOSE_PROJECT_NAME=$PROJECT
export COMPOSE_FILE=$REPO/docker-compose.yml
compose() { "${COMPOSE[@]}" "$@"; }

# ---------------------------------------------------------------- tools

ensure_packages() {
    local missing=() pkg
    for pkg in docker.io docker-compose debootstrap; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} (apt-get)"
        apt-get update -qq >/dev/null || fail 3 "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
            fail 3 "apt-get install ${missing[*]} failed"
    fi
    if command -v docker-compose >/dev/null; then
        COMPOSE=(docker-compose)
    elif $DOCKER compose version >/dev/null 2>&1; then
        COMPOSE=("$DOCKER" compose)
    else
        fail 3 "neither docker-compose nor 'docker compose' is available"
    fi
    command -v dotnet >/dev/null || fail 3 "dotnet is not installed (needed to publish the daemons)"
}

# ---------------------------------------------------------------- dockerd

dockerd_pid() {
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$SOCK" || return 1
    echo "$pid"
}

stop_dockerd() {
    local pid i
    if pid=$(dockerd_pid); then
        say "stopping dockerd (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        if [ -d "/proc/$pid" ]; then
            say "dockerd did not stop within 30 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    # dockerd leaves its namespace bind mounts (netns/default) behind.
    local m
    for m in $(findmnt -rn -o TARGET 2>/dev/null | grep "^$EXEC_ROOT/" | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
}

start_dockerd() {
    if dockerd_pid >/dev/null; then
        say "a dockerd of an earlier run is still up on $SOCK; restarting it"
        stop_dockerd
    fi
    mkdir -p "$DOCKER_ROOT" "$EXEC_ROOT"
    say "starting dockerd (data root $DOCKER_ROOT, socket $SOCK, log $DOCKERD_LOG)"
    # No iptables, NAT or default bridge: the engine must not change the
    # machine's firewall or forwarding. Builds use the host network and the
    # compose network is a plain bridge between the containers.
    setsid dockerd --data-root "$DOCKER_ROOT" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" \
        -H "unix://$SOCK" --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        >"$DOCKERD_LOG" 2>&1 </dev/null &
    local i
    for ((i = 0; i < 600; i++)); do
        $DOCKER version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    fail 3 "dockerd did not answer on $SOCK within 60 s (log above)"
}

# ---------------------------------------------------------------- base image

# The Debian mirror the host's apt uses, so debootstrap and the images use
# the same one (nothing hard-coded here).
host_mirror() {
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        awk -v suite="$SUITE" 'BEGIN { RS = "" } {
            uri = ""; ok = 0; n = split($0, l, "\n")
            for (i = 1; i <= n; i++) {
                if (l[i] ~ /^URIs:/) { split(l[i], a, /[ \t]+/); uri = a[2] }
                if (l[i] ~ /^Suites:/ && (" " l[i] " ") ~ ("[ \t]" suite "[ \t]")) ok = 1
                if (l[i] ~ /^Enabled:[ \t]*no/) ok = 0
            }
            if (ok && uri != "") { print uri; exit }
        }' /etc/apt/sources.list.d/debian.sources
    elif [ -f /etc/apt/sources.list ]; then
        sed 's/\[[^]]*\]//' /etc/apt/sources.list | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }'
    fi
}

# Apt configuration copied into the image: the host's Debian sources and its
# Acquire:: settings (proxy, snapshot validity), which it needs to reach them.
apt_config_files() {
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        echo /etc/apt/sources.list.d/debian.sources
    elif grep -qs '^deb ' /etc/apt/sources.list; then
        echo /etc/apt/sources.list
    fi
    grep -ls '^Acquire::' /etc/apt/apt.conf.d/* 2>/dev/null || true
}

ensure_base_image() {
    local key tarball mirror root
    key=$( (
        echo "$SUITE minbase v1"
        for f in $(apt_config_files); do echo "$f" && cat "$f"; done
    ) | sha256sum | cut -c1-12)
    BASE_KEY=$key
    if [ "$($DOCKER image inspect -f '{{index .Config.Labels "mcgrpc.base"}}' "$BASE_IMAGE" 2>/dev/null)" = "$key" ]; then
        say "base image $BASE_IMAGE is up to date ($key)"
        return
    fi
    mkdir -p "$CACHE/base"
    tarball=$CACHE/base/$SUITE-minbase-$key.tar
    if [ ! -s "$tarball" ]; then
        mirror=$(host_mirror || true)
        root=$(mktemp -d "$CACHE/base/rootfs.XXXXXX")
        say "debootstrap --variant=minbase $SUITE ${mirror:-(the default mirror of debootstrap)} (about a minute)"
        if ! debootstrap --variant=minbase "$SUITE" "$root" ${mirror:+"$mirror"} >"$CACHE/base/debootstrap.log" 2>&1; then
            tail -n 20 "$CACHE/base/debootstrap.log" >&2
            rm -rf "$root"
            fail 3 "debootstrap failed (log above, full log $CACHE/base/debootstrap.log)"
        fi
        local f
        for f in $(apt_config_files); do
            case "$f" in
            */debian.sources) rm -f "$root/etc/apt/sources.list" && cp "$f" "$root/etc/apt/sources.list.d/" ;;
            */sources.list) cp "$f" "$root/etc/apt/sources.list" ;;
            *) cp "$f" "$root/etc/apt/apt.conf.d/" ;;
            esac
        done
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
        tar -C "$root" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$root"
        find "$CACHE/base" -name "$SUITE-minbase-*.tar" ! -name "${tarball##*/}" -delete
    else
        say "base tarball cached: $tarball"
    fi
    say "docker import $tarball as $BASE_IMAGE"
    $DOCKER import --change "LABEL mcgrpc.base=$key" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$tarball" "$BASE_IMAGE" >/dev/null || fail 3 "docker import failed"
}

# ---------------------------------------------------------------- staging

stage_files() {
    local out
    mkdir -p "$STAGE"
    say "building the test guest (tests/guest/build.sh)"
    out=$(bash "$REPO/tests/guest/build.sh" 2>"$STAGE/guest-build.log") || {
        tail -n 20 "$STAGE/guest-build.log" >&2
        fail 3 "tests/guest/build.sh failed (log above)"
    }
    local kernel initrd
    kernel=$(sed -n 's/^KERNEL=//p' <<<"$out" | tail -n 1)
    initrd=$(sed -n 's/^INITRD=//p' <<<"$out" | tail -n 1)
    [ -r "$kernel" ] && [ -r "$initrd" ] || fail 3 "tests/guest/build.sh gave no KERNEL/INITRD"
    # Each image's build context holds only its own files (deploy/host/.stage,
    # deploy/tester/.stage), so no context carries the other's binaries.
    local host_stage=$REPO/deploy/host/.stage
    rm -rf "$host_stage/guest" && mkdir -p "$host_stage/guest"
    cp "$kernel" "$host_stage/guest/vmlinuz"
    cp "$initrd" "$host_stage/guest/initramfs.cpio.gz"

    local name project out
    for name in primary backup tester; do
        case $name in
        primary) project=src/Primary out=$host_stage/primary ;;
        backup) project=src/Backup out=$host_stage/backup ;;
        tester) project=deploy/tester out=$REPO/deploy/tester/.stage ;;
        esac
        say "dotnet publish $project (Release, linux-x64, self-contained)"
        rm -rf "$out"
        # Own artifacts path: the build never touches the obj/ folders of
        # someone building the same projects at the same time.
        if ! dotnet publish "$REPO/$project" -c Release -r linux-x64 --self-contained \
            --artifacts-path "$STAGE/artifacts" -o "$out" -nologo -v q \
            >"$STAGE/publish-$name.log" 2>&1; then
            tail -n 30 "$STAGE/publish-$name.log" >&2
            fail 3 "dotnet publish $project failed (log above)"
        fi
    done
    make_pki
}

# A fresh CA and host certificates per run: each host's certificate names the
# host name and address the other daemon dials (tcp:backup:7000).
make_pki() {
    export MC_PKI_DIR=$STAGE/pki
    rm -rf "$MC_PKI_DIR"
    export MC_TLS=${MC_TLS:-on}
    case "$MC_TLS" in
    on)
        local net=${MC_NET:-172.31.77}
        "$REPO/tools/make-certs.sh" -d "$MC_PKI_DIR" "primary=primary,$net.11" "backup=backup,$net.12" \
            >"$STAGE/make-certs.log" 2>&1 || {
            cat "$STAGE/make-certs.log" >&2
            fail 3 "tools/make-certs.sh failed (log above)"
        }
        say "replication: mutual TLS, CA and host certificates in $MC_PKI_DIR"
        ;;
    off)
        mkdir -p "$MC_PKI_DIR"
        say "replication: PLAINTEXT (MC_TLS=off)"
        ;;
    *) fail 2 "MC_TLS must be on or off, not '$MC_TLS'" ;;
    esac
}

# ---------------------------------------------------------------- accelerator

choose_accel() {
    MC_KVM_DEVICE=/dev/kvm
    [ -e /dev/kvm ] || MC_KVM_DEVICE=/dev/null
    export MC_KVM_DEVICE
    local accel=${MC_ACCEL:-auto}
    if [ "$accel" = auto ]; then
        if [ ! -e /dev/kvm ]; then
            accel=tcg
        else
            # /dev/kvm can exist and still not run a Linux guest (nested KVM on
            # some build machines): boot the guest once and remember the answer
            # per host kernel and base image.
            local probe
            probe=$CACHE/kvm-probe-$(uname -r)-$BASE_KEY
            if [ -s "$probe" ]; then
                accel=$(cat "$probe")
            else
                say "probing KVM: booting the guest under KVM once"
                accel=$($DOCKER run --rm --network none --device /dev/kvm "$HOST_IMAGE" kvm-probe 2>/dev/null | tail -n 1)
                [ "$accel" = kvm ] || accel=tcg
                rm -f "$CACHE"/kvm-probe-*
                echo "$accel" >"$probe"
            fi
        fi
    fi
    case "$accel" in tcg | kvm) ;; *) fail 2 "MC_ACCEL must be tcg, kvm or auto, not '$accel'" ;; esac
    export MC_ACCEL=$accel
    say "accelerator: $accel"
}

# ---------------------------------------------------------------- teardown

TORN_DOWN=0
teardown() {
    [ "$TORN_DOWN" = 1 ] && return
    TORN_DOWN=1
    if dockerd_pid >/dev/null; then
        if [ -n "${COMPOSE:-}" ]; then
            mkdir -p "$STAGE/logs"
            compose logs --no-color >"$STAGE/logs/compose.log" 2>&1 || true
            say "compose down"
            compose down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 ||
                say "compose down failed; the engine stop below removes the containers"
        fi
        $DOCKER image prune -f >/dev/null 2>&1 || true
    fi
    stop_dockerd
}

on_exit() {
    local rc=$?
    if [ "$KEEP" = 1 ] && [ "$rc" -ne 130 ]; then
        say "--keep: left running. DOCKER_HOST=$DOCKER_HOST COMPOSE_PROJECT_NAME=$PROJECT COMPOSE_FILE=$COMPOSE_FILE; tear down with: $0 --down"
        exit "$rc"
    fi
    teardown
    exit "$rc"
}

# ---------------------------------------------------------------- main

exec 9>"/run/mcgrpc-compose-test.lock"
flock -n 9 || {
    say "another compose-test.sh runs on this machine; waiting for it"
    flock 9
}

ensure_packages
if [ "$DOWN_ONLY" = 1 ]; then
    teardown
    say "torn down"
    exit 0
fi
trap on_exit EXIT
trap 'say "interrupted"; exit 130' INT TERM
mkdir -p "$CACHE"
start_dockerd
compose down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
ensure_base_image
stage_files

export MC_LOG_DIR=$STAGE/logs
export MC_DOCKER_SOCK=$SOCK
export MC_OUTPUT_BUFFER=$OUTPUT_BUFFER
export MC_RAM=256M MC_BACKUP_RAM=256M
if [ "$BROKEN_RAM" = 1 ]; then
    MC_BACKUP_RAM=384M
    say "BROKEN SETUP on purpose: the backup QEMU gets $MC_BACKUP_RAM of RAM, the primary $MC_RAM; the test must fail"
fi
rm -rf "$MC_LOG_DIR" && mkdir -p "$MC_LOG_DIR"

say "docker-compose build"
compose build >"$STAGE/compose-build.log" 2>&1 || {
    tail -n 30 "$STAGE/compose-build.log" >&2
    fail 3 "docker-compose build failed (log above, full log $STAGE/compose-build.log)"
}
choose_accel

say "docker-compose up (output buffer $MC_OUTPUT_BUFFER; logs in $MC_LOG_DIR)"
set +e
# Only the tester is attached: the primary's container dying is the test,
# not a reason to stop the others.
# The tester gives up after 900 s (times MC_TIMEOUT_SCALE); the timeout is the
# last resort. --foreground keeps compose in this process group so a Ctrl-C
# reaches it (it then stops the containers); tee ignores Ctrl-C so the output
# of that stop is still seen. The EXIT trap tears down in every case.
timeout --foreground -k 30 "${MC_UP_TIMEOUT:-1500}" \
    "${COMPOSE[@]}" up --no-build --no-color --exit-code-from tester tester 2>&1 |
    (trap '' INT && exec tee "$STAGE/tester.out")
rc=${PIPESTATUS[0]}
set -e
result=$(grep -o 'RESULT: .*' "$STAGE/tester.out" | tail -n 1 || true)
if [ "$rc" = 0 ]; then
    say "PASSED in $((SECONDS - START)) s (output buffer $MC_OUTPUT_BUFFER, accelerator $MC_ACCEL)"
elif [ -n "$result" ]; then
    say "FAILED (exit $rc): $result"
    say "logs: $MC_LOG_DIR (per host), $MC_LOG_DIR/compose.log (all containers)"
else
    say "FAILED (exit $rc): docker-compose up ended without a test result (interrupted, timed out, or a container did not start); see $MC_LOG_DIR/compose.log"
    rc=3
fi
exit "$rc"
