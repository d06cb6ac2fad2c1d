/* SPDX-License-Identifier: MIT */
/*
 * The ChaCha20-Poly1305 record cipher of every TLS connection, computed by libsodium.
 *
 * mbedTLS 2.28 seals and opens each ChaCha20-Poly1305 record with two one-shot functions,
 * mbedtls_chachapoly_encrypt_and_tag() and mbedtls_chachapoly_auth_decrypt(), which its
 * cipher layer calls through the shared library's procedure linkage table. common/tls_aead.c
 * defines both with mbedTLS's own prototypes; an executable that links it therefore binds
 * mbedTLS's calls to these definitions (ELF symbol interposition), and they compute the same
 * RFC 8439 AEAD with libsodium's vectorised ChaCha20 and Poly1305, about three times faster
 * than mbedTLS's portable C on x86-64. The key comes from the context mbedTLS set up
 * (mbedtls_chachapoly_setkey() stores it in the ChaCha20 state, words 4 to 11); nonce,
 * additional data, tag and the zeroed output of a failed open are as mbedTLS specifies.
 *
 * If a build of mbedTLS bound those calls inside the library, its own functions would run
 * instead: records stay correct, only slower; ptc_tls_aead_records() then stays 0, which the
 * unit tests check. Depends on mbedTLS's headers and libsodium.
 */
#ifndef PTC_COMMON_TLS_AEAD_H
#define PTC_COMMON_TLS_AEAD_H

#include <stdint.h>

/**
 * Prepares libsodium (sodium_init(); idempotent). common/tls calls it when it makes a
 * configuration, which also links this module into every program that uses TLS.
 */
void ptc_tls_aead_init(void);

/** How many records this module sealed or opened in this process (for tests and benchmarks). */
uint64_t ptc_tls_aead_records(void);

#endif
