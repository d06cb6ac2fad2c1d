/* SPDX-License-Identifier: MIT */
/*
 * Tests for edge/oidc: every rule of ptc_oidc_check_claims, the client_secret_basic
 * encoding, and, against a small provider served by tests/support/httpsrv on loopback (plain
 * http, which a loopback issuer may use, or https with a CA made by the test): discovery and
 * its refusals (another issuer, a plain-http endpoint of an https issuer, a missing
 * endpoint, an oversized answer, an untrusted certificate), the JWKS, the authorization and
 * logout URLs, the code exchange with both client authentication methods and ID tokens signed
 * in the test with Ed25519, the JWKS refetch on an unknown kid and its rate limit, refusals
 * from the token endpoint, the groups claim's forms, cancellation and closing with exchanges
 * in flight or waiting for keys, a ca_file that is no PEM bundle, and that logs never carry
 * the code, the secret or a token.
 */
#include "edge/oidc.h"
#include "tests/support/certgen.h"
#include "tests/support/httpsrv.h"
#include "tests/support/loop.h"
#include "tests/support/test.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* ---- claims ---- */

#define ISS "https://id.example.com"
#define NOW 1700000000

static json_t *good_claims(void)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "iss", ISS, "aud", "portico", "exp",
                     (json_int_t)(NOW + 300), "iat", (json_int_t)NOW, "nonce", "n-1", "sub",
                     "user-1");
}

/* Checks `claims` (taken) at NOW and expects `rc` and, when refused, `why` in the reason. */
static void expect_claims(json_t *claims, int rc, const char *why)
{
    char reason[160] = "unset";
    int got = ptc_oidc_check_claims(claims, ISS, "portico", "n-1", NOW, 60, reason, sizeof(reason));
    json_decref(claims);
    if (got != rc) {
        ptc_test_fail(__FILE__, __LINE__, "rc %d, expected %d (%s)", got, rc, reason);
    }
    if (rc != 0) {
        CHECK_CONTAINS(reason, why);
    }
}

static json_t *with(json_t *claims, const char *key, json_t *value)
{
    json_object_set_new(claims, key, value);
    return claims;
}

static json_t *without(json_t *claims, const char *key)
{
    json_object_del(claims, key);
    return claims;
}

static void test_claims_ok(void)
{
    expect_claims(good_claims(), 0, NULL);
    /* aud as an array with the client alone needs no azp. */
    expect_claims(with(good_claims(), "aud", json_pack("[s]", "portico")), 0, NULL);
    /* Several audiences with azp = client_id. */
    json_t *c = with(good_claims(), "aud", json_pack("[s,s]", "other", "portico"));
    expect_claims(with(c, "azp", json_string("portico")), 0, NULL);
    /* azp present with a single audience must still be the client. */
    expect_claims(with(good_claims(), "azp", json_string("portico")), 0, NULL);
    /* Real-number times are NumericDates too. */
    expect_claims(with(good_claims(), "exp", json_real(NOW + 10.5)), 0, NULL);
}

static void test_claims_iss(void)
{
    expect_claims(with(good_claims(), "iss", json_string(ISS "/")), PTC_EAUTH,
                  "iss is not the provider's issuer");
    expect_claims(with(good_claims(), "iss", json_string("https://ID.example.com")), PTC_EAUTH,
                  "iss is not the provider's issuer");
    expect_claims(without(good_claims(), "iss"), PTC_EAUTH, "iss is missing or not a string");
    expect_claims(with(good_claims(), "iss", json_integer(1)), PTC_EAUTH,
                  "iss is missing or not a string");
}

static void test_claims_aud_azp(void)
{
    expect_claims(with(good_claims(), "aud", json_string("other")), PTC_EAUTH,
                  "aud does not contain the client_id");
    expect_claims(with(good_claims(), "aud", json_pack("[s,s]", "a", "b")), PTC_EAUTH,
                  "aud does not contain the client_id");
    expect_claims(with(good_claims(), "aud", json_array()), PTC_EAUTH,
                  "aud does not contain the client_id");
    expect_claims(without(good_claims(), "aud"), PTC_EAUTH, "aud is missing");
    expect_claims(with(good_claims(), "aud", json_integer(5)), PTC_EAUTH, "aud is missing");
    expect_claims(with(good_claims(), "aud", json_pack("[s,i]", "portico", 3)), PTC_EAUTH,
                  "aud holds a value that is not a string");
    /* Several audiences: azp is required and must be the client. */
    expect_claims(with(good_claims(), "aud", json_pack("[s,s]", "portico", "other")), PTC_EAUTH,
                  "azp is missing while aud has several values");
    json_t *c = with(good_claims(), "aud", json_pack("[s,s]", "portico", "other"));
    expect_claims(with(c, "azp", json_string("other")), PTC_EAUTH, "azp is not the client_id");
    expect_claims(with(good_claims(), "azp", json_string("other")), PTC_EAUTH,
                  "azp is not the client_id");
    expect_claims(with(good_claims(), "azp", json_true()), PTC_EAUTH, "azp is not the client_id");
}

static void test_claims_times(void)
{
    /* Expired beyond the skew: refused; within it: accepted. */
    expect_claims(with(good_claims(), "exp", json_integer(NOW - 61)), PTC_EAUTH,
                  "the token has expired");
    expect_claims(with(good_claims(), "exp", json_integer(NOW - 60)), PTC_EAUTH,
                  "the token has expired");
    expect_claims(with(good_claims(), "exp", json_integer(NOW - 59)), 0, NULL);
    expect_claims(with(good_claims(), "exp", json_integer(NOW - 1)), 0, NULL);
    expect_claims(without(good_claims(), "exp"), PTC_EAUTH, "exp is missing or not a number");
    expect_claims(with(good_claims(), "exp", json_string("1900000000")), PTC_EAUTH,
                  "exp is missing or not a number");
    /* Issued in the future beyond the skew: refused; within it: accepted. */
    expect_claims(with(good_claims(), "iat", json_integer(NOW + 61)), PTC_EAUTH,
                  "issued in the future");
    expect_claims(with(good_claims(), "iat", json_integer(NOW + 60)), 0, NULL);
    expect_claims(without(good_claims(), "iat"), PTC_EAUTH, "iat is missing or not a number");
    expect_claims(with(good_claims(), "iat", json_null()), PTC_EAUTH,
                  "iat is missing or not a number");
    expect_claims(with(good_claims(), "nbf", json_integer(NOW + 120)), PTC_EAUTH, "not valid yet");
    expect_claims(with(good_claims(), "nbf", json_integer(NOW + 30)), 0, NULL);
}

static void test_claims_nonce_sub(void)
{
    expect_claims(with(good_claims(), "nonce", json_string("n-2")), PTC_EAUTH,
                  "nonce does not match");
    expect_claims(with(good_claims(), "nonce", json_string("n-10")), PTC_EAUTH,
                  "nonce does not match");
    expect_claims(without(good_claims(), "nonce"), PTC_EAUTH, "nonce is missing or not a string");
    expect_claims(with(good_claims(), "nonce", json_integer(1)), PTC_EAUTH,
                  "nonce is missing or not a string");
    expect_claims(without(good_claims(), "sub"), PTC_EAUTH, "sub is missing");
    expect_claims(with(good_claims(), "sub", json_string("")), PTC_EAUTH, "sub is missing");
    expect_claims(with(good_claims(), "sub", json_integer(42)), PTC_EAUTH, "sub is missing");
    char long_sub[300];
    memset(long_sub, 'a', 256);
    long_sub[256] = '\0';
    expect_claims(with(good_claims(), "sub", json_string(long_sub)), PTC_EAUTH, "sub is missing");
    expect_claims(json_array(), PTC_EAUTH, "not a JSON object");
}

/* RFC 6749 §2.3.1: id and secret form-urlencoded, then joined by ':' and base64-encoded. */
static void test_basic_auth_encoding(void)
{
    char *h = ptc_oidc_basic_auth("my client:1", "p@ss w/rd+%~\xc3\xa9");
    CHECK_STREQ(h, "Basic bXkrY2xpZW50JTNBMTpwJTQwc3MrdyUyRnJkJTJCJTI1fiVDMyVBOQ==");
    free(h);
    h = ptc_oidc_basic_auth("portico", "secret");
    CHECK_STREQ(h, "Basic cG9ydGljbzpzZWNyZXQ=");
    free(h);
}

/* ---- a provider on loopback ---- */

typedef struct key {
    uint8_t pk[32];
    uint8_t sk[64];
    char kid[16];
} test_key_t;

typedef struct env {
    uv_loop_t loop;
    ptc_httpsrv_t *srv;
    char issuer[64];
    ptc_edge_config_t cfg;
    ptc_logger_t *logger;
    char *logs;
    size_t logs_len;
    ptc_oidc_t *oidc;
    ptc_oidc_provider_t *p;
    uv_timer_t poll;

    /* The provider's behaviour. */
    test_key_t keys[3];
    size_t jwks_keys[4]; /* keys served by the n-th JWKS fetch (then the last entry) */
    size_t jwks_fetches;
    size_t discovery_fetches;
    size_t token_fetches;
    size_t sign_with;             /* index into keys */
    const char *discovery_issuer; /* NULL: the real one */
    int token_status;             /* 0: 200 with a token */
    const char *token_body;       /* the body for token_status */
    const char *token_nonce;      /* the nonce put in tokens */
    bool is_silent_token;         /* never answer the token request */
    bool is_huge_discovery;
    bool is_silent_jwks_refetch; /* never answer the second JWKS request */
    const char *token_endpoint;  /* instead of <issuer>/token */
    bool omit_jwks_uri;
    int groups_mode;        /* 0: array, 1: one string, 2: a number, 3: absent */
    json_t *email_verified; /* the token's email_verified (borrowed); NULL: absent */
    ptc_certgen_cert_t ca;
    ptc_certgen_cert_t leaf;
    ptc_tls_config_t *srv_tls; /* the server's (httpsrv borrows it) */

    /* The exchange's outcome. */
    int done_cnt;
    int status;
    char reason[256];
    ptc_oidc_identity_t id;
    char auth_header[256];
    char form[1024];
} env_t;

static void on_log(void *data, const char *line, size_t len)
{
    env_t *e = data;
    e->logs = realloc(e->logs, e->logs_len + len + 2);
    CHECK_NOT_NULL(e->logs);
    memcpy(e->logs + e->logs_len, line, len);
    e->logs_len += len;
    e->logs[e->logs_len++] = '\n';
    e->logs[e->logs_len] = '\0';
}

static void make_key(test_key_t *k, const char *kid)
{
    crypto_sign_keypair(k->pk, k->sk);
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
}

static char *jwks_json(env_t *e, size_t cnt)
{
    json_t *keys = json_array();
    for (size_t i = 0; i < cnt; i++) {
        json_array_append_new(keys, ptc_jwk_ed25519(e->keys[i].pk, e->keys[i].kid));
    }
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static char *id_token(env_t *e)
{
    int64_t now = (int64_t)time(NULL);
    json_t *claims =
        json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s}", "iss", e->issuer, "aud", "portico",
                  "exp", (json_int_t)(now + 300), "iat", (json_int_t)now, "nonce", e->token_nonce,
                  "sub", "user-1", "email", "ada@example.com", "name", "Ada L");
    json_t *groups = e->groups_mode == 0   ? json_pack("[s,s]", "eng", "ops")
                     : e->groups_mode == 1 ? json_string("eng")
                     : e->groups_mode == 2 ? json_integer(7)
                                           : NULL;
    if (groups != NULL) {
        json_object_set_new(claims, "groups", groups);
    }
    if (e->email_verified != NULL) {
        json_object_set(claims, "email_verified", e->email_verified);
    }
    char *tok = NULL;
    const test_key_t *k = &e->keys[e->sign_with];
    CHECK_OK(ptc_jwt_sign_eddsa(claims, k->kid, k->sk, &tok));
    json_decref(claims);
    return tok;
}

static void respond_json(ptc_httpsrv_conn_t *c, int status, const char *body)
{
    ptc_httpsrv_respond(c, status, "Content-Type: application/json\r\n", body, strlen(body));
}

static void on_provider_request(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *req)
{
    env_t *e = ptc_httpsrv_data(ptc_httpsrv_conn_server(c));
    if (strcmp(req->target, "/.well-known/openid-configuration") == 0) {
        e->discovery_fetches++;
        if (e->is_huge_discovery) {
            size_t n = PTC_OIDC_MAX_BODY + 10;
            char *big = malloc(n);
            CHECK_NOT_NULL(big);
            memset(big, ' ', n);
            ptc_httpsrv_respond(c, 200, NULL, big, n);
            free(big);
            return;
        }
        char token[128];
        snprintf(token, sizeof(token), "%s/token", e->issuer);
        char jwks[160] = "";
        if (!e->omit_jwks_uri) {
            snprintf(jwks, sizeof(jwks), "\"jwks_uri\":\"%s/jwks\",", e->issuer);
        }
        char doc[1024];
        snprintf(doc, sizeof(doc),
                 "{\"issuer\":\"%s\",\"authorization_endpoint\":\"%s/auth?tenant=a\","
                 "\"token_endpoint\":\"%s\",%s"
                 "\"end_session_endpoint\":\"%s/logout\"}",
                 e->discovery_issuer != NULL ? e->discovery_issuer : e->issuer, e->issuer,
                 e->token_endpoint != NULL ? e->token_endpoint : token, jwks, e->issuer);
        respond_json(c, 200, doc);
        return;
    }
    if (strcmp(req->target, "/jwks") == 0) {
        size_t i = e->jwks_fetches < 4 ? e->jwks_fetches : 3;
        e->jwks_fetches++;
        if (e->jwks_fetches == 2 && e->is_silent_jwks_refetch) {
            return;
        }
        char *doc = jwks_json(e, e->jwks_keys[i]);
        respond_json(c, 200, doc);
        free(doc);
        return;
    }
    if (strcmp(req->target, "/token") == 0 && strcmp(req->method, "POST") == 0) {
        e->token_fetches++;
        const char *auth = strstr(req->headers, "Authorization: ");
        if (auth != NULL) {
            const char *end = strchr(auth, '\n');
            snprintf(e->auth_header, sizeof(e->auth_header), "%.*s", (int)(end - auth), auth);
        }
        snprintf(e->form, sizeof(e->form), "%.*s", (int)req->body_len, (const char *)req->body);
        if (e->is_silent_token) {
            return;
        }
        if (e->token_status != 0) {
            respond_json(c, e->token_status, e->token_body);
            return;
        }
        char *tok = id_token(e);
        char body[4096];
        snprintf(body, sizeof(body),
                 "{\"access_token\":\"at-123\",\"token_type\":\"Bearer\",\"expires_in\":60,"
                 "\"id_token\":\"%s\"}",
                 tok);
        free(tok);
        respond_json(c, 200, body);
        return;
    }
    respond_json(c, 404, "{}");
}

/* Starts the provider (https with a CA of the test when `https`; `ca_file`: whether the edge
 * is configured to trust that CA) and loads an edge.json naming it. */
static void env_start_tls(env_t *e, const char *auth_method, bool https, bool ca_file)
{
    CHECK(sodium_init() >= 0);
    memset(e, 0, sizeof(*e));
    CHECK_OK(uv_loop_init(&e->loop));
    make_key(&e->keys[0], "k1");
    make_key(&e->keys[1], "k2");
    make_key(&e->keys[2], "k3");
    e->jwks_keys[0] = 1;
    e->jwks_keys[1] = 2;
    e->jwks_keys[2] = 2;
    e->jwks_keys[3] = 2;
    e->token_nonce = "nonce-1";
    ptc_httpsrv_opts_t so = {.on_request = on_provider_request, .data = e};
    if (https) {
        static const char *const sans[] = {"IP:127.0.0.1", NULL};
        ptc_certgen_ca(ptc_test_tmpdir(), "oidcca", &e->ca);
        ptc_certgen_opts_t lo = {.sans = sans};
        ptc_certgen_leaf(&e->ca, NULL, "idp", &lo, &e->leaf);
        ptc_tls_certs_t *certs = ptc_tls_certs_new();
        ptc_tls_err_t terr;
        CHECK_OK(ptc_tls_certs_add_pem(certs, e->leaf.cert_pem, strlen(e->leaf.cert_pem),
                                       e->leaf.key_pem, strlen(e->leaf.key_pem), true, &terr));
        ptc_tls_server_opts_t tso = {.certs = certs};
        CHECK_OK(ptc_tls_server_config_new(&tso, &e->srv_tls, &terr));
        ptc_tls_certs_unref(certs);
        so.tls = e->srv_tls;
    }
    e->srv = ptc_httpsrv_start(&e->loop, &so);
    snprintf(e->issuer, sizeof(e->issuer), "%s://127.0.0.1:%u", https ? "https" : "http",
             ptc_httpsrv_port(e->srv));
    char ca_member[700] = "";
    if (ca_file) {
        snprintf(ca_member, sizeof(ca_member), ",\"ca_file\":\"%s\"", e->ca.cert_path);
    }

    char secret[600];
    snprintf(secret, sizeof(secret), "%s/idp.secret", ptc_test_tmpdir());
    FILE *f = fopen(secret, "w");
    CHECK_NOT_NULL(f);
    fputs("s3cret value/+\n", f);
    fclose(f);
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"listen\":[\"127.0.0.1:8443\"],\"edge_host\":\"edge.example.com\","
             "\"default_domain\":\"apps.example.com\",\"tls\":{\"cert\":\"c\",\"key\":\"k\"},"
             "\"idps\":[{\"name\":\"corp\",\"issuer\":\"%s\",\"client_id\":\"portico\","
             "\"client_secret_file\":\"%s\",\"token_endpoint_auth_method\":\"%s\","
             "\"scopes\":[\"openid\",\"email\",\"profile\",\"groups\"]%s}]}",
             e->issuer, secret, auth_method, ca_member);
    char err[512];
    int rc = ptc_edge_config_load_buffer("edge.json", json, strlen(json), NULL, &e->cfg, err,
                                         sizeof(err));
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "%s", err);
    }
    e->logger = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_log, e);
    uv_timer_init(&e->loop, &e->poll);
    e->poll.data = e;
}

static void env_start(env_t *e, const char *auth_method)
{
    env_start_tls(e, auth_method, false, false);
}

/* Starts the providers (after the test adjusted the provider's behaviour). */
static void env_oidc(env_t *e)
{
    CHECK_OK(ptc_oidc_start(&e->loop, e->logger, &e->cfg, &e->oidc));
    e->p = ptc_oidc_find(e->oidc, "corp");
    CHECK_NOT_NULL(e->p);
    CHECK_NULL(ptc_oidc_find(e->oidc, "other"));
    CHECK_STREQ(ptc_oidc_provider_name(e->p), "corp");
}

static void on_poll_ready(uv_timer_t *t)
{
    env_t *e = t->data;
    if (ptc_oidc_ready(e->p)) {
        uv_timer_stop(t);
        uv_stop(&e->loop);
    }
}

static void wait_ready(env_t *e)
{
    uv_timer_start(&e->poll, on_poll_ready, 5, 5);
    ptc_test_loop_run(&e->loop, 5000, "provider ready");
    CHECK(ptc_oidc_ready(e->p));
}

static void on_stop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Runs the loop for `ms` (the provider's retries and the like). */
static void run_for(env_t *e, uint64_t ms)
{
    uv_timer_start(&e->poll, on_stop, ms, 0);
    ptc_test_loop_run(&e->loop, ms + 5000, "run_for");
}

static void on_exchange(void *data, int status, const ptc_oidc_identity_t *id, const char *reason)
{
    env_t *e = data;
    e->done_cnt++;
    e->status = status;
    snprintf(e->reason, sizeof(e->reason), "%s", reason != NULL ? reason : "");
    if (status == 0) {
        CHECK_NOT_NULL(id);
        CHECK_NULL(reason);
        e->id.sub = strdup(id->sub);
        e->id.email = id->email != NULL ? strdup(id->email) : NULL;
        e->id.name = id->name != NULL ? strdup(id->name) : NULL;
        e->id.exp = id->exp;
        e->id.groups_cnt = id->groups_cnt;
        e->id.groups = calloc(id->groups_cnt + 1, sizeof(char *));
        for (size_t i = 0; i < id->groups_cnt; i++) {
            e->id.groups[i] = strdup(id->groups[i]);
        }
    } else {
        CHECK_NULL(id);
        CHECK_NOT_NULL(reason);
    }
    uv_stop(&e->loop);
}

/* One exchange, run to its callback. */
static void exchange(env_t *e, const char *nonce)
{
    ptc_oidc_identity_dispose(&e->id);
    int before = e->done_cnt;
    ptc_oidc_exchange_t *x = NULL;
    CHECK_OK(ptc_oidc_exchange(e->p, "the-code/+=", "https://app.example.com/.portico/callback",
                               "verifier-1", nonce, on_exchange, e, &x));
    CHECK_NOT_NULL(x);
    CHECK_EQ(e->done_cnt, before); /* never from within the call */
    ptc_test_loop_run(&e->loop, 10000, "exchange");
    CHECK_EQ(e->done_cnt, before + 1);
}

static void on_oidc_closed(void *data)
{
    int *closed = data;
    (*closed)++;
}

static void env_finish(env_t *e)
{
    int closed = 0;
    if (e->oidc != NULL) {
        ptc_oidc_close(e->oidc, on_oidc_closed, &closed);
        ptc_oidc_close(e->oidc, on_oidc_closed, &closed); /* idempotent */
    }
    ptc_httpsrv_close(e->srv);
    uv_close((uv_handle_t *)&e->poll, NULL);
    ptc_test_loop_finish(&e->loop);
    CHECK_EQ(closed, e->oidc != NULL ? 1 : 0);
    /* Nothing secret ever reaches the log. */
    if (e->logs != NULL) {
        CHECK(strstr(e->logs, "s3cret") == NULL);
        CHECK(strstr(e->logs, "the-code") == NULL);
        CHECK(strstr(e->logs, "at-123") == NULL);
        CHECK(strstr(e->logs, "eyJ") == NULL);
    }
    ptc_oidc_identity_dispose(&e->id);
    ptc_tls_config_unref(e->srv_tls);
    ptc_certgen_dispose(&e->leaf);
    ptc_certgen_dispose(&e->ca);
    ptc_edge_config_free(&e->cfg);
    ptc_logger_free(e->logger);
    free(e->logs);
}

static void test_discovery_and_urls(void)
{
    env_t e;
    env_start(&e, "client_secret_basic");
    env_oidc(&e);
    wait_ready(&e);
    CHECK_EQ(e.discovery_fetches, 1);
    CHECK_EQ(e.jwks_fetches, 1);
    CHECK_CONTAINS(e.logs, "\"event\":\"idp_discovery_ok\"");
    CHECK_CONTAINS(e.logs, "\"event\":\"idp_jwks_refreshed\"");
    CHECK_CONTAINS(e.logs, "\"keys\":1");

    ptc_login_state_t ls = {
        .state = "st&a=te",
        .nonce = "no nce",
        .verifier = "verifier-1",
        .return_to = "/",
        .idp = "corp",
    };
    char *url = ptc_oidc_authorize_url(e.p, "https://app.example.com:8443/.portico/callback", &ls);
    char want[1024];
    snprintf(want, sizeof(want),
             "%s/auth?tenant=a&response_type=code&client_id=portico"
             "&redirect_uri=https%%3A%%2F%%2Fapp.example.com%%3A8443%%2F.portico%%2Fcallback"
             "&scope=openid%%20email%%20profile%%20groups&state=st%%26a%%3Dte&nonce=no%%20nce"
             "&code_challenge=xTYRBLTDt1gS3-rw_3FBVafZ0iNg9bZYBbG8fRPvkEs"
             "&code_challenge_method=S256&response_mode=query",
             e.issuer);
    CHECK_STREQ(url, want);
    free(url);
    char challenge[44];
    ptc_pkce_challenge("verifier-1", challenge);
    CHECK_STREQ(challenge, "xTYRBLTDt1gS3-rw_3FBVafZ0iNg9bZYBbG8fRPvkEs");

    url = ptc_oidc_logout_url(e.p, "https://app.example.com/?a=b");
    snprintf(want, sizeof(want),
             "%s/logout?client_id=portico"
             "&post_logout_redirect_uri=https%%3A%%2F%%2Fapp.example.com%%2F%%3Fa%%3Db",
             e.issuer);
    CHECK_STREQ(url, want);
    free(url);
    env_finish(&e);
}

static void test_exchange_basic(void)
{
    env_t e;
    env_start(&e, "client_secret_basic");
    env_oidc(&e);
    wait_ready(&e);
    exchange(&e, "nonce-1");
    if (e.status != 0) {
        ptc_test_fail(__FILE__, __LINE__, "exchange failed: %s", e.reason);
    }
    CHECK_STREQ(e.id.sub, "user-1");
    CHECK_STREQ(e.id.email, "ada@example.com");
    CHECK_STREQ(e.id.name, "Ada L");
    CHECK_EQ(e.id.groups_cnt, 2);
    CHECK_STREQ(e.id.groups[0], "eng");
    CHECK_STREQ(e.id.groups[1], "ops");
    CHECK_GT(e.id.exp, (int64_t)time(NULL));
    /* The request: Basic authentication of the form-encoded id and secret; the form. */
    char *want_auth = ptc_oidc_basic_auth("portico", "s3cret value/+");
    char want[300];
    snprintf(want, sizeof(want), "Authorization: %s", want_auth);
    free(want_auth);
    CHECK_STREQ(e.auth_header, want);
    CHECK_STREQ(e.form, "grant_type=authorization_code&code=the-code%2F%2B%3D"
                        "&redirect_uri=https%3A%2F%2Fapp.example.com%2F.portico%2Fcallback"
                        "&code_verifier=verifier-1");
    CHECK_EQ(e.jwks_fetches, 1);

    /* A nonce other than the login's: refused. */
    exchange(&e, "nonce-2");
    CHECK_EQ(e.status, PTC_EAUTH);
    CHECK_STREQ(e.reason, "ID token: nonce does not match the sign-in");
    CHECK_CONTAINS(e.logs, "\"event\":\"idp_token_exchange_failed\"");
    env_finish(&e);
}

/* client_secret_post, and a token signed with a key the provider added after the JWKS was
 * loaded: the JWKS is fetched again once; a second unknown key within 30 s is refused
 * without another fetch. */
static void test_exchange_post_and_key_rotation(void)
{
    env_t e;
    env_start(&e, "client_secret_post");
    env_oidc(&e);
    wait_ready(&e);
    CHECK_EQ(e.jwks_fetches, 1);
    e.sign_with = 1; /* k2, not in the first key set */
    exchange(&e, "nonce-1");
    if (e.status != 0) {
        ptc_test_fail(__FILE__, __LINE__, "exchange failed: %s", e.reason);
    }
    CHECK_STREQ(e.id.sub, "user-1");
    CHECK_EQ(e.jwks_fetches, 2);
    CHECK_STREQ(e.auth_header, "");
    CHECK_STREQ(e.form, "grant_type=authorization_code&code=the-code%2F%2B%3D"
                        "&redirect_uri=https%3A%2F%2Fapp.example.com%2F.portico%2Fcallback"
                        "&code_verifier=verifier-1&client_id=portico"
                        "&client_secret=s3cret+value%2F%2B");

    e.sign_with = 2; /* k3: never published */
    exchange(&e, "nonce-1");
    CHECK_EQ(e.status, PTC_EAUTH);
    CHECK_CONTAINS(e.reason, "the key set was fetched again less than 30 s ago");
    CHECK_EQ(e.jwks_fetches, 2); /* rate-limited: no third fetch */

    /* The known keys still work. */
    e.sign_with = 0;
    exchange(&e, "nonce-1");
    CHECK_EQ(e.status, 0);
    env_finish(&e);
}

static void test_token_endpoint_refusals(void)
{
    env_t e;
    env_start(&e, "client_secret_basic");
    env_oidc(&e);
    wait_ready(&e);
    e.token_status = 400;
    e.token_body = "{\"error\":\"invalid_grant\",\"error_description\":\"code expired\"}";
    exchange(&e, "nonce-1");
    CHECK_EQ(e.status, PTC_EAUTH);
    CHECK_STREQ(e.reason,
                "token endpoint refused the code (HTTP 400): invalid_grant: code expired");
    CHECK_CONTAINS(e.logs, "invalid_grant: code expired");

    e.token_status = 500;
    e.token_body = "oops";
    exchange(&e, "nonce-1");
    CHECK_EQ(e.status, PTC_EPROTO);
    CHECK_STREQ(e.reason, "token endpoint answered HTTP 500");

    e.token_status = 200;
    e.token_body = "{\"access_token\":\"at-123\",\"token_type\":\"Bearer\"}";
    exchange(&e, "nonce-1");
    CHECK_EQ(e.status, PTC_EPROTO);
    CHECK_STREQ(e.reason, "token response without an id_token");

    e.token_body = "{\"id_token\":\"not.a.token\"}";
    exchange(&e, "nonce-1");
    CHECK_EQ(e.status, PTC_EAUTH);
    CHECK_CONTAINS(e.reason, "ID token: ");
    env_finish(&e);
}

/* A discovery document naming another issuer is refused, logged, and retried later. */
static void test_discovery_issuer_mismatch(void)
{
    env_t e;
    env_start(&e, "client_secret_basic");
    e.discovery_issuer = "http://127.0.0.1:1";
    env_oidc(&e);
    run_for(&e, 1300); /* the first attempt and the retry after 1 s */
    CHECK(!ptc_oidc_ready(e.p));
    CHECK_EQ(e.discovery_fetches, 2);
    CHECK_EQ(e.jwks_fetches, 0);
    CHECK_CONTAINS(e.logs, "\"event\":\"idp_discovery_failed\"");
    CHECK_CONTAINS(e.logs, "is not the configured issuer");
    CHECK_CONTAINS(e.logs, "\"retry_in_ms\":1000");
    CHECK_CONTAINS(e.logs, "\"retry_in_ms\":2000");
    CHECK_NULL(
        ptc_oidc_authorize_url(e.p, "https://a.example.com/cb",
                               &(ptc_login_state_t){.state = "s", .nonce = "n", .verifier = "v"}));
    CHECK_NULL(ptc_oidc_logout_url(e.p, "https://a.example.com/"));
    ptc_oidc_exchange_t *x = NULL;
    CHECK_EQ(ptc_oidc_exchange(e.p, "c", "https://a.example.com/cb", "v", "n", on_exchange, &e, &x),
             PTC_ESTATE);

    /* Once the provider is fixed, the retries load it. */
    e.discovery_issuer = NULL;
    wait_ready(&e);
    CHECK_EQ(e.done_cnt, 0);
    env_finish(&e);
}

static void test_response_cap(void)
{
    env_t e;
    env_start(&e, "client_secret_basic");
    e.is_huge_discovery = true;
    env_oidc(&e);
    run_for(&e, 300);
    CHECK(!ptc_oidc_ready(e.p));
    CHECK_EQ(e.discovery_fetches, 1);
    CHECK_CONTAINS(e.logs, "response larger than 1048576 bytes");
    CHECK_CONTAINS(e.logs, "\"err\":\"PTC_ELIMIT\"");
    env_finish(&e);
}

/* A cancelled exchange never calls back, and closing with an exchange in flight ends it with
 * PTC_ECLOSED before the close completes. */
static void test_cancel_and_close(void)
{
    env_t e;
    env_start(&e, "client_secret_basic");
    env_oidc(&e);
    wait_ready(&e);
    e.is_silent_token = true;
    ptc_oidc_exchange_t *x = NULL;
    CHECK_OK(ptc_oidc_exchange(e.p, "the-code", "https://a.example.com/cb", "v", "nonce-1",
                               on_exchange, &e, &x));
    run_for(&e, 100);
    CHECK_EQ(e.token_fetches, 1);
    ptc_oidc_exchange_cancel(x);
    run_for(&e, 50);
    CHECK_EQ(e.done_cnt, 0);

    CHECK_OK(ptc_oidc_exchange(e.p, "the-code", "https://a.example.com/cb", "v", "nonce-1",
                               on_exchange, &e, NULL));
    run_for(&e, 100);
    CHECK_EQ(e.token_fetches, 2);
    CHECK_EQ(e.done_cnt, 0);
    int closed = 0;
    ptc_oidc_close(e.oidc, on_oidc_closed, &closed);
    CHECK_EQ(
        ptc_oidc_exchange(e.p, "c", "https://a.example.com/cb", "v", "n", on_exchange, &e, NULL),
        PTC_ECLOSED);
    e.oidc = NULL;
    ptc_test_loop_run(&e.loop, 5000, "close");
    CHECK_EQ(e.done_cnt, 1);
    CHECK_EQ(e.status, PTC_ECLOSED);
    run_for(&e, 10);
    CHECK_EQ(closed, 1);
    env_finish(&e);
}

/* An https provider validated against its ca_file: discovery, keys and an exchange. */
static void test_https_provider_with_ca_file(void)
{
    env_t e;
    env_start_tls(&e, "client_secret_basic", true, true);
    env_oidc(&e);
    wait_ready(&e);
    exchange(&e, "nonce-1");
    if (e.status != 0) {
        ptc_test_fail(__FILE__, __LINE__, "exchange failed: %s", e.reason);
    }
    CHECK_STREQ(e.id.sub, "user-1");
    env_finish(&e);
}

/* Without ca_file the system CAs decide, and they do not know the test's CA. */
static void test_https_provider_untrusted(void)
{
    env_t e;
    env_start_tls(&e, "client_secret_basic", true, false);
    env_oidc(&e);
    run_for(&e, 300);
    CHECK(!ptc_oidc_ready(e.p));
    CHECK_EQ(e.discovery_fetches, 0);
    CHECK_CONTAINS(e.logs, "\"event\":\"idp_discovery_failed\"");
    CHECK_CONTAINS(e.logs, "\"err\":\"PTC_ECERT\"");
    env_finish(&e);
}

/* An https issuer's endpoints must be https; every required endpoint must be present. */
static void test_discovery_endpoint_rules(void)
{
    env_t e;
    env_start_tls(&e, "client_secret_basic", true, true);
    char plain[128];
    snprintf(plain, sizeof(plain), "http://127.0.0.1:%u/token", ptc_httpsrv_port(e.srv));
    e.token_endpoint = plain;
    env_oidc(&e);
    run_for(&e, 300);
    CHECK(!ptc_oidc_ready(e.p));
    CHECK_EQ(e.discovery_fetches, 1);
    CHECK_CONTAINS(e.logs, "token_endpoint is missing or not an https URL");
    env_finish(&e);

    env_start(&e, "client_secret_basic");
    e.omit_jwks_uri = true;
    env_oidc(&e);
    run_for(&e, 300);
    CHECK(!ptc_oidc_ready(e.p));
    CHECK_EQ(e.jwks_fetches, 0);
    CHECK_CONTAINS(e.logs, "jwks_uri is missing or not an http(s) URL");
    env_finish(&e);
}

/* The groups claim: one string is one group, absent is none, another type is refused. */
static void test_groups_claim_forms(void)
{
    env_t e;
    env_start(&e, "client_secret_basic");
    env_oidc(&e);
    wait_ready(&e);
    e.groups_mode = 1;
    exchange(&e, "nonce-1");
    CHECK_EQ(e.status, 0);
    CHECK_EQ(e.id.groups_cnt, 1);
    CHECK_STREQ(e.id.groups[0], "eng");
    e.groups_mode = 3;
    exchange(&e, "nonce-1");
    CHECK_EQ(e.status, 0);
    CHECK_EQ(e.id.groups_cnt, 0);
    e.groups_mode = 2;
    exchange(&e, "nonce-1");
    CHECK_EQ(e.status, PTC_EAUTH);
    CHECK_STREQ(e.reason, "ID token: the groups claim is not an array of strings");
    env_finish(&e);
}

/* email_verified: an email the provider says it did not verify is never part of the identity
 * (so it cannot admit by assignment, reach a backend or ride in the session); true, "true"
 * and absent keep it. */
static void test_email_verified(void)
{
    env_t e;
    env_start(&e, "client_secret_basic");
    env_oidc(&e);
    wait_ready(&e);
    struct {
        json_t *v; /* taken */
        bool kept;
    } cases[] = {
        {NULL, true},
        {json_true(), true},
        {json_string("true"), true},
        {json_false(), false},
        {json_string("false"), false},
        {json_null(), false},
        {json_integer(1), false},
        {json_string("yes"), false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        e.email_verified = cases[i].v;
        exchange(&e, "nonce-1");
        if (e.status != 0) {
            ptc_test_fail(__FILE__, __LINE__, "case %zu: exchange failed: %s", i, e.reason);
        }
        /* The rest of the identity is there either way. */
        CHECK_STREQ(e.id.sub, "user-1");
        CHECK_STREQ(e.id.name, "Ada L");
        CHECK_EQ(e.id.groups_cnt, 2);
        if (cases[i].kept) {
            CHECK_STREQ(e.id.email, "ada@example.com");
        } else if (e.id.email != NULL) {
            ptc_test_fail(__FILE__, __LINE__, "case %zu: an unverified email was kept: %s", i,
                          e.id.email);
        }
        json_decref(cases[i].v);
        e.email_verified = NULL;
    }
    env_finish(&e);
}

static void on_poll_jwks(uv_timer_t *t)
{
    env_t *e = t->data;
    if (e->jwks_fetches == 2) {
        uv_timer_stop(t);
        uv_stop(&e->loop);
    }
}

/* Exchanges waiting for a JWKS refetch: one cancelled (no callback), one still waiting when
 * the object closes (PTC_ECLOSED). */
static void test_waiting_for_keys(void)
{
    env_t e;
    env_start(&e, "client_secret_basic");
    e.is_silent_jwks_refetch = true;
    env_oidc(&e);
    wait_ready(&e);
    e.sign_with = 1;
    ptc_oidc_exchange_t *x = NULL;
    CHECK_OK(ptc_oidc_exchange(e.p, "the-code", "https://a.example.com/cb", "v", "nonce-1",
                               on_exchange, &e, &x));
    ptc_oidc_exchange_t *y = NULL;
    CHECK_OK(ptc_oidc_exchange(e.p, "the-code", "https://a.example.com/cb", "v", "nonce-1",
                               on_exchange, &e, &y));
    uv_timer_start(&e.poll, on_poll_jwks, 5, 5);
    ptc_test_loop_run(&e.loop, 5000, "JWKS refetch");
    run_for(&e, 50); /* both token answers are in: both wait for the one refetch */
    CHECK_EQ(e.token_fetches, 2);
    CHECK_EQ(e.jwks_fetches, 2);
    CHECK_EQ(e.done_cnt, 0);
    ptc_oidc_exchange_cancel(x);
    run_for(&e, 20);
    CHECK_EQ(e.done_cnt, 0);
    int closed = 0;
    ptc_oidc_close(e.oidc, on_oidc_closed, &closed);
    e.oidc = NULL;
    ptc_test_loop_run(&e.loop, 5000, "close");
    CHECK_EQ(e.done_cnt, 1);
    CHECK_EQ(e.status, PTC_ECLOSED);
    run_for(&e, 10);
    CHECK_EQ(closed, 1);
    env_finish(&e);
}

static void on_log_only(void *data, const char *line, size_t len)
{
    char *buf = data;
    size_t have = strlen(buf);
    if (have + len + 1 < 4096) {
        memcpy(buf + have, line, len);
        buf[have + len] = '\0';
    }
}

/* A ca_file that is readable (edge_config checks that) but no PEM bundle: the start fails,
 * naming the provider, and nothing is left open. */
static void test_bad_ca_file(void)
{
    CHECK(sodium_init() >= 0);
    char secret[600];
    char ca[600];
    snprintf(secret, sizeof(secret), "%s/idp.secret", ptc_test_tmpdir());
    snprintf(ca, sizeof(ca), "%s/ca.pem", ptc_test_tmpdir());
    FILE *f = fopen(secret, "w");
    CHECK_NOT_NULL(f);
    fputs("secret", f);
    fclose(f);
    f = fopen(ca, "w");
    CHECK_NOT_NULL(f);
    fputs("not a certificate\n", f);
    fclose(f);
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"listen\":[\"127.0.0.1:8443\"],\"edge_host\":\"edge.example.com\","
             "\"default_domain\":\"apps.example.com\",\"tls\":{\"cert\":\"c\",\"key\":\"k\"},"
             "\"idps\":[{\"name\":\"corp\",\"issuer\":\"https://id.example.com\","
             "\"client_id\":\"portico\",\"client_secret_file\":\"%s\",\"ca_file\":\"%s\"}]}",
             secret, ca);
    ptc_edge_config_t cfg;
    char err[512];
    CHECK_OK(
        ptc_edge_config_load_buffer("edge.json", json, strlen(json), NULL, &cfg, err, sizeof(err)));
    char logs[4096] = "";
    ptc_logger_t *logger = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_log_only, logs);
    uv_loop_t loop;
    CHECK_OK(uv_loop_init(&loop));
    ptc_oidc_t *o = NULL;
    CHECK_NE(ptc_oidc_start(&loop, logger, &cfg, &o), 0);
    CHECK_NULL(o);
    CHECK_CONTAINS(logs, "\"event\":\"idp_tls_failed\"");
    CHECK_CONTAINS(logs, "\"idp\":\"corp\"");
    ptc_test_loop_finish(&loop);
    ptc_logger_free(logger);
    ptc_edge_config_free(&cfg);
}

/* No providers at all: start and close work. */
static void test_no_providers(void)
{
    ptc_edge_config_t cfg;
    char err[512];
    const char *json = "{\"listen\":[\"127.0.0.1:8443\"],\"edge_host\":\"edge.example.com\","
                       "\"default_domain\":\"apps.example.com\","
                       "\"tls\":{\"cert\":\"c\",\"key\":\"k\"}}";
    CHECK_OK(
        ptc_edge_config_load_buffer("edge.json", json, strlen(json), NULL, &cfg, err, sizeof(err)));
    uv_loop_t loop;
    CHECK_OK(uv_loop_init(&loop));
    ptc_oidc_t *o = NULL;
    CHECK_OK(ptc_oidc_start(&loop, NULL, &cfg, &o));
    CHECK_NULL(ptc_oidc_find(o, "corp"));
    int closed = 0;
    ptc_oidc_close(o, on_oidc_closed, &closed);
    ptc_test_loop_finish(&loop);
    CHECK_EQ(closed, 1);
    ptc_edge_config_free(&cfg);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_claims_ok),
    PTC_TEST(test_claims_iss),
    PTC_TEST(test_claims_aud_azp),
    PTC_TEST(test_claims_times),
    PTC_TEST(test_claims_nonce_sub),
    PTC_TEST(test_basic_auth_encoding),
    PTC_TEST(test_discovery_and_urls),
    PTC_TEST(test_exchange_basic),
    PTC_TEST(test_exchange_post_and_key_rotation),
    PTC_TEST(test_token_endpoint_refusals),
    PTC_TEST(test_discovery_issuer_mismatch),
    PTC_TEST(test_response_cap),
    PTC_TEST(test_cancel_and_close),
    PTC_TEST(test_https_provider_with_ca_file),
    PTC_TEST(test_https_provider_untrusted),
    PTC_TEST(test_discovery_endpoint_rules),
    PTC_TEST(test_groups_claim_forms),
    PTC_TEST(test_email_verified),
    PTC_TEST(test_waiting_for_keys),
    PTC_TEST(test_bad_ca_file),
    PTC_TEST(test_no_providers),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
