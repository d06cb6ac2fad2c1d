/* SPDX-License-Identifier: MIT */
/*
 * Plain-HTTP redirect listener (see redirect.h).
 *
 * A connection reads one request head, answers it (301, or the parser's 4xx) with
 * "Connection: close", shuts its write side down once the answer is written, and then reads
 * and drops whatever the client still sends until it closes, or a short linger passes: closing
 * with unread input would reset the connection and could destroy the answer in flight.
 *
 * Each connection owns its TCP handle (from ptc_net_accept) and one timer (head deadline, then
 * the linger); it is freed when both have closed (STYLE §5). The listener object is freed once
 * it is closed and its last connection is gone.
 */
#include "edge/redirect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "common/log.h"
#include "common/net.h"
#include "common/url.h"

#define LISTEN_BACKLOG 511
/* How long a connection lingers after its answer, reading and dropping. */
#define LINGER_MS 2000
#define READ_BUF 4096

typedef struct rconn rconn_t;

struct ptc_redirect {
    ptc_edge_t *edge;
    uint16_t https_port;
    uv_tcp_t **socks;
    size_t sock_cnt;
    rconn_t *conns;
    size_t conn_cnt;
    bool closing;
};

struct rconn {
    ptc_redirect_t *r;
    rconn_t *prev;
    rconn_t *next;
    uv_tcp_t *tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_shutdown_t sd;
    unsigned open_handles;
    bool closing;
    bool answered;
    ptc_http_parser_t *parser;
    char *out;
    uint64_t start_ms;
    ptc_log_ctx_t log;
    char peer_ip[PTC_NET_ADDRSTRLEN];
    char rbuf[READ_BUF];
};

/* ---- the Location ---- */

int ptc_redirect_location(const char *host, size_t host_len, const char *target, size_t target_len,
                          uint16_t https_port, char *out, size_t cap)
{
    char h[PTC_URL_HOST_CAP];
    uint16_t port = 0;
    if (host_len == 0 || ptc_url_parse_authority(host, host_len, h, sizeof(h), &port) != 0) {
        return PTC_EFORMAT;
    }
    if (target_len == 0 || target[0] != '/' || (target_len > 1 && target[1] == '/')) {
        /* Only origin form; "//x" would read as another host in a Location. */
        return PTC_EFORMAT;
    }
    for (size_t i = 0; i < target_len; i++) {
        if ((unsigned char)target[i] < 0x21 || (unsigned char)target[i] > 0x7e) {
            return PTC_EFORMAT;
        }
    }
    bool v6 = strchr(h, ':') != NULL;
    char portbuf[8] = "";
    if (https_port != 443) {
        snprintf(portbuf, sizeof(portbuf), ":%u", (unsigned)https_port);
    }
    int n = snprintf(out, cap, v6 ? "https://[%s]%s%.*s" : "https://%s%s%.*s", h, portbuf,
                     (int)target_len, target);
    if (n < 0 || (size_t)n >= cap) {
        return PTC_ELIMIT;
    }
    return 0;
}

/* ---- connections ---- */

static void redirect_maybe_free(ptc_redirect_t *r)
{
    if (r->closing && r->conns == NULL) {
        free(r->socks);
        free(r);
    }
}

static void rconn_free(rconn_t *c)
{
    ptc_redirect_t *r = c->r;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        r->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    r->conn_cnt--;
    ptc_http_parser_free(c->parser);
    free(c->out);
    free(c);
    redirect_maybe_free(r);
}

static void on_handle_closed(uv_handle_t *h)
{
    rconn_t *c = h->data;
    if (h == (uv_handle_t *)c->tcp) {
        free(c->tcp);
        c->tcp = NULL;
    }
    if (--c->open_handles == 0) {
        rconn_free(c);
    }
}

static void rconn_close(rconn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)c->tcp, on_handle_closed);
}

static void on_timer(uv_timer_t *t)
{
    rconn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *sd, int status)
{
    rconn_t *c = sd->data;
    if (c->closing) {
        return;
    }
    if (status != 0) {
        rconn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
}

static void on_written(uv_write_t *wr, int status)
{
    rconn_t *c = wr->data;
    free(c->out);
    c->out = NULL;
    if (c->closing) {
        return;
    }
    if (status != 0 || uv_shutdown(&c->sd, (uv_stream_t *)c->tcp, on_shutdown) != 0) {
        rconn_close(c);
    }
}

/* Writes the whole answer; the connection closes after it (see the file comment). */
static void answer(rconn_t *c, int status, const char *location, const ptc_http_head_t *h)
{
    c->answered = true;
    ptc_http_header_t hdrs[3];
    size_t n = 0;
    if (location != NULL) {
        hdrs[n++] = (ptc_http_header_t){ptc_slice_str("Location"), ptc_slice_str(location)};
    }
    hdrs[n++] = (ptc_http_header_t){ptc_slice_str("Content-Length"), ptc_slice_str("0")};
    hdrs[n++] = (ptc_http_header_t){ptc_slice_str("Connection"), ptc_slice_str("close")};
    size_t cap = 512 + (location != NULL ? strlen(location) : 0);
    c->out = ptc_xmalloc(cap);
    ssize_t len = ptc_http_format_response_head((uint8_t *)c->out, cap, status,
                                                (ptc_slice_t){NULL, 0}, hdrs, n);
    if (len < 0) {
        rconn_close(c);
        return;
    }
    uint64_t dur = uv_now(c->timer.loop) - c->start_ms;
    if (h != NULL) {
        const uint8_t *q = memchr(h->target.ptr, '?', h->target.len);
        size_t plen = q != NULL ? (size_t)(q - h->target.ptr) : h->target.len;
        PTC_LOG(&c->log, PTC_LOG_INFO, "http_request_done",
                PTC_LOG_PEER("method", h->method.ptr, h->method.len),
                PTC_LOG_PEER("host", h->host.ptr, h->host.len),
                PTC_LOG_PEER("path", h->target.ptr, plen), PTC_LOG_INT("status", status),
                PTC_LOG_UINT("bytes_in", 0), PTC_LOG_UINT("bytes_out", (uint64_t)len),
                PTC_LOG_UINT("dur_ms", dur), PTC_LOG_STR("scheme", "http"),
                PTC_LOG_STR("client_ip", c->peer_ip));
    } else {
        PTC_LOG(&c->log, PTC_LOG_INFO, "http_request_done", PTC_LOG_STR("method", NULL),
                PTC_LOG_INT("status", status), PTC_LOG_UINT("bytes_in", 0),
                PTC_LOG_UINT("bytes_out", (uint64_t)len), PTC_LOG_UINT("dur_ms", dur),
                PTC_LOG_STR("scheme", "http"), PTC_LOG_STR("client_ip", c->peer_ip));
    }
    c->r->edge->counters.requests_total++;
    uv_buf_t buf = uv_buf_init(c->out, (unsigned)len);
    c->wr.data = c;
    c->sd.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)c->tcp, &buf, 1, on_written) != 0) {
        rconn_close(c);
    }
}

static void on_head(rconn_t *c, const ptc_http_head_t *h)
{
    char location[PTC_URL_HOST_CAP + 16 + PTC_HTTP_DEFAULT_MAX_URL_LEN];
    int rc =
        ptc_redirect_location((const char *)h->host.ptr, h->host.len, (const char *)h->target.ptr,
                              h->target.len, c->r->https_port, location, sizeof(location));
    if (rc != 0) {
        PTC_LOG(&c->log, PTC_LOG_INFO, "http_bad_request",
                PTC_LOG_STR("reason", "no redirect target"), PTC_LOG_INT("status", 400),
                PTC_LOG_ERR(rc));
        answer(c, 400, NULL, h);
        return;
    }
    answer(c, 301, location, h);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    rconn_t *c = h->data;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    rconn_t *c = s->data;
    if (c->closing) {
        return;
    }
    if (nread < 0) {
        rconn_close(c);
        return;
    }
    if (c->answered) {
        /* Lingering: what the client still sends is dropped. */
        return;
    }
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t len = (size_t)nread;
    while (!c->answered && !c->closing) {
        ptc_http_event_t ev;
        ssize_t n = ptc_http_parser_feed(c->parser, p, len, &ev);
        if (n < 0) {
            const ptc_http_error_t *e = ptc_http_parser_error(c->parser);
            int status = e != NULL && e->status != 0 ? e->status : 400;
            PTC_LOG(&c->log, PTC_LOG_INFO, "http_bad_request",
                    PTC_LOG_STR("reason", e != NULL ? e->reason : "malformed request"),
                    PTC_LOG_INT("status", status), PTC_LOG_ERR((int)n));
            answer(c, status, NULL, NULL);
            return;
        }
        p += n;
        len -= (size_t)n;
        if (ev.type == PTC_HTTP_EV_HEAD) {
            on_head(c, ev.head);
            return;
        }
        if (ev.type == PTC_HTTP_EV_NONE) {
            return;
        }
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    ptc_redirect_t *r = server->data;
    if (status != 0 || r->closing) {
        return;
    }
    uv_tcp_t *tcp = NULL;
    if (ptc_net_accept(server, &tcp) != 0) {
        return;
    }
    ptc_edge_t *edge = r->edge;
    if (edge->draining || r->conn_cnt >= (size_t)edge->cfg.limits.max_unauthenticated) {
        uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
        return;
    }
    rconn_t *c = ptc_xcalloc(1, sizeof(*c));
    c->r = r;
    c->tcp = tcp;
    tcp->data = c;
    c->open_handles = 2;
    c->start_ms = uv_now(edge->loop);
    ptc_log_ctx_init(&c->log, edge->logger);
    c->log.conn = ++edge->next_conn_id;
    char peer[PTC_NET_ADDRSTRLEN] = "";
    if (ptc_net_peer_name(tcp, peer, sizeof(peer)) == 0) {
        ptc_log_ctx_set_peer(&c->log, peer);
        /* "1.2.3.4:5678" or "[v6]:port" without the port (and brackets). */
        const char *start = peer[0] == '[' ? peer + 1 : peer;
        const char *end = peer[0] == '[' ? strchr(peer, ']') : strrchr(peer, ':');
        int n = end != NULL ? (int)(end - start) : (int)strlen(start);
        snprintf(c->peer_ip, sizeof(c->peer_ip), "%.*s", n, start);
    }
    ptc_http_limits_t lim = {
        .max_head_bytes = (size_t)edge->cfg.limits.max_head_bytes,
        .max_headers = (size_t)edge->cfg.limits.max_headers,
        .max_url_len = (size_t)edge->cfg.limits.max_url_len,
    };
    c->parser = ptc_http_parser_new(PTC_HTTP_REQUEST, &lim);
    c->next = r->conns;
    if (r->conns != NULL) {
        r->conns->prev = c;
    }
    r->conns = c;
    r->conn_cnt++;
    if (uv_timer_init(edge->loop, &c->timer) != 0) {
        /* Without its deadline the connection cannot be bounded: drop it. */
        c->open_handles = 1;
        c->closing = true;
        uv_close((uv_handle_t *)tcp, on_handle_closed);
        return;
    }
    c->timer.data = c;
    uv_timer_start(&c->timer, on_timer, edge->cfg.limits.http_head_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)tcp, on_alloc, on_read) != 0) {
        rconn_close(c);
    }
}

/* ---- start and close ---- */

int ptc_redirect_start(ptc_edge_t *edge, uint16_t https_port, ptc_redirect_t **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    if (edge->cfg.http_listen_cnt == 0) {
        return 0;
    }
    ptc_redirect_t *r = ptc_xcalloc(1, sizeof(*r));
    r->edge = edge;
    r->https_port = https_port;
    r->socks = ptc_xcalloc(edge->cfg.http_listen_cnt, sizeof(*r->socks));
    for (size_t i = 0; i < edge->cfg.http_listen_cnt; i++) {
        const char *spec = edge->cfg.http_listen[i];
        int rc =
            ptc_net_listen_tcp(edge->loop, spec, LISTEN_BACKLOG, on_connection, r, &r->socks[i]);
        if (rc != 0) {
            snprintf(err, errlen, "%s: http_listen[%zu]: cannot listen on %s: %s",
                     edge->config_path, i, spec, ptc_strerror(rc));
            r->sock_cnt = i;
            ptc_redirect_close(r);
            return rc;
        }
        r->sock_cnt = i + 1;
        char name[PTC_NET_ADDRSTRLEN] = "";
        if (ptc_net_sock_name(r->socks[i], name, sizeof(name)) != 0) {
            name[0] = '\0';
        }
        PTC_LOG(&edge->log, PTC_LOG_INFO, "listener_started", PTC_LOG_STR("address", name),
                PTC_LOG_STR("listen", spec), PTC_LOG_STR("scheme", "http"));
    }
    *out = r;
    return 0;
}

void ptc_redirect_close(ptc_redirect_t *r)
{
    if (r == NULL || r->closing) {
        return;
    }
    r->closing = true;
    for (size_t i = 0; i < r->sock_cnt; i++) {
        if (r->socks[i] != NULL) {
            uv_close((uv_handle_t *)r->socks[i], ptc_net_free_handle_cb);
            r->socks[i] = NULL;
        }
    }
    /* Closing unlinks each connection only from its close callbacks, so the walk is safe. */
    for (rconn_t *c = r->conns; c != NULL; c = c->next) {
        rconn_close(c);
    }
    redirect_maybe_free(r);
}
