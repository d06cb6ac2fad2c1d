/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for proto/frame.c: decodes a stream of frames from arbitrary bytes, as a
 * receiver would, and checks the decoder's contract on every frame: the consumed length, the
 * error codes and wire codes, that a shorter input is EINCOMPLETE, and that re-encoding the
 * decoded frame (generic and typed encoders) gives back the same bytes where the encoding is
 * canonical (reserved payload bits and undefined flags are the only non-canonical parts).
 * The first input byte picks the receiver's limits, so that every limit is exercised.
 */
#include "proto/frame.h"
#include "tests/fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

static const ptc_frame_limits_t limit_sets[4] = {
    PTC_FRAME_LIMITS_DEFAULT,
    {16, 32, 64},
    {0, 0, 0},
    {PTC_FRAME_LEN_MAX, UINT32_MAX, 1},
};

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Re-encodes f with the generic and the typed encoders and compares with the input bytes. */
static void check_reencode(const ptc_frame_t *f, const uint8_t *in, size_t n)
{
    uint8_t *out = malloc(n);
    if (out == NULL) {
        abort();
    }
    const ptc_frame_header_t *h = &f->hdr;
    bool canonical = true;
    if (h->type == PTC_FRAME_WINDOW || h->type == PTC_FRAME_GOAWAY) {
        canonical = (f->payload[0] & 0x80) == 0;
    }
    ssize_t r = ptc_frame_encode(out, n, h, f->payload);
    if (f->stream_error != 0) {
        /* Only a zero WINDOW increment on a stream is a stream error; nobody may send it. */
        if (h->type != PTC_FRAME_WINDOW || ptc_frame_window_increment(f) != 0 ||
            r != PTC_PROTO_EPROTOCOL) {
            abort();
        }
        free(out);
        return;
    }
    if (r != (ssize_t)n || (canonical && memcmp(out, in, n) != 0)) {
        abort();
    }
    if (ptc_frame_encode(out, n - 1, h, f->payload) != PTC_PROTO_ESPACE) {
        abort();
    }

    /* Typed encoders write flags 0 except DATA and PING, and clear reserved bits. */
    r = 0;
    size_t dlen = 0;
    const uint8_t *debug = NULL;
    switch (f->is_unknown ? 0xff : h->type) {
    case PTC_FRAME_DATA:
        r = ptc_frame_encode_data(out, n, h->stream, h->flags, f->payload, h->length);
        break;
    case PTC_FRAME_RESET:
        r = ptc_frame_encode_reset(out, n, h->stream, ptc_frame_reset_code(f));
        canonical = h->flags == 0;
        break;
    case PTC_FRAME_WINDOW:
        r = ptc_frame_encode_window(out, n, h->stream, ptc_frame_window_increment(f));
        canonical = canonical && h->flags == 0;
        break;
    case PTC_FRAME_PING:
        r = ptc_frame_encode_ping(out, n, h->flags, ptc_frame_ping_data(f));
        break;
    case PTC_FRAME_GOAWAY:
        debug = ptc_frame_goaway_debug(f, &dlen);
        if (dlen != h->length - 8 || ptc_frame_goaway_error(f) != get32(f->payload + 4)) {
            abort();
        }
        r = ptc_frame_encode_goaway(out, n, ptc_frame_goaway_last_stream(f),
                                    ptc_frame_goaway_error(f), debug, dlen);
        canonical = canonical && h->flags == 0;
        break;
    case PTC_FRAME_CONTROL:
        r = ptc_frame_encode_control(out, n, f->payload, h->length);
        canonical = h->flags == 0;
        break;
    default:
        /* REQUEST/RESPONSE payloads are fuzzed by fuzz_hblock; unknown types have no typed
         * encoder. */
        free(out);
        return;
    }
    if (r != (ssize_t)n || (canonical && memcmp(out, in, n) != 0)) {
        abort();
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const ptc_frame_limits_t *lim = &limit_sets[data[0] & 3];
    const uint8_t *p = data + 1;
    size_t left = size - 1;
    for (;;) {
        ptc_frame_t f;
        ssize_t n = ptc_frame_decode(p, left, lim, &f);
        if (n == PTC_PROTO_EINCOMPLETE) {
            if (f.wire_error != 0 || f.stream_error != 0) {
                abort();
            }
            break;
        }
        if (n < 0) {
            if (left < PTC_FRAME_HEADER_LEN) {
                abort();
            }
            if (!((n == PTC_PROTO_EFRAME_SIZE && f.wire_error == PTC_WIRE_FRAME_SIZE_ERROR) ||
                  (n == PTC_PROTO_EPROTOCOL && f.wire_error == PTC_WIRE_PROTOCOL_ERROR))) {
                abort();
            }
            /* A refusal decided on the header alone does not wait for the payload. */
            ptc_frame_t g;
            bool needs_payload = f.hdr.type == PTC_FRAME_WINDOW && f.hdr.stream == 0 &&
                                 f.hdr.length == PTC_FRAME_WINDOW_LEN && (p[5] & 0x80) == 0;
            if (!needs_payload && ptc_frame_decode(p, PTC_FRAME_HEADER_LEN, lim, &g) != n) {
                abort();
            }
            break;
        }
        if ((size_t)n != PTC_FRAME_HEADER_LEN + f.hdr.length || (size_t)n > left ||
            f.payload != p + PTC_FRAME_HEADER_LEN || f.wire_error != 0 ||
            f.is_unknown != (f.hdr.type > PTC_FRAME_TYPE_LAST)) {
            abort();
        }
        /* One byte less is incomplete, never an error. */
        ptc_frame_t g;
        if (ptc_frame_decode(p, (size_t)n - 1, lim, &g) != PTC_PROTO_EINCOMPLETE) {
            abort();
        }
        check_reencode(&f, p, (size_t)n);
        p += n;
        left -= (size_t)n;
    }
    return 0;
}
