/* SPDX-License-Identifier: MIT */
/*
 * A micro-benchmark of the tunnel protocol codecs (proto/frame.h, proto/hblock.h), not a
 * test: it asserts nothing about speed and is never registered with meson test. It measures
 * two figures, each as the median of several timed runs after a warm-up run:
 *
 * - DATA throughput: encode a DATA frame with a 16 KiB payload into a buffer (header plus a
 *   copy of the payload), then decode it back (header checks; the payload is a slice), in a
 *   loop. Reported in GB/s of payload (10^9 bytes per second).
 * - REQUEST header blocks: encode a realistic request head (12 header fields, a 60-byte
 *   target) behind a REQUEST frame header, then decode the frame and the block back into
 *   slices. Reported as encode+decode pairs per second.
 *
 * It depends on proto/ and libc only. Usage: proto_bench [runs] (default 5, odd is best).
 */
#include "proto/frame.h"
#include "proto/hblock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DATA_PAYLOAD_LEN 16384u
#define DATA_ITERATIONS 400000u
#define HBLOCK_ITERATIONS 200000u
#define DEFAULT_RUNS 5
#define MAX_RUNS 99

/* Keeps the compiler from discarding the decoded results. */
static volatile uint64_t sink;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t cnt)
{
    qsort(v, cnt, sizeof(v[0]), cmp_double);
    return cnt % 2 == 1 ? v[cnt / 2] : (v[cnt / 2 - 1] + v[cnt / 2]) / 2;
}

static void die(const char *what, long long code)
{
    fprintf(stderr, "proto_bench: %s failed (%lld)\n", what, code);
    exit(1);
}

/* ---- DATA frames ---- */

/* One timed run: returns the seconds taken by DATA_ITERATIONS encode+decode pairs. */
static double run_data(const uint8_t *payload, uint8_t *frame, size_t cap)
{
    const ptc_frame_limits_t lim = PTC_FRAME_LIMITS_DEFAULT;
    uint64_t acc = 0;
    double t0 = now_s();
    for (uint32_t i = 0; i < DATA_ITERATIONS; i++) {
        uint32_t stream = 1 + (i & 0xff) * 2;
        ssize_t n = ptc_frame_encode_data(frame, cap, stream, 0, payload, DATA_PAYLOAD_LEN);
        if (n != (ssize_t)(PTC_FRAME_HEADER_LEN + DATA_PAYLOAD_LEN)) {
            die("ptc_frame_encode_data", n);
        }
        ptc_frame_t f;
        ssize_t m = ptc_frame_decode(frame, (size_t)n, &lim, &f);
        if (m != n) {
            die("ptc_frame_decode", m);
        }
        acc += f.hdr.length + f.hdr.stream + f.payload[i % DATA_PAYLOAD_LEN];
    }
    double t = now_s() - t0;
    sink += acc;
    return t;
}

/* ---- REQUEST header blocks ---- */

static ptc_proto_str_t str_of(const char *s)
{
    return (ptc_proto_str_t){(const uint8_t *)s, strlen(s)};
}

/* A browser's GET as the edge forwards it: 12 fields, a 60-byte target. */
static const char target[] = "/hr/leave/requests/2024?status=pending&page=12&sort=-created";
static const char *const fields_text[][2] = {
    {"host", "hr.internal.example"},
    {"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/124.0 Safari/537.36"},
    {"accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
    {"accept-language", "en-GB,en;q=0.9,fr;q=0.8"},
    {"accept-encoding", "gzip, deflate, br"},
    {"referer", "https://hr.apps.example.com/hr/leave/"},
    {"cookie", "theme=dark; lang=en; csrftoken=9f86d081884c7d659a2feaa0c55ad015"},
    {"x-forwarded-for", "203.0.113.54"},
    {"x-forwarded-proto", "https"},
    {"x-forwarded-host", "hr.apps.example.com"},
    {"x-request-id", "01HZX3Q8V5J2K9M4N7P6R1S0TA"},
    {"x-portico-user", "alice@example.com"},
};
#define FIELD_CNT (sizeof(fields_text) / sizeof(fields_text[0]))

static void build_request(ptc_request_head_t *req, ptc_proto_field_t *fields)
{
    for (size_t i = 0; i < FIELD_CNT; i++) {
        fields[i].name = str_of(fields_text[i][0]);
        fields[i].value = str_of(fields_text[i][1]);
    }
    *req = (ptc_request_head_t){
        .scheme = PTC_PROTO_SCHEME_HTTPS,
        .validate_tls = true,
        .port = 8443,
        .timeout_ms = 85000,
        .host = str_of("hr.internal.example"),
        .sni = str_of("hr.internal.example"),
        .method = str_of("GET"),
        .target = str_of(target),
        .headers = fields,
        .header_cnt = FIELD_CNT,
    };
}

/* One timed run: returns the seconds taken by HBLOCK_ITERATIONS encode+decode pairs. */
static double run_hblock(const ptc_request_head_t *req, uint8_t *frame, size_t cap)
{
    const ptc_frame_limits_t lim = PTC_FRAME_LIMITS_DEFAULT;
    ptc_proto_field_t decoded_fields[FIELD_CNT];
    uint64_t acc = 0;
    double t0 = now_s();
    for (uint32_t i = 0; i < HBLOCK_ITERATIONS; i++) {
        size_t block = ptc_hblock_request_size(req);
        ptc_frame_header_t hdr = {(uint32_t)block, PTC_FRAME_REQUEST, PTC_FLAG_END_STREAM,
                                  1 + 2 * (i & 0xffff)};
        ssize_t h = ptc_frame_encode_header(frame, cap, &hdr);
        ssize_t n = ptc_hblock_encode_request(req, frame + h, cap - (size_t)h);
        if (h != PTC_FRAME_HEADER_LEN || n != (ssize_t)block) {
            die("encoding the REQUEST", n < 0 ? n : h);
        }
        ptc_frame_t f;
        ssize_t m = ptc_frame_decode(frame, (size_t)(h + n), &lim, &f);
        if (m != h + n) {
            die("ptc_frame_decode", m);
        }
        ptc_request_head_t out;
        int rc =
            ptc_hblock_decode_request(f.payload, f.hdr.length, &out, decoded_fields, FIELD_CNT);
        if (rc != 0) {
            die("ptc_hblock_decode_request", rc);
        }
        acc += out.header_cnt + out.target.len + out.headers[i % FIELD_CNT].value.len;
    }
    double t = now_s() - t0;
    sink += acc;
    return t;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : DEFAULT_RUNS;
    if (runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "usage: %s [runs 1..%d]\n", argv[0], MAX_RUNS);
        return 2;
    }

    /* ---- DATA ---- */
    size_t cap = PTC_FRAME_HEADER_LEN + DATA_PAYLOAD_LEN;
    uint8_t *payload = malloc(DATA_PAYLOAD_LEN);
    uint8_t *frame = malloc(cap);
    if (payload == NULL || frame == NULL) {
        die("malloc", 0);
    }
    for (size_t i = 0; i < DATA_PAYLOAD_LEN; i++) {
        payload[i] = (uint8_t)(i * 131 + 7);
    }
    double secs[MAX_RUNS];
    run_data(payload, frame, cap); /* warm-up */
    for (int r = 0; r < runs; r++) {
        secs[r] = run_data(payload, frame, cap);
    }
    double data_s = median(secs, (size_t)runs);
    double bytes = (double)DATA_PAYLOAD_LEN * DATA_ITERATIONS;

    printf("proto_bench: tunnel protocol v1 codecs (median of %d runs, after 1 warm-up run)\n",
           runs);
    printf("\nDATA frame encode+decode\n");
    printf("  payload per frame        %u bytes (+%d header)\n", DATA_PAYLOAD_LEN,
           PTC_FRAME_HEADER_LEN);
    printf("  frames per run           %u (%.1f MB of payload)\n", DATA_ITERATIONS, bytes / 1e6);
    printf("  time per run             %.3f s (min %.3f, max %.3f)\n", data_s, secs[0],
           secs[runs - 1]);
    printf("  throughput               %.2f GB/s of payload (%.0f ns per frame)\n",
           bytes / data_s / 1e9, data_s / DATA_ITERATIONS * 1e9);
    free(payload);
    free(frame);

    /* ---- REQUEST header blocks ---- */
    ptc_proto_field_t fields[FIELD_CNT];
    ptc_request_head_t req;
    build_request(&req, fields);
    size_t block = ptc_hblock_request_size(&req);
    size_t hcap = PTC_FRAME_HEADER_LEN + block;
    uint8_t *hframe = malloc(hcap);
    if (hframe == NULL) {
        die("malloc", 0);
    }
    run_hblock(&req, hframe, hcap); /* warm-up */
    for (int r = 0; r < runs; r++) {
        secs[r] = run_hblock(&req, hframe, hcap);
    }
    double hblock_s = median(secs, (size_t)runs);
    free(hframe);

    printf("\nREQUEST header block encode+decode (frame header included)\n");
    printf("  request                  GET, %zu-byte target, %zu header fields\n", strlen(target),
           (size_t)FIELD_CNT);
    printf("  header block             %zu bytes (+%d header)\n", block, PTC_FRAME_HEADER_LEN);
    printf("  pairs per run            %u\n", HBLOCK_ITERATIONS);
    printf("  time per run             %.3f s (min %.3f, max %.3f)\n", hblock_s, secs[0],
           secs[runs - 1]);
    printf("  rate                     %.2f million encode+decode per second (%.0f ns each)\n",
           HBLOCK_ITERATIONS / hblock_s / 1e6, hblock_s / HBLOCK_ITERATIONS * 1e9);
    return 0;
}
