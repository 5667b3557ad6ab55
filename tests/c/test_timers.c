/* test_timers.c: timer order, equal deadlines, not firing early, removal
 * (also by an earlier callback of the same iteration), NOT_FOUND, the drop
 * functions of _full timers, timers added by timers. */
#include "tap.h"

static tornado_loop *loop;

static int order[32];
static int norder;
static double fired_at[32];

static void record_cb(void *ud) {
    int i = (int)(intptr_t)ud;
    if (norder < 32) {
        fired_at[norder] = tornado_loop_time(loop);
        order[norder++] = i;
    }
}

static void run_until_idle_or(double seconds) {
    uint64_t id = tornado_loop_call_later(loop, seconds, tap_stop_cb, loop);
    CHECK(id != 0, "call_later(%.3f, stop)", seconds);
    CHECK_OK(tornado_loop_start(loop), "start");
}

/* the first of two timers due together removes the second */
static uint64_t victim_id;
static int victim_ran, remover_ran;
static tornado_code remove_rc = -1;
static void remover_cb(void *ud) {
    (void)ud;
    remover_ran++;
    remove_rc = tornado_loop_remove_timeout(loop, victim_id);
}
static void victim_cb(void *ud) {
    (void)ud;
    victim_ran++;
}

/* a callback (not a timer) removes a due timer of the same iteration */
static void cb_removes_timer(void *ud) {
    uint64_t *id = ud;
    remove_rc = tornado_loop_remove_timeout(loop, *id);
}

/* a timer that schedules another timer, due at once */
static void chain_cb(void *ud) {
    (void)ud;
    record_cb((void *)(intptr_t)1);
    uint64_t id = tornado_loop_call_later(loop, 0.0, record_cb, (void *)(intptr_t)2);
    CHECK(id != 0, "call_later(0) from inside a timer");
}

/* drop-order check for _full */
typedef struct {
    int calls;
    int drops;
    int dropped_after_call;
} full_state;
static void full_cb(void *ud) {
    full_state *st = ud;
    st->calls++;
}
static void full_drop(void *ud) {
    full_state *st = ud;
    st->drops++;
    st->dropped_after_call = st->calls;
}

int main(void) {
    tap_init("test_timers");
    loop = tornado_loop_new();
    CHECK(loop != NULL, "loop_new");
    if (!loop) return tap_done();

    tap_section("timers fire in deadline order");
    {
        /* call_later: each delay counts from its own call */
        norder = 0;
        double t0 = tornado_loop_time(loop);
        uint64_t a = tornado_loop_call_later(loop, 0.04, record_cb, (void *)(intptr_t)0);
        double t1 = tornado_loop_time(loop);
        uint64_t b = tornado_loop_call_later(loop, 0.01, record_cb, (void *)(intptr_t)1);
        CHECK(a && b, "call_later(0.04), call_later(0.01)");
        run_until_idle_or(0.08);
        CHECK(norder == 2, "both fired");
        if (t1 - t0 < 0.02) CHECK(norder == 2 && order[0] == 1 && order[1] == 0, "the shorter delay fired first");
        CHECK(fired_at[0] >= t0 && fired_at[1] >= t0 + 0.01 - 1e-6, "not early");
        norder = 0;
    }
    {
        double t0 = tornado_loop_time(loop);
        double delays[] = {0.03, 0.01, 0.05, 0.02, 0.04};
        /* absolute deadlines from one base time: the order does not depend on
         * how long the scheduling calls take (valgrind is slow) */
        for (int i = 0; i < 5; i++) {
            uint64_t id = tornado_loop_call_at(loop, t0 + delays[i], record_cb, (void *)(intptr_t)i);
            CHECK(id != 0, "call_at(t0 + %.2f)", delays[i]);
        }
        run_until_idle_or(0.15);
        int want[] = {1, 3, 0, 4, 2};
        int ok = norder == 5;
        for (int i = 0; ok && i < 5; i++) ok = order[i] == want[i];
        CHECK(ok, "fired in deadline order 1,3,0,4,2 (got %d fired: %d,%d,%d,%d,%d)", norder, order[0], order[1], order[2],
              order[3], order[4]);
        int early = 0;
        for (int i = 0; i < norder; i++)
            if (fired_at[i] < t0 + delays[order[i]] - 1e-6) early++;
        CHECK(early == 0, "no timer fired before its deadline");
        if (norder == 5) tap_diag("first timer (10 ms) fired after %.2f ms", (fired_at[0] - t0) * 1e3);
    }

    tap_section("equal deadlines fire in scheduling order");
    {
        norder = 0;
        double when = tornado_loop_time(loop) + 0.02;
        for (int i = 0; i < 8; i++) {
            uint64_t id = tornado_loop_call_at(loop, when, record_cb, (void *)(intptr_t)i);
            CHECK(id != 0, "call_at(same time) #%d", i);
        }
        run_until_idle_or(0.06);
        int ok = norder == 8;
        for (int i = 0; ok && i < 8; i++) ok = order[i] == i;
        CHECK(ok, "8 timers with one deadline fired 0..7 (%d fired)", norder);
        int early = 0;
        for (int i = 0; i < norder; i++) early += fired_at[i] < when - 1e-6;
        CHECK(early == 0, "call_at timers not early");
    }

    tap_section("call_at in the past fires on the next iteration");
    {
        norder = 0;
        uint64_t id = tornado_loop_call_at(loop, tornado_loop_time(loop) - 1.0, record_cb, (void *)(intptr_t)7);
        CHECK(id != 0, "call_at(now - 1)");
        id = tornado_loop_call_at(loop, 0.0, record_cb, (void *)(intptr_t)8);
        CHECK(id != 0, "call_at(0)");
        CHECK(norder == 0, "not called inside call_at");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(norder == 2 && order[0] == 8 && order[1] == 7, "both past timers fired, in deadline order (0 before now-1)");
    }

    tap_section("ids are distinct and non-zero");
    {
        uint64_t ids[20];
        int distinct = 1, nonzero = 1;
        int dummy = 0;
        for (int i = 0; i < 20; i++) {
            ids[i] = tornado_loop_call_later(loop, 10.0, tap_count_cb, &dummy);
            nonzero &= ids[i] != 0;
            for (int j = 0; j < i; j++) distinct &= ids[i] != ids[j];
        }
        CHECK(nonzero, "20 ids non-zero");
        CHECK(distinct, "20 ids distinct");
        int removed = 0;
        for (int i = 0; i < 20; i++) removed += tornado_loop_remove_timeout(loop, ids[i]) == TORNADO_OK;
        CHECK(removed == 20, "all removed");
        CHECK(dummy == 0, "none fired");
    }

    tap_section("remove_timeout");
    {
        int ran = 0;
        uint64_t id = tornado_loop_call_later(loop, 0.01, tap_count_cb, &ran);
        CHECK(id != 0, "call_later(0.01)");
        CHECK_OK(tornado_loop_remove_timeout(loop, id), "remove before due");
        CHECK_FAIL(tornado_loop_remove_timeout(loop, id), TORNADO_ERR_NOT_FOUND, "remove twice -> NOT_FOUND");
        run_until_idle_or(0.05);
        CHECK(ran == 0, "removed timer never fired");

        id = tornado_loop_call_later(loop, 0.0, tap_count_cb, &ran);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ran == 1, "fired");
        CHECK_FAIL(tornado_loop_remove_timeout(loop, id), TORNADO_ERR_NOT_FOUND, "remove after it ran -> NOT_FOUND");
        CHECK_FAIL(tornado_loop_remove_timeout(loop, 0xdeadbeefULL), TORNADO_ERR_NOT_FOUND, "unknown id -> NOT_FOUND");
        CHECK_FAIL(tornado_loop_remove_timeout(loop, UINT64_MAX), TORNADO_ERR_NOT_FOUND, "id UINT64_MAX -> NOT_FOUND");
        tornado_code rc = tornado_loop_remove_timeout(loop, 0);
        CHECK(rc == TORNADO_ERR_NOT_FOUND || rc == TORNADO_ERR_INVALID, "id 0 -> NOT_FOUND or INVALID (%s)",
              tornado_code_name(rc));
        CHECK_ERRMSG("id 0 sets a message");
    }

    tap_section("a timer removed by an earlier timer of the same iteration never fires");
    {
        double when = tornado_loop_time(loop) + 0.02;
        uint64_t a = tornado_loop_call_at(loop, when, remover_cb, NULL);
        victim_id = tornado_loop_call_at(loop, when, victim_cb, NULL);
        CHECK(a != 0 && victim_id != 0, "two timers at the same time");
        run_until_idle_or(0.06);
        CHECK(remover_ran == 1, "the first ran");
        CHECK_OK(remove_rc, "it removed the second (OK: still pending)");
        CHECK(victim_ran == 0, "the second never ran");
    }

    tap_section("a timer removed by a callback of the same iteration never fires");
    {
        int ran = 0;
        uint64_t id = tornado_loop_call_later(loop, 0.0, tap_count_cb, &ran);
        remove_rc = -1;
        CHECK_OK(tornado_loop_add_callback(loop, cb_removes_timer, &id), "callback that removes the timer");
        tap_sleep_ms(2); /* the timer is certainly due at the next iteration */
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        /* callbacks and due timers share the iteration; whichever order the
         * loop uses, a successful removal means the timer never fires */
        tap_diag("callback's remove_timeout returned %s, timer ran %d times", tornado_code_name(remove_rc), ran);
        CHECK(remove_rc == TORNADO_OK ? ran == 0 : (remove_rc == TORNADO_ERR_NOT_FOUND && ran == 1),
              "removed => never fired; otherwise fired exactly once");
    }

    tap_section("a timer scheduled by a timer runs on a later iteration");
    {
        norder = 0;
        uint64_t id = tornado_loop_call_later(loop, 0.0, chain_cb, NULL);
        CHECK(id != 0, "call_later(0, chain)");
        tap_sleep_ms(1);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once #1");
        CHECK(norder == 1 && order[0] == 1, "only the first timer ran in iteration 1 (%d)", norder);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once #2");
        CHECK(norder == 2 && order[1] == 2, "the chained timer ran in iteration 2");
    }

    tap_section("not earlier than asked");
    {
        norder = 0;
        double s_loop = tornado_loop_time(loop);
        double s_mono = tap_now();
        uint64_t id = tornado_loop_call_later(loop, 0.05, record_cb, (void *)(intptr_t)1);
        CHECK(id != 0, "call_later(0.05)");
        while (norder == 0 && tap_now() - s_mono < 2.0) tornado_loop_run_once(loop, 1.0);
        double mono_dt = tap_now() - s_mono;
        CHECK(norder == 1, "fired");
        CHECK(fired_at[0] - s_loop >= 0.05 - 1e-6, "fired >= 50 ms after call_later by loop_time (%.3f ms)",
              (fired_at[0] - s_loop) * 1e3);
        CHECK(mono_dt >= 0.05 - 1e-4 && mono_dt < 0.5, "and by CLOCK_MONOTONIC (%.3f ms)", mono_dt * 1e3);
    }

    tap_section("_full: drop after the call, exactly once");
    {
        full_state fired = {0, 0, -1}, removed = {0, 0, -1}, at = {0, 0, -1};
        uint64_t a = tornado_loop_call_later_full(loop, 0.0, full_cb, &fired, full_drop);
        uint64_t b = tornado_loop_call_later_full(loop, 0.01, full_cb, &removed, full_drop);
        uint64_t c = tornado_loop_call_at_full(loop, tornado_loop_time(loop), full_cb, &at, full_drop);
        CHECK(a && b && c, "call_later_full / call_at_full");
        CHECK(fired.drops == 0 && removed.drops == 0 && at.drops == 0, "no drop at registration");
        CHECK_OK(tornado_loop_remove_timeout(loop, b), "remove the _full timer");
        run_until_idle_or(0.05);
        CHECK(fired.calls == 1 && fired.drops == 1, "fired timer: called once, dropped once");
        CHECK(fired.dropped_after_call == 1, "drop ran after the callback");
        CHECK(at.calls == 1 && at.drops == 1 && at.dropped_after_call == 1, "call_at_full: called once, dropped once after");
        CHECK(removed.calls == 0 && removed.drops == 1, "removed timer: never called, dropped once");
        run_until_idle_or(0.02);
        CHECK(fired.drops == 1 && removed.drops == 1 && at.drops == 1, "still exactly once later");
        /* drop may be NULL */
        int ran = 0;
        CHECK(tornado_loop_call_later_full(loop, 0.0, tap_count_cb, &ran, NULL) != 0, "call_later_full(drop NULL)");
        run_until_idle_or(0.01);
        CHECK(ran == 1, "ran");
    }

    tap_section("large delays are accepted");
    {
        int ran = 0;
        uint64_t id = tornado_loop_call_later(loop, 1e6, tap_count_cb, &ran);
        CHECK(id != 0, "call_later(1e6 s)");
        uint64_t id2 = tornado_loop_call_later(loop, 1e300, tap_count_cb, &ran);
        CHECK(id2 != 0 || TAP_HAS_ERRMSG(), "call_later(1e300 s) is accepted or refused cleanly");
        double to = tornado_loop_backend_timeout(loop);
        CHECK(to > 1e5, "backend_timeout far away (%g)", to);
        CHECK_OK(tornado_loop_remove_timeout(loop, id), "remove");
        if (id2) CHECK_OK(tornado_loop_remove_timeout(loop, id2), "remove");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ran == 0, "not fired");
    }

    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
