/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/http: the pull parser (requests and responses, pipelining, keep-alive,
 * chunked bodies, upgrades, interim responses), limits with their reason and suggested
 * status, split-independence (byte-by-byte feeding gives the same result as one feed), the
 * header helpers and the writers. Request smuggling is in http_smuggling_test.c.
 */
#include "tests/unit/common/http_harness.h"

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
