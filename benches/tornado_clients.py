"""A Tornado program fetching with each of Tornado's AsyncHTTPClient
implementations: RsAsyncHTTPClient (tornado_rs), SimpleAsyncHTTPClient and
CurlAsyncHTTPClient (pycurl). Workloads of ../shared/bench/WORKLOADS.md,
measured as the anchors' tornado_bench.py measures them (one JSON line).

Usage: python3 benches/tornado_clients.py rs|simple|curl W4s-c64|W5 URL [N]
(PYTHONPATH must reach python/ for rs; benches/tornado_clients.sh runs all.)
"""

import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "bench", "anchors"))

import tornado  # noqa: E402
from tornado.httpclient import AsyncHTTPClient  # noqa: E402

from bench_common import HTTP_WORKLOADS, Phase, emit, raise_nofile  # noqa: E402

CLIENTS = {
    "rs": "tornado_rs.httpclient.RsAsyncHTTPClient",
    "simple": "tornado.simple_httpclient.SimpleAsyncHTTPClient",
    "curl": "tornado.curl_httpclient.CurlAsyncHTTPClient",
}


def run(client_name, workload, url, n):
    _, conc, expect_len = HTTP_WORKLOADS[workload]
    conc = min(conc, n)
    AsyncHTTPClient.configure(CLIENTS[client_name], max_clients=conc)
    errors = 0
    started = 0

    async def main():
        nonlocal errors, started
        client = AsyncHTTPClient()

        async def worker():
            nonlocal started, errors
            while started < n:
                started += 1
                try:
                    resp = await client.fetch(url, raise_error=False, connect_timeout=60, request_timeout=60)
                    if resp.code != 200 or len(resp.body) != expect_len:
                        if errors < 5:
                            sys.stderr.write("fetch failed: code=%s error=%r\n" % (resp.code, resp.error))
                        errors += 1
                except Exception as e:  # noqa: BLE001 - every failure is counted
                    if errors < 5:
                        sys.stderr.write("fetch failed: %r\n" % (e,))
                    errors += 1

        await asyncio.gather(*[worker() for _ in range(conc)])

    ph = Phase().start()
    asyncio.run(main())
    ph.stop()
    emit(workload, "tornado+" + client_name, n, ph, req_per_s=round(n / ph.wall_s, 1), errors=errors,
         concurrency=conc, version=tornado.version)
    return errors == 0


if __name__ == "__main__":
    raise_nofile()
    name, workload, url = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else HTTP_WORKLOADS[workload][0]
    sys.exit(0 if run(name, workload, url, count) else 1)
