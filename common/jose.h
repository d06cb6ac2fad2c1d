/* SPDX-License-Identifier: MIT */
/*
 * JOSE for the OIDC relying party and the edge's identity assertions: strict base64url
 * (RFC 4648 §5, no padding), JSON Web Key Sets (RFC 7517) holding RSA (>= 2048 bits), EC
 * P-256 and OKP Ed25519 public keys, verification of compact JWS tokens (RFC 7515) signed
 * with RS256, ES256 or EdDSA (RFC 7518, RFC 8037), Ed25519 JWT signing and the Ed25519
 * public JWK the edge publishes at /.portico/jwks.json.
 *
 * Pure: jansson, mbedTLS and libsodium only; no I/O, no clock, no logging. Claims such as
 * exp, iss or aud are not checked here (edge/oidc does that). `alg: none`, HMAC and every
 * algorithm not in the caller's mask are always refused; keys are never taken from a token's
 * own header (jwk, jku, x5u, x5c are ignored). sodium_init() must have been called.
 */
#ifndef PTC_COMMON_JOSE_H
#define PTC_COMMON_JOSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/** The longest compact JWS ptc_jwt_verify() accepts (PTC_ELIMIT beyond). */
#define PTC_JOSE_MAX_TOKEN 16384
/** The largest JWKS document ptc_jwks_parse() accepts (PTC_ELIMIT beyond). */
#define PTC_JOSE_MAX_JWKS 262144
/** The most keys (usable or not) a JWKS may list (PTC_ELIMIT beyond). */
#define PTC_JOSE_MAX_KEYS 64

/** Length of the base64url text (no padding) for n bytes, without the NUL. */
size_t ptc_jose_b64url_encoded_len(size_t n);

/**
 * Encodes n bytes as base64url without padding into out, which must hold
 * ptc_jose_b64url_encoded_len(n) + 1 bytes. Writes the NUL; returns the text length.
 */
size_t ptc_jose_b64url_encode(const void *in, size_t n, char *out);

/**
 * Decodes base64url text strictly: alphabet [A-Za-z0-9_-] only, no padding, no whitespace,
 * canonical (the unused low bits of the last character are zero; a length of 4k+1 is
 * invalid). Writes at most cap bytes; *outlen gets the count. Returns 0, PTC_EFORMAT for bad
 * text, or PTC_ELIMIT when the result does not fit in cap.
 */
PTC_MUST_CHECK int ptc_jose_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap,
                                          size_t *outlen);

/** The JWS algorithms Portico knows; masks of them select what ptc_jwt_verify() accepts. */
typedef enum { PTC_JOSE_RS256 = 1, PTC_JOSE_ES256 = 2, PTC_JOSE_EDDSA = 4 } ptc_jose_alg_t;

/**
 * A parsed key set: RSA (2048 to 8192 bits, odd exponent 3 to 2^32-1), EC P-256 (point on the
 * curve) and OKP Ed25519 public keys. Keys with "use" other than "sig", "key_ops" without
 * "verify", private members ("d"), another kty/crv, malformed members, a weak RSA modulus or
 * a kid already taken by an earlier key are skipped. Immutable once parsed.
 */
typedef struct ptc_jwks ptc_jwks_t;

/**
 * Parses a JWKS document {"keys": [...]} of len bytes (no NUL needed). Returns 0 and *out
 * (caller frees with ptc_jwks_free(); the set may hold zero usable keys, and err then tells
 * why the first skipped key was skipped, "" when none was); PTC_EFORMAT when the document is
 * not a JSON object with a "keys" array of objects (duplicate member names and trailing
 * bytes refused); PTC_ELIMIT when it is larger than PTC_JOSE_MAX_JWKS or lists more than
 * PTC_JOSE_MAX_KEYS keys; PTC_ENOMEM. On failure *out is NULL and err says why. err may be
 * NULL when errlen is 0.
 */
PTC_MUST_CHECK int ptc_jwks_parse(const char *json, size_t len, ptc_jwks_t **out, char *err,
                                  size_t errlen);

/** Frees a key set; NULL is a no-op. */
void ptc_jwks_free(ptc_jwks_t *set);

/** The number of usable keys in the set (0 for NULL). */
size_t ptc_jwks_count(const ptc_jwks_t *set);

/** A verified token. */
typedef struct ptc_jwt {
    json_t *header; /* owned: the protected header object */
    json_t *claims; /* owned: the payload object */
    int alg;        /* ptc_jose_alg_t */
} ptc_jwt_t;

/**
 * Decodes and verifies a compact JWS (header.payload.signature, len bytes, no NUL needed).
 * `algs`: mask of accepted ptc_jose_alg_t values ("none", HMAC and anything else are always
 * refused). Header and payload must be JSON objects without duplicate member names or
 * trailing bytes; a "crit" header is refused. The key: the one whose kid equals the header's
 * kid (and whose type fits alg; a key's own "alg", when present, must equal it); without a
 * kid in the header, the only key that fits alg.
 *
 * Returns 0 and fills *out (caller disposes with ptc_jwt_dispose()); PTC_EFORMAT malformed;
 * PTC_ELIMIT longer than PTC_JOSE_MAX_TOKEN; PTC_EAUTH bad signature, alg refused, key type
 * or key alg mismatch, or several keys fit a header without kid; PTC_ENOTFOUND no key with
 * that kid, or no key fits a header without kid (the caller may refetch the JWKS once);
 * PTC_ENOMEM. On failure *out is zeroed. err (may be NULL when errlen is 0) says why, and
 * never quotes the token.
 */
PTC_MUST_CHECK int ptc_jwt_verify(const char *tok, size_t len, const ptc_jwks_t *keys,
                                  unsigned algs, ptc_jwt_t *out, char *err, size_t errlen);

/** Releases header and claims and zeroes the struct; safe on a zeroed struct. */
void ptc_jwt_dispose(ptc_jwt_t *jwt);

/**
 * Signs `claims` (borrowed; must be an object) as a compact JWS with the protected header
 * {"alg":"EdDSA","typ":"JWT","kid":kid} (kid omitted when NULL) and an Ed25519 secret key in
 * libsodium's 64-byte form (seed || public key). Returns 0 and *out (malloc'd, NUL-terminated;
 * caller frees with free()); PTC_EFORMAT when claims is not an object or does not serialize;
 * PTC_ELIMIT when the token would exceed PTC_JOSE_MAX_TOKEN; PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_jwt_sign_eddsa(const json_t *claims, const char *kid, const uint8_t sk[64],
                                      char **out);

/**
 * The public JWK {"kty":"OKP","crv":"Ed25519","x":...,"kid":kid,"alg":"EdDSA","use":"sig"}
 * of an Ed25519 public key (kid omitted when NULL). Returns a new reference (caller
 * json_decref()s it), or NULL when out of memory.
 */
json_t *ptc_jwk_ed25519(const uint8_t pk[32], const char *kid);

#endif
