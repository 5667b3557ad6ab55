/* test_stream.c: streams, TCP and TLS through the C API over loopback: an
 * echo server (plain, and TLS with the certificate tests/c_programs.rs
 * generates: TORNADO_TEST_CERT/KEY/CA), reads of every kind, a 4 MB
 * transfer, max_buffer_size, one pending read, close callbacks, a wrapped
 * socketpair, connect errors, certificate checks, and bad input. */
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap.h"

static tornado_loop *loop;

/* ---- an echo server: each line comes back; "BYE\n" closes the connection ---- */

static void echo_read(tornado_iostream *s);

static void echo_line_read(tornado_future *f, void *ud) {
    tornado_iostream *s = ud;
    if (tornado_future_error(f, NULL) != TORNADO_OK) {
        tornado_iostream_unref(s); /* the connection ended */
        return;
    }
    size_t n = 0;
    const uint8_t *line = tornado_buffer_data(tornado_future_result(f), &n);
    if (n == 4 && memcmp(line, "BYE\n", 4) == 0) {
        tornado_iostream_close(s);
        tornado_iostream_unref(s);
        return;
    }
    tornado_future *w = tornado_iostream_write(s, line, n);
    tornado_future_unref(w);
    echo_read(s);
}

static void echo_read(tornado_iostream *s) {
    tornado_future *f = tornado_iostream_read_until(s, (const uint8_t *)"\n", 1, 0);
    if (!f) {
        tornado_iostream_unref(s);
        return;
    }
    tornado_future_add_done_callback(f, echo_line_read, s);
    tornado_future_unref(f);
}

static int accepted;
static void on_accept(tornado_iostream *s, const char *peer, void *ud) {
    (void)ud;
    (void)peer;
    accepted++;
    echo_read(s); /* the handle we were given is ours: echo_read releases it */
}

/* ---- helpers ---- */

/* Runs `f` to completion; returns its code. */
static tornado_code run(tornado_future *f) {
    CHECK(f != NULL, "a future");
    if (!f) return TORNADO_ERR_INVALID;
    tornado_loop_run_sync(loop, f, 20);
    return tornado_future_error(f, NULL);
}

/* Connects (plain or with TLS options); returns our own stream reference. */
static tornado_iostream *connect_to(const char *host, uint16_t port, const tornado_tls_options *tls) {
    tornado_future *f = tls ? tornado_tcp_connect_tls(loop, host, port, 5, tls) : tornado_tcp_connect(loop, host, port, 5);
    tornado_iostream *s = NULL;
    if (run(f) == TORNADO_OK) s = tornado_iostream_ref(tornado_future_result(f));
    tornado_future_unref(f);
    return s;
}

static int write_all(tornado_iostream *s, const void *data, size_t len) {
    tornado_future *f = tornado_iostream_write(s, data, len);
    int ok = run(f) == TORNADO_OK;
    tornado_future_unref(f);
    return ok;
}

/* Reads a line; copies it into `out` (NUL-terminated). */
static int read_line(tornado_iostream *s, char *out, size_t cap) {
    tornado_future *f = tornado_iostream_read_until(s, (const uint8_t *)"\n", 1, 0);
    int ok = run(f) == TORNADO_OK;
    out[0] = '\0';
    if (ok) {
        size_t n = 0;
        const uint8_t *d = tornado_buffer_data(tornado_future_result(f), &n);
        snprintf(out, cap, "%.*s", (int)n, (const char *)d);
    }
    tornado_future_unref(f);
    return ok;
}

static void echo_round_trip(tornado_iostream *s, const char *what) {
    char line[64];
    CHECK(write_all(s, "hello\nworld\n", 12), "%s: write", what);
    CHECK(read_line(s, line, sizeof line) && strcmp(line, "hello\n") == 0, "%s: first line (%s)", what, line);
    CHECK(read_line(s, line, sizeof line) && strcmp(line, "world\n") == 0, "%s: second line (%s)", what, line);
}

/* ---- tests ---- */

static void test_plain(uint16_t port) {
    tap_section("plain echo, reads, one pending read");
    tornado_iostream *s = connect_to("127.0.0.1", port, NULL);
    CHECK(s != NULL, "connected to 127.0.0.1:%u", port);
    if (!s) return;
    CHECK_OK(tornado_iostream_set_nodelay(s, true), "set_nodelay");
    CHECK(tornado_iostream_fd(s) >= 0, "an fd");
    echo_round_trip(s, "127.0.0.1");

    /* read_bytes: exact, then partial */
    write_all(s, "abcdef\n", 7);
    tornado_future *f = tornado_iostream_read_bytes(s, 3, false);
    CHECK(run(f) == TORNADO_OK, "read_bytes(3)");
    size_t n = 0;
    const uint8_t *d = tornado_buffer_data(tornado_future_result(f), &n);
    CHECK(n == 3 && memcmp(d, "abc", 3) == 0, "exactly 3 bytes");
    tornado_future_unref(f);
    f = tornado_iostream_read_bytes(s, 100, true);
    CHECK(run(f) == TORNADO_OK, "read_bytes(100, partial)");
    tornado_buffer_data(tornado_future_result(f), &n);
    CHECK(n == 4, "the 4 buffered bytes, at once (%zu)", n);
    tornado_future_unref(f);

    /* one pending read at a time */
    tornado_future *first = tornado_iostream_read_until(s, (const uint8_t *)"\n", 1, 0);
    tornado_future *second = tornado_iostream_read_bytes(s, 1, false);
    CHECK(run(second) == TORNADO_ERR_RUNNING, "a second read fails with RUNNING");
    write_all(s, "x\n", 2);
    CHECK(run(first) == TORNADO_OK, "the first read still completes");
    tornado_future_unref(first);
    tornado_future_unref(second);

    tap_section("a 4 MB transfer");
    size_t total = 4 * 1024 * 1024;
    uint8_t *big = malloc(total);
    for (size_t i = 0; i < total; i++) big[i] = (i % 1000 == 999) ? '\n' : (uint8_t)('a' + i % 26);
    big[total - 1] = '\n';
    tornado_future *w = tornado_iostream_write(s, big, total);
    size_t got = 0;
    int same = 1;
    while (got < total) {
        f = tornado_iostream_read_bytes(s, total - got, true);
        if (run(f) != TORNADO_OK) {
            tornado_future_unref(f);
            break;
        }
        d = tornado_buffer_data(tornado_future_result(f), &n);
        if (memcmp(d, big + got, n) != 0) same = 0;
        got += n;
        tornado_future_unref(f);
    }
    CHECK(got == total && same, "4 MB echoed intact (%zu bytes)", got);
    CHECK(run(w) == TORNADO_OK, "the write future completed");
    tornado_future_unref(w);
    free(big);

    tap_section("peer close: read_until_close, close callback");
    int closes = 0;
    CHECK_OK(tornado_iostream_set_close_callback(s, tap_count_cb, &closes, NULL), "set_close_callback");
    write_all(s, "last\nBYE\n", 9);
    f = tornado_iostream_read_until_close(s);
    CHECK(run(f) == TORNADO_OK, "read_until_close");
    d = tornado_buffer_data(tornado_future_result(f), &n);
    CHECK(n == 5 && memcmp(d, "last\n", 5) == 0, "everything up to the close");
    tornado_future_unref(f);
    tornado_loop_run_once(loop, 0);
    CHECK(closes == 1 && tornado_iostream_closed(s), "close callback ran once");
    f = tornado_iostream_read_bytes(s, 1, false);
    CHECK(run(f) == TORNADO_ERR_CLOSED, "reads after close fail with CLOSED");
    tornado_future_unref(f);
    tornado_iostream_unref(s);
}

static void test_limits(uint16_t port) {
    tap_section("max_bytes and max_buffer_size");
    tornado_iostream *s = connect_to("127.0.0.1", port, NULL);
    if (!s) return;
    write_all(s, "0123456789abcdef\n", 17);
    tornado_future *f = tornado_iostream_read_until(s, (const uint8_t *)"\n", 1, 8);
    CHECK(run(f) == TORNADO_ERR_TOO_LARGE, "delimiter beyond max_bytes: TOO_LARGE");
    CHECK(tornado_iostream_closed(s), "and the stream is closed");
    const char *why = NULL;
    CHECK(tornado_iostream_error(s, &why) == TORNADO_ERR_TOO_LARGE && why, "the cause is kept");
    tornado_future_unref(f);
    tornado_iostream_unref(s);

    s = connect_to("127.0.0.1", port, NULL);
    if (!s) return;
    CHECK_OK(tornado_iostream_set_max_buffer_size(s, 1024), "set_max_buffer_size");
    char line[4000];
    memset(line, 'z', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    write_all(s, line, sizeof line);
    f = tornado_iostream_read_until(s, (const uint8_t *)"\n", 1, 0);
    CHECK(run(f) == TORNADO_ERR_TOO_LARGE, "a line over max_buffer_size: TOO_LARGE");
    tornado_future_unref(f);
    tornado_iostream_unref(s);
}

static void test_fd_and_errors(void) {
    tap_section("a wrapped socketpair");
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    tornado_iostream *a = tornado_iostream_new_fd(loop, sv[0]);
    CHECK(a != NULL, "new_fd");
    CHECK(write(sv[1], "ping\n", 5) == 5, "write to the other end");
    char line[32];
    CHECK(read_line(a, line, sizeof line) && strcmp(line, "ping\n") == 0, "read through the stream");
    tornado_iostream_unref(a); /* closes sv[0] */
    close(sv[1]);
    CHECK(tornado_iostream_new_fd(loop, 987654) == NULL, "a closed fd is refused");
    CHECK_ERRMSG("with a message");

    tap_section("connect errors");
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {0};
    socklen_t len = sizeof sin;
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x7f000001);
    bind(probe, (struct sockaddr *)&sin, sizeof sin);
    getsockname(probe, (struct sockaddr *)&sin, &len);
    close(probe); /* nothing listens on this port now */
    tornado_future *f = tornado_tcp_connect(loop, "127.0.0.1", ntohs(sin.sin_port), 5);
    const char *msg = NULL;
    run(f);
    CHECK(tornado_future_error(f, &msg) == TORNADO_ERR_CONNECT, "refused: TORNADO_ERR_CONNECT (%s)", msg ? msg : "");
    tornado_future_unref(f);
    f = tornado_tcp_connect(loop, "no-such-host.invalid", 80, 5);
    CHECK(run(f) == TORNADO_ERR_RESOLVE, "unknown host: TORNADO_ERR_RESOLVE");
    tornado_future_unref(f);
}

static void test_tls(tornado_tcp_server *plain_server) {
    const char *cert = getenv("TORNADO_TEST_CERT"), *key = getenv("TORNADO_TEST_KEY"), *ca = getenv("TORNADO_TEST_CA");
    tap_section("TLS echo with the test CA, ALPN");
    CHECK(cert && key && ca, "certificate files from the harness");
    if (!cert || !key || !ca) return;
    tornado_tls_server_config *config = tornado_tls_server_config_new(cert, key);
    CHECK(config != NULL, "server config from PEM files");
    CHECK_OK(tornado_tls_server_config_add_alpn(config, "http/1.1"), "server ALPN");
    tornado_tcp_server *server = tornado_tcp_server_new(loop, "127.0.0.1", 0, 0, on_accept, NULL, NULL);
    CHECK_OK(tornado_tcp_server_set_tls(server, config), "set_tls");
    tornado_tls_server_config_free(config); /* the server keeps its own */
    uint16_t port = tornado_tcp_server_port(server);

    tornado_tls_options *o = tornado_tls_options_new();
    CHECK_OK(tornado_tls_options_set_ca_file(o, ca), "set_ca_file");
    CHECK_OK(tornado_tls_options_add_alpn(o, "http/1.1"), "client ALPN");
    tornado_iostream *s = connect_to("localhost", port, o);
    CHECK(s != NULL, "TLS connect to localhost:%u", port);
    if (s) {
        CHECK(tornado_iostream_is_tls(s), "is_tls");
        char proto[16];
        size_t n = tornado_iostream_alpn_protocol(s, proto, sizeof proto);
        CHECK(n == 8 && strcmp(proto, "http/1.1") == 0, "ALPN agreed (%s)", proto);
        char version[16], cipher[64], cut[4];
        n = tornado_iostream_tls_version(s, version, sizeof version);
        CHECK(n == 7 && strcmp(version, "TLSv1.3") == 0, "TLS version (%s)", version);
        CHECK(tornado_iostream_tls_version(s, cut, sizeof cut) == 7 && strcmp(cut, "TLS") == 0,
              "a short buffer gets the start, NUL-terminated, and the full length (%s)", cut);
        n = tornado_iostream_tls_cipher(s, cipher, sizeof cipher);
        CHECK(n > 6 && n < sizeof cipher && strncmp(cipher, "TLS13_", 6) == 0, "cipher suite (%s)", cipher);
        CHECK(tornado_iostream_tls_resumed(s) == 0, "a full handshake, not resumed");
        int nodelay = 0;
        socklen_t len = sizeof nodelay;
        CHECK(getsockopt(tornado_iostream_fd(s), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0 && nodelay,
              "TCP_NODELAY on after connect_tls (set before the handshake)");
        echo_round_trip(s, "TLS");
        tornado_iostream_unref(s);
    }
    tornado_tls_options_free(o);

    tap_section("certificate checks");
    tornado_future *f = tornado_tcp_connect_tls(loop, "localhost", port, 5, NULL);
    const char *msg = NULL;
    run(f);
    CHECK(tornado_future_error(f, &msg) == TORNADO_ERR_TLS, "default roots refuse the test CA (%s)", msg ? msg : "");
    CHECK(msg && strncmp(msg, "tls: ", 5) == 0, "a tls: message");
    tornado_future_unref(f);
    o = tornado_tls_options_new();
    CHECK_OK(tornado_tls_options_set_validate_cert(o, false), "validation off");
    s = connect_to("localhost", port, o);
    CHECK(s != NULL, "accepted without validation");
    if (s) {
        echo_round_trip(s, "TLS, no validation");
        tornado_iostream_unref(s);
    }
    tornado_tls_options_free(o);

    /* start_tls on a plain connection to a plain server: the handshake fails */
    s = connect_to("127.0.0.1", tornado_tcp_server_port(plain_server), NULL);
    if (s) {
        f = tornado_iostream_start_tls_client(s, "localhost", NULL);
        write_all(s, "not tls\n", 8);
        CHECK(run(f) != TORNADO_OK, "start_tls against a plain echo fails");
        tornado_future_unref(f);
        tornado_iostream_unref(s);
    }
    CHECK(tornado_tls_server_config_new(cert, "/nonexistent.pem") == NULL && TAP_HAS_ERRMSG(), "a missing key file");
    CHECK_OK(tornado_tcp_server_free(server), "free the TLS server");
}

static void *wrong_thread(void *s) {
    return tornado_iostream_read_bytes(s, 1, false) == NULL && tornado_iostream_close(s) == TORNADO_ERR_WRONG_THREAD
               ? (void *)1
               : NULL;
}

static void test_bad_input(uint16_t port) {
    tap_section("bad input");
    CHECK(tornado_iostream_read_bytes(NULL, 1, false) == NULL, "NULL stream");
    CHECK(tornado_iostream_write(NULL, (const uint8_t *)"x", 1) == NULL, "NULL stream write");
    CHECK(tornado_tcp_connect(NULL, "127.0.0.1", 1, 1) == NULL, "NULL loop");
    CHECK(tornado_tcp_connect(loop, NULL, 1, 1) == NULL, "NULL host");
    CHECK(tornado_tcp_connect(loop, "127.0.0.1", 1, -1) == NULL, "negative timeout");
    CHECK(tornado_tcp_server_new(loop, "not-an-ip", 0, 0, on_accept, NULL, NULL) == NULL, "bad listen address");
    CHECK(tornado_tls_options_add_alpn(NULL, "h2") == TORNADO_ERR_INVALID, "NULL options");
    tornado_iostream *s = connect_to("127.0.0.1", port, NULL);
    if (s) {
        CHECK(tornado_iostream_read_until(s, (const uint8_t *)"", 0, 0) == NULL, "empty delimiter");
        pthread_t t;
        void *ok = NULL;
        pthread_create(&t, NULL, wrong_thread, s);
        pthread_join(t, &ok);
        CHECK(ok == (void *)1, "calls from another thread are refused");
        tornado_iostream_unref(s);
    }
}

int main(void) {
    tap_init("test_stream");
    loop = tornado_loop_new();
    tornado_tcp_server *server = tornado_tcp_server_new(loop, "127.0.0.1", 0, 0, on_accept, NULL, NULL);
    CHECK(server != NULL, "listening on 127.0.0.1");
    uint16_t port = tornado_tcp_server_port(server);
    CHECK(port != 0, "an ephemeral port");

    test_plain(port);
    test_limits(port);
    /* The ::1 echo is part of the test: a machine without IPv6 loopback
     * fails it unless TORNADO_TEST_NO_IPV6=1 says so (as the Rust tests). */
    const char *no_v6 = getenv("TORNADO_TEST_NO_IPV6");
    tornado_tcp_server *v6 = tornado_tcp_server_new(loop, "::1", 0, 0, on_accept, NULL, NULL);
    if (no_v6 && *no_v6 && strcmp(no_v6, "0") != 0) {
        tap_diag("TORNADO_TEST_NO_IPV6 is set: the ::1 echo is not run");
        if (v6)
            tornado_tcp_server_free(v6);
    } else if (v6) {
        tap_section("IPv6");
        tornado_iostream *s = connect_to("::1", tornado_tcp_server_port(v6), NULL);
        CHECK(s != NULL, "connected to [::1]");
        if (s) {
            echo_round_trip(s, "::1");
            tornado_iostream_unref(s);
        }
        tornado_tcp_server_free(v6);
    } else {
        CHECK(v6 != NULL, "listening on [::1] (no IPv6 loopback? set TORNADO_TEST_NO_IPV6=1): %s",
              tornado_last_error() ? tornado_last_error() : "no message");
    }
    test_fd_and_errors();
    test_tls(server);
    test_bad_input(port);

    CHECK_OK(tornado_tcp_server_stop(server), "stop listening");
    CHECK(connect_to("127.0.0.1", port, NULL) == NULL, "nothing listens after stop");
    CHECK_OK(tornado_tcp_server_free(server), "free the server");
    for (int i = 0; i < 5; i++) tornado_loop_run_once(loop, 0.01);
    CHECK(accepted >= 6, "connections were accepted (%d)", accepted);
    CHECK_OK(tornado_loop_free(loop), "loop_free");
    return tap_done();
}
