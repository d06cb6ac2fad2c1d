/* SPDX-License-Identifier: MIT */
/*
 * The tunnel client (see tunnel_cli.h): one tunnel, from the dial to the close.
 *
 * Three kinds of object. The connector (one per loop) owns the edge list, a scheduler timer
 * that starts every slot whose retry time has come (one timer for all slots: a slot is a
 * plain struct), the drain deadline and a status refresh timer. An edge is an address with
 * `tunnels_per_edge` slots. A tunnel is one connection attempt of a slot, from the dial to
 * the close: it owns a timer (the handshake deadline, then the mux's liveness ticks), its
 * dial or proxy connect while it runs, its TLS stream and its mux. This file holds the
 * tunnels and the stream API the relay calls; tunnel_pool.c holds the connector, its edges
 * and slots; tunnel_int.h declares what the two share.
 *
 * Closing a tunnel is always asynchronous: ptc_tunnel_close() cancels the dial, closes (or
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

#include "common/net.h"
#include "common/tls.h"
#include "common/tls_stream.h"
#include "connector/handshake.h"
#include "connector/probe.h"
#include "connector/proxy_connect.h"
#include "connector/relay.h"
#include "connector/tunnel_int.h"
#include "proto/mux.h"
#include "proto/proto.h"

/* docs/protocol.md §11.7: from the start of the TCP connection until the welcome. */
#define HANDSHAKE_TIMEOUT_MS 10000
/* How long a graceful close may wait for its last frames (§9 rule 7 asks for a short bound). */
#define SHUTDOWN_TIMEOUT_MS 2000

static const char *const tstate_names[] = {
    "dialing", "tls", "challenge", "welcome", "up", "draining", "closing",
};

static void after_io(ptc_tunnel_t *t);

/* ---- helpers ---- */

const char *ptc_connector_agent(void)
{
    return "portico-connector/" PTC_VERSION;
}

uint64_t ptc_tunnel_now_ms(const ptc_connector_t *c)
{
    return uv_now(c->loop);
}

int64_t ptc_tunnel_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records why the tunnel ends; the first reason wins (later ones are consequences). */
void ptc_tunnel_set_reason(ptc_tunnel_t *t, const char *reason, int err, const char *fmt, ...)
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
        t->slot->since_wall = ptc_tunnel_wall_ms();
    }
    ptc_tunnel_status_write(t->c);
}

/* Streams the mux still tracks (what the status file shows). */
uint32_t ptc_tunnel_streams_open(const ptc_tunnel_t *t)
{
    if (t->mux == NULL) {
        return 0;
    }
    return ptc_mux_streams_open(t->mux);
}

/* Work that keeps a draining tunnel open: the mux's streams and the relay's. */
size_t ptc_tunnel_streams_left(const ptc_tunnel_t *t)
{
    return (t->streams != NULL ? 1 : 0) + (size_t)ptc_tunnel_streams_open(t);
}

/* ---- output ---- */

/* Moves everything the mux queued into the TLS stream. Returns false if a write failed. */
bool ptc_tunnel_pump(ptc_tunnel_t *t)
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
            ptc_tunnel_set_reason(t, "write_failed", rc, "cannot write to the tunnel: %s",
                                  ptc_strerror(rc));
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
    uint64_t now = ptc_tunnel_now_ms(t->c);
    uint64_t at = 0;
    if (t->state < T_UP) {
        at = t->deadline_ms;
    } else {
        at = ptc_mux_next_tick(t->mux);
        uint64_t due = ptc_tls_idle_due(&t->idle);
        at = due < at ? due : at;
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
    ptc_tunnel_set_reason(t, code == PTC_WIRE_TIMEOUT ? "handshake_timeout" : "protocol_error", 0,
                          "%s (sent GOAWAY %s)", text, ptc_wire_error_name(code));
    if (t->mux != NULL && !ptc_mux_is_closed(t->mux)) {
        (void)ptc_mux_goaway(t->mux, code, (const uint8_t *)text, strlen(text));
        (void)ptc_tunnel_pump(t);
    }
    ptc_tunnel_close(t, true);
}

static bool is_idle(ptc_tunnel_t *t)
{
    return t->state == T_UP && t->tls != NULL && ptc_tunnel_streams_left(t) == 0 &&
           ptc_mux_output_pending(t->mux) == 0;
}

/*
 * An idle tunnel keeps little while it waits, as at the edge: the mux's buffers go at once,
 * and PTC_TLS_IDLE_RELEASE_MS later, if it is still idle, most pages of the TLS record
 * buffers. The pings that keep it alive fit in what stays.
 */
static void note_idle(ptc_tunnel_t *t)
{
    bool idle = is_idle(t);
    if (idle) {
        ptc_mux_trim(t->mux);
    }
    ptc_tls_idle_note(&t->idle, idle, ptc_tunnel_now_ms(t->c));
}

static void release_idle(ptc_tunnel_t *t, uint64_t now)
{
    if (ptc_tls_idle_take(&t->idle, now) && is_idle(t)) {
        (void)ptc_tls_release_idle(ptc_tls_stream_tls(t->tls));
    }
}

static void on_timer(uv_timer_t *timer)
{
    ptc_tunnel_t *t = timer->data;
    if (t->closing) {
        return;
    }
    if (t->write_failed) {
        ptc_tunnel_close(t, false);
        return;
    }
    uint64_t now = ptc_tunnel_now_ms(t->c);
    if (t->state < T_UP) {
        if (now < t->deadline_ms) {
            arm_timer(t);
            return;
        }
        if (t->mux != NULL) {
            protocol_fail(t, PTC_WIRE_TIMEOUT, "handshake timeout");
        } else {
            ptc_tunnel_set_reason(t, "handshake_timeout", PTC_ETIMEOUT,
                                  t->state == T_DIALING
                                      ? "no connection to %s within %d s"
                                      : "the TLS handshake with %s did not finish within "
                                        "%d s",
                                  t->slot->edge->addr, HANDSHAKE_TIMEOUT_MS / 1000);
            ptc_tunnel_close(t, false);
        }
        return;
    }
    release_idle(t, now);
    (void)ptc_mux_tick(t->mux, now);
    after_io(t);
}

/* ---- closing ---- */

static void maybe_release(ptc_tunnel_t *t)
{
    if (t->closing && t->pending == 0) {
        ptc_tunnel_release(t);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    ptc_tunnel_t *t = h->data;
    t->pending--;
    maybe_release(t);
}

void ptc_tunnel_close(ptc_tunnel_t *t, bool graceful)
{
    if (t->closing) {
        return;
    }
    ptc_tunnel_set_reason(t, "closed", 0, "closed");
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

/* Starts a graceful end of a running tunnel: GOAWAY(NO_ERROR); it closes once its streams
 * are done. A tunnel still connecting is closed at once. */
void ptc_tunnel_drain(ptc_tunnel_t *t, const char *reason, const char *detail)
{
    if (t->closing) {
        return;
    }
    ptc_tunnel_set_reason(t, reason, 0, "%s", detail);
    if (t->state < T_UP) {
        ptc_tunnel_close(t, false);
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
    (void)ptc_tunnel_pump(t);
    kick(t);
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
        ptc_tunnel_set_reason(t, "internal_error", PTC_EFORMAT, "cannot build the auth document");
        ptc_tunnel_close(t, false);
        return;
    }
    int rc = ptc_mux_send_control(t->mux, (const uint8_t *)doc, doc_len);
    free(doc);
    if (rc != 0) {
        ptc_tunnel_set_reason(t, "internal_error", rc, "cannot send the auth document");
        ptc_tunnel_close(t, false);
        return;
    }
    set_state(t, T_WELCOME);
}

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
        ptc_tunnel_set_reason(t, "protocol_error", PTC_EPROTO,
                              "the welcome's limits overflow a window (%s)", ptc_proto_errname(rc));
        return;
    }
    ptc_mux_set_liveness(t->mux, w.ping_interval_ms, w.idle_timeout_ms);
    snprintf(t->tunnel_id, sizeof(t->tunnel_id), "%s", w.tunnel_id);
    snprintf(t->group, sizeof(t->group), "%s", w.group);
    t->up_ms = ptc_tunnel_now_ms(t->c);
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
        ptc_tunnel_apply_edges(t->c, w.edges, w.edges_cnt);
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
        ptc_tunnel_set_reason(t, "auth_failed", PTC_EAUTH, "the edge refused this connector: %s",
                              text);
        ptc_tunnel_close(t, true);
        return;
    }
    if (t->state < T_UP) {
        ptc_tunnel_set_reason(t, "handshake_refused", PTC_EPROTO,
                              "the edge ended the handshake: GOAWAY %s (%s)", code, text);
        ptc_tunnel_close(t, true);
        return;
    }
    if (ev->code != PTC_WIRE_NO_ERROR) {
        ptc_tunnel_set_reason(t, "edge_error", PTC_EPROTO,
                              "the edge ended the tunnel: GOAWAY %s (%s)", code, text);
        ptc_tunnel_close(t, true);
        return;
    }
    /* §9 rule 4: the edge drains; our streams finish, then the tunnel closes and the slot
     * dials again. */
    ptc_tunnel_set_reason(t, "edge_goaway", 0, "the edge is draining the tunnel (%s)", text);
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
                ptc_tunnel_set_reason(t, "idle_timeout", PTC_ETIMEOUT,
                                      "nothing received from the edge within the idle timeout");
            } else {
                ptc_tunnel_set_reason(t, "protocol_error", PTC_EPROTO,
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
    if (!ptc_tunnel_pump(t)) {
        ptc_tunnel_close(t, false);
        return;
    }
    if (ptc_mux_is_closed(t->mux)) {
        /* A tunnel error either way: the GOAWAY (if ours) is queued; flush and close. */
        ptc_tunnel_set_reason(t, "closed", 0, "the tunnel failed");
        ptc_tunnel_close(t, true);
        return;
    }
    if (t->state == T_DRAINING && ptc_tunnel_streams_left(t) == 0) {
        ptc_tunnel_close(t, true);
        return;
    }
    note_idle(t);
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
            ptc_tunnel_set_reason(t, "connection_lost", status, "the edge closed the connection");
        } else {
            ptc_tunnel_set_reason(t, "connection_lost", status, "connection lost: %s",
                                  ptc_strerror(status));
        }
        ptc_tunnel_close(t, false);
        return;
    }
    (void)ptc_mux_feed(t->mux, data.ptr, data.len, ptc_tunnel_now_ms(t->c));
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
        ptc_tunnel_set_reason(t, "connection_lost", PTC_ECLOSED, "cannot read from the tunnel");
        ptc_tunnel_close(t, false);
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
            ptc_tunnel_set_reason(t, "tls_failed", status,
                                  "the edge's certificate is not trusted: %s", e.reason);
            break;
        case PTC_ECERTNAME:
            ptc_tunnel_set_reason(
                t, "tls_failed", status,
                "the edge's certificate is not trusted: it does not match %s (%s)", host, e.reason);
            break;
        case PTC_EPIN:
            ptc_tunnel_set_reason(
                t, "tls_failed", status,
                "the edge's certificate is not trusted: its key does not match the pin "
                "in the credential file");
            break;
        case PTC_ETIMEOUT:
            ptc_tunnel_set_reason(t, "handshake_timeout", status,
                                  "the TLS handshake with %s timed out", t->slot->edge->addr);
            break;
        default:
            ptc_tunnel_set_reason(t, "tls_failed", status, "TLS handshake with %s failed: %s%s%s",
                                  t->slot->edge->addr, ptc_strerror(status),
                                  e.reason[0] != '\0' ? ": " : "", e.reason);
            break;
        }
        ptc_tunnel_close(t, false);
        return;
    }
    ptc_tls_t *tls = ptc_tls_stream_tls(s);
    const char *alpn = ptc_tls_alpn(tls);
    if (alpn == NULL || strcmp(alpn, PTC_PROTO_ALPN) != 0) {
        /* §2 rule 3: close without sending any frame. */
        ptc_tunnel_set_reason(t, "alpn_mismatch", PTC_EPROTO,
                              "%s did not select ALPN %s (is it a Portico edge?)",
                              t->slot->edge->addr, PTC_PROTO_ALPN);
        ptc_tunnel_close(t, true);
        return;
    }
    if (ptc_tls_server_cert_sha256(tls, t->cert_hash) != 0) {
        ptc_tunnel_set_reason(t, "tls_failed", PTC_ETLS, "the edge's certificate is not available");
        ptc_tunnel_close(t, false);
        return;
    }
    t->mux = ptc_mux_new(PTC_MUX_CONNECTOR, &t->c->limits, ptc_tunnel_now_ms(t->c));
    if (t->mux == NULL) {
        ptc_tunnel_set_reason(t, "internal_error", PTC_ENOMEM, "out of memory");
        ptc_tunnel_close(t, false);
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
    uint64_t now = ptc_tunnel_now_ms(t->c);
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
        ptc_tunnel_set_reason(t, "tls_failed", rc, "cannot start TLS: %s", ptc_strerror(rc));
        ptc_tunnel_close(t, false);
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
            ptc_tunnel_set_reason(t, "connect_failed", status, "cannot resolve %s", e->host);
        } else {
            ptc_tunnel_set_reason(t, "connect_failed", status, "cannot connect to %s: %s", e->addr,
                                  ptc_strerror(status));
        }
        ptc_tunnel_close(t, false);
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
        ptc_tunnel_set_reason(t, "proxy_failed", status, "%s", ptc_proxy_conn_message(pc));
        ptc_tunnel_close(t, false);
        return;
    }
    start_tls(t, tcp, leftover);
}

void ptc_tunnel_start(ptc_connector_t *c, slot_t *s)
{
    ptc_tunnel_t *t = ptc_xcalloc(1, sizeof(*t));
    t->c = c;
    t->slot = s;
    s->tunnel = t;
    s->since_wall = ptc_tunnel_wall_ms();
    c->live_tunnels++;
    ptc_log_ctx_derive(&t->log, &c->log);
    t->log.conn = ++c->next_seq;
    t->state = T_DIALING;
    t->started_ms = ptc_tunnel_now_ms(c);
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
        ptc_tunnel_set_reason(t, "connect_failed", rc, "cannot connect to %s: %s", e->addr,
                              ptc_strerror(rc));
        ptc_tunnel_close(t, false);
        return;
    }
    t->pending++;
    arm_timer(t);
    ptc_tunnel_status_write(c);
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
    if (!ptc_tunnel_pump(t)) {
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
