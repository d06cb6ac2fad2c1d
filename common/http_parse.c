/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 parser of common/http (see http.h for the contract): glue over llhttp 8.1.
 *
 * llhttp is compiled in its lenient mode. Among other things it accepts obsolete line
 * folding, whitespace between a header name and the colon ("Host : x"), HTTP/0.9 and 2.0
 * request lines, bytes above 0x7E in the request target, control characters in the reason
 * phrase, bare LF after the start line, and chunk data that is not followed by CRLF. So
 * llhttp here is the state machine that finds where a head ends and walks the body, and two
 * strict scanners of our own check the same bytes: scan_lines() over the stored head and
 * chunk_scan() over chunked bodies. A message passes only if both sides accept it and agree
 * on its framing (cross_check()); when they disagree the message is refused as ambiguous.
 *
 * llhttp callbacks only record (STYLE §6): the end of the head, a body span and the end of
 * the message each pause llhttp with HPE_PAUSED, and ptc_http_parser_feed() turns that into
 * one event. Heads are parsed from a bounded copy (the input buffer may move between feeds);
 * bodies are slices of the caller's input. Depends on common/buf and llhttp only; the header
 * helpers it uses live in http_write.c.
 */
#include "common/http.h"
#include "common/url.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

/* ---- reasons (stable strings: tests and logs rely on them) ---- */

static const char R_BOTH_CL_TE[] = "both Content-Length and Transfer-Encoding";
static const char R_DUP_CL[] = "duplicate Content-Length";
static const char R_BAD_CL[] = "invalid Content-Length";
static const char R_TE_NOT_CHUNKED[] = "Transfer-Encoding must end with chunked";
static const char R_TE_UNSUPPORTED[] = "unsupported transfer coding";
static const char R_TE_BAD[] = "invalid Transfer-Encoding";
static const char R_TE_HTTP10[] = "Transfer-Encoding in HTTP/1.0";
static const char R_BAD_CHUNK_SIZE[] = "invalid chunk size";
static const char R_BAD_CHUNK_EXT[] = "invalid chunk extension";
static const char R_CHUNK_LINE_LONG[] = "chunk line too long";
static const char R_CHUNK_CRLF[] = "missing CRLF after chunk data";
static const char R_BAD_CHUNKED[] = "malformed chunked body";
static const char R_OBS_FOLD[] = "obsolete line folding";
static const char R_BAD_NAME[] = "invalid header name";
static const char R_BAD_VALUE[] = "invalid header value";
static const char R_BARE_LF[] = "bare LF line ending";
static const char R_HEAD_TOO_LARGE[] = "header section too large";
static const char R_URL_TOO_LONG[] = "URL too long";
static const char R_TOO_MANY[] = "too many headers";
static const char R_TRAILER_TOO_LARGE[] = "trailer section too large";
static const char R_BAD_REQ_LINE[] = "invalid request line";
static const char R_BAD_METHOD[] = "invalid method";
static const char R_UNKNOWN_METHOD[] = "unknown method";
static const char R_BAD_TARGET[] = "invalid request target";
static const char R_BAD_VERSION[] = "unsupported HTTP version";
static const char R_BAD_STATUS_LINE[] = "invalid status line";
static const char R_DUP_HOST[] = "duplicate Host";
static const char R_NO_HOST[] = "missing Host";
static const char R_AMBIGUOUS[] = "ambiguous message framing";
static const char R_MALFORMED[] = "malformed message";
static const char R_INCOMPLETE[] = "incomplete message";
static const char R_NOMEM[] = "out of memory";

/* Heads are copied into storage in blocks so that bytes after the end of a head (a body,
 * pipelined requests) are copied at most once per message and at most this much. */
#define HEAD_BLOCK 4096
/* A chunk-size line with its extensions (RFC 9112 §7.1.1 sets no bound; we do). */
#define MAX_CHUNK_LINE 4096

/* ---- character helpers ---- */

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* ---- parser state ---- */

typedef enum pstate {
    ST_HEAD,            /* reading a head (or waiting for the next message) */
    ST_BODY,            /* llhttp walks the body */
    ST_DONE_PENDING,    /* bodyless message: DONE is the next event */
    ST_UPGRADE_PENDING, /* DONE of an upgrade message was reported: UPGRADE is next */
    ST_UPGRADED,        /* the rest of the connection is another protocol */
    ST_CLOSED,          /* the last message on the connection is complete */
    ST_DEAD,            /* an error was reported; sticky */
} pstate_t;

typedef enum pending {
    PEND_NONE,
    PEND_HEAD,
    PEND_BODY,
    PEND_DONE,
} pending_t;

typedef enum cstate {
    CS_SIZE0,     /* first hex digit of a chunk size */
    CS_SIZE,      /* more hex digits, extension, or CR */
    CS_EXT_SEMI,  /* BWS, expecting ';' */
    CS_EXT_NAME0, /* BWS, expecting an extension name */
    CS_EXT_NAME,  /* in a name: end, BWS, '=' or ';' */
    CS_EXT_EQ,    /* BWS after a name: '=' or ';' */
    CS_EXT_VAL0,  /* BWS after '=': a token or a quoted string */
    CS_EXT_VAL,   /* in a token value */
    CS_EXT_QUOTE, /* in a quoted string */
    CS_EXT_ESC,   /* after a backslash in a quoted string */
    CS_EXT_QEND,  /* after the closing quote: end, BWS or ';' */
    CS_SIZE_LF,   /* CR seen at the end of the size line */
    CS_DATA,      /* chunk data */
    CS_DATA_CR,   /* CRLF after chunk data */
    CS_DATA_LF,
    CS_TR_START, /* start of a trailer line, or the final CRLF */
    CS_TR_NAME,
    CS_TR_VALUE,
    CS_TR_LF,
    CS_END_LF, /* LF of the final CRLF */
    CS_DONE,
} cstate_t;

typedef struct chunk_scan {
    cstate_t st;
    uint64_t size;      /* size being parsed, then bytes left in the chunk */
    size_t line_len;    /* bytes in the current size line */
    size_t trailer_len; /* bytes in the trailer section */
} chunk_scan_t;

struct ptc_http_parser {
    llhttp_t ll;
    ptc_http_kind_t kind;
    ptc_http_limits_t lim;
    pstate_t state;
    pstate_t after_done; /* where ST_DONE_PENDING leads */
    pending_t pending;   /* recorded by the llhttp callback that paused */
    bool msg_fresh;      /* the last message ended: the next input starts a new one */
    bool has_head;
    /* head storage: the raw head bytes, bounded by lim.max_head_bytes */
    uint8_t *store;
    size_t store_len;
    size_t store_cap;
    size_t ll_hdr_cnt; /* header fields llhttp saw in the head */
    ptc_http_header_t *hdrs;
    size_t hdr_cap;
    ptc_http_head_t head;
    /* body */
    ptc_slice_t body;
    uint64_t body_seen;
    chunk_scan_t cs;
    /* response parsers: what the request was */
    bool req_head;
    bool req_connect;
    ptc_http_error_t err;
};

static int on_header_field_complete(llhttp_t *ll);
static int on_headers_complete(llhttp_t *ll);
static int on_body(llhttp_t *ll, const char *at, size_t len);
static int on_message_complete(llhttp_t *ll);

static const llhttp_settings_t settings = {
    .on_header_field_complete = on_header_field_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Records the first error and kills the parser. A response parser's peer is a backend, so
 * the status a gateway answers with is always 502. */
static int fail(ptc_http_parser_t *p, int code, const char *reason, int status, int ll_errno)
{
    if (p->state == ST_DEAD) {
        return p->err.code;
    }
    p->err.code = code;
    p->err.reason = reason;
    p->err.status = p->kind == PTC_HTTP_RESPONSE ? 502 : status;
    p->err.llhttp_errno = ll_errno;
    p->state = ST_DEAD;
    return code;
}

static int fail_http(ptc_http_parser_t *p, const char *reason, int status)
{
    return fail(p, PTC_EHTTP, reason, status, 0);
}

/* ---- llhttp callbacks: record, pause, never act ---- */

static int on_header_field_complete(llhttp_t *ll)
{
    ptc_http_parser_t *p = ll->data;
    if (p->state == ST_HEAD) {
        p->ll_hdr_cnt++;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *ll)
{
    ptc_http_parser_t *p = ll->data;
    p->pending = PEND_HEAD;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *ll, const char *at, size_t len)
{
    ptc_http_parser_t *p = ll->data;
    if (len == 0) {
        return 0;
    }
    p->pending = PEND_BODY;
    p->body.ptr = (const uint8_t *)at;
    p->body.len = len;
    return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *ll)
{
    ptc_http_parser_t *p = ll->data;
    p->pending = PEND_DONE;
    return HPE_PAUSED;
}

/* ---- lifecycle ---- */

ptc_http_parser_t *ptc_http_parser_new(ptc_http_kind_t kind, const ptc_http_limits_t *limits)
{
    assert(kind == PTC_HTTP_REQUEST || kind == PTC_HTTP_RESPONSE);
    ptc_http_parser_t *p = ptc_xcalloc(1, sizeof(*p));
    p->kind = kind;
    if (limits != NULL) {
        p->lim = *limits;
    }
    if (p->lim.max_head_bytes == 0) {
        p->lim.max_head_bytes = PTC_HTTP_DEFAULT_MAX_HEAD_BYTES;
    }
    if (p->lim.max_headers == 0) {
        p->lim.max_headers = PTC_HTTP_DEFAULT_MAX_HEADERS;
    }
    if (p->lim.max_url_len == 0) {
        p->lim.max_url_len = PTC_HTTP_DEFAULT_MAX_URL_LEN;
    }
    llhttp_init(&p->ll, kind == PTC_HTTP_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE, &settings);
    p->ll.data = p;
    p->state = ST_HEAD;
    p->msg_fresh = true;
    return p;
}

void ptc_http_parser_free(ptc_http_parser_t *p)
{
    if (p == NULL) {
        return;
    }
    free(p->store);
    free(p->hdrs);
    free(p);
}

static void start_message(ptc_http_parser_t *p);

void ptc_http_parser_trim(ptc_http_parser_t *p)
{
    if (!p->msg_fresh) {
        return;
    }
    start_message(p);
    p->msg_fresh = true;
    free(p->store);
    p->store = NULL;
    p->store_cap = 0;
    free(p->hdrs);
    p->hdrs = NULL;
    p->hdr_cap = 0;
}

const ptc_http_error_t *ptc_http_parser_error(const ptc_http_parser_t *p)
{
    return p->state == ST_DEAD ? &p->err : NULL;
}

const ptc_http_head_t *ptc_http_parser_head(const ptc_http_parser_t *p)
{
    return p->has_head ? &p->head : NULL;
}

void ptc_http_parser_set_request_method(ptc_http_parser_t *p, ptc_slice_t method)
{
    /* Methods are case-sensitive (RFC 9110 §9.1). */
    p->req_head = ptc_slice_eq(method, "HEAD");
    p->req_connect = ptc_slice_eq(method, "CONNECT");
}

int ptc_http_parser_resume_after_upgrade(ptc_http_parser_t *p)
{
    if (p->state != ST_UPGRADED || !p->head.keep_alive) {
        return PTC_ESTATE;
    }
    p->state = ST_HEAD;
    return 0;
}

/* The next input begins a new message: the previous head's storage is reused. */
static void start_message(ptc_http_parser_t *p)
{
    p->msg_fresh = false;
    p->has_head = false;
    p->store_len = 0;
    p->ll_hdr_cnt = 0;
    p->body_seen = 0;
    memset(&p->head, 0, sizeof(p->head));
    memset(&p->cs, 0, sizeof(p->cs));
}

/* Ends the message: llhttp starts from scratch for the next one (we decide keep-alive and
 * upgrades ourselves, so llhttp's post-message logic is never relied upon). */
static void end_message(ptc_http_parser_t *p)
{
    llhttp_reset(&p->ll);
    p->msg_fresh = true;
    if (p->kind == PTC_HTTP_RESPONSE) {
        p->req_head = false;
        p->req_connect = false;
    }
    if (p->head.upgrade) {
        p->state = ST_UPGRADE_PENDING;
    } else if (p->head.keep_alive) {
        p->state = ST_HEAD;
    } else {
        p->state = ST_CLOSED;
    }
}

/* ---- strict head scanner ---- */

/*
 * State of one scan over the stored head. The scan runs in two modes: `complete` when llhttp
 * reported the end of the head (the stored bytes must then be exactly one valid head and
 * the results are filled in), and partial when llhttp failed or the storage filled up (the
 * scan then only looks for a more precise reason in the bytes seen so far, so that the
 * reason does not depend on how the input was split).
 */
typedef struct scan {
    ptc_http_parser_t *p;
    bool complete;
    size_t hdr_cnt;
    bool has_cl;
    bool has_te;
    bool has_host;
    uint64_t cl;
    bool start_done; /* the start line ended */
} scan_t;

static int scan_fail(scan_t *sc, const char *reason, int status)
{
    return fail_http(sc->p, reason, status);
}

/* "HTTP/" DIGIT "." DIGIT, compared as far as `len` goes. Returns 1 when all 8 bytes
 * match, 0 for a matching prefix, -1 otherwise. */
static int match_version(const uint8_t *s, size_t len)
{
    static const char pat[] = "HTTP/d.d";
    for (size_t i = 0; i < 8; i++) {
        if (i == len) {
            return 0;
        }
        if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != (uint8_t)pat[i]) {
            return -1;
        }
    }
    return 1;
}

static int check_version(scan_t *sc, const uint8_t *v)
{
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) {
        return scan_fail(sc, R_BAD_VERSION, 505);
    }
    sc->p->head.minor_version = v[7] - '0';
    return 0;
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 §3). */
static int scan_request_line(scan_t *sc, const uint8_t *s, size_t len, bool ended)
{
    ptc_http_parser_t *p = sc->p;
    size_t i = 0;
    while (i < len && ptc_http_is_tchar(s[i])) {
        i++;
    }
    if (i == len) {
        return ended ? scan_fail(sc, R_BAD_REQ_LINE, 400) : 0;
    }
    if (s[i] != ' ') {
        return scan_fail(sc, R_BAD_METHOD, 400);
    }
    if (i == 0) {
        return scan_fail(sc, R_BAD_REQ_LINE, 400);
    }
    p->head.method.ptr = s;
    p->head.method.len = i;
    size_t t = ++i;
    while (i < len && s[i] >= 0x21 && s[i] <= 0x7e) {
        if (i - t >= p->lim.max_url_len) {
            return fail(p, PTC_ELIMIT, R_URL_TOO_LONG, 414, 0);
        }
        i++;
    }
    if (i == len) {
        if (!ended) {
            return 0;
        }
        /* "GET /" alone is an HTTP/0.9 request. */
        return scan_fail(sc, i == t ? R_BAD_REQ_LINE : R_BAD_VERSION, i == t ? 400 : 505);
    }
    if (s[i] != ' ') {
        return scan_fail(sc, R_BAD_TARGET, 400);
    }
    if (i == t) {
        return scan_fail(sc, R_BAD_REQ_LINE, 400);
    }
    p->head.target.ptr = s + t;
    p->head.target.len = i - t;
    i++;
    int m = match_version(s + i, len - i);
    if (m < 0 || (m > 0 && len - i > 8) || (m == 0 && ended)) {
        return scan_fail(sc, R_BAD_REQ_LINE, 400);
    }
    return m > 0 ? check_version(sc, s + i) : 0;
}

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4). A missing
 * SP after the code is tolerated: servers send it and the reason carries no meaning. */
static int scan_status_line(scan_t *sc, const uint8_t *s, size_t len, bool ended)
{
    ptc_http_parser_t *p = sc->p;
    int m = match_version(s, len);
    if (m < 0 || (m == 0 && ended)) {
        return scan_fail(sc, R_BAD_STATUS_LINE, 502);
    }
    if (m == 0) {
        return 0;
    }
    int r = check_version(sc, s);
    if (r < 0) {
        return r;
    }
    size_t i = 8;
    if (i == len) {
        return ended ? scan_fail(sc, R_BAD_STATUS_LINE, 502) : 0;
    }
    if (s[i++] != ' ') {
        return scan_fail(sc, R_BAD_STATUS_LINE, 502);
    }
    int status = 0;
    for (int d = 0; d < 3; d++, i++) {
        if (i == len) {
            return ended ? scan_fail(sc, R_BAD_STATUS_LINE, 502) : 0;
        }
        if (s[i] < '0' || s[i] > '9') {
            return scan_fail(sc, R_BAD_STATUS_LINE, 502);
        }
        status = status * 10 + (s[i] - '0');
    }
    if (status < 100 || status > 599) {
        return scan_fail(sc, R_BAD_STATUS_LINE, 502);
    }
    p->head.status = status;
    p->head.reason.ptr = s + len;
    p->head.reason.len = 0;
    if (i == len) {
        return 0;
    }
    if (s[i++] != ' ') {
        return scan_fail(sc, R_BAD_STATUS_LINE, 502);
    }
    for (size_t j = i; j < len; j++) {
        if (!ptc_http_is_value_char(s[j])) {
            return scan_fail(sc, R_BAD_STATUS_LINE, 502);
        }
    }
    p->head.reason.ptr = s + i;
    p->head.reason.len = len - i;
    return 0;
}

/* Content-Length = 1*DIGIT (RFC 9110 §8.6): no sign, no spaces inside, no list. Values
 * beyond 2^63-1 are refused rather than wrapped. */
static bool parse_content_length(ptc_slice_t v, uint64_t *out)
{
    if (v.len == 0) {
        return false;
    }
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') {
            return false;
        }
        unsigned d = v.ptr[i] - '0';
        if (n > (UINT64_MAX / 2 - d) / 10) {
            return false;
        }
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

static int store_header(scan_t *sc, ptc_slice_t name, ptc_slice_t value)
{
    ptc_http_parser_t *p = sc->p;
    if (p->head.header_cnt == p->hdr_cap) {
        size_t cap = p->hdr_cap == 0 ? 16 : p->hdr_cap * 2;
        if (cap > p->lim.max_headers) {
            cap = p->lim.max_headers;
        }
        ptc_http_header_t *h = realloc(p->hdrs, cap * sizeof(*h));
        if (h == NULL) {
            return fail(p, PTC_ENOMEM, R_NOMEM, 503, 0);
        }
        p->hdrs = h;
        p->hdr_cap = cap;
    }
    p->hdrs[p->head.header_cnt].name = name;
    p->hdrs[p->head.header_cnt].value = value;
    p->head.header_cnt++;
    return 0;
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 §5). `ended` is false for the
 * last, unterminated line of a partial scan. */
static int scan_field_line(scan_t *sc, const uint8_t *s, size_t len, bool ended)
{
    ptc_http_parser_t *p = sc->p;
    bool is_req = p->kind == PTC_HTTP_REQUEST;
    if (len == 0) {
        return 0;
    }
    /* RFC 9112 §5.2: obs-fold is refused; so is whitespace before the first field
     * (§2.2), the same shape one line earlier. */
    if (is_ows(s[0])) {
        return scan_fail(sc, R_OBS_FOLD, 400);
    }
    size_t i = 0;
    while (i < len && ptc_http_is_tchar(s[i])) {
        i++;
    }
    if (i == len && !ended) {
        return 0;
    }
    if (i == len || s[i] != ':' || i == 0) {
        return scan_fail(sc, R_BAD_NAME, 400);
    }
    ptc_slice_t name = {s, i};
    if (++sc->hdr_cnt > p->lim.max_headers) {
        return fail(p, PTC_ELIMIT, R_TOO_MANY, 431, 0);
    }
    /* Framing conflicts are decided on the name alone, before llhttp looks at the value. */
    bool is_cl = ptc_slice_case_eq(name, "content-length");
    bool is_te = ptc_slice_case_eq(name, "transfer-encoding");
    if (is_cl) {
        if (sc->has_cl) {
            return scan_fail(sc, R_DUP_CL, 400);
        }
        if (sc->has_te) {
            return scan_fail(sc, R_BOTH_CL_TE, 400);
        }
        sc->has_cl = true;
    } else if (is_te) {
        if (sc->has_cl) {
            return scan_fail(sc, R_BOTH_CL_TE, 400);
        }
        sc->has_te = true;
    } else if (is_req && ptc_slice_case_eq(name, "host")) {
        if (sc->has_host) {
            return scan_fail(sc, R_DUP_HOST, 400);
        }
        sc->has_host = true;
    }
    for (size_t j = i + 1; j < len; j++) {
        if (!ptc_http_is_value_char(s[j])) {
            return scan_fail(sc, R_BAD_VALUE, 400);
        }
    }
    if (!ended) {
        return 0;
    }
    ptc_slice_t value = {s + i + 1, len - i - 1};
    value = ptc_http_trim_ows(value);
    if (is_cl && !parse_content_length(value, &sc->cl)) {
        return scan_fail(sc, R_BAD_CL, 400);
    }
    if (sc->complete) {
        return store_header(sc, name, value);
    }
    return 0;
}

/*
 * Scans store[0..end). Grammar (RFC 9112 §2.1, §2.2): *( CRLF ) start-line CRLF
 * *( field-line CRLF ) CRLF, with every line ending in CRLF (no bare LF, no bare CR).
 * Returns 0 or the error it recorded.
 */
static int scan_lines(scan_t *sc, size_t end)
{
    ptc_http_parser_t *p = sc->p;
    const uint8_t *s = p->store;
    size_t pos = 0;
    /* Empty lines before the start line are ignored (RFC 9112 §2.2). */
    while (pos + 1 < end && s[pos] == '\r' && s[pos + 1] == '\n') {
        pos += 2;
    }
    bool first = true;
    for (;;) {
        if (pos == end) {
            return sc->complete ? scan_fail(sc, R_MALFORMED, 400) : 0;
        }
        const uint8_t *lf = memchr(s + pos, '\n', end - pos);
        if (!first && s[pos] == '\r') {
            /* The blank line ending the head. */
            if (pos + 1 == end) {
                return sc->complete ? scan_fail(sc, R_MALFORMED, 400) : 0;
            }
            if (s[pos + 1] != '\n') {
                return scan_fail(sc, R_BAD_NAME, 400);
            }
            if (sc->complete && pos + 2 != end) {
                return scan_fail(sc, R_MALFORMED, 400);
            }
            return 0;
        }
        size_t line_end;
        bool ended = lf != NULL;
        if (ended) {
            line_end = (size_t)(lf - s);
            if (line_end == pos || s[line_end - 1] != '\r') {
                return scan_fail(sc, R_BARE_LF, 400);
            }
            line_end--;
        } else {
            line_end = end;
            /* A CR at the very end of a partial scan is taken as the end of the line: llhttp
             * reports some errors right after consuming a CR, before it has seen the LF (or
             * whether there is one), and the reason must not depend on that. */
            if (line_end > pos && s[line_end - 1] == '\r') {
                line_end--;
                ended = true;
            }
        }
        int r;
        if (first) {
            r = p->kind == PTC_HTTP_REQUEST ? scan_request_line(sc, s + pos, line_end - pos, ended)
                                            : scan_status_line(sc, s + pos, line_end - pos, ended);
            sc->start_done = ended;
        } else {
            r = scan_field_line(sc, s + pos, line_end - pos, ended);
        }
        if (r < 0) {
            return r;
        }
        if (lf == NULL) {
            return sc->complete ? scan_fail(sc, R_MALFORMED, 400) : 0;
        }
        first = false;
        pos = (size_t)(lf - s) + 1;
    }
}

/* A request's or response's Transfer-Encoding list, all headers of that name joined
 * (RFC 9112 §6.1). Portico understands the chunked coding only. */
static int analyze_te(scan_t *sc, bool *chunked)
{
    ptc_http_parser_t *p = sc->p;
    bool is_req = p->kind == PTC_HTTP_REQUEST;
    size_t n = 0;
    size_t n_chunked = 0;
    bool last_chunked = false;
    /* RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing. */
    if (p->head.minor_version == 0) {
        return scan_fail(sc, R_TE_HTTP10, 400);
    }
    for (size_t h = 0; h < p->head.header_cnt; h++) {
        if (!ptc_slice_case_eq(p->hdrs[h].name, "transfer-encoding")) {
            continue;
        }
        ptc_slice_t v = p->hdrs[h].value;
        size_t start = 0;
        for (size_t i = 0; i <= v.len; i++) {
            if (i < v.len && v.ptr[i] != ',') {
                continue;
            }
            ptc_slice_t elem = ptc_http_trim_ows((ptc_slice_t){v.ptr + start, i - start});
            start = i + 1;
            if (elem.len == 0) {
                return scan_fail(sc, R_TE_BAD, 400);
            }
            n++;
            last_chunked = ptc_slice_case_eq(elem, "chunked");
            if (last_chunked) {
                n_chunked++;
            } else if (!ptc_http_is_token(elem)) {
                /* Parameters (";q=") or stray characters: not a coding we can name. */
                bool has_param = memchr(elem.ptr, ';', elem.len) != NULL;
                return scan_fail(sc, has_param ? R_TE_UNSUPPORTED : R_TE_BAD, 501);
            }
        }
    }
    if (!last_chunked) {
        /* §6.3 rule 4: a request must be refused; a response is read until close. */
        if (is_req) {
            return scan_fail(sc, R_TE_NOT_CHUNKED, 400);
        }
        *chunked = false;
        return 0;
    }
    if (n_chunked > 1) {
        /* §6.1: a sender must not apply chunked more than once. */
        return scan_fail(sc, R_TE_BAD, 400);
    }
    if (n > 1) {
        return scan_fail(sc, R_TE_UNSUPPORTED, 501);
    }
    *chunked = true;
    return 0;
}

/* Connection tokens, Host, Expect, Upgrade, then body framing and keep-alive. */
static int analyze_head(scan_t *sc)
{
    ptc_http_parser_t *p = sc->p;
    ptc_http_head_t *h = &p->head;
    bool is_req = p->kind == PTC_HTTP_REQUEST;
    bool has_upgrade = false;
    h->is_request = is_req;
    h->headers = p->hdrs;
    for (size_t i = 0; i < h->header_cnt; i++) {
        ptc_slice_t n = p->hdrs[i].name;
        ptc_slice_t v = p->hdrs[i].value;
        if (ptc_slice_case_eq(n, "connection")) {
            ptc_slice_t tok;
            while (ptc_http_list_next(&v, &tok)) {
                if (ptc_slice_case_eq(tok, "close")) {
                    h->conn |= PTC_HTTP_CONN_CLOSE;
                } else if (ptc_slice_case_eq(tok, "keep-alive")) {
                    h->conn |= PTC_HTTP_CONN_KEEP_ALIVE;
                } else if (ptc_slice_case_eq(tok, "upgrade")) {
                    h->conn |= PTC_HTTP_CONN_UPGRADE;
                }
            }
        } else if (is_req && ptc_slice_case_eq(n, "host")) {
            h->host = v;
        } else if (is_req && ptc_slice_case_eq(n, "expect")) {
            h->expect_continue = h->expect_continue || ptc_slice_case_eq(v, "100-continue");
        } else if (ptc_slice_case_eq(n, "upgrade")) {
            has_upgrade = true;
        }
    }
    /* RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400. */
    if (is_req && h->minor_version == 1 && !sc->has_host) {
        return scan_fail(sc, R_NO_HOST, 400);
    }
    bool chunked = false;
    if (sc->has_te) {
        int r = analyze_te(sc, &chunked);
        if (r < 0) {
            return r;
        }
    }
    if (is_req) {
        bool is_connect = ptc_slice_eq(h->method, "CONNECT");
        h->upgrade = is_connect || (has_upgrade && (h->conn & PTC_HTTP_CONN_UPGRADE));
        if (is_connect) {
            /* A CONNECT request has no content (RFC 9110 §9.3.6); llhttp agrees. */
            h->body = PTC_HTTP_BODY_NONE;
        } else if (chunked) {
            h->body = PTC_HTTP_BODY_CHUNKED;
        } else if (sc->has_cl && sc->cl > 0) {
            h->body = PTC_HTTP_BODY_LENGTH;
        }
    } else {
        int st = h->status;
        if (st == 101 || (p->req_connect && st / 100 == 2)) {
            h->upgrade = true;
        } else if (st / 100 == 1 || st == 204 || st == 304 || p->req_head) {
            /* RFC 9112 §6.3 rule 1: no content whatever the headers say. */
        } else if (chunked) {
            h->body = PTC_HTTP_BODY_CHUNKED;
        } else if (sc->has_te || !sc->has_cl) {
            h->body = PTC_HTTP_BODY_UNTIL_CLOSE;
        } else if (sc->cl > 0) {
            h->body = PTC_HTTP_BODY_LENGTH;
        }
    }
    if (h->body == PTC_HTTP_BODY_LENGTH) {
        h->content_length = sc->cl;
    }
    if (h->minor_version == 1) {
        h->keep_alive = !(h->conn & PTC_HTTP_CONN_CLOSE);
    } else {
        h->keep_alive = (h->conn & PTC_HTTP_CONN_KEEP_ALIVE) && !(h->conn & PTC_HTTP_CONN_CLOSE);
    }
    if (h->body == PTC_HTTP_BODY_UNTIL_CLOSE) {
        h->keep_alive = false;
    }
    return 0;
}

/* llhttp must have read the same head as we did; otherwise the two parsers disagree about
 * the message and forwarding it could smuggle one. */
static int cross_check(ptc_http_parser_t *p)
{
    const llhttp_t *ll = &p->ll;
    const ptc_http_head_t *h = &p->head;
    bool same =
        ll->http_major == 1 && ll->http_minor == h->minor_version && p->ll_hdr_cnt == h->header_cnt;
    if (p->kind == PTC_HTTP_REQUEST) {
        same = same && ptc_slice_eq(h->method, llhttp_method_name((llhttp_method_t)ll->method));
    } else {
        same = same && ll->status_code == h->status;
    }
    uint16_t fl = ll->flags;
    switch (h->body) {
    case PTC_HTTP_BODY_NONE:
        break;
    case PTC_HTTP_BODY_LENGTH:
        same = same && (fl & F_CONTENT_LENGTH) && !(fl & (F_CHUNKED | F_TRANSFER_ENCODING)) &&
               ll->content_length == h->content_length;
        break;
    case PTC_HTTP_BODY_CHUNKED:
        same = same && (fl & F_CHUNKED) && !(fl & F_CONTENT_LENGTH);
        break;
    case PTC_HTTP_BODY_UNTIL_CLOSE:
        same = same && !(fl & (F_CHUNKED | F_CONTENT_LENGTH));
        break;
    }
    return same ? 0 : fail_http(p, R_AMBIGUOUS, 400);
}

/* ---- feeding ---- */

static int ensure_store(ptc_http_parser_t *p, size_t need)
{
    if (need <= p->store_cap) {
        return 0;
    }
    size_t cap = p->store_cap == 0 ? 1024 : p->store_cap;
    while (cap < need) {
        cap *= 2;
    }
    if (cap > p->lim.max_head_bytes) {
        cap = p->lim.max_head_bytes;
    }
    uint8_t *s = realloc(p->store, cap);
    if (s == NULL) {
        return fail(p, PTC_ENOMEM, R_NOMEM, 503, 0);
    }
    p->store = s;
    p->store_cap = cap;
    return 0;
}

static bool contains(const char *s, const char *needle)
{
    return s != NULL && strstr(s, needle) != NULL;
}

/* Converts an llhttp error into ours. Called only when our own scanners found nothing more
 * precise in the same bytes. */
static int fail_llhttp(ptc_http_parser_t *p, llhttp_errno_t rc)
{
    const char *why = llhttp_get_error_reason(&p->ll);
    bool in_body = p->state == ST_BODY;
    const char *reason = R_MALFORMED;
    int status = 400;
    switch (rc) {
    case HPE_INVALID_METHOD:
        /* The token was fine (the scanner checked it): llhttp does not know the method. */
        reason = R_UNKNOWN_METHOD;
        status = 501;
        break;
    case HPE_INVALID_URL:
        reason = R_BAD_TARGET;
        break;
    case HPE_INVALID_VERSION:
    case HPE_PAUSED_H2_UPGRADE:
        reason = R_BAD_VERSION;
        status = 505;
        break;
    case HPE_INVALID_CONSTANT:
    case HPE_INVALID_STATUS:
        reason = p->kind == PTC_HTTP_REQUEST ? R_BAD_REQ_LINE : R_BAD_STATUS_LINE;
        break;
    case HPE_INVALID_HEADER_TOKEN:
        reason = contains(why, "value") ? R_BAD_VALUE : R_BAD_NAME;
        break;
    case HPE_UNEXPECTED_SPACE:
        reason = R_OBS_FOLD;
        break;
    case HPE_INVALID_CONTENT_LENGTH:
        reason = R_BAD_CL;
        break;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        reason = contains(why, "Duplicate") ? R_DUP_CL : R_BOTH_CL_TE;
        break;
    case HPE_INVALID_TRANSFER_ENCODING:
        reason = R_TE_NOT_CHUNKED;
        break;
    case HPE_INVALID_CHUNK_SIZE:
        reason = R_BAD_CHUNK_SIZE;
        break;
    case HPE_STRICT:
        reason = contains(why, "chunk ext") ? R_BAD_CHUNK_EXT : R_MALFORMED;
        break;
    case HPE_LF_EXPECTED:
    case HPE_CR_EXPECTED:
        reason = in_body ? R_BAD_CHUNKED : R_MALFORMED;
        break;
    default:
        break;
    }
    return fail(p, PTC_EHTTP, reason, status, (int)rc);
}

/*
 * How much of the stored head explains an llhttp error reported at store[err_at]. llhttp
 * reports some errors at the byte it rejects and others right after the byte it consumed
 * last (at the end of the input when the input ends there). To get the same window however
 * the input was split, a fresh llhttp parses store[0..err_at): if that alone fails, the
 * byte at err_at played no part.
 */
static size_t error_window(ptc_http_parser_t *p, size_t err_at)
{
    if (err_at >= p->store_len) {
        return p->store_len;
    }
    llhttp_settings_t none;
    llhttp_settings_init(&none);
    llhttp_t probe;
    llhttp_init(&probe, p->kind == PTC_HTTP_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE, &none);
    llhttp_errno_t rc = llhttp_execute(&probe, (const char *)p->store, err_at);
    return rc == HPE_OK ? err_at + 1 : err_at;
}

/* Scans what is stored for a precise reason, then falls back to llhttp's. */
static int fail_head(ptc_http_parser_t *p, llhttp_errno_t rc, size_t err_at)
{
    scan_t sc = {.p = p, .complete = false};
    int r = scan_lines(&sc, error_window(p, err_at));
    if (r < 0) {
        p->err.llhttp_errno = (int)rc;
        return r;
    }
    return fail_llhttp(p, rc);
}

/* The storage is full and the head has not ended. */
static int fail_head_limit(ptc_http_parser_t *p)
{
    scan_t sc = {.p = p, .complete = false};
    int r = scan_lines(&sc, p->store_len);
    if (r < 0) {
        return r;
    }
    if (p->kind == PTC_HTTP_REQUEST && !sc.start_done) {
        return fail(p, PTC_ELIMIT, R_URL_TOO_LONG, 414, 0);
    }
    return fail(p, PTC_ELIMIT, R_HEAD_TOO_LARGE, 431, 0);
}

/* llhttp paused at the end of a head stored in store[0..store_len). */
static int complete_head(ptc_http_parser_t *p, ptc_http_event_t *ev)
{
    scan_t sc = {.p = p, .complete = true};
    p->head.header_cnt = 0;
    int r = scan_lines(&sc, p->store_len);
    if (r == 0) {
        r = analyze_head(&sc);
    }
    if (r == 0) {
        r = cross_check(p);
    }
    if (r < 0) {
        return r;
    }
    p->has_head = true;
    ev->head = &p->head;
    if (p->kind == PTC_HTTP_RESPONSE && p->head.status / 100 == 1 && p->head.status != 101) {
        /* Interim response (RFC 9110 §15.2): the final response follows on the same
         * connection; the request context stays. */
        ev->type = PTC_HTTP_EV_INTERIM;
        llhttp_reset(&p->ll);
        p->msg_fresh = true;
        return 0;
    }
    ev->type = PTC_HTTP_EV_HEAD;
    if (p->head.body == PTC_HTTP_BODY_NONE) {
        /* llhttp would have its own opinion on some of these (a 204 with Content-Length, a
         * response to HEAD): it is not asked, and starts afresh with the next message. */
        p->state = ST_DONE_PENDING;
        return 0;
    }
    p->state = ST_BODY;
    p->cs.st = CS_SIZE0;
    llhttp_resume(&p->ll);
    return 0;
}

static ssize_t feed_head(ptc_http_parser_t *p, const uint8_t *data, size_t len,
                         ptc_http_event_t *ev)
{
    if (len == 0) {
        return 0;
    }
    if (p->msg_fresh) {
        start_message(p);
    }
    size_t done = 0;
    while (done < len) {
        size_t room = p->lim.max_head_bytes - p->store_len;
        if (room == 0) {
            break;
        }
        size_t n = len - done;
        n = n < room ? n : room;
        n = n < HEAD_BLOCK ? n : HEAD_BLOCK;
        int r = ensure_store(p, p->store_len + n);
        if (r < 0) {
            return r;
        }
        size_t base = p->store_len;
        memcpy(p->store + base, data + done, n);
        p->store_len += n;
        p->pending = PEND_NONE;
        llhttp_errno_t rc = llhttp_execute(&p->ll, (const char *)p->store + base, n);
        if (rc == HPE_OK) {
            done += n;
            continue;
        }
        size_t used = (size_t)((const uint8_t *)llhttp_get_error_pos(&p->ll) - (p->store + base));
        assert(used <= n);
        if (rc == HPE_PAUSED && p->pending == PEND_HEAD) {
            p->store_len = base + used;
            r = complete_head(p, ev);
            if (r < 0) {
                return r;
            }
            return (ssize_t)(done + used);
        }
        return fail_head(p, rc, base + used);
    }
    if (p->store_len == p->lim.max_head_bytes) {
        return fail_head_limit(p);
    }
    return (ssize_t)done;
}

/* Why a chunk scan stopped early. */
typedef struct chunk_err {
    int code;
    const char *reason;
} chunk_err_t;

/* One byte of a chunk-size line after the size: RFC 9112 §7.1.1
 * chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ). Returns 1 at the CR that
 * ends the line, 0 to go on, or -1 with *reason set. */
static int chunk_ext_byte(chunk_scan_t *cs, uint8_t c, const char **reason)
{
    *reason = R_BAD_CHUNK_EXT;
    switch (cs->st) {
    case CS_EXT_SEMI:
        if (c == ';') {
            cs->st = CS_EXT_NAME0;
        } else if (!is_ows(c)) {
            return -1;
        }
        return 0;
    case CS_EXT_NAME0:
        if (ptc_http_is_tchar(c)) {
            cs->st = CS_EXT_NAME;
        } else if (!is_ows(c)) {
            return -1;
        }
        return 0;
    case CS_EXT_NAME:
    case CS_EXT_EQ:
        if (c == '\r') {
            return cs->st == CS_EXT_NAME ? 1 : -1;
        }
        if (c == '=') {
            cs->st = CS_EXT_VAL0;
        } else if (c == ';') {
            cs->st = CS_EXT_NAME0;
        } else if (is_ows(c)) {
            cs->st = CS_EXT_EQ;
        } else if (!(cs->st == CS_EXT_NAME && ptc_http_is_tchar(c))) {
            return -1;
        }
        return 0;
    case CS_EXT_VAL0:
        if (ptc_http_is_tchar(c)) {
            cs->st = CS_EXT_VAL;
        } else if (c == '"') {
            cs->st = CS_EXT_QUOTE;
        } else if (!is_ows(c)) {
            return -1;
        }
        return 0;
    case CS_EXT_VAL:
    case CS_EXT_QEND:
        if (c == '\r') {
            return 1;
        }
        if (c == ';') {
            cs->st = CS_EXT_NAME0;
        } else if (is_ows(c)) {
            cs->st = CS_EXT_SEMI;
        } else if (!(cs->st == CS_EXT_VAL && ptc_http_is_tchar(c))) {
            return -1;
        }
        return 0;
    case CS_EXT_QUOTE:
        /* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
        if (c == '"') {
            cs->st = CS_EXT_QEND;
        } else if (c == '\\') {
            cs->st = CS_EXT_ESC;
        } else if (!ptc_http_is_value_char(c)) {
            return -1;
        }
        return 0;
    case CS_EXT_ESC:
        if (!ptc_http_is_value_char(c)) {
            return -1;
        }
        cs->st = CS_EXT_QUOTE;
        return 0;
    default:
        assert(!"not an extension state");
        return -1;
    }
}

/*
 * Follows a chunked body (RFC 9112 §7.1) over data[0..n): strict where llhttp 8.1 is not
 * (CRLF everywhere, nothing between chunk data and its CRLF, bounded size lines, valid
 * extensions and trailer fields). Stops after the final CRLF of the body or before the
 * first byte it refuses. Returns the bytes it accepted; *data_bytes counts chunk-data bytes
 * among them; err->reason is set (and err->code) when it stopped on a refused byte.
 */
static size_t chunk_scan(chunk_scan_t *cs, size_t max_trailer, const uint8_t *data, size_t n,
                         size_t *data_bytes, chunk_err_t *err)
{
    *data_bytes = 0;
    err->code = PTC_EHTTP;
    err->reason = NULL;
    size_t i = 0;
    const char *bad = NULL;
    while (i < n && cs->st != CS_DONE) {
        uint8_t c = data[i];
        if (cs->st <= CS_SIZE_LF && cs->line_len + 1 > MAX_CHUNK_LINE) {
            err->code = PTC_ELIMIT;
            bad = R_CHUNK_LINE_LONG;
            break;
        }
        if (cs->st >= CS_TR_START && cs->st <= CS_END_LF && cs->trailer_len + 1 > max_trailer) {
            err->code = PTC_ELIMIT;
            bad = R_TRAILER_TOO_LARGE;
            break;
        }
        cstate_t st = cs->st;
        switch (st) {
        case CS_SIZE0:
        case CS_SIZE: {
            int v = ptc_url_hex_value(c);
            if (v >= 0) {
                if (cs->size > (UINT64_MAX >> 4)) {
                    bad = R_BAD_CHUNK_SIZE;
                    break;
                }
                cs->size = (cs->size << 4) | (uint64_t)v;
                cs->st = CS_SIZE;
            } else if (st == CS_SIZE0) {
                bad = c == '\n' ? R_BARE_LF : R_BAD_CHUNK_SIZE;
            } else if (c == '\r') {
                cs->st = CS_SIZE_LF;
            } else if (c == ';') {
                cs->st = CS_EXT_NAME0;
            } else if (is_ows(c)) {
                cs->st = CS_EXT_SEMI;
            } else {
                bad = c == '\n' ? R_BARE_LF : R_BAD_CHUNK_SIZE;
            }
            break;
        }
        case CS_EXT_SEMI:
        case CS_EXT_NAME0:
        case CS_EXT_NAME:
        case CS_EXT_EQ:
        case CS_EXT_VAL0:
        case CS_EXT_VAL:
        case CS_EXT_QUOTE:
        case CS_EXT_ESC:
        case CS_EXT_QEND: {
            const char *why;
            int r = chunk_ext_byte(cs, c, &why);
            if (r < 0) {
                bad = why;
            } else if (r == 1) {
                cs->st = CS_SIZE_LF;
            }
            break;
        }
        case CS_SIZE_LF:
            if (c != '\n') {
                bad = R_BAD_CHUNK_SIZE;
                break;
            }
            cs->st = cs->size == 0 ? CS_TR_START : CS_DATA;
            break;
        case CS_DATA: {
            size_t k = n - i;
            if (k > cs->size) {
                k = (size_t)cs->size;
            }
            cs->size -= k;
            *data_bytes += k;
            i += k;
            if (cs->size == 0) {
                cs->st = CS_DATA_CR;
            }
            continue;
        }
        case CS_DATA_CR:
            if (c != '\r') {
                bad = R_CHUNK_CRLF;
                break;
            }
            cs->st = CS_DATA_LF;
            break;
        case CS_DATA_LF:
            if (c != '\n') {
                bad = R_CHUNK_CRLF;
                break;
            }
            cs->st = CS_SIZE0;
            break;
        case CS_TR_START:
            if (c == '\r') {
                cs->st = CS_END_LF;
            } else if (is_ows(c)) {
                bad = R_OBS_FOLD;
            } else if (ptc_http_is_tchar(c)) {
                cs->st = CS_TR_NAME;
            } else {
                bad = c == '\n' ? R_BARE_LF : R_BAD_NAME;
            }
            break;
        case CS_TR_NAME:
            if (c == ':') {
                cs->st = CS_TR_VALUE;
            } else if (!ptc_http_is_tchar(c)) {
                bad = R_BAD_NAME;
            }
            break;
        case CS_TR_VALUE:
            if (c == '\r') {
                cs->st = CS_TR_LF;
            } else if (c == '\n') {
                bad = R_BARE_LF;
            } else if (!ptc_http_is_value_char(c)) {
                bad = R_BAD_VALUE;
            }
            break;
        case CS_TR_LF:
            if (c != '\n') {
                bad = R_BAD_VALUE;
                break;
            }
            cs->st = CS_TR_START;
            break;
        case CS_END_LF:
            if (c != '\n') {
                bad = R_BAD_CHUNKED;
                break;
            }
            cs->st = CS_DONE;
            break;
        case CS_DONE:
            assert(!"scanned past the end of the body");
            break;
        }
        if (bad != NULL) {
            break;
        }
        if (st <= CS_SIZE_LF) {
            cs->line_len = st == CS_SIZE_LF ? 0 : cs->line_len + 1;
        }
        if (st >= CS_TR_START && st <= CS_END_LF) {
            cs->trailer_len++;
        }
        i++;
    }
    err->reason = bad;
    return i;
}

static int chunk_refuse(ptc_http_parser_t *p, const chunk_err_t *e)
{
    return fail(p, e->code, e->reason, e->reason == R_TRAILER_TOO_LARGE ? 431 : 400, 0);
}

/*
 * Body bytes. For chunked bodies the strict scanner looks first and llhttp only ever gets
 * the bytes it accepted, so that a refusal does not depend on how llhttp reports errors or
 * on how the input was split; llhttp then must stop exactly where the scanner says the body
 * ends and hand out exactly the chunk-data bytes the scanner counted.
 */
static ssize_t feed_body(ptc_http_parser_t *p, const uint8_t *data, size_t len,
                         ptc_http_event_t *ev)
{
    static const uint8_t empty[1];
    if (data == NULL) {
        data = empty;
        len = 0;
    }
    bool chunked = p->head.body == PTC_HTTP_BODY_CHUNKED;
    size_t avail = len;
    chunk_err_t cerr = {0, NULL};
    if (chunked) {
        chunk_scan_t ahead = p->cs;
        size_t ignored;
        avail = chunk_scan(&ahead, p->lim.max_head_bytes, data, len, &ignored, &cerr);
        if (avail == 0 && cerr.reason != NULL) {
            return chunk_refuse(p, &cerr);
        }
    }
    p->pending = PEND_NONE;
    llhttp_errno_t rc = llhttp_execute(&p->ll, (const char *)data, avail);
    size_t used = avail;
    if (rc != HPE_OK) {
        used = (size_t)((const uint8_t *)llhttp_get_error_pos(&p->ll) - data);
        assert(used <= avail);
    }
    size_t data_bytes = 0;
    if (chunked) {
        chunk_err_t again;
        size_t n = chunk_scan(&p->cs, p->lim.max_head_bytes, data, used, &data_bytes, &again);
        if (n != used) {
            /* llhttp went past the end of the body in the scanner's reading. */
            return fail_http(p, R_AMBIGUOUS, 400);
        }
    }
    if (rc == HPE_OK) {
        if (data_bytes != 0 || (chunked && p->cs.st == CS_DONE)) {
            return fail_http(p, R_AMBIGUOUS, 400);
        }
        if (cerr.reason != NULL) {
            /* Everything before the refused byte is consumed: refuse it now. */
            return chunk_refuse(p, &cerr);
        }
        return (ssize_t)avail;
    }
    if (rc != HPE_PAUSED) {
        return fail_llhttp(p, rc);
    }
    llhttp_resume(&p->ll);
    if (p->pending == PEND_BODY) {
        size_t n = p->body.len;
        /* The span ends where llhttp paused. */
        bool ok = p->body.ptr + n == data + used && n <= used;
        if (chunked) {
            ok = ok && data_bytes == n;
        } else if (p->head.body == PTC_HTTP_BODY_LENGTH) {
            ok = ok && n <= p->head.content_length - p->body_seen;
        }
        if (!ok) {
            return fail_http(p, R_AMBIGUOUS, 400);
        }
        p->body_seen += n;
        ev->type = PTC_HTTP_EV_BODY;
        ev->body = p->body;
        return (ssize_t)used;
    }
    if (p->pending == PEND_DONE) {
        bool ok;
        if (chunked) {
            ok = data_bytes == 0 && p->cs.st == CS_DONE;
        } else {
            ok = p->head.body == PTC_HTTP_BODY_LENGTH && p->body_seen == p->head.content_length;
        }
        if (!ok) {
            return fail_http(p, R_AMBIGUOUS, 400);
        }
        end_message(p);
        ev->type = PTC_HTTP_EV_DONE;
        return (ssize_t)used;
    }
    return fail_http(p, R_AMBIGUOUS, 400);
}

ssize_t ptc_http_parser_feed(ptc_http_parser_t *p, const uint8_t *data, size_t len,
                             ptc_http_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    ssize_t r = 0;
    switch (p->state) {
    case ST_HEAD:
        r = feed_head(p, data, len, ev);
        break;
    case ST_BODY:
        r = feed_body(p, data, len, ev);
        break;
    case ST_DONE_PENDING:
        end_message(p);
        ev->type = PTC_HTTP_EV_DONE;
        return 0;
    case ST_UPGRADE_PENDING:
        p->state = ST_UPGRADED;
        ev->type = PTC_HTTP_EV_UPGRADE;
        return 0;
    case ST_UPGRADED:
    case ST_CLOSED:
        /* Draining with nothing left is fine; new bytes are not HTTP/1.1 for this parser. */
        return len == 0 ? 0 : PTC_ESTATE;
    case ST_DEAD:
        r = p->err.code;
        break;
    }
    if (r < 0) {
        ev->type = PTC_HTTP_EV_ERROR;
    }
    return r;
}

int ptc_http_parser_finish(ptc_http_parser_t *p, ptc_http_event_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    switch (p->state) {
    case ST_HEAD:
        if (p->msg_fresh && p->has_head && p->head.status / 100 == 1 && p->head.status != 101) {
            /* Interim responses were seen but the final one never came. */
            ev->type = PTC_HTTP_EV_ERROR;
            return fail_http(p, R_INCOMPLETE, 400);
        }
        if (!p->msg_fresh) {
            /* Only the empty lines allowed before a start line may end the input. */
            for (size_t i = 0; i < p->store_len; i++) {
                if (p->store[i] != '\r' && p->store[i] != '\n') {
                    ev->type = PTC_HTTP_EV_ERROR;
                    return fail_http(p, R_INCOMPLETE, 400);
                }
            }
        }
        p->state = ST_CLOSED;
        return 0;
    case ST_BODY:
        if (p->head.body != PTC_HTTP_BODY_UNTIL_CLOSE) {
            ev->type = PTC_HTTP_EV_ERROR;
            return fail_http(p, R_INCOMPLETE, 400);
        }
        end_message(p);
        p->state = ST_CLOSED;
        ev->type = PTC_HTTP_EV_DONE;
        return 0;
    case ST_DONE_PENDING:
        end_message(p);
        if (p->state != ST_UPGRADE_PENDING) {
            p->state = ST_CLOSED;
        }
        ev->type = PTC_HTTP_EV_DONE;
        return 0;
    case ST_UPGRADE_PENDING:
    case ST_UPGRADED:
    case ST_CLOSED:
        return 0;
    case ST_DEAD:
        ev->type = PTC_HTTP_EV_ERROR;
        return p->err.code;
    }
    return 0;
}
