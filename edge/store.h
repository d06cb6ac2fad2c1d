/* SPDX-License-Identifier: MIT */
/*
 * The edge's state store: a small interface over documents (JSON objects) grouped by kind
 * ("groups", "tokens", "connectors", "apps", "certs") and keyed by id. edge/state.c keeps the
 * model in memory and writes every change through a store; the store only persists.
 *
 * The embedded backend (ptc_store_jsondir_open) keeps one file per document,
 * <dir>/<kind>/<id>.json, each written atomically (temporary file in the same directory,
 * fsync, rename, fsync of the directory) with mode 0600, so a crash never leaves a
 * half-written document. A document that cannot be read or parsed fails the load with a
 * message naming the file; the store never rewrites a file it could not read.
 *
 * Other backends (etcd, later) implement the same operations. A store belongs to one loop;
 * its calls are synchronous (small files on local disk).
 */
#ifndef PTC_EDGE_STORE_H
#define PTC_EDGE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

typedef struct ptc_store ptc_store_t;

/**
 * Called once per document by ptc_store_load(); `doc` is borrowed for the call. A non-zero
 * return stops the load and is returned by it (with the callback's message in err).
 */
typedef int (*ptc_store_each_cb)(void *data, const char *kind, const char *id, json_t *doc,
                                 char *err, size_t errlen);

typedef struct ptc_store_ops {
    int (*load)(ptc_store_t *s, const char *kind, ptc_store_each_cb cb, void *data, char *err,
                size_t errlen);
    int (*put)(ptc_store_t *s, const char *kind, const char *id, json_t *doc, char *err,
               size_t errlen);
    int (*del)(ptc_store_t *s, const char *kind, const char *id, char *err, size_t errlen);
    void (*free)(ptc_store_t *s);
} ptc_store_ops_t;

/** A store: backends embed this as their first member. */
struct ptc_store {
    const ptc_store_ops_t *ops;
};

/**
 * Opens (creating it, mode 0700, when missing) a directory store. Returns 0 and *out, or a
 * negative errno with a message naming the directory in err.
 */
PTC_MUST_CHECK int ptc_store_jsondir_open(const char *dir, ptc_store_t **out, char *err,
                                          size_t errlen);

/**
 * Calls cb for every document of `kind`, in id order. Returns 0; PTC_EFORMAT when a file is
 * not a JSON object or its name is not a valid id (the message names the file); a negative
 * errno when the directory or a file cannot be read; or the callback's return value.
 */
PTC_MUST_CHECK int ptc_store_load(ptc_store_t *s, const char *kind, ptc_store_each_cb cb,
                                  void *data, char *err, size_t errlen);

/** Writes (creates or replaces) one document atomically. Returns 0 or a negative errno. */
PTC_MUST_CHECK int ptc_store_put(ptc_store_t *s, const char *kind, const char *id, json_t *doc,
                                 char *err, size_t errlen);

/** Deletes one document; deleting a missing one is PTC_ENOTFOUND. */
PTC_MUST_CHECK int ptc_store_del(ptc_store_t *s, const char *kind, const char *id, char *err,
                                 size_t errlen);

/** Closes the store (NULL is ignored). */
void ptc_store_free(ptc_store_t *s);

/**
 * True if `id` may name a document: 1..128 bytes of [A-Za-z0-9._-], not starting with '.'
 * (ids become file names: no separators, no hidden or temporary files).
 */
bool ptc_store_id_is_valid(const char *id);

#endif
