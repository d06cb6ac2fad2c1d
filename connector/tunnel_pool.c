/* SPDX-License-Identifier: MIT */
/*
 * The connector side of the tunnel client (see tunnel_cli.h): ptc_connector_start() and
 * ptc_connector_drain(), the edge list (from the configuration, the credential file or the
 * welcome), the slots of each edge with their reconnection backoff and the scheduler timer
 * that starts them, the drain deadline and the status file. The tunnels themselves (dial,
 * TLS, handshake, mux) live in tunnel_cli.c; tunnel_int.h declares what the two share. Uses
 * common/ and connector/ (credentials, status, relay, proxy_connect); never edge/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/keys.h"
#include "common/net.h"
#include "common/tls.h"
#include "common/url.h"
#include "connector/proxy_connect.h"
#include "connector/relay.h"
#include "connector/status.h"
#include "connector/tunnel_cli.h"
#include "connector/tunnel_int.h"
#include "proto/mux.h"
#include "proto/proto.h"

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

static void schedule(ptc_connector_t *c);
static void check_done(ptc_connector_t *c);
static void slot_tunnel_ended(ptc_tunnel_t *t);
static void gc_edges(ptc_connector_t *c);

/* ---- helpers ---- */

/* A uniformly random value in [0, n]. */
static uint64_t random_upto(uint64_t n)
{
    uint64_t r = 0;
    ptc_random_bytes(&r, sizeof(r));
    return n == UINT64_MAX ? r : r % (n + 1);
}

/* ---- slots and backoff ---- */

void ptc_tunnel_release(ptc_tunnel_t *t)
{
    ptc_connector_t *c = t->c;
    slot_tunnel_ended(t);
    ptc_mux_free(t->mux);
    free(t);
    c->live_tunnels--;
    gc_edges(c);
    check_done(c);
}

static void slot_tunnel_ended(ptc_tunnel_t *t)
{
    ptc_connector_t *c = t->c;
    slot_t *s = t->slot;
    uint64_t now = ptc_tunnel_now_ms(c);
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
        s->retry_at_wall = ptc_tunnel_wall_ms() + (int64_t)delay;
    } else {
        s->retry_at = 0;
        s->retry_at_wall = 0;
    }
    snprintf(s->last_error, sizeof(s->last_error), "%s", t->detail);
    s->tunnel = NULL;
    s->since_wall = ptc_tunnel_wall_ms();

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
    ptc_tunnel_status_write(c);
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
    uint64_t now = ptc_tunnel_now_ms(c);
    /* ptc_tunnel_start may append edges (never while this loop runs: that happens in welcome
     * handling), so the count is read afresh each time. */
    for (size_t i = 0; i < c->edges_cnt; i++) {
        edge_t *e = c->edges[i];
        for (size_t k = 0; k < e->nslots; k++) {
            slot_t *s = &e->slots[k];
            if (!e->removed && !s->stopped && s->tunnel == NULL && s->retry_at != 0 &&
                s->retry_at <= now) {
                s->retry_at = 0;
                s->retry_at_wall = 0;
                ptc_tunnel_start(c, s);
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
    uint64_t now = ptc_tunnel_now_ms(c);
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
    uint64_t now = ptc_tunnel_now_ms(c);
    for (size_t k = 0; k < e->nslots; k++) {
        e->slots[k].edge = e;
        e->slots[k].index = (unsigned)k;
        e->slots[k].retry_at = now != 0 ? now : 1;
        e->slots[k].since_wall = ptc_tunnel_wall_ms();
    }
    c->edges = ptc_xrealloc(c->edges, (c->edges_cnt + 1) * sizeof(edge_t *));
    c->edges[c->edges_cnt++] = e;
    return true;
}

/* The welcome's edge list (§11.5): keep tunnels to each listed edge, drop the others. An
 * empty list, or edges fixed by the configuration, change nothing. */
void ptc_tunnel_apply_edges(ptc_connector_t *c, char **edges, size_t cnt)
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
                ptc_tunnel_drain(e->slots[k].tunnel, "edge_removed",
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
        ptc_tunnel_status_write(c);
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

void ptc_tunnel_status_write(ptc_connector_t *c)
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
                t->streams_seen = ptc_tunnel_streams_open(t);
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
        .updated_ms = ptc_tunnel_wall_ms(),
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
            changed = t != NULL && ptc_tunnel_streams_open(t) != t->streams_seen;
        }
    }
    if (changed) {
        ptc_tunnel_status_write(c);
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
            PTC_LOG_UINT("dur_ms", ptc_tunnel_now_ms(c) - c->drain_started_ms),
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
            size_t left = ptc_tunnel_streams_left(t);
            ptc_tunnel_set_reason(t, "drain_timeout", 0,
                                  "%zu stream(s) still running at the drain deadline", left);
            if (c->relay != NULL) {
                ptc_relay_tunnel_cancel(t, PTC_WIRE_CANCEL);
            }
            (void)ptc_tunnel_pump(t);
            ptc_tunnel_close(t, true);
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
    c->drain_started_ms = ptc_tunnel_now_ms(c);
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
                ptc_tunnel_drain(t, "draining", "the connector is shutting down");
            }
        }
    }
    ptc_tunnel_status_write(c);
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
    c->started_wall = ptc_tunnel_wall_ms();
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
    ptc_tunnel_status_write(c);
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
