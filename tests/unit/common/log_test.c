/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/log: line format and key order, level filtering, context ids, escaping,
 * truncation, redaction, file output with reopen, and that every line parses as JSON.
 */
#include "common/log.h"
#include "tests/support/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

/* ---- helpers ---- */

typedef struct capture {
    char *lines[64];
    size_t cnt;
} capture_t;

static void on_line(void *data, const char *line, size_t len)
{
    capture_t *c = data;
    CHECK(len > 0);
    CHECK_EQ(line[len - 1], '\n');
    /* Exactly one newline, at the end. */
    CHECK(memchr(line, '\n', len - 1) == NULL);
    CHECK_LT(c->cnt, 64);
    char *copy = malloc(len + 1);
    CHECK_NOT_NULL(copy);
    memcpy(copy, line, len);
    copy[len] = '\0';
    c->lines[c->cnt++] = copy;
}

static void capture_free(capture_t *c)
{
    for (size_t i = 0; i < c->cnt; i++) {
        free(c->lines[i]);
    }
    c->cnt = 0;
}

/* Parses a line (with its newline) as one JSON object; fails the case if it is not one. */
static json_t *parse_line(const char *line)
{
    json_error_t e;
    json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        ptc_test_fail(__FILE__, __LINE__, "line is not JSON (%s at %d): %s", e.text, e.column,
                      line);
    }
    CHECK(json_is_object(j));
    return j;
}

static const char *get_str(const json_t *j, const char *key)
{
    const json_t *v = json_object_get(j, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long get_int(const json_t *j, const char *key)
{
    const json_t *v = json_object_get(j, key);
    if (!json_is_integer(v)) {
        ptc_test_fail(__FILE__, __LINE__, "key %s is not an integer", key);
    }
    return json_integer_value(v);
}

/* Reads a whole file into a NUL-terminated heap string. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        ptc_test_fail(__FILE__, __LINE__, "fopen(%s): %s", path, strerror(errno));
    }
    size_t cap = 4 << 20;
    char *buf = malloc(cap);
    CHECK_NOT_NULL(buf);
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Parses every line of a text; returns the number of lines. */
static size_t check_all_lines(char *text)
{
    size_t cnt = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = parse_line(l);
        json_decref(j);
        cnt++;
    }
    return cnt;
}

/* ---- cases ---- */

static void test_line_format_and_key_order(void)
{
    capture_t cap = {0};
    ptc_logger_t *lg = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_line, &cap);
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    ctx.conn = 7;
    PTC_LOG(&ctx, PTC_LOG_INFO, "config_loaded", PTC_LOG_STR("path", "/etc/portico/edge.json"),
            PTC_LOG_INT("neg", -42), PTC_LOG_UINT("big", UINT64_MAX), PTC_LOG_BOOL("ok", 1),
            PTC_LOG_DOUBLE("ratio", 0.25), PTC_LOG_PEER("ua", "curl/8", 6), PTC_LOG_END);
    CHECK_EQ(cap.cnt, 1);
    const char *line = cap.lines[0];

    /* ts first, then level, event, component, ids, fields; all compact. */
    CHECK(strncmp(line, "{\"ts\":\"", 7) == 0);
    const char *ts = line + 7;
    CHECK_EQ(strlen(ts) > 24, 1);
    for (int i = 0; i < 24; i++) {
        char c = ts[i];
        switch (i) {
        case 4:
        case 7:
            CHECK_EQ(c, '-');
            break;
        case 10:
            CHECK_EQ(c, 'T');
            break;
        case 13:
        case 16:
            CHECK_EQ(c, ':');
            break;
        case 19:
            CHECK_EQ(c, '.');
            break;
        case 23:
            CHECK_EQ(c, 'Z');
            break;
        default:
            CHECK(c >= '0' && c <= '9');
        }
    }
    CHECK_CONTAINS(
        line, "Z\",\"level\":\"info\",\"event\":\"config_loaded\",\"component\":\"edge\","
              "\"conn\":7,\"path\":\"/etc/portico/edge.json\",\"neg\":-42,"
              "\"big\":\"18446744073709551615\",\"ok\":true,\"ratio\":0.25,\"ua\":\"curl/8\"}");

    json_t *j = parse_line(line);
    const char *want[] = {"ts",  "level", "event", "component", "conn", "path",
                          "neg", "big",   "ok",    "ratio",     "ua"};
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        CHECK_LT(i, sizeof(want) / sizeof(want[0]));
        CHECK_STREQ(key, want[i]);
        i++;
    }
    CHECK_EQ(i, sizeof(want) / sizeof(want[0]));
    CHECK_EQ(get_int(j, "neg"), -42);
    CHECK_STREQ(get_str(j, "big"), "18446744073709551615");
    json_decref(j);
    capture_free(&cap);
    ptc_logger_free(lg);
}

static int evaluated;

static const char *costly(void)
{
    evaluated++;
    return "x";
}

static void test_level_filtering(void)
{
    capture_t cap = {0};
    ptc_logger_t *lg = ptc_logger_new_sink("edge", PTC_LOG_WARN, on_line, &cap);
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    CHECK(!ptc_log_enabled(&ctx, PTC_LOG_DEBUG));
    CHECK(!ptc_log_enabled(&ctx, PTC_LOG_INFO));
    CHECK(ptc_log_enabled(&ctx, PTC_LOG_WARN));
    CHECK(ptc_log_enabled(&ctx, PTC_LOG_ERROR));

    /* Filtered calls do not even evaluate their fields. */
    PTC_LOG(&ctx, PTC_LOG_INFO, "skipped", PTC_LOG_STR("v", costly()), PTC_LOG_END);
    PTC_LOG(&ctx, PTC_LOG_DEBUG, "skipped", PTC_LOG_STR("v", costly()), PTC_LOG_END);
    CHECK_EQ(evaluated, 0);
    CHECK_EQ(cap.cnt, 0);
    PTC_LOG(&ctx, PTC_LOG_WARN, "kept", PTC_LOG_STR("v", costly()), PTC_LOG_END);
    PTC_LOG(&ctx, PTC_LOG_ERROR, "kept", PTC_LOG_END);
    CHECK_EQ(evaluated, 1);
    CHECK_EQ(cap.cnt, 2);
    CHECK_CONTAINS(cap.lines[0], "\"level\":\"warn\"");
    CHECK_CONTAINS(cap.lines[1], "\"level\":\"error\"");

    ptc_logger_set_level(lg, PTC_LOG_DEBUG);
    CHECK_EQ(ptc_logger_level(lg), PTC_LOG_DEBUG);
    ptc_log_write(&ctx, PTC_LOG_DEBUG, "now_kept", NULL);
    CHECK_EQ(cap.cnt, 3);
    CHECK_CONTAINS(cap.lines[2], "\"level\":\"debug\",\"event\":\"now_kept\"");

    /* No logger, or no context: nothing happens. */
    ptc_log_ctx_t none;
    ptc_log_ctx_init(&none, NULL);
    CHECK(!ptc_log_enabled(&none, PTC_LOG_ERROR));
    CHECK(!ptc_log_enabled(NULL, PTC_LOG_ERROR));
    PTC_LOG(&none, PTC_LOG_ERROR, "nowhere", PTC_LOG_END);
    ptc_log_write(NULL, PTC_LOG_ERROR, "nowhere", NULL);
    CHECK_EQ(cap.cnt, 3);
    capture_free(&cap);
    ptc_logger_free(lg);
}

static void test_context_ids_and_derive(void)
{
    capture_t cap = {0};
    ptc_logger_t *lg = ptc_logger_new_sink("connector", PTC_LOG_DEBUG, on_line, &cap);
    ptc_log_ctx_t tunnel;
    ptc_log_ctx_init(&tunnel, lg);
    tunnel.tunnel = 12;
    ptc_log_ctx_set_peer(&tunnel, "203.0.113.5:443");
    tunnel.action = "handshaking";

    ptc_log_ctx_t stream;
    ptc_log_ctx_derive(&stream, &tunnel);
    stream.stream = 3;
    stream.action = NULL;
    ptc_log_ctx_set_req(&stream, "r-5f2a");

    PTC_LOG(&tunnel, PTC_LOG_INFO, "tunnel_up", PTC_LOG_END);
    PTC_LOG(&stream, PTC_LOG_INFO, "stream_open", PTC_LOG_UINT("window", 262144), PTC_LOG_END);
    CHECK_EQ(cap.cnt, 2);
    CHECK_CONTAINS(cap.lines[0], "\"component\":\"connector\",\"tunnel\":12,"
                                 "\"peer\":\"203.0.113.5:443\",\"action\":\"handshaking\"}");
    CHECK_CONTAINS(cap.lines[1], "\"component\":\"connector\",\"tunnel\":12,\"stream\":3,"
                                 "\"req\":\"r-5f2a\",\"peer\":\"203.0.113.5:443\","
                                 "\"window\":262144}");
    json_t *j = parse_line(cap.lines[0]);
    CHECK_NULL(json_object_get(j, "conn"));
    CHECK_NULL(json_object_get(j, "stream"));
    CHECK_NULL(json_object_get(j, "req"));
    json_decref(j);

    /* Setters cut long values and NULL clears. */
    char longid[200];
    memset(longid, 'q', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    ptc_log_ctx_set_req(&stream, longid);
    CHECK_EQ(strlen(stream.req), PTC_LOG_REQ_CAP - 1);
    ptc_log_ctx_set_req(&stream, NULL);
    CHECK_STREQ(stream.req, "");
    ptc_log_ctx_set_peer(&stream, NULL);
    CHECK_STREQ(stream.peer, "");
    capture_free(&cap);
    ptc_logger_free(lg);
}

static void test_peer_addr(void)
{
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, NULL);
    struct sockaddr_in in;
    CHECK_OK(uv_ip4_addr("192.0.2.10", 8443, &in));
    CHECK_OK(ptc_log_ctx_set_peer_addr(&ctx, (const struct sockaddr *)&in));
    CHECK_STREQ(ctx.peer, "192.0.2.10:8443");
    struct sockaddr_in6 in6;
    CHECK_OK(uv_ip6_addr("2001:db8::1", 443, &in6));
    CHECK_OK(ptc_log_ctx_set_peer_addr(&ctx, (const struct sockaddr *)&in6));
    CHECK_STREQ(ctx.peer, "[2001:db8::1]:443");
    CHECK_OK(uv_ip6_addr("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 65535, &in6));
    CHECK_OK(ptc_log_ctx_set_peer_addr(&ctx, (const struct sockaddr *)&in6));
    CHECK_STREQ(ctx.peer, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    struct sockaddr un = {.sa_family = AF_UNIX};
    CHECK_EQ(ptc_log_ctx_set_peer_addr(&ctx, &un), UV_EAFNOSUPPORT);
    CHECK_STREQ(ctx.peer, "");
}

static void test_redaction(void)
{
    capture_t cap = {0};
    ptc_logger_t *lg = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_line, &cap);
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    const char *secret = "s3cr3t-VALUE";
    PTC_LOG(&ctx, PTC_LOG_INFO, "headers", PTC_LOG_STR("Authorization", secret),
            PTC_LOG_PEER("cookie", secret, strlen(secret)), PTC_LOG_STR("Set-Cookie", secret),
            PTC_LOG_STR("access_token", secret), PTC_LOG_STR("ID_TOKEN", secret),
            PTC_LOG_STR("client_secret", secret), PTC_LOG_STR("password", secret),
            PTC_LOG_STR("db_passwd", secret), PTC_LOG_STR("private-key", secret),
            PTC_LOG_STR("x-portico-assertion", secret), PTC_LOG_STR("code_verifier", secret),
            PTC_LOG_STR("proxy-authorization", secret), PTC_LOG_INT("token_len", 12345678),
            PTC_LOG_STR("host", "hr.example.com"), PTC_LOG_END);
    CHECK_EQ(cap.cnt, 1);
    CHECK(strstr(cap.lines[0], "s3cr3t") == NULL);
    CHECK(strstr(cap.lines[0], "12345678") == NULL);
    json_t *j = parse_line(cap.lines[0]);
    const char *keys[] = {"Authorization", "cookie",
                          "Set-Cookie",    "access_token",
                          "ID_TOKEN",      "client_secret",
                          "password",      "db_passwd",
                          "private-key",   "x-portico-assertion",
                          "code_verifier", "proxy-authorization",
                          "token_len"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        CHECK_STREQ(get_str(j, keys[i]), "[redacted]");
    }
    CHECK_STREQ(get_str(j, "host"), "hr.example.com");
    json_decref(j);

    CHECK(ptc_log_key_is_secret("Cookie"));
    CHECK(ptc_log_key_is_secret("refresh_token"));
    CHECK(ptc_log_key_is_secret("API-KEY"));
    CHECK(ptc_log_key_is_secret("session_key_id"));
    CHECK(!ptc_log_key_is_secret("host"));
    CHECK(!ptc_log_key_is_secret("path"));
    CHECK(!ptc_log_key_is_secret("user"));
    CHECK(!ptc_log_key_is_secret("status"));
    capture_free(&cap);
    ptc_logger_free(lg);
}

static void test_escaping(void)
{
    capture_t cap = {0};
    ptc_logger_t *lg = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_line, &cap);
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    /* quote, backslash, newline, tab, NUL (replaced), ESC, DEL, valid 2- and 3-byte UTF-8, then
     * invalid bytes: a lone continuation, an overlong '/', a surrogate, a cut sequence. */
    static const char raw[] = "a\"b\\c\nd\te\0f\x1b"
                              "g\x7f"
                              "h\xc3\xa9i\xe2\x82\xac"
                              "j\x80k\xc0\xafl\xed\xa0\x80m\xe2\x82";
    PTC_LOG(&ctx, PTC_LOG_INFO, "escape", PTC_LOG_PEER("ua", raw, sizeof(raw) - 1),
            PTC_LOG_STR("s", "line1\r\nline2"), PTC_LOG_STR("nul", NULL),
            PTC_LOG_UINT("max63", INT64_MAX), PTC_LOG_END);
    CHECK_EQ(cap.cnt, 1);
    CHECK_CONTAINS(cap.lines[0], "\"ua\":\"a\\\"b\\\\c\\nd\\te\xef\xbf\xbd"
                                 "f\\u001bg\\u007fh\xc3\xa9i"
                                 "\xe2\x82\xacj\xef\xbf\xbdk\xef\xbf\xbd\xef\xbf\xbdl\xef\xbf\xbd"
                                 "\xef\xbf\xbd\xef\xbf\xbdm\xef\xbf\xbd\xef\xbf\xbd\"");
    json_t *j = parse_line(cap.lines[0]);
    CHECK_STREQ(get_str(j, "s"), "line1\r\nline2");
    CHECK(json_is_null(json_object_get(j, "nul")));
    CHECK_EQ(get_int(j, "max63"), INT64_MAX);
    json_decref(j);

    /* The event name and context strings are escaped too. */
    ptc_log_ctx_set_req(&ctx, "id\"\n");
    ptc_log_ctx_set_peer(&ctx, "\xff");
    PTC_LOG(&ctx, PTC_LOG_INFO, "ev\"il", PTC_LOG_END);
    CHECK_EQ(cap.cnt, 2);
    j = parse_line(cap.lines[1]);
    CHECK_STREQ(get_str(j, "event"), "ev\"il");
    CHECK_STREQ(get_str(j, "req"), "id\"\n");
    CHECK_STREQ(get_str(j, "peer"), "\xef\xbf\xbd");
    json_decref(j);
    capture_free(&cap);
    ptc_logger_free(lg);
}

static void test_truncation(void)
{
    capture_t cap = {0};
    ptc_logger_t *lg = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_line, &cap);
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    char buf[400];
    memset(buf, 'a', sizeof(buf));

    char exact[257];
    memcpy(exact, buf, 256);
    exact[256] = '\0';
    /* 255 ASCII bytes then a 2-byte character: the cut falls before the character. */
    char straddle[258];
    memcpy(straddle, buf, 255);
    memcpy(straddle + 255, "\xc3\xa9x", 3);
    straddle[257] = '\0';
    PTC_LOG(&ctx, PTC_LOG_INFO, "cut", PTC_LOG_PEER("long", buf, sizeof(buf)),
            PTC_LOG_STR("exact", exact), PTC_LOG_STR("straddle", straddle), PTC_LOG_END);
    CHECK_EQ(cap.cnt, 1);
    json_t *j = parse_line(cap.lines[0]);
    const char *s = get_str(j, "long");
    CHECK_EQ(strlen(s), 256 + 3);
    CHECK(memcmp(s, buf, 256) == 0);
    CHECK_STREQ(s + 256, "\xe2\x80\xa6");
    CHECK_STREQ(get_str(j, "exact"), exact);
    s = get_str(j, "straddle");
    CHECK_EQ(strlen(s), 255 + 3);
    CHECK_STREQ(s + 255, "\xe2\x80\xa6");
    json_decref(j);
    capture_free(&cap);
    ptc_logger_free(lg);
}

static void test_escape_helper(void)
{
    char out[16];
    CHECK_EQ(ptc_log_escape(out, sizeof(out), "a\"b", 3, 64), 4);
    CHECK_STREQ(out, "a\\\"b");
    /* Whole escapes only: "\u0001" (6 bytes) does not fit after 10 bytes in 15. */
    CHECK_EQ(ptc_log_escape(out, sizeof(out), "0123456789\x01", 11, 64), 10);
    CHECK_STREQ(out, "0123456789");
    /* Cut by max: marker appended. */
    CHECK_EQ(ptc_log_escape(out, sizeof(out), "abcdef", 6, 3), 6);
    CHECK_STREQ(out, "abc\xe2\x80\xa6");
    CHECK_EQ(ptc_log_escape(out, 0, "abc", 3, 64), 0);
    CHECK_EQ(ptc_log_escape(out, 1, "abc", 3, 64), 0);
    CHECK_STREQ(out, "");
}

static void test_error_and_special_values(void)
{
    capture_t cap = {0};
    ptc_logger_t *lg = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_line, &cap);
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    PTC_LOG(&ctx, PTC_LOG_ERROR, "config_invalid", PTC_LOG_ERR(PTC_ECONFIG),
            PTC_LOG_DOUBLE("nan", NAN), PTC_LOG_DOUBLE("inf", INFINITY),
            PTC_LOG_INT("min", INT64_MIN), PTC_LOG_BOOL("no", 0), PTC_LOG_ERR(UV_ECONNREFUSED),
            PTC_LOG_END);
    CHECK_EQ(cap.cnt, 1);
    CHECK_CONTAINS(cap.lines[0], "\"err\":\"PTC_ECONFIG\",\"err_code\":-10005,\"nan\":null,"
                                 "\"inf\":null,\"min\":-9223372036854775808,\"no\":false,"
                                 "\"field_err\":\"ECONNREFUSED\",\"field_err_code\":");
    json_t *j = parse_line(cap.lines[0]);
    CHECK_EQ(get_int(j, "field_err_code"), UV_ECONNREFUSED);
    json_decref(j);
    capture_free(&cap);
    ptc_logger_free(lg);
}

static void test_reserved_keys_are_renamed(void)
{
    capture_t cap = {0};
    ptc_logger_t *lg = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_line, &cap);
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    ctx.tunnel = 4;
    PTC_LOG(&ctx, PTC_LOG_INFO, "dup", PTC_LOG_STR("level", "x"), PTC_LOG_UINT("tunnel", 9),
            PTC_LOG_UINT("stream", 5), PTC_LOG_STR("ts", "y"), PTC_LOG_END);
    CHECK_EQ(cap.cnt, 1);
    /* parse_line rejects duplicate keys. */
    json_t *j = parse_line(cap.lines[0]);
    CHECK_STREQ(get_str(j, "level"), "info");
    CHECK_STREQ(get_str(j, "field_level"), "x");
    CHECK_EQ(get_int(j, "tunnel"), 4);
    CHECK_EQ(get_int(j, "field_tunnel"), 9);
    /* The context has no stream id, so the field keeps its name. */
    CHECK_EQ(get_int(j, "stream"), 5);
    CHECK_STREQ(get_str(j, "field_ts"), "y");
    json_decref(j);
    capture_free(&cap);
    ptc_logger_free(lg);
}

static void test_huge_line_stays_valid(void)
{
    capture_t cap = {0};
    ptc_logger_t *lg = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_line, &cap);
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    enum { N = 400 };
    ptc_log_field_t *fields = calloc(N + 1, sizeof(*fields));
    CHECK_NOT_NULL(fields);
    char ctl[256];
    memset(ctl, 0x01, sizeof(ctl)); /* each byte escapes to 6: about 1.5 KiB per field */
    char keys[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        fields[i] = PTC_LOG_PEER(keys[i], ctl, sizeof(ctl));
    }
    fields[N] = PTC_LOG_END;
    ptc_log_write(&ctx, PTC_LOG_INFO, "huge", fields);
    CHECK_EQ(cap.cnt, 1);
    size_t len = strlen(cap.lines[0]);
    CHECK_LE(len, 64 * 1024);
    CHECK_GT(len, 32 * 1024);
    json_t *j = parse_line(cap.lines[0]);
    CHECK_NOT_NULL(json_object_get(j, "k0"));
    CHECK_NULL(json_object_get(j, "k399"));
    json_decref(j);
    free(fields);
    capture_free(&cap);
    ptc_logger_free(lg);
}

static void test_random_bytes_always_valid_json(void)
{
    capture_t cap = {0};
    ptc_logger_t *lg = ptc_logger_new_sink("edge", PTC_LOG_DEBUG, on_line, &cap);
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    uint32_t seed = 12345;
    uint8_t bytes[300];
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(round % 300);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            bytes[i] = (uint8_t)(seed >> 16);
        }
        PTC_LOG(&ctx, PTC_LOG_INFO, "rand", PTC_LOG_PEER("v", bytes, len), PTC_LOG_END);
        CHECK_EQ(cap.cnt, 1);
        json_t *j = parse_line(cap.lines[0]);
        CHECK(json_is_string(json_object_get(j, "v")));
        json_decref(j);
        capture_free(&cap);
    }
    ptc_logger_free(lg);
}

static void test_level_names(void)
{
    ptc_log_level_t lv = PTC_LOG_ERROR;
    CHECK_OK(ptc_log_level_parse("debug", &lv));
    CHECK_EQ(lv, PTC_LOG_DEBUG);
    CHECK_OK(ptc_log_level_parse("warn", &lv));
    CHECK_EQ(lv, PTC_LOG_WARN);
    CHECK_EQ(ptc_log_level_parse("verbose", &lv), PTC_ECONFIG);
    CHECK_EQ(ptc_log_level_parse("INFO", &lv), PTC_ECONFIG);
    CHECK_EQ(ptc_log_level_parse(NULL, &lv), PTC_ECONFIG);
    CHECK_EQ(lv, PTC_LOG_WARN);
    CHECK_STREQ(ptc_log_level_name(PTC_LOG_INFO), "info");
    CHECK_STREQ(ptc_log_level_name((ptc_log_level_t)9), "unknown");
    CHECK_STREQ(ptc_log_level_names[3], "error");
    CHECK_NULL(ptc_log_level_names[4]);
}

static void test_file_output_and_reopen(void)
{
    char path[512];
    char rotated[512];
    snprintf(path, sizeof(path), "%s/edge.log", ptc_test_tmpdir());
    snprintf(rotated, sizeof(rotated), "%s/edge.log.1", ptc_test_tmpdir());
    umask(022);
    ptc_logger_t *lg = NULL;
    CHECK_OK(ptc_logger_new(&lg, "edge", PTC_LOG_INFO, path));
    CHECK_NOT_NULL(lg);
    struct stat st;
    CHECK_OK(stat(path, &st));
    CHECK_EQ(st.st_mode & 0777, 0640);

    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    PTC_LOG(&ctx, PTC_LOG_INFO, "before_rotation", PTC_LOG_END);
    CHECK_OK(rename(path, rotated));
    PTC_LOG(&ctx, PTC_LOG_INFO, "still_old_file", PTC_LOG_END);
    CHECK_OK(ptc_logger_reopen(lg));
    PTC_LOG(&ctx, PTC_LOG_INFO, "after_rotation", PTC_LOG_END);

    char *old_text = slurp(rotated);
    CHECK_CONTAINS(old_text, "\"event\":\"before_rotation\"");
    CHECK_CONTAINS(old_text, "\"event\":\"still_old_file\"");
    CHECK(strstr(old_text, "after_rotation") == NULL);
    CHECK_EQ(check_all_lines(old_text), 2);
    free(old_text);

    char *new_text = slurp(path);
    CHECK_CONTAINS(new_text, "\"event\":\"log_reopened\"");
    CHECK_CONTAINS(new_text, "\"event\":\"after_rotation\"");
    CHECK(strstr(new_text, "before_rotation") == NULL);
    CHECK_EQ(check_all_lines(new_text), 2);
    free(new_text);

    /* Reopen appends to an existing file rather than truncating it. */
    CHECK_OK(ptc_logger_reopen(lg));
    new_text = slurp(path);
    CHECK_EQ(check_all_lines(new_text), 3);
    free(new_text);
    CHECK_EQ(ptc_logger_dropped(lg), 0);
    ptc_logger_free(lg);
}

static void test_reopen_failure_keeps_old_file(void)
{
    char dir[512];
    char path[600];
    snprintf(dir, sizeof(dir), "%s/logs", ptc_test_tmpdir());
    snprintf(path, sizeof(path), "%s/connector.log", dir);
    CHECK_OK(mkdir(dir, 0700));
    ptc_logger_t *lg = NULL;
    CHECK_OK(ptc_logger_new(&lg, "connector", PTC_LOG_INFO, path));
    /* Unlink the file and its directory: open() now fails with ENOENT, while the old
     * descriptor still works. */
    int keep = open(path, O_RDONLY);
    CHECK_GE(keep, 0);
    CHECK_OK(unlink(path));
    CHECK_OK(rmdir(dir));
    CHECK_EQ(ptc_logger_reopen(lg), UV_ENOENT);
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    PTC_LOG(&ctx, PTC_LOG_INFO, "still_logging", PTC_LOG_END);

    char text[4096];
    ssize_t n = pread(keep, text, sizeof(text) - 1, 0);
    CHECK_GT(n, 0);
    text[n] = '\0';
    close(keep);
    CHECK_CONTAINS(text, "\"level\":\"error\",\"event\":\"log_reopen_failed\"");
    CHECK_CONTAINS(text, "\"err\":\"ENOENT\"");
    CHECK_CONTAINS(text, "\"event\":\"still_logging\"");
    CHECK_EQ(check_all_lines(text), 2);
    ptc_logger_free(lg);
}

static void test_new_fails_on_bad_path(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/missing/dir/edge.log", ptc_test_tmpdir());
    ptc_logger_t *lg = (ptc_logger_t *)&path; /* must be reset to NULL */
    CHECK_EQ(ptc_logger_new(&lg, "edge", PTC_LOG_INFO, path), UV_ENOENT);
    CHECK_NULL(lg);
}

static void test_stdout_logger(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/stdout.txt", ptc_test_tmpdir());
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK_GE(fd, 0);
    CHECK_GE(dup2(fd, STDOUT_FILENO), 0);
    close(fd);

    ptc_logger_t *lg = NULL;
    CHECK_OK(ptc_logger_new(&lg, "cli", PTC_LOG_DEBUG, NULL));
    ptc_log_ctx_t ctx;
    ptc_log_ctx_init(&ctx, lg);
    PTC_LOG(&ctx, PTC_LOG_DEBUG, "to_stdout", PTC_LOG_STR("k", "v"), PTC_LOG_END);
    /* Reopen is a no-op for stdout and writes nothing. */
    CHECK_OK(ptc_logger_reopen(lg));
    ptc_logger_free(lg);

    /* Freeing the logger must not close stdout. */
    CHECK_GE(fcntl(STDOUT_FILENO, F_GETFD), 0);
    CHECK_GE(dup2(saved, STDOUT_FILENO), 0);
    close(saved);
    char *text = slurp(path);
    CHECK_CONTAINS(text, "\"component\":\"cli\",\"k\":\"v\"}\n");
    CHECK_EQ(check_all_lines(text), 1);
    free(text);
}

/* Several processes append to one file at once: every line must arrive whole. */
static void test_lines_never_interleave(void)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/shared.log", ptc_test_tmpdir());
    enum { PROCS = 4, LINES = 200 };
    char big[3000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        CHECK_GE(pid, 0);
        if (pid == 0) {
            ptc_logger_t *lg = NULL;
            if (ptc_logger_new(&lg, "edge", PTC_LOG_INFO, path) != 0) {
                _exit(1);
            }
            ptc_log_ctx_t ctx;
            ptc_log_ctx_init(&ctx, lg);
            ctx.conn = (uint64_t)p + 1;
            for (int i = 0; i < LINES; i++) {
                /* 256-byte values, several per line: lines of about 1.5 KiB. */
                PTC_LOG(&ctx, PTC_LOG_INFO, "burst", PTC_LOG_INT("i", i), PTC_LOG_STR("a", big),
                        PTC_LOG_STR("b", big), PTC_LOG_STR("c", big), PTC_LOG_STR("d", big),
                        PTC_LOG_STR("e", big), PTC_LOG_END);
            }
            ptc_logger_free(lg);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        CHECK_GE(wait(&status), 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    char *text = slurp(path);
    CHECK_EQ(check_all_lines(text), PROCS * LINES);
    free(text);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_line_format_and_key_order),
    PTC_TEST(test_level_filtering),
    PTC_TEST(test_context_ids_and_derive),
    PTC_TEST(test_peer_addr),
    PTC_TEST(test_redaction),
    PTC_TEST(test_escaping),
    PTC_TEST(test_truncation),
    PTC_TEST(test_escape_helper),
    PTC_TEST(test_error_and_special_values),
    PTC_TEST(test_reserved_keys_are_renamed),
    PTC_TEST(test_huge_line_stays_valid),
    PTC_TEST(test_random_bytes_always_valid_json),
    PTC_TEST(test_level_names),
    PTC_TEST(test_file_output_and_reopen),
    PTC_TEST(test_reopen_failure_keeps_old_file),
    PTC_TEST(test_new_fails_on_bad_path),
    PTC_TEST(test_stdout_logger),
    PTC_TEST(test_lines_never_interleave),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
