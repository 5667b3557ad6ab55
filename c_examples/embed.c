/* embed.c: the host program owns the poll() loop; tornado_rs is one of its
 * event sources.
 *
 * Each host iteration:
 *     timeout = tornado_loop_backend_timeout(loop)   seconds; -1 = nothing due
 *     poll({backend_fd, POLLIN}, ceil(timeout * 1000) ms, or -1)
 *     tornado_loop_run_once(loop, 0)
 *
 * Shown and checked:
 *  1. timers fire on time (not early, not much late) and the host does not
 *     busy-loop while it waits for them;
 *  2. an fd handler: bytes written into a socketpair wake the host's poll()
 *     and the loop calls the handler;
 *  3. tornado_loop_add_callback from another pthread (it and
 *     tornado_loop_stop are the only calls allowed off the loop thread) wakes
 *     the host's poll() promptly, although the next timer is seconds away.
 *     A call that is not thread-safe, made from that thread, is refused with
 *     TORNADO_ERR_WRONG_THREAD.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "example_util.h"

static tornado_loop *loop;
static int backend_fd;
static long host_polls, host_wakeups; /* iterations, and how many poll() calls saw the fd ready */

/* One host iteration. Returns the time poll() slept, in seconds. */
static double host_iteration(void) {
    double timeout_s = tornado_loop_backend_timeout(loop);
    CHECK(timeout_s == -1.0 || timeout_s >= 0.0, "backend_timeout returned %f", timeout_s);
    int timeout_ms = timeout_s < 0 ? -1 : (int)ceil(timeout_s * 1000.0); /* round up: never early */
    struct pollfd pfd = {backend_fd, POLLIN, 0};
    double before = tornado_loop_time(loop);
    int n = poll(&pfd, 1, timeout_ms);
    CHECK(n >= 0 || errno == EINTR, "poll: %s", strerror(errno));
    double slept = tornado_loop_time(loop) - before;
    host_polls++;
    if (n > 0) host_wakeups++;
    CHECK_OK(tornado_loop_run_once(loop, 0));
    return slept;
}

/* ---- 1. timers ---- */
typedef struct {
    double due, fired_at;
    int fired;
} due_timer;

static void on_due(void *ud) {
    due_timer *t = ud;
    t->fired++;
    t->fired_at = tornado_loop_time(loop);
}

/* ---- 2. fd handler ---- */
static char fd_got[64];
static size_t fd_len;
static void on_readable(int fd, uint32_t events, void *ud) {
    (void)ud;
    CHECK(events & TORNADO_READ, "handler called without READ (%u)", events);
    ssize_t r = read(fd, fd_got + fd_len, sizeof fd_got - 1 - fd_len);
    CHECK(r > 0, "read: %s", r < 0 ? strerror(errno) : "EOF");
    fd_len += (size_t)r;
}

/* ---- 3. another thread ---- */
static double thread_sent_at; /* CLOCK_MONOTONIC */
static double cb_ran_at;
static int cb_ran;
static tornado_code thread_add_rc = -1, thread_wrong_rc = -1;
static uint64_t thread_call_later_id;
static pthread_t main_thread;
static int cb_on_main_thread;

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void from_thread_cb(void *ud) {
    CHECK(strcmp((const char *)ud, "hello from a thread") == 0, "wrong userdata");
    cb_ran_at = mono();
    cb_ran++;
    cb_on_main_thread = pthread_equal(pthread_self(), main_thread);
}

static void noop(void *ud) { (void)ud; }

static void *thread_main(void *arg) {
    (void)arg;
    struct timespec pause = {0, 100 * 1000 * 1000}; /* let the host settle into poll() */
    nanosleep(&pause, NULL);
    /* not thread-safe: refused, detected */
    thread_wrong_rc = tornado_loop_remove_timeout(loop, 1);
    thread_call_later_id = tornado_loop_call_later(loop, 0.001, noop, NULL);
    thread_sent_at = mono();
    thread_add_rc = tornado_loop_add_callback(loop, from_thread_cb, "hello from a thread");
    return NULL;
}

int main(void) {
    main_thread = pthread_self();
    CHECK_NEW(loop = tornado_loop_new());
    backend_fd = tornado_loop_backend_fd(loop);
    CHECK(backend_fd >= 0, "backend_fd = %d", backend_fd);
    printf("embed: the host polls backend fd %d itself and calls tornado_loop_run_once(loop, 0)\n", backend_fd);
    CHECK(tornado_loop_backend_timeout(loop) == -1.0, "an empty loop should report -1 (nothing due), got %f",
          tornado_loop_backend_timeout(loop));
    uint64_t safety = example_arm_safety(loop, 5.0);

    /* ---- 1 ---- */
    printf("1. timers at +40 ms and +120 ms\n");
    double t0 = tornado_loop_time(loop);
    due_timer a = {t0 + 0.040, 0, 0}, b = {t0 + 0.120, 0, 0};
    CHECK_NEW(tornado_loop_call_later(loop, 0.040, on_due, &a));
    CHECK_NEW(tornado_loop_call_later(loop, 0.120, on_due, &b));
    double to = tornado_loop_backend_timeout(loop);
    CHECK(to > 0.0 && to <= 0.040 + 1e-6, "backend_timeout should be <= 40 ms, got %f", to);
    printf("  backend_timeout = %.1f ms\n", to * 1e3);
    long polls0 = host_polls;
    while (!b.fired && !example_safety_fired) host_iteration();
    long polls = host_polls - polls0;
    due_timer *ts[] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        printf("  timer %d: due +%.1f ms, fired +%.1f ms\n", i + 1, (ts[i]->due - t0) * 1e3,
               (ts[i]->fired_at - t0) * 1e3);
        CHECK(ts[i]->fired == 1, "timer %d fired %d times", i + 1, ts[i]->fired);
        CHECK(ts[i]->fired_at >= ts[i]->due - 1e-3, "timer %d fired early", i + 1);
        CHECK(ts[i]->fired_at - ts[i]->due < 0.100, "timer %d fired %.0f ms late", i + 1,
              (ts[i]->fired_at - ts[i]->due) * 1e3);
    }
    printf("  %ld host iterations for two timers over 120 ms\n", polls);
    CHECK(polls <= 20, "the host busy-looped: %ld iterations", polls);
    printf("ok: timers fired on time without busy-looping\n");

    /* ---- 2 ---- */
    printf("2. an fd handler on a socketpair\n");
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    CHECK_OK(tornado_loop_add_handler(loop, sv[0], TORNADO_READ, on_readable, NULL));
    const char *msg = "ping through the host's poll";
    CHECK(write(sv[1], msg, strlen(msg)) == (ssize_t)strlen(msg), "write");
    long wake0 = host_wakeups;
    while (fd_len < strlen(msg) && !example_safety_fired) host_iteration();
    fd_got[fd_len] = '\0';
    CHECK(strcmp(fd_got, msg) == 0, "handler read '%s'", fd_got);
    CHECK(host_wakeups > wake0, "poll() never saw the backend fd readable");
    CHECK_OK(tornado_loop_remove_handler(loop, sv[0]));
    close(sv[0]);
    close(sv[1]);
    printf("  handler read \"%s\"\nok: the backend fd became readable and run_once called the handler\n", fd_got);

    /* ---- 3 ---- */
    printf("3. tornado_loop_add_callback from another thread\n");
    /* let the loop finish what is due now (e.g. releasing the removed handler) */
    for (int i = 0; i < 10 && tornado_loop_backend_timeout(loop) == 0.0; i++) host_iteration();
    to = tornado_loop_backend_timeout(loop);
    printf("  backend_timeout = %.0f ms (only the safety timer is left): the host will sleep in poll()\n",
           to * 1e3);
    CHECK(to > 1.0, "expected a long timeout, got %f", to);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, thread_main, NULL) == 0, "pthread_create");
    double slept = 0;
    while (!cb_ran && !example_safety_fired) slept = host_iteration();
    CHECK(pthread_join(th, NULL) == 0, "pthread_join");
    CHECK_OK(thread_add_rc);
    CHECK(cb_ran == 1, "the callback ran %d times", cb_ran);
    CHECK(cb_on_main_thread, "the callback ran on the wrong thread");
    double delay = cb_ran_at - thread_sent_at;
    printf("  the host's poll() slept %.1f ms; the callback ran %.2f ms after add_callback\n", slept * 1e3,
           delay * 1e3);
    CHECK(delay < 0.100, "the host was woken %.0f ms late", delay * 1e3);
    printf("ok: a callback added from another thread woke the host promptly\n");
    CHECK(thread_wrong_rc == TORNADO_ERR_WRONG_THREAD, "remove_timeout from another thread gave %s",
          tornado_code_name(thread_wrong_rc));
    CHECK(thread_call_later_id == 0, "call_later from another thread was accepted");
    printf("ok: remove_timeout / call_later from another thread were refused (%s)\n",
           tornado_code_name(thread_wrong_rc));

    example_disarm_safety(loop, safety);
    for (int i = 0; i < 10 && tornado_loop_backend_timeout(loop) == 0.0; i++) host_iteration();
    CHECK(tornado_loop_backend_timeout(loop) == -1.0, "nothing is left: expected -1, got %f",
          tornado_loop_backend_timeout(loop));
    CHECK_OK(tornado_loop_free(loop));
    printf("embed: all checks passed (%ld host iterations)\n", host_polls);
    return 0;
}
