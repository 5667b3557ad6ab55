"""tornado_rs from Python, through ctypes, with Tornado's names.

    from tornado_rs import IOLoop, AsyncHTTPClient
    loop = IOLoop()
    response = loop.run_sync(AsyncHTTPClient(loop).fetch("http://127.0.0.1:8000/"))
    print(response.code, response.body)

The library is found through TORNADO_RS_LIB (a path to libtornado_rs.so),
else next to this file's repository (target/release), else by the system
loader. Callbacks are Python callables; each one is kept referenced until
the library says it will never call it again (a one-shot callback after its
call, a registration through its drop function), so none is collected early.
"""

import ctypes
import os
import threading

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load():
    candidates = [os.environ.get("TORNADO_RS_LIB")]
    for profile in ("release", "debug"):
        candidates.append(os.path.join(_HERE, "..", "..", "target", profile, "libtornado_rs.so"))
    candidates.append("libtornado_rs.so.0")
    for path in candidates:
        if path and (os.path.exists(path) or "/" not in path):
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    raise OSError("libtornado_rs.so not found: set TORNADO_RS_LIB")


_lib = _load()
_vp = ctypes.c_void_p
_code = ctypes.c_int32
_CALLBACK = ctypes.CFUNCTYPE(None, _vp)
_DROP = ctypes.CFUNCTYPE(None, _vp)
_FETCH_CB = ctypes.CFUNCTYPE(None, _vp, _vp)
_DONE_CB = ctypes.CFUNCTYPE(None, _vp, _vp)


def _sig(name, restype, *argtypes):
    fn = getattr(_lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)
    return fn


_sig("tornado_last_error", ctypes.c_char_p)
_sig("tornado_code_name", ctypes.c_char_p, _code)
_sig("tornado_version", ctypes.c_char_p)
_sig("tornado_loop_new", _vp)
_sig("tornado_loop_free", _code, _vp)
_sig("tornado_loop_start", _code, _vp)
_sig("tornado_loop_stop", _code, _vp)
_sig("tornado_loop_time", ctypes.c_double, _vp)
_sig("tornado_loop_add_callback_full", _code, _vp, _CALLBACK, _vp, _DROP)
_sig("tornado_loop_call_later_full", ctypes.c_uint64, _vp, ctypes.c_double, _CALLBACK, _vp, _DROP)
_sig("tornado_loop_remove_timeout", _code, _vp, ctypes.c_uint64)
_sig("tornado_loop_run_sync", _code, _vp, _vp, ctypes.c_double)
_sig("tornado_future_new", _vp, _vp)
_sig("tornado_future_unref", None, _vp)
_sig("tornado_future_done", ctypes.c_bool, _vp)
_sig("tornado_future_result", _vp, _vp)
_sig("tornado_future_error", _code, _vp, ctypes.POINTER(ctypes.c_char_p))
_sig("tornado_future_set_result", _code, _vp, _vp, _DROP)
_sig("tornado_future_add_done_callback", _code, _vp, _DONE_CB, _vp)
_sig("tornado_future_add_done_callback_full", _code, _vp, _DONE_CB, _vp, _DROP)
_sig("tornado_sleep", _vp, _vp, ctypes.c_double)
_sig("tornado_http_client_new", _vp, _vp, _vp)
_sig("tornado_http_client_free", _code, _vp)
_sig("tornado_http_client_options_new", _vp)
_sig("tornado_http_client_options_free", None, _vp)
_sig("tornado_http_client_options_set_max_clients", _code, _vp, ctypes.c_size_t)
_sig("tornado_http_client_fetch_cb", _code, _vp, _vp, _FETCH_CB, _vp)
_sig("tornado_http_client_fetch_cb_full", _code, _vp, _vp, _FETCH_CB, _vp, _DROP)
_sig("tornado_http_request_new", _vp, ctypes.c_char_p)
_sig("tornado_http_request_free", None, _vp)
_sig("tornado_http_request_set_method", _code, _vp, ctypes.c_char_p)
_sig("tornado_http_request_add_header", _code, _vp, ctypes.c_char_p, ctypes.c_char_p)
_sig("tornado_http_request_set_body", _code, _vp, ctypes.c_char_p, ctypes.c_size_t)
_sig("tornado_http_request_set_connect_timeout", _code, _vp, ctypes.c_double)
_sig("tornado_http_request_set_request_timeout", _code, _vp, ctypes.c_double)
_sig("tornado_http_request_set_follow_redirects", _code, _vp, ctypes.c_bool)
_sig("tornado_http_request_set_validate_cert", _code, _vp, ctypes.c_bool)
_sig("tornado_http_request_set_http_version", _code, _vp, ctypes.c_uint32)
_sig("tornado_http_response_version", ctypes.c_int, _vp)
_sig("tornado_http_response_code", ctypes.c_int, _vp)
_sig("tornado_http_response_reason", ctypes.c_char_p, _vp)
_sig("tornado_http_response_body", ctypes.POINTER(ctypes.c_uint8), _vp, ctypes.POINTER(ctypes.c_size_t))
_sig("tornado_http_response_header_count", ctypes.c_size_t, _vp)
_sig("tornado_http_response_header_at", _code, _vp, ctypes.c_size_t, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p))
_sig("tornado_http_response_effective_url", ctypes.c_char_p, _vp)
_sig("tornado_http_response_request_time", ctypes.c_double, _vp)
_sig("tornado_http_response_error", ctypes.c_char_p, _vp)
_sig("tornado_http_response_error_code", _code, _vp)

__version__ = _lib.tornado_version().decode()


class TornadoError(Exception):
    """A failed call: `code` is the TORNADO_ERR_* value."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _check(code, what):
    if code != 0:
        raise TornadoError(code, "%s: %s" % (what, (_lib.tornado_last_error() or b"").decode()))


class _Registry:
    """Keeps Python callables (and their ctypes trampolines) alive while the
    library may call them; keyed by an integer passed as the userdata."""

    def __init__(self):
        self._lock = threading.Lock()
        self._next = 1
        self._held = {}

    def hold(self, obj):
        with self._lock:
            key = self._next
            self._next += 1
            self._held[key] = obj
            return key

    def get(self, key):
        with self._lock:
            return self._held.get(key)

    def release(self, key):
        with self._lock:
            self._held.pop(key, None)


_registry = _Registry()


@_CALLBACK
def _run_callback(ud):
    fn = _registry.get(ud)
    if fn is not None:
        fn()


@_DROP
def _drop_callback(ud):
    _registry.release(ud)


class HTTPResponse:
    """A copy of a response: code, reason, headers, body, effective_url,
    error (None when a response was received), request_time, http_version."""

    def __init__(self, ptr):
        self.code = _lib.tornado_http_response_code(ptr)
        self.reason = (_lib.tornado_http_response_reason(ptr) or b"").decode()
        n = ctypes.c_size_t(0)
        data = _lib.tornado_http_response_body(ptr, ctypes.byref(n))
        self.body = ctypes.string_at(data, n.value) if n.value else b""
        self.headers = []
        for i in range(_lib.tornado_http_response_header_count(ptr)):
            name, value = ctypes.c_char_p(), ctypes.c_char_p()
            if _lib.tornado_http_response_header_at(ptr, i, ctypes.byref(name), ctypes.byref(value)) == 0:
                self.headers.append((name.value.decode("latin-1"), value.value.decode("latin-1")))
        self.effective_url = _lib.tornado_http_response_effective_url(ptr).decode()
        error = _lib.tornado_http_response_error(ptr)
        self.error = error.decode() if error else None
        self.error_code = _lib.tornado_http_response_error_code(ptr)
        self.request_time = _lib.tornado_http_response_request_time(ptr)
        # "1.0", "1.1" or "2"; None when no response was received.
        self.http_version = {10: "1.0", 11: "1.1", 20: "2"}.get(_lib.tornado_http_response_version(ptr))

    def header(self, name):
        """The first value of `name` (case-insensitive), or None."""
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None


class Future:
    """A Python-side future completed from the loop (done callbacks run on
    the loop thread)."""

    def __init__(self):
        self._done = False
        self._result = None
        self._exception = None
        self._callbacks = []

    def done(self):
        return self._done

    def result(self):
        if not self._done:
            raise TornadoError(12, "the future is not done")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self):
        return self._exception

    def set_result(self, value):
        self._finish(value, None)

    def set_exception(self, exc):
        self._finish(None, exc)

    def add_done_callback(self, fn):
        if self._done:
            fn(self)
        else:
            self._callbacks.append(fn)

    def _finish(self, value, exc):
        if self._done:
            raise TornadoError(4, "the future is already done")
        self._done, self._result, self._exception = True, value, exc
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)


class IOLoop:
    """tornado.ioloop.IOLoop over the library's loop."""

    def __init__(self):
        self._ptr = _lib.tornado_loop_new()
        if not self._ptr:
            _check(1, "tornado_loop_new")

    def close(self):
        if self._ptr:
            _check(_lib.tornado_loop_free(self._ptr), "tornado_loop_free")
            self._ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def time(self):
        return _lib.tornado_loop_time(self._ptr)

    def start(self):
        _check(_lib.tornado_loop_start(self._ptr), "tornado_loop_start")

    def stop(self):
        """Any thread."""
        _lib.tornado_loop_stop(self._ptr)

    def add_callback(self, fn, *args):
        """Runs fn(*args) on the next iteration. Any thread."""
        key = _registry.hold(lambda: fn(*args))
        code = _lib.tornado_loop_add_callback_full(self._ptr, _run_callback, key, _drop_callback)
        if code != 0:
            _registry.release(key)
            _check(code, "add_callback")

    def call_later(self, delay, fn, *args):
        """Runs fn(*args) after `delay` seconds; returns a handle for remove_timeout."""
        key = _registry.hold(lambda: fn(*args))
        handle = _lib.tornado_loop_call_later_full(self._ptr, float(delay), _run_callback, key, _drop_callback)
        if handle == 0:
            _registry.release(key)
            _check(1, "call_later")
        return handle

    def remove_timeout(self, handle):
        _check(_lib.tornado_loop_remove_timeout(self._ptr, handle), "remove_timeout")

    def run_sync(self, future, timeout=None):
        """Runs the loop until `future` (a Future) is done; returns its result."""
        future.add_done_callback(lambda f: self.stop())
        timer = self.call_later(timeout, self.stop) if timeout else None
        if not future.done():
            self.start()
        if timer is not None and future.done():
            try:
                self.remove_timeout(timer)
            except TornadoError:
                pass
        if not future.done():
            raise TornadoError(7, "run_sync timed out after %s seconds" % timeout)
        return future.result()


# http_version values and their TORNADO_HTTP_VERSION_* numbers.
HTTP_VERSIONS = {"any": 0, "1.1": 1, "2": 2, "2-prior-knowledge": 3}


class HTTPRequest:
    """tornado.httpclient.HTTPRequest's common fields, and http_version:
    None (the client's default, "any": https negotiates h2 or HTTP/1.1),
    "1.1", "2" or "2-prior-knowledge" (HTTP/2 without negotiation, h2c)."""

    def __init__(self, url, method="GET", headers=None, body=None, connect_timeout=None,
                 request_timeout=None, follow_redirects=True, validate_cert=True, http_version=None):
        if http_version is not None and http_version not in HTTP_VERSIONS:
            raise ValueError("http_version must be None or one of %s" % ", ".join(HTTP_VERSIONS))
        self.http_version = http_version
        self.url, self.method, self.headers, self.body = url, method, headers or {}, body
        self.connect_timeout, self.request_timeout = connect_timeout, request_timeout
        self.follow_redirects, self.validate_cert = follow_redirects, validate_cert

    def _build(self):
        r = _lib.tornado_http_request_new(self.url.encode())
        if not r:
            _check(1, "HTTPRequest")
        try:
            _check(_lib.tornado_http_request_set_method(r, self.method.encode()), "method")
            items = self.headers.items() if isinstance(self.headers, dict) else self.headers
            for name, value in items:
                _check(_lib.tornado_http_request_add_header(r, name.encode(), value.encode()), "header")
            if self.body is not None:
                body = self.body.encode() if isinstance(self.body, str) else bytes(self.body)
                _check(_lib.tornado_http_request_set_body(r, body, len(body)), "body")
            if self.connect_timeout is not None:
                _check(_lib.tornado_http_request_set_connect_timeout(r, float(self.connect_timeout)), "connect_timeout")
            if self.request_timeout is not None:
                _check(_lib.tornado_http_request_set_request_timeout(r, float(self.request_timeout)), "request_timeout")
            _check(_lib.tornado_http_request_set_follow_redirects(r, bool(self.follow_redirects)), "follow_redirects")
            _check(_lib.tornado_http_request_set_validate_cert(r, bool(self.validate_cert)), "validate_cert")
            if self.http_version is not None:
                _check(_lib.tornado_http_request_set_http_version(r, HTTP_VERSIONS[self.http_version]),
                       "http_version")
        except Exception:
            _lib.tornado_http_request_free(r)
            raise
        return r


class HTTPClientError(TornadoError):
    """A fetch that got no response (code 599 in Tornado); `response` has it all."""

    def __init__(self, response):
        super().__init__(response.error_code, response.error)
        self.response = response


@_FETCH_CB
def _on_fetched(response_ptr, ud):
    # The registry entry is released by _drop_callback, right after this
    # call, or alone if the fetch is released uncalled (its loop freed first).
    future = _registry.get(ud)
    if future is None:
        return
    response = HTTPResponse(response_ptr)
    if response.code == 599 and response.error:
        future.set_exception(HTTPClientError(response))
    else:
        future.set_result(response)


class AsyncHTTPClient:
    """tornado.httpclient.AsyncHTTPClient: fetch() returns a Future."""

    def __init__(self, loop, max_clients=10):
        options = _lib.tornado_http_client_options_new()
        _lib.tornado_http_client_options_set_max_clients(options, max_clients)
        self._ptr = _lib.tornado_http_client_new(loop._ptr, options)
        _lib.tornado_http_client_options_free(options)
        if not self._ptr:
            _check(1, "AsyncHTTPClient")

    def fetch(self, request, **kwargs):
        """Fetches a URL or an HTTPRequest. The Future's result is an
        HTTPResponse (any status); it fails with HTTPClientError when no
        response was received (the error's kind starts its message)."""
        if isinstance(request, str):
            request = HTTPRequest(request, **kwargs)
        r = request._build()
        future = Future()
        key = _registry.hold(future)
        try:
            code = _lib.tornado_http_client_fetch_cb_full(self._ptr, r, _on_fetched, key, _drop_callback)
        finally:
            _lib.tornado_http_request_free(r)
        if code != 0:
            _registry.release(key)
            _check(code, "fetch")
        return future

    def close(self):
        """Fetches still in flight end with a 'closed' error."""
        if self._ptr:
            _lib.tornado_http_client_free(self._ptr)
            self._ptr = None


# ---- WebSocket (tornado.websocket.websocket_connect) ----

_sig("tornado_websocket_options_new", _vp)
_sig("tornado_websocket_options_free", None, _vp)
_sig("tornado_websocket_options_add_subprotocol", _code, _vp, ctypes.c_char_p)
_sig("tornado_websocket_options_set_max_message_size", _code, _vp, ctypes.c_size_t)
_sig("tornado_websocket_options_set_compression", _code, _vp, ctypes.c_int)
_sig("tornado_websocket_connect", _vp, _vp, _vp, _vp)
_sig("tornado_websocket_ref", _vp, _vp)
_sig("tornado_websocket_unref", None, _vp)
_sig("tornado_websocket_read_message", _vp, _vp)
_sig("tornado_websocket_message_is_binary", ctypes.c_bool, _vp)
_sig("tornado_websocket_message_data", ctypes.POINTER(ctypes.c_uint8), _vp, ctypes.POINTER(ctypes.c_size_t))
_sig("tornado_websocket_write_message", _vp, _vp, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool)
_sig("tornado_websocket_close", _vp, _vp, ctypes.c_int, ctypes.c_char_p)
_sig("tornado_websocket_close_code", ctypes.c_int, _vp)
_sig("tornado_websocket_close_reason", ctypes.c_char_p, _vp)
_sig("tornado_websocket_subprotocol", ctypes.c_char_p, _vp)


def _c_future_to_python(c_future, value_of):
    """A Future completed from the loop with value_of(c_future) or a
    TornadoError; the C future's reference is given up."""
    future = Future()

    def done(_f, _ud):
        message = ctypes.c_char_p()
        code = _lib.tornado_future_error(c_future, ctypes.byref(message))
        if code != 0:
            future.set_exception(TornadoError(code, (message.value or b"").decode("utf-8", "replace")))
        else:
            try:
                future.set_result(value_of(c_future))
            except BaseException as e:  # noqa: B902 - delivered through the future
                future.set_exception(e)

    callback = _DONE_CB(done)
    key = _registry.hold(callback)  # kept until the drop function runs
    code = _lib.tornado_future_add_done_callback_full(c_future, callback, key, _drop_callback)
    _lib.tornado_future_unref(c_future)
    if code != 0:
        _registry.release(key)
        _check(code, "add_done_callback")
    return future


class WebSocketClientConnection:
    """tornado.websocket.WebSocketClientConnection: read_message() gives
    str (text), bytes (binary), or None once the connection closed
    cleanly (it fails with TornadoError when the connection broke)."""

    def __init__(self, ptr):
        self._ptr = ptr
        sub = _lib.tornado_websocket_subprotocol(ptr)
        self.selected_subprotocol = sub.decode() if sub else None

    def read_message(self):
        c_future = _lib.tornado_websocket_read_message(self._ptr)
        if not c_future:
            _check(1, "read_message")

        def value(f):
            message = _lib.tornado_future_result(f)
            if not message:
                return None
            n = ctypes.c_size_t(0)
            data = _lib.tornado_websocket_message_data(message, ctypes.byref(n))
            raw = ctypes.string_at(data, n.value) if n.value else b""
            return raw if _lib.tornado_websocket_message_is_binary(message) else raw.decode("utf-8")

        return _c_future_to_python(c_future, value)

    def write_message(self, message, binary=False):
        """A Future done when the message is on the wire."""
        data = message.encode() if isinstance(message, str) else bytes(message)
        c_future = _lib.tornado_websocket_write_message(self._ptr, data, len(data), bool(binary))
        if not c_future:
            _check(1, "write_message")
        return _c_future_to_python(c_future, lambda f: None)

    def close(self, code=1000, reason=None):
        """Starts the close handshake; the Future is done when it completes."""
        c_future = _lib.tornado_websocket_close(self._ptr, code or 0, reason.encode() if reason else None)
        if not c_future:
            _check(1, "close")
        return _c_future_to_python(c_future, lambda f: None)

    @property
    def close_code(self):
        return _lib.tornado_websocket_close_code(self._ptr) or None

    @property
    def close_reason(self):
        reason = _lib.tornado_websocket_close_reason(self._ptr)
        return reason.decode() if reason is not None else None

    def __del__(self):
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            _lib.tornado_websocket_unref(ptr)


def websocket_connect(client, request, subprotocols=(), compression=False, max_message_size=None):
    """Opens a WebSocket (a ws:// or wss:// URL or an HTTPRequest) through
    `client`'s connections; a Future of a WebSocketClientConnection."""
    if isinstance(request, str):
        request = HTTPRequest(request)
    r = request._build()
    options = _lib.tornado_websocket_options_new()
    try:
        for name in subprotocols:
            _check(_lib.tornado_websocket_options_add_subprotocol(options, name.encode()), "subprotocol")
        if compression:
            _check(_lib.tornado_websocket_options_set_compression(options, 6), "compression")
        if max_message_size is not None:
            _check(_lib.tornado_websocket_options_set_max_message_size(options, max_message_size), "max_message_size")
        c_future = _lib.tornado_websocket_connect(client._ptr, r, options)
    finally:
        _lib.tornado_websocket_options_free(options)
        _lib.tornado_http_request_free(r)
    if not c_future:
        _check(1, "websocket_connect")
    return _c_future_to_python(
        c_future, lambda f: WebSocketClientConnection(_lib.tornado_websocket_ref(_lib.tornado_future_result(f))))
