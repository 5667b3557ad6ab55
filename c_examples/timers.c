/* timers.c: one-shot timers, removing a timer, a periodic callback, call_at.
 *
 *  1. call_later ordering: three timers scheduled out of order at different
 *     delays fire in deadline order; timers with the same delay (call_later)
 *     or the same deadline (call_at) fire in the order they were scheduled.
 *     No timer fires before its deadline.
 *  2. remove_timeout: a timer removed right away, and one removed from inside
 *     another timer's callback, never fire; the drop function of a removed
 *     `_full` timer is called exactly once.
 *  3. a periodic callback (tornado_periodic_*) fires N times on the interval
 *     grid, stops itself, and does not fire again.
 *  4. call_at with tornado_loop_time.
 *  5. bad input is an error code, not a crash.
 */
#include <math.h>
#include <string.h>

#include "example_util.h"

static tornado_loop *loop;
static double t0; /* loop time when the timers were scheduled */

/* ---- 1. ordering ---- */
typedef struct {
    const char *label;
    double earliest; /* t0 + delay: the deadline can only be later */
    int fired;
    double fired_at;
} timer_rec;

#define MAX_SEQ 16
static const char *seq[MAX_SEQ];
static int nseq;

static void record(timer_rec *r) {
    r->fired++;
    r->fired_at = tornado_loop_time(loop);
    if (nseq < MAX_SEQ) seq[nseq] = r->label;
    nseq++;
    printf("  %-9s fired at +%6.1f ms (deadline >= +%5.1f ms)\n", r->label,
           (r->fired_at - t0) * 1e3, (r->earliest - t0) * 1e3);
}

static void on_timer(void *ud) { record((timer_rec *)ud); }

/* ---- 2. removal ---- */
static int never_fired;
static void on_never(void *ud) {
    never_fired++;
    fprintf(stderr, "  timer '%s' fired although it was removed\n", (const char *)ud);
}

static int drop_calls;
static void count_drop(void *ud) {
    (void)ud;
    drop_calls++;
}

static uint64_t late_victim; /* removed from inside the "20ms" callback */
static tornado_code late_remove_rc = -1;

static void on_timer_and_remove(void *ud) {
    record((timer_rec *)ud);
    late_remove_rc = tornado_loop_remove_timeout(loop, late_victim);
    printf("  %-9s removed the 'late' timer from its callback: %s\n", "",
           tornado_code_name(late_remove_rc));
}

/* a one-shot `_full` timer whose userdata is heap memory released by `free` */
static int heap_timer_fired;
static void on_heap_timer(void *ud) {
    CHECK(strcmp((const char *)ud, "heap userdata") == 0, "wrong userdata");
    heap_timer_fired++;
}

/* ---- 3. periodic ---- */
#define TICKS 5
#define INTERVAL 0.010
static tornado_periodic *periodic;
static double periodic_start;
static double tick_at[TICKS + 8];
static int ticks;
static int periodic_drops;

static void on_tick(void *ud) {
    CHECK(ud == &ticks, "periodic got the wrong userdata");
    double now = tornado_loop_time(loop);
    if (ticks < TICKS + 8) tick_at[ticks] = now;
    ticks++;
    printf("  periodic tick %d at +%.1f ms after start\n", ticks, (now - periodic_start) * 1e3);
    if (ticks == TICKS) {
        CHECK_OK(tornado_periodic_stop(periodic));
        CHECK(!tornado_periodic_is_running(periodic), "is_running after stop");
        printf("  periodic stopped itself after %d ticks\n", TICKS);
    }
}

static void periodic_drop(void *ud) {
    CHECK(ud == &ticks, "periodic drop got the wrong userdata");
    periodic_drops++;
}

/* ---- 4. call_at ---- */
static double at_when;
static double at_fired_at;
static int at_fired;
static void on_at(void *ud) {
    (void)ud;
    at_fired++;
    at_fired_at = tornado_loop_time(loop);
    printf("  call_at   fired at +%6.1f ms (asked for +%.1f ms)\n", (at_fired_at - t0) * 1e3,
           (at_when - t0) * 1e3);
}

/* ---- the end ---- */
/* Stops the loop once everything above has happened, and then three more
 * intervals (a 6th periodic tick would show in them): waiting for the
 * events, not for a fixed time, so a slow machine (valgrind, a loaded CI)
 * only makes the run longer. The safety timer bounds it. */
static int settling;
static void on_finish(void *ud) {
    (void)ud;
    if (ticks < TICKS || nseq < 7 || !at_fired) {
        tornado_loop_call_later(loop, 0.050, on_finish, NULL);
        return;
    }
    if (!settling) {
        settling = 1;
        tornado_loop_call_later(loop, 3 * INTERVAL, on_finish, NULL);
        return;
    }
    printf("  finish: stopping the loop\n");
    tornado_loop_stop(loop);
}

int main(void) {
    CHECK_NEW(loop = tornado_loop_new());
    uint64_t safety = example_arm_safety(loop, 5.0);

    printf("1. call_later ordering (scheduled as 60ms, 20ms, 40ms, 30ms, 30ms; call_at +50ms x2)\n");
    timer_rec r60 = {"60ms", 0, 0, 0}, r20 = {"20ms", 0, 0, 0}, r40 = {"40ms", 0, 0, 0};
    timer_rec eq1 = {"30ms-1st", 0, 0, 0}, eq2 = {"30ms-2nd", 0, 0, 0};
    timer_rec at1 = {"at50-1st", 0, 0, 0}, at2 = {"at50-2nd", 0, 0, 0};
    t0 = tornado_loop_time(loop);
    r60.earliest = t0 + 0.060;
    r20.earliest = t0 + 0.020;
    r40.earliest = t0 + 0.040;
    eq1.earliest = eq2.earliest = t0 + 0.030;
    at1.earliest = at2.earliest = t0 + 0.050;
    CHECK_NEW(tornado_loop_call_later(loop, 0.060, on_timer, &r60));
    CHECK_NEW(tornado_loop_call_later(loop, 0.020, on_timer_and_remove, &r20));
    CHECK_NEW(tornado_loop_call_later(loop, 0.040, on_timer, &r40));
    CHECK_NEW(tornado_loop_call_later(loop, 0.030, on_timer, &eq1));
    CHECK_NEW(tornado_loop_call_later(loop, 0.030, on_timer, &eq2));
    CHECK_NEW(tornado_loop_call_at(loop, t0 + 0.050, on_timer, &at1));
    CHECK_NEW(tornado_loop_call_at(loop, t0 + 0.050, on_timer, &at2));

    printf("2. remove_timeout\n");
    uint64_t removed = tornado_loop_call_later_full(loop, 0.010, on_never, "removed-now", count_drop);
    CHECK_NEW(removed);
    CHECK_OK(tornado_loop_remove_timeout(loop, removed));
    printf("  removed a 10ms timer right after scheduling it\n");
    late_victim = tornado_loop_call_later(loop, 0.045, on_never, "late");
    CHECK_NEW(late_victim);
    char *heap = malloc(32);
    CHECK(heap != NULL, "malloc");
    strcpy(heap, "heap userdata");
    CHECK_NEW(tornado_loop_call_later_full(loop, 0.005, on_heap_timer, heap, free));

    printf("3. periodic callback every %.0f ms, %d ticks\n", INTERVAL * 1e3, TICKS);
    CHECK_NEW(periodic = tornado_periodic_new(loop, INTERVAL, on_tick, &ticks, periodic_drop));
    CHECK(!tornado_periodic_is_running(periodic), "is_running before start");
    periodic_start = tornado_loop_time(loop);
    CHECK_OK(tornado_periodic_start(periodic));
    CHECK(tornado_periodic_is_running(periodic), "not running after start");

    printf("4. call_at(tornado_loop_time() + 0.070)\n");
    at_when = tornado_loop_time(loop) + 0.070;
    CHECK_NEW(tornado_loop_call_at(loop, at_when, on_at, NULL));

    /* the periodic's 5 ticks end near +50 ms; on_finish waits for them */
    CHECK_NEW(tornado_loop_call_later(loop, 0.150, on_finish, NULL));

    printf("5. bad input is reported, not fatal\n");
    CHECK(tornado_loop_call_later(loop, -1.0, on_never, "negative") == 0, "negative delay accepted");
    CHECK(tornado_last_error() != NULL, "no last_error after a failed call");
    printf("  call_later(-1.0) -> 0: %s\n", tornado_last_error());
    CHECK(tornado_loop_call_later(loop, NAN, on_never, "nan") == 0, "NaN delay accepted");
    printf("  call_later(NaN)  -> 0: %s\n", tornado_last_error());
    tornado_code rc = tornado_loop_remove_timeout(loop, removed); /* already removed */
    CHECK(rc == TORNADO_ERR_NOT_FOUND, "removing a removed timer gave %s", tornado_code_name(rc));
    printf("  remove_timeout(removed id) -> %s\n", tornado_code_name(rc));
    rc = tornado_loop_add_callback(NULL, on_never, "null loop");
    CHECK(rc == TORNADO_ERR_INVALID, "add_callback(NULL) gave %s", tornado_code_name(rc));
    printf("  add_callback(NULL loop) -> %s\n", tornado_code_name(rc));

    printf("running the loop\n");
    CHECK_OK(tornado_loop_start(loop));
    example_disarm_safety(loop, safety);

    /* ---- checks ---- */
    const char *expect[] = {"20ms", "30ms-1st", "30ms-2nd", "40ms", "at50-1st", "at50-2nd", "60ms"};
    int nexpect = (int)(sizeof expect / sizeof expect[0]);
    CHECK(nseq == nexpect, "%d timers fired, expected %d", nseq, nexpect);
    for (int i = 0; i < nexpect; i++)
        CHECK(strcmp(seq[i], expect[i]) == 0, "timer #%d was %s, expected %s", i + 1, seq[i], expect[i]);
    timer_rec *all[] = {&r20, &eq1, &eq2, &r40, &at1, &at2, &r60};
    for (int i = 0; i < nexpect; i++) {
        CHECK(all[i]->fired == 1, "%s fired %d times", all[i]->label, all[i]->fired);
        CHECK(all[i]->fired_at >= all[i]->earliest - 1e-3, "%s fired %.2f ms early", all[i]->label,
              (all[i]->earliest - all[i]->fired_at) * 1e3);
        CHECK(all[i]->fired_at - all[i]->earliest < 0.5, "%s fired %.0f ms late", all[i]->label,
              (all[i]->fired_at - all[i]->earliest) * 1e3);
    }
    printf("ok: %d timers fired once each, in deadline order, ties in scheduling order\n", nexpect);

    CHECK(never_fired == 0, "a removed timer fired");
    CHECK(late_remove_rc == TORNADO_OK, "removing from a callback gave %s", tornado_code_name(late_remove_rc));
    CHECK(drop_calls == 1, "the removed _full timer's drop ran %d times", drop_calls);
    CHECK(heap_timer_fired == 1, "the _full timer fired %d times", heap_timer_fired);
    printf("ok: removed timers never fired; drop functions ran once\n");

    CHECK(ticks == TICKS, "periodic ticked %d times, expected %d", ticks, TICKS);
    for (int i = 0; i < TICKS; i++) {
        /* Tornado's grid: tick k is due at start + k * interval (missed runs skipped) */
        double due = periodic_start + (i + 1) * INTERVAL;
        CHECK(tick_at[i] >= due - 1e-3, "tick %d came %.2f ms early", i + 1, (due - tick_at[i]) * 1e3);
        if (i > 0) CHECK(tick_at[i] > tick_at[i - 1], "ticks out of order");
    }
    CHECK(!tornado_periodic_is_running(periodic), "periodic still running");
    CHECK(periodic_drops == 0, "periodic drop ran before free");
    CHECK_OK(tornado_periodic_free(periodic));
    CHECK(periodic_drops == 1, "periodic drop ran %d times after free", periodic_drops);
    printf("ok: periodic ticked %d times on its interval, then stopped; free ran its drop once\n", TICKS);

    CHECK(at_fired == 1, "call_at timer fired %d times", at_fired);
    CHECK(at_fired_at >= at_when - 1e-3, "call_at fired %.2f ms early", (at_when - at_fired_at) * 1e3);
    CHECK(at_fired_at - at_when < 0.5, "call_at fired %.0f ms late", (at_fired_at - at_when) * 1e3);
    printf("ok: call_at fired at its deadline\n");

    CHECK_OK(tornado_loop_free(loop));
    printf("timers: all checks passed\n");
    return 0;
}
