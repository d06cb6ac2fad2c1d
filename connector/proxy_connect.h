/* SPDX-License-Identifier: MIT */
/*
 * Tunnels through an HTTP proxy (RFC 9110 §9.3.6): the connector asks the proxy for
 * `CONNECT host:port`, optionally with Basic credentials in Proxy-Authorization, and once the
 * proxy answers 2xx the socket is a byte pipe to the edge on which TLS starts (the bytes that
 * arrived after the proxy's answer, if any, are handed on as the start of the TLS stream).
 *
 * Two layers: pure functions (parse a proxy URL, decide whether a host bypasses the proxy,
 * format the CONNECT request, parse the proxy's answer) that do no I/O and are unit-tested,
 * and an asynchronous connect on libuv that dials the proxy, sends the request and reads the
 * answer under a deadline. Errors name the proxy's answer ("proxy 10.0.0.1:3128 answered
 * 407 Proxy Authentication Required"). The proxy credentials are secrets: they are kept
 * encoded in the struct, wiped on dispose, never logged and never put in a message.
 *
 * Depends on libuv, libsodium (base64), common/net, common/http, common/url, common/err.
 */
#ifndef PTC_CONNECTOR_PROXY_CONNECT_H
#define PTC_CONNECTOR_PROXY_CONNECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"

/** Longest proxy answer head accepted (status line and header fields). */
#define PTC_PROXY_MAX_REPLY 16384

/** A parsed proxy URL. */
typedef struct ptc_proxy {
    char host[256]; /* lower-case; an IPv6 address without brackets */
    uint16_t port;  /* explicit, else 80 */
    /* base64 of "user:password" for Proxy-Authorization: Basic (heap, wiped on dispose),
     * or NULL when the URL has no user information. */
    char *basic;
    /* "host:port" of the proxy for messages and logs (no credentials). */
    char display[300];
} ptc_proxy_t;

/**
 * Parses "http://[user[:password]@]host[:port][/]" (a bare "host:port" is read as http). The
 * user and password are percent-decoded. Refused with PTC_EFORMAT and a reason in err that
 * never quotes the credentials: another scheme (https proxies are not supported), a path,
 * query or fragment, a bad host or port. On success the caller releases *out with
 * ptc_proxy_dispose(); on error *out is zeroed.
 */
PTC_MUST_CHECK int ptc_proxy_parse(const char *url, ptc_proxy_t *out, char *err, size_t errlen);

/** Wipes the credentials and frees them; zeroes *p. Safe on a zeroed struct and twice. */
void ptc_proxy_dispose(ptc_proxy_t *p);

/**
 * The proxy URL of the environment: https_proxy, else HTTPS_PROXY; NULL when neither is set
 * or both are empty. Borrowed from the environment.
 */
const char *ptc_proxy_from_env(void);

/**
 * True if connections to `host` should not use the proxy according to `no_proxy` (the
 * NO_PROXY convention: a comma-separated list of host names, domain suffixes with or without
 * a leading dot, IP addresses, optionally ":port", or "*" for every host). Comparison is
 * case-insensitive; "example.com" matches "example.com" and "a.example.com", never
 * "badexample.com". NULL or empty `no_proxy` never bypasses.
 */
bool ptc_proxy_bypass(const char *no_proxy, const char *host, uint16_t port);

/**
 * Formats the CONNECT request for host:port into buf[0..cap):
 *
 *     CONNECT host:port HTTP/1.1
 *     Host: host:port
 *     Proxy-Authorization: Basic <...>      (only when the proxy has credentials)
 *     User-Agent: <agent>                   (only when agent is not NULL)
 *
 * with an IPv6 host in brackets. Returns the length, PTC_EFORMAT for a host that is not a
 * host name or IP address (it could otherwise inject header lines) or a port of 0, or
 * PTC_ELIMIT when cap is too small. The buffer holds the credentials: the caller wipes it.
 */
PTC_MUST_CHECK ssize_t ptc_proxy_format_connect(const ptc_proxy_t *p, const char *host,
                                                uint16_t port, const char *agent, char *buf,
                                                size_t cap);

/** The proxy's answer to CONNECT. */
typedef struct ptc_proxy_reply {
    int status;       /* 100..599 */
    char reason[128]; /* the reason phrase, escaped for display, cut to fit */
    size_t head_len;  /* bytes of the answer head; what follows belongs to the tunnel */
} ptc_proxy_reply_t;

/**
 * Parses the proxy's answer from the start of p[0..len). Returns 0 once the head is
 * complete (*out filled; for a 2xx the bytes after head_len are the start of the tunnel),
 * PTC_EINCOMPLETE when more bytes are needed, PTC_EHTTP for a malformed answer or an
 * interim (1xx) one, or PTC_ELIMIT when the head exceeds PTC_PROXY_MAX_REPLY bytes.
 */
PTC_MUST_CHECK int ptc_proxy_parse_reply(const uint8_t *p, size_t len, ptc_proxy_reply_t *out);

/* ---- asynchronous connect ---- */

typedef struct ptc_proxy_conn ptc_proxy_conn_t;

/**
 * The connect through the proxy finished. status 0: `tcp` is a connected handle (heap, as
 * common/net hands them out; the callee owns it) carrying the tunnel to host:port, and
 * `leftover` holds bytes the proxy already relayed from the far end (borrowed for the
 * callback: pass it as the tls_stream's `initial`). Otherwise `tcp` is NULL and status is
 * the dial error (PTC_EDNS, UV_ECONNREFUSED, ...), PTC_ETIMEOUT, UV_ECANCELED, PTC_EAUTH (the
 * proxy answered 407), PTC_EPROTO (another non-2xx answer) or PTC_EHTTP (a malformed
 * answer); ptc_proxy_conn_message() then says what happened. The object is freed after the
 * callback returns.
 */
typedef void (*ptc_proxy_conn_cb)(ptc_proxy_conn_t *pc, int status, uv_tcp_t *tcp,
                                  ptc_slice_t leftover);

/**
 * Dials the proxy, sends CONNECT host:port and reads the answer; `timeout_ms` (0: none)
 * bounds the whole exchange. `proxy` and `agent` are copied. Returns 0 and *out (valid until
 * the callback returns): `cb` then runs exactly once, never before this function returns.
 * Errors (no callback): UV_EINVAL (empty host, port 0), PTC_EFORMAT (bad host), libuv codes.
 */
PTC_MUST_CHECK int ptc_proxy_connect(uv_loop_t *loop, const ptc_proxy_t *proxy, const char *host,
                                     uint16_t port, const char *agent, uint64_t timeout_ms,
                                     ptc_proxy_conn_cb cb, void *data, ptc_proxy_conn_t **out);

/** The `data` given to ptc_proxy_connect(). */
void *ptc_proxy_conn_data(const ptc_proxy_conn_t *pc);

/**
 * A one-line description of the failure being reported (valid during the callback), e.g.
 * "proxy 10.0.0.1:3128 answered 403 Forbidden to CONNECT edge.example.com:443"; "" on
 * success. Never contains the credentials.
 */
const char *ptc_proxy_conn_message(const ptc_proxy_conn_t *pc);

/**
 * Abandons the connect: the callback runs with UV_ECANCELED on a later loop iteration
 * (unless it already ran or is running). Only valid until the callback returns.
 */
void ptc_proxy_conn_cancel(ptc_proxy_conn_t *pc);

#endif
