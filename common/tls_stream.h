/* SPDX-License-Identifier: MIT */
/*
 * A TLS connection (common/tls) bound to a libuv TCP stream, in either role. It reads
 * ciphertext from the socket, drives the handshake under a deadline, hands plaintext to a
 * read callback as borrowed slices, and sends ciphertext with write requests that own their
 * chunks. It is the only place where TLS meets libuv.
 *
 * Lifetime (STYLE §5): the stream owns its TCP handle (taken over at creation) and one timer
 * (the handshake deadline, deferred work, the shutdown deadline). ptc_tls_stream_close() is
 * idempotent; pending write callbacks then run with UV_ECANCELED, and the on_close callback
 * runs once, from the last handle's close callback, just before the memory is freed. After
 * close no other callback (handshake, read, drain) runs. Callbacks may call close.
 *
 * Back-pressure (STYLE §6): writes never refuse for being above the high-water mark; the
 * caller checks ptc_tls_stream_is_full() after writing and stops its source, and on_drain
 * fires once the backlog (queued plus in flight) falls to the low-water mark.
 * ptc_tls_stream_read_stop() stops both the plaintext delivery and the socket reads.
 *
 * Depends on libuv, common/tls, common/buf, common/err.
 */
#ifndef PTC_COMMON_TLS_STREAM_H
#define PTC_COMMON_TLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/tls.h"

typedef struct ptc_tls_stream ptc_tls_stream_t;

/**
 * The handshake finished: status 0, or an error (PTC_ECERT, PTC_ECERTNAME, PTC_EPIN,
 * PTC_ETLS, PTC_ETIMEOUT, UV_EOF or UV_ECONNRESET from the peer, other libuv codes). Runs at
 * most once, never from ptc_tls_stream_new(). After an error, only close is useful.
 */
typedef void (*ptc_tls_stream_handshake_cb)(ptc_tls_stream_t *s, int status);
/**
 * Plaintext arrived (status 0, `data` borrowed until the callback returns), or reading ended:
 * status UV_EOF (close_notify, or the peer closed TCP without one), PTC_ETLS (a bad record or
 * alert), or a libuv error such as UV_ECONNRESET; `data` is then empty and no further read
 * callback runs. The stream stays open for writing until the owner closes it.
 */
typedef void (*ptc_tls_stream_read_cb)(ptc_tls_stream_t *s, int status, ptc_slice_t data);
/**
 * A write's ciphertext was handed to the kernel (status 0) or failed (libuv code;
 * UV_ECANCELED when the stream closed first). Runs exactly once per successful
 * ptc_tls_stream_write(), also during close.
 */
typedef void (*ptc_tls_stream_write_cb)(ptc_tls_stream_t *s, int status, void *arg);
/** The write backlog fell to the low-water mark after having reached the high-water mark. */
typedef void (*ptc_tls_stream_drain_cb)(ptc_tls_stream_t *s);
/** The stream is closed: the last callback, run just before its memory is freed. */
typedef void (*ptc_tls_stream_close_cb)(ptc_tls_stream_t *s);

/** Settings for ptc_tls_stream_new(). Zero-initialize; on_handshake and on_read are needed. */
typedef struct ptc_tls_stream_opts {
    /* Client: the host to verify and send as SNI (see ptc_tls_new). Server: NULL. */
    const char *server_name;
    /* Deadline for the whole handshake; 0 means 10 s. */
    uint64_t handshake_timeout_ms;
    /* How long a graceful shutdown may wait for its writes; 0 means 5 s. */
    uint64_t shutdown_timeout_ms;
    /* Write back-pressure marks on the ciphertext backlog; 0 means 1 MiB and 256 KiB. */
    size_t high_water;
    size_t low_water;
    /* Ciphertext already read from the socket (for example after an HTTP CONNECT through a
     * proxy): processed before anything read later. Copied. */
    ptc_slice_t initial;
    ptc_tls_stream_handshake_cb on_handshake;
    ptc_tls_stream_read_cb on_read;
    ptc_tls_stream_drain_cb on_drain; /* may be NULL */
    ptc_tls_stream_close_cb on_close; /* may be NULL */
    void *data;                       /* the owner's pointer: ptc_tls_stream_data() */
} ptc_tls_stream_opts_t;

/**
 * Starts TLS on a connected TCP handle and takes it over: `tcp` must come from malloc (as
 * ptc_net_dial and ptc_net_accept give them), not be reading or closing, and is closed and
 * freed by the stream, also when this function fails. TCP_NODELAY is set. The handshake
 * starts on the next loop iteration (a client sends its ClientHello then); plaintext is
 * delivered once it completes. Errors (no callback runs): UV_EINVAL (missing callbacks,
 * bad name), PTC_ENOMEM, PTC_ETLS, libuv codes.
 */
PTC_MUST_CHECK int ptc_tls_stream_new(uv_tcp_t *tcp, ptc_tls_config_t *cfg,
                                      const ptc_tls_stream_opts_t *opts, ptc_tls_stream_t **out);

/** The owner's pointer given in the options. */
void *ptc_tls_stream_data(const ptc_tls_stream_t *s);
/** Replaces the owner's pointer. */
void ptc_tls_stream_set_data(ptc_tls_stream_t *s, void *data);
/**
 * Replaces on_read, on_drain, on_close and the owner's pointer with those of `opts` (the
 * other fields are ignored), for example when ALPN hands the connection to another handler
 * after the handshake. on_read must not be NULL. Takes effect for the next callback.
 */
void ptc_tls_stream_set_callbacks(ptc_tls_stream_t *s, const ptc_tls_stream_opts_t *opts);
/** The TLS connection (for ALPN, SNI, certificate hashes, logs); borrowed, lives as long. */
ptc_tls_t *ptc_tls_stream_tls(const ptc_tls_stream_t *s);
/** The TCP handle (for addresses); borrowed. Never close it directly. */
uv_tcp_t *ptc_tls_stream_tcp(const ptc_tls_stream_t *s);

/**
 * Encrypts a copy of p[0..len) and queues it for sending. Returns 0 (cb, if not NULL, then
 * runs exactly once), or an error and no callback: PTC_ESTATE before the handshake completed
 * or after it failed, PTC_ECLOSED after shutdown or close, UV_EINVAL for len 0, PTC_ETLS,
 * PTC_ENOMEM, libuv codes. Check ptc_tls_stream_is_full() afterwards.
 */
PTC_MUST_CHECK int ptc_tls_stream_write(ptc_tls_stream_t *s, const void *p, size_t len,
                                        ptc_tls_stream_write_cb cb, void *arg);
/** Ciphertext bytes queued or in flight. */
size_t ptc_tls_stream_backlog(const ptc_tls_stream_t *s);
/** True at or above the high-water mark: stop writing until on_drain. */
bool ptc_tls_stream_is_full(const ptc_tls_stream_t *s);

/**
 * Stops delivering plaintext and stops reading the socket (once the handshake is done; the
 * handshake itself always reads). Idempotent.
 */
void ptc_tls_stream_read_stop(ptc_tls_stream_t *s);
/**
 * Resumes reading; plaintext already buffered is delivered on a later loop iteration, never
 * from within this call. Idempotent. Returns 0, PTC_ECLOSED, or a libuv code.
 */
PTC_MUST_CHECK int ptc_tls_stream_read_start(ptc_tls_stream_t *s);

/**
 * Graceful close: sends close_notify, lets the queued writes finish (bounded by
 * shutdown_timeout_ms), shuts the socket's write side down, then closes as
 * ptc_tls_stream_close() does. Plaintext is no longer delivered. Before the handshake
 * completed it is the same as close. Idempotent.
 */
void ptc_tls_stream_shutdown(ptc_tls_stream_t *s);
/**
 * Closes now: pending writes get UV_ECANCELED, then on_close runs once all handles are
 * closed, and the memory is freed. Idempotent; safe from any callback.
 */
void ptc_tls_stream_close(ptc_tls_stream_t *s);
/** True once close (or the close at the end of a shutdown) has begun. */
bool ptc_tls_stream_is_closing(const ptc_tls_stream_t *s);

#endif
