/* SPDX-License-Identifier: MIT */
/*
 * URL parsing, resolution and request-path normalisation (see url.h). liburiparser does the
 * RFC 3986 grammar, percent-encoding normalisation and dot-segment removal; this file adds
 * Portico's policy on top: which schemes and hosts are acceptable, no user information or
 * fragments in configured URLs, and a strict pre-pass over request paths.
 */
#include "common/url.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uriparser/Uri.h>

#include "common/keys.h"

/* ---- small helpers ---- */

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0) {
        snprintf(err, errlen, "%s", msg);
    }
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

int ptc_url_hex_value(int c)
{
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static char *dup_range(const char *first, const char *after_last)
{
    size_t n = (size_t)(after_last - first);
    char *s = ptc_xmalloc(n + 1);
    memcpy(s, first, n);
    s[n] = '\0';
    return s;
}

/* RFC 3986 §3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@" ('%' aside). */
static bool is_pchar(unsigned char c)
{
    if (is_alpha(c) || is_digit(c)) {
        return true;
    }
    return strchr("-._~!$&'()*+,;=:@", c) != NULL && c != '\0';
}

/* ---- hosts ---- */

bool ptc_url_host_is_valid_name(const char *host)
{
    size_t n = strlen(host);
    if (n == 0 || n > PTC_URL_HOST_MAX) {
        return false;
    }
    size_t start = 0;
    bool all_digits = true;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || host[i] == '.') {
            size_t label_len = i - start;
            if (label_len == 0 || label_len > 63 || host[start] == '-' || host[i - 1] == '-') {
                return false;
            }
            if (i == n) {
                /* A name ending in an all-digit label ("1.2.3") reads as an IPv4 address in
                 * browsers (WHATWG URL): refuse it rather than guess. */
                return !all_digits;
            }
            start = i + 1;
            all_digits = true;
            continue;
        }
        unsigned char c = (unsigned char)host[i];
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') {
            return false;
        }
        if (!is_digit(c)) {
            all_digits = false;
        }
    }
    return false;
}

uint16_t ptc_url_default_port(const char *scheme)
{
    if (strcmp(scheme, "http") == 0 || strcmp(scheme, "ws") == 0) {
        return 80;
    }
    if (strcmp(scheme, "https") == 0 || strcmp(scheme, "wss") == 0) {
        return 443;
    }
    return 0;
}

/* Parses 1..5 digits into 1..65535. */
static bool parse_port(const char *p, size_t len, uint16_t *out)
{
    if (len == 0 || len > 5) {
        return false;
    }
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit((unsigned char)p[i])) {
            return false;
        }
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v == 0 || v > 65535) {
        return false;
    }
    *out = (uint16_t)v;
    return true;
}

/* ---- absolute URLs ---- */

/* Decodes %XX in place; refuses a bad escape and %00 (the result is a C string). */
static bool pct_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r != '\0'; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        int hi = ptc_url_hex_value((unsigned char)r[1]);
        int lo = hi < 0 ? -1 : ptc_url_hex_value((unsigned char)r[2]);
        if (lo < 0 || (hi == 0 && lo == 0)) {
            return false;
        }
        *w++ = (char)(hi * 16 + lo);
        r += 2;
    }
    *w = '\0';
    return true;
}

static int fill_host(const UriUriA *u, ptc_url_t *out, char *err, size_t errlen)
{
    if (u->hostData.ipFuture.first != NULL) {
        set_err(err, errlen, "IPvFuture hosts are not supported");
        return PTC_EFORMAT;
    }
    char buf[INET6_ADDRSTRLEN];
    if (u->hostData.ip6 != NULL) {
        if (inet_ntop(AF_INET6, u->hostData.ip6->data, buf, sizeof(buf)) == NULL) {
            set_err(err, errlen, "invalid IPv6 address");
            return PTC_EFORMAT;
        }
        out->host = ptc_xstrdup(buf);
        out->host_type = PTC_URL_HOST_IPV6;
        return 0;
    }
    if (u->hostData.ip4 != NULL) {
        if (inet_ntop(AF_INET, u->hostData.ip4->data, buf, sizeof(buf)) == NULL) {
            set_err(err, errlen, "invalid IPv4 address");
            return PTC_EFORMAT;
        }
        out->host = ptc_xstrdup(buf);
        out->host_type = PTC_URL_HOST_IPV4;
        return 0;
    }
    if (u->hostText.first == NULL || u->hostText.first == u->hostText.afterLast) {
        set_err(err, errlen, "the host is missing");
        return PTC_EFORMAT;
    }
    char *host = dup_range(u->hostText.first, u->hostText.afterLast);
    for (char *p = host; *p != '\0'; p++) {
        *p = lower(*p);
    }
    if (!ptc_url_host_is_valid_name(host)) {
        free(host);
        set_err(err, errlen, "invalid host name");
        return PTC_EFORMAT;
    }
    out->host = host;
    out->host_type = PTC_URL_HOST_NAME;
    return 0;
}

static int fill_userinfo(const UriUriA *u, ptc_url_t *out, char *err, size_t errlen)
{
    char *info = dup_range(u->userInfo.first, u->userInfo.afterLast);
    char *colon = strchr(info, ':');
    if (colon != NULL) {
        *colon = '\0';
        out->password = ptc_xstrdup(colon + 1);
    }
    out->user = info;
    if (!pct_decode(out->user) || (out->password != NULL && !pct_decode(out->password))) {
        set_err(err, errlen, "invalid percent-encoding in the user information");
        return PTC_EFORMAT;
    }
    return 0;
}

/* "/" + segment for each segment; "/" for none. Segments stay as written. */
static char *join_segments(const UriPathSegmentA *head)
{
    size_t n = 0;
    for (const UriPathSegmentA *s = head; s != NULL; s = s->next) {
        n += 1 + (size_t)(s->text.afterLast - s->text.first);
    }
    if (n == 0) {
        return ptc_xstrdup("/");
    }
    char *path = ptc_xmalloc(n + 1);
    size_t o = 0;
    for (const UriPathSegmentA *s = head; s != NULL; s = s->next) {
        size_t len = (size_t)(s->text.afterLast - s->text.first);
        path[o++] = '/';
        memcpy(path + o, s->text.first, len);
        o += len;
    }
    path[o] = '\0';
    return path;
}

static int parse_parts(const UriUriA *u, unsigned flags, ptc_url_t *out, char *err, size_t errlen)
{
    if (u->scheme.first == NULL) {
        set_err(err, errlen, "not an absolute URL");
        return PTC_EFORMAT;
    }
    out->scheme = dup_range(u->scheme.first, u->scheme.afterLast);
    for (char *p = out->scheme; *p != '\0'; p++) {
        *p = lower(*p);
    }
    bool is_http = strcmp(out->scheme, "http") == 0 || strcmp(out->scheme, "https") == 0;
    if ((flags & PTC_URL_HTTP) != 0 ? !is_http : ptc_url_default_port(out->scheme) == 0) {
        set_err(err, errlen,
                (flags & PTC_URL_HTTP) != 0 ? "the scheme must be http or https"
                                            : "the scheme must be http, https, ws or wss");
        return PTC_EFORMAT;
    }
    if (u->fragment.first != NULL) {
        set_err(err, errlen, "a fragment ('#') is not allowed");
        return PTC_EFORMAT;
    }
    if (u->hostText.first == NULL) {
        set_err(err, errlen, "the host is missing");
        return PTC_EFORMAT;
    }
    if (u->userInfo.first != NULL) {
        if ((flags & PTC_URL_USERINFO) == 0) {
            set_err(err, errlen, "user information ('user@') is not allowed");
            return PTC_EFORMAT;
        }
        int rc = fill_userinfo(u, out, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    int rc = fill_host(u, out, err, errlen);
    if (rc != 0) {
        return rc;
    }
    out->port = ptc_url_default_port(out->scheme);
    size_t port_len =
        u->portText.first != NULL ? (size_t)(u->portText.afterLast - u->portText.first) : 0;
    if (port_len > 0) {
        if (!parse_port(u->portText.first, port_len, &out->port)) {
            set_err(err, errlen, "the port must be 1..65535");
            return PTC_EFORMAT;
        }
        out->has_port = true;
    }
    out->path = join_segments(u->pathHead);
    if (u->query.first != NULL) {
        out->query = dup_range(u->query.first, u->query.afterLast);
    }
    return 0;
}

int ptc_url_parse(const char *text, unsigned flags, ptc_url_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    set_err(err, errlen, "");
    size_t len = strlen(text);
    if (len > PTC_URL_MAX_LEN) {
        set_err(err, errlen, "the URL is too long");
        return PTC_ELIMIT;
    }
    UriUriA u;
    const char *error_pos = NULL;
    if (uriParseSingleUriExA(&u, text, text + len, &error_pos) != URI_SUCCESS) {
        char msg[96];
        snprintf(msg, sizeof(msg), "invalid URL syntax at offset %zu",
                 error_pos != NULL ? (size_t)(error_pos - text) : (size_t)0);
        set_err(err, errlen, msg);
        return PTC_EFORMAT;
    }
    int rc = parse_parts(&u, flags, out, err, errlen);
    uriFreeUriMembersA(&u);
    if (rc != 0) {
        ptc_url_dispose(out);
    }
    return rc;
}

void ptc_url_dispose(ptc_url_t *u)
{
    free(u->scheme);
    if (u->password != NULL) {
        ptc_keys_wipe(u->password, strlen(u->password));
    }
    free(u->user);
    free(u->password);
    free(u->host);
    free(u->path);
    free(u->query);
    memset(u, 0, sizeof(*u));
}

/* ---- authorities ---- */

int ptc_url_parse_authority(const char *text, size_t len, char *host, size_t cap, uint16_t *port)
{
    *port = 0;
    if (cap > 0) {
        host[0] = '\0';
    }
    const char *host_start = text;
    size_t host_len;
    const char *rest;
    bool is_v6 = len > 0 && text[0] == '[';
    if (is_v6) {
        const char *close = memchr(text, ']', len);
        if (close == NULL) {
            return PTC_EFORMAT;
        }
        host_start = text + 1;
        host_len = (size_t)(close - host_start);
        rest = close + 1;
    } else {
        const char *colon = memchr(text, ':', len);
        host_len = colon != NULL ? (size_t)(colon - text) : len;
        rest = text + host_len;
    }
    size_t rest_len = len - (size_t)(rest - text);
    if (rest_len > 0) {
        if (rest[0] != ':') {
            return PTC_EFORMAT;
        }
        /* "host:" has an empty port (RFC 3986 §3.2.3): no port. */
        if (rest_len > 1 && !parse_port(rest + 1, rest_len - 1, port)) {
            return PTC_EFORMAT;
        }
    }
    char buf[PTC_URL_HOST_CAP];
    if (host_len == 0 || host_len >= sizeof(buf)) {
        return PTC_EFORMAT;
    }
    memcpy(buf, host_start, host_len);
    buf[host_len] = '\0';
    if (is_v6) {
        struct in6_addr a6;
        char canon[INET6_ADDRSTRLEN];
        if (inet_pton(AF_INET6, buf, &a6) != 1 ||
            inet_ntop(AF_INET6, &a6, canon, sizeof(canon)) == NULL) {
            return PTC_EFORMAT;
        }
        snprintf(buf, sizeof(buf), "%s", canon);
    } else {
        /* A fully qualified name may arrive with its root dot ("example.com."). */
        if (host_len > 1 && buf[host_len - 1] == '.') {
            buf[--host_len] = '\0';
        }
        for (size_t i = 0; i < host_len; i++) {
            buf[i] = lower(buf[i]);
        }
        struct in_addr a4;
        if (inet_pton(AF_INET, buf, &a4) != 1 && !ptc_url_host_is_valid_name(buf)) {
            return PTC_EFORMAT;
        }
    }
    size_t n = strlen(buf);
    if (n >= cap) {
        return PTC_EFORMAT;
    }
    memcpy(host, buf, n + 1);
    return 0;
}

int ptc_url_format_authority(const char *host, uint16_t port, char *out, size_t cap)
{
    bool is_v6 = strchr(host, ':') != NULL;
    int n = snprintf(out, cap, is_v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
    if (n < 0 || (size_t)n >= cap) {
        return PTC_ELIMIT;
    }
    return 0;
}

/* ---- resolution ---- */

int ptc_url_resolve(const char *base, const char *ref, char **out)
{
    *out = NULL;
    UriUriA b;
    UriUriA r;
    UriUriA abs;
    const char *pos;
    if (uriParseSingleUriA(&b, base, &pos) != URI_SUCCESS) {
        return PTC_EFORMAT;
    }
    if (uriParseSingleUriA(&r, ref, &pos) != URI_SUCCESS) {
        uriFreeUriMembersA(&b);
        return PTC_EFORMAT;
    }
    int rc = 0;
    int urc = uriAddBaseUriExA(&abs, &r, &b, URI_RESOLVE_STRICTLY);
    if (urc != URI_SUCCESS) {
        rc = urc == URI_ERROR_MALLOC ? PTC_ENOMEM : PTC_EFORMAT;
        goto out;
    }
    int chars = 0;
    if (uriToStringCharsRequiredA(&abs, &chars) != URI_SUCCESS) {
        rc = PTC_EFORMAT;
    } else {
        char *s = ptc_xmalloc((size_t)chars + 1);
        if (uriToStringA(s, &abs, chars + 1, NULL) != URI_SUCCESS) {
            free(s);
            rc = PTC_EFORMAT;
        } else {
            *out = s;
        }
    }
    uriFreeUriMembersA(&abs);
out:
    uriFreeUriMembersA(&r);
    uriFreeUriMembersA(&b);
    return rc;
}

/* ---- request paths ---- */

/* A host to stand in front of the path, so that uriparser reads a path starting with "//"
 * as a path (with an authority present) and never as an authority of its own. */
#define FAKE_ORIGIN "http://x"

int ptc_url_normalize_target(const char *target, size_t len, char **out, size_t *path_len)
{
    static const char hex[] = "0123456789ABCDEF";
    *out = NULL;
    if (len == 0 || target[0] != '/') {
        return PTC_EFORMAT;
    }
    if (memchr(target, '\0', len) != NULL) {
        return PTC_EFORMAT;
    }
    const char *q = memchr(target, '?', len);
    size_t plen = q != NULL ? (size_t)(q - target) : len;

    /* Pass 1: refuse what no URL may hold, and percent-encode what browsers would have. */
    size_t prefix_len = sizeof(FAKE_ORIGIN) - 1;
    char *buf = malloc(prefix_len + 3 * plen + 1);
    if (buf == NULL) {
        return PTC_ENOMEM;
    }
    memcpy(buf, FAKE_ORIGIN, prefix_len);
    size_t o = prefix_len;
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c < 0x20 || c == 0x7f || c == '#') {
            free(buf);
            return PTC_EFORMAT;
        }
        if (c == '%') {
            int hi = i + 2 < plen ? ptc_url_hex_value((unsigned char)target[i + 1]) : -1;
            int lo = hi >= 0 ? ptc_url_hex_value((unsigned char)target[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0)) {
                free(buf);
                return PTC_EFORMAT;
            }
            memcpy(buf + o, target + i, 3);
            o += 3;
            i += 2;
        } else if (c == '/' || is_pchar(c)) {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '%';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = '\0';

    /* Pass 2: uriparser decodes unreserved escapes, upper-cases the others, then removes dot
     * segments (RFC 3986 §6.2.2), in that order, which is what defeats "%2e%2e". */
    UriUriA u;
    const char *error_pos;
    int rc = 0;
    if (uriParseSingleUriExA(&u, buf, buf + o, &error_pos) != URI_SUCCESS) {
        free(buf);
        return PTC_EFORMAT;
    }
    int urc = uriNormalizeSyntaxExA(&u, URI_NORMALIZE_PATH);
    if (urc != URI_SUCCESS) {
        rc = urc == URI_ERROR_MALLOC ? PTC_ENOMEM : PTC_EFORMAT;
    } else {
        char *path = join_segments(u.pathHead);
        size_t n = strlen(path);
        size_t qlen = q != NULL ? len - plen : 0;
        char *res = ptc_xmalloc(n + qlen + 1);
        memcpy(res, path, n);
        if (qlen > 0) {
            memcpy(res + n, q, qlen);
        }
        res[n + qlen] = '\0';
        free(path);
        *out = res;
        if (path_len != NULL) {
            *path_len = n;
        }
    }
    uriFreeUriMembersA(&u);
    free(buf);
    return rc;
}

bool ptc_url_path_under(const char *path, size_t path_len, const char *prefix)
{
    size_t n = strlen(prefix);
    if (n > 0 && prefix[n - 1] == '/') {
        n--;
    }
    if (n == 0) {
        return true;
    }
    if (path_len < n || memcmp(path, prefix, n) != 0) {
        return false;
    }
    return path_len == n || path[n] == '/';
}
