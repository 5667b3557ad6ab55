"""tornado_rs.websocket against Tornado's own WebSocketHandler on
127.0.0.1, on the same asyncio loop: Tornado's websocket_connect
behaviour (messages, None at the close, HTTPClientError for a refused
handshake, WebSocketClosedError after a close)."""

import asyncio
import socket

import pytest
import tornado.web
import tornado.websocket
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httpserver import HTTPServer

from tornado_rs.websocket import websocket_connect


class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message, binary=isinstance(message, bytes))


class Deflate(Echo):
    def get_compression_options(self):
        return {}


class Chooser(tornado.websocket.WebSocketHandler):
    def select_subprotocol(self, subprotocols):
        return subprotocols[-1]

    def open(self):
        self.write_message("header %s" % self.request.headers.get("X-Test"))


class Closer(tornado.websocket.WebSocketHandler):
    def open(self):
        self.close(4002, "bye now")


class Pinger(Echo):
    def on_message(self, message):
        self.ping(b"are you there")
        super().on_message(message)


def serve():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    app = tornado.web.Application(
        [(r"/echo", Echo), (r"/deflate", Deflate), (r"/choose", Chooser), (r"/close", Closer), (r"/ping", Pinger)]
    )
    server = HTTPServer(app)
    server.add_sockets([sock])
    return server, "ws://127.0.0.1:%d" % sock.getsockname()[1]


def run(body):
    async def main():
        server, base = serve()
        try:
            await asyncio.wait_for(body(base), 20)
        finally:
            server.stop()

    asyncio.run(main())


def test_echo_text_binary_and_close():
    async def body(base):
        conn = await websocket_connect(base + "/echo")
        assert conn.selected_subprotocol is None
        await conn.write_message("h\u00e9llo")
        assert await conn.read_message() == "h\u00e9llo"
        await conn.write_message(b"\x00\xff", binary=True)
        assert await conn.read_message() == b"\x00\xff"
        await conn.write_message({"a": 1})
        assert await conn.read_message() == '{"a": 1}'
        conn.close(1000, "done")
        assert await conn.read_message() is None
        assert conn.close_code == 1000
        with pytest.raises(tornado.websocket.WebSocketClosedError):
            conn.write_message("late")

    run(body)


def test_compression_subprotocol_headers_and_server_close():
    async def body(base):
        conn = await websocket_connect(base + "/deflate", compression_options={})
        text = "compress me " * 1000
        await conn.write_message(text)
        assert await conn.read_message() == text
        conn.close()

        request = HTTPRequest(base + "/choose", headers={"X-Test": "yes"})
        conn = await websocket_connect(request, subprotocols=["a", "b"])
        assert conn.selected_subprotocol == "b"
        assert await conn.read_message() == "header yes"
        conn.close()

        conn = await websocket_connect(base + "/close")
        assert await conn.read_message() is None
        assert (conn.close_code, conn.close_reason) == (4002, "bye now")

    run(body)


def test_message_callback_and_on_ping():
    async def body(base):
        got = []
        done = asyncio.get_running_loop().create_future()

        def on_message(message):
            got.append(message)
            if message is None and not done.done():
                done.set_result(None)

        conn = await websocket_connect(base + "/ping", on_message_callback=on_message)
        pings = []
        conn.on_ping = pings.append
        await conn.write_message("one")
        await conn.write_message("two")
        while len(got) < 2:
            await asyncio.sleep(0.01)
        conn.close()
        await done
        assert got == ["one", "two", None]
        assert pings and all(p == b"are you there" for p in pings)

    run(body)


def test_refused_handshake_raises_http_client_error():
    async def body(base):
        with pytest.raises(HTTPClientError) as info:
            await websocket_connect(base + "/nowhere")
        assert info.value.code == 404
        with pytest.raises(ValueError):
            await websocket_connect(base.replace("ws://", "http://") + "/echo")

    run(body)


def test_client_max_window_bits_in_compression_options():
    """Tornado's server echoes the client_max_window_bits value offered
    (and leaves it out when offered bare, Tornado's own client's way)."""
    from tornado_rs._lib import ERR_INVALID, TornadoRsError

    async def body(base):
        conn = await websocket_connect(base + "/deflate", compression_options={"client_max_window_bits": 9})
        assert conn.extensions == "permessage-deflate; client_max_window_bits=9"
        text = "window of 512 bytes " * 500
        await conn.write_message(text)
        assert await conn.read_message() == text
        conn.close()
        conn = await websocket_connect(base + "/deflate", compression_options={})
        assert conn.extensions is not None and conn.extensions.startswith("permessage-deflate")
        assert "client_max_window_bits" not in conn.extensions
        conn.close()
        conn = await websocket_connect(base + "/echo")
        assert conn.extensions is None, "no compression asked for: no extension"
        conn.close()
        for bits in (7, 16):
            with pytest.raises(TornadoRsError) as info:
                await websocket_connect(base + "/deflate", compression_options={"client_max_window_bits": bits})
            assert info.value.code == ERR_INVALID and "client_max_window_bits" in str(info.value)

    run(body)
