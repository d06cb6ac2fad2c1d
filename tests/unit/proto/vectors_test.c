/* SPDX-License-Identifier: MIT */
/*
 * The worked examples of docs/protocol.md used as test vectors. The spec is read at run time
 * (PTC_SRCDIR) and every `<!-- vector: NAME -->` hex block is extracted, so the document and
 * the codecs cannot drift apart: each frame vector is decoded with proto/frame.h (and the
 * header blocks with proto/hblock.h), every field is checked against the values the spec
 * annotates, and the frame is re-encoded to the same bytes. The signature example of §11.6 is
 * checked with libsodium (a test may link it; proto/ itself does not): the key pair from the
 * seed, the signed message rebuilt from its inputs, the signature and its verification.
 */
#include "proto/frame.h"
#include "proto/hblock.h"
#include "tests/support/test.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- extracting the vectors from the spec ---- */

#define MAX_VECTORS 64
#define MAX_VECTOR_LEN 4096

typedef struct vector {
    char name[64];
    uint8_t bytes[MAX_VECTOR_LEN];
    size_t len;
} vector_t;

typedef struct spec {
    char *text; /* the whole document, NUL-terminated */
    size_t len;
    vector_t vectors[MAX_VECTORS];
    size_t cnt;
} spec_t;

static spec_t spec;

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Returns the line starting at *pos (without its newline) and advances *pos past it. */
static const char *next_line(size_t *pos, size_t *line_len)
{
    if (*pos >= spec.len) {
        return NULL;
    }
    const char *line = spec.text + *pos;
    const char *nl = memchr(line, '\n', spec.len - *pos);
    size_t n = nl != NULL ? (size_t)(nl - line) : spec.len - *pos;
    *pos += n + (nl != NULL ? 1 : 0);
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ')) {
        n--;
    }
    *line_len = n;
    return line;
}

static bool line_is(const char *line, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(line, want, n) == 0;
}

/* Appends the hex pairs of one block line (annotation after '#' ignored) to v. */
static void parse_hex_line(vector_t *v, const char *line, size_t n)
{
    const char *hash = memchr(line, '#', n);
    size_t end = hash != NULL ? (size_t)(hash - line) : n;
    size_t i = 0;
    while (i < end) {
        if (line[i] == ' ' || line[i] == '\t') {
            i++;
            continue;
        }
        int hi = hex_digit(line[i]);
        int lo = i + 1 < end ? hex_digit(line[i + 1]) : -1;
        bool pair_ends = i + 2 >= end || line[i + 2] == ' ' || line[i + 2] == '\t';
        if (hi < 0 || lo < 0 || !pair_ends) {
            ptc_test_fail(__FILE__, __LINE__, "vector %s: bad hex token in line \"%.*s\"", v->name,
                          (int)n, line);
        }
        CHECK_LT(v->len, MAX_VECTOR_LEN);
        v->bytes[v->len++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
}

/*
 * Reads docs/protocol.md and extracts every vector. Fails the case when the file is missing,
 * a vector line is not followed by a ```hex block, a name repeats, or a ```hex block has no
 * vector line (every hex example in the spec must be a vector).
 */
static void load_spec(void)
{
    if (spec.text != NULL) {
        return;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/docs/protocol.md", ptc_test_srcdir());
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        ptc_test_fail(__FILE__, __LINE__, "cannot open %s (is PTC_SRCDIR set?)", path);
    }
    CHECK_OK(fseek(fp, 0, SEEK_END));
    long size = ftell(fp);
    CHECK_GT(size, 0);
    CHECK_OK(fseek(fp, 0, SEEK_SET));
    spec.text = malloc((size_t)size + 1);
    CHECK_NOT_NULL(spec.text);
    CHECK_EQ(fread(spec.text, 1, (size_t)size, fp), size);
    fclose(fp);
    spec.text[size] = '\0';
    spec.len = (size_t)size;

    static const char prefix[] = "<!-- vector: ";
    static const char suffix[] = " -->";
    size_t pos = 0;
    size_t n = 0;
    const char *line;
    while ((line = next_line(&pos, &n)) != NULL) {
        if (line_is(line, n, "```hex")) {
            ptc_test_fail(__FILE__, __LINE__, "a ```hex block at offset %zu has no vector line",
                          pos);
        }
        size_t plen = sizeof(prefix) - 1;
        size_t slen = sizeof(suffix) - 1;
        if (n <= plen + slen || memcmp(line, prefix, plen) != 0 ||
            memcmp(line + n - slen, suffix, slen) != 0) {
            continue;
        }
        CHECK_LT(spec.cnt, MAX_VECTORS);
        vector_t *v = &spec.vectors[spec.cnt++];
        size_t name_len = n - plen - slen;
        CHECK_LT(name_len, sizeof(v->name));
        memcpy(v->name, line + plen, name_len);
        v->name[name_len] = '\0';
        for (size_t i = 0; i + 1 < spec.cnt; i++) {
            CHECK_STRNE(spec.vectors[i].name, v->name);
        }
        line = next_line(&pos, &n);
        if (line == NULL || !line_is(line, n, "```hex")) {
            ptc_test_fail(__FILE__, __LINE__, "vector %s: not followed by a ```hex block", v->name);
        }
        for (;;) {
            line = next_line(&pos, &n);
            if (line == NULL) {
                ptc_test_fail(__FILE__, __LINE__, "vector %s: unterminated block", v->name);
            }
            if (line_is(line, n, "```")) {
                break;
            }
            parse_hex_line(v, line, n);
        }
        CHECK_GT(v->len, 0);
    }
}

static const vector_t *vec(const char *name)
{
    load_spec();
    for (size_t i = 0; i < spec.cnt; i++) {
        if (strcmp(spec.vectors[i].name, name) == 0) {
            return &spec.vectors[i];
        }
    }
    ptc_test_fail(__FILE__, __LINE__, "docs/protocol.md has no vector %s", name);
}

/* ---- what the spec's annotations say about each frame vector ---- */

typedef struct frame_expect {
    const char *name;
    uint8_t type;
    uint8_t flags;
    uint32_t stream;
    uint32_t length;
} frame_expect_t;

static const frame_expect_t frames[] = {
    {"data-end-stream", PTC_FRAME_DATA, PTC_FLAG_END_STREAM, 1, 5},
    {"data-empty-end-stream", PTC_FRAME_DATA, PTC_FLAG_END_STREAM, 5, 0},
    {"request-get", PTC_FRAME_REQUEST, PTC_FLAG_END_STREAM, 1, 95},
    {"request-upgrade", PTC_FRAME_REQUEST, 0, 3, 100},
    {"response-ok", PTC_FRAME_RESPONSE, 0, 1, 48},
    {"response-no-content", PTC_FRAME_RESPONSE, PTC_FLAG_END_STREAM, 7, 4},
    {"reset-backend-refused", PTC_FRAME_RESET, 0, 3, 4},
    {"window-tunnel", PTC_FRAME_WINDOW, 0, 0, 4},
    {"window-stream", PTC_FRAME_WINDOW, 0, 1, 4},
    {"ping", PTC_FRAME_PING, 0, 0, 8},
    {"ping-ack", PTC_FRAME_PING, PTC_FLAG_ACK, 0, 8},
    {"goaway-draining", PTC_FRAME_GOAWAY, 0, 0, 16},
    {"goaway-auth-failed", PTC_FRAME_GOAWAY, 0, 0, 21},
    {"control-challenge", PTC_FRAME_CONTROL, 0, 0, 89},
};

static const char *const signature_vectors[] = {
    "sig-seed", "sig-public-key", "sig-nonce", "sig-cert-hash", "sig-message", "sig-signature",
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Decodes vector v as exactly one frame with the default limits, checking the header. */
static void decode_expect(const frame_expect_t *e, ptc_frame_t *f)
{
    const vector_t *v = vec(e->name);
    ssize_t n = ptc_frame_decode(v->bytes, v->len, NULL, f);
    if (n < 0) {
        ptc_test_fail(__FILE__, __LINE__, "vector %s: decode failed with %zd", e->name, n);
    }
    CHECK_EQ(n, v->len);
    CHECK(!f->is_unknown);
    CHECK_UEQ(f->stream_error, 0);
    CHECK_UEQ(f->hdr.type, e->type);
    CHECK_UEQ(f->hdr.flags, e->flags);
    CHECK_UEQ(f->hdr.stream, e->stream);
    CHECK_UEQ(f->hdr.length, e->length);
    CHECK(f->payload == v->bytes + PTC_FRAME_HEADER_LEN);
}

static const frame_expect_t *expect_of(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(frames); i++) {
        if (strcmp(frames[i].name, name) == 0) {
            return &frames[i];
        }
    }
    ptc_test_fail(__FILE__, __LINE__, "no expectation for %s", name);
}

static ptc_frame_t decode_named(const char *name)
{
    ptc_frame_t f;
    decode_expect(expect_of(name), &f);
    return f;
}

/* Checks that out[0..n) (an encoder's result) is exactly the vector's bytes. */
static void check_reencoded(const char *name, const uint8_t *out, ssize_t n)
{
    const vector_t *v = vec(name);
    if (n < 0) {
        ptc_test_fail(__FILE__, __LINE__, "vector %s: encode failed with %zd", name, n);
    }
    CHECK_EQ(n, v->len);
    CHECK_MEMEQ(out, v->bytes, v->len);
}

static void check_str(ptc_proto_str_t s, const char *want)
{
    CHECK_EQ(s.len, strlen(want));
    CHECK_MEMEQ(s.ptr, want, s.len);
}

static void check_field(const ptc_proto_field_t *f, const char *name, const char *value)
{
    check_str(f->name, name);
    check_str(f->value, value);
}

static ptc_proto_str_t str_of(const char *s)
{
    return (ptc_proto_str_t){(const uint8_t *)s, strlen(s)};
}

/* ---- the set of vectors ---- */

/* Every vector in the spec is checked here, and every one checked here is in the spec. */
static void test_every_vector_is_known(void)
{
    load_spec();
    CHECK_EQ(spec.cnt, ARRAY_LEN(frames) + ARRAY_LEN(signature_vectors));
    for (size_t i = 0; i < spec.cnt; i++) {
        bool known = false;
        for (size_t j = 0; j < ARRAY_LEN(frames); j++) {
            known |= strcmp(spec.vectors[i].name, frames[j].name) == 0;
        }
        for (size_t j = 0; j < ARRAY_LEN(signature_vectors); j++) {
            known |= strcmp(spec.vectors[i].name, signature_vectors[j]) == 0;
        }
        if (!known) {
            ptc_test_fail(__FILE__, __LINE__, "vector %s is in the spec but not tested",
                          spec.vectors[i].name);
        }
    }
    /* Every defined frame type has at least one example (§15). */
    for (unsigned t = 0; t <= PTC_FRAME_TYPE_LAST; t++) {
        bool seen = false;
        for (size_t j = 0; j < ARRAY_LEN(frames); j++) {
            seen |= frames[j].type == t;
        }
        CHECK(seen);
    }
}

/* Generic: each frame decodes alone, every shorter prefix is incomplete, and the generic
 * encoder reproduces the bytes from the decoded header and payload. */
static void test_frames_round_trip(void)
{
    for (size_t i = 0; i < ARRAY_LEN(frames); i++) {
        const vector_t *v = vec(frames[i].name);
        ptc_frame_t f;
        decode_expect(&frames[i], &f);
        for (size_t cut = 0; cut < v->len; cut++) {
            ptc_frame_t partial;
            CHECK_EQ(ptc_frame_decode(v->bytes, cut, NULL, &partial), PTC_PROTO_EINCOMPLETE);
        }
        uint8_t out[MAX_VECTOR_LEN];
        check_reencoded(v->name, out, ptc_frame_encode(out, sizeof(out), &f.hdr, f.payload));
    }
}

/* ---- one test per frame type ---- */

static void test_data(void)
{
    uint8_t out[64];
    ptc_frame_t f = decode_named("data-end-stream");
    CHECK_MEMEQ(f.payload, "hello", 5);
    check_reencoded("data-end-stream", out,
                    ptc_frame_encode_data(out, sizeof(out), 1, PTC_FLAG_END_STREAM,
                                          (const uint8_t *)"hello", 5));

    decode_named("data-empty-end-stream");
    check_reencoded("data-empty-end-stream", out,
                    ptc_frame_encode_data(out, sizeof(out), 5, PTC_FLAG_END_STREAM, NULL, 0));
}

static void test_request_get(void)
{
    ptc_frame_t f = decode_named("request-get");
    ptc_proto_field_t fields[8];
    ptc_request_head_t req;
    CHECK_OK(ptc_hblock_decode_request(f.payload, f.hdr.length, &req, fields, 8));
    CHECK_EQ(req.scheme, PTC_PROTO_SCHEME_HTTPS);
    CHECK(req.validate_tls);
    CHECK(!req.upgrade);
    CHECK_EQ(req.port, 8443);
    CHECK_UEQ(req.timeout_ms, 85000);
    check_str(req.host, "app.internal");
    check_str(req.sni, "app.internal");
    check_str(req.method, "GET");
    check_str(req.target, "/leave?id=7");
    CHECK_EQ(req.header_cnt, 2);
    check_field(&req.headers[0], "host", "app.internal");
    check_field(&req.headers[1], "accept", "text/html");

    /* Re-encode from scratch, not from the decoded slices. */
    ptc_proto_field_t hdrs[] = {
        {str_of("host"), str_of("app.internal")},
        {str_of("accept"), str_of("text/html")},
    };
    ptc_request_head_t mine = {
        .scheme = PTC_PROTO_SCHEME_HTTPS,
        .validate_tls = true,
        .port = 8443,
        .timeout_ms = 85000,
        .host = str_of("app.internal"),
        .sni = str_of("app.internal"),
        .method = str_of("GET"),
        .target = str_of("/leave?id=7"),
        .headers = hdrs,
        .header_cnt = 2,
    };
    size_t block = ptc_hblock_request_size(&mine);
    CHECK_EQ(block, 95);
    uint8_t out[256];
    ptc_frame_header_t hdr = {(uint32_t)block, PTC_FRAME_REQUEST, PTC_FLAG_END_STREAM, 1};
    CHECK_EQ(ptc_frame_encode_header(out, sizeof(out), &hdr), PTC_FRAME_HEADER_LEN);
    ssize_t n = ptc_hblock_encode_request(&mine, out + PTC_FRAME_HEADER_LEN,
                                          sizeof(out) - PTC_FRAME_HEADER_LEN);
    CHECK_EQ(n, block);
    check_reencoded("request-get", out, PTC_FRAME_HEADER_LEN + n);
}

static void test_request_upgrade(void)
{
    ptc_frame_t f = decode_named("request-upgrade");
    ptc_proto_field_t fields[8];
    ptc_request_head_t req;
    CHECK_OK(ptc_hblock_decode_request(f.payload, f.hdr.length, &req, fields, 8));
    CHECK_EQ(req.scheme, PTC_PROTO_SCHEME_HTTP);
    CHECK(!req.validate_tls);
    CHECK(req.upgrade);
    CHECK_EQ(req.port, 8080);
    CHECK_UEQ(req.timeout_ms, 0);
    check_str(req.host, "10.0.0.7");
    CHECK_EQ(req.sni.len, 0);
    check_str(req.method, "GET");
    check_str(req.target, "/ws");
    CHECK_EQ(req.header_cnt, 3);
    check_field(&req.headers[0], "host", "chat.internal");
    check_field(&req.headers[1], "upgrade", "websocket");
    check_field(&req.headers[2], "sec-websocket-version", "13");

    /* A decoder given room for fewer fields than the block has refuses with ELIMIT. */
    CHECK_EQ(ptc_hblock_decode_request(f.payload, f.hdr.length, &req, fields, 2), PTC_PROTO_ELIMIT);

    /* Re-encode from the decoded head. */
    CHECK_OK(ptc_hblock_decode_request(f.payload, f.hdr.length, &req, fields, 8));
    uint8_t out[256];
    size_t block = ptc_hblock_request_size(&req);
    CHECK_EQ(block, 100);
    ptc_frame_header_t hdr = {(uint32_t)block, PTC_FRAME_REQUEST, 0, 3};
    CHECK_EQ(ptc_frame_encode_header(out, sizeof(out), &hdr), PTC_FRAME_HEADER_LEN);
    ssize_t n = ptc_hblock_encode_request(&req, out + PTC_FRAME_HEADER_LEN,
                                          sizeof(out) - PTC_FRAME_HEADER_LEN);
    CHECK_EQ(n, block);
    check_reencoded("request-upgrade", out, PTC_FRAME_HEADER_LEN + n);
}

static void test_responses(void)
{
    ptc_frame_t f = decode_named("response-ok");
    ptc_proto_field_t fields[8];
    ptc_response_head_t resp;
    CHECK_OK(ptc_hblock_decode_response(f.payload, f.hdr.length, &resp, fields, 8));
    CHECK_EQ(resp.status, 200);
    CHECK_EQ(resp.header_cnt, 2);
    check_field(&resp.headers[0], "content-type", "text/html");
    check_field(&resp.headers[1], "content-length", "5");

    ptc_proto_field_t hdrs[] = {
        {str_of("content-type"), str_of("text/html")},
        {str_of("content-length"), str_of("5")},
    };
    ptc_response_head_t mine = {.status = 200, .headers = hdrs, .header_cnt = 2};
    uint8_t out[128];
    size_t block = ptc_hblock_response_size(&mine);
    CHECK_EQ(block, 48);
    ptc_frame_header_t hdr = {(uint32_t)block, PTC_FRAME_RESPONSE, 0, 1};
    CHECK_EQ(ptc_frame_encode_header(out, sizeof(out), &hdr), PTC_FRAME_HEADER_LEN);
    ssize_t n = ptc_hblock_encode_response(&mine, out + PTC_FRAME_HEADER_LEN,
                                           sizeof(out) - PTC_FRAME_HEADER_LEN);
    check_reencoded("response-ok", out, PTC_FRAME_HEADER_LEN + n);

    f = decode_named("response-no-content");
    CHECK_OK(ptc_hblock_decode_response(f.payload, f.hdr.length, &resp, NULL, 0));
    CHECK_EQ(resp.status, 204);
    CHECK_EQ(resp.header_cnt, 0);
    mine = (ptc_response_head_t){.status = 204};
    hdr = (ptc_frame_header_t){4, PTC_FRAME_RESPONSE, PTC_FLAG_END_STREAM, 7};
    CHECK_EQ(ptc_frame_encode_header(out, sizeof(out), &hdr), PTC_FRAME_HEADER_LEN);
    n = ptc_hblock_encode_response(&mine, out + PTC_FRAME_HEADER_LEN,
                                   sizeof(out) - PTC_FRAME_HEADER_LEN);
    check_reencoded("response-no-content", out, PTC_FRAME_HEADER_LEN + n);
}

static void test_reset(void)
{
    ptc_frame_t f = decode_named("reset-backend-refused");
    CHECK_UEQ(ptc_frame_reset_code(&f), PTC_WIRE_BACKEND_REFUSED);
    CHECK_UEQ(PTC_WIRE_BACKEND_REFUSED, 0x10);
    CHECK_STREQ(ptc_wire_error_name(ptc_frame_reset_code(&f)), "BACKEND_REFUSED");
    uint8_t out[32];
    check_reencoded("reset-backend-refused", out,
                    ptc_frame_encode_reset(out, sizeof(out), 3, PTC_WIRE_BACKEND_REFUSED));
}

static void test_windows(void)
{
    uint8_t out[32];
    ptc_frame_t f = decode_named("window-tunnel");
    CHECK_UEQ(ptc_frame_window_increment(&f), 131072);
    check_reencoded("window-tunnel", out, ptc_frame_encode_window(out, sizeof(out), 0, 131072));

    f = decode_named("window-stream");
    CHECK_UEQ(ptc_frame_window_increment(&f), 65536);
    check_reencoded("window-stream", out, ptc_frame_encode_window(out, sizeof(out), 1, 65536));
}

static void test_pings(void)
{
    static const uint8_t data[8] = {0, 0, 0, 0, 0, 0, 0x3a, 0x98};
    uint8_t out[32];
    ptc_frame_t f = decode_named("ping");
    CHECK_MEMEQ(ptc_frame_ping_data(&f), data, 8);
    check_reencoded("ping", out, ptc_frame_encode_ping(out, sizeof(out), 0, data));

    ptc_frame_t ack = decode_named("ping-ack");
    CHECK_MEMEQ(ptc_frame_ping_data(&ack), ptc_frame_ping_data(&f), 8);
    check_reencoded("ping-ack", out, ptc_frame_encode_ping(out, sizeof(out), PTC_FLAG_ACK, data));
}

static void test_goaways(void)
{
    uint8_t out[64];
    size_t dlen = 0;
    ptc_frame_t f = decode_named("goaway-draining");
    CHECK_UEQ(ptc_frame_goaway_last_stream(&f), 7);
    CHECK_UEQ(ptc_frame_goaway_error(&f), PTC_WIRE_NO_ERROR);
    const uint8_t *debug = ptc_frame_goaway_debug(&f, &dlen);
    CHECK_EQ(dlen, 8);
    CHECK_MEMEQ(debug, "draining", 8);
    check_reencoded("goaway-draining", out,
                    ptc_frame_encode_goaway(out, sizeof(out), 7, PTC_WIRE_NO_ERROR,
                                            (const uint8_t *)"draining", 8));

    f = decode_named("goaway-auth-failed");
    CHECK_UEQ(ptc_frame_goaway_last_stream(&f), 0);
    CHECK_UEQ(ptc_frame_goaway_error(&f), PTC_WIRE_AUTH_FAILED);
    CHECK_UEQ(PTC_WIRE_AUTH_FAILED, 0x09);
    debug = ptc_frame_goaway_debug(&f, &dlen);
    CHECK_EQ(dlen, 13);
    CHECK_MEMEQ(debug, "bad signature", 13);
    check_reencoded("goaway-auth-failed", out,
                    ptc_frame_encode_goaway(out, sizeof(out), 0, PTC_WIRE_AUTH_FAILED,
                                            (const uint8_t *)"bad signature", 13));
}

/* Base64url without padding (§11.2 rule 3) of bin[0..len) into a static buffer. */
static const char *b64url(const uint8_t *bin, size_t len)
{
    static char out[256];
    CHECK_LE(sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING), sizeof(out));
    return sodium_bin2base64(out, sizeof(out), bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void test_control_challenge(void)
{
    CHECK_GE(sodium_init(), 0);
    ptc_frame_t f = decode_named("control-challenge");
    const vector_t *nonce = vec("sig-nonce");
    char want[256];
    snprintf(want, sizeof(want), "{\"type\":\"challenge\",\"versions\":[1],\"nonce\":\"%s\"}",
             b64url(nonce->bytes, nonce->len));
    CHECK_EQ(f.hdr.length, strlen(want));
    CHECK_MEMEQ(f.payload, want, f.hdr.length);
    /* The same document is the example of §11.3. */
    CHECK_CONTAINS(spec.text, want);

    uint8_t out[256];
    check_reencoded(
        "control-challenge", out,
        ptc_frame_encode_control(out, sizeof(out), (const uint8_t *)want, strlen(want)));
}

/* ---- the signature example of §11.6 ---- */

#define EXAMPLE_CONNECTOR_ID "cn_5f2a9c0e7b134d68"

static void test_signature_message(void)
{
    CHECK_GE(sodium_init(), 0);
    const vector_t *nonce = vec("sig-nonce");
    const vector_t *cert_hash = vec("sig-cert-hash");
    const vector_t *message = vec("sig-message");
    CHECK_EQ(nonce->len, 32);
    CHECK_EQ(cert_hash->len, 32);
    for (size_t i = 0; i < 32; i++) {
        CHECK_EQ(nonce->bytes[i], 0x40 + i);
    }

    /* The example's certificate hash is SHA-256 of a fixed text (§11.6). */
    static const char cert_text[] = "portico example certificate";
    CHECK_EQ(strlen(cert_text), 27);
    uint8_t digest[crypto_hash_sha256_BYTES];
    CHECK_OK(crypto_hash_sha256(digest, (const uint8_t *)cert_text, strlen(cert_text)));
    CHECK_MEMEQ(digest, cert_hash->bytes, 32);

    /* context || nonce || cert_hash || u16 id_length || connector_id */
    static const char context[] = "portico tunnel auth v1"; /* plus its NUL: 23 bytes */
    CHECK_EQ(sizeof(context), 23);
    uint8_t msg[256];
    size_t len = 0;
    memcpy(msg + len, context, sizeof(context));
    len += sizeof(context);
    memcpy(msg + len, nonce->bytes, 32);
    len += 32;
    memcpy(msg + len, cert_hash->bytes, 32);
    len += 32;
    size_t id_len = strlen(EXAMPLE_CONNECTOR_ID);
    msg[len++] = (uint8_t)(id_len >> 8);
    msg[len++] = (uint8_t)id_len;
    memcpy(msg + len, EXAMPLE_CONNECTOR_ID, id_len);
    len += id_len;

    CHECK_EQ(len, 89 + id_len);
    CHECK_EQ(message->len, 108);
    CHECK_EQ(message->len, len);
    CHECK_MEMEQ(message->bytes, msg, len);
}

static void test_signature(void)
{
    CHECK_GE(sodium_init(), 0);
    const vector_t *seed = vec("sig-seed");
    const vector_t *public_key = vec("sig-public-key");
    const vector_t *message = vec("sig-message");
    const vector_t *signature = vec("sig-signature");
    CHECK_EQ(seed->len, crypto_sign_SEEDBYTES);
    CHECK_EQ(public_key->len, crypto_sign_PUBLICKEYBYTES);
    CHECK_EQ(signature->len, crypto_sign_BYTES);
    for (size_t i = 0; i < seed->len; i++) {
        CHECK_EQ(seed->bytes[i], i);
    }

    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    CHECK_OK(crypto_sign_seed_keypair(pk, sk, seed->bytes));
    CHECK_MEMEQ(pk, public_key->bytes, sizeof(pk));

    /* Ed25519 signing is deterministic: libsodium must produce the spec's exact bytes. */
    uint8_t sig[crypto_sign_BYTES];
    CHECK_OK(crypto_sign_detached(sig, NULL, message->bytes, message->len, sk));
    CHECK_MEMEQ(sig, signature->bytes, sizeof(sig));
    CHECK_OK(crypto_sign_verify_detached(signature->bytes, message->bytes, message->len,
                                         public_key->bytes));

    /* The binding matters: a different nonce, certificate or id does not verify. */
    static const size_t flips[] = {0, 23, 55, 89, 107};
    for (size_t i = 0; i < ARRAY_LEN(flips); i++) {
        uint8_t altered[256];
        memcpy(altered, message->bytes, message->len);
        altered[flips[i]] ^= 0x01;
        CHECK_EQ(
            crypto_sign_verify_detached(signature->bytes, altered, message->len, public_key->bytes),
            -1);
    }
    sodium_memzero(sk, sizeof(sk));
}

/* The JSON examples quote the example's values in base64url: they must be the same. */
static void test_examples_quote_the_vectors(void)
{
    CHECK_GE(sodium_init(), 0);
    load_spec();
    const vector_t *signature = vec("sig-signature");
    const vector_t *public_key = vec("sig-public-key");
    const vector_t *seed = vec("sig-seed");

    /* The auth document of §11.4 carries the example's signature and connector id. */
    static const char marker[] = "<!-- example: auth-document -->\n```json\n";
    const char *doc = strstr(spec.text, marker);
    CHECK_NOT_NULL(doc);
    doc += strlen(marker);
    const char *end = strchr(doc, '\n');
    CHECK_NOT_NULL(end);
    char auth[2048];
    CHECK_LT((size_t)(end - doc), sizeof(auth));
    memcpy(auth, doc, (size_t)(end - doc));
    auth[end - doc] = '\0';
    char want[256];
    snprintf(want, sizeof(want), "\"signature\":\"%s\"", b64url(signature->bytes, signature->len));
    CHECK_CONTAINS(auth, want);
    CHECK_CONTAINS(auth, "\"connector_id\":\"" EXAMPLE_CONNECTOR_ID "\"");
    CHECK_CONTAINS(auth, "\"type\":\"auth\"");

    /* Registration (§12.2) and the credential file (§12.5) show the same key pair. */
    snprintf(want, sizeof(want), "\"public_key\":\"%s\"",
             b64url(public_key->bytes, public_key->len));
    CHECK_CONTAINS(spec.text, want);
    snprintf(want, sizeof(want), "\"secret_key\":\"%s\"", b64url(seed->bytes, seed->len));
    CHECK_CONTAINS(spec.text, want);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_every_vector_is_known),
    PTC_TEST(test_frames_round_trip),
    PTC_TEST(test_data),
    PTC_TEST(test_request_get),
    PTC_TEST(test_request_upgrade),
    PTC_TEST(test_responses),
    PTC_TEST(test_reset),
    PTC_TEST(test_windows),
    PTC_TEST(test_pings),
    PTC_TEST(test_goaways),
    PTC_TEST(test_control_challenge),
    PTC_TEST(test_signature_message),
    PTC_TEST(test_signature),
    PTC_TEST(test_examples_quote_the_vectors),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
