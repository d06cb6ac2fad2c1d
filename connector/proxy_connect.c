/* SPDX-License-Identifier: MIT */
/*
 * HTTP CONNECT through a proxy (see proxy_connect.h). The pure half formats the request and
 * reads the answer with common/http's response parser (told the request was CONNECT, so a
 * 2xx ends the head and switches to the tunnel). The asynchronous half is one object that
 * owns a deadline timer and, after the dial, the TCP handle: it writes the request, reads
 * until the answer head is complete, then hands the handle over. The user callback runs
 * from complete() only, guarded by `done`; the object is freed once its handles are closed
 * and its write request has finished (STYLE §5).
 */
#include "connector/proxy_connect.h"

#include <ctype.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "common/log.h"
#include "common/net.h"
#include "common/url.h"

/* ---- parsing the proxy URL ---- */

static int fail_msg(char *err, size_t errlen, int code, const char *msg)
{
    if (errlen > 0) {
        snprintf(err, errlen, "%s", msg);
    }
    return code;
}

int ptc_proxy_parse(const char *url, ptc_proxy_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (errlen > 0) {
        err[0] = '\0';
    }
    if (url == NULL || url[0] == '\0') {
        return fail_msg(err, errlen, PTC_EFORMAT, "expected http://[user:password@]host:port");
    }
    /* A bare "host:port" is common in https_proxy; read it as http. */
    char buf[2048];
    const char *text = url;
    if (strstr(url, "://") == NULL) {
        if (snprintf(buf, sizeof(buf), "http://%s", url) >= (int)sizeof(buf)) {
            return fail_msg(err, errlen, PTC_EFORMAT, "the proxy URL is too long");
        }
        text = buf;
    }
    ptc_url_t u;
    char uerr[256];
    int rc = ptc_url_parse(text, PTC_URL_USERINFO, &u, uerr, sizeof(uerr));
    if (text == buf) {
        sodium_memzero(buf, sizeof(buf));
    }
    if (rc != 0) {
        /* The parser's reason names no part of the URL, so no credential leaks here. */
        if (errlen > 0) {
            snprintf(err, errlen, "expected http://[user:password@]host:port (%s)", uerr);
        }
        return PTC_EFORMAT;
    }
    rc = PTC_EFORMAT;
    if (strcmp(u.scheme, "http") != 0) {
        fail_msg(err, errlen, 0,
                 "expected http://[user:password@]host:port (only http proxies are supported)");
        goto out;
    }
    if (strcmp(u.path, "/") != 0 || u.query != NULL) {
        fail_msg(err, errlen, 0, "expected http://[user:password@]host:port (no path or query)");
        goto out;
    }
    if (strlen(u.host) >= sizeof(out->host)) {
        fail_msg(err, errlen, 0, "the proxy host name is too long");
        goto out;
    }
    snprintf(out->host, sizeof(out->host), "%s", u.host);
    out->port = u.port;
    if (ptc_url_format_authority(out->host, out->port, out->display, sizeof(out->display)) != 0) {
        fail_msg(err, errlen, 0, "the proxy host name is too long");
        goto out;
    }
    if (u.user != NULL) {
        size_t ulen = strlen(u.user);
        size_t plen = u.password != NULL ? strlen(u.password) : 0;
        if (memchr(u.user, ':', ulen) != NULL) {
            fail_msg(err, errlen, 0, "the proxy user name may not contain ':'");
            goto out;
        }
        size_t raw_len = ulen + 1 + plen;
        char *raw = ptc_xmalloc(raw_len + 1);
        memcpy(raw, u.user, ulen);
        raw[ulen] = ':';
        if (plen > 0) {
            memcpy(raw + ulen + 1, u.password, plen);
        }
        size_t b64_cap = sodium_base64_encoded_len(raw_len, sodium_base64_VARIANT_ORIGINAL);
        out->basic = ptc_xmalloc(b64_cap);
        sodium_bin2base64(out->basic, b64_cap, (const unsigned char *)raw, raw_len,
                          sodium_base64_VARIANT_ORIGINAL);
        sodium_memzero(raw, raw_len + 1);
        free(raw);
    }
    rc = 0;

out:
    if (u.user != NULL) {
        sodium_memzero(u.user, strlen(u.user));
    }
    if (u.password != NULL) {
        sodium_memzero(u.password, strlen(u.password));
    }
    ptc_url_dispose(&u);
    if (rc != 0) {
        ptc_proxy_dispose(out);
    }
    return rc;
}

void ptc_proxy_dispose(ptc_proxy_t *p)
{
    if (p->basic != NULL) {
        sodium_memzero(p->basic, strlen(p->basic));
        free(p->basic);
    }
    memset(p, 0, sizeof(*p));
}

const char *ptc_proxy_from_env(void)
{
    const char *v = getenv("https_proxy");
    if (v == NULL || v[0] == '\0') {
        v = getenv("HTTPS_PROXY");
    }
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* ---- NO_PROXY ---- */

static bool ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) {
        return false;
    }
    for (size_t i = 0; i < alen; i++) {
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) {
            return false;
        }
    }
    return true;
}

/* One NO_PROXY element (trimmed, non-empty) against the host. */
static bool bypass_one(const char *e, size_t elen, const char *host, uint16_t port)
{
    if (elen == 1 && e[0] == '*') {
        return true;
    }
    /* An optional ":port" (not inside an IPv6 literal, which has several colons). */
    const char *colon = memchr(e, ':', elen);
    if (colon != NULL && memchr(colon + 1, ':', elen - (size_t)(colon - e) - 1) == NULL &&
        e[0] != '[') {
        unsigned long p = strtoul(colon + 1, NULL, 10);
        if (p != port) {
            return false;
        }
        elen = (size_t)(colon - e);
    }
    if (elen >= 2 && e[0] == '[' && e[elen - 1] == ']') {
        e++;
        elen -= 2;
    }
    if (elen > 0 && e[0] == '.') {
        e++;
        elen--;
    }
    size_t hlen = strlen(host);
    if (elen == 0 || elen > hlen) {
        return false;
    }
    if (ieq(e, elen, host, hlen)) {
        return true;
    }
    /* A domain suffix: the host ends with "." + element. */
    return hlen > elen && host[hlen - elen - 1] == '.' && ieq(e, elen, host + hlen - elen, elen);
}

bool ptc_proxy_bypass(const char *no_proxy, const char *host, uint16_t port)
{
    if (no_proxy == NULL || host == NULL) {
        return false;
    }
    const char *p = no_proxy;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        size_t n = len;
        while (n > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
            n--;
        }
        if (n > 0 && bypass_one(s, n, host, port)) {
            return true;
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    return false;
}

/* ---- the CONNECT request ---- */

/* A host name or IP literal: nothing that could end the request line or a header. */
static bool valid_target_host(const char *host)
{
    size_t len = strlen(host);
    if (len == 0 || len > 253) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_' && c != ':') {
            return false;
        }
    }
    return true;
}

ssize_t ptc_proxy_format_connect(const ptc_proxy_t *p, const char *host, uint16_t port,
                                 const char *agent, char *buf, size_t cap)
{
    if (host == NULL || !valid_target_host(host) || port == 0) {
        return PTC_EFORMAT;
    }
    if (agent != NULL && !ptc_http_is_field_value(ptc_slice_str(agent))) {
        return PTC_EFORMAT;
    }
    char authority[300];
    if (ptc_url_format_authority(host, port, authority, sizeof(authority)) != 0) {
        return PTC_EFORMAT;
    }
    int n = snprintf(buf, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", authority, authority);
    if (n < 0 || (size_t)n >= cap) {
        return PTC_ELIMIT;
    }
    size_t len = (size_t)n;
    if (p != NULL && p->basic != NULL) {
        n = snprintf(buf + len, cap - len, "Proxy-Authorization: Basic %s\r\n", p->basic);
        if (n < 0 || (size_t)n >= cap - len) {
            return PTC_ELIMIT;
        }
        len += (size_t)n;
    }
    if (agent != NULL) {
        n = snprintf(buf + len, cap - len, "User-Agent: %s\r\n", agent);
        if (n < 0 || (size_t)n >= cap - len) {
            return PTC_ELIMIT;
        }
        len += (size_t)n;
    }
    if (cap - len < 3) {
        return PTC_ELIMIT;
    }
    memcpy(buf + len, "\r\n", 3);
    return (ssize_t)(len + 2);
}

/* ---- the proxy's answer ---- */

static const uint8_t *find_head_end(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
            return p + i + 4;
        }
    }
    return NULL;
}

int ptc_proxy_parse_reply(const uint8_t *p, size_t len, ptc_proxy_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t scan = len < PTC_PROXY_MAX_REPLY ? len : PTC_PROXY_MAX_REPLY;
    const uint8_t *end = find_head_end(p, scan);
    if (end == NULL) {
        return len >= PTC_PROXY_MAX_REPLY ? PTC_ELIMIT : PTC_EINCOMPLETE;
    }
    size_t head_len = (size_t)(end - p);
    ptc_http_limits_t lim = {.max_head_bytes = PTC_PROXY_MAX_REPLY, .max_headers = 100};
    ptc_http_parser_t *parser = ptc_http_parser_new(PTC_HTTP_RESPONSE, &lim);
    ptc_http_parser_set_request_method(parser, ptc_slice_str("CONNECT"));
    ptc_http_event_t ev;
    ssize_t n = ptc_http_parser_feed(parser, p, head_len, &ev);
    int rc = PTC_EHTTP;
    if (n >= 0 && ev.type == PTC_HTTP_EV_HEAD) {
        out->status = ev.head->status;
        ptc_log_escape(out->reason, sizeof(out->reason), ev.head->reason.ptr, ev.head->reason.len,
                       96);
        out->head_len = head_len;
        rc = 0;
    }
    ptc_http_parser_free(parser);
    return rc;
}

/* ---- asynchronous connect ---- */

struct ptc_proxy_conn {
    uv_loop_t *loop;
    uv_timer_t timer; /* the deadline; also defers a cancel */
    uv_tcp_t *tcp;    /* after the dial, until handed over */
    uv_write_t write_req;
    ptc_net_dial_t *dial; /* while dialing */
    ptc_proxy_conn_cb cb;
    void *data;
    ptc_buf_t in;
    char request[2048]; /* holds the credentials: wiped once written */
    size_t request_len;
    char target[300];  /* "host:port" for messages */
    char display[300]; /* the proxy's "host:port" */
    char message[512];
    unsigned open_handles;
    bool writing;
    bool reading;
    bool done;
    bool cancelled;
    int pending_status; /* set when the deadline or a cancel fires */
};

static void release(ptc_proxy_conn_t *pc)
{
    sodium_memzero(pc->request, sizeof(pc->request));
    ptc_buf_dispose(&pc->in);
    free(pc);
}

static void maybe_release(ptc_proxy_conn_t *pc)
{
    if (pc->done && pc->open_handles == 0 && !pc->writing && pc->dial == NULL) {
        release(pc);
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    ptc_proxy_conn_t *pc = h->data;
    pc->open_handles--;
    maybe_release(pc);
}

static void on_tcp_closed(uv_handle_t *h)
{
    ptc_proxy_conn_t *pc = h->data;
    free(h);
    pc->open_handles--;
    maybe_release(pc);
}

/* Runs the user callback once, then lets the object go. On success the TCP handle leaves. */
static void complete(ptc_proxy_conn_t *pc, int status, ptc_slice_t leftover)
{
    if (pc->done) {
        return;
    }
    pc->done = true;
    uv_tcp_t *handed = NULL;
    if (pc->tcp != NULL) {
        if (pc->reading) {
            uv_read_stop((uv_stream_t *)pc->tcp);
            pc->reading = false;
        }
        if (status == 0) {
            handed = pc->tcp;
            handed->data = NULL;
            pc->tcp = NULL;
        } else {
            pc->tcp->data = pc;
            pc->open_handles++;
            uv_close((uv_handle_t *)pc->tcp, on_tcp_closed);
            pc->tcp = NULL;
        }
    }
    if (status == 0) {
        pc->message[0] = '\0';
    }
    pc->cb(pc, status, handed, leftover);
    uv_close((uv_handle_t *)&pc->timer, on_timer_closed);
}

static void fail(ptc_proxy_conn_t *pc, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(ptc_proxy_conn_t *pc, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pc->message, sizeof(pc->message), fmt, ap);
    va_end(ap);
    ptc_slice_t none = {NULL, 0};
    complete(pc, status, none);
}

static void on_deadline(uv_timer_t *t)
{
    ptc_proxy_conn_t *pc = t->data;
    int status = pc->cancelled ? UV_ECANCELED : PTC_ETIMEOUT;
    if (pc->dial != NULL) {
        /* The dial reports back through on_dial, which completes. */
        pc->pending_status = status;
        ptc_net_dial_cancel(pc->dial);
        return;
    }
    if (status == UV_ECANCELED) {
        fail(pc, status, "connection through proxy %s cancelled", pc->display);
    } else {
        fail(pc, status, "proxy %s did not answer CONNECT %s in time", pc->display, pc->target);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ptc_proxy_conn_t *pc = h->data;
    size_t avail = 0;
    uint8_t *p = ptc_buf_try_reserve(&pc->in, 4096, &avail);
    *buf = uv_buf_init((char *)p, p != NULL ? (unsigned)avail : 0);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    ptc_proxy_conn_t *pc = stream->data;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        fail(pc, nread == UV_EOF ? PTC_EHTTP : (int)nread,
             "proxy %s closed the connection before answering CONNECT %s%s%s", pc->display,
             pc->target, nread == UV_EOF ? "" : ": ",
             nread == UV_EOF ? "" : ptc_strerror((int)nread));
        return;
    }
    ptc_buf_commit(&pc->in, (size_t)nread);
    ptc_proxy_reply_t reply;
    int rc = ptc_proxy_parse_reply(ptc_buf_data(&pc->in), pc->in.len, &reply);
    if (rc == PTC_EINCOMPLETE) {
        return;
    }
    if (rc != 0) {
        fail(pc, PTC_EHTTP, "proxy %s sent a malformed answer to CONNECT %s", pc->display,
             pc->target);
        return;
    }
    if (reply.status < 200 || reply.status > 299) {
        fail(pc, reply.status == 407 ? PTC_EAUTH : PTC_EPROTO,
             "proxy %s answered %d %s to CONNECT %s", pc->display, reply.status, reply.reason,
             pc->target);
        return;
    }
    if (pc->writing) {
        /* Cannot happen in practice (the proxy answers after reading the request), but the
         * handle must not change owner with a write outstanding. */
        fail(pc, PTC_EHTTP, "proxy %s answered CONNECT %s before the request was sent", pc->display,
             pc->target);
        return;
    }
    ptc_slice_t leftover = {ptc_buf_data(&pc->in) + reply.head_len, pc->in.len - reply.head_len};
    uv_timer_stop(&pc->timer);
    complete(pc, 0, leftover);
}

static void on_write(uv_write_t *req, int status)
{
    ptc_proxy_conn_t *pc = req->data;
    pc->writing = false;
    sodium_memzero(pc->request, sizeof(pc->request));
    if (pc->done) {
        maybe_release(pc);
        return;
    }
    if (status < 0) {
        fail(pc, status, "cannot send CONNECT %s to proxy %s: %s", pc->target, pc->display,
             ptc_strerror(status));
    }
}

static void on_dial(ptc_net_dial_t *d, int status, uv_tcp_t *tcp)
{
    ptc_proxy_conn_t *pc = ptc_net_dial_data(d);
    pc->dial = NULL;
    if (pc->done) {
        maybe_release(pc);
        return;
    }
    if (status != 0) {
        if (status == UV_ECANCELED && pc->pending_status == PTC_ETIMEOUT) {
            status = PTC_ETIMEOUT;
        }
        if (status == UV_ECANCELED) {
            fail(pc, status, "connection through proxy %s cancelled", pc->display);
        } else {
            fail(pc, status, "cannot connect to proxy %s: %s", pc->display, ptc_strerror(status));
        }
        return;
    }
    pc->tcp = tcp;
    tcp->data = pc;
    uv_buf_t b = uv_buf_init(pc->request, (unsigned)pc->request_len);
    pc->write_req.data = pc;
    int rc = uv_write(&pc->write_req, (uv_stream_t *)tcp, &b, 1, on_write);
    if (rc != 0) {
        fail(pc, rc, "cannot send CONNECT %s to proxy %s: %s", pc->target, pc->display,
             ptc_strerror(rc));
        return;
    }
    pc->writing = true;
    rc = uv_read_start((uv_stream_t *)tcp, on_alloc, on_read);
    if (rc != 0) {
        fail(pc, rc, "cannot read from proxy %s: %s", pc->display, ptc_strerror(rc));
        return;
    }
    pc->reading = true;
}

int ptc_proxy_connect(uv_loop_t *loop, const ptc_proxy_t *proxy, const char *host, uint16_t port,
                      const char *agent, uint64_t timeout_ms, ptc_proxy_conn_cb cb, void *data,
                      ptc_proxy_conn_t **out)
{
    *out = NULL;
    if (host == NULL || host[0] == '\0' || port == 0 || cb == NULL) {
        return UV_EINVAL;
    }
    ptc_proxy_conn_t *pc = ptc_xcalloc(1, sizeof(*pc));
    ssize_t n =
        ptc_proxy_format_connect(proxy, host, port, agent, pc->request, sizeof(pc->request));
    if (n < 0) {
        release(pc);
        return (int)n;
    }
    pc->request_len = (size_t)n;
    pc->loop = loop;
    pc->cb = cb;
    pc->data = data;
    ptc_buf_init(&pc->in);
    snprintf(pc->display, sizeof(pc->display), "%s", proxy->display);
    if (ptc_url_format_authority(host, port, pc->target, sizeof(pc->target)) != 0) {
        release(pc);
        return PTC_EFORMAT;
    }
    int rc = uv_timer_init(loop, &pc->timer);
    if (rc != 0) {
        release(pc);
        return rc;
    }
    pc->timer.data = pc;
    pc->open_handles = 1;
    rc = ptc_net_dial(loop, proxy->host, proxy->port, 0, on_dial, pc, &pc->dial);
    if (rc != 0) {
        /* No callback will run: close the timer quietly and free from its close callback. */
        pc->done = true;
        pc->dial = NULL;
        uv_close((uv_handle_t *)&pc->timer, on_timer_closed);
        return rc;
    }
    if (timeout_ms > 0) {
        uv_timer_start(&pc->timer, on_deadline, timeout_ms, 0);
    }
    *out = pc;
    return 0;
}

void *ptc_proxy_conn_data(const ptc_proxy_conn_t *pc)
{
    return pc->data;
}

const char *ptc_proxy_conn_message(const ptc_proxy_conn_t *pc)
{
    return pc->message;
}

void ptc_proxy_conn_cancel(ptc_proxy_conn_t *pc)
{
    if (pc->done || pc->cancelled) {
        return;
    }
    pc->cancelled = true;
    /* The callback runs from the timer, never inside this call. */
    uv_timer_start(&pc->timer, on_deadline, 0, 0);
}
