/* Small helpers shared by the examples: checks that exit(1) with a clear
 * message, and a safety timeout so that no example can hang.
 *
 * Each example is self-checking: it prints what it does, checks every result,
 * and exits 0 only when everything happened exactly as expected. */
#ifndef TORNADO_EXAMPLE_UTIL_H
#define TORNADO_EXAMPLE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tornado_rs.h"

/* Fail with a message when `cond` is false. */
#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fflush(stdout);                                                  \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);             \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n  (check failed: %s)\n", #cond);              \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

/* Fail unless a call returned TORNADO_OK; shows the code's name and
 * tornado_last_error(). */
#define CHECK_OK(expr)                                                       \
    do {                                                                     \
        tornado_code check_rc_ = (expr);                                     \
        if (check_rc_ != TORNADO_OK) {                                       \
            fflush(stdout);                                                  \
            const char *check_msg_ = tornado_last_error();                   \
            fprintf(stderr, "FAIL %s:%d: %s returned %s (%d): %s\n",         \
                    __FILE__, __LINE__, #expr, tornado_code_name(check_rc_), \
                    (int)check_rc_, check_msg_ ? check_msg_ : "(no message)"); \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

/* Fail with the library's last error when a constructor returned NULL/0. */
#define CHECK_NEW(expr)                                                      \
    do {                                                                     \
        if (!(expr)) {                                                       \
            fflush(stdout);                                                  \
            const char *check_msg_ = tornado_last_error();                   \
            fprintf(stderr, "FAIL %s:%d: %s failed: %s\n", __FILE__,         \
                    __LINE__, #expr, check_msg_ ? check_msg_ : "(no message)"); \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

/* ---- safety timeout ----
 * A timer on the loop that stops it and marks the run failed, plus an alarm()
 * as a last resort in case the loop itself is wedged. */
static int example_safety_fired;

static void example_safety_cb(void *loop) {
    example_safety_fired = 1;
    fflush(stdout);
    fprintf(stderr, "FAIL: safety timeout: the example did not finish in time\n");
    tornado_loop_stop((tornado_loop *)loop);
}

static inline uint64_t example_arm_safety(tornado_loop *loop, double seconds) {
    uint64_t id = tornado_loop_call_later(loop, seconds, example_safety_cb, loop);
    CHECK_NEW(id);
    alarm((unsigned)seconds * 6 + 10); /* SIGALRM kills the process: never hang */
    return id;
}

static inline void example_disarm_safety(tornado_loop *loop, uint64_t id) {
    CHECK(!example_safety_fired, "the safety timeout fired");
    CHECK_OK(tornado_loop_remove_timeout(loop, id));
    alarm(0);
}

#endif
