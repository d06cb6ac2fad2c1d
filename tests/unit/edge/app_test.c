/* SPDX-License-Identifier: MIT */
#include "edge/app.h"
#include "tests/support/test.h"

#include <string.h>

static const char *const idps[] = {"corp", "partners"};

static const ptc_app_ctx_t ctx = {
    .default_domain = "apps.example.com",
    .idps = idps,
    .idp_cnt = 2,
};

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        ptc_test_fail(__FILE__, __LINE__, "bad JSON in the test: %s", jerr.text);
    }
    return doc;
}

static ptc_app_t *parse_ok(const char *text, const ptc_app_ctx_t *c)
{
    json_t *doc = load(text);
    ptc_app_t *app = NULL;
    char err[512] = "";
    int rc = ptc_app_parse(doc, c, &app, err, sizeof(err));
    json_decref(doc);
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "parse failed (%d): %s", rc, err);
    }
    return app;
}

/* Parses `text` expecting a refusal whose message contains `want`. */
static void check_refused(int line, const char *text, const ptc_app_ctx_t *c, const char *want)
{
    json_t *doc = load(text);
    ptc_app_t *app = NULL;
    char err[512] = "";
    int rc = ptc_app_parse(doc, c, &app, err, sizeof(err));
    json_decref(doc);
    if (rc != PTC_EFORMAT || app != NULL) {
        ptc_test_fail(__FILE__, line, "%s: expected PTC_EFORMAT, got %d", text, rc);
    }
    if (strstr(err, want) == NULL) {
        ptc_test_fail(__FILE__, line, "%s: message \"%s\" lacks \"%s\"", text, err, want);
    }
}

static void test_defaults(void)
{
    ptc_app_t *app = parse_ok("{\"name\":\"hr\",\"internal_url\":\"http://10.0.0.5:8080\"}", &ctx);
    CHECK_STREQ(app->name, "hr");
    CHECK_STREQ(app->external_url, "https://hr.apps.example.com/");
    CHECK_STREQ(app->internal_url, "http://10.0.0.5:8080");
    CHECK_STREQ(app->connector_group, "Default");
    CHECK_EQ(app->pre_auth, PTC_APP_PRE_AUTH_OIDC);
    CHECK_STREQ(app->idp, "corp"); /* the first provider */
    CHECK(!app->maintenance_mode);
    CHECK_EQ(app->backend_timeout, PTC_APP_BACKEND_TIMEOUT_DEFAULT);
    CHECK_UEQ(app->backend_timeout_ms, 85000);
    CHECK(app->http_only_cookie);
    CHECK(app->secure_cookie);
    CHECK(!app->persistent_cookie);
    CHECK(app->translate_headers);
    CHECK(!app->translate_body);
    CHECK(app->validate_backend_tls);
    CHECK_STREQ(app->home_page, "https://hr.apps.example.com/");
    CHECK_EQ(app->assignment.users_cnt, 0);
    CHECK_EQ(app->assignment.groups_cnt, 0);
    CHECK_EQ(app->sso_headers_cnt, 0);
    CHECK(app->robots_txt);
    CHECK(!app->hsts);
    /* Derived fields. */
    CHECK(app->ext_https);
    CHECK_STREQ(app->ext_host, "hr.apps.example.com");
    CHECK_EQ(app->ext_port, 443);
    CHECK_STREQ(app->ext_path, "/");
    CHECK(!app->int_https);
    CHECK_STREQ(app->int_host, "10.0.0.5");
    CHECK_EQ(app->int_port, 8080);
    CHECK_STREQ(app->int_path, "/");
    ptc_app_unref(app);

    /* Without providers, idp stays unset; any name is kept. */
    ptc_app_ctx_t bare = {.default_domain = "d.example"};
    app = parse_ok("{\"name\":\"a\",\"internal_url\":\"http://b/\"}", &bare);
    CHECK_NULL(app->idp);
    json_t *j = ptc_app_to_json(app);
    CHECK_NULL(json_object_get(j, "idp"));
    json_decref(j);
    ptc_app_unref(app);
    app = parse_ok("{\"name\":\"a\",\"internal_url\":\"http://b/\",\"idp\":\"x\"}", &bare);
    CHECK_STREQ(app->idp, "x");
    ptc_app_unref(app);
}

static const char *full_app =
    "{\"name\":\"wiki-2\",\"external_url\":\"https://Docs.Example.org:8443/wiki/\","
    "\"internal_url\":\"https://[fd00::5]:9443/mediawiki/\",\"connector_group\":\"Branch Office\","
    "\"pre_auth\":\"passthrough\",\"idp\":\"partners\",\"maintenance_mode\":true,"
    "\"backend_timeout\":\"long\",\"http_only_cookie\":false,\"secure_cookie\":false,"
    "\"persistent_cookie\":true,\"translate_headers\":false,\"translate_body\":true,"
    "\"validate_backend_tls\":false,\"home_page\":\"https://docs.example.org:8443/wiki/Main\","
    "\"assignment\":{\"users\":[\"ann@example.org\",\"sub-42\"],\"groups\":[\"staff\"]},"
    "\"sso_headers\":{\"email\":\"X-Email\",\"preferred_username\":\"Remote-User\"},"
    "\"robots_txt\":false,\"hsts\":true,\"max_body_size\":1048576}";

static void test_every_setting_and_round_trip(void)
{
    ptc_app_t *app = parse_ok(full_app, &ctx);
    CHECK_STREQ(app->external_url, "https://Docs.Example.org:8443/wiki/"); /* kept as given */
    CHECK_STREQ(app->ext_host, "docs.example.org");
    CHECK_EQ(app->ext_port, 8443);
    CHECK_STREQ(app->ext_path, "/wiki/");
    CHECK(app->int_https);
    CHECK_STREQ(app->int_host, "fd00::5");
    CHECK_EQ(app->int_port, 9443);
    CHECK_STREQ(app->int_path, "/mediawiki/");
    CHECK_STREQ(app->connector_group, "Branch Office");
    CHECK_EQ(app->pre_auth, PTC_APP_PRE_AUTH_PASSTHROUGH);
    CHECK_STREQ(app->idp, "partners");
    CHECK(app->maintenance_mode);
    CHECK_UEQ(app->backend_timeout_ms, 180000);
    CHECK(!app->http_only_cookie);
    CHECK(!app->secure_cookie);
    CHECK(app->persistent_cookie);
    CHECK(!app->translate_headers);
    CHECK(app->translate_body);
    CHECK(!app->validate_backend_tls);
    CHECK_STREQ(app->home_page, "https://docs.example.org:8443/wiki/Main");
    CHECK_EQ(app->assignment.users_cnt, 2);
    CHECK_STREQ(app->assignment.users[1], "sub-42");
    CHECK_EQ(app->assignment.groups_cnt, 1);
    CHECK_EQ(app->sso_headers_cnt, 2);
    CHECK_STREQ(app->sso_headers[1].key, "preferred_username");
    CHECK_STREQ(app->sso_headers[1].value, "Remote-User");
    CHECK(!app->robots_txt);
    CHECK(app->hsts);
    CHECK_UEQ(app->max_body_size, 1048576);

    /* to_json gives the same document back, and it parses to the same app. */
    json_t *orig = load(full_app);
    json_t *j = ptc_app_to_json(app);
    CHECK(json_equal(orig, j));
    ptc_app_t *again = NULL;
    char err[512];
    CHECK_OK(ptc_app_parse(j, &ctx, &again, err, sizeof(err)));
    json_t *j2 = ptc_app_to_json(again);
    CHECK(json_equal(j, j2));
    json_decref(j2);
    json_decref(j);
    json_decref(orig);
    ptc_app_unref(again);

    /* Defaults are written out too, so the document is complete. */
    ptc_app_t *small = parse_ok("{\"name\":\"hr\",\"internal_url\":\"http://h/\"}", &ctx);
    j = ptc_app_to_json(small);
    CHECK_EQ(json_object_size(j), 20);
    CHECK_EQ(json_integer_value(json_object_get(j, "max_body_size")), 0);
    CHECK_STREQ(json_string_value(json_object_get(j, "pre_auth")), "oidc");
    CHECK_STREQ(json_string_value(json_object_get(j, "backend_timeout")), "default");
    CHECK(json_is_true(json_object_get(j, "robots_txt")));
    CHECK(json_is_false(json_object_get(j, "hsts")));
    CHECK_EQ(json_array_size(json_object_get(json_object_get(j, "assignment"), "users")), 0);
    json_decref(j);
    ptc_app_unref(small);
    ptc_app_unref(app);
}

#define BASE "\"name\":\"hr\",\"internal_url\":\"http://h/\""

static void test_refusals_name_the_field(void)
{
    check_refused(__LINE__, "{\"internal_url\":\"http://h/\"}", &ctx,
                  "name: required key is missing");
    check_refused(__LINE__, "{\"name\":\"hr\"}", &ctx, "internal_url: required key is missing");
    check_refused(__LINE__, "[]", &ctx, "expected an object");
    check_refused(__LINE__, "{\"name\":\"HR\",\"internal_url\":\"http://h/\"}", &ctx,
                  "name: expected 1 to 64 characters of a-z, 0-9 and '-'");
    check_refused(__LINE__, "{\"name\":\"-hr\",\"internal_url\":\"http://h/\"}", &ctx, "name:");
    check_refused(__LINE__, "{\"name\":\"hr-\",\"internal_url\":\"http://h/\"}", &ctx, "name:");
    check_refused(__LINE__, "{\"name\":\"h_r\",\"internal_url\":\"http://h/\"}", &ctx, "name:");
    check_refused(__LINE__,
                  "{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                  "\"internal_url\":\"http://h/\"}",
                  &ctx, "name:");
    check_refused(__LINE__, "{\"name\":\"hr\",\"internal_url\":\"ftp://h/\"}", &ctx,
                  "internal_url: expected an http or https URL, got \"ftp://h/\"");
    check_refused(__LINE__, "{\"name\":\"hr\",\"internal_url\":\"h:8080\"}", &ctx,
                  "internal_url: expected an http or https URL");
    check_refused(__LINE__, "{\"name\":\"hr\",\"internal_url\":\"http://h/app\"}", &ctx,
                  "internal_url: the path must end with '/', got \"/app\"");
    check_refused(__LINE__, "{\"name\":\"hr\",\"internal_url\":\"http://h/?a=1\"}", &ctx,
                  "internal_url: a query ('?') is not allowed");
    check_refused(__LINE__, "{\"name\":\"hr\",\"internal_url\":\"http://u:p@h/\"}", &ctx,
                  "user information");
    check_refused(__LINE__, "{\"name\":\"hr\",\"internal_url\":42}", &ctx,
                  "internal_url: expected a non-empty string, got 42");
    check_refused(__LINE__, "{" BASE ",\"external_url\":\"https://hr.example.com/app\"}", &ctx,
                  "external_url: the path must end with '/'");
    check_refused(__LINE__, "{" BASE ",\"external_url\":\"https://hr.example.com/a/../b/\"}", &ctx,
                  "external_url: the path must be in normal form");
    check_refused(__LINE__, "{" BASE ",\"external_url\":\"https://hr.example.com/%7e/\"}", &ctx,
                  "external_url: the path must be in normal form");
    check_refused(__LINE__, "{" BASE ",\"external_url\":\"https://hr.example.com/#top\"}", &ctx,
                  "external_url: expected an http or https URL");
    check_refused(__LINE__, "{" BASE ",\"external_url\":\"https://*.example.com/\"}", &ctx,
                  "external_url: expected an http or https URL");
    check_refused(__LINE__, "{" BASE ",\"internal_uri\":\"x\"}", &ctx,
                  "unknown key \"internal_uri\" (did you mean \"internal_url\"?)");
    check_refused(__LINE__, "{" BASE ",\"pre_auth\":\"saml\"}", &ctx,
                  "pre_auth: expected one of oidc, passthrough");
    check_refused(__LINE__, "{" BASE ",\"backend_timeout\":\"short\"}", &ctx,
                  "backend_timeout: expected one of default, long");
    check_refused(__LINE__, "{" BASE ",\"maintenance_mode\":\"yes\"}", &ctx,
                  "maintenance_mode: expected true or false");
    check_refused(__LINE__, "{" BASE ",\"hsts\":1}", &ctx, "hsts: expected true or false");
    check_refused(__LINE__, "{" BASE ",\"idp\":\"nope\"}", &ctx,
                  "idp: no identity provider is named \"nope\" (configured: corp, partners)");
    check_refused(__LINE__, "{" BASE ",\"home_page\":\"https://evil.example.com/\"}", &ctx,
                  "home_page: must be on the app's external host");
    check_refused(__LINE__, "{" BASE ",\"home_page\":\"http://hr.apps.example.com/\"}", &ctx,
                  "home_page: must be on the app's external host");
    check_refused(__LINE__, "{" BASE ",\"home_page\":\"/relative\"}", &ctx,
                  "home_page: expected an http or https URL");
    check_refused(__LINE__, "{" BASE ",\"assignment\":{\"users\":\"bob\"}}", &ctx,
                  "assignment.users: expected");
    check_refused(__LINE__, "{" BASE ",\"assignment\":{\"users\":[\"\"]}}", &ctx,
                  "assignment.users[0]:");
    check_refused(__LINE__, "{" BASE ",\"assignment\":{\"roles\":[]}}", &ctx,
                  "assignment: unknown key \"roles\"");
    check_refused(__LINE__, "{" BASE ",\"sso_headers\":{\"email\":\"X-Portico-User\"}}", &ctx,
                  "sso_headers.email: header names starting with X-Portico-");
    check_refused(__LINE__, "{" BASE ",\"sso_headers\":{\"email\":\"x-portico-user\"}}", &ctx,
                  "sso_headers.email: header names starting with X-Portico-");
    check_refused(__LINE__, "{" BASE ",\"sso_headers\":{\"email\":\"Bad Header\"}}", &ctx,
                  "sso_headers.email: expected an HTTP header name, got \"Bad Header\"");
    check_refused(__LINE__, "{" BASE ",\"sso_headers\":{\"email\":\"X-A\\r\\nX-B\"}}", &ctx,
                  "sso_headers.email: expected an HTTP header name");
    check_refused(__LINE__, "{" BASE ",\"sso_headers\":{\"email\":\"Host\"}}", &ctx,
                  "sso_headers.email: \"Host\" is a header the edge sets or strips itself");
    check_refused(__LINE__, "{" BASE ",\"sso_headers\":{\"sub\":\"X-Forwarded-User\"}}", &ctx,
                  "sso_headers.sub:");
    check_refused(__LINE__, "{" BASE ",\"sso_headers\":{\"email\":\"X-User\",\"sub\":\"x-user\"}}",
                  &ctx, "sso_headers.sub: header \"x-user\" is already used for email");
    check_refused(__LINE__, "{" BASE ",\"sso_headers\":{\"email\":\"\"}}", &ctx,
                  "sso_headers.email: expected a non-empty string");
    check_refused(__LINE__, "{" BASE ",\"connector_group\":\"a/b\"}", &ctx,
                  "connector_group: expected a group name");
    check_refused(__LINE__, "{" BASE ",\"idp\":null}", &ctx, "idp: expected a non-empty string");

    ptc_app_ctx_t no_domain = {0};
    check_refused(__LINE__, "{" BASE "}", &no_domain,
                  "external_url: required key is missing (the edge has no default_domain)");
    check_refused(__LINE__, "{" BASE "}", NULL, "external_url: required key is missing");
}

static void test_lenient_idp(void)
{
    ptc_app_ctx_t lenient = ctx;
    lenient.lenient_idp = true;
    ptc_app_t *app = parse_ok("{" BASE ",\"idp\":\"removed-provider\"}", &lenient);
    CHECK_STREQ(app->idp, "removed-provider");
    ptc_app_unref(app);
}

static ptc_app_t *patch_ok(const ptc_app_t *old, const char *text)
{
    json_t *p = load(text);
    ptc_app_t *app = NULL;
    char err[512] = "";
    int rc = ptc_app_patch(old, p, &ctx, &app, err, sizeof(err));
    json_decref(p);
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "patch %s failed: %s", text, err);
    }
    return app;
}

static void test_patch(void)
{
    ptc_app_t *a = parse_ok("{" BASE ",\"maintenance_mode\":true,\"hsts\":true}", &ctx);

    /* One setting changes; the rest stays; the old app is untouched. */
    ptc_app_t *b = patch_ok(a, "{\"internal_url\":\"https://h2:8443/x/\"}");
    CHECK_STREQ(b->internal_url, "https://h2:8443/x/");
    CHECK_STREQ(b->int_path, "/x/");
    CHECK(b->maintenance_mode);
    CHECK(b->hsts);
    CHECK_STREQ(a->internal_url, "http://h/");

    /* null brings back the default (RFC 7396). */
    ptc_app_t *c = patch_ok(b, "{\"maintenance_mode\":null,\"name\":\"hr\"}");
    CHECK(!c->maintenance_mode);
    CHECK(c->hsts);

    /* home_page followed the external root, so it follows a new external_url... */
    ptc_app_t *d = patch_ok(c, "{\"external_url\":\"https://people.example.com/hr/\"}");
    CHECK_STREQ(d->home_page, "https://people.example.com/hr/");
    CHECK_STREQ(d->ext_path, "/hr/");

    /* ...but one set by hand is kept, and must then still be on the new host. */
    ptc_app_t *e = patch_ok(d, "{\"home_page\":\"https://people.example.com/hr/start\"}");
    ptc_app_t *f = patch_ok(e, "{\"external_url\":\"https://people.example.com/\"}");
    CHECK_STREQ(f->home_page, "https://people.example.com/hr/start");
    json_t *p = load("{\"external_url\":\"https://other.example.com/\"}");
    ptc_app_t *g = NULL;
    char err[512];
    CHECK_EQ(ptc_app_patch(f, p, &ctx, &g, err, sizeof(err)), PTC_EFORMAT);
    CHECK_NULL(g);
    CHECK_CONTAINS(err, "home_page: must be on the app's external host");
    json_decref(p);

    /* Renaming and bad values are refused; a required setting cannot be removed. */
    const char *bad[][2] = {
        {"{\"name\":\"other\"}", "name: an app cannot be renamed"},
        {"{\"name\":1}", "name: an app cannot be renamed"},
        {"{\"pre_auth\":\"none\"}", "pre_auth: expected one of oidc, passthrough"},
        {"{\"internal_url\":null}", "internal_url: required key is missing"},
        {"{\"colour\":\"red\"}", "unknown key \"colour\""},
        {"[1]", "expected an object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = load(bad[i][0]);
        g = NULL;
        int rc = ptc_app_patch(f, p, &ctx, &g, err, sizeof(err));
        json_decref(p);
        if (rc != PTC_EFORMAT || g != NULL || strstr(err, bad[i][1]) == NULL) {
            ptc_test_fail(__FILE__, __LINE__, "%s: rc %d, message \"%s\"", bad[i][0], rc, err);
        }
    }
    ptc_app_unref(a);
    ptc_app_unref(b);
    ptc_app_unref(c);
    ptc_app_unref(d);
    ptc_app_unref(e);
    ptc_app_unref(f);
}

static void test_covers_and_refs(void)
{
    ptc_app_t *app = parse_ok("{" BASE ",\"external_url\":\"https://x.example.com/app/\"}", &ctx);
    CHECK(ptc_app_covers(app, "/app", 4));
    CHECK(ptc_app_covers(app, "/app/", 5));
    CHECK(ptc_app_covers(app, "/app/a/b", 8));
    CHECK(!ptc_app_covers(app, "/apple", 6));
    CHECK(!ptc_app_covers(app, "/", 1));

    /* A second reference keeps the app alive after the first is dropped. */
    const ptc_app_t *kept = ptc_app_ref(app);
    ptc_app_unref(app);
    CHECK_STREQ(kept->name, "hr");
    ptc_app_unref(kept);
    ptc_app_unref(NULL);
}

/* max_body_size: 0 (unlimited) by default, a byte count or a size string, never negative. */
static void test_max_body_size(void)
{
    ptc_app_t *app = parse_ok("{\"name\":\"hr\",\"internal_url\":\"http://h/\"}", &ctx);
    CHECK_UEQ(app->max_body_size, 0);
    ptc_app_unref(app);
    app = parse_ok("{\"name\":\"hr\",\"internal_url\":\"http://h/\",\"max_body_size\":\"10MiB\"}",
                   &ctx);
    CHECK_UEQ(app->max_body_size, 10485760);
    json_t *j = ptc_app_to_json(app);
    CHECK_EQ(json_integer_value(json_object_get(j, "max_body_size")), 10485760);
    json_decref(j);
    ptc_app_unref(app);
    app = parse_ok("{\"name\":\"hr\",\"internal_url\":\"http://h/\",\"max_body_size\":1}", &ctx);
    CHECK_UEQ(app->max_body_size, 1);
    ptc_app_unref(app);
    check_refused(__LINE__, "{\"name\":\"hr\",\"internal_url\":\"http://h/\",\"max_body_size\":-1}",
                  &ctx, "max_body_size");
    check_refused(__LINE__,
                  "{\"name\":\"hr\",\"internal_url\":\"http://h/\",\"max_body_size\":\"lots\"}",
                  &ctx, "max_body_size");
    check_refused(__LINE__,
                  "{\"name\":\"hr\",\"internal_url\":\"http://h/\",\"max_body_size\":true}", &ctx,
                  "max_body_size");
}

static void test_name_rule(void)
{
    CHECK(ptc_app_name_is_valid("a"));
    CHECK(ptc_app_name_is_valid("hr-portal-2"));
    CHECK(!ptc_app_name_is_valid(""));
    CHECK(!ptc_app_name_is_valid("Hr"));
    CHECK(!ptc_app_name_is_valid("hr.portal"));
    CHECK(!ptc_app_name_is_valid("-a"));
    char n[70];
    memset(n, 'a', 64);
    n[64] = '\0';
    CHECK(ptc_app_name_is_valid(n));
    n[64] = 'a';
    n[65] = '\0';
    CHECK(!ptc_app_name_is_valid(n));
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_defaults),
    PTC_TEST(test_every_setting_and_round_trip),
    PTC_TEST(test_refusals_name_the_field),
    PTC_TEST(test_lenient_idp),
    PTC_TEST(test_patch),
    PTC_TEST(test_covers_and_refs),
    PTC_TEST(test_max_body_size),
    PTC_TEST(test_name_rule),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
