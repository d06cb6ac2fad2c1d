/* SPDX-License-Identifier: MIT */
#include "edge/translate.h"
#include "tests/support/test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The apps most cases use: a prefix mapped to a prefix, a prefix to the root, the root (on
 * the default port) to a prefix. */
#define INT_APP "http://hr.corp.local:8080/app/"
#define EXT_HR "https://apps.example.com/hr/"
#define EXT_ROOT "https://hr.apps.example.com/"
#define INT_ROOT "http://hr.corp.local/"

static ptc_translate_t *make(const char *internal_url, const char *external_url)
{
    ptc_translate_t *t = NULL;
    int rc = ptc_translate_new(internal_url, external_url, &t);
    if (rc != 0 || t == NULL) {
        ptc_test_fail(__FILE__, __LINE__, "ptc_translate_new(%s, %s) = %d", internal_url,
                      external_url, rc);
    }
    return t;
}

/* Translates one header value and compares it with `want` (NULL: must stay unchanged). */
static void check_header(int line, const ptc_translate_t *t, const char *name, const char *value,
                         const char *want)
{
    ptc_buf_t out;
    ptc_buf_init(&out);
    bool changed = true;
    int rc = ptc_translate_header(t, ptc_slice_str(name), ptc_slice_str(value), &out, &changed);
    if (rc != 0) {
        ptc_test_fail(__FILE__, line, "%s: %s -> error %d", name, value, rc);
    }
    const char *expect = want != NULL ? want : value;
    if (out.len != strlen(expect) || memcmp(ptc_buf_data(&out), expect, out.len) != 0) {
        ptc_test_fail(__FILE__, line, "%s: %s\n  got  %.*s\n  want %s", name, value, (int)out.len,
                      (const char *)ptc_buf_data(&out), expect);
    }
    if (changed != (strcmp(expect, value) != 0)) {
        ptc_test_fail(__FILE__, line, "%s: %s: changed=%d", name, value, (int)changed);
    }
    ptc_buf_dispose(&out);
}

#define LOC(t, v, w) check_header(__LINE__, (t), "Location", (v), (w))
#define HDR(t, n, v, w) check_header(__LINE__, (t), (n), (v), (w))

/* Moves everything queued in q to the end of a growing byte string. */
static void drain(ptc_chunkq_t *q, uint8_t **buf, size_t *len, size_t *cap)
{
    ptc_slice_t sl[16];
    size_t cnt;
    while ((cnt = ptc_chunkq_peek(q, sl, 16)) > 0) {
        for (size_t i = 0; i < cnt; i++) {
            if (*len + sl[i].len > *cap) {
                *cap = (*len + sl[i].len) * 2;
                *buf = realloc(*buf, *cap);
                CHECK_NOT_NULL(*buf);
            }
            memcpy(*buf + *len, sl[i].ptr, sl[i].len);
            *len += sl[i].len;
            ptc_chunkq_consume(q, sl[i].len);
        }
    }
}

/*
 * Runs a body through a fresh state, cut at the `cut_cnt` ascending offsets in `cuts`, and
 * returns the output (heap; NUL-terminated for convenience) with its length. Checks the
 * held-back bound after every feed.
 */
static uint8_t *run_cuts(ptc_translate_t *t, const uint8_t *in, size_t len, const size_t *cuts,
                         size_t cut_cnt, size_t *out_len)
{
    ptc_translate_body_t *s = ptc_translate_body_new(t);
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 0);
    uint8_t *buf = NULL;
    size_t n = 0;
    size_t cap = 0;
    size_t at = 0;
    for (size_t i = 0; i <= cut_cnt; i++) {
        size_t end = i < cut_cnt ? cuts[i] : len;
        CHECK_OK(ptc_translate_body_feed(s, in + at, end - at, &q));
        CHECK_LE(ptc_translate_body_held(s), ptc_translate_max_held(t));
        at = end;
    }
    CHECK_OK(ptc_translate_body_finish(s, &q));
    CHECK_EQ(ptc_translate_body_held(s), 0);
    drain(&q, &buf, &n, &cap);
    ptc_chunkq_dispose(&q);
    ptc_translate_body_free(s);
    buf = realloc(buf, n + 1);
    CHECK_NOT_NULL(buf);
    buf[n] = '\0';
    *out_len = n;
    return buf;
}

static char *run_whole(ptc_translate_t *t, const char *in)
{
    size_t n;
    return (char *)run_cuts(t, (const uint8_t *)in, strlen(in), NULL, 0, &n);
}

static void check_body(int line, ptc_translate_t *t, const char *in, const char *want)
{
    char *got = run_whole(t, in);
    if (strcmp(got, want) != 0) {
        ptc_test_fail(__FILE__, line, "body\n  in   %s\n  got  %s\n  want %s", in, got, want);
    }
    free(got);
}

#define BODY(t, in, want) check_body(__LINE__, (t), (in), (want))

/* ---- construction ---- */

static void test_new_refuses_bad_urls(void)
{
    ptc_translate_t *t = (ptc_translate_t *)1;
    CHECK_EQ(ptc_translate_new("ftp://h/", EXT_HR, &t), PTC_EFORMAT);
    CHECK_NULL(t);
    CHECK_EQ(ptc_translate_new(INT_APP, "/relative/", &t), PTC_EFORMAT);
    CHECK_EQ(ptc_translate_new("http://h/app/?q=1", EXT_HR, &t), PTC_EFORMAT);
    CHECK_EQ(ptc_translate_new(INT_APP, "https://x/#frag", &t), PTC_EFORMAT);
    CHECK_EQ(ptc_translate_new("http://", EXT_HR, &t), PTC_EFORMAT);
    CHECK_NULL(t);

    /* A path without its trailing '/' is a prefix all the same. */
    t = make("http://hr.corp.local:8080/app", "https://apps.example.com/hr");
    LOC(t, "http://hr.corp.local:8080/app/x", "https://apps.example.com/hr/x");
    LOC(t, "/app/x", "/hr/x");
    LOC(t, "/apple", NULL);
    ptc_translate_unref(t);
}

/* ---- Location and Content-Location ---- */

static void test_location_internal_origin(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    LOC(t, "http://hr.corp.local:8080/app/x?y=1#z", "https://apps.example.com/hr/x?y=1#z");
    LOC(t, "http://hr.corp.local:8080/app/", "https://apps.example.com/hr/");
    LOC(t, "http://hr.corp.local:8080/app", "https://apps.example.com/hr");
    LOC(t, "http://hr.corp.local:8080/app?next=1", "https://apps.example.com/hr?next=1");
    /* Scheme and host are case-insensitive, a port may have leading zeros. */
    LOC(t, "HTTP://HR.Corp.LOCAL:8080/app/a", "https://apps.example.com/hr/a");
    LOC(t, "http://hr.corp.local:08080/app/a", "https://apps.example.com/hr/a");
    /* The path is case-sensitive. */
    LOC(t, "http://hr.corp.local:8080/APP/a", NULL);
    HDR(t, "Content-Location", "http://hr.corp.local:8080/app/doc/1",
        "https://apps.example.com/hr/doc/1");
    HDR(t, "content-location", "/app/doc/1", "/hr/doc/1");
    HDR(t, "LOCATION", "/app/x", "/hr/x");
    ptc_translate_unref(t);
}

static void test_location_leaves_other_urls_alone(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    LOC(t, "http://hr.corp.local:8080/", NULL);      /* outside the published path */
    LOC(t, "http://hr.corp.local:8080/apple", NULL); /* segment-wise */
    LOC(t, "http://hr.corp.local:8080/other/app/", NULL);
    LOC(t, "http://hr.corp.local:8081/app/x", NULL); /* another port */
    LOC(t, "http://hr.corp.local/app/x", NULL);      /* the default port is not 8080 */
    LOC(t, "https://hr.corp.local:8080/app/x", NULL);
    LOC(t, "http://hr.corp.local.evil.com:8080/app/x", NULL);
    LOC(t, "http://evil.com/app/x", NULL);
    LOC(t, "http://user@hr.corp.local:8080/app/x", NULL);
    LOC(t, "http://hr.corp.local:8080@evil.com/app/x", NULL);
    LOC(t, "http://hr.corp.local:8080\\app\\x", NULL);
    LOC(t, "http://hr.corp.local:99999/app/x", NULL);
    LOC(t, "http://hr.corp.local:80a80/app/x", NULL);
    LOC(t, "http://hr.corp.local:/app/x", NULL); /* empty port: 80 */
    LOC(t, "http:/hr.corp.local:8080/app/x", NULL);
    LOC(t, "https://apps.example.com/hr/x", NULL);
    LOC(t, "x/y", NULL);
    LOC(t, "../app/x", NULL);
    LOC(t, "app/x", NULL);
    LOC(t, "?q=1", NULL);
    LOC(t, "", NULL);
    LOC(t, "/apple", NULL);
    LOC(t, "/other", NULL);
    LOC(t, "mailto:hr@corp.local", NULL);
    CHECK(ptc_translate_header_applies(ptc_slice_str("Location")));
    CHECK(ptc_translate_header_applies(ptc_slice_str("content-location")));
    CHECK(ptc_translate_header_applies(ptc_slice_str("REFRESH")));
    CHECK(ptc_translate_header_applies(ptc_slice_str("Set-Cookie")));
    CHECK(!ptc_translate_header_applies(ptc_slice_str("Link")));
    CHECK(!ptc_translate_header_applies(ptc_slice_str("Set-Cookie2")));
    CHECK(!ptc_translate_header_applies(ptc_slice_str("")));
    /* Headers that are not translated, even with an internal URL. */
    HDR(t, "Link", "<http://hr.corp.local:8080/app/x>; rel=next", NULL);
    HDR(t, "X-Location", "http://hr.corp.local:8080/app/x", NULL);
    ptc_translate_unref(t);
}

static void test_location_scheme_relative_and_paths(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    LOC(t, "//hr.corp.local:8080/app/x", "//apps.example.com/hr/x");
    LOC(t, "//HR.CORP.LOCAL:8080/app", "//apps.example.com/hr");
    LOC(t, "//hr.corp.local/app/x", NULL); /* port 80 for http */
    LOC(t, "//evil.com/app/x", NULL);
    LOC(t, "/app/x", "/hr/x");
    LOC(t, "/app/", "/hr/");
    LOC(t, "/app", "/hr");
    LOC(t, "/app?q", "/hr?q");
    LOC(t, "/app#f", "/hr#f");
    ptc_translate_unref(t);
}

static void test_location_default_ports(void)
{
    /* Internal on the default port: written or not, and empty ("host:"), all match. */
    ptc_translate_t *t = make(INT_ROOT, EXT_HR);
    LOC(t, "http://hr.corp.local/x", "https://apps.example.com/hr/x");
    LOC(t, "http://hr.corp.local:80/x", "https://apps.example.com/hr/x");
    LOC(t, "http://hr.corp.local:/x", "https://apps.example.com/hr/x");
    LOC(t, "http://hr.corp.local:8080/x", NULL);
    LOC(t, "//hr.corp.local:80/x", "//apps.example.com/hr/x");
    LOC(t, "//hr.corp.local/x", "//apps.example.com/hr/x");
    ptc_translate_unref(t);

    t = make("https://hr.corp.local:443/", "https://hr.example.com:443/");
    LOC(t, "https://hr.corp.local/x", "https://hr.example.com/x");
    LOC(t, "https://hr.corp.local:443/x", "https://hr.example.com/x");
    LOC(t, "http://hr.corp.local/x", NULL);
    ptc_translate_unref(t);

    /* An external port that is not the default is written. */
    t = make(INT_APP, "https://apps.example.com:8443/hr/");
    LOC(t, "http://hr.corp.local:8080/app/x", "https://apps.example.com:8443/hr/x");
    LOC(t, "//hr.corp.local:8080/app/x", "//apps.example.com:8443/hr/x");
    ptc_translate_unref(t);
}

static void test_location_prefix_mapping_both_ways(void)
{
    /* Internal root -> external prefix. */
    ptc_translate_t *t = make(INT_ROOT, EXT_HR);
    LOC(t, "http://hr.corp.local", "https://apps.example.com/hr/");
    LOC(t, "http://hr.corp.local?a=1", "https://apps.example.com/hr/?a=1");
    LOC(t, "http://hr.corp.local/", "https://apps.example.com/hr/");
    LOC(t, "/", "/hr/");
    LOC(t, "/x/y?z", "/hr/x/y?z");
    ptc_translate_unref(t);

    /* Internal prefix -> external root. */
    t = make(INT_APP, EXT_ROOT);
    LOC(t, "http://hr.corp.local:8080/app/x", "https://hr.apps.example.com/x");
    LOC(t, "http://hr.corp.local:8080/app", "https://hr.apps.example.com/");
    LOC(t, "http://hr.corp.local:8080/app?q", "https://hr.apps.example.com/?q");
    LOC(t, "/app/x", "/x");
    LOC(t, "/app/", "/");
    LOC(t, "/app", "/");
    LOC(t, "/app?q", "/?q");
    LOC(t, "/other", NULL);
    /* A path that would read as another host is written as an absolute external URL. */
    LOC(t, "/app//evil.com/x", "https://hr.apps.example.com//evil.com/x");
    LOC(t, "/app/\\evil.com", "https://hr.apps.example.com/\\evil.com");
    LOC(t, "http://hr.corp.local:8080/app//evil.com", "https://hr.apps.example.com//evil.com");
    ptc_translate_unref(t);

    /* Root -> root, https both sides, other host. */
    t = make("https://intra.corp.local/", "https://intra.example.com/");
    LOC(t, "https://intra.corp.local/a/b", "https://intra.example.com/a/b");
    LOC(t, "/a/b", NULL); /* same path on both sides: unchanged */
    LOC(t, "//intra.corp.local/a", "//intra.example.com/a");
    ptc_translate_unref(t);

    /* Nested prefixes. */
    t = make("http://10.1.2.3:8080/tools/hr/", "https://apps.example.com/people/");
    LOC(t, "http://10.1.2.3:8080/tools/hr/list", "https://apps.example.com/people/list");
    LOC(t, "/tools/hr/list", "/people/list");
    LOC(t, "/tools/x", NULL);
    ptc_translate_unref(t);
}

static void test_location_ipv6_internal(void)
{
    ptc_translate_t *t = make("http://[fd00::1]:8080/app/", EXT_HR);
    LOC(t, "http://[FD00::1]:8080/app/x", "https://apps.example.com/hr/x");
    LOC(t, "//[fd00::1]:8080/app/x", "//apps.example.com/hr/x");
    LOC(t, "http://[fd00::2]:8080/app/x", NULL);
    LOC(t, "http://[fd00::1/app/x", NULL);
    LOC(t, "http://[fd00::1]x:8080/app/x", NULL);
    LOC(t, "http://[fd00::1]/app/x", NULL); /* port 80 */
    ptc_translate_unref(t);
}

/* ---- Refresh ---- */

static void test_refresh_forms(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    const char *r = "Refresh";
    HDR(t, r, "5; url=http://hr.corp.local:8080/app/x", "5; url=https://apps.example.com/hr/x");
    HDR(t, r, "5;URL=http://hr.corp.local:8080/app/x", "5;URL=https://apps.example.com/hr/x");
    HDR(t, r, "0;URL='/app/x'", "0;URL='/hr/x'");
    HDR(t, r, "3, url=\"//hr.corp.local:8080/app/\"", "3, url=\"//apps.example.com/hr/\"");
    HDR(t, r, "1; http://hr.corp.local:8080/app/y", "1; https://apps.example.com/hr/y");
    HDR(t, r, "  10 ;  url =  /app/z  ", "  10 ;  url =  /hr/z  ");
    HDR(t, r, "2.5; url='/app/q'; junk", "2.5; url='/hr/q'; junk");
    HDR(t, r, "5; url='/app/unterminated", "5; url='/hr/unterminated");
    HDR(t, r, "5", NULL);
    HDR(t, r, "5;", NULL);
    HDR(t, r, "5; url=", NULL);
    HDR(t, r, "5; url=http://other.example/app/", NULL);
    HDR(t, r, "5; url=/apple", NULL);
    HDR(t, r, "5; urlx=/app/", NULL); /* "urlx=/app/" is the URL: relative, left alone */
    ptc_translate_unref(t);
}

/* ---- Set-Cookie ---- */

static void test_set_cookie_domain_and_path(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    const char *c = "Set-Cookie";
    HDR(t, c, "sid=1; Path=/app; Domain=hr.corp.local; HttpOnly",
        "sid=1; Path=/hr; Domain=apps.example.com; HttpOnly");
    /* Any order, any case, a parent domain, a path below the prefix. */
    HDR(t, c, "sid=1; domain=.corp.local; path=/app/sub; Secure",
        "sid=1; domain=apps.example.com; path=/hr/sub; Secure");
    HDR(t, c, "a=b; Secure; DOMAIN=.HR.CORP.LOCAL; Max-Age=60; PATH=/",
        "a=b; Secure; DOMAIN=apps.example.com; Max-Age=60; PATH=/hr");
    HDR(t, c, "a=b;Path=/app/x;Domain=hr.corp.local", "a=b;Path=/hr/x;Domain=apps.example.com");
    /* The prefix with its slash keeps the slash (a cookie for the app's folder). */
    HDR(t, c, "a=b; Path=/app/", "a=b; Path=/hr/");
    HDR(t, c, "a=b; Path = /app/ ; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
        "a=b; Path = /hr/ ; Expires=Wed, 21 Oct 2015 07:28:00 GMT");
    HDR(t, c, "a=b; Domain=local", "a=b; Domain=apps.example.com");
    /* Not ours. */
    HDR(t, c, "a=b; Domain=example.org; Path=/other", NULL);
    HDR(t, c, "a=b; Domain=corp.local.evil; Path=/apple", NULL);
    HDR(t, c, "a=b; Domain=r.corp.local", NULL);      /* not a label boundary */
    HDR(t, c, "a=b; Domain=p.corp.local", NULL);      /* a sibling */
    HDR(t, c, "a=b; Domain=x.hr.corp.local", NULL);   /* a child */
    HDR(t, c, "a=b; Domain=\"hr.corp.local\"", NULL); /* quoted: not a domain */
    HDR(t, c, "a=b; Domain=; Path=", NULL);
    HDR(t, c, "a=b; Path=/ap", NULL);
    HDR(t, c, "a=b; Path=app", NULL);
    /* The cookie pair is never an attribute, whatever it looks like. */
    HDR(t, c, "Path=/app; Max-Age=3", NULL);
    HDR(t, c, "x=Domain=hr.corp.local", NULL);
    HDR(t, c, "Domain=hr.corp.local; Path=/app", "Domain=hr.corp.local; Path=/hr");
    /* Other attributes that merely contain the words. */
    HDR(t, c, "a=b; XDomain=hr.corp.local; Pathx=/app", NULL);
    ptc_translate_unref(t);

    /* Prefix to root, and root to prefix. */
    t = make(INT_APP, EXT_ROOT);
    HDR(t, c, "a=b; Path=/app/x", "a=b; Path=/x");
    HDR(t, c, "a=b; Path=/app", "a=b; Path=/");
    HDR(t, c, "a=b; Path=/", "a=b; Path=/");
    HDR(t, c, "a=b; Domain=hr.corp.local", "a=b; Domain=hr.apps.example.com");
    ptc_translate_unref(t);
    t = make(INT_ROOT, EXT_HR);
    HDR(t, c, "a=b; Path=/", "a=b; Path=/hr");
    HDR(t, c, "a=b; Path=/x", "a=b; Path=/hr/x");
    ptc_translate_unref(t);

    /* An IP literal has no parent domains. */
    t = make("http://10.0.0.5:8080/", EXT_HR);
    HDR(t, c, "a=b; Domain=10.0.0.5", "a=b; Domain=apps.example.com");
    HDR(t, c, "a=b; Domain=0.5", NULL);
    ptc_translate_unref(t);
}

/* ---- header value safety ---- */

static void test_header_refuses_control_bytes_and_appends(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    ptc_buf_t out;
    ptc_buf_init(&out);
    ptc_buf_append(&out, "keep|", 5);
    bool changed = true;
    static const char *const bad[] = {
        "http://hr.corp.local:8080/app/\r\nX-Evil: 1",
        "/app/\n",
        "/app/\r",
        "a=b; Domain=hr.corp.local\x01",
        "/app/\x7f",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(ptc_translate_header(t, ptc_slice_str("Location"), ptc_slice_str(bad[i]), &out,
                                      &changed),
                 PTC_EHTTP);
        CHECK(!changed);
        CHECK_EQ(out.len, 5);
    }
    ptc_slice_t none = {NULL, 0};
    CHECK_OK(ptc_translate_header(t, ptc_slice_str("Location"), none, &out, &changed));
    CHECK(!changed);
    CHECK_EQ(out.len, 5);
    ptc_slice_t nul = {(const uint8_t *)"/app/\0x", 7};
    CHECK_EQ(ptc_translate_header(t, ptc_slice_str("Set-Cookie"), nul, &out, NULL), PTC_EHTTP);

    /* Values append after what the buffer holds; tabs and obs-text are valid. */
    CHECK_OK(ptc_translate_header(t, ptc_slice_str("Location"), ptc_slice_str("/app/\xc3\xa9"),
                                  &out, &changed));
    CHECK(changed);
    CHECK_OK(ptc_translate_header(t, ptc_slice_str("Refresh"), ptc_slice_str("1;\turl=/app/"), &out,
                                  NULL));
    const char *want = "keep|/hr/\xc3\xa9"
                       "1;\turl=/hr/";
    CHECK_EQ(out.len, strlen(want));
    CHECK_MEMEQ(ptc_buf_data(&out), want, out.len);
    ptc_buf_dispose(&out);
    ptc_translate_unref(t);
}

/* ---- content types ---- */

static bool wanted(const char *ct, const char *ce)
{
    return ptc_translate_body_wanted(ptc_slice_str(ct), ptc_slice_str(ce));
}

static void test_text_content_types(void)
{
    CHECK(ptc_translate_is_text(ptc_slice_str("text/html")));
    CHECK(ptc_translate_is_text(ptc_slice_str("text/html; charset=utf-8")));
    CHECK(ptc_translate_is_text(ptc_slice_str("TEXT/HTML;charset=UTF-8")));
    CHECK(ptc_translate_is_text(ptc_slice_str(" text/css ")));
    CHECK(ptc_translate_is_text(ptc_slice_str("application/javascript")));
    CHECK(ptc_translate_is_text(ptc_slice_str("text/javascript; charset=utf-8")));
    CHECK(ptc_translate_is_text(ptc_slice_str("application/xhtml+xml")));
    CHECK(ptc_translate_is_text(ptc_slice_str("application/x-javascript")));
    CHECK(!ptc_translate_is_text(ptc_slice_str("text/plain")));
    CHECK(!ptc_translate_is_text(ptc_slice_str("text/htmlx")));
    CHECK(!ptc_translate_is_text(ptc_slice_str("text/htm")));
    CHECK(!ptc_translate_is_text(ptc_slice_str("application/json")));
    CHECK(!ptc_translate_is_text(ptc_slice_str("image/png")));
    CHECK(!ptc_translate_is_text(ptc_slice_str("application/octet-stream")));
    CHECK(!ptc_translate_is_text(ptc_slice_str("")));
    /* An absent header as an empty slice with no pointer. */
    ptc_slice_t none = {NULL, 0};
    CHECK(!ptc_translate_is_text(none));
    CHECK(ptc_translate_body_wanted(ptc_slice_str("text/html"), none));
    CHECK(!ptc_translate_body_wanted(none, none));

    CHECK(wanted("text/html", ""));
    CHECK(wanted("text/css", "identity"));
    CHECK(wanted("text/css", " Identity "));
    CHECK(!wanted("text/html", "gzip"));
    CHECK(!wanted("text/html", "br"));
    CHECK(!wanted("application/javascript", "deflate"));
    CHECK(!wanted("image/png", ""));
    CHECK(!wanted("application/pdf", "identity"));
}

/* ---- bodies ---- */

static const char sample_html[] =
    "<!doctype html><html><head>\n"
    "<link rel=\"stylesheet\" href=\"http://hr.corp.local:8080/app/style.css\">\n"
    "<script src=\"//hr.corp.local:8080/app/app.js\"></script>\n"
    "<style>body{background:url(HTTP://HR.CORP.LOCAL:8080/app/bg.png)}</style>\n"
    "</head><body>\n"
    "<a href=\"http://hr.corp.local:8080/app\">home</a>\n"
    "<a href=\"http://hr.corp.local:8080/apple\">apple</a>\n"
    "<a href=\"http://hr.corp.local:8081/app/\">port</a>\n"
    "<a href=\"https://hr.corp.local:8080/app/\">scheme</a>\n"
    "<a href=\"http://hr.corp.local.evil.com:8080/app/\">host</a>\n"
    "<a href=\"http://hr.corp.local:8080/APP/\">case</a>\n"
    "<a href=\"xhttp://hr.corp.local:8080/app/\">prefix</a>\n"
    "<a href='/app/relative'>relative stays</a>\n"
    "<script>var cfg={\"api\":\"http:\\/\\/hr.corp.local:8080\\/app\\/api\","
    "\"cdn\":\"\\/\\/hr.corp.local:8080\\/app\\/cdn\","
    "\"ws\":\"ws://hr.corp.local:8080/app/socket\"};</script>\n"
    "http://hr.corp.local:8080/app/http://hr.corp.local:8080/app/\n"
    "hthttp://hr.corp.local:8080/app/ http://hr.corp.lo http://hr.corp.local:8080/app/ok\n"
    "http://hr.corp.local:8080 http://hr.corp.local:8080/ap http://hr.corp.local:8080/app?q\n"
    "</body></html>\n"
    "http://hr.corp.local:8080/app";

static const char sample_html_want[] =
    "<!doctype html><html><head>\n"
    "<link rel=\"stylesheet\" href=\"https://apps.example.com/hr/style.css\">\n"
    "<script src=\"//apps.example.com/hr/app.js\"></script>\n"
    "<style>body{background:url(https://apps.example.com/hr/bg.png)}</style>\n"
    "</head><body>\n"
    "<a href=\"https://apps.example.com/hr\">home</a>\n"
    "<a href=\"http://hr.corp.local:8080/apple\">apple</a>\n"
    "<a href=\"http://hr.corp.local:8081/app/\">port</a>\n"
    "<a href=\"https://hr.corp.local:8080/app/\">scheme</a>\n"
    "<a href=\"http://hr.corp.local.evil.com:8080/app/\">host</a>\n"
    "<a href=\"http://hr.corp.local:8080/APP/\">case</a>\n"
    "<a href=\"xhttp://hr.corp.local:8080/app/\">prefix</a>\n"
    "<a href='/app/relative'>relative stays</a>\n"
    "<script>var cfg={\"api\":\"https:\\/\\/apps.example.com\\/hr\\/api\","
    "\"cdn\":\"\\/\\/apps.example.com\\/hr\\/cdn\","
    "\"ws\":\"wss://apps.example.com/hr/socket\"};</script>\n"
    "https://apps.example.com/hr/https://apps.example.com/hr/\n"
    "hthttp://hr.corp.local:8080/app/ http://hr.corp.lo https://apps.example.com/hr/ok\n"
    "http://hr.corp.local:8080 http://hr.corp.local:8080/ap https://apps.example.com/hr?q\n"
    "</body></html>\n"
    "https://apps.example.com/hr";

static void test_body_sample_document(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    BODY(t, sample_html, sample_html_want);
    ptc_translate_unref(t);
}

/* Every single cut point, every byte on its own, and many random multi-cut runs. */
static void test_body_split_at_every_boundary(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    const uint8_t *in = (const uint8_t *)sample_html;
    size_t len = strlen(sample_html);
    size_t want_len = strlen(sample_html_want);
    size_t n;
    for (size_t cut = 0; cut <= len; cut++) {
        uint8_t *got = run_cuts(t, in, len, &cut, 1, &n);
        CHECK_EQ(n, want_len);
        CHECK_MEMEQ(got, sample_html_want, n);
        free(got);
    }
    size_t *cuts = malloc(len * sizeof(*cuts));
    CHECK_NOT_NULL(cuts);
    for (size_t i = 0; i < len; i++) {
        cuts[i] = i;
    }
    uint8_t *got = run_cuts(t, in, len, cuts, len, &n);
    CHECK_EQ(n, want_len);
    CHECK_MEMEQ(got, sample_html_want, n);
    free(got);

    uint32_t seed = 12345;
    for (int run = 0; run < 500; run++) {
        size_t cnt = 0;
        size_t at = 0;
        for (;;) {
            seed = seed * 1103515245u + 12345u;
            at += 1 + (seed >> 16) % 40;
            if (at >= len) {
                break;
            }
            cuts[cnt++] = at;
        }
        got = run_cuts(t, in, len, cuts, cnt, &n);
        CHECK_EQ(n, want_len);
        CHECK_MEMEQ(got, sample_html_want, n);
        free(got);
    }
    free(cuts);
    ptc_translate_unref(t);
}

static void test_body_multiple_and_adjacent_matches(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_ROOT);
    BODY(t, "http://hr.corp.local:8080/app/a http://hr.corp.local:8080/app/b",
         "https://hr.apps.example.com/a https://hr.apps.example.com/b");
    BODY(t, "(http://hr.corp.local:8080/app)(//hr.corp.local:8080/app)",
         "(https://hr.apps.example.com)(//hr.apps.example.com)");
    BODY(t, "'http://hr.corp.local:8080/app/''http://hr.corp.local:8080/app/'",
         "'https://hr.apps.example.com/''https://hr.apps.example.com/'");
    BODY(t, "http://hr.corp.local:8080/app/x//hr.corp.local:8080/app/", /* a path, not a URL */
         "https://hr.apps.example.com/x//hr.corp.local:8080/app/");
    ptc_translate_unref(t);
}

static void test_body_near_misses(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    static const char *const misses[] = {
        "http://hr.corp.local:8080/apple",     "http://hr.corp.local:8080/app.css",
        "http://hr.corp.local:8080/app-x/",    "http://hr.corp.local:80800/app/",
        "http://hr.corp.local:808/app/",       "http://hr.corp.local/app/",
        "http://hr.corp.local.:8080/app/",     "http://xhr.corp.local:8080/app/",
        "http://hr.corp.local:8080@evil/app/", "http:/hr.corp.local:8080/app/",
        "https://hr.corp.local:8080/app/",     "wss://hr.corp.local:8080/app/",
        "shttp://hr.corp.local:8080/app/",     "a.http://hr.corp.local:8080/app/",
        "/path//hr.corp.local:8080/app/",      "x://hr.corp.local:8080/app/",
        "http:\\/\\/hr.corp.local:8080/app/",  "http://hr.corp.local:8080\\/app\\/",
        "hhhhhhttp://hr.corp.local:8080/ap",   "http://hr.corp.local:8080/app",
    };
    /* The last one is a match at the very end of a body: check it both ways. */
    for (size_t i = 0; i + 1 < sizeof(misses) / sizeof(misses[0]); i++) {
        BODY(t, misses[i], misses[i]);
    }
    BODY(t, "http://hr.corp.local:8080/app", "https://apps.example.com/hr");
    BODY(t, "http://hr.corp.local:8080/appx", "http://hr.corp.local:8080/appx");
    /* Near misses that overlap a real match. */
    BODY(t, "http://hr.corp.local:8080/ap\"http://hr.corp.local:8080/app/x",
         "http://hr.corp.local:8080/ap\"https://apps.example.com/hr/x");
    BODY(t, "http://http://hr.corp.local:8080/app/", "http://https://apps.example.com/hr/");
    BODY(t, "url:http://hr.corp.local:8080/app/x", "url:https://apps.example.com/hr/x");
    BODY(t, "http:// http://hr.corp.local:8080/app/", "http:// https://apps.example.com/hr/");
    BODY(t, "////hr.corp.local:8080/app/", "////hr.corp.local:8080/app/");
    BODY(t, "hr.corp.local:8080/app/", "hr.corp.local:8080/app/");
    ptc_translate_unref(t);
}

static void test_body_default_port_and_case(void)
{
    ptc_translate_t *t = make(INT_ROOT, EXT_HR);
    BODY(t, "<a href=\"http://hr.corp.local/x\">", "<a href=\"https://apps.example.com/hr/x\">");
    BODY(t, "<a href=\"http://hr.corp.local:80/x\">", "<a href=\"https://apps.example.com/hr/x\">");
    BODY(t, "<a href=\"Http://Hr.Corp.Local/x\">", "<a href=\"https://apps.example.com/hr/x\">");
    BODY(t, "<a href=\"//hr.corp.local:80/x\">", "<a href=\"//apps.example.com/hr/x\">");
    BODY(t, "<a href=\"http://hr.corp.local\">", "<a href=\"https://apps.example.com/hr\">");
    BODY(t, "<a href=\"http://hr.corp.local:8080/x\">", "<a href=\"http://hr.corp.local:8080/x\">");
    BODY(t, "<a href=\"http://hr.corp.local.evil/x\">", "<a href=\"http://hr.corp.local.evil/x\">");
    BODY(t, "url(http://hr.corp.local/bg.png)", "url(https://apps.example.com/hr/bg.png)");
    ptc_translate_unref(t);
}

static void test_body_js_escaped(void)
{
    ptc_translate_t *t = make(INT_APP, "https://apps.example.com:8443/hr/");
    BODY(t, "{\"u\":\"http:\\/\\/hr.corp.local:8080\\/app\\/x\"}",
         "{\"u\":\"https:\\/\\/apps.example.com:8443\\/hr\\/x\"}");
    BODY(t, "{\"u\":\"HTTP:\\/\\/HR.corp.local:8080\\/app\"}",
         "{\"u\":\"https:\\/\\/apps.example.com:8443\\/hr\"}");
    BODY(t, "{\"u\":\"\\/\\/hr.corp.local:8080\\/app\\/x\"}",
         "{\"u\":\"\\/\\/apps.example.com:8443\\/hr\\/x\"}");
    BODY(t, "{\"u\":\"ws:\\/\\/hr.corp.local:8080\\/app\\/s\"}",
         "{\"u\":\"wss:\\/\\/apps.example.com:8443\\/hr\\/s\"}");
    BODY(t, "{\"u\":\"http:\\/\\/hr.corp.local:8080\\/apple\"}",
         "{\"u\":\"http:\\/\\/hr.corp.local:8080\\/apple\"}");
    ptc_translate_unref(t);
}

static void test_body_held_back_tail(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    /* The longest pattern: "http:\/\/hr.corp.local:8080\/app" (JSON-escaped). */
    CHECK_EQ(ptc_translate_max_held(t), strlen("http:\\/\\/hr.corp.local:8080\\/app"));
    ptc_translate_body_t *s = ptc_translate_body_new(t);
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 0);
    const char *a = "plain text without candidates. ";
    CHECK_OK(ptc_translate_body_feed(s, (const uint8_t *)a, strlen(a), &q));
    CHECK_EQ(ptc_translate_body_held(s), 0);
    CHECK_EQ(q.queued, strlen(a));
    const char *b = "see http://hr.corp.local:8";
    CHECK_OK(ptc_translate_body_feed(s, (const uint8_t *)b, strlen(b), &q));
    CHECK_EQ(ptc_translate_body_held(s), strlen("http://hr.corp.local:8"));
    CHECK_EQ(q.queued, strlen(a) + 4);
    /* A complete pattern still waits for its delimiter. */
    const char *c = "080/app";
    CHECK_OK(ptc_translate_body_feed(s, (const uint8_t *)c, strlen(c), &q));
    CHECK_EQ(ptc_translate_body_held(s), strlen("http://hr.corp.local:8080/app"));
    const char *d = "/x and more";
    CHECK_OK(ptc_translate_body_feed(s, (const uint8_t *)d, strlen(d), &q));
    CHECK_EQ(ptc_translate_body_held(s), 0);
    CHECK_OK(ptc_translate_body_finish(s, &q));
    uint8_t *buf = NULL;
    size_t n = 0;
    size_t cap = 0;
    drain(&q, &buf, &n, &cap);
    const char *want = "plain text without candidates. see https://apps.example.com/hr/x and more";
    CHECK_EQ(n, strlen(want));
    CHECK_MEMEQ(buf, want, n);
    free(buf);

    /* Finished: no more input, no second finish. */
    CHECK_EQ(ptc_translate_body_feed(s, (const uint8_t *)"x", 1, &q), PTC_ESTATE);
    CHECK_EQ(ptc_translate_body_finish(s, &q), PTC_ESTATE);
    ptc_chunkq_dispose(&q);
    ptc_translate_body_free(s);
    ptc_translate_unref(t);
}

/* The body state keeps its own reference on the translator. */
static void test_body_outlives_translator_reference(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    ptc_translate_body_t *s = ptc_translate_body_new(t);
    ptc_translate_unref(t);
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 0);
    const char *in = "x http://hr.corp.local:8080/app/";
    CHECK_OK(ptc_translate_body_feed(s, (const uint8_t *)in, 20, &q));
    CHECK_OK(ptc_translate_body_feed(s, (const uint8_t *)in + 20, strlen(in) - 20, &q));
    CHECK_OK(ptc_translate_body_finish(s, &q));
    uint8_t *buf = NULL;
    size_t n = 0;
    size_t cap = 0;
    drain(&q, &buf, &n, &cap);
    CHECK_EQ(n, strlen("x https://apps.example.com/hr/"));
    CHECK_MEMEQ(buf, "x https://apps.example.com/hr/", n);
    free(buf);
    ptc_chunkq_dispose(&q);
    ptc_translate_body_free(s);
    ptc_translate_body_free(NULL);
    ptc_translate_unref(NULL);
}

/*
 * 10 MiB streamed in uneven chunks: the output matches the expected stream chunk by chunk
 * (read as it is produced, so nothing accumulates), and the held-back tail stays within the
 * bound after every feed.
 */
static void test_body_long_stream_bounded(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    static const char block[] =
        "<p><a href=\"http://hr.corp.local:8080/app/page\">link</a> "
        "<img src=\"//hr.corp.local:8080/app/i.png\"> "
        "<a href=\"http://hr.corp.local:8080/apple\">miss</a> "
        "{\"u\":\"http:\\/\\/hr.corp.local:8080\\/app\\/j\"} lorem ipsum dolor sit amet</p>\n";
    static const char block_want[] =
        "<p><a href=\"https://apps.example.com/hr/page\">link</a> "
        "<img src=\"//apps.example.com/hr/i.png\"> "
        "<a href=\"http://hr.corp.local:8080/apple\">miss</a> "
        "{\"u\":\"https:\\/\\/apps.example.com\\/hr\\/j\"} lorem ipsum dolor sit amet</p>\n";
    size_t bl = strlen(block);
    size_t wl = strlen(block_want);
    size_t total = 10u << 20;
    total -= total % bl; /* whole blocks */
    size_t blocks = total / bl;

    ptc_translate_body_t *s = ptc_translate_body_new(t);
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 0);
    uint8_t chunk[8192];
    size_t in_pos = 0;  /* bytes of input fed */
    size_t out_pos = 0; /* bytes of output checked */
    size_t max_held = 0;
    uint32_t seed = 7;
    while (in_pos < total) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 8) % sizeof(chunk);
        if (n > total - in_pos) {
            n = total - in_pos;
        }
        for (size_t i = 0; i < n; i++) {
            chunk[i] = (uint8_t)block[(in_pos + i) % bl];
        }
        CHECK_OK(ptc_translate_body_feed(s, chunk, n, &q));
        in_pos += n;
        size_t held = ptc_translate_body_held(s);
        CHECK_LE(held, ptc_translate_max_held(t));
        if (held > max_held) {
            max_held = held;
        }
        if (in_pos == total) {
            CHECK_OK(ptc_translate_body_finish(s, &q));
        }
        ptc_slice_t sl[8];
        size_t cnt;
        while ((cnt = ptc_chunkq_peek(&q, sl, 8)) > 0) {
            for (size_t k = 0; k < cnt; k++) {
                for (size_t i = 0; i < sl[k].len; i++) {
                    if (sl[k].ptr[i] != (uint8_t)block_want[(out_pos + i) % wl]) {
                        ptc_test_fail(__FILE__, __LINE__, "output differs at byte %zu",
                                      out_pos + i);
                    }
                }
                out_pos += sl[k].len;
                ptc_chunkq_consume(&q, sl[k].len);
            }
        }
        /* Memory stays flat: nothing waits but the bounded tail. */
        CHECK_EQ(ptc_chunkq_backlog(&q), 0);
    }
    CHECK_UEQ(out_pos, blocks * wl);
    CHECK_GT(max_held, 0);
    ptc_test_diag("10 MiB body: %zu bytes out, at most %zu bytes held back (bound %zu)", out_pos,
                  max_held, ptc_translate_max_held(t));
    ptc_chunkq_dispose(&q);
    ptc_translate_body_free(s);
    ptc_translate_unref(t);
}

static void test_body_empty_and_candidate_free(void)
{
    ptc_translate_t *t = make(INT_APP, EXT_HR);
    BODY(t, "", "");
    BODY(t, "h", "h");
    BODY(t, "/", "/");
    BODY(t, "\\", "\\");
    BODY(t, "no urls at all, just text & <b>markup</b>",
         "no urls at all, just text & <b>markup</b>");
    ptc_translate_unref(t);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_new_refuses_bad_urls),
    PTC_TEST(test_location_internal_origin),
    PTC_TEST(test_location_leaves_other_urls_alone),
    PTC_TEST(test_location_scheme_relative_and_paths),
    PTC_TEST(test_location_default_ports),
    PTC_TEST(test_location_prefix_mapping_both_ways),
    PTC_TEST(test_location_ipv6_internal),
    PTC_TEST(test_refresh_forms),
    PTC_TEST(test_set_cookie_domain_and_path),
    PTC_TEST(test_header_refuses_control_bytes_and_appends),
    PTC_TEST(test_text_content_types),
    PTC_TEST(test_body_sample_document),
    PTC_TEST(test_body_split_at_every_boundary),
    PTC_TEST(test_body_multiple_and_adjacent_matches),
    PTC_TEST(test_body_near_misses),
    PTC_TEST(test_body_default_port_and_case),
    PTC_TEST(test_body_js_escaped),
    PTC_TEST(test_body_held_back_tail),
    PTC_TEST(test_body_outlives_translator_reference),
    PTC_TEST(test_body_long_stream_bounded),
    PTC_TEST(test_body_empty_and_candidate_free),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
