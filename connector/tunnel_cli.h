/* SPDX-License-Identifier: MIT */
/*
 * The tunnel client: everything `portico-connector run` does on the wire. A ptc_connector_t
 * (one per event loop) keeps `tunnels_per_edge` tunnel slots for each edge address (from
 * connector.json's "edges", else the credential file, else the registration URL) and adds
 * and drops edges as the edge's `welcome` lists them. Each slot dials (directly or through
 * the HTTP CONNECT proxy), starts TLS with ALPN portico/1 and the edge's certificate
 * validated (system CAs, the configured CA file, or the credential file's pin), runs the
 * handshake of docs/protocol.md §11, then multiplexes streams with proto/mux in the
 * connector role, with liveness driven by the mux's timers. A slot whose tunnel ends dials
 * again after an exponential backoff with full jitter (0.5 s doubling to 30 s, reset once a
 * tunnel stayed up 60 s; every 0.25 to 1.25 s for two minutes after the edge's
 * GOAWAY(NO_ERROR), so a restarted edge gets its tunnels back at once; at least 60 s,
 * growing to 10 min, after the edge refused the connector's identity).
 *
 * Each REQUEST is handed to connector/relay (ptc_relay_open); the relay answers through the
 * ptc_tunnel_* stream functions below. Draining (SIGTERM) sends GOAWAY(NO_ERROR) on every
 * tunnel, lets the streams finish within the drain timeout, then cancels what is left and
 * closes. Every tunnel state change rewrites the status file (connector/status.h).
 *
 * Lifetime (STYLE §5): the connector owns three timers and its tunnels; each tunnel owns a
 * timer, its dial (or proxy connect) while it runs, and its TLS stream. Closing is
 * asynchronous: the connector's on_done callback runs once every handle is closed, after
 * which the loop has nothing left of ours.
 *
 * Depends on libuv, common/ (log, net, tls, tls_stream, keys, url), proto/mux and
 * connector/ (credentials, handshake, proxy_connect, status, relay).
 */
#ifndef PTC_CONNECTOR_TUNNEL_CLI_H
#define PTC_CONNECTOR_TUNNEL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/err.h"
#include "common/log.h"
#include "connector/connector_config.h"
#include "connector/credentials.h"
#include "proto/hblock.h"

typedef struct ptc_connector ptc_connector_t;
typedef struct ptc_tunnel ptc_tunnel_t;
typedef struct ptc_relay ptc_relay_t;
typedef struct ptc_relay_stream ptc_relay_stream_t;

/** The agent string sent to the edge ("portico-connector/<version>"). */
const char *ptc_connector_agent(void);

/** Runs once the connector is closed (every handle closed); `data` from the options. */
typedef void (*ptc_connector_done_cb)(void *data);

/** Settings for ptc_connector_start(). Every pointer is borrowed until on_done has run. */
typedef struct ptc_connector_opts {
    uv_loop_t *loop;
    ptc_logger_t *logger;
    const ptc_connector_config_t *cfg;
    /* The identity. Its `edges` are updated from the edge's welcome and saved back to
     * credentials_path (unless the configuration overrides the edges). */
    ptc_credentials_t *creds;
    const char *credentials_path;
    /* Where REQUESTs go (connector/relay.h). */
    ptc_relay_t *relay;
    ptc_connector_done_cb on_done;
    void *data;
} ptc_connector_opts_t;

/**
 * Starts the connector: makes the TLS configuration, logs connector_started, writes the
 * status file and dials every slot at once. Returns 0 and *out, or an error with a one-line
 * message in err (no callback runs): PTC_ECONFIG (no edge address known, a bad proxy URL),
 * TLS configuration errors (an unreadable CA file: UV_ENOENT, PTC_EFORMAT...), libuv codes.
 */
PTC_MUST_CHECK int ptc_connector_start(const ptc_connector_opts_t *opts, ptc_connector_t **out,
                                       char *err, size_t errlen);

/**
 * Drains (the SIGTERM path): no more dialing; GOAWAY(NO_ERROR) on every running tunnel,
 * tunnels still connecting are closed; each tunnel closes once its streams are done; when
 * drain_timeout passes, the remaining streams are reset with CANCEL and the tunnels close.
 * Logs drain_started, then drain_done when the last tunnel is gone, then the connector
 * closes itself (on_done). A second call skips the remaining wait (as if the timeout
 * passed). Idempotent otherwise.
 */
void ptc_connector_drain(ptc_connector_t *c);

/* ---- the stream API the relay uses ---- */

/** The tunnel's logging context (ids and peer), for the relay's per-stream contexts. */
const ptc_log_ctx_t *ptc_tunnel_log(const ptc_tunnel_t *t);

/** The tunnel id the edge assigned ("" before the welcome). */
const char *ptc_tunnel_id(const ptc_tunnel_t *t);

/**
 * The relay streams of this tunnel: an intrusive list head that connector/relay.c keeps
 * (the tunnel only reads it, to know whether streams remain). Valid as long as the tunnel.
 */
ptc_relay_stream_t **ptc_tunnel_relay_streams(ptc_tunnel_t *t);

/** Attaches the relay's object to stream id (reported back in the stream callbacks). */
PTC_MUST_CHECK int ptc_tunnel_set_stream(ptc_tunnel_t *t, uint32_t id, ptc_relay_stream_t *s);

/**
 * Sends the RESPONSE head of stream id (END_STREAM when end). Returns 0 or a proto error
 * (PTC_PROTO_ESTATE, PTC_PROTO_ENOSTREAM, PTC_PROTO_ECLOSED, PTC_PROTO_ELIMIT,
 * PTC_PROTO_EHEADER) or PTC_ECLOSED when the tunnel is closing.
 */
PTC_MUST_CHECK int ptc_tunnel_respond(ptc_tunnel_t *t, uint32_t id, const ptc_response_head_t *head,
                                      bool end);

/**
 * Sends up to len bytes of stream id's body: returns the bytes accepted (the flow-control
 * windows allow; 0 means wait for ptc_relay_on_writable), or an error as for respond.
 */
PTC_MUST_CHECK ssize_t ptc_tunnel_send_data(ptc_tunnel_t *t, uint32_t id, const uint8_t *p,
                                            size_t len, bool end);

/** Resets stream id with a wire code; the relay hears nothing more of it. */
void ptc_tunnel_reset(ptc_tunnel_t *t, uint32_t id, uint32_t code);

/** The relay consumed n bytes of stream id's request body (returns stream credit). */
void ptc_tunnel_consumed(ptc_tunnel_t *t, uint32_t id, size_t n);

/** True while the tunnel's write backlog is at its high-water mark: stop producing until
 * ptc_relay_tunnel_drained(). */
bool ptc_tunnel_is_full(const ptc_tunnel_t *t);

/** The relay finished with a stream (it left the list): the tunnel may now finish a drain. */
void ptc_tunnel_stream_done(ptc_tunnel_t *t);

#endif
