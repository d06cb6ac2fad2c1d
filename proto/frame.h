/* SPDX-License-Identifier: MIT */
/*
 * Tunnel protocol v1 frame codec (docs/protocol.md §3): decodes one frame at a time from a
 * byte buffer and encodes frames into caller-provided buffers. It is pure: no I/O, no clock,
 * no allocation, nothing but libc. A decoded payload is a slice into the caller's input (no
 * copy), valid as long as that input is. The decoder checks everything that can be checked
 * on a single frame (length limits, stream kind, fixed sizes, the reserved bit, a zero WINDOW
 * increment); stream states and flow control belong to proto/mux.c. Header blocks inside
 * REQUEST/RESPONSE payloads are decoded by proto/hblock.h.
 *
 * Typical receive loop:
 *
 *     ptc_frame_t f;
 *     ssize_t n = ptc_frame_decode(p, len, &limits, &f);
 *     if (n == PTC_PROTO_EINCOMPLETE) -> wait for more bytes (nothing consumed)
 *     else if (n < 0)                 -> tunnel error: send GOAWAY(f.wire_error), close
 *     else if (f.is_unknown)          -> skip n bytes
 *     else if (f.stream_error != 0)   -> RESET(f.hdr.stream, f.stream_error), skip n bytes
 *     else                            -> handle f, skip n bytes
 */
#ifndef PTC_PROTO_FRAME_H
#define PTC_PROTO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/proto.h"

/** RESET payload: error:32. */
#define PTC_FRAME_RESET_LEN 4
/** WINDOW payload: R:1 increment:31. */
#define PTC_FRAME_WINDOW_LEN 4
/** PING payload: 8 opaque bytes. */
#define PTC_FRAME_PING_LEN 8
/** GOAWAY payload: R:1 last_stream:31, error:32, then the optional debug text. */
#define PTC_FRAME_GOAWAY_MIN_LEN 8
/** The longest GOAWAY debug text; a longer GOAWAY is a FRAME_SIZE_ERROR. */
#define PTC_FRAME_GOAWAY_DEBUG_MAX 1024
/** The largest WINDOW increment (31 bits). */
#define PTC_FRAME_WINDOW_INCREMENT_MAX 0x7FFFFFFFu

/** The 9-byte frame header, decoded: length:24 | type:8 | flags:8 | R:1 stream:31. */
typedef struct ptc_frame_header {
    uint32_t length; /* payload length, 0..PTC_FRAME_LEN_MAX */
    uint8_t type;    /* ptc_frame_type_t, or an unknown type */
    uint8_t flags;   /* PTC_FLAG_*; unknown flags are kept as received */
    uint32_t stream; /* stream id without the R bit (0..PTC_STREAM_ID_MAX) */
} ptc_frame_header_t;

/**
 * The receiver's payload limits (the values it announced in the handshake; until then the
 * PTC_DEFAULT_* values). A frame longer than its type's limit is a tunnel FRAME_SIZE_ERROR,
 * refused as soon as its 9-byte header is in. Frame types unknown to this version are held to
 * max_frame_size. Values above PTC_FRAME_LEN_MAX are the same as PTC_FRAME_LEN_MAX.
 */
typedef struct ptc_frame_limits {
    uint32_t max_frame_size;   /* DATA (and unknown types) */
    uint32_t max_header_block; /* REQUEST, RESPONSE */
    uint32_t max_control_size; /* CONTROL */
} ptc_frame_limits_t;

/** The PTC_DEFAULT_* limits, for a ptc_frame_limits_t initializer. */
#define PTC_FRAME_LIMITS_DEFAULT                                                                   \
    {                                                                                              \
        PTC_DEFAULT_MAX_FRAME_SIZE, PTC_DEFAULT_MAX_HEADER_BLOCK, PTC_DEFAULT_MAX_CONTROL_SIZE     \
    }

/**
 * One decoded frame. Filled by ptc_frame_decode(); the payload is borrowed from the decoder's
 * input and stays valid as long as those bytes are neither freed nor moved.
 */
typedef struct ptc_frame {
    /** The header. Also set when the decoder refuses a frame whose header was complete. */
    ptc_frame_header_t hdr;
    /** hdr.length payload bytes, pointing into the input just after the header (never NULL). */
    const uint8_t *payload;
    /** The type is above PTC_FRAME_TYPE_LAST: skip the frame (docs/protocol.md §3.4). */
    bool is_unknown;
    /**
     * Set only when the decoder returns a positive length: nonzero when the frame is
     * well-formed as a frame but invalid for its stream alone (a WINDOW with increment 0 on a
     * stream != 0). The frame must not be processed; the receiver resets hdr.stream with this
     * wire code (if that stream is open) and the tunnel lives on. 0 otherwise.
     */
    uint32_t stream_error;
    /**
     * Set only when the decoder returns PTC_PROTO_EFRAME_SIZE or PTC_PROTO_EPROTOCOL: the
     * tunnel error to send in GOAWAY (PTC_WIRE_FRAME_SIZE_ERROR or PTC_WIRE_PROTOCOL_ERROR).
     * 0 (NO_ERROR) otherwise.
     */
    uint32_t wire_error;
} ptc_frame_t;

/* ---- decoding ---- */

/**
 * Decodes the frame at the start of p[0..len).
 *
 * lim: the receiver's limits; NULL means the defaults.
 *
 * Returns the bytes the frame occupies (PTC_FRAME_HEADER_LEN + hdr.length) when all of it is
 * present; then *out is filled. A frame of an unknown type returns its length with
 * out->is_unknown set (after the length check; flags and payload are not interpreted). A
 * frame that is only a stream error returns its length with out->stream_error set.
 *
 * Errors (nothing consumed in every case):
 * - PTC_PROTO_EINCOMPLETE: fewer than 9 bytes, or the payload is not all there yet. Every
 *   check that needs only the header has passed, so a caller may wait for the payload.
 * - PTC_PROTO_EFRAME_SIZE (out->wire_error = FRAME_SIZE_ERROR): length over the type's limit
 *   (checked as soon as the 9-byte header is in, before the payload is buffered), or a wrong
 *   size for RESET (4), WINDOW (4), PING (8) or GOAWAY (8..8+PTC_FRAME_GOAWAY_DEBUG_MAX).
 * - PTC_PROTO_EPROTOCOL (out->wire_error = PROTOCOL_ERROR): the header's R bit set; DATA,
 *   REQUEST, RESPONSE or RESET on stream 0; PING, GOAWAY or CONTROL on a stream != 0; a WINDOW
 *   with increment 0 on stream 0.
 * On these errors out->hdr holds the refused header (when 9 bytes were present).
 *
 * The checks run in the order of docs/protocol.md §3.5: R bit, length limit (DATA, REQUEST,
 * RESPONSE, CONTROL, unknown types), unknown type, stream kind, fixed or bounded size (RESET,
 * WINDOW, PING, GOAWAY), WINDOW increment. Reserved bits inside payloads (WINDOW increment,
 * GOAWAY last_stream) are ignored.
 */
ssize_t ptc_frame_decode(const uint8_t *p, size_t len, const ptc_frame_limits_t *lim,
                         ptc_frame_t *out);

/**
 * Reads the 9 header bytes at p as they are, without any validation (the R bit is dropped
 * from hdr->stream). Returns true if the R bit was set. p must hold PTC_FRAME_HEADER_LEN bytes.
 */
bool ptc_frame_decode_header(const uint8_t *p, ptc_frame_header_t *hdr);

/** RESET: the error code (a ptc_wire_error_t or an unknown value). f must be a decoded RESET. */
uint32_t ptc_frame_reset_code(const ptc_frame_t *f);

/** WINDOW: the increment (1..2^31-1 once decoded). f must be a decoded WINDOW. */
uint32_t ptc_frame_window_increment(const ptc_frame_t *f);

/** PING: the 8 opaque bytes (borrowed from the input). f must be a decoded PING. */
const uint8_t *ptc_frame_ping_data(const ptc_frame_t *f);

/** GOAWAY: the last processed stream id (R bit dropped). f must be a decoded GOAWAY. */
uint32_t ptc_frame_goaway_last_stream(const ptc_frame_t *f);

/** GOAWAY: the error code. f must be a decoded GOAWAY. */
uint32_t ptc_frame_goaway_error(const ptc_frame_t *f);

/**
 * GOAWAY: the debug text (not NUL-terminated, not validated as UTF-8; borrowed from the
 * input), its length in *len (0..PTC_FRAME_GOAWAY_DEBUG_MAX). f must be a decoded GOAWAY.
 */
const uint8_t *ptc_frame_goaway_debug(const ptc_frame_t *f, size_t *len);

/* ---- encoding ----
 *
 * Every encoder writes into buf[0..cap) and returns the bytes written, or an error with
 * nothing written: PTC_PROTO_ESPACE when cap is too small, PTC_PROTO_EPROTOCOL /
 * PTC_PROTO_EFRAME_SIZE when the frame is one ptc_frame_decode() would refuse (the same codes;
 * the peer's limits are not known here: the mux checks them). Flags are written as given.
 */

/**
 * Writes the 9-byte header for hdr into buf, so that hdr->length payload bytes can be copied
 * (or encoded, e.g. with ptc_hblock_encode_request()) right after it. Checks only what the
 * header can represent: hdr->length <= PTC_FRAME_LEN_MAX (else PTC_PROTO_EFRAME_SIZE) and
 * hdr->stream <= PTC_STREAM_ID_MAX (else PTC_PROTO_EPROTOCOL). Returns 9 or an error.
 */
ssize_t ptc_frame_encode_header(uint8_t *buf, size_t cap, const ptc_frame_header_t *hdr);

/**
 * Writes a whole frame: hdr, then hdr->length bytes from payload (payload may be NULL when
 * hdr->length is 0). Checks everything the decoder checks on a frame alone (stream kind,
 * fixed sizes, WINDOW increment on stream 0) except the receiver's limits; frames of unknown
 * types are written as given. A WINDOW with increment 0 on a stream != 0 is refused too
 * (PTC_PROTO_EPROTOCOL). Re-encoding a decoded frame this way reproduces its bytes unless
 * reserved payload bits were set.
 */
ssize_t ptc_frame_encode(uint8_t *buf, size_t cap, const ptc_frame_header_t *hdr,
                         const uint8_t *payload);

/**
 * DATA on stream (1..2^31-1) with flags (PTC_FLAG_END_STREAM or 0) and len payload bytes
 * (len <= PTC_FRAME_LEN_MAX; payload may be NULL when len is 0).
 */
ssize_t ptc_frame_encode_data(uint8_t *buf, size_t cap, uint32_t stream, uint8_t flags,
                              const uint8_t *payload, size_t len);

/** RESET on stream (1..2^31-1) with a wire error code. Writes 13 bytes. */
ssize_t ptc_frame_encode_reset(uint8_t *buf, size_t cap, uint32_t stream, uint32_t code);

/**
 * WINDOW on stream (0 = the tunnel) adding increment (1..2^31-1, else PTC_PROTO_EPROTOCOL).
 * Writes 13 bytes.
 */
ssize_t ptc_frame_encode_window(uint8_t *buf, size_t cap, uint32_t stream, uint32_t increment);

/** PING on stream 0 with flags (PTC_FLAG_ACK for the answer) and 8 bytes. Writes 17 bytes. */
ssize_t ptc_frame_encode_ping(uint8_t *buf, size_t cap, uint8_t flags, const uint8_t data[8]);

/**
 * GOAWAY on stream 0: last_stream (0..2^31-1), a wire error code and debug_len bytes of
 * debug text (may be NULL when debug_len is 0; more than PTC_FRAME_GOAWAY_DEBUG_MAX bytes:
 * PTC_PROTO_EFRAME_SIZE). The text is sent as given: it must be UTF-8 and never a secret.
 */
ssize_t ptc_frame_encode_goaway(uint8_t *buf, size_t cap, uint32_t last_stream, uint32_t code,
                                const uint8_t *debug, size_t debug_len);

/** CONTROL on stream 0 carrying len bytes (one JSON document, opaque here). */
ssize_t ptc_frame_encode_control(uint8_t *buf, size_t cap, const uint8_t *payload, size_t len);

#endif
