#!/bin/bash
# W4b-c4 (N=200 fetches of 1 MiB, 4 in flight) with tornado_rs's bench and
# the libcurl anchor back to back, K times; prints each pair's MiB/s, then
# the medians. Each run's output is captured before the next run starts:
# a parser running beside a 0.1 s run skews it (an earlier harness did).
#
# Needs the anchors' nginx on 127.0.0.1:8089 (benches/RESULTS.md says how to
# start one), `make bench`, and the anchors built (ANCHORS: the folder
# holding build/curl_bench). ORDER=oc runs ours first in each pair, co
# libcurl first; BODY=stream streams our bodies as the anchor does.
set -euo pipefail
K=${K:-30}
ORDER=${ORDER:-oc}
ANCHORS=${ANCHORS:-../shared/bench/anchors}
URL=http://127.0.0.1:8089/big

mib_per_s() {
    grep -o '"mb_per_s":[0-9.]*' | cut -d: -f2
}
ours() { BENCH_BODY=${BODY:-} c_examples/build/bench W4b-c4 "$URL" | mib_per_s; }
curl_anchor() { "$ANCHORS/build/curl_bench" W4b-c4 "$URL" | mib_per_s; }

pairs=$(mktemp)
trap 'rm -f "$pairs"' EXIT
for _ in $(seq "$K"); do
    if [ "$ORDER" = oc ]; then o=$(ours); c=$(curl_anchor); else c=$(curl_anchor); o=$(ours); fi
    echo "$o $c" | tee -a "$pairs"
done
python3 - "$pairs" "$ORDER" "${BODY:-buffer}" <<'PY'
import statistics as st, sys
rows = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
ours, curl = st.median(r[0] for r in rows), st.median(r[1] for r in rows)
pair = st.median(r[0] / r[1] for r in rows)
print(f"order {sys.argv[2]}, body {sys.argv[3]}, {len(rows)} pairs: median tornado_rs {ours:.0f} "
      f"MiB/s, libcurl {curl:.0f} MiB/s, ratio of medians {ours / curl:.2f}, median pair ratio {pair:.2f}")
PY
