/* echo_client.c: talks to echo_server and checks every echo.
 *
 *   echo_client HOST PORT [--tls CA.pem] [MESSAGE...]
 *
 * Connects (host names are resolved off the loop thread; IPv6 and IPv4 are
 * tried with Happy Eyeballs), optionally over TLS checked against CA.pem,
 * sends each MESSAGE as a line and reads it back. Written in the blocking
 * style that tornado_loop_run_sync allows: run the loop until one future
 * is done, then go on. Exits 0 when every echo matched. */
#include <string.h>

#include "example_util.h"

static tornado_loop *loop;

/* Runs the loop until `f` is done; exits on failure. */
static void await(tornado_future *f, const char *what) {
    CHECK(f != NULL, "%s: %s", what, tornado_last_error());
    tornado_code rc = tornado_loop_run_sync(loop, f, 10);
    const char *msg = NULL;
    tornado_future_error(f, &msg);
    CHECK(rc == TORNADO_OK, "%s failed: %s (%s)", what, tornado_code_name(rc), msg ? msg : "");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: echo_client HOST PORT [--tls CA.pem] [MESSAGE...]\n");
        return 2;
    }
    const char *host = argv[1];
    uint16_t port = (uint16_t)atoi(argv[2]);
    int first_message = 3;
    tornado_tls_options *tls = NULL;
    if (argc > 4 && !strcmp(argv[3], "--tls")) {
        tls = tornado_tls_options_new();
        CHECK_OK(tornado_tls_options_set_ca_file(tls, argv[4]));
        first_message = 5;
    }
    loop = tornado_loop_new();
    CHECK(loop != NULL, "tornado_loop_new");

    tornado_future *connected = tls ? tornado_tcp_connect_tls(loop, host, port, 5, tls)
                                    : tornado_tcp_connect(loop, host, port, 5);
    await(connected, "connect");
    /* The future owns the stream it holds: take our own reference. */
    tornado_iostream *s = tornado_iostream_ref(tornado_future_result(connected));
    tornado_future_unref(connected);
    tornado_tls_options_free(tls);
    printf("connected to %s:%u%s\n", host, port, tornado_iostream_is_tls(s) ? " (TLS)" : "");

    const char *defaults[] = {"hello", "tornado_rs"};
    const char **messages = argc > first_message ? (const char **)argv + first_message : defaults;
    int count = argc > first_message ? argc - first_message : 2;
    for (int i = 0; i < count; i++) {
        char line[1024];
        int n = snprintf(line, sizeof line, "%s\n", messages[i]);
        CHECK(n > 0 && (size_t)n < sizeof line, "message too long");
        tornado_future *w = tornado_iostream_write(s, (const uint8_t *)line, (size_t)n);
        await(w, "write");
        tornado_future_unref(w);
        tornado_future *r = tornado_iostream_read_until(s, (const uint8_t *)"\n", 1, sizeof line);
        await(r, "read");
        size_t len = 0;
        const uint8_t *echo = tornado_buffer_data(tornado_future_result(r), &len);
        CHECK(len == (size_t)n && memcmp(echo, line, len) == 0, "echo of '%s' differs", messages[i]);
        printf("echoed: %s\n", messages[i]);
        tornado_future_unref(r);
    }
    tornado_iostream_unref(s); /* the last reference: closes the connection */
    for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0);
    CHECK_OK(tornado_loop_free(loop));
    printf("echo_client: all %d echoes matched\n", count);
    return 0;
}
