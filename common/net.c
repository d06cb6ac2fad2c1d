/* SPDX-License-Identifier: MIT */
/*
 * Networking helpers (see net.h). The dial object owns a deadline timer and, one at a time,
 * the TCP handle of the address being tried; failed attempts are closed and the next
 * address gets a fresh handle (a handle whose connect failed cannot be reused). The user
 * callback runs from complete() only, guarded by `done`; the object is freed once its timer
 * and every attempt are closed and no request is outstanding.
 */
#include "common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing and formatting ---- */

static int parse_port(const char *p, uint16_t *out)
{
    if (*p == '\0') {
        return PTC_EFORMAT;
    }
    unsigned long v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return PTC_EFORMAT;
        }
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535) {
            return PTC_EFORMAT;
        }
    }
    *out = (uint16_t)v;
    return 0;
}

static int copy_host(ptc_net_hostport_t *out, const char *p, size_t len)
{
    if (len > PTC_NET_HOST_MAX) {
        return PTC_EFORMAT;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '[' || c == ']' || c == '/') {
            return PTC_EFORMAT;
        }
    }
    memcpy(out->host, p, len);
    out->host[len] = '\0';
    return 0;
}

int ptc_net_parse_hostport(const char *spec, ptc_net_hostport_t *out)
{
    memset(out, 0, sizeof(*out));
    if (spec == NULL || *spec == '\0') {
        return PTC_EFORMAT;
    }
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':' || close == spec + 1) {
            return PTC_EFORMAT;
        }
        size_t len = (size_t)(close - spec - 1);
        char tmp[INET6_ADDRSTRLEN];
        struct in6_addr a;
        if (len >= sizeof(tmp)) {
            return PTC_EFORMAT;
        }
        memcpy(tmp, spec + 1, len);
        tmp[len] = '\0';
        if (inet_pton(AF_INET6, tmp, &a) != 1) {
            return PTC_EFORMAT;
        }
        memcpy(out->host, tmp, len + 1);
        return parse_port(close + 2, &out->port);
    }
    const char *colon = strchr(spec, ':');
    if (colon == NULL) {
        return parse_port(spec, &out->port);
    }
    if (strchr(colon + 1, ':') != NULL) {
        return PTC_EFORMAT; /* an IPv6 address needs brackets */
    }
    int rc = copy_host(out, spec, (size_t)(colon - spec));
    if (rc != 0) {
        return rc;
    }
    return parse_port(colon + 1, &out->port);
}

int ptc_net_format_addr(const struct sockaddr *sa, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        n = snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        n = snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        if (cap > 0) {
            buf[0] = '\0';
        }
        return UV_EAFNOSUPPORT;
    }
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0) {
            buf[0] = '\0';
        }
        return UV_ENOSPC;
    }
    return 0;
}

int ptc_net_peer_name(const uv_tcp_t *tcp, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    int rc = uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len);
    if (rc != 0) {
        if (cap > 0) {
            buf[0] = '\0';
        }
        return rc;
    }
    return ptc_net_format_addr((const struct sockaddr *)&ss, buf, cap);
}

int ptc_net_sock_name(const uv_tcp_t *tcp, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    int rc = uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len);
    if (rc != 0) {
        if (cap > 0) {
            buf[0] = '\0';
        }
        return rc;
    }
    return ptc_net_format_addr((const struct sockaddr *)&ss, buf, cap);
}

void ptc_net_free_handle_cb(uv_handle_t *h)
{
    free(h);
}

/* ---- listening and accepting ---- */

int ptc_net_listen_tcp(uv_loop_t *loop, const char *spec, int backlog, uv_connection_cb cb,
                       void *data, uv_tcp_t **out)
{
    *out = NULL;
    ptc_net_hostport_t hp;
    int rc = ptc_net_parse_hostport(spec, &hp);
    if (rc != 0) {
        return rc;
    }
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)hp.port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    /* Listeners are made at start-up, where a synchronous lookup (no callback) is fine. */
    uv_getaddrinfo_t req;
    rc = uv_getaddrinfo(loop, &req, NULL, hp.host[0] != '\0' ? hp.host : "0.0.0.0", port, &hints);
    if (rc != 0) {
        return PTC_EDNS;
    }
    uv_tcp_t *tcp = ptc_xmalloc(sizeof(*tcp));
    rc = uv_tcp_init(loop, tcp);
    if (rc != 0) {
        free(tcp);
        uv_freeaddrinfo(req.addrinfo);
        return rc;
    }
    tcp->data = data;
    rc = uv_tcp_bind(tcp, req.addrinfo->ai_addr, 0);
    uv_freeaddrinfo(req.addrinfo);
    if (rc == 0) {
        /* Accepted sockets inherit TCP_NODELAY from the listener on Linux; ptc_net_accept
         * sets it as well, for the platforms where they do not. */
        (void)uv_tcp_nodelay(tcp, 1);
        rc = uv_listen((uv_stream_t *)tcp, backlog, cb);
    }
    if (rc != 0) {
        uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
        return rc;
    }
    *out = tcp;
    return 0;
}

int ptc_net_accept(uv_stream_t *server, uv_tcp_t **out)
{
    *out = NULL;
    uv_tcp_t *tcp = ptc_xmalloc(sizeof(*tcp));
    int rc = uv_tcp_init(server->loop, tcp);
    if (rc != 0) {
        free(tcp);
        return rc;
    }
    tcp->data = NULL;
    rc = uv_accept(server, (uv_stream_t *)tcp);
    if (rc == 0) {
        rc = uv_tcp_nodelay(tcp, 1);
    }
    if (rc != 0) {
        uv_close((uv_handle_t *)tcp, ptc_net_free_handle_cb);
        return rc;
    }
    *out = tcp;
    return 0;
}

/* ---- dialing ---- */

struct ptc_net_dial {
    uv_loop_t *loop;
    uv_getaddrinfo_t gai;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_tcp_t *tcp; /* the attempt in progress */
    struct addrinfo *res;
    struct addrinfo *next;
    ptc_net_dial_cb cb;
    void *data;
    unsigned open_handles; /* the timer and attempts not yet closed */
    bool resolving;        /* the getaddrinfo request is outstanding */
    bool connecting;       /* the connect request is outstanding */
    bool cancelled;
    bool done; /* the user callback ran (or is running) */
    int last_err;
};

static void maybe_free(ptc_net_dial_t *d)
{
    if (d->done && d->open_handles == 0 && !d->resolving && !d->connecting) {
        uv_freeaddrinfo(d->res);
        free(d);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    ptc_net_dial_t *d = h->data;
    d->open_handles--;
    maybe_free(d);
}

static void on_attempt_closed(uv_handle_t *h)
{
    ptc_net_dial_t *d = h->data;
    free(h);
    d->open_handles--;
    maybe_free(d);
}

static void close_attempt(ptc_net_dial_t *d)
{
    uv_close((uv_handle_t *)d->tcp, on_attempt_closed);
    d->tcp = NULL;
}

/* Runs the user callback once, then releases everything still held. */
static void complete(ptc_net_dial_t *d, int status, uv_tcp_t *tcp)
{
    d->done = true;
    uv_timer_stop(&d->timer);
    d->cb(d, status, tcp);
    if (d->resolving) {
        /* If the lookup already runs in the thread pool this fails, and on_resolved
         * arrives later with a result that is simply dropped. */
        (void)uv_cancel((uv_req_t *)&d->gai);
    }
    if (d->tcp != NULL) {
        close_attempt(d); /* a pending connect gets UV_ECANCELED */
    }
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

static void on_connect(uv_connect_t *req, int status);

static void try_next(ptc_net_dial_t *d)
{
    while (d->next != NULL) {
        struct addrinfo *ai = d->next;
        d->next = ai->ai_next;
        uv_tcp_t *tcp = ptc_xmalloc(sizeof(*tcp));
        int rc = uv_tcp_init(d->loop, tcp);
        if (rc != 0) {
            free(tcp);
            d->last_err = rc;
            continue;
        }
        tcp->data = d;
        d->open_handles++;
        d->tcp = tcp;
        /* Applied when libuv creates the socket inside uv_tcp_connect. */
        (void)uv_tcp_nodelay(tcp, 1);
        rc = uv_tcp_connect(&d->connect_req, tcp, ai->ai_addr, on_connect);
        if (rc == 0) {
            d->connecting = true;
            return;
        }
        d->last_err = rc;
        close_attempt(d);
    }
    complete(d, d->last_err != 0 ? d->last_err : PTC_EDNS, NULL);
}

static void on_connect(uv_connect_t *req, int status)
{
    ptc_net_dial_t *d = req->data;
    d->connecting = false;
    if (d->done) {
        /* Cancelled or timed out: the attempt is already closing. */
        maybe_free(d);
        return;
    }
    if (status == 0) {
        uv_tcp_t *tcp = d->tcp;
        d->tcp = NULL;
        d->open_handles--; /* it changes owner */
        tcp->data = NULL;
        complete(d, 0, tcp);
        return;
    }
    d->last_err = status;
    close_attempt(d);
    try_next(d);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ptc_net_dial_t *d = req->data;
    d->resolving = false;
    if (d->done) {
        uv_freeaddrinfo(res);
        maybe_free(d);
        return;
    }
    if (status != 0) {
        d->last_err = status;
        complete(d, status == UV_EAI_CANCELED ? UV_ECANCELED : PTC_EDNS, NULL);
        return;
    }
    d->res = res;
    d->next = res;
    try_next(d);
}

static void on_deadline(uv_timer_t *timer)
{
    ptc_net_dial_t *d = timer->data;
    if (!d->done) {
        complete(d, d->cancelled ? UV_ECANCELED : PTC_ETIMEOUT, NULL);
    }
}

int ptc_net_dial(uv_loop_t *loop, const char *host, uint16_t port, uint64_t timeout_ms,
                 ptc_net_dial_cb cb, void *data, ptc_net_dial_t **out)
{
    *out = NULL;
    if (host == NULL || host[0] == '\0' || port == 0 || cb == NULL) {
        return UV_EINVAL;
    }
    ptc_net_dial_t *d = ptc_xcalloc(1, sizeof(*d));
    d->loop = loop;
    d->cb = cb;
    d->data = data;
    d->gai.data = d;
    d->connect_req.data = d;
    int rc = uv_timer_init(loop, &d->timer);
    if (rc != 0) {
        free(d);
        return rc;
    }
    d->timer.data = d;
    d->open_handles = 1;
    char port_str[8];
    snprintf(port_str, sizeof(port_str), "%u", (unsigned)port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = uv_getaddrinfo(loop, &d->gai, on_resolved, host, port_str, &hints);
    if (rc != 0) {
        /* No callback for an error return: close quietly. */
        d->done = true;
        uv_close((uv_handle_t *)&d->timer, on_timer_closed);
        return rc;
    }
    d->resolving = true;
    if (timeout_ms != 0) {
        uv_timer_start(&d->timer, on_deadline, timeout_ms, 0);
    }
    *out = d;
    return 0;
}

void *ptc_net_dial_data(const ptc_net_dial_t *d)
{
    return d->data;
}

int ptc_net_dial_last_error(const ptc_net_dial_t *d)
{
    return d->last_err;
}

void ptc_net_dial_cancel(ptc_net_dial_t *d)
{
    if (d->done || d->cancelled) {
        return;
    }
    d->cancelled = true;
    /* The callback runs from the timer so that it never runs inside this call. */
    uv_timer_start(&d->timer, on_deadline, 0, 0);
}
