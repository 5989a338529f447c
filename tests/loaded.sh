#!/bin/sh
# tests/loaded.sh - make test-loaded: the interop and close-path tests while
# two CPU hogs run (stress-ng), against the plain and the ASan+UBSan
# binaries.  Timing is part of correctness: what passes on an idle machine
# must pass on a busy one.  Bounded: the hogs stop by themselves after
# LOADED_SECONDS (1800) and are killed when this script ends.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
HOGS=${LOADED_HOGS:-2}
if ! command -v stress-ng >/dev/null; then
	echo "installing: stress-ng"
	if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
	$SUDO apt-get update -qq &&
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq stress-ng \
		</dev/null || { echo "test-loaded: cannot install stress-ng"; exit 1; }
fi
T=tests/integration
# Whole files: every real-peer interop and close-path test.
FILES="$T/test_sip003.py $T/test_close.py"
for f in $T/test_client_close.py $T/test_tunnel_mux.py; do
	[ -f "$f" ] && FILES="$FILES $f"
done
# From the other files, what closes, lingers or uploads.
SEL_FILES="$T/test_client.py $T/test_client_mux.py $T/test_relay.py $T/test_tls.py $T/test_kcp_server.py"

stress-ng --cpu "$HOGS" --timeout "${LOADED_SECONDS:-1800}" >/dev/null 2>&1 &
HOG=$!
trap 'kill $HOG 2>/dev/null; wait $HOG 2>/dev/null' EXIT INT TERM
echo "== test-loaded: $HOGS CPU hogs (stress-ng pid $HOG), load $(cut -d' ' -f1-3 /proc/loadavg)"

st=0
run() {
	echo "== test-loaded: $1"
	shift
	"$@" $PYTHON -m pytest -q -p no:cacheprovider $FILES || st=1
	"$@" $PYTHON -m pytest -q -p no:cacheprovider \
		-k "close or linger or upload" $SEL_FILES || st=1
}
run "plain build" env
run "ASan+UBSan build" env WEBSOCKSY_BIN="$PWD/build/san/websocksy" \
	WEBSOCKSY_CLIENT_BIN="$PWD/build/san/websocksy-client"
echo "== test-loaded: load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
exit $st
