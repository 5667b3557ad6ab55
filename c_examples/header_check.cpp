// Compiled and linked with g++ -std=c++11 -Wall -Werror, then run: the header
// works from C++ (extern "C" linkage, no C-only constructs).
#include <cstdio>
#include <cstring>
#include "tornado_rs.h"

int main() {
    tornado_loop *loop = tornado_loop_new();
    if (!loop) return 1;
    tornado_coroutine_fn step = [](tornado_coroutine *co, tornado_future *resumed, void *ud) -> tornado_future * {
        if (!resumed) return tornado_sleep(static_cast<tornado_loop *>(ud), 0.001);
        tornado_coroutine_return(co, const_cast<char *>("from C++"), nullptr);
        return nullptr;
    };
    tornado_future *f = tornado_coroutine_spawn(loop, step, loop, nullptr);
    tornado_code rc = tornado_loop_run_sync(loop, f, 5.0);
    const char *r = static_cast<const char *>(tornado_future_result(f));
    bool ok = rc == TORNADO_OK && r && std::strcmp(r, "from C++") == 0;
    std::printf("C++: run_sync %s, result %s\n", tornado_code_name(rc), r ? r : "(none)");
    tornado_future_unref(f);
    ok = tornado_loop_free(loop) == TORNADO_OK && ok;
    return ok ? 0 : 1;
}
