/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for proto/mux.c, the tunnel stream multiplexer. The input is a small
 * program. Its first byte picks the mode and the limits:
 *
 * - single mode (bit 0 clear): one mux, edge or connector (bit 1), fed arbitrary bytes taken
 *   from the input in chunks whose split points also come from the input, with API calls
 *   (open, respond, data, reset, credit, ping, tick, GOAWAY, CONTROL, limits) interleaved;
 * - pair mode (bit 0 set): an edge mux and a connector mux wired back to back, driven by the
 *   same API calls, with partial transfers of each one's output to the other. Raw bytes may
 *   still be injected; until they are, neither side may ever see a tunnel error (a correct
 *   peer never sends a bad frame): any such error aborts.
 *
 * After every step all events are pulled and their pointers read (ASan checks they are
 * live), DATA credit is returned and must be accepted, and all output is decoded: every frame
 * a mux writes must be one the peer's frame decoder accepts under the peer's limits. The
 * target must never crash, leak or trip an assert.
 */
#include "proto/frame.h"
#include "proto/hblock.h"
#include "proto/mux.h"
#include "tests/fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const uint8_t *p;
    size_t len;
} reader_t;

static uint8_t u8(reader_t *r)
{
    if (r->len == 0) {
        return 0;
    }
    r->len--;
    return *r->p++;
}

static uint16_t u16(reader_t *r)
{
    uint16_t hi = u8(r);
    uint16_t lo = u8(r);
    return (uint16_t)(hi << 8 | lo);
}

static const ptc_mux_limits_t limit_sets[4] = {
    PTC_MUX_LIMITS_DEFAULT,
    {1024, 4096, 4096, 2, 100, 1024},
    {1024, 4096, 4096, 1, 1, 1024},
    {20000, 100000, 8192, 5, 70000, 150000},
};

typedef struct side {
    ptc_mux_t *mux;
    const ptc_mux_limits_t *peer; /* the limits the peer enforces on what we send */
    uint8_t *vbuf;                /* output taken but not yet decoded (a partial frame) */
    size_t vlen;
    size_t vcap;
    uint32_t ids[8]; /* recently seen stream ids, for the API calls */
    unsigned nids;
    bool saw_error;   /* an ERROR event was pulled: nothing may follow it */
    unsigned pings;   /* PINGs sent since both outputs were last empty (answers pending) */
    uint64_t scratch; /* sums of event bytes, so that the reads are not optimized out */
} side_t;

static void remember(side_t *s, uint32_t id)
{
    s->ids[s->nids++ % 8] = id;
}

static uint32_t pick_id(side_t *s, uint8_t b)
{
    /* Mostly a known id; sometimes 0, a neighbour, or a far one. */
    if (b < 200 && s->nids > 0) {
        return s->ids[b % (s->nids < 8 ? s->nids : 8)];
    }
    return b < 230 ? b % 8u : 0x7FFFFFF0u + (b & 0x0f);
}

static void touch(side_t *s, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        s->scratch += p[i];
    }
}

static void touch_fields(side_t *s, const ptc_proto_field_t *f, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        touch(s, f[i].name.ptr, f[i].name.len);
        touch(s, f[i].value.ptr, f[i].value.len);
    }
}

static void drain_events(side_t *s)
{
    ptc_mux_event_t ev;
    while (ptc_mux_next_event(s->mux, &ev)) {
        if (s->saw_error) {
            abort(); /* ERROR is always the last event */
        }
        touch(s, ev.data, ev.len);
        switch (ev.type) {
        case PTC_MUX_EV_REQUEST:
            touch(s, ev.request.host.ptr, ev.request.host.len);
            touch(s, ev.request.sni.ptr, ev.request.sni.len);
            touch(s, ev.request.method.ptr, ev.request.method.len);
            touch(s, ev.request.target.ptr, ev.request.target.len);
            touch_fields(s, ev.request.headers, ev.request.header_cnt);
            if (ptc_mux_role(s->mux) != PTC_MUX_CONNECTOR || ev.stream_id == 0) {
                abort();
            }
            remember(s, ev.stream_id);
            break;
        case PTC_MUX_EV_RESPONSE:
            touch_fields(s, ev.response.headers, ev.response.header_cnt);
            if (ptc_mux_role(s->mux) != PTC_MUX_EDGE || ev.response.status < 101) {
                abort();
            }
            break;
        case PTC_MUX_EV_DATA:
            /* Credit for delivered bytes is always accepted. */
            if (ptc_mux_tunnel_consumed(s->mux, ev.len) != 0 ||
                ptc_mux_consumed(s->mux, ev.stream_id, ev.len) != 0) {
                abort();
            }
            break;
        case PTC_MUX_EV_ERROR:
            s->saw_error = true;
            if (!ptc_mux_is_closed(s->mux) || ev.err >= 0) {
                abort();
            }
            break;
        case PTC_MUX_EV_REFUSED:
            if (ptc_mux_role(s->mux) != PTC_MUX_EDGE) {
                abort();
            }
            break;
        case PTC_MUX_EV_RESET:
        case PTC_MUX_EV_WRITABLE:
        case PTC_MUX_EV_PING_ACK:
        case PTC_MUX_EV_GOAWAY:
        case PTC_MUX_EV_CONTROL:
            break;
        }
        /* A stream that is still going stays known: its end always comes as an event. */
        bool going =
            !ev.end_stream && (ev.type == PTC_MUX_EV_REQUEST || ev.type == PTC_MUX_EV_RESPONSE ||
                               ev.type == PTC_MUX_EV_DATA);
        if (going && ptc_mux_stream_state(s->mux, ev.stream_id) == PTC_MUX_STREAM_IDLE) {
            abort();
        }
    }
}

/* Decodes every complete frame of the output taken so far with the peer's limits. */
static void validate_output(side_t *s, const uint8_t *p, size_t len)
{
    if (s->vlen + len > s->vcap) {
        size_t cap = s->vcap != 0 ? s->vcap : 4096;
        while (cap < s->vlen + len) {
            cap *= 2;
        }
        uint8_t *b = realloc(s->vbuf, cap);
        if (b == NULL) {
            abort();
        }
        s->vbuf = b;
        s->vcap = cap;
    }
    memcpy(s->vbuf + s->vlen, p, len);
    s->vlen += len;
    ptc_frame_limits_t lim = {s->peer->max_frame_size, s->peer->max_header_block,
                              s->peer->max_control_size};
    size_t off = 0;
    for (;;) {
        ptc_frame_t f;
        ssize_t n = ptc_frame_decode(s->vbuf + off, s->vlen - off, &lim, &f);
        if (n == PTC_PROTO_EINCOMPLETE) {
            break;
        }
        if (n < 0 || f.is_unknown || f.stream_error != 0) {
            abort(); /* we never send a frame the peer must refuse */
        }
        off += (size_t)n;
    }
    memmove(s->vbuf, s->vbuf + off, s->vlen - off);
    s->vlen -= off;
}

/* Takes up to max bytes of s's output; feeds them to peer when there is one. */
static int move_output(side_t *s, side_t *peer, size_t max, uint64_t now)
{
    static uint8_t buf[1 << 16];
    int rc = 0;
    while (max > 0) {
        size_t n = ptc_mux_take_output(s->mux, buf, max < sizeof(buf) ? max : sizeof(buf));
        if (n == 0) {
            break;
        }
        validate_output(s, buf, n);
        max -= n;
        if (peer != NULL) {
            int r = ptc_mux_feed(peer->mux, buf, n, now);
            rc = rc != 0 ? rc : r;
            drain_events(peer);
        }
    }
    /* Both outputs empty: every PING was delivered and its answer too (the peer bounds the
     * answers it queues, PTC_MUX_MAX_PING_ACKS). */
    if (peer != NULL && ptc_mux_output_pending(s->mux) == 0 &&
        ptc_mux_output_pending(peer->mux) == 0) {
        s->pings = 0;
        peer->pings = 0;
    }
    return rc;
}

static const ptc_proto_field_t fields[] = {
    {{(const uint8_t *)"host", 4}, {(const uint8_t *)"app", 3}},
    {{(const uint8_t *)"x-a", 3}, {(const uint8_t *)"", 0}},
};

static void api_call(side_t *s, uint8_t op, reader_t *r, uint64_t *now)
{
    static uint8_t data[70000];
    uint8_t b = u8(r);
    uint32_t id = pick_id(s, b);
    switch (op) {
    case 0: {
        ptc_request_head_t h;
        memset(&h, 0, sizeof(h));
        h.scheme = (ptc_proto_scheme_t)(b & 1);
        h.port = (uint16_t)(b < 250 ? 443 : 0); /* port 0 is refused locally */
        h.host = (ptc_proto_str_t){(const uint8_t *)"app.internal", 12};
        h.method = (ptc_proto_str_t){(const uint8_t *)"GET", 3};
        h.target = (ptc_proto_str_t){(const uint8_t *)"/", 1};
        h.headers = fields;
        h.header_cnt = b % 3;
        uint32_t nid = 0;
        int rc = ptc_mux_open_stream(s->mux, &h, (b & 2) != 0, &nid);
        if (rc == 0) {
            remember(s, nid);
        } else if (rc != PTC_PROTO_ESTATE && rc != PTC_PROTO_ECLOSED && rc != PTC_PROTO_ELIMIT &&
                   rc != PTC_PROTO_EHEADER) {
            abort();
        }
        break;
    }
    case 1: {
        ptc_response_head_t h = {
            .status = (uint16_t)(b & 1 ? 200 : 101), .headers = fields, .header_cnt = b % 3};
        (void)ptc_mux_respond(s->mux, id, &h, (u8(r) & 1) != 0);
        break;
    }
    case 2: {
        size_t len = (size_t)u16(r) + (b & 0x80 ? 4096u : 0u);
        if (len > sizeof(data)) {
            len = sizeof(data);
        }
        size_t win = ptc_mux_send_window(s->mux, id);
        ssize_t n = ptc_mux_send_data(s->mux, id, data, len, (b & 1) != 0);
        if (n >= 0 && ((size_t)n > len || (size_t)n > win)) {
            abort(); /* never more than asked, never more than the windows allow */
        }
        break;
    }
    case 3:
        (void)ptc_mux_reset(s->mux, id, u8(r));
        break;
    case 4:
        (void)ptc_mux_consumed(s->mux, id, u16(r));
        (void)ptc_mux_tunnel_consumed(s->mux, u8(r));
        break;
    case 5:
        if (s->pings < 32) {
            s->pings++;
            (void)ptc_mux_ping(s->mux, *now);
        }
        break;
    case 6:
        *now += (uint64_t)b * 500;
        if (ptc_mux_next_tick(s->mux) <= *now) {
            s->pings++;
        }
        if (s->pings < 32) {
            (void)ptc_mux_tick(s->mux, *now);
        }
        break;
    case 7:
        (void)ptc_mux_goaway(s->mux, b & 0x10 ? b & 0x0f : PTC_WIRE_NO_ERROR,
                             (const uint8_t *)"fuzz", b & 4);
        break;
    case 8: {
        size_t len = u16(r);
        (void)ptc_mux_send_control(s->mux, data, len);
        break;
    }
    case 9:
        (void)ptc_mux_set_user(s->mux, id, s);
        if (ptc_mux_get_user(s->mux, id) != s && ptc_mux_get_user(s->mux, id) != NULL) {
            abort();
        }
        break;
    default: {
        ptc_mux_stats_t st;
        ptc_mux_stats(s->mux, &st);
        if (st.streams_open > st.streams_total) {
            abort();
        }
        (void)ptc_mux_can_open(s->mux);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader_t r = {data, size};
    uint8_t cfg = u8(&r);
    bool pair = (cfg & 1) != 0;
    const ptc_mux_limits_t *lim_a = &limit_sets[(cfg >> 2) & 3];
    const ptc_mux_limits_t *lim_b = &limit_sets[(cfg >> 4) & 3];
    uint64_t now = 1000;
    side_t sides[2];
    memset(sides, 0, sizeof(sides));
    int nsides = pair ? 2 : 1;
    sides[0].mux = ptc_mux_new(pair || (cfg & 2) ? PTC_MUX_EDGE : PTC_MUX_CONNECTOR, lim_a, now);
    if (pair) {
        sides[1].mux = ptc_mux_new(PTC_MUX_CONNECTOR, lim_b, now);
        sides[0].peer = lim_b;
        sides[1].peer = lim_a;
        /* The handshake: each side applies the other's limits before any stream. */
        if (ptc_mux_set_peer_limits(sides[0].mux, lim_b) != 0 ||
            ptc_mux_set_peer_limits(sides[1].mux, lim_a) != 0) {
            abort();
        }
    } else {
        /* The peer's limits are unknown here: check frames against the largest. */
        static const ptc_mux_limits_t any = {
            PTC_FRAME_LEN_MAX, PTC_FRAME_LEN_MAX, PTC_FRAME_LEN_MAX, 1, 1, 1};
        sides[0].peer = &any;
        if (cfg & 0x40) {
            (void)ptc_mux_set_peer_limits(sides[0].mux, lim_b);
        }
    }
    if (cfg & 0x80) {
        ptc_mux_set_liveness(sides[0].mux, 1000, 5000);
    }
    bool tainted = false; /* raw bytes were injected: errors are legitimate from now on */
    while (r.len > 0) {
        uint8_t op = u8(&r);
        side_t *s = &sides[(op >> 7) % nsides];
        side_t *peer = pair ? &sides[1 - (op >> 7)] : NULL;
        uint8_t kind = op & 0x7f;
        int rc = 0;
        if (kind < 40) {
            /* Raw bytes, fed in two pieces split at a point taken from the input. */
            size_t len = u16(&r);
            size_t cut = u8(&r);
            len = len < r.len ? len : r.len;
            cut = cut % (len + 1);
            (void)ptc_mux_feed(s->mux, r.p, cut, now);
            drain_events(s);
            (void)ptc_mux_feed(s->mux, r.p + cut, len - cut, now);
            drain_events(s);
            r.p += len;
            r.len -= len;
            tainted = true;
        } else if (kind < 70 && pair) {
            /* Move part (or all) of one side's output to the other. */
            size_t max = kind < 55 ? (size_t)u8(&r) + 1 : SIZE_MAX;
            rc = move_output(s, peer, max, now);
        } else {
            api_call(s, (uint8_t)(kind % 11), &r, &now);
            drain_events(s);
        }
        /* Keep the output bounded; a single side's output goes nowhere, a bit at a time so that
         * PING answers overtake it at frame boundaries. */
        if (ptc_mux_output_pending(s->mux) > (1u << 20)) {
            int r2 = move_output(s, peer, SIZE_MAX, now);
            rc = rc != 0 ? rc : r2;
        } else if (!pair) {
            (void)move_output(s, NULL, (size_t)(op & 0x3f) * 64 + 1, now);
        }
        if (rc != 0 && rc != PTC_PROTO_ECLOSED && !tainted) {
            abort(); /* a correct peer made us fail */
        }
    }
    /* Flush everything both ways, then tear down. */
    for (int round = 0; round < 8 && pair; round++) {
        int a = move_output(&sides[0], &sides[1], SIZE_MAX, now);
        int b = move_output(&sides[1], &sides[0], SIZE_MAX, now);
        if (!tainted &&
            ((a != 0 && a != PTC_PROTO_ECLOSED) || (b != 0 && b != PTC_PROTO_ECLOSED))) {
            abort();
        }
    }
    for (int i = 0; i < nsides; i++) {
        drain_events(&sides[i]);
        (void)move_output(&sides[i], NULL, SIZE_MAX, now);
        ptc_mux_free(sides[i].mux);
        free(sides[i].vbuf);
    }
    return 0;
}
