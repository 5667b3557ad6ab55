/* bench.c: tornado_rs's side of shared/bench/WORKLOADS.md, loop workloads.
 *
 * Usage: bench W1|W1x|W2|W3|W3b [N] [IDLE_FDS]
 *        bench W4s-c1|W4s-c64|W4b-c4|W5|W8-tls12|W8-tls13 URL [N]
 *        bench W7-rt ws://URL [N] | W7-stream ws://URL [SECONDS]   (bench_ws.h)
 *   W1   add_callback chain, N = 5,000,000
 *   W1x  add_callback from a second thread, N = 1,000,000
 *   W2   N = 1,000,000 timers at xorshift64 delays, odd ones removed, 500,000 fire
 *   W3   1-byte ping-pong over a socketpair with READ handlers, N = 200,000 round trips
 *   W3b  W3 beside IDLE_FDS = 10,000 idle registered fds (both ends of 5,000 socketpairs)
 *   W4s-c1   N = 5,000 GETs of URL (/small, 200 bytes), one at a time
 *   W4s-c64  N = 20,000 GETs, 64 in flight
 *   W4b-c4   N = 200 GETs of /big (1 MiB), 4 in flight
 *   W5       10,000 GETs all at once from the slow server (200 bytes after 2 s)
 *   W8-tls12, W8-tls13  N = 500 GETs of URL (/small), one at a time, each on a
 *            fresh connection with a full TLS handshake verified against
 *            the CA in $BENCH_CA_FILE alone
 *   SOAK     N = 1,000,000 keep-alive GETs of /small in a row: RSS sampled
 *            every N/20 (must stay flat), open fds counted before and after
 * The third argument counts idle fds, as in the anchors (uv_bench, ev_bench,
 * tornado_bench.py). Prints one JSON line; exits non-zero unless the work was
 * done exactly. The measured phase is the same as the anchors': see bench_util.h.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "tornado_rs.h"

static tornado_loop *loop;
static long target, count;

static void die_lib(const char *what, tornado_code rc) {
    const char *msg = tornado_last_error();
    if (rc < 0) /* a constructor or id-returning call: no code */
        fprintf(stderr, "bench: %s failed: %s\n", what, msg ? msg : "(no message)");
    else
        fprintf(stderr, "bench: %s failed: %s: %s\n", what, tornado_code_name(rc), msg ? msg : "(no message)");
    exit(2);
}

static void die_sys(const char *what) {
    fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
    exit(2);
}

#define LIB(call)                                         \
    do {                                                  \
        tornado_code lib_rc_ = (call);                    \
        if (lib_rc_ != TORNADO_OK) die_lib(#call, lib_rc_); \
    } while (0)

static void free_loop(void) { LIB(tornado_loop_free(loop)); }

#include "bench_ws.h"

/* ---- W1: one callback re-adding itself through add_callback ---- */
static void w1_cb(void *ud) {
    (void)ud;
    if (++count < target) {
        tornado_code rc = tornado_loop_add_callback(loop, w1_cb, NULL);
        if (rc != TORNADO_OK) die_lib("add_callback", rc);
    } else {
        tornado_loop_stop(loop);
    }
}

static int run_w1(long n) {
    bu_phase ph;
    target = n;
    bu_start(&ph);
    LIB(tornado_loop_add_callback(loop, w1_cb, NULL));
    LIB(tornado_loop_start(loop));
    bu_stop(&ph);
    bu_emit("W1", n, &ph, 1, NULL);
    free_loop();
    return count == n ? 0 : 1;
}

/* ---- W1x: a second thread calls add_callback N times ---- */
static void w1x_cb(void *ud) {
    (void)ud;
    if (++count == target) tornado_loop_stop(loop);
}

static void *w1x_producer(void *arg) {
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        tornado_code rc = tornado_loop_add_callback(loop, w1x_cb, NULL);
        if (rc != TORNADO_OK) die_lib("add_callback from a thread", rc);
    }
    return NULL;
}

static int run_w1x(long n) {
    bu_phase ph;
    pthread_t th;
    target = n;
    bu_start(&ph);
    if (pthread_create(&th, NULL, w1x_producer, &n) != 0) die_sys("pthread_create");
    LIB(tornado_loop_start(loop));
    bu_stop(&ph);
    pthread_join(th, NULL);
    bu_emit("W1x", n, &ph, 1, NULL);
    free_loop();
    return count == n ? 0 : 1;
}

/* ---- W2: N timers, remove the odd ones, run until the rest have fired ---- */
static long fired, expect_fired;
static int guard_hit;

static void w2_cb(void *ud) {
    (void)ud;
    if (++fired == expect_fired) tornado_loop_stop(loop);
}

static void w2_guard(void *ud) { /* never wait forever if a timer is lost */
    (void)ud;
    guard_hit = 1;
    tornado_loop_stop(loop);
}

static int run_w2(long n) {
    uint64_t *ids = malloc(sizeof *ids * (size_t)n);
    uint64_t rng = 42;
    bu_phase ph;
    if (!ids) die_sys("malloc");
    expect_fired = n - n / 2;
    bu_start(&ph);
    for (long i = 0; i < n; i++) {
        uint64_t delay_ms = bu_xorshift64(&rng) % 1000;
        ids[i] = tornado_loop_call_later(loop, (double)delay_ms / 1000.0, w2_cb, NULL);
        if (ids[i] == 0) die_lib("call_later", -1);
    }
    for (long i = 1; i < n; i += 2) LIB(tornado_loop_remove_timeout(loop, ids[i])); /* the odd ones */
    uint64_t guard = tornado_loop_call_later(loop, 120.0, w2_guard, NULL);
    if (guard == 0) die_lib("call_later(guard)", -1);
    LIB(tornado_loop_start(loop));
    bu_stop(&ph);
    if (!guard_hit) LIB(tornado_loop_remove_timeout(loop, guard));
    bu_emit("W2", n, &ph, 0, ",\"fired\":%ld", fired);
    if (guard_hit) fprintf(stderr, "bench: W2: only %ld of %ld timers fired within 120 s\n", fired, expect_fired);
    free(ids);
    free_loop();
    return fired == expect_fired && !guard_hit ? 0 : 1;
}

/* ---- W3 / W3b: 1-byte ping-pong over a socketpair ---- */
static int read1(int fd) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r == 1) return 1;
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (r == 0) errno = EPIPE;
    die_sys("read");
    return 0;
}

static void write1(int fd) {
    char c = 'x';
    if (write(fd, &c, 1) != 1) die_sys("write");
}

static void on_b(int fd, uint32_t events, void *ud) {
    (void)events;
    (void)ud;
    if (read1(fd)) write1(fd);
}

static void on_a(int fd, uint32_t events, void *ud) {
    (void)events;
    (void)ud;
    if (!read1(fd)) return;
    if (++count < target)
        write1(fd);
    else
        tornado_loop_stop(loop);
}

static void idle_fd_cb(int fd, uint32_t events, void *ud) {
    (void)ud;
    fprintf(stderr, "bench: idle fd %d fired (events %u)\n", fd, events);
    exit(1);
}

static void make_pair(int sv[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) die_sys("socketpair");
}

static int run_w3(const char *name, long n, long idle) {
    int sv[2];
    bu_phase ph;
    int *idle_fds = malloc(sizeof *idle_fds * (size_t)(idle + 1));
    if (!idle_fds) die_sys("malloc");
    target = n;
    /* idle fds: both ends of idle/2 socketpairs, each registered for read (outside the phase) */
    for (long i = 0; i < idle; i += 2) {
        make_pair(sv);
        for (int k = 0; k < 2; k++) {
            if (i + k < idle) {
                idle_fds[i + k] = sv[k];
                LIB(tornado_loop_add_handler(loop, sv[k], TORNADO_READ, idle_fd_cb, NULL));
            } else {
                close(sv[k]);
            }
        }
    }
    make_pair(sv);
    int fa = sv[0], fb = sv[1];
    LIB(tornado_loop_add_handler(loop, fa, TORNADO_READ, on_a, NULL));
    LIB(tornado_loop_add_handler(loop, fb, TORNADO_READ, on_b, NULL));
    /* one non-blocking iteration before the clock, as the C anchors do */
    LIB(tornado_loop_run_once(loop, 0));
    bu_start(&ph);
    write1(fa);
    LIB(tornado_loop_start(loop));
    bu_stop(&ph);
    if (idle)
        bu_emit(name, n, &ph, 1, ",\"idle_fds\":%ld", idle);
    else
        bu_emit(name, n, &ph, 1, NULL);
    free_loop(); /* releases the handlers; the fds are ours */
    for (long i = 0; i < idle; i++) close(idle_fds[i]);
    free(idle_fds);
    close(fa);
    close(fb);
    return count == n ? 0 : 1;
}

/* ---- W4/W5: HTTP fetches with C in flight, through tornado_http_client_fetch_cb ---- */
static tornado_http_client *http;
static tornado_http_request *http_req;
static long http_started, http_done, http_errors, http_inflight_target;
static size_t http_expect_len;

static void http_fetched(const tornado_http_response *r, void *ud);
static tornado_http_fetch_fn http_done_cb = http_fetched; /* W8 counts handshakes first */
static void soak_fetched(const tornado_http_response *r, void *ud);
static long soak_every; /* SOAK only: sample RSS every this many fetches */

/* How bodies are taken. BENCH_BODY=stream: a streaming callback counts
 * their bytes, as the libcurl anchor's write callback does (and h2load);
 * BENCH_BODY=buffer: they are kept in the response, as Tornado keeps them.
 * Unset: as the workload's anchors take them. W6, W6-h1 and W6b are
 * measured against libcurl and h2load only (Tornado has no HTTP/2 client),
 * which count and keep nothing: streamed. W4, W5 and W8 have a Tornado
 * anchor, which keeps every body: buffered. Each fetch in flight has its
 * own counter, passed as userdata to both callbacks (a ring larger than
 * any concurrency used here). */
static int http_streaming;
static size_t http_counted[1024];

static int streams_bodies(const char *w) {
    const char *mode = getenv("BENCH_BODY");
    if (!mode || !*mode) return strncmp(w, "W6", 2) == 0;
    if (strcmp(mode, "stream") == 0) return 1;
    if (strcmp(mode, "buffer") == 0) return 0;
    fprintf(stderr, "bench: BENCH_BODY is stream or buffer, not '%s'\n", mode);
    exit(2);
}

static void count_chunk(const uint8_t *data, size_t len, void *ud) {
    (void)data;
    *(size_t *)ud += len;
}

static void http_start_one(void) {
    size_t *counter = &http_counted[http_started % 1024];
    http_started++;
    if (!http_streaming) {
        LIB(tornado_http_client_fetch_cb(http, http_req, http_done_cb, NULL));
        return;
    }
    *counter = 0;
    LIB(tornado_http_request_set_streaming_callback(http_req, count_chunk, counter, NULL));
    LIB(tornado_http_client_fetch_cb(http, http_req, http_done_cb, counter));
}

static void http_fetched(const tornado_http_response *r, void *ud) {
    size_t len = 0;
    tornado_http_response_body(r, &len);
    if (http_streaming) len = *(size_t *)ud;
    if (tornado_http_response_code(r) != 200 || len != http_expect_len) {
        if (http_errors++ < 3) {
            const char *e = tornado_http_response_error(r);
            fprintf(stderr, "bench: fetch %d, %zu bytes: %s\n", tornado_http_response_code(r), len, e ? e : "");
        }
    }
    http_done++;
    if (http_started < target && soak_every == 0) http_start_one();
    else if (http_started < target) {
        http_started++;
        LIB(tornado_http_client_fetch_cb(http, http_req, soak_fetched, NULL));
    }
    else if (http_done == target) tornado_loop_stop(loop);
}

/* ---- SOAK: N keep-alive fetches in a row; RSS sampled, fds counted ---- */
static long rss_kb(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int count_fds(void) {
    int n = 0;
    char path[64];
    for (int fd = 0; fd < 65536; fd++) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if (access(path, F_OK) == 0) n++;
    }
    return n;
}

static long soak_min_rss = -1, soak_max_rss;

static void soak_fetched(const tornado_http_response *r, void *ud) {
    http_fetched(r, ud);
    if (http_done % soak_every == 0) {
        long rss = rss_kb();
        if (http_done >= 2 * soak_every) { /* after warm-up */
            if (soak_min_rss < 0 || rss < soak_min_rss) soak_min_rss = rss;
            if (rss > soak_max_rss) soak_max_rss = rss;
        }
        fprintf(stderr, "soak: %ld fetches, rss %ld kB\n", http_done, rss);
    }
}

static int run_soak(const char *url, long n) {
    int fds_before = count_fds();
    http = tornado_http_client_new(loop, NULL);
    if (!http) die_lib("tornado_http_client_new", -1);
    http_req = tornado_http_request_new(url);
    target = n;
    http_expect_len = 200;
    soak_every = n / 20 > 0 ? n / 20 : 1;
    bu_phase ph;
    bu_start(&ph);
    http_started++;
    LIB(tornado_http_client_fetch_cb(http, http_req, soak_fetched, NULL));
    LIB(tornado_loop_start(loop));
    bu_stop(&ph);
    tornado_http_request_free(http_req);
    LIB(tornado_http_client_free(http));
    for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0);
    free_loop();
    int fds_after = count_fds();
    bu_emit("SOAK", n, &ph, 1, ",\"errors\":%ld,\"rss_min_kb\":%ld,\"rss_max_kb\":%ld,\"fds_before\":%d,\"fds_after\":%d",
            http_errors, soak_min_rss, soak_max_rss, fds_before, fds_after);
    /* before: with the loop's own fds; after: the loop is freed too */
    return http_errors == 0 && http_done == n && fds_after <= fds_before ? 0 : 1;
}

static int run_http(const char *w, const char *url, long n, long conc, size_t expect_len) {
    tornado_http_client_options *o = tornado_http_client_options_new();
    LIB(tornado_http_client_options_set_max_clients(o, (size_t)conc));
    LIB(tornado_http_client_options_set_max_idle_per_host(o, (size_t)conc));
    http = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    if (!http) die_lib("tornado_http_client_new", -1);
    http_req = tornado_http_request_new(url);
    if (!http_req) die_lib("tornado_http_request_new", -1);
    /* 60 s, as the anchors (Tornado's 20 s default fails part of W5 on a busy machine) */
    LIB(tornado_http_request_set_connect_timeout(http_req, 60));
    LIB(tornado_http_request_set_request_timeout(http_req, 60));
    target = n;
    http_expect_len = expect_len;
    http_inflight_target = conc < n ? conc : n;
    http_streaming = streams_bodies(w);
    bu_phase ph;
    bu_start(&ph);
    for (long i = 0; i < http_inflight_target; i++) http_start_one();
    LIB(tornado_loop_start(loop));
    bu_stop(&ph);
    double mib = (double)expect_len * (double)n / (1024.0 * 1024.0);
    bu_emit(w, n, &ph, 1, ",\"req_per_s\":%.1f,\"mb_per_s\":%.1f,\"errors\":%ld,\"concurrency\":%ld,\"body\":\"%s\"",
            (double)n / ph.wall_s, mib / ph.wall_s, http_errors, conc, http_streaming ? "stream" : "buffer");
    tornado_http_request_free(http_req);
    LIB(tornado_http_client_free(http));
    free_loop();
    return http_errors == 0 && http_done == n ? 0 : 1;
}

/* ---- W8: a full TLS handshake per GET ----
 * The HTTP client with no idle connections kept (max_idle_per_host 0), so
 * every fetch connects afresh; the request trusts $BENCH_CA_FILE only.
 * `connects` counts the fetches whose time_info shows a handshake of their
 * own (appconnect after connect; a reused connection has both at the end of
 * the queue wait). The HTTP response does not carry the TLS version and
 * cipher, so they, and `resumed`, come from one probe connection made
 * before the clock with the same settings (tornado_tcp_connect_tls with the
 * CA and ALPN http/1.1, the HTTP client's TLS options) and must be the
 * listener's version, a full handshake. */
static long w8_connects;

static void w8_fetched(const tornado_http_response *r, void *ud) {
    tornado_http_time_info ti;
    if (tornado_http_response_time_info(r, &ti) == TORNADO_OK && ti.appconnect > ti.connect) w8_connects++;
    http_fetched(r, ud);
}

static void w8_probe(const char *url, const char *ca, char *version, size_t vcap, char *cipher, size_t ccap,
                     int *resumed) {
    char host[256];
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t hl;
    const char *port_at;
    if (*p == '[') { /* [v6]:port */
        const char *end = strchr(p, ']');
        if (!end) die_lib("W8: bad URL", -1);
        hl = (size_t)(end - p - 1);
        memcpy(host, p + 1, hl < sizeof host ? hl : 0);
        port_at = end + 1;
    } else {
        hl = strcspn(p, ":/");
        memcpy(host, p, hl < sizeof host ? hl : 0);
        port_at = p + hl;
    }
    if (hl == 0 || hl >= sizeof host) die_lib("W8: bad URL host", -1);
    host[hl] = 0;
    long port = *port_at == ':' ? atol(port_at + 1) : 443;
    tornado_tls_options *o = tornado_tls_options_new();
    if (!o) die_lib("tornado_tls_options_new", -1);
    LIB(tornado_tls_options_set_ca_file(o, ca));
    LIB(tornado_tls_options_add_alpn(o, "http/1.1"));
    tornado_future *f = tornado_tcp_connect_tls(loop, host, (uint16_t)port, 60, o);
    tornado_tls_options_free(o);
    if (!f) die_lib("tornado_tcp_connect_tls", -1);
    LIB(tornado_loop_run_sync(loop, f, 60));
    tornado_iostream *s = tornado_iostream_ref(tornado_future_result(f));
    tornado_future_unref(f);
    tornado_iostream_tls_version(s, version, vcap);
    tornado_iostream_tls_cipher(s, cipher, ccap);
    *resumed = tornado_iostream_tls_resumed(s);
    tornado_iostream_unref(s);
    for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0);
}

static int run_w8(const char *w, const char *url, long n) {
    const char *ca = getenv("BENCH_CA_FILE");
    if (!ca || !*ca) {
        fprintf(stderr, "bench: %s needs BENCH_CA_FILE (the CA that signed the server's certificate)\n", w);
        return 2;
    }
    const char *want = strcmp(w, "W8-tls12") == 0 ? "TLSv1.2" : "TLSv1.3";
    char version[32] = "", cipher[96] = "";
    int resumed = -1;
    w8_probe(url, ca, version, sizeof version, cipher, sizeof cipher, &resumed);
    int tls_ok = strcmp(version, want) == 0 && resumed == 0;
    if (!tls_ok) fprintf(stderr, "bench: %s: the probe got %s (want %s), resumed %d\n", w, version, want, resumed);

    tornado_http_client_options *o = tornado_http_client_options_new();
    LIB(tornado_http_client_options_set_max_clients(o, 1));
    LIB(tornado_http_client_options_set_max_idle_per_host(o, 0)); /* no reuse: a fresh connection each */
    http = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    if (!http) die_lib("tornado_http_client_new", -1);
    http_req = tornado_http_request_new(url);
    if (!http_req) die_lib("tornado_http_request_new", -1);
    LIB(tornado_http_request_set_ca_certs(http_req, ca));
    LIB(tornado_http_request_set_validate_cert(http_req, true));
    LIB(tornado_http_request_set_connect_timeout(http_req, 60));
    LIB(tornado_http_request_set_request_timeout(http_req, 60));
    target = n;
    http_expect_len = 200;
    bu_phase ph;
    bu_start(&ph);
    http_done_cb = w8_fetched;
    http_start_one();
    LIB(tornado_loop_start(loop));
    bu_stop(&ph);
    int conn_ok = w8_connects == n;
    if (!conn_ok) fprintf(stderr, "bench: %s: %ld fresh handshakes for %ld fetches\n", w, w8_connects, n);
    long errors = http_errors + (n - http_done) + !conn_ok + !tls_ok;
    bu_emit(w, n, &ph, 1,
            ",\"req_per_s\":%.1f,\"errors\":%ld,\"concurrency\":1,\"connects\":%ld,\"http\":\"1.1\","
            "\"tls\":\"%s\",\"cipher\":\"%s\",\"resumed\":%d,\"tls_seen_by\":\"probe\"",
            (double)n / ph.wall_s, errors, w8_connects, version, cipher, resumed < 0 ? 0 : resumed);
    tornado_http_request_free(http_req);
    LIB(tornado_http_client_free(http));
    free_loop();
    return errors == 0 ? 0 : 1;
}

/* ---- W6, W6-h1, W6b: HTTP/2 and HTTP/1.1 over TLS (nginx :8091) ----
 * W6: N GETs of /small as HTTP/2 streams on one connection, C in flight
 * (TORNADO_HTTP_VERSION_2: ALPN h2; fetches racing to the origin wait for
 * its first connection). W6-h1: the same over HTTP/1.1 keep-alive
 * (TORNADO_HTTP_VERSION_1_1), C connections. W6b: 8 downloads of /big10m
 * at once on one HTTP/2 connection. Every response must be 200, of the
 * expected length and over the version asked for (else it counts as an
 * error); `connects` is the client's tornado_http_client_connections_opened
 * and must be the workload's. The TLS version comes from one probe
 * connection before the clock, as in W8. */
static int w6_want_version;
static long w6_wrong_version;

static void w6_fetched(const tornado_http_response *r, void *ud) {
    if (tornado_http_response_version(r) != w6_want_version && w6_wrong_version++ < 3)
        fprintf(stderr, "bench: a response over HTTP version %d, not %d\n", tornado_http_response_version(r),
                w6_want_version);
    http_fetched(r, ud);
}

static int run_w6(const char *w, const char *url, long n, long conc, size_t expect_len, int h2,
                  long want_connects) {
    const char *ca = getenv("BENCH_CA_FILE");
    if (!ca || !*ca) {
        fprintf(stderr, "bench: %s needs BENCH_CA_FILE (the CA that signed the server's certificate)\n", w);
        return 2;
    }
    char version[32] = "", cipher[96] = "";
    int resumed = -1;
    w8_probe(url, ca, version, sizeof version, cipher, sizeof cipher, &resumed);
    w6_want_version = h2 ? 20 : 11;
    tornado_http_client_options *o = tornado_http_client_options_new();
    LIB(tornado_http_client_options_set_max_clients(o, (size_t)conc));
    LIB(tornado_http_client_options_set_max_idle_per_host(o, (size_t)conc));
    LIB(tornado_http_client_options_set_http_version(o, h2 ? TORNADO_HTTP_VERSION_2 : TORNADO_HTTP_VERSION_1_1));
    http = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    if (!http) die_lib("tornado_http_client_new", -1);
    http_req = tornado_http_request_new(url);
    if (!http_req) die_lib("tornado_http_request_new", -1);
    LIB(tornado_http_request_set_ca_certs(http_req, ca));
    LIB(tornado_http_request_set_validate_cert(http_req, true));
    LIB(tornado_http_request_set_connect_timeout(http_req, 60));
    LIB(tornado_http_request_set_request_timeout(http_req, 60));
    target = n;
    http_expect_len = expect_len;
    http_inflight_target = conc < n ? conc : n;
    http_streaming = streams_bodies(w);
    http_done_cb = w6_fetched;
    bu_phase ph;
    bu_start(&ph);
    for (long i = 0; i < http_inflight_target; i++) http_start_one();
    LIB(tornado_loop_start(loop));
    bu_stop(&ph);
    long connects = (long)tornado_http_client_connections_opened(http);
    int conn_ok = connects == want_connects;
    if (!conn_ok) fprintf(stderr, "bench: %s: %ld connections, not %ld\n", w, connects, want_connects);
    long errors = http_errors + (n - http_done) + w6_wrong_version + !conn_ok;
    double mib = (double)expect_len * (double)n / (1024.0 * 1024.0);
    bu_emit(w, n, &ph, 1,
            ",\"req_per_s\":%.1f,\"mb_per_s\":%.1f,\"errors\":%ld,\"concurrency\":%ld,\"connects\":%ld,"
            "\"http\":\"%s\",\"tls\":\"%s\",\"tls_seen_by\":\"probe\",\"body\":\"%s\"",
            (double)n / ph.wall_s, mib / ph.wall_s, errors, conc, connects, h2 ? "2" : "1.1", version,
            http_streaming ? "stream" : "buffer");
    tornado_http_request_free(http_req);
    LIB(tornado_http_client_free(http));
    free_loop();
    return errors == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s W1|W1x|W2|W3|W3b [N] [IDLE_FDS]\n", argv[0]);
        return 2;
    }
    const char *w = argv[1];
    long n = argc > 2 && argv[1][1] != '4' && argv[1][1] != '5' && strcmp(argv[1], "SOAK") ? atol(argv[2]) : 0;
    long idle = argc > 3 ? atol(argv[3]) : 10000;
    if (n < 0 || idle < 0) {
        fprintf(stderr, "bench: N and IDLE_FDS must not be negative\n");
        return 2;
    }
    bu_raise_nofile();
    loop = tornado_loop_new();
    if (!loop) die_lib("tornado_loop_new", -1);
    if (!strcmp(w, "W1")) return run_w1(n ? n : 5000000);
    if (!strcmp(w, "W1x")) return run_w1x(n ? n : 1000000);
    if (!strcmp(w, "W2")) return run_w2(n ? n : 1000000);
    if (!strcmp(w, "W3")) return run_w3("W3", n ? n : 200000, 0);
    if (!strcmp(w, "W3b")) return run_w3("W3b", n ? n : 200000, idle);
    if (w[0] == 'W' && (w[1] == '4' || w[1] == '5')) {
        if (argc < 3) {
            fprintf(stderr, "usage: %s %s URL [N]\n", argv[0], w);
            return 2;
        }
        long hn = argc > 3 ? atol(argv[3]) : 0;
        if (!strcmp(w, "W4s-c1")) return run_http(w, argv[2], hn ? hn : 5000, 1, 200);
        if (!strcmp(w, "W4s-c64")) return run_http(w, argv[2], hn ? hn : 20000, 64, 200);
        if (!strcmp(w, "W4b-c4")) return run_http(w, argv[2], hn ? hn : 200, 4, 1048576);
        if (!strcmp(w, "W5")) return run_http(w, argv[2], hn ? hn : 10000, hn ? hn : 10000, 200);
    }
    if (!strcmp(w, "W8-tls12") || !strcmp(w, "W8-tls13")) {
        if (argc < 3) {
            fprintf(stderr, "usage: %s %s URL [N]\n", argv[0], w);
            return 2;
        }
        long hn = argc > 3 ? atol(argv[3]) : 0;
        return run_w8(w, argv[2], hn > 0 ? hn : 500);
    }
    if (!strcmp(w, "W6") || !strcmp(w, "W6-h1") || !strcmp(w, "W6b")) {
        if (argc < 3) {
            fprintf(stderr, "usage: %s %s URL [N]\n", argv[0], w);
            return 2;
        }
        long hn = argc > 3 ? atol(argv[3]) : 0;
        if (!strcmp(w, "W6")) return run_w6(w, argv[2], hn > 0 ? hn : 10000, 100, 200, 1, 1);
        if (!strcmp(w, "W6-h1")) return run_w6(w, argv[2], hn > 0 ? hn : 10000, 64, 200, 0, 64);
        return run_w6(w, argv[2], hn > 0 ? hn : 8, 8, 10485760, 1, 1);
    }
    if (!strcmp(w, "W7-rt") || !strcmp(w, "W7-stream")) {
        if (argc < 3) {
            fprintf(stderr, "usage: %s %s ws://URL [N|SECONDS]\n", argv[0], w);
            return 2;
        }
        return run_w7(w, argv[2], argc > 3 ? atof(argv[3]) : 0);
    }
    if (!strcmp(w, "SOAK")) {
        if (argc < 3) {
            fprintf(stderr, "usage: %s SOAK URL [N]\n", argv[0]);
            return 2;
        }
        return run_soak(argv[2], argc > 3 ? atol(argv[3]) : 1000000);
    }
    fprintf(stderr, "bench: unsupported workload %s\n", w);
    free_loop();
    return 2;
}
