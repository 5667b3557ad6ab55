/* The C half of the Go binding's Client (see client.go).
 *
 * Nothing here calls into Go: the library's callbacks (fetch done, response
 * head, body chunk, resolver) only append an event to the loop's event
 * array, and tg_drive runs the loop until there is at least one event (or a
 * wake-up from another goroutine), then returns to Go, which handles the
 * whole batch at once. A call from C into Go costs about a microsecond; a
 * return to Go costs nothing extra, so a batch of N completions costs one
 * call instead of N.
 *
 * Everything in a tg_state and a tg_req belongs to the loop's thread,
 * except tg_wake, which any thread may call (through the thread-safe
 * tornado_loop_add_callback). */
#ifndef TORNADO_GO_GLUE_H
#define TORNADO_GO_GLUE_H

#include <stddef.h>
#include <stdint.h>

#include "tornado_rs.h"

enum {
    TG_DONE = 1,    /* the fetch ended: req->future is done */
    TG_HEAD = 2,    /* the final response's head: data/len (malloc'd, Go frees) */
    TG_CHUNK = 3,   /* a body chunk: data/len (Go gives it back with tg_chunk_free) */
    TG_RESOLVE = 4, /* a name lookup: data (host, malloc'd), port, family, reply */
    TG_PRODUCE = 5, /* the upload may start: Go writes it with tg_upload_write */
    TG_WRITTEN = 6, /* an upload write is done: code (0 or its error) */
    TG_WATCHED = 7, /* a future watched with tg_watch is done (id: the watch's) */
    TG_WS_PING = 8, /* a WebSocket ping: id (the connection's), data/len (malloc'd, Go frees) */
};

typedef struct tg_req tg_req;

typedef struct {
    int32_t kind;
    int32_t family;
    int32_t code;
    uint16_t port;
    uint64_t id;
    uint8_t *data;
    size_t len;
    tornado_resolve_reply *reply;
} tg_event;

typedef struct {
    tornado_loop *loop;
    tornado_http_client *client;
    tg_event *events;
    size_t nevents, cap;
    int woken;
    int failed; /* an allocation failed: the events of this batch are incomplete */
} tg_state;

/* One fetch. Referenced by the library's callbacks (each with its drop
 * function) and by Go until Go has handled its TG_DONE. */
struct tg_req {
    tg_state *st;
    uint64_t id;
    int refs;
    tornado_future *future; /* the fetch's future: one reference, Go's */
    /* Streaming (the RoundTripper): the head's lines gathered until the
     * empty line; body bytes handed to Go and acknowledged as read; the
     * read pauses (on `pause`) while more than `window` are unread. */
    uint8_t *head;
    size_t head_len, head_cap;
    int head_sent;
    uint64_t delivered, consumed, window;
    tornado_future *pause;
    /* A streamed upload (Request.BodyReader): the library's writer, the
     * future that ends the upload, the write in progress. */
    tornado_http_body_writer *writer;
    tornado_future *upload, *write;
};

/* What Go hands tg_start: numbers here, strings in one buffer (each
 * NUL-terminated, in the order of the tg_s_* indexes; an empty string
 * leaves the default), headers as "name\0value\0" pairs after them. */
enum {
    TG_S_URL,
    TG_S_METHOD,
    TG_S_USER_AGENT,
    TG_S_USERNAME,
    TG_S_PASSWORD,
    TG_S_AUTH_MODE,
    TG_S_CA_FILE,
    TG_S_MIN_TLS,
    TG_S_SERVER_NAME,
    TG_S_PROXY_HOST,
    TG_S_PROXY_USER,
    TG_S_PROXY_PASS,
    TG_S_INTERFACE,
    TG_S_CERT_FILE,
    TG_S_KEY_FILE,
    TG_S_UNIX_SOCKET,
    TG_S_PROXY_CA,
    TG_S_COUNT
};

typedef struct {
    uint64_t id;
    double connect_timeout, request_timeout; /* < 0: default */
    double if_modified_since;                /* < 0: none */
    int32_t follow_redirects, max_redirects, decompress, validate_cert, allow_ipv6; /* < 0: default */
    int32_t allow_nonstandard, expect_continue, stream, produce; /* 0 or 1 */
    int32_t http_version; /* a TORNADO_HTTP_VERSION_*, or < 0: the client's */
    int32_t nheaders;
    int32_t has_auth;
    uint16_t proxy_port;
    int32_t proxy_validate_cert; /* < 0: default (on) */
    uint64_t window;
    size_t ca_pem_len, cert_pem_len, key_pem_len; /* PEM blobs follow the body in `blobs` */
} tg_spec;

tg_state *tg_state_new(void);
/* Frees the event array and the state (the loop and client are Go's to free). */
void tg_state_free(tg_state *st);
/* Runs the loop until an event or a wake-up; returns 0 or the loop's error. */
tornado_code tg_drive(tg_state *st);
/* Any thread: makes the running tg_drive return. */
tornado_code tg_wake(tg_state *st);
/* Appends an event to the batch (the loop's thread). */
tg_event *tg_push(tg_state *st, int32_t kind, uint64_t id);
/* A request from a tg_spec and its strings (as tg_start's, without its
 * callbacks); NULL with the message in `err` on failure. */
tornado_http_request *tg_build_request(tg_state *st, const tg_spec *spec, const char *strings, size_t strings_len,
                                       const uint8_t *body, size_t body_len, int has_body, const uint8_t *blobs,
                                       char *err, size_t errlen);
/* Starts a fetch; NULL with tornado_last_error set on failure (the
 * message written to `err`, at most errlen bytes). */
tg_req *tg_start(tg_state *st, const tg_spec *spec, const char *strings, size_t strings_len,
                 const uint8_t *body, size_t body_len, int has_body, const uint8_t *blobs, char *err,
                 size_t errlen);
/* Requests allocated and not yet freed, over every client (for the tests). */
long tg_live_reqs(void);
/* Gives back a TG_CHUNK's buffer (any thread). */
void tg_chunk_free(uint8_t *p, size_t len);
/* Go is done with the request (after its TG_DONE). */
void tg_req_release(tg_req *req);
/* The reader took `n` more bytes: resume the body read if it was paused
 * and at most `window` bytes are unread now. */
void tg_req_consumed(tg_req *req, uint64_t n);

/* Writes `len` bytes of the upload (copied); a TG_WRITTEN follows. */
tornado_code tg_upload_write(tg_req *req, const uint8_t *data, size_t len);
/* Ends the upload: complete (code 0) or failed (the fetch fails). */
void tg_upload_end(tg_req *req, tornado_code code, const char *message);

/* A done fetch future, read in one call. */
typedef struct {
    int32_t code;
    int32_t error_code;
    int32_t os_error;
    const char *error;
    const char *reason;
    const char *url;
    const uint8_t *headers;
    size_t headers_len;
    const uint8_t *body;
    size_t body_len;
    double request_time, start_time;
    tornado_http_time_info times;
    int has_response;
    int version; /* tornado_http_response_version: 10, 11, 20 (0: none) */
} tg_result;
void tg_collect(const tg_req *req, tg_result *out);

/* Client options in one call, as tg_start: numbers here, strings (hostname
 * mappings as "host\0address\0", endpoint mappings as
 * "host\0port\0to_host\0to_port\0", then the public suffix file's path,
 * "" for none) in one buffer. */
typedef struct {
    int64_t max_clients, max_buffer_size, max_header_size, max_body_size, max_idle_per_host; /* <= 0: default */
    double idle_timeout;                                                                      /* < 0: default */
    int32_t nhostmaps, nendpoints;
    int32_t resolver; /* 1: names go to Go (TG_RESOLVE events) */
    int32_t http_version; /* a TORNADO_HTTP_VERSION_*, or < 0: the default */
    int32_t cookies;      /* 1: the cookie jar on */
    int32_t has_dns_cache_ttl;
    double dns_cache_ttl; /* seconds (0: no cache), when has_dns_cache_ttl */
    int32_t has_http2_ping;
    double http2_ping_idle, http2_ping_timeout; /* seconds, when has_http2_ping */
} tg_client_spec;
/* Makes the loop and the client (on the calling thread, which then runs
 * them); 0 or an error code with the message in `err`. */
tornado_code tg_open(tg_state *st, const tg_client_spec *spec, const char *strings, char *err, size_t errlen);
/* Answers a TG_RESOLVE: `addrs` is "address\0" repeated n times; with
 * n == 0 and a message, the lookup fails. */
tornado_code tg_resolve_answer(tornado_resolve_reply *reply, const char *addrs, int32_t n, uint16_t port,
                               const char *message);

/* The WebSocket client (websocket.go): connect options in one struct. */
typedef struct {
    int32_t compression;             /* zlib level 0-9, or < 0: off */
    int32_t no_context_takeover[2];  /* client, server (with compression) */
    int32_t server_max_window_bits;  /* 0: ask nothing */
    int32_t client_max_window_bits;  /* 8-15; 0: the default (offered without a value) */
    int64_t max_message_size, max_write_buffer; /* <= 0: default */
    double ping_interval, ping_timeout;         /* interval 0: no pings */
    double close_timeout;                       /* <= 0: default */
    int32_t nsubprotocols;                      /* "name\0" each, in `subprotocols` */
    int32_t ping_events;                        /* 1: pings become TG_WS_PING events */
} tg_ws_spec;
/* Watches `future` (borrowed): a TG_WATCHED event with `id` when it is done. */
tornado_code tg_watch(tg_state *st, tornado_future *future, uint64_t id);
/* Connects (the request from spec/strings/blobs); the connect future, or
 * NULL with the message in `err`. */
tornado_future *tg_ws_connect(tg_state *st, const tg_spec *spec, const char *strings, size_t strings_len,
                              const uint8_t *blobs, const tg_ws_spec *ws, const char *subprotocols, char *err,
                              size_t errlen);
/* Pings of `ws` become TG_WS_PING events with `id`. */
tornado_code tg_ws_watch_pings(tg_state *st, tornado_websocket *ws, uint64_t id);

#endif
