/* SPDX-License-Identifier: MIT */
/*
 * ChaCha20-Poly1305 records through libsodium (see tls_aead.h): the two one-shot functions of
 * mbedTLS 2.28's chachapoly module, defined here with its prototypes so that mbedTLS's calls
 * bind to them.
 */
#include "common/tls_aead.h"

#include <mbedtls/chachapoly.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

/* Processes are single-threaded (one loop); a race would only call sodium_init() twice,
 * which it allows. */
static bool sodium_ready;
static uint64_t records;

void ptc_tls_aead_init(void)
{
    if (!sodium_ready) {
        /* -1 only when no random source exists; the AEAD itself needs none. */
        if (sodium_init() < 0) {
            /* Nothing to do: the implementations are chosen either way. */
        }
        sodium_ready = true;
    }
}

uint64_t ptc_tls_aead_records(void)
{
    return records;
}

/* mbedtls_chachapoly_setkey() keeps the key as ChaCha20 state words 4..11, little-endian. */
static void key_of(const mbedtls_chachapoly_context *ctx, uint8_t key[32])
{
    for (int i = 0; i < 8; i++) {
        uint32_t w = ctx->chacha20_ctx.state[4 + i];
        key[4 * i] = (uint8_t)w;
        key[4 * i + 1] = (uint8_t)(w >> 8);
        key[4 * i + 2] = (uint8_t)(w >> 16);
        key[4 * i + 3] = (uint8_t)(w >> 24);
    }
}

int mbedtls_chachapoly_encrypt_and_tag(mbedtls_chachapoly_context *ctx, size_t length,
                                       const unsigned char nonce[12], const unsigned char *aad,
                                       size_t aad_len, const unsigned char *input,
                                       unsigned char *output, unsigned char tag[16])
{
    ptc_tls_aead_init();
    uint8_t key[32];
    key_of(ctx, key);
    unsigned long long maclen = 0;
    /* Input and output may be the same buffer (mbedTLS seals records in place). */
    (void)crypto_aead_chacha20poly1305_ietf_encrypt_detached(output, tag, &maclen, input, length,
                                                             aad, aad_len, NULL, nonce, key);
    sodium_memzero(key, sizeof(key));
    records++;
    return 0;
}

int mbedtls_chachapoly_auth_decrypt(mbedtls_chachapoly_context *ctx, size_t length,
                                    const unsigned char nonce[12], const unsigned char *aad,
                                    size_t aad_len, const unsigned char tag[16],
                                    const unsigned char *input, unsigned char *output)
{
    ptc_tls_aead_init();
    uint8_t key[32];
    key_of(ctx, key);
    int rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(output, NULL, input, length, tag,
                                                                aad, aad_len, nonce, key);
    sodium_memzero(key, sizeof(key));
    records++;
    if (rc != 0) {
        /* As mbedTLS does: no unauthenticated plaintext is left behind. */
        if (length > 0) {
            memset(output, 0, length);
        }
        return MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED;
    }
    return 0;
}
