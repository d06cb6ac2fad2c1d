/* SPDX-License-Identifier: MIT */
/*
 * The OIDC pre-authentication gate (see auth.h and the flow in docs/apps.md "Sign-in"):
 * the assertion key file, the pure helpers (return URLs, assignment, identity headers), and
 * the gate itself with the edge's sign-in paths. A "site" is what the sign-in paths need to
 * know about where they run: an app's external host with the app's cookie settings, or the
 * edge host (portal.c) with fixed ones. No state is kept between requests: the login state
 * rides in its own sealed cookie, and the only object that outlives a call is the callback's
 * pending token exchange, owned by the request's handler and cancelled when the client goes
 * away.
 */
#include "edge/auth.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/http.h"
#include "common/jose.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/url.h"
#include "edge/oidc.h"
#include "edge/pages.h"
#include "edge/proxy.h"
#include "edge/proxy_int.h"
#include "edge/state.h"

/* Longest return URL kept in a login cookie. */
#define RETURN_URL_MAX 2048
/* Largest assertion key file read. */
#define KEY_FILE_MAX 4096
/* Room for "https://" + host + ":65535". */
#define ORIGIN_CAP (PTC_URL_HOST_CAP + 24)

/* ---- the assertion key ---- */

static void key_from_seed(ptc_auth_key_t *k, const uint8_t seed[32])
{
    ptc_ed25519_key_t kp;
    ptc_ed25519_from_seed(&kp, seed);
    memcpy(k->sk, kp.sk, sizeof(k->sk));
    memcpy(k->pk, kp.pk, sizeof(k->pk));
    ptc_keys_wipe(&kp, sizeof(kp));
    uint8_t h[PTC_SHA256_LEN];
    ptc_sha256(k->pk, sizeof(k->pk), h);
    int rc = ptc_b64url_encode(h, 8, k->kid, sizeof(k->kid));
    assert(rc > 0);
    (void)rc;
}

ptc_auth_key_t *ptc_auth_key_ephemeral(void)
{
    ptc_auth_key_t *k = ptc_xcalloc(1, sizeof(*k));
    uint8_t seed[32];
    ptc_random_bytes(seed, sizeof(seed));
    key_from_seed(k, seed);
    ptc_keys_wipe(seed, sizeof(seed));
    return k;
}

void ptc_auth_key_free(ptc_auth_key_t *key)
{
    if (key == NULL) {
        return;
    }
    ptc_keys_wipe(key, sizeof(*key));
    free(key);
}

static int key_fail(char *err, size_t errlen, const char *path, const char *why)
{
    snprintf(err, errlen, "%s: %s", path, why);
    return PTC_ECONFIG;
}

/* Makes a fresh key and writes it (0600, atomically). */
static int key_create(const char *path, ptc_auth_key_t **out, char *err, size_t errlen)
{
    uint8_t seed[32];
    ptc_random_bytes(seed, sizeof(seed));
    ptc_auth_key_t *k = ptc_xcalloc(1, sizeof(*k));
    key_from_seed(k, seed);
    char d[64];
    char x[64];
    int rc = ptc_b64url_encode(seed, sizeof(seed), d, sizeof(d));
    ptc_keys_wipe(seed, sizeof(seed));
    if (rc > 0) {
        rc = ptc_b64url_encode(k->pk, sizeof(k->pk), x, sizeof(x));
    }
    assert(rc > 0);
    char text[512];
    int n = snprintf(text, sizeof(text),
                     "{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": \"%s\", \"x\": \"%s\", "
                     "\"d\": \"%s\"}\n",
                     k->kid, x, d);
    ptc_keys_wipe(d, sizeof(d));
    assert(n > 0 && (size_t)n < sizeof(text));
    rc = ptc_keys_write_secret_file(path, text, (size_t)n);
    ptc_keys_wipe(text, sizeof(text));
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, ptc_strerror(rc));
        ptc_auth_key_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

int ptc_auth_key_load(const char *state_dir, ptc_auth_key_t **out, char *err, size_t errlen)
{
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", state_dir, PTC_AUTH_KEY_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            return key_create(path, out, err, errlen);
        }
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(e));
        return -e;
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return key_fail(err, errlen, path,
                        "readable or writable by group or others (it must be mode 0600)");
    }
    char buf[KEY_FILE_MAX];
    ssize_t n = read(fd, buf, sizeof(buf));
    int e = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
        return -e;
    }
    if ((size_t)n >= sizeof(buf)) {
        ptc_keys_wipe(buf, sizeof(buf));
        return key_fail(err, errlen, path, "too large for a key file");
    }
    json_error_t jerr;
    json_t *doc = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    ptc_keys_wipe(buf, sizeof(buf));
    const char *d = json_string_value(json_object_get(doc, "d"));
    const char *x = json_string_value(json_object_get(doc, "x"));
    const char *crv = json_string_value(json_object_get(doc, "crv"));
    uint8_t seed[32];
    uint8_t pk[32];
    size_t dl = 0;
    size_t xl = 0;
    int rc = 0;
    if (doc == NULL || d == NULL || x == NULL || crv == NULL || strcmp(crv, "Ed25519") != 0) {
        rc = key_fail(err, errlen, path, "not an Ed25519 key document (kty OKP, crv, x, d)");
    } else if (ptc_b64url_decode(d, strlen(d), seed, sizeof(seed), &dl) != 0 ||
               dl != sizeof(seed) || ptc_b64url_decode(x, strlen(x), pk, sizeof(pk), &xl) != 0 ||
               xl != sizeof(pk)) {
        rc = key_fail(err, errlen, path, "d and x must be 32 bytes of base64url each");
    }
    json_decref(doc);
    if (rc != 0) {
        ptc_keys_wipe(seed, sizeof(seed));
        return rc;
    }
    ptc_auth_key_t *k = ptc_xcalloc(1, sizeof(*k));
    key_from_seed(k, seed);
    ptc_keys_wipe(seed, sizeof(seed));
    if (memcmp(k->pk, pk, sizeof(pk)) != 0) {
        ptc_auth_key_free(k);
        return key_fail(err, errlen, path, "x is not the public key of d");
    }
    *out = k;
    return 0;
}

json_t *ptc_auth_jwks(const ptc_auth_key_t *key)
{
    json_t *keys = json_array();
    json_t *jwk = ptc_jwk_ed25519(key->pk, key->kid);
    if (keys == NULL || jwk == NULL) {
        abort();
    }
    json_array_append_new(keys, jwk);
    json_t *doc = json_object();
    if (doc == NULL) {
        abort();
    }
    json_object_set_new(doc, "keys", keys);
    return doc;
}

/* ---- pure helpers ---- */

bool ptc_auth_return_url_is_safe(const char *url, size_t len)
{
    if (len == 0 || len > RETURN_URL_MAX || url[0] != '/') {
        return false;
    }
    /* "//host" and "/\host" are read by browsers as another host (protocol-relative). */
    if (len >= 2 && (url[1] == '/' || url[1] == '\\')) {
        return false;
    }
    bool in_query = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\') {
            return false;
        }
        if (c == '?') {
            in_query = true;
        }
        if (c == '#') {
            return false;
        }
        if (c != '%') {
            continue;
        }
        if (i + 2 >= len) {
            return false;
        }
        int hi = ptc_url_hex_value((unsigned char)url[i + 1]);
        int lo = ptc_url_hex_value((unsigned char)url[i + 2]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        int v = hi * 16 + lo;
        /* An encoded control character anywhere, and an encoded '/' or '\' in the path: some
         * servers and frameworks decode the path before they redirect on it, which turns
         * "/%2F%2Fevil.com" back into "//evil.com". */
        if (v < 0x20 || v == 0x7f || (!in_query && (v == '/' || v == '\\'))) {
            return false;
        }
    }
    /* The edge's own paths are no place to land after sign-in (a return to logout would sign
     * the user out again). */
    if (len >= strlen(PTC_AUTH_PREFIX) &&
        memcmp(url, PTC_AUTH_PREFIX, strlen(PTC_AUTH_PREFIX)) == 0) {
        return false;
    }
    return true;
}

bool ptc_auth_is_assigned(const ptc_app_assignment_t *a, const ptc_session_t *s)
{
    if (a->users_cnt == 0 && a->groups_cnt == 0) {
        return true;
    }
    for (size_t i = 0; i < a->users_cnt; i++) {
        const char *u = a->users[i];
        if (s->sub != NULL && strcmp(u, s->sub) == 0) {
            return true;
        }
        /* E-mail addresses compare without regard to case, as users type them. */
        if (s->email != NULL && strchr(u, '@') != NULL && strcasecmp(u, s->email) == 0) {
            return true;
        }
    }
    for (size_t i = 0; i < a->groups_cnt; i++) {
        for (size_t j = 0; j < s->groups_cnt; j++) {
            if (strcmp(a->groups[i], s->groups[j]) == 0) {
                return true;
            }
        }
    }
    return false;
}

void ptc_auth_filter_groups(ptc_session_t *s, const ptc_app_assignment_t *const *assignments,
                            size_t cnt)
{
    size_t keep = 0;
    for (size_t i = 0; i < s->groups_cnt; i++) {
        char *g = s->groups[i];
        bool named = false;
        for (size_t j = 0; j < cnt && !named; j++) {
            for (size_t k = 0; k < assignments[j]->groups_cnt && !named; k++) {
                named = strcmp(assignments[j]->groups[k], g) == 0;
            }
        }
        for (size_t j = 0; j < keep && named; j++) {
            named = strcmp(s->groups[j], g) != 0; /* a duplicate */
        }
        if (named) {
            s->groups[keep++] = g;
        } else {
            free(g);
        }
    }
    s->groups_cnt = keep;
    if (keep == 0) {
        free(s->groups);
        s->groups = NULL;
    }
}

/* The groups joined with ","; NULL when there are none. */
static char *join_groups(const ptc_session_t *s)
{
    if (s->groups_cnt == 0) {
        return NULL;
    }
    ptc_buf_t b;
    ptc_buf_init(&b);
    for (size_t i = 0; i < s->groups_cnt; i++) {
        if (i > 0) {
            ptc_buf_append(&b, ",", 1);
        }
        ptc_buf_append(&b, s->groups[i], strlen(s->groups[i]));
    }
    ptc_buf_append(&b, "", 1);
    char *out = ptc_xstrdup((const char *)ptc_buf_data(&b));
    ptc_buf_dispose(&b);
    return out;
}

/* The value of a claim for an sso header (heap), or NULL when the session has none. */
static char *claim_value(const ptc_session_t *s, const char *claim)
{
    const char *v = NULL;
    if (strcmp(claim, "sub") == 0) {
        v = s->sub;
    } else if (strcmp(claim, "email") == 0) {
        v = s->email;
    } else if (strcmp(claim, "name") == 0) {
        v = s->name;
    } else if (strcmp(claim, "idp") == 0) {
        v = s->idp;
    } else if (strcmp(claim, "groups") == 0) {
        return join_groups(s);
    }
    return v != NULL ? ptc_xstrdup(v) : NULL;
}

json_t *ptc_auth_assertion_claims(const ptc_app_t *app, const ptc_session_t *s,
                                  const char *edge_host, int64_t now_s, const char *jti)
{
    json_t *c = json_object();
    json_t *groups = json_array();
    if (c == NULL || groups == NULL) {
        abort();
    }
    char iss[PTC_URL_HOST_CAP + 16];
    snprintf(iss, sizeof(iss), "https://%s", edge_host);
    json_object_set_new(c, "iss", json_string(iss));
    json_object_set_new(c, "aud", json_string(app->name));
    /* The session's strings came from a JSON cookie, so they are valid UTF-8; a NULL from
     * json_string would only drop the member. */
    json_object_set_new(c, "sub", json_string(s->sub != NULL ? s->sub : ""));
    if (s->email != NULL) {
        json_object_set_new(c, "email", json_string(s->email));
    }
    if (s->name != NULL) {
        json_object_set_new(c, "name", json_string(s->name));
    }
    for (size_t i = 0; i < s->groups_cnt; i++) {
        json_array_append_new(groups, json_string(s->groups[i]));
    }
    json_object_set_new(c, "groups", groups);
    if (s->idp != NULL) {
        json_object_set_new(c, "idp", json_string(s->idp));
    }
    json_object_set_new(c, "iat", json_integer(now_s));
    json_object_set_new(c, "exp", json_integer(now_s + PTC_AUTH_ASSERTION_TTL_S));
    json_object_set_new(c, "jti", json_string(jti));
    return c;
}

size_t ptc_auth_identity_headers(const ptc_app_t *app, const ptc_session_t *s,
                                 const ptc_auth_key_t *key, const char *edge_host, int64_t now_s,
                                 ptc_auth_header_t **out)
{
    ptc_auth_header_t *h = ptc_xcalloc(app->sso_headers_cnt + 1, sizeof(*h));
    size_t n = 0;
    for (size_t i = 0; i < app->sso_headers_cnt; i++) {
        char *v = claim_value(s, app->sso_headers[i].key);
        if (v == NULL) {
            continue;
        }
        /* A value from the identity provider that could not be a header field value (a
         * line break would be header injection) is left out. */
        if (!ptc_http_is_field_value(ptc_slice_str(v))) {
            free(v);
            continue;
        }
        h[n].name = ptc_xstrdup(app->sso_headers[i].value);
        h[n].value = v;
        n++;
    }
    if (key != NULL) {
        char jti[32];
        int rc = ptc_random_token(NULL, 16, jti, sizeof(jti));
        assert(rc == 0);
        (void)rc;
        json_t *claims = ptc_auth_assertion_claims(app, s, edge_host, now_s, jti);
        char *tok = NULL;
        if (ptc_jwt_sign_eddsa(claims, key->kid, key->sk, &tok) == 0) {
            h[n].name = ptc_xstrdup("X-Portico-Assertion");
            h[n].value = tok;
            n++;
        }
        json_decref(claims);
    }
    *out = h;
    return n;
}

void ptc_auth_headers_free(ptc_auth_header_t *h, size_t cnt)
{
    if (h == NULL) {
        return;
    }
    for (size_t i = 0; i < cnt; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

/* `host` (as ptc_httpd_req_host() gives it: lower-case, no port) without IPv6 brackets. */
static void bare_host(const char *host, size_t len, char *out, size_t cap)
{
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    snprintf(out, cap, "%.*s", (int)len, host);
}

const ptc_app_t *ptc_auth_host_app(const ptc_edge_t *edge, const char *host, size_t host_len,
                                   const ptc_app_t *routed)
{
    if (routed != NULL && routed->pre_auth == PTC_APP_PRE_AUTH_OIDC) {
        return routed;
    }
    char h[PTC_URL_HOST_CAP];
    bare_host(host, host_len, h, sizeof(h));
    size_t cnt = ptc_state_app_count(edge->state);
    for (size_t i = 0; i < cnt; i++) {
        const ptc_app_t *a = ptc_state_app_at(edge->state, i);
        if (a->pre_auth == PTC_APP_PRE_AUTH_OIDC && strcmp(a->ext_host, h) == 0) {
            return a;
        }
    }
    return NULL;
}

/* ---- login cookies ---- */

/* Login cookies looked at when a sign-in starts; more are left to expire by themselves. */
#define LOGIN_SCAN_MAX 16

static bool is_b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

bool ptc_auth_login_cookie_name(const char *state, size_t len, char out[PTC_AUTH_LOGIN_NAME_CAP])
{
    out[0] = '\0';
    if (len < PTC_AUTH_LOGIN_ID_LEN) {
        return false;
    }
    for (size_t i = 0; i < PTC_AUTH_LOGIN_ID_LEN; i++) {
        if (!is_b64url_char(state[i])) {
            return false;
        }
    }
    int n = snprintf(out, PTC_AUTH_LOGIN_NAME_CAP, "%s_%.*s", PTC_LOGIN_COOKIE,
                     PTC_AUTH_LOGIN_ID_LEN, state);
    assert(n > 0 && n < PTC_AUTH_LOGIN_NAME_CAP);
    (void)n;
    return true;
}

/*
 * The next "name=value" pair of a Cookie field value (`rest` advances past it); false at the
 * end. A value in double quotes is returned without them, as ptc_cookie_find does.
 */
static bool next_cookie(ptc_slice_t *rest, ptc_slice_t *name, ptc_slice_t *value)
{
    while (rest->len > 0) {
        const uint8_t *semi = memchr(rest->ptr, ';', rest->len);
        size_t plen = semi != NULL ? (size_t)(semi - rest->ptr) : rest->len;
        ptc_slice_t pair = ptc_http_trim_ows((ptc_slice_t){rest->ptr, plen});
        *rest =
            semi != NULL ? (ptc_slice_t){semi + 1, rest->len - plen - 1} : (ptc_slice_t){NULL, 0};
        const uint8_t *eq = pair.len > 0 ? memchr(pair.ptr, '=', pair.len) : NULL;
        if (eq == NULL) {
            continue;
        }
        *name = ptc_http_trim_ows((ptc_slice_t){pair.ptr, (size_t)(eq - pair.ptr)});
        *value = ptc_http_trim_ows((ptc_slice_t){eq + 1, pair.len - (size_t)(eq - pair.ptr) - 1});
        if (value->len >= 2 && value->ptr[0] == '"' && value->ptr[value->len - 1] == '"') {
            *value = (ptc_slice_t){value->ptr + 1, value->len - 2};
        }
        return true;
    }
    return false;
}

/* A login cookie of the request: its name without prefix, and its age for the ordering. */
typedef struct login_seen {
    char name[PTC_AUTH_LOGIN_NAME_CAP];
    int64_t created; /* INT64_MIN: does not open (tampered, another host, expired) */
} login_seen_t;

size_t ptc_auth_logins_to_clear(const ptc_session_keys_t *keys, const char *host, bool secure,
                                const ptc_http_header_t *hdrs, size_t cnt, int64_t now_s,
                                char (*out)[PTC_AUTH_LOGIN_NAME_CAP], size_t cap)
{
    /* The names as browsers send them: with the "__Host-" prefix when Secure. */
    const char *guard = secure ? "__Host-" : "";
    char prefix[PTC_AUTH_LOGIN_NAME_CAP];
    snprintf(prefix, sizeof(prefix), "%s%s_", guard, PTC_LOGIN_COOKIE);
    size_t pl = strlen(prefix);
    login_seen_t seen[LOGIN_SCAN_MAX];
    size_t n = 0;
    for (size_t i = 0; i < cnt && n < LOGIN_SCAN_MAX; i++) {
        if (!ptc_slice_case_eq(hdrs[i].name, "cookie")) {
            continue;
        }
        ptc_slice_t rest = hdrs[i].value;
        ptc_slice_t name;
        ptc_slice_t value;
        while (n < LOGIN_SCAN_MAX && next_cookie(&rest, &name, &value)) {
            /* Exactly "<prefix><id>": names of the edge's own making only (the name goes back
             * into a Set-Cookie field, so nothing else may be in it). */
            if (name.len != pl + PTC_AUTH_LOGIN_ID_LEN || memcmp(name.ptr, prefix, pl) != 0 ||
                !ptc_auth_login_cookie_name((const char *)name.ptr + pl, PTC_AUTH_LOGIN_ID_LEN,
                                            seen[n].name)) {
                continue;
            }
            login_seen_t *e = &seen[n];
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++) {
                dup = strcmp(seen[j].name, e->name) == 0;
            }
            if (dup) {
                continue;
            }
            ptc_login_state_t ls;
            e->created = INT64_MIN;
            if (keys != NULL &&
                ptc_login_state_decode(keys, host, (const char *)value.ptr, value.len, now_s,
                                       PTC_AUTH_LOGIN_MAX_AGE_S, &ls) == 0) {
                e->created = ls.created;
                ptc_login_state_dispose(&ls);
            }
            n++;
        }
    }
    /* Those that do not open, then the oldest of the rest (by creation time, then by their
     * order in the request) until PTC_AUTH_LOGINS_MAX - 1 are left for the new one to join. */
    size_t valid = 0;
    for (size_t i = 0; i < n; i++) {
        valid += seen[i].created != INT64_MIN;
    }
    size_t drop = valid >= PTC_AUTH_LOGINS_MAX ? valid - (PTC_AUTH_LOGINS_MAX - 1) : 0;
    size_t k = 0;
    for (size_t i = 0; i < n && k < cap; i++) {
        if (seen[i].created == INT64_MIN) {
            memcpy(out[k++], seen[i].name, PTC_AUTH_LOGIN_NAME_CAP);
        }
    }
    while (drop > 0 && k < cap) {
        size_t oldest = n;
        for (size_t i = 0; i < n; i++) {
            if (seen[i].created != INT64_MIN &&
                (oldest == n || seen[i].created < seen[oldest].created)) {
                oldest = i;
            }
        }
        assert(oldest < n);
        memcpy(out[k++], seen[oldest].name, PTC_AUTH_LOGIN_NAME_CAP);
        seen[oldest].created = INT64_MIN; /* listed */
        drop--;
    }
    return k;
}

/* ---- sites ---- */

/* Where the sign-in paths run: an app's external host, or the edge host (app NULL). */
typedef struct site {
    const ptc_app_t *app;
    const char *host;        /* the cookie host: the app's external host, or edge_host */
    char origin[ORIGIN_CAP]; /* "https://host[:port]" as the client reached it */
    const char *idp;         /* the provider's name (NULL: none configured) */
    const char *root;        /* where to land by default: the app's path, or "/" */
    bool login_secure;       /* the login cookie's Secure flag */
    bool secure;             /* the session cookie's flags */
    bool http_only;
    bool persistent;
} site_t;

/* The port of the request's Host field ("" when it names none or an invalid one). */
static void host_port(const ptc_httpd_req_t *req, char *out, size_t cap)
{
    out[0] = '\0';
    ptc_slice_t h = ptc_httpd_req_head(req)->host;
    const uint8_t *end = h.ptr + h.len;
    const uint8_t *p = h.ptr;
    if (h.len > 0 && h.ptr[0] == '[') {
        p = memchr(h.ptr, ']', h.len);
        if (p == NULL) {
            return;
        }
    }
    const uint8_t *colon = memchr(p, ':', (size_t)(end - p));
    if (colon == NULL) {
        return;
    }
    size_t n = (size_t)(end - colon - 1);
    if (n == 0 || n > 5) {
        return;
    }
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (colon[1 + i] < '0' || colon[1 + i] > '9') {
            return;
        }
        v = v * 10 + (unsigned)(colon[1 + i] - '0');
    }
    if (v == 0 || v > 65535) {
        return;
    }
    snprintf(out, cap, "%u", v);
}

/*
 * "<scheme>://<host>[:port]": the port the client used (its Host field) unless it is the
 * scheme's default, so that the callback URL and the post-logout URL lead back to the same
 * listener the browser reached.
 */
static void make_origin(site_t *s, const ptc_httpd_req_t *req, bool https)
{
    char port[8];
    host_port(req, port, sizeof(port));
    if (strcmp(port, https ? "443" : "80") == 0) {
        port[0] = '\0';
    }
    bool v6 = strchr(s->host, ':') != NULL;
    snprintf(s->origin, sizeof(s->origin), "%s://%s%s%s%s%s", https ? "https" : "http",
             v6 ? "[" : "", s->host, v6 ? "]" : "", port[0] != '\0' ? ":" : "", port);
}

static void site_for_app(site_t *s, const ptc_httpd_req_t *req, const ptc_app_t *app)
{
    memset(s, 0, sizeof(*s));
    s->app = app;
    s->host = app->ext_host;
    s->idp = app->idp;
    s->root = app->ext_path;
    s->login_secure = app->ext_https;
    s->secure = app->secure_cookie;
    s->http_only = app->http_only_cookie;
    s->persistent = app->persistent_cookie;
    make_origin(s, req, app->ext_https);
}

static void site_for_edge(site_t *s, const ptc_edge_t *edge, const ptc_httpd_req_t *req)
{
    memset(s, 0, sizeof(*s));
    s->host = edge->cfg.edge_host;
    s->idp = edge->app_ctx.idp_cnt > 0 ? edge->app_ctx.idps[0] : NULL;
    s->root = "/";
    s->login_secure = true;
    s->secure = true;
    s->http_only = true;
    s->persistent = false;
    make_origin(s, req, true);
}

/* The cookie's name as sent by browsers ("__Host-" prefix when Secure). */
static void cookie_name(const char *base, bool secure, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s", secure ? "__Host-" : "", base);
}

static int64_t now_s(void)
{
    return (int64_t)(ptc_edge_now_ms() / 1000u);
}

static int64_t session_lifetime(const ptc_edge_t *edge)
{
    return edge->cfg.session.lifetime_s > 0 ? edge->cfg.session.lifetime_s
                                            : PTC_AUTH_SESSION_LIFETIME_S;
}

/* The assignments whose groups a session cookie for the site must keep: every oidc app on
 * the app's host (they share the cookie), or every oidc app for the edge host's portal. */
static size_t site_assignments(const ptc_edge_t *edge, const site_t *site,
                               const ptc_app_assignment_t ***out)
{
    size_t cnt = ptc_state_app_count(edge->state);
    const ptc_app_assignment_t **a = ptc_xcalloc(cnt + 1, sizeof(*a));
    size_t n = 0;
    for (size_t i = 0; i < cnt; i++) {
        const ptc_app_t *app = ptc_state_app_at(edge->state, i);
        if (app->pre_auth != PTC_APP_PRE_AUTH_OIDC) {
            continue;
        }
        if (site->app == NULL || strcmp(app->ext_host, site->host) == 0) {
            a[n++] = &app->assignment;
        }
    }
    *out = a;
    return n;
}

/*
 * The session of the request for the site: 0 and *out (caller disposes), or an error
 * (PTC_ENOTFOUND no cookie; those of ptc_session_decode; PTC_EAUTH for a session of another
 * provider than the site's).
 */
static int site_session(const ptc_edge_t *edge, ptc_httpd_req_t *req, const site_t *site,
                        ptc_session_t *out)
{
    memset(out, 0, sizeof(*out));
    if (edge->session_keys == NULL) {
        return PTC_ENOTFOUND;
    }
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    char name[64];
    cookie_name(PTC_SESSION_COOKIE, site->secure, name, sizeof(name));
    ptc_slice_t v;
    if (!ptc_cookie_find(h->headers, h->header_cnt, name, &v)) {
        return PTC_ENOTFOUND;
    }
    ptc_session_t s;
    int rc =
        ptc_session_decode(edge->session_keys, site->host, (const char *)v.ptr, v.len, now_s(), &s);
    if (rc != 0) {
        PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_INFO, "auth_session_refused",
                PTC_LOG_STR("host", site->host), PTC_LOG_ERR(rc));
        return rc;
    }
    if (site->idp != NULL && (s.idp == NULL || strcmp(s.idp, site->idp) != 0)) {
        /* A session of another provider (another app on the same host): its sub belongs to
         * another namespace, so it does not sign the user in here. */
        ptc_session_dispose(&s);
        return PTC_EAUTH;
    }
    /* The access log names who made the request (docs/logging.md http_request_done). */
    ptc_httpd_req_set_user(req, s.email != NULL ? s.email : s.sub);
    *out = s;
    return 0;
}

/* ---- answers ---- */

/* Set-Cookie fields clearing old login cookies in one answer (more expire by themselves). */
#define LOGIN_CLEAR_MAX 8
/* Up to this many headers in an answer of the gate. */
#define HDRS_MAX (8 + LOGIN_CLEAR_MAX)

typedef struct answer {
    ptc_http_header_t h[HDRS_MAX];
    size_t n;
} answer_t;

static void answer_init(answer_t *a, const site_t *site, const char *id)
{
    a->n = 0;
    a->h[a->n++] = (ptc_http_header_t){ptc_slice_str("Cache-Control"), ptc_slice_str("no-store")};
    a->n += ptc_proxy_common_headers(site->app, id, a->h + a->n);
}

static void answer_add(answer_t *a, const char *name, const char *value)
{
    assert(a->n < HDRS_MAX);
    a->h[a->n++] = (ptc_http_header_t){ptc_slice_str(name), ptc_slice_str(value)};
}

static void set_log(ptc_httpd_req_t *req, const site_t *site)
{
    if (site->app != NULL) {
        ptc_httpd_req_set_log_fields(req, site->app->name, NULL, NULL, -1);
    }
}

/* A page (HTML or JSON as the client asks, or JSON when `json`), with extra headers. */
static void page(ptc_httpd_req_t *req, const site_t *site, const char *id, ptc_page_cause_t cause,
                 const ptc_page_extra_t *extra, bool json, const char *set_cookie)
{
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    json = json || ptc_page_wants_json(h->headers, h->header_cnt);
    ptc_buf_t body;
    ptc_buf_init(&body);
    const char *ctype = ptc_page_render_extra(cause, id, json, extra, &body);
    answer_t a;
    answer_init(&a, site, id);
    if (set_cookie != NULL) {
        answer_add(&a, "Set-Cookie", set_cookie);
    }
    set_log(req, site);
    (void)ptc_httpd_respond_simple(req, ptc_page_status(cause), ctype, a.h, a.n,
                                   ptc_buf_data(&body), body.len);
    ptc_buf_dispose(&body);
}

static void respond_json(ptc_httpd_req_t *req, const site_t *site, const char *id, int status,
                         json_t *doc, const char *cache)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        abort();
    }
    answer_t a;
    answer_init(&a, site, id);
    if (cache != NULL) {
        a.h[0].value = ptc_slice_str(cache);
    }
    set_log(req, site);
    (void)ptc_httpd_respond_simple(req, status, "application/json", a.h, a.n, text, strlen(text));
    free(text);
}

/* A 302 to `location`, with `cnt` Set-Cookie fields (at most LOGIN_CLEAR_MAX + 2). */
static void redirect(ptc_httpd_req_t *req, const site_t *site, const char *id, const char *location,
                     char *const *cookies, size_t cnt)
{
    answer_t a;
    answer_init(&a, site, id);
    answer_add(&a, "Location", location);
    for (size_t i = 0; i < cnt; i++) {
        answer_add(&a, "Set-Cookie", cookies[i]);
    }
    set_log(req, site);
    (void)ptc_httpd_respond_simple(req, 302, "text/plain; charset=utf-8", a.h, a.n, "", 0);
}

static void method_not_allowed(ptc_httpd_req_t *req, const site_t *site, const char *id)
{
    page(req, site, id, PTC_PAGE_METHOD_NOT_ALLOWED, NULL, false, NULL);
}

static bool is_get(const ptc_http_head_t *h)
{
    return ptc_slice_eq(h->method, "GET") || ptc_slice_eq(h->method, "HEAD");
}

/* The provider of a site, or NULL (none configured, or the edge runs without providers). */
static ptc_oidc_provider_t *site_provider(const ptc_edge_t *edge, const char *idp)
{
    if (edge->oidc == NULL || idp == NULL) {
        return NULL;
    }
    return ptc_oidc_find(edge->oidc, idp);
}

/* ---- sign-in ---- */

/*
 * No session: browsers go to the provider with a fresh login state in its cookie; requests
 * that cannot follow a redirect (other methods, XHR asking for JSON, upgrades) get a 401.
 */
static void start_login(ptc_edge_t *edge, ptc_httpd_req_t *req, const site_t *site,
                        ptc_oidc_provider_t *p, const char *id)
{
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    if (!is_get(h) || h->upgrade || ptc_page_wants_json(h->headers, h->header_cnt)) {
        page(req, site, id, PTC_PAGE_UNAUTHENTICATED, NULL, true, NULL);
        return;
    }
    if (!ptc_oidc_ready(p)) {
        PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_WARN, "auth_provider_unavailable",
                PTC_LOG_STR("idp", site->idp),
                PTC_LOG_STR("app", site->app != NULL ? site->app->name : NULL));
        page(req, site, id, PTC_PAGE_AUTH_UNAVAILABLE, NULL, false, NULL);
        return;
    }
    const char *return_to = site->root;
    char target[RETURN_URL_MAX + 1];
    if (h->target.len <= RETURN_URL_MAX &&
        ptc_auth_return_url_is_safe((const char *)h->target.ptr, h->target.len)) {
        snprintf(target, sizeof(target), "%.*s", (int)h->target.len, (const char *)h->target.ptr);
        return_to = target;
    }
    ptc_login_state_t ls;
    memset(&ls, 0, sizeof(ls));
    char *val = NULL;
    int rc = ptc_login_state_new(site->idp, return_to, now_s(), &ls);
    if (rc == 0) {
        rc = ptc_login_state_encode(edge->session_keys, site->host, &ls, &val);
        if (rc == PTC_ELIMIT && return_to != site->root) {
            /* A target too long for a cookie: the user lands on the app's root instead. */
            free(ls.return_to);
            ls.return_to = ptc_xstrdup(site->root);
            rc = ptc_login_state_encode(edge->session_keys, site->host, &ls, &val);
        }
    }
    if (rc != 0) {
        PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_ERROR, "auth_login_failed",
                PTC_LOG_STR("reason", "login_state"), PTC_LOG_ERR(rc));
        ptc_login_state_dispose(&ls);
        page(req, site, id, PTC_PAGE_AUTH_UNAVAILABLE, NULL, false, NULL);
        return;
    }
    char redirect_uri[ORIGIN_CAP + 32];
    snprintf(redirect_uri, sizeof(redirect_uri), "%s%s", site->origin, PTC_AUTH_CALLBACK_PATH);
    char *url = ptc_oidc_authorize_url(p, redirect_uri, &ls);
    /* Each sign-in has a cookie of its own, named by its state, so that sign-ins started in
     * several tabs at once each find theirs at the callback; old ones beyond the newest few
     * are cleared here, so that a page starting sign-ins over and over cannot fill the
     * browser's cookies for the host (the rest expire with their Max-Age). */
    char name[PTC_AUTH_LOGIN_NAME_CAP];
    bool named = ptc_auth_login_cookie_name(ls.state, strlen(ls.state), name);
    assert(named);
    (void)named;
    ptc_login_state_dispose(&ls);
    if (url == NULL) {
        free(val);
        page(req, site, id, PTC_PAGE_AUTH_UNAVAILABLE, NULL, false, NULL);
        return;
    }
    char stale[LOGIN_CLEAR_MAX][PTC_AUTH_LOGIN_NAME_CAP];
    size_t stale_cnt =
        ptc_auth_logins_to_clear(edge->session_keys, site->host, site->login_secure, h->headers,
                                 h->header_cnt, now_s(), stale, LOGIN_CLEAR_MAX);
    char *cookies[1 + LOGIN_CLEAR_MAX];
    size_t n = 0;
    cookies[n++] = ptc_cookie_format(name, val, site->login_secure, true, PTC_AUTH_LOGIN_MAX_AGE_S);
    free(val);
    for (size_t i = 0; i < stale_cnt; i++) {
        /* A state whose first characters repeat an old one's replaces that cookie. */
        if (strcmp(stale[i], name) != 0) {
            cookies[n++] = ptc_cookie_format(stale[i], "", site->login_secure, true, 0);
        }
    }
    PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_DEBUG, "auth_login_started",
            PTC_LOG_STR("idp", site->idp),
            PTC_LOG_STR("app", site->app != NULL ? site->app->name : NULL),
            PTC_LOG_UINT("cleared", n - 1));
    redirect(req, site, id, url, cookies, n);
    for (size_t i = 0; i < n; i++) {
        free(cookies[i]);
    }
    free(url);
}

/* The value of query parameter `name` (percent-decoded, '+' as space; heap), or NULL. A
 * parameter given twice counts as absent: which one was meant is unclear. */
static char *query_param(ptc_slice_t query, const char *name)
{
    size_t nl = strlen(name);
    char *found = NULL;
    ptc_slice_t rest = query;
    while (rest.len > 0) {
        const uint8_t *amp = memchr(rest.ptr, '&', rest.len);
        size_t plen = amp != NULL ? (size_t)(amp - rest.ptr) : rest.len;
        ptc_slice_t pair = {rest.ptr, plen};
        rest = amp != NULL ? (ptc_slice_t){amp + 1, rest.len - plen - 1} : (ptc_slice_t){NULL, 0};
        if (pair.len < nl + 1 || memcmp(pair.ptr, name, nl) != 0 || pair.ptr[nl] != '=') {
            continue;
        }
        if (found != NULL) {
            free(found);
            return NULL;
        }
        const uint8_t *v = pair.ptr + nl + 1;
        size_t vl = pair.len - nl - 1;
        char *out = ptc_xmalloc(vl + 1);
        size_t o = 0;
        bool bad = false;
        for (size_t i = 0; i < vl; i++) {
            if (v[i] == '%') {
                int hi = i + 2 < vl ? ptc_url_hex_value(v[i + 1]) : -1;
                int lo = i + 2 < vl ? ptc_url_hex_value(v[i + 2]) : -1;
                if (hi < 0 || lo < 0) {
                    bad = true;
                    break;
                }
                out[o++] = (char)(hi * 16 + lo);
                i += 2;
            } else if (v[i] == '+') {
                out[o++] = ' ';
            } else {
                out[o++] = (char)v[i];
            }
        }
        out[o] = '\0';
        if (bad || memchr(out, '\0', o) != NULL) {
            free(out);
            return NULL;
        }
        found = out;
    }
    return found;
}

/* The login cookie a callback answers: its name without the "__Host-" prefix, and whether it
 * carries that prefix (and Secure). */
typedef struct login_ref {
    char name[PTC_AUTH_LOGIN_NAME_CAP];
    bool secure;
} login_ref_t;

/* A pending callback: the token exchange runs while the client waits. */
typedef struct callback {
    ptc_edge_t *edge;
    ptc_httpd_req_t *req;
    const ptc_app_t *app; /* a reference, NULL on the edge host */
    site_t site;          /* site.app is `app` */
    ptc_login_state_t ls;
    login_ref_t login;
    ptc_oidc_exchange_t *x; /* NULL once its callback ran */
    char id[PTC_PROXY_REQUEST_ID_MAX + 1];
} callback_t;

static void callback_free(callback_t *cb)
{
    ptc_login_state_dispose(&cb->ls);
    ptc_app_unref(cb->app);
    free(cb);
}

static void cb_on_abort(ptc_httpd_req_t *req, int err)
{
    callback_t *cb = ptc_httpd_req_data(req);
    (void)err;
    if (cb->x != NULL) {
        /* The client went away: the exchange's answer has nobody to go to. */
        ptc_oidc_exchange_cancel(cb->x);
        cb->x = NULL;
    }
    callback_free(cb);
}

static const ptc_httpd_handler_t callback_handler = {
    .on_abort = cb_on_abort,
};

/* The provider's answer to the login of `login` was refused: 401, and that login's cookie is
 * cleared (it is spent). */
static void sign_in_failed(ptc_httpd_req_t *req, const site_t *site, const char *id,
                           const login_ref_t *login, const char *reason, int err)
{
    PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_WARN, "auth_sign_in_failed",
            PTC_LOG_STR("reason", reason), PTC_LOG_STR("idp", site->idp),
            PTC_LOG_STR("app", site->app != NULL ? site->app->name : NULL), PTC_LOG_ERR(err));
    char *clear = ptc_cookie_format(login->name, "", login->secure, true, 0);
    page(req, site, id, PTC_PAGE_SIGN_IN_FAILED, NULL, false, clear);
    free(clear);
}

static void on_exchanged(void *data, int status, const ptc_oidc_identity_t *ident,
                         const char *reason)
{
    callback_t *cb = data;
    cb->x = NULL;
    ptc_httpd_req_t *req = cb->req;
    const site_t *site = &cb->site;
    if (status != 0 || ident == NULL || ident->sub == NULL) {
        sign_in_failed(req, site, cb->id, &cb->login, reason != NULL ? reason : "token_exchange",
                       status != 0 ? status : PTC_EAUTH);
        callback_free(cb);
        return;
    }
    ptc_session_t s;
    memset(&s, 0, sizeof(s));
    s.sub = ptc_xstrdup(ident->sub);
    s.email = ident->email != NULL ? ptc_xstrdup(ident->email) : NULL;
    s.name = ident->name != NULL ? ptc_xstrdup(ident->name) : NULL;
    s.idp = ptc_xstrdup(cb->ls.idp);
    if (ident->groups_cnt > 0) {
        s.groups = ptc_xcalloc(ident->groups_cnt, sizeof(char *));
        for (size_t i = 0; i < ident->groups_cnt; i++) {
            s.groups[i] = ptc_xstrdup(ident->groups[i]);
        }
        s.groups_cnt = ident->groups_cnt;
    }
    const ptc_app_assignment_t **as = NULL;
    size_t as_cnt = site_assignments(cb->edge, site, &as);
    ptc_auth_filter_groups(&s, as, as_cnt);
    free(as);
    int64_t lifetime = session_lifetime(cb->edge);
    s.iat = now_s();
    s.exp = s.iat + lifetime;
    char *val = NULL;
    int rc = ptc_session_encode(cb->edge->session_keys, site->host, &s, &val);
    if (rc != 0) {
        ptc_session_dispose(&s);
        sign_in_failed(req, site, cb->id, &cb->login,
                       rc == PTC_ELIMIT ? "session_too_large" : "session", rc);
        callback_free(cb);
        return;
    }
    PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_INFO, "auth_signed_in", PTC_LOG_STR("idp", s.idp),
            PTC_LOG_STR("app", site->app != NULL ? site->app->name : NULL),
            PTC_LOG_STR("sub", s.sub), PTC_LOG_UINT("groups", s.groups_cnt));
    ptc_session_dispose(&s);
    char *session = ptc_cookie_format(PTC_SESSION_COOKIE, val, site->secure, site->http_only,
                                      site->persistent ? lifetime : -1);
    free(val);
    /* Only this login's cookie is cleared: other sign-ins of the browser may be under way. */
    char *clear = ptc_cookie_format(cb->login.name, "", cb->login.secure, true, 0);
    const char *rt = cb->ls.return_to;
    const char *location =
        rt != NULL && ptc_auth_return_url_is_safe(rt, strlen(rt)) ? rt : site->root;
    char *cookies[] = {session, clear};
    redirect(req, site, cb->id, location, cookies, 2);
    free(session);
    free(clear);
    callback_free(cb);
}

/* The refusal of a callback that cannot be the answer to a login of ours: 400. */
static void callback_refused(ptc_httpd_req_t *req, const site_t *site, const char *id,
                             const char *reason, int err)
{
    PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_WARN, "auth_callback_refused",
            PTC_LOG_STR("reason", reason),
            PTC_LOG_STR("app", site->app != NULL ? site->app->name : NULL), PTC_LOG_ERR(err));
    page(req, site, id, PTC_PAGE_BAD_REQUEST, NULL, false, NULL);
}

/* /.portico/callback?code&state (step 4 of the flow). */
static void handle_callback(ptc_edge_t *edge, ptc_httpd_req_t *req, const site_t *site0,
                            const char *id)
{
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    if (!is_get(h)) {
        method_not_allowed(req, site0, id);
        return;
    }
    ptc_slice_t path = ptc_httpd_req_path(req);
    ptc_slice_t query = {NULL, 0};
    if (path.len < h->target.len) {
        query = (ptc_slice_t){h->target.ptr + path.len + 1, h->target.len - path.len - 1};
    }
    /* The state names the login's cookie (ptc_auth_login_cookie_name); the whole state must
     * then equal the one sealed in it. */
    char *state = query_param(query, "state");
    login_ref_t login = {.secure = site0->login_secure};
    if (state == NULL || !ptc_auth_login_cookie_name(state, strlen(state), login.name)) {
        free(state);
        callback_refused(req, site0, id, "state_mismatch", PTC_EAUTH);
        return;
    }
    char name[PTC_AUTH_LOGIN_NAME_CAP];
    cookie_name(login.name, login.secure, name, sizeof(name));
    ptc_slice_t v;
    if (edge->session_keys == NULL || !ptc_cookie_find(h->headers, h->header_cnt, name, &v)) {
        free(state);
        callback_refused(req, site0, id, "no_login_cookie", PTC_ENOTFOUND);
        return;
    }
    ptc_login_state_t ls;
    int rc = ptc_login_state_decode(edge->session_keys, site0->host, (const char *)v.ptr, v.len,
                                    now_s(), PTC_AUTH_LOGIN_MAX_AGE_S, &ls);
    if (rc != 0) {
        free(state);
        callback_refused(req, site0, id,
                         rc == PTC_ETIMEOUT ? "login_expired" : "login_cookie_invalid", rc);
        return;
    }
    char *code = query_param(query, "code");
    char *error = query_param(query, "error");
    size_t sl = strlen(state);
    bool state_ok =
        ls.state != NULL && sl == strlen(ls.state) && ptc_consttime_eq(state, ls.state, sl);
    free(state);
    if (!state_ok) {
        free(code);
        free(error);
        ptc_login_state_dispose(&ls);
        callback_refused(req, site0, id, "state_mismatch", PTC_EAUTH);
        return;
    }
    /* The login's own app (by its return URL) decides the session cookie's settings; the
     * site's app is the first oidc app of the host when the callback path is nobody's. */
    site_t site = *site0;
    if (site0->app != NULL && ls.return_to != NULL) {
        const char *rt = ls.return_to;
        size_t rl = strcspn(rt, "?");
        const ptc_app_t *a =
            ptc_state_app_route(edge->state, site0->host, strlen(site0->host), rt, rl);
        if (a != NULL && a->pre_auth == PTC_APP_PRE_AUTH_OIDC) {
            site_for_app(&site, req, a);
        }
    }
    if (error != NULL) {
        /* The provider refused (the user cancelled, or consent was denied): the error code is
         * a short token of the provider's; it is logged escaped. */
        PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_INFO, "auth_provider_error",
                PTC_LOG_PEER("error", error, strlen(error)), PTC_LOG_STR("idp", ls.idp));
        free(code);
        free(error);
        ptc_login_state_dispose(&ls);
        sign_in_failed(req, &site, id, &login, "provider_error", PTC_EAUTH);
        return;
    }
    if (code == NULL || code[0] == '\0') {
        free(code);
        ptc_login_state_dispose(&ls);
        callback_refused(req, &site, id, "no_code", PTC_EFORMAT);
        return;
    }
    ptc_oidc_provider_t *p = site_provider(edge, ls.idp);
    if (p == NULL) {
        free(code);
        ptc_login_state_dispose(&ls);
        PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_WARN, "auth_provider_unavailable",
                PTC_LOG_STR("reason", "unknown_idp"));
        page(req, &site, id, PTC_PAGE_AUTH_UNAVAILABLE, NULL, false, NULL);
        return;
    }
    callback_t *cb = ptc_xcalloc(1, sizeof(*cb));
    cb->edge = edge;
    cb->req = req;
    cb->app = site.app != NULL ? ptc_app_ref(site.app) : NULL;
    cb->site = site;
    cb->ls = ls;
    cb->login = login;
    cb->site.idp = cb->ls.idp;
    snprintf(cb->id, sizeof(cb->id), "%s", id);
    char redirect_uri[ORIGIN_CAP + 32];
    snprintf(redirect_uri, sizeof(redirect_uri), "%s%s", site.origin, PTC_AUTH_CALLBACK_PATH);
    rc = ptc_oidc_exchange(p, code, redirect_uri, cb->ls.verifier, cb->ls.nonce, on_exchanged, cb,
                           &cb->x);
    ptc_keys_wipe(code, strlen(code));
    free(code);
    if (rc != 0) {
        PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_WARN, "auth_provider_unavailable",
                PTC_LOG_STR("reason", "exchange_start"), PTC_LOG_STR("idp", cb->ls.idp),
                PTC_LOG_ERR(rc));
        page(req, &cb->site, id, PTC_PAGE_AUTH_UNAVAILABLE, NULL, false, NULL);
        cb->x = NULL;
        callback_free(cb);
        return;
    }
    set_log(req, &cb->site);
    ptc_httpd_req_set_handler(req, &callback_handler, cb);
}

/* ---- logout, me, jwks ---- */

static void handle_logout(ptc_edge_t *edge, ptc_httpd_req_t *req, const site_t *site,
                          const char *id)
{
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    if (!is_get(h) && !ptc_slice_eq(h->method, "POST")) {
        method_not_allowed(req, site, id);
        return;
    }
    ptc_session_t s;
    int rc = site_session(edge, req, site, &s);
    const char *idp = rc == 0 && s.idp != NULL ? s.idp : site->idp;
    ptc_oidc_provider_t *p = site_provider(edge, idp);
    char *clear = ptc_cookie_format(PTC_SESSION_COOKIE, "", site->secure, site->http_only, 0);
    PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_INFO, "auth_signed_out",
            PTC_LOG_STR("app", site->app != NULL ? site->app->name : NULL),
            PTC_LOG_STR("sub", rc == 0 ? s.sub : NULL));
    char post[ORIGIN_CAP + PTC_URL_MAX_LEN];
    snprintf(post, sizeof(post), "%s%s", site->origin, site->root);
    /* RP-initiated logout where the provider offers it; the edge keeps no ID token, so the
     * provider identifies the client by client_id. */
    char *url = p != NULL ? ptc_oidc_logout_url(p, post) : NULL;
    if (url != NULL) {
        redirect(req, site, id, url, &clear, 1);
    } else {
        ptc_page_extra_t extra = {.link_href = site->root, .link_text = "Sign in again"};
        page(req, site, id, PTC_PAGE_SIGNED_OUT, &extra, false, clear);
    }
    free(url);
    free(clear);
    ptc_session_dispose(&s);
}

static void handle_me(ptc_edge_t *edge, ptc_httpd_req_t *req, const site_t *site, const char *id)
{
    if (!is_get(ptc_httpd_req_head(req))) {
        method_not_allowed(req, site, id);
        return;
    }
    ptc_session_t s;
    if (site_session(edge, req, site, &s) != 0) {
        page(req, site, id, PTC_PAGE_UNAUTHENTICATED, NULL, true, NULL);
        return;
    }
    json_t *doc = json_object();
    json_t *groups = json_array();
    if (doc == NULL || groups == NULL) {
        abort();
    }
    json_object_set_new(doc, "sub", json_string(s.sub));
    json_object_set_new(doc, "email", s.email != NULL ? json_string(s.email) : json_null());
    json_object_set_new(doc, "name", s.name != NULL ? json_string(s.name) : json_null());
    for (size_t i = 0; i < s.groups_cnt; i++) {
        json_array_append_new(groups, json_string(s.groups[i]));
    }
    json_object_set_new(doc, "groups", groups);
    json_object_set_new(doc, "idp", json_string(s.idp));
    json_object_set_new(doc, "expires_at", json_integer(s.exp));
    respond_json(req, site, id, 200, doc, NULL);
    json_decref(doc);
    ptc_session_dispose(&s);
}

static void respond_jwks_site(ptc_edge_t *edge, ptc_httpd_req_t *req, const site_t *site,
                              const char *id)
{
    if (!is_get(ptc_httpd_req_head(req))) {
        method_not_allowed(req, site, id);
        return;
    }
    if (edge->assertion_key == NULL) {
        page(req, site, id, PTC_PAGE_NOT_FOUND, NULL, true, NULL);
        return;
    }
    json_t *doc = ptc_auth_jwks(edge->assertion_key);
    respond_json(req, site, id, 200, doc, "public, max-age=300");
    json_decref(doc);
}

void ptc_auth_respond_jwks(ptc_edge_t *edge, ptc_httpd_req_t *req, const char *id)
{
    site_t site;
    memset(&site, 0, sizeof(site));
    site.host = ptc_httpd_req_host(req);
    respond_jwks_site(edge, req, &site, id);
}

/* The paths under /.portico/ (step 2). `path` is normalised. */
static void serve_edge_path(ptc_edge_t *edge, ptc_httpd_req_t *req, const site_t *site,
                            const char *id, const char *path)
{
    if (strcmp(path, PTC_AUTH_CALLBACK_PATH) == 0) {
        handle_callback(edge, req, site, id);
    } else if (strcmp(path, PTC_AUTH_LOGOUT_PATH) == 0) {
        handle_logout(edge, req, site, id);
    } else if (strcmp(path, PTC_AUTH_ME_PATH) == 0) {
        handle_me(edge, req, site, id);
    } else if (strcmp(path, PTC_AUTH_JWKS_PATH) == 0) {
        respond_jwks_site(edge, req, site, id);
    } else {
        page(req, site, id, PTC_PAGE_NOT_FOUND, NULL, false, NULL);
    }
}

/* The request's normalised path (heap; no query), or NULL when it cannot be normalised. */
static char *normalized_path(ptc_httpd_req_t *req)
{
    ptc_slice_t raw = ptc_httpd_req_path(req);
    char *norm = NULL;
    size_t plen = 0;
    if (ptc_url_normalize_target((const char *)raw.ptr, raw.len, &norm, &plen) != 0) {
        return NULL;
    }
    norm[plen] = '\0';
    return norm;
}

static bool is_edge_path(const char *path)
{
    return strncmp(path, PTC_AUTH_PREFIX, strlen(PTC_AUTH_PREFIX)) == 0;
}

/* ---- the gate ---- */

/* Answers a request whose path is unusable (400) or one of the edge's own sign-in paths; true
 * when it did, false when the request is for the site itself. */
static bool answered_edge_path(ptc_edge_t *edge, ptc_httpd_req_t *req, const site_t *site,
                               const char *id)
{
    char *path = normalized_path(req);
    if (path == NULL) {
        page(req, site, id, PTC_PAGE_BAD_REQUEST, NULL, false, NULL);
        return true;
    }
    bool edge_path = is_edge_path(path);
    if (edge_path) {
        serve_edge_path(edge, req, site, id, path);
    }
    free(path);
    return edge_path;
}

int ptc_auth_gate(ptc_edge_t *edge, ptc_httpd_req_t *req, const ptc_app_t *app, const char *id,
                  ptc_session_t *ident)
{
    memset(ident, 0, sizeof(*ident));
    site_t site;
    site_for_app(&site, req, app);
    if (answered_edge_path(edge, req, &site, id)) {
        return 0;
    }
    ptc_oidc_provider_t *p = site_provider(edge, app->idp);
    if (p == NULL || edge->session_keys == NULL) {
        /* No such provider in edge.json (or none at all): nobody can sign in to this app, and
         * nothing may reach its backend unauthenticated. */
        PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_WARN, "auth_provider_unavailable",
                PTC_LOG_STR("app", app->name), PTC_LOG_STR("idp", app->idp),
                PTC_LOG_STR("reason", "not_configured"));
        page(req, &site, id, PTC_PAGE_AUTH_UNAVAILABLE, NULL, false, NULL);
        return 0;
    }
    ptc_session_t s;
    if (site_session(edge, req, &site, &s) != 0) {
        start_login(edge, req, &site, p, id);
        return 0;
    }
    if (!ptc_auth_is_assigned(&app->assignment, &s)) {
        PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_INFO, "auth_not_assigned",
                PTC_LOG_STR("app", app->name), PTC_LOG_STR("sub", s.sub));
        char user[512];
        if (s.name != NULL && s.email != NULL) {
            snprintf(user, sizeof(user), "%s (%s)", s.name, s.email);
        } else {
            snprintf(user, sizeof(user), "%s",
                     s.email != NULL ? s.email : (s.name != NULL ? s.name : s.sub));
        }
        ptc_page_extra_t extra = {
            .user = user, .link_href = PTC_AUTH_LOGOUT_PATH, .link_text = "Sign out"};
        page(req, &site, id, PTC_PAGE_NOT_ASSIGNED, &extra, false, NULL);
        ptc_session_dispose(&s);
        return 0;
    }
    *ident = s;
    return 1;
}

/* ---- the edge host (for portal.c) ---- */

int ptc_auth_edge_host(ptc_edge_t *edge, ptc_httpd_req_t *req, const char *id, ptc_session_t *ident)
{
    memset(ident, 0, sizeof(*ident));
    site_t site;
    site_for_edge(&site, edge, req);
    if (answered_edge_path(edge, req, &site, id)) {
        return 0;
    }
    ptc_session_t s;
    if (site_session(edge, req, &site, &s) == 0) {
        *ident = s;
        return 1;
    }
    ptc_oidc_provider_t *p = site_provider(edge, site.idp);
    if (p == NULL || edge->session_keys == NULL) {
        page(req, &site, id, PTC_PAGE_AUTH_UNAVAILABLE, NULL, false, NULL);
        return 0;
    }
    start_login(edge, req, &site, p, id);
    return 0;
}
