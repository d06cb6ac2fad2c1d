/* SPDX-License-Identifier: MIT */
/*
 * common/tls_aead: the ChaCha20-Poly1305 one-shot functions that mbedTLS's calls bind to.
 * Checked against RFC 8439's AEAD test vector and, on random inputs, against mbedTLS's own
 * implementation (the next definition of the same symbols, from libmbedcrypto).
 */
#include "common/tls_aead.h"
#include "tests/support/test.h"

#include <dlfcn.h>
#include <mbedtls/chachapoly.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef int (*seal_fn)(mbedtls_chachapoly_context *, size_t, const unsigned char[12],
                       const unsigned char *, size_t, const unsigned char *, unsigned char *,
                       unsigned char[16]);
typedef int (*open_fn)(mbedtls_chachapoly_context *, size_t, const unsigned char[12],
                       const unsigned char *, size_t, const unsigned char[16],
                       const unsigned char *, unsigned char *);

/* mbedTLS's own functions, which ours stand in for. */
static seal_fn their_seal(void)
{
    seal_fn f = NULL;
    void *p = dlsym(RTLD_NEXT, "mbedtls_chachapoly_encrypt_and_tag");
    memcpy(&f, &p, sizeof(f));
    CHECK_NOT_NULL(p);
    return f;
}

static open_fn their_open(void)
{
    open_fn f = NULL;
    void *p = dlsym(RTLD_NEXT, "mbedtls_chachapoly_auth_decrypt");
    memcpy(&f, &p, sizeof(f));
    CHECK_NOT_NULL(p);
    return f;
}

/* RFC 8439 §2.8.2. */
static void test_rfc8439_vector(void)
{
    ptc_tls_aead_init();
    static const char plain[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
                                "only one tip for the future, sunscreen would be it.";
    static const uint8_t aad[12] = {0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1,
                                    0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7};
    static const uint8_t nonce[12] = {0x07, 0x00, 0x00, 0x00, 0x40, 0x41,
                                      0x42, 0x43, 0x44, 0x45, 0x46, 0x47};
    static const uint8_t want_ct[114] = {
        0xd3, 0x1a, 0x8d, 0x34, 0x64, 0x8e, 0x60, 0xdb, 0x7b, 0x86, 0xaf, 0xbc, 0x53, 0xef, 0x7e,
        0xc2, 0xa4, 0xad, 0xed, 0x51, 0x29, 0x6e, 0x08, 0xfe, 0xa9, 0xe2, 0xb5, 0xa7, 0x36, 0xee,
        0x62, 0xd6, 0x3d, 0xbe, 0xa4, 0x5e, 0x8c, 0xa9, 0x67, 0x12, 0x82, 0xfa, 0xfb, 0x69, 0xda,
        0x92, 0x72, 0x8b, 0x1a, 0x71, 0xde, 0x0a, 0x9e, 0x06, 0x0b, 0x29, 0x05, 0xd6, 0xa5, 0xb6,
        0x7e, 0xcd, 0x3b, 0x36, 0x92, 0xdd, 0xbd, 0x7f, 0x2d, 0x77, 0x8b, 0x8c, 0x98, 0x03, 0xae,
        0xe3, 0x28, 0x09, 0x1b, 0x58, 0xfa, 0xb3, 0x24, 0xe4, 0xfa, 0xd6, 0x75, 0x94, 0x55, 0x85,
        0x80, 0x8b, 0x48, 0x31, 0xd7, 0xbc, 0x3f, 0xf4, 0xde, 0xf0, 0x8e, 0x4b, 0x7a, 0x9d, 0xe5,
        0x76, 0xd2, 0x65, 0x86, 0xce, 0xc6, 0x4b, 0x61, 0x16};
    static const uint8_t want_tag[16] = {0x1a, 0xe1, 0x0b, 0x59, 0x4f, 0x09, 0xe2, 0x6a,
                                         0x7e, 0x90, 0x2e, 0xcb, 0xd0, 0x60, 0x06, 0x91};
    uint8_t key[32];
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)(0x80 + i);
    }
    CHECK_EQ(sizeof(plain) - 1, sizeof(want_ct));
    mbedtls_chachapoly_context ctx;
    mbedtls_chachapoly_init(&ctx);
    CHECK_OK(mbedtls_chachapoly_setkey(&ctx, key));
    uint64_t before = ptc_tls_aead_records();
    uint8_t ct[114];
    uint8_t tag[16];
    CHECK_OK(mbedtls_chachapoly_encrypt_and_tag(&ctx, sizeof(ct), nonce, aad, sizeof(aad),
                                                (const uint8_t *)plain, ct, tag));
    CHECK_MEMEQ(ct, want_ct, sizeof(ct));
    CHECK_MEMEQ(tag, want_tag, sizeof(tag));
    /* Our definition ran, not the library's. */
    CHECK_EQ(ptc_tls_aead_records(), before + 1);

    /* Opened in place. */
    CHECK_OK(
        mbedtls_chachapoly_auth_decrypt(&ctx, sizeof(ct), nonce, aad, sizeof(aad), tag, ct, ct));
    CHECK_MEMEQ(ct, plain, sizeof(ct));
    /* A flipped tag bit: refused, and no plaintext is left in the output. */
    memcpy(ct, want_ct, sizeof(ct));
    tag[5] ^= 0x10;
    uint8_t out[114];
    memset(out, 0xaa, sizeof(out));
    CHECK_EQ(
        mbedtls_chachapoly_auth_decrypt(&ctx, sizeof(ct), nonce, aad, sizeof(aad), tag, ct, out),
        MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED);
    for (size_t i = 0; i < sizeof(out); i++) {
        CHECK_EQ(out[i], 0);
    }
    mbedtls_chachapoly_free(&ctx);
}

/* Random keys, nonces, lengths (0 included) and additional data, in place or not: both
 * implementations seal the same bytes and open each other's records. */
static void test_same_as_mbedtls(void)
{
    ptc_tls_aead_init();
    seal_fn seal = their_seal();
    open_fn open = their_open();
    enum { MAX = 17 * 1024 };
    uint8_t *in = malloc(MAX);
    uint8_t *ours = malloc(MAX);
    uint8_t *theirs = malloc(MAX);
    uint8_t *back = malloc(MAX);
    for (int round = 0; round < 300; round++) {
        uint8_t key[32];
        uint8_t nonce[12];
        uint8_t aad[13];
        randombytes_buf(key, sizeof(key));
        randombytes_buf(nonce, sizeof(nonce));
        randombytes_buf(aad, sizeof(aad));
        size_t len = round < 20 ? (size_t)round : randombytes_uniform(MAX);
        size_t aad_len = randombytes_uniform(sizeof(aad) + 1);
        randombytes_buf(in, len);
        mbedtls_chachapoly_context ctx;
        mbedtls_chachapoly_init(&ctx);
        CHECK_OK(mbedtls_chachapoly_setkey(&ctx, key));
        uint8_t tag_ours[16];
        uint8_t tag_theirs[16];
        CHECK_OK(
            mbedtls_chachapoly_encrypt_and_tag(&ctx, len, nonce, aad, aad_len, in, ours, tag_ours));
        CHECK_OK(seal(&ctx, len, nonce, aad, aad_len, in, theirs, tag_theirs));
        CHECK_MEMEQ(ours, theirs, len);
        CHECK_MEMEQ(tag_ours, tag_theirs, 16);
        /* In place, as TLS records are sealed. */
        memcpy(back, in, len);
        CHECK_OK(mbedtls_chachapoly_encrypt_and_tag(&ctx, len, nonce, aad, aad_len, back, back,
                                                    tag_ours));
        CHECK_MEMEQ(back, theirs, len);
        /* Each opens the other's record. */
        CHECK_OK(mbedtls_chachapoly_auth_decrypt(&ctx, len, nonce, aad, aad_len, tag_theirs, theirs,
                                                 back));
        CHECK_MEMEQ(back, in, len);
        CHECK_OK(open(&ctx, len, nonce, aad, aad_len, tag_ours, ours, back));
        CHECK_MEMEQ(back, in, len);
        /* A changed byte of additional data fails both. */
        if (aad_len > 0) {
            aad[0] ^= 1;
            CHECK_EQ(mbedtls_chachapoly_auth_decrypt(&ctx, len, nonce, aad, aad_len, tag_ours, ours,
                                                     back),
                     MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED);
            CHECK_EQ(open(&ctx, len, nonce, aad, aad_len, tag_ours, ours, back),
                     MBEDTLS_ERR_CHACHAPOLY_AUTH_FAILED);
        }
        mbedtls_chachapoly_free(&ctx);
    }
    free(in);
    free(ours);
    free(theirs);
    free(back);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_rfc8439_vector),
    PTC_TEST(test_same_as_mbedtls),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
