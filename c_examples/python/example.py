"""example.py: a timer and an HTTP fetch from Python through tornado_rs,
against a one-page http.server on 127.0.0.1."""

import http.server
import threading

from tornado_rs import AsyncHTTPClient, IOLoop

class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
threading.Thread(target=httpd.serve_forever, daemon=True).start()

with IOLoop() as loop:
    loop.call_later(0, print, "timer fired")
    client = AsyncHTTPClient(loop)
    response = loop.run_sync(client.fetch("http://127.0.0.1:%d/" % httpd.server_address[1]), timeout=10)
    print(response.code, response.header("Content-Type"), len(response.body), "bytes")
    client.close()
httpd.shutdown()
