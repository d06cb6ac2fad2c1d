/* SPDX-License-Identifier: MIT */
#include "common/keys.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void init(void)
{
    CHECK_OK(ptc_keys_init());
}

/* RFC 8032 §7.1, TEST 1: empty message. */
static void test_ed25519_rfc8032_vector(void)
{
    init();
    static const uint8_t seed[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60,
                                     0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
                                     0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19,
                                     0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
    static const uint8_t pk[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
                                   0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
                                   0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};
    static const uint8_t sig[64] = {
        0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2, 0xcc, 0x80,
        0x6e, 0x82, 0x8a, 0x84, 0x87, 0x7f, 0x1e, 0xb8, 0xe5, 0xd9, 0x74, 0xd8, 0x73,
        0xe0, 0x65, 0x22, 0x49, 0x01, 0x55, 0x5f, 0xb8, 0x82, 0x15, 0x90, 0xa3, 0x3b,
        0xac, 0xc6, 0x1e, 0x39, 0x70, 0x1c, 0xf9, 0xb4, 0x6b, 0xd2, 0x5b, 0xf5, 0xf0,
        0x59, 0x5b, 0xbe, 0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b};
    ptc_ed25519_key_t key;
    ptc_ed25519_from_seed(&key, seed);
    CHECK_MEMEQ(key.pk, pk, 32);
    uint8_t out[64];
    ptc_ed25519_sign(&key, (const uint8_t *)"", 0, out);
    CHECK_MEMEQ(out, sig, 64);
    CHECK_OK(ptc_ed25519_verify(pk, (const uint8_t *)"", 0, sig));
    ptc_keys_wipe(&key, sizeof(key));
}

static void test_ed25519_sign_verify_and_tamper(void)
{
    init();
    ptc_ed25519_key_t key;
    ptc_ed25519_generate(&key);
    const uint8_t msg[] = "portico tunnel auth";
    uint8_t sig[64];
    ptc_ed25519_sign(&key, msg, sizeof(msg), sig);
    CHECK_OK(ptc_ed25519_verify(key.pk, msg, sizeof(msg), sig));
    sig[10] ^= 1;
    CHECK_EQ(ptc_ed25519_verify(key.pk, msg, sizeof(msg), sig), PTC_ECRYPTO);
    sig[10] ^= 1;
    CHECK_EQ(ptc_ed25519_verify(key.pk, msg, sizeof(msg) - 1, sig), PTC_ECRYPTO);
    ptc_ed25519_key_t other;
    ptc_ed25519_generate(&other);
    CHECK_EQ(ptc_ed25519_verify(other.pk, msg, sizeof(msg), sig), PTC_ECRYPTO);
}

static void test_sha256_known_answer(void)
{
    init();
    uint8_t h[32];
    ptc_sha256("abc", 3, h);
    char hex[65];
    CHECK_OK(ptc_hex_encode(h, 32, hex, sizeof(hex)));
    CHECK_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_EQ(ptc_hex_encode(h, 32, hex, 64), PTC_ELIMIT);
}

/* RFC 4648 §10 vectors, in the URL-safe alphabet without padding. */
static void test_b64url_vectors(void)
{
    init();
    static const struct {
        const char *in;
        const char *out;
    } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
             {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char out[32];
        size_t n = strlen(v[i].in);
        CHECK_EQ(ptc_b64url_len(n), strlen(v[i].out));
        CHECK_EQ(ptc_b64url_encode(v[i].in, n, out, sizeof(out)), (int)strlen(v[i].out));
        CHECK_STREQ(out, v[i].out);
        uint8_t back[32];
        size_t blen = 99;
        CHECK_OK(ptc_b64url_decode(out, strlen(out), back, sizeof(back), &blen));
        CHECK_EQ(blen, n);
        CHECK_MEMEQ(back, v[i].in, n);
    }
    /* URL-safe characters, and padding accepted on input. */
    uint8_t bin[3] = {0xfb, 0xff, 0xbf};
    char out[8];
    CHECK_EQ(ptc_b64url_encode(bin, 3, out, sizeof(out)), 4);
    CHECK_STREQ(out, "-_-_");
    uint8_t back[8];
    size_t blen = 0;
    CHECK_OK(ptc_b64url_decode("Zm8=", 4, back, sizeof(back), &blen));
    CHECK_EQ(blen, 2);
    CHECK_MEMEQ(back, "fo", 2);
}

static void test_b64url_refusals(void)
{
    init();
    uint8_t out[16];
    size_t n = 0;
    CHECK_EQ(ptc_b64url_decode("Zm9v+g", 6, out, sizeof(out), &n), PTC_EFORMAT);
    CHECK_EQ(ptc_b64url_decode("Zm9v/g", 6, out, sizeof(out), &n), PTC_EFORMAT);
    CHECK_EQ(ptc_b64url_decode("Zm 9v", 5, out, sizeof(out), &n), PTC_EFORMAT);
    CHECK_EQ(ptc_b64url_decode("Z", 1, out, sizeof(out), &n), PTC_EFORMAT);
    CHECK_EQ(ptc_b64url_decode("Zm9vYmFy", 8, out, 5, &n), PTC_ELIMIT);
    char small[4];
    CHECK_EQ(ptc_b64url_encode("foo", 3, small, sizeof(small)), PTC_ELIMIT);
}

static void test_random_token_and_consttime_eq(void)
{
    init();
    char a[64];
    char b[64];
    CHECK_OK(ptc_random_token("ptc_", 32, a, sizeof(a)));
    CHECK_OK(ptc_random_token("ptc_", 32, b, sizeof(b)));
    CHECK_EQ(strlen(a), 4 + 43);
    CHECK(strncmp(a, "ptc_", 4) == 0);
    CHECK_STRNE(a, b);
    CHECK(ptc_consttime_eq(a, a, strlen(a)));
    CHECK(!ptc_consttime_eq(a, b, strlen(a)));
    CHECK_EQ(ptc_random_token("ptc_", 32, a, 20), PTC_ELIMIT);
}

static void test_secret_file_is_0600_and_atomic(void)
{
    init();
    char path[512];
    snprintf(path, sizeof(path), "%s/cred.json", ptc_test_tmpdir());
    CHECK_OK(ptc_keys_write_secret_file(path, "{\"a\":1}", 7));
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK_EQ(st.st_mode & 0777, 0600);
    CHECK_EQ(st.st_size, 7);
    /* Overwrite replaces the whole content. */
    CHECK_OK(ptc_keys_write_secret_file(path, "{}", 2));
    FILE *f = fopen(path, "r");
    CHECK_NOT_NULL(f);
    char buf[16] = {0};
    CHECK_EQ(fread(buf, 1, sizeof(buf), f), 2);
    fclose(f);
    CHECK_STREQ(buf, "{}");
    CHECK_LT(ptc_keys_write_secret_file("/nonexistent-dir/x", "x", 1), 0);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_ed25519_rfc8032_vector),
    PTC_TEST(test_ed25519_sign_verify_and_tamper),
    PTC_TEST(test_sha256_known_answer),
    PTC_TEST(test_b64url_vectors),
    PTC_TEST(test_b64url_refusals),
    PTC_TEST(test_random_token_and_consttime_eq),
    PTC_TEST(test_secret_file_is_0600_and_atomic),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
