/* SPDX-License-Identifier: MIT */
/*
 * common/net: spec parsing and address formatting, then listen/accept/dial on loopback with
 * a real libuv loop. Every loop test counts its callbacks and ends with uv_loop_close() == 0.
 */
#include "common/net.h"
#include "tests/support/loop.h"
#include "tests/support/test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- parsing and formatting ---- */

static void test_parse_hostport(void)
{
    ptc_net_hostport_t hp;
    CHECK_OK(ptc_net_parse_hostport("edge.example.com:443", &hp));
    CHECK_STREQ(hp.host, "edge.example.com");
    CHECK_EQ(hp.port, 443);
    CHECK_OK(ptc_net_parse_hostport("127.0.0.1:8080", &hp));
    CHECK_STREQ(hp.host, "127.0.0.1");
    CHECK_EQ(hp.port, 8080);
    CHECK_OK(ptc_net_parse_hostport("[::1]:8443", &hp));
    CHECK_STREQ(hp.host, "::1");
    CHECK_EQ(hp.port, 8443);
    CHECK_OK(ptc_net_parse_hostport("[2001:db8::17]:65535", &hp));
    CHECK_STREQ(hp.host, "2001:db8::17");
    CHECK_EQ(hp.port, 65535);
    CHECK_OK(ptc_net_parse_hostport("9000", &hp));
    CHECK_STREQ(hp.host, "");
    CHECK_EQ(hp.port, 9000);
    CHECK_OK(ptc_net_parse_hostport(":9001", &hp));
    CHECK_STREQ(hp.host, "");
    CHECK_EQ(hp.port, 9001);
    CHECK_OK(ptc_net_parse_hostport("localhost:0", &hp));
    CHECK_EQ(hp.port, 0);

    static const char *const bad[] = {
        "",      "host:",   "host:65536", "host:-1",     "host:80x",       "::1:80",
        "[::1]", "[::1]80", "[]:80",      "[not-v6]:80", "a b:80",         "host:8:0",
        "99999", "[::1]:",  "host/x:80",  "http://h:1",  "[127.0.0.1]:80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ptc_net_parse_hostport(bad[i], &hp) != PTC_EFORMAT) {
            ptc_test_fail(__FILE__, __LINE__, "accepted bad spec \"%s\"", bad[i]);
        }
    }
    char longhost[300];
    memset(longhost, 'a', 260);
    memcpy(longhost + 260, ":80", 4);
    CHECK_EQ(ptc_net_parse_hostport(longhost, &hp), PTC_EFORMAT);
    CHECK_EQ(ptc_net_parse_hostport(NULL, &hp), PTC_EFORMAT);
}

static void test_format_addr(void)
{
    char buf[PTC_NET_ADDRSTRLEN];
    struct sockaddr_in in;
    CHECK_OK(uv_ip4_addr("192.0.2.7", 8080, &in));
    CHECK_OK(ptc_net_format_addr((struct sockaddr *)&in, buf, sizeof(buf)));
    CHECK_STREQ(buf, "192.0.2.7:8080");
    struct sockaddr_in6 in6;
    CHECK_OK(uv_ip6_addr("2001:db8::1", 443, &in6));
    CHECK_OK(ptc_net_format_addr((struct sockaddr *)&in6, buf, sizeof(buf)));
    CHECK_STREQ(buf, "[2001:db8::1]:443");
    /* The longest IPv6 text form fits PTC_NET_ADDRSTRLEN. */
    CHECK_OK(uv_ip6_addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, &in6));
    CHECK_OK(ptc_net_format_addr((struct sockaddr *)&in6, buf, sizeof(buf)));
    CHECK_STREQ(buf, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    CHECK_OK(uv_ip6_addr("::ffff:192.0.2.1", 80, &in6));
    CHECK_OK(ptc_net_format_addr((struct sockaddr *)&in6, buf, sizeof(buf)));
    CHECK_STREQ(buf, "[::ffff:192.0.2.1]:80");
    char small[8];
    CHECK_EQ(ptc_net_format_addr((struct sockaddr *)&in, small, sizeof(small)), UV_ENOSPC);
    CHECK_STREQ(small, "");
    struct sockaddr un = {.sa_family = AF_UNIX};
    CHECK_EQ(ptc_net_format_addr(&un, buf, sizeof(buf)), UV_EAFNOSUPPORT);
}

/* ---- loop tests ---- */

typedef struct ctx {
    uv_loop_t loop;
    uv_tcp_t *listener;
    uv_tcp_t *accepted;
    uv_tcp_t *dialed;
    int accept_cnt;
    int dial_cb_cnt;
    int dial_status;
    int close_cnt;
    bool returned; /* ptc_net_dial has returned */
    bool cancel_in_cb;
    uint64_t started;
    uint64_t finished;
} ctx_t;

static void on_closed(uv_handle_t *h)
{
    ctx_t *c = h->loop->data;
    c->close_cnt++;
    free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    ctx_t *c = server->data;
    CHECK_OK(status);
    uv_tcp_t *tcp = NULL;
    CHECK_OK(ptc_net_accept(server, &tcp));
    CHECK_NOT_NULL(tcp);
    c->accepted = tcp;
    c->accept_cnt++;
    uv_close((uv_handle_t *)c->listener, on_closed);
    c->listener = NULL;
}

static void on_dial(ptc_net_dial_t *d, int status, uv_tcp_t *tcp)
{
    ctx_t *c = ptc_net_dial_data(d);
    CHECK(c->returned); /* never from inside ptc_net_dial */
    c->dial_cb_cnt++;
    c->dial_status = status;
    c->finished = uv_now(&c->loop);
    if (status == 0) {
        CHECK_NOT_NULL(tcp);
        c->dialed = tcp;
    } else {
        CHECK_NULL(tcp);
    }
    if (c->cancel_in_cb) {
        ptc_net_dial_cancel(d); /* a no-op once the callback runs */
    }
    if (c->listener != NULL && status != 0) {
        uv_close((uv_handle_t *)c->listener, on_closed);
        c->listener = NULL;
    }
}

static void ctx_init(ctx_t *c)
{
    memset(c, 0, sizeof(*c));
    CHECK_OK(uv_loop_init(&c->loop));
    c->loop.data = c;
    c->dial_status = 1;
}

static ptc_net_dial_t *dial(ctx_t *c, const char *host, uint16_t port, uint64_t timeout_ms)
{
    ptc_net_dial_t *d = NULL;
    c->started = uv_now(&c->loop);
    CHECK_OK(ptc_net_dial(&c->loop, host, port, timeout_ms, on_dial, c, &d));
    CHECK_NOT_NULL(d);
    c->returned = true;
    return d;
}

static bool has_nodelay(const uv_tcp_t *tcp)
{
    uv_os_fd_t fd;
    CHECK_OK(uv_fileno((const uv_handle_t *)tcp, &fd));
    int v = 0;
    socklen_t len = sizeof(v);
    CHECK_OK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len));
    return v != 0;
}

static void test_listen_accept_dial(void)
{
    ctx_t c;
    ctx_init(&c);
    CHECK_OK(ptc_net_listen_tcp(&c.loop, "127.0.0.1:0", 16, on_connection, &c, &c.listener));
    uint16_t port = ptc_test_tcp_port(c.listener);
    CHECK_GT(port, 0);
    char name[PTC_NET_ADDRSTRLEN];
    CHECK_OK(ptc_net_sock_name(c.listener, name, sizeof(name)));
    char want[PTC_NET_ADDRSTRLEN];
    snprintf(want, sizeof(want), "127.0.0.1:%u", (unsigned)port);
    CHECK_STREQ(name, want);

    dial(&c, "127.0.0.1", port, 5000);
    ptc_test_loop_run(&c.loop, 5000, "dial and accept");
    CHECK_EQ(c.dial_cb_cnt, 1);
    CHECK_OK(c.dial_status);
    CHECK_EQ(c.accept_cnt, 1);
    CHECK(has_nodelay(c.dialed));
    CHECK(has_nodelay(c.accepted));
    /* Each side sees the other's address. */
    CHECK_OK(ptc_net_peer_name(c.dialed, name, sizeof(name)));
    CHECK_STREQ(name, want);
    CHECK_OK(ptc_net_sock_name(c.dialed, want, sizeof(want)));
    CHECK_OK(ptc_net_peer_name(c.accepted, name, sizeof(name)));
    CHECK_STREQ(name, want);

    uv_close((uv_handle_t *)c.dialed, on_closed);
    uv_close((uv_handle_t *)c.accepted, on_closed);
    ptc_test_loop_finish(&c.loop);
    CHECK_EQ(c.close_cnt, 3);
}

static void test_dial_name_with_several_addresses(void)
{
    /* "localhost" may resolve to ::1 first, where nothing listens: the dial moves on. */
    ctx_t c;
    ctx_init(&c);
    CHECK_OK(ptc_net_listen_tcp(&c.loop, "127.0.0.1:0", 16, on_connection, &c, &c.listener));
    dial(&c, "localhost", ptc_test_tcp_port(c.listener), 5000);
    ptc_test_loop_run(&c.loop, 5000, "dial localhost");
    CHECK_EQ(c.dial_cb_cnt, 1);
    CHECK_OK(c.dial_status);
    CHECK_EQ(c.accept_cnt, 1);
    uv_close((uv_handle_t *)c.dialed, on_closed);
    uv_close((uv_handle_t *)c.accepted, on_closed);
    ptc_test_loop_finish(&c.loop);
    CHECK_EQ(c.close_cnt, 3);
}

static void test_dial_closed_port(void)
{
    ctx_t c;
    ctx_init(&c);
    c.cancel_in_cb = true;
    ptc_net_dial_t *d = dial(&c, "127.0.0.1", ptc_test_closed_port(), 5000);
    (void)d;
    ptc_test_loop_finish(&c.loop);
    CHECK_EQ(c.dial_cb_cnt, 1);
    CHECK_EQ(c.dial_status, UV_ECONNREFUSED);
}

static void test_dial_unresolvable(void)
{
    ctx_t c;
    ctx_init(&c);
    dial(&c, "no-such-host.invalid", 443, 10000);
    ptc_test_loop_finish(&c.loop);
    CHECK_EQ(c.dial_cb_cnt, 1);
    CHECK_EQ(c.dial_status, PTC_EDNS);
}

static void test_dial_bad_arguments(void)
{
    ctx_t c;
    ctx_init(&c);
    ptc_net_dial_t *d = NULL;
    CHECK_EQ(ptc_net_dial(&c.loop, "", 80, 0, on_dial, &c, &d), UV_EINVAL);
    CHECK_EQ(ptc_net_dial(&c.loop, "127.0.0.1", 0, 0, on_dial, &c, &d), UV_EINVAL);
    CHECK_EQ(ptc_net_dial(&c.loop, NULL, 80, 0, on_dial, &c, &d), UV_EINVAL);
    CHECK_NULL(d);
    ptc_test_loop_finish(&c.loop);
    CHECK_EQ(c.dial_cb_cnt, 0);
}

static void test_cancel_while_resolving(void)
{
    ctx_t c;
    ctx_init(&c);
    ptc_net_dial_t *d = dial(&c, "127.0.0.1", ptc_test_closed_port(), 5000);
    ptc_net_dial_cancel(d);
    ptc_net_dial_cancel(d); /* idempotent */
    CHECK_EQ(c.dial_cb_cnt, 0);
    ptc_test_loop_finish(&c.loop);
    CHECK_EQ(c.dial_cb_cnt, 1);
    CHECK_EQ(c.dial_status, UV_ECANCELED);
}

typedef struct cancel_timer {
    uv_timer_t timer;
    ptc_net_dial_t *d;
} cancel_timer_t;

static void on_cancel_timer(uv_timer_t *t)
{
    cancel_timer_t *ct = t->data;
    ctx_t *c = t->loop->data;
    CHECK_EQ(c->dial_cb_cnt, 0); /* still connecting */
    ptc_net_dial_cancel(ct->d);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel_while_connecting(void)
{
    uint16_t port;
    int filler;
    int lfd = ptc_test_blackhole(&port, &filler);
    ctx_t c;
    ctx_init(&c);
    ptc_net_dial_t *d = dial(&c, "127.0.0.1", port, 0);
    cancel_timer_t ct = {.d = d};
    uv_timer_init(&c.loop, &ct.timer);
    ct.timer.data = &ct;
    uv_timer_start(&ct.timer, on_cancel_timer, 150, 0);
    ptc_test_loop_run(&c.loop, 5000, "cancel while connecting");
    CHECK_EQ(c.dial_cb_cnt, 1);
    CHECK_EQ(c.dial_status, UV_ECANCELED);
    ptc_test_loop_finish(&c.loop);
    close(filler);
    close(lfd);
}

static void test_dial_timeout(void)
{
    uint16_t port;
    int filler;
    int lfd = ptc_test_blackhole(&port, &filler);
    ctx_t c;
    ctx_init(&c);
    dial(&c, "127.0.0.1", port, 200);
    ptc_test_loop_run(&c.loop, 5000, "dial timeout");
    CHECK_EQ(c.dial_cb_cnt, 1);
    CHECK_EQ(c.dial_status, PTC_ETIMEOUT);
    CHECK_GE(c.finished - c.started, 190);
    CHECK_LT(c.finished - c.started, 2000);
    ptc_test_loop_finish(&c.loop);
    close(filler);
    close(lfd);
}

static void test_listen_errors(void)
{
    ctx_t c;
    ctx_init(&c);
    uv_tcp_t *l = NULL;
    CHECK_EQ(ptc_net_listen_tcp(&c.loop, "nonsense", 16, on_connection, &c, &l), PTC_EFORMAT);
    CHECK_EQ(ptc_net_listen_tcp(&c.loop, "no-such-host.invalid:0", 16, on_connection, &c, &l),
             PTC_EDNS);
    CHECK_NULL(l);
    CHECK_OK(ptc_net_listen_tcp(&c.loop, "127.0.0.1:0", 16, on_connection, &c, &c.listener));
    char spec[64];
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", (unsigned)ptc_test_tcp_port(c.listener));
    CHECK_EQ(ptc_net_listen_tcp(&c.loop, spec, 16, on_connection, &c, &l), UV_EADDRINUSE);
    CHECK_NULL(l);
    /* Nothing is waiting to be accepted. */
    uv_tcp_t *t = NULL;
    CHECK_EQ(ptc_net_accept((uv_stream_t *)c.listener, &t), UV_EAGAIN);
    CHECK_NULL(t);
    /* An empty host listens on every IPv4 address. */
    CHECK_OK(ptc_net_listen_tcp(&c.loop, "0", 16, on_connection, &c, &l));
    char name[PTC_NET_ADDRSTRLEN];
    CHECK_OK(ptc_net_sock_name(l, name, sizeof(name)));
    CHECK(strncmp(name, "0.0.0.0:", 8) == 0);
    uv_close((uv_handle_t *)l, on_closed);
    uv_close((uv_handle_t *)c.listener, on_closed);
    ptc_test_loop_finish(&c.loop);
    CHECK_EQ(c.close_cnt, 2);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_parse_hostport),          PTC_TEST(test_format_addr),
    PTC_TEST(test_listen_accept_dial),      PTC_TEST(test_dial_name_with_several_addresses),
    PTC_TEST(test_dial_closed_port),        PTC_TEST(test_dial_unresolvable),
    PTC_TEST(test_dial_bad_arguments),      PTC_TEST(test_cancel_while_resolving),
    PTC_TEST(test_cancel_while_connecting), PTC_TEST(test_dial_timeout),
    PTC_TEST(test_listen_errors),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
