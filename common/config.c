/* SPDX-License-Identifier: MIT */
/*
 * Configuration loader (see config.h and docs/config-format.md). One recursive walk over the
 * schema tables fills the caller's struct from a jansson document; the first refusal stops
 * the walk and becomes the error message. Everything the walk allocates is reachable from
 * the struct as soon as it is allocated (array counts are set before their elements are
 * filled), so ptc_config_free() can always undo a partial load.
 */
#include "common/config.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* Values quoted from the document in messages are cut to this many bytes. */
#define QUOTE_MAX 64
/* The key path in messages ("listen[0].port") is cut to fit this buffer. */
#define KEYPATH_CAP 512

typedef struct loader {
    const char *name;
    const char *base_dir;
    char *err;
    size_t errlen;
    char path[KEYPATH_CAP];
    size_t path_len;
} loader_t;

/* ---- messages ---- */

/* Drops a UTF-8 sequence left incomplete at the end of s[0..len) by a cut, so that cut
 * messages and key paths stay valid UTF-8. Returns the new length. */
static size_t trim_utf8(char *s, size_t len)
{
    size_t i = len;
    size_t back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0 || ((unsigned char)s[i - 1] & 0x80) == 0) {
        return len;
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    if (back + 1 < need) {
        len = i - 1;
        s[len] = '\0';
    }
    return len;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n >= errlen) {
        trim_utf8(err, errlen - 1);
    }
}

static int fail(loader_t *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "<name>: <key path>: <reason>" (no key path at the root) and returns PTC_ECONFIG. */
static int fail(loader_t *ld, const char *fmt, ...)
{
    char reason[768];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n >= sizeof(reason)) {
        trim_utf8(reason, sizeof(reason) - 1);
    }
    if (ld->path_len == 0) {
        set_err(ld->err, ld->errlen, "%s: %s", ld->name, reason);
    } else {
        set_err(ld->err, ld->errlen, "%s: %s: %s", ld->name, ld->path, reason);
    }
    return PTC_ECONFIG;
}

/* A quoted, escaped and cut copy of a document string: "abc". */
static void quote(char *dst, size_t cap, const char *s)
{
    if (cap < 3) {
        dst[0] = '\0';
        return;
    }
    dst[0] = '"';
    size_t n = ptc_log_escape(dst + 1, cap - 2, s, strlen(s), QUOTE_MAX);
    dst[n + 1] = '"';
    dst[n + 2] = '\0';
}

/* What a value is, for "got ..." in messages. */
static void describe(char *dst, size_t cap, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        snprintf(dst, cap, "an object");
        break;
    case JSON_ARRAY:
        snprintf(dst, cap, "an array");
        break;
    case JSON_STRING:
        quote(dst, cap, json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(dst, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        /* A real that happens to be whole must not read like an integer ("got 3"). */
        int n = snprintf(dst, cap, "%.17g", json_real_value(v));
        if (n > 0 && (size_t)n + 3 <= cap && strpbrk(dst, ".eE") == NULL) {
            memcpy(dst + n, ".0", 3);
        }
        break;
    }
    case JSON_TRUE:
        snprintf(dst, cap, "true");
        break;
    case JSON_FALSE:
        snprintf(dst, cap, "false");
        break;
    case JSON_NULL:
        snprintf(dst, cap, "null");
        break;
    }
}

static int fail_type(loader_t *ld, const char *expected, const json_t *v)
{
    char got[QUOTE_MAX * 6 + 16];
    describe(got, sizeof(got), v);
    return fail(ld, "expected %s, got %s", expected, got);
}

/* jansson's error text may quote the document near the error: control bytes and non-ASCII
 * bytes are shown as \xNN so the message stays one printable line. */
static void sanitize(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s != '\0' && o + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", c);
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
}

const char *ptc_config_json_reason(json_error_t *e)
{
    /* A duplicate key's own name is no secret, and says which key it is. */
    char *near = strstr(e->text, " near ");
    if (near != NULL && strcmp(near, " near end of file") != 0 &&
        strncmp(e->text, "duplicate object key near ", 26) != 0) {
        *near = '\0';
    }
    return e->text;
}

/* ---- key paths ---- */

/* Appends ".key" (or "key" at the root) and returns the previous length for path_pop. */
static size_t path_push_key(loader_t *ld, const char *key)
{
    size_t old = ld->path_len;
    char esc[QUOTE_MAX * 6 + 8];
    ptc_log_escape(esc, sizeof(esc), key, strlen(key), QUOTE_MAX);
    snprintf(ld->path + old, sizeof(ld->path) - old, "%s%s", old == 0 ? "" : ".", esc);
    ld->path_len = trim_utf8(ld->path, strnlen(ld->path, sizeof(ld->path)));
    return old;
}

static size_t path_push_index(loader_t *ld, size_t i)
{
    size_t old = ld->path_len;
    snprintf(ld->path + old, sizeof(ld->path) - old, "[%zu]", i);
    ld->path_len = strnlen(ld->path, sizeof(ld->path));
    return old;
}

static void path_pop(loader_t *ld, size_t old)
{
    ld->path_len = old;
    ld->path[old] = '\0';
}

/* ---- "did you mean" ---- */

/* Optimal-string-alignment distance (edits and adjacent swaps), for keys up to 63 bytes. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    if (la > 63 || lb > 63) {
        return SIZE_MAX;
    }
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++) {
        d[i][0] = i;
    }
    for (size_t j = 0; j <= lb; j++) {
        d[0][j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) {
                best = d[i][j - 1] + 1;
            }
            if (d[i - 1][j - 1] + cost < best) {
                best = d[i - 1][j - 1] + cost;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best) {
                best = d[i - 2][j - 2] + 1;
            }
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The schema key closest to an unknown one, if it is close enough to be a typo. */
static const char *suggest(const ptc_config_schema_t *schema, const char *key)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < schema->cnt; i++) {
        const char *cand = schema->fields[i].key;
        size_t d = edit_distance(key, cand);
        if (d <= 2 && d * 3 <= strlen(cand) && d < best_d) {
            best = cand;
            best_d = d;
        }
    }
    return best;
}

/* ---- durations and sizes ---- */

/* Decimal digits then a unit from the table; the value is digits * factor. */
typedef struct unit {
    const char *name;
    uint64_t factor;
} unit_t;

static const unit_t duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {NULL, 0},
};

static const unit_t size_units[] = {
    {"B", 1},
    {"KiB", 1024},
    {"MiB", 1024 * 1024},
    {"GiB", 1024 * 1024 * 1024},
    {"TiB", (uint64_t)1024 * 1024 * 1024 * 1024},
    {NULL, 0},
};

static int parse_with_units(const char *s, const unit_t *units, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9') {
        return PTC_ECONFIG;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (v > ((uint64_t)INT64_MAX - digit) / 10) {
            return PTC_ECONFIG;
        }
        v = v * 10 + digit;
    }
    for (const unit_t *u = units; u->name != NULL; u++) {
        if (strcmp(p, u->name) == 0) {
            if (v != 0 && u->factor > (uint64_t)INT64_MAX / v) {
                return PTC_ECONFIG;
            }
            *out = v * u->factor;
            return 0;
        }
    }
    return PTC_ECONFIG;
}

int ptc_config_parse_duration(const char *s, uint64_t *ms)
{
    return parse_with_units(s, duration_units, ms);
}

int ptc_config_parse_size(const char *s, uint64_t *bytes)
{
    return parse_with_units(s, size_units, bytes);
}

/* Writes v with the largest unit (from the end of the table) that divides it exactly. */
static void format_units(char *dst, size_t cap, uint64_t v, const unit_t *units)
{
    const unit_t *pick = &units[0];
    for (const unit_t *u = units; u->name != NULL; u++) {
        if (v != 0 && v % u->factor == 0) {
            pick = u;
        }
    }
    snprintf(dst, cap, "%llu%s", (unsigned long long)(v / pick->factor), pick->name);
}

/* ---- ranges ---- */

static bool has_range(const ptc_config_field_t *f)
{
    return f->min != 0 || f->max != 0;
}

static bool in_range(const ptc_config_field_t *f, int64_t v)
{
    return !has_range(f) || (v >= f->min && v <= f->max);
}

/* " 1..65535", " >= 1", " <= 10" or "" (no range); bounds written by `fmt_bound`. */
static void format_range(char *dst, size_t cap, const ptc_config_field_t *f, const unit_t *units)
{
    char lo[32];
    char hi[32];
    if (!has_range(f)) {
        dst[0] = '\0';
        return;
    }
    if (units != NULL) {
        format_units(lo, sizeof(lo), f->min < 0 ? 0 : (uint64_t)f->min, units);
        format_units(hi, sizeof(hi), f->max < 0 ? 0 : (uint64_t)f->max, units);
    } else {
        snprintf(lo, sizeof(lo), "%lld", (long long)f->min);
        snprintf(hi, sizeof(hi), "%lld", (long long)f->max);
    }
    if (f->max == INT64_MAX) {
        snprintf(dst, cap, " >= %s", lo);
    } else if (f->min == INT64_MIN) {
        snprintf(dst, cap, " <= %s", hi);
    } else {
        snprintf(dst, cap, " %s..%s", lo, hi);
    }
}

/* ---- loading ---- */

static int load_object(loader_t *ld, const json_t *obj, const ptc_config_schema_t *schema,
                       void *base);

static char *join_path(const char *dir, const char *rel)
{
    if (rel[0] == '/' || dir == NULL || dir[0] == '\0') {
        return ptc_xstrdup(rel);
    }
    size_t dl = strlen(dir);
    size_t rl = strlen(rel);
    bool has_slash = dir[dl - 1] == '/';
    char *p = ptc_xmalloc(dl + rl + 2);
    memcpy(p, dir, dl);
    if (!has_slash) {
        p[dl++] = '/';
    }
    memcpy(p + dl, rel, rl + 1);
    return p;
}

static int load_string(loader_t *ld, const ptc_config_field_t *f, const json_t *v, char **dst)
{
    const char *expected = f->type == PTC_CONFIG_STRING  ? "a string"
                           : f->type == PTC_CONFIG_NESTR ? "a non-empty string"
                                                         : "a non-empty path";
    if (!json_is_string(v)) {
        return fail_type(ld, expected, v);
    }
    const char *s = json_string_value(v);
    if (f->type != PTC_CONFIG_STRING && s[0] == '\0') {
        return fail_type(ld, expected, v);
    }
    *dst = f->type == PTC_CONFIG_PATH ? join_path(ld->base_dir, s) : ptc_xstrdup(s);
    return 0;
}

static int load_int(loader_t *ld, const ptc_config_field_t *f, const json_t *v, int64_t *dst)
{
    char expected[96];
    char range[80];
    format_range(range, sizeof(range), f, NULL);
    snprintf(expected, sizeof(expected), "an integer%s", range);
    if (!json_is_integer(v) || !in_range(f, (int64_t)json_integer_value(v))) {
        return fail_type(ld, expected, v);
    }
    *dst = (int64_t)json_integer_value(v);
    return 0;
}

static int load_enum(loader_t *ld, const ptc_config_field_t *f, const json_t *v, int *dst)
{
    if (json_is_string(v)) {
        for (int i = 0; f->enum_names[i] != NULL; i++) {
            if (strcmp(json_string_value(v), f->enum_names[i]) == 0) {
                *dst = i;
                return 0;
            }
        }
    }
    char expected[512];
    size_t o = (size_t)snprintf(expected, sizeof(expected), "one of ");
    for (int i = 0; f->enum_names[i] != NULL && o < sizeof(expected); i++) {
        o += (size_t)snprintf(expected + o, sizeof(expected) - o, "%s%s", i == 0 ? "" : ", ",
                              f->enum_names[i]);
    }
    return fail_type(ld, expected, v);
}

/* DURATION and SIZE: a non-negative JSON integer, or a string with a unit. */
static int load_units(loader_t *ld, const ptc_config_field_t *f, const json_t *v, uint64_t *dst)
{
    bool is_duration = f->type == PTC_CONFIG_DURATION;
    const unit_t *units = is_duration ? duration_units : size_units;
    uint64_t val = 0;
    bool is_ok = false;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        val = (uint64_t)json_integer_value(v);
        is_ok = true;
    } else if (json_is_string(v)) {
        is_ok = parse_with_units(json_string_value(v), units, &val) == 0;
    }
    if (!is_ok) {
        return fail_type(ld,
                         is_duration ? "a duration such as 250ms, 30s, 5m or 1h"
                                     : "a size such as 65536, 64KiB, 1MiB or 2GiB",
                         v);
    }
    /* val <= INT64_MAX here, so the signed comparison is exact. */
    if (!in_range(f, (int64_t)val)) {
        char range[80];
        char expected[96];
        format_range(range, sizeof(range), f, units);
        snprintf(expected, sizeof(expected), "%s%s", is_duration ? "a duration" : "a size", range);
        return fail_type(ld, expected, v);
    }
    *dst = val;
    return 0;
}

/* Checks an array or map's element count against [min, max]; `noun` is singular. */
static int check_count(loader_t *ld, const ptc_config_field_t *f, size_t cnt, const char *expected,
                       const char *noun, const char *nouns)
{
    if (!has_range(f) || ((int64_t)cnt >= f->min && (int64_t)cnt <= f->max)) {
        return 0;
    }
    if (f->max == INT64_MAX) {
        return fail(ld, "expected %s with at least %lld %s, got %zu", expected, (long long)f->min,
                    f->min == 1 ? noun : nouns, cnt);
    }
    return fail(ld, "expected %s with %lld..%lld %s, got %zu", expected, (long long)f->min,
                (long long)f->max, nouns, cnt);
}

static int load_object_array(loader_t *ld, const ptc_config_field_t *f, const json_t *v, void *base)
{
    if (!json_is_array(v)) {
        return fail_type(ld, "an array of objects", v);
    }
    size_t cnt = json_array_size(v);
    int rc = check_count(ld, f, cnt, "an array of objects", "element", "elements");
    if (rc != 0) {
        return rc;
    }
    if (cnt == 0) {
        return 0;
    }
    const ptc_config_schema_t *sub = f->schema;
    char *elems = ptc_xcalloc(cnt, sub->size);
    *(void **)((char *)base + f->offset) = elems;
    *(size_t *)((char *)base + f->count_offset) = cnt;
    for (size_t i = 0; i < cnt; i++) {
        size_t old = path_push_index(ld, i);
        rc = load_object(ld, json_array_get(v, i), sub, elems + i * sub->size);
        path_pop(ld, old);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int load_string_array(loader_t *ld, const ptc_config_field_t *f, const json_t *v, void *base)
{
    if (!json_is_array(v)) {
        return fail_type(ld, "an array of strings", v);
    }
    size_t cnt = json_array_size(v);
    int rc = check_count(ld, f, cnt, "an array of strings", "element", "elements");
    if (rc != 0) {
        return rc;
    }
    if (cnt == 0) {
        return 0;
    }
    char **strs = ptc_xcalloc(cnt, sizeof(char *));
    *(char ***)((char *)base + f->offset) = strs;
    *(size_t *)((char *)base + f->count_offset) = cnt;
    for (size_t i = 0; i < cnt; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || json_string_value(e)[0] == '\0') {
            size_t old = path_push_index(ld, i);
            rc = fail_type(ld, "a non-empty string", e);
            path_pop(ld, old);
            return rc;
        }
        strs[i] = ptc_xstrdup(json_string_value(e));
    }
    return 0;
}

static int load_string_map(loader_t *ld, const ptc_config_field_t *f, json_t *v, void *base)
{
    if (!json_is_object(v)) {
        return fail_type(ld, "an object of strings", v);
    }
    size_t cnt = json_object_size(v);
    int rc = check_count(ld, f, cnt, "an object of strings", "entry", "entries");
    if (rc != 0) {
        return rc;
    }
    if (cnt == 0) {
        return 0;
    }
    ptc_config_kv_t *kvs = ptc_xcalloc(cnt, sizeof(*kvs));
    *(ptc_config_kv_t **)((char *)base + f->offset) = kvs;
    *(size_t *)((char *)base + f->count_offset) = cnt;
    size_t i = 0;
    const char *key;
    json_t *e;
    json_object_foreach(v, key, e)
    {
        if (key[0] == '\0') {
            return fail(ld, "expected non-empty keys, got \"\"");
        }
        if (!json_is_string(e) || json_string_value(e)[0] == '\0') {
            size_t old = path_push_key(ld, key);
            rc = fail_type(ld, "a non-empty string", e);
            path_pop(ld, old);
            return rc;
        }
        kvs[i].key = ptc_xstrdup(key);
        kvs[i].value = ptc_xstrdup(json_string_value(e));
        i++;
    }
    return 0;
}

static int load_value(loader_t *ld, const ptc_config_field_t *f, json_t *v, void *base)
{
    void *dst = (char *)base + f->offset;
    switch (f->type) {
    case PTC_CONFIG_STRING:
    case PTC_CONFIG_NESTR:
    case PTC_CONFIG_PATH:
        return load_string(ld, f, v, dst);
    case PTC_CONFIG_INT:
        return load_int(ld, f, v, dst);
    case PTC_CONFIG_BOOL:
        if (!json_is_boolean(v)) {
            return fail_type(ld, "true or false", v);
        }
        *(bool *)dst = json_is_true(v);
        return 0;
    case PTC_CONFIG_ENUM:
        return load_enum(ld, f, v, dst);
    case PTC_CONFIG_DURATION:
    case PTC_CONFIG_SIZE:
        return load_units(ld, f, v, dst);
    case PTC_CONFIG_OBJECT:
        return load_object(ld, v, f->schema, dst);
    case PTC_CONFIG_OBJECT_ARRAY:
        return load_object_array(ld, f, v, base);
    case PTC_CONFIG_STRING_ARRAY:
        return load_string_array(ld, f, v, base);
    case PTC_CONFIG_STRING_MAP:
        return load_string_map(ld, f, v, base);
    }
    return fail(ld, "unsupported field type %d in the schema", (int)f->type);
}

/* Sets the default of an absent, optional key. */
static int load_default(loader_t *ld, const ptc_config_field_t *f, void *base)
{
    void *dst = (char *)base + f->offset;
    switch (f->type) {
    case PTC_CONFIG_STRING:
    case PTC_CONFIG_NESTR:
        *(char **)dst = ptc_xstrdup(f->def_str);
        return 0;
    case PTC_CONFIG_PATH:
        *(char **)dst = f->def_str != NULL ? join_path(ld->base_dir, f->def_str) : NULL;
        return 0;
    case PTC_CONFIG_INT:
        *(int64_t *)dst = f->def_int;
        return 0;
    case PTC_CONFIG_BOOL:
        *(bool *)dst = f->def_int != 0;
        return 0;
    case PTC_CONFIG_ENUM:
        *(int *)dst = (int)f->def_int;
        return 0;
    case PTC_CONFIG_DURATION:
    case PTC_CONFIG_SIZE:
        *(uint64_t *)dst = (uint64_t)f->def_int;
        return 0;
    case PTC_CONFIG_OBJECT:
        /* An absent object reads as {}: its own defaults apply, its required keys are
         * reported as missing. */
        return load_object(ld, NULL, f->schema, dst);
    case PTC_CONFIG_OBJECT_ARRAY:
    case PTC_CONFIG_STRING_ARRAY:
    case PTC_CONFIG_STRING_MAP:
        return 0;
    }
    return fail(ld, "unsupported field type %d in the schema", (int)f->type);
}

/* An array or map that must have elements cannot be absent: reading it as empty would break
 * the minimum the schema asks for. */
static bool min_count_required(const ptc_config_field_t *f)
{
    bool is_collection = f->type == PTC_CONFIG_OBJECT_ARRAY || f->type == PTC_CONFIG_STRING_ARRAY ||
                         f->type == PTC_CONFIG_STRING_MAP;
    return is_collection && f->min > 0;
}

/* Fills `base` from `obj`; obj NULL stands for an empty object. */
static int load_object(loader_t *ld, const json_t *obj, const ptc_config_schema_t *schema,
                       void *base)
{
    if (obj != NULL && !json_is_object(obj)) {
        return fail_type(ld, "an object", obj);
    }
    if (obj != NULL) {
        /* Unknown keys first, so a typo is reported as a typo rather than as the missing
         * required key it was meant to be. jansson keeps document order. */
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)obj, key, v)
        {
            bool is_known = false;
            for (size_t i = 0; i < schema->cnt && !is_known; i++) {
                is_known = strcmp(schema->fields[i].key, key) == 0;
            }
            if (!is_known) {
                char q[QUOTE_MAX * 6 + 8];
                quote(q, sizeof(q), key);
                const char *hint = suggest(schema, key);
                if (hint != NULL) {
                    return fail(ld, "unknown key %s (did you mean \"%s\"?)", q, hint);
                }
                return fail(ld, "unknown key %s", q);
            }
        }
    }
    for (size_t i = 0; i < schema->cnt; i++) {
        const ptc_config_field_t *f = &schema->fields[i];
        json_t *v = obj != NULL ? json_object_get(obj, f->key) : NULL;
        size_t old = path_push_key(ld, f->key);
        int rc;
        if (v != NULL) {
            rc = load_value(ld, f, v, base);
        } else if (f->required || min_count_required(f)) {
            rc = fail(ld, "required key is missing");
        } else {
            rc = load_default(ld, f, base);
        }
        path_pop(ld, old);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- public API ---- */

int ptc_config_load_json(const char *name, json_t *root, const char *base_dir,
                         const ptc_config_schema_t *schema, void *out, char *err, size_t errlen)
{
    memset(out, 0, schema->size);
    set_err(err, errlen, "%s", "");
    loader_t ld = {.name = name, .base_dir = base_dir, .err = err, .errlen = errlen};
    return load_object(&ld, root, schema, out);
}

int ptc_config_load_buffer(const char *name, const void *data, size_t len, const char *base_dir,
                           const ptc_config_schema_t *schema, void *out, char *err, size_t errlen)
{
    memset(out, 0, schema->size);
    if (len > PTC_CONFIG_MAX_BYTES) {
        set_err(err, errlen, "%s: document is larger than 1 MiB", name);
        return PTC_ECONFIG;
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        char text[sizeof(jerr.text) * 4];
        sanitize(text, sizeof(text), ptc_config_json_reason(&jerr));
        set_err(err, errlen, "%s:%d:%d: invalid JSON: %s", name, jerr.line, jerr.column, text);
        return PTC_ECONFIG;
    }
    int rc = ptc_config_load_json(name, root, base_dir, schema, out, err, errlen);
    json_decref(root);
    return rc;
}

/* Reads at most PTC_CONFIG_MAX_BYTES + 1 bytes: one more than allowed is enough to refuse
 * the file, whatever it is (a pipe or /dev/zero has no useful st_size). */
static int read_file(const char *path, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return -errno;
    }
    int rc = 0;
    char *buf = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = UV_EISDIR;
        goto fail;
    }
    size_t cap = PTC_CONFIG_MAX_BYTES + 1;
    buf = ptc_xmalloc(cap);
    size_t len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = -errno;
            goto fail;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return 0;

fail:
    free(buf);
    close(fd);
    return rc;
}

int ptc_config_load_file(const char *path, const ptc_config_schema_t *schema, void *out, char *err,
                         size_t errlen)
{
    memset(out, 0, schema->size);
    char *data = NULL;
    size_t len = 0;
    int rc = read_file(path, &data, &len);
    if (rc != 0) {
        set_err(err, errlen, "%s: cannot read: %s", path, ptc_strerror(rc));
        return rc;
    }
    /* Relative paths in the file are relative to the file's own directory. */
    char *dir = NULL;
    const char *slash = strrchr(path, '/');
    if (slash != NULL) {
        size_t dl = slash == path ? 1 : (size_t)(slash - path);
        dir = ptc_xmalloc(dl + 1);
        memcpy(dir, path, dl);
        dir[dl] = '\0';
    }
    rc = ptc_config_load_buffer(path, data, len, dir, schema, out, err, errlen);
    free(dir);
    free(data);
    return rc;
}

/* ---- freeing ---- */

void ptc_config_free(const ptc_config_schema_t *schema, void *out)
{
    for (size_t i = 0; i < schema->cnt; i++) {
        const ptc_config_field_t *f = &schema->fields[i];
        void *dst = (char *)out + f->offset;
        size_t *cnt = (size_t *)((char *)out + f->count_offset);
        switch (f->type) {
        case PTC_CONFIG_STRING:
        case PTC_CONFIG_NESTR:
        case PTC_CONFIG_PATH:
            free(*(char **)dst);
            *(char **)dst = NULL;
            break;
        case PTC_CONFIG_INT:
        case PTC_CONFIG_BOOL:
        case PTC_CONFIG_ENUM:
        case PTC_CONFIG_DURATION:
        case PTC_CONFIG_SIZE:
            break;
        case PTC_CONFIG_OBJECT:
            ptc_config_free(f->schema, dst);
            break;
        case PTC_CONFIG_OBJECT_ARRAY: {
            char *elems = *(char **)dst;
            for (size_t j = 0; elems != NULL && j < *cnt; j++) {
                ptc_config_free(f->schema, elems + j * f->schema->size);
            }
            free(elems);
            *(char **)dst = NULL;
            *cnt = 0;
            break;
        }
        case PTC_CONFIG_STRING_ARRAY: {
            char **strs = *(char ***)dst;
            for (size_t j = 0; strs != NULL && j < *cnt; j++) {
                free(strs[j]);
            }
            free(strs);
            *(char ***)dst = NULL;
            *cnt = 0;
            break;
        }
        case PTC_CONFIG_STRING_MAP: {
            ptc_config_kv_t *kvs = *(ptc_config_kv_t **)dst;
            for (size_t j = 0; kvs != NULL && j < *cnt; j++) {
                free(kvs[j].key);
                free(kvs[j].value);
            }
            free(kvs);
            *(ptc_config_kv_t **)dst = NULL;
            *cnt = 0;
            break;
        }
        }
    }
}

/* ---- helpers for checks across keys ---- */

int ptc_config_fail(char *err, size_t errlen, const char *name, const char *fmt, ...)
{
    if (errlen > 0) {
        int n = snprintf(err, errlen, "%s: ", name);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return PTC_ECONFIG;
}

const char *ptc_config_quote(const char *s, char *buf, size_t cap)
{
    char esc[200];
    ptc_log_escape(esc, sizeof(esc), s, strlen(s), 64);
    snprintf(buf, cap, "\"%s\"", esc);
    return buf;
}
