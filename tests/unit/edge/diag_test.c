/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of edge/diag's report building: the configuration, certificate, connectors and
 * probe checks and the hint chosen for each failure, the report's overall verdict, and
 * reading the default certificate's names. Apps are parsed with edge/app from JSON; probe
 * results are the documents of docs/protocol.md §4.8.1 written by hand.
 */
#include "edge/diag.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge/state.h"
#include "tests/support/certgen.h"
#include "tests/support/test.h"

#define NOW 1714564800000ull /* 2024-05-01T12:00:00Z */
#define DAY (24ull * 3600 * 1000)

static const ptc_app_ctx_t CTX = {.default_domain = "apps.example.com"};

/* Parses an app from JSON text (asserting success). */
static ptc_app_t *app_from(const char *text, const ptc_app_ctx_t *ctx)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    CHECK_NOT_NULL(doc);
    ptc_app_t *app = NULL;
    char err[256] = "";
    int rc = ptc_app_parse(doc, ctx, &app, err, sizeof(err));
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "app parse: %s", err);
    }
    json_decref(doc);
    return app;
}

static ptc_app_t *hr_app(void)
{
    return app_from("{\"name\":\"hr\",\"internal_url\":\"http://hr.corp.local:8080/hr/\","
                    "\"pre_auth\":\"passthrough\"}",
                    &CTX);
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool is_ok(const json_t *check)
{
    return json_is_true(json_object_get(check, "ok"));
}

/* A probe_result from a JSON text. */
static json_t *result(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    if (doc == NULL) {
        ptc_test_fail(__FILE__, __LINE__, "bad test JSON: %s", jerr.text);
    }
    return doc;
}

/* The probe check of hr_app() for a probe_result text. */
static json_t *probe_check(const char *text)
{
    ptc_app_t *app = hr_app();
    json_t *r = result(text);
    json_t *c = ptc_diag_check_probe(app, "cn_0123456789abcdef", r);
    json_decref(r);
    ptc_app_unref(app);
    CHECK_STREQ(str(c, "check"), "probe");
    CHECK_STREQ(str(c, "connector"), "cn_0123456789abcdef");
    CHECK(json_is_array(json_object_get(c, "steps")));
    return c;
}

#define DNS_OK "{\"step\":\"dns\",\"ok\":true,\"ms\":0.5,\"detail\":\"10.1.2.3\"}"
#define TCP_OK "{\"step\":\"tcp\",\"ok\":true,\"ms\":0.25,\"detail\":\"10.1.2.3:8080\"}"

/* ---- names ---- */

static void test_cert_name_matches(void)
{
    CHECK(ptc_diag_cert_name_matches("hr.apps.example.com", "hr.apps.example.com"));
    CHECK(ptc_diag_cert_name_matches("*.apps.example.com", "hr.apps.example.com"));
    CHECK(!ptc_diag_cert_name_matches("*.apps.example.com", "apps.example.com"));
    CHECK(!ptc_diag_cert_name_matches("*.apps.example.com", "a.hr.apps.example.com"));
    CHECK(!ptc_diag_cert_name_matches("*.example.com", "hr.apps.example.com"));
    CHECK(!ptc_diag_cert_name_matches("hr.apps.example.com", "hr2.apps.example.com"));
    CHECK(!ptc_diag_cert_name_matches("*.apps.example.com", ".apps.example.com"));
}

static void test_status_ok(void)
{
    CHECK(ptc_diag_status_ok(200));
    CHECK(ptc_diag_status_ok(204));
    CHECK(ptc_diag_status_ok(302));
    CHECK(ptc_diag_status_ok(401));
    CHECK(ptc_diag_status_ok(403));
    CHECK(!ptc_diag_status_ok(400));
    CHECK(!ptc_diag_status_ok(404));
    CHECK(!ptc_diag_status_ok(500));
    CHECK(!ptc_diag_status_ok(503));
    CHECK(!ptc_diag_status_ok(0));
}

/* ---- configuration ---- */

static void test_configuration_ok_and_notes(void)
{
    ptc_app_t *app = hr_app();
    json_t *c = ptc_diag_check_configuration(app, &CTX, true);
    CHECK(is_ok(c));
    CHECK_STREQ(str(c, "check"), "configuration");
    CHECK_CONTAINS(str(c, "detail"), "settings valid");
    CHECK_NULL(json_object_get(c, "hint"));
    CHECK_NULL(json_object_get(c, "note"));
    json_decref(c);
    ptc_app_unref(app);

    app = app_from("{\"name\":\"hr\",\"internal_url\":\"http://hr.corp.local/\","
                   "\"pre_auth\":\"passthrough\",\"maintenance_mode\":true}",
                   &CTX);
    c = ptc_diag_check_configuration(app, &CTX, true);
    CHECK(is_ok(c));
    CHECK_CONTAINS(str(c, "note"), "maintenance_mode is on");
    CHECK_CONTAINS(str(c, "note"), "portico app set hr maintenance_mode=false");
    json_decref(c);
    ptc_app_unref(app);

    app = app_from("{\"name\":\"hr\",\"internal_url\":\"https://hr.corp.local/\","
                   "\"pre_auth\":\"passthrough\",\"validate_backend_tls\":false}",
                   &CTX);
    c = ptc_diag_check_configuration(app, &CTX, true);
    CHECK(is_ok(c));
    CHECK_CONTAINS(str(c, "note"), "validate_backend_tls is false");
    json_decref(c);
    ptc_app_unref(app);
}

static void test_configuration_missing_group(void)
{
    ptc_app_t *app = hr_app();
    json_t *c = ptc_diag_check_configuration(app, &CTX, false);
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "detail"), "connector group \"Default\" does not exist");
    CHECK_CONTAINS(str(c, "hint"), "portico group add \"Default\"");
    CHECK_CONTAINS(str(c, "hint"), "portico app set hr connector_group=GROUP");
    json_decref(c);
    ptc_app_unref(app);
}

static void test_configuration_stale_idp(void)
{
    /* Stored when provider "old" existed; edge.json now lists only "corp". */
    static const char *const old_idps[] = {"old"};
    static const char *const new_idps[] = {"corp"};
    ptc_app_ctx_t then = {.default_domain = "apps.example.com", .idps = old_idps, .idp_cnt = 1};
    ptc_app_ctx_t now = {
        .default_domain = "apps.example.com", .idps = new_idps, .idp_cnt = 1, .lenient_idp = true};
    ptc_app_t *app = app_from(
        "{\"name\":\"hr\",\"internal_url\":\"http://hr.corp.local/\",\"idp\":\"old\"}", &then);
    json_t *c = ptc_diag_check_configuration(app, &now, true);
    CHECK(!is_ok(c));
    CHECK_CONTAINS(str(c, "detail"), "the stored settings no longer validate: idp");
    CHECK_CONTAINS(str(c, "hint"), "portico app set hr KEY=VALUE");
    json_decref(c);
    ptc_app_unref(app);
}

/* ---- certificate ---- */

static void test_certificate_default_wildcard(void)
{
    ptc_app_t *app = hr_app();
    char *names[] = {"edge.example.com", "*.apps.example.com"};
    ptc_diag_cert_t def = {NULL, names, 2, NOW - DAY, NOW + 90 * DAY};
    json_t *c = ptc_diag_check_certificate(app, &def, 1, "apps.example.com", NOW);
    CHECK(is_ok(c));
    CHECK_STREQ(str(c, "detail"), "the default certificate covers hr.apps.example.com "
                                  "(*.apps.example.com), valid until 2024-07-30");
    CHECK_NULL(json_object_get(c, "note"));
    json_decref(c);

    /* Expiring soon: still ok, with a note. */
    def.not_after = NOW + 3 * DAY;
    c = ptc_diag_check_certificate(app, &def, 1, "apps.example.com", NOW);
    CHECK(is_ok(c));
    CHECK_STREQ(str(c, "note"), "the certificate expires on 2024-05-04: renew it soon");
    json_decref(c);
    ptc_app_unref(app);
}

static void test_certificate_exact_beats_wildcard(void)
{
    ptc_app_t *app = hr_app();
    char *wild[] = {"*.apps.example.com"};
    char *exact[] = {"hr.apps.example.com"};
    /* The listener's order: uploaded certificates first, then the default; an exact name
     * wins over a wildcard wherever it is. */
    ptc_diag_cert_t certs[] = {
        {"crt_0000000a", wild, 1, NOW - DAY, NOW + 90 * DAY},
        {"crt_0000000b", exact, 1, NOW - DAY, NOW + 90 * DAY},
    };
    json_t *c = ptc_diag_check_certificate(app, certs, 2, "apps.example.com", NOW);
    CHECK(is_ok(c));
    CHECK_CONTAINS(str(c, "detail"), "certificate crt_0000000b covers hr.apps.example.com");
    json_decref(c);
    ptc_app_unref(app);
}

static void test_certificate_missing(void)
{
    ptc_app_t *app = hr_app();
    char *names[] = {"edge.example.com"};
    ptc_diag_cert_t def = {NULL, names, 1, 0, 0};
    json_t *c = ptc_diag_check_certificate(app, &def, 1, "apps.example.com", NOW);
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "detail"), "no certificate of the edge covers hr.apps.example.com");
    /* Under the default domain: the default certificate should have the wildcard. */
    CHECK_CONTAINS(str(c, "hint"), "should name *.apps.example.com");
    json_decref(c);
    ptc_app_unref(app);

    app = app_from("{\"name\":\"portal\",\"internal_url\":\"http://10.0.0.5/\","
                   "\"external_url\":\"https://portal.customer.test/\","
                   "\"pre_auth\":\"passthrough\"}",
                   &CTX);
    c = ptc_diag_check_certificate(app, &def, 1, "apps.example.com", NOW);
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "hint"),
                "add a certificate whose subjectAltName names portal.customer.test (`portico "
                "cert add --cert FILE --key FILE`), or publish the app under the default "
                "domain (https://portal.apps.example.com/)");
    json_decref(c);
    ptc_app_unref(app);
}

static void test_certificate_expired(void)
{
    ptc_app_t *app = hr_app();
    char *names[] = {"*.apps.example.com"};
    ptc_diag_cert_t def = {NULL, names, 1, NOW - 90 * DAY, NOW - DAY};
    json_t *c = ptc_diag_check_certificate(app, &def, 1, "apps.example.com", NOW);
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "detail"), "the default certificate (*.apps.example.com) for "
                                  "hr.apps.example.com expired on 2024-04-30");
    CHECK_CONTAINS(str(c, "hint"), "renew the edge's default certificate");
    json_decref(c);

    ptc_diag_cert_t up = {"crt_1234abcd", names, 1, NOW + DAY, NOW + 90 * DAY};
    c = ptc_diag_check_certificate(app, &up, 1, "apps.example.com", NOW);
    CHECK(!is_ok(c));
    CHECK_CONTAINS(str(c, "detail"), "is not valid before 2024-05-02");
    CHECK_CONTAINS(str(c, "hint"), "portico cert delete crt_1234abcd");
    json_decref(c);
    ptc_app_unref(app);
}

static void test_certificate_http_external(void)
{
    ptc_app_t *app = app_from("{\"name\":\"plain\",\"internal_url\":\"http://10.0.0.5/\","
                              "\"external_url\":\"http://plain.apps.example.com/\","
                              "\"pre_auth\":\"passthrough\"}",
                              &CTX);
    json_t *c = ptc_diag_check_certificate(app, NULL, 0, "apps.example.com", NOW);
    CHECK(is_ok(c));
    CHECK_CONTAINS(str(c, "detail"), "external_url uses http");
    json_decref(c);
    ptc_app_unref(app);
}

/* ---- connectors ---- */

static void test_connectors(void)
{
    json_t *c = ptc_diag_check_connectors("Site A", 0, NULL, 0);
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "detail"), "group Site A has no connector");
    CHECK_CONTAINS(str(c, "hint"), "no connector of group Site A is connected");
    CHECK_CONTAINS(str(c, "hint"), "portico token create --group \"Site A\"");
    CHECK_CONTAINS(str(c, "hint"), "portico connector move ID --group \"Site A\"");
    json_decref(c);

    const char *idle[] = {"cn_aaaaaaaaaaaaaaaa", "cn_bbbbbbbbbbbbbbbb"};
    c = ptc_diag_check_connectors("Default", 0, idle, 2);
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "detail"), "no live connector in group Default (2 registered, inactive: "
                                  "cn_aaaaaaaaaaaaaaaa, cn_bbbbbbbbbbbbbbbb)");
    CHECK_CONTAINS(str(c, "hint"), "start portico-connector on the host of cn_aaaaaaaaaaaaaaaa");
    json_decref(c);

    c = ptc_diag_check_connectors("Default", 2, NULL, 0);
    CHECK(is_ok(c));
    CHECK_STREQ(str(c, "detail"), "2 live connectors in group Default");
    CHECK_NULL(json_object_get(c, "hint"));
    json_decref(c);

    c = ptc_diag_check_connectors("Default", 1, idle, 1);
    CHECK(is_ok(c));
    CHECK_STREQ(str(c, "detail"), "1 live connector in group Default");
    CHECK_STREQ(str(c, "note"),
                "1 registered connector of the group is inactive: cn_aaaaaaaaaaaaaaaa");
    json_decref(c);
}

/* ---- probes ---- */

static void test_probe_healthy(void)
{
    json_t *c = probe_check("{\"type\":\"probe_result\",\"id\":\"pr_1\",\"steps\":[" DNS_OK
                            "," TCP_OK ",{\"step\":\"http\",\"ok\":true,\"ms\":1.25,\"status\":"
                            "200,\"detail\":\"200 OK\",\"extra\":\"dropped\"}]}");
    CHECK(is_ok(c));
    CHECK_STREQ(str(c, "detail"), "GET http://hr.corp.local:8080/hr/ answered 200 OK in 2.0 ms");
    CHECK_NULL(json_object_get(c, "hint"));
    json_t *steps = json_object_get(c, "steps");
    CHECK_EQ(json_array_size(steps), 3);
    json_t *http = json_array_get(steps, 2);
    CHECK_EQ(json_integer_value(json_object_get(http, "status")), 200);
    CHECK_NULL(json_object_get(http, "extra"));
    json_decref(c);

    /* A backend asking for its own login works. */
    c = probe_check("{\"type\":\"probe_result\",\"id\":\"pr_1\",\"steps\":[" DNS_OK "," TCP_OK
                    ",{\"step\":\"http\",\"ok\":true,\"ms\":1,\"status\":401}]}");
    CHECK(is_ok(c));
    CHECK_CONTAINS(str(c, "detail"), "answered 401 Unauthorized");
    json_decref(c);
}

static void test_probe_refused(void)
{
    json_t *c = probe_check("{\"type\":\"probe_result\",\"id\":\"pr_1\",\"steps\":[" DNS_OK
                            ",{\"step\":\"tcp\",\"ok\":false,\"ms\":0.1,\"error\":\"refused\","
                            "\"detail\":\"10.1.2.3:8080: connection refused\"}]}");
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "detail"), "tcp: 10.1.2.3:8080: connection refused");
    CHECK_STREQ(str(c, "hint"), "the backend refused the connection: is the app running on "
                                "hr.corp.local:8080, and does the connector's host reach it?");
    json_decref(c);
}

static void test_probe_tcp_other(void)
{
    json_t *c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK
                            ",{\"step\":\"tcp\",\"ok\":false,\"ms\":8000,\"error\":\"timeout\"}]}");
    CHECK_CONTAINS(str(c, "hint"), "hr.corp.local:8080 did not accept the connection in time");
    /* Without a detail, the error code stands in. */
    CHECK_STREQ(str(c, "detail"), "tcp: timeout");
    json_decref(c);
    c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK
                    ",{\"step\":\"tcp\",\"ok\":false,\"ms\":1,\"error\":\"unreachable\"}]}");
    CHECK_CONTAINS(str(c, "hint"), "no route from the connector's host to hr.corp.local:8080");
    json_decref(c);
    /* An error code from a newer connector reads like "failed". */
    c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK
                    ",{\"step\":\"tcp\",\"ok\":false,\"ms\":1,\"error\":\"quantum\"}]}");
    CHECK_CONTAINS(str(c, "hint"), "connecting to hr.corp.local:8080 failed");
    json_decref(c);
    /* So does a step the edge does not know. */
    c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK
                    ",{\"step\":\"quic\",\"ok\":false,\"ms\":1,\"error\":\"failed\"}]}");
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "detail"), "quic: failed");
    CHECK_CONTAINS(str(c, "hint"), "see the connector's log (event probe_done)");
    json_decref(c);
}

static void test_probe_dns(void)
{
    json_t *c = probe_check("{\"id\":\"pr_1\",\"steps\":[{\"step\":\"dns\",\"ok\":false,"
                            "\"ms\":2,\"error\":\"not_found\",\"detail\":\"hr.corp.local: "
                            "unknown node or service\"}]}");
    CHECK(!is_ok(c));
    CHECK_CONTAINS(str(c, "hint"), "cannot resolve hr.corp.local");
    json_decref(c);
    c = probe_check("{\"id\":\"pr_1\",\"steps\":[{\"step\":\"dns\",\"ok\":false,\"ms\":2,"
                    "\"error\":\"failed\"}]}");
    CHECK_CONTAINS(str(c, "hint"), "name resolution failed on the connector's host");
    json_decref(c);
}

static void test_probe_tls(void)
{
    json_t *c =
        probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK "," TCP_OK
                    ",{\"step\":\"tls\",\"ok\":false,\"ms\":3,\"error\":\"untrusted\",\"detail\":"
                    "\"certificate not trusted: The certificate is not correctly signed by the "
                    "trusted CA\"}]}");
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "detail"), "tls: certificate not trusted: The certificate is not "
                                  "correctly signed by the trusted CA");
    CHECK_CONTAINS(str(c, "hint"), "the certificate of the backend is not trusted by the "
                                   "connector: install its CA in the trust store of the "
                                   "connector's host");
    CHECK_CONTAINS(str(c, "hint"), "the PEM bundle named by backend_ca_file in connector.json");
    CHECK_CONTAINS(str(c, "hint"), "or set validate_backend_tls to false");
    json_decref(c);

    c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK "," TCP_OK
                    ",{\"step\":\"tls\",\"ok\":false,\"ms\":3,\"error\":\"name_mismatch\"}]}");
    CHECK_CONTAINS(str(c, "hint"), "the backend's certificate does not name hr.corp.local");
    json_decref(c);
    c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK "," TCP_OK
                    ",{\"step\":\"tls\",\"ok\":false,\"ms\":3,\"error\":\"expired\"}]}");
    CHECK_CONTAINS(str(c, "hint"), "outside its validity period");
    json_decref(c);
    c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK "," TCP_OK
                    ",{\"step\":\"tls\",\"ok\":false,\"ms\":3,\"error\":\"handshake\"}]}");
    CHECK_CONTAINS(str(c, "hint"), "does the backend speak https on this port?");
    json_decref(c);
}

static void test_probe_http_failures(void)
{
    json_t *c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK "," TCP_OK
                            ",{\"step\":\"http\",\"ok\":true,\"ms\":4,\"status\":503,"
                            "\"detail\":\"503 Service Unavailable\"}]}");
    CHECK(!is_ok(c));
    CHECK_CONTAINS(str(c, "detail"), "answered 503 Service Unavailable");
    CHECK_STREQ(str(c, "hint"), "the backend answered 503 Service Unavailable: it is reachable "
                                "but failing; check its logs");
    json_decref(c);

    c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK "," TCP_OK
                    ",{\"step\":\"http\",\"ok\":true,\"ms\":4,\"status\":404}]}");
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "hint"),
                "the backend answered 404 Not Found for /hr/: check the path of internal_url");
    json_decref(c);

    c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK "," TCP_OK
                    ",{\"step\":\"http\",\"ok\":false,\"ms\":8000,\"error\":\"timeout\"}]}");
    CHECK_CONTAINS(str(c, "hint"), "sent no answer in time");
    CHECK_CONTAINS(str(c, "hint"), "backend_timeout, default: 85 s");
    json_decref(c);

    c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK "," TCP_OK
                    ",{\"step\":\"http\",\"ok\":false,\"ms\":1,\"error\":\"closed\"}]}");
    CHECK_CONTAINS(str(c, "hint"), "use an https:// internal_url");
    json_decref(c);
}

static void test_probe_error_and_malformed(void)
{
    json_t *c = probe_check("{\"id\":\"pr_1\",\"steps\":[],\"error\":\"busy: too many probes in "
                            "flight\"}");
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "detail"),
                "the connector did not run the probe: busy: too many probes in flight");
    CHECK_CONTAINS(str(c, "hint"), "try again in a moment");
    json_decref(c);

    static const char *const bad[] = {
        "{\"id\":\"pr_1\"}",
        "{\"id\":\"pr_1\",\"steps\":{}}",
        "{\"id\":\"pr_1\",\"steps\":[]}",
        "{\"id\":\"pr_1\",\"steps\":[{\"step\":\"dns\"}]}",
        "{\"id\":\"pr_1\",\"steps\":[{\"ok\":true}]}",
        "{\"id\":\"pr_1\",\"steps\":[42]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = probe_check(bad[i]);
        CHECK(!is_ok(c));
        CHECK_STREQ(str(c, "detail"), "the connector's probe_result is malformed");
        CHECK_EQ(json_array_size(json_object_get(c, "steps")), 0);
        json_decref(c);
    }

    /* All steps ok but no HTTP answer: not a pass. */
    c = probe_check("{\"id\":\"pr_1\",\"steps\":[" DNS_OK "," TCP_OK "]}");
    CHECK(!is_ok(c));
    CHECK_CONTAINS(str(c, "detail"), "stopped after the tcp step");
    json_decref(c);
}

static void test_probe_long_detail_cut(void)
{
    char detail[1200];
    memset(detail, 'x', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    /* A two-byte character across the cut must not be split. */
    memcpy(detail + 511, "\xc3\xa9", 2);
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"id\":\"pr_1\",\"steps\":[{\"step\":\"dns\",\"ok\":false,\"ms\":1,"
             "\"error\":\"failed\",\"detail\":\"%s\"}]}",
             detail);
    json_t *c = probe_check(text);
    json_t *step = json_array_get(json_object_get(c, "steps"), 0);
    CHECK_EQ(strlen(str(step, "detail")), 511);
    json_decref(c);
}

static void test_no_answer(void)
{
    json_t *c = ptc_diag_check_no_answer("cn_0123456789abcdef", NULL);
    CHECK(!is_ok(c));
    CHECK_STREQ(str(c, "detail"), "no answer within 10 s");
    CHECK_CONTAINS(str(c, "hint"), "connector cn_0123456789abcdef did not answer the probe");
    CHECK_CONTAINS(str(c, "hint"), "update it");
    CHECK_EQ(json_array_size(json_object_get(c, "steps")), 0);
    json_decref(c);
    c = ptc_diag_check_no_answer("cn_0123456789abcdef", "the probe could not be sent");
    CHECK_STREQ(str(c, "detail"), "the probe could not be sent");
    CHECK_CONTAINS(str(c, "hint"), "try again");
    json_decref(c);
}

/* ---- report ---- */

static void test_report(void)
{
    ptc_app_t *app = hr_app();
    json_t *checks = json_array();
    json_array_append_new(checks, ptc_diag_check_configuration(app, &CTX, true));
    json_array_append_new(checks, ptc_diag_check_connectors("Default", 1, NULL, 0));
    json_t *r = ptc_diag_report(app, checks, 12);
    CHECK(json_is_true(json_object_get(r, "ok")));
    CHECK_STREQ(str(r, "app"), "hr");
    CHECK_STREQ(str(r, "external_url"), "https://hr.apps.example.com/");
    CHECK_STREQ(str(r, "internal_url"), "http://hr.corp.local:8080/hr/");
    CHECK_STREQ(str(r, "connector_group"), "Default");
    CHECK_EQ(json_integer_value(json_object_get(r, "dur_ms")), 12);
    CHECK_EQ(json_array_size(json_object_get(r, "checks")), 2);
    json_decref(r);

    checks = json_array();
    json_array_append_new(checks, ptc_diag_check_configuration(app, &CTX, true));
    json_array_append_new(checks, ptc_diag_check_no_answer("cn_0123456789abcdef", NULL));
    r = ptc_diag_report(app, checks, 10000);
    CHECK(json_is_false(json_object_get(r, "ok")));
    json_decref(r);

    /* No checks at all is not a pass. */
    r = ptc_diag_report(app, json_array(), 0);
    CHECK(json_is_false(json_object_get(r, "ok")));
    json_decref(r);
    ptc_app_unref(app);
}

/* ---- the default certificate ---- */

static void test_load_cert(void)
{
    const char *dir = ptc_test_tmpdir();
    ptc_certgen_cert_t ca;
    ptc_certgen_cert_t leaf;
    ptc_certgen_ca(NULL, "Diag CA", &ca);
    static const char *const sans[] = {"DNS:Edge.Example.com", "DNS:*.apps.example.com",
                                       "IP:127.0.0.1", NULL};
    ptc_certgen_opts_t o = {.sans = sans};
    ptc_certgen_leaf(&ca, dir, "edge", &o, &leaf);
    ptc_diag_cert_t c;
    char err[256] = "";
    CHECK_OK(ptc_diag_load_cert(leaf.cert_path, &c, err, sizeof(err)));
    CHECK_NULL(c.id);
    CHECK_EQ(c.names_cnt, 2);
    CHECK_STREQ(c.names[0], "edge.example.com");
    CHECK_STREQ(c.names[1], "*.apps.example.com");
    uint64_t now = ptc_edge_now_ms();
    CHECK(c.not_before < now);
    CHECK(c.not_after > now + 20 * DAY);
    ptc_diag_cert_dispose(&c);
    CHECK_EQ(c.names_cnt, 0);

    /* Without subjectAltNames the subject CN is the name served. */
    ptc_certgen_cert_t cn_only;
    ptc_certgen_opts_t o2 = {.cn = "Legacy.Example.com"};
    ptc_certgen_leaf(&ca, dir, "legacy", &o2, &cn_only);
    CHECK_OK(ptc_diag_load_cert(cn_only.cert_path, &c, err, sizeof(err)));
    CHECK_EQ(c.names_cnt, 1);
    CHECK_STREQ(c.names[0], "legacy.example.com");
    ptc_diag_cert_dispose(&c);

    char path[600];
    snprintf(path, sizeof(path), "%s/missing.pem", dir);
    CHECK_EQ(ptc_diag_load_cert(path, &c, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "missing.pem");
    ptc_certgen_write_file(dir, "junk.pem", "not a certificate\n", 18, path, sizeof(path));
    CHECK_EQ(ptc_diag_load_cert(path, &c, err, sizeof(err)), PTC_EFORMAT);
    ptc_certgen_dispose(&cn_only);
    ptc_certgen_dispose(&leaf);
    ptc_certgen_dispose(&ca);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_cert_name_matches),
    PTC_TEST(test_status_ok),
    PTC_TEST(test_configuration_ok_and_notes),
    PTC_TEST(test_configuration_missing_group),
    PTC_TEST(test_configuration_stale_idp),
    PTC_TEST(test_certificate_default_wildcard),
    PTC_TEST(test_certificate_exact_beats_wildcard),
    PTC_TEST(test_certificate_missing),
    PTC_TEST(test_certificate_expired),
    PTC_TEST(test_certificate_http_external),
    PTC_TEST(test_connectors),
    PTC_TEST(test_probe_healthy),
    PTC_TEST(test_probe_refused),
    PTC_TEST(test_probe_tcp_other),
    PTC_TEST(test_probe_dns),
    PTC_TEST(test_probe_tls),
    PTC_TEST(test_probe_http_failures),
    PTC_TEST(test_probe_error_and_malformed),
    PTC_TEST(test_probe_long_detail_cut),
    PTC_TEST(test_no_answer),
    PTC_TEST(test_report),
    PTC_TEST(test_load_cert),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
