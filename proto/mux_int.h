/* SPDX-License-Identifier: MIT */
/*
 * Internals of the stream multiplexer shared by proto/mux.c (frame handling, flow control,
 * the public API) and proto/mux_stream.c (stream table, stream states, event queue). Never
 * included from outside proto/ (STYLE §1).
 */
#ifndef PTC_PROTO_MUX_INT_H
#define PTC_PROTO_MUX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"
#include "proto/mux.h"

/* One stream known to the mux: open, half-closed, or closed with events still queued. */
struct ptc_mux_stream {
    uint32_t id;
    ptc_mux_stream_state_t state;
    bool responded;        /* RESPONSE received (edge) or sent (connector) */
    bool stalled;          /* ptc_mux_send_data() stopped on this stream's send window */
    bool dropped;          /* reset by the application: its queued events are discarded */
    uint32_t pending;      /* events queued that point at this record */
    int64_t send_window;   /* what the peer lets us send (may go negative on re-basing) */
    int64_t recv_window;   /* what the peer may still send us */
    uint64_t recv_held;    /* DATA delivered to the application and not consumed yet */
    uint64_t recv_unacked; /* consumed, not yet returned in a WINDOW frame */
    void *user;
    struct ptc_mux_stream *prev; /* the list of open streams, in id order */
    struct ptc_mux_stream *next;
};

/* A queued event. Payloads are kept as absolute input positions, not pointers, because the
 * input buffer may move between the feed that queued the event and the pull. */
struct ptc_mux_evrec {
    ptc_mux_event_type_t type;
    struct ptc_mux_stream *s; /* NULL for tunnel events */
    uint32_t stream_id;
    uint32_t code;
    uint32_t last_stream;
    int err;
    bool end_stream;
    bool is_local;
    bool has_payload;
    uint64_t pos; /* absolute input position of the payload (has_payload) */
    size_t len;
    uint64_t rtt_ms;
};

struct ptc_mux {
    ptc_mux_role_t role;
    ptc_mux_limits_t local;
    ptc_mux_limits_t peer;
    ptc_frame_limits_t frame_limits; /* from local */

    bool closed; /* no more input is processed, no more frames are sent */
    bool goaway_sent;
    bool goaway_received;
    uint32_t goaway_sent_last;
    uint32_t goaway_recv_last;
    /* The edge: the highest id it opened. The connector: the highest REQUEST id it saw. */
    uint32_t highest_id;

    /* The stream table: open addressing with linear probing, cap a power of two. */
    struct ptc_mux_stream **slots;
    size_t slot_cap;
    size_t slot_cnt;
    struct ptc_mux_stream *open_head;
    struct ptc_mux_stream *open_tail;
    uint32_t n_open;

    /* Tunnel flow control. */
    int64_t send_window;
    bool tunnel_stalled;
    int64_t recv_window;
    uint64_t recv_held;
    uint64_t recv_unacked;

    /* Input: bytes in_buf[0..in_len) are the absolute positions in_base..in_base+in_len. */
    uint8_t *in_buf;
    size_t in_len;
    size_t in_cap;
    uint64_t in_base;
    uint64_t parse_pos; /* the next frame starts here */

    /* Output: bytes out_buf[out_off..out_len) wait to be written. out_frame is the first
     * frame boundary at or after out_off (a frame may have been written in part). */
    uint8_t *out_buf;
    size_t out_off;
    size_t out_len;
    size_t out_cap;
    size_t out_frame;
    /* PING answers, sent ahead of the output above at its next frame boundary (§4.6). */
    uint8_t urg_buf[PTC_MUX_MAX_PING_ACKS * (PTC_FRAME_HEADER_LEN + PTC_FRAME_PING_LEN)];
    size_t urg_off;
    size_t urg_len;

    /* Events: evq[ev_head..ev_cnt) wait to be pulled. */
    struct ptc_mux_evrec *evq;
    size_t ev_head;
    size_t ev_cnt;
    size_t ev_cap;

    /* Scratch header array for decoding heads (grows on demand). */
    ptc_proto_field_t *fields;
    size_t fields_cap;

    /* Liveness. */
    uint32_t ping_interval_ms;
    uint32_t idle_timeout_ms;
    uint64_t last_recv_ms;
    uint64_t last_ping_ms;
    uint64_t now_ms; /* the time given to the feed in progress */
    bool ping_outstanding;
    uint8_t ping_data[PTC_FRAME_PING_LEN];
    uint64_t ping_sent_ms;

    ptc_mux_stats_t stats;
};

/* ---- mux_stream.c ---- */

/** The record of stream id (open, half-closed, or closed with events queued), or NULL. */
struct ptc_mux_stream *ptc_mux_stream_find(const ptc_mux_t *mux, uint32_t id);

/** Makes room in the table for one more record. 0 or PTC_PROTO_ENOMEM. */
int ptc_mux_stream_reserve(ptc_mux_t *mux);

/**
 * Creates an open stream with the initial windows and enters it in the table and the open
 * list (ptc_mux_stream_reserve() must have succeeded). NULL when memory runs out.
 */
struct ptc_mux_stream *ptc_mux_stream_new(ptc_mux_t *mux, uint32_t id);

/**
 * The one place a stream changes state (STYLE §6; docs/protocol.md §6.1, §6.3). Legal moves:
 * open -> half_closed_local | half_closed_remote | closed; half_closed_* -> closed; anything
 * else trips an assert. Reaching closed leaves the open list, and frees the record when no
 * event refers to it: the caller must not touch s afterwards.
 */
void ptc_mux_stream_set_state(ptc_mux_t *mux, struct ptc_mux_stream *s, ptc_mux_stream_state_t to);

/** Our half ended (END_STREAM sent): open -> half_closed_local, half_closed_remote -> closed. */
void ptc_mux_stream_end_local(ptc_mux_t *mux, struct ptc_mux_stream *s);

/** The peer's half ended: open -> half_closed_remote, half_closed_local -> closed. */
void ptc_mux_stream_end_remote(ptc_mux_t *mux, struct ptc_mux_stream *s);

/** Frees s (and takes it out of the table) if it is closed and no queued event refers to it. */
void ptc_mux_stream_release(ptc_mux_t *mux, struct ptc_mux_stream *s);

/** Queues an event (counted on r->s). 0 or PTC_PROTO_ENOMEM. */
int ptc_mux_stream_push_event(ptc_mux_t *mux, const struct ptc_mux_evrec *r);

/** Queues a payload-less event of stream s (RESET, REFUSED, WRITABLE). */
int ptc_mux_stream_event(ptc_mux_t *mux, ptc_mux_event_type_t type, struct ptc_mux_stream *s,
                         uint32_t code, bool is_local);

/** Queues an event whose payload is input[pos..pos+len) (s is NULL for CONTROL). */
int ptc_mux_stream_payload_event(ptc_mux_t *mux, ptc_mux_event_type_t type,
                                 struct ptc_mux_stream *s, uint64_t pos, size_t len, bool end);

#endif
