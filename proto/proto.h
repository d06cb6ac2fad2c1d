/* SPDX-License-Identifier: MIT */
/*
 * Tunnel protocol v1: constants shared by the codecs (frame.h, hblock.h), the stream
 * multiplexer (mux.h) and both daemons. docs/protocol.md is the normative specification;
 * the values here are the ones it defines, and a change to either must change both.
 *
 * proto/ is pure C over libc: no I/O, no clock, no allocation beyond malloc, nothing of ours.
 * Its error codes therefore live in their own range (-10200 and below), apart from
 * common/err.h's, and ptc_proto_errname() names them.
 */
#ifndef PTC_PROTO_PROTO_H
#define PTC_PROTO_PROTO_H

#include <stdint.h>

/** ALPN protocol id of tunnel protocol v1 (docs/protocol.md §2). */
#define PTC_PROTO_ALPN "portico/1"
/** The protocol version carried in the handshake. */
#define PTC_PROTO_VERSION 1

/* ---- frame layout (docs/protocol.md §3) ---- */

/** Every frame starts with length:24 | type:8 | flags:8 | R:1 stream:31, big-endian. */
#define PTC_FRAME_HEADER_LEN 9
/** The largest payload the 24-bit length can carry. */
#define PTC_FRAME_LEN_MAX 0xFFFFFFu
/** Stream ids are 31 bits; the top bit of the field is reserved and must be zero. */
#define PTC_STREAM_ID_MAX 0x7FFFFFFFu

typedef enum ptc_frame_type {
    PTC_FRAME_DATA = 0x0,     /* stream != 0: body bytes (or raw bytes after a 101) */
    PTC_FRAME_REQUEST = 0x1,  /* stream != 0, edge -> connector: opens the stream */
    PTC_FRAME_RESPONSE = 0x2, /* stream != 0, connector -> edge: response head, once */
    PTC_FRAME_RESET = 0x3,    /* stream != 0: abort the stream; payload error:32 */
    PTC_FRAME_WINDOW = 0x4,   /* any stream (0 = tunnel): payload R:1 increment:31 */
    PTC_FRAME_PING = 0x5,     /* stream 0: payload 8 opaque bytes; ACK echoes them */
    PTC_FRAME_GOAWAY = 0x6,   /* stream 0: payload R:1 last_stream:31, error:32, debug */
    PTC_FRAME_CONTROL = 0x7,  /* stream 0: one JSON document (opaque to proto/) */
} ptc_frame_type_t;
/** Frame types above this are unknown: receivers ignore them (extensibility, §3.3). */
#define PTC_FRAME_TYPE_LAST PTC_FRAME_CONTROL

/** Flags (unknown flags are ignored by receivers and must be sent as zero). */
#define PTC_FLAG_END_STREAM 0x01 /* DATA, REQUEST, RESPONSE: the sender's half ends */
#define PTC_FLAG_ACK 0x02        /* PING: this is the answer */

/* ---- error codes carried in RESET and GOAWAY (docs/protocol.md §8) ---- */

typedef enum ptc_wire_error {
    PTC_WIRE_NO_ERROR = 0x00,           /* graceful (GOAWAY on drain) */
    PTC_WIRE_PROTOCOL_ERROR = 0x01,     /* a frame or sequence the spec forbids */
    PTC_WIRE_INTERNAL_ERROR = 0x02,     /* the sender failed on its own */
    PTC_WIRE_FLOW_CONTROL_ERROR = 0x03, /* window exceeded or overflowed */
    PTC_WIRE_STREAM_CLOSED = 0x04,      /* frame for a half-closed stream's closed half */
    PTC_WIRE_FRAME_SIZE_ERROR = 0x05,   /* a frame over the limit, or a wrong fixed size */
    PTC_WIRE_REFUSED_STREAM = 0x06,     /* not processed at all: safe to retry elsewhere */
    PTC_WIRE_CANCEL = 0x07,             /* no longer wanted (client went away) */
    PTC_WIRE_HEADER_ERROR = 0x08,       /* malformed or too large header block */
    PTC_WIRE_AUTH_FAILED = 0x09,        /* handshake refused (GOAWAY only) */
    PTC_WIRE_TIMEOUT = 0x0a,            /* liveness or handshake deadline passed */
    /* Backend failures seen by the connector (RESET only); the edge maps them to 502/504. */
    PTC_WIRE_BACKEND_REFUSED = 0x10, /* TCP connection refused or unreachable */
    PTC_WIRE_BACKEND_DNS = 0x11,     /* the backend host name did not resolve */
    PTC_WIRE_BACKEND_TLS = 0x12,     /* TLS failed or the certificate did not validate */
    PTC_WIRE_BACKEND_TIMEOUT = 0x13, /* no (complete) response within the timeout */
    PTC_WIRE_BACKEND_RESET = 0x14,   /* the backend closed or sent a malformed response */
} ptc_wire_error_t;

/** The spec's name of a wire error ("PROTOCOL_ERROR"); "UNKNOWN" for others. */
const char *ptc_wire_error_name(uint32_t code);

/* ---- default limits (docs/protocol.md §7); each side announces its own ---- */

#define PTC_DEFAULT_MAX_FRAME_SIZE 16384u   /* DATA payload limit */
#define PTC_DEFAULT_MAX_HEADER_BLOCK 65536u /* REQUEST/RESPONSE payload limit */
#define PTC_DEFAULT_MAX_CONTROL_SIZE 65536u /* CONTROL payload limit */
#define PTC_DEFAULT_MAX_STREAMS 16384u      /* concurrent streams the receiver accepts */
#define PTC_DEFAULT_STREAM_WINDOW 262144u   /* initial per-stream window (256 KiB) */
#define PTC_DEFAULT_TUNNEL_WINDOW 16777216u /* initial per-tunnel window (16 MiB) */
#define PTC_WINDOW_MAX 0x7FFFFFFFu          /* a window may never exceed 2^31-1 */
#define PTC_DEFAULT_PING_INTERVAL_MS 15000u /* send a PING after this much silence */
#define PTC_DEFAULT_IDLE_TIMEOUT_MS 45000u  /* no frame for this long: the tunnel is dead */

/* ---- proto/'s own error codes (return values, not wire codes) ---- */

enum {
    PTC_PROTO_EINCOMPLETE = -10200, /* a decoder needs more bytes; nothing consumed */
    PTC_PROTO_EFRAME_SIZE = -10201, /* length over the limit or a wrong fixed length */
    PTC_PROTO_EPROTOCOL = -10202,   /* a forbidden frame, field or sequence */
    PTC_PROTO_EFLOW = -10203,       /* flow-control violation */
    PTC_PROTO_EHEADER = -10204,     /* malformed header block */
    PTC_PROTO_ESTATE = -10205,      /* the local call is not valid in the stream's state */
    PTC_PROTO_ELIMIT = -10206,      /* a local send would exceed the peer's limit */
    PTC_PROTO_ENOSTREAM = -10207,   /* no such stream */
    PTC_PROTO_ECLOSED = -10208,     /* the tunnel is closed (GOAWAY sent/received, error) */
    PTC_PROTO_ETIMEOUT = -10209,    /* liveness: nothing received within the idle timeout */
    PTC_PROTO_ENOMEM = -10210,      /* allocation failed */
    PTC_PROTO_ESPACE = -10211,      /* the caller's output buffer is too small */
};

/** A stable name for a proto/ error code ("PTC_PROTO_EFLOW"); "UNKNOWN" for others. */
const char *ptc_proto_errname(int err);

#endif
