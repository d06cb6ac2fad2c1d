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
    PTC_TEST(test_minimal_takes_defaults), PTC_TEST(test_full_document),
    PTC_TEST(test_load_from_file),         PTC_TEST(test_schema_refusals),
    PTC_TEST(test_cross_key_refusals),     PTC_TEST(test_example_file_is_valid),
    PTC_TEST(test_hostname_rule),          PTC_TEST(test_http_listen_and_server_timing),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
