/* SPDX-License-Identifier: MIT */
/*
 * What the common/http_client unit tests share (http_client_test.c, http_client_pool_test.c):
 * a loop with the loopback test server (tests/support/httpsrv) and a client, the record of
 * each request's callbacks, and the server's handlers. Everything is static: each test
 * program has its own copy.
 */
#ifndef PTC_TESTS_UNIT_COMMON_HTTP_CLIENT_HARNESS_H
#define PTC_TESTS_UNIT_COMMON_HTTP_CLIENT_HARNESS_H

#include "common/http_client.h"
#include "common/net.h"
#include "tests/support/certgen.h"
#include "tests/support/httpsrv.h"
#include "tests/support/loop.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixture ---- */

typedef struct tctx tctx_t;
typedef void (*handler_fn)(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r);

typedef struct seen {
    char method[16];
    char target[256];
    char headers[4096];
    ptc_buf_t body;
    ptc_http_body_t framing;
    unsigned conn_no;
} seen_t;

struct tctx {
    uv_loop_t loop;
    ptc_httpsrv_t *srv;
    ptc_http_client_t *client;
    handler_fn handler;
    handler_fn head_handler;
    seen_t seen[16];
    size_t seen_cnt;
    uint16_t port;
    unsigned accepts; /* copied when the test shuts down */
    ptc_http_client_stats_t stats;
    int client_closed;
    uv_timer_t timer; /* for tests that wait or poll */
    bool timer_used;
    void (*tick)(tctx_t *t);
    void *arg;
    /* TLS material, when used */
    ptc_certgen_cert_t ca;
    ptc_certgen_cert_t leaf;
    ptc_tls_config_t *srv_tls;
    ptc_tls_config_t *cli_tls;
};

static inline void srv_on_request(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    tctx_t *t = ptc_httpsrv_data(ptc_httpsrv_conn_server(c));
    CHECK_LT(t->seen_cnt, 16);
    seen_t *s = &t->seen[t->seen_cnt++];
    snprintf(s->method, sizeof(s->method), "%s", r->method);
    snprintf(s->target, sizeof(s->target), "%s", r->target);
    snprintf(s->headers, sizeof(s->headers), "%s", r->headers);
    ptc_buf_init(&s->body);
    if (r->body_len > 0) {
        ptc_buf_append(&s->body, r->body, r->body_len);
    }
    s->framing = r->framing;
    s->conn_no = r->conn_no;
    if (t->handler != NULL) {
        t->handler(t, c, r);
    }
}

static inline void srv_on_head(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    tctx_t *t = ptc_httpsrv_data(ptc_httpsrv_conn_server(c));
    if (t->head_handler != NULL) {
        t->head_handler(t, c, r);
    }
}

static inline void tctx_init(tctx_t *t, handler_fn handler, bool https,
                             const ptc_http_client_opts_t *co)
{
    memset(t, 0, sizeof(*t));
    CHECK_OK(uv_loop_init(&t->loop));
    t->handler = handler;
    ptc_http_client_opts_t copts = {0};
    if (co != NULL) {
        copts = *co;
    }
    if (https) {
        static const char *const sans[] = {"DNS:localhost", "IP:127.0.0.1", NULL};
        ptc_certgen_ca(NULL, "Client Test CA", &t->ca);
        ptc_certgen_opts_t lo = {.sans = sans};
        ptc_certgen_leaf(&t->ca, NULL, "server", &lo, &t->leaf);
        ptc_tls_certs_t *certs = ptc_tls_certs_new();
        ptc_tls_err_t err;
        CHECK_OK(ptc_tls_certs_add_pem(certs, t->leaf.cert_pem, strlen(t->leaf.cert_pem),
                                       t->leaf.key_pem, strlen(t->leaf.key_pem), true, &err));
        ptc_tls_server_opts_t so = {.certs = certs};
        CHECK_OK(ptc_tls_server_config_new(&so, &t->srv_tls, &err));
        ptc_tls_certs_unref(certs);
        ptc_tls_client_opts_t cl = {.ca_pem = t->ca.cert_pem, .ca_pem_len = strlen(t->ca.cert_pem)};
        CHECK_OK(ptc_tls_client_config_new(&cl, &t->cli_tls, &err));
        if (copts.tls == NULL) {
            copts.tls = t->cli_tls;
        }
    }
    ptc_httpsrv_opts_t so = {
        .tls = t->srv_tls, .on_head = srv_on_head, .on_request = srv_on_request, .data = t};
    t->srv = ptc_httpsrv_start(&t->loop, &so);
    t->port = ptc_httpsrv_port(t->srv);
    CHECK_OK(ptc_http_client_new(&t->loop, &copts, &t->client));
}

static inline void on_client_closed(void *data)
{
    tctx_t *t = data;
    t->client_closed++;
}

static inline void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

/* Records the counters, then closes the client, the server and the test timer. */
static inline void tctx_shutdown(tctx_t *t)
{
    t->accepts = ptc_httpsrv_accepts(t->srv);
    ptc_http_client_get_stats(t->client, &t->stats);
    ptc_http_client_close(t->client, on_client_closed, t);
    ptc_httpsrv_close(t->srv);
    if (t->timer_used && !uv_is_closing((uv_handle_t *)&t->timer)) {
        uv_close((uv_handle_t *)&t->timer, on_timer_closed);
    }
}

/* Runs the loop to its end, then checks the clean teardown and frees what the test holds. */
static inline void tctx_run(tctx_t *t)
{
    ptc_test_loop_run(&t->loop, 20000, "http client test");
    CHECK_EQ(t->client_closed, 1);
    ptc_test_loop_finish(&t->loop);
    ptc_tls_config_unref(t->srv_tls);
    ptc_tls_config_unref(t->cli_tls);
    ptc_certgen_dispose(&t->leaf);
    ptc_certgen_dispose(&t->ca);
}

static inline void tctx_dispose_seen(tctx_t *t)
{
    for (size_t i = 0; i < t->seen_cnt; i++) {
        ptc_buf_dispose(&t->seen[i].body);
    }
}

static inline void on_tick(uv_timer_t *timer)
{
    tctx_t *t = timer->data;
    t->tick(t);
}

/* Calls `tick` every `ms` milliseconds until the test stops the timer or shuts down. */
static inline void tctx_every(tctx_t *t, uint64_t ms, void (*tick)(tctx_t *t))
{
    if (!t->timer_used) {
        CHECK_OK(uv_timer_init(&t->loop, &t->timer));
        t->timer.data = t;
        t->timer_used = true;
    }
    t->tick = tick;
    CHECK_OK(uv_timer_start(&t->timer, on_tick, ms, ms));
}

/* ---- request tracking ---- */

typedef struct rq rq_t;
struct rq {
    tctx_t *t;
    ptc_http_client_req_t *req;
    int heads;
    int body_cbs;
    int dones;
    int errors;
    int drains;
    int upgrades;
    int status;
    int err;
    ptc_http_client_phase_t phase;
    bool reused;
    char detail[256];
    char hdr[256]; /* the response's X-Test header, if any */
    ptc_buf_t body;
    void (*then)(rq_t *q);
    void *arg;
};

static inline void rq_on_head(ptc_http_client_req_t *r, const ptc_http_head_t *h)
{
    rq_t *q = ptc_http_client_req_data(r);
    q->heads++;
    q->status = h->status;
    const ptc_http_header_t *x = ptc_http_header_find(h->headers, h->header_cnt, "x-test");
    if (x != NULL) {
        snprintf(q->hdr, sizeof(q->hdr), "%.*s", (int)x->value.len, (const char *)x->value.ptr);
    }
}

static inline void rq_on_body(ptc_http_client_req_t *r, ptc_slice_t data)
{
    rq_t *q = ptc_http_client_req_data(r);
    q->body_cbs++;
    ptc_buf_append(&q->body, data.ptr, data.len);
}

static inline void rq_on_done(ptc_http_client_req_t *r)
{
    rq_t *q = ptc_http_client_req_data(r);
    q->dones++;
    q->reused = ptc_http_client_req_is_reused(r);
    q->phase = ptc_http_client_req_phase(r);
    q->req = NULL;
    if (q->then != NULL) {
        q->then(q);
    }
}

static inline void rq_on_error(ptc_http_client_req_t *r, int err)
{
    rq_t *q = ptc_http_client_req_data(r);
    q->errors++;
    q->err = err;
    q->phase = ptc_http_client_req_phase(r);
    snprintf(q->detail, sizeof(q->detail), "%s", ptc_http_client_req_error_detail(r));
    /* Cancelling an ended request does nothing. */
    ptc_http_client_req_cancel(r);
    q->req = NULL;
    if (q->then != NULL) {
        q->then(q);
    }
}

static inline void rq_on_drain(ptc_http_client_req_t *r)
{
    rq_t *q = ptc_http_client_req_data(r);
    q->drains++;
}

static inline void rq_init(rq_t *q, tctx_t *t, void (*then)(rq_t *q))
{
    memset(q, 0, sizeof(*q));
    q->t = t;
    q->then = then;
    ptc_buf_init(&q->body);
}

static inline ptc_http_client_req_opts_t rq_opts(rq_t *q, const char *method, const char *target)
{
    ptc_http_client_req_opts_t o = {
        .host = "127.0.0.1",
        .port = q->t->port,
        .method = ptc_slice_str(method),
        .target = ptc_slice_str(target),
        .on_head = rq_on_head,
        .on_body = rq_on_body,
        .on_done = rq_on_done,
        .on_error = rq_on_error,
        .on_drain = rq_on_drain,
        .data = q,
    };
    return o;
}

static inline void rq_start(rq_t *q, const ptc_http_client_req_opts_t *o)
{
    CHECK_OK(ptc_http_client_request(q->t->client, o, &q->req));
    CHECK_NOT_NULL(q->req);
}

static inline void rq_get(rq_t *q, const char *target)
{
    ptc_http_client_req_opts_t o = rq_opts(q, "GET", target);
    rq_start(q, &o);
}

static inline void check_body(const rq_t *q, const char *want)
{
    CHECK_EQ(q->body.len, strlen(want));
    CHECK_MEMEQ(ptc_buf_data(&q->body), want, strlen(want));
}

static inline void then_shutdown(rq_t *q)
{
    tctx_shutdown(q->t);
}

/* ---- handlers ---- */

static inline void h_hello(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    (void)r;
    ptc_httpsrv_respond(c, 200, "X-Test: yes\r\n", "hello", 5);
}

/* Answers with the request body as the response body. */
static inline void h_echo_body(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    ptc_httpsrv_respond(c, 200, NULL, r->body, r->body_len);
}

static inline void h_chunked(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    (void)r;
    static const char resp[] =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n";
    ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
}

/* The body stops and the connection stays silent: the idle timeout ends it. */
static inline void h_partial(tctx_t *t, ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)t;
    (void)r;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
    ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
}

/* A request body streamed from a pattern, with the stops it met. */
#define UPLOAD_SIZE (4u * 1024 * 1024)
#define UPLOAD_PIECE (64u * 1024)

typedef struct upload {
    rq_t q;
    size_t sent;
    int full_stops;
    bool ended;
} upload_t;

#endif
