#!/usr/bin/env bash
# Try voiced the way a new user on a stock Debian 12 would: debootstrap a
# minimal bookworm root, add only Go and the tools the README assumes (gcc,
# git, make, curl, python3, Debian's own nodejs and npm), clone this
# repository into it and run the given make targets there (default:
# "test"). Nothing from this machine's caches is copied in: the root starts
# with an empty ~/.cache and ~/go.
#
#   sudo bash scripts/debian-root.sh [ROOT] [TARGET...]
#
# ROOT defaults to /var/tmp/voiced-debian12; an existing ROOT is reused (its
# packages are kept; the clone is made afresh). Needs root, debootstrap (it
# is installed if missing), a Debian mirror, the Go module proxy and the npm
# registry. The log of each target is written to ROOT/root/<target>.log.
set -euo pipefail

ROOT=${1:-/var/tmp/voiced-debian12}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(test)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
GOROOT_SRC=${GOROOT_SRC:-$(go env GOROOT)}
REPO=$(cd "$(dirname "$0")/.." && pwd)

[ "$(id -u)" = 0 ] || { echo "debian-root.sh: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
command -v debootstrap >/dev/null || {
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
	echo "debootstrap bookworm (minbase) into $ROOT"
	mkdir -p "$ROOT"
	debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR"
fi

# The machine's apt settings (mirrors, snapshot clock), name resolution and
# the certificate authorities its network needs (a TLS-inspecting proxy's
# CA, where there is one: Node and Go trust the file the environment names).
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
HOST_CA=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
CA_ENV=()
if [ -f "$HOST_CA" ]; then
	cp "$HOST_CA" "$ROOT/etc/host-ca.crt"
	CA_ENV=(SSL_CERT_FILE=/etc/host-ca.crt NODE_EXTRA_CA_CERTS=/etc/host-ca.crt GIT_SSL_CAINFO=/etc/host-ca.crt CURL_CA_BUNDLE=/etc/host-ca.crt)
fi
for f in /etc/apt/apt.conf.d/*; do
	case $(basename "$f") in docker-*) ;; *) cp "$f" "$ROOT/etc/apt/apt.conf.d/" ;; esac
done

mounted=()
mountin() { # mountin TYPE-OR-BIND SRC DST
	mountpoint -q "$ROOT$3" && return
	mkdir -p "$ROOT$3"
	if [ "$1" = bind ]; then mount --bind "$2" "$ROOT$3"; else mount -t "$1" "$2" "$ROOT$3"; fi
	mounted=("$ROOT$3" "${mounted[@]}")
}
cleanup() { for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mountin proc proc /proc
mountin sysfs sys /sys
mountin bind /dev /dev
mountin bind /dev/pts /dev/pts
mountin tmpfs tmpfs /dev/shm
mountin tmpfs tmpfs /tmp

inroot() { chroot "$ROOT" env -i HOME=/root TERM=dumb LANG=C.UTF-8 "${CA_ENV[@]}" \
	PATH=/usr/local/go/bin:/root/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

echo "base tools: gcc git make curl python3 nodejs npm"
inroot apt-get update -qq
inroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	ca-certificates gcc libc6-dev git make curl python3 nodejs npm >/dev/null
if [ ! -x "$ROOT/usr/local/go/bin/go" ]; then
	echo "Go from $GOROOT_SRC"
	mkdir -p "$ROOT/usr/local"
	cp -a "$GOROOT_SRC" "$ROOT/usr/local/go"
fi
inroot go version
inroot node --version

rm -rf "$ROOT/root/voiced"
git clone -q "$REPO" "$ROOT/root/voiced"
status=0
for t in "${TARGETS[@]}"; do
	echo "make $t (log: $ROOT/root/$t.log)"
	start=$(date +%s)
	if inroot bash -c "cd /root/voiced && make $t" >"$ROOT/root/$t.log" 2>&1; then
		echo "make $t: ok in $(($(date +%s) - start)) s"
	else
		echo "make $t: FAILED after $(($(date +%s) - start)) s; tail of the log:"
		tail -40 "$ROOT/root/$t.log"
		status=1
	fi
done
exit $status
