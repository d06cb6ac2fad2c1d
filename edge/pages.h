/* SPDX-License-Identifier: MIT */
/*
 * The pages the edge answers itself on the app request path: error pages by cause class
 * (404 nothing published here, 4xx input errors, 401/403 sign-in refusals, 502 no live
 * connector or a backend failure, 503 maintenance or sign-in unavailable, 504 backend
 * timeout) and the "signed out" page, as HTML for browsers or JSON for clients that ask for
 * it, and the robots.txt body. Every error page names its status, its cause class (a stable
 * snake_case name such as "backend_refused", the same one the access log and docs/apps.md
 * use) and the request id, so that a user's screenshot leads to the log line; it never
 * names an internal host, address or port, which anonymous users must not learn.
 *
 * Pure: builds bodies into buffers, does no I/O and keeps no state. Depends on common/buf,
 * common/http (Accept parsing, reason phrases), jansson, and the wire codes of proto/proto.h.
 */
#ifndef PTC_EDGE_PAGES_H
#define PTC_EDGE_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/http.h"

/** Why the edge answers a request itself. The status of each is ptc_page_status(). */
typedef enum ptc_page_cause {
    PTC_PAGE_NOT_FOUND = 0,      /* 404: no app at this host and path, or a path outside it */
    PTC_PAGE_BAD_REQUEST,        /* 400: a target the edge cannot route or forward */
    PTC_PAGE_METHOD_NOT_ALLOWED, /* 405: CONNECT to an app */
    PTC_PAGE_BODY_TOO_LARGE,     /* 413: over the app's max_body_size */
    PTC_PAGE_EXPECTATION_FAILED, /* 417: an Expect other than 100-continue */
    PTC_PAGE_HEADERS_TOO_LARGE,  /* 431: the head does not fit a tunnel header block */
    PTC_PAGE_MAINTENANCE,        /* 503: the app is in maintenance mode */
    PTC_PAGE_AUTH_UNAVAILABLE,   /* 503: the app's pre-authentication is not available */
    PTC_PAGE_NO_CONNECTOR,       /* 502: no live connector in the app's group */
    PTC_PAGE_CONNECTOR_ERROR,    /* 502: the tunnel or the connector failed the request */
    PTC_PAGE_BACKEND_REFUSED,    /* 502: connection refused or unreachable (BACKEND_REFUSED) */
    PTC_PAGE_BACKEND_DNS,        /* 502: the backend name did not resolve (BACKEND_DNS) */
    PTC_PAGE_BACKEND_TLS,        /* 502: backend TLS or certificate failure (BACKEND_TLS) */
    PTC_PAGE_BACKEND_RESET,      /* 502: the backend closed or answered garbage (BACKEND_RESET) */
    PTC_PAGE_BACKEND_TIMEOUT,    /* 504: no response head in time (BACKEND_TIMEOUT) */
    PTC_PAGE_SIGN_IN_FAILED,     /* 401: the identity provider's answer was refused */
    PTC_PAGE_NOT_ASSIGNED,       /* 403: signed in, but not assigned to the app */
    PTC_PAGE_SIGNED_OUT,         /* 200: the session was cleared (/.portico/logout) */
    PTC_PAGE_UNAUTHENTICATED,    /* 401: no session, for a request that cannot be redirected */
    PTC_PAGE_CAUSE_COUNT
} ptc_page_cause_t;

/** The body of robots.txt for apps with robots_txt (the default): keep every crawler out. */
#define PTC_PAGE_ROBOTS_TXT "User-agent: *\nDisallow: /\n"

/** The HTTP status of a cause (404, 502, ...); 500 for a value outside the enum. */
int ptc_page_status(ptc_page_cause_t cause);

/** The cause class: a stable snake_case name ("no_connector"); "internal" outside the enum. */
const char *ptc_page_cause_name(ptc_page_cause_t cause);

/** One sentence for the user, free of internal names ("The application did not answer..."). */
const char *ptc_page_message(ptc_page_cause_t cause);

/**
 * The cause for a RESET received before any RESPONSE (docs/protocol.md §8 note 1): the five
 * backend codes map to their own class (BACKEND_TIMEOUT to the 504 one); every other code,
 * known or not, is a connector error.
 */
ptc_page_cause_t ptc_page_cause_from_reset(uint32_t code);

/**
 * True if the client asked for JSON: its Accept header(s) (hdrs[0..cnt), borrowed) list
 * application/json with a non-zero quality that is at least that of text/html (absent media
 * types count as quality 0; wildcards are ignored, so a bare wildcard gets HTML). No Accept: false.
 */
bool ptc_page_wants_json(const ptc_http_header_t *hdrs, size_t cnt);

/**
 * Appends the page for `cause` to `out`: an HTML document, or with `json` one JSON object
 * {"error": <cause class>, "status": <status>, "message": <sentence>, "request_id": <id>}
 * followed by a newline. `request_id` (NUL-terminated, may be NULL for none) is escaped for
 * either format. Returns the Content-Type to send with it ("text/html; charset=utf-8" or
 * "application/json"). Aborts if memory runs out (the page is small and bounded: the id is
 * cut to 128 bytes).
 */
const char *ptc_page_render(ptc_page_cause_t cause, const char *request_id, bool json,
                            ptc_buf_t *out);

/** What a page may say beyond its cause: the signed-in user and one link (all may be NULL). */
typedef struct ptc_page_extra {
    const char *user;      /* the user's name and/or email, as the identity provider said */
    const char *link_href; /* a path on the same host ("/.portico/logout") */
    const char *link_text; /* the link's text ("Sign out") */
} ptc_page_extra_t;

/**
 * As ptc_page_render(), with `extra` (borrowed, may be NULL): the HTML names the user
 * ("Signed in as ...") and shows the link; the JSON object gains "user" and "link" members.
 * Every string is escaped for its format; a user string that is not valid UTF-8 is left out
 * of the JSON form.
 */
const char *ptc_page_render_extra(ptc_page_cause_t cause, const char *request_id, bool json,
                                  const ptc_page_extra_t *extra, ptc_buf_t *out);

/** Appends `len` bytes of `s` to `out` with HTML's special characters escaped and control
 * characters replaced by '?' (for pages built elsewhere, such as the portal). */
void ptc_page_html_escape(ptc_buf_t *out, const char *s, size_t len);

#endif
