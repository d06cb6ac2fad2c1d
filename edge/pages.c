/* SPDX-License-Identifier: MIT */
/*
 * Error and maintenance pages (see pages.h). The texts are fixed per cause: nothing from the
 * app's configuration (internal URL, host, port) or from the backend ever reaches a page,
 * only the cause class and the request id, which is escaped although the proxy only keeps
 * ids of [A-Za-z0-9._-].
 */
#include "edge/pages.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

/* Longest request id put in a page. */
#define ID_MAX 128

typedef struct page_info {
    int status;
    const char *name;
    const char *message;
} page_info_t;

static const page_info_t pages[PTC_PAGE_CAUSE_COUNT] = {
    [PTC_PAGE_NOT_FOUND] = {404, "not_found", "There is no application at this address."},
    [PTC_PAGE_BAD_REQUEST] = {400, "bad_request", "The request could not be understood."},
    [PTC_PAGE_METHOD_NOT_ALLOWED] = {405, "method_not_allowed",
                                     "This method cannot be used with this application."},
    [PTC_PAGE_BODY_TOO_LARGE] = {413, "body_too_large",
                                 "The request body is larger than this application accepts."},
    [PTC_PAGE_EXPECTATION_FAILED] = {417, "expectation_failed",
                                     "The request's Expect header cannot be met."},
    [PTC_PAGE_HEADERS_TOO_LARGE] = {431, "headers_too_large",
                                    "The request's header fields are too large."},
    [PTC_PAGE_MAINTENANCE] = {503, "maintenance",
                              "This application is down for maintenance. Please try again "
                              "later."},
    [PTC_PAGE_AUTH_UNAVAILABLE] = {503, "auth_unavailable",
                                   "Sign-in for this application is not available. Please try "
                                   "again later."},
    [PTC_PAGE_NO_CONNECTOR] = {502, "no_connector",
                               "No connector is available to reach this application. Please "
                               "try again later."},
    [PTC_PAGE_CONNECTOR_ERROR] = {502, "connector_error",
                                  "The connection to the application was lost before it "
                                  "answered."},
    [PTC_PAGE_BACKEND_REFUSED] = {502, "backend_refused",
                                  "The application refused the connection or could not be "
                                  "reached."},
    [PTC_PAGE_BACKEND_DNS] = {502, "backend_dns",
                              "The application's server name could not be resolved."},
    [PTC_PAGE_BACKEND_TLS] = {502, "backend_tls",
                              "The secure connection to the application failed: its "
                              "certificate could not be verified."},
    [PTC_PAGE_BACKEND_RESET] = {502, "backend_reset",
                                "The application closed the connection or sent an invalid "
                                "response."},
    [PTC_PAGE_BACKEND_TIMEOUT] = {504, "backend_timeout",
                                  "The application did not answer in time."},
    [PTC_PAGE_SIGN_IN_FAILED] = {401, "sign_in_failed",
                                 "Sign-in did not succeed. Please go back to the application "
                                 "and try again."},
    [PTC_PAGE_NOT_ASSIGNED] = {403, "not_assigned",
                               "You are signed in, but you have not been given access to this "
                               "application. Ask its administrator for access, or sign out and "
                               "sign in as another user."},
    [PTC_PAGE_SIGNED_OUT] = {200, "signed_out", "You are signed out."},
    [PTC_PAGE_UNAUTHENTICATED] = {401, "unauthenticated",
                                  "This application requires you to sign in."},
};

static const page_info_t *info(ptc_page_cause_t cause)
{
    if ((int)cause < 0 || cause >= PTC_PAGE_CAUSE_COUNT) {
        return NULL;
    }
    return &pages[cause];
}

int ptc_page_status(ptc_page_cause_t cause)
{
    const page_info_t *p = info(cause);
    return p != NULL ? p->status : 500;
}

const char *ptc_page_cause_name(ptc_page_cause_t cause)
{
    const page_info_t *p = info(cause);
    return p != NULL ? p->name : "internal";
}

const char *ptc_page_message(ptc_page_cause_t cause)
{
    const page_info_t *p = info(cause);
    return p != NULL ? p->message : "The edge failed to handle the request.";
}

ptc_page_cause_t ptc_page_cause_from_reset(uint32_t code)
{
    switch (code) {
    case PTC_WIRE_BACKEND_REFUSED:
        return PTC_PAGE_BACKEND_REFUSED;
    case PTC_WIRE_BACKEND_DNS:
        return PTC_PAGE_BACKEND_DNS;
    case PTC_WIRE_BACKEND_TLS:
        return PTC_PAGE_BACKEND_TLS;
    case PTC_WIRE_BACKEND_TIMEOUT:
        return PTC_PAGE_BACKEND_TIMEOUT;
    case PTC_WIRE_BACKEND_RESET:
        return PTC_PAGE_BACKEND_RESET;
    default:
        return PTC_PAGE_CONNECTOR_ERROR;
    }
}

/* ---- Accept ---- */

/*
 * The quality of one Accept element ("type/sub;a=b;q=0.5"): 1000 when absent, else the
 * q parameter in thousandths (RFC 9110 §12.4.2); an unreadable q counts as 0.
 */
static int element_quality(ptc_slice_t params)
{
    ptc_slice_t rest = params;
    while (rest.len > 0) {
        const uint8_t *semi = memchr(rest.ptr, ';', rest.len);
        size_t plen = semi != NULL ? (size_t)(semi - rest.ptr) : rest.len;
        ptc_slice_t p = ptc_http_trim_ows((ptc_slice_t){rest.ptr, plen});
        rest = semi != NULL ? (ptc_slice_t){semi + 1, rest.len - plen - 1} : (ptc_slice_t){NULL, 0};
        if (p.len < 2 || (p.ptr[0] != 'q' && p.ptr[0] != 'Q') || p.ptr[1] != '=') {
            continue;
        }
        /* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
        const uint8_t *v = p.ptr + 2;
        size_t vl = p.len - 2;
        if (vl == 0 || (v[0] != '0' && v[0] != '1')) {
            return 0;
        }
        int q = (v[0] - '0') * 1000;
        if (vl > 1) {
            if (v[1] != '.' || vl > 5) {
                return 0;
            }
            int scale = 100;
            for (size_t i = 2; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') {
                    return 0;
                }
                q += (v[i] - '0') * scale;
                scale /= 10;
            }
        }
        return q > 1000 ? 0 : q;
    }
    return 1000;
}

bool ptc_page_wants_json(const ptc_http_header_t *hdrs, size_t cnt)
{
    int json_q = 0;
    int html_q = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (!ptc_slice_case_eq(hdrs[i].name, "accept")) {
            continue;
        }
        ptc_slice_t list = hdrs[i].value;
        ptc_slice_t elem;
        while (ptc_http_list_next(&list, &elem)) {
            const uint8_t *semi = memchr(elem.ptr, ';', elem.len);
            size_t tlen = semi != NULL ? (size_t)(semi - elem.ptr) : elem.len;
            ptc_slice_t type = ptc_http_trim_ows((ptc_slice_t){elem.ptr, tlen});
            ptc_slice_t params = semi != NULL ? (ptc_slice_t){semi + 1, elem.len - tlen - 1}
                                              : (ptc_slice_t){NULL, 0};
            int q = element_quality(params);
            if (ptc_slice_case_eq(type, "application/json")) {
                json_q = q > json_q ? q : json_q;
            } else if (ptc_slice_case_eq(type, "text/html")) {
                html_q = q > html_q ? q : html_q;
            }
        }
    }
    return json_q > 0 && json_q >= html_q;
}

/* ---- rendering ---- */

void ptc_page_html_escape(ptc_buf_t *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '<':
            ptc_buf_append(out, "&lt;", 4);
            break;
        case '>':
            ptc_buf_append(out, "&gt;", 4);
            break;
        case '&':
            ptc_buf_append(out, "&amp;", 5);
            break;
        case '"':
            ptc_buf_append(out, "&quot;", 6);
            break;
        case '\'':
            ptc_buf_append(out, "&#39;", 5);
            break;
        default:
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
                ptc_buf_append(out, "?", 1);
            } else {
                ptc_buf_append(out, &s[i], 1);
            }
            break;
        }
    }
}

static void put(ptc_buf_t *out, const char *s)
{
    ptc_buf_append(out, s, strlen(s));
}

static void render_html(ptc_buf_t *out, int status, const char *cause_name, const char *message,
                        const char *fixed_title, const ptc_page_extra_t *extra, const char *id,
                        size_t id_len)
{
    char title[96];
    if (fixed_title != NULL) {
        snprintf(title, sizeof(title), "%s", fixed_title);
    } else {
        snprintf(title, sizeof(title), "%d %s", status, ptc_http_reason_phrase(status));
    }
    put(out, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             "<meta name=\"robots\" content=\"noindex\"><title>");
    put(out, title);
    put(out, "</title>\n<style>body{font-family:system-ui,sans-serif;margin:4em auto;"
             "max-width:36em;padding:0 1em;color:#222}h1{font-size:1.6em}"
             "p.meta{color:#666;font-size:.9em}code{font-size:.95em}</style></head>\n<body>\n<h1>");
    put(out, title);
    put(out, "</h1>\n<p>");
    put(out, message);
    put(out, "</p>\n");
    if (extra != NULL && extra->user != NULL) {
        put(out, "<p>Signed in as <strong>");
        ptc_page_html_escape(out, extra->user, strlen(extra->user));
        put(out, "</strong>.</p>\n");
    }
    if (extra != NULL && extra->link_href != NULL) {
        put(out, "<p><a href=\"");
        ptc_page_html_escape(out, extra->link_href, strlen(extra->link_href));
        put(out, "\">");
        const char *text = extra->link_text != NULL ? extra->link_text : extra->link_href;
        ptc_page_html_escape(out, text, strlen(text));
        put(out, "</a></p>\n");
    }
    put(out, "<p class=\"meta\">Status ");
    char num[16];
    snprintf(num, sizeof(num), "%d", status);
    put(out, num);
    put(out, " &middot; cause <code>");
    put(out, cause_name);
    put(out, "</code>");
    if (id_len > 0) {
        put(out, " &middot; request id <code>");
        ptc_page_html_escape(out, id, id_len);
        put(out, "</code>");
    }
    put(out, "</p>\n</body></html>\n");
}

static void render_json(ptc_buf_t *out, int status, const char *cause_name, const char *message,
                        const ptc_page_extra_t *extra, const char *id, size_t id_len)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "error", json_string(cause_name));
    json_object_set_new(doc, "status", json_integer(status));
    json_object_set_new(doc, "message", json_string(message));
    /* An id that is not valid UTF-8 cannot be a JSON string: left out (null). */
    json_t *jid = id_len > 0 ? json_stringn(id, id_len) : NULL;
    json_object_set_new(doc, "request_id", jid != NULL ? jid : json_null());
    if (extra != NULL && extra->user != NULL) {
        json_t *u = json_string(extra->user);
        if (u != NULL) {
            json_object_set_new(doc, "user", u);
        }
    }
    if (extra != NULL && extra->link_href != NULL) {
        json_t *l = json_string(extra->link_href);
        if (l != NULL) {
            json_object_set_new(doc, "link", l);
        }
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL) {
        /* Every value is valid UTF-8 by now: only memory can be lacking (STYLE §3). */
        abort();
    }
    put(out, text);
    put(out, "\n");
    free(text);
}

const char *ptc_page_render(ptc_page_cause_t cause, const char *request_id, bool json,
                            ptc_buf_t *out)
{
    return ptc_page_render_extra(cause, request_id, json, NULL, out);
}

const char *ptc_page_render_extra(ptc_page_cause_t cause, const char *request_id, bool json,
                                  const ptc_page_extra_t *extra, ptc_buf_t *out)
{
    int status = ptc_page_status(cause);
    const char *name = ptc_page_cause_name(cause);
    const char *message = ptc_page_message(cause);
    size_t id_len = request_id != NULL ? strnlen(request_id, ID_MAX) : 0;
    if (json) {
        render_json(out, status, name, message, extra, request_id, id_len);
        return "application/json";
    }
    const char *title = NULL;
    if (cause == PTC_PAGE_MAINTENANCE) {
        title = "Down for maintenance";
    } else if (cause == PTC_PAGE_SIGNED_OUT) {
        title = "Signed out";
    } else if (cause == PTC_PAGE_NOT_ASSIGNED) {
        title = "No access to this application";
    }
    render_html(out, status, name, message, title, extra, request_id, id_len);
    return "text/html; charset=utf-8";
}
