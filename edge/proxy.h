/* SPDX-License-Identifier: MIT */
/*
 * The edge's app request path (DESIGN §1, docs/apps.md): every request for a host other than
 * edge_host comes here through the edge's app hook. The proxy normalises the path, routes by
 * host and longest external path prefix, applies the app's settings (maintenance_mode,
 * robots_txt, home_page, max_body_size, hsts, backend_timeout, translate_headers,
 * translate_body, validate_backend_tls), picks a live tunnel of the app's connector group and
 * runs the exchange as one stream (docs/protocol.md §5.5): REQUEST + DATA up, RESPONSE + DATA
 * down, re-framed for the client, with back-pressure both ways (a slow client withholds only
 * its own stream's credit; a full stream pauses only its own client's body). A 101 turns the
 * exchange into a byte pipe (WebSocket). Failures before a response become error pages by
 * cause class (edge/pages.h); a stream refused before any response (or lost with its tunnel,
 * for idempotent methods) is retried once on another tunnel of the group.
 *
 * One request is one `preq` object owned by this module: it lives while the client's exchange
 * (httpd) or the stream (tunnel_srv) still needs it, and is freed when both have let go.
 *
 * Depends on edge/ (httpd, tunnel_srv, state, app, pages, translate), common/ (url, http, log)
 * and proto/hblock.
 */
#ifndef PTC_EDGE_PROXY_H
#define PTC_EDGE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "edge/app.h"
#include "edge/edge.h"
#include "edge/httpd.h"

/** Longest X-Request-Id kept from a client (longer or other ids are replaced). */
#define PTC_PROXY_REQUEST_ID_MAX 128

/** The edge's cookies (sessions, login state) are named with this prefix, optionally after
 * "__Host-" or "__Secure-"; they are never forwarded to a backend. */
#define PTC_PROXY_COOKIE_PREFIX "portico"

/** Installs the app request path as the edge's app hook (edge->app_route). */
void ptc_proxy_install(ptc_edge_t *edge);

/**
 * The app hook (ptc_edge_app_route_cb; `data` is the edge): answers or takes every request it
 * is given and returns 0 (unknown hosts get the 404 page with the request id).
 */
int ptc_proxy_route(void *data, ptc_httpd_req_t *req);

/** True for an X-Request-Id the edge keeps: 1..128 characters of [A-Za-z0-9._-]. */
bool ptc_proxy_request_id_is_valid(ptc_slice_t id);

/** True for the name of one of the edge's own cookies (see PTC_PROXY_COOKIE_PREFIX). */
bool ptc_proxy_is_edge_cookie(ptc_slice_t name);

/**
 * The backend request target for a normalised external target (`norm`: path, then '?' and
 * the query if any; path_len bytes of path; see ptc_url_normalize_target): the app's
 * internal path followed by the rest of the path after the external prefix (a path equal to
 * the prefix without its trailing '/' maps to the internal path itself), then the query with
 * every byte outside visible ASCII percent-encoded. Returns 0 and a heap string in *out (the
 * caller frees it), or PTC_ENOTFOUND when the path does not lie under the external prefix, has
 * a "." or ".." segment behind an encoded separator ("..%2Fadmin"), or the result would leave
 * the internal path (a request that must never reach the backend).
 */
PTC_MUST_CHECK int ptc_proxy_backend_target(const ptc_app_t *app, const char *norm, size_t path_len,
                                            char **out);

#endif
