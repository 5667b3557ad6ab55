/* How fast the kernel copies a received body into a buffer, by where the
 * buffer starts within its page: the experiment behind src/http/body.rs.
 *
 *     cc -O2 -o /tmp/copy_offset benches/copy_offset.c
 *     /tmp/copy_offset OFFSET N     # e.g. 0, 16, 64; N fetches of /big
 *
 * Four keep-alive connections to the anchors' nginx (127.0.0.1:8089, /big =
 * 1 MiB, sent with sendfile from page-aligned page-cache pages), each with
 * a response head read into a small buffer and the body read straight into
 * a buffer starting OFFSET bytes into a page, as tornado_rs reads a body of
 * known length. Prints the process's user and system CPU seconds. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNS 4
#define BODY (1 << 20)

static const char request[] = "GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

static int connect_local(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8089)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect to 127.0.0.1:8089");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s OFFSET N\n", argv[0]);
        return 2;
    }
    size_t offset = strtoul(argv[1], NULL, 10) % 4096;
    long n = atol(argv[2]), started = 0, done = 0;
    int fds[CONNS], in_head[CONNS];
    char *body[CONNS];
    size_t got[CONNS];
    int ep = epoll_create1(0);
    for (int i = 0; i < CONNS; i++) {
        fds[i] = connect_local();
        char *page = aligned_alloc(4096, 2 * BODY);
        memset(page, 0, 2 * BODY); /* mapped before the timing matters */
        body[i] = page + offset;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        if (write(fds[i], request, sizeof request - 1) < 0) return 1;
        started++;
        in_head[i] = 1;
        got[i] = 0;
    }
    char head[1024];
    while (done < n) {
        struct epoll_event evs[CONNS];
        int k = epoll_wait(ep, evs, CONNS, -1);
        for (int e = 0; e < k; e++) {
            int i = (int)evs[e].data.u32;
            for (;;) {
                ssize_t r;
                if (in_head[i]) {
                    r = recv(fds[i], head, sizeof head, MSG_DONTWAIT);
                    if (r <= 0) break;
                    char *end = memmem(head, (size_t)r, "\r\n\r\n", 4);
                    if (!end) { fprintf(stderr, "head over 1 KiB\n"); return 1; }
                    size_t head_len = (size_t)(end + 4 - head);
                    memcpy(body[i], head + head_len, (size_t)r - head_len);
                    got[i] = (size_t)r - head_len;
                    in_head[i] = 0;
                } else {
                    r = recv(fds[i], body[i] + got[i], BODY - got[i], MSG_DONTWAIT);
                    if (r <= 0) break;
                    got[i] += (size_t)r;
                }
                if (got[i] == BODY) {
                    done++;
                    in_head[i] = 1;
                    got[i] = 0;
                    if (started < n && write(fds[i], request, sizeof request - 1) > 0) started++;
                }
            }
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("offset %zu, %ld fetches: user %.3f s, sys %.3f s\n", offset, n,
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    return 0;
}
