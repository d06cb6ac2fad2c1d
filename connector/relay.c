/* SPDX-License-Identifier: MIT */
/*
 * The relay (see relay.h): one object per stream between a tunnel stream and a backend
 * request of the common HTTP client (or, after a 101, its raw pipe).
 *
 * A stream object has two owners that let go independently: the tunnel side (it is in the
 * tunnel's list and may send frames until detach()) and the backend side (the client request
 * until its final callback, then the pipe until its on_close). It is freed by maybe_free()
 * once both have let go, so no callback ever finds it gone.
 *
 * Back-pressure both ways (STYLE §6): request body bytes are credited to the edge (stream
 * WINDOW) only once the client's queue is below its high-water mark, so a slow backend
 * stops the edge, not the tunnel; response bytes the windows do not admit wait in `out`
 * (one read's worth at most) while the backend's reads are paused, until the tunnel reports
 * credit or a drained write backlog.
 */
#include "connector/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/http_client.h"
#include "common/tls.h"
#include "connector/upstream.h"
#include "proto/proto.h"

struct ptc_relay {
    uv_loop_t *loop;
    ptc_log_ctx_t log;
    uint64_t backend_timeout_ms;
    ptc_tls_config_t *backend_tls; /* a reference, or NULL */
    ptc_http_client_t *client;
    size_t streams;
    bool closing;
    ptc_relay_close_cb close_cb;
    void *close_data;
};

struct ptc_relay_stream {
    ptc_relay_t *r;
    ptc_tunnel_t *t; /* NULL once detached */
    ptc_relay_stream_t *prev;
    ptc_relay_stream_t *next;
    uint32_t id;
    ptc_log_ctx_t log;
    ptc_http_client_req_t *req;   /* until its final callback */
    ptc_http_client_pipe_t *pipe; /* after a 101, until its on_close */
    ptc_buf_t out;                /* response bytes waiting for flow-control credit */
    size_t credit_owed;           /* request bytes handed on, not yet credited */
    bool edge_ended;              /* the edge's half ended */
    bool responded;
    bool backend_done; /* the response (or the pipe's read side) is complete */
    bool sent_end;     /* our END_STREAM was sent */
    bool paused;       /* the backend's reads are paused */
    int status;
    const char *result; /* how the stream ended, for the log line */
    int err;
    char detail[256]; /* the backend failure, in words */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t start_ms;
    char method[PTC_HBLOCK_METHOD_MAX + 1];
    char host[PTC_HBLOCK_HOST_MAX + 1];
    char path[256];
};

static void flush_out(ptc_relay_stream_t *s);

/* ---- lifetime ---- */

static void copy_str(char *dst, size_t cap, ptc_proto_str_t s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n > 0) {
        memcpy(dst, s.ptr, n);
    }
    dst[n] = '\0';
}

static void relay_maybe_free(ptc_relay_t *r);

static void maybe_free(ptc_relay_stream_t *s)
{
    if (s->t != NULL || s->req != NULL || s->pipe != NULL) {
        return;
    }
    ptc_relay_t *r = s->r;
    /* A backend that failed is worth a warning; the other ends are ordinary. The line
     * carries the edge's request id (the context's `req`); `result` says how it ended. */
    ptc_log_level_t level = s->detail[0] != '\0' ? PTC_LOG_WARN : PTC_LOG_INFO;
    if (ptc_log_enabled(&s->log, level)) {
        ptc_log_field_t f[12];
        size_t n = 0;
        f[n++] = PTC_LOG_STR("method", s->method);
        f[n++] = PTC_LOG_STR("host", s->host);
        f[n++] = PTC_LOG_PEER("path", s->path, strlen(s->path));
        f[n++] = PTC_LOG_INT("status", s->status);
        f[n++] = PTC_LOG_STR("result", s->result != NULL ? s->result : "ok");
        f[n++] = PTC_LOG_UINT("bytes_in", s->bytes_in);
        f[n++] = PTC_LOG_UINT("bytes_out", s->bytes_out);
        f[n++] = PTC_LOG_UINT("dur_ms", uv_now(r->loop) - s->start_ms);
        if (s->detail[0] != '\0') {
            f[n++] = PTC_LOG_STR("detail", s->detail);
        }
        if (s->err != 0) {
            f[n++] = PTC_LOG_ERR(s->err);
        }
        f[n++] = PTC_LOG_END;
        ptc_log_write(&s->log, level, "backend_request_done", f);
    }
    ptc_buf_dispose(&s->out);
    free(s);
    r->streams--;
    relay_maybe_free(r);
}

/* The tunnel side lets go: out of the list, no more frames. */
static void detach(ptc_relay_stream_t *s)
{
    ptc_tunnel_t *t = s->t;
    if (t == NULL) {
        return;
    }
    ptc_relay_stream_t **head = ptc_tunnel_relay_streams(t);
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        *head = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    s->prev = NULL;
    s->next = NULL;
    s->t = NULL;
    /* The mux may have forgotten the stream already (reset, both halves ended). */
    int rc = ptc_tunnel_set_stream(t, s->id, NULL);
    (void)rc;
    ptc_tunnel_stream_done(t);
}

/* The backend side lets go: cancel the request (its on_error follows) or close the pipe. */
static void abandon_backend(ptc_relay_stream_t *s)
{
    if (s->req != NULL) {
        ptc_http_client_req_cancel(s->req);
    }
    if (s->pipe != NULL) {
        ptc_http_client_pipe_close(s->pipe);
    }
}

/* Ends the stream with RESET(code) (when still attached) and drops the backend work. */
static void reset_stream(ptc_relay_stream_t *s, uint32_t code, const char *result, int err)
{
    if (s->result == NULL) {
        s->result = result;
        s->err = err;
    }
    if (s->t != NULL) {
        ptc_tunnel_reset(s->t, s->id, code);
    }
    detach(s);
    abandon_backend(s);
    maybe_free(s);
}

/* Our half is complete: END_STREAM (once), and RESET(NO_ERROR) to stop a request body the
 * backend no longer wants (§4.4). */
static void end_response(ptc_relay_stream_t *s)
{
    if (s->t != NULL && !s->sent_end) {
        ssize_t n = ptc_tunnel_send_data(s->t, s->id, NULL, 0, true);
        (void)n;
        s->sent_end = true;
    }
    if (s->t != NULL && !s->edge_ended) {
        ptc_tunnel_reset(s->t, s->id, PTC_WIRE_NO_ERROR);
    }
    detach(s);
    abandon_backend(s);
    maybe_free(s);
}

/* ---- request body (edge -> backend) ---- */

static void credit(ptc_relay_stream_t *s)
{
    if (s->t != NULL && s->credit_owed > 0) {
        ptc_tunnel_consumed(s->t, s->id, s->credit_owed);
    }
    s->credit_owed = 0;
}

static bool backend_full(const ptc_relay_stream_t *s)
{
    if (s->req != NULL) {
        return ptc_http_client_req_is_full(s->req);
    }
    if (s->pipe != NULL) {
        return ptc_http_client_pipe_is_full(s->pipe);
    }
    return false;
}

void ptc_relay_on_data(ptc_relay_stream_t *s, const uint8_t *p, size_t len, bool end)
{
    s->bytes_in += len;
    if (end) {
        s->edge_ended = true;
    }
    int rc = 0;
    if (len > 0) {
        if (s->pipe != NULL) {
            rc = ptc_http_client_pipe_write(s->pipe, p, len);
        } else if (s->req != NULL) {
            rc = ptc_http_client_req_write(s->req, p, len);
        }
        if (rc == PTC_ECLOSED || (s->req == NULL && s->pipe == NULL)) {
            /* The backend is done with the request: the bytes go nowhere. */
            rc = 0;
        }
        if (rc == PTC_ELIMIT) {
            /* §5.5 rule 3: more body than the content-length said. */
            reset_stream(s, PTC_WIRE_PROTOCOL_ERROR, "body longer than content-length", rc);
            return;
        }
        if (rc != 0) {
            reset_stream(s, PTC_WIRE_INTERNAL_ERROR, "request body not accepted", rc);
            return;
        }
        s->credit_owed += len;
        if (!backend_full(s)) {
            credit(s);
        }
    }
    if (!end) {
        return;
    }
    if (s->pipe != NULL) {
        /* The client ended its side of the upgraded connection. */
        ptc_http_client_pipe_shutdown(s->pipe);
    } else if (s->req != NULL) {
        rc = ptc_http_client_req_end(s->req);
        if (rc == PTC_ESTATE) {
            /* No streamed body (nothing to end), or bytes missing from a declared length. */
            rc = 0;
        }
        if (rc != 0 && rc != PTC_ECLOSED) {
            reset_stream(s, PTC_WIRE_INTERNAL_ERROR, "request body not ended", rc);
        }
    }
}

static void on_req_drain(ptc_http_client_req_t *r)
{
    credit(ptc_http_client_req_data(r));
}

/* ---- response (backend -> edge) ---- */

static void pause_backend(ptc_relay_stream_t *s)
{
    if (s->paused) {
        return;
    }
    s->paused = true;
    if (s->req != NULL) {
        ptc_http_client_req_pause(s->req);
    } else if (s->pipe != NULL) {
        ptc_http_client_pipe_read_stop(s->pipe);
    }
}

static void resume_backend(ptc_relay_stream_t *s)
{
    if (!s->paused) {
        return;
    }
    s->paused = false;
    if (s->req != NULL) {
        ptc_http_client_req_resume(s->req);
    } else if (s->pipe != NULL) {
        ptc_http_client_pipe_read_start(s->pipe);
    }
}

/* Sends response bytes as far as the windows allow; the rest waits in `out`. */
static void send_body(ptc_relay_stream_t *s, const uint8_t *p, size_t len)
{
    s->bytes_out += len;
    if (s->t == NULL) {
        return;
    }
    size_t sent = 0;
    if (s->out.len == 0 && !ptc_tunnel_is_full(s->t)) {
        ssize_t n = ptc_tunnel_send_data(s->t, s->id, p, len, false);
        if (n < 0) {
            reset_stream(s, PTC_WIRE_INTERNAL_ERROR, "cannot send the response", (int)n);
            return;
        }
        sent = (size_t)n;
    }
    if (sent < len) {
        ptc_buf_append(&s->out, p + sent, len - sent);
    }
    if (s->out.len > 0 || ptc_tunnel_is_full(s->t)) {
        pause_backend(s);
    }
}

static void flush_out(ptc_relay_stream_t *s)
{
    if (s->t == NULL) {
        return;
    }
    while (s->out.len > 0 && !ptc_tunnel_is_full(s->t)) {
        ssize_t n = ptc_tunnel_send_data(s->t, s->id, ptc_buf_data(&s->out), s->out.len, false);
        if (n < 0) {
            reset_stream(s, PTC_WIRE_INTERNAL_ERROR, "cannot send the response", (int)n);
            return;
        }
        if (n == 0) {
            return;
        }
        ptc_buf_consume(&s->out, (size_t)n);
    }
    if (s->out.len > 0) {
        return;
    }
    if (s->backend_done) {
        end_response(s);
        return;
    }
    if (!ptc_tunnel_is_full(s->t)) {
        resume_backend(s);
    }
}

static void respond(ptc_relay_stream_t *s, const ptc_http_head_t *head, bool keep_upgrade, bool end)
{
    ptc_proto_field_t *fields =
        calloc(head->header_cnt > 0 ? head->header_cnt : 1, sizeof(ptc_proto_field_t));
    if (fields == NULL) {
        reset_stream(s, PTC_WIRE_INTERNAL_ERROR, "out of memory", PTC_ENOMEM);
        return;
    }
    ptc_response_head_t rh = {
        .status = (uint16_t)head->status,
        .headers = fields,
        .header_cnt = ptc_upstream_response_fields(head, keep_upgrade, fields),
    };
    int rc = ptc_tunnel_respond(s->t, s->id, &rh, end);
    free(fields);
    if (rc != 0) {
        /* A head the tunnel cannot carry (too large, a field it refuses). */
        reset_stream(s, PTC_WIRE_BACKEND_RESET, "response head not sendable", PTC_EPROTO);
        return;
    }
    s->responded = true;
    s->sent_end = end;
}

static void on_req_head(ptc_http_client_req_t *r, const ptc_http_head_t *head)
{
    ptc_relay_stream_t *s = ptc_http_client_req_data(r);
    s->status = head->status;
    if (s->t == NULL) {
        return;
    }
    /* A response without a body (HEAD, 204, 304, Content-Length: 0) ends at once. */
    respond(s, head, false, head->body == PTC_HTTP_BODY_NONE);
}

static void on_req_body(ptc_http_client_req_t *r, ptc_slice_t data)
{
    send_body(ptc_http_client_req_data(r), data.ptr, data.len);
}

static void on_req_done(ptc_http_client_req_t *r)
{
    ptc_relay_stream_t *s = ptc_http_client_req_data(r);
    s->req = NULL;
    s->backend_done = true;
    s->paused = false;
    if (s->t != NULL && s->out.len == 0) {
        end_response(s);
        return;
    }
    maybe_free(s);
}

static void on_req_error(ptc_http_client_req_t *r, int err)
{
    ptc_relay_stream_t *s = ptc_http_client_req_data(r);
    ptc_http_client_phase_t phase = ptc_http_client_req_phase(r);
    s->req = NULL;
    if (err == UV_ECANCELED || s->t == NULL) {
        maybe_free(s);
        return;
    }
    snprintf(s->detail, sizeof(s->detail), "%s", ptc_http_client_req_error_detail(r));
    /* §8: a backend code before the RESPONSE (the edge shows 502/504); after it the client's
     * response can only be aborted. */
    uint32_t code = s->responded ? PTC_WIRE_BACKEND_RESET : ptc_upstream_error_code(err, phase);
    reset_stream(s, code, ptc_wire_error_name(code), err);
}

/* ---- upgraded connections (after a 101) ---- */

static void on_pipe_read(ptc_http_client_pipe_t *p, int status, ptc_slice_t data)
{
    ptc_relay_stream_t *s = ptc_http_client_pipe_data(p);
    if (status == 0) {
        send_body(s, data.ptr, data.len);
        return;
    }
    /* The backend closed (or failed): our half ends once `out` is sent. */
    s->backend_done = true;
    s->paused = false;
    flush_out(s);
}

static void on_pipe_drain(ptc_http_client_pipe_t *p)
{
    credit(ptc_http_client_pipe_data(p));
}

static void on_pipe_close(ptc_http_client_pipe_t *p)
{
    ptc_relay_stream_t *s = ptc_http_client_pipe_data(p);
    s->pipe = NULL;
    if (s->t != NULL) {
        s->backend_done = true;
        if (s->out.len == 0) {
            end_response(s);
            return;
        }
        flush_out(s);
        return;
    }
    maybe_free(s);
}

static void on_req_upgrade(ptc_http_client_req_t *r, const ptc_http_head_t *head,
                           ptc_http_client_pipe_t *pipe)
{
    ptc_relay_stream_t *s = ptc_http_client_req_data(r);
    s->req = NULL;
    s->status = head->status;
    s->pipe = pipe;
    ptc_http_client_pipe_opts_t po = {
        .on_read = on_pipe_read,
        .on_drain = on_pipe_drain,
        .on_close = on_pipe_close,
        .data = s,
    };
    if (ptc_http_client_pipe_start(pipe, &po) != 0) {
        /* Unusable: close it without its callbacks being ours. */
        ptc_http_client_pipe_close(pipe);
        s->pipe = NULL;
        reset_stream(s, PTC_WIRE_BACKEND_RESET, "upgrade failed", PTC_ESTATE);
        return;
    }
    if (s->t == NULL) {
        ptc_http_client_pipe_close(pipe);
        return;
    }
    /* §5.5 rule 4: both halves now carry the upgraded connection's bytes. */
    respond(s, head, true, false);
}

/* ---- the tunnel's calls ---- */

/* The edge names every request with an x-request-id field (docs/protocol.md §5.5 rule 5):
 * the stream's log lines carry it as `req`, so they match the edge's access log. */
static void set_request_id(ptc_relay_stream_t *s, const ptc_request_head_t *head)
{
    static const char name[] = "x-request-id";
    for (size_t i = 0; i < head->header_cnt; i++) {
        const ptc_proto_field_t *f = &head->headers[i];
        if (f->name.len != sizeof(name) - 1) {
            continue;
        }
        ptc_slice_t n = {f->name.ptr, f->name.len};
        if (ptc_slice_case_eq(n, name)) {
            char id[PTC_LOG_REQ_CAP];
            copy_str(id, sizeof(id), f->value);
            ptc_log_ctx_set_req(&s->log, id);
            return;
        }
    }
}

uint32_t ptc_relay_open(ptc_relay_t *r, ptc_tunnel_t *t, uint32_t id,
                        const ptc_request_head_t *head, bool end_stream)
{
    ptc_upstream_req_t u;
    uint32_t code = ptc_upstream_prepare(head, end_stream, &u);
    if (code != 0) {
        return code;
    }
    ptc_relay_stream_t *s = ptc_xcalloc(1, sizeof(*s));
    s->r = r;
    s->id = id;
    s->start_ms = uv_now(r->loop);
    ptc_buf_init(&s->out);
    ptc_log_ctx_derive(&s->log, ptc_tunnel_log(t));
    s->log.stream = id;
    set_request_id(s, head);
    copy_str(s->method, sizeof(s->method), head->method);
    copy_str(s->host, sizeof(s->host), head->host);
    copy_str(s->path, sizeof(s->path), head->target);
    s->path[strcspn(s->path, "?")] = '\0';
    char host[PTC_HBLOCK_HOST_MAX + 1];
    char sni[PTC_HBLOCK_SNI_MAX + 1];
    copy_str(host, sizeof(host), head->host);
    copy_str(sni, sizeof(sni), head->sni);
    ptc_http_client_req_opts_t o = {
        .https = head->scheme == PTC_PROTO_SCHEME_HTTPS,
        .host = host,
        .port = head->port,
        /* With VALIDATE_TLS the name checked is the SNI when given, else the host (§5.2). */
        .server_name = sni[0] != '\0' ? sni : NULL,
        .no_verify = !head->validate_tls,
        .method = {head->method.ptr, head->method.len},
        .target = {head->target.ptr, head->target.len},
        .headers = u.headers,
        .header_cnt = u.header_cnt,
        .body_mode = u.body_mode,
        .content_length = u.content_length,
        .head_timeout_ms = head->timeout_ms != 0 ? head->timeout_ms : r->backend_timeout_ms,
        .on_head = on_req_head,
        .on_body = on_req_body,
        .on_done = on_req_done,
        .on_error = on_req_error,
        .on_drain = on_req_drain,
        .on_upgrade = head->upgrade ? on_req_upgrade : NULL,
        .data = s,
    };
    int rc = ptc_http_client_request(r->client, &o, &s->req);
    ptc_upstream_req_dispose(&u);
    if (rc != 0) {
        PTC_LOG(&s->log, PTC_LOG_WARN, "backend_request_refused", PTC_LOG_STR("host", s->host),
                PTC_LOG_STR("method", s->method), PTC_LOG_STR("path", s->path), PTC_LOG_ERR(rc));
        ptc_buf_dispose(&s->out);
        free(s);
        return rc == PTC_EHTTP || rc == UV_EINVAL ? PTC_WIRE_HEADER_ERROR : PTC_WIRE_INTERNAL_ERROR;
    }
    r->streams++;
    s->t = t;
    ptc_relay_stream_t **head_ptr = ptc_tunnel_relay_streams(t);
    s->next = *head_ptr;
    if (*head_ptr != NULL) {
        (*head_ptr)->prev = s;
    }
    *head_ptr = s;
    if (ptc_tunnel_set_stream(t, id, s) != 0) {
        detach(s);
        abandon_backend(s);
        return PTC_WIRE_INTERNAL_ERROR;
    }
    s->edge_ended = end_stream;
    return 0;
}

void ptc_relay_on_reset(ptc_relay_stream_t *s, uint32_t code)
{
    /* The stream is gone from the mux: no frame is sent for it. */
    if (s->result == NULL) {
        s->result = code == PTC_WIRE_CANCEL ? "cancelled by the edge" : "reset by the edge";
    }
    detach(s);
    abandon_backend(s);
    maybe_free(s);
}

void ptc_relay_on_writable(ptc_relay_stream_t *s)
{
    flush_out(s);
}

void ptc_relay_tunnel_writable(ptc_tunnel_t *t)
{
    ptc_relay_stream_t *s = *ptc_tunnel_relay_streams(t);
    while (s != NULL) {
        ptc_relay_stream_t *next = s->next;
        flush_out(s);
        s = next;
    }
}

void ptc_relay_tunnel_cancel(ptc_tunnel_t *t, uint32_t code)
{
    ptc_relay_stream_t *s = *ptc_tunnel_relay_streams(t);
    while (s != NULL) {
        ptc_relay_stream_t *next = s->next;
        reset_stream(s, code, "cancelled at the drain deadline", 0);
        s = next;
    }
}

void ptc_relay_tunnel_closed(ptc_tunnel_t *t)
{
    ptc_relay_stream_t *s = *ptc_tunnel_relay_streams(t);
    while (s != NULL) {
        ptc_relay_stream_t *next = s->next;
        if (s->result == NULL) {
            s->result = "tunnel closed";
        }
        detach(s);
        abandon_backend(s);
        maybe_free(s);
        s = next;
    }
}

/* ---- the relay ---- */

/* Idle keep-alive connections kept per backend origin: as many as one tunnel's streams can
 * keep busy at once (the connector announces max_streams = PTC_DEFAULT_MAX_STREAMS). */
#define RELAY_MAX_IDLE_PER_BACKEND PTC_DEFAULT_MAX_STREAMS

int ptc_relay_new(const ptc_relay_opts_t *opts, ptc_relay_t **out)
{
    *out = NULL;
    ptc_relay_t *r = ptc_xcalloc(1, sizeof(*r));
    r->loop = opts->loop;
    ptc_log_ctx_init(&r->log, opts->logger);
    r->backend_timeout_ms = opts->backend_timeout_ms != 0 ? opts->backend_timeout_ms : 85000;
    r->backend_tls = opts->backend_tls != NULL ? ptc_tls_config_ref(opts->backend_tls) : NULL;
    /* Response heads may be as large as a RESPONSE block may carry. Requests that validate
     * the backend use the shared configuration (backend_ca_file); the others get the
     * client's own one that skips validation. The pool keeps as many idle connections per
     * backend as a busy tunnel keeps it busy with: with fewer, every burst of concurrent
     * requests would close the surplus afterwards and connect again at the next one (with a
     * cap of 256, 10,000 concurrent streams spent a fifth of the connector's CPU in
     * connect()). Idle connections still close after the pool's idle time (30 s). */
    ptc_http_client_opts_t co = {
        .tls = r->backend_tls,
        .max_idle_per_origin = RELAY_MAX_IDLE_PER_BACKEND,
        .limits = {.max_head_bytes = 65536, .max_headers = 256},
        .head_timeout_ms = r->backend_timeout_ms,
    };
    int rc = ptc_http_client_new(r->loop, &co, &r->client);
    if (rc != 0) {
        ptc_tls_config_unref(r->backend_tls);
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

ptc_tls_config_t *ptc_relay_backend_tls(const ptc_relay_t *r)
{
    return r->backend_tls;
}

static void relay_free(ptc_relay_t *r)
{
    ptc_relay_close_cb cb = r->close_cb;
    void *data = r->close_data;
    ptc_tls_config_unref(r->backend_tls);
    free(r);
    if (cb != NULL) {
        cb(data);
    }
}

static void relay_maybe_free(ptc_relay_t *r)
{
    if (r->closing && r->client == NULL && r->streams == 0) {
        relay_free(r);
    }
}

static void on_client_closed(void *data)
{
    ptc_relay_t *r = data;
    r->client = NULL;
    if (r->streams == 0) {
        relay_free(r);
    }
}

void ptc_relay_close(ptc_relay_t *r, ptc_relay_close_cb cb, void *data)
{
    r->closing = true;
    r->close_cb = cb;
    r->close_data = data;
    ptc_http_client_close(r->client, on_client_closed, r);
}
