/* SPDX-License-Identifier: MIT */
/*
 * The edge's side of connector tunnels (docs/protocol.md §6, §9-§11). A TLS connection that
 * negotiated ALPN "portico/1" is handed here by the listener. The tunnel server sends the
 * challenge (a fresh 32-byte nonce), verifies the connector's auth document (a known
 * connector, an Ed25519 signature over the §11.6 message bound to the SHA-256 of the leaf
 * certificate this connection presented), and answers welcome (tunnel id, group, liveness
 * timers, limits, tunnel endpoints), all within the handshake deadline; any failure is a
 * GOAWAY with the fixed code and debug text of §11.8, then the connection closes.
 *
 * A running tunnel is a proto/mux (edge role) fed from the TLS plaintext; its output is
 * written with back-pressure (reading stops while the TLS backlog is above its high-water
 * mark). A timer drives the mux's PING and idle timeout. Tunnels are entered in the edge's
 * registry under their connector's group; they follow the state: a deleted connector's
 * tunnels get GOAWAY(AUTH_FAILED, "revoked") and close at once, a moved connector's tunnels
 * move to the new group. On SIGTERM each tunnel sends GOAWAY(NO_ERROR, "draining") and
 * closes once its streams are done.
 *
 * Streams (opened by the edge only) are served through ptc_tunnel_open_stream() and the
 * per-stream handler below: the request path picks a tunnel with ptc_tunnel_pick(), opens a
 * stream with the REQUEST head, sends the body, and receives the RESPONSE, DATA and RESET
 * events through its handler.
 *
 * Logs: tunnel_up, tunnel_down, tunnel_handshake_failed, connector_revoked, connector_moved.
 * Depends on proto/mux, common/ (tls_stream, keys, log) and edge/ (listener, registry, state).
 */
#ifndef PTC_EDGE_TUNNEL_SRV_H
#define PTC_EDGE_TUNNEL_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"
#include "edge/edge.h"
#include "proto/hblock.h"

typedef struct ptc_tunnel ptc_tunnel_t;

/** The fixed context string of the signed message (docs/protocol.md §11.6), with its NUL. */
#define PTC_TUNNEL_AUTH_CONTEXT "portico tunnel auth v1"
#define PTC_TUNNEL_AUTH_CONTEXT_LEN 23
/** The nonce length of the challenge. */
#define PTC_TUNNEL_NONCE_LEN 32

/**
 * Builds the message a connector signs (docs/protocol.md §11.6): context, nonce, cert_hash,
 * a big-endian u16 length and the connector id. `out` needs 89 + id_len bytes (at most 153).
 * Returns the length, or 0 when the id is empty or longer than 64 bytes.
 */
size_t ptc_tunnel_auth_message(const uint8_t nonce[PTC_TUNNEL_NONCE_LEN],
                               const uint8_t cert_hash[32], const char *connector_id,
                               uint8_t out[160]);

/**
 * Starts following the state (connector deletions and moves). Call once after the state and
 * registry exist; ptc_tunnel_srv_stop() before they are freed.
 */
void ptc_tunnel_srv_start(ptc_edge_t *edge);
/** Stops following the state. Idempotent. */
void ptc_tunnel_srv_stop(ptc_edge_t *edge);

/** Takes over a connection whose TLS handshake selected ALPN portico/1 (called by the listener). */
void ptc_tunnel_srv_accept(ptc_edge_conn_t *conn);

/* ---- streams ---- */

/**
 * What the opener of a stream hears about it. `user` is the pointer given at open. Each
 * callback runs from the tunnel's own event processing. After on_reset, or after both
 * halves ended (the peer's end_stream was delivered and the opener sent its own end), the
 * stream is gone and no callback follows.
 */
typedef struct ptc_tunnel_stream_handler {
    /** The connector's RESPONSE head (borrowed for the call); `end`: no body follows. */
    void (*on_response)(void *user, const ptc_response_head_t *head, bool end);
    /**
     * Response body bytes (borrowed for the call); `end` on the last. The tunnel's credit is
     * returned at once; the stream's credit when the opener calls ptc_tunnel_stream_consumed().
     */
    void (*on_data)(void *user, ptc_slice_t data, bool end);
    /** The stream or the tunnel can take more DATA after a short send or a full backlog. */
    void (*on_writable)(void *user);
    /**
     * The stream ended abnormally: reset by the connector (`code`), refused (never processed,
     * safe to retry: `refused` true), or the tunnel went down (code CANCEL or the tunnel's
     * error). Final.
     */
    void (*on_reset)(void *user, uint32_t code, bool refused);
} ptc_tunnel_stream_handler_t;

/**
 * Picks a live tunnel of `group` that can take a new stream now (registry rule: fewest
 * streams in flight, round robin among equals; draining tunnels and tunnels at the
 * connector's max_streams are skipped). NULL when there is none.
 */
ptc_tunnel_t *ptc_tunnel_pick(ptc_edge_t *edge, const char *group);

/**
 * Opens a stream with a REQUEST (END_STREAM when `end`: no body) and returns its id. The
 * handler and user pointer are borrowed until the stream is gone. Errors (nothing sent, no
 * callback): PTC_ECLOSED (the tunnel is not running or is draining), PTC_ELIMIT (the
 * connector's max_streams or max_header_block), PTC_EHTTP (the head breaks the header-block
 * rules), PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_tunnel_open_stream(ptc_tunnel_t *t, const ptc_request_head_t *head, bool end,
                                          const ptc_tunnel_stream_handler_t *h, void *user,
                                          uint32_t *id);

/**
 * Sends request body bytes on a stream (END_STREAM when `end` and everything was taken).
 * Returns the bytes accepted (may be less than len, even 0: wait for on_writable), or
 * PTC_ENOTFOUND (no such stream), PTC_ESTATE (the stream's half already ended),
 * PTC_ECLOSED (the tunnel is gone).
 */
PTC_MUST_CHECK ssize_t ptc_tunnel_stream_send(ptc_tunnel_t *t, uint32_t id, const void *p,
                                              size_t len, bool end);

/** Returns stream credit for `n` response bytes the opener has consumed. */
PTC_MUST_CHECK int ptc_tunnel_stream_consumed(ptc_tunnel_t *t, uint32_t id, size_t n);

/**
 * Resets a stream with a wire code (CANCEL when the client went away). No callback follows.
 * Returns 0 or PTC_ENOTFOUND.
 */
PTC_MUST_CHECK int ptc_tunnel_stream_reset(ptc_tunnel_t *t, uint32_t id, uint32_t code);

/** True while the tunnel's TLS backlog is at or above its high-water mark. */
bool ptc_tunnel_is_full(const ptc_tunnel_t *t);

/** The tunnel id ("tn_...") and connector id (borrowed, valid while the tunnel lives). */
const char *ptc_tunnel_id(const ptc_tunnel_t *t);
const char *ptc_tunnel_connector(const ptc_tunnel_t *t);

/* ---- informational CONTROL documents (docs/protocol.md §4.8.1) ---- */

/**
 * Fills out[0..cap) with one running, non-draining tunnel per connector of `group` (each
 * connector's oldest such tunnel), sorted by connector id, and returns how many connectors
 * have one (which may exceed cap). The pointers are valid until the loop runs again.
 */
size_t ptc_tunnel_group_connectors(ptc_edge_t *edge, const char *group, ptc_tunnel_t **out,
                                   size_t cap);

/**
 * Sends a CONTROL document (`len` bytes of JSON text, copied) on a running tunnel. Returns 0,
 * or PTC_ECLOSED (the tunnel is not running: handshake or closing), PTC_ELIMIT (larger than
 * the connector's max_control_size), PTC_ENOMEM. CONTROL documents received from the
 * connector of types the edge knows are delivered to their modules: `probe_result` to
 * edge/diag (ptc_diag_on_probe_result).
 */
PTC_MUST_CHECK int ptc_tunnel_send_control(ptc_tunnel_t *t, const char *json, size_t len);

#endif
