"""aiohttp's server for the client's tests (tests/real_servers.rs): a
compressed page (HEAD and GET) and a compressed chunked stream.

Usage: aiohttp_app.py PORT. Runs until killed.
"""

import sys

from aiohttp import web


async def page(request):
    response = web.Response(text="hello aiohttp " * 200)
    response.enable_compression()
    return response


async def stream(request):
    response = web.StreamResponse()
    response.enable_compression()
    await response.prepare(request)
    await response.write(b"first ")
    await response.write(b"second")
    await response.write_eof()
    return response


app = web.Application()
app.router.add_route("*", "/page", page)
app.router.add_get("/stream", stream)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
