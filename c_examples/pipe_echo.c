/* pipe_echo.c: fd handlers on a socketpair.
 *
 * The "client" end writes MESSAGES messages (about 600 KB in all: more than
 * the socket buffers hold, so writes block and WRITE events matter) and reads
 * the echo back, slowly (4 KiB per READ event); the "server" end echoes
 * everything it reads. Both sides use
 * tornado_loop_update_handler to watch WRITE only while they have bytes
 * waiting to go out (a level-triggered loop would otherwise call them
 * forever). When the client has sent everything it shuts down its write side;
 * the server echoes what is left, sees EOF and shuts down its own; the client
 * sees EOF and checks that every byte came back in order. Both handlers are
 * then removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "example_util.h"

#define MESSAGES 300
#define ECHO_CAP 65536 /* the server's echo buffer: when full it stops reading */

static tornado_loop *loop;

/* ---- client ---- */
typedef struct {
    int fd;
    unsigned char *out; /* everything the client sends */
    size_t out_len, sent;
    size_t received; /* bytes echoed back and verified so far */
    int shut_wr, got_eof;
    uint32_t events; /* what it is registered for now */
    long read_calls, write_calls, updates;
} client_t;

/* ---- server ---- */
typedef struct {
    int fd;
    unsigned char buf[ECHO_CAP];
    size_t start, len; /* pending echo bytes: buf[start .. start+len) */
    int got_eof, shut_wr;
    uint32_t events;
    long read_calls, write_calls, updates;
    size_t echoed;
} server_t;

static void set_events(int fd, uint32_t *cur, uint32_t want, long *updates) {
    if (*cur == want) return;
    CHECK_OK(tornado_loop_update_handler(loop, fd, want));
    *cur = want;
    (*updates)++;
}

static void finish(void);

/* TORNADO_ERROR carries EPOLLHUP too: once both directions of a socket are
 * shut down, the kernel reports a hang-up with the last readable bytes. That
 * is not a failure: read until EOF. A real socket error is. */
static uint32_t check_hangup(int fd, const char *who) {
    int err = 0;
    socklen_t len = sizeof err;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0, "getsockopt: %s", strerror(errno));
    CHECK(err == 0, "%s: socket error: %s", who, strerror(err));
    return TORNADO_READ;
}

static void client_cb(int fd, uint32_t events, void *ud) {
    client_t *c = ud;
    CHECK(fd == c->fd, "client handler called for fd %d", fd);
    if (events & TORNADO_ERROR) events |= check_hangup(fd, "client");
    if (events & TORNADO_WRITE) {
        c->write_calls++;
        while (c->sent < c->out_len) {
            ssize_t w = write(fd, c->out + c->sent, c->out_len - c->sent);
            if (w < 0) {
                CHECK(errno == EAGAIN || errno == EINTR, "client write: %s", strerror(errno));
                break;
            }
            c->sent += (size_t)w;
        }
        if (c->sent == c->out_len && !c->shut_wr) {
            CHECK(shutdown(fd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
            c->shut_wr = 1;
            printf("  client: sent all %zu bytes, shut down its write side\n", c->sent);
        }
        /* nothing left to write: stop watching WRITE */
        if (c->shut_wr) set_events(fd, &c->events, TORNADO_READ, &c->updates);
    }
    if (events & TORNADO_READ) {
        c->read_calls++;
        /* One read of at most 4 KiB per event: the client is a slow reader, so
         * the server's writes block and it has to wait for WRITE. (The loop is
         * level-triggered: unread bytes make it call us again.) */
        unsigned char in[4096];
        ssize_t r = read(fd, in, sizeof in);
        if (r < 0) {
            CHECK(errno == EAGAIN || errno == EINTR, "client read: %s", strerror(errno));
            return;
        }
        if (r == 0) {
            c->got_eof = 1;
            printf("  client: EOF after %zu echoed bytes\n", c->received);
            finish();
            return;
        }
        CHECK(c->received + (size_t)r <= c->out_len, "more bytes echoed than sent");
        CHECK(memcmp(in, c->out + c->received, (size_t)r) == 0, "echoed bytes differ at offset %zu",
              c->received);
        c->received += (size_t)r;
    }
}

static void server_flush(server_t *s) {
    while (s->len > 0) {
        ssize_t w = write(s->fd, s->buf + s->start, s->len);
        if (w < 0) {
            CHECK(errno == EAGAIN || errno == EINTR, "server write: %s", strerror(errno));
            break;
        }
        s->start += (size_t)w;
        s->len -= (size_t)w;
        s->echoed += (size_t)w;
    }
    if (s->len == 0) s->start = 0;
}

static void server_cb(int fd, uint32_t events, void *ud) {
    server_t *s = ud;
    CHECK(fd == s->fd, "server handler called for fd %d", fd);
    if (events & TORNADO_ERROR) events |= check_hangup(fd, "server");
    if (events & TORNADO_READ) {
        s->read_calls++;
        if (s->start > 0 && s->len > 0) { /* compact */
            memmove(s->buf, s->buf + s->start, s->len);
            s->start = 0;
        }
        while (s->len < ECHO_CAP && !s->got_eof) {
            ssize_t r = read(fd, s->buf + s->len, ECHO_CAP - s->len);
            if (r < 0) {
                CHECK(errno == EAGAIN || errno == EINTR, "server read: %s", strerror(errno));
                break;
            }
            if (r == 0) {
                s->got_eof = 1;
                printf("  server: EOF from the client\n");
                break;
            }
            s->len += (size_t)r;
        }
    }
    if ((events & (TORNADO_READ | TORNADO_WRITE)) && s->len > 0) {
        if (events & TORNADO_WRITE) s->write_calls++;
        server_flush(s);
    }
    if (s->got_eof && s->len == 0 && !s->shut_wr) {
        CHECK(shutdown(fd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
        s->shut_wr = 1;
        printf("  server: echoed all %zu bytes, shut down its write side\n", s->echoed);
    }
    /* READ while there is room and no EOF yet; WRITE while bytes wait to go out */
    uint32_t want = 0;
    if (!s->got_eof && s->len < ECHO_CAP) want |= TORNADO_READ;
    if (s->len > 0) want |= TORNADO_WRITE;
    if (want == 0) {
        if (s->events != 0) {
            CHECK_OK(tornado_loop_remove_handler(loop, fd));
            s->events = 0;
            printf("  server: done, removed its handler\n");
        }
        return;
    }
    set_events(fd, &s->events, want, &s->updates);
}

static client_t client;
static server_t server;

static void finish(void) {
    CHECK_OK(tornado_loop_remove_handler(loop, client.fd));
    client.events = 0;
    printf("  client: removed its handler, stopping the loop\n");
    tornado_loop_stop(loop);
}

int main(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
          strerror(errno));
    client.fd = sv[0];
    server.fd = sv[1];

    /* the messages: "message 0001 xxxx...\n", lengths vary from 21 to ~4000 bytes */
    size_t cap = 0;
    for (int i = 0; i < MESSAGES; i++) cap += 32 + (size_t)(i * 37 % 4000);
    client.out = malloc(cap);
    CHECK(client.out != NULL, "malloc");
    for (int i = 0; i < MESSAGES; i++) {
        int pad = i * 37 % 4000;
        client.out_len += (size_t)sprintf((char *)client.out + client.out_len, "message %04d ", i);
        memset(client.out + client.out_len, 'a' + i % 26, (size_t)pad);
        client.out_len += (size_t)pad;
        client.out[client.out_len++] = '\n';
    }
    printf("pipe_echo: %d messages, %zu bytes over a socketpair\n", MESSAGES, client.out_len);

    CHECK_NEW(loop = tornado_loop_new());
    uint64_t safety = example_arm_safety(loop, 10.0);
    client.events = TORNADO_READ | TORNADO_WRITE;
    CHECK_OK(tornado_loop_add_handler(loop, client.fd, client.events, client_cb, &client));
    server.events = TORNADO_READ;
    CHECK_OK(tornado_loop_add_handler(loop, server.fd, server.events, server_cb, &server));
    tornado_code rc = tornado_loop_add_handler(loop, server.fd, TORNADO_READ, server_cb, &server);
    CHECK(rc == TORNADO_ERR_EXISTS, "adding the same fd twice gave %s", tornado_code_name(rc));
    printf("  adding the server fd twice -> %s\n", tornado_code_name(rc));

    CHECK_OK(tornado_loop_start(loop));
    example_disarm_safety(loop, safety);

    printf("  client: %ld read / %ld write events, %ld update(s); server: %ld read / %ld write events, "
           "%ld updates\n",
           client.read_calls, client.write_calls, client.updates, server.read_calls, server.write_calls,
           server.updates);
    CHECK(client.sent == client.out_len, "sent %zu of %zu bytes", client.sent, client.out_len);
    CHECK(client.received == client.out_len, "%zu of %zu bytes echoed", client.received, client.out_len);
    CHECK(server.echoed == client.out_len, "server echoed %zu bytes", server.echoed);
    CHECK(client.got_eof && server.got_eof, "no EOF");
    CHECK(server.events == 0, "server handler not removed");
    CHECK(client.updates >= 1 && server.updates >= 2, "update_handler was not exercised");

    /* both handlers are gone: removing again is "not found" */
    rc = tornado_loop_remove_handler(loop, client.fd);
    CHECK(rc == TORNADO_ERR_NOT_FOUND, "removing a removed handler gave %s", tornado_code_name(rc));
    printf("  removing a removed handler -> %s\n", tornado_code_name(rc));

    CHECK_OK(tornado_loop_free(loop));
    close(sv[0]);
    close(sv[1]);
    free(client.out);
    printf("pipe_echo: all %zu bytes echoed in order; all checks passed\n", client.out_len);
    return 0;
}
