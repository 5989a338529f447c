#!/bin/sh
# tests/loaded.sh - make test-loaded: the interop and close-path tests while
# two CPU hogs run (stress-ng), against the plain and the ASan+UBSan
# binaries.  Timing is part of correctness: what passes on an idle machine
# must pass on a busy one.  Bounded: the hogs stop by themselves after
# LOADED_SECONDS (1800) and are killed when this script ends.  Runs without
# a terminal (CI=true, no stdin); installs stress-ng when it is missing.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
HOGS=${LOADED_HOGS:-2}
if ! command -v stress-ng >/dev/null 2>&1; then
	echo "installing: stress-ng"
	SUDO=
	[ "$(id -u)" = 0 ] || SUDO="sudo -n"
	export DEBIAN_FRONTEND=noninteractive
	{ $SUDO apt-get update -qq &&
	  $SUDO apt-get install -y -qq stress-ng; } </dev/null ||
		{ echo "test-loaded: cannot install stress-ng"; exit 1; }
fi
T=tests/integration
# Whole files: every real-peer interop test (the 20 x 20 MB downloads
# through v2ray-plugin among them) and every close-path test.
FILES="$T/test_sip003.py $T/test_close.py"
[ -f $T/test_client_close.py ] && FILES="$FILES $T/test_client_close.py"
# From every other file, what closes, lingers or uploads.
SEL_FILES=
for f in $T/test_*.py; do
	case " $FILES " in *" $f "*) ;; *) SEL_FILES="$SEL_FILES $f" ;; esac
done

stress-ng --cpu "$HOGS" --timeout "${LOADED_SECONDS:-1800}" \
	</dev/null >/dev/null 2>&1 &
HOG=$!
trap 'kill $HOG 2>/dev/null; wait $HOG 2>/dev/null' EXIT
trap 'exit 1' INT TERM
echo "== test-loaded: $HOGS CPU hogs (stress-ng pid $HOG), load $(cut -d' ' -f1-3 /proc/loadavg)"

st=0
run() {
	echo "== test-loaded: $1"
	shift
	"$@" $PYTHON -m pytest -q -p no:cacheprovider $FILES </dev/null || st=1
	"$@" $PYTHON -m pytest -q -p no:cacheprovider \
		-k "close or linger or upload" $SEL_FILES </dev/null || st=1
}
t0=$(date +%s)
run "plain build" env
run "ASan+UBSan build" env WEBSOCKSY_BIN="$PWD/build/san/websocksy" \
	WEBSOCKSY_CLIENT_BIN="$PWD/build/san/websocksy-client"
echo "== test-loaded: $(( $(date +%s) - t0 )) s, load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
exit $st
