/* SPDX-License-Identifier: MIT */
/*
 * The connector's side of the tunnel handshake documents (docs/protocol.md §11): reading the
 * edge's `challenge` and `welcome`, writing the `auth` answer, and classifying any CONTROL
 * document by its `type`. Everything is pure (no I/O, no clock, no logging): the tunnel
 * (connector/tunnel_cli.c) feeds the CONTROL payloads the mux hands it and sends what this
 * module builds.
 *
 * Parsing is strict in the ways §11.2 requires (duplicate members, wrong types, integers with
 * a fraction or exponent, base64url with padding or stray bits, identifiers out of form,
 * limits out of range are all malformed) and lenient where it asks to be (unknown members
 * are ignored).
 *
 * Depends on jansson, proto/mux.h (limits), common/net (edge addresses) and
 * connector/credentials (identifiers, signature).
 */
#ifndef PTC_CONNECTOR_HANDSHAKE_H
#define PTC_CONNECTOR_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "connector/credentials.h"
#include "proto/mux.h"

/** Longest `type` member we report (longer ones are unknown types anyway). */
#define PTC_HANDSHAKE_TYPE_MAX 32
/** Longest group name in a welcome (§11.5). */
#define PTC_HANDSHAKE_GROUP_MAX 128
/** Longest agent string (§11.4). */
#define PTC_HANDSHAKE_AGENT_MAX 128
/** Longest host name sent in auth (§11.4). */
#define PTC_HANDSHAKE_HOSTNAME_MAX 255

/**
 * Reads the `type` of a CONTROL payload into type[0..cap) (cut to fit; NUL-terminated).
 * Returns 0, or PTC_EPROTO when the payload is not one JSON object with a string member
 * `type` (invalid UTF-8 or JSON, duplicate members, trailing bytes): a tunnel
 * PROTOCOL_ERROR (§4.8).
 */
PTC_MUST_CHECK int ptc_handshake_doc_type(const uint8_t *p, size_t len, char *type, size_t cap);

/** Why a challenge was refused: the fixed GOAWAY debug texts of §11.8. */
#define PTC_HANDSHAKE_MALFORMED_CHALLENGE "malformed challenge"
#define PTC_HANDSHAKE_UNSUPPORTED_VERSION "unsupported version"
#define PTC_HANDSHAKE_MALFORMED_WELCOME "malformed welcome"

/**
 * Parses a `challenge` (§11.3) into nonce[0..32). `version` is the protocol version the ALPN
 * selected: the challenge's `versions` must contain it. Returns 0, or PTC_EPROTO with *why
 * set to PTC_HANDSHAKE_MALFORMED_CHALLENGE or PTC_HANDSHAKE_UNSUPPORTED_VERSION.
 */
PTC_MUST_CHECK int ptc_handshake_parse_challenge(const uint8_t *p, size_t len, unsigned version,
                                                 uint8_t nonce[32], const char **why);

/**
 * Builds the `auth` document (§11.4) for the connector `c`: the version, its id, `agent`
 * (1..128 printable ASCII bytes), `hostname` (0..255 bytes; cut at a character boundary
 * when longer), the signature over the §11.6 message for `nonce` and `cert_hash`, and
 * `limits` (the connector's receive limits; NULL to leave them out). Returns a heap string
 * (caller frees) and its length in *len, or NULL for an invalid agent or identifier.
 */
char *ptc_handshake_build_auth(const ptc_credentials_t *c, unsigned version,
                               const uint8_t nonce[32], const uint8_t cert_hash[32],
                               const char *agent, const char *hostname,
                               const ptc_mux_limits_t *limits, size_t *len);

/** A parsed `welcome` (§11.5). Owns its edge strings: ptc_handshake_welcome_dispose(). */
typedef struct ptc_handshake_welcome {
    char tunnel_id[PTC_CREDENTIALS_ID_MAX + 1];
    char group[PTC_HANDSHAKE_GROUP_MAX + 1];
    uint32_t ping_interval_ms;
    uint32_t idle_timeout_ms;
    /* The edge's receive limits (the defaults for members it left out). */
    ptc_mux_limits_t limits;
    /* The tunnel endpoints of the group; has_edges is false when the member is absent. */
    bool has_edges;
    char **edges;
    size_t edges_cnt;
} ptc_handshake_welcome_t;

/**
 * Parses a `welcome` into *out (zeroed first). Returns 0, or PTC_EPROTO for a malformed one
 * (the GOAWAY text is PTC_HANDSHAKE_MALFORMED_WELCOME): a missing or invalid tunnel_id or
 * group, a ping interval outside 1000..600000 ms, an idle timeout not above it or over
 * 3600000 ms, a limit out of the ranges of §7.6, an edge that is not "host:port". Call
 * ptc_handshake_welcome_dispose() on success and failure alike.
 */
PTC_MUST_CHECK int ptc_handshake_parse_welcome(const uint8_t *p, size_t len,
                                               ptc_handshake_welcome_t *out);

/** Frees the edge strings; safe twice and on a zeroed struct. */
void ptc_handshake_welcome_dispose(ptc_handshake_welcome_t *w);

#endif
