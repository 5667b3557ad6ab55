#!/bin/bash
# W7 (shared/bench/WORKLOADS.md) in one run: tornado_rs, libwebsockets and
# Tornado's client against the anchors' ws_echo_server, in rounds, so that
# the ratios come from the same minutes of a shared machine.
#
#   benches/w7.sh OUT.jsonl [ROUNDS]
#
# Needs: c_examples/build/bench (make -C c_examples bench), the anchors
# built (ANCHORS=dir with build/lws_bench and build/ws_echo_server: make -C
# a copy of shared/bench/anchors), python3 with tornado. BEFORE=dir runs the
# bench a second time per round with LD_LIBRARY_PATH=dir (a
# libtornado_rs.so.0 from before a change), as impl "tornado_rs-before".
# Every line goes through anchors/run_one.py, which adds the host-noise
# fields (host_other_cpu_s, host_steal_s, server_cpu_s); a run that fails
# (or passes run_one's 300 s limit) is kept as a line with "failed".
set -euo pipefail
OUT=${1:?usage: benches/w7.sh OUT.jsonl [ROUNDS]}
ROUNDS=${2:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SHARED=/work/shared/bench/anchors
ANCHORS=${ANCHORS:-$SHARED}
PORT=${W7_PORT:-18194}
URL=ws://127.0.0.1:$PORT/echo
BENCH=$HERE/c_examples/build/bench

"$ANCHORS/build/ws_echo_server" "$PORT" </dev/null >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
sleep 0.5
export BENCH_SERVER_PIDS=$SERVER

run() { # impl-label command...: one JSON line; a failed run is a line with "failed"
    local label=$1 out rc=0
    shift
    out=$(python3 "$SHARED/run_one.py" 300 "$@" </dev/null) || rc=$?
    printf '%s\n' "$out" | python3 -c '
import json, sys
label, rc, workload = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = [l for l in sys.stdin.read().splitlines() if l.startswith("{")]
line = json.loads(lines[-1]) if lines else {"workload": workload}
line["impl"] = label
if rc:
    line["failed"] = "exit %d%s" % (rc, " (time limit)" if rc == 124 else "")
print(json.dumps(line))' "$label" "$rc" "$W" | tee -a "$OUT"
}

uptime | tee -a "$OUT.meta"
for round in $(seq "$ROUNDS"); do
    for W in W7-rt W7-stream; do
        run tornado_rs "$BENCH" $W $URL
        if [ -n "${BEFORE:-}" ]; then
            run tornado_rs-before env LD_LIBRARY_PATH="$BEFORE" "$BENCH" $W $URL
        fi
        run libwebsockets "$ANCHORS/build/lws_bench" $W $URL
        run tornado python3 "$SHARED/tornado_bench.py" $W $URL
    done
done
uptime | tee -a "$OUT.meta"
