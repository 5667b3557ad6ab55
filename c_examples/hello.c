/* hello.c: a timer, a coroutine and an HTTP fetch on one loop. The loop also
 * serves the page it fetches (a one-line HTTP server on 127.0.0.1). */
#include <stdio.h>
#include <string.h>
#include <tornado_rs.h>

static const char PAGE[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nhello, world\n";
static void close_stream(tornado_future *sent, void *s) { (void)sent; tornado_iostream_unref(s); }
static void serve(tornado_iostream *s, const char *peer, void *ud) { /* answer each connection once */
    (void)peer, (void)ud;
    tornado_future *sent = tornado_iostream_write(s, (const uint8_t *)PAGE, strlen(PAGE));
    tornado_future_add_done_callback(sent, close_stream, s);
    tornado_future_unref(sent);
}
static void tick(void *fired) { printf("timer fired\n"); *(int *)fired = 1; }

typedef struct { tornado_loop *loop; tornado_http_client *http; char url[64]; } app;

static tornado_future *hello(tornado_coroutine *co, tornado_future *resumed, void *ud) {
    app *a = ud;
    if (resumed == NULL) return tornado_sleep(a->loop, 0.1);     /* yield gen.sleep(0.1) */
    const char *error = NULL;
    if (tornado_future_error(resumed, &error) != TORNADO_OK) {   /* the fetch failed: raise */
        tornado_coroutine_raise(co, tornado_future_error(resumed, NULL), error);
        return NULL;
    }
    const tornado_http_response *r = tornado_future_result(resumed);
    if (r == NULL) {                                             /* back from the sleep: fetch */
        tornado_http_request *req = tornado_http_request_new(a->url);
        tornado_future *f = tornado_http_client_fetch(a->http, req); /* yield http.fetch(url) */
        tornado_http_request_free(req);
        return f;
    }
    size_t n = 0;
    const uint8_t *body = tornado_http_response_body(r, &n);
    printf("fetched %s: %d %.*s", a->url, tornado_http_response_code(r), (int)n, (const char *)body);
    tornado_coroutine_return(co, "hello from a coroutine", NULL);
    return NULL;
}

int main(void) {
    int fired = 0;
    app a = {tornado_loop_new(), NULL, ""};
    tornado_tcp_server *server = tornado_tcp_server_new(a.loop, "127.0.0.1", 0, 0, serve, NULL, NULL);
    snprintf(a.url, sizeof a.url, "http://127.0.0.1:%u/", tornado_tcp_server_port(server));
    a.http = tornado_http_client_new(a.loop, NULL);
    tornado_loop_call_later(a.loop, 0.05, tick, &fired);
    tornado_future *f = tornado_coroutine_spawn(a.loop, hello, &a, NULL);
    tornado_code rc = tornado_loop_run_sync(a.loop, f, 5.0); /* 5 s: never hang */
    const char *result = tornado_future_result(f);
    printf("run_sync: %s, result: %s\n", tornado_code_name(rc), result ? result : "(none)");
    int ok = rc == TORNADO_OK && result != NULL && fired;
    tornado_future_unref(f);
    tornado_http_client_free(a.http);
    tornado_tcp_server_free(server);
    tornado_loop_free(a.loop);
    return ok ? 0 : 1;
}
