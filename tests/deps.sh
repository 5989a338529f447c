#!/bin/sh
# Install the Debian packages the build and the tests need, if missing.
set -e
# build: compilers and libraries; tests: the real peers and clients the
# integration suite drives (TLS tools, Chromium, shadowsocks, kcp-go).
PKGS="build-essential pkg-config libgnutls28-dev nettle-dev libinih-dev
libc-ares-dev zlib1g-dev clang libclang-rt-14-dev
python3-pytest python3-websockets socat curl gnutls-bin openssl chromium
shadowsocks-libev shadowsocks-v2ray-plugin golang-go
golang-github-xtaci-kcp-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
