/* SPDX-License-Identifier: MIT */
/*
 * Backend request and response translation (see upstream.h). Field names are compared
 * case-insensitively (§5.4 rule 4); the request's fields keep their order and case.
 */
#include "connector/upstream.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "proto/proto.h"

static ptc_slice_t as_slice(ptc_proto_str_t s)
{
    ptc_slice_t out = {s.ptr, s.len};
    return out;
}

/* Strictly a decimal number without sign or white space, as Content-Length must be. */
static bool parse_length(ptc_slice_t v, uint64_t *out)
{
    if (v.len == 0 || v.len > 19) {
        return false;
    }
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') {
            return false;
        }
        n = n * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    *out = n;
    return true;
}

uint32_t ptc_upstream_prepare(const ptc_request_head_t *head, bool end_stream,
                              ptc_upstream_req_t *out)
{
    memset(out, 0, sizeof(*out));
    static const char *const forbidden[] = {"connection", "keep-alive", "proxy-connection", "te",
                                            "transfer-encoding"};
    size_t hosts = 0;
    size_t lengths = 0;
    size_t upgrades = 0;
    uint64_t length = 0;
    for (size_t i = 0; i < head->header_cnt; i++) {
        ptc_slice_t name = as_slice(head->headers[i].name);
        for (size_t k = 0; k < sizeof(forbidden) / sizeof(forbidden[0]); k++) {
            if (ptc_slice_case_eq(name, forbidden[k])) {
                return PTC_WIRE_HEADER_ERROR;
            }
        }
        if (ptc_slice_case_eq(name, "upgrade")) {
            /* §5.5 rule 2: only with the UPGRADE flag. */
            if (!head->upgrade) {
                return PTC_WIRE_HEADER_ERROR;
            }
            upgrades++;
        } else if (ptc_slice_case_eq(name, "host")) {
            hosts++;
        } else if (ptc_slice_case_eq(name, "content-length")) {
            lengths++;
            if (!parse_length(as_slice(head->headers[i].value), &length)) {
                return PTC_WIRE_HEADER_ERROR;
            }
        }
    }
    /* §5.5 rules 1 and 4; a second Content-Length is ambiguous framing. */
    if (hosts != 1 || lengths > 1 || (head->upgrade && (upgrades != 1 || end_stream))) {
        return PTC_WIRE_HEADER_ERROR;
    }
    size_t cnt = head->header_cnt + (head->upgrade ? 1 : 0);
    out->headers = calloc(cnt > 0 ? cnt : 1, sizeof(ptc_http_header_t));
    if (out->headers == NULL) {
        return PTC_WIRE_INTERNAL_ERROR;
    }
    for (size_t i = 0; i < head->header_cnt; i++) {
        ptc_slice_t name = as_slice(head->headers[i].name);
        /* The client writes Content-Length itself from the body mode. */
        if (ptc_slice_case_eq(name, "content-length")) {
            continue;
        }
        out->headers[out->header_cnt].name = name;
        out->headers[out->header_cnt].value = as_slice(head->headers[i].value);
        out->header_cnt++;
    }
    if (head->upgrade) {
        out->headers[out->header_cnt].name = ptc_slice_str("connection");
        out->headers[out->header_cnt].value = ptc_slice_str("upgrade");
        out->header_cnt++;
    }
    if (end_stream) {
        out->body_mode = PTC_HTTP_CLIENT_BODY_NONE;
        /* A declared length with no body would be a lie (§5.5 rule 3). */
        if (lengths == 1 && length != 0) {
            ptc_upstream_req_dispose(out);
            return PTC_WIRE_PROTOCOL_ERROR;
        }
        if (lengths == 1) {
            out->body_mode = PTC_HTTP_CLIENT_BODY_LENGTH;
            out->content_length = 0;
        }
    } else if (lengths == 1) {
        out->body_mode = PTC_HTTP_CLIENT_BODY_LENGTH;
        out->content_length = length;
    } else if (head->upgrade) {
        /* After a 101 the bytes go through the pipe; before it, an upgrade request has no
         * body of its own. */
        out->body_mode = PTC_HTTP_CLIENT_BODY_NONE;
    } else {
        out->body_mode = PTC_HTTP_CLIENT_BODY_CHUNKED;
    }
    return 0;
}

void ptc_upstream_req_dispose(ptc_upstream_req_t *u)
{
    free(u->headers);
    memset(u, 0, sizeof(*u));
}

size_t ptc_upstream_response_fields(const ptc_http_head_t *head, bool keep_upgrade,
                                    ptc_proto_field_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < head->header_cnt; i++) {
        ptc_slice_t name = head->headers[i].name;
        bool upgrade = ptc_slice_case_eq(name, "upgrade");
        if (ptc_http_is_hop_by_hop(head->headers, head->header_cnt, name) &&
            !(upgrade && keep_upgrade)) {
            continue;
        }
        out[n].name.ptr = name.ptr;
        out[n].name.len = name.len;
        out[n].value.ptr = head->headers[i].value.ptr;
        out[n].value.len = head->headers[i].value.len;
        n++;
    }
    return n;
}

uint32_t ptc_upstream_error_code(int err, ptc_http_client_phase_t phase)
{
    switch (err) {
    case PTC_EDNS:
        return PTC_WIRE_BACKEND_DNS;
    case PTC_ECERT:
    case PTC_ECERTNAME:
    case PTC_EPIN:
    case PTC_ETLS:
        return PTC_WIRE_BACKEND_TLS;
    case PTC_ETIMEOUT:
        return PTC_WIRE_BACKEND_TIMEOUT;
    case PTC_EHTTP:
    case PTC_ELIMIT:
    case UV_EOF:
        return PTC_WIRE_BACKEND_RESET;
    case PTC_ECLOSED:
    case UV_ECANCELED:
        return PTC_WIRE_CANCEL;
    case PTC_ENOMEM:
        return PTC_WIRE_INTERNAL_ERROR;
    default:
        break;
    }
    /* Any other system error: before a connection existed it is a refusal (ECONNREFUSED,
     * ENETUNREACH, EHOSTUNREACH...), afterwards the backend went away. */
    return phase == PTC_HTTP_CLIENT_PHASE_CONNECT ? PTC_WIRE_BACKEND_REFUSED
                                                  : PTC_WIRE_BACKEND_RESET;
}
