/* SPDX-License-Identifier: MIT */
/*
 * Buffers: borrowed slices, a growable input buffer with a read offset, and an output chunk
 * queue with high- and low-water marks for back-pressure (STYLE §4, §6).
 *
 * - ptc_slice_t is a borrowed view: never keep one past the call or callback that gave it.
 * - ptc_buf_t accumulates input; parsers hand out slices into it and the owner consumes
 *   what was parsed. Appending may move the data, which invalidates earlier slices.
 * - ptc_chunkq_t is the output side: a FIFO of heap chunks. A writer detaches the head
 *   chunks into a write request that owns and frees them; the bytes stay counted as
 *   "in flight" until ptc_chunkq_written() so that the water marks see the whole backlog.
 *
 * Depends on libc only.
 */
#ifndef PTC_COMMON_BUF_H
#define PTC_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct ptc_slice {
    const uint8_t *ptr;
    size_t len;
} ptc_slice_t;

/** A slice over a NUL-terminated string (borrowed). */
ptc_slice_t ptc_slice_str(const char *s);
/** True if the slice equals the string exactly. */
bool ptc_slice_eq(ptc_slice_t s, const char *str);
/** True if the slice equals the string, ASCII case-insensitively. */
bool ptc_slice_case_eq(ptc_slice_t s, const char *str);

/* ---- growable input buffer ---- */

typedef struct ptc_buf {
    uint8_t *_base; /* allocation */
    size_t _off;    /* start of unread data */
    size_t len;     /* unread bytes */
    size_t _cap;    /* allocation size */
} ptc_buf_t;

/** Initializes an empty buffer (no allocation until first use). */
void ptc_buf_init(ptc_buf_t *b);
/** Frees the storage (secret contents are the caller's to wipe first). */
void ptc_buf_dispose(ptc_buf_t *b);
/** The unread bytes (valid until the next reserve, append or dispose). */
static inline uint8_t *ptc_buf_data(const ptc_buf_t *b)
{
    /* A buffer that never held data has no allocation, and NULL + 0 is undefined in C:
     * point at an empty placeholder instead (nothing is ever read or written through it,
     * since len is 0). */
    static uint8_t none[1];
    return b->_base != NULL ? b->_base + b->_off : none;
}
static inline ptc_slice_t ptc_buf_slice(const ptc_buf_t *b)
{
    ptc_slice_t s = {ptc_buf_data(b), b->len};
    return s;
}
/**
 * Makes room for at least `min` bytes after the data and returns where to write them (then
 * call ptc_buf_commit with how many were written). Returns NULL if memory runs out.
 */
PTC_MUST_CHECK uint8_t *ptc_buf_try_reserve(ptc_buf_t *b, size_t min, size_t *avail);
/** As ptc_buf_try_reserve, but aborts if memory runs out (fixed-size bookkeeping only). */
uint8_t *ptc_buf_reserve(ptc_buf_t *b, size_t min, size_t *avail);
/** Marks `n` bytes written after a reserve as data. */
void ptc_buf_commit(ptc_buf_t *b, size_t n);
/** Appends a copy of p[0..n). Returns 0 or PTC_ENOMEM. */
PTC_MUST_CHECK int ptc_buf_try_append(ptc_buf_t *b, const void *p, size_t n);
/** Appends a copy of p[0..n); aborts if memory runs out. */
void ptc_buf_append(ptc_buf_t *b, const void *p, size_t n);
/** Drops `n` (<= len) bytes from the front. When empty, the offset resets to 0. */
void ptc_buf_consume(ptc_buf_t *b, size_t n);
/** Drops all data, keeps the allocation. */
void ptc_buf_reset(ptc_buf_t *b);

/* ---- output chunk queue ---- */

typedef struct ptc_chunk {
    struct ptc_chunk *next;
    size_t off; /* first unsent byte */
    size_t len; /* bytes stored, from data[0] */
    size_t cap;
    uint8_t data[];
} ptc_chunk_t;

typedef struct ptc_chunkq {
    ptc_chunk_t *head;
    ptc_chunk_t *tail;
    size_t queued;   /* bytes in the queue, not yet handed to a writer */
    size_t inflight; /* bytes detached into writes that have not completed */
    size_t high_water;
    size_t low_water;
} ptc_chunkq_t;

/** Default size of a new chunk when small writes are coalesced. */
#define PTC_CHUNK_SIZE 16384

/** Initializes an empty queue with its water marks (low <= high). */
void ptc_chunkq_init(ptc_chunkq_t *q, size_t high_water, size_t low_water);
/** Frees every queued chunk. In-flight chunks belong to their write requests. */
void ptc_chunkq_dispose(ptc_chunkq_t *q);
/**
 * Appends a copy of p[0..n), filling the tail chunk first. Returns 0 or PTC_ENOMEM.
 * Never refuses for being above the high-water mark: the caller checks ptc_chunkq_is_full()
 * and stops its source.
 */
PTC_MUST_CHECK int ptc_chunkq_try_append(ptc_chunkq_t *q, const void *p, size_t n);
/** As ptc_chunkq_try_append; aborts if memory runs out. */
void ptc_chunkq_append(ptc_chunkq_t *q, const void *p, size_t n);
/**
 * Returns a pointer to at least `min` writable bytes at the end of the queue (a new chunk of
 * max(min, PTC_CHUNK_SIZE) if the tail has less room) and their count in *avail; then
 * ptc_chunkq_commit(). Lets encoders write in place. NULL if memory runs out.
 */
PTC_MUST_CHECK uint8_t *ptc_chunkq_try_reserve(ptc_chunkq_t *q, size_t min, size_t *avail);
/** Marks `n` reserved bytes as queued. */
void ptc_chunkq_commit(ptc_chunkq_t *q, size_t n);
/** Fills up to `max` slices with the queued bytes, head first; returns how many. */
size_t ptc_chunkq_peek(const ptc_chunkq_t *q, ptc_slice_t *out, size_t max);
/** Drops `n` (<= queued) bytes from the head (for writers that copy, e.g. into TLS). */
void ptc_chunkq_consume(ptc_chunkq_t *q, size_t n);
/**
 * Detaches every queued chunk as a list that the caller now owns (and frees with
 * ptc_chunk_free_list() when the write completes); their bytes move to `inflight`.
 * Returns NULL if nothing is queued; *len gets the byte count.
 */
ptc_chunk_t *ptc_chunkq_detach(ptc_chunkq_t *q, size_t *len);
/** Reports that `n` in-flight bytes were written (or failed): they leave `inflight`. */
void ptc_chunkq_written(ptc_chunkq_t *q, size_t n);
/** Frees a detached list. */
void ptc_chunk_free_list(ptc_chunk_t *c);
/** Bytes queued plus in flight: the backlog the water marks apply to. */
static inline size_t ptc_chunkq_backlog(const ptc_chunkq_t *q)
{
    return q->queued + q->inflight;
}
/** True at or above the high-water mark: stop the source. */
static inline bool ptc_chunkq_is_full(const ptc_chunkq_t *q)
{
    return ptc_chunkq_backlog(q) >= q->high_water;
}
/** True at or below the low-water mark: resume the source. */
static inline bool ptc_chunkq_is_drained(const ptc_chunkq_t *q)
{
    return ptc_chunkq_backlog(q) <= q->low_water;
}

#endif
