"""An independent HTTP server for the client's tests: Tornado's own
HTTPServer on 127.0.0.1 (keep-alive, chunked, gzip, redirects).

Prints "PORT <n>" on stdout once listening; exits when stdin closes, so the
test that started it never leaves it behind.
"""

import sys
import threading

import tornado.ioloop
import tornado.web


class Echo(tornado.web.RequestHandler):
    def get(self):
        self.write("%s %s" % (self.request.method, self.request.uri))

    def post(self):
        self.write("%s %d" % (self.request.method, len(self.request.body)))

    put = post


class Body(tornado.web.RequestHandler):
    """Answers with the request body as received (after any chunked framing)."""

    def post(self):
        self.set_header("Content-Type", "application/octet-stream")
        self.write(self.request.body)

    put = post


class Big(tornado.web.RequestHandler):
    def get(self):
        n = int(self.get_argument("n", "1000000"))
        self.set_header("Content-Type", "text/plain")
        self.write(b"x" * n)


class Chunked(tornado.web.RequestHandler):
    async def get(self):
        for i in range(10):
            self.write("part %d\n" % i)
            await self.flush()


class Redirect(tornado.web.RequestHandler):
    def get(self):
        self.redirect("/echo?from=redirect", status=int(self.get_argument("status", "302")))


class Headers(tornado.web.RequestHandler):
    def get(self):
        self.add_header("Set-Cookie", "a=1")
        self.add_header("Set-Cookie", "b=2")
        self.write(self.request.headers.get("User-Agent", ""))


def main():
    app = tornado.web.Application(
        [
            (r"/echo", Echo),
            (r"/body", Body),
            (r"/big", Big),
            (r"/chunked", Chunked),
            (r"/redirect", Redirect),
            (r"/headers", Headers),
        ],
        compress_response=True,
    )
    server = app.listen(0, address="127.0.0.1")
    port = next(iter(server._sockets.values())).getsockname()[1]
    loop = tornado.ioloop.IOLoop.current()

    def watch_stdin():
        sys.stdin.read()
        loop.add_callback(loop.stop)

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("PORT %d" % port, flush=True)
    loop.start()


if __name__ == "__main__":
    main()
