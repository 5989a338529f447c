#!/bin/sh
# demo/run.sh - start the websocksy demo: demo/peer.py (a TCP line service
# on 127.0.0.1:8002) in the background and websocksy in the foreground with
# websocksy.cfg.  Ctrl-C stops both.  Run `make` first (or `make run`).
set -e
cd "$(dirname "$0")/.."

BIN=build/websocksy
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if [ ! -x "$BIN" ]; then
	echo "demo/run.sh: $BIN not found; run make first" >&2
	exit 1
fi

"$PY" demo/peer.py 8002 &
PEER=$!
cleanup() {
	kill "$PEER" 2>/dev/null || :
	wait "$PEER" 2>/dev/null || :
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Give the peer a moment to listen; fail early if it could not.
sleep 0.3
if ! kill -0 "$PEER" 2>/dev/null; then
	echo "demo/run.sh: demo/peer.py did not start (port 8002 busy?)" >&2
	exit 1
fi

echo "open http://localhost:8001/"
"$BIN" websocksy.cfg
