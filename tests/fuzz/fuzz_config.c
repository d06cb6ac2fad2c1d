/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for common/config: loads arbitrary bytes as a configuration document against
 * a schema that uses every field type (nested objects, arrays of objects holding arrays and
 * maps, enums, durations, sizes, paths), checks the loader's promises, then frees. Any
 * crash, sanitizer report, leak or broken promise (abort) is a finding.
 *
 * Promises checked: 0 or PTC_ECONFIG only; on failure a message that starts with the
 * document name and is valid UTF-8 without control characters; on success the ranges,
 * counts and required keys of the schema hold; after ptc_config_free() every pointer and
 * count is reset.
 */
#include "tests/fuzz/fuzz.h"

#include "common/config.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct upstream {
    char *url;
    int64_t weight;
    uint64_t timeout;
} upstream_t;

typedef struct app {
    char *name;
    int pre_auth;
    char *home;
    ptc_config_kv_t *headers;
    size_t headers_cnt;
    upstream_t *upstreams;
    size_t upstreams_cnt;
    char **users;
    size_t users_cnt;
} app_t;

typedef struct limits {
    uint64_t max_body;
    uint64_t idle;
    int64_t max_streams;
} limits_t;

typedef struct root {
    char *name;
    char *note;
    bool enabled;
    int level;
    char *dir;
    limits_t limits;
    app_t *apps;
    size_t apps_cnt;
    char **domains;
    size_t domains_cnt;
    ptc_config_kv_t *claims;
    size_t claims_cnt;
} root_t;

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const pre_auths[] = {"oidc", "passthrough", NULL};

static const ptc_config_field_t upstream_fields[] = {
    {.key = "url", .type = PTC_CONFIG_NESTR, .offset = offsetof(upstream_t, url), .required = true},
    {.key = "weight",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(upstream_t, weight),
     .def_int = 1,
     .min = 1,
     .max = 1000},
    {.key = "timeout",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(upstream_t, timeout),
     .def_int = 85000,
     .min = 1,
     .max = 3600000},
};
static const ptc_config_schema_t upstream_schema = PTC_CONFIG_SCHEMA(upstream_t, upstream_fields);

static const ptc_config_field_t app_fields[] = {
    {.key = "name", .type = PTC_CONFIG_NESTR, .offset = offsetof(app_t, name), .required = true},
    {.key = "pre_auth",
     .type = PTC_CONFIG_ENUM,
     .offset = offsetof(app_t, pre_auth),
     .enum_names = pre_auths},
    {.key = "home", .type = PTC_CONFIG_PATH, .offset = offsetof(app_t, home), .def_str = "www"},
    {.key = "headers",
     .type = PTC_CONFIG_STRING_MAP,
     .offset = offsetof(app_t, headers),
     .count_offset = offsetof(app_t, headers_cnt),
     .min = 0,
     .max = 16},
    {.key = "upstreams",
     .type = PTC_CONFIG_OBJECT_ARRAY,
     .offset = offsetof(app_t, upstreams),
     .count_offset = offsetof(app_t, upstreams_cnt),
     .schema = &upstream_schema,
     .min = 1,
     .max = INT64_MAX},
    {.key = "users",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(app_t, users),
     .count_offset = offsetof(app_t, users_cnt)},
};
static const ptc_config_schema_t app_schema = PTC_CONFIG_SCHEMA(app_t, app_fields);

static const ptc_config_field_t limits_fields[] = {
    {.key = "max_body",
     .type = PTC_CONFIG_SIZE,
     .offset = offsetof(limits_t, max_body),
     .def_int = 1048576,
     .min = 1024,
     .max = (int64_t)1 << 40},
    {.key = "idle",
     .type = PTC_CONFIG_DURATION,
     .offset = offsetof(limits_t, idle),
     .def_int = 30000},
    {.key = "max_streams",
     .type = PTC_CONFIG_INT,
     .offset = offsetof(limits_t, max_streams),
     .def_int = 100,
     .min = INT64_MIN,
     .max = 100000},
};
static const ptc_config_schema_t limits_schema = PTC_CONFIG_SCHEMA(limits_t, limits_fields);

static const ptc_config_field_t root_fields[] = {
    {.key = "name", .type = PTC_CONFIG_NESTR, .offset = offsetof(root_t, name), .required = true},
    {.key = "note", .type = PTC_CONFIG_STRING, .offset = offsetof(root_t, note)},
    {.key = "enabled", .type = PTC_CONFIG_BOOL, .offset = offsetof(root_t, enabled), .def_int = 1},
    {.key = "level",
     .type = PTC_CONFIG_ENUM,
     .offset = offsetof(root_t, level),
     .enum_names = levels,
     .def_int = 1},
    {.key = "dir", .type = PTC_CONFIG_PATH, .offset = offsetof(root_t, dir)},
    {.key = "limits",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(root_t, limits),
     .schema = &limits_schema},
    {.key = "apps",
     .type = PTC_CONFIG_OBJECT_ARRAY,
     .offset = offsetof(root_t, apps),
     .count_offset = offsetof(root_t, apps_cnt),
     .schema = &app_schema,
     .max = 64},
    {.key = "domains",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(root_t, domains),
     .count_offset = offsetof(root_t, domains_cnt),
     .min = 0,
     .max = 8},
    {.key = "claims",
     .type = PTC_CONFIG_STRING_MAP,
     .offset = offsetof(root_t, claims),
     .count_offset = offsetof(root_t, claims_cnt)},
};
static const ptc_config_schema_t root_schema = PTC_CONFIG_SCHEMA(root_t, root_fields);

#define PROMISE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "broken promise: %s (%s:%d)\n", #cond, __FILE__, __LINE__);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_message(const char *msg)
{
    PROMISE(strncmp(msg, "fuzz.json", 9) == 0);
    PROMISE(msg[9] == ':');
    for (const char *p = msg; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        PROMISE(c >= 0x20 && c != 0x7f);
    }
    /* jansson refuses invalid UTF-8 when building a string. */
    json_t *s = json_string(msg);
    PROMISE(s != NULL);
    json_decref(s);
}

static void check_loaded(const root_t *r)
{
    PROMISE(r->name != NULL && r->name[0] != '\0');
    PROMISE(r->level >= 0 && r->level <= 3);
    PROMISE(r->dir == NULL || r->dir[0] == '/');
    PROMISE(r->limits.max_body >= 1024 && r->limits.max_body <= ((uint64_t)1 << 40));
    PROMISE(r->limits.max_streams <= 100000);
    PROMISE(r->apps_cnt <= 64 && (r->apps_cnt == 0) == (r->apps == NULL));
    PROMISE(r->domains_cnt <= 8);
    for (size_t i = 0; i < r->apps_cnt; i++) {
        const app_t *a = &r->apps[i];
        PROMISE(a->name != NULL && a->name[0] != '\0');
        PROMISE(a->pre_auth == 0 || a->pre_auth == 1);
        PROMISE(a->home != NULL && a->home[0] == '/');
        PROMISE(a->headers_cnt <= 16);
        PROMISE(a->upstreams_cnt >= 1);
        for (size_t j = 0; j < a->headers_cnt; j++) {
            PROMISE(a->headers[j].key[0] != '\0' && a->headers[j].value[0] != '\0');
        }
        for (size_t j = 0; j < a->upstreams_cnt; j++) {
            PROMISE(a->upstreams[j].url != NULL);
            PROMISE(a->upstreams[j].weight >= 1 && a->upstreams[j].weight <= 1000);
            PROMISE(a->upstreams[j].timeout >= 1 && a->upstreams[j].timeout <= 3600000);
        }
        for (size_t j = 0; j < a->users_cnt; j++) {
            PROMISE(a->users[j] != NULL && a->users[j][0] != '\0');
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    root_t r;
    char msg[512];
    int rc = ptc_config_load_buffer("fuzz.json", data, size, "/etc/portico", &root_schema, &r, msg,
                                    sizeof(msg));
    PROMISE(rc == 0 || rc == PTC_ECONFIG);
    if (rc == 0) {
        PROMISE(msg[0] == '\0');
        check_loaded(&r);
    } else {
        check_message(msg);
    }
    ptc_config_free(&root_schema, &r);
    PROMISE(r.name == NULL && r.note == NULL && r.dir == NULL);
    PROMISE(r.apps == NULL && r.apps_cnt == 0 && r.domains == NULL && r.claims == NULL);

    /* The same bytes, cut to a short NUL-terminated string, as a duration and a size. */
    char s[32];
    size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    uint64_t v;
    if (ptc_config_parse_duration(s, &v) == 0) {
        PROMISE(v <= (uint64_t)INT64_MAX);
    }
    if (ptc_config_parse_size(s, &v) == 0) {
        PROMISE(v <= (uint64_t)INT64_MAX);
    }
    return 0;
}
