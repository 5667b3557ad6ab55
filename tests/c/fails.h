/* fails.h: checks that a call failed the documented way: its return value
 * (a code, NULL/0 or a sentinel) and a fresh, non-empty tornado_last_error().
 * "Fresh" means the call replaced the message a distinctive failure left
 * just before it: the including file defines prime(), which makes such a
 * failure and copies its message into primed[]. */
#ifndef TORNADO_FAILS_H
#define TORNADO_FAILS_H

#include "tap.h"

static char primed[512];
static void prime(void);

static int fresh_message(void) {
    const char *m = tornado_last_error();
    return m != NULL && m[0] != '\0' && strcmp(m, primed) != 0;
}

/* a call returning tornado_code */
#define FAILS(expr, code, ...)                                                                     \
    do {                                                                                           \
        prime();                                                                                   \
        tornado_code rc_ = (expr);                                                                 \
        char extra_[700];                                                                          \
        snprintf(extra_, sizeof extra_, "got %s (%d), expected %s; message: %s",                   \
                 tornado_code_name(rc_), (int)rc_, tornado_code_name(code), tap_last_error_());    \
        tap_check_(rc_ == (code) && fresh_message(), __FILE__, __LINE__, #expr, extra_, __VA_ARGS__); \
    } while (0)

/* a call returning a pointer or id: 0/NULL expected */
#define FAILS_NULL(expr, ...)                                                                      \
    do {                                                                                           \
        prime();                                                                                   \
        int null_ = (expr) == 0;                                                                   \
        char extra_[700];                                                                          \
        snprintf(extra_, sizeof extra_, "returned %s; message: %s", null_ ? "NULL/0" : "non-NULL", \
                 tap_last_error_());                                                               \
        tap_check_(null_ && fresh_message(), __FILE__, __LINE__, #expr, extra_, __VA_ARGS__);      \
    } while (0)

/* a call whose return value is a sentinel (-1, false): check it and the message */
#define FAILS_AS(expr, sentinel, ...)                                                              \
    do {                                                                                           \
        prime();                                                                                   \
        int same_ = (expr) == (sentinel);                                                          \
        char extra_[700];                                                                          \
        snprintf(extra_, sizeof extra_, "sentinel %s; message: %s", same_ ? "returned" : "NOT returned", \
                 tap_last_error_());                                                               \
        tap_check_(same_ && fresh_message(), __FILE__, __LINE__, #expr, extra_, __VA_ARGS__);      \
    } while (0)

#endif
