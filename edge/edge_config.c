/* SPDX-License-Identifier: MIT */
/*
 * edge.json loading (see edge_config.h): the schema tables for common/config, then the checks
 * that span several keys or need more than a type (host names, "host:port" forms, timer
 * ranges, keys that go together). The checks run in document order of the keys they name,
 * so the first problem of a file is the one reported.
 */
#include "edge/edge_config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/net.h"
#include "common/url.h"

/* docs/protocol.md §11.5: ping_interval_ms 1000..600000, idle_timeout_ms above it and at most
 * 3600000. */
#define PING_MIN_MS 1000
#define PING_MAX_MS 600000
#define IDLE_MAX_MS 3600000

/* session.lifetime and session.key_rotation bounds, in seconds. */
#define DAY_S (24 * 60 * 60)
#define LIFETIME_MIN_S (5 * 60)
#define LIFETIME_MAX_S (30 * DAY_S)
#define ROTATION_MIN_S (60 * 60)
#define ROTATION_MAX_S (365 * DAY_S)

/* The longest client secret file accepted (secrets are tens of bytes). */
#define SECRET_MAX 4096

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

static const char *const idp_auth_names[] = {"client_secret_basic", "client_secret_post", NULL};

static const ptc_config_field_t idp_fields[] = {
    {.key = "name",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_edge_idp_cfg_t, name),
     .required = true},
    {.key = "issuer",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_edge_idp_cfg_t, issuer),
     .required = true},
    {.key = "client_id",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_edge_idp_cfg_t, client_id),
     .required = true},
    {.key = "client_secret_file",
     .type = PTC_CONFIG_PATH,
     .offset = offsetof(ptc_edge_idp_cfg_t, client_secret_file),
     .required = true},
    {.key = "token_endpoint_auth_method",
     .type = PTC_CONFIG_ENUM,
     .offset = offsetof(ptc_edge_idp_cfg_t, token_endpoint_auth_method),
     .enum_names = idp_auth_names,
     .def_int = PTC_EDGE_IDP_CLIENT_SECRET_BASIC},
    {.key = "scopes",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(ptc_edge_idp_cfg_t, scopes),
     .count_offset = offsetof(ptc_edge_idp_cfg_t, scopes_cnt),
     .min = 0,
     .max = 32},
    {.key = "groups_claim",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_edge_idp_cfg_t, groups_claim),
     .def_str = "groups"},
    {.key = "ca_file", .type = PTC_CONFIG_PATH, .offset = offsetof(ptc_edge_idp_cfg_t, ca_file)},
};
static const ptc_config_schema_t idp_schema = PTC_CONFIG_SCHEMA(ptc_edge_idp_cfg_t, idp_fields);

/* The durations are strings checked after loading: they accept days ("7d"), which the
 * loader's DURATION type does not. */
static const ptc_config_field_t session_fields[] = {
    {.key = "lifetime",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_edge_session_cfg_t, lifetime_text),
     .def_str = "8h"},
    {.key = "key_rotation",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_edge_session_cfg_t, key_rotation_text),
     .def_str = "7d"},
};
static const ptc_config_schema_t session_schema =
    PTC_CONFIG_SCHEMA(ptc_edge_session_cfg_t, session_fields);

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
    {.key = "idps",
     .type = PTC_CONFIG_OBJECT_ARRAY,
     .offset = offsetof(ptc_edge_config_t, idps),
     .count_offset = offsetof(ptc_edge_config_t, idps_cnt),
     .schema = &idp_schema,
     .min = 0,
     .max = 32},
    {.key = "session",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(ptc_edge_config_t, session),
     .schema = &session_schema},
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

/* A loopback address (the admin TCP listener, plain-http issuers): 127.0.0.0/8, ::1 or
 * localhost. */
bool ptc_edge_config_is_loopback_host(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* ---- providers and sessions ---- */

/* "8h", "30m", "7d", "3600s": decimal digits and one unit; seconds in *out. */
static bool parse_days_duration(const char *s, int64_t *out)
{
    const char *p = s;
    int64_t v = 0;
    if (*p < '0' || *p > '9') {
        return false;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX / DAY_S - 9) / 10) {
            return false;
        }
        v = v * 10 + (*p - '0');
    }
    int64_t factor;
    if (strcmp(p, "s") == 0) {
        factor = 1;
    } else if (strcmp(p, "m") == 0) {
        factor = 60;
    } else if (strcmp(p, "h") == 0) {
        factor = 60 * 60;
    } else if (strcmp(p, "d") == 0) {
        factor = DAY_S;
    } else {
        return false;
    }
    *out = v * factor;
    return true;
}

static void format_days(char *dst, size_t cap, int64_t s)
{
    if (s % DAY_S == 0) {
        snprintf(dst, cap, "%lldd", (long long)(s / DAY_S));
    } else if (s % 3600 == 0) {
        snprintf(dst, cap, "%lldh", (long long)(s / 3600));
    } else if (s % 60 == 0) {
        snprintf(dst, cap, "%lldm", (long long)(s / 60));
    } else {
        snprintf(dst, cap, "%llds", (long long)s);
    }
}

static int check_session_duration(const char *name, const char *key, const char *text, int64_t min,
                                  int64_t max, int64_t *out, char *err, size_t errlen)
{
    char q[256];
    if (!parse_days_duration(text, out)) {
        return ptc_config_fail(err, errlen, name,
                               "session.%s: expected a duration such as 8h or 7d, got %s", key,
                               ptc_config_quote(text, q, sizeof(q)));
    }
    if (*out < min || *out > max) {
        char lo[32];
        char hi[32];
        format_days(lo, sizeof(lo), min);
        format_days(hi, sizeof(hi), max);
        return ptc_config_fail(err, errlen, name, "session.%s: expected a duration %s..%s, got %s",
                               key, lo, hi, ptc_config_quote(text, q, sizeof(q)));
    }
    return 0;
}

static bool is_idp_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 63) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-')) {
            return false;
        }
    }
    return true;
}

/* An OAuth scope token (RFC 6749 §3.3): %x21 / %x23-5B / %x5D-7E. */
static bool is_scope_token(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
            return false;
        }
    }
    return true;
}

/* Reads the client secret; on failure writes the message and returns PTC_ECONFIG. The
 * secret never appears in a message. */
static int read_secret(const char *name, size_t i, ptc_edge_idp_cfg_t *idp, char *err,
                       size_t errlen)
{
    char q[256];
    const char *path = idp->client_secret_file;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return ptc_config_fail(err, errlen, name,
                               "idps[%zu].client_secret_file: cannot read %s: %s", i,
                               ptc_config_quote(path, q, sizeof(q)), strerror(errno));
    }
    char *buf = ptc_xmalloc(SECRET_MAX + 1);
    size_t len = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, SECRET_MAX + 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = ptc_config_fail(err, errlen, name,
                                 "idps[%zu].client_secret_file: cannot read %s: %s", i,
                                 ptc_config_quote(path, q, sizeof(q)), strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
        if (len > SECRET_MAX) {
            rc = ptc_config_fail(err, errlen, name,
                                 "idps[%zu].client_secret_file: %s is larger than %d bytes", i,
                                 ptc_config_quote(path, q, sizeof(q)), SECRET_MAX);
            goto out;
        }
    }
    /* One trailing line break, as editors and `echo` leave it. */
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') {
            len--;
        }
    }
    if (len == 0) {
        rc = ptc_config_fail(err, errlen, name, "idps[%zu].client_secret_file: %s is empty", i,
                             ptc_config_quote(path, q, sizeof(q)));
        goto out;
    }
    if (memchr(buf, '\0', len) != NULL) {
        rc = ptc_config_fail(err, errlen, name, "idps[%zu].client_secret_file: %s holds a NUL byte",
                             i, ptc_config_quote(path, q, sizeof(q)));
        goto out;
    }
    idp->client_secret = ptc_xmalloc(len + 1);
    memcpy(idp->client_secret, buf, len);
    idp->client_secret[len] = '\0';
out:
    sodium_memzero(buf, SECRET_MAX + 1);
    free(buf);
    close(fd);
    return rc;
}

static int check_idp(const char *name, ptc_edge_config_t *cfg, size_t i, char *err, size_t errlen)
{
    char q[256];
    ptc_edge_idp_cfg_t *idp = &cfg->idps[i];
    if (!is_idp_name(idp->name)) {
        return ptc_config_fail(err, errlen, name,
                               "idps[%zu].name: expected 1..63 of a-z, 0-9 and '-', got %s", i,
                               ptc_config_quote(idp->name, q, sizeof(q)));
    }
    for (size_t j = 0; j < i; j++) {
        if (strcmp(cfg->idps[j].name, idp->name) == 0) {
            return ptc_config_fail(err, errlen, name,
                                   "idps[%zu].name: %s is already the name of idps[%zu]", i,
                                   ptc_config_quote(idp->name, q, sizeof(q)), j);
        }
    }
    /* OpenID Connect Discovery §2: the issuer is an https URL without query or fragment;
     * plain http is accepted only on loopback, for tests and local providers. */
    ptc_url_t u;
    char why[128];
    int rc = ptc_url_parse(idp->issuer, PTC_URL_HTTP, &u, why, sizeof(why));
    bool is_ok = rc == 0 && u.query == NULL &&
                 (strcmp(u.scheme, "https") == 0 || ptc_edge_config_is_loopback_host(u.host));
    ptc_url_dispose(&u);
    if (!is_ok) {
        return ptc_config_fail(err, errlen, name,
                               "idps[%zu].issuer: expected an https URL without a query (http "
                               "only on a loopback address), got %s",
                               i, ptc_config_quote(idp->issuer, q, sizeof(q)));
    }
    rc = read_secret(name, i, idp, err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (idp->scopes_cnt == 0) {
        static const char *const defaults[] = {"openid", "email", "profile"};
        idp->scopes = ptc_xcalloc(3, sizeof(char *));
        for (size_t j = 0; j < 3; j++) {
            idp->scopes[j] = ptc_xstrdup(defaults[j]);
        }
        idp->scopes_cnt = 3;
    }
    bool has_openid = false;
    for (size_t j = 0; j < idp->scopes_cnt; j++) {
        if (!is_scope_token(idp->scopes[j])) {
            return ptc_config_fail(err, errlen, name,
                                   "idps[%zu].scopes[%zu]: expected a scope without spaces or "
                                   "quotes, got %s",
                                   i, j, ptc_config_quote(idp->scopes[j], q, sizeof(q)));
        }
        has_openid = has_openid || strcmp(idp->scopes[j], "openid") == 0;
    }
    if (!has_openid) {
        return ptc_config_fail(err, errlen, name, "idps[%zu].scopes: must contain \"openid\"", i);
    }
    if (idp->ca_file != NULL && access(idp->ca_file, R_OK) != 0) {
        return ptc_config_fail(err, errlen, name, "idps[%zu].ca_file: cannot read %s: %s", i,
                               ptc_config_quote(idp->ca_file, q, sizeof(q)), strerror(errno));
    }
    return 0;
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
            !ptc_edge_config_is_loopback_host(hp.host)) {
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
    for (size_t i = 0; i < cfg->idps_cnt; i++) {
        int rc = check_idp(name, cfg, i, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }
    ptc_edge_session_cfg_t *s = &cfg->session;
    int rc = check_session_duration(name, "lifetime", s->lifetime_text, LIFETIME_MIN_S,
                                    LIFETIME_MAX_S, &s->lifetime_s, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = check_session_duration(name, "key_rotation", s->key_rotation_text, ROTATION_MIN_S,
                                ROTATION_MAX_S, &s->key_rotation_s, err, errlen);
    if (rc != 0) {
        return rc;
    }
    /* A session sealed with one key stays readable through one rotation (the previous key is
     * kept), so a rotation period shorter than a session would sign people out early. */
    if (s->key_rotation_s < s->lifetime_s) {
        return ptc_config_fail(err, errlen, name,
                               "session.key_rotation: must be at least session.lifetime (%s), "
                               "got %s",
                               s->lifetime_text, s->key_rotation_text);
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

const ptc_edge_idp_cfg_t *ptc_edge_config_find_idp(const ptc_edge_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->idps_cnt; i++) {
        if (strcmp(cfg->idps[i].name, name) == 0) {
            return &cfg->idps[i];
        }
    }
    return NULL;
}

void ptc_edge_config_free(ptc_edge_config_t *cfg)
{
    /* The secrets are not schema fields: wipe and free them before the loader's free. */
    for (size_t i = 0; cfg->idps != NULL && i < cfg->idps_cnt; i++) {
        char *secret = cfg->idps[i].client_secret;
        if (secret != NULL) {
            sodium_memzero(secret, strlen(secret));
            free(secret);
            cfg->idps[i].client_secret = NULL;
        }
    }
    ptc_config_free(&edge_schema, cfg);
    memset(cfg, 0, sizeof(*cfg));
}
