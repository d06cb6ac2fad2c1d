/* SPDX-License-Identifier: MIT */
/*
 * Small networking helpers over libuv: "host:port" parsing, address formatting for logs, a
 * TCP listener, accepting with TCP_NODELAY, and an asynchronous dial (resolve, try each
 * address in turn, overall deadline, cancel).
 *
 * TCP handles handed out here are heap-allocated (malloc) and change owner: the receiver
 * sets handle->data, and eventually closes the handle with a close callback that frees it
 * (ptc_net_free_handle_cb does only that). common/tls_stream takes such handles over.
 *
 * Depends on libuv and common/err only.
 */
#ifndef PTC_COMMON_NET_H
#define PTC_COMMON_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "common/err.h"

/** Room for any formatted address: "[" IPv6 "]:" port, and the NUL. */
#define PTC_NET_ADDRSTRLEN 64

/** Longest host name accepted in a spec (DNS allows 253). */
#define PTC_NET_HOST_MAX 253

/** A parsed "host:port". `host` is "" for specs that name only a port. */
typedef struct ptc_net_hostport {
    char host[PTC_NET_HOST_MAX + 1];
    uint16_t port;
} ptc_net_hostport_t;

/**
 * Parses "host:port", "[v6]:port", ":port" or "port" (host "" then). The port is decimal,
 * 0 to 65535 (0 asks a listener for an ephemeral port). A bare IPv6 address without
 * brackets is refused as ambiguous. Returns 0 or PTC_EFORMAT.
 */
PTC_MUST_CHECK int ptc_net_parse_hostport(const char *spec, ptc_net_hostport_t *out);

/**
 * Formats an AF_INET or AF_INET6 address as "1.2.3.4:80" or "[::1]:80" into buf (at least
 * PTC_NET_ADDRSTRLEN bytes is always enough). Returns 0, UV_EAFNOSUPPORT or UV_ENOSPC.
 */
PTC_MUST_CHECK int ptc_net_format_addr(const struct sockaddr *sa, char *buf, size_t cap);
/** Formats the peer address of a connected TCP handle (as ptc_net_format_addr). */
PTC_MUST_CHECK int ptc_net_peer_name(const uv_tcp_t *tcp, char *buf, size_t cap);
/** Formats the local address of a bound TCP handle (as ptc_net_format_addr). */
PTC_MUST_CHECK int ptc_net_sock_name(const uv_tcp_t *tcp, char *buf, size_t cap);

/** A uv_close_cb that frees the handle (for handles from this module). */
void ptc_net_free_handle_cb(uv_handle_t *h);

/**
 * Listens on `spec` (see ptc_net_parse_hostport; an empty host means 0.0.0.0, and a name is
 * resolved synchronously, first address wins). `cb` runs for each incoming connection with
 * the listener's data set to `data`. On success *out is a new handle the caller owns and
 * closes (ptc_net_free_handle_cb frees it). Errors (nothing to close): PTC_EFORMAT, PTC_EDNS,
 * and libuv codes such as UV_EADDRINUSE or UV_EACCES.
 */
PTC_MUST_CHECK int ptc_net_listen_tcp(uv_loop_t *loop, const char *spec, int backlog,
                                      uv_connection_cb cb, void *data, uv_tcp_t **out);

/**
 * Accepts one connection from a listener (call it from the connection callback) into a new
 * handle with TCP_NODELAY set. The caller owns *out (see the file comment). Errors: libuv
 * codes (UV_EAGAIN when there was nothing to accept); nothing is left to close.
 */
PTC_MUST_CHECK int ptc_net_accept(uv_stream_t *server, uv_tcp_t **out);

/* ---- dialing ---- */

typedef struct ptc_net_dial ptc_net_dial_t;

/**
 * The dial finished. status 0: `tcp` is connected (TCP_NODELAY set) and now belongs to the
 * callee (see the file comment). Otherwise `tcp` is NULL and status is PTC_EDNS (resolution
 * failed), PTC_ETIMEOUT (the deadline passed), UV_ECANCELED (ptc_net_dial_cancel) or the
 * libuv error of the last address tried (UV_ECONNREFUSED...). The dial object is freed
 * after the callback returns.
 */
typedef void (*ptc_net_dial_cb)(ptc_net_dial_t *d, int status, uv_tcp_t *tcp);

/**
 * Connects to host:port: resolves with uv_getaddrinfo, then tries each address in order
 * until one connects; `timeout_ms` (0: none) bounds the whole dial. Returns 0 and *out (valid
 * until the callback returns): `cb` then runs exactly once, never before this function
 * returns. On error (UV_EINVAL for an empty host or port 0, libuv codes) `cb` never runs.
 */
PTC_MUST_CHECK int ptc_net_dial(uv_loop_t *loop, const char *host, uint16_t port,
                                uint64_t timeout_ms, ptc_net_dial_cb cb, void *data,
                                ptc_net_dial_t **out);
/** The `data` given to ptc_net_dial(). */
void *ptc_net_dial_data(const ptc_net_dial_t *d);
/** The last system error seen (the getaddrinfo or connect code behind the status), or 0. */
int ptc_net_dial_last_error(const ptc_net_dial_t *d);
/**
 * Abandons the dial: the callback runs with UV_ECANCELED on a later loop iteration (unless
 * it already ran or is running). Only valid until the callback returns.
 */
void ptc_net_dial_cancel(ptc_net_dial_t *d);

#endif
