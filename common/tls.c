/* SPDX-License-Identifier: MIT */
/*
 * TLS over memory buffers with mbedTLS 2.28 (see tls.h). The mbedTLS BIO callbacks read
 * ciphertext from the connection's ptc_buf_t (WANT_READ when it is empty) and append whole
 * records to its ptc_chunkq_t, so nothing here performs I/O or knows about libuv.
 *
 * A server configuration builds one mbedtls_ssl_config per certificate set (a "generation"):
 * the default certificate is that config's own certificate, and the SNI callback swaps in a
 * better match. Replacing the set builds a new generation; a connection holds references to
 * the configuration and to the generation it started with, so a replaced set lives until its
 * last connection is freed. A client configuration has a single mbedtls_ssl_config and checks
 * each peer in a per-connection verify callback (IP subjectAltNames, the pin, no-verify).
 */
#include "common/tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <unistd.h>
#include <uv.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include "common/tls_aead.h"

/* Largest PEM file we read (a CA bundle is about 200 KiB). */
#define PEM_FILE_MAX (1024 * 1024)
/* Longest DNS name (RFC 1035 §2.3.4, without the trailing dot). */
#define NAME_MAX_LEN 253

/* ECDHE with AEAD only. ChaCha20-Poly1305 first: its records are computed by libsodium
 * (common/tls_aead.h), about 1 GB/s on x86-64, while mbedTLS 2.28's AES-GCM multiplies one
 * block per call even with AES-NI (about 240 MB/s for 16 KiB records); bulk transfers
 * through the edge spend most of their time in the record cipher. The server picks in this
 * order among what the client offers and its certificate allows. */
static const int ciphersuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0,
};

static const mbedtls_ecp_group_id curves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

/* ---- errors ---- */

static void err_clear(ptc_tls_err_t *err)
{
    if (err != NULL) {
        err->mbedtls_code = 0;
        err->reason[0] = '\0';
    }
}

__attribute__((format(printf, 3, 4))) static int err_set(ptc_tls_err_t *err, int code,
                                                         const char *fmt, ...);

/* Records a failure with a formatted reason and returns `code`. */
static int err_set(ptc_tls_err_t *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
        va_end(ap);
    }
    return code;
}

/* As err_set, appending mbedTLS's description of `mbedtls_code`. */
static int err_set_mbedtls(ptc_tls_err_t *err, int code, int mbedtls_code, const char *what)
{
    if (err != NULL) {
        char msg[128];
        mbedtls_strerror(mbedtls_code, msg, sizeof(msg));
        err->mbedtls_code = mbedtls_code;
        snprintf(err->reason, sizeof(err->reason), "%s: %s (-0x%04x)", what, msg,
                 (unsigned)-mbedtls_code);
    }
    return code;
}

/* ---- small helpers ---- */

/* Reads a whole file and NUL-terminates it (mbedTLS wants the NUL counted in PEM lengths). */
static int read_file(const char *path, char **out, size_t *out_len, ptc_tls_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        return err_set(err, e, "cannot open %s: %s", path, strerror(-e));
    }
    char *buf = NULL;
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        err_set(err, rc, "cannot stat %s: %s", path, strerror(-rc));
        goto fail;
    }
    if (st.st_size > PEM_FILE_MAX) {
        rc = err_set(err, PTC_ELIMIT, "%s is larger than %d bytes", path, PEM_FILE_MAX);
        goto fail;
    }
    size_t cap = (size_t)st.st_size;
    buf = malloc(cap + 1);
    if (buf == NULL) {
        rc = err_set(err, PTC_ENOMEM, "out of memory reading %s", path);
        goto fail;
    }
    size_t len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = -errno;
            err_set(err, rc, "cannot read %s: %s", path, strerror(-rc));
            goto fail;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    *out = buf;
    *out_len = len;
    return 0;

fail:
    free(buf);
    close(fd);
    return rc;
}

/* A NUL-terminated copy of p[0..len) (mbedTLS's PEM parser needs the terminator). */
static char *dup_mem(const char *p, size_t len)
{
    char *d = malloc(len + 1);
    if (d != NULL) {
        memcpy(d, p, len);
        d[len] = '\0';
    }
    return d;
}

static void wipe_free(char *p, size_t len)
{
    if (p != NULL) {
        mbedtls_platform_zeroize(p, len);
        free(p);
    }
}

static void free_strv(char **v)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; v[i] != NULL; i++) {
        free(v[i]);
    }
    free(v);
}

/* Copies a NULL-terminated ALPN list, checking each name's length (RFC 7301 §3.1). */
static int copy_alpn(const char *const *in, char ***out, ptc_tls_err_t *err)
{
    *out = NULL;
    if (in == NULL || in[0] == NULL) {
        return 0;
    }
    size_t cnt = 0;
    while (in[cnt] != NULL) {
        size_t len = strlen(in[cnt]);
        if (len == 0 || len > PTC_TLS_ALPN_MAX) {
            return err_set(err, PTC_ECONFIG, "ALPN protocol name must be 1 to 255 bytes");
        }
        cnt++;
    }
    char **v = ptc_xcalloc(cnt + 1, sizeof(*v));
    for (size_t i = 0; i < cnt; i++) {
        v[i] = ptc_xstrdup(in[i]);
    }
    *out = v;
    return 0;
}

static void sha256(const unsigned char *p, size_t len, uint8_t out[PTC_TLS_SHA256_LEN])
{
    /* SHA-256 over memory cannot fail in mbedTLS 2.28 without hardware offload. */
    int ret = mbedtls_sha256_ret(p, len, out, 0);
    (void)ret;
}

/* ---- certificate sets ---- */

typedef struct cert_entry {
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    char **names; /* lower-case DNS names the leaf serves, NULL-terminated */
    uint8_t sha256[PTC_TLS_SHA256_LEN];
} cert_entry_t;

struct ptc_tls_certs {
    unsigned refs;
    bool frozen; /* installed in a configuration: no more additions */
    cert_entry_t **entries;
    size_t cnt;
    size_t cap;
    size_t default_idx;
    bool has_explicit_default;
};

ptc_tls_certs_t *ptc_tls_certs_new(void)
{
    ptc_tls_certs_t *c = ptc_xcalloc(1, sizeof(*c));
    c->refs = 1;
    return c;
}

ptc_tls_certs_t *ptc_tls_certs_ref(ptc_tls_certs_t *c)
{
    c->refs++;
    return c;
}

static void entry_free(cert_entry_t *e)
{
    if (e == NULL) {
        return;
    }
    mbedtls_x509_crt_free(&e->chain);
    mbedtls_pk_free(&e->key);
    free_strv(e->names);
    free(e);
}

void ptc_tls_certs_unref(ptc_tls_certs_t *c)
{
    if (c == NULL || --c->refs > 0) {
        return;
    }
    for (size_t i = 0; i < c->cnt; i++) {
        entry_free(c->entries[i]);
    }
    free(c->entries);
    free(c);
}

size_t ptc_tls_certs_count(const ptc_tls_certs_t *c)
{
    return c->cnt;
}

/* Lower-cases a DNS name from a certificate; NULL if it is empty, too long or has bytes
 * that are not printable ASCII (such a name could never match an SNI we accept). */
static char *normalize_name(const unsigned char *p, size_t len)
{
    if (len == 0 || len > NAME_MAX_LEN) {
        return NULL;
    }
    char *s = ptc_xmalloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] >= 0x7f) {
            free(s);
            return NULL;
        }
        s[i] = (char)tolower(p[i]);
    }
    s[len] = '\0';
    return s;
}

/* The names a leaf serves: its DNS subjectAltNames, or its subject CN when it has none
 * (RFC 6125 §6.4.4 allows the CN only in that case). */
static char **leaf_names(const mbedtls_x509_crt *crt)
{
    size_t cap = 1;
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != NULL; s = s->next) {
        cap++;
    }
    char **v = ptc_xcalloc(cap + 1, sizeof(*v));
    size_t n = 0;
    for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != NULL; s = s->next) {
        if (s->buf.p != NULL &&
            s->buf.tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME)) {
            char *name = normalize_name(s->buf.p, s->buf.len);
            if (name != NULL) {
                v[n++] = name;
            }
        }
    }
    if (n == 0) {
        for (const mbedtls_x509_name *a = &crt->subject; a != NULL; a = a->next) {
            if (a->oid.p != NULL && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &a->oid) == 0) {
                char *name = normalize_name(a->val.p, a->val.len);
                if (name != NULL) {
                    v[n++] = name;
                }
                break;
            }
        }
    }
    return v;
}

int ptc_tls_certs_add_pem(ptc_tls_certs_t *c, const char *chain_pem, size_t chain_len,
                          const char *key_pem, size_t key_len, bool is_default, ptc_tls_err_t *err)
{
    err_clear(err);
    if (c->frozen) {
        return err_set(err, PTC_ESTATE, "certificate set already in use");
    }
    if (chain_len > PEM_FILE_MAX || key_len > PEM_FILE_MAX) {
        return err_set(err, PTC_ELIMIT, "PEM larger than %d bytes", PEM_FILE_MAX);
    }
    cert_entry_t *e = NULL;
    char *chain_z = NULL;
    char *key_z = NULL;
    int rc = 0;

    chain_z = dup_mem(chain_pem, chain_len);
    key_z = dup_mem(key_pem, key_len);
    e = calloc(1, sizeof(*e));
    if (chain_z == NULL || key_z == NULL || e == NULL) {
        rc = err_set(err, PTC_ENOMEM, "out of memory");
        goto fail;
    }
    mbedtls_x509_crt_init(&e->chain);
    mbedtls_pk_init(&e->key);

    /* A positive result means some certificates in the chain failed to parse: a server must
     * not send a chain with holes in it, so any failure refuses the whole entry. */
    int ret = mbedtls_x509_crt_parse(&e->chain, (const unsigned char *)chain_z, chain_len + 1);
    if (ret != 0 || e->chain.raw.p == NULL) {
        rc = ret > 0 ? err_set(err, PTC_EFORMAT, "%d certificate(s) in the chain are invalid", ret)
                     : err_set_mbedtls(err, PTC_EFORMAT, ret != 0 ? ret : -1,
                                       "cannot parse the certificate chain");
        goto fail;
    }
    ret = mbedtls_pk_parse_key(&e->key, (const unsigned char *)key_z, key_len + 1, NULL, 0);
    if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
        rc = err_set(err, PTC_EFORMAT, "encrypted private keys are not supported");
        goto fail;
    }
    if (ret != 0) {
        rc = err_set_mbedtls(err, PTC_EFORMAT, ret, "cannot parse the private key");
        goto fail;
    }
    ret = mbedtls_pk_check_pair(&e->chain.pk, &e->key);
    if (ret != 0) {
        char subject[128];
        if (mbedtls_x509_dn_gets(subject, sizeof(subject), &e->chain.subject) < 0) {
            snprintf(subject, sizeof(subject), "?");
        }
        if (err != NULL) {
            err->mbedtls_code = ret;
        }
        rc = err_set(err, PTC_ECONFIG, "the private key does not match the certificate (%s)",
                     subject);
        goto fail;
    }
    e->names = leaf_names(&e->chain);
    sha256(e->chain.raw.p, e->chain.raw.len, e->sha256);

    if (c->cnt == c->cap) {
        c->cap = c->cap != 0 ? c->cap * 2 : 4;
        c->entries = ptc_xrealloc(c->entries, c->cap * sizeof(*c->entries));
    }
    if (is_default && !c->has_explicit_default) {
        c->default_idx = c->cnt;
        c->has_explicit_default = true;
    }
    c->entries[c->cnt++] = e;
    wipe_free(key_z, key_len);
    free(chain_z);
    return 0;

fail:
    entry_free(e);
    wipe_free(key_z, key_len);
    free(chain_z);
    return rc;
}

int ptc_tls_certs_add_files(ptc_tls_certs_t *c, const char *chain_path, const char *key_path,
                            bool is_default, ptc_tls_err_t *err)
{
    err_clear(err);
    char *chain = NULL;
    size_t chain_len = 0;
    char *key = NULL;
    size_t key_len = 0;
    int rc = read_file(chain_path, &chain, &chain_len, err);
    if (rc != 0) {
        goto out;
    }
    rc = read_file(key_path, &key, &key_len, err);
    if (rc != 0) {
        goto out;
    }
    rc = ptc_tls_certs_add_pem(c, chain, chain_len, key, key_len, is_default, err);
    if (rc != 0 && err != NULL) {
        /* Name the files: the reason alone does not say which upload was wrong. */
        char reason[sizeof(err->reason)];
        snprintf(reason, sizeof(reason), "%s", err->reason);
        err_set(err, rc, "%s (%s, %s)", reason, chain_path, key_path);
    }

out:
    wipe_free(key, key_len);
    free(chain);
    return rc;
}

/* Exact names first, then a single-label wildcard ("*.apps.example.com" serves
 * "hr.apps.example.com" but neither "apps.example.com" nor "a.b.apps.example.com"). */
static const cert_entry_t *certs_lookup(const ptc_tls_certs_t *c, const char *name)
{
    for (size_t i = 0; i < c->cnt; i++) {
        for (char **n = c->entries[i]->names; *n != NULL; n++) {
            if (strcmp(*n, name) == 0) {
                return c->entries[i];
            }
        }
    }
    const char *dot = strchr(name, '.');
    if (dot == NULL || dot == name || dot[1] == '\0') {
        return NULL;
    }
    for (size_t i = 0; i < c->cnt; i++) {
        for (char **n = c->entries[i]->names; *n != NULL; n++) {
            if ((*n)[0] == '*' && (*n)[1] == '.' && strcmp(*n + 1, dot) == 0) {
                return c->entries[i];
            }
        }
    }
    return NULL;
}

/* ---- configurations ---- */

/* One mbedtls_ssl_config per server certificate set (see the file comment). */
typedef struct srv_gen {
    unsigned refs;
    mbedtls_ssl_config conf;
    ptc_tls_certs_t *certs;
} srv_gen_t;

struct ptc_tls_config {
    unsigned refs;
    bool is_server;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    char **alpn;
    /* server */
    bool has_ticket;
    mbedtls_ssl_ticket_context ticket;
    srv_gen_t *gen;
    /* client */
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    bool no_verify;
    bool has_pin;
    uint8_t pin[PTC_TLS_SHA256_LEN];
};

static void gen_unref(srv_gen_t *g)
{
    if (g == NULL || --g->refs > 0) {
        return;
    }
    mbedtls_ssl_config_free(&g->conf);
    ptc_tls_certs_unref(g->certs);
    free(g);
}

/* Settings shared by both roles. */
static int conf_common(ptc_tls_config_t *cfg, mbedtls_ssl_config *conf, int endpoint,
                       ptc_tls_err_t *err)
{
    /* ChaCha20-Poly1305 records are computed by libsodium (common/tls_aead.h). */
    ptc_tls_aead_init();
    int ret = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) {
        return err_set_mbedtls(err, PTC_ETLS, ret, "mbedtls_ssl_config_defaults");
    }
    mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &cfg->drbg);
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(conf, ciphersuites);
    mbedtls_ssl_conf_curves(conf, curves);
    mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    if (cfg->alpn != NULL) {
        ret = mbedtls_ssl_conf_alpn_protocols(conf, (const char **)cfg->alpn);
        if (ret != 0) {
            return err_set_mbedtls(err, PTC_ECONFIG, ret, "ALPN list");
        }
    }
    return 0;
}

static int on_sni(void *arg, mbedtls_ssl_context *ssl, const unsigned char *name, size_t len);

static int gen_new(ptc_tls_config_t *cfg, ptc_tls_certs_t *certs, srv_gen_t **out,
                   ptc_tls_err_t *err)
{
    if (certs == NULL || certs->cnt == 0) {
        return err_set(err, PTC_ECONFIG, "the certificate set is empty");
    }
    srv_gen_t *g = ptc_xcalloc(1, sizeof(*g));
    g->refs = 1;
    mbedtls_ssl_config_init(&g->conf);
    g->certs = ptc_tls_certs_ref(certs);
    certs->frozen = true;
    int rc = conf_common(cfg, &g->conf, MBEDTLS_SSL_IS_SERVER, err);
    if (rc != 0) {
        gen_unref(g);
        return rc;
    }
    mbedtls_ssl_conf_authmode(&g->conf, MBEDTLS_SSL_VERIFY_NONE);
    cert_entry_t *def = certs->entries[certs->default_idx];
    int ret = mbedtls_ssl_conf_own_cert(&g->conf, &def->chain, &def->key);
    if (ret != 0) {
        gen_unref(g);
        return err_set_mbedtls(err, PTC_ENOMEM, ret, "mbedtls_ssl_conf_own_cert");
    }
    mbedtls_ssl_conf_sni(&g->conf, on_sni, NULL);
    if (cfg->has_ticket) {
        mbedtls_ssl_conf_session_tickets_cb(&g->conf, mbedtls_ssl_ticket_write,
                                            mbedtls_ssl_ticket_parse, &cfg->ticket);
    } else {
        mbedtls_ssl_conf_session_tickets(&g->conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
    }
    *out = g;
    return 0;
}

static ptc_tls_config_t *config_alloc(bool is_server, ptc_tls_err_t *err, int *rc)
{
    ptc_tls_config_t *cfg = ptc_xcalloc(1, sizeof(*cfg));
    cfg->refs = 1;
    cfg->is_server = is_server;
    mbedtls_entropy_init(&cfg->entropy);
    mbedtls_ctr_drbg_init(&cfg->drbg);
    mbedtls_ssl_ticket_init(&cfg->ticket);
    mbedtls_ssl_config_init(&cfg->conf);
    mbedtls_x509_crt_init(&cfg->ca);
    static const char pers[] = "portico-tls";
    int ret = mbedtls_ctr_drbg_seed(&cfg->drbg, mbedtls_entropy_func, &cfg->entropy,
                                    (const unsigned char *)pers, sizeof(pers) - 1);
    *rc = ret != 0 ? err_set_mbedtls(err, PTC_ECRYPTO, ret, "seeding the RNG") : 0;
    return cfg;
}

int ptc_tls_server_config_new(const ptc_tls_server_opts_t *opts, ptc_tls_config_t **out,
                              ptc_tls_err_t *err)
{
    err_clear(err);
    *out = NULL;
    int rc = 0;
    ptc_tls_config_t *cfg = config_alloc(true, err, &rc);
    if (rc != 0) {
        goto fail;
    }
    rc = copy_alpn(opts->alpn, &cfg->alpn, err);
    if (rc != 0) {
        goto fail;
    }
    if (opts->ticket_lifetime_s > 0) {
        int ret = mbedtls_ssl_ticket_setup(&cfg->ticket, mbedtls_ctr_drbg_random, &cfg->drbg,
                                           MBEDTLS_CIPHER_AES_256_GCM, opts->ticket_lifetime_s);
        if (ret != 0) {
            rc = err_set_mbedtls(err, PTC_ECRYPTO, ret, "session ticket setup");
            goto fail;
        }
        cfg->has_ticket = true;
    }
    rc = gen_new(cfg, opts->certs, &cfg->gen, err);
    if (rc != 0) {
        goto fail;
    }
    *out = cfg;
    return 0;

fail:
    ptc_tls_config_unref(cfg);
    return rc;
}

static int load_cas(ptc_tls_config_t *cfg, const ptc_tls_client_opts_t *opts, ptc_tls_err_t *err)
{
    char *pem = NULL;
    size_t len = 0;
    const char *what = "CA PEM";
    int rc = 0;
    if (opts->ca_pem != NULL) {
        if (opts->ca_pem_len > PEM_FILE_MAX) {
            return err_set(err, PTC_ELIMIT, "CA PEM larger than %d bytes", PEM_FILE_MAX);
        }
        len = opts->ca_pem_len;
        pem = dup_mem(opts->ca_pem, len);
        if (pem == NULL) {
            return err_set(err, PTC_ENOMEM, "out of memory");
        }
    } else {
        what = opts->ca_file != NULL ? opts->ca_file : PTC_TLS_SYSTEM_CA_FILE;
        rc = read_file(what, &pem, &len, err);
        if (rc != 0) {
            return rc;
        }
    }
    /* A bundle may hold certificates mbedTLS cannot parse (a positive count): those are
     * skipped as long as at least one CA was read. */
    int ret = mbedtls_x509_crt_parse(&cfg->ca, (const unsigned char *)pem, len + 1);
    if (ret < 0 || cfg->ca.raw.p == NULL) {
        rc = ret < 0 ? err_set_mbedtls(err, PTC_EFORMAT, ret, "cannot parse the trusted CAs")
                     : err_set(err, PTC_EFORMAT, "no usable CA certificate in %s", what);
    }
    free(pem);
    return rc;
}

int ptc_tls_client_config_new(const ptc_tls_client_opts_t *opts, ptc_tls_config_t **out,
                              ptc_tls_err_t *err)
{
    err_clear(err);
    *out = NULL;
    int rc = 0;
    ptc_tls_config_t *cfg = config_alloc(false, err, &rc);
    if (rc != 0) {
        goto fail;
    }
    cfg->no_verify = opts->no_verify;
    cfg->has_pin = opts->has_pin;
    memcpy(cfg->pin, opts->pin_sha256, sizeof(cfg->pin));
    rc = copy_alpn(opts->alpn, &cfg->alpn, err);
    if (rc != 0) {
        goto fail;
    }
    if (!cfg->no_verify) {
        rc = load_cas(cfg, opts, err);
        if (rc != 0) {
            goto fail;
        }
    }
    rc = conf_common(cfg, &cfg->conf, MBEDTLS_SSL_IS_CLIENT, err);
    if (rc != 0) {
        goto fail;
    }
    if (cfg->no_verify) {
        /* OPTIONAL still runs the verify callback, which clears every flag but can still
         * refuse a pin mismatch by returning an error (see on_verify). */
        mbedtls_ssl_conf_authmode(&cfg->conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
    } else {
        mbedtls_ssl_conf_authmode(&cfg->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(&cfg->conf, &cfg->ca, NULL);
    }
    *out = cfg;
    return 0;

fail:
    ptc_tls_config_unref(cfg);
    return rc;
}

ptc_tls_config_t *ptc_tls_config_ref(ptc_tls_config_t *cfg)
{
    cfg->refs++;
    return cfg;
}

void ptc_tls_config_unref(ptc_tls_config_t *cfg)
{
    if (cfg == NULL || --cfg->refs > 0) {
        return;
    }
    gen_unref(cfg->gen);
    mbedtls_ssl_config_free(&cfg->conf);
    mbedtls_x509_crt_free(&cfg->ca);
    mbedtls_ssl_ticket_free(&cfg->ticket);
    mbedtls_ctr_drbg_free(&cfg->drbg);
    mbedtls_entropy_free(&cfg->entropy);
    free_strv(cfg->alpn);
    free(cfg);
}

bool ptc_tls_config_is_server(const ptc_tls_config_t *cfg)
{
    return cfg->is_server;
}

int ptc_tls_config_set_certs(ptc_tls_config_t *cfg, ptc_tls_certs_t *certs)
{
    if (!cfg->is_server) {
        return PTC_ESTATE;
    }
    srv_gen_t *g = NULL;
    int rc = gen_new(cfg, certs, &g, NULL);
    if (rc != 0) {
        return rc;
    }
    gen_unref(cfg->gen);
    cfg->gen = g;
    return 0;
}

/* ---- connections ---- */

struct ptc_tls {
    /* First member: callbacks that receive the mbedtls_ssl_context find the connection. */
    mbedtls_ssl_context ssl;
    ptc_tls_config_t *cfg;
    srv_gen_t *gen; /* server: the certificate set this connection started with */
    ptc_buf_t in;
    ptc_chunkq_t out;
    int err;         /* sticky failure, 0 if none */
    int mbedtls_err; /* the mbedTLS code behind err */
    uint32_t verify_flags;
    bool established;
    bool peer_closed;
    bool close_sent;
    bool pin_failed;
    bool saw_cert;        /* client: the server sent a certificate (a full handshake) */
    bool offered_session; /* client: ptc_tls_set_session() was called */
    bool has_peer_hash;
    const cert_entry_t *chosen; /* server: the certificate being sent */
    char *sni;                  /* server: the name the client asked for */
    uint8_t ip[16];             /* client: the IP literal being verified */
    size_t ip_len;
    uint8_t peer_hash[PTC_TLS_SHA256_LEN];
    /* How far into mbedTLS's record buffers bytes were written since they were last
     * released (ptc_tls_release_idle): the end offsets in in_buf and out_buf. */
    size_t in_touched;
    size_t out_touched;
};

_Static_assert(offsetof(struct ptc_tls, ssl) == 0, "ssl must come first");

/* Notes that buf[0..end) may hold data (end is an offset into the record buffer). */
static void touched(size_t *mark, const unsigned char *buf, const unsigned char *p, size_t len)
{
    size_t end = (size_t)(p - buf) + len;
    if (end > *mark) {
        *mark = end;
    }
}

static int bio_send(void *arg, const unsigned char *p, size_t len)
{
    ptc_tls_t *t = arg;
    /* Whole records go into one chunk so that writers hand the kernel large pieces. */
    size_t avail;
    uint8_t *dst = ptc_chunkq_try_reserve(&t->out, len, &avail);
    if (dst == NULL) {
        return MBEDTLS_ERR_SSL_ALLOC_FAILED;
    }
    memcpy(dst, p, len);
    ptc_chunkq_commit(&t->out, len);
    touched(&t->out_touched, t->ssl.out_buf, p, len);
    return (int)len;
}

static int bio_recv(void *arg, unsigned char *p, size_t len)
{
    ptc_tls_t *t = arg;
    if (t->in.len == 0) {
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    size_t n = len < t->in.len ? len : t->in.len;
    memcpy(p, ptc_buf_data(&t->in), n);
    ptc_buf_consume(&t->in, n);
    touched(&t->in_touched, t->ssl.in_buf, p, n);
    return (int)n;
}

/* Chooses the certificate for the name the client asked for; an unknown name (or one we
 * would not log) gets the default certificate rather than a failed handshake. */
static int on_sni(void *arg, mbedtls_ssl_context *ssl, const unsigned char *name, size_t len)
{
    (void)arg;
    ptc_tls_t *t = (ptc_tls_t *)ssl;
    char *lname = normalize_name(name, len);
    if (lname == NULL) {
        return 0;
    }
    free(t->sni);
    t->sni = lname;
    const cert_entry_t *e = certs_lookup(t->gen->certs, lname);
    if (e != NULL && e != t->chosen) {
        int ret = mbedtls_ssl_set_hs_own_cert(ssl, (mbedtls_x509_crt *)&e->chain,
                                              (mbedtls_pk_context *)&e->key);
        if (ret != 0) {
            return ret;
        }
        t->chosen = e;
    }
    return 0;
}

/* Finds an iPAddress subjectAltName equal to ip[0..len) in the raw extensions (mbedTLS 2.28
 * keeps only DNS names in subject_alt_names). Malformed DER means no match. */
static bool cert_has_ip(const mbedtls_x509_crt *crt, const uint8_t *ip, size_t ip_len)
{
    unsigned char *p = crt->v3_ext.p;
    if (p == NULL) {
        return false;
    }
    const unsigned char *end = p + crt->v3_ext.len;
    size_t len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) !=
        0) {
        return false;
    }
    end = p + len;
    while (p < end) {
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) !=
            0) {
            return false;
        }
        const unsigned char *ext_end = p + len;
        mbedtls_asn1_buf oid;
        oid.tag = MBEDTLS_ASN1_OID;
        if (mbedtls_asn1_get_tag(&p, ext_end, &oid.len, MBEDTLS_ASN1_OID) != 0) {
            return false;
        }
        oid.p = p;
        p += oid.len;
        int critical = 0;
        if (p < ext_end && *p == MBEDTLS_ASN1_BOOLEAN &&
            mbedtls_asn1_get_bool(&p, ext_end, &critical) != 0) {
            return false;
        }
        if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0) {
            return false;
        }
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_SUBJECT_ALT_NAME, &oid) == 0) {
            unsigned char *q = p;
            const unsigned char *q_end = p + len;
            size_t names_len;
            if (mbedtls_asn1_get_tag(&q, q_end, &names_len,
                                     MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) {
                return false;
            }
            q_end = q + names_len;
            while (q < q_end) {
                unsigned char tag = *q++;
                size_t l;
                if (mbedtls_asn1_get_len(&q, q_end, &l) != 0) {
                    return false;
                }
                if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && l == ip_len &&
                    memcmp(q, ip, ip_len) == 0) {
                    return true;
                }
                q += l;
            }
        }
        p = (unsigned char *)ext_end;
    }
    return false;
}

/*
 * Client verification, called for each certificate of the chain from the top down to the
 * leaf (depth 0) with the flags mbedTLS found. The flags are accumulated so that the leaf
 * call sees the whole chain's verdict: the pin is checked only once the chain is good.
 * Returning an error (rather than setting a flag) is the only way to refuse a pin mismatch
 * when verification is OPTIONAL (no_verify): mbedTLS ignores flags then, not errors.
 */
static int on_verify(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    ptc_tls_t *t = arg;
    t->saw_cert = true;
    if (t->cfg->no_verify) {
        *flags = 0;
    } else if (depth == 0 && t->ip_len != 0 && !cert_has_ip(crt, t->ip, t->ip_len)) {
        *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
    }
    t->verify_flags |= *flags;
    if (depth != 0) {
        return 0;
    }
    sha256(crt->raw.p, crt->raw.len, t->peer_hash);
    t->has_peer_hash = true;
    if (t->cfg->has_pin && t->verify_flags == 0) {
        uint8_t spki[PTC_TLS_SHA256_LEN];
        sha256(crt->pk_raw.p, crt->pk_raw.len, spki);
        if (memcmp(spki, t->cfg->pin, sizeof(spki)) != 0) {
            t->pin_failed = true;
            return MBEDTLS_ERR_X509_FATAL_ERROR;
        }
    }
    return 0;
}

int ptc_tls_new(ptc_tls_config_t *cfg, const char *server_name, ptc_tls_t **out)
{
    *out = NULL;
    if (!cfg->is_server) {
        if (server_name == NULL && !cfg->no_verify) {
            return -EINVAL;
        }
        if (server_name != NULL && (server_name[0] == '\0' || strlen(server_name) > NAME_MAX_LEN)) {
            return -EINVAL;
        }
    }
    ptc_tls_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return PTC_ENOMEM;
    }
    mbedtls_ssl_init(&t->ssl);
    ptc_buf_init(&t->in);
    ptc_chunkq_init(&t->out, 1024 * 1024, 256 * 1024);
    t->cfg = ptc_tls_config_ref(cfg);
    int rc = 0;
    const mbedtls_ssl_config *conf = &cfg->conf;
    if (cfg->is_server) {
        t->gen = cfg->gen;
        t->gen->refs++;
        t->chosen = t->gen->certs->entries[t->gen->certs->default_idx];
        conf = &t->gen->conf;
    }
    int ret = mbedtls_ssl_setup(&t->ssl, conf);
    if (ret != 0) {
        rc = ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? PTC_ENOMEM : PTC_ETLS;
        goto fail;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    /* calloc may have written every byte of both record buffers. */
    t->in_touched = MBEDTLS_SSL_IN_BUFFER_LEN;
    t->out_touched = MBEDTLS_SSL_OUT_BUFFER_LEN;
    if (!cfg->is_server) {
        mbedtls_ssl_set_verify(&t->ssl, on_verify, t);
        if (server_name != NULL) {
            /* IP literals are verified against iPAddress names here, and never sent as
             * SNI (RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted"). */
            if (inet_pton(AF_INET, server_name, t->ip) == 1) {
                t->ip_len = 4;
            } else if (inet_pton(AF_INET6, server_name, t->ip) == 1) {
                t->ip_len = 16;
            } else {
                ret = mbedtls_ssl_set_hostname(&t->ssl, server_name);
                if (ret != 0) {
                    rc = ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? PTC_ENOMEM : -EINVAL;
                    goto fail;
                }
            }
        }
    }
    *out = t;
    return 0;

fail:
    ptc_tls_free(t);
    return rc;
}

void ptc_tls_free(ptc_tls_t *t)
{
    if (t == NULL) {
        return;
    }
    mbedtls_ssl_free(&t->ssl);
    ptc_buf_dispose(&t->in);
    ptc_chunkq_dispose(&t->out);
    free(t->sni);
    gen_unref(t->gen);
    ptc_tls_config_unref(t->cfg);
    free(t);
}

ptc_buf_t *ptc_tls_input(ptc_tls_t *t)
{
    return &t->in;
}

ptc_chunkq_t *ptc_tls_output(ptc_tls_t *t)
{
    return &t->out;
}

static int fail(ptc_tls_t *t, int code, int mbedtls_code)
{
    t->err = code;
    t->mbedtls_err = mbedtls_code;
    return code;
}

/* Maps a handshake failure to Portico's codes (the mbedTLS code is kept for logs). */
static int handshake_error(const ptc_tls_t *t, int ret)
{
    if (t->pin_failed) {
        return PTC_EPIN;
    }
    switch (ret) {
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
    case MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED:
    case MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE:
        if (t->cfg->is_server) {
            return PTC_ETLS;
        }
        /* A name mismatch alone is reported as such; together with an untrusted or
         * expired chain, the chain is the problem to report. */
        return t->verify_flags == MBEDTLS_X509_BADCERT_CN_MISMATCH ? PTC_ECERTNAME : PTC_ECERT;
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
        return UV_EOF;
    case MBEDTLS_ERR_SSL_ALLOC_FAILED:
        return PTC_ENOMEM;
    default:
        return PTC_ETLS;
    }
}

int ptc_tls_handshake(ptc_tls_t *t)
{
    if (t->err != 0) {
        return t->err;
    }
    if (t->established) {
        return 0;
    }
    int ret = mbedtls_ssl_handshake(&t->ssl);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ) {
        return PTC_EINCOMPLETE;
    }
    if (ret != 0) {
        return fail(t, handshake_error(t, ret), ret);
    }
    t->established = true;
    if (!t->cfg->is_server && !t->has_peer_hash) {
        /* A resumed session carries the certificate of the handshake that made it. */
        const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&t->ssl);
        if (peer != NULL) {
            sha256(peer->raw.p, peer->raw.len, t->peer_hash);
            t->has_peer_hash = true;
        }
    }
    return 0;
}

bool ptc_tls_is_established(const ptc_tls_t *t)
{
    return t->established;
}

ssize_t ptc_tls_read(ptc_tls_t *t, void *dst, size_t cap)
{
    if (t->err != 0) {
        return t->err;
    }
    if (!t->established) {
        return PTC_ESTATE;
    }
    if (t->peer_closed) {
        return UV_EOF;
    }
    int ret = mbedtls_ssl_read(&t->ssl, dst, cap);
    if (ret > 0) {
        return ret;
    }
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
        return PTC_EINCOMPLETE;
    }
    if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
        t->peer_closed = true;
        return UV_EOF;
    }
    return fail(t, ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? PTC_ENOMEM : PTC_ETLS, ret);
}

int ptc_tls_write(ptc_tls_t *t, const void *p, size_t len)
{
    if (t->err != 0) {
        return t->err;
    }
    if (!t->established || t->close_sent) {
        return PTC_ESTATE;
    }
    const unsigned char *src = p;
    while (len > 0) {
        /* mbedTLS takes at most one record (16 KiB of plaintext) per call. */
        int ret = mbedtls_ssl_write(&t->ssl, src, len);
        if (ret < 0) {
            return fail(t, ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? PTC_ENOMEM : PTC_ETLS, ret);
        }
        src += ret;
        len -= (size_t)ret;
    }
    return 0;
}

int ptc_tls_close_notify(ptc_tls_t *t)
{
    if (t->close_sent || t->err != 0 || !t->established) {
        t->close_sent = true;
        return 0;
    }
    t->close_sent = true;
    int ret = mbedtls_ssl_close_notify(&t->ssl);
    if (ret != 0) {
        return fail(t, ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? PTC_ENOMEM : PTC_ETLS, ret);
    }
    return 0;
}

/*
 * Returns the whole pages of buf[keep..touched) to the kernel; they read back as zeros. The
 * buffer stays allocated at the same address: mbedTLS never learns of it. Returns the bytes
 * released.
 */
static size_t release_pages(unsigned char *buf, size_t *touched_end, size_t keep)
{
    if (*touched_end <= keep) {
        return 0;
    }
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)buf + keep + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)buf + *touched_end) & ~(page - 1);
    *touched_end = keep;
    if (hi <= lo || madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0) {
        return 0;
    }
    return hi - lo;
}

size_t ptc_tls_release_idle(ptc_tls_t *t)
{
    /* Only between records: no partial record, unread plaintext, pending message or
     * unsent bytes. The last handshake message (Finished) stays "current" until the next
     * record, but it was processed and its bytes are never read again. The first bytes of
     * each buffer hold the record sequence numbers (TLS keeps them in front of the record
     * header) and stay, with room for small records. */
    const mbedtls_ssl_context *ssl = &t->ssl;
    bool msg_done =
        ssl->in_msglen == 0 || (ssl->in_msgtype == MBEDTLS_SSL_MSG_HANDSHAKE &&
                                ssl->in_hslen >= ssl->in_msglen && ssl->in_offt == NULL);
    if (!t->established || t->err != 0 || ssl->in_left != 0 || !msg_done || ssl->out_left != 0 ||
        ssl->in_buf == NULL || ssl->out_buf == NULL) {
        return 0;
    }
    return release_pages(ssl->in_buf, &t->in_touched, PTC_TLS_IDLE_KEEP) +
           release_pages(ssl->out_buf, &t->out_touched, PTC_TLS_IDLE_KEEP);
}

void ptc_tls_idle_note(ptc_tls_idle_t *w, bool idle, uint64_t now_ms)
{
    if (!idle) {
        w->waiting = false;
    } else if (!w->waiting) {
        w->waiting = true;
        w->since_ms = now_ms;
    }
}

uint64_t ptc_tls_idle_due(const ptc_tls_idle_t *w)
{
    return w->waiting ? w->since_ms + PTC_TLS_IDLE_RELEASE_MS : UINT64_MAX;
}

bool ptc_tls_idle_take(ptc_tls_idle_t *w, uint64_t now_ms)
{
    if (!w->waiting || now_ms < w->since_ms + PTC_TLS_IDLE_RELEASE_MS) {
        return false;
    }
    w->waiting = false;
    return true;
}

bool ptc_tls_has_pending(const ptc_tls_t *t)
{
    return t->in.len != 0 || mbedtls_ssl_get_bytes_avail(&t->ssl) != 0 ||
           mbedtls_ssl_check_pending(&t->ssl) != 0;
}

const char *ptc_tls_alpn(const ptc_tls_t *t)
{
    return t->established ? mbedtls_ssl_get_alpn_protocol(&t->ssl) : NULL;
}

const char *ptc_tls_sni(const ptc_tls_t *t)
{
    return t->sni;
}

int ptc_tls_server_cert_sha256(const ptc_tls_t *t, uint8_t out[PTC_TLS_SHA256_LEN])
{
    if (t->cfg->is_server) {
        memcpy(out, t->chosen->sha256, PTC_TLS_SHA256_LEN);
        return 0;
    }
    if (!t->has_peer_hash) {
        return PTC_ESTATE;
    }
    memcpy(out, t->peer_hash, PTC_TLS_SHA256_LEN);
    return 0;
}

const char *ptc_tls_ciphersuite(const ptc_tls_t *t)
{
    const char *s = t->established ? mbedtls_ssl_get_ciphersuite(&t->ssl) : NULL;
    return s != NULL ? s : "unknown";
}

const char *ptc_tls_version(const ptc_tls_t *t)
{
    return t->established ? mbedtls_ssl_get_version(&t->ssl) : "unknown";
}

bool ptc_tls_is_resumed(const ptc_tls_t *t)
{
    /* The server sends its certificate in every full handshake and never in an
     * abbreviated one (RFC 5246 §7.3, RFC 5077 §3.1). */
    return !t->cfg->is_server && t->established && t->offered_session && !t->saw_cert;
}

/* Joins mbedtls_x509_crt_verify_info()'s lines ("...\n...\n") with "; ". */
static void verify_reason(uint32_t flags, char *out, size_t cap)
{
    char buf[512];
    int n = mbedtls_x509_crt_verify_info(buf, sizeof(buf), "", flags);
    if (n <= 0) {
        snprintf(out, cap, "certificate verification failed (flags 0x%x)", (unsigned)flags);
        return;
    }
    size_t o = 0;
    for (char *line = strtok(buf, "\n"); line != NULL && o + 1 < cap; line = strtok(NULL, "\n")) {
        int w = snprintf(out + o, cap - o, "%s%s", o == 0 ? "" : "; ", line);
        if (w < 0) {
            break;
        }
        o += (size_t)w;
    }
}

void ptc_tls_last_error(const ptc_tls_t *t, ptc_tls_err_t *err)
{
    err->mbedtls_code = t->mbedtls_err;
    err->reason[0] = '\0';
    if (t->err == 0) {
        return;
    }
    if (t->pin_failed) {
        snprintf(err->reason, sizeof(err->reason),
                 "the server's public key does not match the pinned SHA-256");
    } else if ((t->err == PTC_ECERT || t->err == PTC_ECERTNAME) && t->verify_flags != 0) {
        verify_reason(t->verify_flags, err->reason, sizeof(err->reason));
    } else if (t->mbedtls_err != 0) {
        char msg[160];
        mbedtls_strerror(t->mbedtls_err, msg, sizeof(msg));
        snprintf(err->reason, sizeof(err->reason), "%s (-0x%04x)", msg, (unsigned)-t->mbedtls_err);
    }
}

/* ---- client session resumption ---- */

struct ptc_tls_session {
    mbedtls_ssl_session s;
};

int ptc_tls_get_session(const ptc_tls_t *t, ptc_tls_session_t **out)
{
    *out = NULL;
    if (t->cfg->is_server || !t->established) {
        return PTC_ESTATE;
    }
    ptc_tls_session_t *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return PTC_ENOMEM;
    }
    mbedtls_ssl_session_init(&s->s);
    int ret = mbedtls_ssl_get_session(&t->ssl, &s->s);
    if (ret != 0) {
        ptc_tls_session_free(s);
        return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? PTC_ENOMEM : PTC_ESTATE;
    }
    *out = s;
    return 0;
}

int ptc_tls_set_session(ptc_tls_t *t, const ptc_tls_session_t *s)
{
    if (t->cfg->is_server || t->established || t->err != 0) {
        return PTC_ESTATE;
    }
    int ret = mbedtls_ssl_set_session(&t->ssl, &s->s);
    if (ret != 0) {
        return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? PTC_ENOMEM : PTC_ETLS;
    }
    t->offered_session = true;
    return 0;
}

void ptc_tls_session_free(ptc_tls_session_t *s)
{
    if (s == NULL) {
        return;
    }
    mbedtls_ssl_session_free(&s->s); /* zeroizes the master secret */
    free(s);
}

/* ---- helpers ---- */

int ptc_tls_spki_sha256_pem(const char *pem, size_t len, uint8_t out[PTC_TLS_SHA256_LEN])
{
    if (len > PEM_FILE_MAX) {
        return PTC_ELIMIT;
    }
    char *z = dup_mem(pem, len);
    if (z == NULL) {
        return PTC_ENOMEM;
    }
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int ret = mbedtls_x509_crt_parse(&crt, (const unsigned char *)z, len + 1);
    int rc = PTC_EFORMAT;
    if (ret >= 0 && crt.raw.p != NULL) {
        sha256(crt.pk_raw.p, crt.pk_raw.len, out);
        rc = 0;
    }
    mbedtls_x509_crt_free(&crt);
    free(z);
    return rc;
}
