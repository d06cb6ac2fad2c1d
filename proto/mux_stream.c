/* SPDX-License-Identifier: MIT */
/*
 * The stream multiplexer's stream records, stream table, state machine and event queue
 * (docs/protocol.md §6). mux.c decodes frames and decides; this file keeps the per-stream
 * bookkeeping: a hash table of records by id (open addressing, flat cost with 10,000+
 * streams), the list of streams still open in id order, the one function that changes a
 * stream's state, and the queue of events waiting to be pulled. Pure libc.
 */
#include "proto/mux_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ---- stream table ---- */

static size_t hash_id(uint32_t id)
{
    /* The murmur3 finalizer: ids that differ only in high bits still spread. */
    uint32_t h = id;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

struct ptc_mux_stream *ptc_mux_stream_find(const ptc_mux_t *mux, uint32_t id)
{
    if (id == 0) {
        return NULL;
    }
    size_t mask = mux->slot_cap - 1;
    for (size_t i = hash_id(id) & mask;; i = (i + 1) & mask) {
        struct ptc_mux_stream *s = mux->slots[i];
        if (s == NULL || s->id == id) {
            return s;
        }
    }
}

static void table_put(struct ptc_mux_stream **slots, size_t cap, struct ptc_mux_stream *s)
{
    size_t mask = cap - 1;
    size_t i = hash_id(s->id) & mask;
    while (slots[i] != NULL) {
        i = (i + 1) & mask;
    }
    slots[i] = s;
}

/* Makes room for one more record (load factor at most 1/2). */
int ptc_mux_stream_reserve(ptc_mux_t *mux)
{
    if ((mux->slot_cnt + 1) * 2 <= mux->slot_cap) {
        return 0;
    }
    size_t cap = mux->slot_cap * 2;
    struct ptc_mux_stream **slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    for (size_t i = 0; i < mux->slot_cap; i++) {
        if (mux->slots[i] != NULL) {
            table_put(slots, cap, mux->slots[i]);
        }
    }
    free(mux->slots);
    mux->slots = slots;
    mux->slot_cap = cap;
    return 0;
}

/* Removes s with backward-shift deletion, so lookups never need tombstones. */
static void table_remove(ptc_mux_t *mux, const struct ptc_mux_stream *s)
{
    size_t mask = mux->slot_cap - 1;
    size_t i = hash_id(s->id) & mask;
    while (mux->slots[i] != s) {
        assert(mux->slots[i] != NULL);
        i = (i + 1) & mask;
    }
    for (size_t j = (i + 1) & mask; mux->slots[j] != NULL; j = (j + 1) & mask) {
        size_t home = hash_id(mux->slots[j]->id) & mask;
        /* The record at j may move back to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            mux->slots[i] = mux->slots[j];
            i = j;
        }
    }
    mux->slots[i] = NULL;
    mux->slot_cnt--;
}

/* ---- stream states ---- */

static void open_list_remove(ptc_mux_t *mux, struct ptc_mux_stream *s)
{
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        mux->open_head = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    } else {
        mux->open_tail = s->prev;
    }
    s->prev = NULL;
    s->next = NULL;
}

/* A closed stream is forgotten once no queued event refers to it. */
void ptc_mux_stream_release(ptc_mux_t *mux, struct ptc_mux_stream *s)
{
    if (s->state == PTC_MUX_STREAM_CLOSED && s->pending == 0) {
        table_remove(mux, s);
        free(s);
    }
}

/*
 * The one place a stream changes state (STYLE §6). Legal moves (docs/protocol.md §6.1, §6.3):
 * open -> half_closed_local | half_closed_remote | closed, half_closed_* -> closed. A stream
 * that reaches closed may be freed here: the caller must not touch s afterwards.
 */
void ptc_mux_stream_set_state(ptc_mux_t *mux, struct ptc_mux_stream *s, ptc_mux_stream_state_t to)
{
    switch (s->state) {
    case PTC_MUX_STREAM_OPEN:
        assert(to == PTC_MUX_STREAM_HALF_CLOSED_LOCAL || to == PTC_MUX_STREAM_HALF_CLOSED_REMOTE ||
               to == PTC_MUX_STREAM_CLOSED);
        break;
    case PTC_MUX_STREAM_HALF_CLOSED_LOCAL:
    case PTC_MUX_STREAM_HALF_CLOSED_REMOTE:
        assert(to == PTC_MUX_STREAM_CLOSED);
        break;
    case PTC_MUX_STREAM_IDLE:
    case PTC_MUX_STREAM_CLOSED:
        assert(!"no transition out of idle or closed");
        break;
    }
    s->state = to;
    if (to == PTC_MUX_STREAM_CLOSED) {
        open_list_remove(mux, s);
        assert(mux->n_open > 0);
        mux->n_open--;
        s->stalled = false;
        ptc_mux_stream_release(mux, s);
    }
}

/* Our half ended (END_STREAM sent). */
void ptc_mux_stream_end_local(ptc_mux_t *mux, struct ptc_mux_stream *s)
{
    ptc_mux_stream_set_state(mux, s,
                             s->state == PTC_MUX_STREAM_OPEN ? PTC_MUX_STREAM_HALF_CLOSED_LOCAL
                                                             : PTC_MUX_STREAM_CLOSED);
}

/* The peer's half ended (END_STREAM received). */
void ptc_mux_stream_end_remote(ptc_mux_t *mux, struct ptc_mux_stream *s)
{
    ptc_mux_stream_set_state(mux, s,
                             s->state == PTC_MUX_STREAM_OPEN ? PTC_MUX_STREAM_HALF_CLOSED_REMOTE
                                                             : PTC_MUX_STREAM_CLOSED);
}

/* Creates an open stream and enters it in the table (ptc_mux_stream_reserve() must have succeeded).
 */
struct ptc_mux_stream *ptc_mux_stream_new(ptc_mux_t *mux, uint32_t id)
{
    struct ptc_mux_stream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->id = id;
    s->state = PTC_MUX_STREAM_OPEN;
    s->send_window = mux->peer.initial_stream_window;
    s->recv_window = mux->local.initial_stream_window;
    table_put(mux->slots, mux->slot_cap, s);
    mux->slot_cnt++;
    s->prev = mux->open_tail;
    if (mux->open_tail != NULL) {
        mux->open_tail->next = s;
    } else {
        mux->open_head = s;
    }
    mux->open_tail = s;
    mux->n_open++;
    mux->stats.streams_total++;
    return s;
}

/* ---- events ---- */

int ptc_mux_stream_push_event(ptc_mux_t *mux, const struct ptc_mux_evrec *r)
{
    if (mux->ev_cnt == mux->ev_cap) {
        if (mux->ev_head > 0) {
            memmove(mux->evq, mux->evq + mux->ev_head,
                    (mux->ev_cnt - mux->ev_head) * sizeof(*mux->evq));
            mux->ev_cnt -= mux->ev_head;
            mux->ev_head = 0;
        } else {
            size_t cap = mux->ev_cap != 0 ? mux->ev_cap * 2 : 16;
            struct ptc_mux_evrec *q = realloc(mux->evq, cap * sizeof(*q));
            if (q == NULL) {
                return PTC_PROTO_ENOMEM;
            }
            mux->evq = q;
            mux->ev_cap = cap;
        }
    }
    mux->evq[mux->ev_cnt++] = *r;
    if (r->s != NULL) {
        r->s->pending++;
    }
    return 0;
}

int ptc_mux_stream_event(ptc_mux_t *mux, ptc_mux_event_type_t type, struct ptc_mux_stream *s,
                         uint32_t code, bool is_local)
{
    struct ptc_mux_evrec r = {
        .type = type, .s = s, .stream_id = s->id, .code = code, .is_local = is_local};
    return ptc_mux_stream_push_event(mux, &r);
}

int ptc_mux_stream_payload_event(ptc_mux_t *mux, ptc_mux_event_type_t type,
                                 struct ptc_mux_stream *s, uint64_t pos, size_t len, bool end)
{
    struct ptc_mux_evrec r = {.type = type,
                              .s = s,
                              .stream_id = s != NULL ? s->id : 0,
                              .end_stream = end,
                              .has_payload = true,
                              .pos = pos,
                              .len = len};
    return ptc_mux_stream_push_event(mux, &r);
}

/* ---- per-stream state ---- */

int ptc_mux_set_user(ptc_mux_t *mux, uint32_t id, void *user)
{
    struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    if (s == NULL) {
        return PTC_PROTO_ENOSTREAM;
    }
    s->user = user;
    return 0;
}

void *ptc_mux_get_user(const ptc_mux_t *mux, uint32_t id)
{
    const struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    return s != NULL ? s->user : NULL;
}

ptc_mux_stream_state_t ptc_mux_stream_state(const ptc_mux_t *mux, uint32_t id)
{
    const struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    return s != NULL ? s->state : PTC_MUX_STREAM_IDLE;
}

const char *ptc_mux_stream_state_name(ptc_mux_stream_state_t st)
{
    switch (st) {
    case PTC_MUX_STREAM_IDLE:
        return "idle";
    case PTC_MUX_STREAM_OPEN:
        return "open";
    case PTC_MUX_STREAM_HALF_CLOSED_LOCAL:
        return "half_closed_local";
    case PTC_MUX_STREAM_HALF_CLOSED_REMOTE:
        return "half_closed_remote";
    case PTC_MUX_STREAM_CLOSED:
        return "closed";
    }
    return "unknown";
}
