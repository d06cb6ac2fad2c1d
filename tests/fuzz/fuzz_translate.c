/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for edge/translate.c. Input: byte 0 picks one of four (internal, external)
 * URL pairs, bytes 1-2 seed the chunking, the rest is a response body and a header value.
 *
 * Body: the output of one feed, of pseudo-random chunks and of single bytes must be equal,
 * the held-back tail never exceeds its bound, and a body that does not contain the internal
 * host comes out unchanged. Headers: each translated header name gives 0 exactly when the
 * value is a valid field value, the output is then a valid field value too, and an unchanged
 * value is an exact copy.
 */
#include "common/http.h"
#include "edge/translate.h"
#include "tests/fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

static const char *const pairs[][3] = {
    /* internal URL, external URL, internal host as it appears in URLs */
    {"http://hr.corp.local:8080/app/", "https://apps.example.com/hr/", "hr.corp.local"},
    {"http://hr.corp.local:8080/app/", "https://hr.apps.example.com/", "hr.corp.local"},
    {"http://hr.corp.local/", "https://apps.example.com/hr/", "hr.corp.local"},
    {"https://[fd00::1]/x/", "https://apps.example.com:8443/", "[fd00::1]"},
};

typedef struct out {
    uint8_t *p;
    size_t len;
    size_t cap;
} out_t;

static void drain(ptc_chunkq_t *q, out_t *o)
{
    ptc_slice_t sl[16];
    size_t cnt;
    while ((cnt = ptc_chunkq_peek(q, sl, 16)) > 0) {
        for (size_t i = 0; i < cnt; i++) {
            if (o->len + sl[i].len > o->cap) {
                o->cap = (o->len + sl[i].len) * 2;
                o->p = realloc(o->p, o->cap);
                if (o->p == NULL) {
                    abort();
                }
            }
            memcpy(o->p + o->len, sl[i].ptr, sl[i].len);
            o->len += sl[i].len;
            ptc_chunkq_consume(q, sl[i].len);
        }
    }
}

/* mode 0: one feed; 1: chunks of pseudo-random sizes from `seed`; 2: one byte at a time. */
static out_t run(ptc_translate_t *t, const uint8_t *p, size_t len, int mode, uint32_t seed)
{
    ptc_translate_body_t *s = ptc_translate_body_new(t);
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 0);
    out_t o = {NULL, 0, 0};
    size_t at = 0;
    size_t max_chunk = 1 + (seed & 63);
    while (at < len) {
        size_t n = len - at;
        if (mode == 1) {
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + (seed >> 16) % max_chunk;
            n = n < want ? n : want;
        } else if (mode == 2) {
            n = 1;
        }
        if (ptc_translate_body_feed(s, p + at, n, &q) != 0 ||
            ptc_translate_body_held(s) > ptc_translate_max_held(t)) {
            abort();
        }
        at += n;
        drain(&q, &o);
    }
    if (ptc_translate_body_finish(s, &q) != 0 || ptc_translate_body_held(s) != 0 ||
        ptc_translate_body_feed(s, p, len, &q) != PTC_ESTATE) {
        abort();
    }
    drain(&q, &o);
    ptc_chunkq_dispose(&q);
    ptc_translate_body_free(s);
    return o;
}

static bool contains_ci(const uint8_t *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n && (p[i + k] | 0x20) == (needle[k] | 0x20)) {
            k++;
        }
        if (k == n) {
            return true;
        }
    }
    return false;
}

static void check_headers(const ptc_translate_t *t, const uint8_t *p, size_t len)
{
    static const char *const names[] = {"Location", "Content-Location", "Refresh", "Set-Cookie",
                                        "X-Other"};
    ptc_slice_t value = {p, len};
    bool valid = ptc_http_is_field_value(value);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ptc_buf_t out;
        ptc_buf_init(&out);
        bool changed = false;
        int rc = ptc_translate_header(t, ptc_slice_str(names[i]), value, &out, &changed);
        if (rc != (valid ? 0 : PTC_EHTTP)) {
            abort();
        }
        ptc_slice_t res = ptc_buf_slice(&out);
        if (rc == 0) {
            bool same = res.len == len && (len == 0 || memcmp(res.ptr, p, len) == 0);
            if (!ptc_http_is_field_value(res) || changed == same) {
                abort();
            }
            if (i == 4 && changed) {
                abort();
            }
        } else if (res.len != 0 || changed) {
            abort();
        }
        ptc_buf_dispose(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    const char *const *pair = pairs[data[0] % (sizeof(pairs) / sizeof(pairs[0]))];
    uint32_t seed = (uint32_t)data[1] << 8 | data[2];
    const uint8_t *body = data + 3;
    size_t len = size - 3;

    ptc_translate_t *t = NULL;
    if (ptc_translate_new(pair[0], pair[1], &t) != 0) {
        abort();
    }
    out_t whole = run(t, body, len, 0, seed);
    out_t split = run(t, body, len, 1, seed);
    out_t bytes = run(t, body, len, 2, seed);
    if (split.len != whole.len || bytes.len != whole.len ||
        (whole.len != 0 &&
         (memcmp(split.p, whole.p, whole.len) != 0 || memcmp(bytes.p, whole.p, whole.len) != 0))) {
        abort();
    }
    if (!contains_ci(body, len, pair[2]) &&
        (whole.len != len || (len != 0 && memcmp(whole.p, body, len) != 0))) {
        abort();
    }
    free(whole.p);
    free(split.p);
    free(bytes.p);

    check_headers(t, body, len);
    ptc_translate_unref(t);
    return 0;
}
