/* ws.c: `tornado-ws`, a small WebSocket client on the public C API.
 *
 *   tornado-ws [OPTIONS] URL        URL: ws://... or wss://...
 *
 * Sends each line of standard input (without its line end) as a text
 * message (--binary: a binary one) and prints each message received, one
 * per line (--json: one JSON object per line, {"type":"text"|"binary",
 * "data":...}, binary data in base64, and a last line {"type":"close",
 * "code":N,"reason":"..."}). At the end of its input it sends a close
 * (1000) and exits 0 once the close handshake completes; a close from the
 * server also ends it with 0. Any error (handshake refused, protocol
 * error, timeout) prints "tornado-ws: KIND: MESSAGE" on stderr and exits
 * 1; bad arguments exit 2.
 *
 * Options: --json, --binary, --subprotocol NAME (repeatable), --header
 * "Name: value" (repeatable), --cacert FILE, --insecure, --compress
 * (permessage-deflate), --timeout S (connect and handshake, default 20),
 * --ping S (ping interval; no pong within it closes), --max-message BYTES.
 *
 * Standard input is read by a thread of its own (it may be a file, a pipe
 * or a terminal), which hands each line to the loop with
 * tornado_loop_add_callback, the one call that any thread may make. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tornado_rs.h"

static tornado_loop *loop;
static tornado_websocket *ws;
static int json, binary;
static int exit_code = -1;
/* After the end of input: the close has been sent. */
static int closing;

static void print_base64(const uint8_t *data, size_t len) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < len; i += 3) {
        uint32_t n = (uint32_t)data[i] << 16;
        if (i + 1 < len) n |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len) n |= data[i + 2];
        putchar(alphabet[(n >> 18) & 63]);
        putchar(alphabet[(n >> 12) & 63]);
        putchar(i + 1 < len ? alphabet[(n >> 6) & 63] : '=');
        putchar(i + 2 < len ? alphabet[n & 63] : '=');
    }
}

/* A JSON string of `len` UTF-8 bytes: quotes, backslashes and control
 * characters escaped (a NUL too), other bytes as they are. */
static void print_json_string(const uint8_t *s, size_t len) {
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        switch (c) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (c < 0x20) printf("\\u%04x", c);
            else putchar(c);
        }
    }
    putchar('"');
}

/* "TORNADO_ERR_X: kind: detail" -> "kind: detail". */
static const char *without_code_name(const char *message) {
    if (message && strncmp(message, "TORNADO_", 8) == 0) {
        const char *rest = strstr(message, ": ");
        if (rest) return rest + 2;
    }
    return message ? message : "unknown error";
}

static void finish(int code) {
    if (exit_code < 0) exit_code = code;
    tornado_loop_stop(loop);
}

static void on_message(const tornado_websocket_message *m, void *ud) {
    (void)ud;
    if (m) {
        size_t len = 0;
        const uint8_t *data = tornado_websocket_message_data(m, &len);
        int is_binary = tornado_websocket_message_is_binary(m);
        if (json) {
            printf("{\"type\":\"%s\",\"data\":", is_binary ? "binary" : "text");
            if (is_binary) {
                putchar('"');
                print_base64(data, len);
                putchar('"');
            } else {
                print_json_string(data, len);
            }
            puts("}");
        } else {
            fwrite(data, 1, len, stdout);
            putchar('\n');
        }
        fflush(stdout);
        return;
    }
    /* The end: a clean close (ours answered, or the server's), or an error. */
    tornado_code rc = tornado_websocket_error(ws);
    if (rc != TORNADO_OK) {
        fprintf(stderr, "tornado-ws: %s\n", without_code_name(tornado_last_error()));
        finish(1);
        return;
    }
    if (json) {
        int code = tornado_websocket_close_code(ws);
        const char *reason = tornado_websocket_close_reason(ws);
        printf("{\"type\":\"close\",\"code\":%d,\"reason\":", code ? code : 1005);
        print_json_string((const uint8_t *)(reason ? reason : ""), reason ? strlen(reason) : 0);
        puts("}");
        fflush(stdout);
    }
    finish(0);
}

/* A line from the reader thread, on the loop. NULL data: end of input. */
typedef struct {
    size_t len;
    int eof;
    char data[];
} line_t;

static void on_line(void *ud) {
    line_t *line = ud;
    if (exit_code >= 0 || closing) return;
    if (line->eof) {
        closing = 1;
        tornado_future *f = tornado_websocket_close(ws, 1000, NULL);
        /* NULL: the connection already ended; on_message(NULL) says how. */
        tornado_future_unref(f);
        return;
    }
    tornado_future *f = tornado_websocket_write_message(ws, (const uint8_t *)line->data, line->len, binary);
    if (!f && !tornado_websocket_is_closed(ws)) {
        fprintf(stderr, "tornado-ws: %s\n", without_code_name(tornado_last_error()));
        finish(1);
    }
    tornado_future_unref(f);
}

static void *read_stdin(void *arg) {
    (void)arg;
    char *text = NULL;
    size_t cap = 0;
    ssize_t n;
    for (;;) {
        n = getline(&text, &cap, stdin);
        size_t len = n > 0 ? (size_t)n : 0;
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--;
        line_t *line = malloc(sizeof *line + len + 1);
        if (!line) break;
        line->len = len;
        line->eof = n < 0;
        if (len) memcpy(line->data, text, len);
        line->data[len] = 0;
        if (tornado_loop_add_callback_full(loop, on_line, line, free) != TORNADO_OK) {
            free(line);
            break;
        }
        if (n < 0) break;
    }
    free(text);
    return NULL;
}

static void usage(void) {
    fprintf(stderr,
            "usage: tornado-ws [--json] [--binary] [--subprotocol NAME]... [--header 'Name: value']...\n"
            "                  [--cacert FILE] [--insecure] [--compress] [--timeout S] [--ping S]\n"
            "                  [--max-message BYTES] ws://HOST[:PORT]/PATH | wss://...\n");
    exit(2);
}

static double seconds_arg(const char *option, const char *text) {
    char *end = NULL;
    double v = strtod(text, &end);
    if (!end || *end || v < 0 || v != v) {
        fprintf(stderr, "tornado-ws: %s needs seconds >= 0, got '%s'\n", option, text);
        exit(2);
    }
    return v;
}

#define FAIL_SETUP(call, what)                                                                   \
    do {                                                                                         \
        if ((call) != TORNADO_OK) {                                                              \
            fprintf(stderr, "tornado-ws: %s: %s\n", what, without_code_name(tornado_last_error())); \
            exit(2);                                                                             \
        }                                                                                        \
    } while (0)

int main(int argc, char **argv) {
    const char *url = NULL, *cacert = NULL;
    const char *headers[64], *subprotocols[16];
    int nheaders = 0, nsub = 0, insecure = 0, compress = 0;
    double timeout = 20, ping = 0;
    size_t max_message = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--binary")) binary = 1;
        else if (!strcmp(a, "--insecure") || !strcmp(a, "-k")) insecure = 1;
        else if (!strcmp(a, "--compress")) compress = 1;
        else if (!strcmp(a, "--subprotocol") && more && nsub < 16) subprotocols[nsub++] = argv[++i];
        else if ((!strcmp(a, "--header") || !strcmp(a, "-H")) && more && nheaders < 64) headers[nheaders++] = argv[++i];
        else if (!strcmp(a, "--cacert") && more) cacert = argv[++i];
        else if (!strcmp(a, "--timeout") && more) timeout = seconds_arg(a, argv[++i]);
        else if (!strcmp(a, "--ping") && more) ping = seconds_arg(a, argv[++i]);
        else if (!strcmp(a, "--max-message") && more) max_message = strtoull(argv[++i], NULL, 10);
        else if (a[0] == '-' || url) usage();
        else url = a;
    }
    if (!url) usage();

    loop = tornado_loop_new();
    tornado_http_client *client = tornado_http_client_new(loop, NULL);
    tornado_http_request *request = tornado_http_request_new(url);
    if (!loop || !client || !request) {
        fprintf(stderr, "tornado-ws: %s\n", without_code_name(tornado_last_error()));
        return 2;
    }
    for (int i = 0; i < nheaders; i++) {
        char name[256];
        const char *colon = strchr(headers[i], ':');
        size_t n = colon ? (size_t)(colon - headers[i]) : 0;
        if (!colon || n == 0 || n >= sizeof name) {
            fprintf(stderr, "tornado-ws: --header needs 'Name: value', got '%s'\n", headers[i]);
            return 2;
        }
        memcpy(name, headers[i], n);
        name[n] = 0;
        const char *value = colon + 1;
        while (*value == ' ' || *value == '\t') value++;
        FAIL_SETUP(tornado_http_request_add_header(request, name, value), "--header");
    }
    if (cacert) FAIL_SETUP(tornado_http_request_set_ca_certs(request, cacert), "--cacert");
    if (insecure) FAIL_SETUP(tornado_http_request_set_validate_cert(request, false), "--insecure");
    FAIL_SETUP(tornado_http_request_set_connect_timeout(request, timeout), "--timeout");
    FAIL_SETUP(tornado_http_request_set_request_timeout(request, timeout), "--timeout");

    tornado_websocket_options *options = tornado_websocket_options_new();
    for (int i = 0; i < nsub; i++)
        FAIL_SETUP(tornado_websocket_options_add_subprotocol(options, subprotocols[i]), "--subprotocol");
    if (compress) FAIL_SETUP(tornado_websocket_options_set_compression(options, 6), "--compress");
    if (ping > 0) FAIL_SETUP(tornado_websocket_options_set_ping(options, ping, ping), "--ping");
    if (max_message) FAIL_SETUP(tornado_websocket_options_set_max_message_size(options, max_message), "--max-message");

    tornado_future *connecting = tornado_websocket_connect(client, request, options);
    tornado_websocket_options_free(options);
    tornado_http_request_free(request);
    if (!connecting) {
        fprintf(stderr, "tornado-ws: %s\n", without_code_name(tornado_last_error()));
        return tornado_last_error() && strstr(tornado_last_error(), "INVALID_URL") ? 2 : 1;
    }
    tornado_loop_run_sync(loop, connecting, 0);
    const char *message = NULL;
    if (tornado_future_error(connecting, &message) != TORNADO_OK) {
        fprintf(stderr, "tornado-ws: %s\n", message ? message : "connect failed");
        return 1;
    }
    ws = tornado_websocket_ref(tornado_future_result(connecting));
    tornado_future_unref(connecting);
    FAIL_SETUP(tornado_websocket_set_message_callback(ws, on_message, NULL, NULL), "message callback");

    pthread_t reader;
    if (pthread_create(&reader, NULL, read_stdin, NULL) != 0) {
        fprintf(stderr, "tornado-ws: cannot start the input thread: %s\n", strerror(errno));
        return 1;
    }
    pthread_detach(reader);
    tornado_loop_start(loop);
    fflush(stdout);
    /* The input thread may still be blocked in getline: leave the loop and
     * the handles to the exit rather than free them under it. */
    return exit_code < 0 ? 1 : exit_code;
}
