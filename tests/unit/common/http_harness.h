/* SPDX-License-Identifier: MIT */
/*
 * What the common/http parser tests share (http_test.c, http_smuggling_test.c): a driver
 * that feeds a request or response stream to the pull parser in pieces of any size, logs
 * every event, and checks that every split gives the same result as one feed; and the
 * checks for a refused request or response. Everything is static: each test program has its
 * own copy.
 */
#ifndef PTC_TESTS_UNIT_COMMON_HTTP_HARNESS_H
#define PTC_TESTS_UNIT_COMMON_HTTP_HARNESS_H

#include "common/http.h"
#include "tests/support/test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- driver ---- */

/*
 * What a run produced: a split-independent text log of the events (bodies are gathered per
 * message and logged with DONE), the error if any, and where an upgrade began.
 */
typedef struct run {
    char log[32768];
    size_t log_len;
    char body[65536];
    size_t body_len;
    int heads;
    int interims;
    int dones;
    int rc;             /* first negative return of feed/finish, else 0 */
    const char *reason; /* when the parser died */
    int status;
    size_t consumed;   /* bytes of the input consumed */
    bool upgraded;     /* an UPGRADE event was seen */
    size_t upgrade_at; /* input offset of the first byte of the new protocol */
} run_t;

static inline void logf_(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void logf_(run_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->log + r->log_len, sizeof(r->log) - r->log_len, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < sizeof(r->log) - r->log_len);
    r->log_len += (size_t)n;
}

static inline void log_slice(run_t *r, ptc_slice_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        uint8_t c = s.ptr[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            logf_(r, "%c", c);
        } else {
            logf_(r, "\\x%02x", c);
        }
    }
}

static inline void log_head(run_t *r, const char *what, const ptc_http_head_t *h)
{
    logf_(r, "%s ", what);
    if (h->is_request) {
        log_slice(r, h->method);
        logf_(r, " ");
        log_slice(r, h->target);
    } else {
        logf_(r, "%d ", h->status);
        log_slice(r, h->reason);
    }
    logf_(r, " 1.%d", h->minor_version);
    for (size_t i = 0; i < h->header_cnt; i++) {
        logf_(r, " [");
        log_slice(r, h->headers[i].name);
        logf_(r, "=");
        log_slice(r, h->headers[i].value);
        logf_(r, "]");
    }
    logf_(r, " body=%d cl=%llu ka=%d up=%d ex=%d conn=%u\n", (int)h->body,
          (unsigned long long)h->content_length, h->keep_alive, h->upgrade, h->expect_continue,
          h->conn);
}

typedef struct opts {
    ptc_http_kind_t kind;
    const ptc_http_limits_t *limits;
    const char *method; /* response parsers: the request method for every response */
    bool eof;           /* call finish() at the end */
} opts_t;

/*
 * Feeds `in` to a fresh parser in pieces of `piece` bytes (0: all at once) the way a
 * connection does: unconsumed bytes stay in a ptc_buf_t and new bytes are appended, so
 * slices from earlier events are invalid after each append.
 */
static inline void run_opts(const opts_t *o, const void *in, size_t len, size_t piece, run_t *r)
{
    memset(r, 0, sizeof(*r));
    ptc_http_parser_t *p = ptc_http_parser_new(o->kind, o->limits);
    if (o->method != NULL) {
        ptc_http_parser_set_request_method(p, ptc_slice_str(o->method));
    }
    ptc_buf_t b;
    ptc_buf_init(&b);
    const uint8_t *src = in;
    size_t off = 0;
    bool stop = false;
    while (!stop) {
        if (off < len) {
            size_t n = piece == 0 || piece > len - off ? len - off : piece;
            ptc_buf_append(&b, src + off, n);
            off += n;
        }
        for (int guard = 0;; guard++) {
            CHECK_LT(guard, 100000);
            ptc_http_event_t ev;
            /* (ptc_buf_data of a never-filled buffer would be NULL + 0) */
            const uint8_t *cur = b.len > 0 ? ptc_buf_data(&b) : (const uint8_t *)"";
            ssize_t n = ptc_http_parser_feed(p, cur, b.len, &ev);
            if (n < 0) {
                r->rc = (int)n;
                if (n != PTC_ESTATE) {
                    CHECK_EQ(ev.type, PTC_HTTP_EV_ERROR);
                    const ptc_http_error_t *e = ptc_http_parser_error(p);
                    CHECK_NOT_NULL(e);
                    CHECK_EQ(e->code, n);
                    r->reason = e->reason;
                    r->status = e->status;
                    /* Errors are sticky. */
                    ptc_http_event_t ev2;
                    CHECK_EQ(ptc_http_parser_feed(p, (const uint8_t *)"x", 1, &ev2), n);
                    CHECK_EQ(ev2.type, PTC_HTTP_EV_ERROR);
                }
                logf_(r, "ERROR %s\n", r->reason != NULL ? r->reason : "state");
                stop = true;
                break;
            }
            CHECK_LE(n, b.len);
            if (ev.type == PTC_HTTP_EV_BODY) {
                CHECK_GT(ev.body.len, 0);
                CHECK(ev.body.ptr >= cur);
                CHECK(ev.body.ptr + ev.body.len <= cur + n);
                CHECK_LE(r->body_len + ev.body.len, sizeof(r->body));
                memcpy(r->body + r->body_len, ev.body.ptr, ev.body.len);
                r->body_len += ev.body.len;
            }
            ptc_buf_consume(&b, (size_t)n);
            r->consumed += (size_t)n;
            if (ev.type == PTC_HTTP_EV_NONE) {
                CHECK_EQ(b.len, 0);
                break;
            }
            switch (ev.type) {
            case PTC_HTTP_EV_HEAD:
                r->heads++;
                CHECK(ev.head == ptc_http_parser_head(p));
                log_head(r, "HEAD", ev.head);
                break;
            case PTC_HTTP_EV_INTERIM:
                r->interims++;
                log_head(r, "INTERIM", ev.head);
                break;
            case PTC_HTTP_EV_DONE:
                r->dones++;
                logf_(r, "DONE %zu\n", r->body_len);
                if (o->method != NULL) {
                    ptc_http_parser_set_request_method(p, ptc_slice_str(o->method));
                }
                break;
            case PTC_HTTP_EV_UPGRADE:
                r->upgraded = true;
                r->upgrade_at = r->consumed;
                logf_(r, "UPGRADE\n");
                stop = true;
                break;
            case PTC_HTTP_EV_BODY:
            case PTC_HTTP_EV_NONE:
            case PTC_HTTP_EV_ERROR:
                break;
            }
            if (stop) {
                break;
            }
        }
        if (off == len) {
            break;
        }
    }
    if (!stop && o->eof) {
        ptc_http_event_t ev;
        int rc = ptc_http_parser_finish(p, &ev);
        if (rc < 0) {
            r->rc = rc;
            r->reason = ptc_http_parser_error(p)->reason;
            r->status = ptc_http_parser_error(p)->status;
            logf_(r, "ERROR %s\n", r->reason);
        } else if (ev.type == PTC_HTTP_EV_DONE) {
            r->dones++;
            logf_(r, "DONE %zu (eof)\n", r->body_len);
        } else {
            CHECK_EQ(ev.type, PTC_HTTP_EV_NONE);
            logf_(r, "EOF\n");
        }
    }
    ptc_buf_dispose(&b);
    ptc_http_parser_free(p);
}

static inline void run_req(const char *in, size_t piece, run_t *r)
{
    opts_t o = {.kind = PTC_HTTP_REQUEST};
    run_opts(&o, in, strlen(in), piece, r);
}

static inline void run_resp(const char *method, const char *in, bool eof, run_t *r)
{
    opts_t o = {.kind = PTC_HTTP_RESPONSE, .method = method, .eof = eof};
    run_opts(&o, in, strlen(in), 0, r);
}

/* Runs with every piece size in a set and checks the logs are identical; returns the
 * one-piece run in *r. */
static inline void run_all_splits(const opts_t *o, const void *in, size_t len, run_t *r)
{
    static const size_t pieces[] = {1, 2, 3, 5, 7, 13, 64};
    static run_t other;
    run_opts(o, in, len, 0, r);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        run_opts(o, in, len, pieces[i], &other);
        if (strcmp(other.log, r->log) != 0) {
            ptc_test_diag("piece %zu:\n%s\nwhole:\n%s", pieces[i], other.log, r->log);
        }
        CHECK_STREQ(other.log, r->log);
        CHECK_EQ(other.rc, r->rc);
        CHECK_EQ(other.body_len, r->body_len);
        CHECK_MEMEQ(other.body, r->body, r->body_len);
        CHECK_EQ(other.upgrade_at, r->upgrade_at);
    }
}

/* A request that must be refused: same code, reason and status however it is split. */
static inline void expect_req_error(const char *in, int code, const char *reason, int status)
{
    static run_t r;
    opts_t o = {.kind = PTC_HTTP_REQUEST};
    run_all_splits(&o, in, strlen(in), &r);
    if (r.reason == NULL || strcmp(r.reason, reason) != 0) {
        ptc_test_diag("input: %s\nlog: %s", in, r.log);
    }
    CHECK_EQ(r.rc, code);
    CHECK_STREQ(r.reason, reason);
    CHECK_EQ(r.status, status);
    CHECK_EQ(r.heads, 0);
}

/* Same, where the head is fine and the body is not. */
static inline void expect_req_body_error(const char *in, const char *reason)
{
    static run_t r;
    opts_t o = {.kind = PTC_HTTP_REQUEST};
    run_all_splits(&o, in, strlen(in), &r);
    if (r.reason == NULL || strcmp(r.reason, reason) != 0) {
        ptc_test_diag("input: %s\nlog: %s", in, r.log);
    }
    CHECK_EQ(r.rc, PTC_EHTTP);
    CHECK_STREQ(r.reason, reason);
    CHECK_EQ(r.status, 400);
    CHECK_EQ(r.heads, 1);
    CHECK_EQ(r.dones, 0);
}

static inline void expect_resp_error(const char *in, const char *reason)
{
    static run_t r;
    opts_t o = {.kind = PTC_HTTP_RESPONSE, .eof = true};
    run_all_splits(&o, in, strlen(in), &r);
    if (r.reason == NULL || strcmp(r.reason, reason) != 0) {
        ptc_test_diag("input: %s\nlog: %s", in, r.log);
    }
    CHECK_EQ(r.rc, PTC_EHTTP);
    CHECK_STREQ(r.reason, reason);
    CHECK_EQ(r.status, 502);
}

#define H11 "Host: example.com\r\n"

#endif
