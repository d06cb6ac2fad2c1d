/* SPDX-License-Identifier: MIT */
/*
 * The admin API's HTTP server (see admin.h; the routes are in admin_routes.c). It owns the
 * unix-socket listener, the optional loopback TCP listener and every admin connection.
 *
 * A connection reads into a bounded input buffer and parses requests with common/http; a
 * request is served synchronously when its body is complete (edge/state's writes are small
 * and local), and the answer is queued on the connection's chunk queue. A route may defer its
 * answer (an app test waits for its connectors): the connection then neither reads nor
 * parses until that answer is queued, and closing it cancels the work. Pipelined requests
 * are answered in order; once the queued answers pass the high-water mark the connection
 * stops reading and parsing until the peer has taken them. One timer per connection bounds
 * each phase: the idle wait for a request, the arrival of a whole request, and the final
 * write before a close.
 *
 * Lifetimes (STYLE §5): a connection counts its two handles and frees itself in the last
 * close callback; the server counts its listeners plus its live connections and frees itself
 * when that count reaches zero after ptc_admin_stop(). Handlers never run for a closing
 * connection. The TCP listener's bearer token is kept only as its SHA-256, so it is compared
 * in constant time whatever its length.
 */
#include "edge/admin.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/net.h"
#include "edge/admin_int.h"

#define DEFAULT_SOCKET_MODE 0660
#define LISTEN_BACKLOG 16
#define READ_SIZE 16384
#define OUT_HIGH_WATER (256 * 1024)
#define OUT_LOW_WATER (64 * 1024)
/** How long the last answer (e.g. a 408 or 413) may take to leave before the close. */
#define CLOSE_GRACE_MS 5000
#define MAX_TOKEN_FILE 4096

typedef struct admin_conn admin_conn_t;

struct ptc_admin {
    ptc_edge_t *edge;
    ptc_log_ctx_t log;
    uv_pipe_t pipe;
    uv_tcp_t tcp;
    bool has_pipe;
    bool has_tcp;
    /* Open listener handles plus live connections: the last release frees the server. */
    unsigned refs;
    bool closing;
    /* The socket file this server created (removed by stop). */
    char *socket_path;
    /* SHA-256 of the TCP listener's bearer token. */
    uint8_t token_hash[PTC_SHA256_LEN];
    admin_conn_t *conns;
    size_t conn_cnt;
};

typedef enum conn_state {
    /* Waiting for the first byte of a request (idle timeout). */
    CONN_IDLE,
    /* Part of a request has arrived (request timeout). */
    CONN_REQUEST,
    /* The last answer is being written; the connection closes after it. */
    CONN_FINISHING,
} conn_state_t;

struct admin_conn {
    ptc_admin_t *admin; /* outlives the connection (it counts it in refs) */
    union {
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } h;
    uv_timer_t timer;
    unsigned open_handles;
    bool closing;
    bool is_unix;
    bool reading;
    /* The answers queued passed the high-water mark: neither read nor parse until drained. */
    bool paused;
    /* A deferred answer is pending (its handle and operations): neither read nor parse. */
    void *deferred;
    const ptc_admin_deferred_t *deferred_ops;
    bool deferred_close;
    bool deferred_head;
    conn_state_t state;
    /* The unix peer's uid (SO_PEERCRED), -1 when unknown or over TCP. */
    long uid;
    ptc_log_ctx_t log;
    ptc_http_parser_t *parser;
    ptc_buf_t in;
    ptc_buf_t body;
    ptc_chunkq_t out;
    admin_conn_t *prev;
    admin_conn_t *next;
};

typedef struct write_req {
    uv_write_t req;
    admin_conn_t *conn;
    ptc_chunk_t *chunks;
    size_t len;
    uv_buf_t bufs[];
} write_req_t;

static void conn_close(admin_conn_t *c);
static void process_input(admin_conn_t *c);
static void start_reading(admin_conn_t *c);
static void on_timer(uv_timer_t *t);

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- server lifetime ---- */

static void admin_free(ptc_admin_t *a)
{
    free(a->socket_path);
    ptc_keys_wipe(a->token_hash, sizeof(a->token_hash));
    free(a);
}

static void admin_release(ptc_admin_t *a)
{
    assert(a->refs > 0);
    if (--a->refs == 0 && a->closing) {
        admin_free(a);
    }
}

static void on_listener_closed(uv_handle_t *h)
{
    admin_release(h->data);
}

/* Closes whatever start() opened and lets the close callbacks free the server. */
static void admin_shutdown(ptc_admin_t *a)
{
    a->closing = true;
    if (a->has_pipe) {
        uv_close((uv_handle_t *)&a->pipe, on_listener_closed);
    }
    if (a->has_tcp) {
        uv_close((uv_handle_t *)&a->tcp, on_listener_closed);
    }
    while (a->conns != NULL) {
        conn_close(a->conns);
    }
    if (a->refs == 0) {
        admin_free(a);
    }
}

/* ---- connection lifetime ---- */

static void conn_free(admin_conn_t *c)
{
    ptc_admin_t *a = c->admin;
    ptc_http_parser_free(c->parser);
    /* A request cut short may leave part of a private key or a bearer token behind. */
    ptc_keys_wipe(ptc_buf_data(&c->in), c->in.len);
    ptc_keys_wipe(ptc_buf_data(&c->body), c->body.len);
    ptc_buf_dispose(&c->in);
    ptc_buf_dispose(&c->body);
    ptc_chunkq_dispose(&c->out);
    free(c);
    if (a != NULL) {
        admin_release(a);
    }
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    admin_conn_t *c = h->data;
    if (--c->open_handles == 0) {
        conn_free(c);
    }
}

static void conn_close(admin_conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    if (c->deferred != NULL) {
        c->deferred_ops->cancel(c->deferred);
        c->deferred = NULL;
    }
    ptc_admin_t *a = c->admin;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        a->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    a->conn_cnt--;
    uv_timer_stop(&c->timer);
    if (c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
    uv_close((uv_handle_t *)&c->h.stream, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void set_timer(admin_conn_t *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static const char *state_name(conn_state_t s)
{
    switch (s) {
    case CONN_IDLE:
        return "idle";
    case CONN_REQUEST:
        return "request";
    case CONN_FINISHING:
        return "finishing";
    }
    return "?";
}

/*
 * The one place a connection changes state; it also arms the timer of the new state. Allowed:
 * idle <-> request, request -> request (a pipelined request follows), idle or request ->
 * finishing. Nothing leaves finishing but the close.
 */
static void set_state(admin_conn_t *c, conn_state_t to)
{
    conn_state_t from = c->state;
    switch (to) {
    case CONN_IDLE:
        assert(from == CONN_REQUEST);
        set_timer(c, PTC_ADMIN_IDLE_TIMEOUT_MS);
        break;
    case CONN_REQUEST:
        assert(from == CONN_IDLE || from == CONN_REQUEST);
        set_timer(c, PTC_ADMIN_REQUEST_TIMEOUT_MS);
        break;
    case CONN_FINISHING:
        assert(from != CONN_FINISHING);
        set_timer(c, CLOSE_GRACE_MS);
        break;
    }
    c->state = to;
    PTC_LOG(&c->log, PTC_LOG_DEBUG, "admin_conn_state", PTC_LOG_STR("from", state_name(from)),
            PTC_LOG_STR("to", state_name(to)));
}

/* ---- writing ---- */

static void flush(admin_conn_t *c);

static void on_write(uv_write_t *req, int status)
{
    write_req_t *wr = (write_req_t *)req;
    admin_conn_t *c = wr->conn;
    ptc_chunkq_written(&c->out, wr->len);
    ptc_chunk_free_list(wr->chunks);
    free(wr);
    /* A close cancels pending writes (UV_ECANCELED) before the close callback. */
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    flush(c);
    if (c->state == CONN_FINISHING) {
        if (ptc_chunkq_backlog(&c->out) == 0) {
            conn_close(c);
        }
        return;
    }
    if (c->paused && ptc_chunkq_is_drained(&c->out)) {
        c->paused = false;
        process_input(c);
        if (!c->closing && !c->paused && c->state != CONN_FINISHING) {
            start_reading(c);
        }
    }
}

static void flush(admin_conn_t *c)
{
    if (c->closing || c->out.queued == 0) {
        return;
    }
    size_t len = 0;
    ptc_chunk_t *chunks = ptc_chunkq_detach(&c->out, &len);
    size_t cnt = 0;
    for (ptc_chunk_t *ch = chunks; ch != NULL; ch = ch->next) {
        cnt++;
    }
    write_req_t *wr = ptc_xmalloc(sizeof(*wr) + cnt * sizeof(uv_buf_t));
    wr->conn = c;
    wr->chunks = chunks;
    wr->len = len;
    size_t i = 0;
    for (ptc_chunk_t *ch = chunks; ch != NULL; ch = ch->next) {
        wr->bufs[i++] = uv_buf_init((char *)ch->data + ch->off, (unsigned)(ch->len - ch->off));
    }
    int rc = uv_write(&wr->req, &c->h.stream, wr->bufs, (unsigned)cnt, on_write);
    if (rc != 0) {
        ptc_chunkq_written(&c->out, len);
        ptc_chunk_free_list(chunks);
        free(wr);
        conn_close(c);
    }
}

/*
 * Queues one answer: the head (Content-Type and Content-Length except for 204, no caching)
 * and, unless `head_only`, the JSON document followed by a newline. `close` adds
 * "Connection: close", stops reading and closes the connection once the answer is written
 * (or CLOSE_GRACE_MS passed).
 */
static void respond(admin_conn_t *c, int status, json_t *answer, const char *allow, bool close,
                    bool head_only)
{
    char *text = NULL;
    size_t len = 0;
    if (status != 204 && answer != NULL) {
        /* 15 digits: step timings read 0.057, not 0.057000000000000002. */
        text = json_dumps(answer, JSON_COMPACT | JSON_REAL_PRECISION(15));
        if (text == NULL) {
            status = 500;
        } else {
            len = strlen(text);
        }
    }
    if (status != 204 && text == NULL) {
        json_t *e = ptc_admin_routes_error(ptc_admin_routes_error_code(status),
                                           ptc_http_reason_phrase(status));
        text = json_dumps(e, JSON_COMPACT);
        json_decref(e);
        if (text == NULL) {
            abort(); /* jansson only fails here when memory runs out */
        }
        len = strlen(text);
    }
    char clen[24];
    snprintf(clen, sizeof(clen), "%zu", len + (text != NULL ? 1 : 0));
    ptc_http_header_t hdrs[8];
    size_t n = 0;
    if (status != 204) {
        hdrs[n++] =
            (ptc_http_header_t){ptc_slice_str("Content-Type"), ptc_slice_str("application/json")};
        hdrs[n++] = (ptc_http_header_t){ptc_slice_str("Content-Length"), ptc_slice_str(clen)};
    }
    hdrs[n++] = (ptc_http_header_t){ptc_slice_str("Cache-Control"), ptc_slice_str("no-store")};
    hdrs[n++] =
        (ptc_http_header_t){ptc_slice_str("X-Content-Type-Options"), ptc_slice_str("nosniff")};
    if (allow != NULL) {
        hdrs[n++] = (ptc_http_header_t){ptc_slice_str("Allow"), ptc_slice_str(allow)};
    }
    if (status == 401) {
        hdrs[n++] = (ptc_http_header_t){ptc_slice_str("WWW-Authenticate"),
                                        ptc_slice_str("Bearer realm=\"portico-admin\"")};
    }
    if (close) {
        hdrs[n++] = (ptc_http_header_t){ptc_slice_str("Connection"), ptc_slice_str("close")};
    }
    ptc_slice_t reason = {NULL, 0};
    if (ptc_http_write_response_head(&c->out, status, reason, hdrs, n) != 0) {
        abort(); /* our own headers are valid; only memory can run out */
    }
    if (text != NULL) {
        /* An answer to HEAD announces its length but carries no body (RFC 9110 §9.3.2). */
        if (!head_only) {
            ptc_chunkq_append(&c->out, text, len);
            ptc_chunkq_append(&c->out, "\n", 1);
        }
        /* The answer to POST /v1/tokens holds the token text. */
        ptc_keys_wipe(text, len);
        free(text);
    }
    if (close) {
        set_state(c, CONN_FINISHING);
        if (c->reading) {
            uv_read_stop(&c->h.stream);
            c->reading = false;
        }
    }
    flush(c);
}

/* Answers an error that ends the connection (bad framing, limits, timeouts, auth). */
static void respond_error_close(admin_conn_t *c, int status, const char *message)
{
    json_t *e = ptc_admin_routes_error(ptc_admin_routes_error_code(status), message);
    respond(c, status, e, NULL, true, false);
    json_decref(e);
}

/* ---- requests ---- */

/* True if the request carries the TCP listener's bearer token (RFC 6750 §2.1). */
static bool is_authorized(const ptc_admin_t *a, const ptc_http_head_t *head)
{
    if (ptc_http_header_count(head->headers, head->header_cnt, "Authorization") != 1) {
        return false;
    }
    const ptc_http_header_t *h =
        ptc_http_header_find(head->headers, head->header_cnt, "Authorization");
    ptc_slice_t v = h->value;
    static const char scheme[] = "bearer ";
    if (v.len <= sizeof(scheme) - 1 ||
        !ptc_slice_case_eq((ptc_slice_t){v.ptr, sizeof(scheme) - 1}, scheme)) {
        return false;
    }
    ptc_slice_t tok = {v.ptr + sizeof(scheme) - 1, v.len - (sizeof(scheme) - 1)};
    while (tok.len > 0 && tok.ptr[0] == ' ') {
        tok.ptr++;
        tok.len--;
    }
    /* Hashing first makes the comparison independent of the presented token's length. */
    uint8_t hash[PTC_SHA256_LEN];
    ptc_sha256(tok.ptr, tok.len, hash);
    bool ok = ptc_consttime_eq(hash, a->token_hash, sizeof(hash));
    ptc_keys_wipe(hash, sizeof(hash));
    return ok;
}

/* A request head arrived: authorize it and check what it announces. False if answered. */
static bool on_head(admin_conn_t *c, const ptc_http_head_t *head)
{
    ptc_admin_t *a = c->admin;
    if (!c->is_unix && !is_authorized(a, head)) {
        PTC_LOG(&c->log, PTC_LOG_WARN, "admin_unauthorized",
                PTC_LOG_PEER("method", head->method.ptr, head->method.len),
                PTC_LOG_PEER("path", head->target.ptr, head->target.len));
        respond_error_close(c, 401, "a valid bearer token is required");
        return false;
    }
    if (head->upgrade) {
        respond_error_close(c, 400, "protocol upgrades are not supported");
        return false;
    }
    if (head->body == PTC_HTTP_BODY_LENGTH && head->content_length > PTC_ADMIN_MAX_BODY) {
        respond_error_close(c, 413, "the request body is larger than 1 MiB");
        return false;
    }
    ptc_buf_reset(&c->body);
    /* One allocation for an announced body, so that growing it leaves no copies behind. */
    size_t avail;
    if (head->body == PTC_HTTP_BODY_LENGTH && head->content_length > 0 &&
        ptc_buf_try_reserve(&c->body, (size_t)head->content_length, &avail) == NULL) {
        respond_error_close(c, 500, "out of memory");
        return false;
    }
    if (head->expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ptc_chunkq_append(&c->out, cont, sizeof(cont) - 1);
        flush(c);
    }
    return true;
}

static bool on_body(admin_conn_t *c, ptc_slice_t data)
{
    if (c->body.len + data.len > PTC_ADMIN_MAX_BODY) {
        respond_error_close(c, 413, "the request body is larger than 1 MiB");
        return false;
    }
    ptc_buf_append(&c->body, data.ptr, data.len);
    return true;
}

static char *slice_dup(ptc_slice_t s)
{
    char *p = ptc_xmalloc(s.len + 1);
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

/* After an answer was queued: wait for the next request, or for the peer to read. */
static void request_done(admin_conn_t *c)
{
    if (c->closing || c->state == CONN_FINISHING) {
        return;
    }
    set_state(c, c->in.len > 0 ? CONN_REQUEST : CONN_IDLE);
    if (ptc_chunkq_is_full(&c->out)) {
        c->paused = true;
        if (c->reading) {
            uv_read_stop(&c->h.stream);
            c->reading = false;
        }
    }
}

/* A deferred answer arrived (see admin_int.h): send it, then serve what waited behind it. */
static void on_deferred_answer(void *data, int status, json_t *answer)
{
    admin_conn_t *c = data;
    c->deferred = NULL;
    respond(c, status, answer, NULL, c->deferred_close, c->deferred_head);
    json_decref(answer);
    request_done(c);
    if (c->closing || c->paused || c->state == CONN_FINISHING) {
        return;
    }
    process_input(c);
    if (!c->closing && !c->paused && c->state != CONN_FINISHING) {
        start_reading(c);
    }
}

/* A whole request arrived: route it, log it, answer it. */
static void on_request(admin_conn_t *c)
{
    ptc_admin_t *a = c->admin;
    ptc_edge_t *edge = a->edge;
    const ptc_http_head_t *head = ptc_http_parser_head(c->parser);
    char *method = slice_dup(head->method);
    char *target = slice_dup(head->target);
    ptc_admin_req_t req;
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.target = target;
    req.now_ms = ptc_edge_now_ms();
    json_t *body = NULL;
    if (c->body.len > 0) {
        json_error_t jerr;
        body = json_loadb((const char *)ptc_buf_data(&c->body), c->body.len,
                          JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
        if (body == NULL) {
            char msg[256];
            snprintf(msg, sizeof(msg), "body: invalid JSON at line %d, column %d: %s", jerr.line,
                     jerr.column, jerr.text);
            req.status = 400;
            req.answer = ptc_admin_routes_error("bad_request", msg);
            req.is_change = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
        }
    }
    if (req.answer == NULL) {
        req.body = body;
        ptc_admin_routes_handle(edge, &req);
    }
    void *deferred = NULL;
    if (req.answer == NULL && req.deferred != NULL) {
        deferred = req.deferred->start(edge, req.id, on_deferred_answer, c);
        if (deferred == NULL) {
            req.status = 500;
            req.answer = ptc_admin_routes_error("internal_error", "the request could not start");
        }
    }
    ptc_keys_wipe(ptc_buf_data(&c->body), c->body.len);
    ptc_buf_reset(&c->body);
    if (req.store_err[0] != '\0') {
        PTC_LOG(&c->log, PTC_LOG_ERROR, "state_write_failed", PTC_LOG_STR("method", method),
                PTC_LOG_STR("resource", req.resource), PTC_LOG_STR("id", req.id),
                PTC_LOG_STR("reason", req.store_err));
    }
    if (req.is_change) {
        /* Never the body: it may hold a private key. */
        PTC_LOG(&c->log, PTC_LOG_INFO, "admin_change",
                c->uid >= 0 ? PTC_LOG_INT("admin_uid", c->uid) : PTC_LOG_STR("admin_uid", NULL),
                PTC_LOG_STR("method", method), PTC_LOG_STR("path", target),
                PTC_LOG_STR("resource", req.resource),
                PTC_LOG_STR("id", req.id[0] != '\0' ? req.id : NULL),
                PTC_LOG_INT("status", req.status));
    }
    bool close = !head->keep_alive;
    bool head_only = strcmp(method, "HEAD") == 0;
    if (body != NULL) {
        json_decref(body);
    }
    free(method);
    free(target);
    if (deferred != NULL) {
        /* The answer comes later; requests pipelined behind this one wait for it. */
        c->deferred = deferred;
        c->deferred_ops = req.deferred;
        c->deferred_close = close;
        c->deferred_head = head_only;
        if (c->reading) {
            uv_read_stop(&c->h.stream);
            c->reading = false;
        }
        set_timer(c, PTC_ADMIN_REQUEST_TIMEOUT_MS);
        return;
    }
    respond(c, req.status, req.answer, req.allow, close, head_only);
    json_decref(req.answer);
    request_done(c);
}

/* Parses what has been read, serving each complete request in turn. */
static void process_input(admin_conn_t *c)
{
    while (!c->closing && !c->paused && c->deferred == NULL && c->state != CONN_FINISHING) {
        ptc_http_event_t ev;
        uint8_t *data = ptc_buf_data(&c->in);
        ssize_t n = ptc_http_parser_feed(c->parser, data, c->in.len, &ev);
        if (n == PTC_ESTATE) {
            /* Input after a request that asked to close: ignored. */
            ptc_buf_reset(&c->in);
            return;
        }
        if (n < 0) {
            const ptc_http_error_t *e = ptc_http_parser_error(c->parser);
            int status = e != NULL && e->status >= 400 ? e->status : 400;
            char msg[128];
            snprintf(msg, sizeof(msg), "malformed request: %s",
                     e != NULL && e->reason != NULL ? e->reason : ptc_strerror((int)n));
            respond_error_close(c, status, msg);
            return;
        }
        bool ok = true;
        if (ev.type == PTC_HTTP_EV_BODY) {
            ok = on_body(c, ev.body);
        }
        /* What was parsed is copied (head, body): the raw bytes may hold a bearer token or a
         * private key, so they do not stay behind in the buffer. */
        ptc_keys_wipe(data, (size_t)n);
        ptc_buf_consume(&c->in, (size_t)n);
        if (!ok) {
            return;
        }
        switch (ev.type) {
        case PTC_HTTP_EV_NONE:
            return;
        case PTC_HTTP_EV_HEAD:
            if (!on_head(c, ev.head)) {
                return;
            }
            break;
        case PTC_HTTP_EV_BODY:
            break;
        case PTC_HTTP_EV_DONE:
            on_request(c);
            break;
        case PTC_HTTP_EV_INTERIM:
        case PTC_HTTP_EV_UPGRADE:
        case PTC_HTTP_EV_ERROR:
            /* Not produced for requests whose upgrade was refused at the head. */
            respond_error_close(c, 400, "malformed request");
            return;
        }
    }
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    admin_conn_t *c = h->data;
    size_t avail = 0;
    uint8_t *p = ptc_buf_try_reserve(&c->in, READ_SIZE, &avail);
    *buf =
        uv_buf_init((char *)p, p != NULL ? (unsigned)(avail < READ_SIZE ? avail : READ_SIZE) : 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    admin_conn_t *c = s->data;
    if (nread == 0 || c->closing) {
        return;
    }
    if (nread < 0) {
        /* EOF or an error: answers already queued may still leave (a half-closed peer). */
        c->reading = false;
        uv_read_stop(s);
        if (nread == UV_EOF && c->state == CONN_IDLE && ptc_chunkq_backlog(&c->out) > 0) {
            set_state(c, CONN_FINISHING);
            return;
        }
        conn_close(c);
        return;
    }
    ptc_buf_commit(&c->in, (size_t)nread);
    if (c->state == CONN_IDLE) {
        set_state(c, CONN_REQUEST);
    }
    process_input(c);
}

static void start_reading(admin_conn_t *c)
{
    if (c->reading || c->closing || c->deferred != NULL) {
        return;
    }
    int rc = uv_read_start(&c->h.stream, on_alloc, on_read);
    if (rc != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

static void on_timer(uv_timer_t *t)
{
    admin_conn_t *c = t->data;
    switch (c->state) {
    case CONN_IDLE:
    case CONN_FINISHING:
        conn_close(c);
        break;
    case CONN_REQUEST:
        if (c->deferred != NULL) {
            /* The deferred work bounds itself well within this; this is only a backstop. */
            c->deferred_ops->cancel(c->deferred);
            c->deferred = NULL;
            respond_error_close(c, 500, "the answer did not come in time");
        } else if (c->paused) {
            /* The peer stopped reading its answers. */
            conn_close(c);
        } else {
            respond_error_close(c, 408, "the request did not arrive in time");
        }
        break;
    }
}

/* ---- accepting ---- */

static void on_connection(uv_stream_t *server, int status)
{
    ptc_admin_t *a = server->data;
    if (status < 0 || a->closing) {
        return;
    }
    ptc_edge_t *edge = a->edge;
    bool is_unix = server == (uv_stream_t *)&a->pipe;
    admin_conn_t *c = ptc_xcalloc(1, sizeof(*c));
    c->admin = a;
    c->is_unix = is_unix;
    c->uid = -1;
    c->state = CONN_IDLE;
    ptc_log_ctx_init(&c->log, edge->logger);
    c->log.conn = ++edge->next_conn_id;
    int rc = is_unix ? uv_pipe_init(edge->loop, &c->h.pipe, 0) : uv_tcp_init(edge->loop, &c->h.tcp);
    if (rc != 0) {
        free(c);
        return;
    }
    c->h.stream.data = c;
    c->open_handles++;
    uv_timer_init(edge->loop, &c->timer);
    c->timer.data = c;
    c->open_handles++;
    c->parser = ptc_http_parser_new(PTC_HTTP_REQUEST, NULL);
    ptc_buf_init(&c->in);
    ptc_buf_init(&c->body);
    ptc_chunkq_init(&c->out, OUT_HIGH_WATER, OUT_LOW_WATER);
    a->refs++;
    c->next = a->conns;
    if (a->conns != NULL) {
        a->conns->prev = c;
    }
    a->conns = c;
    a->conn_cnt++;
    rc = uv_accept(server, &c->h.stream);
    if (rc != 0 || a->conn_cnt > PTC_ADMIN_MAX_CONNS) {
        if (rc == 0) {
            PTC_LOG(&a->log, PTC_LOG_WARN, "admin_refused",
                    PTC_LOG_STR("reason", "too many admin connections"));
        }
        conn_close(c);
        return;
    }
    int fd = -1;
    if (uv_fileno((uv_handle_t *)&c->h.stream, &fd) == 0) {
        if (is_unix) {
            struct ucred cred;
            socklen_t len = sizeof(cred);
            if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
                c->uid = (long)cred.uid;
            }
        }
    }
    if (!is_unix) {
        (void)uv_tcp_nodelay(&c->h.tcp, 1);
        struct sockaddr_storage ss;
        int sl = sizeof(ss);
        if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &sl) == 0) {
            if (ptc_log_ctx_set_peer_addr(&c->log, (struct sockaddr *)&ss) != 0) {
                ptc_log_ctx_set_peer(&c->log, NULL);
            }
        }
    }
    set_timer(c, PTC_ADMIN_IDLE_TIMEOUT_MS);
    start_reading(c);
}

/* ---- listening ---- */

/* Creates the missing directories of `dir` (like mkdir -p) with `mode`. */
static int make_dirs(const char *dir, unsigned mode)
{
    char path[PATH_MAX];
    if (strlen(dir) >= sizeof(path)) {
        return UV_ENAMETOOLONG;
    }
    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST) {
                return -errno;
            }
            *p = saved;
            if (saved == '\0') {
                break;
            }
        }
    }
    return 0;
}

/*
 * Removes a socket file nobody listens on (left by a crashed edge). A socket with a live
 * listener is another edge: refused. A file that is not a socket is never removed.
 */
static int remove_stale_socket(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        int e = errno;
        return fail(err, errlen, -e, "admin.socket %s: %s", path, strerror(e));
    }
    if (!S_ISSOCK(st.st_mode)) {
        return fail(err, errlen, UV_EEXIST, "admin.socket %s: exists and is not a socket", path);
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        return fail(err, errlen, -e, "admin.socket %s: %s", path, strerror(e));
    }
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    close(fd);
    if (rc == 0) {
        return fail(err, errlen, UV_EADDRINUSE,
                    "admin.socket %s: another process is listening on it (is portico-edge "
                    "already running?)",
                    path);
    }
    if (e != ECONNREFUSED) {
        return fail(err, errlen, -e, "admin.socket %s: %s", path, strerror(e));
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        e = errno;
        return fail(err, errlen, -e, "admin.socket %s: cannot remove the stale socket: %s", path,
                    strerror(e));
    }
    return 0;
}

static int listen_unix(ptc_admin_t *a, char *err, size_t errlen)
{
    const ptc_edge_admin_cfg_t *cfg = &a->edge->cfg.admin;
    const char *path = cfg->socket != NULL ? cfg->socket : "/run/portico/admin.sock";
    unsigned mode = cfg->socket_mode != 0 ? cfg->socket_mode : DEFAULT_SOCKET_MODE;
    struct sockaddr_un sa;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        return fail(err, errlen, UV_ENAMETOOLONG, "admin.socket %s: the path is longer than %zu",
                    path, sizeof(sa.sun_path) - 1);
    }
    /* The directory lets in whom the socket's mode lets in (search permission only). */
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        unsigned dir_mode =
            0700 | ((mode & 0060) != 0 ? 0010 : 0) | ((mode & 0006) != 0 ? 0001 : 0);
        int rc = make_dirs(dir, dir_mode);
        if (rc != 0) {
            return fail(err, errlen, rc, "admin.socket %s: cannot create %s: %s", path, dir,
                        uv_strerror(rc));
        }
    }
    int rc = remove_stale_socket(path, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = uv_pipe_init(a->edge->loop, &a->pipe, 0);
    if (rc != 0) {
        return fail(err, errlen, rc, "admin.socket %s: %s", path, uv_strerror(rc));
    }
    a->pipe.data = a;
    a->has_pipe = true;
    a->refs++;
    /* Bind with a mask that lets nobody in, then open it up to the configured mode. */
    mode_t old = umask(0177);
    rc = uv_pipe_bind(&a->pipe, path);
    umask(old);
    if (rc != 0) {
        return fail(err, errlen, rc, "admin.socket %s: %s", path, uv_strerror(rc));
    }
    a->socket_path = ptc_xstrdup(path);
    if (chmod(path, (mode_t)mode) != 0) {
        rc = -errno;
        return fail(err, errlen, rc, "admin.socket %s: chmod: %s", path, uv_strerror(rc));
    }
    rc = uv_listen((uv_stream_t *)&a->pipe, LISTEN_BACKLOG, on_connection);
    if (rc != 0) {
        return fail(err, errlen, rc, "admin.socket %s: %s", path, uv_strerror(rc));
    }
    char mode_text[16];
    snprintf(mode_text, sizeof(mode_text), "%04o", mode & 07777);
    PTC_LOG(&a->log, PTC_LOG_INFO, "admin_listening", PTC_LOG_STR("socket", path),
            PTC_LOG_STR("mode", mode_text));
    return 0;
}

/* Reads the bearer token (first line, trimmed) and keeps its SHA-256. */
static int load_token(ptc_admin_t *a, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        return fail(err, errlen, PTC_ECONFIG, "admin.token_file %s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, PTC_ECONFIG, "admin.token_file %s: not a regular file", path);
    }
    if ((st.st_mode & 0077) != 0) {
        close(fd);
        return fail(err, errlen, PTC_ECONFIG,
                    "admin.token_file %s: mode %04o lets group or others in; it must be 0600 "
                    "(or 0400)",
                    path, (unsigned)(st.st_mode & 07777));
    }
    char buf[MAX_TOKEN_FILE + 1];
    size_t len = 0;
    while (len < MAX_TOKEN_FILE) {
        ssize_t n = read(fd, buf + len, MAX_TOKEN_FILE - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    char *start = buf;
    while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n') {
        start++;
    }
    size_t tlen = strcspn(start, "\r\n");
    while (tlen > 0 && (start[tlen - 1] == ' ' || start[tlen - 1] == '\t')) {
        tlen--;
    }
    int rc = 0;
    if (tlen == 0) {
        rc = fail(err, errlen, PTC_ECONFIG, "admin.token_file %s: the file holds no token", path);
    } else {
        ptc_sha256(start, tlen, a->token_hash);
    }
    ptc_keys_wipe(buf, sizeof(buf));
    return rc;
}

/* Resolves admin.tcp to a loopback address; anything else is refused. */
static int loopback_addr(const char *spec, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    ptc_net_hostport_t hp;
    if (ptc_net_parse_hostport(spec, &hp) != 0 || hp.host[0] == '\0') {
        return fail(err, errlen, PTC_ECONFIG, "admin.tcp %s: expected HOST:PORT", spec);
    }
    const char *host = strcmp(hp.host, "localhost") == 0 ? "127.0.0.1" : hp.host;
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    if (uv_ip4_addr(host, hp.port, in4) == 0) {
        if ((ntohl(in4->sin_addr.s_addr) >> 24) == 127) {
            return 0;
        }
    } else if (uv_ip6_addr(host, hp.port, in6) == 0) {
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) {
            return 0;
        }
    }
    return fail(err, errlen, PTC_ECONFIG,
                "admin.tcp %s: not a loopback address (use 127.0.0.1, [::1] or localhost)", spec);
}

static int listen_tcp(ptc_admin_t *a, const struct sockaddr_storage *ss, char *err, size_t errlen)
{
    const char *spec = a->edge->cfg.admin.tcp;
    int rc = uv_tcp_init(a->edge->loop, &a->tcp);
    if (rc != 0) {
        return fail(err, errlen, rc, "admin.tcp %s: %s", spec, uv_strerror(rc));
    }
    a->tcp.data = a;
    a->has_tcp = true;
    a->refs++;
    rc = uv_tcp_bind(&a->tcp, (const struct sockaddr *)ss, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&a->tcp, LISTEN_BACKLOG, on_connection);
    }
    if (rc != 0) {
        return fail(err, errlen, rc, "admin.tcp %s: %s", spec, uv_strerror(rc));
    }
    char addr[PTC_NET_ADDRSTRLEN];
    if (ptc_net_sock_name(&a->tcp, addr, sizeof(addr)) != 0) {
        snprintf(addr, sizeof(addr), "%s", spec);
    }
    PTC_LOG(&a->log, PTC_LOG_INFO, "admin_listening", PTC_LOG_STR("tcp", addr));
    return 0;
}

/* ---- public API ---- */

int ptc_admin_start(ptc_edge_t *edge, char *err, size_t errlen)
{
    if (edge->admin != NULL) {
        return fail(err, errlen, UV_EALREADY, "the admin API is already started");
    }
    const ptc_edge_admin_cfg_t *cfg = &edge->cfg.admin;
    ptc_admin_t *a = ptc_xcalloc(1, sizeof(*a));
    a->edge = edge;
    ptc_log_ctx_init(&a->log, edge->logger);
    /* Everything that can be refused without opening a handle comes first. */
    struct sockaddr_storage ss;
    int rc = 0;
    if ((cfg->tcp != NULL) != (cfg->token_file != NULL)) {
        rc = fail(err, errlen, PTC_ECONFIG, "admin.tcp and admin.token_file go together");
    } else if (cfg->tcp != NULL) {
        rc = loopback_addr(cfg->tcp, &ss, err, errlen);
        if (rc == 0) {
            rc = load_token(a, cfg->token_file, err, errlen);
        }
    }
    if (rc != 0) {
        admin_free(a);
        return rc;
    }
    rc = listen_unix(a, err, errlen);
    if (rc == 0 && cfg->tcp != NULL) {
        rc = listen_tcp(a, &ss, err, errlen);
    }
    if (rc != 0) {
        if (a->socket_path != NULL) {
            (void)unlink(a->socket_path);
        }
        admin_shutdown(a);
        return rc;
    }
    edge->admin = a;
    return 0;
}

void ptc_admin_stop(ptc_edge_t *edge)
{
    ptc_admin_t *a = edge->admin;
    if (a == NULL) {
        return;
    }
    edge->admin = NULL;
    if (a->socket_path != NULL) {
        (void)unlink(a->socket_path);
    }
    admin_shutdown(a);
}
