#!/usr/bin/env bash
# Runs benches/tornado_clients.py for each of Tornado's AsyncHTTPClient
# implementations (tornado_rs's RsAsyncHTTPClient, SimpleAsyncHTTPClient,
# CurlAsyncHTTPClient) on W4s-c64 and W5, ROUNDS rounds alternating the
# clients, against a local nginx (/small, 200 bytes) and the anchors'
# slow_server.py (2 s per response). Needs nginx, pycurl and the release
# library (cargo build --release). Output: JSON lines on stdout.
#
#   bash benches/tornado_clients.sh > benches/results-tornado-clients.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
N_SMALL=${N_SMALL:-20000}
ANCHORS=../shared/bench/anchors
work=$(mktemp -d)
chmod 755 "$work"  # nginx workers run as another user
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/html"
head -c 200 /dev/zero | tr '\0' x >"$work/html/small"
cat >"$work/nginx.conf" <<CONF
user root; worker_processes 1; error_log $work/error.log; pid $work/nginx.pid; daemon on;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18189; root $work/html; } }
CONF
nginx -c "$work/nginx.conf" -p "$work"
python3 "$ANCHORS/slow_server.py" 18190 2 </dev/null >"$work/slow.log" 2>&1 &
echo $! >"$work/slow.pid"
sleep 1
for _ in $(seq "$ROUNDS"); do
    for client in rs simple curl; do
        PYTHONPATH=python python3 benches/tornado_clients.py "$client" W4s-c64 http://127.0.0.1:18189/small "$N_SMALL"
    done
done
for _ in $(seq "$ROUNDS"); do
    for client in rs simple curl; do
        PYTHONPATH=python python3 benches/tornado_clients.py "$client" W5 http://127.0.0.1:18190/slow
    done
done
