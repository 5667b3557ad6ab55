/* What keeping W6b's bodies costs before any byte arrives: the first touch
 * of 8 fresh 10 MiB buffers (malloc'd, as a buffered response body of known
 * length is), written front to back in 16 KiB steps as the body would be.
 * A client that only counts the bytes (the libcurl and h2load anchors)
 * never pays this; one that keeps the bodies (Tornado's model, and the
 * bench program's default) always does. Prints one JSON line.
 *
 *   cc -O2 -o /tmp/first_touch benches/first_touch.c && /tmp/first_touch
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int main(void) {
    const size_t body = 10u << 20, step = 16u << 10;
    const int bodies = 8;
    struct timespec t0, t1;
    struct rusage r0, r1;
    char *kept[8];
    getrusage(RUSAGE_SELF, &r0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < bodies; i++) {
        kept[i] = malloc(body);
        if (!kept[i]) return 1;
        for (size_t at = 0; at < body; at += step) memset(kept[i] + at, 'B', step);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &r1);
    double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                 (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
    printf("{\"what\":\"first touch of 8 x 10 MiB\",\"wall_s\":%.4f,\"cpu_s\":%.4f,\"minor_faults\":%ld}\n",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, cpu,
           r1.ru_minflt - r0.ru_minflt);
    for (int i = 0; i < bodies; i++) free(kept[i]);
    return 0;
}
