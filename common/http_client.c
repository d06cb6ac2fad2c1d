/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 client (see http_client.h). A client owns its origins (one per scheme, host,
 * port, TLS name and TLS configuration, each with a pool of idle connections), its
 * connections and its requests. A connection owns one timer (every deadline of the exchange
 * it serves, the pool's idle deadline, and deferred work: STYLE §5 rule 6), its dial while
 * connecting, and then either its TCP handle (http) or a common/tls_stream that owns the TCP
 * handle (https). Response bytes go through common/http's pull parser; request bytes go
 * through one output queue per connection with one write in flight at a time, written at
 * once with uv_try_write() when nothing is queued, so that a small request on a pooled plain
 * connection costs no allocation but the request object.
 *
 * Plain connections read into one buffer shared by the whole client: the parser copies heads
 * into its own storage and body slices are handed out before the read callback returns, so
 * only bytes held back by a pause (or left over at a protocol switch) are copied, into the
 * connection's own buffer. Failures are never reported from within an API call: a failed
 * request moves to the client's list of ended requests, whose on_error callbacks run from
 * the client's timer on the next loop iteration (h2o's call_write_complete_delayed idea).
 * on_done and on_upgrade run from the read path, after the connection has been put back
 * in the pool or closed.
 *
 * Depends on libuv, common/net, common/tls, common/tls_stream, common/http and common/buf.
 */
#include "common/http_client.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/net.h"
#include "common/tls_stream.h"

/* Plain connections read into the client's shared buffer, this big. */
#define READ_BUF_SIZE (64 * 1024)
/* Slices handed to one uv_write. */
#define WRITE_BUFS 16
/* Write back-pressure on the bytes a connection has queued (plus TLS ciphertext). */
#define OUT_HIGH_WATER (256 * 1024)
#define OUT_LOW_WATER (64 * 1024)
/* Room kept at the end of the head buffer for the headers the client adds itself. */
#define HEAD_EXTRA 512
#define ORIGIN_BUCKETS 64
#define PIPE_SHUTDOWN_TIMEOUT_MS 5000
/* Bodies beyond this go through the queue rather than one uv_try_write (uv_buf_t lengths
 * are unsigned int). */
#define TRY_WRITE_MAX (1u << 30)

typedef struct origin origin_t;
/* A connection; after a protocol switch it is handed out as the pipe. */
typedef struct ptc_http_client_pipe conn_t;

struct origin {
    ptc_http_client_t *client;
    origin_t *next; /* hash chain */
    uint32_t hash;
    unsigned refs; /* connections and requests that point here */
    bool https;
    uint16_t port;
    ptc_tls_config_t *tls; /* a reference (https only) */
    conn_t *idle;          /* pooled connections, most recently used first */
    size_t idle_cnt;
    ptc_tls_session_t *session; /* the last session, offered for resumption */
    const char *sni;            /* points into names[] */
    char names[];               /* host NUL sni NUL */
};

typedef enum conn_state {
    C_DIALING,   /* resolving and connecting */
    C_HANDSHAKE, /* TLS handshake */
    C_ACTIVE,    /* serving a request */
    C_IDLE,      /* in the pool */
    C_PIPE,      /* a raw byte stream after a protocol switch */
    C_CLOSED,    /* closing: waiting for the handles and the dial */
} conn_state_t;

typedef enum timer_use {
    T_NONE,
    T_SEND,     /* the request is being written: idle deadline */
    T_CONTINUE, /* waiting for 100 Continue */
    T_HEAD,     /* waiting for the response head */
    T_BODY,     /* reading the response body: idle deadline */
    T_POOL,     /* idle in the pool */
    T_KICK,     /* deferred work: held input, a write error found during a call */
    T_SHUTDOWN, /* a pipe's graceful close */
} timer_use_t;

struct ptc_http_client_pipe {
    ptc_http_client_t *client;
    origin_t *origin;
    conn_t *prev; /* the client's list of connections */
    conn_t *next;
    conn_t *idle_prev; /* the origin's pool */
    conn_t *idle_next;
    conn_state_t state;
    timer_use_t timer_use;
    uv_timer_t timer;
    ptc_net_dial_t *dial;  /* while the dial's callback is outstanding */
    uv_tcp_t *tcp;         /* http: owned, freed in its close callback */
    ptc_tls_stream_t *tls; /* https: owns its TCP handle */
    unsigned open_handles;
    bool closing;
    bool reading; /* the socket (or TLS plaintext) is being read */
    bool writing; /* http: wreq is in flight */
    bool need_drain;
    bool hold; /* Expect: 100-continue: only hold_len more bytes may be written */
    bool shutting_down;
    bool shutdown_started;
    bool was_pipe;
    bool pipe_started;
    bool pipe_reading;
    bool pipe_read_done;
    int read_err;     /* reading ended; reported once the held input is delivered */
    int write_err;    /* a write failed; nothing more is written */
    int pending_werr; /* a write failed within an API call; handled by the kick */
    unsigned served;  /* exchanges completed */
    size_t hold_len;
    size_t wlen; /* bytes of `out` in the write in flight */
    ptc_http_parser_t *parser;
    ptc_http_client_req_t *req;
    ptc_buf_t in;     /* input held back (pause, protocol switch) */
    ptc_chunkq_t out; /* bytes not yet written (http) or not yet given to TLS (https) */
    uv_write_t wreq;
    uv_shutdown_t shutdown_req;
    uv_buf_t wbufs[WRITE_BUFS];
    ptc_http_client_pipe_opts_t pipe;
};

typedef enum req_state {
    R_ACTIVE,
    R_ENDED, /* the final callback ran or is pending */
} req_state_t;

struct ptc_http_client_req {
    ptc_http_client_t *client;
    origin_t *origin; /* a reference, for a retry */
    conn_t *conn;
    ptc_http_client_req_t *prev; /* the client's active list, then its ended list */
    ptc_http_client_req_t *next;
    req_state_t state;
    ptc_http_client_phase_t phase; /* set when the request ends */
    int err;
    ptc_http_client_head_cb on_head;
    ptc_http_client_body_cb on_body;
    ptc_http_client_done_cb on_done;
    ptc_http_client_error_cb on_error;
    ptc_http_client_drain_cb on_drain;
    ptc_http_client_upgrade_cb on_upgrade;
    void *data;
    ptc_http_client_body_t body_mode;
    uint64_t content_length;
    uint64_t written;
    uint64_t head_timeout_ms;
    bool body_ended;
    bool expect;
    bool paused;
    bool got_bytes; /* any byte of the response arrived */
    bool got_head;
    bool idempotent;
    bool replayable; /* no streamed body: the request can be sent again */
    bool retried;
    bool reused;
    bool conn_close;
    size_t method_len;
    size_t head_len;
    size_t body_len;
    char detail[256];
    uint8_t bytes[]; /* the head, then the body given up front */
};

struct ptc_http_client {
    uv_loop_t *loop;
    uv_timer_t kick; /* runs the on_error callbacks of ended requests */
    bool closing;
    bool kick_closing;
    bool kick_closed;
    ptc_http_client_close_cb on_close;
    void *close_data;
    ptc_tls_config_t *tls_verify;
    ptc_tls_config_t *tls_noverify;
    char *ca_file;
    ptc_http_limits_t limits;
    uint64_t connect_timeout_ms;
    uint64_t tls_timeout_ms;
    uint64_t head_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t pool_idle_ms;
    uint64_t expect_timeout_ms;
    size_t max_idle;
    size_t max_head;
    origin_t *origins[ORIGIN_BUCKETS];
    conn_t *conns;
    ptc_http_client_req_t *reqs;       /* active */
    ptc_http_client_req_t *ended_head; /* waiting for their on_error */
    ptc_http_client_req_t *ended_tail;
    ptc_http_client_stats_t stats;
    uint8_t *scratch; /* head formatting */
    uint8_t *rbuf;    /* the shared read buffer */
};

static const uint8_t empty_input[1];
static const char *const alpn_http11[] = {"http/1.1", NULL};

static void conn_close(conn_t *conn);
static void conn_flush(conn_t *conn);
static void conn_arm(conn_t *conn);
static void conn_on_read_end(conn_t *conn, int err);
static void conn_on_write_error(conn_t *conn, int err);
static void client_maybe_free(ptc_http_client_t *c);
static int conn_dial(ptc_http_client_t *c, origin_t *o, conn_t **out);
static void req_bind(ptc_http_client_req_t *r, conn_t *conn);

static uint64_t or_default(uint64_t v, uint64_t def)
{
    return v != 0 ? v : def;
}

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
static origin_t *origin_get(ptc_http_client_t *c, bool https, const char *host, uint16_t port,
                            const char *sni, ptc_tls_config_t *tls)
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

static void origin_unref(origin_t *o)
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

static conn_t *pool_take(origin_t *o)
{
    conn_t *conn = o->idle;
    if (conn != NULL) {
        pool_remove(conn);
    }
    return conn;
}

/* ---- connection state ---- */

/* The one place a connection changes state; every transition is checked (STYLE §6). */
static void conn_set_state(conn_t *conn, conn_state_t to)
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

static void conn_timer(conn_t *conn, timer_use_t use, uint64_t ms)
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

static void pool_put(conn_t *conn);

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
    origin_unref(conn->origin);
    free(conn);
    client_maybe_free(c);
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
        conn_close(conn);
        return;
    }
    conn_maybe_free(conn);
}

/* Closes the connection (idempotent). A request bound to it must have been detached. */
static void conn_close(conn_t *conn)
{
    if (conn->closing) {
        return;
    }
    assert(conn->req == NULL);
    if (conn->state == C_IDLE) {
        pool_remove(conn);
    }
    conn_set_state(conn, C_CLOSED);
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
    origin_unref(r->origin);
    c->stats.requests--;
    free(r);
    client_maybe_free(c);
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

/*
 * Ends the request with an error: its connection is closed and on_error runs from the
 * client's timer. Does nothing if the request has already ended.
 */
static void req_fail(ptc_http_client_req_t *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void req_fail(ptc_http_client_req_t *r, int err, const char *fmt, ...)
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
        conn_close(conn);
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
    client_maybe_free(c);
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
        pool_put(conn);
    } else {
        conn_close(conn);
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
static bool req_can_retry(const conn_t *conn, const ptc_http_client_req_t *r)
{
    return conn->served > 0 && !r->got_bytes && r->idempotent && r->replayable && !r->retried &&
           !r->client->closing;
}

static void req_retry(ptc_http_client_req_t *r)
{
    ptc_http_client_t *c = r->client;
    conn_t *old = r->conn;
    old->req = NULL;
    r->conn = NULL;
    conn_close(old);
    r->retried = true;
    r->reused = false;
    c->stats.retries++;
    conn_t *conn = NULL;
    int rc = conn_dial(c, r->origin, &conn);
    if (rc != 0) {
        req_fail(r, rc, "connecting to %s:%u: %s", r->origin->names, (unsigned)r->origin->port,
                 ptc_strerror(rc));
        return;
    }
    req_bind(r, conn);
}

/* ---- writing ---- */

static size_t conn_backlog(const conn_t *conn)
{
    return conn->out.queued + (conn->tls != NULL ? ptc_tls_stream_backlog(conn->tls) : 0);
}

static bool conn_is_full(const conn_t *conn)
{
    return conn->write_err == 0 && conn_backlog(conn) >= OUT_HIGH_WATER;
}

/* A write failed within an API call: handle it from the timer, never from the call. */
static void conn_defer_write_error(conn_t *conn, int err)
{
    if (conn->pending_werr == 0 && conn->write_err == 0) {
        conn->pending_werr = err;
        conn_timer(conn, T_KICK, 0);
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
        conn_arm(conn);
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
    conn_flush(conn);
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
    conn_flush(conn);
    conn_after_write(conn);
}

static bool conn_writable(const conn_t *conn)
{
    return !conn->closing && conn->write_err == 0 && conn->pending_werr == 0 &&
           (conn->state == C_ACTIVE || conn->state == C_PIPE || conn->state == C_IDLE);
}

/* Hands queued bytes to the socket (http: one write at a time) or to TLS (while it is not
 * full). While `hold` is set only hold_len bytes may go. */
static void conn_flush(conn_t *conn)
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
                conn_defer_write_error(conn, rc);
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
        conn_defer_write_error(conn, rc);
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
static int conn_sendv(conn_t *conn, const ptc_slice_t *v, size_t cnt)
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
            conn_defer_write_error(conn, rc);
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
            conn_defer_write_error(conn, PTC_ENOMEM);
            return PTC_ENOMEM;
        }
    }
    conn_flush(conn);
    return 0;
}

static int conn_send(conn_t *conn, const void *p, size_t len)
{
    ptc_slice_t v = {p, len};
    return conn_sendv(conn, &v, 1);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *conn = h->data;
    *buf = uv_buf_init((char *)conn->client->rbuf, READ_BUF_SIZE);
}

static void on_plain_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void conn_read_start(conn_t *conn)
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

static void conn_read_stop(conn_t *conn)
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
            req_fail(conn->req, PTC_ENOMEM, "out of memory holding response bytes");
        } else {
            conn_close(conn);
        }
        return false;
    }
    conn_read_stop(conn);
    return true;
}

static void conn_upgrade(conn_t *conn, ptc_http_client_req_t *r)
{
    const ptc_http_head_t *h = ptc_http_parser_head(conn->parser);
    req_end(r, PTC_HTTP_CLIENT_PHASE_DONE);
    conn->served++;
    conn_set_state(conn, C_PIPE);
    conn->was_pipe = true;
    conn->hold = false;
    conn->need_drain = false;
    conn_timer(conn, T_NONE, 0);
    /* Nothing is read until the new owner starts the pipe; the bytes after the head wait in
     * `in` (the caller of conn_parse puts them there). */
    conn_read_stop(conn);
    r->on_upgrade(r, h, conn);
    req_free(r);
}

static void req_fail_http(conn_t *conn, ptc_http_client_req_t *r, int rc)
{
    const ptc_http_error_t *e = ptc_http_parser_error(conn->parser);
    req_fail(r, rc, "malformed response from %s:%u: %s", conn->origin->names,
             (unsigned)conn->origin->port, e != NULL ? e->reason : ptc_strerror(rc));
}

static void on_head_event(conn_t *conn, ptc_http_client_req_t *r, const ptc_http_head_t *h)
{
    r->got_head = true;
    if (h->upgrade) {
        if (r->on_upgrade == NULL) {
            req_fail(r, PTC_EHTTP, "unexpected protocol switch (status %d) from %s:%u", h->status,
                     conn->origin->names, (unsigned)conn->origin->port);
        }
        /* Otherwise DONE, then UPGRADE, follow at once. */
        return;
    }
    conn_arm(conn);
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
static size_t conn_parse(conn_t *conn, const uint8_t *p, size_t len)
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
                conn_flush(conn);
                conn_arm(conn);
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
        conn_close(conn);
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
    size_t n = conn_parse(conn, p, len);
    if (conn->closing) {
        return;
    }
    if (n < len && !conn_hold_input(conn, p + n, len - n)) {
        return;
    }
    if (conn->state == C_ACTIVE) {
        conn_arm(conn);
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
    conn_read_stop(conn);
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

static void req_on_read_end(conn_t *conn, ptc_http_client_req_t *r, int err)
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
    if (req_can_retry(conn, r)) {
        req_retry(r);
        return;
    }
    const char *when = r->got_head    ? "before the response body was complete"
                       : r->got_bytes ? "inside the response head"
                                      : "before responding";
    req_fail(r, err, "%s:%u closed the connection %s (%s)", conn->origin->names,
             (unsigned)conn->origin->port, when, ptc_errname(err));
}

/* Reading ended with `err` (UV_EOF, a libuv error, PTC_ETLS...). */
static void conn_on_read_end(conn_t *conn, int err)
{
    switch (conn->state) {
    case C_IDLE:
        conn_close(conn);
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
    req_on_read_end(conn, r, err);
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
        if (req_can_retry(conn, r)) {
            req_retry(r);
        } else if (!r->got_head) {
            req_fail(r, err, "writing the request to %s:%u: %s", conn->origin->names,
                     (unsigned)conn->origin->port, ptc_strerror(err));
        }
        /* Otherwise the response is under way: let it finish (the connection is not
         * reused). */
        return;
    }
    case C_PIPE:
        if (conn->shutting_down) {
            conn_close(conn);
            return;
        }
        conn_read_stop(conn);
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
        conn_close(conn);
        return;
    }
}

/* ---- deadlines and deferred work ---- */

/* Arms the deadline that fits where the exchange is. */
static void conn_arm(conn_t *conn)
{
    ptc_http_client_req_t *r = conn->req;
    if (conn->closing || conn->state != C_ACTIVE || r == NULL || conn->timer_use == T_KICK) {
        return;
    }
    ptc_http_client_t *c = conn->client;
    if (r->paused) {
        conn_timer(conn, T_NONE, 0);
    } else if (r->got_head) {
        conn_timer(conn, T_BODY, c->idle_timeout_ms);
    } else if (conn->hold) {
        if (conn->timer_use != T_CONTINUE) {
            conn_timer(conn, T_CONTINUE, c->expect_timeout_ms);
        }
    } else if (!req_written(r)) {
        conn_timer(conn, T_SEND, c->idle_timeout_ms);
    } else if (conn->timer_use != T_HEAD) {
        conn_timer(conn, T_HEAD, r->head_timeout_ms);
    }
}

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
    conn_read_start(conn);
}

/* Delivers held input after a resume, then reads the socket again. */
static void req_kick(conn_t *conn)
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
    size_t n = conn_parse(conn, p, len);
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
        req_on_read_end(conn, r, err);
        return;
    }
    conn_read_start(conn);
    conn_arm(conn);
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
            req_fail(r, PTC_ETIMEOUT, "request body idle for %llu ms",
                     (unsigned long long)c->idle_timeout_ms);
        }
        return;
    case T_CONTINUE:
        /* RFC 9110 §10.1.1: a client need not wait for 100 Continue indefinitely. */
        conn->hold = false;
        conn_flush(conn);
        conn_arm(conn);
        return;
    case T_HEAD:
        if (r != NULL) {
            req_fail(r, PTC_ETIMEOUT, "no response head from %s:%u within %llu ms",
                     conn->origin->names, (unsigned)conn->origin->port,
                     (unsigned long long)r->head_timeout_ms);
        }
        return;
    case T_BODY:
        if (r != NULL) {
            req_fail(r, PTC_ETIMEOUT, "response body idle for %llu ms",
                     (unsigned long long)c->idle_timeout_ms);
        }
        return;
    case T_POOL:
    case T_SHUTDOWN:
        conn_close(conn);
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
            req_kick(conn);
            conn_arm(conn);
        }
        return;
    }
}

/* ---- connecting ---- */

static void pool_put(conn_t *conn)
{
    ptc_http_client_t *c = conn->client;
    origin_t *o = conn->origin;
    if (c->closing || o->idle_cnt >= c->max_idle) {
        conn_close(conn);
        return;
    }
    conn_set_state(conn, C_IDLE);
    conn->idle_prev = NULL;
    conn->idle_next = o->idle;
    if (o->idle != NULL) {
        o->idle->idle_prev = conn;
    }
    o->idle = conn;
    o->idle_cnt++;
    c->stats.idle++;
    ptc_buf_dispose(&conn->in);
    conn_timer(conn, T_POOL, c->pool_idle_ms);
    /* Reading goes on, so that a close by the server is seen while idle. */
    conn_read_start(conn);
    if (!conn->closing) {
        conn_set_ref(conn, false);
    }
}

/* The connection is up (TCP, and TLS if any): send what is queued and read. */
static void conn_ready(conn_t *conn)
{
    conn_set_state(conn, C_ACTIVE);
    ptc_http_client_req_t *r = conn->req;
    if (r->paused) {
        conn_read_stop(conn);
    } else {
        conn_read_start(conn);
        if (conn->closing) {
            return;
        }
    }
    conn_flush(conn);
    conn_arm(conn);
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
            conn_close(conn);
        } else if (status == PTC_ETIMEOUT) {
            req_fail(r, status, "TLS handshake with %s:%u timed out after %llu ms", o->names,
                     (unsigned)o->port, (unsigned long long)conn->client->tls_timeout_ms);
        } else {
            req_fail(r, status, "TLS handshake with %s:%u (name %s): %s", o->names,
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
        conn_close(conn);
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
        req_fail(r, status, "resolving %s: %s", o->names,
                 last != 0 ? uv_strerror(last) : "no address");
        return;
    }
    if (status == PTC_ETIMEOUT) {
        req_fail(r, status, "connecting to %s:%u timed out after %llu ms", o->names,
                 (unsigned)o->port, (unsigned long long)c->connect_timeout_ms);
        return;
    }
    if (status != 0) {
        req_fail(r, status, "connecting to %s:%u: %s", o->names, (unsigned)o->port,
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
        req_fail(r, rc, "starting TLS with %s:%u: %s", o->names, (unsigned)o->port,
                 ptc_strerror(rc));
        return;
    }
    conn->open_handles++;
    conn_set_state(conn, C_HANDSHAKE);
    conn->reading = true;
    if (o->session != NULL) {
        /* Resumption saves the server a full handshake; a refusal just means a full one. */
        int src = ptc_tls_set_session(ptc_tls_stream_tls(conn->tls), o->session);
        (void)src;
    }
}

/* Makes a connection to the origin; the dial runs, and the caller binds a request. */
static int conn_dial(ptc_http_client_t *c, origin_t *o, conn_t **out)
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
        conn_close(conn);
        return rc;
    }
    *out = conn;
    return 0;
}

/* Puts the request on the connection: queues its head (and a body given up front). */
static void req_bind(ptc_http_client_req_t *r, conn_t *conn)
{
    conn->req = r;
    r->conn = conn;
    conn->need_drain = false;
    r->got_bytes = false;
    r->got_head = false;
    if (conn->state == C_IDLE) {
        conn_set_state(conn, C_ACTIVE);
        conn_timer(conn, T_NONE, 0);
    }
    ptc_slice_t method = {r->bytes, r->method_len};
    ptc_http_parser_set_request_method(conn->parser, method);
    (void)conn_send(conn, r->bytes, r->head_len);
    if (r->expect) {
        conn->hold = true;
        conn->hold_len = conn->out.queued;
    }
    if (r->body_len > 0) {
        (void)conn_send(conn, r->bytes + r->head_len, r->body_len);
    }
    if (conn->state == C_ACTIVE && r->paused) {
        conn_read_stop(conn);
    }
    conn_arm(conn);
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

static void client_maybe_free(ptc_http_client_t *c)
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
        req_fail(c->reqs, PTC_ECLOSED, "the HTTP client was closed");
    }
    for (conn_t *conn = c->conns; conn != NULL; conn = conn->next) {
        conn_close(conn);
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
    r->origin = origin_get(c, o->https, o->host, o->port, sni, tls);
    conn_t *conn = pool_take(r->origin);
    if (conn != NULL) {
        r->reused = true;
        c->stats.reuses++;
    } else {
        rc = conn_dial(c, r->origin, &conn);
        if (rc != 0) {
            origin_unref(r->origin);
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
        rc = conn_send(conn, p, len);
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
                conn_defer_write_error(conn, rc);
            } else {
                conn_flush(conn);
            }
        } else {
            rc = conn_sendv(conn, v, 3);
        }
    }
    if (rc != 0) {
        return rc;
    }
    r->written += len;
    if (r->body_mode == PTC_HTTP_CLIENT_BODY_LENGTH && r->written == r->content_length) {
        r->body_ended = true;
    }
    if (conn_is_full(conn)) {
        conn->need_drain = true;
    }
    conn_arm(conn);
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
    int rc = conn_send(r->conn, "0\r\n\r\n", 5);
    if (rc != 0) {
        return rc;
    }
    r->body_ended = true;
    conn_arm(r->conn);
    return 0;
}

bool ptc_http_client_req_is_full(const ptc_http_client_req_t *r)
{
    return r->state == R_ACTIVE && r->conn != NULL && conn_is_full(r->conn);
}

void ptc_http_client_req_pause(ptc_http_client_req_t *r)
{
    if (r->state != R_ACTIVE || r->paused) {
        return;
    }
    r->paused = true;
    conn_t *conn = r->conn;
    if (conn != NULL && conn->state == C_ACTIVE) {
        conn_read_stop(conn);
        conn_arm(conn);
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
        conn_timer(conn, T_KICK, 0);
    }
}

void ptc_http_client_req_cancel(ptc_http_client_req_t *r)
{
    req_fail(r, UV_ECANCELED, "cancelled");
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
    conn_timer(p, T_KICK, 0);
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
    int rc = conn_send(p, data, len);
    if (rc != 0) {
        return rc;
    }
    if (conn_is_full(p)) {
        p->need_drain = true;
    }
    return 0;
}

bool ptc_http_client_pipe_is_full(const ptc_http_client_pipe_t *p)
{
    return conn_is_full(p);
}

void ptc_http_client_pipe_read_stop(ptc_http_client_pipe_t *p)
{
    if (p->closing || !p->pipe_reading) {
        return;
    }
    p->pipe_reading = false;
    conn_read_stop(p);
    if (p->timer_use == T_KICK && p->pending_werr == 0) {
        conn_timer(p, T_NONE, 0);
    }
}

void ptc_http_client_pipe_read_start(ptc_http_client_pipe_t *p)
{
    if (p->closing || p->shutting_down || !p->pipe_started || p->pipe_reading ||
        p->pipe_read_done) {
        return;
    }
    p->pipe_reading = true;
    conn_timer(p, T_KICK, 0);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn_close(req->data); /* with UV_ECANCELED it is closing already */
}

static void conn_try_shutdown(conn_t *conn)
{
    if (!conn->shutting_down || conn->shutdown_started || conn->closing) {
        return;
    }
    if (conn->write_err != 0) {
        conn_close(conn);
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
        conn_close(conn);
    }
}

void ptc_http_client_pipe_shutdown(ptc_http_client_pipe_t *p)
{
    if (p->closing || p->shutting_down) {
        return;
    }
    p->shutting_down = true;
    p->pipe_reading = false;
    conn_read_stop(p);
    conn_timer(p, T_SHUTDOWN, PIPE_SHUTDOWN_TIMEOUT_MS);
    if (p->pending_werr != 0) {
        conn_close(p);
        return;
    }
    conn_try_shutdown(p);
}

void ptc_http_client_pipe_close(ptc_http_client_pipe_t *p)
{
    conn_close(p);
}

void *ptc_http_client_pipe_data(const ptc_http_client_pipe_t *p)
{
    return p->pipe.data;
}
