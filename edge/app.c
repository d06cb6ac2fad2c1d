/* SPDX-License-Identifier: MIT */
/*
 * App settings (see app.h): the schema goes through common/config's loader (types, unknown
 * keys, defaults, key paths in messages); this file adds the semantic checks, the defaults
 * that depend on other settings or on the edge's configuration, and the derived fields.
 */
#include "edge/app.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/url.h"

/* Longest URL setting; URLs are shown in portals and logs, and this is plenty. */
#define URL_SETTING_MAX 2048
/* Longest header name in sso_headers. */
#define HEADER_NAME_MAX 128
/* What error messages quote of a value. */
#define QUOTE_MAX 120

/* ---- schema ---- */

static const char *const pre_auth_names[] = {"oidc", "passthrough", NULL};
static const char *const backend_timeout_names[] = {"default", "long", NULL};

static const ptc_config_field_t assignment_fields[] = {
    {.key = "users",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(ptc_app_assignment_t, users),
     .count_offset = offsetof(ptc_app_assignment_t, users_cnt),
     .min = 0,
     .max = 10000},
    {.key = "groups",
     .type = PTC_CONFIG_STRING_ARRAY,
     .offset = offsetof(ptc_app_assignment_t, groups),
     .count_offset = offsetof(ptc_app_assignment_t, groups_cnt),
     .min = 0,
     .max = 10000},
};
static const ptc_config_schema_t assignment_schema =
    PTC_CONFIG_SCHEMA(ptc_app_assignment_t, assignment_fields);

#define BOOL_FIELD(k, def)                                                                         \
    {                                                                                              \
        .key = #k, .type = PTC_CONFIG_BOOL, .offset = offsetof(ptc_app_t, k), .def_int = (def)     \
    }

static const ptc_config_field_t app_fields[] = {
    {.key = "name",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_app_t, name),
     .required = true},
    {.key = "external_url", .type = PTC_CONFIG_NESTR, .offset = offsetof(ptc_app_t, external_url)},
    {.key = "internal_url",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_app_t, internal_url),
     .required = true},
    {.key = "connector_group",
     .type = PTC_CONFIG_NESTR,
     .offset = offsetof(ptc_app_t, connector_group),
     .def_str = "Default"},
    {.key = "pre_auth",
     .type = PTC_CONFIG_ENUM,
     .offset = offsetof(ptc_app_t, pre_auth),
     .def_int = PTC_APP_PRE_AUTH_OIDC,
     .enum_names = pre_auth_names},
    {.key = "idp", .type = PTC_CONFIG_NESTR, .offset = offsetof(ptc_app_t, idp)},
    BOOL_FIELD(maintenance_mode, 0),
    {.key = "backend_timeout",
     .type = PTC_CONFIG_ENUM,
     .offset = offsetof(ptc_app_t, backend_timeout),
     .def_int = PTC_APP_BACKEND_TIMEOUT_DEFAULT,
     .enum_names = backend_timeout_names},
    BOOL_FIELD(http_only_cookie, 1),
    BOOL_FIELD(secure_cookie, 1),
    BOOL_FIELD(persistent_cookie, 0),
    BOOL_FIELD(translate_headers, 1),
    BOOL_FIELD(translate_body, 0),
    BOOL_FIELD(validate_backend_tls, 1),
    {.key = "home_page", .type = PTC_CONFIG_NESTR, .offset = offsetof(ptc_app_t, home_page)},
    {.key = "assignment",
     .type = PTC_CONFIG_OBJECT,
     .offset = offsetof(ptc_app_t, assignment),
     .schema = &assignment_schema},
    {.key = "sso_headers",
     .type = PTC_CONFIG_STRING_MAP,
     .offset = offsetof(ptc_app_t, sso_headers),
     .count_offset = offsetof(ptc_app_t, sso_headers_cnt),
     .min = 0,
     .max = 100},
    BOOL_FIELD(robots_txt, 1),
    BOOL_FIELD(hsts, 0),
    {.key = "max_body_size",
     .type = PTC_CONFIG_SIZE,
     .offset = offsetof(ptc_app_t, max_body_size),
     .def_int = 0,
     .min = 0,
     .max = INT64_MAX},
};
static const ptc_config_schema_t app_schema = PTC_CONFIG_SCHEMA(ptc_app_t, app_fields);

/* ---- messages ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return PTC_EFORMAT;
}

/* A quoted, escaped and cut copy of a value for messages: "abc". */
static const char *quote(char *dst, size_t cap, const char *s)
{
    dst[0] = '"';
    size_t n = ptc_log_escape(dst + 1, cap - 2, s, strlen(s), QUOTE_MAX);
    dst[n + 1] = '"';
    dst[n + 2] = '\0';
    return dst;
}

#define QUOTE_CAP (QUOTE_MAX * 6 + 8)

/* ---- checks ---- */

bool ptc_app_name_is_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PTC_APP_NAME_MAX || name[0] == '-' || name[n - 1] == '-') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return false;
        }
    }
    return true;
}

/* The group name rule of edge/state (1..64 of [A-Za-z0-9 ._-]); existence is its check. */
static bool group_name_is_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ' ' || c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* RFC 9110 §5.6.2 token characters. */
static bool is_token(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Headers the edge sets, strips or frames itself: an identity header must never replace one
 * of them (a claim value in Content-Length or Host would be request smuggling). */
static bool is_reserved_header(const char *name)
{
    static const char *const exact[] = {
        "host",       "content-length", "transfer-encoding",
        "connection", "keep-alive",     "upgrade",
        "te",         "trailer",        "cookie",
        "forwarded",  "x-request-id",   "expect",
    };
    static const char *const prefixes[] = {"x-portico-", "x-forwarded-", "proxy-"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++) {
        if (strcasecmp(name, exact[i]) == 0) {
            return true;
        }
    }
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncasecmp(name, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

static int check_sso_headers(const ptc_app_t *app, char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    char kq[QUOTE_CAP];
    for (size_t i = 0; i < app->sso_headers_cnt; i++) {
        const ptc_config_kv_t *kv = &app->sso_headers[i];
        ptc_log_escape(kq, sizeof(kq), kv->key, strlen(kv->key), QUOTE_MAX);
        if (strlen(kv->value) > HEADER_NAME_MAX || !is_token(kv->value)) {
            return fail(err, errlen, "sso_headers.%s: expected an HTTP header name, got %s", kq,
                        quote(q, sizeof(q), kv->value));
        }
        if (strncasecmp(kv->value, "x-portico-", 10) == 0) {
            return fail(err, errlen,
                        "sso_headers.%s: header names starting with X-Portico- are the edge's "
                        "own, got %s",
                        kq, quote(q, sizeof(q), kv->value));
        }
        if (is_reserved_header(kv->value)) {
            return fail(err, errlen,
                        "sso_headers.%s: %s is a header the edge sets or strips itself", kq,
                        quote(q, sizeof(q), kv->value));
        }
        for (size_t j = 0; j < i; j++) {
            if (strcasecmp(app->sso_headers[j].value, kv->value) == 0) {
                return fail(err, errlen, "sso_headers.%s: header %s is already used for %s", kq,
                            quote(q, sizeof(q), kv->value), app->sso_headers[j].key);
            }
        }
    }
    return 0;
}

/* Parses one URL setting (no query allowed); the message names `key`. */
static int parse_url_setting(const char *key, const char *text, ptc_url_t *u, char *err,
                             size_t errlen)
{
    char q[QUOTE_CAP];
    char why[256];
    if (strlen(text) > URL_SETTING_MAX) {
        return fail(err, errlen, "%s: expected an http or https URL of at most %d bytes", key,
                    URL_SETTING_MAX);
    }
    if (ptc_url_parse(text, PTC_URL_HTTP, u, why, sizeof(why)) != 0) {
        return fail(err, errlen, "%s: expected an http or https URL, got %s (%s)", key,
                    quote(q, sizeof(q), text), why);
    }
    if (u->query != NULL) {
        ptc_url_dispose(u);
        return fail(err, errlen, "%s: a query ('?') is not allowed, got %s", key,
                    quote(q, sizeof(q), text));
    }
    return 0;
}

static int check_path_prefix(const char *key, const ptc_url_t *u, char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    size_t n = strlen(u->path);
    if (u->path[n - 1] != '/') {
        return fail(err, errlen, "%s: the path must end with '/', got %s", key,
                    quote(q, sizeof(q), u->path));
    }
    char *norm = NULL;
    int rc = ptc_url_normalize_target(u->path, n, &norm, NULL);
    bool same = rc == 0 && strcmp(norm, u->path) == 0;
    if (!same && norm != NULL) {
        char q2[QUOTE_CAP];
        rc = fail(err, errlen, "%s: the path must be in normal form (%s rather than %s)", key,
                  quote(q, sizeof(q), norm), quote(q2, sizeof(q2), u->path));
    } else if (!same) {
        rc = fail(err, errlen, "%s: invalid path %s", key, quote(q, sizeof(q), u->path));
    }
    free(norm);
    return same ? 0 : PTC_EFORMAT;
}

static int check_external(ptc_app_t *app, const ptc_app_ctx_t *ctx, char *err, size_t errlen)
{
    if (app->external_url == NULL) {
        const char *dom = ctx != NULL ? ctx->default_domain : NULL;
        if (dom == NULL || dom[0] == '\0') {
            return fail(err, errlen,
                        "external_url: required key is missing (the edge has no "
                        "default_domain)");
        }
        size_t n = strlen(app->name) + strlen(dom) + 16;
        app->external_url = ptc_xmalloc(n);
        snprintf(app->external_url, n, "https://%s.%s/", app->name, dom);
    }
    ptc_url_t u;
    int rc = parse_url_setting("external_url", app->external_url, &u, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = check_path_prefix("external_url", &u, err, errlen);
    if (rc == 0) {
        app->ext_https = strcmp(u.scheme, "https") == 0;
        app->ext_port = u.port;
        app->ext_host = u.host;
        app->ext_path = u.path;
        u.host = NULL;
        u.path = NULL;
    }
    ptc_url_dispose(&u);
    return rc;
}

static int check_internal(ptc_app_t *app, char *err, size_t errlen)
{
    ptc_url_t u;
    int rc = parse_url_setting("internal_url", app->internal_url, &u, err, errlen);
    if (rc != 0) {
        return rc;
    }
    char q[QUOTE_CAP];
    if (u.path[strlen(u.path) - 1] != '/') {
        /* The external prefix maps onto the internal path: "/app/x" -> int_path + "x". */
        rc = fail(err, errlen, "internal_url: the path must end with '/', got %s",
                  quote(q, sizeof(q), u.path));
    } else {
        app->int_https = strcmp(u.scheme, "https") == 0;
        app->int_port = u.port;
        app->int_host = u.host;
        app->int_path = u.path;
        u.host = NULL;
        u.path = NULL;
    }
    ptc_url_dispose(&u);
    return rc;
}

static int check_idp(ptc_app_t *app, const ptc_app_ctx_t *ctx, char *err, size_t errlen)
{
    if (ctx == NULL || ctx->idp_cnt == 0) {
        return 0;
    }
    if (app->idp == NULL) {
        app->idp = ptc_xstrdup(ctx->idps[0]);
        return 0;
    }
    if (ctx->lenient_idp) {
        return 0;
    }
    for (size_t i = 0; i < ctx->idp_cnt; i++) {
        if (strcmp(ctx->idps[i], app->idp) == 0) {
            return 0;
        }
    }
    char q[QUOTE_CAP];
    char list[512];
    size_t o = 0;
    list[0] = '\0';
    for (size_t i = 0; i < ctx->idp_cnt && o + 1 < sizeof(list); i++) {
        int n = snprintf(list + o, sizeof(list) - o, "%s%s", i == 0 ? "" : ", ", ctx->idps[i]);
        if (n < 0) {
            break;
        }
        o += (size_t)n;
    }
    return fail(err, errlen, "idp: no identity provider is named %s (configured: %s)",
                quote(q, sizeof(q), app->idp), list);
}

static int check_home_page(ptc_app_t *app, char *err, size_t errlen)
{
    if (app->home_page == NULL) {
        app->home_page = ptc_xstrdup(app->external_url);
        return 0;
    }
    ptc_url_t u;
    char why[256];
    char q[QUOTE_CAP];
    if (strlen(app->home_page) > URL_SETTING_MAX ||
        ptc_url_parse(app->home_page, PTC_URL_HTTP, &u, why, sizeof(why)) != 0) {
        return fail(err, errlen, "home_page: expected an http or https URL, got %s",
                    quote(q, sizeof(q), app->home_page));
    }
    bool same = strcmp(u.host, app->ext_host) == 0 && u.port == app->ext_port &&
                (strcmp(u.scheme, "https") == 0) == app->ext_https;
    ptc_url_dispose(&u);
    if (!same) {
        char q2[QUOTE_CAP];
        return fail(err, errlen, "home_page: must be on the app's external host (%s), got %s",
                    quote(q2, sizeof(q2), app->external_url), quote(q, sizeof(q), app->home_page));
    }
    return 0;
}

static int validate(ptc_app_t *app, const ptc_app_ctx_t *ctx, char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    if (!ptc_app_name_is_valid(app->name)) {
        return fail(err, errlen,
                    "name: expected 1 to %d characters of a-z, 0-9 and '-' (not first or last), "
                    "got %s",
                    PTC_APP_NAME_MAX, quote(q, sizeof(q), app->name));
    }
    if (!group_name_is_valid(app->connector_group)) {
        return fail(err, errlen,
                    "connector_group: expected a group name (1 to 64 characters of A-Z, a-z, "
                    "0-9, space, '.', '_' and '-'), got %s",
                    quote(q, sizeof(q), app->connector_group));
    }
    int rc = check_external(app, ctx, err, errlen);
    if (rc == 0) {
        rc = check_internal(app, err, errlen);
    }
    if (rc == 0) {
        rc = check_idp(app, ctx, err, errlen);
    }
    if (rc == 0) {
        rc = check_home_page(app, err, errlen);
    }
    if (rc == 0) {
        rc = check_sso_headers(app, err, errlen);
    }
    app->backend_timeout_ms = app->backend_timeout == PTC_APP_BACKEND_TIMEOUT_LONG
                                  ? PTC_APP_TIMEOUT_LONG_MS
                                  : PTC_APP_TIMEOUT_DEFAULT_MS;
    return rc;
}

/* ---- lifetime ---- */

static void app_free(ptc_app_t *app)
{
    ptc_config_free(&app_schema, app);
    free(app->ext_host);
    free(app->ext_path);
    free(app->int_host);
    free(app->int_path);
    free(app);
}

const ptc_app_t *ptc_app_ref(const ptc_app_t *app)
{
    /* Apps are shared read-only; only the count changes. */
    ((ptc_app_t *)app)->_refs++;
    return app;
}

void ptc_app_unref(const ptc_app_t *app)
{
    if (app == NULL) {
        return;
    }
    ptc_app_t *a = (ptc_app_t *)app;
    assert(a->_refs > 0);
    if (--a->_refs == 0) {
        app_free(a);
    }
}

/* ---- public API ---- */

int ptc_app_parse(json_t *doc, const ptc_app_ctx_t *ctx, ptc_app_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    ptc_app_t *app = ptc_xcalloc(1, sizeof(*app));
    /* The loader writes "<name>: <key path>: <reason>"; an app's messages start at the key
     * path, so the name part is cut off again. */
    static const char prefix[] = "app: ";
    int rc = ptc_config_load_json("app", doc, NULL, &app_schema, app, err, errlen);
    if (rc != 0) {
        if (err != NULL && strncmp(err, prefix, sizeof(prefix) - 1) == 0) {
            memmove(err, err + sizeof(prefix) - 1, strlen(err) - (sizeof(prefix) - 1) + 1);
        }
        app_free(app);
        return PTC_EFORMAT;
    }
    rc = validate(app, ctx, err, errlen);
    if (rc != 0) {
        app_free(app);
        return rc;
    }
    app->_refs = 1;
    *out = app;
    return 0;
}

int ptc_app_patch(const ptc_app_t *old, json_t *patch, const ptc_app_ctx_t *ctx, ptc_app_t **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    if (!json_is_object(patch)) {
        return fail(err, errlen, "expected an object of settings");
    }
    json_t *name = json_object_get(patch, "name");
    if (name != NULL &&
        (!json_is_string(name) || strcmp(json_string_value(name), old->name) != 0)) {
        return fail(err, errlen,
                    "name: an app cannot be renamed (delete it and add it under the new name)");
    }
    bool home_follows = json_object_get(patch, "external_url") != NULL &&
                        json_object_get(patch, "home_page") == NULL &&
                        strcmp(old->home_page, old->external_url) == 0;
    json_t *doc = ptc_app_to_json(old);
    const char *key;
    json_t *v;
    json_object_foreach(patch, key, v)
    {
        /* RFC 7396: null removes the setting, so that its default applies again. */
        if (json_is_null(v)) {
            json_object_del(doc, key);
        } else {
            json_object_set(doc, key, v);
        }
    }
    if (home_follows) {
        json_object_del(doc, "home_page");
    }
    int rc = ptc_app_parse(doc, ctx, out, err, errlen);
    json_decref(doc);
    return rc;
}

static json_t *string_array(char *const *v, size_t cnt)
{
    json_t *a = json_array();
    for (size_t i = 0; i < cnt; i++) {
        json_array_append_new(a, json_string(v[i]));
    }
    return a;
}

json_t *ptc_app_to_json(const ptc_app_t *app)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(app->name));
    json_object_set_new(o, "external_url", json_string(app->external_url));
    json_object_set_new(o, "internal_url", json_string(app->internal_url));
    json_object_set_new(o, "connector_group", json_string(app->connector_group));
    json_object_set_new(o, "pre_auth", json_string(pre_auth_names[app->pre_auth]));
    if (app->idp != NULL) {
        json_object_set_new(o, "idp", json_string(app->idp));
    }
    json_object_set_new(o, "maintenance_mode", json_boolean(app->maintenance_mode));
    json_object_set_new(o, "backend_timeout",
                        json_string(backend_timeout_names[app->backend_timeout]));
    json_object_set_new(o, "http_only_cookie", json_boolean(app->http_only_cookie));
    json_object_set_new(o, "secure_cookie", json_boolean(app->secure_cookie));
    json_object_set_new(o, "persistent_cookie", json_boolean(app->persistent_cookie));
    json_object_set_new(o, "translate_headers", json_boolean(app->translate_headers));
    json_object_set_new(o, "translate_body", json_boolean(app->translate_body));
    json_object_set_new(o, "validate_backend_tls", json_boolean(app->validate_backend_tls));
    json_object_set_new(o, "home_page", json_string(app->home_page));
    json_t *assignment = json_object();
    json_object_set_new(assignment, "users",
                        string_array(app->assignment.users, app->assignment.users_cnt));
    json_object_set_new(assignment, "groups",
                        string_array(app->assignment.groups, app->assignment.groups_cnt));
    json_object_set_new(o, "assignment", assignment);
    json_t *sso = json_object();
    for (size_t i = 0; i < app->sso_headers_cnt; i++) {
        json_object_set_new(sso, app->sso_headers[i].key, json_string(app->sso_headers[i].value));
    }
    json_object_set_new(o, "sso_headers", sso);
    json_object_set_new(o, "robots_txt", json_boolean(app->robots_txt));
    json_object_set_new(o, "hsts", json_boolean(app->hsts));
    json_object_set_new(o, "max_body_size", json_integer((json_int_t)app->max_body_size));
    return o;
}

bool ptc_app_covers(const ptc_app_t *app, const char *path, size_t path_len)
{
    return ptc_url_path_under(path, path_len, app->ext_path);
}
