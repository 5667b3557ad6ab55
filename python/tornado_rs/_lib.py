"""The C library through ctypes: where it is found, and the signatures of
the functions the package calls (include/tornado_rs.h is the reference).

The library is the one bundled in the package (a wheel carries
libtornado_rs.so next to this file), else TORNADO_RS_LIB, else the
repository's target/release build, else the system loader's.
"""

import ctypes
import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load():
    candidates = [
        os.path.join(_HERE, "libtornado_rs.so"),
        os.environ.get("TORNADO_RS_LIB"),
        os.path.join(_HERE, "..", "..", "target", "release", "libtornado_rs.so"),
        "libtornado_rs.so.0",
    ]
    errors = []
    for path in candidates:
        if not path or ("/" in path and not os.path.exists(path)):
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append("%s: %s" % (path, e))
    raise OSError("libtornado_rs.so not found (set TORNADO_RS_LIB): %s" % "; ".join(errors))


lib = _load()

vp = ctypes.c_void_p
code = ctypes.c_int32
size = ctypes.c_size_t
u8p = ctypes.POINTER(ctypes.c_uint8)

DROP = ctypes.CFUNCTYPE(None, vp)
FETCH_CB = ctypes.CFUNCTYPE(None, vp, vp)
DONE_CB = ctypes.CFUNCTYPE(None, vp, vp)
CHUNK_ASYNC = ctypes.CFUNCTYPE(vp, u8p, size, vp)
HEADER_CB = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_char), size, vp)
BODY_WRITE = ctypes.CFUNCTYPE(vp, vp, vp)
RESOLVE_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_uint16, ctypes.c_int, vp, vp)


class TimeInfo(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_double)
        for name in ("queue", "namelookup", "connect", "appconnect", "pretransfer", "starttransfer", "total")
    ]


def _sig(name, restype, *argtypes):
    fn = getattr(lib, name)
    fn.restype = restype
    fn.argtypes = list(argtypes)


for _name, _res, _args in [
    ("tornado_last_error", ctypes.c_char_p, ()),
    ("tornado_code_name", ctypes.c_char_p, (code,)),
    ("tornado_version", ctypes.c_char_p, ()),
    ("tornado_loop_new", vp, ()),
    ("tornado_loop_free", code, (vp,)),
    ("tornado_loop_run_once", code, (vp, ctypes.c_double)),
    ("tornado_loop_backend_fd", ctypes.c_int, (vp,)),
    ("tornado_loop_backend_timeout", ctypes.c_double, (vp,)),
    ("tornado_future_new", vp, (vp,)),
    ("tornado_future_ref", vp, (vp,)),
    ("tornado_future_unref", None, (vp,)),
    ("tornado_future_done", ctypes.c_bool, (vp,)),
    ("tornado_future_error", code, (vp, ctypes.POINTER(ctypes.c_char_p))),
    ("tornado_future_set_result", code, (vp, vp, DROP)),
    ("tornado_future_set_error", code, (vp, code, ctypes.c_char_p)),
    ("tornado_future_add_done_callback_full", code, (vp, DONE_CB, vp, DROP)),
    ("tornado_http_client_new", vp, (vp, vp)),
    ("tornado_http_client_free", code, (vp,)),
    ("tornado_http_client_queued", size, (vp,)),
    ("tornado_http_client_active", size, (vp,)),
    ("tornado_http_client_options_new", vp, ()),
    ("tornado_http_client_options_free", None, (vp,)),
    ("tornado_http_client_options_set_max_clients", code, (vp, size)),
    ("tornado_http_client_options_set_http_version", code, (vp, ctypes.c_uint32)),
    ("tornado_http_client_options_set_max_buffer_size", code, (vp, size)),
    ("tornado_http_client_options_set_max_header_size", code, (vp, size)),
    ("tornado_http_client_options_set_max_body_size", code, (vp, ctypes.c_uint64)),
    ("tornado_http_client_options_add_hostname_mapping", code, (vp, ctypes.c_char_p, ctypes.c_char_p)),
    ("tornado_http_client_options_add_endpoint_mapping",
     code, (vp, ctypes.c_char_p, ctypes.c_uint16, ctypes.c_char_p, ctypes.c_uint16)),
    ("tornado_http_client_options_set_resolver", code, (vp, RESOLVE_CB, vp, DROP)),
    ("tornado_http_client_options_set_cookies", code, (vp, ctypes.c_bool)),
    ("tornado_http_client_options_set_dns_cache_ttl", code, (vp, ctypes.c_double)),
    ("tornado_http_client_options_set_http2_ping", code, (vp, ctypes.c_double, ctypes.c_double)),
    ("tornado_http_client_options_set_public_suffix_file", code, (vp, ctypes.c_char_p)),
    ("tornado_http_client_load_cookies", code, (vp, ctypes.c_char_p)),
    ("tornado_http_client_save_cookies", code, (vp, ctypes.c_char_p)),
    ("tornado_http_client_cookie_count", size, (vp,)),
    ("tornado_http_client_clear_cookies", code, (vp,)),
    ("tornado_resolve_reply_add", code, (vp, ctypes.c_char_p, ctypes.c_uint16)),
    ("tornado_resolve_reply_done", code, (vp,)),
    ("tornado_resolve_reply_fail", code, (vp, code, ctypes.c_char_p)),
    ("tornado_http_client_fetch_cb_full", code, (vp, vp, FETCH_CB, vp, DROP)),
    ("tornado_http_request_new", vp, (ctypes.c_char_p,)),
    ("tornado_http_request_free", None, (vp,)),
    ("tornado_http_request_set_method", code, (vp, ctypes.c_char_p)),
    ("tornado_http_request_add_header_bytes", code, (vp, ctypes.c_char_p, ctypes.c_char_p, size)),
    ("tornado_http_request_set_body", code, (vp, ctypes.c_char_p, size)),
    ("tornado_http_request_set_connect_timeout", code, (vp, ctypes.c_double)),
    ("tornado_http_request_set_request_timeout", code, (vp, ctypes.c_double)),
    ("tornado_http_request_set_follow_redirects", code, (vp, ctypes.c_bool)),
    ("tornado_http_request_set_max_redirects", code, (vp, ctypes.c_int)),
    ("tornado_http_request_set_user_agent", code, (vp, ctypes.c_char_p)),
    ("tornado_http_request_set_auth", code, (vp, ctypes.c_char_p, ctypes.c_char_p)),
    ("tornado_http_request_set_auth_mode", code, (vp, ctypes.c_char_p)),
    ("tornado_http_request_set_decompress_response", code, (vp, ctypes.c_bool)),
    ("tornado_http_request_set_validate_cert", code, (vp, ctypes.c_bool)),
    ("tornado_http_request_set_ca_certs", code, (vp, ctypes.c_char_p)),
    ("tornado_http_request_set_client_cert", code, (vp, ctypes.c_char_p, ctypes.c_char_p)),
    ("tornado_http_request_set_allow_ipv6", code, (vp, ctypes.c_bool)),
    ("tornado_http_request_set_ca_pem", code, (vp, ctypes.c_char_p, size)),
    ("tornado_http_request_set_client_cert_pem", code, (vp, ctypes.c_char_p, size, ctypes.c_char_p, size)),
    ("tornado_http_request_set_min_tls_version", code, (vp, ctypes.c_char_p)),
    ("tornado_http_request_set_server_name", code, (vp, ctypes.c_char_p)),
    ("tornado_http_request_set_network_interface", code, (vp, ctypes.c_char_p)),
    ("tornado_http_request_set_if_modified_since", code, (vp, ctypes.c_double)),
    ("tornado_http_request_set_unix_socket", code, (vp, ctypes.c_char_p)),
    ("tornado_http_request_set_proxy", code, (vp, ctypes.c_char_p, ctypes.c_uint16, ctypes.c_char_p, ctypes.c_char_p)),
    ("tornado_http_request_set_proxy_ca_certs", code, (vp, ctypes.c_char_p)),
    ("tornado_http_request_set_proxy_validate_cert", code, (vp, ctypes.c_bool)),
    ("tornado_http_request_set_allow_nonstandard_methods", code, (vp, ctypes.c_bool)),
    ("tornado_http_request_set_expect_100_continue", code, (vp, ctypes.c_bool)),
    ("tornado_http_request_set_http_version", code, (vp, ctypes.c_uint32)),
    ("tornado_http_request_set_header_callback", code, (vp, HEADER_CB, vp, DROP)),
    ("tornado_http_request_set_streaming_callback_async", code, (vp, CHUNK_ASYNC, vp, DROP)),
    ("tornado_http_request_set_body_producer_async", code, (vp, BODY_WRITE, vp, DROP)),
    ("tornado_http_body_writer_write", vp, (vp, ctypes.c_char_p, size)),
    ("tornado_http_body_writer_free", None, (vp,)),
    ("tornado_http_response_code", ctypes.c_int, (vp,)),
    ("tornado_http_response_reason", ctypes.c_char_p, (vp,)),
    ("tornado_http_response_body", u8p, (vp, ctypes.POINTER(size))),
    ("tornado_http_response_header_count", size, (vp,)),
    ("tornado_http_response_header_bytes_at",
     code, (vp, size, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(u8p), ctypes.POINTER(size))),
    ("tornado_http_response_header_block", u8p, (vp, ctypes.POINTER(size))),
    ("tornado_http_response_effective_url", ctypes.c_char_p, (vp,)),
    ("tornado_http_response_request_time", ctypes.c_double, (vp,)),
    ("tornado_http_response_version", ctypes.c_int, (vp,)),
    ("tornado_http_response_start_time", ctypes.c_double, (vp,)),
    ("tornado_http_response_time_info", code, (vp, ctypes.POINTER(TimeInfo))),
    ("tornado_http_response_error", ctypes.c_char_p, (vp,)),
    ("tornado_http_response_error_code", code, (vp,)),
    ("tornado_http_response_os_error", ctypes.c_int, (vp,)),
]:
    _sig(_name, _res, *_args)

OK = 0
ERR_INVALID = 1
ERR_TIMEOUT = 7
ERR_CANCELLED = 8
ERR_IO = 10
ERR_CLOSED = 11
ERR_USER = 1000


class TornadoRsError(Exception):
    """A call the library refused: `code` is the TORNADO_ERR_* value."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def last_error():
    return (lib.tornado_last_error() or b"").decode("utf-8", "replace")


def check(rc, what):
    if rc != OK:
        detail = (lib.tornado_last_error() or b"").decode("utf-8", "replace")
        raise TornadoRsError(rc, "%s: %s" % (what, detail))


class Registry:
    """Python objects the library may call back into, kept alive until the
    library's drop function releases them (userdata is the key)."""

    def __init__(self):
        self._next = 1
        self._held = {}

    def hold(self, obj):
        key = self._next
        self._next += 1
        self._held[key] = obj
        return key

    def get(self, key):
        return self._held.get(key)

    def release(self, key):
        self._held.pop(key, None)


registry = Registry()


@DROP
def release(key):
    registry.release(key)
