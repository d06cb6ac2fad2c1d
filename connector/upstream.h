/* SPDX-License-Identifier: MIT */
/*
 * The backend side of a stream, as pure functions (no I/O): turning a REQUEST header block
 * into the HTTP/1.1 request the connector sends (after the checks of docs/protocol.md §5.5:
 * one `host` field, no connection-specific fields except `upgrade` with the UPGRADE flag, a
 * single valid `content-length`), turning the backend's response head into RESPONSE fields
 * (hop-by-hop fields removed), and mapping a backend failure to the RESET code of §8.
 * connector/relay.c drives them with common/http_client.
 *
 * Depends on common/http, common/http_client (types only) and proto/hblock.
 */
#ifndef PTC_CONNECTOR_UPSTREAM_H
#define PTC_CONNECTOR_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "common/http_client.h"
#include "proto/hblock.h"

/** The backend request prepared from a REQUEST head. */
typedef struct ptc_upstream_req {
    /* The fields to send, in order: slices into the REQUEST head (valid as long as it is)
     * plus, for an upgrade, "connection: upgrade". Heap array: ptc_upstream_req_dispose(). */
    ptc_http_header_t *headers;
    size_t header_cnt;
    ptc_http_client_body_t body_mode;
    uint64_t content_length;
} ptc_upstream_req_t;

/**
 * Checks `head` (§5.5) and prepares the request. `end_stream`: the REQUEST carried
 * END_STREAM (no body). Returns 0, or the wire code to reset the stream with
 * (PTC_WIRE_HEADER_ERROR for a semantic violation); *out then holds nothing to free.
 */
uint32_t ptc_upstream_prepare(const ptc_request_head_t *head, bool end_stream,
                              ptc_upstream_req_t *out);

/** Frees the header array. Safe on a zeroed struct and twice. */
void ptc_upstream_req_dispose(ptc_upstream_req_t *u);

/**
 * Copies the fields of a backend response head that may travel in a RESPONSE block into
 * out[0..head->header_cnt): every end-to-end field, minus hop-by-hop ones (RFC 9110 §7.6.1
 * and those named in Connection); with `keep_upgrade` (a 101), the `upgrade` field stays.
 * Returns how many were copied; the slices point into the head.
 */
size_t ptc_upstream_response_fields(const ptc_http_head_t *head, bool keep_upgrade,
                                    ptc_proto_field_t *out);

/**
 * The RESET code for a backend failure reported by the HTTP client (§8): BACKEND_DNS,
 * BACKEND_REFUSED (connection refused or unreachable), BACKEND_TLS, BACKEND_TIMEOUT,
 * BACKEND_RESET (closed or malformed), CANCEL (the client was closed), INTERNAL_ERROR.
 */
uint32_t ptc_upstream_error_code(int err, ptc_http_client_phase_t phase);

#endif
