/* SPDX-License-Identifier: MIT */
/*
 * Tests for edge/edge_config: a full edge.json, the defaults of a minimal one, relative paths
 * joined to the file's directory, and each refusal with its exact key-path message (schema
 * refusals from common/config and the edge's own cross-key checks).
 */
#include "edge/edge_config.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

#define MINIMAL                                                                                    \
    "\"listen\":[\"127.0.0.1:8443\"],\"edge_host\":\"Edge.Example.com\","                          \
    "\"default_domain\":\"apps.example.com\",\"tls\":{\"cert\":\"edge.pem\",\"key\":\"edge.key\"}"

static int load(const char *json, ptc_edge_config_t *cfg, char *err, size_t errlen)
{
    memset(err, 0, errlen);
    return ptc_edge_config_load_buffer("edge.json", json, strlen(json), "/etc/portico", cfg, err,
                                       errlen);
}

/* Loads a document that must be refused and checks the message. */
static void refused(const char *json, const char *message)
{
    ptc_edge_config_t cfg;
    char err[512];
    int rc = load(json, &cfg, err, sizeof(err));
    CHECK_EQ(rc, PTC_ECONFIG);
    CHECK_STREQ(err, message);
    ptc_edge_config_free(&cfg);
}

static void test_minimal_takes_defaults(void)
{
    ptc_edge_config_t cfg;
    char err[512];
    CHECK_OK(load("{" MINIMAL "}", &cfg, err, sizeof(err)));
    CHECK_EQ(cfg.listen_cnt, 1);
    CHECK_STREQ(cfg.listen[0], "127.0.0.1:8443");
    CHECK_STREQ(cfg.edge_host, "edge.example.com"); /* lower-cased */
    CHECK_STREQ(cfg.default_domain, "apps.example.com");
    CHECK_STREQ(cfg.tls.cert, "/etc/portico/edge.pem");
    CHECK_STREQ(cfg.tls.key, "/etc/portico/edge.key");
    CHECK_EQ(cfg.advertise_cnt, 0);
    CHECK_STREQ(cfg.state_dir, "/var/lib/portico");
    CHECK_STREQ(cfg.admin.socket, "/run/portico/admin.sock");
    CHECK_EQ(cfg.admin.socket_mode, 0660);
    CHECK_NULL(cfg.admin.tcp);
    CHECK_NULL(cfg.admin.token_file);
    CHECK_EQ(cfg.log.level, 1); /* info */
    CHECK_NULL(cfg.log.file);
    CHECK_UEQ(cfg.limits.handshake_timeout_ms, 10000);
    CHECK_EQ(cfg.limits.max_connections, 10000);
    CHECK_EQ(cfg.limits.max_tunnels, 10000);
    CHECK_EQ(cfg.limits.max_unauthenticated, 1000);
    CHECK_EQ(cfg.limits.max_unauthenticated_per_address, 100);
    CHECK_UEQ(cfg.limits.ping_interval_ms, 15000);
    CHECK_UEQ(cfg.limits.idle_timeout_ms, 45000);
    CHECK_UEQ(cfg.limits.drain_timeout_ms, 30000);
    CHECK_UEQ(cfg.limits.http_head_timeout_ms, 30000);
    CHECK_UEQ(cfg.limits.http_idle_timeout_ms, 75000);
    CHECK_UEQ(cfg.limits.max_head_bytes, 16384);
    CHECK_EQ(cfg.limits.max_headers, 100);
    CHECK_EQ(cfg.limits.max_url_len, 8192);
    ptc_edge_config_free(&cfg);
    ptc_edge_config_free(&cfg); /* twice is fine */
}

static void test_full_document(void)
{
    const char *json =
        "{\"listen\":[\"0.0.0.0:443\",\"[::]:443\"],\"edge_host\":\"edge.example.com\","
        "\"default_domain\":\"apps.example.com\","
        "\"tls\":{\"cert\":\"/srv/edge.pem\",\"key\":\"keys/edge.key\"},"
        "\"advertise\":[\"edge.example.com:443\",\"edge2.example.com:8443\"],"
        "\"state_dir\":\"state\","
        "\"admin\":{\"socket\":\"/run/p/admin.sock\",\"socket_mode\":\"0600\","
        "\"tcp\":\"127.0.0.1:9443\",\"token_file\":\"admin.token\"},"
        "\"log\":{\"level\":\"debug\",\"file\":\"/var/log/portico/edge.log\"},"
        "\"limits\":{\"handshake_timeout\":\"5s\",\"max_connections\":500,\"max_tunnels\":50,"
        "\"max_unauthenticated\":20,\"max_unauthenticated_per_address\":5,\"ping_interval\":\"2s\","
        "\"idle_timeout\":\"6s\","
        "\"drain_timeout\":\"1m\",\"http_head_timeout\":\"3s\",\"http_idle_timeout\":\"20s\","
        "\"max_head_size\":\"32KiB\",\"max_headers\":50,\"max_url_length\":4096}}";
    ptc_edge_config_t cfg;
    char err[512];
    CHECK_OK(load(json, &cfg, err, sizeof(err)));
    CHECK_EQ(cfg.listen_cnt, 2);
    CHECK_STREQ(cfg.listen[1], "[::]:443");
    CHECK_STREQ(cfg.tls.cert, "/srv/edge.pem");
    CHECK_STREQ(cfg.tls.key, "/etc/portico/keys/edge.key");
    CHECK_EQ(cfg.advertise_cnt, 2);
    CHECK_STREQ(cfg.advertise[1], "edge2.example.com:8443");
    CHECK_STREQ(cfg.state_dir, "/etc/portico/state");
    CHECK_STREQ(cfg.admin.socket, "/run/p/admin.sock");
    CHECK_EQ(cfg.admin.socket_mode, 0600);
    CHECK_STREQ(cfg.admin.socket_mode_text, "0600");
    CHECK_STREQ(cfg.admin.tcp, "127.0.0.1:9443");
    CHECK_STREQ(cfg.admin.token_file, "/etc/portico/admin.token");
    CHECK_EQ(cfg.log.level, 0);
    CHECK_STREQ(cfg.log.file, "/var/log/portico/edge.log");
    CHECK_UEQ(cfg.limits.handshake_timeout_ms, 5000);
    CHECK_EQ(cfg.limits.max_connections, 500);
    CHECK_EQ(cfg.limits.max_tunnels, 50);
    CHECK_EQ(cfg.limits.max_unauthenticated, 20);
    CHECK_EQ(cfg.limits.max_unauthenticated_per_address, 5);
    CHECK_UEQ(cfg.limits.ping_interval_ms, 2000);
    CHECK_UEQ(cfg.limits.idle_timeout_ms, 6000);
    CHECK_UEQ(cfg.limits.drain_timeout_ms, 60000);
    CHECK_UEQ(cfg.limits.http_head_timeout_ms, 3000);
    CHECK_UEQ(cfg.limits.http_idle_timeout_ms, 20000);
    CHECK_UEQ(cfg.limits.max_head_bytes, 32768);
    CHECK_EQ(cfg.limits.max_headers, 50);
    CHECK_EQ(cfg.limits.max_url_len, 4096);
    ptc_edge_config_free(&cfg);
}

static void test_load_from_file(void)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/edge.json", ptc_test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    fputs("{" MINIMAL ",\"state_dir\":\"st\"}", f);
    fclose(f);
    ptc_edge_config_t cfg;
    char err[512];
    CHECK_OK(ptc_edge_config_load(path, &cfg, err, sizeof(err)));
    char want[700];
    snprintf(want, sizeof(want), "%s/st", ptc_test_tmpdir());
    CHECK_STREQ(cfg.state_dir, want);
    ptc_edge_config_free(&cfg);

    /* A missing file is the system error, with a message naming the file. */
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/nope.json", ptc_test_tmpdir());
    CHECK_EQ(ptc_edge_config_load(missing, &cfg, err, sizeof(err)), UV_ENOENT);
    CHECK_CONTAINS(err, "nope.json");
    ptc_edge_config_free(&cfg);

    /* The cross-key checks name the file as given. */
    f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    fputs("{" MINIMAL ",\"advertise\":[\"nohost\"]}", f);
    fclose(f);
    CHECK_EQ(ptc_edge_config_load(path, &cfg, err, sizeof(err)), PTC_ECONFIG);
    char msg[800];
    snprintf(msg, sizeof(msg),
             "%s: advertise[0]: expected \"host:port\" with a port 1..65535, got \"nohost\"", path);
    CHECK_STREQ(err, msg);
    ptc_edge_config_free(&cfg);
}

static void test_schema_refusals(void)
{
    refused("{\"edge_host\":\"e.example.com\"}", "edge.json: listen: required key is missing");
    refused("{" MINIMAL ",\"listen\":[]}", "edge.json:1:147: invalid JSON: duplicate object key "
                                           "near '\"listen\"'");
    refused("{\"listen\":[],\"edge_host\":\"e.example.com\",\"default_domain\":\"a.example.com\","
            "\"tls\":{\"cert\":\"c\",\"key\":\"k\"}}",
            "edge.json: listen: expected an array of strings with 1..16 elements, got 0");
    refused("{" MINIMAL ",\"limits\":{\"max_tunels\":5}}",
            "edge.json: limits: unknown key \"max_tunels\" (did you mean \"max_tunnels\"?)");
    refused("{" MINIMAL ",\"log\":{\"level\":\"verbose\"}}",
            "edge.json: log.level: expected one of debug, info, warn, error, got \"verbose\"");
    refused("{" MINIMAL ",\"limits\":{\"ping_interval\":\"500ms\"}}",
            "edge.json: limits.ping_interval: expected a duration 1s..10m, got \"500ms\"");
    refused("{\"listen\":[\"127.0.0.1:1\"],\"edge_host\":\"e.example.com\","
            "\"default_domain\":\"a.example.com\",\"tls\":{\"cert\":\"c\"}}",
            "edge.json: tls.key: required key is missing");
}

static void test_cross_key_refusals(void)
{
    refused("{\"listen\":[\"127.0.0.1\"],\"edge_host\":\"e.example.com\","
            "\"default_domain\":\"a.example.com\",\"tls\":{\"cert\":\"c\",\"key\":\"k\"}}",
            "edge.json: listen[0]: expected \"host:port\" such as \"0.0.0.0:443\", got "
            "\"127.0.0.1\"");
    refused("{\"listen\":[\"127.0.0.1:1\"],\"edge_host\":\"bad_host\","
            "\"default_domain\":\"a.example.com\",\"tls\":{\"cert\":\"c\",\"key\":\"k\"}}",
            "edge.json: edge_host: expected a DNS host name, got \"bad_host\"");
    refused("{\"listen\":[\"127.0.0.1:1\"],\"edge_host\":\"e.example.com\","
            "\"default_domain\":\"-a.example.com\",\"tls\":{\"cert\":\"c\",\"key\":\"k\"}}",
            "edge.json: default_domain: expected a DNS domain name, got \"-a.example.com\"");
    refused("{" MINIMAL ",\"advertise\":[\"e.example.com:0\"]}",
            "edge.json: advertise[0]: expected \"host:port\" with a port 1..65535, got "
            "\"e.example.com:0\"");
    refused("{" MINIMAL ",\"admin\":{\"socket_mode\":\"660x\"}}",
            "edge.json: admin.socket_mode: expected an octal file mode such as \"0660\", got "
            "\"660x\"");
    refused("{" MINIMAL ",\"admin\":{\"socket_mode\":\"8\"}}",
            "edge.json: admin.socket_mode: expected an octal file mode such as \"0660\", got "
            "\"8\"");
    refused("{" MINIMAL ",\"admin\":{\"tcp\":\"0.0.0.0:9443\",\"token_file\":\"t\"}}",
            "edge.json: admin.tcp: expected a loopback \"host:port\" such as \"127.0.0.1:9443\", "
            "got \"0.0.0.0:9443\"");
    refused("{" MINIMAL ",\"admin\":{\"tcp\":\"127.0.0.1:9443\"}}",
            "edge.json: admin.token_file: required when admin.tcp is set");
    refused("{" MINIMAL ",\"admin\":{\"token_file\":\"t\"}}",
            "edge.json: admin.tcp: required when admin.token_file is set");
    refused("{" MINIMAL ",\"limits\":{\"ping_interval\":\"20s\",\"idle_timeout\":\"20s\"}}",
            "edge.json: limits.idle_timeout: must be greater than limits.ping_interval (20000 "
            "ms), got 20000 ms");
}

/* deploy/edge.example.json stays a valid configuration with the documented defaults. */
static void test_example_file_is_valid(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/deploy/edge.example.json", ptc_test_srcdir());
    ptc_edge_config_t cfg;
    char err[512];
    int rc = ptc_edge_config_load(path, &cfg, err, sizeof(err));
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "%s", err);
    }
    CHECK_STREQ(cfg.edge_host, "edge.example.com");
    CHECK_STREQ(cfg.tls.cert, "/etc/portico/tls/edge.pem");
    CHECK_STREQ(cfg.admin.socket, "/run/portico/admin.sock");
    CHECK_EQ(cfg.admin.socket_mode, 0660);
    CHECK_UEQ(cfg.limits.handshake_timeout_ms, 10000);
    CHECK_UEQ(cfg.limits.idle_timeout_ms, 45000);
    CHECK_UEQ(cfg.limits.max_head_bytes, 16384);
    ptc_edge_config_free(&cfg);
}

/* The app request path's keys: the plain-HTTP redirect listeners and Server-Timing. */
static void test_http_listen_and_server_timing(void)
{
    ptc_edge_config_t cfg;
    char err[512];
    CHECK_OK(load("{" MINIMAL "}", &cfg, err, sizeof(err)));
    CHECK_EQ(cfg.http_listen_cnt, 0);
    CHECK(!cfg.server_timing);
    ptc_edge_config_free(&cfg);
    CHECK_OK(load("{" MINIMAL ",\"http_listen\":[\"0.0.0.0:80\",\"[::1]:8080\"],"
                  "\"server_timing\":true}",
                  &cfg, err, sizeof(err)));
    CHECK_EQ(cfg.http_listen_cnt, 2);
    CHECK_STREQ(cfg.http_listen[1], "[::1]:8080");
    CHECK(cfg.server_timing);
    ptc_edge_config_free(&cfg);
    refused("{" MINIMAL ",\"http_listen\":[\"nowhere\"]}",
            "edge.json: http_listen[0]: expected \"host:port\" such as \"0.0.0.0:80\", got "
            "\"nowhere\"");
    refused("{" MINIMAL ",\"server_timing\":\"yes\"}",
            "edge.json: server_timing: expected true or false, got \"yes\"");
}

/* Writes `text` to <tmpdir>/<file> and stores the path in path[0..cap). */
static void write_tmp(const char *file, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", ptc_test_tmpdir(), file);
    FILE *f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    fputs(text, f);
    fclose(f);
}

/* Copies `tmpl` into out[0..cap) with every "%s" replaced by `arg`. */
static void subst(const char *tmpl, const char *arg, char *out, size_t cap)
{
    size_t o = 0;
    size_t al = strlen(arg);
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (p[0] == '%' && p[1] == 's') {
            CHECK(o + al < cap);
            memcpy(out + o, arg, al);
            o += al;
            p++;
            continue;
        }
        CHECK(o + 1 < cap);
        out[o++] = *p;
    }
    out[o] = '\0';
}

/* Loads "{MINIMAL,<extra>}" where each "%s" of `extra` is `arg` (a path); it must be refused
 * with `message`, in which each "%s" is `arg` too. */
static void refused_with(const char *extra, const char *arg, const char *message)
{
    char json[4096];
    char body[3072];
    subst(extra, arg, body, sizeof(body));
    snprintf(json, sizeof(json), "{" MINIMAL ",%s}", body);
    char want[2048];
    subst(message, arg, want, sizeof(want));
    refused(json, want);
}

static void test_idps_and_session_defaults(void)
{
    ptc_edge_config_t cfg;
    char err[512];
    CHECK_OK(load("{" MINIMAL "}", &cfg, err, sizeof(err)));
    CHECK_EQ(cfg.idps_cnt, 0);
    CHECK_NULL(cfg.idps);
    CHECK_STREQ(cfg.session.lifetime_text, "8h");
    CHECK_EQ(cfg.session.lifetime_s, 8 * 3600);
    CHECK_STREQ(cfg.session.key_rotation_text, "7d");
    CHECK_EQ(cfg.session.key_rotation_s, 7 * 86400);
    CHECK_NULL(ptc_edge_config_find_idp(&cfg, "corp"));
    ptc_edge_config_free(&cfg);
}

static void test_idps_full(void)
{
    char secret1[600];
    char secret2[600];
    char ca[600];
    write_tmp("corp.secret", "s3cr:et/%\n", secret1, sizeof(secret1));
    write_tmp("dev.secret", "dev-secret\r\n", secret2, sizeof(secret2));
    write_tmp("ca.pem", "-----BEGIN CERTIFICATE-----\n", ca, sizeof(ca));
    char json[4096];
    snprintf(json, sizeof(json),
             "{" MINIMAL ",\"idps\":[{\"name\":\"corp\",\"issuer\":\"https://login.example.com/\","
             "\"client_id\":\"portico\",\"client_secret_file\":\"%s\"},"
             "{\"name\":\"dev-2\",\"issuer\":\"http://127.0.0.2:9000\",\"client_id\":\"p:2\","
             "\"client_secret_file\":\"%s\",\"token_endpoint_auth_method\":\"client_secret_post\","
             "\"scopes\":[\"openid\",\"groups\"],\"groups_claim\":\"roles\",\"ca_file\":\"%s\"}],"
             "\"session\":{\"lifetime\":\"12h\",\"key_rotation\":\"30d\"}}",
             secret1, secret2, ca);
    ptc_edge_config_t cfg;
    char err[512];
    int rc = load(json, &cfg, err, sizeof(err));
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "%s", err);
    }
    CHECK_EQ(cfg.idps_cnt, 2);
    const ptc_edge_idp_cfg_t *a = &cfg.idps[0];
    CHECK_STREQ(a->name, "corp");
    CHECK_STREQ(a->issuer, "https://login.example.com/"); /* kept as written */
    CHECK_STREQ(a->client_id, "portico");
    CHECK_STREQ(a->client_secret_file, secret1);
    CHECK_STREQ(a->client_secret, "s3cr:et/%"); /* the trailing line break removed */
    CHECK_EQ(a->token_endpoint_auth_method, PTC_EDGE_IDP_CLIENT_SECRET_BASIC);
    CHECK_EQ(a->scopes_cnt, 3);
    CHECK_STREQ(a->scopes[0], "openid");
    CHECK_STREQ(a->scopes[1], "email");
    CHECK_STREQ(a->scopes[2], "profile");
    CHECK_STREQ(a->groups_claim, "groups");
    CHECK_NULL(a->ca_file);
    const ptc_edge_idp_cfg_t *b = &cfg.idps[1];
    CHECK_STREQ(b->name, "dev-2");
    CHECK_STREQ(b->issuer, "http://127.0.0.2:9000");
    CHECK_STREQ(b->client_secret, "dev-secret");
    CHECK_EQ(b->token_endpoint_auth_method, PTC_EDGE_IDP_CLIENT_SECRET_POST);
    CHECK_EQ(b->scopes_cnt, 2);
    CHECK_STREQ(b->scopes[1], "groups");
    CHECK_STREQ(b->groups_claim, "roles");
    CHECK_STREQ(b->ca_file, ca);
    CHECK(ptc_edge_config_find_idp(&cfg, "dev-2") == b);
    CHECK(ptc_edge_config_find_idp(&cfg, "corp") == a);
    CHECK_NULL(ptc_edge_config_find_idp(&cfg, "dev"));
    CHECK_EQ(cfg.session.lifetime_s, 12 * 3600);
    CHECK_EQ(cfg.session.key_rotation_s, 30 * 86400);
    ptc_edge_config_free(&cfg);
    CHECK_EQ(cfg.idps_cnt, 0);
    ptc_edge_config_free(&cfg);
}

/* The loopback forms a plain-http issuer may use; nothing else. */
static void test_loopback_rule(void)
{
    CHECK(ptc_edge_config_is_loopback_host("127.0.0.1"));
    CHECK(ptc_edge_config_is_loopback_host("127.0.0.2"));
    CHECK(ptc_edge_config_is_loopback_host("::1"));
    CHECK(ptc_edge_config_is_loopback_host("localhost"));
    CHECK(!ptc_edge_config_is_loopback_host("128.0.0.1"));
    CHECK(!ptc_edge_config_is_loopback_host("10.0.0.1"));
    CHECK(!ptc_edge_config_is_loopback_host("localhost.example.com"));
    CHECK(!ptc_edge_config_is_loopback_host("::2"));
}

#define IDP_START "\"idps\":[{\"name\":\"corp\",\"issuer\":\"https://id.example.com\","
#define IDP_ID "\"client_id\":\"portico\","

static void test_idp_refusals(void)
{
    char secret[600];
    write_tmp("ok.secret", "secret", secret, sizeof(secret));
    char empty[600];
    write_tmp("empty.secret", "\n", empty, sizeof(empty));
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/missing.secret", ptc_test_tmpdir());

    refused("{" MINIMAL ",\"idps\":{}}",
            "edge.json: idps: expected an array of objects, got an object");
    refused_with("\"idps\":[{\"name\":\"Corp\",\"issuer\":\"https://id.example.com\"," IDP_ID
                 "\"client_secret_file\":\"%s\"}]",
                 secret,
                 "edge.json: idps[0].name: expected 1..63 of a-z, 0-9 and '-', got \"Corp\"");
    refused_with(IDP_START IDP_ID "\"client_secret_file\":\"%s\"},"
                                  "{\"name\":\"corp\",\"issuer\":\"https://b.example.com\"," IDP_ID
                                  "\"client_secret_file\":\"%s\"}]",
                 secret, "edge.json: idps[1].name: \"corp\" is already the name of idps[0]");
    refused_with(IDP_START "\"client_secret_file\":\"%s\"}]", secret,
                 "edge.json: idps[0].client_id: required key is missing");
    refused_with(IDP_START IDP_ID "\"client_secret_file\":\"%s\",\"client_secret\":\"x\"}]", secret,
                 "edge.json: idps[0]: unknown key \"client_secret\"");
    refused_with(IDP_START IDP_ID "\"client_secret_file\":\"%s\",\"groups_claim\":7}]", secret,
                 "edge.json: idps[0].groups_claim: expected a non-empty string, got 7");
    refused_with("\"idps\":[{\"name\":\"corp\",\"issuer\":\"http://id.example.com\"," IDP_ID
                 "\"client_secret_file\":\"%s\"}]",
                 secret,
                 "edge.json: idps[0].issuer: expected an https URL without a query (http only "
                 "on a loopback address), got \"http://id.example.com\"");
    refused_with("\"idps\":[{\"name\":\"corp\",\"issuer\":\"https://id.example.com/?a=1\"," IDP_ID
                 "\"client_secret_file\":\"%s\"}]",
                 secret,
                 "edge.json: idps[0].issuer: expected an https URL without a query (http only "
                 "on a loopback address), got \"https://id.example.com/?a=1\"");
    refused_with("\"idps\":[{\"name\":\"corp\",\"issuer\":\"id.example.com\"," IDP_ID
                 "\"client_secret_file\":\"%s\"}]",
                 secret,
                 "edge.json: idps[0].issuer: expected an https URL without a query (http only "
                 "on a loopback address), got \"id.example.com\"");
    refused_with(
        IDP_START IDP_ID
        "\"client_secret_file\":\"%s\",\"token_endpoint_auth_method\":\"private_key_jwt\"}]",
        secret,
        "edge.json: idps[0].token_endpoint_auth_method: expected one of "
        "client_secret_basic, client_secret_post, got \"private_key_jwt\"");
    refused_with(IDP_START IDP_ID "\"client_secret_file\":\"%s\",\"scopes\":[\"email\"]}]", secret,
                 "edge.json: idps[0].scopes: must contain \"openid\"");
    refused_with(IDP_START IDP_ID "\"client_secret_file\":\"%s\",\"scopes\":[\"openid\",\"a b\"]}]",
                 secret,
                 "edge.json: idps[0].scopes[1]: expected a scope without spaces or quotes, got "
                 "\"a b\"");
    refused_with(IDP_START IDP_ID "\"client_secret_file\":\"%s\"}]", missing,
                 "edge.json: idps[0].client_secret_file: cannot read \"%s\": No such file or "
                 "directory");
    refused_with(IDP_START IDP_ID "\"client_secret_file\":\"%s\"}]", empty,
                 "edge.json: idps[0].client_secret_file: \"%s\" is empty");
    char with_secret[1024];
    snprintf(with_secret, sizeof(with_secret),
             IDP_START IDP_ID "\"client_secret_file\":\"%s\",\"ca_file\":\"%%s\"}]", secret);
    refused_with(with_secret, missing,
                 "edge.json: idps[0].ca_file: cannot read \"%s\": No such file or directory");
    /* The keys are checked in document order: the secret file before the CA file. */
    refused_with(IDP_START IDP_ID "\"client_secret_file\":\"%s\",\"ca_file\":\"%s\"}]", missing,
                 "edge.json: idps[0].client_secret_file: cannot read \"%s\": No such file or "
                 "directory");
    refused_with(IDP_START IDP_ID "\"client_secret_file\":\"%s\",\"ca_file\":null}]", secret,
                 "edge.json: idps[0].ca_file: expected a non-empty path, got null");

    /* The secret never appears in a message, even when a later key is the one refused. */
    char secret_msg[600];
    write_tmp("visible.secret", "do-not-print-me", secret_msg, sizeof(secret_msg));
    char json[2048];
    snprintf(json, sizeof(json),
             "{" MINIMAL "," IDP_START IDP_ID "\"client_secret_file\":\"%s\"}],"
             "\"session\":{\"lifetime\":\"1m\"}}",
             secret_msg);
    ptc_edge_config_t cfg;
    char err[512];
    CHECK_EQ(load(json, &cfg, err, sizeof(err)), PTC_ECONFIG);
    CHECK(strstr(err, "do-not-print-me") == NULL);
    ptc_edge_config_free(&cfg);
}

static void test_session_refusals(void)
{
    refused("{" MINIMAL ",\"session\":{\"lifetime\":\"8 hours\"}}",
            "edge.json: session.lifetime: expected a duration such as 8h or 7d, got \"8 hours\"");
    refused("{" MINIMAL ",\"session\":{\"lifetime\":\"1m\"}}",
            "edge.json: session.lifetime: expected a duration 5m..30d, got \"1m\"");
    refused("{" MINIMAL ",\"session\":{\"lifetime\":\"31d\"}}",
            "edge.json: session.lifetime: expected a duration 5m..30d, got \"31d\"");
    refused("{" MINIMAL ",\"session\":{\"lifetime\":3600}}",
            "edge.json: session.lifetime: expected a non-empty string, got 3600");
    refused("{" MINIMAL ",\"session\":{\"key_rotation\":\"30m\"}}",
            "edge.json: session.key_rotation: expected a duration 1h..365d, got \"30m\"");
    refused("{" MINIMAL ",\"session\":{\"key_rotation\":\"99999999999999999999d\"}}",
            "edge.json: session.key_rotation: expected a duration such as 8h or 7d, got "
            "\"99999999999999999999d\"");
    refused("{" MINIMAL ",\"session\":{\"lifetime\":\"2d\",\"key_rotation\":\"1d\"}}",
            "edge.json: session.key_rotation: must be at least session.lifetime (2d), got 1d");
    refused("{" MINIMAL ",\"session\":{\"lifetme\":\"8h\"}}",
            "edge.json: session: unknown key \"lifetme\" (did you mean \"lifetime\"?)");
    ptc_edge_config_t cfg;
    char err[512];
    CHECK_OK(load("{" MINIMAL ",\"session\":{\"lifetime\":\"90m\",\"key_rotation\":\"36h\"}}", &cfg,
                  err, sizeof(err)));
    CHECK_EQ(cfg.session.lifetime_s, 5400);
    CHECK_EQ(cfg.session.key_rotation_s, 36 * 3600);
    ptc_edge_config_free(&cfg);
}

static void test_hostname_rule(void)
{
    CHECK(ptc_edge_config_is_hostname("edge.example.com"));
    CHECK(ptc_edge_config_is_hostname("localhost"));
    CHECK(ptc_edge_config_is_hostname("a-b.c1"));
    CHECK(!ptc_edge_config_is_hostname(""));
    CHECK(!ptc_edge_config_is_hostname("a..b"));
    CHECK(!ptc_edge_config_is_hostname(".a"));
    CHECK(!ptc_edge_config_is_hostname("a."));
    CHECK(!ptc_edge_config_is_hostname("a-.b"));
    CHECK(!ptc_edge_config_is_hostname("a b"));
    CHECK(!ptc_edge_config_is_hostname("*.example.com"));
    char label[80];
    memset(label, 'a', 64);
    label[64] = '\0';
    CHECK(!ptc_edge_config_is_hostname(label));
    label[63] = '\0';
    CHECK(ptc_edge_config_is_hostname(label));
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_minimal_takes_defaults),
    PTC_TEST(test_full_document),
    PTC_TEST(test_load_from_file),
    PTC_TEST(test_schema_refusals),
    PTC_TEST(test_cross_key_refusals),
    PTC_TEST(test_example_file_is_valid),
    PTC_TEST(test_hostname_rule),
    PTC_TEST(test_http_listen_and_server_timing),
    PTC_TEST(test_idps_and_session_defaults),
    PTC_TEST(test_idps_full),
    PTC_TEST(test_loopback_rule),
    PTC_TEST(test_idp_refusals),
    PTC_TEST(test_session_refusals),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
