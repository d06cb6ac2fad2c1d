/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the two halves of the app request path, never included outside edge/
 * (STYLE §1): proxy.c decides (routing, the app's settings, pages, the REQUEST head) and
 * proxy_stream.c runs the exchange over a tunnel stream.
 */
#ifndef PTC_EDGE_PROXY_INT_H
#define PTC_EDGE_PROXY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/url.h"
#include "edge/app.h"
#include "edge/auth.h"
#include "edge/edge.h"
#include "edge/httpd.h"
#include "edge/pages.h"
#include "proto/hblock.h"

/** Strict-Transport-Security for apps with hsts: one year, this host only. */
#define PTC_PROXY_HSTS_VALUE "max-age=31536000"

/**
 * Writes the headers every answer on an app's host carries into out[0..2): X-Request-Id
 * (`id`, borrowed), and HSTS when `app` (may be NULL) is https with hsts. Returns the count.
 */
size_t ptc_proxy_common_headers(const ptc_app_t *app, const char *id, ptc_http_header_t *out);

/**
 * Answers with the page of `cause` (HTML, or JSON when the client asks for it), with
 * Cache-Control: no-store and the common headers. The request is released.
 */
void ptc_proxy_respond_page(ptc_httpd_req_t *req, const ptc_app_t *app, const char *id,
                            ptc_page_cause_t cause);

/**
 * A REQUEST head (docs/protocol.md §5.2) for one attempt, and the storage its fields point
 * into. Fill it with ptc_proxy_up_init() and release it with ptc_proxy_up_dispose() once the
 * stream is open (the tunnel copies the block). The struct must not move in between.
 */
typedef struct ptc_proxy_up {
    ptc_request_head_t head;
    ptc_proto_field_t *fields;
    ptc_buf_t xff;
    ptc_buf_t cookie;
    char host[PTC_URL_HOST_CAP + 16];
    char clen[24];
} ptc_proxy_up_t;

/**
 * Builds the REQUEST head for `req` (borrowed; the head's slices point into it, so it must
 * outlive `u`'s use) to `app`'s backend at `target`, with request id `id`; `upgrade` sets the
 * UPGRADE flag and keeps the client's Upgrade field. `ident` (ident_cnt headers, borrowed
 * likewise; may be NULL) are the signed-in user's identity headers: they are added, and
 * client fields of the same names dropped. See proxy.c for the header rules.
 */
void ptc_proxy_up_init(ptc_proxy_up_t *u, ptc_httpd_req_t *req, const ptc_app_t *app,
                       const char *id, const char *target, bool upgrade,
                       const ptc_auth_header_t *ident, size_t ident_cnt);

/** Frees what ptc_proxy_up_init() allocated. */
void ptc_proxy_up_dispose(ptc_proxy_up_t *u);

/** Who a request goes to the backend as (an oidc app's signed-in user). */
typedef struct ptc_proxy_identity {
    ptc_auth_header_t *headers; /* the identity headers (ptc_auth_identity_headers) */
    size_t cnt;
    int64_t session_exp; /* the session's expiry (seconds since the epoch); 0: no session */
} ptc_proxy_identity_t;

/**
 * Runs the exchange of a routed request over a stream of the app's group: takes `req` (it
 * installs its handler), a reference on `app`, `target` (a heap string it frees) and the
 * headers of `who` (may be NULL; its headers are taken over and *who zeroed). An upgraded
 * exchange (WebSocket) of a session is closed when the session expires. Always ends in a
 * response, an error page, or an aborted client connection.
 */
void ptc_proxy_stream_start(ptc_edge_t *edge, ptc_httpd_req_t *req, const ptc_app_t *app,
                            const char *id, char *target, ptc_proxy_identity_t *who);

#endif
