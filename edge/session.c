/* SPDX-License-Identifier: MIT */
/*
 * Session key ring, sealed cookie envelopes, session and login-state payloads, PKCE and the
 * cookie header helpers (see session.h). The key file is the only I/O; everything else is a
 * pure function of its inputs and the clock the caller passes in. Secrets (keys, sealed
 * plaintexts, serialized key files) are wiped before their memory is released and never
 * appear in an error message.
 */
#include "edge/session.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/keys.h"
#include "common/log.h"

#define KEY_LEN crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES

/* Envelope layout: version byte, key id, nonce, ciphertext with its tag. */
#define ENV_VERSION 0x01
#define ENV_HDR_LEN (1 + 4 + NONCE_LEN)
#define ENV_MIN_LEN (ENV_HDR_LEN + TAG_LEN)
/* Browsers keep about 4096 bytes per cookie; a longer value was not made by us. */
#define ENV_TEXT_MAX 4096
#define ENV_BIN_MAX (ENV_TEXT_MAX / 4 * 3)

/* The key file is a few hundred bytes; anything much larger is not ours. */
#define KEY_FILE_MAX (64 * 1024)
#define KEY_FILE_VERSION 1

/* A login cookie created this far in the future is refused (clock steps, forged values). */
#define LOGIN_FUTURE_SKEW_S 60

/* Short payload keys keep the cookie small (it carries the groups). */
#define K_SUB "s"
#define K_EMAIL "e"
#define K_NAME "n"
#define K_IDP "i"
#define K_GROUPS "g"
#define K_IAT "t"
#define K_EXP "x"
#define K_STATE "s"
#define K_NONCE "n"
#define K_VERIFIER "v"
#define K_RETURN "r"
#define K_CREATED "c"

typedef struct session_key {
    uint32_t id;
    int64_t created;
    uint8_t key[KEY_LEN];
} session_key_t;

struct ptc_session_keys {
    session_key_t cur;
    session_key_t prev;
    bool has_prev;
    char *path; /* the key file, NULL for an in-memory ring */
};

/* ---- key ring ---- */

static void key_generate(session_key_t *k, int64_t now_s, const session_key_t *avoid)
{
    /* Key ids only select a key; they are random so that two rings never agree by chance,
     * and distinct from the key they replace so an old cookie can never pick the new key. */
    do {
        randombytes_buf(&k->id, sizeof(k->id));
    } while (avoid != NULL && k->id == avoid->id);
    k->created = now_s;
    randombytes_buf(k->key, sizeof(k->key));
}

static ptc_session_keys_t *ring_new(void)
{
    ptc_session_keys_t *keys = ptc_xcalloc(1, sizeof(*keys));
    return keys;
}

void ptc_session_keys_free(ptc_session_keys_t *keys)
{
    if (keys == NULL) {
        return;
    }
    free(keys->path);
    sodium_memzero(keys, sizeof(*keys));
    free(keys);
}

ptc_session_keys_t *ptc_session_keys_ephemeral(void)
{
    ptc_session_keys_t *keys = ring_new();
    key_generate(&keys->cur, 0, NULL);
    return keys;
}

ptc_session_keys_t *ptc_session_keys_from_bytes(const uint8_t key[32], uint32_t kid,
                                                int64_t created_s)
{
    ptc_session_keys_t *keys = ring_new();
    keys->cur.id = kid;
    keys->cur.created = created_s;
    memcpy(keys->cur.key, key, KEY_LEN);
    return keys;
}

static json_t *key_to_json(const session_key_t *k)
{
    char text[64];
    int rc = ptc_b64url_encode(k->key, sizeof(k->key), text, sizeof(text));
    assert(rc > 0);
    json_t *o = json_pack("{s:I, s:I, s:s}", "id", (json_int_t)k->id, "created",
                          (json_int_t)k->created, "key", text);
    sodium_memzero(text, sizeof(text));
    return o;
}

/* Serializes the ring and writes it atomically with mode 0600. */
static int ring_write(const char *path, const session_key_t *cur, const session_key_t *prev)
{
    json_t *list = json_array();
    json_t *doc = json_pack("{s:i, s:o}", "version", KEY_FILE_VERSION, "keys", list);
    if (doc == NULL || json_array_append_new(list, key_to_json(cur)) != 0 ||
        (prev != NULL && json_array_append_new(list, key_to_json(prev)) != 0)) {
        json_decref(doc);
        return PTC_ENOMEM;
    }
    char *text = json_dumps(doc, JSON_INDENT(2));
    /* jansson keeps copies of the key strings inside the document; they are freed with it
     * but cannot be wiped, which is why only short-lived documents ever hold them. */
    json_decref(doc);
    if (text == NULL) {
        return PTC_ENOMEM;
    }
    size_t len = strlen(text);
    text = ptc_xrealloc(text, len + 2);
    text[len++] = '\n';
    text[len] = '\0';
    int rc = ptc_keys_write_secret_file(path, text, len);
    sodium_memzero(text, len);
    free(text);
    return rc;
}

int ptc_session_keys_rotate(ptc_session_keys_t *keys, int64_t now_s)
{
    session_key_t next;
    key_generate(&next, now_s, &keys->cur);
    if (keys->has_prev) {
        /* The new id must not reuse the previous key's id either: that key is still live. */
        while (next.id == keys->prev.id) {
            key_generate(&next, now_s, &keys->cur);
        }
    }
    if (keys->path != NULL) {
        int rc = ring_write(keys->path, &next, &keys->cur);
        if (rc != 0) {
            sodium_memzero(&next, sizeof(next));
            return rc;
        }
    }
    keys->prev = keys->cur;
    keys->has_prev = true;
    keys->cur = next;
    sodium_memzero(&next, sizeof(next));
    return 0;
}

static int file_fail(char *err, size_t errlen, const char *path, const char *where,
                     const char *what)
{
    if (where != NULL) {
        snprintf(err, errlen, "%s: %s: %s", path, where, what);
    } else {
        snprintf(err, errlen, "%s: %s", path, what);
    }
    return PTC_ECONFIG;
}

/* Parses keys[i] into *k. Error messages name the JSON path, never the key material. */
static int parse_key(const char *path, size_t i, json_t *o, session_key_t *k, char *err,
                     size_t errlen)
{
    char where[64];
    snprintf(where, sizeof(where), "keys[%zu]", i);
    if (!json_is_object(o)) {
        return file_fail(err, errlen, path, where, "expected an object");
    }
    const char *name;
    json_t *v;
    json_object_foreach(o, name, v)
    {
        if (strcmp(name, "id") != 0 && strcmp(name, "created") != 0 && strcmp(name, "key") != 0) {
            char what[200];
            char esc[100];
            ptc_log_escape(esc, sizeof(esc), name, strlen(name), 40);
            snprintf(what, sizeof(what), "unknown key \"%s\"", esc);
            return file_fail(err, errlen, path, where, what);
        }
    }
    snprintf(where, sizeof(where), "keys[%zu].id", i);
    v = json_object_get(o, "id");
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)UINT32_MAX) {
        return file_fail(err, errlen, path, where, "expected an integer from 0 to 4294967295");
    }
    k->id = (uint32_t)json_integer_value(v);
    snprintf(where, sizeof(where), "keys[%zu].created", i);
    v = json_object_get(o, "created");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return file_fail(err, errlen, path, where,
                         "expected a non-negative integer (seconds since the epoch)");
    }
    k->created = (int64_t)json_integer_value(v);
    snprintf(where, sizeof(where), "keys[%zu].key", i);
    v = json_object_get(o, "key");
    size_t n = 0;
    if (!json_is_string(v) || json_string_length(v) != ptc_b64url_len(KEY_LEN) ||
        ptc_b64url_decode(json_string_value(v), json_string_length(v), k->key, sizeof(k->key),
                          &n) != 0 ||
        n != KEY_LEN) {
        sodium_memzero(k->key, sizeof(k->key));
        return file_fail(err, errlen, path, where,
                         "expected 32 bytes in base64url without padding (43 characters)");
    }
    return 0;
}

/* Reads and validates an existing key file. Returns 0, PTC_ENOTFOUND when it does not exist,
 * PTC_ECONFIG for a refused file, or a negative errno. */
static int ring_read(const char *path, ptc_session_keys_t *keys, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            return PTC_ENOTFOUND;
        }
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    json_t *doc = NULL;
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        rc = -e;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = file_fail(err, errlen, path, NULL, "not a regular file");
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        char what[160];
        snprintf(what, sizeof(what),
                 "mode %04o gives access to group or others; the session keys must be private "
                 "(chmod 600)",
                 (unsigned)(st.st_mode & 07777));
        rc = file_fail(err, errlen, path, NULL, what);
        goto out;
    }
    if (st.st_size > KEY_FILE_MAX) {
        rc = file_fail(err, errlen, path, NULL, "larger than 65536 bytes");
        goto out;
    }
    json_error_t jerr;
    doc = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        /* jansson quotes the offending token, which may be key material. */
        snprintf(err, errlen, "%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column,
                 ptc_config_json_reason(&jerr));
        rc = PTC_ECONFIG;
        goto out;
    }
    if (!json_is_object(doc)) {
        rc = file_fail(err, errlen, path, NULL, "expected a JSON object");
        goto out;
    }
    const char *name;
    json_t *v;
    json_object_foreach(doc, name, v)
    {
        if (strcmp(name, "version") != 0 && strcmp(name, "keys") != 0) {
            char esc[100];
            ptc_log_escape(esc, sizeof(esc), name, strlen(name), 40);
            char what[160];
            snprintf(what, sizeof(what), "unknown key \"%s\"", esc);
            rc = file_fail(err, errlen, path, NULL, what);
            goto out;
        }
    }
    v = json_object_get(doc, "version");
    if (!json_is_integer(v) || json_integer_value(v) != KEY_FILE_VERSION) {
        rc = file_fail(err, errlen, path, "version", "expected 1");
        goto out;
    }
    json_t *list = json_object_get(doc, "keys");
    if (!json_is_array(list) || json_array_size(list) < 1 || json_array_size(list) > 2) {
        rc = file_fail(err, errlen, path, "keys",
                       "expected an array of one or two keys (current first, then previous)");
        goto out;
    }
    rc = parse_key(path, 0, json_array_get(list, 0), &keys->cur, err, errlen);
    if (rc == 0 && json_array_size(list) == 2) {
        rc = parse_key(path, 1, json_array_get(list, 1), &keys->prev, err, errlen);
        if (rc == 0 && keys->prev.id == keys->cur.id) {
            rc = file_fail(err, errlen, path, "keys[1].id", "duplicates keys[0].id");
        }
        keys->has_prev = rc == 0;
    }

out:
    json_decref(doc);
    close(fd);
    return rc;
}

int ptc_session_keys_load(const char *state_dir, int64_t now_s, int64_t rotate_after_s,
                          ptc_session_keys_t **out, char *err, size_t errlen)
{
    ptc_session_keys_t *keys = ring_new();
    size_t n = strlen(state_dir) + 1 + strlen(PTC_SESSION_KEYS_FILE) + 1;
    keys->path = ptc_xmalloc(n);
    snprintf(keys->path, n, "%s/%s", state_dir, PTC_SESSION_KEYS_FILE);
    int rc = ring_read(keys->path, keys, err, errlen);
    if (rc == PTC_ENOTFOUND) {
        key_generate(&keys->cur, now_s, NULL);
        rc = ring_write(keys->path, &keys->cur, NULL);
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot create: %s", keys->path, ptc_strerror(rc));
        }
    } else if (rc == 0 && rotate_after_s > 0 && now_s - keys->cur.created >= rotate_after_s) {
        rc = ptc_session_keys_rotate(keys, now_s);
        if (rc != 0) {
            snprintf(err, errlen, "%s: cannot rotate: %s", keys->path, ptc_strerror(rc));
        }
    }
    if (rc != 0) {
        ptc_session_keys_free(keys);
        return rc;
    }
    *out = keys;
    return 0;
}

/* ---- envelope ---- */

/* "<purpose>\0<host>": the NUL keeps ("ab", "c") and ("a", "bc") apart. */
static uint8_t *make_ad(const char *purpose, const char *host, size_t *len)
{
    size_t pl = strlen(purpose);
    size_t hl = strlen(host);
    uint8_t *ad = ptc_xmalloc(pl + 1 + hl);
    memcpy(ad, purpose, pl);
    ad[pl] = 0;
    memcpy(ad + pl + 1, host, hl);
    *len = pl + 1 + hl;
    return ad;
}

int ptc_session_seal(const ptc_session_keys_t *keys, const char *purpose, const char *host,
                     const uint8_t *plain, size_t len, char **out)
{
    if (len > ENV_BIN_MAX - ENV_MIN_LEN) {
        return PTC_ELIMIT;
    }
    size_t bin_len = ENV_HDR_LEN + len + TAG_LEN;
    uint8_t *bin = ptc_xmalloc(bin_len);
    const session_key_t *k = &keys->cur;
    bin[0] = ENV_VERSION;
    bin[1] = (uint8_t)(k->id >> 24);
    bin[2] = (uint8_t)(k->id >> 16);
    bin[3] = (uint8_t)(k->id >> 8);
    bin[4] = (uint8_t)k->id;
    randombytes_buf(bin + 5, NONCE_LEN);
    size_t ad_len;
    uint8_t *ad = make_ad(purpose, host, &ad_len);
    unsigned long long ct_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(bin + ENV_HDR_LEN, &ct_len, plain, len, ad, ad_len,
                                               NULL, bin + 5, k->key);
    free(ad);
    assert(ct_len == len + TAG_LEN);
    size_t text_cap = ptc_b64url_len(bin_len) + 1;
    char *text = ptc_xmalloc(text_cap);
    int rc = ptc_b64url_encode(bin, bin_len, text, text_cap);
    assert(rc >= 0);
    free(bin);
    *out = text;
    return 0;
}

static const session_key_t *find_key(const ptc_session_keys_t *keys, uint32_t id)
{
    if (keys->cur.id == id) {
        return &keys->cur;
    }
    if (keys->has_prev && keys->prev.id == id) {
        return &keys->prev;
    }
    return NULL;
}

int ptc_session_open(const ptc_session_keys_t *keys, const char *purpose, const char *host,
                     const char *val, size_t len, uint8_t **plain, size_t *plen)
{
    if (len > ENV_TEXT_MAX || len < ptc_b64url_len(ENV_MIN_LEN)) {
        return PTC_EFORMAT;
    }
    uint8_t bin[ENV_BIN_MAX];
    size_t bin_len = 0;
    if (ptc_b64url_decode(val, len, bin, sizeof(bin), &bin_len) != 0 || bin_len < ENV_MIN_LEN) {
        return PTC_EFORMAT;
    }
    /* Only the canonical encoding is accepted (no padding, zero trailing bits), so each
     * envelope has exactly one spelling and any change to the text is refused. */
    char canon[ENV_TEXT_MAX + 4];
    if (ptc_b64url_encode(bin, bin_len, canon, sizeof(canon)) != (int)len ||
        memcmp(canon, val, len) != 0) {
        return PTC_EFORMAT;
    }
    /* An unknown version cannot be authenticated: it counts as tampering, like an unknown
     * key id. */
    if (bin[0] != ENV_VERSION) {
        return PTC_EAUTH;
    }
    uint32_t id =
        (uint32_t)bin[1] << 24 | (uint32_t)bin[2] << 16 | (uint32_t)bin[3] << 8 | (uint32_t)bin[4];
    const session_key_t *k = find_key(keys, id);
    if (k == NULL) {
        return PTC_EAUTH;
    }
    size_t ct_len = bin_len - ENV_HDR_LEN;
    uint8_t *p = ptc_xmalloc(ct_len - TAG_LEN + 1);
    size_t ad_len;
    uint8_t *ad = make_ad(purpose, host, &ad_len);
    unsigned long long n = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(p, &n, NULL, bin + ENV_HDR_LEN, ct_len, ad,
                                                        ad_len, bin + 5, k->key);
    free(ad);
    if (rc != 0) {
        free(p);
        return PTC_EAUTH;
    }
    p[n] = 0;
    *plain = p;
    *plen = (size_t)n;
    return 0;
}

/* ---- payloads ---- */

/* Serializes `doc` (consumed), seals it and enforces the cookie size limit. */
static int seal_json(const ptc_session_keys_t *keys, const char *purpose, const char *host,
                     json_t *doc, char **out)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        return PTC_ENOMEM;
    }
    size_t len = strlen(text);
    char *val = NULL;
    int rc = PTC_ELIMIT;
    if (ptc_b64url_len(ENV_MIN_LEN + len) <= PTC_SESSION_COOKIE_MAX) {
        rc = ptc_session_seal(keys, purpose, host, (const uint8_t *)text, len, &val);
    }
    sodium_memzero(text, len);
    free(text);
    if (rc != 0) {
        return rc;
    }
    *out = val;
    return 0;
}

/* Opens a sealed value and parses its plaintext as a JSON object. */
static int open_json(const ptc_session_keys_t *keys, const char *purpose, const char *host,
                     const char *val, size_t len, json_t **out)
{
    uint8_t *plain = NULL;
    size_t plen = 0;
    int rc = ptc_session_open(keys, purpose, host, val, len, &plain, &plen);
    if (rc != 0) {
        return rc;
    }
    json_t *doc = json_loadb((const char *)plain, plen, JSON_REJECT_DUPLICATES, NULL);
    sodium_memzero(plain, plen);
    free(plain);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return PTC_EFORMAT;
    }
    *out = doc;
    return 0;
}

/* Sets o[key] to a string copy of s; NULL s sets nothing. False when s is not UTF-8. */
static bool set_str(json_t *o, const char *key, const char *s)
{
    if (s == NULL) {
        return true;
    }
    return json_object_set_new(o, key, json_string(s)) == 0;
}

/* Copies the string o[key] into *dst. Missing: ok unless required. Wrong type, an embedded
 * NUL or (when required) an empty string: PTC_EFORMAT. */
static int get_str(const json_t *o, const char *key, bool required, char **dst)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL) {
        return required ? PTC_EFORMAT : 0;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        (required && json_string_length(v) == 0)) {
        return PTC_EFORMAT;
    }
    *dst = ptc_xstrdup(json_string_value(v));
    return 0;
}

static int get_int(const json_t *o, const char *key, int64_t *dst)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) {
        return PTC_EFORMAT;
    }
    *dst = (int64_t)json_integer_value(v);
    return 0;
}

int ptc_session_encode(const ptc_session_keys_t *keys, const char *host, const ptc_session_t *s,
                       char **cookie_value)
{
    if (s->sub == NULL || s->sub[0] == '\0' || s->idp == NULL || s->idp[0] == '\0') {
        return PTC_EFORMAT;
    }
    json_t *doc = json_object();
    json_t *groups = json_array();
    bool ok = doc != NULL && groups != NULL && set_str(doc, K_SUB, s->sub) &&
              set_str(doc, K_EMAIL, s->email) && set_str(doc, K_NAME, s->name) &&
              set_str(doc, K_IDP, s->idp) &&
              json_object_set_new(doc, K_IAT, json_integer((json_int_t)s->iat)) == 0 &&
              json_object_set_new(doc, K_EXP, json_integer((json_int_t)s->exp)) == 0;
    for (size_t i = 0; ok && i < s->groups_cnt; i++) {
        ok = json_array_append_new(groups, json_string(s->groups[i])) == 0;
    }
    if (ok && s->groups_cnt > 0) {
        ok = json_object_set(doc, K_GROUPS, groups) == 0;
    }
    json_decref(groups);
    if (!ok) {
        json_decref(doc);
        return PTC_EFORMAT;
    }
    return seal_json(keys, PTC_SESSION_PURPOSE_SESSION, host, doc, cookie_value);
}

int ptc_session_decode(const ptc_session_keys_t *keys, const char *host, const char *val,
                       size_t len, int64_t now_s, ptc_session_t *out)
{
    json_t *doc = NULL;
    int rc = open_json(keys, PTC_SESSION_PURPOSE_SESSION, host, val, len, &doc);
    if (rc != 0) {
        return rc;
    }
    ptc_session_t s = {0};
    if ((rc = get_str(doc, K_SUB, true, &s.sub)) != 0 ||
        (rc = get_str(doc, K_IDP, true, &s.idp)) != 0 ||
        (rc = get_str(doc, K_EMAIL, false, &s.email)) != 0 ||
        (rc = get_str(doc, K_NAME, false, &s.name)) != 0 ||
        (rc = get_int(doc, K_IAT, &s.iat)) != 0 || (rc = get_int(doc, K_EXP, &s.exp)) != 0) {
        goto fail;
    }
    json_t *groups = json_object_get(doc, K_GROUPS);
    if (groups != NULL) {
        if (!json_is_array(groups)) {
            rc = PTC_EFORMAT;
            goto fail;
        }
        size_t cnt = json_array_size(groups);
        s.groups = ptc_xcalloc(cnt > 0 ? cnt : 1, sizeof(*s.groups));
        for (size_t i = 0; i < cnt; i++) {
            json_t *g = json_array_get(groups, i);
            if (!json_is_string(g) || strlen(json_string_value(g)) != json_string_length(g)) {
                rc = PTC_EFORMAT;
                goto fail;
            }
            s.groups[i] = ptc_xstrdup(json_string_value(g));
            s.groups_cnt++;
        }
    }
    if (s.exp <= now_s) {
        rc = PTC_ETIMEOUT;
        goto fail;
    }
    json_decref(doc);
    *out = s;
    return 0;

fail:
    ptc_session_dispose(&s);
    json_decref(doc);
    return rc;
}

void ptc_session_dispose(ptc_session_t *s)
{
    free(s->sub);
    free(s->email);
    free(s->name);
    free(s->idp);
    for (size_t i = 0; i < s->groups_cnt; i++) {
        free(s->groups[i]);
    }
    free(s->groups);
    memset(s, 0, sizeof(*s));
}

/* ---- login state ---- */

static char *random_b64(void)
{
    char *s = ptc_xmalloc(PTC_LOGIN_RANDOM_LEN + 1);
    int rc = ptc_random_token(NULL, 32, s, PTC_LOGIN_RANDOM_LEN + 1);
    assert(rc == 0);
    return s;
}

int ptc_login_state_new(const char *idp, const char *return_to, int64_t now_s,
                        ptc_login_state_t *out)
{
    out->state = random_b64();
    out->nonce = random_b64();
    out->verifier = random_b64();
    out->return_to = ptc_xstrdup(return_to != NULL ? return_to : "/");
    out->idp = ptc_xstrdup(idp);
    out->created = now_s;
    return 0;
}

static bool is_random_b64(const char *s)
{
    if (s == NULL || strlen(s) != PTC_LOGIN_RANDOM_LEN) {
        return false;
    }
    for (size_t i = 0; i < PTC_LOGIN_RANDOM_LEN; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

int ptc_login_state_encode(const ptc_session_keys_t *keys, const char *host,
                           const ptc_login_state_t *ls, char **cookie_value)
{
    if (!is_random_b64(ls->state) || !is_random_b64(ls->nonce) || !is_random_b64(ls->verifier) ||
        ls->return_to == NULL || ls->idp == NULL || ls->idp[0] == '\0') {
        return PTC_EFORMAT;
    }
    json_t *doc = json_object();
    bool ok = doc != NULL && set_str(doc, K_STATE, ls->state) && set_str(doc, K_NONCE, ls->nonce) &&
              set_str(doc, K_VERIFIER, ls->verifier) && set_str(doc, K_RETURN, ls->return_to) &&
              set_str(doc, K_IDP, ls->idp) &&
              json_object_set_new(doc, K_CREATED, json_integer((json_int_t)ls->created)) == 0;
    if (!ok) {
        json_decref(doc);
        return PTC_EFORMAT;
    }
    return seal_json(keys, PTC_SESSION_PURPOSE_LOGIN, host, doc, cookie_value);
}

int ptc_login_state_decode(const ptc_session_keys_t *keys, const char *host, const char *val,
                           size_t len, int64_t now_s, int64_t max_age_s, ptc_login_state_t *out)
{
    json_t *doc = NULL;
    int rc = open_json(keys, PTC_SESSION_PURPOSE_LOGIN, host, val, len, &doc);
    if (rc != 0) {
        return rc;
    }
    ptc_login_state_t ls = {0};
    if ((rc = get_str(doc, K_STATE, true, &ls.state)) != 0 ||
        (rc = get_str(doc, K_NONCE, true, &ls.nonce)) != 0 ||
        (rc = get_str(doc, K_VERIFIER, true, &ls.verifier)) != 0 ||
        (rc = get_str(doc, K_RETURN, true, &ls.return_to)) != 0 ||
        (rc = get_str(doc, K_IDP, true, &ls.idp)) != 0 ||
        (rc = get_int(doc, K_CREATED, &ls.created)) != 0) {
        goto fail;
    }
    if (!is_random_b64(ls.state) || !is_random_b64(ls.nonce) || !is_random_b64(ls.verifier)) {
        rc = PTC_EFORMAT;
        goto fail;
    }
    /* Written as subtractions from now_s so that a forged "created" near INT64_MAX or
     * INT64_MIN cannot overflow. */
    if (ls.created > now_s + LOGIN_FUTURE_SKEW_S || now_s - max_age_s >= ls.created) {
        rc = PTC_ETIMEOUT;
        goto fail;
    }
    json_decref(doc);
    *out = ls;
    return 0;

fail:
    ptc_login_state_dispose(&ls);
    json_decref(doc);
    return rc;
}

static void free_secret_str(char *s)
{
    if (s != NULL) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

void ptc_login_state_dispose(ptc_login_state_t *ls)
{
    free_secret_str(ls->state);
    free_secret_str(ls->nonce);
    free_secret_str(ls->verifier);
    free(ls->return_to);
    free(ls->idp);
    memset(ls, 0, sizeof(*ls));
}

void ptc_pkce_challenge(const char *verifier, char out[44])
{
    uint8_t digest[PTC_SHA256_LEN];
    ptc_sha256(verifier, strlen(verifier), digest);
    int rc = ptc_b64url_encode(digest, sizeof(digest), out, 44);
    assert(rc == 43);
}

/* ---- cookie headers ---- */

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* Looks for `name` in one "a=1; b=2" list (RFC 6265 §4.2.1, parsed leniently like §5.4). */
static bool find_in_list(ptc_slice_t list, const char *name, size_t name_len, ptc_slice_t *value)
{
    const uint8_t *p = list.ptr;
    const uint8_t *end = list.ptr + list.len;
    while (p < end) {
        const uint8_t *semi = memchr(p, ';', (size_t)(end - p));
        const uint8_t *pair_end = semi != NULL ? semi : end;
        const uint8_t *eq = memchr(p, '=', (size_t)(pair_end - p));
        if (eq != NULL) {
            const uint8_t *n0 = p;
            const uint8_t *n1 = eq;
            while (n0 < n1 && is_ows(*n0)) {
                n0++;
            }
            while (n1 > n0 && is_ows(n1[-1])) {
                n1--;
            }
            if ((size_t)(n1 - n0) == name_len && memcmp(n0, name, name_len) == 0) {
                const uint8_t *v0 = eq + 1;
                const uint8_t *v1 = pair_end;
                while (v0 < v1 && is_ows(*v0)) {
                    v0++;
                }
                while (v1 > v0 && is_ows(v1[-1])) {
                    v1--;
                }
                if (v1 - v0 >= 2 && *v0 == '"' && v1[-1] == '"') {
                    v0++;
                    v1--;
                }
                value->ptr = v0;
                value->len = (size_t)(v1 - v0);
                return true;
            }
        }
        p = semi != NULL ? semi + 1 : end;
    }
    return false;
}

bool ptc_cookie_find(const ptc_http_header_t *hdrs, size_t cnt, const char *name,
                     ptc_slice_t *value)
{
    size_t name_len = strlen(name);
    if (name_len == 0) {
        return false;
    }
    for (size_t i = 0; i < cnt; i++) {
        const ptc_http_header_t *h = &hdrs[i];
        if (h->name.len != 6 || strncasecmp((const char *)h->name.ptr, "cookie", 6) != 0) {
            continue;
        }
        if (find_in_list(h->value, name, name_len, value)) {
            return true;
        }
    }
    return false;
}

/* cookie-octet of RFC 6265 §4.1.1: no controls, whitespace, DQUOTE, comma, semicolon or
 * backslash. Values are ours (base64url), so a violation is a bug in the caller. */
static bool is_cookie_value(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c > 0x7e || c == '"' || c == ',' || c == ';' || c == '\\') {
            return false;
        }
    }
    return true;
}

char *ptc_cookie_format(const char *name, const char *value, bool secure, bool http_only,
                        int64_t max_age)
{
    assert(is_cookie_value(name) && strchr(name, '=') == NULL && name[0] != '\0');
    assert(is_cookie_value(value));
    char age[40] = "";
    if (max_age >= 0) {
        snprintf(age, sizeof(age), "; Max-Age=%lld", (long long)max_age);
    }
    const char *prefix = secure ? "__Host-" : "";
    int n = snprintf(NULL, 0, "%s%s=%s; Path=/; SameSite=Lax%s%s%s", prefix, name, value,
                     http_only ? "; HttpOnly" : "", secure ? "; Secure" : "", age);
    assert(n > 0);
    char *out = ptc_xmalloc((size_t)n + 1);
    snprintf(out, (size_t)n + 1, "%s%s=%s; Path=/; SameSite=Lax%s%s%s", prefix, name, value,
             http_only ? "; HttpOnly" : "", secure ? "; Secure" : "", age);
    return out;
}
