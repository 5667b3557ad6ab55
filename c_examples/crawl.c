/* crawl.c: the classic Tornado web-spider demo in C.
 *
 *   crawl URL [--concurrency N] [--max-pages M]
 *
 * A coroutine fetches the start page, collects the links it finds on the
 * same origin, and fetches them in rounds of at most N at a time until no
 * new page is left (or M pages were seen). Each round starts N fetches in
 * the callback form and yields one future that the last callback completes:
 * the usual way to bring callbacks into a coroutine.
 *
 * Prints "STATUS URL" per page and "crawled N pages, E errors"; exits 0
 * when every page was fetched without a fetch error. */
#include <string.h>

#include "example_util.h"

#define MAX_URL 1024

typedef struct {
    tornado_loop *loop;
    tornado_http_client *client;
    char origin[MAX_URL]; /* scheme://host[:port] of the start URL */
    char **urls;          /* every URL seen, in discovery order */
    size_t nurls, cap, next; /* urls[next..] still to fetch */
    size_t max_pages, concurrency;
    size_t pending, errors;
    tornado_future *round_done; /* our reference: the last callback of a round completes it */
} crawler;

static void add_url(crawler *c, const char *url, size_t len) {
    if (len >= MAX_URL || c->nurls >= c->max_pages) return;
    for (size_t i = 0; i < c->nurls; i++)
        if (strlen(c->urls[i]) == len && memcmp(c->urls[i], url, len) == 0) return;
    if (c->nurls == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->urls = realloc(c->urls, c->cap * sizeof *c->urls);
        CHECK(c->urls != NULL, "out of memory");
    }
    char *copy = malloc(len + 1);
    CHECK(copy != NULL, "out of memory");
    memcpy(copy, url, len);
    copy[len] = '\0';
    c->urls[c->nurls++] = copy;
}

/* Adds each href="..." of the page that stays on the crawl's origin. */
static void collect_links(crawler *c, const char *page, size_t len) {
    const char *end = page + len;
    for (const char *p = page; p + 6 < end; p++) {
        if (memcmp(p, "href=\"", 6) != 0) continue;
        const char *start = p + 6, *q = start;
        while (q < end && *q != '"' && *q != '#') q++;
        char url[MAX_URL];
        size_t n = (size_t)(q - start), olen = strlen(c->origin);
        if (n > 0 && start[0] == '/' && olen + n < sizeof url) { /* a path on this origin */
            memcpy(url, c->origin, olen);
            memcpy(url + olen, start, n);
            add_url(c, url, olen + n);
        } else if (n >= olen && memcmp(start, c->origin, olen) == 0 && (n == olen || start[olen] == '/')) {
            add_url(c, start, n);
        }
        p = q;
    }
}

/* One page fetched (callback form: called exactly once per fetch). */
static void on_page(const tornado_http_response *r, void *ud) {
    crawler *c = ud;
    const char *error = tornado_http_response_error(r);
    printf("%d %s%s%s\n", tornado_http_response_code(r), tornado_http_response_effective_url(r), error ? " " : "",
           error ? error : "");
    if (error) {
        c->errors++;
    } else {
        size_t len = 0;
        const uint8_t *body = tornado_http_response_body(r, &len);
        collect_links(c, (const char *)body, len);
    }
    if (--c->pending == 0) { /* the round is over: resume the coroutine */
        CHECK_OK(tornado_future_set_result(c->round_done, NULL, NULL));
        tornado_future_unref(c->round_done);
        c->round_done = NULL;
    }
}

/* The crawl coroutine: each step starts a round and yields its future. */
static tornado_future *crawl_step(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    crawler *c = ud;
    (void)resumed; /* a round's future carries no value */
    if (c->next == c->nurls) {
        CHECK_OK(tornado_coroutine_return(co, NULL, NULL));
        return NULL;
    }
    tornado_future *round = tornado_future_new(c->loop);
    CHECK(round != NULL, "tornado_future_new");
    c->round_done = tornado_future_ref(round);
    for (size_t i = 0; i < c->concurrency && c->next < c->nurls; i++) {
        tornado_http_request *r = tornado_http_request_new(c->urls[c->next++]);
        CHECK(r != NULL, "tornado_http_request_new");
        CHECK_OK(tornado_http_request_set_request_timeout(r, 10));
        CHECK_OK(tornado_http_client_fetch_cb(c->client, r, on_page, c));
        tornado_http_request_free(r); /* the fetch took a copy */
        c->pending++;
    }
    return round; /* "yield": the runner takes this reference */
}

int main(int argc, char **argv) {
    crawler c = {0};
    c.concurrency = 4;
    c.max_pages = 100;
    const char *start = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--concurrency") && i + 1 < argc) c.concurrency = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--max-pages") && i + 1 < argc) c.max_pages = (size_t)atol(argv[++i]);
        else if (!start && argv[i][0] != '-') start = argv[i];
        else start = NULL, i = argc;
    }
    if (!start || c.concurrency == 0 || c.max_pages == 0) {
        fprintf(stderr, "usage: crawl URL [--concurrency N] [--max-pages M]\n");
        return 2;
    }
    /* The origin is everything before the first '/' after "://". */
    const char *host = strstr(start, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    size_t olen = path ? (size_t)(path - start) : strlen(start);
    CHECK(host && olen < sizeof c.origin, "not an absolute URL: %s", start);
    memcpy(c.origin, start, olen);
    add_url(&c, start, strlen(start));

    c.loop = tornado_loop_new();
    CHECK(c.loop != NULL, "tornado_loop_new");
    tornado_http_client_options *o = tornado_http_client_options_new();
    CHECK_OK(tornado_http_client_options_set_max_clients(o, c.concurrency));
    c.client = tornado_http_client_new(c.loop, o);
    tornado_http_client_options_free(o);
    CHECK(c.client != NULL, "tornado_http_client_new");

    tornado_future *done = tornado_coroutine_spawn(c.loop, crawl_step, &c, NULL);
    CHECK(done != NULL, "tornado_coroutine_spawn");
    CHECK_OK(tornado_loop_run_sync(c.loop, done, 60));
    tornado_future_unref(done);
    printf("crawled %zu pages, %zu errors\n", c.nurls, c.errors);

    CHECK_OK(tornado_http_client_free(c.client));
    CHECK_OK(tornado_loop_free(c.loop));
    for (size_t i = 0; i < c.nurls; i++) free(c.urls[i]);
    free(c.urls);
    return c.errors ? 1 : 0;
}
