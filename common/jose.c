/* SPDX-License-Identifier: MIT */
/*
 * JOSE: strict base64url, JWKS parsing, compact JWS verification (RS256, ES256, EdDSA) and
 * Ed25519 JWT signing (see jose.h). Everything that arrives here comes from an identity
 * provider or a browser, so the parsers refuse what they do not fully understand: JSON with
 * duplicate member names or trailing bytes, non-canonical base64url, headers with "crit",
 * and any algorithm the caller did not ask for. A key set keeps only the public material
 * (raw bytes, already validated), so verification works on a const set without shared
 * mbedTLS state; RSA and EC contexts are rebuilt on the stack for each verification.
 *
 * Pure: jansson, mbedTLS and libsodium; no I/O, no clock, no logging.
 */
#include "common/jose.h"

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/md.h>
#include <mbedtls/rsa.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RSA moduli outside [2048, 8192] bits are refused (RFC 7518 §3.3 requires >= 2048). */
#define RSA_MIN_BITS 2048
#define RSA_MAX_BYTES 1024
#define KID_MAX 256
/* A key's "alg" member naming an algorithm Portico does not verify. */
#define KEY_ALG_OTHER 0x100u

typedef enum { KEY_RSA = 1, KEY_EC, KEY_OKP } key_type_t;

typedef struct jwk {
    char *kid;       /* NULL when the key has none */
    key_type_t type; /* what pub holds */
    unsigned alg;    /* the key's own "alg": 0 absent, a ptc_jose_alg_t or KEY_ALG_OTHER */
    uint8_t *pub;    /* RSA: modulus; EC: 0x04 || x || y; OKP: the 32-byte key */
    size_t pub_len;
    uint8_t e[4]; /* RSA public exponent, big-endian, minimal */
    size_t e_len;
} jwk_t;

struct ptc_jwks {
    jwk_t *keys;
    size_t cnt;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- base64url ---- */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

size_t ptc_jose_b64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t ptc_jose_b64url_encode(const void *in, size_t n, char *out)
{
    const uint8_t *p = in;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64url_alphabet[v >> 18 & 63];
        out[o++] = b64url_alphabet[v >> 12 & 63];
        out[o++] = b64url_alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return o;
}

int ptc_jose_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    *outlen = 0;
    /* One leftover character carries only 6 bits: never a whole byte. */
    if (n % 4 == 1) {
        return PTC_EFORMAT;
    }
    for (size_t i = 0; i < n; i++) {
        if (b64url_value((unsigned char)in[i]) < 0) {
            return PTC_EFORMAT;
        }
    }
    /* Canonical form (RFC 4648 §3.5): the bits below the last whole byte must be zero, so
     * each byte string has exactly one encoding and a token cannot be altered invisibly. */
    if (n % 4 == 2 && (b64url_value((unsigned char)in[n - 1]) & 0x0f) != 0) {
        return PTC_EFORMAT;
    }
    if (n % 4 == 3 && (b64url_value((unsigned char)in[n - 1]) & 0x03) != 0) {
        return PTC_EFORMAT;
    }
    size_t need = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (need > cap) {
        return PTC_ELIMIT;
    }
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 6 | (uint32_t)b64url_value((unsigned char)in[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *outlen = o;
    return 0;
}

/* Decodes a base64url JSON member of `obj` into a fresh buffer of at most `max` bytes.
 * Returns 0, 1 when the member is absent, not a string, not base64url or too long (the
 * reason in why), or PTC_ENOMEM. */
static int member_bytes(const json_t *obj, const char *name, size_t max, uint8_t **out, size_t *len,
                        char *why, size_t whylen)
{
    *out = NULL;
    *len = 0;
    const json_t *v = json_object_get(obj, name);
    if (!json_is_string(v)) {
        set_err(why, whylen, "\"%s\" missing or not a string", name);
        return 1;
    }
    const char *s = json_string_value(v);
    size_t slen = json_string_length(v);
    if (slen > ptc_jose_b64url_encoded_len(max)) {
        set_err(why, whylen, "\"%s\" too long", name);
        return 1;
    }
    uint8_t *buf = malloc(max == 0 ? 1 : max);
    if (buf == NULL) {
        return PTC_ENOMEM;
    }
    if (ptc_jose_b64url_decode(s, slen, buf, max, len) != 0) {
        free(buf);
        set_err(why, whylen, "\"%s\" is not base64url", name);
        return 1;
    }
    *out = buf;
    return 0;
}

/* ---- key sets ---- */

static unsigned alg_from_name(const char *s)
{
    if (strcmp(s, "RS256") == 0) {
        return PTC_JOSE_RS256;
    }
    if (strcmp(s, "ES256") == 0) {
        return PTC_JOSE_ES256;
    }
    if (strcmp(s, "EdDSA") == 0) {
        return PTC_JOSE_EDDSA;
    }
    return 0;
}

static key_type_t key_type_for_alg(unsigned alg)
{
    switch (alg) {
    case PTC_JOSE_RS256:
        return KEY_RSA;
    case PTC_JOSE_ES256:
        return KEY_EC;
    case PTC_JOSE_EDDSA:
        return KEY_OKP;
    }
    return 0;
}

static void jwk_dispose(jwk_t *k)
{
    free(k->kid);
    free(k->pub);
    memset(k, 0, sizeof(*k));
}

/* Checks an RSA public key (RFC 7518 §6.3.1): minimal big-endian integers, an odd modulus
 * of 2048 to 8192 bits, an odd exponent from 3 to 2^32 - 1; then lets mbedTLS agree. */
static int parse_rsa(const json_t *jk, jwk_t *k, char *why, size_t whylen)
{
    uint8_t *e = NULL;
    size_t e_len = 0;
    int rc = member_bytes(jk, "n", RSA_MAX_BYTES, &k->pub, &k->pub_len, why, whylen);
    if (rc != 0) {
        goto out;
    }
    rc = member_bytes(jk, "e", sizeof(k->e), &e, &e_len, why, whylen);
    if (rc != 0) {
        goto out;
    }
    rc = 1;
    if (k->pub_len == 0 || k->pub[0] == 0) {
        set_err(why, whylen, "RSA modulus empty or not minimal");
        goto out;
    }
    size_t bits = k->pub_len * 8;
    for (uint8_t top = k->pub[0]; (top & 0x80) == 0; top <<= 1) {
        bits--;
    }
    if (bits < RSA_MIN_BITS) {
        set_err(why, whylen, "RSA modulus of %zu bits (at least %d required)", bits, RSA_MIN_BITS);
        goto out;
    }
    if ((k->pub[k->pub_len - 1] & 1) == 0) {
        set_err(why, whylen, "RSA modulus is even");
        goto out;
    }
    if (e_len == 0 || e[0] == 0 || (e[e_len - 1] & 1) == 0 || (e_len == 1 && e[0] < 3)) {
        set_err(why, whylen, "RSA exponent not an odd minimal integer >= 3");
        goto out;
    }
    memcpy(k->e, e, e_len);
    k->e_len = e_len;

    mbedtls_rsa_context rsa;
    mbedtls_rsa_init(&rsa, MBEDTLS_RSA_PKCS_V15, 0);
    if (mbedtls_rsa_import_raw(&rsa, k->pub, k->pub_len, NULL, 0, NULL, 0, NULL, 0, k->e,
                               k->e_len) != 0 ||
        mbedtls_rsa_complete(&rsa) != 0 || mbedtls_rsa_check_pubkey(&rsa) != 0) {
        set_err(why, whylen, "RSA public key refused by mbedTLS");
        mbedtls_rsa_free(&rsa);
        goto out;
    }
    mbedtls_rsa_free(&rsa);
    k->type = KEY_RSA;
    rc = 0;
out:
    free(e);
    return rc;
}

/* Checks an EC P-256 key (RFC 7518 §6.2.1): x and y exactly 32 bytes each, and the point on
 * the curve (an invalid-curve point would leak nothing here since we only verify, but such a
 * key is broken and no provider publishes one). */
static int parse_ec(const json_t *jk, jwk_t *k, char *why, size_t whylen)
{
    uint8_t *x = NULL;
    uint8_t *y = NULL;
    size_t x_len = 0;
    size_t y_len = 0;
    const json_t *crv = json_object_get(jk, "crv");
    if (!json_is_string(crv) || strcmp(json_string_value(crv), "P-256") != 0) {
        set_err(why, whylen, "unsupported EC curve");
        return 1;
    }
    int rc = member_bytes(jk, "x", 32, &x, &x_len, why, whylen);
    if (rc == 0) {
        rc = member_bytes(jk, "y", 32, &y, &y_len, why, whylen);
    }
    if (rc != 0) {
        goto out;
    }
    rc = 1;
    if (x_len != 32 || y_len != 32) {
        set_err(why, whylen, "EC coordinates must be 32 bytes each");
        goto out;
    }
    k->pub = malloc(65);
    if (k->pub == NULL) {
        rc = PTC_ENOMEM;
        goto out;
    }
    k->pub[0] = 0x04;
    memcpy(k->pub + 1, x, 32);
    memcpy(k->pub + 33, y, 32);
    k->pub_len = 65;

    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    bool ok = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) == 0 &&
              mbedtls_ecp_point_read_binary(&grp, &q, k->pub, k->pub_len) == 0 &&
              mbedtls_ecp_check_pubkey(&grp, &q) == 0;
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    if (!ok) {
        set_err(why, whylen, "EC point not on P-256");
        goto out;
    }
    k->type = KEY_EC;
    rc = 0;
out:
    free(x);
    free(y);
    return rc;
}

/* Checks an OKP Ed25519 key (RFC 8037 §2): 32 bytes that decode to a point of large order. */
static int parse_okp(const json_t *jk, jwk_t *k, char *why, size_t whylen)
{
    const json_t *crv = json_object_get(jk, "crv");
    if (!json_is_string(crv) || strcmp(json_string_value(crv), "Ed25519") != 0) {
        set_err(why, whylen, "unsupported OKP curve");
        return 1;
    }
    int rc = member_bytes(jk, "x", 32, &k->pub, &k->pub_len, why, whylen);
    if (rc != 0) {
        return rc;
    }
    if (k->pub_len != 32 || crypto_core_ed25519_is_valid_point(k->pub) != 1) {
        set_err(why, whylen, "Ed25519 key is not a valid point");
        return 1;
    }
    k->type = KEY_OKP;
    return 0;
}

/* Parses one key object. Returns 0 (usable, *k filled), 1 (skipped, the reason in why) or
 * PTC_ENOMEM. */
static int parse_key(const json_t *jk, jwk_t *k, char *why, size_t whylen)
{
    memset(k, 0, sizeof(*k));
    const json_t *kty = json_object_get(jk, "kty");
    const json_t *use = json_object_get(jk, "use");
    const json_t *ops = json_object_get(jk, "key_ops");
    const json_t *kid = json_object_get(jk, "kid");
    const json_t *alg = json_object_get(jk, "alg");
    int rc = 1;
    if (!json_is_string(kty)) {
        set_err(why, whylen, "\"kty\" missing or not a string");
        goto fail;
    }
    if (use != NULL && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0)) {
        set_err(why, whylen, "\"use\" is not \"sig\"");
        goto fail;
    }
    if (ops != NULL) {
        bool verify = false;
        size_t i;
        const json_t *op;
        if (!json_is_array(ops)) {
            set_err(why, whylen, "\"key_ops\" is not an array");
            goto fail;
        }
        json_array_foreach(ops, i, op)
        {
            if (!json_is_string(op)) {
                set_err(why, whylen, "\"key_ops\" holds a non-string");
                goto fail;
            }
            verify = verify || strcmp(json_string_value(op), "verify") == 0;
        }
        if (!verify) {
            set_err(why, whylen, "\"key_ops\" lacks \"verify\"");
            goto fail;
        }
    }
    /* A published private key is a provider's mistake; such a key proves nothing. */
    if (json_object_get(jk, "d") != NULL) {
        set_err(why, whylen, "private key material published");
        goto fail;
    }
    if (kid != NULL && (!json_is_string(kid) || json_string_length(kid) > KID_MAX ||
                        strlen(json_string_value(kid)) != json_string_length(kid))) {
        set_err(why, whylen, "\"kid\" is not a string of at most %d bytes", KID_MAX);
        goto fail;
    }
    if (alg != NULL) {
        if (!json_is_string(alg)) {
            set_err(why, whylen, "\"alg\" is not a string");
            goto fail;
        }
        k->alg = alg_from_name(json_string_value(alg));
        if (k->alg == 0) {
            k->alg = KEY_ALG_OTHER;
        }
    }
    const char *t = json_string_value(kty);
    if (strcmp(t, "RSA") == 0) {
        rc = parse_rsa(jk, k, why, whylen);
    } else if (strcmp(t, "EC") == 0) {
        rc = parse_ec(jk, k, why, whylen);
    } else if (strcmp(t, "OKP") == 0) {
        rc = parse_okp(jk, k, why, whylen);
    } else {
        set_err(why, whylen, "unsupported kty");
        rc = 1;
    }
    if (rc != 0) {
        goto fail;
    }
    if (kid != NULL) {
        k->kid = strdup(json_string_value(kid));
        if (k->kid == NULL) {
            rc = PTC_ENOMEM;
            goto fail;
        }
    }
    return 0;
fail:
    jwk_dispose(k);
    return rc;
}

static bool kid_taken(const ptc_jwks_t *set, const char *kid)
{
    for (size_t i = 0; i < set->cnt; i++) {
        if (set->keys[i].kid != NULL && strcmp(set->keys[i].kid, kid) == 0) {
            return true;
        }
    }
    return false;
}

int ptc_jwks_parse(const char *json, size_t len, ptc_jwks_t **out, char *err, size_t errlen)
{
    json_t *root = NULL;
    ptc_jwks_t *set = NULL;
    int rc;
    *out = NULL;
    set_err(err, errlen, "%s", "");
    if (len > PTC_JOSE_MAX_JWKS) {
        set_err(err, errlen, "JWKS larger than %d bytes", PTC_JOSE_MAX_JWKS);
        return PTC_ELIMIT;
    }
    json_error_t jerr;
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL || !json_is_object(root)) {
        set_err(err, errlen, "JWKS is not a JSON object");
        rc = PTC_EFORMAT;
        goto fail;
    }
    const json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        set_err(err, errlen, "JWKS has no \"keys\" array");
        rc = PTC_EFORMAT;
        goto fail;
    }
    size_t n = json_array_size(keys);
    if (n > PTC_JOSE_MAX_KEYS) {
        set_err(err, errlen, "JWKS lists more than %d keys", PTC_JOSE_MAX_KEYS);
        rc = PTC_ELIMIT;
        goto fail;
    }
    set = calloc(1, sizeof(*set));
    if (set == NULL) {
        rc = PTC_ENOMEM;
        goto fail;
    }
    set->keys = calloc(n == 0 ? 1 : n, sizeof(*set->keys));
    if (set->keys == NULL) {
        rc = PTC_ENOMEM;
        goto fail;
    }
    bool noted = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *jk = json_array_get(keys, i);
        if (!json_is_object(jk)) {
            set_err(err, errlen, "JWKS key %zu is not an object", i);
            rc = PTC_EFORMAT;
            goto fail;
        }
        char why[96];
        jwk_t *k = &set->keys[set->cnt];
        rc = parse_key(jk, k, why, sizeof(why));
        if (rc < 0) {
            goto fail;
        }
        /* Two keys with one kid would make the choice depend on their order; the first
         * one wins and the later one is skipped. */
        if (rc == 0 && k->kid != NULL && kid_taken(set, k->kid)) {
            jwk_dispose(k);
            snprintf(why, sizeof(why), "duplicate kid");
            rc = 1;
        }
        if (rc == 0) {
            set->cnt++;
        } else if (!noted) {
            set_err(err, errlen, "JWKS key %zu skipped: %s", i, why);
            noted = true;
        }
    }
    json_decref(root);
    *out = set;
    return 0;
fail:
    ptc_jwks_free(set);
    json_decref(root);
    return rc;
}

void ptc_jwks_free(ptc_jwks_t *set)
{
    if (set == NULL) {
        return;
    }
    for (size_t i = 0; i < set->cnt; i++) {
        jwk_dispose(&set->keys[i]);
    }
    free(set->keys);
    free(set);
}

size_t ptc_jwks_count(const ptc_jwks_t *set)
{
    return set == NULL ? 0 : set->cnt;
}

/* ---- verification ---- */

static bool key_fits(const jwk_t *k, unsigned alg)
{
    return k->type == key_type_for_alg(alg) && (k->alg == 0 || k->alg == alg);
}

/* Picks the key for a token (see ptc_jwt_verify in jose.h for the rule). */
static int find_key(const ptc_jwks_t *set, const char *kid, unsigned alg, const jwk_t **out,
                    char *err, size_t errlen)
{
    *out = NULL;
    if (kid != NULL) {
        for (size_t i = 0; i < set->cnt; i++) {
            const jwk_t *k = &set->keys[i];
            if (k->kid == NULL || strcmp(k->kid, kid) != 0) {
                continue;
            }
            if (k->type != key_type_for_alg(alg)) {
                set_err(err, errlen, "key type does not fit the token's alg");
                return PTC_EAUTH;
            }
            if (k->alg != 0 && k->alg != alg) {
                set_err(err, errlen, "the key's own alg differs from the token's");
                return PTC_EAUTH;
            }
            *out = k;
            return 0;
        }
        set_err(err, errlen, "no key with the token's kid");
        return PTC_ENOTFOUND;
    }
    size_t fits = 0;
    for (size_t i = 0; i < set->cnt; i++) {
        if (key_fits(&set->keys[i], alg)) {
            *out = &set->keys[i];
            fits++;
        }
    }
    if (fits == 0) {
        set_err(err, errlen, "no key fits the token's alg (token has no kid)");
        return PTC_ENOTFOUND;
    }
    if (fits > 1) {
        *out = NULL;
        set_err(err, errlen, "several keys fit and the token has no kid");
        return PTC_EAUTH;
    }
    return 0;
}

static int verify_rs256(const jwk_t *k, const uint8_t hash[32], const uint8_t *sig, size_t sig_len)
{
    /* mbedTLS reads exactly the modulus length from sig, so check it first. */
    if (sig_len != k->pub_len) {
        return PTC_EAUTH;
    }
    mbedtls_rsa_context rsa;
    mbedtls_rsa_init(&rsa, MBEDTLS_RSA_PKCS_V15, 0);
    int rc = PTC_EAUTH;
    if (mbedtls_rsa_import_raw(&rsa, k->pub, k->pub_len, NULL, 0, NULL, 0, NULL, 0, k->e,
                               k->e_len) == 0 &&
        mbedtls_rsa_complete(&rsa) == 0 && mbedtls_rsa_get_len(&rsa) == sig_len &&
        mbedtls_rsa_pkcs1_verify(&rsa, NULL, NULL, MBEDTLS_RSA_PUBLIC, MBEDTLS_MD_SHA256, 32, hash,
                                 sig) == 0) {
        rc = 0;
    }
    mbedtls_rsa_free(&rsa);
    return rc;
}

/* ES256 signatures are r || s, 32 bytes each (RFC 7518 §3.4), not DER. */
static int verify_es256(const jwk_t *k, const uint8_t hash[32], const uint8_t *sig, size_t sig_len)
{
    if (sig_len != 64) {
        return PTC_EAUTH;
    }
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r;
    mbedtls_mpi s;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    int rc = PTC_EAUTH;
    /* mbedtls_ecdsa_verify refuses r or s outside [1, n-1] itself. */
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) == 0 &&
        mbedtls_ecp_point_read_binary(&grp, &q, k->pub, k->pub_len) == 0 &&
        mbedtls_mpi_read_binary(&r, sig, 32) == 0 &&
        mbedtls_mpi_read_binary(&s, sig + 32, 32) == 0 &&
        mbedtls_ecdsa_verify(&grp, hash, 32, &q, &r, &s) == 0) {
        rc = 0;
    }
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

static int verify_eddsa(const jwk_t *k, const uint8_t *msg, size_t len, const uint8_t *sig,
                        size_t sig_len)
{
    if (sig_len != crypto_sign_BYTES) {
        return PTC_EAUTH;
    }
    return crypto_sign_verify_detached(sig, msg, len, k->pub) == 0 ? 0 : PTC_EAUTH;
}

/* Decodes one base64url part into a JSON object. */
static int decode_object(const char *p, size_t n, json_t **out)
{
    *out = NULL;
    size_t cap = n / 4 * 3 + 3;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        return PTC_ENOMEM;
    }
    size_t len;
    int rc = ptc_jose_b64url_decode(p, n, buf, cap, &len);
    if (rc == 0) {
        json_error_t jerr;
        json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (json_is_object(v)) {
            *out = v;
        } else {
            json_decref(v);
            rc = PTC_EFORMAT;
        }
    }
    free(buf);
    return rc;
}

int ptc_jwt_verify(const char *tok, size_t len, const ptc_jwks_t *keys, unsigned algs,
                   ptc_jwt_t *out, char *err, size_t errlen)
{
    json_t *header = NULL;
    json_t *claims = NULL;
    uint8_t *sig = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    set_err(err, errlen, "%s", "");
    if (len > PTC_JOSE_MAX_TOKEN) {
        set_err(err, errlen, "token longer than %d bytes", PTC_JOSE_MAX_TOKEN);
        return PTC_ELIMIT;
    }
    size_t dots[2];
    size_t ndots = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] == '.') {
            if (ndots == 2) {
                ndots = 3;
                break;
            }
            dots[ndots++] = i;
        } else if (b64url_value((unsigned char)tok[i]) < 0) {
            set_err(err, errlen, "token holds a character outside base64url");
            return PTC_EFORMAT;
        }
    }
    if (ndots != 2) {
        set_err(err, errlen, "token is not three dot-separated parts");
        return PTC_EFORMAT;
    }
    const char *hp = tok;
    size_t hlen = dots[0];
    const char *pp = tok + dots[0] + 1;
    size_t plen = dots[1] - dots[0] - 1;
    const char *sp = tok + dots[1] + 1;
    size_t slen = len - dots[1] - 1;

    rc = decode_object(hp, hlen, &header);
    if (rc != 0) {
        set_err(err, errlen, "header is not a base64url JSON object");
        goto fail;
    }
    const json_t *jalg = json_object_get(header, "alg");
    if (!json_is_string(jalg)) {
        set_err(err, errlen, "header has no string \"alg\"");
        rc = PTC_EFORMAT;
        goto fail;
    }
    /* "none" and the HMAC family never reach a key lookup: an asymmetric public key used as
     * an HMAC secret is the classic JWT forgery. */
    unsigned alg = alg_from_name(json_string_value(jalg));
    if (alg == 0 || (alg & algs) == 0) {
        set_err(err, errlen, "alg refused");
        rc = PTC_EAUTH;
        goto fail;
    }
    /* RFC 7515 §4.1.11: we understand no extension, so any "crit" makes the token invalid. */
    if (json_object_get(header, "crit") != NULL) {
        set_err(err, errlen, "header has \"crit\"");
        rc = PTC_EFORMAT;
        goto fail;
    }
    const json_t *jkid = json_object_get(header, "kid");
    if (jkid != NULL &&
        (!json_is_string(jkid) || strlen(json_string_value(jkid)) != json_string_length(jkid))) {
        set_err(err, errlen, "header \"kid\" is not a string");
        rc = PTC_EFORMAT;
        goto fail;
    }
    if (plen == 0 || slen == 0) {
        set_err(err, errlen, "token has an empty payload or signature");
        rc = PTC_EFORMAT;
        goto fail;
    }
    size_t sig_cap = ptc_jose_b64url_encoded_len(RSA_MAX_BYTES);
    if (slen > sig_cap) {
        set_err(err, errlen, "signature too long");
        rc = PTC_EFORMAT;
        goto fail;
    }
    sig = malloc(RSA_MAX_BYTES);
    if (sig == NULL) {
        rc = PTC_ENOMEM;
        goto fail;
    }
    size_t sig_len;
    if (ptc_jose_b64url_decode(sp, slen, sig, RSA_MAX_BYTES, &sig_len) != 0) {
        set_err(err, errlen, "signature is not base64url");
        rc = PTC_EFORMAT;
        goto fail;
    }
    /* The payload is parsed only after the signature verifies: until then it is bytes from
     * anybody. Decoding is canonical, so the signed text has one meaning. */
    const jwk_t *k;
    rc = find_key(keys, jkid == NULL ? NULL : json_string_value(jkid), alg, &k, err, errlen);
    if (rc != 0) {
        goto fail;
    }
    const uint8_t *input = (const uint8_t *)tok;
    size_t input_len = dots[1];
    uint8_t hash[32];
    crypto_hash_sha256(hash, input, input_len);
    switch (alg) {
    case PTC_JOSE_RS256:
        rc = verify_rs256(k, hash, sig, sig_len);
        break;
    case PTC_JOSE_ES256:
        rc = verify_es256(k, hash, sig, sig_len);
        break;
    default:
        rc = verify_eddsa(k, input, input_len, sig, sig_len);
        break;
    }
    if (rc != 0) {
        set_err(err, errlen, "bad signature");
        goto fail;
    }
    rc = decode_object(pp, plen, &claims);
    if (rc != 0) {
        set_err(err, errlen, "payload is not a base64url JSON object");
        goto fail;
    }
    free(sig);
    out->header = header;
    out->claims = claims;
    out->alg = (int)alg;
    return 0;
fail:
    free(sig);
    json_decref(claims);
    json_decref(header);
    return rc;
}

void ptc_jwt_dispose(ptc_jwt_t *jwt)
{
    json_decref(jwt->header);
    json_decref(jwt->claims);
    memset(jwt, 0, sizeof(*jwt));
}

/* ---- signing ---- */

int ptc_jwt_sign_eddsa(const json_t *claims, const char *kid, const uint8_t sk[64], char **out)
{
    json_t *header = NULL;
    char *htext = NULL;
    char *ptext = NULL;
    char *tok = NULL;
    int rc;
    *out = NULL;
    if (!json_is_object(claims)) {
        return PTC_EFORMAT;
    }
    header = kid == NULL ? json_pack("{s:s, s:s}", "alg", "EdDSA", "typ", "JWT")
                         : json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "JWT", "kid", kid);
    if (header == NULL) {
        rc = kid == NULL ? PTC_ENOMEM : PTC_EFORMAT;
        goto fail;
    }
    htext = json_dumps(header, JSON_COMPACT);
    ptext = json_dumps(claims, JSON_COMPACT);
    if (htext == NULL || ptext == NULL) {
        rc = PTC_EFORMAT;
        goto fail;
    }
    size_t hlen = ptc_jose_b64url_encoded_len(strlen(htext));
    size_t plen = ptc_jose_b64url_encoded_len(strlen(ptext));
    size_t slen = ptc_jose_b64url_encoded_len(crypto_sign_BYTES);
    size_t total = hlen + 1 + plen + 1 + slen;
    if (total > PTC_JOSE_MAX_TOKEN) {
        rc = PTC_ELIMIT;
        goto fail;
    }
    tok = malloc(total + 1);
    if (tok == NULL) {
        rc = PTC_ENOMEM;
        goto fail;
    }
    size_t o = ptc_jose_b64url_encode(htext, strlen(htext), tok);
    tok[o++] = '.';
    o += ptc_jose_b64url_encode(ptext, strlen(ptext), tok + o);
    uint8_t sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const uint8_t *)tok, o, sk);
    tok[o++] = '.';
    o += ptc_jose_b64url_encode(sig, sizeof(sig), tok + o);
    *out = tok;
    tok = NULL;
    rc = 0;
fail:
    free(tok);
    free(ptext);
    free(htext);
    json_decref(header);
    return rc;
}

json_t *ptc_jwk_ed25519(const uint8_t pk[32], const char *kid)
{
    char x[44];
    ptc_jose_b64url_encode(pk, 32, x);
    json_t *jwk = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", x);
    if (jwk == NULL) {
        return NULL;
    }
    if ((kid != NULL && json_object_set_new(jwk, "kid", json_string(kid)) != 0) ||
        json_object_set_new(jwk, "alg", json_string("EdDSA")) != 0 ||
        json_object_set_new(jwk, "use", json_string("sig")) != 0) {
        json_decref(jwk);
        return NULL;
    }
    return jwk;
}
