/* SPDX-License-Identifier: MIT */
/*
 * What the proto/mux unit tests share (mux_test.c, mux_flow_test.c, mux_stress_test.c): heads
 * to send, frames built by hand (so that invalid ones can be made too), the decoded output
 * and event log of a mux, a pair of muxes wired back to back, and an edge mux with a stream
 * in a chosen state. Everything is static: each test program has its own copy.
 */
#ifndef PTC_TESTS_UNIT_PROTO_MUX_HARNESS_H
#define PTC_TESTS_UNIT_PROTO_MUX_HARNESS_H

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

static __attribute__((unused)) const ptc_proto_field_t req_fields[] = {
    {{(const uint8_t *)"host", 4}, {(const uint8_t *)"app.internal", 12}},
    {{(const uint8_t *)"accept", 6}, {(const uint8_t *)"text/html", 9}},
};

static inline ptc_request_head_t req_head(void)
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

static __attribute__((unused)) const ptc_proto_field_t resp_fields[] = {
    {{(const uint8_t *)"content-type", 12}, {(const uint8_t *)"text/plain", 10}},
};

static inline ptc_response_head_t resp_head(uint16_t status)
{
    ptc_response_head_t h = {.status = status, .headers = resp_fields, .header_cnt = 1};
    return h;
}

/* ---- raw frames (built by hand so that invalid ones can be made too) ---- */

typedef struct raw {
    uint8_t b[1 << 17];
    size_t len;
} raw_t;

static inline void raw_frame(raw_t *r, uint8_t type, uint8_t flags, uint32_t id,
                             const void *payload, size_t len)
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

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void raw_u32(raw_t *r, uint8_t type, uint32_t id, uint32_t v)
{
    uint8_t pl[4];
    put32(pl, v);
    raw_frame(r, type, 0, id, pl, 4);
}

static inline void raw_goaway(raw_t *r, uint32_t last, uint32_t code, const char *debug)
{
    uint8_t pl[8 + 64];
    size_t dl = debug != NULL ? strlen(debug) : 0;
    put32(pl, last);
    put32(pl + 4, code);
    memcpy(pl + 8, debug != NULL ? debug : "", dl);
    raw_frame(r, PTC_FRAME_GOAWAY, 0, 0, pl, 8 + dl);
}

static inline void raw_request(raw_t *r, uint32_t id, bool end)
{
    ptc_request_head_t h = req_head();
    uint8_t blk[512];
    ssize_t n = ptc_hblock_encode_request(&h, blk, sizeof(blk));
    CHECK_GT(n, 0);
    raw_frame(r, PTC_FRAME_REQUEST, end ? PTC_FLAG_END_STREAM : 0, id, blk, (size_t)n);
}

static inline void raw_response(raw_t *r, uint32_t id, bool end, uint16_t status)
{
    ptc_response_head_t h = resp_head(status);
    uint8_t blk[512];
    ssize_t n = ptc_hblock_encode_response(&h, blk, sizeof(blk));
    CHECK_GT(n, 0);
    raw_frame(r, PTC_FRAME_RESPONSE, end ? PTC_FLAG_END_STREAM : 0, id, blk, (size_t)n);
}

static inline int feed_raw(ptc_mux_t *mux, raw_t *r)
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

static __attribute__((unused)) outlist_t g_out;

/* Takes all pending output of mux and decodes it into g_out. */
static inline outlist_t *take_frames(ptc_mux_t *mux)
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

static inline size_t count_type(const outlist_t *o, uint8_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < o->cnt; i++) {
        n += o->f[i].hdr.type == type;
    }
    return n;
}

static inline const oframe_t *find_type(const outlist_t *o, uint8_t type)
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

static __attribute__((unused)) evlog_t g_ev;

/* Pulls every event of mux into g_ev (appending); returns the number pulled. */
static inline size_t pull(ptc_mux_t *mux)
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

static inline void clear_events(void)
{
    g_ev.cnt = 0;
}

static inline const rec_t *last_event(void)
{
    CHECK_GT(g_ev.cnt, 0);
    return &g_ev.r[g_ev.cnt - 1];
}

static inline size_t count_events(ptc_mux_event_type_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < g_ev.cnt; i++) {
        n += g_ev.r[i].type == type;
    }
    return n;
}

/* ---- a pair of muxes wired back to back ---- */

/* Moves all output of a into b and back until both are quiet. Events stay queued. */
static inline int pump(ptc_mux_t *edge, ptc_mux_t *conn)
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

static inline void new_pair(ptc_mux_t **edge, ptc_mux_t **conn, const ptc_mux_limits_t *el,
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

enum { E_IDLE, E_OPEN_NORESP, E_OPEN_RESP, E_HCL_NORESP, E_HCL_RESP, E_HCR, E_CLOSED, E_ROWS };

/* An edge mux with stream 1 in the row's state; returns the id to send frames on. */
static inline ptc_mux_t *edge_in_state(int row, uint32_t *id)
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

#endif
