/* SPDX-License-Identifier: MIT */
/*
 * `portico-connector register` (docs/protocol.md §12): generate the connector's Ed25519 key
 * pair, POST the registration token and the public key to the edge's
 * /.portico/v1/register over TLS (the edge's certificate validated against the system CAs, a
 * CA file, or a pin), directly with common/http_client or through an HTTP CONNECT proxy, and
 * write the credential file (0600, atomically).
 *
 * Every failure becomes one line for a human: "registration refused: the token is not known
 * (401 unknown_token)", "cannot connect to edge.example.com:443: connection refused", "the
 * edge's certificate is not trusted: ...". The token is never printed or logged.
 *
 * The command runs its own event loop and returns when done. Depends on libuv,
 * common/http_client, common/tls, common/url, common/keys, common/log and
 * connector/credentials.
 */
#ifndef PTC_CONNECTOR_REGISTER_H
#define PTC_CONNECTOR_REGISTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/log.h"

/** What `register` needs. Strings are borrowed for the call. */
typedef struct ptc_register_opts {
    const char *edge_url;         /* "https://host[:port]" */
    const char *token;            /* the registration token (secret) */
    const char *credentials_path; /* where the credential file goes */
    const char *ca_file;          /* trust anchors for the edge, or NULL: the system store */
    const char *pin_sha256;       /* base64url SPKI pin, or NULL */
    /* "http://[user:password@]host:port" of a CONNECT proxy to register through, or NULL
     * (direct). no_proxy / NO_PROXY in the environment can exempt the edge. */
    const char *proxy;
    ptc_logger_t *logger; /* registration_ok / registration_failed; may be NULL */
} ptc_register_opts_t;

/** The outcome, for the caller's message. */
typedef struct ptc_register_result {
    char connector_id[65];
    char group[129];
    size_t edges_cnt;
    /* The connector id of the credential file this registration replaced, or "". */
    char replaced_id[65];
} ptc_register_result_t;

/**
 * Registers and writes the credential file. Returns 0 (and *res), or an error with a
 * one-line message in msg[0..msglen): UV_EINVAL (a bad URL, token or pin), the error of
 * writing the credentials directory (checked before the token is spent), connection and TLS
 * errors (PTC_EDNS, UV_ECONNREFUSED, PTC_ECERT, PTC_ECERTNAME, PTC_EPIN, PTC_ETLS,
 * PTC_ETIMEOUT...), PTC_EAUTH (the edge refused the token: 401, 410), PTC_EHTTP (another
 * answer, or a malformed one).
 */
PTC_MUST_CHECK int ptc_register_run(const ptc_register_opts_t *opts, ptc_register_result_t *res,
                                    char *msg, size_t msglen);

/**
 * The message for an edge's refusal (pure; exposed for tests): status, and the `error` and
 * `message` members of its JSON answer (either may be NULL). Writes e.g. "registration
 * refused: the token is expired (410 token_expired)" into msg.
 */
void ptc_register_describe_refusal(int status, const char *code, const char *message, char *msg,
                                   size_t msglen);

#endif
