/* SPDX-License-Identifier: MIT */
/*
 * The per-loop state of portico-edge: everything the process holds hangs off one ptc_edge_t
 * (no mutable globals), so that several loops per process remain possible. main.c fills it
 * in at start and tears it down at exit; the modules borrow it:
 *
 * - listener.c  accepts public TLS connections and hands them to httpd.c or tunnel_srv.c;
 * - httpd.c     serves HTTP/1.1 on them (registration, health, and the app handler hook);
 * - tunnel_srv.c runs connector tunnels and keeps `registry` up to date;
 * - admin.c     serves the admin API over `state` and `registry`;
 * - proxy.c, auth.c and portal.c serve apps, their sign-in and the edge host's "My apps".
 *
 * Lifetimes: `loop`, `logger`, `cfg`, `state` and `registry` are set before the listeners and
 * ptc_admin_start() run, and freed only after the loop has closed every connection and the
 * admin server; modules may borrow them for as long as they have a handle open. `draining`
 * turns true once, on SIGTERM/SIGINT. Everything belongs to the loop's thread.
 *
 * This header only declares the struct (and a clock helper); it depends on libuv, common/
 * and edge/ headers.
 */
#ifndef PTC_EDGE_EDGE_H
#define PTC_EDGE_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "common/log.h"
#include "common/tls.h"
#include "edge/app.h"
#include "edge/edge_config.h"
#include "edge/registry.h"
#include "edge/state.h"
#include "edge/store.h"

typedef struct ptc_edge ptc_edge_t;
typedef struct ptc_edge_conn ptc_edge_conn_t;
typedef struct ptc_listener ptc_listener_t;
typedef struct ptc_httpd_req ptc_httpd_req_t;
struct ptc_admin;
struct ptc_session_keys;
struct ptc_oidc;
struct ptc_auth_key;

/**
 * The hook through which app proxying serves requests for hosts other than edge_host. It is
 * called with each request head (ptc_httpd_req_host() says which host); it returns 0 when it
 * took the request (it installed a handler with ptc_httpd_req_set_handler() or answered), or
 * PTC_ENOTFOUND to let httpd answer 404. NULL: every such request gets 404.
 */
typedef int (*ptc_edge_app_route_cb)(void *data, ptc_httpd_req_t *req);

/** Process counters (read by the admin API's status route). */
typedef struct ptc_edge_counters {
    uint64_t conns;           /* public connections open (any phase) */
    uint64_t unauthenticated; /* of those, in the TLS or tunnel handshake */
    uint64_t conns_total;     /* accepted since start */
    uint64_t refused_total;   /* closed at accept by a limit */
    uint64_t requests_total;  /* HTTP requests answered */
    uint64_t tunnels_total;   /* tunnels that completed the handshake */
    uint64_t registrations;   /* connectors registered */
    uint64_t released_bytes;  /* idle TLS record-buffer pages given back to the kernel */
} ptc_edge_counters_t;

struct ptc_edge {
    uv_loop_t *loop;
    /** The process logger (owned by main) and the edge-level context (no ids). */
    ptc_logger_t *logger;
    ptc_log_ctx_t log;
    /** The configuration file as given on the command line, and its contents. */
    const char *config_path;
    ptc_edge_config_t cfg;
    /** Tunnel endpoints sent in welcome and registration answers ("host:port"). */
    char **advertise;
    size_t advertise_cnt;

    /** The management state and its store (owned by main). */
    ptc_store_t *store;
    ptc_state_t *state;
    ptc_app_ctx_t app_ctx;
    /** Live tunnels (owned by main). */
    ptc_registry_t *registry;

    /** The public listener(s) and their TLS server configuration. */
    ptc_listener_t *listener;
    ptc_tls_config_t *tls;
    /** The admin API server (edge/admin.c), NULL when not started. */
    struct ptc_admin *admin;
    /** App tests waiting for their connectors' probe results (edge/diag.c links them). */
    struct ptc_diag_run *diag_runs;

    /** Failed registration attempts per client address (edge/register.c). */
    struct ptc_register_limiter *register_limiter;

    /** App proxying hook (see ptc_edge_app_route_cb). */
    ptc_edge_app_route_cb app_route;
    void *app_route_data;
    /** The edge host's hook for paths other than health and registration (the portal,
     * edge/portal.c), with the same contract; NULL: 404. */
    ptc_edge_app_route_cb host_route;
    void *host_route_data;

    /** OIDC pre-authentication (edge/auth.c), owned by main: the session cookie key ring,
     * the identity providers (NULL when edge.json configures none) and the Ed25519 key that
     * signs X-Portico-Assertion. */
    struct ptc_session_keys *session_keys;
    struct ptc_oidc *oidc;
    struct ptc_auth_key *assertion_key;

    /** Every open public connection, for draining and shutdown (listener.c links them). */
    ptc_edge_conn_t *conns;
    uint64_t next_conn_id;
    ptc_edge_counters_t counters;

    /** Start time: wall clock (ms since the epoch) and loop time (uv_now). */
    uint64_t started_ms;
    uint64_t started_loop_ms;

    /** SIGTERM/SIGINT seen: no new connections, tunnels drain, then the process exits. */
    bool draining;
    /** Called (by listener.c) when the last public connection closed while draining. */
    void (*on_drained)(ptc_edge_t *edge);

    /* Handles owned by main.c. */
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup;
    uv_signal_t sig_usr1;
    uv_timer_t drain_timer;
    uv_timer_t session_timer; /* rotates session_keys every session.key_rotation */
};

/** Milliseconds since the epoch (wall clock), for records and logs. */
static inline uint64_t ptc_edge_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
