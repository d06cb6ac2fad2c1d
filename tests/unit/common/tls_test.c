/* SPDX-License-Identifier: MIT */
/*
 * common/tls with no sockets: a client and a server context wired back to back, their
 * ciphertext moved by hand between output queue and input buffer. Certificates are made at
 * run time by tests/support/certgen.
 */
#include "common/tls.h"
#include "common/tls_aead.h"
#include "tests/support/certgen.h"
#include "tests/support/test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <uv.h>

#include <mbedtls/ssl.h>
#include <mbedtls/ssl_internal.h>

static const char *const server_alpn[] = {"portico/1", "http/1.1", NULL};

/* The usual cast: one CA, and a leaf for edge.example.com and the loopback addresses. */
typedef struct pki {
    ptc_certgen_cert_t ca;
    ptc_certgen_cert_t leaf;
} pki_t;

static void pki_init(pki_t *p)
{
    static const char *const sans[] = {"DNS:edge.example.com", "DNS:localhost", "IP:127.0.0.1",
                                       "IP:::1", NULL};
    ptc_certgen_ca(NULL, "Test CA", &p->ca);
    ptc_certgen_opts_t o = {.sans = sans};
    ptc_certgen_leaf(&p->ca, NULL, "edge", &o, &p->leaf);
}

static void pki_dispose(pki_t *p)
{
    ptc_certgen_dispose(&p->leaf);
    ptc_certgen_dispose(&p->ca);
}

static ptc_tls_certs_t *certs_of(const ptc_certgen_cert_t *leaf)
{
    ptc_tls_certs_t *c = ptc_tls_certs_new();
    ptc_tls_err_t err;
    int rc = ptc_tls_certs_add_pem(c, leaf->cert_pem, strlen(leaf->cert_pem), leaf->key_pem,
                                   strlen(leaf->key_pem), false, &err);
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "add_pem: %s: %s", ptc_errname(rc), err.reason);
    }
    return c;
}

static ptc_tls_config_t *server_config(ptc_tls_certs_t *certs, uint32_t ticket_lifetime)
{
    ptc_tls_server_opts_t o = {
        .certs = certs, .alpn = server_alpn, .ticket_lifetime_s = ticket_lifetime};
    ptc_tls_config_t *cfg = NULL;
    ptc_tls_err_t err;
    int rc = ptc_tls_server_config_new(&o, &cfg, &err);
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "server config: %s: %s", ptc_errname(rc), err.reason);
    }
    return cfg;
}

static ptc_tls_config_t *server_config_for(const ptc_certgen_cert_t *leaf)
{
    ptc_tls_certs_t *certs = certs_of(leaf);
    ptc_tls_config_t *cfg = server_config(certs, 0);
    ptc_tls_certs_unref(certs);
    return cfg;
}

static ptc_tls_config_t *client_config(ptc_tls_client_opts_t *o, const ptc_certgen_cert_t *ca)
{
    if (ca != NULL) {
        o->ca_pem = ca->cert_pem;
        o->ca_pem_len = strlen(ca->cert_pem);
    }
    ptc_tls_config_t *cfg = NULL;
    ptc_tls_err_t err;
    int rc = ptc_tls_client_config_new(o, &cfg, &err);
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "client config: %s: %s", ptc_errname(rc), err.reason);
    }
    return cfg;
}

static ptc_tls_t *conn(ptc_tls_config_t *cfg, const char *name)
{
    ptc_tls_t *t = NULL;
    int rc = ptc_tls_new(cfg, name, &t);
    if (rc != 0) {
        ptc_test_fail(__FILE__, __LINE__, "ptc_tls_new: %s", ptc_errname(rc));
    }
    return t;
}

/* Moves every queued ciphertext byte from one side to the other; returns how many. */
static size_t move(ptc_tls_t *from, ptc_tls_t *to)
{
    ptc_chunkq_t *q = ptc_tls_output(from);
    size_t total = 0;
    while (q->queued > 0) {
        ptc_slice_t s[8];
        size_t n = ptc_chunkq_peek(q, s, 8);
        for (size_t i = 0; i < n; i++) {
            ptc_buf_append(ptc_tls_input(to), s[i].ptr, s[i].len);
            ptc_chunkq_consume(q, s[i].len);
            total += s[i].len;
        }
    }
    return total;
}

/* Runs both handshakes until each finished or failed, or nothing moves any more. */
static void run_handshake(ptc_tls_t *c, ptc_tls_t *s, int *rc_c, int *rc_s)
{
    *rc_c = PTC_EINCOMPLETE;
    *rc_s = PTC_EINCOMPLETE;
    for (int i = 0; i < 32; i++) {
        if (*rc_c == PTC_EINCOMPLETE) {
            *rc_c = ptc_tls_handshake(c);
        }
        size_t moved = move(c, s);
        if (*rc_s == PTC_EINCOMPLETE) {
            *rc_s = ptc_tls_handshake(s);
        }
        moved += move(s, c);
        if (*rc_c != PTC_EINCOMPLETE && *rc_s != PTC_EINCOMPLETE) {
            return;
        }
        if (moved == 0) {
            return;
        }
    }
}

static void handshake_ok(ptc_tls_t *c, ptc_tls_t *s)
{
    int rc_c;
    int rc_s;
    run_handshake(c, s, &rc_c, &rc_s);
    if (rc_c != 0 || rc_s != 0) {
        ptc_tls_err_t ec;
        ptc_tls_err_t es;
        ptc_tls_last_error(c, &ec);
        ptc_tls_last_error(s, &es);
        ptc_test_fail(__FILE__, __LINE__, "handshake: client %s (%s), server %s (%s)",
                      ptc_errname(rc_c), ec.reason, ptc_errname(rc_s), es.reason);
    }
}

/* Sends `len` bytes from one side and reads them on the other; returns ciphertext bytes. */
static size_t transfer(ptc_tls_t *from, ptc_tls_t *to, const uint8_t *data, size_t len,
                       size_t write_size)
{
    for (size_t off = 0; off < len; off += write_size) {
        size_t n = len - off < write_size ? len - off : write_size;
        CHECK_OK(ptc_tls_write(from, data + off, n));
    }
    size_t wire = move(from, to);
    uint8_t *got = malloc(len + 1);
    size_t have = 0;
    for (;;) {
        uint8_t buf[16384];
        ssize_t n = ptc_tls_read(to, buf, sizeof(buf));
        if (n == PTC_EINCOMPLETE) {
            break;
        }
        CHECK_GT(n, 0);
        CHECK_LE(have + (size_t)n, len);
        memcpy(got + have, buf, (size_t)n);
        have += (size_t)n;
    }
    CHECK_EQ(have, len);
    CHECK_MEMEQ(got, data, len);
    CHECK(!ptc_tls_has_pending(to));
    free(got);
    return wire;
}

/* ---- tests ---- */

static void test_handshake_negotiates_alpn(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_config_t *scfg = server_config_for(&p.leaf);
    static const char *const offer[] = {"http/1.1", "portico/1", NULL};
    ptc_tls_client_opts_t co = {.alpn = offer};
    ptc_tls_config_t *ccfg = client_config(&co, &p.ca);
    ptc_tls_t *c = conn(ccfg, "edge.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    CHECK(!ptc_tls_is_established(c));
    CHECK_EQ(ptc_tls_write(c, "x", 1), PTC_ESTATE);
    uint8_t buf[16];
    CHECK_EQ(ptc_tls_read(s, buf, sizeof(buf)), PTC_ESTATE);
    uint8_t hash[PTC_TLS_SHA256_LEN];
    CHECK_EQ(ptc_tls_server_cert_sha256(c, hash), PTC_ESTATE);

    handshake_ok(c, s);
    CHECK(ptc_tls_is_established(c));
    CHECK(ptc_tls_is_established(s));
    /* The server's preference wins over the client's order. */
    CHECK_STREQ(ptc_tls_alpn(c), "portico/1");
    CHECK_STREQ(ptc_tls_alpn(s), "portico/1");
    CHECK_STREQ(ptc_tls_sni(s), "edge.example.com");
    CHECK_STREQ(ptc_tls_version(c), "TLSv1.2");
    CHECK_STREQ(ptc_tls_ciphersuite(s), "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256");
    CHECK_STREQ(ptc_tls_ciphersuite(c), ptc_tls_ciphersuite(s));
    CHECK(!ptc_tls_is_resumed(c));
    /* Both ends agree on the hash of the edge's certificate (the tunnel handshake signs it). */
    CHECK_OK(ptc_tls_server_cert_sha256(c, hash));
    CHECK_MEMEQ(hash, p.leaf.sha256, sizeof(hash));
    CHECK_OK(ptc_tls_server_cert_sha256(s, hash));
    CHECK_MEMEQ(hash, p.leaf.sha256, sizeof(hash));
    /* Handshake calls after completion are no-ops. */
    CHECK_OK(ptc_tls_handshake(c));
    CHECK_EQ(ptc_tls_output(c)->queued, 0);

    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg);
    pki_dispose(&p);
}

static void test_alpn_without_overlap_fails(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_config_t *scfg = server_config_for(&p.leaf);
    static const char *const offer[] = {"h2", NULL};
    ptc_tls_client_opts_t co = {.alpn = offer};
    ptc_tls_config_t *ccfg = client_config(&co, &p.ca);
    ptc_tls_t *c = conn(ccfg, "edge.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    int rc_c;
    int rc_s;
    run_handshake(c, s, &rc_c, &rc_s);
    CHECK_EQ(rc_s, PTC_ETLS);
    CHECK_EQ(rc_c, PTC_ETLS);

    /* No ALPN at all is fine: the connection just has none. */
    ptc_tls_client_opts_t co2 = {0};
    ptc_tls_config_t *ccfg2 = client_config(&co2, &p.ca);
    ptc_tls_t *c2 = conn(ccfg2, "edge.example.com");
    ptc_tls_t *s2 = conn(scfg, NULL);
    handshake_ok(c2, s2);
    CHECK_NULL(ptc_tls_alpn(c2));
    CHECK_NULL(ptc_tls_alpn(s2));

    ptc_tls_free(c2);
    ptc_tls_free(s2);
    ptc_tls_config_unref(ccfg2);
    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg);
    pki_dispose(&p);
}

/* Connects a no-verify client with `sni` and returns the hash of the certificate it got. */
static void served_cert(ptc_tls_config_t *scfg, const char *sni, uint8_t out[32],
                        const char *want_sni)
{
    ptc_tls_client_opts_t co = {.no_verify = true};
    ptc_tls_config_t *ccfg = client_config(&co, NULL);
    ptc_tls_t *c = conn(ccfg, sni);
    ptc_tls_t *s = conn(scfg, NULL);
    handshake_ok(c, s);
    CHECK_OK(ptc_tls_server_cert_sha256(c, out));
    uint8_t own[PTC_TLS_SHA256_LEN];
    CHECK_OK(ptc_tls_server_cert_sha256(s, own));
    CHECK_MEMEQ(own, out, sizeof(own));
    CHECK_STREQ(ptc_tls_sni(s), want_sni);
    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
}

static void test_sni_selects_certificate(void)
{
    ptc_certgen_cert_t ca;
    ptc_certgen_ca(NULL, "SNI CA", &ca);
    static const char *const def_sans[] = {"DNS:edge.example.com", NULL};
    static const char *const wild_sans[] = {"DNS:*.apps.example.com", NULL};
    static const char *const exact_sans[] = {"DNS:hr.apps.example.com", "DNS:hr.example.org", NULL};
    ptc_certgen_opts_t o1 = {.sans = def_sans};
    ptc_certgen_opts_t o2 = {.sans = wild_sans};
    ptc_certgen_opts_t o3 = {.sans = exact_sans};
    ptc_certgen_cert_t wild;
    ptc_certgen_cert_t def;
    ptc_certgen_cert_t exact;
    ptc_certgen_leaf(&ca, NULL, "wild", &o2, &wild);
    ptc_certgen_leaf(&ca, NULL, "def", &o1, &def);
    ptc_certgen_leaf(&ca, NULL, "exact", &o3, &exact);

    /* The wildcard comes first, yet the exact entry wins for its name; "def" is the
     * explicit default although it is not the first entry. */
    ptc_tls_certs_t *certs = ptc_tls_certs_new();
    CHECK_OK(ptc_tls_certs_add_pem(certs, wild.cert_pem, strlen(wild.cert_pem), wild.key_pem,
                                   strlen(wild.key_pem), false, NULL));
    CHECK_OK(ptc_tls_certs_add_pem(certs, def.cert_pem, strlen(def.cert_pem), def.key_pem,
                                   strlen(def.key_pem), true, NULL));
    CHECK_OK(ptc_tls_certs_add_pem(certs, exact.cert_pem, strlen(exact.cert_pem), exact.key_pem,
                                   strlen(exact.key_pem), false, NULL));
    CHECK_EQ(ptc_tls_certs_count(certs), 3);
    ptc_tls_config_t *scfg = server_config(certs, 0);
    ptc_tls_certs_unref(certs);

    uint8_t h[PTC_TLS_SHA256_LEN];
    served_cert(scfg, "hr.apps.example.com", h, "hr.apps.example.com");
    CHECK_MEMEQ(h, exact.sha256, sizeof(h));
    served_cert(scfg, "HR.Example.ORG", h, "hr.example.org");
    CHECK_MEMEQ(h, exact.sha256, sizeof(h));
    served_cert(scfg, "wiki.apps.example.com", h, "wiki.apps.example.com");
    CHECK_MEMEQ(h, wild.sha256, sizeof(h));
    /* A wildcard covers exactly one label. */
    served_cert(scfg, "a.b.apps.example.com", h, "a.b.apps.example.com");
    CHECK_MEMEQ(h, def.sha256, sizeof(h));
    served_cert(scfg, "apps.example.com", h, "apps.example.com");
    CHECK_MEMEQ(h, def.sha256, sizeof(h));
    served_cert(scfg, "unknown.example.net", h, "unknown.example.net");
    CHECK_MEMEQ(h, def.sha256, sizeof(h));
    /* An IP literal sends no SNI at all: the default certificate. */
    served_cert(scfg, "127.0.0.1", h, NULL);
    CHECK_MEMEQ(h, def.sha256, sizeof(h));
    served_cert(scfg, NULL, h, NULL);
    CHECK_MEMEQ(h, def.sha256, sizeof(h));

    /* A verifying client accepts the wildcard for a name it covers. */
    ptc_tls_client_opts_t co = {0};
    ptc_tls_config_t *ccfg = client_config(&co, &ca);
    ptc_tls_t *c = conn(ccfg, "wiki.apps.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    handshake_ok(c, s);
    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);

    ptc_tls_config_unref(scfg);
    ptc_certgen_dispose(&exact);
    ptc_certgen_dispose(&def);
    ptc_certgen_dispose(&wild);
    ptc_certgen_dispose(&ca);
}

static void test_certificate_set_replaced_live(void)
{
    ptc_certgen_cert_t ca;
    ptc_certgen_ca(NULL, "Live CA", &ca);
    static const char *const sans[] = {"DNS:edge.example.com", NULL};
    ptc_certgen_opts_t o = {.sans = sans};
    ptc_certgen_cert_t a;
    ptc_certgen_cert_t b;
    ptc_certgen_leaf(&ca, NULL, "a", &o, &a);
    ptc_certgen_leaf(&ca, NULL, "b", &o, &b);

    ptc_tls_certs_t *set_a = certs_of(&a);
    ptc_tls_config_t *scfg = server_config(set_a, 0);
    /* Installed sets are frozen. */
    CHECK_EQ(ptc_tls_certs_add_pem(set_a, b.cert_pem, strlen(b.cert_pem), b.key_pem,
                                   strlen(b.key_pem), false, NULL),
             PTC_ESTATE);
    ptc_tls_certs_unref(set_a);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_config_t *ccfg = client_config(&co, &ca);

    ptc_tls_t *c1 = conn(ccfg, "edge.example.com");
    ptc_tls_t *s1 = conn(scfg, NULL);
    handshake_ok(c1, s1);

    ptc_tls_certs_t *set_b = certs_of(&b);
    CHECK_OK(ptc_tls_config_set_certs(scfg, set_b));
    ptc_tls_certs_unref(set_b);
    ptc_tls_certs_t *empty = ptc_tls_certs_new();
    CHECK_EQ(ptc_tls_config_set_certs(scfg, empty), PTC_ECONFIG);
    CHECK_EQ(ptc_tls_config_set_certs(ccfg, empty), PTC_ESTATE);
    ptc_tls_certs_unref(empty);

    ptc_tls_t *c2 = conn(ccfg, "edge.example.com");
    ptc_tls_t *s2 = conn(scfg, NULL);
    handshake_ok(c2, s2);
    uint8_t h[PTC_TLS_SHA256_LEN];
    CHECK_OK(ptc_tls_server_cert_sha256(c2, h));
    CHECK_MEMEQ(h, b.sha256, sizeof(h));

    /* The first connection keeps set A, and still works after the swap. */
    CHECK_OK(ptc_tls_server_cert_sha256(s1, h));
    CHECK_MEMEQ(h, a.sha256, sizeof(h));
    transfer(c1, s1, (const uint8_t *)"still here", 10, 10);
    transfer(s1, c1, (const uint8_t *)"yes", 3, 3);

    /* The configuration goes first; connections keep what they need alive. */
    ptc_tls_config_unref(scfg);
    transfer(c2, s2, (const uint8_t *)"after unref", 11, 11);
    ptc_tls_free(s2);
    ptc_tls_free(c2);
    ptc_tls_free(s1);
    ptc_tls_free(c1);
    ptc_tls_config_unref(ccfg);
    ptc_certgen_dispose(&b);
    ptc_certgen_dispose(&a);
    ptc_certgen_dispose(&ca);
}

/* A verifying client against a server that presents `leaf`, connecting to `name`. */
static int client_verdict(const ptc_certgen_cert_t *trusted_ca, const ptc_certgen_cert_t *leaf,
                          const char *name, ptc_tls_client_opts_t *co, ptc_tls_err_t *why)
{
    ptc_tls_config_t *scfg = server_config_for(leaf);
    ptc_tls_config_t *ccfg = client_config(co, trusted_ca);
    ptc_tls_t *c = conn(ccfg, name);
    ptc_tls_t *s = conn(scfg, NULL);
    int rc_c;
    int rc_s;
    run_handshake(c, s, &rc_c, &rc_s);
    if (rc_c != 0) {
        /* A refusing client leaves the server failed, never established. */
        CHECK(rc_s != 0 && rc_s != PTC_EINCOMPLETE);
        CHECK(!ptc_tls_is_established(s));
        CHECK_EQ(ptc_tls_write(c, "x", 1), rc_c); /* sticky */
    }
    ptc_tls_last_error(c, why);
    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg);
    return rc_c;
}

static void test_untrusted_ca_refused(void)
{
    pki_t p;
    pki_init(&p);
    ptc_certgen_cert_t other_ca;
    ptc_certgen_ca(NULL, "Other CA", &other_ca);
    static const char *const sans[] = {"DNS:edge.example.com", NULL};
    ptc_certgen_opts_t o = {.sans = sans};
    ptc_certgen_cert_t rogue;
    ptc_certgen_leaf(&other_ca, NULL, "rogue", &o, &rogue);

    ptc_tls_client_opts_t co = {0};
    ptc_tls_err_t why;
    CHECK_EQ(client_verdict(&p.ca, &rogue, "edge.example.com", &co, &why), PTC_ECERT);
    CHECK_NE(why.mbedtls_code, 0);
    CHECK_CONTAINS(why.reason, "not correctly signed");

    ptc_certgen_dispose(&rogue);
    ptc_certgen_dispose(&other_ca);
    pki_dispose(&p);
}

static void test_wrong_hostname_refused(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_err_t why;
    CHECK_EQ(client_verdict(&p.ca, &p.leaf, "evil.example.com", &co, &why), PTC_ECERTNAME);
    CHECK_CONTAINS(why.reason, "CN");
    /* Same certificate, right name: accepted. */
    CHECK_OK(client_verdict(&p.ca, &p.leaf, "edge.example.com", &co, &why));
    CHECK_OK(client_verdict(&p.ca, &p.leaf, "LOCALHOST", &co, &why));
    pki_dispose(&p);
}

static void test_ip_subject_alt_names(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_err_t why;
    CHECK_OK(client_verdict(&p.ca, &p.leaf, "127.0.0.1", &co, &why));
    CHECK_OK(client_verdict(&p.ca, &p.leaf, "::1", &co, &why));
    CHECK_EQ(client_verdict(&p.ca, &p.leaf, "127.0.0.2", &co, &why), PTC_ECERTNAME);
    CHECK_EQ(client_verdict(&p.ca, &p.leaf, "::2", &co, &why), PTC_ECERTNAME);

    /* A DNS name that spells the address is not an IP SAN, and vice versa. */
    static const char *const dns_only[] = {"DNS:127.0.0.1", NULL};
    ptc_certgen_opts_t o = {.sans = dns_only};
    ptc_certgen_cert_t leaf;
    ptc_certgen_leaf(&p.ca, NULL, "dnsip", &o, &leaf);
    CHECK_EQ(client_verdict(&p.ca, &leaf, "127.0.0.1", &co, &why), PTC_ECERTNAME);
    ptc_certgen_dispose(&leaf);
    pki_dispose(&p);
}

static void test_expired_refused(void)
{
    pki_t p;
    pki_init(&p);
    static const char *const sans[] = {"DNS:edge.example.com", NULL};
    ptc_certgen_opts_t o = {.sans = sans, .expired = true};
    ptc_certgen_cert_t old;
    ptc_certgen_leaf(&p.ca, NULL, "old", &o, &old);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_err_t why;
    CHECK_EQ(client_verdict(&p.ca, &old, "edge.example.com", &co, &why), PTC_ECERT);
    CHECK_CONTAINS(why.reason, "expired");
    /* Expired and for another name: the chain is what gets reported. */
    CHECK_EQ(client_verdict(&p.ca, &old, "other.example.com", &co, &why), PTC_ECERT);
    ptc_certgen_dispose(&old);
    pki_dispose(&p);
}

static void test_pin(void)
{
    pki_t p;
    pki_init(&p);
    ptc_certgen_cert_t other;
    static const char *const sans[] = {"DNS:edge.example.com", NULL};
    ptc_certgen_opts_t o = {.sans = sans};
    ptc_certgen_leaf(&p.ca, NULL, "other", &o, &other);

    uint8_t pin[PTC_TLS_SHA256_LEN];
    CHECK_OK(ptc_tls_spki_sha256_pem(p.leaf.cert_pem, strlen(p.leaf.cert_pem), pin));
    CHECK_MEMEQ(pin, p.leaf.spki_sha256, sizeof(pin));
    CHECK_EQ(ptc_tls_spki_sha256_pem("junk", 4, pin), PTC_EFORMAT);

    ptc_tls_client_opts_t co = {.has_pin = true};
    memcpy(co.pin_sha256, p.leaf.spki_sha256, sizeof(co.pin_sha256));
    ptc_tls_err_t why;
    CHECK_OK(client_verdict(&p.ca, &p.leaf, "edge.example.com", &co, &why));
    /* A valid chain for the right name, but another key: refused. */
    CHECK_EQ(client_verdict(&p.ca, &other, "edge.example.com", &co, &why), PTC_EPIN);
    CHECK_CONTAINS(why.reason, "pinned");
    /* The chain is checked first: a bad name is a name error even with a matching pin. */
    CHECK_EQ(client_verdict(&p.ca, &p.leaf, "evil.example.com", &co, &why), PTC_ECERTNAME);

    /* Without validation the pin still holds. */
    ptc_tls_client_opts_t nv = {.has_pin = true, .no_verify = true};
    memcpy(nv.pin_sha256, p.leaf.spki_sha256, sizeof(nv.pin_sha256));
    CHECK_OK(client_verdict(NULL, &p.leaf, "anything.example", &nv, &why));
    CHECK_EQ(client_verdict(NULL, &other, "anything.example", &nv, &why), PTC_EPIN);

    ptc_certgen_dispose(&other);
    pki_dispose(&p);
}

static void test_no_verify_accepts_anything(void)
{
    ptc_certgen_cert_t ca;
    ptc_certgen_ca(NULL, "Nobody trusts me", &ca);
    static const char *const sans[] = {"DNS:backend.internal", NULL};
    ptc_certgen_opts_t o = {.sans = sans, .expired = true};
    ptc_certgen_cert_t leaf;
    ptc_certgen_leaf(&ca, NULL, "backend", &o, &leaf);
    ptc_tls_client_opts_t co = {.no_verify = true, .ca_file = "/nonexistent/ca.pem"};
    ptc_tls_err_t why;
    /* Untrusted, expired and for another name: accepted, and the CA file is never read. */
    CHECK_OK(client_verdict(NULL, &leaf, "10.1.2.3", &co, &why));
    CHECK_OK(client_verdict(NULL, &leaf, "wrong.example", &co, &why));
    /* Without no_verify, a client needs a name to check. */
    ptc_tls_client_opts_t vo = {0};
    ptc_tls_config_t *ccfg = client_config(&vo, &ca);
    ptc_tls_t *t = NULL;
    CHECK_EQ(ptc_tls_new(ccfg, NULL, &t), UV_EINVAL);
    CHECK_EQ(ptc_tls_new(ccfg, "", &t), UV_EINVAL);
    CHECK_NULL(t);
    ptc_tls_config_unref(ccfg);
    ptc_certgen_dispose(&leaf);
    ptc_certgen_dispose(&ca);
}

static void test_load_errors(void)
{
    const char *dir = ptc_test_tmpdir();
    ptc_certgen_cert_t ca;
    ptc_certgen_ca(dir, "Load CA", &ca);
    static const char *const sans[] = {"DNS:edge.example.com", NULL};
    ptc_certgen_opts_t o = {.sans = sans};
    ptc_certgen_cert_t a;
    ptc_certgen_cert_t b;
    ptc_certgen_leaf(&ca, dir, "a", &o, &a);
    ptc_certgen_leaf(&ca, dir, "b", &o, &b);

    ptc_tls_certs_t *certs = ptc_tls_certs_new();
    ptc_tls_err_t err;
    /* The key of another certificate. */
    CHECK_EQ(ptc_tls_certs_add_pem(certs, a.cert_pem, strlen(a.cert_pem), b.key_pem,
                                   strlen(b.key_pem), false, &err),
             PTC_ECONFIG);
    CHECK_CONTAINS(err.reason, "private key does not match the certificate");
    CHECK_CONTAINS(err.reason, "edge.example.com");
    CHECK_EQ(ptc_tls_certs_add_files(certs, a.cert_path, b.key_path, false, &err), PTC_ECONFIG);
    CHECK_CONTAINS(err.reason, b.key_path);
    /* Not PEM at all. */
    CHECK_EQ(ptc_tls_certs_add_pem(certs, "hello", 5, a.key_pem, strlen(a.key_pem), false, &err),
             PTC_EFORMAT);
    CHECK_CONTAINS(err.reason, "certificate chain");
    CHECK_EQ(ptc_tls_certs_add_pem(certs, a.cert_pem, strlen(a.cert_pem), "nope", 4, false, &err),
             PTC_EFORMAT);
    CHECK_CONTAINS(err.reason, "private key");
    /* A missing file is a libuv-style code and names the file. */
    CHECK_EQ(ptc_tls_certs_add_files(certs, "/nonexistent/x.crt", a.key_path, false, &err),
             UV_ENOENT);
    CHECK_CONTAINS(err.reason, "/nonexistent/x.crt");
    /* Uploaded PEM is bounded. */
    size_t huge_len = 2 * 1024 * 1024;
    char *huge = calloc(1, huge_len);
    CHECK_EQ(
        ptc_tls_certs_add_pem(certs, huge, huge_len, a.key_pem, strlen(a.key_pem), false, &err),
        PTC_ELIMIT);
    uint8_t pin[PTC_TLS_SHA256_LEN];
    CHECK_EQ(ptc_tls_spki_sha256_pem(huge, huge_len, pin), PTC_ELIMIT);
    free(huge);
    CHECK_EQ(ptc_tls_certs_count(certs), 0);

    /* An empty set makes no server. */
    ptc_tls_config_t *cfg = NULL;
    ptc_tls_server_opts_t so = {.certs = certs};
    CHECK_EQ(ptc_tls_server_config_new(&so, &cfg, &err), PTC_ECONFIG);
    CHECK_NULL(cfg);
    static const char *const bad_alpn[] = {"", NULL};
    CHECK_OK(ptc_tls_certs_add_files(certs, a.cert_path, a.key_path, false, &err));
    so.alpn = bad_alpn;
    CHECK_EQ(ptc_tls_server_config_new(&so, &cfg, &err), PTC_ECONFIG);
    ptc_tls_certs_unref(certs);

    /* Client CA sources. */
    ptc_tls_client_opts_t co = {.ca_file = "/nonexistent/ca.pem"};
    CHECK_EQ(ptc_tls_client_config_new(&co, &cfg, &err), UV_ENOENT);
    co.ca_file = a.key_path;
    CHECK_EQ(ptc_tls_client_config_new(&co, &cfg, &err), PTC_EFORMAT);
    co.ca_file = ca.cert_path;
    CHECK_OK(ptc_tls_client_config_new(&co, &cfg, &err));
    CHECK(!ptc_tls_config_is_server(cfg));
    ptc_tls_config_unref(cfg);

    ptc_certgen_dispose(&b);
    ptc_certgen_dispose(&a);
    ptc_certgen_dispose(&ca);
}

static void test_files_and_ca_file_handshake(void)
{
    const char *dir = ptc_test_tmpdir();
    ptc_certgen_cert_t ca;
    ptc_certgen_ca(dir, "File CA", &ca);
    static const char *const sans[] = {"DNS:edge.example.com", NULL};
    ptc_certgen_opts_t o = {.sans = sans};
    ptc_certgen_cert_t leaf;
    ptc_certgen_leaf(&ca, dir, "leaf", &o, &leaf);
    /* A chain file: leaf, then the CA (as a server would send an intermediate). */
    size_t chain_len = strlen(leaf.cert_pem) + strlen(ca.cert_pem);
    char *chain = malloc(chain_len + 1);
    snprintf(chain, chain_len + 1, "%s%s", leaf.cert_pem, ca.cert_pem);
    char chain_path[512];
    ptc_certgen_write_file(dir, "chain.pem", chain, chain_len, chain_path, sizeof(chain_path));
    free(chain);

    ptc_tls_certs_t *certs = ptc_tls_certs_new();
    ptc_tls_err_t err;
    CHECK_OK(ptc_tls_certs_add_files(certs, chain_path, leaf.key_path, true, &err));
    ptc_tls_config_t *scfg = server_config(certs, 0);
    ptc_tls_certs_unref(certs);
    ptc_tls_client_opts_t co = {.ca_file = ca.cert_path};
    ptc_tls_config_t *ccfg = client_config(&co, NULL);
    ptc_tls_t *c = conn(ccfg, "edge.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    handshake_ok(c, s);
    uint8_t h[PTC_TLS_SHA256_LEN];
    CHECK_OK(ptc_tls_server_cert_sha256(c, h));
    CHECK_MEMEQ(h, leaf.sha256, sizeof(h)); /* the leaf's hash, not the chain's */
    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg);
    ptc_certgen_dispose(&leaf);
    ptc_certgen_dispose(&ca);
}

static void test_system_cas_do_not_trust_test_ca(void)
{
    FILE *f = fopen(PTC_TLS_SYSTEM_CA_FILE, "r");
    if (f == NULL) {
        ptc_test_diag("no %s here; nothing to check", PTC_TLS_SYSTEM_CA_FILE);
        return;
    }
    fclose(f);
    pki_t p;
    pki_init(&p);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_err_t why;
    CHECK_EQ(client_verdict(NULL, &p.leaf, "edge.example.com", &co, &why), PTC_ECERT);
    pki_dispose(&p);
}

static void test_rsa_certificate(void)
{
    ptc_certgen_cert_t ca;
    ptc_certgen_ca(NULL, "RSA CA", &ca);
    static const char *const sans[] = {"DNS:rsa.example.com", NULL};
    ptc_certgen_opts_t o = {.sans = sans, .rsa = true};
    ptc_certgen_cert_t leaf;
    ptc_certgen_leaf(&ca, NULL, "rsa", &o, &leaf);
    ptc_tls_config_t *scfg = server_config_for(&leaf);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_config_t *ccfg = client_config(&co, &ca);
    ptc_tls_t *c = conn(ccfg, "rsa.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    handshake_ok(c, s);
    CHECK_STREQ(ptc_tls_ciphersuite(c), "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256");
    transfer(c, s, (const uint8_t *)"rsa", 3, 3);
    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg);
    ptc_certgen_dispose(&leaf);
    ptc_certgen_dispose(&ca);
}

static void test_data_both_ways_and_large_records(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_config_t *scfg = server_config_for(&p.leaf);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_config_t *ccfg = client_config(&co, &p.ca);
    ptc_tls_t *c = conn(ccfg, "edge.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    handshake_ok(c, s);

    transfer(c, s, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, 18);
    transfer(s, c, (const uint8_t *)"HTTP/1.1 204 No Content\r\n\r\n", 27, 27);

    size_t len = 1024 * 1024;
    uint8_t *data = malloc(len);
    for (size_t i = 0; i < len; i++) {
        data[i] = (uint8_t)(i * 7 + (i >> 12));
    }
    /* One big write: 64 records of 16 KiB, each with 21 bytes of ChaCha20-Poly1305 framing,
     * sealed and opened by common/tls_aead (libsodium), not by mbedTLS's own code. */
    uint64_t records = ptc_tls_aead_records();
    size_t wire = transfer(c, s, data, len, len);
    CHECK_GE(ptc_tls_aead_records(), records + 2 * 64);
    CHECK_GE(wire, len + 64 * 21);
    CHECK_LE(wire, len + 64 * 21 + 64);
    /* Writes of 64 KiB from the server: still full records. */
    wire = transfer(s, c, data, len, 64 * 1024);
    CHECK_LE(wire, len + 64 * 21 + 64);
    /* Small writes each make their own record. */
    wire = transfer(c, s, data, 1000, 100);
    CHECK_EQ(wire, 1000 + 10 * 21);

    free(data);
    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg);
    pki_dispose(&p);
}

static void test_partial_records_wait_for_more_input(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_config_t *scfg = server_config_for(&p.leaf);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_config_t *ccfg = client_config(&co, &p.ca);
    ptc_tls_t *c = conn(ccfg, "edge.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    handshake_ok(c, s);

    CHECK_OK(ptc_tls_write(c, "abcdef", 6));
    ptc_chunkq_t *q = ptc_tls_output(c);
    ptc_slice_t sl[4];
    CHECK_EQ(ptc_chunkq_peek(q, sl, 4), 1);
    size_t rec_len = sl[0].len;
    /* Byte by byte: nothing until the record is whole. */
    uint8_t buf[64];
    for (size_t i = 0; i + 1 < rec_len; i++) {
        ptc_buf_append(ptc_tls_input(s), sl[0].ptr + i, 1);
        CHECK_EQ(ptc_tls_read(s, buf, sizeof(buf)), PTC_EINCOMPLETE);
    }
    ptc_buf_append(ptc_tls_input(s), sl[0].ptr + rec_len - 1, 1);
    ptc_chunkq_consume(q, rec_len);
    CHECK_EQ(ptc_tls_read(s, buf, sizeof(buf)), 6);
    CHECK_MEMEQ(buf, "abcdef", 6);
    /* A small reader buffer takes a record in pieces. */
    CHECK_OK(ptc_tls_write(c, "0123456789", 10));
    move(c, s);
    CHECK_EQ(ptc_tls_read(s, buf, 4), 4);
    CHECK(ptc_tls_has_pending(s));
    CHECK_EQ(ptc_tls_read(s, buf + 4, 60), 6);
    CHECK_MEMEQ(buf, "0123456789", 10);
    CHECK(!ptc_tls_has_pending(s));

    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg);
    pki_dispose(&p);
}

/* Resident pages among the whole pages of buf[PTC_TLS_IDLE_KEEP..len); *whole gets their count. */
static size_t resident_pages(const unsigned char *buf, size_t len, size_t *whole)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)buf + PTC_TLS_IDLE_KEEP + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)buf + len) & ~(page - 1);
    *whole = hi > lo ? (hi - lo) / page : 0;
    unsigned char vec[16] = {0};
    CHECK_LE(*whole, sizeof(vec));
    if (*whole == 0) {
        return 0;
    }
    CHECK_EQ(mincore((void *)lo, hi - lo, vec), 0);
    size_t n = 0;
    for (size_t i = 0; i < *whole; i++) {
        n += vec[i] & 1;
    }
    return n;
}

/* The connection's mbedTLS context is its first member (common/tls.c asserts it). */
static size_t resident(ptc_tls_t *t, size_t *whole)
{
    const mbedtls_ssl_context *ssl = (const mbedtls_ssl_context *)t;
    size_t w_in;
    size_t w_out;
    size_t n = resident_pages(ssl->in_buf, MBEDTLS_SSL_IN_BUFFER_LEN, &w_in) +
               resident_pages(ssl->out_buf, MBEDTLS_SSL_OUT_BUFFER_LEN, &w_out);
    *whole = w_in + w_out;
    return n;
}

static void test_idle_release_returns_record_buffer_pages(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_config_t *scfg = server_config_for(&p.leaf);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_config_t *ccfg = client_config(&co, &p.ca);
    ptc_tls_t *c = conn(ccfg, "edge.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    CHECK_EQ(ptc_tls_release_idle(c), 0); /* before the handshake */
    handshake_ok(c, s);
    /* Right after it: a connection opened ahead of its first request. */
    CHECK_GT(ptc_tls_release_idle(s), 0);
    CHECK_GT(ptc_tls_release_idle(c), 0);

    size_t len = 256 * 1024;
    uint8_t *data = malloc(len);
    for (size_t i = 0; i < len; i++) {
        data[i] = (uint8_t)(i * 13 + (i >> 10));
    }
    transfer(c, s, data, len, len);
    transfer(s, c, data, len, len);
    ptc_tls_t *sides[2] = {c, s};
    for (int i = 0; i < 2; i++) {
        size_t whole;
        CHECK_EQ(resident(sides[i], &whole), whole);
        /* At least two whole 4 KiB pages past the kept bytes of each 16.7 KiB buffer. */
        CHECK_GE(whole * page, 2 * 2 * 4096);
        CHECK_EQ(ptc_tls_release_idle(sides[i]), whole * page);
        CHECK_EQ(resident(sides[i], &whole), 0);
        CHECK_EQ(ptc_tls_release_idle(sides[i]), 0); /* nothing touched since */
    }

    /* Small records (a tunnel's PING is 17 bytes of plaintext) live in the kept page:
     * nothing comes back, nothing to release. */
    transfer(c, s, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, 18);
    transfer(s, c, data, 150, 150);
    size_t whole;
    CHECK_EQ(resident(c, &whole), 0);
    CHECK_EQ(resident(s, &whole), 0);
    CHECK_EQ(ptc_tls_release_idle(c), 0);

    /* Full records again: the sequence numbers survived (the peer would reject a record
     * under a wrong one), and the pages are released again. */
    transfer(c, s, data, len, 16384);
    transfer(s, c, data, len, 1000);
    CHECK_GT(ptc_tls_release_idle(s), 0);
    CHECK_GT(ptc_tls_release_idle(c), 0);

    /* Unread plaintext or a partial record: nothing is released. */
    CHECK_OK(ptc_tls_write(c, data, 10000));
    move(c, s);
    uint8_t buf[16384];
    CHECK_EQ(ptc_tls_read(s, buf, 100), 100);
    CHECK_EQ(ptc_tls_release_idle(s), 0);
    CHECK_EQ(ptc_tls_read(s, buf + 100, sizeof(buf) - 100), 9900);
    CHECK_MEMEQ(buf, data, 10000);
    CHECK_GT(ptc_tls_release_idle(s), 0);
    CHECK_OK(ptc_tls_write(c, data, 12000));
    ptc_chunkq_t *q = ptc_tls_output(c);
    ptc_slice_t sl[4];
    CHECK_EQ(ptc_chunkq_peek(q, sl, 4), 1);
    ptc_buf_append(ptc_tls_input(s), sl[0].ptr, sl[0].len - 100);
    CHECK_EQ(ptc_tls_read(s, buf, sizeof(buf)), PTC_EINCOMPLETE);
    CHECK_EQ(ptc_tls_release_idle(s), 0);
    ptc_buf_append(ptc_tls_input(s), sl[0].ptr + sl[0].len - 100, 100);
    ptc_chunkq_consume(q, sl[0].len);
    CHECK_EQ(ptc_tls_read(s, buf, sizeof(buf)), 12000);
    CHECK_MEMEQ(buf, data, 12000);
    CHECK_GT(ptc_tls_release_idle(s), 0);

    free(data);
    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg);
    pki_dispose(&p);
}

static void test_close_notify(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_config_t *scfg = server_config_for(&p.leaf);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_config_t *ccfg = client_config(&co, &p.ca);
    ptc_tls_t *c = conn(ccfg, "edge.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    handshake_ok(c, s);

    CHECK_OK(ptc_tls_write(c, "last words", 10));
    CHECK_OK(ptc_tls_close_notify(c));
    CHECK_OK(ptc_tls_close_notify(c)); /* once only */
    CHECK_EQ(ptc_tls_write(c, "more", 4), PTC_ESTATE);
    size_t wire = move(c, s);
    /* The data record, then one alert record (5 + 2 + 16 bytes with ChaCha20-Poly1305). */
    CHECK_EQ(wire, 10 + 21 + 2 + 21);
    uint8_t buf[64];
    CHECK_EQ(ptc_tls_read(s, buf, sizeof(buf)), 10);
    CHECK_MEMEQ(buf, "last words", 10);
    CHECK_EQ(ptc_tls_read(s, buf, sizeof(buf)), UV_EOF);
    CHECK_EQ(ptc_tls_read(s, buf, sizeof(buf)), UV_EOF);
    /* The server may still answer with its own close_notify. */
    CHECK_OK(ptc_tls_close_notify(s));
    move(s, c);
    CHECK_EQ(ptc_tls_read(c, buf, sizeof(buf)), UV_EOF);

    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg);
    pki_dispose(&p);
}

static void test_garbage_instead_of_client_hello(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_config_t *scfg = server_config_for(&p.leaf);
    ptc_tls_t *s = conn(scfg, NULL);
    static const char req[] = "GET / HTTP/1.1\r\nHost: edge.example.com\r\n\r\n";
    ptc_buf_append(ptc_tls_input(s), req, sizeof(req) - 1);
    CHECK_EQ(ptc_tls_handshake(s), PTC_ETLS);
    CHECK_EQ(ptc_tls_handshake(s), PTC_ETLS);
    ptc_tls_err_t why;
    ptc_tls_last_error(s, &why);
    CHECK_NE(why.mbedtls_code, 0);
    CHECK(why.reason[0] != '\0');
    CHECK(!ptc_tls_is_established(s));
    /* If anything was queued for the peer, it is a TLS alert record. */
    ptc_slice_t sl[2];
    if (ptc_chunkq_peek(ptc_tls_output(s), sl, 2) > 0) {
        CHECK_EQ(sl[0].ptr[0], 21);
    }
    ptc_tls_free(s);

    /* A record header that announces a huge record is refused as well. */
    s = conn(scfg, NULL);
    static const uint8_t big[] = {22, 3, 1, 0xff, 0xff, 1, 0, 0, 0};
    ptc_buf_append(ptc_tls_input(s), big, sizeof(big));
    CHECK_EQ(ptc_tls_handshake(s), PTC_ETLS);
    ptc_tls_free(s);
    ptc_tls_config_unref(scfg);
    pki_dispose(&p);
}

static void test_tampered_record_is_an_error(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_config_t *scfg = server_config_for(&p.leaf);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_config_t *ccfg = client_config(&co, &p.ca);
    ptc_tls_t *c = conn(ccfg, "edge.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    handshake_ok(c, s);
    CHECK_OK(ptc_tls_write(c, "integrity", 9));
    move(c, s);
    ptc_buf_t *in = ptc_tls_input(s);
    ptc_buf_data(in)[in->len - 3] ^= 0x01;
    uint8_t buf[64];
    CHECK_EQ(ptc_tls_read(s, buf, sizeof(buf)), PTC_ETLS);
    CHECK_EQ(ptc_tls_read(s, buf, sizeof(buf)), PTC_ETLS);
    CHECK_EQ(ptc_tls_write(s, "x", 1), PTC_ETLS);
    ptc_tls_free(c);
    ptc_tls_free(s);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg);
    pki_dispose(&p);
}

static void test_session_ticket_resumption(void)
{
    pki_t p;
    pki_init(&p);
    ptc_tls_certs_t *certs = certs_of(&p.leaf);
    ptc_tls_config_t *scfg = server_config(certs, 3600);
    ptc_tls_config_t *scfg_nt = server_config(certs, 0);
    ptc_tls_certs_unref(certs);
    ptc_tls_client_opts_t co = {0};
    ptc_tls_config_t *ccfg = client_config(&co, &p.ca);

    ptc_tls_t *c = conn(ccfg, "edge.example.com");
    ptc_tls_t *s = conn(scfg, NULL);
    ptc_tls_session_t *sess = NULL;
    CHECK_EQ(ptc_tls_get_session(c, &sess), PTC_ESTATE);
    CHECK_EQ(ptc_tls_get_session(s, &sess), PTC_ESTATE);
    handshake_ok(c, s);
    CHECK_OK(ptc_tls_get_session(c, &sess));
    CHECK_EQ(ptc_tls_set_session(c, sess), PTC_ESTATE); /* too late */
    ptc_tls_free(c);
    ptc_tls_free(s);

    c = conn(ccfg, "edge.example.com");
    s = conn(scfg, NULL);
    CHECK_OK(ptc_tls_set_session(c, sess));
    handshake_ok(c, s);
    CHECK(ptc_tls_is_resumed(c));
    /* The certificate hash is still known on a resumed session. */
    uint8_t h[PTC_TLS_SHA256_LEN];
    CHECK_OK(ptc_tls_server_cert_sha256(c, h));
    CHECK_MEMEQ(h, p.leaf.sha256, sizeof(h));
    transfer(c, s, (const uint8_t *)"resumed", 7, 7);
    ptc_tls_free(c);
    ptc_tls_free(s);

    /* A server without tickets declines, and the handshake is a full one. */
    c = conn(ccfg, "edge.example.com");
    s = conn(scfg_nt, NULL);
    CHECK_OK(ptc_tls_set_session(c, sess));
    handshake_ok(c, s);
    CHECK(!ptc_tls_is_resumed(c));
    ptc_tls_free(c);
    ptc_tls_free(s);

    ptc_tls_session_free(sess);
    ptc_tls_config_unref(ccfg);
    ptc_tls_config_unref(scfg_nt);
    ptc_tls_config_unref(scfg);
    pki_dispose(&p);
}

static const ptc_test_case_t cases[] = {
    PTC_TEST(test_handshake_negotiates_alpn),
    PTC_TEST(test_alpn_without_overlap_fails),
    PTC_TEST(test_sni_selects_certificate),
    PTC_TEST(test_certificate_set_replaced_live),
    PTC_TEST(test_untrusted_ca_refused),
    PTC_TEST(test_wrong_hostname_refused),
    PTC_TEST(test_ip_subject_alt_names),
    PTC_TEST(test_expired_refused),
    PTC_TEST(test_pin),
    PTC_TEST(test_no_verify_accepts_anything),
    PTC_TEST(test_load_errors),
    PTC_TEST(test_files_and_ca_file_handshake),
    PTC_TEST(test_system_cas_do_not_trust_test_ca),
    PTC_TEST(test_rsa_certificate),
    PTC_TEST(test_data_both_ways_and_large_records),
    PTC_TEST(test_partial_records_wait_for_more_input),
    PTC_TEST(test_idle_release_returns_record_buffer_pages),
    PTC_TEST(test_close_notify),
    PTC_TEST(test_garbage_instead_of_client_hello),
    PTC_TEST(test_tampered_record_is_an_error),
    PTC_TEST(test_session_ticket_resumption),
};

int main(int argc, char **argv)
{
    return PTC_TEST_MAIN(cases, argc, argv);
}
