#!/bin/bash
# Makes a private CA and host certificates for one McGrpc host pair (and,
# optionally, operators of the control API), with openssl only.
#
# Usage: tools/make-certs.sh [-d DIR] [--days N] [--ca-days N] NAME[=SAN,...] ...
#
#   NAME            a host (or operator) name: the certificate's CN, and its
#                   subjectAltName when no SAN list follows
#   SAN,...         DNS names and IP addresses the certificate must carry: the
#                   names the other daemon connects to (mc-primary checks that
#                   the backup's certificate names the host of --target)
#   -d DIR          output directory (default ./mcgrpc-pki); an existing CA in
#                   it is reused, so hosts can be added later
#   --days N        host certificate lifetime in days (default 825)
#   --ca-days N     CA lifetime in days (default 3650)
#
# Example, a pair where the primary connects to tcp:10.0.0.2:7000:
#   tools/make-certs.sh -d /etc/mcgrpc primary=primary.example,10.0.0.1 backup=backup.example,10.0.0.2
# then copy to each host only its own NAME.crt/NAME.key and ca.crt, and run
#   mc-backup  ... --tls-ca ca.crt --tls-cert backup.crt  --tls-key backup.key
#   mc-primary ... --tls-ca ca.crt --tls-cert primary.crt --tls-key primary.key
# ca.key stays offline: it is only needed to issue more certificates.
#
# Every certificate allows both TLS server and client use (serverAuth,
# clientAuth): the backup serves replication, the primary connects to it, and
# either may serve a TLS control API. Keys are EC P-256, written mode 0600.
# Use one CA per host pair (or set --tls-peer-name): mc-backup accepts any
# primary whose certificate comes from the CA.
set -euo pipefail

dir=./mcgrpc-pki
days=825
ca_days=3650
names=()
while [ $# -gt 0 ]; do
    case "$1" in
    -d) dir=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --ca-days) ca_days=$2; shift 2 ;;
    -h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "make-certs: unknown option $1 (see --help)" >&2; exit 64 ;;
    *) names+=("$1"); shift ;;
    esac
done
[ ${#names[@]} -gt 0 ] || { echo "make-certs: give at least one NAME[=SAN,...] (see --help)" >&2; exit 64; }
command -v openssl >/dev/null || { echo "make-certs: openssl is required" >&2; exit 69; }

umask 077
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -s "$dir/ca.key" ] || [ ! -s "$dir/ca.crt" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
    cat >"$work/ca.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca
[dn]
CN = McGrpc CA $(date -u +%Y-%m-%d) $(openssl rand -hex 4)
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    openssl req -new -x509 -key "$dir/ca.key" -days "$ca_days" -sha256 -config "$work/ca.cnf" -out "$dir/ca.crt"
    echo "made CA $dir/ca.crt ($(openssl x509 -in "$dir/ca.crt" -noout -subject))"
else
    echo "using existing CA $dir/ca.crt"
fi

is_ip() { [[ $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || $1 == *:* ]]; }

for spec in "${names[@]}"; do
    name=${spec%%=*}
    sans=$name
    [[ $spec == *=* ]] && sans=${spec#*=}
    [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || { echo "make-certs: '$name' is not a usable file name" >&2; exit 64; }
    alt=()
    IFS=, read -r -a list <<<"$sans"
    for san in "${list[@]}"; do
        [ -n "$san" ] || continue
        if is_ip "$san"; then alt+=("IP:$san"); else alt+=("DNS:$san"); fi
    done
    cat >"$work/$name.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = $name
[host]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = $(IFS=,; echo "${alt[*]}")
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
    openssl req -new -key "$dir/$name.key" -config "$work/$name.cnf" -out "$work/$name.csr"
    openssl x509 -req -in "$work/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days "$days" -sha256 -extfile "$work/$name.cnf" -extensions host -out "$dir/$name.crt" 2>/dev/null
    chmod 600 "$dir/$name.key"
    chmod 644 "$dir/$name.crt" "$dir/ca.crt"
    openssl verify -CAfile "$dir/ca.crt" "$dir/$name.crt" >/dev/null
    echo "made $dir/$name.crt + $dir/$name.key for ${alt[*]}"
done
