/* SPDX-License-Identifier: MIT */
/*
 * common/http_client against the loopback test server (tests/support/httpsrv) on real
 * sockets, over http and https with certificates made at run time, part 1: requests and
 * responses of every framing, streamed bodies with back-pressure, TLS validation, and
 * connection errors and timeouts. Reuse, the pool, Expect, upgrades, cancelling and closing
 * are in http_client_pool_test.c. Each case counts the callbacks it gets, checks what the
 * server received, and ends by closing the client and the server and checking that the loop
 * closes cleanly (STYLE §5 rule 8).
 */
#include "tests/unit/common/http_client_harness.h"

/* ---- good requests ---- */

static void test_get_http(void)
{
    tctx_t t;
    tctx_init(&t, h_hello, false, NULL);
    rq_t q;
    rq_init(&q, &t, then_shutdown);
    rq_get(&q, "/hello?x=1");
    tctx_run(&t);
    CHECK_EQ(q.heads, 1);
    CHECK_EQ(q.dones, 1);
    CHECK_EQ(q.errors, 0);
    CHECK_EQ(q.status, 200);
    CHECK_STREQ(q.hdr, "yes");
    CHECK_EQ(q.phase, PTC_HTTP_CLIENT_PHASE_DONE);
    CHECK(!q.reused);
    check_body(&q, "hello");
    CHECK_EQ(t.seen_cnt, 1);
    CHECK_STREQ(t.seen[0].method, "GET");
    CHECK_STREQ(t.seen[0].target, "/hello?x=1");
    char host[64];
    snprintf(host, sizeof(host), "Host: 127.0.0.1:%u\n", (unsigned)t.port);
    CHECK_CONTAINS(t.seen[0].headers, host);
    CHECK_EQ(t.seen[0].framing, PTC_HTTP_BODY_NONE);
    CHECK_EQ(t.stats.connects, 1);
    CHECK_EQ(t.stats.idle, 1); /* pooled after the exchange */
    ptc_buf_dispose(&q.body);
    tctx_dispose_seen(&t);
}

/* Two requests in a row, the second from the first's on_done: one connection. */
static void ka_second(rq_t *q)
{
    rq_t *q2 = q->arg;
    ptc_http_client_req_opts_t o = rq_opts(q2, "GET", "/two");
    o.https = q->t->srv_tls != NULL;
    o.server_name = "localhost";
    ptc_http_header_t hdrs[] = {{ptc_slice_str("Host"), ptc_slice_str("app.internal")},
                                {ptc_slice_str("X-Custom"), ptc_slice_str("v")}};
    o.headers = hdrs;
    o.header_cnt = 2;
    rq_start(q2, &o);
}

static void run_keepalive(bool https)
{
    tctx_t t;
    tctx_init(&t, h_hello, https, NULL);
    rq_t q1;
    rq_t q2;
    rq_init(&q1, &t, ka_second);
    rq_init(&q2, &t, then_shutdown);
    q1.arg = &q2;
    ptc_http_client_req_opts_t o = rq_opts(&q1, "GET", "/one");
    if (https) {
        o.https = true;
        o.server_name = "localhost";
    }
    rq_start(&q1, &o);
    tctx_run(&t);
    CHECK_EQ(q1.dones, 1);
    CHECK_EQ(q2.dones, 1);
    CHECK_EQ(q1.errors + q2.errors, 0);
    check_body(&q1, "hello");
    check_body(&q2, "hello");
    CHECK(!q1.reused);
    CHECK(q2.reused);
    CHECK_EQ(t.seen_cnt, 2);
    CHECK_STREQ(t.seen[1].target, "/two");
    CHECK_CONTAINS(t.seen[1].headers, "Host: app.internal\nX-Custom: v\n");
    CHECK_EQ(t.seen[0].conn_no, 1);
    /* The same connection served both. */
    CHECK_EQ(t.accepts, 1);
    CHECK_EQ(t.seen[1].conn_no, 1);
    CHECK_EQ(t.stats.connects, 1);
    CHECK_EQ(t.stats.reuses, 1);
    ptc_buf_dispose(&q1.body);
    ptc_buf_dispose(&q2.body);
    tctx_dispose_seen(&t);
}

static void test_keepalive_reuse(void)
{
    run_keepalive(false);
}

/* Two https requests to the same origin (host, port, TLS name and configuration). */
static void ka_https_second(rq_t *q)
{
    rq_t *q2 = q->arg;
    ptc_http_client_req_opts_t o = rq_opts(q2, "GET", "/two");
    o.https = true;
    o.server_name = "localhost";
    rq_start(q2, &o);
}

static void test_get_https(void)
{
    tctx_t t;
    tctx_init(&t, h_hello, true, NULL);
    rq_t q1;
    rq_t q2;
    rq_init(&q1, &t, ka_https_second);
    rq_init(&q2, &t, then_shutdown);
    q1.arg = &q2;
    ptc_http_client_req_opts_t o = rq_opts(&q1, "GET", "/secure");
    o.https = true;
    o.server_name = "localhost";
    rq_start(&q1, &o);
    tctx_run(&t);
    CHECK_EQ(q1.dones, 1);
    CHECK_EQ(q2.dones, 1);
    CHECK_EQ(q1.status, 200);
    check_body(&q1, "hello");
    check_body(&q2, "hello");
    CHECK(q2.reused);
    CHECK_EQ(t.accepts, 1);
    CHECK_STREQ(t.seen[0].target, "/secure");
    /* The default port of https is left out of Host only when it is 443. */
    char host[64];
    snprintf(host, sizeof(host), "Host: 127.0.0.1:%u\n", (unsigned)t.port);
    CHECK_CONTAINS(t.seen[0].headers, host);
    ptc_buf_dispose(&q1.body);
    ptc_buf_dispose(&q2.body);
    tctx_dispose_seen(&t);
}

static void test_keepalive_reuse_https(void)
{
    run_keepalive(true);
}

/* POST with a body given up front, then one streamed with a known length. */
static void post_second(rq_t *q)
{
    rq_t *q2 = q->arg;
    ptc_http_client_req_opts_t o = rq_opts(q2, "PUT", "/stream");
    o.body_mode = PTC_HTTP_CLIENT_BODY_LENGTH;
    o.content_length = 10000;
    rq_start(q2, &o);
    uint8_t piece[1000];
    for (int i = 0; i < 10; i++) {
        memset(piece, 'a' + i, sizeof(piece));
        CHECK_OK(ptc_http_client_req_write(q2->req, piece, sizeof(piece)));
        if (i < 9) {
            CHECK_EQ(ptc_http_client_req_end(q2->req), PTC_ESTATE); /* bytes missing */
        }
    }
    CHECK_EQ(ptc_http_client_req_write(q2->req, "x", 1), PTC_ESTATE); /* complete */
    CHECK_OK(ptc_http_client_req_end(q2->req));
}

static void test_post_length(void)
{
    tctx_t t;
    tctx_init(&t, h_echo_body, false, NULL);
    rq_t q1;
    rq_t q2;
    rq_init(&q1, &t, post_second);
    rq_init(&q2, &t, then_shutdown);
    q1.arg = &q2;
    ptc_http_client_req_opts_t o = rq_opts(&q1, "POST", "/form");
    ptc_http_header_t hdrs[] = {
        {ptc_slice_str("Content-Type"), ptc_slice_str("application/x-www-form-urlencoded")}};
    o.headers = hdrs;
    o.header_cnt = 1;
    o.body = ptc_slice_str("a=1&b=2");
    rq_start(&q1, &o);
    /* A body given up front is complete: nothing may be added. */
    CHECK_EQ(ptc_http_client_req_write(q1.req, "x", 1), PTC_ESTATE);
    CHECK_EQ(ptc_http_client_req_end(q1.req), PTC_ESTATE);
    tctx_run(&t);
    CHECK_EQ(q1.dones, 1);
    CHECK_EQ(q2.dones, 1);
    check_body(&q1, "a=1&b=2");
    CHECK_STREQ(t.seen[0].method, "POST");
    CHECK_CONTAINS(t.seen[0].headers, "Content-Length: 7\n");
    CHECK_EQ(t.seen[0].framing, PTC_HTTP_BODY_LENGTH);
    CHECK_STREQ(t.seen[1].method, "PUT");
    CHECK_CONTAINS(t.seen[1].headers, "Content-Length: 10000\n");
    CHECK_EQ(t.seen[1].body.len, 10000);
    CHECK_EQ(q2.body.len, 10000);
    for (size_t i = 0; i < 10000; i++) {
        if (ptc_buf_data(&t.seen[1].body)[i] != 'a' + i / 1000) {
            CHECK_EQ(i, -1);
        }
    }
    CHECK(q2.reused);
    CHECK_EQ(t.accepts, 1);
    ptc_buf_dispose(&q1.body);
    ptc_buf_dispose(&q2.body);
    tctx_dispose_seen(&t);
}

/* ---- a chunked request body streamed with back-pressure ---- */

static uint8_t pattern_byte(size_t i)
{
    return (uint8_t)((i * 7 + i / 4093) & 0xff);
}

static void upload_pump(upload_t *u)
{
    uint8_t piece[UPLOAD_PIECE];
    while (u->sent < UPLOAD_SIZE) {
        if (ptc_http_client_req_is_full(u->q.req)) {
            u->full_stops++;
            return; /* on_drain resumes */
        }
        for (size_t i = 0; i < UPLOAD_PIECE; i++) {
            piece[i] = pattern_byte(u->sent + i);
        }
        CHECK_OK(ptc_http_client_req_write(u->q.req, piece, UPLOAD_PIECE));
        u->sent += UPLOAD_PIECE;
    }
    if (u->ended) {
        return; /* a drain after the last piece */
    }
    u->ended = true;
    CHECK_OK(ptc_http_client_req_end(u->q.req));
    CHECK_EQ(ptc_http_client_req_end(u->q.req), PTC_ESTATE);
    CHECK_EQ(ptc_http_client_req_write(u->q.req, "x", 1), PTC_ESTATE);
}

static void upload_on_drain(ptc_http_client_req_t *r)
{
    upload_t *u = ptc_http_client_req_data(r);
    u->q.drains++;
    CHECK(!ptc_http_client_req_is_full(r));
    upload_pump(u);
}

static void h_count_body(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    char len[32];
    int n = snprintf(len, sizeof(len), "%zu", r->body_len);
    ptc_httpsrv_respond(c, 201, NULL, len, (size_t)n);
}

static void run_chunked_upload(bool https)
{
    tctx_t t;
    tctx_init(&t, h_count_body, https, NULL);
    upload_t u;
    memset(&u, 0, sizeof(u));
    rq_init(&u.q, &t, then_shutdown);
    ptc_http_client_req_opts_t o = rq_opts(&u.q, "POST", "/upload");
    o.https = https;
    o.server_name = "localhost";
    o.body_mode = PTC_HTTP_CLIENT_BODY_CHUNKED;
    o.on_drain = upload_on_drain;
    o.data = &u; /* rq_t is the first member */
    rq_start(&u.q, &o);
    upload_pump(&u);
    tctx_run(&t);
    CHECK_EQ(u.q.dones, 1);
    CHECK_EQ(u.q.errors, 0);
    CHECK_EQ(u.q.status, 201);
    char want[32];
    snprintf(want, sizeof(want), "%u", UPLOAD_SIZE);
    check_body(&u.q, want);
    CHECK_GE(u.full_stops, 1);
    CHECK_GE(u.q.drains, u.full_stops);
    CHECK_EQ(t.seen[0].framing, PTC_HTTP_BODY_CHUNKED);
    CHECK_CONTAINS(t.seen[0].headers, "Transfer-Encoding: chunked\n");
    CHECK_EQ(t.seen[0].body.len, UPLOAD_SIZE);
    const uint8_t *b = ptc_buf_data(&t.seen[0].body);
    for (size_t i = 0; i < UPLOAD_SIZE; i++) {
        if (b[i] != pattern_byte(i)) {
            CHECK_EQ(i, -1);
        }
    }
    ptc_buf_dispose(&u.q.body);
    tctx_dispose_seen(&t);
}

static void test_post_chunked_streamed(void)
{
    run_chunked_upload(false);
}

static void test_post_chunked_streamed_https(void)
{
    run_chunked_upload(true);
}

/* ---- responses ---- */

static void chunked_again(rq_t *q)
{
    rq_get(q->arg, "/again");
}

static void test_chunked_response(void)
{
    tctx_t t;
    tctx_init(&t, h_chunked, false, NULL);
    rq_t q1;
    rq_t q2;
    rq_init(&q1, &t, chunked_again);
    rq_init(&q2, &t, then_shutdown);
    q1.arg = &q2;
    rq_get(&q1, "/chunked");
    tctx_run(&t);
    CHECK_EQ(q1.dones, 1);
    CHECK_EQ(q2.dones, 1);
    check_body(&q1, "hello world!");
    check_body(&q2, "hello world!");
    CHECK(q2.reused); /* the trailer ended the first response exactly */
    CHECK_EQ(t.accepts, 1);
    ptc_buf_dispose(&q1.body);
    ptc_buf_dispose(&q2.body);
    tctx_dispose_seen(&t);
}

/* HEAD, 204 and 304 have no body whatever their headers say; the connection stays usable. */
static void h_nobody(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    const char *resp;
    if (strcmp(r->target, "/204") == 0) {
        resp = "HTTP/1.1 204 No Content\r\nX-Test: 204\r\n\r\n";
    } else if (strcmp(r->target, "/304") == 0) {
        resp = "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\nContent-Length: 10\r\n\r\n";
    } else if (strcmp(r->method, "HEAD") == 0) {
        resp = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    } else {
        resp = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend";
    }
    ptc_httpsrv_write(c, resp, strlen(resp));
}

typedef struct nobody {
    rq_t q[4];
} nobody_t;

static void nobody_next(rq_t *q)
{
    nobody_t *n = q->arg;
    size_t i = (size_t)(q - n->q);
    static const char *const methods[] = {"HEAD", "GET", "GET", "GET"};
    static const char *const targets[] = {"/len", "/204", "/304", "/last"};
    if (i + 1 < 4) {
        ptc_http_client_req_opts_t o = rq_opts(&n->q[i + 1], methods[i + 1], targets[i + 1]);
        rq_start(&n->q[i + 1], &o);
    } else {
        tctx_shutdown(q->t);
    }
}

static void test_head_204_304(void)
{
    tctx_t t;
    tctx_init(&t, h_nobody, false, NULL);
    nobody_t n;
    for (int i = 0; i < 4; i++) {
        rq_init(&n.q[i], &t, nobody_next);
        n.q[i].arg = &n;
    }
    ptc_http_client_req_opts_t o = rq_opts(&n.q[0], "HEAD", "/len");
    rq_start(&n.q[0], &o);
    tctx_run(&t);
    static const int status[] = {200, 204, 304, 200};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(n.q[i].dones, 1);
        CHECK_EQ(n.q[i].errors, 0);
        CHECK_EQ(n.q[i].status, status[i]);
        CHECK_EQ(n.q[i].body_cbs, i == 3 ? 1 : 0);
        CHECK(n.q[i].reused == (i > 0));
        ptc_buf_dispose(&n.q[i].body);
    }
    CHECK_STREQ(n.q[1].hdr, "204");
    CHECK_EQ(t.accepts, 1);
    CHECK_STREQ(t.seen[0].method, "HEAD");
    tctx_dispose_seen(&t);
}

/* ---- a large response streamed with pause and resume ---- */

typedef struct big {
    rq_t q;
    size_t got;
    size_t total;
    bool paused;
    int while_paused;
    int pauses;
    int bad_at;
    uv_timer_t resume;
} big_t;

static void h_big(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    big_t *b = t->arg;
    (void)r;
    uint8_t *body = ptc_xmalloc(b->total);
    for (size_t i = 0; i < b->total; i++) {
        body[i] = pattern_byte(i);
    }
    ptc_httpsrv_respond(c, 200, NULL, body, b->total);
    free(body);
}

static void big_resume(uv_timer_t *timer)
{
    big_t *b = timer->data;
    b->paused = false;
    ptc_http_client_req_resume(b->q.req);
    ptc_http_client_req_resume(b->q.req); /* idempotent */
}

static void big_on_body(ptc_http_client_req_t *r, ptc_slice_t data)
{
    big_t *b = ptc_http_client_req_data(r);
    if (b->paused) {
        b->while_paused++;
    }
    for (size_t i = 0; i < data.len; i++) {
        if (data.ptr[i] != pattern_byte(b->got + i) && b->bad_at < 0) {
            b->bad_at = (int)(b->got + i);
        }
    }
    b->got += data.len;
    b->q.body_cbs++;
    if (b->got < b->total) {
        /* Stop after every piece; resume from a timer (1 ms, then 0 ms). */
        b->paused = true;
        b->pauses++;
        ptc_http_client_req_pause(r);
        ptc_http_client_req_pause(r); /* idempotent */
        CHECK_OK(uv_timer_start(&b->resume, big_resume, b->pauses % 2, 0));
    }
}

static void big_done(rq_t *q)
{
    big_t *b = (big_t *)q;
    uv_close((uv_handle_t *)&b->resume, on_timer_closed);
    tctx_shutdown(q->t);
}

static void run_big(bool https, size_t total)
{
    tctx_t t;
    big_t b;
    memset(&b, 0, sizeof(b));
    b.total = total;
    b.bad_at = -1;
    tctx_init(&t, h_big, https, NULL);
    t.arg = &b;
    CHECK_OK(uv_timer_init(&t.loop, &b.resume));
    b.resume.data = &b;
    rq_init(&b.q, &t, big_done);
    ptc_http_client_req_opts_t o = rq_opts(&b.q, "GET", "/big");
    o.https = https;
    o.server_name = "localhost";
    o.on_body = big_on_body;
    o.data = &b;
    rq_start(&b.q, &o);
    tctx_run(&t);
    CHECK_EQ(b.q.dones, 1);
    CHECK_EQ(b.q.errors, 0);
    CHECK_UEQ(b.got, total);
    CHECK_EQ(b.bad_at, -1);
    CHECK_EQ(b.while_paused, 0);
    CHECK_GE(b.pauses, 8);
    CHECK_EQ(t.stats.idle, 1);
    tctx_dispose_seen(&t);
}

static void test_large_pause_resume(void)
{
    run_big(false, 8u * 1024 * 1024);
}

static void test_large_pause_resume_https(void)
{
    run_big(true, 2u * 1024 * 1024);
}

/* ---- TLS validation ---- */

static void run_tls_fail(const char *server_name, ptc_tls_config_t *cfg, int want,
                         const char *want_detail)
{
    tctx_t t;
    tctx_init(&t, h_hello, true, NULL);
    rq_t q;
    rq_init(&q, &t, then_shutdown);
    ptc_http_client_req_opts_t o = rq_opts(&q, "GET", "/");
    o.https = true;
    o.server_name = server_name;
    o.tls = cfg;
    rq_start(&q, &o);
    tctx_run(&t);
    CHECK_EQ(q.dones, 0);
    CHECK_EQ(q.heads, 0);
    CHECK_EQ(q.errors, 1);
    CHECK_EQ(q.err, want);
    CHECK_EQ(q.phase, PTC_HTTP_CLIENT_PHASE_TLS);
    CHECK_CONTAINS(q.detail, "TLS handshake");
    CHECK_CONTAINS(q.detail, want_detail);
    CHECK_EQ(t.seen_cnt, 0);
    CHECK_EQ(t.stats.idle, 0);
    ptc_tls_config_unref(cfg);
}

static void test_https_wrong_name(void)
{
    run_tls_fail("wrong.example.com", NULL, PTC_ECERTNAME, "wrong.example.com");
}

static ptc_tls_config_t *config_trusting(const char *ca_pem, const uint8_t *pin)
{
    ptc_tls_client_opts_t o = {.ca_pem = ca_pem, .ca_pem_len = strlen(ca_pem)};
    if (pin != NULL) {
        o.has_pin = true;
        memcpy(o.pin_sha256, pin, PTC_TLS_SHA256_LEN);
    }
    ptc_tls_config_t *cfg = NULL;
    ptc_tls_err_t err;
    CHECK_OK(ptc_tls_client_config_new(&o, &cfg, &err));
    return cfg;
}

static void test_https_untrusted_ca(void)
{
    ptc_certgen_cert_t other;
    ptc_certgen_ca(NULL, "Somebody Else", &other);
    ptc_tls_config_t *cfg = config_trusting(other.cert_pem, NULL);
    ptc_certgen_dispose(&other);
    run_tls_fail("localhost", cfg, PTC_ECERT, "localhost");
}

static void test_https_pin_mismatch(void)
{
    ptc_certgen_cert_t other;
    ptc_certgen_ca(NULL, "Pin Source", &other);
    /* Trusted chain (the test's CA is set below), but a pin of another key. */
    tctx_t t;
    tctx_init(&t, h_hello, true, NULL);
    ptc_tls_config_t *bad = config_trusting(t.ca.cert_pem, other.spki_sha256);
    ptc_tls_config_t *good = config_trusting(t.ca.cert_pem, t.leaf.spki_sha256);
    ptc_certgen_dispose(&other);
    rq_t q1;
    rq_t q2;
    rq_init(&q1, &t, NULL);
    rq_init(&q2, &t, NULL);
    ptc_http_client_req_opts_t o = rq_opts(&q1, "GET", "/pinned");
    o.https = true;
    o.server_name = "localhost";
    o.tls = bad;
    rq_start(&q1, &o);
    o = rq_opts(&q2, "GET", "/pinned");
    o.https = true;
    o.server_name = "localhost";
    o.tls = good;
    rq_start(&q2, &o);
    ptc_tls_config_unref(bad); /* the client's origins hold their own references */
    ptc_tls_config_unref(good);
    /* Both run at once; shut down when both ended. */
    while (q1.dones + q1.errors == 0 || q2.dones + q2.errors == 0) {
        CHECK_EQ(uv_run(&t.loop, UV_RUN_ONCE) >= 0, 1);
    }
    tctx_shutdown(&t);
    tctx_run(&t);
    CHECK_EQ(q1.errors, 1);
    CHECK_EQ(q1.err, PTC_EPIN);
    CHECK_EQ(q1.phase, PTC_HTTP_CLIENT_PHASE_TLS);
    CHECK_EQ(q2.dones, 1);
    check_body(&q2, "hello");
    CHECK_EQ(t.seen_cnt, 1);
    ptc_buf_dispose(&q2.body);
    tctx_dispose_seen(&t);
}

/* A self-signed server certificate: refused when validating, accepted with no_verify. */
static void selfsigned_then(rq_t *q)
{
    rq_t *q2 = q->arg;
    ptc_http_client_req_opts_t o = rq_opts(q2, "GET", "/noverify");
    o.https = true;
    o.no_verify = true;
    rq_start(q2, &o);
}

static void test_https_no_verify(void)
{
    tctx_t t;
    memset(&t, 0, sizeof(t));
    CHECK_OK(uv_loop_init(&t.loop));
    t.handler = h_hello;
    /* certgen's certificates are either CAs (no digitalSignature: no use for a server) or
     * signed by one, so the self-signed server certificate comes from the openssl CLI. */
    const char *dir = ptc_test_tmpdir();
    char cmd[2048];
    char crt[512];
    char key[512];
    snprintf(crt, sizeof(crt), "%s/self.crt", dir);
    snprintf(key, sizeof(key), "%s/self.key", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=localhost -addext subjectAltName=DNS:localhost "
             "-addext keyUsage=digitalSignature -keyout %s -out %s >/dev/null 2>&1",
             key, crt);
    CHECK_EQ(system(cmd), 0);
    ptc_tls_certs_t *certs = ptc_tls_certs_new();
    ptc_tls_err_t err;
    CHECK_OK(ptc_tls_certs_add_files(certs, crt, key, true, &err));
    ptc_tls_server_opts_t so = {.certs = certs};
    CHECK_OK(ptc_tls_server_config_new(&so, &t.srv_tls, &err));
    ptc_tls_certs_unref(certs);
    ptc_httpsrv_opts_t hs = {.tls = t.srv_tls, .on_request = srv_on_request, .data = &t};
    t.srv = ptc_httpsrv_start(&t.loop, &hs);
    t.port = ptc_httpsrv_port(t.srv);
    /* The client validates against a CA bundle that does not hold this certificate. */
    ptc_certgen_cert_t other;
    ptc_certgen_ca(ptc_test_tmpdir(), "Bundle", &other);
    ptc_http_client_opts_t co = {.ca_file = other.cert_path};
    CHECK_OK(ptc_http_client_new(&t.loop, &co, &t.client));
    rq_t q1;
    rq_t q2;
    rq_init(&q1, &t, selfsigned_then);
    rq_init(&q2, &t, then_shutdown);
    q1.arg = &q2;
    ptc_http_client_req_opts_t o = rq_opts(&q1, "GET", "/verify");
    o.https = true;
    rq_start(&q1, &o);
    tctx_run(&t);
    ptc_certgen_dispose(&other);
    CHECK_EQ(q1.errors, 1);
    CHECK_EQ(q1.err, PTC_ECERT);
    CHECK_EQ(q2.dones, 1);
    CHECK_EQ(q2.errors, 0);
    check_body(&q2, "hello");
    CHECK_EQ(t.seen_cnt, 1);
    CHECK_STREQ(t.seen[0].target, "/noverify");
    ptc_buf_dispose(&q2.body);
    tctx_dispose_seen(&t);
}

/* ---- connection errors ---- */

static void run_dial_error(const char *host, uint16_t port, const ptc_http_client_opts_t *co,
                           int want, const char *want_detail)
{
    tctx_t t;
    tctx_init(&t, h_hello, false, co);
    rq_t q;
    rq_init(&q, &t, then_shutdown);
    ptc_http_client_req_opts_t o = rq_opts(&q, "GET", "/");
    o.host = host;
    o.port = port;
    rq_start(&q, &o);
    tctx_run(&t);
    CHECK_EQ(q.errors, 1);
    CHECK_EQ(q.dones, 0);
    CHECK_EQ(q.err, want);
    CHECK_EQ(q.phase, PTC_HTTP_CLIENT_PHASE_CONNECT);
    CHECK_CONTAINS(q.detail, want_detail);
    CHECK_EQ(t.stats.idle, 0);
    CHECK_EQ(t.stats.connects, 1);
    CHECK_EQ(t.seen_cnt, 0);
    tctx_dispose_seen(&t);
}

static void test_connection_refused(void)
{
    run_dial_error("127.0.0.1", ptc_test_closed_port(), NULL, UV_ECONNREFUSED, "127.0.0.1");
}

static void test_dns_failure(void)
{
    run_dial_error("nonexistent.invalid", 80, NULL, PTC_EDNS, "nonexistent.invalid");
}

static void test_connect_timeout(void)
{
    uint16_t port;
    int filler;
    int lfd = ptc_test_blackhole(&port, &filler);
    ptc_http_client_opts_t co = {.connect_timeout_ms = 200};
    uint64_t t0 = uv_hrtime();
    run_dial_error("127.0.0.1", port, &co, PTC_ETIMEOUT, "timed out after 200 ms");
    CHECK_GE((uv_hrtime() - t0) / 1000000, 150);
    close(filler);
    close(lfd);
}

/* A server that accepts and reads but never answers. */
static void test_head_timeout(void)
{
    ptc_http_client_opts_t co = {.head_timeout_ms = 5000};
    tctx_t t;
    tctx_init(&t, NULL, false, &co);
    rq_t q;
    rq_init(&q, &t, then_shutdown);
    ptc_http_client_req_opts_t o = rq_opts(&q, "GET", "/silent");
    o.head_timeout_ms = 200; /* the request's own overrides the client's */
    uint64_t t0 = uv_hrtime();
    rq_start(&q, &o);
    tctx_run(&t);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    CHECK_EQ(q.errors, 1);
    CHECK_EQ(q.err, PTC_ETIMEOUT);
    CHECK_EQ(q.phase, PTC_HTTP_CLIENT_PHASE_HEAD);
    CHECK_CONTAINS(q.detail, "no response head");
    CHECK_CONTAINS(q.detail, "200 ms");
    CHECK_GE(ms, 150);
    CHECK_LT(ms, 4000);
    CHECK_EQ(t.seen_cnt, 1);
    tctx_dispose_seen(&t);
}

static void test_body_idle_timeout(void)
{
    ptc_http_client_opts_t co = {.idle_timeout_ms = 200};
    tctx_t t;
    tctx_init(&t, h_partial, false, &co);
    rq_t q;
    rq_init(&q, &t, then_shutdown);
    rq_get(&q, "/partial");
    tctx_run(&t);
    CHECK_EQ(q.heads, 1);
    CHECK_EQ(q.errors, 1);
    CHECK_EQ(q.err, PTC_ETIMEOUT);
    CHECK_EQ(q.phase, PTC_HTTP_CLIENT_PHASE_BODY);
    CHECK_CONTAINS(q.detail, "idle");
    check_body(&q, "0123456789");
    ptc_buf_dispose(&q.body);
    tctx_dispose_seen(&t);
}

static void h_partial_close(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    h_partial(t, c, r);
    ptc_httpsrv_end(c);
}

static void test_server_closes_mid_body(void)
{
    tctx_t t;
    tctx_init(&t, h_partial_close, false, NULL);
    rq_t q;
    rq_init(&q, &t, then_shutdown);
    rq_get(&q, "/partial");
    tctx_run(&t);
    CHECK_EQ(q.heads, 1);
    CHECK_EQ(q.status, 200);
    CHECK_EQ(q.dones, 0);
    CHECK_EQ(q.errors, 1);
    CHECK_EQ(q.err, UV_EOF);
    CHECK_EQ(q.phase, PTC_HTTP_CLIENT_PHASE_BODY);
    CHECK_CONTAINS(q.detail, "closed the connection");
    check_body(&q, "0123456789");
    CHECK_EQ(t.stats.idle, 0);
    ptc_buf_dispose(&q.body);
    tctx_dispose_seen(&t);
}

static void h_malformed(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    (void)r;
    static const char resp[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
}

static void test_malformed_response(void)
{
    tctx_t t;
    tctx_init(&t, h_malformed, false, NULL);
    rq_t q;
    rq_init(&q, &t, then_shutdown);
    rq_get(&q, "/bad");
    tctx_run(&t);
    CHECK_EQ(q.heads, 0);
    CHECK_EQ(q.errors, 1);
    CHECK_EQ(q.err, PTC_EHTTP);
    CHECK_EQ(q.phase, PTC_HTTP_CLIENT_PHASE_HEAD);
    CHECK_CONTAINS(q.detail, "duplicate Content-Length");
    CHECK_EQ(t.stats.idle, 0);
    tctx_dispose_seen(&t);
}

/* A 101 to a request that did not ask for a protocol switch (no on_upgrade). */
static void h_switch(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    (void)r;
    static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                               "Upgrade: echo\r\n\r\n";
    ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
}

static void test_unexpected_switch(void)
{
    tctx_t t;
    tctx_init(&t, h_switch, false, NULL);
    rq_t q;
    rq_init(&q, &t, then_shutdown);
    rq_get(&q, "/x");
    tctx_run(&t);
    CHECK_EQ(q.heads, 0);
    CHECK_EQ(q.errors, 1);
    CHECK_EQ(q.err, PTC_EHTTP);
    CHECK_CONTAINS(q.detail, "protocol switch");
    tctx_dispose_seen(&t);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_get_http),
    PTC_TEST(test_keepalive_reuse),
    PTC_TEST(test_get_https),
    PTC_TEST(test_keepalive_reuse_https),
    PTC_TEST(test_post_length),
    PTC_TEST(test_post_chunked_streamed),
    PTC_TEST(test_post_chunked_streamed_https),
    PTC_TEST(test_chunked_response),
    PTC_TEST(test_head_204_304),
    PTC_TEST(test_large_pause_resume),
    PTC_TEST(test_large_pause_resume_https),
    PTC_TEST(test_https_wrong_name),
    PTC_TEST(test_https_untrusted_ca),
    PTC_TEST(test_https_pin_mismatch),
    PTC_TEST(test_https_no_verify),
    PTC_TEST(test_connection_refused),
    PTC_TEST(test_dns_failure),
    PTC_TEST(test_connect_timeout),
    PTC_TEST(test_head_timeout),
    PTC_TEST(test_body_idle_timeout),
    PTC_TEST(test_server_closes_mid_body),
    PTC_TEST(test_malformed_response),
    PTC_TEST(test_unexpected_switch),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
