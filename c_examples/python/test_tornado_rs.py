"""pytest suite for the ctypes binding (c_examples/python/tornado_rs.py),
against a threaded HTTP server on 127.0.0.1."""

import gc
import http.server
import os
import threading

import pytest

import tornado_rs
from tornado_rs import AsyncHTTPClient, HTTPClientError, HTTPRequest, IOLoop


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"hello from " + self.path.encode()
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Path", self.path)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()


@pytest.fixture
def loop():
    with IOLoop() as loop:
        yield loop


def test_version():
    assert tornado_rs.__version__.count(".") == 2


def test_callbacks_and_timers_run_in_order(loop):
    seen = []
    loop.call_later(0.02, lambda: (seen.append("timer"), loop.stop()))
    loop.add_callback(seen.append, "callback")
    handle = loop.call_later(5, seen.append, "never")
    loop.remove_timeout(handle)
    loop.start()
    assert seen == ["callback", "timer"]


def test_add_callback_from_another_thread(loop):
    threading.Timer(0.05, lambda: loop.add_callback(loop.stop)).start()
    loop.start()


def test_callbacks_survive_garbage_collection(loop):
    hits = []
    for i in range(100):
        loop.add_callback(lambda i=i: hits.append(i))
    gc.collect()
    loop.add_callback(loop.stop)
    loop.start()
    assert hits == list(range(100))


def test_fetch(loop, server):
    client = AsyncHTTPClient(loop)
    response = loop.run_sync(client.fetch(server + "/hello"), timeout=10)
    assert response.code == 200
    assert response.body == b"hello from /hello"
    assert response.header("x-path") == "/hello"
    assert response.error is None
    assert response.effective_url == server + "/hello"
    post = HTTPRequest(server + "/echo", method="POST", body=b"payload")
    assert loop.run_sync(client.fetch(post), timeout=10).body == b"payload"
    assert loop.run_sync(client.fetch(server + "/missing"), timeout=10).code == 404
    assert response.http_version == "1.1"
    client.close()


def test_http2_prior_knowledge(loop, tmp_path):
    """http_version="2-prior-knowledge" speaks h2c to nghttpd (Debian's
    nghttp2-server, which .ci/run installs)."""
    import shutil
    import socket
    import subprocess
    import time

    (tmp_path / "index.html").write_text("over h2c\n")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    nghttpd = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
    server = subprocess.Popen([nghttpd, "--no-tls", "-a", "127.0.0.1", "-d", str(tmp_path), str(port)])
    try:
        deadline = time.monotonic() + 10
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline, "nghttpd did not listen"
            time.sleep(0.05)
        client = AsyncHTTPClient(loop)
        request = HTTPRequest("http://127.0.0.1:%d/index.html" % port, http_version="2-prior-knowledge")
        response = loop.run_sync(client.fetch(request), timeout=10)
        assert (response.code, response.body, response.http_version) == (200, b"over h2c\n", "2")
        client.close()
        with pytest.raises(ValueError):
            HTTPRequest("http://127.0.0.1/", http_version="3")
    finally:
        server.terminate()
        server.wait()


def test_many_fetches_at_once(loop, server):
    client = AsyncHTTPClient(loop, max_clients=8)
    futures = [client.fetch(server + "/n%d" % i) for i in range(40)]
    done = tornado_rs.Future()
    remaining = [len(futures)]

    def one_done(_):
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set_result(None)

    for f in futures:
        f.add_done_callback(one_done)
    loop.run_sync(done, timeout=20)
    assert [f.result().body for f in futures] == [b"hello from /n%d" % i for i in range(40)]
    client.close()


def test_fetch_errors(loop):
    client = AsyncHTTPClient(loop)
    with pytest.raises(HTTPClientError) as info:
        loop.run_sync(client.fetch("http://127.0.0.1:1/"), timeout=10)
    assert info.value.response.code == 599
    assert str(info.value).startswith("connect: ")
    with pytest.raises(HTTPClientError) as info:
        loop.run_sync(client.fetch("ftp://127.0.0.1/"), timeout=10)
    assert str(info.value).startswith("invalid_url: ")
    client.close()


def test_bad_arguments_raise(loop):
    with pytest.raises(tornado_rs.TornadoError):
        loop.call_later(-1, lambda: None)


def test_freeing_the_loop_with_a_pending_fetch_releases_its_future():
    """Issue 12 #15: a fetch still pending when its loop is freed is never
    called back; closing its client then releases what the binding held
    for it (the Future), which the garbage collector can then free."""
    import socket
    import weakref

    silent = socket.socket()  # accepted by the kernel, never answered
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    loop = IOLoop()
    client = AsyncHTTPClient(loop)
    held_before = len(tornado_rs._registry._held)
    future = client.fetch("http://127.0.0.1:%d/never" % silent.getsockname()[1])
    released = []
    watch = weakref.ref(future, lambda _: released.append(True))
    del future
    loop.call_later(0.05, loop.stop)
    loop.start()
    assert len(tornado_rs._registry._held) == held_before + 1, "the pending fetch holds its future"
    loop.close()
    client.close()
    gc.collect()
    assert len(tornado_rs._registry._held) == held_before, "the fetch's registry entry was released"
    assert released and watch() is None, "the future was freed"
    silent.close()


@pytest.fixture(scope="module")
def ws_server():
    """Tornado's WebSocketHandler (tests/servers/ws_servers.py) on 127.0.0.1."""
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "servers",
                          "ws_servers.py")
    proc = subprocess.Popen([sys.executable, script, "tornado"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    assert line.startswith("PORT "), "ws_servers.py did not start (is tornado installed?): %r" % line
    yield "ws://127.0.0.1:%s" % line.split()[1]
    proc.stdin.close()
    proc.wait(timeout=10)


def test_websocket_echo_and_close(ws_server):
    with IOLoop() as loop:
        client = AsyncHTTPClient(loop)
        conn = loop.run_sync(tornado_rs.websocket_connect(client, ws_server + "/echo"), timeout=10)
        loop.run_sync(conn.write_message("h\u00e9llo"), timeout=10)
        assert loop.run_sync(conn.read_message(), timeout=10) == "h\u00e9llo"
        conn.write_message(b"\x00\x01", binary=True)
        assert loop.run_sync(conn.read_message(), timeout=10) == b"\x00\x01"
        loop.run_sync(conn.close(1000, "bye"), timeout=10)
        assert conn.close_code == 1000
        assert loop.run_sync(conn.read_message(), timeout=10) is None
        with pytest.raises(tornado_rs.TornadoError):
            conn.write_message("late")
        del conn
        gc.collect()
        client.close()


def test_websocket_subprotocol_compression_and_refusal(ws_server):
    with IOLoop() as loop:
        client = AsyncHTTPClient(loop)
        conn = loop.run_sync(
            tornado_rs.websocket_connect(client, ws_server + "/subprotocol", subprotocols=["x", "chat"]), timeout=10)
        assert conn.selected_subprotocol == "chat"
        assert loop.run_sync(conn.read_message(), timeout=10) == "chose chat"
        conn = loop.run_sync(tornado_rs.websocket_connect(client, ws_server + "/deflate", compression=True),
                             timeout=10)
        conn.write_message("z" * 10000)
        assert loop.run_sync(conn.read_message(), timeout=10) == "z" * 10000
        loop.run_sync(conn.close(), timeout=10)
        with pytest.raises(tornado_rs.TornadoError) as info:
            loop.run_sync(tornado_rs.websocket_connect(client, ws_server + "/nowhere"), timeout=10)
        assert info.value.code == 17 and "HTTP 404" in str(info.value)
        del conn
        gc.collect()
        client.close()
