/* SPDX-License-Identifier: MIT */
/*
 * Public listener (see listener.h). A connection starts as a bare ptc_edge_conn_t owned by
 * this file while TLS runs; when the handshake completes it is handed over to httpd.c or
 * tunnel_srv.c according to ALPN. The tls_stream callbacks stay the ones installed here for
 * the whole life of the connection and dispatch through the head's ops, which is how the
 * counts and the list of open connections stay right whoever owns the connection.
 */
#include "edge/listener.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "edge/httpd.h"
#include "edge/redirect.h"
#include "edge/tunnel_srv.h"
#include "proto/proto.h"

/* How long a graceful close may wait for its last writes (docs/protocol.md §9 rule 7 asks
 * for a short bound). */
#define SHUTDOWN_TIMEOUT_MS 2000
/* Session tickets: rotate keys twice a day. */
#define TICKET_LIFETIME_S 43200
#define LISTEN_BACKLOG 511

/* One peer address with connections still in a handshake. */
typedef struct addr_slot {
    uint64_t key; /* SipHash of the address; 0: empty */
    uint32_t n;
} addr_slot_t;

#define ADDRS_FIRST 64u

struct ptc_listener {
    ptc_edge_t *edge;
    /* Connections in a handshake per peer address (docs/protocol.md §11.7 rule 3), looked up
     * at each accept: open addressing keyed by SipHash-2-4 of the address under a key drawn
     * at start, so chosen addresses cannot pile up in one chain. Two addresses whose 64-bit
     * hashes collide would share one count (a stricter limit for both). */
    addr_slot_t *addrs;
    size_t addr_cap; /* a power of two */
    size_t addr_cnt;
    uint8_t addr_hash_key[crypto_shorthash_KEYBYTES];
    uv_tcp_t **socks;
    uint16_t *ports;
    size_t cnt;
    bool stopped;
    ptc_redirect_t *redirect; /* the plain-HTTP redirect listeners (edge/redirect.h), or NULL */
};

static const char *const alpn_list[] = {PTC_PROTO_ALPN, PTC_ALPN_HTTP1, NULL};

/* ---- connection list and counts ---- */

static uint64_t addr_hash(const ptc_listener_t *l, const char *ip)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)ip, strlen(ip), l->addr_hash_key);
    uint64_t k;
    memcpy(&k, h, sizeof(k));
    return k != 0 ? k : 1;
}

static size_t addr_find(const ptc_listener_t *l, uint64_t key)
{
    size_t mask = l->addr_cap - 1;
    size_t i = (size_t)key & mask;
    while (l->addrs[i].key != 0 && l->addrs[i].key != key) {
        i = (i + 1) & mask;
    }
    return i;
}

static uint32_t addr_count(const ptc_listener_t *l, uint64_t key)
{
    return l->addrs[addr_find(l, key)].n;
}

static void addr_grow(ptc_listener_t *l, size_t cap)
{
    addr_slot_t *old = l->addrs;
    size_t old_cap = l->addr_cap;
    l->addrs = ptc_xcalloc(cap, sizeof(*l->addrs));
    l->addr_cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key != 0) {
            l->addrs[addr_find(l, old[i].key)] = old[i];
        }
    }
    free(old);
}

static void addr_add(ptc_listener_t *l, uint64_t key)
{
    if ((l->addr_cnt + 1) * 2 > l->addr_cap) {
        addr_grow(l, l->addr_cap * 2);
    }
    size_t i = addr_find(l, key);
    if (l->addrs[i].key == 0) {
        l->addrs[i].key = key;
        l->addr_cnt++;
    }
    l->addrs[i].n++;
}

static void addr_remove(ptc_listener_t *l, uint64_t key)
{
    size_t mask = l->addr_cap - 1;
    size_t i = addr_find(l, key);
    if (l->addrs[i].key == 0 || --l->addrs[i].n > 0) {
        return;
    }
    /* Backward-shift deletion: no tombstones, so lookups stay short. The hole at i takes
     * each later entry of the run whose home is not cyclically in (i, j]. */
    for (size_t j = (i + 1) & mask; l->addrs[j].key != 0; j = (j + 1) & mask) {
        size_t home = (size_t)l->addrs[j].key & mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            l->addrs[i] = l->addrs[j];
            i = j;
        }
    }
    l->addrs[i] = (addr_slot_t){0, 0};
    l->addr_cnt--;
    if (l->addr_cnt == 0 && l->addr_cap > ADDRS_FIRST) {
        free(l->addrs);
        l->addrs = ptc_xcalloc(ADDRS_FIRST, sizeof(*l->addrs));
        l->addr_cap = ADDRS_FIRST;
    }
}

static void conn_link(ptc_edge_t *edge, ptc_edge_conn_t *c)
{
    c->prev = NULL;
    c->next = edge->conns;
    if (edge->conns != NULL) {
        edge->conns->prev = c;
    }
    edge->conns = c;
}

static void conn_unlink(ptc_edge_t *edge, ptc_edge_conn_t *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (edge->conns == c) {
        edge->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = NULL;
    c->next = NULL;
}

void ptc_edge_conn_authenticated(ptc_edge_conn_t *c)
{
    if (c->unauthenticated) {
        c->unauthenticated = false;
        c->edge->counters.unauthenticated--;
        if (c->edge->listener != NULL) {
            addr_remove(c->edge->listener, c->peer_key);
        }
    }
}

void ptc_edge_conn_handover(ptc_edge_conn_t *from, ptc_edge_conn_t *to,
                            const ptc_edge_conn_ops_t *ops)
{
    ptc_edge_t *edge = from->edge;
    *to = *from;
    to->ops = ops;
    to->prev = NULL;
    to->next = NULL;
    conn_unlink(edge, from);
    conn_link(edge, to);
    ptc_tls_stream_set_data(to->stream, to);
    free(from);
}

/* Copies the list first: drain and abort may unlink connections (never free them: closing is
 * asynchronous, but a head can be handed over in between). */
static void conns_each(ptc_edge_t *edge, bool abort_now)
{
    size_t cnt = 0;
    for (ptc_edge_conn_t *c = edge->conns; c != NULL; c = c->next) {
        cnt++;
    }
    if (cnt == 0) {
        return;
    }
    ptc_edge_conn_t **all = ptc_xmalloc(cnt * sizeof(*all));
    size_t i = 0;
    for (ptc_edge_conn_t *c = edge->conns; c != NULL; c = c->next) {
        all[i++] = c;
    }
    for (i = 0; i < cnt; i++) {
        /* A connection that closed in the meantime is no longer on the list. */
        bool still = false;
        for (ptc_edge_conn_t *c = edge->conns; c != NULL; c = c->next) {
            if (c == all[i]) {
                still = true;
                break;
            }
        }
        if (!still) {
            continue;
        }
        if (abort_now) {
            all[i]->ops->abort(all[i]);
        } else {
            all[i]->ops->drain(all[i]);
        }
    }
    free(all);
}

void ptc_edge_conns_drain(ptc_edge_t *edge)
{
    conns_each(edge, false);
}

void ptc_edge_conns_abort(ptc_edge_t *edge)
{
    conns_each(edge, true);
}

/* ---- tls_stream callbacks: dispatch to the current owner ---- */

static void tramp_read(ptc_tls_stream_t *s, int status, ptc_slice_t data)
{
    ptc_edge_conn_t *c = ptc_tls_stream_data(s);
    c->ops->on_read(c, status, data);
}

static void tramp_drain(ptc_tls_stream_t *s)
{
    ptc_edge_conn_t *c = ptc_tls_stream_data(s);
    c->ops->on_drain(c);
}

static void tramp_close(ptc_tls_stream_t *s)
{
    ptc_edge_conn_t *c = ptc_tls_stream_data(s);
    ptc_edge_t *edge = c->edge;
    ptc_edge_conn_authenticated(c);
    conn_unlink(edge, c);
    edge->counters.conns--;
    c->stream = NULL;
    c->ops->on_close(c);
    if (edge->draining && edge->conns == NULL && edge->on_drained != NULL) {
        edge->on_drained(edge);
    }
}

/* ---- the TLS handshake phase ---- */

static void hs_on_read(ptc_edge_conn_t *c, int status, ptc_slice_t data)
{
    /* No plaintext is delivered before the handshake completes, and the connection is handed
     * over from within the handshake callback: nothing to do. */
    (void)status;
    (void)data;
    ptc_tls_stream_close(c->stream);
}

static void hs_on_drain(ptc_edge_conn_t *c)
{
    (void)c;
}

static void hs_on_close(ptc_edge_conn_t *c)
{
    free(c);
}

static void hs_close(ptc_edge_conn_t *c)
{
    if (c->stream != NULL) {
        ptc_tls_stream_close(c->stream);
    }
}

static const ptc_edge_conn_ops_t hs_ops = {
    .kind = "tls",
    .on_read = hs_on_read,
    .on_drain = hs_on_drain,
    .on_close = hs_on_close,
    .drain = hs_close,
    .abort = hs_close,
};

static void on_handshake(ptc_tls_stream_t *s, int status)
{
    ptc_edge_conn_t *c = ptc_tls_stream_data(s);
    ptc_edge_t *edge = c->edge;
    ptc_tls_t *tls = ptc_tls_stream_tls(s);
    if (status != 0) {
        ptc_tls_err_t terr;
        ptc_tls_last_error(tls, &terr);
        const char *sni = ptc_tls_sni(tls);
        PTC_LOG(&c->log, PTC_LOG_WARN, "tls_handshake_failed",
                PTC_LOG_STR("reason", terr.reason[0] != '\0' ? terr.reason : ptc_strerror(status)),
                PTC_LOG_STR("sni", sni), PTC_LOG_ERR(status));
        ptc_tls_stream_close(s);
        return;
    }
    if (edge->draining) {
        ptc_tls_stream_close(s);
        return;
    }
    const char *alpn = ptc_tls_alpn(tls);
    PTC_LOG(&c->log, PTC_LOG_DEBUG, "tls_handshake_done", PTC_LOG_STR("alpn", alpn),
            PTC_LOG_STR("sni", ptc_tls_sni(tls)), PTC_LOG_STR("version", ptc_tls_version(tls)),
            PTC_LOG_STR("cipher", ptc_tls_ciphersuite(tls)));
    if (alpn != NULL && strcmp(alpn, PTC_PROTO_ALPN) == 0) {
        ptc_tunnel_srv_accept(c);
    } else {
        ptc_httpd_accept(c);
    }
}

/* ---- accepting ---- */

static void refuse(ptc_edge_t *edge, uv_tcp_t *tcp, const char *reason)
{
    ptc_log_ctx_t log;
    ptc_log_ctx_init(&log, edge->logger);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0 &&
        ptc_log_ctx_set_peer_addr(&log, (struct sockaddr *)&ss) != 0) {
        ptc_log_ctx_set_peer(&log, NULL);
    }
    PTC_LOG(&log, PTC_LOG_WARN, "connection_refused", PTC_LOG_STR("reason", reason));
    edge->counters.refused_total++;
    uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
}

/* "203.0.113.5:443" -> "203.0.113.5", "[2001:db8::1]:443" -> "[2001:db8::1]". */
static void peer_address(const char *peer, char *out, size_t cap)
{
    snprintf(out, cap, "%s", peer);
    char *colon = strrchr(out, ':');
    if (colon != NULL && (out[0] != '[' || (colon > out && colon[-1] == ']'))) {
        *colon = '\0';
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    ptc_listener_t *l = server->data;
    ptc_edge_t *edge = l->edge;
    if (status < 0) {
        PTC_LOG(&edge->log, PTC_LOG_ERROR, "accept_failed", PTC_LOG_ERR(status));
        return;
    }
    uv_tcp_t *tcp = NULL;
    if (ptc_net_accept(server, &tcp) != 0) {
        return;
    }
    if (edge->draining || l->stopped) {
        uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
        return;
    }
    if (edge->counters.conns >= (uint64_t)edge->cfg.limits.max_connections) {
        refuse(edge, tcp, "max_connections");
        return;
    }
    if (edge->counters.unauthenticated >= (uint64_t)edge->cfg.limits.max_unauthenticated) {
        refuse(edge, tcp, "max_unauthenticated");
        return;
    }
    char peer[PTC_NET_ADDRSTRLEN];
    char peer_ip[PTC_NET_ADDRSTRLEN];
    if (ptc_net_peer_name(tcp, peer, sizeof(peer)) != 0) {
        snprintf(peer, sizeof(peer), "unknown");
    }
    peer_address(peer, peer_ip, sizeof(peer_ip));
    uint64_t peer_key = addr_hash(l, peer_ip);
    if (addr_count(l, peer_key) >= (uint64_t)edge->cfg.limits.max_unauthenticated_per_address) {
        refuse(edge, tcp, "max_unauthenticated_per_address");
        return;
    }
    ptc_edge_conn_t *c = ptc_xcalloc(1, sizeof(*c));
    c->ops = &hs_ops;
    c->edge = edge;
    c->accepted_loop_ms = uv_now(edge->loop);
    c->accepted_ms = ptc_edge_now_ms();
    ptc_log_ctx_init(&c->log, edge->logger);
    c->log.conn = ++edge->next_conn_id;
    memcpy(c->peer, peer, sizeof(c->peer));
    memcpy(c->peer_ip, peer_ip, sizeof(c->peer_ip));
    c->peer_key = peer_key;
    ptc_log_ctx_set_peer(&c->log, c->peer);
    ptc_tls_stream_opts_t opts = {
        .handshake_timeout_ms = edge->cfg.limits.handshake_timeout_ms,
        .shutdown_timeout_ms = SHUTDOWN_TIMEOUT_MS,
        .on_handshake = on_handshake,
        .on_read = tramp_read,
        .on_drain = tramp_drain,
        .on_close = tramp_close,
        .data = c,
    };
    int rc = ptc_tls_stream_new(tcp, edge->tls, &opts, &c->stream);
    if (rc != 0) {
        /* The stream closed the TCP handle itself. */
        PTC_LOG(&c->log, PTC_LOG_ERROR, "connection_setup_failed", PTC_LOG_ERR(rc));
        free(c);
        return;
    }
    conn_link(edge, c);
    c->unauthenticated = true;
    addr_add(l, peer_key);
    edge->counters.conns++;
    edge->counters.unauthenticated++;
    edge->counters.conns_total++;
    PTC_LOG(&c->log, PTC_LOG_DEBUG, "connection_accepted", PTC_LOG_END);
}

/* ---- certificates ---- */

/*
 * The custom-domain certificates of the state go in first, so that an uploaded certificate
 * wins over the default one for a name both cover (a later entry never displaces an earlier
 * one); the default certificate is the one served without SNI or for unknown names.
 */
static int build_certs(ptc_edge_t *edge, ptc_tls_certs_t **out, char *err, size_t errlen)
{
    *out = NULL;
    ptc_tls_certs_t *certs = ptc_tls_certs_new();
    ptc_tls_err_t terr = {0};
    size_t n = edge->state != NULL ? ptc_state_cert_count(edge->state) : 0;
    for (size_t i = 0; i < n; i++) {
        const ptc_cert_t *crt = ptc_state_cert_at(edge->state, i);
        memset(&terr, 0, sizeof(terr));
        int rc = ptc_tls_certs_add_pem(certs, crt->cert_pem, strlen(crt->cert_pem), crt->key_pem,
                                       strlen(crt->key_pem), false, &terr);
        if (rc != 0) {
            PTC_LOG(&edge->log, PTC_LOG_ERROR, "cert_load_failed", PTC_LOG_STR("cert", crt->id),
                    PTC_LOG_STR("reason", terr.reason), PTC_LOG_ERR(rc));
        }
    }
    memset(&terr, 0, sizeof(terr));
    int rc = ptc_tls_certs_add_files(certs, edge->cfg.tls.cert, edge->cfg.tls.key, true, &terr);
    if (rc != 0) {
        snprintf(err, errlen, "%s: tls.cert %s, tls.key %s: %s", edge->config_path,
                 edge->cfg.tls.cert, edge->cfg.tls.key,
                 terr.reason[0] != '\0' ? terr.reason : ptc_strerror(rc));
        ptc_tls_certs_unref(certs);
        return rc;
    }
    *out = certs;
    return 0;
}

int ptc_listener_reload_certs(ptc_edge_t *edge)
{
    char err[1024];
    ptc_tls_certs_t *certs = NULL;
    int rc = build_certs(edge, &certs, err, sizeof(err));
    if (rc != 0) {
        PTC_LOG(&edge->log, PTC_LOG_ERROR, "certs_reload_failed", PTC_LOG_STR("reason", err),
                PTC_LOG_ERR(rc));
        return rc;
    }
    rc = ptc_tls_config_set_certs(edge->tls, certs);
    size_t cnt = ptc_tls_certs_count(certs);
    ptc_tls_certs_unref(certs);
    if (rc != 0) {
        PTC_LOG(&edge->log, PTC_LOG_ERROR, "certs_reload_failed", PTC_LOG_ERR(rc));
        return rc;
    }
    PTC_LOG(&edge->log, PTC_LOG_INFO, "certs_reloaded", PTC_LOG_UINT("certs", cnt));
    return 0;
}

static void on_state_change(void *data, ptc_state_kind_t kind, ptc_state_op_t op, const char *id)
{
    (void)op;
    (void)id;
    ptc_edge_t *edge = data;
    if (kind == PTC_STATE_CERT && edge->tls != NULL && ptc_listener_reload_certs(edge) != 0) {
        /* Logged by the reload; the previous certificates stay in force. */
        return;
    }
}

/* ---- start and stop ---- */

uint16_t ptc_listener_port(const ptc_edge_t *edge, size_t i)
{
    const ptc_listener_t *l = edge->listener;
    return l != NULL && i < l->cnt ? l->ports[i] : 0;
}

static void close_socks(ptc_listener_t *l)
{
    for (size_t i = 0; i < l->cnt; i++) {
        if (l->socks[i] != NULL) {
            uv_close((uv_handle_t *)l->socks[i], ptc_net_free_handle_cb);
            l->socks[i] = NULL;
        }
    }
}

int ptc_listener_start(ptc_edge_t *edge, char *err, size_t errlen)
{
    ptc_tls_certs_t *certs = NULL;
    int rc = build_certs(edge, &certs, err, errlen);
    if (rc != 0) {
        return rc;
    }
    ptc_tls_server_opts_t opts = {
        .certs = certs,
        .alpn = alpn_list,
        .ticket_lifetime_s = TICKET_LIFETIME_S,
    };
    ptc_tls_err_t terr = {0};
    rc = ptc_tls_server_config_new(&opts, &edge->tls, &terr);
    ptc_tls_certs_unref(certs);
    if (rc != 0) {
        snprintf(err, errlen, "TLS setup failed: %s", terr.reason);
        return rc;
    }

    ptc_listener_t *l = ptc_xcalloc(1, sizeof(*l));
    l->edge = edge;
    l->addrs = ptc_xcalloc(ADDRS_FIRST, sizeof(*l->addrs));
    l->addr_cap = ADDRS_FIRST;
    randombytes_buf(l->addr_hash_key, sizeof(l->addr_hash_key));
    l->cnt = edge->cfg.listen_cnt;
    l->socks = ptc_xcalloc(l->cnt, sizeof(*l->socks));
    l->ports = ptc_xcalloc(l->cnt, sizeof(*l->ports));
    edge->listener = l;
    for (size_t i = 0; i < l->cnt; i++) {
        const char *spec = edge->cfg.listen[i];
        rc = ptc_net_listen_tcp(edge->loop, spec, LISTEN_BACKLOG, on_connection, l, &l->socks[i]);
        if (rc != 0) {
            snprintf(err, errlen, "%s: listen[%zu]: cannot listen on %s: %s", edge->config_path, i,
                     spec, ptc_strerror(rc));
            goto fail;
        }
        char name[PTC_NET_ADDRSTRLEN] = "";
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        if (uv_tcp_getsockname(l->socks[i], (struct sockaddr *)&ss, &len) == 0) {
            if (ss.ss_family == AF_INET) {
                l->ports[i] = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            } else if (ss.ss_family == AF_INET6) {
                l->ports[i] = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            }
            if (ptc_net_format_addr((struct sockaddr *)&ss, name, sizeof(name)) != 0) {
                name[0] = '\0';
            }
        }
        PTC_LOG(&edge->log, PTC_LOG_INFO, "listener_started", PTC_LOG_STR("address", name),
                PTC_LOG_STR("listen", spec), PTC_LOG_UINT("port", l->ports[i]));
    }
    rc = ptc_redirect_start(edge, l->ports[0], &l->redirect, err, errlen);
    if (rc != 0) {
        goto fail;
    }
    if (edge->state != NULL) {
        ptc_state_observe(edge->state, on_state_change, edge);
    }
    return 0;

fail:
    close_socks(l);
    l->stopped = true;
    return rc;
}

void ptc_listener_stop(ptc_edge_t *edge)
{
    ptc_listener_t *l = edge->listener;
    if (l == NULL || l->stopped) {
        return;
    }
    l->stopped = true;
    close_socks(l);
    ptc_redirect_close(l->redirect);
    l->redirect = NULL;
    if (edge->state != NULL) {
        ptc_state_unobserve(edge->state, on_state_change, edge);
    }
}

void ptc_listener_free(ptc_edge_t *edge)
{
    ptc_listener_t *l = edge->listener;
    if (l != NULL) {
        free(l->socks);
        free(l->ports);
        free(l->addrs);
        free(l);
        edge->listener = NULL;
    }
    ptc_tls_config_unref(edge->tls);
    edge->tls = NULL;
}
