/* SPDX-License-Identifier: MIT */
/*
 * Keys and encodings on libsodium: Ed25519 key pairs and signatures, SHA-256, random
 * tokens and ids, base64url (RFC 4648 §5, no padding) and hex, constant-time comparison, and
 * secret files written with mode 0600.
 *
 * Secret material lives in ptc_ed25519_key_t and caller buffers that the caller wipes with
 * ptc_keys_wipe() (sodium_memzero). Nothing here logs. sodium_init() must have been called
 * (ptc_keys_init() does it and is safe to call more than once).
 */
#ifndef PTC_COMMON_KEYS_H
#define PTC_COMMON_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define PTC_ED25519_PK_LEN 32
#define PTC_ED25519_SK_LEN 64 /* libsodium's form: seed || public key */
#define PTC_ED25519_SIG_LEN 64
#define PTC_SHA256_LEN 32

typedef struct ptc_ed25519_key {
    uint8_t pk[PTC_ED25519_PK_LEN];
    uint8_t sk[PTC_ED25519_SK_LEN];
} ptc_ed25519_key_t;

/** Initializes libsodium. Returns 0 or PTC_ECRYPTO. */
PTC_MUST_CHECK int ptc_keys_init(void);

/** Generates a fresh Ed25519 key pair. */
void ptc_ed25519_generate(ptc_ed25519_key_t *key);
/** Derives the key pair from a 32-byte seed (deterministic; for tests and key files). */
void ptc_ed25519_from_seed(ptc_ed25519_key_t *key, const uint8_t seed[32]);
/** Signs msg into sig (64 bytes). */
void ptc_ed25519_sign(const ptc_ed25519_key_t *key, const uint8_t *msg, size_t len,
                      uint8_t sig[PTC_ED25519_SIG_LEN]);
/** Verifies a signature. Returns 0, or PTC_ECRYPTO when it does not verify. */
PTC_MUST_CHECK int ptc_ed25519_verify(const uint8_t pk[PTC_ED25519_PK_LEN], const uint8_t *msg,
                                      size_t len, const uint8_t sig[PTC_ED25519_SIG_LEN]);

/** SHA-256 of p[0..len). */
void ptc_sha256(const void *p, size_t len, uint8_t out[PTC_SHA256_LEN]);

/** Fills p with len cryptographically random bytes. */
void ptc_random_bytes(void *p, size_t len);
/**
 * Writes a random token of `nbytes` random bytes as base64url (no padding) prefixed with
 * `prefix` (may be NULL) into out. Returns 0, or PTC_ELIMIT if out is too small.
 */
PTC_MUST_CHECK int ptc_random_token(const char *prefix, size_t nbytes, char *out, size_t cap);

/** Constant-time equality of two byte ranges of the same length. */
bool ptc_consttime_eq(const void *a, const void *b, size_t len);
/** Wipes memory that held a secret (never optimized away). */
void ptc_keys_wipe(void *p, size_t len);

/** Length of the base64url text (no padding) for len bytes, without the NUL. */
size_t ptc_b64url_len(size_t len);
/**
 * Encodes len bytes as base64url without padding, NUL-terminated. Returns the text length,
 * or PTC_ELIMIT if cap is too small.
 */
PTC_MUST_CHECK int ptc_b64url_encode(const void *p, size_t len, char *out, size_t cap);
/**
 * Decodes base64url text (padding optional; '+' '/' and whitespace refused). Writes at most
 * cap bytes; *out_len gets the count. Returns 0, PTC_EFORMAT for bad text, or PTC_ELIMIT if
 * the result does not fit.
 */
PTC_MUST_CHECK int ptc_b64url_decode(const char *text, size_t text_len, uint8_t *out, size_t cap,
                                     size_t *out_len);
/** Lower-case hex of len bytes into out (2*len+1 bytes). Returns 0 or PTC_ELIMIT. */
PTC_MUST_CHECK int ptc_hex_encode(const void *p, size_t len, char *out, size_t cap);

/**
 * Writes `len` bytes to `path` atomically with mode 0600: a temporary file in the same
 * directory, fsync, rename, fsync of the directory. Returns 0 or a libuv-style negative errno.
 */
PTC_MUST_CHECK int ptc_keys_write_secret_file(const char *path, const void *data, size_t len);

#endif
