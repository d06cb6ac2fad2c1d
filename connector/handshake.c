/* SPDX-License-Identifier: MIT */
/*
 * Handshake documents (see handshake.h). jansson parses with JSON_REJECT_DUPLICATES, which
 * also refuses trailing bytes, NUL in strings and invalid UTF-8 (§4.8, §11.2); the checks
 * below add what JSON alone cannot say.
 */
#include "connector/handshake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/net.h"

static json_t *load_object(const uint8_t *p, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root != NULL && !json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    return root;
}

/* A member that must be a JSON integer (no fraction, no exponent) within [min, max]. */
static bool get_int(json_t *obj, const char *key, json_int_t min, json_int_t max, json_int_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) {
        return false;
    }
    json_int_t i = json_integer_value(v);
    if (i < min || i > max) {
        return false;
    }
    *out = i;
    return true;
}

int ptc_handshake_doc_type(const uint8_t *p, size_t len, char *type, size_t cap)
{
    json_t *root = load_object(p, len);
    if (root == NULL) {
        return PTC_EPROTO;
    }
    json_t *t = json_object_get(root, "type");
    int rc = PTC_EPROTO;
    if (json_is_string(t)) {
        snprintf(type, cap, "%s", json_string_value(t));
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* ---- challenge ---- */

int ptc_handshake_parse_challenge(const uint8_t *p, size_t len, unsigned version, uint8_t nonce[32],
                                  const char **why)
{
    *why = PTC_HANDSHAKE_MALFORMED_CHALLENGE;
    json_t *root = load_object(p, len);
    if (root == NULL) {
        return PTC_EPROTO;
    }
    int rc = PTC_EPROTO;
    json_t *type = json_object_get(root, "type");
    json_t *versions = json_object_get(root, "versions");
    json_t *n = json_object_get(root, "nonce");
    if (!json_is_string(type) || strcmp(json_string_value(type), "challenge") != 0 ||
        !json_is_array(versions) || json_array_size(versions) == 0 || !json_is_string(n)) {
        goto out;
    }
    /* Every element an integer 1..65535, no duplicates; ours must be among them. */
    bool offered = false;
    size_t cnt = json_array_size(versions);
    for (size_t i = 0; i < cnt; i++) {
        json_t *v = json_array_get(versions, i);
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            if (json_integer_value(json_array_get(versions, j)) == json_integer_value(v)) {
                goto out;
            }
        }
        if ((unsigned)json_integer_value(v) == version) {
            offered = true;
        }
    }
    if (ptc_credentials_b64_exact(json_string_value(n), json_string_length(n), nonce, 32) != 0) {
        goto out;
    }
    if (!offered) {
        *why = PTC_HANDSHAKE_UNSUPPORTED_VERSION;
        goto out;
    }
    *why = NULL;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ---- auth ---- */

static bool valid_agent(const char *agent)
{
    size_t len = agent != NULL ? strlen(agent) : 0;
    if (len == 0 || len > PTC_HANDSHAKE_AGENT_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (agent[i] < 0x20 || agent[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* The length of the longest prefix of s, at most max bytes, that ends on a UTF-8 boundary. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max) {
        return len;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80) {
        max--;
    }
    return max;
}

char *ptc_handshake_build_auth(const ptc_credentials_t *c, unsigned version,
                               const uint8_t nonce[32], const uint8_t cert_hash[32],
                               const char *agent, const char *hostname,
                               const ptc_mux_limits_t *limits, size_t *len)
{
    if (!valid_agent(agent)) {
        return NULL;
    }
    char sig[128];
    if (ptc_credentials_sign_auth(c, nonce, cert_hash, sig, sizeof(sig)) != 0) {
        return NULL;
    }
    const char *host = hostname != NULL ? hostname : "";
    json_t *doc = json_object();
    json_object_set_new(doc, "type", json_string("auth"));
    json_object_set_new(doc, "version", json_integer(version));
    json_object_set_new(doc, "connector_id", json_string(c->connector_id));
    json_object_set_new(doc, "agent", json_string(agent));
    /* A host name that is not UTF-8 is refused by jansson; send "" rather than nothing. */
    json_t *h = json_stringn(host, utf8_cut(host, PTC_HANDSHAKE_HOSTNAME_MAX));
    json_object_set_new(doc, "hostname", h != NULL ? h : json_string(""));
    json_object_set_new(doc, "signature", json_string(sig));
    if (limits != NULL) {
        json_t *l = json_object();
        json_object_set_new(l, "max_frame_size", json_integer(limits->max_frame_size));
        json_object_set_new(l, "max_header_block", json_integer(limits->max_header_block));
        json_object_set_new(l, "max_control_size", json_integer(limits->max_control_size));
        json_object_set_new(l, "max_streams", json_integer(limits->max_streams));
        json_object_set_new(l, "initial_stream_window",
                            json_integer(limits->initial_stream_window));
        json_object_set_new(l, "initial_tunnel_window",
                            json_integer(limits->initial_tunnel_window));
        json_object_set_new(doc, "limits", l);
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        abort();
    }
    if (len != NULL) {
        *len = strlen(text);
    }
    return text;
}

/* ---- welcome ---- */

/* Reads the optional `limits` object: absent members keep the defaults. */
static bool parse_limits(json_t *obj, ptc_mux_limits_t *out)
{
    static const ptc_mux_limits_t defaults = PTC_MUX_LIMITS_DEFAULT;
    *out = defaults;
    if (obj == NULL) {
        return true;
    }
    if (!json_is_object(obj)) {
        return false;
    }
    static const struct {
        const char *key;
        size_t offset;
    } members[] = {
        {"max_frame_size", offsetof(ptc_mux_limits_t, max_frame_size)},
        {"max_header_block", offsetof(ptc_mux_limits_t, max_header_block)},
        {"max_control_size", offsetof(ptc_mux_limits_t, max_control_size)},
        {"max_streams", offsetof(ptc_mux_limits_t, max_streams)},
        {"initial_stream_window", offsetof(ptc_mux_limits_t, initial_stream_window)},
        {"initial_tunnel_window", offsetof(ptc_mux_limits_t, initial_tunnel_window)},
    };
    for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
        if (json_object_get(obj, members[i].key) == NULL) {
            continue;
        }
        json_int_t v = 0;
        if (!get_int(obj, members[i].key, 0, UINT32_MAX, &v)) {
            return false;
        }
        *(uint32_t *)((char *)out + members[i].offset) = (uint32_t)v;
    }
    return ptc_mux_limits_check(out) == 0;
}

int ptc_handshake_parse_welcome(const uint8_t *p, size_t len, ptc_handshake_welcome_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load_object(p, len);
    if (root == NULL) {
        return PTC_EPROTO;
    }
    int rc = PTC_EPROTO;
    json_t *type = json_object_get(root, "type");
    json_t *tid = json_object_get(root, "tunnel_id");
    json_t *group = json_object_get(root, "group");
    if (!json_is_string(type) || strcmp(json_string_value(type), "welcome") != 0 ||
        !json_is_string(tid) ||
        !ptc_credentials_valid_id(json_string_value(tid), json_string_length(tid)) ||
        !json_is_string(group) || json_string_length(group) == 0 ||
        json_string_length(group) > PTC_HANDSHAKE_GROUP_MAX ||
        strlen(json_string_value(group)) != json_string_length(group)) {
        goto out;
    }
    memcpy(out->tunnel_id, json_string_value(tid), json_string_length(tid) + 1);
    memcpy(out->group, json_string_value(group), json_string_length(group) + 1);

    json_int_t ping = PTC_DEFAULT_PING_INTERVAL_MS;
    json_int_t idle = PTC_DEFAULT_IDLE_TIMEOUT_MS;
    if (json_object_get(root, "ping_interval_ms") != NULL &&
        !get_int(root, "ping_interval_ms", 1000, 600000, &ping)) {
        goto out;
    }
    if (json_object_get(root, "idle_timeout_ms") != NULL &&
        !get_int(root, "idle_timeout_ms", 1, 3600000, &idle)) {
        goto out;
    }
    if (idle <= ping) {
        goto out;
    }
    out->ping_interval_ms = (uint32_t)ping;
    out->idle_timeout_ms = (uint32_t)idle;
    if (!parse_limits(json_object_get(root, "limits"), &out->limits)) {
        goto out;
    }
    json_t *edges = json_object_get(root, "edges");
    if (edges != NULL) {
        if (!json_is_array(edges)) {
            goto out;
        }
        size_t cnt = json_array_size(edges);
        out->has_edges = true;
        out->edges = ptc_xcalloc(cnt > 0 ? cnt : 1, sizeof(char *));
        for (size_t i = 0; i < cnt; i++) {
            json_t *e = json_array_get(edges, i);
            ptc_net_hostport_t hp;
            if (!json_is_string(e) || ptc_net_parse_hostport(json_string_value(e), &hp) != 0 ||
                hp.host[0] == '\0' || hp.port == 0) {
                goto out;
            }
            out->edges[out->edges_cnt++] = ptc_xstrdup(json_string_value(e));
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

void ptc_handshake_welcome_dispose(ptc_handshake_welcome_t *w)
{
    for (size_t i = 0; i < w->edges_cnt; i++) {
        free(w->edges[i]);
    }
    free(w->edges);
    w->edges = NULL;
    w->edges_cnt = 0;
    w->has_edges = false;
}
