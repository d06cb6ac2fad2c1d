/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/mux.h, the tunnel stream multiplexer, part 1: a basic exchange between
 * an edge mux and a connector mux wired back to back, and every stream-state transition of
 * docs/protocol.md §6.3 (received and sent, legal and illegal, with the exact error code and
 * scope). Flow control, limits, GOAWAY and liveness are in mux_flow_test.c; split input,
 * random round trips and 10,000 streams in mux_stress_test.c.
 */
#include "tests/unit/proto/mux_harness.h"

/* ---- basic exchange ---- */

static void test_round_trip_basic(void)
{
    ptc_mux_t *e;
    ptc_mux_t *c;
    new_pair(&e, &c, NULL, NULL);
    CHECK(ptc_mux_role(e) == PTC_MUX_EDGE);
    CHECK(ptc_mux_role(c) == PTC_MUX_CONNECTOR);
    ptc_request_head_t rq = req_head();
    uint32_t id = 0;
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    CHECK_EQ(id, 1);
    CHECK_EQ(ptc_mux_stream_state(e, id), PTC_MUX_STREAM_OPEN);
    CHECK_EQ(ptc_mux_send_data(e, id, (const uint8_t *)"body!", 5, true), 5);
    CHECK_EQ(ptc_mux_stream_state(e, id), PTC_MUX_STREAM_HALF_CLOSED_LOCAL);
    CHECK_OK(pump(e, c));

    clear_events();
    CHECK_EQ(pull(c), 2);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_REQUEST);
    CHECK_EQ(g_ev.r[0].id, 1);
    CHECK(!g_ev.r[0].end);
    CHECK_STREQ(g_ev.r[0].method, "GET /leave?id=7");
    CHECK_EQ(g_ev.r[0].header_cnt, 2);
    CHECK_EQ(g_ev.r[1].type, PTC_MUX_EV_DATA);
    CHECK(g_ev.r[1].end);
    CHECK_EQ(g_ev.r[1].len, 5);
    CHECK_MEMEQ(g_ev.r[1].data, "body!", 5);
    CHECK_EQ(ptc_mux_stream_state(c, 1), PTC_MUX_STREAM_HALF_CLOSED_REMOTE);
    CHECK_OK(ptc_mux_consumed(c, 1, 5));
    CHECK_OK(ptc_mux_tunnel_consumed(c, 5));

    ptc_response_head_t rs = resp_head(200);
    CHECK_OK(ptc_mux_respond(c, 1, &rs, false));
    CHECK_EQ(ptc_mux_send_data(c, 1, (const uint8_t *)"hello", 5, false), 5);
    CHECK_EQ(ptc_mux_send_data(c, 1, NULL, 0, true), 0);
    CHECK_EQ(ptc_mux_stream_state(c, 1), PTC_MUX_STREAM_IDLE); /* closed and forgotten */
    CHECK_OK(pump(e, c));
    clear_events();
    CHECK_EQ(pull(e), 3);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_RESPONSE);
    CHECK_EQ(g_ev.r[0].status, 200);
    CHECK_EQ(g_ev.r[0].header_cnt, 1);
    CHECK_EQ(g_ev.r[1].type, PTC_MUX_EV_DATA);
    CHECK_MEMEQ(g_ev.r[1].data, "hello", 5);
    CHECK(!g_ev.r[1].end);
    CHECK_EQ(g_ev.r[2].type, PTC_MUX_EV_DATA);
    CHECK_EQ(g_ev.r[2].len, 0);
    CHECK(g_ev.r[2].end);
    CHECK_EQ(ptc_mux_stream_state(e, 1), PTC_MUX_STREAM_IDLE);

    ptc_mux_stats_t st;
    ptc_mux_stats(e, &st);
    CHECK_EQ(st.streams_open, 0);
    CHECK_EQ(st.streams_total, 1);
    CHECK_EQ(st.data_out, 5);
    CHECK_EQ(st.data_in, 5);
    CHECK_EQ(st.frames_out, 2); /* REQUEST, DATA */
    CHECK_EQ(st.frames_in, 3);  /* RESPONSE, DATA, DATA */
    ptc_mux_stats_t cs;
    ptc_mux_stats(c, &cs);
    CHECK_UEQ(cs.bytes_in, st.bytes_out);
    CHECK_UEQ(st.bytes_in, cs.bytes_out);
    ptc_mux_free(e);
    ptc_mux_free(c);
}

static void test_control_and_user_pointer(void)
{
    ptc_mux_t *e;
    ptc_mux_t *c;
    new_pair(&e, &c, NULL, NULL);
    const char *doc = "{\"type\":\"challenge\"}";
    CHECK_OK(ptc_mux_send_control(e, (const uint8_t *)doc, strlen(doc)));
    ptc_request_head_t rq = req_head();
    uint32_t id;
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    int mine = 0;
    CHECK_OK(ptc_mux_set_user(e, id, &mine));
    CHECK(ptc_mux_get_user(e, id) == &mine);
    CHECK_EQ(ptc_mux_send_data(e, id, (const uint8_t *)"abc", 3, false), 3);
    CHECK_OK(pump(e, c));
    /* The connector attaches its object on REQUEST; the DATA event already queued carries it. */
    ptc_mux_event_t ev;
    CHECK(ptc_mux_next_event(c, &ev));
    CHECK_EQ(ev.type, PTC_MUX_EV_CONTROL);
    CHECK_EQ(ev.len, strlen(doc));
    CHECK_MEMEQ(ev.data, doc, ev.len);
    CHECK(ptc_mux_next_event(c, &ev));
    CHECK_EQ(ev.type, PTC_MUX_EV_REQUEST);
    CHECK_NULL(ev.user);
    int theirs = 0;
    CHECK_OK(ptc_mux_set_user(c, ev.stream_id, &theirs));
    CHECK_EQ(ptc_mux_pending_events(c), 1);
    CHECK(ptc_mux_next_event(c, &ev));
    CHECK_EQ(ev.type, PTC_MUX_EV_DATA);
    CHECK(ev.user == &theirs);
    CHECK(!ptc_mux_next_event(c, &ev));
    CHECK_EQ(ptc_mux_set_user(c, 99, NULL), PTC_PROTO_ENOSTREAM);
    CHECK_NULL(ptc_mux_get_user(c, 99));
    /* Edge events carry the edge's pointer. */
    ptc_response_head_t rs = resp_head(204);
    CHECK_OK(ptc_mux_respond(c, id, &rs, true));
    CHECK_OK(pump(e, c));
    CHECK(ptc_mux_next_event(e, &ev));
    CHECK_EQ(ev.type, PTC_MUX_EV_RESPONSE);
    CHECK(ev.user == &mine);
    CHECK(ev.end_stream);
    ptc_mux_free(e);
    ptc_mux_free(c);
}

/*
 * Events left unpulled across later feeds keep their payloads, although the input buffer
 * grows (moves) and is compacted meanwhile; the event queue wraps without losing order.
 */
static void test_events_across_feeds(void)
{
    ptc_mux_t *m = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
    static char doc[40][3000];
    raw_t r = {.len = 0};
    for (int i = 0; i < 40; i++) {
        memset(doc[i], 'a' + i % 26, sizeof(doc[i]));
        snprintf(doc[i], 16, "{\"n\":%d}", i);
    }
    for (int i = 0; i < 16; i++) {
        raw_frame(&r, PTC_FRAME_CONTROL, 0, 0, doc[i], 100 + (size_t)i);
    }
    CHECK_OK(feed_raw(m, &r));
    ptc_mux_event_t ev;
    int next = 0;
    for (; next < 5; next++) {
        CHECK(ptc_mux_next_event(m, &ev));
        CHECK_EQ(ev.len, 100 + next);
        CHECK_MEMEQ(ev.data, doc[next], ev.len);
    }
    /* Big frames, fed in pieces so that one is still partial at each feed's end. */
    for (int i = 16; i < 40; i++) {
        raw_frame(&r, PTC_FRAME_CONTROL, 0, 0, doc[i], sizeof(doc[i]));
    }
    size_t total = r.len;
    for (size_t off = 0; off < total; off += 7001) {
        size_t n = total - off < 7001 ? total - off : 7001;
        CHECK_OK(ptc_mux_feed(m, r.b + off, n, 0));
        if (off == 7001 * 3) {
            CHECK(ptc_mux_next_event(m, &ev)); /* one pulled in the middle */
            CHECK_MEMEQ(ev.data, doc[next], ev.len);
            next++;
        }
    }
    for (; next < 40; next++) {
        CHECK(ptc_mux_next_event(m, &ev));
        CHECK_EQ(ev.type, PTC_MUX_EV_CONTROL);
        CHECK_EQ(ev.len, next < 16 ? 100 + (size_t)next : sizeof(doc[next]));
        CHECK_MEMEQ(ev.data, doc[next], ev.len);
    }
    CHECK(!ptc_mux_next_event(m, &ev));
    ptc_mux_free(m);
}

/* Heads with many header fields (the mux's scratch array grows) arrive intact. */
static void test_many_headers(void)
{
    enum { NH = 300 };
    static ptc_proto_field_t f[NH];
    static char names[NH][12];
    for (int i = 0; i < NH; i++) {
        snprintf(names[i], sizeof(names[i]), "x-h%d", i);
        f[i].name = (ptc_proto_str_t){(const uint8_t *)names[i], strlen(names[i])};
        f[i].value = (ptc_proto_str_t){(const uint8_t *)names[i], i % 5};
    }
    ptc_mux_t *e;
    ptc_mux_t *c;
    new_pair(&e, &c, NULL, NULL);
    ptc_request_head_t rq = req_head();
    rq.headers = f;
    rq.header_cnt = 40;
    uint32_t a;
    uint32_t b;
    CHECK_OK(ptc_mux_open_stream(e, &rq, true, &a));
    rq.header_cnt = NH;
    CHECK_OK(ptc_mux_open_stream(e, &rq, true, &b));
    CHECK_OK(pump(e, c));
    ptc_mux_event_t ev;
    for (int k = 0; k < 2; k++) {
        CHECK(ptc_mux_next_event(c, &ev));
        CHECK_EQ(ev.type, PTC_MUX_EV_REQUEST);
        CHECK_EQ(ev.request.header_cnt, k == 0 ? 40 : NH);
        for (size_t i = 0; i < ev.request.header_cnt; i++) {
            CHECK_EQ(ev.request.headers[i].name.len, f[i].name.len);
            CHECK_MEMEQ(ev.request.headers[i].name.ptr, f[i].name.ptr, f[i].name.len);
            CHECK_EQ(ev.request.headers[i].value.len, f[i].value.len);
        }
    }
    ptc_response_head_t rs = {.status = 200, .headers = f, .header_cnt = NH};
    CHECK_OK(ptc_mux_respond(c, b, &rs, true));
    ptc_response_head_t bad = {.status = 99, .headers = NULL, .header_cnt = 0};
    CHECK_EQ(ptc_mux_respond(c, a, &bad, true), PTC_PROTO_EHEADER);
    CHECK_EQ(ptc_mux_stream_state(c, a), PTC_MUX_STREAM_HALF_CLOSED_REMOTE);
    CHECK_OK(pump(e, c));
    CHECK(ptc_mux_next_event(e, &ev));
    CHECK_EQ(ev.type, PTC_MUX_EV_RESPONSE);
    CHECK_EQ(ev.stream_id, b);
    CHECK_EQ(ev.response.header_cnt, NH);
    CHECK_MEMEQ(ev.response.headers[NH - 1].name.ptr, names[NH - 1], strlen(names[NH - 1]));
    ptc_mux_free(e);
    ptc_mux_free(c);
}

/* ---- transition tables (docs/protocol.md §6.3) ---- */

enum { F_RESPONSE, F_RESPONSE_ES, F_DATA, F_DATA_ES, F_RESET, F_WINDOW, F_REQUEST, F_REQUEST_ES };

static const char *const frame_names[] = {"RESPONSE", "RESPONSE+ES", "DATA",    "DATA+ES",
                                          "RESET",    "WINDOW",      "REQUEST", "REQUEST+ES"};

static void raw_kind(raw_t *r, int kind, uint32_t id)
{
    switch (kind) {
    case F_RESPONSE:
    case F_RESPONSE_ES:
        raw_response(r, id, kind == F_RESPONSE_ES, 200);
        break;
    case F_DATA:
    case F_DATA_ES:
        raw_frame(r, PTC_FRAME_DATA, kind == F_DATA_ES ? PTC_FLAG_END_STREAM : 0, id, "hello", 5);
        break;
    case F_RESET:
        raw_u32(r, PTC_FRAME_RESET, id, PTC_WIRE_CANCEL);
        break;
    case F_WINDOW:
        raw_u32(r, PTC_FRAME_WINDOW, id, 100);
        break;
    case F_REQUEST:
    case F_REQUEST_ES:
        raw_request(r, id, kind == F_REQUEST_ES);
        break;
    default:
        CHECK(!"unknown frame kind");
    }
}

/* What a received frame leads to. */
enum { X_STATE, X_P, X_S, X_IGNORE };

typedef struct expect {
    int kind;
    ptc_mux_stream_state_t state; /* X_STATE */
    uint32_t code;                /* X_S */
} expect_t;

#define ST(s)                                                                                      \
    {                                                                                              \
        X_STATE, PTC_MUX_STREAM_##s, 0                                                             \
    }
#define P                                                                                          \
    {                                                                                              \
        X_P, PTC_MUX_STREAM_IDLE, 0                                                                \
    }
#define SE(c)                                                                                      \
    {                                                                                              \
        X_S, PTC_MUX_STREAM_CLOSED, PTC_WIRE_##c                                                   \
    }
#define IGN                                                                                        \
    {                                                                                              \
        X_IGNORE, PTC_MUX_STREAM_IDLE, 0                                                           \
    }

/* Checks what feeding one frame to mux (stream id) did. */
static void check_outcome(ptc_mux_t *mux, uint32_t id, int kind, const expect_t *x, const char *row)
{
    raw_t r = {.len = 0};
    raw_kind(&r, kind, id);
    clear_events();
    int rc = feed_raw(mux, &r);
    ptc_mux_stream_state_t st = ptc_mux_stream_state(mux, id);
    outlist_t *o = take_frames(mux);
    pull(mux);
    ptc_test_diag("%s: %s -> rc %d, state %s, %zu frames out, %zu events", row, frame_names[kind],
                  rc, ptc_mux_stream_state_name(st), o->cnt, g_ev.cnt);
    switch (x->kind) {
    case X_STATE:
        CHECK_OK(rc);
        CHECK_EQ(st, x->state);
        CHECK_EQ(count_type(o, PTC_FRAME_RESET), 0);
        CHECK_EQ(count_type(o, PTC_FRAME_GOAWAY), 0);
        CHECK(!ptc_mux_is_closed(mux));
        break;
    case X_P: {
        CHECK_EQ(rc, PTC_PROTO_EPROTOCOL);
        CHECK(ptc_mux_is_closed(mux));
        const oframe_t *g = find_type(o, PTC_FRAME_GOAWAY);
        CHECK_NOT_NULL(g);
        CHECK_EQ(g->code, PTC_WIRE_PROTOCOL_ERROR);
        CHECK_EQ(last_event()->type, PTC_MUX_EV_ERROR);
        CHECK_EQ(last_event()->code, PTC_WIRE_PROTOCOL_ERROR);
        CHECK_EQ(last_event()->err, PTC_PROTO_EPROTOCOL);
        break;
    }
    case X_S: {
        CHECK_OK(rc);
        CHECK(!ptc_mux_is_closed(mux));
        CHECK_EQ(st, PTC_MUX_STREAM_CLOSED);
        const oframe_t *rs = find_type(o, PTC_FRAME_RESET);
        CHECK_NOT_NULL(rs);
        CHECK_EQ(rs->hdr.stream, id);
        CHECK_EQ(rs->u32, x->code);
        CHECK_EQ(count_type(o, PTC_FRAME_GOAWAY), 0);
        CHECK_EQ(last_event()->type, PTC_MUX_EV_RESET);
        CHECK(last_event()->local);
        CHECK_EQ(last_event()->code, x->code);
        CHECK_EQ(ptc_mux_stream_state(mux, id), PTC_MUX_STREAM_IDLE);
        break;
    }
    case X_IGNORE:
        CHECK_OK(rc);
        CHECK_EQ(o->cnt, 0);
        CHECK_EQ(g_ev.cnt, 0);
        CHECK(!ptc_mux_is_closed(mux));
        break;
    default:
        CHECK(!"bad expectation");
    }
}

static const char *const edge_rows[] = {"idle",
                                        "open, no response",
                                        "open, response",
                                        "half-closed (local), no response",
                                        "half-closed (local), response",
                                        "half-closed (remote)",
                                        "closed"};

static void test_edge_receive_table(void)
{
    static const expect_t table[E_ROWS][7] = {
        /* RESPONSE, RESPONSE+ES, DATA, DATA+ES, RESET, WINDOW, REQUEST */
        [E_IDLE] = {P, P, P, P, P, P, P},
        [E_OPEN_NORESP] = {ST(OPEN), ST(HALF_CLOSED_REMOTE), P, P, ST(CLOSED), ST(OPEN), P},
        [E_OPEN_RESP] = {P, P, ST(OPEN), ST(HALF_CLOSED_REMOTE), ST(CLOSED), ST(OPEN), P},
        [E_HCL_NORESP] = {ST(HALF_CLOSED_LOCAL), ST(CLOSED), P, P, ST(CLOSED),
                          ST(HALF_CLOSED_LOCAL), P},
        [E_HCL_RESP] = {P, P, ST(HALF_CLOSED_LOCAL), ST(CLOSED), ST(CLOSED), ST(HALF_CLOSED_LOCAL),
                        P},
        [E_HCR] = {P, P, SE(STREAM_CLOSED), SE(STREAM_CLOSED), ST(CLOSED), ST(HALF_CLOSED_REMOTE),
                   P},
        [E_CLOSED] = {IGN, IGN, IGN, IGN, IGN, IGN, P},
    };
    for (int row = 0; row < E_ROWS; row++) {
        for (int col = 0; col < 7; col++) {
            uint32_t id;
            ptc_mux_t *e = edge_in_state(row, &id);
            check_outcome(e, id, col, &table[row][col], edge_rows[row]);
            ptc_mux_free(e);
        }
    }
}

enum { C_IDLE, C_OPEN, C_HCL, C_HCR, C_CLOSED, C_ROWS };

static const char *const conn_rows[] = {"idle", "open", "half-closed (local)",
                                        "half-closed (remote)", "closed"};

static ptc_mux_t *conn_in_state(int row, uint32_t *id)
{
    ptc_mux_t *c = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
    CHECK_NOT_NULL(c);
    raw_t r = {.len = 0};
    raw_request(&r, 1, row == C_HCR || row == C_CLOSED);
    CHECK_OK(feed_raw(c, &r));
    if (row == C_HCL || row == C_CLOSED) {
        ptc_response_head_t rs = resp_head(200);
        CHECK_OK(ptc_mux_respond(c, 1, &rs, true));
    }
    clear_events();
    pull(c);
    (void)take_frames(c);
    *id = row == C_IDLE ? 2 : 1;
    return c;
}

static void test_connector_receive_table(void)
{
    /* Columns: REQUEST, REQUEST+ES, DATA, DATA+ES, RESET, WINDOW, RESPONSE. */
    static const int cols[7] = {F_REQUEST, F_REQUEST_ES, F_DATA,    F_DATA_ES,
                                F_RESET,   F_WINDOW,     F_RESPONSE};
    static const expect_t table[C_ROWS][7] = {
        [C_IDLE] = {ST(OPEN), ST(HALF_CLOSED_REMOTE), P, P, P, P, P},
        [C_OPEN] = {P, P, ST(OPEN), ST(HALF_CLOSED_REMOTE), ST(CLOSED), ST(OPEN), P},
        [C_HCL] = {P, P, ST(HALF_CLOSED_LOCAL), ST(CLOSED), ST(CLOSED), ST(HALF_CLOSED_LOCAL), P},
        [C_HCR] = {P, P, SE(STREAM_CLOSED), SE(STREAM_CLOSED), ST(CLOSED), ST(HALF_CLOSED_REMOTE),
                   P},
        [C_CLOSED] = {P, P, IGN, IGN, IGN, IGN, P},
    };
    for (int row = 0; row < C_ROWS; row++) {
        for (int col = 0; col < 7; col++) {
            uint32_t id;
            ptc_mux_t *c = conn_in_state(row, &id);
            check_outcome(c, id, cols[col], &table[row][col], conn_rows[row]);
            ptc_mux_free(c);
        }
    }
}

/* Notes 1 to 5 of §6.3 on REQUEST received by the connector. */
static void test_connector_request_notes(void)
{
    raw_t r = {.len = 0};
    /* 1: an id not above the highest received (ids may skip) is P. */
    ptc_mux_t *c = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
    raw_request(&r, 7, false);
    CHECK_OK(feed_raw(c, &r));
    raw_request(&r, 5, false);
    CHECK_EQ(feed_raw(c, &r), PTC_PROTO_EPROTOCOL);
    ptc_mux_free(c);

    /* 2: a REQUEST after the edge's GOAWAY is P. */
    c = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
    raw_goaway(&r, 0, PTC_WIRE_NO_ERROR, "draining");
    raw_request(&r, 1, true);
    CHECK_EQ(feed_raw(c, &r), PTC_PROTO_EPROTOCOL);
    ptc_mux_free(c);

    /* 3: a REQUEST that crossed our GOAWAY is refused; its DATA counts as on a closed stream. */
    ptc_mux_limits_t small = PTC_MUX_LIMITS_DEFAULT;
    small.initial_tunnel_window = 20;
    c = ptc_mux_new(PTC_MUX_CONNECTOR, &small, 0);
    raw_request(&r, 3, false);
    CHECK_OK(feed_raw(c, &r));
    CHECK_OK(ptc_mux_goaway(c, PTC_WIRE_NO_ERROR, (const uint8_t *)"draining", 8));
    outlist_t *o = take_frames(c);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].u32, 3); /* last stream = the highest received */
    CHECK_EQ(o->f[0].code, PTC_WIRE_NO_ERROR);
    CHECK_MEMEQ(o->f[0].data + 8, "draining", 8);
    raw_request(&r, 4, false);
    raw_frame(&r, PTC_FRAME_DATA, 0, 4, NULL, 10);
    raw_frame(&r, PTC_FRAME_DATA, 0, 4, NULL, 10); /* 20 bytes: the whole tunnel window */
    clear_events();
    CHECK_OK(feed_raw(c, &r));
    pull(c);
    CHECK_EQ(count_events(PTC_MUX_EV_REQUEST), 1); /* stream 3 only */
    o = take_frames(c);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_RESET);
    CHECK_EQ(o->f[0].hdr.stream, 4);
    CHECK_EQ(o->f[0].u32, PTC_WIRE_REFUSED_STREAM);
    CHECK_EQ(o->f[1].hdr.type, PTC_FRAME_WINDOW); /* tunnel credit returned at once */
    CHECK_EQ(o->f[1].hdr.stream, 0);
    CHECK_EQ(o->f[1].u32, 10);
    CHECK_EQ(ptc_mux_stream_state(c, 4), PTC_MUX_STREAM_IDLE);
    /* A second GOAWAY never raises the last stream id. */
    raw_request(&r, 9, true);
    CHECK_OK(feed_raw(c, &r));
    CHECK_OK(ptc_mux_goaway(c, PTC_WIRE_INTERNAL_ERROR, NULL, 0));
    o = take_frames(c);
    const oframe_t *g = find_type(o, PTC_FRAME_GOAWAY);
    CHECK_NOT_NULL(g);
    CHECK_EQ(g->u32, 3);
    CHECK(ptc_mux_is_closed(c));
    ptc_mux_free(c);

    /* 4: over our own max_streams: RESET(REFUSED_STREAM), the id counts as used. */
    ptc_mux_limits_t two = PTC_MUX_LIMITS_DEFAULT;
    two.max_streams = 2;
    c = ptc_mux_new(PTC_MUX_CONNECTOR, &two, 0);
    raw_request(&r, 1, false);
    raw_request(&r, 2, false);
    raw_request(&r, 3, false);
    clear_events();
    CHECK_OK(feed_raw(c, &r));
    pull(c);
    CHECK_EQ(count_events(PTC_MUX_EV_REQUEST), 2);
    o = take_frames(c);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.stream, 3);
    CHECK_EQ(o->f[0].u32, PTC_WIRE_REFUSED_STREAM);
    raw_request(&r, 3, false);
    CHECK_EQ(feed_raw(c, &r), PTC_PROTO_EPROTOCOL);
    ptc_mux_stats_t st;
    ptc_mux_stats(c, &st);
    CHECK_EQ(st.streams_refused, 1);
    ptc_mux_free(c);

    /* 5: a malformed header block is S(HEADER_ERROR); the id is used, the tunnel lives. */
    c = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
    raw_frame(&r, PTC_FRAME_REQUEST, 0, 1, "\x07\x00\x00\x50", 4);
    clear_events();
    CHECK_OK(feed_raw(c, &r));
    CHECK_EQ(pull(c), 0);
    o = take_frames(c);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_RESET);
    CHECK_EQ(o->f[0].u32, PTC_WIRE_HEADER_ERROR);
    raw_frame(&r, PTC_FRAME_DATA, 0, 1, "zz", 2); /* closed: ignored */
    raw_request(&r, 2, true);
    CHECK_OK(feed_raw(c, &r));
    CHECK_EQ(pull(c), 1);
    CHECK_EQ(last_event()->type, PTC_MUX_EV_REQUEST);
    ptc_mux_free(c);
}

static void test_edge_response_header_error(void)
{
    uint32_t id;
    ptc_mux_t *e = edge_in_state(E_OPEN_NORESP, &id);
    raw_t r = {.len = 0};
    raw_frame(&r, PTC_FRAME_RESPONSE, 0, id, "\x00\x64\x00\x00", 4); /* status 100 */
    clear_events();
    CHECK_OK(feed_raw(e, &r));
    pull(e);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_RESET);
    CHECK(g_ev.r[0].local);
    CHECK_EQ(g_ev.r[0].code, PTC_WIRE_HEADER_ERROR);
    outlist_t *o = take_frames(e);
    CHECK_EQ(o->cnt, 1);
    CHECK_EQ(o->f[0].u32, PTC_WIRE_HEADER_ERROR);
    ptc_mux_free(e);
}

/* RESET(REFUSED_STREAM) at the edge is reported as REFUSED (retryable). */
static void test_edge_refused_reset(void)
{
    uint32_t id;
    ptc_mux_t *e = edge_in_state(E_OPEN_NORESP, &id);
    raw_t r = {.len = 0};
    raw_u32(&r, PTC_FRAME_RESET, id, PTC_WIRE_REFUSED_STREAM);
    clear_events();
    CHECK_OK(feed_raw(e, &r));
    pull(e);
    CHECK_EQ(g_ev.cnt, 1);
    CHECK_EQ(g_ev.r[0].type, PTC_MUX_EV_REFUSED);
    CHECK_EQ(g_ev.r[0].code, PTC_WIRE_REFUSED_STREAM);
    CHECK_EQ(take_frames(e)->cnt, 0); /* never a RESET in answer to a RESET */
    ptc_mux_free(e);
}

/* Local API calls in every state (§6.3 "frames sent" tables): "-" is refused, nothing sent. */
static void test_edge_send_table(void)
{
    ptc_request_head_t rq = req_head();
    const uint8_t *b = (const uint8_t *)"xy";
    for (int row = 0; row < E_ROWS; row++) {
        /* DATA, DATA+ES, RESET */
        for (int op = 0; op < 3; op++) {
            uint32_t id;
            ptc_mux_t *e = edge_in_state(row, &id);
            int rc = op == 2 ? ptc_mux_reset(e, id, PTC_WIRE_CANCEL)
                             : (int)ptc_mux_send_data(e, id, b, 2, op == 1);
            outlist_t *o = take_frames(e);
            ptc_mux_stream_state_t st = ptc_mux_stream_state(e, id);
            ptc_test_diag("edge %s: op %d -> %d, %s", edge_rows[row], op, rc,
                          ptc_mux_stream_state_name(st));
            switch (row) {
            case E_IDLE:
            case E_CLOSED:
                CHECK_EQ(rc, PTC_PROTO_ENOSTREAM);
                CHECK_EQ(o->cnt, 0);
                break;
            case E_HCL_NORESP:
            case E_HCL_RESP:
                if (op == 2) {
                    CHECK_OK(rc);
                    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_RESET);
                    CHECK_EQ(st, PTC_MUX_STREAM_IDLE);
                } else {
                    CHECK_EQ(rc, PTC_PROTO_ESTATE);
                    CHECK_EQ(o->cnt, 0);
                }
                break;
            case E_OPEN_NORESP:
            case E_OPEN_RESP:
            case E_HCR:
                if (op == 2) {
                    CHECK_OK(rc);
                    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_RESET);
                    CHECK_EQ(o->f[0].u32, PTC_WIRE_CANCEL);
                    CHECK_EQ(st, PTC_MUX_STREAM_IDLE);
                } else {
                    CHECK_EQ(rc, 2);
                    CHECK_EQ(o->cnt, 1);
                    CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_DATA);
                    CHECK_EQ(o->f[0].hdr.flags, op == 1 ? PTC_FLAG_END_STREAM : 0);
                    ptc_mux_stream_state_t want =
                        row == E_HCR
                            ? (op == 1 ? PTC_MUX_STREAM_IDLE : PTC_MUX_STREAM_HALF_CLOSED_REMOTE)
                            : (op == 1 ? PTC_MUX_STREAM_HALF_CLOSED_LOCAL : PTC_MUX_STREAM_OPEN);
                    CHECK_EQ(st, want);
                }
                break;
            default:
                CHECK(!"row");
            }
            /* A REQUEST is only ever sent on a new id; RESPONSE never by the edge. */
            uint32_t nid;
            CHECK_OK(ptc_mux_open_stream(e, &rq, true, &nid));
            CHECK_GT(nid, 1);
            ptc_response_head_t rs = resp_head(200);
            CHECK_EQ(ptc_mux_respond(e, nid, &rs, false), PTC_PROTO_ESTATE);
            ptc_mux_free(e);
        }
    }
}

enum { K_OPEN_NORESP, K_OPEN_RESP, K_HCR_NORESP, K_HCR_RESP, K_HCL, K_CLOSED, K_ROWS };

static const char *const conn_send_rows[] = {"open, no response",
                                             "open, response",
                                             "half-closed (remote), no response",
                                             "half-closed (remote), response",
                                             "half-closed (local)",
                                             "closed"};

static void test_connector_send_table(void)
{
    const uint8_t *b = (const uint8_t *)"xy";
    ptc_response_head_t rs = resp_head(200);
    for (int row = 0; row < K_ROWS; row++) {
        /* RESPONSE, RESPONSE+ES, DATA, DATA+ES, RESET */
        for (int op = 0; op < 5; op++) {
            ptc_mux_t *c = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
            raw_t r = {.len = 0};
            bool hcr = row == K_HCR_NORESP || row == K_HCR_RESP || row == K_CLOSED;
            raw_request(&r, 1, hcr);
            CHECK_OK(feed_raw(c, &r));
            clear_events();
            pull(c);
            if (row == K_OPEN_RESP || row == K_HCR_RESP) {
                CHECK_OK(ptc_mux_respond(c, 1, &rs, false));
            } else if (row == K_HCL || row == K_CLOSED) {
                CHECK_OK(ptc_mux_respond(c, 1, &rs, true));
            }
            (void)take_frames(c);
            int rc;
            if (op < 2) {
                rc = ptc_mux_respond(c, 1, &rs, op == 1);
            } else if (op < 4) {
                rc = (int)ptc_mux_send_data(c, 1, b, 2, op == 3);
            } else {
                rc = ptc_mux_reset(c, 1, PTC_WIRE_BACKEND_REFUSED);
            }
            outlist_t *o = take_frames(c);
            ptc_mux_stream_state_t st = ptc_mux_stream_state(c, 1);
            ptc_test_diag("connector %s: op %d -> %d, %s", conn_send_rows[row], op, rc,
                          ptc_mux_stream_state_name(st));
            bool responded = row == K_OPEN_RESP || row == K_HCR_RESP;
            bool half_remote = row == K_HCR_NORESP || row == K_HCR_RESP;
            if (row == K_CLOSED) {
                CHECK_EQ(rc, PTC_PROTO_ENOSTREAM);
                CHECK_EQ(o->cnt, 0);
            } else if (op == 4) {
                CHECK_OK(rc);
                CHECK_EQ(o->f[0].hdr.type, PTC_FRAME_RESET);
                CHECK_EQ(o->f[0].u32, PTC_WIRE_BACKEND_REFUSED);
                CHECK_EQ(st, PTC_MUX_STREAM_IDLE);
            } else if (row == K_HCL || (op < 2 && responded) || (op >= 2 && !responded)) {
                CHECK_EQ(rc, PTC_PROTO_ESTATE);
                CHECK_EQ(o->cnt, 0);
            } else {
                bool end = op == 1 || op == 3;
                CHECK_EQ(rc, op < 2 ? 0 : 2);
                CHECK_EQ(o->cnt, 1);
                CHECK_EQ(o->f[0].hdr.type, op < 2 ? PTC_FRAME_RESPONSE : PTC_FRAME_DATA);
                ptc_mux_stream_state_t want =
                    half_remote ? (end ? PTC_MUX_STREAM_IDLE : PTC_MUX_STREAM_HALF_CLOSED_REMOTE)
                                : (end ? PTC_MUX_STREAM_HALF_CLOSED_LOCAL : PTC_MUX_STREAM_OPEN);
                CHECK_EQ(st, want);
            }
            ptc_request_head_t rq = req_head();
            uint32_t nid;
            CHECK_EQ(ptc_mux_open_stream(c, &rq, true, &nid), PTC_PROTO_ESTATE);
            CHECK(!ptc_mux_can_open(c));
            ptc_mux_free(c);
        }
    }
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_round_trip_basic),
    PTC_TEST(test_control_and_user_pointer),
    PTC_TEST(test_many_headers),
    PTC_TEST(test_events_across_feeds),
    PTC_TEST(test_edge_receive_table),
    PTC_TEST(test_connector_receive_table),
    PTC_TEST(test_connector_request_notes),
    PTC_TEST(test_edge_response_header_error),
    PTC_TEST(test_edge_refused_reset),
    PTC_TEST(test_edge_send_table),
    PTC_TEST(test_connector_send_table),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
