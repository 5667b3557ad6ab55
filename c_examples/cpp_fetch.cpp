// cpp_fetch.cpp: fetching with C++20 coroutines and include/tornado_rs.hpp,
// read top to bottom as a Tornado coroutine is:
//
//     async def fetch_all(urls):
//         responses = await multi([http.fetch(u) for u in urls])
//
//   cpp_fetch URL...     fetch the URLs at once, print status and size
//   cpp_fetch            the same against a small server it starts itself
//                        on 127.0.0.1 (a coroutine per connection)
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "tornado_rs.hpp"

// One page for each request on a connection: "hello from <path>".
static tornado::Task<> serve(tornado::IOStream stream) {
    try {
        for (;;) {
            std::string head = co_await stream.read_until("\r\n\r\n", 65536);
            std::string path = head.substr(4, head.find(' ', 4) - 4);
            std::string body = "hello from " + path + "\n";
            co_await stream.write("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                                  body);
        }
    } catch (const tornado::Error &) {
        // The client closed the connection (or sent a head over 64 KiB).
    }
}

static tornado::Task<std::string> fetch_one(tornado::HttpClient &http, std::string url) {
    tornado::Request request(url);
    request.request_timeout(10);
    tornado::Response response = co_await http.fetch(request);  // throws tornado::Error if no response came
    co_return url + ": " + std::to_string(response.code()) + ", " + std::to_string(response.body().size()) + " bytes";
}

static tornado::Task<int> fetch_all(tornado::HttpClient &http, std::vector<std::string> urls) {
    std::vector<tornado::Task<std::string>> fetches;
    for (const std::string &url : urls) fetches.push_back(fetch_one(http, url));  // all start now
    int failures = 0;
    for (tornado::Task<std::string> &fetch : fetches) {
        try {
            std::printf("%s\n", (co_await fetch).c_str());
        } catch (const tornado::Error &e) {
            std::printf("failed: %s\n", e.what());
            failures++;
        }
    }
    co_return failures;
}

int main(int argc, char **argv) {
    tornado::Loop loop;
    tornado::HttpClient http(loop);
    std::vector<std::string> urls(argv + 1, argv + argc);

    std::optional<tornado::TcpServer> server;
    if (urls.empty()) {
        server.emplace(loop, "127.0.0.1", 0, [&](tornado::IOStream stream, std::string_view) {
            loop.spawn(serve(std::move(stream)));  // a coroutine per connection
        });
        std::string base = "http://127.0.0.1:" + std::to_string(server->port());
        urls = {base + "/one", base + "/two", base + "/three"};
    }
    try {
        int failures = loop.run_sync(fetch_all(http, urls), 30);
        return failures == 0 ? 0 : 1;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "cpp_fetch: %s\n", e.what());
        return 1;
    }
}
