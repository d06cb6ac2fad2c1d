/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/hblock.c: exact bytes of request and response blocks, round trips (many
 * headers, empty values, every maximum length), the exact size functions, and every refusal on
 * both sides: each malformed head is refused by the encoder and, written raw by this file's
 * own unchecked writer, by the decoder. Truncation at every byte boundary, trailing bytes,
 * counts beyond the data and the max_fields limit are covered too.
 */
#include "proto/hblock.h"
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>

#define S(lit)                                                                                     \
    (ptc_proto_str_t)                                                                              \
    {                                                                                              \
        (const uint8_t *)(lit), sizeof(lit) - 1                                                    \
    }

static bool str_eq(ptc_proto_str_t a, ptc_proto_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

#define CHECK_STR(a, b) CHECK(str_eq((a), (b)))

/* ---- an unchecked writer, to build blocks the encoder refuses ---- */

typedef struct raw {
    uint8_t *buf;
    size_t len;
    size_t cap;
} raw_t;

static void raw_init(raw_t *r)
{
    r->cap = 1 << 20;
    r->buf = malloc(r->cap);
    CHECK_NOT_NULL(r->buf);
    r->len = 0;
}

static void raw_u8(raw_t *r, unsigned v)
{
    CHECK_LT(r->len, r->cap);
    r->buf[r->len++] = (uint8_t)v;
}

static void raw_u16(raw_t *r, unsigned v)
{
    raw_u8(r, (v >> 8) & 0xff);
    raw_u8(r, v & 0xff);
}

static void raw_u32(raw_t *r, uint32_t v)
{
    raw_u16(r, v >> 16);
    raw_u16(r, v & 0xffff);
}

static void raw_str(raw_t *r, ptc_proto_str_t s)
{
    raw_u16(r, (unsigned)s.len);
    CHECK_LE(r->len + s.len, r->cap);
    if (s.len != 0) {
        memcpy(r->buf + r->len, s.ptr, s.len);
    }
    r->len += s.len;
}

/* Writes req as the wire layout says, with raw scheme and flags bytes, checking nothing. */
static void raw_request(raw_t *r, unsigned scheme, unsigned flags, const ptc_request_head_t *req)
{
    r->len = 0;
    raw_u8(r, scheme);
    raw_u8(r, flags);
    raw_u16(r, req->port);
    raw_u32(r, req->timeout_ms);
    raw_str(r, req->host);
    raw_str(r, req->sni);
    raw_str(r, req->method);
    raw_str(r, req->target);
    raw_u16(r, (unsigned)req->header_cnt);
    for (size_t i = 0; i < req->header_cnt; i++) {
        raw_str(r, req->headers[i].name);
        raw_str(r, req->headers[i].value);
    }
}

static void raw_response(raw_t *r, unsigned status, const ptc_proto_field_t *h, size_t cnt)
{
    r->len = 0;
    raw_u16(r, status);
    raw_u16(r, (unsigned)cnt);
    for (size_t i = 0; i < cnt; i++) {
        raw_str(r, h[i].name);
        raw_str(r, h[i].value);
    }
}

/* Decodes a copy of p[0..len) in an exact-size heap block, so ASan sees any read past it. */
static int decode_request_exact(const uint8_t *p, size_t len, ptc_request_head_t *out,
                                ptc_proto_field_t *fields, size_t max, uint8_t **copy)
{
    *copy = malloc(len != 0 ? len : 1);
    CHECK_NOT_NULL(*copy);
    if (len != 0) {
        memcpy(*copy, p, len);
    }
    return ptc_hblock_decode_request(*copy, len, out, fields, max);
}

static int decode_response_exact(const uint8_t *p, size_t len, ptc_response_head_t *out,
                                 ptc_proto_field_t *fields, size_t max, uint8_t **copy)
{
    *copy = malloc(len != 0 ? len : 1);
    CHECK_NOT_NULL(*copy);
    if (len != 0) {
        memcpy(*copy, p, len);
    }
    return ptc_hblock_decode_response(*copy, len, out, fields, max);
}

/* S() for static initializers, which may not use compound literals. */
#define SI(lit)                                                                                    \
    {                                                                                              \
        (const uint8_t *)(lit), sizeof(lit) - 1                                                    \
    }

static const ptc_proto_field_t base_fields[] = {
    {SI("Host"), SI("app.example.com")},
    {SI("Accept"), SI("*/*")},
    {SI("X-Empty"), SI("")},
};

static ptc_request_head_t base_request(void)
{
    ptc_request_head_t req = {
        .scheme = PTC_PROTO_SCHEME_HTTPS,
        .validate_tls = true,
        .upgrade = false,
        .port = 8443,
        .timeout_ms = 30000,
        .host = S("10.0.0.5"),
        .sni = S("app.internal"),
        .method = S("GET"),
        .target = S("/index.html?q=1"),
        .headers = base_fields,
        .header_cnt = 3,
    };
    return req;
}

static void check_request_eq(const ptc_request_head_t *a, const ptc_request_head_t *b)
{
    CHECK_EQ(a->scheme, b->scheme);
    CHECK_EQ(a->validate_tls, b->validate_tls);
    CHECK_EQ(a->upgrade, b->upgrade);
    CHECK_EQ(a->port, b->port);
    CHECK_UEQ(a->timeout_ms, b->timeout_ms);
    CHECK_STR(a->host, b->host);
    CHECK_STR(a->sni, b->sni);
    CHECK_STR(a->method, b->method);
    CHECK_STR(a->target, b->target);
    CHECK_UEQ(a->header_cnt, b->header_cnt);
    for (size_t i = 0; i < a->header_cnt; i++) {
        CHECK_STR(a->headers[i].name, b->headers[i].name);
        CHECK_STR(a->headers[i].value, b->headers[i].value);
    }
}

/* ---- exact bytes and round trips ---- */

static void test_request_bytes(void)
{
    ptc_request_head_t req = base_request();
    req.header_cnt = 1;
    req.sni = S("");
    req.scheme = PTC_PROTO_SCHEME_HTTP;
    req.validate_tls = false;
    req.upgrade = true;
    req.port = 80;
    req.timeout_ms = 0x01020304;
    req.host = S("svc");
    req.target = S("/");
    static const uint8_t want[] = {
        0x00, 0x02, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, /* scheme flags port timeout */
        0x00, 0x03, 's',  'v',  'c',                    /* host */
        0x00, 0x00,                                     /* sni */
        0x00, 0x03, 'G',  'E',  'T',                    /* method */
        0x00, 0x01, '/',                                /* target */
        0x00, 0x01,                                     /* header_count */
        0x00, 0x04, 'H',  'o',  's',  't',              /* name */
        0x00, 0x0f, 'a',  'p',  'p',  '.',  'e',  'x',  'a',
        'm',  'p',  'l',  'e',  '.',  'c',  'o',  'm', /* value */
    };
    CHECK_UEQ(ptc_hblock_request_size(&req), sizeof(want));
    uint8_t buf[128];
    CHECK_EQ(ptc_hblock_encode_request(&req, buf, sizeof(buf)), sizeof(want));
    CHECK_MEMEQ(buf, want, sizeof(want));

    ptc_request_head_t got;
    ptc_proto_field_t fields[4];
    CHECK_OK(ptc_hblock_decode_request(want, sizeof(want), &got, fields, 4));
    check_request_eq(&got, &req);
    CHECK(got.headers == fields);
    /* Slices point into the input: nothing is copied. */
    CHECK(got.host.ptr == want + 10);
    CHECK(got.headers[0].value.ptr == want + 33);

    /* Both flags, https. */
    req = base_request();
    req.upgrade = true;
    CHECK_GT(ptc_hblock_encode_request(&req, buf, sizeof(buf)), 0);
    CHECK_EQ(buf[0], 1);
    CHECK_EQ(buf[1], 3);
    CHECK_OK(ptc_hblock_decode_request(buf, ptc_hblock_request_size(&req), &got, fields, 4));
    check_request_eq(&got, &req);
}

static void test_response_bytes(void)
{
    const ptc_proto_field_t h[] = {{S("Content-Type"), S("text/plain")}, {S("X-E"), S("")}};
    ptc_response_head_t resp = {.status = 404, .headers = h, .header_cnt = 2};
    static const uint8_t want[] = {
        0x01, 0x94, 0x00, 0x02,                                                     /* 404, 2 */
        0x00, 0x0c, 'C',  'o',  'n', 't',  'e',  'n', 't', '-', 'T', 'y', 'p', 'e', /* name */
        0x00, 0x0a, 't',  'e',  'x', 't',  '/',  'p', 'l', 'a', 'i', 'n',           /* value */
        0x00, 0x03, 'X',  '-',  'E', 0x00, 0x00,                                    /* empty */
    };
    CHECK_UEQ(ptc_hblock_response_size(&resp), sizeof(want));
    uint8_t buf[64];
    CHECK_EQ(ptc_hblock_encode_response(&resp, buf, sizeof(buf)), sizeof(want));
    CHECK_MEMEQ(buf, want, sizeof(want));

    ptc_response_head_t got;
    ptc_proto_field_t fields[2];
    CHECK_OK(ptc_hblock_decode_response(want, sizeof(want), &got, fields, 2));
    CHECK_EQ(got.status, 404);
    CHECK_UEQ(got.header_cnt, 2);
    CHECK_STR(got.headers[0].name, S("Content-Type"));
    CHECK_STR(got.headers[0].value, S("text/plain"));
    CHECK_STR(got.headers[1].name, S("X-E"));
    CHECK_UEQ(got.headers[1].value.len, 0);

    /* No headers at all: 4 bytes, and no field array needed. */
    resp = (ptc_response_head_t){.status = 101, .headers = NULL, .header_cnt = 0};
    CHECK_UEQ(ptc_hblock_response_size(&resp), 4);
    CHECK_EQ(ptc_hblock_encode_response(&resp, buf, 4), 4);
    CHECK_MEMEQ(buf, "\x00\x65\x00\x00", 4);
    CHECK_OK(ptc_hblock_decode_response(buf, 4, &got, NULL, 0));
    CHECK_EQ(got.status, 101);
    CHECK_UEQ(got.header_cnt, 0);
}

static void test_many_headers_and_max_lengths(void)
{
    /* 65535 headers (the u16 maximum) with names and values of varied lengths. */
    size_t cnt = PTC_HBLOCK_HEADERS_MAX;
    ptc_proto_field_t *h = calloc(cnt, sizeof(*h));
    ptc_proto_field_t *fields = calloc(cnt, sizeof(*fields));
    CHECK_NOT_NULL(h);
    CHECK_NOT_NULL(fields);
    static const char names[] = "abcdefghijklmnopqrstuvwxyz!#$%&'*+-.^_`|~0123456789";
    static const char values[] = "v \t\x80\xff~\"(),/:;<=>?@[\\]{}";
    for (size_t i = 0; i < cnt; i++) {
        h[i].name = (ptc_proto_str_t){(const uint8_t *)names + i % 20, 1 + i % 31};
        h[i].value = (ptc_proto_str_t){(const uint8_t *)values, i % (sizeof(values) - 1)};
    }
    ptc_response_head_t resp = {.status = 200, .headers = h, .header_cnt = cnt};
    size_t size = ptc_hblock_response_size(&resp);
    uint8_t *buf = malloc(size);
    CHECK_NOT_NULL(buf);
    CHECK_EQ(ptc_hblock_encode_response(&resp, buf, size), (ssize_t)size);
    ptc_response_head_t got;
    CHECK_OK(ptc_hblock_decode_response(buf, size, &got, fields, cnt));
    CHECK_UEQ(got.header_cnt, cnt);
    for (size_t i = 0; i < cnt; i++) {
        CHECK_STR(got.headers[i].name, h[i].name);
        CHECK_STR(got.headers[i].value, h[i].value);
    }
    free(buf);

    /* One more than a u16 can count: refused by the encoder. */
    ptc_proto_field_t *h2 = calloc(cnt + 1, sizeof(*h2));
    CHECK_NOT_NULL(h2);
    memcpy(h2, h, cnt * sizeof(*h));
    h2[cnt] = h[0];
    resp.headers = h2;
    resp.header_cnt = cnt + 1;
    uint8_t small[8];
    CHECK_EQ(ptc_hblock_encode_response(&resp, small, sizeof(small)), PTC_PROTO_EHEADER);
    free(h2);
    free(h);
    free(fields);

    /* Every string at its maximum length. */
    uint8_t *big = malloc(PTC_HBLOCK_STR_MAX + 2);
    CHECK_NOT_NULL(big);
    memset(big, 'a', PTC_HBLOCK_STR_MAX + 2);
    big[0] = '/';
    ptc_proto_field_t hf[2] = {
        {{big + 1, PTC_HBLOCK_STR_MAX}, {big, PTC_HBLOCK_STR_MAX}},
        {{big + 1, 1}, {big, 0}},
    };
    ptc_request_head_t req = base_request();
    req.host = (ptc_proto_str_t){big + 1, PTC_HBLOCK_HOST_MAX};
    req.sni = (ptc_proto_str_t){big + 1, PTC_HBLOCK_SNI_MAX};
    req.method = (ptc_proto_str_t){big + 1, PTC_HBLOCK_METHOD_MAX};
    req.target = (ptc_proto_str_t){big, PTC_HBLOCK_STR_MAX};
    req.port = 65535;
    req.timeout_ms = UINT32_MAX;
    req.headers = hf;
    req.header_cnt = 2;
    size = ptc_hblock_request_size(&req);
    CHECK_UEQ(size,
              8 + 2 + 255 + 2 + 255 + 2 + 32 + 2 + 65535 + 2 + 2 + 65535 + 2 + 65535 + 2 + 1 + 2);
    buf = malloc(size);
    CHECK_NOT_NULL(buf);
    CHECK_EQ(ptc_hblock_encode_request(&req, buf, size), (ssize_t)size);
    ptc_request_head_t rgot;
    ptc_proto_field_t rf[2];
    uint8_t *copy;
    CHECK_OK(decode_request_exact(buf, size, &rgot, rf, 2, &copy));
    check_request_eq(&rgot, &req);
    free(copy);
    free(buf);

    /* One byte over each maximum: refused. */
    ptc_request_head_t bad = req;
    bad.host.len++;
    CHECK_EQ(ptc_hblock_encode_request(&bad, small, sizeof(small)), PTC_PROTO_EHEADER);
    bad = req;
    bad.sni.len++;
    CHECK_EQ(ptc_hblock_encode_request(&bad, small, sizeof(small)), PTC_PROTO_EHEADER);
    bad = req;
    bad.method.len++;
    CHECK_EQ(ptc_hblock_encode_request(&bad, small, sizeof(small)), PTC_PROTO_EHEADER);
    bad = req;
    bad.target.len++;
    CHECK_EQ(ptc_hblock_encode_request(&bad, small, sizeof(small)), PTC_PROTO_EHEADER);
    hf[0].value.len++;
    CHECK_EQ(ptc_hblock_encode_request(&req, small, sizeof(small)), PTC_PROTO_EHEADER);
    hf[0].value.len--;
    hf[0].name.len++;
    CHECK_EQ(ptc_hblock_encode_request(&req, small, sizeof(small)), PTC_PROTO_EHEADER);
    free(big);
}

static void test_sizes_and_space(void)
{
    ptc_request_head_t req = base_request();
    size_t want = 8 + (2 + 8) + (2 + 12) + (2 + 3) + (2 + 15) + 2 + (2 + 4 + 2 + 15) +
                  (2 + 6 + 2 + 3) + (2 + 7 + 2 + 0);
    CHECK_UEQ(ptc_hblock_request_size(&req), want);
    uint8_t buf[256];
    /* Every capacity below the size: ESPACE; the size itself: exactly that many bytes. */
    for (size_t cap = 0; cap < want; cap++) {
        CHECK_EQ(ptc_hblock_encode_request(&req, buf, cap), PTC_PROTO_ESPACE);
    }
    CHECK_EQ(ptc_hblock_encode_request(&req, buf, want), (ssize_t)want);
    CHECK_EQ(ptc_hblock_encode_request(&req, buf, sizeof(buf)), (ssize_t)want);

    ptc_response_head_t resp = {.status = 200, .headers = base_fields, .header_cnt = 3};
    want = 4 + (2 + 4 + 2 + 15) + (2 + 6 + 2 + 3) + (2 + 7 + 2 + 0);
    CHECK_UEQ(ptc_hblock_response_size(&resp), want);
    CHECK_EQ(ptc_hblock_encode_response(&resp, buf, want - 1), PTC_PROTO_ESPACE);
    CHECK_EQ(ptc_hblock_encode_response(&resp, buf, want), (ssize_t)want);

    /* A malformed head is EHEADER whatever the capacity. */
    resp.status = 99;
    CHECK_EQ(ptc_hblock_encode_response(&resp, buf, 0), PTC_PROTO_EHEADER);
}

/* ---- refusals ---- */

/* The encoder refuses req, and its raw bytes (with scheme/flags as given) fail to decode. */
static void expect_bad_request(const ptc_request_head_t *req, unsigned scheme, unsigned flags,
                               int line)
{
    uint8_t out[512];
    raw_t r;
    raw_init(&r);
    ptc_request_head_t enc = *req;
    enc.scheme = (ptc_proto_scheme_t)scheme;
    enc.validate_tls = (flags & 1) != 0;
    enc.upgrade = (flags & 2) != 0;
    ssize_t n = ptc_hblock_encode_request(&enc, out, sizeof(out));
    if (flags <= 3 && n != PTC_PROTO_EHEADER) {
        ptc_test_fail(__FILE__, line, "encoder accepted a bad request: %zd", n);
    }
    raw_request(&r, scheme, flags, req);
    ptc_request_head_t got;
    ptc_proto_field_t fields[8];
    uint8_t *copy;
    int rc = decode_request_exact(r.buf, r.len, &got, fields, 8, &copy);
    if (rc != PTC_PROTO_EHEADER) {
        ptc_test_fail(__FILE__, line, "decoder returned %d for a bad request", rc);
    }
    free(copy);
    free(r.buf);
}

#define BAD_REQUEST(req) expect_bad_request(&(req), (req).scheme, 1, __LINE__)

static void test_request_refusals(void)
{
    ptc_request_head_t ok = base_request();
    ptc_request_head_t req;

    /* The unchanged base passes both ways (so each refusal below is due to its change). */
    raw_t r;
    raw_init(&r);
    raw_request(&r, 1, 1, &ok);
    ptc_request_head_t got;
    ptc_proto_field_t fields[8];
    CHECK_OK(ptc_hblock_decode_request(r.buf, r.len, &got, fields, 8));
    check_request_eq(&got, &ok);
    free(r.buf);

    /* scheme, flags */
    expect_bad_request(&ok, 2, 1, __LINE__);
    expect_bad_request(&ok, 255, 0, __LINE__);
    for (unsigned bit = 2; bit < 8; bit++) {
        expect_bad_request(&ok, 1, 1u << bit, __LINE__);
    }
    req = ok;
    req.scheme = (ptc_proto_scheme_t)2;
    uint8_t out[256];
    CHECK_EQ(ptc_hblock_encode_request(&req, out, sizeof(out)), PTC_PROTO_EHEADER);

    /* port */
    req = ok;
    req.port = 0;
    BAD_REQUEST(req);

    /* host */
    static const char *bad_hosts[] = {"a b", "a/b", "a@b", "[::1]", "a\r", "a\n", "h%1", "\x80"};
    req = ok;
    req.host = S("");
    BAD_REQUEST(req);
    for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
        req.host = (ptc_proto_str_t){(const uint8_t *)bad_hosts[i], strlen(bad_hosts[i])};
        BAD_REQUEST(req);
    }
    req.host = (ptc_proto_str_t){(const uint8_t *)"a\0b", 3};
    BAD_REQUEST(req);

    /* sni: no colon (never an IP literal), same characters as a host otherwise */
    req = ok;
    req.sni = S("::1");
    BAD_REQUEST(req);
    req.sni = S("a b");
    BAD_REQUEST(req);

    /* method */
    static const char *bad_methods[] = {"", "GE T", "GET\r", "(GET)", "G:T", "G/T", "G\"", "\x7f"};
    req = ok;
    for (size_t i = 0; i < sizeof(bad_methods) / sizeof(bad_methods[0]); i++) {
        req.method = (ptc_proto_str_t){(const uint8_t *)bad_methods[i], strlen(bad_methods[i])};
        BAD_REQUEST(req);
    }
    req.method = (ptc_proto_str_t){(const uint8_t *)"G\0T", 3};
    BAD_REQUEST(req);

    /* target */
    static const char *bad_targets[] = {"",      "/a b",      "/a\r",  "/a\n", "/\t",
                                        "/\x7f", "/\x01",     "/\x80", "a/b",  "**",
                                        "*/",    "http://h/", "h:80",  "?q"};
    req = ok;
    for (size_t i = 0; i < sizeof(bad_targets) / sizeof(bad_targets[0]); i++) {
        req.target = (ptc_proto_str_t){(const uint8_t *)bad_targets[i], strlen(bad_targets[i])};
        BAD_REQUEST(req);
    }
    req.target = (ptc_proto_str_t){(const uint8_t *)"/\0", 2};
    BAD_REQUEST(req);
    /* Both allowed forms. */
    req.target = S("*");
    CHECK_GT(ptc_hblock_encode_request(&req, out, sizeof(out)), 0);
    req.target = S("/");
    CHECK_GT(ptc_hblock_encode_request(&req, out, sizeof(out)), 0);
    req.target = S("/!~%20?a=b&c=[d]#e");
    CHECK_GT(ptc_hblock_encode_request(&req, out, sizeof(out)), 0);

    /* header names and values */
    static const char *bad_names[] = {"", "X Y", "X:", ":authority", "X\r", "X\n", "X(", "\x80"};
    ptc_proto_field_t hf[2] = {{S("A"), S("b")}, {S("C"), S("d")}};
    req = ok;
    req.headers = hf;
    req.header_cnt = 2;
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        hf[1].name = (ptc_proto_str_t){(const uint8_t *)bad_names[i], strlen(bad_names[i])};
        BAD_REQUEST(req);
    }
    hf[1].name = (ptc_proto_str_t){(const uint8_t *)"X\0", 2};
    BAD_REQUEST(req);
    hf[1].name = S("C");
    static const char *bad_values[] = {"a\rb", "a\nb", "\r\n", "a\x01", "\x7f", "\x1f"};
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        hf[1].value = (ptc_proto_str_t){(const uint8_t *)bad_values[i], strlen(bad_values[i])};
        BAD_REQUEST(req);
    }
    hf[1].value = (ptc_proto_str_t){(const uint8_t *)"a\0b", 3};
    BAD_REQUEST(req);

    /* Allowed edge cases: HTAB, SP and obs-text in values; IPv6 host; empty sni. */
    hf[1].value = S("\t a \x80\xff\t");
    req.host = S("fe80::1");
    req.sni = S("");
    req.method = S("M-SEARCH");
    req.target = S("*");
    ssize_t n = ptc_hblock_encode_request(&req, out, sizeof(out));
    CHECK_GT(n, 0);
    CHECK_OK(ptc_hblock_decode_request(out, (size_t)n, &got, fields, 8));
    check_request_eq(&got, &req);
}

static void test_response_refusals(void)
{
    static const unsigned bad_status[] = {0, 1, 99, 100, 102, 103, 199, 600, 999, 65535};
    raw_t r;
    raw_init(&r);
    uint8_t out[64];
    ptc_response_head_t got;
    ptc_proto_field_t fields[4];
    for (size_t i = 0; i < sizeof(bad_status) / sizeof(bad_status[0]); i++) {
        ptc_response_head_t resp = {.status = (uint16_t)bad_status[i]};
        CHECK_EQ(ptc_hblock_encode_response(&resp, out, sizeof(out)), PTC_PROTO_EHEADER);
        raw_response(&r, bad_status[i], NULL, 0);
        CHECK_EQ(ptc_hblock_decode_response(r.buf, r.len, &got, fields, 4), PTC_PROTO_EHEADER);
    }
    static const unsigned good_status[] = {101, 200, 204, 304, 418, 599};
    for (size_t i = 0; i < sizeof(good_status) / sizeof(good_status[0]); i++) {
        raw_response(&r, good_status[i], NULL, 0);
        CHECK_OK(ptc_hblock_decode_response(r.buf, r.len, &got, fields, 4));
        CHECK_EQ(got.status, good_status[i]);
    }
    /* Bad names and values, as in requests. */
    ptc_proto_field_t h[1] = {{S("Set Cookie"), S("x")}};
    ptc_response_head_t resp = {.status = 200, .headers = h, .header_cnt = 1};
    CHECK_EQ(ptc_hblock_encode_response(&resp, out, sizeof(out)), PTC_PROTO_EHEADER);
    raw_response(&r, 200, h, 1);
    CHECK_EQ(ptc_hblock_decode_response(r.buf, r.len, &got, fields, 4), PTC_PROTO_EHEADER);
    h[0] = (ptc_proto_field_t){S("Location"), S("/a\r\nSet-Cookie: x")};
    CHECK_EQ(ptc_hblock_encode_response(&resp, out, sizeof(out)), PTC_PROTO_EHEADER);
    raw_response(&r, 200, h, 1);
    CHECK_EQ(ptc_hblock_decode_response(r.buf, r.len, &got, fields, 4), PTC_PROTO_EHEADER);
    free(r.buf);
}

static void test_truncation_and_trailing(void)
{
    ptc_request_head_t req = base_request();
    size_t size = ptc_hblock_request_size(&req);
    uint8_t buf[256];
    CHECK_EQ(ptc_hblock_encode_request(&req, buf, sizeof(buf)), (ssize_t)size);
    ptc_request_head_t got;
    ptc_proto_field_t fields[8];
    uint8_t *copy;
    /* Every strict prefix is malformed (decoded from an exact-size copy). */
    for (size_t len = 0; len < size; len++) {
        CHECK_EQ(decode_request_exact(buf, len, &got, fields, 8, &copy), PTC_PROTO_EHEADER);
        free(copy);
    }
    CHECK_OK(decode_request_exact(buf, size, &got, fields, 8, &copy));
    free(copy);
    /* Any byte after the last header is an error. */
    buf[size] = 0;
    CHECK_EQ(decode_request_exact(buf, size + 1, &got, fields, 8, &copy), PTC_PROTO_EHEADER);
    free(copy);

    ptc_response_head_t resp = {.status = 200, .headers = base_fields, .header_cnt = 3};
    size = ptc_hblock_response_size(&resp);
    CHECK_EQ(ptc_hblock_encode_response(&resp, buf, sizeof(buf)), (ssize_t)size);
    ptc_response_head_t rgot;
    for (size_t len = 0; len < size; len++) {
        CHECK_EQ(decode_response_exact(buf, len, &rgot, fields, 8, &copy), PTC_PROTO_EHEADER);
        free(copy);
    }
    buf[size] = 'x';
    CHECK_EQ(decode_response_exact(buf, size + 1, &rgot, fields, 8, &copy), PTC_PROTO_EHEADER);
    free(copy);
    CHECK_OK(decode_response_exact(buf, size, &rgot, fields, 8, &copy));
    free(copy);
}

static void test_count_and_max_fields(void)
{
    ptc_response_head_t resp = {.status = 200, .headers = base_fields, .header_cnt = 3};
    uint8_t buf[128];
    size_t size = (size_t)ptc_hblock_encode_response(&resp, buf, sizeof(buf));
    ptc_response_head_t got;
    ptc_proto_field_t fields[8];

    /* A count larger than the data: EHEADER, even when max_fields would allow it. */
    buf[3] = 4;
    CHECK_EQ(ptc_hblock_decode_response(buf, size, &got, fields, 8), PTC_PROTO_EHEADER);
    buf[2] = 0xff;
    buf[3] = 0xff;
    CHECK_EQ(ptc_hblock_decode_response(buf, size, &got, fields, 8), PTC_PROTO_EHEADER);
    /* A smaller count leaves trailing bytes. */
    buf[2] = 0;
    buf[3] = 2;
    CHECK_EQ(ptc_hblock_decode_response(buf, size, &got, fields, 8), PTC_PROTO_EHEADER);
    buf[3] = 3;

    /* More headers than the caller's array: ELIMIT; exactly as many: fine. */
    CHECK_EQ(ptc_hblock_decode_response(buf, size, &got, fields, 2), PTC_PROTO_ELIMIT);
    CHECK_EQ(ptc_hblock_decode_response(buf, size, &got, NULL, 0), PTC_PROTO_ELIMIT);
    CHECK_OK(ptc_hblock_decode_response(buf, size, &got, fields, 3));
    CHECK_UEQ(got.header_cnt, 3);

    /* Malformed and too many: the malformation wins (EHEADER), so ELIMIT always means a
     * well-formed block. */
    buf[size - 5] = ' '; /* a byte of the last name ("X-Empty") */
    CHECK_EQ(ptc_hblock_decode_response(buf, size, &got, fields, 2), PTC_PROTO_EHEADER);

    /* The same for requests. */
    ptc_request_head_t req = base_request();
    size = (size_t)ptc_hblock_encode_request(&req, buf, sizeof(buf));
    ptc_request_head_t rgot;
    CHECK_EQ(ptc_hblock_decode_request(buf, size, &rgot, fields, 1), PTC_PROTO_ELIMIT);
    CHECK_OK(ptc_hblock_decode_request(buf, size, &rgot, fields, 3));
    size_t count_at = size - (2 + 4 + 2 + 15) - (2 + 6 + 2 + 3) - (2 + 7 + 2) - 2;
    CHECK_EQ(buf[count_at + 1], 3);
    buf[count_at + 1] = 9;
    CHECK_EQ(ptc_hblock_decode_request(buf, size, &rgot, fields, 8), PTC_PROTO_EHEADER);

    /* A string length running past the end. */
    buf[count_at + 1] = 3;
    buf[count_at + 2] = 0x7f; /* first name length: 0x7f04 */
    CHECK_EQ(ptc_hblock_decode_request(buf, size, &rgot, fields, 8), PTC_PROTO_EHEADER);
}

static void test_validators(void)
{
    CHECK(ptc_hblock_valid_name((const uint8_t *)"X-Forwarded-For", 15));
    CHECK(ptc_hblock_valid_name((const uint8_t *)"!#$%&'*+-.^_`|~", 15));
    CHECK(!ptc_hblock_valid_name((const uint8_t *)"", 0));
    CHECK(!ptc_hblock_valid_name((const uint8_t *)"a b", 3));
    CHECK(!ptc_hblock_valid_name((const uint8_t *)"a:b", 3));
    CHECK(!ptc_hblock_valid_name((const uint8_t *)"a{", 2));
    CHECK(ptc_hblock_valid_value((const uint8_t *)"", 0));
    CHECK(ptc_hblock_valid_value((const uint8_t *)"a \tb\x80", 5));
    CHECK(!ptc_hblock_valid_value((const uint8_t *)"a\r", 2));
    CHECK(!ptc_hblock_valid_value((const uint8_t *)"a\n", 2));
    CHECK(!ptc_hblock_valid_value((const uint8_t *)"a\0", 2));
    /* Each byte value: names take exactly the 77 tchar, values all but 32 CTLs and DEL. */
    int names = 0;
    int values = 0;
    for (unsigned c = 0; c < 256; c++) {
        uint8_t b = (uint8_t)c;
        names += ptc_hblock_valid_name(&b, 1);
        values += ptc_hblock_valid_value(&b, 1);
    }
    CHECK_EQ(names, 77);
    CHECK_EQ(values, 256 - 32 - 1 + 1); /* HTAB is the one CTL allowed */
}

/* ---- random round trips ---- */

static uint64_t rng_state = 0x6b6c6f636b5eedULL;

static uint32_t rng_below(uint32_t n)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32) % n;
}

static ptc_proto_str_t random_str(uint8_t *pool, const char *alphabet, size_t min, size_t max)
{
    size_t len = min + rng_below((uint32_t)(max - min + 1));
    size_t alen = strlen(alphabet);
    for (size_t i = 0; i < len; i++) {
        pool[i] = (uint8_t)alphabet[rng_below((uint32_t)alen)];
    }
    return (ptc_proto_str_t){pool, len};
}

static void test_random_round_trips(void)
{
    ptc_test_diag("hblock random round trips: seed 0x%016" PRIx64, rng_state);
    static uint8_t pool[64 * 1024];
    static uint8_t buf[64 * 1024];
    static const char *tchar = "abcXYZ019!#$%&'*+-.^_`|~";
    static const char *vchar = "aZ9 \t\"(),/:;<=>?@[\\]{}\x80\xfe";
    for (int iter = 0; iter < 2000; iter++) {
        size_t used = 0;
        ptc_proto_field_t h[20];
        size_t cnt = rng_below(20);
        ptc_request_head_t req = {
            .scheme = (ptc_proto_scheme_t)rng_below(2),
            .validate_tls = rng_below(2),
            .upgrade = rng_below(2),
            .port = (uint16_t)(1 + rng_below(65535)),
            .timeout_ms = rng_below(UINT32_MAX),
        };
        req.host = random_str(pool + used, "ab-._:19", 1, 255);
        used += req.host.len;
        req.sni = random_str(pool + used, "ab-._19", 0, 255);
        used += req.sni.len;
        req.method = random_str(pool + used, tchar, 1, 32);
        used += req.method.len;
        req.target = random_str(pool + used, "/?&=%#ab19~!", 1, 300);
        pool[used] = '/'; /* origin form */
        used += req.target.len;
        for (size_t i = 0; i < cnt; i++) {
            h[i].name = random_str(pool + used, tchar, 1, 40);
            used += h[i].name.len;
            h[i].value = random_str(pool + used, vchar, 0, 200);
            used += h[i].value.len;
        }
        req.headers = h;
        req.header_cnt = cnt;
        ssize_t n = ptc_hblock_encode_request(&req, buf, sizeof(buf));
        CHECK_EQ(n, (ssize_t)ptc_hblock_request_size(&req));
        ptc_request_head_t got;
        ptc_proto_field_t fields[20];
        CHECK_OK(ptc_hblock_decode_request(buf, (size_t)n, &got, fields, 20));
        check_request_eq(&got, &req);

        ptc_response_head_t resp = {
            .status = (uint16_t)(200 + rng_below(400)), .headers = h, .header_cnt = cnt};
        n = ptc_hblock_encode_response(&resp, buf, sizeof(buf));
        CHECK_EQ(n, (ssize_t)ptc_hblock_response_size(&resp));
        ptc_response_head_t rgot;
        CHECK_OK(ptc_hblock_decode_response(buf, (size_t)n, &rgot, fields, 20));
        CHECK_EQ(rgot.status, resp.status);
        CHECK_UEQ(rgot.header_cnt, cnt);
        for (size_t i = 0; i < cnt; i++) {
            CHECK_STR(rgot.headers[i].name, h[i].name);
            CHECK_STR(rgot.headers[i].value, h[i].value);
        }
    }
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_request_bytes),
    PTC_TEST(test_response_bytes),
    PTC_TEST(test_many_headers_and_max_lengths),
    PTC_TEST(test_sizes_and_space),
    PTC_TEST(test_request_refusals),
    PTC_TEST(test_response_refusals),
    PTC_TEST(test_truncation_and_trailing),
    PTC_TEST(test_count_and_max_fields),
    PTC_TEST(test_validators),
    PTC_TEST(test_random_round_trips),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
