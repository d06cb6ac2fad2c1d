/* SPDX-License-Identifier: MIT */
/*
 * connector.json loading (see connector_config.h): the schema tables for common/config, then
 * the checks that need more than a type (edge addresses, the proxy URL) and the one default
 * that depends on another key (the status file lives next to the credentials). The checks
 * run in document order of the keys they name, so the first problem of a file is reported.
 */
#include "connector/connector_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/config.h"
#include "common/log.h"
#include "common/net.h"
#include "common/tls.h"
#include "connector/proxy_connect.h"

/* ---- schema ---- */

static const ptc_config_field_t log_fields[] = {
    {.key = "level",
     .type = PTC_CONFIG_ENUM,
     .offset = offsetof(ptc_connector_log_cfg_t, level),
     .enum_names = ptc_log_level_names,
     .def_int = PTC_LOG_INFO},
    {.key = "file", .type = PTC_CONFIG_PATH, .offset = offsetof(ptc_connector_log_cfg_t, file)},
};
static const ptc_config_schema_t log_schema =
    PTC_CONFIG_SCHEMA(ptc_connector_log_cfg_t, log_fields);

static const ptc_config_field_t connector_fields[] = {
    {.key = "credentials",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(ptc_connector_config_t, credentials),
     .def_str = PTC_CONNECTOR_DEFAULT_CREDENTIALS},
    {.key = "edges",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(ptc_connector_config_t, edges),
     .count_offset = offsetof(ptc_connector_config_t, edges_cnt),
     .min = 0,
     .max = PTC_CONNECTOR_MAX_EDGES},
    {.key = "ca_file",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(ptc_connector_config_t, ca_file)},
    {.key = "tunnels_per_edge",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(ptc_connector_config_t, tunnels_per_edge),
     .def_int = 2,
     .min = 1,
     .max = PTC_CONNECTOR_MAX_TUNNELS_PER_EDGE},
    {.key = "proxy", .type = PTC_CONFIG_NESTR, .offset = offsetof(ptc_connector_config_t, proxy)},
    {.key = "drain_timeout",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(ptc_connector_config_t, drain_timeout_ms),
     .def_int = 30000,
     .min = 0,
     .max = 3600000},
    {.key = "backend_timeout",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(ptc_connector_config_t, backend_timeout_ms),
     .def_int = 85000,
     .min = 1000,
     .max = 3600000},
    {.key = "backend_ca_file",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(ptc_connector_config_t, backend_ca_file)},
    {.key = "log",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(ptc_connector_config_t, log),
     .schema = &log_schema},
    {.key = "status_file",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(ptc_connector_config_t, status_file)},
};
static const ptc_config_schema_t connector_schema =
    PTC_CONFIG_SCHEMA(ptc_connector_config_t, connector_fields);

/* ---- checks across keys ---- */

static int check(const char *name, ptc_connector_config_t *cfg, char *err, size_t errlen)
{
    char q[256];
    for (size_t i = 0; i < cfg->edges_cnt; i++) {
        ptc_net_hostport_t hp;
        if (ptc_net_parse_hostport(cfg->edges[i], &hp) != 0 || hp.host[0] == '\0' || hp.port == 0) {
            return ptc_config_fail(
                err, errlen, name,
                "edges[%zu]: expected \"host:port\" with a port 1..65535, got %s", i,
                ptc_config_quote(cfg->edges[i], q, sizeof(q)));
        }
    }
    if (cfg->proxy != NULL) {
        ptc_proxy_t p;
        char why[256];
        if (ptc_proxy_parse(cfg->proxy, &p, why, sizeof(why)) != 0) {
            /* The value may hold a password: the message never quotes it. */
            return ptc_config_fail(err, errlen, name, "proxy: %s", why);
        }
        ptc_proxy_dispose(&p);
    }
    if (cfg->status_file == NULL) {
        const char *slash = strrchr(cfg->credentials, '/');
        size_t dir_len = slash == NULL ? 0 : (size_t)(slash - cfg->credentials);
        size_t cap = dir_len + sizeof("/status.json");
        cfg->status_file = ptc_xmalloc(cap);
        if (slash == NULL) {
            snprintf(cfg->status_file, cap, "status.json");
        } else if (dir_len == 0) {
            snprintf(cfg->status_file, cap, "/status.json");
        } else {
            snprintf(cfg->status_file, cap, "%.*s/status.json", (int)dir_len, cfg->credentials);
        }
    }
    return 0;
}

/* ---- API ---- */

int ptc_connector_config_load(const char *path, ptc_connector_config_t *out, char *err,
                              size_t errlen)
{
    int rc = ptc_config_load_file(path, &connector_schema, out, err, errlen);
    if (rc != 0) {
        return rc;
    }
    return check(path, out, err, errlen);
}

int ptc_connector_config_load_buffer(const char *name, const void *data, size_t len,
                                     const char *base_dir, ptc_connector_config_t *out, char *err,
                                     size_t errlen)
{
    int rc = ptc_config_load_buffer(name, data, len, base_dir, &connector_schema, out, err, errlen);
    if (rc != 0) {
        return rc;
    }
    return check(name, out, err, errlen);
}

int ptc_connector_config_load_default(const char *path, ptc_connector_config_t *out, char *err,
                                      size_t errlen)
{
    if (path != NULL) {
        return ptc_connector_config_load(path, out, err, errlen);
    }
    struct stat st;
    if (stat(PTC_CONNECTOR_DEFAULT_CONFIG, &st) == 0 || errno != ENOENT) {
        return ptc_connector_config_load(PTC_CONNECTOR_DEFAULT_CONFIG, out, err, errlen);
    }
    return ptc_connector_config_load_buffer("(defaults)", "{}", 2, NULL, out, err, errlen);
}

int ptc_connector_config_backend_tls(const ptc_connector_config_t *cfg, ptc_tls_config_t **out,
                                     char *err, size_t errlen)
{
    static const char *const alpn[] = {"http/1.1", NULL};
    ptc_tls_client_opts_t o = {
        .ca_file = cfg->backend_ca_file,
        .alpn = alpn,
    };
    ptc_tls_err_t terr;
    memset(&terr, 0, sizeof(terr));
    int rc = ptc_tls_client_config_new(&o, out, &terr);
    if (rc == 0) {
        return 0;
    }
    const char *key = cfg->backend_ca_file != NULL ? "backend_ca_file" : "system CA bundle";
    const char *file = cfg->backend_ca_file != NULL ? cfg->backend_ca_file : PTC_TLS_SYSTEM_CA_FILE;
    const char *reason = terr.reason[0] != '\0' ? terr.reason : ptc_strerror(rc);
    /* File errors already name the file ("cannot open <file>: ..."); parse errors do not. */
    if (strstr(reason, file) != NULL) {
        snprintf(err, errlen, "%s: %s", key, reason);
    } else {
        snprintf(err, errlen, "%s: cannot use %s: %s", key, file, reason);
    }
    return rc;
}

void ptc_connector_config_free(ptc_connector_config_t *cfg)
{
    /* status_file may have been filled in by check(); the schema knows it as a PATH, so
     * the loader's free releases it either way. */
    ptc_config_free(&connector_schema, cfg);
    memset(cfg, 0, sizeof(*cfg));
}
