/* SPDX-License-Identifier: MIT */
/*
 * One published application: its settings (the design's app settings with exactly those names
 * and defaults, plus robots_txt and hsts), parsed from JSON with validation and defaults,
 * serialized back to JSON, updated PATCH-style, and the fields the router derives from the
 * two URLs.
 *
 * Settings (JSON key: type, default):
 *   name                 string, required: 1..64 of [a-z0-9-], not starting or ending in '-'
 *   external_url         string, "https://<name>.<default_domain>/": http(s), host, optional
 *                        port, a path prefix ending in '/'; no query, fragment or userinfo
 *   internal_url         string, required: http(s), host, optional port and path (ending in
 *                        '/'); no query, fragment or userinfo
 *   connector_group      string, "Default" (existence is checked by edge/state)
 *   pre_auth             "oidc" | "passthrough", "oidc"
 *   idp                  string, the first configured identity provider
 *   maintenance_mode     bool, false
 *   backend_timeout      "default" (85 s) | "long" (180 s), "default"
 *   http_only_cookie     bool, true
 *   secure_cookie        bool, true
 *   persistent_cookie    bool, false
 *   translate_headers    bool, true
 *   translate_body       bool, false
 *   validate_backend_tls bool, true
 *   home_page            string, the external_url: an http(s) URL on the external host
 *   assignment           {"users": [string], "groups": [string]}, both empty
 *   sso_headers          {claim: header name}, empty: names are HTTP tokens, not X-Portico-*
 *                        and not a header the edge owns (Host, Cookie, X-Forwarded-*, ...)
 *   robots_txt           bool, true: the edge answers /robots.txt with "Disallow: /"
 *   hsts                 bool, false: Strict-Transport-Security on https answers
 *   max_body_size        size (bytes, or "10MiB"), 0 = unlimited: larger request bodies get 413
 *
 * Unknown keys, wrong types and bad values are refused with one message that names the field
 * ("internal_url: expected an http or https URL, got \"ftp://x\" (...)"). The schema part is
 * common/config's loader; the rest are semantic checks here. Uniqueness and the connector
 * group's existence are edge/state's business. Depends on jansson, common/config, common/url.
 */
#ifndef PTC_EDGE_APP_H
#define PTC_EDGE_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/err.h"

#define PTC_APP_NAME_MAX 64
/** backend_timeout "default" and "long", in milliseconds. */
#define PTC_APP_TIMEOUT_DEFAULT_MS 85000
#define PTC_APP_TIMEOUT_LONG_MS 180000

typedef enum ptc_app_pre_auth {
    PTC_APP_PRE_AUTH_OIDC = 0,
    PTC_APP_PRE_AUTH_PASSTHROUGH = 1,
} ptc_app_pre_auth_t;

typedef enum ptc_app_backend_timeout {
    PTC_APP_BACKEND_TIMEOUT_DEFAULT = 0,
    PTC_APP_BACKEND_TIMEOUT_LONG = 1,
} ptc_app_backend_timeout_t;

/** The assignment: who may use the app (users by email or sub, IdP groups). */
typedef struct ptc_app_assignment {
    char **users;
    size_t users_cnt;
    char **groups;
    size_t groups_cnt;
} ptc_app_assignment_t;

/**
 * A validated app. Immutable once parsed (an update makes a new one) and reference-counted,
 * so that a request in flight may keep the version it was routed with: ptc_app_ref() /
 * ptc_app_unref(). Every string is owned by the app.
 */
typedef struct ptc_app {
    /* ---- settings, as in the JSON ---- */
    char *name;
    char *external_url;
    char *internal_url;
    char *connector_group;
    int pre_auth; /* ptc_app_pre_auth_t */
    char *idp;    /* NULL when no provider is configured and none was given */
    bool maintenance_mode;
    int backend_timeout; /* ptc_app_backend_timeout_t */
    bool http_only_cookie;
    bool secure_cookie;
    bool persistent_cookie;
    bool translate_headers;
    bool translate_body;
    bool validate_backend_tls;
    char *home_page;
    ptc_app_assignment_t assignment;
    ptc_config_kv_t *sso_headers; /* claim (key) -> header name (value), in document order */
    size_t sso_headers_cnt;
    bool robots_txt;
    bool hsts;
    uint64_t max_body_size; /* 0: unlimited */

    /* ---- derived, for routing and forwarding ---- */
    bool ext_https;    /* external_url is https */
    char *ext_host;    /* lower-case; IPv6 without brackets */
    uint16_t ext_port; /* explicit or default */
    char *ext_path;    /* the path prefix, normalised, ending in '/' ("/" for the root) */
    bool int_https;    /* internal_url is https */
    char *int_host;    /* lower-case; IPv6 without brackets */
    uint16_t int_port; /* explicit or default */
    char *int_path;    /* ends in '/' ("/" when the URL has none) */
    uint64_t backend_timeout_ms;

    unsigned _refs;
} ptc_app_t;

/**
 * What parsing needs from the edge's configuration. Borrowed for the call.
 *
 * - default_domain: apps without external_url get https://<name>.<default_domain>/; NULL or
 *   "" makes external_url required.
 * - idps, idp_cnt: the configured identity provider names in order. When idp_cnt > 0 an
 *   absent idp becomes idps[0] and a given one must be in the list (unless lenient_idp).
 * - lenient_idp: skip that membership check (for documents read back from the store, so that
 *   removing a provider from edge.json never stops the edge from starting).
 */
typedef struct ptc_app_ctx {
    const char *default_domain;
    const char *const *idps;
    size_t idp_cnt;
    bool lenient_idp;
} ptc_app_ctx_t;

/**
 * Parses and validates an app from a JSON object (borrowed, not modified): an admin API body
 * or a stored document. Absent settings take their defaults. Returns 0 and *out (one
 * reference, release with ptc_app_unref), or PTC_EFORMAT with a message naming the field in
 * err ("name: required key is missing", "sso_headers.email: ...").
 */
PTC_MUST_CHECK int ptc_app_parse(json_t *doc, const ptc_app_ctx_t *ctx, ptc_app_t **out, char *err,
                                 size_t errlen);

/**
 * PATCH-style update: applies the settings in `patch` (a JSON object of changed settings;
 * borrowed) over `old` and re-validates the whole app. "name" may appear only with the same
 * value (an app is not renamed). When external_url changes and home_page is not given and was
 * the old external root, home_page follows to the new external root. Returns 0 and a new app
 * in *out (one reference; `old` is untouched), or PTC_EFORMAT with a message in err.
 */
PTC_MUST_CHECK int ptc_app_patch(const ptc_app_t *old, json_t *patch, const ptc_app_ctx_t *ctx,
                                 ptc_app_t **out, char *err, size_t errlen);

/**
 * Serializes every setting (defaults included, derived fields excluded) into a new JSON
 * object that ptc_app_parse() reads back to an equal app: the stored document and the API's
 * answer. The caller owns the reference. Aborts if memory runs out.
 */
json_t *ptc_app_to_json(const ptc_app_t *app);

/** Takes a reference (apps are immutable; the count is not atomic: one loop). */
const ptc_app_t *ptc_app_ref(const ptc_app_t *app);

/** Drops a reference; the last one frees the app. NULL is ignored. */
void ptc_app_unref(const ptc_app_t *app);

/** True if `name` is a valid app name (1..64 of [a-z0-9-], no '-' at either end). */
bool ptc_app_name_is_valid(const char *name);

/**
 * True if the normalised request path (path_len bytes, no query) lies under the app's
 * external path prefix (ptc_url_path_under).
 */
bool ptc_app_covers(const ptc_app_t *app, const char *path, size_t path_len);

#endif
