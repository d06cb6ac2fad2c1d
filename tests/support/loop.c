/* SPDX-License-Identifier: MIT */
/*
 * Loop test helpers (see loop.h). The watchdog is a timer unref'd from the loop, so it never
 * keeps a finished loop alive, and closed before returning.
 */
#include "tests/support/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/test.h"

static void print_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "# open handle: %s%s%s\n", uv_handle_type_name(uv_handle_get_type(h)),
            uv_is_active(h) ? " (active)" : "", uv_is_closing(h) ? " (closing)" : "");
}

void ptc_test_loop_finish(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(loop);
    if (rc != 0) {
        uv_walk(loop, print_handle, NULL);
        ptc_test_fail(__FILE__, __LINE__, "uv_loop_close: %s", uv_err_name(rc));
    }
}

typedef struct watchdog {
    uv_timer_t timer;
    bool fired;
} watchdog_t;

static void on_watchdog(uv_timer_t *t)
{
    watchdog_t *w = t->data;
    w->fired = true;
    uv_stop(t->loop);
}

void ptc_test_loop_run(uv_loop_t *loop, uint64_t ms, const char *what)
{
    watchdog_t w = {.fired = false};
    uv_timer_init(loop, &w.timer);
    w.timer.data = &w;
    uv_timer_start(&w.timer, on_watchdog, ms, 0);
    uv_unref((uv_handle_t *)&w.timer);
    uv_run(loop, UV_RUN_DEFAULT);
    if (w.fired) {
        uv_walk(loop, print_handle, NULL);
        ptc_test_fail(__FILE__, __LINE__, "loop still busy after %llu ms: %s",
                      (unsigned long long)ms, what);
    }
    uv_close((uv_handle_t *)&w.timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static int bound_socket(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ptc_test_fail(__FILE__, __LINE__, "socket: %s", strerror(errno));
    }
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(*sa);
    if (bind(fd, (struct sockaddr *)sa, len) != 0 ||
        getsockname(fd, (struct sockaddr *)sa, &len) != 0) {
        ptc_test_fail(__FILE__, __LINE__, "bind: %s", strerror(errno));
    }
    return fd;
}

uint16_t ptc_test_closed_port(void)
{
    struct sockaddr_in sa;
    int fd = bound_socket(&sa);
    close(fd);
    return ntohs(sa.sin_port);
}

int ptc_test_blackhole(uint16_t *port, int *filler)
{
    struct sockaddr_in sa;
    int fd = bound_socket(&sa);
    /* Backlog 0: Linux queues one connection, then drops further SYNs while it waits for
     * an accept() that never comes. */
    if (listen(fd, 0) != 0) {
        ptc_test_fail(__FILE__, __LINE__, "listen: %s", strerror(errno));
    }
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        ptc_test_fail(__FILE__, __LINE__, "filler connect: %s", strerror(errno));
    }
    *port = ntohs(sa.sin_port);
    *filler = c;
    return fd;
}

uint16_t ptc_test_tcp_port(const uv_tcp_t *tcp)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    if (uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len) != 0) {
        ptc_test_fail(__FILE__, __LINE__, "uv_tcp_getsockname failed");
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}
