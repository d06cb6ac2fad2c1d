/* SPDX-License-Identifier: MIT */
/*
 * The optional plain-HTTP listener(s) of portico-edge (edge.json `http_listen`): every request
 * is answered "301 Moved Permanently" to the same host and target on https, then the
 * connection closes. Nothing is ever served over plain HTTP (no app, no registration, no
 * HSTS, which only counts over https). The request head is parsed with common/http under the
 * edge's limits and head timeout; a malformed head gets its 4xx and the connection closes.
 * Each answer logs http_request_done.
 *
 * The listener is started and closed by edge/listener.c together with the TLS listeners.
 * Depends on libuv, common/ (net, http, url, log) and edge/edge.h.
 */
#ifndef PTC_EDGE_REDIRECT_H
#define PTC_EDGE_REDIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "edge/edge.h"

typedef struct ptc_redirect ptc_redirect_t;

/**
 * Binds every address of cfg.http_listen and starts answering. Redirects name `https_port`
 * unless it is 443 (the port of the edge's first TLS listener). Returns 0 and *out (NULL when
 * http_listen is empty), or a bind error (UV_EADDRINUSE, UV_EACCES, PTC_EFORMAT...) with a
 * message in err; nothing is left open then. Logs listener_started per address.
 */
PTC_MUST_CHECK int ptc_redirect_start(ptc_edge_t *edge, uint16_t https_port, ptc_redirect_t **out,
                                      char *err, size_t errlen);

/**
 * Stops listening and closes every connection; the object frees itself once its handles are
 * closed. NULL is ignored. Call once.
 */
void ptc_redirect_close(ptc_redirect_t *r);

/**
 * Writes the redirect target for a request: "https://" + the Host header's host (host_len
 * bytes; any port in it is dropped, IPv6 kept in brackets, lower-cased) + ":" + https_port
 * unless 443 + the origin-form `target` (target_len bytes). Returns 0, PTC_EFORMAT (no or an
 * invalid host, a target that is not origin-form visible ASCII) or PTC_ELIMIT (cap too small).
 */
PTC_MUST_CHECK int ptc_redirect_location(const char *host, size_t host_len, const char *target,
                                         size_t target_len, uint16_t https_port, char *out,
                                         size_t cap);

#endif
