/* hello.c: a timer and a coroutine (sleep, then return) on one loop. */
#include <stdio.h>
#include <tornado_rs.h>
static void tick(void *fired) { printf("timer fired\n"); *(int *)fired = 1; }

static tornado_future *hello(tornado_coroutine *co, tornado_future *resumed, void *loop) {
    if (resumed == NULL) return tornado_sleep(loop, 0.1); /* yield gen.sleep(0.1) */
    tornado_coroutine_return(co, "hello from a coroutine", NULL);
    return NULL;
}

int main(void) {
    int fired = 0;
    tornado_loop *loop = tornado_loop_new();
    tornado_loop_call_later(loop, 0.05, tick, &fired);
    tornado_future *f = tornado_coroutine_spawn(loop, hello, loop, NULL);
    tornado_code rc = tornado_loop_run_sync(loop, f, 5.0); /* 5 s: never hang */
    const char *result = tornado_future_result(f);
    printf("run_sync: %s, result: %s\n", tornado_code_name(rc), result ? result : "(none)");
    int ok = rc == TORNADO_OK && result != NULL && fired;
    tornado_future_unref(f);
    tornado_loop_free(loop);
    return ok ? 0 : 1;
}
