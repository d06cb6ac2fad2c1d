/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/mux.h, part 2: the frame-level checks of docs/protocol.md §3.5, flow
 * control in both directions (§7), limits (§7.6), GOAWAY (§9), and PING and liveness with a
 * fake clock (§10). Frames that a correct peer would never send are built by hand.
 */
#include "tests/unit/proto/mux_harness.h"

/* ---- frame-level checks (§3.5) ---- */

static void expect_tunnel_error(ptc_mux_role_t role, raw_t *r, int err, uint32_t code)
{
    ptc_mux_t *m = ptc_mux_new(role, NULL, 0);
    if (role == PTC_MUX_EDGE) {
        ptc_request_head_t rq = req_head();
        uint32_t id;
        CHECK_OK(ptc_mux_open_stream(m, &rq, false, &id));
        (void)take_frames(m);
    }
    CHECK_EQ(feed_raw(m, r), err);
    outlist_t *o = take_frames(m);
    const oframe_t *g = find_type(o, PTC_FRAME_GOAWAY);
    CHECK_NOT_NULL(g);
    CHECK_EQ(g->code, code);
    CHECK_EQ(g->u32, 0);
    CHECK(ptc_mux_is_closed(m));
    /* No later frame is processed. */
    uint8_t ping[17] = {0, 0, 8, PTC_FRAME_PING};
    CHECK_EQ(ptc_mux_feed(m, ping, sizeof(ping), 0), PTC_PROTO_ECLOSED);
    CHECK_EQ(take_frames(m)->cnt, 0);
    ptc_mux_free(m);
}

static void test_frame_errors(void)
{
    raw_t r = {.len = 0};
    /* Reserved bit. */
    raw_u32(&r, PTC_FRAME_WINDOW, 0, 5);
    r.b[5] |= 0x80;
    expect_tunnel_error(PTC_MUX_CONNECTOR, &r, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);
    /* Length over the limit, per type (refused from the header alone). */
    raw_frame(&r, PTC_FRAME_DATA, 0, 1, NULL, PTC_DEFAULT_MAX_FRAME_SIZE + 1);
    expect_tunnel_error(PTC_MUX_EDGE, &r, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    uint8_t hdr[9] = {0x01, 0x00, 0x01, PTC_FRAME_REQUEST, 0, 0, 0, 0, 1}; /* 65537 bytes */
    memcpy(r.b, hdr, 9);
    r.len = 9;
    expect_tunnel_error(PTC_MUX_CONNECTOR, &r, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    hdr[3] = PTC_FRAME_CONTROL;
    hdr[8] = 0;
    memcpy(r.b, hdr, 9);
    r.len = 9;
    expect_tunnel_error(PTC_MUX_CONNECTOR, &r, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    raw_frame(&r, 0x42, 0, 3, NULL, PTC_DEFAULT_MAX_FRAME_SIZE + 1); /* unknown type */
    expect_tunnel_error(PTC_MUX_CONNECTOR, &r, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    /* Stream kind. */
    raw_frame(&r, PTC_FRAME_DATA, 0, 0, "a", 1);
    expect_tunnel_error(PTC_MUX_EDGE, &r, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);
    raw_frame(&r, PTC_FRAME_PING, 0, 1, NULL, 8);
    expect_tunnel_error(PTC_MUX_EDGE, &r, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);
    raw_frame(&r, PTC_FRAME_CONTROL, 0, 1, "{}", 2);
    expect_tunnel_error(PTC_MUX_CONNECTOR, &r, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);
    /* Fixed sizes. */
    raw_frame(&r, PTC_FRAME_RESET, 0, 1, NULL, 5);
    expect_tunnel_error(PTC_MUX_EDGE, &r, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    raw_frame(&r, PTC_FRAME_WINDOW, 0, 0, NULL, 3);
    expect_tunnel_error(PTC_MUX_EDGE, &r, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    raw_frame(&r, PTC_FRAME_PING, 0, 0, NULL, 9);
    expect_tunnel_error(PTC_MUX_EDGE, &r, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    raw_frame(&r, PTC_FRAME_GOAWAY, 0, 0, NULL, 7);
    expect_tunnel_error(PTC_MUX_EDGE, &r, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    raw_frame(&r, PTC_FRAME_GOAWAY, 0, 0, NULL, 8 + 1025);
    expect_tunnel_error(PTC_MUX_EDGE, &r, PTC_PROTO_EFRAME_SIZE, PTC_WIRE_FRAME_SIZE_ERROR);
    /* WINDOW increment 0 on the tunnel. */
    raw_u32(&r, PTC_FRAME_WINDOW, 0, 0);
    expect_tunnel_error(PTC_MUX_EDGE, &r, PTC_PROTO_EPROTOCOL, PTC_WIRE_PROTOCOL_ERROR);

    /* Increment 0 on an open stream is a stream error; on a closed one it is ignored. */
    uint32_t id;
    ptc_mux_t *e = edge_in_state(E_OPEN_RESP, &id);
    raw_u32(&r, PTC_FRAME_WINDOW, id, 0x80000000u); /* R set, increment 0 */
    clear_events();
    CHECK_OK(feed_raw(e, &r));
    outlist_t *o = take_frames(e);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_RESET);
    CHECK_EQ(o->f[0].u32, PTC_WIRE_PROTOCOL_ERROR);
    pull(e);
    CHECK_EQ(last_event()->code, PTC_WIRE_PROTOCOL_ERROR);
    raw_u32(&r, PTC_FRAME_WINDOW, id, 0);
    CHECK_OK(feed_raw(e, &r));
    CHECK_EQ(take_frames(e)->cnt, 0);
    /* Unknown types are skipped whatever their stream and flags; unknown flags ignored. */
    raw_frame(&r, 0x08, 0xff, 12345, "abc", 3);
    raw_frame(&r, 0xff, 0, 0, NULL, 0);
    raw_frame(&r, PTC_FRAME_PING, 0xfc, 0, "12345678", 8);
    CHECK_OK(feed_raw(e, &r));
    o = take_frames(e);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.flags, PTC_FLAG_ACK);
    CHECK_MEMEQ(o->f[0].data, "12345678", 8);
    ptc_mux_free(e);
}

/* ---- flow control (§7) ---- */

static void test_window_stall_and_writable(void)
{
    ptc_mux_t *e;
    ptc_mux_t *c;
    new_pair(&e, &c, NULL, NULL);
    ptc_request_head_t rq = req_head();
    uint32_t id;
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    static uint8_t big[1 << 20];
    memset(big, 'b', sizeof(big));
    CHECK_EQ(ptc_mux_send_window(e, id), PTC_DEFAULT_STREAM_WINDOW);
    ssize_t n = ptc_mux_send_data(e, id, big, sizeof(big), true);
    CHECK_EQ(n, PTC_DEFAULT_STREAM_WINDOW); /* never more than the stream window */
    CHECK_EQ(ptc_mux_send_window(e, id), 0);
    CHECK_EQ(ptc_mux_stream_state(e, id), PTC_MUX_STREAM_OPEN); /* END_STREAM not sent */
    CHECK_EQ(ptc_mux_send_data(e, id, big, 10, true), 0);       /* stalled */
    outlist_t *o = take_frames(e);
    CHECK_EQ(o->cnt, 1 + PTC_DEFAULT_STREAM_WINDOW / PTC_DEFAULT_MAX_FRAME_SIZE);
    for (size_t i = 1; i < o->cnt; i++) {
        CHECK_EQ(o->f[i].hdr.type, PTC_FRAME_DATA);
        CHECK_EQ(o->f[i].hdr.length, PTC_DEFAULT_MAX_FRAME_SIZE);
        CHECK_EQ(o->f[i].hdr.flags, 0);
    }
    /* Replay the frames into the connector. */
    ptc_mux_t *e2 = ptc_mux_new(PTC_MUX_EDGE, NULL, 0);
    CHECK_OK(ptc_mux_open_stream(e2, &rq, false, &id));
    CHECK_EQ(ptc_mux_send_data(e2, id, big, sizeof(big), false), PTC_DEFAULT_STREAM_WINDOW);
    CHECK_OK(pump(e2, c));
    clear_events();
    pull(c);
    CHECK_EQ(count_events(PTC_MUX_EV_DATA), 16);
    /* Credit comes back in batches: nothing until half the window is consumed. */
    CHECK_OK(ptc_mux_tunnel_consumed(c, PTC_DEFAULT_STREAM_WINDOW));
    CHECK_OK(ptc_mux_consumed(c, id, PTC_DEFAULT_STREAM_WINDOW / 2 - 1));
    CHECK_EQ(take_frames(c)->cnt, 0);
    CHECK_OK(ptc_mux_consumed(c, id, 1));
    o = take_frames(c);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_WINDOW);
    CHECK_EQ(o->f[0].hdr.stream, id);
    CHECK_EQ(o->f[0].u32, PTC_DEFAULT_STREAM_WINDOW / 2);
    /* More than was delivered cannot be consumed. */
    CHECK_EQ(ptc_mux_consumed(c, id, PTC_DEFAULT_STREAM_WINDOW), PTC_PROTO_EFLOW);
    CHECK_EQ(ptc_mux_tunnel_consumed(c, 1), PTC_PROTO_EFLOW);
    CHECK_EQ(ptc_mux_consumed(c, 77, 1), PTC_PROTO_ENOSTREAM);
    /* The WINDOW reaches the stalled edge: one WRITABLE event for the stream. */
    uint8_t w[13];
    CHECK_EQ(ptc_frame_encode_window(w, sizeof(w), id, PTC_DEFAULT_STREAM_WINDOW / 2), 13);
    CHECK_OK(ptc_mux_feed(e, w, sizeof(w), 0));
    clear_events();
    pull(e);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_WRITABLE);
    CHECK_EQ(g_ev.r[0].id, id);
    CHECK_EQ(ptc_mux_send_window(e, id), PTC_DEFAULT_STREAM_WINDOW / 2);
    /* A further WINDOW without a stall gives no event. */
    CHECK_EQ(ptc_frame_encode_window(w, sizeof(w), id, 1), 13);
    CHECK_OK(ptc_mux_feed(e, w, sizeof(w), 0));
    clear_events();
    CHECK_EQ(pull(e), 0);
    ptc_mux_free(e);
    ptc_mux_free(e2);
    ptc_mux_free(c);
}

static void test_tunnel_window_stall(void)
{
    ptc_mux_limits_t cl = PTC_MUX_LIMITS_DEFAULT;
    cl.initial_tunnel_window = 50000;
    cl.initial_stream_window = 40000;
    ptc_mux_t *e;
    ptc_mux_t *c;
    new_pair(&e, &c, NULL, &cl);
    ptc_request_head_t rq = req_head();
    uint32_t a;
    uint32_t b;
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &a));
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &b));
    static uint8_t buf[100000];
    CHECK_EQ(ptc_mux_send_data(e, a, buf, 40000, false), 40000);
    CHECK_EQ(ptc_mux_send_window(e, b), 10000); /* the tunnel window is the smaller one */
    CHECK_EQ(ptc_mux_send_data(e, b, buf, 30000, false), 10000);
    CHECK_EQ(ptc_mux_send_data(e, b, buf, 30000, false), 0);
    CHECK_OK(pump(e, c));
    clear_events();
    pull(c);
    /* Tunnel credit returned as soon as the bytes are moved: a WINDOW on stream 0 once half
     * the tunnel window (25000) is owed. */
    CHECK_OK(ptc_mux_tunnel_consumed(c, 24999));
    CHECK_EQ(take_frames(c)->cnt, 0);
    CHECK_OK(ptc_mux_tunnel_consumed(c, 25001));
    CHECK_OK(pump(e, c));
    clear_events();
    pull(e);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_WRITABLE);
    CHECK_EQ(g_ev.r[0].id, 0); /* the tunnel's window */
    CHECK_EQ(ptc_mux_send_window(e, b), 30000);
    CHECK_EQ(ptc_mux_send_window(e, a), 0);
    ptc_mux_free(e);
    ptc_mux_free(c);
}

static void test_peer_exceeds_windows(void)
{
    /* Stream window exceeded: RESET(FLOW_CONTROL_ERROR), the tunnel lives, and the tunnel
     * credit of the refused bytes is returned. */
    ptc_mux_limits_t cl = PTC_MUX_LIMITS_DEFAULT;
    cl.initial_stream_window = 10;
    cl.initial_tunnel_window = 20;
    ptc_mux_t *c = ptc_mux_new(PTC_MUX_CONNECTOR, &cl, 0);
    raw_t r = {.len = 0};
    raw_request(&r, 1, false);
    raw_frame(&r, PTC_FRAME_DATA, 0, 1, NULL, 10);
    raw_frame(&r, PTC_FRAME_DATA, 0, 1, NULL, 1);
    clear_events();
    CHECK_OK(feed_raw(c, &r));
    pull(c);
    CHECK_EQ(g_ev.cnt, 3);
    CHECK_EQ(g_ev.r[1].type, PTC_MUX_EV_DATA);
    CHECK_EQ(g_ev.r[2].type, PTC_MUX_EV_RESET);
    CHECK_EQ(g_ev.r[2].code, PTC_WIRE_FLOW_CONTROL_ERROR);
    outlist_t *o = take_frames(c);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_RESET);
    CHECK_EQ(o->f[0].u32, PTC_WIRE_FLOW_CONTROL_ERROR);
    CHECK(!ptc_mux_is_closed(c));
    /* Tunnel window: 20 - 11 = 9 left; the 1 refused byte is owed back, 10 delivered: the
     * 11 bytes pass half the window (10), so one WINDOW returns them. */
    CHECK_OK(ptc_mux_tunnel_consumed(c, 10));
    o = take_frames(c);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.stream, 0);
    CHECK_EQ(o->f[0].u32, 11);
    /* Tunnel window exceeded: GOAWAY(FLOW_CONTROL_ERROR). The tunnel check comes first even
     * for a closed stream. */
    raw_frame(&r, PTC_FRAME_DATA, 0, 1, NULL, 21);
    CHECK_EQ(feed_raw(c, &r), PTC_PROTO_EFLOW);
    o = take_frames(c);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_GOAWAY);
    CHECK_EQ(o->f[0].code, PTC_WIRE_FLOW_CONTROL_ERROR);
    CHECK_EQ(o->f[0].u32, 1);
    ptc_mux_free(c);
}

static void test_window_overflow(void)
{
    /* Tunnel: 16 MiB + (2^31-1 - 16 MiB) is fine, one more byte is a tunnel error. */
    ptc_mux_t *e = ptc_mux_new(PTC_MUX_EDGE, NULL, 0);
    raw_t r = {.len = 0};
    raw_u32(&r, PTC_FRAME_WINDOW, 0, PTC_WINDOW_MAX - PTC_DEFAULT_TUNNEL_WINDOW);
    CHECK_OK(feed_raw(e, &r));
    raw_u32(&r, PTC_FRAME_WINDOW, 0, 1);
    CHECK_EQ(feed_raw(e, &r), PTC_PROTO_EFLOW);
    outlist_t *o = take_frames(e);
    CHECK_EQ(o->f[0].code, PTC_WIRE_FLOW_CONTROL_ERROR);
    ptc_mux_free(e);
    /* Stream: a stream error. */
    uint32_t id;
    e = edge_in_state(E_OPEN_RESP, &id);
    raw_u32(&r, PTC_FRAME_WINDOW, id, PTC_WINDOW_MAX - PTC_DEFAULT_STREAM_WINDOW);
    CHECK_OK(feed_raw(e, &r));
    CHECK_EQ(ptc_mux_send_window(e, id), PTC_DEFAULT_TUNNEL_WINDOW);
    raw_u32(&r, PTC_FRAME_WINDOW, id, 1);
    clear_events();
    CHECK_OK(feed_raw(e, &r));
    o = take_frames(e);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_RESET);
    CHECK_EQ(o->f[0].u32, PTC_WIRE_FLOW_CONTROL_ERROR);
    pull(e);
    CHECK_EQ(last_event()->type, PTC_MUX_EV_RESET);
    CHECK(!ptc_mux_is_closed(e));
    ptc_mux_free(e);
}

static void test_peer_limits_rebase(void)
{
    /* A stream created with the default windows (a REQUEST decoded before the welcome) is
     * re-based by the difference; granted credit is kept. */
    ptc_mux_t *c = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
    raw_t r = {.len = 0};
    raw_request(&r, 1, false);
    raw_u32(&r, PTC_FRAME_WINDOW, 1, 1000);
    CHECK_OK(feed_raw(c, &r));
    ptc_response_head_t rs = resp_head(200);
    CHECK_OK(ptc_mux_respond(c, 1, &rs, false));
    CHECK_EQ(ptc_mux_send_window(c, 1), PTC_DEFAULT_STREAM_WINDOW + 1000);
    ptc_mux_limits_t el = PTC_MUX_LIMITS_DEFAULT;
    el.initial_stream_window = 500;
    el.initial_tunnel_window = 100000;
    CHECK_OK(ptc_mux_set_peer_limits(c, &el));
    CHECK_EQ(ptc_mux_send_window(c, 1), 1500);
    CHECK_EQ(ptc_mux_peer_limits(c)->initial_stream_window, 500);
    CHECK_EQ(ptc_mux_local_limits(c)->initial_stream_window, PTC_DEFAULT_STREAM_WINDOW);
    static uint8_t buf[4000];
    CHECK_EQ(ptc_mux_send_data(c, 1, buf, sizeof(buf), false), 1500);
    /* Shrinking further makes the window negative; growing it back opens it: WRITABLE. */
    el.initial_stream_window = 100;
    CHECK_OK(ptc_mux_set_peer_limits(c, &el));
    CHECK_EQ(ptc_mux_send_window(c, 1), 0);
    clear_events();
    pull(c);
    el.initial_stream_window = 550;
    CHECK_OK(ptc_mux_set_peer_limits(c, &el));
    CHECK_EQ(ptc_mux_send_window(c, 1), 50);
    clear_events();
    pull(c);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_WRITABLE);
    CHECK_EQ(g_ev.r[0].id, 1);
    /* Out-of-range limits are refused and change nothing. */
    ptc_mux_limits_t bad = el;
    bad.max_frame_size = 1023;
    CHECK_EQ(ptc_mux_set_peer_limits(c, &bad), PTC_PROTO_ELIMIT);
    bad = el;
    bad.initial_stream_window = 0;
    CHECK_EQ(ptc_mux_set_peer_limits(c, &bad), PTC_PROTO_ELIMIT);
    CHECK_EQ(ptc_mux_peer_limits(c)->initial_stream_window, 550);
    /* A re-base past 2^31-1 is a tunnel FLOW_CONTROL_ERROR, for the tunnel window too. */
    ptc_mux_t *c3 = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
    ptc_mux_limits_t wide = PTC_MUX_LIMITS_DEFAULT;
    raw_u32(&r, PTC_FRAME_WINDOW, 0, PTC_WINDOW_MAX - PTC_DEFAULT_TUNNEL_WINDOW);
    CHECK_OK(feed_raw(c3, &r));
    wide.initial_tunnel_window = PTC_DEFAULT_TUNNEL_WINDOW + 1;
    CHECK_EQ(ptc_mux_set_peer_limits(c3, &wide), PTC_PROTO_EFLOW);
    CHECK(ptc_mux_is_closed(c3));
    CHECK_EQ(ptc_mux_set_peer_limits(c3, &wide), PTC_PROTO_ECLOSED);
    ptc_mux_free(c3);
    /* The tunnel window is re-based the same way: from stalled to open gives WRITABLE(0). */
    c3 = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
    raw_request(&r, 1, true);
    CHECK_OK(feed_raw(c3, &r));
    CHECK_OK(ptc_mux_respond(c3, 1, &rs, false));
    wide.initial_tunnel_window = 1000;
    CHECK_OK(ptc_mux_set_peer_limits(c3, &wide));
    CHECK_EQ(ptc_mux_send_data(c3, 1, buf, sizeof(buf), true), 1000);
    clear_events();
    pull(c3);
    wide.initial_tunnel_window = 1010;
    CHECK_OK(ptc_mux_set_peer_limits(c3, &wide));
    CHECK_EQ(ptc_mux_send_window(c3, 1), 10);
    clear_events();
    pull(c3);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_WRITABLE);
    CHECK_EQ(g_ev.r[0].id, 0);
    ptc_mux_free(c3);
    raw_u32(&r, PTC_FRAME_WINDOW, 1, PTC_WINDOW_MAX - 1000);
    CHECK_OK(feed_raw(c, &r));
    el.initial_stream_window = 2000;
    CHECK_EQ(ptc_mux_set_peer_limits(c, &el), PTC_PROTO_EFLOW);
    CHECK(ptc_mux_is_closed(c));
    const oframe_t *g = find_type(take_frames(c), PTC_FRAME_GOAWAY);
    CHECK_NOT_NULL(g);
    CHECK_EQ(g->code, PTC_WIRE_FLOW_CONTROL_ERROR);
    ptc_mux_free(c);

    CHECK_NULL(ptc_mux_new(PTC_MUX_EDGE, &bad, 0));
}

/* Data for a stream the application reset, and data queued when it resets, are dropped and
 * their tunnel credit returned by the mux itself. */
static void test_reset_drops_events(void)
{
    ptc_mux_limits_t cl = PTC_MUX_LIMITS_DEFAULT;
    cl.initial_tunnel_window = 40;
    ptc_mux_t *c = ptc_mux_new(PTC_MUX_CONNECTOR, &cl, 0);
    raw_t r = {.len = 0};
    raw_request(&r, 1, false);
    raw_frame(&r, PTC_FRAME_DATA, 0, 1, NULL, 10);
    raw_frame(&r, PTC_FRAME_DATA, 0, 1, NULL, 10);
    CHECK_OK(feed_raw(c, &r));
    ptc_mux_event_t ev;
    CHECK(ptc_mux_next_event(c, &ev));
    CHECK_EQ(ev.type, PTC_MUX_EV_REQUEST);
    CHECK_OK(ptc_mux_reset(c, 1, PTC_WIRE_CANCEL));
    CHECK(!ptc_mux_next_event(c, &ev)); /* both DATA events dropped */
    CHECK_EQ(ptc_mux_reset(c, 1, PTC_WIRE_CANCEL), PTC_PROTO_ENOSTREAM);
    outlist_t *o = take_frames(c);
    CHECK_EQ(o->cnt, 2);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_RESET);
    CHECK_EQ(o->f[1].hdr.type, PTC_FRAME_WINDOW); /* 20 bytes >= 40/2 */
    CHECK_EQ(o->f[1].u32, 20);
    /* DATA that crossed the RESET: ignored, counted, credited. */
    raw_frame(&r, PTC_FRAME_DATA, PTC_FLAG_END_STREAM, 1, NULL, 20);
    CHECK_OK(feed_raw(c, &r));
    CHECK(!ptc_mux_next_event(c, &ev));
    o = take_frames(c);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].u32, 20);
    CHECK_EQ(ptc_mux_consumed(c, 1, 0), 0); /* forgotten: no credit needed */

    /* A stream that ended with events queued: reset sends nothing and drops them. */
    raw_request(&r, 2, true);
    raw_u32(&r, PTC_FRAME_RESET, 2, PTC_WIRE_CANCEL);
    CHECK_OK(feed_raw(c, &r));
    CHECK_EQ(ptc_mux_stream_state(c, 2), PTC_MUX_STREAM_CLOSED);
    CHECK_OK(ptc_mux_reset(c, 2, PTC_WIRE_CANCEL));
    CHECK(!ptc_mux_next_event(c, &ev));
    CHECK_EQ(take_frames(c)->cnt, 0);
    CHECK_EQ(ptc_mux_stream_state(c, 2), PTC_MUX_STREAM_IDLE);
    ptc_mux_free(c);
}

/* ---- limits (§7.6) ---- */

static void test_limits(void)
{
    /* The edge never opens more streams than the connector's max_streams. */
    ptc_mux_limits_t cl = PTC_MUX_LIMITS_DEFAULT;
    cl.max_streams = 3;
    cl.max_header_block = 4096;
    cl.max_control_size = 4096;
    cl.max_frame_size = 1024;
    ptc_mux_t *e;
    ptc_mux_t *c;
    new_pair(&e, &c, NULL, &cl);
    ptc_request_head_t rq = req_head();
    uint32_t id;
    for (int i = 0; i < 3; i++) {
        CHECK(ptc_mux_can_open(e));
        CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    }
    CHECK(!ptc_mux_can_open(e));
    CHECK_EQ(ptc_mux_open_stream(e, &rq, false, &id), PTC_PROTO_ELIMIT);
    CHECK_OK(ptc_mux_reset(e, 2, PTC_WIRE_CANCEL));
    CHECK(ptc_mux_can_open(e));
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    CHECK_EQ(id, 4);
    /* DATA is split at the peer's max_frame_size. */
    static uint8_t buf[5000];
    CHECK_EQ(ptc_mux_send_data(e, 1, buf, sizeof(buf), true), 5000);
    /* A head over the peer's max_header_block cannot be sent. */
    static uint8_t longv[5000];
    memset(longv, 'v', sizeof(longv));
    ptc_proto_field_t f = {S("x-long"), {longv, sizeof(longv)}};
    ptc_request_head_t big = rq;
    big.headers = &f;
    big.header_cnt = 1;
    CHECK_OK(ptc_mux_reset(e, 4, PTC_WIRE_CANCEL));
    CHECK_EQ(ptc_mux_open_stream(e, &big, false, &id), PTC_PROTO_ELIMIT);
    ptc_request_head_t bad = rq;
    bad.port = 0;
    CHECK_EQ(ptc_mux_open_stream(e, &bad, false, &id), PTC_PROTO_EHEADER);
    CHECK_EQ(ptc_mux_send_control(e, longv, 4097), PTC_PROTO_ELIMIT);
    CHECK_OK(ptc_mux_send_control(e, longv, 4096));
    outlist_t *o = take_frames(e);
    size_t data = 0;
    for (size_t i = 0; i < o->cnt; i++) {
        if (o->f[i].hdr.type == PTC_FRAME_DATA) {
            CHECK_LE(o->f[i].hdr.length, 1024);
            data += o->f[i].hdr.length;
        }
    }
    CHECK_EQ(data, 5000);
    CHECK_EQ(count_type(o, PTC_FRAME_DATA), 5);
    CHECK_EQ(count_type(o, PTC_FRAME_REQUEST), 4);
    /* The connector enforces its own limits on what it receives. */
    raw_t r = {.len = 0};
    raw_frame(&r, PTC_FRAME_CONTROL, 0, 0, NULL, 4097);
    ptc_mux_t *c2 = ptc_mux_new(PTC_MUX_CONNECTOR, &cl, 0);
    CHECK_EQ(feed_raw(c2, &r), PTC_PROTO_EFRAME_SIZE);
    ptc_mux_free(c2);
    c2 = ptc_mux_new(PTC_MUX_CONNECTOR, &cl, 0);
    raw_request(&r, 1, false);
    raw_frame(&r, PTC_FRAME_DATA, 0, 1, NULL, 1025);
    CHECK_EQ(feed_raw(c2, &r), PTC_PROTO_EFRAME_SIZE);
    ptc_mux_free(c2);
    ptc_mux_free(e);
    ptc_mux_free(c);

    ptc_mux_limits_t l = PTC_MUX_LIMITS_DEFAULT;
    CHECK_OK(ptc_mux_limits_check(&l));
    l.max_streams = 0;
    CHECK_EQ(ptc_mux_limits_check(&l), PTC_PROTO_ELIMIT);
    l.max_streams = 0x80000000u;
    CHECK_EQ(ptc_mux_limits_check(&l), PTC_PROTO_ELIMIT);
    l = (ptc_mux_limits_t)PTC_MUX_LIMITS_DEFAULT;
    l.max_header_block = PTC_FRAME_LEN_MAX + 1;
    CHECK_EQ(ptc_mux_limits_check(&l), PTC_PROTO_ELIMIT);
    l = (ptc_mux_limits_t)PTC_MUX_LIMITS_DEFAULT;
    l.initial_tunnel_window = PTC_WINDOW_MAX + 1u;
    CHECK_EQ(ptc_mux_limits_check(&l), PTC_PROTO_ELIMIT);
}

/*
 * The connector refuses a stream over its max_streams with RESET(REFUSED_STREAM) (§6.5); the
 * edge reports it as REFUSED and may open another one.
 */
static void test_refused_stream(void)
{
    ptc_mux_limits_t cl = PTC_MUX_LIMITS_DEFAULT;
    cl.max_streams = 1;
    /* This edge has not applied the connector's limits (it believes 16384 streams). */
    ptc_mux_t *e = ptc_mux_new(PTC_MUX_EDGE, NULL, 0);
    ptc_mux_t *c = ptc_mux_new(PTC_MUX_CONNECTOR, &cl, 0);
    ptc_request_head_t rq = req_head();
    uint32_t a;
    uint32_t b;
    CHECK_OK(ptc_mux_open_stream(e, &rq, true, &a));
    CHECK_OK(ptc_mux_open_stream(e, &rq, true, &b));
    CHECK_OK(pump(e, c));
    clear_events();
    pull(c);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].id, a);
    clear_events();
    pull(e);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_REFUSED);
    CHECK_EQ(g_ev.r[0].id, b);
    CHECK_EQ(g_ev.r[0].code, PTC_WIRE_REFUSED_STREAM);
    CHECK_EQ(ptc_mux_stream_state(e, b), PTC_MUX_STREAM_IDLE);
    ptc_mux_stats_t st;
    ptc_mux_stats(e, &st);
    CHECK_EQ(st.streams_refused, 1);
    CHECK_EQ(st.streams_open, 1);
    /* Once stream a is done, a retry is accepted. */
    ptc_response_head_t rs = resp_head(204);
    CHECK_OK(ptc_mux_respond(c, a, &rs, true));
    CHECK_OK(pump(e, c));
    CHECK_OK(ptc_mux_open_stream(e, &rq, true, &b));
    CHECK_OK(pump(e, c));
    clear_events();
    pull(c);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_REQUEST);
    CHECK_EQ(g_ev.r[0].id, b);
    ptc_mux_free(e);
    ptc_mux_free(c);
}

/* ---- GOAWAY (§9) ---- */

static void test_goaway_from_connector(void)
{
    ptc_mux_t *e;
    ptc_mux_t *c;
    new_pair(&e, &c, NULL, NULL);
    ptc_request_head_t rq = req_head();
    uint32_t id;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    }
    CHECK_OK(pump(e, c)); /* the connector has 1..3 */
    CHECK_OK(ptc_mux_goaway(c, PTC_WIRE_NO_ERROR, (const uint8_t *)"draining", 8));
    CHECK(ptc_mux_goaway_sent(c));
    /* Streams 4 and 5 cross the GOAWAY. */
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    CHECK_OK(ptc_mux_open_stream(e, &rq, true, &id));
    CHECK_OK(pump(e, c));
    clear_events();
    pull(e);
    CHECK_EQ(g_ev.cnt, 3);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_GOAWAY);
    CHECK_EQ(g_ev.r[0].last, 3);
    CHECK_EQ(g_ev.r[0].code, PTC_WIRE_NO_ERROR);
    CHECK_EQ(g_ev.r[0].len, 8);
    CHECK_MEMEQ(g_ev.r[0].data, "draining", 8);
    CHECK_EQ(g_ev.r[1].type, PTC_MUX_EV_REFUSED);
    CHECK_EQ(g_ev.r[2].type, PTC_MUX_EV_REFUSED);
    CHECK_EQ(g_ev.r[1].id + g_ev.r[2].id, 9);
    CHECK(ptc_mux_goaway_received(e));
    CHECK(!ptc_mux_can_open(e));
    CHECK_EQ(ptc_mux_open_stream(e, &rq, false, &id), PTC_PROTO_ECLOSED);
    clear_events();
    pull(c);
    CHECK_EQ(count_events(PTC_MUX_EV_REQUEST), 3); /* 4 and 5 were refused by RESET */
    /* Streams 1..3 finish. */
    ptc_response_head_t rs = resp_head(200);
    for (uint32_t s = 1; s <= 3; s++) {
        CHECK_EQ(ptc_mux_stream_state(e, s), PTC_MUX_STREAM_OPEN);
        CHECK_EQ(ptc_mux_send_data(e, s, (const uint8_t *)"q", 1, true), 1);
        CHECK_OK(ptc_mux_respond(c, s, &rs, true));
    }
    CHECK_OK(pump(e, c));
    clear_events();
    pull(e);
    CHECK_EQ(count_events(PTC_MUX_EV_RESPONSE), 3);
    ptc_mux_stats_t st;
    ptc_mux_stats(e, &st);
    CHECK_EQ(st.streams_open, 0);
    CHECK_EQ(st.streams_refused, 2);
    CHECK(!ptc_mux_is_closed(e));

    /* A later GOAWAY with a higher last stream keeps the lower one; with an error code it
     * ends the remaining streams. */
    CHECK_OK(ptc_mux_goaway(c, PTC_WIRE_INTERNAL_ERROR, NULL, 0));
    CHECK(ptc_mux_is_closed(c));
    CHECK_EQ(ptc_mux_goaway(c, PTC_WIRE_NO_ERROR, NULL, 0), PTC_PROTO_ECLOSED);
    ptc_mux_free(e);
    ptc_mux_free(c);

    ptc_mux_t *e2 = ptc_mux_new(PTC_MUX_EDGE, NULL, 0);
    for (int i = 0; i < 4; i++) {
        CHECK_OK(ptc_mux_open_stream(e2, &rq, false, &id));
    }
    (void)take_frames(e2);
    raw_t r = {.len = 0};
    raw_goaway(&r, 3, PTC_WIRE_NO_ERROR, NULL);
    raw_goaway(&r, 4, PTC_WIRE_NO_ERROR, NULL);
    raw_goaway(&r, 9, PTC_WIRE_TIMEOUT, "idle timeout");
    clear_events();
    CHECK_OK(feed_raw(e2, &r));
    pull(e2);
    /* GOAWAY(3), REFUSED 4, GOAWAY(3), GOAWAY(3, TIMEOUT), RESET 3, 2, 1 (code TIMEOUT). */
    CHECK_EQ(g_ev.cnt, 7);
    CHECK_EQ(g_ev.r[1].type, PTC_MUX_EV_REFUSED);
    CHECK_EQ(g_ev.r[1].id, 4);
    CHECK_EQ(g_ev.r[2].last, 3);
    CHECK_EQ(g_ev.r[3].last, 3);
    CHECK_EQ(g_ev.r[3].code, PTC_WIRE_TIMEOUT);
    CHECK_MEMEQ(g_ev.r[3].data, "idle timeout", 12);
    for (int i = 4; i < 7; i++) {
        CHECK_EQ(g_ev.r[i].type, PTC_MUX_EV_RESET);
        CHECK_EQ(g_ev.r[i].code, PTC_WIRE_TIMEOUT);
        CHECK(!g_ev.r[i].local);
    }
    CHECK(ptc_mux_is_closed(e2));
    CHECK_EQ(take_frames(e2)->cnt, 0); /* nothing is sent in answer */
    CHECK_EQ(ptc_mux_send_data(e2, 1, (const uint8_t *)"x", 1, false), PTC_PROTO_ECLOSED);
    ptc_mux_free(e2);
}

static void test_goaway_from_edge(void)
{
    ptc_mux_t *e;
    ptc_mux_t *c;
    new_pair(&e, &c, NULL, NULL);
    ptc_request_head_t rq = req_head();
    uint32_t id;
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    CHECK_OK(ptc_mux_goaway(e, PTC_WIRE_NO_ERROR, (const uint8_t *)"draining", 8));
    CHECK_EQ(ptc_mux_open_stream(e, &rq, false, &id), PTC_PROTO_ECLOSED);
    size_t len;
    const uint8_t *out = ptc_mux_output(e, &len);
    CHECK_NOT_NULL(out);
    CHECK_OK(pump(e, c));
    clear_events();
    pull(c);
    CHECK_EQ(g_ev.cnt, 3);
    CHECK_EQ(g_ev.r[2].type, PTC_MUX_EV_GOAWAY);
    CHECK_EQ(g_ev.r[2].last, 0); /* the edge always sends 0 */
    CHECK(!ptc_mux_is_closed(c));
    /* Both streams still complete. */
    ptc_response_head_t rs = resp_head(200);
    CHECK_OK(ptc_mux_respond(c, 1, &rs, true));
    CHECK_OK(ptc_mux_respond(c, 2, &rs, true));
    CHECK_EQ(ptc_mux_send_data(e, 1, NULL, 0, true), 0);
    CHECK_EQ(ptc_mux_send_data(e, 2, NULL, 0, true), 0);
    CHECK_OK(pump(e, c));
    clear_events();
    pull(e);
    CHECK_EQ(count_events(PTC_MUX_EV_RESPONSE), 2);
    CHECK_EQ(count_events(PTC_MUX_EV_REFUSED), 0);
    ptc_mux_stats_t st;
    ptc_mux_stats(c, &st);
    CHECK_EQ(st.streams_open, 0);
    /* An edge GOAWAY with an error: the edge's streams end locally, the connector's too. */
    ptc_mux_t *e2;
    ptc_mux_t *c2;
    new_pair(&e2, &c2, NULL, NULL);
    CHECK_OK(ptc_mux_open_stream(e2, &rq, false, &id));
    CHECK_OK(pump(e2, c2));
    CHECK_OK(ptc_mux_goaway(e2, PTC_WIRE_PROTOCOL_ERROR, NULL, 0));
    clear_events();
    pull(e2);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_RESET);
    CHECK(g_ev.r[0].local);
    CHECK_OK(pump(e2, c2));
    clear_events();
    pull(c2);
    CHECK_EQ(g_ev.cnt, 3); /* REQUEST, GOAWAY, RESET */
    CHECK_EQ(g_ev.r[2].type, PTC_MUX_EV_RESET);
    CHECK_EQ(g_ev.r[2].code, PTC_WIRE_PROTOCOL_ERROR);
    CHECK(ptc_mux_is_closed(c2));
    CHECK_EQ(ptc_mux_feed(c2, (const uint8_t *)"x", 1, 0), PTC_PROTO_ECLOSED);
    CHECK_EQ(ptc_mux_goaway(e2, PTC_WIRE_NO_ERROR, NULL, 2000), PTC_PROTO_ECLOSED);
    ptc_mux_free(e2);
    ptc_mux_free(c2);
    ptc_mux_free(e);
    ptc_mux_free(c);
    ptc_mux_t *m = ptc_mux_new(PTC_MUX_EDGE, NULL, 0);
    CHECK_EQ(ptc_mux_goaway(m, PTC_WIRE_NO_ERROR, NULL, 1025), PTC_PROTO_EFRAME_SIZE);
    ptc_mux_free(m);
}

/* A tunnel error ends every stream with a RESET event and the queue with ERROR. */
static void test_tunnel_error_ends_streams(void)
{
    ptc_mux_t *e = ptc_mux_new(PTC_MUX_EDGE, NULL, 0);
    ptc_request_head_t rq = req_head();
    uint32_t id;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    }
    (void)take_frames(e);
    raw_t r = {.len = 0};
    raw_response(&r, 1, false, 200);
    raw_frame(&r, PTC_FRAME_DATA, 0, 2, "x", 1);  /* before its RESPONSE: P */
    raw_frame(&r, PTC_FRAME_PING, 0, 0, NULL, 8); /* never processed */
    clear_events();
    CHECK_EQ(feed_raw(e, &r), PTC_PROTO_EPROTOCOL);
    pull(e);
    CHECK_EQ(g_ev.cnt, 5);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_RESPONSE);
    for (int i = 1; i < 4; i++) {
        CHECK_EQ(g_ev.r[i].type, PTC_MUX_EV_RESET);
        CHECK_EQ(g_ev.r[i].code, PTC_WIRE_PROTOCOL_ERROR);
        CHECK(g_ev.r[i].local);
    }
    CHECK_EQ(g_ev.r[4].type, PTC_MUX_EV_ERROR);
    outlist_t *o = take_frames(e);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_GOAWAY);
    CHECK_EQ(ptc_mux_open_stream(e, &rq, false, &id), PTC_PROTO_ECLOSED);
    CHECK_EQ(ptc_mux_ping(e, 0), PTC_PROTO_ECLOSED);
    CHECK_EQ(ptc_mux_send_control(e, NULL, 0), PTC_PROTO_ECLOSED);
    CHECK_EQ(ptc_mux_tick(e, 0), PTC_PROTO_ECLOSED);
    CHECK_UEQ(ptc_mux_next_tick(e), UINT64_MAX);
    ptc_mux_free(e);
}

/* ---- PING and liveness (§10) ---- */

static void test_ping_and_liveness(void)
{
    ptc_mux_t *e = ptc_mux_new(PTC_MUX_EDGE, NULL, 1000);
    ptc_mux_t *c = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 1000);
    ptc_mux_set_liveness(e, 15000, 45000);
    CHECK_UEQ(ptc_mux_next_tick(e), 16000);
    CHECK_OK(ptc_mux_tick(e, 15999));
    CHECK_EQ(ptc_mux_output_pending(e), 0);
    CHECK_OK(ptc_mux_tick(e, 16000));
    outlist_t *o = take_frames(e);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_PING);
    CHECK_EQ(o->f[0].hdr.flags, 0);
    CHECK_UEQ(ptc_mux_next_tick(e), 31000);
    CHECK_OK(ptc_mux_tick(e, 20000)); /* nothing yet */
    CHECK_EQ(ptc_mux_output_pending(e), 0);
    /* The connector answers at once; the ACK arrives 250 ms later. */
    uint8_t frame[17];
    CHECK_EQ(ptc_frame_encode_ping(frame, sizeof(frame), 0, o->f[0].data), 17);
    CHECK_OK(ptc_mux_feed(c, frame, sizeof(frame), 16100));
    uint8_t ack[64];
    CHECK_EQ(ptc_mux_take_output(c, ack, sizeof(ack)), 17);
    CHECK_EQ(ack[4], PTC_FLAG_ACK);
    CHECK_OK(ptc_mux_feed(e, ack, 17, 16250));
    clear_events();
    pull(e);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_PING_ACK);
    CHECK_EQ(g_ev.r[0].rtt, 250);
    /* The same ACK again, or one nobody asked for, is ignored (and never answered). */
    CHECK_OK(ptc_mux_feed(e, ack, 17, 16300));
    CHECK_EQ(pull(e), 0);
    CHECK_EQ(ptc_mux_output_pending(e), 0);
    /* Receiving resets the clock: the next PING is 15 s after the last frame. */
    CHECK_UEQ(ptc_mux_next_tick(e), 31300);
    /* A partial frame is not a sign of life. */
    CHECK_OK(ptc_mux_feed(e, ack, 5, 30000));
    CHECK_UEQ(ptc_mux_next_tick(e), 31300);
    CHECK_OK(ptc_mux_tick(e, 31300));
    CHECK_EQ(count_type(take_frames(e), PTC_FRAME_PING), 1);
    CHECK_OK(ptc_mux_tick(e, 46300));
    CHECK_EQ(count_type(take_frames(e), PTC_FRAME_PING), 1);
    CHECK_UEQ(ptc_mux_next_tick(e), 61300);
    /* 45 s of silence: the tunnel is dead. */
    ptc_request_head_t rq = req_head();
    uint32_t id;
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    (void)take_frames(e);
    CHECK_EQ(ptc_mux_tick(e, 61299), 0);
    CHECK_EQ(ptc_mux_tick(e, 61300), PTC_PROTO_ETIMEOUT);
    o = take_frames(e);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_GOAWAY);
    CHECK_EQ(o->f[0].code, PTC_WIRE_TIMEOUT);
    CHECK_EQ(o->f[0].hdr.length, 8 + 12);
    CHECK_MEMEQ(o->f[0].data + 8, "idle timeout", 12);
    clear_events();
    pull(e);
    CHECK_EQ(g_ev.cnt, 2);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_RESET);
    CHECK_EQ(g_ev.r[0].code, PTC_WIRE_TIMEOUT);
    CHECK_EQ(g_ev.r[1].type, PTC_MUX_EV_ERROR);
    CHECK_EQ(g_ev.r[1].err, PTC_PROTO_ETIMEOUT);
    CHECK(ptc_mux_is_closed(e));
    /* Disabled timers never fire. */
    ptc_mux_set_liveness(c, 0, 0);
    CHECK_UEQ(ptc_mux_next_tick(c), UINT64_MAX);
    CHECK_OK(ptc_mux_tick(c, 10000000));
    CHECK_EQ(ptc_mux_output_pending(c), 0);
    /* An explicit PING. */
    CHECK_OK(ptc_mux_ping(c, 77));
    o = take_frames(c);
    CHECK_EQ(o->f[0].data[7], 77);
    ptc_mux_free(e);
    ptc_mux_free(c);
}

/* PING answers jump ahead of queued output at a frame boundary, and are bounded. */
static void test_ping_ack_priority_and_bound(void)
{
    uint32_t id;
    ptc_mux_t *e = edge_in_state(E_OPEN_RESP, &id);
    static uint8_t buf[40000];
    CHECK_EQ(ptc_mux_send_data(e, id, buf, sizeof(buf), false), sizeof(buf));
    size_t total = ptc_mux_output_pending(e);
    CHECK_EQ(total, 40000 + 3 * 9);
    ptc_mux_output_consume(e, 100); /* part of the first DATA frame is written */
    raw_t r = {.len = 0};
    raw_frame(&r, PTC_FRAME_PING, 0, 0, "ABCDEFGH", 8);
    CHECK_OK(feed_raw(e, &r));
    CHECK_EQ(ptc_mux_output_pending(e), total - 100 + 17);
    size_t len;
    const uint8_t *p = ptc_mux_output(e, &len);
    CHECK_EQ(len, 9 + 16384 - 100); /* the rest of the frame in progress */
    CHECK_NOT_NULL(p);
    ptc_mux_output_consume(e, 10);
    p = ptc_mux_output(e, &len);
    CHECK_EQ(len, 9 + 16384 - 110);
    ptc_mux_output_consume(e, len);
    p = ptc_mux_output(e, &len);
    CHECK_EQ(len, 17);
    CHECK_EQ(p[3], PTC_FRAME_PING);
    CHECK_EQ(p[4], PTC_FLAG_ACK);
    CHECK_MEMEQ(p + 9, "ABCDEFGH", 8);
    ptc_mux_output_consume(e, 5);
    p = ptc_mux_output(e, &len);
    CHECK_EQ(len, 12);
    ptc_mux_output_consume(e, 12);
    p = ptc_mux_output(e, &len);
    CHECK_EQ(len, 2 * 9 + 40000 - 16384); /* then everything else */
    CHECK_EQ(p[3], PTC_FRAME_DATA);
    /* At a boundary, the answer goes first; take_output keeps the byte order consistent. */
    raw_frame(&r, PTC_FRAME_PING, 0, 0, "12345678", 8);
    CHECK_OK(feed_raw(e, &r));
    outlist_t *o = take_frames(e);
    CHECK_EQ(o->cnt, 3);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_PING);
    CHECK_EQ(o->f[1].hdr.type, PTC_FRAME_DATA);
    /* Answers written in part make room at the front of their queue. */
    for (int i = 0; i < PTC_MUX_MAX_PING_ACKS; i++) {
        raw_frame(&r, PTC_FRAME_PING, 0, 0, "bbbbbbbb", 8);
    }
    CHECK_OK(feed_raw(e, &r));
    p = ptc_mux_output(e, &len);
    CHECK_EQ(len, PTC_MUX_MAX_PING_ACKS * 17);
    ptc_mux_output_consume(e, 17);
    raw_frame(&r, PTC_FRAME_PING, 0, 0, "cccccccc", 8);
    CHECK_OK(feed_raw(e, &r));
    o = take_frames(e);
    CHECK_EQ(o->cnt, PTC_MUX_MAX_PING_ACKS);
    CHECK_MEMEQ(o->f[o->cnt - 1].data, "cccccccc", 8);
    /* A peer that sends PINGs but never reads: a bounded queue, then PROTOCOL_ERROR. */
    for (int i = 0; i < PTC_MUX_MAX_PING_ACKS; i++) {
        raw_frame(&r, PTC_FRAME_PING, 0, 0, "aaaaaaaa", 8);
    }
    CHECK_OK(feed_raw(e, &r));
    CHECK_EQ(ptc_mux_output_pending(e), PTC_MUX_MAX_PING_ACKS * 17);
    raw_frame(&r, PTC_FRAME_PING, 0, 0, "aaaaaaaa", 8);
    CHECK_EQ(feed_raw(e, &r), PTC_PROTO_EPROTOCOL);
    o = take_frames(e);
    CHECK_EQ(count_type(o, PTC_FRAME_PING), PTC_MUX_MAX_PING_ACKS);
    CHECK_EQ(o->f[o->cnt - 1].hdr.type, PTC_FRAME_GOAWAY);
    ptc_mux_free(e);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_frame_errors),        PTC_TEST(test_window_stall_and_writable),
    PTC_TEST(test_tunnel_window_stall), PTC_TEST(test_peer_exceeds_windows),
    PTC_TEST(test_window_overflow),     PTC_TEST(test_peer_limits_rebase),
    PTC_TEST(test_reset_drops_events),  PTC_TEST(test_limits),
    PTC_TEST(test_refused_stream),      PTC_TEST(test_goaway_from_connector),
    PTC_TEST(test_goaway_from_edge),    PTC_TEST(test_tunnel_error_ends_streams),
    PTC_TEST(test_ping_and_liveness),   PTC_TEST(test_ping_ack_priority_and_bound),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
