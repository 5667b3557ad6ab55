package tornado

// The C half of the Client (declared in glue.h; see there): the library's
// callbacks record events, tg_drive runs the loop until there are some.
// It is C code in this file's cgo preamble (rather than a .c file) so
// that the C functions it calls are part of the Go package's sources.

/*
// The C half of the Go binding's Client: see glue.h.
#include "glue.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Out of memory in the glue: nothing sensible is left to do (Go's own
// allocator aborts the process too).
static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("tornado (Go binding): out of memory\n", stderr);
        abort();
    }
    return q;
}

tg_event *tg_push(tg_state *st, int32_t kind, uint64_t id) {
    if (st->nevents == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 64;
        st->events = xrealloc(st->events, st->cap * sizeof *st->events);
    }
    tg_event *ev = &st->events[st->nevents++];
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    ev->id = id;
    return ev;
}

tg_state *tg_state_new(void) {
    tg_state *st = xrealloc(NULL, sizeof *st);
    memset(st, 0, sizeof *st);
    return st;
}

void tg_state_free(tg_state *st) {
    if (st) {
        free(st->events);
        free(st);
    }
}

static void on_wake(void *ud) { ((tg_state *)ud)->woken = 1; }

tornado_code tg_wake(tg_state *st) { return tornado_loop_add_callback(st->loop, on_wake, st); }

tornado_code tg_drive(tg_state *st) {
    while (st->nevents == 0 && !st->woken) {
        tornado_code rc = tornado_loop_run_once(st->loop, INFINITY);
        if (rc != TORNADO_OK)
            return rc;
    }
    st->woken = 0;
    return TORNADO_OK;
}

// Requests not yet freed, over every client (for the tests).
static long live_reqs;
long tg_live_reqs(void) { return __atomic_load_n(&live_reqs, __ATOMIC_SEQ_CST); }

static void req_unref(tg_req *req) {
    if (--req->refs == 0) {
        __atomic_sub_fetch(&live_reqs, 1, __ATOMIC_SEQ_CST);
        free(req->head);
        free(req);
    }
}

static void req_drop(void *ud) { req_unref(ud); }

static void on_done(tornado_future *future, void *ud) {
    (void)future; // it is req->future, which Go reads and releases
    tg_req *req = ud;
    tg_push(req->st, TG_DONE, req->id);
}

static void on_head_line(const char *line, size_t len, void *ud) {
    tg_req *req = ud;
    if (req->head_sent)
        return;
    if (req->head_len + len > req->head_cap) {
        req->head_cap = (req->head_len + len) * 2;
        req->head = xrealloc(req->head, req->head_cap);
    }
    memcpy(req->head + req->head_len, line, len);
    req->head_len += len;
    if ((len == 2 && line[0] == '\r' && line[1] == '\n') || (len == 1 && line[0] == '\n')) {
        tg_event *ev = tg_push(req->st, TG_HEAD, req->id);
        ev->data = req->head;
        ev->len = req->head_len;
        req->head = NULL;
        req->head_len = req->head_cap = 0;
        req->head_sent = 1;
    }
}

// Body chunks are at most MAX_STREAMED_CHUNK bytes: their buffers are
// kept for reuse (the loop's thread takes them, readers on other threads
// give them back), so that a stream does not fault fresh pages in for
// every chunk.
#define TG_POOL_MAX 256
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *pool[TG_POOL_MAX];
static int npool;

static uint8_t *chunk_alloc(size_t len) {
    if (len > MAX_STREAMED_CHUNK)
        return xrealloc(NULL, len);
    uint8_t *p = NULL;
    pthread_mutex_lock(&pool_mu);
    if (npool > 0)
        p = pool[--npool];
    pthread_mutex_unlock(&pool_mu);
    return p ? p : xrealloc(NULL, MAX_STREAMED_CHUNK);
}

void tg_chunk_free(uint8_t *p, size_t len) {
    if (len <= MAX_STREAMED_CHUNK) {
        pthread_mutex_lock(&pool_mu);
        if (npool < TG_POOL_MAX) {
            pool[npool++] = p;
            p = NULL;
        }
        pthread_mutex_unlock(&pool_mu);
    }
    free(p);
}

static tornado_future *on_chunk(const uint8_t *data, size_t len, void *ud) {
    tg_req *req = ud;
    if (len == 0)
        return NULL;
    tg_event *ev = tg_push(req->st, TG_CHUNK, req->id);
    ev->data = chunk_alloc(len);
    memcpy(ev->data, data, len);
    ev->len = len;
    req->delivered += len;
    if (req->delivered - req->consumed <= req->window)
        return NULL;
    // Too much unread: hold the body read back until Go's reader catches up
    // (tg_req_consumed). One reference for the library, one kept.
    tornado_future *pause = tornado_future_new(req->st->loop);
    if (!pause)
        return NULL; // the loop is closing: nothing to wait for
    req->pause = tornado_future_ref(pause);
    return pause;
}

void tg_req_consumed(tg_req *req, uint64_t n) {
    req->consumed += n;
    if (req->pause && req->delivered - req->consumed <= req->window) {
        tornado_future_set_result(req->pause, NULL, NULL);
        tornado_future_unref(req->pause);
        req->pause = NULL;
    }
}

static tornado_future *on_produce(tornado_http_body_writer *writer, void *ud) {
    tg_req *req = ud;
    tornado_future *upload = tornado_future_new(req->st->loop);
    if (!upload || req->writer) { // the loop is closing, or a second send (never made)
        tornado_http_body_writer_free(writer);
        return upload;
    }
    req->writer = writer;
    req->upload = tornado_future_ref(upload);
    tg_push(req->st, TG_PRODUCE, req->id);
    return upload;
}

static void on_written(tornado_future *future, void *ud) {
    tg_req *req = ud;
    tg_event *ev = tg_push(req->st, TG_WRITTEN, req->id);
    ev->code = tornado_future_error(future, NULL);
}

tornado_code tg_upload_write(tg_req *req, const uint8_t *data, size_t len) {
    if (!req->writer)
        return TORNADO_ERR_CLOSED;
    if (req->write) {
        tornado_future_unref(req->write);
        req->write = NULL;
    }
    tornado_future *f = tornado_http_body_writer_write(req->writer, data, len);
    if (!f)
        return TORNADO_ERR_INVALID;
    tornado_code rc = tornado_future_add_done_callback_full(f, on_written, req, req_drop);
    if (rc != TORNADO_OK) {
        tornado_future_unref(f);
        return rc;
    }
    req->refs++;
    req->write = f; // kept until the next write: its callback is then sure to run
    return TORNADO_OK;
}

void tg_upload_end(tg_req *req, tornado_code code, const char *message) {
    if (req->writer) {
        tornado_http_body_writer_free(req->writer);
        req->writer = NULL;
    }
    if (req->upload) {
        if (code != TORNADO_OK)
            tornado_future_set_error(req->upload, code, message);
        else
            tornado_future_set_result(req->upload, NULL, NULL);
        tornado_future_unref(req->upload);
        req->upload = NULL;
    }
}

void tg_req_release(tg_req *req) {
    if (req->writer)
        tornado_http_body_writer_free(req->writer);
    req->writer = NULL;
    tornado_future_unref(req->upload); // NULL is a no-op
    tornado_future_unref(req->write);
    req->upload = req->write = NULL;
    if (req->pause) {
        tornado_future_unref(req->pause);
        req->pause = NULL;
    }
    tornado_future_unref(req->future);
    req->future = NULL;
    req_unref(req);
}

static void copy_error(char *err, size_t errlen) {
    const char *msg = tornado_last_error();
    snprintf(err, errlen, "%s", msg ? msg : "(no message)");
}

#define CHECK(call)                                                                                          \
    do {                                                                                                     \
        if ((call) != TORNADO_OK)                                                                            \
            goto fail;                                                                                       \
    } while (0)

tornado_http_request *tg_build_request(tg_state *st, const tg_spec *spec, const char *strings, size_t strings_len,
                                       const uint8_t *body, size_t body_len, int has_body, const uint8_t *blobs,
                                       char *err, size_t errlen) {
    const char *s[TG_S_COUNT];
    const char *p = strings, *end = strings + strings_len;
    for (int i = 0; i < TG_S_COUNT; i++) {
        if (p >= end) {
            snprintf(err, errlen, "tg_start: truncated strings");
            return NULL;
        }
        s[i] = p;
        p += strlen(p) + 1;
    }
    tornado_http_request *r = tornado_http_client_request_new(st->client, s[TG_S_URL]);
    if (!r)
        goto fail;
    if (*s[TG_S_METHOD])
        CHECK(tornado_http_request_set_method(r, s[TG_S_METHOD]));
    for (int i = 0; i < spec->nheaders; i++) {
        if (p >= end) {
            tornado_http_request_free(r);
            snprintf(err, errlen, "tg_start: truncated headers");
            return NULL;
        }
        const char *name = p;
        p += strlen(p) + 1;
        const char *value = p;
        p += strlen(p) + 1;
        CHECK(tornado_http_request_add_header_bytes(r, name, (const uint8_t *)value, strlen(value)));
    }
    if (has_body)
        CHECK(tornado_http_request_set_body(r, body_len ? body : NULL, body_len));
    if (spec->connect_timeout >= 0)
        CHECK(tornado_http_request_set_connect_timeout(r, spec->connect_timeout));
    if (spec->request_timeout >= 0)
        CHECK(tornado_http_request_set_request_timeout(r, spec->request_timeout));
    if (spec->follow_redirects >= 0)
        CHECK(tornado_http_request_set_follow_redirects(r, spec->follow_redirects != 0));
    if (spec->max_redirects >= 0)
        CHECK(tornado_http_request_set_max_redirects(r, spec->max_redirects));
    if (spec->decompress >= 0)
        CHECK(tornado_http_request_set_decompress_response(r, spec->decompress != 0));
    if (spec->validate_cert >= 0)
        CHECK(tornado_http_request_set_validate_cert(r, spec->validate_cert != 0));
    if (spec->allow_ipv6 >= 0)
        CHECK(tornado_http_request_set_allow_ipv6(r, spec->allow_ipv6 != 0));
    if (spec->allow_nonstandard)
        CHECK(tornado_http_request_set_allow_nonstandard_methods(r, true));
    if (spec->expect_continue)
        CHECK(tornado_http_request_set_expect_100_continue(r, true));
    if (*s[TG_S_USER_AGENT])
        CHECK(tornado_http_request_set_user_agent(r, s[TG_S_USER_AGENT]));
    if (spec->has_auth)
        CHECK(tornado_http_request_set_auth(r, s[TG_S_USERNAME], s[TG_S_PASSWORD]));
    if (*s[TG_S_AUTH_MODE])
        CHECK(tornado_http_request_set_auth_mode(r, s[TG_S_AUTH_MODE]));
    if (*s[TG_S_CA_FILE])
        CHECK(tornado_http_request_set_ca_certs(r, s[TG_S_CA_FILE]));
    if (spec->ca_pem_len)
        CHECK(tornado_http_request_set_ca_pem(r, blobs, spec->ca_pem_len));
    if (spec->cert_pem_len || spec->key_pem_len)
        CHECK(tornado_http_request_set_client_cert_pem(r, blobs + spec->ca_pem_len, spec->cert_pem_len,
                                                       blobs + spec->ca_pem_len + spec->cert_pem_len,
                                                       spec->key_pem_len));
    if (*s[TG_S_MIN_TLS])
        CHECK(tornado_http_request_set_min_tls_version(r, s[TG_S_MIN_TLS]));
    if (*s[TG_S_SERVER_NAME])
        CHECK(tornado_http_request_set_server_name(r, s[TG_S_SERVER_NAME]));
    if (*s[TG_S_PROXY_HOST])
        CHECK(tornado_http_request_set_proxy(r, s[TG_S_PROXY_HOST], spec->proxy_port,
                                             *s[TG_S_PROXY_USER] ? s[TG_S_PROXY_USER] : NULL,
                                             *s[TG_S_PROXY_PASS] ? s[TG_S_PROXY_PASS] : NULL));
    if (*s[TG_S_INTERFACE])
        CHECK(tornado_http_request_set_network_interface(r, s[TG_S_INTERFACE]));
    if (*s[TG_S_CERT_FILE] || *s[TG_S_KEY_FILE])
        CHECK(tornado_http_request_set_client_cert(r, *s[TG_S_CERT_FILE] ? s[TG_S_CERT_FILE] : NULL,
                                                   *s[TG_S_KEY_FILE] ? s[TG_S_KEY_FILE] : NULL));
    if (spec->if_modified_since >= 0)
        CHECK(tornado_http_request_set_if_modified_since(r, spec->if_modified_since));
    if (spec->http_version >= 0)
        CHECK(tornado_http_request_set_http_version(r, (uint32_t)spec->http_version));
    if (*s[TG_S_UNIX_SOCKET])
        CHECK(tornado_http_request_set_unix_socket(r, s[TG_S_UNIX_SOCKET]));
    if (*s[TG_S_PROXY_CA])
        CHECK(tornado_http_request_set_proxy_ca_certs(r, s[TG_S_PROXY_CA]));
    if (spec->proxy_validate_cert >= 0)
        CHECK(tornado_http_request_set_proxy_validate_cert(r, spec->proxy_validate_cert != 0));
    return r;
fail:
    copy_error(err, errlen);
    tornado_http_request_free(r);
    return NULL;
}

tg_req *tg_start(tg_state *st, const tg_spec *spec, const char *strings, size_t strings_len,
                 const uint8_t *body, size_t body_len, int has_body, const uint8_t *blobs, char *err,
                 size_t errlen) {
    tornado_http_request *r =
        tg_build_request(st, spec, strings, strings_len, body, body_len, has_body, blobs, err, errlen);
    if (!r)
        return NULL;
    tg_req *req = xrealloc(NULL, sizeof *req);
    memset(req, 0, sizeof *req);
    req->st = st;
    req->id = spec->id;
    req->refs = 1; // Go's
    __atomic_add_fetch(&live_reqs, 1, __ATOMIC_SEQ_CST);
    req->window = spec->window;
    if (spec->stream) {
        CHECK(tornado_http_request_set_header_callback(r, on_head_line, req, req_drop));
        req->refs++;
        CHECK(tornado_http_request_set_streaming_callback_async(r, on_chunk, req, req_drop));
        req->refs++;
    }
    if (spec->produce) {
        CHECK(tornado_http_request_set_body_producer_async(r, on_produce, req, req_drop));
        req->refs++;
    }
    req->future = tornado_http_client_fetch(st->client, r);
    if (!req->future)
        goto fail;
    if (tornado_future_add_done_callback_full(req->future, on_done, req, req_drop) != TORNADO_OK) {
        copy_error(err, errlen);
        tornado_future_cancel(req->future);
        tornado_future_unref(req->future);
        tornado_http_request_free(r);
        req_unref(req);
        return NULL;
    }
    req->refs++;
    tornado_http_request_free(r); // the fetch copied it
    return req;
fail:
    copy_error(err, errlen);
    tornado_http_request_free(r); // drops the callbacks registered so far
    req_unref(req);
    return NULL;
}

void tg_collect(const tg_req *req, tg_result *out) {
    memset(out, 0, sizeof *out);
    const char *msg = NULL;
    tornado_code code = tornado_future_error(req->future, &msg);
    if (code != TORNADO_OK) {
        out->code = 599;
        out->error_code = code;
        out->error = msg;
        out->os_error = tornado_future_os_error(req->future);
        return;
    }
    const tornado_http_response *r = tornado_future_result(req->future);
    out->has_response = 1;
    out->code = tornado_http_response_code(r);
    out->version = tornado_http_response_version(r);
    out->error_code = tornado_http_response_error_code(r);
    out->error = tornado_http_response_error(r);
    out->os_error = tornado_http_response_os_error(r);
    out->reason = tornado_http_response_reason(r);
    out->url = tornado_http_response_effective_url(r);
    out->headers = tornado_http_response_header_block(r, &out->headers_len);
    out->body = tornado_http_response_body(r, &out->body_len);
    out->request_time = tornado_http_response_request_time(r);
    out->start_time = tornado_http_response_start_time(r);
    tornado_http_response_time_info(r, &out->times);
}

static void on_resolve(const char *host, uint16_t port, int family, tornado_resolve_reply *reply, void *ud) {
    tg_state *st = ud;
    tg_event *ev = tg_push(st, TG_RESOLVE, 0);
    size_t n = strlen(host);
    ev->data = xrealloc(NULL, n + 1);
    memcpy(ev->data, host, n + 1);
    ev->len = n;
    ev->port = port;
    ev->family = family;
    ev->reply = reply;
}

tornado_code tg_open(tg_state *st, const tg_client_spec *spec, const char *strings, char *err, size_t errlen) {
    tornado_http_client_options *o = NULL;
    tornado_code rc = TORNADO_ERR_INVALID;
    st->loop = tornado_loop_new();
    if (!st->loop)
        goto fail;
    o = tornado_http_client_options_new();
    if (!o)
        goto fail;
#define OPT(call)                                                                                            \
    do {                                                                                                     \
        if ((rc = (call)) != TORNADO_OK)                                                                     \
            goto fail;                                                                                       \
    } while (0)
    if (spec->max_clients > 0)
        OPT(tornado_http_client_options_set_max_clients(o, (size_t)spec->max_clients));
    if (spec->max_buffer_size > 0)
        OPT(tornado_http_client_options_set_max_buffer_size(o, (size_t)spec->max_buffer_size));
    if (spec->max_header_size > 0)
        OPT(tornado_http_client_options_set_max_header_size(o, (size_t)spec->max_header_size));
    if (spec->max_body_size > 0)
        OPT(tornado_http_client_options_set_max_body_size(o, (uint64_t)spec->max_body_size));
    if (spec->max_idle_per_host > 0)
        OPT(tornado_http_client_options_set_max_idle_per_host(o, (size_t)spec->max_idle_per_host));
    if (spec->idle_timeout >= 0)
        OPT(tornado_http_client_options_set_idle_timeout(o, spec->idle_timeout));
    const char *p = strings;
    for (int i = 0; i < spec->nhostmaps; i++) {
        const char *host = p;
        p += strlen(p) + 1;
        const char *addr = p;
        p += strlen(p) + 1;
        OPT(tornado_http_client_options_add_hostname_mapping(o, host, addr));
    }
    for (int i = 0; i < spec->nendpoints; i++) {
        const char *host = p;
        p += strlen(p) + 1;
        long port = strtol(p, NULL, 10);
        p += strlen(p) + 1;
        const char *to = p;
        p += strlen(p) + 1;
        long to_port = strtol(p, NULL, 10);
        p += strlen(p) + 1;
        OPT(tornado_http_client_options_add_endpoint_mapping(o, host, (uint16_t)port, to, (uint16_t)to_port));
    }
    if (*p)
        OPT(tornado_http_client_options_set_public_suffix_file(o, p));
    if (spec->resolver)
        OPT(tornado_http_client_options_set_resolver(o, on_resolve, st, NULL));
    if (spec->http_version >= 0)
        OPT(tornado_http_client_options_set_http_version(o, (uint32_t)spec->http_version));
    if (spec->cookies)
        OPT(tornado_http_client_options_set_cookies(o, true));
    if (spec->has_dns_cache_ttl)
        OPT(tornado_http_client_options_set_dns_cache_ttl(o, spec->dns_cache_ttl));
    if (spec->has_http2_ping)
        OPT(tornado_http_client_options_set_http2_ping(o, spec->http2_ping_idle, spec->http2_ping_timeout));
    st->client = tornado_http_client_new(st->loop, o);
    if (!st->client)
        goto fail;
    tornado_http_client_options_free(o);
    return TORNADO_OK;
fail:
    copy_error(err, errlen);
    tornado_http_client_options_free(o);
    if (st->loop)
        tornado_loop_free(st->loop);
    st->loop = NULL;
    return rc == TORNADO_OK ? TORNADO_ERR_INVALID : rc;
}

tornado_code tg_resolve_answer(tornado_resolve_reply *reply, const char *addrs, int32_t n, uint16_t port,
                               const char *message) {
    if (n == 0 && message)
        return tornado_resolve_reply_fail(reply, TORNADO_ERR_RESOLVE, message);
    const char *p = addrs;
    for (int32_t i = 0; i < n; i++) {
        if (tornado_resolve_reply_add(reply, p, port) != TORNADO_OK) {
            const char *msg = tornado_last_error();
            char copy[256];
            snprintf(copy, sizeof copy, "%s", msg ? msg : "bad address");
            tornado_resolve_reply_fail(reply, TORNADO_ERR_RESOLVE, copy);
            return TORNADO_ERR_INVALID;
        }
        p += strlen(p) + 1;
    }
    return tornado_resolve_reply_done(reply);
}
*/
import "C"
