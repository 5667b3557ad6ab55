// test_wrapper.cpp: include/tornado_rs.hpp, the C++ wrapper, against the
// built library and real sockets on 127.0.0.1 (an HTTP server on the same
// loop, written with the wrapper's TcpServer and IOStream).
//
// tests/cpp_wrapper.rs builds it twice: as C++17 (the coroutine sections
// compiled out; run under valgrind with TORNADO_VALGRIND=1) and as C++20
// with -fsanitize=address,undefined (LeakSanitizer on), where every
// section runs. It needs TORNADO_TEST_CERT, TORNADO_TEST_KEY and
// TORNADO_TEST_CA (a server certificate for tornado.test and 127.0.0.1,
// and its CA) and fails without them. Prints "N passed, M failed".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "tornado_rs.hpp"

#if __cplusplus >= 202002L && !defined(TORNADO_RS_COROUTINES)
#error "C++20 build without TORNADO_RS_COROUTINES: the coroutine part of tornado_rs.hpp was not enabled"
#endif

static int passed, failed;
#define EXPECT(cond, what)                                                               \
    do {                                                                                 \
        if (cond) {                                                                      \
            passed++;                                                                    \
            std::printf("ok - %s\n", what);                                              \
        } else {                                                                         \
            failed++;                                                                    \
            std::printf("not ok - %s (%s:%d: %s)\n", what, __FILE__, __LINE__, #cond); \
        }                                                                                \
        std::fflush(stdout);                                                             \
    } while (0)

static void section(const char *name) { std::printf("# %s\n", name); }

// The most a run_sync waits for what should take milliseconds: generous,
// for valgrind on a loaded machine (the first TLS handshakes are slow
// there), yet a hang still fails.
static const double LIMIT = 60;

// Prints a failed future's error, to explain an EXPECT that fails on it.
static void note(const tornado::Future &f) {
    std::string message;
    if (f.done() && f.error(&message) != TORNADO_OK) std::printf("# %s: %s\n", tornado::code_name(f.error()), message.c_str());
}

// Counts live copies of a lambda's capture: the wrapper must free each one.
static std::atomic<int> live_captures{0};
struct Tracked {
    Tracked() { live_captures++; }
    Tracked(const Tracked &) { live_captures++; }
    Tracked(Tracked &&) noexcept { live_captures++; }
    ~Tracked() { live_captures--; }
};

// An exception type of the test's own: it must come back as itself.
struct Boom : std::runtime_error {
    explicit Boom(const std::string &what) : std::runtime_error(what) {}
};

static std::string env_or_die(const char *name) {
    const char *v = std::getenv(name);
    if (!v || !*v) {
        std::printf("Bail out! %s is not set (tests/cpp_wrapper.rs sets it)\n", name);
        std::exit(2);
    }
    return v;
}

static bool ends_with(const std::string &s, const std::string &tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

static std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// ---- A small HTTP/1.1 server on the loop ------------------------------------
// Answers each request with its own head and body ("<head>--\n<body>"), so
// a test reads what the client sent. Bodies: Content-Length or chunked.
//   /hang      never answered
//   /big       100000 bytes
//   /digest    401 with a Digest challenge unless an Authorization header came
//   /close     answered with "Connection: close", then closed
//   /setcookie answered with two Set-Cookie lines (one persistent, one session)
//   /suffixcookie  answered with "Set-Cookie: wide=1; Domain=tornado.test"
struct HttpConn : std::enable_shared_from_this<HttpConn> {
    explicit HttpConn(tornado::IOStream s) : stream(std::move(s)) {}
    tornado::IOStream stream;
    std::string head, body;

    void read_head() {
        auto self = shared_from_this();
        stream.read_until("\r\n\r\n", 65536).then([self](tornado::Future &f) {
            if (f.error() != TORNADO_OK) return;
            self->head = tornado::value_of<std::string>(f);
            self->body.clear();
            if (self->has_header("transfer-encoding: chunked")) {
                self->read_chunk();
            } else if (std::size_t n = self->content_length()) {
                self->stream.read_bytes(n).then([self](tornado::Future &b) {
                    if (b.error() != TORNADO_OK) return;
                    self->body = tornado::value_of<std::string>(b);
                    self->respond();
                });
            } else {
                self->respond();
            }
        });
    }
    void read_chunk() {
        auto self = shared_from_this();
        stream.read_until("\r\n", 1024).then([self](tornado::Future &f) {
            if (f.error() != TORNADO_OK) return;
            std::size_t size = std::strtoul(tornado::value_of<std::string>(f).c_str(), nullptr, 16);
            if (size == 0) {
                self->stream.read_until("\r\n", 1024).then([self](tornado::Future &t) {
                    if (t.error() == TORNADO_OK) self->respond();
                });
                return;
            }
            self->stream.read_bytes(size + 2).then([self, size](tornado::Future &b) {
                if (b.error() != TORNADO_OK) return;
                self->body += tornado::value_of<std::string>(b).substr(0, size);
                self->read_chunk();
            });
        });
    }
    void respond() {
        std::string path = head.substr(head.find(' ') + 1);
        path = path.substr(0, path.find(' '));
        if (path == "/hang") {  // held open (by the pending read) until the client goes
            auto self = shared_from_this();
            stream.read_until_close().then([self](tornado::Future &) {});
            return;
        }
        std::string status = "200 OK", extra, content = head + "--\n" + body;
        if (path == "/big") content.assign(100000, 'x');
        if (path == "/digest" && !has_header("authorization:")) {
            status = "401 Unauthorized";
            extra = "WWW-Authenticate: Digest realm=\"t\", nonce=\"abc\", qop=\"auth\", algorithm=MD5\r\n";
        }
        if (path == "/setcookie")
            extra = "Set-Cookie: session=abc; Path=/\r\nSet-Cookie: kept=yes; Path=/; Max-Age=3600\r\n";
        if (path == "/suffixcookie") extra = "Set-Cookie: wide=1; Domain=tornado.test; Path=/\r\n";
        bool close = path == "/close";
        if (close) extra += "Connection: close\r\n";
        stream.write("HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(content.size()) + "\r\n" + extra +
                     "\r\n" + content);
        if (close) {
            auto self = shared_from_this();
            stream.write("").then([self](tornado::Future &) { self->stream.close(); });
        } else {
            read_head();
        }
    }
    bool has_header(const std::string &lower_prefix) const {
        std::string h = head;
        for (char &c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return h.find("\r\n" + lower_prefix) != std::string::npos;
    }
    std::size_t content_length() const {
        std::string h = head;
        for (char &c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::size_t at = h.find("\r\ncontent-length:");
        return at == std::string::npos ? 0 : std::strtoul(h.c_str() + at + 17, nullptr, 10);
    }
};

static tornado::TcpServer http_server(tornado::Loop &loop) {
    return tornado::TcpServer(loop, "127.0.0.1", 0, [](tornado::IOStream s, std::string_view) {
        std::make_shared<HttpConn>(std::move(s))->read_head();
    });
}

static std::string body_of(const tornado::Future &f) {
    if (f.error() != TORNADO_OK) return "(failed)";
    return std::string(tornado::HttpClient::response_of(f).body());
}

// A listener that accepts (in the kernel) and never answers.
struct SilentListener {
    int fd = -1;
    std::uint16_t port = 0;
    SilentListener() {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || listen(fd, 8) != 0 ||
            getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
            std::printf("Bail out! no silent listener on 127.0.0.1: %s\n", std::strerror(errno));
            std::exit(2);
        }
        port = ntohs(addr.sin_port);
    }
    ~SilentListener() { close(fd); }
};

// A port with nothing listening (bound, then closed).
static std::uint16_t closed_port() {
    SilentListener l;
    std::uint16_t port = l.port;
    return port;
}

// An HTTP/1.1 server on a Unix domain socket, on a thread of its own:
// answers each connection once with "unix:" and the request line.
struct UnixServer {
    std::string path;
    int fd = -1;
    std::thread thread;
    explicit UnixServer(std::string p) : path(std::move(p)) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        unlink(path.c_str());
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 || listen(fd, 8) != 0) {
            std::printf("Bail out! no Unix socket server at %s: %s\n", path.c_str(), std::strerror(errno));
            std::exit(2);
        }
        thread = std::thread([this] {
            for (;;) {
                int c = accept(fd, nullptr, nullptr);
                if (c < 0) return;  // shut down
                std::string head;
                char buf[4096];
                while (head.find("\r\n\r\n") == std::string::npos) {
                    ssize_t n = read(c, buf, sizeof buf);
                    if (n <= 0) break;
                    head.append(buf, static_cast<std::size_t>(n));
                }
                std::string body = "unix:" + head.substr(0, head.find("\r\n"));
                std::string reply = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: " +
                                    std::to_string(body.size()) + "\r\n\r\n" + body;
                if (write(c, reply.data(), reply.size()) < 0) std::printf("# unix server: write: %s\n", std::strerror(errno));
                close(c);
            }
        });
    }
    ~UnixServer() {
        shutdown(fd, SHUT_RDWR);  // wakes the accept
        thread.join();
        close(fd);
        unlink(path.c_str());
    }
};

// ---- The wrapper's basic calls (as before issue 18) -------------------------
static void test_basics() {
    section("loop, timers, callbacks, futures, errors");
    tornado::Loop loop;
    int order = 0, timer_at = 0, callback_at = 0;
    Tracked tracked;
    loop.call_later(0.02, [&, tracked] { timer_at = ++order; loop.stop(); });
    loop.add_callback([&, tracked] { callback_at = ++order; });
    std::uint64_t never = loop.call_later(10, [tracked] {});
    loop.remove_timeout(never);
    loop.start();
    EXPECT(callback_at == 1 && timer_at == 2, "callback first, then the timer");

    std::thread other([&loop] { loop.add_callback([&loop] { loop.stop(); }); });
    loop.start();
    other.join();
    EXPECT(true, "add_callback from another thread stops the loop");

    bool at_ran = false;
    loop.call_at(loop.time() + 0.01, [&] { at_ran = true; });
    loop.run_sync(loop.sleep(0.05), LIMIT);
    EXPECT(at_ran, "call_at ran by its time");

    tornado::Future slept = loop.sleep(0.01);
    bool then_ran = false;
    slept.then([&](tornado::Future &f) { then_ran = f.done(); });
    EXPECT(loop.run_sync(slept, LIMIT) == TORNADO_OK, "run_sync on a sleep");
    EXPECT(then_ran, "then() ran with the done future, before run_sync returned");

    tornado::Future mine = tornado::Future::pending(loop);
    loop.call_later(0.01, [&] { mine.set_error(TORNADO_ERR_USER + 1, "my error"); });
    std::string message;
    EXPECT(loop.run_sync(mine, LIMIT) == TORNADO_ERR_USER + 1 && mine.error(&message) == TORNADO_ERR_USER + 1 &&
               message == "my error",
           "set_error on a pending future: run_sync returns its code");
    bool threw = false;
    try {
        mine.check();
    } catch (const tornado::Error &e) {
        threw = e.code() == TORNADO_ERR_USER + 1;
    }
    EXPECT(threw, "check() throws the failed future's error");

    tornado::Future a = loop.sleep(0.01), b = loop.sleep(0.02);
    tornado::Future both = loop.multi(a, b);
    EXPECT(loop.run_sync(both, LIMIT) == TORNADO_OK && a.done() && b.done(), "multi of two sleeps");
    tornado::Future never_done = tornado::Future::pending(loop);
    tornado::Future limited = loop.with_timeout(never_done, 0.01);
    EXPECT(loop.run_sync(limited, LIMIT) == TORNADO_ERR_TIMEOUT, "with_timeout fails with TORNADO_ERR_TIMEOUT");
    EXPECT(loop.run_sync(loop.moment(), LIMIT) == TORNADO_OK, "moment");
    EXPECT(loop.run_sync(never_done, 0.01) == TORNADO_ERR_TIMEOUT, "run_sync's own timeout");

    int ticks = 0;
    tornado::PeriodicCallback periodic(loop, 0.005, [&] {
        if (++ticks == 3) loop.stop();
    });
    periodic.set_jitter(0.1);
    periodic.start();
    EXPECT(periodic.is_running(), "a started periodic callback is running");
    loop.start();
    periodic.stop();
    EXPECT(ticks == 3 && !periodic.is_running(), "periodic callback ran three times, then stopped");

    int fds[2];
    EXPECT(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "a socketpair");
    int seen_events = 0;
    loop.add_handler(fds[0], TORNADO_READ, [&](int fd, std::uint32_t events) {
        char c;
        if (read(fd, &c, 1) == 1) seen_events = static_cast<int>(events);
        loop.stop();
    });
    EXPECT(write(fds[1], "x", 1) == 1, "write to the socketpair");
    loop.start();
    EXPECT(seen_events & TORNADO_READ, "fd handler saw TORNADO_READ");
    loop.update_handler(fds[0], TORNADO_READ | TORNADO_WRITE);
    loop.remove_handler(fds[0]);
    close(fds[0]);
    close(fds[1]);

    threw = false;
    try {
        loop.call_later(-1, [] {});
    } catch (const tornado::Error &e) {
        threw = e.code() == TORNADO_ERR_INVALID && std::strstr(e.what(), "call_later") != nullptr;
    }
    EXPECT(threw, "a negative delay throws tornado::Error(TORNADO_ERR_INVALID)");
    threw = false;
    try {
        loop.run_sync(tornado::Future(), 1);
    } catch (const tornado::Error &e) {
        threw = e.code() == TORNADO_ERR_INVALID;
    }
    EXPECT(threw, "run_sync of an empty Future throws TORNADO_ERR_INVALID");
    threw = false;
    try {
        loop.remove_handler(12345);
    } catch (const tornado::Error &e) {
        threw = e.code() == TORNADO_ERR_NOT_FOUND;
    }
    EXPECT(threw, "remove_handler of an fd without one throws TORNADO_ERR_NOT_FOUND");
}

// ---- Exceptions from callbacks: caught at the boundary, rethrown ------------
static void test_exceptions() {
    section("an exception from a callback is rethrown from the Loop call that ran it");
    tornado::Loop loop;
    bool caught = false;
    try {
        loop.call_later(0.01, [] { throw Boom("from a timer"); });
        loop.start();
    } catch (const Boom &e) {
        caught = std::string(e.what()) == "from a timer";
    }
    EXPECT(caught, "start() rethrows a timer's exception, same type and message");

    // The loop is usable afterwards, and no stop request outlived the run.
    bool timer_ran = false;
    loop.call_later(0.02, [&] {
        timer_ran = true;
        loop.stop();
    });
    loop.start();
    EXPECT(timer_ran, "after the exception, start() runs until stop() again");

    caught = false;
    double t0 = loop.time();
    try {
        loop.add_callback([] { throw Boom("from a callback"); });
        loop.run_sync(loop.sleep(5), LIMIT);
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught && loop.time() - t0 < 1, "run_sync rethrows at once, not when its future is done");
    EXPECT(loop.run_sync(loop.sleep(0.01), LIMIT) == TORNADO_OK, "run_sync works normally afterwards");

    caught = false;
    try {
        tornado::Future f = loop.sleep(0);
        f.then([](tornado::Future &) { throw std::logic_error("from then()"); });
        loop.run_sync(loop.sleep(1), LIMIT);
    } catch (const std::logic_error &e) {
        caught = std::string(e.what()) == "from then()";
    }
    EXPECT(caught, "a then() callback's std::logic_error comes out of run_sync");

    caught = false;
    try {
        loop.add_callback([] { throw 42; });
        loop.run_once(0.1);
    } catch (int v) {
        caught = v == 42;
    }
    EXPECT(caught, "run_once rethrows even a non-std exception (an int)");

    // Two in one iteration: the first is kept.
    caught = false;
    try {
        loop.add_callback([] { throw Boom("first"); });
        loop.add_callback([] { throw Boom("second"); });
        loop.start();
    } catch (const Boom &e) {
        caught = std::string(e.what()) == "first";
    }
    EXPECT(caught, "of two exceptions in one run, the first is rethrown");
    loop.run_once(0);  // the second one's iteration, if it was left over
    EXPECT(true, "the discarded one is not rethrown later");

    // A callback run by the C API directly (no wrapper Loop call): the
    // exception waits for the next Loop call on this thread.
    loop.add_callback([] { throw Boom("orphan"); });
    for (int i = 0; i < 3; i++) tornado_loop_run_once(loop.get(), 0);
    caught = false;
    try {
        loop.run_once(0);
    } catch (const Boom &e) {
        caught = std::string(e.what()) == "orphan";
    }
    EXPECT(caught, "an exception from a callback the C API ran is rethrown by the next Loop call");

    // Nested loops: the inner run gets the inner loop's exception.
    caught = false;
    bool outer_clean = true;
    loop.add_callback([&] {
        tornado::Loop inner;
        inner.add_callback([] { throw Boom("inner"); });
        try {
            inner.start();
        } catch (const Boom &) {
            caught = true;
        }
        loop.stop();
    });
    try {
        loop.start();
    } catch (...) {
        outer_clean = false;
    }
    EXPECT(caught && outer_clean, "a nested loop's exception is rethrown by the nested call, not the outer one");

    // Each kind of callback.
    tornado::TcpServer server = http_server(loop);
    std::string url = "http://127.0.0.1:" + std::to_string(server.port());
    tornado::HttpClient http(loop);
    caught = false;
    try {
        http.fetch(tornado::Request(url + "/"), [](const tornado::ResponseView &) { throw Boom("fetch"); });
        loop.start();
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught, "a fetch callback's exception comes out of start()");

    caught = false;
    tornado::Request streamed(url + "/big");
    streamed.streaming_callback([](std::string_view) { throw Boom("streaming"); });
    try {
        tornado::Future f = http.fetch(streamed);
        loop.run_sync(f, LIMIT);
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught, "a streaming callback's exception comes out of run_sync");

    caught = false;
    tornado::Request upload(url + "/upload");
    upload.method("POST").body_producer([](std::uint8_t *, std::size_t) -> std::int64_t { throw Boom("producer"); });
    tornado::Future up = http.fetch(upload);
    try {
        loop.run_sync(up, LIMIT);
    } catch (const Boom &) {
        caught = true;
    }
    loop.run_sync(up, LIMIT);
    auto r = tornado::HttpClient::response_of(up);
    EXPECT(caught && (up.error() != TORNADO_OK || r.code() != 200),
           "a body producer's exception is rethrown and fails its fetch");

    caught = false;
    tornado::Request paused(url + "/big");
    paused.streaming_callback_async([](std::string_view) -> tornado::Future { throw Boom("async streaming"); });
    tornado::Future pf = http.fetch(paused);
    try {
        loop.run_sync(pf, LIMIT);
    } catch (const Boom &) {
        caught = true;
    }
    loop.run_sync(pf, LIMIT);
    EXPECT(caught && pf.done() && (pf.error() != TORNADO_OK || tornado::HttpClient::response_of(pf).error()),
           "an async streaming callback's exception is rethrown and fails its fetch");

    caught = false;
    tornado::Request async_upload(url + "/upload");
    async_upload.method("POST").body_producer_async([](tornado::BodyWriter) -> tornado::Future { throw Boom("async producer"); });
    tornado::Future auf = http.fetch(async_upload);
    try {
        loop.run_sync(auf, LIMIT);
    } catch (const Boom &) {
        caught = true;
    }
    loop.run_sync(auf, LIMIT);
    EXPECT(caught && auf.done() && (auf.error() != TORNADO_OK || tornado::HttpClient::response_of(auf).error()),
           "an async body producer's exception is rethrown and fails its fetch");

    caught = false;
    tornado::Request with_headers(url + "/");
    with_headers.header_callback([](std::string_view) { throw Boom("header"); });
    try {
        tornado::Future f = http.fetch(with_headers);
        loop.run_sync(f, LIMIT);
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught, "a header callback's exception comes out of run_sync");

    caught = false;
    int fds[2];
    EXPECT(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0 && write(fds[1], "x", 1) == 1, "a readable socketpair");
    loop.add_handler(fds[0], TORNADO_READ, [](int, std::uint32_t) { throw Boom("fd handler"); });
    try {
        loop.start();
    } catch (const Boom &) {
        caught = true;
    }
    loop.remove_handler(fds[0]);
    close(fds[0]);
    close(fds[1]);
    EXPECT(caught, "an fd handler's exception comes out of start()");

    caught = false;
    tornado::ClientOptions throwing;
    throwing.resolver([](std::string_view, std::uint16_t, int, tornado::ResolveReply) { throw Boom("resolver"); });
    tornado::HttpClient resolving(loop, throwing);
    tornado::Future rf = resolving.fetch("http://nowhere.test:" + std::to_string(server.port()) + "/");
    try {
        loop.run_sync(rf, LIMIT);
    } catch (const Boom &) {
        caught = true;
    }
    loop.run_sync(rf, LIMIT);
    EXPECT(caught && rf.error() == TORNADO_ERR_RESOLVE,
           "a resolver's exception is rethrown, and its unanswered reply fails the lookup");

    caught = false;
    tornado::TcpServer accepting(loop, "127.0.0.1", 0, [](tornado::IOStream, std::string_view) { throw Boom("accept"); });
    tornado::FutureOf<tornado::IOStream> conn = tornado::tcp_connect(loop, "127.0.0.1", accepting.port(), 5);
    try {
        loop.run_sync(loop.sleep(2), LIMIT);
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught, "an accept callback's exception comes out of run_sync");
    loop.run_sync(conn, LIMIT);

    caught = false;
    tornado::IOStream client = conn.value();
    client.set_close_callback([] { throw Boom("close"); });
    client.close();
    try {
        loop.run_sync(loop.sleep(2), LIMIT);
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught, "a close callback's exception comes out of run_sync");

    caught = false;
    tornado::PeriodicCallback periodic(loop, 0.001, [] { throw Boom("periodic"); });
    periodic.start();
    try {
        loop.start();
    } catch (const Boom &) {
        caught = true;
    }
    periodic.stop();
    EXPECT(caught, "a periodic callback's exception comes out of start()");
}

// ---- Move-only callables and movable handles ---------------------------------
template <typename T>
constexpr bool move_only_handle = std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T> &&
                                  !std::is_copy_constructible_v<T> && !std::is_copy_assignable_v<T>;
static_assert(move_only_handle<tornado::Loop>);
static_assert(move_only_handle<tornado::Future>);
static_assert(move_only_handle<tornado::FutureOf<tornado::IOStream>>);
static_assert(move_only_handle<tornado::HttpClient>);
static_assert(move_only_handle<tornado::Request>);
static_assert(move_only_handle<tornado::Response>);
static_assert(move_only_handle<tornado::ClientOptions>);
static_assert(move_only_handle<tornado::IOStream>);
static_assert(move_only_handle<tornado::TcpServer>);
static_assert(move_only_handle<tornado::TlsOptions>);
static_assert(move_only_handle<tornado::TlsServerConfig>);
static_assert(move_only_handle<tornado::PeriodicCallback>);
static_assert(move_only_handle<tornado::BodyWriter>);
static_assert(move_only_handle<tornado::ResolveReply>);
static_assert(move_only_handle<tornado::WebSocket>);
static_assert(move_only_handle<tornado::WebSocketOptions>);
static_assert(move_only_handle<tornado::Function<void()>>);
#ifdef TORNADO_RS_COROUTINES
static_assert(move_only_handle<tornado::Task<int>>);
#endif

static void test_move_only() {
    section("move-only callables; movable handles");
    tornado::Loop first;
    tornado::Loop loop = std::move(first);
    EXPECT(first.get() == nullptr && loop.get() != nullptr, "a moved-from Loop is empty");
    int got = 0;
    auto seven = std::make_unique<int>(7);
    loop.add_callback([p = std::move(seven), &got] { got += *p; });
    auto eight = std::make_unique<int>(8);
    loop.call_later(0.001, [p = std::move(eight), &got] { got += *p; });
    tornado::Future f = loop.sleep(0.01);
    auto nine = std::make_unique<int>(9);
    f.then([p = std::move(nine), &got](tornado::Future &) { got += *p; });
    loop.run_sync(f, LIMIT);
    loop.run_sync(loop.moment(), LIMIT);
    EXPECT(got == 24, "lambdas owning a std::unique_ptr as add_callback, call_later and then() callbacks");

    tornado::Function<int(int)> fn = [p = std::make_unique<int>(2)](int x) { return x * *p; };
    tornado::Function<int(int)> moved = std::move(fn);
    EXPECT(!fn && moved && moved(21) == 42, "tornado::Function holds and moves a move-only lambda");
    bool threw = false;
    try {
        fn(1);
    } catch (const std::bad_function_call &) {
        threw = true;
    }
    EXPECT(threw, "calling an empty tornado::Function throws std::bad_function_call");
    threw = false;
    try {
        loop.add_callback(nullptr);
    } catch (const tornado::Error &e) {
        threw = e.code() == TORNADO_ERR_INVALID && std::strstr(e.what(), "add_callback") != nullptr;
    }
    EXPECT(threw, "an empty callback is refused with TORNADO_ERR_INVALID, naming the call");

    // Move assignment of a loop releases the old one (and its pending callbacks).
    {
        tornado::Loop a, b;
        Tracked t;
        a.call_later(100, [t] {});
        EXPECT(live_captures == 2, "a pending timer holds its capture");
        a = std::move(b);
        EXPECT(live_captures == 1, "move-assigning a Loop frees the old one and drops its pending timer");
        a.run_sync(a.sleep(0.001), LIMIT);
        EXPECT(true, "the loop moved in runs");
    }

    tornado::TcpServer server = http_server(loop);
    std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
    std::vector<tornado::HttpClient> clients;
    clients.push_back(tornado::HttpClient(loop));
    clients.emplace_back(loop, 2);
    tornado::HttpClient assigned(loop);
    assigned = std::move(clients[0]);
    tornado::Request req(url + "moved");
    tornado::Request other(url);
    other = std::move(req);
    std::string body;
    auto token = std::make_unique<std::string>("unique");
    assigned.fetch(other, [t = std::move(token), &body, &loop](const tornado::ResponseView &r) {
        body = std::string(r.body()) + *t;
        loop.stop();
    });
    loop.start();
    EXPECT(body.rfind("GET /moved ", 0) == 0 && ends_with(body, "unique"),
           "a moved HttpClient fetches a move-assigned Request with a move-only callback");
    tornado::FutureOf<tornado::Response> rf = clients[1].fetch(url);
    tornado::FutureOf<tornado::Response> rf2 = std::move(rf);
    loop.run_sync(rf2, LIMIT);
    tornado::Response resp = rf2.value();
    tornado::Response resp2 = std::move(resp);
    EXPECT(resp2.code() == 200 && resp2.body().rfind("GET / HTTP/1.1", 0) == 0, "a Response moved out of its future");
}

// ---- Pending callbacks are released when their owner goes ------------------
static void test_release() {
    section("pending callbacks are released (their captures destroyed) when their future, client or loop goes");
    {
        bool called = false;
        {
            tornado::Loop loop;
            tornado::Future never = tornado::Future::pending(loop);
            Tracked tracked;
            never.then([&called, tracked](tornado::Future &) { called = true; });
            EXPECT(live_captures == 2, "a pending then() holds its capture");
        }
        EXPECT(!called && live_captures == 0, "future and loop freed: the pending then() lambda was deleted uncalled");
    }
    {
        tornado::Loop loop;
        {
            tornado::Future never = tornado::Future::pending(loop);
            Tracked tracked;
            never.then([tracked](tornado::Future &) {});
        }
        EXPECT(live_captures == 0, "a pending future's last reference released: its then() lambda was deleted");
    }
    SilentListener silent;
    std::string hang = "http://127.0.0.1:" + std::to_string(silent.port) + "/never";
    {
        // The loop goes first: the fetch can never call back.
        bool called = false;
        auto *loop = new tornado::Loop;
        auto *http = new tornado::HttpClient(*loop);
        {
            Tracked tracked;
            http->fetch(tornado::Request(hang), [&called, tracked](const tornado::ResponseView &) { called = true; });
            tornado::Request streaming(hang);
            streaming.streaming_callback([tracked](std::string_view) {});
            http->fetch(streaming);
        }
        for (int i = 0; i < 3; i++) loop->run_once(0.01);
        EXPECT(live_captures == 2, "pending fetches hold their captures (a callback, a streaming callback)");
        delete loop;
        delete http;
        EXPECT(!called && live_captures == 0, "loop then client freed: the pending fetch lambdas were deleted uncalled");
    }
    {
        // The client goes first: the callback gets a 599 `closed`, then is deleted.
        tornado::Loop loop;
        int code = 0;
        {
            tornado::HttpClient http(loop);
            Tracked tracked;
            http.fetch(tornado::Request(hang), [&code, tracked](const tornado::ResponseView &r) { code = r.code(); });
            for (int i = 0; i < 3; i++) loop.run_once(0.01);
        }
        loop.run_sync(loop.sleep(0.01), LIMIT);
        EXPECT(code == 599 && live_captures == 0, "client freed first: the fetch callback ran once with 599, then was deleted");
    }
    {
        // A request's callbacks live as long as the request and its fetches.
        tornado::Loop loop;
        {
            Tracked tracked;
            tornado::Request r("http://127.0.0.1:1/");
            r.streaming_callback([tracked](std::string_view) {})
                .header_callback([tracked](std::string_view) {})
                .body_producer([tracked](std::uint8_t *, std::size_t) -> std::int64_t { return 0; });
            EXPECT(live_captures == 4, "a request holds its callbacks' captures");
        }
        EXPECT(live_captures == 0, "the request freed: its callbacks were deleted");
    }
}

// ---- HTTP: client options, request options, issue-13 calls ------------------
static void test_http() {
    section("HTTP client options, request options, body producers, auth, resolver, counts, os_error");
    tornado::Loop loop;
    tornado::TcpServer server = http_server(loop);
    std::uint16_t port = server.port();
    std::string url = "http://127.0.0.1:" + std::to_string(port);

    tornado::Request defaults("http://ignored/");
    defaults.header("X-Default", "yes").user_agent("cpp-test/1");
    tornado::ClientOptions options;
    options.max_clients(1)
        .max_buffer_size(1 << 20)
        .max_header_size(16384)
        .max_body_size(50000)
        .idle_timeout(30)
        .max_idle_per_host(2)
        .hostname_mapping("mapped.test", "127.0.0.1")
        .endpoint_mapping("elsewhere.test", 80, "127.0.0.1", port)
        .defaults(defaults);
    tornado::HttpClient http(loop, options);

    tornado::Future a = http.fetch(http.request(url + "/hang"));
    tornado::Future b = http.fetch(http.request(url + "/b"));
    tornado::Future c = http.fetch(http.request(url + "/c"));
    loop.run_once(0.05);
    EXPECT(http.active() == 1 && http.queued() == 2, "max_clients(1): one fetch active, two queued");
    a.cancel();
    loop.run_sync(loop.multi(b, c), LIMIT);
    EXPECT(a.error() == TORNADO_ERR_CANCELLED && b.error() == TORNADO_OK, "the active one cancelled, the queued ones ran");
    EXPECT(http.active() == 0 && http.queued() == 0, "all done: none active, none queued");
    std::string sent = body_of(c);
    EXPECT(sent.find("\r\nX-Default: yes\r\n") != std::string::npos &&
               sent.find("\r\nUser-Agent: cpp-test/1\r\n") != std::string::npos,
           "defaults: requests from HttpClient::request() carry the default header and user agent");
    EXPECT(http.idle_connections() == 1, "one idle keep-alive connection kept");

    tornado::Future mapped = http.fetch("http://mapped.test:" + std::to_string(port) + "/m");
    tornado::Future endpoint = http.fetch("http://elsewhere.test/e");
    loop.run_sync(loop.multi(mapped, endpoint), LIMIT);
    EXPECT(body_of(mapped).find("\r\nHost: mapped.test:" + std::to_string(port) + "\r\n") != std::string::npos,
           "hostname_mapping: mapped.test reached at 127.0.0.1 (no DNS), Host kept");
    EXPECT(body_of(endpoint).find("\r\nHost: elsewhere.test\r\n") != std::string::npos,
           "endpoint_mapping: elsewhere.test:80 reached at 127.0.0.1:port");

    tornado::Future big = http.fetch(url + "/big");
    loop.run_sync(big, LIMIT);
    std::string message;
    EXPECT(big.error(&message) == TORNADO_ERR_TOO_LARGE && message.rfind("body_too_large", 0) == 0,
           "max_body_size: a 100000-byte body fails with body_too_large");

    tornado::HttpClient plain(loop, 10);
    tornado::Request req(url + "/options");
    req.method("PUT")
        .header("X-Client", "c++")
        .header_bytes("X-Latin", std::string_view("caf\xe9", 4))
        .body("payload")
        .connect_timeout(5)
        .request_timeout(5)
        .follow_redirects(false)
        .max_redirects(0)
        .decompress_response(false)
        .allow_ipv6(false)
        .network_interface(std::string("127.0.0.1"))
        .if_modified_since(0)
        .allow_nonstandard_methods(false)
        .expect_100_continue(false)
        .auth("user", "pass");
    std::vector<std::string> header_lines;
    req.header_callback([&](std::string_view line) { header_lines.emplace_back(line); });
    tornado::FutureOf<tornado::Response> opt = plain.fetch(req);
    loop.run_sync(opt, LIMIT);
    tornado::Response r = opt.value();
    std::string echoed(r.body());
    EXPECT(r.code() == 200 && echoed.rfind("PUT /options HTTP/1.1\r\n", 0) == 0, "method and path sent");
    EXPECT(echoed.find("\r\nX-Client: c++\r\n") != std::string::npos, "header sent");
    EXPECT(echoed.find(std::string("\r\nX-Latin: caf\xe9\r\n")) != std::string::npos, "header_bytes sent byte for byte");
    EXPECT(echoed.find("\r\nIf-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n") != std::string::npos,
           "if_modified_since sent");
    EXPECT(echoed.find("\r\nAuthorization: Basic dXNlcjpwYXNz\r\n") != std::string::npos, "basic auth sent");
    EXPECT(ends_with(echoed, "--\npayload"), "body sent");
    EXPECT(!header_lines.empty() && header_lines.front().rfind("HTTP/1.1 200", 0) == 0 && header_lines.back() == "\r\n",
           "header_callback saw the status line first and the empty line last");
    auto all = r.headers();
    EXPECT(all.size() == 1 && all[0].first == "Content-Length", "headers(): the one header");
    const char *name = nullptr;
    EXPECT(r.header_bytes(0, &name) == std::to_string(echoed.size()) && std::string(name) == "Content-Length",
           "header_bytes(0)");
    EXPECT(r.header_block() == "Content-Length: " + std::to_string(echoed.size()) + "\r\n", "header_block()");
    EXPECT(r.effective_url() == url + "/options" && r.error() == nullptr && r.error_code() == TORNADO_OK &&
               r.os_error() == 0,
           "effective_url; no error, no os_error");
    tornado_http_time_info times = r.time_info();
    EXPECT(r.request_time() >= 0 && r.start_time() > 1e9 && times.total >= times.connect && times.total > 0,
           "request_time, start_time, time_info");

    // Issue 13's calls: auth mode, body producers, resolver, os_error.
    tornado::Request digest(url + "/digest");
    digest.auth("u", "p").auth_mode("digest");
    tornado::FutureOf<tornado::Response> df = plain.fetch(digest);
    loop.run_sync(df, LIMIT);
    std::string dbody(df.value().body());
    EXPECT(df.value().code() == 200 && dbody.find("\r\nAuthorization: Digest username=\"u\"") != std::string::npos &&
               dbody.find("response=\"") != std::string::npos,
           "auth_mode(\"digest\"): the 401 challenge answered with a Digest Authorization");
    bool threw = false;
    try {
        tornado::Request(url).auth_mode("bogus");
    } catch (const tornado::Error &e) {
        threw = e.code() == TORNADO_ERR_INVALID;
    }
    EXPECT(threw, "auth_mode(\"bogus\") throws TORNADO_ERR_INVALID");

    const char *parts[] = {"hello ", "chunked ", "world"};
    std::size_t next = 0;
    tornado::Request produced(url + "/produced");
    produced.method("POST").body_producer([&](std::uint8_t *buf, std::size_t cap) -> std::int64_t {
        if (next == 3) return 0;
        std::size_t n = std::min(cap, std::strlen(parts[next]));
        std::memcpy(buf, parts[next++], n);
        return static_cast<std::int64_t>(n);
    });
    tornado::FutureOf<tornado::Response> pf = plain.fetch(produced);
    loop.run_sync(pf, LIMIT);
    std::string pbody(pf.value().body());
    EXPECT(pbody.find("\r\nTransfer-Encoding: chunked\r\n") != std::string::npos &&
               ends_with(pbody, "--\nhello chunked world"),
           "body_producer: the upload streamed chunked");

    tornado::Request async_produced(url + "/async");
    async_produced.method("POST").body_producer_async([&loop](tornado::BodyWriter w) -> tornado::Future {
        tornado::Future first = w.write("async ");
        tornado::Future done = tornado::Future::pending(loop);
        // The writer moves into a later callback, which ends the body.
        loop.call_later(0.01, [w = std::move(w), done = done.share()]() mutable {
            tornado::Future last = w.write("body");
            last.then([done = done.share()](tornado::Future &) mutable { done.set_result(); });
        });
        return done;
    });
    tornado::FutureOf<tornado::Response> af = plain.fetch(async_produced);
    loop.run_sync(af, LIMIT);
    std::string abody(af.value().body());
    EXPECT(ends_with(abody, "--\nasync body"),
           "body_producer_async: a BodyWriter moved into a later callback finished the upload");

    std::vector<std::string> asked;
    tornado::ClientOptions with_resolver;
    with_resolver.resolver([&](std::string_view host, std::uint16_t p, int, tornado::ResolveReply reply) {
        asked.emplace_back(host);
        // Answered later, from a timer that owns the reply.
        loop.call_later(0.001, [reply = std::move(reply), p]() mutable { reply.add("127.0.0.1", p).done(); });
    });
    tornado::HttpClient resolving(loop, with_resolver);
    tornado::FutureOf<tornado::Response> rf = resolving.fetch("http://resolved.test:" + std::to_string(port) + "/r");
    loop.run_sync(rf, LIMIT);
    EXPECT(asked.size() == 1 && asked[0] == "resolved.test" && rf.value().code() == 200,
           "resolver: asked for resolved.test, answered later through a moved ResolveReply");

    std::uint16_t refused = closed_port();
    tornado::Future cf = plain.fetch("http://127.0.0.1:" + std::to_string(refused) + "/");
    loop.run_sync(cf, LIMIT);
    EXPECT(cf.error() == TORNADO_ERR_CONNECT && cf.os_error() == ECONNREFUSED, "a refused connect: CONNECT, ECONNREFUSED");
    int os_error = 0, error_code = 0;
    plain.fetch(tornado::Request("http://127.0.0.1:" + std::to_string(refused) + "/"),
                [&](const tornado::ResponseView &resp) {
                    os_error = resp.os_error();
                    error_code = resp.error_code();
                    loop.stop();
                });
    loop.start();
    EXPECT(os_error == ECONNREFUSED && error_code == TORNADO_ERR_CONNECT, "ResponseView::os_error and error_code");

    tornado::Future hanging = plain.fetch(url + "/hang");
    loop.run_sync(loop.sleep(0.02), LIMIT);
    plain.cancel_all();
    loop.run_sync(hanging, LIMIT);
    EXPECT(hanging.error() == TORNADO_ERR_CANCELLED, "cancel_all ends a fetch in flight with CANCELLED");

    std::size_t streamed = 0, pauses = 0;
    tornado::Request paced(url + "/big");
    paced.streaming_callback_async([&](std::string_view chunk) -> tornado::Future {
        streamed += chunk.size();
        if (pauses++ % 2) return tornado::Future();  // go on at once
        return loop.sleep(0.001);                    // hold the read back a little
    });
    tornado::FutureOf<tornado::Response> sf = plain.fetch(paced);
    loop.run_sync(sf, LIMIT);
    EXPECT(sf.value().code() == 200 && streamed == 100000 && sf.value().body().empty(),
           "streaming_callback_async: every byte streamed, some chunks paused");

    tornado::Future bad = plain.fetch("ftp://127.0.0.1/");
    loop.run_sync(bad, LIMIT);
    EXPECT(bad.error(&message) == TORNADO_ERR_INVALID_URL && message.rfind("invalid_url", 0) == 0,
           "an ftp URL fails with invalid_url");
    threw = false;
    try {
        tornado::Request(url).min_tls_version("9");
    } catch (const tornado::Error &e) {
        threw = e.code() == TORNADO_ERR_INVALID;
    }
    EXPECT(threw, "min_tls_version(\"9\") throws TORNADO_ERR_INVALID");
}

// ---- TLS: server, per-request options, streams ------------------------------
static void test_tls() {
    section("TLS: a TLS server, per-request TLS options, tcp_connect_tls, start_tls on a stream");
    std::string cert = env_or_die("TORNADO_TEST_CERT"), key = env_or_die("TORNADO_TEST_KEY");
    std::string ca = env_or_die("TORNADO_TEST_CA");
    tornado::Loop loop;
    tornado::TlsServerConfig config(cert, key);
    config.add_alpn("http/1.1");
    tornado::TcpServer server = http_server(loop);
    server.set_tls(config);
    std::string port = std::to_string(server.port());
    tornado::ClientOptions options;
    options.hostname_mapping("tornado.test", "127.0.0.1");
    tornado::HttpClient http(loop, options);

    tornado::Request trusted("https://tornado.test:" + port + "/tls");
    trusted.ca_certs(ca).min_tls_version("1.2").alpn({"http/1.1"}).connect_timeout(LIMIT).request_timeout(LIMIT);
    tornado::Future ok = http.fetch(trusted);
    loop.run_sync(ok, LIMIT);
    note(ok);
    EXPECT(ok.error() == TORNADO_OK && body_of(ok).rfind("GET /tls HTTP/1.1", 0) == 0, "https with ca_certs");

    tornado::Request system_store("https://tornado.test:" + port + "/");
    system_store.connect_timeout(LIMIT).request_timeout(LIMIT);  // the system store's first load is slow under valgrind
    tornado::Future untrusted = http.fetch(system_store);
    loop.run_sync(untrusted, LIMIT);
    note(untrusted);
    EXPECT(untrusted.error() == TORNADO_ERR_TLS, "https without the CA fails with TORNADO_ERR_TLS");

    tornado::Request by_pem("https://127.0.0.1:" + port + "/pem");
    by_pem.ca_pem(read_file(ca)).server_name(std::string("tornado.test"));
    tornado::Future pem = http.fetch(by_pem);
    loop.run_sync(pem, LIMIT);
    note(pem);
    EXPECT(pem.error() == TORNADO_OK, "https to 127.0.0.1 with ca_pem and server_name(tornado.test)");

    tornado::Request unchecked("https://tornado.test:" + port + "/");
    unchecked.validate_cert(false);
    tornado::Future insecure = http.fetch(unchecked);
    loop.run_sync(insecure, LIMIT);
    EXPECT(insecure.error() == TORNADO_OK, "validate_cert(false) accepts the unknown CA");

    bool threw = false;
    try {
        tornado::Request("https://tornado.test/").client_cert_pem("not pem", "not pem");
    } catch (const tornado::Error &e) {
        threw = e.code() == TORNADO_ERR_INVALID;
    }
    EXPECT(threw, "client_cert_pem with malformed PEM throws TORNADO_ERR_INVALID");

    tornado::TlsOptions tls;
    tls.ca_file(ca).add_alpn("http/1.1");
    tornado::FutureOf<tornado::IOStream> cf = tornado::tcp_connect_tls(loop, "127.0.0.1", server.port(), 5, &tls);
    loop.run_sync(cf, LIMIT);
    EXPECT(cf.error() == TORNADO_OK, "tcp_connect_tls to 127.0.0.1 (an IP in the certificate)");
    if (cf.error() == TORNADO_OK) {
        tornado::IOStream s = cf.value();
        EXPECT(s.is_tls() && s.alpn_protocol() == "http/1.1" && s.tls_version().rfind("TLSv1.", 0) == 0 &&
                   !s.tls_cipher().empty() && s.tls_resumed() >= 0,
               "is_tls, alpn_protocol, tls_version, tls_cipher, tls_resumed");
        loop.run_sync(s.write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"), LIMIT);
        tornado::FutureOf<std::string> head = s.read_until("\r\n\r\n");
        loop.run_sync(head, LIMIT);
        EXPECT(head.value().rfind("HTTP/1.1 200 OK\r\n", 0) == 0, "a request by hand over the TLS stream");
    }

    // start_tls on a plain connection, both sides.
    tornado::Future server_side;
    tornado::TcpServer starttls(loop, "127.0.0.1", 0, [&](tornado::IOStream s, std::string_view) {
        server_side = s.start_tls_server(config);
        auto conn = std::make_shared<HttpConn>(std::move(s));
        server_side.then([conn](tornado::Future &f) {
            if (f.error() == TORNADO_OK) conn->read_head();
        });
    });
    tornado::FutureOf<tornado::IOStream> plain = tornado::tcp_connect(loop, "127.0.0.1", starttls.port(), 5);
    loop.run_sync(plain, LIMIT);
    tornado::IOStream s = plain.value();
    tornado::Future handshake = s.start_tls_client("tornado.test", &tls);
    loop.run_sync(handshake, LIMIT);
    EXPECT(handshake.error() == TORNADO_OK && s.is_tls(), "start_tls_client / start_tls_server on a plain connection");

    tornado::TlsOptions none;
    none.validate_cert(true).ca_file(std::nullopt);
    tornado::FutureOf<tornado::IOStream> rejected = tornado::tcp_connect_tls(loop, "127.0.0.1", server.port(), 5, &none);
    loop.run_sync(rejected, LIMIT);
    EXPECT(rejected.error() == TORNADO_ERR_TLS, "tcp_connect_tls with the system store rejects the test CA");
    threw = false;
    try {
        tornado::TlsServerConfig("/nonexistent/cert.pem", "/nonexistent/key.pem");
    } catch (const tornado::Error &) {
        threw = true;
    }
    EXPECT(threw, "a TlsServerConfig from missing files throws");
}

// ---- Streams -----------------------------------------------------------------
static int port_from_env(const char *name) { return std::atoi(env_or_die(name).c_str()); }

static bool throws_invalid(const std::function<void()> &call) {
    try {
        call();
    } catch (const tornado::Error &e) {
        return e.code() == TORNADO_ERR_INVALID;
    }
    return false;
}

// HTTP/2 (issue 16): against nghttpd, started by tests/cpp_wrapper.rs over
// TLS (ALPN) on TORNADO_TEST_H2_PORT and over plain TCP (h2c, prior
// knowledge only) on TORNADO_TEST_H2C_PORT; HTTP/1.1 against our own server.
static void test_http_versions() {
    section("HTTP versions: Request/ClientOptions::http_version, Response::version");
    std::string ca = env_or_die("TORNADO_TEST_CA");
    std::string h2 = "https://127.0.0.1:" + std::to_string(port_from_env("TORNADO_TEST_H2_PORT")) + "/index.html";
    std::string h2c = "http://127.0.0.1:" + std::to_string(port_from_env("TORNADO_TEST_H2C_PORT")) + "/index.html";
    tornado::Loop loop;
    tornado::TcpServer server = http_server(loop);
    std::string h1 = "http://127.0.0.1:" + std::to_string(server.port()) + "/v";

    tornado::HttpClient http(loop, 10);
    tornado::Request alpn(h2);
    alpn.ca_certs(ca);
    tornado::FutureOf<tornado::Response> by_alpn = http.fetch(alpn);
    loop.run_sync(by_alpn, LIMIT);
    note(by_alpn);
    EXPECT(by_alpn.error() == TORNADO_OK && by_alpn.value().code() == 200 && by_alpn.value().version() == 20 &&
               by_alpn.value().body() == "h2 page\n",
           "https to nghttpd: h2 picked by ALPN by default, version() is 20");
    EXPECT(http.http2_connections() == 1 && http.connections_opened() == 1, "one HTTP/2 connection open, one opened");

    tornado::Request prior(h2c);
    prior.http_version(TORNADO_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    tornado::FutureOf<tornado::Response> h2c_fetch = http.fetch(prior);
    loop.run_sync(h2c_fetch, LIMIT);
    note(h2c_fetch);
    EXPECT(h2c_fetch.error() == TORNADO_OK && h2c_fetch.value().version() == 20 && h2c_fetch.value().body() == "h2 page\n",
           "Request::http_version(2_PRIOR_KNOWLEDGE): h2c to nghttpd, version() is 20");

    tornado::FutureOf<tornado::Response> plain = http.fetch(h1);
    loop.run_sync(plain, LIMIT);
    EXPECT(plain.error() == TORNADO_OK && plain.value().version() == 11, "plain http to an HTTP/1.1 server: version() is 11");

    tornado::ClientOptions options;
    options.http_version(TORNADO_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    tornado::HttpClient h2_only(loop, options);
    tornado::FutureOf<tornado::Response> by_default = h2_only.fetch(h2c);
    loop.run_sync(by_default, LIMIT);
    note(by_default);
    EXPECT(by_default.error() == TORNADO_OK && by_default.value().version() == 20,
           "ClientOptions::http_version(2_PRIOR_KNOWLEDGE): the client's requests use h2c");
    tornado::Request back_to_1(h1);
    back_to_1.http_version(TORNADO_HTTP_VERSION_1_1);
    tornado::FutureOf<tornado::Response> chose = h2_only.fetch(back_to_1);
    loop.run_sync(chose, LIMIT);
    EXPECT(chose.error() == TORNADO_OK && chose.value().version() == 11, "a request's own http_version wins over the client's");

    tornado::Request one_one(h2);
    one_one.ca_certs(ca).http_version(TORNADO_HTTP_VERSION_1_1);
    tornado::Future refused = http.fetch(one_one);
    loop.run_sync(refused, LIMIT);
    EXPECT(refused.error() != TORNADO_OK || tornado::HttpClient::response_of(refused).code() == 599,
           "http_version(1_1) to nghttpd (h2 only): the fetch fails, HTTP/2 was not used");

    tornado::Request bad("http://127.0.0.1/");
    EXPECT(throws_invalid([&] { bad.http_version(7); }), "Request::http_version(7) throws Error(TORNADO_ERR_INVALID)");
    EXPECT(throws_invalid([&] { tornado::ClientOptions().http_version(99); }),
           "ClientOptions::http_version(99) throws Error(TORNADO_ERR_INVALID)");

    // HTTP/2 PING liveness: accepted, and an h2 connection idle past it is
    // checked before reuse (nghttpd answers the PING: the same connection).
    tornado::ClientOptions pinging;
    pinging.http2_ping(0.2, 10);  // a generous answer time: valgrind is slow
    tornado::HttpClient pinged(loop, pinging);
    for (int i = 0; i < 2; i++) {
        tornado::Request r(h2);
        r.ca_certs(ca);
        tornado::FutureOf<tornado::Response> f = pinged.fetch(r);
        loop.run_sync(f, LIMIT);
        note(f);
        EXPECT(f.error() == TORNADO_OK && f.value().version() == 20 && f.value().body() == "h2 page\n",
               i == 0 ? "http2_ping(0.2, 10): an h2 fetch to nghttpd" : "after 0.3 s idle (a PING answered): h2 again");
        if (i == 0) loop.run_sync(loop.sleep(0.3), LIMIT);
    }
    EXPECT(pinged.connections_opened() == 1, "the PING was answered: the connection was reused, none other opened");
    tornado::ClientOptions off;
    off.http2_ping(0, 1);
    EXPECT(throws_invalid([] { tornado::ClientOptions().http2_ping(-1, 2); }) &&
               throws_invalid([] { tornado::ClientOptions().http2_ping(5, 0); }) &&
               throws_invalid([] { tornado::ClientOptions().http2_ping(std::nan(""), 2); }) &&
               throws_invalid([] { tornado::ClientOptions().http2_ping(5, HUGE_VAL); }),
           "http2_ping(-1, 2), (5, 0), (NaN, 2), (5, inf) throw TORNADO_ERR_INVALID; (0, 1) is accepted");
}

// curl parity (issue 19): Unix sockets, the cookie jar, the DNS cache TTL.
static void test_curl_parity() {
    section("curl parity: unix_socket, cookies (Netscape files), dns_cache_ttl");
    tornado::Loop loop;
    char dir_template[] = "/tmp/tornado_cpp_XXXXXX";
    std::string dir = mkdtemp(dir_template);
    {
        UnixServer unix_server(dir + "/http.sock");
        tornado::HttpClient http(loop, 10);
        tornado::Request r("http://localhost/over/unix?x=1");
        r.unix_socket(unix_server.path);
        tornado::FutureOf<tornado::Response> f = http.fetch(r);
        loop.run_sync(f, LIMIT);
        note(f);
        EXPECT(f.error() == TORNADO_OK && f.value().body() == "unix:GET /over/unix?x=1 HTTP/1.1",
               "Request::unix_socket: the request went to the server on the socket path");
        tornado::Request missing("http://localhost/");
        missing.unix_socket(dir + "/nothing.sock");
        tornado::Future gone = http.fetch(missing);
        loop.run_sync(gone, LIMIT);
        EXPECT(gone.error() == TORNADO_ERR_CONNECT || tornado::HttpClient::response_of(gone).error_code() == TORNADO_ERR_CONNECT,
               "a socket path nobody listens on fails with a connect error");
        EXPECT(throws_invalid([&] { missing.unix_socket(std::string()); }), "unix_socket(\"\") throws TORNADO_ERR_INVALID");
        EXPECT(throws_invalid([&] { missing.unix_socket(std::string(200, 'x')); }),
               "a path over 107 bytes throws TORNADO_ERR_INVALID");
        missing.unix_socket(std::nullopt);  // back to the URL
    }

    tornado::TcpServer server = http_server(loop);
    std::string url = "http://127.0.0.1:" + std::to_string(server.port());
    tornado::ClientOptions with_cookies;
    with_cookies.cookies(true).dns_cache_ttl(0);
    tornado::HttpClient jar(loop, with_cookies);
    EXPECT(jar.cookie_count() == 0, "a new jar is empty");
    tornado::Future set = jar.fetch(url + "/setcookie");
    loop.run_sync(set, LIMIT);
    EXPECT(jar.cookie_count() == 2, "both Set-Cookie lines kept");
    tornado::Future echo = jar.fetch(url + "/echo");
    loop.run_sync(echo, LIMIT);
    std::string sent = body_of(echo);
    EXPECT(sent.find("\r\nCookie: ") != std::string::npos && sent.find("session=abc") != std::string::npos &&
               sent.find("kept=yes") != std::string::npos,
           "the next fetch sends both cookies back");

    std::string file = dir + "/cookies.txt";
    jar.save_cookies(file);
    std::string saved = read_file(file);
    EXPECT(saved.find("127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc") != std::string::npos &&
               saved.find("\tkept\tyes") != std::string::npos,
           "save_cookies writes a Netscape cookie file (session cookie with expiry 0)");
    jar.clear_cookies();
    EXPECT(jar.cookie_count() == 0, "clear_cookies empties the jar");
    tornado::Future bare = jar.fetch(url + "/echo");
    loop.run_sync(bare, LIMIT);
    EXPECT(body_of(bare).find("\r\nCookie: ") == std::string::npos, "no Cookie header after clear_cookies");

    tornado::HttpClient fresh(loop, with_cookies);
    fresh.load_cookies(file);
    EXPECT(fresh.cookie_count() == 2, "load_cookies reads both back into another client");
    tornado::Future loaded = fresh.fetch(url + "/echo");
    loop.run_sync(loaded, LIMIT);
    EXPECT(body_of(loaded).find("session=abc") != std::string::npos, "the loaded cookies are sent");

    std::ofstream(dir + "/bad.txt") << "127.0.0.1\tFALSE\n";
    EXPECT(throws_invalid([&] { fresh.load_cookies(dir + "/bad.txt"); }) && fresh.cookie_count() == 2,
           "a malformed cookie file throws TORNADO_ERR_INVALID and leaves the jar as it was");
    bool io_error = false;
    try {
        fresh.load_cookies(dir + "/absent.txt");
    } catch (const tornado::Error &e) {
        io_error = e.code() == TORNADO_ERR_IO;
    }
    EXPECT(io_error, "an unreadable cookie file throws Error(TORNADO_ERR_IO)");

    tornado::HttpClient no_jar(loop, 10);
    tornado::Future none = no_jar.fetch(url + "/setcookie");
    loop.run_sync(none, LIMIT);
    EXPECT(no_jar.cookie_count() == 0, "cookies off (the default): nothing kept");
    EXPECT(throws_invalid([&] { no_jar.save_cookies(dir + "/x.txt"); }) && throws_invalid([&] { no_jar.clear_cookies(); }),
           "the jar's calls on a client without cookies throw TORNADO_ERR_INVALID");
    EXPECT(throws_invalid([&] { tornado::ClientOptions().dns_cache_ttl(-1); }), "dns_cache_ttl(-1) throws TORNADO_ERR_INVALID");
    for (const char *name : {"/cookies.txt", "/bad.txt"}) unlink((dir + name).c_str());
    rmdir(dir.c_str());
}

// The cookie jar's public suffix list (ClientOptions::public_suffix_file):
// www.shop.tornado.test mapped to our server on 127.0.0.1 (no DNS) sets a
// cookie for Domain=tornado.test; a list naming "tornado.test" as a public
// suffix refuses it, the built-in list and a list without it keep it.
static void test_public_suffix_file() {
    section("ClientOptions::public_suffix_file: Domain= cookies for a listed suffix refused");
    tornado::Loop loop;
    tornado::TcpServer server = http_server(loop);
    std::string url = "http://www.shop.tornado.test:" + std::to_string(server.port());
    char dir_template[] = "/tmp/tornado_cpp_psl_XXXXXX";
    std::string dir = mkdtemp(dir_template);
    std::string listed = dir + "/listed.dat", unlisted = dir + "/unlisted.dat";
    std::ofstream(listed) << "// ===BEGIN ICANN DOMAINS===\ncom\ntest\ntornado.test\n";
    std::ofstream(unlisted) << "// ===BEGIN ICANN DOMAINS===\ncom\ntest\n";
    auto kept = [&](const std::optional<std::string> &list) -> std::size_t {
        tornado::ClientOptions options;
        options.cookies(true).hostname_mapping("www.shop.tornado.test", "127.0.0.1");
        if (list) options.public_suffix_file(list);
        tornado::HttpClient http(loop, options);
        tornado::Future f = http.fetch(url + "/suffixcookie");
        loop.run_sync(f, LIMIT);
        note(f);
        if (f.error() != TORNADO_OK || tornado::HttpClient::response_of(f).code() != 200) return 99;
        return http.cookie_count();
    };
    EXPECT(kept(listed) == 0, "a list naming tornado.test: the Domain=tornado.test cookie is refused");
    EXPECT(kept(unlisted) == 1, "a list without tornado.test: the cookie is kept");
    EXPECT(kept(std::nullopt) == 1, "the built-in list (no file): the cookie is kept");

    bool named = false;
    try {
        tornado::ClientOptions options;
        options.cookies(true).public_suffix_file(dir + "/absent.dat");
        tornado::HttpClient http(loop, options);
    } catch (const tornado::Error &e) {
        named = std::string(e.what()).find("absent.dat") != std::string::npos;
    }
    EXPECT(named, "a missing list file: the HttpClient constructor throws, naming the file");
    bool not_a_list = false;
    try {
        tornado::ClientOptions options;
        options.cookies(true).public_suffix_file(std::string("/dev/null"));
        tornado::HttpClient http(loop, options);
    } catch (const tornado::Error &) {
        not_a_list = true;
    }
    EXPECT(not_a_list, "a file that is no suffix list (/dev/null): the constructor throws");
    EXPECT(throws_invalid([&] { tornado::ClientOptions().public_suffix_file(std::string("bad\xff")); }),
           "public_suffix_file with invalid UTF-8 throws TORNADO_ERR_INVALID");
    unlink(listed.c_str());
    unlink(unlisted.c_str());
    rmdir(dir.c_str());
}

// An https:// proxy: our TLS server (the test CA's certificate for
// 127.0.0.1) answers the absolute-form request the client sends it over
// TLS, as a forwarding proxy's upstream would.
static void test_https_proxy() {
    section("Request::proxy_ca_certs / proxy_validate_cert: an https:// proxy's certificate");
    std::string cert = env_or_die("TORNADO_TEST_CERT"), key = env_or_die("TORNADO_TEST_KEY");
    std::string ca = env_or_die("TORNADO_TEST_CA");
    tornado::Loop loop;
    tornado::TlsServerConfig config(cert, key);
    tornado::TcpServer proxy = http_server(loop);
    proxy.set_tls(config);
    std::string proxy_url = "https://127.0.0.1:" + std::to_string(proxy.port());
    tornado::HttpClient http(loop, 10);
    auto through = [&](const std::function<void(tornado::Request &)> &configure) {
        tornado::Request r("http://127.0.0.1:9/via-proxy");
        r.proxy(proxy_url, 0).connect_timeout(LIMIT).request_timeout(LIMIT);
        configure(r);
        tornado::Future f = http.fetch(r);
        loop.run_sync(f, LIMIT);
        note(f);
        return f;
    };
    tornado::Future trusted = through([&](tornado::Request &r) { r.proxy_ca_certs(ca); });
    EXPECT(trusted.error() == TORNADO_OK && body_of(trusted).rfind("GET http://127.0.0.1:9/via-proxy HTTP/1.1\r\n", 0) == 0,
           "proxy_ca_certs(the test CA): the absolute-form request reached the proxy over TLS");
    tornado::Future system_store = through([](tornado::Request &) {});
    EXPECT(system_store.error() == TORNADO_ERR_TLS, "without proxy_ca_certs the system store refuses the proxy (TORNADO_ERR_TLS)");
    tornado::Future target_ca_only = through([&](tornado::Request &r) { r.ca_certs(ca).validate_cert(false); });
    EXPECT(target_ca_only.error() == TORNADO_ERR_TLS, "the target's ca_certs / validate_cert(false) do not apply to the proxy");
    tornado::Future insecure = through([](tornado::Request &r) { r.proxy_validate_cert(false); });
    EXPECT(insecure.error() == TORNADO_OK && body_of(insecure).rfind("GET http://", 0) == 0,
           "proxy_validate_cert(false): the unknown CA is accepted");
    std::string message;
    tornado::Future missing = through([](tornado::Request &r) { r.proxy_ca_certs(std::string("/nonexistent/proxy-ca.pem")); });
    EXPECT(missing.error(&message) == TORNADO_ERR_TLS && message.find("proxy-ca.pem") != std::string::npos,
           "an unreadable proxy CA file fails the fetch with TORNADO_ERR_TLS naming the file");
    tornado::Future reset = through([&](tornado::Request &r) { r.proxy_ca_certs(ca).proxy_ca_certs(std::nullopt); });
    EXPECT(reset.error() == TORNADO_ERR_TLS, "proxy_ca_certs(nullopt): back to the system store");
    EXPECT(throws_invalid([] { tornado::Request("http://127.0.0.1/").proxy_ca_certs(std::string("bad\xff")); }),
           "proxy_ca_certs with invalid UTF-8 throws TORNADO_ERR_INVALID");
}

// The WebSocket client against Tornado's WebSocketHandler
// (tests/servers/ws_servers.py, started by tests/cpp_wrapper.rs).
static void test_websocket() {
    section("WebSocket: connect, messages, callbacks, pings, close, options, errors");
    std::string base = "ws://127.0.0.1:" + std::to_string(port_from_env("TORNADO_TEST_WS_PORT"));
    tornado::Loop loop;
    tornado::HttpClient http(loop, 10);

    tornado::FutureOf<tornado::WebSocket> connecting = tornado::WebSocket::connect(http, tornado::Request(base + "/echo"));
    loop.run_sync(connecting, LIMIT);
    note(connecting);
    tornado::WebSocket ws = connecting.value();
    EXPECT(!ws.closed() && ws.subprotocol() == nullptr && ws.extensions() == nullptr, "connected: no subprotocol, no extension");
    loop.run_sync(ws.write_message("h\xc3\xa9llo"), LIMIT);
    auto text = ws.read_message();
    loop.run_sync(text, LIMIT);
    std::optional<tornado::WebSocketMessage> got = text.value();
    EXPECT(got && !got->binary && got->data == "h\xc3\xa9llo", "a text message echoed");
    ws.write_message(std::string_view("\0\xff\x01", 3), true);
    auto bin = ws.read_message();
    loop.run_sync(bin, LIMIT);
    got = bin.value();
    EXPECT(got && got->binary && got->data == std::string("\0\xff\x01", 3), "a binary message echoed, NUL included");
    EXPECT(throws_invalid([&] { ws.write_message("\xff"); }), "text that is not UTF-8 throws TORNADO_ERR_INVALID");
    EXPECT(throws_invalid([&] { ws.ping(std::string(126, 'p')); }), "a ping over 125 bytes throws TORNADO_ERR_INVALID");
    loop.run_sync(ws.ping("are you there"), LIMIT);

    int count = 0;
    bool ended = false;
    ws.on_message([&, t = Tracked()](const std::optional<tornado::WebSocketMessage> &m) {
        if (!m) {
            ended = true;
            return;
        }
        if (++count == 2) loop.stop();
    });
    ws.write_message("one");
    ws.write_message("two");
    loop.start();
    EXPECT(count == 2, "on_message: both messages delivered from the loop");
    ws.on_message([](const std::optional<tornado::WebSocketMessage> &m) {
        if (m) throw Boom("from on_message");
    });
    ws.write_message("three");
    bool caught = false;
    try {
        loop.start();
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught, "an exception from on_message comes out of loop.start() as itself");
    ws.on_message(nullptr);
    ws.write_message("four");
    auto four = ws.read_message();
    loop.run_sync(four, LIMIT);
    EXPECT(four.value() && four.value()->data == "four", "on_message(nullptr): back to read_message");
    loop.run_sync(ws.close(1000, std::string("bye")), LIMIT);
    EXPECT(ws.closed() && ws.error() == TORNADO_OK, "close(1000, \"bye\"): closed cleanly");
    auto after = ws.read_message();
    loop.run_sync(after, LIMIT);
    EXPECT(!after.value(), "read_message after the close: nullopt");
    bool closed_error = false;
    try {
        ws.write_message("late");
    } catch (const tornado::Error &e) {
        closed_error = e.code() == TORNADO_ERR_CLOSED;
    }
    EXPECT(closed_error, "write_message after close throws Error(TORNADO_ERR_CLOSED)");

    tornado::WebSocketOptions options;
    options.subprotocol("chat.v1").subprotocol("chat.v2").compression(6).no_context_takeover(true, false).max_message_size(1000)
        .ping(10, 5).max_write_buffer(1 << 20).close_timeout(2);
    auto sub = tornado::WebSocket::connect(http, tornado::Request(base + "/subprotocol"), &options);
    loop.run_sync(sub, LIMIT);
    note(sub);
    tornado::WebSocket chat = sub.value();
    EXPECT(chat.subprotocol() && std::string(chat.subprotocol()) == "chat.v2", "the server chose the last subprotocol offered");
    loop.run_sync(chat.close(), LIMIT);

    auto deflate = tornado::WebSocket::connect(http, tornado::Request(base + "/deflate"), &options);
    loop.run_sync(deflate, LIMIT);
    tornado::WebSocket z = deflate.value();
    EXPECT(z.extensions() && std::string(z.extensions()).rfind("permessage-deflate", 0) == 0, "permessage-deflate agreed");
    z.write_message(std::string(2000, 'z'));  // over max_message_size once echoed
    auto too_big = z.read_message();
    loop.run_sync(too_big, LIMIT);
    EXPECT(too_big.error() == TORNADO_ERR_TOO_LARGE && z.error() == TORNADO_ERR_TOO_LARGE,
           "an echo over max_message_size fails the read with TORNADO_ERR_TOO_LARGE");

    auto closing = tornado::WebSocket::connect(http, tornado::Request(base + "/close"));
    loop.run_sync(closing, LIMIT);
    tornado::WebSocket c = closing.value();
    auto end = c.read_message();
    loop.run_sync(end, LIMIT);
    EXPECT(!end.value() && c.close_code() == 4001 && std::string(c.close_reason()) == "going away",
           "a close from the server: nullopt, its code and reason");

    std::vector<std::string> pings;
    auto pinging = tornado::WebSocket::connect(http, tornado::Request(base + "/ping"));
    loop.run_sync(pinging, LIMIT);
    tornado::WebSocket p = pinging.value();
    p.on_ping([&](std::string_view data) { pings.emplace_back(data); });
    p.write_message("x");
    auto px = p.read_message();
    loop.run_sync(px, LIMIT);
    EXPECT(!pings.empty() && pings.back() == "hi", "on_ping: the server's ping before its echo");
    // p is destroyed open: its last reference closes it at once.

    // The client's window: Tornado echoes the value offered.
    tornado::WebSocketOptions small;
    small.compression(6).client_max_window_bits(9);
    auto windowed = tornado::WebSocket::connect(http, tornado::Request(base + "/deflate"), &small);
    loop.run_sync(windowed, LIMIT);
    note(windowed);
    tornado::WebSocket w = windowed.value();
    EXPECT(w.extensions() && std::string(w.extensions()) == "permessage-deflate; client_max_window_bits=9",
           "client_max_window_bits(9): Tornado agrees to client_max_window_bits=9");
    loop.run_sync(w.write_message(std::string(5000, 'w')), LIMIT);
    auto echoed = w.read_message();
    loop.run_sync(echoed, LIMIT);
    EXPECT(echoed.error() == TORNADO_OK && echoed.value() && echoed.value()->data == std::string(5000, 'w'),
           "a message compressed with the 2^9 window echoed intact");
    loop.run_sync(w.close(), LIMIT);
    tornado::WebSocketOptions bare;
    bare.compression(6).client_max_window_bits(0);
    auto unbounded = tornado::WebSocket::connect(http, tornado::Request(base + "/deflate"), &bare);
    loop.run_sync(unbounded, LIMIT);
    tornado::WebSocket u = unbounded.value();
    EXPECT(u.extensions() && std::string(u.extensions()).find("client_max_window_bits") == std::string::npos,
           "client_max_window_bits(0): offered bare, Tornado leaves it out");
    loop.run_sync(u.close(), LIMIT);
    EXPECT(throws_invalid([] { tornado::WebSocketOptions().compression(6).client_max_window_bits(7); }) &&
               throws_invalid([] { tornado::WebSocketOptions().compression(6).client_max_window_bits(16); }),
           "client_max_window_bits(7) and (16) throw TORNADO_ERR_INVALID");
    EXPECT(throws_invalid([] { tornado::WebSocketOptions().compression(-1).client_max_window_bits(9); }),
           "client_max_window_bits with compression off throws TORNADO_ERR_INVALID");
    EXPECT(throws_invalid([&] { tornado::WebSocketOptions().compression(12); }), "compression(12) throws TORNADO_ERR_INVALID");
    EXPECT(throws_invalid([&] { tornado::WebSocketOptions().subprotocol("not a token"); }),
           "a subprotocol that is no token throws TORNADO_ERR_INVALID");
    bool bad_url = false;
    try {
        tornado::WebSocket::connect(http, tornado::Request("http://127.0.0.1/"));
    } catch (const tornado::Error &e) {
        bad_url = e.code() == TORNADO_ERR_INVALID_URL;
    }
    EXPECT(bad_url, "connect to an http:// URL throws Error(TORNADO_ERR_INVALID_URL)");
    tornado::TcpServer plain = http_server(loop);
    auto refused = tornado::WebSocket::connect(http, tornado::Request("ws://127.0.0.1:" + std::to_string(plain.port()) + "/"));
    loop.run_sync(refused, LIMIT);
    std::string message;
    EXPECT(refused.error(&message) == TORNADO_ERR_PROTOCOL && message.find("HTTP 200") != std::string::npos,
           "an HTTP server that answers 200: the handshake fails with TORNADO_ERR_PROTOCOL");
}

static void test_streams() {
    section("streams: read_until, read_bytes, write, read_until_close, close callback, errors");
    tornado::Loop loop;
    int fds[2];
    EXPECT(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "a socketpair");
    tornado::IOStream a = tornado::IOStream::from_fd(loop, fds[0]);
    tornado::IOStream b = tornado::IOStream::from_fd(loop, fds[1]);
    EXPECT(a.fd() == fds[0] && !a.closed(), "from_fd: the stream owns the fd");
    a.set_max_buffer_size(1 << 20);
    tornado::Future w = a.write("line one\nsix bytes and the rest");
    tornado::FutureOf<std::string> line = b.read_until("\n", 100);
    loop.run_sync(line, LIMIT);
    EXPECT(line.value() == "line one\n", "read_until");
    tornado::FutureOf<std::string> six = b.read_bytes(6);
    loop.run_sync(six, LIMIT);
    EXPECT(six.value() == "six by", "read_bytes");
    EXPECT(w.done() && w.error() == TORNADO_OK, "the write is done");
    bool closed_cb = false;
    b.set_close_callback([&] { closed_cb = true; });
    tornado::FutureOf<std::string> rest = b.read_until_close();
    a.close();
    loop.run_sync(rest, LIMIT);
    loop.run_sync(loop.moment(), LIMIT);
    EXPECT(rest.value() == "tes and the rest" && b.closed() && closed_cb, "read_until_close; the close callback ran");
    EXPECT(b.error() == TORNADO_OK, "a clean close has no error");
    bool threw = false;
    try {
        a.write("after close");
    } catch (const tornado::Error &) {
        threw = true;
    }
    tornado::Future after = a.closed() ? tornado::Future() : a.write("x");
    EXPECT(threw || after.error() != TORNADO_OK, "writing to a closed stream fails");
    threw = false;
    try {
        tornado::FutureOf<std::string> f = b.read_bytes(1);
        loop.run_sync(f, LIMIT);
        f.value();
    } catch (const tornado::Error &e) {
        threw = e.code() == TORNADO_ERR_CLOSED;
    }
    EXPECT(threw, "value() of a read on a closed stream throws TORNADO_ERR_CLOSED");

    // A TCP echo server and client.
    tornado::TcpServer echo(loop, "127.0.0.1", 0, [](tornado::IOStream s, std::string_view) {
        auto held = std::make_shared<tornado::IOStream>(std::move(s));
        held->read_until("\n").then([held](tornado::Future &f) {
            if (f.error() == TORNADO_OK) held->write("echo: " + tornado::value_of<std::string>(f));
        });
    });
    tornado::FutureOf<tornado::IOStream> cf = tornado::tcp_connect(loop, "127.0.0.1", echo.port(), 5);
    loop.run_sync(cf, LIMIT);
    tornado::IOStream c = cf.value();
    c.set_nodelay(true);
    c.write("hi\n");
    tornado::FutureOf<std::string> reply = c.read_until("\n");
    loop.run_sync(reply, LIMIT);
    EXPECT(reply.value() == "echo: hi\n", "TcpServer + tcp_connect echo");
    echo.stop();
    tornado::FutureOf<tornado::IOStream> refused = tornado::tcp_connect(loop, "127.0.0.1", closed_port(), 5);
    loop.run_sync(refused, LIMIT);
    EXPECT(refused.error() == TORNADO_ERR_CONNECT && refused.os_error() == ECONNREFUSED,
           "tcp_connect to a closed port: CONNECT, ECONNREFUSED");
}

#ifdef TORNADO_RS_COROUTINES
// ---- Coroutines (C++20) ------------------------------------------------------
// As a Tornado coroutine reads: `response = await http.fetch(url)`.
static tornado::Task<std::string> fetch_body(tornado::HttpClient &http, std::string url) {
    tornado::Response response = co_await http.fetch(url);
    co_return std::string(response.body());
}

static tornado::Task<std::size_t> fetch_three(tornado::HttpClient &http, std::string url) {
    std::size_t total = 0;
    for (const char *path : {"/1", "/2", "/3"}) {
        std::string body = co_await fetch_body(http, url + path);
        if (body.rfind(std::string("GET ") + path + " ", 0) != 0) throw Boom("wrong body for " + std::string(path));
        total++;
    }
    co_return total;
}

static tornado::Task<int> refused_code(tornado::HttpClient &http, std::string url) {
    try {
        co_await http.fetch(url);
    } catch (const tornado::Error &e) {
        co_return e.code();
    }
    co_return 0;
}

static tornado::Task<> throws_after_sleep(tornado::Loop &loop) {
    co_await loop.sleep(0.001);
    throw Boom("from a coroutine");
}

static tornado::Task<std::string> echo_client(tornado::Loop &loop, std::uint16_t port) {
    tornado::IOStream stream = co_await tornado::tcp_connect(loop, "127.0.0.1", port, 5);
    co_await stream.write("ping\n");
    std::string line = co_await stream.read_until("\n");
    co_return line;
}

static tornado::Task<> echo_handler(tornado::IOStream stream) {
    std::string line = co_await stream.read_until("\n");
    co_await stream.write("pong: " + line);
}

static tornado::Task<> waits(tornado::Future f, Tracked t) {
    (void)t;
    co_await f;
}

static tornado::Task<std::string> ws_echo(tornado::HttpClient &http, std::string url) {
    tornado::WebSocket ws = co_await tornado::WebSocket::connect(http, tornado::Request(url));
    co_await ws.write_message("by co_await");
    std::optional<tornado::WebSocketMessage> m = co_await ws.read_message();
    co_await ws.close(1000);
    co_return m ? m->data : "(closed)";
}

static void test_coroutines() {
    {
        section("coroutines: a WebSocket with co_await");
        tornado::Loop loop;
        tornado::HttpClient http(loop, 10);
        std::string url = "ws://127.0.0.1:" + std::to_string(port_from_env("TORNADO_TEST_WS_PORT")) + "/echo";
        EXPECT(loop.run_sync(ws_echo(http, url), LIMIT) == "by co_await",
               "co_await WebSocket::connect, write_message, read_message, close");
    }
    section("co_await on tornado::Future with tornado::Task (C++20)");
    tornado::Loop loop;
    tornado::TcpServer server = http_server(loop);
    std::string url = "http://127.0.0.1:" + std::to_string(server.port());
    tornado::HttpClient http(loop);

    std::string body = loop.run_sync(fetch_body(http, url + "/co"), LIMIT);
    EXPECT(body.rfind("GET /co HTTP/1.1\r\n", 0) == 0, "a Task fetches with co_await; run_sync returns its value");
    EXPECT(loop.run_sync(fetch_three(http, url), LIMIT) == 3, "a Task co_awaits another Task three times in a row");
    EXPECT(loop.run_sync(refused_code(http, "http://127.0.0.1:" + std::to_string(closed_port()) + "/"), LIMIT) ==
               TORNADO_ERR_CONNECT,
           "a failed fetch throws tornado::Error inside the coroutine, caught there");
    bool caught = false;
    try {
        loop.run_sync(throws_after_sleep(loop), LIMIT);
    } catch (const Boom &e) {
        caught = std::string(e.what()) == "from a coroutine";
    }
    EXPECT(caught, "a coroutine's exception comes out of run_sync(task), same type");

    std::vector<tornado::Task<>> handlers;
    tornado::TcpServer echo(loop, "127.0.0.1", 0,
                            [&](tornado::IOStream s, std::string_view) { handlers.push_back(echo_handler(std::move(s))); });
    EXPECT(loop.run_sync(echo_client(loop, echo.port()), LIMIT) == "pong: ping\n",
           "a coroutine client and a coroutine server over tcp_connect/IOStream");

    tornado::Task<std::string> t1 = fetch_body(http, url + "/x"), t2 = fetch_body(http, url + "/y");
    tornado::Future f1 = t1.as_future(loop), f2 = t2.as_future(loop);
    loop.run_sync(loop.multi(f1, f2), LIMIT);
    EXPECT(t1.done() && t2.done() && t1.result().rfind("GET /x", 0) == 0 && t2.result().rfind("GET /y", 0) == 0,
           "two tasks at once, joined with as_future + multi");

    tornado::Task<int> timed = [](tornado::Loop &l) -> tornado::Task<int> {
        co_await l.sleep(5);
        co_return 1;
    }(loop);
    caught = false;
    try {
        loop.run_sync(timed, 0.01);
    } catch (const tornado::Error &e) {
        caught = e.code() == TORNADO_ERR_TIMEOUT;
    }
    EXPECT(caught && !timed.done(), "run_sync(task, timeout) throws TORNADO_ERR_TIMEOUT; the task keeps running");

    // A Task destroyed while it waits: the coroutine's locals are destroyed,
    // and the future completing later resumes nothing.
    tornado::Future gate = tornado::Future::pending(loop);
    {
        tornado::Task<> task = waits(gate.share(), Tracked());
        EXPECT(live_captures == 1 && !task.done(), "a suspended task holds its locals");
    }
    EXPECT(live_captures == 0, "destroying the suspended task destroyed its locals");
    gate.set_result();
    loop.run_sync(loop.moment(), LIMIT);
    EXPECT(true, "its future completing afterwards resumes nothing (no crash under ASan)");

    // The loop goes while a task waits on it; the task is destroyed after.
    {
        auto *l2 = new tornado::Loop;
        tornado::Task<> task = waits(l2->sleep(100), Tracked());
        delete l2;
        EXPECT(live_captures == 1 && !task.done(), "the loop freed: the waiting task stays suspended");
    }
    EXPECT(live_captures == 0, "then the task destroyed: its locals too");

    // A task awaiting another that is owned elsewhere: either may go first.
    auto awaits = [](tornado::Task<> &inner, Tracked t) -> tornado::Task<> {
        (void)t;
        co_await inner;
    };
    tornado::Future release = tornado::Future::pending(loop);
    tornado::Task<> inner = waits(release.share(), Tracked());
    {
        tornado::Task<> outer = awaits(inner, Tracked());
        EXPECT(live_captures == 2, "an outer task waits on an inner one");
    }
    release.set_result();
    loop.run_sync(loop.moment(), LIMIT);
    EXPECT(inner.done() && live_captures == 1, "outer destroyed first: the inner one finished alone, resuming nothing");
    inner = tornado::Task<>(nullptr);
    EXPECT(live_captures == 0, "a finished task's locals go with the Task");
    tornado::Future release2 = tornado::Future::pending(loop);
    auto inner2 = std::make_unique<tornado::Task<>>(waits(release2.share(), Tracked()));
    tornado::Task<> outer2 = awaits(*inner2, Tracked());
    inner2.reset();
    EXPECT(live_captures == 1 && !outer2.done(), "inner destroyed first: the outer one stays suspended");
    release2.set_result();
    loop.run_sync(loop.moment(), LIMIT);
    outer2 = tornado::Task<>(nullptr);
    EXPECT(live_captures == 0, "and is destroyed cleanly after");

    // Spawned (detached) tasks: they free themselves; their exception comes
    // out of the Loop call running them; the Loop destroys the suspended ones.
    auto sleeper = [](tornado::Loop &l, double s, bool fail, Tracked t) -> tornado::Task<> {
        (void)t;
        co_await l.sleep(s);
        if (fail) throw Boom("from a spawned task");
    };
    loop.spawn(sleeper(loop, 0.001, false, Tracked()));
    EXPECT(live_captures == 1, "a spawned task runs unowned");
    loop.run_sync(loop.sleep(0.02), LIMIT);
    EXPECT(live_captures == 0, "it freed itself when it finished");
    caught = false;
    loop.spawn(sleeper(loop, 0.001, true, Tracked()));
    try {
        loop.run_sync(loop.sleep(2), LIMIT);
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught && live_captures == 0, "a spawned task's exception comes out of run_sync; the task freed itself");
    caught = false;
    try {
        loop.spawn([]() -> tornado::Task<int> { throw Boom("at once"); co_return 1; }());
    } catch (const Boom &) {
        caught = true;
    }
    EXPECT(caught, "spawning a task that already failed rethrows from spawn()");
    {
        tornado::Loop short_lived;
        short_lived.spawn(sleeper(short_lived, 100, false, Tracked()));
        tornado::Loop moved = std::move(short_lived);
        EXPECT(live_captures == 1, "a spawned task waits (its loop moved)");
    }
    EXPECT(live_captures == 0, "the loop destroyed: its suspended spawned task was destroyed");

    // A then() on a task's future, and a task awaited after it finished.
    tornado::Task<std::string> early = fetch_body(http, url + "/early");
    loop.run_sync(early.as_future(loop), LIMIT);
    std::string later = loop.run_sync([](tornado::Task<std::string> &t) -> tornado::Task<std::string> {
        co_return co_await t;
    }(early));
    EXPECT(later.rfind("GET /early", 0) == 0, "co_await of a task that already finished");
}
#endif

int main() {
    std::printf("# tornado_rs %s (header %d), C++ %ld\n", tornado::version().c_str(), TORNADO_VERSION_NUMBER,
                static_cast<long>(__cplusplus));

    EXPECT(tornado::version_number() == TORNADO_VERSION_NUMBER, "header and library versions agree");
    test_basics();
    test_exceptions();
    test_move_only();
    test_release();
    test_http();
    test_tls();
    test_streams();
    test_http_versions();
    test_curl_parity();
    test_public_suffix_file();
    test_https_proxy();
    test_websocket();
#ifdef TORNADO_RS_COROUTINES
    test_coroutines();
#else
    std::printf("# C++17 build: the coroutine section is compiled out (the C++20 build runs it)\n");
#endif
    EXPECT(live_captures == 0, "every lambda capture was freed");
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
