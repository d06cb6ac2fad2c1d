/* SPDX-License-Identifier: MIT */
/*
 * The relay between tunnel streams and backends: the tunnel (connector/tunnel_cli.c) hands
 * every REQUEST to ptc_relay_open() and forwards the stream's later events (request body,
 * reset, flow-control credit); the relay performs the request against the backend named in
 * the header block (docs/protocol.md §5.2) and answers through the ptc_tunnel_* stream
 * functions: RESPONSE, then DATA with END_STREAM, or RESET with a backend error code (§8).
 *
 * One ptc_relay_t per event loop holds what the streams share (the backend HTTP client, the
 * TLS configuration that validates backends, and the default timeout). Streams live in an intrusive
 * list per tunnel (ptc_tunnel_relay_streams()), so the tunnel can tell whether work remains and the
 * relay can reach every stream of a tunnel that stalls, drains or goes away.
 *
 * Depends on libuv, common/http_client, common/tls, common/log and connector/tunnel_cli.
 */
#ifndef PTC_CONNECTOR_RELAY_H
#define PTC_CONNECTOR_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "common/log.h"
#include "common/tls.h"
#include "connector/tunnel_cli.h"
#include "proto/hblock.h"

/** Settings for ptc_relay_new(). */
typedef struct ptc_relay_opts {
    uv_loop_t *loop;
    ptc_logger_t *logger;
    /* The backend deadline (connect, then the response head) when a REQUEST says 0. */
    uint64_t backend_timeout_ms;
    /* The client configuration that validates https backends of apps with
     * validate_backend_tls (connector.json's backend_ca_file, else the system bundle; see
     * ptc_connector_config_backend_tls()). A reference is taken. NULL: the HTTP client loads
     * the system bundle on the first such request. */
    ptc_tls_config_t *backend_tls;
} ptc_relay_opts_t;

/** Makes the relay. Returns 0 and *out, or a libuv/common error (nothing to close). */
PTC_MUST_CHECK int ptc_relay_new(const ptc_relay_opts_t *opts, ptc_relay_t **out);

/**
 * The configuration that validates backends (ptc_relay_opts_t.backend_tls; may be NULL),
 * borrowed for as long as the relay: the app-test probes use it, so that they trust exactly
 * what the relayed requests trust.
 */
ptc_tls_config_t *ptc_relay_backend_tls(const ptc_relay_t *r);

/** Runs once the relay is closed and freed. */
typedef void (*ptc_relay_close_cb)(void *data);

/**
 * Closes the relay once every tunnel is gone (its backend connections are closed
 * asynchronously); `cb` (may be NULL) runs with `data` when it is freed.
 */
void ptc_relay_close(ptc_relay_t *r, ptc_relay_close_cb cb, void *data);

/**
 * A REQUEST opened stream `id` on tunnel `t`; `head` is borrowed for the call, `end_stream`
 * says the request has no body. Returns 0 when the relay took the stream (it then attaches
 * itself with ptc_tunnel_set_stream() and joins the tunnel's list), or a wire error code
 * (for example PTC_WIRE_REFUSED_STREAM) with which the tunnel resets the stream.
 */
uint32_t ptc_relay_open(ptc_relay_t *r, ptc_tunnel_t *t, uint32_t id,
                        const ptc_request_head_t *head, bool end_stream);

/** Request body bytes for the stream (len may be 0 with end). Borrowed for the call. */
void ptc_relay_on_data(ptc_relay_stream_t *s, const uint8_t *p, size_t len, bool end);

/** The stream was reset (by the edge, or by the mux for a stream rule): stop its work. */
void ptc_relay_on_reset(ptc_relay_stream_t *s, uint32_t code);

/** The stream's send window opened: send what is waiting. */
void ptc_relay_on_writable(ptc_relay_stream_t *s);

/** The tunnel's send window, or its write backlog, opened: every stream may send again. */
void ptc_relay_tunnel_writable(ptc_tunnel_t *t);

/** Resets every stream of the tunnel with `code` (drain deadline) and ends their work. */
void ptc_relay_tunnel_cancel(ptc_tunnel_t *t, uint32_t code);

/**
 * The tunnel is going away: end every stream's backend work without touching the tunnel
 * again (its frames can no longer be sent). The list is empty afterwards.
 */
void ptc_relay_tunnel_closed(ptc_tunnel_t *t);

#endif
