/* coroutine.c: the asyn_sum demo from "tornado coroutine 协程源码分析", in C.
 *
 * The Python original:
 *
 *     @coroutine
 *     def asyn_sum(self, a, b):
 *         print " asyn_sum", a, b
 *         future = Future()
 *         self.io_loop.add_callback(self.do_something_long, a=a, b=b)  # sets a + b
 *         result = yield future
 *         print("after yielded")
 *         print a, b, result
 *
 * C has no generators, so a coroutine is a step function: the runner calls it
 * first with resumed == NULL, and again with the future it returned once that
 * future is done. Returning NULL ends the coroutine (after
 * tornado_coroutine_return or tornado_coroutine_raise).
 *
 * Also shown: tornado_sleep and tornado_moment, an error travelling from a
 * future into a coroutine and from that coroutine into its caller,
 * tornado_with_timeout, and tornado_multi (all, and failing on an error).
 */
#include <string.h>

#include "example_util.h"

#define ERR_DISK (TORNADO_ERR_USER + 1)
#define ERR_WRAPPED (TORNADO_ERR_USER + 2)

static tornado_loop *loop;
static int events_seen; /* a global step counter to check the order per coroutine */

/* ---------------- asyn_sum ---------------- */
typedef struct {
    int id, a, b;
    int begin_at, calc_at, after_at; /* events_seen when each phase ran */
} sum_state;

typedef struct { /* what do_something_long needs: the future to complete */
    tornado_future *future;
    sum_state *st;
} calc_arg;

/* do_something_long: sets the future's result to a heap int (freed by the future) */
static void do_something_long(void *ud) {
    calc_arg *arg = ud;
    sum_state *st = arg->st;
    st->calc_at = ++events_seen;
    printf("  [sum %d] calculating the sum of %d+%d\n", st->id, st->a, st->b);
    int *value = malloc(sizeof *value);
    CHECK(value != NULL, "malloc");
    *value = st->a + st->b;
    CHECK_OK(tornado_future_set_result(arg->future, value, free));
    /* a second result is refused */
    tornado_code rc = tornado_future_set_result(arg->future, NULL, NULL);
    CHECK(rc == TORNADO_ERR_ALREADY_DONE, "second set_result gave %s", tornado_code_name(rc));
    tornado_future_unref(arg->future); /* the callback's own reference */
    free(arg);
}

static tornado_future *asyn_sum(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    sum_state *st = ud;
    if (resumed == NULL) {
        st->begin_at = ++events_seen;
        printf("  [sum %d] asyn_sum %d %d\n", st->id, st->a, st->b);
        tornado_future *future = tornado_future_new(loop);
        CHECK_NEW(future);
        calc_arg *arg = malloc(sizeof *arg);
        CHECK(arg != NULL, "malloc");
        arg->future = tornado_future_ref(future); /* the callback keeps one reference */
        arg->st = st;
        CHECK_OK(tornado_loop_add_callback(loop, do_something_long, arg));
        CHECK(!tornado_future_done(future), "future done before the callback ran");
        return future; /* "result = yield future": the runner takes over our reference */
    }
    st->after_at = ++events_seen;
    printf("  [sum %d] after yielded\n", st->id);
    CHECK(st->begin_at < st->calc_at && st->calc_at < st->after_at,
          "sum %d: steps out of order (begin %d, calculate %d, resume %d)", st->id, st->begin_at,
          st->calc_at, st->after_at);
    CHECK_OK(tornado_future_error(resumed, NULL));
    int *result = tornado_future_result(resumed);
    CHECK(result != NULL, "no result");
    printf("  [sum %d] %d %d %d\n", st->id, st->a, st->b, *result);
    int *ret = malloc(sizeof *ret);
    CHECK(ret != NULL, "malloc");
    *ret = *result;
    CHECK_OK(tornado_coroutine_return(co, ret, free));
    return NULL;
}

static tornado_future *spawn_sum(int id, int a, int b) {
    sum_state *st = calloc(1, sizeof *st);
    CHECK(st != NULL, "calloc");
    st->id = id;
    st->a = a;
    st->b = b;
    /* the runner owns st from here: it calls free(st) when the coroutine is done */
    tornado_future *f = tornado_coroutine_spawn(loop, asyn_sum, st, free);
    CHECK_NEW(f);
    return f;
}

/* ---------------- sleeper: tornado_sleep, then tornado_moment ---------------- */
typedef struct {
    int step;
    double started, woke;
} sleeper_state;

static tornado_future *sleeper(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    sleeper_state *st = ud;
    switch (st->step++) {
    case 0:
        CHECK(resumed == NULL, "first step resumed with a future");
        st->started = tornado_loop_time(loop);
        printf("  [sleeper] sleeping 50 ms\n");
        return tornado_sleep(loop, 0.050);
    case 1:
        CHECK_OK(tornado_future_error(resumed, NULL));
        st->woke = tornado_loop_time(loop);
        printf("  [sleeper] woke after %.1f ms; yielding a moment\n", (st->woke - st->started) * 1e3);
        return tornado_moment(loop);
    case 2: {
        CHECK_OK(tornado_future_error(resumed, NULL));
        printf("  [sleeper] done\n");
        double *slept = malloc(sizeof *slept);
        CHECK(slept != NULL, "malloc");
        *slept = st->woke - st->started;
        CHECK_OK(tornado_coroutine_return(co, slept, free));
        return NULL;
    }
    }
    CHECK(0, "sleeper: step %d", st->step);
    return NULL;
}

/* ---------------- errors ---------------- */
/* failer: yields a future that a callback fails; sees the error on resume and
 * raises its own, wrapping it. */
static void fail_it(void *ud) {
    tornado_future *f = ud;
    printf("  [failer] callback: set_error(ERR_DISK, \"disk on fire\")\n");
    CHECK_OK(tornado_future_set_error(f, ERR_DISK, "disk on fire"));
    tornado_future_unref(f);
}

static int failer_saw_error;

static tornado_future *failer(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)ud;
    if (resumed == NULL) {
        tornado_future *f = tornado_future_new(loop);
        CHECK_NEW(f);
        CHECK_OK(tornado_loop_add_callback(loop, fail_it, tornado_future_ref(f)));
        printf("  [failer] yielding a future that will fail\n");
        return f;
    }
    const char *msg = NULL;
    tornado_code code = tornado_future_error(resumed, &msg);
    printf("  [failer] resumed: error %d (%s): %s\n", (int)code, tornado_code_name(code), msg ? msg : "(null)");
    CHECK(code == ERR_DISK, "failer expected ERR_DISK, got %d", (int)code);
    CHECK(msg != NULL && strcmp(msg, "disk on fire") == 0, "wrong message: %s", msg ? msg : "(null)");
    CHECK(tornado_future_result(resumed) == NULL, "a failed future has a result");
    failer_saw_error = 1;
    CHECK_OK(tornado_coroutine_raise(co, ERR_WRAPPED, "could not save: disk on fire"));
    return NULL;
}

/* parent: spawns failer and catches its error, then waits on a future that
 * never completes through tornado_with_timeout, and catches the timeout. */
typedef struct {
    int step;
    tornado_future *never;
} parent_state;

static void parent_drop(void *ud) {
    parent_state *st = ud;
    tornado_future_unref(st->never);
    free(st);
}

static tornado_future *parent(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    parent_state *st = ud;
    const char *msg = NULL;
    tornado_code code;
    switch (st->step++) {
    case 0: {
        printf("  [parent] spawning failer and yielding it\n");
        tornado_future *child = tornado_coroutine_spawn(loop, failer, NULL, NULL);
        CHECK_NEW(child);
        return child; /* the runner takes over our reference */
    }
    case 1:
        code = tornado_future_error(resumed, &msg);
        printf("  [parent] failer raised %d: %s\n", (int)code, msg ? msg : "(null)");
        CHECK(code == ERR_WRAPPED, "parent expected ERR_WRAPPED, got %d (%s)", (int)code,
              tornado_code_name(code));
        CHECK(msg != NULL && strcmp(msg, "could not save: disk on fire") == 0, "wrong message");
        st->never = tornado_future_new(loop);
        CHECK_NEW(st->never);
        printf("  [parent] with_timeout(a future that never completes, 30 ms)\n");
        return tornado_with_timeout(loop, st->never, 0.030);
    case 2:
        code = tornado_future_error(resumed, &msg);
        printf("  [parent] with_timeout: %s: %s\n", tornado_code_name(code), msg ? msg : "(null)");
        CHECK(code == TORNADO_ERR_TIMEOUT, "expected TORNADO_ERR_TIMEOUT, got %s", tornado_code_name(code));
        CHECK(!tornado_future_done(st->never), "the inner future should still be pending");
        CHECK_OK(tornado_coroutine_return(co, "handled", NULL)); /* a static value: no drop */
        return NULL;
    }
    CHECK(0, "parent: step %d", st->step);
    return NULL;
}

/* a done callback on a future */
static int done_cb_calls;
static void on_done(tornado_future *f, void *ud) {
    int *expect = ud;
    int *v = tornado_future_result(f);
    CHECK(v != NULL && *v == *expect, "done callback saw the wrong result");
    done_cb_calls++;
    printf("  [done callback] sum coroutine finished with %d\n", *v);
}

int main(void) {
    CHECK_NEW(loop = tornado_loop_new());
    uint64_t safety = example_arm_safety(loop, 5.0);

    printf("coroutine: spawning asyn_sum(2, 3) twice (as in the demo), asyn_sum(20, 22), a sleeper "
           "and a parent that catches errors\n");
    tornado_future *f1 = spawn_sum(1, 2, 3);
    tornado_future *f2 = spawn_sum(2, 2, 3);
    tornado_future *f3 = spawn_sum(3, 20, 22);
    static int expect42 = 42;
    CHECK_OK(tornado_future_add_done_callback(f3, on_done, &expect42));

    sleeper_state *sl = calloc(1, sizeof *sl);
    CHECK(sl != NULL, "calloc");
    tornado_future *fs = tornado_coroutine_spawn(loop, sleeper, sl, free);
    CHECK_NEW(fs);
    parent_state *ps = calloc(1, sizeof *ps);
    CHECK(ps != NULL, "calloc");
    tornado_future *fp = tornado_coroutine_spawn(loop, parent, ps, parent_drop);
    CHECK_NEW(fp);

    tornado_future *all_in[] = {f1, f2, f3, fs, fp};
    tornado_future *all = tornado_multi(loop, all_in, sizeof all_in / sizeof all_in[0]);
    CHECK_NEW(all);
    /* the first step runs from the loop, never inside spawn */
    CHECK(events_seen == 0 && !tornado_future_done(all), "a step ran before the loop did");

    printf("run_sync(multi of 5)\n");
    CHECK_OK(tornado_loop_run_sync(loop, all, 5.0));
    CHECK(tornado_future_done(all), "multi not done after run_sync");
    CHECK_OK(tornado_future_error(all, NULL));

    /* the results, read from each input future (multi's own value is NULL) */
    int *r1 = tornado_future_result(f1), *r2 = tornado_future_result(f2), *r3 = tornado_future_result(f3);
    CHECK(r1 && *r1 == 5, "asyn_sum(2,3) #1 returned %d", r1 ? *r1 : -1);
    CHECK(r2 && *r2 == 5, "asyn_sum(2,3) #2 returned %d", r2 ? *r2 : -1);
    CHECK(r3 && *r3 == 42, "asyn_sum(20,22) returned %d", r3 ? *r3 : -1);
    CHECK(done_cb_calls == 1, "done callback ran %d times", done_cb_calls);
    printf("ok: asyn_sum results %d, %d, %d\n", *r1, *r2, *r3);

    double *slept = tornado_future_result(fs);
    CHECK(slept && *slept >= 0.050 - 1e-3, "sleeper slept %.1f ms", slept ? *slept * 1e3 : -1.0);
    CHECK(*slept < 0.5, "sleeper slept %.0f ms (too long)", *slept * 1e3);
    printf("ok: tornado_sleep(0.050) slept %.1f ms\n", *slept * 1e3);

    const char *handled = tornado_future_result(fp);
    CHECK(failer_saw_error, "failer never saw its error");
    CHECK(handled && strcmp(handled, "handled") == 0, "parent returned %s", handled ? handled : "(null)");
    printf("ok: the error reached the failer, then its caller; with_timeout timed out\n");

    /* tornado_multi fails with the first error */
    printf("multi of a done future and a failed one\n");
    tornado_future *bad = tornado_future_new(loop);
    CHECK_NEW(bad);
    CHECK_OK(tornado_future_set_error(bad, ERR_DISK, "boom"));
    tornado_future *mixed_in[] = {f1, bad};
    tornado_future *mixed = tornado_multi(loop, mixed_in, 2);
    CHECK_NEW(mixed);
    tornado_code rc = tornado_loop_run_sync(loop, mixed, 5.0);
    const char *msg = NULL;
    tornado_code code = tornado_future_error(mixed, &msg);
    printf("  run_sync -> %s; multi failed with %d: %s\n", tornado_code_name(rc), (int)code, msg ? msg : "(null)");
    CHECK(tornado_future_done(mixed), "failed multi not done");
    CHECK(rc == ERR_DISK, "run_sync of a failed future returned %s, expected its error code", tornado_code_name(rc));
    CHECK(code == ERR_DISK && msg && strcmp(msg, "boom") == 0, "multi should fail with ERR_DISK \"boom\"");
    printf("ok: multi failed with the first error\n");

    /* an error code 0 is not an error: refused */
    tornado_future *f0 = tornado_future_new(loop);
    CHECK_NEW(f0);
    rc = tornado_future_set_error(f0, TORNADO_OK, "not an error");
    CHECK(rc == TORNADO_ERR_INVALID, "set_error(TORNADO_OK) gave %s", tornado_code_name(rc));
    code = tornado_future_error(f0, NULL);
    CHECK(code == TORNADO_ERR_NOT_DONE, "error() on a pending future gave %s", tornado_code_name(code));

    example_disarm_safety(loop, safety);
    tornado_future_unref(f0);
    tornado_future_unref(mixed);
    tornado_future_unref(bad);
    tornado_future_unref(all);
    tornado_future_unref(f1);
    tornado_future_unref(f2);
    tornado_future_unref(f3);
    tornado_future_unref(fs);
    tornado_future_unref(fp);
    CHECK_OK(tornado_loop_free(loop));
    printf("coroutine: all checks passed\n");
    return 0;
}
