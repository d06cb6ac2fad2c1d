/* SPDX-License-Identifier: MIT */
/*
 * URL translation of response headers and bodies (see translate.h). The translator keeps the
 * two base URLs split into the pieces the header rewriter compares and writes, and a small
 * table of byte patterns (the internal base URL in each written form, each with the external
 * URL to put in its place) for the body rewriter.
 *
 * The body rewriter decides at each position from the bytes that start there plus the one
 * byte before it, never from anything earlier, so the output cannot depend on where chunks
 * are cut: bytes that may begin a pattern but end the input so far are held back (fewer than
 * the longest pattern plus its delimiter) and scanned again, joined with the next chunk.
 */
#include "edge/translate.h"

#include "common/http.h"
#include "common/url.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One written form of the internal base URL and what replaces it in a body. */
typedef struct pattern {
    uint8_t *bytes; /* lower-case where `fold` is set */
    uint8_t *fold;  /* per byte: compare ASCII case-insensitively (scheme and host) */
    size_t len;     /* bytes to match; a delimiter byte (or the end) must follow */
    uint8_t *repl;  /* the external base URL in the same form */
    size_t repl_len;
    bool slashes; /* scheme-relative: starts with "//" or "\/\/" */
} pattern_t;

struct ptc_translate {
    unsigned refs;
    /* internal side */
    char int_scheme[8];    /* "http" or "https" */
    char *int_host;        /* lower-case, as written in a URL: brackets around IPv6 */
    char *int_cookie_host; /* lower-case, without brackets (for Domain comparisons) */
    bool int_host_is_name; /* a DNS name (parent domains make sense) */
    uint16_t int_port;     /* explicit or default */
    char *int_prefix;      /* the path prefix without its trailing '/' ("" for the root) */
    /* external side */
    char *ext_origin;      /* "https://host[:port]" (port only when not the default) */
    char *ext_authority;   /* "host[:port]" */
    char *ext_cookie_host; /* lower-case, without brackets */
    char *ext_prefix;      /* without its trailing '/' ("" for the root) */
    /* bodies */
    pattern_t *patterns;
    size_t pattern_cnt;
    size_t max_len;   /* longest pattern (without its delimiter) */
    bool starts[256]; /* bytes that may begin a pattern */
};

struct ptc_translate_body {
    ptc_translate_t *t;
    int prev;    /* the input byte before held[0]; -1 at the start of the body */
    size_t held; /* bytes held back at the front of `work` */
    bool finished;
    bool failed;
    uint8_t work[]; /* held tail + the head of the next chunk: 2 * (max_len + 1) */
};

/* ---- small helpers ---- */

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

static bool is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool case_eq(const uint8_t *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower(a[i]) != lower((uint8_t)b[i])) {
            return false;
        }
    }
    return true;
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static char *dup_n(const char *p, size_t n)
{
    char *s = ptc_xmalloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* A NUL-terminated string from a format of a few parts (construction only). */
static char *concat(const char *a, const char *b, const char *c, const char *d)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t lc = strlen(c);
    size_t ld = strlen(d);
    char *s = ptc_xmalloc(la + lb + lc + ld + 1);
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc);
    memcpy(s + la + lb + lc, d, ld);
    s[la + lb + lc + ld] = '\0';
    return s;
}

/* The host as it appears in a URL authority. */
static char *url_host(const ptc_url_t *u)
{
    if (u->host_type == PTC_URL_HOST_IPV6) {
        return concat("[", u->host, "]", "");
    }
    return ptc_xstrdup(u->host);
}

/* A path prefix without its trailing '/', or NULL if it holds anything but visible ASCII. */
static char *prefix_of(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < n; i++) {
        if (path[i] <= 0x20 || path[i] >= 0x7f) {
            return NULL;
        }
    }
    if (n > 0 && path[n - 1] == '/') {
        n--;
    }
    return dup_n(path, n);
}

/* ---- construction ---- */

/* Writes `s` into pattern bytes, with "/" as "\/" when `escaped`. Returns the new length. */
static size_t put_form(uint8_t *dst, uint8_t *fold, size_t at, const char *s, bool folded,
                       bool escaped)
{
    for (size_t i = 0; s[i] != '\0'; i++) {
        uint8_t c = (uint8_t)s[i];
        if (escaped && c == '/') {
            if (dst != NULL) {
                dst[at] = '\\';
                if (fold != NULL) {
                    fold[at] = 0;
                }
            }
            at++;
        }
        if (dst != NULL) {
            dst[at] = folded ? lower(c) : c;
            if (fold != NULL) {
                fold[at] = folded && c != '/';
            }
        }
        at++;
    }
    return at;
}

/*
 * Adds the pattern "scheme://host port prefix" (or "//host port prefix" when scheme is
 * NULL), optionally JSON-escaped, replaced by "ext_scheme://authority prefix" (or
 * "//authority prefix").
 */
static void add_pattern(ptc_translate_t *t, const char *scheme, const char *port,
                        const char *ext_scheme, bool escaped)
{
    pattern_t *p = &t->patterns[t->pattern_cnt++];
    p->slashes = scheme == NULL;
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *b = pass == 0 ? NULL : p->bytes;
        uint8_t *f = pass == 0 ? NULL : p->fold;
        size_t n = 0;
        if (scheme != NULL) {
            n = put_form(b, f, n, scheme, true, escaped);
            n = put_form(b, f, n, ":", false, escaped);
        }
        n = put_form(b, f, n, "//", false, escaped);
        n = put_form(b, f, n, t->int_host, true, escaped);
        n = put_form(b, f, n, port, false, escaped);
        n = put_form(b, f, n, t->int_prefix, false, escaped);
        if (pass == 0) {
            p->len = n;
            p->bytes = ptc_xmalloc(n);
            p->fold = ptc_xmalloc(n);
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *b = pass == 0 ? NULL : p->repl;
        size_t n = 0;
        if (scheme != NULL) {
            n = put_form(b, NULL, n, ext_scheme, false, escaped);
            n = put_form(b, NULL, n, ":", false, escaped);
        }
        n = put_form(b, NULL, n, "//", false, escaped);
        n = put_form(b, NULL, n, t->ext_authority, false, escaped);
        n = put_form(b, NULL, n, t->ext_prefix, false, escaped);
        if (pass == 0) {
            p->repl_len = n;
            p->repl = ptc_xmalloc(n);
        }
    }
    if (p->len > t->max_len) {
        t->max_len = p->len;
    }
    t->starts[p->bytes[0]] = true;
    if (p->fold[0] && p->bytes[0] >= 'a' && p->bytes[0] <= 'z') {
        t->starts[p->bytes[0] - ('a' - 'A')] = true;
    }
}

/*
 * Every written form of the internal base URL: http(s) and its WebSocket twin ws(s), with the
 * port written, and without it when it is the default; the scheme-relative forms; and all of
 * them JSON-escaped.
 */
static void build_patterns(ptc_translate_t *t, bool int_default_port, bool ext_https)
{
    bool int_https = strcmp(t->int_scheme, "https") == 0;
    const char *schemes[2][2] = {
        {int_https ? "https" : "http", ext_https ? "https" : "http"},
        {int_https ? "wss" : "ws", ext_https ? "wss" : "ws"},
    };
    char port[8];
    snprintf(port, sizeof(port), ":%u", (unsigned)t->int_port);
    const char *ports[2] = {port, ""};
    size_t port_cnt = int_default_port ? 2 : 1;

    t->patterns = ptc_xcalloc(2 * (2 * port_cnt + port_cnt), sizeof(pattern_t));
    for (int escaped = 0; escaped < 2; escaped++) {
        for (size_t s = 0; s < 2; s++) {
            for (size_t k = 0; k < port_cnt; k++) {
                add_pattern(t, schemes[s][0], ports[k], schemes[s][1], escaped);
            }
        }
        for (size_t k = 0; k < port_cnt; k++) {
            add_pattern(t, NULL, ports[k], NULL, escaped);
        }
    }
}

int ptc_translate_new(const char *internal_url, const char *external_url, ptc_translate_t **out)
{
    *out = NULL;
    ptc_url_t in;
    ptc_url_t ex;
    char err[128];
    int rc = ptc_url_parse(internal_url, PTC_URL_HTTP, &in, err, sizeof(err));
    if (rc != 0) {
        return rc;
    }
    rc = ptc_url_parse(external_url, PTC_URL_HTTP, &ex, err, sizeof(err));
    if (rc != 0) {
        ptc_url_dispose(&in);
        return rc;
    }
    ptc_translate_t *t = ptc_xcalloc(1, sizeof(*t));
    t->refs = 1;
    if (in.query != NULL || ex.query != NULL) {
        rc = PTC_EFORMAT;
        goto fail;
    }
    t->int_prefix = prefix_of(in.path);
    t->ext_prefix = prefix_of(ex.path);
    if (t->int_prefix == NULL || t->ext_prefix == NULL) {
        rc = PTC_EFORMAT;
        goto fail;
    }
    snprintf(t->int_scheme, sizeof(t->int_scheme), "%s", in.scheme);
    t->int_host = url_host(&in);
    t->int_cookie_host = ptc_xstrdup(in.host);
    t->int_host_is_name = in.host_type == PTC_URL_HOST_NAME;
    t->int_port = in.port;

    char *ext_host = url_host(&ex);
    if (ex.port != ptc_url_default_port(ex.scheme)) {
        char port[8];
        snprintf(port, sizeof(port), ":%u", (unsigned)ex.port);
        t->ext_authority = concat(ext_host, port, "", "");
    } else {
        t->ext_authority = ptc_xstrdup(ext_host);
    }
    free(ext_host);
    t->ext_origin = concat(ex.scheme, "://", t->ext_authority, "");
    t->ext_cookie_host = ptc_xstrdup(ex.host);

    build_patterns(t, in.port == ptc_url_default_port(in.scheme), strcmp(ex.scheme, "https") == 0);
    ptc_url_dispose(&in);
    ptc_url_dispose(&ex);
    *out = t;
    return 0;

fail:
    ptc_url_dispose(&in);
    ptc_url_dispose(&ex);
    ptc_translate_unref(t);
    return rc;
}

ptc_translate_t *ptc_translate_ref(ptc_translate_t *t)
{
    t->refs++;
    return t;
}

void ptc_translate_unref(ptc_translate_t *t)
{
    if (t == NULL || --t->refs > 0) {
        return;
    }
    for (size_t i = 0; i < t->pattern_cnt; i++) {
        free(t->patterns[i].bytes);
        free(t->patterns[i].fold);
        free(t->patterns[i].repl);
    }
    free(t->patterns);
    free(t->int_host);
    free(t->int_cookie_host);
    free(t->int_prefix);
    free(t->ext_origin);
    free(t->ext_authority);
    free(t->ext_cookie_host);
    free(t->ext_prefix);
    free(t);
}

/* ---- URL references (Location, Content-Location, Refresh) ---- */

/* Appends, remembering the first failure (so callers check once). */
typedef struct writer {
    ptc_buf_t *out;
    int rc;
} writer_t;

static void put(writer_t *w, const void *p, size_t n)
{
    if (w->rc == 0 && n > 0) {
        w->rc = ptc_buf_try_append(w->out, p, n);
    }
}

static void put_str(writer_t *w, const char *s)
{
    put(w, s, strlen(s));
}

/*
 * If rest[0..n) (a path with its query and fragment, possibly empty, after an authority or
 * standing alone) lies under the internal prefix, sets *tail to the part after the prefix
 * (which starts with '/', '?', '#' or is empty) and returns true. *implied is set when the
 * path is empty ("http://host?q"), which means "/": the tail then lacks that '/'.
 */
static bool under_prefix(const ptc_translate_t *t, const uint8_t *rest, size_t n,
                         const uint8_t **tail, size_t *tail_len, bool *implied)
{
    size_t pl = strlen(t->int_prefix);
    *implied = n == 0 || rest[0] != '/';
    if (*implied) {
        /* "http://host" or "http://host?q": the path is "/", under the root prefix only. */
        if (pl != 0 || (n > 0 && rest[0] != '?' && rest[0] != '#')) {
            return false;
        }
        *tail = rest;
        *tail_len = n;
        return true;
    }
    if (n < pl || memcmp(rest, t->int_prefix, pl) != 0) {
        return false;
    }
    if (n > pl && rest[pl] != '/' && rest[pl] != '?' && rest[pl] != '#') {
        return false;
    }
    *tail = rest + pl;
    *tail_len = n - pl;
    return true;
}

/*
 * Writes the external prefix followed by `tail` (the part after the internal prefix), with
 * the '/' an empty path implies, and never an empty path.
 */
static void put_mapped_path(writer_t *w, const ptc_translate_t *t, const uint8_t *tail,
                            size_t tail_len, bool implied)
{
    put_str(w, t->ext_prefix);
    if (implied || (t->ext_prefix[0] == '\0' && (tail_len == 0 || tail[0] != '/'))) {
        put(w, "/", 1);
    }
    put(w, tail, tail_len);
}

/*
 * Does the authority a[0..n) name the internal host and port? The port may be written or,
 * when it is the internal scheme's default, left out (or empty: "host:").
 */
static bool is_internal_authority(const ptc_translate_t *t, const uint8_t *a, size_t n)
{
    size_t host_end = n;
    if (memchr(a, '@', n) != NULL) {
        return false; /* user information: never ours to rewrite */
    }
    if (n > 0 && a[0] == '[') {
        const uint8_t *close = memchr(a, ']', n);
        if (close == NULL) {
            return false;
        }
        host_end = (size_t)(close - a) + 1;
    } else {
        const uint8_t *colon = memchr(a, ':', n);
        if (colon != NULL) {
            host_end = (size_t)(colon - a);
        }
    }
    size_t hl = strlen(t->int_host);
    if (host_end != hl || !case_eq(a, t->int_host, hl)) {
        return false;
    }
    uint32_t port = ptc_url_default_port(t->int_scheme);
    if (host_end < n) {
        if (a[host_end] != ':') {
            return false;
        }
        if (host_end + 1 < n) {
            port = 0;
            for (size_t i = host_end + 1; i < n; i++) {
                if (a[i] < '0' || a[i] > '9') {
                    return false;
                }
                port = port * 10 + (uint32_t)(a[i] - '0');
                if (port > 65535) {
                    return false;
                }
            }
        }
    }
    return port == t->int_port;
}

/* Translates one URL reference u[0..n) into `w`; false (nothing written) if it is not ours. */
static bool put_url(writer_t *w, const ptc_translate_t *t, const uint8_t *u, size_t n)
{
    size_t a = 0;
    bool absolute = false;
    if (n >= 2 && u[0] == '/' && u[1] == '/') {
        a = 2;
    } else if (n >= 1 && u[0] == '/') {
        const uint8_t *tail;
        size_t tail_len;
        bool implied;
        if (!under_prefix(t, u, n, &tail, &tail_len, &implied)) {
            return false;
        }
        /* An external root prefix and a tail of "//x" or "/\x" would read as a path that
         * browsers take for another host (an open redirect): write an absolute URL. */
        if (t->ext_prefix[0] == '\0' && tail_len >= 2 && tail[0] == '/' &&
            (tail[1] == '/' || tail[1] == '\\')) {
            put_str(w, t->ext_origin);
        }
        put_mapped_path(w, t, tail, tail_len, implied);
        return true;
    } else {
        size_t sl = strlen(t->int_scheme);
        if (n < sl + 3 || !case_eq(u, t->int_scheme, sl) || memcmp(u + sl, "://", 3) != 0) {
            return false;
        }
        a = sl + 3;
        absolute = true;
    }
    size_t e = a;
    while (e < n && u[e] != '/' && u[e] != '?' && u[e] != '#' && u[e] != '\\') {
        e++;
    }
    if (!is_internal_authority(t, u + a, e - a) || (e < n && u[e] == '\\')) {
        return false;
    }
    const uint8_t *tail;
    size_t tail_len;
    bool implied;
    if (!under_prefix(t, u + e, n - e, &tail, &tail_len, &implied)) {
        return false;
    }
    if (absolute) {
        put_str(w, t->ext_origin);
    } else {
        put(w, "//", 2);
        put_str(w, t->ext_authority);
    }
    put_mapped_path(w, t, tail, tail_len, implied);
    return true;
}

/* Location and Content-Location: the whole value is a URL reference. */
static void put_location(writer_t *w, const ptc_translate_t *t, ptc_slice_t v)
{
    if (!put_url(w, t, v.ptr, v.len)) {
        put(w, v.ptr, v.len);
    }
}

/*
 * Refresh: "<delay>[;|,] [url=]<url>", the URL optionally quoted, parsed as browsers do
 * (HTML "shared declarative refresh steps"); only the URL's bytes are replaced.
 */
static void put_refresh(writer_t *w, const ptc_translate_t *t, ptc_slice_t v)
{
    const uint8_t *p = v.ptr;
    size_t n = v.len;
    size_t i = 0;
    while (i < n && is_ows(p[i])) {
        i++;
    }
    while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '.')) {
        i++;
    }
    while (i < n && is_ows(p[i])) {
        i++;
    }
    if (i < n && (p[i] == ';' || p[i] == ',')) {
        i++;
    }
    while (i < n && is_ows(p[i])) {
        i++;
    }
    if (n - i >= 3 && case_eq(p + i, "url", 3)) {
        size_t k = i + 3;
        while (k < n && is_ows(p[k])) {
            k++;
        }
        if (k < n && p[k] == '=') {
            k++;
            while (k < n && is_ows(p[k])) {
                k++;
            }
            i = k;
        }
    }
    size_t end = n;
    if (i < n && (p[i] == '\'' || p[i] == '"')) {
        const uint8_t *q = memchr(p + i + 1, p[i], n - i - 1);
        i++;
        end = q != NULL ? (size_t)(q - p) : n;
    } else {
        while (end > i && is_ows(p[end - 1])) {
            end--;
        }
    }
    put(w, p, i);
    if (!put_url(w, t, p + i, end - i)) {
        put(w, p + i, end - i);
    }
    put(w, p + end, n - end);
}

/* ---- Set-Cookie ---- */

/* Domain: the internal host or one of its parent domains becomes the external host. */
static bool put_cookie_domain(writer_t *w, const ptc_translate_t *t, const uint8_t *v, size_t n)
{
    if (n > 0 && v[0] == '.') {
        v++;
        n--;
    }
    size_t hl = strlen(t->int_cookie_host);
    bool ours = n == hl && n > 0 && case_eq(v, t->int_cookie_host, n);
    if (!ours && t->int_host_is_name && n > 0 && n < hl) {
        const char *suffix = t->int_cookie_host + (hl - n);
        ours = suffix[-1] == '.' && case_eq(v, suffix, n);
    }
    if (ours) {
        put_str(w, t->ext_cookie_host);
    }
    return ours;
}

/*
 * Path: a path below the internal prefix keeps its tail under the external prefix, and the
 * prefix written with its trailing '/' becomes the external prefix with one; the prefix
 * without it, or any path above it (a cookie for the whole app), becomes the external prefix
 * without its trailing '/' ("/" for the root).
 */
static bool put_cookie_path(writer_t *w, const ptc_translate_t *t, const uint8_t *v, size_t n)
{
    if (n == 0 || v[0] != '/') {
        return false;
    }
    size_t pl = strlen(t->int_prefix);
    bool deeper = n > pl + 1 && memcmp(v, t->int_prefix, pl) == 0 && v[pl] == '/';
    if (deeper) {
        put_str(w, t->ext_prefix);
        put(w, v + pl, n - pl);
        return true;
    }
    /* Exactly the (non-root) prefix with its trailing '/': the external prefix with its '/'. */
    if (pl > 0 && n == pl + 1 && memcmp(v, t->int_prefix, pl) == 0 && v[pl] == '/') {
        put_str(w, t->ext_prefix);
        put(w, "/", 1);
        return true;
    }
    /* At or above: v is a segment-wise prefix of int_prefix + "/". */
    bool above =
        n <= pl + 1 && memcmp(v, t->int_prefix, n < pl ? n : pl) == 0 &&
        (n == pl + 1 ? v[pl] == '/' : (n == pl || v[n - 1] == '/' || t->int_prefix[n] == '/'));
    if (!above) {
        return false;
    }
    put_str(w, t->ext_prefix[0] != '\0' ? t->ext_prefix : "/");
    return true;
}

/* "name=value; Attr=val; Attr": rewrites the values of Domain and Path, keeps every other byte. */
static void put_set_cookie(writer_t *w, const ptc_translate_t *t, ptc_slice_t v)
{
    const uint8_t *p = v.ptr;
    size_t n = v.len;
    const uint8_t *semi = memchr(p, ';', n);
    size_t pos = semi != NULL ? (size_t)(semi - p) : n;
    size_t copied = 0;
    while (pos < n) {
        size_t start = pos + 1;
        const uint8_t *next = memchr(p + start, ';', n - start);
        size_t end = next != NULL ? (size_t)(next - p) : n;
        size_t ns = start;
        while (ns < end && is_ows(p[ns])) {
            ns++;
        }
        const uint8_t *eq = memchr(p + ns, '=', end - ns);
        if (eq != NULL) {
            size_t ne = (size_t)(eq - p);
            while (ne > ns && is_ows(p[ne - 1])) {
                ne--;
            }
            size_t vs = (size_t)(eq - p) + 1;
            while (vs < end && is_ows(p[vs])) {
                vs++;
            }
            size_t ve = end;
            while (ve > vs && is_ows(p[ve - 1])) {
                ve--;
            }
            bool is_domain = ne - ns == 6 && case_eq(p + ns, "domain", 6);
            bool is_path = ne - ns == 4 && case_eq(p + ns, "path", 4);
            if (is_domain || is_path) {
                size_t mark = w->out->len;
                put(w, p + copied, vs - copied);
                bool done = is_domain ? put_cookie_domain(w, t, p + vs, ve - vs)
                                      : put_cookie_path(w, t, p + vs, ve - vs);
                if (done) {
                    copied = ve;
                } else if (w->rc == 0) {
                    w->out->len = mark; /* not ours: copied later with the rest */
                }
            }
        }
        pos = end;
    }
    put(w, p + copied, n - copied);
}

/* ---- headers ---- */

bool ptc_translate_header_applies(ptc_slice_t name)
{
    return ptc_slice_case_eq(name, "location") || ptc_slice_case_eq(name, "content-location") ||
           ptc_slice_case_eq(name, "refresh") || ptc_slice_case_eq(name, "set-cookie");
}

int ptc_translate_header(const ptc_translate_t *t, ptc_slice_t name, ptc_slice_t value,
                         ptc_buf_t *out, bool *changed)
{
    if (changed != NULL) {
        *changed = false;
    }
    if (!ptc_http_is_field_value(value)) {
        return PTC_EHTTP;
    }
    if (value.len == 0) {
        return 0; /* nothing to translate (and the slice may be {NULL, 0}) */
    }
    size_t start = out->len;
    writer_t w = {out, 0};
    if (ptc_slice_case_eq(name, "location") || ptc_slice_case_eq(name, "content-location")) {
        put_location(&w, t, value);
    } else if (ptc_slice_case_eq(name, "refresh")) {
        put_refresh(&w, t, value);
    } else if (ptc_slice_case_eq(name, "set-cookie")) {
        put_set_cookie(&w, t, value);
    } else {
        put(&w, value.ptr, value.len);
    }
    if (w.rc != 0) {
        out->len = start;
        return w.rc;
    }
    size_t n = out->len - start;
    const uint8_t *res = ptc_buf_data(out) + start;
    /* Only the input's bytes and the configured URLs' visible ASCII were written. */
    assert(ptc_http_is_field_value((ptc_slice_t){res, n}));
    if (changed != NULL) {
        *changed = n != value.len || (n > 0 && memcmp(res, value.ptr, n) != 0);
    }
    return 0;
}

/* ---- bodies ---- */

bool ptc_translate_is_text(ptc_slice_t content_type)
{
    static const char *const types[] = {
        "text/html",       "application/xhtml+xml",  "text/css",
        "text/javascript", "application/javascript", "application/x-javascript",
    };
    if (content_type.len == 0) {
        return false;
    }
    const uint8_t *semi = memchr(content_type.ptr, ';', content_type.len);
    ptc_slice_t mt = content_type;
    if (semi != NULL) {
        mt.len = (size_t)(semi - content_type.ptr);
    }
    mt = ptc_http_trim_ows(mt);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (ptc_slice_case_eq(mt, types[i])) {
            return true;
        }
    }
    return false;
}

bool ptc_translate_body_wanted(ptc_slice_t content_type, ptc_slice_t content_encoding)
{
    ptc_slice_t ce = ptc_http_trim_ows(content_encoding);
    return ptc_translate_is_text(content_type) &&
           (ce.len == 0 || ptc_slice_case_eq(ce, "identity"));
}

ptc_translate_body_t *ptc_translate_body_new(ptc_translate_t *t)
{
    size_t cap = 2 * (t->max_len + 1);
    ptc_translate_body_t *s = ptc_xcalloc(1, sizeof(*s) + cap);
    s->t = ptc_translate_ref(t);
    s->prev = -1;
    return s;
}

void ptc_translate_body_free(ptc_translate_body_t *s)
{
    if (s == NULL) {
        return;
    }
    ptc_translate_unref(s->t);
    free(s);
}

size_t ptc_translate_body_held(const ptc_translate_body_t *s)
{
    return s->held;
}

size_t ptc_translate_max_held(const ptc_translate_t *t)
{
    return t->max_len;
}

/* A byte that may end a match: the internal URL's path (or authority) stops there. */
static bool is_delimiter(uint8_t c)
{
    switch (c) {
    case '/':
    case '?':
    case '#':
    case '"':
    case '\'':
    case '`':
    case ' ':
    case '\t':
    case '\r':
    case '\n':
    case '\f':
    case '(':
    case ')':
    case '<':
    case '>':
    case '[':
    case ']':
    case '{':
    case '}':
    case '\\':
    case ',':
    case ';':
    case '&':
    case '|':
        return true;
    default:
        return false;
    }
}

/*
 * May a pattern start after byte `prev` (-1 at the start of the body)? An absolute URL must
 * not continue a longer scheme ("xhttp://"); a scheme-relative one must not be the tail of an
 * absolute URL with another scheme ("https://" when the internal one is http) or of a path.
 */
static bool may_follow(const pattern_t *p, int prev)
{
    if (prev < 0) {
        return true;
    }
    if (is_alnum(prev) || prev == '+' || prev == '-' || prev == '.') {
        return false;
    }
    if (p->slashes) {
        return prev != ':' && prev != '/' && prev != '\\' && prev != '_' && prev != '~' &&
               prev != '%' && prev != '@';
    }
    return true;
}

typedef enum { NO_MATCH, PARTIAL, MATCH } match_t;

static match_t try_pattern(const pattern_t *p, const uint8_t *b, size_t avail, int prev, bool final)
{
    if (!may_follow(p, prev)) {
        return NO_MATCH;
    }
    size_t n = avail < p->len ? avail : p->len;
    for (size_t k = 0; k < n; k++) {
        uint8_t c = p->fold[k] ? lower(b[k]) : b[k];
        if (c != p->bytes[k]) {
            return NO_MATCH;
        }
    }
    if (avail <= p->len) {
        /* The input ends inside the pattern or right after it: only the end of the body
         * decides (it delimits a complete pattern). */
        if (!final) {
            return PARTIAL;
        }
        return avail == p->len ? MATCH : NO_MATCH;
    }
    return is_delimiter(b[p->len]) ? MATCH : NO_MATCH;
}

/*
 * Scans buf[0..n) from 0, writing decided bytes (rewritten or not) to `out`, until reaching
 * position `stop` or a position whose outcome needs bytes beyond n (never when `final`).
 * `prev` is the byte before buf[0]. Sets *pos to where scanning stopped: the first position
 * >= stop not yet written (a match may jump past stop), or the undecided one.
 */
static int scan(const ptc_translate_t *t, const uint8_t *buf, size_t n, size_t stop, int prev,
                bool final, ptc_chunkq_t *out, size_t *pos)
{
    size_t i = 0;
    size_t lit = 0;
    while (i < stop) {
        if (!t->starts[buf[i]]) {
            i++;
            continue;
        }
        int pv = i > 0 ? buf[i - 1] : prev;
        match_t r = NO_MATCH;
        const pattern_t *m = NULL;
        /* The first pattern (in table order) that is not ruled out decides, so that the
         * choice never depends on how much input is present. */
        for (size_t k = 0; k < t->pattern_cnt && r == NO_MATCH; k++) {
            r = try_pattern(&t->patterns[k], buf + i, n - i, pv, final);
            m = &t->patterns[k];
        }
        if (r == PARTIAL) {
            break;
        }
        if (r == MATCH) {
            if (i > lit && ptc_chunkq_try_append(out, buf + lit, i - lit) != 0) {
                return PTC_ENOMEM;
            }
            if (ptc_chunkq_try_append(out, m->repl, m->repl_len) != 0) {
                return PTC_ENOMEM;
            }
            i += m->len;
            lit = i;
            continue;
        }
        i++;
    }
    if (i > lit && ptc_chunkq_try_append(out, buf + lit, i - lit) != 0) {
        return PTC_ENOMEM;
    }
    *pos = i;
    return 0;
}

int ptc_translate_body_feed(ptc_translate_body_t *s, const uint8_t *p, size_t len,
                            ptc_chunkq_t *out)
{
    if (s->finished || s->failed) {
        return PTC_ESTATE;
    }
    const ptc_translate_t *t = s->t;
    size_t window = t->max_len + 1; /* a pattern and its delimiter */
    size_t off = 0;                 /* input bytes written or held */
    int prev = s->prev;
    int rc;
    if (len == 0) {
        return 0;
    }
    if (s->held > 0) {
        /* Join the held tail with the head of this chunk: any position in the tail is then
         * decided, unless the whole chunk is shorter than a pattern. */
        size_t take = len < window ? len : window;
        memcpy(s->work + s->held, p, take);
        size_t n = s->held + take;
        size_t pos;
        rc = scan(t, s->work, n, s->held, prev, false, out, &pos);
        if (rc != 0) {
            goto fail;
        }
        if (pos < s->held) {
            /* Undecided inside the tail: the chunk was short and is all in `work`. */
            assert(take == len);
            s->prev = pos > 0 ? s->work[pos - 1] : prev;
            memmove(s->work, s->work + pos, n - pos);
            s->held = n - pos;
            return 0;
        }
        prev = s->work[pos - 1];
        off = pos - s->held;
        s->held = 0;
    }
    size_t pos;
    rc = scan(t, p + off, len - off, len - off, prev, false, out, &pos);
    if (rc != 0) {
        goto fail;
    }
    off += pos;
    if (pos > 0) {
        prev = p[off - 1];
    }
    assert(len - off <= t->max_len);
    memcpy(s->work, p + off, len - off);
    s->held = len - off;
    s->prev = prev;
    return 0;

fail:
    s->failed = true;
    return rc;
}

int ptc_translate_body_finish(ptc_translate_body_t *s, ptc_chunkq_t *out)
{
    if (s->finished || s->failed) {
        return PTC_ESTATE;
    }
    s->finished = true;
    size_t pos;
    int rc = scan(s->t, s->work, s->held, s->held, s->prev, true, out, &pos);
    if (rc != 0) {
        s->failed = true;
        return rc;
    }
    assert(pos >= s->held);
    s->held = 0;
    return 0;
}
