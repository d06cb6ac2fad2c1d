/* SPDX-License-Identifier: MIT */
/*
 * The OpenID Connect relying party's provider side, for apps with pre_auth "oidc": for each
 * provider of edge.json's idps, the discovery document (OpenID Connect Discovery 1.0) and
 * the provider's key set (JWKS), fetched in the background with common/http_client and
 * refetched when a token names an unknown key; the authorization and logout URLs; the
 * authorization-code exchange at the token endpoint (RFC 6749 §4.1.3, PKCE RFC 7636) and
 * the validation of the ID token (OpenID Connect Core §3.1.3.7) into an identity.
 *
 * One ptc_oidc_t per edge loop owns one HTTP client and every provider. Provider TLS is
 * validated against the provider's ca_file or the system CAs; plain http is used only for
 * issuers on a loopback address (tests, local providers). Response bodies are capped at
 * PTC_OIDC_MAX_BODY. Logs name the provider and a reason, never a code, token or secret.
 * Depends on libuv, jansson, libsodium, common/http_client, common/jose, common/url,
 * common/log, edge/edge_config and edge/session (the login state); never on the edge's
 * request path.
 */
#ifndef PTC_EDGE_OIDC_H
#define PTC_EDGE_OIDC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "common/jose.h"
#include "common/log.h"
#include "edge/edge_config.h"
#include "edge/session.h"

/** Largest discovery, JWKS or token response body accepted (PTC_ELIMIT beyond). */
#define PTC_OIDC_MAX_BODY (1024 * 1024)
/** Clock skew allowed on exp, iat and nbf of ID tokens, in seconds. */
#define PTC_OIDC_SKEW_S 60
/** A token naming an unknown key refetches the JWKS at most this often (ms). */
#define PTC_OIDC_JWKS_REFETCH_MS 30000
/** The signature algorithms accepted for ID tokens. */
#define PTC_OIDC_ALGS (PTC_JOSE_RS256 | PTC_JOSE_ES256 | PTC_JOSE_EDDSA)

/** Every provider of the edge, with their HTTP client. One per loop. */
typedef struct ptc_oidc ptc_oidc_t;
/** One provider (idps[] entry); owned by its ptc_oidc_t. */
typedef struct ptc_oidc_provider ptc_oidc_provider_t;

/**
 * Makes the providers of cfg->idps (read now: the strings and the client secret are copied;
 * cfg may be freed afterwards) and starts fetching each one's discovery document and JWKS in
 * the background; failures are logged (idp_discovery_failed) and retried with a growing
 * delay (1 s doubling to 2 min). `logger` is borrowed and must outlive the object. Works
 * with no providers at all. Returns 0 and *out (close it with ptc_oidc_close()); errors
 * (nothing to close): a provider's ca_file that is not a usable PEM bundle (UV_ENOENT,
 * PTC_EFORMAT... logged as idp_tls_failed), libuv codes.
 */
PTC_MUST_CHECK int ptc_oidc_start(uv_loop_t *loop, ptc_logger_t *logger,
                                  const ptc_edge_config_t *cfg, ptc_oidc_t **out);

/**
 * Closes everything (idempotent). Requests in flight are abandoned: exchanges still running
 * end with status PTC_ECLOSED on later loop iterations, before `done` (may be NULL) runs
 * with `data` once the memory is freed. The loop must keep running until then.
 */
void ptc_oidc_close(ptc_oidc_t *o, void (*done)(void *), void *data);

/** The provider named `name` (idps[].name), or NULL when there is none. Borrowed. */
ptc_oidc_provider_t *ptc_oidc_find(ptc_oidc_t *o, const char *name);

/** The provider's configured name (borrowed, valid as long as the provider). */
const char *ptc_oidc_provider_name(const ptc_oidc_provider_t *p);

/**
 * True when the discovery document and a key set are loaded. When they are not, starts a
 * fetch now unless one is in flight or the last attempt began less than 5 s ago (the retry
 * timer then does it), and returns false: the caller answers "sign-in is unavailable".
 */
bool ptc_oidc_ready(ptc_oidc_provider_t *p);

/**
 * The authorization request URL (OpenID Connect Core §3.1.2.1): the provider's
 * authorization_endpoint with response_type=code, client_id, redirect_uri, scope (the
 * configured scopes joined by spaces), state, nonce, code_challenge (S256 of ls->verifier),
 * code_challenge_method=S256 and response_mode=query, each percent-encoded (RFC 3986
 * unreserved characters kept). `redirect_uri` and `ls` are borrowed. Returns a malloc'd
 * string (caller frees), or NULL when the discovery document is not loaded.
 */
char *ptc_oidc_authorize_url(ptc_oidc_provider_t *p, const char *redirect_uri,
                             const ptc_login_state_t *ls);

/**
 * The RP-initiated logout URL: the provider's end_session_endpoint with client_id and
 * post_logout_redirect_uri (percent-encoded). Returns a malloc'd string (caller frees), or
 * NULL when the provider has no end_session_endpoint or its discovery is not loaded.
 */
char *ptc_oidc_logout_url(ptc_oidc_provider_t *p, const char *post_logout_redirect_uri);

/** Who signed in, from a validated ID token. All strings owned (ptc_oidc_identity_dispose). */
typedef struct ptc_oidc_identity {
    char *sub;
    char *email;   /* NULL when the token has no string "email", or has an "email_verified"
                      other than true (or "true"): an unverified address is never used */
    char *name;    /* NULL when the token has no string "name" */
    char **groups; /* the groups_claim: an array of strings (or one string); absent = none */
    size_t groups_cnt;
    int64_t exp; /* the ID token's exp (seconds since the epoch) */
} ptc_oidc_identity_t;

/**
 * The end of an exchange: status 0 and `id` (borrowed: valid during the callback only; copy
 * what you keep), or a negative status (PTC_EAUTH: the provider refused the code or the ID
 * token is invalid; PTC_ETIMEOUT, libuv or TLS codes: the token endpoint could not be
 * reached; PTC_EPROTO: a malformed answer; PTC_ELIMIT; PTC_ECLOSED: closing) with `reason`
 * (borrowed, for logs and pages: never a token, code or secret) and `id` NULL.
 */
typedef void (*ptc_oidc_done_cb)(void *data, int status, const ptc_oidc_identity_t *id,
                                 const char *reason);

/** A code exchange in progress. */
typedef struct ptc_oidc_exchange ptc_oidc_exchange_t;

/**
 * Exchanges the authorization `code` at the token endpoint (grant_type=authorization_code,
 * code, redirect_uri, code_verifier; the client authenticated per
 * token_endpoint_auth_method) and validates the ID token: the signature through the JWKS
 * (RS256, ES256 or EdDSA; an unknown kid refetches the JWKS once, at most every
 * PTC_OIDC_JWKS_REFETCH_MS) and ptc_oidc_check_claims() against `nonce` with
 * PTC_OIDC_SKEW_S. Every string is copied. On 0, `cb` runs exactly once, never from within
 * this call, unless the exchange is cancelled; *out (may be NULL) is a handle valid until
 * the callback runs or ptc_oidc_exchange_cancel(). Errors (no callback): PTC_ESTATE (the
 * discovery document is not loaded: a fetch is started), PTC_ECLOSED, UV_EINVAL (a NULL
 * argument), errors of ptc_http_client_request().
 */
PTC_MUST_CHECK int ptc_oidc_exchange(ptc_oidc_provider_t *p, const char *code,
                                     const char *redirect_uri, const char *verifier,
                                     const char *nonce, ptc_oidc_done_cb cb, void *data,
                                     ptc_oidc_exchange_t **out);

/** Abandons an exchange (its request's connection is closed); no callback runs after it. */
void ptc_oidc_exchange_cancel(ptc_oidc_exchange_t *x);

/** Frees the strings of an identity and zeroes it. Safe on a zeroed struct. */
void ptc_oidc_identity_dispose(ptc_oidc_identity_t *id);

/**
 * The claim checks of an ID token (OpenID Connect Core §3.1.3.7), with the clock `now_s`:
 * iss equals `issuer` exactly; aud is client_id or an array of strings containing it; azp,
 * when present or when aud has several values, equals client_id; exp is a number and
 * exp > now_s - skew_s; iat is a number and iat <= now_s + skew_s; nbf, when present,
 * nbf <= now_s + skew_s; nonce equals `nonce`; sub is a non-empty string of at most 255
 * bytes. Returns 0, or PTC_EAUTH with the first failed rule in why[0..whylen) (claim values
 * are not quoted).
 */
PTC_MUST_CHECK int ptc_oidc_check_claims(const json_t *claims, const char *issuer,
                                         const char *client_id, const char *nonce, int64_t now_s,
                                         int64_t skew_s, char *why, size_t whylen);

/**
 * The client_secret_basic Authorization value (RFC 6749 §2.3.1): "Basic " and the base64 of
 * form-urlencode(client_id) ":" form-urlencode(secret). Malloc'd (caller wipes and frees).
 */
char *ptc_oidc_basic_auth(const char *client_id, const char *secret);

#endif
