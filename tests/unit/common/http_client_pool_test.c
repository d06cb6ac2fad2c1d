/* SPDX-License-Identifier: MIT */
/*
 * common/http_client against the loopback test server, part 2: when a connection is reused,
 * the keep-alive pool (idle limits, a server closing idle connections, the retry of a request
 * on a stale reused connection), Expect: 100-continue, upgrades to a raw pipe, cancelling and
 * closing at every stage, and API misuse. Each case ends by closing the client and the server
 * and checking that the loop closes cleanly (STYLE §5 rule 8).
 */
#include "tests/unit/common/http_client_harness.h"

/* ---- connection reuse rules ---- */

static void h_rules(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    if (strcmp(r->target, "/http10") == 0) {
        static const char resp[] = "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
        ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
    } else if (strcmp(r->target, "/http10ka") == 0) {
        static const char resp[] =
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nka";
        ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
    } else if (strcmp(r->target, "/close") == 0) {
        static const char resp[] =
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n"
            "cl";
        ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
    } else if (strcmp(r->target, "/eof") == 0) {
        static const char resp[] = "HTTP/1.1 200 OK\r\n\r\nuntil the end";
        ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
        ptc_httpsrv_end(c);
    } else {
        ptc_httpsrv_respond(c, 200, NULL, "plain", 5);
    }
}

typedef struct rules {
    rq_t q[7];
} rules_t;

static const char *const rule_targets[] = {"/http10",   "/close",    "/eof", "/reqclose",
                                           "/http10ka", "/http10ka", "/last"};

static void rules_next(rq_t *q)
{
    rules_t *ru = q->arg;
    size_t i = (size_t)(q - ru->q) + 1;
    if (i == 7) {
        tctx_shutdown(q->t);
        return;
    }
    ptc_http_client_req_opts_t o = rq_opts(&ru->q[i], "GET", rule_targets[i]);
    ptc_http_header_t close_hdr = {ptc_slice_str("Connection"), ptc_slice_str("close")};
    if (i == 3) {
        o.headers = &close_hdr;
        o.header_cnt = 1;
    }
    rq_start(&ru->q[i], &o);
}

static void test_reuse_rules(void)
{
    tctx_t t;
    tctx_init(&t, h_rules, false, NULL);
    rules_t ru;
    for (int i = 0; i < 7; i++) {
        rq_init(&ru.q[i], &t, rules_next);
        ru.q[i].arg = &ru;
    }
    rq_get(&ru.q[0], rule_targets[0]);
    tctx_run(&t);
    static const char *const bodies[] = {"ok", "cl", "until the end", "plain", "ka", "ka", "plain"};
    /* Only the HTTP/1.0 keep-alive answer leaves its connection reusable. */
    static const bool reused[] = {false, false, false, false, false, true, true};
    for (int i = 0; i < 7; i++) {
        CHECK_EQ(ru.q[i].dones, 1);
        check_body(&ru.q[i], bodies[i]);
        CHECK(ru.q[i].reused == reused[i]);
        ptc_buf_dispose(&ru.q[i].body);
    }
    CHECK_EQ(t.accepts, 5);
    CHECK_EQ(t.stats.reuses, 2);
    tctx_dispose_seen(&t);
}

/* ---- the pool ---- */

/* Answers, then closes the connection: the client must notice while it is pooled. */
static void h_then_close(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    h_hello(t, c, r);
    if (strcmp(r->target, "/first") == 0) {
        ptc_httpsrv_end(c);
    }
}

static void pool_tick(tctx_t *t)
{
    ptc_http_client_stats_t st;
    ptc_http_client_get_stats(t->client, &st);
    if (st.conns != 0) {
        return;
    }
    uv_timer_stop(&t->timer);
    rq_get(t->arg, "/second");
}

static void pool_first_done(rq_t *q)
{
    ptc_http_client_stats_t st;
    ptc_http_client_get_stats(q->t->client, &st);
    CHECK_EQ(st.idle, 1); /* pooled: the response did not say close */
    tctx_every(q->t, 5, pool_tick);
}

static void test_pool_server_closes_idle(void)
{
    tctx_t t;
    tctx_init(&t, h_then_close, false, NULL);
    rq_t q1;
    rq_t q2;
    rq_init(&q1, &t, pool_first_done);
    rq_init(&q2, &t, then_shutdown);
    t.arg = &q2;
    rq_get(&q1, "/first");
    tctx_run(&t);
    CHECK_EQ(q1.dones, 1);
    CHECK_EQ(q2.dones, 1);
    CHECK_EQ(q2.errors, 0);
    CHECK(!q2.reused);
    check_body(&q2, "hello");
    CHECK_EQ(t.accepts, 2);
    CHECK_EQ(t.stats.retries, 0);
    CHECK_EQ(t.stats.connects, 2);
    ptc_buf_dispose(&q1.body);
    ptc_buf_dispose(&q2.body);
    tctx_dispose_seen(&t);
}

/* Two requests at once need two connections; only max_idle_per_origin of them are kept. */
static void max_idle_then(rq_t *q)
{
    rq_t *other = q->arg;
    if (other->dones + other->errors > 0) {
        tctx_shutdown(q->t);
    }
}

static void test_pool_max_idle(void)
{
    ptc_http_client_opts_t co = {.max_idle_per_origin = 1};
    tctx_t t;
    tctx_init(&t, h_hello, false, &co);
    rq_t q1;
    rq_t q2;
    rq_init(&q1, &t, max_idle_then);
    rq_init(&q2, &t, max_idle_then);
    q1.arg = &q2;
    q2.arg = &q1;
    rq_get(&q1, "/a");
    rq_get(&q2, "/b");
    tctx_run(&t);
    CHECK_EQ(q1.dones, 1);
    CHECK_EQ(q2.dones, 1);
    CHECK_EQ(t.accepts, 2);
    CHECK_EQ(t.stats.connects, 2);
    CHECK_EQ(t.stats.idle, 1);
    ptc_buf_dispose(&q1.body);
    ptc_buf_dispose(&q2.body);
    tctx_dispose_seen(&t);
}

/* The second request on each connection is dropped unanswered (the server closes it as the
 * request arrives: the race a pooled connection can lose). */
static void h_drop_second(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    unsigned on_conn = 0;
    for (size_t i = 0; i < t->seen_cnt; i++) {
        on_conn += t->seen[i].conn_no == r->conn_no ? 1 : 0;
    }
    if (on_conn == 2) {
        ptc_httpsrv_abort(c);
        return;
    }
    h_echo_body(t, c, r);
}

typedef struct retry {
    rq_t q[3];
} retry_t;

static void retry_next(rq_t *q)
{
    retry_t *rt = q->arg;
    size_t i = (size_t)(q - rt->q) + 1;
    if (i == 3) {
        tctx_shutdown(q->t);
        return;
    }
    ptc_http_client_req_opts_t o;
    if (i == 1) {
        o = rq_opts(&rt->q[1], "GET", "/again");
    } else {
        o = rq_opts(&rt->q[2], "POST", "/not-idempotent");
        o.body = ptc_slice_str("data");
    }
    rq_start(&rt->q[i], &o);
}

static void test_retry_on_reused_connection(void)
{
    tctx_t t;
    tctx_init(&t, h_drop_second, false, NULL);
    retry_t rt;
    for (int i = 0; i < 3; i++) {
        rq_init(&rt.q[i], &t, retry_next);
        rt.q[i].arg = &rt;
    }
    rq_get(&rt.q[0], "/first");
    tctx_run(&t);
    CHECK_EQ(rt.q[0].dones, 1);
    /* The GET was lost on the reused connection and sent again on a new one. */
    CHECK_EQ(rt.q[1].dones, 1);
    CHECK_EQ(rt.q[1].errors, 0);
    CHECK(!rt.q[1].reused);
    /* The POST is not sent twice. */
    CHECK_EQ(rt.q[2].dones, 0);
    CHECK_EQ(rt.q[2].errors, 1);
    CHECK(rt.q[2].err == UV_EOF || rt.q[2].err == UV_ECONNRESET);
    CHECK_EQ(rt.q[2].phase, PTC_HTTP_CLIENT_PHASE_HEAD);
    CHECK_CONTAINS(rt.q[2].detail, "before responding");
    CHECK_EQ(t.stats.retries, 1);
    CHECK_EQ(t.accepts, 2);
    CHECK_EQ(t.seen_cnt, 4);
    CHECK_STREQ(t.seen[2].target, "/again");
    CHECK_EQ(t.seen[2].conn_no, 2);
    CHECK_STREQ(t.seen[3].method, "POST");
    for (int i = 0; i < 3; i++) {
        ptc_buf_dispose(&rt.q[i].body);
    }
    tctx_dispose_seen(&t);
}

/* ---- Expect: 100-continue ---- */

static void h_continue_head(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    if (strcmp(r->target, "/with100") == 0 && strstr(r->headers, "expect: 100-continue\n")) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ptc_httpsrv_write(c, cont, sizeof(cont) - 1);
    }
}

typedef struct expect {
    rq_t q[2];
    uint64_t t0[2];
    uint64_t ms[2];
} expect_t;

static void expect_next(rq_t *q)
{
    expect_t *e = q->arg;
    size_t i = (size_t)(q - e->q);
    e->ms[i] = (uv_hrtime() - e->t0[i]) / 1000000;
    if (i == 1) {
        tctx_shutdown(q->t);
        return;
    }
    ptc_http_client_req_opts_t o = rq_opts(&e->q[1], "PUT", "/no100");
    o.expect_continue = true;
    o.body_mode = PTC_HTTP_CLIENT_BODY_LENGTH;
    o.content_length = 6;
    e->t0[1] = uv_hrtime();
    rq_start(&e->q[1], &o);
    CHECK_OK(ptc_http_client_req_write(e->q[1].req, "second", 6));
}

static void test_expect_continue(void)
{
    ptc_http_client_opts_t co = {.expect_timeout_ms = 400};
    tctx_t t;
    tctx_init(&t, h_echo_body, false, &co);
    t.head_handler = h_continue_head;
    expect_t e;
    memset(&e, 0, sizeof(e));
    for (int i = 0; i < 2; i++) {
        rq_init(&e.q[i], &t, expect_next);
        e.q[i].arg = &e;
    }
    ptc_http_client_req_opts_t o = rq_opts(&e.q[0], "POST", "/with100");
    /* A forwarded Expect header works as the flag does. */
    ptc_http_header_t expect_hdr = {ptc_slice_str("expect"), ptc_slice_str("100-continue")};
    o.headers = &expect_hdr;
    o.header_cnt = 1;
    o.body = ptc_slice_str("first");
    e.t0[0] = uv_hrtime();
    rq_start(&e.q[0], &o);
    tctx_run(&t);
    CHECK_EQ(e.q[0].dones, 1);
    CHECK_EQ(e.q[0].status, 200); /* the 100 is not reported as a head */
    CHECK_EQ(e.q[0].heads, 1);
    check_body(&e.q[0], "first");
    CHECK_LT(e.ms[0], 350);
    /* Without a 100 the body goes after the expect timeout. */
    CHECK_EQ(e.q[1].dones, 1);
    check_body(&e.q[1], "second");
    CHECK_GE(e.ms[1], 350);
    CHECK_CONTAINS(t.seen[0].headers, "expect: 100-continue\n");
    CHECK(strstr(t.seen[0].headers, "Expect:") == NULL); /* not twice */
    CHECK_CONTAINS(t.seen[1].headers, "Expect: 100-continue\n");
    for (int i = 0; i < 2; i++) {
        ptc_buf_dispose(&e.q[i].body);
    }
    tctx_dispose_seen(&t);
}

/* ---- upgrade to a raw pipe ---- */

static void h_upgrade(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    (void)r;
    /* The head and the first bytes of the new protocol in one write. */
    static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                               "Upgrade: echo\r\n\r\nHELLO";
    ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
    ptc_httpsrv_echo(c);
}

typedef struct up {
    rq_t q;
    ptc_http_client_pipe_t *pipe;
    ptc_buf_t got;
    int reads;
    int closes;
    int drains;
    int status;
    bool sent;
} up_t;

static void up_on_read(ptc_http_client_pipe_t *p, int status, ptc_slice_t data)
{
    up_t *u = ptc_http_client_pipe_data(p);
    u->reads++;
    if (status != 0) {
        u->status = status;
        return;
    }
    ptc_buf_append(&u->got, data.ptr, data.len);
    if (!u->sent && u->got.len >= 5) {
        /* The bytes after the head came first. */
        CHECK_MEMEQ(ptc_buf_data(&u->got), "HELLO", 5);
        u->sent = true;
        CHECK_OK(ptc_http_client_pipe_write(p, "ping", 4));
        CHECK(!ptc_http_client_pipe_is_full(p));
    }
    if (u->got.len == 9) {
        CHECK_MEMEQ(ptc_buf_data(&u->got), "HELLOping", 9);
        ptc_http_client_pipe_shutdown(p);
        CHECK_EQ(ptc_http_client_pipe_write(p, "x", 1), PTC_ECLOSED);
    }
}

static void up_on_close(ptc_http_client_pipe_t *p)
{
    up_t *u = ptc_http_client_pipe_data(p);
    u->closes++;
    tctx_shutdown(u->q.t);
}

static void up_on_upgrade(ptc_http_client_req_t *r, const ptc_http_head_t *h,
                          ptc_http_client_pipe_t *p)
{
    up_t *u = ptc_http_client_req_data(r);
    u->q.upgrades++;
    u->q.status = h->status;
    u->pipe = p;
    CHECK_EQ(ptc_http_client_req_phase(r), PTC_HTTP_CLIENT_PHASE_DONE);
    ptc_http_client_pipe_opts_t po = {.on_read = up_on_read, .on_close = up_on_close, .data = u};
    CHECK_OK(ptc_http_client_pipe_start(p, &po));
    CHECK_EQ(ptc_http_client_pipe_start(p, &po), PTC_ESTATE);
    CHECK_EQ(u->reads, 0); /* never from within start */
}

static void run_upgrade(bool https)
{
    tctx_t t;
    tctx_init(&t, h_upgrade, https, NULL);
    up_t u;
    memset(&u, 0, sizeof(u));
    ptc_buf_init(&u.got);
    rq_init(&u.q, &t, NULL);
    ptc_http_client_req_opts_t o = rq_opts(&u.q, "GET", "/ws");
    ptc_http_header_t hdrs[] = {{ptc_slice_str("Connection"), ptc_slice_str("Upgrade")},
                                {ptc_slice_str("Upgrade"), ptc_slice_str("echo")}};
    o.headers = hdrs;
    o.header_cnt = 2;
    o.https = https;
    o.server_name = "localhost";
    o.on_upgrade = up_on_upgrade;
    o.data = &u;
    rq_start(&u.q, &o);
    tctx_run(&t);
    CHECK_EQ(u.q.upgrades, 1);
    CHECK_EQ(u.q.heads, 0);
    CHECK_EQ(u.q.dones + u.q.errors, 0);
    CHECK_EQ(u.q.status, 101);
    CHECK_EQ(u.closes, 1);
    CHECK_EQ(u.got.len, 9);
    CHECK_CONTAINS(t.seen[0].headers, "Upgrade: echo\n");
    ptc_buf_dispose(&u.got);
    tctx_dispose_seen(&t);
}

static void test_upgrade_pipe(void)
{
    run_upgrade(false);
}

static void test_upgrade_pipe_https(void)
{
    run_upgrade(true);
}

/* ---- cancel and close ---- */

static void cancel_on_body(ptc_http_client_req_t *r, ptc_slice_t data)
{
    rq_t *q = ptc_http_client_req_data(r);
    q->body_cbs++;
    ptc_buf_append(&q->body, data.ptr, data.len);
    ptc_http_client_req_cancel(r);
    ptc_http_client_req_cancel(r); /* idempotent */
    CHECK_EQ(ptc_http_client_req_write(r, "x", 1), PTC_ECLOSED);
    CHECK_EQ(q->errors, 0); /* never from within the call */
}

static void cancel_tick(tctx_t *t)
{
    if (ptc_httpsrv_open_conns(t->srv) == 0) {
        uv_timer_stop(&t->timer);
        tctx_shutdown(t);
    }
}

static void cancel_then(rq_t *q)
{
    /* Wait until the server has seen the connection go. */
    tctx_every(q->t, 5, cancel_tick);
}

static void test_cancel_mid_response(void)
{
    tctx_t t;
    tctx_init(&t, h_partial, false, NULL);
    rq_t q;
    rq_init(&q, &t, cancel_then);
    ptc_http_client_req_opts_t o = rq_opts(&q, "GET", "/partial");
    o.on_body = cancel_on_body;
    rq_start(&q, &o);
    tctx_run(&t);
    CHECK_EQ(q.heads, 1);
    CHECK_EQ(q.body_cbs, 1);
    CHECK_EQ(q.dones, 0);
    CHECK_EQ(q.errors, 1);
    CHECK_EQ(q.err, UV_ECANCELED);
    CHECK_EQ(q.phase, PTC_HTTP_CLIENT_PHASE_BODY);
    CHECK_EQ(t.stats.idle, 0);
    CHECK_EQ(t.stats.conns, 0);
    ptc_buf_dispose(&q.body);
    tctx_dispose_seen(&t);
}

/* A request cancelled while it is still connecting. */
static void test_cancel_while_connecting(void)
{
    uint16_t port;
    int filler;
    int lfd = ptc_test_blackhole(&port, &filler);
    tctx_t t;
    tctx_init(&t, h_hello, false, NULL);
    rq_t q;
    rq_init(&q, &t, then_shutdown);
    ptc_http_client_req_opts_t o = rq_opts(&q, "GET", "/");
    o.port = port;
    rq_start(&q, &o);
    ptc_http_client_req_cancel(q.req);
    CHECK_EQ(q.errors, 0);
    tctx_run(&t);
    CHECK_EQ(q.errors, 1);
    CHECK_EQ(q.err, UV_ECANCELED);
    CHECK_EQ(q.phase, PTC_HTTP_CLIENT_PHASE_CONNECT);
    close(filler);
    close(lfd);
    tctx_dispose_seen(&t);
}

/* ---- held input: response bytes read with a piece the caller paused at ---- */

/*
 * h_chunked answers in one write, so the whole response arrives in one read. A request that
 * pauses at its head or first body piece leaves the rest of that read held by the client,
 * which delivers it from the connection's timer after a resume. These cases end the exchange
 * during that delivery: by completing it (the connection goes back to the pool and is taken
 * at once by the next request, from on_done), or by cancelling it, while paused or from
 * inside a callback.
 */
typedef struct held {
    rq_t q[2];
    uv_timer_t timer;
    ptc_http_client_req_t *paused; /* what the timer resumes or cancels */
    bool cancel_paused;            /* the timer cancels instead of resuming */
    bool cancel_in_body;           /* on_body cancels at the second piece */
    int resumes;
} held_t;

static void held_tick(uv_timer_t *timer)
{
    held_t *h = timer->data;
    ptc_http_client_req_t *r = h->paused;
    h->paused = NULL;
    if (h->cancel_paused) {
        ptc_http_client_req_cancel(r);
    } else {
        h->resumes++;
        ptc_http_client_req_resume(r);
    }
}

static void held_pause(rq_t *q, ptc_http_client_req_t *r)
{
    held_t *h = q->arg;
    ptc_http_client_req_pause(r);
    h->paused = r;
    CHECK_OK(uv_timer_start(&h->timer, held_tick, 0, 0));
}

static void held_on_head(ptc_http_client_req_t *r, const ptc_http_head_t *head)
{
    rq_on_head(r, head);
    held_pause(ptc_http_client_req_data(r), r);
}

/* Pauses at the first piece; cancels at the second when told to. */
static void held_on_body(ptc_http_client_req_t *r, ptc_slice_t data)
{
    rq_t *q = ptc_http_client_req_data(r);
    held_t *h = q->arg;
    rq_on_body(r, data);
    if (q->body_cbs == 1) {
        held_pause(q, r);
    } else if (q->body_cbs == 2 && h->cancel_in_body) {
        ptc_http_client_req_cancel(r);
        CHECK_EQ(q->errors, 0); /* never from within the call */
    }
}

static void held_init(held_t *h, tctx_t *t)
{
    memset(h, 0, sizeof(*h));
    CHECK_OK(uv_timer_init(&t->loop, &h->timer));
    h->timer.data = h;
}

static void held_start(held_t *h, int i, const char *target, bool pause_at_head)
{
    ptc_http_client_req_opts_t o = rq_opts(&h->q[i], "GET", target);
    o.on_body = held_on_body;
    if (pause_at_head) {
        o.on_head = held_on_head;
    }
    rq_start(&h->q[i], &o);
}

static void held_second(rq_t *q)
{
    held_start(q->arg, 1, "/two", false);
}

static void held_shutdown(rq_t *q)
{
    held_t *h = q->arg;
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
    tctx_shutdown(q->t);
}

/* The response completes from held input: the connection is pooled (its held input dropped)
 * and on_done's next request reuses it before the delivery has returned. */
static void test_resume_completes_from_held_input(void)
{
    tctx_t t;
    tctx_init(&t, h_chunked, false, NULL);
    held_t h;
    held_init(&h, &t);
    rq_init(&h.q[0], &t, held_second);
    rq_init(&h.q[1], &t, held_shutdown);
    h.q[0].arg = &h;
    h.q[1].arg = &h;
    held_start(&h, 0, "/one", false);
    tctx_run(&t);
    CHECK_EQ(h.resumes, 2);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(h.q[i].dones, 1);
        CHECK_EQ(h.q[i].errors, 0);
        CHECK_EQ(h.q[i].body_cbs, 3);
        check_body(&h.q[i], "hello world!");
        ptc_buf_dispose(&h.q[i].body);
    }
    CHECK(h.q[1].reused);
    CHECK_EQ(t.accepts, 1);
    CHECK_EQ(t.seen_cnt, 2);
    CHECK_EQ(t.stats.connects, 1);
    CHECK_EQ(t.stats.idle, 1);
    tctx_dispose_seen(&t);
}

static void held_cancelled_second(rq_t *q)
{
    held_t *h = q->arg;
    h->cancel_paused = false;
    h->cancel_in_body = true;
    held_start(h, 1, "/two", false);
}

static void held_cancelled_done(rq_t *q)
{
    held_t *h = q->arg;
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
    cancel_then(q);
}

/* A request paused with input held is cancelled from the timer (the relay's client went
 * away); then one is cancelled from on_body while its held input is being delivered. */
static void test_cancel_with_held_input(void)
{
    tctx_t t;
    tctx_init(&t, h_chunked, false, NULL);
    held_t h;
    held_init(&h, &t);
    rq_init(&h.q[0], &t, held_cancelled_second);
    rq_init(&h.q[1], &t, held_cancelled_done);
    h.q[0].arg = &h;
    h.q[1].arg = &h;
    h.cancel_paused = true;
    held_start(&h, 0, "/one", true);
    tctx_run(&t);
    CHECK_EQ(h.q[0].heads, 1);
    CHECK_EQ(h.q[0].body_cbs, 0);
    CHECK_EQ(h.q[0].errors, 1);
    CHECK_EQ(h.q[0].err, UV_ECANCELED);
    CHECK_EQ(h.q[0].phase, PTC_HTTP_CLIENT_PHASE_BODY);
    /* The second was resumed after its first piece and cancelled at the second. */
    CHECK_EQ(h.resumes, 1);
    CHECK_EQ(h.q[1].body_cbs, 2);
    check_body(&h.q[1], "hello ");
    CHECK_EQ(h.q[1].errors, 1);
    CHECK_EQ(h.q[1].err, UV_ECANCELED);
    CHECK_EQ(h.q[0].dones + h.q[1].dones, 0);
    CHECK_EQ(t.accepts, 2);
    CHECK_EQ(t.stats.idle, 0);
    CHECK_EQ(t.stats.conns, 0);
    ptc_buf_dispose(&h.q[0].body);
    ptc_buf_dispose(&h.q[1].body);
    tctx_dispose_seen(&t);
}

typedef struct inflight {
    rq_t q[3];
    int closed;
    tctx_t *t;
} inflight_t;

static void inflight_client_closed(void *data)
{
    inflight_t *f = data;
    f->closed++;
    f->t->client_closed++;
    ptc_httpsrv_close(f->t->srv);
}

static void inflight_on_body(ptc_http_client_req_t *r, ptc_slice_t data)
{
    rq_t *q = ptc_http_client_req_data(r);
    inflight_t *f = q->arg;
    q->body_cbs++;
    ptc_buf_append(&q->body, data.ptr, data.len);
    ptc_http_client_t *c = q->t->client;
    ptc_http_client_get_stats(c, &q->t->stats);
    ptc_http_client_close(c, inflight_client_closed, f);
    ptc_http_client_close(c, NULL, NULL); /* idempotent */
    rq_t other;
    rq_init(&other, q->t, NULL);
    ptc_http_client_req_opts_t o = rq_opts(&other, "GET", "/late");
    ptc_http_client_req_t *late = NULL;
    CHECK_EQ(ptc_http_client_request(c, &o, &late), PTC_ECLOSED);
    CHECK_NULL(late);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(f->q[i].errors, 0);
    }
}

/* "/partial" is answered once "/silent" has arrived too, so that the close finds each
 * request in a known phase. */
static void h_inflight(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    if (strcmp(r->target, "/partial") == 0) {
        if (t->seen_cnt < 2) {
            t->arg = c;
            return;
        }
        h_partial(t, c, r);
    } else if (t->arg != NULL) {
        h_partial(t, t->arg, r);
    }
}

static void test_close_client_in_flight(void)
{
    uint16_t port;
    int filler;
    int lfd = ptc_test_blackhole(&port, &filler);
    tctx_t t;
    tctx_init(&t, h_inflight, true, NULL);
    inflight_t f;
    memset(&f, 0, sizeof(f));
    f.t = &t;
    for (int i = 0; i < 3; i++) {
        rq_init(&f.q[i], &t, NULL);
        f.q[i].arg = &f;
    }
    /* Connecting (the SYN is dropped), waiting for a head, and reading a body, over TLS. */
    ptc_http_client_req_opts_t o = rq_opts(&f.q[0], "GET", "/");
    o.port = port;
    rq_start(&f.q[0], &o);
    o = rq_opts(&f.q[1], "GET", "/silent");
    o.https = true;
    o.server_name = "localhost";
    rq_start(&f.q[1], &o);
    o = rq_opts(&f.q[2], "GET", "/partial");
    o.https = true;
    o.server_name = "localhost";
    o.on_body = inflight_on_body;
    rq_start(&f.q[2], &o);
    ptc_test_loop_run(&t.loop, 20000, "close with requests in flight");
    ptc_test_loop_finish(&t.loop);
    CHECK_EQ(f.closed, 1);
    CHECK_EQ(t.stats.requests, 3);
    static const ptc_http_client_phase_t phases[] = {
        PTC_HTTP_CLIENT_PHASE_CONNECT, PTC_HTTP_CLIENT_PHASE_HEAD, PTC_HTTP_CLIENT_PHASE_BODY};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(f.q[i].errors, 1);
        CHECK_EQ(f.q[i].dones, 0);
        CHECK_EQ(f.q[i].err, PTC_ECLOSED);
        CHECK_EQ(f.q[i].phase, phases[i]);
        ptc_buf_dispose(&f.q[i].body);
    }
    ptc_tls_config_unref(t.srv_tls);
    ptc_tls_config_unref(t.cli_tls);
    ptc_certgen_dispose(&t.leaf);
    ptc_certgen_dispose(&t.ca);
    close(filler);
    close(lfd);
    tctx_dispose_seen(&t);
}

/* Closing the client closes a pipe that is still open. */
static void pipe_kept_on_upgrade(ptc_http_client_req_t *r, const ptc_http_head_t *h,
                                 ptc_http_client_pipe_t *p)
{
    (void)h;
    up_t *u = ptc_http_client_req_data(r);
    u->q.upgrades++;
    ptc_http_client_pipe_opts_t po = {.on_read = up_on_read, .on_close = up_on_close, .data = u};
    CHECK_OK(ptc_http_client_pipe_start(p, &po));
    ptc_http_client_pipe_read_stop(p);
    ptc_http_client_pipe_read_stop(p);
    u->sent = true; /* up_on_read must not answer */
    ptc_http_client_close(u->q.t->client, on_client_closed, u->q.t);
}

static void test_close_client_with_pipe(void)
{
    tctx_t t;
    tctx_init(&t, h_upgrade, false, NULL);
    up_t u;
    memset(&u, 0, sizeof(u));
    ptc_buf_init(&u.got);
    rq_init(&u.q, &t, NULL);
    ptc_http_client_req_opts_t o = rq_opts(&u.q, "GET", "/ws");
    ptc_http_header_t hdrs[] = {{ptc_slice_str("Connection"), ptc_slice_str("Upgrade")},
                                {ptc_slice_str("Upgrade"), ptc_slice_str("echo")}};
    o.headers = hdrs;
    o.header_cnt = 2;
    o.on_upgrade = pipe_kept_on_upgrade;
    o.data = &u;
    rq_start(&u.q, &o);
    ptc_test_loop_run(&t.loop, 20000, "close with a pipe");
    ptc_test_loop_finish(&t.loop);
    CHECK_EQ(u.q.upgrades, 1);
    CHECK_EQ(u.closes, 1);
    CHECK_EQ(u.reads, 0); /* stopped before anything was delivered */
    CHECK_EQ(t.client_closed, 1);
    ptc_buf_dispose(&u.got);
    tctx_dispose_seen(&t);
}

/* The server ends a pipe: its last bytes, then UV_EOF; stop and start before delivery. */
static void h_upgrade_bye(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    (void)r;
    static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                               "Upgrade: bye\r\n\r\nBYE";
    ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
    ptc_httpsrv_end(c);
}

static void bye_on_read(ptc_http_client_pipe_t *p, int status, ptc_slice_t data)
{
    up_t *u = ptc_http_client_pipe_data(p);
    u->reads++;
    if (status == 0) {
        ptc_buf_append(&u->got, data.ptr, data.len);
        return;
    }
    u->status = status;
    ptc_http_client_pipe_close(p);
    ptc_http_client_pipe_close(p); /* idempotent */
}

static void bye_on_upgrade(ptc_http_client_req_t *r, const ptc_http_head_t *h,
                           ptc_http_client_pipe_t *p)
{
    (void)h;
    up_t *u = ptc_http_client_req_data(r);
    u->q.upgrades++;
    ptc_http_client_pipe_read_start(p); /* not started: nothing happens */
    ptc_http_client_pipe_opts_t po = {.on_read = bye_on_read, .on_close = up_on_close, .data = u};
    CHECK_OK(ptc_http_client_pipe_start(p, &po));
    ptc_http_client_pipe_read_stop(p);
    ptc_http_client_pipe_read_start(p);
    ptc_http_client_pipe_read_start(p);
    CHECK_EQ(u->reads, 0);
}

static void test_upgrade_server_closes(void)
{
    tctx_t t;
    tctx_init(&t, h_upgrade_bye, false, NULL);
    up_t u;
    memset(&u, 0, sizeof(u));
    ptc_buf_init(&u.got);
    rq_init(&u.q, &t, NULL);
    ptc_http_client_req_opts_t o = rq_opts(&u.q, "GET", "/bye");
    ptc_http_header_t hdrs[] = {{ptc_slice_str("Connection"), ptc_slice_str("upgrade")},
                                {ptc_slice_str("Upgrade"), ptc_slice_str("bye")}};
    o.headers = hdrs;
    o.header_cnt = 2;
    o.on_upgrade = bye_on_upgrade;
    o.data = &u;
    rq_start(&u.q, &o);
    tctx_run(&t);
    CHECK_EQ(u.q.upgrades, 1);
    CHECK_EQ(u.closes, 1);
    CHECK_EQ(u.status, UV_EOF);
    CHECK_EQ(u.got.len, 3);
    CHECK_MEMEQ(ptc_buf_data(&u.got), "BYE", 3);
    ptc_buf_dispose(&u.got);
    tctx_dispose_seen(&t);
}

/* An https request to a plain HTTP server: the server drops the connection during the TLS
 * handshake. */
static void test_tls_peer_closes_in_handshake(void)
{
    tctx_t t;
    tctx_init(&t, h_hello, false, NULL);
    rq_t q;
    rq_init(&q, &t, then_shutdown);
    ptc_http_client_req_opts_t o = rq_opts(&q, "GET", "/");
    o.https = true;
    o.no_verify = true;
    rq_start(&q, &o);
    tctx_run(&t);
    CHECK_EQ(q.errors, 1);
    CHECK(q.err == UV_EOF || q.err == UV_ECONNRESET || q.err == PTC_ETLS);
    CHECK_EQ(q.phase, PTC_HTTP_CLIENT_PHASE_TLS);
    CHECK_CONTAINS(q.detail, "TLS handshake");
    tctx_dispose_seen(&t);
}

/* Cancelling a request whose body is stuck in the output queue: a server that accepts but
 * never reads. The pending writes are cancelled and everything is freed. */
typedef struct stuck {
    upload_t u;
    uv_tcp_t *listener;
    uv_tcp_t *accepted;
    bool was_full;
} stuck_t;

static void stuck_on_connection(uv_stream_t *server, int status)
{
    stuck_t *st = server->data;
    CHECK_OK(status);
    CHECK_OK(ptc_net_accept(server, &st->accepted));
}

static void stuck_pump(upload_t *u)
{
    uint8_t piece[UPLOAD_PIECE];
    memset(piece, 's', sizeof(piece));
    while (!ptc_http_client_req_is_full(u->q.req)) {
        CHECK_OK(ptc_http_client_req_write(u->q.req, piece, sizeof(piece)));
        u->sent += sizeof(piece);
    }
    u->full_stops++;
}

static void stuck_on_drain(ptc_http_client_req_t *r)
{
    upload_t *u = ptc_http_client_req_data(r);
    u->q.drains++;
    stuck_pump(u);
}

static void stuck_tick(tctx_t *t)
{
    stuck_t *st = t->arg;
    /* Past 1 MiB, with the queue above its high-water mark: bytes wait to be written. */
    if (st->u.sent < 1024 * 1024 || !ptc_http_client_req_is_full(st->u.q.req)) {
        return;
    }
    uv_timer_stop(&t->timer);
    st->was_full = true;
    ptc_http_client_req_cancel(st->u.q.req);
}

static void stuck_done(rq_t *q)
{
    stuck_t *st = q->t->arg;
    uv_close((uv_handle_t *)st->listener, ptc_net_free_handle_cb);
    if (st->accepted != NULL) {
        uv_close((uv_handle_t *)st->accepted, ptc_net_free_handle_cb);
    }
    tctx_shutdown(q->t);
}

static void test_cancel_with_writes_pending(void)
{
    tctx_t t;
    tctx_init(&t, h_hello, false, NULL);
    stuck_t st;
    memset(&st, 0, sizeof(st));
    t.arg = &st;
    CHECK_OK(ptc_net_listen_tcp(&t.loop, "127.0.0.1:0", 8, stuck_on_connection, &st, &st.listener));
    rq_init(&st.u.q, &t, stuck_done);
    ptc_http_client_req_opts_t o = rq_opts(&st.u.q, "POST", "/stuck");
    o.port = ptc_test_tcp_port(st.listener);
    o.body_mode = PTC_HTTP_CLIENT_BODY_CHUNKED;
    o.on_drain = stuck_on_drain;
    o.data = &st.u;
    rq_start(&st.u.q, &o);
    stuck_pump(&st.u);
    tctx_every(&t, 20, stuck_tick);
    tctx_run(&t);
    CHECK(st.was_full);
    CHECK_NOT_NULL(st.accepted);
    CHECK_EQ(st.u.q.errors, 1);
    CHECK_EQ(st.u.q.err, UV_ECANCELED);
    CHECK_EQ(st.u.q.phase, PTC_HTTP_CLIENT_PHASE_SEND);
    tctx_dispose_seen(&t);
}

/* ---- API misuse: errors, and no callback ---- */

static void test_request_errors(void)
{
    tctx_t t;
    tctx_init(&t, h_hello, false, NULL);
    rq_t q;
    rq_init(&q, &t, NULL);
    ptc_http_client_req_t *r = NULL;
    ptc_http_client_req_opts_t o = rq_opts(&q, "GET", "/");
    ptc_http_header_t cl = {ptc_slice_str("Content-Length"), ptc_slice_str("3")};
    o.headers = &cl;
    o.header_cnt = 1;
    CHECK_EQ(ptc_http_client_request(t.client, &o, &r), UV_EINVAL);
    ptc_http_header_t te = {ptc_slice_str("transfer-encoding"), ptc_slice_str("chunked")};
    o.headers = &te;
    CHECK_EQ(ptc_http_client_request(t.client, &o, &r), UV_EINVAL);
    ptc_http_header_t bad = {ptc_slice_str("X-Bad"), ptc_slice_str("a\r\nInjected: 1")};
    o.headers = &bad;
    CHECK_EQ(ptc_http_client_request(t.client, &o, &r), PTC_EHTTP);
    o = rq_opts(&q, "GE T", "/");
    CHECK_EQ(ptc_http_client_request(t.client, &o, &r), PTC_EHTTP);
    o = rq_opts(&q, "GET", "/a b");
    CHECK_EQ(ptc_http_client_request(t.client, &o, &r), PTC_EHTTP);
    o = rq_opts(&q, "GET", "/");
    o.host = "evil\r\nhost";
    CHECK_EQ(ptc_http_client_request(t.client, &o, &r), UV_EINVAL);
    o = rq_opts(&q, "GET", "/");
    o.on_error = NULL;
    CHECK_EQ(ptc_http_client_request(t.client, &o, &r), UV_EINVAL);
    o = rq_opts(&q, "GET", "/");
    o.port = 0;
    CHECK_EQ(ptc_http_client_request(t.client, &o, &r), UV_EINVAL);
    o = rq_opts(&q, "POST", "/");
    o.body = ptc_slice_str("x");
    o.body_mode = PTC_HTTP_CLIENT_BODY_CHUNKED;
    CHECK_EQ(ptc_http_client_request(t.client, &o, &r), UV_EINVAL);
    char longv[70000];
    memset(longv, 'v', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    ptc_http_header_t big = {ptc_slice_str("X-Long"), ptc_slice_str(longv)};
    o = rq_opts(&q, "GET", "/");
    o.headers = &big;
    o.header_cnt = 1;
    CHECK_EQ(ptc_http_client_request(t.client, &o, &r), PTC_ELIMIT);
    CHECK_NULL(r);
    /* A streamed body: writes beyond the length and writes without a body are refused. */
    o = rq_opts(&q, "GET", "/");
    CHECK_OK(ptc_http_client_request(t.client, &o, &r));
    CHECK_EQ(ptc_http_client_req_write(r, "x", 1), PTC_ESTATE);
    CHECK_EQ(ptc_http_client_req_end(r), PTC_ESTATE);
    ptc_http_client_req_cancel(r);
    rq_t q2;
    rq_init(&q2, &t, then_shutdown);
    o = rq_opts(&q2, "POST", "/");
    o.body_mode = PTC_HTTP_CLIENT_BODY_LENGTH;
    o.content_length = 3;
    CHECK_OK(ptc_http_client_request(t.client, &o, &r));
    CHECK_EQ(ptc_http_client_req_write(r, "abcd", 4), PTC_ELIMIT);
    CHECK_EQ(ptc_http_client_req_write(r, "", 0), UV_EINVAL);
    CHECK_OK(ptc_http_client_req_write(r, "abc", 3));
    CHECK_OK(ptc_http_client_req_end(r));
    CHECK_EQ(q.errors + q2.errors + q.dones + q2.dones, 0);
    tctx_run(&t);
    CHECK_EQ(q.errors, 1);
    CHECK_EQ(q.err, UV_ECANCELED);
    CHECK_EQ(q2.dones, 1);
    CHECK_EQ(t.seen_cnt, 1);
    CHECK_EQ(t.seen[0].body.len, 3);
    ptc_buf_dispose(&q2.body);
    tctx_dispose_seen(&t);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_reuse_rules),
    PTC_TEST(test_pool_server_closes_idle),
    PTC_TEST(test_pool_max_idle),
    PTC_TEST(test_retry_on_reused_connection),
    PTC_TEST(test_expect_continue),
    PTC_TEST(test_upgrade_pipe),
    PTC_TEST(test_upgrade_pipe_https),
    PTC_TEST(test_cancel_mid_response),
    PTC_TEST(test_cancel_while_connecting),
    PTC_TEST(test_resume_completes_from_held_input),
    PTC_TEST(test_cancel_with_held_input),
    PTC_TEST(test_close_client_in_flight),
    PTC_TEST(test_close_client_with_pipe),
    PTC_TEST(test_upgrade_server_closes),
    PTC_TEST(test_tls_peer_closes_in_handshake),
    PTC_TEST(test_cancel_with_writes_pending),
    PTC_TEST(test_request_errors),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
