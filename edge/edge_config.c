/* SPDX-License-Identifier: MIT */
/*
 * edge.json loading (see edge_config.h): the schema tables for common/config, then the checks
 * that span several keys or need more than a type (host names, "host:port" forms, timer
 * ranges, keys that go together). The checks run in document order of the keys they name,
 * so the first problem of a file is the one reported.
 */
#include "edge/edge_config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "common/net.h"

/* docs/protocol.md §11.5: ping_interval_ms 1000..600000, idle_timeout_ms above it and at most
 * 3600000. */
#define PING_MIN_MS 1000
#define PING_MAX_MS 600000
#define IDLE_MAX_MS 3600000

/* ---- schema ---- */

static const ptc_config_field_t tls_fields[] = {
    {.key = "cert",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(ptc_edge_tls_cfg_t, cert),
     .required = true},
    {.key = "key",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(ptc_edge_tls_cfg_t, key),
     .required = true},
};
static const ptc_config_schema_t tls_schema = PTC_CONFIG_SCHEMA(ptc_edge_tls_cfg_t, tls_fields);

static const ptc_config_field_t admin_fields[] = {
    {.key = "socket",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(ptc_edge_admin_cfg_t, socket),
     .def_str = "/run/portico/admin.sock"},
    {.key = "socket_mode",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_edge_admin_cfg_t, socket_mode_text),
     .def_str = "0660"},
    {.key = "tcp", .type = PTC_CONFIG_NESTR, .offset = offsetof(ptc_edge_admin_cfg_t, tcp)},
    {.key = "token_file",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(ptc_edge_admin_cfg_t, token_file)},
};
static const ptc_config_schema_t admin_schema =
    PTC_CONFIG_SCHEMA(ptc_edge_admin_cfg_t, admin_fields);

static const ptc_config_field_t log_fields[] = {
    {.key = "level",
     .type = PTC_CONFIG_ENUM,
     .offset = offsetof(ptc_edge_log_cfg_t, level),
     .enum_names = ptc_log_level_names,
     .def_int = PTC_LOG_INFO},
    {.key = "file", .type = PTC_CONFIG_PATH, .offset = offsetof(ptc_edge_log_cfg_t, file)},
};
static const ptc_config_schema_t log_schema = PTC_CONFIG_SCHEMA(ptc_edge_log_cfg_t, log_fields);

static const ptc_config_field_t limits_fields[] = {
    {.key = "handshake_timeout",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(ptc_edge_limits_cfg_t, handshake_timeout_ms),
     .def_int = 10000,
     .min = 100,
     .max = 600000},
    {.key = "max_connections",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(ptc_edge_limits_cfg_t, max_connections),
     .def_int = 10000,
     .min = 1,
     .max = 10000000},
    {.key = "max_tunnels",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(ptc_edge_limits_cfg_t, max_tunnels),
     .def_int = 10000,
     .min = 1,
     .max = 10000000},
    {.key = "max_unauthenticated",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(ptc_edge_limits_cfg_t, max_unauthenticated),
     .def_int = 1000,
     .min = 1,
     .max = 10000000},
    {.key = "max_unauthenticated_per_address",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(ptc_edge_limits_cfg_t, max_unauthenticated_per_address),
     .def_int = 100,
     .min = 1,
     .max = 10000000},
    {.key = "ping_interval",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(ptc_edge_limits_cfg_t, ping_interval_ms),
     .def_int = 15000,
     .min = PING_MIN_MS,
     .max = PING_MAX_MS},
    {.key = "idle_timeout",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(ptc_edge_limits_cfg_t, idle_timeout_ms),
     .def_int = 45000,
     .min = PING_MIN_MS,
     .max = IDLE_MAX_MS},
    {.key = "drain_timeout",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(ptc_edge_limits_cfg_t, drain_timeout_ms),
     .def_int = 30000,
     .min = 0,
     .max = IDLE_MAX_MS},
    {.key = "http_head_timeout",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(ptc_edge_limits_cfg_t, http_head_timeout_ms),
     .def_int = 30000,
     .min = 100,
     .max = 600000},
    {.key = "http_idle_timeout",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(ptc_edge_limits_cfg_t, http_idle_timeout_ms),
     .def_int = 75000,
     .min = 100,
     .max = IDLE_MAX_MS},
    {.key = "max_head_size",
     .type = PTC_CONFIG_SIZE,
     .offset = offsetof(ptc_edge_limits_cfg_t, max_head_bytes),
     .def_int = 16384,
     .min = 1024,
     .max = 1048576},
    {.key = "max_headers",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(ptc_edge_limits_cfg_t, max_headers),
     .def_int = 100,
     .min = 1,
     .max = 1000},
    {.key = "max_url_length",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(ptc_edge_limits_cfg_t, max_url_len),
     .def_int = 8192,
     .min = 64,
     .max = 1048576},
};
static const ptc_config_schema_t limits_schema =
    PTC_CONFIG_SCHEMA(ptc_edge_limits_cfg_t, limits_fields);

static const ptc_config_field_t edge_fields[] = {
    {.key = "listen",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(ptc_edge_config_t, listen),
     .count_offset = offsetof(ptc_edge_config_t, listen_cnt),
     .required = true,
     .min = 1,
     .max = 16},
    {.key = "edge_host",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_edge_config_t, edge_host),
     .required = true},
    {.key = "default_domain",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_edge_config_t, default_domain),
     .required = true},
    {.key = "tls",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(ptc_edge_config_t, tls),
     .schema = &tls_schema,
     .required = true},
    {.key = "advertise",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(ptc_edge_config_t, advertise),
     .count_offset = offsetof(ptc_edge_config_t, advertise_cnt),
     .min = 0,
     .max = 64},
    {.key = "state_dir",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(ptc_edge_config_t, state_dir),
     .def_str = "/var/lib/portico"},
    {.key = "admin",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(ptc_edge_config_t, admin),
     .schema = &admin_schema},
    {.key = "log",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(ptc_edge_config_t, log),
     .schema = &log_schema},
    {.key = "limits",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(ptc_edge_config_t, limits),
     .schema = &limits_schema},
    {.key = "http_listen",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(ptc_edge_config_t, http_listen),
     .count_offset = offsetof(ptc_edge_config_t, http_listen_cnt),
     .min = 0,
     .max = 16},
    {.key = "server_timing",
     .type = PTC_CONFIG_BOOL,
     .offset = offsetof(ptc_edge_config_t, server_timing),
     .def_int = 0},
};
static const ptc_config_schema_t edge_schema = PTC_CONFIG_SCHEMA(ptc_edge_config_t, edge_fields);

/* ---- checks across keys ---- */

bool ptc_edge_config_is_hostname(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 253) {
        return false;
    }
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = name[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || name[i - 1] == '-') {
                return false;
            }
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)c) && c != '-') {
            return false;
        }
        if (label == 0 && c == '-') {
            return false;
        }
        label++;
    }
    return true;
}

static void lower(char *s)
{
    for (; *s != '\0'; s++) {
        *s = (char)tolower((unsigned char)*s);
    }
}

/* A loopback address for the admin TCP listener: 127.0.0.0/8, ::1 or localhost. */
static bool is_loopback_host(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

static int check(const char *name, ptc_edge_config_t *cfg, char *err, size_t errlen)
{
    char q[256];
    ptc_net_hostport_t hp;
    for (size_t i = 0; i < cfg->listen_cnt; i++) {
        if (ptc_net_parse_hostport(cfg->listen[i], &hp) != 0) {
            return ptc_config_fail(
                err, errlen, name,
                "listen[%zu]: expected \"host:port\" such as \"0.0.0.0:443\", got %s", i,
                ptc_config_quote(cfg->listen[i], q, sizeof(q)));
        }
    }
    if (!ptc_edge_config_is_hostname(cfg->edge_host)) {
        return ptc_config_fail(err, errlen, name, "edge_host: expected a DNS host name, got %s",
                               ptc_config_quote(cfg->edge_host, q, sizeof(q)));
    }
    lower(cfg->edge_host);
    if (!ptc_edge_config_is_hostname(cfg->default_domain)) {
        return ptc_config_fail(err, errlen, name,
                               "default_domain: expected a DNS domain name, got %s",
                               ptc_config_quote(cfg->default_domain, q, sizeof(q)));
    }
    lower(cfg->default_domain);
    for (size_t i = 0; i < cfg->advertise_cnt; i++) {
        if (ptc_net_parse_hostport(cfg->advertise[i], &hp) != 0 || hp.host[0] == '\0' ||
            hp.port == 0) {
            return ptc_config_fail(
                err, errlen, name,
                "advertise[%zu]: expected \"host:port\" with a port 1..65535, got %s", i,
                ptc_config_quote(cfg->advertise[i], q, sizeof(q)));
        }
    }
    const char *mode = cfg->admin.socket_mode_text;
    char *end = NULL;
    unsigned long m = strtoul(mode, &end, 8);
    if (mode[0] < '0' || mode[0] > '7' || *end != '\0' || m > 0777 || strlen(mode) > 4) {
        return ptc_config_fail(
            err, errlen, name,
            "admin.socket_mode: expected an octal file mode such as \"0660\", got %s",
            ptc_config_quote(mode, q, sizeof(q)));
    }
    cfg->admin.socket_mode = (unsigned)m;
    if (cfg->admin.tcp != NULL) {
        if (ptc_net_parse_hostport(cfg->admin.tcp, &hp) != 0 || hp.port == 0 ||
            !is_loopback_host(hp.host)) {
            return ptc_config_fail(err, errlen, name,
                                   "admin.tcp: expected a loopback \"host:port\" such as "
                                   "\"127.0.0.1:9443\", got %s",
                                   ptc_config_quote(cfg->admin.tcp, q, sizeof(q)));
        }
        if (cfg->admin.token_file == NULL) {
            return ptc_config_fail(err, errlen, name,
                                   "admin.token_file: required when admin.tcp is set");
        }
    } else if (cfg->admin.token_file != NULL) {
        return ptc_config_fail(err, errlen, name,
                               "admin.tcp: required when admin.token_file is set");
    }
    for (size_t i = 0; i < cfg->http_listen_cnt; i++) {
        if (ptc_net_parse_hostport(cfg->http_listen[i], &hp) != 0) {
            return ptc_config_fail(
                err, errlen, name,
                "http_listen[%zu]: expected \"host:port\" such as \"0.0.0.0:80\", got %s", i,
                ptc_config_quote(cfg->http_listen[i], q, sizeof(q)));
        }
    }
    const ptc_edge_limits_cfg_t *l = &cfg->limits;
    if (l->idle_timeout_ms <= l->ping_interval_ms) {
        return ptc_config_fail(
            err, errlen, name,
            "limits.idle_timeout: must be greater than limits.ping_interval (%llu ms), "
            "got %llu ms",
            (unsigned long long)l->ping_interval_ms, (unsigned long long)l->idle_timeout_ms);
    }
    return 0;
}

/* ---- API ---- */

int ptc_edge_config_load(const char *path, ptc_edge_config_t *out, char *err, size_t errlen)
{
    int rc = ptc_config_load_file(path, &edge_schema, out, err, errlen);
    if (rc != 0) {
        return rc;
    }
    return check(path, out, err, errlen);
}

int ptc_edge_config_load_buffer(const char *name, const void *data, size_t len,
                                const char *base_dir, ptc_edge_config_t *out, char *err,
                                size_t errlen)
{
    int rc = ptc_config_load_buffer(name, data, len, base_dir, &edge_schema, out, err, errlen);
    if (rc != 0) {
        return rc;
    }
    return check(name, out, err, errlen);
}

void ptc_edge_config_free(ptc_edge_config_t *cfg)
{
    ptc_config_free(&edge_schema, cfg);
    memset(cfg, 0, sizeof(*cfg));
}
