/* SPDX-License-Identifier: MIT */
/*
 * The public TLS listener(s) of portico-edge. It binds the configured addresses, accepts
 * connections within the limits (max_connections, max_unauthenticated in total and per
 * client address), runs the TLS
 * handshake under handshake_timeout with the certificate chosen by SNI (the default
 * certificate of edge.json plus the custom-domain certificates of the state, rebuilt and
 * swapped live when the state reports a certificate change), and dispatches by ALPN:
 * "portico/1" goes to the tunnel server (edge/tunnel_srv.h), "http/1.1" or no ALPN to the
 * HTTP server (edge/httpd.h).
 *
 * Every accepted connection is a ptc_edge_conn_t: a small common head that the owner of the
 * connection (TLS handshake, HTTP, tunnel) embeds as its first member. The listener's
 * tls_stream callbacks dispatch through the head's ops, keep the edge's connection counts
 * and list, and let the edge drain or abort every connection at shutdown.
 *
 * Depends on libuv, common/ (tls, tls_stream, net, log) and edge/ (state, httpd, tunnel_srv).
 */
#ifndef PTC_EDGE_LISTENER_H
#define PTC_EDGE_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/net.h"
#include "common/tls_stream.h"
#include "edge/edge.h"

/** ALPN protocol id for browsers and registration (and the default without ALPN). */
#define PTC_ALPN_HTTP1 "http/1.1"

/** What a connection owner does with the events of its stream (all required). */
typedef struct ptc_edge_conn_ops {
    /** A short name for logs: "tls", "http", "tunnel". */
    const char *kind;
    /** Plaintext or the end of input (tls_stream's read callback). */
    void (*on_read)(ptc_edge_conn_t *c, int status, ptc_slice_t data);
    /** The write backlog fell to the low-water mark. */
    void (*on_drain)(ptc_edge_conn_t *c);
    /**
     * The stream is closed and freed (the connection is already unlinked and uncounted): the
     * owner releases its object once its own handles are closed too. `c->stream` is NULL.
     */
    void (*on_close)(ptc_edge_conn_t *c);
    /** The edge is draining (SIGTERM): finish what is in flight, take nothing new, close. */
    void (*drain)(ptc_edge_conn_t *c);
    /** The drain deadline passed or the process stops: close now. */
    void (*abort)(ptc_edge_conn_t *c);
} ptc_edge_conn_ops_t;

/**
 * The common head of every public connection, embedded first by its owner. Set up by the
 * listener; the owner reads it and may change `log.action`.
 */
struct ptc_edge_conn {
    const ptc_edge_conn_ops_t *ops;
    ptc_edge_t *edge;
    ptc_tls_stream_t *stream; /* NULL once closed */
    ptc_log_ctx_t log;        /* conn id and peer address */
    char peer[PTC_NET_ADDRSTRLEN];
    char peer_ip[PTC_NET_ADDRSTRLEN]; /* the peer without its port, for per-address limits */
    uint64_t peer_key;                /* peer_ip's key in the listener's per-address counts */
    uint64_t accepted_loop_ms;        /* uv_now() at accept */
    uint64_t accepted_ms;             /* wall clock at accept */
    bool unauthenticated;             /* counted in edge->counters.unauthenticated */
    ptc_edge_conn_t *prev;
    ptc_edge_conn_t *next;
};

/**
 * Builds the TLS server configuration (edge->tls) from the default certificate files and
 * the state's certificates, binds every address of cfg.listen and starts accepting. Logs
 * listener_started per address. Returns 0, or an error with a message in err: the
 * certificate files (PTC_EFORMAT, PTC_ECONFIG, UV_ENOENT...) or a bind error
 * (UV_EADDRINUSE, UV_EACCES...). On error nothing is left open.
 */
PTC_MUST_CHECK int ptc_listener_start(ptc_edge_t *edge, char *err, size_t errlen);

/**
 * Stops accepting (closes the listening sockets; asynchronous, idempotent). Connections
 * already accepted are not touched.
 */
void ptc_listener_stop(ptc_edge_t *edge);

/** Frees the listener once stopped (after the loop ran the close callbacks). */
void ptc_listener_free(ptc_edge_t *edge);

/** The port the i-th listening socket is bound to (0 when there is none). */
uint16_t ptc_listener_port(const ptc_edge_t *edge, size_t i);

/**
 * Rebuilds the certificate set (default certificate, then every state certificate) and
 * installs it: new connections use it, existing ones keep theirs. A state certificate that
 * mbedTLS refuses is skipped and logged (cert_load_failed). Returns 0 or the error of the
 * default certificate (the old set then stays in force).
 */
PTC_MUST_CHECK int ptc_listener_reload_certs(ptc_edge_t *edge);

/**
 * Moves a connection from the TLS-handshake head `from` (freed here) to the owner's head `to`
 * (the first member of the owner's new object) with `ops`: the stream, list links, counters
 * and log context carry over and the stream's callbacks go to `ops` from now on.
 */
void ptc_edge_conn_handover(ptc_edge_conn_t *from, ptc_edge_conn_t *to,
                            const ptc_edge_conn_ops_t *ops);

/** The connection has authenticated (or needs no authentication): it leaves the
 * max_unauthenticated count. Idempotent. */
void ptc_edge_conn_authenticated(ptc_edge_conn_t *c);

/** Calls ops->drain on every open connection (SIGTERM). */
void ptc_edge_conns_drain(ptc_edge_t *edge);

/** Calls ops->abort on every open connection (drain deadline, or stop). */
void ptc_edge_conns_abort(ptc_edge_t *edge);

#endif
