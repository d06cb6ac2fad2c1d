/* SPDX-License-Identifier: MIT */
#include "common/buf.h"
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>

static void test_slice_helpers(void)
{
    ptc_slice_t s = ptc_slice_str("Keep-Alive");
    CHECK_EQ(s.len, 10);
    CHECK(ptc_slice_eq(s, "Keep-Alive"));
    CHECK(!ptc_slice_eq(s, "keep-alive"));
    CHECK(ptc_slice_case_eq(s, "keep-alive"));
    CHECK(!ptc_slice_case_eq(s, "keep-aliv"));
    CHECK(ptc_slice_eq(ptc_slice_str(""), ""));
}

static void test_empty_buf_has_no_data_pointer(void)
{
    ptc_buf_t b;
    ptc_buf_init(&b);
    /* Computing NULL + 0 would be undefined behaviour (UBSan reports it): the data pointer
     * of an empty, never-allocated buffer is a valid placeholder. */
    CHECK_NOT_NULL(ptc_buf_data(&b));
    ptc_slice_t s = ptc_buf_slice(&b);
    CHECK_NOT_NULL(s.ptr);
    CHECK_EQ(s.len, 0);
    ptc_buf_dispose(&b);
}

static void test_buf_append_consume(void)
{
    ptc_buf_t b;
    ptc_buf_init(&b);
    CHECK_EQ(b.len, 0);
    ptc_buf_append(&b, "hello ", 6);
    ptc_buf_append(&b, "world", 5);
    CHECK_EQ(b.len, 11);
    CHECK_MEMEQ(ptc_buf_data(&b), "hello world", 11);
    ptc_buf_consume(&b, 6);
    CHECK_EQ(b.len, 5);
    CHECK_MEMEQ(ptc_buf_data(&b), "world", 5);
    ptc_slice_t s = ptc_buf_slice(&b);
    CHECK_EQ(s.len, 5);
    ptc_buf_consume(&b, 5);
    CHECK_EQ(b.len, 0);
    CHECK_EQ(b._off, 0);
    ptc_buf_dispose(&b);
}

static void test_buf_reserve_commit_and_growth(void)
{
    ptc_buf_t b;
    ptc_buf_init(&b);
    uint8_t pattern[100000];
    for (size_t i = 0; i < sizeof(pattern); i++) {
        pattern[i] = (uint8_t)(i * 7 + 3);
    }
    size_t written = 0;
    while (written < sizeof(pattern)) {
        size_t avail = 0;
        uint8_t *dst = ptc_buf_try_reserve(&b, 1000, &avail);
        CHECK_NOT_NULL(dst);
        CHECK_GE(avail, 1000);
        size_t n = sizeof(pattern) - written < 1000 ? sizeof(pattern) - written : 1000;
        memcpy(dst, pattern + written, n);
        ptc_buf_commit(&b, n);
        written += n;
    }
    CHECK_EQ(b.len, sizeof(pattern));
    CHECK_MEMEQ(ptc_buf_data(&b), pattern, sizeof(pattern));
    ptc_buf_dispose(&b);
}

static void test_buf_slides_instead_of_growing(void)
{
    ptc_buf_t b;
    ptc_buf_init(&b);
    uint8_t block[600];
    memset(block, 'x', sizeof(block));
    ptc_buf_append(&b, block, sizeof(block));
    size_t cap = b._cap;
    ptc_buf_consume(&b, 500); /* 100 bytes left at offset 500 */
    /* Needs more than the tail holds but fits once the data moves to the front. */
    size_t avail = 0;
    uint8_t *dst = ptc_buf_try_reserve(&b, cap - 200, &avail);
    CHECK_NOT_NULL(dst);
    CHECK_EQ(b._cap, cap);
    CHECK_EQ(b._off, 0);
    CHECK_EQ(b.len, 100);
    CHECK_MEMEQ(ptc_buf_data(&b), block, 100);
    ptc_buf_reset(&b);
    CHECK_EQ(b.len, 0);
    ptc_buf_dispose(&b);
}

static void test_chunkq_coalesces_small_appends(void)
{
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 64 * 1024, 16 * 1024);
    for (int i = 0; i < 100; i++) {
        ptc_chunkq_append(&q, "0123456789", 10);
    }
    CHECK_EQ(q.queued, 1000);
    CHECK(q.head == q.tail);
    ptc_slice_t out[4];
    CHECK_EQ(ptc_chunkq_peek(&q, out, 4), 1);
    CHECK_EQ(out[0].len, 1000);
    CHECK_MEMEQ(out[0].ptr + 990, "0123456789", 10);
    ptc_chunkq_dispose(&q);
}

static void test_chunkq_large_append_spans_chunks(void)
{
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 1 << 19);
    size_t len = PTC_CHUNK_SIZE * 2 + 123;
    uint8_t *data = malloc(len);
    for (size_t i = 0; i < len; i++) {
        data[i] = (uint8_t)(i % 251);
    }
    ptc_chunkq_append(&q, "ab", 2);
    ptc_chunkq_append(&q, data, len);
    CHECK_EQ(q.queued, len + 2);
    ptc_slice_t out[8];
    size_t n = ptc_chunkq_peek(&q, out, 8);
    CHECK_EQ(n, 3);
    /* Reassemble and compare. */
    uint8_t *all = malloc(len + 2);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(all + off, out[i].ptr, out[i].len);
        off += out[i].len;
    }
    CHECK_EQ(off, len + 2);
    CHECK_MEMEQ(all, "ab", 2);
    CHECK_MEMEQ(all + 2, data, len);
    /* peek is bounded by max */
    CHECK_EQ(ptc_chunkq_peek(&q, out, 1), 1);
    free(all);
    free(data);
    ptc_chunkq_dispose(&q);
}

static void test_chunkq_consume_partial(void)
{
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 100, 10);
    uint8_t big[PTC_CHUNK_SIZE + 10];
    memset(big, 'a', sizeof(big));
    big[PTC_CHUNK_SIZE + 9] = 'z';
    ptc_chunkq_append(&q, big, sizeof(big));
    ptc_chunkq_consume(&q, 5);
    CHECK_EQ(q.queued, sizeof(big) - 5);
    ptc_chunkq_consume(&q, PTC_CHUNK_SIZE - 5); /* exactly the first chunk */
    CHECK_EQ(q.queued, 10);
    ptc_slice_t out[2];
    CHECK_EQ(ptc_chunkq_peek(&q, out, 2), 1);
    CHECK_EQ(out[0].len, 10);
    CHECK_EQ(out[0].ptr[9], 'z');
    ptc_chunkq_consume(&q, 10);
    CHECK_EQ(q.queued, 0);
    CHECK_EQ(ptc_chunkq_peek(&q, out, 2), 0);
    ptc_chunkq_append(&q, "x", 1);
    CHECK_EQ(q.queued, 1);
    ptc_chunkq_dispose(&q);
}

static void test_chunkq_reserve_in_place(void)
{
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1 << 20, 0);
    size_t avail = 0;
    uint8_t *p = ptc_chunkq_try_reserve(&q, 9, &avail);
    CHECK_NOT_NULL(p);
    CHECK_GE(avail, PTC_CHUNK_SIZE);
    memcpy(p, "header:9!", 9);
    ptc_chunkq_commit(&q, 9);
    /* A reservation bigger than the default chunk size gets a chunk of its own. */
    p = ptc_chunkq_try_reserve(&q, 3 * PTC_CHUNK_SIZE, &avail);
    CHECK_NOT_NULL(p);
    CHECK_GE(avail, 3 * PTC_CHUNK_SIZE);
    memset(p, 'q', 3 * PTC_CHUNK_SIZE);
    ptc_chunkq_commit(&q, 3 * PTC_CHUNK_SIZE);
    CHECK_EQ(q.queued, 9 + 3 * PTC_CHUNK_SIZE);
    ptc_chunkq_dispose(&q);
}

static void test_chunkq_water_marks_count_inflight(void)
{
    ptc_chunkq_t q;
    ptc_chunkq_init(&q, 1000, 100);
    CHECK(ptc_chunkq_is_drained(&q));
    CHECK(!ptc_chunkq_is_full(&q));
    uint8_t block[600];
    memset(block, 1, sizeof(block));
    ptc_chunkq_append(&q, block, sizeof(block));
    CHECK(!ptc_chunkq_is_full(&q));
    CHECK(!ptc_chunkq_is_drained(&q));
    size_t len = 0;
    ptc_chunk_t *w1 = ptc_chunkq_detach(&q, &len);
    CHECK_NOT_NULL(w1);
    CHECK_EQ(len, 600);
    CHECK_EQ(q.queued, 0);
    CHECK_EQ(q.inflight, 600);
    ptc_chunkq_append(&q, block, sizeof(block));
    /* 600 in flight + 600 queued: above high water although the queue itself is small. */
    CHECK_EQ(ptc_chunkq_backlog(&q), 1200);
    CHECK(ptc_chunkq_is_full(&q));
    ptc_chunkq_written(&q, 600);
    ptc_chunk_free_list(w1);
    CHECK(!ptc_chunkq_is_full(&q));
    ptc_chunk_t *w2 = ptc_chunkq_detach(&q, &len);
    CHECK_EQ(len, 600);
    ptc_chunkq_written(&q, 600);
    ptc_chunk_free_list(w2);
    CHECK(ptc_chunkq_is_drained(&q));
    CHECK_NULL(ptc_chunkq_detach(&q, &len));
    CHECK_EQ(len, 0);
    ptc_chunkq_dispose(&q);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_slice_helpers),
    PTC_TEST(test_empty_buf_has_no_data_pointer),
    PTC_TEST(test_buf_append_consume),
    PTC_TEST(test_buf_reserve_commit_and_growth),
    PTC_TEST(test_buf_slides_instead_of_growing),
    PTC_TEST(test_chunkq_coalesces_small_appends),
    PTC_TEST(test_chunkq_large_append_spans_chunks),
    PTC_TEST(test_chunkq_consume_partial),
    PTC_TEST(test_chunkq_reserve_in_place),
    PTC_TEST(test_chunkq_water_marks_count_inflight),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
