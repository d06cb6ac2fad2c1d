/* SPDX-License-Identifier: MIT */
/*
 * Tunnel protocol v1 header blocks (docs/protocol.md §5): the payloads of REQUEST and RESPONSE
 * frames. Encoders write into a caller buffer; decoders validate every field strictly and
 * return slices into the input (no copy, not NUL-terminated), so a decoded head is valid only
 * while the frame's bytes are. The encoder refuses everything the decoder refuses, so an
 * encoded block always decodes. Pure libc: no I/O, no allocation, nothing else of ours.
 *
 * REQUEST block:  u8 scheme | u8 flags | u16 port | u32 timeout_ms | str host | str sni |
 *                 str method | str target | u16 header_count | header_count x (str, str)
 * RESPONSE block: u16 status | u16 header_count | header_count x (str name, str value)
 * where str = u16 length + bytes, all integers big-endian.
 *
 * Field rules (a violation is PTC_PROTO_EHEADER, a HEADER_ERROR on the wire):
 * - scheme 0 (http) or 1 (https); flags only bit0 (validate TLS), bit1 (upgrade);
 * - port 1..65535; timeout_ms any (0 = the connector's default);
 * - host 1..255 bytes of letters, digits, '-', '.', '_', ':' (a DNS name or an IP literal,
 *   IPv6 without brackets); sni 0..255 bytes of letters, digits, '-', '.', '_' (empty = none);
 * - method 1..32 tchar; target 1..65535 bytes of visible ASCII (0x21-0x7E), either "*" or
 *   starting with '/' (origin form);
 * - header name 1..65535 tchar (RFC 9110 token: no space, no colon); header value 0..65535
 *   bytes of HTAB, SP, VCHAR or obs-text (no CR, LF, NUL or other CTL, no DEL);
 * - status 101 or 200..599;
 * - no bytes after the last header.
 */
#ifndef PTC_PROTO_HBLOCK_H
#define PTC_PROTO_HBLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/proto.h"

/** A borrowed byte string: ptr + len, not NUL-terminated (ptr may be NULL when len is 0). */
typedef struct ptc_proto_str {
    const uint8_t *ptr;
    size_t len;
} ptc_proto_str_t;

/** One header field: a name (tchar) and a value. */
typedef struct ptc_proto_field {
    ptc_proto_str_t name;
    ptc_proto_str_t value;
} ptc_proto_field_t;

/** The backend scheme carried in a REQUEST block. */
typedef enum ptc_proto_scheme {
    PTC_PROTO_SCHEME_HTTP = 0,
    PTC_PROTO_SCHEME_HTTPS = 1,
} ptc_proto_scheme_t;

/** REQUEST block flag bits (on the wire; the struct carries them as bools). */
#define PTC_HBLOCK_FLAG_VALIDATE_TLS 0x01
#define PTC_HBLOCK_FLAG_UPGRADE 0x02

/** Field length limits. */
#define PTC_HBLOCK_HOST_MAX 255
#define PTC_HBLOCK_SNI_MAX 255
#define PTC_HBLOCK_METHOD_MAX 32
#define PTC_HBLOCK_STR_MAX 65535     /* target, header names and values (u16 length) */
#define PTC_HBLOCK_HEADERS_MAX 65535 /* header_count is a u16 */

/** A request head: what the edge asks the connector to send to the backend. */
typedef struct ptc_request_head {
    ptc_proto_scheme_t scheme;        /* how the connector talks to the backend */
    bool validate_tls;                /* https: validate the backend's certificate */
    bool upgrade;                     /* the client asked for an Upgrade (e.g. WebSocket) */
    uint16_t port;                    /* backend port, 1..65535 */
    uint32_t timeout_ms;              /* backend timeout; 0 = the connector's default */
    ptc_proto_str_t host;             /* backend host (DNS name or IP literal) */
    ptc_proto_str_t sni;              /* SNI to send; empty = none */
    ptc_proto_str_t method;           /* e.g. "GET" */
    ptc_proto_str_t target;           /* origin-form request target, e.g. "/a?b" */
    const ptc_proto_field_t *headers; /* header_cnt fields, in order */
    size_t header_cnt;
} ptc_request_head_t;

/** A response head: what the connector got back from the backend. */
typedef struct ptc_response_head {
    uint16_t status; /* 101 or 200..599 */
    const ptc_proto_field_t *headers;
    size_t header_cnt;
} ptc_response_head_t;

/**
 * The exact number of bytes ptc_hblock_encode_request() writes for req. Meaningful only for a
 * head the encoder accepts (string lengths are counted as given).
 */
size_t ptc_hblock_request_size(const ptc_request_head_t *req);

/** The exact number of bytes ptc_hblock_encode_response() writes for resp (same caveat). */
size_t ptc_hblock_response_size(const ptc_response_head_t *resp);

/**
 * Encodes req into out[0..cap). Returns the bytes written (== ptc_hblock_request_size()), or
 * with nothing meaningful written: PTC_PROTO_EHEADER if any field breaks the rules above (the
 * decoder would refuse it: bad scheme, port 0, empty or bad host, bad method or target, a
 * name that is not tchar, a value with CR/LF/NUL, a length over its limit, more than 65535
 * headers), else PTC_PROTO_ESPACE if cap is too small. The strings are copied.
 */
ssize_t ptc_hblock_encode_request(const ptc_request_head_t *req, uint8_t *out, size_t cap);

/** Encodes resp like ptc_hblock_encode_request() (status outside 101, 200..599: EHEADER). */
ssize_t ptc_hblock_encode_response(const ptc_response_head_t *resp, uint8_t *out, size_t cap);

/**
 * Decodes a REQUEST block p[0..len) into *out. The strings in *out point into p; the headers
 * are stored in fields[0..max_fields) and out->headers points at fields (fields may be NULL
 * when max_fields is 0). Never reads outside p[0..len).
 *
 * Returns 0, PTC_PROTO_EHEADER for any malformed block (a bad field, a string or count that
 * runs past the end, bytes after the last header), or PTC_PROTO_ELIMIT for a well-formed block
 * with more than max_fields headers. On error *out and fields are unspecified.
 */
int ptc_hblock_decode_request(const uint8_t *p, size_t len, ptc_request_head_t *out,
                              ptc_proto_field_t *fields, size_t max_fields);

/** Decodes a RESPONSE block like ptc_hblock_decode_request() (same errors). */
int ptc_hblock_decode_response(const uint8_t *p, size_t len, ptc_response_head_t *out,
                               ptc_proto_field_t *fields, size_t max_fields);

/** Is name[0..len) a valid header name (1..65535 tchar)? For callers filtering headers. */
bool ptc_hblock_valid_name(const uint8_t *name, size_t len);

/** Is value[0..len) a valid header value (0..65535 bytes of HTAB, SP, VCHAR, obs-text)? */
bool ptc_hblock_valid_value(const uint8_t *value, size_t len);

#endif
