/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of connector/probe: parsing the `probe` document and the error answer
 * (docs/protocol.md §4.8.1), then real probes on a loop against the loopback test server
 * (tests/support/httpsrv) over plain TCP and TLS: a healthy backend, a refused connection,
 * a connection that hangs, a backend that closes, answers garbage or never answers, TLS with
 * a trusted, untrusted, misnamed or expired certificate, without validation, and against a
 * plain-HTTP port; cancellation and the in-flight limit. Each run ends with a clean loop.
 */
#include "connector/probe.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tls.h"
#include "tests/support/certgen.h"
#include "tests/support/httpsrv.h"
#include "tests/support/loop.h"
#include "tests/support/test.h"

/* ---- parsing ---- */

static int parse(const char *text, ptc_probe_req_t *req, char *err)
{
    return ptc_probe_parse(text, strlen(text), req, err, 256);
}

static void test_parse_valid(void)
{
    ptc_probe_req_t req;
    char err[256];
    CHECK_OK(parse("{\"type\":\"probe\",\"id\":\"pr_0123456789abcdef\",\"url\":\"https://hr.corp."
                   "local:8443/hr/\",\"validate_tls\":true,\"timeout_ms\":8000,\"future\":1}",
                   &req, err));
    CHECK_STREQ(req.id, "pr_0123456789abcdef");
    CHECK_STREQ(req.url, "https://hr.corp.local:8443/hr/");
    CHECK(req.validate_tls);
    CHECK_UEQ(req.timeout_ms, 8000);
    ptc_probe_req_dispose(&req);
    CHECK_NULL(req.url);
    ptc_probe_req_dispose(&req);
}

static void test_parse_errors(void)
{
    static const struct {
        const char *doc;
        const char *id; /* the id left for an error answer */
        const char *msg;
    } cases[] = {
        {"[]", "", "not a JSON object"},
        {"{\"type\":\"probe\",\"type\":\"probe\"}", "", "not a JSON object"},
        {"{\"type\":\"other\",\"id\":\"x\"}", "", "type"},
        {"{\"type\":\"probe\",\"id\":\"bad id\",\"url\":\"http://a/\"}", "", "id:"},
        {"{\"type\":\"probe\",\"id\":\"\",\"url\":\"http://a/\"}", "", "id:"},
        {"{\"type\":\"probe\",\"id\":\"p1\",\"url\":\"ftp://a/\",\"validate_tls\":true,"
         "\"timeout_ms\":1000}",
         "p1", "url:"},
        {"{\"type\":\"probe\",\"id\":\"p1\",\"url\":\"http://user:pw@a/\",\"validate_tls\":true,"
         "\"timeout_ms\":1000}",
         "p1", "url:"},
        {"{\"type\":\"probe\",\"id\":\"p1\",\"url\":42,\"validate_tls\":true,\"timeout_ms\":1000}",
         "p1", "url:"},
        {"{\"type\":\"probe\",\"id\":\"p1\",\"url\":\"http://a/\",\"validate_tls\":1,"
         "\"timeout_ms\":1000}",
         "p1", "validate_tls"},
        {"{\"type\":\"probe\",\"id\":\"p1\",\"url\":\"http://a/\",\"validate_tls\":false}", "p1",
         "timeout_ms"},
        {"{\"type\":\"probe\",\"id\":\"p1\",\"url\":\"http://a/\",\"validate_tls\":false,"
         "\"timeout_ms\":99}",
         "p1", "timeout_ms"},
        {"{\"type\":\"probe\",\"id\":\"p1\",\"url\":\"http://a/\",\"validate_tls\":false,"
         "\"timeout_ms\":60001}",
         "p1", "timeout_ms"},
        {"{\"type\":\"probe\",\"id\":\"p1\",\"url\":\"http://a/\",\"validate_tls\":false,"
         "\"timeout_ms\":1.5}",
         "p1", "timeout_ms"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ptc_probe_req_t req;
        char err[256] = "";
        CHECK_EQ(parse(cases[i].doc, &req, err), PTC_EFORMAT);
        CHECK_STREQ(req.id, cases[i].id);
        CHECK_NULL(req.url);
        CHECK_CONTAINS(err, cases[i].msg);
        ptc_probe_req_dispose(&req);
    }
}

static void test_error_result(void)
{
    size_t len = 0;
    char *doc = ptc_probe_error_result("pr_1", "busy: too many probes in flight\x01", &len);
    CHECK_EQ(len, strlen(doc));
    json_error_t jerr;
    json_t *j = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
    CHECK_NOT_NULL(j);
    CHECK_STREQ(json_string_value(json_object_get(j, "type")), "probe_result");
    CHECK_STREQ(json_string_value(json_object_get(j, "id")), "pr_1");
    CHECK_EQ(json_array_size(json_object_get(j, "steps")), 0);
    CHECK_STREQ(json_string_value(json_object_get(j, "error")), "busy: too many probes in flight?");
    json_decref(j);
    free(doc);
}

/* ---- probes on a loop ---- */

typedef struct pctx pctx_t;
typedef void (*handler_fn)(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r);

struct pctx {
    uv_loop_t loop;
    ptc_httpsrv_t *srv;
    handler_fn handler;
    uint16_t port;
    ptc_probe_t *list;
    int calls;
    json_t *result;
    ptc_certgen_cert_t ca;
    ptc_certgen_cert_t leaf;
    ptc_tls_config_t *srv_tls;
    char req_line[300];
    char headers[4096];
};

static void srv_on_request(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    pctx_t *t = ptc_httpsrv_data(ptc_httpsrv_conn_server(c));
    snprintf(t->req_line, sizeof(t->req_line), "%s %s", r->method, r->target);
    snprintf(t->headers, sizeof(t->headers), "%s", r->headers);
    if (t->handler != NULL) {
        t->handler(c, r);
    }
}

/* The server's certificate: a leaf for `sans` from a fresh CA (files in the case's tmpdir). */
static void pctx_tls(pctx_t *t, const char *const *sans, bool expired)
{
    ptc_certgen_ca(ptc_test_tmpdir(), "Probe Test CA", &t->ca);
    ptc_certgen_opts_t lo = {.sans = sans, .expired = expired};
    ptc_certgen_leaf(&t->ca, NULL, "server", &lo, &t->leaf);
    ptc_tls_certs_t *certs = ptc_tls_certs_new();
    ptc_tls_err_t err;
    CHECK_OK(ptc_tls_certs_add_pem(certs, t->leaf.cert_pem, strlen(t->leaf.cert_pem),
                                   t->leaf.key_pem, strlen(t->leaf.key_pem), true, &err));
    ptc_tls_server_opts_t so = {.certs = certs};
    CHECK_OK(ptc_tls_server_config_new(&so, &t->srv_tls, &err));
    ptc_tls_certs_unref(certs);
}

static void pctx_init(pctx_t *t, handler_fn handler, bool server)
{
    CHECK_OK(uv_loop_init(&t->loop));
    t->handler = handler;
    if (server) {
        ptc_httpsrv_opts_t so = {.tls = t->srv_tls, .on_request = srv_on_request, .data = t};
        t->srv = ptc_httpsrv_start(&t->loop, &so);
        t->port = ptc_httpsrv_port(t->srv);
    }
}

static void pctx_dispose(pctx_t *t)
{
    ptc_test_loop_finish(&t->loop);
    json_decref(t->result);
    ptc_tls_config_unref(t->srv_tls);
    ptc_certgen_dispose(&t->leaf);
    ptc_certgen_dispose(&t->ca);
}

static void on_done(void *data, const char *doc, size_t len)
{
    pctx_t *t = data;
    t->calls++;
    json_error_t jerr;
    json_decref(t->result);
    t->result = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
    CHECK_NOT_NULL(t->result);
    if (t->list == NULL && t->srv != NULL) {
        ptc_httpsrv_close(t->srv);
        t->srv = NULL;
    }
}

/* Runs one probe to its end; returns its steps (borrowed from t->result). */
static json_t *run_probe(pctx_t *t, const char *url, bool validate, uint64_t timeout_ms,
                         const char *ca_file)
{
    ptc_probe_req_t req;
    memset(&req, 0, sizeof(req));
    snprintf(req.id, sizeof(req.id), "pr_test");
    req.url = (char *)url;
    req.validate_tls = validate;
    req.timeout_ms = timeout_ms;
    ptc_probe_opts_t o = {
        .loop = &t->loop, .req = &req, .ca_file = ca_file, .on_done = on_done, .data = t};
    CHECK_OK(ptc_probe_start(&o, &t->list));
    CHECK_EQ(t->calls, 0); /* never from within start */
    CHECK_EQ(ptc_probe_count(&t->list), 1);
    ptc_test_loop_run(&t->loop, 20000, "probe");
    CHECK_EQ(t->calls, 1);
    CHECK_NULL(t->list);
    CHECK_STREQ(json_string_value(json_object_get(t->result, "type")), "probe_result");
    CHECK_STREQ(json_string_value(json_object_get(t->result, "id")), "pr_test");
    json_t *steps = json_object_get(t->result, "steps");
    CHECK(json_is_array(steps));
    return steps;
}

static const char *step_str(json_t *steps, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(steps, i), key));
}

static bool step_ok(json_t *steps, size_t i)
{
    return json_is_true(json_object_get(json_array_get(steps, i), "ok"));
}

/* Every step has a name, ok and a non-negative ms; only the last may fail. */
static void check_shape(json_t *steps, const char *const *names, size_t n, bool last_ok)
{
    CHECK_EQ(json_array_size(steps), n);
    for (size_t i = 0; i < n; i++) {
        CHECK_STREQ(step_str(steps, i, "step"), names[i]);
        json_t *ms = json_object_get(json_array_get(steps, i), "ms");
        CHECK(json_is_number(ms) && json_number_value(ms) >= 0);
        bool ok = step_ok(steps, i);
        CHECK(ok == (i + 1 < n || last_ok));
        CHECK((step_str(steps, i, "error") == NULL) == ok);
    }
}

static void h_hello(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)r;
    ptc_httpsrv_respond(c, 200, NULL, "hello", 5);
}

static void test_http_ok(void)
{
    pctx_t t = {0};
    pctx_init(&t, h_hello, true);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/app/x?y=1", t.port);
    json_t *steps = run_probe(&t, url, true, 5000, NULL);
    static const char *const names[] = {"dns", "tcp", "http"};
    check_shape(steps, names, 3, true);
    CHECK_STREQ(step_str(steps, 0, "detail"), "127.0.0.1");
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", t.port);
    CHECK_STREQ(step_str(steps, 1, "detail"), addr);
    CHECK_EQ(json_integer_value(json_object_get(json_array_get(steps, 2), "status")), 200);
    CHECK_CONTAINS(step_str(steps, 2, "detail"), "200 ");
    CHECK_STREQ(t.req_line, "GET /app/x?y=1");
    CHECK_CONTAINS(t.headers, addr);
    CHECK_CONTAINS(t.headers, "(probe)");
    CHECK_CONTAINS(t.headers, "close");
    pctx_dispose(&t);
}

static void h_interim_then_503(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)r;
    static const char resp[] = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                               "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n";
    ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
}

static void test_http_status_after_interim(void)
{
    pctx_t t = {0};
    pctx_init(&t, h_interim_then_503, true);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", t.port);
    json_t *steps = run_probe(&t, url, true, 5000, NULL);
    static const char *const names[] = {"dns", "tcp", "http"};
    /* The step succeeded (a head arrived): judging 503 is the edge's business. */
    check_shape(steps, names, 3, true);
    CHECK_EQ(json_integer_value(json_object_get(json_array_get(steps, 2), "status")), 503);
    CHECK_STREQ(step_str(steps, 2, "detail"), "503 Busy");
    pctx_dispose(&t);
}

static void test_refused(void)
{
    pctx_t t = {0};
    pctx_init(&t, NULL, false);
    char url[128];
    uint16_t port = ptc_test_closed_port();
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    json_t *steps = run_probe(&t, url, true, 5000, NULL);
    static const char *const names[] = {"dns", "tcp"};
    check_shape(steps, names, 2, false);
    CHECK_STREQ(step_str(steps, 1, "error"), "refused");
    char want[80];
    snprintf(want, sizeof(want), "127.0.0.1:%u: connection refused", port);
    CHECK_STREQ(step_str(steps, 1, "detail"), want);
    pctx_dispose(&t);
}

static void test_tcp_timeout(void)
{
    pctx_t t = {0};
    pctx_init(&t, NULL, false);
    uint16_t port = 0;
    int filler = -1;
    int lfd = ptc_test_blackhole(&port, &filler);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    json_t *steps = run_probe(&t, url, true, 300, NULL);
    static const char *const names[] = {"dns", "tcp"};
    check_shape(steps, names, 2, false);
    CHECK_STREQ(step_str(steps, 1, "error"), "timeout");
    CHECK_CONTAINS(step_str(steps, 1, "detail"), "within 300 ms");
    close(filler);
    close(lfd);
    pctx_dispose(&t);
}

static void h_abort(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)r;
    ptc_httpsrv_abort(c);
}

static void h_garbage(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)r;
    static const char resp[] = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    ptc_httpsrv_write(c, resp, sizeof(resp) - 1);
}

static void h_silent(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *r)
{
    (void)c;
    (void)r;
}

static void test_http_failures(void)
{
    static const struct {
        handler_fn h;
        const char *error;
        const char *detail;
    } cases[] = {
        {h_abort, "closed", "closed the connection before a complete response head"},
        {h_garbage, "malformed", "not a valid HTTP/1.1 response"},
        {h_silent, "timeout", "no response head within 300 ms"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pctx_t t = {0};
        pctx_init(&t, cases[i].h, true);
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u/", t.port);
        json_t *steps = run_probe(&t, url, true, 300, NULL);
        static const char *const names[] = {"dns", "tcp", "http"};
        check_shape(steps, names, 3, false);
        CHECK_STREQ(step_str(steps, 2, "error"), cases[i].error);
        CHECK_CONTAINS(step_str(steps, 2, "detail"), cases[i].detail);
        pctx_dispose(&t);
    }
}

static const char *const LOCAL_SANS[] = {"DNS:localhost", "IP:127.0.0.1", NULL};

static void test_tls_trusted(void)
{
    pctx_t t = {0};
    pctx_tls(&t, LOCAL_SANS, false);
    pctx_init(&t, h_hello, true);
    char url[128];
    snprintf(url, sizeof(url), "https://localhost:%u/secure/", t.port);
    json_t *steps = run_probe(&t, url, true, 5000, t.ca.cert_path);
    static const char *const names[] = {"dns", "tcp", "tls", "http"};
    check_shape(steps, names, 4, true);
    CHECK_CONTAINS(step_str(steps, 2, "detail"), "TLSv1.2, ");
    CHECK_CONTAINS(step_str(steps, 2, "detail"), "certificate valid");
    CHECK_STREQ(t.req_line, "GET /secure/");
    pctx_dispose(&t);
}

static void test_tls_untrusted(void)
{
    pctx_t t = {0};
    pctx_tls(&t, LOCAL_SANS, false);
    pctx_init(&t, h_hello, true);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/", t.port);
    /* No CA file: the system bundle, which does not know the test CA. */
    json_t *steps = run_probe(&t, url, true, 5000, NULL);
    static const char *const names[] = {"dns", "tcp", "tls"};
    check_shape(steps, names, 3, false);
    CHECK_STREQ(step_str(steps, 2, "error"), "untrusted");
    CHECK_CONTAINS(step_str(steps, 2, "detail"), "certificate not trusted: ");
    CHECK_STREQ(t.req_line, ""); /* no request went to an unverified server */
    pctx_dispose(&t);
}

static void test_tls_name_mismatch_and_expired(void)
{
    static const char *const other[] = {"DNS:other.test", NULL};
    pctx_t t = {0};
    pctx_tls(&t, other, false);
    pctx_init(&t, h_hello, true);
    char url[128];
    snprintf(url, sizeof(url), "https://localhost:%u/", t.port);
    json_t *steps = run_probe(&t, url, true, 5000, t.ca.cert_path);
    CHECK_EQ(json_array_size(steps), 3);
    CHECK_STREQ(step_str(steps, 2, "error"), "name_mismatch");
    CHECK_CONTAINS(step_str(steps, 2, "detail"), "certificate not valid for localhost");
    pctx_dispose(&t);

    pctx_t e = {0};
    pctx_tls(&e, LOCAL_SANS, true);
    pctx_init(&e, h_hello, true);
    snprintf(url, sizeof(url), "https://localhost:%u/", e.port);
    steps = run_probe(&e, url, true, 5000, e.ca.cert_path);
    CHECK_EQ(json_array_size(steps), 3);
    CHECK_STREQ(step_str(steps, 2, "error"), "expired");
    CHECK_CONTAINS(step_str(steps, 2, "detail"), "expired");
    pctx_dispose(&e);
}

static void test_tls_not_validated(void)
{
    pctx_t t = {0};
    pctx_tls(&t, LOCAL_SANS, false);
    pctx_init(&t, h_hello, true);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/", t.port);
    json_t *steps = run_probe(&t, url, false, 5000, NULL);
    static const char *const names[] = {"dns", "tcp", "tls", "http"};
    check_shape(steps, names, 4, true);
    CHECK_CONTAINS(step_str(steps, 2, "detail"), "certificate not checked");
    pctx_dispose(&t);
}

static void test_tls_to_plain_port_and_bad_ca(void)
{
    pctx_t t = {0};
    pctx_init(&t, h_hello, true);
    char url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/", t.port);
    json_t *steps = run_probe(&t, url, true, 5000, NULL);
    CHECK_EQ(json_array_size(steps), 3);
    CHECK_STREQ(step_str(steps, 2, "step"), "tls");
    const char *err = step_str(steps, 2, "error");
    /* A plain-HTTP server answers the ClientHello with a 400 page or just closes. */
    CHECK(strcmp(err, "handshake") == 0 || strcmp(err, "closed") == 0);
    pctx_dispose(&t);

    pctx_t b = {0};
    pctx_init(&b, h_hello, true);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/no-such-ca.pem", ptc_test_tmpdir());
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/", b.port);
    steps = run_probe(&b, url, true, 5000, missing);
    CHECK_EQ(json_array_size(steps), 3);
    CHECK_STREQ(step_str(steps, 2, "error"), "local");
    CHECK_CONTAINS(step_str(steps, 2, "detail"), "no-such-ca.pem");
    pctx_dispose(&b);
}

static void never_called(void *data, const char *doc, size_t len)
{
    (void)data;
    (void)doc;
    (void)len;
    ptc_test_fail(__FILE__, __LINE__, "a cancelled probe delivered a result");
}

static void on_cancel_timer(uv_timer_t *timer)
{
    pctx_t *t = timer->data;
    ptc_probe_cancel_all(&t->list);
    ptc_httpsrv_close(t->srv);
    t->srv = NULL;
    uv_close((uv_handle_t *)timer, NULL);
}

static void test_cancel(void)
{
    /* Before it even started. */
    pctx_t t = {0};
    pctx_init(&t, NULL, false);
    ptc_probe_req_t req = {.id = "pr_c", .url = "http://127.0.0.1:1/", .timeout_ms = 1000};
    ptc_probe_opts_t o = {.loop = &t.loop, .req = &req, .on_done = never_called};
    CHECK_OK(ptc_probe_start(&o, &t.list));
    ptc_probe_cancel_all(&t.list);
    CHECK_NULL(t.list);
    ptc_test_loop_run(&t.loop, 5000, "cancelled probe");
    pctx_dispose(&t);

    /* While it waits for a backend that never answers. */
    pctx_t w = {0};
    pctx_init(&w, h_silent, true);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", w.port);
    ptc_probe_req_t req2 = {.id = "pr_w", .url = url, .timeout_ms = 10000};
    ptc_probe_opts_t o2 = {.loop = &w.loop, .req = &req2, .on_done = never_called};
    CHECK_OK(ptc_probe_start(&o2, &w.list));
    uv_timer_t timer;
    CHECK_OK(uv_timer_init(&w.loop, &timer));
    timer.data = &w;
    CHECK_OK(uv_timer_start(&timer, on_cancel_timer, 200, 0));
    ptc_test_loop_run(&w.loop, 5000, "cancelled probe");
    CHECK_NULL(w.list);
    pctx_dispose(&w);
}

static void count_done(void *data, const char *doc, size_t len)
{
    (void)doc;
    (void)len;
    (*(int *)data)++;
}

static void test_limit(void)
{
    uv_loop_t loop;
    CHECK_OK(uv_loop_init(&loop));
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", ptc_test_closed_port());
    ptc_probe_req_t req = {.id = "pr_l", .url = url, .timeout_ms = 5000};
    int done = 0;
    ptc_probe_t *list = NULL;
    ptc_probe_opts_t o = {.loop = &loop, .req = &req, .on_done = count_done, .data = &done};
    for (int i = 0; i < PTC_PROBE_MAX_IN_FLIGHT; i++) {
        CHECK_OK(ptc_probe_start(&o, &list));
    }
    CHECK_EQ(ptc_probe_count(&list), PTC_PROBE_MAX_IN_FLIGHT);
    CHECK_EQ(ptc_probe_start(&o, &list), PTC_ELIMIT);
    ptc_probe_req_t bad = {.id = "pr_b", .url = "not a url", .timeout_ms = 5000};
    o.req = &bad;
    ptc_probe_t *other = NULL;
    CHECK_EQ(ptc_probe_start(&o, &other), UV_EINVAL);
    ptc_test_loop_run(&loop, 10000, "probes");
    CHECK_EQ(done, PTC_PROBE_MAX_IN_FLIGHT);
    CHECK_NULL(list);
    ptc_test_loop_finish(&loop);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_parse_valid),
    PTC_TEST(test_parse_errors),
    PTC_TEST(test_error_result),
    PTC_TEST(test_http_ok),
    PTC_TEST(test_http_status_after_interim),
    PTC_TEST(test_refused),
    PTC_TEST(test_tcp_timeout),
    PTC_TEST(test_http_failures),
    PTC_TEST(test_tls_trusted),
    PTC_TEST(test_tls_untrusted),
    PTC_TEST(test_tls_name_mismatch_and_expired),
    PTC_TEST(test_tls_not_validated),
    PTC_TEST(test_tls_to_plain_port_and_bad_ca),
    PTC_TEST(test_cancel),
    PTC_TEST(test_limit),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
