/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 client (see http_client.h): the client, its requests, and the exchange that a
 * request runs on a connection. A client owns its origins, its connections (both in
 * common/http_client_conn.c) and its requests. A request is formatted once into its own
 * object (head, then a body given up front), bound to a pooled or a new connection, and sent
 * again once on a new connection when a reused one failed before any byte of the response
 * arrived and the request can be replayed. Response bytes go through common/http's pull
 * parser; this file acts on its events and arms the deadline that fits where the exchange is.
 *
 * Failures are never reported from within an API call: a failed request moves to the
 * client's list of ended requests, whose on_error callbacks run from the client's timer on
 * the next loop iteration (h2o's call_write_complete_delayed idea). on_done and on_upgrade
 * run from the read path, after the connection has been put back in the pool or closed.
 *
 * Depends on libuv, common/net, common/tls, common/http, common/buf and the connections of
 * common/http_client_conn.c.
 */
#include "common/http_client.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_client_int.h"
#include "common/net.h"

/* Room kept at the end of the head buffer for the headers the client adds itself. */
#define HEAD_EXTRA 512

static const uint8_t empty_input[1];
static const char *const alpn_http11[] = {"http/1.1", NULL};

static void req_bind(ptc_http_client_req_t *r, conn_t *conn);

static uint64_t or_default(uint64_t v, uint64_t def)
{
    return v != 0 ? v : def;
}

/* ---- requests ending ---- */

static bool req_written(const ptc_http_client_req_t *r)
{
    return r->body_ended && r->conn != NULL && !r->conn->hold && r->conn->out.queued == 0;
}

static ptc_http_client_phase_t current_phase(const ptc_http_client_req_t *r)
{
    if (r->state == R_ENDED) {
        return r->phase;
    }
    if (r->conn != NULL && r->conn->state == C_DIALING) {
        return PTC_HTTP_CLIENT_PHASE_CONNECT;
    }
    if (r->conn != NULL && r->conn->state == C_HANDSHAKE) {
        return PTC_HTTP_CLIENT_PHASE_TLS;
    }
    if (r->got_head) {
        return PTC_HTTP_CLIENT_PHASE_BODY;
    }
    return req_written(r) || r->got_bytes ? PTC_HTTP_CLIENT_PHASE_HEAD : PTC_HTTP_CLIENT_PHASE_SEND;
}

static void list_remove_req(ptc_http_client_req_t *r)
{
    ptc_http_client_t *c = r->client;
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        c->reqs = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    r->prev = NULL;
    r->next = NULL;
}

static void req_free(ptc_http_client_req_t *r)
{
    ptc_http_client_t *c = r->client;
    ptc_http_client_conn_origin_unref(r->origin);
    c->stats.requests--;
    free(r);
    ptc_http_client_maybe_free(c);
}

static void on_client_kick(uv_timer_t *t);

static void client_kick(ptc_http_client_t *c)
{
    if (!c->kick_closing) {
        uv_timer_start(&c->kick, on_client_kick, 0, 0);
    }
}

/* Marks `r` as ended in `phase` and detaches it from its connection, whose fate the caller
 * decides (pool, close, or pipe). */
static void req_end(ptc_http_client_req_t *r, ptc_http_client_phase_t phase)
{
    r->phase = phase;
    r->state = R_ENDED;
    list_remove_req(r);
    conn_t *conn = r->conn;
    if (conn != NULL) {
        conn->req = NULL;
        r->conn = NULL;
    }
}

void ptc_http_client_req_fail(ptc_http_client_req_t *r, int err, const char *fmt, ...)
{
    if (r->state != R_ACTIVE) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
    va_end(ap);
    r->err = err;
    conn_t *conn = r->conn;
    req_end(r, current_phase(r));
    if (conn != NULL) {
        ptc_http_client_conn_close(conn);
    }
    ptc_http_client_t *c = r->client;
    if (c->ended_tail != NULL) {
        c->ended_tail->next = r;
    } else {
        c->ended_head = r;
    }
    c->ended_tail = r;
    client_kick(c);
}

static void on_kick_closed(uv_handle_t *h)
{
    ptc_http_client_t *c = h->data;
    c->kick_closed = true;
    ptc_http_client_maybe_free(c);
}

static void on_client_kick(uv_timer_t *t)
{
    ptc_http_client_t *c = t->data;
    ptc_http_client_req_t *r;
    while ((r = c->ended_head) != NULL) {
        c->ended_head = r->next;
        if (c->ended_head == NULL) {
            c->ended_tail = NULL;
        }
        r->next = NULL;
        r->on_error(r, r->err);
        req_free(r);
    }
    if (c->closing && !c->kick_closing) {
        c->kick_closing = true;
        uv_close((uv_handle_t *)&c->kick, on_kick_closed);
    }
}

/* The response is complete: pool or close the connection, then run on_done. */
static void req_complete(conn_t *conn, ptc_http_client_req_t *r, bool no_extra)
{
    const ptc_http_head_t *h = ptc_http_parser_head(conn->parser);
    /* The whole request must have been handed to the socket (a write in flight is fine: the
     * next request's bytes queue behind it), and nothing may follow the response. */
    bool handed = conn->out.queued == (conn->writing ? conn->wlen : 0);
    bool reuse = no_extra && h != NULL && h->keep_alive && !r->conn_close && r->body_ended &&
                 !conn->hold && handed && conn->read_err == 0 && conn->write_err == 0 &&
                 conn->pending_werr == 0;
    req_end(r, PTC_HTTP_CLIENT_PHASE_DONE);
    conn->served++;
    if (reuse) {
        ptc_http_client_conn_pool_put(conn);
    } else {
        ptc_http_client_conn_close(conn);
    }
    r->on_done(r);
    req_free(r);
}

static bool is_idempotent(ptc_slice_t m)
{
    static const char *const methods[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (ptc_slice_eq(m, methods[i])) {
            return true;
        }
    }
    return false;
}

/* RFC 9112 §9.3.1: a request that may have been lost with a reused connection is sent again
 * once, on a new connection, if it is idempotent and nothing of the response arrived. */
bool ptc_http_client_req_can_retry(const conn_t *conn, const ptc_http_client_req_t *r)
{
    return conn->served > 0 && !r->got_bytes && r->idempotent && r->replayable && !r->retried &&
           !r->client->closing;
}

void ptc_http_client_req_retry(ptc_http_client_req_t *r)
{
    ptc_http_client_t *c = r->client;
    conn_t *old = r->conn;
    old->req = NULL;
    r->conn = NULL;
    ptc_http_client_conn_close(old);
    r->retried = true;
    r->reused = false;
    c->stats.retries++;
    conn_t *conn = NULL;
    int rc = ptc_http_client_conn_dial(c, r->origin, &conn);
    if (rc != 0) {
        ptc_http_client_req_fail(r, rc, "connecting to %s:%u: %s", r->origin->names,
                                 (unsigned)r->origin->port, ptc_strerror(rc));
        return;
    }
    req_bind(r, conn);
}

/* ---- the response ---- */

static void conn_upgrade(conn_t *conn, ptc_http_client_req_t *r)
{
    const ptc_http_head_t *h = ptc_http_parser_head(conn->parser);
    req_end(r, PTC_HTTP_CLIENT_PHASE_DONE);
    conn->served++;
    ptc_http_client_conn_set_state(conn, C_PIPE);
    conn->was_pipe = true;
    conn->hold = false;
    conn->need_drain = false;
    ptc_http_client_conn_timer(conn, T_NONE, 0);
    /* Nothing is read until the new owner starts the pipe; the bytes after the head wait in
     * `in` (the caller of ptc_http_client_parse puts them there). */
    ptc_http_client_conn_read_stop(conn);
    r->on_upgrade(r, h, conn);
    req_free(r);
}

static void req_fail_http(conn_t *conn, ptc_http_client_req_t *r, int rc)
{
    const ptc_http_error_t *e = ptc_http_parser_error(conn->parser);
    ptc_http_client_req_fail(r, rc, "malformed response from %s:%u: %s", conn->origin->names,
                             (unsigned)conn->origin->port,
                             e != NULL ? e->reason : ptc_strerror(rc));
}

static void on_head_event(conn_t *conn, ptc_http_client_req_t *r, const ptc_http_head_t *h)
{
    r->got_head = true;
    if (h->upgrade) {
        if (r->on_upgrade == NULL) {
            ptc_http_client_req_fail(r, PTC_EHTTP,
                                     "unexpected protocol switch (status %d) from %s:%u", h->status,
                                     conn->origin->names, (unsigned)conn->origin->port);
        }
        /* Otherwise DONE, then UPGRADE, follow at once. */
        return;
    }
    ptc_http_client_arm(conn);
    if (r->on_head != NULL) {
        r->on_head(r, h);
    }
}

/*
 * Feeds response bytes to the parser and acts on its events until the input is used up, the
 * request is paused, ends or switches protocols, or the connection closes. Returns how many
 * bytes were consumed; the caller keeps the rest when the connection is still open (a pause,
 * or a protocol switch).
 */
size_t ptc_http_client_parse(conn_t *conn, const uint8_t *p, size_t len)
{
    size_t off = 0;
    for (;;) {
        ptc_http_client_req_t *r = conn->req;
        if (conn->closing || conn->state != C_ACTIVE || r == NULL || r->paused) {
            return off;
        }
        ptc_http_event_t ev;
        ssize_t n = ptc_http_parser_feed(conn->parser, p + off, len - off, &ev);
        if (n < 0) {
            req_fail_http(conn, r, (int)n);
            return off;
        }
        if (n > 0) {
            r->got_bytes = true;
        }
        off += (size_t)n;
        switch (ev.type) {
        case PTC_HTTP_EV_NONE:
            return off;
        case PTC_HTTP_EV_INTERIM:
            if (ev.head->status == 100 && conn->hold) {
                conn->hold = false;
                ptc_http_client_conn_flush(conn);
                ptc_http_client_arm(conn);
            }
            break;
        case PTC_HTTP_EV_HEAD:
            on_head_event(conn, r, ev.head);
            break;
        case PTC_HTTP_EV_BODY:
            if (r->on_body != NULL) {
                r->on_body(r, ev.body);
            }
            break;
        case PTC_HTTP_EV_DONE:
            if (!ptc_http_parser_head(conn->parser)->upgrade) {
                req_complete(conn, r, off == len);
                return off;
            }
            break;
        case PTC_HTTP_EV_UPGRADE:
            conn_upgrade(conn, r);
            return off;
        case PTC_HTTP_EV_ERROR:
            req_fail_http(conn, r, PTC_EHTTP);
            return off;
        }
    }
}

void ptc_http_client_req_on_read_end(conn_t *conn, ptc_http_client_req_t *r, int err)
{
    const ptc_http_head_t *h = r->got_head ? ptc_http_parser_head(conn->parser) : NULL;
    if (err == UV_EOF && h != NULL && h->body == PTC_HTTP_BODY_UNTIL_CLOSE) {
        ptc_http_event_t ev;
        if (ptc_http_parser_finish(conn->parser, &ev) == 0 && ev.type == PTC_HTTP_EV_DONE) {
            conn->read_err = err;
            req_complete(conn, r, true);
            return;
        }
    }
    if (ptc_http_client_req_can_retry(conn, r)) {
        ptc_http_client_req_retry(r);
        return;
    }
    const char *when = r->got_head    ? "before the response body was complete"
                       : r->got_bytes ? "inside the response head"
                                      : "before responding";
    ptc_http_client_req_fail(r, err, "%s:%u closed the connection %s (%s)", conn->origin->names,
                             (unsigned)conn->origin->port, when, ptc_errname(err));
}

/* ---- deadlines and deferred work ---- */

/* Arms the deadline that fits where the exchange is. */
void ptc_http_client_arm(conn_t *conn)
{
    ptc_http_client_req_t *r = conn->req;
    if (conn->closing || conn->state != C_ACTIVE || r == NULL || conn->timer_use == T_KICK) {
        return;
    }
    ptc_http_client_t *c = conn->client;
    if (r->paused) {
        ptc_http_client_conn_timer(conn, T_NONE, 0);
    } else if (r->got_head) {
        ptc_http_client_conn_timer(conn, T_BODY, c->idle_timeout_ms);
    } else if (conn->hold) {
        if (conn->timer_use != T_CONTINUE) {
            ptc_http_client_conn_timer(conn, T_CONTINUE, c->expect_timeout_ms);
        }
    } else if (!req_written(r)) {
        ptc_http_client_conn_timer(conn, T_SEND, c->idle_timeout_ms);
    } else if (conn->timer_use != T_HEAD) {
        ptc_http_client_conn_timer(conn, T_HEAD, r->head_timeout_ms);
    }
}

/* Delivers held input after a resume, then reads the socket again. */
void ptc_http_client_req_kick(conn_t *conn)
{
    ptc_http_client_req_t *r = conn->req;
    if (conn->state != C_ACTIVE || r == NULL || r->paused) {
        return;
    }
    /*
     * The held bytes are taken out of the connection while the callbacks run, since those
     * may end the exchange under the parse: a response completed here puts the connection in
     * the pool (which drops its held input) before on_done, and on_done may bind the next
     * request to it at once. Consuming from conn->in afterwards would account bytes to a
     * buffer that no longer holds them. What the parse left is given back only to the
     * exchange it belongs to: this request, paused again, or the pipe it switched to.
     */
    ptc_buf_t held = conn->in;
    ptc_buf_init(&conn->in);
    size_t len = held.len;
    const uint8_t *p = len > 0 ? ptc_buf_data(&held) : empty_input;
    /* Even with nothing held, a DONE may be waiting (a pause right after the last piece). */
    size_t n = ptc_http_client_parse(conn, p, len);
    ptc_buf_consume(&held, n);
    bool same = conn->state == C_PIPE || (conn->state == C_ACTIVE && conn->req == r);
    if (conn->closing || !same) {
        /* Closed, pooled (only once every byte was parsed), or serving the next request. */
        ptc_buf_dispose(&held);
        return;
    }
    /* Nothing is read while input is held, so nothing can have been held meanwhile. */
    assert(conn->in.len == 0);
    ptc_buf_dispose(&conn->in);
    conn->in = held;
    if (conn->in.len > 0 || conn->state != C_ACTIVE) {
        return;
    }
    ptc_buf_dispose(&conn->in);
    if (conn->read_err != 0) {
        int err = conn->read_err;
        ptc_http_client_req_on_read_end(conn, r, err);
        return;
    }
    ptc_http_client_conn_read_start(conn);
    ptc_http_client_arm(conn);
}

/* ---- binding a request to a connection ---- */

/* Puts the request on the connection: queues its head (and a body given up front). */
static void req_bind(ptc_http_client_req_t *r, conn_t *conn)
{
    conn->req = r;
    r->conn = conn;
    conn->need_drain = false;
    r->got_bytes = false;
    r->got_head = false;
    if (conn->state == C_IDLE) {
        ptc_http_client_conn_set_state(conn, C_ACTIVE);
        ptc_http_client_conn_timer(conn, T_NONE, 0);
    }
    ptc_slice_t method = {r->bytes, r->method_len};
    ptc_http_parser_set_request_method(conn->parser, method);
    (void)ptc_http_client_conn_send(conn, r->bytes, r->head_len);
    if (r->expect) {
        conn->hold = true;
        conn->hold_len = conn->out.queued;
    }
    if (r->body_len > 0) {
        (void)ptc_http_client_conn_send(conn, r->bytes + r->head_len, r->body_len);
    }
    if (conn->state == C_ACTIVE && r->paused) {
        ptc_http_client_conn_read_stop(conn);
    }
    ptc_http_client_arm(conn);
}

/* ---- client ---- */

int ptc_http_client_new(uv_loop_t *loop, const ptc_http_client_opts_t *opts,
                        ptc_http_client_t **out)
{
    *out = NULL;
    static const ptc_http_client_opts_t defaults;
    if (loop == NULL) {
        return UV_EINVAL;
    }
    if (opts == NULL) {
        opts = &defaults;
    }
    if (opts->max_request_head != 0 && opts->max_request_head < 2 * HEAD_EXTRA) {
        return UV_EINVAL;
    }
    ptc_http_client_t *c = ptc_xcalloc(1, sizeof(*c));
    int rc = uv_timer_init(loop, &c->kick);
    if (rc != 0) {
        free(c);
        return rc;
    }
    c->loop = loop;
    c->kick.data = c;
    c->limits = opts->limits;
    c->connect_timeout_ms =
        or_default(opts->connect_timeout_ms, PTC_HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS);
    c->tls_timeout_ms = or_default(opts->tls_timeout_ms, PTC_HTTP_CLIENT_DEFAULT_TLS_TIMEOUT_MS);
    c->head_timeout_ms = or_default(opts->head_timeout_ms, PTC_HTTP_CLIENT_DEFAULT_HEAD_TIMEOUT_MS);
    c->idle_timeout_ms = or_default(opts->idle_timeout_ms, PTC_HTTP_CLIENT_DEFAULT_IDLE_TIMEOUT_MS);
    c->pool_idle_ms = or_default(opts->pool_idle_ms, PTC_HTTP_CLIENT_DEFAULT_POOL_IDLE_MS);
    c->expect_timeout_ms =
        or_default(opts->expect_timeout_ms, PTC_HTTP_CLIENT_DEFAULT_EXPECT_TIMEOUT_MS);
    c->max_idle = opts->max_idle_per_origin != 0 ? opts->max_idle_per_origin
                                                 : PTC_HTTP_CLIENT_DEFAULT_MAX_IDLE_PER_ORIGIN;
    c->max_head = opts->max_request_head != 0 ? opts->max_request_head
                                              : PTC_HTTP_CLIENT_DEFAULT_MAX_REQUEST_HEAD;
    c->tls_verify = opts->tls != NULL ? ptc_tls_config_ref(opts->tls) : NULL;
    c->ca_file = ptc_xstrdup(opts->ca_file);
    c->scratch = ptc_xmalloc(c->max_head);
    c->rbuf = ptc_xmalloc(READ_BUF_SIZE);
    *out = c;
    return 0;
}

void ptc_http_client_maybe_free(ptc_http_client_t *c)
{
    if (!c->closing || !c->kick_closed || c->conns != NULL || c->reqs != NULL ||
        c->ended_head != NULL || c->stats.requests != 0) {
        return;
    }
    for (size_t i = 0; i < ORIGIN_BUCKETS; i++) {
        assert(c->origins[i] == NULL);
    }
    ptc_http_client_close_cb cb = c->on_close;
    void *data = c->close_data;
    ptc_tls_config_unref(c->tls_verify);
    ptc_tls_config_unref(c->tls_noverify);
    free(c->ca_file);
    free(c->scratch);
    free(c->rbuf);
    free(c);
    if (cb != NULL) {
        cb(data);
    }
}

void ptc_http_client_close(ptc_http_client_t *c, ptc_http_client_close_cb cb, void *data)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->on_close = cb;
    c->close_data = data;
    while (c->reqs != NULL) {
        ptc_http_client_req_fail(c->reqs, PTC_ECLOSED, "the HTTP client was closed");
    }
    for (conn_t *conn = c->conns; conn != NULL; conn = conn->next) {
        ptc_http_client_conn_close(conn);
    }
    /* The kick runs the pending on_error callbacks, then closes its own timer. */
    uv_timer_start(&c->kick, on_client_kick, 0, 0);
}

void ptc_http_client_get_stats(const ptc_http_client_t *c, ptc_http_client_stats_t *out)
{
    *out = c->stats;
}

/* ---- requests ---- */

/* Host names and IP literals only: nothing that could break the Host header or SNI. */
static bool valid_host(const char *h)
{
    size_t len = strlen(h);
    if (len == 0 || len > PTC_NET_HOST_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = h[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_' || ch == ':' ||
                  ch == '%';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static int pick_tls(ptc_http_client_t *c, const ptc_http_client_req_opts_t *o,
                    ptc_tls_config_t **out)
{
    if (o->tls != NULL) {
        *out = o->tls;
        return 0;
    }
    ptc_tls_config_t **slot = o->no_verify ? &c->tls_noverify : &c->tls_verify;
    if (*slot == NULL) {
        ptc_tls_client_opts_t to = {
            .ca_file = o->no_verify ? NULL : c->ca_file,
            .alpn = alpn_http11,
            .no_verify = o->no_verify,
        };
        ptc_tls_err_t err;
        int rc = ptc_tls_client_config_new(&to, slot, &err);
        if (rc != 0) {
            return rc;
        }
    }
    *out = *slot;
    return 0;
}

/* Appends formatted text to the head being built; false if it does not fit. */
static bool head_add(uint8_t *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool head_add(uint8_t *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf((char *)buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len) {
        return false;
    }
    *len += (size_t)n;
    return true;
}

/* What the caller's header fields say about the exchange. */
typedef struct head_flags {
    bool conn_close; /* Connection: close */
    bool expect;     /* Expect: 100-continue */
} head_flags_t;

/* Formats the request head into the client's scratch buffer. */
static int format_head(ptc_http_client_t *c, const ptc_http_client_req_opts_t *o, bool has_body,
                       size_t *out_len, head_flags_t *f)
{
    bool has_host = false;
    for (size_t i = 0; i < o->header_cnt; i++) {
        ptc_slice_t n = o->headers[i].name;
        ptc_slice_t v = o->headers[i].value;
        if (ptc_slice_case_eq(n, "content-length") || ptc_slice_case_eq(n, "transfer-encoding")) {
            return UV_EINVAL;
        }
        if (ptc_slice_case_eq(n, "host")) {
            has_host = true;
        } else if (ptc_slice_case_eq(n, "connection") && ptc_http_list_has(v, "close")) {
            f->conn_close = true;
        } else if (ptc_slice_case_eq(n, "expect") && ptc_http_list_has(v, "100-continue")) {
            /* A forwarded Expect (a browser's upload) gets the same treatment as the flag. */
            f->expect = true;
        }
    }
    ssize_t n = ptc_http_format_request_head(c->scratch, c->max_head - HEAD_EXTRA, o->method,
                                             o->target, o->headers, o->header_cnt);
    if (n < 0) {
        return (int)n;
    }
    size_t len = (size_t)n - 2; /* the blank line comes after the client's own fields */
    bool ok = true;
    if (!has_host) {
        bool v6 = strchr(o->host, ':') != NULL;
        bool dflt = o->port == (o->https ? 443 : 80);
        char port[8] = "";
        if (!dflt) {
            snprintf(port, sizeof(port), ":%u", (unsigned)o->port);
        }
        ok = head_add(c->scratch, c->max_head, &len, "Host: %s%s%s%s\r\n", v6 ? "[" : "", o->host,
                      v6 ? "]" : "", port);
    }
    if (o->body.ptr != NULL) {
        ok = ok && head_add(c->scratch, c->max_head, &len, "Content-Length: %zu\r\n", o->body.len);
    } else if (o->body_mode == PTC_HTTP_CLIENT_BODY_LENGTH) {
        ok = ok && head_add(c->scratch, c->max_head, &len, "Content-Length: %llu\r\n",
                            (unsigned long long)o->content_length);
    } else if (o->body_mode == PTC_HTTP_CLIENT_BODY_CHUNKED) {
        ok = ok && head_add(c->scratch, c->max_head, &len, "Transfer-Encoding: chunked\r\n");
    }
    if (o->expect_continue && has_body && !f->expect) {
        ok = ok && head_add(c->scratch, c->max_head, &len, "Expect: 100-continue\r\n");
    }
    ok = ok && head_add(c->scratch, c->max_head, &len, "\r\n");
    if (!ok) {
        return PTC_ELIMIT;
    }
    *out_len = len;
    return 0;
}

int ptc_http_client_request(ptc_http_client_t *c, const ptc_http_client_req_opts_t *opts,
                            ptc_http_client_req_t **out)
{
    *out = NULL;
    if (c->closing) {
        return PTC_ECLOSED;
    }
    const ptc_http_client_req_opts_t *o = opts;
    if (o->host == NULL || !valid_host(o->host) || o->port == 0 || o->method.len == 0 ||
        o->target.len == 0 || o->on_done == NULL || o->on_error == NULL ||
        (o->server_name != NULL && !valid_host(o->server_name)) ||
        (o->body.ptr != NULL && o->body_mode != PTC_HTTP_CLIENT_BODY_NONE) ||
        o->body_mode > PTC_HTTP_CLIENT_BODY_CHUNKED || (o->header_cnt > 0 && o->headers == NULL)) {
        return UV_EINVAL;
    }
    bool has_body = (o->body.ptr != NULL && o->body.len > 0) ||
                    (o->body_mode == PTC_HTTP_CLIENT_BODY_LENGTH && o->content_length > 0) ||
                    o->body_mode == PTC_HTTP_CLIENT_BODY_CHUNKED;
    ptc_tls_config_t *tls = NULL;
    if (o->https) {
        int rc = pick_tls(c, o, &tls);
        if (rc != 0) {
            return rc;
        }
    }
    size_t head_len = 0;
    head_flags_t flags = {false, false};
    int rc = format_head(c, o, has_body, &head_len, &flags);
    if (rc != 0) {
        return rc;
    }
    size_t body_len = o->body.ptr != NULL ? o->body.len : 0;
    if (body_len > SIZE_MAX - sizeof(ptc_http_client_req_t) - head_len) {
        return PTC_ENOMEM;
    }
    ptc_http_client_req_t *r = malloc(sizeof(*r) + head_len + body_len);
    if (r == NULL) {
        return PTC_ENOMEM;
    }
    memset(r, 0, sizeof(*r));
    memcpy(r->bytes, c->scratch, head_len);
    if (body_len > 0) {
        memcpy(r->bytes + head_len, o->body.ptr, body_len);
    }
    r->client = c;
    r->state = R_ACTIVE;
    r->on_head = o->on_head;
    r->on_body = o->on_body;
    r->on_done = o->on_done;
    r->on_error = o->on_error;
    r->on_drain = o->on_drain;
    r->on_upgrade = o->on_upgrade;
    r->data = o->data;
    r->body_mode = o->body.ptr != NULL ? PTC_HTTP_CLIENT_BODY_NONE : o->body_mode;
    r->content_length = o->content_length;
    r->head_timeout_ms = or_default(o->head_timeout_ms, c->head_timeout_ms);
    r->body_ended = r->body_mode == PTC_HTTP_CLIENT_BODY_NONE ||
                    (r->body_mode == PTC_HTTP_CLIENT_BODY_LENGTH && o->content_length == 0);
    r->expect = (o->expect_continue || flags.expect) && has_body;
    r->idempotent = is_idempotent(o->method);
    r->replayable = r->body_mode == PTC_HTTP_CLIENT_BODY_NONE;
    r->conn_close = flags.conn_close;
    r->method_len = o->method.len;
    r->head_len = head_len;
    r->body_len = body_len;

    const char *sni = o->https && o->server_name != NULL ? o->server_name : o->host;
    r->origin = ptc_http_client_conn_origin_get(c, o->https, o->host, o->port, sni, tls);
    conn_t *conn = ptc_http_client_conn_pool_take(r->origin);
    if (conn != NULL) {
        r->reused = true;
        c->stats.reuses++;
    } else {
        rc = ptc_http_client_conn_dial(c, r->origin, &conn);
        if (rc != 0) {
            ptc_http_client_conn_origin_unref(r->origin);
            free(r);
            return rc;
        }
    }
    r->next = c->reqs;
    if (c->reqs != NULL) {
        c->reqs->prev = r;
    }
    c->reqs = r;
    c->stats.requests++;
    req_bind(r, conn);
    *out = r;
    return 0;
}

int ptc_http_client_req_write(ptc_http_client_req_t *r, const void *p, size_t len)
{
    if (r->state != R_ACTIVE) {
        return PTC_ECLOSED;
    }
    if (len == 0) {
        return UV_EINVAL;
    }
    if (r->body_mode == PTC_HTTP_CLIENT_BODY_NONE || r->body_ended) {
        return PTC_ESTATE;
    }
    conn_t *conn = r->conn;
    int rc;
    if (r->body_mode == PTC_HTTP_CLIENT_BODY_LENGTH) {
        if (len > r->content_length - r->written) {
            return PTC_ELIMIT;
        }
        rc = ptc_http_client_conn_send(conn, p, len);
    } else {
        /* Chunk header, data and CRLF in one send, so that TLS puts them in one record. */
        uint8_t hdr[PTC_HTTP_CHUNK_HEADER_MAX];
        ptc_slice_t v[3] = {
            {hdr, ptc_http_format_chunk_header(hdr, len)}, {p, len}, {(const uint8_t *)"\r\n", 2}};
        if (conn->tls != NULL) {
            /* Queued together, they reach TLS as one piece. */
            rc = 0;
            for (size_t i = 0; i < 3 && rc == 0; i++) {
                rc = ptc_chunkq_try_append(&conn->out, v[i].ptr, v[i].len);
            }
            if (rc != 0) {
                ptc_http_client_conn_defer_write_error(conn, rc);
            } else {
                ptc_http_client_conn_flush(conn);
            }
        } else {
            rc = ptc_http_client_conn_sendv(conn, v, 3);
        }
    }
    if (rc != 0) {
        return rc;
    }
    r->written += len;
    if (r->body_mode == PTC_HTTP_CLIENT_BODY_LENGTH && r->written == r->content_length) {
        r->body_ended = true;
    }
    if (ptc_http_client_conn_is_full(conn)) {
        conn->need_drain = true;
    }
    ptc_http_client_arm(conn);
    return 0;
}

int ptc_http_client_req_end(ptc_http_client_req_t *r)
{
    if (r->state != R_ACTIVE) {
        return PTC_ECLOSED;
    }
    if (r->body_mode == PTC_HTTP_CLIENT_BODY_LENGTH) {
        return r->body_ended ? 0 : PTC_ESTATE;
    }
    if (r->body_mode != PTC_HTTP_CLIENT_BODY_CHUNKED || r->body_ended) {
        return PTC_ESTATE;
    }
    int rc = ptc_http_client_conn_send(r->conn, "0\r\n\r\n", 5);
    if (rc != 0) {
        return rc;
    }
    r->body_ended = true;
    ptc_http_client_arm(r->conn);
    return 0;
}

bool ptc_http_client_req_is_full(const ptc_http_client_req_t *r)
{
    return r->state == R_ACTIVE && r->conn != NULL && ptc_http_client_conn_is_full(r->conn);
}

void ptc_http_client_req_pause(ptc_http_client_req_t *r)
{
    if (r->state != R_ACTIVE || r->paused) {
        return;
    }
    r->paused = true;
    conn_t *conn = r->conn;
    if (conn != NULL && conn->state == C_ACTIVE) {
        ptc_http_client_conn_read_stop(conn);
        ptc_http_client_arm(conn);
    }
}

void ptc_http_client_req_resume(ptc_http_client_req_t *r)
{
    if (r->state != R_ACTIVE || !r->paused) {
        return;
    }
    r->paused = false;
    conn_t *conn = r->conn;
    if (conn != NULL && conn->state == C_ACTIVE) {
        /* Never deliver from within this call: the caller may be inside a callback. */
        ptc_http_client_conn_timer(conn, T_KICK, 0);
    }
}

void ptc_http_client_req_cancel(ptc_http_client_req_t *r)
{
    ptc_http_client_req_fail(r, UV_ECANCELED, "cancelled");
}

void *ptc_http_client_req_data(const ptc_http_client_req_t *r)
{
    return r->data;
}

const char *ptc_http_client_req_error_detail(const ptc_http_client_req_t *r)
{
    return r->detail;
}

ptc_http_client_phase_t ptc_http_client_req_phase(const ptc_http_client_req_t *r)
{
    return current_phase(r);
}

bool ptc_http_client_req_is_reused(const ptc_http_client_req_t *r)
{
    return r->reused;
}
