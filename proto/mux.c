/* SPDX-License-Identifier: MIT */
/*
 * Tunnel protocol v1 stream multiplexer (docs/protocol.md §6, §7, §9, §10). It owns the input
 * buffer (bytes fed but not yet decoded, and the payloads of events not yet pulled), the output
 * buffer (encoded frames not yet written), the event queue, and the stream table: a hash table
 * of stream records by id plus a list of the streams still open, in id order. Frames are
 * decoded with proto/frame.h and header blocks validated with proto/hblock.h; everything
 * about sequences of frames (stream states, flow control, GOAWAY, PING) is decided here.
 * Pure libc: no I/O, no clock, nothing else of ours.
 */
#include "proto/mux.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/mux_int.h"

/* Buffers above this are released when they become empty (a burst should not pin memory). */
#define SHRINK_ABOVE (256u * 1024u)

/* The stream table's first size (a power of two). */
#define MUX_FIRST_SLOTS 16u

/* ---- small helpers ---- */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t elapsed(uint64_t now, uint64_t since)
{
    return now > since ? now - since : 0;
}

/* The wire code a tunnel error sends in GOAWAY (docs/protocol.md §8, §9 rule 7). */
static uint32_t wire_code_of(int err)
{
    switch (err) {
    case PTC_PROTO_EFRAME_SIZE:
        return PTC_WIRE_FRAME_SIZE_ERROR;
    case PTC_PROTO_EFLOW:
        return PTC_WIRE_FLOW_CONTROL_ERROR;
    case PTC_PROTO_ETIMEOUT:
        return PTC_WIRE_TIMEOUT;
    case PTC_PROTO_EHEADER:
        return PTC_WIRE_HEADER_ERROR;
    case PTC_PROTO_EPROTOCOL:
        return PTC_WIRE_PROTOCOL_ERROR;
    default:
        return PTC_WIRE_INTERNAL_ERROR;
    }
}

/* WINDOW updates are sent once half the initial window is owed (docs/protocol.md §7.3 rule 2). */
static uint64_t batch_threshold(uint32_t initial_window)
{
    return initial_window / 2 > 0 ? initial_window / 2 : 1;
}

/* Decodes a head into ev, growing the scratch header array as needed. */
static int decode_head(ptc_mux_t *mux, bool request, const uint8_t *p, size_t len,
                       ptc_mux_event_t *ev)
{
    for (;;) {
        int rc =
            request
                ? ptc_hblock_decode_request(p, len, &ev->request, mux->fields, mux->fields_cap)
                : ptc_hblock_decode_response(p, len, &ev->response, mux->fields, mux->fields_cap);
        if (rc != PTC_PROTO_ELIMIT) {
            return rc;
        }
        /* Each header takes at least 5 bytes (two u16 lengths and a 1-byte name), and the
         * count is a u16: that bounds the array whatever max_header_block is. */
        size_t most = len / 5 + 1;
        if (most > PTC_HBLOCK_HEADERS_MAX + 1) {
            most = PTC_HBLOCK_HEADERS_MAX + 1;
        }
        if (mux->fields_cap >= most) {
            return PTC_PROTO_EHEADER;
        }
        size_t cap = mux->fields_cap * 2 > most ? most : mux->fields_cap * 2;
        ptc_proto_field_t *f = realloc(mux->fields, cap * sizeof(*f));
        if (f == NULL) {
            return PTC_PROTO_ENOMEM;
        }
        mux->fields = f;
        mux->fields_cap = cap;
    }
}

/* ---- output ---- */

/* Returns room for n more bytes at the end of the output, or NULL when memory ran out. */
static uint8_t *out_reserve(ptc_mux_t *mux, size_t n)
{
    if (mux->out_cap - mux->out_len >= n) {
        return mux->out_buf + mux->out_len;
    }
    if (mux->out_off > 0) {
        memmove(mux->out_buf, mux->out_buf + mux->out_off, mux->out_len - mux->out_off);
        mux->out_len -= mux->out_off;
        mux->out_frame -= mux->out_off;
        mux->out_off = 0;
        if (mux->out_cap - mux->out_len >= n) {
            return mux->out_buf + mux->out_len;
        }
    }
    size_t cap = mux->out_cap != 0 ? mux->out_cap : 4096;
    while (cap - mux->out_len < n) {
        if (cap > SIZE_MAX / 2) {
            return NULL;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(mux->out_buf, cap);
    if (p == NULL) {
        return NULL;
    }
    mux->out_buf = p;
    mux->out_cap = cap;
    return mux->out_buf + mux->out_len;
}

static void out_commit(ptc_mux_t *mux, size_t n, uint64_t frames)
{
    assert(mux->out_cap - mux->out_len >= n);
    mux->out_len += n;
    mux->stats.bytes_out += n;
    mux->stats.frames_out += frames;
}

static int emit_window(ptc_mux_t *mux, uint32_t id, uint32_t inc)
{
    uint8_t *p = out_reserve(mux, PTC_FRAME_HEADER_LEN + PTC_FRAME_WINDOW_LEN);
    if (p == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    ssize_t n = ptc_frame_encode_window(p, PTC_FRAME_HEADER_LEN + PTC_FRAME_WINDOW_LEN, id, inc);
    assert(n == PTC_FRAME_HEADER_LEN + PTC_FRAME_WINDOW_LEN);
    out_commit(mux, (size_t)n, 1);
    return 0;
}

static int emit_reset(ptc_mux_t *mux, uint32_t id, uint32_t code)
{
    uint8_t *p = out_reserve(mux, PTC_FRAME_HEADER_LEN + PTC_FRAME_RESET_LEN);
    if (p == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    ssize_t n = ptc_frame_encode_reset(p, PTC_FRAME_HEADER_LEN + PTC_FRAME_RESET_LEN, id, code);
    assert(n == PTC_FRAME_HEADER_LEN + PTC_FRAME_RESET_LEN);
    out_commit(mux, (size_t)n, 1);
    mux->stats.streams_reset++;
    return 0;
}

static int emit_ping(ptc_mux_t *mux, const uint8_t data[PTC_FRAME_PING_LEN])
{
    uint8_t *p = out_reserve(mux, PTC_FRAME_HEADER_LEN + PTC_FRAME_PING_LEN);
    if (p == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    ssize_t n = ptc_frame_encode_ping(p, PTC_FRAME_HEADER_LEN + PTC_FRAME_PING_LEN, 0, data);
    assert(n == PTC_FRAME_HEADER_LEN + PTC_FRAME_PING_LEN);
    out_commit(mux, (size_t)n, 1);
    return 0;
}

/*
 * Queues the answer to a PING ahead of the other output (§4.6, §10 rule 4). The answers
 * waiting are bounded: a peer that sends PINGs but does not read ours is a tunnel
 * PROTOCOL_ERROR rather than a reason to queue without limit.
 */
static int emit_ping_ack(ptc_mux_t *mux, const uint8_t data[PTC_FRAME_PING_LEN])
{
    size_t len = PTC_FRAME_HEADER_LEN + PTC_FRAME_PING_LEN;
    if (sizeof(mux->urg_buf) - mux->urg_len < len && mux->urg_off > 0) {
        memmove(mux->urg_buf, mux->urg_buf + mux->urg_off, mux->urg_len - mux->urg_off);
        mux->urg_len -= mux->urg_off;
        mux->urg_off = 0;
    }
    if (sizeof(mux->urg_buf) - mux->urg_len < len) {
        return PTC_PROTO_EPROTOCOL;
    }
    ssize_t n = ptc_frame_encode_ping(mux->urg_buf + mux->urg_len, len, PTC_FLAG_ACK, data);
    assert(n == (ssize_t)len);
    mux->urg_len += len;
    mux->stats.bytes_out += len;
    mux->stats.frames_out++;
    return 0;
}

static int emit_goaway(ptc_mux_t *mux, uint32_t last, uint32_t code, const uint8_t *debug,
                       size_t debug_len)
{
    size_t len = PTC_FRAME_HEADER_LEN + PTC_FRAME_GOAWAY_MIN_LEN + debug_len;
    uint8_t *p = out_reserve(mux, len);
    if (p == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    ssize_t n = ptc_frame_encode_goaway(p, len, last, code, debug, debug_len);
    assert(n == (ssize_t)len);
    out_commit(mux, (size_t)n, 1);
    return 0;
}

/* ---- receive credit ---- */

/* Returns n bytes of tunnel receive window to the peer, batched. */
static int credit_tunnel(ptc_mux_t *mux, uint64_t n)
{
    mux->recv_unacked += n;
    assert(mux->recv_window + mux->recv_unacked <= mux->local.initial_tunnel_window);
    if (mux->closed || mux->recv_unacked < batch_threshold(mux->local.initial_tunnel_window)) {
        return 0;
    }
    int rc = emit_window(mux, 0, (uint32_t)mux->recv_unacked);
    if (rc != 0) {
        return rc;
    }
    mux->recv_window += (int64_t)mux->recv_unacked;
    mux->recv_unacked = 0;
    return 0;
}

/* Returns n bytes of s's receive window to the peer, batched. */
static int credit_stream(ptc_mux_t *mux, struct ptc_mux_stream *s, uint64_t n)
{
    /* A peer whose half ended sends no more DATA: it needs no credit. */
    if (s->state != PTC_MUX_STREAM_OPEN && s->state != PTC_MUX_STREAM_HALF_CLOSED_LOCAL) {
        return 0;
    }
    s->recv_unacked += n;
    if (mux->closed || s->recv_unacked < batch_threshold(mux->local.initial_stream_window)) {
        return 0;
    }
    int rc = emit_window(mux, s->id, (uint32_t)s->recv_unacked);
    if (rc != 0) {
        return rc;
    }
    s->recv_window += (int64_t)s->recv_unacked;
    s->recv_unacked = 0;
    return 0;
}

/* ---- ending streams and the tunnel ---- */

/* Resets s because the peer broke a rule of this stream alone (docs/protocol.md §1, §6.3). */
static int stream_error(ptc_mux_t *mux, struct ptc_mux_stream *s, uint32_t code)
{
    int rc = emit_reset(mux, s->id, code);
    if (rc == 0) {
        rc = ptc_mux_stream_event(mux, PTC_MUX_EV_RESET, s, code, true);
    }
    ptc_mux_stream_set_state(mux, s, PTC_MUX_STREAM_CLOSED);
    return rc;
}

/*
 * Ends every open stream above `above` with an event: REFUSED (never processed: retryable)
 * when refuse is set, else RESET(code). Streams are in id order, so the walk goes from the
 * newest down and stops at the first one at or below `above`.
 */
static void end_streams(ptc_mux_t *mux, uint32_t above, bool refuse, uint32_t code, bool is_local)
{
    struct ptc_mux_stream *s = mux->open_tail;
    while (s != NULL && s->id > above) {
        struct ptc_mux_stream *prev = s->prev;
        /* Best effort: without memory for the event the stream is just forgotten. */
        (void)ptc_mux_stream_event(mux, refuse ? PTC_MUX_EV_REFUSED : PTC_MUX_EV_RESET, s, code,
                                   is_local);
        if (refuse) {
            mux->stats.streams_refused++;
        }
        ptc_mux_stream_set_state(mux, s, PTC_MUX_STREAM_CLOSED);
        s = prev;
    }
}

/* The last_stream this side puts in a GOAWAY (docs/protocol.md §9 rule 2). */
static uint32_t goaway_last_id(const ptc_mux_t *mux)
{
    /* Only the connector processes streams; the edge processes none of the peer's. */
    if (mux->role == PTC_MUX_EDGE) {
        return 0;
    }
    if (mux->goaway_sent && mux->goaway_sent_last < mux->highest_id) {
        return mux->goaway_sent_last;
    }
    return mux->highest_id;
}

/*
 * A tunnel error (docs/protocol.md §9 rule 7): queues GOAWAY(code), ends every stream with a RESET
 * event and the queue with an ERROR event, and closes the mux. Returns err.
 */
static int fail_tunnel(ptc_mux_t *mux, int err)
{
    if (mux->closed) {
        return err;
    }
    uint32_t code = wire_code_of(err);
    uint32_t last = goaway_last_id(mux);
    static const char idle[] = "idle timeout"; /* the text §10 rule 3 gives */
    bool timeout = err == PTC_PROTO_ETIMEOUT;
    /* Best effort: without memory the connection is closed without a GOAWAY. */
    (void)emit_goaway(mux, last, code, timeout ? (const uint8_t *)idle : NULL,
                      timeout ? sizeof(idle) - 1 : 0);
    mux->goaway_sent = true;
    mux->goaway_sent_last = last;
    mux->closed = true;
    end_streams(mux, 0, false, code, true);
    struct ptc_mux_evrec r = {.type = PTC_MUX_EV_ERROR, .code = code, .err = err};
    (void)ptc_mux_stream_push_event(mux, &r);
    return err;
}

/* ---- frame handlers (docs/protocol.md §4, §6.3, §7) ---- */

static int on_data(ptc_mux_t *mux, const ptc_frame_t *f, uint64_t pos)
{
    uint32_t id = f->hdr.stream;
    uint32_t len = f->hdr.length;
    bool end = (f->hdr.flags & PTC_FLAG_END_STREAM) != 0;
    if (id > mux->highest_id) {
        return PTC_PROTO_EPROTOCOL;
    }
    /* The whole payload counts against the tunnel window, whatever becomes of it. */
    if (len > mux->recv_window) {
        return PTC_PROTO_EFLOW;
    }
    mux->recv_window -= len;
    mux->stats.data_in += len;
    struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    if (s == NULL || s->state == PTC_MUX_STREAM_CLOSED) {
        /* A stream we forgot (a race with RESET): drop the bytes, keep the tunnel window. */
        return credit_tunnel(mux, len);
    }
    if (mux->role == PTC_MUX_EDGE && !s->responded) {
        return PTC_PROTO_EPROTOCOL;
    }
    if (s->state == PTC_MUX_STREAM_HALF_CLOSED_REMOTE || len > s->recv_window) {
        int rc = credit_tunnel(mux, len);
        if (rc != 0) {
            return rc;
        }
        return stream_error(mux, s,
                            s->state == PTC_MUX_STREAM_HALF_CLOSED_REMOTE
                                ? PTC_WIRE_STREAM_CLOSED
                                : PTC_WIRE_FLOW_CONTROL_ERROR);
    }
    s->recv_window -= len;
    if (len == 0 && !end) {
        return 0;
    }
    int rc = ptc_mux_stream_payload_event(mux, PTC_MUX_EV_DATA, s, pos, len, end);
    if (rc != 0) {
        return rc;
    }
    if (end) {
        ptc_mux_stream_end_remote(mux, s);
    }
    return 0;
}

static int on_request(ptc_mux_t *mux, const ptc_frame_t *f, uint64_t pos)
{
    uint32_t id = f->hdr.stream;
    bool end = (f->hdr.flags & PTC_FLAG_END_STREAM) != 0;
    if (mux->role == PTC_MUX_EDGE || id <= mux->highest_id || mux->goaway_received) {
        return PTC_PROTO_EPROTOCOL;
    }
    mux->highest_id = id;
    /* Above our GOAWAY's last_stream, or over our max_streams: never processed (§6.3 notes 3, 4).
     */
    if ((mux->goaway_sent && id > mux->goaway_sent_last) || mux->n_open >= mux->local.max_streams) {
        mux->stats.streams_refused++;
        return emit_reset(mux, id, PTC_WIRE_REFUSED_STREAM);
    }
    ptc_mux_event_t tmp;
    int rc = decode_head(mux, true, f->payload, f->hdr.length, &tmp);
    if (rc == PTC_PROTO_EHEADER) {
        return emit_reset(mux, id, PTC_WIRE_HEADER_ERROR);
    }
    if (rc != 0) {
        return rc;
    }
    rc = ptc_mux_stream_reserve(mux);
    if (rc != 0) {
        return rc;
    }
    struct ptc_mux_stream *s = ptc_mux_stream_new(mux, id);
    if (s == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    rc = ptc_mux_stream_payload_event(mux, PTC_MUX_EV_REQUEST, s, pos, f->hdr.length, end);
    if (rc != 0) {
        return rc;
    }
    if (end) {
        ptc_mux_stream_end_remote(mux, s);
    }
    return 0;
}

static int on_response(ptc_mux_t *mux, const ptc_frame_t *f, uint64_t pos)
{
    uint32_t id = f->hdr.stream;
    bool end = (f->hdr.flags & PTC_FLAG_END_STREAM) != 0;
    if (mux->role == PTC_MUX_CONNECTOR || id > mux->highest_id) {
        return PTC_PROTO_EPROTOCOL;
    }
    struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    if (s == NULL || s->state == PTC_MUX_STREAM_CLOSED) {
        return 0;
    }
    if (s->responded) {
        return PTC_PROTO_EPROTOCOL;
    }
    ptc_mux_event_t tmp;
    int rc = decode_head(mux, false, f->payload, f->hdr.length, &tmp);
    if (rc == PTC_PROTO_EHEADER) {
        return stream_error(mux, s, PTC_WIRE_HEADER_ERROR);
    }
    if (rc != 0) {
        return rc;
    }
    s->responded = true;
    rc = ptc_mux_stream_payload_event(mux, PTC_MUX_EV_RESPONSE, s, pos, f->hdr.length, end);
    if (rc != 0) {
        return rc;
    }
    if (end) {
        ptc_mux_stream_end_remote(mux, s);
    }
    return 0;
}

static int on_reset(ptc_mux_t *mux, const ptc_frame_t *f)
{
    uint32_t id = f->hdr.stream;
    if (id > mux->highest_id) {
        return PTC_PROTO_EPROTOCOL;
    }
    struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    if (s == NULL || s->state == PTC_MUX_STREAM_CLOSED) {
        return 0;
    }
    mux->stats.streams_reset++;
    uint32_t code = ptc_frame_reset_code(f);
    int rc;
    if (mux->role == PTC_MUX_EDGE && code == PTC_WIRE_REFUSED_STREAM) {
        mux->stats.streams_refused++;
        rc = ptc_mux_stream_event(mux, PTC_MUX_EV_REFUSED, s, code, false);
    } else {
        rc = ptc_mux_stream_event(mux, PTC_MUX_EV_RESET, s, code, false);
    }
    ptc_mux_stream_set_state(mux, s, PTC_MUX_STREAM_CLOSED);
    return rc;
}

static int on_window(ptc_mux_t *mux, const ptc_frame_t *f)
{
    uint32_t id = f->hdr.stream;
    int64_t inc = ptc_frame_window_increment(f);
    if (id == 0) {
        if (mux->send_window + inc > (int64_t)PTC_WINDOW_MAX) {
            return PTC_PROTO_EFLOW;
        }
        mux->send_window += inc;
        if (mux->tunnel_stalled && mux->send_window > 0) {
            mux->tunnel_stalled = false;
            struct ptc_mux_evrec r = {.type = PTC_MUX_EV_WRITABLE};
            return ptc_mux_stream_push_event(mux, &r);
        }
        return 0;
    }
    struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    if (s == NULL || s->state == PTC_MUX_STREAM_CLOSED) {
        return 0;
    }
    if (s->send_window + inc > (int64_t)PTC_WINDOW_MAX) {
        return stream_error(mux, s, PTC_WIRE_FLOW_CONTROL_ERROR);
    }
    s->send_window += inc;
    if (s->stalled && s->send_window > 0) {
        s->stalled = false;
        return ptc_mux_stream_event(mux, PTC_MUX_EV_WRITABLE, s, 0, false);
    }
    return 0;
}

static int on_ping(ptc_mux_t *mux, const ptc_frame_t *f)
{
    const uint8_t *data = ptc_frame_ping_data(f);
    if ((f->hdr.flags & PTC_FLAG_ACK) == 0) {
        return emit_ping_ack(mux, data);
    }
    /* Only the answer to our latest PING counts; others are ignored (docs/protocol.md §4.6). */
    if (!mux->ping_outstanding || memcmp(data, mux->ping_data, PTC_FRAME_PING_LEN) != 0) {
        return 0;
    }
    mux->ping_outstanding = false;
    struct ptc_mux_evrec r = {.type = PTC_MUX_EV_PING_ACK,
                              .rtt_ms = elapsed(mux->now_ms, mux->ping_sent_ms)};
    return ptc_mux_stream_push_event(mux, &r);
}

static int on_goaway(ptc_mux_t *mux, const ptc_frame_t *f, uint64_t pos)
{
    uint32_t last = ptc_frame_goaway_last_stream(f);
    uint32_t code = ptc_frame_goaway_error(f);
    size_t debug_len;
    (void)ptc_frame_goaway_debug(f, &debug_len);
    /* A later GOAWAY may lower last_stream but never raise it (docs/protocol.md §9 rule 6). */
    if (mux->goaway_received && last > mux->goaway_recv_last) {
        last = mux->goaway_recv_last;
    }
    mux->goaway_received = true;
    mux->goaway_recv_last = last;
    struct ptc_mux_evrec r = {.type = PTC_MUX_EV_GOAWAY,
                              .code = code,
                              .last_stream = last,
                              .has_payload = true,
                              .pos = pos + PTC_FRAME_GOAWAY_MIN_LEN,
                              .len = debug_len};
    int rc = ptc_mux_stream_push_event(mux, &r);
    if (rc != 0) {
        return rc;
    }
    if (mux->role == PTC_MUX_EDGE) {
        end_streams(mux, last, true, PTC_WIRE_REFUSED_STREAM, false);
    }
    if (code != PTC_WIRE_NO_ERROR) {
        /* The peer closes the tunnel after an error GOAWAY: nothing more will complete. */
        mux->closed = true;
        end_streams(mux, 0, false, code, false);
    }
    return 0;
}

static int on_frame(ptc_mux_t *mux, const ptc_frame_t *f, uint64_t pos)
{
    if (f->stream_error != 0) {
        /* Well-formed but invalid for its stream alone: reset that stream if it is open. */
        if (f->hdr.stream > mux->highest_id) {
            return PTC_PROTO_EPROTOCOL;
        }
        struct ptc_mux_stream *s = ptc_mux_stream_find(mux, f->hdr.stream);
        if (s == NULL || s->state == PTC_MUX_STREAM_CLOSED) {
            return 0;
        }
        return stream_error(mux, s, f->stream_error);
    }
    switch ((ptc_frame_type_t)f->hdr.type) {
    case PTC_FRAME_DATA:
        return on_data(mux, f, pos);
    case PTC_FRAME_REQUEST:
        return on_request(mux, f, pos);
    case PTC_FRAME_RESPONSE:
        return on_response(mux, f, pos);
    case PTC_FRAME_RESET:
        return on_reset(mux, f);
    case PTC_FRAME_WINDOW:
        if (f->hdr.stream > mux->highest_id) {
            return PTC_PROTO_EPROTOCOL;
        }
        return on_window(mux, f);
    case PTC_FRAME_PING:
        return on_ping(mux, f);
    case PTC_FRAME_GOAWAY:
        return on_goaway(mux, f, pos);
    case PTC_FRAME_CONTROL:
        return ptc_mux_stream_payload_event(mux, PTC_MUX_EV_CONTROL, NULL, pos, f->hdr.length,
                                            false);
    }
    return 0; /* unknown types never get here (ptc_frame_decode() flags them) */
}

/* ---- lifecycle and limits ---- */

int ptc_mux_limits_check(const ptc_mux_limits_t *lim)
{
    if (lim->max_frame_size < PTC_MUX_MIN_FRAME_SIZE || lim->max_frame_size > PTC_FRAME_LEN_MAX ||
        lim->max_header_block < PTC_MUX_MIN_HEADER_BLOCK ||
        lim->max_header_block > PTC_FRAME_LEN_MAX ||
        lim->max_control_size < PTC_MUX_MIN_CONTROL_SIZE ||
        lim->max_control_size > PTC_FRAME_LEN_MAX || lim->max_streams < 1 ||
        lim->max_streams > PTC_STREAM_ID_MAX || lim->initial_stream_window < 1 ||
        lim->initial_stream_window > PTC_WINDOW_MAX || lim->initial_tunnel_window < 1 ||
        lim->initial_tunnel_window > PTC_WINDOW_MAX) {
        return PTC_PROTO_ELIMIT;
    }
    return 0;
}

ptc_mux_t *ptc_mux_new(ptc_mux_role_t role, const ptc_mux_limits_t *local, uint64_t now_ms)
{
    static const ptc_mux_limits_t defaults = PTC_MUX_LIMITS_DEFAULT;
    if (local == NULL) {
        local = &defaults;
    }
    if (ptc_mux_limits_check(local) != 0) {
        return NULL;
    }
    ptc_mux_t *mux = calloc(1, sizeof(*mux));
    if (mux == NULL) {
        return NULL;
    }
    mux->role = role;
    mux->local = *local;
    mux->peer = defaults;
    mux->frame_limits.max_frame_size = local->max_frame_size;
    mux->frame_limits.max_header_block = local->max_header_block;
    mux->frame_limits.max_control_size = local->max_control_size;
    mux->send_window = defaults.initial_tunnel_window;
    mux->recv_window = local->initial_tunnel_window;
    mux->ping_interval_ms = PTC_DEFAULT_PING_INTERVAL_MS;
    mux->idle_timeout_ms = PTC_DEFAULT_IDLE_TIMEOUT_MS;
    mux->last_recv_ms = now_ms;
    mux->last_ping_ms = now_ms;
    mux->now_ms = now_ms;
    mux->slot_cap = MUX_FIRST_SLOTS;
    mux->slots = calloc(mux->slot_cap, sizeof(*mux->slots));
    mux->fields_cap = 32;
    mux->fields = malloc(mux->fields_cap * sizeof(*mux->fields));
    if (mux->slots == NULL || mux->fields == NULL) {
        ptc_mux_free(mux);
        return NULL;
    }
    return mux;
}

void ptc_mux_free(ptc_mux_t *mux)
{
    if (mux == NULL) {
        return;
    }
    for (size_t i = 0; mux->slots != NULL && i < mux->slot_cap; i++) {
        free(mux->slots[i]);
    }
    free(mux->slots);
    free(mux->in_buf);
    free(mux->out_buf);
    free(mux->evq);
    free(mux->fields);
    free(mux);
}

ptc_mux_role_t ptc_mux_role(const ptc_mux_t *mux)
{
    return mux->role;
}

int ptc_mux_set_peer_limits(ptc_mux_t *mux, const ptc_mux_limits_t *peer)
{
    if (mux->closed) {
        return PTC_PROTO_ECLOSED;
    }
    if (ptc_mux_limits_check(peer) != 0) {
        return PTC_PROTO_ELIMIT;
    }
    int64_t dstream = (int64_t)peer->initial_stream_window - mux->peer.initial_stream_window;
    int64_t dtunnel = (int64_t)peer->initial_tunnel_window - mux->peer.initial_tunnel_window;
    /* A window pushed past 2^31-1 is a tunnel FLOW_CONTROL_ERROR (§7.2 rule 2). */
    if (mux->send_window + dtunnel > (int64_t)PTC_WINDOW_MAX) {
        return fail_tunnel(mux, PTC_PROTO_EFLOW);
    }
    for (struct ptc_mux_stream *s = mux->open_head; s != NULL; s = s->next) {
        if (s->send_window + dstream > (int64_t)PTC_WINDOW_MAX) {
            return fail_tunnel(mux, PTC_PROTO_EFLOW);
        }
    }
    mux->peer = *peer;
    mux->send_window += dtunnel;
    if (mux->tunnel_stalled && mux->send_window > 0) {
        mux->tunnel_stalled = false;
        struct ptc_mux_evrec r = {.type = PTC_MUX_EV_WRITABLE};
        if (ptc_mux_stream_push_event(mux, &r) != 0) {
            return PTC_PROTO_ENOMEM;
        }
    }
    for (struct ptc_mux_stream *s = mux->open_head; s != NULL; s = s->next) {
        s->send_window += dstream;
        if (s->stalled && s->send_window > 0) {
            s->stalled = false;
            if (ptc_mux_stream_event(mux, PTC_MUX_EV_WRITABLE, s, 0, false) != 0) {
                return PTC_PROTO_ENOMEM;
            }
        }
    }
    return 0;
}

const ptc_mux_limits_t *ptc_mux_local_limits(const ptc_mux_t *mux)
{
    return &mux->local;
}

const ptc_mux_limits_t *ptc_mux_peer_limits(const ptc_mux_t *mux)
{
    return &mux->peer;
}

/* ---- input and events ---- */

/*
 * Drops input bytes nobody needs any more: those before the next frame, except the payloads
 * of events still queued (their pointers are made at pull time).
 */
static void compact_input(ptc_mux_t *mux)
{
    uint64_t keep = mux->parse_pos;
    for (size_t i = mux->ev_head; i < mux->ev_cnt; i++) {
        if (mux->evq[i].has_payload) {
            keep = min_u64(keep, mux->evq[i].pos);
            break; /* payload positions grow along the queue */
        }
    }
    size_t drop = (size_t)(keep - mux->in_base);
    if (drop == 0) {
        return;
    }
    memmove(mux->in_buf, mux->in_buf + drop, mux->in_len - drop);
    mux->in_len -= drop;
    mux->in_base = keep;
    if (mux->in_len == 0 && mux->in_cap > SHRINK_ABOVE) {
        free(mux->in_buf);
        mux->in_buf = NULL;
        mux->in_cap = 0;
    }
}

static int append_input(ptc_mux_t *mux, const uint8_t *p, size_t len)
{
    if (mux->in_cap - mux->in_len < len) {
        size_t cap = mux->in_cap != 0 ? mux->in_cap : 4096;
        while (cap - mux->in_len < len) {
            if (cap > SIZE_MAX / 2) {
                return PTC_PROTO_ENOMEM;
            }
            cap *= 2;
        }
        uint8_t *b = realloc(mux->in_buf, cap);
        if (b == NULL) {
            return PTC_PROTO_ENOMEM;
        }
        mux->in_buf = b;
        mux->in_cap = cap;
    }
    if (len > 0) {
        memcpy(mux->in_buf + mux->in_len, p, len);
        mux->in_len += len;
    }
    return 0;
}

void ptc_mux_trim(ptc_mux_t *mux)
{
    if (mux->ev_head == mux->ev_cnt) {
        compact_input(mux);
        if (mux->in_len == 0) {
            free(mux->in_buf);
            mux->in_buf = NULL;
            mux->in_cap = 0;
        }
        free(mux->evq);
        mux->evq = NULL;
        mux->ev_cap = 0;
        mux->ev_head = 0;
        mux->ev_cnt = 0;
    }
    /* A table grown by a burst of streams goes back to its first size once empty. */
    if (mux->slot_cnt == 0 && mux->slot_cap > MUX_FIRST_SLOTS) {
        struct ptc_mux_stream **slots = calloc(MUX_FIRST_SLOTS, sizeof(*slots));
        if (slots != NULL) {
            free(mux->slots);
            mux->slots = slots;
            mux->slot_cap = MUX_FIRST_SLOTS;
        }
    }
    if (mux->out_len == 0) {
        free(mux->out_buf);
        mux->out_buf = NULL;
        mux->out_cap = 0;
        mux->out_off = 0;
        mux->out_frame = 0;
    }
}

int ptc_mux_feed(ptc_mux_t *mux, const uint8_t *p, size_t len, uint64_t now_ms)
{
    if (mux->closed) {
        return PTC_PROTO_ECLOSED;
    }
    mux->now_ms = now_ms;
    mux->stats.bytes_in += len;
    compact_input(mux);
    int rc = append_input(mux, p, len);
    if (rc != 0) {
        return fail_tunnel(mux, rc);
    }
    while (!mux->closed) {
        size_t off = (size_t)(mux->parse_pos - mux->in_base);
        if (mux->in_len - off < PTC_FRAME_HEADER_LEN) {
            break; /* not even a header (and in_buf may still be NULL) */
        }
        ptc_frame_t f;
        ssize_t n = ptc_frame_decode(mux->in_buf + off, mux->in_len - off, &mux->frame_limits, &f);
        if (n == PTC_PROTO_EINCOMPLETE) {
            break;
        }
        if (n < 0) {
            return fail_tunnel(mux, (int)n);
        }
        uint64_t payload_pos = mux->parse_pos + PTC_FRAME_HEADER_LEN;
        mux->parse_pos += (uint64_t)n;
        mux->stats.frames_in++;
        /* Liveness counts complete frames, of any type (§10 rule 1). */
        mux->last_recv_ms = now_ms > mux->last_recv_ms ? now_ms : mux->last_recv_ms;
        if (f.is_unknown) {
            continue;
        }
        rc = on_frame(mux, &f, payload_pos);
        if (rc != 0) {
            return fail_tunnel(mux, rc);
        }
    }
    return 0;
}

bool ptc_mux_next_event(ptc_mux_t *mux, ptc_mux_event_t *ev)
{
    while (mux->ev_head < mux->ev_cnt) {
        struct ptc_mux_evrec r = mux->evq[mux->ev_head++];
        struct ptc_mux_stream *s = r.s;
        if (s != NULL) {
            assert(s->pending > 0);
            s->pending--;
            /* A stream the application reset hears nothing more; a WRITABLE for a stream that
             * ended since is moot. */
            bool moot = r.type == PTC_MUX_EV_WRITABLE && s->state == PTC_MUX_STREAM_CLOSED;
            if (s->dropped || moot) {
                /* The application never sees these bytes: return their tunnel credit. */
                if (r.type == PTC_MUX_EV_DATA) {
                    (void)credit_tunnel(mux, r.len);
                }
                ptc_mux_stream_release(mux, s);
                continue;
            }
        }
        memset(ev, 0, sizeof(*ev));
        ev->type = r.type;
        ev->stream_id = r.stream_id;
        ev->user = s != NULL ? s->user : NULL;
        ev->end_stream = r.end_stream;
        ev->is_local = r.is_local;
        ev->code = r.code;
        ev->last_stream = r.last_stream;
        ev->err = r.err;
        ev->rtt_ms = r.rtt_ms;
        if (r.has_payload && r.len > 0) {
            assert(r.pos >= mux->in_base && r.pos + r.len <= mux->in_base + mux->in_len);
            ev->data = mux->in_buf + (size_t)(r.pos - mux->in_base);
            ev->len = r.len;
        }
        if (r.type == PTC_MUX_EV_REQUEST || r.type == PTC_MUX_EV_RESPONSE) {
            /* Validated when it arrived, with the same (only growing) scratch array. */
            int rc = decode_head(mux, r.type == PTC_MUX_EV_REQUEST, ev->data, ev->len, ev);
            assert(rc == 0);
            (void)rc;
            ev->data = NULL;
            ev->len = 0;
        }
        if (r.type == PTC_MUX_EV_DATA) {
            s->recv_held += r.len;
            mux->recv_held += r.len;
        }
        if (s != NULL) {
            ptc_mux_stream_release(mux, s);
        }
        if (mux->ev_head == mux->ev_cnt) {
            mux->ev_head = 0;
            mux->ev_cnt = 0;
        }
        return true;
    }
    mux->ev_head = 0;
    mux->ev_cnt = 0;
    return false;
}

size_t ptc_mux_pending_events(const ptc_mux_t *mux)
{
    return mux->ev_cnt - mux->ev_head;
}

/* ---- output ---- */

/*
 * The bytes that go out next: the rest of a frame already written in part, then the PING
 * answers, then everything else. *urgent says which buffer they are in.
 */
static const uint8_t *out_next(const ptc_mux_t *mux, size_t *len, bool *urgent)
{
    size_t urg = mux->urg_len - mux->urg_off;
    *urgent = urg > 0 && mux->out_frame == mux->out_off;
    if (*urgent) {
        *len = urg;
        return mux->urg_buf + mux->urg_off;
    }
    *len = (urg > 0 ? mux->out_frame : mux->out_len) - mux->out_off;
    return *len != 0 ? mux->out_buf + mux->out_off : NULL;
}

const uint8_t *ptc_mux_output(const ptc_mux_t *mux, size_t *len)
{
    bool urgent;
    return out_next(mux, len, &urgent);
}

void ptc_mux_output_consume(ptc_mux_t *mux, size_t n)
{
    bool urgent;
    size_t len;
    (void)out_next(mux, &len, &urgent);
    assert(n <= len);
    if (urgent) {
        mux->urg_off += n;
        if (mux->urg_off == mux->urg_len) {
            mux->urg_off = 0;
            mux->urg_len = 0;
        }
        return;
    }
    mux->out_off += n;
    /* Walk the frame headers to the next boundary: every frame was queued whole. */
    while (mux->out_frame < mux->out_off) {
        const uint8_t *h = mux->out_buf + mux->out_frame;
        size_t flen = (size_t)h[0] << 16 | (size_t)h[1] << 8 | (size_t)h[2];
        mux->out_frame += PTC_FRAME_HEADER_LEN + flen;
    }
    if (mux->out_off == mux->out_len) {
        assert(mux->out_frame == mux->out_len);
        mux->out_off = 0;
        mux->out_len = 0;
        mux->out_frame = 0;
        if (mux->out_cap > SHRINK_ABOVE) {
            free(mux->out_buf);
            mux->out_buf = NULL;
            mux->out_cap = 0;
        }
    }
}

size_t ptc_mux_take_output(ptc_mux_t *mux, uint8_t *dst, size_t cap)
{
    size_t done = 0;
    while (done < cap) {
        size_t len;
        const uint8_t *p = ptc_mux_output(mux, &len);
        if (len == 0) {
            break;
        }
        size_t n = len < cap - done ? len : cap - done;
        memcpy(dst + done, p, n);
        ptc_mux_output_consume(mux, n);
        done += n;
    }
    return done;
}

size_t ptc_mux_output_pending(const ptc_mux_t *mux)
{
    return mux->out_len - mux->out_off + mux->urg_len - mux->urg_off;
}

uint32_t ptc_mux_streams_open(const ptc_mux_t *mux)
{
    return mux->n_open;
}

/* ---- sending ---- */

int ptc_mux_open_stream(ptc_mux_t *mux, const ptc_request_head_t *head, bool end, uint32_t *id)
{
    if (mux->role != PTC_MUX_EDGE) {
        return PTC_PROTO_ESTATE;
    }
    if (mux->closed || mux->goaway_sent || mux->goaway_received) {
        return PTC_PROTO_ECLOSED;
    }
    if (mux->n_open >= mux->peer.max_streams || mux->highest_id >= PTC_STREAM_ID_MAX) {
        return PTC_PROTO_ELIMIT;
    }
    size_t size = ptc_hblock_request_size(head);
    if (size > mux->peer.max_header_block) {
        return PTC_PROTO_ELIMIT;
    }
    if (ptc_mux_stream_reserve(mux) != 0) {
        return PTC_PROTO_ENOMEM;
    }
    uint8_t *p = out_reserve(mux, PTC_FRAME_HEADER_LEN + size);
    if (p == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    ssize_t n = ptc_hblock_encode_request(head, p + PTC_FRAME_HEADER_LEN, size);
    if (n < 0) {
        return (int)n;
    }
    assert((size_t)n == size);
    uint32_t sid = mux->highest_id + 1;
    ptc_frame_header_t hdr = {.length = (uint32_t)size,
                              .type = PTC_FRAME_REQUEST,
                              .flags = end ? PTC_FLAG_END_STREAM : 0,
                              .stream = sid};
    n = ptc_frame_encode_header(p, PTC_FRAME_HEADER_LEN, &hdr);
    assert(n == PTC_FRAME_HEADER_LEN);
    struct ptc_mux_stream *s = ptc_mux_stream_new(mux, sid);
    if (s == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    out_commit(mux, PTC_FRAME_HEADER_LEN + size, 1);
    mux->highest_id = sid;
    if (end) {
        ptc_mux_stream_end_local(mux, s);
    }
    *id = sid;
    return 0;
}

int ptc_mux_respond(ptc_mux_t *mux, uint32_t id, const ptc_response_head_t *head, bool end)
{
    if (mux->role != PTC_MUX_CONNECTOR) {
        return PTC_PROTO_ESTATE;
    }
    if (mux->closed) {
        return PTC_PROTO_ECLOSED;
    }
    struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    if (s == NULL) {
        return PTC_PROTO_ENOSTREAM;
    }
    if (s->responded || s->state == PTC_MUX_STREAM_HALF_CLOSED_LOCAL ||
        s->state == PTC_MUX_STREAM_CLOSED) {
        return PTC_PROTO_ESTATE;
    }
    size_t size = ptc_hblock_response_size(head);
    if (size > mux->peer.max_header_block) {
        return PTC_PROTO_ELIMIT;
    }
    uint8_t *p = out_reserve(mux, PTC_FRAME_HEADER_LEN + size);
    if (p == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    ssize_t n = ptc_hblock_encode_response(head, p + PTC_FRAME_HEADER_LEN, size);
    if (n < 0) {
        return (int)n;
    }
    assert((size_t)n == size);
    ptc_frame_header_t hdr = {.length = (uint32_t)size,
                              .type = PTC_FRAME_RESPONSE,
                              .flags = end ? PTC_FLAG_END_STREAM : 0,
                              .stream = id};
    n = ptc_frame_encode_header(p, PTC_FRAME_HEADER_LEN, &hdr);
    assert(n == PTC_FRAME_HEADER_LEN);
    out_commit(mux, PTC_FRAME_HEADER_LEN + size, 1);
    s->responded = true;
    if (end) {
        ptc_mux_stream_end_local(mux, s);
    }
    return 0;
}

/* Can s carry DATA from us now? */
static bool can_send_data(const ptc_mux_t *mux, const struct ptc_mux_stream *s)
{
    if (s->state != PTC_MUX_STREAM_OPEN && s->state != PTC_MUX_STREAM_HALF_CLOSED_REMOTE) {
        return false;
    }
    return mux->role == PTC_MUX_EDGE || s->responded;
}

static uint64_t send_window_of(const ptc_mux_t *mux, const struct ptc_mux_stream *s)
{
    int64_t w = s->send_window < mux->send_window ? s->send_window : mux->send_window;
    return w > 0 ? (uint64_t)w : 0;
}

ssize_t ptc_mux_send_data(ptc_mux_t *mux, uint32_t id, const uint8_t *p, size_t len, bool end)
{
    if (mux->closed) {
        return PTC_PROTO_ECLOSED;
    }
    struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    if (s == NULL) {
        return PTC_PROTO_ENOSTREAM;
    }
    if (!can_send_data(mux, s)) {
        return PTC_PROTO_ESTATE;
    }
    size_t n = (size_t)min_u64(len, send_window_of(mux, s));
    bool fin = end && n == len;
    if (n == 0 && !fin) {
        if (len > 0) {
            s->stalled = s->send_window <= 0;
            mux->tunnel_stalled = mux->tunnel_stalled || mux->send_window <= 0;
        }
        return 0;
    }
    size_t max = mux->peer.max_frame_size;
    size_t frames = n == 0 ? 1 : (n + max - 1) / max;
    uint8_t *out = out_reserve(mux, n + frames * PTC_FRAME_HEADER_LEN);
    if (out == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    size_t done = 0;
    size_t written = 0;
    for (size_t i = 0; i < frames; i++) {
        size_t chunk = n - done < max ? n - done : max;
        uint8_t flags = fin && i + 1 == frames ? PTC_FLAG_END_STREAM : 0;
        const uint8_t *src = chunk > 0 ? p + done : NULL; /* p may be NULL for an empty end */
        ssize_t w = ptc_frame_encode_data(out + written, chunk + PTC_FRAME_HEADER_LEN, id, flags,
                                          src, chunk);
        assert(w == (ssize_t)(chunk + PTC_FRAME_HEADER_LEN));
        written += (size_t)w;
        done += chunk;
    }
    out_commit(mux, written, frames);
    s->send_window -= (int64_t)n;
    mux->send_window -= (int64_t)n;
    mux->stats.data_out += n;
    if (n < len) {
        /* Stalled: remember which window stopped us, to report WRITABLE when it reopens. */
        s->stalled = s->send_window <= 0;
        mux->tunnel_stalled = mux->tunnel_stalled || mux->send_window <= 0;
    }
    if (fin) {
        ptc_mux_stream_end_local(mux, s);
    }
    return (ssize_t)n;
}

size_t ptc_mux_send_window(const ptc_mux_t *mux, uint32_t id)
{
    const struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    if (mux->closed || s == NULL || !can_send_data(mux, s)) {
        return 0;
    }
    return (size_t)send_window_of(mux, s);
}

int ptc_mux_reset(ptc_mux_t *mux, uint32_t id, uint32_t code)
{
    struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    if (s == NULL) {
        return PTC_PROTO_ENOSTREAM;
    }
    int rc = 0;
    s->dropped = true;
    if (s->state != PTC_MUX_STREAM_CLOSED) {
        rc = mux->closed ? PTC_PROTO_ECLOSED : emit_reset(mux, id, code);
        ptc_mux_stream_set_state(mux, s, PTC_MUX_STREAM_CLOSED);
    } else {
        ptc_mux_stream_release(mux, s);
    }
    return rc;
}

int ptc_mux_ping(ptc_mux_t *mux, uint64_t now_ms)
{
    if (mux->closed) {
        return PTC_PROTO_ECLOSED;
    }
    uint8_t data[PTC_FRAME_PING_LEN];
    for (int i = 0; i < PTC_FRAME_PING_LEN; i++) {
        data[i] = (uint8_t)(now_ms >> (56 - 8 * i));
    }
    int rc = emit_ping(mux, data);
    if (rc != 0) {
        return rc;
    }
    memcpy(mux->ping_data, data, sizeof(data));
    mux->ping_outstanding = true;
    mux->ping_sent_ms = now_ms;
    mux->last_ping_ms = now_ms;
    return 0;
}

int ptc_mux_goaway(ptc_mux_t *mux, uint32_t code, const uint8_t *debug, size_t debug_len)
{
    if (mux->closed) {
        return PTC_PROTO_ECLOSED;
    }
    if (debug_len > PTC_FRAME_GOAWAY_DEBUG_MAX) {
        return PTC_PROTO_EFRAME_SIZE;
    }
    uint32_t last = goaway_last_id(mux);
    int rc = emit_goaway(mux, last, code, debug, debug_len);
    if (rc != 0) {
        return rc;
    }
    mux->goaway_sent = true;
    mux->goaway_sent_last = last;
    if (code != PTC_WIRE_NO_ERROR) {
        mux->closed = true;
        end_streams(mux, 0, false, code, true);
    }
    return 0;
}

int ptc_mux_send_control(ptc_mux_t *mux, const uint8_t *p, size_t len)
{
    if (mux->closed) {
        return PTC_PROTO_ECLOSED;
    }
    if (len > mux->peer.max_control_size) {
        return PTC_PROTO_ELIMIT;
    }
    uint8_t *out = out_reserve(mux, PTC_FRAME_HEADER_LEN + len);
    if (out == NULL) {
        return PTC_PROTO_ENOMEM;
    }
    ssize_t n = ptc_frame_encode_control(out, PTC_FRAME_HEADER_LEN + len, p, len);
    assert(n == (ssize_t)(PTC_FRAME_HEADER_LEN + len));
    out_commit(mux, (size_t)n, 1);
    return 0;
}

int ptc_mux_consumed(ptc_mux_t *mux, uint32_t id, size_t n)
{
    struct ptc_mux_stream *s = ptc_mux_stream_find(mux, id);
    if (s == NULL) {
        /* A forgotten stream needs no credit; an id never used is the caller's mistake. */
        return id != 0 && id <= mux->highest_id ? 0 : PTC_PROTO_ENOSTREAM;
    }
    if (n > s->recv_held) {
        return PTC_PROTO_EFLOW;
    }
    s->recv_held -= n;
    return credit_stream(mux, s, n);
}

int ptc_mux_tunnel_consumed(ptc_mux_t *mux, size_t n)
{
    if (n > mux->recv_held) {
        return PTC_PROTO_EFLOW;
    }
    mux->recv_held -= n;
    return credit_tunnel(mux, n);
}

/* ---- tunnel state ---- */

bool ptc_mux_can_open(const ptc_mux_t *mux)
{
    return mux->role == PTC_MUX_EDGE && !mux->closed && !mux->goaway_sent &&
           !mux->goaway_received && mux->n_open < mux->peer.max_streams &&
           mux->highest_id < PTC_STREAM_ID_MAX;
}

bool ptc_mux_goaway_sent(const ptc_mux_t *mux)
{
    return mux->goaway_sent;
}

bool ptc_mux_goaway_received(const ptc_mux_t *mux)
{
    return mux->goaway_received;
}

bool ptc_mux_is_closed(const ptc_mux_t *mux)
{
    return mux->closed;
}

/* ---- liveness ---- */

void ptc_mux_set_liveness(ptc_mux_t *mux, uint32_t ping_interval_ms, uint32_t idle_timeout_ms)
{
    mux->ping_interval_ms = ping_interval_ms;
    mux->idle_timeout_ms = idle_timeout_ms;
}

int ptc_mux_tick(ptc_mux_t *mux, uint64_t now_ms)
{
    if (mux->closed) {
        return PTC_PROTO_ECLOSED;
    }
    if (mux->idle_timeout_ms != 0 && elapsed(now_ms, mux->last_recv_ms) >= mux->idle_timeout_ms) {
        return fail_tunnel(mux, PTC_PROTO_ETIMEOUT);
    }
    uint64_t quiet_since =
        mux->last_recv_ms > mux->last_ping_ms ? mux->last_recv_ms : mux->last_ping_ms;
    if (mux->ping_interval_ms != 0 && elapsed(now_ms, quiet_since) >= mux->ping_interval_ms) {
        return ptc_mux_ping(mux, now_ms);
    }
    return 0;
}

uint64_t ptc_mux_next_tick(const ptc_mux_t *mux)
{
    uint64_t next = UINT64_MAX;
    if (mux->closed) {
        return next;
    }
    if (mux->idle_timeout_ms != 0) {
        next = min_u64(next, mux->last_recv_ms + mux->idle_timeout_ms);
    }
    if (mux->ping_interval_ms != 0) {
        uint64_t quiet_since =
            mux->last_recv_ms > mux->last_ping_ms ? mux->last_recv_ms : mux->last_ping_ms;
        next = min_u64(next, quiet_since + mux->ping_interval_ms);
    }
    return next;
}

/* ---- counters ---- */

void ptc_mux_stats(const ptc_mux_t *mux, ptc_mux_stats_t *out)
{
    *out = mux->stats;
    out->streams_open = mux->n_open;
    out->heap_bytes = mux->in_cap + mux->out_cap + mux->ev_cap * sizeof(*mux->evq) +
                      mux->slot_cap * sizeof(*mux->slots) + mux->fields_cap * sizeof(*mux->fields);
}
