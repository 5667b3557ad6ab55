/* Measurement helpers for bench.c, following the conventions of
 * shared/bench/anchors/README.md ("Conventions the project's bench must
 * follow too"), so that tornado_rs figures compare with the anchors':
 *  - wall_s / cpu_s cover the measured phase only; cpu_s = user + sys of the
 *    whole process (all threads), getrusage(RUSAGE_SELF), over that phase;
 *  - peak_rss_kb = ru_maxrss (whole life of the process);
 *  - W2 delays: xorshift64 (13/7/17), seeded with 42, delay_ms = draw % 1000;
 *  - one JSON line on stdout, exit non-zero unless the work was done exactly. */
#ifndef TORNADO_BENCH_UTIL_H
#define TORNADO_BENCH_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
    double wall0, cpu0; /* at start */
    double wall_s, cpu_s; /* the measured phase */
} bu_phase;

static double bu_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double bu_tv(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6; }

static double bu_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return bu_tv(ru.ru_utime) + bu_tv(ru.ru_stime);
}

static long bu_peak_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void bu_start(bu_phase *p) {
    p->cpu0 = bu_cpu();
    p->wall0 = bu_wall();
}

static void bu_stop(bu_phase *p) {
    p->wall_s = bu_wall() - p->wall0;
    p->cpu_s = bu_cpu() - p->cpu0;
}

/* Marsaglia's xorshift64 with the 13/7/17 triple; the state starts at 42. */
static uint64_t bu_xorshift64(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Soft RLIMIT_NOFILE up to the hard limit; returns the soft limit now in force. */
static long bu_raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    }
    return (long)rl.rlim_cur;
}

/* The JSON line: workload, impl, n, wall_s, cpu_s, [per_op_ns], peak_rss_kb,
 * then `extra` (printf format producing ,"key":value pairs; may be NULL). */
static void bu_emit(const char *workload, long n, const bu_phase *p, int per_op, const char *extra, ...) {
    char tail[512] = "";
    if (extra) {
        va_list ap;
        va_start(ap, extra);
        vsnprintf(tail, sizeof tail, extra, ap);
        va_end(ap);
    }
    printf("{\"workload\":\"%s\",\"impl\":\"tornado_rs\",\"n\":%ld,\"wall_s\":%.6f,\"cpu_s\":%.6f", workload, n,
           p->wall_s, p->cpu_s);
    if (per_op) printf(",\"per_op_ns\":%.1f", p->wall_s * 1e9 / (double)n);
    printf(",\"peak_rss_kb\":%ld%s}\n", bu_peak_rss_kb(), tail);
    fflush(stdout);
}

#endif
