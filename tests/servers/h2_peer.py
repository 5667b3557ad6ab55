"""An HTTP/2 server with prior knowledge (h2c) on 127.0.0.1, written with
Python's h2 package, for tests/http2_rust.rs: a well-behaved echo server,
and hostile peers that break the protocol in one way each.

    python3 h2_peer.py PORT MODE

Every response of the echo server carries `x-connection` (the number of
the TCP connection, from 1) and `x-stream` (the stream id). Its body is a
JSON object {method, path, authority, scheme, headers, body_len,
body_sha256, body}
unless the path asks for something else:

    /big?n=N      N bytes of 'x' (in 16 KiB DATA frames, as the window allows)
    /gzip         a gzip-encoded text (content-encoding: gzip)
    /status?c=N   an empty response with status N
    /redirect?to=URL   302 to URL
    /stats        {"connections": N, "requests": N, "max_concurrent": N}

Modes (what the server does besides echoing):

    echo          nothing more
    goaway        on connection 1, once two requests are open: GOAWAY
                  (NO_ERROR, last-stream-id = the first), the first
                  response's head and part of its body, then the socket
                  closes. Later connections echo.
    goaway3_HOW_CODE   on connection 1, once three requests are open:
                  the first's response (HOW "done": all of it; "cut": its
                  head and 1000 of its 100000 bytes), then GOAWAY with
                  error CODE (an h2.errors.ErrorCodes name) and
                  last-stream-id = the first, then the socket closes.
                  Later connections echo.
    rst           /rst is answered with RST_STREAM INTERNAL_ERROR; other
                  streams carry on.
    refused       the first request of the process is refused
                  (RST_STREAM REFUSED_STREAM); the rest echo.
    zero_window   never a WINDOW_UPDATE: a request body over the first
                  64 KiB window can never be sent.
    bad_frame     answers each request with a DATA frame on stream 0
                  (a connection error, RFC 9113 6.1).
    big_headers   answers with 1,000 header fields of 100 bytes each.
    max_streams_1 SETTINGS_MAX_CONCURRENT_STREAMS 1; each response waits
                  100 ms, so fetches queue for the one stream.
    silent        on connection 1, after its first response: reads and
                  answers nothing more (no PONG), the socket left open.
                  Later connections echo.
    slow_pong     echo, but each PING is answered 300 ms late.
    continuation  answers with HEADERS without END_HEADERS, then
                  CONTINUATION frames without end (stops when the client
                  goes away or after 64 MiB).
"""

import gzip
import hashlib
import json
import socket
import sys
import threading
import time
import urllib.parse

import h2.config
import h2.errors
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

PORT = int(sys.argv[1])
MODE = sys.argv[2]

lock = threading.Lock()
stats = {"connections": 0, "requests": 0, "open": 0, "max_concurrent": 0}
refused_once = [False]


def frame(kind, flags, stream_id, payload):
    return (
        len(payload).to_bytes(3, "big")
        + bytes([kind, flags])
        + stream_id.to_bytes(4, "big")
        + payload
    )


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.index = None
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.requests = {}  # stream id -> [headers, body bytearray]
        self.pending = {}  # stream id -> bytes still to send
        self.open_streams = []
        self.goaway_sent = False
        self.silent = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def run(self):
        settings = {}
        if MODE == "max_streams_1":
            settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 1
        if settings:
            # In the preface's own SETTINGS frame.
            self.conn.local_settings = h2.settings.Settings(
                client=False, initial_values=settings
            )
        self.conn.initiate_connection()
        self.flush()
        self.sock.settimeout(0.05)
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                data = None
            except OSError:
                return
            if data == b"":
                return
            if data and self.index is None:
                # Counted at its first bytes: a port probe is no connection.
                with lock:
                    stats["connections"] += 1
                    self.index = stats["connections"]
            if data:
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self.flush()
                    return
                for event in events:
                    if self.handle(event) == "close":
                        return
            self.send_pending()
            try:
                self.flush()
            except OSError:
                return
            if self.silent and not self.pending:
                while True:  # a peer gone quiet: nothing read, nothing sent
                    time.sleep(3600)

    def handle(self, event):
        if isinstance(event, h2.events.RequestReceived):
            # Its end comes as a StreamEnded event of its own.
            self.requests[event.stream_id] = [event.headers, bytearray()]
        elif isinstance(event, h2.events.DataReceived):
            if event.stream_id in self.requests:
                self.requests[event.stream_id][1] += event.data
            if MODE != "zero_window":
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
        elif isinstance(event, h2.events.StreamEnded):
            return self.complete(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.pending.pop(event.stream_id, None)
            self.leave(event.stream_id)
        elif isinstance(event, h2.events.PingReceived) and MODE == "slow_pong":
            time.sleep(0.3)  # h2 queued the PONG; it goes with the next flush
        elif isinstance(event, h2.events.WindowUpdated):
            pass
        return None

    def leave(self, stream_id):
        if stream_id in self.open_streams:
            self.open_streams.remove(stream_id)
            with lock:
                stats["open"] -= 1

    def complete(self, stream_id):
        headers, body = self.requests[stream_id]
        fields = {}
        for name, value in headers:
            fields.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        path = fields.get(":path", "/")
        with lock:
            stats["requests"] += 1
            stats["open"] += 1
            stats["max_concurrent"] = max(stats["max_concurrent"], stats["open"])
        self.open_streams.append(stream_id)

        if MODE == "refused":
            with lock:
                first = not refused_once[0]
                refused_once[0] = True
            if first:
                self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                self.leave(stream_id)
                return None
        if MODE == "rst" and path.startswith("/rst"):
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            self.leave(stream_id)
            return None
        if MODE == "bad_frame":
            self.flush()
            self.sock.sendall(frame(0x0, 0x0, 0, b"x"))
            return None
        if MODE == "big_headers":
            fields_out = [(":status", "200")] + [
                ("x-filler-%04d" % i, "v" * 86) for i in range(1000)
            ]
            self.conn.send_headers(stream_id, fields_out, end_stream=True)
            self.leave(stream_id)
            return None
        if MODE == "continuation":
            self.flush()
            block = self.conn.encoder.encode([(":status", "200")])
            self.sock.sendall(frame(0x1, 0x0, stream_id, block))  # no END_HEADERS
            junk = frame(0x9, 0x0, stream_id, b"\x40\x01a\x01b" * 3000)
            sent = 0
            try:
                while sent < 64 * 1024 * 1024:
                    self.sock.sendall(junk)
                    sent += len(junk)
            except OSError:
                pass
            return "close"
        if MODE == "max_streams_1":
            time.sleep(0.1)
        if MODE.startswith("goaway3_") and self.index == 1:
            _, how, code = MODE.split("_", 2)
            if len(self.open_streams) >= 3 and not self.goaway_sent:
                self.goaway_sent = True
                first = self.open_streams[0]
                if how == "done":
                    self.conn.send_headers(
                        first,
                        [(":status", "200"), ("content-length", "4"),
                         ("x-connection", "1"), ("x-stream", str(first))],
                    )
                    self.conn.send_data(first, b"done", end_stream=True)
                else:
                    self.conn.send_headers(
                        first, [(":status", "200"), ("content-length", "100000")]
                    )
                    self.conn.send_data(first, b"y" * 1000)
                self.conn.close_connection(
                    error_code=getattr(h2.errors.ErrorCodes, code),
                    last_stream_id=first,
                )
                self.flush()
                time.sleep(0.2)
                return "close"
            return None
        if MODE == "goaway" and self.index == 1:
            if len(self.open_streams) >= 2 and not self.goaway_sent:
                self.goaway_sent = True
                first = self.open_streams[0]
                self.conn.send_headers(
                    first, [(":status", "200"), ("content-length", "100000")]
                )
                self.conn.send_data(first, b"y" * 1000)
                self.conn.close_connection(
                    error_code=h2.errors.ErrorCodes.NO_ERROR, last_stream_id=first
                )
                self.flush()
                time.sleep(0.2)
                return "close"
            return None

        status = 200
        extra = []
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        if path.startswith("/big"):
            payload = b"x" * int(query["n"][0])
        elif path.startswith("/gzip"):
            payload = gzip.compress(b"compressed over h2\n" * 100)
            extra.append(("content-encoding", "gzip"))
        elif path.startswith("/status"):
            status = int(query["c"][0])
            payload = b""
        elif path.startswith("/redirect"):
            status = 302
            extra.append(("location", query["to"][0]))
            payload = b""
        elif path.startswith("/stats"):
            with lock:
                payload = json.dumps(stats).encode()
        else:
            payload = json.dumps(
                {
                    "method": fields.get(":method"),
                    "path": path,
                    "authority": fields.get(":authority"),
                    "scheme": fields.get(":scheme"),
                    "headers": [
                        [n.decode("latin-1"), v.decode("latin-1")] for n, v in headers
                    ],
                    "body_len": len(body),
                    "body_sha256": hashlib.sha256(body).hexdigest(),
                    "body": body.decode("latin-1"),
                }
            ).encode()
        out = [
            (":status", str(status)),
            ("content-length", str(len(payload))),
            ("x-connection", str(self.index)),
            ("x-stream", str(stream_id)),
        ] + extra
        self.conn.send_headers(stream_id, out, end_stream=not payload)
        if payload:
            self.pending[stream_id] = payload
        else:
            self.leave(stream_id)
        if MODE == "silent" and self.index == 1:
            self.silent = True
        return None

    def send_pending(self):
        """Sends what the windows allow of every pending body."""
        for stream_id in list(self.pending):
            payload = self.pending[stream_id]
            while payload:
                try:
                    window = self.conn.local_flow_control_window(stream_id)
                except (h2.exceptions.StreamClosedError, KeyError):
                    payload = None
                    break
                size = min(window, len(payload), self.conn.max_outbound_frame_size)
                if size <= 0:
                    break
                piece, payload = payload[:size], payload[size:]
                self.conn.send_data(stream_id, piece, end_stream=not payload)
            if payload:
                self.pending[stream_id] = payload
            else:
                del self.pending[stream_id]
                if payload is not None:
                    self.leave(stream_id)


def serve(sock):
    try:
        Peer(sock).run()
    except Exception as e:  # a broken peer ends its connection only
        print("h2_peer connection: %r" % (e,), file=sys.stderr)
    finally:
        sock.close()


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", PORT))
    listener.listen(64)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


main()
