/* SPDX-License-Identifier: MIT */
/*
 * The connector's side of the "test application" diagnostic (docs/protocol.md §4.8.1): the
 * edge sends a `probe` CONTROL document naming an app's internal URL, and the connector tries
 * to reach it the way a request would, one step at a time: resolve the host (dns), connect
 * over TCP trying each address (tcp), run the TLS handshake with the certificate validated
 * or not as asked (tls, https only), send a GET and wait for the final response head (http).
 * The first failing step ends the probe; every step is timed. The answer is the
 * `probe_result` document, as JSON text ready to send.
 *
 * A probe owns a timer (its start and its deadline), its resolver request, its TCP handle
 * or TLS stream and a reference to a TLS client configuration (the connector's shared one
 * that validates backends, or one of its own that skips validation); it frees itself once
 * they are all closed.
 * Probes live in an intrusive list that their owner (a tunnel) holds: a probe leaves the list
 * just before its result is delivered, and the owner cancels what is left when it goes away.
 *
 * Parsing the `probe` document and building error answers are pure functions. Depends on
 * libuv, jansson, common/ (tls, tls_stream, http, url, log) only.
 */
#ifndef PTC_CONNECTOR_PROBE_H
#define PTC_CONNECTOR_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "common/log.h"
#include "common/tls.h"

/** Longest probe id (docs/protocol.md §11.2 rule 4). */
#define PTC_PROBE_ID_MAX 64
/** Longest URL a probe accepts. */
#define PTC_PROBE_URL_MAX 8192
/** Bounds of a probe's timeout_ms. */
#define PTC_PROBE_TIMEOUT_MIN_MS 100
#define PTC_PROBE_TIMEOUT_MAX_MS 60000
/** Probes one owner (tunnel) runs at once; more are answered with an error. */
#define PTC_PROBE_MAX_IN_FLIGHT 8
/** Longest `detail` text of a step, in bytes. */
#define PTC_PROBE_DETAIL_MAX 512

typedef struct ptc_probe ptc_probe_t;

/** A parsed `probe` document. */
typedef struct ptc_probe_req {
    /** The id ("" when the document has no readable id). */
    char id[PTC_PROBE_ID_MAX + 1];
    /** The URL (heap; ptc_probe_req_dispose). */
    char *url;
    bool validate_tls;
    uint64_t timeout_ms;
} ptc_probe_req_t;

/**
 * Parses a `probe` document (len bytes of JSON, borrowed). Returns 0 and fills *out; or
 * PTC_EFORMAT with a message in err ("url: expected an http or https URL ..."): out->id is
 * then set when the id itself was valid, so that the caller can answer with an error, and ""
 * otherwise (the document is only logged). Call ptc_probe_req_dispose() in both cases.
 */
PTC_MUST_CHECK int ptc_probe_parse(const void *doc, size_t len, ptc_probe_req_t *out, char *err,
                                   size_t errlen);

/** Frees the URL and zeroes *req. Safe on a zeroed struct and twice. */
void ptc_probe_req_dispose(ptc_probe_req_t *req);

/**
 * Builds a `probe_result` for a probe that did not run: {"type":"probe_result","id":..,
 * "steps":[],"error":..}. Returns heap JSON text (caller frees) and its length in *len.
 * Aborts if memory runs out.
 */
char *ptc_probe_error_result(const char *id, const char *error, size_t *len);

/**
 * The probe's result: `doc` is the `probe_result` JSON text (len bytes, borrowed for the
 * call). Runs once per probe unless it was cancelled, never from within ptc_probe_start().
 */
typedef void (*ptc_probe_done_cb)(void *data, const char *doc, size_t len);

/** Settings for ptc_probe_start(). Everything is copied. */
typedef struct ptc_probe_opts {
    uv_loop_t *loop;
    /** The owner's logging context (ids, peer): the probe logs `probe_done` with it. */
    const ptc_log_ctx_t *log;
    const ptc_probe_req_t *req;
    /**
     * The client configuration that validates backends, shared with the relay
     * (ptc_relay_backend_tls()): used when the probe asks for validate_tls, with a reference
     * held while the probe runs. NULL: the probe loads ca_file for itself.
     */
    ptc_tls_config_t *tls;
    /**
     * PEM trust anchors for backends (connector.json's backend_ca_file), loaded when `tls`
     * is NULL and named in the `local` failure; NULL: the system bundle
     * (PTC_TLS_SYSTEM_CA_FILE).
     */
    const char *ca_file;
    ptc_probe_done_cb on_done;
    void *data;
} ptc_probe_opts_t;

/**
 * Starts a probe and links it at the head of *list (the owner's list, initially NULL). Its
 * work begins on the next loop iteration. Returns 0, or an error and nothing is started:
 * UV_EINVAL (no URL, loop or callback; an unparsable URL), PTC_ELIMIT (the list already
 * holds PTC_PROBE_MAX_IN_FLIGHT probes), libuv codes.
 */
PTC_MUST_CHECK int ptc_probe_start(const ptc_probe_opts_t *opts, ptc_probe_t **list);

/** The number of probes in the list (running ones; a delivered probe has left it). */
size_t ptc_probe_count(ptc_probe_t *const *list);

/**
 * Cancels every probe of the list (their callbacks will not run) and empties it. Their
 * handles close asynchronously: the loop must run on until they are freed.
 */
void ptc_probe_cancel_all(ptc_probe_t **list);

#endif
