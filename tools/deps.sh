#!/bin/sh
# Installs the Debian packages a task needs, when they are missing.
#   sh tools/deps.sh build   compiler and OpenSSL headers for native/
#   sh tools/deps.sh test    the above, plus what the tests drive for real
#   sh tools/deps.sh bench   the above, plus the HTTP load generator (wrk)
# Needs root (or sudo) only when something is missing.
set -eu

build="gcc make libc6-dev libssl-dev openssl"
# libvirt-daemon, -driver-qemu, -clients: the real libvirtd the end-to-end tests drive (and
# QEMU's user libvirt-qemu, whom the install test lets reach the hook socket); systemd:
# systemd-analyze (the unit's check).
test="$build qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  busybox-static cpio xz-utils zstd lz4 curl git systemd debootstrap e2fsprogs"
bench="$test wrk"

case "${1:-build}" in
  build) want=$build ;;
  test) want=$test ;;
  bench) want=$bench ;;
  *) echo "usage: sh tools/deps.sh build|test|bench" >&2; exit 2 ;;
esac

missing=""
for pkg in $want; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "vasp: missing Debian packages:$missing (install them as root)" >&2
  exit 1
fi
echo "vasp: installing Debian packages:$missing" >&2
$sudo apt-get update -qq >&2
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
