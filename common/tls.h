/* SPDX-License-Identifier: MIT */
/*
 * TLS over memory buffers (mbedTLS 2.28, TLS 1.2), with no I/O, in the shape of picotls:
 * ciphertext goes in through a ptc_buf_t, ciphertext comes out appended to a ptc_chunkq_t,
 * and the caller moves bytes between those and a socket (common/tls_stream.c does that for
 * libuv). Two contexts wired back to back make a complete test without sockets.
 *
 * Configuration objects are shared and refcounted: one per process (per loop) and role, used
 * by every connection. A server configuration holds a certificate set chosen by SNI (exact
 * names, single-label wildcards, a default certificate) that can be replaced while running:
 * new connections take the new set and existing ones keep theirs. A client configuration
 * holds the trusted CAs (a file, PEM in memory, or the system bundle), the ALPN offer, an
 * optional public-key pin, or the choice to skip validation.
 *
 * Policy: TLS 1.2 and above; ECDHE with ChaCha20-Poly1305 (preferred; computed by
 * libsodium, see common/tls_aead.h) or AES-GCM only (ECDSA and RSA certificates); curves
 * x25519, secp256r1, secp384r1 in that order; no renegotiation; session tickets on the
 * server (mbedtls_ssl_ticket, keys rotated by lifetime).
 *
 * Memory: mbedTLS allocates an input and an output record buffer (about 16.7 KiB each) per
 * connection; this module adds only small bookkeeping (the ciphertext input buffer is
 * empty and may be released between reads). One CTR-DRBG per configuration.
 *
 * Threads: a configuration and its connections belong to one event loop (thread); the
 * reference counts are not atomic. No mbedTLS or libuv type appears in this API. Depends on
 * mbedTLS, common/buf and common/err (and libuv's error constants); performs no I/O beyond
 * reading PEM files.
 */
#ifndef PTC_COMMON_TLS_H
#define PTC_COMMON_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"

/** Length of the SHA-256 digests this module hands out. */
#define PTC_TLS_SHA256_LEN 32

/** Longest ALPN protocol name (RFC 7301 allows 255 bytes). */
#define PTC_TLS_ALPN_MAX 255

/**
 * Details of a failure, for logs: the original mbedTLS code (0 if none) and a short human
 * reason (for example the certificate verification flags in words). Never holds secrets.
 */
typedef struct ptc_tls_err {
    int mbedtls_code;
    char reason[256];
} ptc_tls_err_t;

/* ---- certificate sets (server) ---- */

/** A set of certificate chains and keys chosen by SNI. Refcounted. */
typedef struct ptc_tls_certs ptc_tls_certs_t;

/** Returns an empty set with one reference. Aborts if memory runs out. */
ptc_tls_certs_t *ptc_tls_certs_new(void);
/** Takes a reference. */
ptc_tls_certs_t *ptc_tls_certs_ref(ptc_tls_certs_t *c);
/** Drops a reference; the last one frees the set (keys are wiped). NULL is ignored. */
void ptc_tls_certs_unref(ptc_tls_certs_t *c);

/**
 * Adds a certificate chain (leaf first, then intermediates) and its private key, from PEM in
 * memory (`*_len` bytes, no NUL needed; copied). The names it serves are the leaf's DNS
 * subjectAltNames (or its subject CN when it has none); "*.apps.example.com" serves any single
 * label in front of apps.example.com. `is_default` makes it the certificate sent when the
 * client sends no SNI or a name no entry matches; without one, the first entry added is the
 * default. A later entry never displaces an earlier one for the same name.
 *
 * Errors: PTC_EFORMAT (PEM or key unreadable, an encrypted key), PTC_ECONFIG (the key does
 * not match the certificate: checked with mbedtls_pk_check_pair), PTC_ELIMIT (over 1 MiB),
 * PTC_ESTATE (the set is already installed in a configuration), PTC_ENOMEM. `err` (may be
 * NULL) receives the reason.
 */
PTC_MUST_CHECK int ptc_tls_certs_add_pem(ptc_tls_certs_t *c, const char *chain_pem,
                                         size_t chain_len, const char *key_pem, size_t key_len,
                                         bool is_default, ptc_tls_err_t *err);
/**
 * As ptc_tls_certs_add_pem, reading two PEM files. Adds libuv-style file errors
 * (UV_ENOENT, UV_EACCES...) and PTC_ELIMIT for a file over 1 MiB.
 */
PTC_MUST_CHECK int ptc_tls_certs_add_files(ptc_tls_certs_t *c, const char *chain_path,
                                           const char *key_path, bool is_default,
                                           ptc_tls_err_t *err);
/** The number of entries in the set. */
size_t ptc_tls_certs_count(const ptc_tls_certs_t *c);

/* ---- configurations ---- */

/** A server or client configuration shared by many connections. Refcounted. */
typedef struct ptc_tls_config ptc_tls_config_t;

/** Server settings, read by ptc_tls_server_config_new() (everything is copied). */
typedef struct ptc_tls_server_opts {
    /* The certificate set (a reference is taken; the set needs at least one entry). */
    ptc_tls_certs_t *certs;
    /* ALPN protocols in the server's order of preference, NULL-terminated; NULL for no
     * ALPN. A client that offers ALPN without any of these gets a no_application_protocol
     * alert (RFC 7301 §3.2); one that offers none proceeds without ALPN. */
    const char *const *alpn;
    /* Session ticket key lifetime in seconds (mbedtls_ssl_ticket rotates keys by it and
     * accepts tickets for as long); 0 disables tickets. */
    uint32_t ticket_lifetime_s;
} ptc_tls_server_opts_t;

/** Client settings, read by ptc_tls_client_config_new() (everything is copied). */
typedef struct ptc_tls_client_opts {
    /* Trusted CAs: PEM in memory if ca_pem != NULL, else a PEM file if ca_file != NULL,
     * else the system bundle (PTC_TLS_SYSTEM_CA_FILE). Ignored when no_verify. */
    const char *ca_file;
    const char *ca_pem;
    size_t ca_pem_len;
    /* ALPN protocols to offer, in order, NULL-terminated; NULL for none. */
    const char *const *alpn;
    /* Skip chain and name validation entirely (backends with validate_backend_tls=false).
     * A pin, if set, is still enforced. */
    bool no_verify;
    /* If has_pin, the SHA-256 of the server certificate's SubjectPublicKeyInfo (DER) must be
     * pin_sha256; checked after the chain validates. Mismatch: PTC_EPIN. */
    bool has_pin;
    uint8_t pin_sha256[PTC_TLS_SHA256_LEN];
} ptc_tls_client_opts_t;

/** The CA bundle a client uses when given none. */
#define PTC_TLS_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/**
 * Makes a server configuration with one reference. Errors: PTC_ECONFIG (no certificate, bad
 * ALPN list), PTC_ECRYPTO (RNG or ticket setup), PTC_ENOMEM; `err` (may be NULL) explains.
 */
PTC_MUST_CHECK int ptc_tls_server_config_new(const ptc_tls_server_opts_t *opts,
                                             ptc_tls_config_t **out, ptc_tls_err_t *err);
/**
 * Makes a client configuration with one reference. Errors: as ptc_tls_certs_add_files for
 * the CA file, PTC_EFORMAT (no CA could be parsed), PTC_ECONFIG, PTC_ECRYPTO, PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_tls_client_config_new(const ptc_tls_client_opts_t *opts,
                                             ptc_tls_config_t **out, ptc_tls_err_t *err);
/** Takes a reference. */
ptc_tls_config_t *ptc_tls_config_ref(ptc_tls_config_t *cfg);
/** Drops a reference; connections hold their own, so the last one frees it. NULL ignored. */
void ptc_tls_config_unref(ptc_tls_config_t *cfg);
/** True for a server configuration. */
bool ptc_tls_config_is_server(const ptc_tls_config_t *cfg);

/**
 * Replaces a server configuration's certificate set (a reference is taken): connections made
 * from now on use `certs`; existing ones keep the set they started with until they are
 * freed. Errors: PTC_ESTATE (client configuration), PTC_ECONFIG (empty set), PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_tls_config_set_certs(ptc_tls_config_t *cfg, ptc_tls_certs_t *certs);

/* ---- connections ---- */

/** One TLS connection (either role). */
typedef struct ptc_tls ptc_tls_t;

/**
 * Makes a connection from `cfg` (a reference is taken). For a client, `server_name` is the
 * host the connection is for: it is sent as SNI unless it is an IP literal, and the
 * certificate must match it (a DNS name or an IP address subjectAltName); it may be NULL
 * only with no_verify. Servers pass NULL. Errors: UV_EINVAL (a client that verifies without
 * a name, or a name over 253 bytes), PTC_ENOMEM, PTC_ETLS.
 */
PTC_MUST_CHECK int ptc_tls_new(ptc_tls_config_t *cfg, const char *server_name, ptc_tls_t **out);
/** Frees the connection, its queues and its references. NULL is ignored. */
void ptc_tls_free(ptc_tls_t *t);

/**
 * The ciphertext input buffer: append what the socket delivered, then call
 * ptc_tls_handshake() or ptc_tls_read(). Owned by the connection; valid until ptc_tls_free.
 * The owner may release its storage (ptc_buf_dispose then ptc_buf_init) when it is empty.
 */
ptc_buf_t *ptc_tls_input(ptc_tls_t *t);
/**
 * The ciphertext output queue: every call may append records here; the caller sends them.
 * Records are appended whole (one chunk each). Its water marks start at 1 MiB / 256 KiB;
 * the owner may change the two fields.
 */
ptc_chunkq_t *ptc_tls_output(ptc_tls_t *t);

/**
 * Drives the handshake with the input available. Returns 0 once it is complete (and on
 * every later call), PTC_EINCOMPLETE when it needs more input (send the output first), or an
 * error: PTC_ECERT (untrusted, expired or otherwise invalid chain), PTC_ECERTNAME (the
 * certificate does not match the name), PTC_EPIN, PTC_ETLS (anything else, including an
 * alert from the peer), UV_EOF (close_notify), PTC_ENOMEM. Errors are sticky: every later
 * call returns the same code. An alert for the peer may be in the output queue.
 */
PTC_MUST_CHECK int ptc_tls_handshake(ptc_tls_t *t);
/** True once the handshake completed. */
bool ptc_tls_is_established(const ptc_tls_t *t);

/**
 * Decrypts one record's worth of plaintext into dst (give it at least 16 KiB to take any
 * record whole). Returns the byte count (>0), PTC_EINCOMPLETE (needs more input), UV_EOF
 * (the peer sent close_notify), or a sticky error (PTC_ETLS...). Call again until
 * PTC_EINCOMPLETE: several records may be buffered. PTC_ESTATE before the handshake.
 */
PTC_MUST_CHECK ssize_t ptc_tls_read(ptc_tls_t *t, void *dst, size_t cap);
/**
 * Encrypts `len` bytes into records of up to 16 KiB of plaintext, appended to the output
 * queue. Never partial: returns 0, or a sticky error (PTC_ESTATE before the handshake or
 * after close_notify, PTC_ETLS, PTC_ENOMEM).
 */
PTC_MUST_CHECK int ptc_tls_write(ptc_tls_t *t, const void *p, size_t len);
/**
 * Queues a close_notify alert (once; later calls do nothing). Writes fail afterwards with
 * PTC_ESTATE. Returns 0 or PTC_ETLS/PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_tls_close_notify(ptc_tls_t *t);
/**
 * How long the daemons let a connection stay idle before they call ptc_tls_release_idle():
 * long enough that a busy connection never pays for it.
 */
#define PTC_TLS_IDLE_RELEASE_MS 1000u

/**
 * Bytes at the front of each record buffer that ptc_tls_release_idle() keeps resident: the
 * record sequence number and room for a small record (a tunnel's PING and its answer).
 */
#define PTC_TLS_IDLE_KEEP 256u

/**
 * For a connection with nothing in flight: hands the pages of mbedTLS's two record buffers
 * (about 16.7 KiB each, allocated for the connection's life) that hold no live byte back to
 * the kernel, beyond the first PTC_TLS_IDLE_KEEP bytes of each. Records that fit in them use
 * only the kept page; a larger one brings pages back (zeroed) on its own. Cheap
 * when nothing was touched since the last call. Does nothing (returns 0) before the
 * handshake, after an error, or with a partial record, unread plaintext or unsent bytes
 * inside mbedTLS. Returns the bytes released.
 */
size_t ptc_tls_release_idle(ptc_tls_t *t);

/**
 * When a long-lived connection (a tunnel) went idle, so that its owner calls
 * ptc_tls_release_idle() once it has stayed idle PTC_TLS_IDLE_RELEASE_MS. Zero-initialise.
 */
typedef struct ptc_tls_idle {
    bool waiting;      /* idle since since_ms, not released yet */
    uint64_t since_ms; /* loop time */
} ptc_tls_idle_t;

/** Records whether the owner is idle at loop time now_ms (busy: the wait starts over). */
void ptc_tls_idle_note(ptc_tls_idle_t *w, bool idle, uint64_t now_ms);
/** The loop time the release is due, or UINT64_MAX when none waits (for the owner's timer). */
uint64_t ptc_tls_idle_due(const ptc_tls_idle_t *w);
/**
 * True once the release is due at now_ms; the wait then ends (the next ptc_tls_idle_note()
 * of an idle owner starts another). The owner checks it is still idle before releasing.
 */
bool ptc_tls_idle_take(ptc_tls_idle_t *w, uint64_t now_ms);

/** True if input is buffered that ptc_tls_read() might turn into plaintext without more. */
bool ptc_tls_has_pending(const ptc_tls_t *t);

/** The negotiated ALPN protocol (borrowed, valid until ptc_tls_free), or NULL. */
const char *ptc_tls_alpn(const ptc_tls_t *t);
/** Server: the SNI name the client sent (lower-cased; borrowed), or NULL if none. */
const char *ptc_tls_sni(const ptc_tls_t *t);
/**
 * The SHA-256 of the server certificate's DER: on a server, of the certificate it chose;
 * on a client, of the certificate the server sent. Returns 0, or PTC_ESTATE when not known
 * yet (client before the server's certificate arrived).
 */
PTC_MUST_CHECK int ptc_tls_server_cert_sha256(const ptc_tls_t *t, uint8_t out[PTC_TLS_SHA256_LEN]);
/** The negotiated ciphersuite name ("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256") or "unknown". */
const char *ptc_tls_ciphersuite(const ptc_tls_t *t);
/** The negotiated version ("TLSv1.2") or "unknown". */
const char *ptc_tls_version(const ptc_tls_t *t);
/** True if the handshake resumed a session (client side: a ticket from ptc_tls_set_session). */
bool ptc_tls_is_resumed(const ptc_tls_t *t);
/** Fills `err` with the last failure's mbedTLS code and reason (empty when none). */
void ptc_tls_last_error(const ptc_tls_t *t, ptc_tls_err_t *err);

/* ---- client session resumption ---- */

/** A saved client session (ticket and master secret). Secret: wiped on free. */
typedef struct ptc_tls_session ptc_tls_session_t;

/**
 * Client: saves the established connection's session for a later ptc_tls_set_session().
 * Returns 0 and *out (caller frees with ptc_tls_session_free), PTC_ESTATE, or PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_tls_get_session(const ptc_tls_t *t, ptc_tls_session_t **out);
/**
 * Client, before the handshake: offers `s` (copied) for resumption. The server may decline,
 * and the handshake is then a full one. Returns 0, PTC_ESTATE, or PTC_ETLS.
 */
PTC_MUST_CHECK int ptc_tls_set_session(ptc_tls_t *t, const ptc_tls_session_t *s);
/** Frees a saved session. NULL is ignored. */
void ptc_tls_session_free(ptc_tls_session_t *s);

/* ---- helpers ---- */

/**
 * Computes the pin of the first certificate in `pem` (PEM, `len` bytes): the SHA-256 of its
 * SubjectPublicKeyInfo DER. Returns 0, PTC_EFORMAT, PTC_ELIMIT (over 1 MiB) or PTC_ENOMEM.
 */
PTC_MUST_CHECK int ptc_tls_spki_sha256_pem(const char *pem, size_t len,
                                           uint8_t out[PTC_TLS_SHA256_LEN]);

#endif
