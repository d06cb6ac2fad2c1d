/* SPDX-License-Identifier: MIT */
/*
 * connector/connector_config: connector.json defaults, relative paths, the status file next
 * to the credentials, and one key-path message per kind of refusal (including a proxy URL
 * whose password must never appear in the message).
 */
#include "connector/connector_config.h"
#include "common/log.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <string.h>
#include <uv.h>

static int load(const char *text, ptc_connector_config_t *cfg, char *err, size_t errlen)
{
    return ptc_connector_config_load_buffer("connector.json", text, strlen(text), "/etc/portico",
                                            cfg, err, errlen);
}

/* Loads text, expects a refusal, and checks the whole message. */
static void expect_refusal(const char *text, const char *message)
{
    ptc_connector_config_t cfg;
    char err[512];
    int rc = load(text, &cfg, err, sizeof(err));
    ptc_connector_config_free(&cfg);
    if (rc != PTC_ECONFIG || strcmp(err, message) != 0) {
        ptc_test_fail(__FILE__, __LINE__, "%s\n  rc %d\n  got  \"%s\"\n  want \"%s\"", text, rc,
                      err, message);
    }
}

static void test_defaults(void)
{
    ptc_connector_config_t cfg;
    char err[512];
    CHECK_OK(load("{}", &cfg, err, sizeof(err)));
    CHECK_STREQ(cfg.credentials, "/var/lib/portico-connector/credentials.json");
    CHECK_EQ(cfg.edges_cnt, 0);
    CHECK_NULL(cfg.ca_file);
    CHECK_EQ(cfg.tunnels_per_edge, 2);
    CHECK_NULL(cfg.proxy);
    CHECK_UEQ(cfg.drain_timeout_ms, 30000);
    CHECK_UEQ(cfg.backend_timeout_ms, 85000);
    CHECK_EQ(cfg.log.level, PTC_LOG_INFO);
    CHECK_NULL(cfg.log.file);
    CHECK_STREQ(cfg.status_file, "/var/lib/portico-connector/status.json");
    ptc_connector_config_free(&cfg);
    /* Free is safe twice. */
    ptc_connector_config_free(&cfg);
}

static void test_full_document(void)
{
    const char *text = "{\"credentials\": \"state/creds.json\","
                       " \"edges\": [\"edge1.example.com:443\", \"[2001:db8::1]:8443\"],"
                       " \"ca_file\": \"ca.pem\", \"tunnels_per_edge\": 4,"
                       " \"proxy\": \"http://user:secret@proxy.corp:3128\","
                       " \"drain_timeout\": \"5s\", \"backend_timeout\": \"3m\","
                       " \"log\": {\"level\": \"debug\", \"file\": \"/var/log/pc.log\"},"
                       " \"status_file\": \"/run/portico-connector/status.json\"}";
    ptc_connector_config_t cfg;
    char err[512];
    CHECK_OK(load(text, &cfg, err, sizeof(err)));
    CHECK_STREQ(cfg.credentials, "/etc/portico/state/creds.json");
    CHECK_EQ(cfg.edges_cnt, 2);
    CHECK_STREQ(cfg.edges[0], "edge1.example.com:443");
    CHECK_STREQ(cfg.edges[1], "[2001:db8::1]:8443");
    CHECK_STREQ(cfg.ca_file, "/etc/portico/ca.pem");
    CHECK_EQ(cfg.tunnels_per_edge, 4);
    CHECK_STREQ(cfg.proxy, "http://user:secret@proxy.corp:3128");
    CHECK_UEQ(cfg.drain_timeout_ms, 5000);
    CHECK_UEQ(cfg.backend_timeout_ms, 180000);
    CHECK_EQ(cfg.log.level, PTC_LOG_DEBUG);
    CHECK_STREQ(cfg.log.file, "/var/log/pc.log");
    CHECK_STREQ(cfg.status_file, "/run/portico-connector/status.json");
    ptc_connector_config_free(&cfg);
}

static void test_status_file_follows_credentials(void)
{
    ptc_connector_config_t cfg;
    char err[512];
    CHECK_OK(load("{\"credentials\": \"/srv/pc/id.json\"}", &cfg, err, sizeof(err)));
    CHECK_STREQ(cfg.status_file, "/srv/pc/status.json");
    ptc_connector_config_free(&cfg);
    CHECK_OK(load("{\"credentials\": \"/id.json\"}", &cfg, err, sizeof(err)));
    CHECK_STREQ(cfg.status_file, "/status.json");
    ptc_connector_config_free(&cfg);
    /* Without a base directory a relative credential path stays relative, and so does the
     * status file next to it. */
    const char *text = "{\"credentials\": \"id.json\"}";
    CHECK_OK(ptc_connector_config_load_buffer("c.json", text, strlen(text), NULL, &cfg, err,
                                              sizeof(err)));
    CHECK_STREQ(cfg.status_file, "status.json");
    ptc_connector_config_free(&cfg);
}

static void test_refusals(void)
{
    expect_refusal("{\"tunnels_per_edge\": 0}",
                   "connector.json: tunnels_per_edge: expected an integer 1..16, got 0");
    expect_refusal("{\"edges\": [\"edge.example.com\"]}",
                   "connector.json: edges[0]: expected \"host:port\" with a port 1..65535, got "
                   "\"edge.example.com\"");
    expect_refusal("{\"edges\": [\"a:443\", \"b:0\"]}",
                   "connector.json: edges[1]: expected \"host:port\" with a port 1..65535, got "
                   "\"b:0\"");
    expect_refusal("{\"drain_timeout\": \"soon\"}",
                   "connector.json: drain_timeout: expected a duration such as 250ms, 30s, 5m or "
                   "1h, got \"soon\"");
    expect_refusal("{\"log\": {\"level\": \"verbose\"}}",
                   "connector.json: log.level: expected one of debug, info, warn, error, got "
                   "\"verbose\"");
    expect_refusal("{\"tunnels_per_egde\": 2}",
                   "connector.json: unknown key \"tunnels_per_egde\" (did you mean "
                   "\"tunnels_per_edge\"?)");
    expect_refusal("{\"proxy\": \"\"}", "connector.json: proxy: expected a non-empty string, got "
                                        "\"\"");
}

static void test_proxy_refusal_hides_password(void)
{
    ptc_connector_config_t cfg;
    char err[512];
    CHECK_EQ(load("{\"proxy\": \"https://bob:hunter2@proxy.corp:3128\"}", &cfg, err, sizeof(err)),
             PTC_ECONFIG);
    CHECK_CONTAINS(err, "connector.json: proxy: ");
    CHECK_CONTAINS(err, "only http proxies");
    CHECK(strstr(err, "hunter2") == NULL);
    ptc_connector_config_free(&cfg);
    CHECK_EQ(
        load("{\"proxy\": \"http://bob:hunter2@proxy.corp:3128/path\"}", &cfg, err, sizeof(err)),
        PTC_ECONFIG);
    CHECK_CONTAINS(err, "no path");
    CHECK(strstr(err, "hunter2") == NULL);
    ptc_connector_config_free(&cfg);
    CHECK_EQ(load("{\"proxy\": \"http://bob:hunter2@:3128\"}", &cfg, err, sizeof(err)),
             PTC_ECONFIG);
    CHECK(strstr(err, "hunter2") == NULL);
    ptc_connector_config_free(&cfg);
}

static void test_load_file(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/connector.json", ptc_test_tmpdir());
    FILE *f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    fputs("{\"credentials\": \"creds.json\", \"tunnels_per_edge\": 3}\n", f);
    CHECK_OK(fclose(f));
    ptc_connector_config_t cfg;
    char err[512];
    CHECK_OK(ptc_connector_config_load_default(path, &cfg, err, sizeof(err)));
    char want[1100];
    snprintf(want, sizeof(want), "%s/creds.json", ptc_test_tmpdir());
    CHECK_STREQ(cfg.credentials, want);
    snprintf(want, sizeof(want), "%s/status.json", ptc_test_tmpdir());
    CHECK_STREQ(cfg.status_file, want);
    CHECK_EQ(cfg.tunnels_per_edge, 3);
    ptc_connector_config_free(&cfg);
    /* A file named on the command line must exist. */
    snprintf(path, sizeof(path), "%s/absent.json", ptc_test_tmpdir());
    CHECK_EQ(ptc_connector_config_load_default(path, &cfg, err, sizeof(err)), UV_ENOENT);
    CHECK_CONTAINS(err, "absent.json");
    ptc_connector_config_free(&cfg);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_defaults),
    PTC_TEST(test_full_document),
    PTC_TEST(test_status_file_follows_credentials),
    PTC_TEST(test_refusals),
    PTC_TEST(test_proxy_refusal_hides_password),
    PTC_TEST(test_load_file),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
