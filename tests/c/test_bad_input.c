/* test_bad_input.c: every bad-input path of every C function: NULL handles,
 * NULL callbacks, NaN/negative/infinite times, unknown event bits, invalid
 * fds, invalid UTF-8, zero error codes. Each failure returns the documented
 * code (or NULL/0), sets a fresh non-empty tornado_last_error(), never calls
 * the drop function of a refused registration, and never crashes.
 * (Wrong-thread calls are in test_threads.c, freed loops in test_free.c.) */
#include <fcntl.h>
#include <limits.h>

#include "fails.h"

static tornado_loop *loop;
static tornado_periodic *primer;

/* Make a distinctive failure, so that the next check can see that the call
 * under test replaced the message. */
static void prime(void) {
    tornado_periodic_set_jitter(primer, 7.5);
    snprintf(primed, sizeof primed, "%s", tornado_last_error() ? tornado_last_error() : "");
}

static void noop_cb(void *ud) {
    (void)ud;
}
static void noop_fd_cb(int fd, uint32_t ev, void *ud) {
    (void)fd;
    (void)ev;
    (void)ud;
}
static void noop_done_cb(tornado_future *f, void *ud) {
    (void)f;
    (void)ud;
}
static tornado_future *noop_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)co;
    (void)resumed;
    (void)ud;
    return NULL;
}
static void log_cb(int32_t level, const char *message, void *ud) {
    (void)level;
    (void)message;
    (void)ud;
}
static int log_lines;
static void count_log_cb(int32_t level, const char *message, void *ud) {
    (void)level;
    (void)message;
    (*(int *)ud)++;
}

/* A coroutine that yields a future of another loop (userdata): refused. */
static int yield_other_steps;
static tornado_future *yield_other_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)co;
    (void)resumed;
    yield_other_steps++;
    return tornado_future_ref((tornado_future *)ud);
}

/* coroutine used to reach tornado_coroutine_return/raise with bad arguments */
static int co_checked;
static tornado_future *bad_args_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)resumed;
    (void)ud;
    FAILS(tornado_coroutine_raise(co, TORNADO_OK, "zero"), TORNADO_ERR_INVALID, "coroutine_raise(code 0) -> INVALID");
    FAILS(tornado_coroutine_raise(co, TORNADO_ERR_USER, "\xc0\xaf"), TORNADO_ERR_INVALID,
          "coroutine_raise(overlong UTF-8) -> INVALID");
    FAILS(tornado_coroutine_raise(co, TORNADO_ERR_USER, "\xed\xa0\x80"), TORNADO_ERR_INVALID,
          "coroutine_raise(UTF-8 surrogate) -> INVALID");
    CHECK_OK(tornado_coroutine_return(co, NULL, NULL), "then coroutine_return still works");
    co_checked = 1;
    return NULL;
}

static const double bad_delays[] = {-1.0, -1e-9, -INFINITY, INFINITY};
static const char *const bad_delay_names[] = {"-1", "-1e-9", "-inf", "+inf"};
#define NBAD (sizeof bad_delays / sizeof bad_delays[0])

int main(void) {
    tap_init("test_bad_input");

    tap_section("tornado_last_error before any failure");
    CHECK(tornado_last_error() == NULL, "NULL while nothing failed on this thread");

    tap_section("tornado_code_name");
    {
        static const char *const names[] = {"TORNADO_OK",           "TORNADO_ERR_INVALID",   "TORNADO_ERR_WRONG_THREAD",
                                            "TORNADO_ERR_RUNNING",  "TORNADO_ERR_ALREADY_DONE", "TORNADO_ERR_NOT_FOUND",
                                            "TORNADO_ERR_EXISTS",   "TORNADO_ERR_TIMEOUT",   "TORNADO_ERR_CANCELLED",
                                            "TORNADO_ERR_PANIC",    "TORNADO_ERR_IO",        "TORNADO_ERR_CLOSED",
                                            "TORNADO_ERR_NOT_DONE", "TORNADO_ERR_BAD_FD",    "TORNADO_ERR_RESOLVE",
                                            "TORNADO_ERR_CONNECT",  "TORNADO_ERR_TLS",       "TORNADO_ERR_PROTOCOL",
                                            "TORNADO_ERR_TOO_LARGE", "TORNADO_ERR_TOO_MANY_REDIRECTS",
                                            "TORNADO_ERR_INVALID_URL"};
        static const tornado_code codes[] = {TORNADO_OK,           TORNADO_ERR_INVALID,  TORNADO_ERR_WRONG_THREAD,
                                             TORNADO_ERR_RUNNING,  TORNADO_ERR_ALREADY_DONE, TORNADO_ERR_NOT_FOUND,
                                             TORNADO_ERR_EXISTS,   TORNADO_ERR_TIMEOUT,  TORNADO_ERR_CANCELLED,
                                             TORNADO_ERR_PANIC,    TORNADO_ERR_IO,       TORNADO_ERR_CLOSED,
                                             TORNADO_ERR_NOT_DONE, TORNADO_ERR_BAD_FD,   TORNADO_ERR_RESOLVE,
                                             TORNADO_ERR_CONNECT,  TORNADO_ERR_TLS,      TORNADO_ERR_PROTOCOL,
                                             TORNADO_ERR_TOO_LARGE, TORNADO_ERR_TOO_MANY_REDIRECTS,
                                             TORNADO_ERR_INVALID_URL};
        for (int i = 0; i < 21; i++) {
            const char *n = tornado_code_name(codes[i]);
            CHECK(codes[i] == i, "%s == %d", names[i], i);
            CHECK(n && strcmp(n, names[i]) == 0, "code_name(%d) == %s (%s)", i, names[i], n ? n : "NULL");
        }
        const char *n = tornado_code_name(TORNADO_ERR_USER);
        CHECK(TORNADO_ERR_USER == 1000, "TORNADO_ERR_USER == 1000");
        CHECK(n && strcmp(n, "TORNADO_ERR_USER") == 0, "code_name(1000) == TORNADO_ERR_USER");
        tornado_code unknown[] = {-1, 21, 999, INT_MIN, 100};
        for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
            n = tornado_code_name(unknown[i]);
            CHECK(n && strcmp(n, "TORNADO_ERR_UNKNOWN") == 0, "code_name(%d) == TORNADO_ERR_UNKNOWN (%s)", unknown[i],
                  n ? n : "NULL");
        }
        tornado_code other[] = {1001, INT_MAX};
        for (size_t i = 0; i < 2; i++) {
            n = tornado_code_name(other[i]);
            CHECK(n && n[0], "code_name(%d) is a non-empty name (%s)", other[i], n ? n : "NULL");
        }
        CHECK(tornado_code_name(7) == tornado_code_name(7), "names are static strings");
        CHECK(tornado_last_error() == NULL, "code_name sets no error");
    }

    tap_section("tornado_set_log_callback");
    CHECK_OK(tornado_set_log_callback(log_cb, NULL), "set a callback");
    CHECK_OK(tornado_set_log_callback(NULL, (void *)1), "NULL callback restores stderr");

    loop = tornado_loop_new();
    CHECK(loop != NULL, "loop_new");
    if (!loop) return tap_done();
    primer = tornado_periodic_new(loop, 1.0, noop_cb, NULL, NULL);
    CHECK(primer != NULL, "primer periodic");
    prime();
    CHECK(primed[0] != '\0', "set_jitter(7.5) fails with a message");

    tap_section("loop functions with NULL loop");
    FAILS(tornado_loop_free(NULL), TORNADO_ERR_INVALID, "loop_free(NULL)");
    FAILS(tornado_loop_start(NULL), TORNADO_ERR_INVALID, "loop_start(NULL)");
    FAILS(tornado_loop_stop(NULL), TORNADO_ERR_INVALID, "loop_stop(NULL)");
    FAILS(tornado_loop_run_once(NULL, 0), TORNADO_ERR_INVALID, "run_once(NULL)");
    FAILS_AS(tornado_loop_backend_fd(NULL), -1, "backend_fd(NULL) == -1");
    FAILS_AS(tornado_loop_backend_timeout(NULL), -1.0, "backend_timeout(NULL) == -1");
    {
        prime();
        double t = tornado_loop_time(NULL);
        CHECK(fresh_message(), "loop_time(NULL) sets a message (returned %f)", t);
    }
    FAILS(tornado_loop_add_callback(NULL, noop_cb, NULL), TORNADO_ERR_INVALID, "add_callback(NULL loop)");
    FAILS_NULL(tornado_loop_call_later(NULL, 0.1, noop_cb, NULL), "call_later(NULL loop)");
    FAILS_NULL(tornado_loop_call_at(NULL, 0.1, noop_cb, NULL), "call_at(NULL loop)");
    FAILS(tornado_loop_remove_timeout(NULL, 1), TORNADO_ERR_INVALID, "remove_timeout(NULL loop)");
    FAILS(tornado_loop_add_handler(NULL, 0, TORNADO_READ, noop_fd_cb, NULL), TORNADO_ERR_INVALID, "add_handler(NULL loop)");
    FAILS(tornado_loop_update_handler(NULL, 0, TORNADO_READ), TORNADO_ERR_INVALID, "update_handler(NULL loop)");
    FAILS(tornado_loop_remove_handler(NULL, 0), TORNADO_ERR_INVALID, "remove_handler(NULL loop)");
    FAILS_NULL(tornado_future_new(NULL), "future_new(NULL loop)");
    FAILS_NULL(tornado_periodic_new(NULL, 1.0, noop_cb, NULL, NULL), "periodic_new(NULL loop)");
    FAILS_NULL(tornado_coroutine_spawn(NULL, noop_step, NULL, NULL), "coroutine_spawn(NULL loop)");
    FAILS_NULL(tornado_sleep(NULL, 0.1), "sleep(NULL loop)");
    FAILS_NULL(tornado_moment(NULL), "moment(NULL loop)");
    {
        tornado_future *f = tornado_future_new(loop);
        tornado_future *arr[1] = {f};
        FAILS_NULL(tornado_multi(NULL, arr, 1), "multi(NULL loop)");
        FAILS_NULL(tornado_with_timeout(NULL, f, 1.0), "with_timeout(NULL loop)");
        FAILS(tornado_loop_run_sync(NULL, f, 0.1), TORNADO_ERR_INVALID, "run_sync(NULL loop)");
        tornado_future_unref(f);
    }

    tap_section("_full registrations: refused ones never call drop");
    {
        int drops = 0;
        FAILS(tornado_loop_add_callback_full(NULL, noop_cb, &drops, tap_count_drop), TORNADO_ERR_INVALID, "add_callback_full(NULL loop)");
        FAILS(tornado_loop_add_callback_full(loop, NULL, &drops, tap_count_drop), TORNADO_ERR_INVALID, "add_callback_full(NULL cb)");
        FAILS_NULL(tornado_loop_call_later_full(NULL, 0.1, noop_cb, &drops, tap_count_drop), "call_later_full(NULL loop)");
        FAILS_NULL(tornado_loop_call_later_full(loop, 0.1, NULL, &drops, tap_count_drop), "call_later_full(NULL cb)");
        FAILS_NULL(tornado_loop_call_later_full(loop, NAN, noop_cb, &drops, tap_count_drop), "call_later_full(NaN)");
        FAILS_NULL(tornado_loop_call_at_full(NULL, 0.1, noop_cb, &drops, tap_count_drop), "call_at_full(NULL loop)");
        FAILS_NULL(tornado_loop_call_at_full(loop, 0.1, NULL, &drops, tap_count_drop), "call_at_full(NULL cb)");
        FAILS_NULL(tornado_loop_call_at_full(loop, NAN, noop_cb, &drops, tap_count_drop), "call_at_full(NaN)");
        FAILS(tornado_loop_add_handler_full(NULL, 0, TORNADO_READ, noop_fd_cb, &drops, tap_count_drop), TORNADO_ERR_INVALID,
              "add_handler_full(NULL loop)");
        FAILS(tornado_loop_add_handler_full(loop, -1, TORNADO_READ, noop_fd_cb, &drops, tap_count_drop), TORNADO_ERR_BAD_FD,
              "add_handler_full(fd -1) -> BAD_FD");
        int p[2];
        CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
        FAILS(tornado_loop_add_handler_full(loop, p[0], 0x100, noop_fd_cb, &drops, tap_count_drop), TORNADO_ERR_INVALID,
              "add_handler_full(events 0x100)");
        FAILS(tornado_loop_add_handler_full(loop, p[0], TORNADO_READ, NULL, &drops, tap_count_drop), TORNADO_ERR_INVALID,
              "add_handler_full(NULL cb)");
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, noop_fd_cb, NULL), "register the fd");
        FAILS(tornado_loop_add_handler_full(loop, p[0], TORNADO_READ, noop_fd_cb, &drops, tap_count_drop), TORNADO_ERR_EXISTS,
              "add_handler_full(registered fd) -> EXISTS");
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "unregister");
        close(p[1]);
        FAILS(tornado_loop_add_handler_full(loop, p[1], TORNADO_READ, noop_fd_cb, &drops, tap_count_drop), TORNADO_ERR_BAD_FD,
              "add_handler_full(closed fd) -> BAD_FD");
        close(p[0]);
        FAILS_NULL(tornado_periodic_new(loop, -1.0, noop_cb, &drops, tap_count_drop), "periodic_new(bad interval)");
        FAILS_NULL(tornado_periodic_new(loop, 1.0, NULL, &drops, tap_count_drop), "periodic_new(NULL cb)");
        FAILS_NULL(tornado_coroutine_spawn(loop, NULL, &drops, tap_count_drop), "coroutine_spawn(NULL step)");
        for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0);
        CHECK(drops == 0, "no drop function of a refused registration was called (%d)", drops);
    }

    tap_section("NULL callbacks");
    FAILS(tornado_loop_add_callback(loop, NULL, NULL), TORNADO_ERR_INVALID, "add_callback(NULL cb)");
    FAILS_NULL(tornado_loop_call_later(loop, 0.1, NULL, NULL), "call_later(NULL cb)");
    FAILS_NULL(tornado_loop_call_at(loop, 0.1, NULL, NULL), "call_at(NULL cb)");
    {
        int p[2];
        CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
        FAILS(tornado_loop_add_handler(loop, p[0], TORNADO_READ, NULL, NULL), TORNADO_ERR_INVALID, "add_handler(NULL cb)");
        FAILS(tornado_loop_remove_handler(loop, p[0]), TORNADO_ERR_NOT_FOUND, "nothing was registered");
        close(p[0]);
        close(p[1]);
    }
    FAILS_NULL(tornado_periodic_new(loop, 1.0, NULL, NULL, NULL), "periodic_new(NULL cb)");
    FAILS_NULL(tornado_coroutine_spawn(loop, NULL, NULL, NULL), "coroutine_spawn(NULL step)");
    {
        tornado_future *f = tornado_future_new(loop);
        FAILS(tornado_future_add_done_callback(f, NULL, NULL), TORNADO_ERR_INVALID, "add_done_callback(NULL cb)");
        int full_drops = 0;
        FAILS(tornado_future_add_done_callback_full(f, NULL, &full_drops, tap_count_drop), TORNADO_ERR_INVALID,
              "add_done_callback_full(NULL cb)");
        FAILS(tornado_future_add_done_callback_full(NULL, noop_done_cb, &full_drops, tap_count_drop),
              TORNADO_ERR_INVALID, "add_done_callback_full(NULL future)");
        CHECK(full_drops == 0, "refused add_done_callback_full calls drop nothing");
        tornado_future_unref(f);
    }

    tap_section("bad times");
    {
        tornado_future *f = tornado_future_new(loop);
        FAILS(tornado_loop_run_once(loop, NAN), TORNADO_ERR_INVALID, "run_once(NaN)");
        FAILS(tornado_loop_run_once(loop, -1.0), TORNADO_ERR_INVALID, "run_once(-1)");
        FAILS(tornado_loop_run_once(loop, -INFINITY), TORNADO_ERR_INVALID, "run_once(-inf)");
        FAILS_NULL(tornado_loop_call_later(loop, NAN, noop_cb, NULL), "call_later(NaN)");
        FAILS_NULL(tornado_loop_call_at(loop, NAN, noop_cb, NULL), "call_at(NaN)");
        FAILS(tornado_loop_run_sync(loop, f, NAN), TORNADO_ERR_INVALID, "run_sync(timeout NaN)");
        FAILS_NULL(tornado_with_timeout(loop, f, NAN), "with_timeout(NaN)");
        FAILS_NULL(tornado_sleep(loop, NAN), "sleep(NaN)");
        FAILS_NULL(tornado_periodic_new(loop, NAN, noop_cb, NULL, NULL), "periodic_new(NaN)");
        for (size_t i = 0; i < NBAD; i++) {
            double d = bad_delays[i];
            const char *dn = bad_delay_names[i];
            FAILS_NULL(tornado_loop_call_later(loop, d, noop_cb, NULL), "call_later(%s)", dn);
            FAILS_NULL(tornado_loop_call_later_full(loop, d, noop_cb, NULL, NULL), "call_later_full(%s)", dn);
            FAILS_NULL(tornado_loop_call_at(loop, d, noop_cb, NULL), "call_at(%s)", dn);
            FAILS_NULL(tornado_loop_call_at_full(loop, d, noop_cb, NULL, NULL), "call_at_full(%s)", dn);
            FAILS(tornado_loop_run_sync(loop, f, d), TORNADO_ERR_INVALID, "run_sync(timeout %s)", dn);
            FAILS_NULL(tornado_with_timeout(loop, f, d), "with_timeout(%s)", dn);
            FAILS_NULL(tornado_sleep(loop, d), "sleep(%s)", dn);
            FAILS_NULL(tornado_periodic_new(loop, d, noop_cb, NULL, NULL), "periodic_new(interval %s)", dn);
        }
        FAILS_NULL(tornado_periodic_new(loop, 0.0, noop_cb, NULL, NULL), "periodic_new(interval 0)");
        CHECK(!tornado_future_done(f), "the future is untouched");
        tornado_future_unref(f);
        CHECK(tornado_loop_backend_timeout(loop) == -1.0, "no timer was registered by the refused calls");
    }

    tap_section("fds and event bits");
    {
        int p[2];
        CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
        int closed_fd = p[1];
        close(p[1]);
        FAILS(tornado_loop_add_handler(loop, closed_fd, TORNADO_READ, noop_fd_cb, NULL), TORNADO_ERR_BAD_FD, "add_handler(closed fd)");
        FAILS(tornado_loop_add_handler(loop, -1, TORNADO_READ, noop_fd_cb, NULL), TORNADO_ERR_BAD_FD, "add_handler(-1) -> BAD_FD");
        FAILS(tornado_loop_add_handler(loop, INT_MIN, TORNADO_READ, noop_fd_cb, NULL), TORNADO_ERR_BAD_FD,
              "add_handler(INT_MIN) -> BAD_FD");
        FAILS(tornado_loop_update_handler(loop, -1, TORNADO_READ), TORNADO_ERR_NOT_FOUND, "update_handler(-1) -> NOT_FOUND");
        FAILS(tornado_loop_remove_handler(loop, -1), TORNADO_ERR_NOT_FOUND, "remove_handler(-1) -> NOT_FOUND");
        FAILS(tornado_loop_update_handler(loop, p[0], TORNADO_READ), TORNADO_ERR_NOT_FOUND, "update_handler(unregistered)");
        FAILS(tornado_loop_remove_handler(loop, p[0]), TORNADO_ERR_NOT_FOUND, "remove_handler(unregistered)");
        uint32_t bad[] = {2, 0x10, 0x20, 0x100, 0x2000, 0x80000000u, 0xFFFFFFFFu, TORNADO_READ | 2, TORNADO_WRITE | 0x100};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            FAILS(tornado_loop_add_handler(loop, p[0], bad[i], noop_fd_cb, NULL), TORNADO_ERR_INVALID, "add_handler(events 0x%x)", bad[i]);
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, noop_fd_cb, NULL), "valid registration");
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            FAILS(tornado_loop_update_handler(loop, p[0], bad[i]), TORNADO_ERR_INVALID, "update_handler(events 0x%x)", bad[i]);
        FAILS(tornado_loop_add_handler(loop, p[0], TORNADO_READ, noop_fd_cb, NULL), TORNADO_ERR_EXISTS, "add_handler twice -> EXISTS");
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "remove");
        FILE *tmp = tmpfile();
        if (tmp) {
            FAILS(tornado_loop_add_handler(loop, fileno(tmp), TORNADO_READ, noop_fd_cb, NULL), TORNADO_ERR_BAD_FD,
                  "add_handler(regular file) -> BAD_FD");
            fclose(tmp);
        }
        close(p[0]);
    }

    tap_section("timeouts");
    FAILS(tornado_loop_remove_timeout(loop, 123456789), TORNADO_ERR_NOT_FOUND, "remove_timeout(unknown)");

    tap_section("future functions with NULL");
    {
        FAILS_NULL(tornado_future_ref(NULL), "future_ref(NULL)");
        log_lines = 0;
        CHECK_OK(tornado_set_log_callback(count_log_cb, &log_lines), "count the library's log lines");
        prime();
        tornado_future_unref(NULL);
        CHECK(strcmp(tap_last_error_(), primed) == 0, "future_unref(NULL) sets no error (a no-op)");
        CHECK(log_lines == 0, "and logs nothing (%d lines)", log_lines);
        CHECK_OK(tornado_set_log_callback(NULL, NULL), "log to stderr again");
        FAILS_AS(tornado_future_done(NULL), false, "future_done(NULL) == false");
        FAILS(tornado_future_set_result(NULL, NULL, NULL), TORNADO_ERR_INVALID, "set_result(NULL)");
        int drops = 0;
        FAILS(tornado_future_set_result(NULL, &drops, tap_count_drop), TORNADO_ERR_INVALID, "set_result(NULL, value, drop)");
        CHECK(drops == 0, "the refused value was not dropped");
        FAILS(tornado_future_set_error(NULL, TORNADO_ERR_USER, "x"), TORNADO_ERR_INVALID, "set_error(NULL)");
        FAILS(tornado_future_cancel(NULL), TORNADO_ERR_INVALID, "cancel(NULL)");
        FAILS_NULL(tornado_future_result(NULL), "future_result(NULL)");
        const char *msg = "untouched";
        FAILS(tornado_future_error(NULL, &msg), TORNADO_ERR_INVALID, "future_error(NULL)");
        FAILS(tornado_future_error(NULL, NULL), TORNADO_ERR_INVALID, "future_error(NULL, NULL)");
        FAILS(tornado_future_add_done_callback(NULL, noop_done_cb, NULL), TORNADO_ERR_INVALID, "add_done_callback(NULL)");
        FAILS(tornado_loop_run_sync(loop, NULL, 0.1), TORNADO_ERR_INVALID, "run_sync(NULL future)");
        FAILS_NULL(tornado_with_timeout(loop, NULL, 1.0), "with_timeout(NULL future)");
    }

    tap_section("set_error arguments");
    {
        tornado_future *f = tornado_future_new(loop);
        FAILS(tornado_future_set_error(f, TORNADO_OK, "x"), TORNADO_ERR_INVALID, "set_error(code 0)");
        FAILS(tornado_future_set_error(f, TORNADO_ERR_USER, "\xff"), TORNADO_ERR_INVALID, "set_error(0xff byte)");
        FAILS(tornado_future_set_error(f, TORNADO_ERR_USER, "ok \x80 bad"), TORNADO_ERR_INVALID, "set_error(stray continuation byte)");
        FAILS(tornado_future_set_error(f, TORNADO_ERR_USER, "\xe2\x82"), TORNADO_ERR_INVALID, "set_error(truncated sequence)");
        FAILS(tornado_future_set_error(f, TORNADO_ERR_USER, "\xf8\x88\x80\x80\x80"), TORNADO_ERR_INVALID, "set_error(5-byte sequence)");
        CHECK(!tornado_future_done(f), "still pending after refused set_error calls");
        CHECK_OK(tornado_future_set_error(f, TORNADO_ERR_USER, ""), "empty message is fine");
        tornado_future_unref(f);
    }

    tap_section("coroutine_return/raise");
    {
        FAILS(tornado_coroutine_return(NULL, NULL, NULL), TORNADO_ERR_INVALID, "coroutine_return(NULL)");
        FAILS(tornado_coroutine_raise(NULL, TORNADO_ERR_USER, "x"), TORNADO_ERR_INVALID, "coroutine_raise(NULL)");
        tornado_future *f = tornado_coroutine_spawn(loop, bad_args_step, NULL, NULL);
        CHECK_OK(tornado_loop_run_sync(loop, f, 1.0), "coroutine with bad return/raise arguments finishes OK");
        CHECK(co_checked, "its checks ran");
        tornado_future_unref(f);
    }

    tap_section("multi");
    {
        tornado_future *f = tornado_future_new(loop);
        tornado_future *with_null[2] = {f, NULL};
        FAILS_NULL(tornado_multi(loop, NULL, 2), "multi(NULL array, 2)");
        FAILS_NULL(tornado_multi(loop, with_null, 2), "multi with a NULL element");
        CHECK_OK(tornado_future_set_result(f, NULL, NULL), "the input is untouched");
        tornado_future_unref(f); /* valgrind: a refused multi must not keep a reference */
    }

    tap_section("periodic");
    {
        FAILS(tornado_periodic_set_jitter(NULL, 0.1), TORNADO_ERR_INVALID, "set_jitter(NULL)");
        FAILS(tornado_periodic_start(NULL), TORNADO_ERR_INVALID, "periodic_start(NULL)");
        FAILS(tornado_periodic_stop(NULL), TORNADO_ERR_INVALID, "periodic_stop(NULL)");
        FAILS_AS(tornado_periodic_is_running(NULL), false, "periodic_is_running(NULL) == false");
        FAILS(tornado_periodic_free(NULL), TORNADO_ERR_INVALID, "periodic_free(NULL)");
        double bad_jitter[] = {NAN, -0.1, 1.0001, INFINITY, -INFINITY};
        for (size_t i = 0; i < sizeof bad_jitter / sizeof bad_jitter[0]; i++) {
            tornado_periodic_set_jitter(primer, 0.5); /* reset the primer's message source */
            char buf[32];
            snprintf(buf, sizeof buf, "%g", bad_jitter[i]);
            /* the primer is set_jitter itself: use another failure to prime */
            tornado_loop_remove_timeout(NULL, 0);
            snprintf(primed, sizeof primed, "%s", tornado_last_error());
            tornado_code rc = tornado_periodic_set_jitter(primer, bad_jitter[i]);
            CHECK(rc == TORNADO_ERR_INVALID && fresh_message(), "set_jitter(%s) -> INVALID (%s)", buf, tornado_code_name(rc));
        }
        CHECK_OK(tornado_periodic_set_jitter(primer, 0.0), "set_jitter(0)");
        CHECK_OK(tornado_periodic_set_jitter(primer, 1.0), "set_jitter(1)");
    }

    tap_section("futures of another loop are refused");
    {
        /* A future's callbacks run on its own loop: waiting on it from
         * another one is refused, as documented for each call. */
        tornado_loop *other = tornado_loop_new();
        tornado_future *f = tornado_future_new(other);
        tornado_future *mine = tornado_future_new(loop);
        tornado_future *both[2] = {mine, f};
        FAILS_NULL(tornado_multi(loop, both, 2), "multi(loop, {its own, another loop's}) -> NULL");
        CHECK(strstr(tap_last_error_(), "another loop") != NULL, "the message says why (%s)", tap_last_error_());
        FAILS_NULL(tornado_with_timeout(loop, f, 0.01), "with_timeout(loop, another loop's future) -> NULL");
        CHECK(strstr(tap_last_error_(), "another loop") != NULL, "the message says why (%s)", tap_last_error_());
        FAILS(tornado_loop_run_sync(loop, f, 0.02), TORNADO_ERR_INVALID, "run_sync(loop, another loop's future) -> INVALID");
        yield_other_steps = 0;
        tornado_future *co = tornado_coroutine_spawn(loop, yield_other_step, f, NULL);
        CHECK(co != NULL, "spawn a coroutine that yields another loop's future");
        CHECK_CODE(tornado_loop_run_sync(loop, co, 1.0), TORNADO_ERR_INVALID, "the coroutine fails with INVALID");
        const char *msg = NULL;
        tornado_future_error(co, &msg);
        CHECK(msg != NULL && strstr(msg, "another loop") != NULL, "its error says why (%s)", msg ? msg : "(NULL)");
        CHECK(yield_other_steps == 1, "its step is not called again (%d)", yield_other_steps);
        tornado_future_unref(co);
        CHECK(!tornado_future_done(f) && !tornado_future_done(mine), "the refused inputs are untouched");
        tornado_future *own[1] = {mine};
        tornado_future *m = tornado_multi(loop, own, 1);
        CHECK(m != NULL, "multi over its own loop's future is accepted");
        CHECK_OK(tornado_future_set_result(mine, NULL, NULL), "complete it");
        CHECK_OK(tornado_loop_run_sync(loop, m, 1.0), "and the multi completes");
        CHECK_OK(tornado_future_set_result(f, NULL, NULL), "the other loop's future completes");
        CHECK_OK(tornado_loop_run_sync(other, f, 1.0), "run_sync on its own loop accepts it");
        tornado_future_unref(m);
        tornado_future_unref(mine);
        tornado_future_unref(f); /* valgrind: a refused call keeps no reference */
        CHECK_OK(tornado_loop_free(other), "free the other loop");
    }

    CHECK_OK(tornado_periodic_free(primer), "free primer");
    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
