/* test_http_wire.c: what real servers and Tornado's own HTTP client tests
 * expect of the client, through the C API, against the scripted server of
 * tests/c_programs.rs (its URL in TORNADO_TEST_HTTP): heads and chunk lines
 * ending in a bare LF, Content-Encoding on responses without a body,
 * multi-member gzip, decoded bytes handed on at once and in bounded pieces,
 * the default Content-Type of a POST, a streamed upload with a
 * Content-Length, NFC-normalised Basic credentials, the 1xx limit, header
 * lines as bytes, and the last response of a redirect loop. */
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static tornado_loop *loop;
static tornado_http_client *client;
static const char *base;

static char *url_of(const char *path) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s%s", base, path);
    return buf;
}

/* Runs `r` to completion (within 10 s); the caller unrefs the future. */
static tornado_future *fetch_sync(tornado_http_request *r) {
    tornado_future *f = tornado_http_client_fetch(client, r);
    CHECK(f != NULL, "fetch returned a future");
    if (f) {
        tornado_loop_run_sync(loop, f, 10);
        CHECK(tornado_future_done(f), "fetch finished");
    }
    return f;
}

static const tornado_http_response *response_of(tornado_future *f) {
    return f ? (const tornado_http_response *)tornado_future_result(f) : NULL;
}

/* Fetches `r` and checks code and body, or the error kind when `kind` is set. */
static void expect(tornado_http_request *r, int code, const char *body, const char *kind, const char *what) {
    tornado_future *f = fetch_sync(r);
    const char *msg = NULL;
    tornado_code rc = tornado_future_error(f, &msg);
    if (kind) {
        CHECK(rc != TORNADO_OK && msg && strncmp(msg, kind, strlen(kind)) == 0, "%s: a %s error (%s)", what, kind,
              msg ? msg : "none");
    } else {
        const tornado_http_response *resp = response_of(f);
        size_t n = 0;
        const uint8_t *b = tornado_http_response_body(resp, &n);
        CHECK(rc == TORNADO_OK && tornado_http_response_code(resp) == code && n == strlen(body) &&
                  memcmp(b, body, n) == 0,
              "%s: %d '%s' (%s; %d '%.*s')", what, code, body, msg ? msg : "ok", tornado_http_response_code(resp),
              (int)n, b ? (const char *)b : "");
    }
    tornado_future_unref(f);
}

static void expect_get(const char *path, int code, const char *body, const char *what) {
    tornado_http_request *r = tornado_http_request_new(url_of(path));
    CHECK_OK(tornado_http_request_set_request_timeout(r, 2), "request_timeout 2 s: a hang fails, not stalls");
    expect(r, code, body, NULL, what);
    tornado_http_request_free(r);
}

static void test_bare_lf(void) {
    tap_section("heads and chunk lines that end in a bare LF");
    expect_get("/lf-head", 200, "ok", "a head of LF-terminated lines");
    expect_get("/lf-chunked", 200, "bare lf", "chunk-size and data lines ending in LF");
    tornado_http_request *r = tornado_http_request_new(url_of("/lf-head"));
    tornado_future *f = fetch_sync(r);
    const char *v = tornado_http_response_header(response_of(f), "X-Lf");
    CHECK(v && strcmp(v, "yes") == 0, "its headers are parsed (X-Lf: %s)", v ? v : "NULL");
    tornado_future_unref(f);
    tornado_http_request_free(r);
}

static void test_coding_without_body(void) {
    tap_section("Content-Encoding: gzip on a response without a body");
    tornado_http_request *r = tornado_http_request_new(url_of("/gzip-head"));
    CHECK_OK(tornado_http_request_set_method(r, "HEAD"), "HEAD");
    expect(r, 200, "", NULL, "HEAD");
    tornado_http_request_free(r);
    expect_get("/gzip-204", 204, "", "204");
    expect_get("/gzip-304", 304, "", "304");
    expect_get("/gzip-empty", 200, "", "Content-Length: 0");
    expect_get("/gzip-empty-chunked", 200, "", "a chunked body with no chunks");
    expect_get("/gzip-103", 200, "ok", "a 1xx naming a coding");
    r = tornado_http_request_new(url_of("/gzip-302"));
    CHECK_OK(tornado_http_request_set_follow_redirects(r, false), "follow_redirects off");
    expect(r, 302, "", NULL, "an unfollowed 302");
    tornado_http_request_free(r);
}

typedef struct {
    size_t bytes, largest;
    int chunks;
    char start[32];
} stream_t;

static void on_chunk(const uint8_t *data, size_t len, void *ud) {
    stream_t *s = ud;
    if (s->bytes < sizeof s->start - 1) {
        size_t room = sizeof s->start - 1 - s->bytes;
        memcpy(s->start + s->bytes, data, len < room ? len : room);
    }
    s->bytes += len;
    s->chunks++;
    if (len > s->largest) s->largest = len;
}

static void test_gzip_streams(void) {
    tap_section("gzip: every member, decoded bytes at once, bounded pieces");
    expect_get("/gzip-members", 200, "first member, second member", "a body of two gzip members");

    /* The server sends the first part of a gzip stream and waits: its
     * bytes reach the callback before the request times out. */
    stream_t s = {0};
    tornado_http_request *r = tornado_http_request_new(url_of("/gzip-then-wait"));
    CHECK_OK(tornado_http_request_set_streaming_callback(r, on_chunk, &s, NULL), "streaming callback");
    CHECK_OK(tornado_http_request_set_request_timeout(r, 0.5), "request_timeout");
    expect(r, 0, NULL, "timeout", "the stream stalls after its first part");
    CHECK(s.bytes == 8 && memcmp(s.start, "part one", 8) == 0, "the first part was handed on (%zu bytes: '%s')",
          s.bytes, s.start);
    tornado_http_request_free(r);

    /* 10 MiB of zeros from a few KB: at most 64 KiB per callback. */
    memset(&s, 0, sizeof s);
    r = tornado_http_request_new(url_of("/gzip-bomb"));
    CHECK_OK(tornado_http_request_set_streaming_callback(r, on_chunk, &s, NULL), "streaming callback");
    expect(r, 200, "", NULL, "a streamed gzip bomb");
    CHECK(s.bytes == 10u << 20 && s.largest <= 65536 && s.chunks >= 160,
          "decoded in pieces of at most 64 KiB (%zu bytes, %d pieces, largest %zu)", s.bytes, s.chunks, s.largest);
    tornado_http_request_free(r);
}

static int produced;
static int64_t produce_1000(uint8_t *buf, size_t cap, void *ud) {
    (void)ud;
    if (produced == 3) return 0;
    produced++;
    size_t n = cap < 1000 ? cap : 1000;
    memset(buf, 'p', n);
    return (int64_t)n;
}

static void test_request_bodies(void) {
    tap_section("POST's default Content-Type; a streamed upload with a Content-Length");
    tornado_http_request *r = tornado_http_request_new(url_of("/method"));
    CHECK_OK(tornado_http_request_set_method(r, "POST"), "POST");
    CHECK_OK(tornado_http_request_set_body(r, (const uint8_t *)"a=1", 3), "body");
    expect(r, 200, "POST 3 application/x-www-form-urlencoded", NULL, "a POST without Content-Type gets a form's");
    CHECK_OK(tornado_http_request_add_header(r, "Content-Type", "text/plain"), "Content-Type");
    expect(r, 200, "POST 3 text/plain", NULL, "the caller's Content-Type is kept");
    tornado_http_request_free(r);

    r = tornado_http_request_new(url_of("/method"));
    CHECK_OK(tornado_http_request_set_method(r, "PUT"), "PUT");
    CHECK_OK(tornado_http_request_set_body(r, (const uint8_t *)"x", 1), "body");
    expect(r, 200, "PUT 1 -", NULL, "a PUT gets none");
    tornado_http_request_free(r);

    static char three_thousand[3001];
    memset(three_thousand, 'p', 3000);
    const char *const declared[] = {"3000", "2000", "4000"};
    for (int i = 0; i < 3; i++) {
        produced = 0;
        r = tornado_http_request_new(url_of("/body"));
        CHECK_OK(tornado_http_request_set_method(r, "PUT"), "PUT");
        CHECK_OK(tornado_http_request_add_header(r, "Content-Length", declared[i]), "Content-Length");
        CHECK_OK(tornado_http_request_set_body_producer(r, produce_1000, NULL, NULL), "body producer");
        if (i == 0) {
            expect(r, 200, three_thousand, NULL, "3000 produced bytes sent as they are, unframed");
        } else {
            tornado_future *f = fetch_sync(r);
            const char *msg = NULL;
            tornado_code rc = tornado_future_error(f, &msg);
            CHECK(rc == TORNADO_ERR_INVALID && msg && strstr(msg, "Content-Length"),
                  "3000 bytes for Content-Length %s: a clear error (%s)", declared[i], msg ? msg : "none");
            tornado_future_unref(f);
        }
        tornado_http_request_free(r);
    }
}

static void test_credentials(void) {
    tap_section("Basic credentials are NFC-normalised");
    tornado_http_request *r = tornado_http_request_new(url_of("/auth"));
    /* "jose" + U+0301 COMBINING ACUTE ACCENT: sent as "jos\u00e9". */
    CHECK_OK(tornado_http_request_set_auth(r, "jose\xcc\x81", "pw"), "set_auth");
    expect(r, 200, "Basic am9zw6k6cHc=", NULL, "a decomposed name is sent composed");
    tornado_http_request_free(r);
}

typedef struct {
    int lines, latin1_seen;
} lines_t;

static void on_line(const char *line, size_t len, void *ud) {
    lines_t *l = ud;
    l->lines++;
    static const char want[] = "Foo: caf\xe9\r\n";
    if (len == sizeof want - 1 && memcmp(line, want, len) == 0 && line[len] == '\0') l->latin1_seen = 1;
}

static void test_informational_and_header_bytes(void) {
    tap_section("the 1xx limit; header lines as bytes");
    expect_get("/informational/10", 200, "final", "10 informational responses, then the final one");
    tornado_http_request *r = tornado_http_request_new(url_of("/informational/11"));
    expect(r, 0, NULL, "protocol", "11 informational responses");
    tornado_http_request_free(r);

    lines_t l = {0};
    r = tornado_http_request_new(url_of("/latin1"));
    CHECK_OK(tornado_http_request_set_header_callback(r, on_line, &l, NULL), "header callback");
    expect(r, 200, "ok", NULL, "a Latin-1 header value");
    CHECK(l.lines == 4 && l.latin1_seen, "the line reached the callback byte for byte (%d lines, seen %d)", l.lines,
          l.latin1_seen);
    tornado_future *f = fetch_sync(r);
    const tornado_http_response *resp = response_of(f);
    const char *name = NULL, *text = NULL;
    const uint8_t *bytes = NULL;
    size_t n = 0;
    CHECK_OK(tornado_http_response_header_at(resp, 0, &name, &text), "header_at");
    CHECK(text && strcmp(text, "caf\xc3\xa9") == 0, "as text: Latin-1 read into UTF-8 (%s)", text ? text : "NULL");
    CHECK_OK(tornado_http_response_header_bytes_at(resp, 0, &name, &bytes, &n), "header_bytes_at");
    CHECK(name && strcmp(name, "Foo") == 0 && n == 4 && memcmp(bytes, "caf\xe9", 4) == 0 && bytes[4] == 0,
          "as bytes: unchanged (%zu bytes)", n);
    const uint8_t *block = tornado_http_response_header_block(resp, &n);
    CHECK(block && n == 30 && memcmp(block, "Foo: caf\xe9\r\nContent-Length: 2\r\n", 30) == 0 && block[n] == 0,
          "all headers as one block, byte for byte (%zu bytes)", n);
    CHECK_OK(tornado_http_response_header_bytes_at(resp, 1, NULL, &bytes, &n), "header_bytes_at(1)");
    CHECK(n == 1 && bytes[0] == '2', "a UTF-8 value's bytes are its text (Content-Length: %.*s)", (int)n, bytes);
    tornado_future_unref(f);
    tornado_http_request_free(r);
}

static void test_out_of_redirects(void) {
    tap_section("out of redirects: the last 3xx response beside the error");
    tornado_http_request *r = tornado_http_request_new(url_of("/loop-body"));
    CHECK_OK(tornado_http_request_set_max_redirects(r, 2), "max_redirects 2");
    tornado_future *f = fetch_sync(r);
    const tornado_http_response *resp = response_of(f);
    CHECK(resp != NULL, "the future resolves with the last response");
    size_t n = 0;
    const uint8_t *b = tornado_http_response_body(resp, &n);
    const char *location = tornado_http_response_header(resp, "Location");
    const char *error = tornado_http_response_error(resp);
    CHECK(tornado_http_response_code(resp) == 302 && n == 5 && memcmp(b, "again", 5) == 0,
          "its code and body (%d, %.*s)", tornado_http_response_code(resp), (int)n, b ? (const char *)b : "");
    CHECK(location && strcmp(location, "/loop-body") == 0, "its headers");
    CHECK(strcmp(tornado_http_response_effective_url(resp), url_of("/loop-body")) == 0, "its effective URL");
    CHECK(tornado_http_response_error_code(resp) == TORNADO_ERR_TOO_MANY_REDIRECTS && error &&
              strncmp(error, "too_many_redirects", 18) == 0,
          "and the error (%s)", error ? error : "none");
    tornado_future_unref(f);
    tornado_http_request_free(r);
}

int main(void) {
    tap_init("test_http_wire");
    base = getenv("TORNADO_TEST_HTTP");
    if (!base) {
        printf("# run through tests/c_programs.rs, which starts the server\n");
        return 2;
    }
    loop = tornado_loop_new();
    client = tornado_http_client_new(loop, NULL);
    CHECK(client != NULL, "client");
    test_bare_lf();
    test_coding_without_body();
    test_gzip_streams();
    test_request_bodies();
    test_credentials();
    test_informational_and_header_bytes();
    test_out_of_redirects();
    CHECK_OK(tornado_http_client_free(client), "client_free");
    tornado_loop_run_once(loop, 0);
    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
