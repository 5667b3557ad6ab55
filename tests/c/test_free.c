/* test_free.c: tornado_loop_free with pending callbacks, timers, handlers,
 * coroutines and futures: callbacks never called, every drop function of a
 * _full registration called exactly once, the caller's fds not closed;
 * loop_free from inside the running loop -> TORNADO_ERR_RUNNING; drop
 * functions that call back into the library; objects that outlive their
 * loop; no fd leaks over many loops; the _full forms of done and fetch
 * callbacks: drop_userdata called exactly once, after the callback or when
 * it is released uncalled (future freed pending, client or loop freed). */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "tap.h"

static int fd_open(int fd) {
    return fcntl(fd, F_GETFD) != -1;
}

static int count_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

typedef struct {
    int calls;
    int drops;
} reg;

static void reg_cb(void *ud) {
    ((reg *)ud)->calls++;
}
static void reg_drop(void *ud) {
    ((reg *)ud)->drops++;
}
static void reg_fd_cb(int fd, uint32_t ev, void *ud) {
    (void)fd;
    (void)ev;
    ((reg *)ud)->calls++;
}
static void reg_done_cb(tornado_future *f, void *ud) {
    (void)f;
    ((reg *)ud)->calls++;
}

/* ---- loop_free from inside the loop ---- */
static tornado_loop *running_loop;
static tornado_code free_rc[8];
static int nfree_rc;

static void try_free_cb(void *ud) {
    (void)ud;
    free_rc[nfree_rc++] = tornado_loop_free(running_loop);
}
static void try_free_fd_cb(int fd, uint32_t ev, void *ud) {
    (void)ev;
    (void)ud;
    free_rc[nfree_rc++] = tornado_loop_free(running_loop);
    tornado_loop_remove_handler(running_loop, fd);
}
static void try_free_done_cb(tornado_future *f, void *ud) {
    (void)f;
    (void)ud;
    free_rc[nfree_rc++] = tornado_loop_free(running_loop);
}
static tornado_future *try_free_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)co;
    (void)resumed;
    (void)ud;
    free_rc[nfree_rc++] = tornado_loop_free(running_loop);
    return NULL;
}
static void try_free_periodic_cb(void *ud) {
    free_rc[nfree_rc++] = tornado_loop_free(running_loop);
    tornado_periodic_stop((tornado_periodic *)*(tornado_periodic **)ud);
}

/* ---- drop functions that call the library ---- */
static void unref_drop(void *ud) {
    tornado_future_unref((tornado_future *)ud);
}

typedef struct {
    tornado_loop *loop;
    tornado_code rc;
    int inner_drops;
    int inner_calls;
    int called;
} reentrant_drop_state;

static void inner_cb(void *ud) {
    ((reentrant_drop_state *)ud)->inner_calls++;
}
static void inner_drop(void *ud) {
    ((reentrant_drop_state *)ud)->inner_drops++;
}
static void reentrant_drop(void *ud) {
    reentrant_drop_state *st = ud;
    st->called++;
    /* registering on a loop that is being freed */
    st->rc = tornado_loop_add_callback_full(st->loop, inner_cb, st, inner_drop);
}

/* ---- coroutines pending at free ---- */
typedef struct {
    int steps;
    int drops;
    tornado_loop *loop;
} co_state;
static tornado_future *sleepy_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)co;
    co_state *st = ud;
    st->steps++;
    if (resumed == NULL) return tornado_sleep(st->loop, 100.0);
    return NULL;
}
static void co_drop(void *ud) {
    ((co_state *)ud)->drops++;
}
typedef struct {
    co_state st;
    tornado_loop *loop;
    tornado_future *never; /* our reference, released in drop */
} waiter_state;
static tornado_future *waiter_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)co;
    waiter_state *w = ud;
    w->st.steps++;
    if (resumed == NULL) {
        w->never = tornado_future_new(w->loop);
        return tornado_future_ref(w->never);
    }
    return NULL;
}
static void waiter_drop(void *ud) {
    waiter_state *w = ud;
    w->st.drops++;
    tornado_future_unref(w->never);
    w->never = NULL;
}

/* ---- _full done and fetch callbacks (issue 12 #15) ---- */
typedef struct {
    int calls;
    int drops;
    int calls_at_drop; /* calls seen when drop ran: the callback ran first */
    int code;          /* the fetch callback's response code */
} owned;

static void owned_drop(void *ud) {
    owned *o = ud;
    o->calls_at_drop = o->calls;
    o->drops++;
}
static void owned_done_cb(tornado_future *f, void *ud) {
    (void)f;
    owned *o = ud;
    if (o->drops == 0) o->calls++; /* a call after the drop would not count */
}
static void owned_fetch_cb(const tornado_http_response *r, void *ud) {
    owned *o = ud;
    o->code = tornado_http_response_code(r);
    if (o->drops == 0) o->calls++;
}

/* A listener on 127.0.0.1 that accepts (in the kernel) and never answers:
 * a fetch to it stays pending. */
static int silent_listener(char *url, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    snprintf(url, cap, "http://127.0.0.1:%d/never", ntohs(a.sin_port));
    return fd;
}

static void test_full_callbacks(void) {
    tap_section("tornado_future_add_done_callback_full: drop exactly once");
    {
        tornado_loop *loop = tornado_loop_new();
        owned ran = {0}, pending = {0}, scheduled = {0}, kept = {0}, refused = {0};
        tornado_future *f = tornado_future_new(loop);
        CHECK_OK(tornado_future_add_done_callback_full(f, owned_done_cb, &ran, owned_drop), "add_done_callback_full");
        CHECK_OK(tornado_future_set_result(f, NULL, NULL), "set_result");
        CHECK(ran.drops == 0, "not dropped before the callback runs");
        for (int i = 0; i < 10 && ran.calls == 0; i++) tornado_loop_run_once(loop, 0.01);
        CHECK(ran.calls == 1 && ran.drops == 1 && ran.calls_at_drop == 1,
              "callback ran, then drop once (calls %d, drops %d, calls at drop %d)", ran.calls, ran.drops,
              ran.calls_at_drop);
        tornado_future_unref(f);
        CHECK(ran.drops == 1, "releasing the future drops nothing more");

        f = tornado_future_new(loop);
        CHECK_OK(tornado_future_add_done_callback_full(f, owned_done_cb, &pending, owned_drop), "on a pending future");
        tornado_future_unref(f);
        CHECK(pending.calls == 0 && pending.drops == 1, "future freed pending: never called, dropped once (%d)",
              pending.drops);

        f = tornado_future_new(loop);
        CHECK_OK(tornado_future_add_done_callback_full(f, owned_done_cb, &scheduled, owned_drop), "another");
        CHECK_OK(tornado_future_set_result(f, NULL, NULL), "set_result (callback scheduled)");
        tornado_future_unref(f);
        tornado_future *held = tornado_future_new(loop);
        CHECK_OK(tornado_future_add_done_callback_full(held, owned_done_cb, &kept, owned_drop), "on a held future");
        CHECK_OK(tornado_loop_free(loop), "loop_free with both pending");
        CHECK(scheduled.calls == 0 && scheduled.drops == 1, "scheduled at loop_free: never called, dropped once (%d)",
              scheduled.drops);
        CHECK(kept.calls == 0 && kept.drops == 0, "a future still referenced keeps its callback");
        CHECK_FAIL(tornado_future_add_done_callback_full(held, owned_done_cb, &refused, owned_drop), TORNADO_ERR_CLOSED,
                   "add_done_callback_full after loop_free -> CLOSED");
        CHECK(refused.drops == 0, "a refused registration is not dropped: the userdata stays the caller's");
        tornado_future_unref(held);
        CHECK(kept.calls == 0 && kept.drops == 1, "its last unref after loop_free drops it once (%d)", kept.drops);
    }

    tap_section("tornado_http_client_fetch_cb_full: drop exactly once");
    {
        char url[64];
        int lfd = silent_listener(url, sizeof url);
        CHECK(lfd >= 0, "a silent listener on 127.0.0.1");
        tornado_loop *loop = tornado_loop_new();
        tornado_http_request *r = tornado_http_request_new(url);
        owned ran = {0}, unrun = {0}, orphan = {0}, refused = {0};

        tornado_http_client *c = tornado_http_client_new(loop, NULL);
        CHECK_OK(tornado_http_client_fetch_cb_full(c, r, owned_fetch_cb, &ran, owned_drop), "fetch_cb_full");
        for (int i = 0; i < 5; i++) tornado_loop_run_once(loop, 0.01); /* connected, request sent */
        CHECK(ran.calls == 0 && ran.drops == 0, "pending: neither called nor dropped");
        CHECK_OK(tornado_http_client_free(c), "client_free with the fetch pending");
        for (int i = 0; i < 10 && ran.calls == 0; i++) tornado_loop_run_once(loop, 0.01);
        CHECK(ran.calls == 1 && ran.code == 599 && ran.drops == 1 && ran.calls_at_drop == 1,
              "the callback ran (code %d), then drop once (drops %d)", ran.code, ran.drops);

        c = tornado_http_client_new(loop, NULL);
        CHECK_FAIL(tornado_http_client_fetch_cb_full(c, r, NULL, &refused, owned_drop), TORNADO_ERR_INVALID,
                   "fetch_cb_full with a NULL callback -> INVALID");
        CHECK_FAIL(tornado_http_client_fetch_cb_full(c, NULL, owned_fetch_cb, &refused, owned_drop), TORNADO_ERR_INVALID,
                   "fetch_cb_full with a NULL request -> INVALID");
        CHECK(refused.drops == 0 && refused.calls == 0, "refused calls neither call nor drop");
        CHECK_OK(tornado_http_client_fetch_cb_full(c, r, owned_fetch_cb, &unrun, owned_drop), "fetch_cb_full");
        tornado_http_client *c2 = tornado_http_client_new(loop, NULL);
        CHECK_OK(tornado_http_client_fetch_cb_full(c2, r, owned_fetch_cb, &orphan, owned_drop), "a fetch on another client");
        tornado_loop_run_once(loop, 0.01);
        CHECK_OK(tornado_http_client_free(c), "client_free: the callback is scheduled");
        CHECK(unrun.drops == 0, "not dropped before it could run");
        CHECK_OK(tornado_loop_free(loop), "loop_free with both pending");
        CHECK(unrun.calls == 0 && unrun.drops == 1, "client freed, then loop freed: never called, dropped once (%d)",
              unrun.drops);
        CHECK(orphan.calls == 0, "the live client's callback does not run without a loop");
        CHECK_OK(tornado_http_client_free(c2), "client_free after loop_free");
        CHECK(orphan.calls == 0 && orphan.drops == 1, "loop freed, then client freed: never called, dropped once (%d)",
              orphan.drops);
        tornado_http_request_free(r);
        close(lfd);
    }
}

int main(void) {
    tap_init("test_free");
    int fds_at_start = count_open_fds();

    tap_section("free an empty loop");
    {
        tornado_loop *loop = tornado_loop_new();
        CHECK(loop != NULL, "loop_new");
        CHECK_OK(tornado_loop_free(loop), "free right away");
    }

    tap_section("free with pending callbacks, timers and handlers");
    {
        tornado_loop *loop = tornado_loop_new();
        reg cb1 = {0, 0}, cb2 = {0, 0}, t_due = {0, 0}, t_far = {0, 0}, t_at = {0, 0}, t_removed = {0, 0};
        reg h = {0, 0}, h_removed = {0, 0}, plain = {0, 0}, per = {0, 0};
        int p[2], q[2];
        CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0 && pipe2(q, O_NONBLOCK | O_CLOEXEC) == 0, "pipes");
        CHECK(write(p[1], "data", 4) == 4, "make the handler's fd readable");
        CHECK_OK(tornado_loop_add_callback_full(loop, reg_cb, &cb1, reg_drop), "add_callback_full #1");
        CHECK_OK(tornado_loop_add_callback_full(loop, reg_cb, &cb2, reg_drop), "add_callback_full #2");
        CHECK_OK(tornado_loop_add_callback(loop, reg_cb, &plain), "add_callback (no drop)");
        CHECK(tornado_loop_call_later_full(loop, 0.0, reg_cb, &t_due, reg_drop) != 0, "call_later_full(0)");
        CHECK(tornado_loop_call_later_full(loop, 100.0, reg_cb, &t_far, reg_drop) != 0, "call_later_full(100)");
        CHECK(tornado_loop_call_at_full(loop, tornado_loop_time(loop) + 50.0, reg_cb, &t_at, reg_drop) != 0, "call_at_full");
        CHECK(tornado_loop_call_later(loop, 0.0, reg_cb, &plain) != 0, "call_later (no drop)");
        uint64_t rem = tornado_loop_call_later_full(loop, 1.0, reg_cb, &t_removed, reg_drop);
        CHECK_OK(tornado_loop_remove_timeout(loop, rem), "remove a _full timer just before free");
        CHECK_OK(tornado_loop_add_handler_full(loop, p[0], TORNADO_READ, reg_fd_cb, &h, reg_drop), "add_handler_full (readable)");
        CHECK_OK(tornado_loop_add_handler_full(loop, q[0], TORNADO_READ, reg_fd_cb, &h_removed, reg_drop), "add_handler_full #2");
        CHECK_OK(tornado_loop_remove_handler(loop, q[0]), "remove it just before free");
        CHECK_OK(tornado_loop_add_handler(loop, q[1], TORNADO_WRITE, reg_fd_cb, &plain), "add_handler (no drop)");
        tornado_periodic *pc = tornado_periodic_new(loop, 0.001, reg_cb, &per, reg_drop);
        CHECK_OK(tornado_periodic_start(pc), "a started periodic");
        CHECK_OK(tornado_periodic_free(pc), "freed before the loop");
        CHECK(per.drops == 1 && per.calls == 0, "periodic: dropped once, never called");
        tap_sleep_ms(5); /* the 0 s timer is overdue */

        CHECK_OK(tornado_loop_free(loop), "loop_free with everything pending");
        reg *all[] = {&cb1, &cb2, &t_due, &t_far, &t_at, &t_removed, &h, &h_removed};
        const char *names[] = {"callback #1", "callback #2", "due timer", "far timer", "call_at timer", "removed timer", "handler", "removed handler"};
        for (int i = 0; i < 8; i++)
            CHECK(all[i]->calls == 0 && all[i]->drops == 1, "%s: never called, dropped exactly once (calls %d, drops %d)",
                  names[i], all[i]->calls, all[i]->drops);
        CHECK(plain.calls == 0, "registrations without drop never called");
        CHECK(fd_open(p[0]) && fd_open(p[1]) && fd_open(q[0]) && fd_open(q[1]), "the caller's fds are not closed");
        char buf[8];
        CHECK(read(p[0], buf, sizeof buf) == 4, "and still usable: the unread data is there");
        CHECK(write(q[1], "x", 1) == 1 && read(q[0], buf, 1) == 1, "the other pipe still works");
        for (int i = 0; i < 2; i++) {
            close(p[i]);
            close(q[i]);
        }
    }

    tap_section("loop_free from inside the running loop -> RUNNING");
    {
        running_loop = tornado_loop_new();
        tornado_loop *loop = running_loop;
        nfree_rc = 0;
        int p[2];
        CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
        CHECK(write(p[1], "x", 1) == 1, "readable");
        CHECK_OK(tornado_loop_add_callback(loop, try_free_cb, NULL), "from a callback");
        CHECK(tornado_loop_call_later(loop, 0.0, try_free_cb, NULL) != 0, "from a timer");
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, try_free_fd_cb, NULL), "from an fd handler");
        tornado_future *f = tornado_future_new(loop);
        CHECK_OK(tornado_future_add_done_callback(f, try_free_done_cb, NULL), "from a done callback");
        CHECK_OK(tornado_future_set_result(f, NULL, NULL), "set_result");
        tornado_future *co = tornado_coroutine_spawn(loop, try_free_step, NULL, NULL);
        tornado_periodic *pc = NULL;
        pc = tornado_periodic_new(loop, 0.005, try_free_periodic_cb, &pc, NULL);
        CHECK_OK(tornado_periodic_start(pc), "from a periodic callback");
        CHECK(tornado_loop_call_later(loop, 0.05, tap_stop_cb, loop) != 0, "stop in 50 ms");
        CHECK_OK(tornado_loop_start(loop), "start");
        int all_running = nfree_rc == 6;
        for (int i = 0; i < nfree_rc; i++) {
            if (free_rc[i] != TORNADO_ERR_RUNNING) {
                all_running = 0;
                tap_diag("loop_free #%d from inside returned %s", i, tornado_code_name(free_rc[i]));
            }
        }
        CHECK(all_running, "loop_free returned RUNNING from callback, timer, handler, done callback, step, periodic (%d calls)",
              nfree_rc);
        int ran = 0;
        CHECK_OK(tornado_loop_add_callback(loop, tap_count_cb, &ran), "the loop is still alive");
        CHECK_OK(tornado_loop_run_once(loop, 0), "and runs");
        CHECK(ran == 1, "callback ran");
        CHECK_OK(tornado_periodic_free(pc), "periodic_free");
        tornado_future_unref(f);
        tornado_future_unref(co);
        CHECK_OK(tornado_loop_free(loop), "loop_free after it stopped");
        close(p[0]);
        close(p[1]);
    }

    tap_section("drop functions that call the library during loop_free");
    {
        tornado_loop *loop = tornado_loop_new();
        tornado_future *f = tornado_future_new(loop);
        int value_drops = 0;
        CHECK_OK(tornado_future_set_result(f, &value_drops, tap_count_drop), "a future with a value");
        /* the registrations hold the only references, released by their drop functions */
        CHECK_OK(tornado_loop_add_callback_full(loop, reg_cb, tornado_future_ref(f), unref_drop), "callback holding a ref");
        CHECK(tornado_loop_call_later_full(loop, 10.0, reg_cb, tornado_future_ref(f), unref_drop) != 0, "timer holding a ref");
        int p[2];
        CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
        CHECK_OK(tornado_loop_add_handler_full(loop, p[0], TORNADO_READ, reg_fd_cb, tornado_future_ref(f), unref_drop),
                 "handler holding a ref");
        tornado_future_unref(f);
        reentrant_drop_state rs;
        memset(&rs, 0, sizeof rs);
        rs.loop = loop;
        rs.rc = -1;
        CHECK_OK(tornado_loop_add_callback_full(loop, reg_cb, &rs, reentrant_drop), "callback whose drop registers again");
        CHECK(value_drops == 0, "value alive while registrations hold references");
        CHECK_OK(tornado_loop_free(loop), "loop_free");
        CHECK(value_drops == 1, "drop functions released the future: its value was dropped once (%d)", value_drops);
        CHECK(rs.called == 1, "re-entrant drop ran once");
        tap_diag("add_callback_full from a drop function during loop_free: %s", tornado_code_name(rs.rc));
        CHECK(rs.inner_calls == 0, "a callback added during loop_free is never called");
        CHECK(rs.rc == TORNADO_OK ? rs.inner_drops == 1 : rs.inner_drops == 0,
              "accepted => dropped exactly once; refused => never dropped (rc %s, drops %d)", tornado_code_name(rs.rc),
              rs.inner_drops);
        close(p[0]);
        close(p[1]);
    }

    tap_section("done callbacks scheduled but not run when the loop is freed");
    {
        tornado_loop *loop = tornado_loop_new();
        tornado_future *f = tornado_future_new(loop);
        reg r = {0, 0};
        CHECK_OK(tornado_future_add_done_callback(f, reg_done_cb, &r), "add_done_callback");
        CHECK_OK(tornado_future_set_result(f, NULL, NULL), "set_result (callback now scheduled)");
        tornado_future_unref(f);
        CHECK_OK(tornado_loop_free(loop), "loop_free");
        CHECK(r.calls == 0, "the done callback was never called");
    }

    tap_section("coroutines pending at loop_free");
    {
        tornado_loop *loop = tornado_loop_new();
        co_state sleepy = {0, 0, loop}, released = {0, 0, loop};
        tornado_future *c1 = tornado_coroutine_spawn(loop, sleepy_step, &sleepy, co_drop);
        waiter_state w;
        memset(&w, 0, sizeof w);
        w.loop = loop;
        tornado_future *c2 = tornado_coroutine_spawn(loop, waiter_step, &w, waiter_drop);
        tornado_future *c3 = tornado_coroutine_spawn(loop, sleepy_step, &released, co_drop);
        co_state unstarted = {0, 0, loop};
        CHECK(c1 && c2 && c3, "spawned 3 coroutines");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run their first steps");
        CHECK(sleepy.steps == 1 && w.st.steps == 1 && released.steps == 1, "all three suspended");
        tornado_future_unref(c3); /* its result future released before the loop goes */
        tornado_future *c4 = tornado_coroutine_spawn(loop, sleepy_step, &unstarted, co_drop);
        CHECK(c4 != NULL, "a fourth, spawned but never stepped");
        CHECK_OK(tornado_loop_free(loop), "loop_free with suspended coroutines");
        CHECK(sleepy.drops == 1, "sleeping coroutine: drop_userdata once (%d)", sleepy.drops);
        CHECK(w.st.drops == 1, "coroutine waiting on a future: drop_userdata once (%d)", w.st.drops);
        CHECK(released.drops == 1, "coroutine whose future was released: drop_userdata once (%d)", released.drops);
        CHECK(unstarted.drops == 1 && unstarted.steps == 0, "never-stepped coroutine: drop_userdata once, no step (%d)",
              unstarted.drops);
        CHECK(sleepy.steps == 1 && w.st.steps == 1 && released.steps == 1, "no step ran during loop_free");
        /* the result futures outlive the loop */
        /* the result futures outlive the loop, pending for ever (valgrind:
         * releasing them afterwards is clean) */
        CHECK(!tornado_future_done(c1) && !tornado_future_done(c2) && !tornado_future_done(c4),
              "their result futures stay pending");
        CHECK_CODE(tornado_future_error(c1, NULL), TORNADO_ERR_NOT_DONE, "c1: NOT_DONE");
        tornado_future_unref(c1);
        tornado_future_unref(c2);
        tornado_future_unref(c4);
    }

    tap_section("futures and periodics outliving their loop");
    {
        tornado_loop *loop = tornado_loop_new();
        tornado_future *pending = tornado_future_new(loop);
        tornado_future *done = tornado_future_new(loop);
        int value_drops = 0;
        reg per = {0, 0}, per2 = {0, 0};
        CHECK_OK(tornado_future_set_result(done, &value_drops, tap_count_drop), "done future with a value");
        tornado_future *s = tornado_sleep(loop, 10.0);
        tornado_future *wt = tornado_with_timeout(loop, pending, 10.0);
        tornado_future *both[2] = {pending, s};
        tornado_future *m = tornado_multi(loop, both, 2);
        tornado_periodic *pc = tornado_periodic_new(loop, 0.01, reg_cb, &per, reg_drop);
        tornado_periodic *pc2 = tornado_periodic_new(loop, 0.01, reg_cb, &per2, reg_drop);
        CHECK(s && wt && m && pc && pc2, "sleep, with_timeout, multi, periodics");
        CHECK_OK(tornado_periodic_start(pc), "periodic started");
        CHECK_OK(tornado_loop_free(loop), "loop_free with all of them alive");

        CHECK(tornado_future_done(done), "done future still readable");
        CHECK(tornado_future_result(done) == &value_drops, "with its value");
        CHECK(!tornado_future_done(pending), "pending future still pending");
        tornado_code rc = tornado_future_add_done_callback(pending, reg_done_cb, NULL);
        CHECK(rc == TORNADO_ERR_CLOSED, "add_done_callback after loop_free -> CLOSED (%s)", tornado_code_name(rc));
        CHECK_OK(tornado_future_set_result(pending, NULL, NULL), "set_result after loop_free completes it (no callback to run)");
        CHECK(tornado_future_done(pending), "done now");
        CHECK_CODE(tornado_future_error(pending, NULL), TORNADO_OK, "with success");
        rc = tornado_periodic_start(pc2);
        CHECK(rc == TORNADO_ERR_CLOSED, "periodic_start after loop_free -> CLOSED (%s)", tornado_code_name(rc));
        CHECK_OK(tornado_periodic_free(pc), "periodic_free after loop_free");
        CHECK_OK(tornado_periodic_free(pc2), "periodic_free after loop_free (with drop)");
        CHECK(per.calls == 0 && per.drops == 1, "started periodic: never called, dropped once at periodic_free (%d)", per.drops);
        CHECK(per2.calls == 0 && per2.drops == 1, "stopped periodic: dropped once at periodic_free (%d)", per2.drops);
        tornado_future_unref(m);
        tornado_future_unref(wt);
        tornado_future_unref(s);
        tornado_future_unref(pending);
        CHECK(value_drops == 0, "value alive while referenced");
        tornado_future_unref(done);
        CHECK(value_drops == 1, "value dropped once at the last unref after loop_free");
    }

    tap_section("no fd or memory leak over many loops");
    {
        int before = count_open_fds();
        int ok = 1;
        for (int i = 0; i < 50; i++) {
            tornado_loop *loop = tornado_loop_new();
            if (!loop) {
                ok = 0;
                break;
            }
            int ran = 0;
            tornado_loop_add_callback(loop, tap_count_cb, &ran);
            tornado_loop_call_later(loop, 0.0, tap_count_cb, &ran);
            tornado_loop_run_once(loop, 0);
            tornado_loop_call_later(loop, 1.0, tap_count_cb, &ran);
            ok &= tornado_loop_free(loop) == TORNADO_OK;
        }
        CHECK(ok, "50 loops made, used and freed");
        int after = count_open_fds();
        CHECK(after == before, "no fd leaked (%d -> %d open fds)", before, after);
    }

    test_full_callbacks();

    CHECK(count_open_fds() == fds_at_start, "every fd opened by the library was closed (%d vs %d at start)", count_open_fds(),
          fds_at_start);
    return tap_done();
}
