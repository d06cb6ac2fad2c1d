/* SPDX-License-Identifier: MIT */
/*
 * Shared between edge/admin.c (the HTTP server: sockets, parsing, auth, timeouts, logging)
 * and edge/admin_routes.c (the routes: matching, JSON in and out, calls into edge/state and
 * edge/registry). The split keeps the routes free of I/O: a request is a method, a target
 * and an optional parsed body, and the answer is a status and an optional JSON document, so
 * the routes are unit-tested without a socket. Never included outside edge/admin*.c and
 * their tests.
 */
#ifndef PTC_EDGE_ADMIN_INT_H
#define PTC_EDGE_ADMIN_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edge/edge.h"

/** Longest decoded {id} path segment (group names, app names and ids are far shorter). */
#define PTC_ADMIN_ID_MAX 256

/** Delivers the answer of a deferred request: the callee takes `answer` (may be NULL for 204). */
typedef void (*ptc_admin_answer_cb)(void *data, int status, json_t *answer);

/**
 * Work whose answer comes later (POST /v1/apps/{name}/test waits for the connectors' probes).
 * A route sets ptc_admin_req_t.deferred instead of an answer; admin.c then calls start() with
 * the request's decoded id, holds the connection's later requests back, and sends what `cb`
 * delivers. start() returns a handle and calls cb exactly once, never from within start(),
 * unless cancel(handle) ran first (the connection closed); it returns NULL when the work
 * could not begin (admin.c answers 500).
 */
typedef struct ptc_admin_deferred {
    void *(*start)(ptc_edge_t *edge, const char *id, ptc_admin_answer_cb cb, void *data);
    void (*cancel)(void *handle);
} ptc_admin_deferred_t;

/** One admin request and its answer. */
typedef struct ptc_admin_req {
    /* ---- in (borrowed for the call) ---- */
    const char *method; /* NUL-terminated, as received */
    const char *target; /* NUL-terminated request target, as received */
    /** The request body parsed as JSON (any type), or NULL when there was none. A body that
     *  is not JSON is refused by admin.c before routing. Borrowed. */
    json_t *body;
    /** Wall-clock milliseconds since the epoch. */
    uint64_t now_ms;

    /* ---- out ---- */
    /** HTTP status (200, 201, 204, 400, 404, 405, 409, 500). */
    int status;
    /** The answer document (owned; the caller decrefs it), NULL for 204. Errors are
     *  {"error": code, "message": text}. */
    json_t *answer;
    /** For 405: the allowed methods ("GET, POST"), static storage. */
    const char *allow;
    /** Set (static storage) by a route whose answer comes later; status and answer are then
     *  left empty. */
    const ptc_admin_deferred_t *deferred;
    /** True for every method but GET and HEAD (whatever the answer): admin.c logs these as
     *  admin_change. */
    bool is_change;
    /** For the log: the resource ("group", "token", "connector", "app", "cert", "status"),
     *  static storage or NULL when no route matched. */
    const char *resource;
    /** For the log: the record's id (the decoded path segment, or the new record's id). */
    char id[PTC_ADMIN_ID_MAX + 1];
    /** When a store write failed (500): the state module's message, for the
     *  state_write_failed log line. Empty otherwise. */
    char store_err[512];
} ptc_admin_req_t;

/**
 * Routes and serves one request against edge->state and edge->registry (both borrowed):
 * fills status, answer, allow, is_change, resource, id, or `deferred` for a request answered
 * later. Never fails (errors are answers). The caller initializes the "out" fields to zero
 * first.
 */
void ptc_admin_routes_handle(ptc_edge_t *edge, ptc_admin_req_t *req);

/**
 * An error document {"error": code, "message": message} (a new reference; aborts if memory
 * runs out). `code` is a stable snake_case string (bad_request, not_found, ...).
 */
json_t *ptc_admin_routes_error(const char *code, const char *message);

/** The stable error code for an HTTP status ("bad_request" for 400, ...). Never NULL. */
const char *ptc_admin_routes_error_code(int status);

#endif
