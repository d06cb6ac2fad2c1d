/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the HTTP response parser (common/http), which reads what backends send to
 * the connector and the HTTP client.
 *
 * Input: byte 0 picks the limits (bits 0-1), whether the stream ends with EOF (bit 2) and
 * the request method the responses answer (bits 3-4: GET, HEAD, CONNECT, POST); byte 1 seeds
 * the piece sizes; the rest is the connection's byte stream. As for requests, the stream is
 * parsed in one piece and in random pieces and the transcripts must match, and each run
 * checks the invariants: legal event order (interim heads, then one final head, body, DONE),
 * no body where the rules forbid one, body bytes bounded by Content-Length and equal at DONE,
 * valid fields that the response writer accepts and that parse back the same, and errors
 * that always suggest 502.
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

static const char *const methods[4] = {"GET", "HEAD", "CONNECT", "POST"};

typedef struct rng {
    uint32_t s;
} rng_t;

static uint32_t rng_next(rng_t *r)
{
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

/* Writes the head with the response writer and parses it back under the same request. */
static void check_round_trip(const ptc_http_head_t *h, const char *method)
{
    static uint8_t buf[1 << 17];
    ssize_t n = ptc_http_format_response_head(buf, sizeof(buf), h->status, h->reason, h->headers,
                                              h->header_cnt);
    REQUIRE(n > 0);
    if (h->minor_version != 1) {
        return;
    }
    ptc_http_limits_t lim = {.max_head_bytes = sizeof(buf), .max_headers = h->header_cnt + 1};
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_RESPONSE, &lim);
    ptc_http_parser_set_request_method(p, ptc_slice_str(method));
    ptc_http_event_t ev;
    ssize_t m = ptc_http_parser_feed(p, buf, (size_t)n, &ev);
    REQUIRE(m == n);
    REQUIRE(ev.type == PTC_HTTP_EV_HEAD || ev.type == PTC_HTTP_EV_INTERIM);
    const ptc_http_head_t *g = ev.head;
    REQUIRE(g->status == h->status && same(g->reason, h->reason));
    REQUIRE(g->header_cnt == h->header_cnt);
    for (size_t i = 0; i < h->header_cnt; i++) {
        REQUIRE(same(g->headers[i].name, h->headers[i].name));
        REQUIRE(same(g->headers[i].value, h->headers[i].value));
    }
    REQUIRE(g->body == h->body && g->content_length == h->content_length);
    REQUIRE(g->upgrade == h->upgrade && g->keep_alive == h->keep_alive);
    ptc_http_parser_free(p);
}

static void check_head(const ptc_http_head_t *h, const ptc_http_limits_t *lim, const char *method)
{
    REQUIRE(!h->is_request);
    REQUIRE(h->minor_version == 0 || h->minor_version == 1);
    REQUIRE(h->status >= 100 && h->status <= 599);
    REQUIRE(ptc_http_is_field_value(h->reason));
    REQUIRE(h->header_cnt <= lim->max_headers);
    for (size_t i = 0; i < h->header_cnt; i++) {
        REQUIRE(ptc_http_is_token(h->headers[i].name));
        REQUIRE(ptc_http_is_field_value(h->headers[i].value));
        REQUIRE(no_edge_ows(h->headers[i].value));
    }
    REQUIRE(ptc_http_header_count(h->headers, h->header_cnt, "content-length") <= 1);
    bool has_te = ptc_http_header_find(h->headers, h->header_cnt, "transfer-encoding") != NULL;
    bool has_cl = ptc_http_header_find(h->headers, h->header_cnt, "content-length") != NULL;
    REQUIRE(!(has_te && has_cl));
    bool no_body = h->status / 100 == 1 || h->status == 204 || h->status == 304 ||
                   strcmp(method, "HEAD") == 0 ||
                   (strcmp(method, "CONNECT") == 0 && h->status / 100 == 2);
    REQUIRE(!no_body || h->body == PTC_HTTP_BODY_NONE);
    REQUIRE(h->body != PTC_HTTP_BODY_CHUNKED || has_te);
    REQUIRE(h->body != PTC_HTTP_BODY_LENGTH || (has_cl && h->content_length > 0));
    REQUIRE(h->body == PTC_HTTP_BODY_LENGTH || h->content_length == 0);
    REQUIRE(h->body != PTC_HTTP_BODY_UNTIL_CLOSE || !h->keep_alive);
    REQUIRE(h->upgrade ==
            (h->status == 101 || (strcmp(method, "CONNECT") == 0 && h->status / 100 == 2)));
    check_round_trip(h, method);
}

static void run(const uint8_t *data, size_t len, const ptc_http_limits_t *lim, const char *method,
                uint32_t seed, bool eof, ptc_buf_t *t)
{
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_RESPONSE, lim);
    ptc_http_parser_set_request_method(p, ptc_slice_str(method));
    ptc_buf_t pend;
    ptc_buf_init(&pend);
    rng_t rng = {seed | 1};
    size_t off = 0;
    const ptc_http_head_t *head = NULL;
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
                    REQUIRE(e->status == 502);
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
            case PTC_HTTP_EV_INTERIM:
            case PTC_HTTP_EV_HEAD:
                REQUIRE(head == NULL && !upgrade_next && n > 0);
                REQUIRE(ev.head == ptc_http_parser_head(p));
                check_head(ev.head, lim, method);
                REQUIRE((ev.type == PTC_HTTP_EV_INTERIM) ==
                        (ev.head->status / 100 == 1 && ev.head->status != 101));
                ptc_buf_append(t, ev.type == PTC_HTTP_EV_HEAD ? "H" : "I", 1);
                put_u64(t, (uint64_t)ev.head->status);
                put_slice(t, ev.head->reason);
                put_u64(t, (uint64_t)ev.head->minor_version);
                put_u64(t, ev.head->header_cnt);
                for (size_t i = 0; i < ev.head->header_cnt; i++) {
                    put_slice(t, ev.head->headers[i].name);
                    put_slice(t, ev.head->headers[i].value);
                }
                put_u64(t, ev.head->body);
                put_u64(t, ev.head->content_length);
                put_u64(t, ev.head->conn | (unsigned)ev.head->keep_alive << 8 |
                               (unsigned)ev.head->upgrade << 9);
                if (ev.type == PTC_HTTP_EV_HEAD) {
                    head = ev.head;
                    body = 0;
                }
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
                REQUIRE(head != NULL && head->body != PTC_HTTP_BODY_UNTIL_CLOSE);
                REQUIRE(head->body != PTC_HTTP_BODY_LENGTH || body == head->content_length);
                REQUIRE(head->body != PTC_HTTP_BODY_NONE || body == 0);
                upgrade_next = head->upgrade;
                head = NULL;
                ptc_buf_append(t, "D", 1);
                put_u64(t, body);
                /* The connection's next request uses the same method. */
                ptc_http_parser_set_request_method(p, ptc_slice_str(method));
                break;
            case PTC_HTTP_EV_UPGRADE:
                REQUIRE(upgrade_next && n == 0);
                ptc_buf_append(t, "U", 1);
                put_u64(t, off - pend.len);
                stop = true;
                break;
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
            REQUIRE(ptc_http_parser_error(p)->status == 502);
            ptc_buf_append(t, "e", 1);
        } else {
            REQUIRE(ev.type == PTC_HTTP_EV_NONE || ev.type == PTC_HTTP_EV_DONE);
            REQUIRE(ev.type == PTC_HTTP_EV_NONE || head == NULL ||
                    head->body == PTC_HTTP_BODY_UNTIL_CLOSE);
            ptc_buf_append(t, ev.type == PTC_HTTP_EV_DONE ? "d" : "n", 1);
            ptc_http_event_t ev2;
            REQUIRE(ptc_http_parser_feed(p, (const uint8_t *)"x", 1, &ev2) == PTC_ESTATE);
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
    const char *method = methods[(data[0] >> 3) & 3];
    uint32_t seed = (uint32_t)data[1] * 2654435761u + 1;
    ptc_buf_t whole;
    ptc_buf_t split;
    ptc_buf_init(&whole);
    ptc_buf_init(&split);
    run(data + 2, size - 2, lim, method, 0, eof, &whole);
    run(data + 2, size - 2, lim, method, seed, eof, &split);
    if (whole.len != split.len || memcmp(buf_bytes(&whole), buf_bytes(&split), whole.len)) {
        fprintf(stderr, "transcripts differ between one feed and split feeds\n");
        abort();
    }
    ptc_buf_dispose(&whole);
    ptc_buf_dispose(&split);
    return 0;
}
