/* test_http.c: the HTTP client through the C API, against the scripted
 * server that tests/c_programs.rs starts (its URL in TORNADO_TEST_HTTP):
 * both fetch forms, headers, bodies, redirects, callbacks and their drop
 * functions, request options, errors by kind, cancellation, freeing a busy
 * client, and bad input; and against its HTTPS server that asks for a
 * client certificate (TORNADO_TEST_MTLS_PORT, with the test CA and a client
 * certificate it signed in TORNADO_TEST_CA, _CLIENT_CERT, _CLIENT_KEY).
 *
 * Each section stands alone: it gets a client of its own (new_client) and
 * relies on nothing an earlier one did. `test_http NAME...` runs only the
 * sections named, `test_http --list` prints their names; tests/c_programs.rs
 * runs every section alone too. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

static tornado_loop *loop;
static const char *base;

static char *url_of(const char *path) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s%s", base, path);
    return buf;
}

/* Runs a fetch future to completion; the caller unrefs it. */
static tornado_future *fetch_sync(tornado_http_client *c, tornado_http_request *r) {
    tornado_future *f = tornado_http_client_fetch(c, r);
    CHECK(f != NULL, "fetch returned a future");
    if (f) {
        tornado_loop_run_sync(loop, f, 20); /* returns the future's own code */
        CHECK(tornado_future_done(f), "fetch finished");
    }
    return f;
}

static const tornado_http_response *response_of(tornado_future *f) {
    return f ? (const tornado_http_response *)tornado_future_result(f) : NULL;
}

/* ---- callbacks ---- */

typedef struct {
    size_t bytes;
    int chunks;
    int header_lines;
    int saw_status_line;
    int drops;
} counters_t;

static void on_chunk(const uint8_t *data, size_t len, void *ud) {
    counters_t *c = ud;
    (void)data;
    c->bytes += len;
    c->chunks++;
}

static void on_header(const char *line, size_t len, void *ud) {
    counters_t *c = ud;
    c->header_lines++;
    if (strncmp(line, "HTTP/1.1 200", 12) == 0) c->saw_status_line = 1;
    CHECK(strlen(line) == len && len >= 2 && line[len - 2] == '\r', "header lines end in CRLF");
}

static void count_drop(void *ud) {
    ((counters_t *)ud)->drops++;
}

typedef struct {
    int calls;
    int code;
    char error[256];
    char body[64];
} cb_result_t;

static void on_fetched(const tornado_http_response *r, void *ud) {
    cb_result_t *out = ud;
    out->calls++;
    out->code = tornado_http_response_code(r);
    const char *e = tornado_http_response_error(r);
    snprintf(out->error, sizeof out->error, "%s", e ? e : "");
    size_t n = 0;
    const uint8_t *b = tornado_http_response_body(r, &n);
    snprintf(out->body, sizeof out->body, "%.*s", (int)(n < 63 ? n : 63), b ? (const char *)b : "");
}

static int producer_left = 3;
static int64_t produce(uint8_t *buf, size_t cap, void *ud) {
    (void)ud;
    if (producer_left == 0) return 0;
    producer_left--;
    size_t n = cap < 1000 ? cap : 1000;
    memset(buf, 'p', n);
    return (int64_t)n;
}

/* ---- tests ---- */

static void test_get(tornado_http_client *c) {
    tap_section("GET with the future form");
    tornado_http_request *r = tornado_http_request_new(url_of("/hello"));
    CHECK_OK(tornado_http_request_add_header(r, "X-Test", "1"), "add_header");
    tornado_future *f = fetch_sync(c, r);
    const tornado_http_response *resp = response_of(f);
    CHECK(resp != NULL, "a response");
    if (resp) {
        CHECK(tornado_http_response_code(resp) == 200, "code 200 (%d)", tornado_http_response_code(resp));
        CHECK(strcmp(tornado_http_response_reason(resp), "OK") == 0, "reason OK");
        size_t n = 0;
        const uint8_t *body = tornado_http_response_body(resp, &n);
        CHECK(n == 5 && memcmp(body, "hello", 5) == 0, "body 'hello'");
        const char *v = tornado_http_response_header(resp, "x-REPLY");
        CHECK(v && strcmp(v, "yes") == 0, "case-insensitive header lookup");
        CHECK(tornado_http_response_header(resp, "X-Absent") == NULL, "absent header is NULL");
        size_t count = tornado_http_response_header_count(resp);
        CHECK(count >= 2, "header count (%zu)", count);
        const char *name = NULL, *value = NULL;
        CHECK_OK(tornado_http_response_header_at(resp, 0, &name, &value), "header_at(0)");
        CHECK(name && strcmp(name, "X-Reply") == 0, "names as received (%s)", name ? name : "NULL");
        CHECK_FAIL(tornado_http_response_header_at(resp, count, &name, &value), TORNADO_ERR_NOT_FOUND, "past the end");
        CHECK(strcmp(tornado_http_response_effective_url(resp), url_of("/hello")) == 0, "effective_url");
        CHECK(tornado_http_response_error(resp) == NULL, "no error");
        CHECK(tornado_http_response_error_code(resp) == TORNADO_OK, "error code OK");
        CHECK(tornado_http_response_request_time(resp) > 0, "request_time > 0");
        CHECK(tornado_http_response_start_time(resp) > 1.7e9, "start_time is a Unix time");
        tornado_http_time_info t;
        CHECK_OK(tornado_http_response_time_info(resp, &t), "time_info");
        CHECK(t.queue >= 0 && t.namelookup >= t.queue && t.connect >= t.namelookup && t.pretransfer >= t.connect &&
                  t.starttransfer >= t.pretransfer && t.total >= t.starttransfer && t.total > 0,
              "timings in order (queue %g, namelookup %g, connect %g, pretransfer %g, starttransfer %g, total %g)",
              t.queue, t.namelookup, t.connect, t.pretransfer, t.starttransfer, t.total);
        CHECK(t.appconnect == 0, "no TLS, no appconnect");
    }
    tornado_future_unref(f);
    tornado_http_request_free(r);
}

/* A fetch takes the request as it is when fetched: changing the request
 * afterwards (or freeing it) changes later fetches only. */
static void test_request_changed_after_fetch(tornado_http_client *c) {
    tap_section("a request changed or freed after fetch: the fetch keeps what it was given");
    tornado_http_request *r = tornado_http_request_new(url_of("/whoami"));
    cb_result_t first = {0}, second = {0}, third = {0};
    CHECK_OK(tornado_http_request_set_user_agent(r, "first"), "user agent 'first'");
    CHECK_OK(tornado_http_client_fetch_cb(c, r, on_fetched, &first), "fetch_cb #1");
    CHECK_OK(tornado_http_request_set_user_agent(r, "second"), "user agent 'second' while #1 is in flight");
    CHECK_OK(tornado_http_client_fetch_cb(c, r, on_fetched, &second), "fetch_cb #2");
    CHECK_OK(tornado_http_client_fetch_cb(c, r, on_fetched, &third), "fetch_cb #3");
    tornado_http_request_free(r); /* while all three are in flight */
    for (int i = 0; i < 400 && third.calls + second.calls + first.calls < 3; i++) tornado_loop_run_once(loop, 0.05);
    CHECK(first.calls == 1 && strcmp(first.body, "first -") == 0, "#1 sent the first value (%s)", first.body);
    CHECK(second.calls == 1 && strcmp(second.body, "second -") == 0, "#2 sent the second (%s)", second.body);
    CHECK(third.calls == 1 && strcmp(third.body, "second -") == 0, "#3 too, the request freed meanwhile (%s)",
          third.body);
}

static void test_post_and_redirect(tornado_http_client *c) {
    tap_section("POST body, redirects, 404 is a response");
    tornado_http_request *r = tornado_http_request_new(url_of("/echo"));
    CHECK_OK(tornado_http_request_set_method(r, "POST"), "set_method");
    CHECK_OK(tornado_http_request_set_body(r, (const uint8_t *)"abcdef", 6), "set_body");
    tornado_future *f = fetch_sync(c, r);
    size_t n = 0;
    const uint8_t *body = tornado_http_response_body(response_of(f), &n);
    CHECK(n == 8 && memcmp(body, "POST 6 -", 8) == 0, "server saw POST with 6 bytes (%.*s)", (int)n, body);
    tornado_future_unref(f);
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/redirect"));
    f = fetch_sync(c, r);
    CHECK(tornado_http_response_code(response_of(f)) == 200, "redirect followed");
    CHECK(strcmp(tornado_http_response_effective_url(response_of(f)), url_of("/hello")) == 0, "effective_url is the target");
    tornado_future_unref(f);
    CHECK_OK(tornado_http_request_set_follow_redirects(r, false), "set_follow_redirects");
    f = fetch_sync(c, r);
    CHECK(tornado_http_response_code(response_of(f)) == 302, "not followed: 302");
    tornado_future_unref(f);
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/missing"));
    f = fetch_sync(c, r);
    CHECK(tornado_future_error(f, NULL) == TORNADO_OK, "a 404 resolves the future");
    CHECK(tornado_http_response_code(response_of(f)) == 404, "code 404");
    tornado_future_unref(f);
    tornado_http_request_free(r);
}

/* Bodies of known length are read straight into their buffer, and a freed
 * response's buffer is reused by the next large body: each body must be
 * exactly its own bytes, never a previous body's leftovers. */
static void test_large_bodies(tornado_http_client *c) {
    tap_section("large bodies: read in place, buffers reused");
    static const char *const paths[] = {"/big", "/big2", "/big", "/big2"};
    static const size_t lens[] = {200000, 150000, 200000, 150000};
    static const char fills[] = {'b', 'c', 'b', 'c'};
    for (int i = 0; i < 4; i++) {
        tornado_http_request *r = tornado_http_request_new(url_of(paths[i]));
        tornado_future *f = fetch_sync(c, r);
        size_t n = 0;
        const uint8_t *b = tornado_http_response_body(response_of(f), &n);
        int exact = b != NULL && n == lens[i];
        for (size_t k = 0; exact && k < n; k++) exact = b[k] == (uint8_t)fills[i];
        CHECK(exact, "%s: %zu bytes of '%c' (got %zu)", paths[i], lens[i], fills[i], n);
        CHECK(((uintptr_t)b & 63) == 0, "%s: read in 64-byte aligned (%p)", paths[i], (const void *)b);
        tornado_future_unref(f);
        tornado_http_request_free(r);
    }
    CHECK(tornado_http_client_idle_connections(c) == 1, "one keep-alive connection served them all, pooled (%zu)",
          tornado_http_client_idle_connections(c));
}

static void test_callbacks(tornado_http_client *c) {
    tap_section("streaming and header callbacks, drop functions");
    counters_t counts = {0};
    tornado_http_request *r = tornado_http_request_new(url_of("/big"));
    CHECK_OK(tornado_http_request_set_streaming_callback(r, on_chunk, &counts, count_drop), "streaming callback");
    CHECK_OK(tornado_http_request_set_header_callback(r, on_header, &counts, count_drop), "header callback");
    tornado_future *f = fetch_sync(c, r);
    size_t n = 99;
    tornado_http_response_body(response_of(f), &n);
    CHECK(n == 0, "a streamed body is not buffered");
    CHECK(counts.bytes == 200000, "every byte streamed (%zu)", counts.bytes);
    CHECK(counts.chunks >= 1, "in chunks (%d)", counts.chunks);
    CHECK(counts.saw_status_line && counts.header_lines >= 3, "header lines, status line first");
    tornado_future_unref(f);
    CHECK(counts.drops == 0, "drops wait for the request");
    tornado_http_request_free(r);
    tornado_loop_run_once(loop, 0);
    CHECK(counts.drops == 2, "each drop function ran once (%d)", counts.drops);

    tap_section("chunked upload from a body producer");
    r = tornado_http_request_new(url_of("/echo"));
    tornado_http_request_set_method(r, "PUT");
    CHECK_OK(tornado_http_request_set_body_producer(r, produce, NULL, NULL), "set_body_producer");
    f = fetch_sync(c, r);
    const uint8_t *body = tornado_http_response_body(response_of(f), &n);
    CHECK(n >= 12 && memcmp(body, "PUT 3000 chunked", n < 16 ? n : 16) == 0, "3 chunks arrived (%.*s)", (int)n, body);
    tornado_future_unref(f);
    tornado_http_request_free(r);
}

static void test_errors(tornado_http_client *c, int closed_port) {
    tap_section("errors: connect, invalid URL, invalid request, timeout");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", closed_port);
    tornado_http_request *r = tornado_http_request_new(url);
    tornado_future *f = fetch_sync(c, r);
    const char *msg = NULL;
    CHECK(tornado_future_error(f, &msg) == TORNADO_ERR_CONNECT, "refused: TORNADO_ERR_CONNECT");
    CHECK(msg && strncmp(msg, "connect: ", 9) == 0, "message starts with the kind (%s)", msg ? msg : "NULL");
    tornado_future_unref(f);

    cb_result_t res = {0};
    CHECK_OK(tornado_http_client_fetch_cb(c, r, on_fetched, &res), "fetch_cb");
    CHECK(res.calls == 0, "not called inside fetch_cb");
    for (int i = 0; i < 200 && res.calls == 0; i++) tornado_loop_run_once(loop, 0.05);
    CHECK(res.calls == 1 && res.code == 599, "callback once with 599 (%d, %d)", res.calls, res.code);
    CHECK(strncmp(res.error, "connect: ", 9) == 0, "error string (%s)", res.error);
    tornado_http_request_free(r);

    r = tornado_http_request_new("ftp://127.0.0.1/file");
    f = fetch_sync(c, r);
    CHECK(tornado_future_error(f, NULL) == TORNADO_ERR_INVALID_URL, "ftp: TORNADO_ERR_INVALID_URL");
    tornado_future_unref(f);
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/hello"));
    tornado_http_request_add_header(r, "X-Evil", "a\r\nInjected: 1");
    f = fetch_sync(c, r);
    CHECK(tornado_future_error(f, &msg) == TORNADO_ERR_INVALID, "CR/LF in a header: invalid_request");
    CHECK(msg && strncmp(msg, "invalid_request: ", 17) == 0, "kind invalid_request (%s)", msg ? msg : "NULL");
    tornado_future_unref(f);
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/stall"));
    CHECK_OK(tornado_http_request_set_request_timeout(r, 0.2), "set_request_timeout");
    f = fetch_sync(c, r);
    CHECK(tornado_future_error(f, &msg) == TORNADO_ERR_TIMEOUT, "stalled: TORNADO_ERR_TIMEOUT");
    CHECK(msg && strstr(msg, "during request"), "which timeout (%s)", msg ? msg : "NULL");
    tornado_future_unref(f);

    tap_section("cancel a fetch; free a busy client");
    CHECK_OK(tornado_http_request_set_request_timeout(r, 0), "no timeout");
    f = tornado_http_client_fetch(c, r);
    tornado_loop_run_once(loop, 0.05);
    CHECK_OK(tornado_future_cancel(f), "cancel");
    CHECK(tornado_future_error(f, NULL) == TORNADO_ERR_CANCELLED, "cancelled");
    tornado_future_unref(f);

    tornado_http_client *busy = tornado_http_client_new(loop, NULL);
    cb_result_t late = {0};
    CHECK_OK(tornado_http_client_fetch_cb(busy, r, on_fetched, &late), "fetch_cb on the busy client");
    tornado_future *pending = tornado_http_client_fetch(busy, r);
    tornado_loop_run_once(loop, 0.05);
    CHECK_OK(tornado_http_client_free(busy), "free with fetches in flight");
    for (int i = 0; i < 20 && late.calls == 0; i++) tornado_loop_run_once(loop, 0.01);
    CHECK(late.calls == 1 && strncmp(late.error, "closed: ", 8) == 0, "callback once with closed (%s)", late.error);
    CHECK(tornado_future_error(pending, NULL) == TORNADO_ERR_CLOSED, "future failed with CLOSED");
    tornado_future_unref(pending);
    tornado_http_request_free(r);
}

/* Fetches `url` on `c` and checks the body (or the error kind). */
static void expect_fetch(tornado_http_client *c, tornado_http_request *r, const char *body, const char *error_kind,
                         const char *what) {
    tornado_future *f = fetch_sync(c, r);
    const char *msg = NULL;
    tornado_code rc = tornado_future_error(f, &msg);
    if (error_kind) {
        CHECK(rc != TORNADO_OK && msg && strncmp(msg, error_kind, strlen(error_kind)) == 0, "%s: error %s (%s)", what,
              error_kind, msg ? msg : "none");
    } else {
        size_t n = 0;
        const uint8_t *b = tornado_http_response_body(response_of(f), &n);
        CHECK(rc == TORNADO_OK && n == strlen(body) && memcmp(b, body, n) == 0, "%s: body '%s' (%.*s)", what, body,
              (int)n, b ? (const char *)b : "");
    }
    tornado_future_unref(f);
}

static const char *port_of_base(void) {
    return strrchr(base, ':') + 1;
}

static void test_request_options(tornado_http_client *c) {
    tap_section("if_modified_since, expect_100_continue, allow_ipv6");
    tornado_http_request *r = tornado_http_request_new(url_of("/ims"));
    CHECK_OK(tornado_http_request_set_if_modified_since(r, 784111777.0), "set_if_modified_since");
    expect_fetch(c, r, "Sun, 06 Nov 1994 08:49:37 GMT", NULL, "If-Modified-Since, an HTTP date");
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/expect"));
    CHECK_OK(tornado_http_request_set_method(r, "POST"), "POST");
    CHECK_OK(tornado_http_request_set_body(r, (const uint8_t *)"12345", 5), "set_body");
    CHECK_OK(tornado_http_request_set_expect_100_continue(r, true), "set_expect_100_continue");
    expect_fetch(c, r, "100-continue 5", NULL, "the body sent after 100 Continue");
    tornado_http_request_free(r);

    /* The client maps v6only.test to ::1 alone, dual.test to ::1 and
     * 127.0.0.1 (where the server is). */
    char url[128];
    snprintf(url, sizeof url, "http://v6only.test:%s/hello", port_of_base());
    r = tornado_http_request_new(url);
    CHECK_OK(tornado_http_request_set_allow_ipv6(r, false), "set_allow_ipv6(false)");
    expect_fetch(c, r, NULL, "resolve", "IPv4 only, a host with no IPv4 address");
    tornado_http_request_free(r);
    snprintf(url, sizeof url, "http://dual.test:%s/hello", port_of_base());
    r = tornado_http_request_new(url);
    CHECK_OK(tornado_http_request_set_allow_ipv6(r, false), "set_allow_ipv6(false)");
    expect_fetch(c, r, "hello", NULL, "IPv4 only, a host with both");
    tornado_http_request_free(r);
}

static void test_client_certificate(tornado_http_client *c) {
    tap_section("a client certificate for a server that asks for one");
    const char *port = getenv("TORNADO_TEST_MTLS_PORT"), *ca = getenv("TORNADO_TEST_CA");
    const char *cert = getenv("TORNADO_TEST_CLIENT_CERT"), *key = getenv("TORNADO_TEST_CLIENT_KEY");
    CHECK(port && ca && cert && key, "the HTTPS server's port and the test PKI's files are given");
    if (!(port && ca && cert && key)) return;
    char url[128];
    snprintf(url, sizeof url, "https://mtls.test:%s/", port); /* mapped to 127.0.0.1 */
    tornado_http_request *r = tornado_http_request_new(url);
    CHECK_OK(tornado_http_request_set_ca_certs(r, ca), "set_ca_certs");
    CHECK_OK(tornado_http_request_set_client_cert(r, cert, key), "set_client_cert");
    tornado_future *f = fetch_sync(c, r); /* a new connection: a full handshake */
    size_t n = 0;
    const uint8_t *b = tornado_http_response_body(response_of(f), &n);
    CHECK(n == 27 && memcmp(b, "client certificate accepted", n) == 0, "with the certificate (%.*s)", (int)n,
          b ? (const char *)b : "");
    tornado_http_time_info t = {0};
    CHECK_OK(tornado_http_response_time_info(response_of(f), &t), "time_info");
    CHECK(t.appconnect > t.connect && t.pretransfer >= t.appconnect,
          "appconnect: the TLS handshake ends after connect (%g > %g)", t.appconnect, t.connect);
    tornado_future_unref(f);
    CHECK_OK(tornado_http_request_set_client_cert(r, NULL, NULL), "client_cert(NULL, NULL): none");
    expect_fetch(c, r, NULL, "tls", "refused without one");
    tornado_http_request_free(r);

    /* Through a CONNECT proxy: the TLS session runs inside the tunnel. */
    const char *proxy = getenv("TORNADO_TEST_CONNECT_PROXY_PORT");
    CHECK(proxy != NULL, "a CONNECT proxy's port is given");
    if (!proxy) return;
    snprintf(url, sizeof url, "https://127.0.0.1:%s/", port);
    r = tornado_http_request_new(url);
    CHECK_OK(tornado_http_request_set_ca_certs(r, ca), "set_ca_certs");
    CHECK_OK(tornado_http_request_set_client_cert(r, cert, key), "set_client_cert");
    CHECK_OK(tornado_http_request_set_proxy(r, "127.0.0.1", (uint16_t)atoi(proxy), NULL, NULL), "set_proxy");
    expect_fetch(c, r, "client certificate accepted", NULL, "https through a CONNECT tunnel");
    tornado_http_request_free(r);
}

/* A fetch by callback, run until its callback ran: code, error and body. */
static void fetch_cb_sync(tornado_http_client *c, tornado_http_request *r, cb_result_t *out) {
    memset(out, 0, sizeof *out);
    CHECK_OK(tornado_http_client_fetch_cb(c, r, on_fetched, out), "fetch_cb");
    for (int i = 0; i < 400 && out->calls == 0; i++) tornado_loop_run_once(loop, 0.05);
}

/* GETs `path` on the test server and checks the body. */
static void expect_get(tornado_http_client *c, const char *path, const char *body, const char *what) {
    tornado_http_request *r = tornado_http_request_new(url_of(path));
    expect_fetch(c, r, body, NULL, what);
    tornado_http_request_free(r);
}

static void expect_get_error(tornado_http_client *c, const char *path, const char *kind, const char *what) {
    tornado_http_request *r = tornado_http_request_new(url_of(path));
    expect_fetch(c, r, NULL, kind, what);
    tornado_http_request_free(r);
}

static void test_wire(tornado_http_client *c) {
    tap_section("the wire: chunked, HTTP/1.0, 1xx, HEAD/204/304, Host, URLs, repeated headers");
    expect_get(c, "/chunked", "chunked reply", "a chunked body decoded");
    expect_get(c, "/http10", "until the end", "an HTTP/1.0 body read until close");
    expect_get(c, "/103", "ok", "a 103 skipped");

    const char *const no_body[] = {"/head", "/204", "/304"};
    const int codes[] = {200, 204, 304};
    for (int i = 0; i < 3; i++) {
        tornado_http_request *r = tornado_http_request_new(url_of(no_body[i]));
        if (i == 0) CHECK_OK(tornado_http_request_set_method(r, "HEAD"), "HEAD");
        cb_result_t res;
        fetch_cb_sync(c, r, &res);
        CHECK(res.calls == 1 && res.code == codes[i] && res.body[0] == 0,
              "%s: code %d, no body, though Content-Length is set (%d '%s' %s)", no_body[i], codes[i], res.code,
              res.body, res.error);
        tornado_http_request_free(r);
        expect_get(c, "/hello", "hello", "the next response on the connection");
    }

    char expected[160], url[200];
    snprintf(expected, sizeof expected, "127.0.0.1:%s", port_of_base());
    expect_get(c, "/host", expected, "Host: the URL's host and port");
    snprintf(url, sizeof url, "http://u:p@127.0.0.1:%s/auth", port_of_base());
    tornado_http_request *r = tornado_http_request_new(url);
    expect_fetch(c, r, "Basic dTpw -", NULL, "URL userinfo as basic auth, not in Host");
    tornado_http_request_free(r);

    r = tornado_http_request_new("http://example.test:80/p");
    CHECK_OK(tornado_http_request_set_proxy(r, "127.0.0.1", (uint16_t)atoi(port_of_base()), NULL, NULL), "proxy");
    expect_fetch(c, r, "proxied http://example.test/p", NULL, "the default port left out");
    tornado_http_request_free(r);

    expect_get(c, "/pct/a b?q=\xc3\xa9", "/pct/a%20b?q=%C3%A9", "path and query percent-encoded");

    snprintf(url, sizeof url, "http://[::1]:%s/hello", port_of_base());
    r = tornado_http_request_new(url);
    CHECK_OK(tornado_http_request_set_allow_ipv6(r, false), "IPv4 only");
    expect_fetch(c, r, NULL, "resolve", "an IPv6 literal is an IPv6 address");
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/rep"));
    CHECK_OK(tornado_http_request_add_header(r, "X-Rep", "1"), "add_header");
    CHECK_OK(tornado_http_request_add_header(r, "X-Rep", "2"), "add_header again");
    expect_fetch(c, r, "1,2", NULL, "a repeated request header, in order");
    tornado_http_request_free(r);

    snprintf(url, sizeof url, "http://127.0.0.1:%s/a\r\nX-Injected: 1", port_of_base());
    r = tornado_http_request_new(url);
    expect_fetch(c, r, NULL, "invalid_", "CR/LF in the URL refused");
    tornado_http_request_free(r);
    r = tornado_http_request_new(url_of("/method"));
    CHECK_OK(tornado_http_request_set_method(r, "GET\r\nX-Injected: 1"), "set_method stores it (checked when fetched)");
    expect_fetch(c, r, NULL, "invalid_request", "CR/LF in the method refused");
    tornado_http_request_free(r);
}

static void test_request_fields(tornado_http_client *c) {
    tap_section("decoding, network_interface, proxy auth, body rules, timeouts");
    expect_get(c, "/deflate", "inflated!", "a deflate body decoded");
    expect_get(c, "/ae", "gzip, deflate, br, zstd", "Accept-Encoding: every coding decoded");
    tornado_http_request *r = tornado_http_request_new(url_of("/ae"));
    CHECK_OK(tornado_http_request_set_decompress_response(r, false), "decompress_response(false)");
    expect_fetch(c, r, "-", NULL, "no Accept-Encoding without decompression");
    tornado_http_request_free(r);
    r = tornado_http_request_new(url_of("/gzip"));
    CHECK_OK(tornado_http_request_set_decompress_response(r, false), "decompress_response(false)");
    tornado_future *f = fetch_sync(c, r);
    size_t n = 0;
    const uint8_t *b = tornado_http_response_body(response_of(f), &n);
    CHECK(n > 2 && b[0] == 0x1f && b[1] == 0x8b, "the gzip bytes as sent (%zu bytes)", n);
    tornado_future_unref(f);
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/peer"));
    CHECK_OK(tornado_http_request_set_network_interface(r, "127.0.0.2"), "set_network_interface");
    expect_fetch(c, r, "127.0.0.2", NULL, "the source address");
    tornado_http_request_free(r);

    r = tornado_http_request_new("http://example.test/page");
    CHECK_OK(tornado_http_request_set_proxy(r, "127.0.0.1", (uint16_t)atoi(port_of_base()), "u", "p"), "proxy auth");
    expect_fetch(c, r, "proxied http://example.test/page Basic dTpw", NULL, "Proxy-Authorization sent");
    tornado_http_request_free(r);

    const char *const needs_body[] = {"POST", "PUT", "PATCH"};
    for (int i = 0; i < 3; i++) {
        r = tornado_http_request_new(url_of("/method"));
        CHECK_OK(tornado_http_request_set_method(r, needs_body[i]), "method");
        expect_fetch(c, r, NULL, "invalid_request", needs_body[i]);
        tornado_http_request_free(r);
    }
    r = tornado_http_request_new(url_of("/method"));
    CHECK_OK(tornado_http_request_set_body(r, (const uint8_t *)"abc", 3), "a GET body");
    expect_fetch(c, r, NULL, "invalid_request", "GET with a body");
    CHECK_OK(tornado_http_request_set_allow_nonstandard_methods(r, true), "allow_nonstandard_methods");
    expect_fetch(c, r, "GET 3 -", NULL, "GET with a body, allowed");
    CHECK_OK(tornado_http_request_set_method(r, "BREW"), "BREW");
    expect_fetch(c, r, "BREW 3 -", NULL, "a nonstandard method, allowed");
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/slow"));
    CHECK_OK(tornado_http_request_set_connect_timeout(r, 0), "connect_timeout 0");
    CHECK_OK(tornado_http_request_set_request_timeout(r, 0), "request_timeout 0");
    expect_fetch(c, r, "slow", NULL, "timeouts of 0 are none");
    tornado_http_request_free(r);

    const char *full = getenv("TORNADO_TEST_FULL_PORT");
    CHECK(full != NULL, "a port that never completes a connect");
    if (full) {
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%s/", full);
        r = tornado_http_request_new(url);
        CHECK_OK(tornado_http_request_set_connect_timeout(r, 0.3), "connect_timeout");
        f = fetch_sync(c, r);
        const char *msg = NULL;
        tornado_code rc = tornado_future_error(f, &msg);
        CHECK(rc == TORNADO_ERR_TIMEOUT && msg && strstr(msg, "while connecting"), "Timeout while connecting (%s)",
              msg ? msg : "none");
        tornado_future_unref(f);
        tornado_http_request_free(r);
    }
}

static void test_redirect_rules(tornado_http_client *c) {
    tap_section("redirects: methods, bodies, credentials, callbacks, limits");
    const char *const paths[] = {"/r301", "/r302", "/r303", "/r307", "/r308"};
    const char *const after[] = {"GET 0 -", "GET 0 -", "GET 0 -", "POST 4 text/plain", "POST 4 text/plain"};
    for (int i = 0; i < 5; i++) {
        tornado_http_request *r = tornado_http_request_new(url_of(paths[i]));
        CHECK_OK(tornado_http_request_set_method(r, "POST"), "POST");
        CHECK_OK(tornado_http_request_set_body(r, (const uint8_t *)"data", 4), "body");
        CHECK_OK(tornado_http_request_add_header(r, "Content-Type", "text/plain"), "Content-Type");
        expect_fetch(c, r, after[i], NULL, paths[i]);
        tornado_http_request_free(r);
    }
    tornado_http_request *r = tornado_http_request_new(url_of("/r301-noloc"));
    cb_result_t res;
    fetch_cb_sync(c, r, &res);
    CHECK(res.code == 301 && strcmp(res.body, "no location") == 0 && res.error[0] == 0,
          "a 301 without Location is the response (%d '%s')", res.code, res.body);
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/cross"));
    CHECK_OK(tornado_http_request_set_auth(r, "u", "p"), "auth");
    CHECK_OK(tornado_http_request_add_header(r, "Cookie", "session=1"), "Cookie");
    expect_fetch(c, r, "- -", NULL, "a cross-origin redirect drops Authorization and Cookie");
    tornado_http_request_free(r);
    r = tornado_http_request_new(url_of("/auth"));
    CHECK_OK(tornado_http_request_set_auth(r, "u", "p"), "auth");
    CHECK_OK(tornado_http_request_add_header(r, "Cookie", "session=1"), "Cookie");
    expect_fetch(c, r, "Basic dTpw session=1", NULL, "(both sent to the first origin)");
    tornado_http_request_free(r);
    char url[160];
    snprintf(url, sizeof url, "http://u:p@127.0.0.1:%s/cross", port_of_base());
    r = tornado_http_request_new(url);
    expect_fetch(c, r, "- -", NULL, "and the URL's credentials");
    tornado_http_request_free(r);

    counters_t counts = {0};
    r = tornado_http_request_new(url_of("/r302"));
    CHECK_OK(tornado_http_request_set_header_callback(r, on_header, &counts, NULL), "header callback");
    CHECK_OK(tornado_http_request_set_streaming_callback(r, on_chunk, &counts, NULL), "streaming callback");
    tornado_future *f = fetch_sync(c, r);
    CHECK(counts.saw_status_line && counts.bytes == strlen("GET 0 -"),
          "the callbacks saw the final response only (%zu bytes)", counts.bytes);
    tornado_future_unref(f);
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/loop"));
    CHECK_OK(tornado_http_request_set_max_redirects(r, 2), "max_redirects 2");
    fetch_cb_sync(c, r, &res);
    CHECK(res.code == 302 && strncmp(res.error, "too_many_redirects", 18) == 0,
          "too many redirects keeps the last response (%d, %s)", res.code, res.error);
    tornado_http_request_free(r);
}

static tornado_http_client *client_with(size_t max_clients, size_t max_idle, double idle_timeout) {
    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK_OK(tornado_http_client_options_set_max_clients(o, max_clients), "max_clients");
    if (max_idle) CHECK_OK(tornado_http_client_options_set_max_idle_per_host(o, max_idle), "max_idle_per_host");
    if (idle_timeout > 0) CHECK_OK(tornado_http_client_options_set_idle_timeout(o, idle_timeout), "idle_timeout");
    tornado_http_client *c = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    return c;
}

static char seq_order[16];
static void on_seq(const tornado_http_response *r, void *ud) {
    (void)r;
    size_t len = strlen(seq_order);
    if (len + 1 < sizeof seq_order) seq_order[len] = (char)('0' + (int)(intptr_t)ud);
}

static void test_client_rules(void) {
    tap_section("the queue, idle connections, retries, cancel_all, limits");
    tornado_http_client *one = client_with(1, 0, 0);
    tornado_http_request *r = tornado_http_request_new(url_of("/slow"));
    cb_result_t slow;
    memset(&slow, 0, sizeof slow);
    CHECK_OK(tornado_http_client_fetch_cb(one, r, on_fetched, &slow), "a fetch takes the only slot");
    tornado_http_request *queued = tornado_http_request_new(url_of("/hello"));
    CHECK_OK(tornado_http_request_set_connect_timeout(queued, 0.1), "connect_timeout 0.1");
    tornado_future *f = fetch_sync(one, queued);
    const char *msg = NULL;
    tornado_code rc = tornado_future_error(f, &msg);
    CHECK(rc == TORNADO_ERR_TIMEOUT && msg && strstr(msg, "in request queue"), "Timeout in request queue (%s)",
          msg ? msg : "none");
    tornado_future_unref(f);
    for (int i = 0; i < 100 && slow.calls == 0; i++) tornado_loop_run_once(loop, 0.05);
    tornado_http_request_free(queued);
    tornado_http_request_free(r);

    seq_order[0] = 0;
    char path[32];
    tornado_http_request *seq[5];
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/seq/%d", i);
        seq[i] = tornado_http_request_new(url_of(path));
        CHECK_OK(tornado_http_client_fetch_cb(one, seq[i], on_seq, (void *)(intptr_t)i), "queued");
    }
    for (int i = 0; i < 200 && strlen(seq_order) < 5; i++) tornado_loop_run_once(loop, 0.05);
    CHECK(strcmp(seq_order, "01234") == 0, "queued fetches ran in order (%s)", seq_order);
    for (int i = 0; i < 5; i++) tornado_http_request_free(seq[i]);

    cb_result_t redirected[3];
    r = tornado_http_request_new(url_of("/r302"));
    for (int i = 0; i < 3; i++) {
        memset(&redirected[i], 0, sizeof redirected[i]);
        CHECK_OK(tornado_http_client_fetch_cb(one, r, on_fetched, &redirected[i]), "a redirecting fetch");
    }
    for (int i = 0; i < 200 && redirected[2].calls == 0; i++) tornado_loop_run_once(loop, 0.05);
    int all = 1;
    for (int i = 0; i < 3; i++) all &= redirected[i].calls == 1 && strcmp(redirected[i].body, "GET 0 -") == 0;
    CHECK(all, "max_clients 1 with redirects: every fetch done");
    tornado_http_request_free(r);

    /* The server answers, then closes without a word: the next fetch
     * finds the pooled connection dead and is retried once, on a new one. */
    r = tornado_http_request_new(url_of("/close-after"));
    cb_result_t first, second;
    fetch_cb_sync(one, r, &first);
    usleep(50 * 1000); /* the close arrives; the loop has not seen it */
    fetch_cb_sync(one, r, &second);
    CHECK(first.code == 200 && second.code == 200 && strcmp(first.body, second.body) != 0,
          "retried on a fresh connection (%s / %s %s)", first.body, second.body, second.error);
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/stall"));
    cb_result_t cancelled;
    memset(&cancelled, 0, sizeof cancelled);
    CHECK_OK(tornado_http_client_fetch_cb(one, r, on_fetched, &cancelled), "a stalled fetch");
    tornado_loop_run_once(loop, 0.05);
    CHECK_OK(tornado_http_client_cancel_all(one), "cancel_all");
    for (int i = 0; i < 20 && cancelled.calls == 0; i++) tornado_loop_run_once(loop, 0.01);
    CHECK(cancelled.calls == 1 && strncmp(cancelled.error, "cancelled", 9) == 0, "cancelled (%s)", cancelled.error);
    tornado_http_request_free(r);
    CHECK_OK(tornado_http_client_free(one), "free");

    tornado_http_client *three = client_with(3, 1, 0.3);
    r = tornado_http_request_new(url_of("/slow"));
    cb_result_t at_once[3];
    for (int i = 0; i < 3; i++) {
        memset(&at_once[i], 0, sizeof at_once[i]);
        CHECK_OK(tornado_http_client_fetch_cb(three, r, on_fetched, &at_once[i]), "three at once");
    }
    for (int i = 0; i < 100 && !(at_once[0].calls && at_once[1].calls && at_once[2].calls); i++)
        tornado_loop_run_once(loop, 0.05);
    CHECK(tornado_http_client_idle_connections(three) == 1, "one idle connection kept per host (%zu)",
          tornado_http_client_idle_connections(three));
    for (int i = 0; i < 20; i++) tornado_loop_run_once(loop, 0.05);
    CHECK(tornado_http_client_idle_connections(three) == 0, "closed after its idle timeout");
    tornado_http_request_free(r);
    CHECK_OK(tornado_http_client_free(three), "free");

    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK_OK(tornado_http_client_options_set_max_body_size(o, 100000), "max_body_size");
    CHECK_OK(tornado_http_client_options_set_max_buffer_size(o, 1000), "max_buffer_size");
    tornado_http_client *small = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    expect_get_error(small, "/gzip-bomb", "body_too_large", "a gzip bomb stops at max_body_size");
    expect_get_error(small, "/long-head", "header_too_large", "a head over max_buffer_size");
    expect_get(small, "/hello", "hello", "a small response within both");
    CHECK_OK(tornado_http_client_free(small), "free");
}

static void test_hostile(tornado_http_client *c) {
    tap_section("hostile servers: each ends the fetch with an error");
    expect_get_error(c, "/garbage", "protocol", "garbage instead of a status line");
    expect_get_error(c, "/badchunk", "protocol", "a bad chunk size");
    expect_get_error(c, "/twolengths", "protocol", "two different Content-Length");
    expect_get_error(c, "/te-and-cl", "protocol", "Transfer-Encoding and Content-Length");
    expect_get_error(c, "/reset-mid-body", "closed", "a reset mid-body");
    tornado_http_request *r = tornado_http_request_new(url_of("/stall-after-head"));
    CHECK_OK(tornado_http_request_set_request_timeout(r, 0.3), "request_timeout");
    expect_fetch(c, r, NULL, "timeout", "a stall after the head");
    tornado_http_request_free(r);
}

static void test_features(tornado_http_client *c) {
    tap_section("gzip, hostname mapping, proxy, client defaults, limits");
    tornado_http_request *r = tornado_http_request_new(url_of("/gzip"));
    expect_fetch(c, r, "decompressed!", NULL, "gzip decoded");
    tornado_http_request_free(r);

    char mapped[128];
    snprintf(mapped, sizeof mapped, "http://mapped.test:%s/hello", strrchr(base, ':') + 1);
    r = tornado_http_request_new(mapped);
    expect_fetch(c, r, "hello", NULL, "mapped host name");
    tornado_http_request_free(r);

    r = tornado_http_request_new("http://example.test/page");
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%s", strrchr(base, ':') + 1);
    CHECK_OK(tornado_http_request_set_proxy(r, "127.0.0.1", (uint16_t)atoi(port_text), NULL, NULL), "set_proxy");
    expect_fetch(c, r, "proxied http://example.test/page", NULL, "through an HTTP proxy");
    tornado_http_request_free(r);

    tornado_http_request *defaults = tornado_http_request_new("http://ignored/");
    CHECK_OK(tornado_http_request_set_user_agent(defaults, "c-defaults/1"), "default user agent");
    CHECK_OK(tornado_http_request_add_header(defaults, "X-Default", "yes"), "default header");
    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK_OK(tornado_http_client_options_set_defaults(o, defaults), "set_defaults");
    tornado_http_request_free(defaults); /* copied */
    CHECK_OK(tornado_http_client_options_set_max_body_size(o, 1000), "max_body_size");
    CHECK_OK(tornado_http_client_options_set_max_header_size(o, 20), "max_header_size");
    tornado_http_client *limited = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    r = tornado_http_client_request_new(limited, url_of("/whoami"));
    CHECK(r != NULL, "client_request_new");
    expect_fetch(limited, r, NULL, "header_too_large", "a head over 20 bytes");
    tornado_http_request_free(r);
    tornado_http_client_free(limited);

    o = tornado_http_client_options_new();
    tornado_http_client_options_set_max_body_size(o, 1000);
    defaults = tornado_http_request_new("http://ignored/");
    tornado_http_request_set_user_agent(defaults, "c-defaults/1");
    tornado_http_request_add_header(defaults, "X-Default", "yes");
    tornado_http_client_options_set_defaults(o, defaults);
    tornado_http_request_free(defaults);
    limited = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    r = tornado_http_client_request_new(limited, url_of("/whoami"));
    expect_fetch(limited, r, "c-defaults/1 yes", NULL, "requests start from the client's defaults");
    tornado_http_request_free(r);
    r = tornado_http_client_request_new(limited, url_of("/big"));
    expect_fetch(limited, r, NULL, "body_too_large", "a body over 1000 bytes");
    tornado_http_request_free(r);
    r = tornado_http_request_new(url_of("/whoami"));
    tornado_future *f = fetch_sync(limited, r);
    size_t n = 0;
    const uint8_t *b = tornado_http_response_body(response_of(f), &n);
    CHECK(n >= 11 && memcmp(b, "tornado_rs/", 11) == 0, "plain requests keep the library defaults");
    tornado_future_unref(f);
    tornado_http_request_free(r);
    tornado_http_client_free(limited);
}

static void *other_thread(void *c) {
    tornado_http_request *r = tornado_http_request_new("http://127.0.0.1/");
    tornado_future *f = tornado_http_client_fetch(c, r);
    tornado_http_request_free(r);
    return f == NULL ? (void *)1 : NULL;
}

static void test_bad_input(tornado_http_client *c) {
    tap_section("bad input");
    tornado_http_request *r = tornado_http_request_new(url_of("/hello"));
    CHECK(tornado_http_client_new(NULL, NULL) == NULL, "client on a NULL loop");
    CHECK(tornado_http_request_new(NULL) == NULL, "request with a NULL url");
    CHECK(tornado_http_client_fetch(NULL, r) == NULL && TAP_HAS_ERRMSG(), "fetch on a NULL client");
    CHECK(tornado_http_client_fetch(c, NULL) == NULL, "fetch of a NULL request");
    CHECK_FAIL(tornado_http_client_fetch_cb(c, r, NULL, NULL), TORNADO_ERR_INVALID, "NULL callback");
    CHECK_FAIL(tornado_http_request_set_connect_timeout(r, -1), TORNADO_ERR_INVALID, "negative timeout");
    CHECK_FAIL(tornado_http_request_set_max_redirects(r, -1), TORNADO_ERR_INVALID, "negative max_redirects");
    CHECK_FAIL(tornado_http_request_set_method(NULL, "GET"), TORNADO_ERR_INVALID, "NULL request");
    CHECK_FAIL(tornado_http_request_set_network_interface(r, "not an ip"), TORNADO_ERR_INVALID, "bad interface");
    CHECK(tornado_http_response_code(NULL) == 0, "code of NULL");
    CHECK(tornado_http_response_body(NULL, NULL) == NULL, "body of NULL");
    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK_FAIL(tornado_http_client_options_set_max_clients(o, 0), TORNADO_ERR_INVALID, "max_clients 0");
    CHECK_FAIL(tornado_http_client_options_add_hostname_mapping(o, "a", "nope"), TORNADO_ERR_INVALID, "bad mapping");
    tornado_http_client_options_free(o);
    pthread_t t;
    void *failed = NULL;
    pthread_create(&t, NULL, other_thread, c);
    pthread_join(t, &failed);
    CHECK(failed == (void *)1, "fetch from another thread is refused");
    tornado_http_request_free(r);
    tornado_http_request_free(NULL);
    tornado_http_client_options_free(NULL);
}

/* The client every section gets: 4 connections, and the host names the
 * sections map. */
static tornado_http_client *new_client(void) {
    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK_OK(tornado_http_client_options_set_max_clients(o, 4), "max_clients");
    CHECK_OK(tornado_http_client_options_add_hostname_mapping(o, "mapped.test", "127.0.0.1"), "mapping");
    CHECK_OK(tornado_http_client_options_add_hostname_mapping(o, "mtls.test", "127.0.0.1"), "mapping");
    CHECK_OK(tornado_http_client_options_add_hostname_mapping(o, "v6only.test", "::1"), "mapping");
    CHECK_OK(tornado_http_client_options_add_hostname_mapping(o, "dual.test", "::1"), "mapping");
    CHECK_OK(tornado_http_client_options_add_hostname_mapping(o, "dual.test", "127.0.0.1"), "a second address");
    tornado_http_client *c = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    CHECK(c != NULL, "client");
    return c;
}

static int closed_port;
static void test_errors_section(tornado_http_client *c) {
    test_errors(c, closed_port);
}
static void test_client_rules_section(tornado_http_client *c) {
    (void)c; /* makes clients of its own, with other options */
    test_client_rules();
}

static const struct {
    const char *name;
    void (*run)(tornado_http_client *c);
} sections[] = {
    {"get", test_get},
    {"request_changed_after_fetch", test_request_changed_after_fetch},
    {"post_and_redirect", test_post_and_redirect},
    {"callbacks", test_callbacks},
    {"large_bodies", test_large_bodies},
    {"features", test_features},
    {"request_options", test_request_options},
    {"client_certificate", test_client_certificate},
    {"wire", test_wire},
    {"request_fields", test_request_fields},
    {"redirect_rules", test_redirect_rules},
    {"client_rules", test_client_rules_section},
    {"hostile", test_hostile},
    {"errors", test_errors_section},
    {"bad_input", test_bad_input},
};
#define SECTION_COUNT (sizeof sections / sizeof sections[0])

/* Whether section `i` is to run: all of them without arguments, else the
 * ones named. */
static int selected(size_t i, int argc, char **argv) {
    if (argc < 2) return 1;
    for (int a = 1; a < argc; a++)
        if (strcmp(argv[a], sections[i].name) == 0) return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < SECTION_COUNT; i++) printf("%s\n", sections[i].name);
        return 0;
    }
    for (int a = 1; a < argc; a++) {
        size_t i = 0;
        while (i < SECTION_COUNT && strcmp(argv[a], sections[i].name) != 0) i++;
        if (i == SECTION_COUNT) {
            fprintf(stderr, "test_http: no section %s (see --list)\n", argv[a]);
            return 2;
        }
    }
    tap_init("test_http");
    base = getenv("TORNADO_TEST_HTTP");
    const char *closed = getenv("TORNADO_TEST_CLOSED_PORT");
    if (!base || !closed) {
        printf("# run through tests/c_programs.rs, which starts the server\n");
        return 2;
    }
    closed_port = atoi(closed);
    loop = tornado_loop_new();
    for (size_t i = 0; i < SECTION_COUNT; i++) {
        if (!selected(i, argc, argv)) continue;
        tornado_http_client *c = new_client();
        if (c == NULL) continue;
        sections[i].run(c);
        CHECK_OK(tornado_http_client_free(c), "%s: client_free", sections[i].name);
        tornado_loop_run_once(loop, 0);
    }
    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
