/* SPDX-License-Identifier: MIT */
/*
 * Registration (see register.h). The steps, in an order that never spends the token for
 * nothing: check the arguments, check that the credential file can be written, generate the
 * key pair, POST over TLS with the common HTTP client on a private loop, then write the file.
 * The request body holds the token: it is wiped as soon as the client has copied it, and
 * the token never reaches a log line or a message.
 */
#include "connector/register.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/http_client.h"
#include "common/keys.h"
#include "common/net.h"
#include "common/tls.h"
#include "common/url.h"
#include "common/tls_stream.h"
#include "connector/credentials.h"
#include "connector/proxy_connect.h"
#include "connector/tunnel_cli.h"

/* Registration answers are small; anything larger is not one. */
#define MAX_ANSWER 65536
/* The whole exchange: connect, TLS, answer. */
#define CONNECT_TIMEOUT_MS 10000
#define ANSWER_TIMEOUT_MS 30000

typedef struct reg {
    ptc_http_client_t *client;
    int status;
    bool done;
    int err;
    int phase;
    char detail[256];
    ptc_buf_t body;
    bool too_large;
    /* The exchange through an HTTP CONNECT proxy (the common client dials directly). */
    const char *host;
    uint16_t port;
    ptc_tls_config_t *tls;
    ptc_tls_stream_t *ts;
    uv_timer_t timer;
    bool timer_open;
    ptc_http_parser_t *parser;
    uint8_t *request; /* head and body; holds the token: wiped once sent */
    size_t request_len;
    char proxy_msg[512];
} reg_t;

static int failf(char *msg, size_t msglen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int failf(char *msg, size_t msglen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- messages ---- */

void ptc_register_describe_refusal(int status, const char *code, const char *message, char *msg,
                                   size_t msglen)
{
    const char *c = code != NULL ? code : "";
    char esc[200] = "";
    if (message != NULL) {
        ptc_log_escape(esc, sizeof(esc), message, strlen(message), 160);
    }
    if (status == 401 && strcmp(c, "unknown_token") == 0) {
        snprintf(msg, msglen, "registration refused: the token is not known (401 unknown_token)");
    } else if (status == 410 && strcmp(c, "token_expired") == 0) {
        snprintf(msg, msglen, "registration refused: the token is expired (410 token_expired)");
    } else if (status == 410 && strcmp(c, "token_used") == 0) {
        snprintf(msg, msglen, "registration refused: the token is already used (410 token_used)");
    } else if (status == 429) {
        snprintf(msg, msglen,
                 "registration refused: too many attempts from this address, try again later "
                 "(429 %s)",
                 c[0] != '\0' ? c : "rate_limited");
    } else if (c[0] != '\0') {
        snprintf(msg, msglen, "registration refused: %s (%d %s)",
                 esc[0] != '\0' ? esc : "the edge gave no reason", status, c);
    } else {
        snprintf(msg, msglen,
                 "registration failed: the server answered HTTP %d (is the --edge URL a Portico "
                 "edge?)",
                 status);
    }
}

/* The part of the client's detail after "...: ", for TLS reasons. */
static const char *tls_reason(const char *detail)
{
    const char *p = strstr(detail, "): ");
    return p != NULL ? p + 3 : detail;
}

static void describe_error(const reg_t *g, const char *host, uint16_t port, char *msg,
                           size_t msglen)
{
    switch (g->err) {
    case PTC_EDNS:
        snprintf(msg, msglen, "cannot resolve %s", host);
        return;
    case PTC_ECERT:
        snprintf(msg, msglen, "the edge's certificate is not trusted: %s", tls_reason(g->detail));
        return;
    case PTC_ECERTNAME:
        snprintf(msg, msglen, "the edge's certificate is not trusted: it does not match %s (%s)",
                 host, tls_reason(g->detail));
        return;
    case PTC_EPIN:
        snprintf(msg, msglen,
                 "the edge's certificate is not trusted: its key does not match --pin-sha256");
        return;
    case PTC_ETLS:
        snprintf(msg, msglen, "TLS handshake with %s:%u failed: %s", host, (unsigned)port,
                 tls_reason(g->detail));
        return;
    default:
        break;
    }
    if (g->phase == PTC_HTTP_CLIENT_PHASE_CONNECT) {
        snprintf(msg, msglen, "cannot connect to %s:%u: %s", host, (unsigned)port,
                 g->err == PTC_ETIMEOUT ? "timed out" : ptc_strerror(g->err));
        return;
    }
    if (g->err == PTC_ETIMEOUT) {
        snprintf(msg, msglen, "the edge at %s:%u did not answer in time (%s)", host, (unsigned)port,
                 g->detail);
        return;
    }
    if (g->err == UV_EOF || g->err == UV_ECONNRESET) {
        snprintf(msg, msglen, "the edge at %s:%u closed the connection without answering", host,
                 (unsigned)port);
        return;
    }
    snprintf(msg, msglen, "registration failed: %s (%s)", ptc_strerror(g->err), g->detail);
}

/* ---- the exchange ---- */

static void on_head(ptc_http_client_req_t *r, const ptc_http_head_t *head)
{
    reg_t *g = ptc_http_client_req_data(r);
    g->status = head->status;
}

static void on_body(ptc_http_client_req_t *r, ptc_slice_t data)
{
    reg_t *g = ptc_http_client_req_data(r);
    if (g->body.len + data.len > MAX_ANSWER) {
        g->too_large = true;
        return;
    }
    ptc_buf_append(&g->body, data.ptr, data.len);
}

static void on_client_closed(void *data)
{
    reg_t *g = data;
    g->client = NULL;
}

static void finish(reg_t *g)
{
    g->done = true;
    ptc_http_client_close(g->client, on_client_closed, g);
}

static void on_done(ptc_http_client_req_t *r)
{
    finish(ptc_http_client_req_data(r));
}

static void on_error(ptc_http_client_req_t *r, int err)
{
    reg_t *g = ptc_http_client_req_data(r);
    g->err = err;
    g->phase = (int)ptc_http_client_req_phase(r);
    snprintf(g->detail, sizeof(g->detail), "%s", ptc_http_client_req_error_detail(r));
    finish(g);
}

/* ---- the exchange through a proxy ---- */

static void px_finish(reg_t *g, int err, int phase, const char *detail)
{
    if (g->done) {
        return;
    }
    g->done = true;
    if (err != 0) {
        g->err = err;
        g->phase = phase;
        snprintf(g->detail, sizeof(g->detail), "%s", detail);
    }
    if (g->ts != NULL) {
        ptc_tls_stream_close(g->ts);
    }
    if (g->timer_open) {
        g->timer_open = false;
        uv_close((uv_handle_t *)&g->timer, NULL);
    }
}

static void px_on_timer(uv_timer_t *t)
{
    reg_t *g = t->data;
    px_finish(g, PTC_ETIMEOUT, PTC_HTTP_CLIENT_PHASE_HEAD, "no answer in time");
}

static void px_on_close(ptc_tls_stream_t *s)
{
    reg_t *g = ptc_tls_stream_data(s);
    g->ts = NULL;
}

static void px_on_read(ptc_tls_stream_t *s, int status, ptc_slice_t data)
{
    reg_t *g = ptc_tls_stream_data(s);
    if (g->done) {
        return;
    }
    ptc_http_event_t ev;
    if (status != 0) {
        int rc = ptc_http_parser_finish(g->parser, &ev);
        if (rc == 0 && ev.type == PTC_HTTP_EV_DONE) {
            px_finish(g, 0, 0, "");
        } else {
            px_finish(g, status == UV_EOF ? UV_EOF : status, PTC_HTTP_CLIENT_PHASE_HEAD,
                      "the connection closed before the answer was complete");
        }
        return;
    }
    const uint8_t *p = data.ptr;
    size_t len = data.len;
    for (;;) {
        ssize_t n = ptc_http_parser_feed(g->parser, p, len, &ev);
        if (n < 0) {
            const ptc_http_error_t *e = ptc_http_parser_error(g->parser);
            px_finish(g, PTC_EHTTP, PTC_HTTP_CLIENT_PHASE_HEAD,
                      e != NULL ? e->reason : "malformed answer");
            return;
        }
        p += n;
        len -= (size_t)n;
        switch (ev.type) {
        case PTC_HTTP_EV_HEAD:
            g->status = ev.head->status;
            break;
        case PTC_HTTP_EV_BODY:
            if (g->body.len + ev.body.len > MAX_ANSWER) {
                g->too_large = true;
            } else {
                ptc_buf_append(&g->body, ev.body.ptr, ev.body.len);
            }
            break;
        case PTC_HTTP_EV_DONE:
        case PTC_HTTP_EV_UPGRADE:
            px_finish(g, 0, 0, "");
            return;
        case PTC_HTTP_EV_ERROR:
            px_finish(g, PTC_EHTTP, PTC_HTTP_CLIENT_PHASE_HEAD, "malformed answer");
            return;
        case PTC_HTTP_EV_INTERIM:
            break;
        case PTC_HTTP_EV_NONE:
            return;
        }
    }
}

static void px_on_handshake(ptc_tls_stream_t *s, int status)
{
    reg_t *g = ptc_tls_stream_data(s);
    if (status != 0) {
        ptc_tls_err_t e;
        ptc_tls_last_error(ptc_tls_stream_tls(s), &e);
        char detail[sizeof(g->detail)];
        snprintf(detail, sizeof(detail), "TLS handshake (name %.100s): %.120s", g->host,
                 e.reason[0] != '\0' ? e.reason : ptc_strerror(status));
        px_finish(g, status, PTC_HTTP_CLIENT_PHASE_TLS, detail);
        return;
    }
    int rc = ptc_tls_stream_write(s, g->request, g->request_len, NULL, NULL);
    ptc_keys_wipe(g->request, g->request_len);
    if (rc != 0) {
        px_finish(g, rc, PTC_HTTP_CLIENT_PHASE_SEND, ptc_strerror(rc));
    }
}

static void px_on_connect(ptc_proxy_conn_t *pc, int status, uv_tcp_t *tcp, ptc_slice_t leftover)
{
    reg_t *g = ptc_proxy_conn_data(pc);
    if (status != 0) {
        snprintf(g->proxy_msg, sizeof(g->proxy_msg), "%s", ptc_proxy_conn_message(pc));
        px_finish(g, status, PTC_HTTP_CLIENT_PHASE_CONNECT, ptc_proxy_conn_message(pc));
        return;
    }
    ptc_tls_stream_opts_t o = {
        .server_name = g->host,
        .handshake_timeout_ms = CONNECT_TIMEOUT_MS,
        .initial = leftover,
        .on_handshake = px_on_handshake,
        .on_read = px_on_read,
        .on_close = px_on_close,
        .data = g,
    };
    int rc = ptc_tls_stream_new(tcp, g->tls, &o, &g->ts);
    if (rc != 0) {
        px_finish(g, rc, PTC_HTTP_CLIENT_PHASE_TLS, ptc_strerror(rc));
    }
}

/* POSTs the prepared body through the proxy; the loop then runs until everything closed. */
static int px_start(reg_t *g, uv_loop_t *loop, const ptc_proxy_t *proxy, const char *body,
                    size_t body_len, char *msg, size_t msglen)
{
    char clen[32];
    snprintf(clen, sizeof(clen), "%zu", body_len);
    char authority[300];
    if (ptc_url_format_authority(g->host, g->port, authority, sizeof(authority)) != 0) {
        return failf(msg, msglen, UV_EINVAL, "the edge's host name is too long");
    }
    ptc_http_header_t hdrs[] = {
        {ptc_slice_str("host"), ptc_slice_str(authority)},
        {ptc_slice_str("content-type"), ptc_slice_str("application/json")},
        {ptc_slice_str("content-length"), ptc_slice_str(clen)},
        {ptc_slice_str("accept"), ptc_slice_str("application/json")},
        {ptc_slice_str("user-agent"), ptc_slice_str(ptc_connector_agent())},
        {ptc_slice_str("connection"), ptc_slice_str("close")},
    };
    uint8_t head[2048];
    ssize_t hl = ptc_http_format_request_head(head, sizeof(head), ptc_slice_str("POST"),
                                              ptc_slice_str("/.portico/v1/register"), hdrs,
                                              sizeof(hdrs) / sizeof(hdrs[0]));
    if (hl < 0) {
        return failf(msg, msglen, (int)hl, "cannot format the registration request");
    }
    g->request_len = (size_t)hl + body_len;
    g->request = ptc_xmalloc(g->request_len);
    memcpy(g->request, head, (size_t)hl);
    memcpy(g->request + hl, body, body_len);
    g->parser = ptc_http_parser_new(PTC_HTTP_RESPONSE, NULL);
    (void)uv_timer_init(loop, &g->timer);
    g->timer.data = g;
    g->timer_open = true;
    uv_timer_start(&g->timer, px_on_timer, CONNECT_TIMEOUT_MS * 2 + ANSWER_TIMEOUT_MS, 0);
    ptc_proxy_conn_t *pc = NULL;
    int rc = ptc_proxy_connect(loop, proxy, g->host, g->port, ptc_connector_agent(),
                               CONNECT_TIMEOUT_MS, px_on_connect, g, &pc);
    if (rc != 0) {
        g->done = true;
        g->timer_open = false;
        uv_close((uv_handle_t *)&g->timer, NULL);
        return failf(msg, msglen, rc, "cannot connect through the proxy %s: %s", proxy->display,
                     ptc_strerror(rc));
    }
    return 0;
}

/* ---- checks before the token is spent ---- */

static int check_writable(const char *path, char *msg, size_t msglen)
{
    char tmp[PATH_MAX + 16];
    if (snprintf(tmp, sizeof(tmp), "%s.probe.XXXXXX", path) >= (int)sizeof(tmp)) {
        return failf(msg, msglen, UV_ENAMETOOLONG, "%s: path too long", path);
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = -errno;
        return failf(msg, msglen, e, "cannot write the credential file %s: %s", path, strerror(-e));
    }
    close(fd);
    unlink(tmp);
    return 0;
}

static bool valid_token(const char *token)
{
    /* §12.1: "ptk_" and base64url; the length is the edge's business. */
    size_t len = strlen(token);
    if (len < 5 || len > 512 || strncmp(token, "ptk_", 4) != 0) {
        return false;
    }
    for (size_t i = 4; i < len; i++) {
        char c = token[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* ---- the command ---- */

static int parse_answer(const reg_t *g, ptc_credentials_t *creds, char *msg, size_t msglen)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)ptc_buf_data(&g->body), g->body.len,
                             JSON_REJECT_DUPLICATES, &jerr);
    int rc = PTC_EHTTP;
    if (doc == NULL || !json_is_object(doc)) {
        failf(msg, msglen, rc, "the edge's registration answer is not a JSON object");
        goto out;
    }
    json_t *id = json_object_get(doc, "connector_id");
    json_t *group = json_object_get(doc, "group");
    json_t *edges = json_object_get(doc, "edges");
    if (!json_is_string(id) ||
        !ptc_credentials_valid_id(json_string_value(id), json_string_length(id)) ||
        !json_is_string(group) || (edges != NULL && !json_is_array(edges))) {
        failf(msg, msglen, rc, "the edge's registration answer is malformed");
        goto out;
    }
    creds->connector_id = ptc_xstrdup(json_string_value(id));
    creds->group = ptc_xstrdup(json_string_value(group));
    size_t cnt = edges != NULL ? json_array_size(edges) : 0;
    creds->edges = ptc_xcalloc(cnt > 0 ? cnt : 1, sizeof(char *));
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(edges, i);
        ptc_net_hostport_t hp;
        if (!json_is_string(e) || ptc_net_parse_hostport(json_string_value(e), &hp) != 0 ||
            hp.host[0] == '\0' || hp.port == 0) {
            failf(msg, msglen, rc, "the edge's registration answer lists a malformed edge");
            goto out;
        }
        creds->edges[creds->edges_cnt++] = ptc_xstrdup(json_string_value(e));
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

/* The refusal members of an error answer, if it has them. */
static void describe_answer(const reg_t *g, char *msg, size_t msglen)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)ptc_buf_data(&g->body), g->body.len, 0, &jerr);
    json_t *code = json_object_get(doc, "error");
    json_t *text = json_object_get(doc, "message");
    ptc_register_describe_refusal(g->status, json_is_string(code) ? json_string_value(code) : NULL,
                                  json_is_string(text) ? json_string_value(text) : NULL, msg,
                                  msglen);
    json_decref(doc);
}

int ptc_register_run(const ptc_register_opts_t *opts, ptc_register_result_t *res, char *msg,
                     size_t msglen)
{
    memset(res, 0, sizeof(*res));
    msg[0] = '\0';
    ptc_log_ctx_t log;
    ptc_log_ctx_init(&log, opts->logger);
    ptc_url_t url;
    memset(&url, 0, sizeof(url));
    ptc_credentials_t creds;
    memset(&creds, 0, sizeof(creds));
    ptc_tls_config_t *tls = NULL;
    char *body = NULL;
    size_t body_len = 0;
    reg_t g;
    memset(&g, 0, sizeof(g));
    ptc_buf_init(&g.body);
    uv_loop_t loop;
    bool loop_ok = false;
    ptc_proxy_t proxy;
    memset(&proxy, 0, sizeof(proxy));
    bool use_proxy = false;
    int rc = 0;
    char host_port[300] = "";

    char uerr[256];
    if (opts->edge_url == NULL ||
        ptc_url_parse(opts->edge_url, PTC_URL_HTTP, &url, uerr, sizeof(uerr)) != 0 ||
        strcmp(url.scheme, "https") != 0 || strcmp(url.path, "/") != 0 || url.query != NULL) {
        rc = failf(msg, msglen, UV_EINVAL,
                   "invalid --edge URL: expected https://HOST[:PORT] (the edge's own name)");
        goto out;
    }
    if (ptc_url_format_authority(url.host, url.port, host_port, sizeof(host_port)) != 0) {
        snprintf(host_port, sizeof(host_port), "%s", url.host);
    }
    if (opts->token == NULL || !valid_token(opts->token)) {
        rc = failf(msg, msglen, UV_EINVAL,
                   "the token does not look like a Portico registration token (ptk_...)");
        goto out;
    }
    if (opts->pin_sha256 != NULL &&
        ptc_credentials_b64_exact(opts->pin_sha256, strlen(opts->pin_sha256), creds.pin_sha256,
                                  32) != 0) {
        rc = failf(msg, msglen, UV_EINVAL,
                   "invalid --pin-sha256: expected 43 characters of base64url (the SHA-256 of the "
                   "edge certificate's public key)");
        goto out;
    }
    creds.has_pin = opts->pin_sha256 != NULL;
    if (opts->ca_file != NULL) {
        /* The daemon may run from another directory: keep an absolute path. */
        char abs[PATH_MAX];
        if (realpath(opts->ca_file, abs) == NULL) {
            rc = failf(msg, msglen, -errno, "cannot read the CA file %s: %s", opts->ca_file,
                       strerror(errno));
            goto out;
        }
        creds.ca_file = ptc_xstrdup(abs);
    }
    {
        /* Registering again replaces the identity: say which one. */
        ptc_credentials_t old;
        char oerr[256];
        if (ptc_credentials_load(opts->credentials_path, &old, oerr, sizeof(oerr)) == 0) {
            snprintf(res->replaced_id, sizeof(res->replaced_id), "%s", old.connector_id);
        }
        ptc_credentials_dispose(&old);
    }
    rc = check_writable(opts->credentials_path, msg, msglen);
    if (rc != 0) {
        goto out;
    }
    if (opts->proxy != NULL) {
        const char *no_proxy = getenv("no_proxy") != NULL ? getenv("no_proxy") : getenv("NO_PROXY");
        char why[256];
        if (ptc_proxy_parse(opts->proxy, &proxy, why, sizeof(why)) != 0) {
            rc = failf(msg, msglen, UV_EINVAL, "invalid proxy: %s", why);
            goto out;
        }
        use_proxy = !ptc_proxy_bypass(no_proxy, url.host, url.port);
    }

    static const char *const alpn[] = {"http/1.1", NULL};
    ptc_tls_client_opts_t to = {
        .ca_file = creds.ca_file,
        .alpn = alpn,
        .no_verify = creds.has_pin,
        .has_pin = creds.has_pin,
    };
    memcpy(to.pin_sha256, creds.pin_sha256, 32);
    ptc_tls_err_t terr;
    memset(&terr, 0, sizeof(terr));
    rc = ptc_tls_client_config_new(&to, &tls, &terr);
    if (rc != 0) {
        rc = failf(msg, msglen, rc, "cannot load the trusted CAs%s%s: %s",
                   to.ca_file ? " from " : "", to.ca_file ? to.ca_file : "",
                   terr.reason[0] != '\0' ? terr.reason : ptc_strerror(rc));
        goto out;
    }

    /* §12.2 rule 3: the key pair is made just before registering. */
    ptc_ed25519_generate(&creds.key);
    char pk[64];
    int n = ptc_b64url_encode(creds.key.pk, 32, pk, sizeof(pk));
    (void)n; /* 43 characters always fit */
    char hostname[256] = "";
    if (gethostname(hostname, sizeof(hostname) - 1) != 0) {
        hostname[0] = '\0';
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "token", json_string(opts->token));
    json_object_set_new(doc, "public_key", json_string(pk));
    json_t *h = json_string(hostname);
    json_object_set_new(doc, "hostname", h != NULL ? h : json_string(""));
    json_object_set_new(doc, "agent", json_string(ptc_connector_agent()));
    body = json_dumps(doc, JSON_COMPACT);
    /* jansson's copy of the token goes with the document. */
    json_t *tok = json_object_get(doc, "token");
    ptc_keys_wipe((char *)json_string_value(tok), json_string_length(tok));
    json_decref(doc);
    if (body == NULL) {
        abort();
    }
    body_len = strlen(body);

    rc = uv_loop_init(&loop);
    if (rc != 0) {
        failf(msg, msglen, rc, "cannot start: %s", ptc_strerror(rc));
        goto out;
    }
    loop_ok = true;
    g.host = url.host;
    g.port = url.port;
    g.tls = tls;
    if (use_proxy) {
        rc = px_start(&g, &loop, &proxy, body, body_len, msg, msglen);
        ptc_keys_wipe(body, body_len);
        if (rc != 0) {
            goto out;
        }
        (void)uv_run(&loop, UV_RUN_DEFAULT);
        goto answered;
    }
    ptc_http_client_opts_t co = {
        .tls = tls,
        .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .tls_timeout_ms = CONNECT_TIMEOUT_MS,
        .head_timeout_ms = ANSWER_TIMEOUT_MS,
        .idle_timeout_ms = ANSWER_TIMEOUT_MS,
    };
    rc = ptc_http_client_new(&loop, &co, &g.client);
    if (rc != 0) {
        failf(msg, msglen, rc, "cannot start the HTTP client: %s", ptc_strerror(rc));
        goto out;
    }
    ptc_http_header_t hdrs[] = {
        {ptc_slice_str("content-type"), ptc_slice_str("application/json")},
        {ptc_slice_str("accept"), ptc_slice_str("application/json")},
        {ptc_slice_str("user-agent"), ptc_slice_str(ptc_connector_agent())},
    };
    ptc_http_client_req_opts_t ro = {
        .https = true,
        .host = url.host,
        .port = url.port,
        .tls = tls,
        .method = ptc_slice_str("POST"),
        .target = ptc_slice_str("/.portico/v1/register"),
        .headers = hdrs,
        .header_cnt = sizeof(hdrs) / sizeof(hdrs[0]),
        .body = {(const uint8_t *)body, body_len},
        .on_head = on_head,
        .on_body = on_body,
        .on_done = on_done,
        .on_error = on_error,
        .data = &g,
    };
    ptc_http_client_req_t *req = NULL;
    rc = ptc_http_client_request(g.client, &ro, &req);
    ptc_keys_wipe(body, body_len);
    if (rc != 0) {
        failf(msg, msglen, rc, "cannot send the registration request: %s", ptc_strerror(rc));
        ptc_http_client_close(g.client, on_client_closed, &g);
        goto out;
    }
    (void)uv_run(&loop, UV_RUN_DEFAULT);

answered:
    if (g.proxy_msg[0] != '\0') {
        rc = failf(msg, msglen, g.err, "%s", g.proxy_msg);
        goto out;
    }
    if (g.err != 0) {
        describe_error(&g, url.host, url.port, msg, msglen);
        rc = g.err;
        goto out;
    }
    if (g.too_large) {
        rc = failf(msg, msglen, PTC_EHTTP, "the edge's registration answer is too large");
        goto out;
    }
    if (g.status != 201 && g.status != 200) {
        describe_answer(&g, msg, msglen);
        rc = g.status == 401 || g.status == 410 ? PTC_EAUTH : PTC_EHTTP;
        goto out;
    }
    rc = parse_answer(&g, &creds, msg, msglen);
    if (rc != 0) {
        goto out;
    }
    creds.edge_url = ptc_xstrdup(opts->edge_url);
    rc = ptc_credentials_save(opts->credentials_path, &creds);
    if (rc != 0) {
        failf(msg, msglen, rc,
              "registered as %s, but cannot write the credential file %s: %s (register again "
              "with a new token once it is writable)",
              creds.connector_id, opts->credentials_path, ptc_strerror(rc));
        goto out;
    }
    snprintf(res->connector_id, sizeof(res->connector_id), "%s", creds.connector_id);
    snprintf(res->group, sizeof(res->group), "%s", creds.group);
    res->edges_cnt = creds.edges_cnt;
    PTC_LOG(&log, PTC_LOG_INFO, "registration_ok", PTC_LOG_STR("edge", host_port),
            PTC_LOG_STR("connector_id", creds.connector_id), PTC_LOG_STR("group", creds.group),
            PTC_LOG_UINT("edges", creds.edges_cnt),
            PTC_LOG_STR("credentials", opts->credentials_path));

out:
    if (rc != 0) {
        PTC_LOG(&log, PTC_LOG_ERROR, "registration_failed", PTC_LOG_STR("edge", host_port),
                PTC_LOG_STR("reason", msg), PTC_LOG_INT("status", g.status), PTC_LOG_ERR(rc));
    }
    if (loop_ok) {
        /* Let the client's handles close, then the loop must be empty (STYLE §5 rule 8). */
        (void)uv_run(&loop, UV_RUN_DEFAULT);
        int lrc = uv_loop_close(&loop);
        assert(lrc == 0);
        (void)lrc;
    }
    if (body != NULL) {
        ptc_keys_wipe(body, body_len);
        free(body);
    }
    ptc_buf_dispose(&g.body);
    if (g.request != NULL) {
        ptc_keys_wipe(g.request, g.request_len);
        free(g.request);
    }
    ptc_http_parser_free(g.parser);
    ptc_proxy_dispose(&proxy);
    ptc_tls_config_unref(tls);
    ptc_credentials_dispose(&creds);
    ptc_url_dispose(&url);
    return rc;
}
