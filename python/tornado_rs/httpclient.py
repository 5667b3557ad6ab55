"""`RsAsyncHTTPClient`: Tornado's `AsyncHTTPClient` on libtornado_rs.

    AsyncHTTPClient.configure("tornado_rs.httpclient.RsAsyncHTTPClient")

The library's loop runs inside the current Tornado (asyncio) loop: its
backend fd is watched with `add_handler` and its next timer with
`call_later`, and each wake-up runs one `tornado_loop_run_once(loop, 0)`.
No thread, no polling; an idle client uses no CPU. One library client per
`RsAsyncHTTPClient` (Tornado keeps one of those per IOLoop).
"""

import ctypes
import io
import os
import time
import weakref

import tornado

from tornado import httputil
from tornado.concurrent import Future as TornadoFuture
from tornado.escape import utf8
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.ioloop import IOLoop
from tornado.log import app_log, gen_log
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError

from . import _lib
from ._lib import check, lib, registry

_MISSING = object()
_TORNADO_USER_AGENT = ("Tornado/%s" % tornado.version).encode()


class _LoopBridge:
    """The library's loop, driven from a Tornado IOLoop."""

    def __init__(self, io_loop):
        self.io_loop = io_loop
        self.ptr = lib.tornado_loop_new()
        if not self.ptr:
            check(1, "tornado_loop_new")
        self.fd = lib.tornado_loop_backend_fd(self.ptr)
        self._timer = None
        self._deadline = 0.0
        self._running = False
        # A KeyboardInterrupt or SystemExit raised in a Python callback
        # inside the library: raised again once the library returns, so
        # Ctrl-C stops the program at once instead of being swallowed.
        self.interrupt = None
        io_loop.add_handler(self.fd, self._on_fd, IOLoop.READ)
        self.kick()

    def _on_fd(self, fd, events):
        self.run()

    def run(self):
        """One iteration of the library's loop, then the next wake-up."""
        if self.ptr is None or self._running:
            return
        self._running = True
        try:
            lib.tornado_loop_run_once(self.ptr, 0.0)
        finally:
            self._running = False
        self.kick()
        interrupt, self.interrupt = self.interrupt, None
        if interrupt is not None:
            raise interrupt

    def kick(self):
        """Arms the timer for the library's next due work (kept when it
        already fires in time: re-arming costs more than the check)."""
        if self.ptr is None:
            return
        due = lib.tornado_loop_backend_timeout(self.ptr)
        if due < 0:
            if self._timer is not None:
                self.io_loop.remove_timeout(self._timer)
                self._timer = None
            return
        deadline = self.io_loop.time() + due
        if self._timer is not None:
            if self._deadline <= deadline:
                return
            self.io_loop.remove_timeout(self._timer)
        self._deadline = deadline
        self._timer = self.io_loop.call_later(due, self._on_timer)

    def _on_timer(self):
        self._timer = None
        self.run()

    def close(self):
        if self.ptr is None:
            return
        self.io_loop.remove_handler(self.fd)
        if self._timer is not None:
            self.io_loop.remove_timeout(self._timer)
        lib.tornado_loop_run_once(self.ptr, 0.0)
        lib.tornado_loop_free(self.ptr)
        self.ptr = None


def _error_for(kind_message, code, os_error, response_code):
    """The exception Tornado's simple client raises for a failed fetch (and
    the INFO line it logs for a malformed response)."""
    kind, _, detail = kind_message.partition(": ")
    if os_error:
        return OSError(os_error, os.strerror(os_error))
    if kind == "timeout":
        return HTTPTimeoutError(detail or "Timeout")
    if kind == "protocol":
        gen_log.info("Malformed HTTP message from None: %s", detail)
        return HTTPStreamClosedError("Stream closed")
    if kind == "tls":
        # As Tornado's IOStream: one warning, no stack, then ssl.SSLError.
        import ssl

        gen_log.warning("SSL Error: %s", detail)
        return ssl.SSLError(detail)
    if kind == "body_too_large":
        # Tornado's simple client logs this for the codings it decodes
        # (gzip, deflate); for brotli and zstd, which only curl's client
        # decodes, the fetch ends as curl's does, without it.
        if not detail.endswith(("(brotli)", "(zstd)")):
            gen_log.info("Malformed HTTP message from None: %s", detail)
        return HTTPStreamClosedError("Stream closed")
    if kind == "header_too_large":
        # Tornado's IOStream: the head did not fit its read limit.
        from tornado.iostream import UnsatisfiableReadError

        gen_log.info("Unsatisfiable read, closing connection: %s", detail)
        return UnsatisfiableReadError(detail)
    if kind == "closed":
        return HTTPStreamClosedError("Stream closed")
    if kind in ("invalid_request", "invalid_url"):
        return ValueError(detail)
    if code >= _lib.ERR_USER:
        return HTTPClientError(599, message=detail or kind_message)
    return HTTPClientError(response_code or 599, message=kind_message)


def _header_block(ptr):
    """The response's header fields as received, one "Name: value\\r\\n"
    line each (bytes), read out in one call while the response lives."""
    n = _lib.size(0)
    block = lib.tornado_http_response_header_block(ptr, ctypes.byref(n))
    return ctypes.string_at(block, n.value) if n.value else b""


class _LazyHeaders(httputil.HTTPHeaders):
    """Tornado's HTTPHeaders, filled (and validated, as Tornado does) on
    first use: most callers read the code and body only."""

    def __init__(self, block):  # noqa: super().__init__ runs on first use
        self.__dict__["_pending"] = block

    def __getattr__(self, name):
        pending = self.__dict__.pop("_pending", None)
        if pending is None:
            raise AttributeError(name)
        httputil.HTTPHeaders.__init__(self)
        for line in pending.decode("latin-1").split("\r\n"):
            if line:
                key, _, value = line.partition(": ")
                self.add(key, value)
        return getattr(self, name)


# http_version values and their TORNADO_HTTP_VERSION_* numbers.
HTTP_VERSIONS = {None: 0, "any": 0, "1.1": 1, "2": 2, "2-prior-knowledge": 3}
_VERSION_NAMES = {10: "1.0", 11: "1.1", 20: "2"}


class RsAsyncHTTPClient(AsyncHTTPClient):
    """Tornado's AsyncHTTPClient interface on libtornado_rs."""

    def initialize(self, max_clients=10, hostname_mapping=None, max_buffer_size=104857600, resolver=None,
                   defaults=None, max_header_size=None, max_body_size=None, http_version=None,
                   cookies=False, dns_cache_ttl=None, unix_socket=None, public_suffix_file=None,
                   http2_ping=None, proxy_ca_certs=None, proxy_validate_cert=True):
        """Tornado's arguments, and the library's:

        - ``http_version``: which HTTP versions fetches may use -- None or
          "any" (https negotiates h2 or HTTP/1.1 by ALPN, plain http is
          HTTP/1.1), "1.1", "2" (h2 by ALPN, falling back to HTTP/1.1) or
          "2-prior-knowledge" (HTTP/2 without negotiation, also h2c). Each
          response's ``http_version`` attribute says which one it came over
          ("1.0", "1.1" or "2"; None when none was received).
        - ``cookies``: keep a cookie jar (RFC 6265) for this client, sent
          back across redirects and fetches (off by default, as Tornado);
          see `load_cookies`, `save_cookies`.
        - ``dns_cache_ttl``: seconds the threaded resolver keeps an answer
          (None: the library's 60; 0: no cache).
        - ``unix_socket``: connect every fetch to this Unix domain socket
          instead of the URL's host (curl's ``--unix-socket``; Docker's
          API), the URL still giving Host and path.
        - ``public_suffix_file``: the public suffix list the cookie jar
          refuses ``Domain=`` cookies for, a file in publicsuffix.org's
          format (Debian's /usr/share/publicsuffix/public_suffix_list.dat);
          None: the list built in. Used with ``cookies=True`` only, and
          read then: a missing file raises OSError, one that is no such
          list ValueError.
        - ``http2_ping``: ``(idle_s, timeout_s)``: a pooled HTTP/2
          connection idle ``idle_s`` seconds must answer a PING within
          ``timeout_s`` before a fetch reuses it, else another is opened
          (None: the library's 5 and 2; ``idle_s`` 0: no check). Negative,
          NaN or infinite values, or a ``timeout_s`` of 0, raise ValueError.
        - ``proxy_ca_certs``: a PEM file of the CAs an ``https://`` proxy's
          certificate is checked against (curl's ``--proxy-cacert``; None:
          the system's store), read when a connection to the proxy starts
          (an unreadable file fails that fetch with ssl.SSLError, as
          Tornado's own clients report TLS failures).
        - ``proxy_validate_cert``: False skips the https:// proxy's
          certificate check (curl's ``--proxy-insecure``, for tests). The
          target's certificate still follows ``validate_cert``/``ca_certs``.
          Both proxy options may also be given per request, as attributes
          of an HTTPRequest (``request.proxy_ca_certs = path``) or in
          ``defaults``.

        brotli and zstd bodies are decoded as gzip is, and ``proxy_host``
        may be a proxy URL (``socks5h://127.0.0.1:1080``, ``socks4a://``,
        ``http://``).
        """
        super().initialize(defaults=defaults)
        if http_version not in HTTP_VERSIONS:
            raise ValueError("http_version must be one of %s" % ", ".join(map(repr, HTTP_VERSIONS)))
        self.max_clients = max_clients
        self._unix_socket = utf8(unix_socket) if unix_socket else None
        self._proxy_tls = {"proxy_ca_certs": proxy_ca_certs,
                           "proxy_validate_cert": proxy_validate_cert is None or bool(proxy_validate_cert)}
        self._bridge = _LoopBridge(self.io_loop)
        options = lib.tornado_http_client_options_new()
        try:
            check(lib.tornado_http_client_options_set_max_clients(options, max_clients), "max_clients")
            check(lib.tornado_http_client_options_set_http_version(options, HTTP_VERSIONS[http_version]),
                  "http_version")
            check(lib.tornado_http_client_options_set_max_buffer_size(options, max_buffer_size), "max_buffer_size")
            if max_header_size is not None:
                check(lib.tornado_http_client_options_set_max_header_size(options, max_header_size), "max_header_size")
            check(lib.tornado_http_client_options_set_max_body_size(options, max_body_size or max_buffer_size),
                  "max_body_size")
            for key, value in (hostname_mapping or {}).items():
                self._map(options, key, value)
            if resolver is not None:
                self._resolver_key = registry.hold((self, resolver))
                check(lib.tornado_http_client_options_set_resolver(options, _resolve, self._resolver_key,
                                                                   _lib.release), "resolver")
            if cookies:
                check(lib.tornado_http_client_options_set_cookies(options, True), "cookies")
            if dns_cache_ttl is not None:
                check(lib.tornado_http_client_options_set_dns_cache_ttl(options, float(dns_cache_ttl)),
                      "dns_cache_ttl")
            if http2_ping is not None:
                idle, timeout = http2_ping
                rc = lib.tornado_http_client_options_set_http2_ping(options, float(idle), float(timeout))
                if rc == _lib.ERR_INVALID:
                    raise ValueError("http2_ping: " + _lib.last_error())
                check(rc, "http2_ping")
            if public_suffix_file is not None:
                path = utf8(os.fspath(public_suffix_file))
                if b"\0" in path:
                    raise ValueError("public_suffix_file: a NUL byte in the path")
                rc = lib.tornado_http_client_options_set_public_suffix_file(options, path)
                if rc == _lib.ERR_INVALID:
                    raise ValueError("public_suffix_file: " + _lib.last_error())
                check(rc, "public_suffix_file")
            self._client = lib.tornado_http_client_new(self._bridge.ptr, options)
            if not self._client:
                message = _lib.last_error()
                if public_suffix_file is not None and cookies:
                    # The list is read here: the message names the file and
                    # starts with the code's name.
                    raise (OSError if message.startswith("TORNADO_ERR_IO") else ValueError)(
                        "public_suffix_file: " + message)
                check(1, "tornado_http_client_new")
        except BaseException:
            # A refused option: the library's loop goes with the client
            # that was not made (no fd left registered on the IOLoop).
            self._bridge.close()
            raise
        finally:
            lib.tornado_http_client_options_free(options)
        self._pending = {}

    @staticmethod
    def _map(options, key, value):
        if isinstance(key, tuple):
            (host, port), (to_host, to_port) = key[:2], value[:2]
            check(lib.tornado_http_client_options_add_endpoint_mapping(options, utf8(host), port, utf8(to_host),
                                                                       to_port), "hostname_mapping")
        else:
            check(lib.tornado_http_client_options_add_hostname_mapping(options, utf8(key), utf8(value)),
                  "hostname_mapping")

    def load_cookies(self, path):
        """Adds the cookies of a curl (Netscape) cookie file to the jar; a
        malformed file raises ValueError (naming the line) and adds none."""
        self._cookie_call(lib.tornado_http_client_load_cookies, path)

    def save_cookies(self, path):
        """Writes the jar as a curl (Netscape) cookie file."""
        self._cookie_call(lib.tornado_http_client_save_cookies, path)

    @property
    def cookie_count(self):
        """Unexpired cookies in the jar (0 when cookies are off)."""
        return lib.tornado_http_client_cookie_count(self._client) if self._client else 0

    def _cookie_call(self, fn, path):
        rc = fn(self._client, utf8(os.fspath(path)))
        if rc == _lib.ERR_IO:
            raise OSError(_lib.last_error())
        if rc != 0:
            raise ValueError(_lib.last_error())

    @property
    def queue(self):
        return range(lib.tornado_http_client_queued(self._client)) if self._client else range(0)

    def close(self):
        if getattr(self, "_client", None):
            lib.tornado_http_client_free(self._client)
            self._client = None
            self._bridge.run()
            self._bridge.close()
        super().close()

    def fetch_impl(self, request, callback):
        fetch = _Fetch(self, request, callback)
        fetch.start()


class _Fetch:
    """One fetch_impl call: the C request, its callbacks, the response."""

    def __init__(self, client, request, callback):
        self.client = client
        self.request = request
        self.callback = callback
        self.start_wall = time.time()
        self.error = None  # an exception raised by a Python callback

    def start(self):
        req = self._c_request()
        try:
            key = registry.hold(self)
            rc = lib.tornado_http_client_fetch_cb_full(self.client._client, req, _fetched, key, _lib.release)
            if rc != 0:
                registry.release(key)
                check(rc, "fetch")
        finally:
            lib.tornado_http_request_free(req)
        # No re-arming here: new work wakes the library's fd (its embedding
        # rule), which runs the loop.

    def _c_request(self):
        r = self.request
        req = lib.tornado_http_request_new(utf8(r.url))
        if not req:
            raise ValueError((lib.tornado_last_error() or b"bad URL").decode())
        try:
            self._fill(req, r)
        except _lib.TornadoRsError as e:
            lib.tornado_http_request_free(req)
            if e.code == _lib.ERR_INVALID:
                raise ValueError(str(e)) from None
            raise
        except BaseException:
            lib.tornado_http_request_free(req)
            raise
        return req

    def _fill(self, req, proxy):
        """Sets on the C request what differs from the library's defaults
        (which are Tornado's): one ctypes call per field actually given."""
        # The request's own values, then the client's defaults: read once,
        # not through _RequestProxy's per-attribute lookups.
        given = {k: v for k, v in vars(proxy.request).items() if v is not None}
        r = dict(proxy.defaults or ())
        r.update(given)
        get = r.get

        def set_(fn, *args):
            check(getattr(lib, "tornado_http_request_set_" + fn)(req, *args), fn)

        method = get("method", "GET")
        if method != "GET":
            set_("method", utf8(method))
        headers = get("_headers")
        if headers:
            for name, value in headers.get_all():
                value = value.encode("latin-1") if isinstance(value, str) else bytes(value)
                check(lib.tornado_http_request_add_header_bytes(req, utf8(name), value, len(value)), "header")
        body = get("_body")
        if body is not None:
            body = utf8(body)
            set_("body", body, len(body))
        for name in ("connect_timeout", "request_timeout"):
            if get(name, 20.0) != 20.0:
                set_(name, float(get(name) or 0))
        if not get("follow_redirects", True):
            set_("follow_redirects", False)
        if get("max_redirects", 5) != 5:
            set_("max_redirects", int(get("max_redirects")))
        # Tornado's default User-Agent, as its own clients send it.
        if get("user_agent"):
            set_("user_agent", utf8(get("user_agent")))
        elif not headers or "User-Agent" not in headers:
            set_("user_agent", _TORNADO_USER_AGENT)
        if get("auth_username") is not None:
            set_("auth", utf8(get("auth_username")), utf8(get("auth_password") or ""))
            mode = get("auth_mode") or "basic"
            if mode not in ("basic", "digest"):
                raise ValueError("unsupported auth_mode %s" % mode)
            if mode != "basic":
                set_("auth_mode", utf8(mode))
        if not get("decompress_response", True):
            set_("decompress_response", False)
        if not get("validate_cert", True):
            set_("validate_cert", False)
        if get("ca_certs"):
            set_("ca_certs", utf8(get("ca_certs")))
        if get("client_cert"):
            key = get("client_key")
            set_("client_cert", utf8(get("client_cert")), utf8(key) if key else None)
        if get("allow_ipv6") is False:  # None: Tornado's default, True
            set_("allow_ipv6", False)
        if get("ssl_options") is not None:
            self._ssl_options(req, get("ssl_options"))
        if get("network_interface"):
            set_("network_interface", utf8(get("network_interface")))
        unix_socket = getattr(self.client, "_unix_socket", None)
        if unix_socket:
            set_("unix_socket", unix_socket)
        if get("proxy_host"):
            if (get("proxy_auth_mode") or "basic") != "basic":
                raise ValueError("Unsupported proxy_auth_mode %s" % get("proxy_auth_mode"))
            user, password = get("proxy_username"), get("proxy_password")
            set_("proxy", utf8(get("proxy_host")), int(get("proxy_port") or 0),
                 utf8(user) if user else None, utf8(password) if password else None)
            proxy_tls = getattr(self.client, "_proxy_tls", {})
            proxy_ca = get("proxy_ca_certs", proxy_tls.get("proxy_ca_certs"))
            if proxy_ca:
                proxy_ca = utf8(os.fspath(proxy_ca))
                if b"\0" in proxy_ca:
                    raise ValueError("proxy_ca_certs: a NUL byte in the path")
                set_("proxy_ca_certs", proxy_ca)
            if not get("proxy_validate_cert", proxy_tls.get("proxy_validate_cert", True)):
                set_("proxy_validate_cert", False)
        if get("allow_nonstandard_methods"):
            set_("allow_nonstandard_methods", True)
        if get("expect_100_continue"):
            set_("expect_100_continue", True)
        if get("header_callback") is not None:
            set_("header_callback", _header_line, registry.hold(self), _lib.release)
        if get("streaming_callback") is not None:
            set_("streaming_callback_async", _chunk, registry.hold(self), _lib.release)
        if get("body_producer") is not None:
            set_("body_producer_async", _produce, registry.hold(self), _lib.release)

    @staticmethod
    def _ssl_options(req, options):
        """Tornado's ssl_options (a dict of ssl.wrap_socket arguments or an
        SSLContext) as the library's per-request TLS settings."""
        import ssl

        def set_(fn, *args):
            check(getattr(lib, "tornado_http_request_set_" + fn)(req, *args), fn)

        if isinstance(options, ssl.SSLContext):
            set_("validate_cert", options.verify_mode != ssl.CERT_NONE)
            if options.verify_mode != ssl.CERT_NONE:
                # The CAs the context lists (none listed, as for a default
                # context or a capath not yet used: the system's store).
                pem = _context_ca_pem(options)
                if pem:
                    set_("ca_pem", pem, len(pem))
            if options.minimum_version == ssl.TLSVersion.TLSv1_3:
                set_("min_tls_version", b"1.3")
            return
        options = dict(options)
        if "cert_reqs" in options:
            set_("validate_cert", options["cert_reqs"] != ssl.CERT_NONE)
        if options.get("ca_certs"):
            set_("ca_certs", utf8(options["ca_certs"]))
        if options.get("certfile"):
            keyfile = options.get("keyfile")
            set_("client_cert", utf8(options["certfile"]), utf8(keyfile) if keyfile else None)

    # ---- callbacks from the library (inside tornado_loop_run_once) ----

    def guarded(self, fn, *args):
        """Runs a Python callback; an exception fails the fetch (kept, not
        dropped by ctypes) and is raised to the caller."""
        try:
            return fn(*args)
        except (KeyboardInterrupt, SystemExit) as e:
            self.client._bridge.interrupt = e
            if self.error is None:
                self.error = e
            return _MISSING
        except BaseException as e:  # noqa: B902 - delivered, not swallowed
            if self.error is None:
                self.error = e
            return _MISSING

    def future_for(self, awaitable):
        """A C future done when `awaitable` is (NULL when there is none); a
        value that cannot be awaited fails the fetch with TypeError, as
        Tornado's own `await` of it does."""
        if awaitable is None or awaitable is _MISSING:
            return None if awaitable is None else self._failed_c_future()
        try:
            py_future = _as_future(awaitable)
        except Exception as e:  # noqa: BLE001 - delivered through the fetch
            if self.error is None:
                self.error = TypeError("a callback returned %r, which cannot be awaited: %s" % (awaitable, e))
            return self._failed_c_future()
        c_future = lib.tornado_future_new(self.client._bridge.ptr)
        bridge = self.client._bridge

        def done(f):
            if f.cancelled() and self.error is None:
                self.error = HTTPStreamClosedError("the streaming callback was cancelled")
            if f.cancelled() or f.exception() is not None:
                if self.error is None:
                    self.error = f.exception()
                lib.tornado_future_set_error(c_future, _lib.ERR_USER, b"a callback raised")
            else:
                lib.tornado_future_set_result(c_future, None, _lib.DROP())
            lib.tornado_future_unref(c_future)
            bridge.run()

        keep = lib.tornado_future_ref(c_future)
        py_future.add_done_callback(done)
        return keep

    def _failed_c_future(self):
        c_future = lib.tornado_future_new(self.client._bridge.ptr)
        lib.tornado_future_set_error(c_future, _lib.ERR_USER, b"a callback raised")
        return c_future

    def finish(self, ptr):
        code = lib.tornado_http_response_code(ptr)
        message = lib.tornado_http_response_error(ptr)
        info = _lib.TimeInfo()
        lib.tornado_http_response_time_info(ptr, ctypes.byref(info))
        time_info = {name: getattr(info, name) for name, _ in _lib.TimeInfo._fields_}
        request_time = lib.tornado_http_response_request_time(ptr)
        if isinstance(self.error, (KeyboardInterrupt, SystemExit)):
            error, code = HTTPStreamClosedError("interrupted"), 599
        elif self.error is not None:
            # Tornado logs a callback's exception and fails the fetch.
            app_log.error("Uncaught exception", exc_info=self.error)
            error, code = HTTPStreamClosedError("Stream closed"), 599
        elif code == 599 and message is not None:
            error = _error_for(message.decode("utf-8", "replace"), lib.tornado_http_response_error_code(ptr),
                               lib.tornado_http_response_os_error(ptr), code)
        else:
            error = None  # Tornado makes HTTPClientError(code) for non-2xx itself
        if code == 599:
            response = HTTPResponse(self.request, 599, error=error, request_time=request_time,
                                    start_time=self.start_wall, time_info=time_info,
                                    effective_url=self.request.url)
        else:
            n = _lib.size(0)
            data = lib.tornado_http_response_body(ptr, ctypes.byref(n))
            body = ctypes.string_at(data, n.value) if n.value else b""
            response = HTTPResponse(
                self.request, code, headers=_LazyHeaders(_header_block(ptr)), buffer=io.BytesIO(body),
                effective_url=lib.tornado_http_response_effective_url(ptr).decode("utf-8", "replace"),
                error=error, request_time=request_time, time_info=time_info,
                reason=(lib.tornado_http_response_reason(ptr) or b"").decode("latin-1") or None,
                start_time=lib.tornado_http_response_start_time(ptr))
            response.http_version = _VERSION_NAMES.get(lib.tornado_http_response_version(ptr))
        if not hasattr(response, "http_version"):
            response.http_version = None
        self.client.io_loop.add_callback(self.callback, response)


_CONTEXT_PEM = weakref.WeakKeyDictionary()


def _context_ca_pem(context):
    """The CAs an SSLContext lists, as PEM bytes: converted once per
    context, not per fetch (the same bytes each time, which the library's
    TLS configuration cache then matches)."""
    pem = _CONTEXT_PEM.get(context)
    if pem is None:
        import ssl

        pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in context.get_ca_certs(binary_form=True)).encode()
        _CONTEXT_PEM[context] = pem
    return pem


def _as_future(awaitable):
    from tornado.gen import convert_yielded
    return convert_yielded(awaitable)


@_lib.FETCH_CB
def _fetched(ptr, key):
    fetch = registry.get(key)
    if fetch is not None:
        try:
            fetch.finish(ptr)
        except BaseException:
            app_log.exception("tornado_rs: handing on a response failed")


@_lib.HEADER_CB
def _header_line(line, n, key):
    fetch = registry.get(key)
    if fetch is not None and fetch.error is None:
        fetch.guarded(fetch.request.header_callback, ctypes.string_at(line, n).decode("latin-1"))


def _returns_future(callback):
    """Wraps a ctypes callback that returns a `tornado_future *`: whatever
    it raises fails the fetch through a failed future. (An exception that
    escaped would leave ctypes returning a garbage pointer.)"""

    def wrapper(*args):
        fetch = registry.get(args[-1])
        try:
            return callback(fetch, *args[:-1])
        except BaseException as e:  # noqa: B902 - delivered through the fetch
            if fetch is None:
                app_log.error("tornado_rs: a callback failed", exc_info=e)
                return None
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                fetch.client._bridge.interrupt = e
            if fetch.error is None:
                fetch.error = e
            try:
                return fetch._failed_c_future()
            except BaseException:  # noqa: B902 - nothing better to hand back
                return None

    return wrapper


@_lib.CHUNK_ASYNC
@_returns_future
def _chunk(fetch, data, n):
    if fetch is None:
        return None
    if fetch.error is not None:
        return fetch._failed_c_future()
    result = fetch.guarded(fetch.request.streaming_callback, ctypes.string_at(data, n))
    return fetch.future_for(result)


class _Writer:
    """The `write` Tornado's body_producer gets: returns a Future done when
    the bytes reached the socket."""

    def __init__(self, fetch, writer):
        self.fetch = fetch
        self.writer = writer

    def __call__(self, data):
        data = utf8(data)
        c_future = lib.tornado_http_body_writer_write(self.writer, data, len(data))
        future = TornadoFuture()
        if not c_future:
            future.set_exception(IOError((lib.tornado_last_error() or b"write failed").decode()))
            return future
        key = registry.hold(future)
        if lib.tornado_future_add_done_callback_full(c_future, _written, key, _lib.release) != 0:
            registry.release(key)
            future.set_exception(HTTPStreamClosedError("the upload is over"))
        lib.tornado_future_unref(c_future)
        self.fetch.client._bridge.kick()
        return future

    def close(self):
        if self.writer:
            lib.tornado_http_body_writer_free(self.writer)
            self.writer = None


@_lib.DONE_CB
def _written(c_future, key):
    future = registry.get(key)
    if future is None or future.done():
        return
    message = ctypes.c_char_p()
    rc = lib.tornado_future_error(c_future, ctypes.byref(message))
    if rc == 0:
        future.set_result(None)
    else:
        future.set_exception(HTTPStreamClosedError((message.value or b"").decode() or "Stream closed"))


@_lib.BODY_WRITE
@_returns_future
def _produce(fetch, writer):
    if fetch is None:
        lib.tornado_http_body_writer_free(writer)
        return None
    write = _Writer(fetch, writer)
    try:
        result = fetch.guarded(fetch.request.body_producer, write)
        if result is None or result is _MISSING:
            write.close()
            return None if result is None else fetch._failed_c_future()
        try:
            produced = _as_future(result)  # once: a coroutine runs once
        except Exception:  # noqa: BLE001 - as Tornado's await of it: TypeError
            write.close()
            return fetch.future_for(result)
        produced.add_done_callback(lambda f: write.close())
        return fetch.future_for(produced)
    except BaseException:
        write.close()
        raise


@_lib.RESOLVE_CB
def _resolve(host, port, family, reply, key):
    held = registry.get(key)
    if held is None:
        lib.tornado_resolve_reply_fail(reply, _lib.ERR_USER, b"the client is gone")
        return
    client, resolver = held
    import socket

    fam = {0: socket.AF_UNSPEC, 2: socket.AF_INET, 10: socket.AF_INET6}.get(family, socket.AF_UNSPEC)

    def answered(f):
        if f.cancelled():
            lib.tornado_resolve_reply_fail(reply, _lib.ERR_CANCELLED, b"the lookup was cancelled")
        elif f.exception() is not None:
            lib.tornado_resolve_reply_fail(reply, _lib.ERR_USER, utf8(str(f.exception())))
        else:
            for _family, address in f.result():
                lib.tornado_resolve_reply_add(reply, utf8(address[0]), address[1])
            lib.tornado_resolve_reply_done(reply)
        client._bridge.run()

    try:
        future = _as_future(resolver.resolve(host.decode(), port, fam))
    except BaseException as e:
        lib.tornado_resolve_reply_fail(reply, _lib.ERR_USER, utf8(str(e)))
        return
    future.add_done_callback(answered)


__all__ = ["RsAsyncHTTPClient"]
