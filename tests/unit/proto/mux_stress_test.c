/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of proto/mux.h, part 3: input split at every byte, a seeded random round trip
 * between an edge mux and a connector mux wired back to back, 10,000 concurrent streams (and
 * trimming after them), and the output API.
 */
#include "tests/unit/proto/mux_harness.h"

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
    PTC_TEST(test_partial_input_every_split),
    PTC_TEST(test_random_round_trips),
    PTC_TEST(test_ten_thousand_streams),
    PTC_TEST(test_names_and_output_api),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
