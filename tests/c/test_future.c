/* test_future.c: reference counting, set_result/set_error/cancel, the
 * value's drop function, tornado_future_error, done callbacks (never inside
 * add_done_callback, from the loop, in registration order, exactly once). */
#include "tap.h"

static tornado_loop *loop;

typedef struct {
    int drops;
} value_t;

static void value_drop(void *v) {
    ((value_t *)v)->drops++;
}

/* done callbacks record their order and what they saw */
static int cb_order[16];
static int ncb;
static tornado_future *cb_future_seen[16];
static tornado_code cb_code_seen[16];
static void *cb_result_seen[16];

static void done_cb(tornado_future *f, void *ud) {
    if (ncb < 16) {
        cb_order[ncb] = (int)(intptr_t)ud;
        cb_future_seen[ncb] = f;
        cb_code_seen[ncb] = tornado_future_error(f, NULL);
        cb_result_seen[ncb] = tornado_future_result(f);
        ncb++;
    }
}

/* a done callback that adds another done callback to the same (done) future */
static void done_adds_cb(tornado_future *f, void *ud) {
    done_cb(f, ud);
    CHECK_OK(tornado_future_add_done_callback(f, done_cb, (void *)(intptr_t)77), "add_done_callback inside a done callback");
    CHECK(ncb == 1 || cb_order[ncb - 1] != 77, "not run inside that call");
}

static void set_later_cb(void *ud) {
    tornado_future *f = ud;
    CHECK_OK(tornado_future_set_result(f, (void *)(intptr_t)1234, NULL), "set_result from a loop callback");
    tornado_future_unref(f);
}

static char sentinel;

int main(void) {
    tap_init("test_future");
    loop = tornado_loop_new();
    CHECK(loop != NULL, "loop_new");
    if (!loop) return tap_done();

    tap_section("a new future is pending");
    {
        tornado_future *f = tornado_future_new(loop);
        CHECK(f != NULL, "future_new");
        CHECK(!tornado_future_done(f), "not done");
        CHECK(tornado_future_result(f) == NULL, "no result");
        const char *msg = &sentinel;
        CHECK_CODE(tornado_future_error(f, &msg), TORNADO_ERR_NOT_DONE, "future_error while pending -> NOT_DONE");
        CHECK_CODE(tornado_future_error(f, NULL), TORNADO_ERR_NOT_DONE, "future_error(f, NULL) while pending");
        tornado_future_unref(f);
    }

    tap_section("references");
    {
        value_t v = {0};
        tornado_future *f = tornado_future_new(loop);
        CHECK(tornado_future_ref(f) == f, "ref returns its argument");
        CHECK(tornado_future_ref(f) == f, "ref again");
        CHECK_OK(tornado_future_set_result(f, &v, value_drop), "set_result with a drop fn");
        CHECK(tornado_future_done(f), "done");
        CHECK(tornado_future_result(f) == &v, "result is the value");
        const char *msg = &sentinel;
        CHECK_OK(tornado_future_error(f, &msg), "future_error on success -> OK");
        CHECK(msg == NULL, "message set to NULL on success");
        tornado_future_unref(f);
        tornado_future_unref(f);
        CHECK(v.drops == 0, "value not dropped while a reference remains");
        CHECK(tornado_future_result(f) == &v, "still readable through the last reference");
        tornado_future_unref(f);
        CHECK(v.drops == 1, "value dropped exactly once when the last reference went (%d)", v.drops);
    }
    {
        value_t v = {0};
        tornado_future *f = tornado_future_new(loop);
        CHECK_OK(tornado_future_set_result(f, &v, NULL), "set_result with drop NULL");
        tornado_future_unref(f);
        CHECK(v.drops == 0, "no drop fn: nothing called");
    }

    tap_section("completed twice -> ALREADY_DONE");
    {
        value_t v = {0}, v2 = {0};
        tornado_future *f = tornado_future_new(loop);
        CHECK_OK(tornado_future_set_result(f, &v, value_drop), "set_result");
        CHECK_FAIL(tornado_future_set_result(f, &v2, value_drop), TORNADO_ERR_ALREADY_DONE, "second set_result");
        CHECK_FAIL(tornado_future_set_error(f, TORNADO_ERR_USER, "late"), TORNADO_ERR_ALREADY_DONE, "set_error after set_result");
        CHECK_FAIL(tornado_future_cancel(f), TORNADO_ERR_ALREADY_DONE, "cancel of a done future -> ALREADY_DONE");
        CHECK(tornado_future_result(f) == &v, "the first value stays");
        CHECK_OK(tornado_future_error(f, NULL), "still a success");
        tornado_future_unref(f);
        CHECK(v.drops == 1, "first value dropped once");
        CHECK(v2.drops == 0, "the refused value was not taken (not dropped)");

        f = tornado_future_new(loop);
        CHECK_OK(tornado_future_set_error(f, TORNADO_ERR_USER + 1, "first"), "set_error");
        CHECK_FAIL(tornado_future_set_error(f, TORNADO_ERR_USER + 2, "second"), TORNADO_ERR_ALREADY_DONE, "second set_error");
        CHECK_FAIL(tornado_future_set_result(f, &v2, value_drop), TORNADO_ERR_ALREADY_DONE, "set_result after set_error");
        const char *msg = NULL;
        CHECK_CODE(tornado_future_error(f, &msg), TORNADO_ERR_USER + 1, "the first error stays");
        CHECK(msg && strcmp(msg, "first") == 0, "with its message");
        tornado_future_unref(f);
        CHECK(v2.drops == 0, "refused value never dropped");
    }

    tap_section("set_error");
    {
        tornado_future *f = tornado_future_new(loop);
        char buf[32];
        strcpy(buf, "disk on fire");
        CHECK_OK(tornado_future_set_error(f, TORNADO_ERR_USER + 7, buf), "set_error(USER+7)");
        strcpy(buf, "XXXXXXXXXXXX"); /* the message must have been copied */
        const char *msg = NULL;
        CHECK_CODE(tornado_future_error(f, &msg), TORNADO_ERR_USER + 7, "future_error returns the code");
        CHECK(msg && strcmp(msg, "disk on fire") == 0, "and a copy of the message (%s)", msg ? msg : "(null)");
        CHECK(tornado_future_done(f), "done");
        CHECK(tornado_future_result(f) == NULL, "a failed future has no result");
        tornado_future_unref(f);

        f = tornado_future_new(loop);
        CHECK_OK(tornado_future_set_error(f, TORNADO_ERR_IO, "library code"), "set_error with a library code");
        CHECK_CODE(tornado_future_error(f, NULL), TORNADO_ERR_IO, "code kept");
        tornado_future_unref(f);

        f = tornado_future_new(loop);
        CHECK_OK(tornado_future_set_error(f, -5, "negative code"), "set_error with a negative code (non-zero)");
        CHECK_CODE(tornado_future_error(f, NULL), -5, "code kept");
        tornado_future_unref(f);

        f = tornado_future_new(loop);
        tornado_code rc = tornado_future_set_error(f, TORNADO_ERR_USER, NULL);
        if (rc == TORNADO_OK) {
            msg = &sentinel;
            CHECK_CODE(tornado_future_error(f, &msg), TORNADO_ERR_USER, "set_error(NULL message) accepted");
            CHECK(msg != &sentinel, "message pointer written");
        } else {
            CHECK_CODE(rc, TORNADO_ERR_INVALID, "set_error(NULL message) refused as INVALID");
            CHECK(!tornado_future_done(f), "and the future stays pending");
        }
        tornado_future_unref(f);

        f = tornado_future_new(loop);
        CHECK_FAIL(tornado_future_set_error(f, TORNADO_OK, "ok is not an error"), TORNADO_ERR_INVALID, "set_error(TORNADO_OK) -> INVALID");
        CHECK(!tornado_future_done(f), "still pending");
        CHECK_FAIL(tornado_future_set_error(f, TORNADO_ERR_USER, "bad \xff\xfe utf-8"), TORNADO_ERR_INVALID,
                   "invalid UTF-8 message -> INVALID");
        CHECK_FAIL(tornado_future_set_error(f, TORNADO_ERR_USER, "\xc3"), TORNADO_ERR_INVALID, "truncated UTF-8 -> INVALID");
        CHECK(!tornado_future_done(f), "still pending");
        CHECK_OK(tornado_future_set_error(f, TORNADO_ERR_USER, "caf\xc3\xa9 \xe2\x9c\x93"), "valid UTF-8 accepted");
        msg = NULL;
        tornado_future_error(f, &msg);
        CHECK(msg && strcmp(msg, "caf\xc3\xa9 \xe2\x9c\x93") == 0, "UTF-8 message round-trips");
        tornado_future_unref(f);
    }

    tap_section("cancel");
    {
        tornado_future *f = tornado_future_new(loop);
        ncb = 0;
        CHECK_OK(tornado_future_add_done_callback(f, done_cb, (void *)(intptr_t)1), "add_done_callback");
        CHECK_OK(tornado_future_cancel(f), "cancel a pending future");
        CHECK(tornado_future_done(f), "a cancelled future is done");
        const char *msg = NULL;
        CHECK_CODE(tornado_future_error(f, &msg), TORNADO_ERR_CANCELLED, "error is CANCELLED");
        CHECK(msg != NULL && msg[0] != '\0', "with a message");
        CHECK(tornado_future_result(f) == NULL, "no result");
        CHECK_FAIL(tornado_future_set_result(f, NULL, NULL), TORNADO_ERR_ALREADY_DONE, "set_result after cancel");
        CHECK(ncb == 0, "done callback not run inside cancel");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ncb == 1 && cb_code_seen[0] == TORNADO_ERR_CANCELLED, "done callback ran and saw CANCELLED");
        CHECK_FAIL(tornado_future_cancel(f), TORNADO_ERR_ALREADY_DONE, "cancel twice -> ALREADY_DONE");
        CHECK_CODE(tornado_future_error(f, NULL), TORNADO_ERR_CANCELLED, "still CANCELLED");
        tornado_future_unref(f);
    }

    tap_section("done callbacks: from the loop, in order, exactly once");
    {
        tornado_future *f = tornado_future_new(loop);
        ncb = 0;
        for (int i = 0; i < 5; i++)
            CHECK_OK(tornado_future_add_done_callback(f, done_cb, (void *)(intptr_t)i), "add_done_callback %d", i);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once while pending");
        CHECK(ncb == 0, "not called while pending");
        CHECK_OK(tornado_future_set_result(f, (void *)(intptr_t)99, NULL), "set_result");
        CHECK(ncb == 0, "not called inside set_result");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        int ok = ncb == 5;
        for (int i = 0; ok && i < 5; i++)
            ok = cb_order[i] == i && cb_future_seen[i] == f && cb_code_seen[i] == TORNADO_OK &&
                 cb_result_seen[i] == (void *)(intptr_t)99;
        CHECK(ok, "5 callbacks ran in registration order with the future, result visible (%d)", ncb);
        for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0);
        CHECK(ncb == 5, "each ran once");

        tap_section("add_done_callback on a done future: next iteration, never inline");
        CHECK_OK(tornado_future_add_done_callback(f, done_cb, (void *)(intptr_t)10), "add to a done future");
        CHECK_OK(tornado_future_add_done_callback(f, done_cb, (void *)(intptr_t)11), "add another");
        CHECK(ncb == 5, "not called inside add_done_callback");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ncb == 7 && cb_order[5] == 10 && cb_order[6] == 11, "both ran on the next iteration, in order");

        CHECK_OK(tornado_future_add_done_callback(f, done_adds_cb, (void *)(intptr_t)20), "a callback that adds one");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ncb == 8, "only the first ran in this iteration (%d)", ncb);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ncb == 9 && cb_order[8] == 77, "the added one ran on the next");
        tornado_future_unref(f);
    }

    tap_section("done callbacks keep the future alive");
    {
        value_t v = {0};
        tornado_future *f = tornado_future_new(loop);
        ncb = 0;
        CHECK_OK(tornado_future_add_done_callback(f, done_cb, (void *)(intptr_t)1), "add_done_callback");
        CHECK_OK(tornado_future_set_result(f, &v, value_drop), "set_result");
        tornado_future_unref(f); /* the caller's last reference */
        CHECK(ncb == 0, "not yet called");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(ncb == 1 && cb_result_seen[0] == &v, "callback still saw the future and its value");
        for (int i = 0; i < 2; i++) tornado_loop_run_once(loop, 0);
        CHECK(v.drops == 1, "value dropped exactly once after the callback (%d)", v.drops);
    }

    tap_section("a pending future released with callbacks registered");
    {
        tornado_future *f = tornado_future_new(loop);
        ncb = 0;
        CHECK_OK(tornado_future_add_done_callback(f, done_cb, (void *)(intptr_t)1), "add_done_callback");
        tornado_future_unref(f);
        for (int i = 0; i < 2; i++) tornado_loop_run_once(loop, 0);
        CHECK(ncb == 0, "never called");
    }

    tap_section("completed from a loop callback, observed with run_sync");
    {
        tornado_future *f = tornado_future_new(loop);
        ncb = 0;
        CHECK_OK(tornado_future_add_done_callback(f, done_cb, (void *)(intptr_t)3), "add_done_callback");
        CHECK_OK(tornado_loop_add_callback(loop, set_later_cb, tornado_future_ref(f)), "schedule set_result");
        CHECK_OK(tornado_loop_run_sync(loop, f, 1.0), "run_sync");
        CHECK(tornado_future_result(f) == (void *)(intptr_t)1234, "result");
        for (int i = 0; i < 2 && ncb == 0; i++) tornado_loop_run_once(loop, 0);
        CHECK(ncb == 1, "done callback ran once");
        tornado_future_unref(f);
    }

    tap_section("many futures");
    {
        enum { N = 200 };
        tornado_future *fs[N];
        value_t vs[N];
        memset(vs, 0, sizeof vs);
        for (int i = 0; i < N; i++) {
            fs[i] = tornado_future_new(loop);
            if (i % 3 == 0)
                tornado_future_set_result(fs[i], &vs[i], value_drop);
            else if (i % 3 == 1)
                tornado_future_set_error(fs[i], TORNADO_ERR_USER + i, "e");
        }
        for (int i = 0; i < N; i++) tornado_future_unref(fs[i]);
        int dropped = 0;
        for (int i = 0; i < N; i++) dropped += vs[i].drops;
        CHECK(dropped == (N + 2) / 3, "every set value dropped once (%d)", dropped);
    }

    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
