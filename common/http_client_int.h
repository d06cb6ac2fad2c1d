/* SPDX-License-Identifier: MIT */
/*
 * Shared between the two halves of the HTTP/1.1 client, never included outside
 * common/http_client*.c (STYLE §1): http_client.c runs the client and its requests (the
 * exchange: formatting, parsing the response, deadlines, retries, ending), and
 * http_client_conn.c runs the connections (origins and their pools, dialing, TLS, reading,
 * writing, closing, and the raw pipe after a protocol switch). The structures are defined
 * here because both halves use their fields; the rules on who may change what are those of
 * each field's comment.
 */
#ifndef PTC_COMMON_HTTP_CLIENT_INT_H
#define PTC_COMMON_HTTP_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/http_client.h"
#include "common/net.h"
#include "common/tls.h"
#include "common/tls_stream.h"

/* Plain connections read into the client's shared buffer, this big. */
#define READ_BUF_SIZE (64 * 1024)
/* Slices handed to one uv_write. */
#define WRITE_BUFS 16
#define ORIGIN_BUCKETS 64

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

/* ---- connections (http_client_conn.c) ---- */

/** Finds or makes the origin and takes a reference to it (aborts if memory runs out). */
origin_t *ptc_http_client_conn_origin_get(ptc_http_client_t *c, bool https, const char *host,
                                          uint16_t port, const char *sni, ptc_tls_config_t *tls);

/** Drops a reference to the origin; the last one frees it (its pool must be empty). */
void ptc_http_client_conn_origin_unref(origin_t *o);

/** Takes the most recently used idle connection of the origin out of its pool, or NULL. */
conn_t *ptc_http_client_conn_pool_take(origin_t *o);

/**
 * Puts a connection whose exchange completed in its origin's pool (it keeps reading, so that
 * a close by the server is seen), or closes it when the pool is full or the client closing.
 */
void ptc_http_client_conn_pool_put(conn_t *conn);

/** The one place a connection changes state; every transition is checked (STYLE §6). */
void ptc_http_client_conn_set_state(conn_t *conn, conn_state_t to);

/** Arms the connection's timer for `use` in `ms` (T_NONE stops it); nothing once closing. */
void ptc_http_client_conn_timer(conn_t *conn, timer_use_t use, uint64_t ms);

/**
 * Closes the connection (idempotent); it is freed once its handles and dial are done. A
 * request bound to it must have been detached.
 */
void ptc_http_client_conn_close(conn_t *conn);

/** True while the write backlog (queue plus TLS ciphertext) is at or above the high mark. */
bool ptc_http_client_conn_is_full(const conn_t *conn);

/** A write failed within an API call: it is handled from the timer, never from the call. */
void ptc_http_client_conn_defer_write_error(conn_t *conn, int err);

/** Hands queued bytes to the socket or to TLS; while `hold` is set only hold_len bytes. */
void ptc_http_client_conn_flush(conn_t *conn);

/**
 * Sends the concatenation of v[0..cnt) (cnt at most 3): written at once when nothing is
 * queued, the rest queued. A failed connection drops the bytes. Returns 0 or PTC_ENOMEM (the
 * connection is then failed, from its timer).
 */
int ptc_http_client_conn_sendv(conn_t *conn, const ptc_slice_t *v, size_t cnt);

/** ptc_http_client_conn_sendv() of one piece. */
int ptc_http_client_conn_send(conn_t *conn, const void *p, size_t len);

/** Starts reading the socket (or TLS plaintext); a failure ends reading with its error. */
void ptc_http_client_conn_read_start(conn_t *conn);

/** Stops reading (idempotent). */
void ptc_http_client_conn_read_stop(conn_t *conn);

/**
 * Makes a connection to the origin (a reference is taken) and starts its dial; the caller
 * binds a request to *out. Returns 0, or a libuv error and *out is NULL.
 */
int ptc_http_client_conn_dial(ptc_http_client_t *c, origin_t *o, conn_t **out);

/* ---- the client and its requests (http_client.c) ---- */

/**
 * Ends the request with an error (the message is formatted into its detail): its connection
 * is closed and on_error runs from the client's timer. Does nothing if the request has
 * already ended.
 */
void ptc_http_client_req_fail(ptc_http_client_req_t *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** True if a request that failed on `conn` may be sent again (RFC 9112 §9.3.1). */
bool ptc_http_client_req_can_retry(const conn_t *conn, const ptc_http_client_req_t *r);

/** Closes the request's connection and sends the request again on a new one. */
void ptc_http_client_req_retry(ptc_http_client_req_t *r);

/**
 * Feeds response bytes of the bound request to the parser and acts on its events. Returns
 * how many bytes were consumed; the caller keeps the rest when the connection is still open.
 */
size_t ptc_http_client_parse(conn_t *conn, const uint8_t *p, size_t len);

/** Reading ended with `err` while `r` is bound to `conn` and not paused, nothing held. */
void ptc_http_client_req_on_read_end(conn_t *conn, ptc_http_client_req_t *r, int err);

/** Arms the deadline that fits where the exchange on an active connection is. */
void ptc_http_client_arm(conn_t *conn);

/** Delivers held input after a resume, then reads the socket again (the timer's T_KICK). */
void ptc_http_client_req_kick(conn_t *conn);

/** Frees a closing client once nothing of it is left; runs its close callback. */
void ptc_http_client_maybe_free(ptc_http_client_t *c);

#endif
