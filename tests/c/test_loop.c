/* test_loop.c: callbacks (FIFO, next-iteration rule), start/stop, run_once,
 * backend_fd/backend_timeout for embedding, loop_time, run_sync, periodic
 * callbacks, the log callback. */
#include <poll.h>

#include "tap.h"

static tornado_loop *loop;

/* ---- callback order ---- */
static int order[16];
static int norder;

static void record_cb(void *ud) {
    if (norder < 16) order[norder++] = (int)(intptr_t)ud;
}

static void adder_cb(void *ud) {
    record_cb(ud);
    /* added while callbacks run: must wait for the next iteration */
    tornado_code rc = tornado_loop_add_callback(loop, record_cb, (void *)(intptr_t)99);
    CHECK_OK(rc, "add_callback from inside a callback");
}

/* ---- a burst larger than the ready queue's first allocation ---- */
#define BURST 1000
static int burst_seen[BURST];
static int burst_count, burst_in_order = 1;

static void burst_cb(void *ud) {
    int i = (int)(intptr_t)ud;
    if (i != burst_count) burst_in_order = 0;
    burst_seen[i]++;
    if (++burst_count == BURST) tornado_loop_stop(loop);
}

static void burst_adder_cb(void *ud) {
    (void)ud;
    /* from inside the running loop: the fast path, then growth */
    for (int i = 0; i < BURST; i++)
        if (tornado_loop_add_callback(loop, burst_cb, (void *)(intptr_t)i) != TORNADO_OK) burst_in_order = 0;
    CHECK(burst_count == 0, "none of the burst ran inside the callback that queued it");
}

/* ---- start/stop ---- */
static int stop_and_add_ran;
static void stop_cb(void *ud) {
    (void)ud;
    stop_and_add_ran++;
    CHECK_OK(tornado_loop_stop(loop), "stop from inside a callback");
}

static tornado_code inner_start_rc = -1, inner_run_once_rc = -1, inner_run_sync_rc = -1;
static void reentrant_cb(void *ud) {
    tornado_future *f = ud;
    inner_start_rc = tornado_loop_start(loop);
    inner_run_once_rc = tornado_loop_run_once(loop, 0);
    inner_run_sync_rc = tornado_loop_run_sync(loop, f, 0.01);
    tornado_loop_stop(loop);
}

/* ---- run_sync ---- */
static void resolve_cb(void *ud) {
    tornado_future *f = ud;
    int *v = malloc(sizeof *v);
    *v = 42;
    CHECK_OK(tornado_future_set_result(f, v, free), "set_result from a callback");
}

static void fail_cb(void *ud) {
    tornado_future *f = ud;
    CHECK_OK(tornado_future_set_error(f, TORNADO_ERR_USER + 5, "it broke"), "set_error from a callback");
}

/* ---- periodic ---- */
typedef struct {
    int runs;
    int stop_after;
    int free_after;
    tornado_periodic *p;
    double times[64];
} periodic_state;

static void periodic_cb(void *ud) {
    periodic_state *st = ud;
    if (st->runs < 64) st->times[st->runs] = tornado_loop_time(loop);
    st->runs++;
    if (st->stop_after && st->runs == st->stop_after) {
        CHECK_OK(tornado_periodic_stop(st->p), "periodic_stop from inside its callback");
        CHECK(!tornado_periodic_is_running(st->p), "is_running false after stop inside the callback");
    }
    if (st->free_after && st->runs == st->free_after) {
        CHECK_OK(tornado_periodic_free(st->p), "periodic_free from inside its callback");
        st->p = NULL;
    }
}

static void block_cb(void *ud) {
    tap_sleep_ms((long)(intptr_t)ud);
}

static void run_for(double seconds) {
    uint64_t id = tornado_loop_call_later(loop, seconds, tap_stop_cb, loop);
    CHECK(id != 0, "call_later(%.3f, stop)", seconds);
    CHECK_OK(tornado_loop_start(loop), "start for %.3f s", seconds);
}

static int log_lines;
static void log_cb(int32_t level, const char *message, void *ud) {
    (void)level;
    (void)message;
    (void)ud;
    log_lines++;
}

static int poll_backend(int timeout_ms) {
    struct pollfd pfd = {tornado_loop_backend_fd(loop), POLLIN, 0};
    return poll(&pfd, 1, timeout_ms);
}

int main(void) {
    tap_init("test_loop");

    tap_section("new/free");
    loop = tornado_loop_new();
    CHECK(loop != NULL, "tornado_loop_new returns a loop");
    if (loop == NULL) return tap_done();
    CHECK(tornado_loop_backend_fd(loop) >= 0, "backend_fd is a valid fd (%d)", tornado_loop_backend_fd(loop));

    tap_section("callbacks run FIFO");
    for (int i = 0; i < 5; i++)
        CHECK_OK(tornado_loop_add_callback(loop, record_cb, (void *)(intptr_t)i), "add_callback %d", i);
    CHECK(norder == 0, "no callback runs inside add_callback");
    CHECK_OK(tornado_loop_run_once(loop, 0), "run_once(0)");
    CHECK(norder == 5, "all 5 callbacks ran in one iteration (%d)", norder);
    int fifo = 1;
    for (int i = 0; i < 5 && i < norder; i++) fifo &= order[i] == i;
    CHECK(fifo, "callbacks ran in the order they were added");

    tap_section("a callback added by a callback waits for the next iteration");
    norder = 0;
    CHECK_OK(tornado_loop_add_callback(loop, adder_cb, (void *)(intptr_t)1), "add adder");
    CHECK_OK(tornado_loop_add_callback(loop, record_cb, (void *)(intptr_t)2), "add second");
    CHECK_OK(tornado_loop_run_once(loop, 0), "run_once #1");
    CHECK(norder == 2 && order[0] == 1 && order[1] == 2, "first run_once ran only the two queued callbacks (%d)",
          norder);
    CHECK_OK(tornado_loop_run_once(loop, 0), "run_once #2");
    CHECK(norder == 3 && order[2] == 99, "the added callback ran on the next iteration");
    CHECK_OK(tornado_loop_run_once(loop, 0), "run_once #3 (idle)");
    CHECK(norder == 3, "nothing ran twice");

    tap_section("start / stop from a callback");
    norder = 0;
    CHECK_OK(tornado_loop_add_callback(loop, record_cb, (void *)(intptr_t)1), "add 1");
    CHECK_OK(tornado_loop_add_callback(loop, stop_cb, NULL), "add stop");
    CHECK_OK(tornado_loop_add_callback(loop, record_cb, (void *)(intptr_t)2), "add 2");
    double t0 = tap_now();
    CHECK_OK(tornado_loop_start(loop), "start returns OK after stop");
    CHECK(stop_and_add_ran == 1, "stop callback ran once");
    CHECK(norder == 2 && order[0] == 1 && order[1] == 2, "callbacks of the stopping iteration all ran");
    CHECK(tap_now() - t0 < 1.0, "start returned promptly");

    tap_section("1000 callbacks queued by one callback run once each, in order");
    CHECK_OK(tornado_loop_add_callback(loop, burst_adder_cb, NULL), "add the burst adder");
    CHECK_OK(tornado_loop_start(loop), "start");
    {
        int once_each = 1;
        for (int i = 0; i < BURST; i++) once_each &= burst_seen[i] == 1;
        CHECK(burst_count == BURST && once_each, "each ran exactly once (%d ran)", burst_count);
        CHECK(burst_in_order, "in the order they were queued");
    }

    tap_section("stop before start");
    {
        int never = 0;
        uint64_t far = tornado_loop_call_later(loop, 5.0, tap_count_cb, &never);
        CHECK(far != 0, "call_later(5 s)");
        CHECK_OK(tornado_loop_stop(loop), "stop before start");
        t0 = tap_now();
        CHECK_OK(tornado_loop_start(loop), "start after stop");
        double dt = tap_now() - t0;
        tap_diag("start after stop returned in %.3f ms", dt * 1e3);
        CHECK(dt < 0.5, "start after an earlier stop returns at once");
        CHECK(never == 0, "the 5 s timer did not fire");
        /* the stop was consumed: the next start runs normally */
        int ran = 0;
        CHECK_OK(tornado_loop_add_callback(loop, tap_count_cb, &ran), "add counter");
        CHECK(tornado_loop_call_later(loop, 0.02, tap_stop_cb, loop) != 0, "call_later stop");
        CHECK_OK(tornado_loop_start(loop), "second start");
        CHECK(ran == 1, "second start ran the loop (stop was not sticky)");
        CHECK_OK(tornado_loop_remove_timeout(loop, far), "remove the 5 s timer");
    }

    tap_section("re-entrant start/run_once/run_sync -> RUNNING");
    {
        tornado_future *f = tornado_future_new(loop);
        CHECK(f != NULL, "future_new");
        CHECK_OK(tornado_loop_add_callback(loop, reentrant_cb, f), "add reentrant_cb");
        CHECK_OK(tornado_loop_start(loop), "start");
        CHECK_CODE(inner_start_rc, TORNADO_ERR_RUNNING, "start inside the running loop");
        CHECK_CODE(inner_run_once_rc, TORNADO_ERR_RUNNING, "run_once inside the running loop");
        CHECK_CODE(inner_run_sync_rc, TORNADO_ERR_RUNNING, "run_sync inside the running loop");
        CHECK(!tornado_future_done(f), "future untouched");
        tornado_future_unref(f);
        /* still usable */
        int ran = 0;
        CHECK_OK(tornado_loop_add_callback(loop, tap_count_cb, &ran), "add after re-entrancy errors");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ran == 1, "the loop still works");
    }

    tap_section("backend_timeout");
    {
        /* drain anything pending */
        for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0);
        double to = tornado_loop_backend_timeout(loop);
        CHECK(to == -1.0, "nothing scheduled: backend_timeout == -1 (%f)", to);
        int ran = 0;
        CHECK_OK(tornado_loop_add_callback(loop, tap_count_cb, &ran), "add_callback");
        to = tornado_loop_backend_timeout(loop);
        CHECK(to == 0.0, "callback pending: backend_timeout == 0 (%f)", to);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ran == 1, "callback ran");
        CHECK(tornado_loop_backend_timeout(loop) == -1.0, "after it ran: -1 again");
        uint64_t id = tornado_loop_call_later(loop, 0.5, tap_count_cb, &ran);
        CHECK(id != 0, "call_later(0.5)");
        to = tornado_loop_backend_timeout(loop);
        tap_diag("backend_timeout with a 0.5 s timer: %f", to);
        CHECK(to > 0.3 && to <= 0.5 + 1e-6, "timer in 0.5 s: backend_timeout ~0.5 (%f)", to);
        uint64_t id2 = tornado_loop_call_later(loop, 0.1, tap_count_cb, &ran);
        to = tornado_loop_backend_timeout(loop);
        CHECK(to > 0.0 && to <= 0.1 + 1e-6, "an earlier timer lowers backend_timeout (%f)", to);
        CHECK_OK(tornado_loop_remove_timeout(loop, id2), "remove 0.1 s timer");
        CHECK_OK(tornado_loop_remove_timeout(loop, id), "remove 0.5 s timer");
        tornado_loop_run_once(loop, 0);
        to = tornado_loop_backend_timeout(loop);
        CHECK(to == -1.0, "timers removed: backend_timeout == -1 (%f)", to);
        CHECK(ran == 1, "removed timers did not fire");
    }

    tap_section("embedding: backend_fd wakes for new work");
    {
        for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0);
        CHECK(poll_backend(0) == 0, "idle loop: backend_fd not readable");
        int ran = 0;
        CHECK_OK(tornado_loop_add_callback(loop, tap_count_cb, &ran), "add_callback between run_once calls");
        CHECK(poll_backend(0) == 1, "a new callback makes backend_fd readable");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ran == 1, "run_once ran the callback");
        CHECK(poll_backend(0) == 0, "backend_fd quiet again after run_once");

        uint64_t id = tornado_loop_call_later(loop, 0.0, tap_count_cb, &ran);
        CHECK(id != 0, "call_later(0) between run_once calls");
        CHECK(poll_backend(0) == 1, "a timer due now makes backend_fd readable");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ran == 2, "run_once fired the due timer");
        for (int i = 0; i < 2; i++) tornado_loop_run_once(loop, 0);
        CHECK(poll_backend(0) == 0, "backend_fd quiet again");

        /* a timer some way off: a host sleeping in poll() must not oversleep it
         * (the clock is read before scheduling: the deadline counts from then) */
        double start = tornado_loop_time(loop);
        id = tornado_loop_call_later(loop, 0.05, tap_count_cb, &ran);
        CHECK(id != 0, "call_later(0.05)");
        int iterations = 0;
        while (ran < 3 && iterations < 100) {
            double to = tornado_loop_backend_timeout(loop);
            int ms = to < 0 ? 2000 : (int)ceil(to * 1000.0);
            poll_backend(ms);
            tornado_loop_run_once(loop, 0);
            iterations++;
        }
        double took = tornado_loop_time(loop) - start;
        tap_diag("host loop: %d iterations, %.1f ms for a 50 ms timer", iterations, took * 1e3);
        CHECK(ran == 3, "the host loop fired the 50 ms timer");
        CHECK(took >= 0.05 - 1e-6 && took < 0.5, "not early, not much late");
        CHECK(iterations <= 20, "the host did not busy-loop (%d iterations)", iterations);
    }

    tap_section("run_once(max_wait)");
    {
        int ran = 0;
        uint64_t id = tornado_loop_call_later(loop, 0.3, tap_count_cb, &ran);
        /* the new timer may have woken backend_fd: let one iteration consume that */
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once(0)");
        double s = tap_now();
        CHECK_OK(tornado_loop_run_once(loop, 0.03), "run_once(0.03) with a timer in 0.3 s");
        double dt = tap_now() - s;
        tap_diag("run_once(0.03) took %.1f ms", dt * 1e3);
        CHECK(dt >= 0.025 && dt < 1.0, "run_once waited about max_wait");
        CHECK(ran == 0, "timer not fired yet");
        CHECK_OK(tornado_loop_remove_timeout(loop, id), "remove");
        id = tornado_loop_call_later(loop, 0.03, tap_count_cb, &ran);
        s = tap_now();
        while (ran == 0 && tap_now() - s < 2.0) CHECK_OK(tornado_loop_run_once(loop, 1.0), "run_once(1.0)");
        dt = tap_now() - s;
        CHECK(ran == 1, "timer fired");
        CHECK(dt >= 0.025 && dt < 0.9, "run_once(1.0) woke for the 30 ms timer (%.1f ms)", dt * 1e3);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once(0) on an idle loop");
    }

    tap_section("loop_time");
    {
        double a = tornado_loop_time(loop);
        tap_sleep_ms(20);
        double b = tornado_loop_time(loop);
        CHECK(a >= 0 && b > a, "loop_time increases (%f -> %f)", a, b);
        CHECK(b - a >= 0.019 && b - a < 1.0, "loop_time advanced by ~20 ms (%.2f ms)", (b - a) * 1e3);
    }

    tap_section("run_sync");
    {
        tornado_future *f = tornado_future_new(loop);
        CHECK_OK(tornado_loop_add_callback(loop, resolve_cb, f), "schedule resolve");
        CHECK_OK(tornado_loop_run_sync(loop, f, 1.0), "run_sync until a callback resolves it");
        CHECK(tornado_future_done(f), "future done");
        int *v = tornado_future_result(f);
        CHECK(v != NULL && *v == 42, "result 42");
        CHECK_OK(tornado_loop_run_sync(loop, f, 0), "run_sync on a done future");
        tornado_future_unref(f);

        f = tornado_future_new(loop);
        CHECK_OK(tornado_loop_add_callback(loop, fail_cb, f), "schedule failure");
        CHECK_CODE(tornado_loop_run_sync(loop, f, 1.0), TORNADO_ERR_USER + 5, "run_sync returns the future's error");
        tornado_future_unref(f);

        f = tornado_future_new(loop);
        double s = tap_now();
        double ls = tornado_loop_time(loop);
        CHECK_FAIL(tornado_loop_run_sync(loop, f, 0.05), TORNADO_ERR_TIMEOUT, "run_sync timeout -> TIMEOUT");
        double dt = tap_now() - s;
        double ldt = tornado_loop_time(loop) - ls;
        tap_diag("run_sync(0.05) timed out after %.1f ms", dt * 1e3);
        CHECK(ldt >= 0.05 - 1e-6 && dt < 1.0, "timed out after >= 50 ms, promptly");
        CHECK(!tornado_future_done(f), "the future is still pending after the timeout");
        CHECK_OK(tornado_future_set_result(f, NULL, NULL), "and can still complete");
        tornado_future_unref(f);

        f = tornado_future_new(loop);
        CHECK(tornado_loop_call_later(loop, 0.02, tap_stop_cb, loop) != 0, "stop in 20 ms");
        tornado_code rc = tornado_loop_run_sync(loop, f, 2.0);
        CHECK(rc != TORNADO_OK && rc != TORNADO_ERR_TIMEOUT, "run_sync ended by stop is neither OK nor TIMEOUT (%s)",
              tornado_code_name(rc));
        tornado_future_unref(f);
    }

    tap_section("periodic");
    {
        periodic_state st;
        memset(&st, 0, sizeof st);
        st.p = tornado_periodic_new(loop, 0.01, periodic_cb, &st, NULL);
        CHECK(st.p != NULL, "periodic_new(10 ms)");
        CHECK(!tornado_periodic_is_running(st.p), "a new periodic is not running");
        double started = tornado_loop_time(loop);
        CHECK_OK(tornado_periodic_start(st.p), "start");
        CHECK_OK(tornado_periodic_start(st.p), "start again does nothing");
        CHECK(tornado_periodic_is_running(st.p), "is_running after start");
        run_for(0.2);
        tap_diag("periodic 10 ms ran %d times in 200 ms", st.runs);
        CHECK(st.runs >= 3 && st.runs <= 22, "runs repeatedly (%d)", st.runs);
        int ordered = 1;
        for (int i = 1; i < st.runs && i < 64; i++) ordered &= st.times[i] > st.times[i - 1];
        CHECK(ordered, "runs are spaced in time");
        if (st.runs > 0)
            CHECK(st.times[0] - started >= 0.01 - 1e-6, "first run one interval after start (%.2f ms)",
                  (st.times[0] - started) * 1e3);
        CHECK_OK(tornado_periodic_stop(st.p), "stop");
        CHECK(!tornado_periodic_is_running(st.p), "not running after stop");
        int before = st.runs;
        run_for(0.05);
        CHECK(st.runs == before, "no runs after stop");
        CHECK_OK(tornado_periodic_set_jitter(st.p, 0.5), "set_jitter(0.5)");
        CHECK_OK(tornado_periodic_start(st.p), "restart with jitter");
        run_for(0.1);
        CHECK(st.runs > before, "runs again after restart (jitter)");
        CHECK_OK(tornado_periodic_free(st.p), "periodic_free while running");
        before = st.runs;
        run_for(0.05);
        CHECK(st.runs == before, "no runs after free");
    }
    {
        /* drop function called exactly once at free; stop inside callback */
        int drops = 0;
        periodic_state st;
        memset(&st, 0, sizeof st);
        st.stop_after = 3;
        st.p = tornado_periodic_new(loop, 0.005, periodic_cb, &st, NULL);
        CHECK(st.p != NULL, "periodic_new(5 ms)");
        CHECK_OK(tornado_periodic_start(st.p), "start");
        run_for(0.2);
        CHECK(st.runs == 3, "stopped from inside its callback after 3 runs (%d)", st.runs);
        CHECK_OK(tornado_periodic_free(st.p), "free");

        tornado_periodic *p = tornado_periodic_new(loop, 0.005, tap_count_cb, &drops, tap_count_drop);
        CHECK(p != NULL, "periodic_new with a drop fn");
        CHECK_OK(tornado_periodic_start(p), "start");
        run_for(0.03);
        int runs = drops; /* cb counts into the same int */
        CHECK(runs >= 1, "ran (%d)", runs);
        CHECK_OK(tornado_periodic_free(p), "free");
        CHECK(drops == runs + 1, "drop called exactly once by periodic_free (%d vs %d)", drops, runs + 1);
        run_for(0.02);
        CHECK(drops == runs + 1, "nothing after free");
    }
    {
        /* freed from inside its own callback */
        periodic_state st;
        memset(&st, 0, sizeof st);
        st.free_after = 2;
        st.p = tornado_periodic_new(loop, 0.005, periodic_cb, &st, NULL);
        CHECK(st.p != NULL, "periodic_new");
        CHECK_OK(tornado_periodic_start(st.p), "start");
        run_for(0.15);
        CHECK(st.runs == 2 && st.p == NULL, "freed from inside its callback after 2 runs (%d)", st.runs);
    }

    {
        /* missed runs are skipped, not replayed in a burst */
        periodic_state st;
        memset(&st, 0, sizeof st);
        st.p = tornado_periodic_new(loop, 0.02, periodic_cb, &st, NULL);
        CHECK(st.p != NULL, "periodic_new(20 ms)");
        CHECK_OK(tornado_periodic_start(st.p), "start");
        CHECK_OK(tornado_loop_add_callback(loop, block_cb, (void *)(intptr_t)110), "block the loop 110 ms");
        run_for(0.15);
        tap_diag("20 ms periodic, loop blocked 110 ms, 150 ms total: %d runs", st.runs);
        CHECK(st.runs >= 1 && st.runs <= 4, "missed runs were skipped (%d runs)", st.runs);
        CHECK_OK(tornado_periodic_free(st.p), "free");
    }

    tap_section("log callback");
    CHECK_OK(tornado_set_log_callback(log_cb, NULL), "set_log_callback");
    CHECK_OK(tornado_set_log_callback(NULL, NULL), "set_log_callback(NULL) restores stderr");

    tap_section("two loops on one thread are independent");
    {
        tornado_loop *other = tornado_loop_new();
        CHECK(other != NULL, "second loop");
        int a = 0, b = 0;
        CHECK_OK(tornado_loop_add_callback(loop, tap_count_cb, &a), "add to loop 1");
        CHECK_OK(tornado_loop_add_callback(other, tap_count_cb, &b), "add to loop 2");
        CHECK_OK(tornado_loop_run_once(other, 0), "run loop 2");
        CHECK(a == 0 && b == 1, "only loop 2's callback ran");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run loop 1");
        CHECK(a == 1 && b == 1, "then loop 1's");
        CHECK(tornado_loop_backend_fd(other) != tornado_loop_backend_fd(loop), "distinct backend fds");
        CHECK_OK(tornado_loop_free(other), "free loop 2");
    }

    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
