/* SPDX-License-Identifier: MIT */
/*
 * "Test application": the edge's diagnostic report for one app (POST /v1/apps/{name}/test,
 * `portico app test NAME`). It checks, in order:
 *
 *   configuration  the stored settings still validate against the edge's configuration, and
 *                  the connector group exists (maintenance_mode on is noted, not a failure);
 *   certificate    for an https external URL, a certificate the edge serves covers the
 *                  external host (an uploaded one, or the default one of edge.json) and is
 *                  valid now;
 *   connectors     the app's group has live connectors (inactive ones are named);
 *   probe          each live connector of the group reaches the internal URL: the edge sends
 *                  it a `probe` CONTROL document and reads its `probe_result` (DNS, TCP, TLS
 *                  and certificate validation, HTTP status and timings; docs/protocol.md
 *                  §4.8.1), waiting at most PTC_DIAG_DEADLINE_MS; a connector that has not
 *                  answered by then is reported as "no answer".
 *
 * The report is {"app", "external_url", "internal_url", "connector_group", "ok", "dur_ms",
 * "checks": [...]}; each check is {"check", "ok", "detail"} plus "hint" (what to do) when
 * it failed, "note" for something worth knowing that is not a failure, and for probes
 * "connector" and "steps" (docs/admin-api.md). Hints speak of the app's internal host and
 * port: the report is for administrators only.
 *
 * The check builders are pure functions of their inputs (unit-tested without a loop); the
 * run (ptc_diag_start) gathers the inputs from the edge's state, registry, configuration and
 * tunnels, owns one timer, and answers once through its callback. Depends on jansson,
 * mbedTLS (reading the default certificate), libuv and edge/ (state, app, tunnel_srv).
 */
#ifndef PTC_EDGE_DIAG_H
#define PTC_EDGE_DIAG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "edge/app.h"
#include "edge/edge.h"

/** How long a test waits for its probes. */
#define PTC_DIAG_DEADLINE_MS 10000
/** The budget each connector's probe is given (timeout_ms): shorter than the deadline, so
 * that a step that hangs is still reported by the connector itself. */
#define PTC_DIAG_PROBE_TIMEOUT_MS 8000

/* ---- report building (pure) ---- */

/** A certificate the edge may serve for an external host. */
typedef struct ptc_diag_cert {
    /** "crt_..." for an uploaded certificate, NULL for the default one (edge.json tls.cert). */
    const char *id;
    /** Its DNS names, lower-case; "*.example.com" serves one label in front. */
    char *const *names;
    size_t names_cnt;
    /** Validity, ms since the epoch (0: unknown). */
    uint64_t not_before;
    uint64_t not_after;
} ptc_diag_cert_t;

/**
 * True if the certificate name `pattern` covers `host` (both lower-case): equal, or a
 * single-label wildcard ("*.apps.example.com" covers "hr.apps.example.com", but neither
 * "apps.example.com" nor "a.b.apps.example.com"), as the edge's TLS listener selects.
 */
bool ptc_diag_cert_name_matches(const char *pattern, const char *host);

/**
 * The configuration check: the app's settings re-validated with `ctx` (strict about the
 * identity provider, unlike documents read back from the store), `group_exists` for its
 * connector group. Returns a new check object.
 */
json_t *ptc_diag_check_configuration(const ptc_app_t *app, const ptc_app_ctx_t *ctx,
                                     bool group_exists);

/**
 * The certificate check for the app's external host: the certificate the edge would serve
 * (exact names first, then wildcards; certs[] in the listener's order: uploaded ones, then
 * the default) must exist and be valid at `now` (ms since the epoch). `default_domain` (may
 * be NULL) is named in the hint. An http external URL needs none. Returns a new check.
 */
json_t *ptc_diag_check_certificate(const ptc_app_t *app, const ptc_diag_cert_t *certs, size_t cnt,
                                   const char *default_domain, uint64_t now);

/**
 * The connectors check: `live` connectors of `group` have a running tunnel; idle[0..idle_cnt)
 * are the group's other registered connectors (no live tunnel). Returns a new check.
 */
json_t *ptc_diag_check_connectors(const char *group, size_t live, const char *const *idle,
                                  size_t idle_cnt);

/**
 * True for an HTTP status that shows the backend serving the app: below 400, or 401 and 403
 * (a backend that asks for its own login is working).
 */
bool ptc_diag_status_ok(int status);

/**
 * The probe check of one connector from its `probe_result` document (borrowed): its steps
 * are copied (known members only), and the check fails at the first failed step, on an
 * HTTP status that ptc_diag_status_ok() refuses, on an `error` member, or on a malformed
 * document, each with a hint for the app's internal URL. Returns a new check.
 */
json_t *ptc_diag_check_probe(const ptc_app_t *app, const char *connector_id, const json_t *result);

/**
 * The probe check of a connector that gave no result: `why` says what happened (NULL: it
 * did not answer within PTC_DIAG_DEADLINE_MS). Returns a new check.
 */
json_t *ptc_diag_check_no_answer(const char *connector_id, const char *why);

/**
 * The report: the app's URLs and group, "ok" (every check passed), "dur_ms" and the checks.
 * Takes ownership of `checks` (a JSON array). Returns a new object.
 */
json_t *ptc_diag_report(const ptc_app_t *app, json_t *checks, uint64_t dur_ms);

/**
 * Reads the DNS names (the subject CN when there are none) and the validity of the first
 * certificate of a PEM file, into *out with heap names (release with ptc_diag_cert_dispose;
 * out->id is NULL). Returns 0, or PTC_EFORMAT (a missing or unreadable file, or no PEM
 * certificate in it) with a message naming the file in err.
 */
PTC_MUST_CHECK int ptc_diag_load_cert(const char *path, ptc_diag_cert_t *out, char *err,
                                      size_t errlen);

/** Frees the names of a certificate read by ptc_diag_load_cert() and zeroes it. */
void ptc_diag_cert_dispose(ptc_diag_cert_t *c);

/* ---- running a test ---- */

typedef struct ptc_diag_run ptc_diag_run_t;

/**
 * The answer of a test: `status` 200 with the report, or 404 with an error document when the
 * app no longer exists. The callee owns `answer`.
 */
typedef void (*ptc_diag_done_cb)(void *data, int status, json_t *answer);

/**
 * Starts testing the app `name` of edge->state: runs the configuration, certificate and
 * connectors checks now, sends a probe to one tunnel of each live connector of the app's
 * group, and answers through `cb` once every probe has answered or PTC_DIAG_DEADLINE_MS has
 * passed: exactly once, never from within this call, unless cancelled. Returns 0 and *out
 * (valid until the callback runs or ptc_diag_cancel), or a libuv error (no callback).
 */
PTC_MUST_CHECK int ptc_diag_start(ptc_edge_t *edge, const char *name, ptc_diag_done_cb cb,
                                  void *data, ptc_diag_run_t **out);

/** Abandons a test: its callback will not run. Its timer closes asynchronously. */
void ptc_diag_cancel(ptc_diag_run_t *run);

/**
 * A `probe_result` document arrived from `connector_id` (docs/protocol.md §4.8.1; `doc`
 * borrowed for the call). It is matched to the test that sent the probe, by id and
 * connector; anything else is ignored (logged at debug level).
 */
void ptc_diag_on_probe_result(ptc_edge_t *edge, const char *connector_id, const json_t *doc);

#endif
