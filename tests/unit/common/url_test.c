/* SPDX-License-Identifier: MIT */
#include "common/url.h"
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>

/* ---- ptc_url_parse ---- */

static void test_parse_full_url(void)
{
    ptc_url_t u;
    char err[256];
    CHECK_OK(ptc_url_parse("HTTPS://Hr.Example.COM:8443/app/x%2Fy?a=1&b", PTC_URL_HTTP, &u, err,
                           sizeof(err)));
    CHECK_STREQ(u.scheme, "https");
    CHECK_STREQ(u.host, "hr.example.com");
    CHECK_EQ(u.host_type, PTC_URL_HOST_NAME);
    CHECK_EQ(u.port, 8443);
    CHECK(u.has_port);
    CHECK_STREQ(u.path, "/app/x%2Fy"); /* kept as written */
    CHECK_STREQ(u.query, "a=1&b");
    CHECK_NULL(u.user);
    CHECK_NULL(u.password);
    ptc_url_dispose(&u);
    ptc_url_dispose(&u); /* twice is fine */
}

static void test_parse_defaults(void)
{
    ptc_url_t u;
    char err[256];
    CHECK_OK(ptc_url_parse("http://example.com", PTC_URL_HTTP, &u, err, sizeof(err)));
    CHECK_EQ(u.port, 80);
    CHECK(!u.has_port);
    CHECK_STREQ(u.path, "/"); /* never empty */
    CHECK_NULL(u.query);
    ptc_url_dispose(&u);

    CHECK_OK(ptc_url_parse("https://example.com/?", PTC_URL_HTTP, &u, err, sizeof(err)));
    CHECK_EQ(u.port, 443);
    CHECK_STREQ(u.query, ""); /* a bare '?' is an empty query, not none */
    ptc_url_dispose(&u);

    /* An empty port means the default (RFC 3986 §3.2.3). */
    CHECK_OK(ptc_url_parse("http://h:/p", PTC_URL_HTTP, &u, err, sizeof(err)));
    CHECK_EQ(u.port, 80);
    CHECK(!u.has_port);
    CHECK_STREQ(u.path, "/p");
    ptc_url_dispose(&u);

    /* ws and wss are known schemes unless the caller asks for http only. */
    CHECK_OK(ptc_url_parse("wss://h/socket", 0, &u, err, sizeof(err)));
    CHECK_EQ(u.port, 443);
    ptc_url_dispose(&u);
    CHECK_EQ(ptc_url_parse("wss://h/socket", PTC_URL_HTTP, &u, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "http or https");
}

static void test_parse_ip_hosts(void)
{
    ptc_url_t u;
    char err[256];
    CHECK_OK(ptc_url_parse("http://[2001:DB8:0:0::1]:8080/a", PTC_URL_HTTP, &u, err, sizeof(err)));
    CHECK_STREQ(u.host, "2001:db8::1"); /* canonical, no brackets */
    CHECK_EQ(u.host_type, PTC_URL_HOST_IPV6);
    CHECK_EQ(u.port, 8080);
    ptc_url_dispose(&u);

    CHECK_OK(ptc_url_parse("http://10.0.0.5:8080/app", PTC_URL_HTTP, &u, err, sizeof(err)));
    CHECK_STREQ(u.host, "10.0.0.5");
    CHECK_EQ(u.host_type, PTC_URL_HOST_IPV4);
    CHECK_STREQ(u.path, "/app");
    ptc_url_dispose(&u);
}

static void test_parse_userinfo(void)
{
    ptc_url_t u;
    char err[256];
    CHECK_EQ(ptc_url_parse("http://bob:pw@proxy:3128", PTC_URL_HTTP, &u, err, sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "user information");
    CHECK_NULL(u.scheme); /* zeroed on error */

    CHECK_OK(ptc_url_parse("http://us%40er:p%3Ass@proxy:3128", PTC_URL_HTTP | PTC_URL_USERINFO, &u,
                           err, sizeof(err)));
    CHECK_STREQ(u.user, "us@er");
    CHECK_STREQ(u.password, "p:ss");
    CHECK_STREQ(u.host, "proxy");
    CHECK_EQ(u.port, 3128);
    ptc_url_dispose(&u);

    CHECK_OK(
        ptc_url_parse("http://bob@proxy", PTC_URL_HTTP | PTC_URL_USERINFO, &u, err, sizeof(err)));
    CHECK_STREQ(u.user, "bob");
    CHECK_NULL(u.password);
    ptc_url_dispose(&u);

    CHECK_EQ(
        ptc_url_parse("http://b%00b@proxy", PTC_URL_HTTP | PTC_URL_USERINFO, &u, err, sizeof(err)),
        PTC_EFORMAT);
}

static void test_parse_refusals(void)
{
    static const struct {
        const char *url;
        const char *why;
    } bad[] = {
        {"ftp://example.com/", "scheme"},
        {"/relative/path", "absolute"},
        {"example.com/x", "absolute"},
        {"https://x/#frag", "fragment"},
        {"https://x/#", "fragment"},
        {"https:///x", "host"},
        {"https:x", "host"},
        {"https://:443/", "host"},
        {"https://[v1.fe]/", "IPvFuture"},
        {"https://ex ample.com/", "syntax"},
        {"https://-bad.example.com/", "host name"},
        {"https://bad-.example.com/", "host name"},
        {"https://a..b/", "host name"},
        {"https://1.2.3/", "host name"},
        {"https://ex%41mple.com/", "host name"},
        {"https://example.com./", "host name"},
        {"https://x:0/", "port"},
        {"https://x:65536/", "port"},
        {"https://x:123456/", "port"},
        {" https://x/", "syntax"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ptc_url_t u;
        char err[256];
        int rc = ptc_url_parse(bad[i].url, PTC_URL_HTTP, &u, err, sizeof(err));
        if (rc != PTC_EFORMAT) {
            ptc_test_fail(__FILE__, __LINE__, "%s: expected PTC_EFORMAT, got %d", bad[i].url, rc);
        }
        CHECK_CONTAINS(err, bad[i].why);
        CHECK_NULL(u.host);
    }

    /* 64-character labels and names over 253 bytes are not host names. */
    char label[80];
    memset(label, 'a', 64);
    label[64] = '\0';
    CHECK(!ptc_url_host_is_valid_name(label));
    label[63] = '\0';
    CHECK(ptc_url_host_is_valid_name(label));
    char longname[300];
    size_t o = 0;
    for (int i = 0; i < 32; i++) {
        memcpy(longname + o, "abcdefg.", 8);
        o += 8;
    }
    memcpy(longname + o, "com", 4);
    CHECK(!ptc_url_host_is_valid_name(longname));
    CHECK(ptc_url_host_is_valid_name("my_host.corp"));

    char *huge = malloc(PTC_URL_MAX_LEN + 100);
    memcpy(huge, "https://x/", 10);
    memset(huge + 10, 'a', PTC_URL_MAX_LEN);
    huge[PTC_URL_MAX_LEN + 10] = '\0';
    ptc_url_t u;
    char err[256];
    CHECK_EQ(ptc_url_parse(huge, PTC_URL_HTTP, &u, err, sizeof(err)), PTC_ELIMIT);
    free(huge);
}

/* ---- authorities ---- */

static void test_authority(void)
{
    char host[PTC_URL_HOST_CAP];
    uint16_t port;
    const char *in = "Example.COM:8443";
    CHECK_OK(ptc_url_parse_authority(in, strlen(in), host, sizeof(host), &port));
    CHECK_STREQ(host, "example.com");
    CHECK_EQ(port, 8443);
    in = "example.com";
    CHECK_OK(ptc_url_parse_authority(in, strlen(in), host, sizeof(host), &port));
    CHECK_EQ(port, 0);
    in = "example.com.:80";
    CHECK_OK(ptc_url_parse_authority(in, strlen(in), host, sizeof(host), &port));
    CHECK_STREQ(host, "example.com");
    in = "[2001:DB8:0:0::1]";
    CHECK_OK(ptc_url_parse_authority(in, strlen(in), host, sizeof(host), &port));
    CHECK_STREQ(host, "2001:db8::1");
    in = "[::1]:443";
    CHECK_OK(ptc_url_parse_authority(in, strlen(in), host, sizeof(host), &port));
    CHECK_STREQ(host, "::1");
    CHECK_EQ(port, 443);
    in = "127.0.0.1:80";
    CHECK_OK(ptc_url_parse_authority(in, strlen(in), host, sizeof(host), &port));
    CHECK_STREQ(host, "127.0.0.1");
    /* Only the given length counts. */
    CHECK_OK(ptc_url_parse_authority("a.example:1junk", 11, host, sizeof(host), &port));
    CHECK_STREQ(host, "a.example");
    CHECK_EQ(port, 1);

    const char *bad[] = {"",       ":80",      "a:b:c", "[::1", "[::1]x", "ex ample",
                         "host:0", "host:abc", "[zz]",  "::1",  "a/b",    "1.2.3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = ptc_url_parse_authority(bad[i], strlen(bad[i]), host, sizeof(host), &port);
        if (rc != PTC_EFORMAT) {
            ptc_test_fail(__FILE__, __LINE__, "\"%s\": expected PTC_EFORMAT, got %d", bad[i], rc);
        }
    }
    char small[4];
    CHECK_EQ(ptc_url_parse_authority("abcdef", 6, small, sizeof(small), &port), PTC_EFORMAT);

    char out[64];
    CHECK_OK(ptc_url_format_authority("::1", 443, out, sizeof(out)));
    CHECK_STREQ(out, "[::1]:443");
    CHECK_OK(ptc_url_format_authority("edge.example.com", 8443, out, sizeof(out)));
    CHECK_STREQ(out, "edge.example.com:8443");
    CHECK_EQ(ptc_url_format_authority("edge.example.com", 8443, out, 8), PTC_ELIMIT);
}

/* ---- RFC 3986 §5.4 reference resolution ---- */

static void test_resolve_rfc3986_examples(void)
{
    static const char *const cases[][2] = {
        /* §5.4.1 normal examples */
        {"g:h", "g:h"},
        {"g", "http://a/b/c/g"},
        {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},
        {"/g", "http://a/g"},
        {"//g", "http://g"},
        {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},
        {"#s", "http://a/b/c/d;p?q#s"},
        {"g#s", "http://a/b/c/g#s"},
        {"g?y#s", "http://a/b/c/g?y#s"},
        {";x", "http://a/b/c/;x"},
        {"g;x", "http://a/b/c/g;x"},
        {"g;x?y#s", "http://a/b/c/g;x?y#s"},
        {"", "http://a/b/c/d;p?q"},
        {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},
        {"..", "http://a/b/"},
        {"../", "http://a/b/"},
        {"../g", "http://a/b/g"},
        {"../..", "http://a/"},
        {"../../", "http://a/"},
        {"../../g", "http://a/g"},
        /* §5.4.2 abnormal examples */
        {"../../../g", "http://a/g"},
        {"../../../../g", "http://a/g"},
        {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},
        {"g.", "http://a/b/c/g."},
        {".g", "http://a/b/c/.g"},
        {"g..", "http://a/b/c/g.."},
        {"..g", "http://a/b/c/..g"},
        {"./../g", "http://a/b/g"},
        {"./g/.", "http://a/b/c/g/"},
        {"g/./h", "http://a/b/c/g/h"},
        {"g/../h", "http://a/b/c/h"},
        {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
        {"g;x=1/../y", "http://a/b/c/y"},
        {"g?y/./x", "http://a/b/c/g?y/./x"},
        {"g?y/../x", "http://a/b/c/g?y/../x"},
        {"g#s/./x", "http://a/b/c/g#s/./x"},
        {"g#s/../x", "http://a/b/c/g#s/../x"},
        {"http:g", "http:g"}, /* strict parsers */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        int rc = ptc_url_resolve("http://a/b/c/d;p?q", cases[i][0], &out);
        if (rc != 0 || out == NULL || strcmp(out, cases[i][1]) != 0) {
            ptc_test_fail(__FILE__, __LINE__, "\"%s\": expected \"%s\", got \"%s\" (rc %d)",
                          cases[i][0], cases[i][1], out != NULL ? out : "(null)", rc);
        }
        free(out);
    }
    char *out = NULL;
    CHECK_EQ(ptc_url_resolve("relative/base", "g", &out), PTC_EFORMAT);
    CHECK_NULL(out);
    CHECK_EQ(ptc_url_resolve("http://a/", "a b", &out), PTC_EFORMAT);
}

/* ---- request-path normalisation ---- */

static void check_norm(int line, const char *in, const char *want)
{
    char *out = NULL;
    size_t plen = 0;
    int rc = ptc_url_normalize_target(in, strlen(in), &out, &plen);
    if (rc != 0 || strcmp(out, want) != 0) {
        ptc_test_fail(__FILE__, line, "\"%s\": expected \"%s\", got \"%s\" (rc %d)", in, want,
                      out != NULL ? out : "(null)", rc);
    }
    const char *q = strchr(want, '?');
    size_t want_plen = q != NULL ? (size_t)(q - want) : strlen(want);
    if (plen != want_plen) {
        ptc_test_fail(__FILE__, line, "\"%s\": path length %zu, expected %zu", in, plen, want_plen);
    }
    free(out);
}

static void test_normalize_dot_segments(void)
{
    /* RFC 3986 §5.2.4's examples and the §5.4 paths, as absolute request paths. */
    check_norm(__LINE__, "/a/b/c/./../../g", "/a/g");
    check_norm(__LINE__, "/b/c/./g", "/b/c/g");
    check_norm(__LINE__, "/b/c/g/", "/b/c/g/");
    check_norm(__LINE__, "/b/c/.", "/b/c/");
    check_norm(__LINE__, "/b/c/..", "/b/");
    check_norm(__LINE__, "/b/c/../..", "/");
    check_norm(__LINE__, "/b/c/../../../g", "/g");
    check_norm(__LINE__, "/./g", "/g");
    check_norm(__LINE__, "/../g", "/g");
    check_norm(__LINE__, "/..", "/");
    check_norm(__LINE__, "/b/c/g.", "/b/c/g.");
    check_norm(__LINE__, "/b/c/.g", "/b/c/.g");
    check_norm(__LINE__, "/b/c/g..", "/b/c/g..");
    check_norm(__LINE__, "/b/c/..g", "/b/c/..g");
    check_norm(__LINE__, "/b/c/./g/.", "/b/c/g/");
    check_norm(__LINE__, "/b/c/g/./h", "/b/c/g/h");
    check_norm(__LINE__, "/b/c/g/../h", "/b/c/h");
    check_norm(__LINE__, "/b/c/g;x=1/./y", "/b/c/g;x=1/y");
    check_norm(__LINE__, "/b/c/g;x=1/../y", "/b/c/y");
    check_norm(__LINE__, "/", "/");
    check_norm(__LINE__, "//admin", "//admin");
    /* The query is not touched, dot segments included. */
    check_norm(__LINE__, "/b/c/g?y/./x", "/b/c/g?y/./x");
    check_norm(__LINE__, "/b/./c?y/../x&%2e%2e=1", "/b/c?y/../x&%2e%2e=1");
    check_norm(__LINE__, "/a?", "/a?");
}

static void test_normalize_encoded_tricks(void)
{
    check_norm(__LINE__, "/app/../admin", "/admin");
    check_norm(__LINE__, "/app/%2e%2e/admin", "/admin");
    check_norm(__LINE__, "/app/%2E%2e/admin", "/admin");
    check_norm(__LINE__, "/app/.%2e/admin", "/admin");
    check_norm(__LINE__, "/app/%2e./admin", "/admin");
    check_norm(__LINE__, "/app/%2e/x", "/app/x");
    check_norm(__LINE__, "/app/../../../etc/passwd", "/etc/passwd");
    /* An encoded slash is data: it stays encoded and never makes a segment. */
    check_norm(__LINE__, "/app/%2fadmin", "/app/%2Fadmin");
    check_norm(__LINE__, "/app/..%2fadmin", "/app/..%2Fadmin");
    check_norm(__LINE__, "/app/%2e%2e%2fadmin", "/app/..%2Fadmin");
    check_norm(__LINE__, "/app/%2e%2e%5cadmin", "/app/..%5Cadmin");
    /* Double encoding is decoded once only. */
    check_norm(__LINE__, "/app/%252e%252e/admin", "/app/%252e%252e/admin");
    /* Unreserved escapes are decoded, others upper-cased. */
    check_norm(__LINE__, "/%7Euser/%41%62%2d%5f", "/~user/Ab-_");
    check_norm(__LINE__, "/a%3fb%3a", "/a%3Fb%3A");
    /* Bytes browsers would have encoded are encoded. */
    check_norm(__LINE__, "/a b", "/a%20b");
    check_norm(__LINE__, "/caf\xc3\xa9", "/caf%C3%A9");
    check_norm(__LINE__, "/a|b^c`{d}[e]\"<>", "/a%7Cb%5Ec%60%7Bd%7D%5Be%5D%22%3C%3E");
    check_norm(__LINE__, "/a\\..\\b", "/a%5C..%5Cb");
    check_norm(__LINE__, "/x/;a=b,c/!$&'()*+:@~", "/x/;a=b,c/!$&'()*+:@~");
}

static void test_normalize_refusals(void)
{
    static const struct {
        const char *in;
        size_t len;
    } bad[] = {
        {"", 0},       {"app", 3},     {"*", 1},      {"http://x/", 9}, {"/a\0b", 4},
        {"/a?b\0", 5}, {"/a%zz", 5},   {"/a%2", 4},   {"/a%", 3},       {"/a%g1", 5},
        {"/a%00b", 6}, {"/a\r\nb", 5}, {"/a\x7f", 3}, {"/a#frag", 7},   {"/a\tb", 4},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = NULL;
        int rc = ptc_url_normalize_target(bad[i].in, bad[i].len, &out, NULL);
        if (rc != PTC_EFORMAT || out != NULL) {
            ptc_test_fail(__FILE__, __LINE__, "case %zu: expected PTC_EFORMAT, got %d", i, rc);
        }
    }
    /* Only the given length is read: the '%' cut off at the end is an error, the text after
     * it is not looked at. */
    char *out = NULL;
    CHECK_EQ(ptc_url_normalize_target("/ab%41", 4, &out, NULL), PTC_EFORMAT);
    CHECK_OK(ptc_url_normalize_target("/ab%41", 3, &out, NULL));
    CHECK_STREQ(out, "/ab");
    free(out);
}

/* ---- prefixes ---- */

static bool under(const char *path, const char *prefix)
{
    return ptc_url_path_under(path, strlen(path), prefix);
}

static void test_path_under(void)
{
    CHECK(under("/app", "/app/"));
    CHECK(under("/app/", "/app/"));
    CHECK(under("/app/x/y", "/app/"));
    CHECK(!under("/apple", "/app/"));
    CHECK(!under("/ap", "/app/"));
    CHECK(!under("/", "/app/"));
    CHECK(!under("/App/x", "/app/")); /* case-sensitive */
    CHECK(!under("/admin", "/app/"));
    CHECK(under("/app/x", "/app")); /* a prefix without the slash works segment-wise too */
    CHECK(!under("/apple", "/app"));
    CHECK(under("/", "/"));
    CHECK(under("/anything/at/all", "/"));
    CHECK(under("/a/b/c", "/a/b/"));
    CHECK(!under("/a/bc", "/a/b/"));
    /* Only path_len bytes of the path count. */
    CHECK(ptc_url_path_under("/apple", 4, "/app/"));
    CHECK(ptc_url_path_under("/app/x", 4, "/app/"));

    /* Normalise first, then compare: the traversal leaves the prefix. */
    char *out = NULL;
    size_t plen = 0;
    const char *t = "/app/%2e%2e/admin";
    CHECK_OK(ptc_url_normalize_target(t, strlen(t), &out, &plen));
    CHECK(!ptc_url_path_under(out, plen, "/app/"));
    free(out);
}

static void test_default_ports(void)
{
    CHECK_EQ(ptc_url_default_port("http"), 80);
    CHECK_EQ(ptc_url_default_port("https"), 443);
    CHECK_EQ(ptc_url_default_port("ws"), 80);
    CHECK_EQ(ptc_url_default_port("wss"), 443);
    CHECK_EQ(ptc_url_default_port("gopher"), 0);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_parse_full_url),
    PTC_TEST(test_parse_defaults),
    PTC_TEST(test_parse_ip_hosts),
    PTC_TEST(test_parse_userinfo),
    PTC_TEST(test_parse_refusals),
    PTC_TEST(test_authority),
    PTC_TEST(test_resolve_rfc3986_examples),
    PTC_TEST(test_normalize_dot_segments),
    PTC_TEST(test_normalize_encoded_tricks),
    PTC_TEST(test_normalize_refusals),
    PTC_TEST(test_path_under),
    PTC_TEST(test_default_ports),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
