/* SPDX-License-Identifier: MIT */
/*
 * Shared between the two halves of the edge's state, never included outside edge/state*.c
 * (STYLE §1): edge/state.c (containers, messages, time, stored documents, observers, groups,
 * apps, certificates, lifetime) and edge/state_connectors.c (registration tokens and
 * connectors). The state structure is defined here because both halves keep records in it;
 * the helpers below are the ones both use, implemented in edge/state.c unless noted.
 */
#ifndef PTC_EDGE_STATE_INT_H
#define PTC_EDGE_STATE_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edge/app.h"
#include "edge/state.h"
#include "edge/store.h"

/* The store's document kinds. */
#define KIND_GROUPS "groups"
#define KIND_TOKENS "tokens"
#define KIND_CONNECTORS "connectors"
#define KIND_APPS "apps"
#define KIND_CERTS "certs"

/* Room for a quoted, escaped name in a message: see ptc_state_quote(). */
#define QUOTE_MAX 120
#define QUOTE_CAP (QUOTE_MAX * 6 + 8)

/* An array of record pointers kept sorted by the record's key. */
typedef struct ptrvec {
    void **v;
    size_t cnt;
    size_t cap;
} ptrvec_t;

typedef const char *(*key_fn)(const void *rec);

/* One external host's apps, longest external path first. */
typedef struct bucket {
    char *host;
    const ptc_app_t **apps;
    size_t cnt;
    size_t cap;
    struct bucket *next;
} bucket_t;

typedef struct observer {
    ptc_state_observer_cb cb;
    void *data;
} observer_t;

struct ptc_state {
    ptc_store_t *store;
    const ptc_app_ctx_t *ctx;
    ptrvec_t groups;
    ptrvec_t tokens;
    ptrvec_t connectors;
    ptrvec_t apps; /* each holds one reference */
    ptrvec_t certs;
    bucket_t **buckets;
    size_t bucket_cnt; /* a power of two */
    observer_t *observers;
    size_t observer_cnt;
    size_t observer_cap;
    bool is_notifying;
};

/* Reads the members of a stored document; the first failure sticks (later reads return
 * zeroes and NULL), so a loader checks `rc` once. */
typedef struct reader {
    json_t *doc;
    char *err;
    size_t errlen;
    int rc;
} reader_t;

/* ---- containers ---- */

/** The record with this key in the sorted `pv`, or NULL. */
void *ptc_state_vec_find(const ptrvec_t *pv, const char *key, key_fn kf);

/** The index of the record with this key, or SIZE_MAX. */
size_t ptc_state_vec_index(const ptrvec_t *pv, const char *key, key_fn kf);

/** Inserts `rec` at its place by key (aborts if memory runs out). */
void ptc_state_vec_insert(ptrvec_t *pv, void *rec, key_fn kf);

/** Removes the i-th record (not freed). */
void ptc_state_vec_remove(ptrvec_t *pv, size_t i);

/**
 * Writes `prefix` + 2*nbytes random hex digits (nbytes at most 16) into out[cap], an id that
 * no record of `pv` has.
 */
void ptc_state_new_id(const ptrvec_t *pv, key_fn kf, const char *prefix, size_t nbytes, char *out,
                      size_t cap);

/* ---- messages and values ---- */

/** Formats a message into err[errlen] (when err is not NULL) and returns `code`. */
int ptc_state_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Writes `s` escaped, cut to QUOTE_MAX and in double quotes into dst[cap]; returns dst. */
const char *ptc_state_quote(char *dst, size_t cap, const char *s);

/** An RFC 3339 string of `ms` (a new reference). */
json_t *ptc_state_time_json(uint64_t ms);

/** Hex of p[0..len) into out[cap], which must have room for it and its NUL. */
void ptc_state_to_hex(const void *p, size_t len, char *out, size_t cap);

/* ---- reading stored documents (see reader_t) ---- */

/** The string member `key`, or NULL (and a failure unless one is recorded already). */
const char *ptc_state_rd_str(reader_t *r, const char *key);

/** The RFC 3339 time member `key` in ms, or 0. */
uint64_t ptc_state_rd_time(reader_t *r, const char *key);

/** The integer member `key` in 0..max, or 0. */
uint64_t ptc_state_rd_uint(reader_t *r, const char *key, uint64_t max);

/** The boolean member `key`, or false. */
bool ptc_state_rd_bool(reader_t *r, const char *key);

/** Reads "id", which must equal the file's `id` and start with `prefix`, into dst[cap]. */
void ptc_state_rd_id(reader_t *r, const char *id, const char *prefix, char *dst, size_t cap);

/* ---- store writes and observers ---- */

/** Writes `doc` (consumed) as kind/id. Returns 0 or the store's error (message in err). */
int ptc_state_persist(ptc_state_t *st, const char *kind, const char *id, json_t *doc, char *err,
                      size_t errlen);

/** Deletes kind/id; a document that is already gone is not an error. */
int ptc_state_unpersist(ptc_state_t *st, const char *kind, const char *id, char *err,
                        size_t errlen);

/** Calls every observer with the change (`id` borrowed for the calls). */
void ptc_state_notify(ptc_state_t *st, ptc_state_kind_t kind, ptc_state_op_t op, const char *id);

/* ---- tokens and connectors (edge/state_connectors.c) ---- */

/** Frees a token record; NULL is ignored. */
void ptc_state_connectors_token_free(ptc_token_t *t);

/** Frees a connector record; NULL is ignored. */
void ptc_state_connectors_connector_free(ptc_connector_t *c);

/** ptc_store_load() callback for KIND_TOKENS: adds the stored token to the state `data`. */
int ptc_state_connectors_load_token(void *data, const char *kind, const char *id, json_t *doc,
                                    char *err, size_t errlen);

/**
 * ptc_store_load() callback for KIND_CONNECTORS: adds the stored connector to the state
 * `data`; its group must be loaded already.
 */
int ptc_state_connectors_load_connector(void *data, const char *kind, const char *id, json_t *doc,
                                        char *err, size_t errlen);

#endif
