/* SPDX-License-Identifier: MIT */
/*
 * An asynchronous HTTP/1.1 client on libuv, common/tls(_stream) and common/http. The edge uses
 * it for OIDC (discovery, JWKS, token endpoint) and the connector for every request to a
 * backend, so it is built for throughput: a keep-alive pool per origin, streamed request and
 * response bodies with back-pressure both ways, TCP_NODELAY on every connection, and no heap
 * allocation per request beyond the request object itself on a pooled plain connection.
 *
 * One client per event loop. A request names its origin (http or https, host, port, the TLS
 * name to verify and the TLS configuration) and is served on an idle pooled connection to that
 * origin when there is one, else on a new connection. A pooled connection the server closed
 * is dropped as soon as its end is read; a request that fails on a reused connection before
 * any byte of its response arrived is sent again once on a new connection when it is
 * idempotent and its body can be replayed (RFC 9110 §9.2.2, RFC 9112 §9.3.1).
 *
 * Callbacks (STYLE §3): ptc_http_client_request() returning an error runs no callback. When it
 * returns 0, exactly one final callback runs, never from within the call: on_done (the
 * response is complete), on_error, or on_upgrade (the server switched protocols). on_head and
 * on_body run before on_done. Errors are always reported on a later loop iteration, so every
 * function of this API may be called from any callback.
 *
 * Connections are reused only after a complete exchange whose response allows it (HTTP/1.1
 * without "Connection: close", or HTTP/1.0 with keep-alive; not after a body delimited by the
 * end of the connection), whose request body was sent in full, and that was not cancelled.
 *
 * Idle pooled connections do not keep the loop alive (their handles are unreferenced), but
 * they stay open until the pool's idle time passes or the client is closed: close the client
 * before uv_loop_close(). The process must ignore SIGPIPE (the daemons and the test harness
 * do). Depends on libuv, common/tls, common/tls_stream, common/http, common/net, common/buf
 * and common/err.
 */
#ifndef PTC_COMMON_HTTP_CLIENT_H
#define PTC_COMMON_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/http.h"
#include "common/tls.h"

typedef struct ptc_http_client ptc_http_client_t;
typedef struct ptc_http_client_req ptc_http_client_req_t;
/** A raw two-way byte stream left by a protocol switch (101, or a 2xx to CONNECT). */
typedef struct ptc_http_client_pipe ptc_http_client_pipe_t;

/* ---- client ---- */

/** Default timeouts and limits (used for zero fields of ptc_http_client_opts_t). */
#define PTC_HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define PTC_HTTP_CLIENT_DEFAULT_TLS_TIMEOUT_MS 10000
#define PTC_HTTP_CLIENT_DEFAULT_HEAD_TIMEOUT_MS 60000
#define PTC_HTTP_CLIENT_DEFAULT_IDLE_TIMEOUT_MS 60000
#define PTC_HTTP_CLIENT_DEFAULT_POOL_IDLE_MS 30000
#define PTC_HTTP_CLIENT_DEFAULT_EXPECT_TIMEOUT_MS 1000
#define PTC_HTTP_CLIENT_DEFAULT_MAX_IDLE_PER_ORIGIN 16
#define PTC_HTTP_CLIENT_DEFAULT_MAX_REQUEST_HEAD 65536

/** Client settings, read by ptc_http_client_new() (copied). Zero fields take the defaults. */
typedef struct ptc_http_client_opts {
    /* The TLS client configuration for https requests that validate the server (a reference
     * is taken). NULL: one is made on the first such request from ca_file, or from the
     * system bundle (PTC_TLS_SYSTEM_CA_FILE) when ca_file is NULL too. */
    ptc_tls_config_t *tls;
    const char *ca_file;
    /* Response parsing limits (max_head_bytes, max_headers; see common/http.h). */
    ptc_http_limits_t limits;
    /* Resolving the name and connecting (the whole dial). */
    uint64_t connect_timeout_ms;
    /* The TLS handshake. */
    uint64_t tls_timeout_ms;
    /* From the moment the request is fully written until the response head has arrived
     * (time to first byte); a request may override it. */
    uint64_t head_timeout_ms;
    /* The longest pause between two reads of the response body, or between two writes of
     * the request body (also the caller's own pace when it streams the body). */
    uint64_t idle_timeout_ms;
    /* How long a connection stays in the pool unused before it is closed. */
    uint64_t pool_idle_ms;
    /* How long a request with Expect: 100-continue waits for the 100 before sending its
     * body anyway (RFC 9110 §10.1.1). */
    uint64_t expect_timeout_ms;
    /* Idle connections kept per origin; more are closed when they are released. */
    size_t max_idle_per_origin;
    /* Longest request head the client formats (PTC_ELIMIT beyond). */
    size_t max_request_head;
} ptc_http_client_opts_t;

/**
 * Makes a client for `loop`. `opts` may be NULL (all defaults). On success *out owns the
 * client: close it with ptc_http_client_close(). Errors: UV_EINVAL, libuv codes.
 */
PTC_MUST_CHECK int ptc_http_client_new(uv_loop_t *loop, const ptc_http_client_opts_t *opts,
                                       ptc_http_client_t **out);

/** Runs once the client's last handle is closed, just before its memory is freed. */
typedef void (*ptc_http_client_close_cb)(void *data);

/**
 * Closes the client (idempotent; a second call changes nothing). Every request in flight
 * ends with on_error(PTC_ECLOSED) on a later loop iteration, pooled connections are closed,
 * and open pipes are closed (their on_close runs). `cb` (may be NULL) runs with `data` once
 * everything is closed and the client is freed. New requests fail with PTC_ECLOSED.
 */
void ptc_http_client_close(ptc_http_client_t *c, ptc_http_client_close_cb cb, void *data);

/** Counters, for metrics and tests. */
typedef struct ptc_http_client_stats {
    uint64_t connects; /* connections dialed (successful or not) */
    uint64_t reuses;   /* requests sent on a pooled connection */
    uint64_t retries;  /* requests sent again after a reused connection failed */
    size_t conns;      /* connections open now (dialing, active, idle, pipes) */
    size_t idle;       /* connections in the pool now */
    size_t requests;   /* requests whose final callback has not run yet */
} ptc_http_client_stats_t;

/** Fills *out with the client's counters. */
void ptc_http_client_get_stats(const ptc_http_client_t *c, ptc_http_client_stats_t *out);

/* ---- requests ---- */

/** How the request body is framed. */
typedef enum ptc_http_client_body {
    /** No body and no framing header (GET, HEAD, DELETE...), unless `body` is set. */
    PTC_HTTP_CLIENT_BODY_NONE = 0,
    /** Content-Length: content_length; the caller writes exactly that many bytes. */
    PTC_HTTP_CLIENT_BODY_LENGTH,
    /** Transfer-Encoding: chunked; the caller writes pieces, then ends the body. */
    PTC_HTTP_CLIENT_BODY_CHUNKED,
} ptc_http_client_body_t;

/** Where a request was when it ended (ptc_http_client_req_phase()). */
typedef enum ptc_http_client_phase {
    /** Resolving the name and connecting. */
    PTC_HTTP_CLIENT_PHASE_CONNECT = 1,
    /** The TLS handshake (certificate validation included). */
    PTC_HTTP_CLIENT_PHASE_TLS,
    /** Writing the request (head, body, or waiting for 100 Continue). */
    PTC_HTTP_CLIENT_PHASE_SEND,
    /** Waiting for or reading the response head. */
    PTC_HTTP_CLIENT_PHASE_HEAD,
    /** Reading the response body. */
    PTC_HTTP_CLIENT_PHASE_BODY,
    /** The response is complete (or the protocol was switched). */
    PTC_HTTP_CLIENT_PHASE_DONE,
} ptc_http_client_phase_t;

/**
 * The final response head arrived (1xx interim responses are not reported). `head` is
 * borrowed and stays valid until the request's final callback returns; 101 and other
 * protocol switches go to on_upgrade instead.
 */
typedef void (*ptc_http_client_head_cb)(ptc_http_client_req_t *r, const ptc_http_head_t *head);
/** A piece of the response body, de-chunked; `data` is borrowed until the callback returns. */
typedef void (*ptc_http_client_body_cb)(ptc_http_client_req_t *r, ptc_slice_t data);
/** Final: the response is complete. The request handle is invalid once this returns. */
typedef void (*ptc_http_client_done_cb)(ptc_http_client_req_t *r);
/**
 * Final: the request failed. `err` is one of: PTC_EDNS (the name did not resolve), a libuv
 * connect error (UV_ECONNREFUSED, UV_ENETUNREACH, UV_EHOSTUNREACH...), PTC_ECERT,
 * PTC_ECERTNAME, PTC_EPIN, PTC_ETLS (TLS), PTC_ETIMEOUT (see the phase), PTC_EHTTP or
 * PTC_ELIMIT (a malformed or oversized response), UV_EOF or UV_ECONNRESET (the server closed
 * before the response was complete), other write errors (UV_EPIPE...), UV_ECANCELED
 * (ptc_http_client_req_cancel), PTC_ECLOSED (the client was closed), PTC_ENOMEM.
 * ptc_http_client_req_error_detail() and ptc_http_client_req_phase() say more during the
 * callback. The request handle is invalid once this returns.
 */
typedef void (*ptc_http_client_error_cb)(ptc_http_client_req_t *r, int err);
/** The request body backlog fell to the low-water mark after having reached the high one. */
typedef void (*ptc_http_client_drain_cb)(ptc_http_client_req_t *r);
/**
 * Final: the server switched protocols (101 to a request with Upgrade, or 2xx to CONNECT).
 * `head` is borrowed for the callback. `pipe` is the connection, now a raw byte stream that
 * the callee owns: it must start it (ptc_http_client_pipe_start) and eventually close it.
 * Bytes the server sent after the head are its first bytes. Without on_upgrade such a
 * response is an error (PTC_EHTTP).
 */
typedef void (*ptc_http_client_upgrade_cb)(ptc_http_client_req_t *r, const ptc_http_head_t *head,
                                           ptc_http_client_pipe_t *pipe);

/**
 * A request, read by ptc_http_client_request(). Everything is copied before that call
 * returns; the header slices and `body` may be released afterwards.
 */
typedef struct ptc_http_client_req_opts {
    /* The origin: https selects TLS; host is a DNS name or an IP literal (IPv6 without
     * brackets); port must not be 0. */
    bool https;
    const char *host;
    uint16_t port;
    /* TLS: the name sent as SNI and verified in the certificate; NULL means host. */
    const char *server_name;
    /* TLS: skip certificate validation (validate_backend_tls=false). */
    bool no_verify;
    /* TLS: use this configuration (e.g. one with a pin) instead of the client's; it is
     * referenced by the connections made for it. Overrides no_verify. */
    ptc_tls_config_t *tls;

    /* The request line and header fields. Host is added ("host[:port]") when absent.
     * Content-Length and Transfer-Encoding are written by the client from body_mode and must
     * not be among the headers. A Connection: close header keeps the connection out of the
     * pool; an Expect: 100-continue header acts as expect_continue. For an upgrade
     * (WebSocket), pass Connection: Upgrade and Upgrade yourself and set on_upgrade. */
    ptc_slice_t method;
    ptc_slice_t target;
    const ptc_http_header_t *headers;
    size_t header_cnt;

    /* The body: either all of it now (body.ptr != NULL, sent with Content-Length, body_mode
     * NONE), or streamed with ptc_http_client_req_write()/_end() per body_mode. */
    ptc_slice_t body;
    ptc_http_client_body_t body_mode;
    uint64_t content_length;
    /* Send Expect: 100-continue and hold the body back until 100 Continue (or the client's
     * expect timeout); ignored without a body. */
    bool expect_continue;

    /* Overrides the client's head timeout for this request when not 0. */
    uint64_t head_timeout_ms;

    ptc_http_client_head_cb on_head;       /* may be NULL */
    ptc_http_client_body_cb on_body;       /* may be NULL: the body is discarded */
    ptc_http_client_done_cb on_done;       /* required */
    ptc_http_client_error_cb on_error;     /* required */
    ptc_http_client_drain_cb on_drain;     /* may be NULL */
    ptc_http_client_upgrade_cb on_upgrade; /* may be NULL: protocol switches are errors */
    void *data;                            /* ptc_http_client_req_data() */
} ptc_http_client_req_opts_t;

/**
 * Starts a request. On success *out is valid until the final callback returns. Errors (no
 * callback runs): PTC_ECLOSED (the client is closing), UV_EINVAL (missing host, port,
 * method, target or callbacks; a Content-Length or Transfer-Encoding header; an
 * inconsistent body), PTC_EHTTP (a method, header name or value, or target that cannot be
 * sent safely), PTC_ELIMIT (the head is longer than max_request_head), errors making the
 * client's TLS configuration (UV_ENOENT, PTC_EFORMAT...), PTC_ENOMEM, libuv codes.
 */
PTC_MUST_CHECK int ptc_http_client_request(ptc_http_client_t *c,
                                           const ptc_http_client_req_opts_t *opts,
                                           ptc_http_client_req_t **out);

/**
 * Queues a copy of p[0..len) of the request body (framed as a chunk for chunked bodies). It
 * may be called as soon as the request is made, before the connection is up. Returns 0, or
 * an error and nothing is queued: UV_EINVAL (len 0), PTC_ESTATE (no streamed body, or it
 * was ended), PTC_ELIMIT (more than content_length), PTC_ECLOSED (the request already ended
 * and its final callback is pending), PTC_ENOMEM. Check ptc_http_client_req_is_full()
 * afterwards and wait for on_drain when it is. If the connection has failed, bytes are
 * dropped and the final callback reports the failure.
 */
PTC_MUST_CHECK int ptc_http_client_req_write(ptc_http_client_req_t *r, const void *p, size_t len);

/**
 * Ends the request body. Chunked: queues the last chunk; returns 0, or PTC_ESTATE when it was
 * already ended. Known length: the body completes by itself with its last byte, so the call
 * is optional; it returns 0 once every byte was written, PTC_ESTATE while some are missing.
 * Also PTC_ESTATE without a streamed body, PTC_ECLOSED once the request ended, PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_http_client_req_end(ptc_http_client_req_t *r);

/** True while the request body backlog is at or above the high-water mark. */
bool ptc_http_client_req_is_full(const ptc_http_client_req_t *r);

/**
 * Stops delivering the response and reading the socket (back-pressure); no response timeout
 * runs while paused. Idempotent; callable from on_head and on_body.
 */
void ptc_http_client_req_pause(ptc_http_client_req_t *r);

/**
 * Resumes delivery: buffered bytes are delivered on a later loop iteration, never from
 * within this call, then the socket is read again. Idempotent.
 */
void ptc_http_client_req_resume(ptc_http_client_req_t *r);

/**
 * Abandons the request: its connection is closed (never pooled), and on_error(UV_ECANCELED)
 * runs on a later loop iteration. Does nothing once the request has ended (its final
 * callback ran or is pending).
 */
void ptc_http_client_req_cancel(ptc_http_client_req_t *r);

/** The `data` given in the request options. */
void *ptc_http_client_req_data(const ptc_http_client_req_t *r);

/**
 * A short human description of the failure ("connect timed out after 200 ms", "TLS
 * handshake: certificate not trusted ...", "malformed response: duplicate Content-Length"),
 * "" before one. Borrowed; valid during on_error.
 */
const char *ptc_http_client_req_error_detail(const ptc_http_client_req_t *r);

/** The phase the request is in, or was in when it failed. */
ptc_http_client_phase_t ptc_http_client_req_phase(const ptc_http_client_req_t *r);

/** True if the request is being served on a connection that served an earlier one. */
bool ptc_http_client_req_is_reused(const ptc_http_client_req_t *r);

/* ---- pipes (after a protocol switch) ---- */

/**
 * Bytes arrived (status 0, `data` borrowed until the callback returns), or reading ended:
 * status UV_EOF (the server closed its side), PTC_ETLS, a libuv error, or a write error;
 * `data` is then empty and no further read callback runs. The pipe stays open until closed.
 */
typedef void (*ptc_http_client_pipe_read_cb)(ptc_http_client_pipe_t *p, int status,
                                             ptc_slice_t data);
/** The write backlog fell to the low-water mark after having reached the high one. */
typedef void (*ptc_http_client_pipe_drain_cb)(ptc_http_client_pipe_t *p);
/** The pipe is closed (by its owner, by the client's close, or after a shutdown): the last
 * callback, run just before its memory is freed. */
typedef void (*ptc_http_client_pipe_close_cb)(ptc_http_client_pipe_t *p);

/** Settings for ptc_http_client_pipe_start(). on_read is required. */
typedef struct ptc_http_client_pipe_opts {
    ptc_http_client_pipe_read_cb on_read;
    ptc_http_client_pipe_drain_cb on_drain; /* may be NULL */
    ptc_http_client_pipe_close_cb on_close; /* may be NULL */
    void *data;                             /* ptc_http_client_pipe_data() */
} ptc_http_client_pipe_opts_t;

/**
 * Starts delivering the pipe's bytes: those received after the response head first, on a
 * later loop iteration (never from within this call), then what the socket delivers.
 * Returns 0, UV_EINVAL (no on_read), PTC_ESTATE (already started), PTC_ECLOSED.
 */
PTC_MUST_CHECK int ptc_http_client_pipe_start(ptc_http_client_pipe_t *p,
                                              const ptc_http_client_pipe_opts_t *opts);

/**
 * Queues a copy of p[0..len) for the server. Returns 0, UV_EINVAL (len 0), PTC_ECLOSED
 * (closing or shut down), PTC_ENOMEM, or the error of an earlier failed write. Check
 * ptc_http_client_pipe_is_full() afterwards and wait for on_drain when it is.
 */
PTC_MUST_CHECK int ptc_http_client_pipe_write(ptc_http_client_pipe_t *p, const void *data,
                                              size_t len);

/** True while the write backlog is at or above the high-water mark. */
bool ptc_http_client_pipe_is_full(const ptc_http_client_pipe_t *p);

/** Stops reading (back-pressure). Idempotent. */
void ptc_http_client_pipe_read_stop(ptc_http_client_pipe_t *p);

/** Resumes reading after ptc_http_client_pipe_read_stop(); buffered bytes are delivered on a
 * later loop iteration. Idempotent; does nothing before start. */
void ptc_http_client_pipe_read_start(ptc_http_client_pipe_t *p);

/**
 * Graceful close: the queued bytes are sent, the write side is shut down (TLS: close_notify
 * first), then the pipe closes (within 5 s at most) and on_close runs. No read callback runs
 * afterwards. Idempotent.
 */
void ptc_http_client_pipe_shutdown(ptc_http_client_pipe_t *p);

/** Closes now: queued bytes are dropped; on_close runs on a later loop iteration.
 * Idempotent. */
void ptc_http_client_pipe_close(ptc_http_client_pipe_t *p);

/** The `data` given to ptc_http_client_pipe_start() (NULL before). */
void *ptc_http_client_pipe_data(const ptc_http_client_pipe_t *p);

#endif
