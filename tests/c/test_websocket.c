/* test_websocket.c: the tornado_websocket_* C API. Every function with bad
 * arguments (NULL, bad values, another thread), then real use against
 * Tornado's WebSocketHandler (tests/servers/ws_servers.py, started by
 * tests/c_programs.rs: TORNADO_TEST_WS is "ws://127.0.0.1:PORT"). */
#include "tap.h"

static tornado_loop *loop;
static char base[128];

static void url(char *out, size_t n, const char *path) { snprintf(out, n, "%s%s", base, path); }

/* Runs `f` to its end (at most 10 s); returns its code. */
static tornado_code settle(tornado_future *f) {
    if (!f) return -1;
    tornado_loop_run_sync(loop, f, 10);
    return tornado_future_error(f, NULL);
}

static void options_abuse(void) {
    tap_section("options: bad arguments");
    CHECK_FAIL(tornado_websocket_options_add_subprotocol(NULL, "chat"), TORNADO_ERR_INVALID, "add_subprotocol NULL options");
    CHECK_FAIL(tornado_websocket_options_set_max_message_size(NULL, 10), TORNADO_ERR_INVALID, "max_message_size NULL");
    CHECK_FAIL(tornado_websocket_options_set_compression(NULL, 6), TORNADO_ERR_INVALID, "compression NULL");
    CHECK_FAIL(tornado_websocket_options_set_no_context_takeover(NULL, true, true), TORNADO_ERR_INVALID, "no_context NULL");
    CHECK_FAIL(tornado_websocket_options_set_server_max_window_bits(NULL, 10), TORNADO_ERR_INVALID, "window NULL");
    CHECK_FAIL(tornado_websocket_options_set_client_max_window_bits(NULL, 10), TORNADO_ERR_INVALID, "client window NULL");
    CHECK_FAIL(tornado_websocket_options_set_ping(NULL, 1, 1), TORNADO_ERR_INVALID, "ping NULL");
    CHECK_FAIL(tornado_websocket_options_set_max_write_buffer(NULL, 10), TORNADO_ERR_INVALID, "max_write_buffer NULL");
    CHECK_FAIL(tornado_websocket_options_set_close_timeout(NULL, 1), TORNADO_ERR_INVALID, "close_timeout NULL");
    tornado_websocket_options_free(NULL); /* a no-op (valgrind/ASan would see otherwise) */

    tornado_websocket_options *o = tornado_websocket_options_new();
    CHECK(o != NULL, "options_new");
    CHECK_FAIL(tornado_websocket_options_add_subprotocol(o, NULL), TORNADO_ERR_INVALID, "subprotocol NULL name");
    CHECK_FAIL(tornado_websocket_options_add_subprotocol(o, "two words"), TORNADO_ERR_INVALID, "subprotocol not a token");
    CHECK_FAIL(tornado_websocket_options_add_subprotocol(o, ""), TORNADO_ERR_INVALID, "empty subprotocol");
    CHECK_FAIL(tornado_websocket_options_add_subprotocol(o, "a\r\nX: y"), TORNADO_ERR_INVALID, "CR/LF in subprotocol");
    CHECK_OK(tornado_websocket_options_add_subprotocol(o, "chat"), "subprotocol chat");
    CHECK_FAIL(tornado_websocket_options_set_max_message_size(o, 0), TORNADO_ERR_INVALID, "max_message_size 0");
    CHECK_OK(tornado_websocket_options_set_max_message_size(o, 1 << 20), "max_message_size 1 MiB");
    CHECK_FAIL(tornado_websocket_options_set_no_context_takeover(o, true, false), TORNADO_ERR_INVALID, "no_context before compression");
    CHECK_FAIL(tornado_websocket_options_set_server_max_window_bits(o, 10), TORNADO_ERR_INVALID, "window bits before compression");
    CHECK_FAIL(tornado_websocket_options_set_client_max_window_bits(o, 10), TORNADO_ERR_INVALID, "client window bits before compression");
    CHECK_FAIL(tornado_websocket_options_set_compression(o, 10), TORNADO_ERR_INVALID, "level 10");
    CHECK_FAIL(tornado_websocket_options_set_compression(o, -2), TORNADO_ERR_INVALID, "level -2");
    CHECK_OK(tornado_websocket_options_set_compression(o, 6), "level 6");
    CHECK_OK(tornado_websocket_options_set_no_context_takeover(o, true, false), "no_context after compression");
    CHECK_FAIL(tornado_websocket_options_set_server_max_window_bits(o, 7), TORNADO_ERR_INVALID, "window bits 7");
    CHECK_FAIL(tornado_websocket_options_set_server_max_window_bits(o, 16), TORNADO_ERR_INVALID, "window bits 16");
    CHECK_OK(tornado_websocket_options_set_server_max_window_bits(o, 12), "window bits 12");
    CHECK_OK(tornado_websocket_options_set_server_max_window_bits(o, 0), "window bits 0 (ask nothing)");
    CHECK_FAIL(tornado_websocket_options_set_client_max_window_bits(o, 7), TORNADO_ERR_INVALID, "client window bits 7");
    CHECK_FAIL(tornado_websocket_options_set_client_max_window_bits(o, 16), TORNADO_ERR_INVALID, "client window bits 16");
    CHECK_FAIL(tornado_websocket_options_set_client_max_window_bits(o, -1), TORNADO_ERR_INVALID, "client window bits -1");
    CHECK_OK(tornado_websocket_options_set_client_max_window_bits(o, 8), "client window bits 8");
    CHECK_OK(tornado_websocket_options_set_client_max_window_bits(o, 0), "client window bits 0 (offered bare)");
    CHECK_OK(tornado_websocket_options_set_compression(o, -1), "compression off");
    CHECK_FAIL(tornado_websocket_options_set_ping(o, NAN, 1), TORNADO_ERR_INVALID, "ping NaN");
    CHECK_FAIL(tornado_websocket_options_set_ping(o, -1, 1), TORNADO_ERR_INVALID, "ping negative");
    CHECK_FAIL(tornado_websocket_options_set_ping(o, 1, INFINITY), TORNADO_ERR_INVALID, "ping timeout infinite");
    CHECK_OK(tornado_websocket_options_set_ping(o, 0, 0), "no pings");
    CHECK_FAIL(tornado_websocket_options_set_max_write_buffer(o, 0), TORNADO_ERR_INVALID, "max_write_buffer 0");
    CHECK_FAIL(tornado_websocket_options_set_close_timeout(o, 0), TORNADO_ERR_INVALID, "close_timeout 0");
    CHECK_FAIL(tornado_websocket_options_set_close_timeout(o, NAN), TORNADO_ERR_INVALID, "close_timeout NaN");
    CHECK_OK(tornado_websocket_options_set_close_timeout(o, 2), "close_timeout 2");
    tornado_websocket_options_free(o);
}

static void null_handles(tornado_http_client *client) {
    tap_section("NULL handles");
    tornado_http_request *r = tornado_http_request_new("ws://127.0.0.1:1/");
    CHECK(tornado_websocket_connect(NULL, r, NULL) == NULL, "connect NULL client");
    CHECK_ERRMSG("connect NULL client: message");
    CHECK(tornado_websocket_connect(client, NULL, NULL) == NULL, "connect NULL request");
    CHECK_ERRMSG("connect NULL request: message");
    tornado_http_request *http = tornado_http_request_new("http://127.0.0.1:1/");
    CHECK(tornado_websocket_connect(client, http, NULL) == NULL, "connect an http:// URL");
    CHECK(strstr(tornado_last_error(), "TORNADO_ERR_INVALID_URL") != NULL, "http:// is INVALID_URL: %s", tornado_last_error());
    tornado_http_request_free(http);
    tornado_http_request_free(r);
    CHECK(tornado_websocket_ref(NULL) == NULL, "ref NULL");
    tornado_websocket_unref(NULL);
    CHECK(tornado_websocket_read_message(NULL) == NULL, "read NULL");
    CHECK(!tornado_websocket_message_is_binary(NULL), "is_binary NULL");
    size_t len = 99;
    CHECK(tornado_websocket_message_data(NULL, &len) == NULL && len == 0, "message_data NULL");
    CHECK(tornado_websocket_message_data(NULL, NULL) == NULL, "message_data NULL, NULL len");
    CHECK_FAIL(tornado_websocket_set_message_callback(NULL, NULL, NULL, NULL), TORNADO_ERR_INVALID, "set_message_callback NULL");
    CHECK_FAIL(tornado_websocket_set_ping_callback(NULL, NULL, NULL, NULL), TORNADO_ERR_INVALID, "set_ping_callback NULL");
    CHECK(tornado_websocket_write_message(NULL, (const uint8_t *)"x", 1, false) == NULL, "write NULL");
    CHECK(tornado_websocket_ping(NULL, NULL, 0) == NULL, "ping NULL");
    CHECK(tornado_websocket_close(NULL, 1000, NULL) == NULL, "close NULL");
    CHECK(tornado_websocket_close_code(NULL) == 0, "close_code NULL");
    CHECK(tornado_websocket_close_reason(NULL) == NULL, "close_reason NULL");
    CHECK(tornado_websocket_subprotocol(NULL) == NULL, "subprotocol NULL");
    CHECK(tornado_websocket_extensions(NULL) == NULL, "extensions NULL");
    CHECK(!tornado_websocket_is_closed(NULL), "is_closed NULL");
    CHECK_FAIL(tornado_websocket_error(NULL), TORNADO_ERR_INVALID, "error NULL");
    CHECK(tornado_websocket_buffered_amount(NULL) == 0, "buffered_amount NULL");
}

/* Connects to `path`; the caller unrefs the returned handle. */
static tornado_websocket *open_ws(tornado_http_client *client, const char *path,
                                  const tornado_websocket_options *o) {
    char u[256];
    url(u, sizeof u, path);
    tornado_http_request *r = tornado_http_request_new(u);
    tornado_http_request_set_request_timeout(r, 5);
    tornado_future *f = tornado_websocket_connect(client, r, o);
    tornado_http_request_free(r);
    if (settle(f) != TORNADO_OK) {
        const char *m = NULL;
        tornado_future_error(f, &m);
        CHECK(0, "connect %s: %s", path, m ? m : "?");
        tornado_future_unref(f);
        return NULL;
    }
    tornado_websocket *ws = tornado_websocket_ref(tornado_future_result(f));
    tornado_future_unref(f);
    return ws;
}

/* Reads one message into buf (NUL-terminated); returns its length, -1 for
 * a clean close (NULL value), -2 - code for an error. */
static long read_one(tornado_websocket *ws, char *buf, size_t n, bool *binary) {
    tornado_future *f = tornado_websocket_read_message(ws);
    tornado_code code = settle(f);
    long got;
    if (code != TORNADO_OK) {
        got = -2 - code;
    } else {
        const tornado_websocket_message *m = tornado_future_result(f);
        if (!m) {
            got = -1;
        } else {
            size_t len = 0;
            const uint8_t *data = tornado_websocket_message_data(m, &len);
            if (binary) *binary = tornado_websocket_message_is_binary(m);
            size_t copy = len < n - 1 ? len : n - 1;
            memcpy(buf, data, copy);
            buf[copy] = 0;
            got = (long)len;
        }
    }
    tornado_future_unref(f);
    return got;
}

static tornado_websocket *shared_ws;
static int thread_codes[4];

static void *other_thread(void *arg) {
    (void)arg;
    tornado_future *f = tornado_websocket_read_message(shared_ws);
    thread_codes[0] = f == NULL && strstr(tornado_last_error(), "WRONG_THREAD") != NULL;
    f = tornado_websocket_write_message(shared_ws, (const uint8_t *)"x", 1, true);
    thread_codes[1] = f == NULL && strstr(tornado_last_error(), "WRONG_THREAD") != NULL;
    thread_codes[2] = tornado_websocket_ref(shared_ws) == NULL;
    thread_codes[3] = tornado_websocket_error(shared_ws) == TORNADO_ERR_WRONG_THREAD;
    tornado_websocket_unref(shared_ws); /* refused: logged, the reference stays */
    return NULL;
}

static void echo(tornado_http_client *client) {
    tap_section("echo against Tornado");
    tornado_websocket *ws = open_ws(client, "/echo", NULL);
    CHECK(ws != NULL, "connected to /echo");
    if (!ws) return;
    CHECK(tornado_websocket_subprotocol(ws) == NULL, "no subprotocol");
    CHECK(tornado_websocket_extensions(ws) == NULL, "no extensions");
    CHECK(!tornado_websocket_is_closed(ws), "open");
    CHECK_OK(tornado_websocket_error(ws), "no error while open");

    char buf[256];
    bool binary = true;
    tornado_future *w = tornado_websocket_write_message(ws, (const uint8_t *)"h\xc3\xa9llo", 6, false);
    CHECK(settle(w) == TORNADO_OK, "text write resolves on the wire");
    tornado_future_unref(w);
    CHECK(read_one(ws, buf, sizeof buf, &binary) == 6 && !binary && strcmp(buf, "h\xc3\xa9llo") == 0, "text echoed: %s", buf);
    const uint8_t bytes[3] = {0, 1, 255};
    w = tornado_websocket_write_message(ws, bytes, 3, true);
    CHECK(w != NULL, "binary write");
    tornado_future_unref(w);
    CHECK(read_one(ws, buf, sizeof buf, &binary) == 3 && binary && memcmp(buf, bytes, 3) == 0, "binary echoed");
    w = tornado_websocket_write_message(ws, NULL, 0, false);
    CHECK(w != NULL, "empty text (NULL data, len 0)");
    tornado_future_unref(w);
    CHECK(read_one(ws, buf, sizeof buf, &binary) == 0, "empty echoed");

    CHECK(tornado_websocket_write_message(ws, NULL, 5, true) == NULL, "NULL data with len 5");
    CHECK_ERRMSG("NULL data: message");
    CHECK(tornado_websocket_write_message(ws, (const uint8_t *)"\xff\xfe", 2, false) == NULL, "text that is not UTF-8");
    CHECK(strstr(tornado_last_error(), "UTF-8") != NULL, "says UTF-8: %s", tornado_last_error());
    uint8_t big[126] = {0};
    CHECK(tornado_websocket_ping(ws, big, sizeof big) == NULL, "ping over 125 bytes");
    CHECK(tornado_websocket_ping(ws, NULL, 3) == NULL, "ping NULL data with len 3");
    tornado_future *p = tornado_websocket_ping(ws, (const uint8_t *)"hi", 2);
    CHECK(settle(p) == TORNADO_OK, "ping sent");
    tornado_future_unref(p);
    CHECK(tornado_websocket_close(ws, 1005, NULL) == NULL, "close code 1005 refused");
    CHECK(tornado_websocket_close(ws, 70000, NULL) == NULL, "close code 70000 refused");
    CHECK(tornado_websocket_close(ws, -1, NULL) == NULL, "close code -1 refused");
    CHECK(tornado_websocket_close(ws, 0, "reason") == NULL, "reason without a code refused");
    char long_reason[200];
    memset(long_reason, 'r', sizeof long_reason - 1);
    long_reason[sizeof long_reason - 1] = 0;
    CHECK(tornado_websocket_close(ws, 1000, long_reason) == NULL, "reason over 123 bytes refused");
    CHECK(tornado_websocket_close(ws, 1000, "\xff") == NULL, "reason not UTF-8 refused");

    tap_section("wrong thread");
    shared_ws = ws;
    pthread_t t;
    pthread_create(&t, NULL, other_thread, NULL);
    pthread_join(t, NULL);
    CHECK(thread_codes[0], "read from another thread: WRONG_THREAD");
    CHECK(thread_codes[1], "write from another thread: WRONG_THREAD");
    CHECK(thread_codes[2], "ref from another thread: NULL");
    CHECK(thread_codes[3], "error from another thread: WRONG_THREAD");

    tap_section("close handshake");
    tornado_future *c = tornado_websocket_close(ws, 1000, "bye");
    CHECK(settle(c) == TORNADO_OK, "close handshake completes");
    tornado_future_unref(c);
    CHECK(tornado_websocket_close_code(ws) == 1000, "server echoed 1000: %d", tornado_websocket_close_code(ws));
    CHECK(tornado_websocket_close_reason(ws) != NULL, "a reason (maybe empty)");
    CHECK(tornado_websocket_is_closed(ws), "closed");
    CHECK_OK(tornado_websocket_error(ws), "a clean close is no error");
    CHECK(read_one(ws, buf, sizeof buf, NULL) == -1, "read after close: NULL value");
    CHECK(tornado_websocket_write_message(ws, (const uint8_t *)"x", 1, false) == NULL, "write after close");
    CHECK(strstr(tornado_last_error(), "CLOSED") != NULL, "CLOSED: %s", tornado_last_error());
    c = tornado_websocket_close(ws, 1000, NULL);
    CHECK(settle(c) == TORNADO_OK, "close again: the same end");
    tornado_future_unref(c);
    tornado_websocket_unref(ws);
}

static int got_messages, got_end, drops, pings;
static char last[64];

static void on_message(const tornado_websocket_message *m, void *ud) {
    (void)ud;
    if (!m) {
        got_end++;
        return;
    }
    size_t len = 0;
    const uint8_t *data = tornado_websocket_message_data(m, &len);
    snprintf(last, sizeof last, "%.*s", (int)len, (const char *)data);
    got_messages++;
}

static void on_ping(const uint8_t *data, size_t len, void *ud) {
    (void)ud;
    if (len == 2 && memcmp(data, "hi", 2) == 0) pings++;
}

static void count_drop(void *ud) {
    (void)ud;
    drops++;
}

static void callbacks(tornado_http_client *client) {
    tap_section("message and ping callbacks");
    tornado_websocket *ws = open_ws(client, "/ping", NULL);
    CHECK(ws != NULL, "connected to /ping");
    if (!ws) return;
    CHECK_OK(tornado_websocket_set_ping_callback(ws, on_ping, NULL, count_drop), "ping callback");
    CHECK_OK(tornado_websocket_set_message_callback(ws, on_message, NULL, count_drop), "message callback");
    tornado_future *w = tornado_websocket_write_message(ws, (const uint8_t *)"cb", 2, false);
    tornado_future_unref(w);
    for (int i = 0; i < 200 && got_messages < 1; i++) tornado_loop_run_once(loop, 0.05);
    CHECK(got_messages == 1 && strcmp(last, "cb") == 0, "callback got the echo: %s", last);
    CHECK(pings >= 1, "ping callback got the server's ping before the echo (%d)", pings);
    tornado_future *r = tornado_websocket_read_message(ws);
    CHECK(settle(r) == TORNADO_OK && tornado_future_result(r) == NULL, "with a callback, reads resolve NULL");
    tornado_future_unref(r);
    CHECK_OK(tornado_websocket_set_message_callback(ws, on_message, NULL, count_drop), "replace the callback");
    CHECK(drops == 1, "replacing dropped the old userdata (%d)", drops);
    tornado_future *c = tornado_websocket_close(ws, 4000, "done");
    CHECK(settle(c) == TORNADO_OK, "closed");
    tornado_future_unref(c);
    for (int i = 0; i < 100 && got_end < 1; i++) tornado_loop_run_once(loop, 0.02);
    CHECK(got_end == 1, "callback got NULL at the end");
    tornado_websocket_unref(ws);
    CHECK(drops == 3, "the last unref dropped both userdata (%d)", drops);

    /* The last unref of an open connection: its callback is not called
     * (the handle is going), its userdata is dropped. */
    ws = open_ws(client, "/echo", NULL);
    CHECK(ws != NULL, "connected to /echo");
    if (!ws) return;
    int ends_before = got_end;
    CHECK_OK(tornado_websocket_set_message_callback(ws, on_message, NULL, count_drop), "message callback");
    tornado_future *pending = tornado_websocket_ping(ws, NULL, 0);
    tornado_websocket_unref(ws);
    CHECK(got_end == ends_before, "no callback during the unref");
    settle(pending);
    tornado_future_unref(pending);
    /* The connect future's last queued callback may hold the final
     * reference for an iteration or two. */
    for (int i = 0; i < 10; i++) tornado_loop_run_once(loop, 0.01);
    CHECK(drops == 4, "the userdata dropped with the last reference (%d)", drops);
    CHECK(got_end == ends_before, "and the callback never called");
}

static void server_close_and_errors(tornado_http_client *client) {
    tap_section("server close, subprotocol, deflate, refusal");
    tornado_websocket *ws = open_ws(client, "/close", NULL);
    char buf[64];
    CHECK(ws && read_one(ws, buf, sizeof buf, NULL) == -1, "server close: NULL value");
    CHECK(tornado_websocket_close_code(ws) == 4001, "code 4001");
    CHECK(tornado_websocket_close_reason(ws) && strcmp(tornado_websocket_close_reason(ws), "going away") == 0, "reason");
    tornado_websocket_unref(ws);

    tornado_websocket_options *o = tornado_websocket_options_new();
    tornado_websocket_options_add_subprotocol(o, "x");
    tornado_websocket_options_add_subprotocol(o, "chat");
    ws = open_ws(client, "/subprotocol", o);
    CHECK(ws && tornado_websocket_subprotocol(ws) && strcmp(tornado_websocket_subprotocol(ws), "chat") == 0, "subprotocol chat");
    CHECK(ws && read_one(ws, buf, sizeof buf, NULL) > 0 && strcmp(buf, "chose chat") == 0, "server saw chat: %s", buf);
    tornado_websocket_unref(ws);
    tornado_websocket_options_free(o);

    o = tornado_websocket_options_new();
    tornado_websocket_options_set_compression(o, 9);
    ws = open_ws(client, "/deflate", o);
    tornado_websocket_options_free(o);
    CHECK(ws && tornado_websocket_extensions(ws) && strstr(tornado_websocket_extensions(ws), "permessage-deflate"), "deflate agreed");
    tornado_future *w = tornado_websocket_write_message(ws, (const uint8_t *)"aaaaaaaaaaaaaaaaaaaa", 20, false);
    tornado_future_unref(w);
    CHECK(ws && read_one(ws, buf, sizeof buf, NULL) == 20, "compressed echo");
    /* Freed without a close: the connection just closes. */
    tornado_websocket_unref(ws);

    /* The client's own window: offered with its value, which Tornado echoes. */
    o = tornado_websocket_options_new();
    tornado_websocket_options_set_compression(o, 6);
    tornado_websocket_options_set_client_max_window_bits(o, 10);
    ws = open_ws(client, "/deflate", o);
    tornado_websocket_options_free(o);
    CHECK(ws && tornado_websocket_extensions(ws) &&
              strcmp(tornado_websocket_extensions(ws), "permessage-deflate; client_max_window_bits=10") == 0,
          "client window agreed: %s", ws && tornado_websocket_extensions(ws) ? tornado_websocket_extensions(ws) : "(none)");
    w = tornado_websocket_write_message(ws, (const uint8_t *)"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 30, false);
    tornado_future_unref(w);
    CHECK(ws && read_one(ws, buf, sizeof buf, NULL) == 30, "echo with a 1 KiB client window");
    tornado_websocket_unref(ws);

    char u[256];
    url(u, sizeof u, "/nowhere");
    tornado_http_request *r = tornado_http_request_new(u);
    tornado_future *f = tornado_websocket_connect(client, r, NULL);
    tornado_http_request_free(r);
    const char *m = NULL;
    CHECK(settle(f) == TORNADO_ERR_PROTOCOL, "a 404 fails with PROTOCOL");
    tornado_future_error(f, &m);
    CHECK(m && strstr(m, "HTTP 404"), "message has the status: %s", m ? m : "(null)");
    tornado_future_unref(f);

    /* Cancelling the connect. */
    url(u, sizeof u, "/echo");
    r = tornado_http_request_new(u);
    f = tornado_websocket_connect(client, r, NULL);
    tornado_http_request_free(r);
    CHECK_OK(tornado_future_cancel(f), "cancel a connect");
    CHECK(tornado_future_error(f, NULL) == TORNADO_ERR_CANCELLED, "cancelled");
    tornado_future_unref(f);
    for (int i = 0; i < 10; i++) tornado_loop_run_once(loop, 0.01);
}

int main(void) {
    tap_init("test_websocket");
    const char *ws_base = getenv("TORNADO_TEST_WS");
    if (!ws_base) {
        CHECK(0, "TORNADO_TEST_WS is not set (tests/c_programs.rs sets it)");
        return tap_done();
    }
    snprintf(base, sizeof base, "%s", ws_base);
    loop = tornado_loop_new();
    tornado_http_client *client = tornado_http_client_new(loop, NULL);
    CHECK(client != NULL, "client");
    options_abuse();
    null_handles(client);
    echo(client);
    callbacks(client);
    server_close_and_errors(client);
    tornado_http_client_free(client);
    tornado_loop_free(loop);
    return tap_done();
}
