/* SPDX-License-Identifier: MIT */
/*
 * Tunnel protocol v1 frame codec (docs/protocol.md §3) and the names of proto/'s error codes
 * and of the wire error codes. Pure libc: the decoder works on a caller's byte range and
 * returns slices into it, the encoders write into a caller's buffer. Nothing here keeps
 * state, allocates or knows about streams; proto/mux.c builds on it.
 */
#include "proto/frame.h"

#include <assert.h>
#include <string.h>

/* ---- names ---- */

const char *ptc_wire_error_name(uint32_t code)
{
    switch (code) {
    case PTC_WIRE_NO_ERROR:
        return "NO_ERROR";
    case PTC_WIRE_PROTOCOL_ERROR:
        return "PROTOCOL_ERROR";
    case PTC_WIRE_INTERNAL_ERROR:
        return "INTERNAL_ERROR";
    case PTC_WIRE_FLOW_CONTROL_ERROR:
        return "FLOW_CONTROL_ERROR";
    case PTC_WIRE_STREAM_CLOSED:
        return "STREAM_CLOSED";
    case PTC_WIRE_FRAME_SIZE_ERROR:
        return "FRAME_SIZE_ERROR";
    case PTC_WIRE_REFUSED_STREAM:
        return "REFUSED_STREAM";
    case PTC_WIRE_CANCEL:
        return "CANCEL";
    case PTC_WIRE_HEADER_ERROR:
        return "HEADER_ERROR";
    case PTC_WIRE_AUTH_FAILED:
        return "AUTH_FAILED";
    case PTC_WIRE_TIMEOUT:
        return "TIMEOUT";
    case PTC_WIRE_BACKEND_REFUSED:
        return "BACKEND_REFUSED";
    case PTC_WIRE_BACKEND_DNS:
        return "BACKEND_DNS";
    case PTC_WIRE_BACKEND_TLS:
        return "BACKEND_TLS";
    case PTC_WIRE_BACKEND_TIMEOUT:
        return "BACKEND_TIMEOUT";
    case PTC_WIRE_BACKEND_RESET:
        return "BACKEND_RESET";
    default:
        return "UNKNOWN";
    }
}

const char *ptc_proto_errname(int err)
{
    switch (err) {
    case PTC_PROTO_EINCOMPLETE:
        return "PTC_PROTO_EINCOMPLETE";
    case PTC_PROTO_EFRAME_SIZE:
        return "PTC_PROTO_EFRAME_SIZE";
    case PTC_PROTO_EPROTOCOL:
        return "PTC_PROTO_EPROTOCOL";
    case PTC_PROTO_EFLOW:
        return "PTC_PROTO_EFLOW";
    case PTC_PROTO_EHEADER:
        return "PTC_PROTO_EHEADER";
    case PTC_PROTO_ESTATE:
        return "PTC_PROTO_ESTATE";
    case PTC_PROTO_ELIMIT:
        return "PTC_PROTO_ELIMIT";
    case PTC_PROTO_ENOSTREAM:
        return "PTC_PROTO_ENOSTREAM";
    case PTC_PROTO_ECLOSED:
        return "PTC_PROTO_ECLOSED";
    case PTC_PROTO_ETIMEOUT:
        return "PTC_PROTO_ETIMEOUT";
    case PTC_PROTO_ENOMEM:
        return "PTC_PROTO_ENOMEM";
    case PTC_PROTO_ESPACE:
        return "PTC_PROTO_ESPACE";
    default:
        return "UNKNOWN";
    }
}

/* ---- big-endian helpers ---- */

static uint32_t get24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | (uint32_t)p[2];
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- per-type rules ---- */

/* Which stream ids a frame type may carry (docs/protocol.md §3.1). */
typedef enum stream_kind {
    ON_STREAM,  /* stream != 0 */
    ON_TUNNEL,  /* stream == 0 */
    ON_ANY,     /* WINDOW: 0 is the tunnel, else a stream */
    ON_UNKNOWN, /* types this version does not know: not checked */
} stream_kind_t;

static bool is_known_type(uint8_t type)
{
    return type <= PTC_FRAME_TYPE_LAST;
}

static stream_kind_t stream_kind(uint8_t type)
{
    switch (type) {
    case PTC_FRAME_DATA:
    case PTC_FRAME_REQUEST:
    case PTC_FRAME_RESPONSE:
    case PTC_FRAME_RESET:
        return ON_STREAM;
    case PTC_FRAME_WINDOW:
        return ON_ANY;
    case PTC_FRAME_PING:
    case PTC_FRAME_GOAWAY:
    case PTC_FRAME_CONTROL:
        return ON_TUNNEL;
    default:
        return ON_UNKNOWN;
    }
}

/*
 * The receiver's limit on a type; fixed-size types are checked apart. A limit above 24 bits
 * needs no clamping: no length can exceed it.
 */
static uint32_t type_limit(uint8_t type, const ptc_frame_limits_t *lim)
{
    switch (type) {
    case PTC_FRAME_REQUEST:
    case PTC_FRAME_RESPONSE:
        return lim->max_header_block;
    case PTC_FRAME_CONTROL:
        return lim->max_control_size;
    case PTC_FRAME_RESET:
    case PTC_FRAME_WINDOW:
    case PTC_FRAME_PING:
    case PTC_FRAME_GOAWAY:
        /* Bounded sizes are checked after the stream kind (docs/protocol.md §3.5 step 5),
         * by check_size(). */
        return PTC_FRAME_LEN_MAX;
    default:
        /* DATA and every unknown type (docs/protocol.md §3.4). */
        return lim->max_frame_size;
    }
}

/* Does length fit the type's fixed or minimum size? */
static bool check_size(uint8_t type, uint32_t length)
{
    switch (type) {
    case PTC_FRAME_RESET:
        return length == PTC_FRAME_RESET_LEN;
    case PTC_FRAME_WINDOW:
        return length == PTC_FRAME_WINDOW_LEN;
    case PTC_FRAME_PING:
        return length == PTC_FRAME_PING_LEN;
    case PTC_FRAME_GOAWAY:
        return length >= PTC_FRAME_GOAWAY_MIN_LEN &&
               length <= PTC_FRAME_GOAWAY_MIN_LEN + PTC_FRAME_GOAWAY_DEBUG_MAX;
    default:
        return true;
    }
}

static bool check_stream(uint8_t type, uint32_t stream)
{
    switch (stream_kind(type)) {
    case ON_STREAM:
        return stream != 0;
    case ON_TUNNEL:
        return stream == 0;
    case ON_ANY:
    case ON_UNKNOWN:
        return true;
    }
    return false;
}

/* ---- decoding ---- */

bool ptc_frame_decode_header(const uint8_t *p, ptc_frame_header_t *hdr)
{
    uint32_t sid = get32(p + 5);
    hdr->length = get24(p);
    hdr->type = p[3];
    hdr->flags = p[4];
    hdr->stream = sid & PTC_STREAM_ID_MAX;
    return (sid & ~PTC_STREAM_ID_MAX) != 0;
}

static ssize_t refuse(ptc_frame_t *out, ssize_t err)
{
    out->wire_error =
        err == PTC_PROTO_EFRAME_SIZE ? PTC_WIRE_FRAME_SIZE_ERROR : PTC_WIRE_PROTOCOL_ERROR;
    return err;
}

ssize_t ptc_frame_decode(const uint8_t *p, size_t len, const ptc_frame_limits_t *lim,
                         ptc_frame_t *out)
{
    static const ptc_frame_limits_t defaults = PTC_FRAME_LIMITS_DEFAULT;
    if (lim == NULL) {
        lim = &defaults;
    }
    memset(out, 0, sizeof(*out));
    if (len < PTC_FRAME_HEADER_LEN) {
        return PTC_PROTO_EINCOMPLETE;
    }
    ptc_frame_header_t *h = &out->hdr;
    bool r_bit = ptc_frame_decode_header(p, h);

    /* Everything that needs only the header is decided before waiting for the payload, so a
     * peer cannot make us buffer a frame we would refuse anyway. */
    if (r_bit) {
        return refuse(out, PTC_PROTO_EPROTOCOL);
    }
    if (h->length > type_limit(h->type, lim)) {
        return refuse(out, PTC_PROTO_EFRAME_SIZE);
    }
    if (!check_stream(h->type, h->stream)) {
        return refuse(out, PTC_PROTO_EPROTOCOL);
    }
    if (!check_size(h->type, h->length)) {
        return refuse(out, PTC_PROTO_EFRAME_SIZE);
    }
    if (len - PTC_FRAME_HEADER_LEN < h->length) {
        return PTC_PROTO_EINCOMPLETE;
    }
    out->payload = p + PTC_FRAME_HEADER_LEN;
    out->is_unknown = !is_known_type(h->type);

    if (h->type == PTC_FRAME_WINDOW && (get32(out->payload) & PTC_STREAM_ID_MAX) == 0) {
        /* A zero increment is a tunnel error on stream 0 and a stream error elsewhere
         * (docs/protocol.md §4.5, as RFC 9113 §6.9). */
        if (h->stream == 0) {
            return refuse(out, PTC_PROTO_EPROTOCOL);
        }
        out->stream_error = PTC_WIRE_PROTOCOL_ERROR;
    }
    return (ssize_t)(PTC_FRAME_HEADER_LEN + h->length);
}

uint32_t ptc_frame_reset_code(const ptc_frame_t *f)
{
    assert(f->hdr.type == PTC_FRAME_RESET && f->hdr.length == PTC_FRAME_RESET_LEN);
    return get32(f->payload);
}

uint32_t ptc_frame_window_increment(const ptc_frame_t *f)
{
    assert(f->hdr.type == PTC_FRAME_WINDOW && f->hdr.length == PTC_FRAME_WINDOW_LEN);
    return get32(f->payload) & PTC_FRAME_WINDOW_INCREMENT_MAX;
}

const uint8_t *ptc_frame_ping_data(const ptc_frame_t *f)
{
    assert(f->hdr.type == PTC_FRAME_PING && f->hdr.length == PTC_FRAME_PING_LEN);
    return f->payload;
}

uint32_t ptc_frame_goaway_last_stream(const ptc_frame_t *f)
{
    assert(f->hdr.type == PTC_FRAME_GOAWAY && f->hdr.length >= PTC_FRAME_GOAWAY_MIN_LEN);
    return get32(f->payload) & PTC_STREAM_ID_MAX;
}

uint32_t ptc_frame_goaway_error(const ptc_frame_t *f)
{
    assert(f->hdr.type == PTC_FRAME_GOAWAY && f->hdr.length >= PTC_FRAME_GOAWAY_MIN_LEN);
    return get32(f->payload + 4);
}

const uint8_t *ptc_frame_goaway_debug(const ptc_frame_t *f, size_t *len)
{
    assert(f->hdr.type == PTC_FRAME_GOAWAY && f->hdr.length >= PTC_FRAME_GOAWAY_MIN_LEN);
    *len = f->hdr.length - PTC_FRAME_GOAWAY_MIN_LEN;
    return f->payload + PTC_FRAME_GOAWAY_MIN_LEN;
}

/* ---- encoding ---- */

/* The checks the decoder applies to a frame alone, except the receiver's limits. */
static int check_frame(const ptc_frame_header_t *hdr, const uint8_t *payload)
{
    if (hdr->length > PTC_FRAME_LEN_MAX) {
        return PTC_PROTO_EFRAME_SIZE;
    }
    if (hdr->stream > PTC_STREAM_ID_MAX || !check_stream(hdr->type, hdr->stream)) {
        return PTC_PROTO_EPROTOCOL;
    }
    if (!check_size(hdr->type, hdr->length)) {
        return PTC_PROTO_EFRAME_SIZE;
    }
    if (hdr->type == PTC_FRAME_WINDOW && (get32(payload) & PTC_FRAME_WINDOW_INCREMENT_MAX) == 0) {
        return PTC_PROTO_EPROTOCOL;
    }
    return 0;
}

ssize_t ptc_frame_encode_header(uint8_t *buf, size_t cap, const ptc_frame_header_t *hdr)
{
    if (hdr->length > PTC_FRAME_LEN_MAX) {
        return PTC_PROTO_EFRAME_SIZE;
    }
    if (hdr->stream > PTC_STREAM_ID_MAX) {
        return PTC_PROTO_EPROTOCOL;
    }
    if (cap < PTC_FRAME_HEADER_LEN) {
        return PTC_PROTO_ESPACE;
    }
    put24(buf, hdr->length);
    buf[3] = hdr->type;
    buf[4] = hdr->flags;
    put32(buf + 5, hdr->stream);
    return PTC_FRAME_HEADER_LEN;
}

ssize_t ptc_frame_encode(uint8_t *buf, size_t cap, const ptc_frame_header_t *hdr,
                         const uint8_t *payload)
{
    int err = check_frame(hdr, payload);
    if (err != 0) {
        return err;
    }
    if (cap < PTC_FRAME_HEADER_LEN || cap - PTC_FRAME_HEADER_LEN < hdr->length) {
        return PTC_PROTO_ESPACE;
    }
    ssize_t n = ptc_frame_encode_header(buf, cap, hdr);
    assert(n == PTC_FRAME_HEADER_LEN);
    if (hdr->length != 0) {
        memmove(buf + PTC_FRAME_HEADER_LEN, payload, hdr->length);
    }
    return PTC_FRAME_HEADER_LEN + (ssize_t)hdr->length;
}

/* Encodes a frame whose payload the caller passes as a length that may exceed 24 bits. */
static ssize_t encode_sized(uint8_t *buf, size_t cap, uint8_t type, uint8_t flags, uint32_t stream,
                            const uint8_t *payload, size_t len)
{
    if (len > PTC_FRAME_LEN_MAX) {
        return PTC_PROTO_EFRAME_SIZE;
    }
    ptc_frame_header_t hdr = {
        .length = (uint32_t)len, .type = type, .flags = flags, .stream = stream};
    return ptc_frame_encode(buf, cap, &hdr, payload);
}

ssize_t ptc_frame_encode_data(uint8_t *buf, size_t cap, uint32_t stream, uint8_t flags,
                              const uint8_t *payload, size_t len)
{
    return encode_sized(buf, cap, PTC_FRAME_DATA, flags, stream, payload, len);
}

ssize_t ptc_frame_encode_reset(uint8_t *buf, size_t cap, uint32_t stream, uint32_t code)
{
    uint8_t payload[PTC_FRAME_RESET_LEN];
    put32(payload, code);
    return encode_sized(buf, cap, PTC_FRAME_RESET, 0, stream, payload, sizeof(payload));
}

ssize_t ptc_frame_encode_window(uint8_t *buf, size_t cap, uint32_t stream, uint32_t increment)
{
    if (increment == 0 || increment > PTC_FRAME_WINDOW_INCREMENT_MAX) {
        return PTC_PROTO_EPROTOCOL;
    }
    uint8_t payload[PTC_FRAME_WINDOW_LEN];
    put32(payload, increment);
    return encode_sized(buf, cap, PTC_FRAME_WINDOW, 0, stream, payload, sizeof(payload));
}

ssize_t ptc_frame_encode_ping(uint8_t *buf, size_t cap, uint8_t flags, const uint8_t data[8])
{
    return encode_sized(buf, cap, PTC_FRAME_PING, flags, 0, data, PTC_FRAME_PING_LEN);
}

ssize_t ptc_frame_encode_goaway(uint8_t *buf, size_t cap, uint32_t last_stream, uint32_t code,
                                const uint8_t *debug, size_t debug_len)
{
    if (last_stream > PTC_STREAM_ID_MAX) {
        return PTC_PROTO_EPROTOCOL;
    }
    if (debug_len > PTC_FRAME_GOAWAY_DEBUG_MAX) {
        return PTC_PROTO_EFRAME_SIZE;
    }
    size_t len = PTC_FRAME_GOAWAY_MIN_LEN + debug_len;
    if (cap < PTC_FRAME_HEADER_LEN || cap - PTC_FRAME_HEADER_LEN < len) {
        return PTC_PROTO_ESPACE;
    }
    /* Written in place rather than through ptc_frame_encode() to avoid a staging copy. */
    ptc_frame_header_t hdr = {
        .length = (uint32_t)len, .type = PTC_FRAME_GOAWAY, .flags = 0, .stream = 0};
    ssize_t n = ptc_frame_encode_header(buf, cap, &hdr);
    assert(n == PTC_FRAME_HEADER_LEN);
    put32(buf + PTC_FRAME_HEADER_LEN, last_stream);
    put32(buf + PTC_FRAME_HEADER_LEN + 4, code);
    if (debug_len != 0) {
        memmove(buf + PTC_FRAME_HEADER_LEN + PTC_FRAME_GOAWAY_MIN_LEN, debug, debug_len);
    }
    return (ssize_t)(PTC_FRAME_HEADER_LEN + len);
}

ssize_t ptc_frame_encode_control(uint8_t *buf, size_t cap, const uint8_t *payload, size_t len)
{
    return encode_sized(buf, cap, PTC_FRAME_CONTROL, 0, 0, payload, len);
}
