/* SPDX-License-Identifier: MIT */
/*
 * Connector registration over HTTPS (docs/protocol.md §12): POST /.portico/v1/register on
 * the edge's own host. The body (JSON, at most 8 KiB) carries a registration token, the
 * connector's Ed25519 public key, its host name and agent; the token is redeemed through
 * edge/state (which creates the connector record) and the answer is 201 with the connector
 * id, its group and the tunnel endpoints, or one of the errors of §12.3 as
 * {"error","message"} with Cache-Control: no-store. Failed attempts are limited per client
 * address (429 rate_limited). The token never appears in logs or messages.
 *
 * Depends on edge/httpd, edge/state, jansson and common/keys.
 */
#ifndef PTC_EDGE_REGISTER_H
#define PTC_EDGE_REGISTER_H

#include "edge/edge.h"
#include "edge/httpd.h"

/** The registration path on edge_host. */
#define PTC_REGISTER_PATH "/.portico/v1/register"
/** The largest request body accepted (413 above). */
#define PTC_REGISTER_MAX_BODY 8192
/** Failed attempts allowed per client address and window before 429. */
#define PTC_REGISTER_MAX_FAILURES 10
#define PTC_REGISTER_WINDOW_MS 60000

/**
 * Serves one request for PTC_REGISTER_PATH (any method: others than POST get 405). Takes
 * the request: it installs its handler or answers at once.
 */
void ptc_register_handle(ptc_httpd_req_t *req);

/** Frees the per-edge attempt counters (at shutdown). */
void ptc_register_free(ptc_edge_t *edge);

#endif
