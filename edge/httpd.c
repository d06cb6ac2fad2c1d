/* SPDX-License-Identifier: MIT */
/*
 * Public HTTP/1.1 server connections (see httpd.h).
 *
 * A connection alternates between waiting for a request head and one exchange. Input
 * accumulates in `in` and is fed to the parser only while it may be used: during an exchange
 * the parser delivers that request's body, and after its DONE nothing more is parsed until
 * the response is complete, so pipelined requests wait, in order, in the buffer (bounded:
 * reading stops when it is full). process() is the only place that feeds the parser; it is
 * never re-entered (a call from inside sets `again`).
 *
 * Closing: the connection owns one timer and, through the listener's head, the TLS stream.
 * Closing (or a graceful shutdown) closes both; the object is freed when both close
 * callbacks have run (STYLE §5). A handler still holding the request hears on_abort from the
 * stream's close callback, never from inside one of its own calls into this module.
 *
 * Access log: a request's one http_request_done line is written where its exchange ends,
 * by exchange_maybe_done() when the response is complete, else by conn_close(), which says
 * how it was cut (the request's `logged` flag keeps it to one line).
 */
#include "edge/httpd.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "edge/listener.h"
#include "edge/register.h"

/* Pipelined input kept beyond one head before reading stops. */
#define INPUT_SLACK (64 * 1024)

/* The access line's `result` (docs/logging.md): how the exchange ended. */
#define RESULT_OK "ok"             /* the response was written whole */
#define RESULT_ABORTED "aborted"   /* the client closed or broke the connection before that */
#define RESULT_TIMEOUT "timeout"   /* the exchange made no progress within its timeout */
#define RESULT_ERROR "error"       /* the edge cut it (upstream failure, framing, write, memory) */
#define RESULT_SHUTDOWN "shutdown" /* the edge stopped */

typedef enum timer_use {
    T_NONE,
    T_IDLE,     /* between requests, nothing buffered */
    T_HEAD,     /* part of a head buffered */
    T_EXCHANGE, /* an exchange without progress */
    T_KICK,     /* deferred processing */
    T_SHUTDOWN, /* the last response is still being written */
} timer_use_t;

/*
 * Connection states: WAITING for a request head (idle, or part of a head buffered), in an
 * EXCHANGE (a request is being served; `req` is set), FINISHING (the last response is being
 * written before a graceful close; input is ignored), CLOSED (the handles are closing).
 */
typedef enum conn_state {
    CS_WAITING,
    CS_EXCHANGE,
    CS_FINISHING,
    CS_CLOSED,
} conn_state_t;

typedef struct httpd_conn {
    ptc_edge_conn_t base; /* first: the listener's head */
    uv_timer_t timer;
    timer_use_t timer_use;
    unsigned open_handles;
    conn_state_t state;
    bool draining;
    bool in_process;
    bool again;
    bool kick;
    bool reading;
    bool parse_stopped; /* the parser takes no more input (error, no keep-alive, upgrade) */
    bool head_partial;  /* the parser holds part of a request head */
    bool released;      /* idle, and the TLS record buffers were released */
    unsigned writes_pending;
    bool write_failed; /* a write to the client failed: not everything queued reached it */
    int close_err;
    const char *close_result; /* the access line's result for a request cut by the close */
    ptc_http_parser_t *parser;
    ptc_buf_t in;
    ptc_buf_t scratch; /* response framing */
    ptc_httpd_req_t *req;
    uint64_t head_start;    /* loop time the current head began */
    uint64_t last_progress; /* loop time of the last read or write */
} httpd_conn_t;

struct ptc_httpd_req {
    httpd_conn_t *conn;
    const ptc_httpd_handler_t *h;
    void *data;
    ptc_log_ctx_t log;
    const ptc_http_head_t *head;
    char host[256];
    char id[24];
    uint64_t start_loop_ms;
    uint64_t timeout_ms;
    uint64_t bytes_in;
    uint64_t bytes_out;
    int64_t resp_len; /* announced body length, or -1 */
    uint64_t resp_written;
    int status;
    bool no_body;   /* the request has no body (framing NONE) */
    bool body_done; /* DONE was parsed */
    bool body_paused;
    bool head_sent;
    bool finished;     /* the response is complete */
    bool handler_done; /* the handler released the request */
    bool is_head_method;
    bool chunked;
    bool no_resp_body; /* 204, 304 or HEAD */
    bool close_after;
    bool upgraded;      /* 101 sent: raw bytes both ways (ptc_httpd_upgrade) */
    bool raw_eof;       /* upgraded: the client ended its side */
    bool raw_eof_given; /* ... and the handler was told */
    bool logged;        /* http_request_done was written (and requests_total counted) */
    /* Access-log fields of the app request path (ptc_httpd_req_set_log_fields). */
    bool has_app;
    char app[72];
    char connector[72];
    char tunnel[72];
    int64_t upstream_ms;
    /* Who made the request (ptc_httpd_req_set_user): a session's email or sub, or "". */
    char user[PTC_LOG_MAX_VALUE + 1];
};

static const ptc_edge_conn_ops_t httpd_ops;

static void process(httpd_conn_t *c);
static void deliver_raw(httpd_conn_t *c);
static void arm_timer(httpd_conn_t *c);
static void conn_close(httpd_conn_t *c, int err, const char *result);
static void exchange_maybe_done(httpd_conn_t *c);
static void log_done(httpd_conn_t *c, ptc_httpd_req_t *req, const char *result, int err);

/* ---- state ---- */

static const char *state_name(conn_state_t st)
{
    switch (st) {
    case CS_WAITING:
        return "waiting";
    case CS_EXCHANGE:
        return "exchange";
    case CS_FINISHING:
        return "finishing";
    case CS_CLOSED:
        return "closed";
    }
    return "unknown";
}

/* The only place the state changes (STYLE §6): checks the transition, logs it at debug. */
static void set_state(httpd_conn_t *c, conn_state_t next)
{
    bool ok = false;
    switch (c->state) {
    case CS_WAITING:
        ok = next == CS_EXCHANGE || next == CS_FINISHING || next == CS_CLOSED;
        break;
    case CS_EXCHANGE:
        ok = next == CS_WAITING || next == CS_FINISHING || next == CS_CLOSED;
        break;
    case CS_FINISHING:
        ok = next == CS_CLOSED;
        break;
    case CS_CLOSED:
        ok = false;
        break;
    }
    assert(ok);
    (void)ok;
    PTC_LOG(&c->base.log, PTC_LOG_DEBUG, "http_conn_state",
            PTC_LOG_STR("from", state_name(c->state)), PTC_LOG_STR("to", state_name(next)));
    c->state = next;
}

/* ---- closing ---- */

static void conn_free(httpd_conn_t *c)
{
    ptc_http_parser_free(c->parser);
    ptc_buf_dispose(&c->in);
    ptc_buf_dispose(&c->scratch);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    httpd_conn_t *c = h->data;
    if (--c->open_handles == 0) {
        conn_free(c);
    }
}

/*
 * The stream is gone (listener callback): tell a handler that still holds the request. Its
 * access line was written when the connection was closed; a stream that went away without
 * conn_close() logs it here.
 */
static void httpd_on_close(ptc_edge_conn_t *base)
{
    httpd_conn_t *c = (httpd_conn_t *)base;
    if (c->state != CS_CLOSED) {
        set_state(c, CS_CLOSED);
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    }
    ptc_httpd_req_t *req = c->req;
    c->req = NULL;
    if (req != NULL) {
        int err = c->close_err != 0 ? c->close_err : PTC_ECLOSED;
        if (!req->handler_done && req->h != NULL && req->h->on_abort != NULL) {
            req->handler_done = true;
            req->h->on_abort(req, err);
        }
        log_done(c, req, c->close_result != NULL ? c->close_result : RESULT_ABORTED, err);
        free(req);
    }
    if (--c->open_handles == 0) {
        conn_free(c);
    }
}

/*
 * Closes at once: whatever is queued is dropped. `result` is what the access line of a
 * request still in its exchange says (RESULT_*); the line is written now, while the request's
 * fields are as the handler left them.
 */
static void conn_close(httpd_conn_t *c, int err, const char *result)
{
    if (c->state == CS_CLOSED) {
        return;
    }
    set_state(c, CS_CLOSED);
    c->close_err = err;
    c->close_result = result;
    if (c->req != NULL) {
        log_done(c, c->req, result, err);
    }
    c->timer_use = T_NONE;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    if (c->base.stream != NULL) {
        ptc_tls_stream_close(c->base.stream);
    }
}

/* Closes gracefully (close_notify, then the socket) now that every write is done. */
static void do_shutdown(httpd_conn_t *c)
{
    if (c->state == CS_CLOSED) {
        return;
    }
    set_state(c, CS_CLOSED);
    c->timer_use = T_NONE;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    if (c->base.stream != NULL) {
        ptc_tls_stream_shutdown(c->base.stream);
    }
}

/* ---- writing ---- */

static void on_timer(uv_timer_t *t);

/*
 * Closes after the last response: once its writes have reached the socket (however long a
 * slow client takes, as long as it makes progress within http_idle_timeout), close_notify is
 * sent and the connection shut down. No more input is processed meanwhile.
 */
static void conn_shutdown(httpd_conn_t *c)
{
    if (c->state == CS_CLOSED || c->state == CS_FINISHING) {
        return;
    }
    if (c->writes_pending == 0 || c->base.stream == NULL) {
        do_shutdown(c);
        return;
    }
    set_state(c, CS_FINISHING);
    if (c->reading) {
        ptc_tls_stream_read_stop(c->base.stream);
        c->reading = false;
    }
    c->timer_use = T_SHUTDOWN;
    uv_timer_start(&c->timer, on_timer, c->base.edge->cfg.limits.http_idle_timeout_ms, 0);
}

static void on_written(ptc_tls_stream_t *s, int status, void *arg)
{
    (void)s;
    httpd_conn_t *c = arg;
    c->writes_pending--;
    if (c->state == CS_CLOSED) {
        return;
    }
    if (status != 0) {
        /* The client's side of the connection failed (reset, broken pipe). */
        c->write_failed = true;
        conn_close(c, status, RESULT_ABORTED);
        return;
    }
    c->last_progress = uv_now(c->timer.loop);
    if (c->state == CS_FINISHING) {
        if (c->writes_pending == 0) {
            do_shutdown(c);
        } else {
            uv_timer_start(&c->timer, on_timer, c->base.edge->cfg.limits.http_idle_timeout_ms, 0);
        }
    }
}

static int conn_write(httpd_conn_t *c, const void *p, size_t len)
{
    if (c->state == CS_CLOSED || c->base.stream == NULL) {
        return PTC_ECLOSED;
    }
    if (len == 0) {
        return 0;
    }
    int rc = ptc_tls_stream_write(c->base.stream, p, len, on_written, c);
    if (rc == 0) {
        c->writes_pending++;
    }
    if (rc != 0) {
        c->write_failed = true;
        conn_close(c, rc, RESULT_ERROR);
        return rc == PTC_ECLOSED ? rc : PTC_ECLOSED;
    }
    return 0;
}

/* ---- timer ---- */

static void timer_set(httpd_conn_t *c, timer_use_t use, uint64_t ms)
{
    if (c->state == CS_CLOSED || c->state == CS_FINISHING) {
        return;
    }
    c->timer_use = use;
    if (use == T_NONE) {
        uv_timer_stop(&c->timer);
    } else {
        uv_timer_start(&c->timer, on_timer, ms, 0);
    }
}

static uint64_t remaining(uint64_t now, uint64_t since, uint64_t limit)
{
    uint64_t deadline = since + limit;
    return deadline > now ? deadline - now : 0;
}

/*
 * A keep-alive connection idle for PTC_TLS_IDLE_RELEASE_MS (nothing buffered, no request)
 * gives back what the next request makes again: the parser's head storage, the input and
 * response-framing buffers, and most pages of the TLS record buffers. A busy connection
 * keeps them, so requests in a row cost no allocation.
 */
static void release_idle(httpd_conn_t *c)
{
    c->released = true;
    if (c->req != NULL || c->in.len > 0 || c->head_partial) {
        return;
    }
    if (c->parser != NULL) {
        ptc_http_parser_trim(c->parser);
    }
    ptc_buf_dispose(&c->in);
    ptc_buf_dispose(&c->scratch);
    if (c->base.stream != NULL) {
        c->base.edge->counters.released_bytes +=
            ptc_tls_release_idle(ptc_tls_stream_tls(c->base.stream));
    }
}

/* Arms the one timer for what the connection is waiting for (STYLE §5 rule 6). */
static void arm_timer(httpd_conn_t *c)
{
    if (c->state == CS_CLOSED || c->state == CS_FINISHING) {
        return;
    }
    const ptc_edge_limits_cfg_t *lim = &c->base.edge->cfg.limits;
    uint64_t now = uv_now(c->timer.loop);
    if (c->kick) {
        timer_set(c, T_KICK, 0);
    } else if (c->req != NULL) {
        if (c->req->timeout_ms == 0) {
            timer_set(c, T_NONE, 0);
        } else {
            timer_set(c, T_EXCHANGE, remaining(now, c->last_progress, c->req->timeout_ms));
        }
    } else if (c->in.len > 0 || c->head_partial) {
        timer_set(c, T_HEAD, remaining(now, c->head_start, lim->http_head_timeout_ms));
    } else {
        /* Idle keep-alive: nothing buffered, no request. The timer first fires
         * PTC_TLS_IDLE_RELEASE_MS in, to release the connection's buffers (release_idle). */
        uint64_t ms = remaining(now, c->last_progress, lim->http_idle_timeout_ms);
        if (!c->released) {
            uint64_t rel = remaining(now, c->last_progress, PTC_TLS_IDLE_RELEASE_MS);
            ms = rel < ms ? rel : ms;
        }
        timer_set(c, T_IDLE, ms);
    }
}

/* ---- small pages ---- */

static void html_escape(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s != '\0' && n + 7 < cap; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '"':
            rep = "&quot;";
            break;
        default:
            break;
        }
        if (rep != NULL) {
            size_t l = strlen(rep);
            memcpy(dst + n, rep, l);
            n += l;
        } else {
            dst[n++] = *s;
        }
    }
    dst[n] = '\0';
}

static int respond_page(ptc_httpd_req_t *req, int status, const char *message)
{
    char esc[512];
    html_escape(esc, sizeof(esc), message);
    const char *phrase = ptc_http_reason_phrase(status);
    char body[1024];
    int n = snprintf(body, sizeof(body),
                     "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%d %s</title>"
                     "</head>\n<body><h1>%d %s</h1>\n<p>%s</p></body></html>\n",
                     status, phrase, status, phrase, esc);
    if (n < 0 || (size_t)n >= sizeof(body)) {
        n = 0;
    }
    static const ptc_http_header_t hdrs[] = {
        {{(const uint8_t *)"Cache-Control", 13}, {(const uint8_t *)"no-store", 8}},
    };
    return ptc_httpd_respond_simple(req, status, "text/html; charset=utf-8", hdrs, 1, body,
                                    (size_t)n);
}

/* JSON for API paths and clients that ask for it, HTML otherwise. */
static bool wants_json(const ptc_httpd_req_t *req)
{
    ptc_slice_t path = ptc_httpd_req_path(req);
    if (path.len >= 10 && memcmp(path.ptr, "/.portico/", 10) == 0) {
        return true;
    }
    const ptc_http_header_t *accept =
        ptc_http_header_find(req->head->headers, req->head->header_cnt, "accept");
    return accept != NULL && ptc_http_list_has(accept->value, "application/json");
}

static void respond_not_found(ptc_httpd_req_t *req, const char *message)
{
    int rc = wants_json(req) ? ptc_httpd_respond_error(req, 404, "not_found", message, NULL, 0)
                             : respond_page(req, 404, message);
    (void)rc;
}

/* ---- the exchange ---- */

/*
 * True when the client was sent the whole response although the handler has not finished it:
 * the head and every byte of the announced Content-Length (none for HEAD, 204, 304) reached
 * the socket. A proxied response is like this between its last byte and the stream's
 * END_STREAM, and its client may well read it all and close in between.
 */
static bool response_complete(const httpd_conn_t *c, const ptc_httpd_req_t *req)
{
    return req->head_sent && !req->upgraded && !req->chunked && req->resp_len >= 0 &&
           req->resp_written == (uint64_t)req->resp_len && c->writes_pending == 0 &&
           !c->write_failed;
}

/*
 * Writes the request's one http_request_done line and counts it in requests_total, however
 * the exchange ended (STYLE §7): `result` is RESULT_OK for a response written whole (or one
 * whose client got all of its announced length), else how it was cut, with `err`. Later calls
 * for the same request do nothing.
 */
static void log_done(httpd_conn_t *c, ptc_httpd_req_t *req, const char *result, int err)
{
    if (req->logged) {
        return;
    }
    req->logged = true;
    c->base.edge->counters.requests_total++;
    if (req->finished || response_complete(c, req)) {
        result = RESULT_OK;
    }
    const ptc_http_head_t *h = req->head;
    ptc_slice_t path = ptc_httpd_req_path(req);
    uint64_t dur = uv_now(c->timer.loop) - req->start_loop_ms;
    ptc_log_field_t f[20];
    size_t n = 0;
    f[n++] = PTC_LOG_PEER("method", h->method.ptr, h->method.len);
    f[n++] = PTC_LOG_STR("host", req->host);
    f[n++] = PTC_LOG_PEER("path", path.ptr, path.len);
    f[n++] = PTC_LOG_INT("status", req->status);
    f[n++] = PTC_LOG_STR("result", result);
    f[n++] = PTC_LOG_UINT("bytes_in", req->bytes_in);
    f[n++] = PTC_LOG_UINT("bytes_out", req->bytes_out);
    f[n++] = PTC_LOG_UINT("dur_ms", dur);
    if (req->has_app) {
        f[n++] = req->upstream_ms >= 0 ? PTC_LOG_INT("upstream_ms", req->upstream_ms)
                                       : PTC_LOG_STR("upstream_ms", NULL);
        f[n++] = PTC_LOG_STR("app", req->app[0] != '\0' ? req->app : NULL);
        f[n++] = PTC_LOG_STR("connector", req->connector[0] != '\0' ? req->connector : NULL);
        f[n++] = PTC_LOG_STR("tunnel", req->tunnel[0] != '\0' ? req->tunnel : NULL);
    }
    f[n++] = PTC_LOG_STR("client_ip", c->base.peer_ip);
    f[n++] = PTC_LOG_STR("user", req->user[0] != '\0' ? req->user : NULL);
    if (strcmp(result, RESULT_OK) != 0) {
        f[n++] = PTC_LOG_ERR(err);
    }
    f[n] = PTC_LOG_END;
    assert(n < sizeof(f) / sizeof(f[0]));
    ptc_log_write(&req->log, PTC_LOG_INFO, "http_request_done", f);
}

/* Called when the response is complete or the request body ends. */
static void exchange_maybe_done(httpd_conn_t *c)
{
    ptc_httpd_req_t *req = c->req;
    if (req == NULL || !req->finished || c->state == CS_CLOSED) {
        return;
    }
    if (!req->body_done && !req->close_after) {
        /* The body may still be arriving: it is parsed (and dropped) by process(). */
        return;
    }
    log_done(c, req, RESULT_OK, 0);
    bool close_after = req->close_after || c->draining;
    c->req = NULL;
    free(req);
    if (close_after) {
        conn_shutdown(c);
        return;
    }
    set_state(c, CS_WAITING);
    c->head_start = uv_now(c->timer.loop);
    c->last_progress = c->head_start;
    if (c->in_process) {
        c->again = true;
    } else {
        c->kick = true;
    }
    arm_timer(c);
}

/*
 * Eight random bytes for a request id. The operating system's generator is asked for 512
 * bytes at a time, not once per request (a getrandom() system call each). The process runs
 * one loop, so one pool serves it.
 */
static void request_id_bytes(uint8_t out[8])
{
    static uint8_t pool[512];
    static size_t used = sizeof(pool);
    if (used == sizeof(pool)) {
        ptc_random_bytes(pool, sizeof(pool));
        used = 0;
    }
    memcpy(out, pool + used, 8);
    used += 8;
}

static ptc_httpd_req_t *req_new(httpd_conn_t *c, const ptc_http_head_t *head)
{
    ptc_httpd_req_t *req = ptc_xcalloc(1, sizeof(*req));
    req->conn = c;
    req->head = head;
    req->start_loop_ms = uv_now(c->timer.loop);
    req->timeout_ms = c->base.edge->cfg.limits.http_idle_timeout_ms;
    req->resp_len = PTC_HTTPD_LENGTH_UNKNOWN;
    req->upstream_ms = -1;
    req->no_body = head->body == PTC_HTTP_BODY_NONE;
    req->is_head_method = ptc_slice_eq(head->method, "HEAD");
    /* Upgrades (WebSocket) are the proxy's business; without it, the connection cannot be
     * reused after an upgrade request. */
    req->close_after = !head->keep_alive || head->upgrade || c->draining;
    ptc_log_ctx_derive(&req->log, &c->base.log);
    uint8_t rnd[8];
    request_id_bytes(rnd);
    if (ptc_hex_encode(rnd, sizeof(rnd), req->id, sizeof(req->id)) == 0) {
        ptc_log_ctx_set_req(&req->log, req->id);
    }
    /* The host without port, lower-cased; the TLS server name when the request has none. */
    ptc_slice_t host = head->host;
    const char *sni = ptc_tls_sni(ptc_tls_stream_tls(c->base.stream));
    if (host.len == 0 && sni != NULL) {
        host = ptc_slice_str(sni);
    }
    size_t n = 0;
    if (host.len > 0 && host.ptr[0] == '[') {
        while (n < host.len && host.ptr[n] != ']') {
            n++;
        }
        n = n < host.len ? n + 1 : n;
    } else {
        while (n < host.len && host.ptr[n] != ':') {
            n++;
        }
    }
    if (n >= sizeof(req->host)) {
        n = sizeof(req->host) - 1;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = (char)host.ptr[i];
        req->host[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    req->host[n] = '\0';
    return req;
}

static void route_edge_host(ptc_httpd_req_t *req)
{
    ptc_slice_t path = ptc_httpd_req_path(req);
    if (ptc_slice_eq(path, "/healthz")) {
        const ptc_http_head_t *h = req->head;
        if (!ptc_slice_eq(h->method, "GET") && !ptc_slice_eq(h->method, "HEAD")) {
            static const ptc_http_header_t allow[] = {
                {{(const uint8_t *)"Allow", 5}, {(const uint8_t *)"GET, HEAD", 9}},
            };
            (void)ptc_httpd_respond_simple(req, 405, "text/plain; charset=utf-8", allow, 1,
                                           "method not allowed\n", 19);
            return;
        }
        static const ptc_http_header_t nocache[] = {
            {{(const uint8_t *)"Cache-Control", 13}, {(const uint8_t *)"no-store", 8}},
        };
        (void)ptc_httpd_respond_simple(req, 200, "text/plain; charset=utf-8", nocache, 1, "ok\n",
                                       3);
        return;
    }
    if (ptc_slice_eq(path, PTC_REGISTER_PATH)) {
        ptc_register_handle(req);
        return;
    }
    ptc_edge_t *edge = req->conn->base.edge;
    if (edge->host_route != NULL && edge->host_route(edge->host_route_data, req) == 0) {
        return;
    }
    respond_not_found(req, "There is nothing at this address.");
}

static void on_head(httpd_conn_t *c, const ptc_http_head_t *head)
{
    ptc_httpd_req_t *req = req_new(c, head);
    c->req = req;
    set_state(c, CS_EXCHANGE);
    c->last_progress = uv_now(c->timer.loop);
    ptc_edge_t *edge = c->base.edge;
    if (req->host[0] == '\0' || strcmp(req->host, edge->cfg.edge_host) == 0) {
        route_edge_host(req);
    } else {
        int rc = PTC_ENOTFOUND;
        if (edge->app_route != NULL) {
            rc = edge->app_route(edge->app_route_data, req);
        }
        if (rc != 0 && c->req == req && !req->handler_done) {
            respond_not_found(req, "No application is published at this address.");
        }
    }
    if (c->state == CS_CLOSED || c->req != req) {
        return;
    }
    /* A client waiting for 100-continue gets it once a handler is reading the body. */
    if (head->expect_continue && !req->handler_done && !req->head_sent && !req->no_body &&
        head->minor_version == 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        (void)conn_write(c, cont, sizeof(cont) - 1);
    }
    arm_timer(c);
}

static void deliver_body(httpd_conn_t *c, ptc_slice_t data, bool end)
{
    ptc_httpd_req_t *req = c->req;
    if (req == NULL) {
        return;
    }
    req->bytes_in += data.len;
    if (end) {
        req->body_done = true;
    }
    if (!req->handler_done && req->h != NULL && req->h->on_body != NULL) {
        req->h->on_body(req, data, end);
    }
    if (end && c->state != CS_CLOSED && c->req == req) {
        exchange_maybe_done(c);
    }
}

/*
 * After a 101 the input is the new protocol's: every buffered byte goes to the handler as it
 * is (while it does not pause), then, once the client ended its side, one call with end.
 */
static void deliver_raw(httpd_conn_t *c)
{
    ptc_httpd_req_t *req = c->req;
    while (c->state == CS_EXCHANGE && c->req == req && !req->handler_done && !req->body_paused &&
           req->h != NULL && req->h->on_body != NULL) {
        if (c->in.len > 0) {
            size_t n = c->in.len;
            req->bytes_in += n;
            req->h->on_body(req, ptc_buf_slice(&c->in), false);
            ptc_buf_consume(&c->in, n);
            continue;
        }
        if (req->raw_eof && !req->raw_eof_given) {
            req->raw_eof_given = true;
            req->h->on_body(req, (ptc_slice_t){NULL, 0}, true);
        }
        return;
    }
}

/* The parser refused the input: answer its status (if no response began) and close. */
static void on_parse_error(httpd_conn_t *c)
{
    const ptc_http_error_t *e = ptc_http_parser_error(c->parser);
    int status = e != NULL && e->status != 0 ? e->status : 400;
    const char *reason = e != NULL && e->reason != NULL ? e->reason : "malformed request";
    c->parse_stopped = true;
    PTC_LOG(&c->base.log, PTC_LOG_WARN, "http_bad_request", PTC_LOG_STR("reason", reason),
            PTC_LOG_INT("status", status), PTC_LOG_ERR(e != NULL ? e->code : PTC_EHTTP));
    ptc_httpd_req_t *req = c->req;
    if (req != NULL) {
        /* The body was malformed: the exchange cannot complete. */
        if (!req->handler_done && req->h != NULL && req->h->on_abort != NULL) {
            req->handler_done = true;
            req->h->on_abort(req, PTC_EHTTP);
        }
        req->handler_done = true;
        if (c->state == CS_CLOSED) {
            return;
        }
        if (req->head_sent) {
            conn_close(c, PTC_EHTTP, RESULT_ERROR);
            return;
        }
        req->close_after = true;
        (void)respond_page(req, status, reason);
        return;
    }
    /* No head was parsed: answer without one. */
    const char *phrase = ptc_http_reason_phrase(status);
    char body[512];
    char esc[256];
    html_escape(esc, sizeof(esc), reason);
    int blen = snprintf(body, sizeof(body),
                        "<!doctype html>\n<html><head><title>%d %s</title></head>\n<body><h1>%d "
                        "%s</h1>\n<p>%s</p></body></html>\n",
                        status, phrase, status, phrase, esc);
    char head[256];
    int hlen =
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
                 "Content-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                 status, phrase, blen);
    size_t in_len = c->in.len;
    bool sent = conn_write(c, head, (size_t)hlen) == 0 && conn_write(c, body, (size_t)blen) == 0;
    c->base.edge->counters.requests_total++;
    PTC_LOG(&c->base.log, PTC_LOG_INFO, "http_request_done", PTC_LOG_STR("method", NULL),
            PTC_LOG_INT("status", sent ? status : 0),
            PTC_LOG_STR("result", sent ? RESULT_OK : RESULT_ERROR),
            PTC_LOG_UINT("bytes_in", in_len),
            PTC_LOG_UINT("bytes_out", sent ? (uint64_t)hlen + (uint64_t)blen : 0),
            PTC_LOG_UINT("dur_ms", 0), PTC_LOG_STR("client_ip", c->base.peer_ip));
    conn_shutdown(c);
}

/* Feeds the parser while the input may be used (see the file comment). */
static void process_once(httpd_conn_t *c)
{
    while (c->state != CS_CLOSED && c->state != CS_FINISHING) {
        ptc_httpd_req_t *req = c->req;
        if (req != NULL && req->upgraded) {
            deliver_raw(c);
            return;
        }
        if (req != NULL && (req->body_done || req->body_paused)) {
            return;
        }
        if (req == NULL && c->draining) {
            conn_shutdown(c);
            return;
        }
        if (c->parse_stopped || (req == NULL && c->in.len == 0)) {
            return;
        }
        ptc_http_event_t ev;
        ssize_t n = ptc_http_parser_feed(c->parser, ptc_buf_data(&c->in), c->in.len, &ev);
        if (n == PTC_ESTATE) {
            /* After a message that ends the connection (or an upgrade), later bytes are not
             * ours to parse: they are dropped with the connection. */
            c->parse_stopped = true;
            return;
        }
        if (n < 0) {
            on_parse_error(c);
            return;
        }
        switch (ev.type) {
        case PTC_HTTP_EV_NONE:
            ptc_buf_consume(&c->in, (size_t)n);
            if (req == NULL && n > 0) {
                c->head_partial = true;
            }
            return;
        case PTC_HTTP_EV_HEAD:
            ptc_buf_consume(&c->in, (size_t)n);
            c->head_partial = false;
            on_head(c, ev.head);
            break;
        case PTC_HTTP_EV_BODY:
            deliver_body(c, ev.body, false);
            ptc_buf_consume(&c->in, (size_t)n);
            break;
        case PTC_HTTP_EV_DONE:
            ptc_buf_consume(&c->in, (size_t)n);
            if (req != NULL) {
                deliver_body(c, (ptc_slice_t){NULL, 0}, true);
            }
            break;
        case PTC_HTTP_EV_UPGRADE:
            ptc_buf_consume(&c->in, (size_t)n);
            c->parse_stopped = true;
            return;
        case PTC_HTTP_EV_INTERIM:
        case PTC_HTTP_EV_ERROR:
            ptc_buf_consume(&c->in, (size_t)n);
            on_parse_error(c);
            return;
        }
    }
}

static void update_reading(httpd_conn_t *c)
{
    if (c->state == CS_CLOSED || c->state == CS_FINISHING || c->base.stream == NULL) {
        return;
    }
    size_t cap = c->base.edge->cfg.limits.max_head_bytes + INPUT_SLACK;
    /* After the client ended an upgraded connection, nothing more can be read. */
    bool want = c->in.len < cap && !(c->req != NULL && c->req->raw_eof);
    if (want && !c->reading) {
        if (ptc_tls_stream_read_start(c->base.stream) == 0) {
            c->reading = true;
        }
    } else if (!want && c->reading) {
        ptc_tls_stream_read_stop(c->base.stream);
        c->reading = false;
    }
}

static void process(httpd_conn_t *c)
{
    if (c->in_process) {
        c->again = true;
        return;
    }
    c->in_process = true;
    do {
        c->again = false;
        process_once(c);
    } while (c->again && c->state != CS_CLOSED && c->state != CS_FINISHING);
    c->in_process = false;
    if (c->state != CS_CLOSED && c->state != CS_FINISHING) {
        update_reading(c);
        arm_timer(c);
    }
}

/* ---- connection callbacks ---- */

static void on_timer(uv_timer_t *t)
{
    httpd_conn_t *c = t->data;
    timer_use_t use = c->timer_use;
    c->timer_use = T_NONE;
    switch (use) {
    case T_NONE:
        return;
    case T_KICK:
        c->kick = false;
        process(c);
        return;
    case T_SHUTDOWN:
        /* The client stopped reading its last response (its line is written). */
        conn_close(c, PTC_ETIMEOUT, RESULT_TIMEOUT);
        return;
    case T_IDLE:
        if (uv_now(t->loop) < c->last_progress + c->base.edge->cfg.limits.http_idle_timeout_ms) {
            if (!c->released && uv_now(t->loop) >= c->last_progress + PTC_TLS_IDLE_RELEASE_MS) {
                release_idle(c);
            }
            arm_timer(c);
            return;
        }
        PTC_LOG(&c->base.log, PTC_LOG_DEBUG, "http_idle_close", PTC_LOG_END);
        conn_shutdown(c);
        return;
    case T_HEAD: {
        PTC_LOG(&c->base.log, PTC_LOG_INFO, "http_timeout", PTC_LOG_STR("phase", "head"));
        static const char msg[] =
            "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        (void)conn_write(c, msg, sizeof(msg) - 1);
        conn_shutdown(c);
        return;
    }
    case T_EXCHANGE: {
        ptc_httpd_req_t *req = c->req;
        if (req != NULL && req->timeout_ms != 0 &&
            uv_now(t->loop) < c->last_progress + req->timeout_ms) {
            /* Writes made progress since the timer was armed. */
            arm_timer(c);
            return;
        }
        PTC_LOG(&c->base.log, PTC_LOG_INFO, "http_timeout", PTC_LOG_STR("phase", "exchange"));
        if (req != NULL && !req->head_sent && !req->body_done && !req->no_body) {
            /* The client stopped sending its body. */
            if (!req->handler_done && req->h != NULL && req->h->on_abort != NULL) {
                req->handler_done = true;
                req->h->on_abort(req, PTC_ETIMEOUT);
            }
            req->handler_done = true;
            if (c->state != CS_CLOSED) {
                req->close_after = true;
                (void)respond_page(req, 408, "The request body did not arrive in time.");
            }
            return;
        }
        conn_close(c, PTC_ETIMEOUT, RESULT_TIMEOUT);
        return;
    }
    }
}

static void httpd_on_read(ptc_edge_conn_t *base, int status, ptc_slice_t data)
{
    httpd_conn_t *c = (httpd_conn_t *)base;
    if (c->state == CS_CLOSED) {
        return;
    }
    if (status == UV_EOF && c->state == CS_EXCHANGE && c->req != NULL && c->req->upgraded &&
        !c->req->handler_done) {
        /* An upgraded connection's client ended its side: the handler hears it as the end of
         * the bytes, and the other direction may still be written. */
        c->req->raw_eof = true;
        c->reading = false;
        process(c);
        return;
    }
    if (status != 0 || c->state == CS_FINISHING) {
        if (status == 0) {
            /* Input after the last request is not read (reading has stopped). */
            return;
        }
        /* The client closed (or the connection failed): what was not answered is lost. */
        if (c->req != NULL || c->in.len > 0) {
            PTC_LOG(&c->base.log, PTC_LOG_DEBUG, "http_client_gone", PTC_LOG_ERR(status));
        }
        conn_close(c, status, RESULT_ABORTED);
        return;
    }
    if (c->req == NULL && c->in.len == 0 && !c->head_partial) {
        c->head_start = uv_now(c->timer.loop);
    }
    c->last_progress = uv_now(c->timer.loop);
    c->released = false;
    if (ptc_buf_try_append(&c->in, data.ptr, data.len) != 0) {
        conn_close(c, PTC_ENOMEM, RESULT_ERROR);
        return;
    }
    process(c);
}

static void httpd_on_drain(ptc_edge_conn_t *base)
{
    httpd_conn_t *c = (httpd_conn_t *)base;
    ptc_httpd_req_t *req = c->req;
    if (c->state == CS_CLOSED || req == NULL || req->handler_done || req->h == NULL ||
        req->h->on_writable == NULL) {
        return;
    }
    req->h->on_writable(req);
}

static void httpd_drain(ptc_edge_conn_t *base)
{
    httpd_conn_t *c = (httpd_conn_t *)base;
    if (c->state == CS_CLOSED || c->state == CS_FINISHING) {
        return;
    }
    c->draining = true;
    if (c->req == NULL) {
        conn_shutdown(c);
    } else if (!c->req->head_sent) {
        c->req->close_after = true;
    }
}

static void httpd_abort(ptc_edge_conn_t *base)
{
    conn_close((httpd_conn_t *)base, PTC_ECLOSED, RESULT_SHUTDOWN);
}

static const ptc_edge_conn_ops_t httpd_ops = {
    .kind = "http",
    .on_read = httpd_on_read,
    .on_drain = httpd_on_drain,
    .on_close = httpd_on_close,
    .drain = httpd_drain,
    .abort = httpd_abort,
};

void ptc_httpd_accept(ptc_edge_conn_t *from)
{
    httpd_conn_t *c = ptc_xcalloc(1, sizeof(*c));
    ptc_edge_conn_handover(from, &c->base, &httpd_ops);
    ptc_edge_t *edge = c->base.edge;
    ptc_edge_conn_authenticated(&c->base);
    c->open_handles = 2; /* the timer and the stream */
    c->reading = true;
    ptc_buf_init(&c->in);
    ptc_buf_init(&c->scratch);
    ptc_http_limits_t lim = {
        .max_head_bytes = (size_t)edge->cfg.limits.max_head_bytes,
        .max_headers = (size_t)edge->cfg.limits.max_headers,
        .max_url_len = (size_t)edge->cfg.limits.max_url_len,
    };
    c->parser = ptc_http_parser_new(PTC_HTTP_REQUEST, &lim);
    c->last_progress = uv_now(edge->loop);
    c->head_start = c->last_progress;
    int rc = uv_timer_init(edge->loop, &c->timer);
    c->timer.data = c;
    if (rc != 0) {
        /* Without its timer the connection cannot be bounded: drop it. */
        c->open_handles = 1;
        set_state(c, CS_CLOSED);
        ptc_tls_stream_close(c->base.stream);
        return;
    }
    c->base.log.action = NULL;
    arm_timer(c);
}

/* ---- request accessors ---- */

const ptc_http_head_t *ptc_httpd_req_head(const ptc_httpd_req_t *req)
{
    return req->head;
}

const char *ptc_httpd_req_host(const ptc_httpd_req_t *req)
{
    return req->host;
}

ptc_slice_t ptc_httpd_req_path(const ptc_httpd_req_t *req)
{
    ptc_slice_t t = req->head->target;
    if (t.len == 0 || t.ptr[0] != '/') {
        return (ptc_slice_t){t.ptr, 0};
    }
    const uint8_t *q = memchr(t.ptr, '?', t.len);
    return (ptc_slice_t){t.ptr, q != NULL ? (size_t)(q - t.ptr) : t.len};
}

ptc_edge_t *ptc_httpd_req_edge(const ptc_httpd_req_t *req)
{
    return req->conn->base.edge;
}

const char *ptc_httpd_req_peer(const ptc_httpd_req_t *req)
{
    return req->conn->base.peer;
}

ptc_log_ctx_t *ptc_httpd_req_log(ptc_httpd_req_t *req)
{
    return &req->log;
}

const char *ptc_httpd_req_id(const ptc_httpd_req_t *req)
{
    return req->id;
}

bool ptc_httpd_req_is_head(const ptc_httpd_req_t *req)
{
    return req->is_head_method;
}

void ptc_httpd_req_set_handler(ptc_httpd_req_t *req, const ptc_httpd_handler_t *h, void *data)
{
    req->h = h;
    req->data = data;
}

void *ptc_httpd_req_data(const ptc_httpd_req_t *req)
{
    return req->data;
}

void ptc_httpd_req_set_timeout(ptc_httpd_req_t *req, uint64_t ms)
{
    req->timeout_ms = ms;
    if (!req->conn->in_process) {
        arm_timer(req->conn);
    }
}

void ptc_httpd_pause_body(ptc_httpd_req_t *req)
{
    req->body_paused = true;
}

void ptc_httpd_resume_body(ptc_httpd_req_t *req)
{
    httpd_conn_t *c = req->conn;
    if (!req->body_paused) {
        return;
    }
    req->body_paused = false;
    if (c->state == CS_CLOSED) {
        return;
    }
    if (c->in_process) {
        c->again = true;
        return;
    }
    c->kick = true;
    arm_timer(c);
}

/* ---- responses ---- */

static int send_head(httpd_conn_t *c, ptc_httpd_req_t *req, int status,
                     const ptc_http_header_t *all, size_t n);

static bool is_forbidden_header(ptc_slice_t name)
{
    return ptc_slice_case_eq(name, "content-length") ||
           ptc_slice_case_eq(name, "transfer-encoding") || ptc_slice_case_eq(name, "connection");
}

int ptc_httpd_respond(ptc_httpd_req_t *req, int status, const ptc_http_header_t *hdrs, size_t cnt,
                      int64_t content_length)
{
    httpd_conn_t *c = req->conn;
    if (c->state == CS_CLOSED) {
        return PTC_ECLOSED;
    }
    if (req->head_sent || status < 200 || status > 599) {
        return PTC_ESTATE;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (is_forbidden_header(hdrs[i].name)) {
            return PTC_EHTTP;
        }
    }
    const ptc_http_head_t *h = req->head;
    bool http10 = h->minor_version == 0;
    req->no_resp_body = req->is_head_method || status == 204 || status == 304;
    /* A response that starts before the request body is in ends the connection: the rest of
     * the body is never read. */
    if (!req->body_done && !req->no_body) {
        req->close_after = true;
    }
    if (c->draining) {
        req->close_after = true;
    }
    ptc_http_header_t *all = ptc_xmalloc((cnt + 3) * sizeof(*all));
    memcpy(all, hdrs, cnt * sizeof(*all));
    size_t n = cnt;
    char lenbuf[24];
    if (status != 204 && status != 304) {
        if (content_length >= 0) {
            int l = snprintf(lenbuf, sizeof(lenbuf), "%lld", (long long)content_length);
            all[n++] = (ptc_http_header_t){ptc_slice_str("Content-Length"),
                                           (ptc_slice_t){(const uint8_t *)lenbuf, (size_t)l}};
        } else if (http10) {
            req->close_after = true; /* the body ends with the connection */
        } else if (!req->is_head_method) {
            req->chunked = true;
            all[n++] =
                (ptc_http_header_t){ptc_slice_str("Transfer-Encoding"), ptc_slice_str("chunked")};
        }
    }
    if (req->close_after) {
        all[n++] = (ptc_http_header_t){ptc_slice_str("Connection"), ptc_slice_str("close")};
    } else if (http10) {
        all[n++] = (ptc_http_header_t){ptc_slice_str("Connection"), ptc_slice_str("keep-alive")};
    }
    int rc = send_head(c, req, status, all, n);
    free(all);
    if (rc == 0) {
        req->resp_len = req->no_resp_body ? 0 : content_length;
    }
    return rc;
}

/* Writes a response head (status and every header given); PTC_EHTTP writes nothing. */
static int send_head(httpd_conn_t *c, ptc_httpd_req_t *req, int status,
                     const ptc_http_header_t *all, size_t n)
{
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, SIZE_MAX, 0);
    int rc = ptc_http_write_response_head(&q, status, (ptc_slice_t){NULL, 0}, all, n);
    if (rc != 0) {
        ptc_chunkq_dispose(&q);
        return rc;
    }
    ptc_buf_reset(&c->scratch);
    while (q.queued > 0) {
        ptc_slice_t parts[16];
        size_t np = ptc_chunkq_peek(&q, parts, 16);
        size_t taken = 0;
        for (size_t i = 0; i < np; i++) {
            ptc_buf_append(&c->scratch, parts[i].ptr, parts[i].len);
            taken += parts[i].len;
        }
        ptc_chunkq_consume(&q, taken);
    }
    ptc_chunkq_dispose(&q);
    req->head_sent = true;
    req->status = status;
    req->bytes_out += c->scratch.len;
    return conn_write(c, ptc_buf_data(&c->scratch), c->scratch.len);
}

int ptc_httpd_upgrade(ptc_httpd_req_t *req, const ptc_http_header_t *hdrs, size_t cnt)
{
    httpd_conn_t *c = req->conn;
    if (c->state == CS_CLOSED) {
        return PTC_ECLOSED;
    }
    const ptc_http_head_t *h = req->head;
    if (req->head_sent || !h->upgrade || h->minor_version != 1 ||
        ptc_slice_eq(h->method, "CONNECT") || !req->body_done) {
        return PTC_ESTATE;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (is_forbidden_header(hdrs[i].name)) {
            return PTC_EHTTP;
        }
    }
    ptc_http_header_t *all = ptc_xmalloc((cnt + 1) * sizeof(*all));
    memcpy(all, hdrs, cnt * sizeof(*all));
    all[cnt] = (ptc_http_header_t){ptc_slice_str("Connection"), ptc_slice_str("upgrade")};
    int rc = send_head(c, req, 101, all, cnt + 1);
    free(all);
    if (rc != 0) {
        return rc;
    }
    /* From now on the connection is a byte pipe: it is never reused for HTTP. */
    req->upgraded = true;
    req->close_after = true;
    req->resp_len = PTC_HTTPD_LENGTH_UNKNOWN;
    req->chunked = false;
    req->no_resp_body = false;
    if (c->state != CS_CLOSED && !c->in_process) {
        /* Bytes the client sent right after its request belong to the new protocol. */
        c->kick = true;
        arm_timer(c);
    }
    return 0;
}

void ptc_httpd_req_set_log_fields(ptc_httpd_req_t *req, const char *app, const char *connector,
                                  const char *tunnel, int64_t upstream_ms)
{
    req->has_app = true;
    snprintf(req->app, sizeof(req->app), "%s", app != NULL ? app : "");
    snprintf(req->connector, sizeof(req->connector), "%s", connector != NULL ? connector : "");
    snprintf(req->tunnel, sizeof(req->tunnel), "%s", tunnel != NULL ? tunnel : "");
    req->upstream_ms = upstream_ms;
}

void ptc_httpd_req_set_user(ptc_httpd_req_t *req, const char *user)
{
    /* Longer values are cut as the log would cut them anyway. */
    snprintf(req->user, sizeof(req->user), "%s", user != NULL ? user : "");
}

int ptc_httpd_write(ptc_httpd_req_t *req, const void *p, size_t len)
{
    httpd_conn_t *c = req->conn;
    if (c->state == CS_CLOSED) {
        return PTC_ECLOSED;
    }
    if (!req->head_sent || req->finished) {
        return PTC_ESTATE;
    }
    if (len == 0 || req->no_resp_body) {
        return 0;
    }
    if (req->resp_len >= 0 && req->resp_written + len > (uint64_t)req->resp_len) {
        return PTC_ESTATE;
    }
    req->resp_written += len;
    req->bytes_out += len;
    if (!req->chunked) {
        return conn_write(c, p, len);
    }
    uint8_t hdr[PTC_HTTP_CHUNK_HEADER_MAX];
    size_t hl = ptc_http_format_chunk_header(hdr, len);
    ptc_buf_reset(&c->scratch);
    if (ptc_buf_try_append(&c->scratch, hdr, hl) != 0 ||
        ptc_buf_try_append(&c->scratch, p, len) != 0 ||
        ptc_buf_try_append(&c->scratch, "\r\n", 2) != 0) {
        conn_close(c, PTC_ENOMEM, RESULT_ERROR);
        return PTC_ECLOSED;
    }
    return conn_write(c, ptc_buf_data(&c->scratch), c->scratch.len);
}

int ptc_httpd_finish(ptc_httpd_req_t *req)
{
    httpd_conn_t *c = req->conn;
    req->handler_done = true;
    if (c->state == CS_CLOSED) {
        return PTC_ECLOSED;
    }
    if (!req->head_sent) {
        conn_close(c, PTC_ESTATE, RESULT_ERROR);
        return PTC_ESTATE;
    }
    if (req->resp_len >= 0 && req->resp_written != (uint64_t)req->resp_len) {
        /* The announced length was not met: the client must not wait for the rest. */
        conn_close(c, PTC_ESTATE, RESULT_ERROR);
        return PTC_ESTATE;
    }
    if (req->chunked) {
        static const char last[] = "0\r\n\r\n";
        req->bytes_out += sizeof(last) - 1;
        int rc = conn_write(c, last, sizeof(last) - 1);
        if (rc != 0) {
            return rc;
        }
    }
    req->finished = true;
    /* Whatever of the body is still to come is parsed and dropped. */
    bool was_paused = req->body_paused;
    req->body_paused = false;
    exchange_maybe_done(c);
    if (c->state != CS_CLOSED && c->req == req && was_paused && !c->in_process) {
        c->kick = true;
        arm_timer(c);
    }
    return 0;
}

void ptc_httpd_abort(ptc_httpd_req_t *req)
{
    req->handler_done = true;
    conn_close(req->conn, PTC_ECLOSED, RESULT_ERROR);
}

bool ptc_httpd_is_full(const ptc_httpd_req_t *req)
{
    const httpd_conn_t *c = req->conn;
    return c->state != CS_CLOSED && c->base.stream != NULL &&
           ptc_tls_stream_is_full(c->base.stream);
}

int ptc_httpd_respond_simple(ptc_httpd_req_t *req, int status, const char *content_type,
                             const ptc_http_header_t *hdrs, size_t cnt, const void *body,
                             size_t len)
{
    ptc_http_header_t all[16];
    size_t n = 0;
    if (content_type != NULL) {
        all[n++] = (ptc_http_header_t){ptc_slice_str("Content-Type"), ptc_slice_str(content_type)};
    }
    for (size_t i = 0; i < cnt && n < 16; i++) {
        all[n++] = hdrs[i];
    }
    int rc = ptc_httpd_respond(req, status, all, n, (int64_t)len);
    if (rc == 0) {
        rc = ptc_httpd_write(req, body, len);
    }
    if (rc == 0) {
        return ptc_httpd_finish(req);
    }
    /* The request is released in every case. */
    if (req->conn->state != CS_CLOSED) {
        conn_close(req->conn, rc, RESULT_ERROR);
    }
    req->handler_done = true;
    return rc;
}

int ptc_httpd_respond_error(ptc_httpd_req_t *req, int status, const char *code, const char *message,
                            const ptc_http_header_t *hdrs, size_t cnt)
{
    json_t *doc = json_pack("{s:s, s:s}", "error", code, "message", message);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        ptc_httpd_abort(req);
        return PTC_ENOMEM;
    }
    ptc_http_header_t all[16];
    size_t n = 0;
    all[n++] = (ptc_http_header_t){ptc_slice_str("Cache-Control"), ptc_slice_str("no-store")};
    for (size_t i = 0; i < cnt && n < 16; i++) {
        all[n++] = hdrs[i];
    }
    size_t len = strlen(text);
    text[len] = '\n';
    int rc = ptc_httpd_respond_simple(req, status, "application/json", all, n, text, len + 1);
    free(text);
    return rc;
}
