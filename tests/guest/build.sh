#!/usr/bin/env bash
# Builds the McGrpc test guest (see README.md):
#   out/vmlinuz            the current Debian 12 kernel (linux-image-amd64's dependency)
#   out/vmlinux            the same kernel uncompressed (ELF with a PVH entry point):
#                          -kernel out/vmlinux boots ~2.5 s faster under TCG (no
#                          SeaBIOS bzImage path, no in-guest xz decompression)
#   out/initramfs.cpio.gz  busybox + /init (init.sh) + NIC modules + static workloads
#   out/STAMP              hash of all inputs; when it matches, nothing is rebuilt
# Downloads are kept in cache/. Progress goes to stderr; stdout is
# KERNEL_PVH=<path> (only if the PVH kernel could be made), then as the last
# two lines KERNEL=<path> and INITRD=<path>.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$HERE/out
CACHE=$HERE/cache
mkdir -p "$OUT" "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # one build at a time (tests may start several)

log() { echo "build.sh: $*" >&2; }
done_paths() {
    [ -s "$OUT/vmlinux" ] && echo "KERNEL_PVH=$OUT/vmlinux"
    echo "KERNEL=$OUT/vmlinuz"
    echo "INITRD=$OUT/initramfs.cpio.gz"
    exit 0
}

# --- 1. build tools (apt is only touched when something is missing) --------
TOOLS=(busybox-static cpio gcc libc6-dev binutils gzip xz-utils zstd)
tool_status() { dpkg-query -W -f='${Package} ${Version} ${Status}\n' "${TOOLS[@]}" 2>/dev/null || true; }
STATUS=$(tool_status)
missing=()
for p in "${TOOLS[@]}"; do
    grep -q "^$p .* install ok installed$" <<<"$STATUS" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
fi

# --- 2. which kernel: the package linux-image-amd64 depends on -------------
# apt-cache takes ~1 s here, so the answer is cached and only recomputed when
# the apt package lists change.
apt_lists_key() {
    { stat -c '%n %s %Y' /var/lib/apt/lists/*_Packages* 2>/dev/null || true; } | sha256sum | cut -c1-16
}
resolve_kernel() {
    local name ver
    name=$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-amd64$/ { print $2; exit }')
    [ -n "$name" ] || return 1
    ver=$(apt-cache show --no-all-versions "$name" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }')
    [ -n "$ver" ] || return 1
    echo "$name $ver"
}
RESOLVED=$CACHE/kernel.resolved
key=$(apt_lists_key)
if [ -s "$RESOLVED" ] && [ "$(cut -d' ' -f1 "$RESOLVED")" = "$key" ]; then
    read -r _ KPKG KVER <"$RESOLVED"
else
    if ! kv=$(resolve_kernel); then
        log "linux-image-amd64 not resolvable, running apt-get update"
        apt-get update >&2 || true
        key=$(apt_lists_key)
        kv=$(resolve_kernel) || kv=
    fi
    if [ -n "$kv" ]; then
        echo "$key $kv" >"$RESOLVED"
        read -r KPKG KVER <<<"$kv"
    elif [ -s "$RESOLVED" ]; then
        log "WARNING: cannot resolve the kernel package, using the cached one"
        read -r _ KPKG KVER <"$RESOLVED"
    else
        log "ERROR: cannot resolve the kernel package linux-image-amd64"
        exit 1
    fi
fi

# --- 3. up to date? --------------------------------------------------------
STAMP_NOW=$(
    cd "$HERE"
    {
        sha256sum build.sh init.sh workloads/*.c workloads/*.h
        echo "kernel $KPKG $KVER"
        tool_status # tool versions (busybox, gcc, libc); apt may have changed them
    } | sha256sum | cut -d' ' -f1
)
if [ -f "$OUT/STAMP" ] && [ "$(cat "$OUT/STAMP")" = "$STAMP_NOW" ] &&
    [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initramfs.cpio.gz" ]; then
    done_paths
fi
log "building (kernel $KPKG $KVER)"

# --- 4. kernel + NIC modules (cached per kernel version) --------------------
KDIR=$CACHE/kernel-$KPKG-$KVER
NICS=(e1000 virtio_net) # lists written: <nic>.list = modules in load order
if [ ! -e "$KDIR/.done" ]; then
    deb=$(ls "$CACHE/${KPKG}_"*.deb 2>/dev/null | head -n 1 || true)
    if [ -z "$deb" ] || [ "$(dpkg-deb -f "$deb" Version)" != "$KVER" ]; then
        rm -f "$CACHE"/linux-image-*.deb
        log "downloading $KPKG=$KVER"
        (cd "$CACHE" && apt-get download -o APT::Sandbox::User=root "$KPKG=$KVER" >&2)
        deb=$(ls "$CACHE/${KPKG}_"*.deb | head -n 1)
    fi
    rm -rf "$KDIR" "$CACHE"/extract.*
    tmp=$(mktemp -d "$CACHE/extract.XXXXXX")
    log "extracting $(basename "$deb")"
    dpkg-deb -x "$deb" "$tmp"
    mkdir -p "$KDIR/modules"
    cp "$tmp"/boot/vmlinuz-* "$KDIR/vmlinuz"
    # Uncompressed ELF kernel for PVH boot: the xz payload inside the bzImage.
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$KDIR/vmlinuz" | head -n 1 | cut -d: -f1 || true)
    if [ -n "$off" ] && { tail -c +$((off + 1)) "$KDIR/vmlinuz" || true; } | xz -dc --single-stream >"$KDIR/vmlinux" 2>/dev/null &&
        LC_ALL=C readelf -n "$KDIR/vmlinux" 2>/dev/null | grep -q 'note type: (0x00000012)'; then
        log "extracted PVH kernel vmlinux"
    else
        log "WARNING: no PVH kernel (bzImage payload is not xz or has no PVH note)"
        rm -f "$KDIR/vmlinux"
    fi

    # module name -> file (names use '_' and '-' interchangeably)
    declare -A MODFILE=()
    while IFS= read -r f; do
        n=$(basename "$f")
        n=${n%%.ko*}
        MODFILE[${n//-/_}]=$f
    done < <(find "$tmp"/lib/modules/*/kernel -name '*.ko*')

    # copy one module, uncompressed (busybox insmod wants a plain .ko)
    fetch() {
        local f=${MODFILE[$1]:-} dst=$KDIR/modules/$1.ko
        [ -n "$f" ] || { log "ERROR: module $1 not in $KPKG"; exit 1; }
        [ -e "$dst" ] && return 0
        case "$f" in
        *.ko) cp "$f" "$dst" ;;
        *.ko.xz) xz -dc "$f" >"$dst" ;;
        *.ko.zst) zstd -qdc "$f" >"$dst" ;;
        *.ko.gz) gzip -dc "$f" >"$dst" ;;
        *) log "ERROR: unknown module format $f"; exit 1 ;;
        esac
    }
    deps() { # the depends= field of the module's .modinfo section
        objcopy -O binary --only-section=.modinfo "$KDIR/modules/$1.ko" /dev/stdout |
            tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',-' ' _'
    }
    declare -A SEEN
    ORDER=()
    visit() { # depth first: dependencies before the module itself
        local m=$1 d
        [ -n "${SEEN[$m]:-}" ] && return 0
        SEEN[$m]=1
        fetch "$m"
        for d in $(deps "$m"); do visit "$d"; done
        ORDER+=("$m")
    }
    for nic in "${NICS[@]}"; do
        SEEN=()
        ORDER=()
        # virtio_net also needs the virtio PCI transport, which is no dependency
        [ "$nic" = virtio_net ] && visit virtio_pci
        visit "$nic"
        printf '%s\n' "${ORDER[@]}" >"$KDIR/modules/$nic.list"
        log "modules for $nic: ${ORDER[*]}"
    done
    rm -rf "$tmp"
    # keep only the current kernel in the cache
    for d in "$CACHE"/kernel-*; do [ "$d" = "$KDIR" ] || rm -rf "$d"; done
    touch "$KDIR/.done"
fi

# --- 5. workloads -----------------------------------------------------------
ROOT=$OUT/.root
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,dev,proc,sys,run,tmp,lib/modules,workloads}
for src in "$HERE"/workloads/*.c; do
    w=$(basename "$src" .c)
    log "compiling $w"
    gcc -O2 -static -s -Wall -Wextra -o "$ROOT/workloads/$w" "$src"
done

# --- 6. initramfs -------------------------------------------------------------
cp /bin/busybox "$ROOT/bin/busybox"
for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$ROOT/bin/$a"
done
install -m 755 "$HERE/init.sh" "$ROOT/init"
cp "$KDIR"/modules/*.ko "$KDIR"/modules/*.list "$ROOT/lib/modules/"
# the kernel's built-in initramfs has /dev/console too; add it when we can
mknod -m 600 "$ROOT/dev/console" c 5 1 2>/dev/null || true
find "$ROOT" -exec touch -h -d @0 {} + # reproducible archive
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -n -9 >"$OUT/initramfs.cpio.gz.tmp"
cp "$KDIR/vmlinuz" "$OUT/vmlinuz.tmp"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
if [ "$OUT/vmlinux" -ef "$KDIR/vmlinux" ]; then
    : # already the same file
elif [ -s "$KDIR/vmlinux" ]; then # 63 MiB: hard link instead of a copy when possible
    rm -f "$OUT/vmlinux.tmp"
    ln "$KDIR/vmlinux" "$OUT/vmlinux.tmp" 2>/dev/null || cp "$KDIR/vmlinux" "$OUT/vmlinux.tmp"
    mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"
else
    rm -f "$OUT/vmlinux"
fi
mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
rm -rf "$ROOT"
echo "$STAMP_NOW" >"$OUT/STAMP"
log "initramfs $(stat -c %s "$OUT/initramfs.cpio.gz") bytes"
done_paths
