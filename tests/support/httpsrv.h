/* SPDX-License-Identifier: MIT */
/*
 * A small scriptable HTTP/1.1 server on 127.0.0.1 for tests of HTTP clients, over plain TCP
 * or TLS (common/tls_stream), running on the test's own loop. It parses requests with
 * common/http, keeps a record of every request it received (method, target, headers, body),
 * counts the connections it accepted, and hands each complete request to the test's
 * handler, which answers with raw bytes (so that malformed, partial, chunked or upgrading
 * answers are easy) or not at all. After a protocol switch a connection can echo what it
 * receives. Failures end the test case through ptc_test_fail(). Test support only.
 */
#ifndef PTC_TESTS_SUPPORT_HTTPSRV_H
#define PTC_TESTS_SUPPORT_HTTPSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/tls.h"

typedef struct ptc_httpsrv ptc_httpsrv_t;
typedef struct ptc_httpsrv_conn ptc_httpsrv_conn_t;

/** One request as the server received it. */
typedef struct ptc_httpsrv_req {
    char method[16];
    char target[256];
    /* The header fields, each as "name: value\n", in order (NUL-terminated). */
    char headers[4096];
    /* The body, de-chunked (heap; freed with the server). */
    uint8_t *body;
    size_t body_len;
    size_t body_cap;
    /* The request's framing as parsed. */
    ptc_http_body_t framing;
    /* 1 for the first connection the server accepted, 2 for the second... */
    unsigned conn_no;
} ptc_httpsrv_req_t;

/** A request head arrived (before its body); `req` is filled but for the body. */
typedef void (*ptc_httpsrv_head_cb)(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *req);
/** A complete request arrived. */
typedef void (*ptc_httpsrv_request_cb)(ptc_httpsrv_conn_t *c, const ptc_httpsrv_req_t *req);

typedef struct ptc_httpsrv_opts {
    ptc_tls_config_t *tls;       /* a server configuration for https, or NULL */
    ptc_httpsrv_head_cb on_head; /* may be NULL */
    ptc_httpsrv_request_cb on_request;
    void *data; /* ptc_httpsrv_data() */
} ptc_httpsrv_opts_t;

/** Starts listening on 127.0.0.1 (ephemeral port). */
ptc_httpsrv_t *ptc_httpsrv_start(uv_loop_t *loop, const ptc_httpsrv_opts_t *opts);
/** Closes the listener and every connection; the loop then frees everything. */
void ptc_httpsrv_close(ptc_httpsrv_t *s);
/** The port the server listens on. */
uint16_t ptc_httpsrv_port(const ptc_httpsrv_t *s);
/** Connections accepted so far. */
unsigned ptc_httpsrv_accepts(const ptc_httpsrv_t *s);
/** Connections currently open. */
unsigned ptc_httpsrv_open_conns(const ptc_httpsrv_t *s);
/** Requests received so far (complete ones). */
size_t ptc_httpsrv_requests(const ptc_httpsrv_t *s);
/** The i-th request received (0-based); valid until the server is closed. */
const ptc_httpsrv_req_t *ptc_httpsrv_req(const ptc_httpsrv_t *s, size_t i);
/** The `data` of the options. */
void *ptc_httpsrv_data(const ptc_httpsrv_t *s);

/** The server of a connection. */
ptc_httpsrv_t *ptc_httpsrv_conn_server(const ptc_httpsrv_conn_t *c);
/** Which accepted connection this is (1-based). */
unsigned ptc_httpsrv_conn_no(const ptc_httpsrv_conn_t *c);
/** Sends raw bytes (copied). */
void ptc_httpsrv_write(ptc_httpsrv_conn_t *c, const void *p, size_t len);
/** Sends "HTTP/1.1 <status> X\r\n" + extra_headers (each "Name: value\r\n", may be NULL) +
 *  Content-Length + "\r\n" + body. */
void ptc_httpsrv_respond(ptc_httpsrv_conn_t *c, int status, const char *extra_headers,
                         const void *body, size_t len);
/** Sends what is queued, then closes the connection (TLS: close_notify first). */
void ptc_httpsrv_end(ptc_httpsrv_conn_t *c);
/** Closes the connection now (queued bytes are dropped). */
void ptc_httpsrv_abort(ptc_httpsrv_conn_t *c);
/** From now on (including input already received after the current request), every byte
 *  the connection receives is sent back. */
void ptc_httpsrv_echo(ptc_httpsrv_conn_t *c);
/** Ends (ptc_httpsrv_end) every open connection, e.g. to empty a client's pool. */
void ptc_httpsrv_end_all(ptc_httpsrv_t *s);

#endif
