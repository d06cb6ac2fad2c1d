/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/http: the pull parser (requests and responses, pipelining, keep-alive,
 * chunked bodies, upgrades, interim responses), every request-smuggling and limit case with
 * its reason and suggested status, split-independence (byte-by-byte feeding gives the same
 * result as one feed), the header helpers and the writers.
 */
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

static void logf_(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_(run_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->log + r->log_len, sizeof(r->log) - r->log_len, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < sizeof(r->log) - r->log_len);
    r->log_len += (size_t)n;
}

static void log_slice(run_t *r, ptc_slice_t s)
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

static void log_head(run_t *r, const char *what, const ptc_http_head_t *h)
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
static void run_opts(const opts_t *o, const void *in, size_t len, size_t piece, run_t *r)
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

static void run_req(const char *in, size_t piece, run_t *r)
{
    opts_t o = {.kind = PTC_HTTP_REQUEST};
    run_opts(&o, in, strlen(in), piece, r);
}

static void run_resp(const char *method, const char *in, bool eof, run_t *r)
{
    opts_t o = {.kind = PTC_HTTP_RESPONSE, .method = method, .eof = eof};
    run_opts(&o, in, strlen(in), 0, r);
}

/* Runs with every piece size in a set and checks the logs are identical; returns the
 * one-piece run in *r. */
static void run_all_splits(const opts_t *o, const void *in, size_t len, run_t *r)
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
static void expect_req_error(const char *in, int code, const char *reason, int status)
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
static void expect_req_body_error(const char *in, const char *reason)
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

static void expect_resp_error(const char *in, const char *reason)
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

/* ---- good requests ---- */

static void test_simple_get(void)
{
    static const char in[] = "GET /leave?x=1 HTTP/1.1\r\n"
                             "Host: hr.example.com\r\n"
                             "User-Agent:  curl/8 \t\r\n"
                             "Accept: */*\r\n"
                             "\r\n";
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_REQUEST, NULL);
    ptc_http_event_t ev;
    uint8_t data[sizeof(in)];
    memcpy(data, in, sizeof(in));
    ssize_t n = ptc_http_parser_feed(p, data, sizeof(in) - 1, &ev);
    CHECK_EQ(n, sizeof(in) - 1);
    CHECK_EQ(ev.type, PTC_HTTP_EV_HEAD);
    /* The head is a copy: it survives the input buffer being overwritten. */
    memset(data, 'Z', sizeof(data));
    const ptc_http_head_t *h = ev.head;
    CHECK(h->is_request);
    CHECK(ptc_slice_eq(h->method, "GET"));
    CHECK(ptc_slice_eq(h->target, "/leave?x=1"));
    CHECK(ptc_slice_eq(h->host, "hr.example.com"));
    CHECK_EQ(h->minor_version, 1);
    CHECK_EQ(h->header_cnt, 3);
    CHECK(ptc_slice_eq(h->headers[1].name, "User-Agent"));
    CHECK(ptc_slice_eq(h->headers[1].value, "curl/8")); /* OWS trimmed both sides */
    CHECK_EQ(h->body, PTC_HTTP_BODY_NONE);
    CHECK(h->keep_alive);
    CHECK(!h->upgrade);
    CHECK(!h->expect_continue);
    CHECK(ptc_slice_eq(h->headers[2].value, "*/*"));
    n = ptc_http_parser_feed(p, data + sizeof(in) - 1, 0, &ev);
    CHECK_EQ(n, 0);
    CHECK_EQ(ev.type, PTC_HTTP_EV_DONE);
    n = ptc_http_parser_feed(p, NULL, 0, &ev);
    CHECK_EQ(n, 0);
    CHECK_EQ(ev.type, PTC_HTTP_EV_NONE);
    /* Still readable after DONE, until the next message starts. */
    CHECK(ptc_slice_eq(ptc_http_parser_head(p)->target, "/leave?x=1"));
    CHECK_NULL(ptc_http_parser_error(p));
    ptc_http_parser_free(p);
}

static void test_body_is_a_slice_of_the_input(void)
{
    static const char in[] = "POST /f HTTP/1.1\r\n" H11 "Content-Length: 11\r\n\r\nhello world";
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_REQUEST, NULL);
    ptc_http_event_t ev;
    const uint8_t *data = (const uint8_t *)in;
    size_t len = sizeof(in) - 1;
    ssize_t n = ptc_http_parser_feed(p, data, len, &ev);
    CHECK_EQ(ev.type, PTC_HTTP_EV_HEAD);
    CHECK_EQ(ev.head->body, PTC_HTTP_BODY_LENGTH);
    CHECK_UEQ(ev.head->content_length, 11);
    CHECK_EQ(n, len - 11);
    size_t off = (size_t)n;
    n = ptc_http_parser_feed(p, data + off, len - off, &ev);
    CHECK_EQ(ev.type, PTC_HTTP_EV_BODY);
    CHECK_EQ(n, 11);
    CHECK(ev.body.ptr == data + off); /* no copy */
    CHECK_EQ(ev.body.len, 11);
    n = ptc_http_parser_feed(p, data + len, 0, &ev);
    CHECK_EQ(n, 0);
    CHECK_EQ(ev.type, PTC_HTTP_EV_DONE);
    ptc_http_parser_free(p);
}

static void test_pipelined_requests(void)
{
    static const char in[] = "GET /a HTTP/1.1\r\n" H11 "\r\n"
                             "POST /b HTTP/1.1\r\n" H11 "Content-Length: 5\r\n\r\nhello"
                             "POST /c HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\n\r\n"
                             "GET /d HTTP/1.1\r\n" H11 "Connection: close\r\n\r\n";
    static run_t r;
    opts_t o = {.kind = PTC_HTTP_REQUEST, .eof = true};
    run_all_splits(&o, in, sizeof(in) - 1, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.heads, 4);
    CHECK_EQ(r.dones, 4);
    CHECK_EQ(r.consumed, sizeof(in) - 1);
    CHECK_EQ(r.body_len, 8);
    CHECK_MEMEQ(r.body, "helloabc", 8);
    CHECK_CONTAINS(r.log, "HEAD GET /a 1.1 [Host=example.com] body=0 cl=0 ka=1");
    CHECK_CONTAINS(r.log, "HEAD POST /b 1.1 [Host=example.com] [Content-Length=5] body=1 cl=5");
    CHECK_CONTAINS(r.log, "HEAD POST /c");
    CHECK_CONTAINS(r.log, "body=2");
    CHECK_CONTAINS(r.log, "HEAD GET /d 1.1 [Host=example.com] [Connection=close] body=0 cl=0 "
                          "ka=0 up=0 ex=0 conn=1");
}

static void test_keep_alive_rules(void)
{
    static run_t r;
    /* HTTP/1.0 closes by default: the request after it is refused. */
    run_req("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n", 0, &r);
    CHECK_EQ(r.heads, 1);
    CHECK_EQ(r.dones, 1);
    CHECK_CONTAINS(r.log, "ka=0");
    CHECK_EQ(r.rc, PTC_ESTATE);
    /* HTTP/1.0 with keep-alive goes on. */
    run_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n", 0, &r);
    CHECK_EQ(r.heads, 2);
    CHECK_CONTAINS(r.log, "ka=1 up=0 ex=0 conn=2");
    CHECK_EQ(r.dones, 2);
    CHECK_EQ(r.rc, 0); /* draining with nothing left after the last message is fine */
    /* HTTP/1.1 with a close token among others. */
    run_req("GET / HTTP/1.1\r\n" H11 "Connection: foo, CLOSE\r\n\r\n", 0, &r);
    CHECK_CONTAINS(r.log, "ka=0 up=0 ex=0 conn=1");
    CHECK_EQ(r.rc, 0);
}

static void test_chunked_with_extensions_and_trailers(void)
{
    static const char in[] = "POST /up HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n"
                             "5;name=value\r\nhello\r\n"
                             "6;a;b=\"q \t x\"\r\n world\r\n"
                             "A;ext\r\n0123456789\r\n"
                             "000\r\n"
                             "Checksum: abc\r\n"
                             "X-Trailer: 1\r\n"
                             "\r\n";
    static run_t r;
    opts_t o = {.kind = PTC_HTTP_REQUEST};
    run_all_splits(&o, in, sizeof(in) - 1, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.dones, 1);
    CHECK_EQ(r.body_len, 21);
    CHECK_MEMEQ(r.body, "hello world0123456789", 21);
    CHECK_EQ(r.consumed, sizeof(in) - 1);
    /* Trailers are not added to the head. */
    CHECK_CONTAINS(r.log, "[Transfer-Encoding=chunked] body=2 cl=0");
    CHECK(strstr(r.log, "Checksum") == NULL);
}

static void test_expect_100_continue(void)
{
    static run_t r;
    run_req("PUT /x HTTP/1.1\r\n" H11 "Expect: 100-Continue\r\nContent-Length: 2\r\n\r\nok", 0, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.log, "ex=1");
    run_req("PUT /x HTTP/1.1\r\n" H11 "Expect: something\r\n\r\n", 0, &r);
    CHECK_CONTAINS(r.log, "ex=0");
}

static void test_upgrade_with_trailing_bytes(void)
{
    static const char head[] = "GET /chat HTTP/1.1\r\n" H11 "Upgrade: websocket\r\n"
                               "Connection: keep-alive, Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    static const char ws[] = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    char in[512];
    memcpy(in, head, sizeof(head) - 1);
    memcpy(in + sizeof(head) - 1, ws, sizeof(ws) - 1);
    size_t len = sizeof(head) - 1 + sizeof(ws) - 1;
    static run_t r;
    opts_t o = {.kind = PTC_HTTP_REQUEST};
    run_all_splits(&o, in, len, &r);
    CHECK_EQ(r.rc, 0);
    CHECK(r.upgraded);
    CHECK_EQ(r.upgrade_at, sizeof(head) - 1);
    CHECK_CONTAINS(r.log, "ka=1 up=1 ex=0 conn=6\nDONE 0\nUPGRADE\n");

    /* Declined upgrade: parsing goes on with the next request. */
    static const char two[] = "GET /a HTTP/1.1\r\n" H11 "Upgrade: h2c\r\nConnection: Upgrade\r\n"
                              "\r\nGET /b HTTP/1.1\r\n" H11 "\r\n";
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_REQUEST, NULL);
    ptc_http_event_t ev;
    const uint8_t *d = (const uint8_t *)two;
    size_t left = sizeof(two) - 1;
    ssize_t n = ptc_http_parser_feed(p, d, left, &ev);
    CHECK_EQ(ev.type, PTC_HTTP_EV_HEAD);
    CHECK(ev.head->upgrade);
    d += n;
    left -= (size_t)n;
    CHECK_EQ(ptc_http_parser_feed(p, d, left, &ev), 0);
    CHECK_EQ(ev.type, PTC_HTTP_EV_DONE);
    CHECK_EQ(ptc_http_parser_feed(p, d, left, &ev), 0);
    CHECK_EQ(ev.type, PTC_HTTP_EV_UPGRADE);
    CHECK_EQ(ptc_http_parser_feed(p, d, left, &ev), PTC_ESTATE);
    CHECK_NULL(ptc_http_parser_error(p)); /* not an error */
    CHECK_OK(ptc_http_parser_resume_after_upgrade(p));
    CHECK_EQ(ptc_http_parser_resume_after_upgrade(p), PTC_ESTATE);
    n = ptc_http_parser_feed(p, d, left, &ev);
    CHECK_EQ(n, left);
    CHECK_EQ(ev.type, PTC_HTTP_EV_HEAD);
    CHECK(ptc_slice_eq(ev.head->target, "/b"));
    CHECK(!ev.head->upgrade);
    ptc_http_parser_free(p);
}

static void test_connect_is_an_upgrade(void)
{
    static run_t r;
    run_req("CONNECT app.internal:443 HTTP/1.1\r\nHost: app.internal:443\r\n"
            "Content-Length: 3\r\n\r\nabc",
            0, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.log, "HEAD CONNECT app.internal:443 1.1");
    CHECK_CONTAINS(r.log, "body=0 cl=0 ka=1 up=1");
    CHECK(r.upgraded);
    CHECK_EQ(r.upgrade_at, r.consumed);
    CHECK_EQ(r.consumed + 3, strlen("CONNECT app.internal:443 HTTP/1.1\r\nHost: "
                                    "app.internal:443\r\nContent-Length: 3\r\n\r\nabc"));
}

static void test_leading_empty_lines_and_forms(void)
{
    static run_t r;
    /* RFC 9112 §2.2: empty lines before a request line are ignored. */
    run_req("\r\n\r\nGET http://other.example/x HTTP/1.1\r\nHost: example.com\r\n\r\n", 0, &r);
    CHECK_EQ(r.rc, 0);
    /* Absolute form and Host are both exposed; comparing them is the edge's job. */
    CHECK_CONTAINS(r.log, "HEAD GET http://other.example/x 1.1 [Host=example.com]");
    run_req("OPTIONS * HTTP/1.1\r\n" H11 "\r\n", 0, &r);
    CHECK_CONTAINS(r.log, "HEAD OPTIONS * 1.1");
    /* An empty Host value is allowed (RFC 9110 §7.2). */
    run_req("GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.log, "[Host=]");
    /* obs-text in a value is passed through. */
    run_req("GET / HTTP/1.1\r\n" H11 "X-Name: caf\xc3\xa9\r\n\r\n", 0, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.log, "[X-Name=caf\\xc3\\xa9]");
}

static void test_head_storage_is_per_message(void)
{
    static const char in[] = "GET /first HTTP/1.1\r\n" H11 "X-A: 1\r\n\r\n"
                             "GET /second HTTP/1.1\r\n" H11 "\r\n";
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_REQUEST, NULL);
    ptc_http_event_t ev;
    const uint8_t *d = (const uint8_t *)in;
    size_t left = sizeof(in) - 1;
    ssize_t n = ptc_http_parser_feed(p, d, left, &ev);
    const ptc_http_head_t *h = ev.head;
    d += n;
    left -= (size_t)n;
    CHECK_EQ(ptc_http_parser_feed(p, d, left, &ev), 0);
    CHECK_EQ(ev.type, PTC_HTTP_EV_DONE);
    CHECK(ptc_slice_eq(h->target, "/first"));
    CHECK_EQ(h->header_cnt, 2);
    n = ptc_http_parser_feed(p, d, left, &ev);
    CHECK_EQ(ev.type, PTC_HTTP_EV_HEAD);
    CHECK(ev.head == h); /* the same storage now describes the next message */
    CHECK(ptc_slice_eq(h->target, "/second"));
    CHECK_EQ(h->header_cnt, 1);
    ptc_http_parser_free(p);
}

/* Trimming between messages frees the head storage (valgrind/LSan see the rest); within a
 * message it changes nothing. */
static void test_trim_between_messages(void)
{
    static const char first[] = "GET /first HTTP/1.1\r\n" H11 "X-A: 1\r\n\r\n";
    static const char second[] = "POST /second HTTP/1.1\r\n" H11 "Content-Length: 3\r\n\r\nabc";
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_REQUEST, NULL);
    ptc_http_event_t ev;
    ptc_http_parser_trim(p); /* nothing fed yet: nothing to free */
    CHECK_EQ(ptc_http_parser_feed(p, (const uint8_t *)first, sizeof(first) - 1, &ev),
             (ssize_t)sizeof(first) - 1);
    CHECK_EQ(ev.type, PTC_HTTP_EV_HEAD);
    ptc_http_parser_trim(p); /* the head is still in use */
    CHECK_NOT_NULL(ptc_http_parser_head(p));
    CHECK(ptc_slice_eq(ptc_http_parser_head(p)->target, "/first"));
    CHECK_EQ(ptc_http_parser_feed(p, NULL, 0, &ev), 0);
    CHECK_EQ(ev.type, PTC_HTTP_EV_DONE);
    ptc_http_parser_trim(p);
    CHECK_NULL(ptc_http_parser_head(p));
    /* The next message parses as on a fresh parser, body included. */
    const uint8_t *d = (const uint8_t *)second;
    size_t left = sizeof(second) - 1;
    ssize_t n = ptc_http_parser_feed(p, d, left, &ev);
    CHECK_EQ(ev.type, PTC_HTTP_EV_HEAD);
    CHECK(ptc_slice_eq(ev.head->target, "/second"));
    CHECK_EQ(ev.head->header_cnt, 2);
    d += n;
    left -= (size_t)n;
    n = ptc_http_parser_feed(p, d, left, &ev);
    CHECK_EQ(ev.type, PTC_HTTP_EV_BODY);
    CHECK(ptc_slice_eq(ev.body, "abc"));
    ptc_http_parser_free(p);
}

/* Byte-by-byte feeding must give the same events as one feed, for good and bad inputs. */
static void test_split_equivalence(void)
{
    static const char *const inputs[] = {
        "GET / HTTP/1.1\r\n" H11 "Cookie: a=b; c=d\r\nAccept-Language: en, fr;q=0.5\r\n\r\n",
        "POST /x HTTP/1.1\r\n" H11 "Content-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz",
        "POST /x HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n1a;x=\"y\"\r\n"
        "abcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n",
        "GET / HTTP/1.1\r\n" H11 "X: a\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\n" H11 "Content-Length: 1\r\nContent-Length: 1\r\n\r\nab",
        "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        static run_t r;
        opts_t o = {.kind = PTC_HTTP_REQUEST};
        run_all_splits(&o, inputs[i], strlen(inputs[i]), &r);
        CHECK_GT(r.log_len, 0);
    }
}

/* ---- request smuggling ---- */

static void test_reject_content_length_with_transfer_encoding(void)
{
    const char *reason = "both Content-Length and Transfer-Encoding";
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                     PTC_EHTTP, reason, 400);
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
                     "Content-Length: 3\r\n\r\n0\r\n\r\n",
                     PTC_EHTTP, reason, 400);
    expect_req_error("POST / HTTP/1.1\r\n" H11 "transfer-encoding: identity\r\n"
                     "content-length: 0\r\n\r\n",
                     PTC_EHTTP, reason, 400);
}

static void test_reject_duplicate_content_length(void)
{
    const char *reason = "duplicate Content-Length";
    /* Equal values too: ambiguous, and proxies disagree on it. */
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
                     PTC_EHTTP, reason, 400);
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\nX: y\r\n"
                     "content-LENGTH: 5\r\n\r\nabcde",
                     PTC_EHTTP, reason, 400);
}

static void test_reject_content_length_not_plain_decimal(void)
{
    static const char *const values[] = {
        "+3",
        "-3",
        "3 3",
        "3,3",
        "3, 3",
        "0x10",
        "3a",
        "",
        "1.0",
        "99999999999999999999",
        "18446744073709551616",
        "9223372036854775808",
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in), "POST / HTTP/1.1\r\n" H11 "Content-Length: %s\r\n\r\nabc",
                 values[i]);
        expect_req_error(in, PTC_EHTTP, "invalid Content-Length", 400);
    }
    /* Surrounding whitespace is OWS, and leading zeros are digits. */
    static run_t r;
    run_req("POST / HTTP/1.1\r\n" H11 "Content-Length: \t003 \r\n\r\nabc", 0, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.log, "body=1 cl=3");
    CHECK_EQ(r.body_len, 3);
}

static void test_reject_invalid_chunk_size(void)
{
    const char *head = "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n";
    static const char *const bodies[] = {
        "zz\r\nhello\r\n0\r\n\r\n",                /* not hex */
        "0x5\r\nhello\r\n0\r\n\r\n",               /* prefix */
        " 5\r\nhello\r\n0\r\n\r\n",                /* leading space */
        "-5\r\nhello\r\n0\r\n\r\n",                /* sign */
        "5 \r\nhello\r\n0\r\n\r\n",                /* trailing space, no extension */
        "\r\nhello\r\n0\r\n\r\n",                  /* empty */
        "10000000000000000\r\nhello\r\n0\r\n\r\n", /* 2^64: overflow */
        "fffffffffffffffff\r\nhello\r\n0\r\n\r\n", /* 17 digits */
        "5\rhello\r\n0\r\n\r\n",                   /* CR without LF */
        "5 x\r\nhello\r\n0\r\n\r\n",               /* no semicolon */
        "5 ;a\r\nhello\r\n0\r\n\r\n",              /* BWS before ';' (llhttp 8.1) */
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char in[512];
        snprintf(in, sizeof(in), "%s%s", head, bodies[i]);
        expect_req_body_error(in, "invalid chunk size");
    }
}

static void test_reject_invalid_chunk_extension(void)
{
    const char *head = "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n";
    static const char *const bodies[] = {
        "5;a\x01\r\nhello\r\n0\r\n\r\n",      /* control character in a name */
        "5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n", /* LF inside a quoted value */
        "5;a=b\x7f\r\nhello\r\n0\r\n\r\n",    /* DEL in a value */
        "5;\r\nhello\r\n0\r\n\r\n",           /* empty name */
        "5;a=\r\nhello\r\n0\r\n\r\n",         /* empty value */
        "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n",   /* junk after a quoted value */
        "5;a=\"x\r\nhello\r\n0\r\n\r\n",      /* unterminated quote */
        "5; a\r\nhello\r\n0\r\n\r\n",         /* BWS: RFC 9112 allows it, llhttp 8.1 not */
        "5;c@d\r\nhello\r\n0\r\n\r\n",        /* '@' is not a token character */
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char in[512];
        snprintf(in, sizeof(in), "%s%s", head, bodies[i]);
        expect_req_body_error(in, "invalid chunk extension");
    }
    /* An over-long size line is a limit. */
    static char in[8192];
    int n = snprintf(in, sizeof(in), "%s5;a=", head);
    memset(in + n, 'x', 5000);
    strcpy(in + n + 5000, "\r\nhello\r\n0\r\n\r\n");
    static run_t r;
    run_req(in, 0, &r);
    CHECK_EQ(r.rc, PTC_ELIMIT);
    CHECK_STREQ(r.reason, "chunk line too long");
    CHECK_EQ(r.status, 400);
}

static void test_reject_missing_crlf_after_chunk_data(void)
{
    const char *head = "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n";
    static const char *const bodies[] = {
        "5\r\nhelloXX0\r\n\r\n", /* llhttp 8.1 accepts this one */
        "5\r\nhello0\r\n\r\n",     "5\r\nhello\n0\r\n\r\n", "5\r\nhello\rX0\r\n\r\n",
        "3\r\nhello\r\n0\r\n\r\n", /* declared size shorter than the data */
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char in[512];
        snprintf(in, sizeof(in), "%s%s", head, bodies[i]);
        expect_req_body_error(in, "missing CRLF after chunk data");
    }
}

static void test_reject_bad_chunked_framing_elsewhere(void)
{
    const char *head = "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n";
    char in[512];
    snprintf(in, sizeof(in), "%s5\nhello\r\n0\r\n\r\n", head);
    expect_req_body_error(in, "bare LF line ending");
    snprintf(in, sizeof(in), "%s0\r\nX: a\r\n b\r\n\r\n", head);
    expect_req_body_error(in, "obsolete line folding");
    snprintf(in, sizeof(in), "%s0\r\nX : a\r\n\r\n", head);
    expect_req_body_error(in, "invalid header name");
    snprintf(in, sizeof(in), "%s0\r\nX: a\x01\r\n\r\n", head);
    expect_req_body_error(in, "invalid header value");
    snprintf(in, sizeof(in), "%s0\r\nX: a\n\r\n", head);
    expect_req_body_error(in, "bare LF line ending");
    snprintf(in, sizeof(in), "%s0\r\n\rX", head);
    expect_req_body_error(in, "malformed chunked body");
}

static void test_reject_obsolete_line_folding(void)
{
    expect_req_error("GET / HTTP/1.1\r\n" H11 "X-A: one\r\n two\r\n\r\n", PTC_EHTTP,
                     "obsolete line folding", 400);
    expect_req_error("GET / HTTP/1.1\r\n" H11 "X-A: one\r\n\ttwo\r\n\r\n", PTC_EHTTP,
                     "obsolete line folding", 400);
    /* Whitespace before the first field (RFC 9112 §2.2). */
    expect_req_error("GET / HTTP/1.1\r\n Host: a\r\n\r\n", PTC_EHTTP, "obsolete line folding", 400);
}

static void test_reject_invalid_header_names(void)
{
    static const char *const lines[] = {
        "Host : a", /* llhttp 8.1 accepts this one */
        "Content-Length : 3", "X\tY: 1",  "X Y: 1",  ": empty",      "X@Y: 1", "X(Y): 1",
        "Na\xc3\xafve: 1",    "X\x7f: 1", "NoColon", "X:\r\n\rY: 1",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in), "GET / HTTP/1.1\r\n" H11 "%s\r\n\r\n", lines[i]);
        expect_req_error(in, PTC_EHTTP, "invalid header name", 400);
    }
}

static void test_reject_invalid_header_values(void)
{
    static const char *const values[] = {
        "a\rb",
        "a\x01"
        "b",
        "a\x7f"
        "b",
        "\x1b[31m",
        "a\x0b"
        "b",
        "a\x0c"
        "b",
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char in[256];
        snprintf(in, sizeof(in), "GET / HTTP/1.1\r\n" H11 "X-V: %s\r\n\r\n", values[i]);
        expect_req_error(in, PTC_EHTTP, "invalid header value", 400);
    }
    /* NUL cannot go through snprintf. */
    static const char nul[] = "GET / HTTP/1.1\r\n" H11 "X-V: a\0b\r\n\r\n";
    static run_t r;
    opts_t o = {.kind = PTC_HTTP_REQUEST};
    run_all_splits(&o, nul, sizeof(nul) - 1, &r);
    CHECK_EQ(r.rc, PTC_EHTTP);
    CHECK_STREQ(r.reason, "invalid header value");
    /* A tab is fine. */
    run_req("GET / HTTP/1.1\r\n" H11 "X-V: a\tb\r\n\r\n", 0, &r);
    CHECK_EQ(r.rc, 0);
}

static void test_reject_transfer_encoding_not_ending_with_chunked(void)
{
    const char *reason = "Transfer-Encoding must end with chunked";
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\n\r\n", PTC_EHTTP, reason,
                     400);
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, gzip\r\n\r\n",
                     PTC_EHTTP, reason, 400);
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
                     "Transfer-Encoding: identity\r\n\r\n",
                     PTC_EHTTP, reason, 400);
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: xchunked\r\n\r\n", PTC_EHTTP,
                     reason, 400);
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked, chunked\r\n\r\n",
                     PTC_EHTTP, reason, 400);
    /* Known framing, unknown coding: 501 (RFC 9112 §6.1). */
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip, chunked\r\n\r\n",
                     PTC_EHTTP, "unsupported transfer coding", 501);
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: gzip\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n",
                     PTC_EHTTP, "unsupported transfer coding", 501);
    expect_req_error("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: ,chunked\r\n\r\n", PTC_EHTTP,
                     "invalid Transfer-Encoding", 400);
    /* RFC 9112 §6.1: faulty framing in HTTP/1.0. */
    expect_req_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", PTC_EHTTP,
                     "Transfer-Encoding in HTTP/1.0", 400);
    /* Case does not matter for the coding name. */
    static run_t r;
    run_req("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", 0, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.dones, 1);
}

static void test_reject_bare_lf(void)
{
    const char *reason = "bare LF line ending";
    /* llhttp 8.1 takes a bare LF after the request line. */
    expect_req_error("GET / HTTP/1.1\n" H11 "\r\n", PTC_EHTTP, reason, 400);
    expect_req_error("GET / HTTP/1.1\r\nHost: a\n\n", PTC_EHTTP, reason, 400);
    expect_req_error("GET / HTTP/1.1\r\nHost: a\r\n\n", PTC_EHTTP, reason, 400);
    expect_req_error("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", PTC_EHTTP, reason, 400);
}

static void test_reject_http09_and_other_versions(void)
{
    const char *reason = "unsupported HTTP version";
    expect_req_error("GET /\r\n\r\n", PTC_EHTTP, reason, 505);
    expect_req_error("GET / HTTP/0.9\r\n\r\n", PTC_EHTTP, reason, 505);
    expect_req_error("GET / HTTP/2.0\r\n" H11 "\r\n", PTC_EHTTP, reason, 505);
    expect_req_error("GET / HTTP/1.2\r\n" H11 "\r\n", PTC_EHTTP, reason, 505);
    expect_req_error("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", PTC_EHTTP, reason, 505);
    expect_req_error("GET / HTTP/1.1 \r\n" H11 "\r\n", PTC_EHTTP, "invalid request line", 400);
    expect_req_error("GET / HTTX/1.1\r\n" H11 "\r\n", PTC_EHTTP, "invalid request line", 400);
    expect_req_error("GET  / HTTP/1.1\r\n" H11 "\r\n", PTC_EHTTP, "invalid request line", 400);
}

static void test_reject_bad_request_lines(void)
{
    expect_req_error("G@T / HTTP/1.1\r\n" H11 "\r\n", PTC_EHTTP, "invalid method", 400);
    expect_req_error("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", PTC_EHTTP, "invalid method",
                     400);
    expect_req_error("BREW /pot HTTP/1.1\r\n" H11 "\r\n", PTC_EHTTP, "unknown method", 501);
    expect_req_error("GET /\x7f HTTP/1.1\r\n" H11 "\r\n", PTC_EHTTP, "invalid request target", 400);
    expect_req_error("GET /caf\xc3\xa9 HTTP/1.1\r\n" H11 "\r\n", PTC_EHTTP,
                     "invalid request target", 400);
    expect_req_error("GET /\x01 HTTP/1.1\r\n" H11 "\r\n", PTC_EHTTP, "invalid request target", 400);
    expect_req_error("GET /a\tb HTTP/1.1\r\n" H11 "\r\n", PTC_EHTTP, "invalid request target", 400);
}

static void test_reject_host_problems(void)
{
    expect_req_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", PTC_EHTTP, "duplicate Host",
                     400);
    expect_req_error("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", PTC_EHTTP, "duplicate Host",
                     400);
    expect_req_error("GET / HTTP/1.1\r\nX: y\r\n\r\n", PTC_EHTTP, "missing Host", 400);
    /* HTTP/1.0 may omit it. */
    static run_t r;
    run_req("GET / HTTP/1.0\r\n\r\n", 0, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.heads, 1);
}

/* Inputs the fuzzers found: the reason once depended on how the input was split, because
 * llhttp reports some errors after the byte it consumed last (tests/fuzz/corpus/
 * http_request/regress_*). */
static void test_fuzz_regressions(void)
{
    expect_req_error("PUT m\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody", PTC_EHTTP,
                     "unsupported HTTP version", 505);
    expect_req_error("GET Upgrade: /chat HTT@/1.1\r\n" H11 "\r\n", PTC_EHTTP,
                     "invalid request target", 400);
    expect_req_body_error("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n"
                          "0;99=CONNECT \r\n\r\n",
                          "invalid chunk extension");
}

/* ---- limits ---- */

static void test_limit_head_size(void)
{
    ptc_http_limits_t lim = {.max_head_bytes = 256};
    opts_t o = {.kind = PTC_HTTP_REQUEST, .limits = &lim};
    static char in[1024];
    static run_t r;
    /* 256 bytes exactly is fine. */
    const char *start = "GET / HTTP/1.1\r\n" H11 "X-Pad: ";
    size_t n = strlen(start);
    memcpy(in, start, n);
    memset(in + n, 'p', 256 - n - 4);
    memcpy(in + 256 - 4, "\r\n\r\n", 5);
    run_all_splits(&o, in, 256, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.heads, 1);
    /* One more byte is not. */
    memset(in + n, 'p', 256 - n - 3);
    memcpy(in + 256 - 3, "\r\n\r\n", 5);
    run_all_splits(&o, in, 257, &r);
    CHECK_EQ(r.rc, PTC_ELIMIT);
    CHECK_STREQ(r.reason, "header section too large");
    CHECK_EQ(r.status, 431);
    /* Many small headers hit the same limit. */
    n = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\n" H11);
    while (n < 600) {
        n += (size_t)snprintf(in + n, sizeof(in) - n, "X-H: v\r\n");
    }
    run_all_splits(&o, in, n, &r);
    CHECK_EQ(r.rc, PTC_ELIMIT);
    CHECK_STREQ(r.reason, "header section too large");
}

static void test_limit_url_length(void)
{
    ptc_http_limits_t lim = {.max_url_len = 100, .max_head_bytes = 1000};
    opts_t o = {.kind = PTC_HTTP_REQUEST, .limits = &lim};
    static char in[4096];
    static run_t r;
    memcpy(in, "GET /", 5);
    memset(in + 5, 'u', 99);
    int n = 104 + snprintf(in + 104, 200, " HTTP/1.1\r\n" H11 "\r\n");
    run_all_splits(&o, in, (size_t)n, &r); /* exactly 100 */
    CHECK_EQ(r.rc, 0);
    memset(in + 5, 'u', 100);
    n = 105 + snprintf(in + 105, 200, " HTTP/1.1\r\n" H11 "\r\n");
    run_all_splits(&o, in, (size_t)n, &r);
    CHECK_EQ(r.rc, PTC_ELIMIT);
    CHECK_STREQ(r.reason, "URL too long");
    CHECK_EQ(r.status, 414);
    /* A URL that fills the whole head budget is also 414, not 431. */
    memset(in + 5, 'u', 3000);
    run_all_splits(&o, in, 3005, &r);
    CHECK_EQ(r.rc, PTC_ELIMIT);
    CHECK_STREQ(r.reason, "URL too long");
    CHECK_EQ(r.status, 414);
    ptc_http_limits_t big_url = {.max_url_len = 100000, .max_head_bytes = 1000};
    opts_t o2 = {.kind = PTC_HTTP_REQUEST, .limits = &big_url};
    run_all_splits(&o2, in, 3005, &r);
    CHECK_STREQ(r.reason, "URL too long");
    CHECK_EQ(r.status, 414);
}

static void test_limit_header_count(void)
{
    ptc_http_limits_t lim = {.max_headers = 5};
    opts_t o = {.kind = PTC_HTTP_REQUEST, .limits = &lim};
    static char in[1024];
    static run_t r;
    int n =
        snprintf(in, sizeof(in), "GET / HTTP/1.1\r\n" H11 "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n");
    run_all_splits(&o, in, (size_t)n, &r);
    CHECK_EQ(r.rc, 0);
    n = snprintf(in, sizeof(in),
                 "GET / HTTP/1.1\r\n" H11 "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n");
    run_all_splits(&o, in, (size_t)n, &r);
    CHECK_EQ(r.rc, PTC_ELIMIT);
    CHECK_STREQ(r.reason, "too many headers");
    CHECK_EQ(r.status, 431);
}

static void test_limit_trailer_size(void)
{
    ptc_http_limits_t lim = {.max_head_bytes = 128};
    opts_t o = {.kind = PTC_HTTP_REQUEST, .limits = &lim};
    static char in[1024];
    static run_t r;
    int n = snprintf(in, sizeof(in),
                     "POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n\r\n0\r\n");
    while (n < 400) {
        n += snprintf(in + n, sizeof(in) - (size_t)n, "T: v\r\n");
    }
    n += snprintf(in + n, sizeof(in) - (size_t)n, "\r\n");
    run_all_splits(&o, in, (size_t)n, &r);
    CHECK_EQ(r.rc, PTC_ELIMIT);
    CHECK_STREQ(r.reason, "trailer section too large");
}

static void test_eof_inside_a_message(void)
{
    static run_t r;
    opts_t o = {.kind = PTC_HTTP_REQUEST, .eof = true};
    const char *in = "GET / HTTP/1.1\r\nHo";
    run_opts(&o, in, strlen(in), 0, &r);
    CHECK_EQ(r.rc, PTC_EHTTP);
    CHECK_STREQ(r.reason, "incomplete message");
    in = "POST / HTTP/1.1\r\n" H11 "Content-Length: 10\r\n\r\nabc";
    run_opts(&o, in, strlen(in), 0, &r);
    CHECK_EQ(r.rc, PTC_EHTTP);
    CHECK_STREQ(r.reason, "incomplete message");
    in = "GET / HTTP/1.1\r\n" H11 "\r\n\r\n";
    run_opts(&o, in, strlen(in), 0, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.log, "DONE 0\nEOF\n");
}

/* ---- responses ---- */

static void test_response_content_length_and_chunked(void)
{
    static run_t r;
    opts_t o = {.kind = PTC_HTTP_RESPONSE};
    static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\n\r\nhello"
                             "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "4\r\nnope\r\n0\r\n\r\n";
    run_all_splits(&o, in, sizeof(in) - 1, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.heads, 2);
    CHECK_EQ(r.dones, 2);
    CHECK_MEMEQ(r.body, "hellonope", 9);
    CHECK_CONTAINS(r.log, "HEAD 200 OK 1.1 [Content-Length=5] [Set-Cookie=a=1] body=1 cl=5 ka=1");
    CHECK_CONTAINS(r.log, "HEAD 404 Not Found 1.1 [Transfer-Encoding=chunked] body=2");
}

static void test_response_no_body_cases(void)
{
    static run_t r;
    /* HEAD: Content-Length describes the representation, not this message. */
    run_resp("HEAD",
             "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
             false, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.heads, 2);
    CHECK_EQ(r.dones, 2);
    CHECK_EQ(r.body_len, 0);
    CHECK_CONTAINS(r.log, "body=0 cl=0 ka=1");
    /* 204 and 304 never have content (llhttp would read the 5 bytes here). */
    run_resp("GET",
             "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
             "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
             false, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.heads, 3);
    CHECK_EQ(r.dones, 3);
    CHECK_EQ(r.body_len, 5);
    CHECK_MEMEQ(r.body, "hello", 5);
    /* Content-Length: 0 */
    run_resp("GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, &r);
    CHECK_EQ(r.dones, 1);
    /* The HEAD context ends with the response it applied to. */
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_RESPONSE, NULL);
    ptc_http_parser_set_request_method(p, ptc_slice_str("HEAD"));
    static const char two[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
                              "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const uint8_t *d = (const uint8_t *)two;
    size_t left = sizeof(two) - 1;
    ptc_http_event_t ev;
    int seen_body = 0;
    for (int i = 0; i < 10 && left > 0; i++) {
        ssize_t n = ptc_http_parser_feed(p, d, left, &ev);
        CHECK_GE(n, 0);
        seen_body += ev.type == PTC_HTTP_EV_BODY;
        d += n;
        left -= (size_t)n;
    }
    CHECK_EQ(left, 0);
    CHECK_EQ(seen_body, 1);
    ptc_http_parser_free(p);
}

static void test_response_interim_and_switching(void)
{
    static run_t r;
    run_resp("POST",
             "HTTP/1.1 100 Continue\r\n\r\n"
             "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
             "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
             false, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.interims, 2);
    CHECK_EQ(r.heads, 1);
    CHECK_EQ(r.dones, 1);
    CHECK_CONTAINS(r.log, "INTERIM 100 Continue 1.1 body=0");
    CHECK_CONTAINS(r.log, "INTERIM 103 Early Hints 1.1 [Link=</s.css>; rel=preload]");
    CHECK_CONTAINS(r.log, "HEAD 201 Created");
    /* EOF after an interim response only: incomplete. */
    run_resp("POST", "HTTP/1.1 100 Continue\r\n\r\n", true, &r);
    CHECK_EQ(r.rc, PTC_EHTTP);
    CHECK_STREQ(r.reason, "incomplete message");

    /* 101 ends the message; the rest is the new protocol. */
    static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\n\r\n\x81\x02hi";
    opts_t o = {.kind = PTC_HTTP_RESPONSE};
    run_all_splits(&o, sw, sizeof(sw) - 1, &r);
    CHECK(r.upgraded);
    CHECK_EQ(r.upgrade_at, sizeof(sw) - 1 - 4);
    CHECK_CONTAINS(r.log, "body=0 cl=0 ka=1 up=1");
    /* A 2xx to CONNECT opens a tunnel. */
    run_resp("CONNECT", "HTTP/1.1 200 Connection established\r\n\r\nrawbytes", false, &r);
    CHECK(r.upgraded);
    CHECK_EQ(r.body_len, 0);
    /* ...but a 2xx to GET with no length is read until close. */
    run_resp("GET", "HTTP/1.1 200 OK\r\n\r\nrawbytes", true, &r);
    CHECK(!r.upgraded);
    CHECK_EQ(r.body_len, 8);
}

static void test_response_until_close(void)
{
    static run_t r;
    run_resp("GET", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", true, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.log, "body=3 cl=0 ka=0");
    CHECK_CONTAINS(r.log, "DONE 9 (eof)");
    CHECK_MEMEQ(r.body, "all of it", 9);
    /* A transfer coding that does not end with chunked means "until close" in a response. */
    run_resp("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08", true, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.log, "body=3 cl=0 ka=0");
    CHECK_EQ(r.body_len, 3);
    run_resp("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nab", true, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.log, "body=3 cl=0 ka=0");
    CHECK_EQ(r.body_len, 5);
    /* Truncated responses are errors at EOF. */
    run_resp("GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true, &r);
    CHECK_EQ(r.rc, PTC_EHTTP);
    CHECK_STREQ(r.reason, "incomplete message");
    CHECK_EQ(r.status, 502);
    run_resp("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true, &r);
    CHECK_STREQ(r.reason, "incomplete message");
}

static void test_response_status_lines(void)
{
    static run_t r;
    run_resp("GET", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_CONTAINS(r.log, "HEAD 200  1.1");
    run_resp("GET", "HTTP/1.1 599 Whatever \xe2\x9c\x93\r\nContent-Length: 0\r\n\r\n", false, &r);
    CHECK_EQ(r.rc, 0);
    expect_resp_error("HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", "invalid status line");
    expect_resp_error("HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n", "invalid status line");
    expect_resp_error("HTTP/1.1 600 High\r\nContent-Length: 0\r\n\r\n", "invalid status line");
    expect_resp_error("HTTP/1.1 20 Short\r\nContent-Length: 0\r\n\r\n", "invalid status line");
    expect_resp_error("HTTP/1.1  200 OK\r\n\r\n", "invalid status line");
    expect_resp_error("ICE/1.0 200 OK\r\n\r\n", "invalid status line");
    expect_resp_error("HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version");
    expect_resp_error("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF line ending");
}

static void test_response_smuggling_is_502(void)
{
    expect_resp_error("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
                      "duplicate Content-Length");
    expect_resp_error("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                      "both Content-Length and Transfer-Encoding");
    expect_resp_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
                      "missing CRLF after chunk data");
    expect_resp_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                      "invalid Transfer-Encoding");
    expect_resp_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                      "unsupported transfer coding");
    expect_resp_error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      "Transfer-Encoding in HTTP/1.0");
    expect_resp_error("HTTP/1.1 200 OK\r\nSet-Cookie: a\r\n b\r\n\r\n", "obsolete line folding");
    expect_resp_error("HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n", "invalid header name");
    expect_resp_error("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "invalid Content-Length");
}

/* ---- header helpers ---- */

static ptc_http_header_t hdr(const char *n, const char *v)
{
    ptc_http_header_t h = {ptc_slice_str(n), ptc_slice_str(v)};
    return h;
}

static void test_header_lookup(void)
{
    ptc_http_header_t h[] = {
        hdr("Host", "a"),
        hdr("accept", "text/html"),
        hdr("ACCEPT", "*/*"),
        hdr("X", ""),
    };
    const ptc_http_header_t *f = ptc_http_header_find(h, 4, "Accept");
    CHECK(f == &h[1]);
    CHECK(ptc_http_header_find(h, 4, "host") == &h[0]);
    CHECK_NULL(ptc_http_header_find(h, 4, "Hos"));
    CHECK_NULL(ptc_http_header_find(h, 4, "Hostx"));
    CHECK_EQ(ptc_http_header_count(h, 4, "accept"), 2);
    CHECK_EQ(ptc_http_header_count(h, 4, "cookie"), 0);
    CHECK(ptc_http_header_find(h, 4, "x") == &h[3]);
}

static void test_list_tokens(void)
{
    ptc_slice_t list = ptc_slice_str(" , keep-alive ,\tUpgrade,, x;q=1 ,");
    ptc_slice_t e;
    CHECK(ptc_http_list_next(&list, &e));
    CHECK(ptc_slice_eq(e, "keep-alive"));
    CHECK(ptc_http_list_next(&list, &e));
    CHECK(ptc_slice_eq(e, "Upgrade"));
    CHECK(ptc_http_list_next(&list, &e));
    CHECK(ptc_slice_eq(e, "x;q=1"));
    CHECK(!ptc_http_list_next(&list, &e));
    CHECK(!ptc_http_list_next(&list, &e));
    CHECK(ptc_http_list_has(ptc_slice_str("close, upgrade"), "Upgrade"));
    CHECK(!ptc_http_list_has(ptc_slice_str("close, upgrade2"), "upgrade"));
    CHECK(!ptc_http_list_has(ptc_slice_str(""), "close"));
    ptc_http_header_t h[] = {
        hdr("Connection", "keep-alive"),
        hdr("Upgrade", "websocket"),
        hdr("connection", "Upgrade"),
    };
    CHECK(ptc_http_header_has_token(h, 3, "Connection", "upgrade"));
    CHECK(ptc_http_header_has_token(h, 3, "connection", "KEEP-ALIVE"));
    CHECK(!ptc_http_header_has_token(h, 3, "Connection", "close"));
    CHECK(ptc_http_header_has_token(h, 3, "upgrade", "websocket"));
}

static void test_hop_by_hop(void)
{
    ptc_http_header_t h[] = {
        hdr("Host", "a"),
        hdr("Connection", "keep-alive, X-Secret , close"),
        hdr("Keep-Alive", "timeout=5"),
        hdr("X-Secret", "s"),
        hdr("Proxy-Connection", "keep-alive"),
        hdr("TE", "trailers"),
        hdr("Trailer", "Checksum"),
        hdr("Transfer-Encoding", "chunked"),
        hdr("Upgrade", "websocket"),
        hdr("Proxy-Authorization", "Basic eA=="),
        hdr("Proxy-Authenticate", "Basic"),
        hdr("Cookie", "a=b"),
        hdr("x-secret", "again"),
        hdr("Authorization", "Bearer t"),
    };
    size_t cnt = sizeof(h) / sizeof(h[0]);
    CHECK(ptc_http_is_hop_by_hop(h, cnt, ptc_slice_str("x-SECRET")));
    CHECK(ptc_http_is_hop_by_hop(NULL, 0, ptc_slice_str("te")));
    CHECK(ptc_http_is_hop_by_hop(NULL, 0, ptc_slice_str("Proxy-Authorization")));
    CHECK(!ptc_http_is_hop_by_hop(NULL, 0, ptc_slice_str("X-Secret")));
    CHECK(!ptc_http_is_hop_by_hop(h, cnt, ptc_slice_str("Authorization")));
    CHECK(!ptc_http_is_hop_by_hop(h, cnt, ptc_slice_str("Trailers")));
    ptc_http_header_t out[sizeof(h) / sizeof(h[0])];
    size_t n = ptc_http_filter_hop_by_hop(h, cnt, out);
    CHECK_EQ(n, 3);
    CHECK(ptc_slice_eq(out[0].name, "Host"));
    CHECK(ptc_slice_eq(out[1].name, "Cookie"));
    CHECK(ptc_slice_eq(out[2].name, "Authorization"));
}

static void test_token_and_value_checks(void)
{
    CHECK(ptc_http_is_token(ptc_slice_str("X-Forwarded-For")));
    CHECK(ptc_http_is_token(ptc_slice_str("!#$%&'*+-.^_`|~09azAZ")));
    CHECK(!ptc_http_is_token(ptc_slice_str("")));
    CHECK(!ptc_http_is_token(ptc_slice_str("a b")));
    CHECK(!ptc_http_is_token(ptc_slice_str("a:b")));
    CHECK(!ptc_http_is_token(ptc_slice_str("a\"b")));
    CHECK(ptc_http_is_field_value(ptc_slice_str("")));
    CHECK(ptc_http_is_field_value(ptc_slice_str("a b\tc \x80\xff")));
    CHECK(!ptc_http_is_field_value(ptc_slice_str("a\r\nX: y")));
    CHECK(!ptc_http_is_field_value(ptc_slice_str("a\nb")));
    CHECK(!ptc_http_is_field_value(ptc_slice_str("\x7f")));
    ptc_slice_t nul = {(const uint8_t *)"a\0b", 3};
    CHECK(!ptc_http_is_field_value(nul));
}

/* ---- writers ---- */

static size_t drain(ptc_chunkq_t *q, char *out, size_t cap)
{
    ptc_slice_t s[64];
    size_t n = ptc_chunkq_peek(q, s, 64);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_LE(len + s[i].len, cap);
        memcpy(out + len, s[i].ptr, s[i].len);
        len += s[i].len;
    }
    ptc_chunkq_consume(q, len);
    return len;
}

static void test_write_request_head(void)
{
    ptc_http_header_t h[] = {hdr("Host", "app.internal"), hdr("X-Forwarded-For", "192.0.2.1")};
    static const char want[] = "POST /api?q=1 HTTP/1.1\r\nHost: app.internal\r\n"
                               "X-Forwarded-For: 192.0.2.1\r\n\r\n";
    uint8_t buf[256];
    ssize_t n = ptc_http_format_request_head(buf, sizeof(buf), ptc_slice_str("POST"),
                                             ptc_slice_str("/api?q=1"), h, 2);
    CHECK_EQ(n, sizeof(want) - 1);
    CHECK_MEMEQ(buf, want, sizeof(want) - 1);
    /* Exactly enough room, then one byte short. */
    n = ptc_http_format_request_head(buf, sizeof(want) - 1, ptc_slice_str("POST"),
                                     ptc_slice_str("/api?q=1"), h, 2);
    CHECK_EQ(n, sizeof(want) - 1);
    n = ptc_http_format_request_head(buf, sizeof(want) - 2, ptc_slice_str("POST"),
                                     ptc_slice_str("/api?q=1"), h, 2);
    CHECK_EQ(n, PTC_ELIMIT);

    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 1 << 10);
    CHECK_OK(
        ptc_http_write_request_head(&q, ptc_slice_str("POST"), ptc_slice_str("/api?q=1"), h, 2));
    char out[512];
    size_t len = drain(&q, out, sizeof(out));
    CHECK_EQ(len, sizeof(want) - 1);
    CHECK_MEMEQ(out, want, len);

    /* What we write parses back to the same head. */
    ptc_http_parser_t *p = ptc_http_parser_new(PTC_HTTP_REQUEST, NULL);
    ptc_http_event_t ev;
    CHECK_EQ(ptc_http_parser_feed(p, (const uint8_t *)out, len, &ev), len);
    CHECK_EQ(ev.type, PTC_HTTP_EV_HEAD);
    CHECK(ptc_slice_eq(ev.head->method, "POST"));
    CHECK(ptc_slice_eq(ev.head->target, "/api?q=1"));
    CHECK_EQ(ev.head->header_cnt, 2);
    CHECK(ptc_slice_eq(ev.head->headers[1].value, "192.0.2.1"));
    ptc_http_parser_free(p);
    ptc_chunkq_dispose(&q);
}

static void test_write_response_head(void)
{
    ptc_http_header_t h[] = {hdr("Content-Length", "0")};
    uint8_t buf[256];
    ssize_t n = ptc_http_format_response_head(buf, sizeof(buf), 404, (ptc_slice_t){NULL, 0}, h, 1);
    static const char want[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    CHECK_EQ(n, sizeof(want) - 1);
    CHECK_MEMEQ(buf, want, sizeof(want) - 1);
    n = ptc_http_format_response_head(buf, sizeof(buf), 200, ptc_slice_str("Fine"), NULL, 0);
    CHECK_EQ(n, strlen("HTTP/1.1 200 Fine\r\n\r\n"));
    CHECK_MEMEQ(buf, "HTTP/1.1 200 Fine\r\n\r\n", (size_t)n);
    n = ptc_http_format_response_head(buf, sizeof(buf), 299, (ptc_slice_t){NULL, 0}, NULL, 0);
    CHECK_EQ(n, strlen("HTTP/1.1 299 \r\n\r\n"));
    CHECK_MEMEQ(buf, "HTTP/1.1 299 \r\n\r\n", (size_t)n);
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 1 << 10);
    CHECK_OK(ptc_http_write_response_head(&q, 502, (ptc_slice_t){NULL, 0}, NULL, 0));
    char out[128];
    size_t len = drain(&q, out, sizeof(out));
    CHECK_EQ(len, strlen("HTTP/1.1 502 Bad Gateway\r\n\r\n"));
    CHECK_MEMEQ(out, "HTTP/1.1 502 Bad Gateway\r\n\r\n", len);
    ptc_chunkq_dispose(&q);
}

static void test_writers_refuse_header_injection(void)
{
    uint8_t buf[512];
    ptc_slice_t get = ptc_slice_str("GET");
    ptc_slice_t root = ptc_slice_str("/");
    static const char *const bad_values[] = {
        "a\r\nX-Injected: 1", "a\nX: 1", "a\rb", "\x01", "\x7f",
    };
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        ptc_http_header_t h = hdr("X-Ok", bad_values[i]);
        CHECK_EQ(ptc_http_format_request_head(buf, sizeof(buf), get, root, &h, 1), PTC_EHTTP);
        CHECK_EQ(
            ptc_http_format_response_head(buf, sizeof(buf), 200, (ptc_slice_t){NULL, 0}, &h, 1),
            PTC_EHTTP);
    }
    ptc_http_header_t nul = {ptc_slice_str("X"), {(const uint8_t *)"a\0b", 3}};
    CHECK_EQ(ptc_http_format_request_head(buf, sizeof(buf), get, root, &nul, 1), PTC_EHTTP);
    static const char *const bad_names[] = {"", "X Y", "X:Y", "X\r\nY", "X\t", "Na\xc3\xafve"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        ptc_http_header_t h = hdr(bad_names[i], "v");
        CHECK_EQ(ptc_http_format_request_head(buf, sizeof(buf), get, root, &h, 1), PTC_EHTTP);
    }
    CHECK_EQ(ptc_http_format_request_head(buf, sizeof(buf), ptc_slice_str("GE T"), root, NULL, 0),
             PTC_EHTTP);
    CHECK_EQ(ptc_http_format_request_head(buf, sizeof(buf), ptc_slice_str(""), root, NULL, 0),
             PTC_EHTTP);
    CHECK_EQ(ptc_http_format_request_head(buf, sizeof(buf), get, ptc_slice_str("/a b"), NULL, 0),
             PTC_EHTTP);
    CHECK_EQ(
        ptc_http_format_request_head(buf, sizeof(buf), get, ptc_slice_str("/a\r\nX: 1"), NULL, 0),
        PTC_EHTTP);
    CHECK_EQ(ptc_http_format_request_head(buf, sizeof(buf), get, ptc_slice_str(""), NULL, 0),
             PTC_EHTTP);
    CHECK_EQ(
        ptc_http_format_request_head(buf, sizeof(buf), get, ptc_slice_str("/\xc3\xa9"), NULL, 0),
        PTC_EHTTP);
    CHECK_EQ(
        ptc_http_format_response_head(buf, sizeof(buf), 200, ptc_slice_str("OK\r\nX: 1"), NULL, 0),
        PTC_EHTTP);
    CHECK_EQ(ptc_http_format_response_head(buf, sizeof(buf), 99, ptc_slice_str("x"), NULL, 0),
             PTC_EHTTP);
    CHECK_EQ(ptc_http_format_response_head(buf, sizeof(buf), 600, ptc_slice_str("x"), NULL, 0),
             PTC_EHTTP);
    /* Nothing is queued when a field is refused. */
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 1 << 10);
    ptc_http_header_t h[] = {hdr("A", "fine"), hdr("B", "evil\r\n\r\nGET /admin HTTP/1.1")};
    CHECK_EQ(ptc_http_write_request_head(&q, get, root, h, 2), PTC_EHTTP);
    CHECK_EQ(ptc_http_write_response_head(&q, 200, (ptc_slice_t){NULL, 0}, h, 2), PTC_EHTTP);
    CHECK_EQ(q.queued, 0);
    ptc_chunkq_dispose(&q);
}

static void test_chunk_framing(void)
{
    uint8_t b[PTC_HTTP_CHUNK_HEADER_MAX];
    size_t n = ptc_http_format_chunk_header(b, 1);
    CHECK_EQ(n, 3);
    CHECK_MEMEQ(b, "1\r\n", 3);
    n = ptc_http_format_chunk_header(b, 0x1a2b);
    CHECK_EQ(n, 6);
    CHECK_MEMEQ(b, "1a2b\r\n", 6);
    n = ptc_http_format_chunk_header(b, UINT64_MAX);
    CHECK_EQ(n, 18);
    CHECK_MEMEQ(b, "ffffffffffffffff\r\n", 18);

    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 1 << 10);
    CHECK_OK(ptc_http_write_chunk(&q, "hello", 5));
    CHECK_OK(ptc_http_write_chunk(&q, "", 0)); /* nothing: would end the body */
    static char big[300];
    memset(big, 'b', sizeof(big));
    CHECK_OK(ptc_http_write_chunk(&q, big, sizeof(big)));
    CHECK_OK(ptc_http_write_last_chunk(&q));
    static char out[1024];
    size_t len = drain(&q, out, sizeof(out));
    static const char want_start[] = "5\r\nhello\r\n12c\r\n";
    CHECK_MEMEQ(out, want_start, sizeof(want_start) - 1);
    CHECK_MEMEQ(out + len - 7, "\r\n0\r\n\r\n", 7);
    CHECK_EQ(len, 10 + 5 + 300 + 2 + 5);

    /* The framing parses back as a chunked body. */
    static char resp[2048];
    int h = snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    memcpy(resp + h, out, len);
    static run_t r;
    opts_t o = {.kind = PTC_HTTP_RESPONSE};
    run_all_splits(&o, resp, (size_t)h + len, &r);
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(r.dones, 1);
    CHECK_EQ(r.body_len, 305);
    CHECK_MEMEQ(r.body, "hello", 5);
    CHECK_MEMEQ(r.body + 5, big, 300);
    ptc_chunkq_dispose(&q);
}

static void test_reason_phrases(void)
{
    CHECK_STREQ(ptc_http_reason_phrase(200), "OK");
    CHECK_STREQ(ptc_http_reason_phrase(101), "Switching Protocols");
    CHECK_STREQ(ptc_http_reason_phrase(413), "Content Too Large");
    CHECK_STREQ(ptc_http_reason_phrase(414), "URI Too Long");
    CHECK_STREQ(ptc_http_reason_phrase(431), "Request Header Fields Too Large");
    CHECK_STREQ(ptc_http_reason_phrase(502), "Bad Gateway");
    CHECK_STREQ(ptc_http_reason_phrase(505), "HTTP Version Not Supported");
    CHECK_STREQ(ptc_http_reason_phrase(299), "");
    CHECK_STREQ(ptc_http_reason_phrase(-1), "");
    for (int s = 100; s < 600; s++) {
        const char *r = ptc_http_reason_phrase(s);
        CHECK(ptc_http_is_field_value(ptc_slice_str(r)));
    }
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_simple_get),
    PTC_TEST(test_body_is_a_slice_of_the_input),
    PTC_TEST(test_pipelined_requests),
    PTC_TEST(test_keep_alive_rules),
    PTC_TEST(test_chunked_with_extensions_and_trailers),
    PTC_TEST(test_expect_100_continue),
    PTC_TEST(test_upgrade_with_trailing_bytes),
    PTC_TEST(test_connect_is_an_upgrade),
    PTC_TEST(test_leading_empty_lines_and_forms),
    PTC_TEST(test_head_storage_is_per_message),
    PTC_TEST(test_trim_between_messages),
    PTC_TEST(test_split_equivalence),
    PTC_TEST(test_reject_content_length_with_transfer_encoding),
    PTC_TEST(test_reject_duplicate_content_length),
    PTC_TEST(test_reject_content_length_not_plain_decimal),
    PTC_TEST(test_reject_invalid_chunk_size),
    PTC_TEST(test_reject_invalid_chunk_extension),
    PTC_TEST(test_reject_missing_crlf_after_chunk_data),
    PTC_TEST(test_reject_bad_chunked_framing_elsewhere),
    PTC_TEST(test_reject_obsolete_line_folding),
    PTC_TEST(test_reject_invalid_header_names),
    PTC_TEST(test_reject_invalid_header_values),
    PTC_TEST(test_reject_transfer_encoding_not_ending_with_chunked),
    PTC_TEST(test_reject_bare_lf),
    PTC_TEST(test_reject_http09_and_other_versions),
    PTC_TEST(test_reject_bad_request_lines),
    PTC_TEST(test_reject_host_problems),
    PTC_TEST(test_fuzz_regressions),
    PTC_TEST(test_limit_head_size),
    PTC_TEST(test_limit_url_length),
    PTC_TEST(test_limit_header_count),
    PTC_TEST(test_limit_trailer_size),
    PTC_TEST(test_eof_inside_a_message),
    PTC_TEST(test_response_content_length_and_chunked),
    PTC_TEST(test_response_no_body_cases),
    PTC_TEST(test_response_interim_and_switching),
    PTC_TEST(test_response_until_close),
    PTC_TEST(test_response_status_lines),
    PTC_TEST(test_response_smuggling_is_502),
    PTC_TEST(test_header_lookup),
    PTC_TEST(test_list_tokens),
    PTC_TEST(test_hop_by_hop),
    PTC_TEST(test_token_and_value_checks),
    PTC_TEST(test_write_request_head),
    PTC_TEST(test_write_response_head),
    PTC_TEST(test_writers_refuse_header_injection),
    PTC_TEST(test_chunk_framing),
    PTC_TEST(test_reason_phrases),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
