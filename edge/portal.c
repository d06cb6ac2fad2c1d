/* SPDX-License-Identifier: MIT */
/*
 * The edge host's "My apps" portal (DESIGN §5, docs/edge.md "Sign-in"): on edge_host, "/"
 * lists the apps the signed-in user may use, and the sign-in paths under /.portico/ work
 * there as on an app host, with the edge host's own session cookie and the first configured
 * identity provider (edge/auth.c does both). Listed are the oidc apps of that provider whose
 * assignment admits the user; passthrough apps are not listed: they have no assignment, so
 * they are nobody's "my" apps, and the portal does not advertise what is reachable without
 * signing in. Without any configured provider the portal is off ("/" stays a 404) and only
 * /.portico/jwks.json is served.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "common/log.h"
#include "edge/auth.h"
#include "edge/pages.h"
#include "edge/state.h"

static void put(ptc_buf_t *out, const char *s)
{
    ptc_buf_append(out, s, strlen(s));
}

static void put_escaped(ptc_buf_t *out, const char *s)
{
    ptc_page_html_escape(out, s, strlen(s));
}

/* True if the app belongs on the user's list. */
static bool listed(const ptc_app_t *app, const ptc_session_t *s)
{
    if (app->pre_auth != PTC_APP_PRE_AUTH_OIDC || app->idp == NULL || s->idp == NULL ||
        strcmp(app->idp, s->idp) != 0) {
        return false;
    }
    return ptc_auth_is_assigned(&app->assignment, s);
}

/* How the user is named on the page: "Name (email)", the email, the name or the sub. */
static void user_label(const ptc_session_t *s, char *out, size_t cap)
{
    if (s->name != NULL && s->email != NULL) {
        snprintf(out, cap, "%s (%s)", s->name, s->email);
    } else {
        snprintf(out, cap, "%s",
                 s->email != NULL ? s->email : (s->name != NULL ? s->name : s->sub));
    }
}

void ptc_portal_render(const ptc_edge_t *edge, const ptc_session_t *s, ptc_buf_t *out)
{
    put(out, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             "<meta name=\"robots\" content=\"noindex\"><title>My apps</title>\n"
             "<style>body{font-family:system-ui,sans-serif;margin:4em auto;max-width:36em;"
             "padding:0 1em;color:#222}h1{font-size:1.6em}li{margin:.4em 0}"
             "p.meta{color:#666;font-size:.9em}</style></head>\n<body>\n<h1>My apps</h1>\n");
    if (s == NULL) {
        put(out, "<p>You are not signed in.</p>\n</body></html>\n");
        return;
    }
    char user[512];
    user_label(s, user, sizeof(user));
    put(out, "<p>Signed in as <strong>");
    put_escaped(out, user);
    put(out, "</strong>. <a href=\"" PTC_AUTH_LOGOUT_PATH "\">Sign out</a></p>\n");
    size_t cnt = ptc_state_app_count(edge->state);
    size_t shown = 0;
    for (size_t i = 0; i < cnt; i++) {
        const ptc_app_t *app = ptc_state_app_at(edge->state, i);
        if (!listed(app, s)) {
            continue;
        }
        if (shown++ == 0) {
            put(out, "<ul class=\"apps\">\n");
        }
        put(out, "<li><a href=\"");
        put_escaped(out, app->home_page);
        put(out, "\">");
        put_escaped(out, app->name);
        put(out, "</a>");
        if (app->maintenance_mode) {
            put(out, " <span class=\"meta\">(down for maintenance)</span>");
        }
        put(out, "</li>\n");
    }
    if (shown > 0) {
        put(out, "</ul>\n");
    } else {
        put(out, "<p>You have not been given access to any application yet.</p>\n");
    }
    put(out, "</body></html>\n");
}

/* {"user": {...}, "apps": [{"name", "url", "maintenance"}]} for clients that ask for JSON. */
static char *render_json(const ptc_edge_t *edge, const ptc_session_t *s)
{
    json_t *doc = json_object();
    json_t *user = json_object();
    json_t *apps = json_array();
    if (doc == NULL || user == NULL || apps == NULL) {
        abort();
    }
    json_object_set_new(user, "sub", json_string(s->sub));
    json_object_set_new(user, "email", s->email != NULL ? json_string(s->email) : json_null());
    json_object_set_new(user, "name", s->name != NULL ? json_string(s->name) : json_null());
    json_object_set_new(doc, "user", user);
    size_t cnt = ptc_state_app_count(edge->state);
    for (size_t i = 0; i < cnt; i++) {
        const ptc_app_t *app = ptc_state_app_at(edge->state, i);
        if (!listed(app, s)) {
            continue;
        }
        json_t *a = json_object();
        if (a == NULL) {
            abort();
        }
        json_object_set_new(a, "name", json_string(app->name));
        json_object_set_new(a, "url", json_string(app->home_page));
        json_object_set_new(a, "maintenance", json_boolean(app->maintenance_mode));
        json_array_append_new(apps, a);
    }
    json_object_set_new(doc, "apps", apps);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL) {
        abort();
    }
    return text;
}

int ptc_portal_route(void *data, ptc_httpd_req_t *req)
{
    ptc_edge_t *edge = data;
    ptc_slice_t path = ptc_httpd_req_path(req);
    bool root = ptc_slice_eq(path, "/");
    bool edge_path = path.len >= strlen(PTC_AUTH_PREFIX) &&
                     memcmp(path.ptr, PTC_AUTH_PREFIX, strlen(PTC_AUTH_PREFIX)) == 0;
    const char *id = ptc_httpd_req_id(req);
    if (edge->app_ctx.idp_cnt == 0) {
        if (ptc_slice_eq(path, PTC_AUTH_JWKS_PATH)) {
            ptc_auth_respond_jwks(edge, req, id);
            return 0;
        }
        return PTC_ENOTFOUND;
    }
    if (!root && !edge_path) {
        return PTC_ENOTFOUND;
    }
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    if (root && !ptc_slice_eq(h->method, "GET") && !ptc_slice_eq(h->method, "HEAD")) {
        static const ptc_http_header_t allow[] = {
            {{(const uint8_t *)"Allow", 5}, {(const uint8_t *)"GET, HEAD", 9}},
        };
        (void)ptc_httpd_respond_simple(req, 405, "text/plain; charset=utf-8", allow, 1,
                                       "method not allowed\n", 19);
        return 0;
    }
    ptc_session_t s;
    if (ptc_auth_edge_host(edge, req, id, &s) != 1) {
        return 0;
    }
    static const ptc_http_header_t nocache[] = {
        {{(const uint8_t *)"Cache-Control", 13}, {(const uint8_t *)"no-store", 8}},
    };
    if (ptc_page_wants_json(h->headers, h->header_cnt)) {
        char *text = render_json(edge, &s);
        (void)ptc_httpd_respond_simple(req, 200, "application/json", nocache, 1, text,
                                       strlen(text));
        free(text);
    } else {
        ptc_buf_t body;
        ptc_buf_init(&body);
        ptc_portal_render(edge, &s, &body);
        (void)ptc_httpd_respond_simple(req, 200, "text/html; charset=utf-8", nocache, 1,
                                       ptc_buf_data(&body), body.len);
        ptc_buf_dispose(&body);
    }
    ptc_session_dispose(&s);
    return 0;
}
