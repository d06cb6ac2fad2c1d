/* SPDX-License-Identifier: MIT */
/*
 * connector/credentials: the credential file of docs/protocol.md §12.5 (round trip, mode
 * 0600, refusal of group/other access, key mismatch, strict base64url) and the tunnel
 * authentication message and signature, checked against the worked example of §11.6.
 */
#include "connector/credentials.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

/* The §11.6 example: seed 00..1f, its public key, nonce 40..5f, the certificate hash. */
static const char *const PK_B64 = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg";
static const char *const SK_B64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
static const char *const SIG_B64 =
    "DFJpdd6QtvtVppH-hxRZVF24xvxy7AzYs42Nb53CitmbEHQ1GPFd0s063uxiL9TYXWBI7glL0hJ8z_rvL6LIDQ";
static const uint8_t CERT_HASH[32] = {
    0x79, 0x77, 0xa3, 0x70, 0x2f, 0xed, 0x25, 0x22, 0x95, 0x99, 0x91, 0x33, 0x21, 0xee, 0xcb, 0x4f,
    0xc0, 0x71, 0x14, 0x1a, 0xd4, 0xd0, 0x3a, 0x72, 0x85, 0xb5, 0x50, 0xcf, 0xfa, 0x2b, 0x03, 0x50,
};

static void example_seed(uint8_t seed[32])
{
    for (int i = 0; i < 32; i++) {
        seed[i] = (uint8_t)i;
    }
}

static void example_nonce(uint8_t nonce[32])
{
    for (int i = 0; i < 32; i++) {
        nonce[i] = (uint8_t)(0x40 + i);
    }
}

/* The example identity, as registration would fill it. */
static void example_creds(ptc_credentials_t *c)
{
    memset(c, 0, sizeof(*c));
    uint8_t seed[32];
    example_seed(seed);
    ptc_ed25519_from_seed(&c->key, seed);
    c->edge_url = strdup("https://edge.example.com");
    c->connector_id = strdup("cn_5f2a9c0e7b134d68");
    c->group = strdup("Default");
    const char *edges[] = {"edge.example.com:443", "[2001:db8::1]:8443"};
    CHECK(ptc_credentials_set_edges(c, edges, 2));
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    CHECK_EQ(fputs(text, f) >= 0, 1);
    CHECK_OK(fclose(f));
    CHECK_OK(chmod(path, mode));
}

static char *path_in_tmp(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof(buf), "%s/%s", ptc_test_tmpdir(), name);
    return buf;
}

/* A complete credential document with one member replaced (or the original when key is NULL). */
static void doc_with(char *out, size_t cap, const char *pk, const char *sk, const char *extra)
{
    snprintf(out, cap,
             "{\"version\":1,\"edge_url\":\"https://edge.example.com\","
             "\"connector_id\":\"cn_5f2a9c0e7b134d68\",\"group\":\"Default\","
             "\"public_key\":\"%s\",\"secret_key\":\"%s\"%s}",
             pk, sk, extra != NULL ? extra : "");
}

static void test_auth_message_vector(void)
{
    uint8_t nonce[32];
    example_nonce(nonce);
    uint8_t msg[200];
    int len =
        ptc_credentials_auth_message(nonce, CERT_HASH, "cn_5f2a9c0e7b134d68", msg, sizeof(msg));
    CHECK_EQ(len, 108);
    CHECK_MEMEQ(msg, "portico tunnel auth v1\0", 23);
    CHECK_MEMEQ(msg + 23, nonce, 32);
    CHECK_MEMEQ(msg + 55, CERT_HASH, 32);
    CHECK_EQ(msg[87], 0x00);
    CHECK_EQ(msg[88], 0x13);
    CHECK_MEMEQ(msg + 89, "cn_5f2a9c0e7b134d68", 19);
    /* Too small a buffer, and identifiers outside §11.2 rule 4. */
    CHECK_EQ(ptc_credentials_auth_message(nonce, CERT_HASH, "cn_5f2a9c0e7b134d68", msg, 107),
             PTC_ELIMIT);
    CHECK_EQ(ptc_credentials_auth_message(nonce, CERT_HASH, "", msg, sizeof(msg)), UV_EINVAL);
    CHECK_EQ(ptc_credentials_auth_message(nonce, CERT_HASH, "cn 1", msg, sizeof(msg)), UV_EINVAL);
}

static void test_sign_auth_vector(void)
{
    ptc_credentials_t c;
    example_creds(&c);
    char pk[64];
    CHECK_EQ(ptc_b64url_encode(c.key.pk, 32, pk, sizeof(pk)), 43);
    CHECK_STREQ(pk, PK_B64);
    uint8_t nonce[32];
    example_nonce(nonce);
    char sig[100];
    CHECK_OK(ptc_credentials_sign_auth(&c, nonce, CERT_HASH, sig, sizeof(sig)));
    CHECK_STREQ(sig, SIG_B64);
    CHECK_EQ(ptc_credentials_sign_auth(&c, nonce, CERT_HASH, sig, 86), PTC_ELIMIT);
    /* The signature verifies over the exact message, and not over another certificate. */
    uint8_t msg[200];
    int len = ptc_credentials_auth_message(nonce, CERT_HASH, c.connector_id, msg, sizeof(msg));
    uint8_t raw[64];
    CHECK_OK(ptc_credentials_b64_exact(sig, strlen(sig), raw, 64));
    CHECK_OK(ptc_ed25519_verify(c.key.pk, msg, (size_t)len, raw));
    msg[60] ^= 1;
    CHECK_EQ(ptc_ed25519_verify(c.key.pk, msg, (size_t)len, raw), PTC_ECRYPTO);
    ptc_credentials_dispose(&c);
}

static void test_save_load_round_trip(void)
{
    ptc_credentials_t c;
    example_creds(&c);
    c.ca_file = strdup("/etc/portico/edge-ca.pem");
    c.has_pin = true;
    memset(c.pin_sha256, 0xab, 32);
    const char *path = path_in_tmp("credentials.json");
    CHECK_OK(ptc_credentials_save(path, &c));
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK_EQ(st.st_mode & 0777, 0600);

    ptc_credentials_t l;
    char err[512];
    CHECK_OK(ptc_credentials_load(path, &l, err, sizeof(err)));
    CHECK_STREQ(l.edge_url, "https://edge.example.com");
    CHECK_STREQ(l.connector_id, "cn_5f2a9c0e7b134d68");
    CHECK_STREQ(l.group, "Default");
    CHECK_MEMEQ(l.key.pk, c.key.pk, 32);
    CHECK_MEMEQ(l.key.sk, c.key.sk, 64);
    CHECK_EQ(l.edges_cnt, 2);
    CHECK_STREQ(l.edges[0], "edge.example.com:443");
    CHECK_STREQ(l.edges[1], "[2001:db8::1]:8443");
    CHECK_STREQ(l.ca_file, "/etc/portico/edge-ca.pem");
    CHECK(l.has_pin);
    CHECK_MEMEQ(l.pin_sha256, c.pin_sha256, 32);

    /* The file carries the documented member names and the seed, not the 64-byte key. */
    size_t len = 0;
    char *text = ptc_credentials_to_json(&c, &len);
    CHECK_EQ(strlen(text), len);
    CHECK_EQ(text[len - 1], '\n');
    CHECK_CONTAINS(text, "\"version\":1");
    CHECK_CONTAINS(text, "\"public_key\":\"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg\"");
    CHECK_CONTAINS(text, "\"secret_key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"");
    ptc_credentials_free_text(text);

    /* Saving again replaces the file atomically and keeps 0600. */
    const char *more[] = {"edge2.example.com:443"};
    CHECK(ptc_credentials_set_edges(&l, more, 1));
    CHECK(!ptc_credentials_set_edges(&l, more, 1));
    CHECK_OK(ptc_credentials_save(path, &l));
    ptc_credentials_t again;
    CHECK_OK(ptc_credentials_load(path, &again, err, sizeof(err)));
    CHECK_EQ(again.edges_cnt, 1);
    CHECK_STREQ(again.edges[0], "edge2.example.com:443");
    CHECK_OK(stat(path, &st));
    CHECK_EQ(st.st_mode & 0777, 0600);

    ptc_credentials_dispose(&again);
    ptc_credentials_dispose(&l);
    ptc_credentials_dispose(&c);
    /* dispose wipes the key and is idempotent. */
    uint8_t zero[64] = {0};
    CHECK_MEMEQ(c.key.sk, zero, 64);
    ptc_credentials_dispose(&c);
}

static void test_refuses_group_or_other_access(void)
{
    ptc_credentials_t c;
    example_creds(&c);
    const char *path = path_in_tmp("creds.json");
    CHECK_OK(ptc_credentials_save(path, &c));
    static const mode_t bad[] = {0640, 0604, 0660, 0644, 0602, 0620, 0700 | 0001};
    char err[512];
    ptc_credentials_t l;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_OK(chmod(path, bad[i]));
        CHECK_EQ(ptc_credentials_load(path, &l, err, sizeof(err)), UV_EPERM);
        CHECK_CONTAINS(err, path);
        CHECK_CONTAINS(err, "group or others");
        CHECK_CONTAINS(err, "chmod 600");
        CHECK_NULL(l.connector_id);
    }
    /* 0400 (read-only for the owner) is fine. */
    CHECK_OK(chmod(path, 0400));
    CHECK_OK(ptc_credentials_load(path, &l, err, sizeof(err)));
    ptc_credentials_dispose(&l);
    /* A directory is not a credential file. */
    CHECK_EQ(ptc_credentials_load(ptc_test_tmpdir(), &l, err, sizeof(err)), UV_EPERM);
    CHECK_CONTAINS(err, "not a regular file");
    /* A missing file says how to get one. */
    CHECK_EQ(ptc_credentials_load(path_in_tmp("absent.json"), &l, err, sizeof(err)), UV_ENOENT);
    CHECK_CONTAINS(err, "portico-connector register");
    ptc_credentials_dispose(&c);
}

static void test_refuses_key_mismatch(void)
{
    /* A valid public key of another seed. */
    ptc_ed25519_key_t other;
    uint8_t seed[32];
    memset(seed, 7, sizeof(seed));
    ptc_ed25519_from_seed(&other, seed);
    char other_pk[64];
    CHECK_EQ(ptc_b64url_encode(other.pk, 32, other_pk, sizeof(other_pk)), 43);
    char doc[1024];
    doc_with(doc, sizeof(doc), other_pk, SK_B64, NULL);
    const char *path = path_in_tmp("mismatch.json");
    write_text(path, doc, 0600);
    ptc_credentials_t l;
    char err[512];
    CHECK_EQ(ptc_credentials_load(path, &l, err, sizeof(err)), PTC_ECRYPTO);
    CHECK_CONTAINS(err, "public_key: does not match");
    /* The message quotes neither key. */
    CHECK(strstr(err, SK_B64) == NULL);
    CHECK(strstr(err, other_pk) == NULL);
    CHECK_NULL(l.connector_id);
    /* The matching pair loads. */
    doc_with(doc, sizeof(doc), PK_B64, SK_B64, ",\"edges\":[\"edge.example.com:443\"]");
    write_text(path, doc, 0600);
    CHECK_OK(ptc_credentials_load(path, &l, err, sizeof(err)));
    CHECK_STREQ(l.group, "Default");
    CHECK_EQ(l.edges_cnt, 1);
    CHECK(!l.has_pin);
    CHECK_NULL(l.ca_file);
    ptc_credentials_dispose(&l);
}

static void test_refuses_malformed_documents(void)
{
    char doc[1024];
    char err[512];
    ptc_credentials_t l;
    struct {
        const char *pk;
        const char *sk;
        const char *extra;
        const char *want;
    } cases[] = {
        /* Padding, a wrong length, unused bits not zero, the standard alphabet. */
        {"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", NULL, NULL, "public_key"},
        {"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMb", NULL, NULL, "public_key"},
        {"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbh", NULL, NULL, "public_key"},
        {"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg", NULL, NULL, "public_key"},
        {NULL, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh", NULL, "secret_key"},
        {NULL, NULL, ",\"pin_sha256\":\"abc\"", "pin_sha256"},
        {NULL, NULL, ",\"ca_file\":5", "ca_file: expected a string"},
        {NULL, NULL, ",\"ca_file\":\"\"", "ca_file"},
        {NULL, NULL, ",\"edges\":[\"nohost\"]", "edges[0]"},
        {NULL, NULL, ",\"version\":2", "invalid JSON"}, /* a duplicate member */
    };
    const char *path = path_in_tmp("bad.json");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        doc_with(doc, sizeof(doc), cases[i].pk != NULL ? cases[i].pk : PK_B64,
                 cases[i].sk != NULL ? cases[i].sk : SK_B64, cases[i].extra);
        write_text(path, doc, 0600);
        int rc = ptc_credentials_load(path, &l, err, sizeof(err));
        if (rc != PTC_EFORMAT || strstr(err, cases[i].want) == NULL) {
            ptc_test_fail(__FILE__, __LINE__, "case %zu: rc %d, message \"%s\"", i, rc, err);
        }
        CHECK(strstr(err, SK_B64) == NULL);
    }
    /* Whole-document problems. */
    static const struct {
        const char *text;
        const char *want;
    } docs[] = {
        {"[]", "expected a JSON object"},
        {"{\"edge_url\":\"x\"}", "version: required member is missing"},
        {"{\"version\":2}", "version: expected 1"},
        {"{\"version\":1,\"edge_url\":\"x\",\"connector_id\":\"cn 1\"}", "connector_id"},
        {"{\"version\":1,\"edge_url\":\"x\",\"connector_id\":\"cn_1\",\"public_key\":\"" /* */
         "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg\"}",
         "secret_key: required member is missing"},
        {"{\"version\":1,", "invalid JSON at line 1"},
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        int rc = ptc_credentials_parse("c.json", docs[i].text, strlen(docs[i].text), &l, err,
                                       sizeof(err));
        if (rc != PTC_EFORMAT || strstr(err, docs[i].want) == NULL ||
            strncmp(err, "c.json: ", 8) != 0) {
            ptc_test_fail(__FILE__, __LINE__, "doc %zu: rc %d, message \"%s\"", i, rc, err);
        }
    }
}

static void test_ids_and_b64(void)
{
    CHECK(ptc_credentials_valid_id("cn_5f2a9c0e7b134d68", 19));
    CHECK(ptc_credentials_valid_id("a.b-c_D9", 8));
    CHECK(!ptc_credentials_valid_id("", 0));
    CHECK(!ptc_credentials_valid_id("cn/1", 4));
    CHECK(!ptc_credentials_valid_id("cn\n", 3));
    char long_id[80];
    memset(long_id, 'a', sizeof(long_id));
    CHECK(ptc_credentials_valid_id(long_id, 64));
    CHECK(!ptc_credentials_valid_id(long_id, 65));
    uint8_t out[32];
    CHECK_OK(ptc_credentials_b64_exact(PK_B64, 43, out, 32));
    CHECK_EQ(out[0], 0x03);
    CHECK_EQ(out[31], 0xb8);
    CHECK_EQ(ptc_credentials_b64_exact(PK_B64, 43, out, 31), PTC_EFORMAT);
    CHECK_EQ(ptc_credentials_b64_exact("A6EH v_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMb", 43, out, 32),
             PTC_EFORMAT);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_auth_message_vector),  PTC_TEST(test_sign_auth_vector),
    PTC_TEST(test_save_load_round_trip), PTC_TEST(test_refuses_group_or_other_access),
    PTC_TEST(test_refuses_key_mismatch), PTC_TEST(test_refuses_malformed_documents),
    PTC_TEST(test_ids_and_b64),
};

int main(int argc, char **argv)
{
    if (ptc_keys_init() != 0) {
        return 1;
    }
    return PTC_TEST_MAIN(cases, argc, argv);
}
