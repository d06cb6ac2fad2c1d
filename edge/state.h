/* SPDX-License-Identifier: MIT */
/*
 * The edge's management state in memory: connector groups, registration tokens, connectors,
 * apps and custom-domain certificates (registration: docs/protocol.md §12). It is loaded once
 * from a ptc_store_t at start, and every change goes the same way: validate, write through the
 * store, apply in memory, then tell the observers (the listener reloads certificates, the
 * registry follows connector moves and deletions, the router sees app changes). A store
 * failure leaves memory as it was.
 *
 * Time is passed in (milliseconds since the epoch) so tests control it; JSON documents carry
 * RFC 3339 strings. Records handed out are borrowed: valid until the next call that changes
 * the state (apps may be kept longer with ptc_app_ref). Token texts are returned once by
 * ptc_state_token_mint and never stored (only their SHA-256) nor logged.
 *
 * Errors and the HTTP status the admin API maps them to:
 *   PTC_EFORMAT   400  invalid input (the message names the field)
 *   PTC_ENOTFOUND 404  the named group, token, connector, app or certificate does not exist
 *   PTC_EEXIST    409  a group, app name or external host+path is taken
 *   PTC_ESTATE    409  the group is "Default" or in use
 *   PTC_EAUTH     401/410  registration refused (see ptc_redeem_refusal_t)
 *   others        500  the store failed (negative errno; the message names the file)
 * Every refusal writes a human message to err. One loop owns a state; nothing here blocks
 * except the store's small synchronous writes. Depends on edge/store, edge/app, common/.
 */
#ifndef PTC_EDGE_STATE_H
#define PTC_EDGE_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "edge/app.h"
#include "edge/store.h"

typedef struct ptc_state ptc_state_t;

/** The group every edge has; it cannot be deleted. */
#define PTC_STATE_DEFAULT_GROUP "Default"
#define PTC_STATE_GROUP_NAME_MAX 64
/** Tokens: "ptk_" + base64url(32 bytes) is 47 characters; this holds it with its NUL. */
#define PTC_TOKEN_TEXT_CAP 64
#define PTC_TOKEN_DEFAULT_TTL_MS (24ull * 3600 * 1000)
#define PTC_TOKEN_MAX_TTL_MS (365ull * 24 * 3600 * 1000)
#define PTC_TOKEN_MAX_USES 10000
/** last_seen is written to the store at most this often (and on tunnel down). */
#define PTC_CONNECTOR_PERSIST_MS 60000
/** Room for an RFC 3339 time as written here: "2024-05-01T12:00:00.000Z". */
#define PTC_STATE_TIME_CAP 32

/* ---- records (read-only for callers) ---- */

typedef struct ptc_group {
    char *name; /* 1..64 of [A-Za-z0-9 ._-] */
    uint64_t created_at;
} ptc_group_t;

typedef struct ptc_token {
    char id[16];   /* "tok_" + 8 hex */
    char hash[65]; /* lower-case hex SHA-256 of the token text */
    char *group;
    uint64_t created_at;
    uint64_t expires_at;
    uint32_t uses_left;
    uint32_t max_uses;
    bool revoked;
} ptc_token_t;

typedef struct ptc_connector {
    char id[24]; /* "cn_" + 16 hex */
    uint8_t public_key[32];
    char public_key_b64[48]; /* base64url, 43 characters */
    char *group;
    char *hostname;      /* 0..255 bytes */
    char *agent;         /* 1..128 printable ASCII */
    uint64_t first_seen; /* = registration time */
    uint64_t last_seen;
    uint64_t _persisted_last_seen;
} ptc_connector_t;

typedef struct ptc_cert {
    char id[16];  /* "crt_" + 8 hex */
    char **names; /* DNS subjectAltNames, lower-case ("*.example.com" kept) */
    size_t names_cnt;
    uint64_t not_before;
    uint64_t not_after;
    char *cert_pem; /* the chain, leaf first */
    char *key_pem;  /* secret: wiped when freed, never in API answers */
    uint64_t added_at;
} ptc_cert_t;

/* ---- lifetime ---- */

/**
 * Loads every document from `store` (borrowed; it must outlive the state) and makes the
 * "Default" group (written to the store) when it is missing. `ctx` (borrowed until
 * ptc_state_free or the next ptc_state_set_app_ctx) is used to parse apps. A document that
 * is corrupt or inconsistent (an unknown group, a duplicate external URL, a key that does not
 * match its certificate) fails the load: the message names the file, and the caller must
 * refuse to start. Returns 0 and *out, or the error (PTC_EFORMAT or a negative errno).
 */
PTC_MUST_CHECK int ptc_state_open(ptc_store_t *store, const ptc_app_ctx_t *ctx, uint64_t now,
                                  ptc_state_t **out, char *err, size_t errlen);

/** Frees the state and its records (certificate keys are wiped). NULL is ignored. */
void ptc_state_free(ptc_state_t *st);

/** Replaces the app-parsing context (after a configuration reload). Borrowed. */
void ptc_state_set_app_ctx(ptc_state_t *st, const ptc_app_ctx_t *ctx);

/* ---- observers ---- */

typedef enum ptc_state_kind {
    PTC_STATE_GROUP,
    PTC_STATE_TOKEN,
    PTC_STATE_CONNECTOR,
    PTC_STATE_APP,
    PTC_STATE_CERT,
} ptc_state_kind_t;

typedef enum ptc_state_op {
    PTC_STATE_ADDED,
    PTC_STATE_UPDATED, /* a setting changed (apps), a token was used or revoked */
    PTC_STATE_MOVED,   /* a connector changed group */
    PTC_STATE_DELETED,
} ptc_state_op_t;

/**
 * Called after a change was stored and applied: `id` is the record's id (the group or app
 * name, or "tok_..", "cn_..", "crt_.."), borrowed for the call. A callback may read the
 * state but must not change it or the observer list. Not called for last_seen updates.
 */
typedef void (*ptc_state_observer_cb)(void *data, ptc_state_kind_t kind, ptc_state_op_t op,
                                      const char *id);

/** Adds an observer; they are called in the order added. Aborts if memory runs out. */
void ptc_state_observe(ptc_state_t *st, ptc_state_observer_cb cb, void *data);
/** Removes the observer added with the same cb and data (no-op if absent). */
void ptc_state_unobserve(ptc_state_t *st, ptc_state_observer_cb cb, void *data);

/** "group", "token", "connector", "app" or "cert". */
const char *ptc_state_kind_name(ptc_state_kind_t kind);
/** "added", "updated", "moved" or "deleted". */
const char *ptc_state_op_name(ptc_state_op_t op);

/* ---- groups ---- */

/** True for 1..64 characters of [A-Za-z0-9 ._-]. */
bool ptc_state_group_name_is_valid(const char *name);
/** Groups sorted by name: count and i-th (borrowed). */
size_t ptc_state_group_count(const ptc_state_t *st);
const ptc_group_t *ptc_state_group_at(const ptc_state_t *st, size_t i);
/** The group with this exact name, or NULL. */
const ptc_group_t *ptc_state_group_find(const ptc_state_t *st, const char *name);
/** What refers to a group: its apps, connectors and active (usable) tokens at `now`. */
void ptc_state_group_usage(const ptc_state_t *st, const char *name, uint64_t now, size_t *apps,
                           size_t *connectors, size_t *tokens);
/** Adds a group. PTC_EFORMAT (invalid name), PTC_EEXIST, or a store error. */
PTC_MUST_CHECK int ptc_state_group_add(ptc_state_t *st, const char *name, uint64_t now, char *err,
                                       size_t errlen);
/**
 * Deletes a group. PTC_ENOTFOUND; PTC_ESTATE for "Default" and for a group that apps,
 * connectors or active tokens (at `now`) still use; or a store error.
 */
PTC_MUST_CHECK int ptc_state_group_delete(ptc_state_t *st, const char *name, uint64_t now,
                                          char *err, size_t errlen);
/** {"name", "created_at"} (a new reference; aborts if memory runs out). */
json_t *ptc_state_group_to_json(const ptc_group_t *g);

/* ---- registration tokens ---- */

typedef enum ptc_token_status {
    PTC_TOKEN_ACTIVE,
    PTC_TOKEN_EXPIRED,
    PTC_TOKEN_USED,
    PTC_TOKEN_REVOKED,
} ptc_token_status_t;

/**
 * Mints a token for `group` that expires `ttl_ms` after `now` (0: 24 hours; at most 365 days)
 * and may register `max_uses` connectors (0: 1; at most 10000). The token text ("ptk_" + 43
 * characters) is written to text[] once: only its SHA-256 is kept. Returns 0 and *out
 * (borrowed; may be NULL), or PTC_EFORMAT (unknown group, limits), or a store error.
 */
PTC_MUST_CHECK int ptc_state_token_mint(ptc_state_t *st, const char *group, uint64_t ttl_ms,
                                        uint32_t max_uses, uint64_t now,
                                        char text[PTC_TOKEN_TEXT_CAP], const ptc_token_t **out,
                                        char *err, size_t errlen);
/** Tokens sorted by id: count and i-th (borrowed). */
size_t ptc_state_token_count(const ptc_state_t *st);
const ptc_token_t *ptc_state_token_at(const ptc_state_t *st, size_t i);
const ptc_token_t *ptc_state_token_find(const ptc_state_t *st, const char *id);
/** Revokes a token (it stays listed as "revoked"; revoking twice is fine). PTC_ENOTFOUND or
 * a store error. */
PTC_MUST_CHECK int ptc_state_token_revoke(ptc_state_t *st, const char *id, char *err,
                                          size_t errlen);
/** The token's status at `now` (revoked, then used up, then expired, else active). */
ptc_token_status_t ptc_token_status(const ptc_token_t *t, uint64_t now);
/** "active", "expired", "used" or "revoked". */
const char *ptc_token_status_name(ptc_token_status_t s);
/** The API form: {id, group, created_at, expires_at, max_uses, uses_left, state}; no hash. */
json_t *ptc_state_token_to_json(const ptc_token_t *t, uint64_t now);

/** Why a registration token was refused (ptc_state_token_redeem returned PTC_EAUTH). */
typedef enum ptc_redeem_refusal {
    PTC_REDEEM_OK = 0,
    PTC_REDEEM_UNKNOWN, /* no token has this hash: 401 unknown_token */
    PTC_REDEEM_REVOKED, /* revoked by an administrator, or its group is gone: 401 unknown_token */
    PTC_REDEEM_EXPIRED, /* 410 token_expired */
    PTC_REDEEM_USED,    /* no uses left: 410 token_used */
} ptc_redeem_refusal_t;

/** A registration request (docs/protocol.md §12.2); all strings borrowed, NUL-terminated. */
typedef struct ptc_registration {
    const char *token;      /* as presented */
    const char *public_key; /* base64url of 32 bytes */
    const char *hostname;   /* 0..255 bytes, no control characters */
    const char *agent;      /* 1..128 printable ASCII */
} ptc_registration_t;

/**
 * Registers a connector with a token (protocol.md §12.3): hashes the token, finds it with
 * constant-time comparisons, checks it is not revoked, used up or expired, decrements its uses
 * and creates the connector (id "cn_" + 16 hex, the token's group, first_seen = last_seen =
 * now). Returns 0 and *out (borrowed); PTC_EFORMAT for a malformed public key, hostname or
 * agent; PTC_EAUTH with the reason in *why (never NULL); or a store error (then nothing
 * changed, except that a token use stays consumed if the store could not undo it). The token
 * text never appears in messages.
 */
PTC_MUST_CHECK int ptc_state_token_redeem(ptc_state_t *st, const ptc_registration_t *reg,
                                          uint64_t now, ptc_redeem_refusal_t *why,
                                          const ptc_connector_t **out, char *err, size_t errlen);

/* ---- connectors ---- */

/** Connectors sorted by id: count and i-th (borrowed). */
size_t ptc_state_connector_count(const ptc_state_t *st);
const ptc_connector_t *ptc_state_connector_at(const ptc_state_t *st, size_t i);
const ptc_connector_t *ptc_state_connector_find(const ptc_state_t *st, const char *id);
/**
 * Moves a connector to another group (observers: MOVED; its live tunnels follow). Moving to
 * its own group is a no-op. PTC_ENOTFOUND (connector), PTC_EFORMAT (no such group), or a
 * store error.
 */
PTC_MUST_CHECK int ptc_state_connector_move(ptc_state_t *st, const char *id, const char *group,
                                            char *err, size_t errlen);
/** Deletes a connector record (observers: DELETED; its tunnels must close). PTC_ENOTFOUND or
 * a store error. */
PTC_MUST_CHECK int ptc_state_connector_delete(ptc_state_t *st, const char *id, char *err,
                                              size_t errlen);
/**
 * Records activity: last_seen = now in memory at once; written to the store when `flush`
 * (tunnel down) or PTC_CONNECTOR_PERSIST_MS after the last write. No observer call. Returns
 * 0, PTC_ENOTFOUND, or a store error (memory keeps the new time; the next touch retries).
 */
PTC_MUST_CHECK int ptc_state_connector_touch(ptc_state_t *st, const char *id, uint64_t now,
                                             bool flush, char *err, size_t errlen);
/** {id, public_key, group, hostname, agent, first_seen, last_seen} (a new reference). */
json_t *ptc_state_connector_to_json(const ptc_connector_t *c);

/* ---- apps ---- */

/** Apps sorted by name: count and i-th (borrowed; ptc_app_ref to keep one). */
size_t ptc_state_app_count(const ptc_state_t *st);
const ptc_app_t *ptc_state_app_at(const ptc_state_t *st, size_t i);
const ptc_app_t *ptc_state_app_find(const ptc_state_t *st, const char *name);
/**
 * Adds an app from a JSON object (borrowed; ptc_app_parse with the state's context). Refused:
 * PTC_EFORMAT (invalid settings, unknown connector_group), PTC_EEXIST (name, or external
 * host + path taken), or a store error. *out (may be NULL) is borrowed.
 */
PTC_MUST_CHECK int ptc_state_app_add(ptc_state_t *st, json_t *doc, const ptc_app_t **out, char *err,
                                     size_t errlen);
/** Applies a PATCH (ptc_app_patch) to the named app, with the same checks as add, plus
 * PTC_ENOTFOUND. */
PTC_MUST_CHECK int ptc_state_app_update(ptc_state_t *st, const char *name, json_t *patch,
                                        const ptc_app_t **out, char *err, size_t errlen);
/** Deletes an app. PTC_ENOTFOUND or a store error. */
PTC_MUST_CHECK int ptc_state_app_delete(ptc_state_t *st, const char *name, char *err,
                                        size_t errlen);
/**
 * The router's lookup: the app for a request's host and normalised path, by longest external
 * path prefix among the apps of that host (a hash of per-host buckets, rebuilt on change).
 * `host` is the Host header's value (host_len bytes): case-insensitive, a port is ignored,
 * IPv6 in brackets. `path` (path_len bytes) is cut at a '?'. NULL when nothing matches or the
 * host is malformed. Borrowed (ptc_app_ref to keep it across an asynchronous request).
 */
const ptc_app_t *ptc_state_app_route(const ptc_state_t *st, const char *host, size_t host_len,
                                     const char *path, size_t path_len);

/* ---- certificates ---- */

/**
 * Adds a certificate for custom domains: `cert_pem` (the chain, leaf first) and `key_pem`
 * (unencrypted), both NUL-terminated and copied. Refused with PTC_EFORMAT: unreadable PEM, a
 * key that does not match the leaf, an expired leaf (at `now`), a leaf without DNS
 * subjectAltNames; or a store error. *out (may be NULL) is borrowed.
 */
PTC_MUST_CHECK int ptc_state_cert_add(ptc_state_t *st, const char *cert_pem, const char *key_pem,
                                      uint64_t now, const ptc_cert_t **out, char *err,
                                      size_t errlen);
/** Certificates sorted by id: count and i-th (borrowed). */
size_t ptc_state_cert_count(const ptc_state_t *st);
const ptc_cert_t *ptc_state_cert_at(const ptc_state_t *st, size_t i);
const ptc_cert_t *ptc_state_cert_find(const ptc_state_t *st, const char *id);
/** Deletes a certificate. PTC_ENOTFOUND or a store error. */
PTC_MUST_CHECK int ptc_state_cert_delete(ptc_state_t *st, const char *id, char *err, size_t errlen);
/** The API form: {id, names, not_before, not_after, added_at}, plus cert_pem when asked; the
 * key is never included. A new reference. */
json_t *ptc_state_cert_to_json(const ptc_cert_t *c, bool with_pem);

/* ---- time ---- */

/** Writes ms since the epoch as RFC 3339 UTC with milliseconds ("...T12:00:00.000Z"). */
void ptc_state_time_format(uint64_t ms, char out[PTC_STATE_TIME_CAP]);
/**
 * Parses an RFC 3339 date-time ("2024-05-01T12:00:00Z", optional fraction, 'Z' or an offset
 * "+02:00") into ms since the epoch (fractions below 1 ms are dropped). Returns 0 or
 * PTC_EFORMAT (syntax, out-of-range fields, a time before 1970).
 */
PTC_MUST_CHECK int ptc_state_time_parse(const char *s, uint64_t *ms);

#endif
