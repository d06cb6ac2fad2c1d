/* SPDX-License-Identifier: MIT */
/*
 * Error codes shared by common/, edge/, connector/ and the CLI (STYLE §3).
 *
 * Every fallible function returns an int: 0 is success, a negative value an error. libuv's
 * codes (negative errno values, down to UV__EOF = -4095) pass through unchanged; Portico's
 * own codes live at -10000 and below so the two never collide. proto/ has its own range
 * (-10200 and below, see proto/proto.h) because it includes nothing of ours.
 *
 * mbedTLS, llhttp and jansson errors are converted where they enter our code; the original
 * code is kept as a log field by the caller.
 */
#ifndef PTC_COMMON_ERR_H
#define PTC_COMMON_ERR_H

#include <stddef.h>

#define PTC_MUST_CHECK __attribute__((warn_unused_result))

enum {
    PTC_ERR_FIRST = -10000,
    /** A decoder needs more input; nothing was consumed. */
    PTC_EINCOMPLETE = -10000,
    /** The peer broke a protocol (framing, state, handshake). */
    PTC_EPROTO = -10001,
    /** TLS failed (handshake, record, alert). */
    PTC_ETLS = -10002,
    /** Malformed or ambiguous HTTP (including request-smuggling patterns). */
    PTC_EHTTP = -10003,
    /** A configured limit was exceeded (sizes, counts, lengths). */
    PTC_ELIMIT = -10004,
    /** A configuration file or value is invalid. */
    PTC_ECONFIG = -10005,
    /** The peer's certificate chain did not validate against the trusted CAs. */
    PTC_ECERT = -10006,
    /** The peer's certificate does not match the expected host name. */
    PTC_ECERTNAME = -10007,
    /** The peer's public key does not match the pinned SHA-256. */
    PTC_EPIN = -10008,
    /** A deadline passed (connect, handshake, head, idle, response). */
    PTC_ETIMEOUT = -10009,
    /** The object is closing or closed; the operation was not started. */
    PTC_ECLOSED = -10010,
    /** Authentication or authorization failed (token, signature, credentials). */
    PTC_EAUTH = -10011,
    /** The named thing does not exist. */
    PTC_ENOTFOUND = -10012,
    /** The named thing already exists. */
    PTC_EEXIST = -10013,
    /** The operation is not valid in the object's current state. */
    PTC_ESTATE = -10014,
    /** Malformed input that is not a protocol frame: JSON, base64, URL, PEM, key. */
    PTC_EFORMAT = -10015,
    /** A cryptographic operation failed (bad signature, decryption failure, RNG). */
    PTC_ECRYPTO = -10016,
    /** Out of memory on a fallible (try_) allocation. */
    PTC_ENOMEM = -10017,
    /** Name resolution failed. */
    PTC_EDNS = -10018,
    /** The peer sent more than the receiver may buffer (back-pressure violated). */
    PTC_EOVERFLOW = -10019,
    PTC_ERR_LAST = -10019,
};

/** A stable upper-case name for the code ("PTC_EHTTP", "ECONNREFUSED", "OK"). Never NULL. */
const char *ptc_errname(int err);

/** A short human sentence for the code. Never NULL. */
const char *ptc_strerror(int err);

/** Aborts with a message if malloc fails: for fixed-size bookkeeping only (STYLE §3). */
void *ptc_xmalloc(size_t len);
/** calloc that aborts on failure. */
void *ptc_xcalloc(size_t cnt, size_t len);
/** realloc that aborts on failure. */
void *ptc_xrealloc(void *p, size_t len);
/** strdup that aborts on failure; NULL in gives NULL out. */
char *ptc_xstrdup(const char *s);

#endif
