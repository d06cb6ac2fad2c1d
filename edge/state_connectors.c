/* SPDX-License-Identifier: MIT */
/*
 * Registration tokens and the connectors they register, in the edge's state (see state.h and
 * docs/protocol.md §12): minting, revoking and redeeming tokens, and moving, deleting and
 * touching connectors, with their stored documents. Mutations follow the order of
 * edge/state.c (validate, write through the store, change memory, tell the observers), whose
 * containers, messages and document readers this file uses through edge/state_int.h. Token
 * texts are never stored, only their SHA-256, and never appear in messages.
 */
#include "edge/state.h"

#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "edge/state_int.h"

#define HOSTNAME_MAX 255
#define AGENT_MAX 128

static const char *token_key(const void *rec)
{
    return ((const ptc_token_t *)rec)->id;
}

static const char *connector_key(const void *rec)
{
    return ((const ptc_connector_t *)rec)->id;
}

/* ---- tokens ---- */

void ptc_state_connectors_token_free(ptc_token_t *t)
{
    if (t != NULL) {
        free(t->group);
        free(t);
    }
}

static ptc_token_t *token_copy(const ptc_token_t *t)
{
    ptc_token_t *c = ptc_xmalloc(sizeof(*c));
    *c = *t;
    c->group = ptc_xstrdup(t->group);
    return c;
}

static json_t *token_doc(const ptc_token_t *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "hash", json_string(t->hash));
    json_object_set_new(o, "group", json_string(t->group));
    json_object_set_new(o, "created_at", ptc_state_time_json(t->created_at));
    json_object_set_new(o, "expires_at", ptc_state_time_json(t->expires_at));
    json_object_set_new(o, "uses_left", json_integer(t->uses_left));
    json_object_set_new(o, "max_uses", json_integer(t->max_uses));
    json_object_set_new(o, "revoked", json_boolean(t->revoked));
    return o;
}

ptc_token_status_t ptc_token_status(const ptc_token_t *t, uint64_t now)
{
    if (t->revoked) {
        return PTC_TOKEN_REVOKED;
    }
    if (t->uses_left == 0) {
        return PTC_TOKEN_USED;
    }
    if (now >= t->expires_at) {
        return PTC_TOKEN_EXPIRED;
    }
    return PTC_TOKEN_ACTIVE;
}

const char *ptc_token_status_name(ptc_token_status_t s)
{
    switch (s) {
    case PTC_TOKEN_ACTIVE:
        return "active";
    case PTC_TOKEN_EXPIRED:
        return "expired";
    case PTC_TOKEN_USED:
        return "used";
    case PTC_TOKEN_REVOKED:
        return "revoked";
    }
    return "unknown";
}

json_t *ptc_state_token_to_json(const ptc_token_t *t, uint64_t now)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "group", json_string(t->group));
    json_object_set_new(o, "created_at", ptc_state_time_json(t->created_at));
    json_object_set_new(o, "expires_at", ptc_state_time_json(t->expires_at));
    json_object_set_new(o, "max_uses", json_integer(t->max_uses));
    json_object_set_new(o, "uses_left", json_integer(t->uses_left));
    json_object_set_new(o, "state", json_string(ptc_token_status_name(ptc_token_status(t, now))));
    return o;
}

size_t ptc_state_token_count(const ptc_state_t *st)
{
    return st->tokens.cnt;
}

const ptc_token_t *ptc_state_token_at(const ptc_state_t *st, size_t i)
{
    return i < st->tokens.cnt ? st->tokens.v[i] : NULL;
}

const ptc_token_t *ptc_state_token_find(const ptc_state_t *st, const char *id)
{
    return ptc_state_vec_find(&st->tokens, id, token_key);
}

static void hash_token(const char *text, char out[65])
{
    uint8_t digest[PTC_SHA256_LEN];
    ptc_sha256(text, strlen(text), digest);
    ptc_state_to_hex(digest, sizeof(digest), out, 65);
}

int ptc_state_token_mint(ptc_state_t *st, const char *group, uint64_t ttl_ms, uint32_t max_uses,
                         uint64_t now, char text[PTC_TOKEN_TEXT_CAP], const ptc_token_t **out,
                         char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    text[0] = '\0';
    if (out != NULL) {
        *out = NULL;
    }
    if (ptc_state_group_find(st, group) == NULL) {
        return ptc_state_fail(err, errlen, PTC_EFORMAT, "group: no group named %s",
                              ptc_state_quote(q, sizeof(q), group));
    }
    if (ttl_ms == 0) {
        ttl_ms = PTC_TOKEN_DEFAULT_TTL_MS;
    }
    if (ttl_ms > PTC_TOKEN_MAX_TTL_MS) {
        return ptc_state_fail(err, errlen, PTC_EFORMAT, "expires_in: at most 365 days");
    }
    if (max_uses == 0) {
        max_uses = 1;
    }
    if (max_uses > PTC_TOKEN_MAX_USES) {
        return ptc_state_fail(err, errlen, PTC_EFORMAT, "max_uses: expected 1..%d, got %u",
                              PTC_TOKEN_MAX_USES, max_uses);
    }
    ptc_token_t *t = ptc_xcalloc(1, sizeof(*t));
    ptc_state_new_id(&st->tokens, token_key, "tok_", 4, t->id, sizeof(t->id));
    t->group = ptc_xstrdup(group);
    t->created_at = now;
    t->expires_at = now + ttl_ms;
    t->uses_left = max_uses;
    t->max_uses = max_uses;
    /* protocol.md §12.1: "ptk_" + base64url of 32 random bytes. */
    if (ptc_random_token("ptk_", 32, text, PTC_TOKEN_TEXT_CAP) != 0) {
        ptc_state_connectors_token_free(t);
        return ptc_state_fail(err, errlen, PTC_ECRYPTO, "cannot make a token");
    }
    hash_token(text, t->hash);
    int rc = ptc_state_persist(st, KIND_TOKENS, t->id, token_doc(t), err, errlen);
    if (rc != 0) {
        ptc_keys_wipe(text, PTC_TOKEN_TEXT_CAP);
        text[0] = '\0';
        ptc_state_connectors_token_free(t);
        return rc;
    }
    ptc_state_vec_insert(&st->tokens, t, token_key);
    if (out != NULL) {
        *out = t;
    }
    ptc_state_notify(st, PTC_STATE_TOKEN, PTC_STATE_ADDED, t->id);
    return 0;
}

int ptc_state_token_revoke(ptc_state_t *st, const char *id, char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    ptc_token_t *t = ptc_state_vec_find(&st->tokens, id, token_key);
    if (t == NULL) {
        return ptc_state_fail(err, errlen, PTC_ENOTFOUND, "no token with id %s",
                              ptc_state_quote(q, sizeof(q), id));
    }
    if (t->revoked) {
        return 0;
    }
    ptc_token_t next = *t;
    next.revoked = true;
    int rc = ptc_state_persist(st, KIND_TOKENS, t->id, token_doc(&next), err, errlen);
    if (rc != 0) {
        return rc;
    }
    t->revoked = true;
    ptc_state_notify(st, PTC_STATE_TOKEN, PTC_STATE_UPDATED, t->id);
    return 0;
}

static bool is_lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

int ptc_state_connectors_load_token(void *data, const char *kind, const char *id, json_t *doc,
                                    char *err, size_t errlen)
{
    ptc_state_t *st = data;
    reader_t r = {.doc = doc, .err = err, .errlen = errlen};
    ptc_token_t t = {0};
    ptc_state_rd_id(&r, id, "tok_", t.id, sizeof(t.id));
    const char *hash = ptc_state_rd_str(&r, "hash");
    if (hash != NULL && !is_lower_hex(hash, 64)) {
        r.rc = ptc_state_fail(err, errlen, PTC_EFORMAT, "hash: expected 64 lower-case hex digits");
    }
    /* The group may be gone: a group is deletable once its tokens are used, expired or
     * revoked, and those stay listed. */
    const char *group = ptc_state_rd_str(&r, "group");
    t.created_at = ptc_state_rd_time(&r, "created_at");
    t.expires_at = ptc_state_rd_time(&r, "expires_at");
    t.max_uses = (uint32_t)ptc_state_rd_uint(&r, "max_uses", PTC_TOKEN_MAX_USES);
    t.uses_left = (uint32_t)ptc_state_rd_uint(&r, "uses_left", t.max_uses);
    t.revoked = ptc_state_rd_bool(&r, "revoked");
    if (r.rc != 0) {
        return r.rc;
    }
    memcpy(t.hash, hash, 65);
    t.group = (char *)group;
    ptc_state_vec_insert(&st->tokens, token_copy(&t), token_key);
    return 0;
}

/* ---- connectors ---- */

void ptc_state_connectors_connector_free(ptc_connector_t *c)
{
    if (c != NULL) {
        free(c->group);
        free(c->hostname);
        free(c->agent);
        free(c);
    }
}

json_t *ptc_state_connector_to_json(const ptc_connector_t *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(c->id));
    json_object_set_new(o, "public_key", json_string(c->public_key_b64));
    json_object_set_new(o, "group", json_string(c->group));
    json_object_set_new(o, "hostname", json_string(c->hostname));
    json_object_set_new(o, "agent", json_string(c->agent));
    json_object_set_new(o, "first_seen", ptc_state_time_json(c->first_seen));
    json_object_set_new(o, "last_seen", ptc_state_time_json(c->last_seen));
    return o;
}

size_t ptc_state_connector_count(const ptc_state_t *st)
{
    return st->connectors.cnt;
}

const ptc_connector_t *ptc_state_connector_at(const ptc_state_t *st, size_t i)
{
    return i < st->connectors.cnt ? st->connectors.v[i] : NULL;
}

const ptc_connector_t *ptc_state_connector_find(const ptc_state_t *st, const char *id)
{
    return ptc_state_vec_find(&st->connectors, id, connector_key);
}

/* Checks the public key, hostname and agent of a registration or stored connector, and
 * fills them in. */
static int connector_fields(ptc_connector_t *c, const char *public_key, const char *hostname,
                            const char *agent, char *err, size_t errlen)
{
    size_t pk_len = 0;
    if (public_key == NULL || strlen(public_key) != 43 ||
        ptc_b64url_decode(public_key, 43, c->public_key, sizeof(c->public_key), &pk_len) != 0 ||
        pk_len != sizeof(c->public_key)) {
        return ptc_state_fail(err, errlen, PTC_EFORMAT,
                              "public_key: expected base64url of a 32-byte Ed25519 public key");
    }
    memcpy(c->public_key_b64, public_key, 44);
    bool host_ok = hostname != NULL && strlen(hostname) <= HOSTNAME_MAX;
    for (const char *p = hostname; host_ok && *p != '\0'; p++) {
        host_ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
    }
    if (host_ok) {
        /* jansson refuses strings that are not UTF-8: the record must serialize. */
        json_t *probe = json_string(hostname);
        host_ok = probe != NULL;
        json_decref(probe);
    }
    if (!host_ok) {
        return ptc_state_fail(
            err, errlen, PTC_EFORMAT,
            "hostname: expected 0 to %d bytes of UTF-8 without control characters", HOSTNAME_MAX);
    }
    size_t agent_len = agent != NULL ? strlen(agent) : 0;
    bool agent_ok = agent_len >= 1 && agent_len <= AGENT_MAX;
    for (size_t i = 0; agent_ok && i < agent_len; i++) {
        agent_ok = agent[i] >= 0x20 && agent[i] < 0x7f;
    }
    if (!agent_ok) {
        return ptc_state_fail(err, errlen, PTC_EFORMAT,
                              "agent: expected 1 to %d printable ASCII bytes", AGENT_MAX);
    }
    c->hostname = ptc_xstrdup(hostname);
    c->agent = ptc_xstrdup(agent);
    return 0;
}

int ptc_state_token_redeem(ptc_state_t *st, const ptc_registration_t *reg, uint64_t now,
                           ptc_redeem_refusal_t *why, const ptc_connector_t **out, char *err,
                           size_t errlen)
{
    *why = PTC_REDEEM_OK;
    if (out != NULL) {
        *out = NULL;
    }
    ptc_connector_t *c = ptc_xcalloc(1, sizeof(*c));
    int rc = connector_fields(c, reg->public_key, reg->hostname, reg->agent, err, errlen);
    if (rc != 0) {
        ptc_state_connectors_connector_free(c);
        return rc;
    }

    /* protocol.md §12.1 rule 4: hash the presented value and compare with every stored hash
     * in constant time. */
    char hash[65] = "";
    if (reg->token != NULL) {
        hash_token(reg->token, hash);
    }
    ptc_token_t *t = NULL;
    for (size_t i = 0; i < st->tokens.cnt && reg->token != NULL; i++) {
        ptc_token_t *cand = st->tokens.v[i];
        if (ptc_consttime_eq(cand->hash, hash, 64)) {
            t = cand;
        }
    }
    ptc_keys_wipe(hash, sizeof(hash));
    if (t == NULL) {
        *why = PTC_REDEEM_UNKNOWN;
        rc = ptc_state_fail(err, errlen, PTC_EAUTH, "unknown registration token");
        goto refused;
    }
    char when[PTC_STATE_TIME_CAP];
    switch (ptc_token_status(t, now)) {
    case PTC_TOKEN_ACTIVE:
        break;
    case PTC_TOKEN_REVOKED:
        *why = PTC_REDEEM_REVOKED;
        rc = ptc_state_fail(err, errlen, PTC_EAUTH, "the registration token %s was revoked", t->id);
        goto refused;
    case PTC_TOKEN_USED:
        *why = PTC_REDEEM_USED;
        rc = ptc_state_fail(err, errlen, PTC_EAUTH, "the registration token %s has no uses left",
                            t->id);
        goto refused;
    case PTC_TOKEN_EXPIRED:
        *why = PTC_REDEEM_EXPIRED;
        ptc_state_time_format(t->expires_at, when);
        rc = ptc_state_fail(err, errlen, PTC_EAUTH, "the registration token %s expired at %s",
                            t->id, when);
        goto refused;
    }
    if (ptc_state_group_find(st, t->group) == NULL) {
        *why = PTC_REDEEM_REVOKED;
        rc = ptc_state_fail(err, errlen, PTC_EAUTH,
                            "the group of registration token %s no longer exists", t->id);
        goto refused;
    }

    ptc_state_new_id(&st->connectors, connector_key, "cn_", 8, c->id, sizeof(c->id));
    c->group = ptc_xstrdup(t->group);
    c->first_seen = now;
    c->last_seen = now;
    c->_persisted_last_seen = now;

    /* The token use is written first: a crash between the two writes then costs a use, and
     * never lets a token register more connectors than it allows. */
    ptc_token_t used = *t;
    used.uses_left--;
    rc = ptc_state_persist(st, KIND_TOKENS, t->id, token_doc(&used), err, errlen);
    if (rc != 0) {
        goto refused;
    }
    rc = ptc_state_persist(st, KIND_CONNECTORS, c->id, ptc_state_connector_to_json(c), err, errlen);
    if (rc != 0) {
        char undo_err[256];
        if (ptc_state_persist(st, KIND_TOKENS, t->id, token_doc(t), undo_err, sizeof(undo_err)) !=
            0) {
            /* Memory follows the store: the use stays consumed. */
            t->uses_left--;
            ptc_state_notify(st, PTC_STATE_TOKEN, PTC_STATE_UPDATED, t->id);
        }
        goto refused;
    }
    t->uses_left--;
    ptc_state_vec_insert(&st->connectors, c, connector_key);
    if (out != NULL) {
        *out = c;
    }
    ptc_state_notify(st, PTC_STATE_TOKEN, PTC_STATE_UPDATED, t->id);
    ptc_state_notify(st, PTC_STATE_CONNECTOR, PTC_STATE_ADDED, c->id);
    return 0;

refused:
    ptc_state_connectors_connector_free(c);
    return rc;
}

int ptc_state_connector_move(ptc_state_t *st, const char *id, const char *group, char *err,
                             size_t errlen)
{
    char q[QUOTE_CAP];
    ptc_connector_t *c = ptc_state_vec_find(&st->connectors, id, connector_key);
    if (c == NULL) {
        return ptc_state_fail(err, errlen, PTC_ENOTFOUND, "no connector with id %s",
                              ptc_state_quote(q, sizeof(q), id));
    }
    if (ptc_state_group_find(st, group) == NULL) {
        return ptc_state_fail(err, errlen, PTC_EFORMAT, "group: no group named %s",
                              ptc_state_quote(q, sizeof(q), group));
    }
    if (strcmp(c->group, group) == 0) {
        return 0;
    }
    ptc_connector_t next = *c;
    next.group = (char *)group;
    int rc = ptc_state_persist(st, KIND_CONNECTORS, c->id, ptc_state_connector_to_json(&next), err,
                               errlen);
    if (rc != 0) {
        return rc;
    }
    free(c->group);
    c->group = ptc_xstrdup(group);
    c->_persisted_last_seen = c->last_seen;
    ptc_state_notify(st, PTC_STATE_CONNECTOR, PTC_STATE_MOVED, c->id);
    return 0;
}

int ptc_state_connector_delete(ptc_state_t *st, const char *id, char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    size_t i = ptc_state_vec_index(&st->connectors, id, connector_key);
    if (i == SIZE_MAX) {
        return ptc_state_fail(err, errlen, PTC_ENOTFOUND, "no connector with id %s",
                              ptc_state_quote(q, sizeof(q), id));
    }
    ptc_connector_t *c = st->connectors.v[i];
    int rc = ptc_state_unpersist(st, KIND_CONNECTORS, c->id, err, errlen);
    if (rc != 0) {
        return rc;
    }
    ptc_state_vec_remove(&st->connectors, i);
    char copy[sizeof(c->id)];
    memcpy(copy, c->id, sizeof(copy));
    ptc_state_connectors_connector_free(c);
    ptc_state_notify(st, PTC_STATE_CONNECTOR, PTC_STATE_DELETED, copy);
    return 0;
}

int ptc_state_connector_touch(ptc_state_t *st, const char *id, uint64_t now, bool flush, char *err,
                              size_t errlen)
{
    char q[QUOTE_CAP];
    ptc_connector_t *c = ptc_state_vec_find(&st->connectors, id, connector_key);
    if (c == NULL) {
        return ptc_state_fail(err, errlen, PTC_ENOTFOUND, "no connector with id %s",
                              ptc_state_quote(q, sizeof(q), id));
    }
    if (now > c->last_seen) {
        c->last_seen = now;
    }
    if (c->last_seen == c->_persisted_last_seen) {
        return 0;
    }
    if (!flush && c->last_seen - c->_persisted_last_seen < PTC_CONNECTOR_PERSIST_MS) {
        return 0;
    }
    int rc =
        ptc_state_persist(st, KIND_CONNECTORS, c->id, ptc_state_connector_to_json(c), err, errlen);
    if (rc == 0) {
        c->_persisted_last_seen = c->last_seen;
    }
    return rc;
}

int ptc_state_connectors_load_connector(void *data, const char *kind, const char *id, json_t *doc,
                                        char *err, size_t errlen)
{
    ptc_state_t *st = data;
    reader_t r = {.doc = doc, .err = err, .errlen = errlen};
    ptc_connector_t *c = ptc_xcalloc(1, sizeof(*c));
    ptc_state_rd_id(&r, id, "cn_", c->id, sizeof(c->id));
    const char *pk = ptc_state_rd_str(&r, "public_key");
    const char *hostname = ptc_state_rd_str(&r, "hostname");
    const char *agent = ptc_state_rd_str(&r, "agent");
    if (r.rc == 0) {
        r.rc = connector_fields(c, pk, hostname, agent, err, errlen);
    }
    const char *group = ptc_state_rd_str(&r, "group");
    if (group != NULL && ptc_state_group_find(st, group) == NULL) {
        char q[QUOTE_CAP];
        r.rc = ptc_state_fail(err, errlen, PTC_EFORMAT, "group: no group named %s",
                              ptc_state_quote(q, sizeof(q), group));
    }
    c->first_seen = ptc_state_rd_time(&r, "first_seen");
    c->last_seen = ptc_state_rd_time(&r, "last_seen");
    if (r.rc != 0) {
        ptc_state_connectors_connector_free(c);
        return r.rc;
    }
    c->group = ptc_xstrdup(group);
    c->_persisted_last_seen = c->last_seen;
    ptc_state_vec_insert(&st->connectors, c, connector_key);
    return 0;
}
