/* SPDX-License-Identifier: MIT */
#include "edge/pages.h"
#include "tests/support/test.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

/* The rendered page as a NUL-terminated string (the caller frees it). */
static char *render(ptc_page_cause_t cause, const char *id, bool json, const char **ctype)
{
    ptc_buf_t b;
    ptc_buf_init(&b);
    const char *ct = ptc_page_render(cause, id, json, &b);
    if (ctype != NULL) {
        *ctype = ct;
    }
    char *s = malloc(b.len + 1);
    CHECK_NOT_NULL(s);
    memcpy(s, ptc_buf_data(&b), b.len);
    s[b.len] = '\0';
    ptc_buf_dispose(&b);
    return s;
}

static bool wants_json(const char *accept)
{
    ptc_http_header_t h = {ptc_slice_str("Accept"), ptc_slice_str(accept)};
    return ptc_page_wants_json(&h, 1);
}

static void test_status_and_names(void)
{
    static const struct {
        ptc_page_cause_t cause;
        int status;
        const char *name;
    } want[] = {
        {PTC_PAGE_NOT_FOUND, 404, "not_found"},
        {PTC_PAGE_BAD_REQUEST, 400, "bad_request"},
        {PTC_PAGE_METHOD_NOT_ALLOWED, 405, "method_not_allowed"},
        {PTC_PAGE_BODY_TOO_LARGE, 413, "body_too_large"},
        {PTC_PAGE_EXPECTATION_FAILED, 417, "expectation_failed"},
        {PTC_PAGE_HEADERS_TOO_LARGE, 431, "headers_too_large"},
        {PTC_PAGE_MAINTENANCE, 503, "maintenance"},
        {PTC_PAGE_AUTH_UNAVAILABLE, 503, "auth_unavailable"},
        {PTC_PAGE_NO_CONNECTOR, 502, "no_connector"},
        {PTC_PAGE_CONNECTOR_ERROR, 502, "connector_error"},
        {PTC_PAGE_BACKEND_REFUSED, 502, "backend_refused"},
        {PTC_PAGE_BACKEND_DNS, 502, "backend_dns"},
        {PTC_PAGE_BACKEND_TLS, 502, "backend_tls"},
        {PTC_PAGE_BACKEND_RESET, 502, "backend_reset"},
        {PTC_PAGE_BACKEND_TIMEOUT, 504, "backend_timeout"},
        {PTC_PAGE_SIGN_IN_FAILED, 401, "sign_in_failed"},
        {PTC_PAGE_NOT_ASSIGNED, 403, "not_assigned"},
        {PTC_PAGE_SIGNED_OUT, 200, "signed_out"},
        {PTC_PAGE_UNAUTHENTICATED, 401, "unauthenticated"},
    };
    CHECK_EQ(sizeof(want) / sizeof(want[0]), PTC_PAGE_CAUSE_COUNT);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        CHECK_EQ(ptc_page_status(want[i].cause), want[i].status);
        CHECK_STREQ(ptc_page_cause_name(want[i].cause), want[i].name);
        CHECK(strlen(ptc_page_message(want[i].cause)) > 10);
    }
    CHECK_EQ(ptc_page_status(PTC_PAGE_CAUSE_COUNT), 500);
    CHECK_STREQ(ptc_page_cause_name((ptc_page_cause_t)-1), "internal");
}

static void test_cause_from_reset(void)
{
    CHECK_EQ(ptc_page_cause_from_reset(PTC_WIRE_BACKEND_REFUSED), PTC_PAGE_BACKEND_REFUSED);
    CHECK_EQ(ptc_page_cause_from_reset(PTC_WIRE_BACKEND_DNS), PTC_PAGE_BACKEND_DNS);
    CHECK_EQ(ptc_page_cause_from_reset(PTC_WIRE_BACKEND_TLS), PTC_PAGE_BACKEND_TLS);
    CHECK_EQ(ptc_page_cause_from_reset(PTC_WIRE_BACKEND_TIMEOUT), PTC_PAGE_BACKEND_TIMEOUT);
    CHECK_EQ(ptc_page_cause_from_reset(PTC_WIRE_BACKEND_RESET), PTC_PAGE_BACKEND_RESET);
    CHECK_EQ(ptc_page_status(ptc_page_cause_from_reset(PTC_WIRE_BACKEND_TIMEOUT)), 504);
    CHECK_EQ(ptc_page_status(ptc_page_cause_from_reset(PTC_WIRE_BACKEND_TLS)), 502);
    /* The tunnel or the connector failed, or a code this version does not know (§8). */
    CHECK_EQ(ptc_page_cause_from_reset(PTC_WIRE_CANCEL), PTC_PAGE_CONNECTOR_ERROR);
    CHECK_EQ(ptc_page_cause_from_reset(PTC_WIRE_INTERNAL_ERROR), PTC_PAGE_CONNECTOR_ERROR);
    CHECK_EQ(ptc_page_cause_from_reset(PTC_WIRE_HEADER_ERROR), PTC_PAGE_CONNECTOR_ERROR);
    CHECK_EQ(ptc_page_cause_from_reset(0x15), PTC_PAGE_CONNECTOR_ERROR);
    CHECK_EQ(ptc_page_cause_from_reset(0xffffffffu), PTC_PAGE_CONNECTOR_ERROR);
}

static void test_wants_json(void)
{
    CHECK(wants_json("application/json"));
    CHECK(wants_json("Application/JSON"));
    CHECK(wants_json("application/json;q=0.5"));
    CHECK(wants_json("text/plain, application/json"));
    CHECK(wants_json("application/json, text/html"));
    CHECK(wants_json("text/html;q=0.4, application/json;q=0.9"));
    CHECK(wants_json("application/json ; charset=utf-8"));
    /* Browsers: HTML. */
    CHECK(!wants_json("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
    CHECK(!wants_json("*/*"));
    CHECK(!wants_json(""));
    CHECK(!wants_json("application/json;q=0"));
    CHECK(!wants_json("application/json;q=0.000"));
    CHECK(!wants_json("text/html, application/json;q=0.9"));
    CHECK(!wants_json("application/jsonx"));
    CHECK(!wants_json("application/problem+json"));
    /* An unreadable quality counts as 0. */
    CHECK(!wants_json("application/json;q=2"));
    CHECK(!wants_json("application/json;q=abc"));
    CHECK(!wants_json("application/json;q=0.1234"));
    CHECK(wants_json("application/json;q=1.000"));
    CHECK(wants_json("application/json;level=1;q=0.7"));
    /* No Accept header at all, and Accept spread over two fields. */
    ptc_http_header_t none = {ptc_slice_str("Content-Type"), ptc_slice_str("application/json")};
    CHECK(!ptc_page_wants_json(&none, 1));
    CHECK(!ptc_page_wants_json(NULL, 0));
    ptc_http_header_t two[] = {
        {ptc_slice_str("accept"), ptc_slice_str("text/html;q=0.5")},
        {ptc_slice_str("ACCEPT"), ptc_slice_str("application/json")},
    };
    CHECK(ptc_page_wants_json(two, 2));
}

static void test_html_page(void)
{
    const char *ct = NULL;
    char *s = render(PTC_PAGE_BACKEND_REFUSED, "a1b2c3d4e5f60718", false, &ct);
    CHECK_STREQ(ct, "text/html; charset=utf-8");
    CHECK(strncmp(s, "<!doctype html>", 15) == 0);
    CHECK_CONTAINS(s, "<title>502 Bad Gateway</title>");
    CHECK_CONTAINS(s, "<code>backend_refused</code>");
    CHECK_CONTAINS(s, "request id <code>a1b2c3d4e5f60718</code>");
    CHECK_CONTAINS(s, ptc_page_message(PTC_PAGE_BACKEND_REFUSED));
    CHECK_CONTAINS(s, "noindex");
    free(s);

    s = render(PTC_PAGE_BACKEND_TIMEOUT, "r-1", false, NULL);
    CHECK_CONTAINS(s, "504 Gateway Timeout");
    CHECK_CONTAINS(s, "backend_timeout");
    free(s);

    s = render(PTC_PAGE_MAINTENANCE, "m.1", false, NULL);
    CHECK_CONTAINS(s, "<title>Down for maintenance</title>");
    CHECK_CONTAINS(s, "Status 503");
    CHECK_CONTAINS(s, "<code>maintenance</code>");
    free(s);

    /* Without an id, no id line. */
    s = render(PTC_PAGE_NOT_FOUND, NULL, false, NULL);
    CHECK_CONTAINS(s, "404 Not Found");
    CHECK(strstr(s, "request id") == NULL);
    free(s);
}

static void test_html_escapes_id(void)
{
    char *s = render(PTC_PAGE_NO_CONNECTOR, "<script>\"x\"&'y'</script>", false, NULL);
    CHECK(strstr(s, "<script>") == NULL);
    CHECK_CONTAINS(s, "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;");
    free(s);
    s = render(PTC_PAGE_NO_CONNECTOR, "a\r\nb", false, NULL);
    CHECK(strstr(s, "a\r\nb") == NULL);
    CHECK_CONTAINS(s, "a??b");
    free(s);
}

static void test_json_page(void)
{
    const char *ct = NULL;
    char *s = render(PTC_PAGE_NO_CONNECTOR, "req-42", true, &ct);
    CHECK_STREQ(ct, "application/json");
    CHECK_EQ(s[strlen(s) - 1], '\n');
    json_error_t jerr;
    json_t *doc = json_loads(s, 0, &jerr);
    CHECK_NOT_NULL(doc);
    CHECK_STREQ(json_string_value(json_object_get(doc, "error")), "no_connector");
    CHECK_EQ(json_integer_value(json_object_get(doc, "status")), 502);
    CHECK_STREQ(json_string_value(json_object_get(doc, "message")),
                ptc_page_message(PTC_PAGE_NO_CONNECTOR));
    CHECK_STREQ(json_string_value(json_object_get(doc, "request_id")), "req-42");
    CHECK_EQ(json_object_size(doc), 4);
    json_decref(doc);
    free(s);

    /* Quotes and control bytes are escaped; invalid UTF-8 leaves the id out. */
    s = render(PTC_PAGE_BAD_REQUEST, "a\"b\\c\n", true, NULL);
    doc = json_loads(s, 0, &jerr);
    CHECK_NOT_NULL(doc);
    CHECK_STREQ(json_string_value(json_object_get(doc, "request_id")), "a\"b\\c\n");
    json_decref(doc);
    free(s);
    s = render(PTC_PAGE_BAD_REQUEST, "\xff\xfe", true, NULL);
    doc = json_loads(s, 0, &jerr);
    CHECK_NOT_NULL(doc);
    CHECK(json_is_null(json_object_get(doc, "request_id")));
    json_decref(doc);
    free(s);
}

/* The sign-in pages: the user's name and the sign-out link, escaped, in both forms. */
static void test_extra_user_and_link(void)
{
    ptc_page_extra_t extra = {
        .user = "Eve <eve@example.com>", .link_href = "/.portico/logout", .link_text = "Sign out"};
    ptc_buf_t b;
    ptc_buf_init(&b);
    const char *ct = ptc_page_render_extra(PTC_PAGE_NOT_ASSIGNED, "id-1", false, &extra, &b);
    CHECK_STREQ(ct, "text/html; charset=utf-8");
    ptc_buf_append(&b, "", 1);
    const char *s = (const char *)ptc_buf_data(&b);
    CHECK_CONTAINS(s, "<title>No access to this application</title>");
    CHECK_CONTAINS(s, "Signed in as <strong>Eve &lt;eve@example.com&gt;</strong>");
    CHECK_CONTAINS(s, "<a href=\"/.portico/logout\">Sign out</a>");
    CHECK_CONTAINS(s, "Status 403");
    CHECK(strstr(s, "<eve@") == NULL);
    ptc_buf_dispose(&b);

    ptc_buf_init(&b);
    ct = ptc_page_render_extra(PTC_PAGE_NOT_ASSIGNED, "id-1", true, &extra, &b);
    CHECK_STREQ(ct, "application/json");
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)ptc_buf_data(&b), b.len, 0, &jerr);
    CHECK_NOT_NULL(doc);
    CHECK_STREQ(json_string_value(json_object_get(doc, "error")), "not_assigned");
    CHECK_EQ(json_integer_value(json_object_get(doc, "status")), 403);
    CHECK_STREQ(json_string_value(json_object_get(doc, "user")), "Eve <eve@example.com>");
    CHECK_STREQ(json_string_value(json_object_get(doc, "link")), "/.portico/logout");
    json_decref(doc);
    ptc_buf_dispose(&b);

    /* A user string that is not UTF-8 is left out of the JSON, not the whole page. */
    extra.user = "\xff";
    ptc_buf_init(&b);
    (void)ptc_page_render_extra(PTC_PAGE_NOT_ASSIGNED, NULL, true, &extra, &b);
    doc = json_loadb((const char *)ptc_buf_data(&b), b.len, 0, &jerr);
    CHECK_NOT_NULL(doc);
    CHECK_NULL(json_object_get(doc, "user"));
    json_decref(doc);
    ptc_buf_dispose(&b);

    /* The signed-out page says so in its title; no extra means no user line. */
    char *t = render(PTC_PAGE_SIGNED_OUT, "x", false, NULL);
    CHECK_CONTAINS(t, "<title>Signed out</title>");
    CHECK_CONTAINS(t, "You are signed out.");
    CHECK(strstr(t, "Signed in as") == NULL);
    free(t);
}

static void test_long_id_is_cut(void)
{
    char id[300];
    memset(id, 'x', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    char *s = render(PTC_PAGE_NOT_FOUND, id, true, NULL);
    json_error_t jerr;
    json_t *doc = json_loads(s, 0, &jerr);
    CHECK_NOT_NULL(doc);
    CHECK_EQ(strlen(json_string_value(json_object_get(doc, "request_id"))), 128);
    json_decref(doc);
    free(s);
}

/* Every page is self-contained: no internal name can appear, whatever the cause. */
static void test_pages_are_fixed_text(void)
{
    for (int c = 0; c < PTC_PAGE_CAUSE_COUNT; c++) {
        char *h = render((ptc_page_cause_t)c, "id", false, NULL);
        char *j = render((ptc_page_cause_t)c, "id", true, NULL);
        CHECK_CONTAINS(h, ptc_page_cause_name((ptc_page_cause_t)c));
        CHECK_CONTAINS(j, ptc_page_cause_name((ptc_page_cause_t)c));
        CHECK(strstr(h, "http://") == NULL && strstr(h, "https://") == NULL);
        CHECK(strlen(h) < 4096);
        free(h);
        free(j);
    }
}

static void test_robots(void)
{
    CHECK_STREQ(PTC_PAGE_ROBOTS_TXT, "User-agent: *\nDisallow: /\n");
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_status_and_names), PTC_TEST(test_cause_from_reset),
    PTC_TEST(test_wants_json),       PTC_TEST(test_html_page),
    PTC_TEST(test_html_escapes_id),  PTC_TEST(test_json_page),
    PTC_TEST(test_long_id_is_cut),   PTC_TEST(test_pages_are_fixed_text),
    PTC_TEST(test_robots),           PTC_TEST(test_extra_user_and_link),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
