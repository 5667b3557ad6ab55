"""tornado_rs for Python: Tornado's AsyncHTTPClient on libtornado_rs.

    from tornado.httpclient import AsyncHTTPClient
    AsyncHTTPClient.configure("tornado_rs.httpclient.RsAsyncHTTPClient")

or, on asyncio's running loop or in a Tornado coroutine:

    import tornado_rs
    response = await tornado_rs.fetch("http://127.0.0.1:8000/")

and Tornado's WebSocket client (tornado_rs.websocket):

    from tornado_rs.websocket import websocket_connect
    conn = await websocket_connect("ws://127.0.0.1:8888/echo")
"""

from ._lib import TornadoRsError, lib

__version__ = lib.tornado_version().decode()


async def fetch(request, **kwargs):
    """Fetches `request` (a URL or a tornado HTTPRequest) with the current
    loop's RsAsyncHTTPClient; raises as Tornado's fetch does."""
    from .httpclient import RsAsyncHTTPClient

    return await RsAsyncHTTPClient().fetch(request, **kwargs)


__all__ = ["TornadoRsError", "fetch", "__version__"]
