/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 parsing and writing helpers: a pull-style parser for requests and responses built
 * on llhttp 8.1, header helpers (case-insensitive lookup, comma-list tokens, hop-by-hop
 * detection), and writers for request/response heads and chunked framing that refuse
 * anything which could break framing on the wire.
 *
 * The edge parses browser requests with it (hostile input), the connector parses backend
 * responses, and the HTTP client does both. llhttp is built without LLHTTP_STRICT_MODE, so
 * the parser does not trust its leniency: every head is checked again by a strict scanner
 * over the raw bytes (line endings, obsolete folding, token names, field values, framing
 * headers), every chunked body is followed by a strict chunk scanner, and llhttp's view of
 * the framing must agree with ours or the message is refused. Ambiguous framing (the
 * request-smuggling patterns of RFC 9112 §6 and §11.2) is an error, never a guess.
 *
 * The parser owns a bounded copy of the current head (header slices point into it); bodies
 * are handed out as slices of the caller's input, never copied. It does no I/O, no logging
 * and keeps no clock. Depends on common/buf and llhttp only (llhttp's types stay out of
 * this header).
 */
#ifndef PTC_COMMON_HTTP_H
#define PTC_COMMON_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"

/* ---- parsed messages ---- */

/** One header field: borrowed slices (see the owner's lifetime rule). */
typedef struct ptc_http_header {
    ptc_slice_t name;
    ptc_slice_t value;
} ptc_http_header_t;

/** How the body of a message is delimited (RFC 9112 §6.3). */
typedef enum ptc_http_body {
    /** No body: a request without Content-Length or Transfer-Encoding, Content-Length: 0,
     *  or a response to HEAD, a 1xx, 204 or 304, or a 101 / 2xx-to-CONNECT switch. */
    PTC_HTTP_BODY_NONE = 0,
    /** Exactly content_length bytes. */
    PTC_HTTP_BODY_LENGTH,
    /** Transfer-Encoding: chunked (de-chunked by the parser). */
    PTC_HTTP_BODY_CHUNKED,
    /** Responses only: everything until the connection closes (call ptc_http_parser_finish). */
    PTC_HTTP_BODY_UNTIL_CLOSE,
} ptc_http_body_t;

/* Tokens of the Connection header(s) that the parser interprets (ptc_http_head_t.conn). */
#define PTC_HTTP_CONN_CLOSE 0x1u
#define PTC_HTTP_CONN_KEEP_ALIVE 0x2u
#define PTC_HTTP_CONN_UPGRADE 0x4u

/**
 * A parsed head. Owned by the parser: every slice points into the parser's head storage
 * and stays valid until the next ptc_http_parser_feed() call that starts a new message
 * (i.e. the first call with input after the message's DONE or INTERIM event) or until
 * ptc_http_parser_free(). Copy what must live longer.
 */
typedef struct ptc_http_head {
    bool is_request;
    /** HTTP/1.<minor_version>: 0 or 1 (every other version is refused). */
    int minor_version;
    /** Requests: the method token, exactly as received (case-sensitive). */
    ptc_slice_t method;
    /** Requests: the request target as received (origin-, absolute-, authority- or
     *  asterisk-form). Comparing an absolute-form target with Host is the caller's job. */
    ptc_slice_t target;
    /** Requests: the Host header's value, or {NULL, 0} when absent (HTTP/1.0 only). */
    ptc_slice_t host;
    /** Responses: the status code (100..599). */
    int status;
    /** Responses: the reason phrase, possibly empty. */
    ptc_slice_t reason;
    /** The header fields in received order (trailers are not included). */
    const ptc_http_header_t *headers;
    size_t header_cnt;
    /** Body framing; content_length is the body size for PTC_HTTP_BODY_LENGTH, else 0. */
    ptc_http_body_t body;
    uint64_t content_length;
    /** PTC_HTTP_CONN_* bits for the tokens found in Connection. */
    unsigned conn;
    /** More messages may follow on this connection (version, Connection, framing). */
    bool keep_alive;
    /** Requests: CONNECT, or Upgrade with a Connection "upgrade" token. Responses: 101, or
     *  2xx to CONNECT. After DONE the parser reports PTC_HTTP_EV_UPGRADE. */
    bool upgrade;
    /** Requests: Expect: 100-continue. */
    bool expect_continue;
} ptc_http_head_t;

/* ---- parser ---- */

typedef enum ptc_http_kind {
    PTC_HTTP_REQUEST = 1,
    PTC_HTTP_RESPONSE = 2,
} ptc_http_kind_t;

/** Per-parser limits. A zero field takes the default shown. */
typedef struct ptc_http_limits {
    /** Start line + header fields + the blank line (431; 414 while still in the URL).
     *  Also bounds a chunked body's trailer section. Default 16384. */
    size_t max_head_bytes;
    /** Header fields per head (431). Default 100. */
    size_t max_headers;
    /** Request-target length (414). Default 8192. */
    size_t max_url_len;
} ptc_http_limits_t;

#define PTC_HTTP_DEFAULT_MAX_HEAD_BYTES 16384
#define PTC_HTTP_DEFAULT_MAX_HEADERS 100
#define PTC_HTTP_DEFAULT_MAX_URL_LEN 8192

/**
 * Why a parser died. `reason` is a short stable string (static storage), e.g. "duplicate
 * Content-Length"; `status` is what a server should answer before closing (400, 414, 431,
 * 501, 505; a response parser always suggests 502, as a gateway would); `llhttp_errno` keeps
 * llhttp's own code for logs (0 when one of Portico's checks refused the input).
 */
typedef struct ptc_http_error {
    int code; /* PTC_EHTTP, PTC_ELIMIT or PTC_ENOMEM */
    const char *reason;
    int status;
    int llhttp_errno;
} ptc_http_error_t;

typedef enum ptc_http_event_type {
    /** All input was consumed and more is needed. */
    PTC_HTTP_EV_NONE = 0,
    /** A complete head (a request, or a final response): `head` is set. */
    PTC_HTTP_EV_HEAD,
    /** Responses: an interim 1xx head (100, 102, 103...): `head` is set. No body and no
     *  DONE follow it; the final response's HEAD comes next. */
    PTC_HTTP_EV_INTERIM,
    /** Body bytes (de-chunked): `body` is a slice of the input just fed. */
    PTC_HTTP_EV_BODY,
    /** The message is complete. */
    PTC_HTTP_EV_DONE,
    /** After DONE of an upgrade message: the bytes from the returned offset on belong to
     *  the new protocol. The parser then refuses input (PTC_ESTATE) unless
     *  ptc_http_parser_resume_after_upgrade() is called. */
    PTC_HTTP_EV_UPGRADE,
    /** The parser is dead: see ptc_http_parser_error(). The connection must be closed. */
    PTC_HTTP_EV_ERROR,
} ptc_http_event_type_t;

typedef struct ptc_http_event {
    ptc_http_event_type_t type;
    /** HEAD, INTERIM: the parsed head (borrowed, see ptc_http_head_t). */
    const ptc_http_head_t *head;
    /** BODY: borrowed from the fed input; valid as long as that input is. */
    ptc_slice_t body;
} ptc_http_event_t;

typedef struct ptc_http_parser ptc_http_parser_t;

/**
 * Creates a parser for one connection's requests or responses, reusable across keep-alive
 * messages. `limits` may be NULL (defaults). Aborts if memory runs out (fixed-size
 * bookkeeping); the head storage grows on demand up to max_head_bytes. Free with
 * ptc_http_parser_free().
 */
ptc_http_parser_t *ptc_http_parser_new(ptc_http_kind_t kind, const ptc_http_limits_t *limits);

/** Frees the parser and its head storage (NULL is ignored). */
void ptc_http_parser_free(ptc_http_parser_t *p);

/**
 * Between messages (the last one ended and no byte of the next was fed), releases the head
 * storage, which the next message allocates again: an idle keep-alive connection then holds
 * only the parser itself. The last message's head must no longer be used. Does nothing while
 * a message is in progress.
 */
void ptc_http_parser_trim(ptc_http_parser_t *p);

/**
 * Parses input and returns at most one event. Returns how many bytes of data[0..len) were
 * consumed (>= 0) and fills *ev; the caller advances by that count and calls again with the
 * rest (even when nothing is left) until the event is PTC_HTTP_EV_NONE, then waits for more
 * input. DONE and UPGRADE may consume 0 bytes. Bytes not consumed must be fed again.
 *
 * Pipelined messages are parsed one after another: after DONE, the next call parses the next
 * message. After DONE of a message whose head has keep_alive false (and after UPGRADE),
 * further bytes are refused with PTC_ESTATE (the connection must be closed once the exchange
 * ends); a call with no bytes just returns NONE. Trailer fields of a chunked body are checked
 * and then dropped (not reported).
 *
 * Errors: PTC_EHTTP (malformed or ambiguous), PTC_ELIMIT (a limit), PTC_ENOMEM; *ev is then
 * PTC_HTTP_EV_ERROR and ptc_http_parser_error() says why. Errors are sticky: every later call
 * returns the same code. PTC_ESTATE as described above does not kill the parser.
 */
PTC_MUST_CHECK ssize_t ptc_http_parser_feed(ptc_http_parser_t *p, const uint8_t *data, size_t len,
                                            ptc_http_event_t *ev);

/**
 * Reports the end of input (the peer closed its side). Fills *ev with DONE when this ends
 * a PTC_HTTP_BODY_UNTIL_CLOSE body (or a bodyless message whose DONE was not yet pulled),
 * NONE when the connection ended cleanly between messages. Returns 0, or PTC_EHTTP with
 * reason "incomplete message" when the input stopped inside a message (the parser dies).
 * Call it after feed() has returned NONE. Further input is refused with PTC_ESTATE.
 */
PTC_MUST_CHECK int ptc_http_parser_finish(ptc_http_parser_t *p, ptc_http_event_t *ev);

/** The error that killed the parser, or NULL while it is alive. */
const ptc_http_error_t *ptc_http_parser_error(const ptc_http_parser_t *p);

/**
 * The current head: from its HEAD/INTERIM event until the next message starts; NULL before
 * the first head. Same lifetime as the event's `head`.
 */
const ptc_http_head_t *ptc_http_parser_head(const ptc_http_parser_t *p);

/**
 * Response parsers: the method of the request whose response comes next (HEAD: no body
 * whatever the headers say; CONNECT: a 2xx switches to a tunnel). Applies until that final
 * response's DONE; the default is a request with ordinary response framing (e.g. GET).
 */
void ptc_http_parser_set_request_method(ptc_http_parser_t *p, ptc_slice_t method);

/**
 * After PTC_HTTP_EV_UPGRADE, goes back to parsing HTTP/1.1 on the same connection (the
 * upgrade was declined, e.g. the backend did not answer 101). Returns 0, or PTC_ESTATE if
 * the parser is not in the upgraded state or the message did not allow keep-alive.
 */
PTC_MUST_CHECK int ptc_http_parser_resume_after_upgrade(ptc_http_parser_t *p);

/* ---- header helpers ---- */

/** True for an RFC 9110 tchar: ALPHA, DIGIT or one of !#$%&'*+-.^_`|~ (§5.6.2). */
static inline bool ptc_http_is_tchar(uint8_t c)
{
    static const uint32_t map[8] = {0, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff, 0, 0, 0, 0};
    return (map[c >> 5] >> (c & 31)) & 1;
}

/** True for a byte a field value may hold: HTAB, SP, VCHAR or obs-text (RFC 9110 §5.5). */
static inline bool ptc_http_is_value_char(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/** `s` without its leading and trailing spaces and tabs (OWS); a sub-slice of `s`. */
ptc_slice_t ptc_http_trim_ows(ptc_slice_t s);

/** True if `s` is a non-empty RFC 9110 token (methods, header names, codings). */
bool ptc_http_is_token(ptc_slice_t s);

/** True if `s` may be sent as a field value: HTAB, SP, VCHAR, obs-text only (no CR/LF/NUL). */
bool ptc_http_is_field_value(ptc_slice_t s);

/** The first header named `name` (ASCII case-insensitive), or NULL. */
const ptc_http_header_t *ptc_http_header_find(const ptc_http_header_t *hdrs, size_t cnt,
                                              const char *name);

/** How many headers are named `name` (ASCII case-insensitive). */
size_t ptc_http_header_count(const ptc_http_header_t *hdrs, size_t cnt, const char *name);

/**
 * Iterates a comma-separated list (RFC 9110 §5.6.1): stores the next non-empty element,
 * trimmed of spaces and tabs, in *elem, advances *list past it and returns true; returns
 * false at the end. Elements are returned whole ("a;q=1" stays one element).
 */
bool ptc_http_list_next(ptc_slice_t *list, ptc_slice_t *elem);

/** True if the comma list contains `token` as an element (ASCII case-insensitive). */
bool ptc_http_list_has(ptc_slice_t list, const char *token);

/** True if any header named `name` has `token` in its comma list (case-insensitive). */
bool ptc_http_header_has_token(const ptc_http_header_t *hdrs, size_t cnt, const char *name,
                               const char *token);

/**
 * True if the header `name` is hop-by-hop in the message whose headers are `hdrs`:
 * Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-Authorization, Proxy-Authenticate, and every header named in a Connection header.
 */
bool ptc_http_is_hop_by_hop(const ptc_http_header_t *hdrs, size_t cnt, ptc_slice_t name);

/**
 * Copies the end-to-end headers of hdrs[0..cnt) to out (room for cnt entries, not
 * overlapping hdrs), in order, and returns how many were copied. The slices are copied, not
 * the bytes they point to.
 */
size_t ptc_http_filter_hop_by_hop(const ptc_http_header_t *hdrs, size_t cnt,
                                  ptc_http_header_t *out);

/* ---- writers ---- */

/**
 * Formats "METHOD SP target SP HTTP/1.1 CRLF" + "name: value CRLF"... + CRLF into
 * buf[0..cap). Returns the length written, PTC_EHTTP if the method or a header name is not a
 * token, the target is empty or holds anything but visible ASCII, or a value holds CR, LF,
 * NUL or another control character but HTAB; PTC_ELIMIT if cap is too small (buf then holds
 * nothing meaningful). Nothing is written on PTC_EHTTP.
 */
PTC_MUST_CHECK ssize_t ptc_http_format_request_head(uint8_t *buf, size_t cap, ptc_slice_t method,
                                                    ptc_slice_t target,
                                                    const ptc_http_header_t *hdrs, size_t cnt);

/**
 * Formats "HTTP/1.1 SP status SP reason CRLF" + headers + CRLF into buf[0..cap). A reason
 * with a NULL ptr takes the standard phrase (ptc_http_reason_phrase). Errors as for
 * ptc_http_format_request_head; a status outside 100..599 or a reason with control
 * characters is PTC_EHTTP.
 */
PTC_MUST_CHECK ssize_t ptc_http_format_response_head(uint8_t *buf, size_t cap, int status,
                                                     ptc_slice_t reason,
                                                     const ptc_http_header_t *hdrs, size_t cnt);

/** As ptc_http_format_request_head, appended to a chunk queue. Returns 0, PTC_EHTTP (nothing
 *  queued) or PTC_ENOMEM. */
PTC_MUST_CHECK int ptc_http_write_request_head(ptc_chunkq_t *q, ptc_slice_t method,
                                               ptc_slice_t target, const ptc_http_header_t *hdrs,
                                               size_t cnt);

/** As ptc_http_format_response_head, appended to a chunk queue. Returns 0, PTC_EHTTP (nothing
 *  queued) or PTC_ENOMEM. */
PTC_MUST_CHECK int ptc_http_write_response_head(ptc_chunkq_t *q, int status, ptc_slice_t reason,
                                                const ptc_http_header_t *hdrs, size_t cnt);

/** Longest chunk header: 16 hex digits + CRLF. */
#define PTC_HTTP_CHUNK_HEADER_MAX 18

/**
 * Formats the chunk header for a chunk of `len` (> 0) bytes ("1a2b\r\n", lower-case hex)
 * into buf and returns its length. The chunk data must then be followed by CRLF. A zero
 * length would end the body: use ptc_http_write_last_chunk() for that (asserts len > 0).
 */
size_t ptc_http_format_chunk_header(uint8_t buf[PTC_HTTP_CHUNK_HEADER_MAX], uint64_t len);

/** Queues one chunk: header, a copy of data[0..len) and CRLF. len 0 queues nothing (an
 *  empty chunk would end the body). Returns 0 or PTC_ENOMEM (nothing queued). */
PTC_MUST_CHECK int ptc_http_write_chunk(ptc_chunkq_t *q, const void *data, size_t len);

/** Queues the last chunk with an empty trailer section: "0\r\n\r\n". 0 or PTC_ENOMEM. */
PTC_MUST_CHECK int ptc_http_write_last_chunk(ptc_chunkq_t *q);

/** The standard reason phrase for a status code ("Not Found"), or "" if unknown. */
const char *ptc_http_reason_phrase(int status);

#endif
