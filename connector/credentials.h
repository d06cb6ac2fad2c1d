/* SPDX-License-Identifier: MIT */
/*
 * The connector's identity (docs/protocol.md §12.5): the credential file that registration
 * writes and every tunnel reads, and the one thing the identity's key may sign, the tunnel
 * authentication message of §11.6.
 *
 * The file is JSON, mode 0600, written atomically (temporary file, fsync, rename, fsync of
 * the directory). Loading refuses a file that group or others may read or write, a file that
 * is not a regular file, and a public key that does not derive from the secret seed. The
 * secret key lives only in ptc_credentials_t.key and in buffers this module wipes; nothing
 * here logs, and no message quotes a key.
 *
 * Depends on jansson, common/keys, common/net (edge addresses) and common/err.
 */
#ifndef PTC_CONNECTOR_CREDENTIALS_H
#define PTC_CONNECTOR_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/keys.h"

/** The credential file format this module reads and writes. */
#define PTC_CREDENTIALS_VERSION 1
/** Longest connector or tunnel identifier (docs/protocol.md §11.2 rule 4). */
#define PTC_CREDENTIALS_ID_MAX 64
/** The context string that starts every signed message (§11.6), NUL included. */
#define PTC_AUTH_CONTEXT "portico tunnel auth v1"
#define PTC_AUTH_CONTEXT_LEN 23
/** Length of the signed message for a connector id of `id_len` bytes. */
#define PTC_AUTH_MESSAGE_LEN(id_len) (PTC_AUTH_CONTEXT_LEN + 32 + 32 + 2 + (id_len))

/** A connector's identity. Strings are heap copies owned by the struct. */
typedef struct ptc_credentials {
    char *edge_url;        /* the URL used to register */
    char *connector_id;    /* §11.2 rule 4 */
    char *group;           /* informational */
    ptc_ed25519_key_t key; /* secret: wiped by ptc_credentials_dispose() */
    char **edges;          /* the last known tunnel endpoints, "host:port" */
    size_t edges_cnt;
    char *ca_file; /* trust anchors for the edge, or NULL */
    bool has_pin;  /* pin_sha256 is set */
    uint8_t pin_sha256[32];
} ptc_credentials_t;

/**
 * Loads the credential file at `path` into *out (zeroed first). Refuses, with a one-line
 * reason in err that names the file:
 * - UV_ENOENT and other read errors (the system's reason; for a missing file the message
 *   says to run `portico-connector register`);
 * - UV_EPERM: not a regular file, or a mode that gives group or others any access (the
 *   message says to chmod 600 it);
 * - PTC_EFORMAT: invalid JSON, duplicate members, a member missing or of the wrong type,
 *   a version other than 1, a bad identifier, a key that is not 32 bytes of base64url
 *   without padding, an edge that is not "host:port";
 * - PTC_ECRYPTO: the public key does not match the one derived from the secret key.
 * Unknown members are ignored. On error *out holds nothing (no dispose needed, but safe).
 */
PTC_MUST_CHECK int ptc_credentials_load(const char *path, ptc_credentials_t *out, char *err,
                                        size_t errlen);

/**
 * As ptc_credentials_load() for a document in memory (`len` bytes, borrowed), without the
 * file checks. `name` is used in messages. Returns 0, PTC_EFORMAT or PTC_ECRYPTO.
 */
PTC_MUST_CHECK int ptc_credentials_parse(const char *name, const void *data, size_t len,
                                         ptc_credentials_t *out, char *err, size_t errlen);

/**
 * Serializes *c as the credential file's JSON text (one line and a newline), NUL-terminated,
 * into a heap buffer that holds the secret key: the caller releases it with
 * ptc_credentials_free_text(). *len (may be NULL) gets the length. Aborts if memory runs out.
 */
char *ptc_credentials_to_json(const ptc_credentials_t *c, size_t *len);

/** Wipes and frees a buffer from ptc_credentials_to_json(). NULL is ignored. */
void ptc_credentials_free_text(char *text);

/**
 * Writes *c to `path` atomically with mode 0600. Returns 0 or a libuv-style negative errno
 * (UV_EACCES, UV_ENOENT for a missing directory, ...).
 */
PTC_MUST_CHECK int ptc_credentials_save(const char *path, const ptc_credentials_t *c);

/** Wipes the secret key and frees the strings; zeroes *c. Safe on a zeroed struct and twice. */
void ptc_credentials_dispose(ptc_credentials_t *c);

/**
 * Replaces the edge list with copies of edges[0..cnt). Returns true if the list changed
 * (order matters), false if it was already the same.
 */
bool ptc_credentials_set_edges(ptc_credentials_t *c, const char *const *edges, size_t cnt);

/** True if s[0..len) is an identifier: 1..64 letters, digits, '_', '-' or '.' (§11.2 rule 4). */
bool ptc_credentials_valid_id(const char *s, size_t len);

/**
 * Builds the message of docs/protocol.md §11.6 into out[0..cap): context, nonce, cert_hash,
 * the u16 length of connector_id and connector_id. Returns the length
 * (PTC_AUTH_MESSAGE_LEN(strlen(connector_id))), UV_EINVAL for an invalid identifier, or
 * PTC_ELIMIT when cap is too small.
 */
PTC_MUST_CHECK int ptc_credentials_auth_message(const uint8_t nonce[32],
                                                const uint8_t cert_hash[32],
                                                const char *connector_id, uint8_t *out, size_t cap);

/**
 * Signs the §11.6 message for this connector with its key and writes the signature as
 * base64url without padding (86 characters and a NUL) into sig_b64[0..cap). Returns 0,
 * UV_EINVAL (invalid identifier) or PTC_ELIMIT (cap below 87).
 */
PTC_MUST_CHECK int ptc_credentials_sign_auth(const ptc_credentials_t *c, const uint8_t nonce[32],
                                             const uint8_t cert_hash[32], char *sig_b64,
                                             size_t cap);

/**
 * Decodes base64url text without padding that must decode to exactly `len` bytes (the
 * encoding rules of docs/protocol.md §11.2 rule 3: no '=', no white space, no other
 * alphabet, zero unused bits). Returns 0 or PTC_EFORMAT.
 */
PTC_MUST_CHECK int ptc_credentials_b64_exact(const char *text, size_t text_len, uint8_t *out,
                                             size_t len);

#endif
