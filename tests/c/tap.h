/* tap.h: a tiny TAP test harness for the tornado_rs C tests.
 *
 *   tap_init("name");             start: unbuffered output, arm the watchdog
 *   tap_section("what");          names the part running now (shown on a hang)
 *   CHECK(cond, "fmt", ...);      "ok N - name" / "not ok N - name"
 *   CHECK_CODE(expr, code, ...);  expr == code; on failure shows both names
 *   CHECK_FAIL(expr, code, ...);  expr == code and tornado_last_error() is a
 *                                 non-empty message
 *   CHECK_ERRMSG(...);            tornado_last_error() is a non-empty message
 *   return tap_done();            prints "1..N" and "N passed, M failed" as
 *                                 the last line; 0 only when M == 0
 *
 * The watchdog (alarm(), 20 s, TAP_WATCHDOG_S overrides) prints a failure and
 * _exit(1)s so that no test can hang. CHECK may be called from any thread.
 */
#ifndef TORNADO_TAP_H
#define TORNADO_TAP_H

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tornado_rs.h"

#define TAP_UNUSED __attribute__((unused))

static int tap_count_;
static int tap_failed_;
static pthread_mutex_t tap_lock_ = PTHREAD_MUTEX_INITIALIZER;
static const char *volatile tap_section_name_ = "(start)";
static const char *tap_program_ = "test";

static TAP_UNUSED void tap_write_(const char *s) {
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t w = write(STDOUT_FILENO, s, len);
        if (w <= 0) return;
        s += w;
        len -= (size_t)w;
    }
}

static TAP_UNUSED void tap_watchdog_(int sig) {
    (void)sig;
    /* async-signal-safe: write() and _exit() only */
    tap_write_("not ok - watchdog: ");
    tap_write_(tap_program_);
    tap_write_(" did not finish in time; running: ");
    tap_write_(tap_section_name_);
    tap_write_("\nBail out! watchdog timeout\n");
    _exit(1);
}

static TAP_UNUSED void tap_init(const char *program) {
    setvbuf(stdout, NULL, _IONBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
    tap_program_ = program;
    unsigned seconds = 20;
    const char *env = getenv("TAP_WATCHDOG_S");
    if (env != NULL && atoi(env) > 0) seconds = (unsigned)atoi(env);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tap_watchdog_;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
    printf("# %s (watchdog %u s)\n", program, seconds);
}

static TAP_UNUSED void tap_section(const char *name) {
    tap_section_name_ = name;
    printf("# -- %s\n", name);
}

static TAP_UNUSED void tap_diag(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&tap_lock_);
    printf("# %s\n", buf);
    pthread_mutex_unlock(&tap_lock_);
}

static TAP_UNUSED const char *tap_last_error_(void) {
    const char *msg = tornado_last_error();
    return msg ? msg : "(NULL)";
}

static TAP_UNUSED int tap_check_(int ok, const char *file, int line, const char *expr, const char *extra,
                                 const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&tap_lock_);
    int n = ++tap_count_;
    if (ok) {
        printf("ok %d - %s\n", n, name);
    } else {
        tap_failed_++;
        printf("not ok %d - %s\n", n, name);
        printf("#   failed at %s:%d [%s]: %s\n", file, line, tap_section_name_, expr);
        if (extra != NULL && extra[0] != '\0') printf("#   %s\n", extra);
        printf("#   tornado_last_error(): %s\n", tap_last_error_());
    }
    pthread_mutex_unlock(&tap_lock_);
    return ok;
}

/* CHECK(cond, "name %d", args...) */
#define CHECK(cond, ...) tap_check_(!!(cond), __FILE__, __LINE__, #cond, NULL, __VA_ARGS__)

/* CHECK_CODE(expr, expected_code, "name", ...): the call returned expected_code. */
#define CHECK_CODE(expr, expected, ...)                                                           \
    do {                                                                                          \
        tornado_code tap_rc_ = (expr);                                                            \
        tornado_code tap_want_ = (expected);                                                      \
        char tap_extra_[256];                                                                     \
        snprintf(tap_extra_, sizeof tap_extra_, "got %s (%d), expected %s (%d)",                  \
                 tornado_code_name(tap_rc_), (int)tap_rc_, tornado_code_name(tap_want_),          \
                 (int)tap_want_);                                                                 \
        tap_check_(tap_rc_ == tap_want_, __FILE__, __LINE__, #expr, tap_extra_, __VA_ARGS__);     \
    } while (0)

#define CHECK_OK(expr, ...) CHECK_CODE(expr, TORNADO_OK, __VA_ARGS__)

/* The last failing call left a non-empty message. */
#define TAP_HAS_ERRMSG() (tornado_last_error() != NULL && tornado_last_error()[0] != '\0')
#define CHECK_ERRMSG(...) CHECK(TAP_HAS_ERRMSG(), __VA_ARGS__)

/* CHECK_FAIL(expr, expected_code, "name"): returned expected_code and set a message. */
#define CHECK_FAIL(expr, expected, ...)                                                           \
    do {                                                                                          \
        tornado_code tap_rc_ = (expr);                                                            \
        tornado_code tap_want_ = (expected);                                                      \
        char tap_extra_[512];                                                                     \
        snprintf(tap_extra_, sizeof tap_extra_, "got %s (%d), expected %s (%d); message: %s",     \
                 tornado_code_name(tap_rc_), (int)tap_rc_, tornado_code_name(tap_want_),          \
                 (int)tap_want_, tap_last_error_());                                              \
        tap_check_(tap_rc_ == tap_want_ && TAP_HAS_ERRMSG(), __FILE__, __LINE__, #expr,           \
                   tap_extra_, __VA_ARGS__);                                                      \
    } while (0)

static TAP_UNUSED int tap_done(void) {
    alarm(0);
    pthread_mutex_lock(&tap_lock_);
    int passed = tap_count_ - tap_failed_;
    printf("1..%d\n", tap_count_);
    printf("%d passed, %d failed\n", passed, tap_failed_);
    int failed = tap_failed_;
    pthread_mutex_unlock(&tap_lock_);
    return failed == 0 && tap_count_ > 0 ? 0 : 1;
}

/* ---- small helpers shared by the tests ---- */

/* CLOCK_MONOTONIC seconds. */
static TAP_UNUSED double tap_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static TAP_UNUSED void tap_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* A counting drop function: userdata is an int counter. */
static TAP_UNUSED void tap_count_drop(void *p) {
    (*(int *)p)++;
}

/* A callback that only counts: userdata is an int counter. */
static TAP_UNUSED void tap_count_cb(void *p) {
    (*(int *)p)++;
}

/* A callback that stops the loop passed as userdata. */
static TAP_UNUSED void tap_stop_cb(void *loop) {
    tornado_loop_stop((tornado_loop *)loop);
}

#endif
