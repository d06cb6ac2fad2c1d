/* SPDX-License-Identifier: MIT */
/*
 * POST /.portico/v1/register (see register.h). The checks run in the order of the answers
 * of docs/protocol.md §12.3: method (405), attempts (429), content type (415), size (413),
 * then the body (400) and the token (401/410). The body is collected whole (it is small)
 * and processed when it ends; the state's redemption is synchronous.
 *
 * The attempt limiter is a small table of client addresses with a one-minute window of
 * failed attempts. It only counts refusals, so a busy site registering many connectors from
 * one address is never slowed down; the oldest entry makes room for a new address.
 */
#include "edge/register.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/net.h"

#define LIMITER_SLOTS 256

typedef struct limiter_slot {
    char addr[PTC_NET_ADDRSTRLEN];
    uint64_t window_start;
    uint32_t failures;
} limiter_slot_t;

struct ptc_register_limiter {
    limiter_slot_t slots[LIMITER_SLOTS];
};

typedef struct reg_ctx {
    ptc_buf_t body;
    bool too_large;
} reg_ctx_t;

/* ---- attempt limiter ---- */

/* The client address without its port ("203.0.113.5", "[2001:db8::1]"). */
static void addr_key(const char *peer, char *out, size_t cap)
{
    snprintf(out, cap, "%s", peer);
    char *colon = strrchr(out, ':');
    if (colon != NULL && (out[0] != '[' || (colon > out && colon[-1] == ']'))) {
        *colon = '\0';
    }
}

static limiter_slot_t *limiter_find(ptc_edge_t *edge, const char *peer, bool create, uint64_t now)
{
    if (edge->register_limiter == NULL) {
        if (!create) {
            return NULL;
        }
        edge->register_limiter = ptc_xcalloc(1, sizeof(*edge->register_limiter));
    }
    char key[PTC_NET_ADDRSTRLEN];
    addr_key(peer, key, sizeof(key));
    /* The slot to reuse: an empty one, else the one whose window began first. */
    limiter_slot_t *victim = NULL;
    for (size_t i = 0; i < LIMITER_SLOTS; i++) {
        limiter_slot_t *s = &edge->register_limiter->slots[i];
        if (s->addr[0] == '\0') {
            if (victim == NULL || victim->addr[0] != '\0') {
                victim = s;
            }
            continue;
        }
        if (strcmp(s->addr, key) == 0) {
            if (now - s->window_start >= PTC_REGISTER_WINDOW_MS) {
                s->window_start = now;
                s->failures = 0;
            }
            return s;
        }
        if (victim == NULL || (victim->addr[0] != '\0' && s->window_start < victim->window_start)) {
            victim = s;
        }
    }
    if (!create) {
        return NULL;
    }
    snprintf(victim->addr, sizeof(victim->addr), "%s", key);
    victim->window_start = now;
    victim->failures = 0;
    return victim;
}

static bool limited(ptc_edge_t *edge, const char *peer, uint64_t now)
{
    limiter_slot_t *s = limiter_find(edge, peer, false, now);
    return s != NULL && s->failures >= PTC_REGISTER_MAX_FAILURES;
}

static void count_failure(ptc_edge_t *edge, const char *peer, uint64_t now)
{
    limiter_slot_t *s = limiter_find(edge, peer, true, now);
    s->failures++;
}

void ptc_register_free(ptc_edge_t *edge)
{
    free(edge->register_limiter);
    edge->register_limiter = NULL;
}

/* ---- answers ---- */

static void refuse_with(ptc_httpd_req_t *req, int status, const char *code, const char *message,
                        const char *reason, bool count, const ptc_http_header_t *hdrs, size_t cnt)
{
    ptc_edge_t *edge = ptc_httpd_req_edge(req);
    PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_WARN, "registration_refused",
            PTC_LOG_STR("reason", reason), PTC_LOG_INT("status", status));
    if (count) {
        count_failure(edge, ptc_httpd_req_peer(req), ptc_edge_now_ms());
    }
    (void)ptc_httpd_respond_error(req, status, code, message, hdrs, cnt);
}

static void refuse(ptc_httpd_req_t *req, int status, const char *code, const char *message,
                   const char *reason, bool count)
{
    refuse_with(req, status, code, message, reason, count, NULL, 0);
}

static bool is_json_type(ptc_slice_t v)
{
    /* "application/json" with optional parameters ("; charset=utf-8"). */
    size_t n = 0;
    while (n < v.len && v.ptr[n] != ';') {
        n++;
    }
    while (n > 0 && (v.ptr[n - 1] == ' ' || v.ptr[n - 1] == '\t')) {
        n--;
    }
    size_t s = 0;
    while (s < n && (v.ptr[s] == ' ' || v.ptr[s] == '\t')) {
        s++;
    }
    return ptc_slice_case_eq((ptc_slice_t){v.ptr + s, n - s}, "application/json");
}

/* A base64url text without padding that decodes to exactly 32 bytes in canonical form. */
static bool is_public_key(const char *text)
{
    size_t len = strlen(text);
    if (len != 43) {
        return false;
    }
    uint8_t raw[33];
    size_t raw_len = 0;
    if (ptc_b64url_decode(text, len, raw, sizeof(raw), &raw_len) != 0 || raw_len != 32) {
        return false;
    }
    char again[48];
    if (ptc_b64url_encode(raw, raw_len, again, sizeof(again)) != 43) {
        return false;
    }
    return strcmp(again, text) == 0;
}

static bool is_agent(const char *s)
{
    size_t len = strlen(s);
    if (len < 1 || len > 128) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static bool is_hostname(const char *s)
{
    size_t len = strlen(s);
    if (len > 255) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f) {
            return false;
        }
    }
    return true;
}

/* Reads a string member; NULL (and a message) when absent or not a string. */
static const char *get_string(json_t *doc, const char *key, char *msg, size_t cap)
{
    json_t *v = json_object_get(doc, key);
    if (v == NULL) {
        snprintf(msg, cap, "%s: required member is missing", key);
        return NULL;
    }
    if (!json_is_string(v)) {
        snprintf(msg, cap, "%s: expected a string", key);
        return NULL;
    }
    return json_string_value(v);
}

static void answer_created(ptc_httpd_req_t *req, const ptc_connector_t *cn)
{
    ptc_edge_t *edge = ptc_httpd_req_edge(req);
    json_t *edges = json_array();
    for (size_t i = 0; i < edge->advertise_cnt; i++) {
        json_array_append_new(edges, json_string(edge->advertise[i]));
    }
    json_t *doc =
        json_pack("{s:s, s:s, s:o}", "connector_id", cn->id, "group", cn->group, "edges", edges);
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        (void)ptc_httpd_respond_error(req, 500, "internal", "out of memory", NULL, 0);
        return;
    }
    size_t len = strlen(text);
    text[len] = '\n';
    static const ptc_http_header_t hdrs[] = {
        {{(const uint8_t *)"Cache-Control", 13}, {(const uint8_t *)"no-store", 8}},
    };
    (void)ptc_httpd_respond_simple(req, 201, "application/json", hdrs, 1, text, len + 1);
    free(text);
}

static void process_body(ptc_httpd_req_t *req, const uint8_t *p, size_t len)
{
    ptc_edge_t *edge = ptc_httpd_req_edge(req);
    char msg[512];
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        refuse(req, 400, "malformed", "the body is not a JSON object", "malformed", true);
        return;
    }
    const char *token = get_string(doc, "token", msg, sizeof(msg));
    const char *pk = token != NULL ? get_string(doc, "public_key", msg, sizeof(msg)) : NULL;
    const char *host = pk != NULL ? get_string(doc, "hostname", msg, sizeof(msg)) : NULL;
    const char *agent = host != NULL ? get_string(doc, "agent", msg, sizeof(msg)) : NULL;
    if (agent != NULL) {
        if (!is_public_key(pk)) {
            snprintf(msg, sizeof(msg), "public_key: expected base64url of 32 bytes");
            agent = NULL;
        } else if (!is_hostname(host)) {
            snprintf(msg, sizeof(msg), "hostname: expected 0 to 255 bytes without controls");
            agent = NULL;
        } else if (!is_agent(agent)) {
            snprintf(msg, sizeof(msg), "agent: expected 1 to 128 printable ASCII characters");
            agent = NULL;
        }
    }
    if (agent == NULL) {
        json_decref(doc);
        refuse(req, 400, "malformed", msg, "malformed", true);
        return;
    }
    ptc_registration_t reg = {
        .token = token,
        .public_key = pk,
        .hostname = host,
        .agent = agent,
    };
    ptc_redeem_refusal_t why = PTC_REDEEM_OK;
    const ptc_connector_t *cn = NULL;
    char err[512] = "";
    int rc =
        ptc_state_token_redeem(edge->state, &reg, ptc_edge_now_ms(), &why, &cn, err, sizeof(err));
    json_decref(doc);
    if (rc == PTC_EAUTH) {
        switch (why) {
        case PTC_REDEEM_OK:
        case PTC_REDEEM_UNKNOWN:
            refuse(req, 401, "unknown_token", "the registration token is not known",
                   "unknown_token", true);
            return;
        case PTC_REDEEM_REVOKED:
            refuse(req, 401, "unknown_token", "the registration token is not known",
                   "token_revoked", true);
            return;
        case PTC_REDEEM_EXPIRED:
            refuse(req, 410, "token_expired", "the registration token has expired", "token_expired",
                   true);
            return;
        case PTC_REDEEM_USED:
            refuse(req, 410, "token_used", "the registration token has no uses left", "token_used",
                   true);
            return;
        }
    }
    if (rc == PTC_EFORMAT) {
        refuse(req, 400, "malformed", err, "malformed", true);
        return;
    }
    if (rc != 0) {
        PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_ERROR, "state_write_failed",
                PTC_LOG_STR("reason", err), PTC_LOG_STR("op", "register"), PTC_LOG_ERR(rc));
        refuse(req, 500, "internal", "the edge could not record the connector", "internal", false);
        return;
    }
    edge->counters.registrations++;
    PTC_LOG(ptc_httpd_req_log(req), PTC_LOG_INFO, "connector_registered",
            PTC_LOG_STR("connector", cn->id), PTC_LOG_STR("group", cn->group),
            PTC_LOG_STR("hostname", cn->hostname), PTC_LOG_STR("agent", cn->agent));
    answer_created(req, cn);
}

/* ---- the handler ---- */

static void ctx_free(reg_ctx_t *ctx)
{
    /* The body holds the token: wipe it. */
    if (ctx->body.len > 0) {
        ptc_keys_wipe(ptc_buf_data(&ctx->body), ctx->body.len);
    }
    ptc_buf_dispose(&ctx->body);
    free(ctx);
}

static void on_body(ptc_httpd_req_t *req, ptc_slice_t data, bool end)
{
    reg_ctx_t *ctx = ptc_httpd_req_data(req);
    if (ctx->body.len + data.len > PTC_REGISTER_MAX_BODY) {
        ctx_free(ctx);
        refuse(req, 413, "too_large", "the body exceeds 8192 bytes", "too_large", true);
        return;
    }
    ptc_buf_append(&ctx->body, data.ptr, data.len);
    if (!end) {
        return;
    }
    ptc_buf_t body = ctx->body;
    ptc_buf_init(&ctx->body);
    ctx_free(ctx);
    process_body(req, ptc_buf_data(&body), body.len);
    if (body.len > 0) {
        ptc_keys_wipe(ptc_buf_data(&body), body.len);
    }
    ptc_buf_dispose(&body);
}

static void on_abort(ptc_httpd_req_t *req, int err)
{
    (void)err;
    ctx_free(ptc_httpd_req_data(req));
}

static const ptc_httpd_handler_t handler = {
    .on_body = on_body,
    .on_abort = on_abort,
};

void ptc_register_handle(ptc_httpd_req_t *req)
{
    const ptc_http_head_t *h = ptc_httpd_req_head(req);
    ptc_edge_t *edge = ptc_httpd_req_edge(req);
    if (!ptc_slice_eq(h->method, "POST")) {
        static const ptc_http_header_t allow[] = {
            {{(const uint8_t *)"Allow", 5}, {(const uint8_t *)"POST", 4}},
        };
        refuse_with(req, 405, "method_not_allowed", "registration takes POST", "method_not_allowed",
                    false, allow, 1);
        return;
    }
    if (limited(edge, ptc_httpd_req_peer(req), ptc_edge_now_ms())) {
        static const ptc_http_header_t retry[] = {
            {{(const uint8_t *)"Retry-After", 11}, {(const uint8_t *)"60", 2}},
        };
        refuse_with(req, 429, "rate_limited", "too many failed attempts from this address",
                    "rate_limited", false, retry, 1);
        return;
    }
    const ptc_http_header_t *ct = ptc_http_header_find(h->headers, h->header_cnt, "content-type");
    if (ct == NULL || !is_json_type(ct->value)) {
        refuse(req, 415, "unsupported_media_type", "the body must be application/json",
               "unsupported_media_type", true);
        return;
    }
    if (h->body == PTC_HTTP_BODY_LENGTH && h->content_length > PTC_REGISTER_MAX_BODY) {
        refuse(req, 413, "too_large", "the body exceeds 8192 bytes", "too_large", true);
        return;
    }
    reg_ctx_t *ctx = ptc_xcalloc(1, sizeof(*ctx));
    ptc_buf_init(&ctx->body);
    ptc_httpd_req_set_handler(req, &handler, ctx);
}
