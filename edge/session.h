/* SPDX-License-Identifier: MIT */
/*
 * Browser sessions of the OIDC pre-authentication: the session key ring, the sealed cookie
 * envelope, the session and login-state payloads, PKCE and the cookie header helpers.
 *
 * The key ring lives in <state_dir>/session_keys.json (mode 0600, written atomically). It
 * holds a current key, used to seal, and at most one previous key, still accepted when
 * opening, so a rotation never signs everybody out at once. Every cookie value is an
 * XChaCha20-Poly1305 envelope whose associated data binds the purpose ("session", "login")
 * and the external host, so a cookie issued for one app host or for one purpose never opens
 * at another. Apart from the key file this module is pure (libsodium, jansson): the caller
 * passes the clock in; it never logs and never writes a secret anywhere but the key file.
 * sodium_init() must have been called.
 */
#ifndef PTC_EDGE_SESSION_H
#define PTC_EDGE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/http.h"

/** Cookie names (without the "__Host-" prefix that ptc_cookie_format adds when secure). A
 * login cookie's name is PTC_LOGIN_COOKIE "_" and an id from its state, one per sign-in in
 * progress (edge/auth.h ptc_auth_login_cookie_name). */
#define PTC_SESSION_COOKIE "portico_session"
#define PTC_LOGIN_COOKIE "portico_login"

/** Envelope purposes (the associated data's first part). */
#define PTC_SESSION_PURPOSE_SESSION "session"
#define PTC_SESSION_PURPOSE_LOGIN "login"

/** The largest sealed cookie value ptc_session_encode produces (PTC_ELIMIT beyond). */
#define PTC_SESSION_COOKIE_MAX 3800

/** The key file's name inside the state directory. */
#define PTC_SESSION_KEYS_FILE "session_keys.json"

/** Length of state, nonce and PKCE verifier: base64url of 32 random bytes, no padding. */
#define PTC_LOGIN_RANDOM_LEN 43

typedef struct ptc_session_keys ptc_session_keys_t;

/**
 * Loads <state_dir>/session_keys.json, creating it with a fresh key (mode 0600) when it does
 * not exist. Rotation: when the current key is older than rotate_after_s (<= 0: never), a
 * new current key is made and the file rewritten atomically; the previous current key stays
 * readable, older ones are dropped.
 *
 * The file: {"version": 1, "keys": [{"id": <uint32>, "created": <epoch s>, "key": <32 bytes
 * base64url>}, ...]} with the current key first and at most one previous key.
 *
 * A file readable or writable by group or others, not a regular file, not valid JSON, or
 * whose keys are malformed is refused (never rewritten) with PTC_ECONFIG and a message in err
 * naming the file and the offending JSON path (e.g. "keys[1].key"); key material never
 * appears in it. A symbolic link is not followed (-ELOOP). I/O errors are returned as libuv
 * codes (negative errno) with err naming the file. On success *out is owned by the caller
 * (ptc_session_keys_free).
 */
PTC_MUST_CHECK int ptc_session_keys_load(const char *state_dir, int64_t now_s,
                                         int64_t rotate_after_s, ptc_session_keys_t **out,
                                         char *err, size_t errlen);

/**
 * Makes a new current key created at now_s; the current key becomes the previous one and the
 * former previous key is dropped (wiped). Writes the key file atomically when the ring was
 * loaded from one (an ephemeral ring only changes in memory). Returns 0 or an I/O error, in
 * which case the ring in memory is unchanged.
 */
PTC_MUST_CHECK int ptc_session_keys_rotate(ptc_session_keys_t *keys, int64_t now_s);

/** Wipes and frees the ring. NULL is allowed. */
void ptc_session_keys_free(ptc_session_keys_t *keys);

/** An in-memory key ring with one random key (tests; no file). Caller frees it. */
ptc_session_keys_t *ptc_session_keys_ephemeral(void);

/**
 * An in-memory ring whose only key is `key` (copied) with id `kid`, created at `created_s`:
 * deterministic keys for unit tests and the fuzzer. Caller frees it.
 */
ptc_session_keys_t *ptc_session_keys_from_bytes(const uint8_t key[32], uint32_t kid,
                                                int64_t created_s);

/**
 * Seals `plain` (len bytes, borrowed) with the current key:
 * base64url( 0x01 | key id (4 bytes, big-endian) | 24-byte random nonce |
 * XChaCha20-Poly1305(plain) ), with associated data "<purpose>\0<host>". *out is a
 * NUL-terminated malloc'd string (caller frees). Returns 0, or PTC_ELIMIT when len exceeds
 * 3027 bytes (the envelope could never be opened again).
 */
PTC_MUST_CHECK int ptc_session_seal(const ptc_session_keys_t *keys, const char *purpose,
                                    const char *host, const uint8_t *plain, size_t len, char **out);

/**
 * Opens a value sealed by ptc_session_seal for the same purpose and host with the current or
 * previous key. On success *plain is a malloc'd buffer of *plen bytes followed by a NUL that
 * is not counted (caller frees; it may hold secrets, wipe before freeing). Returns
 * PTC_EFORMAT for a malformed value (not canonical base64url without padding, too short, or
 * longer than 4096 characters), PTC_EAUTH when the version byte or the key id is unknown or
 * authentication fails (tampered, other host, other purpose, dropped key).
 */
PTC_MUST_CHECK int ptc_session_open(const ptc_session_keys_t *keys, const char *purpose,
                                    const char *host, const char *val, size_t len, uint8_t **plain,
                                    size_t *plen);

/** What the session cookie carries. All strings are owned (ptc_session_dispose). */
typedef struct ptc_session {
    char *sub, *email, *name, *idp; /* email/name may be NULL */
    char **groups;                  /* only those the app's assignment names */
    size_t groups_cnt;
    int64_t iat, exp; /* seconds since the epoch */
} ptc_session_t;

/**
 * Seals `s` (borrowed; sub and idp required) for `host` as a session cookie value,
 * *cookie_value malloc'd (caller frees). Returns PTC_ELIMIT when the sealed value would
 * exceed PTC_SESSION_COOKIE_MAX bytes (too many or too long groups), PTC_EFORMAT when sub or
 * idp is missing or empty or a string is not valid UTF-8, PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_session_encode(const ptc_session_keys_t *keys, const char *host,
                                      const ptc_session_t *s, char **cookie_value);

/**
 * Opens and parses a session cookie value for `host`. On success fills *out (caller
 * disposes). Errors: those of ptc_session_open, PTC_EFORMAT for a payload that is not a
 * well-formed session, PTC_ETIMEOUT when exp <= now_s. *out is untouched on error.
 */
PTC_MUST_CHECK int ptc_session_decode(const ptc_session_keys_t *keys, const char *host,
                                      const char *val, size_t len, int64_t now_s,
                                      ptc_session_t *out);

/** Frees the strings of `s` and zeroes it. Tolerates a zeroed struct. */
void ptc_session_dispose(ptc_session_t *s);

/** The login-state cookie's payload. All strings are owned (ptc_login_state_dispose). */
typedef struct ptc_login_state {
    char *state, *nonce, *verifier, *return_to, *idp; /* state/nonce/verifier: 43-char b64url */
    int64_t created;
} ptc_login_state_t;

/**
 * Fills *out with a fresh state, nonce and PKCE verifier (32 random bytes each, base64url),
 * copies of idp and return_to (borrowed; return_to may be NULL for "/"), created = now_s.
 * Returns 0 (allocation failures abort: the sizes are fixed or configured).
 */
PTC_MUST_CHECK int ptc_login_state_new(const char *idp, const char *return_to, int64_t now_s,
                                       ptc_login_state_t *out);

/** Seals `ls` (borrowed) for `host` as a login cookie value (caller frees *cookie_value).
 *  Returns 0, PTC_ELIMIT (return_to too long for a cookie), PTC_EFORMAT (missing field). */
PTC_MUST_CHECK int ptc_login_state_encode(const ptc_session_keys_t *keys, const char *host,
                                          const ptc_login_state_t *ls, char **cookie_value);

/**
 * Opens and parses a login cookie value for `host`. Errors: those of ptc_session_open,
 * PTC_EFORMAT (malformed payload), PTC_ETIMEOUT when created + max_age_s <= now_s or created
 * lies more than 60 s in the future. On success *out is filled (caller disposes).
 */
PTC_MUST_CHECK int ptc_login_state_decode(const ptc_session_keys_t *keys, const char *host,
                                          const char *val, size_t len, int64_t now_s,
                                          int64_t max_age_s, ptc_login_state_t *out);

/** Wipes and frees the strings of `ls` and zeroes it. Tolerates a zeroed struct. */
void ptc_login_state_dispose(ptc_login_state_t *ls);

/** S256 challenge of a verifier (RFC 7636 §4.2): base64url(SHA-256(verifier)), NUL-terminated
 *  (43 characters) into out. */
void ptc_pkce_challenge(const char *verifier, char out[44]);

/**
 * The value of cookie `name` in the request's Cookie header fields (every field named
 * "Cookie", each a "a=1; b=2" list; the first exact, case-sensitive name match wins), or
 * false. A value in double quotes is returned without them. *value is a slice of the header
 * (borrowed, valid as long as hdrs).
 */
bool ptc_cookie_find(const ptc_http_header_t *hdrs, size_t cnt, const char *name,
                     ptc_slice_t *value);

/**
 * A Set-Cookie field value:
 * "<name>=<value>; Path=/; SameSite=Lax[; HttpOnly][; Secure][; Max-Age=N]"
 * (max_age < 0: none, a browser-session cookie; 0: deletion). The name gets the "__Host-"
 * prefix when secure. Malloc'd (caller frees); never NULL.
 */
char *ptc_cookie_format(const char *name, const char *value, bool secure, bool http_only,
                        int64_t max_age);

#endif
