/* SPDX-License-Identifier: MIT */
/*
 * The app request path, deciding half (see proxy.h): the request id, the target's form and
 * normalisation, routing, the settings the edge answers itself (robots.txt, maintenance,
 * home_page, Expect, max_body_size), the OIDC gate (edge/auth.c) for apps with pre_auth
 * "oidc", the mapping to the backend target (never outside the published internal path), the
 * edge's own pages, and the REQUEST head built from the client's head with the identity
 * headers the gate produced. proxy_stream.c runs the exchange once the request goes to a backend.
 */
#include "edge/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/http.h"
#include "common/log.h"
#include "common/url.h"
#include "edge/auth.h"
#include "edge/pages.h"
#include "edge/proxy_int.h"
#include "edge/state.h"

/* ---- pure helpers ---- */

bool ptc_proxy_request_id_is_valid(ptc_slice_t id)
{
    if (id.len == 0 || id.len > PTC_PROXY_REQUEST_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < id.len; i++) {
        uint8_t c = id.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool slice_has_prefix(ptc_slice_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && strncasecmp((const char *)s.ptr, prefix, n) == 0;
}

bool ptc_proxy_is_edge_cookie(ptc_slice_t name)
{
    static const char *const guards[] = {"__Host-", "__Secure-"};
    for (size_t i = 0; i < sizeof(guards) / sizeof(guards[0]); i++) {
        if (slice_has_prefix(name, guards[i])) {
            size_t n = strlen(guards[i]);
            name = (ptc_slice_t){name.ptr + n, name.len - n};
            break;
        }
    }
    return slice_has_prefix(name, PTC_PROXY_COOKIE_PREFIX);
}

/*
 * True if the path, read with "%2F" and "%5C" as separators too (some backends decode them
 * before resolving dot segments), has a "." or ".." segment. The normaliser removed every
 * real dot segment, so such a segment can only hide behind an encoded separator, where it
 * could climb out of the published path behind the edge's back.
 */
static bool has_hidden_dot_segment(const char *path, size_t len)
{
    size_t seg = 0;
    for (size_t i = 0; i <= len; i++) {
        size_t sep = 0;
        if (i == len || path[i] == '/') {
            sep = 1;
        } else if (path[i] == '%' && i + 2 < len &&
                   ((path[i + 1] == '2' && (path[i + 2] == 'F' || path[i + 2] == 'f')) ||
                    (path[i + 1] == '5' && (path[i + 2] == 'C' || path[i + 2] == 'c')))) {
            sep = 3;
        }
        if (sep == 0) {
            continue;
        }
        size_t l = i - seg;
        if ((l == 1 && path[seg] == '.') || (l == 2 && path[seg] == '.' && path[seg + 1] == '.')) {
            return true;
        }
        seg = i + sep;
        i += sep - 1;
    }
    return false;
}

int ptc_proxy_backend_target(const ptc_app_t *app, const char *norm, size_t path_len, char **out)
{
    *out = NULL;
    const char *ext = app->ext_path;
    size_t ext_len = strlen(ext);
    /* "/app" for the prefix "/app/" is the app's root too (ptc_url_path_under). */
    if (!ptc_url_path_under(norm, path_len, ext) || has_hidden_dot_segment(norm, path_len)) {
        return PTC_ENOTFOUND;
    }
    const char *rest = "";
    size_t rest_len = 0;
    if (path_len >= ext_len) {
        rest = norm + ext_len;
        rest_len = path_len - ext_len;
    }
    const char *query = path_len < strlen(norm) ? norm + path_len : NULL; /* at the '?' */
    size_t query_len = query != NULL ? strlen(query) : 0;

    ptc_buf_t b;
    ptc_buf_init(&b);
    ptc_buf_append(&b, app->int_path, strlen(app->int_path));
    ptc_buf_append(&b, rest, rest_len);
    size_t new_path_len = b.len;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < query_len; i++) {
        uint8_t c = (uint8_t)query[i];
        if (c >= 0x21 && c <= 0x7e) {
            ptc_buf_append(&b, &c, 1);
        } else {
            /* The normaliser leaves the query as received: a space or a byte above 0x7E is
             * not valid in a request line, so it goes on the wire escaped, as browsers do. */
            uint8_t esc[3] = {'%', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
            ptc_buf_append(&b, esc, 3);
        }
    }
    ptc_buf_append(&b, "", 1);
    char *target = (char *)ptc_buf_data(&b);
    /* The rest carries no dot segment (it was normalised), so this holds by construction; it
     * is checked all the same, since a request must never leave the published path. */
    if (!ptc_url_path_under(target, new_path_len, app->int_path)) {
        ptc_buf_dispose(&b);
        return PTC_ENOTFOUND;
    }
    *out = ptc_xstrdup(target);
    ptc_buf_dispose(&b);
    return 0;
}

/* The client's address without its port ("203.0.113.5", "2001:db8::1"). */
static void client_ip(const char *peer, char *out, size_t cap)
{
    size_t n = strlen(peer);
    const char *start = peer;
    if (peer[0] == '[') {
        const char *close = strchr(peer, ']');
        start = peer + 1;
        n = close != NULL ? (size_t)(close - start) : n - 1;
    } else {
        const char *colon = strrchr(peer, ':');
        n = colon != NULL ? (size_t)(colon - peer) : n;
    }
    snprintf(out, cap, "%.*s", (int)n, start);
}

/* "host[:port]" of the app's internal URL, the port only when it is not the scheme's default. */
static void internal_authority(const ptc_app_t *app, char *out, size_t cap)
{
    bool v6 = strchr(app->int_host, ':') != NULL;
    uint16_t def = app->int_https ? 443 : 80;
    if (app->int_port == def) {
        snprintf(out, cap, v6 ? "[%s]" : "%s", app->int_host);
    } else {
        snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", app->int_host, (unsigned)app->int_port);
    }
}

/* The request id: the client's X-Request-Id when there is exactly one and it is valid. */
static void choose_request_id(ptc_httpd_req_t *req, const ptc_http_head_t *h, char *out, size_t cap)
{
    const ptc_http_header_t *x = ptc_http_header_find(h->headers, h->header_cnt, "x-request-id");
    if (x != NULL && ptc_http_header_count(h->headers, h->header_cnt, "x-request-id") == 1) {
        ptc_slice_t v = ptc_http_trim_ows(x->value);
        if (ptc_proxy_request_id_is_valid(v)) {
            snprintf(out, cap, "%.*s", (int)v.len, (const char *)v.ptr);
            return;
        }
    }
    snprintf(out, cap, "%s", ptc_httpd_req_id(req));
}

/* ---- answers of the edge itself ---- */

size_t ptc_proxy_common_headers(const ptc_app_t *app, const char *id, ptc_http_header_t *out)
{
    size_t n = 0;
    out[n++] = (ptc_http_header_t){ptc_slice_str("X-Request-Id"), ptc_slice_str(id)};
    if (app != NULL && app->hsts && app->ext_https) {
        out[n++] = (ptc_http_header_t){ptc_slice_str("Strict-Transport-Security"),
                                       ptc_slice_str(PTC_PROXY_HSTS_VALUE)};
    }
    return n;
}

void ptc_proxy_respond_page(ptc_httpd_req_t *req, const ptc_app_t *app, const char *id,
                            ptc_page_cause_t cause)
{
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    bool json = ptc_page_wants_json(h->headers, h->header_cnt);
    ptc_buf_t body;
    ptc_buf_init(&body);
    const char *ctype = ptc_page_render(cause, id, json, &body);
    ptc_http_header_t hdrs[4];
    size_t n = 0;
    hdrs[n++] = (ptc_http_header_t){ptc_slice_str("Cache-Control"), ptc_slice_str("no-store")};
    n += ptc_proxy_common_headers(app, id, hdrs + n);
    (void)ptc_httpd_respond_simple(req, ptc_page_status(cause), ctype, hdrs, n, ptc_buf_data(&body),
                                   body.len);
    ptc_buf_dispose(&body);
}

/* An answer before any stream: sets the access-log fields, then the page. */
static void early_page(ptc_httpd_req_t *req, const ptc_app_t *app, const char *id,
                       ptc_page_cause_t cause)
{
    ptc_httpd_req_set_log_fields(req, app != NULL ? app->name : NULL, NULL, NULL, -1);
    ptc_proxy_respond_page(req, app, id, cause);
}

/* ---- the REQUEST head ---- */

/* Headers the edge sets or owns itself: the client's values never go to the backend. */
static bool is_edge_owned(ptc_slice_t name, const ptc_auth_header_t *ident, size_t ident_cnt)
{
    /* The app's sso_headers carry the edge's word on who the user is: a client's field of the
     * same name would be a forged identity. */
    for (size_t i = 0; i < ident_cnt; i++) {
        if (ptc_slice_case_eq(name, ident[i].name)) {
            return true;
        }
    }
    static const char *const names[] = {
        "host",   "x-forwarded-proto", "x-forwarded-host", "x-request-id", "forwarded",
        "expect", "content-length",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (ptc_slice_case_eq(name, names[i])) {
            return true;
        }
    }
    return slice_has_prefix(name, "x-portico-");
}

/* Appends the client's cookies except the edge's own ("a=1; b=2"), to `out`. */
static void filter_cookies(ptc_slice_t value, ptc_buf_t *out)
{
    ptc_slice_t rest = value;
    while (rest.len > 0) {
        const uint8_t *semi = memchr(rest.ptr, ';', rest.len);
        size_t plen = semi != NULL ? (size_t)(semi - rest.ptr) : rest.len;
        ptc_slice_t pair = ptc_http_trim_ows((ptc_slice_t){rest.ptr, plen});
        rest = semi != NULL ? (ptc_slice_t){semi + 1, rest.len - plen - 1} : (ptc_slice_t){NULL, 0};
        if (pair.len == 0) {
            continue;
        }
        const uint8_t *eq = memchr(pair.ptr, '=', pair.len);
        ptc_slice_t name = ptc_http_trim_ows(
            (ptc_slice_t){pair.ptr, eq != NULL ? (size_t)(eq - pair.ptr) : pair.len});
        if (ptc_proxy_is_edge_cookie(name)) {
            continue;
        }
        if (out->len > 0) {
            ptc_buf_append(out, "; ", 2);
        }
        ptc_buf_append(out, pair.ptr, pair.len);
    }
}

static ptc_proto_field_t field(ptc_slice_t name, ptc_slice_t value)
{
    return (ptc_proto_field_t){{name.ptr, name.len}, {value.ptr, value.len}};
}

static ptc_proto_field_t field_str(const char *name, const char *value, size_t len)
{
    return (ptc_proto_field_t){{(const uint8_t *)name, strlen(name)},
                               {(const uint8_t *)value, len}};
}

/*
 * The REQUEST head (docs/protocol.md §5.2, §5.5): the backend target from the app's
 * internal_url, and the client's end-to-end headers in order, without hop-by-hop fields (but
 * with Upgrade for an upgrade), the edge's own headers, X-Portico-*, the edge's cookies,
 * Expect, fields named like one of the identity headers, and Accept-Encoding for
 * translate_body apps; then the edge adds Host (the internal authority for translate_headers
 * apps, else the client's), the X-Forwarded-* trio, X-Request-Id, the identity headers of a
 * signed-in user (the app's sso_headers and X-Portico-Assertion) and, for a body of known
 * length, content-length (the connector then sends Content-Length to the backend; the body
 * itself is DATA ending with END_STREAM).
 */
void ptc_proxy_up_init(ptc_proxy_up_t *u, ptc_httpd_req_t *req, const ptc_app_t *app,
                       const char *id, const char *target, bool upgrade,
                       const ptc_auth_header_t *ident, size_t ident_cnt)
{
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    memset(u, 0, sizeof(*u));
    ptc_proto_field_t *f = ptc_xmalloc((h->header_cnt + 8 + ident_cnt) * sizeof(*f));
    ptc_buf_init(&u->xff);
    ptc_buf_init(&u->cookie);
    size_t n = 1; /* f[0] is Host */
    for (size_t i = 0; i < h->header_cnt; i++) {
        ptc_slice_t name = h->headers[i].name;
        ptc_slice_t value = h->headers[i].value;
        if (upgrade && ptc_slice_case_eq(name, "upgrade")) {
            /* §5.5 rule 2: an UPGRADE request carries the client's Upgrade field. */
            f[n++] = field(name, value);
            continue;
        }
        if (ptc_http_is_hop_by_hop(h->headers, h->header_cnt, name) ||
            is_edge_owned(name, ident, ident_cnt)) {
            continue;
        }
        if (ptc_slice_case_eq(name, "x-forwarded-for")) {
            ptc_slice_t v = ptc_http_trim_ows(value);
            if (v.len > 0) {
                if (u->xff.len > 0) {
                    ptc_buf_append(&u->xff, ", ", 2);
                }
                ptc_buf_append(&u->xff, v.ptr, v.len);
            }
            continue;
        }
        if (ptc_slice_case_eq(name, "cookie")) {
            filter_cookies(value, &u->cookie);
            continue;
        }
        if (app->translate_body && ptc_slice_case_eq(name, "accept-encoding")) {
            /* Bodies to be rewritten must come uncompressed. */
            continue;
        }
        f[n++] = field(name, value);
    }
    char ip[PTC_LOG_PEER_CAP];
    client_ip(ptc_httpd_req_peer(req), ip, sizeof(ip));
    if (u->xff.len > 0) {
        ptc_buf_append(&u->xff, ", ", 2);
    }
    ptc_buf_append(&u->xff, ip, strlen(ip));
    f[n++] = field_str("X-Forwarded-For", (const char *)ptc_buf_data(&u->xff), u->xff.len);
    f[n++] = field_str("X-Forwarded-Proto", "https", 5);
    ptc_slice_t client_host = h->host.len > 0 ? h->host : ptc_slice_str(ptc_httpd_req_host(req));
    f[n++] = field(ptc_slice_str("X-Forwarded-Host"), client_host);
    f[n++] = field_str("X-Request-Id", id, strlen(id));
    for (size_t i = 0; i < ident_cnt; i++) {
        f[n++] = field_str(ident[i].name, ident[i].value, strlen(ident[i].value));
    }
    if (u->cookie.len > 0) {
        f[n++] = field_str("Cookie", (const char *)ptc_buf_data(&u->cookie), u->cookie.len);
    }
    if (h->body == PTC_HTTP_BODY_LENGTH) {
        int l = snprintf(u->clen, sizeof(u->clen), "%llu", (unsigned long long)h->content_length);
        f[n++] = field_str("content-length", u->clen, (size_t)l);
    }
    if (app->translate_headers) {
        internal_authority(app, u->host, sizeof(u->host));
        f[0] = field_str("Host", u->host, strlen(u->host));
    } else {
        f[0] = field(ptc_slice_str("Host"), client_host);
    }
    const char *sni = ptc_url_host_is_valid_name(app->int_host) ? app->int_host : "";
    u->fields = f;
    u->head = (ptc_request_head_t){
        .scheme = app->int_https ? PTC_PROTO_SCHEME_HTTPS : PTC_PROTO_SCHEME_HTTP,
        .validate_tls = app->int_https && app->validate_backend_tls,
        .upgrade = upgrade,
        .port = app->int_port,
        .timeout_ms = (uint32_t)app->backend_timeout_ms,
        .host = {(const uint8_t *)app->int_host, strlen(app->int_host)},
        .sni = {(const uint8_t *)sni, strlen(sni)},
        .method = {h->method.ptr, h->method.len},
        .target = {(const uint8_t *)target, strlen(target)},
        .headers = f,
        .header_cnt = n,
    };
}

void ptc_proxy_up_dispose(ptc_proxy_up_t *u)
{
    free(u->fields);
    u->fields = NULL;
    ptc_buf_dispose(&u->xff);
    ptc_buf_dispose(&u->cookie);
}

/* ---- routing ---- */

/* True if some app is published on `host` (any path). */
static bool host_has_app(const ptc_state_t *st, const char *host)
{
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host++;
        hl -= 2;
    }
    size_t cnt = ptc_state_app_count(st);
    for (size_t i = 0; i < cnt; i++) {
        const ptc_app_t *a = ptc_state_app_at(st, i);
        if (strlen(a->ext_host) == hl && memcmp(a->ext_host, host, hl) == 0) {
            return true;
        }
    }
    return false;
}

/* True if some app published on `host` answers robots.txt (for hosts whose "/" is no app's). */
static bool host_wants_robots(const ptc_state_t *st, const char *host)
{
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host++;
        hl -= 2;
    }
    size_t cnt = ptc_state_app_count(st);
    for (size_t i = 0; i < cnt; i++) {
        const ptc_app_t *a = ptc_state_app_at(st, i);
        if (a->robots_txt && strlen(a->ext_host) == hl && memcmp(a->ext_host, host, hl) == 0) {
            return true;
        }
    }
    return false;
}

static void respond_text(ptc_httpd_req_t *req, const ptc_app_t *app, const char *id, int status,
                         const char *ctype, const char *extra_name, const char *extra_value,
                         const char *body)
{
    ptc_http_header_t hdrs[4];
    size_t n = ptc_proxy_common_headers(app, id, hdrs);
    if (extra_name != NULL) {
        hdrs[n++] = (ptc_http_header_t){ptc_slice_str(extra_name), ptc_slice_str(extra_value)};
    }
    ptc_httpd_req_set_log_fields(req, app != NULL ? app->name : NULL, NULL, NULL, -1);
    (void)ptc_httpd_respond_simple(req, status, ctype, hdrs, n, body, strlen(body));
}

/* True when `home_page` is the app's external root itself (nothing to redirect to). */
static bool home_is_root(const ptc_app_t *app)
{
    ptc_url_t u;
    char why[128];
    if (ptc_url_parse(app->home_page, PTC_URL_HTTP, &u, why, sizeof(why)) != 0) {
        return true;
    }
    char *norm = NULL;
    size_t plen = 0;
    bool same = u.query == NULL &&
                ptc_url_normalize_target(u.path, strlen(u.path), &norm, &plen) == 0 &&
                strcmp(norm, app->ext_path) == 0;
    free(norm);
    ptc_url_dispose(&u);
    return same;
}

/*
 * Everything the edge decides before a stream: the target's form, normalisation, routing,
 * robots.txt, maintenance, the home page redirect, Expect, CONNECT and the announced body
 * size. Returns the app (borrowed) when the request goes on to the backend, with *norm_out
 * (the normalised target, the caller frees it) and *path_len; NULL when it was answered.
 */
static const ptc_app_t *decide(ptc_edge_t *edge, ptc_httpd_req_t *req, const char *id,
                               char **norm_out, size_t *path_len, ptc_session_t *ident,
                               bool *signed_in)
{
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    const char *host = ptc_httpd_req_host(req);
    *norm_out = NULL;
    if (ptc_slice_eq(h->method, "CONNECT")) {
        early_page(req, NULL, id, PTC_PAGE_METHOD_NOT_ALLOWED);
        return NULL;
    }
    if (h->target.len == 0 || h->target.ptr[0] != '/') {
        /* Asterisk- and absolute-form targets are not routed to apps. */
        early_page(req, NULL, id, PTC_PAGE_BAD_REQUEST);
        return NULL;
    }
    char *norm = NULL;
    size_t plen = 0;
    if (ptc_url_normalize_target((const char *)h->target.ptr, h->target.len, &norm, &plen) != 0) {
        early_page(req, NULL, id, PTC_PAGE_BAD_REQUEST);
        return NULL;
    }
    const ptc_app_t *app = ptc_state_app_route(edge->state, host, strlen(host), norm, plen);
    bool get = ptc_slice_eq(h->method, "GET") || ptc_slice_eq(h->method, "HEAD");
    if (get && plen == 11 && memcmp(norm, "/robots.txt", 11) == 0 &&
        (app != NULL ? app->robots_txt : host_wants_robots(edge->state, host))) {
        respond_text(req, app, id, 200, "text/plain; charset=utf-8", "Cache-Control",
                     "max-age=3600", PTC_PAGE_ROBOTS_TXT);
        free(norm);
        return NULL;
    }
    if (plen >= strlen(PTC_AUTH_PREFIX) &&
        memcmp(norm, PTC_AUTH_PREFIX, strlen(PTC_AUTH_PREFIX)) == 0) {
        /* Paths under /.portico/ are the edge's on every app host (docs/apps.md "Sign-in"),
         * even when no app covers them: the sign-in paths on a host with an oidc app, the key
         * set on every host with an app; the rest never reaches a backend. */
        const ptc_app_t *sign_in_app = ptc_auth_host_app(edge, host, strlen(host), app);
        if (sign_in_app != NULL) {
            (void)ptc_auth_gate(edge, req, sign_in_app, id, ident);
        } else if (strcmp(norm, PTC_AUTH_JWKS_PATH) == 0 &&
                   (app != NULL || host_has_app(edge->state, host))) {
            ptc_auth_respond_jwks(edge, req, id);
        } else {
            early_page(req, app, id, PTC_PAGE_NOT_FOUND);
        }
        free(norm);
        return NULL;
    }
    if (app == NULL) {
        early_page(req, NULL, id, PTC_PAGE_NOT_FOUND);
        free(norm);
        return NULL;
    }
    if (app->maintenance_mode) {
        early_page(req, app, id, PTC_PAGE_MAINTENANCE);
        free(norm);
        return NULL;
    }
    if (app->pre_auth != PTC_APP_PRE_AUTH_PASSTHROUGH) {
        /* An oidc app's requests need a signed-in, assigned user (DESIGN §1 step 4, §5);
         * the gate answers every other request itself. */
        if (ptc_auth_gate(edge, req, app, id, ident) != 1) {
            free(norm);
            return NULL;
        }
        *signed_in = true;
    }
    bool is_root = plen == strlen(app->ext_path) && norm[plen] == '\0' &&
                   memcmp(norm, app->ext_path, plen) == 0;
    if (get && is_root && !home_is_root(app)) {
        respond_text(req, app, id, 302, "text/plain; charset=utf-8", "Location", app->home_page,
                     "");
        free(norm);
        return NULL;
    }
    const ptc_http_header_t *expect = ptc_http_header_find(h->headers, h->header_cnt, "expect");
    if (expect != NULL && !h->expect_continue) {
        early_page(req, app, id, PTC_PAGE_EXPECTATION_FAILED);
        free(norm);
        return NULL;
    }
    if (app->max_body_size > 0 && h->body == PTC_HTTP_BODY_LENGTH &&
        h->content_length > app->max_body_size) {
        /* Refused before a byte of it is read (nor a 100 Continue sent). */
        PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_INFO, "http_body_too_large",
                PTC_LOG_STR("app", app->name), PTC_LOG_UINT("limit", app->max_body_size),
                PTC_LOG_UINT("content_length", h->content_length));
        early_page(req, app, id, PTC_PAGE_BODY_TOO_LARGE);
        free(norm);
        return NULL;
    }
    *norm_out = norm;
    *path_len = plen;
    return app;
}

int ptc_proxy_route(void *data, ptc_httpd_req_t *req)
{
    ptc_edge_t *edge = data;
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    char id[PTC_PROXY_REQUEST_ID_MAX + 1];
    choose_request_id(req, h, id, sizeof(id));
    ptc_log_ctx_set_req(ptc_httpd_req_log(req), id);

    char *norm = NULL;
    size_t plen = 0;
    ptc_session_t ident;
    memset(&ident, 0, sizeof(ident));
    bool signed_in = false;
    const ptc_app_t *app = decide(edge, req, id, &norm, &plen, &ident, &signed_in);
    if (app == NULL) {
        ptc_session_dispose(&ident);
        return 0;
    }
    char *target = NULL;
    if (ptc_proxy_backend_target(app, norm, plen, &target) != 0) {
        /* The path leaves what the app publishes: it never reaches the backend. */
        free(norm);
        ptc_session_dispose(&ident);
        early_page(req, app, id, PTC_PAGE_NOT_FOUND);
        return 0;
    }
    free(norm);

    ptc_proxy_identity_t who = {NULL, 0, 0};
    if (signed_in) {
        who.cnt = ptc_auth_identity_headers(app, &ident, edge->assertion_key, edge->cfg.edge_host,
                                            (int64_t)(ptc_edge_now_ms() / 1000u), &who.headers);
        who.session_exp = ident.exp;
    }
    ptc_session_dispose(&ident);
    ptc_proxy_stream_start(edge, req, app, id, target, &who);
    return 0;
}

void ptc_proxy_install(ptc_edge_t *edge)
{
    edge->app_route = ptc_proxy_route;
    edge->app_route_data = edge;
}
