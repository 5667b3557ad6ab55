/* bench_ws.h: W7 (shared/bench/WORKLOADS.md), WebSocket echo, for bench.c.
 *   W7-rt      one connection, N = 100,000 round trips of a 64-byte text message
 *   W7-stream  16 connections, 16 binary 1 KiB messages in flight each, for SECONDS = 5
 * Messages arrive through tornado_websocket_set_message_callback (no future
 * per read); each echo is compared in full; every write's future is
 * released at once (writes queue in order). Connections are opened before
 * the clock starts; the closing handshakes come after it stops. */
#ifndef TORNADO_BENCH_WS_H
#define TORNADO_BENCH_WS_H

#define W7_CONNS 16
#define W7_WINDOW 16

static const char w7_text[65] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/";
static uint8_t w7_binary[1024];

typedef struct {
    tornado_websocket *ws;
    long sent, got, outstanding;
} w7_conn;

static w7_conn w7_conns[W7_CONNS];
static int w7_nconns, w7_stream, w7_active;
static long w7_errors, w7_total;
static double w7_deadline;
static tornado_http_client *w7_http;

static void w7_send(w7_conn *c) {
    tornado_future *f = w7_stream ? tornado_websocket_write_message(c->ws, w7_binary, sizeof w7_binary, true)
                                  : tornado_websocket_write_message(c->ws, (const uint8_t *)w7_text, 64, false);
    if (!f) {
        w7_errors++;
        tornado_loop_stop(loop);
        return;
    }
    tornado_future_unref(f);
    c->sent++;
    c->outstanding++;
}

static void w7_on_message(const tornado_websocket_message *m, void *ud) {
    w7_conn *c = ud;
    if (!m) { /* the connection ended: only expected after the clock */
        if (w7_active) {
            w7_errors++;
            tornado_loop_stop(loop);
        }
        return;
    }
    size_t len = 0;
    const uint8_t *data = tornado_websocket_message_data(m, &len);
    int binary = tornado_websocket_message_is_binary(m);
    int good = w7_stream ? binary && len == sizeof w7_binary && memcmp(data, w7_binary, len) == 0
                         : !binary && len == 64 && memcmp(data, w7_text, 64) == 0;
    if (!good) w7_errors++;
    c->got++;
    c->outstanding--;
    w7_total++;
    if (!w7_stream) {
        if (w7_total < target) w7_send(c);
        else tornado_loop_stop(loop);
        return;
    }
    if (bu_wall() < w7_deadline) {
        w7_send(c);
    } else if (c->outstanding == 0 && --w7_active == 0) {
        tornado_loop_stop(loop);
    }
}

static void w7_open(const char *url, int n) {
    w7_http = tornado_http_client_new(loop, NULL);
    if (!w7_http) die_lib("tornado_http_client_new", -1);
    tornado_http_request *r = tornado_http_request_new(url);
    if (!r) die_lib("tornado_http_request_new", -1);
    for (int i = 0; i < n; i++) {
        tornado_future *f = tornado_websocket_connect(w7_http, r, NULL);
        if (!f) die_lib("tornado_websocket_connect", -1);
        LIB(tornado_loop_run_sync(loop, f, 30));
        if (tornado_future_error(f, NULL) != TORNADO_OK) die_lib("W7 connect", tornado_future_error(f, NULL));
        w7_conns[i].ws = tornado_websocket_ref(tornado_future_result(f));
        tornado_future_unref(f);
        LIB(tornado_websocket_set_message_callback(w7_conns[i].ws, w7_on_message, &w7_conns[i], NULL));
    }
    tornado_http_request_free(r);
    w7_nconns = n;
}

static void w7_close_all(void) {
    w7_active = 0;
    for (int i = 0; i < w7_nconns; i++) {
        tornado_future *f = tornado_websocket_close(w7_conns[i].ws, 1000, NULL);
        if (f) {
            tornado_loop_run_sync(loop, f, 10);
            tornado_future_unref(f);
        }
        tornado_websocket_unref(w7_conns[i].ws);
    }
    LIB(tornado_http_client_free(w7_http));
}

static int run_w7(const char *w, const char *url, double arg) {
    for (size_t i = 0; i < sizeof w7_binary; i++) w7_binary[i] = (uint8_t)(i & 255);
    w7_stream = !strcmp(w, "W7-stream");
    w7_open(url, w7_stream ? W7_CONNS : 1);
    bu_phase ph;
    long sent = 0;
    w7_active = w7_nconns;
    bu_start(&ph);
    if (w7_stream) {
        w7_deadline = bu_wall() + (arg > 0 ? arg : 5.0);
        for (int i = 0; i < w7_nconns; i++)
            for (int k = 0; k < W7_WINDOW; k++) w7_send(&w7_conns[i]);
    } else {
        target = arg > 0 ? (long)arg : 100000;
        w7_send(&w7_conns[0]);
    }
    LIB(tornado_loop_start(loop));
    bu_stop(&ph);
    for (int i = 0; i < w7_nconns; i++) sent += w7_conns[i].sent;
    long n = w7_total;
    long errors = w7_errors + (sent - n);
    if (w7_stream)
        bu_emit(w, n, &ph, 0,
                ",\"msgs_per_s\":%.1f,\"mb_per_s\":%.2f,\"errors\":%ld,\"connections\":%d,\"window\":%d,"
                "\"msg_bytes\":1024,\"sent\":%ld",
                (double)n / ph.wall_s, (double)n * 1024 / 1048576.0 / ph.wall_s, errors, w7_nconns, W7_WINDOW,
                sent);
    else
        bu_emit(w, n, &ph, 1,
                ",\"msgs_per_s\":%.1f,\"errors\":%ld,\"connections\":1,\"window\":1,\"msg_bytes\":64,\"sent\":%ld",
                (double)n / ph.wall_s, errors, sent);
    w7_close_all();
    free_loop();
    return errors == 0 && (w7_stream || n == target) ? 0 : 1;
}

#endif
