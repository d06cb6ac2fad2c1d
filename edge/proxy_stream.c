/* SPDX-License-Identifier: MIT */
/*
 * The app request path, exchange half (see proxy.h, proxy_int.h).
 *
 * A request that goes to a backend is a preq: it is the httpd handler's data and the stream
 * handler's user pointer at once. Its state (WAITING for the RESPONSE, streaming the response
 * BODY, a PIPE after a 101, DONE) changes only in set_state(). The two sides let go of it
 * separately: httpd when the exchange is over (finish, a page, abort, or on_abort), the
 * tunnel when the stream is over (both halves ended, a reset sent, or on_reset). The preq is
 * freed when neither holds it and no call of ours is on the stack.
 *
 * Re-entrancy (STYLE §5 rule 3): httpd never calls a handler from inside a ptc_httpd_* call,
 * but a tunnel call (open, send, consumed) may fail the whole tunnel while it writes, which
 * runs on_reset for our stream before the call returns. Every entry point therefore runs
 * between enter() and leave(); a reset that arrives inside one of our calls is only recorded,
 * and leave() handles it once the outermost entry point is done with its own work.
 *
 * Close scenarios, and who ends what:
 * - the response completes: httpd finishes; the stream is over once both halves ended, or is
 *   reset with CANCEL if the client's body was still going up (it will not be read);
 * - the client goes away or times out (on_abort): the stream is reset with CANCEL;
 * - the connector resets before the RESPONSE: retry (refused, or a lost tunnel for idempotent
 *   methods), else an error page by cause class (docs/protocol.md §8 note 1);
 * - the connector resets after the RESPONSE: the client connection is aborted;
 * - a 101 pipe ends when the connector ends its half (the client connection is closed after
 *   the last bytes) or resets (aborted); the client's end is sent as END_STREAM;
 * - a 101 pipe of a signed-in user ends when the session expires (issue 6): the stream is
 *   reset with CANCEL and the client connection aborted, as for a reset after the RESPONSE.
 *   The expiry timer is the preq's only libuv handle; it lives in its own allocation, closed
 *   (and freed in its close callback) when the preq is freed, so the preq's own lifetime rules
 *   stay as they are.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "common/log.h"
#include "edge/pages.h"
#include "edge/proxy.h"
#include "edge/proxy_int.h"
#include "edge/translate.h"
#include "edge/tunnel_srv.h"
#include "proto/hblock.h"
#include "proto/proto.h"

/* How much longer than the app's backend_timeout the edge waits for a RESPONSE before it gives
 * up on the exchange itself (the connector answers BACKEND_TIMEOUT at backend_timeout). */
#define RESPONSE_GRACE_MS 15000
/* Tunnels tried when a picked one turns out to be closing. */
#define OPEN_ATTEMPTS 3
/* Slices taken from a chunk queue at a time. */
#define PEEK_MAX 16

typedef enum pstate {
    PS_WAITING, /* the REQUEST is out; no RESPONSE yet */
    PS_BODY,    /* the response head went to the client; its body follows */
    PS_PIPE,    /* after a 101: raw bytes both ways */
    PS_DONE,    /* the client's exchange is over */
} pstate_t;

typedef struct preq {
    ptc_edge_t *edge;
    ptc_httpd_req_t *req; /* NULL once httpd released the request */
    const ptc_app_t *app; /* one reference */
    pstate_t state;
    unsigned depth; /* entry points on the stack (enter/leave) */

    /* The stream: live while `tunnel` is set. */
    ptc_tunnel_t *tunnel;
    uint32_t sid;
    bool up_ended;      /* our END_STREAM was sent */
    bool down_ended;    /* the connector's END_STREAM arrived */
    bool reset_pending; /* a reset arrived inside one of our own calls */
    bool reset_refused;
    uint32_t reset_code;

    /* The request. */
    char *target; /* the backend request target */
    char id[PTC_PROXY_REQUEST_ID_MAX + 1];
    char connector[PTC_REGISTRY_ID_MAX + 1];
    char tunnel_id[PTC_REGISTRY_ID_MAX + 1];
    bool is_upgrade;
    bool idempotent;
    bool retried;
    bool no_body;   /* the request has no body at all */
    bool body_done; /* the client's body ended (before any 101) */
    bool body_seen; /* body bytes came from the client: the request cannot be replayed */
    uint64_t body_bytes;
    ptc_buf_t up_pending; /* client bytes the stream did not take yet (the body is paused) */
    bool up_pending_end;
    bool up_paused;

    /* The response. */
    size_t credit_owed; /* bytes handed to the client whose stream credit is still withheld */
    ptc_translate_t *tr;
    ptc_translate_body_t *tb;
    int64_t upstream_ms;

    /* Timing (uv_hrtime, ns): the request's start and the REQUEST's departure. */
    uint64_t t_start;
    uint64_t t_sent;

    /* The signed-in user (oidc apps): identity headers for every attempt, and the session's
     * expiry, which ends a pipe (exp_timer, armed in PS_PIPE). */
    ptc_proxy_identity_t who;
    uv_timer_t *exp_timer;
} preq_t;

static const ptc_httpd_handler_t httpd_handler;
static const ptc_tunnel_stream_handler_t stream_handler;

static void handle_reset(preq_t *p, uint32_t code, bool refused);

/* ---- state ---- */

static const char *state_name(pstate_t s)
{
    switch (s) {
    case PS_WAITING:
        return "waiting";
    case PS_BODY:
        return "body";
    case PS_PIPE:
        return "pipe";
    case PS_DONE:
        return "done";
    }
    return "unknown";
}

/* The only place the state changes (STYLE §6): checks the transition, logs it at debug. */
static void set_state(preq_t *p, pstate_t next)
{
    if (p->state == next) {
        return;
    }
    bool ok = false;
    switch (p->state) {
    case PS_WAITING:
        ok = next == PS_BODY || next == PS_PIPE || next == PS_DONE;
        break;
    case PS_BODY:
    case PS_PIPE:
        ok = next == PS_DONE;
        break;
    case PS_DONE:
        ok = false;
        break;
    }
    assert(ok);
    (void)ok;
    if (p->req != NULL) {
        PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_DEBUG, "proxy_state",
                PTC_LOG_STR("from", state_name(p->state)), PTC_LOG_STR("to", state_name(next)));
    }
    p->state = next;
}

static void on_exp_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void preq_free(preq_t *p)
{
    assert(p->req == NULL && p->tunnel == NULL && p->depth == 0);
    if (p->exp_timer != NULL) {
        p->exp_timer->data = NULL;
        uv_close((uv_handle_t *)p->exp_timer, on_exp_timer_closed);
        p->exp_timer = NULL;
    }
    ptc_auth_headers_free(p->who.headers, p->who.cnt);
    ptc_translate_body_free(p->tb);
    ptc_translate_unref(p->tr);
    ptc_buf_dispose(&p->up_pending);
    ptc_app_unref(p->app);
    free(p->target);
    free(p);
}

static void enter(preq_t *p)
{
    p->depth++;
}

/*
 * Leaves an entry point. The outermost one handles a reset that arrived during its own calls,
 * drops the stream once both halves ended (tunnel_srv forgets it then, without a callback),
 * and frees the preq once neither side holds it.
 */
static void leave(preq_t *p)
{
    if (p->depth == 1) {
        while (p->reset_pending) {
            p->reset_pending = false;
            handle_reset(p, p->reset_code, p->reset_refused);
        }
        if (p->up_ended && p->down_ended) {
            p->tunnel = NULL;
        }
    }
    if (--p->depth == 0 && p->req == NULL && p->tunnel == NULL) {
        preq_free(p);
    }
}

/*
 * Copies the log fields the access line needs. httpd writes the line whenever the exchange
 * ends, a client that goes away included, so this runs each time a field changes (start,
 * stream opened, RESPONSE) and before anything that may end the exchange.
 */
static void update_log(preq_t *p)
{
    if (p->req != NULL) {
        ptc_httpd_req_set_log_fields(p->req, p->app->name, p->connector, p->tunnel_id,
                                     p->upstream_ms);
    }
}

/* ---- the stream ---- */

static void reset_stream(preq_t *p, uint32_t code)
{
    ptc_tunnel_t *t = p->tunnel;
    if (t == NULL) {
        return;
    }
    p->tunnel = NULL;
    if (ptc_tunnel_stream_reset(t, p->sid, code) != 0) {
        /* PTC_ENOTFOUND: the tunnel had already forgotten the stream; nothing to reset. */
        return;
    }
}

/* Ends the client's exchange with a page (before any response) and drops the stream. */
static void fail_request(preq_t *p, ptc_page_cause_t cause)
{
    reset_stream(p, PTC_WIRE_CANCEL);
    if (p->req != NULL) {
        ptc_httpd_req_t *req = p->req;
        update_log(p);
        p->req = NULL;
        ptc_proxy_respond_page(req, p->app, p->id, cause);
    }
    set_state(p, PS_DONE);
}

/* Opens the stream on `t` with the REQUEST head. Returns as ptc_tunnel_open_stream(). */
static int open_on(preq_t *p, ptc_tunnel_t *t)
{
    ptc_proxy_up_t up;
    ptc_proxy_up_init(&up, p->req, p->app, p->id, p->target, p->is_upgrade, p->who.headers,
                      p->who.cnt);
    /* §5.5 rule 4: an UPGRADE request keeps its half open for the bytes after a 101. */
    bool end = (p->no_body || p->body_done) && !p->is_upgrade;
    /* Set before the call: a tunnel that fails while writing resets the stream at once. */
    p->tunnel = t;
    p->up_ended = end;
    p->down_ended = false;
    p->credit_owed = 0;
    uint32_t sid = 0;
    int rc = ptc_tunnel_open_stream(t, &up.head, end, &stream_handler, p, &sid);
    ptc_proxy_up_dispose(&up);
    if (rc != 0) {
        p->tunnel = NULL;
        p->up_ended = false;
        return rc;
    }
    p->sid = sid;
    p->t_sent = uv_hrtime();
    snprintf(p->connector, sizeof(p->connector), "%s", ptc_tunnel_connector(t));
    snprintf(p->tunnel_id, sizeof(p->tunnel_id), "%s", ptc_tunnel_id(t));
    /* The client may go away at any moment: its access line names the tunnel from now on. */
    update_log(p);
    return 0;
}

/* Registry filter for a retry: a tunnel of another connector than the one that failed. */
static bool of_other_connector(void *owner, void *data)
{
    return strcmp(ptc_tunnel_connector(owner), (const char *)data) != 0;
}

/*
 * Picks a live tunnel of the app's group and opens the stream; answers a page when it cannot.
 * A retry (`avoid` names the connector whose tunnel failed) first tries the tunnels of other
 * connectors: when a connector dies, its other tunnels still look alive until their own
 * connections report the loss.
 */
static void start_stream(preq_t *p, const char *avoid)
{
    for (int i = 0; i < OPEN_ATTEMPTS; i++) {
        ptc_tunnel_t *t = NULL;
        if (avoid != NULL && i == 0) {
            ptc_registry_tunnel_t *r = ptc_registry_pick(p->edge->registry, p->app->connector_group,
                                                         of_other_connector, (void *)avoid);
            t = r != NULL ? ptc_registry_owner(r) : NULL;
        }
        bool checked = t == NULL;
        if (t == NULL) {
            t = ptc_tunnel_pick(p->edge, p->app->connector_group);
        }
        if (t == NULL) {
            break;
        }
        int rc = open_on(p, t);
        if (rc == 0) {
            return;
        }
        /* A tunnel that is closing, or (one not checked by ptc_tunnel_pick) at its
         * connector's max_streams: the next pick skips it. */
        if (rc == PTC_ECLOSED || (rc == PTC_ELIMIT && !checked)) {
            continue;
        }
        PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_WARN, "http_upstream_error",
                PTC_LOG_STR("app", p->app->name), PTC_LOG_STR("phase", "open"), PTC_LOG_ERR(rc));
        fail_request(p, rc == PTC_ELIMIT  ? PTC_PAGE_HEADERS_TOO_LARGE
                        : rc == PTC_EHTTP ? PTC_PAGE_BAD_REQUEST
                                          : PTC_PAGE_CONNECTOR_ERROR);
        return;
    }
    PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_WARN, "http_upstream_error",
            PTC_LOG_STR("app", p->app->name), PTC_LOG_STR("cause", "no_connector"),
            PTC_LOG_STR("group", p->app->connector_group));
    fail_request(p, PTC_PAGE_NO_CONNECTOR);
}

/* Returns the stream credit withheld for bytes the client connection has now drained. */
static void give_credit(preq_t *p)
{
    if (p->credit_owed == 0 || p->tunnel == NULL || p->down_ended) {
        p->credit_owed = 0;
        return;
    }
    size_t n = p->credit_owed;
    p->credit_owed = 0;
    if (ptc_tunnel_stream_consumed(p->tunnel, p->sid, n) != 0) {
        /* The tunnel is closing: the stream's reset follows. */
        return;
    }
}

/* ---- request body up ---- */

static void pause_client(preq_t *p)
{
    if (!p->up_paused && p->req != NULL) {
        p->up_paused = true;
        ptc_httpd_pause_body(p->req);
    }
}

static void resume_client(preq_t *p)
{
    if (p->up_paused) {
        p->up_paused = false;
        if (p->req != NULL) {
            ptc_httpd_resume_body(p->req);
        }
    }
}

/*
 * Sends client bytes up (request body, or raw bytes in a pipe): what the stream does not take
 * waits in up_pending and the client's body pauses until the stream is writable (STYLE §6).
 */
static void send_up(preq_t *p, const uint8_t *data, size_t len, bool end)
{
    if (p->tunnel == NULL || p->up_ended) {
        return;
    }
    if (p->up_pending.len > 0) {
        ptc_buf_append(&p->up_pending, data, len);
        p->up_pending_end = p->up_pending_end || end;
        pause_client(p);
        return;
    }
    if (len == 0 && !end) {
        return;
    }
    ssize_t n = ptc_tunnel_stream_send(p->tunnel, p->sid, data, len, end);
    if (n < 0) {
        /* The stream is gone or closing: its reset (if any) is handled by leave(). */
        return;
    }
    if ((size_t)n < len) {
        ptc_buf_append(&p->up_pending, data + n, len - (size_t)n);
        p->up_pending_end = end;
        pause_client(p);
        return;
    }
    if (end) {
        p->up_ended = true;
    }
    if (p->tunnel != NULL && ptc_tunnel_is_full(p->tunnel)) {
        /* The tunnel's output is above its high-water mark: its on_writable resumes us. */
        pause_client(p);
    }
}

/* The stream can take more: sends what waits, then lets the client's body flow again. */
static void flush_up(preq_t *p)
{
    if (p->tunnel != NULL && !p->up_ended && p->up_pending.len > 0) {
        ssize_t n = ptc_tunnel_stream_send(p->tunnel, p->sid, ptc_buf_data(&p->up_pending),
                                           p->up_pending.len, p->up_pending_end);
        if (n > 0) {
            ptc_buf_consume(&p->up_pending, (size_t)n);
        }
        if (n >= 0 && p->up_pending.len == 0 && p->up_pending_end) {
            p->up_ended = true;
        }
    }
    if (p->tunnel == NULL || p->up_pending.len > 0) {
        return;
    }
    if (!ptc_tunnel_is_full(p->tunnel)) {
        resume_client(p);
    } else if (p->up_paused && !p->up_ended) {
        /* Woken by the stream's window while the tunnel's output is still full: an empty
         * send asks for on_writable again once it drains. */
        ssize_t n = ptc_tunnel_stream_send(p->tunnel, p->sid, NULL, 0, false);
        (void)n;
    }
}

static void too_large(preq_t *p)
{
    PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_INFO, "http_body_too_large",
            PTC_LOG_STR("app", p->app->name), PTC_LOG_UINT("limit", p->app->max_body_size));
    if (p->state == PS_WAITING) {
        fail_request(p, PTC_PAGE_BODY_TOO_LARGE);
        return;
    }
    /* The response has begun: it cannot turn into a 413 any more. */
    reset_stream(p, PTC_WIRE_CANCEL);
    ptc_httpd_req_t *req = p->req;
    p->req = NULL;
    set_state(p, PS_DONE);
    ptc_httpd_abort(req);
}

static void on_client_bytes(preq_t *p, ptc_slice_t data, bool end)
{
    if (p->state == PS_DONE || p->req == NULL) {
        return;
    }
    if (p->state != PS_PIPE) {
        if (data.len > 0) {
            p->body_seen = true;
        }
        p->body_bytes += data.len;
        uint64_t max = p->app->max_body_size;
        if (max > 0 && p->body_bytes > max) {
            too_large(p);
            return;
        }
        if (end) {
            p->body_done = true;
        }
        if (p->is_upgrade && p->state == PS_WAITING) {
            /* An upgrade request has no body; its half stays open for a 101 (§5.5 rule 4). */
            return;
        }
    }
    send_up(p, data.ptr, data.len, end);
}

/* ---- response down ---- */

/* Fields of a RESPONSE that never reach the client as they are. */
static bool drop_response_field(ptc_slice_t name, bool upgrade)
{
    static const char *const names[] = {
        "connection", "keep-alive",        "proxy-connection", "te",
        "trailer",    "transfer-encoding", "content-length",   "x-request-id",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (ptc_slice_case_eq(name, names[i])) {
            return true;
        }
    }
    return !upgrade && ptc_slice_case_eq(name, "upgrade");
}

/* The single valid content-length of a RESPONSE, or -1. */
static int64_t response_length(const ptc_response_head_t *rh)
{
    int64_t len = -1;
    for (size_t i = 0; i < rh->header_cnt; i++) {
        ptc_proto_str_t n = rh->headers[i].name;
        if (!ptc_slice_case_eq((ptc_slice_t){n.ptr, n.len}, "content-length")) {
            continue;
        }
        if (len >= 0) {
            return -1;
        }
        ptc_proto_str_t v = rh->headers[i].value;
        if (v.len == 0 || v.len > 18) {
            return -1;
        }
        int64_t x = 0;
        for (size_t j = 0; j < v.len; j++) {
            if (v.ptr[j] < '0' || v.ptr[j] > '9') {
                return -1;
            }
            x = x * 10 + (v.ptr[j] - '0');
        }
        len = x;
    }
    return len;
}

static ptc_slice_t response_field(const ptc_response_head_t *rh, const char *name)
{
    for (size_t i = 0; i < rh->header_cnt; i++) {
        ptc_proto_str_t n = rh->headers[i].name;
        if (ptc_slice_case_eq((ptc_slice_t){n.ptr, n.len}, name)) {
            return (ptc_slice_t){rh->headers[i].value.ptr, rh->headers[i].value.len};
        }
    }
    return (ptc_slice_t){NULL, 0};
}

/* The app's translator, made on first use; NULL when the app's URLs cannot make one. */
static ptc_translate_t *translator(preq_t *p)
{
    if (p->tr == NULL) {
        int rc = ptc_translate_new(p->app->internal_url, p->app->external_url, &p->tr);
        if (rc != 0) {
            PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_WARN, "translate_unavailable",
                    PTC_LOG_STR("app", p->app->name), PTC_LOG_ERR(rc));
            p->tr = NULL;
        }
    }
    return p->tr;
}

/* A response header being built: the value is either a slice of the RESPONSE or bytes in the
 * store (at `off`), resolved once every value is stored. */
typedef struct hdr_out {
    ptc_slice_t name;
    ptc_slice_t value;
    size_t off;
    bool stored;
} hdr_out_t;

/*
 * The client's response headers: the RESPONSE's end-to-end fields (Location, Content-Location,
 * Refresh and Set-Cookie translated for translate_headers apps), then X-Request-Id, HSTS for
 * https apps with hsts (unless the backend set one) and Server-Timing when enabled. Returns
 * the count; the slices point into `rh`, `store` and `timing`.
 */
static size_t response_headers(preq_t *p, const ptc_response_head_t *rh, bool upgrade,
                               bool body_translated, ptc_buf_t *store, const char *timing,
                               ptc_http_header_t **out)
{
    hdr_out_t *hv = ptc_xmalloc((rh->header_cnt + 4) * sizeof(*hv));
    size_t n = 0;
    bool has_sts = false;
    for (size_t i = 0; i < rh->header_cnt; i++) {
        ptc_slice_t name = {rh->headers[i].name.ptr, rh->headers[i].name.len};
        ptc_slice_t value = {rh->headers[i].value.ptr, rh->headers[i].value.len};
        if (drop_response_field(name, upgrade)) {
            continue;
        }
        if (ptc_slice_case_eq(name, "strict-transport-security")) {
            has_sts = true;
        }
        if (body_translated && ptc_slice_case_eq(name, "content-md5")) {
            continue;
        }
        hv[n] = (hdr_out_t){.name = name, .value = value};
        if (p->app->translate_headers && ptc_translate_header_applies(name) &&
            translator(p) != NULL) {
            size_t off = store->len;
            if (ptc_translate_header(p->tr, name, value, store, NULL) == 0) {
                hv[n].stored = true;
                hv[n].off = off;
                hv[n].value.len = store->len - off;
            }
        }
        n++;
    }
    hv[n++] = (hdr_out_t){.name = ptc_slice_str("X-Request-Id"), .value = ptc_slice_str(p->id)};
    if (p->app->hsts && p->app->ext_https && !has_sts) {
        hv[n++] = (hdr_out_t){.name = ptc_slice_str("Strict-Transport-Security"),
                              .value = ptc_slice_str(PTC_PROXY_HSTS_VALUE)};
    }
    if (timing != NULL) {
        hv[n++] =
            (hdr_out_t){.name = ptc_slice_str("Server-Timing"), .value = ptc_slice_str(timing)};
    }
    ptc_http_header_t *hdrs = ptc_xmalloc(n * sizeof(*hdrs));
    for (size_t i = 0; i < n; i++) {
        hdrs[i].name = hv[i].name;
        hdrs[i].value = hv[i].stored
                            ? (ptc_slice_t){ptc_buf_data(store) + hv[i].off, hv[i].value.len}
                            : hv[i].value;
    }
    free(hv);
    *out = hdrs;
    return n;
}

/* Writes the queue's bytes to the client (one chunk each for a chunked body). */
static int write_queue(preq_t *p, ptc_chunkq_t *q)
{
    while (q->queued > 0) {
        ptc_slice_t parts[PEEK_MAX];
        size_t np = ptc_chunkq_peek(q, parts, PEEK_MAX);
        size_t taken = 0;
        for (size_t i = 0; i < np; i++) {
            int rc = ptc_httpd_write(p->req, parts[i].ptr, parts[i].len);
            if (rc != 0) {
                return rc;
            }
            taken += parts[i].len;
        }
        ptc_chunkq_consume(q, taken);
    }
    return 0;
}

static int write_down(preq_t *p, ptc_slice_t data)
{
    if (p->tb == NULL) {
        return ptc_httpd_write(p->req, data.ptr, data.len);
    }
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, SIZE_MAX, 0);
    int rc = ptc_translate_body_feed(p->tb, data.ptr, data.len, &q);
    if (rc == 0) {
        rc = write_queue(p, &q);
    }
    ptc_chunkq_dispose(&q);
    return rc;
}

/* The response is complete: the exchange ends; a request body still going up is cut. */
static void finish_response(preq_t *p)
{
    if (p->req != NULL) {
        ptc_httpd_req_t *req = p->req;
        int rc = 0;
        if (p->tb != NULL) {
            ptc_chunkq_t q;
            ptc_chunkq_init(&q, SIZE_MAX, 0);
            rc = ptc_translate_body_finish(p->tb, &q);
            if (rc == 0) {
                rc = write_queue(p, &q);
            }
            ptc_chunkq_dispose(&q);
        }
        update_log(p);
        p->req = NULL;
        if (rc != 0) {
            ptc_httpd_abort(req);
        } else {
            /* A failure here (fewer bytes than announced) closes the client connection; the
             * request is released either way. */
            int frc = ptc_httpd_finish(req);
            (void)frc;
        }
    }
    set_state(p, PS_DONE);
    if (!p->up_ended) {
        reset_stream(p, PTC_WIRE_CANCEL);
    }
}

/* The client connection cannot complete its response: it is cut, and the stream reset. */
static void abort_client(preq_t *p, uint32_t code)
{
    reset_stream(p, code);
    if (p->req != NULL) {
        ptc_httpd_req_t *req = p->req;
        update_log(p);
        p->req = NULL;
        ptc_httpd_abort(req);
    }
    set_state(p, PS_DONE);
}

/* Server-Timing (docs/apps.md): the edge's own time and the REQUEST-to-RESPONSE time. */
static void server_timing(preq_t *p, uint64_t now, char *out, size_t cap)
{
    double backend = (double)(now - p->t_sent) / 1e6;
    double total = (double)(now - p->t_start) / 1e6;
    double edge = total > backend ? total - backend : 0.0;
    snprintf(out, cap, "edge;dur=%.3f, backend;dur=%.3f", edge, backend);
}

static uint64_t body_timeout(const preq_t *p)
{
    uint64_t idle = p->edge->cfg.limits.http_idle_timeout_ms;
    return p->app->backend_timeout_ms > idle ? p->app->backend_timeout_ms : idle;
}

/* The session behind a pipe expired: the pipe is closed both ways. */
static void on_session_expired(uv_timer_t *t)
{
    preq_t *p = t->data;
    if (p == NULL) {
        return;
    }
    enter(p);
    if (p->state == PS_PIPE && p->req != NULL) {
        PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_INFO, "auth_session_expired",
                PTC_LOG_STR("app", p->app->name), PTC_LOG_STR("tunnel", p->tunnel_id));
        abort_client(p, PTC_WIRE_CANCEL);
    }
    leave(p);
}

/* Arms the pipe's expiry timer when the request came with a session. */
static void arm_session_timer(preq_t *p)
{
    if (p->who.session_exp <= 0 || p->exp_timer != NULL) {
        return;
    }
    int64_t left_ms = p->who.session_exp * 1000 - (int64_t)ptc_edge_now_ms();
    if (left_ms < 0) {
        left_ms = 0;
    }
    uv_timer_t *t = ptc_xcalloc(1, sizeof(*t));
    int rc = uv_timer_init(p->edge->loop, t);
    assert(rc == 0); /* uv_timer_init cannot fail on an initialised loop */
    (void)rc;
    t->data = p;
    p->exp_timer = t;
    rc = uv_timer_start(t, on_session_expired, (uint64_t)left_ms, 0);
    assert(rc == 0);
}

/* A 101: the exchange becomes a byte pipe (§5.5 rule 4). */
static void start_pipe(preq_t *p, const ptc_response_head_t *rh, bool end)
{
    ptc_buf_t store;
    ptc_buf_init(&store);
    ptc_http_header_t *hdrs = NULL;
    size_t n = response_headers(p, rh, true, false, &store, NULL, &hdrs);
    update_log(p);
    int rc = ptc_httpd_upgrade(p->req, hdrs, n);
    free(hdrs);
    ptc_buf_dispose(&store);
    if (rc != 0) {
        PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_WARN, "http_upstream_error",
                PTC_LOG_STR("app", p->app->name), PTC_LOG_STR("phase", "upgrade"), PTC_LOG_ERR(rc));
        if (rc == PTC_ECLOSED) {
            abort_client(p, PTC_WIRE_CANCEL);
        } else {
            reset_stream(p, PTC_WIRE_CANCEL);
            fail_request(p, PTC_PAGE_CONNECTOR_ERROR);
        }
        return;
    }
    set_state(p, PS_PIPE);
    ptc_httpd_req_set_timeout(p->req, body_timeout(p));
    arm_session_timer(p);
    if (end) {
        p->down_ended = true;
        finish_response(p);
    }
}

static void on_response(void *user, const ptc_response_head_t *rh, bool end)
{
    preq_t *p = user;
    enter(p);
    uint64_t now = uv_hrtime();
    p->upstream_ms = (int64_t)((now - p->t_sent) / 1000000u);
    if (p->req == NULL || p->state != PS_WAITING) {
        /* The client is gone: its stream is being reset. */
        reset_stream(p, PTC_WIRE_CANCEL);
        leave(p);
        return;
    }
    if (rh->status == 101) {
        if (!p->is_upgrade) {
            /* §5.5 rule 4: a 101 to a request without the UPGRADE flag. */
            reset_stream(p, PTC_WIRE_PROTOCOL_ERROR);
            fail_request(p, PTC_PAGE_CONNECTOR_ERROR);
        } else {
            start_pipe(p, rh, end);
        }
        leave(p);
        return;
    }
    if (p->is_upgrade && !p->up_ended) {
        /* An ordinary answer to an upgrade request: the edge ends its half (§5.5 rule 4). */
        send_up(p, NULL, 0, true);
    }
    bool head = ptc_httpd_req_is_head(p->req);
    bool bodiless = head || rh->status == 204 || rh->status == 304;
    bool translate = false;
    if (p->app->translate_body && translator(p) != NULL) {
        translate = ptc_translate_body_wanted(response_field(rh, "content-type"),
                                              response_field(rh, "content-encoding"));
    }
    int64_t clen = response_length(rh);
    if (translate) {
        clen = PTC_HTTPD_LENGTH_UNKNOWN;
    } else if (clen < 0 && end && !bodiless) {
        clen = 0;
    }
    char timing[96];
    bool with_timing = p->edge->cfg.server_timing;
    if (with_timing) {
        server_timing(p, now, timing, sizeof(timing));
    }
    ptc_buf_t store;
    ptc_buf_init(&store);
    ptc_http_header_t *hdrs = NULL;
    size_t n =
        response_headers(p, rh, false, translate, &store, with_timing ? timing : NULL, &hdrs);
    update_log(p);
    int rc = ptc_httpd_respond(p->req, rh->status, hdrs, n, clen);
    free(hdrs);
    ptc_buf_dispose(&store);
    if (rc != 0) {
        PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_WARN, "http_upstream_error",
                PTC_LOG_STR("app", p->app->name), PTC_LOG_STR("phase", "response_head"),
                PTC_LOG_INT("status", rh->status), PTC_LOG_ERR(rc));
        if (rc == PTC_ECLOSED) {
            abort_client(p, PTC_WIRE_CANCEL);
        } else {
            fail_request(p, PTC_PAGE_BACKEND_RESET);
        }
        leave(p);
        return;
    }
    set_state(p, PS_BODY);
    ptc_httpd_req_set_timeout(p->req, body_timeout(p));
    if (translate && !bodiless) {
        p->tb = ptc_translate_body_new(p->tr);
    }
    if (end) {
        p->down_ended = true;
        finish_response(p);
    }
    leave(p);
}

static void on_data(void *user, ptc_slice_t data, bool end)
{
    preq_t *p = user;
    enter(p);
    if (end) {
        p->down_ended = true;
    }
    if (p->req == NULL || (p->state != PS_BODY && p->state != PS_PIPE)) {
        reset_stream(p, PTC_WIRE_CANCEL);
        leave(p);
        return;
    }
    int rc = data.len > 0 ? write_down(p, data) : 0;
    if (rc != 0) {
        /* PTC_ESTATE: more bytes than the response's content-length (§5.5 rule 3); else the
         * client is gone. Either way the response cannot complete. */
        abort_client(p, rc == PTC_ESTATE ? PTC_WIRE_PROTOCOL_ERROR : PTC_WIRE_CANCEL);
        leave(p);
        return;
    }
    if (end) {
        finish_response(p);
        leave(p);
        return;
    }
    /* The bytes sit in the client connection's queue: the stream's credit goes back only
     * while that queue is below its high-water mark, so a slow client holds back its own
     * stream and nothing else (the tunnel's credit was returned on arrival). */
    p->credit_owed += data.len;
    if (!ptc_httpd_is_full(p->req)) {
        give_credit(p);
    }
    leave(p);
}

static void on_stream_writable(void *user)
{
    preq_t *p = user;
    enter(p);
    flush_up(p);
    leave(p);
}

/* ---- failures ---- */

/* May the request go to another tunnel? Only if the backend cannot have seen it, or the
 * method is idempotent, and no body byte was consumed (it could not be replayed). */
static bool can_retry(const preq_t *p, uint32_t code, bool refused)
{
    if (p->retried || p->body_seen || p->req == NULL || p->state != PS_WAITING) {
        return false;
    }
    if (refused) {
        /* REFUSED_STREAM or above a GOAWAY's last stream id: never processed (§8 note 2). */
        return true;
    }
    /* The tunnel was lost (or the connector failed on its own) before any response: the
     * request may have reached the backend, which is harmless only for idempotent methods. */
    bool backend_code = code >= PTC_WIRE_BACKEND_REFUSED && code <= PTC_WIRE_BACKEND_RESET;
    return p->idempotent && !backend_code && code != PTC_WIRE_HEADER_ERROR &&
           code != PTC_WIRE_PROTOCOL_ERROR;
}

static void handle_reset(preq_t *p, uint32_t code, bool refused)
{
    switch (p->state) {
    case PS_WAITING: {
        if (p->req == NULL) {
            set_state(p, PS_DONE);
            return;
        }
        if (can_retry(p, code, refused)) {
            PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_WARN, "http_request_retried",
                    PTC_LOG_STR("app", p->app->name), PTC_LOG_STR("tunnel", p->tunnel_id),
                    PTC_LOG_STR("code", ptc_wire_error_name(code)),
                    PTC_LOG_BOOL("refused", refused));
            p->retried = true;
            ptc_buf_reset(&p->up_pending);
            p->up_pending_end = false;
            resume_client(p);
            char failed[PTC_REGISTRY_ID_MAX + 1];
            snprintf(failed, sizeof(failed), "%s", p->connector);
            start_stream(p, failed);
            return;
        }
        ptc_page_cause_t cause = ptc_page_cause_from_reset(code);
        PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_WARN, "http_upstream_error",
                PTC_LOG_STR("app", p->app->name), PTC_LOG_STR("phase", "before_response"),
                PTC_LOG_STR("cause", ptc_page_cause_name(cause)),
                PTC_LOG_STR("code", ptc_wire_error_name(code)), PTC_LOG_BOOL("refused", refused),
                PTC_LOG_STR("tunnel", p->tunnel_id));
        fail_request(p, cause);
        return;
    }
    case PS_BODY:
    case PS_PIPE:
        if (p->req != NULL) {
            /* §8 note 1: after the RESPONSE, a reset aborts the client's response. */
            PTC_LOG(ptc_httpd_req_log(p->req), PTC_LOG_WARN, "http_upstream_error",
                    PTC_LOG_STR("app", p->app->name), PTC_LOG_STR("phase", "after_response"),
                    PTC_LOG_STR("code", ptc_wire_error_name(code)),
                    PTC_LOG_STR("tunnel", p->tunnel_id));
        }
        abort_client(p, PTC_WIRE_CANCEL);
        return;
    case PS_DONE:
        return;
    }
}

static void on_reset(void *user, uint32_t code, bool refused)
{
    preq_t *p = user;
    /* The stream is gone: no call may name it again. */
    p->tunnel = NULL;
    if (p->depth > 0) {
        p->reset_pending = true;
        p->reset_code = code;
        p->reset_refused = refused;
        return;
    }
    enter(p);
    handle_reset(p, code, refused);
    leave(p);
}

static const ptc_tunnel_stream_handler_t stream_handler = {
    .on_response = on_response,
    .on_data = on_data,
    .on_writable = on_stream_writable,
    .on_reset = on_reset,
};

/* ---- the client's side (httpd handler) ---- */

static void h_on_body(ptc_httpd_req_t *req, ptc_slice_t data, bool end)
{
    preq_t *p = ptc_httpd_req_data(req);
    enter(p);
    on_client_bytes(p, data, end);
    leave(p);
}

static void h_on_writable(ptc_httpd_req_t *req)
{
    preq_t *p = ptc_httpd_req_data(req);
    enter(p);
    give_credit(p);
    leave(p);
}

static void h_on_abort(ptc_httpd_req_t *req, int err)
{
    preq_t *p = ptc_httpd_req_data(req);
    enter(p);
    PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_DEBUG, "http_client_aborted",
            PTC_LOG_STR("state", state_name(p->state)), PTC_LOG_ERR(err));
    p->req = NULL;
    reset_stream(p, PTC_WIRE_CANCEL);
    set_state(p, PS_DONE);
    leave(p);
}

static const ptc_httpd_handler_t httpd_handler = {
    .on_body = h_on_body,
    .on_writable = h_on_writable,
    .on_abort = h_on_abort,
};

/* ---- start ---- */

static bool method_is_idempotent(ptc_slice_t m)
{
    /* RFC 9110 §9.2.2. */
    static const char *const names[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (ptc_slice_eq(m, names[i])) {
            return true;
        }
    }
    return false;
}

void ptc_proxy_stream_start(ptc_edge_t *edge, ptc_httpd_req_t *req, const ptc_app_t *app,
                            const char *id, char *target, ptc_proxy_identity_t *who)
{
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    preq_t *p = ptc_xcalloc(1, sizeof(*p));
    p->edge = edge;
    p->req = req;
    p->app = ptc_app_ref(app);
    p->state = PS_WAITING;
    p->target = target;
    if (who != NULL) {
        p->who = *who;
        memset(who, 0, sizeof(*who));
    }
    p->upstream_ms = -1;
    p->t_start = uv_hrtime();
    snprintf(p->id, sizeof(p->id), "%s", id);
    ptc_buf_init(&p->up_pending);
    p->no_body = h->body == PTC_HTTP_BODY_NONE;
    p->idempotent = method_is_idempotent(h->method);
    /* Only a bodiless GET is passed on as an upgrade; any other Upgrade is dropped (it is a
     * hop-by-hop field) and the request is an ordinary one. */
    p->is_upgrade =
        h->upgrade && h->minor_version == 1 && p->no_body && ptc_slice_eq(h->method, "GET");
    ptc_httpd_req_set_handler(req, &httpd_handler, p);
    update_log(p);
    /* The connector bounds the wait for the response head (backend_timeout); the edge gives
     * up a little later on its own. */
    ptc_httpd_req_set_timeout(req, app->backend_timeout_ms + RESPONSE_GRACE_MS);
    enter(p);
    start_stream(p, NULL);
    leave(p);
}
