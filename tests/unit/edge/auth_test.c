/* SPDX-License-Identifier: MIT */
#include "edge/auth.h"
#include "tests/support/test.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/jose.h"
#include "common/keys.h"

static void init(void)
{
    CHECK_OK(ptc_keys_init());
}

static bool safe(const char *u)
{
    return ptc_auth_return_url_is_safe(u, strlen(u));
}

static void test_return_url_same_host_paths(void)
{
    CHECK(safe("/"));
    CHECK(safe("/app/"));
    CHECK(safe("/app/page?x=1&y=two"));
    CHECK(safe("/a%20b/c"));
    /* In the query, encoded or plain slashes are data. */
    CHECK(safe("/search?next=%2F%2Fevil.com"));
    CHECK(safe("/search?q=a//b"));
}

static void test_return_url_open_redirects_refused(void)
{
    CHECK(!safe(""));
    CHECK(!safe("//evil.com"));
    CHECK(!safe("//evil.com/path"));
    CHECK(!safe("/\\evil.com"));
    CHECK(!safe("/\\/evil.com"));
    CHECK(!safe("/%2F%2Fevil.com?"));
    CHECK(!safe("/%2f%2fevil.com"));
    CHECK(!safe("/%5Cevil.com"));
    CHECK(!safe("/app/%2F%2Fevil.com"));
    CHECK(!safe("https://evil.com"));
    CHECK(!safe("https://evil.com/"));
    CHECK(!safe("javascript:alert(1)"));
    CHECK(!safe("evil.com"));
    CHECK(!safe(" /x"));
    /* Control characters, spaces and bytes above ASCII, raw or encoded (header injection). */
    CHECK(!safe("/a\r\nSet-Cookie: x=1"));
    CHECK(!safe("/a%0d%0aSet-Cookie:%20x=1"));
    CHECK(!safe("/a b"));
    CHECK(!safe("/\t/evil.com"));
    CHECK(!safe("/caf\xc3\xa9"));
    CHECK(!safe("/x%7f"));
    /* Malformed escapes, fragments, the edge's own paths. */
    CHECK(!safe("/%"));
    CHECK(!safe("/%4"));
    CHECK(!safe("/%zz"));
    CHECK(!safe("/a#b"));
    CHECK(!safe("/.portico/logout"));
    CHECK(!safe("/.portico/callback?code=x"));
    /* The length counts, not the NUL: an embedded NUL is a control character. */
    CHECK(!ptc_auth_return_url_is_safe("/a\0//evil.com", 13));
    char long_url[3000];
    memset(long_url, 'a', sizeof(long_url));
    long_url[0] = '/';
    CHECK(!ptc_auth_return_url_is_safe(long_url, sizeof(long_url)));
    CHECK(ptc_auth_return_url_is_safe(long_url, 2048));
}

static char *groups_a[] = {"staff", "ops"};

static ptc_session_t session(const char *sub, const char *email, char **groups, size_t n)
{
    ptc_session_t s;
    memset(&s, 0, sizeof(s));
    s.sub = (char *)sub;
    s.email = (char *)email;
    s.groups = groups;
    s.groups_cnt = n;
    return s;
}

static void test_assignment(void)
{
    ptc_app_assignment_t none = {0};
    ptc_session_t s = session("u-1", "Alice@Example.com", groups_a, 2);
    CHECK(ptc_auth_is_assigned(&none, &s));

    char *by_email[] = {"alice@example.com"};
    ptc_app_assignment_t a = {.users = by_email, .users_cnt = 1};
    CHECK(ptc_auth_is_assigned(&a, &s));
    ptc_session_t other = session("u-2", "bob@example.com", NULL, 0);
    CHECK(!ptc_auth_is_assigned(&a, &other));
    ptc_session_t no_email = session("u-1", NULL, NULL, 0);
    CHECK(!ptc_auth_is_assigned(&a, &no_email));

    char *by_sub[] = {"u-1"};
    a = (ptc_app_assignment_t){.users = by_sub, .users_cnt = 1};
    CHECK(ptc_auth_is_assigned(&a, &no_email));
    CHECK(!ptc_auth_is_assigned(&a, &other));
    /* A sub compares exactly. */
    ptc_session_t upper = session("U-1", NULL, NULL, 0);
    CHECK(!ptc_auth_is_assigned(&a, &upper));

    char *by_group[] = {"admins", "ops"};
    a = (ptc_app_assignment_t){.groups = by_group, .groups_cnt = 2};
    CHECK(ptc_auth_is_assigned(&a, &s));
    CHECK(!ptc_auth_is_assigned(&a, &other));
    char *near[] = {"Ops", "op"};
    ptc_session_t nearly = session("u-3", "c@example.com", near, 2);
    CHECK(!ptc_auth_is_assigned(&a, &nearly));

    /* Users and groups together: either admits. */
    char *users[] = {"bob@example.com"};
    a = (ptc_app_assignment_t){.users = users, .users_cnt = 1, .groups = by_group, .groups_cnt = 2};
    CHECK(ptc_auth_is_assigned(&a, &s));
    CHECK(ptc_auth_is_assigned(&a, &other));
    CHECK(!ptc_auth_is_assigned(&a, &nearly));
}

static void test_filter_groups(void)
{
    ptc_session_t s;
    memset(&s, 0, sizeof(s));
    const char *in[] = {"staff", "ops", "everyone", "ops", "admins"};
    s.groups_cnt = 5;
    s.groups = malloc(5 * sizeof(char *));
    for (size_t i = 0; i < 5; i++) {
        s.groups[i] = strdup(in[i]);
    }
    char *g1[] = {"ops"};
    char *g2[] = {"admins", "nobody"};
    ptc_app_assignment_t a1 = {.groups = g1, .groups_cnt = 1};
    ptc_app_assignment_t a2 = {.groups = g2, .groups_cnt = 2};
    const ptc_app_assignment_t *as[] = {&a1, &a2};
    ptc_auth_filter_groups(&s, as, 2);
    CHECK_EQ(s.groups_cnt, 2);
    CHECK_STREQ(s.groups[0], "ops");
    CHECK_STREQ(s.groups[1], "admins");
    /* No assignment names a group: none is kept. */
    ptc_auth_filter_groups(&s, NULL, 0);
    CHECK_EQ(s.groups_cnt, 0);
    CHECK_NULL(s.groups);
    ptc_session_dispose(&s);
}

static ptc_app_t *make_app(const char *json)
{
    json_error_t jerr;
    json_t *doc = json_loads(json, 0, &jerr);
    CHECK_NOT_NULL(doc);
    const char *idps[] = {"corp"};
    ptc_app_ctx_t ctx = {.default_domain = "apps.example.com", .idps = idps, .idp_cnt = 1};
    ptc_app_t *app = NULL;
    char err[256];
    int rc = ptc_app_parse(doc, &ctx, &app, err, sizeof(err));
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "app: %s", err);
    }
    json_decref(doc);
    return app;
}

static const ptc_auth_header_t *find_header(const ptc_auth_header_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(h[i].name, name) == 0) {
            return &h[i];
        }
    }
    return NULL;
}

/* The value of a header that must be there. */
static const char *value_of(const ptc_auth_header_t *h, size_t n, const char *name)
{
    const ptc_auth_header_t *f = find_header(h, n, name);
    if (f == NULL) {
        ptc_test_fail(__FILE__, __LINE__, "no header %s", name);
    }
    return f->value;
}

static void test_sso_headers(void)
{
    init();
    ptc_app_t *app = make_app("{\"name\": \"wiki\", \"internal_url\": \"http://10.0.0.5:8080/\","
                              " \"sso_headers\": {\"sub\": \"X-User-Id\", \"email\": \"X-Email\","
                              " \"name\": \"X-Name\", \"groups\": \"X-Groups\","
                              " \"idp\": \"X-Idp\", \"phone\": \"X-Phone\"}}");
    char *groups[] = {"staff", "ops"};
    ptc_session_t s = session("u-1", "alice@example.com", groups, 2);
    s.name = "Alice\r\nX-Evil: 1";
    s.idp = "corp";
    ptc_auth_header_t *h = NULL;
    size_t n = ptc_auth_identity_headers(app, &s, NULL, "edge.example.com", 1000, &h);
    /* sub, email, groups, idp; name has a line break and phone is no claim: left out. */
    CHECK_EQ(n, 4);
    CHECK_STREQ(h[0].name, "X-User-Id");
    CHECK_STREQ(h[0].value, "u-1");
    CHECK_STREQ(h[1].name, "X-Email");
    CHECK_STREQ(h[1].value, "alice@example.com");
    CHECK_STREQ(value_of(h, n, "X-Groups"), "staff,ops");
    CHECK_STREQ(value_of(h, n, "X-Idp"), "corp");
    CHECK_NULL(find_header(h, n, "X-Name"));
    CHECK_NULL(find_header(h, n, "X-Phone"));
    CHECK_NULL(find_header(h, n, "X-Portico-Assertion"));
    ptc_auth_headers_free(h, n);

    /* Without email and groups: those headers are absent, not empty. */
    ptc_session_t bare = session("u-2", NULL, NULL, 0);
    bare.name = "Bob";
    n = ptc_auth_identity_headers(app, &bare, NULL, "edge.example.com", 1000, &h);
    CHECK_EQ(n, 2);
    CHECK_STREQ(value_of(h, n, "X-User-Id"), "u-2");
    CHECK_STREQ(value_of(h, n, "X-Name"), "Bob");
    CHECK_NULL(find_header(h, n, "X-Email"));
    CHECK_NULL(find_header(h, n, "X-Groups"));
    ptc_auth_headers_free(h, n);
    ptc_app_unref(app);
}

static ptc_jwks_t *jwks_of(const ptc_auth_key_t *key)
{
    json_t *doc = ptc_auth_jwks(key);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    ptc_jwks_t *set = NULL;
    char err[128];
    CHECK_OK(ptc_jwks_parse(text, strlen(text), &set, err, sizeof(err)));
    free(text);
    CHECK_EQ(ptc_jwks_count(set), 1);
    return set;
}

static void test_assertion_verifies_with_jwks(void)
{
    init();
    ptc_app_t *app = make_app("{\"name\": \"wiki\", \"internal_url\": \"http://10.0.0.5:8080/\"}");
    ptc_auth_key_t *key = ptc_auth_key_ephemeral();
    char *groups[] = {"staff"};
    ptc_session_t s = session("u-1", "alice@example.com", groups, 1);
    s.name = "Alice";
    s.idp = "corp";
    ptc_auth_header_t *h = NULL;
    size_t n = ptc_auth_identity_headers(app, &s, key, "edge.example.com", 1700000000, &h);
    CHECK_EQ(n, 1);
    CHECK_STREQ(h[0].name, "X-Portico-Assertion");
    const char *tok = h[0].value;

    ptc_jwks_t *set = jwks_of(key);
    ptc_jwt_t jwt;
    char err[128];
    CHECK_OK(ptc_jwt_verify(tok, strlen(tok), set, PTC_JOSE_EDDSA, &jwt, err, sizeof(err)));
    CHECK_STREQ(json_string_value(json_object_get(jwt.header, "kid")), key->kid);
    CHECK_STREQ(json_string_value(json_object_get(jwt.header, "alg")), "EdDSA");
    json_t *c = jwt.claims;
    CHECK_STREQ(json_string_value(json_object_get(c, "iss")), "https://edge.example.com");
    CHECK_STREQ(json_string_value(json_object_get(c, "aud")), "wiki");
    CHECK_STREQ(json_string_value(json_object_get(c, "sub")), "u-1");
    CHECK_STREQ(json_string_value(json_object_get(c, "email")), "alice@example.com");
    CHECK_STREQ(json_string_value(json_object_get(c, "name")), "Alice");
    CHECK_EQ(json_array_size(json_object_get(c, "groups")), 1);
    CHECK_STREQ(json_string_value(json_array_get(json_object_get(c, "groups"), 0)), "staff");
    CHECK_EQ(json_integer_value(json_object_get(c, "iat")), 1700000000);
    CHECK_EQ(json_integer_value(json_object_get(c, "exp")), 1700000000 + 60);
    const char *jti = json_string_value(json_object_get(c, "jti"));
    CHECK_NOT_NULL(jti);
    CHECK_GE(strlen(jti), 20);
    ptc_jwt_dispose(&jwt);

    /* Another assertion has another jti; a token changed by one byte does not verify. */
    ptc_auth_header_t *h2 = NULL;
    size_t n2 = ptc_auth_identity_headers(app, &s, key, "edge.example.com", 1700000000, &h2);
    CHECK_EQ(n2, 1);
    CHECK(strcmp(h2[0].value, tok) != 0);
    char *bad = strdup(tok);
    size_t last = strlen(bad) - 2;
    bad[last] = bad[last] == 'A' ? 'B' : 'A';
    CHECK_NE(ptc_jwt_verify(bad, strlen(bad), set, PTC_JOSE_EDDSA, &jwt, err, sizeof(err)), 0);
    free(bad);

    /* Another edge key's JWKS does not verify it either. */
    ptc_auth_key_t *other = ptc_auth_key_ephemeral();
    ptc_jwks_t *other_set = jwks_of(other);
    CHECK_NE(ptc_jwt_verify(tok, strlen(tok), other_set, PTC_JOSE_EDDSA, &jwt, err, sizeof(err)),
             0);
    ptc_jwks_free(other_set);
    ptc_auth_key_free(other);

    ptc_auth_headers_free(h2, n2);
    ptc_jwks_free(set);
    ptc_auth_headers_free(h, n);
    ptc_auth_key_free(key);
    ptc_app_unref(app);
}

static void test_kid_is_hash_of_public_key(void)
{
    init();
    ptc_auth_key_t *key = ptc_auth_key_ephemeral();
    uint8_t hash[PTC_SHA256_LEN];
    ptc_sha256(key->pk, sizeof(key->pk), hash);
    char want[16];
    CHECK_EQ(ptc_b64url_encode(hash, 8, want, sizeof(want)), 11);
    CHECK_STREQ(key->kid, want);
    json_t *doc = ptc_auth_jwks(key);
    json_t *k = json_array_get(json_object_get(doc, "keys"), 0);
    CHECK_STREQ(json_string_value(json_object_get(k, "kid")), want);
    CHECK_STREQ(json_string_value(json_object_get(k, "kty")), "OKP");
    CHECK_STREQ(json_string_value(json_object_get(k, "crv")), "Ed25519");
    CHECK_NULL(json_object_get(k, "d"));
    json_decref(doc);
    ptc_auth_key_free(key);
}

static void test_key_file(void)
{
    init();
    const char *dir = ptc_test_tmpdir();
    char err[512];
    ptc_auth_key_t *k1 = NULL;
    CHECK_OK(ptc_auth_key_load(dir, &k1, err, sizeof(err)));
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, PTC_AUTH_KEY_FILE);
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK_EQ(st.st_mode & 0777, 0600);
    /* The next start reads the same key. */
    ptc_auth_key_t *k2 = NULL;
    CHECK_OK(ptc_auth_key_load(dir, &k2, err, sizeof(err)));
    CHECK_MEMEQ(k1->pk, k2->pk, 32);
    CHECK_MEMEQ(k1->sk, k2->sk, 64);
    CHECK_STREQ(k1->kid, k2->kid);
    ptc_auth_key_free(k2);

    /* Readable by others: refused, not rewritten. */
    CHECK_OK(chmod(path, 0644));
    k2 = NULL;
    CHECK_EQ(ptc_auth_key_load(dir, &k2, err, sizeof(err)), PTC_ECONFIG);
    CHECK_NULL(k2);
    CHECK_CONTAINS(err, "0600");
    CHECK_OK(chmod(path, 0600));

    /* A public key that does not belong to the secret one: refused. */
    FILE *f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    fprintf(f, "{\"kty\": \"OKP\", \"crv\": \"Ed25519\", "
               "\"x\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", "
               "\"d\": \"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\"}\n");
    fclose(f);
    CHECK_EQ(ptc_auth_key_load(dir, &k2, err, sizeof(err)), PTC_ECONFIG);
    CHECK_CONTAINS(err, "public key");
    f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    fprintf(f, "not json");
    fclose(f);
    CHECK_EQ(ptc_auth_key_load(dir, &k2, err, sizeof(err)), PTC_ECONFIG);
    ptc_auth_key_free(k1);
}

/* ---- login cookies ---- */

static void test_login_cookie_name(void)
{
    char name[PTC_AUTH_LOGIN_NAME_CAP];
    const char *st = "Ab-_0123xyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxy";
    CHECK(ptc_auth_login_cookie_name(st, strlen(st), name));
    CHECK_STREQ(name, "portico_login_Ab-_0123");
    /* The prefix ptc_cookie_format adds still fits. */
    char *c = ptc_cookie_format(name, "v", true, true, PTC_AUTH_LOGIN_MAX_AGE_S);
    CHECK_STREQ(c, "__Host-portico_login_Ab-_0123=v; Path=/; SameSite=Lax; HttpOnly; Secure; "
                   "Max-Age=600");
    free(c);
    CHECK(ptc_auth_login_cookie_name("12345678", 8, name));
    CHECK_STREQ(name, "portico_login_12345678");
    /* Too short, or characters no state of ours has (they could not be a cookie name). */
    CHECK(!ptc_auth_login_cookie_name("1234567", 7, name));
    CHECK_STREQ(name, "");
    CHECK(!ptc_auth_login_cookie_name("1234;67890", 10, name));
    CHECK(!ptc_auth_login_cookie_name("1234=67890", 10, name));
    CHECK(!ptc_auth_login_cookie_name("123 567890", 10, name));
    CHECK(!ptc_auth_login_cookie_name("", 0, name));
    /* A fresh login's state always names a cookie, and different states different ones. */
    ptc_login_state_t a;
    ptc_login_state_t b;
    CHECK_OK(ptc_login_state_new("corp", "/", 1000, &a));
    CHECK_OK(ptc_login_state_new("corp", "/", 1000, &b));
    char na[PTC_AUTH_LOGIN_NAME_CAP];
    CHECK(ptc_auth_login_cookie_name(a.state, strlen(a.state), na));
    CHECK(ptc_auth_login_cookie_name(b.state, strlen(b.state), name));
    CHECK_STRNE(na, name);
    ptc_login_state_dispose(&a);
    ptc_login_state_dispose(&b);
}

/* A sealed login cookie "<prefix>portico_login_<id>=<value>" created at `created`, appended to
 * `out` ("; " between pairs); the name without prefix in name_out. */
static void add_login(ptc_session_keys_t *keys, const char *host, bool secure, int64_t created,
                      char *out, size_t cap, char name_out[PTC_AUTH_LOGIN_NAME_CAP])
{
    ptc_login_state_t ls;
    CHECK_OK(ptc_login_state_new("corp", "/", created, &ls));
    CHECK(ptc_auth_login_cookie_name(ls.state, strlen(ls.state), name_out));
    char *val = NULL;
    CHECK_OK(ptc_login_state_encode(keys, host, &ls, &val));
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "%s%s%s=%s", len > 0 ? "; " : "", secure ? "__Host-" : "",
             name_out, val);
    free(val);
    ptc_login_state_dispose(&ls);
}

static size_t to_clear(ptc_session_keys_t *keys, const char *cookie, bool secure, int64_t now,
                       char (*out)[PTC_AUTH_LOGIN_NAME_CAP], size_t cap)
{
    ptc_http_header_t h[2] = {
        {ptc_slice_str("Accept"), ptc_slice_str("text/html")},
        {ptc_slice_str("Cookie"), ptc_slice_str(cookie)},
    };
    return ptc_auth_logins_to_clear(keys, "app.example.com", secure, h, 2, now, out, cap);
}

static void test_logins_to_clear(void)
{
    init();
    ptc_session_keys_t *keys = ptc_session_keys_ephemeral();
    CHECK_NOT_NULL(keys);
    const int64_t now = 2000000;
    char cookie[8192] = "app_pref=dark";
    char names[8][PTC_AUTH_LOGIN_NAME_CAP];
    char out[8][PTC_AUTH_LOGIN_NAME_CAP];

    /* Fewer than PTC_AUTH_LOGINS_MAX in progress: all stay (the new one makes the fourth). */
    CHECK_EQ(PTC_AUTH_LOGINS_MAX, 4);
    add_login(keys, "app.example.com", true, now - 30, cookie, sizeof(cookie), names[0]);
    add_login(keys, "app.example.com", true, now - 20, cookie, sizeof(cookie), names[1]);
    add_login(keys, "app.example.com", true, now - 10, cookie, sizeof(cookie), names[2]);
    CHECK_EQ(to_clear(keys, cookie, true, now, out, 8), 0);
    /* A fourth: the oldest goes, whatever the order in the field. */
    char reordered[8192] = "";
    add_login(keys, "app.example.com", true, now - 5, reordered, sizeof(reordered), names[3]);
    size_t len = strlen(reordered);
    snprintf(reordered + len, sizeof(reordered) - len, "; %s", cookie);
    CHECK_EQ(to_clear(keys, reordered, true, now, out, 8), 1);
    CHECK_STREQ(out[0], names[0]);
    /* Equal ages: the first in the request (browsers send the older first) goes. */
    char same[8192] = "";
    for (int i = 0; i < 6; i++) {
        add_login(keys, "app.example.com", true, now, same, sizeof(same), names[i]);
    }
    CHECK_EQ(to_clear(keys, same, true, now, out, 8), 3);
    CHECK_STREQ(out[0], names[0]);
    CHECK_STREQ(out[1], names[1]);
    CHECK_STREQ(out[2], names[2]);
    /* `cap` bounds the answer. */
    CHECK_EQ(to_clear(keys, same, true, now, out, 2), 2);

    /* Cookies that do not open are cleared: expired, tampered, sealed for another host. */
    char bad[8192] = "";
    add_login(keys, "app.example.com", true, now - PTC_AUTH_LOGIN_MAX_AGE_S - 1, bad, sizeof(bad),
              names[0]);
    add_login(keys, "other.example.com", true, now, bad, sizeof(bad), names[1]);
    len = strlen(bad);
    snprintf(bad + len, sizeof(bad) - len, "; __Host-portico_login_AAAAAAAA=garbage");
    add_login(keys, "app.example.com", true, now, bad, sizeof(bad), names[2]);
    CHECK_EQ(to_clear(keys, bad, true, now, out, 8), 3);
    CHECK_STREQ(out[0], names[0]);
    CHECK_STREQ(out[1], names[1]);
    CHECK_STREQ(out[2], "portico_login_AAAAAAAA");

    /* Only names of the edge's making for the site's scheme count: without the prefix at an
     * https site, other lengths, the single legacy name and other cookies are left alone. */
    char other[8192] = "portico_login=x; __Host-portico_login_ABCDEFGHI=x; "
                       "__Host-portico_login_ABCDEFG=x; __Host-portico_login_ABC DEFG=x; "
                       "__Host-portico_login_ABC\"DEFG=x; portico_session=x; a=b";
    char plain[PTC_AUTH_LOGIN_NAME_CAP];
    add_login(keys, "app.example.com", false, now - 700, other, sizeof(other), plain);
    CHECK_EQ(to_clear(keys, other, true, now, out, 8), 0);
    /* ... while an http site (no prefix) sees that one. */
    CHECK_EQ(to_clear(keys, other, false, now, out, 8), 1);
    CHECK_STREQ(out[0], plain);

    /* A name given twice counts once; a quoted value is read without its quotes. */
    char twice[1024] = "";
    add_login(keys, "app.example.com", true, now, twice, sizeof(twice), names[0]);
    char *eq = strchr(twice, '=');
    char dup[8192];
    snprintf(dup, sizeof(dup), "%.*s=\"%s\"; %s", (int)(eq - twice), twice, eq + 1, twice);
    CHECK_EQ(to_clear(keys, dup, true, now, out, 8), 0);

    /* No Cookie field at all. */
    ptc_http_header_t none = {ptc_slice_str("Accept"), ptc_slice_str("*/*")};
    CHECK_EQ(ptc_auth_logins_to_clear(keys, "app.example.com", true, &none, 1, now, out, 8), 0);
    ptc_session_keys_free(keys);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_return_url_same_host_paths),
    PTC_TEST(test_return_url_open_redirects_refused),
    PTC_TEST(test_assignment),
    PTC_TEST(test_filter_groups),
    PTC_TEST(test_sso_headers),
    PTC_TEST(test_assertion_verifies_with_jwks),
    PTC_TEST(test_kid_is_hash_of_public_key),
    PTC_TEST(test_key_file),
    PTC_TEST(test_login_cookie_name),
    PTC_TEST(test_logins_to_clear),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
