/* SPDX-License-Identifier: MIT */
/*
 * The OIDC pre-authentication gate of the app request path (issue 6, DESIGN §5,
 * docs/apps.md "Sign-in"): for apps with pre_auth "oidc" it answers the edge's own paths
 * under /.portico/ (callback, logout, me, jwks.json), sends browsers without a session to
 * their identity provider with a sealed login-state cookie, completes the sign-in in the
 * callback (an asynchronous token exchange through edge/oidc), checks the app's assignment
 * and, for a request that may go on, turns the session into the headers the backend sees
 * (the app's sso_headers and X-Portico-Assertion, a short-lived JWT signed with the edge's
 * Ed25519 assertion key). portal.c, declared here too, serves "My apps" on the edge host.
 *
 * The pure parts (return-URL validation, assignment matching, identity headers, assertion
 * claims, the key file) are exposed for unit tests. The gate itself depends on edge/httpd,
 * edge/session, edge/oidc, edge/pages, common/jose and libsodium; it keeps no per-login
 * memory (everything rides in the cookies) and never logs a token, cookie or code.
 */
#ifndef PTC_EDGE_AUTH_H
#define PTC_EDGE_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "edge/app.h"
#include "edge/edge.h"
#include "edge/httpd.h"
#include "edge/session.h"

/** The edge's own paths on every app host (and the edge host). */
#define PTC_AUTH_PREFIX "/.portico/"
#define PTC_AUTH_CALLBACK_PATH "/.portico/callback"
#define PTC_AUTH_LOGOUT_PATH "/.portico/logout"
#define PTC_AUTH_ME_PATH "/.portico/me"
#define PTC_AUTH_JWKS_PATH "/.portico/jwks.json"

/** How long a login may take from the redirect to the callback (the login cookie's life). */
#define PTC_AUTH_LOGIN_MAX_AGE_S 600
/** A login cookie is named PTC_LOGIN_COOKIE "_" and this many first characters of its state. */
#define PTC_AUTH_LOGIN_ID_LEN 8
/** Room for a login cookie's name with the "__Host-" prefix and the NUL. */
#define PTC_AUTH_LOGIN_NAME_CAP 32
/** How many sign-ins may be in progress at once in one browser on one host: a new one clears
 * the login cookies of the oldest beyond this many (the newest ones are kept). */
#define PTC_AUTH_LOGINS_MAX 4
/** Lifetime of an X-Portico-Assertion (exp = iat + this). */
#define PTC_AUTH_ASSERTION_TTL_S 60
/** Session lifetime when edge.json sets none. */
#define PTC_AUTH_SESSION_LIFETIME_S (8 * 3600)
/** The assertion key file inside the state directory. */
#define PTC_AUTH_KEY_FILE "assertion_key.json"

/** The edge's Ed25519 assertion key: its secret (libsodium's 64-byte form), public key and
 * key id (base64url of the first 8 bytes of SHA-256(pk)). Wiped when freed. */
typedef struct ptc_auth_key {
    uint8_t sk[64];
    uint8_t pk[32];
    char kid[16];
} ptc_auth_key_t;

/**
 * Loads <state_dir>/assertion_key.json ({"kty":"OKP","crv":"Ed25519","d":..., "x":...},
 * base64url), creating it with a fresh key (mode 0600, written atomically) when absent. A file
 * readable by group or others, malformed, or whose "x" does not match "d" is refused with
 * PTC_ECONFIG; I/O errors are returned as negative errno. err names the file and the reason.
 * *out is the caller's (ptc_auth_key_free).
 */
PTC_MUST_CHECK int ptc_auth_key_load(const char *state_dir, ptc_auth_key_t **out, char *err,
                                     size_t errlen);

/** A fresh key in memory only (tests). Caller frees with ptc_auth_key_free(). */
ptc_auth_key_t *ptc_auth_key_ephemeral(void);

/** Wipes and frees a key. NULL is allowed. */
void ptc_auth_key_free(ptc_auth_key_t *key);

/** The JWK set {"keys":[<the key's public JWK>]} (a new reference; the caller decrefs). */
json_t *ptc_auth_jwks(const ptc_auth_key_t *key);

/**
 * True if `url` (len bytes) may be used as the return URL after sign-in: a path on the same
 * host. It must start with '/', must not start with "//" or "/\" (protocol-relative forms that
 * browsers read as another host), must contain no backslash, control character, space or
 * byte above 0x7E, and no percent-encoded '/', '\' or control character in its first segment
 * (so "/%2F%2Fevil.com" is refused too). 1..2048 bytes.
 */
bool ptc_auth_return_url_is_safe(const char *url, size_t len);

/**
 * The login cookie's name for the sign-in with `state` (len bytes), without the "__Host-"
 * prefix that ptc_cookie_format() adds: "portico_login_" and the state's first
 * PTC_AUTH_LOGIN_ID_LEN characters, so that several sign-ins of one browser on one host (two
 * tabs) each keep their own cookie, and the callback finds its own by the state it carries.
 * False (and "" in out) when the state is shorter or those characters are not base64url.
 */
bool ptc_auth_login_cookie_name(const char *state, size_t len, char out[PTC_AUTH_LOGIN_NAME_CAP]);

/**
 * The login cookies of a request (`hdrs`, cnt fields, borrowed) that a new sign-in on `host`
 * clears, so that at most PTC_AUTH_LOGINS_MAX are in progress with it: those named like
 * ptc_auth_login_cookie_name() (with the "__Host-" prefix when `secure`, exactly as the edge
 * sets them) that do not open for `host` with `keys` or are older than
 * PTC_AUTH_LOGIN_MAX_AGE_S at now_s, then the oldest of the others (by creation time, ties by
 * their order in the request) beyond PTC_AUTH_LOGINS_MAX - 1. At most 16 cookies are looked
 * at (more expire by themselves). Writes up to `cap` names without the prefix into out and
 * returns their count. Pure apart from the clock passed in.
 */
size_t ptc_auth_logins_to_clear(const ptc_session_keys_t *keys, const char *host, bool secure,
                                const ptc_http_header_t *hdrs, size_t cnt, int64_t now_s,
                                char (*out)[PTC_AUTH_LOGIN_NAME_CAP], size_t cap);

/** True if the session's user is admitted by the app's assignment: a users entry equal to the
 * session's email (case-insensitive) or sub (exact), or a groups entry equal to one of its
 * groups; both lists empty admit every signed-in user. */
bool ptc_auth_is_assigned(const ptc_app_assignment_t *a, const ptc_session_t *s);

/** One header for the backend (both strings owned). */
typedef struct ptc_auth_header {
    char *name;
    char *value;
} ptc_auth_header_t;

/**
 * The identity headers for a request of `app` by the session `s` (borrowed): the app's
 * sso_headers in their order (claims sub, email, name, groups joined with ","; idp; a claim
 * the session lacks, an unknown claim, or a value with control characters gives no header),
 * then X-Portico-Assertion signed with `key` (iss "https://<edge_host>", aud the app's name,
 * sub, email, name, groups, iat = now_s, exp = iat + PTC_AUTH_ASSERTION_TTL_S, a random
 * jti). Returns the count and *out (free with ptc_auth_headers_free); aborts when memory runs
 * out; the assertion is left out if signing fails (it cannot with a valid key).
 */
size_t ptc_auth_identity_headers(const ptc_app_t *app, const ptc_session_t *s,
                                 const ptc_auth_key_t *key, const char *edge_host, int64_t now_s,
                                 ptc_auth_header_t **out);

/** Frees what ptc_auth_identity_headers() returned. NULL is allowed. */
void ptc_auth_headers_free(ptc_auth_header_t *h, size_t cnt);

/**
 * The claims of an assertion (a new reference): see ptc_auth_identity_headers(); `jti` is the
 * token id (borrowed).
 */
json_t *ptc_auth_assertion_claims(const ptc_app_t *app, const ptc_session_t *s,
                                  const char *edge_host, int64_t now_s, const char *jti);

/**
 * Keeps in `s` only the groups named by `assignments` (cnt assignment lists, borrowed), so
 * that the session cookie carries what the assignments need and stays small.
 */
void ptc_auth_filter_groups(ptc_session_t *s, const ptc_app_assignment_t *const *assignments,
                            size_t cnt);

/**
 * The app whose sign-in paths (/.portico/...) a request for `host` (host_len bytes, from the
 * Host header) is served with: `routed` (the app the router chose for the path, may be NULL)
 * when it is an oidc app, else the first oidc app published on that host (by name), else
 * NULL. Borrowed.
 */
const ptc_app_t *ptc_auth_host_app(const ptc_edge_t *edge, const char *host, size_t host_len,
                                   const ptc_app_t *routed);

/**
 * For an oidc app's request. Returns 1 when the request may go on to the backend (then
 * *ident holds the session, to be turned into headers by ptc_auth_identity_headers; the
 * caller disposes it), 0 when it was answered (redirect, page, callback, logout, me, jwks)
 * or is being answered asynchronously (the callback's token exchange, which is cancelled if
 * the client goes away). `id` is the request id (borrowed). *ident is zeroed first.
 */
int ptc_auth_gate(ptc_edge_t *edge, ptc_httpd_req_t *req, const ptc_app_t *app, const char *id,
                  ptc_session_t *ident);

/**
 * Answers /.portico/jwks.json (GET or HEAD) on any host with the edge's key set. The request
 * is released.
 */
void ptc_auth_respond_jwks(ptc_edge_t *edge, ptc_httpd_req_t *req, const char *id);

/* ---- the edge host (portal.c) ---- */

/**
 * The gate of the edge host, whose session cookie is its own and whose provider is the first
 * configured one: serves the sign-in paths under /.portico/ there (callback, logout, me,
 * jwks.json), and for other paths returns 1 with *ident (the caller disposes it) when the
 * request carries a session, else answers (a redirect to the provider, 401 JSON for requests
 * that cannot follow one, 503 auth_unavailable without a provider) and returns 0.
 */
int ptc_auth_edge_host(ptc_edge_t *edge, ptc_httpd_req_t *req, const char *id,
                       ptc_session_t *ident);

/**
 * The edge host's routes beyond registration and health (the hook edge->host_route): "/"
 * shows "My apps", the sign-in paths under /.portico/ work as on an app host (with the edge
 * host's own session cookie), the rest is 404. Returns 0 when it took the request, or
 * PTC_ENOTFOUND to let httpd answer 404.
 */
int ptc_portal_route(void *data, ptc_httpd_req_t *req);

/**
 * Appends the portal's HTML list for the session `s` (borrowed; NULL: signed out) to `out`:
 * every oidc app whose assignment admits the user, then every passthrough app, each a link to
 * its home page, with the user's name and a sign-out link. Pure (for tests).
 */
void ptc_portal_render(const ptc_edge_t *edge, const ptc_session_t *s, ptc_buf_t *out);

#endif
