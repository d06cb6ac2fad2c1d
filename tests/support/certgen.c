/* SPDX-License-Identifier: MIT */
/*
 * Test certificates made with mbedTLS's X.509 writer (see certgen.h). mbedTLS 2.28 has no
 * setter for subjectAltName, so the extension is encoded here with the asn1write functions
 * and added as a raw extension. Failures end the test case; nothing here returns an error.
 */
#include "tests/support/certgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>

#include "tests/support/test.h"

/* Big enough for an RSA 2048 certificate with a handful of names, in DER and in PEM. */
#define DER_CAP 4096
#define PEM_CAP 8192

typedef struct rng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
} rng_t;

static void must(int ret, const char *what)
{
    if (ret != 0) {
        ptc_test_fail(__FILE__, __LINE__, "certgen: %s failed: -0x%04x", what,
                      (unsigned)(ret < 0 ? -ret : ret));
    }
}

static void rng_init(rng_t *r)
{
    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
    static const char pers[] = "portico-certgen";
    must(mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy,
                               (const unsigned char *)pers, sizeof(pers) - 1),
         "ctr_drbg_seed");
}

static void rng_dispose(rng_t *r)
{
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
}

static void gen_key(rng_t *r, bool rsa, mbedtls_pk_context *key)
{
    mbedtls_pk_init(key);
    if (rsa) {
        must(mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), "pk_setup");
        must(mbedtls_rsa_gen_key(mbedtls_pk_rsa(*key), mbedtls_ctr_drbg_random, &r->drbg, 2048,
                                 65537),
             "rsa_gen_key");
    } else {
        must(mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), "pk_setup");
        must(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key),
                                 mbedtls_ctr_drbg_random, &r->drbg),
             "ecp_gen_key");
    }
}

/* Formats now + offset_days as the X.509 writer wants it (YYYYMMDDhhmmss, UTC). */
static void format_time(long offset_days, char out[16])
{
    time_t t = time(NULL) + (time_t)offset_days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y%m%d%H%M%S", &tm);
}

/* Encodes GeneralNames (RFC 5280 §4.2.1.6) for the "DNS:" and "IP:" entries. The writer
 * works backwards from the end of the buffer, so the entries are visited in reverse. */
static size_t encode_sans(const char *const *sans, unsigned char *buf, size_t cap,
                          unsigned char **start)
{
    unsigned char *p = buf + cap;
    size_t cnt = 0;
    while (sans[cnt] != NULL) {
        cnt++;
    }
    size_t total = 0;
    for (size_t i = cnt; i-- > 0;) {
        const char *s = sans[i];
        int ret;
        if (strncmp(s, "DNS:", 4) == 0) {
            ret = mbedtls_asn1_write_tagged_string(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2,
                                                   s + 4, strlen(s + 4));
        } else if (strncmp(s, "IP:", 3) == 0) {
            unsigned char ip[16];
            size_t ip_len = 4;
            if (inet_pton(AF_INET, s + 3, ip) != 1) {
                if (inet_pton(AF_INET6, s + 3, ip) != 1) {
                    ptc_test_fail(__FILE__, __LINE__, "certgen: bad IP SAN %s", s);
                }
                ip_len = 16;
            }
            ret = mbedtls_asn1_write_tagged_string(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7,
                                                   (const char *)ip, ip_len);
        } else {
            ptc_test_fail(__FILE__, __LINE__, "certgen: SAN must start with DNS: or IP: (%s)", s);
        }
        if (ret < 0) {
            must(ret, "asn1 write SAN");
        }
        total += (size_t)ret;
    }
    int ret = mbedtls_asn1_write_len(&p, buf, total);
    if (ret < 0) {
        must(ret, "asn1 write SAN length");
    }
    total += (size_t)ret;
    ret = mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE);
    if (ret < 0) {
        must(ret, "asn1 write SAN tag");
    }
    total += (size_t)ret;
    *start = p;
    return total;
}

static char *dup_str(const char *s)
{
    char *d = strdup(s);
    if (d == NULL) {
        ptc_test_fail(__FILE__, __LINE__, "certgen: out of memory");
    }
    return d;
}

void ptc_certgen_write_file(const char *dir, const char *name, const void *data, size_t len,
                            char *path, size_t path_cap)
{
    int n = snprintf(path, path_cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= path_cap) {
        ptc_test_fail(__FILE__, __LINE__, "certgen: path too long: %s/%s", dir, name);
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        ptc_test_fail(__FILE__, __LINE__, "certgen: fopen(%s): %s", path, strerror(errno));
    }
    if (len != 0 && fwrite(data, 1, len, f) != len) {
        ptc_test_fail(__FILE__, __LINE__, "certgen: fwrite(%s): %s", path, strerror(errno));
    }
    if (fclose(f) != 0) {
        ptc_test_fail(__FILE__, __LINE__, "certgen: fclose(%s): %s", path, strerror(errno));
    }
}

/* Signs `subject_key` as `subject` with `issuer_key` as `issuer`, and fills `out`. */
static void issue(rng_t *r, mbedtls_pk_context *subject_key, const char *subject,
                  mbedtls_pk_context *issuer_key, const char *issuer, bool is_ca, bool expired,
                  const char *const *sans, const char *dir, const char *name,
                  ptc_certgen_cert_t *out)
{
    mbedtls_x509write_cert w;
    mbedtls_x509write_crt_init(&w);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, subject_key);
    mbedtls_x509write_crt_set_issuer_key(&w, issuer_key);
    must(mbedtls_x509write_crt_set_subject_name(&w, subject), "set_subject_name");
    must(mbedtls_x509write_crt_set_issuer_name(&w, issuer), "set_issuer_name");

    /* A random positive 64-bit serial: two leaves of one CA must never share one. */
    unsigned char serial_bytes[8];
    must(mbedtls_ctr_drbg_random(&r->drbg, serial_bytes, sizeof(serial_bytes)), "serial");
    serial_bytes[0] &= 0x7f;
    serial_bytes[0] |= 0x01;
    mbedtls_mpi serial;
    mbedtls_mpi_init(&serial);
    must(mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof(serial_bytes)), "serial mpi");
    must(mbedtls_x509write_crt_set_serial(&w, &serial), "set_serial");
    mbedtls_mpi_free(&serial);

    char not_before[16];
    char not_after[16];
    format_time(expired ? -30 : -1, not_before);
    format_time(expired ? -1 : (is_ca ? 3650 : 30), not_after);
    must(mbedtls_x509write_crt_set_validity(&w, not_before, not_after), "set_validity");

    must(mbedtls_x509write_crt_set_basic_constraints(&w, is_ca ? 1 : 0, is_ca ? 0 : -1),
         "set_basic_constraints");
    must(mbedtls_x509write_crt_set_key_usage(
             &w, is_ca ? (MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN)
                       : (MBEDTLS_X509_KU_DIGITAL_SIGNATURE | MBEDTLS_X509_KU_KEY_ENCIPHERMENT)),
         "set_key_usage");
    must(mbedtls_x509write_crt_set_subject_key_identifier(&w), "set_subject_key_identifier");
    must(mbedtls_x509write_crt_set_authority_key_identifier(&w), "set_authority_key_identifier");
    if (sans != NULL) {
        unsigned char san_buf[1024];
        unsigned char *san = NULL;
        size_t san_len = encode_sans(sans, san_buf, sizeof(san_buf), &san);
        must(mbedtls_x509write_crt_set_extension(&w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                 MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                                                 san, san_len),
             "set SAN extension");
    }

    /* DER once, then PEM from that DER: ECDSA signatures are randomized, so writing DER and
     * PEM separately would give two different certificates. */
    unsigned char der_buf[DER_CAP];
    int der_len =
        mbedtls_x509write_crt_der(&w, der_buf, sizeof(der_buf), mbedtls_ctr_drbg_random, &r->drbg);
    if (der_len <= 0) {
        must(der_len != 0 ? der_len : -1, "x509write_crt_der");
    }
    const unsigned char *der = der_buf + sizeof(der_buf) - (size_t)der_len;
    mbedtls_x509write_crt_free(&w);

    unsigned char pem[PEM_CAP];
    size_t pem_len = 0;
    must(mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n",
                                  der, (size_t)der_len, pem, sizeof(pem), &pem_len),
         "pem_write_buffer");
    must(mbedtls_sha256_ret(der, (size_t)der_len, out->sha256, 0), "sha256");

    unsigned char spki_buf[1024];
    int spki_len = mbedtls_pk_write_pubkey_der(subject_key, spki_buf, sizeof(spki_buf));
    if (spki_len <= 0) {
        must(spki_len != 0 ? spki_len : -1, "pk_write_pubkey_der");
    }
    must(mbedtls_sha256_ret(spki_buf + sizeof(spki_buf) - (size_t)spki_len, (size_t)spki_len,
                            out->spki_sha256, 0),
         "sha256");

    unsigned char key_pem[PEM_CAP];
    must(mbedtls_pk_write_key_pem(subject_key, key_pem, sizeof(key_pem)), "pk_write_key_pem");

    out->cert_pem = dup_str((const char *)pem);
    out->key_pem = dup_str((const char *)key_pem);
    snprintf(out->subject, sizeof(out->subject), "%s", subject);
    out->cert_path[0] = '\0';
    out->key_path[0] = '\0';
    if (dir != NULL) {
        char file[256];
        snprintf(file, sizeof(file), "%s.crt", name);
        ptc_certgen_write_file(dir, file, out->cert_pem, strlen(out->cert_pem), out->cert_path,
                               sizeof(out->cert_path));
        snprintf(file, sizeof(file), "%s.key", name);
        ptc_certgen_write_file(dir, file, out->key_pem, strlen(out->key_pem), out->key_path,
                               sizeof(out->key_path));
    }
    mbedtls_platform_zeroize(key_pem, sizeof(key_pem));
}

void ptc_certgen_ca(const char *dir, const char *name, ptc_certgen_cert_t *out)
{
    memset(out, 0, sizeof(*out));
    rng_t r;
    rng_init(&r);
    mbedtls_pk_context key;
    gen_key(&r, false, &key);
    char subject[128];
    snprintf(subject, sizeof(subject), "CN=%s,O=Portico Test", name);
    issue(&r, &key, subject, &key, subject, true, false, NULL, dir, name, out);
    mbedtls_pk_free(&key);
    rng_dispose(&r);
}

void ptc_certgen_leaf(const ptc_certgen_cert_t *ca, const char *dir, const char *name,
                      const ptc_certgen_opts_t *opts, ptc_certgen_cert_t *out)
{
    static const ptc_certgen_opts_t defaults = {0};
    if (opts == NULL) {
        opts = &defaults;
    }
    memset(out, 0, sizeof(*out));
    rng_t r;
    rng_init(&r);

    mbedtls_pk_context ca_key;
    mbedtls_pk_init(&ca_key);
    must(mbedtls_pk_parse_key(&ca_key, (const unsigned char *)ca->key_pem, strlen(ca->key_pem) + 1,
                              NULL, 0),
         "parse CA key");

    mbedtls_pk_context key;
    gen_key(&r, opts->rsa, &key);

    const char *cn = opts->cn;
    if (cn == NULL && opts->sans != NULL) {
        for (size_t i = 0; opts->sans[i] != NULL && cn == NULL; i++) {
            if (strncmp(opts->sans[i], "DNS:", 4) == 0) {
                cn = opts->sans[i] + 4;
            }
        }
    }
    char subject[128];
    snprintf(subject, sizeof(subject), "CN=%s,O=Portico Test", cn != NULL ? cn : "leaf");
    issue(&r, &key, subject, &ca_key, ca->subject, false, opts->expired, opts->sans, dir, name,
          out);
    mbedtls_pk_free(&key);
    mbedtls_pk_free(&ca_key);
    rng_dispose(&r);
}

void ptc_certgen_dispose(ptc_certgen_cert_t *c)
{
    if (c->key_pem != NULL) {
        mbedtls_platform_zeroize(c->key_pem, strlen(c->key_pem));
    }
    free(c->cert_pem);
    free(c->key_pem);
    c->cert_pem = NULL;
    c->key_pem = NULL;
}
