/* SPDX-License-Identifier: MIT */
/*
 * The edge's in-memory state, written through a ptc_store_t (see state.h). Every mutation
 * follows one order: validate, build the new document, write it to the store, and only then
 * change memory and call the observers, so that a failed write leaves memory as it was.
 * Records live in arrays of pointers sorted by their key (binary search); apps are also
 * indexed by external host in a small hash table of buckets, rebuilt when apps change (rare),
 * so that the router's per-request lookup is a hash probe plus a short prefix scan. This file
 * holds the shared machinery (containers, messages, time, stored documents, observers), the
 * groups, the apps, the certificates and the state's lifetime; registration tokens and
 * connectors are in edge/state_connectors.c.
 */
#include "edge/state.h"

#include <assert.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/url.h"
#include "edge/state_int.h"

#define PEM_MAX (256 * 1024)

/* ---- containers ---- */

/* The first index whose key is >= key. */
static size_t vec_lower_bound(const ptrvec_t *pv, const char *key, key_fn kf)
{
    size_t lo = 0;
    size_t hi = pv->cnt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(kf(pv->v[mid]), key) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The index of the record with this key, or SIZE_MAX. */
size_t ptc_state_vec_index(const ptrvec_t *pv, const char *key, key_fn kf)
{
    size_t i = vec_lower_bound(pv, key, kf);
    return i < pv->cnt && strcmp(kf(pv->v[i]), key) == 0 ? i : SIZE_MAX;
}

void *ptc_state_vec_find(const ptrvec_t *pv, const char *key, key_fn kf)
{
    size_t i = ptc_state_vec_index(pv, key, kf);
    return i != SIZE_MAX ? pv->v[i] : NULL;
}

void ptc_state_vec_insert(ptrvec_t *pv, void *rec, key_fn kf)
{
    if (pv->cnt == pv->cap) {
        pv->cap = pv->cap != 0 ? pv->cap * 2 : 8;
        pv->v = ptc_xrealloc(pv->v, pv->cap * sizeof(*pv->v));
    }
    size_t i = vec_lower_bound(pv, kf(rec), kf);
    memmove(pv->v + i + 1, pv->v + i, (pv->cnt - i) * sizeof(*pv->v));
    pv->v[i] = rec;
    pv->cnt++;
}

void ptc_state_vec_remove(ptrvec_t *pv, size_t i)
{
    memmove(pv->v + i, pv->v + i + 1, (pv->cnt - i - 1) * sizeof(*pv->v));
    pv->cnt--;
}

/* Writes prefix + 2*nbytes random hex digits into out, unique among `pv`. */
void ptc_state_new_id(const ptrvec_t *pv, key_fn kf, const char *prefix, size_t nbytes, char *out,
                      size_t cap)
{
    uint8_t raw[16];
    size_t prefix_len = strlen(prefix);
    assert(nbytes <= sizeof(raw) && prefix_len + 2 * nbytes < cap);
    memcpy(out, prefix, prefix_len);
    do {
        ptc_random_bytes(raw, nbytes);
        ptc_state_to_hex(raw, nbytes, out + prefix_len, cap - prefix_len);
    } while (ptc_state_vec_index(pv, out, kf) != SIZE_MAX);
}

static const char *group_key(const void *rec)
{
    return ((const ptc_group_t *)rec)->name;
}

static const char *app_key(const void *rec)
{
    return ((const ptc_app_t *)rec)->name;
}

static const char *cert_key(const void *rec)
{
    return ((const ptc_cert_t *)rec)->id;
}

/* ---- messages ---- */

int ptc_state_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *ptc_state_quote(char *dst, size_t cap, const char *s)
{
    dst[0] = '"';
    size_t n = ptc_log_escape(dst + 1, cap - 2, s, strlen(s), QUOTE_MAX);
    dst[n + 1] = '"';
    dst[n + 2] = '\0';
    return dst;
}

/* ---- time ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int y, unsigned m)
{
    static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

void ptc_state_time_format(uint64_t ms, char out[PTC_STATE_TIME_CAP])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Formatted in a roomier buffer: the compiler cannot know that the fields are in range. */
    char tmp[96];
    int n = snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (unsigned)(ms % 1000));
    size_t len = n > 0 ? (size_t)n : 0;
    if (len >= PTC_STATE_TIME_CAP) {
        len = PTC_STATE_TIME_CAP - 1;
    }
    memcpy(out, tmp, len);
    out[len] = '\0';
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char c)
{
    if (**p != c) {
        return false;
    }
    (*p)++;
    return true;
}

int ptc_state_time_parse(const char *s, uint64_t *ms)
{
    const char *p = s;
    int y;
    int mo;
    int d;
    int h;
    int mi;
    int sec;
    if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
        !digits(&p, 2, &d)) {
        return PTC_EFORMAT;
    }
    if (!expect(&p, 'T') && !expect(&p, 't')) {
        return PTC_EFORMAT;
    }
    if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') ||
        !digits(&p, 2, &sec)) {
        return PTC_EFORMAT;
    }
    if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo) || h > 23 ||
        mi > 59 || sec > 60) {
        return PTC_EFORMAT;
    }
    unsigned frac = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n < 3) {
                frac = frac * 10 + (unsigned)(*p - '0');
            }
            n++;
            p++;
        }
        if (n == 0) {
            return PTC_EFORMAT;
        }
        for (; n < 3; n++) {
            frac *= 10;
        }
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh;
        int om;
        if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om) || oh > 23 || om > 59) {
            return PTC_EFORMAT;
        }
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return PTC_EFORMAT;
    }
    if (*p != '\0') {
        return PTC_EFORMAT;
    }
    int64_t t =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
    if (t < 0) {
        return PTC_EFORMAT;
    }
    *ms = (uint64_t)t * 1000 + frac;
    return 0;
}

json_t *ptc_state_time_json(uint64_t ms)
{
    char buf[PTC_STATE_TIME_CAP];
    ptc_state_time_format(ms, buf);
    return json_string(buf);
}

/* Hex of a fixed-size value into a buffer sized for it (cannot fail). */
void ptc_state_to_hex(const void *p, size_t len, char *out, size_t cap)
{
    int rc = ptc_hex_encode(p, len, out, cap);
    assert(rc == 0);
    (void)rc;
}

/* ---- reading stored documents ---- */

const char *ptc_state_rd_str(reader_t *r, const char *key)
{
    json_t *v = json_object_get(r->doc, key);
    if (r->rc != 0) {
        return NULL;
    }
    if (!json_is_string(v)) {
        r->rc = ptc_state_fail(r->err, r->errlen, PTC_EFORMAT, "%s: expected a string", key);
        return NULL;
    }
    return json_string_value(v);
}

uint64_t ptc_state_rd_time(reader_t *r, const char *key)
{
    const char *s = ptc_state_rd_str(r, key);
    uint64_t ms = 0;
    if (s != NULL && ptc_state_time_parse(s, &ms) != 0) {
        r->rc =
            ptc_state_fail(r->err, r->errlen, PTC_EFORMAT, "%s: expected an RFC 3339 time", key);
    }
    return ms;
}

uint64_t ptc_state_rd_uint(reader_t *r, const char *key, uint64_t max)
{
    json_t *v = json_object_get(r->doc, key);
    if (r->rc != 0) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
        r->rc = ptc_state_fail(r->err, r->errlen, PTC_EFORMAT, "%s: expected an integer 0..%llu",
                               key, (unsigned long long)max);
        return 0;
    }
    return (uint64_t)json_integer_value(v);
}

bool ptc_state_rd_bool(reader_t *r, const char *key)
{
    json_t *v = json_object_get(r->doc, key);
    if (r->rc == 0 && !json_is_boolean(v)) {
        r->rc = ptc_state_fail(r->err, r->errlen, PTC_EFORMAT, "%s: expected true or false", key);
    }
    return r->rc == 0 && json_is_true(v);
}

/* Reads "id", which must be the file's id and start with `prefix`, into dst. */
void ptc_state_rd_id(reader_t *r, const char *id, const char *prefix, char *dst, size_t cap)
{
    const char *v = ptc_state_rd_str(r, "id");
    if (v == NULL) {
        return;
    }
    if (strcmp(v, id) != 0 || strncmp(v, prefix, strlen(prefix)) != 0 || strlen(v) >= cap) {
        r->rc = ptc_state_fail(r->err, r->errlen, PTC_EFORMAT, "id: does not match the file name");
        return;
    }
    memcpy(dst, v, strlen(v) + 1);
}

/* ---- store writes ---- */

/* Writes `doc` (consumed) as kind/id. */
int ptc_state_persist(ptc_state_t *st, const char *kind, const char *id, json_t *doc, char *err,
                      size_t errlen)
{
    int rc = ptc_store_put(st->store, kind, id, doc, err, errlen);
    json_decref(doc);
    return rc;
}

/* Deletes kind/id; a document that is already gone is not an error. */
int ptc_state_unpersist(ptc_state_t *st, const char *kind, const char *id, char *err, size_t errlen)
{
    int rc = ptc_store_del(st->store, kind, id, err, errlen);
    return rc == PTC_ENOTFOUND ? 0 : rc;
}

/* ---- observers ---- */

void ptc_state_observe(ptc_state_t *st, ptc_state_observer_cb cb, void *data)
{
    assert(!st->is_notifying);
    if (st->observer_cnt == st->observer_cap) {
        st->observer_cap = st->observer_cap != 0 ? st->observer_cap * 2 : 4;
        st->observers = ptc_xrealloc(st->observers, st->observer_cap * sizeof(*st->observers));
    }
    st->observers[st->observer_cnt++] = (observer_t){.cb = cb, .data = data};
}

void ptc_state_unobserve(ptc_state_t *st, ptc_state_observer_cb cb, void *data)
{
    assert(!st->is_notifying);
    for (size_t i = 0; i < st->observer_cnt; i++) {
        if (st->observers[i].cb == cb && st->observers[i].data == data) {
            memmove(st->observers + i, st->observers + i + 1,
                    (st->observer_cnt - i - 1) * sizeof(*st->observers));
            st->observer_cnt--;
            return;
        }
    }
}

void ptc_state_notify(ptc_state_t *st, ptc_state_kind_t kind, ptc_state_op_t op, const char *id)
{
    st->is_notifying = true;
    for (size_t i = 0; i < st->observer_cnt; i++) {
        st->observers[i].cb(st->observers[i].data, kind, op, id);
    }
    st->is_notifying = false;
}

const char *ptc_state_kind_name(ptc_state_kind_t kind)
{
    switch (kind) {
    case PTC_STATE_GROUP:
        return "group";
    case PTC_STATE_TOKEN:
        return "token";
    case PTC_STATE_CONNECTOR:
        return "connector";
    case PTC_STATE_APP:
        return "app";
    case PTC_STATE_CERT:
        return "cert";
    }
    return "unknown";
}

const char *ptc_state_op_name(ptc_state_op_t op)
{
    switch (op) {
    case PTC_STATE_ADDED:
        return "added";
    case PTC_STATE_UPDATED:
        return "updated";
    case PTC_STATE_MOVED:
        return "moved";
    case PTC_STATE_DELETED:
        return "deleted";
    }
    return "unknown";
}

/* ---- groups ---- */

bool ptc_state_group_name_is_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PTC_STATE_GROUP_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == ' ' || c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* The store id of a group: its name when that is a valid document id, else a digest of it
 * (names may hold spaces or start with '.', which file names here may not). */
static void group_doc_id(const char *name, char out[64])
{
    if (ptc_store_id_is_valid(name)) {
        snprintf(out, 64, "%s", name);
        return;
    }
    uint8_t digest[PTC_SHA256_LEN];
    ptc_sha256(name, strlen(name), digest);
    memcpy(out, "grp-", 4);
    ptc_state_to_hex(digest, 16, out + 4, 64 - 4);
}

static void group_free(ptc_group_t *g)
{
    if (g != NULL) {
        free(g->name);
        free(g);
    }
}

json_t *ptc_state_group_to_json(const ptc_group_t *g)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(g->name));
    json_object_set_new(o, "created_at", ptc_state_time_json(g->created_at));
    return o;
}

size_t ptc_state_group_count(const ptc_state_t *st)
{
    return st->groups.cnt;
}

const ptc_group_t *ptc_state_group_at(const ptc_state_t *st, size_t i)
{
    return i < st->groups.cnt ? st->groups.v[i] : NULL;
}

const ptc_group_t *ptc_state_group_find(const ptc_state_t *st, const char *name)
{
    return ptc_state_vec_find(&st->groups, name, group_key);
}

void ptc_state_group_usage(const ptc_state_t *st, const char *name, uint64_t now, size_t *apps,
                           size_t *connectors, size_t *tokens)
{
    size_t a = 0;
    size_t c = 0;
    size_t t = 0;
    for (size_t i = 0; i < st->apps.cnt; i++) {
        a += strcmp(((const ptc_app_t *)st->apps.v[i])->connector_group, name) == 0;
    }
    for (size_t i = 0; i < st->connectors.cnt; i++) {
        c += strcmp(((const ptc_connector_t *)st->connectors.v[i])->group, name) == 0;
    }
    for (size_t i = 0; i < st->tokens.cnt; i++) {
        const ptc_token_t *tok = st->tokens.v[i];
        t += strcmp(tok->group, name) == 0 && ptc_token_status(tok, now) == PTC_TOKEN_ACTIVE;
    }
    if (apps != NULL) {
        *apps = a;
    }
    if (connectors != NULL) {
        *connectors = c;
    }
    if (tokens != NULL) {
        *tokens = t;
    }
}

static int group_create(ptc_state_t *st, const char *name, uint64_t now, char *err, size_t errlen)
{
    ptc_group_t *g = ptc_xcalloc(1, sizeof(*g));
    g->name = ptc_xstrdup(name);
    g->created_at = now;
    char id[64];
    group_doc_id(name, id);
    int rc = ptc_state_persist(st, KIND_GROUPS, id, ptc_state_group_to_json(g), err, errlen);
    if (rc != 0) {
        group_free(g);
        return rc;
    }
    ptc_state_vec_insert(&st->groups, g, group_key);
    return 0;
}

int ptc_state_group_add(ptc_state_t *st, const char *name, uint64_t now, char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    if (!ptc_state_group_name_is_valid(name)) {
        return ptc_state_fail(
            err, errlen, PTC_EFORMAT,
            "name: expected 1 to %d characters of A-Z, a-z, 0-9, space, '.', '_' and "
            "'-', got %s",
            PTC_STATE_GROUP_NAME_MAX, ptc_state_quote(q, sizeof(q), name));
    }
    if (ptc_state_group_find(st, name) != NULL) {
        return ptc_state_fail(err, errlen, PTC_EEXIST, "group %s already exists",
                              ptc_state_quote(q, sizeof(q), name));
    }
    int rc = group_create(st, name, now, err, errlen);
    if (rc == 0) {
        ptc_state_notify(st, PTC_STATE_GROUP, PTC_STATE_ADDED, name);
    }
    return rc;
}

int ptc_state_group_delete(ptc_state_t *st, const char *name, uint64_t now, char *err,
                           size_t errlen)
{
    char q[QUOTE_CAP];
    size_t i = ptc_state_vec_index(&st->groups, name, group_key);
    if (i == SIZE_MAX) {
        return ptc_state_fail(err, errlen, PTC_ENOTFOUND, "no group named %s",
                              ptc_state_quote(q, sizeof(q), name));
    }
    if (strcmp(name, PTC_STATE_DEFAULT_GROUP) == 0) {
        return ptc_state_fail(err, errlen, PTC_ESTATE, "the %s group cannot be deleted",
                              PTC_STATE_DEFAULT_GROUP);
    }
    size_t apps;
    size_t connectors;
    size_t tokens;
    ptc_state_group_usage(st, name, now, &apps, &connectors, &tokens);
    if (apps + connectors + tokens > 0) {
        return ptc_state_fail(err, errlen, PTC_ESTATE,
                              "group %s is in use by %zu app(s), %zu connector(s) and %zu active "
                              "registration token(s): move or delete them first",
                              ptc_state_quote(q, sizeof(q), name), apps, connectors, tokens);
    }
    char id[64];
    group_doc_id(name, id);
    int rc = ptc_state_unpersist(st, KIND_GROUPS, id, err, errlen);
    if (rc != 0) {
        return rc;
    }
    ptc_group_t *g = st->groups.v[i];
    ptc_state_vec_remove(&st->groups, i);
    char copy[PTC_STATE_GROUP_NAME_MAX + 1];
    snprintf(copy, sizeof(copy), "%s", g->name);
    group_free(g);
    ptc_state_notify(st, PTC_STATE_GROUP, PTC_STATE_DELETED, copy);
    return 0;
}

static int load_group(void *data, const char *kind, const char *id, json_t *doc, char *err,
                      size_t errlen)
{
    ptc_state_t *st = data;
    reader_t r = {.doc = doc, .err = err, .errlen = errlen};
    const char *name = ptc_state_rd_str(&r, "name");
    uint64_t created_at = ptc_state_rd_time(&r, "created_at");
    if (r.rc != 0) {
        return r.rc;
    }
    char want[64];
    if (ptc_state_group_name_is_valid(name)) {
        group_doc_id(name, want);
    }
    if (!ptc_state_group_name_is_valid(name) || strcmp(want, id) != 0) {
        return ptc_state_fail(err, errlen, PTC_EFORMAT, "name: does not match the file name");
    }
    ptc_group_t *g = ptc_xcalloc(1, sizeof(*g));
    g->name = ptc_xstrdup(name);
    g->created_at = created_at;
    ptc_state_vec_insert(&st->groups, g, group_key);
    return 0;
}

/* ---- apps and the route index ---- */

static uint64_t hash_str(const char *s)
{
    /* FNV-1a: host names are short and chosen by administrators, not by attackers. */
    uint64_t h = 1469598103934665603ull;
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

static void index_clear(ptc_state_t *st)
{
    for (size_t i = 0; i < st->bucket_cnt; i++) {
        bucket_t *b = st->buckets[i];
        while (b != NULL) {
            bucket_t *next = b->next;
            free(b->host);
            free(b->apps);
            free(b);
            b = next;
        }
    }
    free(st->buckets);
    st->buckets = NULL;
    st->bucket_cnt = 0;
}

static int cmp_prefix_len(const void *a, const void *b)
{
    size_t la = strlen((*(const ptc_app_t *const *)a)->ext_path);
    size_t lb = strlen((*(const ptc_app_t *const *)b)->ext_path);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

static void index_rebuild(ptc_state_t *st)
{
    index_clear(st);
    size_t n = 8;
    while (n < 2 * st->apps.cnt) {
        n *= 2;
    }
    st->buckets = ptc_xcalloc(n, sizeof(*st->buckets));
    st->bucket_cnt = n;
    for (size_t i = 0; i < st->apps.cnt; i++) {
        const ptc_app_t *app = st->apps.v[i];
        size_t slot = hash_str(app->ext_host) & (n - 1);
        bucket_t *b = st->buckets[slot];
        while (b != NULL && strcmp(b->host, app->ext_host) != 0) {
            b = b->next;
        }
        if (b == NULL) {
            b = ptc_xcalloc(1, sizeof(*b));
            b->host = ptc_xstrdup(app->ext_host);
            b->next = st->buckets[slot];
            st->buckets[slot] = b;
        }
        if (b->cnt == b->cap) {
            b->cap = b->cap != 0 ? b->cap * 2 : 2;
            b->apps = ptc_xrealloc(b->apps, b->cap * sizeof(*b->apps));
        }
        b->apps[b->cnt++] = app;
    }
    for (size_t i = 0; i < n; i++) {
        for (bucket_t *b = st->buckets[i]; b != NULL; b = b->next) {
            qsort(b->apps, b->cnt, sizeof(*b->apps), cmp_prefix_len);
        }
    }
}

const ptc_app_t *ptc_state_app_route(const ptc_state_t *st, const char *host, size_t host_len,
                                     const char *path, size_t path_len)
{
    char h[PTC_URL_HOST_CAP];
    uint16_t port;
    if (st->bucket_cnt == 0 || ptc_url_parse_authority(host, host_len, h, sizeof(h), &port) != 0) {
        return NULL;
    }
    const char *q = memchr(path, '?', path_len);
    if (q != NULL) {
        path_len = (size_t)(q - path);
    }
    bucket_t *b = st->buckets[hash_str(h) & (st->bucket_cnt - 1)];
    while (b != NULL && strcmp(b->host, h) != 0) {
        b = b->next;
    }
    if (b == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < b->cnt; i++) {
        if (ptc_app_covers(b->apps[i], path, path_len)) {
            return b->apps[i];
        }
    }
    return NULL;
}

size_t ptc_state_app_count(const ptc_state_t *st)
{
    return st->apps.cnt;
}

const ptc_app_t *ptc_state_app_at(const ptc_state_t *st, size_t i)
{
    return i < st->apps.cnt ? st->apps.v[i] : NULL;
}

const ptc_app_t *ptc_state_app_find(const ptc_state_t *st, const char *name)
{
    return ptc_state_vec_find(&st->apps, name, app_key);
}

/* The checks that involve other records: the group exists, and no other app (`self` aside)
 * publishes the same external host and path. */
static int app_check_refs(const ptc_state_t *st, const ptc_app_t *app, const ptc_app_t *self,
                          char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    if (ptc_state_group_find(st, app->connector_group) == NULL) {
        return ptc_state_fail(err, errlen, PTC_EFORMAT, "connector_group: no group named %s",
                              ptc_state_quote(q, sizeof(q), app->connector_group));
    }
    for (size_t i = 0; i < st->apps.cnt; i++) {
        const ptc_app_t *other = st->apps.v[i];
        if (other != self && strcmp(other->ext_host, app->ext_host) == 0 &&
            strcmp(other->ext_path, app->ext_path) == 0) {
            return ptc_state_fail(
                err, errlen, PTC_EEXIST, "external_url: %s%s is already published by app %s",
                app->ext_host, app->ext_path, ptc_state_quote(q, sizeof(q), other->name));
        }
    }
    return 0;
}

int ptc_state_app_add(ptc_state_t *st, json_t *doc, const ptc_app_t **out, char *err, size_t errlen)
{
    if (out != NULL) {
        *out = NULL;
    }
    ptc_app_t *app = NULL;
    int rc = ptc_app_parse(doc, st->ctx, &app, err, errlen);
    if (rc != 0) {
        return rc;
    }
    char q[QUOTE_CAP];
    if (ptc_state_app_find(st, app->name) != NULL) {
        rc = ptc_state_fail(err, errlen, PTC_EEXIST, "name: an app named %s already exists",
                            ptc_state_quote(q, sizeof(q), app->name));
    }
    if (rc == 0) {
        rc = app_check_refs(st, app, NULL, err, errlen);
    }
    if (rc == 0) {
        rc = ptc_state_persist(st, KIND_APPS, app->name, ptc_app_to_json(app), err, errlen);
    }
    if (rc != 0) {
        ptc_app_unref(app);
        return rc;
    }
    ptc_state_vec_insert(&st->apps, app, app_key);
    index_rebuild(st);
    if (out != NULL) {
        *out = app;
    }
    ptc_state_notify(st, PTC_STATE_APP, PTC_STATE_ADDED, app->name);
    return 0;
}

int ptc_state_app_update(ptc_state_t *st, const char *name, json_t *patch, const ptc_app_t **out,
                         char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    if (out != NULL) {
        *out = NULL;
    }
    size_t i = ptc_state_vec_index(&st->apps, name, app_key);
    if (i == SIZE_MAX) {
        return ptc_state_fail(err, errlen, PTC_ENOTFOUND, "no app named %s",
                              ptc_state_quote(q, sizeof(q), name));
    }
    ptc_app_t *old = st->apps.v[i];
    ptc_app_t *app = NULL;
    int rc = ptc_app_patch(old, patch, st->ctx, &app, err, errlen);
    if (rc == 0) {
        rc = app_check_refs(st, app, old, err, errlen);
    }
    if (rc == 0) {
        rc = ptc_state_persist(st, KIND_APPS, app->name, ptc_app_to_json(app), err, errlen);
    }
    if (rc != 0) {
        ptc_app_unref(app);
        return rc;
    }
    st->apps.v[i] = app; /* same name: the order holds */
    ptc_app_unref(old);
    index_rebuild(st);
    if (out != NULL) {
        *out = app;
    }
    ptc_state_notify(st, PTC_STATE_APP, PTC_STATE_UPDATED, app->name);
    return 0;
}

int ptc_state_app_delete(ptc_state_t *st, const char *name, char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    size_t i = ptc_state_vec_index(&st->apps, name, app_key);
    if (i == SIZE_MAX) {
        return ptc_state_fail(err, errlen, PTC_ENOTFOUND, "no app named %s",
                              ptc_state_quote(q, sizeof(q), name));
    }
    ptc_app_t *app = st->apps.v[i];
    int rc = ptc_state_unpersist(st, KIND_APPS, app->name, err, errlen);
    if (rc != 0) {
        return rc;
    }
    ptc_state_vec_remove(&st->apps, i);
    index_rebuild(st);
    char copy[PTC_APP_NAME_MAX + 1];
    snprintf(copy, sizeof(copy), "%s", app->name);
    ptc_app_unref(app);
    ptc_state_notify(st, PTC_STATE_APP, PTC_STATE_DELETED, copy);
    return 0;
}

static int load_app(void *data, const char *kind, const char *id, json_t *doc, char *err,
                    size_t errlen)
{
    ptc_state_t *st = data;
    ptc_app_ctx_t ctx = {0};
    if (st->ctx != NULL) {
        ctx = *st->ctx;
    }
    ctx.lenient_idp = true;
    ptc_app_t *app = NULL;
    int rc = ptc_app_parse(doc, &ctx, &app, err, errlen);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(app->name, id) != 0) {
        rc = ptc_state_fail(err, errlen, PTC_EFORMAT, "name: does not match the file name");
    }
    if (rc == 0) {
        rc = app_check_refs(st, app, NULL, err, errlen);
    }
    if (rc != 0) {
        ptc_app_unref(app);
        return rc == PTC_EEXIST ? PTC_EFORMAT : rc;
    }
    ptc_state_vec_insert(&st->apps, app, app_key);
    return 0;
}

/* ---- certificates ---- */

static void cert_free(ptc_cert_t *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->names_cnt; i++) {
        free(c->names[i]);
    }
    free(c->names);
    free(c->cert_pem);
    if (c->key_pem != NULL) {
        ptc_keys_wipe(c->key_pem, strlen(c->key_pem));
        free(c->key_pem);
    }
    free(c);
}

static uint64_t x509_time_ms(const mbedtls_x509_time *t)
{
    if (t->year < 1970 || t->mon < 1 || t->mon > 12 || t->day < 1 || t->day > 31) {
        return 0;
    }
    int64_t days = days_from_civil(t->year, (unsigned)t->mon, (unsigned)t->day);
    return (uint64_t)(days * 86400 + t->hour * 3600 + t->min * 60 + t->sec) * 1000;
}

/* A DNS name from a certificate: a host name, or "*." followed by one. */
static bool cert_name_is_valid(const char *name)
{
    if (strncmp(name, "*.", 2) == 0) {
        name += 2;
    }
    return ptc_url_host_is_valid_name(name);
}

/* Parses and checks a chain and its key, and fills names, not_before and not_after of c. */
static int cert_parse(ptc_cert_t *c, const char *cert_pem, const char *key_pem, char *err,
                      size_t errlen)
{
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&key);
    int rc = 0;
    size_t cert_len = strlen(cert_pem);
    size_t key_len = strlen(key_pem);
    if (cert_len > PEM_MAX || key_len > PEM_MAX) {
        rc = ptc_state_fail(err, errlen, PTC_EFORMAT, "cert_pem: larger than %d bytes", PEM_MAX);
        goto out;
    }
    /* mbedTLS reads PEM only when the length counts the terminating NUL. */
    int ret = mbedtls_x509_crt_parse(&crt, (const unsigned char *)cert_pem, cert_len + 1);
    if (ret != 0 || crt.raw.p == NULL) {
        rc = ptc_state_fail(
            err, errlen, PTC_EFORMAT,
            ret > 0 ? "cert_pem: %d certificate(s) in the chain cannot be parsed"
                    : "cert_pem: expected a PEM certificate chain (mbedTLS error -0x%04x)",
            ret > 0 ? ret : -ret);
        goto out;
    }
    ret = mbedtls_pk_parse_key(&key, (const unsigned char *)key_pem, key_len + 1, NULL, 0);
    if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
        rc = ptc_state_fail(err, errlen, PTC_EFORMAT,
                            "key_pem: encrypted private keys are not supported");
        goto out;
    }
    if (ret != 0) {
        rc = ptc_state_fail(err, errlen, PTC_EFORMAT,
                            "key_pem: expected a PEM private key (mbedTLS error -0x%04x)", -ret);
        goto out;
    }
    if (mbedtls_pk_check_pair(&crt.pk, &key) != 0) {
        rc = ptc_state_fail(err, errlen, PTC_EFORMAT,
                            "key_pem: the private key does not match the certificate");
        goto out;
    }
    size_t cap = 0;
    for (const mbedtls_x509_sequence *s = &crt.subject_alt_names; s != NULL; s = s->next) {
        cap++;
    }
    c->names = ptc_xcalloc(cap + 1, sizeof(*c->names));
    for (const mbedtls_x509_sequence *s = &crt.subject_alt_names; s != NULL; s = s->next) {
        if (s->buf.p == NULL ||
            s->buf.tag != (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME) ||
            s->buf.len == 0 || s->buf.len > PTC_URL_HOST_MAX) {
            continue;
        }
        char name[PTC_URL_HOST_MAX + 1];
        for (size_t i = 0; i < s->buf.len; i++) {
            char ch = (char)s->buf.p[i];
            name[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
        }
        name[s->buf.len] = '\0';
        if (memchr(s->buf.p, '\0', s->buf.len) != NULL || !cert_name_is_valid(name)) {
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < c->names_cnt && !dup; i++) {
            dup = strcmp(c->names[i], name) == 0;
        }
        if (!dup) {
            c->names[c->names_cnt++] = ptc_xstrdup(name);
        }
    }
    if (c->names_cnt == 0) {
        rc = ptc_state_fail(err, errlen, PTC_EFORMAT,
                            "cert_pem: the certificate has no DNS subjectAltName to serve");
        goto out;
    }
    c->not_before = x509_time_ms(&crt.valid_from);
    c->not_after = x509_time_ms(&crt.valid_to);

out:
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&crt);
    return rc;
}

static json_t *cert_doc(const ptc_cert_t *c)
{
    json_t *o = ptc_state_cert_to_json(c, true);
    json_object_set_new(o, "key_pem", json_string(c->key_pem));
    return o;
}

/* Writes a certificate document and wipes the key's copy in it. */
static int cert_persist(ptc_state_t *st, const ptc_cert_t *c, char *err, size_t errlen)
{
    json_t *doc = cert_doc(c);
    int rc = ptc_store_put(st->store, KIND_CERTS, c->id, doc, err, errlen);
    json_t *k = json_object_get(doc, "key_pem");
    if (k != NULL) {
        ptc_keys_wipe((char *)json_string_value(k), json_string_length(k));
    }
    json_decref(doc);
    return rc;
}

json_t *ptc_state_cert_to_json(const ptc_cert_t *c, bool with_pem)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(c->id));
    json_t *names = json_array();
    for (size_t i = 0; i < c->names_cnt; i++) {
        json_array_append_new(names, json_string(c->names[i]));
    }
    json_object_set_new(o, "names", names);
    json_object_set_new(o, "not_before", ptc_state_time_json(c->not_before));
    json_object_set_new(o, "not_after", ptc_state_time_json(c->not_after));
    json_object_set_new(o, "added_at", ptc_state_time_json(c->added_at));
    if (with_pem) {
        json_object_set_new(o, "cert_pem", json_string(c->cert_pem));
    }
    return o;
}

size_t ptc_state_cert_count(const ptc_state_t *st)
{
    return st->certs.cnt;
}

const ptc_cert_t *ptc_state_cert_at(const ptc_state_t *st, size_t i)
{
    return i < st->certs.cnt ? st->certs.v[i] : NULL;
}

const ptc_cert_t *ptc_state_cert_find(const ptc_state_t *st, const char *id)
{
    return ptc_state_vec_find(&st->certs, id, cert_key);
}

int ptc_state_cert_add(ptc_state_t *st, const char *cert_pem, const char *key_pem, uint64_t now,
                       const ptc_cert_t **out, char *err, size_t errlen)
{
    if (out != NULL) {
        *out = NULL;
    }
    ptc_cert_t *c = ptc_xcalloc(1, sizeof(*c));
    int rc = cert_parse(c, cert_pem, key_pem, err, errlen);
    if (rc == 0 && c->not_after <= now) {
        char when[PTC_STATE_TIME_CAP];
        ptc_state_time_format(c->not_after, when);
        rc = ptc_state_fail(err, errlen, PTC_EFORMAT, "cert_pem: the certificate expired at %s",
                            when);
    }
    if (rc != 0) {
        cert_free(c);
        return rc;
    }
    ptc_state_new_id(&st->certs, cert_key, "crt_", 4, c->id, sizeof(c->id));
    c->cert_pem = ptc_xstrdup(cert_pem);
    c->key_pem = ptc_xstrdup(key_pem);
    c->added_at = now;
    rc = cert_persist(st, c, err, errlen);
    if (rc != 0) {
        cert_free(c);
        return rc;
    }
    ptc_state_vec_insert(&st->certs, c, cert_key);
    if (out != NULL) {
        *out = c;
    }
    ptc_state_notify(st, PTC_STATE_CERT, PTC_STATE_ADDED, c->id);
    return 0;
}

int ptc_state_cert_delete(ptc_state_t *st, const char *id, char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    size_t i = ptc_state_vec_index(&st->certs, id, cert_key);
    if (i == SIZE_MAX) {
        return ptc_state_fail(err, errlen, PTC_ENOTFOUND, "no certificate with id %s",
                              ptc_state_quote(q, sizeof(q), id));
    }
    ptc_cert_t *c = st->certs.v[i];
    int rc = ptc_state_unpersist(st, KIND_CERTS, c->id, err, errlen);
    if (rc != 0) {
        return rc;
    }
    ptc_state_vec_remove(&st->certs, i);
    char copy[sizeof(c->id)];
    memcpy(copy, c->id, sizeof(copy));
    cert_free(c);
    ptc_state_notify(st, PTC_STATE_CERT, PTC_STATE_DELETED, copy);
    return 0;
}

static int load_cert(void *data, const char *kind, const char *id, json_t *doc, char *err,
                     size_t errlen)
{
    ptc_state_t *st = data;
    reader_t r = {.doc = doc, .err = err, .errlen = errlen};
    ptc_cert_t *c = ptc_xcalloc(1, sizeof(*c));
    ptc_state_rd_id(&r, id, "crt_", c->id, sizeof(c->id));
    const char *cert_pem = ptc_state_rd_str(&r, "cert_pem");
    const char *key_pem = ptc_state_rd_str(&r, "key_pem");
    c->added_at = ptc_state_rd_time(&r, "added_at");
    /* Names and validity come from the certificate itself, never from the document; an
     * expired certificate still loads (it expired while stored). */
    if (r.rc == 0) {
        r.rc = cert_parse(c, cert_pem, key_pem, err, errlen);
    }
    if (r.rc != 0) {
        cert_free(c);
        return r.rc;
    }
    c->cert_pem = ptc_xstrdup(cert_pem);
    c->key_pem = ptc_xstrdup(key_pem);
    ptc_state_vec_insert(&st->certs, c, cert_key);
    return 0;
}

/* ---- lifetime ---- */

int ptc_state_open(ptc_store_t *store, const ptc_app_ctx_t *ctx, uint64_t now, ptc_state_t **out,
                   char *err, size_t errlen)
{
    *out = NULL;
    ptc_state_t *st = ptc_xcalloc(1, sizeof(*st));
    st->store = store;
    st->ctx = ctx;
    /* Groups first: the other kinds refer to them. */
    int rc = ptc_store_load(store, KIND_GROUPS, load_group, st, err, errlen);
    if (rc == 0 && ptc_state_group_find(st, PTC_STATE_DEFAULT_GROUP) == NULL) {
        rc = group_create(st, PTC_STATE_DEFAULT_GROUP, now, err, errlen);
    }
    if (rc == 0) {
        rc = ptc_store_load(store, KIND_TOKENS, ptc_state_connectors_load_token, st, err, errlen);
    }
    if (rc == 0) {
        rc = ptc_store_load(store, KIND_CONNECTORS, ptc_state_connectors_load_connector, st, err,
                            errlen);
    }
    if (rc == 0) {
        rc = ptc_store_load(store, KIND_APPS, load_app, st, err, errlen);
    }
    if (rc == 0) {
        rc = ptc_store_load(store, KIND_CERTS, load_cert, st, err, errlen);
    }
    if (rc != 0) {
        ptc_state_free(st);
        return rc;
    }
    index_rebuild(st);
    *out = st;
    return 0;
}

void ptc_state_set_app_ctx(ptc_state_t *st, const ptc_app_ctx_t *ctx)
{
    st->ctx = ctx;
}

void ptc_state_free(ptc_state_t *st)
{
    if (st == NULL) {
        return;
    }
    index_clear(st);
    for (size_t i = 0; i < st->groups.cnt; i++) {
        group_free(st->groups.v[i]);
    }
    for (size_t i = 0; i < st->tokens.cnt; i++) {
        ptc_state_connectors_token_free(st->tokens.v[i]);
    }
    for (size_t i = 0; i < st->connectors.cnt; i++) {
        ptc_state_connectors_connector_free(st->connectors.v[i]);
    }
    for (size_t i = 0; i < st->apps.cnt; i++) {
        ptc_app_unref(st->apps.v[i]);
    }
    for (size_t i = 0; i < st->certs.cnt; i++) {
        cert_free(st->certs.v[i]);
    }
    free(st->groups.v);
    free(st->tokens.v);
    free(st->connectors.v);
    free(st->apps.v);
    free(st->certs.v);
    free(st->observers);
    free(st);
}
