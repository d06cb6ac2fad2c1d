/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the HTTP request parser (common/http), the edge's first contact with
 * hostile input.
 *
 * Input: byte 0 picks the limits and whether the stream ends with EOF, byte 1 seeds the
 * sizes of the pieces the rest is fed in, the rest is the byte stream of one connection.
 * The stream is parsed twice, in one piece and in random-sized pieces appended to a pending
 * buffer the way a connection reads, and the two event transcripts must be identical. Each
 * run checks the invariants: consumption never exceeds the input, body slices lie inside it,
 * events come in a legal order, body bytes never exceed Content-Length and match it at DONE,
 * every head holds only valid tokens and field values (so the writers accept it, and what
 * they write parses back to the same head), errors carry a known code, reason and status.
 */
#include "common/http.h"
#include "tests/fuzz/fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct rng {
    uint32_t s;
} rng_t;

static uint32_t rng_next(rng_t *r)
{
    /* xorshift32: the split only has to be reproducible from the input. */
    uint32_t x = r->s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    r->s = x;
    return x;
}

/* ptc_buf_data() of a buffer that never held anything would be NULL + 0. */
static const uint8_t *buf_bytes(const ptc_buf_t *b)
{
    static const uint8_t empty[1];
    return b->len > 0 ? ptc_buf_data(b) : empty;
}

static void put_u64(ptc_buf_t *t, uint64_t v)
{
    ptc_buf_append(t, &v, sizeof(v));
}

static void put_slice(ptc_buf_t *t, ptc_slice_t s)
{
    put_u64(t, s.len);
    if (s.len > 0) {
        ptc_buf_append(t, s.ptr, s.len);
    }
}

static bool same(ptc_slice_t a, ptc_slice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool no_edge_ows(ptc_slice_t s)
{
    return s.len == 0 || (s.ptr[0] != ' ' && s.ptr[0] != '\t' && s.ptr[s.len - 1] != ' ' &&
                          s.ptr[s.len - 1] != '\t');
}

/* Writes the head with the request writer and parses it back: the same head must come out. */
static void check_round_trip(const ptc_http_head_t *h)
{
    static uint8_t buf[1 << 17];
    ssize_t n = ptc_http_format_request_head(buf, sizeof(buf), h->method, h->target, h->headers,
                                             h->header_cnt);
    REQUIRE(n > 0);
    if (h->minor_version != 1) {
        return; /* written as HTTP/1.1, which has other rules (Host, keep-alive) */
    }
    ptc_http_limits_t lim = {.max_head_bytes = sizeof(buf), .max_headers = h->header_cnt + 1};
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_REQUEST, &lim);
    ptc_http_event_t ev;
    ssize_t m = ptc_http_parser_feed(p, buf, (size_t)n, &ev);
    REQUIRE(m == n);
    REQUIRE(ev.type == PTC_HTTP_EV_HEAD);
    const ptc_http_head_t *g = ev.head;
    REQUIRE(same(g->method, h->method) && same(g->target, h->target));
    REQUIRE(g->header_cnt == h->header_cnt);
    for (size_t i = 0; i < h->header_cnt; i++) {
        REQUIRE(same(g->headers[i].name, h->headers[i].name));
        REQUIRE(same(g->headers[i].value, h->headers[i].value));
    }
    REQUIRE(g->body == h->body && g->content_length == h->content_length);
    REQUIRE(g->upgrade == h->upgrade && g->keep_alive == h->keep_alive);
    ptc_http_parser_free(p);
}

static void check_head(const ptc_http_head_t *h, const ptc_http_limits_t *lim)
{
    REQUIRE(h->is_request);
    REQUIRE(h->minor_version == 0 || h->minor_version == 1);
    REQUIRE(ptc_http_is_token(h->method));
    REQUIRE(h->target.len > 0 && h->target.len <= lim->max_url_len);
    for (size_t i = 0; i < h->target.len; i++) {
        REQUIRE(h->target.ptr[i] > 0x20 && h->target.ptr[i] < 0x7f);
    }
    REQUIRE(h->header_cnt <= lim->max_headers);
    for (size_t i = 0; i < h->header_cnt; i++) {
        REQUIRE(ptc_http_is_token(h->headers[i].name));
        REQUIRE(ptc_http_is_field_value(h->headers[i].value));
        REQUIRE(no_edge_ows(h->headers[i].value));
    }
    REQUIRE(ptc_http_header_count(h->headers, h->header_cnt, "content-length") <= 1);
    REQUIRE(ptc_http_header_count(h->headers, h->header_cnt, "host") <= 1);
    bool has_te = ptc_http_header_find(h->headers, h->header_cnt, "transfer-encoding") != NULL;
    bool has_cl = ptc_http_header_find(h->headers, h->header_cnt, "content-length") != NULL;
    REQUIRE(!(has_te && has_cl));
    REQUIRE(h->body != PTC_HTTP_BODY_UNTIL_CLOSE);
    REQUIRE(h->body != PTC_HTTP_BODY_CHUNKED || has_te);
    REQUIRE(h->body != PTC_HTTP_BODY_LENGTH || (has_cl && h->content_length > 0));
    REQUIRE(h->body == PTC_HTTP_BODY_LENGTH || h->content_length == 0);
    REQUIRE(h->minor_version == 0 || h->host.ptr != NULL);
    check_round_trip(h);
}

/*
 * Feeds the stream in pieces (piece sizes from `seed`; seed 0 means one piece) and records a
 * transcript that does not depend on the split.
 */
static void run(const uint8_t *data, size_t len, const ptc_http_limits_t *lim, uint32_t seed,
                bool eof, ptc_buf_t *t)
{
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_REQUEST, lim);
    ptc_buf_t pend;
    ptc_buf_init(&pend);
    rng_t rng = {seed | 1};
    size_t off = 0;
    const ptc_http_head_t *head = NULL; /* between HEAD and DONE */
    uint64_t body = 0;
    bool upgrade_next = false;
    bool stop = false;
    while (!stop) {
        if (off < len) {
            size_t n = len - off;
            if (seed != 0) {
                uint32_t r = rng_next(&rng);
                size_t cap = (r & 0x300) == 0 ? 4096 : (r & 0x300) == 0x100 ? 64 : 7;
                size_t want = 1 + (r >> 16) % cap;
                n = want < n ? want : n;
            }
            ptc_buf_append(&pend, data + off, n);
            off += n;
        }
        for (int guard = 0;; guard++) {
            REQUIRE(guard < 1000000);
            const uint8_t *in = buf_bytes(&pend);
            ptc_http_event_t ev;
            ssize_t n = ptc_http_parser_feed(p, in, pend.len, &ev);
            if (n < 0) {
                if (n == PTC_ESTATE) {
                    REQUIRE(pend.len > 0 && head == NULL && !upgrade_next);
                    ptc_buf_append(t, "S", 1);
                } else {
                    const ptc_http_error_t *e = ptc_http_parser_error(p);
                    REQUIRE(ev.type == PTC_HTTP_EV_ERROR);
                    REQUIRE(e != NULL && e->code == n && e->reason != NULL);
                    REQUIRE(n == PTC_EHTTP || n == PTC_ELIMIT);
                    REQUIRE(e->status == 400 || e->status == 414 || e->status == 431 ||
                            e->status == 501 || e->status == 505);
                    ptc_http_event_t ev2;
                    REQUIRE(ptc_http_parser_feed(p, in, pend.len, &ev2) == n);
                    ptc_buf_append(t, "E", 1);
                    put_u64(t, (uint64_t)-n);
                    ptc_buf_append(t, e->reason, strlen(e->reason) + 1);
                }
                stop = true;
                break;
            }
            REQUIRE((size_t)n <= pend.len);
            switch (ev.type) {
            case PTC_HTTP_EV_NONE:
                REQUIRE((size_t)n == pend.len);
                break;
            case PTC_HTTP_EV_HEAD:
                REQUIRE(head == NULL && !upgrade_next && n > 0);
                head = ev.head;
                REQUIRE(head == ptc_http_parser_head(p));
                check_head(head, lim);
                body = 0;
                ptc_buf_append(t, "H", 1);
                put_slice(t, head->method);
                put_slice(t, head->target);
                put_u64(t, (uint64_t)head->minor_version);
                put_u64(t, head->header_cnt);
                for (size_t i = 0; i < head->header_cnt; i++) {
                    put_slice(t, head->headers[i].name);
                    put_slice(t, head->headers[i].value);
                }
                put_u64(t, head->body);
                put_u64(t, head->content_length);
                put_u64(t, head->conn | (unsigned)head->keep_alive << 8 |
                               (unsigned)head->upgrade << 9 |
                               (unsigned)head->expect_continue << 10);
                break;
            case PTC_HTTP_EV_BODY:
                REQUIRE(head != NULL && head->body != PTC_HTTP_BODY_NONE);
                REQUIRE(ev.body.len > 0 && ev.body.ptr >= in &&
                        ev.body.ptr + ev.body.len <= in + n);
                body += ev.body.len;
                REQUIRE(head->body != PTC_HTTP_BODY_LENGTH || body <= head->content_length);
                ptc_buf_append(t, ev.body.ptr, ev.body.len);
                break;
            case PTC_HTTP_EV_DONE:
                REQUIRE(head != NULL);
                REQUIRE(head->body != PTC_HTTP_BODY_LENGTH || body == head->content_length);
                REQUIRE(head->body != PTC_HTTP_BODY_NONE || body == 0);
                upgrade_next = head->upgrade;
                head = NULL;
                ptc_buf_append(t, "D", 1);
                put_u64(t, body);
                break;
            case PTC_HTTP_EV_UPGRADE:
                REQUIRE(upgrade_next && n == 0);
                ptc_buf_append(t, "U", 1);
                put_u64(t, off - pend.len);
                stop = true;
                break;
            case PTC_HTTP_EV_INTERIM:
            case PTC_HTTP_EV_ERROR:
                REQUIRE(!"unexpected event");
            }
            ptc_buf_consume(&pend, (size_t)n);
            if (ev.type == PTC_HTTP_EV_NONE || stop) {
                break;
            }
        }
        if (off == len) {
            break;
        }
    }
    if (!stop && eof) {
        ptc_http_event_t ev;
        int r = ptc_http_parser_finish(p, &ev);
        if (r < 0) {
            REQUIRE(r == PTC_EHTTP && ev.type == PTC_HTTP_EV_ERROR);
            ptc_buf_append(t, "e", 1);
        } else {
            REQUIRE(ev.type == PTC_HTTP_EV_NONE || ev.type == PTC_HTTP_EV_DONE);
            REQUIRE(ev.type == PTC_HTTP_EV_NONE || head == NULL);
            ptc_buf_append(t, ev.type == PTC_HTTP_EV_DONE ? "d" : "n", 1);
        }
    }
    ptc_buf_dispose(&pend);
    ptc_http_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    static const ptc_http_limits_t limits[4] = {
        {PTC_HTTP_DEFAULT_MAX_HEAD_BYTES, PTC_HTTP_DEFAULT_MAX_HEADERS,
         PTC_HTTP_DEFAULT_MAX_URL_LEN},
        {256, 8, 64},
        {64, 3, 16},
        {1024, 100, 1000},
    };
    const ptc_http_limits_t *lim = &limits[data[0] & 3];
    bool eof = (data[0] & 4) != 0;
    uint32_t seed = (uint32_t)data[1] * 2654435761u + 1;
    ptc_buf_t whole;
    ptc_buf_t split;
    ptc_buf_init(&whole);
    ptc_buf_init(&split);
    run(data + 2, size - 2, lim, 0, eof, &whole);
    run(data + 2, size - 2, lim, seed, eof, &split);
    if (whole.len != split.len || memcmp(buf_bytes(&whole), buf_bytes(&split), whole.len)) {
        fprintf(stderr, "transcripts differ between one feed and split feeds\n");
        abort();
    }
    ptc_buf_dispose(&whole);
    ptc_buf_dispose(&split);
    return 0;
}
