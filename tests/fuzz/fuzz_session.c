/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for edge/session.c. Input: a Cookie header value, a newline, then a
 * cookie value or payload. The ring is built from fixed key bytes, so corpus files can carry
 * authentic cookies (sealed with that key) that reach the payload parsers.
 *
 * Cookie header: every cookie the lookup returns is a slice of the header within one pair of
 * the list, and it is decoded as a session and as a login state. The rest of the input is
 * opened as a raw envelope and decoded as both cookies, and it is also sealed as a plaintext
 * so the session and login-state parsers see arbitrary JSON. Whatever decodes must encode
 * again (or be refused as too large) and decode to the same fields.
 */
#include "common/keys.h"
#include "edge/session.h"
#include "tests/fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

#define HOST "app.example.com"
#define NOW 1800000000
#define LOGIN_MAX_AGE 600

static const char *const names[] = {PTC_SESSION_COOKIE, "__Host-" PTC_SESSION_COOKIE,
                                    PTC_LOGIN_COOKIE, "__Host-" PTC_LOGIN_COOKIE};

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

static void check_session(const ptc_session_keys_t *keys, const char *val, size_t len)
{
    ptc_session_t s = {0};
    if (ptc_session_decode(keys, HOST, val, len, NOW, &s) != 0) {
        if (s.sub != NULL) {
            abort(); /* an error leaves the output untouched */
        }
        return;
    }
    if (s.sub == NULL || s.idp == NULL || s.sub[0] == '\0' || s.exp <= NOW) {
        abort();
    }
    char *again = NULL;
    int rc = ptc_session_encode(keys, HOST, &s, &again);
    if (rc == 0) {
        ptc_session_t t = {0};
        if (strlen(again) > PTC_SESSION_COOKIE_MAX ||
            ptc_session_decode(keys, HOST, again, strlen(again), NOW, &t) != 0) {
            abort();
        }
        if (!str_eq(s.sub, t.sub) || !str_eq(s.email, t.email) || !str_eq(s.name, t.name) ||
            !str_eq(s.idp, t.idp) || s.iat != t.iat || s.exp != t.exp ||
            s.groups_cnt != t.groups_cnt) {
            abort();
        }
        for (size_t i = 0; i < s.groups_cnt; i++) {
            if (!str_eq(s.groups[i], t.groups[i])) {
                abort();
            }
        }
        ptc_session_dispose(&t);
        free(again);
    } else if (rc != PTC_ELIMIT) {
        abort();
    }
    ptc_session_dispose(&s);
}

static void check_login(const ptc_session_keys_t *keys, const char *val, size_t len)
{
    ptc_login_state_t ls = {0};
    if (ptc_login_state_decode(keys, HOST, val, len, NOW, LOGIN_MAX_AGE, &ls) != 0) {
        if (ls.state != NULL) {
            abort();
        }
        return;
    }
    if (strlen(ls.state) != 43 || strlen(ls.nonce) != 43 || strlen(ls.verifier) != 43 ||
        ls.created <= NOW - LOGIN_MAX_AGE || ls.created > NOW + 60) {
        abort();
    }
    char challenge[44];
    ptc_pkce_challenge(ls.verifier, challenge);
    if (strlen(challenge) != 43) {
        abort();
    }
    char *again = NULL;
    int rc = ptc_login_state_encode(keys, HOST, &ls, &again);
    if (rc == 0) {
        ptc_login_state_t t = {0};
        if (ptc_login_state_decode(keys, HOST, again, strlen(again), NOW, LOGIN_MAX_AGE, &t) != 0) {
            abort();
        }
        if (!str_eq(ls.state, t.state) || !str_eq(ls.nonce, t.nonce) ||
            !str_eq(ls.verifier, t.verifier) || !str_eq(ls.return_to, t.return_to) ||
            !str_eq(ls.idp, t.idp) || ls.created != t.created) {
            abort();
        }
        ptc_login_state_dispose(&t);
        free(again);
    } else if (rc != PTC_ELIMIT) {
        abort();
    }
    ptc_login_state_dispose(&ls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ptc_keys_init() != 0) {
        abort();
    }
    uint8_t key[32];
    for (size_t i = 0; i < sizeof(key); i++) {
        key[i] = (uint8_t)(0xa0 + i);
    }
    ptc_session_keys_t *keys = ptc_session_keys_from_bytes(key, 0x5e55, NOW - 3600);

    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
    const uint8_t *rest = nl != NULL ? nl + 1 : data + size;
    size_t rlen = (size_t)(data + size - rest);

    /* The header value, as the HTTP parser would hand it over. */
    ptc_http_header_t hdr = {ptc_slice_str("Cookie"), {data, hlen}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ptc_slice_t v = {NULL, 0};
        if (!ptc_cookie_find(&hdr, 1, names[i], &v)) {
            continue;
        }
        /* A slice of this header's value, within one pair of the list. */
        if (v.ptr < data || v.ptr + v.len > data + hlen || memchr(v.ptr, ';', v.len) != NULL) {
            abort();
        }
        char *val = malloc(v.len + 1);
        memcpy(val, v.ptr, v.len);
        val[v.len] = '\0';
        check_session(keys, val, v.len);
        check_login(keys, val, v.len);
        free(val);
    }

    /* The rest as a cookie value... */
    char *val = malloc(rlen + 1);
    memcpy(val, rest, rlen);
    val[rlen] = '\0';
    uint8_t *plain = NULL;
    size_t plen = 0;
    if (ptc_session_open(keys, PTC_SESSION_PURPOSE_SESSION, HOST, val, rlen, &plain, &plen) == 0) {
        free(plain);
    }
    check_session(keys, val, rlen);
    check_login(keys, val, rlen);

    /* ...and as an authentic plaintext of either purpose. */
    char *sealed = NULL;
    if (ptc_session_seal(keys, PTC_SESSION_PURPOSE_SESSION, HOST, rest, rlen, &sealed) == 0) {
        check_session(keys, sealed, strlen(sealed));
        /* Bound to its purpose: never a login state. */
        ptc_login_state_t ls = {0};
        if (ptc_login_state_decode(keys, HOST, sealed, strlen(sealed), NOW, LOGIN_MAX_AGE, &ls) !=
            PTC_EAUTH) {
            abort();
        }
        free(sealed);
    }
    if (ptc_session_seal(keys, PTC_SESSION_PURPOSE_LOGIN, HOST, rest, rlen, &sealed) == 0) {
        check_login(keys, sealed, strlen(sealed));
        free(sealed);
    }
    free(val);
    ptc_session_keys_free(keys);
    return 0;
}
