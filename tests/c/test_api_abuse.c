/* test_api_abuse.c: the HTTP client, stream, TCP and TLS functions called
 * the wrong way: NULL handles and strings, out-of-range numbers, invalid
 * UTF-8, CR/LF in header values, nonexistent files, calls from a thread
 * that does not own the loop, and uses of closed or stopped objects. Each
 * returns its documented error (code, NULL, 0 or -1) with a fresh message,
 * never calls the drop function of a refused registration, and never
 * crashes; run under valgrind by `cargo test` (TORNADO_VALGRIND=1).
 * The loop, future, periodic and coroutine functions are abused in
 * test_bad_input.c; tests/c_programs.rs checks that between them the two
 * files name every function of the header. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fails.h"

static tornado_loop *loop;
static tornado_http_request *primer;
static tornado_http_client_options *primer_options;

static void prime(void) {
    tornado_http_client_options_add_hostname_mapping(primer_options, "primer.test", "primer-777");
    snprintf(primed, sizeof primed, "%s", tornado_last_error() ? tornado_last_error() : "");
}

static const char bad_utf8[] = "\xc0\xaf";

static void noop_cb(void *ud) {
    (void)ud;
}
static void noop_accept(tornado_iostream *s, const char *addr, void *ud) {
    (void)addr;
    (void)ud;
    tornado_iostream_unref(s);
}
static void noop_chunk(const uint8_t *data, size_t len, void *ud) {
    (void)data;
    (void)len;
    (void)ud;
}

/* A port on 127.0.0.1 where nothing listens. */
static uint16_t closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---------------- HTTP client options ---------------- */
static void abuse_client_options(void) {
    tap_section("http client options");
    tornado_http_client_options_free(NULL); /* documented no-op */
    FAILS(tornado_http_client_options_set_max_clients(NULL, 1), TORNADO_ERR_INVALID, "max_clients(NULL)");
    FAILS(tornado_http_client_options_set_max_buffer_size(NULL, 1), TORNADO_ERR_INVALID, "max_buffer_size(NULL)");
    FAILS(tornado_http_client_options_set_max_header_size(NULL, 1), TORNADO_ERR_INVALID, "max_header_size(NULL)");
    FAILS(tornado_http_client_options_set_max_body_size(NULL, 1), TORNADO_ERR_INVALID, "max_body_size(NULL)");
    FAILS(tornado_http_client_options_set_idle_timeout(NULL, 1), TORNADO_ERR_INVALID, "idle_timeout(NULL)");
    FAILS(tornado_http_client_options_set_max_idle_per_host(NULL, 1), TORNADO_ERR_INVALID, "max_idle_per_host(NULL)");
    FAILS(tornado_http_client_options_add_hostname_mapping(NULL, "a.test", "127.0.0.1"), TORNADO_ERR_INVALID,
          "add_hostname_mapping(NULL)");
    FAILS(tornado_http_client_options_set_defaults(NULL, primer), TORNADO_ERR_INVALID, "set_defaults(NULL)");

    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK(o != NULL, "options_new");
    FAILS(tornado_http_client_options_set_max_clients(o, 0), TORNADO_ERR_INVALID, "max_clients(0)");
    FAILS(tornado_http_client_options_set_max_buffer_size(o, 0), TORNADO_ERR_INVALID, "max_buffer_size(0)");
    FAILS(tornado_http_client_options_set_max_header_size(o, 0), TORNADO_ERR_INVALID, "max_header_size(0)");
    FAILS(tornado_http_client_options_set_max_body_size(o, 0), TORNADO_ERR_INVALID, "max_body_size(0)");
    const double bad_seconds[] = {0, -1, NAN, INFINITY};
    for (int i = 0; i < 4; i++)
        FAILS(tornado_http_client_options_set_idle_timeout(o, bad_seconds[i]), TORNADO_ERR_INVALID,
              "idle_timeout(%g)", bad_seconds[i]);
    CHECK_OK(tornado_http_client_options_set_max_idle_per_host(o, 0), "max_idle_per_host(0) turns pooling off");
    FAILS(tornado_http_client_options_add_hostname_mapping(o, NULL, "127.0.0.1"), TORNADO_ERR_INVALID,
          "hostname mapping with NULL host");
    FAILS(tornado_http_client_options_add_hostname_mapping(o, "a.test", NULL), TORNADO_ERR_INVALID,
          "hostname mapping with NULL address");
    FAILS(tornado_http_client_options_add_hostname_mapping(o, "a.test", "not-an-ip"), TORNADO_ERR_INVALID,
          "hostname mapping to a name, not an IP");
    FAILS(tornado_http_client_options_add_hostname_mapping(o, bad_utf8, "127.0.0.1"), TORNADO_ERR_INVALID,
          "hostname mapping with invalid UTF-8");
    CHECK_OK(tornado_http_client_options_set_defaults(o, NULL), "set_defaults(NULL request) removes them");
    FAILS(tornado_http_client_options_set_http_version(NULL, TORNADO_HTTP_VERSION_2), TORNADO_ERR_INVALID,
          "set_http_version(NULL options)");
    FAILS(tornado_http_client_options_set_http_version(o, 4), TORNADO_ERR_INVALID, "set_http_version(4)");
    FAILS(tornado_http_client_options_set_http_version(o, UINT32_MAX), TORNADO_ERR_INVALID,
          "set_http_version(UINT32_MAX)");
    CHECK_OK(tornado_http_client_options_set_http_version(o, TORNADO_HTTP_VERSION_2_PRIOR_KNOWLEDGE),
             "set_http_version(2 prior knowledge)");
    tornado_http_client_options_free(o);
}

/* ---------------- HTTP requests ---------------- */
static void abuse_requests(void) {
    tap_section("http requests");
    FAILS_NULL(tornado_http_request_new(NULL), "request_new(NULL)");
    FAILS_NULL(tornado_http_request_new(bad_utf8), "request_new(invalid UTF-8)");
    tornado_http_request_free(NULL); /* documented no-op */

    FAILS(tornado_http_request_set_method(NULL, "GET"), TORNADO_ERR_INVALID, "set_method(NULL request)");
    FAILS(tornado_http_request_add_header(NULL, "A", "b"), TORNADO_ERR_INVALID, "add_header(NULL request)");
    FAILS(tornado_http_request_set_body(NULL, (const uint8_t *)"x", 1), TORNADO_ERR_INVALID, "set_body(NULL request)");
    FAILS(tornado_http_request_set_connect_timeout(NULL, 1), TORNADO_ERR_INVALID, "connect_timeout(NULL request)");
    FAILS(tornado_http_request_set_request_timeout(NULL, 1), TORNADO_ERR_INVALID, "request_timeout(NULL request)");
    FAILS(tornado_http_request_set_follow_redirects(NULL, true), TORNADO_ERR_INVALID, "follow_redirects(NULL)");
    FAILS(tornado_http_request_set_max_redirects(NULL, 1), TORNADO_ERR_INVALID, "max_redirects(NULL)");
    FAILS(tornado_http_request_set_user_agent(NULL, "x"), TORNADO_ERR_INVALID, "user_agent(NULL)");
    FAILS(tornado_http_request_set_auth(NULL, "u", "p"), TORNADO_ERR_INVALID, "auth(NULL)");
    FAILS(tornado_http_request_set_auth_mode(NULL, "digest"), TORNADO_ERR_INVALID, "auth_mode(NULL)");
    FAILS(tornado_http_request_add_header_bytes(NULL, "A", (const uint8_t *)"b", 1), TORNADO_ERR_INVALID,
          "add_header_bytes(NULL request)");
    FAILS(tornado_http_request_set_decompress_response(NULL, true), TORNADO_ERR_INVALID, "decompress(NULL)");
    FAILS(tornado_http_request_set_validate_cert(NULL, true), TORNADO_ERR_INVALID, "validate_cert(NULL)");
    FAILS(tornado_http_request_set_ca_certs(NULL, "/x"), TORNADO_ERR_INVALID, "ca_certs(NULL)");
    FAILS(tornado_http_request_set_client_cert(NULL, "/x", "/y"), TORNADO_ERR_INVALID, "client_cert(NULL)");
    FAILS(tornado_http_request_set_allow_ipv6(NULL, true), TORNADO_ERR_INVALID, "allow_ipv6(NULL)");
    FAILS(tornado_http_request_set_network_interface(NULL, "127.0.0.1"), TORNADO_ERR_INVALID,
          "network_interface(NULL)");
    FAILS(tornado_http_request_set_if_modified_since(NULL, 1), TORNADO_ERR_INVALID, "if_modified_since(NULL)");
    FAILS(tornado_http_request_set_proxy(NULL, "127.0.0.1", 1, NULL, NULL), TORNADO_ERR_INVALID, "proxy(NULL)");
    FAILS(tornado_http_request_set_proxy_validate_cert(NULL, true), TORNADO_ERR_INVALID, "proxy_validate_cert(NULL)");
    FAILS(tornado_http_request_set_proxy_ca_certs(NULL, "/x"), TORNADO_ERR_INVALID, "proxy_ca_certs(NULL)");
    FAILS(tornado_http_request_set_allow_nonstandard_methods(NULL, true), TORNADO_ERR_INVALID,
          "allow_nonstandard_methods(NULL)");
    FAILS(tornado_http_request_set_expect_100_continue(NULL, true), TORNADO_ERR_INVALID, "expect_100(NULL)");
    FAILS(tornado_http_request_set_http_version(NULL, TORNADO_HTTP_VERSION_1_1), TORNADO_ERR_INVALID,
          "set_http_version(NULL request)");

    tap_section("http request callbacks: refused ones never call drop");
    {
        int drops = 0;
        FAILS(tornado_http_request_set_streaming_callback(NULL, noop_chunk, &drops, tap_count_drop),
              TORNADO_ERR_INVALID, "streaming_callback(NULL request)");
        FAILS(tornado_http_request_set_header_callback(NULL, NULL, &drops, tap_count_drop), TORNADO_ERR_INVALID,
              "header_callback(NULL request)");
        FAILS(tornado_http_request_set_body_producer(NULL, NULL, &drops, tap_count_drop), TORNADO_ERR_INVALID,
              "body_producer(NULL request)");
        FAILS(tornado_http_request_set_body_producer_async(NULL, NULL, &drops, tap_count_drop), TORNADO_ERR_INVALID,
              "body_producer_async(NULL request)");
        FAILS(tornado_http_request_set_streaming_callback_async(NULL, NULL, &drops, tap_count_drop),
              TORNADO_ERR_INVALID, "streaming_callback_async(NULL request)");
        FAILS_NULL(tornado_http_body_writer_write(NULL, (const uint8_t *)"x", 1), "body_writer_write(NULL)");
        tornado_http_body_writer_free(NULL); /* documented no-op */
        CHECK(drops == 0, "no drop function ran for refused callbacks (%d)", drops);
    }

    tap_section("http request values out of range");
    tornado_http_request *r = tornado_http_request_new("http://127.0.0.1/");
    CHECK(r != NULL, "request_new");
    FAILS(tornado_http_request_set_method(r, NULL), TORNADO_ERR_INVALID, "set_method(NULL)");
    FAILS(tornado_http_request_set_method(r, bad_utf8), TORNADO_ERR_INVALID, "set_method(invalid UTF-8)");
    FAILS(tornado_http_request_add_header(r, NULL, "v"), TORNADO_ERR_INVALID, "add_header(NULL name)");
    FAILS(tornado_http_request_add_header(r, "A", NULL), TORNADO_ERR_INVALID, "add_header(NULL value)");
    FAILS(tornado_http_request_add_header(r, "A", bad_utf8), TORNADO_ERR_INVALID, "add_header(invalid UTF-8)");
    FAILS(tornado_http_request_set_body(r, NULL, 5), TORNADO_ERR_INVALID, "set_body(NULL data, 5)");
    CHECK_OK(tornado_http_request_set_body(r, NULL, 0), "set_body(NULL, 0) is an empty body");
    FAILS(tornado_http_request_set_http_version(r, 4), TORNADO_ERR_INVALID, "set_http_version(4)");
    FAILS(tornado_http_request_set_http_version(r, (uint32_t)-1), TORNADO_ERR_INVALID, "set_http_version(-1)");
    CHECK_OK(tornado_http_request_set_http_version(r, TORNADO_HTTP_VERSION_ANY), "set_http_version(ANY)");
    const double bad_seconds[] = {-1, NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 4; i++) {
        FAILS(tornado_http_request_set_connect_timeout(r, bad_seconds[i]), TORNADO_ERR_INVALID,
              "connect_timeout(%g)", bad_seconds[i]);
        FAILS(tornado_http_request_set_request_timeout(r, bad_seconds[i]), TORNADO_ERR_INVALID,
              "request_timeout(%g)", bad_seconds[i]);
    }
    CHECK_OK(tornado_http_request_set_request_timeout(r, 0), "request_timeout(0) means none");
    FAILS(tornado_http_request_set_max_redirects(r, -1), TORNADO_ERR_INVALID, "max_redirects(-1)");
    CHECK_OK(tornado_http_request_set_auth(r, "user", NULL), "auth with a NULL password: an empty one");
    FAILS(tornado_http_request_set_auth(r, bad_utf8, "p"), TORNADO_ERR_INVALID, "auth(invalid UTF-8)");
    FAILS(tornado_http_request_set_auth_mode(r, "ntlm"), TORNADO_ERR_INVALID, "auth_mode(an unknown mode)");
    FAILS(tornado_http_request_set_auth_mode(r, NULL), TORNADO_ERR_INVALID, "auth_mode(NULL)");
    CHECK_OK(tornado_http_request_set_auth_mode(r, "digest"), "auth_mode digest");
    CHECK_OK(tornado_http_request_set_auth_mode(r, "basic"), "auth_mode basic");
    FAILS(tornado_http_request_add_header_bytes(r, "A", NULL, 3), TORNADO_ERR_INVALID, "add_header_bytes(NULL, 3)");
    FAILS(tornado_http_request_add_header_bytes(r, NULL, (const uint8_t *)"v", 1), TORNADO_ERR_INVALID,
          "add_header_bytes(NULL name)");
    FAILS(tornado_http_request_add_header_bytes(r, "A", (const uint8_t *)"a\r\nX: y", 8), TORNADO_ERR_INVALID,
          "add_header_bytes with CR LF");
    FAILS(tornado_http_request_add_header_bytes(r, "A", (const uint8_t *)"a\0b", 3), TORNADO_ERR_INVALID,
          "add_header_bytes with NUL");
    CHECK_OK(tornado_http_request_add_header_bytes(r, "A", (const uint8_t *)"caf\xe9", 4), "a Latin-1 value");
    CHECK_OK(tornado_http_request_add_header_bytes(r, "B", NULL, 0), "an empty value");
    FAILS(tornado_http_request_set_ca_certs(r, bad_utf8), TORNADO_ERR_INVALID, "ca_certs(invalid UTF-8)");
    FAILS(tornado_http_request_set_client_cert(r, "/cert.pem", NULL), TORNADO_ERR_INVALID,
          "client_cert without a key");
    FAILS(tornado_http_request_set_client_cert(r, NULL, "/key.pem"), TORNADO_ERR_INVALID,
          "client key without a certificate");
    CHECK_OK(tornado_http_request_set_client_cert(r, NULL, NULL), "client_cert(NULL, NULL) means none");
    FAILS(tornado_http_request_set_network_interface(r, "eth0"), TORNADO_ERR_INVALID,
          "network_interface(not an IP)");
    FAILS(tornado_http_request_set_if_modified_since(r, NAN), TORNADO_ERR_INVALID, "if_modified_since(NaN)");
    FAILS(tornado_http_request_set_if_modified_since(r, INFINITY), TORNADO_ERR_INVALID, "if_modified_since(inf)");
    FAILS(tornado_http_request_set_proxy(r, bad_utf8, 1, NULL, NULL), TORNADO_ERR_INVALID, "proxy(invalid UTF-8)");
    CHECK_OK(tornado_http_request_set_user_agent(r, NULL), "user_agent(NULL) restores the default");
    CHECK_OK(tornado_http_request_set_ca_certs(r, NULL), "ca_certs(NULL) restores the default roots");
    FAILS(tornado_http_request_set_proxy_ca_certs(r, bad_utf8), TORNADO_ERR_INVALID, "proxy_ca_certs(invalid UTF-8)");
    CHECK_OK(tornado_http_request_set_proxy_ca_certs(r, "/no/such/ca.pem"), "proxy_ca_certs: read when used");
    CHECK_OK(tornado_http_request_set_proxy_ca_certs(r, NULL), "proxy_ca_certs(NULL): the system's store");
    CHECK_OK(tornado_http_request_set_proxy_validate_cert(r, false), "proxy_validate_cert(false)");
    CHECK_OK(tornado_http_request_set_proxy(r, NULL, 0, NULL, NULL), "proxy(NULL) means none");
    CHECK_OK(tornado_http_request_set_streaming_callback(r, NULL, NULL, NULL), "streaming_callback(NULL) buffers");
    tornado_http_request_free(r);
}

/* ---------------- HTTP client and fetches ---------------- */
static int fetched;
static void on_fetch(const tornado_http_response *resp, void *ud) {
    (void)ud;
    fetched++;
    tap_section("http response accessors out of range");
    FAILS(tornado_http_response_header_at(resp, 0, NULL, NULL), TORNADO_ERR_NOT_FOUND,
          "header_at(0) of a response without headers (NULL outs allowed)");
    {
        const char *name = NULL, *value = NULL;
        FAILS(tornado_http_response_header_at(resp, 1000, &name, &value), TORNADO_ERR_NOT_FOUND,
              "header_at past the end");
        const uint8_t *bytes = NULL;
        size_t n = 0;
        FAILS(tornado_http_response_header_bytes_at(resp, 0, &name, &bytes, &n), TORNADO_ERR_NOT_FOUND,
              "header_bytes_at past the end");
        FAILS(tornado_http_response_header_bytes_at(resp, 0, NULL, NULL, &n), TORNADO_ERR_INVALID,
              "header_bytes_at with a NULL value pointer");
        FAILS(tornado_http_response_header_bytes_at(resp, 0, NULL, &bytes, NULL), TORNADO_ERR_INVALID,
              "header_bytes_at with a NULL length pointer");
    }
    FAILS_NULL(tornado_http_response_header(resp, NULL), "header(NULL name)");
    FAILS(tornado_http_response_time_info(resp, NULL), TORNADO_ERR_INVALID, "time_info(NULL out)");
    CHECK(tornado_http_response_code(resp) == 599, "a refused connection is 599 (%d)", tornado_http_response_code(resp));
    CHECK(tornado_http_response_error_code(resp) == TORNADO_ERR_CONNECT, "with CONNECT (%s)",
          tornado_code_name(tornado_http_response_error_code(resp)));
    tornado_loop_stop(loop);
}

static void abuse_responses_with_null(void) {
    tap_section("http response accessors with NULL");
    size_t len = 7;
    tornado_http_time_info info;
    const char *name = NULL, *value = NULL;
    FAILS_AS(tornado_http_response_code(NULL), 0, "code(NULL) == 0");
    FAILS_AS(tornado_http_response_version(NULL), 0, "version(NULL) == 0");
    FAILS_NULL(tornado_http_response_reason(NULL), "reason(NULL)");
    FAILS_NULL(tornado_http_response_body(NULL, &len), "body(NULL)");
    CHECK(len == 0, "body(NULL) sets len to 0 (%zu)", len);
    FAILS_NULL(tornado_http_response_header(NULL, "A"), "header(NULL)");
    FAILS_AS(tornado_http_response_header_count(NULL), 0, "header_count(NULL) == 0");
    FAILS(tornado_http_response_header_at(NULL, 0, &name, &value), TORNADO_ERR_INVALID, "header_at(NULL)");
    const uint8_t *bytes = NULL;
    FAILS(tornado_http_response_header_bytes_at(NULL, 0, &name, &bytes, &len), TORNADO_ERR_INVALID,
          "header_bytes_at(NULL)");
    FAILS_NULL(tornado_http_response_effective_url(NULL), "effective_url(NULL)");
    FAILS_AS(tornado_http_response_request_time(NULL), -1.0, "request_time(NULL) == -1");
    FAILS_AS(tornado_http_response_start_time(NULL), -1.0, "start_time(NULL) == -1");
    FAILS(tornado_http_response_time_info(NULL, &info), TORNADO_ERR_INVALID, "time_info(NULL)");
    FAILS_NULL(tornado_http_response_error(NULL), "error(NULL)");
    FAILS(tornado_http_response_error_code(NULL), TORNADO_ERR_INVALID, "error_code(NULL)");
    FAILS_AS(tornado_http_response_os_error(NULL), 0, "os_error(NULL) == 0");
    len = 7;
    FAILS_NULL(tornado_http_response_header_block(NULL, &len), "header_block(NULL)");
    CHECK(len == 0, "header_block(NULL) sets len to 0");
}

typedef struct {
    tornado_http_client *client;
    tornado_http_request *request;
    tornado_iostream *stream;
    tornado_tcp_server *server;
    int ok;
} wrong_thread_args;

/* Every call that belongs to the loop's thread, made from another one. */
static void *wrong_thread(void *arg) {
    wrong_thread_args *a = arg;
    int drops = 0;
    int ok = 1;
    ok &= tornado_http_client_new(loop, NULL) == NULL;
    ok &= tornado_http_client_fetch(a->client, a->request) == NULL;
    ok &= tornado_http_client_fetch_cb(a->client, a->request, on_fetch, NULL) == TORNADO_ERR_WRONG_THREAD;
    ok &= tornado_http_client_fetch_cb_full(a->client, a->request, on_fetch, &drops, tap_count_drop) ==
          TORNADO_ERR_WRONG_THREAD;
    /* the request belongs to the thread that made it (issue 12 #14) */
    ok &= tornado_http_request_set_method(a->request, "POST") == TORNADO_ERR_WRONG_THREAD;
    ok &= tornado_http_request_add_header(a->request, "X-A", "1") == TORNADO_ERR_WRONG_THREAD;
    ok &= tornado_http_request_set_streaming_callback(a->request, NULL, &drops, tap_count_drop) ==
          TORNADO_ERR_WRONG_THREAD;
    tornado_http_request_free(a->request); /* refused: logs, frees nothing */
    ok &= TAP_HAS_ERRMSG();
    ok &= tornado_http_client_cancel_all(a->client) == TORNADO_ERR_WRONG_THREAD;
    ok &= tornado_http_client_free(a->client) == TORNADO_ERR_WRONG_THREAD;
    ok &= tornado_http_client_request_new(a->client, "http://127.0.0.1/") == NULL;
    ok &= tornado_iostream_new_fd(loop, 0) == NULL;
    ok &= tornado_iostream_ref(a->stream) == NULL;
    ok &= tornado_iostream_write(a->stream, (const uint8_t *)"x", 1) == NULL;
    ok &= tornado_iostream_read_until_close(a->stream) == NULL;
    ok &= tornado_iostream_set_close_callback(a->stream, noop_cb, &drops, tap_count_drop) == TORNADO_ERR_WRONG_THREAD;
    ok &= tornado_iostream_set_nodelay(a->stream, true) == TORNADO_ERR_WRONG_THREAD;
    ok &= tornado_iostream_close(a->stream) == TORNADO_ERR_WRONG_THREAD;
    ok &= tornado_iostream_start_tls_client(a->stream, "localhost", NULL) == NULL;
    ok &= tornado_tcp_connect(loop, "127.0.0.1", 1, 1) == NULL;
    ok &= tornado_tcp_connect_tls(loop, "127.0.0.1", 1, 1, NULL) == NULL;
    ok &= tornado_tcp_server_new(loop, "127.0.0.1", 0, 0, noop_accept, &drops, tap_count_drop) == NULL;
    ok &= tornado_tcp_server_stop(a->server) == TORNADO_ERR_WRONG_THREAD;
    ok &= tornado_tcp_server_free(a->server) == TORNADO_ERR_WRONG_THREAD;
    ok &= TAP_HAS_ERRMSG();
    ok &= drops == 0;
    a->ok = ok;
    return NULL;
}

static void abuse_client(void) {
    tap_section("http client");
    FAILS_NULL(tornado_http_client_new(NULL, NULL), "client_new(NULL loop)");
    FAILS(tornado_http_client_free(NULL), TORNADO_ERR_INVALID, "client_free(NULL)");
    FAILS(tornado_http_client_cancel_all(NULL), TORNADO_ERR_INVALID, "cancel_all(NULL)");
    FAILS_AS(tornado_http_client_idle_connections(NULL), 0, "idle_connections(NULL) == 0");
    FAILS_AS(tornado_http_client_connections_opened(NULL), 0, "connections_opened(NULL) == 0");
    FAILS_AS(tornado_http_client_http2_connections(NULL), 0, "http2_connections(NULL) == 0");
    FAILS_AS(tornado_http_client_queued(NULL), 0, "queued(NULL) == 0");
    FAILS(tornado_http_client_options_set_resolver(NULL, NULL, NULL, NULL), TORNADO_ERR_INVALID,
          "set_resolver(NULL options)");
    FAILS(tornado_http_client_options_add_endpoint_mapping(NULL, "a", 80, "b", 81), TORNADO_ERR_INVALID,
          "add_endpoint_mapping(NULL options)");
    {
        tornado_http_client_options *o = tornado_http_client_options_new();
        FAILS(tornado_http_client_options_add_endpoint_mapping(o, NULL, 80, "b", 81), TORNADO_ERR_INVALID,
              "add_endpoint_mapping(NULL host)");
        FAILS(tornado_http_client_options_add_endpoint_mapping(o, "a", 80, "", 81), TORNADO_ERR_INVALID,
              "add_endpoint_mapping(empty to_host)");
        CHECK_OK(tornado_http_client_options_set_resolver(o, NULL, NULL, NULL), "set_resolver(NULL cb): the default");
        tornado_http_client_options_free(o);
    }
    FAILS(tornado_resolve_reply_add(NULL, "127.0.0.1", 80), TORNADO_ERR_INVALID, "resolve_reply_add(NULL)");
    FAILS(tornado_resolve_reply_done(NULL), TORNADO_ERR_INVALID, "resolve_reply_done(NULL)");
    FAILS(tornado_resolve_reply_fail(NULL, TORNADO_ERR_USER, "x"), TORNADO_ERR_INVALID, "resolve_reply_fail(NULL)");
    FAILS_AS(tornado_future_os_error(NULL), 0, "future_os_error(NULL) == 0");
    FAILS_AS(tornado_http_client_active(NULL), 0, "active(NULL) == 0");
    FAILS_NULL(tornado_http_client_request_new(NULL, "http://127.0.0.1/"), "client_request_new(NULL client)");

    tornado_http_client *client = tornado_http_client_new(loop, NULL);
    CHECK(client != NULL, "client_new with default options");
    FAILS_NULL(tornado_http_client_request_new(client, NULL), "client_request_new(NULL url)");
    FAILS_NULL(tornado_http_client_fetch(NULL, primer), "fetch(NULL client)");
    FAILS_NULL(tornado_http_client_fetch(client, NULL), "fetch(NULL request)");
    FAILS(tornado_http_client_fetch_cb(NULL, primer, on_fetch, NULL), TORNADO_ERR_INVALID, "fetch_cb(NULL client)");
    FAILS(tornado_http_client_fetch_cb(client, NULL, on_fetch, NULL), TORNADO_ERR_INVALID, "fetch_cb(NULL request)");
    FAILS(tornado_http_client_fetch_cb(client, primer, NULL, NULL), TORNADO_ERR_INVALID, "fetch_cb(NULL callback)");
    {
        int drops = 0;
        FAILS(tornado_http_client_fetch_cb_full(NULL, primer, on_fetch, &drops, tap_count_drop), TORNADO_ERR_INVALID,
              "fetch_cb_full(NULL client)");
        FAILS(tornado_http_client_fetch_cb_full(client, NULL, on_fetch, &drops, tap_count_drop), TORNADO_ERR_INVALID,
              "fetch_cb_full(NULL request)");
        FAILS(tornado_http_client_fetch_cb_full(client, primer, NULL, &drops, tap_count_drop), TORNADO_ERR_INVALID,
              "fetch_cb_full(NULL callback)");
        CHECK(drops == 0, "refused fetch_cb_full calls drop nothing");
    }

    /* A fetch to a port where nothing listens gives a real response object
     * (599, connect error) to abuse the accessors with. */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", closed_port());
    tornado_http_request *r = tornado_http_client_request_new(client, url);
    CHECK(r != NULL, "client_request_new");
    CHECK_OK(tornado_http_client_fetch_cb(client, r, on_fetch, NULL), "fetch_cb to a closed port");
    CHECK_OK(tornado_loop_start(loop), "loop runs until the fetch ends");
    CHECK(fetched == 1, "the callback ran once (%d)", fetched);

    tap_section("http client: requests refused when fetched, before anything is sent");
    {
        struct {
            const char *what, *method, *header_value, *user_agent;
        } refused[] = {
            {"a CR LF header value", "GET", "v\r\nX-Injected: 1", NULL},
            {"a NUL-free LF header value", "GET", "v\nX-Injected: 1", NULL},
            {"an empty method", "", "v", NULL},
            {"a method with CR LF", "GET / HTTP/1.1\r\nX: y\r\n", "v", NULL},
            {"a User-Agent with CR LF", "GET", "v", "agent\r\nX-Injected: 1"},
        };
        for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
            tornado_http_request *q = tornado_http_request_new(url);
            CHECK_OK(tornado_http_request_set_method(q, refused[i].method), "%s: set_method accepts it", refused[i].what);
            CHECK_OK(tornado_http_request_add_header(q, "X-A", refused[i].header_value), "%s: add_header accepts it",
                     refused[i].what);
            if (refused[i].user_agent) CHECK_OK(tornado_http_request_set_user_agent(q, refused[i].user_agent), "ua");
            tornado_future *f = tornado_http_client_fetch(client, q);
            CHECK(f != NULL, "%s: fetch returns a future", refused[i].what);
            if (f) {
                const char *msg = NULL;
                CHECK(tornado_loop_run_sync(loop, f, 5) != TORNADO_OK, "%s: the fetch fails", refused[i].what);
                tornado_future_error(f, &msg);
                CHECK(msg && strncmp(msg, "invalid_request", 15) == 0, "%s: as invalid_request (%s)", refused[i].what,
                      msg ? msg : "NULL");
                tornado_future_unref(f);
            }
            tornado_http_request_free(q);
        }
    }
    {
        tornado_http_request *bad = tornado_http_request_new("ftp://127.0.0.1/");
        CHECK(bad != NULL, "request_new accepts any string; the URL is checked when fetched");
        tornado_future *f = tornado_http_client_fetch(client, bad);
        CHECK(f != NULL, "fetch returns a future");
        if (f) {
            CHECK_CODE(tornado_loop_run_sync(loop, f, 5), TORNADO_ERR_INVALID_URL, "which fails with INVALID_URL");
            tornado_future_unref(f);
        }
        tornado_http_request_free(bad);
    }

    tap_section("calls from a thread that does not own the loop");
    {
        int sv[2];
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        wrong_thread_args a = {.client = client, .request = r};
        a.stream = tornado_iostream_new_fd(loop, sv[0]);
        a.server = tornado_tcp_server_new(loop, "127.0.0.1", 0, 0, noop_accept, NULL, NULL);
        CHECK(a.stream && a.server, "a stream and a server to misuse");
        pthread_t t;
        pthread_create(&t, NULL, wrong_thread, &a);
        pthread_join(t, NULL);
        CHECK(a.ok, "every loop-thread call refused with WRONG_THREAD / NULL and a message, no drop run");
        CHECK(!tornado_iostream_closed(a.stream), "the stream is untouched");
        tornado_iostream_unref(a.stream);
        close(sv[1]);
        CHECK_OK(tornado_tcp_server_free(a.server), "the server is freed by its owner");
    }
    tornado_http_request_free(r);
    CHECK_OK(tornado_http_client_free(client), "client_free");
}

/* ---------------- streams ---------------- */
static void abuse_streams(void) {
    tap_section("streams with NULL");
    const char *msg = NULL;
    char buf[16];
    int drops = 0;
    FAILS_NULL(tornado_iostream_new_fd(NULL, 0), "new_fd(NULL loop)");
    FAILS_NULL(tornado_iostream_new_fd(loop, -1), "new_fd(-1)");
    FAILS_NULL(tornado_iostream_ref(NULL), "ref(NULL)");
    tornado_iostream_unref(NULL); /* documented no-op */
    FAILS(tornado_iostream_close(NULL), TORNADO_ERR_INVALID, "close(NULL)");
    FAILS_AS(tornado_iostream_closed(NULL), false, "closed(NULL) is false");
    FAILS(tornado_iostream_error(NULL, &msg), TORNADO_ERR_INVALID, "error(NULL)");
    FAILS_AS(tornado_iostream_fd(NULL), -1, "fd(NULL) == -1");
    FAILS(tornado_iostream_set_max_buffer_size(NULL, 1), TORNADO_ERR_INVALID, "set_max_buffer_size(NULL)");
    FAILS(tornado_iostream_set_nodelay(NULL, true), TORNADO_ERR_INVALID, "set_nodelay(NULL)");
    FAILS(tornado_iostream_set_close_callback(NULL, noop_cb, &drops, tap_count_drop), TORNADO_ERR_INVALID,
          "set_close_callback(NULL)");
    FAILS_NULL(tornado_iostream_read_until(NULL, (const uint8_t *)"\n", 1, 0), "read_until(NULL)");
    FAILS_NULL(tornado_iostream_read_bytes(NULL, 1, false), "read_bytes(NULL)");
    FAILS_NULL(tornado_iostream_read_until_close(NULL), "read_until_close(NULL)");
    FAILS_NULL(tornado_iostream_write(NULL, (const uint8_t *)"x", 1), "write(NULL)");
    FAILS_NULL(tornado_iostream_start_tls_client(NULL, "localhost", NULL), "start_tls_client(NULL)");
    FAILS_NULL(tornado_iostream_start_tls_server(NULL, NULL), "start_tls_server(NULL)");
    FAILS_AS(tornado_iostream_alpn_protocol(NULL, buf, sizeof buf), 0, "alpn_protocol(NULL) == 0");
    FAILS_AS(tornado_iostream_is_tls(NULL), false, "is_tls(NULL) is false");
    FAILS_AS(tornado_iostream_tls_version(NULL, buf, sizeof buf), 0, "tls_version(NULL) == 0");
    FAILS_AS(tornado_iostream_tls_cipher(NULL, buf, sizeof buf), 0, "tls_cipher(NULL) == 0");
    FAILS_AS(tornado_iostream_tls_resumed(NULL), -1, "tls_resumed(NULL) == -1");
    {
        size_t n = 99;
        CHECK(tornado_buffer_data(NULL, &n) == NULL && n == 0, "buffer_data(NULL) is NULL, length 0 (%zu)", n);
        CHECK(tornado_buffer_data(NULL, NULL) == NULL, "buffer_data(NULL, NULL len) does not crash");
    }

    tap_section("streams with bad arguments");
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    tornado_iostream *s = tornado_iostream_new_fd(loop, sv[0]);
    CHECK(s != NULL, "new_fd(socketpair)");
    FAILS_NULL(tornado_iostream_new_fd(loop, sv[0]), "the same fd twice");
    FAILS(tornado_iostream_set_max_buffer_size(s, 0), TORNADO_ERR_INVALID, "set_max_buffer_size(0)");
    FAILS(tornado_iostream_set_close_callback(s, NULL, &drops, tap_count_drop), TORNADO_ERR_INVALID,
          "set_close_callback(NULL cb)");
    FAILS_NULL(tornado_iostream_read_until(s, NULL, 1, 0), "read_until(NULL delimiter)");
    FAILS_NULL(tornado_iostream_read_until(s, (const uint8_t *)"\n", 0, 0), "read_until(empty delimiter)");
    FAILS_NULL(tornado_iostream_write(s, NULL, 1), "write(NULL data, 1)");
    FAILS_NULL(tornado_iostream_start_tls_client(s, bad_utf8, NULL), "start_tls_client(invalid UTF-8 name)");
    FAILS_NULL(tornado_iostream_start_tls_server(s, NULL), "start_tls_server(NULL config)");
    CHECK(drops == 0, "no drop function ran for refused callbacks (%d)", drops);
    CHECK(tornado_iostream_alpn_protocol(s, NULL, 0) == 0, "alpn_protocol of a plain stream is empty");
    CHECK(tornado_iostream_tls_version(s, NULL, 0) == 0, "tls_version of a plain stream is empty");
    CHECK(tornado_iostream_tls_cipher(s, NULL, 0) == 0, "tls_cipher of a plain stream is empty");
    CHECK(tornado_iostream_tls_resumed(s) == -1, "tls_resumed of a plain stream is -1");

    tap_section("a closed stream");
    CHECK_OK(tornado_iostream_close(s), "close");
    CHECK_OK(tornado_iostream_close(s), "close again is harmless");
    CHECK(tornado_iostream_closed(s), "closed");
    CHECK(tornado_iostream_fd(s) == -1, "fd is -1 once closed");
    tornado_future *f = tornado_iostream_write(s, (const uint8_t *)"x", 1);
    CHECK(f == NULL || tornado_loop_run_sync(loop, f, 5) == TORNADO_ERR_CLOSED, "a write fails with CLOSED");
    if (f) tornado_future_unref(f);
    f = tornado_iostream_read_bytes(s, 1, false);
    CHECK(f == NULL || tornado_loop_run_sync(loop, f, 5) == TORNADO_ERR_CLOSED, "a read fails with CLOSED");
    if (f) tornado_future_unref(f);
    f = tornado_iostream_start_tls_client(s, "localhost", NULL);
    CHECK(f == NULL || tornado_loop_run_sync(loop, f, 5) == TORNADO_ERR_CLOSED, "start_tls fails with CLOSED");
    if (f) tornado_future_unref(f);
    tornado_iostream_unref(s);
    close(sv[1]);
}

/* ---------------- TCP ---------------- */
static void abuse_tcp(void) {
    tap_section("tcp connect and server");
    int drops = 0;
    FAILS_NULL(tornado_tcp_connect(NULL, "127.0.0.1", 1, 1), "connect(NULL loop)");
    FAILS_NULL(tornado_tcp_connect(loop, NULL, 1, 1), "connect(NULL host)");
    FAILS_NULL(tornado_tcp_connect(loop, bad_utf8, 1, 1), "connect(invalid UTF-8 host)");
    FAILS_NULL(tornado_tcp_connect(loop, "127.0.0.1", 0, 1), "connect to port 0");
    FAILS_NULL(tornado_tcp_connect(loop, "127.0.0.1", 1, NAN), "connect(NaN timeout)");
    FAILS_NULL(tornado_tcp_connect(loop, "127.0.0.1", 1, -1), "connect(negative timeout)");
    FAILS_NULL(tornado_tcp_connect_tls(NULL, "127.0.0.1", 1, 1, NULL), "connect_tls(NULL loop)");
    FAILS_NULL(tornado_tcp_connect_tls(loop, NULL, 1, 1, NULL), "connect_tls(NULL host)");
    FAILS_NULL(tornado_tcp_connect_tls(loop, "127.0.0.1", 1, INFINITY * 0, NULL), "connect_tls(NaN timeout)");
    FAILS_NULL(tornado_tcp_server_new(NULL, "127.0.0.1", 0, 0, noop_accept, &drops, tap_count_drop),
               "server_new(NULL loop)");
    FAILS_NULL(tornado_tcp_server_new(loop, NULL, 0, 0, noop_accept, &drops, tap_count_drop), "server_new(NULL host)");
    FAILS_NULL(tornado_tcp_server_new(loop, "127.0.0.1", 0, 0, NULL, &drops, tap_count_drop), "server_new(NULL cb)");
    FAILS_NULL(tornado_tcp_server_new(loop, "256.0.0.1", 0, 0, noop_accept, &drops, tap_count_drop),
               "server_new(bad address)");
    FAILS_NULL(tornado_tcp_server_new(loop, "127.0.0.1", 0, -5, noop_accept, &drops, tap_count_drop),
               "server_new(negative backlog)");
    CHECK(drops == 0, "no drop function ran for refused servers (%d)", drops);
    FAILS_AS(tornado_tcp_server_port(NULL), 0, "server_port(NULL) == 0");
    FAILS(tornado_tcp_server_set_tls(NULL, NULL), TORNADO_ERR_INVALID, "server_set_tls(NULL)");
    FAILS(tornado_tcp_server_stop(NULL), TORNADO_ERR_INVALID, "server_stop(NULL)");
    FAILS(tornado_tcp_server_free(NULL), TORNADO_ERR_INVALID, "server_free(NULL)");

    tap_section("a stopped server");
    tornado_tcp_server *server = tornado_tcp_server_new(loop, "127.0.0.1", 0, 0, noop_accept, &drops, tap_count_drop);
    CHECK(server != NULL, "server_new");
    uint16_t port = tornado_tcp_server_port(server);
    FAILS_NULL(tornado_tcp_server_new(loop, "127.0.0.1", port, 0, noop_accept, &drops, tap_count_drop),
               "a second server on the same port");
    CHECK(drops == 0, "whose drop function did not run");
    CHECK_OK(tornado_tcp_server_set_tls(server, NULL), "server_set_tls(NULL config) turns TLS off");

    tap_section("TLS files are read when a connection starts");
    {
        tornado_tls_options *o = tornado_tls_options_new();
        CHECK_OK(tornado_tls_options_set_ca_file(o, "/nonexistent.pem"), "set_ca_file(missing file) is stored");
        FAILS_NULL(tornado_tcp_connect_tls(loop, "127.0.0.1", port, 5, o), "connect_tls then fails at once");
        CHECK(strstr(tap_last_error_(), "/nonexistent.pem") != NULL, "naming the file (%s)", tap_last_error_());
        CHECK_OK(tornado_tls_options_set_ca_file(o, "/etc/hostname"), "set_ca_file(not PEM) is stored");
        FAILS_NULL(tornado_tcp_connect_tls(loop, "127.0.0.1", port, 5, o), "connect_tls then fails at once");
        CHECK_OK(tornado_tls_options_set_ca_file(o, NULL), "ca_file(NULL): the default roots");
        CHECK_OK(tornado_tls_options_set_client_cert(o, "/nonexistent.pem", "/nonexistent.key"), "client_cert stored");
        FAILS_NULL(tornado_tcp_connect_tls(loop, "127.0.0.1", port, 5, o), "connect_tls with missing client cert");
        tornado_tls_options_free(o);
    }

    CHECK_OK(tornado_tcp_server_stop(server), "stop");
    CHECK_OK(tornado_tcp_server_stop(server), "stop again is harmless");
    CHECK_OK(tornado_tcp_server_free(server), "free a stopped server");
    CHECK_OK(tornado_loop_run_once(loop, 0), "one iteration");
    CHECK(drops == 1, "its drop function ran once, from the loop (%d)", drops);
}

/* ---------------- HTTP request TLS options (ssl_options) ---------------- */
static void abuse_request_tls(void) {
    tap_section("http request TLS options");
    static const char broken[] = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    const uint8_t *pem = (const uint8_t *)"x";
    const char *alpn[] = {"http/1.1"};
    FAILS(tornado_http_request_set_ca_pem(NULL, pem, 1), TORNADO_ERR_INVALID, "set_ca_pem(NULL request)");
    FAILS(tornado_http_request_set_client_cert_pem(NULL, pem, 1, pem, 1), TORNADO_ERR_INVALID,
          "set_client_cert_pem(NULL request)");
    FAILS(tornado_http_request_set_min_tls_version(NULL, "1.2"), TORNADO_ERR_INVALID,
          "set_min_tls_version(NULL request)");
    FAILS(tornado_http_request_set_alpn(NULL, alpn, 1), TORNADO_ERR_INVALID, "set_alpn(NULL request)");
    FAILS(tornado_http_request_set_server_name(NULL, "a.test"), TORNADO_ERR_INVALID,
          "set_server_name(NULL request)");

    tornado_http_request *r = tornado_http_request_new("https://127.0.0.1/");
    CHECK(r != NULL, "request_new");
    FAILS(tornado_http_request_set_ca_pem(r, NULL, 5), TORNADO_ERR_INVALID, "set_ca_pem(NULL, 5)");
    FAILS(tornado_http_request_set_ca_pem(r, pem, 0), TORNADO_ERR_INVALID, "set_ca_pem(empty)");
    FAILS(tornado_http_request_set_ca_pem(r, (const uint8_t *)"garbage", 7), TORNADO_ERR_INVALID,
          "set_ca_pem(no certificate)");
    FAILS(tornado_http_request_set_ca_pem(r, (const uint8_t *)broken, strlen(broken)), TORNADO_ERR_INVALID,
          "set_ca_pem(a malformed certificate)");
    CHECK_OK(tornado_http_request_set_ca_pem(r, NULL, 0), "set_ca_pem(NULL, 0) removes it");
    FAILS(tornado_http_request_set_client_cert_pem(r, pem, 1, NULL, 0), TORNADO_ERR_INVALID,
          "set_client_cert_pem without a key");
    FAILS(tornado_http_request_set_client_cert_pem(r, NULL, 0, pem, 1), TORNADO_ERR_INVALID,
          "set_client_cert_pem without a certificate");
    FAILS(tornado_http_request_set_client_cert_pem(r, NULL, 3, NULL, 3), TORNADO_ERR_INVALID,
          "set_client_cert_pem(NULL with lengths)");
    FAILS(tornado_http_request_set_client_cert_pem(r, (const uint8_t *)broken, strlen(broken), pem, 1),
          TORNADO_ERR_INVALID, "set_client_cert_pem(malformed PEM)");
    CHECK_OK(tornado_http_request_set_client_cert_pem(r, NULL, 0, NULL, 0), "set_client_cert_pem(none)");
    const char *versions[] = {"1.0", "1.1", "1.4", "", "TLSv1.3", bad_utf8};
    for (int i = 0; i < 6; i++)
        FAILS(tornado_http_request_set_min_tls_version(r, versions[i]), TORNADO_ERR_INVALID,
              "set_min_tls_version(%s)", versions[i]);
    CHECK_OK(tornado_http_request_set_min_tls_version(r, NULL), "set_min_tls_version(NULL): the default");
    CHECK_OK(tornado_http_request_set_min_tls_version(r, "1.3"), "set_min_tls_version(1.3)");
    FAILS(tornado_http_request_set_alpn(r, NULL, 2), TORNADO_ERR_INVALID, "set_alpn(NULL, 2)");
    {
        char longest[300];
        memset(longest, 'a', sizeof longest - 1);
        longest[sizeof longest - 1] = '\0';
        const char *bad[][2] = {{"h2", NULL}, {"h2", ""}, {"h2", longest}};
        for (int i = 0; i < 3; i++)
            FAILS(tornado_http_request_set_alpn(r, bad[i], 2), TORNADO_ERR_INVALID, "set_alpn(bad protocol %d)", i);
    }
    CHECK_OK(tornado_http_request_set_alpn(r, alpn, 0), "set_alpn(array, 0): none offered");
    CHECK_OK(tornado_http_request_set_alpn(r, NULL, 0), "set_alpn(NULL, 0): the default");
    FAILS(tornado_http_request_set_server_name(r, ""), TORNADO_ERR_INVALID, "set_server_name(\"\")");
    FAILS(tornado_http_request_set_server_name(r, "not a name"), TORNADO_ERR_INVALID,
          "set_server_name(with spaces)");
    FAILS(tornado_http_request_set_server_name(r, bad_utf8), TORNADO_ERR_INVALID, "set_server_name(invalid UTF-8)");
    CHECK_OK(tornado_http_request_set_server_name(r, "mtls.test"), "set_server_name(a DNS name)");
    CHECK_OK(tornado_http_request_set_server_name(r, "127.0.0.1"), "set_server_name(an IP address)");
    CHECK_OK(tornado_http_request_set_server_name(r, NULL), "set_server_name(NULL): the URL's host");
    tornado_http_request_free(r);
}

/* ---------------- TLS ---------------- */
static void abuse_tls(void) {
    tap_section("tls options and server configs");
    tornado_tls_options_free(NULL);        /* documented no-op */
    tornado_tls_server_config_free(NULL); /* documented no-op */
    FAILS(tornado_tls_options_set_validate_cert(NULL, true), TORNADO_ERR_INVALID, "set_validate_cert(NULL)");
    FAILS(tornado_tls_options_set_ca_file(NULL, "/x"), TORNADO_ERR_INVALID, "set_ca_file(NULL)");
    FAILS(tornado_tls_options_set_client_cert(NULL, "/x", "/y"), TORNADO_ERR_INVALID, "set_client_cert(NULL)");
    FAILS(tornado_tls_options_add_alpn(NULL, "h2"), TORNADO_ERR_INVALID, "add_alpn(NULL)");
    FAILS(tornado_tls_server_config_add_alpn(NULL, "h2"), TORNADO_ERR_INVALID, "server add_alpn(NULL)");
    FAILS_NULL(tornado_tls_server_config_new(NULL, NULL), "server_config_new(NULL files)");
    FAILS_NULL(tornado_tls_server_config_new("/nonexistent.pem", "/nonexistent.key"), "server_config_new(missing)");
    FAILS_NULL(tornado_tls_server_config_new("/etc/hostname", "/etc/hostname"), "server_config_new(not PEM)");

    tornado_tls_options *o = tornado_tls_options_new();
    CHECK(o != NULL, "tls_options_new");
    FAILS(tornado_tls_options_set_ca_file(o, bad_utf8), TORNADO_ERR_INVALID, "set_ca_file(invalid UTF-8)");
    FAILS(tornado_tls_options_set_client_cert(o, NULL, "/k"), TORNADO_ERR_INVALID, "set_client_cert(NULL cert)");
    FAILS(tornado_tls_options_set_client_cert(o, "/c", NULL), TORNADO_ERR_INVALID, "set_client_cert(NULL key)");
    FAILS(tornado_tls_options_add_alpn(o, NULL), TORNADO_ERR_INVALID, "add_alpn(NULL protocol)");
    FAILS(tornado_tls_options_add_alpn(o, ""), TORNADO_ERR_INVALID, "add_alpn(\"\")");
    {
        char longest[300];
        memset(longest, 'a', sizeof longest - 1);
        longest[sizeof longest - 1] = '\0';
        FAILS(tornado_tls_options_add_alpn(o, longest), TORNADO_ERR_INVALID, "add_alpn(299 bytes)");
    }
    CHECK_OK(tornado_tls_options_add_alpn(o, "http/1.1"), "add_alpn(http/1.1)");
    tornado_tls_options_free(o);
}

/* ---------------- Unix sockets, cookies, the DNS cache ---------------- */
static void abuse_curl_parity(void) {
    tap_section("unix sockets, cookies, dns cache");
    FAILS(tornado_http_request_set_unix_socket(NULL, "/tmp/x.sock"), TORNADO_ERR_INVALID, "set_unix_socket(NULL)");
    tornado_http_request *r = tornado_http_request_new("http://127.0.0.1/");
    FAILS(tornado_http_request_set_unix_socket(r, ""), TORNADO_ERR_INVALID, "set_unix_socket(\"\")");
    FAILS(tornado_http_request_set_unix_socket(r, bad_utf8), TORNADO_ERR_INVALID, "set_unix_socket(invalid UTF-8)");
    {
        char longest[109];
        memset(longest, 'a', sizeof longest - 1);
        longest[0] = '/';
        longest[sizeof longest - 1] = '\0';
        FAILS(tornado_http_request_set_unix_socket(r, longest), TORNADO_ERR_INVALID, "set_unix_socket(108 bytes)");
        longest[107] = '\0';
        CHECK_OK(tornado_http_request_set_unix_socket(r, longest), "set_unix_socket(107 bytes)");
    }
    CHECK_OK(tornado_http_request_set_unix_socket(r, NULL), "set_unix_socket(NULL): by the URL");
    FAILS(tornado_http_request_set_proxy(r, "gopher://127.0.0.1:1", 0, NULL, NULL), TORNADO_ERR_INVALID,
          "set_proxy(unknown scheme)");
    FAILS(tornado_http_request_set_proxy(r, "socks5h://127.0.0.1:99999", 0, NULL, NULL), TORNADO_ERR_INVALID,
          "set_proxy(bad port)");
    CHECK_OK(tornado_http_request_set_proxy(r, "socks5h://u:p@127.0.0.1:1080", 0, NULL, NULL), "set_proxy(socks5h URL)");
    CHECK_OK(tornado_http_request_set_proxy(r, "https://127.0.0.1", 0, "u", "p"), "set_proxy(https URL)");
    FAILS(tornado_http_request_set_proxy(r, "https://u:p@127.0.0.1", 0, NULL, NULL), TORNADO_ERR_INVALID,
          "set_proxy(credentials in an https URL)");
    FAILS(tornado_http_request_set_proxy(r, "https://127.0.0.1:0", 0, NULL, NULL), TORNADO_ERR_INVALID,
          "set_proxy(https port 0)");
    tornado_http_request_free(r);

    FAILS(tornado_http_client_options_set_cookies(NULL, true), TORNADO_ERR_INVALID, "set_cookies(NULL)");
    FAILS(tornado_http_client_options_set_dns_cache_ttl(NULL, 1), TORNADO_ERR_INVALID, "set_dns_cache_ttl(NULL)");
    tornado_http_client_options *o = tornado_http_client_options_new();
    FAILS(tornado_http_client_options_set_dns_cache_ttl(o, -1), TORNADO_ERR_INVALID, "set_dns_cache_ttl(-1)");
    FAILS(tornado_http_client_options_set_dns_cache_ttl(o, 0.0 / 0.0), TORNADO_ERR_INVALID, "set_dns_cache_ttl(NaN)");
    FAILS(tornado_http_client_options_set_dns_cache_ttl(o, 1.0 / 0.0), TORNADO_ERR_INVALID, "set_dns_cache_ttl(inf)");
    CHECK_OK(tornado_http_client_options_set_dns_cache_ttl(o, 0), "set_dns_cache_ttl(0): off");
    FAILS(tornado_http_client_options_set_http2_ping(NULL, 5, 2), TORNADO_ERR_INVALID, "set_http2_ping(NULL)");
    FAILS(tornado_http_client_options_set_http2_ping(o, -1, 2), TORNADO_ERR_INVALID, "set_http2_ping(idle -1)");
    FAILS(tornado_http_client_options_set_http2_ping(o, 0.0 / 0.0, 2), TORNADO_ERR_INVALID, "set_http2_ping(idle NaN)");
    FAILS(tornado_http_client_options_set_http2_ping(o, 5, 0), TORNADO_ERR_INVALID, "set_http2_ping(timeout 0)");
    FAILS(tornado_http_client_options_set_http2_ping(o, 5, 1.0 / 0.0), TORNADO_ERR_INVALID, "set_http2_ping(timeout inf)");
    CHECK_OK(tornado_http_client_options_set_http2_ping(o, 0, 1), "set_http2_ping(0, 1): no liveness check");
    CHECK_OK(tornado_http_client_options_set_http2_ping(o, 30, 3), "set_http2_ping(30, 3)");

    /* The public suffix list file: checked when a client with cookies is made. */
    FAILS(tornado_http_client_options_set_public_suffix_file(NULL, "/x"), TORNADO_ERR_INVALID,
          "set_public_suffix_file(NULL options)");
    {
        FAILS(tornado_http_client_options_set_public_suffix_file(o, bad_utf8), TORNADO_ERR_INVALID,
              "set_public_suffix_file(invalid UTF-8)");
        tornado_http_client_options *psl = tornado_http_client_options_new();
        CHECK_OK(tornado_http_client_options_set_cookies(psl, true), "cookies on");
        CHECK_OK(tornado_http_client_options_set_public_suffix_file(psl, "/no/such/list.dat"),
                 "set_public_suffix_file: read when the client is made");
        CHECK(tornado_http_client_new(loop, psl) == NULL, "a missing public suffix file fails the client");
        CHECK(strstr(tap_last_error_(), "/no/such/list.dat") != NULL, "the error names the file (%s)", tap_last_error_());
        CHECK_OK(tornado_http_client_options_set_public_suffix_file(psl, "/dev/null"),
                 "set_public_suffix_file(not a list)");
        CHECK(tornado_http_client_new(loop, psl) == NULL, "a file that is no suffix list fails the client");
        CHECK_OK(tornado_http_client_options_set_public_suffix_file(psl, NULL), "NULL: the built-in list");
        tornado_http_client *with_list = tornado_http_client_new(loop, psl);
        CHECK(with_list != NULL, "a client with the built-in list");
        tornado_http_client_free(with_list);
        tornado_http_client_options_free(psl);
    }

    FAILS(tornado_http_client_load_cookies(NULL, "/tmp/x"), TORNADO_ERR_INVALID, "load_cookies(NULL)");
    FAILS(tornado_http_client_save_cookies(NULL, "/tmp/x"), TORNADO_ERR_INVALID, "save_cookies(NULL)");
    FAILS(tornado_http_client_clear_cookies(NULL), TORNADO_ERR_INVALID, "clear_cookies(NULL)");
    FAILS_AS(tornado_http_client_cookie_count(NULL), 0, "cookie_count(NULL) == 0");

    /* Cookies off (the default): the jar functions say so. */
    tornado_http_client *off = tornado_http_client_new(loop, o);
    CHECK(off != NULL, "a client without cookies");
    FAILS(tornado_http_client_load_cookies(off, "/tmp/x"), TORNADO_ERR_INVALID, "load_cookies(cookies off)");
    FAILS(tornado_http_client_save_cookies(off, "/tmp/x"), TORNADO_ERR_INVALID, "save_cookies(cookies off)");
    FAILS(tornado_http_client_clear_cookies(off), TORNADO_ERR_INVALID, "clear_cookies(cookies off)");
    CHECK(tornado_http_client_cookie_count(off) == 0, "no cookies when off");
    tornado_http_client_free(off);

    CHECK_OK(tornado_http_client_options_set_cookies(o, true), "set_cookies(true)");
    tornado_http_client *c = tornado_http_client_new(loop, o);
    tornado_http_client_options_free(o);
    CHECK(c != NULL, "a client with cookies");
    FAILS(tornado_http_client_load_cookies(c, NULL), TORNADO_ERR_INVALID, "load_cookies(NULL path)");
    FAILS(tornado_http_client_save_cookies(c, NULL), TORNADO_ERR_INVALID, "save_cookies(NULL path)");
    FAILS(tornado_http_client_load_cookies(c, bad_utf8), TORNADO_ERR_INVALID, "load_cookies(invalid UTF-8)");
    FAILS(tornado_http_client_load_cookies(c, "/nonexistent/cookies.txt"), TORNADO_ERR_IO, "load_cookies(missing)");
    FAILS(tornado_http_client_save_cookies(c, "/nonexistent/dir/cookies.txt"), TORNADO_ERR_IO,
          "save_cookies(no such directory)");

    char dir[] = "/tmp/tornado-cookies-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "a scratch directory");
    char good[256], bad[256], saved[256];
    snprintf(good, sizeof good, "%s/good.txt", dir);
    snprintf(bad, sizeof bad, "%s/bad.txt", dir);
    snprintf(saved, sizeof saved, "%s/saved.txt", dir);
    FILE *f = fopen(good, "w");
    fputs("# Netscape HTTP Cookie File\n.site.test\tTRUE\t/\tFALSE\t0\ta\t1\n"
          "#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t4102444800\tb\t2\n", f);
    fclose(f);
    f = fopen(bad, "w");
    fputs("127.0.0.1\tFALSE\t/\tFALSE\t0\tc\t3\n127.0.0.1\tFALSE\t/\tSOMETIMES\t0\td\t4\n", f);
    fclose(f);
    CHECK_OK(tornado_http_client_load_cookies(c, good), "load_cookies(good file)");
    CHECK(tornado_http_client_cookie_count(c) == 2, "two cookies (%zu)", tornado_http_client_cookie_count(c));
    FAILS(tornado_http_client_load_cookies(c, bad), TORNADO_ERR_INVALID, "load_cookies(malformed line 2)");
    CHECK(strstr(tap_last_error_(), "line 2") != NULL, "the message names the line: %s", tap_last_error_());
    CHECK(tornado_http_client_cookie_count(c) == 2, "a malformed file adds nothing (%zu)",
          tornado_http_client_cookie_count(c));
    CHECK_OK(tornado_http_client_save_cookies(c, saved), "save_cookies");
    CHECK_OK(tornado_http_client_clear_cookies(c), "clear_cookies");
    CHECK(tornado_http_client_cookie_count(c) == 0, "cleared");
    CHECK_OK(tornado_http_client_load_cookies(c, saved), "load_cookies(what was saved)");
    CHECK(tornado_http_client_cookie_count(c) == 2, "both back (%zu)", tornado_http_client_cookie_count(c));
    tornado_http_client_free(c);
    unlink(good);
    unlink(bad);
    unlink(saved);
    rmdir(dir);
}

int main(void) {
    tap_init("test_api_abuse");
    loop = tornado_loop_new();
    primer = tornado_http_request_new("http://127.0.0.1/");
    primer_options = tornado_http_client_options_new();
    CHECK(loop && primer && primer_options, "a loop, a request and options");
    if (!loop || !primer || !primer_options) return tap_done();
    prime();
    CHECK(primed[0] != '\0', "a hostname mapping to primer-777 fails with a message");

    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", TORNADO_VERSION_MAJOR, TORNADO_VERSION_MINOR, TORNADO_VERSION_PATCH);
    CHECK(tornado_version() && strcmp(tornado_version(), version) == 0, "tornado_version() is the header's %s (%s)",
          version, tornado_version());
    CHECK(tornado_version_number() == TORNADO_VERSION_NUMBER, "tornado_version_number() == TORNADO_VERSION_NUMBER");

    abuse_client_options();
    abuse_requests();
    abuse_responses_with_null();
    abuse_client();
    abuse_streams();
    abuse_tcp();
    abuse_tls();
    abuse_request_tls();
    abuse_curl_parity();

    tornado_http_request_free(primer);
    tornado_http_client_options_free(primer_options);
    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
