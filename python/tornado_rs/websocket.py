"""`websocket_connect`: Tornado's WebSocket client on libtornado_rs.

    from tornado_rs.websocket import websocket_connect
    conn = await websocket_connect("ws://127.0.0.1:8888/echo")
    await conn.write_message("hello")
    print(await conn.read_message())
    conn.close()

The arguments and the connection's methods are Tornado's
(`tornado.websocket.websocket_connect`, `WebSocketClientConnection`):
`read_message()` resolves to a str (text), bytes (binary) or None once the
connection is closed; `write_message()` returns a Future done when the
message is on the wire and raises `WebSocketClosedError` after a close.
The handshake goes through the library's HTTP client (the current loop's
`RsAsyncHTTPClient`), so the request's headers, auth, TLS options, proxy
and timeouts apply.

Beyond Tornado's: ``compression_options={"client_max_window_bits": 9}``
(8-15) compresses what is sent with a window of at most 2^9 bytes, offered
to the server as ``client_max_window_bits=9`` (a bad value, or compression
off, raises TornadoRsError with ERR_INVALID); and the connection's
``extensions`` attribute is the server's agreed Sec-WebSocket-Extensions
(None: none).
"""

import ctypes
import weakref

from tornado import httputil
from tornado.concurrent import Future
from tornado.escape import utf8
from tornado.httpclient import HTTPClientError, HTTPRequest, _RequestProxy
from tornado.websocket import WebSocketClosedError

from . import _lib
from ._lib import check, lib, registry
from .httpclient import RsAsyncHTTPClient, _error_for, _Fetch

_vp = _lib.vp
MESSAGE_CB = ctypes.CFUNCTYPE(None, _vp, _vp)
PING_CB = ctypes.CFUNCTYPE(None, _lib.u8p, _lib.size, _vp)

for _name, _res, _args in [
    ("tornado_websocket_options_new", _vp, ()),
    ("tornado_websocket_options_free", None, (_vp,)),
    ("tornado_websocket_options_add_subprotocol", _lib.code, (_vp, ctypes.c_char_p)),
    ("tornado_websocket_options_set_max_message_size", _lib.code, (_vp, _lib.size)),
    ("tornado_websocket_options_set_compression", _lib.code, (_vp, ctypes.c_int)),
    ("tornado_websocket_options_set_no_context_takeover", _lib.code, (_vp, ctypes.c_bool, ctypes.c_bool)),
    ("tornado_websocket_options_set_server_max_window_bits", _lib.code, (_vp, ctypes.c_int)),
    ("tornado_websocket_options_set_client_max_window_bits", _lib.code, (_vp, ctypes.c_int)),
    ("tornado_websocket_options_set_ping", _lib.code, (_vp, ctypes.c_double, ctypes.c_double)),
    ("tornado_websocket_connect", _vp, (_vp, _vp, _vp)),
    ("tornado_websocket_ref", _vp, (_vp,)),
    ("tornado_websocket_unref", None, (_vp,)),
    ("tornado_websocket_read_message", _vp, (_vp,)),
    ("tornado_websocket_message_is_binary", ctypes.c_bool, (_vp,)),
    ("tornado_websocket_message_data", _lib.u8p, (_vp, ctypes.POINTER(_lib.size))),
    ("tornado_websocket_set_message_callback", _lib.code, (_vp, MESSAGE_CB, _vp, _lib.DROP)),
    ("tornado_websocket_set_ping_callback", _lib.code, (_vp, PING_CB, _vp, _lib.DROP)),
    ("tornado_websocket_write_message", _vp, (_vp, ctypes.c_char_p, _lib.size, ctypes.c_bool)),
    ("tornado_websocket_ping", _vp, (_vp, ctypes.c_char_p, _lib.size)),
    ("tornado_websocket_close", _vp, (_vp, ctypes.c_int, ctypes.c_char_p)),
    ("tornado_websocket_close_code", ctypes.c_int, (_vp,)),
    ("tornado_websocket_close_reason", ctypes.c_char_p, (_vp,)),
    ("tornado_websocket_subprotocol", ctypes.c_char_p, (_vp,)),
    ("tornado_websocket_extensions", ctypes.c_char_p, (_vp,)),
    ("tornado_websocket_is_closed", ctypes.c_bool, (_vp,)),
    ("tornado_future_result", _vp, (_vp,)),
]:
    fn = getattr(lib, _name)
    fn.restype = _res
    fn.argtypes = list(_args)

_DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024


def _message_value(ptr):
    """str for text, bytes for binary (copied out while the C message lives)."""
    n = _lib.size(0)
    data = lib.tornado_websocket_message_data(ptr, ctypes.byref(n))
    raw = ctypes.string_at(data, n.value) if n.value else b""
    return raw if lib.tornado_websocket_message_is_binary(ptr) else raw.decode("utf-8")


def _watch(c_future, on_done):
    """Calls on_done(c_future) from the library's loop when it is done;
    releases our reference to it."""
    key = registry.hold(on_done)
    if lib.tornado_future_add_done_callback_full(c_future, _c_done, key, _lib.release) != 0:
        registry.release(key)
        lib.tornado_future_unref(c_future)
        check(1, "add_done_callback")
    lib.tornado_future_unref(c_future)


@_lib.DONE_CB
def _c_done(c_future, key):
    on_done = registry.get(key)
    if on_done is not None:
        on_done(c_future)


def _outcome(c_future):
    """(code, message) of a done C future."""
    message = ctypes.c_char_p()
    rc = lib.tornado_future_error(c_future, ctypes.byref(message))
    return rc, (message.value or b"").decode("utf-8", "replace")


class RsWebSocketClientConnection:
    """Tornado's WebSocketClientConnection on a `tornado_websocket`."""

    def __init__(self, client, ptr, on_message_callback):
        self._client = client  # keeps the library loop alive
        self._ptr = ptr
        self.selected_subprotocol = (lib.tornado_websocket_subprotocol(ptr) or b"").decode() or None
        # The extensions the server agreed to ("permessage-deflate;
        # client_max_window_bits=9"), or None: the library's, not Tornado's.
        self.extensions = (lib.tornado_websocket_extensions(ptr) or b"").decode() or None
        self._on_message_callback = on_message_callback
        if on_message_callback is not None:
            # Weak: the registry must not keep the connection alive (its
            # __del__ releases the C handle, which releases the key).
            self._key = registry.hold(weakref.ref(self))
            check(lib.tornado_websocket_set_message_callback(ptr, _on_message, self._key, _lib.release),
                  "message callback")
        self._ping_key = registry.hold(weakref.ref(self))
        check(lib.tornado_websocket_set_ping_callback(ptr, _on_ping, self._ping_key, _lib.release), "ping callback")

    @property
    def close_code(self):
        return (lib.tornado_websocket_close_code(self._ptr) or None) if self._ptr else None

    @property
    def close_reason(self):
        if not self._ptr:
            return None
        reason = lib.tornado_websocket_close_reason(self._ptr)
        return reason.decode("utf-8") if reason is not None else None

    def read_message(self, callback=None):
        """A Future of the next message: str, bytes, or None once closed."""
        future = Future()
        if callback is not None:
            future.add_done_callback(callback)
        if not self._ptr:
            future.set_result(None)
            return future
        c_future = lib.tornado_websocket_read_message(self._ptr)
        if not c_future:
            future.set_result(None)
            return future

        def done(f):
            if future.done():
                return
            rc, _ = _outcome(f)
            value = lib.tornado_future_result(f) if rc == 0 else None
            # Tornado's read_message gives None for every end of the connection.
            future.set_result(_message_value(value) if value else None)

        _watch(c_future, done)
        return future

    def write_message(self, message, binary=False):
        """Sends a str/bytes (a dict as JSON); the Future is done once the
        message is on the wire."""
        if isinstance(message, dict):
            from tornado.escape import json_encode

            message = json_encode(message)
        data = utf8(message)
        if not self._ptr:
            raise WebSocketClosedError()
        c_future = lib.tornado_websocket_write_message(self._ptr, data, len(data), bool(binary))
        if not c_future:
            detail = (lib.tornado_last_error() or b"").decode()
            if "CLOSED" in detail:
                raise WebSocketClosedError()
            raise ValueError(detail)
        future = Future()

        def done(f):
            rc, message = _outcome(f)
            if future.done():
                return
            if rc == 0:
                future.set_result(None)
            else:
                future.set_exception(WebSocketClosedError())

        _watch(c_future, done)
        return future

    def ping(self, data=b""):
        data = utf8(data)
        if not self._ptr or lib.tornado_websocket_is_closed(self._ptr):
            raise WebSocketClosedError()
        c_future = lib.tornado_websocket_ping(self._ptr, data, len(data))
        if not c_future:
            detail = (lib.tornado_last_error() or b"").decode()
            if "CLOSED" in detail:
                raise WebSocketClosedError()
            raise ValueError(detail)
        lib.tornado_future_unref(c_future)

    def close(self, code=None, reason=None):
        """Starts the close handshake (Tornado's: not awaited)."""
        if not self._ptr:
            return
        if code is None and reason is not None:
            code = 1000
        c_future = lib.tornado_websocket_close(self._ptr, code or 0, utf8(reason) if reason else None)
        if c_future:
            lib.tornado_future_unref(c_future)

    def on_message(self, message):
        if self._on_message_callback is not None:
            return self._on_message_callback(message)

    def on_ping(self, data):
        """Called with each ping's payload (override it, as Tornado's)."""

    def on_pong(self, data):
        """Tornado's hook; the library answers pings itself."""

    def __del__(self):
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr and lib is not None:
            lib.tornado_websocket_unref(ptr)


@MESSAGE_CB
def _on_message(ptr, key):
    ref = registry.get(key)
    conn = ref() if ref is not None else None
    if conn is None:
        return
    try:
        conn.on_message(_message_value(ptr) if ptr else None)
    except Exception:  # noqa: BLE001 - as Tornado: logged, the connection goes on
        from tornado.log import app_log

        app_log.exception("Uncaught exception in the WebSocket message callback")


@PING_CB
def _on_ping(data, n, key):
    ref = registry.get(key)
    conn = ref() if ref is not None else None
    if conn is not None:
        try:
            conn.on_ping(ctypes.string_at(data, n) if n else b"")
        except Exception:  # noqa: BLE001 - logged
            from tornado.log import app_log

            app_log.exception("Uncaught exception in on_ping")


def _options(compression_options, ping_interval, ping_timeout, max_message_size, subprotocols):
    options = lib.tornado_websocket_options_new()
    try:
        for name in subprotocols or ():
            check(lib.tornado_websocket_options_add_subprotocol(options, utf8(name)), "subprotocols")
        check(lib.tornado_websocket_options_set_max_message_size(options, int(max_message_size)),
              "max_message_size")
        if compression_options is not None:
            level = compression_options.get("compression_level", 6)
            check(lib.tornado_websocket_options_set_compression(options, int(level)), "compression_options")
            bits = compression_options.get("client_max_window_bits")
            if bits is not None:
                check(lib.tornado_websocket_options_set_client_max_window_bits(options, int(bits)),
                      "client_max_window_bits")
        if ping_interval:
            check(lib.tornado_websocket_options_set_ping(options, float(ping_interval), float(ping_timeout or 0)),
                  "ping_interval")
    except BaseException:
        lib.tornado_websocket_options_free(options)
        raise
    return options


def websocket_connect(url, callback=None, connect_timeout=None, on_message_callback=None,
                      compression_options=None, ping_interval=None, ping_timeout=None,
                      max_message_size=_DEFAULT_MAX_MESSAGE_SIZE, subprotocols=None, resolver=None):
    """Tornado's `websocket_connect`: a Future of an
    `RsWebSocketClientConnection`. `url` is a ws:// or wss:// URL or an
    HTTPRequest; a refused handshake raises HTTPClientError with the
    server's status."""
    if resolver is not None:
        raise ValueError("tornado_rs.websocket_connect: resolver= is not supported; use a client's hostname_mapping")
    if isinstance(url, HTTPRequest):
        assert connect_timeout is None
        request = url
        # Copied, as Tornado's websocket_connect does (and a dict made HTTPHeaders).
        request.headers = httputil.HTTPHeaders(request.headers)
    else:
        request = HTTPRequest(url, connect_timeout=connect_timeout)
    request = _RequestProxy(request, HTTPRequest._DEFAULTS)
    client = RsAsyncHTTPClient()
    result = Future()
    if callback is not None:
        result.add_done_callback(callback)
    fetch = _Fetch(client, request, None)
    c_request = fetch._c_request()
    try:
        options = _options(compression_options, ping_interval, ping_timeout, max_message_size, subprotocols)
        try:
            c_future = lib.tornado_websocket_connect(client._client, c_request, options)
        finally:
            lib.tornado_websocket_options_free(options)
    finally:
        lib.tornado_http_request_free(c_request)
    if not c_future:
        detail = (lib.tornado_last_error() or b"").decode()
        raise ValueError(detail)

    def done(f):
        rc, message = _outcome(f)
        if result.done():
            return
        if rc != 0:
            result.set_exception(_handshake_error(rc, message))
            return
        ptr = lib.tornado_websocket_ref(lib.tornado_future_result(f))
        try:
            result.set_result(RsWebSocketClientConnection(client, ptr, on_message_callback))
        except BaseException as e:  # noqa: B902 - delivered through the future
            result.set_exception(e)

    _watch(c_future, done)
    return result


def _handshake_error(rc, message):
    """As Tornado: a refused handshake is HTTPClientError(status); the rest
    as the HTTP client's errors."""
    marker = "refused the WebSocket handshake: HTTP "
    if marker in message:
        status = message.split(marker, 1)[1].split(" ", 1)[0]
        if status.isdigit():
            return HTTPClientError(int(status), message=message)
    if message.startswith("protocol: WebSocket handshake"):
        return ValueError(message)
    return _error_for(message, rc, 0, 599)


__all__ = ["websocket_connect", "RsWebSocketClientConnection"]
