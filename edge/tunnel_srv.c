/* SPDX-License-Identifier: MIT */
/*
 * Connector tunnels at the edge (see tunnel_srv.h).
 *
 * A tunnel moves through HANDSHAKE (challenge sent, waiting for auth), RUNNING (welcome
 * sent, in the registry), DRAINING (GOAWAY sent or received: no new streams) and CLOSING
 * (its handles are closing). set_state() is the only place the state changes.
 *
 * Input: plaintext is fed to the mux, then the queued events are dispatched and the mux's
 * output is written to the TLS stream. Dispatch may call stream handlers, which may open,
 * send on or reset streams of this tunnel: stream records are therefore never freed during
 * dispatch, only marked gone and collected afterwards, and `closing` is checked after every
 * call that can run foreign code (STYLE §5 rule 3).
 *
 * Closing: the tunnel owns one timer and, through the listener's head, the TLS stream; the
 * object (and its mux) is freed when both have closed. Leaving the registry and the
 * tunnel_down log happen once, when the tunnel stops running (tunnel_gone()).
 */
#include "edge/tunnel_srv.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/tls.h"
#include "edge/diag.h"
#include "edge/listener.h"
#include "proto/mux.h"
#include "proto/proto.h"

/* Hold off touching the connector's last_seen for this long between reads. */
#define TOUCH_INTERVAL_MS 1000
/* Longest peer-supplied text quoted in logs. */
#define LOG_TEXT_MAX 256

typedef enum tstate {
    TS_HANDSHAKE,
    TS_RUNNING,
    TS_DRAINING,
    TS_CLOSING,
} tstate_t;

typedef struct tstream {
    struct tstream *next; /* the tunnel's streams, a doubly linked list */
    struct tstream *prev;
    struct tstream *gone_next; /* the tunnel's graveyard, once gone */
    uint32_t id;
    const ptc_tunnel_stream_handler_t *h;
    void *user;
    bool gone;    /* finished or reset: no more callbacks; freed by stream_gc() */
    bool blocked; /* waiting for on_writable */
} tstream_t;

struct ptc_tunnel {
    ptc_edge_conn_t base; /* first: the listener's head */
    uv_timer_t timer;
    unsigned open_handles;
    tstate_t state;
    bool closing; /* the handles are closing */
    bool reading;
    bool peer_goaway;
    unsigned dispatch_depth;
    ptc_mux_t *mux;
    ptc_registry_tunnel_t *reg;
    tstream_t *streams;
    tstream_t *graveyard; /* gone streams, freed by stream_gc() */
    uint32_t live_streams;
    uint8_t nonce[PTC_TUNNEL_NONCE_LEN];
    uint8_t cert_hash[PTC_TLS_SHA256_LEN];
    char id[24];
    char connector[PTC_REGISTRY_ID_MAX + 1];
    char group[PTC_REGISTRY_GROUP_MAX + 1];
    uint64_t up_loop_ms;
    uint64_t last_touch_loop_ms;
    ptc_tls_idle_t idle;     /* when the TLS record pages are due for release */
    const char *down_reason; /* set once, when the tunnel stops running */
};

static const ptc_edge_conn_ops_t tunnel_ops;

static void flush(ptc_tunnel_t *t);
static void tunnel_close(ptc_tunnel_t *t, bool graceful, const char *reason, int err);
static void arm_timer(ptc_tunnel_t *t);

static const char *state_name(tstate_t s)
{
    switch (s) {
    case TS_HANDSHAKE:
        return "handshake";
    case TS_RUNNING:
        return "running";
    case TS_DRAINING:
        return "draining";
    case TS_CLOSING:
        return "closing";
    }
    return "unknown";
}

static void set_state(ptc_tunnel_t *t, tstate_t next)
{
    /* Allowed: handshake -> running | closing; running -> draining | closing;
     * draining -> closing. */
    assert(next > t->state || (next == TS_CLOSING && t->state == TS_CLOSING));
    PTC_LOG(&t->base.log, PTC_LOG_DEBUG, "tunnel_state", PTC_LOG_STR("from", state_name(t->state)),
            PTC_LOG_STR("to", state_name(next)));
    t->state = next;
}

/* Maps proto/'s return codes to the common ones callers of this module see. */
static int map_proto_err(int rc)
{
    switch (rc) {
    case PTC_PROTO_ECLOSED:
        return PTC_ECLOSED;
    case PTC_PROTO_ELIMIT:
        return PTC_ELIMIT;
    case PTC_PROTO_EHEADER:
        return PTC_EHTTP;
    case PTC_PROTO_ENOMEM:
        return PTC_ENOMEM;
    case PTC_PROTO_ENOSTREAM:
        return PTC_ENOTFOUND;
    case PTC_PROTO_ESTATE:
        return PTC_ESTATE;
    default:
        return PTC_EPROTO;
    }
}

/* ---- streams ---- */

static tstream_t *stream_find(ptc_tunnel_t *t, uint32_t id)
{
    /* The mux's table finds a stream it still knows at once; one it has forgotten (both
     * halves ended) may still await stream_check_done(). */
    tstream_t *known = t->mux != NULL ? ptc_mux_get_user(t->mux, id) : NULL;
    if (known != NULL) {
        return known->gone ? NULL : known;
    }
    for (tstream_t *s = t->streams; s != NULL; s = s->next) {
        if (s->id == id && !s->gone) {
            return s;
        }
    }
    return NULL;
}

/* The stream is over: no callback follows; the registry stops counting it. */
static void stream_end(ptc_tunnel_t *t, tstream_t *s)
{
    if (s->gone) {
        return;
    }
    s->gone = true;
    s->gone_next = t->graveyard;
    t->graveyard = s;
    /* The mux's events and stream_find() stop seeing the record, which stream_gc() frees. */
    if (t->mux != NULL) {
        (void)ptc_mux_set_user(t->mux, s->id, NULL);
    }
    t->live_streams--;
    if (t->reg != NULL) {
        ptc_registry_stream_closed(t->base.edge->registry, t->reg);
    }
}

/* Frees the records of ended streams (never during dispatch). */
static void stream_gc(ptc_tunnel_t *t)
{
    if (t->dispatch_depth > 0) {
        return;
    }
    /* Only the gone ones are visited: with thousands of streams open, a walk over all of
     * them at every event made the cost per request grow with the concurrency. */
    while (t->graveyard != NULL) {
        tstream_t *s = t->graveyard;
        t->graveyard = s->gone_next;
        if (s->prev != NULL) {
            s->prev->next = s->next;
        } else {
            t->streams = s->next;
        }
        if (s->next != NULL) {
            s->next->prev = s->prev;
        }
        free(s);
    }
}

/* A stream the mux has forgotten (both halves ended and its events pulled) is over. */
static void stream_check_done(ptc_tunnel_t *t, tstream_t *s)
{
    if (!s->gone && t->mux != NULL && ptc_mux_stream_state(t->mux, s->id) == PTC_MUX_STREAM_IDLE) {
        stream_end(t, s);
    }
}

/* Tells every stream still open that the tunnel is gone. */
static void streams_fail(ptc_tunnel_t *t, uint32_t code)
{
    t->dispatch_depth++;
    for (tstream_t *s = t->streams; s != NULL; s = s->next) {
        if (s->gone) {
            continue;
        }
        stream_end(t, s);
        if (s->h->on_reset != NULL) {
            s->h->on_reset(s->user, code, false);
        }
    }
    t->dispatch_depth--;
    stream_gc(t);
}

/* Drained while draining: the tunnel ends once its last stream is done. */
static void maybe_drained(ptc_tunnel_t *t)
{
    if (t->state == TS_DRAINING && t->live_streams == 0 && !t->closing) {
        tunnel_close(t, true, t->peer_goaway ? "peer_goaway" : "drain", 0);
    }
}

/* ---- output ---- */

static void flush(ptc_tunnel_t *t)
{
    if (t->closing || t->base.stream == NULL) {
        return;
    }
    for (;;) {
        size_t len = 0;
        const uint8_t *p = ptc_mux_output(t->mux, &len);
        if (p == NULL || len == 0) {
            break;
        }
        int rc = ptc_tls_stream_write(t->base.stream, p, len, NULL, NULL);
        if (rc != 0) {
            tunnel_close(t, false, "write_failed", rc);
            return;
        }
        ptc_mux_output_consume(t->mux, len);
    }
    /* Back-pressure (STYLE §6): stop reading the tunnel while the connector does not read. */
    if (ptc_tls_stream_is_full(t->base.stream) && t->reading) {
        ptc_tls_stream_read_stop(t->base.stream);
        t->reading = false;
    }
}

/* ---- going down ---- */

/*
 * Records the connector's activity (last_seen): in memory now, in the store at most once a
 * minute and when the tunnel goes down (`persist`). A deleted connector is not an error.
 */
static void touch(ptc_tunnel_t *t, bool persist)
{
    ptc_state_t *st = t->base.edge->state;
    char msg[256] = "";
    int rc =
        ptc_state_connector_touch(st, t->connector, ptc_edge_now_ms(), persist, msg, sizeof(msg));
    if (rc != 0 && rc != PTC_ENOTFOUND) {
        PTC_LOG(&t->base.log, PTC_LOG_ERROR, "state_write_failed", PTC_LOG_STR("reason", msg),
                PTC_LOG_STR("op", "connector_last_seen"), PTC_LOG_ERR(rc));
    }
}

static void tunnel_gone(ptc_tunnel_t *t, const char *reason, int err)
{
    if (t->down_reason != NULL) {
        return;
    }
    t->down_reason = reason;
    ptc_edge_t *edge = t->base.edge;
    if (t->reg != NULL) {
        ptc_registry_remove(edge->registry, t->reg);
        t->reg = NULL;
        uint64_t dur = uv_now(edge->loop) - t->up_loop_ms;
        if (err != 0) {
            PTC_LOG(&t->base.log, PTC_LOG_INFO, "tunnel_down", PTC_LOG_STR("tunnel", t->id),
                    PTC_LOG_STR("connector", t->connector), PTC_LOG_STR("group", t->group),
                    PTC_LOG_STR("reason", reason), PTC_LOG_UINT("dur_ms", dur), PTC_LOG_ERR(err));
        } else {
            PTC_LOG(&t->base.log, PTC_LOG_INFO, "tunnel_down", PTC_LOG_STR("tunnel", t->id),
                    PTC_LOG_STR("connector", t->connector), PTC_LOG_STR("group", t->group),
                    PTC_LOG_STR("reason", reason), PTC_LOG_UINT("dur_ms", dur));
        }
        touch(t, true);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    ptc_tunnel_t *t = h->data;
    if (--t->open_handles == 0) {
        ptc_mux_free(t->mux);
        free(t);
    }
}

/*
 * Ends the tunnel: leaves the registry, fails its streams, and closes the TLS stream, after
 * the queued output (a GOAWAY) when graceful.
 */
static void tunnel_close(ptc_tunnel_t *t, bool graceful, const char *reason, int err)
{
    if (t->closing) {
        return;
    }
    tunnel_gone(t, reason, err);
    if (t->state != TS_CLOSING) {
        set_state(t, TS_CLOSING);
    }
    streams_fail(t, PTC_WIRE_CANCEL);
    if (graceful) {
        flush(t);
    }
    if (t->closing) {
        return;
    }
    t->closing = true;
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
    if (t->base.stream != NULL) {
        if (graceful) {
            ptc_tls_stream_shutdown(t->base.stream);
        } else {
            ptc_tls_stream_close(t->base.stream);
        }
    }
}

/* Sends GOAWAY(code, text) and closes (docs/protocol.md §9 rule 7, §11.8). */
static void tunnel_fail(ptc_tunnel_t *t, uint32_t code, const char *text, const char *reason)
{
    if (t->closing) {
        return;
    }
    if (t->state == TS_HANDSHAKE) {
        PTC_LOG(&t->base.log, PTC_LOG_WARN, "tunnel_handshake_failed",
                PTC_LOG_STR("reason", reason),
                PTC_LOG_STR("connector", t->connector[0] != '\0' ? t->connector : NULL),
                PTC_LOG_STR("code", ptc_wire_error_name(code)));
    }
    (void)ptc_mux_goaway(t->mux, code, (const uint8_t *)text, strlen(text));
    tunnel_close(t, true, reason, 0);
}

/* ---- the handshake ---- */

size_t ptc_tunnel_auth_message(const uint8_t nonce[PTC_TUNNEL_NONCE_LEN],
                               const uint8_t cert_hash[32], const char *connector_id,
                               uint8_t out[160])
{
    size_t id_len = strlen(connector_id);
    if (id_len == 0 || id_len > PTC_REGISTRY_ID_MAX) {
        return 0;
    }
    size_t n = 0;
    memcpy(out, PTC_TUNNEL_AUTH_CONTEXT, PTC_TUNNEL_AUTH_CONTEXT_LEN); /* includes the NUL */
    n += PTC_TUNNEL_AUTH_CONTEXT_LEN;
    memcpy(out + n, nonce, PTC_TUNNEL_NONCE_LEN);
    n += PTC_TUNNEL_NONCE_LEN;
    memcpy(out + n, cert_hash, 32);
    n += 32;
    out[n++] = (uint8_t)(id_len >> 8);
    out[n++] = (uint8_t)(id_len & 0xff);
    memcpy(out + n, connector_id, id_len);
    return n + id_len;
}

static bool is_identifier(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > PTC_REGISTRY_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool is_printable_ascii(const char *s, size_t min, size_t max)
{
    size_t len = strlen(s);
    if (len < min || len > max) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* Decodes canonical unpadded base64url of exactly `len` bytes (docs/protocol.md §11.2 rule 3). */
static bool decode_exact(const char *text, uint8_t *out, size_t len)
{
    size_t tlen = strlen(text);
    if (tlen != ptc_b64url_len(len)) {
        return false;
    }
    uint8_t buf[96];
    size_t n = 0;
    if (len > sizeof(buf) || ptc_b64url_decode(text, tlen, buf, sizeof(buf), &n) != 0 || n != len) {
        return false;
    }
    char again[160];
    if (ptc_b64url_encode(buf, n, again, sizeof(again)) < 0 || strcmp(again, text) != 0) {
        return false;
    }
    memcpy(out, buf, len);
    return true;
}

/* Reads the optional limits object of auth (docs/protocol.md §7.6). */
static bool parse_limits(json_t *obj, ptc_mux_limits_t *lim)
{
    static const struct {
        const char *key;
        size_t off;
    } members[] = {
        {"max_frame_size", offsetof(ptc_mux_limits_t, max_frame_size)},
        {"max_header_block", offsetof(ptc_mux_limits_t, max_header_block)},
        {"max_control_size", offsetof(ptc_mux_limits_t, max_control_size)},
        {"max_streams", offsetof(ptc_mux_limits_t, max_streams)},
        {"initial_stream_window", offsetof(ptc_mux_limits_t, initial_stream_window)},
        {"initial_tunnel_window", offsetof(ptc_mux_limits_t, initial_tunnel_window)},
    };
    ptc_mux_limits_t def = PTC_MUX_LIMITS_DEFAULT;
    *lim = def;
    if (obj == NULL) {
        return true;
    }
    if (!json_is_object(obj)) {
        return false;
    }
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        json_t *v = json_object_get(obj, members[i].key);
        if (v == NULL) {
            continue;
        }
        if (!json_is_integer(v)) {
            return false;
        }
        json_int_t x = json_integer_value(v);
        if (x < 1 || x > 0x7FFFFFFF) {
            return false;
        }
        *(uint32_t *)((char *)lim + members[i].off) = (uint32_t)x;
    }
    return ptc_mux_limits_check(lim) == 0;
}

static json_t *limits_json(const ptc_mux_limits_t *l)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "max_frame_size",
                     (json_int_t)l->max_frame_size, "max_header_block",
                     (json_int_t)l->max_header_block, "max_control_size",
                     (json_int_t)l->max_control_size, "max_streams", (json_int_t)l->max_streams,
                     "initial_stream_window", (json_int_t)l->initial_stream_window,
                     "initial_tunnel_window", (json_int_t)l->initial_tunnel_window);
}

static int send_json(ptc_tunnel_t *t, json_t *doc)
{
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        return PTC_ENOMEM;
    }
    int rc = ptc_mux_send_control(t->mux, (const uint8_t *)text, strlen(text));
    free(text);
    return rc == 0 ? 0 : map_proto_err(rc);
}

static void send_challenge(ptc_tunnel_t *t)
{
    char nonce[64];
    ptc_random_bytes(t->nonce, sizeof(t->nonce));
    if (ptc_b64url_encode(t->nonce, sizeof(t->nonce), nonce, sizeof(nonce)) < 0) {
        tunnel_close(t, false, "internal", PTC_ELIMIT);
        return;
    }
    json_t *doc = json_pack("{s:s, s:[i], s:s}", "type", "challenge", "versions", PTC_PROTO_VERSION,
                            "nonce", nonce);
    int rc = send_json(t, doc);
    if (rc != 0) {
        tunnel_close(t, false, "internal", rc);
        return;
    }
    flush(t);
}

static void send_welcome(ptc_tunnel_t *t)
{
    ptc_edge_t *edge = t->base.edge;
    json_t *edges = json_array();
    for (size_t i = 0; i < edge->advertise_cnt; i++) {
        json_array_append_new(edges, json_string(edge->advertise[i]));
    }
    json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:I, s:o, s:o}", "type", "welcome", "tunnel_id",
                            t->id, "group", t->group, "ping_interval_ms",
                            (json_int_t)edge->cfg.limits.ping_interval_ms, "idle_timeout_ms",
                            (json_int_t)edge->cfg.limits.idle_timeout_ms, "limits",
                            limits_json(ptc_mux_local_limits(t->mux)), "edges", edges);
    int rc = send_json(t, doc);
    if (rc != 0) {
        tunnel_fail(t, PTC_WIRE_INTERNAL_ERROR, "internal error", "internal");
    }
}

/* Checks the auth document and, if it holds, makes the tunnel run (§11.4, §11.6, §11.8). */
static void on_auth(ptc_tunnel_t *t, json_t *doc)
{
    ptc_edge_t *edge = t->base.edge;
    json_t *jver = json_object_get(doc, "version");
    json_t *jid = json_object_get(doc, "connector_id");
    json_t *jagent = json_object_get(doc, "agent");
    json_t *jhost = json_object_get(doc, "hostname");
    json_t *jsig = json_object_get(doc, "signature");
    uint8_t sig[PTC_ED25519_SIG_LEN];
    ptc_mux_limits_t peer;
    if (!json_is_integer(jver) || !json_is_string(jid) || !json_is_string(jagent) ||
        !json_is_string(jhost) || !json_is_string(jsig) || !is_identifier(json_string_value(jid)) ||
        !is_printable_ascii(json_string_value(jagent), 1, 128) || json_string_length(jhost) > 255 ||
        !decode_exact(json_string_value(jsig), sig, sizeof(sig)) ||
        !parse_limits(json_object_get(doc, "limits"), &peer)) {
        tunnel_fail(t, PTC_WIRE_PROTOCOL_ERROR, "malformed auth", "malformed_auth");
        return;
    }
    if (json_integer_value(jver) != PTC_PROTO_VERSION) {
        tunnel_fail(t, PTC_WIRE_PROTOCOL_ERROR, "unsupported version", "unsupported_version");
        return;
    }
    const char *id = json_string_value(jid);
    snprintf(t->connector, sizeof(t->connector), "%s", id);
    const ptc_connector_t *cn = ptc_state_connector_find(edge->state, id);
    if (cn == NULL) {
        tunnel_fail(t, PTC_WIRE_AUTH_FAILED, "unknown connector", "unknown_connector");
        return;
    }
    uint8_t msg[160];
    size_t mlen = ptc_tunnel_auth_message(t->nonce, t->cert_hash, id, msg);
    if (mlen == 0 || ptc_ed25519_verify(cn->public_key, msg, mlen, sig) != 0) {
        tunnel_fail(t, PTC_WIRE_AUTH_FAILED, "bad signature", "bad_signature");
        return;
    }
    if (ptc_registry_tunnel_count(edge->registry) >= (size_t)edge->cfg.limits.max_tunnels) {
        tunnel_fail(t, PTC_WIRE_INTERNAL_ERROR, "too many tunnels", "max_tunnels");
        return;
    }
    if (ptc_mux_set_peer_limits(t->mux, &peer) != 0) {
        tunnel_fail(t, PTC_WIRE_PROTOCOL_ERROR, "malformed auth", "malformed_auth");
        return;
    }
    ptc_mux_set_liveness(t->mux, (uint32_t)edge->cfg.limits.ping_interval_ms,
                         (uint32_t)edge->cfg.limits.idle_timeout_ms);
    uint8_t rnd[8];
    ptc_random_bytes(rnd, sizeof(rnd));
    char hex[17];
    if (ptc_hex_encode(rnd, sizeof(rnd), hex, sizeof(hex)) != 0) {
        tunnel_fail(t, PTC_WIRE_INTERNAL_ERROR, "internal error", "internal");
        return;
    }
    snprintf(t->id, sizeof(t->id), "tn_%s", hex);
    snprintf(t->group, sizeof(t->group), "%s", cn->group);
    ptc_registry_tunnel_info_t info = {
        .tunnel_id = t->id,
        .connector_id = t->connector,
        .group = t->group,
        .remote_addr = t->base.peer,
        .since_ms = ptc_edge_now_ms(),
        .owner = t,
    };
    int rc = ptc_registry_add(edge->registry, &info, &t->reg);
    if (rc != 0) {
        tunnel_fail(t, PTC_WIRE_INTERNAL_ERROR, "internal error", "internal");
        return;
    }
    send_welcome(t);
    if (t->closing) {
        return;
    }
    set_state(t, TS_RUNNING);
    t->up_loop_ms = uv_now(edge->loop);
    t->last_touch_loop_ms = t->up_loop_ms;
    ptc_edge_conn_authenticated(&t->base);
    edge->counters.tunnels_total++;
    t->base.log.action = NULL;
    touch(t, false);
    PTC_LOG(&t->base.log, PTC_LOG_INFO, "tunnel_up", PTC_LOG_STR("tunnel", t->id),
            PTC_LOG_STR("connector", t->connector), PTC_LOG_STR("group", t->group),
            PTC_LOG_STR("hostname", json_string_value(jhost)),
            PTC_LOG_STR("agent", json_string_value(jagent)));
    if (edge->draining) {
        /* The edge began draining during the handshake: this tunnel drains at once. */
        t->base.ops->drain(&t->base);
    }
}

/* A CONTROL document (docs/protocol.md §4.8, §11.5). */
static void on_control(ptc_tunnel_t *t, const uint8_t *p, size_t len)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *type = doc != NULL && json_is_object(doc) ? json_object_get(doc, "type") : NULL;
    if (t->state == TS_HANDSHAKE) {
        if (type == NULL || !json_is_string(type)) {
            tunnel_fail(t, PTC_WIRE_PROTOCOL_ERROR, "malformed auth", "malformed_auth");
        } else if (strcmp(json_string_value(type), "auth") != 0) {
            tunnel_fail(t, PTC_WIRE_PROTOCOL_ERROR, "unexpected frame", "unexpected_frame");
        } else {
            on_auth(t, doc);
        }
        json_decref(doc);
        return;
    }
    if (type == NULL || !json_is_string(type)) {
        json_decref(doc);
        tunnel_fail(t, PTC_WIRE_PROTOCOL_ERROR, "malformed control", "protocol_error");
        return;
    }
    const char *name = json_string_value(type);
    if (strcmp(name, "challenge") == 0 || strcmp(name, "auth") == 0 ||
        strcmp(name, "welcome") == 0) {
        json_decref(doc);
        tunnel_fail(t, PTC_WIRE_PROTOCOL_ERROR, "unexpected frame", "protocol_error");
        return;
    }
    if (strcmp(name, "probe_result") == 0) {
        /* Informational (§4.8.1): never a tunnel error, whatever it holds. */
        ptc_diag_on_probe_result(t->base.edge, t->connector, doc);
        json_decref(doc);
        return;
    }
    /* Unknown document types are ignored once the handshake is over (§13 rule 3). */
    PTC_LOG(&t->base.log, PTC_LOG_DEBUG, "tunnel_control_ignored", PTC_LOG_STR("type", name));
    json_decref(doc);
}

/* ---- events ---- */

static void on_goaway(ptc_tunnel_t *t, const ptc_mux_event_t *ev)
{
    t->peer_goaway = true;
    PTC_LOG(&t->base.log, PTC_LOG_INFO, "tunnel_goaway_received", PTC_LOG_STR("tunnel", t->id),
            PTC_LOG_STR("code", ptc_wire_error_name(ev->code)),
            PTC_LOG_PEER("debug", ev->data, ev->len < LOG_TEXT_MAX ? ev->len : LOG_TEXT_MAX));
    if (ev->code != PTC_WIRE_NO_ERROR || t->state == TS_HANDSHAKE) {
        /* A tunnel error at the peer: the mux is closed; so is the tunnel. */
        tunnel_close(t, ev->code == PTC_WIRE_NO_ERROR, "peer_goaway", 0);
        return;
    }
    if (t->state == TS_RUNNING) {
        set_state(t, TS_DRAINING);
        if (t->reg != NULL) {
            ptc_registry_set_draining(t->base.edge->registry, t->reg);
        }
    }
    maybe_drained(t);
}

static void on_stream_event(ptc_tunnel_t *t, const ptc_mux_event_t *ev)
{
    tstream_t *s = ev->user;
    if (s == NULL || s->gone) {
        return;
    }
    switch (ev->type) {
    case PTC_MUX_EV_RESPONSE:
        if (s->h->on_response != NULL) {
            s->h->on_response(s->user, &ev->response, ev->end_stream);
        }
        break;
    case PTC_MUX_EV_DATA:
        /* The bytes now belong to the stream's consumer: return the tunnel's credit (§7.3
         * rule 3) so that one slow client never stalls the others. */
        if (ev->len > 0) {
            (void)ptc_mux_tunnel_consumed(t->mux, ev->len);
        }
        if (s->h->on_data != NULL) {
            s->h->on_data(s->user, (ptc_slice_t){ev->data, ev->len}, ev->end_stream);
        }
        break;
    case PTC_MUX_EV_RESET:
    case PTC_MUX_EV_REFUSED:
        stream_end(t, s);
        if (s->h->on_reset != NULL) {
            s->h->on_reset(s->user, ev->code, ev->type == PTC_MUX_EV_REFUSED);
        }
        return;
    case PTC_MUX_EV_WRITABLE:
        s->blocked = false;
        if (s->h->on_writable != NULL) {
            s->h->on_writable(s->user);
        }
        break;
    default:
        return;
    }
    if (!t->closing) {
        stream_check_done(t, s);
    }
}

static void wake_blocked(ptc_tunnel_t *t)
{
    for (tstream_t *s = t->streams; s != NULL && !t->closing; s = s->next) {
        if (!s->gone && s->blocked) {
            s->blocked = false;
            if (s->h->on_writable != NULL) {
                s->h->on_writable(s->user);
            }
        }
    }
}

static bool is_idle(const ptc_tunnel_t *t)
{
    return ptc_mux_streams_open(t->mux) == 0 && ptc_mux_output_pending(t->mux) == 0 &&
           t->base.stream != NULL;
}

/*
 * An idle tunnel keeps little while it waits. The mux's buffers go at once (a free and a
 * malloc of 4 KiB when it wakes; freeing them later would leave holes in the heap that
 * nothing returns to the kernel), and PTC_TLS_IDLE_RELEASE_MS later, when the timer says
 * the tunnel is still idle, most pages of the TLS record buffers (2 x 16.7 KiB otherwise):
 * a busy tunnel never pays for that. The pings that keep it alive fit in what stays.
 */
static void note_idle(ptc_tunnel_t *t)
{
    bool idle = is_idle(t);
    if (idle) {
        ptc_mux_trim(t->mux);
    }
    ptc_tls_idle_note(&t->idle, idle, uv_now(t->timer.loop));
}

static void release_idle(ptc_tunnel_t *t, uint64_t now)
{
    if (ptc_tls_idle_take(&t->idle, now) && is_idle(t)) {
        t->base.edge->counters.released_bytes +=
            ptc_tls_release_idle(ptc_tls_stream_tls(t->base.stream));
    }
}

/* Pulls and handles every queued event, then writes the output. */
static void dispatch(ptc_tunnel_t *t)
{
    t->dispatch_depth++;
    ptc_mux_event_t ev;
    while (!t->closing && ptc_mux_next_event(t->mux, &ev)) {
        switch (ev.type) {
        case PTC_MUX_EV_CONTROL:
            on_control(t, ev.data, ev.len);
            break;
        case PTC_MUX_EV_GOAWAY:
            on_goaway(t, &ev);
            break;
        case PTC_MUX_EV_ERROR:
            PTC_LOG(&t->base.log, PTC_LOG_WARN, "tunnel_error", PTC_LOG_STR("tunnel", t->id),
                    PTC_LOG_STR("code", ptc_wire_error_name(ev.code)),
                    PTC_LOG_STR("proto_err", ptc_proto_errname(ev.err)));
            if (t->state == TS_HANDSHAKE) {
                PTC_LOG(&t->base.log, PTC_LOG_WARN, "tunnel_handshake_failed",
                        PTC_LOG_STR("reason", "protocol_error"),
                        PTC_LOG_STR("code", ptc_wire_error_name(ev.code)));
            }
            tunnel_close(t, true, ev.err == PTC_PROTO_ETIMEOUT ? "idle_timeout" : "protocol_error",
                         0);
            break;
        case PTC_MUX_EV_PING_ACK:
            PTC_LOG(&t->base.log, PTC_LOG_DEBUG, "tunnel_ping", PTC_LOG_UINT("rtt_ms", ev.rtt_ms));
            break;
        case PTC_MUX_EV_WRITABLE:
            if (ev.stream_id == 0) {
                wake_blocked(t);
            } else {
                on_stream_event(t, &ev);
            }
            break;
        case PTC_MUX_EV_REQUEST:
            /* The mux refuses REQUEST frames at the edge (a tunnel error); never queued. */
            break;
        case PTC_MUX_EV_RESPONSE:
        case PTC_MUX_EV_DATA:
        case PTC_MUX_EV_RESET:
        case PTC_MUX_EV_REFUSED:
            on_stream_event(t, &ev);
            break;
        }
    }
    t->dispatch_depth--;
    stream_gc(t);
    if (!t->closing) {
        flush(t);
    }
    if (!t->closing) {
        maybe_drained(t);
    }
    if (!t->closing && t->dispatch_depth == 0) {
        note_idle(t);
    }
}

/* ---- connection callbacks ---- */

static void on_timer(uv_timer_t *timer)
{
    ptc_tunnel_t *t = timer->data;
    if (t->closing) {
        return;
    }
    if (t->state == TS_HANDSHAKE) {
        tunnel_fail(t, PTC_WIRE_TIMEOUT, "handshake timeout", "handshake_timeout");
        return;
    }
    uint64_t now = uv_now(timer->loop);
    release_idle(t, now); /* before the tick queues a PING */
    int rc = ptc_mux_tick(t->mux, now);
    dispatch(t);
    if (!t->closing && rc == PTC_PROTO_ETIMEOUT) {
        tunnel_close(t, true, "idle_timeout", PTC_ETIMEOUT);
        return;
    }
    arm_timer(t);
}

static void arm_timer(ptc_tunnel_t *t)
{
    if (t->closing) {
        return;
    }
    uint64_t now = uv_now(t->timer.loop);
    if (t->state == TS_HANDSHAKE) {
        /* §11.7: 10 seconds (handshake_timeout) from accepting the TCP connection. */
        uint64_t deadline =
            t->base.accepted_loop_ms + t->base.edge->cfg.limits.handshake_timeout_ms;
        uv_timer_start(&t->timer, on_timer, deadline > now ? deadline - now : 0, 0);
        return;
    }
    uint64_t next = ptc_mux_next_tick(t->mux);
    uint64_t due = ptc_tls_idle_due(&t->idle);
    next = due < next ? due : next;
    if (next == UINT64_MAX) {
        uv_timer_stop(&t->timer);
        return;
    }
    uv_timer_start(&t->timer, on_timer, next > now ? next - now : 0, 0);
}

static void tunnel_on_read(ptc_edge_conn_t *base, int status, ptc_slice_t data)
{
    ptc_tunnel_t *t = (ptc_tunnel_t *)base;
    if (t->closing) {
        return;
    }
    if (status != 0) {
        /* §2 rule 8: the connection ended (a close in the middle of a frame fails the
         * tunnel's streams all the same). */
        if (t->state == TS_HANDSHAKE) {
            PTC_LOG(&t->base.log, PTC_LOG_WARN, "tunnel_handshake_failed",
                    PTC_LOG_STR("reason", "peer_closed"), PTC_LOG_ERR(status));
        }
        tunnel_close(t, false, status == UV_EOF ? "peer_closed" : "connection_error", status);
        return;
    }
    uint64_t now = uv_now(t->timer.loop);
    int rc = ptc_mux_feed(t->mux, data.ptr, data.len, now);
    dispatch(t);
    if (t->closing) {
        return;
    }
    if (rc != 0) {
        /* The mux failed the tunnel (its ERROR event normally closed it already). */
        tunnel_close(t, true, "protocol_error", PTC_EPROTO);
        return;
    }
    if (t->state != TS_HANDSHAKE && now - t->last_touch_loop_ms >= TOUCH_INTERVAL_MS) {
        t->last_touch_loop_ms = now;
        touch(t, false);
    }
    arm_timer(t);
}

static void tunnel_on_drain(ptc_edge_conn_t *base)
{
    ptc_tunnel_t *t = (ptc_tunnel_t *)base;
    if (t->closing) {
        return;
    }
    if (!t->reading) {
        if (ptc_tls_stream_read_start(t->base.stream) == 0) {
            t->reading = true;
        }
    }
    t->dispatch_depth++;
    wake_blocked(t);
    t->dispatch_depth--;
    stream_gc(t);
    flush(t);
}

static void tunnel_on_close(ptc_edge_conn_t *base)
{
    ptc_tunnel_t *t = (ptc_tunnel_t *)base;
    tunnel_gone(t, "peer_closed", 0);
    if (!t->closing) {
        t->closing = true;
        uv_close((uv_handle_t *)&t->timer, on_timer_closed);
    }
    streams_fail(t, PTC_WIRE_CANCEL);
    if (--t->open_handles == 0) {
        ptc_mux_free(t->mux);
        free(t);
    }
}

static void tunnel_drain(ptc_edge_conn_t *base)
{
    ptc_tunnel_t *t = (ptc_tunnel_t *)base;
    if (t->closing) {
        return;
    }
    if (t->state == TS_HANDSHAKE) {
        tunnel_fail(t, PTC_WIRE_NO_ERROR, "draining", "drain");
        return;
    }
    if (t->state == TS_RUNNING) {
        (void)ptc_mux_goaway(t->mux, PTC_WIRE_NO_ERROR, (const uint8_t *)"draining", 8);
        set_state(t, TS_DRAINING);
        if (t->reg != NULL) {
            ptc_registry_set_draining(t->base.edge->registry, t->reg);
        }
        flush(t);
    }
    maybe_drained(t);
}

static void tunnel_abort(ptc_edge_conn_t *base)
{
    ptc_tunnel_t *t = (ptc_tunnel_t *)base;
    tunnel_close(t, false, "shutdown", 0);
}

static const ptc_edge_conn_ops_t tunnel_ops = {
    .kind = "tunnel",
    .on_read = tunnel_on_read,
    .on_drain = tunnel_on_drain,
    .on_close = tunnel_on_close,
    .drain = tunnel_drain,
    .abort = tunnel_abort,
};

void ptc_tunnel_srv_accept(ptc_edge_conn_t *from)
{
    ptc_tunnel_t *t = ptc_xcalloc(1, sizeof(*t));
    ptc_edge_conn_handover(from, &t->base, &tunnel_ops);
    ptc_edge_t *edge = t->base.edge;
    t->open_handles = 2; /* the timer and the stream */
    t->state = TS_HANDSHAKE;
    t->reading = true;
    t->base.log.action = "tunnel handshake";
    ptc_mux_limits_t local = PTC_MUX_LIMITS_DEFAULT;
    t->mux = ptc_mux_new(PTC_MUX_EDGE, &local, uv_now(edge->loop));
    int rc = uv_timer_init(edge->loop, &t->timer);
    t->timer.data = t;
    if (t->mux == NULL || rc != 0) {
        PTC_LOG(&t->base.log, PTC_LOG_ERROR, "tunnel_setup_failed",
                PTC_LOG_ERR(rc != 0 ? rc : PTC_ENOMEM));
        if (rc != 0) {
            t->open_handles = 1;
            t->closing = true;
            ptc_tls_stream_close(t->base.stream);
        } else {
            tunnel_close(t, false, "internal", PTC_ENOMEM);
        }
        return;
    }
    /* The signature is bound to the certificate this connection presented (§11.6). */
    rc = ptc_tls_server_cert_sha256(ptc_tls_stream_tls(t->base.stream), t->cert_hash);
    if (rc != 0) {
        tunnel_close(t, false, "internal", rc);
        return;
    }
    send_challenge(t);
    arm_timer(t);
}

/* ---- following the state ---- */

static void on_state_change(void *data, ptc_state_kind_t kind, ptc_state_op_t op, const char *id)
{
    ptc_edge_t *edge = data;
    if (kind != PTC_STATE_CONNECTOR || (op != PTC_STATE_DELETED && op != PTC_STATE_MOVED)) {
        return;
    }
    size_t cnt = ptc_registry_connector_owners(edge->registry, id, NULL, 0);
    void **owners = cnt > 0 ? ptc_xmalloc(cnt * sizeof(*owners)) : NULL;
    cnt = ptc_registry_connector_owners(edge->registry, id, owners, cnt);
    if (op == PTC_STATE_DELETED) {
        PTC_LOG(&edge->log, PTC_LOG_INFO, "connector_revoked", PTC_LOG_STR("connector", id),
                PTC_LOG_UINT("tunnels", cnt));
        /* §12.4: its tunnels close at once with GOAWAY(AUTH_FAILED, "revoked"). */
        for (size_t i = 0; i < cnt; i++) {
            tunnel_fail(owners[i], PTC_WIRE_AUTH_FAILED, "revoked", "revoked");
        }
    } else {
        const ptc_connector_t *cn = ptc_state_connector_find(edge->state, id);
        if (cn != NULL) {
            int moved = ptc_registry_move_connector(edge->registry, id, cn->group);
            for (size_t i = 0; i < cnt; i++) {
                ptc_tunnel_t *t = owners[i];
                snprintf(t->group, sizeof(t->group), "%s", cn->group);
            }
            PTC_LOG(&edge->log, PTC_LOG_INFO, "connector_moved", PTC_LOG_STR("connector", id),
                    PTC_LOG_STR("group", cn->group), PTC_LOG_INT("tunnels", moved));
        }
    }
    free(owners);
}

void ptc_tunnel_srv_start(ptc_edge_t *edge)
{
    ptc_state_observe(edge->state, on_state_change, edge);
}

void ptc_tunnel_srv_stop(ptc_edge_t *edge)
{
    if (edge->state != NULL) {
        ptc_state_unobserve(edge->state, on_state_change, edge);
    }
}

/* ---- streams (the request path) ---- */

static bool can_open(void *owner, void *data)
{
    (void)data;
    ptc_tunnel_t *t = owner;
    return t->state == TS_RUNNING && !t->closing && ptc_mux_can_open(t->mux);
}

ptc_tunnel_t *ptc_tunnel_pick(ptc_edge_t *edge, const char *group)
{
    ptc_registry_tunnel_t *r = ptc_registry_pick(edge->registry, group, can_open, NULL);
    return r != NULL ? ptc_registry_owner(r) : NULL;
}

int ptc_tunnel_open_stream(ptc_tunnel_t *t, const ptc_request_head_t *head, bool end,
                           const ptc_tunnel_stream_handler_t *h, void *user, uint32_t *id)
{
    if (t->closing || t->state != TS_RUNNING) {
        return PTC_ECLOSED;
    }
    uint32_t sid = 0;
    int rc = ptc_mux_open_stream(t->mux, head, end, &sid);
    if (rc != 0) {
        return map_proto_err(rc);
    }
    tstream_t *s = ptc_xcalloc(1, sizeof(*s));
    s->id = sid;
    s->h = h;
    s->user = user;
    s->next = t->streams;
    if (t->streams != NULL) {
        t->streams->prev = s;
    }
    t->streams = s;
    t->live_streams++;
    (void)ptc_mux_set_user(t->mux, sid, s);
    ptc_registry_stream_opened(t->base.edge->registry, t->reg);
    *id = sid;
    flush(t);
    return 0;
}

ssize_t ptc_tunnel_stream_send(ptc_tunnel_t *t, uint32_t id, const void *p, size_t len, bool end)
{
    if (t->closing) {
        return PTC_ECLOSED;
    }
    tstream_t *s = stream_find(t, id);
    if (s == NULL) {
        return PTC_ENOTFOUND;
    }
    ssize_t n = ptc_mux_send_data(t->mux, id, p, len, end);
    if (n < 0) {
        return map_proto_err((int)n);
    }
    if ((size_t)n < len || ptc_tls_stream_is_full(t->base.stream)) {
        s->blocked = true;
    }
    flush(t);
    if (!t->closing) {
        stream_check_done(t, s);
        stream_gc(t);
        maybe_drained(t);
    }
    return n;
}

int ptc_tunnel_stream_consumed(ptc_tunnel_t *t, uint32_t id, size_t n)
{
    if (t->closing) {
        return PTC_ECLOSED;
    }
    int rc = ptc_mux_consumed(t->mux, id, n);
    if (rc != 0) {
        return map_proto_err(rc);
    }
    flush(t);
    return 0;
}

int ptc_tunnel_stream_reset(ptc_tunnel_t *t, uint32_t id, uint32_t code)
{
    tstream_t *s = stream_find(t, id);
    if (s == NULL) {
        return PTC_ENOTFOUND;
    }
    stream_end(t, s);
    if (!t->closing) {
        (void)ptc_mux_reset(t->mux, id, code);
        flush(t);
    }
    stream_gc(t);
    if (!t->closing) {
        maybe_drained(t);
    }
    return 0;
}

bool ptc_tunnel_is_full(const ptc_tunnel_t *t)
{
    return t->closing || t->base.stream == NULL || ptc_tls_stream_is_full(t->base.stream);
}

const char *ptc_tunnel_id(const ptc_tunnel_t *t)
{
    return t->id;
}

const char *ptc_tunnel_connector(const ptc_tunnel_t *t)
{
    return t->connector;
}

/* ---- informational CONTROL documents ---- */

static int cmp_connector(const void *a, const void *b)
{
    const ptc_tunnel_t *x = *(ptc_tunnel_t *const *)a;
    const ptc_tunnel_t *y = *(ptc_tunnel_t *const *)b;
    int c = strcmp(x->connector, y->connector);
    if (c != 0) {
        return c;
    }
    /* The oldest tunnel of a connector first. */
    return x->up_loop_ms < y->up_loop_ms ? -1 : x->up_loop_ms > y->up_loop_ms ? 1 : 0;
}

size_t ptc_tunnel_group_connectors(ptc_edge_t *edge, const char *group, ptc_tunnel_t **out,
                                   size_t cap)
{
    size_t n = ptc_registry_all_owners(edge->registry, NULL, 0);
    if (n == 0) {
        return 0;
    }
    void **owners = ptc_xmalloc(n * sizeof(*owners));
    n = ptc_registry_all_owners(edge->registry, owners, n);
    ptc_tunnel_t **live = ptc_xmalloc(n * sizeof(*live));
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        ptc_tunnel_t *t = owners[i];
        if (t->state == TS_RUNNING && !t->closing && strcmp(t->group, group) == 0) {
            live[cnt++] = t;
        }
    }
    qsort(live, cnt, sizeof(*live), cmp_connector);
    size_t found = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (i > 0 && strcmp(live[i]->connector, live[i - 1]->connector) == 0) {
            continue;
        }
        if (found < cap) {
            out[found] = live[i];
        }
        found++;
    }
    free(live);
    free(owners);
    return found;
}

int ptc_tunnel_send_control(ptc_tunnel_t *t, const char *json, size_t len)
{
    if (t->closing || (t->state != TS_RUNNING && t->state != TS_DRAINING)) {
        return PTC_ECLOSED;
    }
    int rc = ptc_mux_send_control(t->mux, (const uint8_t *)json, len);
    if (rc != 0) {
        return map_proto_err(rc);
    }
    flush(t);
    return 0;
}
