/* SPDX-License-Identifier: MIT */
/*
 * The non-parsing half of common/http (see http.h): character classes, header helpers
 * (case-insensitive lookup, comma lists, hop-by-hop detection) and the writers for request
 * and response heads and chunked framing. The writers validate every method, target, reason,
 * name and value before a byte is produced, so nothing Portico forwards can smuggle a header
 * or a second message through a CR, LF or NUL. Depends on common/buf only.
 */
#include "common/http.h"

#include <assert.h>
#include <string.h>

/* ---- character classes (RFC 9110 §5.6.2, §5.5) ---- */

ptc_slice_t ptc_http_trim_ows(ptc_slice_t s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t')) {
        s.len--;
    }
    return s;
}

static bool case_eq_slices(ptc_slice_t a, ptc_slice_t b)
{
    if (a.len != b.len) {
        return false;
    }
    for (size_t i = 0; i < a.len; i++) {
        uint8_t x = a.ptr[i];
        uint8_t y = b.ptr[i];
        if (x >= 'A' && x <= 'Z') {
            x = (uint8_t)(x + 32);
        }
        if (y >= 'A' && y <= 'Z') {
            y = (uint8_t)(y + 32);
        }
        if (x != y) {
            return false;
        }
    }
    return true;
}

bool ptc_http_is_token(ptc_slice_t s)
{
    if (s.len == 0) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (!ptc_http_is_tchar(s.ptr[i])) {
            return false;
        }
    }
    return true;
}

bool ptc_http_is_field_value(ptc_slice_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (!ptc_http_is_value_char(s.ptr[i])) {
            return false;
        }
    }
    return true;
}

/* ---- header helpers ---- */

const ptc_http_header_t *ptc_http_header_find(const ptc_http_header_t *hdrs, size_t cnt,
                                              const char *name)
{
    for (size_t i = 0; i < cnt; i++) {
        if (ptc_slice_case_eq(hdrs[i].name, name)) {
            return &hdrs[i];
        }
    }
    return NULL;
}

size_t ptc_http_header_count(const ptc_http_header_t *hdrs, size_t cnt, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (ptc_slice_case_eq(hdrs[i].name, name)) {
            n++;
        }
    }
    return n;
}

bool ptc_http_list_next(ptc_slice_t *list, ptc_slice_t *elem)
{
    while (list->len > 0) {
        const uint8_t *comma = memchr(list->ptr, ',', list->len);
        size_t n = comma != NULL ? (size_t)(comma - list->ptr) : list->len;
        ptc_slice_t e = ptc_http_trim_ows((ptc_slice_t){list->ptr, n});
        size_t skip = comma != NULL ? n + 1 : n;
        list->ptr += skip;
        list->len -= skip;
        if (e.len > 0) {
            *elem = e;
            return true;
        }
    }
    return false;
}

bool ptc_http_list_has(ptc_slice_t list, const char *token)
{
    ptc_slice_t e;
    while (ptc_http_list_next(&list, &e)) {
        if (ptc_slice_case_eq(e, token)) {
            return true;
        }
    }
    return false;
}

bool ptc_http_header_has_token(const ptc_http_header_t *hdrs, size_t cnt, const char *name,
                               const char *token)
{
    for (size_t i = 0; i < cnt; i++) {
        if (ptc_slice_case_eq(hdrs[i].name, name) && ptc_http_list_has(hdrs[i].value, token)) {
            return true;
        }
    }
    return false;
}

bool ptc_http_is_hop_by_hop(const ptc_http_header_t *hdrs, size_t cnt, ptc_slice_t name)
{
    /* RFC 9110 §7.6.1, plus the proxy credentials that belong to the hop they were sent on
     * and the non-standard Proxy-Connection. */
    static const char *const fixed[] = {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "transfer-encoding",
        "proxy-authorization",
        "proxy-authenticate",
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (ptc_slice_case_eq(name, fixed[i])) {
            return true;
        }
    }
    for (size_t i = 0; i < cnt; i++) {
        if (!ptc_slice_case_eq(hdrs[i].name, "connection")) {
            continue;
        }
        ptc_slice_t list = hdrs[i].value;
        ptc_slice_t e;
        while (ptc_http_list_next(&list, &e)) {
            if (case_eq_slices(e, name)) {
                return true;
            }
        }
    }
    return false;
}

size_t ptc_http_filter_hop_by_hop(const ptc_http_header_t *hdrs, size_t cnt, ptc_http_header_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (!ptc_http_is_hop_by_hop(hdrs, cnt, hdrs[i].name)) {
            out[n++] = hdrs[i];
        }
    }
    return n;
}

/* ---- writers ---- */

/* Appends into buf[0..cap) while counting the full length, so one routine both measures and
 * writes. */
typedef struct writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
} writer_t;

static void put(writer_t *w, const void *p, size_t n)
{
    if (w->len <= w->cap && n <= w->cap - w->len) {
        memcpy(w->buf + w->len, p, n);
    }
    w->len += n;
}

static void put_str(writer_t *w, const char *s)
{
    put(w, s, strlen(s));
}

static bool is_target(ptc_slice_t s)
{
    if (s.len == 0) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < 0x21 || s.ptr[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static bool valid_fields(const ptc_http_header_t *hdrs, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        if (!ptc_http_is_token(hdrs[i].name) || !ptc_http_is_field_value(hdrs[i].value)) {
            return false;
        }
    }
    return true;
}

static void put_fields(writer_t *w, const ptc_http_header_t *hdrs, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        put(w, hdrs[i].name.ptr, hdrs[i].name.len);
        put(w, ": ", 2);
        put(w, hdrs[i].value.ptr, hdrs[i].value.len);
        put(w, "\r\n", 2);
    }
    put(w, "\r\n", 2);
}

static int build_request_head(writer_t *w, ptc_slice_t method, ptc_slice_t target,
                              const ptc_http_header_t *hdrs, size_t cnt)
{
    if (!ptc_http_is_token(method) || !is_target(target) || !valid_fields(hdrs, cnt)) {
        return PTC_EHTTP;
    }
    put(w, method.ptr, method.len);
    put(w, " ", 1);
    put(w, target.ptr, target.len);
    put_str(w, " HTTP/1.1\r\n");
    put_fields(w, hdrs, cnt);
    return 0;
}

static int build_response_head(writer_t *w, int status, ptc_slice_t reason,
                               const ptc_http_header_t *hdrs, size_t cnt)
{
    if (reason.ptr == NULL) {
        reason = ptc_slice_str(ptc_http_reason_phrase(status));
    }
    if (status < 100 || status > 599 || !ptc_http_is_field_value(reason) ||
        !valid_fields(hdrs, cnt)) {
        return PTC_EHTTP;
    }
    char line[16] = "HTTP/1.1 000 ";
    line[9] = (char)('0' + status / 100);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    put_str(w, line);
    put(w, reason.ptr, reason.len);
    put(w, "\r\n", 2);
    put_fields(w, hdrs, cnt);
    return 0;
}

ssize_t ptc_http_format_request_head(uint8_t *buf, size_t cap, ptc_slice_t method,
                                     ptc_slice_t target, const ptc_http_header_t *hdrs, size_t cnt)
{
    writer_t w = {buf, cap, 0};
    int r = build_request_head(&w, method, target, hdrs, cnt);
    if (r < 0) {
        return r;
    }
    return w.len <= cap ? (ssize_t)w.len : PTC_ELIMIT;
}

ssize_t ptc_http_format_response_head(uint8_t *buf, size_t cap, int status, ptc_slice_t reason,
                                      const ptc_http_header_t *hdrs, size_t cnt)
{
    writer_t w = {buf, cap, 0};
    int r = build_response_head(&w, status, reason, hdrs, cnt);
    if (r < 0) {
        return r;
    }
    return w.len <= cap ? (ssize_t)w.len : PTC_ELIMIT;
}

int ptc_http_write_request_head(ptc_chunkq_t *q, ptc_slice_t method, ptc_slice_t target,
                                const ptc_http_header_t *hdrs, size_t cnt)
{
    writer_t w = {NULL, 0, 0};
    int r = build_request_head(&w, method, target, hdrs, cnt);
    if (r < 0) {
        return r;
    }
    size_t avail;
    uint8_t *dst = ptc_chunkq_try_reserve(q, w.len, &avail);
    if (dst == NULL) {
        return PTC_ENOMEM;
    }
    writer_t out = {dst, w.len, 0};
    r = build_request_head(&out, method, target, hdrs, cnt);
    assert(r == 0 && out.len == w.len);
    ptc_chunkq_commit(q, out.len);
    return 0;
}

int ptc_http_write_response_head(ptc_chunkq_t *q, int status, ptc_slice_t reason,
                                 const ptc_http_header_t *hdrs, size_t cnt)
{
    writer_t w = {NULL, 0, 0};
    int r = build_response_head(&w, status, reason, hdrs, cnt);
    if (r < 0) {
        return r;
    }
    size_t avail;
    uint8_t *dst = ptc_chunkq_try_reserve(q, w.len, &avail);
    if (dst == NULL) {
        return PTC_ENOMEM;
    }
    writer_t out = {dst, w.len, 0};
    r = build_response_head(&out, status, reason, hdrs, cnt);
    assert(r == 0 && out.len == w.len);
    ptc_chunkq_commit(q, out.len);
    return 0;
}

size_t ptc_http_format_chunk_header(uint8_t buf[PTC_HTTP_CHUNK_HEADER_MAX], uint64_t len)
{
    static const char hex[] = "0123456789abcdef";
    assert(len > 0);
    int digits = 0;
    for (uint64_t v = len; v != 0; v >>= 4) {
        digits++;
    }
    for (int i = 0; i < digits; i++) {
        buf[digits - 1 - i] = (uint8_t)hex[(len >> (4 * i)) & 0xf];
    }
    buf[digits] = '\r';
    buf[digits + 1] = '\n';
    return (size_t)digits + 2;
}

int ptc_http_write_chunk(ptc_chunkq_t *q, const void *data, size_t len)
{
    if (len == 0) {
        return 0;
    }
    uint8_t hdr[PTC_HTTP_CHUNK_HEADER_MAX];
    size_t hlen = ptc_http_format_chunk_header(hdr, len);
    size_t avail;
    uint8_t *dst = ptc_chunkq_try_reserve(q, hlen + len + 2, &avail);
    if (dst == NULL) {
        return PTC_ENOMEM;
    }
    memcpy(dst, hdr, hlen);
    memcpy(dst + hlen, data, len);
    memcpy(dst + hlen + len, "\r\n", 2);
    ptc_chunkq_commit(q, hlen + len + 2);
    return 0;
}

int ptc_http_write_last_chunk(ptc_chunkq_t *q)
{
    return ptc_chunkq_try_append(q, "0\r\n\r\n", 5);
}

/* RFC 9110 §15, plus 102 (RFC 2518), 103 (RFC 8297), 207 (RFC 4918), 428/429/431/511
 * (RFC 6585) and 451 (RFC 7725). */
static const struct {
    int status;
    const char *phrase;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {511, "Network Authentication Required"},
};

const char *ptc_http_reason_phrase(int status)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (reasons[i].status == status) {
            return reasons[i].phrase;
        }
    }
    return "";
}
