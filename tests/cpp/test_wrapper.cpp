// test_wrapper.cpp: include/tornado_rs.hpp, the C++ RAII wrapper: loop,
// timers and callbacks as lambdas (each freed exactly once), futures,
// errors as exceptions, and an HTTP fetch (both forms) from a server on
// the same loop. Prints "N passed, M failed" like the C tests.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

#include "tornado_rs.hpp"

static int passed, failed;
#define EXPECT(cond, what)                                                      \
    do {                                                                        \
        if (cond) {                                                             \
            passed++;                                                           \
            std::printf("ok - %s\n", what);                                     \
        } else {                                                                \
            failed++;                                                           \
            std::printf("not ok - %s (%s:%d: %s)\n", what, __FILE__, __LINE__, #cond); \
        }                                                                       \
    } while (0)

// Counts live copies of a lambda's capture: the wrapper must free each one.
static std::atomic<int> live_captures{0};
struct Tracked {
    Tracked() { live_captures++; }
    Tracked(const Tracked &) { live_captures++; }
    ~Tracked() { live_captures--; }
};

static const char PAGE[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nhello";

static void serve(tornado_iostream *s, const char *, void *) {
    // Answer every request on the connection with PAGE (keep-alive).
    struct Conn {
        static void read(tornado_iostream *s) {
            tornado_future *f = tornado_iostream_read_until(s, (const uint8_t *)"\r\n\r\n", 4, 65536);
            tornado_future_add_done_callback(f, on_request, s);
            tornado_future_unref(f);
        }
        static void on_request(tornado_future *f, void *ud) {
            auto *s = static_cast<tornado_iostream *>(ud);
            if (tornado_future_error(f, nullptr) != TORNADO_OK) {
                tornado_iostream_unref(s);
                return;
            }
            tornado_future_unref(tornado_iostream_write(s, (const uint8_t *)PAGE, std::strlen(PAGE)));
            read(s);
        }
    };
    Conn::read(s);
}

int main() {
    std::printf("# tornado_rs %s (header %d)\n", tornado::version().c_str(), TORNADO_VERSION_NUMBER);
    EXPECT(tornado_version_number() == TORNADO_VERSION_NUMBER, "header and library versions agree");
    {
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

        tornado::Future slept = loop.sleep(0.01);
        bool then_ran = false;
        slept.then([&](tornado::Future &f) { then_ran = f.done(); });
        EXPECT(loop.run_sync(slept, 5) == TORNADO_OK, "run_sync on a sleep");
        loop.run_sync(loop.sleep(0), 5);
        EXPECT(then_ran, "then() ran with the done future");

        bool threw = false;
        try {
            loop.call_later(-1, [] {});
        } catch (const tornado::Error &e) {
            threw = e.code() == TORNADO_ERR_INVALID && std::strstr(e.what(), "call_later") != nullptr;
        }
        EXPECT(threw, "a negative delay throws tornado::Error(TORNADO_ERR_INVALID)");

        tornado_tcp_server *server = tornado_tcp_server_new(loop.get(), "127.0.0.1", 0, 0, serve, nullptr, nullptr);
        std::string url = "http://127.0.0.1:" + std::to_string(tornado_tcp_server_port(server)) + "/";
        {
            tornado::HttpClient http(loop);
            tornado::Request req(url);
            req.header("X-Client", "c++").request_timeout(5);
            tornado::Future f = http.fetch(req);
            loop.run_sync(f, 10);
            auto r = tornado::HttpClient::response_of(f);
            EXPECT(f.error() == TORNADO_OK && r.code() == 200 && r.body() == "hello", "future-form fetch");
            EXPECT(r.header("x-test") && std::string(r.header("x-test")) == "yes", "header lookup");
            EXPECT(r.headers().size() == 2, "two headers");

            int calls = 0;
            std::string body;
            http.fetch(req, [&, tracked](const tornado::ResponseView &resp) {
                calls++;
                body = std::string(resp.body());
                loop.stop();
            });
            loop.start();
            EXPECT(calls == 1 && body == "hello", "callback-form fetch, called once");

            tornado::Request bad("ftp://127.0.0.1/");
            tornado::Future failed_fetch = http.fetch(bad);
            loop.run_sync(failed_fetch, 5);
            std::string message;
            EXPECT(failed_fetch.error(&message) == TORNADO_ERR_INVALID_URL && message.rfind("invalid_url", 0) == 0,
                   "an ftp URL fails with invalid_url");
        }
        tornado_tcp_server_free(server);
        for (int i = 0; i < 3; i++) tornado_loop_run_once(loop.get(), 0);
    }
    EXPECT(live_captures == 0, "every lambda capture was freed");

    // Issue 12 #15: callbacks still pending when their loop or client goes
    // are deleted (their captures destroyed) without being called.
    {
        bool called = false;
        {
            tornado::Loop loop;
            tornado::Future never(tornado_future_new(loop.get()));
            Tracked tracked;
            never.then([&called, tracked](tornado::Future &) { called = true; });
            EXPECT(live_captures == 2, "a pending then() holds its capture");
        }
        EXPECT(!called && live_captures == 0, "future and loop freed: the pending then() lambda was deleted uncalled");

        // Accepted by the kernel, never answered: the fetch stays pending.
        int silent = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        bool listening = silent >= 0 && bind(silent, (sockaddr *)&addr, sizeof addr) == 0 && listen(silent, 4) == 0 &&
                         getsockname(silent, (sockaddr *)&addr, &len) == 0;
        EXPECT(listening, "a silent listener on 127.0.0.1");
        auto *loop = new tornado::Loop;
        auto *http = new tornado::HttpClient(*loop);
        {
            Tracked tracked;
            tornado::Request req("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/never");
            http->fetch(req, [&called, tracked](const tornado::ResponseView &) { called = true; });
        }
        for (int i = 0; i < 3; i++) tornado_loop_run_once(loop->get(), 0.01);
        EXPECT(live_captures == 1, "a pending fetch holds its capture");
        delete loop;  // the loop goes first: the fetch can never call back
        delete http;
        EXPECT(!called && live_captures == 0, "loop then client freed: the pending fetch lambda was deleted uncalled");
        close(silent);
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
