"""The package as a Tornado or asyncio program uses it: configured as
Tornado's AsyncHTTPClient, awaited on asyncio's own loop, exceptions in
callbacks delivered (never dropped), Ctrl-C (KeyboardInterrupt) raised at
once. A Tornado HTTPServer on 127.0.0.1 answers."""

import asyncio
import logging
import socket

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.simple_httpclient import HTTPStreamClosedError

import tornado_rs
from tornado_rs.httpclient import RsAsyncHTTPClient


class Hello(tornado.web.RequestHandler):
    def get(self):
        self.write("hello " * 1000)


def listen(app, ssl_options=None):
    """Tornado's HTTPServer for `app` on a free port of 127.0.0.1 (on the
    running IOLoop): (server, port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    server = HTTPServer(app, ssl_options=ssl_options)
    server.add_sockets([sock])
    return server, sock.getsockname()[1]


def serve():
    server, port = listen(tornado.web.Application([(r"/", Hello)]))
    return server, "http://127.0.0.1:%d/" % port


def test_awaited_on_asyncio_loop():
    async def main():
        server, url = serve()
        try:
            response = await tornado_rs.fetch(url)
            assert response.code == 200
            assert response.body == b"hello " * 1000
            assert response.headers["Content-Type"].startswith("text/html")
            assert response.request_time > 0
        finally:
            server.stop()

    asyncio.run(main())


def test_configured_as_tornados_client():
    saved = AsyncHTTPClient._save_configuration()
    try:
        AsyncHTTPClient.configure("tornado_rs.httpclient.RsAsyncHTTPClient")

        async def main():
            server, url = serve()
            client = AsyncHTTPClient()
            assert isinstance(client, RsAsyncHTTPClient)
            responses = await asyncio.gather(*[client.fetch(url) for _ in range(50)])
            assert {r.code for r in responses} == {200}
            server.stop()

        IOLoop.current().run_sync(main)
    finally:
        AsyncHTTPClient._restore_configuration(saved)


def test_a_callback_exception_is_logged_and_fails_the_fetch(caplog):
    async def main():
        server, url = serve()

        def streaming_callback(chunk):
            raise RuntimeError("the consumer broke")

        client = RsAsyncHTTPClient(force_instance=True)
        with pytest.raises(HTTPStreamClosedError):
            await client.fetch(url, streaming_callback=streaming_callback)
        # The client goes on working after it.
        assert (await client.fetch(url)).code == 200
        client.close()
        server.stop()

    with caplog.at_level(logging.ERROR, logger="tornado.application"):
        asyncio.run(main())
    assert any("Uncaught exception" in r.getMessage() and r.exc_info for r in caplog.records)


def test_keyboard_interrupt_in_a_callback_stops_the_run():
    async def main():
        server, url = serve()

        def streaming_callback(chunk):
            raise KeyboardInterrupt

        client = RsAsyncHTTPClient(force_instance=True)
        try:
            await client.fetch(HTTPRequest(url, streaming_callback=streaming_callback))
        finally:
            server.stop()

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())


def test_connect_timeouts_say_which_step_ran_out():
    from tornado.netutil import Resolver, bind_sockets
    from tornado.simple_httpclient import HTTPTimeoutError
    from tornado.tcpserver import TCPServer

    class NeverResolves(Resolver):
        async def resolve(self, host, port, family=socket.AF_UNSPEC):
            await asyncio.sleep(3600)

    async def main():
        client = RsAsyncHTTPClient(force_instance=True, resolver=NeverResolves())
        with pytest.raises(HTTPTimeoutError) as caught:
            await client.fetch("http://127.0.0.1:9/", connect_timeout=0.1)
        assert str(caught.value) == "Timeout while resolving 127.0.0.1"
        client.close()

        # A server that accepts and never answers the ClientHello.
        [listener] = bind_sockets(0, "127.0.0.1", socket.AF_INET)
        port = listener.getsockname()[1]
        accepted = []

        class Silent(TCPServer):
            def handle_stream(self, stream, address):
                accepted.append(stream)

        server = Silent()
        server.add_sockets([listener])
        client = RsAsyncHTTPClient(force_instance=True)
        with pytest.raises(HTTPTimeoutError) as caught:
            await client.fetch("https://127.0.0.1:%d/" % port, connect_timeout=0.3, validate_cert=False)
        assert str(caught.value) == "Timeout during TLS handshake with 127.0.0.1:%d" % port
        # The client closed its socket: the server's read ends.
        await asyncio.wait_for(accepted[0].read_until_close(), 5)
        client.close()
        server.stop()

    asyncio.run(main())


def test_callbacks_that_return_or_raise_anything_fail_the_fetch_cleanly():
    import io

    async def main():
        server, url = serve()
        client = RsAsyncHTTPClient(force_instance=True)
        # BytesIO.write returns an int: Tornado awaits it and fails (TypeError).
        with pytest.raises(HTTPStreamClosedError):
            await client.fetch(url, streaming_callback=io.BytesIO().write)

        def producer_not_awaitable(write):
            return 42

        with pytest.raises(HTTPStreamClosedError):
            await client.fetch(url, method="POST", body_producer=producer_not_awaitable)

        async def producer(write):
            await write(b"a=1")

        # The client works on after those, and an async producer uploads.
        response = await client.fetch(url.replace("/", "/", 1), method="POST", body_producer=producer,
                                      raise_error=False)
        assert response.code == 405  # Hello has no post(): the upload went through
        assert (await client.fetch(url)).code == 200
        client.close()
        server.stop()

    asyncio.run(main())


def test_http_version_option_and_response_attribute(tmp_path):
    """http_version="2-prior-knowledge" speaks h2c to nghttpd (Debian's
    nghttp2-server, which .ci/run installs); the default speaks HTTP/1.1 to
    Tornado's server; each response says which."""
    import shutil
    import subprocess
    import time

    nghttpd = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
    (tmp_path / "index.html").write_text("over h2c\n")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen([nghttpd, "--no-tls", "-a", "127.0.0.1", "-d", str(tmp_path), str(port)])
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline, "nghttpd did not listen"
            time.sleep(0.05)

        async def main():
            h2 = RsAsyncHTTPClient(force_instance=True, http_version="2-prior-knowledge")
            response = await h2.fetch("http://127.0.0.1:%d/index.html" % port)
            assert (response.code, response.body, response.http_version) == (200, b"over h2c\n", "2")
            h2.close()
            tornado_server, url = serve()
            plain = RsAsyncHTTPClient(force_instance=True)
            response = await plain.fetch(url)
            assert response.http_version == "1.1"
            plain.close()
            tornado_server.stop()

        IOLoop.current().run_sync(main)
        with pytest.raises(ValueError):
            RsAsyncHTTPClient(force_instance=True, http_version="3")
    finally:
        server.terminate()
        server.wait()
def test_body_producer_over_http2_with_flow_control():
    """Tornado's body_producer(write) over HTTP/2 (h2c to the tests' Python
    h2 echo peer, tests/servers/h2_peer.py): 200 KiB, more than the
    server's first 64 KiB window, each write awaited; the server hashes
    what it got."""
    import hashlib
    import json
    import os
    import subprocess
    import sys
    import time

    peer = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "servers", "h2_peer.py")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = subprocess.Popen([sys.executable, peer, str(port), "echo"])
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline, "h2_peer.py did not listen"
            time.sleep(0.05)
        body = bytes(i % 251 for i in range(200 * 1024))
        written = []

        async def producer(write):
            for start in range(0, len(body), 16 * 1024):
                await write(body[start:start + 16 * 1024])
                written.append(start)

        async def main():
            client = RsAsyncHTTPClient(force_instance=True, http_version="2-prior-knowledge")
            response = await client.fetch("http://127.0.0.1:%d/echo" % port, method="PUT",
                                          body_producer=producer, request_timeout=10)
            client.close()
            return response

        response = IOLoop.current().run_sync(main)
        assert response.http_version == "2"
        seen = json.loads(response.body)
        assert seen["body_len"] == len(body)
        assert seen["body_sha256"] == hashlib.sha256(body).hexdigest()
        assert len(written) == 13
    finally:
        server.terminate()
        server.wait()


# ---- cookies, Unix sockets, brotli (issue 19) ----


class SetCookie(tornado.web.RequestHandler):
    def get(self):
        self.set_cookie("flavour", "oat")
        # A cookie for another site: refused by the jar.
        self.add_header("Set-Cookie", "evil=1; Domain=example.com")
        self.redirect("/echo")


class EchoCookies(tornado.web.RequestHandler):
    def get(self):
        self.write(self.request.headers.get("Cookie", ""))


class Brotli(tornado.web.RequestHandler):
    def get(self):
        # "hello" compressed with brotli (quality 11), as a server sends it.
        self.set_header("Content-Encoding", "br")
        self.write(bytes.fromhex("0b028068656c6c6f03"))


def cookie_app():
    return tornado.web.Application([(r"/set", SetCookie), (r"/echo", EchoCookies), (r"/br", Brotli)])


def test_cookies_kept_across_redirects_saved_and_loaded(tmp_path):
    async def main():
        server, port = listen(cookie_app())
        base = "http://127.0.0.1:%d" % port
        plain = RsAsyncHTTPClient(force_instance=True)
        jar = RsAsyncHTTPClient(force_instance=True, cookies=True)
        other = RsAsyncHTTPClient(force_instance=True, cookies=True)
        try:
            assert (await plain.fetch(base + "/set")).body == b"", "off by default"
            assert (await jar.fetch(base + "/set")).body == b"flavour=oat"
            assert (await jar.fetch(base + "/echo")).body == b"flavour=oat"
            assert jar.cookie_count == 1, "the foreign-domain cookie was refused"
            assert (await jar.fetch(base + "/br")).body == b"hello"
            path = tmp_path / "cookies.txt"
            jar.save_cookies(path)
            assert "\tflavour\toat" in path.read_text()
            other.load_cookies(path)
            assert (await other.fetch(base + "/echo")).body == b"flavour=oat"
            bad = tmp_path / "bad.txt"
            bad.write_text("127.0.0.1\tFALSE\t/\n")
            with pytest.raises(ValueError, match="line 1"):
                other.load_cookies(bad)
            with pytest.raises(OSError):
                other.load_cookies(tmp_path / "absent.txt")
            with pytest.raises(ValueError, match="off"):
                plain.load_cookies(path)
            assert other.cookie_count == 1
        finally:
            for client in (plain, jar, other):
                client.close()
            server.stop()

    asyncio.run(main())


def test_a_unix_socket_server(tmp_path):
    from tornado.netutil import bind_unix_socket

    async def main():
        path = str(tmp_path / "app.sock")
        server = HTTPServer(tornado.web.Application([(r"/", Hello)]))
        server.add_socket(bind_unix_socket(path))
        client = RsAsyncHTTPClient(force_instance=True, unix_socket=path, dns_cache_ttl=0)
        try:
            response = await client.fetch("http://daemon.test/")
            assert response.body == b"hello " * 1000
        finally:
            client.close()
            server.stop()

    asyncio.run(main())


# ---- the public suffix list, https:// proxies, HTTP/2 PING (bind3) ----


class SuffixCookie(tornado.web.RequestHandler):
    def get(self):
        # For every host under tornado.test: refused if tornado.test is a
        # public suffix.
        self.add_header("Set-Cookie", "wide=1; Domain=tornado.test; Path=/")
        self.write("set")


def test_public_suffix_file_refuses_domain_cookies_for_a_listed_suffix(tmp_path):
    """www.shop.tornado.test mapped to Tornado's server on 127.0.0.1 (no
    DNS) sets a cookie for Domain=tornado.test: refused with a list naming
    tornado.test, kept with the built-in list and with a list without it."""
    listed = tmp_path / "listed.dat"
    listed.write_text("// ===BEGIN ICANN DOMAINS===\ncom\ntest\ntornado.test\n")
    unlisted = tmp_path / "unlisted.dat"
    unlisted.write_text("// ===BEGIN ICANN DOMAINS===\ncom\ntest\n")

    async def main():
        server, port = listen(tornado.web.Application([(r"/set", SuffixCookie)]))
        url = "http://www.shop.tornado.test:%d/set" % port
        try:
            kept = {}
            for name, list_file in (("listed", listed), ("unlisted", unlisted), ("built-in", None)):
                client = RsAsyncHTTPClient(force_instance=True, cookies=True, public_suffix_file=list_file,
                                           hostname_mapping={"www.shop.tornado.test": "127.0.0.1"})
                try:
                    assert (await client.fetch(url)).body == b"set"
                    kept[name] = client.cookie_count
                finally:
                    client.close()
            assert kept == {"listed": 0, "unlisted": 1, "built-in": 1}
        finally:
            server.stop()

    asyncio.run(main())

    async def bad_files():
        with pytest.raises(OSError, match="absent.dat"):
            RsAsyncHTTPClient(force_instance=True, cookies=True, public_suffix_file=tmp_path / "absent.dat")
        not_a_list = tmp_path / "not-a-list.dat"
        not_a_list.write_text("// nothing listed\n")
        with pytest.raises(ValueError, match="not a public suffix list"):
            RsAsyncHTTPClient(force_instance=True, cookies=True, public_suffix_file=not_a_list)
        with pytest.raises(ValueError, match="public_suffix_file"):
            RsAsyncHTTPClient(force_instance=True, cookies=True, public_suffix_file="bad\0path")
        # A client after those works (nothing was left half made).
        client = RsAsyncHTTPClient(force_instance=True, cookies=True, public_suffix_file=listed)
        client.close()

    asyncio.run(bad_files())


def make_pki(directory):
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl,
    which .ci/run installs): (ca.pem, cert.pem, key.pem) paths."""
    import subprocess

    d = str(directory)

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=tornado_rs test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                       "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf")
    return str(directory / "ca.pem"), str(directory / "cert.pem"), str(directory / "key.pem")


class ProxyAnswer(tornado.web.RequestHandler):
    def get(self):
        # What an https:// proxy got over its TLS connection: the
        # absolute-form target of an http URL.
        self.write("proxy got %s %s" % (self.request.method, self.request.uri))


def test_https_proxy_ca_certs_and_validate_cert(tmp_path):
    """An https:// proxy: Tornado's HTTPServer over TLS with a certificate
    from a CA made for the test answers the absolute-form requests it gets.
    Its CA is trusted through proxy_ca_certs (client-wide or per request);
    the system's store and the target's CA options do not vouch for it;
    proxy_validate_cert=False skips the check; a missing CA file fails the
    fetch (ssl.SSLError, as every TLS failure) with a message naming it."""
    import ssl

    ca, cert, key = make_pki(tmp_path)

    async def main():
        server, port = listen(tornado.web.Application([(r".*", ProxyAnswer)]),
                              ssl_options={"certfile": cert, "keyfile": key})
        proxy = "https://127.0.0.1:%d" % port
        target = "http://127.0.0.1:9/via-proxy"
        expected = b"proxy got GET " + target.encode()
        trusting = RsAsyncHTTPClient(force_instance=True, proxy_ca_certs=ca)
        insecure = RsAsyncHTTPClient(force_instance=True, proxy_validate_cert=False)
        plain = RsAsyncHTTPClient(force_instance=True)
        missing = RsAsyncHTTPClient(force_instance=True, proxy_ca_certs=str(tmp_path / "absent-ca.pem"))
        try:
            assert (await trusting.fetch(target, proxy_host=proxy)).body == expected
            assert (await insecure.fetch(target, proxy_host=proxy)).body == expected
            request = HTTPRequest(target, proxy_host=proxy)
            request.proxy_ca_certs = ca  # per request, on the client without it
            assert (await plain.fetch(request)).body == expected
            # TLS failures raise ssl.SSLError, as Tornado's simple client's do.
            refused = [(plain, {}), (plain, {"ca_certs": ca, "validate_cert": False}), (missing, {})]
            for client, target_tls in refused:
                with pytest.raises(ssl.SSLError) as info:
                    await client.fetch(target, proxy_host=proxy, **target_tls)
                assert "https proxy 127.0.0.1" in str(info.value), str(info.value)
            assert "absent-ca.pem" in str(info.value), "the missing CA file is named"
            # The client-wide False, and a request's own True over it.
            strict = HTTPRequest(target, proxy_host=proxy)
            strict.proxy_validate_cert = True
            with pytest.raises(ssl.SSLError):
                await insecure.fetch(strict)
            nul = HTTPRequest(target, proxy_host=proxy)
            nul.proxy_ca_certs = "ca\0.pem"
            with pytest.raises(ValueError, match="NUL"):
                await plain.fetch(nul)
        finally:
            for client in (trusting, insecure, plain, missing):
                client.close()
            server.stop()

    asyncio.run(main())


def test_http2_ping_option_and_h2c_fetches_across_an_idle_ping(tmp_path):
    """http2_ping=(0.2, 10): two h2c fetches to nghttpd 0.3 s apart both
    succeed, and nghttpd's frame log (-v) shows the PING the client sent
    before reusing the idle connection; with http2_ping=(0, 1) (the check
    off) none is sent. Bad values raise ValueError as the C function
    refuses them."""
    import shutil
    import subprocess
    import time

    nghttpd = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
    (tmp_path / "index.html").write_text("over h2c\n")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    log = open(tmp_path / "frames.log", "w")
    server = subprocess.Popen([nghttpd, "-v", "--no-tls", "-a", "127.0.0.1", "-d", str(tmp_path), str(port)],
                              stdout=log)
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline, "nghttpd did not listen"
            time.sleep(0.05)

        def pings_received():
            log.flush()
            return (tmp_path / "frames.log").read_text().count("recv PING frame")

        async def two_fetches(http2_ping):
            client = RsAsyncHTTPClient(force_instance=True, http_version="2-prior-knowledge", http2_ping=http2_ping)
            try:
                for _ in range(2):
                    response = await client.fetch("http://127.0.0.1:%d/index.html" % port)
                    assert (response.code, response.body, response.http_version) == (200, b"over h2c\n", "2")
                    await asyncio.sleep(0.3)
            finally:
                client.close()

        asyncio.run(two_fetches((0.2, 10)))
        time.sleep(0.2)  # nghttpd's log written
        checked = pings_received()
        assert checked >= 1, "the idle connection was PINGed before its reuse"
        asyncio.run(two_fetches((0, 1)))  # idle 0: no check
        time.sleep(0.2)
        assert pings_received() == checked, "http2_ping=(0, 1): no PING"

        async def bad_values():
            for bad in ((-1, 2), (5, 0), (float("nan"), 2), (5, float("inf"))):
                with pytest.raises(ValueError, match="http2_ping"):
                    RsAsyncHTTPClient(force_instance=True, http2_ping=bad)

        asyncio.run(bad_values())
    finally:
        server.terminate()
        server.wait()
        log.close()
