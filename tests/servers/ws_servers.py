"""Real WebSocket servers for the client's tests, on 127.0.0.1:

    ws_servers.py tornado [CERT KEY]   Tornado's WebSocketHandler (TLS with CERT/KEY)
    ws_servers.py websockets           the `websockets` package's server
    ws_servers.py websockets-window    the same, permessage-deflate only with a
                                       client window of at most 2^9 bytes
                                       (require_client_max_window_bits)

Both serve the same paths: /echo (each message back, text as text, binary
as binary), /deflate (the same, with permessage-deflate; the websockets
server always offers it), /subprotocol (the first message says which
subprotocol was chosen), /header (the first message is the request's
X-Test header), /close (closes at once with 4001 "going away"),
/ping (sends a ping with b"hi" at the start and before each echo).
Tornado's server also has /slow-deflate: /deflate, but the first message
is echoed only after 3 s, and Tornado reads nothing meanwhile (a coroutine
on_message holds the reads back), so the client's writes back up; and /burst: eight 40 KB messages ("0xxx...",
"1xxx...", ...) at once, then a close with 1000.

Listens on $WS_PORT when set (then it runs until signalled), else on a free
port, printing "PORT <n>" on stdout once listening; exits when stdin closes, so the
test that started it never leaves it behind.
"""

import asyncio
import os
import ssl
import sys
import threading


def watch_stdin(stop):
    # With WS_PORT the starter stops the server with a signal (its stdin
    # may be /dev/null, which would end it at once).
    if os.environ.get("WS_PORT"):
        return
    sys.stdin.read()
    stop()


def run_tornado(cert=None, key=None):
    import tornado.ioloop
    import tornado.web
    import tornado.websocket

    class Echo(tornado.websocket.WebSocketHandler):
        def on_message(self, message):
            self.write_message(message, binary=isinstance(message, bytes))

    class Deflate(Echo):
        def get_compression_options(self):
            return {}

    class SlowDeflate(Deflate):
        first = True

        async def on_message(self, message):
            if self.first:
                self.first = False
                await asyncio.sleep(3.0)
            await self.write_message(message, binary=isinstance(message, bytes))

    class Burst(tornado.websocket.WebSocketHandler):
        def open(self):
            for i in range(8):
                self.write_message("%d" % i + "x" * 40000)
            self.close(1000)

    class Subprotocol(tornado.websocket.WebSocketHandler):
        def select_subprotocol(self, subprotocols):
            return subprotocols[-1] if subprotocols else None

        def open(self):
            self.write_message("chose %s" % self.selected_subprotocol)

    class Header(tornado.websocket.WebSocketHandler):
        def open(self):
            self.write_message(self.request.headers.get("X-Test", "none"))

    class Close(tornado.websocket.WebSocketHandler):
        def open(self):
            self.close(4001, "going away")

    class Ping(Echo):
        def open(self):
            self.ping(b"hi")

        def on_message(self, message):
            self.ping(b"hi")
            super().on_message(message)

    app = tornado.web.Application(
        [
            (r"/echo", Echo),
            (r"/deflate", Deflate),
            (r"/slow-deflate", SlowDeflate),
            (r"/burst", Burst),
            (r"/subprotocol", Subprotocol),
            (r"/header", Header),
            (r"/close", Close),
            (r"/ping", Ping),
        ],
        websocket_max_message_size=64 * 1024 * 1024,
    )
    ssl_options = None
    if cert:
        ssl_options = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_options.load_cert_chain(cert, key)
    server = app.listen(int(os.environ.get("WS_PORT", "0")), address="127.0.0.1", ssl_options=ssl_options)
    port = list(server._sockets.values())[0].getsockname()[1]
    loop = tornado.ioloop.IOLoop.current()
    print("PORT %d" % port, flush=True)
    threading.Thread(
        target=watch_stdin, args=(lambda: loop.add_callback(loop.stop),), daemon=True
    ).start()
    loop.start()


def run_websockets(small_client_window=False):
    from websockets.asyncio.server import serve
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    compression = {}
    if small_client_window:
        compression = dict(
            compression=None,
            extensions=[
                ServerPerMessageDeflateFactory(
                    client_max_window_bits=9, require_client_max_window_bits=True
                )
            ],
        )

    async def handler(ws):
        path = ws.request.path
        if path == "/subprotocol":
            await ws.send("chose %s" % ws.subprotocol)
        elif path == "/header":
            await ws.send(ws.request.headers.get("X-Test", "none"))
        elif path == "/close":
            await ws.close(4001, "going away")
            return
        elif path == "/ping":
            await ws.ping(b"hi")
        async for message in ws:
            if path == "/ping":
                # websockets refuses two pings with one payload in flight.
                await ws.ping()
            await ws.send(message)

    async def main():
        stop = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=watch_stdin,
            args=(lambda: loop.call_soon_threadsafe(stop.set_result, None),),
            daemon=True,
        ).start()
        async with serve(
            handler,
            "127.0.0.1",
            int(os.environ.get("WS_PORT", "0")),
            # The last one offered, or none: as the Tornado server above.
            select_subprotocol=lambda _, offered: offered[-1] if offered else None,
            max_size=64 * 1024 * 1024,
            **compression,
        ) as server:
            port = list(server.sockets)[0].getsockname()[1]
            print("PORT %d" % port, flush=True)
            await stop

    asyncio.run(main())


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "tornado":
        run_tornado(*sys.argv[2:4])
    elif kind == "websockets":
        run_websockets()
    elif kind == "websockets-window":
        run_websockets(small_client_window=True)
    else:
        sys.exit("unknown server %r" % kind)
