// cpp_hello.cpp: the C++ wrapper (include/tornado_rs.hpp) in a few lines:
// lambdas as callbacks, a callback from another thread, a future.
#include <cstdio>
#include <thread>

#include "tornado_rs.hpp"

int main() {
    tornado::Loop loop;
    int ticks = 0;
    loop.call_later(0.01, [&] { std::printf("timer fired\n"), ticks++; });
    std::thread worker([&loop] { loop.add_callback([] { std::printf("callback from another thread\n"); }); });
    tornado::Future nap = loop.sleep(0.05);
    nap.then([&](tornado::Future &) { std::printf("slept 50 ms\n"), ticks++; });
    tornado_code rc = loop.run_sync(nap, 5);
    loop.run_sync(loop.sleep(0), 5);  // let the then() callback run
    worker.join();
    std::printf("tornado_rs %s: %s\n", tornado::version().c_str(), tornado_code_name(rc));
    return rc == TORNADO_OK && ticks == 2 ? 0 : 1;
}
