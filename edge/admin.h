/* SPDX-License-Identifier: MIT */
/*
 * The edge's admin API server (docs/admin-api.md): HTTP/1.1 + JSON on a unix socket (mode
 * from edge.json, default 0660) and optionally on a loopback TCP address that requires
 * `Authorization: Bearer <token>` (the token read from admin.token_file, compared in constant
 * time). Every change goes through edge/state (validated, persisted, observers notified so
 * it applies live); connector live status comes from edge/registry. Each change is logged
 * as `admin_change` with the unix peer's uid (SO_PEERCRED), never with a body.
 *
 * The server owns its listening handles and its connections and frees itself after the last
 * of them is closed (STYLE §5). It borrows the ptc_edge_t (loop, logger, config, state,
 * registry) for its whole life. Depends on libuv, jansson, common/ and edge/state, registry.
 */
#ifndef PTC_EDGE_ADMIN_H
#define PTC_EDGE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "edge/edge.h"

typedef struct ptc_admin ptc_admin_t;

/** Request bodies larger than this are refused with 413. */
#define PTC_ADMIN_MAX_BODY (1024u * 1024u)
/** Admin connections open at once; more are closed at accept. */
#define PTC_ADMIN_MAX_CONNS 64
/** A request must arrive whole (head and body) within this many ms of its first byte. */
#define PTC_ADMIN_REQUEST_TIMEOUT_MS 30000
/** An idle keep-alive connection (or one whose peer stopped reading) is closed after this. */
#define PTC_ADMIN_IDLE_TIMEOUT_MS 60000

/**
 * Starts the admin API of `edge` (borrowed until the server is freed): creates the unix
 * socket's parent directory when missing, removes a stale socket file (one nobody listens
 * on; a live one is refused), binds and chmods the socket to admin.socket_mode, and, when
 * admin.tcp is set, listens there too after checking that the address is loopback and that
 * admin.token_file is a non-empty regular file readable by its owner only. Sets edge->admin.
 *
 * Returns 0, or an error with a one-line message in err: UV_EEXIST / UV_EADDRINUSE (socket in
 * use), PTC_ECONFIG (a non-loopback TCP address, a missing, empty or group/world-readable
 * token file), or a libuv code of mkdir, bind or listen. On error edge->admin is NULL, no
 * socket file is left, and a listener already opened is being closed (its memory is released
 * in its close callback, so the caller runs the loop before closing it, as at any shutdown).
 * Configuration refusals are found before any handle is opened. Calling it while already
 * started returns UV_EALREADY.
 */
PTC_MUST_CHECK int ptc_admin_start(ptc_edge_t *edge, char *err, size_t errlen);

/**
 * Stops the server (idempotent; NULL edge->admin is a no-op): closes the listeners and every
 * admin connection at once (requests in progress get no answer), removes the socket file and
 * sets edge->admin to NULL. Memory is released in the close callbacks, so the caller keeps
 * running the loop until it is empty; the edge's state and registry are not touched after
 * this returns.
 */
void ptc_admin_stop(ptc_edge_t *edge);

#endif
