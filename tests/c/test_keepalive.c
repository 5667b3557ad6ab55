/* test_keepalive.c: issue 12 #13. N fetches queued at once to one origin
 * whose server keeps connections open, at max_clients C with
 * max_idle_per_host left at its default, open at most C connections: a
 * finished fetch's connection is pooled (the default keeps max_clients per
 * origin) before the next queued fetch looks for one. The server
 * (tests/c_programs.rs, TORNADO_TEST_KEEPALIVE) answers /connections with
 * how many connections it has accepted. */
#include "tap.h"

static tornado_loop *loop;
static const char *base;
static int done_count, ok_count;
static char count_body[32];

static void on_done(const tornado_http_response *r, void *ud) {
    (void)ud;
    done_count++;
    if (tornado_http_response_code(r) == 200) ok_count++;
}

static void on_count(const tornado_http_response *r, void *ud) {
    (void)ud;
    size_t len = 0;
    const uint8_t *body = tornado_http_response_body(r, &len);
    if (len >= sizeof count_body) len = sizeof count_body - 1;
    if (body) memcpy(count_body, body, len);
    count_body[len] = 0;
    done_count++;
}

static int run_until(int n) {
    for (int i = 0; i < 20000 && done_count < n; i++) tornado_loop_run_once(loop, 0.05);
    return done_count >= n;
}

/* Connections the server accepted so far (fetched on `c`'s pool). */
static long server_connections(tornado_http_client *c) {
    char url[256];
    snprintf(url, sizeof url, "%s/connections", base);
    tornado_http_request *r = tornado_http_request_new(url);
    done_count = 0;
    count_body[0] = 0;
    CHECK_OK(tornado_http_client_fetch_cb(c, r, on_count, NULL), "fetch /connections");
    CHECK(run_until(1), "/connections answered");
    tornado_http_request_free(r);
    return atol(count_body);
}

static void burst(size_t max_clients, int n) {
    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK_OK(tornado_http_client_options_set_max_clients(o, max_clients), "max_clients %zu", max_clients);
    tornado_http_client *c = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    CHECK(c != NULL, "client");
    /* Opens the first connection (counted in `before`) and pools it. */
    long before = server_connections(c);
    char url[256];
    snprintf(url, sizeof url, "%s/n", base);
    tornado_http_request *r = tornado_http_request_new(url);
    done_count = ok_count = 0;
    int queued = 1;
    for (int i = 0; i < n; i++) queued &= tornado_http_client_fetch_cb(c, r, on_done, NULL) == TORNADO_OK;
    CHECK(queued, "%d fetches queued at once", n);
    CHECK(run_until(n) && ok_count == n, "all %d fetches answered 200 (%d)", ok_count, n);
    long after = server_connections(c);
    long opened = after - before + 1;
    CHECK(opened >= 1 && opened <= (long)max_clients, "%d fetches at max_clients %zu opened %ld connections", n,
          max_clients, opened);
    CHECK(tornado_http_client_idle_connections(c) <= max_clients, "at most max_clients pooled (%zu)",
          tornado_http_client_idle_connections(c));
    tornado_http_request_free(r);
    CHECK_OK(tornado_http_client_free(c), "client_free");
}

int main(void) {
    tap_init("test_keepalive");
    base = getenv("TORNADO_TEST_KEEPALIVE");
    if (!base) {
        printf("# run through tests/c_programs.rs, which starts the server\n");
        return 2;
    }
    loop = tornado_loop_new();
    tap_section("600 fetches queued at once, max_clients 16");
    burst(16, 600);
    tap_section("600 fetches queued at once, max_clients 64");
    burst(64, 600);
    tornado_loop_run_once(loop, 0);
    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
