/* test_threads.c: add_callback from other threads wakes a sleeping loop
 * (start() and an embedding host's poll()) within milliseconds; stop from
 * another thread; many threads adding callbacks; every call that is not
 * thread-safe refused with TORNADO_ERR_WRONG_THREAD; an HTTP request
 * handle refused on other threads while fetches of it are in flight;
 * tornado_last_error is thread-local. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "tap.h"

static tornado_loop *loop;
static pthread_t loop_thread;

/* ---------------- wake-up of start() ---------------- */
static double sent_at, ran_at;
static int ran_on_loop_thread;
static tornado_code thread_rc = -1;

static void woken_cb(void *ud) {
    (void)ud;
    ran_at = tap_now();
    ran_on_loop_thread = pthread_equal(pthread_self(), loop_thread);
    tornado_loop_stop(loop);
}

static void *add_later_thread(void *arg) {
    long ms = (long)(intptr_t)arg;
    tap_sleep_ms(ms);
    sent_at = tap_now();
    thread_rc = tornado_loop_add_callback(loop, woken_cb, NULL);
    return NULL;
}

static double stop_sent_at;
static void *stop_later_thread(void *arg) {
    long ms = (long)(intptr_t)arg;
    tap_sleep_ms(ms);
    stop_sent_at = tap_now();
    thread_rc = tornado_loop_stop(loop);
    return NULL;
}

/* ---------------- many threads ---------------- */
enum { NTHREADS = 4, PER_THREAD = 500 };
static int last_seq[NTHREADS];
static int total_calls, total_drops, out_of_order, wrong_thread_calls;
static int threads_finished;
static tornado_code many_rc[NTHREADS];

static void many_cb(void *ud) {
    intptr_t v = (intptr_t)ud;
    int t = (int)(v / 100000), seq = (int)(v % 100000);
    if (seq != last_seq[t] + 1) out_of_order++;
    last_seq[t] = seq;
    total_calls++;
    if (!pthread_equal(pthread_self(), loop_thread)) wrong_thread_calls++;
}

static void many_drop(void *ud) {
    (void)ud;
    total_drops++;
    if (!pthread_equal(pthread_self(), loop_thread)) wrong_thread_calls++;
}

static void *many_thread(void *arg) {
    int t = (int)(intptr_t)arg;
    tornado_code rc = TORNADO_OK;
    for (int i = 1; i <= PER_THREAD; i++) {
        tornado_code r = tornado_loop_add_callback_full(loop, many_cb, (void *)(intptr_t)(t * 100000 + i), many_drop);
        if (r != TORNADO_OK) rc = r;
        if (i % 100 == 0) sched_yield();
    }
    many_rc[t] = rc;
    if (__atomic_add_fetch(&threads_finished, 1, __ATOMIC_SEQ_CST) == NTHREADS) tornado_loop_stop(loop);
    return NULL;
}

/* ---------------- wrong thread ---------------- */
typedef struct {
    tornado_future *future;
    tornado_periodic *periodic;
    uint64_t timer;
    int fd;
    int fd2;
    int drops;
    const char *first_error; /* tornado_last_error() before any failure on this thread */
    int msg_fail;            /* calls that failed without a message */
    tornado_code rc[64];
    const char *names[64];
    int nrc;
    int null_results; /* constructors that returned NULL/0 as they should */
    int nonnull_results;
    tornado_loop *leaked_loop_check;
} wrong_ctx;

static void noop_cb(void *ud) {
    (void)ud;
}
static void noop_fd_cb(int fd, uint32_t ev, void *ud) {
    (void)fd;
    (void)ev;
    (void)ud;
}
static void noop_done_cb(tornado_future *f, void *ud) {
    (void)f;
    (void)ud;
}
static tornado_future *noop_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)co;
    (void)resumed;
    (void)ud;
    return NULL;
}

#define WT_CODE(ctx, expr)                                                   \
    do {                                                                     \
        if ((ctx)->nrc < 64) {                                               \
            (ctx)->rc[(ctx)->nrc] = (expr);                                  \
            (ctx)->names[(ctx)->nrc] = #expr;                                \
            if (!TAP_HAS_ERRMSG()) (ctx)->msg_fail++;                        \
            (ctx)->nrc++;                                                    \
        }                                                                    \
    } while (0)

#define WT_NULL(ctx, expr)                                                   \
    do {                                                                     \
        if ((expr) == 0) {                                                   \
            (ctx)->null_results++;                                           \
            if (!TAP_HAS_ERRMSG()) (ctx)->msg_fail++;                        \
        } else {                                                             \
            (ctx)->nonnull_results++;                                        \
            tap_diag("wrong thread: %s succeeded", #expr);                   \
        }                                                                    \
    } while (0)

static void *wrong_thread(void *arg) {
    wrong_ctx *c = arg;
    c->first_error = tornado_last_error();
    tornado_future *arr[1] = {c->future};

    WT_CODE(c, tornado_loop_free(loop));
    WT_CODE(c, tornado_loop_start(loop));
    WT_CODE(c, tornado_loop_run_once(loop, 0));
    WT_CODE(c, tornado_loop_run_sync(loop, c->future, 0.01));
    WT_CODE(c, tornado_loop_remove_timeout(loop, c->timer));
    WT_CODE(c, tornado_loop_add_handler(loop, c->fd2, TORNADO_READ, noop_fd_cb, NULL));
    WT_CODE(c, tornado_loop_add_handler_full(loop, c->fd2, TORNADO_READ, noop_fd_cb, &c->drops, tap_count_drop));
    WT_CODE(c, tornado_loop_update_handler(loop, c->fd, TORNADO_WRITE));
    WT_CODE(c, tornado_loop_remove_handler(loop, c->fd));
    WT_CODE(c, tornado_future_set_result(c->future, NULL, NULL));
    WT_CODE(c, tornado_future_set_error(c->future, TORNADO_ERR_USER, "from the wrong thread"));
    WT_CODE(c, tornado_future_cancel(c->future));
    WT_CODE(c, tornado_future_add_done_callback(c->future, noop_done_cb, NULL));
    WT_CODE(c, tornado_future_error(c->future, NULL));
    WT_CODE(c, tornado_periodic_start(c->periodic));
    WT_CODE(c, tornado_periodic_stop(c->periodic));
    WT_CODE(c, tornado_periodic_set_jitter(c->periodic, 0.1));
    WT_CODE(c, tornado_periodic_free(c->periodic));

    WT_NULL(c, tornado_loop_call_later(loop, 0.001, noop_cb, NULL));
    WT_NULL(c, tornado_loop_call_later_full(loop, 0.001, noop_cb, &c->drops, tap_count_drop));
    WT_NULL(c, tornado_loop_call_at(loop, 0.0, noop_cb, NULL));
    WT_NULL(c, tornado_loop_call_at_full(loop, 0.0, noop_cb, &c->drops, tap_count_drop));
    WT_NULL(c, tornado_future_new(loop));
    WT_NULL(c, tornado_future_ref(c->future));
    WT_NULL(c, tornado_coroutine_spawn(loop, noop_step, &c->drops, tap_count_drop));
    WT_NULL(c, tornado_multi(loop, arr, 1));
    WT_NULL(c, tornado_with_timeout(loop, c->future, 1.0));
    WT_NULL(c, tornado_sleep(loop, 0.001));
    WT_NULL(c, tornado_moment(loop));
    WT_NULL(c, tornado_periodic_new(loop, 0.01, noop_cb, &c->drops, tap_count_drop));
    WT_NULL(c, tornado_future_result(c->future));
    if (tornado_future_done(c->future)) c->nonnull_results++;
    if (tornado_periodic_is_running(c->periodic)) c->nonnull_results++;
    return NULL;
}

static void check_wrong_ctx(wrong_ctx *c, const char *when) {
    int bad = 0;
    for (int i = 0; i < c->nrc; i++) {
        if (c->rc[i] != TORNADO_ERR_WRONG_THREAD) {
            bad++;
            tap_diag("%s: %s returned %s", when, c->names[i], tornado_code_name(c->rc[i]));
        }
    }
    CHECK(c->nrc == 18 && bad == 0, "%s: %d code-returning calls all WRONG_THREAD (%d wrong)", when, c->nrc, bad);
    CHECK(c->null_results == 13 && c->nonnull_results == 0, "%s: 13 constructors returned NULL/0 (%d did not)", when,
          c->nonnull_results);
    CHECK(c->msg_fail == 0, "%s: every refused call set a message on that thread (%d did not)", when, c->msg_fail);
    CHECK(c->first_error == NULL, "%s: tornado_last_error() is NULL on a fresh thread", when);
    CHECK(c->drops == 0, "%s: refused _full registrations never call drop", when);
}

/* a coroutine step that tries return/raise from another thread */
typedef struct {
    tornado_coroutine *co;
    tornado_code ret_rc, raise_rc;
} co_thread_arg;
static void *co_wrong_thread(void *arg) {
    co_thread_arg *a = arg;
    a->ret_rc = tornado_coroutine_return(a->co, NULL, NULL);
    a->raise_rc = tornado_coroutine_raise(a->co, TORNADO_ERR_USER, "wrong thread");
    return NULL;
}
static co_thread_arg co_arg = {NULL, -1, -1};
static tornado_future *co_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    (void)resumed;
    (void)ud;
    co_arg.co = co;
    pthread_t th;
    pthread_create(&th, NULL, co_wrong_thread, &co_arg);
    pthread_join(th, NULL);
    int *v = malloc(sizeof *v);
    *v = 5;
    CHECK_OK(tornado_coroutine_return(co, v, free), "coroutine_return on the loop thread still works");
    return NULL;
}

/* host poll() wake-up */
static int host_cb_ran;
static void host_cb(void *ud) {
    (void)ud;
    host_cb_ran++;
    ran_at = tap_now();
}
static void *host_add_thread(void *arg) {
    (void)arg;
    tap_sleep_ms(80);
    sent_at = tap_now();
    thread_rc = tornado_loop_add_callback(loop, host_cb, NULL);
    return NULL;
}

static void *wrong_while_running_thread(void *arg) {
    wrong_ctx *c = arg;
    tap_sleep_ms(30); /* the loop is sleeping in start() */
    wrong_thread(c);
    tornado_loop_stop(loop);
    return NULL;
}

/* ---------------- request handles (issue 12 #14) ---------------- */
typedef struct {
    tornado_http_request *theirs; /* made by the loop thread, fetched there */
    const char *url;
    tornado_http_request *own;    /* made here, for the loop thread to try */
    int refused, accepted;
    pthread_barrier_t made, tried; /* `own` made; the loop thread tried it */
} request_ctx;

static void count_code(request_ctx *c, tornado_code rc) {
    if (rc == TORNADO_ERR_WRONG_THREAD)
        c->refused++;
    else
        c->accepted++;
}

static void *request_thread(void *arg) {
    request_ctx *c = arg;
    count_code(c, tornado_http_request_set_method(c->theirs, "HEAD"));
    count_code(c, tornado_http_request_add_header(c->theirs, "X-A", "1"));
    count_code(c, tornado_http_request_set_body(c->theirs, (const uint8_t *)"x", 1));
    count_code(c, tornado_http_request_set_request_timeout(c->theirs, 1.0));
    tornado_http_request_free(c->theirs); /* refused: logged, nothing freed */
    c->own = tornado_http_request_new(c->url);
    pthread_barrier_wait(&c->made);
    pthread_barrier_wait(&c->tried);
    tornado_http_request_free(c->own); /* by its owner */
    return NULL;
}

/* Client options made on the main thread, tried from another. */
static tornado_code options_rc[3];
static void *options_thread(void *arg) {
    tornado_http_client_options *o = arg;
    options_rc[0] = tornado_http_client_options_set_max_clients(o, 3);
    options_rc[1] = tornado_http_client_options_add_endpoint_mapping(o, "a.test", 80, "127.0.0.1", 81);
    tornado_loop *other = tornado_loop_new();
    tornado_http_client *c = tornado_http_client_new(other, o);
    options_rc[2] = c == NULL ? TORNADO_ERR_WRONG_THREAD : TORNADO_OK;
    if (c) tornado_http_client_free(c);
    tornado_http_client_options_free(o); /* refused: logged, nothing freed */
    tornado_loop_free(other);
    return NULL;
}

static int fetch_calls;
static void count_fetch(const tornado_http_response *r, void *ud) {
    (void)r;
    (void)ud;
    fetch_calls++;
}

static void *errmsg_thread(void *arg) {
    const char **out = arg;
    out[0] = tornado_last_error(); /* NULL: nothing failed on this thread */
    tornado_loop_remove_timeout(NULL, 1);
    out[1] = tornado_last_error() && tornado_last_error()[0] ? "set" : NULL;
    return NULL;
}

int main(void) {
    tap_init("test_threads");
    loop_thread = pthread_self();
    loop = tornado_loop_new();
    CHECK(loop != NULL, "loop_new");
    if (!loop) return tap_done();

    tap_section("add_callback from another thread wakes start()");
    {
        int safety_fired = 0;
        uint64_t safety = tornado_loop_call_later(loop, 5.0, tap_count_cb, &safety_fired);
        /* the safety timer does not stop the loop: the watchdog catches a hang */
        pthread_t th;
        CHECK(pthread_create(&th, NULL, add_later_thread, (void *)(intptr_t)100) == 0, "pthread_create");
        double t0 = tap_now();
        CHECK_OK(tornado_loop_start(loop), "start (blocked, nothing due for 5 s)");
        pthread_join(th, NULL);
        CHECK_OK(thread_rc, "add_callback from another thread");
        double lat = ran_at - sent_at;
        tap_diag("wake-up latency: %.3f ms (loop slept %.1f ms)", lat * 1e3, (sent_at - t0) * 1e3);
        CHECK(ran_at > 0 && lat >= 0 && lat < 0.5, "the callback ran within 500 ms of add_callback (%.3f ms)", lat * 1e3);
        CHECK(ran_on_loop_thread, "the callback ran on the loop thread");
        CHECK(safety_fired == 0, "woken by the callback, not by the safety timer");
        CHECK_OK(tornado_loop_remove_timeout(loop, safety), "remove safety timer");
    }

    tap_section("stop from another thread");
    {
        int safety_fired = 0;
        uint64_t safety = tornado_loop_call_later(loop, 5.0, tap_count_cb, &safety_fired);
        pthread_t th;
        thread_rc = -1;
        CHECK(pthread_create(&th, NULL, stop_later_thread, (void *)(intptr_t)50) == 0, "pthread_create");
        CHECK_OK(tornado_loop_start(loop), "start");
        double stopped = tap_now();
        pthread_join(th, NULL);
        CHECK_OK(thread_rc, "stop from another thread returned OK");
        double lat = stopped - stop_sent_at;
        tap_diag("stop latency: %.3f ms", lat * 1e3);
        CHECK(lat >= 0 && lat < 0.5, "start returned within 500 ms of stop (%.3f ms)", lat * 1e3);
        CHECK(safety_fired == 0, "not by the safety timer");
        CHECK_OK(tornado_loop_remove_timeout(loop, safety), "remove safety timer");
    }

    tap_section("embedding host: add_callback from another thread wakes poll(backend_fd)");
    {
        for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0);
        CHECK(tornado_loop_backend_timeout(loop) == -1.0, "nothing due: backend_timeout -1");
        pthread_t th;
        thread_rc = -1;
        ran_at = 0;
        CHECK(pthread_create(&th, NULL, host_add_thread, NULL) == 0, "pthread_create");
        struct pollfd pfd = {tornado_loop_backend_fd(loop), POLLIN, 0};
        int n = poll(&pfd, 1, 3000); /* -1 in a real host; 3 s here to fail instead of hang */
        double woke = tap_now();
        pthread_join(th, NULL);
        CHECK(n == 1, "poll() returned readable (%d)", n);
        tap_diag("host poll() woke %.3f ms after add_callback", (woke - sent_at) * 1e3);
        CHECK(woke - sent_at < 0.5, "promptly (< 500 ms)");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(host_cb_ran == 1, "run_once ran the callback");
    }

    tap_section("many threads add callbacks concurrently");
    {
        pthread_t th[NTHREADS];
        int safety_fired = 0;
        uint64_t safety = tornado_loop_call_later(loop, 10.0, tap_count_cb, &safety_fired);
        for (int t = 0; t < NTHREADS; t++) pthread_create(&th[t], NULL, many_thread, (void *)(intptr_t)t);
        CHECK_OK(tornado_loop_start(loop), "start; the last thread stops it");
        for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
        /* a stop may land before the last callbacks of a slower thread were queued: run the rest */
        for (int i = 0; i < 5 && total_calls < NTHREADS * PER_THREAD; i++) tornado_loop_run_once(loop, 0);
        int rc_ok = 1;
        for (int t = 0; t < NTHREADS; t++) rc_ok &= many_rc[t] == TORNADO_OK;
        CHECK(rc_ok, "all add_callback_full calls returned OK");
        CHECK(total_calls == NTHREADS * PER_THREAD, "every callback ran exactly once (%d/%d)", total_calls,
              NTHREADS * PER_THREAD);
        CHECK(total_drops == NTHREADS * PER_THREAD, "every drop ran exactly once (%d)", total_drops);
        CHECK(out_of_order == 0, "each thread's callbacks ran in its order (%d out of order)", out_of_order);
        CHECK(wrong_thread_calls == 0, "callbacks and drops ran on the loop thread");
        CHECK_OK(tornado_loop_remove_timeout(loop, safety), "remove safety timer");
    }

    tap_section("client options belong to the thread that made them");
    {
        tornado_http_client_options *o = tornado_http_client_options_new();
        pthread_t th;
        CHECK(pthread_create(&th, NULL, options_thread, o) == 0, "pthread_create");
        pthread_join(th, NULL);
        CHECK(options_rc[0] == TORNADO_ERR_WRONG_THREAD && options_rc[1] == TORNADO_ERR_WRONG_THREAD &&
                  options_rc[2] == TORNADO_ERR_WRONG_THREAD,
              "setters and client_new from another thread are refused (%d %d %d)", options_rc[0], options_rc[1],
              options_rc[2]);
        CHECK_OK(tornado_http_client_options_set_max_clients(o, 3), "their own thread may use them");
        tornado_http_client_options_free(o); /* by their owner */
    }

    tap_section("non-thread-safe calls from another thread -> WRONG_THREAD");
    {
        int p[2], q[2];
        CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0 && pipe2(q, O_NONBLOCK | O_CLOEXEC) == 0, "pipes");
        int hcalls = 0;
        wrong_ctx c;
        memset(&c, 0, sizeof c);
        c.future = tornado_future_new(loop);
        c.periodic = tornado_periodic_new(loop, 0.01, tap_count_cb, &hcalls, NULL);
        int timer_ran = 0;
        c.timer = tornado_loop_call_later(loop, 0.01, tap_count_cb, &timer_ran);
        c.fd = p[0];
        c.fd2 = q[0];
        CHECK(c.future && c.periodic && c.timer, "objects made on the loop thread");
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, noop_fd_cb, NULL), "handler on the loop thread");
        pthread_t th;
        CHECK(pthread_create(&th, NULL, wrong_thread, &c) == 0, "pthread_create");
        pthread_join(th, NULL);
        check_wrong_ctx(&c, "idle loop");

        /* nothing changed */
        CHECK(!tornado_future_done(c.future), "the future is still pending");
        CHECK_OK(tornado_loop_update_handler(loop, p[0], TORNADO_READ), "the handler is still registered");
        CHECK_FAIL(tornado_loop_remove_handler(loop, q[0]), TORNADO_ERR_NOT_FOUND,
                   "the other thread's add_handler registered nothing");

        /* the same while the loop sleeps in start() */
        wrong_ctx c2;
        memset(&c2, 0, sizeof c2);
        c2.future = c.future;
        c2.periodic = c.periodic;
        c2.timer = c.timer;
        c2.fd = c.fd;
        c2.fd2 = c.fd2;
        CHECK(pthread_create(&th, NULL, wrong_while_running_thread, &c2) == 0, "pthread_create");
        CHECK_OK(tornado_loop_start(loop), "start; the thread stops it");
        pthread_join(th, NULL);
        check_wrong_ctx(&c2, "running loop");

        CHECK(timer_ran == 1, "the timer the other thread tried to remove fired");
        CHECK(!tornado_future_done(c.future), "the future is still pending");
        CHECK_OK(tornado_future_set_result(c.future, NULL, NULL), "set_result on the loop thread works");
        tornado_future_unref(c.future);
        CHECK_OK(tornado_periodic_free(c.periodic), "periodic_free on the loop thread works");
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "remove_handler on the loop thread works");
        close(p[0]);
        close(p[1]);
        close(q[0]);
        close(q[1]);
    }

    tap_section("coroutine_return/raise from another thread -> WRONG_THREAD");
    {
        tornado_future *f = tornado_coroutine_spawn(loop, co_step, NULL, NULL);
        CHECK(f != NULL, "spawn");
        CHECK_OK(tornado_loop_run_sync(loop, f, 2.0), "run_sync");
        CHECK_CODE(co_arg.ret_rc, TORNADO_ERR_WRONG_THREAD, "coroutine_return from another thread");
        CHECK_CODE(co_arg.raise_rc, TORNADO_ERR_WRONG_THREAD, "coroutine_raise from another thread");
        int *v = tornado_future_result(f);
        CHECK(v && *v == 5, "the coroutine's result is the loop thread's");
        tornado_future_unref(f);
    }

    tap_section("a request handle from other threads, fetches of it in flight -> WRONG_THREAD");
    {
        /* accepted by the kernel, never answered: the fetches stay in flight */
        int silent = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        CHECK(silent >= 0 && bind(silent, (struct sockaddr *)&a, sizeof a) == 0 && listen(silent, 8) == 0 &&
                  getsockname(silent, (struct sockaddr *)&a, &len) == 0,
              "a silent listener on 127.0.0.1");
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));
        tornado_http_client *client = tornado_http_client_new(loop, NULL);
        request_ctx c;
        memset(&c, 0, sizeof c);
        c.url = url;
        c.theirs = tornado_http_request_new(url);
        pthread_barrier_init(&c.made, NULL, 2);
        pthread_barrier_init(&c.tried, NULL, 2);
        fetch_calls = 0;
        for (int i = 0; i < 4; i++)
            CHECK_OK(tornado_http_client_fetch_cb(client, c.theirs, count_fetch, NULL), "fetch #%d", i);
        tornado_loop_run_once(loop, 0.01);
        pthread_t th;
        CHECK(pthread_create(&th, NULL, request_thread, &c) == 0, "pthread_create");
        pthread_barrier_wait(&c.made);
        CHECK(c.refused == 4 && c.accepted == 0, "every setter refused on the other thread (%d refused, %d accepted)",
              c.refused, c.accepted);
        CHECK_OK(tornado_http_request_set_method(c.theirs, "GET"), "the loop thread still owns it");
        CHECK(c.own != NULL, "the other thread made its own request");
        CHECK_FAIL(tornado_http_client_fetch_cb(client, c.own, count_fetch, NULL), TORNADO_ERR_WRONG_THREAD,
                   "the loop thread cannot fetch another thread's request");
        pthread_barrier_wait(&c.tried);
        pthread_join(th, NULL); /* its owner freed it */
        pthread_barrier_destroy(&c.made);
        pthread_barrier_destroy(&c.tried);
        tornado_http_request_free(c.theirs);
        CHECK_OK(tornado_http_client_free(client), "client_free ends the fetches");
        for (int i = 0; i < 20 && fetch_calls < 4; i++) tornado_loop_run_once(loop, 0.01);
        CHECK(fetch_calls == 4, "each fetch called back once (%d)", fetch_calls);
        close(silent);
    }

    tap_section("tornado_last_error is thread-local");
    {
        CHECK_FAIL(tornado_loop_remove_timeout(loop, 987654321), TORNADO_ERR_NOT_FOUND, "a failure on the main thread");
        char saved[256];
        snprintf(saved, sizeof saved, "%s", tornado_last_error());
        const char *out[2] = {"unset", "unset"};
        pthread_t th;
        pthread_create(&th, NULL, errmsg_thread, out);
        pthread_join(th, NULL);
        CHECK(out[0] == NULL, "a new thread starts with no message");
        CHECK(out[1] != NULL, "its own failure sets its message");
        CHECK(tornado_last_error() && strcmp(saved, tornado_last_error()) == 0,
              "the main thread's message is unchanged by the other thread's failure");
    }

    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
