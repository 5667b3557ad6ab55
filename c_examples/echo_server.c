/* echo_server.c: a line echo server on tornado_tcp_server and streams.
 *
 *   echo_server [--port N] [--once] [--tls CERT.pem KEY.pem]
 *
 * Listens on 127.0.0.1 (port 0: any free port), prints "PORT <n>", and
 * sends every line it receives back to its sender. With --tls, each
 * connection completes a TLS handshake first. With --once, it exits after
 * its first client disconnects. Each connection is a chain of futures:
 * read a line -> write it back -> read the next line. */
#include <string.h>

#include "example_util.h"

static tornado_loop *loop;
static int once;

static void read_next_line(tornado_iostream *s);

/* A line arrived (or the connection ended): echo it and read the next. */
static void on_line(tornado_future *f, void *ud) {
    tornado_iostream *s = ud;
    if (tornado_future_error(f, NULL) != TORNADO_OK) { /* the client went away */
        tornado_iostream_unref(s);
        return;
    }
    size_t n = 0;
    const uint8_t *line = tornado_buffer_data(tornado_future_result(f), &n);
    tornado_future *written = tornado_iostream_write(s, line, n); /* queued; may complete later */
    tornado_future_unref(written);
    read_next_line(s);
}

static void read_next_line(tornado_iostream *s) {
    tornado_future *f = tornado_iostream_read_until(s, (const uint8_t *)"\n", 1, 64 * 1024);
    if (f == NULL || tornado_future_add_done_callback(f, on_line, s) != TORNADO_OK) {
        tornado_iostream_unref(s);
    }
    tornado_future_unref(f); /* the done callback keeps what it needs */
}

static void stop_loop(void *ud) {
    (void)ud;
    tornado_loop_stop(loop);
}

/* Each accepted connection: we own `s` and hand it to the read chain. */
static void on_accept(tornado_iostream *s, const char *peer, void *ud) {
    (void)ud;
    printf("connection from %s\n", peer);
    fflush(stdout);
    if (once) {
        once = 0;
        CHECK_OK(tornado_iostream_set_close_callback(s, stop_loop, NULL, NULL));
    }
    read_next_line(s);
}

int main(int argc, char **argv) {
    uint16_t port = 0;
    const char *cert = NULL, *key = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc) port = (uint16_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--once")) once = 1;
        else if (!strcmp(argv[i], "--tls") && i + 2 < argc) cert = argv[++i], key = argv[++i];
        else {
            fprintf(stderr, "usage: echo_server [--port N] [--once] [--tls CERT.pem KEY.pem]\n");
            return 2;
        }
    }
    loop = tornado_loop_new();
    CHECK(loop != NULL, "tornado_loop_new");
    tornado_tcp_server *server = tornado_tcp_server_new(loop, "127.0.0.1", port, 0, on_accept, NULL, NULL);
    CHECK(server != NULL, "listen: %s", tornado_last_error());
    if (cert) {
        tornado_tls_server_config *config = tornado_tls_server_config_new(cert, key);
        CHECK(config != NULL, "TLS config: %s", tornado_last_error());
        CHECK_OK(tornado_tcp_server_set_tls(server, config));
        tornado_tls_server_config_free(config); /* the server keeps its own reference */
    }
    printf("PORT %u\n", tornado_tcp_server_port(server));
    fflush(stdout);
    CHECK_OK(tornado_loop_start(loop));
    CHECK_OK(tornado_tcp_server_free(server));
    for (int i = 0; i < 3; i++) tornado_loop_run_once(loop, 0); /* let closing connections finish */
    CHECK_OK(tornado_loop_free(loop));
    printf("echo_server: done\n");
    return 0;
}
