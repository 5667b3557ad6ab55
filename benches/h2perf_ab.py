#!/usr/bin/env python3
"""A/B in one run: the bench before (base) and after (new) this branch's
change, libcurl and h2load, alternating in rounds (every case once per
round), R rounds; prints every run as JSON and medians with min/max.
W6 and W6b against an nginx started from ../shared/bench/anchors/nginx.conf
with its ports moved (PORT: its TLS port, 18091 by default).
Usage: ab.py W6|W6b [buffer|stream]
Env: R (rounds), PORT, BENCH_CA_FILE, BASE_DIR (the bench from before, with
its libtornado_rs.so.0 beside it), NEW (the bench after), CURL_BENCH."""
import json, os, subprocess, sys, statistics, time
R = int(os.environ.get("R", "7"))
port = os.environ.get("PORT", "18091")
W = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "buffer"
url = f"https://127.0.0.1:{port}/" + ("big10m" if W == "W6b" else "small")
env = dict(os.environ, BENCH_CA_FILE=os.environ.get("BENCH_CA_FILE", "/tmp/h2perf/srv/tls/ca.crt"), BENCH_BODY=mode)
base = os.environ.get("BASE_DIR", "/tmp/h2perf/base")
cases = {
  "base": ([f"{base}/bench", W, url], dict(env, LD_LIBRARY_PATH=base)),
  "new": ([os.environ.get("NEW", "/work/wt-h2perf/c_examples/build/bench"), W, url], env),
  "libcurl": ([os.environ.get("CURL_BENCH", "/work/shared/bench/anchors/build/curl_bench"), W, url], env),
  "h2load": (["python3", "/work/shared/bench/anchors/h2load_bench.py", W, url], env),
}
res = {k: [] for k in cases}
print(f"# {W} body={mode} rounds={R} start={time.strftime('%H:%M:%S', time.gmtime())}Z load={os.getloadavg()[0]:.1f}")
for r in range(R):
  for k, (cmd, e) in cases.items():
    out = subprocess.run(cmd, env=e, capture_output=True, text=True)
    line = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not line:
      print("# FAIL", k, out.returncode, out.stderr[-300:].replace("\n", " ")); continue
    j = json.loads(line[-1]); j["case"] = k; j["round"] = r + 1
    print(json.dumps(j))
    if j.get("errors", 0): print("# ERRORS", k)
    rate = j.get("mb_per_s") if W == "W6b" else j.get("req_per_s")
    res[k].append((rate, j["cpu_s"]))
print(f"# end={time.strftime('%H:%M:%S', time.gmtime())}Z load={os.getloadavg()[0]:.1f}")
unit = "MiB/s" if W == "W6b" else "req/s"
for k, v in res.items():
  if not v: continue
  rates = sorted(x[0] for x in v); cpus = sorted(x[1] for x in v)
  print(f"# {k:8s} {unit} median {statistics.median(rates):9.1f} (min {rates[0]:.1f}, max {rates[-1]:.1f})  cpu_s median {statistics.median(cpus):.3f} (min {cpus[0]:.3f}, max {cpus[-1]:.3f})  n={len(v)}")
