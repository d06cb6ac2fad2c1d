/* SPDX-License-Identifier: MIT */
/*
 * Tests of the admin API's routes (edge/admin_routes.c) without sockets: each case opens a
 * real edge/state on a JSON-directory store in a temporary directory and a registry, then
 * calls ptc_admin_routes_handle() with a method, a target and a body, and checks the status
 * and the JSON answer: routing (404, 405 + Allow, percent-decoding), body checks whose 400
 * messages name the field, state errors (409), the JSON shapes of docs/admin-api.md, and
 * that secrets (token text, certificate keys) appear only where they must; and the app test
 * route, whose deferred answer is run on a loop.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "edge/admin_int.h"
#include "edge/edge.h"
#include "edge/registry.h"
#include "edge/state.h"
#include "edge/store.h"
#include "tests/support/certgen.h"
#include "tests/support/loop.h"
#include "tests/support/test.h"

/* 2023-11-14T22:13:20Z */
#define NOW 1700000000000ull

typedef struct fixture {
    ptc_edge_t edge;
    ptc_store_t *store;
    ptc_app_ctx_t ctx;
} fixture_t;

static void setup(fixture_t *f)
{
    CHECK_OK(ptc_keys_init());
    memset(f, 0, sizeof(*f));
    char err[256];
    CHECK_OK(ptc_store_jsondir_open(ptc_test_tmpdir(), &f->store, err, sizeof(err)));
    f->ctx.default_domain = "apps.example.com";
    CHECK_OK(ptc_state_open(f->store, &f->ctx, NOW, &f->edge.state, err, sizeof(err)));
    f->edge.registry = ptc_registry_new();
    f->edge.started_ms = NOW - 90 * 1000;
    f->edge.cfg.edge_host = "edge.example.com";
}

static void teardown(fixture_t *f)
{
    ptc_registry_free(f->edge.registry);
    ptc_state_free(f->edge.state);
    ptc_store_free(f->store);
}

/* Serves one request; body_text NULL means no body. The caller disposes with done(). */
static void call(fixture_t *f, ptc_admin_req_t *req, const char *method, const char *target,
                 const char *body_text)
{
    memset(req, 0, sizeof(*req));
    req->method = method;
    req->target = target;
    req->now_ms = NOW;
    if (body_text != NULL) {
        json_error_t jerr;
        req->body = json_loads(body_text, JSON_DECODE_ANY, &jerr);
        CHECK_NOT_NULL(req->body);
    }
    ptc_admin_routes_handle(&f->edge, req);
}

static void done(ptc_admin_req_t *req)
{
    json_decref(req->answer);
    json_decref(req->body);
    req->answer = NULL;
    req->body = NULL;
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void check_error(const ptc_admin_req_t *req, int status, const char *code,
                        const char *message_part)
{
    CHECK_EQ(req->status, status);
    CHECK_NOT_NULL(req->answer);
    CHECK_STREQ(str(req->answer, "error"), code);
    CHECK_NOT_NULL(str(req->answer, "message"));
    CHECK_CONTAINS(str(req->answer, "message"), message_part);
}

/* ---- routing ---- */

static void test_unknown_paths_are_404(void)
{
    fixture_t f;
    setup(&f);
    ptc_admin_req_t r;
    static const char *const paths[] = {"/",
                                        "/v1",
                                        "/v1/",
                                        "/v2/groups",
                                        "/v1/nothing",
                                        "/v1/groups/",
                                        "/v1/groups/Default/x",
                                        "/v1/status/x",
                                        "/v1/Groups"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        call(&f, &r, "GET", paths[i], NULL);
        check_error(&r, 404, "not_found", "");
        CHECK(!r.is_change);
        done(&r);
    }
    call(&f, &r, "GET", "*", NULL);
    check_error(&r, 400, "bad_request", "path");
    done(&r);
    teardown(&f);
}

static void test_wrong_method_is_405_with_allow(void)
{
    fixture_t f;
    setup(&f);
    ptc_admin_req_t r;
    call(&f, &r, "PUT", "/v1/groups", "{}");
    check_error(&r, 405, "method_not_allowed", "PUT");
    CHECK_STREQ(r.allow, "GET, POST");
    CHECK(r.is_change);
    CHECK_STREQ(r.resource, "group");
    done(&r);
    call(&f, &r, "POST", "/v1/connectors", "{}");
    CHECK_EQ(r.status, 405);
    CHECK_STREQ(r.allow, "GET");
    done(&r);
    call(&f, &r, "GET", "/v1/tokens/tok_00000000", NULL);
    CHECK_EQ(r.status, 405);
    CHECK_STREQ(r.allow, "DELETE");
    done(&r);
    call(&f, &r, "delete", "/v1/groups/Default", NULL); /* methods are case-sensitive */
    CHECK_EQ(r.status, 405);
    CHECK_STREQ(r.allow, "GET, DELETE");
    done(&r);
    teardown(&f);
}

static void test_ids_are_percent_decoded(void)
{
    fixture_t f;
    setup(&f);
    ptc_admin_req_t r;
    call(&f, &r, "POST", "/v1/groups", "{\"name\":\"Site A\"}");
    CHECK_EQ(r.status, 201);
    done(&r);
    call(&f, &r, "GET", "/v1/groups/Site%20A?verbose=1", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_STREQ(str(r.answer, "name"), "Site A");
    CHECK_STREQ(r.id, "Site A");
    done(&r);
    call(&f, &r, "GET", "/v1/groups/Site%2", NULL);
    check_error(&r, 400, "bad_request", "percent-encoding");
    done(&r);
    call(&f, &r, "GET", "/v1/groups/a%zz", NULL);
    check_error(&r, 400, "bad_request", "percent-encoding");
    done(&r);
    call(&f, &r, "GET", "/v1/groups/a%00b", NULL);
    check_error(&r, 400, "bad_request", "NUL");
    done(&r);
    char longpath[600];
    snprintf(longpath, sizeof(longpath), "/v1/apps/%0300d", 0);
    call(&f, &r, "GET", longpath, NULL);
    check_error(&r, 400, "bad_request", "longer");
    done(&r);
    teardown(&f);
}

/* ---- groups ---- */

static void test_groups(void)
{
    fixture_t f;
    setup(&f);
    ptc_admin_req_t r;
    call(&f, &r, "GET", "/v1/groups", NULL);
    CHECK_EQ(r.status, 200);
    json_t *groups = json_object_get(r.answer, "groups");
    CHECK_EQ(json_array_size(groups), 1);
    json_t *g = json_array_get(groups, 0);
    CHECK_STREQ(str(g, "name"), "Default");
    CHECK_EQ(json_integer_value(json_object_get(g, "connectors")), 0);
    CHECK_EQ(json_integer_value(json_object_get(g, "apps")), 0);
    CHECK_NOT_NULL(str(g, "created_at"));
    done(&r);

    call(&f, &r, "POST", "/v1/groups", "{\"name\":\"edge-eu\"}");
    CHECK_EQ(r.status, 201);
    CHECK_STREQ(str(r.answer, "name"), "edge-eu");
    CHECK_STREQ(str(r.answer, "created_at"), "2023-11-14T22:13:20.000Z");
    CHECK_STREQ(r.id, "edge-eu");
    CHECK_STREQ(r.resource, "group");
    CHECK(r.is_change);
    done(&r);

    call(&f, &r, "POST", "/v1/groups", "{\"name\":\"edge-eu\"}");
    check_error(&r, 409, "conflict", "edge-eu");
    done(&r);
    call(&f, &r, "POST", "/v1/groups", "{}");
    check_error(&r, 400, "bad_request", "name");
    done(&r);
    call(&f, &r, "POST", "/v1/groups", "{\"name\":7}");
    check_error(&r, 400, "bad_request", "name: expected a string");
    done(&r);
    call(&f, &r, "POST", "/v1/groups", "{\"name\":\"x\",\"color\":\"red\"}");
    check_error(&r, 400, "bad_request", "color: unknown key");
    done(&r);
    call(&f, &r, "POST", "/v1/groups", "[\"x\"]");
    check_error(&r, 400, "bad_request", "body");
    done(&r);
    call(&f, &r, "POST", "/v1/groups", NULL);
    check_error(&r, 400, "bad_request", "body");
    done(&r);
    call(&f, &r, "POST", "/v1/groups", "{\"name\":\"bad/name\"}");
    check_error(&r, 400, "bad_request", "name");
    done(&r);

    call(&f, &r, "DELETE", "/v1/groups/Default", NULL);
    check_error(&r, 409, "conflict", "Default");
    done(&r);
    call(&f, &r, "DELETE", "/v1/groups/edge-eu", NULL);
    CHECK_EQ(r.status, 204);
    CHECK_NULL(r.answer);
    done(&r);
    call(&f, &r, "GET", "/v1/groups/edge-eu", NULL);
    check_error(&r, 404, "not_found", "edge-eu");
    done(&r);
    call(&f, &r, "DELETE", "/v1/groups/edge-eu", NULL);
    check_error(&r, 404, "not_found", "");
    done(&r);
    teardown(&f);
}

/* ---- tokens ---- */

static void test_tokens(void)
{
    fixture_t f;
    setup(&f);
    ptc_admin_req_t r;
    call(&f, &r, "POST", "/v1/tokens",
         "{\"group\":\"Default\",\"expires_in\":\"7d\",\"max_uses\":3}");
    CHECK_EQ(r.status, 201);
    const char *text = str(r.answer, "token");
    CHECK_NOT_NULL(text);
    CHECK_EQ(strncmp(text, "ptk_", 4), 0);
    CHECK_EQ(strlen(text), 47);
    char id[32];
    snprintf(id, sizeof(id), "%s", str(r.answer, "id"));
    CHECK_EQ(strncmp(id, "tok_", 4), 0);
    CHECK_STREQ(r.id, id); /* the log gets the id, never the token */
    CHECK_STREQ(str(r.answer, "group"), "Default");
    CHECK_STREQ(str(r.answer, "expires_at"), "2023-11-21T22:13:20.000Z");
    CHECK_EQ(json_integer_value(json_object_get(r.answer, "max_uses")), 3);
    done(&r);

    call(&f, &r, "GET", "/v1/tokens", NULL);
    CHECK_EQ(r.status, 200);
    json_t *toks = json_object_get(r.answer, "tokens");
    CHECK_EQ(json_array_size(toks), 1);
    json_t *t = json_array_get(toks, 0);
    CHECK_STREQ(str(t, "id"), id);
    CHECK_STREQ(str(t, "state"), "active");
    CHECK_EQ(json_integer_value(json_object_get(t, "uses_left")), 3);
    CHECK_NULL(json_object_get(t, "token"));
    CHECK_NULL(json_object_get(t, "hash"));
    done(&r);

    /* Defaults: 24 hours, one use; integer seconds are accepted too. */
    call(&f, &r, "POST", "/v1/tokens", "{\"group\":\"Default\"}");
    CHECK_EQ(r.status, 201);
    CHECK_STREQ(str(r.answer, "expires_at"), "2023-11-15T22:13:20.000Z");
    CHECK_EQ(json_integer_value(json_object_get(r.answer, "max_uses")), 1);
    done(&r);
    call(&f, &r, "POST", "/v1/tokens", "{\"group\":\"Default\",\"expires_in\":90}");
    CHECK_EQ(r.status, 201);
    CHECK_STREQ(str(r.answer, "expires_at"), "2023-11-14T22:14:50.000Z");
    done(&r);

    static const char *const bad[][2] = {
        {"{\"group\":\"Default\",\"expires_in\":\"3x\"}", "expires_in"},
        {"{\"group\":\"Default\",\"expires_in\":\"0h\"}", "expires_in"},
        {"{\"group\":\"Default\",\"expires_in\":\"400d\"}", ""},
        {"{\"group\":\"Default\",\"max_uses\":0}", "max_uses"},
        {"{\"group\":\"Default\",\"max_uses\":\"2\"}", "max_uses"},
        {"{\"group\":\"Nope\"}", "Nope"},
        {"{\"expires_in\":\"1h\"}", "group"},
        {"{\"group\":\"Default\",\"uses\":2}", "uses: unknown key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(&f, &r, "POST", "/v1/tokens", bad[i][0]);
        check_error(&r, 400, "bad_request", bad[i][1]);
        done(&r);
    }

    char path[64];
    snprintf(path, sizeof(path), "/v1/tokens/%s", id);
    call(&f, &r, "DELETE", path, NULL);
    CHECK_EQ(r.status, 204);
    CHECK_STREQ(r.id, id);
    done(&r);
    const ptc_token_t *tok = ptc_state_token_find(f.edge.state, id);
    CHECK_NOT_NULL(tok);
    CHECK_STREQ(ptc_token_status_name(ptc_token_status(tok, NOW)), "revoked");
    call(&f, &r, "DELETE", "/v1/tokens/tok_ffffffff", NULL);
    check_error(&r, 404, "not_found", "");
    done(&r);
    teardown(&f);
}

/* ---- connectors ---- */

/* Registers a connector through a token, as POST /.portico/v1/register would. */
static const ptc_connector_t *register_connector(fixture_t *f, const char *hostname)
{
    char text[PTC_TOKEN_TEXT_CAP];
    char err[256];
    CHECK_OK(
        ptc_state_token_mint(f->edge.state, "Default", 0, 1, NOW, text, NULL, err, sizeof(err)));
    ptc_ed25519_key_t key;
    ptc_ed25519_generate(&key);
    char pk[64];
    CHECK_GT(ptc_b64url_encode(key.pk, sizeof(key.pk), pk, sizeof(pk)), 0);
    ptc_registration_t reg = {
        .token = text, .public_key = pk, .hostname = hostname, .agent = "portico-connector/0.1.0"};
    ptc_redeem_refusal_t why;
    const ptc_connector_t *c = NULL;
    CHECK_OK(ptc_state_token_redeem(f->edge.state, &reg, NOW, &why, &c, err, sizeof(err)));
    return c;
}

static void test_connectors(void)
{
    fixture_t f;
    setup(&f);
    ptc_admin_req_t r;
    const ptc_connector_t *c1 = register_connector(&f, "host-one");
    char id1[32];
    snprintf(id1, sizeof(id1), "%s", c1->id);
    register_connector(&f, "host-two");
    ptc_registry_tunnel_info_t info = {.tunnel_id = "tn_1",
                                       .connector_id = id1,
                                       .group = "Default",
                                       .remote_addr = "203.0.113.5:51234",
                                       .since_ms = NOW - 5000,
                                       .owner = &f};
    ptc_registry_tunnel_t *tn = NULL;
    CHECK_OK(ptc_registry_add(f.edge.registry, &info, &tn));
    ptc_registry_stream_opened(f.edge.registry, tn);

    call(&f, &r, "GET", "/v1/connectors", NULL);
    CHECK_EQ(r.status, 200);
    json_t *list = json_object_get(r.answer, "connectors");
    CHECK_EQ(json_array_size(list), 2);
    size_t active = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *c = json_array_get(list, i);
        CHECK_STREQ(str(c, "group"), "Default");
        CHECK_STREQ(str(c, "agent"), "portico-connector/0.1.0");
        CHECK_NOT_NULL(str(c, "first_seen"));
        CHECK_NOT_NULL(str(c, "last_seen"));
        if (strcmp(str(c, "id"), id1) == 0) {
            active++;
            CHECK_STREQ(str(c, "status"), "active");
            CHECK_STREQ(str(c, "hostname"), "host-one");
            CHECK_EQ(json_integer_value(json_object_get(c, "tunnels")), 1);
            json_t *addrs = json_object_get(c, "remote_addrs");
            CHECK_EQ(json_array_size(addrs), 1);
            CHECK_STREQ(json_string_value(json_array_get(addrs, 0)), "203.0.113.5:51234");
        } else {
            CHECK_STREQ(str(c, "status"), "inactive");
            CHECK_EQ(json_integer_value(json_object_get(c, "tunnels")), 0);
            CHECK_EQ(json_array_size(json_object_get(c, "remote_addrs")), 0);
        }
    }
    CHECK_EQ(active, 1);
    done(&r);

    char path[64];
    snprintf(path, sizeof(path), "/v1/connectors/%s", id1);
    call(&f, &r, "GET", path, NULL);
    CHECK_EQ(r.status, 200);
    json_t *tunnels = json_object_get(r.answer, "tunnels");
    CHECK_EQ(json_array_size(tunnels), 1);
    json_t *t = json_array_get(tunnels, 0);
    CHECK_STREQ(str(t, "id"), "tn_1");
    CHECK_STREQ(str(t, "remote_addr"), "203.0.113.5:51234");
    CHECK_STREQ(str(t, "since"), "2023-11-14T22:13:15.000Z");
    CHECK_EQ(json_integer_value(json_object_get(t, "streams")), 1);
    done(&r);

    call(&f, &r, "POST", "/v1/groups", "{\"name\":\"lab\"}");
    CHECK_EQ(r.status, 201);
    done(&r);
    call(&f, &r, "PATCH", path, "{\"group\":\"lab\"}");
    CHECK_EQ(r.status, 200);
    CHECK_STREQ(str(r.answer, "group"), "lab");
    CHECK_STREQ(r.id, id1);
    CHECK_STREQ(r.resource, "connector");
    done(&r);
    CHECK_STREQ(ptc_state_connector_find(f.edge.state, id1)->group, "lab");
    call(&f, &r, "PATCH", path, "{\"group\":\"nowhere\"}");
    check_error(&r, 400, "bad_request", "nowhere");
    done(&r);
    call(&f, &r, "PATCH", path, "{}");
    check_error(&r, 400, "bad_request", "group");
    done(&r);
    call(&f, &r, "GET", "/v1/groups/lab", NULL);
    CHECK_EQ(json_integer_value(json_object_get(r.answer, "connectors")), 1);
    done(&r);
    call(&f, &r, "DELETE", "/v1/groups/lab", NULL);
    check_error(&r, 409, "conflict", "");
    done(&r);

    call(&f, &r, "DELETE", path, NULL);
    CHECK_EQ(r.status, 204);
    done(&r);
    call(&f, &r, "GET", path, NULL);
    check_error(&r, 404, "not_found", id1);
    done(&r);
    call(&f, &r, "PATCH", path, "{\"group\":\"lab\"}");
    check_error(&r, 404, "not_found", "");
    done(&r);
    teardown(&f);
}

/* ---- apps ---- */

static void test_apps(void)
{
    fixture_t f;
    setup(&f);
    ptc_admin_req_t r;
    call(&f, &r, "POST", "/v1/apps",
         "{\"name\":\"grafana\",\"internal_url\":\"http://10.0.0.5:3000/\","
         "\"pre_auth\":\"passthrough\"}");
    CHECK_EQ(r.status, 201);
    CHECK_STREQ(str(r.answer, "name"), "grafana");
    CHECK_STREQ(str(r.answer, "external_url"), "https://grafana.apps.example.com/");
    CHECK_STREQ(str(r.answer, "connector_group"), "Default");
    CHECK_STREQ(str(r.answer, "pre_auth"), "passthrough");
    CHECK_STREQ(r.id, "grafana");
    done(&r);

    call(&f, &r, "POST", "/v1/apps", "{\"name\":\"grafana\",\"internal_url\":\"http://x/\"}");
    check_error(&r, 409, "conflict", "");
    done(&r);
    call(&f, &r, "POST", "/v1/apps", "{\"name\":\"wiki\",\"internal_url\":\"ftp://x/\"}");
    check_error(&r, 400, "bad_request", "internal_url");
    done(&r);
    call(&f, &r, "POST", "/v1/apps", "{\"name\":\"wiki\"}");
    check_error(&r, 400, "bad_request", "internal_url");
    done(&r);
    call(&f, &r, "POST", "/v1/apps", "\"wiki\"");
    check_error(&r, 400, "bad_request", "body");
    done(&r);

    call(&f, &r, "PATCH", "/v1/apps/grafana",
         "{\"maintenance_mode\":true,\"sso_headers\":{\"email\":\"X-Email\"}}");
    CHECK_EQ(r.status, 200);
    CHECK(json_is_true(json_object_get(r.answer, "maintenance_mode")));
    CHECK_STREQ(str(json_object_get(r.answer, "sso_headers"), "email"), "X-Email");
    done(&r);
    call(&f, &r, "PATCH", "/v1/apps/grafana", "{\"backend_timeout\":\"forever\"}");
    check_error(&r, 400, "bad_request", "backend_timeout");
    done(&r);
    call(&f, &r, "PATCH", "/v1/apps/nope", "{\"maintenance_mode\":true}");
    check_error(&r, 404, "not_found", "");
    done(&r);

    call(&f, &r, "GET", "/v1/apps", NULL);
    CHECK_EQ(json_array_size(json_object_get(r.answer, "apps")), 1);
    done(&r);
    call(&f, &r, "GET", "/v1/apps/grafana", NULL);
    CHECK_EQ(r.status, 200);
    CHECK(json_is_true(json_object_get(r.answer, "maintenance_mode")));
    done(&r);
    call(&f, &r, "GET", "/v1/groups/Default", NULL);
    CHECK_EQ(json_integer_value(json_object_get(r.answer, "apps")), 1);
    done(&r);

    call(&f, &r, "DELETE", "/v1/apps/grafana", NULL);
    CHECK_EQ(r.status, 204);
    done(&r);
    call(&f, &r, "GET", "/v1/apps/grafana", NULL);
    check_error(&r, 404, "not_found", "grafana");
    done(&r);
    teardown(&f);
}

/* ---- certificates ---- */

static void test_certs_never_return_the_key(void)
{
    fixture_t f;
    setup(&f);
    ptc_certgen_cert_t ca;
    ptc_certgen_cert_t leaf;
    ptc_certgen_ca(NULL, "admin-ca", &ca);
    const char *const sans[] = {"DNS:app.customer.test", "DNS:www.customer.test", NULL};
    ptc_certgen_opts_t opts = {.sans = sans};
    ptc_certgen_leaf(&ca, NULL, "leaf", &opts, &leaf);

    json_t *body = json_pack("{s:s, s:s}", "cert_pem", leaf.cert_pem, "key_pem", leaf.key_pem);
    ptc_admin_req_t r;
    memset(&r, 0, sizeof(r));
    r.method = "POST";
    r.target = "/v1/certs";
    r.now_ms = ptc_edge_now_ms();
    r.body = body;
    ptc_admin_routes_handle(&f.edge, &r);
    CHECK_EQ(r.status, 201);
    char id[32];
    snprintf(id, sizeof(id), "%s", str(r.answer, "id"));
    CHECK_EQ(strncmp(id, "crt_", 4), 0);
    CHECK_STREQ(r.id, id);
    json_t *names = json_object_get(r.answer, "names");
    CHECK_EQ(json_array_size(names), 2);
    CHECK_NULL(json_object_get(r.answer, "key_pem"));
    /* The request's copy of the key was wiped once used. */
    const char *key_copy = json_string_value(json_object_get(body, "key_pem"));
    CHECK_EQ(key_copy[0], 0);
    done(&r);

    call(&f, &r, "GET", "/v1/certs", NULL);
    json_t *list = json_object_get(r.answer, "certs");
    CHECK_EQ(json_array_size(list), 1);
    CHECK_NULL(json_object_get(json_array_get(list, 0), "key_pem"));
    CHECK_NULL(json_object_get(json_array_get(list, 0), "cert_pem"));
    done(&r);
    char path[64];
    snprintf(path, sizeof(path), "/v1/certs/%s", id);
    call(&f, &r, "GET", path, NULL);
    CHECK_EQ(r.status, 200);
    CHECK_STREQ(str(r.answer, "cert_pem"), leaf.cert_pem);
    CHECK_NULL(json_object_get(r.answer, "key_pem"));
    char *dump = json_dumps(r.answer, 0);
    CHECK(strstr(dump, "PRIVATE KEY") == NULL);
    free(dump);
    done(&r);

    /* A key that does not belong to the certificate. */
    json_t *mismatch = json_pack("{s:s, s:s}", "cert_pem", leaf.cert_pem, "key_pem", ca.key_pem);
    char *wrong = json_dumps(mismatch, 0);
    json_decref(mismatch);
    call(&f, &r, "POST", "/v1/certs", wrong);
    CHECK_EQ(r.status, 400);
    done(&r);
    free(wrong);
    call(&f, &r, "POST", "/v1/certs", "{\"cert_pem\":\"x\"}");
    check_error(&r, 400, "bad_request", "key_pem");
    done(&r);

    call(&f, &r, "DELETE", path, NULL);
    CHECK_EQ(r.status, 204);
    done(&r);
    call(&f, &r, "GET", path, NULL);
    CHECK_EQ(r.status, 404);
    done(&r);
    ptc_certgen_dispose(&leaf);
    ptc_certgen_dispose(&ca);
    teardown(&f);
}

/* ---- status ---- */

static void test_status(void)
{
    fixture_t f;
    setup(&f);
    ptc_admin_req_t r;
    call(&f, &r, "GET", "/v1/status", NULL);
    CHECK_EQ(r.status, 200);
    CHECK_NOT_NULL(str(r.answer, "version"));
    CHECK_EQ(json_integer_value(json_object_get(r.answer, "uptime_s")), 90);
    CHECK_EQ(json_integer_value(json_object_get(r.answer, "tunnels")), 0);
    CHECK_EQ(json_integer_value(json_object_get(r.answer, "connectors_active")), 0);
    CHECK_EQ(json_integer_value(json_object_get(r.answer, "groups")), 1);
    CHECK_STREQ(str(r.answer, "edge_host"), "edge.example.com");
    CHECK(json_is_false(json_object_get(r.answer, "draining")));
    CHECK(!r.is_change);
    CHECK_STREQ(r.resource, "status");
    done(&r);
    teardown(&f);
}

/* ---- app tests (a deferred answer) ---- */

typedef struct answer {
    int calls;
    int status;
    json_t *doc;
} answer_t;

static void on_answer(void *data, int status, json_t *doc)
{
    answer_t *a = data;
    a->calls++;
    a->status = status;
    a->doc = doc;
}

static void test_app_test_route(void)
{
    fixture_t f;
    setup(&f);
    ptc_admin_req_t r;
    call(&f, &r, "POST", "/v1/apps",
         "{\"name\":\"hr\",\"internal_url\":\"http://10.0.0.5/\",\"pre_auth\":\"passthrough\"}");
    CHECK_EQ(r.status, 201);
    done(&r);

    /* A deferred answer: no status or answer yet, not a change. */
    call(&f, &r, "POST", "/v1/apps/hr/test", NULL);
    CHECK_EQ(r.status, 0);
    CHECK_NULL(r.answer);
    CHECK_NOT_NULL(r.deferred);
    CHECK(!r.is_change);
    CHECK_STREQ(r.resource, "app");
    CHECK_STREQ(r.id, "hr");
    const ptc_admin_deferred_t *d = r.deferred;
    done(&r);
    call(&f, &r, "POST", "/v1/apps/hr/test", "{}");
    CHECK(r.deferred == d);
    done(&r);

    call(&f, &r, "POST", "/v1/apps/nope/test", NULL);
    check_error(&r, 404, "not_found", "no app named \"nope\"");
    CHECK_NULL(r.deferred);
    done(&r);
    call(&f, &r, "GET", "/v1/apps/hr/test", NULL);
    check_error(&r, 405, "method_not_allowed", "allowed: POST");
    CHECK_STREQ(r.allow, "POST");
    done(&r);
    call(&f, &r, "POST", "/v1/apps/hr/test", "{\"timeout\":1}");
    check_error(&r, 400, "bad_request", "body: expected none");
    done(&r);
    static const char *const bad[] = {"/v1/apps/hr/test/", "/v1/apps/hr/", "/v1/apps/hr/other",
                                      "/v1/apps//test", "/v1/groups/Default/test"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(&f, &r, "POST", bad[i], NULL);
        check_error(&r, 404, "not_found", "no such path");
        done(&r);
    }

    /* Started on a loop: the answer comes once, later, with the report. This edge has no
     * default certificate and no connector, so both checks fail. */
    uv_loop_t loop;
    CHECK_OK(uv_loop_init(&loop));
    f.edge.loop = &loop;
    answer_t a = {0};
    void *h = d->start(&f.edge, "hr", on_answer, &a);
    CHECK_NOT_NULL(h);
    CHECK_EQ(a.calls, 0);
    ptc_test_loop_run(&loop, 5000, "app test");
    CHECK_EQ(a.calls, 1);
    CHECK_EQ(a.status, 200);
    CHECK(json_is_false(json_object_get(a.doc, "ok")));
    json_t *checks = json_object_get(a.doc, "checks");
    CHECK_EQ(json_array_size(checks), 3);
    CHECK_STREQ(str(json_array_get(checks, 0), "check"), "configuration");
    CHECK(json_is_true(json_object_get(json_array_get(checks, 0), "ok")));
    CHECK_STREQ(str(json_array_get(checks, 1), "check"), "certificate");
    CHECK(json_is_false(json_object_get(json_array_get(checks, 1), "ok")));
    CHECK_STREQ(str(json_array_get(checks, 2), "detail"), "group Default has no connector");
    json_decref(a.doc);

    /* Cancelled: no answer, and nothing left on the loop. */
    answer_t b = {0};
    h = d->start(&f.edge, "hr", on_answer, &b);
    CHECK_NOT_NULL(h);
    d->cancel(h);
    CHECK_NULL(f.edge.diag_runs);
    ptc_test_loop_run(&loop, 5000, "cancelled app test");
    CHECK_EQ(b.calls, 0);

    /* An app deleted between routing and the start: 404 through the callback. */
    answer_t c = {0};
    h = d->start(&f.edge, "gone", on_answer, &c);
    CHECK_NOT_NULL(h);
    ptc_test_loop_run(&loop, 5000, "app test of a missing app");
    CHECK_EQ(c.calls, 1);
    CHECK_EQ(c.status, 404);
    CHECK_STREQ(str(c.doc, "error"), "not_found");
    json_decref(c.doc);
    ptc_test_loop_finish(&loop);
    teardown(&f);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_unknown_paths_are_404),
    PTC_TEST(test_wrong_method_is_405_with_allow),
    PTC_TEST(test_ids_are_percent_decoded),
    PTC_TEST(test_groups),
    PTC_TEST(test_tokens),
    PTC_TEST(test_connectors),
    PTC_TEST(test_apps),
    PTC_TEST(test_certs_never_return_the_key),
    PTC_TEST(test_status),
    PTC_TEST(test_app_test_route),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
