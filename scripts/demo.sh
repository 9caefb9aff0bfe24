#!/usr/bin/env bash
# The McGrpc demo on one machine: a primary VM and a backup VM (QEMU, TCG),
# mc-backup and mc-primary protecting the primary, a kill -9 of the primary
# QEMU and mc-primary, and the guest carrying on at the backup.
# Everything lives in $MC_DEMO_DIR (default /tmp/mcgrpc-demo) and is stopped on exit.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${MC_DEMO_DIR:-/tmp/mcgrpc-demo}
mem=${MC_DEMO_MEMORY:-256M}
say() { printf '\n== %s\n' "$*"; }

"$repo/scripts/setup.sh"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -f /dev/shm/mcgrpc-demo-*.ram
}
trap cleanup EXIT
rm -rf "$dir" && mkdir -p "$dir"
guest=$repo/tests/guest/out
primary_dll=$repo/src/Primary/bin/Release/net10.0/mc-primary.dll
backup_dll=$repo/src/Backup/bin/Release/net10.0/mc-backup.dll

# The two QEMUs share one command line; guest RAM is a shared file each daemon maps.
qemu() { # name ramfile extra...
    local name=$1 ram=$2
    shift 2
    qemu-system-x86_64 -accel tcg -machine q35,memory-backend=ram0,suppress-vmdesc=on -m "$mem" \
        -object memory-backend-file,id=ram0,size="$mem",mem-path="$ram",share=on \
        -smp 1 -nodefaults -vga none -display none -no-user-config -name demo-vm \
        -kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz" \
        -append "console=ttyS0 quiet mc.run=counter,memverify" \
        -chardev file,id=ser0,path="$dir/$name-serial.log" -serial chardev:ser0 \
        -qmp unix:"$dir/$name-qmp.sock",server=on,wait=off "$@" >"$dir/$name-qemu.log" 2>&1 &
    pids+=($!)
    disown $!
}

say "Booting the primary VM and starting the backup QEMU (paused, -incoming defer)"
qemu primary /dev/shm/mcgrpc-demo-primary.ram
primary_qemu=${pids[-1]}
qemu backup /dev/shm/mcgrpc-demo-backup.ram -incoming defer -S
for _ in $(seq 600); do grep -q "GUEST READY" "$dir/primary-serial.log" 2>/dev/null && break; sleep 0.1; done
grep -q "GUEST READY" "$dir/primary-serial.log" || { echo "the guest did not boot; see $dir"; exit 1; }
echo "guest booted; it prints a counter every 50 ms: $(tail -n 1 "$dir/primary-serial.log")"

say "Making a CA and certificates for the pair (replication is mutual TLS by default)"
"$repo/tools/make-certs.sh" -d "$dir/pki" primary=127.0.0.1 backup=127.0.0.1 | sed 's/^/  /'
tls() { echo --tls-ca "$dir/pki/ca.crt" --tls-cert "$dir/pki/$1.crt" --tls-key "$dir/pki/$1.key"; }

say "Starting mc-backup and mc-primary (checkpoint every 100 ms)"
dotnet "$backup_dll" --qmp "$dir/backup-qmp.sock" --listen 127.0.0.1:7000 --control 127.0.0.1:7101 $(tls backup) ${MC_DEMO_BACKUP_ARGS:-} >"$dir/mc-backup.log" 2>&1 &
pids+=($!)
disown $!
sleep 1
dotnet "$primary_dll" --qmp "$dir/primary-qmp.sock" --target tcp:127.0.0.1:7000 --control 127.0.0.1:7100 --delay 100 $(tls primary) ${MC_DEMO_PRIMARY_ARGS:-} >"$dir/mc-primary.log" 2>&1 &
primary_daemon=$!
pids+=($primary_daemon)
disown $!
for _ in $(seq 600); do grep -q "the VM is protected" "$dir/mc-primary.log" && break; sleep 0.1; done
grep -E "Dirty tracker:|Initial copy sent|the VM is protected" "$dir/mc-primary.log" | sed 's/^[^ ]* [^ ]* [^ ]* //'
grep -q "the VM is protected" "$dir/mc-primary.log" || { echo "protection did not start; see $dir/mc-*.log"; exit 1; }

say "Protected. Checkpointing for 5 seconds"
sleep 5
echo "primary guest: $(tail -n 1 "$dir/primary-serial.log")"
echo "metrics: $(curl -s http://127.0.0.1:8100/metrics 2>/dev/null | grep -E '^mcgrpc_primary_checkpoints_total' || echo 'mcgrpc_primary_checkpoints_total (metrics on 127.0.0.1:8100)')"

say "CRASH: kill -9 of the primary QEMU and mc-primary"
last=$(tail -n 1 "$dir/primary-serial.log")
kill -9 "$primary_qemu" "$primary_daemon"
echo "last line the primary printed: $last"
for _ in $(seq 100); do grep -q "FAILED OVER" "$dir/mc-backup.log" && break; sleep 0.1; done
grep -E "declared dead|FAILED OVER" "$dir/mc-backup.log" | sed 's/^[^ ]* [^ ]* [^ ]* //'

say "The guest runs on at the backup, from the last acked checkpoint (not from boot)"
sleep 3
echo "backup serial console, first lines after failover:"
head -n 3 "$dir/backup-serial.log" | sed 's/^/  /'
echo "  ..."
tail -n 2 "$dir/backup-serial.log" | sed 's/^/  /'
sleep 2
if grep -q VIOLATION "$dir/backup-serial.log"; then
    echo "memverify found a violation on the backup!"
    exit 1
fi
echo "memverify on the backup: $(grep MEMVERIFY "$dir/backup-serial.log" | tail -n 1 || echo 'no full check yet')"
say "Demo done; logs in $dir"
