/* SPDX-License-Identifier: MIT */
/*
 * connector/proxy_connect: the pure functions (proxy URL, NO_PROXY, the CONNECT request
 * bytes, the proxy's answer) and the asynchronous connect against a scripted proxy on
 * loopback: a 2xx hands over the socket with the bytes that followed the answer, a 407 and
 * a 403 fail with the proxy's answer in the message, a refused dial and a silent proxy
 * fail cleanly. Loop tests count callbacks and end with uv_loop_close() == 0.
 */
#include "connector/proxy_connect.h"
#include "common/net.h"
#include "tests/support/loop.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pure functions ---- */

static void test_parse_url(void)
{
    ptc_proxy_t p;
    char err[256];
    CHECK_OK(ptc_proxy_parse("http://proxy.corp:3128", &p, err, sizeof(err)));
    CHECK_STREQ(p.host, "proxy.corp");
    CHECK_EQ(p.port, 3128);
    CHECK_NULL(p.basic);
    CHECK_STREQ(p.display, "proxy.corp:3128");
    ptc_proxy_dispose(&p);

    /* Credentials are percent-decoded, then encoded for Basic (RFC 7617). */
    CHECK_OK(ptc_proxy_parse("http://user:pass@Proxy.Corp:8080/", &p, err, sizeof(err)));
    CHECK_STREQ(p.host, "proxy.corp");
    CHECK_STREQ(p.basic, "dXNlcjpwYXNz");
    CHECK_STREQ(p.display, "proxy.corp:8080");
    ptc_proxy_dispose(&p);
    CHECK_OK(ptc_proxy_parse("http://al%40ice:p%3Ass@10.0.0.1:3128", &p, err, sizeof(err)));
    CHECK_STREQ(p.basic, "YWxAaWNlOnA6c3M="); /* "al@ice:p:ss" */
    ptc_proxy_dispose(&p);
    CHECK_OK(ptc_proxy_parse("http://bob@10.0.0.1:3128", &p, err, sizeof(err)));
    CHECK_STREQ(p.basic, "Ym9iOg=="); /* "bob:" */
    ptc_proxy_dispose(&p);

    /* A bare host:port (as https_proxy often holds) is http; the default port is 80. */
    CHECK_OK(ptc_proxy_parse("10.1.2.3:8888", &p, err, sizeof(err)));
    CHECK_STREQ(p.host, "10.1.2.3");
    CHECK_EQ(p.port, 8888);
    ptc_proxy_dispose(&p);
    CHECK_OK(ptc_proxy_parse("http://[::1]", &p, err, sizeof(err)));
    CHECK_STREQ(p.host, "::1");
    CHECK_EQ(p.port, 80);
    CHECK_STREQ(p.display, "[::1]:80");
    ptc_proxy_dispose(&p);

    static const char *const bad[] = {
        "",
        "https://proxy:3128",
        "socks5://proxy:1080",
        "http://proxy:3128/x",
        "http://proxy:3128?a=b",
        "http://:3128",
        "http://proxy:99999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ptc_proxy_parse(bad[i], &p, err, sizeof(err)) != PTC_EFORMAT) {
            ptc_test_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
        }
        CHECK_NULL(p.basic);
        CHECK(err[0] != '\0');
    }
    CHECK_EQ(ptc_proxy_parse("https://u:topsecret@proxy:3128", &p, err, sizeof(err)), PTC_EFORMAT);
    CHECK(strstr(err, "topsecret") == NULL);
}

static void test_format_connect(void)
{
    char buf[512];
    ptc_proxy_t p;
    char err[256];
    CHECK_OK(ptc_proxy_parse("http://proxy:3128", &p, err, sizeof(err)));
    ssize_t n = ptc_proxy_format_connect(&p, "edge.example.com", 443, NULL, buf, sizeof(buf));
    const char *want = "CONNECT edge.example.com:443 HTTP/1.1\r\n"
                       "Host: edge.example.com:443\r\n"
                       "\r\n";
    CHECK_EQ(n, (ssize_t)strlen(want));
    CHECK_STREQ(buf, want);
    ptc_proxy_dispose(&p);

    CHECK_OK(ptc_proxy_parse("http://user:pass@proxy:3128", &p, err, sizeof(err)));
    n = ptc_proxy_format_connect(&p, "2001:db8::7", 8443, "portico-connector/0.1.0", buf,
                                 sizeof(buf));
    want = "CONNECT [2001:db8::7]:8443 HTTP/1.1\r\n"
           "Host: [2001:db8::7]:8443\r\n"
           "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
           "User-Agent: portico-connector/0.1.0\r\n"
           "\r\n";
    CHECK_EQ(n, (ptrdiff_t)strlen(want));
    CHECK_STREQ(buf, want);
    /* Too small a buffer, then names that could inject lines, and port 0. */
    CHECK_EQ(ptc_proxy_format_connect(&p, "edge.example.com", 443, NULL, buf, 40), PTC_ELIMIT);
    CHECK_EQ(ptc_proxy_format_connect(&p, "edge\r\nX-Evil: 1", 443, NULL, buf, sizeof(buf)),
             PTC_EFORMAT);
    CHECK_EQ(ptc_proxy_format_connect(&p, "edge example", 443, NULL, buf, sizeof(buf)),
             PTC_EFORMAT);
    CHECK_EQ(ptc_proxy_format_connect(&p, "", 443, NULL, buf, sizeof(buf)), PTC_EFORMAT);
    CHECK_EQ(ptc_proxy_format_connect(&p, "edge", 0, NULL, buf, sizeof(buf)), PTC_EFORMAT);
    CHECK_EQ(ptc_proxy_format_connect(&p, "edge", 443, "a\r\nb", buf, sizeof(buf)), PTC_EFORMAT);
    ptc_proxy_dispose(&p);
    /* Without a proxy struct (no credentials) the request is the same shape. */
    n = ptc_proxy_format_connect(NULL, "10.0.0.5", 443, NULL, buf, sizeof(buf));
    CHECK_STREQ(buf, "CONNECT 10.0.0.5:443 HTTP/1.1\r\nHost: 10.0.0.5:443\r\n\r\n");
}

static void test_parse_reply(void)
{
    ptc_proxy_reply_t r;
    const char *ok = "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03";
    CHECK_OK(ptc_proxy_parse_reply((const uint8_t *)ok, strlen(ok), &r));
    CHECK_EQ(r.status, 200);
    CHECK_STREQ(r.reason, "Connection established");
    CHECK_EQ(r.head_len, strlen(ok) - 3);

    /* tinyproxy's answer: HTTP/1.0 with a header field. */
    const char *tiny =
        "HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n";
    CHECK_OK(ptc_proxy_parse_reply((const uint8_t *)tiny, strlen(tiny), &r));
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.head_len, strlen(tiny));

    const char *auth =
        "HTTP/1.1 407 Proxy Authentication Required\r\n"
        "Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 5\r\n\r\ndenied";
    CHECK_OK(ptc_proxy_parse_reply((const uint8_t *)auth, strlen(auth), &r));
    CHECK_EQ(r.status, 407);
    CHECK_STREQ(r.reason, "Proxy Authentication Required");

    /* Incomplete at every cut before the blank line. */
    for (size_t cut = 0; cut < strlen(ok) - 3; cut++) {
        if (ptc_proxy_parse_reply((const uint8_t *)ok, cut, &r) != PTC_EINCOMPLETE) {
            ptc_test_fail(__FILE__, __LINE__, "cut %zu was not incomplete", cut);
        }
    }
    static const char *const bad[] = {
        "SSH-2.0-OpenSSH_9.2\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ptc_proxy_parse_reply((const uint8_t *)bad[i], strlen(bad[i]), &r) != PTC_EHTTP) {
            ptc_test_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
        }
    }
    /* A head that never ends is refused once it passes the limit. */
    size_t big_len = PTC_PROXY_MAX_REPLY + 10;
    uint8_t *big = malloc(big_len);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', big_len - 20);
    CHECK_EQ(ptc_proxy_parse_reply(big, big_len, &r), PTC_ELIMIT);
    free(big);
}

static void test_bypass(void)
{
    CHECK(!ptc_proxy_bypass(NULL, "edge.example.com", 443));
    CHECK(!ptc_proxy_bypass("", "edge.example.com", 443));
    CHECK(ptc_proxy_bypass("*", "edge.example.com", 443));
    CHECK(ptc_proxy_bypass("example.com", "edge.example.com", 443));
    CHECK(ptc_proxy_bypass("example.com", "EXAMPLE.com", 443));
    CHECK(ptc_proxy_bypass(".example.com", "edge.example.com", 443));
    CHECK(!ptc_proxy_bypass("example.com", "badexample.com", 443));
    CHECK(!ptc_proxy_bypass("edge.example.com", "example.com", 443));
    CHECK(ptc_proxy_bypass("localhost, 10.0.0.1 ,internal", "10.0.0.1", 443));
    CHECK(ptc_proxy_bypass("localhost,,internal", "internal", 443));
    CHECK(ptc_proxy_bypass("edge.example.com:8443", "edge.example.com", 8443));
    CHECK(!ptc_proxy_bypass("edge.example.com:8443", "edge.example.com", 443));
    CHECK(ptc_proxy_bypass("[::1]", "::1", 443));
    CHECK(ptc_proxy_bypass("::1", "::1", 443));
    CHECK(!ptc_proxy_bypass("corp", "edge.example.com", 443));
}

static void test_from_env(void)
{
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    CHECK_NULL(ptc_proxy_from_env());
    setenv("HTTPS_PROXY", "http://upper:1", 1);
    CHECK_STREQ(ptc_proxy_from_env(), "http://upper:1");
    setenv("https_proxy", "http://lower:2", 1);
    CHECK_STREQ(ptc_proxy_from_env(), "http://lower:2");
    setenv("https_proxy", "", 1);
    CHECK_STREQ(ptc_proxy_from_env(), "http://upper:1");
}

/* ---- asynchronous connect against a scripted proxy ---- */

typedef struct fake_proxy {
    uv_tcp_t *listener;
    uv_tcp_t *conn;
    const char *answer; /* sent once the request head is in; NULL: stay silent */
    char request[2048];
    size_t request_len;
    int accepted;
    int closed;
} fake_proxy_t;

typedef struct result {
    int calls;
    int status;
    char message[512];
    char leftover[64];
    uv_tcp_t *tcp;
    fake_proxy_t *proxy;
} result_t;

static void on_proxy_closed(uv_handle_t *h)
{
    fake_proxy_t *fp = h->data;
    fp->closed++;
    free(h);
}

static void on_proxy_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    fake_proxy_t *fp = h->data;
    *buf = uv_buf_init(fp->request + fp->request_len,
                       (unsigned)(sizeof(fp->request) - 1 - fp->request_len));
}

static void on_proxy_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void on_proxy_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    fake_proxy_t *fp = s->data;
    if (nread < 0) {
        uv_close((uv_handle_t *)s, on_proxy_closed);
        fp->conn = NULL;
        return;
    }
    fp->request_len += (size_t)nread;
    fp->request[fp->request_len] = '\0';
    if (strstr(fp->request, "\r\n\r\n") != NULL && fp->answer != NULL) {
        uv_write_t *w = malloc(sizeof(*w));
        uv_buf_t b = uv_buf_init((char *)fp->answer, (unsigned)strlen(fp->answer));
        CHECK_OK(uv_write(w, s, &b, 1, on_proxy_written));
    }
}

static void on_proxy_conn(uv_stream_t *server, int status)
{
    CHECK_OK(status);
    fake_proxy_t *fp = server->data;
    CHECK_OK(ptc_net_accept(server, &fp->conn));
    fp->accepted++;
    fp->conn->data = fp;
    CHECK_OK(uv_read_start((uv_stream_t *)fp->conn, on_proxy_alloc, on_proxy_read));
    /* One connection per test: stop listening. */
    uv_close((uv_handle_t *)fp->listener, on_proxy_closed);
    fp->listener = NULL;
}

static void on_connected(ptc_proxy_conn_t *pc, int status, uv_tcp_t *tcp, ptc_slice_t leftover)
{
    result_t *r = ptc_proxy_conn_data(pc);
    r->calls++;
    r->status = status;
    snprintf(r->message, sizeof(r->message), "%s", ptc_proxy_conn_message(pc));
    snprintf(r->leftover, sizeof(r->leftover), "%.*s", (int)leftover.len,
             (const char *)leftover.ptr);
    r->tcp = tcp;
    if (tcp != NULL) {
        /* The callee owns the handle now. */
        uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
    }
    /* Let the fake proxy's connection go too. */
    if (r->proxy->conn != NULL) {
        uv_read_stop((uv_stream_t *)r->proxy->conn);
        uv_close((uv_handle_t *)r->proxy->conn, on_proxy_closed);
        r->proxy->conn = NULL;
    }
}

/* Runs one connect through a fake proxy that answers `answer`; fills *r. */
static void run_connect(const char *proxy_user, const char *answer, uint64_t timeout_ms,
                        result_t *r, fake_proxy_t *fp)
{
    uv_loop_t loop;
    CHECK_OK(uv_loop_init(&loop));
    memset(fp, 0, sizeof(*fp));
    memset(r, 0, sizeof(*r));
    r->proxy = fp;
    fp->answer = answer;
    CHECK_OK(ptc_net_listen_tcp(&loop, "127.0.0.1:0", 8, on_proxy_conn, fp, &fp->listener));
    char url[128];
    snprintf(url, sizeof(url), "http://%s127.0.0.1:%u", proxy_user,
             (unsigned)ptc_test_tcp_port(fp->listener));
    ptc_proxy_t proxy;
    char err[256];
    CHECK_OK(ptc_proxy_parse(url, &proxy, err, sizeof(err)));
    ptc_proxy_conn_t *pc = NULL;
    CHECK_OK(ptc_proxy_connect(&loop, &proxy, "edge.example.com", 443, "portico-connector/test",
                               timeout_ms, on_connected, r, &pc));
    ptc_proxy_dispose(&proxy);
    CHECK_EQ(r->calls, 0); /* never from within the call */
    ptc_test_loop_run(&loop, 5000, "proxy connect");
    if (fp->listener != NULL) {
        uv_close((uv_handle_t *)fp->listener, on_proxy_closed);
        fp->listener = NULL;
    }
    ptc_test_loop_finish(&loop);
    CHECK_EQ(r->calls, 1);
}

static void test_connect_ok(void)
{
    result_t r;
    fake_proxy_t fp;
    run_connect("user:pass@", "HTTP/1.1 200 Connection established\r\n\r\nTLS?", 3000, &r, &fp);
    CHECK_OK(r.status);
    CHECK_NOT_NULL(r.tcp);
    CHECK_STREQ(r.message, "");
    CHECK_STREQ(r.leftover, "TLS?");
    CHECK_EQ(fp.accepted, 1);
    CHECK_STREQ(fp.request, "CONNECT edge.example.com:443 HTTP/1.1\r\n"
                            "Host: edge.example.com:443\r\n"
                            "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
                            "User-Agent: portico-connector/test\r\n\r\n");
}

static void test_connect_auth_required(void)
{
    result_t r;
    fake_proxy_t fp;
    run_connect("", "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n", 3000,
                &r, &fp);
    CHECK_EQ(r.status, PTC_EAUTH);
    CHECK_NULL(r.tcp);
    CHECK_CONTAINS(r.message, "answered 407 Proxy Authentication Required to CONNECT "
                              "edge.example.com:443");
    CHECK_CONTAINS(r.message, "proxy 127.0.0.1:");
}

static void test_connect_forbidden_hides_credentials(void)
{
    result_t r;
    fake_proxy_t fp;
    run_connect("alice:s3cret@", "HTTP/1.1 403 Forbidden\r\n\r\n", 3000, &r, &fp);
    CHECK_EQ(r.status, PTC_EPROTO);
    CHECK_CONTAINS(r.message, "answered 403 Forbidden");
    CHECK(strstr(r.message, "s3cret") == NULL);
    CHECK(strstr(r.message, "alice") == NULL);
}

static void test_connect_malformed_and_closed(void)
{
    result_t r;
    fake_proxy_t fp;
    run_connect("", "220 smtp.example.com ESMTP\r\n\r\n", 3000, &r, &fp);
    CHECK_EQ(r.status, PTC_EHTTP);
    CHECK_CONTAINS(r.message, "malformed answer");
}

static void test_connect_silent_proxy_times_out(void)
{
    result_t r;
    fake_proxy_t fp;
    run_connect("", NULL, 200, &r, &fp);
    CHECK_EQ(r.status, PTC_ETIMEOUT);
    CHECK_CONTAINS(r.message, "did not answer CONNECT edge.example.com:443 in time");
}

static void on_refused(ptc_proxy_conn_t *pc, int status, uv_tcp_t *tcp, ptc_slice_t leftover)
{
    (void)leftover;
    result_t *r = ptc_proxy_conn_data(pc);
    r->calls++;
    r->status = status;
    r->tcp = tcp;
    snprintf(r->message, sizeof(r->message), "%s", ptc_proxy_conn_message(pc));
}

static void test_connect_refused_and_cancel(void)
{
    uv_loop_t loop;
    CHECK_OK(uv_loop_init(&loop));
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)ptc_test_closed_port());
    ptc_proxy_t proxy;
    char err[256];
    CHECK_OK(ptc_proxy_parse(url, &proxy, err, sizeof(err)));
    result_t r;
    memset(&r, 0, sizeof(r));
    ptc_proxy_conn_t *pc = NULL;
    CHECK_OK(
        ptc_proxy_connect(&loop, &proxy, "edge.example.com", 443, NULL, 3000, on_refused, &r, &pc));
    ptc_test_loop_run(&loop, 5000, "refused proxy");
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.status, UV_ECONNREFUSED);
    CHECK_NULL(r.tcp);
    CHECK_CONTAINS(r.message, "cannot connect to proxy 127.0.0.1:");

    /* Cancel right away: the callback runs once, later, with UV_ECANCELED. */
    memset(&r, 0, sizeof(r));
    CHECK_OK(
        ptc_proxy_connect(&loop, &proxy, "edge.example.com", 443, NULL, 3000, on_refused, &r, &pc));
    ptc_proxy_conn_cancel(pc);
    ptc_proxy_conn_cancel(pc);
    CHECK_EQ(r.calls, 0);
    ptc_test_loop_run(&loop, 5000, "cancelled proxy");
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.status, UV_ECANCELED);

    /* Refused synchronously: no callback, nothing left open. */
    memset(&r, 0, sizeof(r));
    CHECK_EQ(ptc_proxy_connect(&loop, &proxy, "bad host", 443, NULL, 3000, on_refused, &r, &pc),
             PTC_EFORMAT);
    CHECK_EQ(ptc_proxy_connect(&loop, &proxy, "edge", 0, NULL, 3000, on_refused, &r, &pc),
             UV_EINVAL);
    ptc_proxy_dispose(&proxy);
    ptc_test_loop_finish(&loop);
    CHECK_EQ(r.calls, 0);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_parse_url),
    PTC_TEST(test_format_connect),
    PTC_TEST(test_parse_reply),
    PTC_TEST(test_bypass),
    PTC_TEST(test_from_env),
    PTC_TEST(test_connect_ok),
    PTC_TEST(test_connect_auth_required),
    PTC_TEST(test_connect_forbidden_hides_credentials),
    PTC_TEST(test_connect_malformed_and_closed),
    PTC_TEST(test_connect_silent_proxy_times_out),
    PTC_TEST(test_connect_refused_and_cancel),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
