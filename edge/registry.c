/* SPDX-License-Identifier: MIT */
/*
 * Live tunnel registry (see registry.h). Three indexes over the same entries, each a small
 * chained hash map of string keys to buckets: tunnels by id (for uniqueness), by connector
 * and by group. A bucket keeps its entries in an array in insertion order, so "oldest first"
 * listings and the round-robin cursor of a group are plain indexes. Buckets are freed as
 * soon as they are empty, so the maps hold only groups and connectors that have live tunnels.
 */
#include "edge/registry.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct ptc_registry_tunnel {
    char id[PTC_REGISTRY_ID_MAX + 1];
    char connector[PTC_REGISTRY_ID_MAX + 1];
    char group[PTC_REGISTRY_GROUP_MAX + 1];
    char addr[PTC_REGISTRY_ADDR_MAX];
    uint64_t since_ms;
    uint32_t streams;
    bool draining;
    void *owner;
};

typedef struct bucket {
    struct bucket *next; /* hash chain */
    char *key;
    ptc_registry_tunnel_t **items;
    size_t cnt;
    size_t cap;
    size_t rr; /* groups: where the next round-robin scan starts */
} bucket_t;

typedef struct map {
    bucket_t **slots;
    size_t nslots;
    size_t cnt; /* buckets */
} map_t;

struct ptc_registry {
    map_t by_id;
    map_t by_connector;
    map_t by_group;
    size_t tunnels;
    uint64_t streams;
};

/* ---- string-keyed map of buckets ---- */

/* FNV-1a: the keys are short identifiers. */
static size_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

static void map_init(map_t *m)
{
    m->nslots = 16;
    m->slots = ptc_xcalloc(m->nslots, sizeof(*m->slots));
    m->cnt = 0;
}

static void bucket_free(bucket_t *b)
{
    free(b->key);
    free(b->items);
    free(b);
}

static void map_dispose(map_t *m)
{
    for (size_t i = 0; i < m->nslots; i++) {
        bucket_t *b = m->slots[i];
        while (b != NULL) {
            bucket_t *next = b->next;
            bucket_free(b);
            b = next;
        }
    }
    free(m->slots);
    m->slots = NULL;
    m->nslots = 0;
    m->cnt = 0;
}

static bucket_t *map_find(const map_t *m, const char *key)
{
    for (bucket_t *b = m->slots[hash(key) % m->nslots]; b != NULL; b = b->next) {
        if (strcmp(b->key, key) == 0) {
            return b;
        }
    }
    return NULL;
}

static void map_grow(map_t *m)
{
    size_t nslots = m->nslots * 2;
    bucket_t **slots = ptc_xcalloc(nslots, sizeof(*slots));
    for (size_t i = 0; i < m->nslots; i++) {
        bucket_t *b = m->slots[i];
        while (b != NULL) {
            bucket_t *next = b->next;
            size_t j = hash(b->key) % nslots;
            b->next = slots[j];
            slots[j] = b;
            b = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
}

static bucket_t *map_get_or_add(map_t *m, const char *key)
{
    bucket_t *b = map_find(m, key);
    if (b != NULL) {
        return b;
    }
    if (m->cnt >= m->nslots * 2) {
        map_grow(m);
    }
    b = ptc_xcalloc(1, sizeof(*b));
    b->key = ptc_xstrdup(key);
    size_t i = hash(key) % m->nslots;
    b->next = m->slots[i];
    m->slots[i] = b;
    m->cnt++;
    return b;
}

static void map_drop(map_t *m, bucket_t *victim)
{
    bucket_t **pp = &m->slots[hash(victim->key) % m->nslots];
    while (*pp != NULL && *pp != victim) {
        pp = &(*pp)->next;
    }
    if (*pp == victim) {
        *pp = victim->next;
        m->cnt--;
        bucket_free(victim);
    }
}

static void bucket_push(bucket_t *b, ptc_registry_tunnel_t *t)
{
    if (b->cnt == b->cap) {
        b->cap = b->cap == 0 ? 4 : b->cap * 2;
        b->items = ptc_xrealloc(b->items, b->cap * sizeof(*b->items));
    }
    b->items[b->cnt++] = t;
}

/* Removes t from the bucket keeping the order; drops the bucket when it becomes empty. */
static void map_remove_item(map_t *m, const char *key, ptc_registry_tunnel_t *t)
{
    bucket_t *b = map_find(m, key);
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < b->cnt; i++) {
        if (b->items[i] == t) {
            memmove(&b->items[i], &b->items[i + 1], (b->cnt - i - 1) * sizeof(*b->items));
            b->cnt--;
            /* Keep the round-robin cursor on the entry that would have come next. */
            if (b->rr > i) {
                b->rr--;
            }
            break;
        }
    }
    if (b->cnt == 0) {
        map_drop(m, b);
    }
}

/* ---- API ---- */

ptc_registry_t *ptc_registry_new(void)
{
    ptc_registry_t *reg = ptc_xcalloc(1, sizeof(*reg));
    map_init(&reg->by_id);
    map_init(&reg->by_connector);
    map_init(&reg->by_group);
    return reg;
}

void ptc_registry_free(ptc_registry_t *reg)
{
    if (reg == NULL) {
        return;
    }
    /* Every entry is in exactly one by_id bucket: free them from there. */
    for (size_t i = 0; i < reg->by_id.nslots; i++) {
        for (bucket_t *b = reg->by_id.slots[i]; b != NULL; b = b->next) {
            for (size_t j = 0; j < b->cnt; j++) {
                free(b->items[j]);
            }
        }
    }
    map_dispose(&reg->by_id);
    map_dispose(&reg->by_connector);
    map_dispose(&reg->by_group);
    free(reg);
}

static bool copy_field(char *dst, size_t cap, const char *src)
{
    if (src == NULL) {
        return false;
    }
    size_t len = strlen(src);
    if (len == 0 || len >= cap) {
        return false;
    }
    memcpy(dst, src, len + 1);
    return true;
}

int ptc_registry_add(ptc_registry_t *reg, const ptc_registry_tunnel_info_t *info,
                     ptc_registry_tunnel_t **out)
{
    *out = NULL;
    ptc_registry_tunnel_t *t = ptc_xcalloc(1, sizeof(*t));
    if (!copy_field(t->id, sizeof(t->id), info->tunnel_id) ||
        !copy_field(t->connector, sizeof(t->connector), info->connector_id) ||
        !copy_field(t->group, sizeof(t->group), info->group) ||
        !copy_field(t->addr, sizeof(t->addr), info->remote_addr)) {
        free(t);
        return UV_EINVAL;
    }
    if (map_find(&reg->by_id, t->id) != NULL) {
        free(t);
        return PTC_EEXIST;
    }
    t->since_ms = info->since_ms;
    t->owner = info->owner;
    bucket_push(map_get_or_add(&reg->by_id, t->id), t);
    bucket_push(map_get_or_add(&reg->by_connector, t->connector), t);
    bucket_push(map_get_or_add(&reg->by_group, t->group), t);
    reg->tunnels++;
    *out = t;
    return 0;
}

void ptc_registry_remove(ptc_registry_t *reg, ptc_registry_tunnel_t *t)
{
    if (t == NULL) {
        return;
    }
    map_remove_item(&reg->by_group, t->group, t);
    map_remove_item(&reg->by_connector, t->connector, t);
    map_remove_item(&reg->by_id, t->id, t);
    reg->tunnels--;
    reg->streams -= t->streams;
    free(t);
}

void ptc_registry_set_draining(ptc_registry_t *reg, ptc_registry_tunnel_t *t)
{
    (void)reg;
    t->draining = true;
}

void ptc_registry_stream_opened(ptc_registry_t *reg, ptc_registry_tunnel_t *t)
{
    t->streams++;
    reg->streams++;
}

void ptc_registry_stream_closed(ptc_registry_t *reg, ptc_registry_tunnel_t *t)
{
    if (t->streams > 0) {
        t->streams--;
        reg->streams--;
    }
}

ptc_registry_tunnel_t *ptc_registry_pick(ptc_registry_t *reg, const char *group,
                                         bool (*usable)(void *owner, void *data), void *data)
{
    bucket_t *b = map_find(&reg->by_group, group);
    if (b == NULL) {
        return NULL;
    }
    size_t start = b->rr % b->cnt;
    ptc_registry_tunnel_t *best = NULL;
    size_t best_i = 0;
    /* Scanning from the cursor and keeping the first minimum found makes equals take turns. */
    for (size_t k = 0; k < b->cnt; k++) {
        size_t i = (start + k) % b->cnt;
        ptc_registry_tunnel_t *t = b->items[i];
        if (t->draining || (usable != NULL && !usable(t->owner, data))) {
            continue;
        }
        if (best == NULL || t->streams < best->streams) {
            best = t;
            best_i = i;
        }
    }
    if (best != NULL) {
        b->rr = best_i + 1;
    }
    return best;
}

int ptc_registry_move_connector(ptc_registry_t *reg, const char *connector_id, const char *group)
{
    char copy[PTC_REGISTRY_GROUP_MAX + 1];
    if (!copy_field(copy, sizeof(copy), group)) {
        return UV_EINVAL;
    }
    bucket_t *b = map_find(&reg->by_connector, connector_id);
    if (b == NULL) {
        return 0;
    }
    int moved = 0;
    for (size_t i = 0; i < b->cnt; i++) {
        ptc_registry_tunnel_t *t = b->items[i];
        if (strcmp(t->group, copy) == 0) {
            continue;
        }
        map_remove_item(&reg->by_group, t->group, t);
        memcpy(t->group, copy, strlen(copy) + 1);
        bucket_push(map_get_or_add(&reg->by_group, t->group), t);
        moved++;
    }
    return moved;
}

size_t ptc_registry_connector_owners(const ptc_registry_t *reg, const char *connector_id,
                                     void **owners, size_t cap)
{
    bucket_t *b = map_find(&reg->by_connector, connector_id);
    if (b == NULL) {
        return 0;
    }
    for (size_t i = 0; i < b->cnt && i < cap; i++) {
        owners[i] = b->items[i]->owner;
    }
    return b->cnt;
}

size_t ptc_registry_all_owners(const ptc_registry_t *reg, void **owners, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < reg->by_id.nslots; i++) {
        for (bucket_t *b = reg->by_id.slots[i]; b != NULL; b = b->next) {
            for (size_t j = 0; j < b->cnt; j++) {
                if (n < cap) {
                    owners[n] = b->items[j]->owner;
                }
                n++;
            }
        }
    }
    return n;
}

size_t ptc_registry_connector_tunnels(const ptc_registry_t *reg, const char *connector_id)
{
    bucket_t *b = map_find(&reg->by_connector, connector_id);
    return b == NULL ? 0 : b->cnt;
}

void ptc_registry_tunnel_status(const ptc_registry_tunnel_t *t, ptc_registry_tunnel_status_t *out)
{
    out->tunnel_id = t->id;
    out->connector_id = t->connector;
    out->group = t->group;
    out->remote_addr = t->addr;
    out->since_ms = t->since_ms;
    out->streams = t->streams;
    out->draining = t->draining;
    out->owner = t->owner;
}

size_t ptc_registry_connector_status(const ptc_registry_t *reg, const char *connector_id,
                                     ptc_registry_tunnel_status_t *out, size_t cap)
{
    bucket_t *b = map_find(&reg->by_connector, connector_id);
    if (b == NULL) {
        return 0;
    }
    for (size_t i = 0; i < b->cnt && i < cap; i++) {
        ptc_registry_tunnel_status(b->items[i], &out[i]);
    }
    return b->cnt;
}

size_t ptc_registry_group_tunnels(const ptc_registry_t *reg, const char *group)
{
    bucket_t *b = map_find(&reg->by_group, group);
    size_t n = 0;
    for (size_t i = 0; b != NULL && i < b->cnt; i++) {
        if (!b->items[i]->draining) {
            n++;
        }
    }
    return n;
}

size_t ptc_registry_tunnel_count(const ptc_registry_t *reg)
{
    return reg->tunnels;
}

size_t ptc_registry_connector_count(const ptc_registry_t *reg)
{
    return reg->by_connector.cnt;
}

uint64_t ptc_registry_stream_count(const ptc_registry_t *reg)
{
    return reg->streams;
}

void *ptc_registry_owner(const ptc_registry_tunnel_t *t)
{
    return t->owner;
}

const char *ptc_registry_group(const ptc_registry_tunnel_t *t)
{
    return t->group;
}
