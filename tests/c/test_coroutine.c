/* test_coroutine.c: the coroutine runner (first step with resumed == NULL,
 * suspension on a pending future, immediate resumption on a done one,
 * tornado_moment needing an iteration), error propagation with
 * tornado_future_error / tornado_coroutine_raise, return values, drop of the
 * userdata exactly once, tornado_multi, tornado_with_timeout, tornado_sleep. */
#include "tap.h"

static tornado_loop *loop;
static int iteration; /* incremented before each run_once in this file */

static void run_once_counted(void) {
    iteration++;
    CHECK_OK(tornado_loop_run_once(loop, 0), "run_once #%d", iteration);
}

static void int_drop(void *p) {
    free(p);
}

static int *new_int(int v) {
    int *p = malloc(sizeof *p);
    *p = v;
    return p;
}

/* ---------------- basic ---------------- */
typedef struct {
    int steps;
    int saw_null_first;
    int saw_userdata;
    int drops;
} basic_state;

static tornado_future *basic_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    basic_state *st = ud;
    st->steps++;
    st->saw_null_first = resumed == NULL;
    st->saw_userdata = 1;
    CHECK_OK(tornado_coroutine_return(co, new_int(41), int_drop), "coroutine_return(41)");
    CHECK_FAIL(tornado_coroutine_return(co, (void *)&st->steps, NULL), TORNADO_ERR_ALREADY_DONE, "second return -> ALREADY_DONE");
    CHECK_FAIL(tornado_coroutine_raise(co, TORNADO_ERR_USER, "late"), TORNADO_ERR_ALREADY_DONE, "raise after return -> ALREADY_DONE");
    return NULL;
}

static void basic_drop(void *ud) {
    ((basic_state *)ud)->drops++;
}

static tornado_future *bare_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)co;
    (void)resumed;
    (*(int *)ud)++;
    return NULL; /* finishes without return or raise */
}

/* ---------------- suspension ---------------- */
typedef struct {
    int steps;
    tornado_future *waiting; /* our own reference */
    tornado_future *resumed_with;
    int result_seen;
    int drops;
    int step1_iteration;
} suspend_state;

static tornado_future *suspend_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    suspend_state *st = ud;
    st->steps++;
    if (resumed == NULL) {
        st->waiting = tornado_future_new(loop);
        return tornado_future_ref(st->waiting); /* the runner takes this reference */
    }
    st->step1_iteration = iteration;
    st->resumed_with = resumed;
    int *v = tornado_future_result(resumed);
    st->result_seen = v ? *v : -1;
    CHECK_OK(tornado_coroutine_return(co, NULL, NULL), "return");
    return NULL;
}

static void suspend_drop(void *ud) {
    ((suspend_state *)ud)->drops++;
}

/* ---------------- done futures resume at once ---------------- */
typedef struct {
    int steps;
    int at[8];
    tornado_code codes[8];
    int drops;
} chain_state;

static tornado_future *chain_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    chain_state *st = ud;
    int i = st->steps++;
    if (i < 8) st->at[i] = iteration;
    if (resumed && i < 8) st->codes[i] = tornado_future_error(resumed, NULL);
    tornado_future *f;
    switch (i) {
    case 0:
        f = tornado_future_new(loop);
        tornado_future_set_result(f, new_int(1), int_drop);
        return f;
    case 1:
        f = tornado_future_new(loop);
        tornado_future_set_error(f, TORNADO_ERR_USER + 1, "already failed");
        return f;
    case 2:
        f = tornado_future_new(loop);
        tornado_future_cancel(f);
        return f;
    default:
        CHECK_OK(tornado_coroutine_return(co, new_int(3), int_drop), "return");
        return NULL;
    }
}

static void chain_drop(void *ud) {
    ((chain_state *)ud)->drops++;
}

/* ---------------- moment ---------------- */
typedef struct {
    int steps;
    int at[4];
    int marker;
    int marker_before_step1;
} moment_state;

static tornado_future *moment_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)co;
    moment_state *st = ud;
    int i = st->steps++;
    st->at[i] = iteration;
    if (i == 0) {
        CHECK(resumed == NULL, "first step: resumed NULL");
        CHECK_OK(tornado_loop_add_callback(loop, tap_count_cb, &st->marker), "add a callback before yielding moment");
        return tornado_moment(loop);
    }
    st->marker_before_step1 = st->marker;
    CHECK_OK(tornado_future_error(resumed, NULL), "moment succeeded");
    CHECK(tornado_future_result(resumed) == NULL, "moment's value is NULL");
    return NULL;
}

/* two coroutines interleaving with moment */
static char interleave_log[32];
static int interleave_len;
static tornado_future *interleave_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)co;
    (void)resumed;
    int *count = ud;
    if (interleave_len < 31) interleave_log[interleave_len++] = (char)('A' + (count[1]));
    if (++count[0] >= 3) return NULL;
    return tornado_moment(loop);
}

/* ---------------- errors ---------------- */
static void fail_later_cb(void *ud) {
    tornado_future *f = ud;
    CHECK_OK(tornado_future_set_error(f, TORNADO_ERR_USER + 10, "disk on fire"), "set_error from a callback");
    tornado_future_unref(f);
}

typedef struct {
    int steps;
    tornado_code seen_code;
    char seen_msg[64];
    int drops;
} failer_state;

static tornado_future *failer_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    failer_state *st = ud;
    st->steps++;
    if (resumed == NULL) {
        tornado_future *f = tornado_future_new(loop);
        CHECK_OK(tornado_loop_add_callback(loop, fail_later_cb, tornado_future_ref(f)), "schedule failure");
        return f;
    }
    const char *msg = NULL;
    st->seen_code = tornado_future_error(resumed, &msg);
    snprintf(st->seen_msg, sizeof st->seen_msg, "%s", msg ? msg : "(null)");
    CHECK(tornado_future_result(resumed) == NULL, "a failed future has no result");
    CHECK_FAIL(tornado_coroutine_raise(co, TORNADO_OK, "zero"), TORNADO_ERR_INVALID, "raise(TORNADO_OK) -> INVALID");
    CHECK_FAIL(tornado_coroutine_raise(co, TORNADO_ERR_USER, "\xff\xfe"), TORNADO_ERR_INVALID, "raise(invalid UTF-8) -> INVALID");
    CHECK_OK(tornado_coroutine_raise(co, TORNADO_ERR_USER + 11, "could not save: disk on fire"), "raise(USER+11)");
    CHECK_FAIL(tornado_coroutine_raise(co, TORNADO_ERR_USER + 12, "again"), TORNADO_ERR_ALREADY_DONE, "raise twice -> ALREADY_DONE");
    CHECK_FAIL(tornado_coroutine_return(co, NULL, NULL), TORNADO_ERR_ALREADY_DONE, "return after raise -> ALREADY_DONE");
    return NULL;
}

static void failer_drop(void *ud) {
    ((failer_state *)ud)->drops++;
}

typedef struct {
    int steps;
    failer_state child;
    tornado_code child_code;
    char child_msg[64];
    int drops;
} parent_state;

static tornado_future *parent_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    parent_state *st = ud;
    st->steps++;
    if (resumed == NULL) {
        tornado_future *child = tornado_coroutine_spawn(loop, failer_step, &st->child, failer_drop);
        CHECK(child != NULL, "spawn child");
        return child;
    }
    const char *msg = NULL;
    st->child_code = tornado_future_error(resumed, &msg);
    snprintf(st->child_msg, sizeof st->child_msg, "%s", msg ? msg : "(null)");
    /* propagate, like an uncaught exception */
    CHECK_OK(tornado_coroutine_raise(co, st->child_code, msg), "re-raise the child's error");
    return NULL;
}

static void parent_drop(void *ud) {
    ((parent_state *)ud)->drops++;
}

static tornado_future *raise_null_msg_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)resumed;
    (void)ud;
    CHECK_OK(tornado_coroutine_raise(co, TORNADO_ERR_USER + 20, NULL), "raise with a NULL message");
    return NULL;
}

/* ---------------- nested values ---------------- */
static tornado_future *leaf_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    if (resumed == NULL) return tornado_sleep(loop, 0.001);
    CHECK_OK(tornado_coroutine_return(co, new_int((int)(intptr_t)ud), int_drop), "leaf return");
    return NULL;
}

typedef struct {
    int step;
    int sum;
} sum_state;

static tornado_future *sum_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    sum_state *st = ud;
    if (resumed) {
        int *v = tornado_future_result(resumed);
        st->sum += v ? *v : -1000;
    }
    if (st->step < 4) {
        st->step++;
        return tornado_coroutine_spawn(loop, leaf_step, (void *)(intptr_t)(st->step * 10), NULL);
    }
    CHECK_OK(tornado_coroutine_return(co, new_int(st->sum), int_drop), "sum return");
    return NULL;
}

/* ---------------- multi in a coroutine ---------------- */
typedef struct {
    tornado_future *f[3];
    int step;
    tornado_code code;
    int drops;
} multi_co_state;

static void set_int_cb(void *ud) {
    tornado_future *f = ud;
    static int n;
    tornado_future_set_result(f, new_int(++n), int_drop);
}

static tornado_future *multi_co_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    multi_co_state *st = ud;
    if (resumed == NULL) {
        for (int i = 0; i < 3; i++) {
            st->f[i] = tornado_future_new(loop);
            tornado_loop_call_later(loop, 0.01 * (3 - i), set_int_cb, st->f[i]);
        }
        return tornado_multi(loop, st->f, 3);
    }
    st->code = tornado_future_error(resumed, NULL);
    int all = 1;
    for (int i = 0; i < 3; i++) all &= tornado_future_done(st->f[i]);
    CHECK(all, "multi resumed the coroutine after all inputs were done");
    CHECK_OK(tornado_coroutine_return(co, NULL, NULL), "return");
    return NULL;
}

static void multi_co_drop(void *ud) {
    multi_co_state *st = ud;
    st->drops++;
    for (int i = 0; i < 3; i++) tornado_future_unref(st->f[i]);
}

/* ---------------- fire and forget ---------------- */
typedef struct {
    int steps;
    int drops;
} ff_state;
static tornado_future *ff_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)co;
    ff_state *st = ud;
    st->steps++;
    if (resumed == NULL) return tornado_sleep(loop, 0.01);
    return NULL;
}
static void ff_drop(void *ud) {
    ((ff_state *)ud)->drops++;
}

/* helpers */
static void resolve_cb(void *ud) {
    tornado_future *f = ud;
    tornado_future_set_result(f, new_int(7), int_drop);
}
static void error_cb(void *ud) {
    tornado_future *f = ud;
    tornado_future_set_error(f, TORNADO_ERR_USER + 3, "second input failed");
}
static void error2_cb(void *ud) {
    tornado_future *f = ud;
    tornado_future_set_error(f, TORNADO_ERR_USER + 4, "third input failed too");
}
static void resolve_unref_cb(void *ud) {
    tornado_future *f = ud;
    tornado_future_set_result(f, new_int(8), int_drop);
    tornado_future_unref(f);
}

int main(void) {
    tap_init("test_coroutine");
    loop = tornado_loop_new();
    CHECK(loop != NULL, "loop_new");
    if (!loop) return tap_done();

    tap_section("first step: resumed NULL; return value; drop_userdata once");
    {
        basic_state st = {0, 0, 0, 0};
        tornado_future *f = tornado_coroutine_spawn(loop, basic_step, &st, basic_drop);
        CHECK(f != NULL, "spawn");
        CHECK(st.steps == 0, "the step does not run inside spawn");
        CHECK(!tornado_future_done(f), "pending before the loop runs");
        CHECK_OK(tornado_loop_run_sync(loop, f, 1.0), "run_sync");
        CHECK(st.steps == 1 && st.saw_null_first && st.saw_userdata, "one step, resumed == NULL, userdata passed");
        int *v = tornado_future_result(f);
        CHECK(v && *v == 41, "the returned value is the result");
        CHECK_OK(tornado_future_error(f, NULL), "success");
        CHECK(st.drops == 1, "drop_userdata called once (%d)", st.drops);
        tornado_future_unref(f); /* frees 41 with int_drop (valgrind checks) */
        for (int i = 0; i < 2; i++) tornado_loop_run_once(loop, 0);
        CHECK(st.drops == 1, "still once");

        int steps = 0;
        f = tornado_coroutine_spawn(loop, bare_step, &steps, NULL);
        CHECK(f != NULL, "spawn (drop_userdata NULL)");
        CHECK_OK(tornado_loop_run_sync(loop, f, 1.0), "run_sync");
        CHECK(steps == 1, "ran once");
        CHECK(tornado_future_result(f) == NULL, "finishing without return: NULL result");
        CHECK_OK(tornado_future_error(f, NULL), "and success");
        tornado_future_unref(f);
    }

    tap_section("suspends until the yielded future is done");
    {
        suspend_state st;
        memset(&st, 0, sizeof st);
        iteration = 0;
        tornado_future *f = tornado_coroutine_spawn(loop, suspend_step, &st, suspend_drop);
        run_once_counted();
        CHECK(st.steps == 1 && st.waiting != NULL, "first step ran and yielded a pending future");
        for (int i = 0; i < 3; i++) run_once_counted();
        CHECK(st.steps == 1, "not resumed while the future is pending");
        CHECK(!tornado_future_done(f), "coroutine pending");
        CHECK_OK(tornado_future_set_result(st.waiting, new_int(5), int_drop), "complete the yielded future");
        CHECK(st.steps == 1, "not resumed inside set_result");
        for (int i = 0; i < 3 && st.steps == 1; i++) run_once_counted();
        CHECK(st.steps == 2, "resumed once it was done");
        CHECK(st.resumed_with == st.waiting, "resumed with the future it yielded");
        CHECK(st.result_seen == 5, "and saw its result");
        CHECK(tornado_future_done(f), "coroutine done");
        CHECK(st.drops == 1, "drop_userdata once");
        tornado_future_unref(st.waiting);
        tornado_future_unref(f);
    }

    tap_section("a done future resumes at once, without a loop iteration");
    {
        chain_state st;
        memset(&st, 0, sizeof st);
        iteration = 0;
        tornado_future *f = tornado_coroutine_spawn(loop, chain_step, &st, chain_drop);
        CHECK(f != NULL, "spawn");
        run_once_counted();
        CHECK(st.steps == 4, "all 4 steps ran in one run_once (%d)", st.steps);
        CHECK(st.at[0] == 1 && st.at[1] == 1 && st.at[2] == 1 && st.at[3] == 1, "all in iteration 1");
        CHECK_CODE(st.codes[1], TORNADO_OK, "resumed with a done success");
        CHECK_CODE(st.codes[2], TORNADO_ERR_USER + 1, "resumed with a done failure: its error visible");
        CHECK_CODE(st.codes[3], TORNADO_ERR_CANCELLED, "resumed with a cancelled future: CANCELLED");
        CHECK(tornado_future_done(f), "coroutine done in the same iteration");
        int *v = tornado_future_result(f);
        CHECK(v && *v == 3, "result 3");
        CHECK(st.drops == 1, "drop_userdata once");
        tornado_future_unref(f);
    }

    tap_section("tornado_moment needs one iteration and lets callbacks run");
    {
        moment_state st;
        memset(&st, 0, sizeof st);
        iteration = 0;
        tornado_future *f = tornado_coroutine_spawn(loop, moment_step, &st, NULL);
        run_once_counted();
        CHECK(st.steps == 1, "yielded moment: not resumed in the same iteration");
        for (int i = 0; i < 3 && st.steps == 1; i++) run_once_counted();
        CHECK(st.steps == 2 && st.at[1] > st.at[0], "resumed on a later iteration (%d -> %d)", st.at[0], st.at[1]);
        CHECK(st.marker_before_step1 == 1, "the callback added before the moment ran first");
        CHECK(tornado_future_done(f), "done");
        tornado_future_unref(f);

        tornado_future *m = tornado_moment(loop);
        CHECK(m != NULL && !tornado_future_done(m), "a moment is pending when made");
        run_once_counted();
        run_once_counted();
        CHECK(tornado_future_done(m), "and done after the loop ran");
        tornado_future_unref(m);

        int a[2] = {0, 0}, b[2] = {0, 1};
        interleave_len = 0;
        tornado_future *fa = tornado_coroutine_spawn(loop, interleave_step, a, NULL);
        tornado_future *fb = tornado_coroutine_spawn(loop, interleave_step, b, NULL);
        tornado_future *both[2] = {fa, fb};
        tornado_future *all = tornado_multi(loop, both, 2);
        CHECK_OK(tornado_loop_run_sync(loop, all, 1.0), "run both");
        interleave_log[interleave_len] = '\0';
        CHECK(strcmp(interleave_log, "ABABAB") == 0, "yielding moment interleaves coroutines (%s)", interleave_log);
        tornado_future_unref(all);
        tornado_future_unref(fa);
        tornado_future_unref(fb);
    }

    tap_section("errors propagate");
    {
        parent_state st;
        memset(&st, 0, sizeof st);
        tornado_future *f = tornado_coroutine_spawn(loop, parent_step, &st, parent_drop);
        CHECK(f != NULL, "spawn parent");
        CHECK_CODE(tornado_loop_run_sync(loop, f, 1.0), TORNADO_ERR_USER + 11, "run_sync returns the propagated code");
        CHECK_CODE(st.child.seen_code, TORNADO_ERR_USER + 10, "child saw the yielded future's code");
        CHECK(strcmp(st.child.seen_msg, "disk on fire") == 0, "and its message (%s)", st.child.seen_msg);
        CHECK_CODE(st.child_code, TORNADO_ERR_USER + 11, "parent saw the child's raise code");
        CHECK(strcmp(st.child_msg, "could not save: disk on fire") == 0, "and its message (%s)", st.child_msg);
        const char *msg = NULL;
        CHECK_CODE(tornado_future_error(f, &msg), TORNADO_ERR_USER + 11, "parent's future failed with it");
        CHECK(msg && strcmp(msg, "could not save: disk on fire") == 0, "with the message");
        CHECK(tornado_future_result(f) == NULL, "no result");
        CHECK(st.drops == 1 && st.child.drops == 1, "both drop_userdata once");
        tornado_future_unref(f);

        f = tornado_coroutine_spawn(loop, raise_null_msg_step, NULL, NULL);
        CHECK_CODE(tornado_loop_run_sync(loop, f, 1.0), TORNADO_ERR_USER + 20, "raise with NULL message");
        msg = NULL;
        tornado_future_error(f, &msg);
        CHECK(msg != NULL, "a failed future always has a message string");
        tornado_future_unref(f);
    }

    tap_section("nested coroutines return values");
    {
        sum_state st = {0, 0};
        tornado_future *f = tornado_coroutine_spawn(loop, sum_step, &st, NULL);
        CHECK_OK(tornado_loop_run_sync(loop, f, 2.0), "run_sync");
        int *v = tornado_future_result(f);
        CHECK(v && *v == 100, "10+20+30+40 = %d", v ? *v : -1);
        tornado_future_unref(f);
    }

    tap_section("a coroutine whose future was released still runs to the end");
    {
        ff_state st = {0, 0};
        tornado_future *f = tornado_coroutine_spawn(loop, ff_step, &st, ff_drop);
        tornado_future_unref(f);
        tornado_future *s = tornado_sleep(loop, 0.05);
        CHECK_OK(tornado_loop_run_sync(loop, s, 1.0), "run 50 ms");
        tornado_future_unref(s);
        CHECK(st.steps == 2, "both steps ran");
        CHECK(st.drops == 1, "drop_userdata once");
    }

    tap_section("tornado_multi");
    {
        tornado_future *in[3];
        for (int i = 0; i < 3; i++) in[i] = tornado_future_new(loop);
        tornado_future *m = tornado_multi(loop, in, 3);
        CHECK(m != NULL, "multi of 3");
        tornado_loop_call_later(loop, 0.3, resolve_cb, in[0]);
        tornado_loop_call_later(loop, 0.01, resolve_cb, in[1]);
        tornado_loop_call_later(loop, 0.02, resolve_cb, in[2]);
        CHECK(!tornado_future_done(m), "pending");
        tornado_future *s = tornado_sleep(loop, 0.05);
        tornado_loop_run_sync(loop, s, 1.0);
        tornado_future_unref(s);
        CHECK(tornado_future_done(in[1]) && !tornado_future_done(m), "one input done: multi still pending");
        CHECK_OK(tornado_loop_run_sync(loop, m, 1.0), "multi completes");
        CHECK(tornado_future_result(m) == NULL, "multi's value is NULL");
        int all = 1;
        for (int i = 0; i < 3; i++) all &= tornado_future_done(in[i]) && *(int *)tornado_future_result(in[i]) == 7;
        CHECK(all, "each input's result is readable from the input");
        tornado_future_unref(m);
        for (int i = 0; i < 3; i++) tornado_future_unref(in[i]);

        /* empty */
        tornado_future *none[1] = {NULL};
        m = tornado_multi(loop, none, 0);
        CHECK(m != NULL, "multi of 0");
        CHECK_OK(tornado_loop_run_sync(loop, m, 1.0), "multi of 0 succeeds");
        tornado_future_unref(m);

        /* fails on the first error, without waiting for the others */
        for (int i = 0; i < 3; i++) in[i] = tornado_future_new(loop);
        m = tornado_multi(loop, in, 3);
        tornado_loop_call_later(loop, 0.01, error_cb, in[1]);
        tornado_loop_call_later(loop, 0.3, resolve_cb, in[0]);
        CHECK_CODE(tornado_loop_run_sync(loop, m, 1.0), TORNADO_ERR_USER + 3, "multi fails with the first error");
        const char *msg = NULL;
        CHECK_CODE(tornado_future_error(m, &msg), TORNADO_ERR_USER + 3, "multi's error code");
        CHECK(msg && strcmp(msg, "second input failed") == 0, "and message");
        CHECK(!tornado_future_done(in[0]) && !tornado_future_done(in[2]), "without waiting for the other inputs");
        /* a later error and a late success do not change it or crash */
        tornado_loop_add_callback(loop, error2_cb, in[2]);
        s = tornado_sleep(loop, 0.35);
        tornado_loop_run_sync(loop, s, 1.0);
        tornado_future_unref(s);
        CHECK(tornado_future_done(in[0]) && tornado_future_done(in[2]), "the others completed later");
        CHECK_CODE(tornado_future_error(m, NULL), TORNADO_ERR_USER + 3, "multi keeps the first error");
        tornado_future_unref(m);
        for (int i = 0; i < 3; i++) tornado_future_unref(in[i]);

        /* multi keeps its own references to the inputs */
        tornado_future *d = tornado_future_new(loop);
        tornado_future *e = tornado_future_new(loop);
        tornado_future *de[2] = {d, e};
        m = tornado_multi(loop, de, 2);
        tornado_loop_call_later(loop, 0.01, resolve_unref_cb, d); /* the callback owns d's last caller reference */
        tornado_loop_call_later(loop, 0.02, resolve_unref_cb, e);
        CHECK_OK(tornado_loop_run_sync(loop, m, 1.0), "multi over inputs the caller released");
        tornado_future_unref(m);

        /* multi of already-done inputs, in a coroutine */
        multi_co_state mst;
        memset(&mst, 0, sizeof mst);
        tornado_future *f = tornado_coroutine_spawn(loop, multi_co_step, &mst, multi_co_drop);
        CHECK_OK(tornado_loop_run_sync(loop, f, 1.0), "coroutine yielding multi");
        CHECK_CODE(mst.code, TORNADO_OK, "multi succeeded inside the coroutine");
        CHECK(mst.drops == 1, "drop_userdata once");
        tornado_future_unref(f);
    }

    tap_section("tornado_with_timeout");
    {
        /* completes in time: same value, borrowed, kept alive by the outer future */
        tornado_future *inner = tornado_future_new(loop);
        tornado_future *outer = tornado_with_timeout(loop, inner, 1.0);
        CHECK(outer != NULL, "with_timeout(1 s)");
        tornado_loop_call_later(loop, 0.01, resolve_unref_cb, tornado_future_ref(inner));
        tornado_future_unref(inner); /* only the callback and the outer future hold it now */
        CHECK_OK(tornado_loop_run_sync(loop, outer, 2.0), "completes before the timeout");
        int *v = tornado_future_result(outer);
        CHECK(v && *v == 8, "outer value is the inner value (kept alive by outer)");
        tornado_future_unref(outer);

        /* times out; the inner future is not cancelled and can still complete */
        inner = tornado_future_new(loop);
        double t0 = tornado_loop_time(loop);
        outer = tornado_with_timeout(loop, inner, 0.05);
        CHECK(outer != NULL, "with_timeout(50 ms)");
        CHECK_CODE(tornado_loop_run_sync(loop, outer, 2.0), TORNADO_ERR_TIMEOUT, "run_sync returns TIMEOUT");
        double dt = tornado_loop_time(loop) - t0;
        const char *msg = NULL;
        CHECK_CODE(tornado_future_error(outer, &msg), TORNADO_ERR_TIMEOUT, "outer failed with TIMEOUT");
        CHECK(msg && msg[0], "with a message");
        CHECK(dt >= 0.05 - 1e-6 && dt < 1.0, "after >= 50 ms (%.1f ms)", dt * 1e3);
        CHECK(!tornado_future_done(inner), "the inner future was not cancelled");
        CHECK_OK(tornado_future_set_result(inner, new_int(9), int_drop), "and can still complete");
        for (int i = 0; i < 2; i++) tornado_loop_run_once(loop, 0);
        CHECK_CODE(tornado_future_error(outer, NULL), TORNADO_ERR_TIMEOUT, "outer stays TIMEOUT");
        tornado_future_unref(outer);
        tornado_future_unref(inner);

        /* inner fails in time: same error */
        inner = tornado_future_new(loop);
        outer = tornado_with_timeout(loop, inner, 1.0);
        tornado_loop_call_later(loop, 0.01, error_cb, inner);
        CHECK_CODE(tornado_loop_run_sync(loop, outer, 2.0), TORNADO_ERR_USER + 3, "inner's error passes through");
        msg = NULL;
        tornado_future_error(outer, &msg);
        CHECK(msg && strcmp(msg, "second input failed") == 0, "with its message");
        tornado_future_unref(outer);
        tornado_future_unref(inner);

        /* inner already done */
        inner = tornado_future_new(loop);
        tornado_future_set_result(inner, new_int(10), int_drop);
        outer = tornado_with_timeout(loop, inner, 0.5);
        tornado_future_unref(inner);
        CHECK_OK(tornado_loop_run_sync(loop, outer, 1.0), "already-done inner");
        v = tornado_future_result(outer);
        CHECK(v && *v == 10, "value passed through");
        tornado_future_unref(outer);

        /* the timer is cleaned up: a long timeout does not keep the loop busy */
        inner = tornado_future_new(loop);
        outer = tornado_with_timeout(loop, inner, 100.0);
        tornado_future_set_result(inner, NULL, NULL);
        CHECK_OK(tornado_loop_run_sync(loop, outer, 1.0), "completes");
        tornado_future_unref(outer);
        tornado_future_unref(inner);
        for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0);
        double to = tornado_loop_backend_timeout(loop);
        CHECK(to == -1.0, "no timer left behind by a completed with_timeout (backend_timeout %f)", to);
    }

    tap_section("tornado_sleep");
    {
        double t0 = tornado_loop_time(loop);
        double m0 = tap_now();
        tornado_future *s = tornado_sleep(loop, 0.05);
        CHECK(s != NULL && !tornado_future_done(s), "sleep(50 ms) pending");
        CHECK_OK(tornado_loop_run_sync(loop, s, 1.0), "run_sync");
        double dt = tornado_loop_time(loop) - t0;
        double mdt = tap_now() - m0;
        tap_diag("sleep(0.05) took %.2f ms", mdt * 1e3);
        CHECK(dt >= 0.05 - 1e-6, "not earlier than asked (loop_time %.2f ms)", dt * 1e3);
        CHECK(mdt >= 0.05 - 1e-4 && mdt < 0.5, "CLOCK_MONOTONIC agrees (%.2f ms)", mdt * 1e3);
        CHECK(tornado_future_result(s) == NULL, "value NULL");
        CHECK_OK(tornado_future_error(s, NULL), "success");
        tornado_future_unref(s);

        s = tornado_sleep(loop, 0);
        CHECK(s != NULL, "sleep(0)");
        for (int i = 0; i < 3 && !tornado_future_done(s); i++) tornado_loop_run_once(loop, 0);
        CHECK(tornado_future_done(s), "sleep(0) done after the loop ran");
        tornado_future_unref(s);

        /* a released sleep cleans up */
        s = tornado_sleep(loop, 0.01);
        tornado_future_unref(s);
        tornado_future *s2 = tornado_sleep(loop, 0.03);
        CHECK_OK(tornado_loop_run_sync(loop, s2, 1.0), "run past a released sleep");
        tornado_future_unref(s2);
    }

    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
