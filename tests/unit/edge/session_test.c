/* SPDX-License-Identifier: MIT */
#include "edge/session.h"
#include "tests/support/test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/keys.h"

#define HOST "hr.apps.example.com"
#define NOW 1800000000

static ptc_session_keys_t *fresh_keys(void)
{
    CHECK_OK(ptc_keys_init());
    ptc_session_keys_t *k = ptc_session_keys_ephemeral();
    CHECK_NOT_NULL(k);
    return k;
}

static char *seal_str(const ptc_session_keys_t *k, const char *purpose, const char *host,
                      const char *text)
{
    char *out = NULL;
    CHECK_OK(ptc_session_seal(k, purpose, host, (const uint8_t *)text, strlen(text), &out));
    CHECK_NOT_NULL(out);
    return out;
}

static int open_str(const ptc_session_keys_t *k, const char *purpose, const char *host,
                    const char *val, char **text)
{
    uint8_t *p = NULL;
    size_t n = 0;
    int rc = ptc_session_open(k, purpose, host, val, strlen(val), &p, &n);
    if (rc == 0) {
        CHECK_EQ(strlen((const char *)p), n);
        if (text != NULL) {
            *text = (char *)p;
        } else {
            free(p);
        }
    }
    return rc;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CHECK_NOT_NULL(f);
    char *buf = calloc(1, 65536);
    CHECK_NOT_NULL(buf);
    *len = fread(buf, 1, 65535, f);
    fclose(f);
    return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK_GE(fd, 0);
    CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    CHECK_OK(fchmod(fd, mode));
    close(fd);
}

/* ---- envelope ---- */

static void test_seal_open_round_trip(void)
{
    ptc_session_keys_t *k = fresh_keys();
    char *a = seal_str(k, "session", HOST, "hello, world");
    char *b = seal_str(k, "session", HOST, "hello, world");
    /* A fresh nonce per seal: equal plaintexts never give equal cookies. */
    CHECK_STRNE(a, b);
    for (const char *c = a; *c != '\0'; c++) {
        CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *c) !=
              NULL);
    }
    char *text = NULL;
    CHECK_OK(open_str(k, "session", HOST, a, &text));
    CHECK_STREQ(text, "hello, world");
    free(text);
    CHECK_OK(open_str(k, "session", HOST, b, &text));
    CHECK_STREQ(text, "hello, world");
    free(text);

    /* An empty plaintext is still an authenticated envelope. */
    char *e = seal_str(k, "login", HOST, "");
    CHECK_OK(open_str(k, "login", HOST, e, &text));
    CHECK_STREQ(text, "");
    free(text);
    free(a);
    free(b);
    free(e);
    ptc_session_keys_free(k);
}

static void test_flipped_bit_anywhere_refused(void)
{
    ptc_session_keys_t *k = fresh_keys();
    char *val = seal_str(k, "session", HOST, "{\"s\":\"alice\"}");
    uint8_t bin[512];
    size_t n = 0;
    CHECK_OK(ptc_b64url_decode(val, strlen(val), bin, sizeof(bin), &n));
    CHECK_EQ(n, 1 + 4 + 24 + 13 + 16);
    CHECK_EQ(bin[0], 1);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            bin[i] ^= (uint8_t)(1u << bit);
            char text[1024];
            CHECK_GT(ptc_b64url_encode(bin, n, text, sizeof(text)), 0);
            CHECK_EQ(open_str(k, "session", HOST, text, NULL), PTC_EAUTH);
            bin[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* The same on the text: any other character anywhere is refused (malformed or forged). */
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t len = strlen(val);
    for (size_t i = 0; i < len; i++) {
        char saved = val[i];
        for (size_t j = i % 7; j < 64; j += 7) {
            if (alpha[j] == saved) {
                continue;
            }
            val[i] = alpha[j];
            int rc = open_str(k, "session", HOST, val, NULL);
            CHECK(rc == PTC_EAUTH || rc == PTC_EFORMAT);
        }
        val[i] = saved;
    }
    CHECK_OK(open_str(k, "session", HOST, val, NULL));
    free(val);
    ptc_session_keys_free(k);
}

static void test_other_host_or_purpose_refused(void)
{
    ptc_session_keys_t *k = fresh_keys();
    char *val = seal_str(k, "session", HOST, "payload");
    CHECK_EQ(open_str(k, "session", "crm.apps.example.com", val, NULL), PTC_EAUTH);
    CHECK_EQ(open_str(k, "session", "HR.apps.example.com", val, NULL), PTC_EAUTH);
    CHECK_EQ(open_str(k, "login", HOST, val, NULL), PTC_EAUTH);
    /* The NUL between purpose and host keeps the boundary: moving it does not match. */
    CHECK_EQ(open_str(k, "sessionh", "r.apps.example.com", val, NULL), PTC_EAUTH);
    CHECK_OK(open_str(k, "session", HOST, val, NULL));

    /* Another ring (another edge) cannot open it either. */
    ptc_session_keys_t *other = ptc_session_keys_ephemeral();
    CHECK_EQ(open_str(other, "session", HOST, val, NULL), PTC_EAUTH);
    ptc_session_keys_free(other);
    free(val);
    ptc_session_keys_free(k);
}

static void test_malformed_values_refused(void)
{
    ptc_session_keys_t *k = fresh_keys();
    char *val = seal_str(k, "session", HOST, "payload");
    size_t len = strlen(val);
    CHECK_EQ(open_str(k, "session", HOST, "", NULL), PTC_EFORMAT);
    CHECK_EQ(open_str(k, "session", HOST, "abc", NULL), PTC_EFORMAT);
    CHECK_EQ(open_str(k, "session", HOST,
                      "not base64 at all, but long enough to be checked!!!!!!!!!!!!!", NULL),
             PTC_EFORMAT);
    /* Truncated (a whole byte short) and extended values. */
    val[len - 3] = '\0';
    CHECK(open_str(k, "session", HOST, val, NULL) < 0);
    free(val);
    val = seal_str(k, "session", HOST, "payload");
    len = strlen(val);
    char *longer = malloc(len + 8);
    snprintf(longer, len + 8, "%sAAAA", val);
    CHECK_EQ(open_str(k, "session", HOST, longer, NULL), PTC_EAUTH);
    /* Padding and standard-alphabet characters are not the canonical form. */
    snprintf(longer, len + 8, "%s=", val);
    CHECK_EQ(open_str(k, "session", HOST, longer, NULL), PTC_EFORMAT);
    free(longer);
    /* Over the size a browser would keep. */
    char *huge = malloc(5001);
    memset(huge, 'A', 5000);
    huge[5000] = '\0';
    CHECK_EQ(open_str(k, "session", HOST, huge, NULL), PTC_EFORMAT);
    free(huge);
    CHECK_OK(open_str(k, "session", HOST, val, NULL));
    free(val);
    ptc_session_keys_free(k);
}

static void test_deterministic_ring_from_bytes(void)
{
    CHECK_OK(ptc_keys_init());
    uint8_t key[32];
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)(i * 7 + 1);
    }
    ptc_session_keys_t *a = ptc_session_keys_from_bytes(key, 42, NOW);
    ptc_session_keys_t *b = ptc_session_keys_from_bytes(key, 42, NOW);
    ptc_session_keys_t *c = ptc_session_keys_from_bytes(key, 43, NOW);
    char *val = seal_str(a, "session", HOST, "same key");
    uint8_t bin[256];
    size_t n = 0;
    CHECK_OK(ptc_b64url_decode(val, strlen(val), bin, sizeof(bin), &n));
    CHECK_MEMEQ(bin, "\x01\x00\x00\x00\x2a", 5);
    CHECK_OK(open_str(b, "session", HOST, val, NULL));
    /* The key id selects the key: an id the ring does not hold is refused. */
    CHECK_EQ(open_str(c, "session", HOST, val, NULL), PTC_EAUTH);
    free(val);
    ptc_session_keys_free(a);
    ptc_session_keys_free(b);
    ptc_session_keys_free(c);
}

/* ---- rotation and the key file ---- */

static void test_rotation_keeps_previous_key(void)
{
    ptc_session_keys_t *k = fresh_keys();
    char *old = seal_str(k, "session", HOST, "old");
    CHECK_OK(ptc_session_keys_rotate(k, NOW));
    char *mid = seal_str(k, "session", HOST, "mid");
    CHECK_OK(open_str(k, "session", HOST, old, NULL));
    CHECK_OK(open_str(k, "session", HOST, mid, NULL));
    CHECK_OK(ptc_session_keys_rotate(k, NOW + 10));
    char *cur = seal_str(k, "session", HOST, "cur");
    /* The key of `old` has been dropped; `mid`'s key is now the previous one. */
    CHECK_EQ(open_str(k, "session", HOST, old, NULL), PTC_EAUTH);
    CHECK_OK(open_str(k, "session", HOST, mid, NULL));
    CHECK_OK(open_str(k, "session", HOST, cur, NULL));
    free(old);
    free(mid);
    free(cur);
    ptc_session_keys_free(k);
}

static void test_key_file_created_private_and_reloaded(void)
{
    CHECK_OK(ptc_keys_init());
    const char *dir = ptc_test_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/session_keys.json", dir);
    char err[512] = "";
    ptc_session_keys_t *k = NULL;
    CHECK_OK(ptc_session_keys_load(dir, NOW, 86400, &k, err, sizeof(err)));
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK_EQ(st.st_mode & 0777, 0600);
    size_t len1 = 0;
    char *text1 = read_file(path, &len1);
    CHECK_CONTAINS(text1, "\"keys\"");
    char *val = seal_str(k, "session", HOST, "persisted");
    ptc_session_keys_free(k);

    /* Reloading before the rotation age gives the same ring and leaves the file alone. */
    k = NULL;
    CHECK_OK(ptc_session_keys_load(dir, NOW + 100, 86400, &k, err, sizeof(err)));
    CHECK_OK(open_str(k, "session", HOST, val, NULL));
    size_t len2 = 0;
    char *text2 = read_file(path, &len2);
    CHECK_EQ(len1, len2);
    CHECK_MEMEQ(text1, text2, len1);
    ptc_session_keys_free(k);
    free(text1);
    free(text2);
    free(val);
}

static void test_key_file_rotates_on_load(void)
{
    CHECK_OK(ptc_keys_init());
    const char *dir = ptc_test_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/session_keys.json", dir);
    char err[512] = "";
    ptc_session_keys_t *k = NULL;
    CHECK_OK(ptc_session_keys_load(dir, NOW, 3600, &k, err, sizeof(err)));
    char *v1 = seal_str(k, "session", HOST, "one");
    ptc_session_keys_free(k);

    /* Older than rotate_after: a new current key, the old one still opens. */
    k = NULL;
    CHECK_OK(ptc_session_keys_load(dir, NOW + 3600, 3600, &k, err, sizeof(err)));
    char *v2 = seal_str(k, "session", HOST, "two");
    CHECK_OK(open_str(k, "session", HOST, v1, NULL));
    ptc_session_keys_free(k);
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK_EQ(st.st_mode & 0777, 0600);

    /* The rotation was written: a reload within the age keeps both keys. */
    k = NULL;
    CHECK_OK(ptc_session_keys_load(dir, NOW + 3700, 3600, &k, err, sizeof(err)));
    CHECK_OK(open_str(k, "session", HOST, v1, NULL));
    CHECK_OK(open_str(k, "session", HOST, v2, NULL));
    /* Rotating again drops v1's key, on disk too. */
    CHECK_OK(ptc_session_keys_rotate(k, NOW + 3800));
    CHECK_EQ(open_str(k, "session", HOST, v1, NULL), PTC_EAUTH);
    ptc_session_keys_free(k);
    k = NULL;
    CHECK_OK(ptc_session_keys_load(dir, NOW + 3900, 3600, &k, err, sizeof(err)));
    CHECK_EQ(open_str(k, "session", HOST, v1, NULL), PTC_EAUTH);
    CHECK_OK(open_str(k, "session", HOST, v2, NULL));
    ptc_session_keys_free(k);
    /* No temporary file is left behind: the key file is the directory's only entry. */
    DIR *d = opendir(dir);
    CHECK_NOT_NULL(d);
    size_t entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            CHECK_STREQ(e->d_name, "session_keys.json");
            entries++;
        }
    }
    closedir(d);
    CHECK_EQ(entries, 1);
    free(v1);
    free(v2);
}

/* Loads a file with the given text and mode; the load must fail with PTC_ECONFIG, a message
 * naming the file and `where`, and the file must not have been rewritten. */
static void expect_refused(const char *text, mode_t mode, const char *where)
{
    const char *dir = ptc_test_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/session_keys.json", dir);
    write_file(path, text, mode);
    char err[512] = "";
    ptc_session_keys_t *k = NULL;
    CHECK_EQ(ptc_session_keys_load(dir, NOW, 3600, &k, err, sizeof(err)), PTC_ECONFIG);
    CHECK_NULL(k);
    ptc_test_diag("%s", err);
    CHECK_CONTAINS(err, path);
    CHECK_CONTAINS(err, where);
    size_t len = 0;
    char *now = read_file(path, &len);
    CHECK_STREQ(now, text);
    free(now);
}

static void test_key_file_malformed_refused(void)
{
    CHECK_OK(ptc_keys_init());
    /* 43 characters of base64url (32 bytes) and a 31-byte key. */
    const char *good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    expect_refused("{\"version\":1,\"keys\":[", 0600, "invalid JSON");
    expect_refused("[]", 0600, "expected a JSON object");
    /* A syntax error inside the key string: the message must not quote the key. */
    expect_refused(
        "{\"version\":1,\"keys\":[{\"id\":1,\"created\":5,\"key\":\"SECRETKEYMATERIAL\tX", 0600,
        "invalid JSON");
    char err[512] = "";
    ptc_session_keys_t *k = NULL;
    CHECK_EQ(ptc_session_keys_load(ptc_test_tmpdir(), NOW, 3600, &k, err, sizeof(err)),
             PTC_ECONFIG);
    CHECK(strstr(err, "SECRETKEY") == NULL);
    expect_refused("{\"version\":2,\"keys\":[]}", 0600, ": version: ");
    expect_refused("{\"version\":1}", 0600, ": keys: ");
    expect_refused("{\"version\":1,\"keys\":[]}", 0600, ": keys: ");
    expect_refused("{\"version\":1,\"keys\":[{\"id\":1,\"created\":5,\"key\":"
                   "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg\"}]}",
                   0600, ": keys[0].key: ");
    expect_refused("{\"version\":1,\"keys\":[{\"id\":1,\"created\":5,\"key\":"
                   "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+\"}]}",
                   0600, ": keys[0].key: ");
    char text[512];
    snprintf(text, sizeof(text),
             "{\"version\":1,\"keys\":[{\"id\":1,\"created\":5,\"key\":\"%s\"},"
             "{\"id\":\"2\",\"created\":5,\"key\":\"%s\"}]}",
             good, good);
    expect_refused(text, 0600, ": keys[1].id: ");
    snprintf(text, sizeof(text),
             "{\"version\":1,\"keys\":[{\"id\":1,\"created\":5,\"key\":\"%s\"},"
             "{\"id\":1,\"created\":5,\"key\":\"%s\"}]}",
             good, good);
    expect_refused(text, 0600, ": keys[1].id: duplicates");
    snprintf(text, sizeof(text),
             "{\"version\":1,\"keys\":[{\"id\":1,\"created\":-5,\"key\":\"%s\"}]}", good);
    expect_refused(text, 0600, ": keys[0].created: ");
    snprintf(text, sizeof(text),
             "{\"version\":1,\"keys\":[{\"id\":1,\"created\":5,\"key\":\"%s\",\"extra\":1}]}",
             good);
    expect_refused(text, 0600, ": keys[0]: unknown key \"extra\"");
    snprintf(
        text, sizeof(text),
        "{\"version\":1,\"keys\":[{\"id\":1,\"created\":5,\"key\":\"%s\"},{\"id\":2,\"created\":5,"
        "\"key\":\"%s\"},{\"id\":3,\"created\":5,\"key\":\"%s\"}]}",
        good, good, good);
    expect_refused(text, 0600, ": keys: ");

    /* The same file with a private mode loads, so the cases above failed for their reason. */
    snprintf(text, sizeof(text),
             "{\"version\":1,\"keys\":[{\"id\":7,\"created\":%d,\"key\":\"%s\"}]}", NOW, good);
    const char *dir = ptc_test_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/session_keys.json", dir);
    write_file(path, text, 0600);
    k = NULL;
    CHECK_OK(ptc_session_keys_load(dir, NOW, 3600, &k, err, sizeof(err)));
    /* It is exactly the key in the file: a ring made from those bytes opens its cookies. */
    uint8_t raw[32];
    for (int i = 0; i < 32; i++) {
        raw[i] = (uint8_t)i;
    }
    ptc_session_keys_t *same = ptc_session_keys_from_bytes(raw, 7, NOW);
    char *val = seal_str(k, "session", HOST, "x");
    CHECK_OK(open_str(same, "session", HOST, val, NULL));
    free(val);
    ptc_session_keys_free(same);
    ptc_session_keys_free(k);
}

static void test_key_file_permissive_refused(void)
{
    CHECK_OK(ptc_keys_init());
    const char *dir = ptc_test_tmpdir();
    char err[512] = "";
    ptc_session_keys_t *k = NULL;
    CHECK_OK(ptc_session_keys_load(dir, NOW, 3600, &k, err, sizeof(err)));
    ptc_session_keys_free(k);
    char path[512];
    snprintf(path, sizeof(path), "%s/session_keys.json", dir);
    size_t len = 0;
    char *text = read_file(path, &len);
    const mode_t modes[] = {0640, 0604, 0660, 0644, 0602};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        expect_refused(text, modes[i], "chmod 600");
    }
    /* The message never includes key material. */
    char *key = strstr(text, "\"key\": \"");
    CHECK_NOT_NULL(key);
    char keytext[44];
    memcpy(keytext, key + 8, 43);
    keytext[43] = '\0';
    write_file(path, text, 0644);
    k = NULL;
    CHECK_EQ(ptc_session_keys_load(dir, NOW, 3600, &k, err, sizeof(err)), PTC_ECONFIG);
    CHECK(strstr(err, keytext) == NULL);
    CHECK(strstr(err, "0644") != NULL);
    free(text);
}

static void test_key_file_unwritable_dir_fails(void)
{
    CHECK_OK(ptc_keys_init());
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/missing/state", ptc_test_tmpdir());
    char err[512] = "";
    ptc_session_keys_t *k = NULL;
    CHECK(ptc_session_keys_load(dir, NOW, 3600, &k, err, sizeof(err)) < 0);
    CHECK_NULL(k);
    CHECK_CONTAINS(err, "missing/state/session_keys.json");
}

/* ---- session payload ---- */

static void test_session_round_trip(void)
{
    ptc_session_keys_t *k = fresh_keys();
    char *groups[] = {"hr", "admins", "ünïcode"};
    ptc_session_t s = {.sub = "248289761001",
                       .email = "jane@example.com",
                       .name = "Jane \"JD\" Doe",
                       .idp = "corp",
                       .groups = groups,
                       .groups_cnt = 3,
                       .iat = NOW,
                       .exp = NOW + 8 * 3600};
    char *val = NULL;
    CHECK_OK(ptc_session_encode(k, HOST, &s, &val));
    CHECK_LE(strlen(val), PTC_SESSION_COOKIE_MAX);
    ptc_session_t out = {0};
    CHECK_OK(ptc_session_decode(k, HOST, val, strlen(val), NOW + 10, &out));
    CHECK_STREQ(out.sub, s.sub);
    CHECK_STREQ(out.email, s.email);
    CHECK_STREQ(out.name, s.name);
    CHECK_STREQ(out.idp, s.idp);
    CHECK_EQ(out.groups_cnt, 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK_STREQ(out.groups[i], groups[i]);
    }
    CHECK_EQ(out.iat, s.iat);
    CHECK_EQ(out.exp, s.exp);
    ptc_session_dispose(&out);
    CHECK_NULL(out.sub);

    /* A login cookie or another host never decodes as this host's session. */
    CHECK_EQ(ptc_session_decode(k, "other.example.com", val, strlen(val), NOW, &out), PTC_EAUTH);
    free(val);

    /* Minimal session: no email, name or groups. */
    ptc_session_t m = {.sub = "u1", .idp = "corp", .iat = NOW, .exp = NOW + 60};
    CHECK_OK(ptc_session_encode(k, HOST, &m, &val));
    CHECK_OK(ptc_session_decode(k, HOST, val, strlen(val), NOW, &out));
    CHECK_STREQ(out.sub, "u1");
    CHECK_NULL(out.email);
    CHECK_NULL(out.name);
    CHECK_EQ(out.groups_cnt, 0);
    ptc_session_dispose(&out);
    free(val);

    /* sub and idp are required. */
    ptc_session_t bad = {.sub = "", .idp = "corp", .exp = NOW + 60};
    val = NULL;
    CHECK_EQ(ptc_session_encode(k, HOST, &bad, &val), PTC_EFORMAT);
    bad.sub = "x";
    bad.idp = NULL;
    CHECK_EQ(ptc_session_encode(k, HOST, &bad, &val), PTC_EFORMAT);
    CHECK_NULL(val);
    ptc_session_keys_free(k);
}

static void test_session_expired(void)
{
    ptc_session_keys_t *k = fresh_keys();
    ptc_session_t s = {.sub = "u1", .idp = "corp", .iat = NOW, .exp = NOW + 3600};
    char *val = NULL;
    CHECK_OK(ptc_session_encode(k, HOST, &s, &val));
    ptc_session_t out = {.sub = NULL};
    CHECK_OK(ptc_session_decode(k, HOST, val, strlen(val), NOW + 3599, &out));
    ptc_session_dispose(&out);
    CHECK_EQ(ptc_session_decode(k, HOST, val, strlen(val), NOW + 3600, &out), PTC_ETIMEOUT);
    CHECK_EQ(ptc_session_decode(k, HOST, val, strlen(val), NOW + 99999, &out), PTC_ETIMEOUT);
    CHECK_NULL(out.sub);
    free(val);
    ptc_session_keys_free(k);
}

static void test_session_payload_checked(void)
{
    ptc_session_keys_t *k = fresh_keys();
    /* Authentic envelopes whose payload is not a session are malformed, not accepted. */
    const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"i\":\"corp\",\"t\":1,\"x\":9999999999}",
        "{\"s\":\"u\",\"i\":\"corp\",\"t\":1}",
        "{\"s\":\"u\",\"i\":\"corp\",\"t\":1,\"x\":\"9999999999\"}",
        "{\"s\":7,\"i\":\"corp\",\"t\":1,\"x\":9999999999}",
        "{\"s\":\"u\\u0000v\",\"i\":\"corp\",\"t\":1,\"x\":9999999999}",
        "{\"s\":\"u\",\"i\":\"corp\",\"t\":1,\"x\":9999999999,\"g\":\"hr\"}",
        "{\"s\":\"u\",\"i\":\"corp\",\"t\":1,\"x\":9999999999,\"g\":[\"hr\",3]}",
        "{\"s\":\"u\",\"i\":\"corp\",\"t\":1,\"x\":9999999999,\"e\":null}",
        "{\"s\":\"u\",\"s\":\"v\",\"i\":\"corp\",\"t\":1,\"x\":9999999999}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *val = seal_str(k, "session", HOST, bad[i]);
        ptc_session_t out = {0};
        CHECK_EQ(ptc_session_decode(k, HOST, val, strlen(val), NOW, &out), PTC_EFORMAT);
        CHECK_NULL(out.sub);
        free(val);
    }
    char *val = seal_str(k, "session", HOST,
                         "{\"s\":\"u\",\"i\":\"corp\",\"t\":1,\"x\":9999999999,\"g\":[]}");
    ptc_session_t out = {0};
    CHECK_OK(ptc_session_decode(k, HOST, val, strlen(val), NOW, &out));
    CHECK_EQ(out.groups_cnt, 0);
    ptc_session_dispose(&out);
    free(val);
    ptc_session_keys_free(k);
}

static void test_session_size_limit(void)
{
    ptc_session_keys_t *k = fresh_keys();
    enum { MAX_GROUPS = 400 };
    char *groups[MAX_GROUPS];
    for (size_t i = 0; i < MAX_GROUPS; i++) {
        groups[i] = malloc(32);
        snprintf(groups[i], 32, "department-group-%03zu", i);
    }
    ptc_session_t s = {.sub = "248289761001",
                       .email = "jane@example.com",
                       .name = "Jane Doe",
                       .idp = "corp",
                       .groups = groups,
                       .iat = NOW,
                       .exp = NOW + 3600};
    /* Grow the group list until the limit: every success stays within 3800 bytes, the first
     * failure is PTC_ELIMIT and leaves no output. */
    size_t ok_cnt = 0;
    for (size_t cnt = 1; cnt <= MAX_GROUPS; cnt++) {
        s.groups_cnt = cnt;
        char *val = NULL;
        int rc = ptc_session_encode(k, HOST, &s, &val);
        if (rc != 0) {
            CHECK_EQ(rc, PTC_ELIMIT);
            CHECK_NULL(val);
            break;
        }
        CHECK_LE(strlen(val), PTC_SESSION_COOKIE_MAX);
        ok_cnt = cnt;
        free(val);
    }
    ptc_test_diag("largest session: %zu groups", ok_cnt);
    CHECK_GT(ok_cnt, 50);
    CHECK_LT(ok_cnt, MAX_GROUPS);
    s.groups_cnt = MAX_GROUPS;
    char *val = NULL;
    CHECK_EQ(ptc_session_encode(k, HOST, &s, &val), PTC_ELIMIT);
    for (size_t i = 0; i < MAX_GROUPS; i++) {
        free(groups[i]);
    }
    ptc_session_keys_free(k);
}

/* ---- login state ---- */

static void test_login_state_round_trip(void)
{
    ptc_session_keys_t *k = fresh_keys();
    ptc_login_state_t ls = {0};
    CHECK_OK(ptc_login_state_new("corp", "/reports?q=1&x=%2F", NOW, &ls));
    CHECK_EQ(strlen(ls.state), 43);
    CHECK_EQ(strlen(ls.nonce), 43);
    CHECK_EQ(strlen(ls.verifier), 43);
    CHECK_STRNE(ls.state, ls.nonce);
    CHECK_STRNE(ls.state, ls.verifier);
    uint8_t raw[64];
    size_t n = 0;
    CHECK_OK(ptc_b64url_decode(ls.verifier, 43, raw, sizeof(raw), &n));
    CHECK_EQ(n, 32);
    CHECK_EQ(ls.created, NOW);

    char *val = NULL;
    CHECK_OK(ptc_login_state_encode(k, HOST, &ls, &val));
    ptc_login_state_t out = {0};
    CHECK_OK(ptc_login_state_decode(k, HOST, val, strlen(val), NOW + 5, 600, &out));
    CHECK_STREQ(out.state, ls.state);
    CHECK_STREQ(out.nonce, ls.nonce);
    CHECK_STREQ(out.verifier, ls.verifier);
    CHECK_STREQ(out.return_to, "/reports?q=1&x=%2F");
    CHECK_STREQ(out.idp, "corp");
    CHECK_EQ(out.created, NOW);
    ptc_login_state_dispose(&out);
    CHECK_NULL(out.state);

    /* Purpose and host are bound: not a session, not for another host. */
    ptc_session_t s = {0};
    CHECK_EQ(ptc_session_decode(k, HOST, val, strlen(val), NOW, &s), PTC_EAUTH);
    CHECK_EQ(ptc_login_state_decode(k, "crm.example.com", val, strlen(val), NOW, 600, &out),
             PTC_EAUTH);
    free(val);

    /* Two login states never share their random values; NULL return_to means the root. */
    ptc_login_state_t other = {0};
    CHECK_OK(ptc_login_state_new("corp", NULL, NOW, &other));
    CHECK_STRNE(other.state, ls.state);
    CHECK_STRNE(other.nonce, ls.nonce);
    CHECK_STRNE(other.verifier, ls.verifier);
    CHECK_STREQ(other.return_to, "/");
    ptc_login_state_dispose(&other);

    /* Values that are not 43-character base64url are refused when encoding. */
    ls.state[10] = '+';
    CHECK_EQ(ptc_login_state_encode(k, HOST, &ls, &val), PTC_EFORMAT);
    ptc_login_state_dispose(&ls);
    ptc_session_keys_free(k);
}

static void test_login_state_max_age(void)
{
    ptc_session_keys_t *k = fresh_keys();
    ptc_login_state_t ls = {0};
    CHECK_OK(ptc_login_state_new("corp", "/", NOW, &ls));
    char *val = NULL;
    CHECK_OK(ptc_login_state_encode(k, HOST, &ls, &val));
    size_t len = strlen(val);
    ptc_login_state_t out = {0};
    CHECK_OK(ptc_login_state_decode(k, HOST, val, len, NOW + 599, 600, &out));
    ptc_login_state_dispose(&out);
    CHECK_EQ(ptc_login_state_decode(k, HOST, val, len, NOW + 600, 600, &out), PTC_ETIMEOUT);
    CHECK_EQ(ptc_login_state_decode(k, HOST, val, len, NOW + 100, 60, &out), PTC_ETIMEOUT);
    /* Created in the future beyond a minute of skew: refused too. */
    CHECK_OK(ptc_login_state_decode(k, HOST, val, len, NOW - 60, 600, &out));
    ptc_login_state_dispose(&out);
    CHECK_EQ(ptc_login_state_decode(k, HOST, val, len, NOW - 61, 600, &out), PTC_ETIMEOUT);
    CHECK_NULL(out.state);
    free(val);
    ptc_login_state_dispose(&ls);
    ptc_session_keys_free(k);
}

static void test_pkce_rfc7636_vector(void)
{
    CHECK_OK(ptc_keys_init());
    char out[44];
    memset(out, 'x', sizeof(out));
    ptc_pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", out);
    CHECK_STREQ(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

/* ---- cookie headers ---- */

static ptc_http_header_t hdr(const char *name, const char *value)
{
    ptc_http_header_t h = {ptc_slice_str(name), ptc_slice_str(value)};
    return h;
}

static void check_find(const ptc_http_header_t *h, size_t cnt, const char *name, const char *want)
{
    ptc_slice_t v = {NULL, 0};
    bool found = ptc_cookie_find(h, cnt, name, &v);
    if (want == NULL) {
        CHECK(!found);
        return;
    }
    CHECK(found);
    CHECK_EQ(v.len, strlen(want));
    CHECK_MEMEQ(v.ptr, want, v.len);
}

static void test_cookie_find(void)
{
    ptc_http_header_t h[] = {
        hdr("Host", "hr.apps.example.com"),
        hdr("Cookie", "portico_session_old=stale; theme=dark;portico=x"),
        hdr("X-Cookie", "portico_session=wrong-header"),
        hdr("cookie", "  portico_session = abc-_123 ;lang=\"en-GB\"; empty=; flag; q=\"\""),
        hdr("COOKIE", "__Host-portico_login=L1; portico_session=second"),
        hdr("Cookie", "a=1=2"),
    };
    size_t cnt = sizeof(h) / sizeof(h[0]);
    /* A name that is a prefix or an extension of another never matches it. */
    check_find(h, cnt, "portico_session", "abc-_123");
    check_find(h, cnt, "portico_session_old", "stale");
    check_find(h, cnt, "portico", "x");
    check_find(h, cnt, "portico_sess", NULL);
    check_find(h, cnt, "__Host-portico_login", "L1");
    check_find(h, cnt, "portico_login", NULL);
    check_find(h, cnt, "theme", "dark");
    /* Quotes around a value are removed; an empty or a bare "" value is an empty value. */
    check_find(h, cnt, "lang", "en-GB");
    check_find(h, cnt, "empty", "");
    check_find(h, cnt, "q", "");
    /* A pair without '=' is skipped; a value may itself contain '='. */
    check_find(h, cnt, "flag", NULL);
    check_find(h, cnt, "a", "1=2");
    /* Names are case-sensitive. */
    check_find(h, cnt, "Theme", NULL);
    check_find(h, cnt, "", NULL);
    check_find(h, 0, "theme", NULL);
    /* Only Cookie fields count, and the first match wins over later fields. */
    ptc_http_header_t only[] = {hdr("Set-Cookie", "a=1"), hdr("Cookie", "b=2; a=3")};
    check_find(only, 2, "a", "3");
    ptc_http_header_t empty[] = {hdr("Cookie", ""), hdr("Cookie", ";;; ; =v; a=1")};
    check_find(empty, 2, "a", "1");
}

static void test_cookie_format(void)
{
    char *s = ptc_cookie_format("portico_session", "abc", true, true, 28800);
    CHECK_STREQ(s, "__Host-portico_session=abc; Path=/; SameSite=Lax; HttpOnly; Secure; "
                   "Max-Age=28800");
    free(s);
    s = ptc_cookie_format("portico_session", "abc", false, true, -1);
    CHECK_STREQ(s, "portico_session=abc; Path=/; SameSite=Lax; HttpOnly");
    free(s);
    s = ptc_cookie_format("portico_login", "v-_1", true, false, 600);
    CHECK_STREQ(s, "__Host-portico_login=v-_1; Path=/; SameSite=Lax; Secure; Max-Age=600");
    free(s);
    s = ptc_cookie_format("portico_session", "", true, true, 0);
    CHECK_STREQ(s, "__Host-portico_session=; Path=/; SameSite=Lax; HttpOnly; Secure; Max-Age=0");
    free(s);
    s = ptc_cookie_format("portico_session", "", false, false, 0);
    CHECK_STREQ(s, "portico_session=; Path=/; SameSite=Lax; Max-Age=0");
    free(s);

    /* A formatted cookie, sent back by a browser, is found again under the prefixed name. */
    ptc_session_keys_t *k = fresh_keys();
    char *val = seal_str(k, "session", HOST, "x");
    s = ptc_cookie_format(PTC_SESSION_COOKIE, val, true, true, -1);
    char *semi = strchr(s, ';');
    CHECK_NOT_NULL(semi);
    *semi = '\0';
    char field[4200];
    snprintf(field, sizeof(field), "other=1; %s; last=2", s);
    ptc_http_header_t h[] = {hdr("Cookie", field)};
    check_find(h, 1, "__Host-" PTC_SESSION_COOKIE, val);
    free(s);
    free(val);
    ptc_session_keys_free(k);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_seal_open_round_trip),
    PTC_TEST(test_flipped_bit_anywhere_refused),
    PTC_TEST(test_other_host_or_purpose_refused),
    PTC_TEST(test_malformed_values_refused),
    PTC_TEST(test_deterministic_ring_from_bytes),
    PTC_TEST(test_rotation_keeps_previous_key),
    PTC_TEST(test_key_file_created_private_and_reloaded),
    PTC_TEST(test_key_file_rotates_on_load),
    PTC_TEST(test_key_file_malformed_refused),
    PTC_TEST(test_key_file_permissive_refused),
    PTC_TEST(test_key_file_unwritable_dir_fails),
    PTC_TEST(test_session_round_trip),
    PTC_TEST(test_session_expired),
    PTC_TEST(test_session_payload_checked),
    PTC_TEST(test_session_size_limit),
    PTC_TEST(test_login_state_round_trip),
    PTC_TEST(test_login_state_max_age),
    PTC_TEST(test_pkce_rfc7636_vector),
    PTC_TEST(test_cookie_find),
    PTC_TEST(test_cookie_format),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
