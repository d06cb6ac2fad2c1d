/* SPDX-License-Identifier: MIT */
/*
 * REQUEST and RESPONSE header blocks (docs/protocol.md §5). The decoder reads through a
 * bounds-checked cursor, so no field can make it read past the block; every field is checked
 * against the same validators the encoder uses, which is what guarantees that whatever the
 * encoder writes, the decoder accepts, and the other way round. Pure libc.
 */
#include "proto/hblock.h"

#include <string.h>

/* ---- character classes (RFC 9110 §5.6.2, §5.5) ---- */

static bool is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / SP / HTAB: no CTL other than HTAB, no DEL; obs-text is allowed. */
static bool is_value_char(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7F);
}

static bool is_host_char(uint8_t c, bool allow_colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return c == '-' || c == '.' || c == '_' || (allow_colon && c == ':');
}

static bool all_tchar(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_tchar(p[i])) {
            return false;
        }
    }
    return true;
}

bool ptc_hblock_valid_name(const uint8_t *name, size_t len)
{
    return len >= 1 && len <= PTC_HBLOCK_STR_MAX && all_tchar(name, len);
}

bool ptc_hblock_valid_value(const uint8_t *value, size_t len)
{
    if (len > PTC_HBLOCK_STR_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_value_char(value[i])) {
            return false;
        }
    }
    return true;
}

static bool valid_host(ptc_proto_str_t s, size_t min, size_t max, bool allow_colon)
{
    if (s.len < min || s.len > max) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (!is_host_char(s.ptr[i], allow_colon)) {
            return false;
        }
    }
    return true;
}

static bool valid_method(ptc_proto_str_t s)
{
    return s.len >= 1 && s.len <= PTC_HBLOCK_METHOD_MAX && all_tchar(s.ptr, s.len);
}

/*
 * A request target is in origin form ("/path?query") or the asterisk form ("*"), made of
 * visible ASCII only (docs/protocol.md §5.2): no CTL, space, DEL or obs-text can reach the
 * request line the connector writes.
 */
static bool valid_target(ptc_proto_str_t s)
{
    if (s.len < 1 || s.len > PTC_HBLOCK_STR_MAX) {
        return false;
    }
    if (s.ptr[0] != '/' && !(s.len == 1 && s.ptr[0] == '*')) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < 0x21 || s.ptr[i] > 0x7E) {
            return false;
        }
    }
    return true;
}

static bool valid_status(unsigned status)
{
    /* Interim responses other than 101 are never forwarded (docs/protocol.md §5.3). */
    return status == 101 || (status >= 200 && status <= 599);
}

static bool valid_request(const ptc_request_head_t *req)
{
    return (req->scheme == PTC_PROTO_SCHEME_HTTP || req->scheme == PTC_PROTO_SCHEME_HTTPS) &&
           req->port != 0 && valid_host(req->host, 1, PTC_HBLOCK_HOST_MAX, true) &&
           valid_host(req->sni, 0, PTC_HBLOCK_SNI_MAX, false) && valid_method(req->method) &&
           valid_target(req->target);
}

static bool valid_fields(const ptc_proto_field_t *f, size_t cnt)
{
    if (cnt > PTC_HBLOCK_HEADERS_MAX) {
        return false;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (!ptc_hblock_valid_name(f[i].name.ptr, f[i].name.len) ||
            !ptc_hblock_valid_value(f[i].value.ptr, f[i].value.len)) {
            return false;
        }
    }
    return true;
}

/* ---- sizes and encoding ---- */

static size_t fields_size(const ptc_proto_field_t *f, size_t cnt)
{
    size_t n = 2; /* header_count */
    for (size_t i = 0; i < cnt; i++) {
        n += 2 + f[i].name.len + 2 + f[i].value.len;
    }
    return n;
}

size_t ptc_hblock_request_size(const ptc_request_head_t *req)
{
    return 1 + 1 + 2 + 4 + 2 + req->host.len + 2 + req->sni.len + 2 + req->method.len + 2 +
           req->target.len + fields_size(req->headers, req->header_cnt);
}

size_t ptc_hblock_response_size(const ptc_response_head_t *resp)
{
    return 2 + fields_size(resp->headers, resp->header_cnt);
}

/* The encoder's cursor; the caller has checked the total size first. */
typedef struct writer {
    uint8_t *p;
} writer_t;

static void put_u8(writer_t *w, uint8_t v)
{
    *w->p++ = v;
}

static void put_u16(writer_t *w, uint16_t v)
{
    w->p[0] = (uint8_t)(v >> 8);
    w->p[1] = (uint8_t)v;
    w->p += 2;
}

static void put_u32(writer_t *w, uint32_t v)
{
    put_u16(w, (uint16_t)(v >> 16));
    put_u16(w, (uint16_t)v);
}

static void put_str(writer_t *w, ptc_proto_str_t s)
{
    put_u16(w, (uint16_t)s.len);
    if (s.len != 0) {
        memcpy(w->p, s.ptr, s.len);
        w->p += s.len;
    }
}

static void put_fields(writer_t *w, const ptc_proto_field_t *f, size_t cnt)
{
    put_u16(w, (uint16_t)cnt);
    for (size_t i = 0; i < cnt; i++) {
        put_str(w, f[i].name);
        put_str(w, f[i].value);
    }
}

ssize_t ptc_hblock_encode_request(const ptc_request_head_t *req, uint8_t *out, size_t cap)
{
    if (!valid_request(req) || !valid_fields(req->headers, req->header_cnt)) {
        return PTC_PROTO_EHEADER;
    }
    size_t size = ptc_hblock_request_size(req);
    if (size > cap) {
        return PTC_PROTO_ESPACE;
    }
    writer_t w = {out};
    put_u8(&w, (uint8_t)req->scheme);
    put_u8(&w, (uint8_t)((req->validate_tls ? PTC_HBLOCK_FLAG_VALIDATE_TLS : 0) |
                         (req->upgrade ? PTC_HBLOCK_FLAG_UPGRADE : 0)));
    put_u16(&w, req->port);
    put_u32(&w, req->timeout_ms);
    put_str(&w, req->host);
    put_str(&w, req->sni);
    put_str(&w, req->method);
    put_str(&w, req->target);
    put_fields(&w, req->headers, req->header_cnt);
    return (ssize_t)(w.p - out);
}

ssize_t ptc_hblock_encode_response(const ptc_response_head_t *resp, uint8_t *out, size_t cap)
{
    if (!valid_status(resp->status) || !valid_fields(resp->headers, resp->header_cnt)) {
        return PTC_PROTO_EHEADER;
    }
    size_t size = ptc_hblock_response_size(resp);
    if (size > cap) {
        return PTC_PROTO_ESPACE;
    }
    writer_t w = {out};
    put_u16(&w, resp->status);
    put_fields(&w, resp->headers, resp->header_cnt);
    return (ssize_t)(w.p - out);
}

/* ---- decoding ---- */

/* The decoder's cursor: every read checks the bytes left first. */
typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader_t;

static bool get_u8(reader_t *r, uint8_t *v)
{
    if (r->left < 1) {
        return false;
    }
    *v = r->p[0];
    r->p++;
    r->left--;
    return true;
}

static bool get_u16(reader_t *r, uint16_t *v)
{
    if (r->left < 2) {
        return false;
    }
    *v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    r->left -= 2;
    return true;
}

static bool get_u32(reader_t *r, uint32_t *v)
{
    uint16_t hi;
    uint16_t lo;
    if (r->left < 4 || !get_u16(r, &hi) || !get_u16(r, &lo)) {
        return false;
    }
    *v = (uint32_t)hi << 16 | lo;
    return true;
}

static bool get_str(reader_t *r, ptc_proto_str_t *s)
{
    uint16_t len;
    if (!get_u16(r, &len) || r->left < len) {
        return false;
    }
    s->ptr = r->p;
    s->len = len;
    r->p += len;
    r->left -= len;
    return true;
}

/*
 * Reads header_count and the fields that follow, which must end the block. The first
 * max_fields are stored; the rest are still validated, so that a malformed block is always
 * EHEADER and ELIMIT means only "well-formed, but more headers than the caller takes".
 */
static int get_fields(reader_t *r, const ptc_proto_field_t **headers, size_t *header_cnt,
                      ptc_proto_field_t *fields, size_t max_fields)
{
    uint16_t cnt;
    if (!get_u16(r, &cnt)) {
        return PTC_PROTO_EHEADER;
    }
    for (size_t i = 0; i < cnt; i++) {
        ptc_proto_field_t f;
        if (!get_str(r, &f.name) || !get_str(r, &f.value) ||
            !ptc_hblock_valid_name(f.name.ptr, f.name.len) ||
            !ptc_hblock_valid_value(f.value.ptr, f.value.len)) {
            return PTC_PROTO_EHEADER;
        }
        if (i < max_fields) {
            fields[i] = f;
        }
    }
    if (r->left != 0) {
        return PTC_PROTO_EHEADER;
    }
    if (cnt > max_fields) {
        return PTC_PROTO_ELIMIT;
    }
    *headers = fields;
    *header_cnt = cnt;
    return 0;
}

int ptc_hblock_decode_request(const uint8_t *p, size_t len, ptc_request_head_t *out,
                              ptc_proto_field_t *fields, size_t max_fields)
{
    reader_t r = {p, len};
    uint8_t scheme;
    uint8_t flags;
    memset(out, 0, sizeof(*out));
    if (!get_u8(&r, &scheme) || !get_u8(&r, &flags) || !get_u16(&r, &out->port) ||
        !get_u32(&r, &out->timeout_ms) || !get_str(&r, &out->host) || !get_str(&r, &out->sni) ||
        !get_str(&r, &out->method) || !get_str(&r, &out->target)) {
        return PTC_PROTO_EHEADER;
    }
    if (scheme > PTC_PROTO_SCHEME_HTTPS ||
        (flags & ~(PTC_HBLOCK_FLAG_VALIDATE_TLS | PTC_HBLOCK_FLAG_UPGRADE)) != 0) {
        return PTC_PROTO_EHEADER;
    }
    out->scheme = (ptc_proto_scheme_t)scheme;
    out->validate_tls = (flags & PTC_HBLOCK_FLAG_VALIDATE_TLS) != 0;
    out->upgrade = (flags & PTC_HBLOCK_FLAG_UPGRADE) != 0;
    if (!valid_request(out)) {
        return PTC_PROTO_EHEADER;
    }
    return get_fields(&r, &out->headers, &out->header_cnt, fields, max_fields);
}

int ptc_hblock_decode_response(const uint8_t *p, size_t len, ptc_response_head_t *out,
                               ptc_proto_field_t *fields, size_t max_fields)
{
    reader_t r = {p, len};
    memset(out, 0, sizeof(*out));
    if (!get_u16(&r, &out->status) || !valid_status(out->status)) {
        return PTC_PROTO_EHEADER;
    }
    return get_fields(&r, &out->headers, &out->header_cnt, fields, max_fields);
}
