/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the two halves of the tunnel client, tunnel_cli.c (one tunnel: dial,
 * TLS, handshake, mux, the relay's stream API) and tunnel_pool.c (the connector: edges,
 * slots and their backoff, the scheduler, drain and the status file). Never included from
 * outside connector/tunnel_*.c. The ptc_tunnel_ prefix here marks functions that are
 * visible to the other half only; the public API stays in tunnel_cli.h.
 */
#ifndef PTC_CONNECTOR_TUNNEL_INT_H
#define PTC_CONNECTOR_TUNNEL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/net.h"
#include "common/tls.h"
#include "common/tls_stream.h"
#include "connector/connector_config.h"
#include "connector/credentials.h"
#include "connector/handshake.h"
#include "connector/probe.h"
#include "connector/proxy_connect.h"
#include "connector/tunnel_cli.h"
#include "proto/mux.h"

#ifndef PTC_VERSION
#define PTC_VERSION "0.0.0"
#endif

typedef enum tstate {
    T_DIALING,   /* resolving and connecting (directly or through the proxy) */
    T_TLS,       /* TLS handshake */
    T_CHALLENGE, /* waiting for the challenge */
    T_WELCOME,   /* auth sent, waiting for the welcome */
    T_UP,        /* running */
    T_DRAINING,  /* GOAWAY sent or received: existing streams finish */
    T_CLOSING,   /* closing; released from the last handle's callback */
} tstate_t;

typedef struct edge edge_t;

typedef struct slot {
    edge_t *edge;
    unsigned index;
    ptc_tunnel_t *tunnel;   /* the current attempt or live tunnel */
    uint64_t retry_at;      /* loop time of the next attempt; 0 when none is scheduled */
    int64_t retry_at_wall;  /* the same, wall clock (status file) */
    int64_t since_wall;     /* last state change, wall clock */
    unsigned failures;      /* consecutive attempts that did not stay up STABLE_MS */
    unsigned auth_failures; /* consecutive AUTH_FAILED refusals */
    uint64_t restart_until; /* loop time until which the edge is presumed restarting */
    bool stopped;           /* no further attempts (edge removed, connector draining) */
    char last_error[320];
} slot_t;

struct edge {
    char addr[PTC_NET_HOST_MAX + 16]; /* "host:port", IPv6 in brackets */
    char host[PTC_NET_HOST_MAX + 1];
    uint16_t port;
    bool removed; /* no longer listed: its tunnels drain, then it is freed */
    slot_t *slots;
    size_t nslots;
};

struct ptc_tunnel {
    ptc_connector_t *c;
    slot_t *slot;
    ptc_log_ctx_t log;
    tstate_t state;
    uv_timer_t timer;
    ptc_net_dial_t *dial;
    ptc_proxy_conn_t *pconn;
    ptc_tls_stream_t *tls;
    ptc_mux_t *mux;
    unsigned pending; /* the timer, the TLS stream, an outstanding dial */
    bool closing;
    bool via_proxy;
    bool read_paused;
    bool write_failed; /* a write failed inside a relay call: close from the timer */
    bool auth_failed;
    bool reregister; /* the edge does not know this connector (any more) */
    uint64_t started_ms;
    uint64_t deadline_ms;
    uint64_t up_ms;
    uint32_t streams_seen; /* for the status refresh */
    ptc_tls_idle_t idle;   /* when the TLS record pages are due for release */
    uint8_t cert_hash[PTC_SHA256_LEN];
    char tunnel_id[PTC_CREDENTIALS_ID_MAX + 1];
    char group[PTC_HANDSHAKE_GROUP_MAX + 1];
    char peer[PTC_NET_ADDRSTRLEN];
    /* Why the tunnel ended: the first recorded reason wins. */
    const char *reason;
    char detail[320];
    int err;
    ptc_relay_stream_t *streams; /* the relay's list */
    ptc_probe_t *probes;         /* backend probes asked for on this tunnel (§4.8.1) */
};

struct ptc_connector {
    uv_loop_t *loop;
    ptc_log_ctx_t log;
    const ptc_connector_config_t *cfg;
    ptc_credentials_t *creds;
    const char *credentials_path;
    ptc_relay_t *relay;
    ptc_connector_done_cb on_done;
    void *data;
    ptc_tls_config_t *tls;
    ptc_mux_limits_t limits;
    bool has_proxy;
    ptc_proxy_t proxy;
    const char *no_proxy;
    char hostname[PTC_HANDSHAKE_HOSTNAME_MAX + 1];
    edge_t **edges;
    size_t edges_cnt;
    uv_timer_t sched;
    uv_timer_t drain_timer;
    uv_timer_t status_timer;
    unsigned open_handles;
    size_t live_tunnels;
    uint64_t next_seq;
    int64_t started_wall;
    uint64_t drain_started_ms;
    bool draining;
    bool drain_expired;
    bool closing;
    int last_status_err;
};

/* ---- tunnel_cli.c ---- */

/** The loop's time in ms (uv_now). */
uint64_t ptc_tunnel_now_ms(const ptc_connector_t *c);

/** The wall clock in ms since the epoch (the status file's times). */
int64_t ptc_tunnel_wall_ms(void);

/** Records why the tunnel ends (reason, error code, printf-style detail); the first wins. */
void ptc_tunnel_set_reason(ptc_tunnel_t *t, const char *reason, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Moves what the mux queued into the TLS stream. Returns false if a write failed (the
 * failure is recorded; the caller closes, or kicks the timer when inside a relay call). */
bool ptc_tunnel_pump(ptc_tunnel_t *t);

/** Streams the mux still tracks (0 before the mux exists). */
uint32_t ptc_tunnel_streams_open(const ptc_tunnel_t *t);

/** Work that keeps a draining tunnel open: the mux's streams plus one if the relay has any. */
size_t ptc_tunnel_streams_left(const ptc_tunnel_t *t);

/**
 * Closes the tunnel (idempotent): cancels the dial or proxy connect, shuts down (graceful)
 * or closes the TLS stream and closes the timer. The tunnel is freed through
 * ptc_tunnel_release() once the last of those handles has called back.
 */
void ptc_tunnel_close(ptc_tunnel_t *t, bool graceful);

/**
 * Ends a tunnel gracefully: GOAWAY(NO_ERROR), then it closes once its streams are done; a
 * tunnel still connecting closes at once. Safe inside the tunnel's own callbacks.
 */
void ptc_tunnel_drain(ptc_tunnel_t *t, const char *reason, const char *detail);

/**
 * Starts a new attempt for slot s (dial directly or through the proxy). Sets s->tunnel; a
 * failure to start closes the tunnel, which then ends through ptc_tunnel_release().
 */
void ptc_tunnel_start(ptc_connector_t *c, slot_t *s);

/* ---- tunnel_pool.c ---- */

/**
 * Called once a closing tunnel has no handle left: logs tunnel_down, schedules the slot's
 * next attempt, frees the tunnel, and closes the connector if a drain is done.
 */
void ptc_tunnel_release(ptc_tunnel_t *t);

/** Rewrites the status file (if configured); logs a failure once per distinct error. */
void ptc_tunnel_status_write(ptc_connector_t *c);

/** Applies the welcome's edge list (§11.5): adds listed edges, drains the others. */
void ptc_tunnel_apply_edges(ptc_connector_t *c, char **edges, size_t cnt);

#endif
