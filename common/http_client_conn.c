/* SPDX-License-Identifier: MIT */
/*
 * The connections of the HTTP/1.1 client (see http_client.h and http_client_int.h): origins
 * (one per scheme, host, port, TLS name and TLS configuration, each with a pool of idle
 * connections), and each connection's lifetime and I/O. A connection owns one timer (every
 * deadline of the exchange it serves, the pool's idle deadline, and deferred work: STYLE §5
 * rule 6), its dial while connecting, and then either its TCP handle (http) or a
 * common/tls_stream that owns the TCP handle (https). Request bytes go through one output
 * queue per connection with one write in flight at a time, written at once with
 * uv_try_write() when nothing is queued, so that a small request on a pooled plain connection
 * costs no allocation but the request object. After a protocol switch the connection is
 * handed out as a raw pipe, whose API lives here too.
 *
 * Plain connections read into one buffer shared by the whole client: the parser copies heads
 * into its own storage and body slices are handed out before the read callback returns, so
 * only bytes held back by a pause (or left over at a protocol switch) are copied, into the
 * connection's own buffer. Response bytes of an exchange go to common/http_client.c, which
 * owns the requests.
 *
 * Depends on libuv, common/net, common/tls, common/tls_stream, common/http and common/buf.
 */
#include "common/http_client.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_client_int.h"
#include "common/net.h"
#include "common/tls_stream.h"

/* Write back-pressure on the bytes a connection has queued (plus TLS ciphertext). */
#define OUT_HIGH_WATER (256 * 1024)
#define OUT_LOW_WATER (64 * 1024)
#define PIPE_SHUTDOWN_TIMEOUT_MS 5000
/* Bodies beyond this go through the queue rather than one uv_try_write (uv_buf_t lengths
 * are unsigned int). */
#define TRY_WRITE_MAX (1u << 30)

static void conn_on_read_end(conn_t *conn, int err);
static void conn_on_write_error(conn_t *conn, int err);

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ---- origins and the pool ---- */

static uint32_t hash_bytes(uint32_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ b[i]) * 16777619u; /* FNV-1a */
    }
    return h;
}

static uint32_t origin_hash(bool https, const char *host, uint16_t port, const char *sni,
                            const ptc_tls_config_t *tls)
{
    uint32_t h = 2166136261u;
    h = hash_bytes(h, &https, sizeof(https));
    h = hash_bytes(h, host, strlen(host) + 1);
    h = hash_bytes(h, &port, sizeof(port));
    h = hash_bytes(h, sni, strlen(sni) + 1);
    return hash_bytes(h, &tls, sizeof(tls));
}

/* Finds or makes the origin and takes a reference to it. */
origin_t *ptc_http_client_conn_origin_get(ptc_http_client_t *c, bool https, const char *host,
                                          uint16_t port, const char *sni, ptc_tls_config_t *tls)
{
    uint32_t h = origin_hash(https, host, port, sni, tls);
    origin_t **bucket = &c->origins[h % ORIGIN_BUCKETS];
    for (origin_t *o = *bucket; o != NULL; o = o->next) {
        if (o->hash == h && o->https == https && o->port == port && o->tls == tls &&
            strcmp(o->names, host) == 0 && strcmp(o->sni, sni) == 0) {
            o->refs++;
            return o;
        }
    }
    size_t hl = strlen(host) + 1;
    size_t sl = strlen(sni) + 1;
    origin_t *o = ptc_xcalloc(1, sizeof(*o) + hl + sl);
    o->client = c;
    o->hash = h;
    o->refs = 1;
    o->https = https;
    o->port = port;
    o->tls = tls != NULL ? ptc_tls_config_ref(tls) : NULL;
    memcpy(o->names, host, hl);
    memcpy(o->names + hl, sni, sl);
    o->sni = o->names + hl;
    o->next = *bucket;
    *bucket = o;
    return o;
}

void ptc_http_client_conn_origin_unref(origin_t *o)
{
    if (--o->refs != 0) {
        return;
    }
    assert(o->idle == NULL);
    origin_t **p = &o->client->origins[o->hash % ORIGIN_BUCKETS];
    while (*p != o) {
        p = &(*p)->next;
    }
    *p = o->next;
    ptc_tls_session_free(o->session);
    ptc_tls_config_unref(o->tls);
    free(o);
}

/* Pooled connections do not keep the loop alive: an idle client lets uv_run return. */
static void conn_set_ref(conn_t *conn, bool ref)
{
    uv_handle_t *hs[2] = {(uv_handle_t *)&conn->timer, NULL};
    if (conn->tcp != NULL) {
        hs[1] = (uv_handle_t *)conn->tcp;
    } else if (conn->tls != NULL) {
        hs[1] = (uv_handle_t *)ptc_tls_stream_tcp(conn->tls);
    }
    for (size_t i = 0; i < 2; i++) {
        if (hs[i] != NULL) {
            if (ref) {
                uv_ref(hs[i]);
            } else {
                uv_unref(hs[i]);
            }
        }
    }
}

static void pool_remove(conn_t *conn)
{
    origin_t *o = conn->origin;
    if (conn->idle_prev != NULL) {
        conn->idle_prev->idle_next = conn->idle_next;
    } else {
        o->idle = conn->idle_next;
    }
    if (conn->idle_next != NULL) {
        conn->idle_next->idle_prev = conn->idle_prev;
    }
    conn->idle_prev = NULL;
    conn->idle_next = NULL;
    o->idle_cnt--;
    conn->client->stats.idle--;
    conn_set_ref(conn, true);
}

conn_t *ptc_http_client_conn_pool_take(origin_t *o)
{
    conn_t *conn = o->idle;
    if (conn != NULL) {
        pool_remove(conn);
    }
    return conn;
}

/* ---- connection state ---- */

/* The one place a connection changes state; every transition is checked (STYLE §6). */
void ptc_http_client_conn_set_state(conn_t *conn, conn_state_t to)
{
    bool ok = false;
    switch (conn->state) {
    case C_DIALING:
        ok = to == C_HANDSHAKE || to == C_ACTIVE || to == C_CLOSED;
        break;
    case C_HANDSHAKE:
        ok = to == C_ACTIVE || to == C_CLOSED;
        break;
    case C_ACTIVE:
        ok = to == C_IDLE || to == C_PIPE || to == C_CLOSED;
        break;
    case C_IDLE:
        ok = to == C_ACTIVE || to == C_CLOSED;
        break;
    case C_PIPE:
        ok = to == C_CLOSED;
        break;
    case C_CLOSED:
        break;
    }
    assert(ok);
    (void)ok;
    conn->state = to;
}

/* ---- connection timer (the single place it is armed: STYLE §5 rule 6) ---- */

static void on_conn_timer(uv_timer_t *t);

void ptc_http_client_conn_timer(conn_t *conn, timer_use_t use, uint64_t ms)
{
    if (conn->closing) {
        return;
    }
    conn->timer_use = use;
    if (use == T_NONE) {
        uv_timer_stop(&conn->timer);
    } else {
        uv_timer_start(&conn->timer, on_conn_timer, ms, 0);
    }
}

/* ---- closing ---- */

static void list_remove_conn(conn_t *conn)
{
    ptc_http_client_t *c = conn->client;
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        c->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
}

static void conn_free(conn_t *conn)
{
    ptc_http_client_t *c = conn->client;
    if (conn->was_pipe && conn->pipe.on_close != NULL) {
        conn->pipe.on_close(conn);
    }
    list_remove_conn(conn);
    c->stats.conns--;
    ptc_http_parser_free(conn->parser);
    ptc_buf_dispose(&conn->in);
    ptc_chunkq_dispose(&conn->out);
    ptc_http_client_conn_origin_unref(conn->origin);
    free(conn);
    ptc_http_client_maybe_free(c);
}

static void conn_maybe_free(conn_t *conn)
{
    if (conn->closing && conn->open_handles == 0 && conn->dial == NULL) {
        conn_free(conn);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    conn_t *conn = h->data;
    conn->open_handles--;
    conn_maybe_free(conn);
}

static void on_tcp_closed(uv_handle_t *h)
{
    conn_t *conn = h->data;
    free(h);
    conn->tcp = NULL;
    conn->open_handles--;
    conn_maybe_free(conn);
}

static void on_tls_closed(ptc_tls_stream_t *s)
{
    conn_t *conn = ptc_tls_stream_data(s);
    conn->tls = NULL;
    conn->open_handles--;
    if (!conn->closing) {
        /* The end of a pipe's graceful shutdown. */
        ptc_http_client_conn_close(conn);
        return;
    }
    conn_maybe_free(conn);
}

/* Closes the connection (idempotent). A request bound to it must have been detached. */
void ptc_http_client_conn_close(conn_t *conn)
{
    if (conn->closing) {
        return;
    }
    assert(conn->req == NULL);
    if (conn->state == C_IDLE) {
        pool_remove(conn);
    }
    ptc_http_client_conn_set_state(conn, C_CLOSED);
    conn->closing = true;
    conn->timer_use = T_NONE;
    conn->reading = false;
    if (conn->dial != NULL) {
        /* Its callback still runs, with UV_ECANCELED or a socket that is closed then. */
        ptc_net_dial_cancel(conn->dial);
    }
    uv_close((uv_handle_t *)&conn->timer, on_timer_closed);
    if (conn->tcp != NULL) {
        uv_close((uv_handle_t *)conn->tcp, on_tcp_closed);
    }
    if (conn->tls != NULL) {
        ptc_tls_stream_close(conn->tls);
    }
}

/* ---- writing ---- */

static size_t conn_backlog(const conn_t *conn)
{
    return conn->out.queued + (conn->tls != NULL ? ptc_tls_stream_backlog(conn->tls) : 0);
}

bool ptc_http_client_conn_is_full(const conn_t *conn)
{
    return conn->write_err == 0 && conn_backlog(conn) >= OUT_HIGH_WATER;
}

/* A write failed within an API call: handle it from the timer, never from the call. */
void ptc_http_client_conn_defer_write_error(conn_t *conn, int err)
{
    if (conn->pending_werr == 0 && conn->write_err == 0) {
        conn->pending_werr = err;
        ptc_http_client_conn_timer(conn, T_KICK, 0);
    }
}

static void conn_try_shutdown(conn_t *conn);

static void conn_after_write(conn_t *conn)
{
    if (conn->closing) {
        return;
    }
    if (conn->need_drain && conn_backlog(conn) <= OUT_LOW_WATER) {
        conn->need_drain = false;
        if (conn->state == C_ACTIVE && conn->req != NULL && conn->req->on_drain != NULL) {
            conn->req->on_drain(conn->req);
        } else if (conn->state == C_PIPE && conn->pipe.on_drain != NULL) {
            conn->pipe.on_drain(conn);
        }
        if (conn->closing) {
            return;
        }
    }
    if (conn->state == C_ACTIVE) {
        ptc_http_client_arm(conn);
    }
    if (conn->shutting_down) {
        conn_try_shutdown(conn);
    }
}

static void on_plain_write(uv_write_t *req, int status)
{
    conn_t *conn = req->data;
    conn->writing = false;
    /* STYLE §5 rule 4: UV_ECANCELED during close; the queue is freed with the connection. */
    if (conn->closing) {
        return;
    }
    if (status < 0) {
        conn_on_write_error(conn, status);
        return;
    }
    ptc_chunkq_consume(&conn->out, conn->wlen);
    if (conn->hold) {
        conn->hold_len -= conn->wlen;
    }
    conn->wlen = 0;
    ptc_http_client_conn_flush(conn);
    conn_after_write(conn);
}

static void on_tls_write(ptc_tls_stream_t *s, int status, void *arg)
{
    (void)s;
    conn_t *conn = arg;
    if (conn->closing) {
        return;
    }
    if (status < 0) {
        conn_on_write_error(conn, status);
        return;
    }
    conn_after_write(conn);
}

static void on_tls_drain(ptc_tls_stream_t *s)
{
    conn_t *conn = ptc_tls_stream_data(s);
    ptc_http_client_conn_flush(conn);
    conn_after_write(conn);
}

static bool conn_writable(const conn_t *conn)
{
    return !conn->closing && conn->write_err == 0 && conn->pending_werr == 0 &&
           (conn->state == C_ACTIVE || conn->state == C_PIPE || conn->state == C_IDLE);
}

/* Hands queued bytes to the socket (http: one write at a time) or to TLS (while it is not
 * full). While `hold` is set only hold_len bytes may go. */
void ptc_http_client_conn_flush(conn_t *conn)
{
    if (!conn_writable(conn)) {
        return;
    }
    size_t limit = conn->hold ? conn->hold_len : SIZE_MAX;
    if (conn->tls != NULL) {
        while (conn->out.queued > 0 && limit > 0 && !ptc_tls_stream_is_full(conn->tls)) {
            ptc_slice_t s;
            (void)ptc_chunkq_peek(&conn->out, &s, 1);
            size_t take = min_size(s.len, limit);
            int rc = ptc_tls_stream_write(conn->tls, s.ptr, take, on_tls_write, conn);
            if (rc != 0) {
                ptc_http_client_conn_defer_write_error(conn, rc);
                return;
            }
            ptc_chunkq_consume(&conn->out, take);
            if (conn->hold) {
                conn->hold_len -= take;
                limit -= take;
            }
        }
        return;
    }
    if (conn->writing || conn->out.queued == 0 || limit == 0) {
        return;
    }
    ptc_slice_t s[WRITE_BUFS];
    size_t n = ptc_chunkq_peek(&conn->out, s, WRITE_BUFS);
    size_t total = 0;
    unsigned nb = 0;
    for (size_t i = 0; i < n && total < limit; i++) {
        size_t take = min_size(s[i].len, limit - total);
        conn->wbufs[nb++] = uv_buf_init((char *)s[i].ptr, (unsigned)take);
        total += take;
    }
    conn->wreq.data = conn;
    int rc = uv_write(&conn->wreq, (uv_stream_t *)conn->tcp, conn->wbufs, nb, on_plain_write);
    if (rc != 0) {
        ptc_http_client_conn_defer_write_error(conn, rc);
        return;
    }
    conn->writing = true;
    conn->wlen = total;
}

/*
 * Sends the concatenation of v[0..cnt): written at once when nothing is queued (http:
 * uv_try_write; https: one TLS write, which keeps a chunk and its framing in one record
 * only when cnt is 1), the rest queued. A connection that has failed drops the bytes (its
 * request reports the failure). Returns 0 or PTC_ENOMEM (the connection is then failed).
 */
int ptc_http_client_conn_sendv(conn_t *conn, const ptc_slice_t *v, size_t cnt)
{
    if (conn->closing || conn->write_err != 0 || conn->pending_werr != 0) {
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < cnt; i++) {
        total += v[i].len;
    }
    size_t skip = 0; /* bytes already written */
    bool now = (conn->state == C_ACTIVE || conn->state == C_PIPE) && !conn->hold &&
               conn->out.queued == 0 && total <= TRY_WRITE_MAX;
    if (now && conn->tls != NULL && cnt == 1 && !ptc_tls_stream_is_full(conn->tls)) {
        int rc = ptc_tls_stream_write(conn->tls, v[0].ptr, v[0].len, on_tls_write, conn);
        if (rc != 0) {
            ptc_http_client_conn_defer_write_error(conn, rc);
        }
        return 0;
    }
    if (now && conn->tls == NULL && !conn->writing) {
        uv_buf_t b[3];
        assert(cnt <= 3);
        for (size_t i = 0; i < cnt; i++) {
            b[i] = uv_buf_init((char *)v[i].ptr, (unsigned)v[i].len);
        }
        int n = uv_try_write((uv_stream_t *)conn->tcp, b, (unsigned)cnt);
        /* Errors other than EAGAIN come back from the queued write's callback. */
        if (n > 0) {
            skip = (size_t)n;
        }
        if (skip == total) {
            return 0;
        }
    }
    for (size_t i = 0; i < cnt; i++) {
        size_t len = v[i].len;
        const uint8_t *p = v[i].ptr;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        p += skip;
        len -= skip;
        skip = 0;
        if (ptc_chunkq_try_append(&conn->out, p, len) != 0) {
            ptc_http_client_conn_defer_write_error(conn, PTC_ENOMEM);
            return PTC_ENOMEM;
        }
    }
    ptc_http_client_conn_flush(conn);
    return 0;
}

int ptc_http_client_conn_send(conn_t *conn, const void *p, size_t len)
{
    ptc_slice_t v = {p, len};
    return ptc_http_client_conn_sendv(conn, &v, 1);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *conn = h->data;
    *buf = uv_buf_init((char *)conn->client->rbuf, READ_BUF_SIZE);
}

static void on_plain_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

void ptc_http_client_conn_read_start(conn_t *conn)
{
    if (conn->reading || conn->closing) {
        return;
    }
    int rc;
    if (conn->tls != NULL) {
        rc = ptc_tls_stream_read_start(conn->tls);
    } else {
        rc = uv_read_start((uv_stream_t *)conn->tcp, on_alloc, on_plain_read);
    }
    if (rc != 0) {
        conn_on_read_end(conn, rc);
        return;
    }
    conn->reading = true;
}

void ptc_http_client_conn_read_stop(conn_t *conn)
{
    if (!conn->reading || conn->closing) {
        return;
    }
    if (conn->tls != NULL) {
        ptc_tls_stream_read_stop(conn->tls);
    } else {
        uv_read_stop((uv_stream_t *)conn->tcp);
    }
    conn->reading = false;
}

/* Keeps bytes that could not be delivered yet. Returns false if the connection failed. */
static bool conn_hold_input(conn_t *conn, const uint8_t *p, size_t len)
{
    if (ptc_buf_try_append(&conn->in, p, len) != 0) {
        if (conn->req != NULL) {
            ptc_http_client_req_fail(conn->req, PTC_ENOMEM, "out of memory holding response bytes");
        } else {
            ptc_http_client_conn_close(conn);
        }
        return false;
    }
    ptc_http_client_conn_read_stop(conn);
    return true;
}

static void pipe_on_data(conn_t *conn, const uint8_t *p, size_t len)
{
    if (!conn->pipe_started || !conn->pipe_reading || conn->in.len > 0) {
        (void)conn_hold_input(conn, p, len);
        return;
    }
    ptc_slice_t s = {p, len};
    conn->pipe.on_read(conn, 0, s);
}

static void conn_on_data(conn_t *conn, const uint8_t *p, size_t len)
{
    switch (conn->state) {
    case C_PIPE:
        pipe_on_data(conn, p, len);
        return;
    case C_ACTIVE:
        break;
    case C_IDLE:
        /* A server sends nothing unasked: whatever this is, the connection is unusable. */
        ptc_http_client_conn_close(conn);
        return;
    case C_DIALING:
    case C_HANDSHAKE:
    case C_CLOSED:
        return;
    }
    if (conn->in.len > 0 || conn->req->paused) {
        (void)conn_hold_input(conn, p, len);
        return;
    }
    size_t n = ptc_http_client_parse(conn, p, len);
    if (conn->closing) {
        return;
    }
    if (n < len && !conn_hold_input(conn, p + n, len - n)) {
        return;
    }
    if (conn->state == C_ACTIVE) {
        ptc_http_client_arm(conn);
    }
}

static void on_plain_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *conn = stream->data;
    if (nread > 0) {
        conn_on_data(conn, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (nread == 0) {
        return;
    }
    ptc_http_client_conn_read_stop(conn);
    conn_on_read_end(conn, (int)nread);
}

static void on_tls_read(ptc_tls_stream_t *s, int status, ptc_slice_t data)
{
    conn_t *conn = ptc_tls_stream_data(s);
    if (status == 0) {
        conn_on_data(conn, data.ptr, data.len);
        return;
    }
    conn->reading = false;
    conn_on_read_end(conn, status);
}

static void pipe_end_read(conn_t *conn, int err)
{
    conn->pipe_read_done = true;
    ptc_slice_t none = {NULL, 0};
    conn->pipe.on_read(conn, err, none);
}

/* Reading ended with `err` (UV_EOF, a libuv error, PTC_ETLS...). */
static void conn_on_read_end(conn_t *conn, int err)
{
    switch (conn->state) {
    case C_IDLE:
        ptc_http_client_conn_close(conn);
        return;
    case C_PIPE:
        if (!conn->pipe_started || !conn->pipe_reading || conn->in.len > 0) {
            conn->read_err = err;
            return;
        }
        if (!conn->pipe_read_done) {
            pipe_end_read(conn, err);
        }
        return;
    case C_ACTIVE:
        break;
    case C_DIALING:
    case C_HANDSHAKE:
    case C_CLOSED:
        return;
    }
    ptc_http_client_req_t *r = conn->req;
    if (r->paused || conn->in.len > 0) {
        /* Held input goes first; the end is handled when the request resumes. */
        conn->read_err = err;
        return;
    }
    ptc_http_client_req_on_read_end(conn, r, err);
}

static void conn_on_write_error(conn_t *conn, int err)
{
    if (conn->closing || conn->write_err != 0) {
        return;
    }
    conn->write_err = err;
    switch (conn->state) {
    case C_ACTIVE: {
        ptc_http_client_req_t *r = conn->req;
        if (ptc_http_client_req_can_retry(conn, r)) {
            ptc_http_client_req_retry(r);
        } else if (!r->got_head) {
            ptc_http_client_req_fail(r, err, "writing the request to %s:%u: %s",
                                     conn->origin->names, (unsigned)conn->origin->port,
                                     ptc_strerror(err));
        }
        /* Otherwise the response is under way: let it finish (the connection is not
         * reused). */
        return;
    }
    case C_PIPE:
        if (conn->shutting_down) {
            ptc_http_client_conn_close(conn);
            return;
        }
        ptc_http_client_conn_read_stop(conn);
        if (conn->pipe_started && conn->pipe_reading && conn->in.len == 0 &&
            !conn->pipe_read_done) {
            pipe_end_read(conn, err);
        } else if (conn->read_err == 0) {
            conn->read_err = err;
        }
        return;
    case C_IDLE:
    case C_DIALING:
    case C_HANDSHAKE:
    case C_CLOSED:
        ptc_http_client_conn_close(conn);
        return;
    }
}

/* ---- deferred work ---- */

static void pipe_kick(conn_t *conn)
{
    if (!conn->pipe_started || !conn->pipe_reading || conn->pipe_read_done) {
        return;
    }
    if (conn->in.len > 0) {
        ptc_slice_t s = ptc_buf_slice(&conn->in);
        conn->pipe.on_read(conn, 0, s);
        if (conn->closing) {
            return;
        }
        ptc_buf_consume(&conn->in, s.len);
        ptc_buf_dispose(&conn->in);
        if (!conn->pipe_reading || conn->pipe_read_done) {
            return;
        }
    }
    if (conn->read_err != 0) {
        pipe_end_read(conn, conn->read_err);
        return;
    }
    ptc_http_client_conn_read_start(conn);
}

static void on_conn_timer(uv_timer_t *t)
{
    conn_t *conn = t->data;
    timer_use_t use = conn->timer_use;
    conn->timer_use = T_NONE;
    ptc_http_client_req_t *r = conn->req;
    ptc_http_client_t *c = conn->client;
    switch (use) {
    case T_NONE:
        return;
    case T_SEND:
        if (r != NULL) {
            ptc_http_client_req_fail(r, PTC_ETIMEOUT, "request body idle for %llu ms",
                                     (unsigned long long)c->idle_timeout_ms);
        }
        return;
    case T_CONTINUE:
        /* RFC 9110 §10.1.1: a client need not wait for 100 Continue indefinitely. */
        conn->hold = false;
        ptc_http_client_conn_flush(conn);
        ptc_http_client_arm(conn);
        return;
    case T_HEAD:
        if (r != NULL) {
            ptc_http_client_req_fail(r, PTC_ETIMEOUT, "no response head from %s:%u within %llu ms",
                                     conn->origin->names, (unsigned)conn->origin->port,
                                     (unsigned long long)r->head_timeout_ms);
        }
        return;
    case T_BODY:
        if (r != NULL) {
            ptc_http_client_req_fail(r, PTC_ETIMEOUT, "response body idle for %llu ms",
                                     (unsigned long long)c->idle_timeout_ms);
        }
        return;
    case T_POOL:
    case T_SHUTDOWN:
        ptc_http_client_conn_close(conn);
        return;
    case T_KICK:
        if (conn->pending_werr != 0) {
            int err = conn->pending_werr;
            conn->pending_werr = 0;
            conn_on_write_error(conn, err);
            if (conn->closing) {
                return;
            }
        }
        if (conn->state == C_PIPE) {
            pipe_kick(conn);
        } else {
            ptc_http_client_req_kick(conn);
            ptc_http_client_arm(conn);
        }
        return;
    }
}

/* ---- connecting ---- */

void ptc_http_client_conn_pool_put(conn_t *conn)
{
    ptc_http_client_t *c = conn->client;
    origin_t *o = conn->origin;
    if (c->closing || o->idle_cnt >= c->max_idle) {
        ptc_http_client_conn_close(conn);
        return;
    }
    ptc_http_client_conn_set_state(conn, C_IDLE);
    conn->idle_prev = NULL;
    conn->idle_next = o->idle;
    if (o->idle != NULL) {
        o->idle->idle_prev = conn;
    }
    o->idle = conn;
    o->idle_cnt++;
    c->stats.idle++;
    ptc_buf_dispose(&conn->in);
    ptc_http_client_conn_timer(conn, T_POOL, c->pool_idle_ms);
    /* Reading goes on, so that a close by the server is seen while idle. */
    ptc_http_client_conn_read_start(conn);
    if (!conn->closing) {
        conn_set_ref(conn, false);
    }
}

/* The connection is up (TCP, and TLS if any): send what is queued and read. */
static void conn_ready(conn_t *conn)
{
    ptc_http_client_conn_set_state(conn, C_ACTIVE);
    ptc_http_client_req_t *r = conn->req;
    if (r->paused) {
        ptc_http_client_conn_read_stop(conn);
    } else {
        ptc_http_client_conn_read_start(conn);
        if (conn->closing) {
            return;
        }
    }
    ptc_http_client_conn_flush(conn);
    ptc_http_client_arm(conn);
}

static void on_tls_handshake(ptc_tls_stream_t *s, int status)
{
    conn_t *conn = ptc_tls_stream_data(s);
    origin_t *o = conn->origin;
    ptc_http_client_req_t *r = conn->req;
    if (status != 0) {
        ptc_tls_err_t e;
        ptc_tls_last_error(ptc_tls_stream_tls(s), &e);
        if (r == NULL) {
            ptc_http_client_conn_close(conn);
        } else if (status == PTC_ETIMEOUT) {
            ptc_http_client_req_fail(r, status, "TLS handshake with %s:%u timed out after %llu ms",
                                     o->names, (unsigned)o->port,
                                     (unsigned long long)conn->client->tls_timeout_ms);
        } else {
            ptc_http_client_req_fail(r, status, "TLS handshake with %s:%u (name %s): %s", o->names,
                                     (unsigned)o->port, o->sni,
                                     e.reason[0] != '\0' ? e.reason : ptc_strerror(status));
        }
        return;
    }
    ptc_tls_session_t *sess = NULL;
    if (ptc_tls_get_session(ptc_tls_stream_tls(s), &sess) == 0) {
        ptc_tls_session_free(o->session);
        o->session = sess;
    }
    if (r == NULL) {
        ptc_http_client_conn_close(conn);
        return;
    }
    conn_ready(conn);
}

static void on_dial(ptc_net_dial_t *d, int status, uv_tcp_t *tcp)
{
    conn_t *conn = ptc_net_dial_data(d);
    ptc_http_client_t *c = conn->client;
    origin_t *o = conn->origin;
    int last = ptc_net_dial_last_error(d);
    conn->dial = NULL;
    if (conn->closing) {
        if (tcp != NULL) {
            uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
        }
        conn_maybe_free(conn);
        return;
    }
    ptc_http_client_req_t *r = conn->req;
    assert(r != NULL);
    if (status == PTC_EDNS) {
        ptc_http_client_req_fail(r, status, "resolving %s: %s", o->names,
                                 last != 0 ? uv_strerror(last) : "no address");
        return;
    }
    if (status == PTC_ETIMEOUT) {
        ptc_http_client_req_fail(r, status, "connecting to %s:%u timed out after %llu ms", o->names,
                                 (unsigned)o->port, (unsigned long long)c->connect_timeout_ms);
        return;
    }
    if (status != 0) {
        ptc_http_client_req_fail(r, status, "connecting to %s:%u: %s", o->names, (unsigned)o->port,
                                 uv_strerror(status));
        return;
    }
    (void)uv_tcp_nodelay(tcp, 1);
    if (!o->https) {
        conn->tcp = tcp;
        tcp->data = conn;
        conn->open_handles++;
        conn_ready(conn);
        return;
    }
    ptc_tls_stream_opts_t so = {
        .server_name = o->sni,
        .handshake_timeout_ms = c->tls_timeout_ms,
        .high_water = OUT_HIGH_WATER,
        .low_water = OUT_LOW_WATER,
        .on_handshake = on_tls_handshake,
        .on_read = on_tls_read,
        .on_drain = on_tls_drain,
        .on_close = on_tls_closed,
        .data = conn,
    };
    int rc = ptc_tls_stream_new(tcp, o->tls, &so, &conn->tls);
    if (rc != 0) {
        ptc_http_client_req_fail(r, rc, "starting TLS with %s:%u: %s", o->names, (unsigned)o->port,
                                 ptc_strerror(rc));
        return;
    }
    conn->open_handles++;
    ptc_http_client_conn_set_state(conn, C_HANDSHAKE);
    conn->reading = true;
    if (o->session != NULL) {
        /* Resumption saves the server a full handshake; a refusal just means a full one. */
        int src = ptc_tls_set_session(ptc_tls_stream_tls(conn->tls), o->session);
        (void)src;
    }
}

/* Makes a connection to the origin; the dial runs, and the caller binds a request. */
int ptc_http_client_conn_dial(ptc_http_client_t *c, origin_t *o, conn_t **out)
{
    *out = NULL;
    conn_t *conn = ptc_xcalloc(1, sizeof(*conn));
    int rc = uv_timer_init(c->loop, &conn->timer);
    if (rc != 0) {
        free(conn);
        return rc;
    }
    conn->client = c;
    conn->origin = o;
    o->refs++;
    conn->timer.data = conn;
    conn->open_handles = 1;
    conn->state = C_DIALING;
    conn->parser = ptc_http_parser_new(PTC_HTTP_RESPONSE, &c->limits);
    ptc_buf_init(&conn->in);
    ptc_chunkq_init(&conn->out, OUT_HIGH_WATER, OUT_LOW_WATER);
    conn->next = c->conns;
    if (c->conns != NULL) {
        c->conns->prev = conn;
    }
    c->conns = conn;
    c->stats.conns++;
    c->stats.connects++;
    rc =
        ptc_net_dial(c->loop, o->names, o->port, c->connect_timeout_ms, on_dial, conn, &conn->dial);
    if (rc != 0) {
        ptc_http_client_conn_close(conn);
        return rc;
    }
    *out = conn;
    return 0;
}

/* ---- pipes ---- */

int ptc_http_client_pipe_start(ptc_http_client_pipe_t *p, const ptc_http_client_pipe_opts_t *opts)
{
    if (p->closing || p->shutting_down) {
        return PTC_ECLOSED;
    }
    if (opts == NULL || opts->on_read == NULL) {
        return UV_EINVAL;
    }
    if (p->pipe_started) {
        return PTC_ESTATE;
    }
    p->pipe = *opts;
    p->pipe_started = true;
    p->pipe_reading = true;
    ptc_http_client_conn_timer(p, T_KICK, 0);
    return 0;
}

int ptc_http_client_pipe_write(ptc_http_client_pipe_t *p, const void *data, size_t len)
{
    if (p->closing || p->shutting_down) {
        return PTC_ECLOSED;
    }
    if (len == 0) {
        return UV_EINVAL;
    }
    if (p->write_err != 0) {
        return p->write_err;
    }
    int rc = ptc_http_client_conn_send(p, data, len);
    if (rc != 0) {
        return rc;
    }
    if (ptc_http_client_conn_is_full(p)) {
        p->need_drain = true;
    }
    return 0;
}

bool ptc_http_client_pipe_is_full(const ptc_http_client_pipe_t *p)
{
    return ptc_http_client_conn_is_full(p);
}

void ptc_http_client_pipe_read_stop(ptc_http_client_pipe_t *p)
{
    if (p->closing || !p->pipe_reading) {
        return;
    }
    p->pipe_reading = false;
    ptc_http_client_conn_read_stop(p);
    if (p->timer_use == T_KICK && p->pending_werr == 0) {
        ptc_http_client_conn_timer(p, T_NONE, 0);
    }
}

void ptc_http_client_pipe_read_start(ptc_http_client_pipe_t *p)
{
    if (p->closing || p->shutting_down || !p->pipe_started || p->pipe_reading ||
        p->pipe_read_done) {
        return;
    }
    p->pipe_reading = true;
    ptc_http_client_conn_timer(p, T_KICK, 0);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    ptc_http_client_conn_close(req->data); /* with UV_ECANCELED it is closing already */
}

static void conn_try_shutdown(conn_t *conn)
{
    if (!conn->shutting_down || conn->shutdown_started || conn->closing) {
        return;
    }
    if (conn->write_err != 0) {
        ptc_http_client_conn_close(conn);
        return;
    }
    if (conn->tls != NULL) {
        if (conn->out.queued > 0) {
            return; /* the rest goes to TLS as it drains */
        }
        conn->shutdown_started = true;
        ptc_tls_stream_shutdown(conn->tls); /* closes the stream when done: on_tls_closed */
        return;
    }
    if (conn->out.queued > (conn->writing ? conn->wlen : 0)) {
        return;
    }
    /* libuv runs the shutdown after the write in flight. */
    conn->shutdown_started = true;
    conn->shutdown_req.data = conn;
    if (uv_shutdown(&conn->shutdown_req, (uv_stream_t *)conn->tcp, on_shutdown) != 0) {
        ptc_http_client_conn_close(conn);
    }
}

void ptc_http_client_pipe_shutdown(ptc_http_client_pipe_t *p)
{
    if (p->closing || p->shutting_down) {
        return;
    }
    p->shutting_down = true;
    p->pipe_reading = false;
    ptc_http_client_conn_read_stop(p);
    ptc_http_client_conn_timer(p, T_SHUTDOWN, PIPE_SHUTDOWN_TIMEOUT_MS);
    if (p->pending_werr != 0) {
        ptc_http_client_conn_close(p);
        return;
    }
    conn_try_shutdown(p);
}

void ptc_http_client_pipe_close(ptc_http_client_pipe_t *p)
{
    ptc_http_client_conn_close(p);
}

void *ptc_http_client_pipe_data(const ptc_http_client_pipe_t *p)
{
    return p->pipe.data;
}
