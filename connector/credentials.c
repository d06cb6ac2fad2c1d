/* SPDX-License-Identifier: MIT */
/*
 * The credential file and the tunnel authentication signature (see credentials.h).
 *
 * jansson keeps its own copies of the strings it parses and serializes, and frees them
 * without wiping. The secret therefore never enters a jansson value on the way out (the
 * document is serialized without it and the member is spliced into our own buffer), and on
 * the way in the parsed string's bytes are wiped in place before the document is released.
 */
#include "connector/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/net.h"

/* A credential file is small; anything larger is not one. */
#define MAX_FILE_BYTES (64 * 1024)

static int fail(char *err, size_t errlen, int code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, int code, const char *name, const char *fmt, ...)
{
    if (errlen > 0) {
        int n = snprintf(err, errlen, "%s: ", name);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

/* ---- identifiers and encodings ---- */

bool ptc_credentials_valid_id(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > PTC_CREDENTIALS_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

int ptc_credentials_b64_exact(const char *text, size_t text_len, uint8_t *out, size_t len)
{
    /* ptc_b64url_decode tolerates padding; §11.2 rule 3 does not. */
    if (text_len != ptc_b64url_len(len) || memchr(text, '=', text_len) != NULL) {
        return PTC_EFORMAT;
    }
    size_t n = 0;
    if (ptc_b64url_decode(text, text_len, out, len, &n) != 0 || n != len) {
        return PTC_EFORMAT;
    }
    return 0;
}

/* ---- parsing ---- */

static void wipe_json_string(json_t *v)
{
    if (json_is_string(v)) {
        /* The bytes belong to the document, which is released right after. */
        ptc_keys_wipe((char *)json_string_value(v), json_string_length(v));
    }
}

static int get_string(json_t *root, const char *key, bool required, const char **out,
                      const char *name, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (v == NULL) {
        return required
                   ? fail(err, errlen, PTC_EFORMAT, name, "%s: required member is missing", key)
                   : 0;
    }
    if (!json_is_string(v)) {
        return fail(err, errlen, PTC_EFORMAT, name, "%s: expected a string", key);
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        return fail(err, errlen, PTC_EFORMAT, name, "%s: contains a NUL character", key);
    }
    *out = json_string_value(v);
    return 0;
}

static int parse_doc(const char *name, json_t *root, ptc_credentials_t *out, char *err,
                     size_t errlen)
{
    const char *s = NULL;
    int rc = 0;
    if (!json_is_object(root)) {
        return fail(err, errlen, PTC_EFORMAT, name, "expected a JSON object");
    }
    json_t *ver = json_object_get(root, "version");
    if (ver == NULL) {
        return fail(err, errlen, PTC_EFORMAT, name, "version: required member is missing");
    }
    if (!json_is_integer(ver) || json_integer_value(ver) != PTC_CREDENTIALS_VERSION) {
        return fail(err, errlen, PTC_EFORMAT, name,
                    "version: expected 1 (a credential file of another format)");
    }
    if ((rc = get_string(root, "edge_url", true, &s, name, err, errlen)) != 0) {
        return rc;
    }
    out->edge_url = ptc_xstrdup(s);
    if ((rc = get_string(root, "connector_id", true, &s, name, err, errlen)) != 0) {
        return rc;
    }
    if (!ptc_credentials_valid_id(s, strlen(s))) {
        return fail(err, errlen, PTC_EFORMAT, name,
                    "connector_id: expected 1..64 letters, digits, '_', '-' or '.'");
    }
    out->connector_id = ptc_xstrdup(s);
    if ((rc = get_string(root, "group", false, &s, name, err, errlen)) != 0) {
        return rc;
    }
    out->group = ptc_xstrdup(s != NULL ? s : "");

    uint8_t pk[PTC_ED25519_PK_LEN];
    if ((rc = get_string(root, "public_key", true, &s, name, err, errlen)) != 0) {
        return rc;
    }
    if (ptc_credentials_b64_exact(s, strlen(s), pk, sizeof(pk)) != 0) {
        return fail(err, errlen, PTC_EFORMAT, name,
                    "public_key: expected 32 bytes of base64url without padding");
    }
    uint8_t seed[32];
    if ((rc = get_string(root, "secret_key", true, &s, name, err, errlen)) != 0) {
        return rc;
    }
    if (ptc_credentials_b64_exact(s, strlen(s), seed, sizeof(seed)) != 0) {
        ptc_keys_wipe(seed, sizeof(seed));
        return fail(err, errlen, PTC_EFORMAT, name,
                    "secret_key: expected 32 bytes of base64url without padding");
    }
    ptc_ed25519_from_seed(&out->key, seed);
    ptc_keys_wipe(seed, sizeof(seed));
    if (!ptc_consttime_eq(pk, out->key.pk, sizeof(pk))) {
        return fail(err, errlen, PTC_ECRYPTO, name,
                    "public_key: does not match the key derived from secret_key (the file is "
                    "damaged or was edited)");
    }

    json_t *edges = json_object_get(root, "edges");
    if (edges != NULL) {
        if (!json_is_array(edges)) {
            return fail(err, errlen, PTC_EFORMAT, name, "edges: expected an array of strings");
        }
        size_t cnt = json_array_size(edges);
        out->edges = ptc_xcalloc(cnt > 0 ? cnt : 1, sizeof(char *));
        for (size_t i = 0; i < cnt; i++) {
            json_t *e = json_array_get(edges, i);
            ptc_net_hostport_t hp;
            if (!json_is_string(e) || ptc_net_parse_hostport(json_string_value(e), &hp) != 0 ||
                hp.host[0] == '\0' || hp.port == 0) {
                return fail(err, errlen, PTC_EFORMAT, name,
                            "edges[%zu]: expected \"host:port\" with a port 1..65535", i);
            }
            out->edges[out->edges_cnt++] = ptc_xstrdup(json_string_value(e));
        }
    }
    if ((rc = get_string(root, "ca_file", false, &s, name, err, errlen)) != 0) {
        return rc;
    }
    if (s != NULL) {
        if (s[0] == '\0') {
            return fail(err, errlen, PTC_EFORMAT, name, "ca_file: expected a file path");
        }
        out->ca_file = ptc_xstrdup(s);
    }
    if ((rc = get_string(root, "pin_sha256", false, &s, name, err, errlen)) != 0) {
        return rc;
    }
    if (s != NULL) {
        if (ptc_credentials_b64_exact(s, strlen(s), out->pin_sha256, 32) != 0) {
            return fail(err, errlen, PTC_EFORMAT, name,
                        "pin_sha256: expected 32 bytes of base64url without padding");
        }
        out->has_pin = true;
    }
    return 0;
}

int ptc_credentials_parse(const char *name, const void *data, size_t len, ptc_credentials_t *out,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (errlen > 0) {
        err[0] = '\0';
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        /* jansson's text may quote the document: keep only where the problem is. */
        return fail(err, errlen, PTC_EFORMAT, name, "invalid JSON at line %d, column %d", jerr.line,
                    jerr.column);
    }
    int rc = parse_doc(name, root, out, err, errlen);
    wipe_json_string(json_object_get(root, "secret_key"));
    json_decref(root);
    if (rc != 0) {
        ptc_credentials_dispose(out);
    }
    return rc;
}

int ptc_credentials_load(const char *path, ptc_credentials_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (errlen > 0) {
        err[0] = '\0';
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        if (e == UV_ENOENT) {
            return fail(err, errlen, e, path,
                        "no such file (register this connector first: portico-connector "
                        "register --edge URL --token TOKEN)");
        }
        return fail(err, errlen, e, path, "cannot open: %s", strerror(-e));
    }
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        fail(err, errlen, rc, path, "cannot stat: %s", strerror(-rc));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = fail(err, errlen, UV_EPERM, path, "not a regular file");
        goto out;
    }
    /* §12.5: the secret key must not be readable (or replaceable) by anyone else. */
    if ((st.st_mode & 077) != 0) {
        rc = fail(err, errlen, UV_EPERM, path,
                  "mode %04o lets group or others access the secret key; run: chmod 600 %s",
                  (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        rc = fail(err, errlen, PTC_EFORMAT, path, "too large for a credential file");
        goto out;
    }
    buf = ptc_xmalloc((size_t)st.st_size + 1);
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = -errno;
            fail(err, errlen, rc, path, "cannot read: %s", strerror(-rc));
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    rc = ptc_credentials_parse(path, buf, len, out, err, errlen);

out:
    if (buf != NULL) {
        ptc_keys_wipe(buf, (size_t)st.st_size + 1);
        free(buf);
    }
    close(fd);
    return rc;
}

/* ---- writing ---- */

char *ptc_credentials_to_json(const ptc_credentials_t *c, size_t *len)
{
    char pk[64];
    int rc = ptc_b64url_encode(c->key.pk, PTC_ED25519_PK_LEN, pk, sizeof(pk));
    (void)rc;
    json_t *doc = json_object();
    json_object_set_new(doc, "version", json_integer(PTC_CREDENTIALS_VERSION));
    json_object_set_new(doc, "edge_url", json_string(c->edge_url != NULL ? c->edge_url : ""));
    json_object_set_new(doc, "connector_id",
                        json_string(c->connector_id != NULL ? c->connector_id : ""));
    json_object_set_new(doc, "group", json_string(c->group != NULL ? c->group : ""));
    json_object_set_new(doc, "public_key", json_string(pk));
    json_t *edges = json_array();
    for (size_t i = 0; i < c->edges_cnt; i++) {
        json_array_append_new(edges, json_string(c->edges[i]));
    }
    json_object_set_new(doc, "edges", edges);
    if (c->ca_file != NULL) {
        json_object_set_new(doc, "ca_file", json_string(c->ca_file));
    }
    if (c->has_pin) {
        char pin[64];
        rc = ptc_b64url_encode(c->pin_sha256, 32, pin, sizeof(pin));
        json_object_set_new(doc, "pin_sha256", json_string(pin));
    }
    char *pub = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (pub == NULL) {
        abort();
    }
    /* Splice the secret in before the closing brace: {...,"secret_key":"..."}\n */
    char sk[64];
    rc = ptc_b64url_encode(c->key.sk, 32, sk, sizeof(sk));
    size_t pub_len = strlen(pub);
    size_t cap = pub_len + sizeof(",\"secret_key\":\"\"}\n") + sizeof(sk);
    char *text = ptc_xmalloc(cap);
    int n = snprintf(text, cap, "%.*s,\"secret_key\":\"%s\"}\n", (int)(pub_len - 1), pub, sk);
    ptc_keys_wipe(sk, sizeof(sk));
    free(pub);
    if (len != NULL) {
        *len = (size_t)n;
    }
    return text;
}

void ptc_credentials_free_text(char *text)
{
    if (text != NULL) {
        ptc_keys_wipe(text, strlen(text));
        free(text);
    }
}

int ptc_credentials_save(const char *path, const ptc_credentials_t *c)
{
    size_t len = 0;
    char *text = ptc_credentials_to_json(c, &len);
    int rc = ptc_keys_write_secret_file(path, text, len);
    ptc_credentials_free_text(text);
    return rc;
}

static void free_edges(ptc_credentials_t *c)
{
    for (size_t i = 0; i < c->edges_cnt; i++) {
        free(c->edges[i]);
    }
    free(c->edges);
    c->edges = NULL;
    c->edges_cnt = 0;
}

void ptc_credentials_dispose(ptc_credentials_t *c)
{
    free(c->edge_url);
    free(c->connector_id);
    free(c->group);
    free(c->ca_file);
    free_edges(c);
    ptc_keys_wipe(&c->key, sizeof(c->key));
    memset(c, 0, sizeof(*c));
}

bool ptc_credentials_set_edges(ptc_credentials_t *c, const char *const *edges, size_t cnt)
{
    bool same = cnt == c->edges_cnt;
    for (size_t i = 0; same && i < cnt; i++) {
        same = strcmp(edges[i], c->edges[i]) == 0;
    }
    if (same) {
        return false;
    }
    free_edges(c);
    c->edges = ptc_xcalloc(cnt > 0 ? cnt : 1, sizeof(char *));
    for (size_t i = 0; i < cnt; i++) {
        c->edges[i] = ptc_xstrdup(edges[i]);
    }
    c->edges_cnt = cnt;
    return true;
}

/* ---- the tunnel authentication signature (docs/protocol.md §11.6) ---- */

int ptc_credentials_auth_message(const uint8_t nonce[32], const uint8_t cert_hash[32],
                                 const char *connector_id, uint8_t *out, size_t cap)
{
    size_t id_len = connector_id != NULL ? strlen(connector_id) : 0;
    if (!ptc_credentials_valid_id(connector_id, id_len)) {
        return UV_EINVAL;
    }
    size_t len = PTC_AUTH_MESSAGE_LEN(id_len);
    if (cap < len) {
        return PTC_ELIMIT;
    }
    uint8_t *p = out;
    /* The 22 ASCII bytes and the terminating NUL of the literal: 23 bytes. */
    memcpy(p, PTC_AUTH_CONTEXT, PTC_AUTH_CONTEXT_LEN);
    p += PTC_AUTH_CONTEXT_LEN;
    memcpy(p, nonce, 32);
    p += 32;
    memcpy(p, cert_hash, 32);
    p += 32;
    *p++ = (uint8_t)(id_len >> 8);
    *p++ = (uint8_t)(id_len & 0xff);
    memcpy(p, connector_id, id_len);
    return (int)len;
}

int ptc_credentials_sign_auth(const ptc_credentials_t *c, const uint8_t nonce[32],
                              const uint8_t cert_hash[32], char *sig_b64, size_t cap)
{
    uint8_t msg[PTC_AUTH_MESSAGE_LEN(PTC_CREDENTIALS_ID_MAX)];
    int len = ptc_credentials_auth_message(nonce, cert_hash, c->connector_id, msg, sizeof(msg));
    if (len < 0) {
        return len;
    }
    if (cap < ptc_b64url_len(PTC_ED25519_SIG_LEN) + 1) {
        return PTC_ELIMIT;
    }
    uint8_t sig[PTC_ED25519_SIG_LEN];
    ptc_ed25519_sign(&c->key, msg, (size_t)len, sig);
    int rc = ptc_b64url_encode(sig, sizeof(sig), sig_b64, cap);
    return rc < 0 ? rc : 0;
}
