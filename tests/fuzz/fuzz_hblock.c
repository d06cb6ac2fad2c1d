/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for proto/hblock.c: decodes the input as a REQUEST block and as a RESPONSE
 * block. When a decode succeeds, the size function must give the input's length, encoding the
 * decoded head must give back the input bytes exactly (the format has a single encoding), a
 * field array one short must give ELIMIT, and the input minus its last byte must be refused.
 * The input is copied to an exact-size block so that any read past it is caught.
 */
#include "proto/hblock.h"
#include "tests/fuzz/fuzz.h"

#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS 256

static void check_request(const uint8_t *p, size_t len, ptc_proto_field_t *fields)
{
    ptc_request_head_t req;
    int rc = ptc_hblock_decode_request(p, len, &req, fields, MAX_FIELDS);
    if (rc != 0) {
        if (rc != PTC_PROTO_EHEADER && rc != PTC_PROTO_ELIMIT) {
            abort();
        }
        return;
    }
    if (ptc_hblock_request_size(&req) != len) {
        abort();
    }
    uint8_t *out = malloc(len);
    if (out == NULL || ptc_hblock_encode_request(&req, out, len) != (ssize_t)len ||
        memcmp(out, p, len) != 0 ||
        ptc_hblock_encode_request(&req, out, len - 1) != PTC_PROTO_ESPACE) {
        abort();
    }
    free(out);
    ptc_request_head_t again;
    if (req.header_cnt > 0 &&
        ptc_hblock_decode_request(p, len, &again, fields, req.header_cnt - 1) != PTC_PROTO_ELIMIT) {
        abort();
    }
    if (ptc_hblock_decode_request(p, len - 1, &again, fields, MAX_FIELDS) != PTC_PROTO_EHEADER) {
        abort();
    }
}

static void check_response(const uint8_t *p, size_t len, ptc_proto_field_t *fields)
{
    ptc_response_head_t resp;
    int rc = ptc_hblock_decode_response(p, len, &resp, fields, MAX_FIELDS);
    if (rc != 0) {
        if (rc != PTC_PROTO_EHEADER && rc != PTC_PROTO_ELIMIT) {
            abort();
        }
        return;
    }
    if (ptc_hblock_response_size(&resp) != len) {
        abort();
    }
    uint8_t *out = malloc(len);
    if (out == NULL || ptc_hblock_encode_response(&resp, out, len) != (ssize_t)len ||
        memcmp(out, p, len) != 0 ||
        ptc_hblock_encode_response(&resp, out, len - 1) != PTC_PROTO_ESPACE) {
        abort();
    }
    free(out);
    ptc_response_head_t again;
    if (resp.header_cnt > 0 &&
        ptc_hblock_decode_response(p, len, &again, fields, resp.header_cnt - 1) !=
            PTC_PROTO_ELIMIT) {
        abort();
    }
    if (ptc_hblock_decode_response(p, len - 1, &again, fields, MAX_FIELDS) != PTC_PROTO_EHEADER) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size != 0 ? size : 1);
    ptc_proto_field_t *fields = malloc(MAX_FIELDS * sizeof(*fields));
    if (p == NULL || fields == NULL) {
        abort();
    }
    if (size != 0) {
        memcpy(p, data, size);
    }
    check_request(p, size, fields);
    check_response(p, size, fields);
    free(fields);
    free(p);
    return 0;
}
