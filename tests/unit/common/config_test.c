/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/config: every field type, defaults, nested objects and arrays of
 * objects, relative paths, and every refusal with its exact message. Partial loads are
 * freed under ASan to prove ptc_config_free() releases everything.
 */
#include "common/config.h"
#include "tests/support/test.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* ---- a test schema that uses every type ---- */

typedef struct backend_cfg {
    char *url;
    int64_t weight;
} backend_cfg_t;

typedef struct app_cfg {
    char *name;
    ptc_config_kv_t *sso_headers;
    size_t sso_headers_cnt;
    backend_cfg_t *backends;
    size_t backends_cnt;
} app_cfg_t;

typedef struct listen_cfg {
    char *address;
    int64_t port;
    bool tls;
    char **hosts;
    size_t hosts_cnt;
} listen_cfg_t;

typedef struct log_cfg {
    int level;
    char *file;
} log_cfg_t;

typedef struct limits_cfg {
    uint64_t max_header_bytes;
    int64_t max_headers;
    uint64_t head_timeout;
} limits_cfg_t;

typedef struct edge_cfg {
    char *default_domain;
    char *motd;
    listen_cfg_t *listen;
    size_t listen_cnt;
    log_cfg_t log;
    limits_cfg_t limits;
    char *state_dir;
    char *cert;
    char **scopes;
    size_t scopes_cnt;
    ptc_config_kv_t *claims;
    size_t claims_cnt;
    app_cfg_t *apps;
    size_t apps_cnt;
    bool maintenance;
    int64_t retries;
    uint64_t idle;
    uint64_t body_max;
} edge_cfg_t;

static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};

static const ptc_config_field_t backend_fields[] = {
    {.key = "url",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(backend_cfg_t, url),
     .required = true},
    {.key = "weight",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(backend_cfg_t, weight),
     .def_int = 10,
     .min = 1,
     .max = 100},
};
static const ptc_config_schema_t backend_schema = PTC_CONFIG_SCHEMA(backend_cfg_t, backend_fields);

static const ptc_config_field_t app_fields[] = {
    {.key = "name",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(app_cfg_t, name),
     .required = true},
    {.key = "sso_headers",
     .type = PTC_CONFIG_STRING_MAP,
     .offset = offsetof(app_cfg_t, sso_headers),
     .count_offset = offsetof(app_cfg_t, sso_headers_cnt)},
    {.key = "backends",
     .type = PTC_CONFIG_OBJECT_ARRAY,
     .offset = offsetof(app_cfg_t, backends),
     .count_offset = offsetof(app_cfg_t, backends_cnt),
     .schema = &backend_schema,
     .min = 1,
     .max = INT64_MAX},
};
static const ptc_config_schema_t app_schema = PTC_CONFIG_SCHEMA(app_cfg_t, app_fields);

static const ptc_config_field_t listen_fields[] = {
    {.key = "address",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(listen_cfg_t, address),
     .def_str = "0.0.0.0"},
    {.key = "port",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(listen_cfg_t, port),
     .required = true,
     .min = 1,
     .max = 65535},
    {.key = "tls", .type = PTC_CONFIG_BOOL, .offset = offsetof(listen_cfg_t, tls), .def_int = 1},
    {.key = "hosts",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(listen_cfg_t, hosts),
     .count_offset = offsetof(listen_cfg_t, hosts_cnt)},
};
static const ptc_config_schema_t listen_schema = PTC_CONFIG_SCHEMA(listen_cfg_t, listen_fields);

static const ptc_config_field_t log_fields[] = {
    {.key = "level",
     .type = PTC_CONFIG_ENUM,
     .offset = offsetof(log_cfg_t, level),
     .enum_names = level_names,
     .def_int = 1},
    {.key = "file", .type = PTC_CONFIG_PATH, .offset = offsetof(log_cfg_t, file)},
};
static const ptc_config_schema_t log_schema = PTC_CONFIG_SCHEMA(log_cfg_t, log_fields);

static const ptc_config_field_t limits_fields[] = {
    {.key = "max_header_bytes",
     .type = PTC_CONFIG_SIZE,
     .offset = offsetof(limits_cfg_t, max_header_bytes),
     .def_int = 32768},
    {.key = "max_headers",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(limits_cfg_t, max_headers),
     .def_int = 100,
     .min = 1,
     .max = 1000},
    {.key = "head_timeout",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(limits_cfg_t, head_timeout),
     .def_int = 10000},
};
static const ptc_config_schema_t limits_schema = PTC_CONFIG_SCHEMA(limits_cfg_t, limits_fields);

static const ptc_config_field_t edge_fields[] = {
    {.key = "default_domain",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(edge_cfg_t, default_domain),
     .required = true},
    {.key = "motd",
     .type = PTC_CONFIG_STRING,
     .offset = offsetof(edge_cfg_t, motd),
     .def_str = "welcome"},
    {.key = "listen",
     .type = PTC_CONFIG_OBJECT_ARRAY,
     .offset = offsetof(edge_cfg_t, listen),
     .count_offset = offsetof(edge_cfg_t, listen_cnt),
     .schema = &listen_schema,
     .required = true,
     .min = 1,
     .max = 8},
    {.key = "log",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(edge_cfg_t, log),
     .schema = &log_schema},
    {.key = "limits",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(edge_cfg_t, limits),
     .schema = &limits_schema},
    {.key = "state_dir",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(edge_cfg_t, state_dir),
     .def_str = "state"},
    {.key = "cert", .type = PTC_CONFIG_PATH, .offset = offsetof(edge_cfg_t, cert)},
    {.key = "scopes",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(edge_cfg_t, scopes),
     .count_offset = offsetof(edge_cfg_t, scopes_cnt),
     .min = 0,
     .max = 4},
    {.key = "claims",
     .type = PTC_CONFIG_STRING_MAP,
     .offset = offsetof(edge_cfg_t, claims),
     .count_offset = offsetof(edge_cfg_t, claims_cnt)},
    {.key = "apps",
     .type = PTC_CONFIG_OBJECT_ARRAY,
     .offset = offsetof(edge_cfg_t, apps),
     .count_offset = offsetof(edge_cfg_t, apps_cnt),
     .schema = &app_schema},
    {.key = "maintenance", .type = PTC_CONFIG_BOOL, .offset = offsetof(edge_cfg_t, maintenance)},
    {.key = "retries",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(edge_cfg_t, retries),
     .def_int = 3,
     .min = 0,
     .max = INT64_MAX},
    {.key = "idle",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(edge_cfg_t, idle),
     .def_int = 30000,
     .min = 1000,
     .max = 3600000},
    {.key = "body_max",
     .type = PTC_CONFIG_SIZE,
     .offset = offsetof(edge_cfg_t, body_max),
     .def_int = 1048576,
     .min = 1024,
     .max = 1073741824},
};
static const ptc_config_schema_t edge_schema = PTC_CONFIG_SCHEMA(edge_cfg_t, edge_fields);

/* ---- helpers ---- */

/* Loads `doc` as "edge.json" (no base directory) and returns the code; msg gets the error. */
static int load(const char *doc, edge_cfg_t *cfg, char *msg, size_t msglen)
{
    return ptc_config_load_buffer("edge.json", doc, strlen(doc), NULL, &edge_schema, cfg, msg,
                                  msglen);
}

/* Expects `doc` to be refused with exactly `want`, and frees the partial result. */
static void expect_refusal(const char *doc, const char *want)
{
    edge_cfg_t cfg;
    char msg[512];
    int rc = load(doc, &cfg, msg, sizeof(msg));
    if (rc != PTC_ECONFIG) {
        ptc_test_fail(__FILE__, __LINE__, "rc %d for %s", rc, doc);
    }
    CHECK_STREQ(msg, want);
    ptc_config_free(&edge_schema, &cfg);
}

#define MIN_DOC "\"default_domain\": \"apps.example.com\", \"listen\": [{\"port\": 443}]"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CHECK_NOT_NULL(f);
    CHECK_EQ(fwrite(text, 1, strlen(text), f), strlen(text));
    CHECK_OK(fclose(f));
}

/* ---- valid documents ---- */

static void test_every_type_loads(void)
{
    const char *doc =
        "{\n"
        "  \"default_domain\": \"apps.example.com\",\n"
        "  \"motd\": \"\",\n"
        "  \"listen\": [\n"
        "    {\"address\": \"127.0.0.1\", \"port\": 8443, \"tls\": false,\n"
        "     \"hosts\": [\"a.example.com\", \"b.example.com\"]},\n"
        "    {\"port\": 443}\n"
        "  ],\n"
        "  \"log\": {\"level\": \"warn\", \"file\": \"/var/log/portico/edge.log\"},\n"
        "  \"limits\": {\"max_header_bytes\": \"64KiB\", \"max_headers\": 50,\n"
        "             \"head_timeout\": \"5m\"},\n"
        "  \"state_dir\": \"/var/lib/portico\",\n"
        "  \"cert\": \"certs/wild.pem\",\n"
        "  \"scopes\": [\"openid\", \"email\"],\n"
        "  \"claims\": {\"email\": \"X-Email\", \"groups\": \"X-Groups\"},\n"
        "  \"apps\": [{\"name\": \"hr\", \"sso_headers\": {\"sub\": \"X-User\"},\n"
        "             \"backends\": [{\"url\": \"http://10.0.0.5:8080\", \"weight\": 70},\n"
        "                          {\"url\": \"http://10.0.0.6:8080\"}]},\n"
        "           {\"name\": \"wiki\", \"backends\": [{\"url\": \"http://w\"}]}],\n"
        "  \"maintenance\": true,\n"
        "  \"retries\": 0,\n"
        "  \"idle\": 1500,\n"
        "  \"body_max\": \"2MiB\"\n"
        "}\n";
    edge_cfg_t cfg;
    char msg[256] = "unchanged";
    CHECK_OK(load(doc, &cfg, msg, sizeof(msg)));
    CHECK_STREQ(msg, "");
    CHECK_STREQ(cfg.default_domain, "apps.example.com");
    CHECK_STREQ(cfg.motd, "");
    CHECK_UEQ(cfg.listen_cnt, 2);
    CHECK_STREQ(cfg.listen[0].address, "127.0.0.1");
    CHECK_EQ(cfg.listen[0].port, 8443);
    CHECK(!cfg.listen[0].tls);
    CHECK_UEQ(cfg.listen[0].hosts_cnt, 2);
    CHECK_STREQ(cfg.listen[0].hosts[0], "a.example.com");
    CHECK_STREQ(cfg.listen[0].hosts[1], "b.example.com");
    CHECK_STREQ(cfg.listen[1].address, "0.0.0.0");
    CHECK_EQ(cfg.listen[1].port, 443);
    CHECK(cfg.listen[1].tls);
    CHECK_UEQ(cfg.listen[1].hosts_cnt, 0);
    CHECK_NULL(cfg.listen[1].hosts);
    CHECK_EQ(cfg.log.level, 2);
    CHECK_STREQ(cfg.log.file, "/var/log/portico/edge.log");
    CHECK_UEQ(cfg.limits.max_header_bytes, 65536);
    CHECK_EQ(cfg.limits.max_headers, 50);
    CHECK_UEQ(cfg.limits.head_timeout, 300000);
    CHECK_STREQ(cfg.state_dir, "/var/lib/portico");
    /* No base directory: a relative path stays as written. */
    CHECK_STREQ(cfg.cert, "certs/wild.pem");
    CHECK_UEQ(cfg.scopes_cnt, 2);
    CHECK_STREQ(cfg.scopes[1], "email");
    CHECK_UEQ(cfg.claims_cnt, 2);
    CHECK_STREQ(cfg.claims[0].key, "email");
    CHECK_STREQ(cfg.claims[0].value, "X-Email");
    CHECK_STREQ(cfg.claims[1].key, "groups");
    CHECK_STREQ(cfg.claims[1].value, "X-Groups");
    CHECK_UEQ(cfg.apps_cnt, 2);
    CHECK_STREQ(cfg.apps[0].name, "hr");
    CHECK_UEQ(cfg.apps[0].sso_headers_cnt, 1);
    CHECK_STREQ(cfg.apps[0].sso_headers[0].key, "sub");
    CHECK_STREQ(cfg.apps[0].sso_headers[0].value, "X-User");
    CHECK_UEQ(cfg.apps[0].backends_cnt, 2);
    CHECK_STREQ(cfg.apps[0].backends[0].url, "http://10.0.0.5:8080");
    CHECK_EQ(cfg.apps[0].backends[0].weight, 70);
    CHECK_EQ(cfg.apps[0].backends[1].weight, 10);
    CHECK_STREQ(cfg.apps[1].name, "wiki");
    CHECK_UEQ(cfg.apps[1].backends_cnt, 1);
    CHECK_EQ(cfg.apps[1].backends[0].weight, 10);
    CHECK(cfg.maintenance);
    CHECK_EQ(cfg.retries, 0);
    CHECK_UEQ(cfg.idle, 1500);
    CHECK_UEQ(cfg.body_max, 2 * 1024 * 1024);
    ptc_config_free(&edge_schema, &cfg);
    CHECK_NULL(cfg.default_domain);
    CHECK_NULL(cfg.listen);
    CHECK_UEQ(cfg.listen_cnt, 0);
    CHECK_NULL(cfg.log.file);
    CHECK_NULL(cfg.apps);
    /* A second free is harmless. */
    ptc_config_free(&edge_schema, &cfg);
}

static void test_defaults_applied(void)
{
    edge_cfg_t cfg;
    char msg[256];
    CHECK_OK(load("{" MIN_DOC "}", &cfg, msg, sizeof(msg)));
    CHECK_STREQ(cfg.motd, "welcome");
    CHECK_STREQ(cfg.listen[0].address, "0.0.0.0");
    CHECK(cfg.listen[0].tls);
    /* Absent objects are read as {}: their own defaults apply. */
    CHECK_EQ(cfg.log.level, 1);
    CHECK_NULL(cfg.log.file);
    CHECK_UEQ(cfg.limits.max_header_bytes, 32768);
    CHECK_EQ(cfg.limits.max_headers, 100);
    CHECK_UEQ(cfg.limits.head_timeout, 10000);
    CHECK_STREQ(cfg.state_dir, "state");
    CHECK_NULL(cfg.cert);
    CHECK_NULL(cfg.scopes);
    CHECK_UEQ(cfg.scopes_cnt, 0);
    CHECK_NULL(cfg.claims);
    CHECK_UEQ(cfg.apps_cnt, 0);
    CHECK(!cfg.maintenance);
    CHECK_EQ(cfg.retries, 3);
    CHECK_UEQ(cfg.idle, 30000);
    CHECK_UEQ(cfg.body_max, 1048576);
    ptc_config_free(&edge_schema, &cfg);
}

static void test_durations_and_sizes(void)
{
    uint64_t v = 0;
    CHECK_OK(ptc_config_parse_duration("250ms", &v));
    CHECK_UEQ(v, 250);
    CHECK_OK(ptc_config_parse_duration("30s", &v));
    CHECK_UEQ(v, 30000);
    CHECK_OK(ptc_config_parse_duration("5m", &v));
    CHECK_UEQ(v, 300000);
    CHECK_OK(ptc_config_parse_duration("1h", &v));
    CHECK_UEQ(v, 3600000);
    CHECK_OK(ptc_config_parse_duration("0s", &v));
    CHECK_UEQ(v, 0);
    const char *bad_durations[] = {"",
                                   "5",
                                   "s",
                                   "1.5s",
                                   "-1s",
                                   " 1s",
                                   "1s ",
                                   "1 s",
                                   "1S",
                                   "1d",
                                   "1sec",
                                   "9223372036854775808ms",
                                   "2562047788015216h",
                                   "99999999999999999999s"};
    for (size_t i = 0; i < sizeof(bad_durations) / sizeof(bad_durations[0]); i++) {
        if (ptc_config_parse_duration(bad_durations[i], &v) != PTC_ECONFIG) {
            ptc_test_fail(__FILE__, __LINE__, "accepted duration \"%s\"", bad_durations[i]);
        }
    }
    CHECK_OK(ptc_config_parse_duration("9223372036854775807ms", &v));
    CHECK_UEQ(v, INT64_MAX);

    CHECK_OK(ptc_config_parse_size("512B", &v));
    CHECK_UEQ(v, 512);
    CHECK_OK(ptc_config_parse_size("64KiB", &v));
    CHECK_UEQ(v, 65536);
    CHECK_OK(ptc_config_parse_size("1MiB", &v));
    CHECK_UEQ(v, 1048576);
    CHECK_OK(ptc_config_parse_size("2GiB", &v));
    CHECK_UEQ(v, 2147483648u);
    CHECK_OK(ptc_config_parse_size("3TiB", &v));
    CHECK_UEQ(v, 3 * 1099511627776ull);
    const char *bad_sizes[] = {"",   "64",  "1MB",    "1mib",       "1KB",
                               "1k", "KiB", "1.5MiB", "8388608TiB", "-1B"};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
        if (ptc_config_parse_size(bad_sizes[i], &v) != PTC_ECONFIG) {
            ptc_test_fail(__FILE__, __LINE__, "accepted size \"%s\"", bad_sizes[i]);
        }
    }
    CHECK_OK(ptc_config_parse_size("8388607TiB", &v));
    CHECK_UEQ(v, 8388607ull << 40);
}

static void test_paths_relative_to_file(void)
{
    char dir[512];
    char path[600];
    snprintf(dir, sizeof(dir), "%s/etc", ptc_test_tmpdir());
    snprintf(path, sizeof(path), "%s/edge.json", dir);
    CHECK_OK(mkdir(dir, 0700));
    write_file(path, "{" MIN_DOC ", \"cert\": \"certs/wild.pem\", \"log\": {\"file\": "
                     "\"/var/log/edge.log\"}}");
    edge_cfg_t cfg;
    char msg[256];
    CHECK_OK(ptc_config_load_file(path, &edge_schema, &cfg, msg, sizeof(msg)));
    char want[700];
    snprintf(want, sizeof(want), "%s/certs/wild.pem", dir);
    CHECK_STREQ(cfg.cert, want);
    /* Defaults are paths too. */
    snprintf(want, sizeof(want), "%s/state", dir);
    CHECK_STREQ(cfg.state_dir, want);
    CHECK_STREQ(cfg.log.file, "/var/log/edge.log");
    ptc_config_free(&edge_schema, &cfg);

    /* An explicit base directory, with or without its trailing slash. */
    const char *doc = "{" MIN_DOC ", \"cert\": \"c.pem\"}";
    CHECK_OK(ptc_config_load_buffer("x.json", doc, strlen(doc), "/srv/", &edge_schema, &cfg, msg,
                                    sizeof(msg)));
    CHECK_STREQ(cfg.cert, "/srv/c.pem");
    ptc_config_free(&edge_schema, &cfg);
    CHECK_OK(ptc_config_load_buffer("x.json", doc, strlen(doc), "/srv", &edge_schema, &cfg, msg,
                                    sizeof(msg)));
    CHECK_STREQ(cfg.cert, "/srv/c.pem");
    ptc_config_free(&edge_schema, &cfg);
}

static void test_load_json_variant(void)
{
    json_error_t jerr;
    json_t *root = json_loads("{" MIN_DOC ", \"idle\": \"2s\"}", 0, &jerr);
    CHECK_NOT_NULL(root);
    edge_cfg_t cfg;
    char msg[256];
    CHECK_OK(ptc_config_load_json("admin", root, NULL, &edge_schema, &cfg, msg, sizeof(msg)));
    CHECK_UEQ(cfg.idle, 2000);
    ptc_config_free(&edge_schema, &cfg);
    /* The document is borrowed, not consumed. */
    CHECK_EQ(root->refcount, 1);
    json_decref(root);

    root = json_array();
    CHECK_EQ(ptc_config_load_json("admin", root, NULL, &edge_schema, &cfg, msg, sizeof(msg)),
             PTC_ECONFIG);
    CHECK_STREQ(msg, "admin: expected an object, got an array");
    ptc_config_free(&edge_schema, &cfg);
    json_decref(root);
}

/* ---- refusals ---- */

static void test_refuse_the_documented_examples(void)
{
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": \"abc\"}]}",
                   "edge.json: listen[0].port: expected an integer 1..65535, got \"abc\"");
    expect_refusal("{" MIN_DOC ", \"log\": {\"level\": \"verbose\"}}",
                   "edge.json: log.level: expected one of debug, info, warn, error, got "
                   "\"verbose\"");
    expect_refusal("{" MIN_DOC ", \"limits\": {\"max_hedaers\": 10}}",
                   "edge.json: limits: unknown key \"max_hedaers\" (did you mean "
                   "\"max_headers\"?)");
    expect_refusal("{\"listen\": [{\"port\": 443}]}",
                   "edge.json: default_domain: required key is missing");
    expect_refusal("{\n  \"default_domain\": \"d\",\n  \"listen\": [,]\n}",
                   "edge.json:3:14: invalid JSON: unexpected token");
}

static void test_refuse_invalid_json(void)
{
    expect_refusal("{\"a\": 1, \"a\": 2}",
                   "edge.json:1:12: invalid JSON: duplicate object key near '\"a\"'");
    expect_refusal("", "edge.json:1:0: invalid JSON: '[' or '{' expected near end of file");
    expect_refusal("{" MIN_DOC "} x", "edge.json:1:67: invalid JSON: end of file expected");
    expect_refusal("{\"motd\": \"\\u0000\"}",
                   "edge.json:1:17: invalid JSON: \\u0000 is not allowed without JSON_ALLOW_NUL");
    expect_refusal("{\"motd\": \"\xff\"}",
                   "edge.json:1:10: invalid JSON: unable to decode byte 0xff");
    expect_refusal("{\"motd\": \"a\x01\"}", "edge.json:1:11: invalid JSON: control character 0x1");
    /* jansson quotes the token it stopped at, which may be a secret (a password in a proxy
     * URL): the message keeps the position only. */
    expect_refusal("{\"proxy\": \"http://u:hunter2\\q@h:3128\"}",
                   "edge.json:1:29: invalid JSON: invalid escape");
    expect_refusal("{\"motd\": hunter2}", "edge.json:1:15: invalid JSON: invalid token");
    expect_refusal("[1, 2]", "edge.json: expected an object, got an array");
}

static void test_refuse_wrong_types(void)
{
    expect_refusal("{" MIN_DOC ", \"motd\": 5}", "edge.json: motd: expected a string, got 5");
    expect_refusal("{\"default_domain\": \"\", \"listen\": [{\"port\": 1}]}",
                   "edge.json: default_domain: expected a non-empty string, got \"\"");
    expect_refusal("{\"default_domain\": null, \"listen\": [{\"port\": 1}]}",
                   "edge.json: default_domain: expected a non-empty string, got null");
    expect_refusal("{" MIN_DOC ", \"cert\": \"\"}",
                   "edge.json: cert: expected a non-empty path, got \"\"");
    expect_refusal("{" MIN_DOC ", \"cert\": [\"a\"]}",
                   "edge.json: cert: expected a non-empty path, got an array");
    expect_refusal("{" MIN_DOC ", \"maintenance\": \"yes\"}",
                   "edge.json: maintenance: expected true or false, got \"yes\"");
    expect_refusal("{" MIN_DOC ", \"maintenance\": 1}",
                   "edge.json: maintenance: expected true or false, got 1");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": 80.0}]}",
                   "edge.json: listen[0].port: expected an integer 1..65535, got 80.0");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": 2.5e3}]}",
                   "edge.json: listen[0].port: expected an integer 1..65535, got 2500.0");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": 0.5}]}",
                   "edge.json: listen[0].port: expected an integer 1..65535, got 0.5");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": true}]}",
                   "edge.json: listen[0].port: expected an integer 1..65535, got true");
    expect_refusal("{" MIN_DOC ", \"log\": {\"level\": 2}}",
                   "edge.json: log.level: expected one of debug, info, warn, error, got 2");
    expect_refusal("{" MIN_DOC ", \"log\": {\"level\": \"INFO\"}}",
                   "edge.json: log.level: expected one of debug, info, warn, error, got \"INFO\"");
    expect_refusal("{" MIN_DOC ", \"log\": \"info\"}",
                   "edge.json: log: expected an object, got \"info\"");
    expect_refusal("{" MIN_DOC ", \"log\": false}",
                   "edge.json: log: expected an object, got false");
}

static void test_refuse_out_of_range(void)
{
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": 70000}]}",
                   "edge.json: listen[0].port: expected an integer 1..65535, got 70000");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": 0}]}",
                   "edge.json: listen[0].port: expected an integer 1..65535, got 0");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": 443}, {\"port\": -1}]}",
                   "edge.json: listen[1].port: expected an integer 1..65535, got -1");
    expect_refusal("{" MIN_DOC ", \"retries\": -1}",
                   "edge.json: retries: expected an integer >= 0, got -1");
    expect_refusal("{" MIN_DOC ", \"limits\": {\"max_headers\": 1001}}",
                   "edge.json: limits.max_headers: expected an integer 1..1000, got 1001");
    expect_refusal("{" MIN_DOC ", \"apps\": [{\"name\": \"a\", \"backends\": [{\"url\": \"u\"}]}, "
                   "{\"name\": \"b\", \"backends\": "
                   "[{\"url\": \"u\"}, {\"url\": \"v\", \"weight\": 0}]}]}",
                   "edge.json: apps[1].backends[1].weight: expected an integer 1..100, got 0");
}

static void test_refuse_bad_durations_and_sizes(void)
{
    expect_refusal("{" MIN_DOC ", \"idle\": \"5 minutes\"}",
                   "edge.json: idle: expected a duration such as 250ms, 30s, 5m or 1h, got "
                   "\"5 minutes\"");
    expect_refusal("{" MIN_DOC ", \"idle\": -5}",
                   "edge.json: idle: expected a duration such as 250ms, 30s, 5m or 1h, got -5");
    expect_refusal("{" MIN_DOC ", \"idle\": 1.5}",
                   "edge.json: idle: expected a duration such as 250ms, 30s, 5m or 1h, got 1.5");
    expect_refusal("{" MIN_DOC ", \"idle\": \"2h\"}",
                   "edge.json: idle: expected a duration 1s..1h, got \"2h\"");
    expect_refusal("{" MIN_DOC ", \"idle\": 999}",
                   "edge.json: idle: expected a duration 1s..1h, got 999");
    expect_refusal("{" MIN_DOC ", \"limits\": {\"head_timeout\": \"10\"}}",
                   "edge.json: limits.head_timeout: expected a duration such as 250ms, 30s, 5m or "
                   "1h, got \"10\"");
    expect_refusal("{" MIN_DOC ", \"body_max\": \"1MB\"}",
                   "edge.json: body_max: expected a size such as 65536, 64KiB, 1MiB or 2GiB, got "
                   "\"1MB\"");
    expect_refusal("{" MIN_DOC ", \"body_max\": \"2GiB\"}",
                   "edge.json: body_max: expected a size 1KiB..1GiB, got \"2GiB\"");
    expect_refusal("{" MIN_DOC ", \"body_max\": 100}",
                   "edge.json: body_max: expected a size 1KiB..1GiB, got 100");
    expect_refusal("{" MIN_DOC ", \"limits\": {\"max_header_bytes\": true}}",
                   "edge.json: limits.max_header_bytes: expected a size such as 65536, 64KiB, "
                   "1MiB or 2GiB, got true");
}

static void test_refuse_bad_arrays_and_maps(void)
{
    expect_refusal("{\"default_domain\": \"d\", \"listen\": {}}",
                   "edge.json: listen: expected an array of objects, got an object");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": []}",
                   "edge.json: listen: expected an array of objects with 1..8 elements, got 0");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": 1}, {\"port\": 2}, "
                   "{\"port\": 3}, {\"port\": 4}, {\"port\": 5}, {\"port\": 6}, {\"port\": 7}, "
                   "{\"port\": 8}, {\"port\": 9}]}",
                   "edge.json: listen: expected an array of objects with 1..8 elements, got 9");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": 1}, 5]}",
                   "edge.json: listen[1]: expected an object, got 5");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{}]}",
                   "edge.json: listen[0].port: required key is missing");
    expect_refusal("{\"default_domain\": \"d\"}", "edge.json: listen: required key is missing");
    expect_refusal("{" MIN_DOC ", \"scopes\": \"openid\"}",
                   "edge.json: scopes: expected an array of strings, got \"openid\"");
    expect_refusal("{" MIN_DOC ", \"scopes\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}",
                   "edge.json: scopes: expected an array of strings with 0..4 elements, got 5");
    expect_refusal("{" MIN_DOC ", \"apps\": [{\"name\": \"a\", \"backends\": []}]}",
                   "edge.json: apps[0].backends: expected an array of objects with at least 1 "
                   "element, got 0");
    /* A minimum above 0 makes the key required. */
    expect_refusal("{" MIN_DOC ", \"apps\": [{\"name\": \"a\"}]}",
                   "edge.json: apps[0].backends: required key is missing");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": 1, \"hosts\": [\"a\", "
                   "null]}]}",
                   "edge.json: listen[0].hosts[1]: expected a non-empty string, got null");
    expect_refusal("{" MIN_DOC ", \"scopes\": [\"\"]}",
                   "edge.json: scopes[0]: expected a non-empty string, got \"\"");
    expect_refusal("{" MIN_DOC ", \"claims\": []}",
                   "edge.json: claims: expected an object of strings, got an array");
    expect_refusal("{" MIN_DOC ", \"claims\": {\"email\": \"X-Email\", \"groups\": 5}}",
                   "edge.json: claims.groups: expected a non-empty string, got 5");
    expect_refusal("{" MIN_DOC ", \"claims\": {\"\": \"X\"}}",
                   "edge.json: claims: expected non-empty keys, got \"\"");
    expect_refusal("{" MIN_DOC ", \"apps\": [{\"name\": \"a\", \"sso_headers\": {\"sub\": {}}}]}",
                   "edge.json: apps[0].sso_headers.sub: expected a non-empty string, got an "
                   "object");
}

static void test_refuse_unknown_keys(void)
{
    expect_refusal("{" MIN_DOC ", \"zzz\": 1}", "edge.json: unknown key \"zzz\"");
    expect_refusal("{" MIN_DOC ", \"defualt_domain\": \"x\"}",
                   "edge.json: unknown key \"defualt_domain\" (did you mean \"default_domain\"?)");
    expect_refusal("{\"default_domain\": \"d\", \"listen\": [{\"port\": 1, \"prot\": 2}]}",
                   "edge.json: listen[0]: unknown key \"prot\" (did you mean \"port\"?)");
    expect_refusal("{" MIN_DOC ", \"apps\": [{\"name\": \"a\", \"backends\": [{\"url\": \"u\", "
                   "\"wieght\": 5}]}]}",
                   "edge.json: apps[0].backends[0]: unknown key \"wieght\" (did you mean "
                   "\"weight\"?)");
    /* A typo of a required key is reported as the typo, not as the missing key. */
    expect_refusal("{\"default_domian\": \"d\", \"listen\": [{\"port\": 1}]}",
                   "edge.json: unknown key \"default_domian\" (did you mean \"default_domain\"?)");
    /* Too far from every key: no hint. */
    expect_refusal("{" MIN_DOC ", \"ab\": 1}", "edge.json: unknown key \"ab\"");
}

static void test_quoted_strings_are_escaped_and_cut(void)
{
    expect_refusal("{" MIN_DOC ", \"a\\nb\\\"c\\u0007\": 1}",
                   "edge.json: unknown key \"a\\nb\\\"c\\u0007\"");
    expect_refusal("{" MIN_DOC ", \"idle\": \"\\u001b[31mred\"}",
                   "edge.json: idle: expected a duration such as 250ms, 30s, 5m or 1h, got "
                   "\"\\u001b[31mred\"");
    /* A 100-byte value is cut to 64 bytes and marked. */
    char doc[512];
    char want[512];
    char hundred[101];
    memset(hundred, 'x', 100);
    hundred[100] = '\0';
    snprintf(doc, sizeof(doc), "{" MIN_DOC ", \"motd\": [], \"log\": {\"level\": \"%s\"}}",
             hundred);
    expect_refusal(doc, "edge.json: motd: expected a string, got an array");
    snprintf(doc, sizeof(doc), "{" MIN_DOC ", \"log\": {\"level\": \"%s\"}}", hundred);
    snprintf(want, sizeof(want),
             "edge.json: log.level: expected one of debug, info, warn, error, got \"%.64s\xe2\x80"
             "\xa6\"",
             hundred);
    expect_refusal(doc, want);
    /* Map keys in the key path are escaped too. */
    expect_refusal("{" MIN_DOC ", \"claims\": {\"e\\tmail\": 1}}",
                   "edge.json: claims.e\\tmail: expected a non-empty string, got 1");
}

static void test_error_buffer_is_cut_to_fit(void)
{
    edge_cfg_t cfg;
    char msg[16];
    memset(msg, '#', sizeof(msg));
    CHECK_EQ(load("{\"listen\": [{\"port\": 443}]}", &cfg, msg, sizeof(msg)), PTC_ECONFIG);
    CHECK_STREQ(msg, "edge.json: defa");
    ptc_config_free(&edge_schema, &cfg);
    /* No buffer at all is allowed. */
    CHECK_EQ(load("{\"listen\": [{\"port\": 443}]}", &cfg, NULL, 0), PTC_ECONFIG);
    ptc_config_free(&edge_schema, &cfg);
}

static void test_file_errors(void)
{
    edge_cfg_t cfg;
    char msg[512];
    char path[512];
    char want[700];

    snprintf(path, sizeof(path), "%s/missing.json", ptc_test_tmpdir());
    CHECK_EQ(ptc_config_load_file(path, &edge_schema, &cfg, msg, sizeof(msg)), UV_ENOENT);
    snprintf(want, sizeof(want), "%s: cannot read: no such file or directory", path);
    CHECK_STREQ(msg, want);
    ptc_config_free(&edge_schema, &cfg);

    CHECK_EQ(ptc_config_load_file(ptc_test_tmpdir(), &edge_schema, &cfg, msg, sizeof(msg)),
             UV_EISDIR);
    snprintf(want, sizeof(want), "%s: cannot read: illegal operation on a directory",
             ptc_test_tmpdir());
    CHECK_STREQ(msg, want);

    if (geteuid() != 0) {
        snprintf(path, sizeof(path), "%s/secret.json", ptc_test_tmpdir());
        write_file(path, "{}");
        CHECK_OK(chmod(path, 0));
        CHECK_EQ(ptc_config_load_file(path, &edge_schema, &cfg, msg, sizeof(msg)), UV_EACCES);
        snprintf(want, sizeof(want), "%s: cannot read: permission denied", path);
        CHECK_STREQ(msg, want);
    }

    /* Over 1 MiB: refused without parsing, whatever the content. */
    snprintf(path, sizeof(path), "%s/big.json", ptc_test_tmpdir());
    FILE *f = fopen(path, "wb");
    CHECK_NOT_NULL(f);
    fputs("{\"motd\": \"", f);
    for (int i = 0; i < PTC_CONFIG_MAX_BYTES; i++) {
        fputc('a', f);
    }
    fputs("\"}", f);
    CHECK_OK(fclose(f));
    CHECK_EQ(ptc_config_load_file(path, &edge_schema, &cfg, msg, sizeof(msg)), PTC_ECONFIG);
    snprintf(want, sizeof(want), "%s: document is larger than 1 MiB", path);
    CHECK_STREQ(msg, want);
    ptc_config_free(&edge_schema, &cfg);

    /* Exactly 1 MiB is allowed. */
    f = fopen(path, "wb");
    CHECK_NOT_NULL(f);
    const char *head = "{" MIN_DOC ", \"motd\": \"";
    fputs(head, f);
    for (size_t i = strlen(head) + 2; i < PTC_CONFIG_MAX_BYTES; i++) {
        fputc('a', f);
    }
    fputs("\"}", f);
    CHECK_OK(fclose(f));
    CHECK_OK(ptc_config_load_file(path, &edge_schema, &cfg, msg, sizeof(msg)));
    CHECK_EQ(strlen(cfg.motd), PTC_CONFIG_MAX_BYTES - strlen(head) - 2);
    ptc_config_free(&edge_schema, &cfg);

    /* Messages from a file name the file by the path given. */
    snprintf(path, sizeof(path), "%s/bad.json", ptc_test_tmpdir());
    write_file(path, "{\"listen\": [{\"port\": 443}]}");
    CHECK_EQ(ptc_config_load_file(path, &edge_schema, &cfg, msg, sizeof(msg)), PTC_ECONFIG);
    snprintf(want, sizeof(want), "%s: default_domain: required key is missing", path);
    CHECK_STREQ(msg, want);
    ptc_config_free(&edge_schema, &cfg);
}

/* A refusal deep in the document leaves earlier strings and arrays allocated: the struct
 * shows them, and ptc_config_free() releases them (LeakSanitizer checks at exit). */
static void test_free_after_partial_failure(void)
{
    const char *doc = "{\"default_domain\": \"d\", \"motd\": \"hi\", \"listen\": ["
                      "{\"port\": 1, \"hosts\": [\"a\", \"b\"]},"
                      "{\"port\": 2, \"hosts\": [\"c\"]},"
                      "{\"port\": 3, \"hosts\": [\"d\", 7]}],"
                      "\"claims\": {\"email\": \"X-Email\"}}";
    edge_cfg_t cfg;
    char msg[256];
    CHECK_EQ(load(doc, &cfg, msg, sizeof(msg)), PTC_ECONFIG);
    CHECK_STREQ(msg, "edge.json: listen[2].hosts[1]: expected a non-empty string, got 7");
    CHECK_STREQ(cfg.default_domain, "d");
    CHECK_UEQ(cfg.listen_cnt, 3);
    CHECK_STREQ(cfg.listen[0].hosts[1], "b");
    CHECK_STREQ(cfg.listen[2].hosts[0], "d");
    CHECK_NULL(cfg.listen[2].hosts[1]);
    ptc_config_free(&edge_schema, &cfg);
    CHECK_NULL(cfg.listen);
    CHECK_NULL(cfg.default_domain);

    /* A failure in a map after some entries were copied. */
    doc = "{" MIN_DOC ", \"apps\": [{\"name\": \"a\", \"sso_headers\": {\"x\": \"X\", \"y\": "
          "\"Y\", \"z\": false}}]}";
    CHECK_EQ(load(doc, &cfg, msg, sizeof(msg)), PTC_ECONFIG);
    CHECK_STREQ(msg, "edge.json: apps[0].sso_headers.z: expected a non-empty string, got false");
    CHECK_STREQ(cfg.apps[0].sso_headers[1].value, "Y");
    CHECK_NULL(cfg.apps[0].sso_headers[2].key);
    ptc_config_free(&edge_schema, &cfg);

    /* Free on a zeroed struct is a no-op. */
    memset(&cfg, 0, sizeof(cfg));
    ptc_config_free(&edge_schema, &cfg);
}

/* An absent optional object is read as {}: its required keys are reported. */
typedef struct tls_cfg {
    char *cert;
} tls_cfg_t;
typedef struct outer_cfg {
    tls_cfg_t tls;
} outer_cfg_t;
static const ptc_config_field_t tls_fields[] = {
    {.key = "cert", .type = PTC_CONFIG_PATH, .offset = offsetof(tls_cfg_t, cert), .required = true},
};
static const ptc_config_schema_t tls_schema = PTC_CONFIG_SCHEMA(tls_cfg_t, tls_fields);
static const ptc_config_field_t outer_fields[] = {
    {.key = "tls",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(outer_cfg_t, tls),
     .schema = &tls_schema},
};
static const ptc_config_schema_t outer_schema = PTC_CONFIG_SCHEMA(outer_cfg_t, outer_fields);

static void test_absent_object_with_required_key(void)
{
    outer_cfg_t cfg;
    char msg[256];
    CHECK_EQ(ptc_config_load_buffer("c.json", "{}", 2, NULL, &outer_schema, &cfg, msg, sizeof(msg)),
             PTC_ECONFIG);
    CHECK_STREQ(msg, "c.json: tls.cert: required key is missing");
    ptc_config_free(&outer_schema, &cfg);
    CHECK_OK(ptc_config_load_buffer("c.json", "{\"tls\": {\"cert\": \"/c.pem\"}}", 27, NULL,
                                    &outer_schema, &cfg, msg, sizeof(msg)));
    CHECK_STREQ(cfg.tls.cert, "/c.pem");
    ptc_config_free(&outer_schema, &cfg);
    CHECK_NULL(cfg.tls.cert);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_every_type_loads),
    PTC_TEST(test_defaults_applied),
    PTC_TEST(test_durations_and_sizes),
    PTC_TEST(test_paths_relative_to_file),
    PTC_TEST(test_load_json_variant),
    PTC_TEST(test_refuse_the_documented_examples),
    PTC_TEST(test_refuse_invalid_json),
    PTC_TEST(test_refuse_wrong_types),
    PTC_TEST(test_refuse_out_of_range),
    PTC_TEST(test_refuse_bad_durations_and_sizes),
    PTC_TEST(test_refuse_bad_arrays_and_maps),
    PTC_TEST(test_refuse_unknown_keys),
    PTC_TEST(test_quoted_strings_are_escaped_and_cut),
    PTC_TEST(test_error_buffer_is_cut_to_fit),
    PTC_TEST(test_file_errors),
    PTC_TEST(test_free_after_partial_failure),
    PTC_TEST(test_absent_object_with_required_key),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
