/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/frame.c: exact bytes of each encoder, encode -> decode round trips of
 * every frame type, every refusal with its return code and wire error, partial input at every
 * byte boundary, unknown types, and a seeded random round trip of frame sequences (the seed
 * is printed; PTC_FRAME_SEED=<n> replays one).
 */
#include "proto/frame.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ptc_frame_limits_t defaults = PTC_FRAME_LIMITS_DEFAULT;

/* Writes a raw header (no validation), so tests can build frames the encoders refuse. */
static void raw_header(uint8_t *p, uint32_t length, uint8_t type, uint8_t flags, uint32_t sid)
{
    p[0] = (uint8_t)(length >> 16);
    p[1] = (uint8_t)(length >> 8);
    p[2] = (uint8_t)length;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)(sid >> 24);
    p[6] = (uint8_t)(sid >> 16);
    p[7] = (uint8_t)(sid >> 8);
    p[8] = (uint8_t)sid;
}

/* Decodes buf[0..len) expecting error err with wire code wire, and the header intact. */
static void expect_refused(const uint8_t *buf, size_t len, const ptc_frame_limits_t *lim,
                           ssize_t err, uint32_t wire)
{
    ptc_frame_t f;
    ssize_t n = ptc_frame_decode(buf, len, lim, &f);
    CHECK_EQ(n, err);
    CHECK_UEQ(f.wire_error, wire);
    CHECK_UEQ(f.stream_error, 0);
}

/* ---- exact bytes and round trips ---- */

static void test_data_bytes(void)
{
    uint8_t buf[64];
    ssize_t n = ptc_frame_encode_data(buf, sizeof(buf), 0x01020304, PTC_FLAG_END_STREAM,
                                      (const uint8_t *)"hello", 5);
    static const uint8_t want[] = {0x00, 0x00, 0x05, 0x00, 0x01, 0x01, 0x02,
                                   0x03, 0x04, 'h',  'e',  'l',  'l',  'o'};
    CHECK_EQ(n, sizeof(want));
    CHECK_MEMEQ(buf, want, sizeof(want));

    ptc_frame_t f;
    CHECK_EQ(ptc_frame_decode(buf, (size_t)n, &defaults, &f), n);
    CHECK_UEQ(f.hdr.length, 5);
    CHECK_UEQ(f.hdr.type, PTC_FRAME_DATA);
    CHECK_UEQ(f.hdr.flags, PTC_FLAG_END_STREAM);
    CHECK_UEQ(f.hdr.stream, 0x01020304);
    CHECK(f.payload == buf + 9); /* a slice into the input, not a copy */
    CHECK(!f.is_unknown);
    CHECK_UEQ(f.stream_error, 0);
    CHECK_UEQ(f.wire_error, 0);

    /* Zero-length DATA with END_STREAM is a valid frame. */
    n = ptc_frame_encode_data(buf, sizeof(buf), 7, PTC_FLAG_END_STREAM, NULL, 0);
    CHECK_EQ(n, 9);
    CHECK_EQ(ptc_frame_decode(buf, 9, NULL, &f), 9);
    CHECK_UEQ(f.hdr.length, 0);
    CHECK_UEQ(f.hdr.stream, 7);
}

static void test_fixed_types_bytes(void)
{
    uint8_t buf[64];
    ptc_frame_t f;

    ssize_t n = ptc_frame_encode_reset(buf, sizeof(buf), 3, PTC_WIRE_CANCEL);
    static const uint8_t reset[] = {0, 0, 4, 3, 0, 0, 0, 0, 3, 0, 0, 0, 7};
    CHECK_EQ(n, sizeof(reset));
    CHECK_MEMEQ(buf, reset, sizeof(reset));
    CHECK_EQ(ptc_frame_decode(buf, (size_t)n, &defaults, &f), n);
    CHECK_UEQ(f.hdr.type, PTC_FRAME_RESET);
    CHECK_UEQ(ptc_frame_reset_code(&f), PTC_WIRE_CANCEL);

    n = ptc_frame_encode_window(buf, sizeof(buf), 0, PTC_FRAME_WINDOW_INCREMENT_MAX);
    static const uint8_t window[] = {0, 0, 4, 4, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff};
    CHECK_EQ(n, sizeof(window));
    CHECK_MEMEQ(buf, window, sizeof(window));
    CHECK_EQ(ptc_frame_decode(buf, (size_t)n, &defaults, &f), n);
    CHECK_UEQ(ptc_frame_window_increment(&f), 0x7fffffff);
    CHECK_UEQ(f.stream_error, 0);

    n = ptc_frame_encode_window(buf, sizeof(buf), 9, 1);
    CHECK_EQ(n, 13);
    CHECK_EQ(ptc_frame_decode(buf, (size_t)n, &defaults, &f), n);
    CHECK_UEQ(f.hdr.stream, 9);
    CHECK_UEQ(ptc_frame_window_increment(&f), 1);

    static const uint8_t data8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    n = ptc_frame_encode_ping(buf, sizeof(buf), PTC_FLAG_ACK, data8);
    static const uint8_t ping[] = {0, 0, 8, 5, 2, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    CHECK_EQ(n, sizeof(ping));
    CHECK_MEMEQ(buf, ping, sizeof(ping));
    CHECK_EQ(ptc_frame_decode(buf, (size_t)n, &defaults, &f), n);
    CHECK_UEQ(f.hdr.flags, PTC_FLAG_ACK);
    CHECK_MEMEQ(ptc_frame_ping_data(&f), data8, 8);

    n = ptc_frame_encode_goaway(buf, sizeof(buf), 0x11, PTC_WIRE_AUTH_FAILED,
                                (const uint8_t *)"revoked", 7);
    static const uint8_t goaway[] = {0,    0, 15, 6, 0, 0,   0,   0,   0,   0,   0,   0,
                                     0x11, 0, 0,  0, 9, 'r', 'e', 'v', 'o', 'k', 'e', 'd'};
    CHECK_EQ(n, sizeof(goaway));
    CHECK_MEMEQ(buf, goaway, sizeof(goaway));
    CHECK_EQ(ptc_frame_decode(buf, (size_t)n, &defaults, &f), n);
    CHECK_UEQ(ptc_frame_goaway_last_stream(&f), 0x11);
    CHECK_UEQ(ptc_frame_goaway_error(&f), PTC_WIRE_AUTH_FAILED);
    size_t dlen = 99;
    const uint8_t *debug = ptc_frame_goaway_debug(&f, &dlen);
    CHECK_UEQ(dlen, 7);
    CHECK_MEMEQ(debug, "revoked", 7);

    /* GOAWAY without debug text, and with the longest allowed. */
    n = ptc_frame_encode_goaway(buf, sizeof(buf), 0, PTC_WIRE_NO_ERROR, NULL, 0);
    CHECK_EQ(n, 17);
    CHECK_EQ(ptc_frame_decode(buf, (size_t)n, &defaults, &f), n);
    ptc_frame_goaway_debug(&f, &dlen);
    CHECK_UEQ(dlen, 0);
    uint8_t big[9 + 8 + PTC_FRAME_GOAWAY_DEBUG_MAX];
    uint8_t text[PTC_FRAME_GOAWAY_DEBUG_MAX];
    memset(text, 'x', sizeof(text));
    n = ptc_frame_encode_goaway(big, sizeof(big), PTC_STREAM_ID_MAX, PTC_WIRE_PROTOCOL_ERROR, text,
                                sizeof(text));
    CHECK_EQ(n, sizeof(big));
    CHECK_EQ(ptc_frame_decode(big, sizeof(big), &defaults, &f), n);
    CHECK_UEQ(ptc_frame_goaway_last_stream(&f), PTC_STREAM_ID_MAX);
    CHECK_MEMEQ(ptc_frame_goaway_debug(&f, &dlen), text, sizeof(text));
    CHECK_UEQ(dlen, PTC_FRAME_GOAWAY_DEBUG_MAX);
}

static void test_control_request_response(void)
{
    uint8_t buf[64];
    ptc_frame_t f;
    const char *json = "{\"type\":\"challenge\"}";
    ssize_t n = ptc_frame_encode_control(buf, sizeof(buf), (const uint8_t *)json, strlen(json));
    CHECK_EQ(n, 9 + (ssize_t)strlen(json));
    CHECK_MEMEQ(buf, "\x00\x00\x14\x07\x00\x00\x00\x00\x00", 9);
    CHECK_EQ(ptc_frame_decode(buf, (size_t)n, &defaults, &f), n);
    CHECK_UEQ(f.hdr.type, PTC_FRAME_CONTROL);
    CHECK_MEMEQ(f.payload, json, strlen(json));

    /* REQUEST and RESPONSE go through the generic encoder (the block comes from hblock.h). */
    ptc_frame_header_t h = {.length = 3, .type = PTC_FRAME_REQUEST, .flags = 1, .stream = 1};
    n = ptc_frame_encode(buf, sizeof(buf), &h, (const uint8_t *)"abc");
    CHECK_EQ(n, 12);
    CHECK_MEMEQ(buf,
                "\x00\x00\x03\x01\x01\x00\x00\x00\x01"
                "abc",
                12);
    CHECK_EQ(ptc_frame_decode(buf, (size_t)n, &defaults, &f), n);
    CHECK_UEQ(f.hdr.type, PTC_FRAME_REQUEST);
    CHECK_UEQ(f.hdr.flags, 1);
    h.type = PTC_FRAME_RESPONSE;
    h.stream = PTC_STREAM_ID_MAX;
    n = ptc_frame_encode(buf, sizeof(buf), &h, (const uint8_t *)"xyz");
    CHECK_EQ(n, 12);
    CHECK_EQ(ptc_frame_decode(buf, (size_t)n, &defaults, &f), n);
    CHECK_UEQ(f.hdr.type, PTC_FRAME_RESPONSE);
    CHECK_UEQ(f.hdr.stream, PTC_STREAM_ID_MAX);
    CHECK_MEMEQ(f.payload, "xyz", 3);
}

static void test_header_only_encoder(void)
{
    /* The mux writes a DATA header, then copies the payload right after it. */
    uint8_t buf[32];
    ptc_frame_header_t h = {.length = 4, .type = PTC_FRAME_DATA, .flags = 0, .stream = 5};
    CHECK_EQ(ptc_frame_encode_header(buf, sizeof(buf), &h), 9);
    memcpy(buf + 9, "body", 4);
    ptc_frame_t f;
    CHECK_EQ(ptc_frame_decode(buf, 13, &defaults, &f), 13);
    CHECK_UEQ(f.hdr.stream, 5);
    CHECK_MEMEQ(f.payload, "body", 4);

    CHECK_EQ(ptc_frame_encode_header(buf, 8, &h), PTC_PROTO_ESPACE);
    h.length = PTC_FRAME_LEN_MAX + 1;
    CHECK_EQ(ptc_frame_encode_header(buf, sizeof(buf), &h), PTC_PROTO_EFRAME_SIZE);
    h.length = PTC_FRAME_LEN_MAX;
    h.stream = PTC_STREAM_ID_MAX + 1;
    CHECK_EQ(ptc_frame_encode_header(buf, sizeof(buf), &h), PTC_PROTO_EPROTOCOL);
    h.stream = PTC_STREAM_ID_MAX;
    CHECK_EQ(ptc_frame_encode_header(buf, sizeof(buf), &h), 9);
    CHECK_MEMEQ(buf, "\xff\xff\xff\x00\x00\x7f\xff\xff\xff", 9);

    /* The raw header reader reports the R bit and keeps the rest. */
    ptc_frame_header_t r;
    raw_header(buf, 0x123456, 0xab, 0xcd, 0x80000007);
    CHECK(ptc_frame_decode_header(buf, &r));
    CHECK_UEQ(r.length, 0x123456);
    CHECK_UEQ(r.type, 0xab);
    CHECK_UEQ(r.flags, 0xcd);
    CHECK_UEQ(r.stream, 7);
    raw_header(buf, 0, 0, 0, 7);
    CHECK(!ptc_frame_decode_header(buf, &r));
}

/* ---- refusals ---- */

static void test_wrong_stream_kind(void)
{
    uint8_t buf[9 + 8] = {0};
    /* Types that need a stream, on stream 0. Lengths are valid for each type. */
    static const struct {
        uint8_t type;
        uint32_t length;
        uint32_t stream;
    } cases[] = {
        {PTC_FRAME_DATA, 0, 0},     {PTC_FRAME_REQUEST, 1, 0},
        {PTC_FRAME_RESPONSE, 1, 0}, {PTC_FRAME_RESET, 4, 0},
        {PTC_FRAME_PING, 8, 1},     {PTC_FRAME_GOAWAY, 8, 3},
        {PTC_FRAME_CONTROL, 2, 5},  {PTC_FRAME_PING, 8, PTC_STREAM_ID_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw_header(buf, cases[i].length, cases[i].type, 0, cases[i].stream);
        /* Refused from the header alone, and with the whole frame present. */
        expect_refused(buf, 9, &defaults, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);
        expect_refused(buf, 9 + cases[i].length, &defaults, PTC_PROTO_EPROTOCOL,
                       PTC_WIRE_PROTOCOL_ERROR);
        ptc_frame_t f;
        ptc_frame_decode(buf, 9, &defaults, &f);
        CHECK_UEQ(f.hdr.type, cases[i].type);
        CHECK_UEQ(f.hdr.stream, cases[i].stream);
    }
    /* The encoders refuse the same frames. */
    uint8_t out[64];
    CHECK_EQ(ptc_frame_encode_data(out, sizeof(out), 0, 0, NULL, 0), PTC_PROTO_EPROTOCOL);
    CHECK_EQ(ptc_frame_encode_reset(out, sizeof(out), 0, 0), PTC_PROTO_EPROTOCOL);
    ptc_frame_header_t h = {.length = 8, .type = PTC_FRAME_PING, .flags = 0, .stream = 1};
    CHECK_EQ(ptc_frame_encode(out, sizeof(out), &h, buf), PTC_PROTO_EPROTOCOL);
    h = (ptc_frame_header_t){.length = 1, .type = PTC_FRAME_REQUEST, .flags = 0, .stream = 0};
    CHECK_EQ(ptc_frame_encode(out, sizeof(out), &h, buf), PTC_PROTO_EPROTOCOL);
    h = (ptc_frame_header_t){.length = 1, .type = PTC_FRAME_CONTROL, .flags = 0, .stream = 2};
    CHECK_EQ(ptc_frame_encode(out, sizeof(out), &h, buf), PTC_PROTO_EPROTOCOL);
}

static void test_wrong_fixed_size(void)
{
    uint8_t buf[9 + 2048] = {0};
    static const struct {
        uint8_t type;
        uint32_t length;
        uint32_t stream;
    } cases[] = {
        {PTC_FRAME_RESET, 0, 1},  {PTC_FRAME_RESET, 3, 1},
        {PTC_FRAME_RESET, 5, 1},  {PTC_FRAME_WINDOW, 3, 0},
        {PTC_FRAME_WINDOW, 5, 1}, {PTC_FRAME_WINDOW, 8, 0},
        {PTC_FRAME_PING, 0, 0},   {PTC_FRAME_PING, 7, 0},
        {PTC_FRAME_PING, 9, 0},   {PTC_FRAME_GOAWAY, 0, 0},
        {PTC_FRAME_GOAWAY, 7, 0}, {PTC_FRAME_GOAWAY, 8 + PTC_FRAME_GOAWAY_DEBUG_MAX + 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw_header(buf, cases[i].length, cases[i].type, 0, cases[i].stream);
        expect_refused(buf, 9, &defaults, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
        expect_refused(buf, 9 + cases[i].length, &defaults, PTC_PROTO_EFRAME_SIZE,
                       PTC_WIRE_FRAME_SIZE_ERROR);
        ptc_frame_header_t h = {.length = cases[i].length,
                                .type = cases[i].type,
                                .flags = 0,
                                .stream = cases[i].stream};
        uint8_t out[sizeof(buf)];
        CHECK_EQ(ptc_frame_encode(out, sizeof(out), &h, buf + 9), PTC_PROTO_EFRAME_SIZE);
    }
    uint8_t out[9 + 8 + PTC_FRAME_GOAWAY_DEBUG_MAX + 1];
    CHECK_EQ(ptc_frame_encode_goaway(out, sizeof(out), 0, 0, buf, PTC_FRAME_GOAWAY_DEBUG_MAX + 1),
             PTC_PROTO_EFRAME_SIZE);
}

static void test_reserved_bit(void)
{
    uint8_t buf[9 + 8] = {0};
    /* R set in the header: PROTOCOL_ERROR for every type, unknown ones included. */
    static const uint8_t types[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 0xff};
    for (size_t i = 0; i < sizeof(types); i++) {
        raw_header(buf, 0, types[i], 0, 0x80000001);
        expect_refused(buf, 9, &defaults, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);
        raw_header(buf, 0, types[i], 0, 0x80000000);
        expect_refused(buf, 9, &defaults, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);
    }
    /* The R bit is checked before the length: a huge frame with R set is a PROTOCOL_ERROR. */
    raw_header(buf, PTC_FRAME_LEN_MAX, PTC_FRAME_DATA, 0, 0x80000001);
    expect_refused(buf, 9, &defaults, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);

    /* Reserved bits inside payloads are ignored (WINDOW increment, GOAWAY last_stream). */
    ptc_frame_t f;
    raw_header(buf, 4, PTC_FRAME_WINDOW, 0, 1);
    memcpy(buf + 9, "\x80\x00\x00\x05", 4);
    CHECK_EQ(ptc_frame_decode(buf, 13, &defaults, &f), 13);
    CHECK_UEQ(ptc_frame_window_increment(&f), 5);
    CHECK_UEQ(f.stream_error, 0);
    raw_header(buf, 8, PTC_FRAME_GOAWAY, 0, 0);
    memcpy(buf + 9, "\x80\x00\x00\x03\x00\x00\x00\x00", 8);
    CHECK_EQ(ptc_frame_decode(buf, 17, &defaults, &f), 17);
    CHECK_UEQ(ptc_frame_goaway_last_stream(&f), 3);
    /* R set and increment 0: still a zero increment. */
    raw_header(buf, 4, PTC_FRAME_WINDOW, 0, 0);
    memcpy(buf + 9, "\x80\x00\x00\x00", 4);
    expect_refused(buf, 13, &defaults, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);

    /* Encoders never set them and refuse ids that need them. */
    uint8_t out[64];
    CHECK_EQ(ptc_frame_encode_data(out, sizeof(out), 0x80000001, 0, NULL, 0), PTC_PROTO_EPROTOCOL);
    CHECK_EQ(ptc_frame_encode_goaway(out, sizeof(out), 0x80000000, 0, NULL, 0),
             PTC_PROTO_EPROTOCOL);
    CHECK_EQ(ptc_frame_encode_window(out, sizeof(out), 1, 0x80000000), PTC_PROTO_EPROTOCOL);
}

static void test_window_zero(void)
{
    uint8_t buf[13];
    ptc_frame_t f;
    /* On stream 0: a tunnel error. The header is fine, so it waits for the payload first. */
    raw_header(buf, 4, PTC_FRAME_WINDOW, 0, 0);
    memset(buf + 9, 0, 4);
    for (size_t len = 0; len < 13; len++) {
        CHECK_EQ(ptc_frame_decode(buf, len, &defaults, &f), PTC_PROTO_EINCOMPLETE);
    }
    expect_refused(buf, 13, &defaults, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);

    /* On a stream: a stream error. The frame is consumed and flagged; the tunnel lives. */
    raw_header(buf, 4, PTC_FRAME_WINDOW, 0, 42);
    CHECK_EQ(ptc_frame_decode(buf, 13, &defaults, &f), 13);
    CHECK_UEQ(f.stream_error, PTC_WIRE_PROTOCOL_ERROR);
    CHECK_UEQ(f.wire_error, 0);
    CHECK_UEQ(f.hdr.stream, 42);
    CHECK_UEQ(ptc_frame_window_increment(&f), 0);

    /* Nobody sends one. */
    uint8_t out[32];
    CHECK_EQ(ptc_frame_encode_window(out, sizeof(out), 0, 0), PTC_PROTO_EPROTOCOL);
    CHECK_EQ(ptc_frame_encode_window(out, sizeof(out), 42, 0), PTC_PROTO_EPROTOCOL);
    ptc_frame_header_t h = {.length = 4, .type = PTC_FRAME_WINDOW, .flags = 0, .stream = 42};
    CHECK_EQ(ptc_frame_encode(out, sizeof(out), &h, buf + 9), PTC_PROTO_EPROTOCOL);
}

static void test_limits(void)
{
    const ptc_frame_limits_t lim = {
        .max_frame_size = 100, .max_header_block = 200, .max_control_size = 300};
    static const struct {
        uint8_t type;
        uint32_t stream;
        uint32_t limit;
    } cases[] = {
        {PTC_FRAME_DATA, 1, 100},
        {PTC_FRAME_REQUEST, 1, 200},
        {PTC_FRAME_RESPONSE, 1, 200},
        {PTC_FRAME_CONTROL, 0, 300},
        {0x08, 0, 100},
        {0xff, 9, 100},
    };
    uint8_t buf[9];
    ptc_frame_t f;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* Over the limit: refused with only the 9 header bytes in. */
        raw_header(buf, cases[i].limit + 1, cases[i].type, 0, cases[i].stream);
        expect_refused(buf, 9, &lim, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
        CHECK_EQ(ptc_frame_decode(buf, 9, &lim, &f), PTC_PROTO_EFRAME_SIZE);
        CHECK_UEQ(f.hdr.length, cases[i].limit + 1);
        CHECK_UEQ(f.hdr.type, cases[i].type);
        raw_header(buf, PTC_FRAME_LEN_MAX, cases[i].type, 0, cases[i].stream);
        expect_refused(buf, 9, &lim, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
        /* At the limit: accepted, waiting for the payload. */
        raw_header(buf, cases[i].limit, cases[i].type, 0, cases[i].stream);
        CHECK_EQ(ptc_frame_decode(buf, 9, &lim, &f), PTC_PROTO_EINCOMPLETE);
        CHECK_UEQ(f.wire_error, 0);
    }

    /* NULL limits are the defaults. */
    raw_header(buf, PTC_DEFAULT_MAX_FRAME_SIZE + 1, PTC_FRAME_DATA, 0, 1);
    expect_refused(buf, 9, NULL, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    raw_header(buf, PTC_DEFAULT_MAX_FRAME_SIZE, PTC_FRAME_DATA, 0, 1);
    CHECK_EQ(ptc_frame_decode(buf, 9, NULL, &f), PTC_PROTO_EINCOMPLETE);
    raw_header(buf, PTC_DEFAULT_MAX_HEADER_BLOCK + 1, PTC_FRAME_REQUEST, 0, 1);
    expect_refused(buf, 9, NULL, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    raw_header(buf, PTC_DEFAULT_MAX_CONTROL_SIZE + 1, PTC_FRAME_CONTROL, 0, 0);
    expect_refused(buf, 9, NULL, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);

    /* Limits above 24 bits allow any length. */
    const ptc_frame_limits_t huge = {UINT32_MAX, UINT32_MAX, UINT32_MAX};
    raw_header(buf, PTC_FRAME_LEN_MAX, PTC_FRAME_DATA, 0, 1);
    CHECK_EQ(ptc_frame_decode(buf, 9, &huge, &f), PTC_PROTO_EINCOMPLETE);

    /* A zero limit allows only empty frames. */
    const ptc_frame_limits_t zero = {0, 0, 0};
    raw_header(buf, 0, PTC_FRAME_DATA, 0, 1);
    CHECK_EQ(ptc_frame_decode(buf, 9, &zero, &f), 9);
    raw_header(buf, 1, PTC_FRAME_DATA, 0, 1);
    expect_refused(buf, 9, &zero, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);

    /* Fixed-size types do not depend on the limits. */
    uint8_t ping[17];
    CHECK_EQ(ptc_frame_encode_ping(ping, sizeof(ping), 0, (const uint8_t *)"12345678"), 17);
    CHECK_EQ(ptc_frame_decode(ping, 17, &zero, &f), 17);

    /* The length limit comes before the stream check: DATA on 0 over the limit is a size
     * error (both are tunnel errors; docs/protocol.md §3.5 fixes the order, and so the code). */
    raw_header(buf, 101, PTC_FRAME_DATA, 0, 0);
    expect_refused(buf, 9, &lim, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    /* Fixed and bounded sizes come after the stream kind (docs/protocol.md §3.5 steps 4-5). */
    raw_header(buf, 8 + PTC_FRAME_GOAWAY_DEBUG_MAX + 1, PTC_FRAME_GOAWAY, 0, 1);
    expect_refused(buf, 9, &lim, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);
    raw_header(buf, 9, PTC_FRAME_PING, 0, 1);
    expect_refused(buf, 9, &lim, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);
    raw_header(buf, 5, PTC_FRAME_RESET, 0, 0);
    expect_refused(buf, 9, &lim, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);
}

static void test_unknown_type(void)
{
    uint8_t buf[64];
    ptc_frame_t f;
    /* Any stream, any flags, any payload: passed up as unknown, to be skipped. */
    raw_header(buf, 5, 0x08, 0xff, 0);
    memcpy(buf + 9, "abcde", 5);
    raw_header(buf + 14, 0, 0xee, 0, 77);
    CHECK_EQ(ptc_frame_decode(buf, 23, &defaults, &f), 14);
    CHECK(f.is_unknown);
    CHECK_UEQ(f.hdr.type, 0x08);
    CHECK_UEQ(f.hdr.flags, 0xff);
    CHECK_MEMEQ(f.payload, "abcde", 5);
    CHECK_EQ(ptc_frame_decode(buf + 14, 9, &defaults, &f), 9);
    CHECK(f.is_unknown);
    CHECK_UEQ(f.hdr.stream, 77);
    /* Incomplete unknown frames wait like any other. */
    CHECK_EQ(ptc_frame_decode(buf, 13, &defaults, &f), PTC_PROTO_EINCOMPLETE);
    /* Known types are not unknown, and unknown flags on them are kept. */
    raw_header(buf, 0, PTC_FRAME_DATA, 0xfe, 1);
    CHECK_EQ(ptc_frame_decode(buf, 9, &defaults, &f), 9);
    CHECK(!f.is_unknown);
    CHECK_UEQ(f.hdr.flags, 0xfe);
    /* The generic encoder writes unknown types as given. */
    ptc_frame_header_t h = {.length = 2, .type = 0x42, .flags = 3, .stream = 0};
    CHECK_EQ(ptc_frame_encode(buf, sizeof(buf), &h, (const uint8_t *)"zz"), 11);
    CHECK_MEMEQ(buf, "\x00\x00\x02\x42\x03\x00\x00\x00\x00zz", 11);
}

static void test_encode_space(void)
{
    uint8_t buf[64];
    uint8_t ref[64];
    static const uint8_t d8[8] = {0};
    /* Every encoder: ESPACE with one byte too few, nothing written; exact capacity works. */
    for (int which = 0; which < 6; which++) {
        ssize_t want = 0;
        for (size_t cap = 0; cap <= sizeof(buf); cap++) {
            memset(buf, 0xaa, sizeof(buf));
            ssize_t n = 0;
            switch (which) {
            case 0:
                n = ptc_frame_encode_data(buf, cap, 1, 0, (const uint8_t *)"abc", 3);
                break;
            case 1:
                n = ptc_frame_encode_reset(buf, cap, 1, 2);
                break;
            case 2:
                n = ptc_frame_encode_window(buf, cap, 1, 2);
                break;
            case 3:
                n = ptc_frame_encode_ping(buf, cap, 0, d8);
                break;
            case 4:
                n = ptc_frame_encode_goaway(buf, cap, 1, 2, (const uint8_t *)"dbg", 3);
                break;
            default:
                n = ptc_frame_encode_control(buf, cap, (const uint8_t *)"{}", 2);
                break;
            }
            if (n == PTC_PROTO_ESPACE) {
                CHECK_EQ(want, 0);
                memset(ref, 0xaa, sizeof(ref));
                CHECK_MEMEQ(buf, ref, sizeof(buf));
            } else {
                CHECK_GT(n, 0);
                if (want == 0) {
                    want = n;
                    CHECK_UEQ(cap, (size_t)n);
                }
                CHECK_EQ(n, want);
            }
        }
        CHECK_GT(want, 0);
    }
    ptc_frame_header_t h = {.length = 3, .type = PTC_FRAME_DATA, .flags = 0, .stream = 1};
    CHECK_EQ(ptc_frame_encode(buf, 11, &h, (const uint8_t *)"abc"), PTC_PROTO_ESPACE);
    CHECK_EQ(ptc_frame_encode(buf, 12, &h, (const uint8_t *)"abc"), 12);
    /* Payloads beyond 24 bits are refused before the capacity is looked at. */
    CHECK_EQ(ptc_frame_encode_data(buf, sizeof(buf), 1, 0, buf, (size_t)PTC_FRAME_LEN_MAX + 1),
             PTC_PROTO_EFRAME_SIZE);
    CHECK_EQ(ptc_frame_encode_control(buf, sizeof(buf), buf, (size_t)PTC_FRAME_LEN_MAX + 1),
             PTC_PROTO_EFRAME_SIZE);
    CHECK_EQ(ptc_frame_encode_data(buf, sizeof(buf), 1, 0, buf, PTC_FRAME_LEN_MAX),
             PTC_PROTO_ESPACE);
}

/* ---- partial input ---- */

/* Builds a buffer of several frames of every type; returns its length. */
static size_t build_sequence(uint8_t *buf, size_t cap, size_t *ends, size_t *cnt)
{
    size_t off = 0;
    size_t k = 0;
    ssize_t n;
    n = ptc_frame_encode_control(buf + off, cap - off, (const uint8_t *)"{\"a\":1}", 7);
    ends[k++] = off += (size_t)n;
    n = ptc_frame_encode_data(buf + off, cap - off, 1, 0, (const uint8_t *)"0123456789", 10);
    ends[k++] = off += (size_t)n;
    n = ptc_frame_encode_window(buf + off, cap - off, 0, 1000);
    ends[k++] = off += (size_t)n;
    n = ptc_frame_encode_data(buf + off, cap - off, 3, PTC_FLAG_END_STREAM, NULL, 0);
    ends[k++] = off += (size_t)n;
    n = ptc_frame_encode_ping(buf + off, cap - off, 0, (const uint8_t *)"pingpong");
    ends[k++] = off += (size_t)n;
    raw_header(buf + off, 3, 0x99, 0, 5); /* unknown */
    memcpy(buf + off + 9, "???", 3);
    ends[k++] = off += 12;
    n = ptc_frame_encode_reset(buf + off, cap - off, 3, PTC_WIRE_CANCEL);
    ends[k++] = off += (size_t)n;
    n = ptc_frame_encode_goaway(buf + off, cap - off, 3, 0, (const uint8_t *)"bye", 3);
    ends[k++] = off += (size_t)n;
    *cnt = k;
    return off;
}

static void test_partial_every_boundary(void)
{
    uint8_t buf[256];
    size_t ends[16];
    size_t cnt;
    size_t total = build_sequence(buf, sizeof(buf), ends, &cnt);

    /* Each prefix: the frames wholly inside it decode, then EINCOMPLETE at the cut. The
     * prefix is copied to an exact-size heap block so ASan sees any read past it. */
    for (size_t cut = 0; cut <= total; cut++) {
        uint8_t *p = malloc(cut != 0 ? cut : 1);
        CHECK_NOT_NULL(p);
        memcpy(p, buf, cut);
        size_t off = 0;
        size_t k = 0;
        for (;;) {
            ptc_frame_t f;
            ssize_t n = ptc_frame_decode(p + off, cut - off, &defaults, &f);
            if (n == PTC_PROTO_EINCOMPLETE) {
                break;
            }
            CHECK_GT(n, 0);
            off += (size_t)n;
            CHECK_UEQ(off, ends[k]);
            k++;
        }
        /* Exactly the frames that end at or before the cut. */
        size_t whole = 0;
        while (whole < cnt && ends[whole] <= cut) {
            whole++;
        }
        CHECK_UEQ(k, whole);
        free(p);
    }

    /* Delivered in two pieces split at every boundary, through an accumulating buffer as a
     * caller would, the same frames come out in order. */
    for (size_t split = 0; split <= total; split++) {
        uint8_t acc[256];
        size_t have = 0;
        size_t start = 0;
        size_t k = 0;
        const size_t pieces[2][2] = {{0, split}, {split, total}};
        for (int piece = 0; piece < 2; piece++) {
            memcpy(acc + have, buf + pieces[piece][0], pieces[piece][1] - pieces[piece][0]);
            have += pieces[piece][1] - pieces[piece][0];
            for (;;) {
                ptc_frame_t f;
                ssize_t n = ptc_frame_decode(acc + start, have - start, &defaults, &f);
                if (n == PTC_PROTO_EINCOMPLETE) {
                    break;
                }
                CHECK_GT(n, 0);
                CHECK_MEMEQ(acc + start, buf + (k == 0 ? 0 : ends[k - 1]), (size_t)n);
                start += (size_t)n;
                CHECK_UEQ(start, ends[k]);
                k++;
            }
        }
        CHECK_UEQ(k, cnt);
        CHECK_UEQ(start, total);
    }
}

/* ---- random round trips ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64*: small, reproducible from the printed seed. */
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint32_t rng_below(uint32_t n)
{
    return (uint32_t)(rng_next() % n);
}

typedef struct want_frame {
    ptc_frame_header_t hdr;
    size_t off; /* payload offset in the random payload pool */
    uint32_t a; /* reset code, window increment, goaway last_stream */
    uint32_t b; /* goaway error */
} want_frame_t;

static uint32_t random_stream(void)
{
    switch (rng_below(4)) {
    case 0:
        return 1;
    case 1:
        return PTC_STREAM_ID_MAX;
    default:
        return 1 + rng_below(PTC_STREAM_ID_MAX);
    }
}

/* Encodes one random valid frame at buf; returns its size. */
static size_t random_frame(uint8_t *buf, size_t cap, const uint8_t *pool, size_t pool_len,
                           want_frame_t *w)
{
    uint8_t type = (uint8_t)rng_below(9);
    size_t len = rng_below(4) == 0 ? 0 : rng_below(300);
    size_t off = rng_below((uint32_t)(pool_len - 1100));
    uint8_t flags = (uint8_t)rng_below(4);
    ssize_t n = 0;
    memset(w, 0, sizeof(*w));
    w->off = off;
    switch (type) {
    case PTC_FRAME_DATA:
        w->hdr.stream = random_stream();
        n = ptc_frame_encode_data(buf, cap, w->hdr.stream, flags, pool + off, len);
        break;
    case PTC_FRAME_REQUEST:
    case PTC_FRAME_RESPONSE:
        w->hdr = (ptc_frame_header_t){(uint32_t)len, type, flags, random_stream()};
        n = ptc_frame_encode(buf, cap, &w->hdr, pool + off);
        break;
    case PTC_FRAME_RESET:
        w->hdr.stream = random_stream();
        w->a = (uint32_t)rng_next();
        n = ptc_frame_encode_reset(buf, cap, w->hdr.stream, w->a);
        flags = 0;
        len = 4;
        break;
    case PTC_FRAME_WINDOW:
        w->hdr.stream = rng_below(2) ? 0 : random_stream();
        w->a = 1 + rng_below(PTC_FRAME_WINDOW_INCREMENT_MAX);
        n = ptc_frame_encode_window(buf, cap, w->hdr.stream, w->a);
        flags = 0;
        len = 4;
        break;
    case PTC_FRAME_PING:
        n = ptc_frame_encode_ping(buf, cap, flags, pool + off);
        len = 8;
        break;
    case PTC_FRAME_GOAWAY:
        w->a = rng_below(2) ? 0 : random_stream();
        w->b = (uint32_t)rng_next();
        len = rng_below(8) == 0 ? PTC_FRAME_GOAWAY_DEBUG_MAX : rng_below(40);
        n = ptc_frame_encode_goaway(buf, cap, w->a, w->b, pool + off, len);
        flags = 0;
        len += 8;
        break;
    case PTC_FRAME_CONTROL:
        n = ptc_frame_encode_control(buf, cap, pool + off, len);
        flags = 0;
        break;
    default:
        w->hdr = (ptc_frame_header_t){(uint32_t)len, (uint8_t)(8 + rng_below(248)), flags,
                                      rng_below(2) ? 0 : random_stream()};
        n = ptc_frame_encode(buf, cap, &w->hdr, pool + off);
        break;
    }
    CHECK_GT(n, 0);
    w->hdr.type = buf[3];
    w->hdr.length = (uint32_t)len;
    w->hdr.flags = flags;
    CHECK_UEQ((size_t)n, 9 + len);
    return (size_t)n;
}

static void check_frame(const ptc_frame_t *f, const want_frame_t *w, const uint8_t *pool)
{
    CHECK_UEQ(f->hdr.type, w->hdr.type);
    CHECK_UEQ(f->hdr.length, w->hdr.length);
    CHECK_UEQ(f->hdr.flags, w->hdr.flags);
    CHECK_UEQ(f->hdr.stream, w->hdr.stream);
    CHECK_EQ(f->is_unknown, w->hdr.type > PTC_FRAME_TYPE_LAST);
    CHECK_UEQ(f->stream_error, 0);
    size_t dlen;
    switch (w->hdr.type) {
    case PTC_FRAME_RESET:
        CHECK_UEQ(ptc_frame_reset_code(f), w->a);
        break;
    case PTC_FRAME_WINDOW:
        CHECK_UEQ(ptc_frame_window_increment(f), w->a);
        break;
    case PTC_FRAME_PING:
        CHECK_MEMEQ(ptc_frame_ping_data(f), pool + w->off, 8);
        break;
    case PTC_FRAME_GOAWAY:
        CHECK_UEQ(ptc_frame_goaway_last_stream(f), w->a);
        CHECK_UEQ(ptc_frame_goaway_error(f), w->b);
        CHECK_MEMEQ(ptc_frame_goaway_debug(f, &dlen), pool + w->off, w->hdr.length - 8);
        CHECK_UEQ(dlen, w->hdr.length - 8);
        break;
    default:
        CHECK_MEMEQ(f->payload, pool + w->off, w->hdr.length);
        break;
    }
}

static void test_random_sequences(void)
{
    uint64_t seed = 0x5eed0f7a11c0ffeeULL;
    const char *env = getenv("PTC_FRAME_SEED");
    if (env != NULL) {
        seed = strtoull(env, NULL, 0);
    }
    ptc_test_diag("random frame sequences: PTC_FRAME_SEED=0x%016" PRIx64, seed);
    rng_state = seed != 0 ? seed : 1;

    static uint8_t pool[4096];
    for (size_t i = 0; i < sizeof(pool); i++) {
        pool[i] = (uint8_t)rng_next();
    }
    static uint8_t buf[16 * 1400];
    const ptc_frame_limits_t lim = {1024, 1024, 1024};
    for (int seq = 0; seq < 10000; seq++) {
        want_frame_t want[16];
        size_t cnt = 1 + rng_below(16);
        size_t total = 0;
        for (size_t i = 0; i < cnt; i++) {
            total += random_frame(buf + total, sizeof(buf) - total, pool, sizeof(pool), &want[i]);
        }
        /* Decode from a random split into two deliveries: the first part gives EINCOMPLETE
         * at its end, and the rest gives the remaining frames. */
        size_t cut = rng_below((uint32_t)total + 1);
        size_t off = 0;
        size_t k = 0;
        ptc_frame_t f;
        ssize_t n;
        while ((n = ptc_frame_decode(buf + off, cut - off, &lim, &f)) > 0) {
            check_frame(&f, &want[k++], pool);
            off += (size_t)n;
        }
        CHECK_EQ(n, PTC_PROTO_EINCOMPLETE);
        while (off < total) {
            n = ptc_frame_decode(buf + off, total - off, &lim, &f);
            CHECK_GT(n, 0);
            check_frame(&f, &want[k], pool);
            /* Re-encoding the decoded frame reproduces its bytes. */
            uint8_t again[1400];
            CHECK_EQ(ptc_frame_encode(again, sizeof(again), &f.hdr, f.payload), n);
            CHECK_MEMEQ(again, buf + off, (size_t)n);
            k++;
            off += (size_t)n;
        }
        CHECK_UEQ(k, cnt);
    }
}

/* ---- names ---- */

static void test_names(void)
{
    CHECK_STREQ(ptc_wire_error_name(PTC_WIRE_NO_ERROR), "NO_ERROR");
    CHECK_STREQ(ptc_wire_error_name(PTC_WIRE_PROTOCOL_ERROR), "PROTOCOL_ERROR");
    CHECK_STREQ(ptc_wire_error_name(PTC_WIRE_FRAME_SIZE_ERROR), "FRAME_SIZE_ERROR");
    CHECK_STREQ(ptc_wire_error_name(PTC_WIRE_HEADER_ERROR), "HEADER_ERROR");
    CHECK_STREQ(ptc_wire_error_name(PTC_WIRE_TIMEOUT), "TIMEOUT");
    CHECK_STREQ(ptc_wire_error_name(PTC_WIRE_BACKEND_REFUSED), "BACKEND_REFUSED");
    CHECK_STREQ(ptc_wire_error_name(PTC_WIRE_BACKEND_RESET), "BACKEND_RESET");
    CHECK_STREQ(ptc_wire_error_name(0x0b), "UNKNOWN");
    CHECK_STREQ(ptc_wire_error_name(0x15), "UNKNOWN");
    CHECK_STREQ(ptc_wire_error_name(UINT32_MAX), "UNKNOWN");
    /* Every defined wire code has a name of its own. */
    for (uint32_t c = 0; c <= 0x14; c++) {
        bool defined = c <= 0x0a || c >= 0x10;
        CHECK_EQ(strcmp(ptc_wire_error_name(c), "UNKNOWN") != 0, defined);
    }
    CHECK_STREQ(ptc_proto_errname(PTC_PROTO_EINCOMPLETE), "PTC_PROTO_EINCOMPLETE");
    CHECK_STREQ(ptc_proto_errname(PTC_PROTO_EFLOW), "PTC_PROTO_EFLOW");
    CHECK_STREQ(ptc_proto_errname(PTC_PROTO_ESPACE), "PTC_PROTO_ESPACE");
    for (int e = PTC_PROTO_ESPACE; e <= PTC_PROTO_EINCOMPLETE; e++) {
        CHECK_STRNE(ptc_proto_errname(e), "UNKNOWN");
    }
    CHECK_STREQ(ptc_proto_errname(0), "UNKNOWN");
    CHECK_STREQ(ptc_proto_errname(PTC_PROTO_ESPACE - 1), "UNKNOWN");
    CHECK_STREQ(ptc_proto_errname(-1), "UNKNOWN");
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_data_bytes),
    PTC_TEST(test_fixed_types_bytes),
    PTC_TEST(test_control_request_response),
    PTC_TEST(test_header_only_encoder),
    PTC_TEST(test_wrong_stream_kind),
    PTC_TEST(test_wrong_fixed_size),
    PTC_TEST(test_reserved_bit),
    PTC_TEST(test_window_zero),
    PTC_TEST(test_limits),
    PTC_TEST(test_unknown_type),
    PTC_TEST(test_encode_space),
    PTC_TEST(test_partial_every_boundary),
    PTC_TEST(test_random_sequences),
    PTC_TEST(test_names),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
