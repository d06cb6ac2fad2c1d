/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/mux.h, the tunnel stream multiplexer: every stream-state transition of
 * docs/protocol.md §6.3 (received and sent, legal and illegal, with the exact error code and
 * scope), flow control in both directions (§7), limits (§7.6), GOAWAY (§9), PING and
 * liveness with a fake clock (§10), input split at every byte, a seeded random round trip
 * between an edge mux and a connector mux wired back to back, and 10,000 concurrent streams.
 * Frames that a correct peer would never send are built by hand.
 */
#include "proto/frame.h"
#include "proto/hblock.h"
#include "proto/mux.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S(lit) ((ptc_proto_str_t){(const uint8_t *)(lit), sizeof(lit) - 1})

/* ---- heads ---- */

static const ptc_proto_field_t req_fields[] = {
    {{(const uint8_t *)"host", 4}, {(const uint8_t *)"app.internal", 12}},
    {{(const uint8_t *)"accept", 6}, {(const uint8_t *)"text/html", 9}},
};

static ptc_request_head_t req_head(void)
{
    ptc_request_head_t h;
    memset(&h, 0, sizeof(h));
    h.scheme = PTC_PROTO_SCHEME_HTTPS;
    h.validate_tls = true;
    h.port = 8443;
    h.timeout_ms = 85000;
    h.host = S("app.internal");
    h.sni = S("app.internal");
    h.method = S("GET");
    h.target = S("/leave?id=7");
    h.headers = req_fields;
    h.header_cnt = 2;
    return h;
}

static const ptc_proto_field_t resp_fields[] = {
    {{(const uint8_t *)"content-type", 12}, {(const uint8_t *)"text/plain", 10}},
};

static ptc_response_head_t resp_head(uint16_t status)
{
    ptc_response_head_t h = {.status = status, .headers = resp_fields, .header_cnt = 1};
    return h;
}

/* ---- raw frames (built by hand so that invalid ones can be made too) ---- */

typedef struct raw {
    uint8_t b[1 << 17];
    size_t len;
} raw_t;

static void raw_frame(raw_t *r, uint8_t type, uint8_t flags, uint32_t id, const void *payload,
                      size_t len)
{
    CHECK(r->len + 9 + len <= sizeof(r->b));
    uint8_t *p = r->b + r->len;
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)(id >> 24);
    p[6] = (uint8_t)(id >> 16);
    p[7] = (uint8_t)(id >> 8);
    p[8] = (uint8_t)id;
    if (len > 0 && payload != NULL) {
        memcpy(p + 9, payload, len);
    } else if (len > 0) {
        memset(p + 9, 'x', len);
    }
    r->len += 9 + len;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void raw_u32(raw_t *r, uint8_t type, uint32_t id, uint32_t v)
{
    uint8_t pl[4];
    put32(pl, v);
    raw_frame(r, type, 0, id, pl, 4);
}

static void raw_goaway(raw_t *r, uint32_t last, uint32_t code, const char *debug)
{
    uint8_t pl[8 + 64];
    size_t dl = debug != NULL ? strlen(debug) : 0;
    put32(pl, last);
    put32(pl + 4, code);
    memcpy(pl + 8, debug != NULL ? debug : "", dl);
    raw_frame(r, PTC_FRAME_GOAWAY, 0, 0, pl, 8 + dl);
}

static void raw_request(raw_t *r, uint32_t id, bool end)
{
    ptc_request_head_t h = req_head();
    uint8_t blk[512];
    ssize_t n = ptc_hblock_encode_request(&h, blk, sizeof(blk));
    CHECK_GT(n, 0);
    raw_frame(r, PTC_FRAME_REQUEST, end ? PTC_FLAG_END_STREAM : 0, id, blk, (size_t)n);
}

static void raw_response(raw_t *r, uint32_t id, bool end, uint16_t status)
{
    ptc_response_head_t h = resp_head(status);
    uint8_t blk[512];
    ssize_t n = ptc_hblock_encode_response(&h, blk, sizeof(blk));
    CHECK_GT(n, 0);
    raw_frame(r, PTC_FRAME_RESPONSE, end ? PTC_FLAG_END_STREAM : 0, id, blk, (size_t)n);
}

static int feed_raw(ptc_mux_t *mux, raw_t *r)
{
    int rc = ptc_mux_feed(mux, r->b, r->len, 0);
    r->len = 0;
    return rc;
}

/* ---- decoded output ---- */

typedef struct oframe {
    ptc_frame_header_t hdr;
    uint32_t u32;  /* RESET code, WINDOW increment, GOAWAY last stream */
    uint32_t code; /* GOAWAY code */
    uint8_t data[64];
    size_t len;
} oframe_t;

typedef struct outlist {
    oframe_t f[4096];
    size_t cnt;
} outlist_t;

static outlist_t g_out;

/* Takes all pending output of mux and decodes it into g_out. */
static outlist_t *take_frames(ptc_mux_t *mux)
{
    static uint8_t buf[1 << 22];
    size_t n = ptc_mux_take_output(mux, buf, sizeof(buf));
    CHECK_EQ(ptc_mux_output_pending(mux), 0);
    ptc_frame_limits_t lim = {PTC_FRAME_LEN_MAX, PTC_FRAME_LEN_MAX, PTC_FRAME_LEN_MAX};
    g_out.cnt = 0;
    size_t off = 0;
    while (off < n) {
        ptc_frame_t f;
        ssize_t k = ptc_frame_decode(buf + off, n - off, &lim, &f);
        CHECK_GT(k, 0);
        CHECK_LT(g_out.cnt, sizeof(g_out.f) / sizeof(g_out.f[0]));
        oframe_t *o = &g_out.f[g_out.cnt++];
        memset(o, 0, sizeof(*o));
        o->hdr = f.hdr;
        if (f.hdr.type == PTC_FRAME_RESET) {
            o->u32 = ptc_frame_reset_code(&f);
        } else if (f.hdr.type == PTC_FRAME_WINDOW) {
            o->u32 = ptc_frame_window_increment(&f);
        } else if (f.hdr.type == PTC_FRAME_GOAWAY) {
            o->u32 = ptc_frame_goaway_last_stream(&f);
            o->code = ptc_frame_goaway_error(&f);
        }
        o->len = f.hdr.length < sizeof(o->data) ? f.hdr.length : sizeof(o->data);
        memcpy(o->data, f.payload, o->len);
        off += (size_t)k;
    }
    return &g_out;
}

static size_t count_type(const outlist_t *o, uint8_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < o->cnt; i++) {
        n += o->f[i].hdr.type == type;
    }
    return n;
}

static const oframe_t *find_type(const outlist_t *o, uint8_t type)
{
    for (size_t i = 0; i < o->cnt; i++) {
        if (o->f[i].hdr.type == type) {
            return &o->f[i];
        }
    }
    return NULL;
}

/* ---- event log ---- */

typedef struct rec {
    ptc_mux_event_type_t type;
    uint32_t id;
    bool end;
    bool local;
    uint32_t code;
    uint32_t last;
    int err;
    uint64_t rtt;
    void *user;
    uint16_t status;
    char method[40];
    size_t header_cnt;
    uint8_t data[256];
    size_t len;
} rec_t;

typedef struct evlog {
    rec_t r[20000];
    size_t cnt;
} evlog_t;

static evlog_t g_ev;

/* Pulls every event of mux into g_ev (appending); returns the number pulled. */
static size_t pull(ptc_mux_t *mux)
{
    ptc_mux_event_t ev;
    size_t n = 0;
    while (ptc_mux_next_event(mux, &ev)) {
        CHECK_LT(g_ev.cnt, sizeof(g_ev.r) / sizeof(g_ev.r[0]));
        rec_t *r = &g_ev.r[g_ev.cnt++];
        memset(r, 0, sizeof(*r));
        r->type = ev.type;
        r->id = ev.stream_id;
        r->end = ev.end_stream;
        r->local = ev.is_local;
        r->code = ev.code;
        r->last = ev.last_stream;
        r->err = ev.err;
        r->rtt = ev.rtt_ms;
        r->user = ev.user;
        if (ev.type == PTC_MUX_EV_REQUEST) {
            snprintf(r->method, sizeof(r->method), "%.*s %.*s", (int)ev.request.method.len,
                     (const char *)ev.request.method.ptr, (int)ev.request.target.len,
                     (const char *)ev.request.target.ptr);
            r->header_cnt = ev.request.header_cnt;
        }
        if (ev.type == PTC_MUX_EV_RESPONSE) {
            r->status = ev.response.status;
            r->header_cnt = ev.response.header_cnt;
        }
        r->len = ev.len;
        if (ev.len > 0) {
            memcpy(r->data, ev.data, ev.len < sizeof(r->data) ? ev.len : sizeof(r->data));
        }
        n++;
    }
    return n;
}

static void clear_events(void)
{
    g_ev.cnt = 0;
}

static const rec_t *last_event(void)
{
    CHECK_GT(g_ev.cnt, 0);
    return &g_ev.r[g_ev.cnt - 1];
}

static size_t count_events(ptc_mux_event_type_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < g_ev.cnt; i++) {
        n += g_ev.r[i].type == type;
    }
    return n;
}

/* ---- a pair of muxes wired back to back ---- */

/* Moves all output of a into b and back until both are quiet. Events stay queued. */
static int pump(ptc_mux_t *edge, ptc_mux_t *conn)
{
    static uint8_t buf[1 << 16];
    for (int round = 0; round < 100000; round++) {
        size_t a = ptc_mux_take_output(edge, buf, sizeof(buf));
        if (a > 0) {
            int rc = ptc_mux_feed(conn, buf, a, 0);
            if (rc != 0) {
                return rc;
            }
        }
        size_t b = ptc_mux_take_output(conn, buf, sizeof(buf));
        if (b > 0) {
            int rc = ptc_mux_feed(edge, buf, b, 0);
            if (rc != 0) {
                return rc;
            }
        }
        if (a == 0 && b == 0) {
            return 0;
        }
    }
    return -1;
}

static void new_pair(ptc_mux_t **edge, ptc_mux_t **conn, const ptc_mux_limits_t *el,
                     const ptc_mux_limits_t *cl)
{
    static const ptc_mux_limits_t def = PTC_MUX_LIMITS_DEFAULT;
    *edge = ptc_mux_new(PTC_MUX_EDGE, el, 0);
    *conn = ptc_mux_new(PTC_MUX_CONNECTOR, cl, 0);
    CHECK_NOT_NULL(*edge);
    CHECK_NOT_NULL(*conn);
    CHECK_OK(ptc_mux_set_peer_limits(*edge, cl != NULL ? cl : &def));
    CHECK_OK(ptc_mux_set_peer_limits(*conn, el != NULL ? el : &def));
}

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

enum { E_IDLE, E_OPEN_NORESP, E_OPEN_RESP, E_HCL_NORESP, E_HCL_RESP, E_HCR, E_CLOSED, E_ROWS };

static const char *const edge_rows[] = {"idle",
                                        "open, no response",
                                        "open, response",
                                        "half-closed (local), no response",
                                        "half-closed (local), response",
                                        "half-closed (remote)",
                                        "closed"};

/* An edge mux with stream 1 in the row's state; returns the id to send frames on. */
static ptc_mux_t *edge_in_state(int row, uint32_t *id)
{
    ptc_mux_t *e = ptc_mux_new(PTC_MUX_EDGE, NULL, 0);
    CHECK_NOT_NULL(e);
    ptc_request_head_t rq = req_head();
    uint32_t sid;
    bool end = row == E_HCL_NORESP || row == E_HCL_RESP || row == E_CLOSED;
    CHECK_OK(ptc_mux_open_stream(e, &rq, end, &sid));
    CHECK_EQ(sid, 1);
    raw_t r = {.len = 0};
    if (row == E_OPEN_RESP || row == E_HCL_RESP) {
        raw_response(&r, 1, false, 200);
    } else if (row == E_HCR || row == E_CLOSED) {
        raw_response(&r, 1, true, 200);
    }
    CHECK_OK(feed_raw(e, &r));
    clear_events();
    pull(e);
    (void)take_frames(e);
    *id = row == E_IDLE ? 2 : 1;
    return e;
}

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

/* ---- partial input ---- */

/* A text rendering of every event, to compare runs. */
static void render(ptc_mux_t *mux, char *out, size_t cap, size_t *used)
{
    ptc_mux_event_t ev;
    while (ptc_mux_next_event(mux, &ev)) {
        int n = snprintf(out + *used, cap - *used, "[%d %u %d %d %u %u %d len=%zu", ev.type,
                         ev.stream_id, ev.end_stream, ev.is_local, ev.code, ev.last_stream, ev.err,
                         ev.len);
        CHECK_GT(n, 0);
        *used += (size_t)n;
        for (size_t i = 0; i < ev.len; i++) {
            n = snprintf(out + *used, cap - *used, "%02x", ev.data[i]);
            *used += (size_t)n;
        }
        if (ev.type == PTC_MUX_EV_REQUEST) {
            n = snprintf(out + *used, cap - *used, " %.*s %.*s %zu", (int)ev.request.method.len,
                         (const char *)ev.request.method.ptr, (int)ev.request.host.len,
                         (const char *)ev.request.host.ptr, ev.request.header_cnt);
            *used += (size_t)n;
        }
        if (ev.type == PTC_MUX_EV_RESPONSE) {
            n = snprintf(out + *used, cap - *used, " %u %zu", ev.response.status,
                         ev.response.header_cnt);
            *used += (size_t)n;
        }
        CHECK_LT(*used + 2, cap);
        out[(*used)++] = ']';
        out[*used] = '\0';
    }
}

typedef ptc_mux_t *(*setup_fn)(void);

/* Feeds stream[0..len) in the chunks given by the cut points, rendering events and output. */
static void run_split(setup_fn setup, const uint8_t *stream, size_t len, const size_t *cuts,
                      size_t ncuts, char *evs, size_t evcap, uint8_t *out, size_t *outlen)
{
    ptc_mux_t *m = setup();
    size_t used = 0;
    size_t prev = 0;
    evs[0] = '\0';
    *outlen = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        CHECK_OK(ptc_mux_feed(m, stream + prev, end - prev, 0));
        render(m, evs, evcap, &used);
        *outlen += ptc_mux_take_output(m, out + *outlen, 65536 - *outlen);
        prev = end;
    }
    ptc_mux_free(m);
}

static ptc_mux_t *setup_conn(void)
{
    return ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
}

static ptc_mux_t *setup_edge(void)
{
    ptc_mux_t *e = ptc_mux_new(PTC_MUX_EDGE, NULL, 0);
    ptc_request_head_t rq = req_head();
    uint32_t id;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    }
    uint8_t sink[4096];
    while (ptc_mux_take_output(e, sink, sizeof(sink)) > 0) {
    }
    return e;
}

static void check_every_split(setup_fn setup, const uint8_t *stream, size_t len)
{
    static char ref[65536];
    static char got[65536];
    static uint8_t ref_out[65536];
    static uint8_t got_out[65536];
    size_t ref_len;
    size_t got_len;
    run_split(setup, stream, len, NULL, 0, ref, sizeof(ref), ref_out, &ref_len);
    CHECK_GT(strlen(ref), 0);
    for (size_t k = 1; k < len; k++) {
        run_split(setup, stream, len, &k, 1, got, sizeof(got), got_out, &got_len);
        CHECK_STREQ(got, ref);
        CHECK_EQ(got_len, ref_len);
        CHECK_MEMEQ(got_out, ref_out, ref_len);
    }
    /* One byte at a time. */
    static size_t cuts[8192];
    CHECK_LT(len, sizeof(cuts) / sizeof(cuts[0]));
    for (size_t k = 1; k < len; k++) {
        cuts[k - 1] = k;
    }
    run_split(setup, stream, len, cuts, len - 1, got, sizeof(got), got_out, &got_len);
    CHECK_STREQ(got, ref);
    CHECK_EQ(got_len, ref_len);
    CHECK_MEMEQ(got_out, ref_out, ref_len);
    ptc_test_diag("%zu bytes, %zu event bytes, %zu output bytes", len, strlen(ref), ref_len);
}

static void test_partial_input_every_split(void)
{
    /* Edge -> connector: a recorded exchange from a real edge mux, plus PING and WINDOW. */
    ptc_mux_t *e = ptc_mux_new(PTC_MUX_EDGE, NULL, 0);
    const char *doc = "{\"type\":\"welcome\"}";
    CHECK_OK(ptc_mux_send_control(e, (const uint8_t *)doc, strlen(doc)));
    ptc_request_head_t rq = req_head();
    uint32_t id;
    CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
    CHECK_EQ(ptc_mux_send_data(e, id, (const uint8_t *)"first", 5, false), 5);
    CHECK_OK(ptc_mux_ping(e, 0x1122334455667788ull));
    CHECK_OK(ptc_mux_open_stream(e, &rq, true, &id));
    CHECK_EQ(ptc_mux_send_data(e, 1, (const uint8_t *)"second", 6, true), 6);
    CHECK_OK(ptc_mux_reset(e, 2, PTC_WIRE_CANCEL));
    CHECK_OK(ptc_mux_goaway(e, PTC_WIRE_NO_ERROR, (const uint8_t *)"bye", 3));
    static uint8_t stream[8192];
    size_t len = ptc_mux_take_output(e, stream, sizeof(stream));
    raw_t r = {.len = 0};
    raw_u32(&r, PTC_FRAME_WINDOW, 0, 1000);
    raw_u32(&r, PTC_FRAME_WINDOW, 1, 1000);
    raw_frame(&r, 0x09, 0, 0, "ext", 3);
    memcpy(stream + len, r.b, r.len);
    len += r.len;
    r.len = 0;
    check_every_split(setup_conn, stream, len);
    ptc_mux_free(e);

    /* Connector -> edge. */
    ptc_mux_t *e2 = setup_edge();
    ptc_mux_t *c = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
    for (uint32_t s = 1; s <= 3; s++) {
        raw_request(&r, s, false);
    }
    CHECK_OK(feed_raw(c, &r));
    ptc_response_head_t rs = resp_head(200);
    CHECK_OK(ptc_mux_respond(c, 1, &rs, false));
    CHECK_EQ(ptc_mux_send_data(c, 1, (const uint8_t *)"body", 4, true), 4);
    ptc_response_head_t sw = resp_head(101);
    CHECK_OK(ptc_mux_respond(c, 2, &sw, false));
    CHECK_EQ(ptc_mux_send_data(c, 2, (const uint8_t *)"raw", 3, false), 3);
    CHECK_OK(ptc_mux_reset(c, 3, PTC_WIRE_BACKEND_TIMEOUT));
    CHECK_OK(ptc_mux_ping(c, 5));
    CHECK_OK(ptc_mux_goaway(c, PTC_WIRE_NO_ERROR, (const uint8_t *)"draining", 8));
    len = ptc_mux_take_output(c, stream, sizeof(stream));
    check_every_split(setup_edge, stream, len);
    ptc_mux_free(c);
    ptc_mux_free(e2);
}

/* ---- random round trip ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static uint64_t rnd_below(uint64_t n)
{
    return n == 0 ? 0 : rnd() % n;
}

static uint8_t body_byte(uint32_t id, int dir, uint64_t off)
{
    return (uint8_t)(id * 131u + (uint32_t)dir * 17u + (uint32_t)(off * 7u + (off >> 8)));
}

typedef struct rs {
    uint64_t total[2]; /* planned body length: [0] edge -> connector, [1] connector -> edge */
    uint64_t sent[2];
    uint64_t recv[2];
    uint64_t held[2]; /* delivered, stream credit not returned yet (receiving side) */
    bool end_sent[2];
    bool end_recv[2];
    bool opened_at_conn;
    bool responded;
    bool resp_recv;
    bool reset[2]; /* reset by that side */
    bool gone[2];  /* that side is done with the stream */
    bool refused;
} rs_t;

#define MAX_RS 200

/* Totals over all random runs, to show what they exercised. */
static struct {
    uint64_t streams, bytes, resets, refused, frames, stalls, goaways;
} g_tot;

typedef struct world {
    ptc_mux_t *m[2]; /* 0 = edge, 1 = connector */
    rs_t s[MAX_RS + 1];
    uint32_t nstreams;
} world_t;

static void handle_events(world_t *w, int side)
{
    ptc_mux_event_t ev;
    while (ptc_mux_next_event(w->m[side], &ev)) {
        rs_t *s = ev.stream_id >= 1 && ev.stream_id <= w->nstreams ? &w->s[ev.stream_id] : NULL;
        int dir = 1 - side; /* the direction of the data this side receives */
        switch (ev.type) {
        case PTC_MUX_EV_REQUEST:
            CHECK_EQ(side, 1);
            CHECK_NOT_NULL(s);
            CHECK(!s->opened_at_conn);
            s->opened_at_conn = true;
            CHECK_EQ(ev.end_stream, s->total[0] == 0);
            if (ev.end_stream) {
                s->end_recv[0] = true;
            }
            CHECK_OK(ptc_mux_set_user(w->m[1], ev.stream_id, s));
            break;
        case PTC_MUX_EV_RESPONSE:
            CHECK_EQ(side, 0);
            CHECK(!s->resp_recv);
            CHECK(ev.user == s);
            s->resp_recv = true;
            CHECK_EQ(ev.response.status, 200);
            if (ev.end_stream) {
                CHECK_EQ(s->total[1], 0);
                s->end_recv[1] = true;
            }
            break;
        case PTC_MUX_EV_DATA:
            CHECK_NOT_NULL(s);
            CHECK(ev.user == s);
            CHECK(!s->end_recv[dir]);
            CHECK_LE(s->recv[dir] + ev.len, s->total[dir]);
            for (size_t i = 0; i < ev.len; i++) {
                if (ev.data[i] != body_byte(ev.stream_id, dir, s->recv[dir] + i)) {
                    ptc_test_fail(__FILE__, __LINE__, "stream %u dir %d byte %" PRIu64 " differs",
                                  ev.stream_id, dir, s->recv[dir] + i);
                }
            }
            s->recv[dir] += ev.len;
            s->held[dir] += ev.len;
            /* Tunnel credit goes back as soon as the bytes are "buffered" (§7.3 rule 3). */
            CHECK_OK(ptc_mux_tunnel_consumed(w->m[side], ev.len));
            if (ev.end_stream) {
                CHECK_EQ(s->recv[dir], s->total[dir]);
                s->end_recv[dir] = true;
            }
            break;
        case PTC_MUX_EV_RESET:
            CHECK_NOT_NULL(s);
            /* Only resets we made ourselves (CANCEL) are expected. */
            CHECK(!ev.is_local);
            CHECK_EQ(ev.code, PTC_WIRE_CANCEL);
            CHECK(s->reset[1 - side]);
            s->gone[side] = true;
            break;
        case PTC_MUX_EV_REFUSED:
            CHECK_EQ(side, 0);
            CHECK_NOT_NULL(s);
            s->refused = true;
            s->gone[0] = true;
            break;
        case PTC_MUX_EV_WRITABLE:
        case PTC_MUX_EV_PING_ACK:
            break;
        case PTC_MUX_EV_GOAWAY:
            CHECK_EQ(ev.code, PTC_WIRE_NO_ERROR);
            CHECK(!ptc_mux_can_open(w->m[0]));
            break;
        case PTC_MUX_EV_CONTROL:
        case PTC_MUX_EV_ERROR:
            ptc_test_fail(__FILE__, __LINE__, "unexpected event %d", ev.type);
        }
    }
}

/* Moves up to n bytes of side's output to the other side. */
static void transfer(world_t *w, int side, size_t n)
{
    static uint8_t buf[1 << 18];
    if (n > sizeof(buf)) {
        n = sizeof(buf);
    }
    size_t got = ptc_mux_take_output(w->m[side], buf, n);
    if (got > 0) {
        int rc = ptc_mux_feed(w->m[1 - side], buf, got, 0);
        if (rc != 0) {
            ptc_test_fail(__FILE__, __LINE__, "feed: %s", ptc_proto_errname(rc));
        }
        handle_events(w, 1 - side);
    }
}

static bool side_done(const rs_t *s, int side)
{
    if (s->gone[side] || s->reset[side]) {
        return true;
    }
    /* Both halves ended, from this side's view. */
    return s->end_sent[side] && s->end_recv[1 - side];
}

static void try_send(world_t *w, uint32_t id, int side, uint64_t max)
{
    rs_t *s = &w->s[id];
    if (s->gone[side] || s->reset[side] || s->end_sent[side]) {
        return;
    }
    if (side == 1 && !s->opened_at_conn) {
        return;
    }
    if (side == 1 && !s->responded) {
        ptc_response_head_t rs = resp_head(200);
        bool end = s->total[1] == 0;
        CHECK_OK(ptc_mux_respond(w->m[1], id, &rs, end));
        s->responded = true;
        if (end) {
            s->end_sent[1] = true;
            return;
        }
    }
    if (side == 0 && s->total[0] == 0) {
        return; /* the REQUEST carried END_STREAM */
    }
    static uint8_t buf[1 << 18];
    uint64_t left = s->total[side] - s->sent[side];
    uint64_t n = left < max ? left : max;
    if (n > sizeof(buf)) {
        n = sizeof(buf);
    }
    for (uint64_t i = 0; i < n; i++) {
        buf[i] = body_byte(id, side, s->sent[side] + i);
    }
    bool end = n == left;
    size_t win = ptc_mux_send_window(w->m[side], id);
    ssize_t k = ptc_mux_send_data(w->m[side], id, buf, (size_t)n, end);
    CHECK_GE(k, 0);
    CHECK_LE(k, (ssize_t)n);
    CHECK_EQ((uint64_t)k, n < win ? n : win); /* exactly what the windows allow */
    g_tot.stalls += (uint64_t)k < n;
    s->sent[side] += (uint64_t)k;
    if (end && (uint64_t)k == n) {
        s->end_sent[side] = true;
    }
}

static void consume_some(world_t *w, uint32_t id, int side)
{
    rs_t *s = &w->s[id];
    int dir = 1 - side;
    if (s->held[dir] == 0) {
        return;
    }
    uint64_t n = 1 + rnd_below(s->held[dir]);
    int rc = ptc_mux_consumed(w->m[side], id, (size_t)n);
    CHECK_OK(rc);
    s->held[dir] -= n;
}

static void random_sequence(uint64_t seed)
{
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    world_t *w = calloc(1, sizeof(*w));
    ptc_mux_limits_t lim[2];
    uint64_t max_body = rnd_below(4) == 0 ? 200000 : 5000;
    for (int i = 0; i < 2; i++) {
        lim[i] = (ptc_mux_limits_t)PTC_MUX_LIMITS_DEFAULT;
        lim[i].max_frame_size = 1024 + (uint32_t)rnd_below(20000);
        lim[i].initial_stream_window = 1 + (uint32_t)rnd_below(rnd_below(2) ? 300000 : 3000);
        lim[i].initial_tunnel_window = 1024 + (uint32_t)rnd_below(rnd_below(2) ? 1000000 : 9000);
        lim[i].max_streams = 1 + (uint32_t)rnd_below(40);
        /* Keep the run short: bodies in proportion to the windows that carry them. */
        uint64_t cap = (uint64_t)lim[i].initial_stream_window * 20 + 1;
        max_body = max_body < cap ? max_body : cap;
        cap = (uint64_t)lim[i].initial_tunnel_window * 5;
        max_body = max_body < cap ? max_body : cap;
    }
    w->m[0] = ptc_mux_new(PTC_MUX_EDGE, &lim[0], 0);
    w->m[1] = ptc_mux_new(PTC_MUX_CONNECTOR, &lim[1], 0);
    CHECK_NOT_NULL(w->m[0]);
    CHECK_NOT_NULL(w->m[1]);
    CHECK_OK(ptc_mux_set_peer_limits(w->m[0], &lim[1]));
    CHECK_OK(ptc_mux_set_peer_limits(w->m[1], &lim[0]));
    int steps = 50 + (int)rnd_below(300);
    ptc_request_head_t rq = req_head();
    for (int step = 0; step < steps; step++) {
        uint64_t op = rnd_below(100);
        uint32_t id = w->nstreams > 0 ? 1 + (uint32_t)rnd_below(w->nstreams) : 0;
        int side = (int)rnd_below(2);
        if (op < 12) {
            if (w->nstreams < MAX_RS && ptc_mux_can_open(w->m[0])) {
                rs_t *s = &w->s[w->nstreams + 1];
                s->total[0] = rnd_below(3) == 0 ? 0 : rnd_below(max_body);
                s->total[1] = rnd_below(5) == 0 ? 0 : rnd_below(max_body);
                uint32_t nid;
                CHECK_OK(ptc_mux_open_stream(w->m[0], &rq, s->total[0] == 0, &nid));
                CHECK_EQ(nid, w->nstreams + 1);
                w->nstreams++;
                CHECK_OK(ptc_mux_set_user(w->m[0], nid, s));
                if (s->total[0] == 0) {
                    s->end_sent[0] = true;
                }
            }
        } else if (op < 45) {
            if (id != 0) {
                try_send(w, id, side, 1 + rnd_below(70000));
            }
        } else if (op < 75) {
            transfer(w, side, 1 + rnd_below(rnd_below(2) ? 100 : 100000));
        } else if (op < 93) {
            if (id != 0) {
                consume_some(w, id, side);
            }
        } else if (op < 95) {
            if (id != 0 && !side_done(&w->s[id], side) && (side == 0 || w->s[id].opened_at_conn)) {
                int rc = ptc_mux_reset(w->m[side], id, PTC_WIRE_CANCEL);
                /* A stream whose last events are still unread is closed already. */
                CHECK(rc == 0);
                w->s[id].reset[side] = true;
            }
        } else if (op < 97) {
            CHECK_OK(ptc_mux_ping(w->m[side], (uint64_t)step));
        } else if (op < 98) {
            /* Either side starts a graceful drain now and then (§9 rules 3-5). */
            if (rnd_below(4) == 0 && !ptc_mux_goaway_sent(w->m[side])) {
                CHECK_OK(ptc_mux_goaway(w->m[side], PTC_WIRE_NO_ERROR, NULL, 0));
                g_tot.goaways++;
            }
        } else {
            /* Drain both directions completely. */
            transfer(w, 0, 1 << 18);
            transfer(w, 1, 1 << 18);
        }
    }
    /* Finish: everyone sends and consumes everything until all streams are done. */
    for (int round = 0;; round++) {
        if (round > 100000) {
            ptc_test_fail(__FILE__, __LINE__, "seed %" PRIu64 ": no progress", seed);
        }
        bool all_done = true;
        for (uint32_t id = 1; id <= w->nstreams; id++) {
            rs_t *s = &w->s[id];
            for (int side = 0; side < 2; side++) {
                try_send(w, id, side, 1 << 18);
                while (s->held[1 - side] > 0) {
                    consume_some(w, id, side);
                }
            }
            /* A REQUEST the connector refused (or never saw before the edge reset it) leaves
             * nothing to do there. */
            bool conn_done = side_done(s, 1) || (!s->opened_at_conn && side_done(s, 0));
            if (!side_done(s, 0) || !conn_done) {
                all_done = false;
            }
        }
        size_t before = ptc_mux_output_pending(w->m[0]) + ptc_mux_output_pending(w->m[1]);
        transfer(w, 0, 1 << 18);
        transfer(w, 1, 1 << 18);
        if (all_done && before == 0) {
            break;
        }
    }
    g_tot.streams += w->nstreams;
    for (uint32_t id = 1; id <= w->nstreams; id++) {
        rs_t *s = &w->s[id];
        g_tot.bytes += s->recv[0] + s->recv[1];
        g_tot.resets += s->reset[0] || s->reset[1];
        g_tot.refused += s->refused;
        if (s->reset[0] || s->reset[1] || s->refused) {
            continue;
        }
        /* A stream nobody reset carried everything, in order, with both ends. */
        CHECK_EQ(s->recv[0], s->total[0]);
        CHECK_EQ(s->recv[1], s->total[1]);
        CHECK(s->end_recv[0]);
        CHECK(s->end_recv[1]);
        CHECK(s->resp_recv);
    }
    for (int i = 0; i < 2; i++) {
        ptc_mux_stats_t st;
        ptc_mux_stats(w->m[i], &st);
        CHECK_EQ(st.streams_open, 0);
        CHECK(!ptc_mux_is_closed(w->m[i]));
        g_tot.frames += st.frames_out;
        ptc_mux_free(w->m[i]);
    }
    free(w);
}

static void test_random_round_trips(void)
{
    uint64_t seed = (uint64_t)time(NULL);
    const char *env = getenv("PTC_MUX_SEED");
    if (env != NULL) {
        seed = strtoull(env, NULL, 10);
    }
    int n = 1000;
    ptc_test_diag("random round trips: seed %" PRIu64 " (set PTC_MUX_SEED to replay), %d runs",
                  seed, n);
    for (int i = 0; i < n; i++) {
        uint64_t s = seed * 1000 + (uint64_t)i;
        rng_state = s;
        random_sequence(s);
    }
    ptc_test_diag("%" PRIu64 " streams, %" PRIu64 " body bytes, %" PRIu64 " frames, %" PRIu64
                  " streams reset, %" PRIu64 " refused, %" PRIu64 " stalled sends, %" PRIu64
                  " GOAWAYs",
                  g_tot.streams, g_tot.bytes, g_tot.frames, g_tot.resets, g_tot.refused,
                  g_tot.stalls, g_tot.goaways);
}

/* ---- many streams ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_ten_thousand_streams(void)
{
    enum { N = 10000 };
    ptc_mux_t *e;
    ptc_mux_t *c;
    new_pair(&e, &c, NULL, NULL);
    ptc_request_head_t rq = req_head();
    static int users[N + 1];
    double t0 = now_s();
    for (uint32_t i = 1; i <= N; i++) {
        uint32_t id;
        CHECK_OK(ptc_mux_open_stream(e, &rq, false, &id));
        CHECK_EQ(id, i);
        CHECK_OK(ptc_mux_set_user(e, id, &users[i]));
    }
    double t1 = now_s();
    CHECK_OK(pump(e, c));
    size_t n = 0;
    ptc_mux_event_t ev;
    while (ptc_mux_next_event(c, &ev)) {
        CHECK_EQ(ev.type, PTC_MUX_EV_REQUEST);
        CHECK_OK(ptc_mux_set_user(c, ev.stream_id, &users[ev.stream_id]));
        n++;
    }
    CHECK_EQ(n, N);
    ptc_mux_stats_t st;
    ptc_mux_stats(c, &st);
    CHECK_EQ(st.streams_open, N);
    /* Lookups early and late in the table cost the same: time the first and the last 1000. */
    double t2 = now_s();
    for (int rep = 0; rep < 100; rep++) {
        for (uint32_t i = 1; i <= 1000; i++) {
            CHECK(ptc_mux_get_user(c, i) == &users[i]);
        }
    }
    double t3 = now_s();
    for (int rep = 0; rep < 100; rep++) {
        for (uint32_t i = N - 999; i <= N; i++) {
            CHECK(ptc_mux_get_user(c, i) == &users[i]);
        }
    }
    double t4 = now_s();
    /* Traffic on every stream, then close them all in random order. */
    ptc_response_head_t rs = resp_head(200);
    for (uint32_t i = 1; i <= N; i++) {
        CHECK_OK(ptc_mux_respond(c, i, &rs, false));
        CHECK_EQ(ptc_mux_send_data(c, i, (const uint8_t *)"x", 1, true), 1);
    }
    CHECK_OK(pump(e, c));
    n = 0;
    while (ptc_mux_next_event(e, &ev)) {
        CHECK(ev.user == &users[ev.stream_id]);
        if (ev.type == PTC_MUX_EV_DATA) {
            CHECK_OK(ptc_mux_tunnel_consumed(e, ev.len));
            n++;
        }
    }
    CHECK_EQ(n, N);
    rng_state = 12345;
    static uint32_t order[N];
    for (uint32_t i = 0; i < N; i++) {
        order[i] = i + 1;
    }
    for (uint32_t i = N - 1; i > 0; i--) {
        uint32_t j = (uint32_t)rnd_below(i + 1);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (uint32_t i = 0; i < N; i++) {
        CHECK_EQ(ptc_mux_send_data(e, order[i], NULL, 0, true), 0);
        CHECK_EQ(ptc_mux_stream_state(e, order[i]), PTC_MUX_STREAM_IDLE);
    }
    CHECK_OK(pump(e, c));
    while (ptc_mux_next_event(c, &ev)) {
    }
    ptc_mux_stats(c, &st);
    CHECK_EQ(st.streams_open, 0);
    ptc_mux_stats(e, &st);
    CHECK_EQ(st.streams_open, 0);
    CHECK_EQ(st.streams_total, N);
    /* Idle again: trimming gives back what the burst grew, and the tunnel goes on. */
    ptc_mux_stats(c, &st);
    size_t grown = st.heap_bytes;
    ptc_mux_trim(c);
    ptc_mux_trim(e);
    ptc_mux_stats(c, &st);
    CHECK_GT(grown, 256 * 1024);
    ptc_test_diag("mux heap after 10,000 streams: %zu bytes, trimmed: %zu", grown, st.heap_bytes);
    CHECK_LT(st.heap_bytes, 2048);
    uint32_t id;
    CHECK_OK(ptc_mux_open_stream(e, &rq, true, &id));
    size_t half = 0;
    const uint8_t *out = ptc_mux_output(e, &half);
    CHECK_GT(half, 20);
    half /= 2;
    CHECK_OK(ptc_mux_feed(c, out, half, 0));
    ptc_mux_output_consume(e, half);
    ptc_mux_trim(c); /* a partial frame stays */
    CHECK_OK(pump(e, c));
    CHECK(ptc_mux_next_event(c, &ev));
    CHECK_EQ(ev.type, PTC_MUX_EV_REQUEST);
    CHECK_EQ(ev.stream_id, id);
    CHECK(ev.end_stream);
    ptc_test_diag("open %d streams: %.1f ms; 100k lookups of the first 1000: %.2f ms, "
                  "of the last 1000: %.2f ms",
                  N, (t1 - t0) * 1e3, (t3 - t2) * 1e3, (t4 - t3) * 1e3);
    ptc_mux_free(e);
    ptc_mux_free(c);
}

/* ---- misc ---- */

static void test_names_and_output_api(void)
{
    CHECK_STREQ(ptc_mux_stream_state_name(PTC_MUX_STREAM_OPEN), "open");
    CHECK_STREQ(ptc_mux_stream_state_name(PTC_MUX_STREAM_HALF_CLOSED_LOCAL), "half_closed_local");
    CHECK_STREQ(ptc_mux_stream_state_name(PTC_MUX_STREAM_CLOSED), "closed");
    ptc_mux_t *m = ptc_mux_new(PTC_MUX_CONNECTOR, NULL, 0);
    /* Empty feeds, before any input and around an empty payload (found by fuzz_mux). */
    CHECK_OK(ptc_mux_feed(m, NULL, 0, 0));
    uint8_t empty_control[9] = {0, 0, 0, PTC_FRAME_CONTROL};
    CHECK_OK(ptc_mux_feed(m, empty_control, sizeof(empty_control), 0));
    CHECK_OK(ptc_mux_feed(m, NULL, 0, 0));
    ptc_mux_event_t ev;
    CHECK(ptc_mux_next_event(m, &ev));
    CHECK_EQ(ev.type, PTC_MUX_EV_CONTROL);
    CHECK_EQ(ev.len, 0);
    size_t len = 99;
    CHECK_NULL(ptc_mux_output(m, &len));
    CHECK_EQ(len, 0);
    CHECK_OK(ptc_mux_ping(m, 1));
    CHECK_OK(ptc_mux_send_control(m, (const uint8_t *)"{}", 2));
    uint8_t small[5];
    CHECK_EQ(ptc_mux_take_output(m, small, sizeof(small)), 5);
    CHECK_EQ(ptc_mux_output_pending(m), 17 + 11 - 5);
    uint8_t rest[64];
    CHECK_EQ(ptc_mux_take_output(m, rest, sizeof(rest)), 23);
    CHECK_EQ(rest[17 - 5 + 3], PTC_FRAME_CONTROL);
    CHECK_EQ(ptc_mux_pending_events(m), 0);
    ptc_mux_free(m);
    ptc_mux_free(NULL);
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
    PTC_TEST(test_frame_errors),
    PTC_TEST(test_window_stall_and_writable),
    PTC_TEST(test_tunnel_window_stall),
    PTC_TEST(test_peer_exceeds_windows),
    PTC_TEST(test_window_overflow),
    PTC_TEST(test_peer_limits_rebase),
    PTC_TEST(test_reset_drops_events),
    PTC_TEST(test_limits),
    PTC_TEST(test_refused_stream),
    PTC_TEST(test_goaway_from_connector),
    PTC_TEST(test_goaway_from_edge),
    PTC_TEST(test_tunnel_error_ends_streams),
    PTC_TEST(test_ping_and_liveness),
    PTC_TEST(test_ping_ack_priority_and_bound),
    PTC_TEST(test_partial_input_every_split),
    PTC_TEST(test_random_round_trips),
    PTC_TEST(test_ten_thousand_streams),
    PTC_TEST(test_names_and_output_api),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
