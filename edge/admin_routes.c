/* SPDX-License-Identifier: MIT */
/*
 * The admin API's routes (docs/admin-api.md): the path is matched against a fixed table of
 * /v1/<collection>[/<id>] routes and one of /v1/<collection>/<id>/<action> routes (404 for an
 * unknown path, 405 with Allow for a known path and another method), the {id} segment is
 * percent-decoded, request bodies are checked key by key
 * (a 400 message always names the field), and every change goes through edge/state, whose
 * observers apply it live. Connector status is read from edge/registry. Error codes of
 * edge/state map to statuses as state.h lists them.
 *
 * Secrets: the token text appears only in the answer to POST /v1/tokens; a certificate's key
 * is never put in an answer, and the copy of it in a request body is wiped after use.
 * No I/O and no logging here: admin.c logs from the fields this fills in, and starts the
 * work of a deferred answer (an app test) that a route asks for.
 */
#include "edge/admin_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/url.h"
#include "edge/diag.h"

#define MSG_CAP 512

/* ---- answers ---- */

const char *ptc_admin_routes_error_code(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 408:
        return "request_timeout";
    case 409:
        return "conflict";
    case 413:
        return "payload_too_large";
    case 414:
        return "uri_too_long";
    case 431:
        return "headers_too_large";
    case 501:
        return "not_implemented";
    case 505:
        return "http_version_not_supported";
    case 503:
        return "unavailable";
    default:
        return status >= 500 ? "internal_error" : "bad_request";
    }
}

json_t *ptc_admin_routes_error(const char *code, const char *message)
{
    json_t *j = json_object();
    json_object_set_new(j, "error", json_string(code));
    /* A message may quote peer input that is not UTF-8: fall back to a plain one. */
    json_t *m = json_string(message);
    json_object_set_new(j, "message", m != NULL ? m : json_string("invalid request"));
    return j;
}

static void reply(ptc_admin_req_t *req, int status, json_t *answer)
{
    req->status = status;
    json_decref(req->answer);
    req->answer = answer;
}

static void reply_error(ptc_admin_req_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_error(ptc_admin_req_t *req, int status, const char *fmt, ...)
{
    char msg[MSG_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply(req, status, ptc_admin_routes_error(ptc_admin_routes_error_code(status), msg));
}

/* Maps an edge/state refusal to its answer (state.h's table). */
static void reply_state_error(ptc_admin_req_t *req, int rc, const char *msg)
{
    switch (rc) {
    case PTC_EFORMAT:
        reply_error(req, 400, "%s", msg);
        break;
    case PTC_ENOTFOUND:
        reply_error(req, 404, "%s", msg);
        break;
    case PTC_EEXIST:
    case PTC_ESTATE:
        reply_error(req, 409, "%s", msg);
        break;
    default:
        snprintf(req->store_err, sizeof(req->store_err), "%s", msg);
        reply_error(req, 500, "the change could not be saved: %s", msg);
        break;
    }
}

/* ---- request bodies ---- */

/*
 * Checks that the body is a JSON object whose keys are all in `allowed` (NULL-terminated).
 * Otherwise answers 400 naming the problem and returns false.
 */
static bool body_object(ptc_admin_req_t *req, const char *const *allowed)
{
    if (!json_is_object(req->body)) {
        reply_error(req, 400, "body: expected a JSON object");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(req->body, key, v)
    {
        bool known = false;
        for (const char *const *a = allowed; *a != NULL; a++) {
            if (strcmp(key, *a) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            reply_error(req, 400, "%.64s: unknown key", key);
            return false;
        }
    }
    return true;
}

/* A string member: NULL when absent (and not required); 400 when of another type. */
static bool body_string(ptc_admin_req_t *req, const char *key, bool required, const char **out)
{
    json_t *v = json_object_get(req->body, key);
    *out = NULL;
    if (v == NULL) {
        if (required) {
            reply_error(req, 400, "%s: required key is missing", key);
            return false;
        }
        return true;
    }
    if (!json_is_string(v)) {
        reply_error(req, 400, "%s: expected a string", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/*
 * A token lifetime: "30m", "1h", "7d", "90s" (a number and one unit), or an integer number
 * of seconds. Returns false for anything else, for zero and on overflow.
 */
static bool parse_lifetime(const json_t *v, uint64_t *ms)
{
    if (json_is_integer(v)) {
        json_int_t s = json_integer_value(v);
        if (s <= 0 || (uint64_t)s > UINT64_MAX / 1000) {
            return false;
        }
        *ms = (uint64_t)s * 1000;
        return true;
    }
    const char *s = json_string_value(v);
    if (s == NULL || *s < '0' || *s > '9') {
        return false;
    }
    uint64_t n = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (n > (UINT64_MAX - 9) / 10) {
            return false;
        }
        n = n * 10 + (uint64_t)(*s - '0');
    }
    uint64_t unit;
    if (strcmp(s, "s") == 0) {
        unit = 1000;
    } else if (strcmp(s, "m") == 0) {
        unit = 60 * 1000;
    } else if (strcmp(s, "h") == 0) {
        unit = 3600 * 1000;
    } else if (strcmp(s, "d") == 0) {
        unit = 86400 * 1000;
    } else {
        return false;
    }
    if (n == 0 || n > UINT64_MAX / unit) {
        return false;
    }
    *ms = n * unit;
    return true;
}

static json_t *time_json(uint64_t ms)
{
    char buf[PTC_STATE_TIME_CAP];
    ptc_state_time_format(ms, buf);
    return json_string(buf);
}

/* ---- groups ---- */

static json_t *group_json(ptc_edge_t *edge, const ptc_group_t *g, uint64_t now)
{
    size_t apps = 0;
    size_t connectors = 0;
    size_t tokens = 0;
    ptc_state_group_usage(edge->state, g->name, now, &apps, &connectors, &tokens);
    json_t *j = ptc_state_group_to_json(g);
    json_object_set_new(j, "connectors", json_integer((json_int_t)connectors));
    json_object_set_new(j, "apps", json_integer((json_int_t)apps));
    return j;
}

static void groups_list(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    json_t *arr = json_array();
    size_t n = ptc_state_group_count(edge->state);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr,
                              group_json(edge, ptc_state_group_at(edge->state, i), req->now_ms));
    }
    json_t *j = json_object();
    json_object_set_new(j, "groups", arr);
    reply(req, 200, j);
}

static void groups_add(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    if (!body_object(req, keys) || !body_string(req, "name", true, &name)) {
        return;
    }
    snprintf(req->id, sizeof(req->id), "%s", name);
    char err[MSG_CAP];
    int rc = ptc_state_group_add(edge->state, name, req->now_ms, err, sizeof(err));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    reply(req, 201, group_json(edge, ptc_state_group_find(edge->state, name), req->now_ms));
}

static void group_get(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    const ptc_group_t *g = ptc_state_group_find(edge->state, req->id);
    if (g == NULL) {
        reply_error(req, 404, "no group named \"%s\"", req->id);
        return;
    }
    reply(req, 200, group_json(edge, g, req->now_ms));
}

static void group_delete(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    char err[MSG_CAP];
    int rc = ptc_state_group_delete(edge->state, req->id, req->now_ms, err, sizeof(err));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    reply(req, 204, NULL);
}

/* ---- tokens ---- */

static void tokens_list(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    json_t *arr = json_array();
    size_t n = ptc_state_token_count(edge->state);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(
            arr, ptc_state_token_to_json(ptc_state_token_at(edge->state, i), req->now_ms));
    }
    json_t *j = json_object();
    json_object_set_new(j, "tokens", arr);
    reply(req, 200, j);
}

static void tokens_create(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    static const char *const keys[] = {"group", "expires_in", "max_uses", NULL};
    const char *group;
    if (!body_object(req, keys) || !body_string(req, "group", true, &group)) {
        return;
    }
    uint64_t ttl_ms = 0;
    json_t *exp = json_object_get(req->body, "expires_in");
    if (exp != NULL && !parse_lifetime(exp, &ttl_ms)) {
        reply_error(req, 400,
                    "expires_in: expected a duration such as \"30m\", \"1h\" or \"7d\" (at most "
                    "365d)");
        return;
    }
    uint32_t max_uses = 0;
    json_t *uses = json_object_get(req->body, "max_uses");
    if (uses != NULL) {
        if (!json_is_integer(uses) || json_integer_value(uses) < 1 ||
            json_integer_value(uses) > PTC_TOKEN_MAX_USES) {
            reply_error(req, 400, "max_uses: expected an integer 1..%d", PTC_TOKEN_MAX_USES);
            return;
        }
        max_uses = (uint32_t)json_integer_value(uses);
    }
    char text[PTC_TOKEN_TEXT_CAP];
    const ptc_token_t *t = NULL;
    char err[MSG_CAP];
    int rc = ptc_state_token_mint(edge->state, group, ttl_ms, max_uses, req->now_ms, text, &t, err,
                                  sizeof(err));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    snprintf(req->id, sizeof(req->id), "%s", t->id);
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(t->id));
    json_object_set_new(j, "token", json_string(text));
    json_object_set_new(j, "group", json_string(t->group));
    json_object_set_new(j, "expires_at", time_json(t->expires_at));
    json_object_set_new(j, "max_uses", json_integer((json_int_t)t->max_uses));
    ptc_keys_wipe(text, sizeof(text));
    reply(req, 201, j);
}

static void token_delete(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    char err[MSG_CAP];
    int rc = ptc_state_token_revoke(edge->state, req->id, err, sizeof(err));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    reply(req, 204, NULL);
}

/* ---- connectors ---- */

/*
 * A connector with its live status: "status" (active when it has a live tunnel),
 * "remote_addrs", and "tunnels": the count, or with `detail` one object per tunnel.
 */
static json_t *connector_json(ptc_edge_t *edge, const ptc_connector_t *c, bool detail)
{
    json_t *j = ptc_state_connector_to_json(c);
    size_t n = 0;
    ptc_registry_tunnel_status_t *st = NULL;
    if (edge->registry != NULL) {
        n = ptc_registry_connector_tunnels(edge->registry, c->id);
        if (n > 0) {
            st = ptc_xcalloc(n, sizeof(*st));
            n = ptc_registry_connector_status(edge->registry, c->id, st, n);
        }
    }
    json_object_set_new(j, "status", json_string(n > 0 ? "active" : "inactive"));
    json_t *addrs = json_array();
    json_t *tunnels = detail ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(addrs, json_string(st[i].remote_addr));
        if (detail) {
            json_t *t = json_object();
            json_object_set_new(t, "id", json_string(st[i].tunnel_id));
            json_object_set_new(t, "remote_addr", json_string(st[i].remote_addr));
            json_object_set_new(t, "since", time_json(st[i].since_ms));
            json_object_set_new(t, "streams", json_integer((json_int_t)st[i].streams));
            json_object_set_new(t, "draining", json_boolean(st[i].draining));
            json_array_append_new(tunnels, t);
        }
    }
    free(st);
    json_object_set_new(j, "tunnels", detail ? tunnels : json_integer((json_int_t)n));
    json_object_set_new(j, "remote_addrs", addrs);
    return j;
}

static void connectors_list(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    json_t *arr = json_array();
    size_t n = ptc_state_connector_count(edge->state);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr,
                              connector_json(edge, ptc_state_connector_at(edge->state, i), false));
    }
    json_t *j = json_object();
    json_object_set_new(j, "connectors", arr);
    reply(req, 200, j);
}

static void connector_get(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    const ptc_connector_t *c = ptc_state_connector_find(edge->state, req->id);
    if (c == NULL) {
        reply_error(req, 404, "no connector with id \"%s\"", req->id);
        return;
    }
    reply(req, 200, connector_json(edge, c, true));
}

static void connector_move(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    static const char *const keys[] = {"group", NULL};
    const char *group;
    if (!body_object(req, keys) || !body_string(req, "group", true, &group)) {
        return;
    }
    char err[MSG_CAP];
    int rc = ptc_state_connector_move(edge->state, req->id, group, err, sizeof(err));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    const ptc_connector_t *c = ptc_state_connector_find(edge->state, req->id);
    if (c == NULL) {
        /* An observer cannot delete it, but the answer must not depend on that. */
        reply_error(req, 404, "no connector with id \"%s\"", req->id);
        return;
    }
    reply(req, 200, connector_json(edge, c, true));
}

static void connector_delete(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    char err[MSG_CAP];
    int rc = ptc_state_connector_delete(edge->state, req->id, err, sizeof(err));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    reply(req, 204, NULL);
}

/* ---- apps ---- */

static void apps_list(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    json_t *arr = json_array();
    size_t n = ptc_state_app_count(edge->state);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, ptc_app_to_json(ptc_state_app_at(edge->state, i)));
    }
    json_t *j = json_object();
    json_object_set_new(j, "apps", arr);
    reply(req, 200, j);
}

static void apps_add(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    if (!json_is_object(req->body)) {
        reply_error(req, 400, "body: expected a JSON object");
        return;
    }
    const char *name = json_string_value(json_object_get(req->body, "name"));
    if (name != NULL) {
        snprintf(req->id, sizeof(req->id), "%s", name);
    }
    const ptc_app_t *app = NULL;
    char err[MSG_CAP];
    int rc = ptc_state_app_add(edge->state, req->body, &app, err, sizeof(err));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    reply(req, 201, ptc_app_to_json(app));
}

static void app_get(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    const ptc_app_t *app = ptc_state_app_find(edge->state, req->id);
    if (app == NULL) {
        reply_error(req, 404, "no app named \"%s\"", req->id);
        return;
    }
    reply(req, 200, ptc_app_to_json(app));
}

static void app_update(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    if (!json_is_object(req->body)) {
        reply_error(req, 400, "body: expected a JSON object");
        return;
    }
    const ptc_app_t *app = NULL;
    char err[MSG_CAP];
    int rc = ptc_state_app_update(edge->state, req->id, req->body, &app, err, sizeof(err));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    reply(req, 200, ptc_app_to_json(app));
}

/* POST /v1/apps/{name}/test: answered by edge/diag once the connectors' probes are in. */
static void *app_test_start(ptc_edge_t *edge, const char *id, ptc_admin_answer_cb cb, void *data)
{
    ptc_diag_run_t *run = NULL;
    return ptc_diag_start(edge, id, cb, data, &run) == 0 ? run : NULL;
}

static void app_test_cancel(void *handle)
{
    ptc_diag_cancel(handle);
}

static const ptc_admin_deferred_t app_test_deferred = {app_test_start, app_test_cancel};

static void app_test(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    /* A test changes nothing: it is not an admin_change. */
    req->is_change = false;
    if (req->body != NULL && (!json_is_object(req->body) || json_object_size(req->body) > 0)) {
        reply_error(req, 400, "body: expected none (or an empty object)");
        return;
    }
    if (ptc_state_app_find(edge->state, req->id) == NULL) {
        reply_error(req, 404, "no app named \"%s\"", req->id);
        return;
    }
    req->deferred = &app_test_deferred;
}

static void app_delete(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    char err[MSG_CAP];
    int rc = ptc_state_app_delete(edge->state, req->id, err, sizeof(err));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    reply(req, 204, NULL);
}

/* ---- certificates ---- */

static void certs_list(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    json_t *arr = json_array();
    size_t n = ptc_state_cert_count(edge->state);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr,
                              ptc_state_cert_to_json(ptc_state_cert_at(edge->state, i), false));
    }
    json_t *j = json_object();
    json_object_set_new(j, "certs", arr);
    reply(req, 200, j);
}

static void certs_add(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    static const char *const keys[] = {"cert_pem", "key_pem", NULL};
    const char *cert_pem;
    const char *key_pem;
    if (!body_object(req, keys) || !body_string(req, "cert_pem", true, &cert_pem) ||
        !body_string(req, "key_pem", true, &key_pem)) {
        return;
    }
    const ptc_cert_t *c = NULL;
    char err[MSG_CAP];
    int rc = ptc_state_cert_add(edge->state, cert_pem, key_pem, req->now_ms, &c, err, sizeof(err));
    /* The body's copy of the key is ours to wipe: nothing reads it after this. */
    json_t *key = json_object_get(req->body, "key_pem");
    ptc_keys_wipe((char *)json_string_value(key), json_string_length(key));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    snprintf(req->id, sizeof(req->id), "%s", c->id);
    reply(req, 201, ptc_state_cert_to_json(c, false));
}

static void cert_get(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    const ptc_cert_t *c = ptc_state_cert_find(edge->state, req->id);
    if (c == NULL) {
        reply_error(req, 404, "no certificate with id \"%s\"", req->id);
        return;
    }
    reply(req, 200, ptc_state_cert_to_json(c, true));
}

static void cert_delete(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    char err[MSG_CAP];
    int rc = ptc_state_cert_delete(edge->state, req->id, err, sizeof(err));
    if (rc != 0) {
        reply_state_error(req, rc, err);
        return;
    }
    reply(req, 204, NULL);
}

/* ---- status ---- */

static void status_get(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    json_t *j = json_object();
    uint64_t uptime_ms = req->now_ms > edge->started_ms ? req->now_ms - edge->started_ms : 0;
    size_t active_tokens = 0;
    size_t ntok = ptc_state_token_count(edge->state);
    for (size_t i = 0; i < ntok; i++) {
        if (ptc_token_status(ptc_state_token_at(edge->state, i), req->now_ms) == PTC_TOKEN_ACTIVE) {
            active_tokens++;
        }
    }
    json_object_set_new(j, "version", json_string(PTC_VERSION));
    if (edge->cfg.edge_host != NULL) {
        json_object_set_new(j, "edge_host", json_string(edge->cfg.edge_host));
    }
    json_object_set_new(j, "started_at", time_json(edge->started_ms));
    json_object_set_new(j, "uptime_s", json_integer((json_int_t)(uptime_ms / 1000)));
    json_object_set_new(j, "draining", json_boolean(edge->draining));
    bool reg = edge->registry != NULL;
    json_object_set_new(
        j, "tunnels",
        json_integer(reg ? (json_int_t)ptc_registry_tunnel_count(edge->registry) : 0));
    json_object_set_new(
        j, "streams",
        json_integer(reg ? (json_int_t)ptc_registry_stream_count(edge->registry) : 0));
    json_object_set_new(
        j, "connectors_active",
        json_integer(reg ? (json_int_t)ptc_registry_connector_count(edge->registry) : 0));
    json_object_set_new(j, "connectors",
                        json_integer((json_int_t)ptc_state_connector_count(edge->state)));
    json_object_set_new(j, "groups", json_integer((json_int_t)ptc_state_group_count(edge->state)));
    json_object_set_new(j, "apps", json_integer((json_int_t)ptc_state_app_count(edge->state)));
    json_object_set_new(j, "certs", json_integer((json_int_t)ptc_state_cert_count(edge->state)));
    json_object_set_new(j, "tokens_active", json_integer((json_int_t)active_tokens));
    json_object_set_new(j, "connections", json_integer((json_int_t)edge->counters.conns));
    json_object_set_new(j, "connections_total",
                        json_integer((json_int_t)edge->counters.conns_total));
    json_object_set_new(j, "requests_total",
                        json_integer((json_int_t)edge->counters.requests_total));
    json_object_set_new(j, "idle_released_bytes_total",
                        json_integer((json_int_t)edge->counters.released_bytes));
    reply(req, 200, j);
}

/* ---- routing ---- */

typedef void (*handler_fn)(ptc_edge_t *edge, ptc_admin_req_t *req);

typedef struct route {
    const char *collection;
    bool has_id;
    const char *method;
    handler_fn fn;
    const char *resource;
    const char *allow; /* every method of this path, for 405 */
} route_t;

static const route_t routes[] = {
    {"groups", false, "GET", groups_list, "group", "GET, POST"},
    {"groups", false, "POST", groups_add, "group", "GET, POST"},
    {"groups", true, "GET", group_get, "group", "GET, DELETE"},
    {"groups", true, "DELETE", group_delete, "group", "GET, DELETE"},
    {"tokens", false, "GET", tokens_list, "token", "GET, POST"},
    {"tokens", false, "POST", tokens_create, "token", "GET, POST"},
    {"tokens", true, "DELETE", token_delete, "token", "DELETE"},
    {"connectors", false, "GET", connectors_list, "connector", "GET"},
    {"connectors", true, "GET", connector_get, "connector", "GET, PATCH, DELETE"},
    {"connectors", true, "PATCH", connector_move, "connector", "GET, PATCH, DELETE"},
    {"connectors", true, "DELETE", connector_delete, "connector", "GET, PATCH, DELETE"},
    {"apps", false, "GET", apps_list, "app", "GET, POST"},
    {"apps", false, "POST", apps_add, "app", "GET, POST"},
    {"apps", true, "GET", app_get, "app", "GET, PATCH, DELETE"},
    {"apps", true, "PATCH", app_update, "app", "GET, PATCH, DELETE"},
    {"apps", true, "DELETE", app_delete, "app", "GET, PATCH, DELETE"},
    {"certs", false, "GET", certs_list, "cert", "GET, POST"},
    {"certs", false, "POST", certs_add, "cert", "GET, POST"},
    {"certs", true, "GET", cert_get, "cert", "GET, DELETE"},
    {"certs", true, "DELETE", cert_delete, "cert", "GET, DELETE"},
    {"status", false, "GET", status_get, "status", "GET"},
};

/* Actions on one record: /v1/<collection>/<id>/<action>. */
typedef struct action_route {
    const char *collection;
    const char *action;
    const char *method;
    handler_fn fn;
    const char *resource;
    const char *allow;
} action_route_t;

static const action_route_t action_routes[] = {
    {"apps", "test", "POST", app_test, "app", "POST"},
};

/*
 * Percent-decodes p[0..len) into out (PTC_ADMIN_ID_MAX + 1 bytes). Returns 0, or 400 with a
 * message for a bad escape, a NUL byte or a segment that is too long.
 */
static int decode_segment(ptc_admin_req_t *req, const char *p, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)p[i];
        if (c == '%') {
            if (len - i < 3) {
                reply_error(req, 400, "path: invalid percent-encoding");
                return 400;
            }
            int h = ptc_url_hex_value((unsigned char)p[i + 1]);
            int l = ptc_url_hex_value((unsigned char)p[i + 2]);
            if (h < 0 || l < 0) {
                reply_error(req, 400, "path: invalid percent-encoding");
                return 400;
            }
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0) {
            reply_error(req, 400, "path: NUL byte in the path");
            return 400;
        }
        if (o == PTC_ADMIN_ID_MAX) {
            reply_error(req, 400, "path: the id is longer than %d bytes", PTC_ADMIN_ID_MAX);
            return 400;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

void ptc_admin_routes_handle(ptc_edge_t *edge, ptc_admin_req_t *req)
{
    static const char prefix[] = "/v1/";
    const char *t = req->target;
    req->is_change = strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0;
    if (t[0] != '/') {
        reply_error(req, 400, "path: expected an absolute path such as /v1/status");
        return;
    }
    size_t path_len = strcspn(t, "?#");
    if (path_len < sizeof(prefix) - 1 || strncmp(t, prefix, sizeof(prefix) - 1) != 0) {
        reply_error(req, 404, "no such path (the API lives under /v1/)");
        return;
    }
    const char *coll = t + sizeof(prefix) - 1;
    size_t rest = path_len - (sizeof(prefix) - 1);
    const char *slash = memchr(coll, '/', rest);
    size_t coll_len = slash != NULL ? (size_t)(slash - coll) : rest;
    bool has_id = slash != NULL;
    const char *id = has_id ? slash + 1 : NULL;
    size_t id_len = has_id ? rest - coll_len - 1 : 0;
    const char *action = NULL;
    size_t action_len = 0;
    const char *slash2 = has_id ? memchr(id, '/', id_len) : NULL;
    if (slash2 != NULL) {
        action = slash2 + 1;
        action_len = id_len - (size_t)(action - id);
        id_len = (size_t)(slash2 - id);
    }
    if (has_id && (id_len == 0 || (action != NULL &&
                                   (action_len == 0 || memchr(action, '/', action_len) != NULL)))) {
        reply_error(req, 404, "no such path: %.*s", (int)(path_len > 200 ? 200 : path_len), t);
        return;
    }
    if (action != NULL) {
        const action_route_t *a = NULL;
        for (size_t i = 0; i < sizeof(action_routes) / sizeof(action_routes[0]); i++) {
            const action_route_t *r = &action_routes[i];
            if (strlen(r->collection) == coll_len && memcmp(r->collection, coll, coll_len) == 0 &&
                strlen(r->action) == action_len && memcmp(r->action, action, action_len) == 0) {
                a = r;
                break;
            }
        }
        if (a == NULL) {
            reply_error(req, 404, "no such path: %.*s", (int)(path_len > 200 ? 200 : path_len), t);
            return;
        }
        req->resource = a->resource;
        if (decode_segment(req, id, id_len, req->id) != 0) {
            return;
        }
        if (strcmp(a->method, req->method) != 0) {
            req->allow = a->allow;
            reply_error(req, 405, "%s is not allowed here (allowed: %s)", req->method, a->allow);
            return;
        }
        a->fn(edge, req);
        return;
    }
    const route_t *path_match = NULL;
    const route_t *match = NULL;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const route_t *r = &routes[i];
        if (r->has_id != has_id || strlen(r->collection) != coll_len ||
            memcmp(r->collection, coll, coll_len) != 0) {
            continue;
        }
        path_match = r;
        if (strcmp(r->method, req->method) == 0) {
            match = r;
            break;
        }
    }
    if (path_match == NULL) {
        reply_error(req, 404, "no such path: %.*s", (int)(path_len > 200 ? 200 : path_len), t);
        return;
    }
    req->resource = path_match->resource;
    if (has_id && decode_segment(req, id, id_len, req->id) != 0) {
        return;
    }
    if (match == NULL) {
        req->allow = path_match->allow;
        reply_error(req, 405, "%s is not allowed here (allowed: %s)", req->method,
                    path_match->allow);
        return;
    }
    match->fn(edge, req);
}
