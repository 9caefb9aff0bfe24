#!/bin/bash
# Entry point of the McGrpc host image (localhost/mcgrpc-host): one "host" of
# a protected pair. It bridges the container's network interface with a tap,
# starts QEMU with the test guest and then the daemon of its role:
#
#   MC_ROLE=primary  QEMU runs the guest; mc-primary waits for Migrate on its
#                    control API.
#   MC_ROLE=backup   QEMU starts paused with -incoming defer; mc-backup listens
#                    for the primary's checkpoints and resumes the VM when the
#                    primary dies.
#
#   mc-host kvm-probe   prints "kvm" when a Linux guest boots under KVM here
#                       within MC_KVM_PROBE_SECONDS, "tcg" otherwise.
#
# Both roles must build the same QEMU command line (docs/compose.md); the
# backup only adds "-incoming defer -S". Settings (environment, defaults in
# brackets):
#   MC_VM_NAME [mcvm]          QEMU -name, also the VM id the daemons compare
#   MC_RAM [256M]              guest RAM, a memory-backend-file in /dev/shm
#   MC_SMP [1]                 vCPUs
#   MC_ACCEL [tcg]             tcg or kvm (the same on both hosts)
#   MC_NIC [e1000]             guest NIC model
#   MC_GUEST_MAC [52:54:00:4d:43:01]   the same on both hosts
#   MC_GUEST_IP                guest address with prefix, e.g. 172.31.77.100/24
#   MC_GUEST_GW                optional default route of the guest
#   MC_GUEST_RUN [counter,memverify,tcpserve]   test-guest workloads
#   MC_GUEST_APPEND            more kernel command-line words
#   MC_KERNEL, MC_INITRD       [/opt/mcgrpc/guest/vmlinuz, initramfs.cpio.gz]
#   MC_CONTROL [0.0.0.0:7100 primary, 0.0.0.0:7101 backup]  control API
#   MC_METRICS [0.0.0.0:8100 primary, 0.0.0.0:8101 backup]  Prometheus
#   MC_LISTEN [0.0.0.0:7000]   replication listener (backup)
#   MC_OUTPUT_BUFFER [userspace]  mc-primary --output-buffer (none, userspace, kernel)
#   MC_TLS [on]                on: replication over mutual TLS with
#                              $MC_PKI/ca.crt and $MC_PKI/$MC_ROLE.crt/.key;
#                              off: --insecure-plaintext (tests only)
#   MC_PKI [/pki]              the certificates (tools/make-certs.sh)
#   MC_CONTROL_TLS [off]       the control API listens on the container's
#                              network: off serves it in plaintext
#                              (--control-insecure-plaintext; the compose
#                              network is private), on with the host certificate
#   MC_TRACKER                 mc-primary --tracker (the daemon's default if unset)
#   MC_HEARTBEAT_TIMEOUT_MS    mc-backup --heartbeat-timeout (the daemon's default if unset)
#   MC_PRIMARY_ARGS, MC_BACKUP_ARGS   more daemon options, split on spaces
#   MC_BRIDGE [br0], MC_UPLINK [eth0], MC_TAP [tap0]
#   MC_BRIDGE_SETUP [uplink]   uplink: create MC_BRIDGE, move MC_UPLINK and its
#                              address into it (a compose container); existing:
#                              only add the tap to the bridge MC_BRIDGE that the
#                              host already has (a real host, --network host)
#   MC_LOG_DIR [/logs]         logs go to $MC_LOG_DIR/$MC_ROLE/ and to stdout
set -euo pipefail

ROLE=${MC_ROLE:-}
VM=${MC_VM_NAME:-mcvm}
RAM=${MC_RAM:-256M}
SMP=${MC_SMP:-1}
ACCEL=${MC_ACCEL:-tcg}
NIC=${MC_NIC:-e1000}
GUEST_MAC=${MC_GUEST_MAC:-52:54:00:4d:43:01}
GUEST_RUN=${MC_GUEST_RUN:-counter,memverify,tcpserve}
KERNEL=${MC_KERNEL:-/opt/mcgrpc/guest/vmlinuz}
INITRD=${MC_INITRD:-/opt/mcgrpc/guest/initramfs.cpio.gz}
BRIDGE=${MC_BRIDGE:-br0}
UPLINK=${MC_UPLINK:-eth0}
TAP=${MC_TAP:-tap0}
RUN_DIR=/run/mc
QMP=$RUN_DIR/qmp.sock

say() { echo "[mc-host ${ROLE:-?}] $*"; }
die() { say "ERROR: $*" >&2; exit 2; }

# The guest's command line; identical on both hosts.
guest_append() {
    local a="console=ttyS0 quiet mc.loglevel=1"
    [ -n "$GUEST_RUN" ] && a+=" mc.run=$GUEST_RUN"
    [ -n "${MC_GUEST_IP:-}" ] && a+=" mc.ip=$MC_GUEST_IP"
    [ -n "${MC_GUEST_GW:-}" ] && a+=" mc.gw=$MC_GUEST_GW"
    [ -n "${MC_GUEST_APPEND:-}" ] && a+=" $MC_GUEST_APPEND"
    echo "$a"
}

kvm_probe() {
    local seconds=${MC_KVM_PROBE_SECONDS:-10} dir
    if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
        echo tcg
        return
    fi
    dir=$(mktemp -d)
    # A nested or broken KVM can accept the VM and then never run the kernel,
    # so only a guest that reaches its /init counts.
    qemu-system-x86_64 -accel kvm -machine q35 -m 128M -smp 1 -nodefaults -vga none \
        -display none -no-user-config -kernel "$KERNEL" -initrd "$INITRD" \
        -append "console=ttyS0 quiet" -chardev "file,id=ser0,path=$dir/serial.log" \
        -serial chardev:ser0 >"$dir/qemu.log" 2>&1 &
    local pid=$! i
    for ((i = 0; i < seconds * 10; i++)); do
        if grep -q "GUEST READY" "$dir/serial.log" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            echo kvm
            return
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo tcg
}

# Moves the container's address from the uplink to a bridge that also holds
# the guest's tap, so the guest sits on the same L2 network as the other
# containers and keeps its address when it moves to the other host: after
# the failover QEMU announces the guest MAC (RARP) from the backup's tap.
setup_network() {
    [ -e /dev/net/tun ] || die "/dev/net/tun is missing: give the container the device /dev/net/tun"
    if [ "${MC_BRIDGE_SETUP:-uplink}" = existing ]; then
        # A real host: the operator's bridge already carries the host's own
        # address; only the guest's tap is added to it.
        ip link show "$BRIDGE" type bridge >/dev/null 2>&1 || die "MC_BRIDGE_SETUP=existing but there is no bridge $BRIDGE"
        ip link del "$TAP" 2>/dev/null || true
        ip tuntap add dev "$TAP" mode tap
        ip link set "$TAP" master "$BRIDGE"
        ip link set "$TAP" up
        say "network: $TAP added to the existing bridge $BRIDGE; guest ${MC_GUEST_IP:-without address} MAC $GUEST_MAC"
        return
    fi
    ip link show "$UPLINK" >/dev/null 2>&1 || die "no interface $UPLINK"
    local addrs gw mac
    addrs=$(ip -4 -o addr show dev "$UPLINK" | awk '{print $4}')
    gw=$(ip -4 route show default | awk '/default/ {print $3; exit}')
    mac=$(cat "/sys/class/net/$UPLINK/address")
    [ -n "$addrs" ] || die "$UPLINK has no IPv4 address"
    ip link add "$BRIDGE" type bridge stp_state 0 forward_delay 0 ||
        die "cannot create bridge $BRIDGE (the container needs cap_add NET_ADMIN)"
    # The bridge keeps the uplink's MAC, so the neighbours' ARP entries stay valid.
    ip link set "$BRIDGE" address "$mac"
    ip addr flush dev "$UPLINK"
    ip link set "$UPLINK" master "$BRIDGE"
    for a in $addrs; do ip addr add "$a" dev "$BRIDGE"; done
    ip link set "$BRIDGE" up
    [ -n "$gw" ] && ip route replace default via "$gw" dev "$BRIDGE"
    ip tuntap add dev "$TAP" mode tap
    ip link set "$TAP" master "$BRIDGE"
    ip link set "$TAP" up
    say "network: $UPLINK and $TAP in $BRIDGE ($addrs${gw:+, gateway $gw}); guest ${MC_GUEST_IP:-without address} MAC $GUEST_MAC"
}

start_qemu() {
    local log=$LOG/qemu.log serial=$LOG/serial.log
    : >"$serial"
    local -a cmd=(
        qemu-system-x86_64 -name "$VM" -accel "$ACCEL"
        -machine "q35,memory-backend=ram0,suppress-vmdesc=on" -m "$RAM" -smp "$SMP"
        -object "memory-backend-file,id=ram0,size=$RAM,mem-path=/dev/shm/$VM.ram,share=on"
        -nodefaults -vga none -display none -no-user-config
        -netdev "tap,id=net0,ifname=$TAP,script=no,downscript=no"
        -device "$NIC,netdev=net0,mac=$GUEST_MAC,romfile="
        -chardev "file,id=ser0,path=$serial" -serial chardev:ser0
        -kernel "$KERNEL" -initrd "$INITRD" -append "$(guest_append)"
        -qmp "unix:$QMP,server=on,wait=off"
    )
    [ "$ROLE" = backup ] && cmd+=(-incoming defer -S)
    say "QEMU: ${cmd[*]}"
    "${cmd[@]}" > >(exec tee -a "$log") 2>&1 &
    QEMU_PID=$!
    local i
    for ((i = 0; i < 300; i++)); do
        [ -S "$QMP" ] && return
        kill -0 "$QEMU_PID" 2>/dev/null || die "QEMU exited at start-up: $(tail -n 5 "$log")"
        sleep 0.1
    done
    die "QEMU did not open its QMP socket $QMP within 30 s"
}

# The daemon's transport options into TLS_ARGS: mutual TLS by default.
tls_args() {
    TLS_ARGS=()
    local pki=${MC_PKI:-/pki}
    case "${MC_TLS:-on}" in
    on)
        local f
        for f in ca.crt "$ROLE.crt" "$ROLE.key"; do
            [ -r "$pki/$f" ] || die "MC_TLS=on but $pki/$f is missing: make the pair's certificates with tools/make-certs.sh and mount them at $pki (or set MC_TLS=off for a test)"
        done
        TLS_ARGS+=(--tls-ca "$pki/ca.crt" --tls-cert "$pki/$ROLE.crt" --tls-key "$pki/$ROLE.key")
        ;;
    off) TLS_ARGS+=(--insecure-plaintext) ;;
    *) die "MC_TLS must be on or off, not '$MC_TLS'" ;;
    esac
    [ "${MC_CONTROL_TLS:-off}" = off ] && TLS_ARGS+=(--control-insecure-plaintext)
    return 0
}

start_daemon() {
    local -a cmd extra
    tls_args
    if [ "$ROLE" = primary ]; then
        read -r -a extra <<<"${MC_PRIMARY_ARGS:-}"
        cmd=(/opt/mcgrpc/primary/mc-primary --qmp "$QMP"
            --control "${MC_CONTROL:-0.0.0.0:7100}" --metrics "${MC_METRICS:-0.0.0.0:8100}"
            --output-buffer "${MC_OUTPUT_BUFFER:-userspace}" "${TLS_ARGS[@]}")
        [ -n "${MC_TRACKER:-}" ] && cmd+=(--tracker "$MC_TRACKER")
        cmd+=("${extra[@]}")
    else
        read -r -a extra <<<"${MC_BACKUP_ARGS:-}"
        cmd=(/opt/mcgrpc/backup/mc-backup --qmp "$QMP" --listen "${MC_LISTEN:-0.0.0.0:7000}"
            --control "${MC_CONTROL:-0.0.0.0:7101}" --metrics "${MC_METRICS:-0.0.0.0:8101}" "${TLS_ARGS[@]}")
        [ -n "${MC_HEARTBEAT_TIMEOUT_MS:-}" ] && cmd+=(--heartbeat-timeout "$MC_HEARTBEAT_TIMEOUT_MS")
        cmd+=("${extra[@]}")
    fi
    say "daemon: ${cmd[*]}"
    "${cmd[@]}" > >(exec tee -a "$LOG/mc-$ROLE.log") 2>&1 &
    DAEMON_PID=$!
}

stop_all() {
    trap - TERM INT
    say "stopping"
    [ -n "${DAEMON_PID:-}" ] && kill -TERM "$DAEMON_PID" 2>/dev/null
    [ -n "${QEMU_PID:-}" ] && kill -TERM "$QEMU_PID" 2>/dev/null
    wait 2>/dev/null
    exit 0
}

main() {
    case "$ROLE" in
    primary | backup) ;;
    *) die "set MC_ROLE to primary or backup (got '$ROLE')" ;;
    esac
    LOG=${MC_LOG_DIR:-/logs}/$ROLE
    mkdir -p "$LOG" "$RUN_DIR"
    rm -f "$LOG"/*.log "$QMP" "/dev/shm/$VM.ram"
    exec > >(exec tee -a "$LOG/host.log") 2>&1
    say "starting on $(hostname): RAM $RAM, $SMP vCPU, accel $ACCEL, NIC $NIC"
    [ -r "$KERNEL" ] && [ -r "$INITRD" ] || die "guest kernel or initramfs missing ($KERNEL, $INITRD)"
    local shm_kb need_kb
    shm_kb=$(df -k --output=avail /dev/shm | tail -n 1)
    need_kb=$(numfmt --from=iec "$RAM")
    need_kb=$((need_kb / 1024))
    ((shm_kb >= need_kb)) ||
        die "/dev/shm has ${shm_kb} KiB free, the guest RAM file needs ${need_kb} KiB: raise shm_size"
    setup_network
    trap stop_all TERM INT
    start_qemu
    start_daemon
    local rc=0
    wait -n "$QEMU_PID" "$DAEMON_PID" || rc=$?
    if ! kill -0 "$QEMU_PID" 2>/dev/null; then
        say "QEMU exited (status $rc); stopping the daemon"
    else
        say "mc-$ROLE exited (status $rc); stopping QEMU"
    fi
    kill -TERM "$DAEMON_PID" "$QEMU_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    exit "$((rc == 0 ? 1 : rc))"
}

case "${1:-}" in
kvm-probe) kvm_probe ;;
"" | run) main ;;
*) exec "$@" ;;
esac
