/* test_http_features.c: Tornado's request and client features through the
 * C API, against real servers that tests/c_programs.rs starts: an
 * asynchronous body producer with flow control and a streaming callback
 * that pauses the read (Tornado's HTTPServer, TORNADO_TEST_TORNADO),
 * Digest authentication (httpbin, TORNADO_TEST_HTTPBIN), header values as
 * bytes and the queue/active counts (a scripted server, TORNADO_TEST_HTTP). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap.h"

static tornado_loop *loop;
static tornado_http_client *client;

static char *url(const char *env, const char *path) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s%s", getenv(env), path);
    return buf;
}

static tornado_future *fetch_sync(tornado_http_request *r) {
    tornado_future *f = tornado_http_client_fetch(client, r);
    CHECK(f != NULL, "fetch returned a future");
    if (f) tornado_loop_run_sync(loop, f, 20);
    return f;
}

static const tornado_http_response *response_of(tornado_future *f) {
    return f ? (const tornado_http_response *)tornado_future_result(f) : NULL;
}

/* ---- an asynchronous body producer: 3 x 1000 bytes, each written once
 * the one before reached the socket ---- */

typedef struct {
    tornado_http_body_writer *writer;
    tornado_future *done; /* the producer's future (our reference) */
    int left, calls, drops;
} producer_t;

static void write_next(producer_t *p);

static void on_written(tornado_future *written, void *ud) {
    producer_t *p = ud;
    if (tornado_future_error(written, NULL) != TORNADO_OK) {
        tornado_future_set_error(p->done, TORNADO_ERR_IO, "a write failed");
        tornado_http_body_writer_free(p->writer);
        tornado_future_unref(p->done);
        return;
    }
    write_next(p);
}

static void write_next(producer_t *p) {
    if (p->left == 0) {
        tornado_future_set_result(p->done, NULL, NULL);
        tornado_http_body_writer_free(p->writer);
        tornado_future_unref(p->done);
        return;
    }
    uint8_t part[1000];
    memset(part, '0' + p->left, sizeof part);
    p->left--;
    tornado_future *w = tornado_http_body_writer_write(p->writer, part, sizeof part);
    CHECK(w != NULL, "body_writer_write returned a future");
    CHECK(!tornado_future_done(w) || tornado_future_error(w, NULL) == TORNADO_OK, "a write in progress or done");
    tornado_future_add_done_callback(w, on_written, p);
    tornado_future_unref(w);
}

static tornado_future *produce(tornado_http_body_writer *writer, void *ud) {
    producer_t *p = ud;
    p->calls++;
    p->writer = writer;
    p->left = 3;
    p->done = tornado_future_new(loop);
    write_next(p); /* the first write now, the others as each completes */
    return tornado_future_ref(p->done);
}

static void count_drop(void *ud) {
    ((producer_t *)ud)->drops++;
}

static void test_async_body_producer(void) {
    tap_section("an asynchronous body producer, with flow control (Tornado's HTTPServer)");
    char expected[3001];
    for (int i = 0; i < 3000; i++) expected[i] = (char)('3' - i / 1000);
    const char *const lengths[] = {NULL, "3000"};
    for (int i = 0; i < 2; i++) {
        producer_t p = {0};
        tornado_http_request *r = tornado_http_request_new(url("TORNADO_TEST_TORNADO", "/body"));
        CHECK_OK(tornado_http_request_set_method(r, "PUT"), "PUT");
        if (lengths[i]) CHECK_OK(tornado_http_request_add_header(r, "Content-Length", lengths[i]), "Content-Length");
        CHECK_OK(tornado_http_request_set_body_producer_async(r, produce, &p, count_drop), "set_body_producer_async");
        tornado_future *f = fetch_sync(r);
        const tornado_http_response *resp = response_of(f);
        size_t n = 0;
        const uint8_t *b = tornado_http_response_body(resp, &n);
        CHECK(tornado_http_response_code(resp) == 200 && n == 3000 && memcmp(b, expected, 3000) == 0,
              "%s: the server got the 3000 bytes in order (%d, %zu bytes)", lengths[i] ? "Content-Length" : "chunked",
              tornado_http_response_code(resp), n);
        CHECK(p.calls == 1, "the producer ran once (%d)", p.calls);
        tornado_future_unref(f);
        tornado_http_request_free(r);
        CHECK(p.drops == 1, "its userdata was dropped with the request (%d)", p.drops);
    }
}

static tornado_future *fail_producing(tornado_http_body_writer *writer, void *ud) {
    (void)ud;
    tornado_future *w = tornado_http_body_writer_write(writer, (const uint8_t *)"part", 4);
    tornado_future_unref(w);
    tornado_http_body_writer_free(writer);
    tornado_future *f = tornado_future_new(loop);
    tornado_future_set_error(f, TORNADO_ERR_USER, "the producer ran dry");
    return f;
}

static tornado_http_body_writer *kept_writer;
static tornado_future *keep_writer(tornado_http_body_writer *writer, void *ud) {
    (void)ud;
    kept_writer = writer;
    return NULL; /* complete on return: an empty body */
}

static void test_producer_errors(void) {
    tap_section("a producer's error fails the fetch; writes after the end fail");
    tornado_http_request *r = tornado_http_request_new(url("TORNADO_TEST_TORNADO", "/body"));
    CHECK_OK(tornado_http_request_set_method(r, "PUT"), "PUT");
    CHECK_OK(tornado_http_request_set_body_producer_async(r, fail_producing, NULL, NULL), "producer");
    tornado_future *f = fetch_sync(r);
    const char *msg = NULL;
    tornado_code rc = tornado_future_error(f, &msg);
    CHECK(rc == TORNADO_ERR_USER && msg && strstr(msg, "ran dry"), "the producer's error (%s: %s)", tornado_code_name(rc),
          msg ? msg : "none");
    tornado_future_unref(f);

    CHECK_OK(tornado_http_request_set_body_producer_async(r, keep_writer, NULL, NULL), "producer");
    f = fetch_sync(r);
    const tornado_http_response *resp = response_of(f);
    size_t n = 99;
    tornado_http_response_body(resp, &n);
    CHECK(tornado_http_response_code(resp) == 200 && n == 0, "NULL from the producer: an empty body (%zu)", n);
    tornado_future_unref(f);
    tornado_future *late = tornado_http_body_writer_write(kept_writer, (const uint8_t *)"x", 1);
    CHECK(late != NULL && tornado_future_done(late) && tornado_future_error(late, NULL) == TORNADO_ERR_CLOSED,
          "a write after the upload ended fails with CLOSED");
    tornado_future_unref(late);
    CHECK(tornado_http_body_writer_write(NULL, (const uint8_t *)"x", 1) == NULL, "write(NULL writer)");
    CHECK(tornado_http_body_writer_write(kept_writer, NULL, 3) == NULL, "write(NULL data, 3)");
    tornado_http_body_writer_free(kept_writer);
    tornado_http_body_writer_free(NULL);
    tornado_http_request_free(r);
}

/* ---- a streaming callback that pauses the read ---- */

typedef struct {
    size_t bytes;
    int calls;
    tornado_future *gate; /* returned (a new reference) from the first call */
} reader_t;

static tornado_future *on_chunk(const uint8_t *data, size_t len, void *ud) {
    (void)data;
    reader_t *rd = ud;
    rd->bytes += len;
    rd->calls++;
    return rd->calls == 1 ? tornado_future_ref(rd->gate) : NULL;
}

static void test_pausing_stream(void) {
    tap_section("a streaming callback that pauses the read (gzipped and not)");
    for (int decompress = 0; decompress < 2; decompress++) {
        reader_t rd = {0};
        rd.gate = tornado_future_new(loop);
        tornado_http_request *r = tornado_http_request_new(url("TORNADO_TEST_TORNADO", "/big?n=4000000"));
        CHECK_OK(tornado_http_request_set_decompress_response(r, decompress), "decompress");
        CHECK_OK(tornado_http_request_set_streaming_callback_async(r, on_chunk, &rd, NULL), "streaming_callback_async");
        tornado_future *f = tornado_http_client_fetch(client, r);
        for (int i = 0; i < 400 && rd.calls == 0; i++) tornado_loop_run_once(loop, 0.05);
        CHECK(rd.calls == 1, "the first chunk came");
        size_t at = rd.bytes;
        double until = tap_now() + 0.3;
        while (tap_now() < until) tornado_loop_run_once(loop, 0.02);
        CHECK(rd.calls == 1 && rd.bytes == at && !tornado_future_done(f),
              "decompress %d: paused, nothing more read in 0.3 s (%d calls)", decompress, rd.calls);
        CHECK_OK(tornado_future_set_result(rd.gate, NULL, NULL), "let it go on");
        tornado_loop_run_sync(loop, f, 20);
        const tornado_http_response *resp = response_of(f);
        CHECK(tornado_http_response_code(resp) == 200 && rd.calls > 1, "then the rest (%d, %d calls)",
              tornado_http_response_code(resp), rd.calls);
        if (decompress) {
            const char *ce = tornado_http_response_header(resp, "Content-Encoding");
            CHECK(ce && strcmp(ce, "gzip") == 0 && rd.bytes == 4000000, "decoded: all 4,000,000 bytes (%zu)", rd.bytes);
        }
        tornado_future_unref(f);
        tornado_future_unref(rd.gate);
        tornado_http_request_free(r);
    }
}

static tornado_future *refuse_chunk(const uint8_t *data, size_t len, void *ud) {
    (void)data, (void)len, (void)ud;
    tornado_future *f = tornado_future_new(loop);
    tornado_future_set_error(f, TORNADO_ERR_USER, "the consumer is full");
    return f;
}

static void test_consumer_error(void) {
    tap_section("a consumer's error fails the fetch");
    tornado_http_request *r = tornado_http_request_new(url("TORNADO_TEST_TORNADO", "/big?n=100000"));
    CHECK_OK(tornado_http_request_set_streaming_callback_async(r, refuse_chunk, NULL, NULL), "callback");
    tornado_future *f = fetch_sync(r);
    const char *msg = NULL;
    tornado_code rc = tornado_future_error(f, &msg);
    CHECK(rc == TORNADO_ERR_USER && msg && strstr(msg, "consumer is full"), "its error (%s: %s)", tornado_code_name(rc),
          msg ? msg : "none");
    tornado_future_unref(f);
    tornado_http_request_free(r);
}

/* ---- digest, header bytes, counts ---- */

static void test_digest(void) {
    tap_section("Digest authentication against httpbin");
    const char *const algorithms[] = {"MD5", "SHA-256"};
    for (int i = 0; i < 2; i++) {
        char path[128];
        snprintf(path, sizeof path, "/digest-auth/auth/user/passwd/%s", algorithms[i]);
        tornado_http_request *r = tornado_http_request_new(url("TORNADO_TEST_HTTPBIN", path));
        CHECK_OK(tornado_http_request_set_auth(r, "user", "passwd"), "auth");
        CHECK_OK(tornado_http_request_set_auth_mode(r, "digest"), "auth_mode digest");
        tornado_future *f = fetch_sync(r);
        size_t n = 0;
        const uint8_t *b = tornado_http_response_body(response_of(f), &n);
        CHECK(tornado_http_response_code(response_of(f)) == 200 && b && memmem(b, n, "\"authenticated\": true", 21),
              "%s: authenticated (%d)", algorithms[i], tornado_http_response_code(response_of(f)));
        tornado_future_unref(f);
        CHECK_OK(tornado_http_request_set_auth(r, "user", "wrong"), "a wrong password");
        f = fetch_sync(r);
        CHECK(tornado_http_response_code(response_of(f)) == 401, "%s: 401", algorithms[i]);
        tornado_future_unref(f);
        tornado_http_request_free(r);
    }
}

static void test_header_bytes_and_counts(void) {
    tap_section("a Latin-1 header value on the wire; queue and active counts");
    tornado_http_request *r = tornado_http_request_new(url("TORNADO_TEST_HTTP", "/raw"));
    CHECK_OK(tornado_http_request_add_header_bytes(r, "X-Name", (const uint8_t *)"caf\xe9", 4), "add_header_bytes");
    tornado_future *f = fetch_sync(r);
    size_t n = 0;
    const uint8_t *b = tornado_http_response_body(response_of(f), &n);
    CHECK(b && memmem(b, n, "\r\nX-Name: caf\xe9\r\n", 16), "sent byte for byte");
    tornado_future_unref(f);
    tornado_http_request_free(r);

    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK_OK(tornado_http_client_options_set_max_clients(o, 2), "max_clients 2");
    tornado_http_client *c = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    CHECK(tornado_http_client_queued(c) == 0 && tornado_http_client_active(c) == 0, "a new client: 0 and 0");
    r = tornado_http_request_new(url("TORNADO_TEST_HTTP", "/slow"));
    tornado_future *fs[5];
    for (int i = 0; i < 5; i++) fs[i] = tornado_http_client_fetch(c, r);
    tornado_loop_run_once(loop, 0.05);
    CHECK(tornado_http_client_active(c) == 2 && tornado_http_client_queued(c) == 3, "2 active, 3 queued (%zu, %zu)",
          tornado_http_client_active(c), tornado_http_client_queued(c));
    CHECK_OK(tornado_future_cancel(fs[4]), "cancel a queued fetch");
    for (int i = 0; i < 50 && tornado_http_client_queued(c) == 3; i++) tornado_loop_run_once(loop, 0.01);
    CHECK(tornado_http_client_queued(c) == 2, "it left the queue (%zu)", tornado_http_client_queued(c));
    for (int i = 0; i < 4; i++) tornado_loop_run_sync(loop, fs[i], 20);
    CHECK(tornado_http_client_active(c) == 0 && tornado_http_client_queued(c) == 0, "all done: 0 and 0");
    for (int i = 0; i < 5; i++) tornado_future_unref(fs[i]);
    tornado_http_request_free(r);
    CHECK_OK(tornado_http_client_free(c), "client_free");
}

/* ---- a resolver of the caller's, endpoint mappings, OS error numbers ---- */

typedef struct {
    tornado_resolve_reply *reply;
    char host[64];
    int family, calls, drops;
    uint16_t server_port;
} resolver_t;

static void answer_later(void *ud) {
    resolver_t *res = ud;
    if (strcmp(res->host, "svc.test") == 0) {
        CHECK_OK(tornado_resolve_reply_add(res->reply, "::1", 1), "add ::1 (dropped: IPv4 was asked for)");
        CHECK_FAIL(tornado_resolve_reply_add(res->reply, "not-an-ip", 1), TORNADO_ERR_INVALID, "add(not an IP)");
        CHECK_OK(tornado_resolve_reply_add(res->reply, "127.0.0.1", res->server_port), "add 127.0.0.1");
        CHECK_OK(tornado_resolve_reply_done(res->reply), "done");
    } else {
        CHECK_OK(tornado_resolve_reply_fail(res->reply, TORNADO_ERR_USER, "unknown to this resolver"), "fail");
    }
}

static void resolve(const char *host, uint16_t port, int family, tornado_resolve_reply *reply, void *ud) {
    (void)port;
    resolver_t *res = ud;
    res->calls++;
    res->family = family;
    res->reply = reply;
    snprintf(res->host, sizeof res->host, "%s", host);
    tornado_loop_call_later(loop, 0.02, answer_later, res); /* answered later: asynchronous */
}

static void count_resolver_drop(void *ud) {
    ((resolver_t *)ud)->drops++;
}

static void test_resolver_and_mappings(void) {
    tap_section("a resolver of the caller's; (host, port) mappings; OS error numbers");
    const char *base = getenv("TORNADO_TEST_HTTP");
    resolver_t res = {0};
    res.server_port = (uint16_t)atoi(strrchr(base, ':') + 1);
    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK_OK(tornado_http_client_options_set_resolver(o, resolve, &res, count_resolver_drop), "set_resolver");
    char to[16];
    snprintf(to, sizeof to, "%u", res.server_port);
    CHECK_OK(tornado_http_client_options_add_endpoint_mapping(o, "mapped.test", 80, "svc.test", res.server_port),
             "add_endpoint_mapping");
    tornado_http_client *c = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    CHECK(res.drops == 0, "the resolver is kept by the client");

    char u[128];
    snprintf(u, sizeof u, "http://svc.test:%u/raw", res.server_port);
    tornado_http_request *r = tornado_http_request_new(u);
    CHECK_OK(tornado_http_request_set_allow_ipv6(r, false), "IPv4 only");
    tornado_future *f = tornado_http_client_fetch(c, r);
    tornado_loop_run_sync(loop, f, 20);
    CHECK(tornado_http_response_code(response_of(f)) == 200 && res.calls == 1 && res.family == AF_INET,
          "resolved by the callback, later (%d, %d calls, family %d)", tornado_http_response_code(response_of(f)),
          res.calls, res.family);
    tornado_future_unref(f);
    tornado_http_request_free(r);

    r = tornado_http_request_new("http://mapped.test/raw");
    f = tornado_http_client_fetch(c, r);
    tornado_loop_run_sync(loop, f, 20);
    size_t n = 0;
    const uint8_t *b = tornado_http_response_body(response_of(f), &n);
    CHECK(b && memmem(b, n, "\r\nHost: mapped.test\r\n", 21) && strcmp(res.host, "svc.test") == 0,
          "mapped to svc.test, which the callback resolved; the Host stays (%s)", res.host);
    tornado_future_unref(f);
    tornado_http_request_free(r);

    r = tornado_http_request_new("http://nowhere.test/");
    f = tornado_http_client_fetch(c, r);
    tornado_loop_run_sync(loop, f, 20);
    const char *msg = NULL;
    CHECK(tornado_future_error(f, &msg) == TORNADO_ERR_RESOLVE && msg && strstr(msg, "unknown to this resolver"),
          "a failed reply is a resolve error (%s)", msg ? msg : "none");
    CHECK(tornado_future_os_error(f) == 0, "with no OS error number");
    tornado_future_unref(f);
    tornado_http_request_free(r);
    CHECK_OK(tornado_http_client_free(c), "client_free");
    tornado_loop_run_once(loop, 0);
    CHECK(res.drops == 1, "the resolver's userdata dropped with the client (%d)", res.drops);

    /* A port nothing listens on: ECONNREFUSED, in both fetch forms. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &alen);
    close(s);
    snprintf(u, sizeof u, "http://127.0.0.1:%u/", ntohs(a.sin_port));
    r = tornado_http_request_new(u);
    f = fetch_sync(r);
    CHECK(tornado_future_error(f, NULL) == TORNADO_ERR_CONNECT && tornado_future_os_error(f) == ECONNREFUSED,
          "a refused connect carries ECONNREFUSED (%d)", tornado_future_os_error(f));
    tornado_future_unref(f);
    tornado_http_request_free(r);
    CHECK(tornado_future_os_error(NULL) == 0, "os_error(NULL) is 0");
}

int main(void) {
    tap_init("test_http_features");
    if (!getenv("TORNADO_TEST_TORNADO") || !getenv("TORNADO_TEST_HTTPBIN") || !getenv("TORNADO_TEST_HTTP")) {
        printf("# run through tests/c_programs.rs, which starts the servers\n");
        return 2;
    }
    loop = tornado_loop_new();
    client = tornado_http_client_new(loop, NULL);
    CHECK(client != NULL, "client");
    test_async_body_producer();
    test_producer_errors();
    test_pausing_stream();
    test_consumer_error();
    test_digest();
    test_header_bytes_and_counts();
    test_resolver_and_mappings();
    CHECK_OK(tornado_http_client_free(client), "client_free");
    tornado_loop_run_once(loop, 0);
    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
