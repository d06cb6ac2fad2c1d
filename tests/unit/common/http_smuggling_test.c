/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/http, request smuggling: every ambiguous or malformed framing
 * (Content-Length with Transfer-Encoding, repeated or invalid lengths, bad chunk sizes,
 * obs-fold, bare CR and LF, ...) is refused with its stable reason and the status to answer,
 * however the input is split.
 */
#include "tests/unit/common/http_harness.h"

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

static const ptc_test_case_t cases[] = {
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
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
