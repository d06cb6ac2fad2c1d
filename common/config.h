/* SPDX-License-Identifier: MIT */
/*
 * Schema-driven configuration loading (docs/config-format.md): a JSON document is checked
 * against a static table of field descriptors and copied into the caller's typed struct.
 * Every refusal (invalid JSON, unknown key, wrong type, out-of-range value, bad enum name,
 * bad duration or size, missing required key) produces one message that names the file,
 * the key path and the reason:
 *
 *     edge.json: listen[0].port: expected an integer 1..65535, got "abc"
 *
 * Strings quoted from the document in messages are escaped and cut. The loader owns what it
 * allocates inside the struct (strings, arrays, maps); ptc_config_free() releases it.
 * Depends on jansson, common/err and common/log (for the escaper).
 */
#ifndef PTC_COMMON_CONFIG_H
#define PTC_COMMON_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/** Files and buffers larger than this are refused. */
#define PTC_CONFIG_MAX_BYTES (1024 * 1024)

/**
 * Field types and the C type each one fills at `offset`:
 *
 * - STRING        char * (any string, "" allowed)
 * - NESTR         char * (non-empty string)
 * - PATH          char * (non-empty; a relative path is joined to the file's directory)
 * - INT           int64_t (JSON integer; range [min, max] unless both are 0)
 * - BOOL          bool
 * - ENUM          int (index of the name in enum_names)
 * - DURATION      uint64_t milliseconds (JSON integer ms, or "250ms", "30s", "5m", "1h")
 * - SIZE          uint64_t bytes (JSON integer, or "512B", "64KiB", "1MiB", "2GiB", "1TiB")
 * - OBJECT        a struct described by `schema`, embedded at offset
 * - OBJECT_ARRAY  a pointer to schema->size-byte elements at offset, size_t count at
 *                 count_offset
 * - STRING_ARRAY  char ** at offset, size_t count at count_offset (strings non-empty)
 * - STRING_MAP    ptc_config_kv_t * at offset, size_t count at count_offset (a JSON object
 *                 whose values are non-empty strings, kept in document order)
 *
 * For DURATION and SIZE, [min, max] bounds the value unless both are 0; for the three array
 * and map types it bounds the element count unless both are 0, and a minimum above 0 makes
 * the key required. INT64_MAX as max (or INT64_MIN as min) leaves that side open.
 */
typedef enum ptc_config_type {
    PTC_CONFIG_STRING,
    PTC_CONFIG_NESTR,
    PTC_CONFIG_PATH,
    PTC_CONFIG_INT,
    PTC_CONFIG_BOOL,
    PTC_CONFIG_ENUM,
    PTC_CONFIG_DURATION,
    PTC_CONFIG_SIZE,
    PTC_CONFIG_OBJECT,
    PTC_CONFIG_OBJECT_ARRAY,
    PTC_CONFIG_STRING_ARRAY,
    PTC_CONFIG_STRING_MAP,
} ptc_config_type_t;

/** One entry of a STRING_MAP (both strings owned by the loaded struct). */
typedef struct ptc_config_kv {
    char *key;
    char *value;
} ptc_config_kv_t;

typedef struct ptc_config_schema ptc_config_schema_t;

/**
 * Describes one key of a JSON object. An absent key that is not `required` takes its
 * default: `def_str` (copied) for STRING, NESTR and PATH (NULL leaves NULL); `def_int` for
 * INT, BOOL (non-zero is true), ENUM (the index), DURATION (ms) and SIZE (bytes); an absent
 * OBJECT is read as {} (so its own defaults apply, and its required keys are reported as
 * missing); absent arrays and maps are empty. Defaults are not range-checked.
 */
typedef struct ptc_config_field {
    const char *key;
    ptc_config_type_t type;
    size_t offset;
    bool required;
    const char *def_str;
    int64_t def_int;
    int64_t min;
    int64_t max;
    const char *const *enum_names;     /* ENUM: NULL-terminated list */
    const ptc_config_schema_t *schema; /* OBJECT, OBJECT_ARRAY */
    size_t count_offset;               /* OBJECT_ARRAY, STRING_ARRAY, STRING_MAP */
} ptc_config_field_t;

/** The fields of one struct type; `size` is sizeof the struct (the element size of arrays). */
struct ptc_config_schema {
    const ptc_config_field_t *fields;
    size_t cnt;
    size_t size;
};

/** Builds a ptc_config_schema_t initializer from a struct type and a field array. */
#define PTC_CONFIG_SCHEMA(type, field_array)                                                       \
    {                                                                                              \
        .fields = (field_array), .cnt = sizeof(field_array) / sizeof((field_array)[0]),            \
        .size = sizeof(type)                                                                       \
    }

/**
 * Reads the file at `path` (at most PTC_CONFIG_MAX_BYTES), parses it with
 * JSON_REJECT_DUPLICATES and fills `out` (zeroed first) according to `schema`. Relative
 * PATH values are joined to the file's directory. Messages name the file by `path` as given.
 *
 * Returns 0; PTC_ECONFIG for invalid JSON, a refused value or a file over the size limit; or
 * the negative errno of open/read (UV_ENOENT, UV_EACCES, UV_EISDIR, ...). On any error a
 * message is written to err[0..errlen) (NUL-terminated, cut to fit) and `out` may be partly
 * filled: call ptc_config_free() on success and on failure alike.
 */
PTC_MUST_CHECK int ptc_config_load_file(const char *path, const ptc_config_schema_t *schema,
                                        void *out, char *err, size_t errlen);

/**
 * As ptc_config_load_file() for a document in memory (borrowed; need not be
 * NUL-terminated). `name` is used in messages; relative PATH values are joined to
 * `base_dir`, or kept as they are when it is NULL. Returns 0 or PTC_ECONFIG.
 */
PTC_MUST_CHECK int ptc_config_load_buffer(const char *name, const void *data, size_t len,
                                          const char *base_dir, const ptc_config_schema_t *schema,
                                          void *out, char *err, size_t errlen);

/**
 * As ptc_config_load_buffer() for an already parsed document (borrowed; not modified). The
 * root must be an object. Returns 0 or PTC_ECONFIG.
 */
PTC_MUST_CHECK int ptc_config_load_json(const char *name, json_t *root, const char *base_dir,
                                        const ptc_config_schema_t *schema, void *out, char *err,
                                        size_t errlen);

/**
 * Frees every string, array and map the loader allocated in `out` (recursively) and resets
 * those members to NULL/0. Safe on a zeroed struct, after a failed load, and twice.
 */
void ptc_config_free(const ptc_config_schema_t *schema, void *out);

/**
 * Parses a duration string ("250ms", "30s", "5m", "1h": decimal digits and one unit) into
 * milliseconds. Returns 0 or PTC_ECONFIG (syntax, unknown unit, overflow past INT64_MAX).
 */
PTC_MUST_CHECK int ptc_config_parse_duration(const char *s, uint64_t *ms);

/**
 * Parses a size string ("512B", "64KiB", "1MiB", "2GiB", "1TiB": decimal digits and one
 * binary unit) into bytes. Returns 0 or PTC_ECONFIG (syntax, unknown unit such as "MB",
 * overflow past INT64_MAX).
 */
PTC_MUST_CHECK int ptc_config_parse_size(const char *s, uint64_t *bytes);

/**
 * For checks that span several keys, after a load: writes "<name>: " and the formatted
 * "<key path>: <reason>" into err[0..errlen), in the loader's message style, and returns
 * PTC_ECONFIG.
 */
int ptc_config_fail(char *err, size_t errlen, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * jansson's description of a parse error, in place and returned: the offending token it
 * quotes (" near '...'") is cut, since it may be a secret (a password in a proxy URL, a
 * private key in a state file); " near end of file" and a duplicate key's name stay.
 * Report it with the error's line and column.
 */
const char *ptc_config_json_reason(json_error_t *e);

/** Quotes a value from a file for such a message into buf: escaped, cut to 64 bytes. */
const char *ptc_config_quote(const char *s, char *buf, size_t cap);

#endif
