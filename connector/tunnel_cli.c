/* SPDX-License-Identifier: MIT */
/*
 * The tunnel client (see tunnel_cli.h).
 *
 * Three kinds of object. The connector (one per loop) owns the edge list, a scheduler timer
 * that starts every slot whose retry time has come (one timer for all slots: a slot is a
 * plain struct), the drain deadline and a status refresh timer. An edge is an address with
 * `tunnels_per_edge` slots. A tunnel is one connection attempt of a slot, from the dial to
 * the close: it owns a timer (the handshake deadline, then the mux's liveness ticks), its
 * dial or proxy connect while it runs, its TLS stream and its mux.
 *
 * Closing a tunnel is always asynchronous: tunnel_close() cancels the dial, closes (or
 * gracefully shuts down) the TLS stream and closes the timer; the tunnel is released from
 * the last of their callbacks, and only then does its slot log tunnel_down and schedule the
 * next attempt. Work that can run inside the relay's calls (writing frames) never closes the
 * tunnel itself: it records the failure and kicks the timer, whose callback closes (STYLE §5
 * rule 3).
 */
#include "connector/tunnel_cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/keys.h"
#include "common/net.h"
#include "common/tls.h"
#include "common/tls_stream.h"
#include "common/url.h"
#include "connector/handshake.h"
#include "connector/probe.h"
#include "connector/proxy_connect.h"
#include "connector/relay.h"
#include "connector/status.h"
#include "proto/mux.h"
#include "proto/proto.h"

#ifndef PTC_VERSION
#define PTC_VERSION "0.0.0"
#endif

/* docs/protocol.md §11.7: from the start of the TCP connection until the welcome. */
#define HANDSHAKE_TIMEOUT_MS 10000
/* How long a graceful close may wait for its last frames (§9 rule 7 asks for a short bound). */
#define SHUTDOWN_TIMEOUT_MS 2000
/* Reconnection backoff: full jitter over a cap that doubles from 0.5 s to 30 s, reset once
 * a tunnel stayed up this long. */
#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS 30000
#define STABLE_MS 60000
/* After the edge's GOAWAY(NO_ERROR) (a planned drain: the edge restarts or moves tunnels),
 * refused connections are retried at a short jittered interval for a while, so that the
 * connector is back within about a second of the edge accepting again; then the ordinary
 * backoff resumes. */
#define RESTART_WINDOW_MS 120000
#define RESTART_MIN_MS 250
#define RESTART_SPREAD_MS 1000
/* §11.8: after AUTH_FAILED wait at least 60 s, growing to 10 min. */
#define AUTH_BACKOFF_MIN_MS 60000
#define AUTH_BACKOFF_MAX_MS 600000
/* The status file is rewritten on every state change, and this often when stream counts
 * moved. */
#define STATUS_REFRESH_MS 5000

typedef enum tstate {
    T_DIALING,   /* resolving and connecting (directly or through the proxy) */
    T_TLS,       /* TLS handshake */
    T_CHALLENGE, /* waiting for the challenge */
    T_WELCOME,   /* auth sent, waiting for the welcome */
    T_UP,        /* running */
    T_DRAINING,  /* GOAWAY sent or received: existing streams finish */
    T_CLOSING,   /* closing; released from the last handle's callback */
} tstate_t;

static const char *const tstate_names[] = {
    "dialing", "tls", "challenge", "welcome", "up", "draining", "closing",
};

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

static void tunnel_close(ptc_tunnel_t *t, bool graceful);
static void after_io(ptc_tunnel_t *t);
static void schedule(ptc_connector_t *c);
static void status_write(ptc_connector_t *c);
static void check_done(ptc_connector_t *c);

/* ---- helpers ---- */

const char *ptc_connector_agent(void)
{
    return "portico-connector/" PTC_VERSION;
}

static uint64_t now_ms(const ptc_connector_t *c)
{
    return uv_now(c->loop);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A uniformly random value in [0, n]. */
static uint64_t random_upto(uint64_t n)
{
    uint64_t r = 0;
    ptc_random_bytes(&r, sizeof(r));
    return n == UINT64_MAX ? r : r % (n + 1);
}

static void set_reason(ptc_tunnel_t *t, const char *reason, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records why the tunnel ends; the first reason wins (later ones are consequences). */
static void set_reason(ptc_tunnel_t *t, const char *reason, int err, const char *fmt, ...)
{
    if (t->reason != NULL) {
        return;
    }
    t->reason = reason;
    t->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->detail, sizeof(t->detail), fmt, ap);
    va_end(ap);
}

static void set_state(ptc_tunnel_t *t, tstate_t next)
{
    bool ok = false;
    switch (t->state) {
    case T_DIALING:
        ok = next == T_TLS || next == T_CLOSING;
        break;
    case T_TLS:
        ok = next == T_CHALLENGE || next == T_CLOSING;
        break;
    case T_CHALLENGE:
        ok = next == T_WELCOME || next == T_CLOSING;
        break;
    case T_WELCOME:
        ok = next == T_UP || next == T_CLOSING;
        break;
    case T_UP:
        ok = next == T_DRAINING || next == T_CLOSING;
        break;
    case T_DRAINING:
        ok = next == T_CLOSING;
        break;
    case T_CLOSING:
        ok = false;
        break;
    }
    if (!ok) {
        PTC_LOG(&t->log, PTC_LOG_ERROR, "tunnel_bad_transition",
                PTC_LOG_STR("from", tstate_names[t->state]), PTC_LOG_STR("to", tstate_names[next]));
        return;
    }
    PTC_LOG(&t->log, PTC_LOG_DEBUG, "tunnel_state", PTC_LOG_STR("from", tstate_names[t->state]),
            PTC_LOG_STR("to", tstate_names[next]));
    t->state = next;
    if (t->slot != NULL) {
        t->slot->since_wall = wall_ms();
    }
    status_write(t->c);
}

/* Streams the mux still tracks (what the status file shows). */
static uint32_t streams_open(const ptc_tunnel_t *t)
{
    if (t->mux == NULL) {
        return 0;
    }
    ptc_mux_stats_t st;
    ptc_mux_stats(t->mux, &st);
    return st.streams_open;
}

/* Work that keeps a draining tunnel open: the mux's streams and the relay's. */
static size_t streams_left(const ptc_tunnel_t *t)
{
    return (t->streams != NULL ? 1 : 0) + (size_t)streams_open(t);
}

/* ---- output ---- */

/* Moves everything the mux queued into the TLS stream. Returns false if a write failed. */
static bool pump(ptc_tunnel_t *t)
{
    if (t->tls == NULL || t->mux == NULL || t->closing || t->write_failed) {
        return !t->write_failed;
    }
    for (;;) {
        size_t n = 0;
        const uint8_t *p = ptc_mux_output(t->mux, &n);
        if (n == 0) {
            break;
        }
        int rc = ptc_tls_stream_write(t->tls, p, n, NULL, NULL);
        if (rc != 0) {
            set_reason(t, "write_failed", rc, "cannot write to the tunnel: %s", ptc_strerror(rc));
            t->write_failed = true;
            return false;
        }
        ptc_mux_output_consume(t->mux, n);
    }
    /* Back-pressure (STYLE §6): a full backlog stops our reads of the tunnel and, through
     * ptc_tunnel_is_full(), the relay's producers, until on_tls_drain. */
    if (!t->read_paused && ptc_tls_stream_is_full(t->tls)) {
        t->read_paused = true;
        ptc_tls_stream_read_stop(t->tls);
    }
    return true;
}

/* Runs on_timer on the next loop iteration (for work that must not run in a caller's call). */
static void kick(ptc_tunnel_t *t);

/* ---- timers ---- */

static void on_timer(uv_timer_t *timer);

static void arm_timer(ptc_tunnel_t *t)
{
    if (t->closing) {
        return;
    }
    uint64_t now = now_ms(t->c);
    uint64_t at = 0;
    if (t->state < T_UP) {
        at = t->deadline_ms;
    } else {
        at = ptc_mux_next_tick(t->mux);
        if (at == UINT64_MAX) {
            uv_timer_stop(&t->timer);
            return;
        }
    }
    uv_timer_start(&t->timer, on_timer, at > now ? at - now : 0, 0);
}

static void kick(ptc_tunnel_t *t)
{
    if (!t->closing) {
        uv_timer_start(&t->timer, on_timer, 0, 0);
    }
}

/* A tunnel error of ours (§9 rule 7): GOAWAY with the code and text, then close. */
static void protocol_fail(ptc_tunnel_t *t, uint32_t code, const char *text)
{
    set_reason(t, code == PTC_WIRE_TIMEOUT ? "handshake_timeout" : "protocol_error", 0,
               "%s (sent GOAWAY %s)", text, ptc_wire_error_name(code));
    if (t->mux != NULL && !ptc_mux_is_closed(t->mux)) {
        (void)ptc_mux_goaway(t->mux, code, (const uint8_t *)text, strlen(text));
        (void)pump(t);
    }
    tunnel_close(t, true);
}

static void on_timer(uv_timer_t *timer)
{
    ptc_tunnel_t *t = timer->data;
    if (t->closing) {
        return;
    }
    if (t->write_failed) {
        tunnel_close(t, false);
        return;
    }
    uint64_t now = now_ms(t->c);
    if (t->state < T_UP) {
        if (now < t->deadline_ms) {
            arm_timer(t);
            return;
        }
        if (t->mux != NULL) {
            protocol_fail(t, PTC_WIRE_TIMEOUT, "handshake timeout");
        } else {
            set_reason(t, "handshake_timeout", PTC_ETIMEOUT,
                       t->state == T_DIALING ? "no connection to %s within %d s"
                                             : "the TLS handshake with %s did not finish within "
                                               "%d s",
                       t->slot->edge->addr, HANDSHAKE_TIMEOUT_MS / 1000);
            tunnel_close(t, false);
        }
        return;
    }
    (void)ptc_mux_tick(t->mux, now);
    after_io(t);
}

/* ---- closing ---- */

static void slot_tunnel_ended(ptc_tunnel_t *t);
static void gc_edges(ptc_connector_t *c);

static void release(ptc_tunnel_t *t)
{
    ptc_connector_t *c = t->c;
    slot_tunnel_ended(t);
    ptc_mux_free(t->mux);
    free(t);
    c->live_tunnels--;
    gc_edges(c);
    check_done(c);
}

static void maybe_release(ptc_tunnel_t *t)
{
    if (t->closing && t->pending == 0) {
        release(t);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    ptc_tunnel_t *t = h->data;
    t->pending--;
    maybe_release(t);
}

static void tunnel_close(ptc_tunnel_t *t, bool graceful)
{
    if (t->closing) {
        return;
    }
    set_reason(t, "closed", 0, "closed");
    set_state(t, T_CLOSING);
    t->closing = true;
    if (t->c->relay != NULL) {
        /* The relay lets go of this tunnel's streams before any frame becomes impossible. */
        ptc_relay_tunnel_closed(t);
    }
    /* Their results could no longer be sent. */
    ptc_probe_cancel_all(&t->probes);
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
    if (t->dial != NULL) {
        ptc_net_dial_cancel(t->dial);
    }
    if (t->pconn != NULL) {
        ptc_proxy_conn_cancel(t->pconn);
    }
    if (t->tls != NULL) {
        if (graceful && !t->write_failed) {
            ptc_tls_stream_shutdown(t->tls);
        } else {
            ptc_tls_stream_close(t->tls);
        }
    }
}

/* ---- handshake ---- */

static void handle_challenge(ptc_tunnel_t *t, const uint8_t *p, size_t len)
{
    uint8_t nonce[32];
    const char *why = NULL;
    if (ptc_handshake_parse_challenge(p, len, PTC_PROTO_VERSION, nonce, &why) != 0) {
        protocol_fail(t, PTC_WIRE_PROTOCOL_ERROR, why);
        return;
    }
    size_t doc_len = 0;
    char *doc =
        ptc_handshake_build_auth(t->c->creds, PTC_PROTO_VERSION, nonce, t->cert_hash,
                                 ptc_connector_agent(), t->c->hostname, &t->c->limits, &doc_len);
    if (doc == NULL) {
        set_reason(t, "internal_error", PTC_EFORMAT, "cannot build the auth document");
        tunnel_close(t, false);
        return;
    }
    int rc = ptc_mux_send_control(t->mux, (const uint8_t *)doc, doc_len);
    free(doc);
    if (rc != 0) {
        set_reason(t, "internal_error", rc, "cannot send the auth document");
        tunnel_close(t, false);
        return;
    }
    set_state(t, T_WELCOME);
}

static void apply_edges(ptc_connector_t *c, char **edges, size_t cnt);

static void handle_welcome(ptc_tunnel_t *t, const uint8_t *p, size_t len)
{
    ptc_handshake_welcome_t w;
    if (ptc_handshake_parse_welcome(p, len, &w) != 0) {
        ptc_handshake_welcome_dispose(&w);
        protocol_fail(t, PTC_WIRE_PROTOCOL_ERROR, PTC_HANDSHAKE_MALFORMED_WELCOME);
        return;
    }
    int rc = ptc_mux_set_peer_limits(t->mux, &w.limits);
    if (rc != 0) {
        /* A window pushed past 2^31-1: the mux failed the tunnel and queued its events. */
        ptc_handshake_welcome_dispose(&w);
        set_reason(t, "protocol_error", PTC_EPROTO, "the welcome's limits overflow a window (%s)",
                   ptc_proto_errname(rc));
        return;
    }
    ptc_mux_set_liveness(t->mux, w.ping_interval_ms, w.idle_timeout_ms);
    snprintf(t->tunnel_id, sizeof(t->tunnel_id), "%s", w.tunnel_id);
    snprintf(t->group, sizeof(t->group), "%s", w.group);
    t->up_ms = now_ms(t->c);
    slot_t *s = t->slot;
    s->auth_failures = 0;
    s->restart_until = 0;
    s->last_error[0] = '\0';
    s->retry_at_wall = 0;
    set_state(t, T_UP);
    PTC_LOG(&t->log, PTC_LOG_INFO, "tunnel_up", PTC_LOG_STR("tunnel_id", t->tunnel_id),
            PTC_LOG_STR("edge", s->edge->addr), PTC_LOG_STR("group", t->group),
            PTC_LOG_UINT("slot", s->index), PTC_LOG_BOOL("via_proxy", t->via_proxy),
            PTC_LOG_UINT("ping_interval_ms", w.ping_interval_ms),
            PTC_LOG_UINT("idle_timeout_ms", w.idle_timeout_ms),
            PTC_LOG_UINT("handshake_ms", t->up_ms - t->started_ms));
    if (w.has_edges) {
        apply_edges(t->c, w.edges, w.edges_cnt);
    }
    ptc_handshake_welcome_dispose(&w);
}

/* ---- backend probes (docs/protocol.md §4.8.1) ---- */

/* Queues a probe_result; the caller's after_io() (or the one below) sends it. */
static void send_probe_result(ptc_tunnel_t *t, const char *doc, size_t len)
{
    int rc = ptc_mux_send_control(t->mux, (const uint8_t *)doc, len);
    if (rc != 0) {
        PTC_LOG(&t->log, PTC_LOG_WARN, "probe_result_not_sent",
                PTC_LOG_STR("reason", ptc_proto_errname(rc)));
    }
}

static void on_probe_done(void *data, const char *doc, size_t len)
{
    ptc_tunnel_t *t = data;
    if (t->closing || t->mux == NULL) {
        return;
    }
    send_probe_result(t, doc, len);
    after_io(t);
}

/* A probe document: run it, or answer at once why it cannot run. Malformed probes are not
 * tunnel errors (§4.8.1). */
static void handle_probe(ptc_tunnel_t *t, const uint8_t *p, size_t len)
{
    ptc_probe_req_t req;
    char detail[256];
    char why[320];
    int rc = ptc_probe_parse(p, len, &req, detail, sizeof(detail));
    if (rc == 0) {
        /* The probe validates backends with the relay's configuration (backend_ca_file,
         * else the system bundle), so that it sees what a request would. */
        ptc_probe_opts_t o = {
            .loop = t->c->loop,
            .log = &t->log,
            .req = &req,
            .tls = t->c->relay != NULL ? ptc_relay_backend_tls(t->c->relay) : NULL,
            .ca_file = t->c->cfg->backend_ca_file,
            .on_done = on_probe_done,
            .data = t,
        };
        rc = ptc_probe_start(&o, &t->probes);
        if (rc == PTC_ELIMIT) {
            snprintf(why, sizeof(why), "busy: too many probes in flight");
        } else if (rc != 0) {
            snprintf(why, sizeof(why), "cannot start the probe: %s", ptc_strerror(rc));
        }
    } else {
        snprintf(why, sizeof(why), "malformed probe: %s", detail);
    }
    if (rc != 0) {
        PTC_LOG(&t->log, PTC_LOG_WARN, "probe_refused", PTC_LOG_STR("probe", req.id),
                PTC_LOG_STR("reason", why));
        if (req.id[0] != '\0') {
            size_t n = 0;
            char *doc = ptc_probe_error_result(req.id, why, &n);
            send_probe_result(t, doc, n);
            free(doc);
        }
    }
    ptc_probe_req_dispose(&req);
}

static void on_control(ptc_tunnel_t *t, const uint8_t *p, size_t len)
{
    char type[PTC_HANDSHAKE_TYPE_MAX + 1];
    if (ptc_handshake_doc_type(p, len, type, sizeof(type)) != 0) {
        const char *why = t->state == T_CHALLENGE ? PTC_HANDSHAKE_MALFORMED_CHALLENGE
                          : t->state == T_WELCOME ? PTC_HANDSHAKE_MALFORMED_WELCOME
                                                  : "malformed control document";
        protocol_fail(t, PTC_WIRE_PROTOCOL_ERROR, why);
        return;
    }
    bool is_handshake =
        strcmp(type, "challenge") == 0 || strcmp(type, "auth") == 0 || strcmp(type, "welcome") == 0;
    switch (t->state) {
    case T_CHALLENGE:
        if (strcmp(type, "challenge") != 0) {
            protocol_fail(t, PTC_WIRE_PROTOCOL_ERROR, "unexpected frame");
            return;
        }
        handle_challenge(t, p, len);
        return;
    case T_WELCOME:
        if (strcmp(type, "welcome") != 0) {
            protocol_fail(t, PTC_WIRE_PROTOCOL_ERROR, "unexpected frame");
            return;
        }
        handle_welcome(t, p, len);
        return;
    case T_UP:
    case T_DRAINING:
        if (is_handshake) {
            protocol_fail(t, PTC_WIRE_PROTOCOL_ERROR, "unexpected frame");
            return;
        }
        if (strcmp(type, "probe") == 0) {
            handle_probe(t, p, len);
            return;
        }
        /* §4.8: documents of unknown types are ignored once the handshake has ended. */
        PTC_LOG(&t->log, PTC_LOG_DEBUG, "tunnel_control_ignored", PTC_LOG_STR("type", type));
        return;
    case T_DIALING:
    case T_TLS:
    case T_CLOSING:
        return;
    }
}

/* ---- stream events ---- */

static void on_request(ptc_tunnel_t *t, const ptc_mux_event_t *ev)
{
    if (t->state != T_UP && t->state != T_DRAINING) {
        /* §6.4: a REQUEST before the welcome. */
        protocol_fail(t, PTC_WIRE_PROTOCOL_ERROR, "unexpected frame");
        return;
    }
    uint32_t code = PTC_WIRE_REFUSED_STREAM;
    if (t->c->relay != NULL) {
        code = ptc_relay_open(t->c->relay, t, ev->stream_id, &ev->request, ev->end_stream);
    }
    if (code != 0 && !t->closing) {
        PTC_LOG(&t->log, PTC_LOG_DEBUG, "stream_refused", PTC_LOG_UINT("stream_id", ev->stream_id),
                PTC_LOG_STR("code", ptc_wire_error_name(code)));
        (void)ptc_mux_reset(t->mux, ev->stream_id, code);
    }
}

static void on_goaway(ptc_tunnel_t *t, const ptc_mux_event_t *ev)
{
    char text[300];
    ptc_log_escape(text, sizeof(text), ev->data, ev->len, 256);
    const char *code = ptc_wire_error_name(ev->code);
    if (ev->code == PTC_WIRE_AUTH_FAILED) {
        /* §11.8: refused identity (during the handshake, or revoked while running). */
        t->auth_failed = true;
        t->reregister = strcmp(text, "unknown connector") == 0 || strcmp(text, "revoked") == 0;
        set_reason(t, "auth_failed", PTC_EAUTH, "the edge refused this connector: %s", text);
        tunnel_close(t, true);
        return;
    }
    if (t->state < T_UP) {
        set_reason(t, "handshake_refused", PTC_EPROTO,
                   "the edge ended the handshake: GOAWAY %s (%s)", code, text);
        tunnel_close(t, true);
        return;
    }
    if (ev->code != PTC_WIRE_NO_ERROR) {
        set_reason(t, "edge_error", PTC_EPROTO, "the edge ended the tunnel: GOAWAY %s (%s)", code,
                   text);
        tunnel_close(t, true);
        return;
    }
    /* §9 rule 4: the edge drains; our streams finish, then the tunnel closes and the slot
     * dials again. */
    set_reason(t, "edge_goaway", 0, "the edge is draining the tunnel (%s)", text);
    if (t->state == T_UP) {
        set_state(t, T_DRAINING);
    }
}

static void process_events(ptc_tunnel_t *t)
{
    ptc_mux_event_t ev;
    while (!t->closing && ptc_mux_next_event(t->mux, &ev)) {
        switch (ev.type) {
        case PTC_MUX_EV_CONTROL:
            on_control(t, ev.data, ev.len);
            break;
        case PTC_MUX_EV_REQUEST:
            on_request(t, &ev);
            break;
        case PTC_MUX_EV_DATA:
            /* §7.3 rule 3: tunnel credit comes back as soon as the bytes reach the stream's
             * own buffer; stream credit when the backend took them (the relay's call). */
            if (ev.len > 0) {
                (void)ptc_mux_tunnel_consumed(t->mux, ev.len);
            }
            if (ev.user != NULL) {
                ptc_relay_on_data(ev.user, ev.data, ev.len, ev.end_stream);
            } else if (ev.len > 0) {
                (void)ptc_mux_consumed(t->mux, ev.stream_id, ev.len);
            }
            break;
        case PTC_MUX_EV_RESET:
            if (ev.user != NULL) {
                ptc_relay_on_reset(ev.user, ev.code);
            }
            break;
        case PTC_MUX_EV_WRITABLE:
            if (ev.stream_id == 0) {
                ptc_relay_tunnel_writable(t);
            } else if (ev.user != NULL) {
                ptc_relay_on_writable(ev.user);
            }
            break;
        case PTC_MUX_EV_PING_ACK:
            PTC_LOG(&t->log, PTC_LOG_DEBUG, "tunnel_ping", PTC_LOG_UINT("rtt_ms", ev.rtt_ms));
            break;
        case PTC_MUX_EV_GOAWAY:
            on_goaway(t, &ev);
            break;
        case PTC_MUX_EV_ERROR:
            if (ev.err == PTC_PROTO_ETIMEOUT) {
                set_reason(t, "idle_timeout", PTC_ETIMEOUT,
                           "nothing received from the edge within the idle timeout");
            } else {
                set_reason(t, "protocol_error", PTC_EPROTO,
                           "the edge broke the protocol: %s (sent GOAWAY %s)",
                           ptc_proto_errname(ev.err), ptc_wire_error_name(ev.code));
            }
            break;
        case PTC_MUX_EV_RESPONSE:
        case PTC_MUX_EV_REFUSED:
            /* Edge-side events; never queued in the connector role. */
            break;
        }
    }
}

/* After input, a tick or a relay call: send, then decide whether the tunnel ends. */
static void after_io(ptc_tunnel_t *t)
{
    if (t->closing || t->mux == NULL) {
        return;
    }
    process_events(t);
    if (t->closing) {
        return;
    }
    if (!pump(t)) {
        tunnel_close(t, false);
        return;
    }
    if (ptc_mux_is_closed(t->mux)) {
        /* A tunnel error either way: the GOAWAY (if ours) is queued; flush and close. */
        set_reason(t, "closed", 0, "the tunnel failed");
        tunnel_close(t, true);
        return;
    }
    if (t->state == T_DRAINING && streams_left(t) == 0) {
        tunnel_close(t, true);
        return;
    }
    arm_timer(t);
}

/* ---- TLS ---- */

static void on_tls_read(ptc_tls_stream_t *s, int status, ptc_slice_t data)
{
    ptc_tunnel_t *t = ptc_tls_stream_data(s);
    if (t->closing) {
        return;
    }
    if (status != 0) {
        if (status == UV_EOF) {
            set_reason(t, "connection_lost", status, "the edge closed the connection");
        } else {
            set_reason(t, "connection_lost", status, "connection lost: %s", ptc_strerror(status));
        }
        tunnel_close(t, false);
        return;
    }
    (void)ptc_mux_feed(t->mux, data.ptr, data.len, now_ms(t->c));
    after_io(t);
}

static void on_tls_drain(ptc_tls_stream_t *s)
{
    ptc_tunnel_t *t = ptc_tls_stream_data(s);
    if (t->closing || !t->read_paused) {
        return;
    }
    t->read_paused = false;
    if (ptc_tls_stream_read_start(t->tls) != 0) {
        set_reason(t, "connection_lost", PTC_ECLOSED, "cannot read from the tunnel");
        tunnel_close(t, false);
        return;
    }
    ptc_relay_tunnel_writable(t);
    after_io(t);
}

static void on_tls_close(ptc_tls_stream_t *s)
{
    ptc_tunnel_t *t = ptc_tls_stream_data(s);
    t->tls = NULL;
    t->pending--;
    maybe_release(t);
}

static void on_tls_handshake(ptc_tls_stream_t *s, int status)
{
    ptc_tunnel_t *t = ptc_tls_stream_data(s);
    if (t->closing) {
        return;
    }
    const char *host = t->slot->edge->host;
    if (status != 0) {
        ptc_tls_err_t e;
        ptc_tls_last_error(ptc_tls_stream_tls(s), &e);
        switch (status) {
        case PTC_ECERT:
            set_reason(t, "tls_failed", status, "the edge's certificate is not trusted: %s",
                       e.reason);
            break;
        case PTC_ECERTNAME:
            set_reason(t, "tls_failed", status,
                       "the edge's certificate is not trusted: it does not match %s (%s)", host,
                       e.reason);
            break;
        case PTC_EPIN:
            set_reason(t, "tls_failed", status,
                       "the edge's certificate is not trusted: its key does not match the pin "
                       "in the credential file");
            break;
        case PTC_ETIMEOUT:
            set_reason(t, "handshake_timeout", status, "the TLS handshake with %s timed out",
                       t->slot->edge->addr);
            break;
        default:
            set_reason(t, "tls_failed", status, "TLS handshake with %s failed: %s%s%s",
                       t->slot->edge->addr, ptc_strerror(status), e.reason[0] != '\0' ? ": " : "",
                       e.reason);
            break;
        }
        tunnel_close(t, false);
        return;
    }
    ptc_tls_t *tls = ptc_tls_stream_tls(s);
    const char *alpn = ptc_tls_alpn(tls);
    if (alpn == NULL || strcmp(alpn, PTC_PROTO_ALPN) != 0) {
        /* §2 rule 3: close without sending any frame. */
        set_reason(t, "alpn_mismatch", PTC_EPROTO,
                   "%s did not select ALPN %s (is it a Portico edge?)", t->slot->edge->addr,
                   PTC_PROTO_ALPN);
        tunnel_close(t, true);
        return;
    }
    if (ptc_tls_server_cert_sha256(tls, t->cert_hash) != 0) {
        set_reason(t, "tls_failed", PTC_ETLS, "the edge's certificate is not available");
        tunnel_close(t, false);
        return;
    }
    t->mux = ptc_mux_new(PTC_MUX_CONNECTOR, &t->c->limits, now_ms(t->c));
    if (t->mux == NULL) {
        set_reason(t, "internal_error", PTC_ENOMEM, "out of memory");
        tunnel_close(t, false);
        return;
    }
    /* §10 rule 5: until the welcome the handshake deadline applies, not the idle timeout. */
    ptc_mux_set_liveness(t->mux, 0, 0);
    set_state(t, T_CHALLENGE);
    arm_timer(t);
}

static void start_tls(ptc_tunnel_t *t, uv_tcp_t *tcp, ptc_slice_t initial)
{
    if (ptc_net_peer_name(tcp, t->peer, sizeof(t->peer)) == 0) {
        ptc_log_ctx_set_peer(&t->log, t->peer);
    }
    uint64_t now = now_ms(t->c);
    ptc_tls_stream_opts_t o = {
        .server_name = t->slot->edge->host,
        .handshake_timeout_ms = t->deadline_ms > now ? t->deadline_ms - now : 1,
        .shutdown_timeout_ms = SHUTDOWN_TIMEOUT_MS,
        .initial = initial,
        .on_handshake = on_tls_handshake,
        .on_read = on_tls_read,
        .on_drain = on_tls_drain,
        .on_close = on_tls_close,
        .data = t,
    };
    int rc = ptc_tls_stream_new(tcp, t->c->tls, &o, &t->tls);
    if (rc != 0) {
        set_reason(t, "tls_failed", rc, "cannot start TLS: %s", ptc_strerror(rc));
        tunnel_close(t, false);
        return;
    }
    t->pending++;
    set_state(t, T_TLS);
}

/* ---- dialing ---- */

static void on_dial(ptc_net_dial_t *d, int status, uv_tcp_t *tcp)
{
    ptc_tunnel_t *t = ptc_net_dial_data(d);
    t->dial = NULL;
    t->pending--;
    if (t->closing) {
        if (tcp != NULL) {
            uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
        }
        maybe_release(t);
        return;
    }
    if (status != 0) {
        const edge_t *e = t->slot->edge;
        if (status == PTC_EDNS) {
            set_reason(t, "connect_failed", status, "cannot resolve %s", e->host);
        } else {
            set_reason(t, "connect_failed", status, "cannot connect to %s: %s", e->addr,
                       ptc_strerror(status));
        }
        tunnel_close(t, false);
        return;
    }
    ptc_slice_t none = {NULL, 0};
    start_tls(t, tcp, none);
}

static void on_proxy(ptc_proxy_conn_t *pc, int status, uv_tcp_t *tcp, ptc_slice_t leftover)
{
    ptc_tunnel_t *t = ptc_proxy_conn_data(pc);
    t->pconn = NULL;
    t->pending--;
    if (t->closing) {
        if (tcp != NULL) {
            uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
        }
        maybe_release(t);
        return;
    }
    if (status != 0) {
        set_reason(t, "proxy_failed", status, "%s", ptc_proxy_conn_message(pc));
        tunnel_close(t, false);
        return;
    }
    start_tls(t, tcp, leftover);
}

static void tunnel_start(ptc_connector_t *c, slot_t *s)
{
    ptc_tunnel_t *t = ptc_xcalloc(1, sizeof(*t));
    t->c = c;
    t->slot = s;
    s->tunnel = t;
    s->since_wall = wall_ms();
    c->live_tunnels++;
    ptc_log_ctx_derive(&t->log, &c->log);
    t->log.conn = ++c->next_seq;
    t->state = T_DIALING;
    t->started_ms = now_ms(c);
    t->deadline_ms = t->started_ms + HANDSHAKE_TIMEOUT_MS;
    /* uv_timer_init cannot fail on an initialised loop. */
    (void)uv_timer_init(c->loop, &t->timer);
    t->timer.data = t;
    t->pending = 1;
    const edge_t *e = s->edge;
    t->via_proxy = c->has_proxy && !ptc_proxy_bypass(c->no_proxy, e->host, e->port);
    PTC_LOG(&t->log, PTC_LOG_INFO, "tunnel_connecting", PTC_LOG_STR("edge", e->addr),
            PTC_LOG_UINT("slot", s->index), PTC_LOG_UINT("attempt", s->failures + 1),
            PTC_LOG_STR("proxy", t->via_proxy ? c->proxy.display : NULL));
    int rc = 0;
    if (t->via_proxy) {
        rc = ptc_proxy_connect(c->loop, &c->proxy, e->host, e->port, ptc_connector_agent(),
                               HANDSHAKE_TIMEOUT_MS, on_proxy, t, &t->pconn);
    } else {
        rc = ptc_net_dial(c->loop, e->host, e->port, HANDSHAKE_TIMEOUT_MS, on_dial, t, &t->dial);
    }
    if (rc != 0) {
        set_reason(t, "connect_failed", rc, "cannot connect to %s: %s", e->addr, ptc_strerror(rc));
        tunnel_close(t, false);
        return;
    }
    t->pending++;
    arm_timer(t);
    status_write(c);
}

/* ---- slots and backoff ---- */

static void slot_tunnel_ended(ptc_tunnel_t *t)
{
    ptc_connector_t *c = t->c;
    slot_t *s = t->slot;
    uint64_t now = now_ms(c);
    uint64_t up_for = t->up_ms != 0 ? now - t->up_ms : 0;
    bool retry = !s->stopped && !s->edge->removed && !c->draining && !c->closing;
    uint64_t delay = 0;
    if (retry) {
        if (t->auth_failed) {
            /* §11.8: at least 60 s with jitter, doubling to 10 min. */
            unsigned shift = s->auth_failures < 3 ? s->auth_failures : 3;
            uint64_t base = (uint64_t)AUTH_BACKOFF_MIN_MS << shift;
            s->auth_failures++;
            delay = base + random_upto(base / 4);
            delay = delay > AUTH_BACKOFF_MAX_MS ? AUTH_BACKOFF_MAX_MS : delay;
        } else if (strcmp(t->reason, "edge_goaway") == 0 ||
                   (s->restart_until != 0 && now < s->restart_until)) {
            if (strcmp(t->reason, "edge_goaway") == 0) {
                s->restart_until = now + RESTART_WINDOW_MS;
                s->failures = 0;
            }
            delay = RESTART_MIN_MS + random_upto(RESTART_SPREAD_MS);
        } else {
            s->restart_until = 0;
            if (up_for >= STABLE_MS) {
                s->failures = 0;
            }
            unsigned shift = s->failures < 6 ? s->failures : 6;
            uint64_t cap = (uint64_t)BACKOFF_BASE_MS << shift;
            cap = cap > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : cap;
            s->failures++;
            delay = random_upto(cap);
        }
        s->retry_at = now + delay;
        if (s->retry_at == 0) {
            s->retry_at = 1;
        }
        s->retry_at_wall = wall_ms() + (int64_t)delay;
    } else {
        s->retry_at = 0;
        s->retry_at_wall = 0;
    }
    snprintf(s->last_error, sizeof(s->last_error), "%s", t->detail);
    s->tunnel = NULL;
    s->since_wall = wall_ms();

    /* Ends that are part of normal operation are info; the others warn. */
    bool normal = c->draining || s->stopped || strcmp(t->reason, "edge_goaway") == 0;
    ptc_log_field_t f[12];
    size_t n = 0;
    f[n++] = PTC_LOG_STR("edge", s->edge->addr);
    f[n++] = PTC_LOG_UINT("slot", s->index);
    if (t->tunnel_id[0] != '\0') {
        f[n++] = PTC_LOG_STR("tunnel_id", t->tunnel_id);
    }
    f[n++] = PTC_LOG_STR("reason", t->reason);
    f[n++] = PTC_LOG_STR("detail", t->detail);
    if (t->err != 0) {
        f[n++] = PTC_LOG_ERR(t->err);
    }
    if (t->up_ms != 0) {
        f[n++] = PTC_LOG_UINT("up_ms", up_for);
    }
    if (retry) {
        f[n++] = PTC_LOG_UINT("retry_in_ms", delay);
    }
    f[n++] = PTC_LOG_END;
    ptc_log_write(&t->log, normal ? PTC_LOG_INFO : PTC_LOG_WARN, "tunnel_down", f);
    if (t->auth_failed) {
        PTC_LOG(
            &t->log, PTC_LOG_ERROR, "registration_needed", PTC_LOG_STR("edge", s->edge->addr),
            PTC_LOG_STR("connector_id", c->creds->connector_id), PTC_LOG_STR("detail", t->detail),
            PTC_LOG_STR("hint", t->reregister ? "the edge does not know this connector (deleted or "
                                                "revoked): register again with a new token"
                                              : "the edge refused the signature: check that no "
                                                "TLS-intercepting proxy sits between connector and "
                                                "edge, or register again"));
    }
    status_write(c);
    if (retry) {
        schedule(c);
    }
}

static void gc_edges(ptc_connector_t *c)
{
    size_t j = 0;
    for (size_t i = 0; i < c->edges_cnt; i++) {
        edge_t *e = c->edges[i];
        bool busy = false;
        for (size_t k = 0; k < e->nslots; k++) {
            busy = busy || e->slots[k].tunnel != NULL;
        }
        if (e->removed && !busy) {
            free(e->slots);
            free(e);
            continue;
        }
        c->edges[j++] = e;
    }
    c->edges_cnt = j;
}

static void on_sched(uv_timer_t *timer)
{
    ptc_connector_t *c = timer->data;
    if (c->draining || c->closing) {
        return;
    }
    uint64_t now = now_ms(c);
    /* tunnel_start may append edges (never while this loop runs: that happens in welcome
     * handling), so the count is read afresh each time. */
    for (size_t i = 0; i < c->edges_cnt; i++) {
        edge_t *e = c->edges[i];
        for (size_t k = 0; k < e->nslots; k++) {
            slot_t *s = &e->slots[k];
            if (!e->removed && !s->stopped && s->tunnel == NULL && s->retry_at != 0 &&
                s->retry_at <= now) {
                s->retry_at = 0;
                s->retry_at_wall = 0;
                tunnel_start(c, s);
            }
        }
    }
    schedule(c);
}

/* Arms the scheduler for the earliest pending retry. */
static void schedule(ptc_connector_t *c)
{
    if (c->draining || c->closing) {
        return;
    }
    gc_edges(c);
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < c->edges_cnt; i++) {
        edge_t *e = c->edges[i];
        for (size_t k = 0; k < e->nslots; k++) {
            slot_t *s = &e->slots[k];
            if (!e->removed && !s->stopped && s->tunnel == NULL && s->retry_at != 0 &&
                s->retry_at < next) {
                next = s->retry_at;
            }
        }
    }
    if (next == UINT64_MAX) {
        uv_timer_stop(&c->sched);
        return;
    }
    uint64_t now = now_ms(c);
    uv_timer_start(&c->sched, on_sched, next > now ? next - now : 0, 0);
}

/* ---- edges ---- */

/* Normalises "host:port" (lower-case host, IPv6 in brackets) into out; false if invalid. */
static bool normalize_addr(const char *spec, char *out, size_t cap, char *host, size_t host_cap,
                           uint16_t *port)
{
    ptc_net_hostport_t hp;
    if (ptc_net_parse_hostport(spec, &hp) != 0 || hp.host[0] == '\0' || hp.port == 0) {
        return false;
    }
    for (char *p = hp.host; *p != '\0'; p++) {
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    }
    if (ptc_url_format_authority(hp.host, hp.port, out, cap) != 0) {
        return false;
    }
    snprintf(host, host_cap, "%s", hp.host);
    *port = hp.port;
    return true;
}

static edge_t *find_edge(ptc_connector_t *c, const char *addr)
{
    for (size_t i = 0; i < c->edges_cnt; i++) {
        if (!c->edges[i]->removed && strcmp(c->edges[i]->addr, addr) == 0) {
            return c->edges[i];
        }
    }
    return NULL;
}

/* Adds an edge whose slots dial at once. Returns false if it is invalid or already there. */
static bool add_edge(ptc_connector_t *c, const char *spec)
{
    char addr[sizeof(((edge_t *)0)->addr)];
    char host[PTC_NET_HOST_MAX + 1];
    uint16_t port = 0;
    if (!normalize_addr(spec, addr, sizeof(addr), host, sizeof(host), &port) ||
        find_edge(c, addr) != NULL || c->edges_cnt >= PTC_CONNECTOR_MAX_EDGES) {
        return false;
    }
    edge_t *e = ptc_xcalloc(1, sizeof(*e));
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    snprintf(e->host, sizeof(e->host), "%s", host);
    e->port = port;
    e->nslots = (size_t)c->cfg->tunnels_per_edge;
    e->slots = ptc_xcalloc(e->nslots, sizeof(slot_t));
    uint64_t now = now_ms(c);
    for (size_t k = 0; k < e->nslots; k++) {
        e->slots[k].edge = e;
        e->slots[k].index = (unsigned)k;
        e->slots[k].retry_at = now != 0 ? now : 1;
        e->slots[k].since_wall = wall_ms();
    }
    c->edges = ptc_xrealloc(c->edges, (c->edges_cnt + 1) * sizeof(edge_t *));
    c->edges[c->edges_cnt++] = e;
    return true;
}

/* Starts a graceful end of a running tunnel: GOAWAY(NO_ERROR); it closes once its streams
 * are done. A tunnel still connecting is closed at once. */
static void tunnel_drain(ptc_tunnel_t *t, const char *reason, const char *detail)
{
    if (t->closing) {
        return;
    }
    set_reason(t, reason, 0, "%s", detail);
    if (t->state < T_UP) {
        tunnel_close(t, false);
        return;
    }
    if (!ptc_mux_goaway_sent(t->mux) && !ptc_mux_is_closed(t->mux)) {
        (void)ptc_mux_goaway(t->mux, PTC_WIRE_NO_ERROR, (const uint8_t *)"draining", 8);
    }
    if (t->state == T_UP) {
        set_state(t, T_DRAINING);
    }
    /* This may run inside the tunnel's own event loop (a welcome that drops its edge):
     * write the GOAWAY now (a failure is handled by the timer) and decide about closing
     * from the timer. */
    (void)pump(t);
    kick(t);
}

/* The welcome's edge list (§11.5): keep tunnels to each listed edge, drop the others. An
 * empty list, or edges fixed by the configuration, change nothing. */
static void apply_edges(ptc_connector_t *c, char **edges, size_t cnt)
{
    if (cnt == 0 || c->cfg->edges_cnt > 0 || c->draining) {
        return;
    }
    size_t added = 0;
    size_t removed = 0;
    for (size_t i = 0; i < cnt; i++) {
        added += add_edge(c, edges[i]) ? 1 : 0;
    }
    for (size_t i = 0; i < c->edges_cnt; i++) {
        edge_t *e = c->edges[i];
        if (e->removed) {
            continue;
        }
        bool listed = false;
        for (size_t j = 0; j < cnt && !listed; j++) {
            char addr[sizeof(e->addr)];
            char host[PTC_NET_HOST_MAX + 1];
            uint16_t port = 0;
            listed = normalize_addr(edges[j], addr, sizeof(addr), host, sizeof(host), &port) &&
                     strcmp(addr, e->addr) == 0;
        }
        if (listed) {
            continue;
        }
        e->removed = true;
        removed++;
        for (size_t k = 0; k < e->nslots; k++) {
            e->slots[k].stopped = true;
            e->slots[k].retry_at = 0;
            if (e->slots[k].tunnel != NULL) {
                tunnel_drain(e->slots[k].tunnel, "edge_removed",
                             "the edge is no longer listed in the welcome");
            }
        }
    }
    if (ptc_credentials_set_edges(c->creds, (const char *const *)edges, cnt)) {
        int rc = ptc_credentials_save(c->credentials_path, c->creds);
        if (rc != 0) {
            PTC_LOG(&c->log, PTC_LOG_WARN, "credentials_save_failed",
                    PTC_LOG_STR("path", c->credentials_path), PTC_LOG_ERR(rc));
        }
    }
    if (added > 0 || removed > 0) {
        char list[1024] = "";
        size_t off = 0;
        for (size_t i = 0; i < cnt && off < sizeof(list); i++) {
            int n = snprintf(list + off, sizeof(list) - off, "%s%s", i > 0 ? "," : "", edges[i]);
            off += n > 0 ? (size_t)n : 0;
        }
        PTC_LOG(&c->log, PTC_LOG_INFO, "edges_changed", PTC_LOG_STR("edges", list),
                PTC_LOG_UINT("added", added), PTC_LOG_UINT("removed", removed));
        status_write(c);
    }
    schedule(c);
}

/* ---- status ---- */

static const char *slot_state(const slot_t *s)
{
    if (s->tunnel == NULL) {
        return s->retry_at != 0 ? "backoff" : "stopped";
    }
    switch (s->tunnel->state) {
    case T_DIALING:
    case T_TLS:
    case T_CHALLENGE:
    case T_WELCOME:
        return "connecting";
    case T_UP:
        return "up";
    case T_DRAINING:
        return "draining";
    case T_CLOSING:
        return "closing";
    }
    return "unknown";
}

static void status_write(ptc_connector_t *c)
{
    if (c->cfg == NULL || c->cfg->status_file == NULL) {
        return;
    }
    size_t cnt = 0;
    for (size_t i = 0; i < c->edges_cnt; i++) {
        cnt += c->edges[i]->nslots;
    }
    ptc_status_tunnel_t *rows = ptc_xcalloc(cnt > 0 ? cnt : 1, sizeof(*rows));
    size_t n = 0;
    for (size_t i = 0; i < c->edges_cnt; i++) {
        const edge_t *e = c->edges[i];
        for (size_t k = 0; k < e->nslots; k++) {
            const slot_t *s = &e->slots[k];
            ptc_status_tunnel_t *r = &rows[n++];
            snprintf(r->edge, sizeof(r->edge), "%s", e->addr);
            r->slot = s->index;
            r->state = slot_state(s);
            r->since_ms = s->since_wall;
            r->retry_at_ms = s->tunnel == NULL ? s->retry_at_wall : 0;
            snprintf(r->last_error, sizeof(r->last_error), "%s", s->last_error);
            if (s->tunnel != NULL) {
                ptc_tunnel_t *t = s->tunnel;
                snprintf(r->tunnel_id, sizeof(r->tunnel_id), "%s", t->tunnel_id);
                snprintf(r->peer, sizeof(r->peer), "%s", t->peer);
                t->streams_seen = streams_open(t);
                r->streams = t->streams_seen;
            }
        }
    }
    ptc_status_t st = {
        .pid = (int)getpid(),
        .pid_start = ptc_status_pid_start((int)getpid()),
        .connector_id = c->creds->connector_id,
        .group = c->creds->group,
        .version = PTC_VERSION,
        .started_ms = c->started_wall,
        .updated_ms = wall_ms(),
        .draining = c->draining,
        .tunnels = rows,
        .tunnels_cnt = n,
    };
    int rc = ptc_status_write(c->cfg->status_file, &st);
    free(rows);
    if (rc != 0 && rc != c->last_status_err) {
        PTC_LOG(&c->log, PTC_LOG_WARN, "status_write_failed",
                PTC_LOG_STR("path", c->cfg->status_file), PTC_LOG_ERR(rc));
    }
    c->last_status_err = rc;
}

static void on_status_timer(uv_timer_t *timer)
{
    ptc_connector_t *c = timer->data;
    bool changed = false;
    for (size_t i = 0; i < c->edges_cnt && !changed; i++) {
        for (size_t k = 0; k < c->edges[i]->nslots && !changed; k++) {
            ptc_tunnel_t *t = c->edges[i]->slots[k].tunnel;
            changed = t != NULL && streams_open(t) != t->streams_seen;
        }
    }
    if (changed) {
        status_write(c);
    }
}

/* ---- the connector ---- */

static void connector_free(ptc_connector_t *c)
{
    ptc_connector_done_cb cb = c->on_done;
    void *data = c->data;
    for (size_t i = 0; i < c->edges_cnt; i++) {
        free(c->edges[i]->slots);
        free(c->edges[i]);
    }
    free(c->edges);
    ptc_proxy_dispose(&c->proxy);
    ptc_tls_config_unref(c->tls);
    free(c);
    if (cb != NULL) {
        cb(data);
    }
}

static void on_connector_handle_closed(uv_handle_t *h)
{
    ptc_connector_t *c = h->data;
    if (--c->open_handles == 0) {
        connector_free(c);
    }
}

static void connector_close(ptc_connector_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    ptc_status_remove(c->cfg->status_file);
    uv_close((uv_handle_t *)&c->sched, on_connector_handle_closed);
    uv_close((uv_handle_t *)&c->drain_timer, on_connector_handle_closed);
    uv_close((uv_handle_t *)&c->status_timer, on_connector_handle_closed);
}

static void check_done(ptc_connector_t *c)
{
    if (!c->draining || c->closing || c->live_tunnels > 0) {
        return;
    }
    PTC_LOG(&c->log, PTC_LOG_INFO, "drain_done",
            PTC_LOG_UINT("dur_ms", now_ms(c) - c->drain_started_ms),
            PTC_LOG_BOOL("timed_out", c->drain_expired));
    connector_close(c);
}

/* The drain deadline: reset what is left with CANCEL (§9 rule 9) and close. */
static void drain_expire(ptc_connector_t *c)
{
    if (c->drain_expired) {
        return;
    }
    c->drain_expired = true;
    uv_timer_stop(&c->drain_timer);
    for (size_t i = 0; i < c->edges_cnt; i++) {
        edge_t *e = c->edges[i];
        for (size_t k = 0; k < e->nslots; k++) {
            ptc_tunnel_t *t = e->slots[k].tunnel;
            if (t == NULL || t->closing) {
                continue;
            }
            size_t left = streams_left(t);
            set_reason(t, "drain_timeout", 0, "%zu stream(s) still running at the drain deadline",
                       left);
            if (c->relay != NULL) {
                ptc_relay_tunnel_cancel(t, PTC_WIRE_CANCEL);
            }
            (void)pump(t);
            tunnel_close(t, true);
        }
    }
}

static void on_drain_timer(uv_timer_t *timer)
{
    drain_expire(timer->data);
}

void ptc_connector_drain(ptc_connector_t *c)
{
    if (c->closing) {
        return;
    }
    if (c->draining) {
        drain_expire(c);
        return;
    }
    c->draining = true;
    c->drain_started_ms = now_ms(c);
    uv_timer_stop(&c->sched);
    size_t running = 0;
    for (size_t i = 0; i < c->edges_cnt; i++) {
        for (size_t k = 0; k < c->edges[i]->nslots; k++) {
            slot_t *s = &c->edges[i]->slots[k];
            s->stopped = true;
            s->retry_at = 0;
            s->retry_at_wall = 0;
            running += s->tunnel != NULL && s->tunnel->state >= T_UP ? 1 : 0;
        }
    }
    PTC_LOG(&c->log, PTC_LOG_INFO, "drain_started", PTC_LOG_UINT("tunnels", running),
            PTC_LOG_UINT("drain_timeout_ms", c->cfg->drain_timeout_ms));
    uv_timer_start(&c->drain_timer, on_drain_timer, c->cfg->drain_timeout_ms, 0);
    for (size_t i = 0; i < c->edges_cnt; i++) {
        for (size_t k = 0; k < c->edges[i]->nslots; k++) {
            ptc_tunnel_t *t = c->edges[i]->slots[k].tunnel;
            if (t != NULL) {
                tunnel_drain(t, "draining", "the connector is shutting down");
            }
        }
    }
    status_write(c);
    check_done(c);
}

/* The edges to start with: the configuration's, else the credential file's, else the host of
 * the URL used to register. */
static int initial_edges(ptc_connector_t *c, char *err, size_t errlen)
{
    const ptc_connector_config_t *cfg = c->cfg;
    if (cfg->edges_cnt > 0) {
        for (size_t i = 0; i < cfg->edges_cnt; i++) {
            (void)add_edge(c, cfg->edges[i]);
        }
    } else if (c->creds->edges_cnt > 0) {
        for (size_t i = 0; i < c->creds->edges_cnt; i++) {
            (void)add_edge(c, c->creds->edges[i]);
        }
    } else if (c->creds->edge_url != NULL) {
        ptc_url_t u;
        char uerr[128];
        if (ptc_url_parse(c->creds->edge_url, PTC_URL_HTTP, &u, uerr, sizeof(uerr)) == 0) {
            char addr[300];
            if (ptc_url_format_authority(u.host, u.port, addr, sizeof(addr)) == 0) {
                (void)add_edge(c, addr);
            }
            ptc_url_dispose(&u);
        }
    }
    if (c->edges_cnt == 0) {
        snprintf(err, errlen,
                 "no edge address is known: the credential file lists none and its edge_url "
                 "is unusable; set \"edges\" in the configuration");
        return PTC_ECONFIG;
    }
    return 0;
}

int ptc_connector_start(const ptc_connector_opts_t *opts, ptc_connector_t **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    ptc_connector_t *c = ptc_xcalloc(1, sizeof(*c));
    c->loop = opts->loop;
    c->cfg = opts->cfg;
    c->creds = opts->creds;
    c->credentials_path = opts->credentials_path;
    c->relay = opts->relay;
    c->on_done = opts->on_done;
    c->data = opts->data;
    ptc_log_ctx_init(&c->log, opts->logger);
    c->started_wall = wall_ms();
    static const ptc_mux_limits_t defaults = PTC_MUX_LIMITS_DEFAULT;
    c->limits = defaults;
    if (gethostname(c->hostname, sizeof(c->hostname) - 1) != 0) {
        c->hostname[0] = '\0';
    }
    int rc = initial_edges(c, err, errlen);
    if (rc != 0) {
        goto fail;
    }
    const char *purl = c->cfg->proxy != NULL ? c->cfg->proxy : ptc_proxy_from_env();
    if (purl != NULL) {
        char why[256];
        rc = ptc_proxy_parse(purl, &c->proxy, why, sizeof(why));
        if (rc != 0) {
            snprintf(err, errlen, "proxy (%s): %s",
                     c->cfg->proxy != NULL ? "configuration" : "https_proxy", why);
            rc = PTC_ECONFIG;
            goto fail;
        }
        c->has_proxy = true;
        c->no_proxy = getenv("no_proxy") != NULL ? getenv("no_proxy") : getenv("NO_PROXY");
    }
    static const char *const alpn[] = {PTC_PROTO_ALPN, NULL};
    ptc_tls_client_opts_t to = {
        .ca_file = c->cfg->ca_file != NULL ? c->cfg->ca_file : c->creds->ca_file,
        .alpn = alpn,
        .no_verify = c->creds->has_pin,
        .has_pin = c->creds->has_pin,
    };
    memcpy(to.pin_sha256, c->creds->pin_sha256, sizeof(to.pin_sha256));
    ptc_tls_err_t terr;
    memset(&terr, 0, sizeof(terr));
    rc = ptc_tls_client_config_new(&to, &c->tls, &terr);
    if (rc != 0) {
        snprintf(err, errlen, "cannot load the trusted CAs%s%s: %s%s%s",
                 to.ca_file != NULL ? " from " : "", to.ca_file != NULL ? to.ca_file : "",
                 ptc_strerror(rc), terr.reason[0] != '\0' ? ": " : "", terr.reason);
        goto fail;
    }
    uv_timer_init(c->loop, &c->sched);
    uv_timer_init(c->loop, &c->drain_timer);
    uv_timer_init(c->loop, &c->status_timer);
    c->sched.data = c;
    c->drain_timer.data = c;
    c->status_timer.data = c;
    c->open_handles = 3;
    PTC_LOG(&c->log, PTC_LOG_INFO, "connector_started", PTC_LOG_STR("version", PTC_VERSION),
            PTC_LOG_STR("connector_id", c->creds->connector_id),
            PTC_LOG_STR("group", c->creds->group), PTC_LOG_UINT("edges", c->edges_cnt),
            PTC_LOG_INT("tunnels_per_edge", c->cfg->tunnels_per_edge),
            PTC_LOG_STR("proxy", c->has_proxy ? c->proxy.display : NULL),
            PTC_LOG_BOOL("pinned", c->creds->has_pin));
    status_write(c);
    uv_timer_start(&c->status_timer, on_status_timer, STATUS_REFRESH_MS, STATUS_REFRESH_MS);
    schedule(c);
    *out = c;
    return 0;

fail:
    for (size_t i = 0; i < c->edges_cnt; i++) {
        free(c->edges[i]->slots);
        free(c->edges[i]);
    }
    free(c->edges);
    ptc_proxy_dispose(&c->proxy);
    free(c);
    return rc;
}

/* ---- the stream API ---- */

const ptc_log_ctx_t *ptc_tunnel_log(const ptc_tunnel_t *t)
{
    return &t->log;
}

const char *ptc_tunnel_id(const ptc_tunnel_t *t)
{
    return t->tunnel_id;
}

ptc_relay_stream_t **ptc_tunnel_relay_streams(ptc_tunnel_t *t)
{
    return &t->streams;
}

int ptc_tunnel_set_stream(ptc_tunnel_t *t, uint32_t id, ptc_relay_stream_t *s)
{
    if (t->closing || t->mux == NULL) {
        return PTC_ECLOSED;
    }
    return ptc_mux_set_user(t->mux, id, s);
}

/* Relay calls send frames but never close the tunnel from inside the call. */
static void relay_sent(ptc_tunnel_t *t)
{
    if (!pump(t)) {
        kick(t);
        return;
    }
    /* The mux may have queued events (a window that opened), and a drain may be done. */
    if (t->state == T_DRAINING || ptc_mux_pending_events(t->mux) > 0) {
        kick(t);
    }
}

int ptc_tunnel_respond(ptc_tunnel_t *t, uint32_t id, const ptc_response_head_t *head, bool end)
{
    if (t->closing || t->mux == NULL) {
        return PTC_ECLOSED;
    }
    int rc = ptc_mux_respond(t->mux, id, head, end);
    relay_sent(t);
    return rc;
}

ssize_t ptc_tunnel_send_data(ptc_tunnel_t *t, uint32_t id, const uint8_t *p, size_t len, bool end)
{
    if (t->closing || t->mux == NULL) {
        return PTC_ECLOSED;
    }
    ssize_t n = ptc_mux_send_data(t->mux, id, p, len, end);
    relay_sent(t);
    return n;
}

void ptc_tunnel_reset(ptc_tunnel_t *t, uint32_t id, uint32_t code)
{
    if (t->closing || t->mux == NULL) {
        return;
    }
    (void)ptc_mux_reset(t->mux, id, code);
    relay_sent(t);
}

void ptc_tunnel_consumed(ptc_tunnel_t *t, uint32_t id, size_t n)
{
    if (t->closing || t->mux == NULL || n == 0) {
        return;
    }
    (void)ptc_mux_consumed(t->mux, id, n);
    relay_sent(t);
}

bool ptc_tunnel_is_full(const ptc_tunnel_t *t)
{
    return t->tls == NULL || t->closing || ptc_tls_stream_is_full(t->tls);
}

void ptc_tunnel_stream_done(ptc_tunnel_t *t)
{
    if (!t->closing && t->state == T_DRAINING) {
        kick(t);
    }
}
