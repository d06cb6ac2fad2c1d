/* SPDX-License-Identifier: MIT */
/*
 * Tunnel protocol v1 stream multiplexer (docs/protocol.md §6, §7, §9, §10): the stream table, the
 * per-stream state machine, flow-control accounting in both directions, the limits each side
 * announced, GOAWAY and PING/liveness. It is pull-style (STYLE §6), the shape of picotls'
 * ptls_handshake: the caller feeds the bytes it read with ptc_mux_feed(), pulls the resulting
 * events with ptc_mux_next_event(), and collects the bytes to write with ptc_mux_output() /
 * ptc_mux_output_consume(). Sending calls (open, respond, data, reset, ...) only append frames
 * to that output. Nothing here calls back into the caller, does I/O or reads a clock: the
 * caller passes the time (monotonic milliseconds) in. It uses the frame and header-block
 * codecs (proto/frame.h, proto/hblock.h) and libc, nothing else.
 *
 * Typical read path:
 *
 *     int rc = ptc_mux_feed(mux, p, len, now_ms);   // rc < 0: tunnel failed, see below
 *     ptc_mux_event_t ev;
 *     while (ptc_mux_next_event(mux, &ev)) { ...handle ev... }
 *     size_t n; const uint8_t *out = ptc_mux_output(mux, &n);  // write out[0..n), then
 *     ptc_mux_output_consume(mux, written);
 *
 * Streams are named by their id (1..2^31-1); only the edge opens them. A stream stays
 * known to the mux until both halves have ended (END_STREAM each way) or it was reset, and
 * until every event queued for it was pulled; then it is forgotten and later frames for it
 * are ignored (docs/protocol.md §6.3). Lookup is a hash table: cost is flat in the number of
 * streams.
 *
 * The mux does not read CONTROL documents, so the handshake phase (§6.4, §11) is the daemons'
 * part: the edge opens no stream before it has sent the welcome, the connector treats a REQUEST
 * pulled before the welcome as a tunnel error, and a bad document ends the tunnel with
 * ptc_mux_goaway(PTC_WIRE_PROTOCOL_ERROR, "...").
 */
#ifndef PTC_PROTO_MUX_H
#define PTC_PROTO_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/hblock.h"
#include "proto/proto.h"

typedef struct ptc_mux ptc_mux_t;

/** Which end of the tunnel this mux is. Only the edge opens streams. */
typedef enum ptc_mux_role {
    PTC_MUX_EDGE = 0,
    PTC_MUX_CONNECTOR = 1,
} ptc_mux_role_t;

/**
 * Limits one side announces for what it receives (docs/protocol.md §7.6). The local limits are
 * enforced on input from ptc_mux_new() on; the peer's limits (the defaults until the
 * handshake, then ptc_mux_set_peer_limits()) bound what this mux sends.
 */
typedef struct ptc_mux_limits {
    uint32_t max_frame_size;        /* DATA payload (and unknown frame types) */
    uint32_t max_header_block;      /* REQUEST / RESPONSE payload */
    uint32_t max_control_size;      /* CONTROL payload */
    uint32_t max_streams;           /* concurrent streams the receiver accepts */
    uint32_t initial_stream_window; /* each stream's receive window at its start */
    uint32_t initial_tunnel_window; /* the tunnel's receive window at its start */
} ptc_mux_limits_t;

/** The PTC_DEFAULT_* limits, for a ptc_mux_limits_t initializer. */
#define PTC_MUX_LIMITS_DEFAULT                                                                     \
    {                                                                                              \
        PTC_DEFAULT_MAX_FRAME_SIZE, PTC_DEFAULT_MAX_HEADER_BLOCK, PTC_DEFAULT_MAX_CONTROL_SIZE,    \
            PTC_DEFAULT_MAX_STREAMS, PTC_DEFAULT_STREAM_WINDOW, PTC_DEFAULT_TUNNEL_WINDOW          \
    }

/**
 * Checks a limits set against the ranges docs/protocol.md §7.6 allows (frame and block sizes
 * within PTC_MUX_MIN_* .. PTC_FRAME_LEN_MAX, max_streams and windows 1..2^31-1).
 * Returns 0 or PTC_PROTO_ELIMIT. The daemons run it on the peer's announced limits.
 */
int ptc_mux_limits_check(const ptc_mux_limits_t *lim);

/** The smallest max_frame_size a side may announce. */
#define PTC_MUX_MIN_FRAME_SIZE 1024u
/** The smallest max_header_block a side may announce. */
#define PTC_MUX_MIN_HEADER_BLOCK 4096u
/** The smallest max_control_size a side may announce. */
#define PTC_MUX_MIN_CONTROL_SIZE 4096u

/**
 * PING answers waiting to be written, at most (docs/protocol.md §10 rule 4): a peer that
 * sends more PINGs while not reading our output gets a tunnel PROTOCOL_ERROR.
 */
#define PTC_MUX_MAX_PING_ACKS 64

/* ---- lifecycle ---- */

/**
 * Creates a mux for one tunnel. local: the limits this side announces (and enforces on what
 * it receives); NULL means the defaults. now_ms starts the liveness clock. Ping interval and
 * idle timeout start at PTC_DEFAULT_PING_INTERVAL_MS / PTC_DEFAULT_IDLE_TIMEOUT_MS.
 * Returns NULL when local fails ptc_mux_limits_check() or memory runs out.
 * The caller frees it with ptc_mux_free().
 */
ptc_mux_t *ptc_mux_new(ptc_mux_role_t role, const ptc_mux_limits_t *local, uint64_t now_ms);

/** Frees the mux, its streams and its buffers. Pending output is dropped. NULL is fine. */
void ptc_mux_free(ptc_mux_t *mux);

/** This mux's role. */
ptc_mux_role_t ptc_mux_role(const ptc_mux_t *mux);

/**
 * Applies the limits the peer announced in the handshake (validated with
 * ptc_mux_limits_check(), else PTC_PROTO_ELIMIT and nothing changes). The send windows are
 * re-based by the difference between the new and the previous initial windows (as RFC 9113
 * §6.9.2 does for SETTINGS_INITIAL_WINDOW_SIZE), so credit already granted by WINDOW frames
 * is kept (docs/protocol.md §7.2 rule 2). A window pushed past 2^31-1 is a tunnel
 * FLOW_CONTROL_ERROR: the tunnel fails as in ptc_mux_feed() and PTC_PROTO_EFLOW is returned.
 * A window that opens from zero queues a WRITABLE event. Called once the peer's handshake
 * document is in (streams the connector decoded before it are re-based too).
 * PTC_PROTO_ECLOSED once the tunnel is closed.
 */
int ptc_mux_set_peer_limits(ptc_mux_t *mux, const ptc_mux_limits_t *peer);

/** The limits in force: this side's (local) or the peer's (as last set, else the defaults). */
const ptc_mux_limits_t *ptc_mux_local_limits(const ptc_mux_t *mux);
const ptc_mux_limits_t *ptc_mux_peer_limits(const ptc_mux_t *mux);

/* ---- input and events ---- */

/**
 * Feeds len bytes read from the tunnel. The bytes are copied: p may be reused at once. Every
 * complete frame is decoded and applied, and its events are queued; a partial frame waits
 * for more input (at most the largest frame the local limits allow is buffered: longer
 * lengths are refused as soon as the 9-byte header is in). PINGs are answered (ahead of
 * the output already queued, at its next frame boundary) and WINDOW updates queued. Each
 * complete frame counts as a sign of life (§10 rule 1).
 *
 * Returns 0, or on a tunnel error (docs/protocol.md §1, §3.5: a frame or sequence the spec makes a
 * tunnel error) the proto error (PTC_PROTO_EPROTOCOL, PTC_PROTO_EFRAME_SIZE, PTC_PROTO_EFLOW,
 * PTC_PROTO_ENOMEM): then GOAWAY(code) is queued on the output, every stream still known gets
 * a RESET event (or REFUSED), an ERROR event ends the queue, and the mux is closed: the caller
 * writes the pending output and closes the connection. Once the tunnel is closed (error,
 * timeout, GOAWAY with an error code sent or received) feeding returns PTC_PROTO_ECLOSED and
 * does nothing. Events queued before the error are still delivered.
 */
int ptc_mux_feed(ptc_mux_t *mux, const uint8_t *p, size_t len, uint64_t now_ms);

typedef enum ptc_mux_event_type {
    /** Connector: the edge opened stream_id; request is the head, end_stream = no body. */
    PTC_MUX_EV_REQUEST = 1,
    /** Edge: the RESPONSE head of stream_id; end_stream = no body. */
    PTC_MUX_EV_RESPONSE,
    /**
     * data[0..len) of stream_id's body (len may be 0 when end_stream). The bytes count
     * against both receive windows until the caller returns them with ptc_mux_consumed()
     * and ptc_mux_tunnel_consumed(). Every DATA event's len must go back to the tunnel with
     * ptc_mux_tunnel_consumed(), whatever becomes of the stream afterwards.
     */
    PTC_MUX_EV_DATA,
    /**
     * stream_id was reset with code: by the peer (is_local false), by this mux because the
     * peer broke a stream rule (is_local true; the RESET was sent), or because the tunnel
     * ended (is_local true, code = the tunnel's error). The stream is gone. A code this
     * version does not know means INTERNAL_ERROR (§8); it is passed on as received.
     */
    PTC_MUX_EV_RESET,
    /**
     * Edge: stream_id was never processed by the connector (above the last_stream of its
     * GOAWAY, or RESET(REFUSED_STREAM)): the request may be retried on another tunnel. The
     * stream is gone.
     */
    PTC_MUX_EV_REFUSED,
    /**
     * A send window opened after ptc_mux_send_data() was stalled by it: stream_id's window
     * (stream_id != 0), or the tunnel's (stream_id == 0: retry every stalled stream).
     */
    PTC_MUX_EV_WRITABLE,
    /** The answer to our ptc_mux_ping(): rtt_ms is the round trip. */
    PTC_MUX_EV_PING_ACK,
    /**
     * The peer sent GOAWAY(last_stream, code) with debug text data[0..len) (not validated as
     * UTF-8). No new stream can be opened. REFUSED events for our streams above last_stream
     * follow. With a code other than NO_ERROR the tunnel is closed: the other streams get
     * RESET events (code = the GOAWAY's code).
     */
    PTC_MUX_EV_GOAWAY,
    /** A CONTROL frame: data[0..len) is one JSON document (opaque here). */
    PTC_MUX_EV_CONTROL,
    /**
     * The tunnel failed here (the last event): err is the proto error
     * (PTC_PROTO_EPROTOCOL, PTC_PROTO_ETIMEOUT, ...), code the wire code sent in GOAWAY.
     */
    PTC_MUX_EV_ERROR,
} ptc_mux_event_type_t;

/**
 * One event. Pointers (data, the heads' strings and header arrays) are borrowed from the mux
 * and stay valid until the next call to ptc_mux_next_event(), ptc_mux_feed() or
 * ptc_mux_free(): copy what must live longer.
 */
typedef struct ptc_mux_event {
    ptc_mux_event_type_t type;
    uint32_t stream_id;   /* 0 for tunnel events */
    void *user;           /* the stream's user pointer (ptc_mux_set_user()) when it was pulled */
    bool end_stream;      /* REQUEST, RESPONSE, DATA: the peer's half ended */
    bool is_local;        /* RESET: generated by this side rather than received */
    uint32_t code;        /* RESET, REFUSED, GOAWAY, ERROR: a wire error code */
    uint32_t last_stream; /* GOAWAY */
    int err;              /* ERROR: a PTC_PROTO_E* code */
    const uint8_t *data;  /* DATA, CONTROL, GOAWAY (debug text) */
    size_t len;           /* bytes at data */
    uint64_t rtt_ms;      /* PING_ACK */
    ptc_request_head_t request;   /* REQUEST */
    ptc_response_head_t response; /* RESPONSE */
} ptc_mux_event_t;

/**
 * Pulls the next queued event into *ev. Returns false when none is left. Events of a stream
 * the caller reset (ptc_mux_reset()) are dropped, not delivered; so after the reset the
 * caller hears nothing more of that stream. The previous event's pointers become invalid.
 */
bool ptc_mux_next_event(ptc_mux_t *mux, ptc_mux_event_t *ev);

/** The number of events waiting to be pulled. */
size_t ptc_mux_pending_events(const ptc_mux_t *mux);

/* ---- output ---- */

/**
 * The next contiguous bytes to write (*len of them at the returned pointer; NULL and 0 when
 * nothing waits). This may be less than ptc_mux_output_pending(): PING answers jump ahead of
 * the queue at a frame boundary, so write, consume, and call again until *len is 0.
 * Borrowed: valid until the next call that changes the mux, so a caller that writes
 * asynchronously copies the bytes out (ptc_mux_take_output()).
 */
const uint8_t *ptc_mux_output(const ptc_mux_t *mux, size_t *len);

/**
 * Drops the first n bytes of what ptc_mux_output() returned (they were written). It must
 * follow that ptc_mux_output() call with no other call that changes the mux in between.
 */
void ptc_mux_output_consume(ptc_mux_t *mux, size_t n);

/** Copies up to cap pending bytes into dst, in order, and consumes them. Returns the count. */
size_t ptc_mux_take_output(ptc_mux_t *mux, uint8_t *dst, size_t cap);

/**
 * The output backlog in bytes. The mux never refuses to queue (answers to PINGs, WINDOW
 * updates; only unread PING answers are bounded): the caller applies back-pressure, stopping
 * producers (and its reads from the tunnel) while this is above its high-water mark.
 */
size_t ptc_mux_output_pending(const ptc_mux_t *mux);

/** Streams open now (not closed): ptc_mux_stats()'s streams_open, without the copy. */
uint32_t ptc_mux_streams_open(const ptc_mux_t *mux);

/* ---- sending ---- */

/**
 * Edge: opens a new stream with a REQUEST frame (END_STREAM when end: no body) and returns
 * its id in *id. Errors (nothing sent): PTC_PROTO_ESTATE (connector role),
 * PTC_PROTO_ECLOSED (GOAWAY sent or received, or the tunnel closed), PTC_PROTO_ELIMIT (the
 * peer's max_streams are in use, the encoded head is over its max_header_block, or the
 * stream ids are exhausted: use another tunnel), PTC_PROTO_EHEADER (the head breaks the
 * rules of proto/hblock.h), PTC_PROTO_ENOMEM.
 */
int ptc_mux_open_stream(ptc_mux_t *mux, const ptc_request_head_t *head, bool end, uint32_t *id);

/**
 * Connector: sends the RESPONSE head of stream id (END_STREAM when end), once, before any
 * DATA. Errors: PTC_PROTO_ESTATE (edge role, already responded, our half already ended),
 * PTC_PROTO_ENOSTREAM, PTC_PROTO_ECLOSED, PTC_PROTO_ELIMIT (head over the peer's
 * max_header_block), PTC_PROTO_EHEADER.
 */
int ptc_mux_respond(ptc_mux_t *mux, uint32_t id, const ptc_response_head_t *head, bool end);

/**
 * Sends up to len bytes of p on stream id as DATA frames of at most the peer's
 * max_frame_size. Returns the bytes accepted: min(len, the stream's send window, the
 * tunnel's send window); 0 when a window is exhausted (the stream is marked stalled and a
 * WRITABLE event follows when credit arrives). END_STREAM is sent only when end and all of
 * len was accepted (len 0 with end sends an empty DATA with END_STREAM whatever the windows).
 * Errors: PTC_PROTO_ENOSTREAM, PTC_PROTO_ESTATE (our half ended, or the connector has not
 * responded yet), PTC_PROTO_ECLOSED.
 */
ssize_t ptc_mux_send_data(ptc_mux_t *mux, uint32_t id, const uint8_t *p, size_t len, bool end);

/**
 * What ptc_mux_send_data() would accept on stream id now: min(stream window, tunnel window),
 * 0 when stalled or the stream cannot send.
 */
size_t ptc_mux_send_window(const ptc_mux_t *mux, uint32_t id);

/**
 * Resets stream id with a wire code (RESET frame) and forgets it: its queued events are
 * dropped and later frames for it are ignored. Resetting a stream that already ended (but
 * still had events queued) sends nothing and just drops them. Errors: PTC_PROTO_ENOSTREAM,
 * PTC_PROTO_ECLOSED (the stream is forgotten all the same).
 */
int ptc_mux_reset(ptc_mux_t *mux, uint32_t id, uint32_t code);

/**
 * Sends a PING carrying now_ms; the PING_ACK event reports the round trip. Errors:
 * PTC_PROTO_ECLOSED.
 */
int ptc_mux_ping(ptc_mux_t *mux, uint64_t now_ms);

/**
 * Sends GOAWAY(code) with debug[0..debug_len) (<= 1024 bytes, UTF-8, never a secret; else
 * PTC_PROTO_EFRAME_SIZE). last_stream is the highest stream id this side processed
 * (docs/protocol.md §9 rule 2). No stream may be opened afterwards. With NO_ERROR the streams
 * continue (drain); with another code the tunnel is closed: the streams get RESET events and
 * the caller writes the output and closes; this is also how the daemons end the tunnel on
 * an error they detect themselves (a bad handshake document, §11.8). Errors:
 * PTC_PROTO_ECLOSED.
 */
int ptc_mux_goaway(ptc_mux_t *mux, uint32_t code, const uint8_t *debug, size_t debug_len);

/**
 * Sends a CONTROL frame carrying p[0..len) (one JSON document). Errors: PTC_PROTO_ELIMIT
 * (over the peer's max_control_size), PTC_PROTO_ECLOSED.
 */
int ptc_mux_send_control(ptc_mux_t *mux, const uint8_t *p, size_t len);

/**
 * The application took n bytes of stream id's DATA out of the mux's accounting (it has
 * buffered or written them): the stream's receive window gets them back, in batches (a
 * WINDOW frame once half the initial window is owed). n may not exceed the DATA bytes
 * delivered and not yet consumed (PTC_PROTO_EFLOW). A stream that is gone or whose peer
 * half ended needs no credit: 0. Errors: PTC_PROTO_ENOSTREAM (unknown id), PTC_PROTO_EFLOW.
 */
int ptc_mux_consumed(ptc_mux_t *mux, uint32_t id, size_t n);

/**
 * The application moved n bytes of delivered DATA (any streams) out of the tunnel's
 * accounting: the tunnel's receive window gets them back in batches. The daemons call it as
 * soon as DATA sits in a stream's own buffer, so one slow stream never blocks the others.
 * n may not exceed the DATA bytes delivered and not yet returned (PTC_PROTO_EFLOW).
 * DATA this mux drops itself (for forgotten streams) is returned automatically.
 */
int ptc_mux_tunnel_consumed(ptc_mux_t *mux, size_t n);

/* ---- per-stream state ---- */

/** Attaches the caller's object to stream id (reported in events). PTC_PROTO_ENOSTREAM. */
int ptc_mux_set_user(ptc_mux_t *mux, uint32_t id, void *user);

/** The user pointer of stream id, NULL when unset or the stream is unknown. */
void *ptc_mux_get_user(const ptc_mux_t *mux, uint32_t id);

/** Stream states (docs/protocol.md §6.1); IDLE means unknown to the mux. */
typedef enum ptc_mux_stream_state {
    PTC_MUX_STREAM_IDLE = 0,
    PTC_MUX_STREAM_OPEN,
    PTC_MUX_STREAM_HALF_CLOSED_LOCAL,
    PTC_MUX_STREAM_HALF_CLOSED_REMOTE,
    PTC_MUX_STREAM_CLOSED, /* ended, but events for it are still queued */
} ptc_mux_stream_state_t;

/** The state of stream id (PTC_MUX_STREAM_IDLE when unknown or forgotten). */
ptc_mux_stream_state_t ptc_mux_stream_state(const ptc_mux_t *mux, uint32_t id);

/** A name for a stream state ("open", "half_closed_local", ...). */
const char *ptc_mux_stream_state_name(ptc_mux_stream_state_t st);

/* ---- tunnel state ---- */

/** Can a stream be opened now (edge role, no GOAWAY, not closed, below the peer's max)? */
bool ptc_mux_can_open(const ptc_mux_t *mux);

/** Has a GOAWAY been sent (goaway_sent) or received (goaway_received)? */
bool ptc_mux_goaway_sent(const ptc_mux_t *mux);
bool ptc_mux_goaway_received(const ptc_mux_t *mux);

/** Is the tunnel closed (error, timeout, GOAWAY with an error code either way)? */
bool ptc_mux_is_closed(const ptc_mux_t *mux);

/* ---- liveness ---- */

/**
 * Sets the liveness timers (from the welcome document, docs/protocol.md §10): a PING is sent
 * after ping_interval_ms without a complete frame received, and ptc_mux_tick() fails after
 * idle_timeout_ms without one. 0 disables either.
 */
void ptc_mux_set_liveness(ptc_mux_t *mux, uint32_t ping_interval_ms, uint32_t idle_timeout_ms);

/**
 * Runs the timers at now_ms: sends a PING when nothing was received for the ping interval
 * (and again every interval while silence lasts). When nothing was received for the idle
 * timeout, the tunnel fails as on a tunnel error: GOAWAY(TIMEOUT, "idle timeout") is queued,
 * the streams get RESET events (code TIMEOUT), an ERROR event follows, and
 * PTC_PROTO_ETIMEOUT is returned. Returns 0 otherwise, or
 * PTC_PROTO_ECLOSED when the tunnel is already closed.
 */
int ptc_mux_tick(ptc_mux_t *mux, uint64_t now_ms);

/** When ptc_mux_tick() next has work (absolute ms); UINT64_MAX when never. */
uint64_t ptc_mux_next_tick(const ptc_mux_t *mux);

/**
 * Frees the input and output buffers when they hold nothing the mux still needs: input once
 * every event was pulled (parsed frames are dropped, a partial frame keeps the buffer), output
 * once everything was written. For a tunnel going idle; the next bytes allocate again. Like
 * ptc_mux_next_event(), it ends the previous event's pointers.
 */
void ptc_mux_trim(ptc_mux_t *mux);

/* ---- counters ---- */

/** Counters for metrics. */
typedef struct ptc_mux_stats {
    uint64_t bytes_in;        /* bytes fed */
    uint64_t bytes_out;       /* bytes queued for output */
    uint64_t frames_in;       /* complete frames decoded */
    uint64_t frames_out;      /* frames queued */
    uint64_t data_in;         /* DATA payload bytes received */
    uint64_t data_out;        /* DATA payload bytes sent */
    uint64_t streams_total;   /* streams ever opened (either way) */
    uint64_t streams_reset;   /* RESET frames sent or received */
    uint64_t streams_refused; /* REFUSED events (edge) or refused REQUESTs (connector) */
    uint32_t streams_open;    /* streams open now (not closed) */
    size_t heap_bytes;        /* held now in the mux's buffers and tables (not its streams) */
} ptc_mux_stats_t;

/** Copies the counters into *out. */
void ptc_mux_stats(const ptc_mux_t *mux, ptc_mux_stats_t *out);

#endif
