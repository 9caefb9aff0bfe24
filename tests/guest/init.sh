#!/bin/sh
# /init of the McGrpc test guest (busybox ash, PID 1). See README.md.
# Kernel command line (read from /proc/cmdline):
#   mc.run=a,b,...        workloads to start (from /workloads), default none
#   mc.ip=ADDR/PREFIX     load NIC modules, configure the first NIC (eth0)
#   mc.gw=ADDR            default route (only with mc.ip)
#   mc.<workload>.<key>=<value>  passed to <workload> as argument <key>=<value>
#   mc.loglevel=N         console log level after boot (dmesg -n N)
# Everything is written to /dev/ttyS0; the last line of the boot is GUEST READY.
PATH=/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run/mc /tmp
exec </dev/null >/dev/ttyS0 2>&1
stty -F /dev/ttyS0 -opost -echo 2>/dev/null # "\n" stays "\n" (no "\r\n")

# Keep each workload page where it is: no THP collapse and no compaction of
# mlock()ed pages, so the counter marker exists exactly once in guest RAM.
echo never >/sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null
echo never >/sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null
echo 0 >/proc/sys/vm/compact_unevictable_allowed 2>/dev/null

RUN= IP= GW= LOGLEVEL=
set -f # no globbing of command line words
for w in $(cat /proc/cmdline); do
    case "$w" in
    mc.run=*) RUN=${w#mc.run=} ;;
    mc.ip=*) IP=${w#mc.ip=} ;;
    mc.gw=*) GW=${w#mc.gw=} ;;
    mc.loglevel=*) LOGLEVEL=${w#mc.loglevel=} ;;
    mc.*.*=*)
        k=${w#mc.}
        name=${k%%.*}
        case "$name" in *[!a-z0-9_]* | "") continue ;; esac
        echo "${k#*.}" >>/run/mc/args.$name
        ;;
    esac
done
set +f
[ -n "$LOGLEVEL" ] && dmesg -n "$LOGLEVEL"

# IPv4 only: no IPv6 router solicitations, DAD or MLD frames from the guest,
# so the NIC carries nothing but workload traffic (and ARP).
echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null
echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null
ip link set lo up
if [ -n "$IP" ]; then
    # Load only the drivers of the NICs present (PCI class 0x0200xx).
    NICS=
    for d in /sys/bus/pci/devices/*; do
        read -r class <"$d/class"
        read -r vendor <"$d/vendor"
        case "$class:$vendor" in
        0x0200*:0x1af4) nic=virtio_net ;;
        0x0200*:0x8086) nic=e1000 ;;
        *) continue ;;
        esac
        case " $NICS " in *" $nic "*) ;; *) NICS="$NICS $nic" ;; esac
    done
    for nic in $NICS; do
        while read -r m; do
            insmod "/lib/modules/$m.ko"
        done <"/lib/modules/$nic.list"
    done
    IF=
    i=0
    while [ -n "$NICS" ] && [ $i -lt 100 ]; do
        for d in /sys/class/net/*; do
            [ "${d##*/}" = lo ] || { IF=${d##*/}; break; }
        done
        [ -n "$IF" ] && break
        i=$((i + 1))
        sleep 0.05
    done
    if [ -z "$IF" ]; then
        echo "GUEST WARNING no network interface"
    else
        ip link set "$IF" up
        ip addr add "$IP" dev "$IF"
        [ -n "$GW" ] && ip route add default via "$GW"
        i=0 # wait for the link, so the first packets are not lost
        while [ "$(cat /sys/class/net/$IF/carrier 2>/dev/null)" != 1 ] && [ $i -lt 100 ]; do
            i=$((i + 1))
            sleep 0.05
        done
        [ $i -ge 100 ] && echo "GUEST WARNING $IF has no carrier"
    fi
fi

# Workloads report on this FIFO ("<name> ready" / "<name> exited"), so PID 1
# blocks in `read` instead of polling while the workloads already run.
mkfifo /run/mc/ready
exec 3<>/run/mc/ready
STARTED=
N=0
for w in $(echo "$RUN" | tr , ' '); do
    case " $STARTED " in *" $w "*) continue ;; esac
    if [ ! -x "/workloads/$w" ]; then
        echo "WORKLOAD $w unknown"
        continue
    fi
    args=$(cat /run/mc/args.$w 2>/dev/null)
    (
        # shellcheck disable=SC2086 # args are key=value words
        "/workloads/$w" $args 3>&-
        echo "WORKLOAD $w exited status=$?"
        echo "$w exited" >/run/mc/ready
    ) &
    STARTED="$STARTED $w"
    N=$((N + 1))
done
DONE=
while [ $N -gt 0 ] && read -t 60 name state <&3; do
    case " $DONE " in *" $name "*) continue ;; esac
    DONE="$DONE $name"
    N=$((N - 1))
    [ "$state" = ready ] || echo "WORKLOAD $name not ready"
done
[ $N -gt 0 ] && echo "WORKLOAD not ready after 60 s:$STARTED (done:$DONE)"
echo "GUEST READY"

# PID 1 must never exit. `wait` blocks while any background job lives and
# reaps every child, also orphans re-parented to PID 1; the long sleep keeps
# it blocked (no periodic forks that would dirty memory) even without workloads.
sleep 2147483647 &
while :; do
    wait
    sleep 1
done
