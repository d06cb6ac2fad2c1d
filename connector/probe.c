/* SPDX-License-Identifier: MIT */
/*
 * The backend probe (see probe.h and docs/protocol.md §4.8.1).
 *
 * A probe moves through START (its timer fires at once, so that nothing runs inside
 * ptc_probe_start()), DNS, TCP, TLS (https only), HTTP and DONE. The same timer then holds
 * the deadline of the whole probe. Each step appends one step object to `steps` when it
 * ends; the first failure, or the deadline, ends the probe through finish(), which builds
 * the probe_result, delivers it and closes everything.
 *
 * Lifetime (STYLE §5): `pending` counts the timer, the resolver request while it runs, and
 * the TCP handle or (once TLS starts) the TLS stream that took the handle over. finish()
 * closes them; the probe is freed when the count reaches zero, which may be after the
 * result was delivered (a resolver request cannot always be cancelled). Callbacks that
 * arrive after finish() only release their part.
 */
#include "connector/probe.h"

#include <jansson.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/net.h"
#include "common/tls.h"
#include "common/tls_stream.h"
#include "common/url.h"

#ifndef PTC_VERSION
#define PTC_VERSION "0.0.0"
#endif

/* Room for the request line and the few header fields of the probe's GET. */
#define REQUEST_EXTRA 512
#define READ_SIZE 4096
/* Addresses named in the dns step's detail. */
#define DNS_DETAIL_ADDRS 4

typedef enum phase {
    PH_START,
    PH_DNS,
    PH_TCP,
    PH_TLS,
    PH_HTTP,
    PH_DONE,
} phase_t;

struct ptc_probe {
    ptc_probe_t **list; /* NULL once the probe left its owner's list */
    ptc_probe_t *prev;
    ptc_probe_t *next;
    uv_loop_t *loop;
    ptc_log_ctx_t log;
    char id[PTC_PROBE_ID_MAX + 1];
    ptc_url_t url;
    bool validate_tls;
    uint64_t timeout_ms;
    char *ca_file;
    ptc_probe_done_cb on_done;
    void *data;

    phase_t phase;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    struct addrinfo *addrs;
    struct addrinfo *addr; /* the address being tried */
    uv_tcp_t *tcp;         /* ours until TLS takes it over; NULL once closed */
    uv_connect_t connect;
    uv_write_t write;
    ptc_tls_config_t *tls_cfg; /* a reference: the shared one, or the probe's own */
    ptc_tls_stream_t *tls;
    ptc_http_parser_t *parser;
    char *request;
    size_t request_len;
    uint8_t rbuf[READ_SIZE];
    json_t *steps;
    uint64_t started_ns;
    uint64_t step_ns;
    unsigned pending;
    bool gai_busy;
    bool timer_closed;
    bool finished;
    int connect_err; /* the last connect failure */
    char connect_detail[PTC_PROBE_DETAIL_MAX + 1];
};

static void finish(ptc_probe_t *p);
static void try_connect(ptc_probe_t *p);
static void start_http(ptc_probe_t *p);

/* ---- parsing and answers ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return PTC_EFORMAT;
}

/* docs/protocol.md §11.2 rule 4: 1 to 64 letters, digits, '_', '-' or '.'. */
static bool is_identifier(const char *s, size_t len)
{
    if (len == 0 || len > PTC_PROBE_ID_MAX) {
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

int ptc_probe_parse(const void *doc, size_t len, ptc_probe_req_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *j = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = 0;
    if (j == NULL || !json_is_object(j)) {
        rc = fail(err, errlen, "not a JSON object");
        goto out;
    }
    const char *type = json_string_value(json_object_get(j, "type"));
    if (type == NULL || strcmp(type, "probe") != 0) {
        rc = fail(err, errlen, "type: expected \"probe\"");
        goto out;
    }
    json_t *id = json_object_get(j, "id");
    if (!json_is_string(id) || !is_identifier(json_string_value(id), json_string_length(id))) {
        rc = fail(err, errlen, "id: expected 1 to 64 of [A-Za-z0-9._-]");
        goto out;
    }
    memcpy(out->id, json_string_value(id), json_string_length(id) + 1);
    json_t *url = json_object_get(j, "url");
    if (!json_is_string(url) || json_string_length(url) == 0 ||
        json_string_length(url) > PTC_PROBE_URL_MAX) {
        rc = fail(err, errlen, "url: expected a string of 1 to %d bytes", PTC_PROBE_URL_MAX);
        goto out;
    }
    char msg[256];
    ptc_url_t u;
    if (ptc_url_parse(json_string_value(url), PTC_URL_HTTP, &u, msg, sizeof(msg)) != 0) {
        rc = fail(err, errlen, "url: %s", msg);
        goto out;
    }
    ptc_url_dispose(&u);
    json_t *v = json_object_get(j, "validate_tls");
    if (!json_is_boolean(v)) {
        rc = fail(err, errlen, "validate_tls: expected a boolean");
        goto out;
    }
    json_t *t = json_object_get(j, "timeout_ms");
    if (!json_is_integer(t) || json_integer_value(t) < PTC_PROBE_TIMEOUT_MIN_MS ||
        json_integer_value(t) > PTC_PROBE_TIMEOUT_MAX_MS) {
        rc = fail(err, errlen, "timeout_ms: expected an integer from %d to %d",
                  PTC_PROBE_TIMEOUT_MIN_MS, PTC_PROBE_TIMEOUT_MAX_MS);
        goto out;
    }
    out->url = ptc_xstrdup(json_string_value(url));
    out->validate_tls = json_is_true(v);
    out->timeout_ms = (uint64_t)json_integer_value(t);
out:
    json_decref(j);
    return rc;
}

void ptc_probe_req_dispose(ptc_probe_req_t *req)
{
    free(req->url);
    memset(req, 0, sizeof(*req));
}

/* Copies text into out (cap bytes), each byte outside printable ASCII replaced by '?': the
 * details quote peers (a reason phrase), and JSON strings must be valid UTF-8. */
static void copy_printable(char *out, size_t cap, const char *text, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[n] = '\0';
}

char *ptc_probe_error_result(const char *id, const char *error, size_t *len)
{
    char safe[PTC_PROBE_DETAIL_MAX + 1];
    copy_printable(safe, sizeof(safe), error, strlen(error));
    json_t *doc = json_pack("{s:s, s:s, s:[], s:s}", "type", "probe_result", "id", id, "steps",
                            "error", safe);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        abort(); /* our own ASCII strings: only memory can run out */
    }
    *len = strlen(text);
    return text;
}

/* ---- steps ---- */

static double ms_since(uint64_t from_ns)
{
    uint64_t ns = uv_hrtime() - from_ns;
    /* Microsecond resolution is plenty, and keeps the JSON short. */
    return (double)(ns / 1000u) / 1000.0;
}

static void add_step(ptc_probe_t *p, const char *step, bool ok, const char *error, int status,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Appends a step object that ends now (ms counts from the previous step's end). */
static void add_step(ptc_probe_t *p, const char *step, bool ok, const char *error, int status,
                     const char *fmt, ...)
{
    char raw[PTC_PROBE_DETAIL_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    char detail[PTC_PROBE_DETAIL_MAX + 1];
    copy_printable(detail, sizeof(detail), raw, strlen(raw));
    json_t *s = json_object();
    json_object_set_new(s, "step", json_string(step));
    json_object_set_new(s, "ok", json_boolean(ok));
    json_object_set_new(s, "ms", json_real(ms_since(p->step_ns)));
    if (error != NULL) {
        json_object_set_new(s, "error", json_string(error));
    }
    if (status > 0) {
        json_object_set_new(s, "status", json_integer(status));
    }
    if (detail[0] != '\0') {
        json_object_set_new(s, "detail", json_string(detail));
    }
    json_array_append_new(p->steps, s);
    p->step_ns = uv_hrtime();
}

/* ---- lifetime ---- */

static void probe_free(ptc_probe_t *p)
{
    if (p->addrs != NULL) {
        uv_freeaddrinfo(p->addrs);
    }
    ptc_tls_config_unref(p->tls_cfg);
    ptc_http_parser_free(p->parser);
    free(p->request);
    json_decref(p->steps);
    ptc_url_dispose(&p->url);
    free(p->ca_file);
    free(p);
}

static void maybe_free(ptc_probe_t *p)
{
    if (p->finished && p->pending == 0) {
        probe_free(p);
    }
}

static void unlink_probe(ptc_probe_t *p)
{
    if (p->list == NULL) {
        return;
    }
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        *p->list = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    p->list = NULL;
    p->prev = p->next = NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    ptc_probe_t *p = h->data;
    p->pending--;
    maybe_free(p);
}

static void on_tcp_closed(uv_handle_t *h)
{
    ptc_probe_t *p = h->data;
    free(h);
    p->pending--;
    maybe_free(p);
}

static void close_tcp(ptc_probe_t *p)
{
    if (p->tcp != NULL) {
        uv_close((uv_handle_t *)p->tcp, on_tcp_closed);
        p->tcp = NULL;
    }
}

/* Closes every handle; the last close callback frees the probe. */
static void close_all(ptc_probe_t *p)
{
    if (!p->timer_closed) {
        p->timer_closed = true;
        uv_timer_stop(&p->timer);
        uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    }
    if (p->gai_busy) {
        /* A lookup already running in the thread pool cannot be cancelled: its callback
         * then arrives later and releases its part. */
        (void)uv_cancel((uv_req_t *)&p->gai);
    }
    close_tcp(p);
    if (p->tls != NULL) {
        ptc_tls_stream_close(p->tls);
    }
}

static const char *const phase_names[] = {"start", "dns", "tcp", "tls", "http", "done"};

/* Builds and delivers the result, then closes. Idempotent. */
static void finish(ptc_probe_t *p)
{
    if (p->finished) {
        return;
    }
    p->finished = true;
    p->phase = PH_DONE;
    unlink_probe(p);
    json_t *doc =
        json_pack("{s:s, s:s, s:O}", "type", "probe_result", "id", p->id, "steps", p->steps);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(doc);
    if (text == NULL) {
        abort(); /* our own JSON: only memory can run out */
    }
    size_t n = json_array_size(p->steps);
    json_t *last = n > 0 ? json_array_get(p->steps, n - 1) : NULL;
    bool ok = last != NULL && json_is_true(json_object_get(last, "ok"));
    PTC_LOG(
        &p->log, PTC_LOG_INFO, "probe_done", PTC_LOG_STR("probe", p->id),
        PTC_LOG_STR("host", p->url.host), PTC_LOG_UINT("port", p->url.port), PTC_LOG_BOOL("ok", ok),
        PTC_LOG_STR("step", last != NULL ? json_string_value(json_object_get(last, "step")) : NULL),
        PTC_LOG_STR("error",
                    last != NULL ? json_string_value(json_object_get(last, "error")) : NULL),
        PTC_LOG_DOUBLE("dur_ms", ms_since(p->started_ns)));
    if (p->on_done != NULL) {
        p->on_done(p->data, text, strlen(text));
    }
    free(text);
    close_all(p);
}

/* ---- http ---- */

static void http_failed(ptc_probe_t *p, const char *error, const char *what, int err)
{
    add_step(p, "http", false, error, 0, "%s: %s", what, ptc_strerror(err));
    finish(p);
}

static void on_head(ptc_probe_t *p, const ptc_http_head_t *head)
{
    const char *reason = NULL;
    int reason_len = 0;
    if (head->reason.len > 0) {
        reason = (const char *)head->reason.ptr;
        reason_len = (int)(head->reason.len > 128 ? 128 : head->reason.len);
    } else {
        reason = ptc_http_reason_phrase(head->status);
        reason_len = (int)strlen(reason);
    }
    add_step(p, "http", true, NULL, head->status, "%d %.*s", head->status, reason_len, reason);
    finish(p);
}

/* Feeds response bytes to the parser until the final head arrives. */
static void feed(ptc_probe_t *p, const uint8_t *data, size_t len)
{
    while (!p->finished) {
        ptc_http_event_t ev;
        ssize_t n = ptc_http_parser_feed(p->parser, data, len, &ev);
        if (n < 0) {
            const ptc_http_error_t *e = ptc_http_parser_error(p->parser);
            add_step(p, "http", false, "malformed", 0, "not a valid HTTP/1.1 response: %s",
                     e != NULL && e->reason != NULL ? e->reason : ptc_strerror((int)n));
            finish(p);
            return;
        }
        data += n;
        len -= (size_t)n;
        switch (ev.type) {
        case PTC_HTTP_EV_NONE:
            return;
        case PTC_HTTP_EV_HEAD:
            on_head(p, ev.head);
            return;
        case PTC_HTTP_EV_INTERIM:
        case PTC_HTTP_EV_BODY:
        case PTC_HTTP_EV_DONE:
        case PTC_HTTP_EV_UPGRADE:
            break;
        case PTC_HTTP_EV_ERROR:
            add_step(p, "http", false, "malformed", 0, "not a valid HTTP/1.1 response");
            finish(p);
            return;
        }
    }
}

/* The response ended before its head: EOF, a reset, or another read error. */
static void input_ended(ptc_probe_t *p, int status)
{
    if (status == UV_EOF || status == UV_ECONNRESET) {
        add_step(p, "http", false, "closed", 0,
                 "the backend closed the connection before a complete response head (%s)",
                 status == UV_EOF ? "end of stream" : "connection reset");
        finish(p);
        return;
    }
    http_failed(p, "failed", "reading the response failed", status);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    ptc_probe_t *p = h->data;
    *buf = uv_buf_init((char *)p->rbuf, sizeof(p->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    ptc_probe_t *p = s->data;
    if (p->finished || nread == 0) {
        return;
    }
    if (nread < 0) {
        input_ended(p, (int)nread);
        return;
    }
    feed(p, p->rbuf, (size_t)nread);
}

static void on_write(uv_write_t *req, int status)
{
    ptc_probe_t *p = req->handle->data;
    if (p->finished || status == 0 || status == UV_ECANCELED) {
        return;
    }
    http_failed(p, "failed", "sending the request failed", status);
}

static void on_tls_read(ptc_tls_stream_t *s, int status, ptc_slice_t data)
{
    ptc_probe_t *p = ptc_tls_stream_data(s);
    if (p->finished) {
        return;
    }
    if (status != 0) {
        input_ended(p, status);
        return;
    }
    feed(p, data.ptr, data.len);
}

/* Builds the GET request of docs/protocol.md §4.8.1. */
static void build_request(ptc_probe_t *p)
{
    char authority[PTC_URL_HOST_CAP + 16];
    bool v6 = p->url.host_type == PTC_URL_HOST_IPV6;
    if (p->url.has_port) {
        snprintf(authority, sizeof(authority), "%s%s%s:%u", v6 ? "[" : "", p->url.host,
                 v6 ? "]" : "", p->url.port);
    } else {
        snprintf(authority, sizeof(authority), "%s%s%s", v6 ? "[" : "", p->url.host, v6 ? "]" : "");
    }
    size_t cap = strlen(p->url.path) + (p->url.query != NULL ? strlen(p->url.query) : 0) +
                 strlen(authority) + REQUEST_EXTRA;
    p->request = ptc_xmalloc(cap);
    int n = snprintf(p->request, cap,
                     "GET %s%s%s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "User-Agent: portico-connector/%s (probe)\r\n"
                     "Accept: */*\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     p->url.path, p->url.query != NULL ? "?" : "",
                     p->url.query != NULL ? p->url.query : "", authority, PTC_VERSION);
    p->request_len = n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void start_http(ptc_probe_t *p)
{
    p->phase = PH_HTTP;
    build_request(p);
    p->parser = ptc_http_parser_new(PTC_HTTP_RESPONSE, NULL);
    ptc_http_parser_set_request_method(p->parser, ptc_slice_str("GET"));
    int rc;
    if (p->tls != NULL) {
        rc = ptc_tls_stream_write(p->tls, p->request, p->request_len, NULL, NULL);
    } else {
        uv_buf_t b = uv_buf_init(p->request, (unsigned)p->request_len);
        rc = uv_write(&p->write, (uv_stream_t *)p->tcp, &b, 1, on_write);
        if (rc == 0) {
            rc = uv_read_start((uv_stream_t *)p->tcp, on_alloc, on_read);
        }
    }
    if (rc != 0) {
        http_failed(p, "failed", "sending the request failed", rc);
    }
}

/* ---- tls ---- */

static void on_tls_close(ptc_tls_stream_t *s)
{
    ptc_probe_t *p = ptc_tls_stream_data(s);
    p->tls = NULL;
    p->pending--;
    maybe_free(p);
}

static void on_tls_handshake(ptc_tls_stream_t *s, int status)
{
    ptc_probe_t *p = ptc_tls_stream_data(s);
    if (p->finished) {
        return;
    }
    ptc_tls_t *tls = ptc_tls_stream_tls(s);
    if (status != 0) {
        ptc_tls_err_t e;
        ptc_tls_last_error(tls, &e);
        const char *reason = e.reason[0] != '\0' ? e.reason : ptc_strerror(status);
        switch (status) {
        case PTC_ECERT:
            /* mbedTLS names the validity problems in its verification text. */
            if (strstr(reason, "expired") != NULL || strstr(reason, "future") != NULL) {
                add_step(p, "tls", false, "expired", 0, "certificate not valid now: %s", reason);
            } else {
                add_step(p, "tls", false, "untrusted", 0, "certificate not trusted: %s", reason);
            }
            break;
        case PTC_ECERTNAME:
            add_step(p, "tls", false, "name_mismatch", 0, "certificate not valid for %s: %s",
                     p->url.host, reason);
            break;
        case PTC_ETIMEOUT:
            add_step(p, "tls", false, "timeout", 0, "the TLS handshake did not finish in time");
            break;
        case UV_EOF:
        case UV_ECONNRESET:
            add_step(p, "tls", false, "closed", 0,
                     "the backend closed the connection during the TLS handshake");
            break;
        default:
            add_step(p, "tls", false, "handshake", 0, "TLS handshake failed: %s", reason);
            break;
        }
        finish(p);
        return;
    }
    add_step(p, "tls", true, NULL, 0, "%s, %s, %s", ptc_tls_version(tls), ptc_tls_ciphersuite(tls),
             p->validate_tls ? "certificate valid"
                             : "certificate not checked (validate_tls false)");
    start_http(p);
}

static void start_tls(ptc_probe_t *p)
{
    p->phase = PH_TLS;
    int rc = 0;
    ptc_tls_err_t terr;
    memset(&terr, 0, sizeof(terr));
    if (p->tls_cfg == NULL) {
        /* No shared configuration (or validation off): one for this probe alone. */
        ptc_tls_client_opts_t o;
        memset(&o, 0, sizeof(o));
        o.ca_file = p->ca_file;
        o.no_verify = !p->validate_tls;
        rc = ptc_tls_client_config_new(&o, &p->tls_cfg, &terr);
    }
    if (rc != 0) {
        add_step(p, "tls", false, "local", 0,
                 "the connector's trust anchors (%s) cannot be used: %s",
                 p->ca_file != NULL ? p->ca_file : PTC_TLS_SYSTEM_CA_FILE,
                 terr.reason[0] != '\0' ? terr.reason : ptc_strerror(rc));
        finish(p);
        return;
    }
    ptc_tls_stream_opts_t so;
    memset(&so, 0, sizeof(so));
    so.server_name = p->url.host;
    /* The probe's own deadline ends the handshake first; this is only a backstop. */
    so.handshake_timeout_ms = p->timeout_ms + 1000;
    so.on_handshake = on_tls_handshake;
    so.on_read = on_tls_read;
    so.on_close = on_tls_close;
    so.data = p;
    uv_tcp_t *tcp = p->tcp;
    p->tcp = NULL;
    rc = ptc_tls_stream_new(tcp, p->tls_cfg, &so, &p->tls);
    if (rc != 0) {
        /* The stream closed and frees the handle itself, without a callback. */
        p->tls = NULL;
        p->pending--;
        add_step(p, "tls", false, "handshake", 0, "cannot start TLS: %s", ptc_strerror(rc));
        finish(p);
    }
}

/* ---- tcp ---- */

static void tcp_failed(ptc_probe_t *p)
{
    const char *code = "failed";
    switch (p->connect_err) {
    case UV_ECONNREFUSED:
        code = "refused";
        break;
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_EADDRNOTAVAIL:
        code = "unreachable";
        break;
    case UV_ETIMEDOUT:
        code = "timeout";
        break;
    default:
        break;
    }
    add_step(p, "tcp", false, code, 0, "%s",
             p->connect_detail[0] != '\0' ? p->connect_detail : "no usable address");
    finish(p);
}

/* Records a failed attempt as "addr: reason", joined with "; " to the earlier ones. */
static void connect_error(ptc_probe_t *p, int err)
{
    char addr[PTC_NET_ADDRSTRLEN];
    if (ptc_net_format_addr(p->addr->ai_addr, addr, sizeof(addr)) != 0) {
        snprintf(addr, sizeof(addr), "?");
    }
    size_t used = strlen(p->connect_detail);
    snprintf(p->connect_detail + used, sizeof(p->connect_detail) - used, "%s%s: %s",
             used > 0 ? "; " : "", addr, uv_strerror(err));
    p->connect_err = err;
}

static void on_connect(uv_connect_t *req, int status)
{
    ptc_probe_t *p = req->handle->data;
    if (p->finished || status == UV_ECANCELED) {
        return;
    }
    if (status < 0) {
        connect_error(p, status);
        close_tcp(p);
        p->addr = p->addr->ai_next;
        try_connect(p);
        return;
    }
    (void)uv_tcp_nodelay(p->tcp, 1);
    char addr[PTC_NET_ADDRSTRLEN];
    if (ptc_net_format_addr(p->addr->ai_addr, addr, sizeof(addr)) != 0) {
        snprintf(addr, sizeof(addr), "?");
    }
    add_step(p, "tcp", true, NULL, 0, "%s", addr);
    if (strcmp(p->url.scheme, "https") == 0) {
        start_tls(p);
    } else {
        start_http(p);
    }
}

/* Connects to the current address, or the next one that can be tried. */
static void try_connect(ptc_probe_t *p)
{
    for (; p->addr != NULL; p->addr = p->addr->ai_next) {
        int fam = p->addr->ai_family;
        if (fam != AF_INET && fam != AF_INET6) {
            continue;
        }
        uv_tcp_t *tcp = ptc_xmalloc(sizeof(*tcp));
        int rc = uv_tcp_init(p->loop, tcp);
        if (rc != 0) {
            free(tcp);
            connect_error(p, rc);
            continue;
        }
        tcp->data = p;
        p->tcp = tcp;
        p->pending++;
        rc = uv_tcp_connect(&p->connect, tcp, p->addr->ai_addr, on_connect);
        if (rc == 0) {
            return;
        }
        connect_error(p, rc);
        close_tcp(p);
    }
    tcp_failed(p);
}

/* ---- dns ---- */

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    ptc_probe_t *p = req->data;
    p->gai_busy = false;
    p->pending--;
    if (p->finished) {
        if (res != NULL) {
            uv_freeaddrinfo(res);
        }
        maybe_free(p);
        return;
    }
    if (status < 0) {
        bool unknown = status == UV_EAI_NONAME || status == UV_EAI_NODATA;
        add_step(p, "dns", false, unknown ? "not_found" : "failed", 0, "%s: %s", p->url.host,
                 uv_strerror(status));
        finish(p);
        return;
    }
    p->addrs = res;
    char detail[PTC_PROBE_DETAIL_MAX + 1] = "";
    size_t used = 0;
    size_t cnt = 0;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6) {
            continue;
        }
        cnt++;
        char ip[PTC_NET_ADDRSTRLEN];
        if (cnt <= DNS_DETAIL_ADDRS && uv_ip_name(a->ai_addr, ip, sizeof(ip)) == 0) {
            used += (size_t)snprintf(detail + used, sizeof(detail) - used, "%s%s",
                                     used > 0 ? ", " : "", ip);
        }
    }
    if (cnt == 0) {
        add_step(p, "dns", false, "not_found", 0, "%s: no IPv4 or IPv6 address", p->url.host);
        finish(p);
        return;
    }
    if (cnt > DNS_DETAIL_ADDRS && used < sizeof(detail)) {
        snprintf(detail + used, sizeof(detail) - used, " (+%zu more)", cnt - DNS_DETAIL_ADDRS);
    }
    add_step(p, "dns", true, NULL, 0, "%s", detail);
    p->phase = PH_TCP;
    p->addr = res;
    try_connect(p);
}

static void start_dns(ptc_probe_t *p)
{
    p->phase = PH_DNS;
    char port[8];
    snprintf(port, sizeof(port), "%u", p->url.port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    p->gai.data = p;
    int rc = uv_getaddrinfo(p->loop, &p->gai, on_gai, p->url.host, port, &hints);
    if (rc != 0) {
        add_step(p, "dns", false, "failed", 0, "%s: %s", p->url.host, uv_strerror(rc));
        finish(p);
        return;
    }
    p->gai_busy = true;
    p->pending++;
}

/* ---- timer ---- */

static void on_deadline(uv_timer_t *t)
{
    ptc_probe_t *p = t->data;
    if (p->finished) {
        return;
    }
    unsigned long long ms = (unsigned long long)p->timeout_ms;
    switch (p->phase) {
    case PH_START:
    case PH_DNS:
        add_step(p, "dns", false, "timeout", 0, "no answer from the resolver for %s within %llu ms",
                 p->url.host, ms);
        break;
    case PH_TCP: {
        char addr[PTC_NET_ADDRSTRLEN] = "?";
        if (p->addr != NULL && ptc_net_format_addr(p->addr->ai_addr, addr, sizeof(addr)) != 0) {
            snprintf(addr, sizeof(addr), "?");
        }
        add_step(p, "tcp", false, "timeout", 0, "no connection to %s within %llu ms", addr, ms);
        break;
    }
    case PH_TLS:
        add_step(p, "tls", false, "timeout", 0, "the TLS handshake did not finish within %llu ms",
                 ms);
        break;
    case PH_HTTP:
        add_step(p, "http", false, "timeout", 0, "no response head within %llu ms", ms);
        break;
    case PH_DONE:
        return;
    }
    finish(p);
}

static void on_start(uv_timer_t *t)
{
    ptc_probe_t *p = t->data;
    p->started_ns = uv_hrtime();
    p->step_ns = p->started_ns;
    uv_timer_start(&p->timer, on_deadline, p->timeout_ms, 0);
    start_dns(p);
}

/* ---- public API ---- */

int ptc_probe_start(const ptc_probe_opts_t *opts, ptc_probe_t **list)
{
    if (opts->loop == NULL || opts->on_done == NULL || opts->req == NULL ||
        opts->req->url == NULL) {
        return UV_EINVAL;
    }
    if (ptc_probe_count(list) >= PTC_PROBE_MAX_IN_FLIGHT) {
        return PTC_ELIMIT;
    }
    ptc_probe_t *p = ptc_xcalloc(1, sizeof(*p));
    char msg[256];
    if (ptc_url_parse(opts->req->url, PTC_URL_HTTP, &p->url, msg, sizeof(msg)) != 0) {
        free(p);
        return UV_EINVAL;
    }
    int rc = uv_timer_init(opts->loop, &p->timer);
    if (rc != 0) {
        ptc_url_dispose(&p->url);
        free(p);
        return rc;
    }
    p->timer.data = p;
    p->pending = 1;
    p->loop = opts->loop;
    if (opts->log != NULL) {
        ptc_log_ctx_derive(&p->log, opts->log);
    } else {
        ptc_log_ctx_init(&p->log, NULL);
    }
    p->log.action = "probing a backend";
    snprintf(p->id, sizeof(p->id), "%s", opts->req->id);
    p->validate_tls = opts->req->validate_tls;
    p->timeout_ms = opts->req->timeout_ms != 0 ? opts->req->timeout_ms : PTC_PROBE_TIMEOUT_MAX_MS;
    p->ca_file = opts->ca_file != NULL ? ptc_xstrdup(opts->ca_file) : NULL;
    /* The relay's configuration, so that the probe trusts exactly what a request would. */
    if (p->validate_tls && opts->tls != NULL) {
        p->tls_cfg = ptc_tls_config_ref(opts->tls);
    }
    p->on_done = opts->on_done;
    p->data = opts->data;
    p->steps = json_array();
    p->phase = PH_START;
    uv_timer_start(&p->timer, on_start, 0, 0);
    p->list = list;
    p->next = *list;
    if (*list != NULL) {
        (*list)->prev = p;
    }
    *list = p;
    return 0;
}

size_t ptc_probe_count(ptc_probe_t *const *list)
{
    size_t n = 0;
    for (const ptc_probe_t *p = *list; p != NULL; p = p->next) {
        n++;
    }
    return n;
}

void ptc_probe_cancel_all(ptc_probe_t **list)
{
    while (*list != NULL) {
        ptc_probe_t *p = *list;
        unlink_probe(p);
        PTC_LOG(&p->log, PTC_LOG_DEBUG, "probe_cancelled", PTC_LOG_STR("probe", p->id),
                PTC_LOG_STR("phase", phase_names[p->phase]));
        p->on_done = NULL;
        p->finished = true;
        p->phase = PH_DONE;
        close_all(p);
    }
}
