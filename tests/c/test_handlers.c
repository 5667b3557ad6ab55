/* test_handlers.c: fd handlers: READ/WRITE/ERROR, level-triggered
 * re-delivery, ERROR (hang-up) reported unasked, removal during dispatch,
 * EXISTS / NOT_FOUND / BAD_FD / INVALID, update_handler, drop functions,
 * fd numbers reused after removal. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "tap.h"

static tornado_loop *loop;

static void make_pipe(int p[2]) {
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        perror("pipe2");
        exit(2);
    }
}

static void drain(int fd) {
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

static int fd_open(int fd) {
    return fcntl(fd, F_GETFD) != -1;
}

/* ---- a recording handler ---- */
typedef struct {
    int calls;
    int fd_seen;
    uint32_t events;     /* events of the last call */
    uint32_t all_events; /* union of all calls */
    int read_per_call;   /* bytes to read per call (0: leave data unread) */
    int remove_self_on_error;
    int stop_at; /* stop the loop when calls reaches this */
    int drops;
    int calls_at_drop;
} rec;

static void rec_handler(int fd, uint32_t events, void *ud) {
    rec *r = ud;
    r->calls++;
    r->fd_seen = fd;
    r->events = events;
    r->all_events |= events;
    if (r->read_per_call > 0 && (events & TORNADO_READ)) {
        char buf[64];
        int n = r->read_per_call < 64 ? r->read_per_call : 64;
        if (read(fd, buf, (size_t)n) < 0 && errno != EAGAIN) r->calls += 1000;
    }
    if (r->stop_at && r->calls == r->stop_at) tornado_loop_stop(loop);
    if (r->remove_self_on_error && (events & TORNADO_ERROR)) {
        CHECK_OK(tornado_loop_remove_handler(loop, fd), "handler removes itself on ERROR");
    }
}

static void rec_drop(void *ud) {
    rec *r = ud;
    r->drops++;
    r->calls_at_drop = r->calls;
}

/* ---- two handlers that remove each other ---- */
typedef struct {
    int fd;
    int other_fd;
    int calls;
    int drops;
} pair_h;
static int pair_calls_this_iteration;

static void pair_handler(int fd, uint32_t events, void *ud) {
    (void)events;
    pair_h *h = ud;
    h->calls++;
    pair_calls_this_iteration++;
    CHECK(fd == h->fd, "pair handler got its own fd");
    /* remove the other one; it must not be called in this iteration */
    tornado_code rc = tornado_loop_remove_handler(loop, h->other_fd);
    (void)rc; /* OK the first time, NOT_FOUND afterwards */
}

static void pair_drop(void *ud) {
    ((pair_h *)ud)->drops++;
}

int main(void) {
    tap_init("test_handlers");
    loop = tornado_loop_new();
    CHECK(loop != NULL, "loop_new");
    if (!loop) return tap_done();

    tap_section("READ: called with fd, events and userdata");
    {
        int p[2];
        make_pipe(p);
        rec r;
        memset(&r, 0, sizeof r);
        r.read_per_call = 1;
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, rec_handler, &r), "add_handler(READ)");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once with nothing to read");
        CHECK(r.calls == 0, "not called while the pipe is empty");
        CHECK(write(p[1], "abc", 3) == 3, "write 3 bytes");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 1, "called once");
        CHECK(r.fd_seen == p[0], "with its fd");
        CHECK(r.events & TORNADO_READ, "with READ set (events=%u)", r.events);
        CHECK((r.events & ~(uint32_t)(TORNADO_READ | TORNADO_WRITE | TORNADO_ERROR)) == 0, "no unknown bits");

        tap_section("level-triggered: unread data is reported again");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once #2");
        CHECK(r.calls == 2, "called again: 2 bytes still unread (%d)", r.calls);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once #3");
        CHECK(r.calls == 3, "called again: 1 byte still unread (%d)", r.calls);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once #4");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once #5");
        CHECK(r.calls == 3, "not called once everything was read (%d)", r.calls);

        r.read_per_call = 0;
        CHECK(write(p[1], "x", 1) == 1, "write 1 byte, never read");
        for (int i = 0; i < 5; i++) tornado_loop_run_once(loop, 0);
        CHECK(r.calls == 8, "a handler that reads nothing is called on every iteration (%d/8)", r.calls);
        /* through start() as well: still re-delivered, loop does not stall */
        int before = r.calls;
        r.stop_at = before + 3; /* the handler stops the loop on its third call */
        uint64_t safety = tornado_loop_call_later(loop, 3.0, tap_stop_cb, loop);
        CHECK(safety != 0, "safety stop in 3 s");
        double t0 = tap_now();
        CHECK_OK(tornado_loop_start(loop), "start");
        double dt = tap_now() - t0;
        CHECK(r.calls == before + 3, "re-delivered on consecutive iterations of start() (%d more)", r.calls - before);
        CHECK(dt < 2.5, "without waiting for the safety timer (%.1f ms)", dt * 1e3);
        r.stop_at = 0;
        tornado_loop_remove_timeout(loop, safety);
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "remove_handler");
        before = r.calls;
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == before, "removed handler not called");
        CHECK(fd_open(p[0]), "remove_handler does not close the fd");
        drain(p[0]);
        close(p[0]);
        close(p[1]);
    }

    tap_section("WRITE and update_handler");
    {
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
        rec r;
        memset(&r, 0, sizeof r);
        CHECK_OK(tornado_loop_add_handler(loop, sv[0], TORNADO_WRITE, rec_handler, &r), "add_handler(WRITE)");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 1 && (r.events & TORNADO_WRITE), "writable socket: called with WRITE");
        CHECK(!(r.events & TORNADO_READ), "no READ on an empty socket");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 2, "still writable: called again (level-triggered)");
        CHECK_OK(tornado_loop_update_handler(loop, sv[0], TORNADO_READ), "update_handler(READ)");
        int before = r.calls;
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == before, "READ only, nothing to read: not called");
        CHECK(write(sv[1], "hi", 2) == 2, "peer writes");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == before + 1 && (r.events & TORNADO_READ) && !(r.events & TORNADO_WRITE),
              "called with READ only (events=%u)", r.events);
        drain(sv[0]);
        CHECK_OK(tornado_loop_update_handler(loop, sv[0], TORNADO_READ | TORNADO_WRITE), "update_handler(READ|WRITE)");
        CHECK(write(sv[1], "yo", 2) == 2, "peer writes");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK((r.events & (TORNADO_READ | TORNADO_WRITE)) == (TORNADO_READ | TORNADO_WRITE),
              "called with READ|WRITE (events=%u)", r.events);
        CHECK_FAIL(tornado_loop_update_handler(loop, sv[0], 2), TORNADO_ERR_INVALID, "update_handler(events=2) -> INVALID");
        CHECK_FAIL(tornado_loop_update_handler(loop, sv[0], 0x100), TORNADO_ERR_INVALID, "update_handler(0x100) -> INVALID");
        CHECK_FAIL(tornado_loop_update_handler(loop, sv[1], TORNADO_READ), TORNADO_ERR_NOT_FOUND,
                   "update_handler on an fd without handler -> NOT_FOUND");
        CHECK_OK(tornado_loop_remove_handler(loop, sv[0]), "remove");
        CHECK_FAIL(tornado_loop_update_handler(loop, sv[0], TORNADO_READ), TORNADO_ERR_NOT_FOUND,
                   "update_handler after remove -> NOT_FOUND");
        close(sv[0]);
        close(sv[1]);
    }

    tap_section("ERROR (hang-up) is reported although not asked for");
    {
        int p[2];
        make_pipe(p);
        rec r;
        memset(&r, 0, sizeof r);
        r.remove_self_on_error = 1;
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, rec_handler, &r), "add_handler(READ) on pipe");
        close(p[1]);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 1, "called after the writer closed (%d)", r.calls);
        CHECK(r.events & TORNADO_ERROR, "with ERROR (events=%u)", r.events);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 1, "not called after it removed itself");
        CHECK_FAIL(tornado_loop_remove_handler(loop, p[0]), TORNADO_ERR_NOT_FOUND, "already removed -> NOT_FOUND");
        close(p[0]);

        /* registered for WRITE only, on the read end of a pipe: only the hang-up can wake it */
        make_pipe(p);
        memset(&r, 0, sizeof r);
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_WRITE, rec_handler, &r), "add_handler(WRITE) on a read end");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 0, "a pipe read end is never writable: not called");
        close(p[1]);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 1 && (r.events & TORNADO_ERROR), "hang-up reported as ERROR (calls=%d events=%u)", r.calls,
              r.events);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 2, "the hang-up is level-triggered too (%d)", r.calls);
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "remove");
        close(p[0]);

        /* socket peer closed, READ|WRITE: READ (EOF) and ERROR or at least READ */
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
        memset(&r, 0, sizeof r);
        CHECK_OK(tornado_loop_add_handler(loop, sv[0], TORNADO_READ, rec_handler, &r), "add_handler(READ) on a socket");
        close(sv[1]);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 1 && (r.events & (TORNADO_READ | TORNADO_ERROR)), "peer close reported (events=%u)", r.events);
        CHECK_OK(tornado_loop_remove_handler(loop, sv[0]), "remove");
        close(sv[0]);
    }

    tap_section("a handler removed by another handler in the same iteration is not called");
    {
        int a[2], b[2];
        make_pipe(a);
        make_pipe(b);
        pair_h ha = {a[0], b[0], 0, 0}, hb = {b[0], a[0], 0, 0};
        CHECK_OK(tornado_loop_add_handler_full(loop, a[0], TORNADO_READ, pair_handler, &ha, pair_drop), "add a");
        CHECK_OK(tornado_loop_add_handler_full(loop, b[0], TORNADO_READ, pair_handler, &hb, pair_drop), "add b");
        CHECK(write(a[1], "1", 1) == 1 && write(b[1], "1", 1) == 1, "both readable");
        pair_calls_this_iteration = 0;
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(pair_calls_this_iteration == 1, "exactly one of the two ran (%d)", pair_calls_this_iteration);
        pair_h *survivor = ha.calls ? &ha : &hb;
        pair_h *victim = ha.calls ? &hb : &ha;
        CHECK(victim->calls == 0, "the removed one was not called");
        pair_calls_this_iteration = 0;
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(survivor->calls == 3 && victim->calls == 0, "survivor re-called (level), victim never (%d, %d)",
              survivor->calls, victim->calls);
        CHECK(victim->drops == 1, "the removed handler's drop ran once (%d)", victim->drops);
        CHECK(survivor->drops == 0, "the survivor's drop has not run");
        CHECK(fd_open(victim->fd), "removed fd still open");
        CHECK_OK(tornado_loop_remove_handler(loop, survivor->fd), "remove survivor");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(survivor->drops == 1 && victim->drops == 1, "each drop exactly once");
        for (int i = 0; i < 2; i++) {
            close(a[i]);
            close(b[i]);
        }
    }

    tap_section("a handler removing itself; drop after it returns");
    {
        int p[2];
        make_pipe(p);
        rec r;
        memset(&r, 0, sizeof r);
        r.remove_self_on_error = 1;
        r.calls_at_drop = -1;
        CHECK_OK(tornado_loop_add_handler_full(loop, p[0], TORNADO_READ, rec_handler, &r, rec_drop), "add_handler_full");
        close(p[1]);
        for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0);
        CHECK(r.calls == 1, "called once");
        CHECK(r.drops == 1 && r.calls_at_drop == 1, "drop ran once, after the call");
        close(p[0]);
    }

    tap_section("EXISTS / NOT_FOUND");
    {
        int p[2];
        make_pipe(p);
        rec r, r2;
        memset(&r, 0, sizeof r);
        memset(&r2, 0, sizeof r2);
        int drops = 0;
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, rec_handler, &r), "add");
        CHECK_FAIL(tornado_loop_add_handler(loop, p[0], TORNADO_READ, rec_handler, &r2), TORNADO_ERR_EXISTS,
                   "add the same fd again -> EXISTS");
        CHECK_FAIL(tornado_loop_add_handler_full(loop, p[0], TORNADO_WRITE, rec_handler, &drops, tap_count_drop),
                   TORNADO_ERR_EXISTS, "add_handler_full on a registered fd -> EXISTS");
        CHECK(drops == 0, "a refused registration's drop is never called");
        CHECK(write(p[1], "z", 1) == 1, "write");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 1 && r2.calls == 0, "the first handler is still the one called");
        CHECK_FAIL(tornado_loop_remove_handler(loop, p[1]), TORNADO_ERR_NOT_FOUND, "remove unregistered fd -> NOT_FOUND");
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "remove");
        CHECK_FAIL(tornado_loop_remove_handler(loop, p[0]), TORNADO_ERR_NOT_FOUND, "remove twice -> NOT_FOUND");
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, rec_handler, &r2), "re-add after remove");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r2.calls == 1, "the new handler is called");
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "remove");
        CHECK(drops == 0, "still no drop");
        close(p[0]);
        close(p[1]);
    }

    tap_section("bad fds and event bits");
    {
        rec r;
        memset(&r, 0, sizeof r);
        int p[2];
        make_pipe(p);
        int closed_fd = p[0];
        close(p[0]);
        close(p[1]);
        CHECK_FAIL(tornado_loop_add_handler(loop, closed_fd, TORNADO_READ, rec_handler, &r), TORNADO_ERR_BAD_FD,
                   "closed fd -> BAD_FD");
        CHECK_FAIL(tornado_loop_add_handler(loop, -1, TORNADO_READ, rec_handler, &r), TORNADO_ERR_BAD_FD, "fd -1 -> BAD_FD");
        CHECK_FAIL(tornado_loop_add_handler(loop, 1 << 20, TORNADO_READ, rec_handler, &r), TORNADO_ERR_BAD_FD,
                   "fd 2^20 (not open) -> BAD_FD");
        FILE *tmp = tmpfile();
        CHECK(tmp != NULL, "tmpfile");
        if (tmp) {
            CHECK_FAIL(tornado_loop_add_handler(loop, fileno(tmp), TORNADO_READ, rec_handler, &r), TORNADO_ERR_BAD_FD,
                       "regular file (epoll cannot watch it) -> BAD_FD");
            CHECK(fd_open(fileno(tmp)), "the regular file's fd is untouched");
            fclose(tmp);
        }
        make_pipe(p);
        uint32_t bad[] = {0x2, 0x10, 0x100, 0x80000000u, 0xFFFFFFFFu, TORNADO_READ | 0x2};
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            CHECK_FAIL(tornado_loop_add_handler(loop, p[0], bad[i], rec_handler, &r), TORNADO_ERR_INVALID,
                       "events 0x%x -> INVALID", bad[i]);
        CHECK_FAIL(tornado_loop_add_handler(loop, p[0], TORNADO_READ, NULL, &r), TORNADO_ERR_INVALID, "NULL callback -> INVALID");
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ | TORNADO_ERROR, rec_handler, &r),
                 "READ|ERROR is accepted");
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "remove");
        CHECK(r.calls == 0, "never called");
        close(p[0]);
        close(p[1]);
    }

    tap_section("fd numbers are reused after remove_handler + close");
    {
        rec r;
        memset(&r, 0, sizeof r);
        int p[2];
        make_pipe(p);
        int num = p[0];
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, rec_handler, &r), "add");
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "remove");
        close(p[0]);
        close(p[1]);
        make_pipe(p);
        CHECK(p[0] == num, "(the kernel reused fd %d)", num);
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, rec_handler, &r), "add the reused fd number");
        CHECK(write(p[1], "q", 1) == 1, "write");
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == 1, "the new fd is watched");
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "remove");
        close(p[0]);
        close(p[1]);
    }

    tap_section("an fd closed while registered (caller error) does not crash");
    {
        rec r;
        memset(&r, 0, sizeof r);
        int p[2];
        make_pipe(p);
        int num = p[0];
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, rec_handler, &r), "add");
        close(p[0]);
        close(p[1]);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once with a closed registered fd");
        CHECK_OK(tornado_loop_remove_handler(loop, num), "remove_handler on the closed fd still removes it -> OK");
        CHECK_CODE(tornado_loop_remove_handler(loop, num), TORNADO_ERR_NOT_FOUND, "and it is gone");
        make_pipe(p);
        /* POSIX: a new fd takes the lowest free number, the one just closed. */
        CHECK(p[0] == num, "the new pipe reuses fd %d (%d)", num, p[0]);
        CHECK_OK(tornado_loop_add_handler(loop, p[0], TORNADO_READ, rec_handler, &r),
                 "the fd number can be registered again");
        CHECK(write(p[1], "q", 1) == 1, "write");
        int before = r.calls;
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        CHECK(r.calls == before + 1, "and is watched");
        CHECK_OK(tornado_loop_remove_handler(loop, p[0]), "remove");
        close(p[0]);
        close(p[1]);
    }

    tap_section("many fds");
    {
        enum { N = 64 };
        int pipes[N][2];
        rec recs[N];
        memset(recs, 0, sizeof recs);
        int added = 0;
        for (int i = 0; i < N; i++) {
            make_pipe(pipes[i]);
            recs[i].read_per_call = 64;
            added += tornado_loop_add_handler(loop, pipes[i][0], TORNADO_READ, rec_handler, &recs[i]) == TORNADO_OK;
        }
        CHECK(added == N, "%d handlers added", N);
        for (int i = 0; i < N; i += 2) (void)!write(pipes[i][1], "m", 1);
        CHECK_OK(tornado_loop_run_once(loop, 0), "run_once");
        int right = 1;
        for (int i = 0; i < N; i++) right &= recs[i].calls == (i % 2 == 0 ? 1 : 0);
        CHECK(right, "exactly the readable half was called, once each");
        int removed = 0;
        for (int i = 0; i < N; i++) {
            removed += tornado_loop_remove_handler(loop, pipes[i][0]) == TORNADO_OK;
            close(pipes[i][0]);
            close(pipes[i][1]);
        }
        CHECK(removed == N, "all removed");
    }

    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
