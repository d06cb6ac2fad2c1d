/* SPDX-License-Identifier: MIT */
/*
 * connector/connector_config: connector.json defaults, relative paths, the status file next
 * to the credentials, and one key-path message per kind of refusal (including a proxy URL
 * whose password must never appear in the message). The backend TLS configuration made from
 * backend_ca_file is checked with handshakes against in-memory servers (certificates from
 * tests/support/certgen), and its refusals of unusable files by their messages.
 */
#include "connector/connector_config.h"
#include "common/log.h"
#include "common/tls.h"
#include "tests/support/certgen.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
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
    CHECK_NULL(cfg.backend_ca_file);
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

/* ---- backend_ca_file ---- */

static void test_backend_ca_file_key(void)
{
    ptc_connector_config_t cfg;
    char err[512];
    CHECK_OK(load("{\"backend_ca_file\": \"certs/backend-ca.pem\"}", &cfg, err, sizeof(err)));
    CHECK_STREQ(cfg.backend_ca_file, "/etc/portico/certs/backend-ca.pem");
    ptc_connector_config_free(&cfg);
    /* Loading names the file but does not read it: `status` and `register` work for a user
     * who cannot read it, and `run` reports it at start. */
    CHECK_OK(load("{\"backend_ca_file\": \"/nonexistent/ca.pem\"}", &cfg, err, sizeof(err)));
    CHECK_STREQ(cfg.backend_ca_file, "/nonexistent/ca.pem");
    ptc_connector_config_free(&cfg);
    expect_refusal("{\"backend_ca_file\": \"\"}",
                   "connector.json: backend_ca_file: expected a non-empty path, got \"\"");
    expect_refusal("{\"backend_ca_file\": [\"a.pem\"]}",
                   "connector.json: backend_ca_file: expected a non-empty path, got an array");
    expect_refusal("{\"backend_ca_fle\": \"ca.pem\"}",
                   "connector.json: unknown key \"backend_ca_fle\" (did you mean "
                   "\"backend_ca_file\"?)");
}

/* Moves every queued ciphertext byte from one side to the other; returns how many. */
static size_t move(ptc_tls_t *from, ptc_tls_t *to)
{
    ptc_chunkq_t *q = ptc_tls_output(from);
    size_t total = 0;
    while (q->queued > 0) {
        ptc_slice_t sl[8];
        size_t n = ptc_chunkq_peek(q, sl, 8);
        for (size_t i = 0; i < n; i++) {
            ptc_buf_append(ptc_tls_input(to), sl[i].ptr, sl[i].len);
            ptc_chunkq_consume(q, sl[i].len);
            total += sl[i].len;
        }
    }
    return total;
}

/* The client's verdict on a server that presents `leaf`, when connecting to `name`: 0 for an
 * accepted certificate, else the client's handshake error. */
static int verdict(ptc_tls_config_t *ccfg, const ptc_certgen_cert_t *leaf, const char *name)
{
    ptc_tls_certs_t *certs = ptc_tls_certs_new();
    ptc_tls_err_t terr;
    CHECK_OK(ptc_tls_certs_add_pem(certs, leaf->cert_pem, strlen(leaf->cert_pem), leaf->key_pem,
                                   strlen(leaf->key_pem), true, &terr));
    ptc_tls_server_opts_t so = {.certs = certs};
    ptc_tls_config_t *scfg = NULL;
    CHECK_OK(ptc_tls_server_config_new(&so, &scfg, &terr));
    ptc_tls_certs_unref(certs);
    ptc_tls_t *c = NULL;
    ptc_tls_t *srv = NULL;
    CHECK_OK(ptc_tls_new(ccfg, name, &c));
    CHECK_OK(ptc_tls_new(scfg, NULL, &srv));
    int rc_c = PTC_EINCOMPLETE;
    int rc_s = PTC_EINCOMPLETE;
    for (int i = 0; i < 32 && (rc_c == PTC_EINCOMPLETE || rc_s == PTC_EINCOMPLETE); i++) {
        if (rc_c == PTC_EINCOMPLETE) {
            rc_c = ptc_tls_handshake(c);
        }
        size_t moved = move(c, srv);
        if (rc_s == PTC_EINCOMPLETE) {
            rc_s = ptc_tls_handshake(srv);
        }
        moved += move(srv, c);
        if (moved == 0) {
            break;
        }
    }
    CHECK(rc_c != PTC_EINCOMPLETE);
    ptc_tls_free(c);
    ptc_tls_free(srv);
    ptc_tls_config_unref(scfg);
    return rc_c;
}

static void test_backend_tls_trusts_the_bundle(void)
{
    const char *dir = ptc_test_tmpdir();
    ptc_certgen_cert_t ca;
    ptc_certgen_cert_t other_ca;
    ptc_certgen_cert_t app;
    ptc_certgen_cert_t wrong_name;
    ptc_certgen_cert_t rogue;
    ptc_certgen_ca(dir, "backend-ca", &ca);
    ptc_certgen_ca(NULL, "Other CA", &other_ca);
    static const char *const app_sans[] = {"DNS:app.corp.test", "IP:10.1.2.3", NULL};
    static const char *const other_sans[] = {"DNS:other.corp.test", NULL};
    ptc_certgen_opts_t o = {.sans = app_sans};
    ptc_certgen_leaf(&ca, NULL, "app", &o, &app);
    ptc_certgen_leaf(&other_ca, NULL, "rogue", &o, &rogue);
    o.sans = other_sans;
    ptc_certgen_leaf(&ca, NULL, "other", &o, &wrong_name);

    char text[1200];
    snprintf(text, sizeof(text), "{\"backend_ca_file\": \"%s\"}", ca.cert_path);
    ptc_connector_config_t cfg;
    char err[512];
    CHECK_OK(load(text, &cfg, err, sizeof(err)));
    CHECK_STREQ(cfg.backend_ca_file, ca.cert_path);
    ptc_tls_config_t *tls = NULL;
    CHECK_OK(ptc_connector_config_backend_tls(&cfg, &tls, err, sizeof(err)));
    CHECK_NOT_NULL(tls);
    CHECK(!ptc_tls_config_is_server(tls));
    /* A certificate from the bundle's CA for the name is accepted (a name or an address);
     * one for another name, or from another CA, is not. */
    CHECK_OK(verdict(tls, &app, "app.corp.test"));
    CHECK_OK(verdict(tls, &app, "10.1.2.3"));
    CHECK_EQ(verdict(tls, &wrong_name, "app.corp.test"), PTC_ECERTNAME);
    CHECK_EQ(verdict(tls, &rogue, "app.corp.test"), PTC_ECERT);
    ptc_tls_config_unref(tls);
    ptc_connector_config_free(&cfg);

    /* Without the key the system bundle is used, which knows nothing of the test CA. */
    if (access(PTC_TLS_SYSTEM_CA_FILE, R_OK) == 0) {
        CHECK_OK(load("{}", &cfg, err, sizeof(err)));
        CHECK_OK(ptc_connector_config_backend_tls(&cfg, &tls, err, sizeof(err)));
        CHECK_EQ(verdict(tls, &app, "app.corp.test"), PTC_ECERT);
        ptc_tls_config_unref(tls);
        ptc_connector_config_free(&cfg);
    } else {
        ptc_test_diag("no %s: the system bundle case is skipped", PTC_TLS_SYSTEM_CA_FILE);
    }
    ptc_certgen_dispose(&wrong_name);
    ptc_certgen_dispose(&rogue);
    ptc_certgen_dispose(&app);
    ptc_certgen_dispose(&other_ca);
    ptc_certgen_dispose(&ca);
}

/* Makes the backend TLS configuration for `path`, expects error `want`, returns the message. */
static void expect_backend_tls_error(const char *path, int want, char *err, size_t errlen)
{
    char text[1200];
    snprintf(text, sizeof(text), "{\"backend_ca_file\": \"%s\"}", path);
    ptc_connector_config_t cfg;
    CHECK_OK(load(text, &cfg, err, errlen));
    ptc_tls_config_t *tls = NULL;
    int rc = ptc_connector_config_backend_tls(&cfg, &tls, err, errlen);
    ptc_connector_config_free(&cfg);
    CHECK_NULL(tls);
    if (rc != want) {
        ptc_test_fail(__FILE__, __LINE__, "%s: got %s (%s), want %s", path, ptc_errname(rc), err,
                      ptc_errname(want));
    }
}

static void test_backend_tls_bad_files(void)
{
    const char *dir = ptc_test_tmpdir();
    char path[1024];
    char want[2048];
    char err[2048];

    snprintf(path, sizeof(path), "%s/absent.pem", dir);
    expect_backend_tls_error(path, UV_ENOENT, err, sizeof(err));
    snprintf(want, sizeof(want), "backend_ca_file: cannot open %s: No such file or directory",
             path);
    CHECK_STREQ(err, want);

    /* Not PEM at all. */
    static const char garbage[] = "this is not a certificate\n";
    ptc_certgen_write_file(dir, "garbage.pem", garbage, sizeof(garbage) - 1, path, sizeof(path));
    expect_backend_tls_error(path, PTC_EFORMAT, err, sizeof(err));
    snprintf(want, sizeof(want), "backend_ca_file: cannot use %s: ", path);
    CHECK(strncmp(err, want, strlen(want)) == 0);

    /* PEM, but a private key and no certificate. */
    ptc_certgen_cert_t ca;
    ptc_certgen_ca(NULL, "Key Only", &ca);
    ptc_certgen_write_file(dir, "key.pem", ca.key_pem, strlen(ca.key_pem), path, sizeof(path));
    expect_backend_tls_error(path, PTC_EFORMAT, err, sizeof(err));
    CHECK(strncmp(err, "backend_ca_file: ", 17) == 0);
    CHECK_CONTAINS(err, path);
    ptc_certgen_dispose(&ca);

    /* An empty file. */
    ptc_certgen_write_file(dir, "empty.pem", "", 0, path, sizeof(path));
    expect_backend_tls_error(path, PTC_EFORMAT, err, sizeof(err));
    CHECK(strncmp(err, "backend_ca_file: ", 17) == 0);
    CHECK_CONTAINS(err, path);

    /* A directory. */
    snprintf(path, sizeof(path), "%s/cadir", dir);
    CHECK_OK(mkdir(path, 0700));
    expect_backend_tls_error(path, UV_EISDIR, err, sizeof(err));
    CHECK(strncmp(err, "backend_ca_file: ", 17) == 0);
    CHECK_CONTAINS(err, path);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_defaults),
    PTC_TEST(test_full_document),
    PTC_TEST(test_status_file_follows_credentials),
    PTC_TEST(test_refusals),
    PTC_TEST(test_proxy_refusal_hides_password),
    PTC_TEST(test_load_file),
    PTC_TEST(test_backend_ca_file_key),
    PTC_TEST(test_backend_tls_trusts_the_bundle),
    PTC_TEST(test_backend_tls_bad_files),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
