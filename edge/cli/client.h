/* SPDX-License-Identifier: MIT */
/*
 * The `portico` CLI's blocking client of the edge's admin API (docs/admin-api.md): one
 * HTTP/1.1 request per connection over the edge's unix socket, or over loopback TCP with a
 * bearer token. The response is read with common/http's parser and its body decoded with
 * jansson. Every failure leaves a one-line message for the user in the client's error buffer
 * ("cannot reach the edge's admin socket at PATH: ..."). Depends on common/ only.
 */
#ifndef PTC_EDGE_CLI_CLIENT_H
#define PTC_EDGE_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

/** Where the edge listens when neither --socket nor PORTICO_ADMIN_SOCKET says otherwise. */
#define PTC_CLIENT_DEFAULT_SOCKET "/run/portico/admin.sock"

/** The largest response body the client accepts. */
#define PTC_CLIENT_MAX_BODY (16u * 1024 * 1024)

/** The longest token read from a token file. */
#define PTC_CLIENT_MAX_TOKEN 1024

typedef struct ptc_client {
    /** Unix socket path (used when `url` is NULL). Borrowed. */
    const char *socket_path;
    /** "http://host:port" of the TCP admin listener, or NULL. Borrowed. */
    const char *url;
    /** Seconds to wait for connect, each write and each read. */
    int timeout_s;
    /* private */
    const char *_token_file;
    char _host[256];
    char _port[8];
    char _token[PTC_CLIENT_MAX_TOKEN + 1];
    char _err[512];
} ptc_client_t;

/** One response. Free with ptc_client_response_dispose(). */
typedef struct ptc_client_response {
    int status;
    /** The body as received, NUL-terminated (empty for 204). Owned. */
    char *raw;
    size_t raw_len;
    /** The decoded JSON body, or NULL when the body is empty. Owned (a reference). */
    json_t *json;
} ptc_client_response_t;

/**
 * Prepares a client for the unix socket at `socket_path`, or for `url` (http://host:port,
 * optional trailing "/") with the bearer token in `token_file` (read at the first request:
 * its first line, at most PTC_CLIENT_MAX_TOKEN bytes, surrounding white space dropped). The
 * strings are borrowed for the client's life. Does no I/O. Returns 0, or PTC_EFORMAT (a bad
 * URL, or a URL without a token file: usage errors) with the message in ptc_client_error().
 */
PTC_MUST_CHECK int ptc_client_init(ptc_client_t *c, const char *socket_path, const char *url,
                                   const char *token_file);

/**
 * Sends `method` `path` (already percent-encoded) with `body` as JSON (borrowed; NULL sends
 * no body) and reads the whole response into *resp (caller disposes it, also on error).
 * Returns 0 for any HTTP status (the caller looks at resp->status), or a negative code when
 * the exchange failed (token file unreadable or empty: a negative errno or PTC_EAUTH;
 * connect, I/O, timeout, malformed response, a body that is not JSON), with the message in
 * ptc_client_error().
 */
PTC_MUST_CHECK int ptc_client_request(ptc_client_t *c, const char *method, const char *path,
                                      json_t *body, ptc_client_response_t *resp);

/** Frees the response's body and JSON (safe on a zeroed or already disposed response). */
void ptc_client_response_dispose(ptc_client_response_t *resp);

/** The message of the last failure (static until the next call on the client). */
const char *ptc_client_error(const ptc_client_t *c);

/** Wipes the token (call before exiting). */
void ptc_client_dispose(ptc_client_t *c);

/**
 * Appends `s` to `out` (capacity `cap`, NUL-terminated) percent-encoded as one path segment
 * (everything but A-Z a-z 0-9 - . _ ~ is encoded). Returns 0, or PTC_ELIMIT if it does not
 * fit.
 */
PTC_MUST_CHECK int ptc_client_path_append(char *out, size_t cap, const char *s);

#endif
