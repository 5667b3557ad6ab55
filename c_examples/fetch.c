/* fetch.c: `tornado-fetch`, a small curl-like program on the public C API.
 * The interface is fixed by shared/FETCH_CLI.md:
 *
 *   tornado-fetch [OPTIONS] URL
 *
 * It prints the body (or, with --json, one JSON line describing the
 * response), or with -n/-c runs a small load and prints a summary line.
 * Exit status: 0 when a response was received, 1 on a fetch error, 2 on bad
 * command-line arguments. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tornado_rs.h"

/* ---- small output helpers: growable buffer, base64, JSON strings ---- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const void *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + len) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) {
            fprintf(stderr, "tornado-fetch: out of memory\n");
            exit(1);
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

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

/* A JSON string: quotes, backslashes and control characters escaped; other
 * bytes are passed through (header values arrive as UTF-8). */
static void print_json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default:
            if (*p < 0x20) printf("\\u%04x", *p);
            else putchar(*p);
        }
    }
    putchar('"');
}

/* ---- command line ---- */

typedef struct {
    const char *url;
    const char *method;
    const char *headers[64];
    int nheaders;
    buf_t body;
    int has_body;
    double connect_timeout, request_timeout; /* < 0: the library's default */
    int no_follow, max_redirects;            /* max_redirects < 0: default */
    const char *user_agent, *user, *cacert;
    int no_decompress, insecure, allow_nonstandard, stream, json;
    unsigned long long max_body_size, max_header_size; /* 0: default */
    long n, c;
    int http_version; /* < 0: the library's default; else TORNADO_HTTP_VERSION_* */
    /* curl-like additions (shared/FETCH_CLI.md, "Additions") */
    int head, silent, digest, compressed;
    const char *output;               /* -o FILE */
    const char *proxy, *proxy_user;   /* --proxy URL, --proxy-user USER:PASS */
    const char *proxy_cacert;         /* --proxy-cacert PATH */
    int proxy_insecure;               /* --proxy-insecure */
    const char *cert, *key;           /* --cert FILE, --key FILE */
    const char *unix_socket;          /* --unix-socket PATH */
    const char *cookie_in, *cookie_jar; /* --cookie FILE, --cookie-jar FILE */
    const char *resolve[16];          /* --resolve HOST:PORT:ADDR */
    int nresolve;
    const char *write_out;            /* -w FORMAT */
} options_t;

static void usage(const char *why) {
    fprintf(stderr,
            "tornado-fetch: %s\n"
            "usage: tornado-fetch [-X METHOD] [-H 'Name: value']... [-d DATA | --data-file PATH]\n"
            "       [--connect-timeout S] [--request-timeout S] [--no-follow] [--max-redirects N]\n"
            "       [--user-agent UA] [--user USER:PASS] [--no-decompress] [--insecure] [--cacert PATH]\n"
            "       [--max-body-size BYTES] [--max-header-size BYTES] [--allow-nonstandard-methods]\n"
            "       [--stream] [--json] [--http1.1 | --http2 | --http2-prior-knowledge] [-n N -c C]\n"
            "       [-I] [-o FILE] [-s] [-w FORMAT] [--compressed] [--digest] [--proxy URL]\n"
            "       [--proxy-user USER:PASS] [--proxy-cacert PATH] [--proxy-insecure] [--cert FILE] [--key FILE] [--unix-socket PATH]\n"
            "       [--cookie FILE] [--cookie-jar FILE] [--resolve HOST:PORT:ADDR]... URL\n",
            why);
    exit(2);
}

static double parse_seconds(const char *text, const char *option) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= 0)) {
        fprintf(stderr, "tornado-fetch: %s needs seconds >= 0, got '%s'\n", option, text);
        exit(2);
    }
    return v;
}

static unsigned long long parse_count(const char *text, const char *option) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-') {
        fprintf(stderr, "tornado-fetch: %s needs a whole number, got '%s'\n", option, text);
        exit(2);
    }
    return v;
}

static void read_file_into(buf_t *b, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "tornado-fetch: cannot read %s: %s\n", path, strerror(errno));
        exit(2);
    }
    uint8_t chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(b, chunk, n);
    fclose(f);
}

static void parse_args(int argc, char **argv, options_t *o) {
    memset(o, 0, sizeof *o);
    o->method = "GET";
    o->connect_timeout = o->request_timeout = -1;
    o->max_redirects = -1;
    o->http_version = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* options with a value take the next argument */
#define VALUE() (i + 1 < argc ? argv[++i] : (usage("missing value after an option"), ""))
        if (!strcmp(a, "-X")) o->method = VALUE();
        else if (!strcmp(a, "-H")) {
            if (o->nheaders == 64) usage("too many -H options");
            o->headers[o->nheaders++] = VALUE();
        } else if (!strcmp(a, "-d")) {
            const char *d = VALUE();
            o->body.len = 0;
            buf_add(&o->body, d, strlen(d));
            o->has_body = 1;
        } else if (!strcmp(a, "--data-file")) {
            o->body.len = 0;
            read_file_into(&o->body, VALUE());
            o->has_body = 1;
        } else if (!strcmp(a, "--connect-timeout")) o->connect_timeout = parse_seconds(VALUE(), a);
        else if (!strcmp(a, "--request-timeout")) o->request_timeout = parse_seconds(VALUE(), a);
        else if (!strcmp(a, "--no-follow")) o->no_follow = 1;
        else if (!strcmp(a, "--max-redirects")) o->max_redirects = (int)parse_count(VALUE(), a);
        else if (!strcmp(a, "--user-agent")) o->user_agent = VALUE();
        else if (!strcmp(a, "--user")) o->user = VALUE();
        else if (!strcmp(a, "--no-decompress")) o->no_decompress = 1;
        else if (!strcmp(a, "--insecure")) o->insecure = 1;
        else if (!strcmp(a, "--cacert")) o->cacert = VALUE();
        else if (!strcmp(a, "--max-body-size")) o->max_body_size = parse_count(VALUE(), a);
        else if (!strcmp(a, "--max-header-size")) o->max_header_size = parse_count(VALUE(), a);
        else if (!strcmp(a, "--allow-nonstandard-methods")) o->allow_nonstandard = 1;
        else if (!strcmp(a, "--stream")) o->stream = 1;
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--http1.1")) o->http_version = TORNADO_HTTP_VERSION_1_1;
        else if (!strcmp(a, "--http2")) o->http_version = TORNADO_HTTP_VERSION_2;
        else if (!strcmp(a, "--http2-prior-knowledge")) o->http_version = TORNADO_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
        else if (!strcmp(a, "-n")) o->n = (long)parse_count(VALUE(), a);
        else if (!strcmp(a, "-c")) o->c = (long)parse_count(VALUE(), a);
        else if (!strcmp(a, "-I") || !strcmp(a, "--head")) o->head = 1;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->output = VALUE();
        else if (!strcmp(a, "-s") || !strcmp(a, "--silent")) o->silent = 1;
        else if (!strcmp(a, "-w") || !strcmp(a, "--write-out")) o->write_out = VALUE();
        else if (!strcmp(a, "--compressed")) o->compressed = 1;
        else if (!strcmp(a, "--digest")) o->digest = 1;
        else if (!strcmp(a, "--proxy") || !strcmp(a, "-x")) o->proxy = VALUE();
        else if (!strcmp(a, "--proxy-user") || !strcmp(a, "-U")) o->proxy_user = VALUE();
        else if (!strcmp(a, "--proxy-cacert")) o->proxy_cacert = VALUE();
        else if (!strcmp(a, "--proxy-insecure")) o->proxy_insecure = 1;
        else if (!strcmp(a, "--cert") || !strcmp(a, "-E")) o->cert = VALUE();
        else if (!strcmp(a, "--key")) o->key = VALUE();
        else if (!strcmp(a, "--unix-socket")) o->unix_socket = VALUE();
        else if (!strcmp(a, "--cookie") || !strcmp(a, "-b")) o->cookie_in = VALUE();
        else if (!strcmp(a, "--cookie-jar")) o->cookie_jar = VALUE();
        else if (!strcmp(a, "--resolve")) {
            if (o->nresolve == 16) usage("too many --resolve options");
            o->resolve[o->nresolve++] = VALUE();
        }
        else if (a[0] == '-' && a[1]) usage("unknown option");
        else if (o->url) usage("more than one URL");
        else o->url = a;
#undef VALUE
    }
    if (!o->url) usage("no URL");
    if ((o->n || o->c) && (o->n < 1 || o->c < 1)) usage("-n and -c need each other, both >= 1");
    if (o->key && !o->cert) usage("--key needs --cert");
    if (o->digest && !o->user) usage("--digest needs --user");
    if (o->compressed && o->no_decompress) usage("--compressed and --no-decompress contradict each other");
    if (o->head && o->has_body) usage("-I sends no body");
    if (o->head) o->method = "HEAD";
}

/* ---- building the request and the client ---- */

static void check(tornado_code rc, const char *what) {
    if (rc != TORNADO_OK) {
        const char *e = tornado_last_error();
        fprintf(stderr, "tornado-fetch: %s: %s\n", what, e ? e : tornado_code_name(rc));
        exit(2);
    }
}

typedef struct {
    buf_t body;
    long chunks;
    /* -o FILE (or a progress meter): chunks go to `out` as they come
     * instead of into `body`. */
    FILE *out;
    int write_failed;
    unsigned long long received, expected; /* expected: Content-Length, 0 if unknown */
    int meter;                             /* a progress meter on stderr */
    double started, last_meter;
} stream_state_t;

static double now_s(void);

static void show_meter(stream_state_t *s, int last) {
    double now = now_s();
    if (!last && now - s->last_meter < 0.2) return;
    s->last_meter = now;
    double elapsed = now - s->started;
    double rate = elapsed > 0 ? (double)s->received / elapsed : 0;
    if (s->expected)
        fprintf(stderr, "\r%3d%% %12llu of %llu bytes  %10.0f B/s  %6.1f s",
                (int)(100.0 * (double)s->received / (double)s->expected), s->received, s->expected, rate, elapsed);
    else
        fprintf(stderr, "\r     %12llu bytes  %10.0f B/s  %6.1f s", s->received, rate, elapsed);
    if (last) fputc('\n', stderr);
    fflush(stderr);
}

static void on_chunk(const uint8_t *data, size_t len, void *ud) {
    stream_state_t *s = ud;
    s->chunks++;
    s->received += len;
    if (s->out) {
        if (!s->write_failed && fwrite(data, 1, len, s->out) != len) s->write_failed = errno ? errno : EIO;
    } else {
        buf_add(&s->body, data, len);
    }
    if (s->meter) show_meter(s, 0);
}

/* The final response's Content-Length, for the meter's percentage. */
static void on_header_line(const char *line, size_t len, void *ud) {
    stream_state_t *s = ud;
    static const char name[] = "content-length:";
    if (len > sizeof name - 1 && !strncasecmp(line, name, sizeof name - 1))
        s->expected = strtoull(line + sizeof name - 1, NULL, 10);
    else if (len > 5 && !strncmp(line, "HTTP/", 5))
        s->expected = 0; /* a new response (after a redirect or 1xx) */
}

/* Copies "USER[:PASS]" into user (NUL-terminated) and returns PASS ("" if
 * none). */
static const char *split_user(const char *text, char *user, size_t cap, const char *option) {
    const char *colon = strchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : strlen(text);
    if (n >= cap) {
        fprintf(stderr, "tornado-fetch: %s is too long\n", option);
        exit(2);
    }
    memcpy(user, text, n);
    user[n] = '\0';
    return colon ? colon + 1 : "";
}

static tornado_http_request *build_request(const options_t *o, stream_state_t *streamed) {
    tornado_http_request *r = tornado_http_request_new(o->url);
    if (!r) check(TORNADO_ERR_INVALID, "the URL");
    check(tornado_http_request_set_method(r, o->method), "-X");
    for (int i = 0; i < o->nheaders; i++) {
        char name[256];
        const char *colon = strchr(o->headers[i], ':');
        size_t n = colon ? (size_t)(colon - o->headers[i]) : 0;
        if (!colon || n == 0 || n >= sizeof name) usage("-H needs 'Name: value'");
        memcpy(name, o->headers[i], n);
        name[n] = '\0';
        const char *value = colon + 1;
        while (*value == ' ' || *value == '\t') value++;
        check(tornado_http_request_add_header(r, name, value), "-H");
    }
    if (o->has_body) check(tornado_http_request_set_body(r, o->body.data, o->body.len), "the body");
    if (o->connect_timeout >= 0) check(tornado_http_request_set_connect_timeout(r, o->connect_timeout), "--connect-timeout");
    if (o->request_timeout >= 0) check(tornado_http_request_set_request_timeout(r, o->request_timeout), "--request-timeout");
    if (o->no_follow) check(tornado_http_request_set_follow_redirects(r, false), "--no-follow");
    if (o->max_redirects >= 0) check(tornado_http_request_set_max_redirects(r, o->max_redirects), "--max-redirects");
    if (o->user_agent) check(tornado_http_request_set_user_agent(r, o->user_agent), "--user-agent");
    if (o->user) {
        char user[512];
        const char *password = split_user(o->user, user, sizeof user, "--user");
        check(tornado_http_request_set_auth(r, user, password), "--user");
        if (o->digest) check(tornado_http_request_set_auth_mode(r, "digest"), "--digest");
    }
    if (o->proxy) {
        /* The URL goes to the library whole (socks5h://host:port and the
         * like); a bare host is an HTTP proxy. */
        char user[512];
        const char *password = o->proxy_user ? split_user(o->proxy_user, user, sizeof user, "--proxy-user") : NULL;
        check(tornado_http_request_set_proxy(r, o->proxy, 0, o->proxy_user ? user : NULL, password), "--proxy");
        if (o->proxy_cacert) check(tornado_http_request_set_proxy_ca_certs(r, o->proxy_cacert), "--proxy-cacert");
        if (o->proxy_insecure) check(tornado_http_request_set_proxy_validate_cert(r, false), "--proxy-insecure");
    } else if (o->proxy_user || o->proxy_cacert || o->proxy_insecure) {
        usage("--proxy-user, --proxy-cacert and --proxy-insecure need --proxy");
    }
    if (o->cert) check(tornado_http_request_set_client_cert(r, o->cert, o->key), "--cert");
    if (o->unix_socket) check(tornado_http_request_set_unix_socket(r, o->unix_socket), "--unix-socket");
    if (o->no_decompress) check(tornado_http_request_set_decompress_response(r, false), "--no-decompress");
    if (o->insecure) check(tornado_http_request_set_validate_cert(r, false), "--insecure");
    if (o->cacert) check(tornado_http_request_set_ca_certs(r, o->cacert), "--cacert");
    if (o->allow_nonstandard) check(tornado_http_request_set_allow_nonstandard_methods(r, true), "--allow-nonstandard-methods");
    if (streamed) check(tornado_http_request_set_streaming_callback(r, on_chunk, streamed, NULL), "--stream");
    if (o->http_version >= 0)
        check(tornado_http_request_set_http_version(r, (uint32_t)o->http_version), "--http1.1/--http2");
    if (streamed && streamed->meter) check(tornado_http_request_set_header_callback(r, on_header_line, streamed, NULL), "the meter");
    return r;
}

static tornado_http_client *build_client(tornado_loop *loop, const options_t *o, long concurrency) {
    tornado_http_client_options *co = tornado_http_client_options_new();
    if (concurrency > 0) {
        check(tornado_http_client_options_set_max_clients(co, (size_t)concurrency), "-c");
        check(tornado_http_client_options_set_max_idle_per_host(co, (size_t)concurrency), "-c");
    }
    if (o->max_body_size) check(tornado_http_client_options_set_max_body_size(co, o->max_body_size), "--max-body-size");
    if (o->max_header_size) check(tornado_http_client_options_set_max_header_size(co, (size_t)o->max_header_size), "--max-header-size");
    for (int i = 0; i < o->nresolve; i++) {
        /* HOST:PORT:ADDR, ADDR possibly an IPv6 literal with colons (and
         * brackets, as curl allows). */
        char host[256];
        const char *spec = o->resolve[i];
        const char *c1 = strchr(spec, ':');
        const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        size_t n = c1 ? (size_t)(c1 - spec) : 0;
        if (!c2 || n == 0 || n >= sizeof host) usage("--resolve needs HOST:PORT:ADDR");
        memcpy(host, spec, n);
        host[n] = '\0';
        char port_text[8];
        size_t pn = (size_t)(c2 - c1 - 1);
        if (pn == 0 || pn >= sizeof port_text) usage("--resolve needs HOST:PORT:ADDR");
        memcpy(port_text, c1 + 1, pn);
        port_text[pn] = '\0';
        unsigned long long port = parse_count(port_text, "--resolve");
        if (port == 0 || port > 65535) usage("--resolve needs a port from 1 to 65535");
        char addr[64];
        const char *a = c2 + 1;
        size_t an = strlen(a);
        if (an >= 2 && a[0] == '[' && a[an - 1] == ']') a++, an -= 2;
        if (an == 0 || an >= sizeof addr) usage("--resolve needs HOST:PORT:ADDR");
        memcpy(addr, a, an);
        addr[an] = '\0';
        check(tornado_http_client_options_add_endpoint_mapping(co, host, (uint16_t)port, addr, (uint16_t)port), "--resolve");
    }
    if (o->cookie_in || o->cookie_jar) check(tornado_http_client_options_set_cookies(co, true), "--cookie");
    tornado_http_client *client = tornado_http_client_new(loop, co);
    tornado_http_client_options_free(co);
    if (!client) check(TORNADO_ERR_INVALID, "the client");
    /* curl reads a --cookie file that does not exist as no cookies. */
    if (o->cookie_in && access(o->cookie_in, F_OK) == 0)
        check(tornado_http_client_load_cookies(client, o->cookie_in), "--cookie");
    return client;
}

/* ---- one fetch ---- */

typedef struct {
    tornado_loop *loop;
    const options_t *o;
    stream_state_t *streamed;
    int exit_status;
} single_t;

static void print_json(const tornado_http_response *r, const stream_state_t *streamed) {
    const char *error = tornado_http_response_error(r);
    printf("{\"code\":%d,\"reason\":", tornado_http_response_code(r));
    print_json_string(tornado_http_response_reason(r));
    printf(",\"headers\":[");
    size_t count = tornado_http_response_header_count(r);
    for (size_t i = 0; i < count; i++) {
        const char *name = "", *value = "";
        tornado_http_response_header_at(r, i, &name, &value);
        printf(i ? ",[" : "[");
        print_json_string(name);
        putchar(',');
        print_json_string(value);
        putchar(']');
    }
    printf("],\"body_b64\":\"");
    size_t len = 0;
    const uint8_t *body = tornado_http_response_body(r, &len);
    if (streamed) print_base64(streamed->body.data, streamed->body.len);
    else print_base64(body, len);
    printf("\",\"effective_url\":");
    print_json_string(tornado_http_response_effective_url(r));
    printf(",\"error\":");
    if (error) print_json_string(error);
    else printf("null");
    printf(",\"request_time\":%.6f", tornado_http_response_request_time(r));
    int version = tornado_http_response_version(r);
    printf(",\"http_version\":");
    if (version == 10) printf("\"1.0\"");
    else if (version == 11) printf("\"1.1\"");
    else if (version == 20) printf("\"2\"");
    else printf("null");
    if (streamed) printf(",\"chunks\":%ld", streamed->chunks);
    printf("}\n");
}

/* -w FORMAT, as curl's --write-out: %{name} variables from the response,
 * its time_info (seconds) and the request; \n, \r, \t and \\ escapes, %%
 * for a percent; %{header{Name}} a response header; %{json} every
 * variable as one JSON object; %{stderr} / %{stdout} switch where the rest
 * goes. A variable curl has that tornado-fetch does not know (remote_ip,
 * num_redirects, ...) and an unknown one print nothing and a warning on
 * stderr, as curl does for unknown ones. */
typedef struct {
    const options_t *o;
    const tornado_http_response *r;
    tornado_http_time_info t;
    unsigned long long size;
    int exitcode;
} write_out_t;

static void json_string_to(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20) fprintf(out, "\\u%04x", *p);
            else fputc(*p, out);
        }
    }
    fputc('"', out);
}

/* The bytes of the head as -I prints it: status line ("HTTP/2 200" or
 * "HTTP/1.1 200 OK"), header lines, blank line. */
static unsigned long long head_size(const tornado_http_response *r) {
    size_t block = 0;
    if (!tornado_http_response_header_block(r, &block) || tornado_http_response_code(r) == 599) return 0;
    if (tornado_http_response_version(r) == 20) return strlen("HTTP/2 000\r\n") + block + 2;
    const char *reason = tornado_http_response_reason(r);
    return strlen("HTTP/1.1 000 \r\n") + strlen(reason ? reason : "") + block + 2;
}

static const char *version_text(const tornado_http_response *r) {
    int version = tornado_http_response_version(r);
    return version == 10 ? "1.0" : version == 11 ? "1.1" : version == 20 ? "2" : "0";
}

/* The variables that are numbers (printed bare in %{json}), then strings. */
static const char *const WO_NUMBERS[] = {"http_code", "response_code", "time_queue", "time_namelookup",
    "time_connect", "time_appconnect", "time_pretransfer", "time_starttransfer", "time_total",
    "size_download", "size_header", "speed_download", "num_headers", "exitcode", NULL};
static const char *const WO_STRINGS[] = {"http_version", "url", "url_effective", "content_type", "scheme",
    "method", "errormsg", "filename_effective", NULL};

/* A string variable's text (NULL: it has none, as a response without a
 * Content-Type); `*known` 0 when `name` is no string variable. */
static const char *string_variable(const char *name, const write_out_t *w, int *known) {
    const tornado_http_response *r = w->r;
    *known = 1;
    if (!strcmp(name, "http_version")) return version_text(r);
    if (!strcmp(name, "url")) return w->o->url;
    if (!strcmp(name, "url_effective")) return tornado_http_response_effective_url(r);
    if (!strcmp(name, "content_type")) return tornado_http_response_header(r, "Content-Type");
    if (!strcmp(name, "scheme")) {
        const char *url = tornado_http_response_effective_url(r);
        return url && !strncmp(url, "https:", 6) ? "https" : url && !strncmp(url, "http:", 5) ? "http" : NULL;
    }
    if (!strcmp(name, "method")) return w->o->method;
    if (!strcmp(name, "errormsg")) return tornado_http_response_error(r);
    if (!strcmp(name, "filename_effective")) return w->o->output;
    *known = 0;
    return NULL;
}

/* Writes number variable `name` to `out` (`json`: as a JSON number); 0
 * when it is no number variable. */
static int number_variable(FILE *out, const char *name, const write_out_t *w, int json) {
    const tornado_http_response *r = w->r;
    const tornado_http_time_info *t = &w->t;
    if (!strcmp(name, "http_code") || !strcmp(name, "response_code")) {
        int code = tornado_http_response_code(r);
        /* curl's 000 when no response came; a JSON number has no leading zeros. */
        fprintf(out, json ? "%d" : "%03d", code == 599 ? 0 : code);
    } else if (!strcmp(name, "time_queue")) fprintf(out, "%.6f", t->queue);
    else if (!strcmp(name, "time_namelookup")) fprintf(out, "%.6f", t->namelookup);
    else if (!strcmp(name, "time_connect")) fprintf(out, "%.6f", t->connect);
    else if (!strcmp(name, "time_appconnect")) fprintf(out, "%.6f", t->appconnect);
    else if (!strcmp(name, "time_pretransfer")) fprintf(out, "%.6f", t->pretransfer);
    else if (!strcmp(name, "time_starttransfer")) fprintf(out, "%.6f", t->starttransfer);
    else if (!strcmp(name, "time_total")) fprintf(out, "%.6f", t->total);
    else if (!strcmp(name, "size_download")) fprintf(out, "%llu", w->size);
    else if (!strcmp(name, "size_header")) fprintf(out, "%llu", head_size(r));
    else if (!strcmp(name, "speed_download"))
        fprintf(out, "%llu", t->total > 0 ? (unsigned long long)((double)w->size / t->total) : 0ULL);
    else if (!strcmp(name, "num_headers")) fprintf(out, "%zu", tornado_http_response_header_count(r));
    else if (!strcmp(name, "exitcode")) fprintf(out, "%d", w->exitcode);
    else return 0;
    return 1;
}

static void write_json(FILE *out, const write_out_t *w) {
    fputc('{', out);
    for (int i = 0; WO_NUMBERS[i]; i++) {
        fprintf(out, "%s\"%s\":", i ? "," : "", WO_NUMBERS[i]);
        number_variable(out, WO_NUMBERS[i], w, 1);
    }
    for (int i = 0; WO_STRINGS[i]; i++) {
        int known;
        const char *text = string_variable(WO_STRINGS[i], w, &known);
        fprintf(out, ",\"%s\":", WO_STRINGS[i]);
        if (text) json_string_to(out, text);
        else fputs("null", out);
    }
    fputc('}', out);
}

static void write_out(const char *format, const write_out_t *w) {
    FILE *out = stdout;
    for (const char *p = format; *p; p++) {
        if (p[0] == '\\' && p[1]) {
            p++;
            switch (*p) {
            case 'n': fputc('\n', out); break;
            case 't': fputc('\t', out); break;
            case 'r': fputc('\r', out); break;
            case '\\': fputc('\\', out); break;
            default: fputc('\\', out); fputc(*p, out); /* as curl: kept */
            }
            continue;
        }
        if (p[0] == '%' && p[1] == '%') {
            fputc('%', out);
            p++;
            continue;
        }
        if (p[0] == '%' && !strncmp(p + 1, "{header{", 8)) {
            /* %{header{Name}}: the response header's value (the first). */
            const char *name_start = p + 9;
            const char *name_end = strchr(name_start, '}');
            if (name_end && name_end[1] == '}') {
                char name[256];
                size_t n = (size_t)(name_end - name_start);
                if (n >= sizeof name) n = sizeof name - 1;
                memcpy(name, name_start, n);
                name[n] = '\0';
                const char *value = tornado_http_response_header(w->r, name);
                if (value) fputs(value, out);
                p = name_end + 1;
                continue;
            }
        }
        const char *end = p[0] == '%' && p[1] == '{' ? strchr(p, '}') : NULL;
        if (!end) {
            fputc(*p, out);
            continue;
        }
        char name[64];
        size_t n = (size_t)(end - p - 2);
        if (n >= sizeof name) n = sizeof name - 1;
        memcpy(name, p + 2, n);
        name[n] = '\0';
        p = end;
        if (!strcmp(name, "stdout")) out = stdout;
        else if (!strcmp(name, "stderr")) out = stderr;
        else if (!strcmp(name, "json")) write_json(out, w);
        else if (!number_variable(out, name, w, 0)) {
            int known;
            const char *text = string_variable(name, w, &known);
            if (text) fputs(text, out);
            if (!known) fprintf(stderr, "tornado-fetch: -w: unknown --write-out variable: '%s'\n", name);
        }
    }
    fflush(stderr);
}

/* -I: the status line and headers, as curl prints them. */
static void print_head(const tornado_http_response *r) {
    /* The version the response came over: curl prints "HTTP/2 200" (no
     * reason phrase in HTTP/2), "HTTP/1.1 200 OK", "HTTP/1.0 200 OK". */
    int version = tornado_http_response_version(r);
    if (version == 20)
        printf("HTTP/2 %d\r\n", tornado_http_response_code(r));
    else
        printf("HTTP/1.%d %d %s\r\n", version == 10 ? 0 : 1, tornado_http_response_code(r),
               tornado_http_response_reason(r));
    size_t len = 0;
    const uint8_t *block = tornado_http_response_header_block(r, &len);
    if (block) fwrite(block, 1, len, stdout);
    fputs("\r\n", stdout);
}

static void on_single(const tornado_http_response *r, void *ud) {
    single_t *s = ud;
    const char *error = tornado_http_response_error(r);
    unsigned long long size = 0;
    if (s->streamed && s->streamed->meter) show_meter(s->streamed, 1);
    if (s->o->json) {
        print_json(r, s->streamed);
    } else {
        size_t len = 0;
        const uint8_t *body = tornado_http_response_body(r, &len);
        if (s->o->head && !error) print_head(r);
        if (s->streamed) {
            size = s->streamed->received;
            if (!s->streamed->out) fwrite(s->streamed->body.data, 1, s->streamed->body.len, stdout);
        } else {
            size = len;
            fwrite(body, 1, len, stdout);
        }
        if (error) fprintf(stderr, "tornado-fetch: %s\n", error);
    }
    s->exit_status = error ? 1 : 0;
    if (s->streamed && s->streamed->write_failed) {
        fprintf(stderr, "tornado-fetch: cannot write %s: %s\n", s->o->output, strerror(s->streamed->write_failed));
        s->exit_status = 1;
    }
    if (s->o->write_out) {
        write_out_t w;
        memset(&w, 0, sizeof w);
        w.o = s->o;
        w.r = r;
        w.size = size;
        w.exitcode = s->exit_status;
        tornado_http_response_time_info(r, &w.t);
        write_out(s->o->write_out, &w);
    }
    fflush(stdout);
    tornado_loop_stop(s->loop);
}

static int fetch_once(tornado_loop *loop, const options_t *o) {
    stream_state_t streamed;
    memset(&streamed, 0, sizeof streamed);
    /* A progress meter for downloads, as curl's: when stderr is a terminal
     * and the body does not go to it (-o, or stdout elsewhere). */
    streamed.meter = !o->silent && !o->json && !o->head && isatty(2) && (o->output || !isatty(1));
    if (o->output) {
        streamed.out = fopen(o->output, "wb");
        if (!streamed.out) {
            fprintf(stderr, "tornado-fetch: cannot write %s: %s\n", o->output, strerror(errno));
            exit(2);
        }
    }
    streamed.started = now_s();
    int streaming = o->stream || o->output || streamed.meter;
    single_t s = {loop, o, streaming ? &streamed : NULL, 1};
    tornado_http_client *client = build_client(loop, o, 0);
    tornado_http_request *r = build_request(o, s.streamed);
    check(tornado_http_client_fetch_cb(client, r, on_single, &s), "fetch");
    tornado_http_request_free(r);
    check(tornado_loop_start(loop), "the loop");
    if (o->cookie_jar) {
        tornado_code rc = tornado_http_client_save_cookies(client, o->cookie_jar);
        if (rc != TORNADO_OK) {
            fprintf(stderr, "tornado-fetch: --cookie-jar: %s\n", tornado_last_error());
            s.exit_status = 1;
        }
    }
    tornado_http_client_free(client);
    if (streamed.out && fclose(streamed.out) != 0 && !streamed.write_failed) {
        fprintf(stderr, "tornado-fetch: cannot write %s: %s\n", o->output, strerror(errno));
        s.exit_status = 1;
    }
    free(streamed.body.data);
    return s.exit_status;
}

/* ---- -n N -c C: a small load ---- */

typedef struct {
    tornado_loop *loop;
    tornado_http_client *client;
    tornado_http_request *request;
    long n, started, done, ok, errors;
} load_t;

static void on_load(const tornado_http_response *r, void *ud);

static void start_next(load_t *l) {
    l->started++;
    check(tornado_http_client_fetch_cb(l->client, l->request, on_load, l), "fetch");
}

static void on_load(const tornado_http_response *r, void *ud) {
    load_t *l = ud;
    if (tornado_http_response_error(r)) {
        if (l->errors++ == 0) fprintf(stderr, "tornado-fetch: first error: %s\n", tornado_http_response_error(r));
    } else {
        l->ok++;
    }
    l->done++;
    if (l->started < l->n) start_next(l);
    else if (l->done == l->n) tornado_loop_stop(l->loop);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fetch_load(tornado_loop *loop, const options_t *o) {
    load_t l = {loop, build_client(loop, o, o->c), NULL, o->n, 0, 0, 0, 0};
    l.request = build_request(o, NULL);
    double start = now_s();
    for (long i = 0; i < o->c && i < o->n; i++) start_next(&l);
    check(tornado_loop_start(loop), "the loop");
    double wall = now_s() - start;
    printf("{\"n\":%ld,\"ok\":%ld,\"errors\":%ld,\"wall_s\":%.6f,\"req_per_s\":%.1f,\"connections\":%llu}\n", l.n,
           l.ok, l.errors, wall, wall > 0 ? (double)l.n / wall : 0.0,
           (unsigned long long)tornado_http_client_connections_opened(l.client));
    tornado_http_request_free(l.request);
    tornado_http_client_free(l.client);
    return l.errors ? 1 : 0;
}

int main(int argc, char **argv) {
    options_t o;
    parse_args(argc, argv, &o);
    tornado_loop *loop = tornado_loop_new();
    if (!loop) check(TORNADO_ERR_INVALID, "the loop");
    int status = o.n ? fetch_load(loop, &o) : fetch_once(loop, &o);
    tornado_loop_free(loop);
    free(o.body.data);
    return status;
}
