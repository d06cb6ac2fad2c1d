/* SPDX-License-Identifier: MIT */
/*
 * Buffers (see buf.h): the input buffer grows geometrically and slides its data back to the
 * front instead of growing when enough space sits before it; the output queue coalesces
 * small appends into PTC_CHUNK_SIZE chunks and hands whole chunks to writers.
 */
#include "common/buf.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

ptc_slice_t ptc_slice_str(const char *s)
{
    ptc_slice_t r = {(const uint8_t *)s, s != NULL ? strlen(s) : 0};
    return r;
}

bool ptc_slice_eq(ptc_slice_t s, const char *str)
{
    size_t n = strlen(str);
    return s.len == n && (n == 0 || memcmp(s.ptr, str, n) == 0);
}

bool ptc_slice_case_eq(ptc_slice_t s, const char *str)
{
    size_t n = strlen(str);
    return s.len == n && (n == 0 || strncasecmp((const char *)s.ptr, str, n) == 0);
}

/* ---- growable input buffer ---- */

void ptc_buf_init(ptc_buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void ptc_buf_dispose(ptc_buf_t *b)
{
    free(b->_base);
    memset(b, 0, sizeof(*b));
}

uint8_t *ptc_buf_try_reserve(ptc_buf_t *b, size_t min, size_t *avail)
{
    size_t tail = b->_cap - b->_off - b->len;
    if (tail < min) {
        if (b->_off != 0 && b->_cap - b->len >= min && b->_off >= b->len) {
            /* Enough room once the data moves to the front, and the move is cheap
             * relative to what was consumed: slide instead of growing. */
            memmove(b->_base, b->_base + b->_off, b->len);
            b->_off = 0;
        } else {
            size_t need = b->len + min;
            if (need < min) {
                return NULL;
            }
            size_t cap = b->_cap != 0 ? b->_cap : 1024;
            while (cap < need) {
                if (cap > SIZE_MAX / 2) {
                    return NULL;
                }
                cap *= 2;
            }
            uint8_t *p = malloc(cap);
            if (p == NULL) {
                return NULL;
            }
            if (b->len != 0) {
                memcpy(p, b->_base + b->_off, b->len);
            }
            free(b->_base);
            b->_base = p;
            b->_off = 0;
            b->_cap = cap;
        }
    }
    if (avail != NULL) {
        *avail = b->_cap - b->_off - b->len;
    }
    return b->_base + b->_off + b->len;
}

uint8_t *ptc_buf_reserve(ptc_buf_t *b, size_t min, size_t *avail)
{
    uint8_t *p = ptc_buf_try_reserve(b, min, avail);
    if (p == NULL) {
        ptc_xmalloc(SIZE_MAX); /* reports and aborts */
    }
    return p;
}

void ptc_buf_commit(ptc_buf_t *b, size_t n)
{
    assert(n <= b->_cap - b->_off - b->len);
    b->len += n;
}

int ptc_buf_try_append(ptc_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    uint8_t *dst = ptc_buf_try_reserve(b, n, NULL);
    if (dst == NULL) {
        return PTC_ENOMEM;
    }
    memcpy(dst, p, n);
    b->len += n;
    return 0;
}

void ptc_buf_append(ptc_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    uint8_t *dst = ptc_buf_reserve(b, n, NULL);
    memcpy(dst, p, n);
    b->len += n;
}

void ptc_buf_consume(ptc_buf_t *b, size_t n)
{
    assert(n <= b->len);
    b->len -= n;
    b->_off = b->len == 0 ? 0 : b->_off + n;
}

void ptc_buf_reset(ptc_buf_t *b)
{
    b->len = 0;
    b->_off = 0;
}

/* ---- output chunk queue ---- */

void ptc_chunkq_init(ptc_chunkq_t *q, size_t high_water, size_t low_water)
{
    assert(low_water <= high_water);
    memset(q, 0, sizeof(*q));
    q->high_water = high_water;
    q->low_water = low_water;
}

void ptc_chunk_free_list(ptc_chunk_t *c)
{
    while (c != NULL) {
        ptc_chunk_t *next = c->next;
        free(c);
        c = next;
    }
}

void ptc_chunkq_dispose(ptc_chunkq_t *q)
{
    ptc_chunk_free_list(q->head);
    q->head = NULL;
    q->tail = NULL;
    q->queued = 0;
}

static ptc_chunk_t *chunk_new(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(ptc_chunk_t)) {
        return NULL;
    }
    ptc_chunk_t *c = malloc(sizeof(*c) + cap);
    if (c == NULL) {
        return NULL;
    }
    c->next = NULL;
    c->off = 0;
    c->len = 0;
    c->cap = cap;
    return c;
}

uint8_t *ptc_chunkq_try_reserve(ptc_chunkq_t *q, size_t min, size_t *avail)
{
    ptc_chunk_t *t = q->tail;
    if (t == NULL || t->cap - t->len < min) {
        ptc_chunk_t *c = chunk_new(min > PTC_CHUNK_SIZE ? min : PTC_CHUNK_SIZE);
        if (c == NULL) {
            return NULL;
        }
        if (t == NULL) {
            q->head = c;
        } else {
            t->next = c;
        }
        q->tail = c;
        t = c;
    }
    if (avail != NULL) {
        *avail = t->cap - t->len;
    }
    return t->data + t->len;
}

void ptc_chunkq_commit(ptc_chunkq_t *q, size_t n)
{
    assert(q->tail != NULL && n <= q->tail->cap - q->tail->len);
    q->tail->len += n;
    q->queued += n;
}

int ptc_chunkq_try_append(ptc_chunkq_t *q, const void *p, size_t n)
{
    const uint8_t *src = p;
    while (n > 0) {
        size_t avail;
        /* Fill the tail's free space first; a new chunk is taken only when it is full. */
        uint8_t *dst = ptc_chunkq_try_reserve(q, 1, &avail);
        if (dst == NULL) {
            return PTC_ENOMEM;
        }
        size_t take = n < avail ? n : avail;
        memcpy(dst, src, take);
        ptc_chunkq_commit(q, take);
        src += take;
        n -= take;
    }
    return 0;
}

void ptc_chunkq_append(ptc_chunkq_t *q, const void *p, size_t n)
{
    if (ptc_chunkq_try_append(q, p, n) != 0) {
        ptc_xmalloc(SIZE_MAX); /* reports and aborts */
    }
}

size_t ptc_chunkq_peek(const ptc_chunkq_t *q, ptc_slice_t *out, size_t max)
{
    size_t n = 0;
    for (const ptc_chunk_t *c = q->head; c != NULL && n < max; c = c->next) {
        if (c->len > c->off) {
            out[n].ptr = c->data + c->off;
            out[n].len = c->len - c->off;
            n++;
        }
    }
    return n;
}

void ptc_chunkq_consume(ptc_chunkq_t *q, size_t n)
{
    assert(n <= q->queued);
    q->queued -= n;
    while (n > 0) {
        ptc_chunk_t *c = q->head;
        assert(c != NULL);
        size_t have = c->len - c->off;
        if (n < have) {
            c->off += n;
            return;
        }
        n -= have;
        q->head = c->next;
        if (q->head == NULL) {
            q->tail = NULL;
        }
        free(c);
    }
    /* Drop emptied chunks at the head, but keep a partly filled tail for reuse. */
    while (q->head != NULL && q->head != q->tail && q->head->off == q->head->len) {
        ptc_chunk_t *c = q->head;
        q->head = c->next;
        free(c);
    }
}

ptc_chunk_t *ptc_chunkq_detach(ptc_chunkq_t *q, size_t *len)
{
    ptc_chunk_t *list = q->head;
    *len = q->queued;
    if (list == NULL || q->queued == 0) {
        *len = 0;
        return NULL;
    }
    q->inflight += q->queued;
    q->queued = 0;
    q->head = NULL;
    q->tail = NULL;
    return list;
}

void ptc_chunkq_written(ptc_chunkq_t *q, size_t n)
{
    assert(n <= q->inflight);
    q->inflight -= n;
}
