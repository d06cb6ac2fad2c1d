/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for common/jose. Each input is used three ways: as a JWKS document; split at
 * its first 0 byte, the part before it as a compact JWS verified against a small fixed key
 * set (the RFC 7515 A.2 RSA key, the A.3 P-256 key and the RFC 8037 Ed25519 key as "k1"),
 * and the part after it, when present, as a second JWKS the token is verified against too;
 * and a prefix as base64url text. Any crash, sanitizer report, leak or broken promise
 * (abort) is a finding.
 *
 * Promises checked: only the documented error codes; failures leave *out NULL or zeroed
 * and an err message; a verified token has object header and claims and exactly one of the
 * requested algorithms; base64url decoding is canonical (decode then encode gives back the
 * same text, and encode then decode the same bytes).
 */
#include "tests/fuzz/fuzz.h"

#include "common/jose.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char fixed_jwks[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa\",\"alg\":\"RS256\",\"e\":\"AQAB\",\"n\":"
    "\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-"
    "4qPCJrcS2mJPMEzP1Pt0Bm4d4"
    "QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-"
    "bSf63kpaSHSXndS5z5rexMdbBY"
    "UsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-"
    "DWNmo"
    "udF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"},"
    "{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\",\"x\":"
    "\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"OKP\",\"kid\":\"k1\",\"crv\":\"Ed25519\",\"use\":\"sig\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

#define ALL_ALGS (PTC_JOSE_RS256 | PTC_JOSE_ES256 | PTC_JOSE_EDDSA)

#define PROMISE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "broken promise: %s (%s:%d)\n", #cond, __FILE__, __LINE__);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static ptc_jwks_t *fixed_set;
static char sentinel;

static int parse_jwks(const uint8_t *data, size_t size, ptc_jwks_t **set)
{
    char err[160];
    *set = (ptc_jwks_t *)(void *)&sentinel; /* must be reset to NULL on failure */
    int rc = ptc_jwks_parse((const char *)data, size, set, err, sizeof(err));
    PROMISE(rc == 0 || rc == PTC_EFORMAT || rc == PTC_ELIMIT);
    if (rc == 0) {
        PROMISE(*set != NULL);
        PROMISE(ptc_jwks_count(*set) <= PTC_JOSE_MAX_KEYS);
    } else {
        PROMISE(*set == NULL);
        PROMISE(err[0] != '\0');
    }
    return rc;
}

static void verify(const uint8_t *tok, size_t len, const ptc_jwks_t *set)
{
    static const unsigned masks[] = {ALL_ALGS, PTC_JOSE_EDDSA, PTC_JOSE_RS256 | PTC_JOSE_ES256};
    for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
        ptc_jwt_t jwt;
        char err[160];
        int rc = ptc_jwt_verify((const char *)tok, len, set, masks[i], &jwt, err, sizeof(err));
        PROMISE(rc == 0 || rc == PTC_EFORMAT || rc == PTC_ELIMIT || rc == PTC_EAUTH ||
                rc == PTC_ENOTFOUND);
        if (rc == 0) {
            PROMISE(json_is_object(jwt.header) && json_is_object(jwt.claims));
            PROMISE(jwt.alg == PTC_JOSE_RS256 || jwt.alg == PTC_JOSE_ES256 ||
                    jwt.alg == PTC_JOSE_EDDSA);
            PROMISE(((unsigned)jwt.alg & masks[i]) != 0);
            ptc_jwt_dispose(&jwt);
            PROMISE(jwt.header == NULL && jwt.claims == NULL);
        } else {
            PROMISE(jwt.header == NULL && jwt.claims == NULL);
            PROMISE(err[0] != '\0');
        }
    }
}

static void check_b64url(const uint8_t *data, size_t size)
{
    size_t n = size < 256 ? size : 256;
    uint8_t raw[256];
    size_t len;
    int rc = ptc_jose_b64url_decode((const char *)data, n, raw, sizeof(raw), &len);
    PROMISE(rc == 0 || rc == PTC_EFORMAT);
    char text[400];
    if (rc == 0) {
        size_t tlen = ptc_jose_b64url_encode(raw, len, text);
        PROMISE(tlen == n && memcmp(text, data, n) == 0);
    }
    size_t tlen = ptc_jose_b64url_encode(data, n, text);
    PROMISE(tlen == ptc_jose_b64url_encoded_len(n) && text[tlen] == '\0');
    PROMISE(ptc_jose_b64url_decode(text, tlen, raw, sizeof(raw), &len) == 0);
    PROMISE(len == n && memcmp(raw, data, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fixed_set == NULL) {
        PROMISE(sodium_init() >= 0);
        char err[160];
        PROMISE(ptc_jwks_parse(fixed_jwks, strlen(fixed_jwks), &fixed_set, err, sizeof(err)) == 0);
        PROMISE(ptc_jwks_count(fixed_set) == 3);
    }

    ptc_jwks_t *set;
    if (parse_jwks(data, size, &set) == 0) {
        ptc_jwks_free(set);
    }

    const uint8_t *zero = memchr(data, 0, size);
    size_t tok_len = zero == NULL ? size : (size_t)(zero - data);
    verify(data, tok_len, fixed_set);
    if (zero != NULL) {
        const uint8_t *rest = zero + 1;
        size_t rest_len = size - tok_len - 1;
        if (parse_jwks(rest, rest_len, &set) == 0) {
            verify(data, tok_len, set);
            ptc_jwks_free(set);
        }
    }

    check_b64url(data, size);
    return 0;
}
