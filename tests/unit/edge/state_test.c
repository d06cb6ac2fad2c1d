/* SPDX-License-Identifier: MIT */
#include "edge/state.h"
#include "tests/support/certgen.h"
#include "tests/support/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "common/keys.h"

/* 2023-11-14T22:13:20.000Z */
#define T0 1700000000000ull
#define HOUR (3600ull * 1000)

static const char *const idps[] = {"corp"};
static const ptc_app_ctx_t ctx = {
    .default_domain = "apps.example.com",
    .idps = idps,
    .idp_cnt = 1,
};

/* ---- a store that can be made to fail ---- */

/* Wraps the directory store; counting from fail_puts(), put number n fails when bit n-1 of
 * the mask is set, and every delete fails while fail_dels is set. */
typedef struct flaky {
    ptc_store_t base;
    ptc_store_t *inner;
    unsigned puts;
    unsigned fail_mask;
    bool fail_dels;
} flaky_t;

static int flaky_load(ptc_store_t *s, const char *kind, ptc_store_each_cb cb, void *data, char *err,
                      size_t errlen)
{
    flaky_t *f = (flaky_t *)s;
    return ptc_store_load(f->inner, kind, cb, data, err, errlen);
}

static int flaky_put(ptc_store_t *s, const char *kind, const char *id, json_t *doc, char *err,
                     size_t errlen)
{
    flaky_t *f = (flaky_t *)s;
    unsigned n = f->puts++;
    if (n < 32 && (f->fail_mask & (1u << n)) != 0) {
        snprintf(err, errlen, "%s/%s.json: disk full", kind, id);
        return -28; /* ENOSPC */
    }
    return ptc_store_put(f->inner, kind, id, doc, err, errlen);
}

static int flaky_del(ptc_store_t *s, const char *kind, const char *id, char *err, size_t errlen)
{
    flaky_t *f = (flaky_t *)s;
    if (f->fail_dels) {
        snprintf(err, errlen, "%s/%s.json: read-only file system", kind, id);
        return -30; /* EROFS */
    }
    return ptc_store_del(f->inner, kind, id, err, errlen);
}

static void flaky_free(ptc_store_t *s)
{
    flaky_t *f = (flaky_t *)s;
    ptc_store_free(f->inner);
    free(f);
}

static const ptc_store_ops_t flaky_ops = {
    .load = flaky_load,
    .put = flaky_put,
    .del = flaky_del,
    .free = flaky_free,
};

static void fail_puts(ptc_store_t *s, unsigned mask)
{
    flaky_t *f = (flaky_t *)s;
    f->puts = 0;
    f->fail_mask = mask;
}

static void fail_dels(ptc_store_t *s, bool on)
{
    ((flaky_t *)s)->fail_dels = on;
}

/* ---- helpers ---- */

typedef struct env {
    char dir[512];
    ptc_store_t *store;
    ptc_state_t *st;
} env_t;

static void env_open_at(env_t *e, uint64_t now)
{
    char err[1024] = "";
    flaky_t *f = calloc(1, sizeof(*f));
    f->base.ops = &flaky_ops;
    CHECK_OK(ptc_store_jsondir_open(e->dir, &f->inner, err, sizeof(err)));
    e->store = &f->base;
    int rc = ptc_state_open(e->store, &ctx, now, &e->st, err, sizeof(err));
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "open failed (%d): %s", rc, err);
    }
}

static void env_init(env_t *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "%s/state", ptc_test_tmpdir());
    env_open_at(e, T0);
}

static void env_close(env_t *e)
{
    ptc_state_free(e->st);
    ptc_store_free(e->store);
    e->st = NULL;
    e->store = NULL;
}

static void env_reopen(env_t *e)
{
    env_close(e);
    env_open_at(e, T0 + 999 * HOUR);
}

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    if (doc == NULL) {
        ptc_test_fail(__FILE__, __LINE__, "bad JSON in the test: %s", jerr.text);
    }
    return doc;
}

static const ptc_app_t *add_app(env_t *e, const char *text)
{
    json_t *doc = load(text);
    const ptc_app_t *app = NULL;
    char err[512] = "";
    int rc = ptc_state_app_add(e->st, doc, &app, err, sizeof(err));
    json_decref(doc);
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "app add %s failed (%d): %s", text, rc, err);
    }
    return app;
}

static int add_app_rc(env_t *e, const char *text, char *err, size_t errlen)
{
    json_t *doc = load(text);
    int rc = ptc_state_app_add(e->st, doc, NULL, err, errlen);
    json_decref(doc);
    return rc;
}

static void mint(env_t *e, const char *group, uint64_t ttl, uint32_t uses, uint64_t now,
                 char text[PTC_TOKEN_TEXT_CAP], const ptc_token_t **tok)
{
    char err[512] = "";
    int rc = ptc_state_token_mint(e->st, group, ttl, uses, now, text, tok, err, sizeof(err));
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "mint failed (%d): %s", rc, err);
    }
}

static void make_pk(char out[48], uint8_t seed_byte)
{
    uint8_t seed[32];
    memset(seed, seed_byte, sizeof(seed));
    ptc_ed25519_key_t key;
    ptc_ed25519_from_seed(&key, seed);
    CHECK_EQ(ptc_b64url_encode(key.pk, sizeof(key.pk), out, 48), 43);
}

static int redeem(env_t *e, const char *token, uint64_t now, ptc_redeem_refusal_t *why,
                  const ptc_connector_t **out, char *err, size_t errlen)
{
    char pk[48];
    make_pk(pk, 7);
    ptc_registration_t reg = {
        .token = token, .public_key = pk, .hostname = "gw1.corp.example", .agent = "portico/0.1"};
    return ptc_state_token_redeem(e->st, &reg, now, why, out, err, errlen);
}

static const ptc_connector_t *register_connector(env_t *e, const char *group)
{
    char text[PTC_TOKEN_TEXT_CAP];
    mint(e, group, 0, 0, T0, text, NULL);
    ptc_redeem_refusal_t why;
    const ptc_connector_t *c = NULL;
    char err[512] = "";
    int rc = redeem(e, text, T0 + 1000, &why, &c, err, sizeof(err));
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "redeem failed (%d): %s", rc, err);
    }
    return c;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool file_exists(const char *dir, const char *kind, const char *id)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s/%s.json", dir, kind, id);
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_doc(const char *dir, const char *kind, const char *id, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, kind);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/%s/%s.json", dir, kind, id);
    FILE *f = fopen(path, "w");
    CHECK_NOT_NULL(f);
    fputs(text, f);
    fclose(f);
}

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* ---- observers ---- */

typedef struct event {
    ptc_state_kind_t kind;
    ptc_state_op_t op;
    char id[80];
} event_t;

typedef struct recorder {
    event_t ev[32];
    size_t cnt;
    ptc_state_t *st;
    bool saw_record; /* the record was readable (or gone) when the observer ran */
} recorder_t;

static void on_change(void *data, ptc_state_kind_t kind, ptc_state_op_t op, const char *id)
{
    recorder_t *r = data;
    CHECK_LT(r->cnt, 32);
    r->ev[r->cnt].kind = kind;
    r->ev[r->cnt].op = op;
    snprintf(r->ev[r->cnt].id, sizeof(r->ev[0].id), "%s", id);
    r->cnt++;
    if (kind == PTC_STATE_GROUP) {
        bool present = ptc_state_group_find(r->st, id) != NULL;
        r->saw_record = op == PTC_STATE_DELETED ? !present : present;
    }
}

static void check_event(int line, const recorder_t *r, size_t i, ptc_state_kind_t kind,
                        ptc_state_op_t op, const char *id)
{
    if (i >= r->cnt || r->ev[i].kind != kind || r->ev[i].op != op ||
        (id != NULL && strcmp(r->ev[i].id, id) != 0)) {
        ptc_test_fail(__FILE__, line, "event %zu: expected %s %s %s, got %s", i,
                      ptc_state_kind_name(kind), ptc_state_op_name(op), id != NULL ? id : "*",
                      i < r->cnt ? r->ev[i].id : "(none)");
    }
}

/* ---- tests ---- */

static void test_open_creates_default_group(void)
{
    env_t e;
    env_init(&e);
    CHECK_EQ(ptc_state_group_count(e.st), 1);
    const ptc_group_t *g = ptc_state_group_find(e.st, "Default");
    CHECK_NOT_NULL(g);
    CHECK_UEQ(g->created_at, T0);
    CHECK(file_exists(e.dir, "groups", "Default"));
    env_reopen(&e);
    /* Loaded, not made again: the creation time is the first one. */
    CHECK_EQ(ptc_state_group_count(e.st), 1);
    CHECK_UEQ(ptc_state_group_find(e.st, "Default")->created_at, T0);
    env_close(&e);
}

static void test_groups(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    recorder_t rec = {.st = e.st};
    ptc_state_observe(e.st, on_change, &rec);

    CHECK_OK(ptc_state_group_add(e.st, "Branch Office", T0 + 1, err, sizeof(err)));
    CHECK_OK(ptc_state_group_add(e.st, "dmz", T0 + 2, err, sizeof(err)));
    CHECK_EQ(ptc_state_group_count(e.st), 3);
    CHECK_STREQ(ptc_state_group_at(e.st, 0)->name, "Branch Office"); /* sorted by name */
    CHECK_STREQ(ptc_state_group_at(e.st, 1)->name, "Default");
    CHECK_NULL(ptc_state_group_at(e.st, 3));
    check_event(__LINE__, &rec, 0, PTC_STATE_GROUP, PTC_STATE_ADDED, "Branch Office");
    CHECK(rec.saw_record);
    json_t *j = ptc_state_group_to_json(ptc_state_group_find(e.st, "dmz"));
    CHECK_STREQ(json_string_value(json_object_get(j, "created_at")), "2023-11-14T22:13:20.002Z");
    json_decref(j);

    CHECK_EQ(ptc_state_group_add(e.st, "dmz", T0, err, sizeof(err)), PTC_EEXIST);
    CHECK_CONTAINS(err, "group \"dmz\" already exists");
    CHECK_EQ(ptc_state_group_add(e.st, "a/b", T0, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "name: expected 1 to 64 characters");
    CHECK_EQ(ptc_state_group_add(e.st, "", T0, err, sizeof(err)), PTC_EFORMAT);
    CHECK_EQ(ptc_state_group_delete(e.st, "nope", T0, err, sizeof(err)), PTC_ENOTFOUND);
    CHECK_CONTAINS(err, "no group named \"nope\"");
    CHECK_EQ(ptc_state_group_delete(e.st, "Default", T0, err, sizeof(err)), PTC_ESTATE);
    CHECK_CONTAINS(err, "cannot be deleted");
    CHECK_EQ(rec.cnt, 2); /* refusals notify nobody */

    CHECK_OK(ptc_state_group_delete(e.st, "dmz", T0, err, sizeof(err)));
    CHECK_NULL(ptc_state_group_find(e.st, "dmz"));
    CHECK(!file_exists(e.dir, "groups", "dmz"));
    check_event(__LINE__, &rec, 2, PTC_STATE_GROUP, PTC_STATE_DELETED, "dmz");
    CHECK(rec.saw_record);

    /* A name with a space survives a reload (its file name is a digest). */
    env_reopen(&e);
    CHECK_EQ(ptc_state_group_count(e.st), 2);
    CHECK_UEQ(ptc_state_group_find(e.st, "Branch Office")->created_at, T0 + 1);
    env_close(&e);
}

static void test_group_in_use(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    CHECK_OK(ptc_state_group_add(e.st, "g1", T0, err, sizeof(err)));
    size_t apps;
    size_t conns;
    size_t toks;

    /* An active token holds the group... */
    char text[PTC_TOKEN_TEXT_CAP];
    const ptc_token_t *tok;
    mint(&e, "g1", HOUR, 1, T0, text, &tok);
    ptc_state_group_usage(e.st, "g1", T0, &apps, &conns, &toks);
    CHECK_EQ(toks, 1);
    CHECK_EQ(ptc_state_group_delete(e.st, "g1", T0, err, sizeof(err)), PTC_ESTATE);
    CHECK_CONTAINS(err, "1 active registration token(s)");
    /* ...until it expires. */
    ptc_state_group_usage(e.st, "g1", T0 + 2 * HOUR, NULL, NULL, &toks);
    CHECK_EQ(toks, 0);

    /* A connector holds it. */
    const ptc_connector_t *c = register_connector(&e, "g1");
    CHECK_EQ(ptc_state_group_delete(e.st, "g1", T0 + 2 * HOUR, err, sizeof(err)), PTC_ESTATE);
    CHECK_CONTAINS(err, "1 connector(s)");
    char cid[32];
    snprintf(cid, sizeof(cid), "%s", c->id);

    /* An app holds it. */
    add_app(&e, "{\"name\":\"hr\",\"internal_url\":\"http://h/\",\"connector_group\":\"g1\"}");
    CHECK_OK(ptc_state_connector_delete(e.st, cid, err, sizeof(err)));
    ptc_state_group_usage(e.st, "g1", T0 + 2 * HOUR, &apps, &conns, &toks);
    CHECK_EQ(apps, 1);
    CHECK_EQ(conns, 0);
    CHECK_EQ(ptc_state_group_delete(e.st, "g1", T0 + 2 * HOUR, err, sizeof(err)), PTC_ESTATE);
    CHECK_CONTAINS(err, "group \"g1\" is in use by 1 app(s)");

    CHECK_OK(ptc_state_app_delete(e.st, "hr", err, sizeof(err)));
    CHECK_OK(ptc_state_group_delete(e.st, "g1", T0 + 2 * HOUR, err, sizeof(err)));

    /* Its used and expired tokens stay listed and still load. */
    env_reopen(&e);
    CHECK_EQ(ptc_state_token_count(e.st), 2);
    env_close(&e);
}

static void test_token_mint(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    char text[PTC_TOKEN_TEXT_CAP];
    const ptc_token_t *tok = NULL;
    mint(&e, "Default", 0, 0, T0, text, &tok);

    /* protocol.md §12.1: "ptk_" + 43 base64url characters; only the hash is kept. */
    CHECK_EQ(strlen(text), 47);
    CHECK(strncmp(text, "ptk_", 4) == 0);
    CHECK_EQ(strlen(tok->id), 12);
    CHECK(strncmp(tok->id, "tok_", 4) == 0);
    uint8_t digest[32];
    char hex[65];
    ptc_sha256(text, strlen(text), digest);
    CHECK_OK(ptc_hex_encode(digest, 32, hex, sizeof(hex)));
    CHECK_STREQ(tok->hash, hex);
    CHECK_UEQ(tok->expires_at, T0 + 24 * HOUR);
    CHECK_EQ(tok->max_uses, 1);
    CHECK_EQ(tok->uses_left, 1);
    CHECK(!tok->revoked);
    CHECK_EQ(ptc_token_status(tok, T0), PTC_TOKEN_ACTIVE);

    char path[1024];
    snprintf(path, sizeof(path), "%s/tokens/%s.json", e.dir, tok->id);
    char *doc = read_file(path);
    CHECK_NOT_NULL(doc);
    CHECK(strstr(doc, text) == NULL);
    CHECK(strstr(doc, text + 4) == NULL);
    CHECK_CONTAINS(doc, hex);
    free(doc);

    /* The API form has no hash, and says the state. */
    json_t *j = ptc_state_token_to_json(tok, T0);
    CHECK_NULL(json_object_get(j, "hash"));
    CHECK_STREQ(json_string_value(json_object_get(j, "state")), "active");
    CHECK_STREQ(json_string_value(json_object_get(j, "expires_at")), "2023-11-15T22:13:20.000Z");
    json_decref(j);

    /* Explicit expiry and uses. */
    mint(&e, "Default", HOUR, 5, T0, text, &tok);
    CHECK_UEQ(tok->expires_at, T0 + HOUR);
    CHECK_EQ(tok->max_uses, 5);

    CHECK_EQ(ptc_state_token_mint(e.st, "nope", 0, 0, T0, text, NULL, err, sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "group: no group named \"nope\"");
    CHECK_STREQ(text, "");
    CHECK_EQ(ptc_state_token_mint(e.st, "Default", 0, PTC_TOKEN_MAX_USES + 1, T0, text, NULL, err,
                                  sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "max_uses");
    CHECK_EQ(ptc_state_token_mint(e.st, "Default", PTC_TOKEN_MAX_TTL_MS + 1, 1, T0, text, NULL, err,
                                  sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "expires_in");
    CHECK_EQ(ptc_state_token_count(e.st), 2);
    env_close(&e);
}

static void test_token_revoke(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    char text[PTC_TOKEN_TEXT_CAP];
    const ptc_token_t *tok;
    mint(&e, "Default", 0, 0, T0, text, &tok);
    char id[16];
    snprintf(id, sizeof(id), "%s", tok->id);
    recorder_t rec = {.st = e.st};
    ptc_state_observe(e.st, on_change, &rec);
    CHECK_OK(ptc_state_token_revoke(e.st, id, err, sizeof(err)));
    CHECK_OK(ptc_state_token_revoke(e.st, id, err, sizeof(err))); /* twice is fine */
    CHECK_EQ(rec.cnt, 1);
    check_event(__LINE__, &rec, 0, PTC_STATE_TOKEN, PTC_STATE_UPDATED, id);
    CHECK_EQ(ptc_token_status(ptc_state_token_find(e.st, id), T0), PTC_TOKEN_REVOKED);
    CHECK_EQ(ptc_state_token_revoke(e.st, "tok_00000000", err, sizeof(err)), PTC_ENOTFOUND);
    CHECK_CONTAINS(err, "no token with id");

    ptc_redeem_refusal_t why;
    CHECK_EQ(redeem(&e, text, T0, &why, NULL, err, sizeof(err)), PTC_EAUTH);
    CHECK_EQ(why, PTC_REDEEM_REVOKED);
    CHECK_CONTAINS(err, "revoked");

    env_reopen(&e);
    CHECK(ptc_state_token_find(e.st, id)->revoked);
    env_close(&e);
}

static void test_token_redeem(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    char text[PTC_TOKEN_TEXT_CAP];
    const ptc_token_t *tok;
    mint(&e, "Default", HOUR, 1, T0, text, &tok);
    char tok_id[16];
    snprintf(tok_id, sizeof(tok_id), "%s", tok->id);
    recorder_t rec = {.st = e.st};
    ptc_state_observe(e.st, on_change, &rec);

    /* A wrong token, even one a character away. */
    ptc_redeem_refusal_t why = PTC_REDEEM_OK;
    char wrong[PTC_TOKEN_TEXT_CAP];
    snprintf(wrong, sizeof(wrong), "%s", text);
    wrong[10] = wrong[10] == 'A' ? 'B' : 'A';
    CHECK_EQ(redeem(&e, wrong, T0, &why, NULL, err, sizeof(err)), PTC_EAUTH);
    CHECK_EQ(why, PTC_REDEEM_UNKNOWN);
    CHECK_STREQ(err, "unknown registration token");
    CHECK_EQ(redeem(&e, "", T0, &why, NULL, err, sizeof(err)), PTC_EAUTH);
    CHECK_EQ(why, PTC_REDEEM_UNKNOWN);
    CHECK_EQ(redeem(&e, NULL, T0, &why, NULL, err, sizeof(err)), PTC_EAUTH);
    CHECK_EQ(why, PTC_REDEEM_UNKNOWN);

    /* Malformed registrations are refused before the token is looked at. */
    ptc_registration_t reg = {
        .token = text, .public_key = "short", .hostname = "h", .agent = "a/1"};
    CHECK_EQ(ptc_state_token_redeem(e.st, &reg, T0, &why, NULL, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "public_key:");
    char pk[48];
    make_pk(pk, 1);
    reg.public_key = pk;
    reg.agent = "";
    CHECK_EQ(ptc_state_token_redeem(e.st, &reg, T0, &why, NULL, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "agent:");
    reg.agent = "a\x01";
    CHECK_EQ(ptc_state_token_redeem(e.st, &reg, T0, &why, NULL, err, sizeof(err)), PTC_EFORMAT);
    reg.agent = "a/1";
    reg.hostname = "gw\n1";
    CHECK_EQ(ptc_state_token_redeem(e.st, &reg, T0, &why, NULL, err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "hostname:");
    reg.hostname = "caf\xc3"; /* not UTF-8 */
    CHECK_EQ(ptc_state_token_redeem(e.st, &reg, T0, &why, NULL, err, sizeof(err)), PTC_EFORMAT);
    CHECK_EQ(ptc_state_token_find(e.st, tok_id)->uses_left, 1);
    CHECK_EQ(rec.cnt, 0);

    /* The right token registers a connector and uses the token up. */
    const ptc_connector_t *c = NULL;
    CHECK_OK(redeem(&e, text, T0 + 1000, &why, &c, err, sizeof(err)));
    CHECK_EQ(why, PTC_REDEEM_OK);
    CHECK_EQ(strlen(c->id), 19);
    CHECK(strncmp(c->id, "cn_", 3) == 0);
    CHECK_STREQ(c->group, "Default");
    CHECK_STREQ(c->hostname, "gw1.corp.example");
    CHECK_STREQ(c->agent, "portico/0.1");
    CHECK_UEQ(c->first_seen, T0 + 1000);
    CHECK_UEQ(c->last_seen, T0 + 1000);
    make_pk(pk, 7);
    CHECK_STREQ(c->public_key_b64, pk);
    ptc_ed25519_key_t key;
    uint8_t seed[32];
    memset(seed, 7, sizeof(seed));
    ptc_ed25519_from_seed(&key, seed);
    CHECK_MEMEQ(c->public_key, key.pk, 32);
    CHECK(file_exists(e.dir, "connectors", c->id));
    CHECK_EQ(ptc_state_token_find(e.st, tok_id)->uses_left, 0);
    check_event(__LINE__, &rec, 0, PTC_STATE_TOKEN, PTC_STATE_UPDATED, tok_id);
    check_event(__LINE__, &rec, 1, PTC_STATE_CONNECTOR, PTC_STATE_ADDED, c->id);

    /* Used up. */
    CHECK_EQ(redeem(&e, text, T0 + 2000, &why, NULL, err, sizeof(err)), PTC_EAUTH);
    CHECK_EQ(why, PTC_REDEEM_USED);
    CHECK_CONTAINS(err, "has no uses left");
    CHECK(strstr(err, text) == NULL);

    /* Expired: at the expiry time exactly. */
    mint(&e, "Default", HOUR, 1, T0, text, NULL);
    CHECK_EQ(redeem(&e, text, T0 + HOUR, &why, NULL, err, sizeof(err)), PTC_EAUTH);
    CHECK_EQ(why, PTC_REDEEM_EXPIRED);
    CHECK_CONTAINS(err, "expired at 2023-11-14T23:13:20.000Z");
    CHECK_OK(redeem(&e, text, T0 + HOUR - 1, &why, NULL, err, sizeof(err)));

    /* max_uses 3: three connectors, then used up. */
    const ptc_token_t *multi;
    mint(&e, "Default", 0, 3, T0, text, &multi);
    char multi_id[16];
    snprintf(multi_id, sizeof(multi_id), "%s", multi->id);
    char ids[3][32];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(redeem(&e, text, T0 + 10, &why, &c, err, sizeof(err)));
        snprintf(ids[i], sizeof(ids[i]), "%s", c->id);
        CHECK_EQ(ptc_state_token_find(e.st, multi_id)->uses_left, 2 - i);
    }
    CHECK_STRNE(ids[0], ids[1]);
    CHECK_STRNE(ids[1], ids[2]);
    CHECK_EQ(redeem(&e, text, T0 + 10, &why, NULL, err, sizeof(err)), PTC_EAUTH);
    CHECK_EQ(why, PTC_REDEEM_USED);
    CHECK_EQ(ptc_token_status(ptc_state_token_find(e.st, multi_id), T0), PTC_TOKEN_USED);
    CHECK_EQ(ptc_state_connector_count(e.st), 5);

    /* All of it is on disk. */
    env_reopen(&e);
    CHECK_EQ(ptc_state_connector_count(e.st), 5);
    CHECK_EQ(ptc_state_token_find(e.st, multi_id)->uses_left, 0);
    CHECK_EQ(ptc_state_token_find(e.st, tok_id)->uses_left, 0);
    CHECK_NOT_NULL(ptc_state_connector_find(e.st, ids[2]));
    env_close(&e);
}

static void test_token_of_vanished_group(void)
{
    /* A token document whose group is gone (edited by hand) loads, but does not register. */
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/state", ptc_test_tmpdir());
    const char *text = "ptk_gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8";
    uint8_t digest[32];
    char hex[65];
    ptc_sha256(text, strlen(text), digest);
    CHECK_OK(ptc_hex_encode(digest, 32, hex, sizeof(hex)));
    char doc[1024];
    snprintf(doc, sizeof(doc),
             "{\"id\":\"tok_0badc0de\",\"hash\":\"%s\",\"group\":\"gone\","
             "\"created_at\":\"2023-11-14T22:13:20Z\",\"expires_at\":\"2099-01-01T00:00:00Z\","
             "\"uses_left\":1,\"max_uses\":1,\"revoked\":false}",
             hex);
    mkdir(dir, 0700);
    write_doc(dir, "tokens", "tok_0badc0de", doc);
    env_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.dir, sizeof(e.dir), "%s", dir);
    env_open_at(&e, T0);
    ptc_redeem_refusal_t why;
    char err[512];
    CHECK_EQ(redeem(&e, text, T0, &why, NULL, err, sizeof(err)), PTC_EAUTH);
    CHECK_EQ(why, PTC_REDEEM_REVOKED);
    CHECK_CONTAINS(err, "no longer exists");
    env_close(&e);
}

static void test_redeem_store_failures(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    char text[PTC_TOKEN_TEXT_CAP];
    const ptc_token_t *tok;
    mint(&e, "Default", 0, 1, T0, text, &tok);
    char tok_id[16];
    snprintf(tok_id, sizeof(tok_id), "%s", tok->id);
    recorder_t rec = {.st = e.st};
    ptc_state_observe(e.st, on_change, &rec);
    ptc_redeem_refusal_t why;

    /* The token write fails: nothing changes. */
    fail_puts(e.store, 1u << 0);
    CHECK_EQ(redeem(&e, text, T0, &why, NULL, err, sizeof(err)), -28);
    CHECK_CONTAINS(err, "disk full");
    CHECK_EQ(ptc_state_token_find(e.st, tok_id)->uses_left, 1);
    CHECK_EQ(ptc_state_connector_count(e.st), 0);

    /* The connector write fails: the token write is undone. */
    fail_puts(e.store, 1u << 1);
    CHECK_EQ(redeem(&e, text, T0, &why, NULL, err, sizeof(err)), -28);
    CHECK_EQ(ptc_state_token_find(e.st, tok_id)->uses_left, 1);
    CHECK_EQ(ptc_state_connector_count(e.st), 0);
    CHECK_EQ(rec.cnt, 0);

    /* The undo fails too: memory follows the store, and the use is gone. */
    fail_puts(e.store, (1u << 1) | (1u << 2));
    CHECK_EQ(redeem(&e, text, T0, &why, NULL, err, sizeof(err)), -28);
    CHECK_EQ(ptc_state_token_find(e.st, tok_id)->uses_left, 0);
    CHECK_EQ(ptc_state_connector_count(e.st), 0);
    check_event(__LINE__, &rec, 0, PTC_STATE_TOKEN, PTC_STATE_UPDATED, tok_id);
    fail_puts(e.store, 0);
    env_reopen(&e);
    CHECK_EQ(ptc_state_token_find(e.st, tok_id)->uses_left, 0);
    CHECK_EQ(ptc_state_connector_count(e.st), 0);
    env_close(&e);
}

static uint64_t stored_last_seen(const char *dir, const char *id)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/connectors/%s.json", dir, id);
    json_t *doc = json_load_file(path, 0, NULL);
    CHECK_NOT_NULL(doc);
    uint64_t ms = 0;
    CHECK_OK(ptc_state_time_parse(json_string_value(json_object_get(doc, "last_seen")), &ms));
    json_decref(doc);
    return ms;
}

static void test_connectors(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    CHECK_OK(ptc_state_group_add(e.st, "g2", T0, err, sizeof(err)));
    const ptc_connector_t *c = register_connector(&e, "Default");
    char id[32];
    snprintf(id, sizeof(id), "%s", c->id);
    CHECK(ptc_state_connector_find(e.st, id) == c);
    CHECK(ptc_state_connector_at(e.st, 0) == c);
    CHECK_NULL(ptc_state_connector_find(e.st, "cn_0000000000000000"));

    json_t *j = ptc_state_connector_to_json(c);
    CHECK_STREQ(json_string_value(json_object_get(j, "id")), id);
    CHECK_STREQ(json_string_value(json_object_get(j, "group")), "Default");
    CHECK_STREQ(json_string_value(json_object_get(j, "first_seen")), "2023-11-14T22:13:21.000Z");
    CHECK_EQ(json_string_length(json_object_get(j, "public_key")), 43);
    json_decref(j);

    recorder_t rec = {.st = e.st};
    ptc_state_observe(e.st, on_change, &rec);

    /* Move. */
    CHECK_EQ(ptc_state_connector_move(e.st, id, "nope", err, sizeof(err)), PTC_EFORMAT);
    CHECK_CONTAINS(err, "group: no group named \"nope\"");
    CHECK_EQ(ptc_state_connector_move(e.st, "cn_x", "g2", err, sizeof(err)), PTC_ENOTFOUND);
    CHECK_OK(ptc_state_connector_move(e.st, id, "Default", err, sizeof(err)));
    CHECK_EQ(rec.cnt, 0); /* no change, no event */
    fail_puts(e.store, 1u << 0);
    CHECK_EQ(ptc_state_connector_move(e.st, id, "g2", err, sizeof(err)), -28);
    CHECK_STREQ(ptc_state_connector_find(e.st, id)->group, "Default");
    CHECK_EQ(rec.cnt, 0);
    fail_puts(e.store, 0);
    CHECK_OK(ptc_state_connector_move(e.st, id, "g2", err, sizeof(err)));
    CHECK_STREQ(ptc_state_connector_find(e.st, id)->group, "g2");
    check_event(__LINE__, &rec, 0, PTC_STATE_CONNECTOR, PTC_STATE_MOVED, id);

    /* Touch: memory at once, the store at most once a minute, or on flush. */
    uint64_t t1 = T0 + 1000;
    CHECK_UEQ(stored_last_seen(e.dir, id), t1);
    CHECK_OK(ptc_state_connector_touch(e.st, id, t1 + 30000, false, err, sizeof(err)));
    CHECK_UEQ(ptc_state_connector_find(e.st, id)->last_seen, t1 + 30000);
    CHECK_UEQ(stored_last_seen(e.dir, id), t1);
    CHECK_OK(ptc_state_connector_touch(e.st, id, t1 + 59999, false, err, sizeof(err)));
    CHECK_UEQ(stored_last_seen(e.dir, id), t1);
    CHECK_OK(ptc_state_connector_touch(e.st, id, t1 + 60000, false, err, sizeof(err)));
    CHECK_UEQ(stored_last_seen(e.dir, id), t1 + 60000);
    CHECK_OK(ptc_state_connector_touch(e.st, id, t1 + 61000, false, err, sizeof(err)));
    CHECK_UEQ(stored_last_seen(e.dir, id), t1 + 60000);
    CHECK_OK(ptc_state_connector_touch(e.st, id, t1 + 62000, true, err, sizeof(err)));
    CHECK_UEQ(stored_last_seen(e.dir, id), t1 + 62000);
    /* Time never goes backwards. */
    CHECK_OK(ptc_state_connector_touch(e.st, id, t1, true, err, sizeof(err)));
    CHECK_UEQ(ptc_state_connector_find(e.st, id)->last_seen, t1 + 62000);
    CHECK_EQ(ptc_state_connector_touch(e.st, "cn_x", t1, true, err, sizeof(err)), PTC_ENOTFOUND);
    /* A failed write keeps the time in memory and is retried by the next touch. */
    fail_puts(e.store, 1u << 0);
    CHECK_EQ(ptc_state_connector_touch(e.st, id, t1 + 200000, false, err, sizeof(err)), -28);
    CHECK_UEQ(ptc_state_connector_find(e.st, id)->last_seen, t1 + 200000);
    CHECK_OK(ptc_state_connector_touch(e.st, id, t1 + 200001, false, err, sizeof(err)));
    CHECK_UEQ(stored_last_seen(e.dir, id), t1 + 200001);
    fail_puts(e.store, 0);
    CHECK_EQ(rec.cnt, 1); /* touches notify nobody */

    /* Delete. */
    fail_dels(e.store, true);
    CHECK_EQ(ptc_state_connector_delete(e.st, id, err, sizeof(err)), -30);
    CHECK_NOT_NULL(ptc_state_connector_find(e.st, id));
    fail_dels(e.store, false);
    CHECK_OK(ptc_state_connector_delete(e.st, id, err, sizeof(err)));
    CHECK_NULL(ptc_state_connector_find(e.st, id));
    CHECK(!file_exists(e.dir, "connectors", id));
    check_event(__LINE__, &rec, 1, PTC_STATE_CONNECTOR, PTC_STATE_DELETED, id);
    CHECK_EQ(ptc_state_connector_delete(e.st, id, err, sizeof(err)), PTC_ENOTFOUND);
    CHECK_CONTAINS(err, "no connector with id");
    env_reopen(&e);
    CHECK_EQ(ptc_state_connector_count(e.st), 0);
    env_close(&e);
}

static void test_apps(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    recorder_t rec = {.st = e.st};
    ptc_state_observe(e.st, on_change, &rec);
    const ptc_app_t *hr = add_app(&e, "{\"name\":\"hr\",\"internal_url\":\"http://10.0.0.5/\"}");
    CHECK_STREQ(hr->external_url, "https://hr.apps.example.com/");
    CHECK_STREQ(hr->idp, "corp");
    CHECK(ptc_state_app_find(e.st, "hr") == hr);
    CHECK(file_exists(e.dir, "apps", "hr"));
    check_event(__LINE__, &rec, 0, PTC_STATE_APP, PTC_STATE_ADDED, "hr");

    /* Refusals. */
    CHECK_EQ(add_app_rc(&e, "{\"name\":\"hr\",\"internal_url\":\"http://x/\"}", err, sizeof(err)),
             PTC_EEXIST);
    CHECK_CONTAINS(err, "name: an app named \"hr\" already exists");
    CHECK_EQ(add_app_rc(&e,
                        "{\"name\":\"hr2\",\"internal_url\":\"http://x/\","
                        "\"external_url\":\"https://HR.apps.example.com:8443/\"}",
                        err, sizeof(err)),
             PTC_EEXIST);
    CHECK_CONTAINS(err, "external_url: hr.apps.example.com/ is already published by app \"hr\"");
    CHECK_EQ(add_app_rc(&e,
                        "{\"name\":\"hr3\",\"internal_url\":\"http://x/\","
                        "\"connector_group\":\"Nowhere\"}",
                        err, sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "connector_group: no group named \"Nowhere\"");
    CHECK_EQ(add_app_rc(&e, "{\"name\":\"hr4\",\"internal_url\":\"ftp://x/\"}", err, sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "internal_url: expected an http or https URL");
    CHECK_EQ(add_app_rc(&e, "{\"name\":\"hr5\",\"internal_url\":\"http://x/\",\"idp\":\"other\"}",
                        err, sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "idp: no identity provider is named \"other\"");
    fail_puts(e.store, 1u << 0);
    CHECK_EQ(add_app_rc(&e, "{\"name\":\"hr6\",\"internal_url\":\"http://x/\"}", err, sizeof(err)),
             -28);
    fail_puts(e.store, 0);
    CHECK_NULL(ptc_state_app_find(e.st, "hr6"));
    CHECK_EQ(ptc_state_app_count(e.st), 1);
    CHECK_EQ(rec.cnt, 1);

    /* Same host, another path: fine. */
    add_app(&e, "{\"name\":\"hr-api\",\"internal_url\":\"http://10.0.0.6/v1/\","
                "\"external_url\":\"https://hr.apps.example.com/api/\"}");
    CHECK_STREQ(ptc_state_app_at(e.st, 0)->name, "hr");
    CHECK_STREQ(ptc_state_app_at(e.st, 1)->name, "hr-api");

    /* Update: a router holding the old version keeps it until it lets go. */
    const ptc_app_t *held = ptc_app_ref(ptc_state_app_find(e.st, "hr"));
    json_t *patch = load("{\"maintenance_mode\":true}");
    const ptc_app_t *hr2 = NULL;
    CHECK_OK(ptc_state_app_update(e.st, "hr", patch, &hr2, err, sizeof(err)));
    json_decref(patch);
    CHECK(hr2->maintenance_mode);
    CHECK(ptc_state_app_find(e.st, "hr") == hr2);
    CHECK(!held->maintenance_mode);
    CHECK_STREQ(held->name, "hr");
    ptc_app_unref(held);
    check_event(__LINE__, &rec, 2, PTC_STATE_APP, PTC_STATE_UPDATED, "hr");

    /* Update refusals leave the app as it was. */
    patch = load("{\"external_url\":\"https://hr.apps.example.com/api/\"}");
    CHECK_EQ(ptc_state_app_update(e.st, "hr", patch, NULL, err, sizeof(err)), PTC_EEXIST);
    CHECK_CONTAINS(err, "already published by app \"hr-api\"");
    json_decref(patch);
    patch = load("{\"connector_group\":\"Nowhere\"}");
    CHECK_EQ(ptc_state_app_update(e.st, "hr", patch, NULL, err, sizeof(err)), PTC_EFORMAT);
    CHECK_EQ(ptc_state_app_update(e.st, "nope", patch, NULL, err, sizeof(err)), PTC_ENOTFOUND);
    CHECK_CONTAINS(err, "no app named \"nope\"");
    json_decref(patch);
    patch = load("{\"hsts\":true}");
    fail_puts(e.store, 1u << 0);
    CHECK_EQ(ptc_state_app_update(e.st, "hr", patch, NULL, err, sizeof(err)), -28);
    fail_puts(e.store, 0);
    json_decref(patch);
    CHECK(ptc_state_app_find(e.st, "hr") == hr2);
    CHECK(!hr2->hsts);
    /* Updating an app to its own external URL is no conflict. */
    patch = load("{\"external_url\":\"https://hr.apps.example.com/\"}");
    CHECK_OK(ptc_state_app_update(e.st, "hr", patch, NULL, err, sizeof(err)));
    json_decref(patch);

    /* Reload: the same documents. */
    json_t *before = ptc_app_to_json(ptc_state_app_find(e.st, "hr"));
    env_reopen(&e);
    json_t *after = ptc_app_to_json(ptc_state_app_find(e.st, "hr"));
    CHECK(json_equal(before, after));
    json_decref(before);
    json_decref(after);
    CHECK_EQ(ptc_state_app_count(e.st), 2);

    /* Delete. */
    rec.cnt = 0;
    rec.st = e.st;
    ptc_state_observe(e.st, on_change, &rec);
    fail_dels(e.store, true);
    CHECK_EQ(ptc_state_app_delete(e.st, "hr", err, sizeof(err)), -30);
    fail_dels(e.store, false);
    CHECK_NOT_NULL(ptc_state_app_find(e.st, "hr"));
    CHECK_OK(ptc_state_app_delete(e.st, "hr", err, sizeof(err)));
    CHECK_NULL(ptc_state_app_find(e.st, "hr"));
    CHECK(!file_exists(e.dir, "apps", "hr"));
    check_event(__LINE__, &rec, 0, PTC_STATE_APP, PTC_STATE_DELETED, "hr");
    CHECK_EQ(ptc_state_app_delete(e.st, "hr", err, sizeof(err)), PTC_ENOTFOUND);
    env_close(&e);
}

static const char *route_name(env_t *e, const char *host, const char *path)
{
    const ptc_app_t *app = ptc_state_app_route(e->st, host, strlen(host), path, strlen(path));
    return app != NULL ? app->name : "(none)";
}

static void test_route_longest_prefix(void)
{
    env_t e;
    env_init(&e);
    add_app(&e, "{\"name\":\"root\",\"internal_url\":\"http://r/\","
                "\"external_url\":\"https://a.example.com/\"}");
    add_app(&e, "{\"name\":\"deep\",\"internal_url\":\"http://d/\","
                "\"external_url\":\"https://a.example.com/app/deep/\"}");
    add_app(&e, "{\"name\":\"app\",\"internal_url\":\"http://p/\","
                "\"external_url\":\"https://a.example.com/app/\"}");
    add_app(&e, "{\"name\":\"other\",\"internal_url\":\"http://o/\","
                "\"external_url\":\"https://b.example.com/only/\"}");
    add_app(&e, "{\"name\":\"v6\",\"internal_url\":\"http://o/\","
                "\"external_url\":\"https://[2001:db8::1]:8443/\"}");

    CHECK_STREQ(route_name(&e, "a.example.com", "/app/deep/x"), "deep");
    CHECK_STREQ(route_name(&e, "A.Example.COM:443", "/app/deep/x?q=/"), "deep");
    CHECK_STREQ(route_name(&e, "a.example.com", "/app/deep"), "deep");
    CHECK_STREQ(route_name(&e, "a.example.com", "/app/deeper"), "app");
    CHECK_STREQ(route_name(&e, "a.example.com", "/app"), "app");
    CHECK_STREQ(route_name(&e, "a.example.com", "/app/"), "app");
    CHECK_STREQ(route_name(&e, "a.example.com", "/apple"), "root");
    CHECK_STREQ(route_name(&e, "a.example.com", "/"), "root");
    CHECK_STREQ(route_name(&e, "a.example.com.", "/x"), "root");
    CHECK_STREQ(route_name(&e, "a.example.com", "/x?/app/deep/"), "root");
    CHECK_STREQ(route_name(&e, "b.example.com", "/only/x"), "other");
    CHECK_STREQ(route_name(&e, "b.example.com", "/elsewhere"), "(none)");
    CHECK_STREQ(route_name(&e, "c.example.com", "/"), "(none)");
    CHECK_STREQ(route_name(&e, "[2001:DB8:0::1]:8443", "/"), "v6");
    CHECK_STREQ(route_name(&e, "bad host!", "/"), "(none)");
    CHECK_STREQ(route_name(&e, "", "/"), "(none)");

    /* The index follows changes. */
    char err[512];
    CHECK_OK(ptc_state_app_delete(e.st, "root", err, sizeof(err)));
    CHECK_STREQ(route_name(&e, "a.example.com", "/apple"), "(none)");
    CHECK_STREQ(route_name(&e, "a.example.com", "/app/x"), "app");
    json_t *patch = load("{\"external_url\":\"https://c.example.com/app/\"}");
    CHECK_OK(ptc_state_app_update(e.st, "app", patch, NULL, err, sizeof(err)));
    json_decref(patch);
    CHECK_STREQ(route_name(&e, "a.example.com", "/app/x"), "(none)");
    CHECK_STREQ(route_name(&e, "c.example.com", "/app/x"), "app");

    /* Many hosts (the table grows); each still finds its own app, also after a reload. */
    for (int i = 0; i < 40; i++) {
        char doc[256];
        snprintf(doc, sizeof(doc), "{\"name\":\"app%d\",\"internal_url\":\"http://i/\"}", i);
        add_app(&e, doc);
    }
    env_reopen(&e);
    for (int i = 0; i < 40; i++) {
        char host[64];
        char name[16];
        snprintf(host, sizeof(host), "app%d.apps.example.com", i);
        snprintf(name, sizeof(name), "app%d", i);
        CHECK_STREQ(route_name(&e, host, "/any"), name);
    }
    CHECK_STREQ(route_name(&e, "a.example.com", "/app/deep/"), "deep");
    env_close(&e);
}

static void test_certs(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    const char *tmp = ptc_test_tmpdir();
    ptc_certgen_cert_t ca;
    ptc_certgen_ca(NULL, "Test CA", &ca);
    const char *const sans[] = {"DNS:Shop.Example.com", "DNS:*.shop.example.com",
                                "DNS:shop.example.com", "IP:127.0.0.1", NULL};
    ptc_certgen_opts_t opts = {.sans = sans};
    ptc_certgen_cert_t leaf;
    ptc_certgen_leaf(&ca, tmp, "shop", &opts, &leaf);
    ptc_certgen_cert_t leaf2;
    ptc_certgen_leaf(&ca, NULL, "shop2", &opts, &leaf2);
    ptc_certgen_opts_t old_opts = {.sans = sans, .expired = true};
    ptc_certgen_cert_t expired;
    ptc_certgen_leaf(&ca, NULL, "old", &old_opts, &expired);
    ptc_certgen_opts_t bare_opts = {.cn = "bare.example.com"};
    ptc_certgen_cert_t bare;
    ptc_certgen_leaf(&ca, NULL, "bare", &bare_opts, &bare);

    recorder_t rec = {.st = e.st};
    ptc_state_observe(e.st, on_change, &rec);
    uint64_t now = wall_ms();
    const ptc_cert_t *c = NULL;
    CHECK_OK(ptc_state_cert_add(e.st, leaf.cert_pem, leaf.key_pem, now, &c, err, sizeof(err)));
    CHECK_EQ(strlen(c->id), 12);
    CHECK(strncmp(c->id, "crt_", 4) == 0);
    CHECK_EQ(c->names_cnt, 2); /* lower-cased, deduplicated, DNS names only */
    CHECK_STREQ(c->names[0], "shop.example.com");
    CHECK_STREQ(c->names[1], "*.shop.example.com");
    CHECK(c->not_after > now + 20 * 24 * HOUR);
    CHECK(c->not_before < now);
    CHECK_UEQ(c->added_at, now);
    char id[16];
    snprintf(id, sizeof(id), "%s", c->id);
    check_event(__LINE__, &rec, 0, PTC_STATE_CERT, PTC_STATE_ADDED, id);

    char path[1024];
    snprintf(path, sizeof(path), "%s/certs/%s.json", e.dir, id);
    struct stat sb;
    CHECK_OK(stat(path, &sb));
    CHECK_EQ(sb.st_mode & 0777, 0600);
    char *doc = read_file(path);
    CHECK_CONTAINS(doc, "PRIVATE KEY");
    free(doc);

    json_t *j = ptc_state_cert_to_json(c, false);
    CHECK_NULL(json_object_get(j, "key_pem"));
    CHECK_NULL(json_object_get(j, "cert_pem"));
    CHECK_EQ(json_array_size(json_object_get(j, "names")), 2);
    json_decref(j);
    j = ptc_state_cert_to_json(c, true);
    CHECK_NULL(json_object_get(j, "key_pem"));
    CHECK_STREQ(json_string_value(json_object_get(j, "cert_pem")), leaf.cert_pem);
    json_decref(j);

    /* Refusals. */
    CHECK_EQ(ptc_state_cert_add(e.st, leaf.cert_pem, leaf2.key_pem, now, NULL, err, sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "key_pem: the private key does not match the certificate");
    CHECK_EQ(
        ptc_state_cert_add(e.st, expired.cert_pem, expired.key_pem, now, NULL, err, sizeof(err)),
        PTC_EFORMAT);
    CHECK_CONTAINS(err, "cert_pem: the certificate expired at");
    CHECK_EQ(ptc_state_cert_add(e.st, "garbage", leaf.key_pem, now, NULL, err, sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "cert_pem: expected a PEM certificate chain");
    CHECK_EQ(ptc_state_cert_add(e.st, leaf.cert_pem, "garbage", now, NULL, err, sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "key_pem: expected a PEM private key");
    CHECK_EQ(ptc_state_cert_add(e.st, bare.cert_pem, bare.key_pem, now, NULL, err, sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "no DNS subjectAltName");
    fail_puts(e.store, 1u << 0);
    CHECK_EQ(ptc_state_cert_add(e.st, leaf2.cert_pem, leaf2.key_pem, now, NULL, err, sizeof(err)),
             -28);
    fail_puts(e.store, 0);
    CHECK_EQ(ptc_state_cert_count(e.st), 1);
    CHECK_EQ(rec.cnt, 1);

    /* Reload, then delete. */
    env_reopen(&e);
    c = ptc_state_cert_find(e.st, id);
    CHECK_NOT_NULL(c);
    CHECK_EQ(c->names_cnt, 2);
    CHECK_STREQ(c->key_pem, leaf.key_pem);
    CHECK_UEQ(c->added_at, now);
    CHECK(ptc_state_cert_at(e.st, 0) == c);
    rec.cnt = 0;
    rec.st = e.st;
    ptc_state_observe(e.st, on_change, &rec);
    CHECK_OK(ptc_state_cert_delete(e.st, id, err, sizeof(err)));
    CHECK_NULL(ptc_state_cert_find(e.st, id));
    check_event(__LINE__, &rec, 0, PTC_STATE_CERT, PTC_STATE_DELETED, id);
    CHECK_EQ(ptc_state_cert_delete(e.st, id, err, sizeof(err)), PTC_ENOTFOUND);
    CHECK_CONTAINS(err, "no certificate with id");
    env_close(&e);

    /* A certificate that expired while stored still loads: the edge must start. */
    json_t *d =
        json_pack("{s:s, s:s, s:s, s:s}", "id", "crt_0000beef", "cert_pem", expired.cert_pem,
                  "key_pem", expired.key_pem, "added_at", "2023-01-01T00:00:00Z");
    char *text = json_dumps(d, 0);
    write_doc(e.dir, "certs", "crt_0000beef", text);
    free(text);
    json_decref(d);
    env_open_at(&e, now);
    c = ptc_state_cert_find(e.st, "crt_0000beef");
    CHECK_NOT_NULL(c);
    CHECK(c->not_after < now);
    env_close(&e);

    ptc_certgen_dispose(&bare);
    ptc_certgen_dispose(&expired);
    ptc_certgen_dispose(&leaf2);
    ptc_certgen_dispose(&leaf);
    ptc_certgen_dispose(&ca);
}

/* Opens a state over `dir` expecting a refusal that names `file` and says `why`. */
static void check_load_refused(int line, const char *dir, const char *file, const char *why)
{
    ptc_store_t *store = NULL;
    char err[1024] = "";
    CHECK_OK(ptc_store_jsondir_open(dir, &store, err, sizeof(err)));
    ptc_state_t *st = NULL;
    int rc = ptc_state_open(store, &ctx, T0, &st, err, sizeof(err));
    ptc_store_free(store);
    if (rc == 0 || st != NULL) {
        ptc_state_free(st);
        ptc_test_fail(__FILE__, line, "the load of %s succeeded", file);
    }
    if (strstr(err, file) == NULL || strstr(err, why) == NULL) {
        ptc_test_fail(__FILE__, line, "message \"%s\" lacks \"%s\" or \"%s\"", err, file, why);
    }
}

static void test_corrupt_documents_refuse_the_load(void)
{
    const char *tmp = ptc_test_tmpdir();
    char dir[600];
    static const char *const good_app =
        "{\"name\":\"hr\",\"internal_url\":\"http://h/\",\"external_url\":\"https://hr.x.org/\"}";

    snprintf(dir, sizeof(dir), "%s/garbage", tmp);
    mkdir(dir, 0700);
    write_doc(dir, "apps", "hr", "{not json");
    check_load_refused(__LINE__, dir, "garbage/apps/hr.json", "invalid JSON");

    snprintf(dir, sizeof(dir), "%s/badapp", tmp);
    mkdir(dir, 0700);
    write_doc(dir, "apps", "hr", "{\"name\":\"hr\",\"internal_url\":\"gopher://h/\"}");
    check_load_refused(__LINE__, dir, "badapp/apps/hr.json", "internal_url:");

    snprintf(dir, sizeof(dir), "%s/renamed", tmp);
    mkdir(dir, 0700);
    write_doc(dir, "apps", "payroll", good_app);
    check_load_refused(__LINE__, dir, "renamed/apps/payroll.json", "does not match the file name");

    snprintf(dir, sizeof(dir), "%s/dupurl", tmp);
    mkdir(dir, 0700);
    write_doc(dir, "apps", "hr", good_app);
    write_doc(
        dir, "apps", "hr2",
        "{\"name\":\"hr2\",\"internal_url\":\"http://h/\",\"external_url\":\"https://hr.x.org/\"}");
    check_load_refused(__LINE__, dir, "dupurl/apps/hr2.json", "already published");

    snprintf(dir, sizeof(dir), "%s/nogroup", tmp);
    mkdir(dir, 0700);
    write_doc(
        dir, "apps", "hr",
        "{\"name\":\"hr\",\"internal_url\":\"http://h/\",\"external_url\":\"https://hr.x.org/\","
        "\"connector_group\":\"gone\"}");
    check_load_refused(__LINE__, dir, "nogroup/apps/hr.json", "no group named \"gone\"");

    snprintf(dir, sizeof(dir), "%s/badconn", tmp);
    mkdir(dir, 0700);
    write_doc(dir, "connectors", "cn_0011223344556677",
              "{\"id\":\"cn_0011223344556677\",\"public_key\":\"AAAA\",\"group\":\"Default\","
              "\"hostname\":\"h\",\"agent\":\"a\",\"first_seen\":\"2023-11-14T22:13:20Z\","
              "\"last_seen\":\"2023-11-14T22:13:20Z\"}");
    check_load_refused(__LINE__, dir, "badconn/connectors/cn_0011223344556677.json", "public_key:");

    snprintf(dir, sizeof(dir), "%s/badtok", tmp);
    mkdir(dir, 0700);
    write_doc(dir, "tokens", "tok_00000001",
              "{\"id\":\"tok_00000001\",\"hash\":\"XYZ\",\"group\":\"Default\","
              "\"created_at\":\"2023-11-14T22:13:20Z\",\"expires_at\":\"2023-11-15T22:13:20Z\","
              "\"uses_left\":1,\"max_uses\":1,\"revoked\":false}");
    check_load_refused(__LINE__, dir, "badtok/tokens/tok_00000001.json", "hash:");

    snprintf(dir, sizeof(dir), "%s/badtime", tmp);
    mkdir(dir, 0700);
    write_doc(dir, "groups", "ops", "{\"name\":\"ops\",\"created_at\":\"yesterday\"}");
    check_load_refused(__LINE__, dir, "badtime/groups/ops.json", "created_at:");

    snprintf(dir, sizeof(dir), "%s/badgroup", tmp);
    mkdir(dir, 0700);
    write_doc(dir, "groups", "ops", "{\"name\":\"dev\",\"created_at\":\"2023-11-14T22:13:20Z\"}");
    check_load_refused(__LINE__, dir, "badgroup/groups/ops.json", "does not match the file name");

    snprintf(dir, sizeof(dir), "%s/badcert", tmp);
    mkdir(dir, 0700);
    write_doc(dir, "certs", "crt_00000001",
              "{\"id\":\"crt_00000001\",\"cert_pem\":\"x\",\"key_pem\":\"y\","
              "\"added_at\":\"2023-11-14T22:13:20Z\"}");
    check_load_refused(__LINE__, dir, "badcert/certs/crt_00000001.json", "cert_pem:");
}

static void test_store_failures_leave_memory(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    recorder_t rec = {.st = e.st};
    ptc_state_observe(e.st, on_change, &rec);
    fail_puts(e.store, 1u << 0);
    CHECK_EQ(ptc_state_group_add(e.st, "ops", T0, err, sizeof(err)), -28);
    CHECK_CONTAINS(err, "groups/ops.json: disk full");
    CHECK_NULL(ptc_state_group_find(e.st, "ops"));
    fail_puts(e.store, 1u << 0);
    char text[PTC_TOKEN_TEXT_CAP];
    CHECK_EQ(ptc_state_token_mint(e.st, "Default", 0, 0, T0, text, NULL, err, sizeof(err)), -28);
    CHECK_STREQ(text, ""); /* no token text for a token that does not exist */
    CHECK_EQ(ptc_state_token_count(e.st), 0);
    fail_puts(e.store, 0);
    CHECK_OK(ptc_state_group_add(e.st, "ops", T0, err, sizeof(err)));
    const ptc_token_t *tok;
    mint(&e, "Default", 0, 0, T0, text, &tok);
    fail_puts(e.store, 1u << 0);
    CHECK_EQ(ptc_state_token_revoke(e.st, tok->id, err, sizeof(err)), -28);
    CHECK(!tok->revoked);
    fail_dels(e.store, true);
    CHECK_EQ(ptc_state_group_delete(e.st, "ops", T0, err, sizeof(err)), -30);
    CHECK_NOT_NULL(ptc_state_group_find(e.st, "ops"));
    fail_dels(e.store, false);
    fail_puts(e.store, 0);
    check_event(__LINE__, &rec, 0, PTC_STATE_GROUP, PTC_STATE_ADDED, "ops");
    check_event(__LINE__, &rec, 1, PTC_STATE_TOKEN, PTC_STATE_ADDED, NULL);
    CHECK_EQ(rec.cnt, 2);
    env_close(&e);
}

static void test_observers(void)
{
    env_t e;
    env_init(&e);
    char err[512];
    recorder_t a = {.st = e.st};
    recorder_t b = {.st = e.st};
    ptc_state_observe(e.st, on_change, &a);
    ptc_state_observe(e.st, on_change, &b);
    CHECK_OK(ptc_state_group_add(e.st, "g", T0, err, sizeof(err)));
    add_app(&e, "{\"name\":\"x\",\"internal_url\":\"http://h/\",\"connector_group\":\"g\"}");
    ptc_state_unobserve(e.st, on_change, &b);
    ptc_state_unobserve(e.st, on_change, &b); /* absent: no-op */
    json_t *patch = load("{\"hsts\":true}");
    CHECK_OK(ptc_state_app_update(e.st, "x", patch, NULL, err, sizeof(err)));
    json_decref(patch);
    CHECK_OK(ptc_state_app_delete(e.st, "x", err, sizeof(err)));
    CHECK_OK(ptc_state_group_delete(e.st, "g", T0, err, sizeof(err)));
    CHECK_EQ(a.cnt, 5);
    check_event(__LINE__, &a, 0, PTC_STATE_GROUP, PTC_STATE_ADDED, "g");
    check_event(__LINE__, &a, 1, PTC_STATE_APP, PTC_STATE_ADDED, "x");
    check_event(__LINE__, &a, 2, PTC_STATE_APP, PTC_STATE_UPDATED, "x");
    check_event(__LINE__, &a, 3, PTC_STATE_APP, PTC_STATE_DELETED, "x");
    check_event(__LINE__, &a, 4, PTC_STATE_GROUP, PTC_STATE_DELETED, "g");
    CHECK_EQ(b.cnt, 2);
    CHECK_STREQ(ptc_state_kind_name(PTC_STATE_CONNECTOR), "connector");
    CHECK_STREQ(ptc_state_op_name(PTC_STATE_MOVED), "moved");
    CHECK_STREQ(ptc_token_status_name(PTC_TOKEN_EXPIRED), "expired");
    env_close(&e);
}

static void test_time(void)
{
    char buf[PTC_STATE_TIME_CAP];
    ptc_state_time_format(T0 + 7, buf);
    CHECK_STREQ(buf, "2023-11-14T22:13:20.007Z");
    ptc_state_time_format(0, buf);
    CHECK_STREQ(buf, "1970-01-01T00:00:00.000Z");
    uint64_t ms = 0;
    CHECK_OK(ptc_state_time_parse("2023-11-14T22:13:20.007Z", &ms));
    CHECK_UEQ(ms, T0 + 7);
    CHECK_OK(ptc_state_time_parse("2023-11-14T22:13:20Z", &ms));
    CHECK_UEQ(ms, T0);
    CHECK_OK(ptc_state_time_parse("2023-11-14t22:13:20.5z", &ms));
    CHECK_UEQ(ms, T0 + 500);
    CHECK_OK(ptc_state_time_parse("2023-11-14T22:13:20.123456Z", &ms));
    CHECK_UEQ(ms, T0 + 123);
    CHECK_OK(ptc_state_time_parse("2023-11-15T00:13:20+02:00", &ms));
    CHECK_UEQ(ms, T0);
    CHECK_OK(ptc_state_time_parse("2023-11-14T21:43:20-00:30", &ms));
    CHECK_UEQ(ms, T0);
    CHECK_OK(ptc_state_time_parse("2024-02-29T00:00:00Z", &ms));
    CHECK_UEQ(ms, 1709164800000ull);
    const char *bad[] = {"",
                         "yesterday",
                         "2023-11-14",
                         "2023-11-14T22:13:20",
                         "2023-11-14 22:13:20Z",
                         "2023-02-29T00:00:00Z",
                         "2023-13-01T00:00:00Z",
                         "2023-11-14T24:00:00Z",
                         "2023-11-14T22:13:20.Z",
                         "2023-11-14T22:13:20Zjunk",
                         "2023-11-14T22:13:20+0200",
                         "1969-12-31T23:59:59Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ptc_state_time_parse(bad[i], &ms) != PTC_EFORMAT) {
            ptc_test_fail(__FILE__, __LINE__, "\"%s\" was accepted", bad[i]);
        }
    }
}

static void test_group_names(void)
{
    CHECK(ptc_state_group_name_is_valid("Default"));
    CHECK(ptc_state_group_name_is_valid("Branch Office 2.b_c-d"));
    CHECK(ptc_state_group_name_is_valid(".hidden"));
    CHECK(!ptc_state_group_name_is_valid(""));
    CHECK(!ptc_state_group_name_is_valid("a/b"));
    CHECK(!ptc_state_group_name_is_valid("caf\xc3\xa9"));
    char n[70];
    memset(n, 'g', 65);
    n[65] = '\0';
    CHECK(!ptc_state_group_name_is_valid(n));
    n[64] = '\0';
    CHECK(ptc_state_group_name_is_valid(n));

    /* Names that are no file names still persist. */
    env_t e;
    env_init(&e);
    char err[512];
    CHECK_OK(ptc_state_group_add(e.st, ".hidden", T0, err, sizeof(err)));
    CHECK_OK(ptc_state_group_add(e.st, n, T0, err, sizeof(err)));
    env_reopen(&e);
    CHECK_NOT_NULL(ptc_state_group_find(e.st, ".hidden"));
    CHECK_NOT_NULL(ptc_state_group_find(e.st, n));
    CHECK_OK(ptc_state_group_delete(e.st, ".hidden", T0, err, sizeof(err)));
    env_reopen(&e);
    CHECK_NULL(ptc_state_group_find(e.st, ".hidden"));
    env_close(&e);
}

static void test_app_ctx_reload(void)
{
    env_t e;
    env_init(&e);
    add_app(&e, "{\"name\":\"a\",\"internal_url\":\"http://h/\"}");
    /* After a configuration reload, new apps take the new defaults; stored ones keep theirs,
     * and a provider that is gone no longer validates for new apps. */
    static const char *const new_idps[] = {"okta"};
    ptc_app_ctx_t next = {.default_domain = "new.example.net", .idps = new_idps, .idp_cnt = 1};
    ptc_state_set_app_ctx(e.st, &next);
    const ptc_app_t *b = add_app(&e, "{\"name\":\"b\",\"internal_url\":\"http://h/\"}");
    CHECK_STREQ(b->external_url, "https://b.new.example.net/");
    CHECK_STREQ(b->idp, "okta");
    CHECK_STREQ(ptc_state_app_find(e.st, "a")->external_url, "https://a.apps.example.com/");
    char err[512];
    CHECK_EQ(add_app_rc(&e, "{\"name\":\"c\",\"internal_url\":\"http://h/\",\"idp\":\"corp\"}", err,
                        sizeof(err)),
             PTC_EFORMAT);
    CHECK_CONTAINS(err, "idp:");
    /* The stored app with the old provider still loads. */
    ptc_state_set_app_ctx(e.st, &ctx);
    env_close(&e);
    ptc_store_t *store = NULL;
    CHECK_OK(ptc_store_jsondir_open(e.dir, &store, err, sizeof(err)));
    ptc_state_t *st = NULL;
    CHECK_OK(ptc_state_open(store, &next, T0, &st, err, sizeof(err)));
    CHECK_STREQ(ptc_state_app_find(st, "a")->idp, "corp");
    ptc_state_free(st);
    ptc_store_free(store);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_open_creates_default_group),
    PTC_TEST(test_groups),
    PTC_TEST(test_group_in_use),
    PTC_TEST(test_group_names),
    PTC_TEST(test_token_mint),
    PTC_TEST(test_token_revoke),
    PTC_TEST(test_token_redeem),
    PTC_TEST(test_token_of_vanished_group),
    PTC_TEST(test_redeem_store_failures),
    PTC_TEST(test_connectors),
    PTC_TEST(test_apps),
    PTC_TEST(test_app_ctx_reload),
    PTC_TEST(test_route_longest_prefix),
    PTC_TEST(test_certs),
    PTC_TEST(test_corrupt_documents_refuse_the_load),
    PTC_TEST(test_store_failures_leave_memory),
    PTC_TEST(test_observers),
    PTC_TEST(test_time),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
