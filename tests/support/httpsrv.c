/* SPDX-License-Identifier: MIT */
/*
 * The test HTTP server (see httpsrv.h). Each connection owns its socket (plain TCP, or a
 * tls_stream that owns it), a request parser and its read buffer; the server owns the
 * listener, the list of connections and the record of requests. Memory is released in the
 * close callbacks, so a test that closes the server and runs its loop to the end leaves
 * nothing behind.
 */
#include "tests/support/httpsrv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/net.h"
#include "common/tls_stream.h"
#include "tests/support/loop.h"
#include "tests/support/test.h"

#define READ_SIZE (64 * 1024)

struct ptc_httpsrv {
    uv_tcp_t *listener;
    ptc_httpsrv_opts_t opts;
    ptc_httpsrv_conn_t *conns;
    ptc_httpsrv_req_t **reqs;
    size_t req_cnt;
    size_t req_cap;
    unsigned accepts;
    unsigned open;
    uint16_t port;
    bool closing;
    bool listener_closed;
};

struct ptc_httpsrv_conn {
    ptc_httpsrv_t *srv;
    ptc_httpsrv_conn_t *next;
    ptc_httpsrv_conn_t *prev;
    uv_tcp_t *tcp;         /* plain */
    ptc_tls_stream_t *tls; /* https */
    uv_shutdown_t shutdown_req;
    ptc_http_parser_t *parser;
    ptc_httpsrv_req_t *cur; /* the request being received */
    unsigned no;
    bool closing;
    bool ending;
    bool echo;
    bool raw; /* the parser switched protocols */
    char rbuf[READ_SIZE];
};

typedef struct wreq {
    uv_write_t req;
    char data[];
} wreq_t;

static void maybe_free_server(ptc_httpsrv_t *s)
{
    if (!s->closing || !s->listener_closed || s->open != 0) {
        return;
    }
    for (size_t i = 0; i < s->req_cnt; i++) {
        free(s->reqs[i]->body);
        free(s->reqs[i]);
    }
    free(s->reqs);
    free(s);
}

static void conn_free(ptc_httpsrv_conn_t *c)
{
    ptc_httpsrv_t *s = c->srv;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    s->open--;
    if (c->cur != NULL) {
        free(c->cur->body);
        free(c->cur);
    }
    ptc_http_parser_free(c->parser);
    free(c);
    maybe_free_server(s);
}

static void on_tcp_closed(uv_handle_t *h)
{
    ptc_httpsrv_conn_t *c = h->data;
    free(h);
    conn_free(c);
}

static void on_tls_closed(ptc_tls_stream_t *t)
{
    conn_free(ptc_tls_stream_data(t));
}

void ptc_httpsrv_abort(ptc_httpsrv_conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    if (c->tls != NULL) {
        ptc_tls_stream_close(c->tls);
    } else {
        uv_close((uv_handle_t *)c->tcp, on_tcp_closed);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    ptc_httpsrv_abort(req->data);
}

void ptc_httpsrv_end(ptc_httpsrv_conn_t *c)
{
    if (c->closing || c->ending) {
        return;
    }
    c->ending = true;
    if (c->tls != NULL) {
        ptc_tls_stream_shutdown(c->tls);
        return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)c->tcp, on_shutdown) != 0) {
        ptc_httpsrv_abort(c);
    }
}

static void on_write(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

void ptc_httpsrv_write(ptc_httpsrv_conn_t *c, const void *p, size_t len)
{
    if (c->closing || c->ending || len == 0) {
        return;
    }
    if (c->tls != NULL) {
        int rc = ptc_tls_stream_write(c->tls, p, len, NULL, NULL);
        if (rc != 0) {
            ptc_test_fail(__FILE__, __LINE__, "httpsrv tls write: %s", ptc_errname(rc));
        }
        return;
    }
    wreq_t *w = ptc_xmalloc(sizeof(*w) + len);
    memcpy(w->data, p, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)c->tcp, &b, 1, on_write) != 0) {
        free(w);
    }
}

void ptc_httpsrv_respond(ptc_httpsrv_conn_t *c, int status, const char *extra_headers,
                         const void *body, size_t len)
{
    char head[1024];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n%sContent-Length: %zu\r\n\r\n", status,
                     extra_headers != NULL ? extra_headers : "", len);
    if (n < 0 || (size_t)n >= sizeof(head)) {
        ptc_test_fail(__FILE__, __LINE__, "httpsrv: response head too long");
    }
    ptc_httpsrv_write(c, head, (size_t)n);
    if (len > 0) {
        ptc_httpsrv_write(c, body, len);
    }
}

void ptc_httpsrv_echo(ptc_httpsrv_conn_t *c)
{
    c->echo = true;
}

static void record_head(ptc_httpsrv_conn_t *c, const ptc_http_head_t *h)
{
    ptc_httpsrv_req_t *r = ptc_xcalloc(1, sizeof(*r));
    snprintf(r->method, sizeof(r->method), "%.*s", (int)h->method.len, (const char *)h->method.ptr);
    snprintf(r->target, sizeof(r->target), "%.*s", (int)h->target.len, (const char *)h->target.ptr);
    size_t off = 0;
    for (size_t i = 0; i < h->header_cnt && off < sizeof(r->headers); i++) {
        int n = snprintf(r->headers + off, sizeof(r->headers) - off, "%.*s: %.*s\n",
                         (int)h->headers[i].name.len, (const char *)h->headers[i].name.ptr,
                         (int)h->headers[i].value.len, (const char *)h->headers[i].value.ptr);
        if (n < 0) {
            break;
        }
        off += (size_t)n;
    }
    r->framing = h->body;
    r->conn_no = c->no;
    c->cur = r;
}

static void record_done(ptc_httpsrv_conn_t *c)
{
    ptc_httpsrv_t *s = c->srv;
    if (s->req_cnt == s->req_cap) {
        s->req_cap = s->req_cap != 0 ? 2 * s->req_cap : 16;
        s->reqs = ptc_xrealloc(s->reqs, s->req_cap * sizeof(*s->reqs));
    }
    s->reqs[s->req_cnt++] = c->cur;
    c->cur = NULL;
}

static void on_data(ptc_httpsrv_conn_t *c, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (!c->closing && !c->raw) {
        ptc_http_event_t ev;
        ssize_t n = ptc_http_parser_feed(c->parser, p + off, len - off, &ev);
        if (n < 0) {
            /* Bytes after a Connection: close request, or garbage: stop reading. */
            ptc_httpsrv_end(c);
            return;
        }
        off += (size_t)n;
        switch (ev.type) {
        case PTC_HTTP_EV_NONE:
            return;
        case PTC_HTTP_EV_HEAD:
            record_head(c, ev.head);
            if (c->srv->opts.on_head != NULL) {
                c->srv->opts.on_head(c, c->cur);
            }
            break;
        case PTC_HTTP_EV_INTERIM:
            break;
        case PTC_HTTP_EV_BODY:
            if (c->cur->body_len + ev.body.len > c->cur->body_cap) {
                size_t cap = c->cur->body_cap != 0 ? c->cur->body_cap : 4096;
                while (cap < c->cur->body_len + ev.body.len) {
                    cap *= 2;
                }
                c->cur->body = ptc_xrealloc(c->cur->body, cap);
                c->cur->body_cap = cap;
            }
            memcpy(c->cur->body + c->cur->body_len, ev.body.ptr, ev.body.len);
            c->cur->body_len += ev.body.len;
            break;
        case PTC_HTTP_EV_DONE: {
            ptc_httpsrv_req_t *r = c->cur;
            record_done(c);
            c->srv->opts.on_request(c, r);
            break;
        }
        case PTC_HTTP_EV_UPGRADE:
            c->raw = true;
            break;
        case PTC_HTTP_EV_ERROR:
            ptc_httpsrv_end(c);
            return;
        }
    }
    if (!c->closing && c->echo && off < len) {
        ptc_httpsrv_write(c, p + off, len - off);
    }
}

static void on_end(ptc_httpsrv_conn_t *c)
{
    if (c->ending) {
        ptc_httpsrv_abort(c);
    } else {
        ptc_httpsrv_end(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ptc_httpsrv_conn_t *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    ptc_httpsrv_conn_t *c = st->data;
    if (nread > 0) {
        on_data(c, (const uint8_t *)buf->base, (size_t)nread);
    } else if (nread < 0) {
        uv_read_stop(st);
        on_end(c);
    }
}

static void on_tls_handshake(ptc_tls_stream_t *t, int status)
{
    if (status != 0) {
        ptc_httpsrv_abort(ptc_tls_stream_data(t));
    }
}

static void on_tls_read(ptc_tls_stream_t *t, int status, ptc_slice_t data)
{
    ptc_httpsrv_conn_t *c = ptc_tls_stream_data(t);
    if (status == 0) {
        on_data(c, data.ptr, data.len);
    } else {
        on_end(c);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    ptc_httpsrv_t *s = server->data;
    if (status != 0) {
        return;
    }
    uv_tcp_t *tcp = NULL;
    if (ptc_net_accept(server, &tcp) != 0) {
        return;
    }
    ptc_httpsrv_conn_t *c = ptc_xcalloc(1, sizeof(*c));
    c->srv = s;
    c->no = ++s->accepts;
    c->parser = ptc_http_parser_new(PTC_HTTP_REQUEST, NULL);
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    s->open++;
    if (s->opts.tls == NULL) {
        c->tcp = tcp;
        tcp->data = c;
        if (uv_read_start((uv_stream_t *)tcp, on_alloc, on_read) != 0) {
            ptc_httpsrv_abort(c);
        }
        return;
    }
    ptc_tls_stream_opts_t o = {
        .on_handshake = on_tls_handshake,
        .on_read = on_tls_read,
        .on_close = on_tls_closed,
        .data = c,
        .high_water = 64 * 1024 * 1024,
        .low_water = 1024 * 1024,
    };
    int rc = ptc_tls_stream_new(tcp, s->opts.tls, &o, &c->tls);
    if (rc != 0) {
        /* The stream closed the socket: nothing of ours is left to close. */
        c->closing = true;
        conn_free(c);
    }
}

ptc_httpsrv_t *ptc_httpsrv_start(uv_loop_t *loop, const ptc_httpsrv_opts_t *opts)
{
    ptc_httpsrv_t *s = ptc_xcalloc(1, sizeof(*s));
    s->opts = *opts;
    int rc = ptc_net_listen_tcp(loop, "127.0.0.1:0", 128, on_connection, s, &s->listener);
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "httpsrv listen: %s", ptc_errname(rc));
    }
    s->port = ptc_test_tcp_port(s->listener);
    return s;
}

static void on_listener_closed(uv_handle_t *h)
{
    ptc_httpsrv_t *s = h->data;
    free(h);
    s->listener_closed = true;
    maybe_free_server(s);
}

void ptc_httpsrv_close(ptc_httpsrv_t *s)
{
    if (s->closing) {
        return;
    }
    s->closing = true;
    uv_close((uv_handle_t *)s->listener, on_listener_closed);
    for (ptc_httpsrv_conn_t *c = s->conns; c != NULL; c = c->next) {
        ptc_httpsrv_abort(c);
    }
}

void ptc_httpsrv_end_all(ptc_httpsrv_t *s)
{
    for (ptc_httpsrv_conn_t *c = s->conns; c != NULL; c = c->next) {
        ptc_httpsrv_end(c);
    }
}

uint16_t ptc_httpsrv_port(const ptc_httpsrv_t *s)
{
    return s->port;
}

unsigned ptc_httpsrv_accepts(const ptc_httpsrv_t *s)
{
    return s->accepts;
}

unsigned ptc_httpsrv_open_conns(const ptc_httpsrv_t *s)
{
    return s->open;
}

size_t ptc_httpsrv_requests(const ptc_httpsrv_t *s)
{
    return s->req_cnt;
}

const ptc_httpsrv_req_t *ptc_httpsrv_req(const ptc_httpsrv_t *s, size_t i)
{
    if (i >= s->req_cnt) {
        ptc_test_fail(__FILE__, __LINE__, "httpsrv: no request %zu (have %zu)", i, s->req_cnt);
    }
    return s->reqs[i];
}

void *ptc_httpsrv_data(const ptc_httpsrv_t *s)
{
    return s->opts.data;
}

ptc_httpsrv_t *ptc_httpsrv_conn_server(const ptc_httpsrv_conn_t *c)
{
    return c->srv;
}

unsigned ptc_httpsrv_conn_no(const ptc_httpsrv_conn_t *c)
{
    return c->no;
}
